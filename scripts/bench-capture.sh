#!/usr/bin/env bash
# Capture extraction benchmark: on the same generated files, in one run,
#   - wiretrail's extractor with 1 flow and with 100 flows in one pass,
#   - tcpdump -r F -w /dev/null with the equivalent BPF (1 and 100 terms),
#   - tshark -r F -Y with the equivalent display filter (on a smaller file:
#     tshark is two orders of magnitude slower),
#   - cat F > /dev/null (the ceiling),
#   - a 5-minute window out of a 1-hour file vs a full scan.
#
# Every command is measured the same way, as a whole process: wall time and
# CPU time (user + sys, all threads), each the best of REPS runs after one
# warm-up run (files are in the page cache). On a shared, loaded machine the
# CPU time is the steadier figure; wall time shows what a user waits.
# wiretrail runs through the `capbench` example (catalog from the cache, then
# one extraction); the catalog is built once beforehand (not timed).
#
# Usage: scripts/bench-capture.sh [SIZE (default 1G)] [WORKDIR (default /tmp/wiretrail-bench)]
# Env:   REPS (default 5), KEEP=1 keeps the generated files.
set -euo pipefail

SIZE=${1:-1G}
WORK=${2:-/tmp/wiretrail-bench}
REPS=${REPS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in tcpdump tshark python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "installing tcpdump tshark" >&2
        apt-get install -y tcpdump tshark python3 >/dev/null
    fi
done

cargo build --release -q -p wiretrail-capture --example gencap --example capbench
BIN=$CARGO_TARGET_DIR/release/examples

mkdir -p "$WORK"
# A one-hour, single-file node for every comparison, and a smaller file
# with the same traffic shape for tshark.
if [ ! -f "$WORK/big/flows.tsv" ]; then
    "$BIN/gencap" --out "$WORK/big" --nodes 1 --bytes "$SIZE" --duration 3600 --files 1 --seed 7
fi
if [ ! -f "$WORK/small/flows.tsv" ]; then
    "$BIN/gencap" --out "$WORK/small" --nodes 1 --bytes 100M --duration 600 --files 1 --seed 8
fi
# gencap writes the connections still open at the end into a short extra
# rotation: the big file is the one-hour one.
F=$(ls -S "$WORK"/big/be1/*.pcap | head -1)
S=$(ls -S "$WORK"/small/be1/*.pcap | head -1)
CACHE=$WORK/cache

# "WALL CPU" of one run of a command, via wait4's rusage.
once() {
    python3 - "$@" <<'PY'
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
print(f"{time.perf_counter() - t:.4f} {ru.ru_utime + ru.ru_stime:.4f}")
PY
}

# "BEST_WALL BEST_CPU" over REPS runs after a warm-up.
best() {
    local reps=$REPS
    if [ "$1" = "-n" ]; then reps=$2; shift 2; fi
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq "$reps"); do once "$@"; done |
        awk 'NR==1 || $1<w {w=$1} NR==1 || $2<c {c=$2} END {printf "%.3f %.3f\n", w, c}'
}

size_of() { stat -c %s "$1"; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN{printf "%6.0f", b/t/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
wall() { echo "$1" | cut -d' ' -f1; }
cpu() { echo "$1" | cut -d' ' -f2; }

cb() { "$BIN/capbench" --cache "$CACHE" "$@"; }
"$BIN/capbench" --cache "$CACHE" --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 1 >/dev/null
"$BIN/capbench" --cache "$CACHE" --node "be1=$S" --flows "$WORK/small/flows.tsv" --count 1 >/dev/null

BPF1=$(cb --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 1 --print-bpf)
BPF100=$(cb --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 100 --print-bpf)
Y1=$(cb --node "be1=$S" --flows "$WORK/small/flows.tsv" --count 1 --print-tshark)
Y100=$(cb --node "be1=$S" --flows "$WORK/small/flows.tsv" --count 100 --print-tshark)

# Matched packet counts, to show every tool found the same packets.
M_W1=$(cb --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 1 | cut -f5)
M_W100=$(cb --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 100 | cut -f5)
C_TD1=$(tcpdump -r "$F" -w - "$BPF1" 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)
C_TD100=$(tcpdump -r "$F" -w - "$BPF100" 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)

# 5-minute window (17:30-17:35) of the one-hour file, 100 flows.
T0=1683306000000000000
SINCE=$((T0 + 1800 * 1000000000))
UNTIL=$((SINCE + 300 * 1000000000))
B_WIN=$(cb --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 100 --since $SINCE --until $UNTIL | cut -f3)

SZ=$(size_of "$F")
R_CAT=$(best sh -c "cat '$F' > /dev/null")
R_W1=$(best "$BIN/capbench" --cache "$CACHE" --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 1)
R_W100=$(best "$BIN/capbench" --cache "$CACHE" --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 100)
R_W100_1T=$(RAYON_NUM_THREADS=1 best "$BIN/capbench" --cache "$CACHE" --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 100)
R_TD1=$(best tcpdump -r "$F" -w /dev/null "$BPF1")
R_TD100=$(best tcpdump -r "$F" -w /dev/null "$BPF100")
R_WIN=$(best "$BIN/capbench" --cache "$CACHE" --node "be1=$F" --flows "$WORK/big/flows.tsv" --count 100 --since $SINCE --until $UNTIL)

SS=$(size_of "$S")
R_SCAT=$(best sh -c "cat '$S' > /dev/null")
R_SW1=$(best "$BIN/capbench" --cache "$CACHE" --node "be1=$S" --flows "$WORK/small/flows.tsv" --count 1)
R_SW100=$(best "$BIN/capbench" --cache "$CACHE" --node "be1=$S" --flows "$WORK/small/flows.tsv" --count 100)
R_TS1=$(best -n 1 tshark -r "$S" -Y "$Y1" -w /dev/null)
R_TS100=$(best -n 1 tshark -r "$S" -Y "$Y100" -w /dev/null)

row() { printf "%-40s %8s %8s %s  %s\n" "$1" "$(wall "$2")" "$(cpu "$2")" "$(mbps "$3" "$(wall "$2")")" "$4"; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); best of $REPS"
echo
echo "== one-hour file $F, $(awk -v b="$SZ" 'BEGIN{printf "%.2f GB", b/1e9}') =="
printf "%-40s %8s %8s %6s  %s\n" tool wall_s cpu_s "MB/s" packets
row "cat F > /dev/null" "$R_CAT" "$SZ" ""
row "wiretrail, 1 flow" "$R_W1" "$SZ" "$M_W1"
row "wiretrail, 100 flows, one pass" "$R_W100" "$SZ" "$M_W100"
row "wiretrail, 100 flows, 1 thread" "$R_W100_1T" "$SZ" "$M_W100"
row "tcpdump -w /dev/null, 1-term BPF" "$R_TD1" "$SZ" "$C_TD1"
row "tcpdump -w /dev/null, 100-term BPF" "$R_TD100" "$SZ" "$C_TD100"
row "wiretrail, 100 flows, 5-min window" "$R_WIN" "$SZ" "(read $B_WIN bytes)"
cat <<EOF

ratios, wall (cpu) [target]:
  tcpdump 1 term / wiretrail 1 flow         $(ratio "$(wall "$R_TD1")" "$(wall "$R_W1")") ($(ratio "$(cpu "$R_TD1")" "$(cpu "$R_W1")"))  [>= 1]
  tcpdump 100 terms / wiretrail 100 flows   $(ratio "$(wall "$R_TD100")" "$(wall "$R_W100")") ($(ratio "$(cpu "$R_TD100")" "$(cpu "$R_W100")"))  [>= 2]
  wiretrail 100 flows / cat                 $(ratio "$(wall "$R_W100")" "$(wall "$R_CAT")") ($(ratio "$(cpu "$R_W100")" "$(cpu "$R_CAT")"))  [<= 3]
  5-min window / full scan, 100 flows       $(ratio "$(wall "$R_WIN")" "$(wall "$R_W100")") ($(ratio "$(cpu "$R_WIN")" "$(cpu "$R_W100")"))  [< 0.15]
  5-min window / full scan, bytes read      $(ratio "$B_WIN" "$SZ")

== smaller file for tshark $S, $(awk -v b="$SS" 'BEGIN{printf "%.2f GB", b/1e9}'), tshark run once ==
EOF
row "cat F > /dev/null" "$R_SCAT" "$SS" ""
row "wiretrail, 1 flow" "$R_SW1" "$SS" ""
row "wiretrail, 100 flows" "$R_SW100" "$SS" ""
row "tshark -Y, 1 flow" "$R_TS1" "$SS" ""
row "tshark -Y, 100 flows" "$R_TS100" "$SS" ""
echo "  tshark / wiretrail, 100 flows: $(ratio "$(wall "$R_TS100")" "$(wall "$R_SW100")") ($(ratio "$(cpu "$R_TS100")" "$(cpu "$R_SW100")"))"

[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
