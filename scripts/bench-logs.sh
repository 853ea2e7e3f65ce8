#!/usr/bin/env bash
# Log parsing benchmark: one generated log (default 1024 MiB, ~1% proxy
# errors, sections in six envelopes), timed for wiretrail's reader, a
# regex-captures baseline and `rg 'http: proxy error'` merely finding the
# lines, each with peak RSS from /usr/bin/time -v. Each contender runs RUNS
# times (default 3) on a warm page cache; the fastest run is reported (the
# machine may be shared). Usage: scripts/bench-logs.sh [MIB] [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}
FILE=${2:-${TMPDIR:-/tmp}/wiretrail-bench-logs.log}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
command -v rg >/dev/null || { echo "bench-logs: ripgrep (rg) is not installed (apt-get install ripgrep)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench-logs: /usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p wiretrail-logs --example logbench
BIN=$CARGO_TARGET_DIR/release/examples/logbench
if [ ! -s "$FILE" ] || [ "$(stat -c %s "$FILE")" -lt $((MIB * 1048576)) ]; then
  "$BIN" gen "$FILE" "$MIB"
fi
SIZE=$(stat -c %s "$FILE")
LINES=$(wc -l < "$FILE")
cat "$FILE" > /dev/null # warm the page cache so every contender reads from memory
echo "file: $FILE ($SIZE bytes, $LINES lines)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# best NAME CMD...: run RUNS times, print the fastest wall time's figures.
best() {
  local name=$1; shift
  local best_s="" best_line="" i
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$TMP/time" "$@" > "$TMP/out"
    read -r wall rss < "$TMP/time"
    # Use the tool's own timer when it prints one (seconds=...), else the wall clock.
    local secs; secs=$(grep -o 'seconds=[0-9.]*' "$TMP/out" | cut -d= -f2 || true)
    secs=${secs:-$wall}
    if [ -z "$best_s" ] || awk -v a="$secs" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
      best_s=$secs
      best_line="$(tail -n1 "$TMP/out") peak_rss_kb=$rss"
    fi
  done
  awk -v n="$name" -v s="$best_s" -v b="$SIZE" -v l="$LINES" -v rest="$best_line" \
    'BEGIN { printf "%-9s %8.3f s %8.1f MB/s %11.0f lines/s | %s\n", n, s, b / 1e6 / s, l / s, rest }'
}

best wiretrail "$BIN" wiretrail "$FILE"
best regex "$BIN" regex "$FILE"
best rg rg -c 'http: proxy error' "$FILE"
