#!/usr/bin/env bash
# Right after an alert: is the answer's latency set by the window, not by
# the archive? (issue 15)
#
# On SIZE of numbered rotations (tcpdump -C names: no time in the names), one
# node, one hour, FILES files, in one run:
#   - cat of the files that overlap a 20 s window (the floor: reading them),
#   - wiretrail capture extract of one flow in that window with NO catalog
#     (cold: spans probed, the window's files scanned and indexed),
#   - the same again (warm: catalog cached), with the page cache dropped
#     and not,
#   - for reference, `capture index --full` (what a cold catalog cost when
#     every file was read end to end to learn its span),
# and checks that wiretrail's packets are exactly what tshark finds in the
# overlapping files with the same flow and time filter.
#
# Cold figures need the files out of the page cache: as root the script
# drops caches (echo 3 > /proc/sys/vm/drop_caches) before each cold run;
# otherwise it says the figures are from the page cache.
#
# Usage: scripts/bench-alert.sh [SIZE (default 12G)] [WORKDIR (default /tmp/wiretrail-alert)]
# Env:   FILES (default 48), KEEP=1 keeps the generated files, FULL=0 skips
#        the full-index reference.
set -euo pipefail

SIZE=${1:-12G}
WORK=${2:-/tmp/wiretrail-alert}
FILES=${FILES:-48}
FULL=${FULL:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

for tool in tshark mergecap python3; do
    command -v "$tool" >/dev/null || { echo "bench-alert: $tool is required (apt-get install tshark python3)" >&2; exit 2; }
done

cargo build --release -q -p wiretrail-capture --example gencap
cargo build --release -q -p wiretrail
GENCAP=$CARGO_TARGET_DIR/release/examples/gencap
WT=$CARGO_TARGET_DIR/release/wiretrail

mkdir -p "$WORK"
CAPS=$WORK/caps
if [ ! -f "$CAPS/flows.tsv" ]; then
    echo "generating $SIZE in $FILES numbered rotations under $CAPS ..." >&2
    "$GENCAP" --out "$CAPS" --nodes 1 --bytes "$SIZE" --duration 3600 --files "$FILES" --seed 11 --names numbered
fi
DIR=$CAPS/be1

# One flow that lives 2-15 s, starting half-way through the hour; the 20 s
# window around it; the files overlapping the window (from each file's
# first record, read here independently of wiretrail).
read -r FLOW SINCE UNTIL OVERLAP <<<"$(python3 - "$CAPS/flows.tsv" "$DIR" <<'PY'
import os, re, struct, sys
flows, d = sys.argv[1], sys.argv[2]
t0 = 1683306000 * 10**9
pick = None
for l in open(flows).read().splitlines()[1:]:
    node, p, b, first, last, pk = l.split('\t')
    first, last = int(first), int(last)
    if first >= t0 + 1800 * 10**9 and 2 * 10**9 <= last - first <= 15 * 10**9 and int(pk) >= 10:
        pick = (p, b, first, last)
        break
p, b, first, last = pick
since = first - 3 * 10**9
until = since + 20 * 10**9
def seq(n):
    m = re.search(r'\.pcap(\d*)$', n)
    return int(m.group(1) or 0)
names = sorted(os.listdir(d), key=seq)
starts = []
for n in names:
    with open(os.path.join(d, n), 'rb') as f:
        h = f.read(40)
    s, us = struct.unpack('<II', h[24:32])
    starts.append(s * 10**9 + us * 1000)
over = []
for i, n in enumerate(names):
    end = starts[i + 1] if i + 1 < len(starts) else 2**62
    if starts[i] <= until and end >= since:
        over.append(os.path.join(d, n))
print(f"{p}-{b}", f"{since/1e9:.9f}", f"{until/1e9:.9f}", ",".join(over))
PY
)"
IFS=, read -r -a OVER <<<"$OVERLAP"
TOTAL=$(du -sb "$DIR" | cut -f1)
OVER_BYTES=$(du -cb "${OVER[@]}" | tail -1 | cut -f1)

CAN_DROP=0
if [ -w /proc/sys/vm/drop_caches ]; then CAN_DROP=1; fi
drop() { if [ $CAN_DROP = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }

# "WALL CPU" of one run of a command, via wait4's rusage.
once() {
    python3 - "$@" <<'PY'
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
if os.waitstatus_to_exitcode(status) not in (0, 1):
    sys.exit(f"failed: {' '.join(sys.argv[1:])}")
print(f"{time.perf_counter() - t:.4f} {ru.ru_utime + ru.ru_stime:.4f}")
PY
}
wall() { echo "$1" | cut -d' ' -f1; }
cpu() { echo "$1" | cut -d' ' -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }

CACHE=$WORK/catalog-cache
OUT=$WORK/out.pcapng

drop; R_CAT=$(once sh -c "cat ${OVER[*]} > /dev/null")
rm -rf "$CACHE"; drop
R_COLD=$(once "$WT" capture extract --node "be1=$DIR" --flow "$FLOW" --since "$SINCE" --until "$UNTIL" --cache "$CACHE" -w "$OUT")
# What the cold run read (the catalog's probes and scans, the extraction).
COLD_JSON=$(mktemp)
rm -rf "$CACHE"; drop
"$WT" capture extract --node "be1=$DIR" --flow "$FLOW" --since "$SINCE" --until "$UNTIL" --cache "$CACHE" -w "$OUT" --format json >"$COLD_JSON" 2>/dev/null || true
R_WARM=$(once "$WT" capture extract --node "be1=$DIR" --flow "$FLOW" --since "$SINCE" --until "$UNTIL" --cache "$CACHE" -w "$OUT")
drop
R_WARM_DROPPED=$(once "$WT" capture extract --node "be1=$DIR" --flow "$FLOW" --since "$SINCE" --until "$UNTIL" --cache "$CACHE" -w "$OUT")
if [ "$FULL" = 1 ]; then
    rm -rf "$WORK/full-cache"; drop
    R_FULL=$(once "$WT" capture index --full --cache "$WORK/full-cache" "be1=$DIR")
fi

# Same packets as tshark on the overlapping files with the same filter.
read -r PIP PPORT BIP BPORT <<<"$(echo "$FLOW" | sed -E 's/^(.*):([0-9]+)-(.*):([0-9]+)$/\1 \2 \3 \4/')"
FIELDS=(-T fields -e frame.time_epoch -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.seq_raw -e tcp.ack_raw -e tcp.flags -e tcp.len)
mergecap -F pcap -w "$WORK/over.pcap" "${OVER[@]}"
tshark -n -r "$WORK/over.pcap" -Y "ip.addr==$PIP && ip.addr==$BIP && tcp.port==$PPORT && tcp.port==$BPORT && frame.time_epoch >= $SINCE && frame.time_epoch <= $UNTIL" "${FIELDS[@]}" | sort >"$WORK/want.tsv"
tshark -n -r "$OUT" "${FIELDS[@]}" | sort >"$WORK/got.tsv"
rm -f "$WORK/over.pcap"
if cmp -s "$WORK/want.tsv" "$WORK/got.tsv"; then SAME="identical ($(wc -l <"$WORK/got.tsv") packets)"; else SAME="DIFFERENT: see diff $WORK/want.tsv $WORK/got.tsv"; fi

gib() { awk -v b="$1" 'BEGIN{printf "%.2f GiB", b/2^30}'; }
COLD_READ=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['catalog']['bytes_read'], d['catalog']['probed'], d['catalog']['indexed'], sum(n['stats']['bytes_read'] for n in d['nodes']))" "$COLD_JSON")
read -r CAT_BYTES CAT_PROBED CAT_INDEXED EX_BYTES <<<"$COLD_READ"
rm -f "$COLD_JSON"

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared); page cache $( [ $CAN_DROP = 1 ] && echo 'dropped before each cold run' || echo 'NOT dropped (not root): cold figures are from the page cache')"
echo "captures: $(gib "$TOTAL") in $(ls "$DIR" | wc -l) numbered rotations; flow $FLOW; window $SINCE .. $UNTIL (20 s)"
echo "files overlapping the window: ${#OVER[@]} ($(gib "$OVER_BYTES")): $(for f in "${OVER[@]}"; do basename "$f"; done | tr '\n' ' ')"
echo
printf "%-55s %8s %8s\n" run wall_s cpu_s
printf "%-55s %8s %8s\n" "cat the overlapping files (cold)" "$(wall "$R_CAT")" "$(cpu "$R_CAT")"
printf "%-55s %8s %8s\n" "wiretrail extract, no catalog (cold)" "$(wall "$R_COLD")" "$(cpu "$R_COLD")"
printf "%-55s %8s %8s\n" "wiretrail extract, catalog cached (warm)" "$(wall "$R_WARM")" "$(cpu "$R_WARM")"
printf "%-55s %8s %8s\n" "wiretrail extract, catalog cached, page cache dropped" "$(wall "$R_WARM_DROPPED")" "$(cpu "$R_WARM_DROPPED")"
if [ "$FULL" = 1 ]; then
    printf "%-55s %8s %8s\n" "reference: capture index --full (every file read)" "$(wall "$R_FULL")" "$(cpu "$R_FULL")"
fi
echo
echo "cold run read: catalog $(gib "$CAT_BYTES") ($CAT_PROBED files probed, $CAT_INDEXED scanned), extraction $(gib "$EX_BYTES")"
LIMIT=$(awk -v c="$(wall "$R_CAT")" 'BEGIN{printf "%.3f", 4*c+0.5}')
VERDICT=$(awk -v t="$(wall "$R_COLD")" -v l="$LIMIT" 'BEGIN{print (t<=l) ? "PASS" : "FAIL"}')
echo "cold / cat overlapping:        $(ratio "$(wall "$R_COLD")" "$(wall "$R_CAT")")   [target: cold <= 4 x cat + 0.5 s = $LIMIT s: $VERDICT]"
echo "warm (page cache dropped):     $(wall "$R_WARM_DROPPED") s   [target <= 0.5 s]"
echo "packets vs tshark:             $SAME"

[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
