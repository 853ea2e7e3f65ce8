#!/usr/bin/env bash
# Log parsing benchmark: one generated log (default 1024 MiB, ~1% proxy
# errors, sections in six envelopes), timed for wiretrail's reader, a
# regex-captures baseline and `rg 'http: proxy error'` merely finding the
# lines (with -c, and printing them as the issue's command does), and the
# command users run, `wiretrail logs --format json|text FILE` (reading,
# formatting and writing every record), each with peak RSS from
# /usr/bin/time. Contenders take turns, RUNS rounds (default 5)
# on a warm page cache, so a noisy neighbour slows them alike; each one's
# fastest run is reported, then the ratios. wiretrail runs with one worker
# per core (the default) and with one worker (WIRETRAIL_LOG_THREADS=1): rg
# searches a single file on one thread.
# Then the other proxies' formats (nginx, HAProxy, Caddy, Traefik, Envoy):
# a generated log of each (PROXY_MIB MiB, default MIB/4; the proxy's ordinary
# lines with ~1% error lines), `wiretrail logs --format json` against `rg -c`
# with the pattern that matches exactly the lines wiretrail turns into
# records (`logbench needle FORMAT`; the counts must agree), RUNS rounds in
# turn, fastest of each. PROXY_FORMATS picks some (default all).
# Usage: scripts/bench-logs.sh [MIB] [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}
FILE=${2:-${TMPDIR:-/tmp}/wiretrail-bench-logs.log}
RUNS=${RUNS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
command -v rg >/dev/null || { echo "bench-logs: ripgrep (rg) is not installed (apt-get install ripgrep)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-logs: /usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p wiretrail-logs --example logbench
cargo build --release -q -p wiretrail --bin wiretrail
BIN=$CARGO_TARGET_DIR/release/examples/logbench
WT=$CARGO_TARGET_DIR/release/wiretrail
if [ ! -s "$FILE" ] || [ "$(stat -c %s "$FILE")" -lt $((MIB * 1048576)) ]; then
  "$BIN" gen "$FILE" "$MIB"
fi
SIZE=$(stat -c %s "$FILE")
LINES=$(wc -l < "$FILE")
cat "$FILE" > /dev/null # warm the page cache so every contender reads from memory
echo "file: $FILE ($SIZE bytes, $LINES lines)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# run NAME CMD...: one timed run; keeps NAME's fastest in $TMP/NAME.best.
# Every contender is timed the same way: wall clock around the whole process
# (start-up and exit included; bash's EPOCHREALTIME, microseconds), peak RSS
# from /usr/bin/time.
run() {
  local name=$1; shift
  local t0 t1 wall rss secs
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%e %M' -o "$TMP/time" "$@" > "$TMP/out"
  t1=$EPOCHREALTIME
  read -r wall rss < "$TMP/time"
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  if [ ! -s "$TMP/$name.best" ] || awk -v a="$secs" -v b="$(cut -d' ' -f1 "$TMP/$name.best")" 'BEGIN { exit !(a < b) }'; then
    echo "$secs $rss $(tail -n1 "$TMP/out" | cut -c1-60)" > "$TMP/$name.best"
  fi
}

for i in $(seq "$RUNS"); do
  run wiretrail "$BIN" wiretrail "$FILE"
  WIRETRAIL_LOG_THREADS=1 run wiretrail-1t "$BIN" wiretrail "$FILE"
  run logs-json "$WT" logs --tz UTC --format json "$FILE"
  run logs-text "$WT" logs --tz UTC --format text "$FILE"
  run rg-c rg -c 'http: proxy error' "$FILE"
  run rg rg 'http: proxy error' "$FILE"
  [ "$i" -le 2 ] && run regex "$BIN" regex "$FILE"
done

# Memory is flat: the same reader over a quarter of the file.
head -c $((SIZE / 4)) "$FILE" > "$TMP/quarter.log"
/usr/bin/time -f '%M' -o "$TMP/quarter.rss" "$BIN" wiretrail "$TMP/quarter.log" > /dev/null
rm -f "$TMP/quarter.log"

secs() { cut -d' ' -f1 "$TMP/$1.best"; }
for n in wiretrail wiretrail-1t logs-json logs-text regex rg-c rg; do
  read -r s rss rest < "$TMP/$n.best"
  awk -v n="$n" -v s="$s" -v b="$SIZE" -v l="$LINES" -v rss="$rss" -v rest="$rest" \
    'BEGIN { printf "%-13s %8.3f s %8.1f MB/s %11.0f lines/s  peak_rss=%d KB | %s\n", n, s, b / 1e6 / s, l / s, rss, rest }'
done
awk -v w="$(secs wiretrail)" -v w1="$(secs wiretrail-1t)" -v re="$(secs regex)" -v rc="$(secs rg-c)" -v r="$(secs rg)" 'BEGIN {
  printf "ratios: wiretrail vs regex baseline %.1fx (target >= 3x); share of rg -c speed %.0f%%, of rg printing lines %.0f%% (target >= 50%%)\n", re / w, 100 * rc / w, 100 * r / w
  printf "        one worker: vs regex %.1fx; share of rg -c %.0f%%, of rg %.0f%%\n", re / w1, 100 * rc / w1, 100 * r / w1
}'
awk -v j="$(secs logs-json)" -v t="$(secs logs-text)" -v rc="$(secs rg-c)" -v r="$(secs rg)" 'BEGIN {
  printf "wiretrail logs (what users run): --format json at %.0f%% of rg -c, %.0f%% of rg printing lines; --format text at %.0f%% / %.0f%% (target >= 50%% of rg -c)\n", 100 * rc / j, 100 * r / j, 100 * rc / t, 100 * r / t
}'
awk -v q="$(cat "$TMP/quarter.rss")" -v f="$(cut -d' ' -f2 "$TMP/wiretrail.best")" -v b="$SIZE" \
  'BEGIN { printf "memory: peak RSS %d KB over %.0f MB, %d KB over %.0f MB\n", q, b / 4e6, f, b / 1e6 }'

# ---- the other proxies' formats ------------------------------------------------
PROXY_MIB=${PROXY_MIB:-$((MIB / 4))}
PROXY_FORMATS=${PROXY_FORMATS:-nginx haproxy caddy traefik envoy}
echo "other proxies' formats: $PROXY_MIB MiB each; wiretrail logs --format json vs rg -c PATTERN (the same lines)"
for fmt in $PROXY_FORMATS; do
  PF="${TMPDIR:-/tmp}/wiretrail-bench-$fmt.log"
  "$BIN" gen-proxy "$fmt" "$PF" "$PROXY_MIB" > /dev/null
  NEEDLE=$("$BIN" needle "$fmt")
  cat "$PF" > /dev/null
  rm -f "$TMP/p-wt.best" "$TMP/p-rg.best"
  exec 3>&2 2>/dev/null # wiretrail's summary of each run
  for i in $(seq "$RUNS"); do
    run p-wt "$WT" logs --tz UTC --format json "$PF"
    run p-rg rg -c "$NEEDLE" "$PF"
  done
  exec 2>&3 3>&-
  n_wt=$("$WT" logs --tz UTC --format json "$PF" 2>/dev/null | wc -l)
  n_rg=$(rg -c "$NEEDLE" "$PF")
  [ "$n_wt" = "$n_rg" ] || echo "bench-logs: $fmt: wiretrail found $n_wt records, rg $n_rg lines" >&2
  awk -v f="$fmt" -v w="$(secs p-wt)" -v r="$(secs p-rg)" -v b="$(stat -c %s "$PF")" -v n="$n_wt" -v m="$n_rg" 'BEGIN {
    printf "%-8s wiretrail logs %7.3f s %8.1f MB/s | rg -c %7.3f s %8.1f MB/s | wiretrail at %3.0f%% of rg | records %d, rg lines %d\n", f, w, b / 1e6 / w, r, b / 1e6 / r, 100 * r / w, n, m
  }'
  rm -f "$PF"
done
