#!/bin/sh
# Elasticsearch source/sink benchmark against the in-process test server.
# Scan: hits/s through PIT + search_after + parsing; peak RSS at 1M and 5M
# hits (flat memory: the two should be close). Publish: documents/s via _bulk.
# Each run is its own process so peak RSS is per run.
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p wiretrail-elastic --example bench_es
bin="$CARGO_TARGET_DIR/release/examples/bench_es"
"$bin" scan 1000000 1 1000
"$bin" scan 5000000 1 1000
"$bin" scan 1000000 4 1000
"$bin" publish 200000 1000
