#!/bin/sh
# Elasticsearch source/sink benchmark.
#
#   scripts/bench-es.sh                    # in-process test server only
#   scripts/bench-es.sh --url URL [--credentials FILE]
#   scripts/bench-es.sh --flavors "es9 es8 os2 os3"   # starts each with
#                                          # scripts/search-server.sh, stops it after
#
# Scan: hits/s through the point in time + search_after + parsing, with the
# process's peak RSS. In-process at 1M and 5M hits (flat memory: the two
# should be close); on a real cluster at WIRETRAIL_BENCH_N (default 200000)
# hits, bulk-loaded first (the load's docs/s printed too). Publish:
# documents/s via _bulk. Each run is its own process so peak RSS is per run.
# The in-process figures are printed in the same run, for ratios.
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
URL="" CREDS="" FLAVORS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --url) URL=$2; shift 2 ;;
        --credentials) CREDS=$2; shift 2 ;;
        --flavors) FLAVORS=$2; shift 2 ;;
        *) echo "usage: $0 [--url URL [--credentials FILE]] [--flavors 'es9 es8 os2 os3']" >&2; exit 2 ;;
    esac
done
N=${WIRETRAIL_BENCH_N:-200000}
cargo build --release -q -p wiretrail-elastic --example bench_es
bin="$CARGO_TARGET_DIR/release/examples/bench_es"

echo "== in-process server"
"$bin" scan 1000000 1 1000
if [ -z "$URL$FLAVORS" ]; then
    "$bin" scan 5000000 1 1000
    "$bin" scan 1000000 4 1000
else
    "$bin" scan "$N" 1 1000
    "$bin" scan "$N" 2 1000
fi
"$bin" publish 200000 1000

real() {
    echo "== $1"
    WIRETRAIL_BENCH_ES_URL=$1 WIRETRAIL_TEST_ES_CREDENTIALS=$2 "$bin" publish 100000 1000
    WIRETRAIL_BENCH_ES_URL=$1 WIRETRAIL_TEST_ES_CREDENTIALS=$2 "$bin" scan "$N" 1 1000
    WIRETRAIL_BENCH_ES_URL=$1 WIRETRAIL_TEST_ES_CREDENTIALS=$2 "$bin" scan "$N" 2 1000
}
[ -z "$URL" ] || real "$URL" "$CREDS"
for f in $FLAVORS; do
    url=$(scripts/search-server.sh start "$f" | tail -1)
    creds=$(scripts/search-server.sh env "$f" | sed -n 's/^WIRETRAIL_TEST_ES_CREDENTIALS=//p')
    scripts/search-server.sh version "$f"
    real "$url" "$creds" || { scripts/search-server.sh stop "$f"; exit 1; }
    scripts/search-server.sh stop "$f"
done
