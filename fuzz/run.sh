#!/usr/bin/env bash
# Run one coverage-guided fuzz target for a while (cargo-fuzz, nightly Rust):
#   fuzz/run.sh capture_read|capture_decode|log_line [SECONDS]   (default 300)
# (WIRETRAIL_FUZZ_MAX_LEN overrides the longest input libFuzzer makes.)
# Seeds come from the real inputs: the shared capture corpus (captures and
# bad/ files), the committed crash fixtures, and real log lines. A crash is
# saved under fuzz/artifacts/TARGET/: copy it to the matching
# crates/*/tests/fixtures/fuzz/ (the deterministic fuzz tests replay it).
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh capture_read|capture_decode|log_line [SECONDS]}
secs=${2:-300}
shared=../../shared/corpus
seeds=corpus/$target
mkdir -p "$seeds"
case $target in
capture_read)
	# Small files only: libFuzzer mutates inputs up to -max_len (a file is
	# written and read three ways per run: shorter inputs run faster).
	find "$shared/captures" "$shared/bad" ../crates/wiretrail-capture/tests/fixtures/fuzz \
		-type f -size -64k ! -name '*.md' ! -name '*.tsv' -exec cp -t "$seeds" {} + 2>/dev/null || true
	max_len=16384
	;;
capture_decode)
	# Every packet of the corpus's classic pcap files, as the target reads
	# them: link type pick, length difference, bytes.
	python3 - "$shared/captures" "$seeds" <<'PY'
import os, struct, sys
picks = {0: 0, 1: 1, 101: 2, 108: 3, 113: 4, 228: 5, 229: 6, 274: 7, 276: 8, 12: 9, 14: 10}
src, out = sys.argv[1], sys.argv[2]
n = 0
for name in sorted(os.listdir(src)):
    b = open(os.path.join(src, name), "rb").read()
    if len(b) < 24: continue
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"): e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"): e = ">"
    else: continue
    link = struct.unpack(e + "I", b[20:24])[0] & 0xffff
    if link not in picks: continue
    off, k = 24, 0
    while off + 16 <= len(b) and k < 200:
        _, _, incl, orig = struct.unpack(e + "IIII", b[off:off + 16])
        pkt = b[off + 16: off + 16 + incl]
        if len(pkt) < incl: break
        open(os.path.join(out, f"{name}-{k}"), "wb").write(bytes([picks[link], min(255, max(0, orig - incl))]) + pkt)
        off += 16 + incl; k += 1; n += 1
print(f"{n} packets seeded")
PY
	max_len=4096
	;;
log_line)
	i=0
	for f in ../examples/data/demo/logs/proxy.log ../crates/wiretrail-logs/tests/fixtures/*.log \
		../crates/wiretrail-logs/tests/fixtures/fuzz/*; do
		[ -f "$f" ] || continue
		while IFS= read -r line && [ $i -lt 400 ]; do
			printf '%s' "$line" >"$seeds/seed-$i"
			i=$((i + 1))
		done <"$f"
	done
	max_len=4096
	;;
*)
	echo "unknown target $target" >&2
	exit 2
	;;
esac
max_len=${WIRETRAIL_FUZZ_MAX_LEN:-$max_len}
exec cargo +nightly fuzz run "$target" "$seeds" -- \
	-max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
