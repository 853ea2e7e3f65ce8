#!/usr/bin/env bash
# Re-record the committed dataset under examples/data/ (root, ~10 minutes).
#   examples/lab/record-examples.sh [scenario...]     (default: all)
# Each dataset is recorded into a scratch directory first and only replaces
# examples/data/<name> when its truth file shows what the scenario claims
# (retried up to 3 times otherwise: the failures are random, as in the seed).
set -euo pipefail
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=$(cd "$LAB/../data" && pwd)

# name | lab.sh flags | python check over truth.json summary `s`
SPECS=(
	"demo|--flow-split --split-permille 30 --duration 40 --seed 5|3 <= s['error_lines'] <= 10 and s['by_cause'].get('flow_split',0) == s['error_lines'] and len(s['owner_nodes']) >= 2"
	"flow-split|--flow-split --duration 20 --seed 11|s['by_cause'].get('flow_split',0) >= 2"
	"idle-race|--idle-race --duration 20 --seed 12|s['by_cause'].get('idle_race',0) >= 3"
	"refused|--refused --duration 20 --seed 13|s['by_cause'].get('refused',0) >= 3"
	"backend-reset|--backend-reset --duration 30 --seed 14|s['by_cause'].get('backend_reset',0) >= 2"
	"slow-backend|--slow-backend --duration 20 --seed 15|s['by_cause'].get('proxy_abandoned',0) >= 2"
	"client-cancel|--client-cancel --duration 20 --seed 16|s['by_cause'].get('proxy_abandoned',0) >= 2"
	"clock-offset|--flow-split --clock-offset --duration 20 --seed 17|s['by_cause'].get('flow_split',0) >= 2"
	"duplicate-capture|--flow-split --duplicate-capture --duration 20 --seed 18|s['by_cause'].get('flow_split',0) >= 2"
	"gzip-old-rotations|--flow-split --gzip-old-rotations --duration 25 --seed 19|s['by_cause'].get('flow_split',0) >= 2"
)
want=("$@")
for spec in "${SPECS[@]}"; do
	IFS='|' read -r name flags check <<<"$spec"
	if [ ${#want[@]} -gt 0 ] && [[ " ${want[*]} " != *" $name "* ]]; then continue; fi
	ok=""
	for attempt in 1 2 3; do
		tmp=$(mktemp -d /tmp/wtlab-rec.XXXXXX)
		rmdir "$tmp"
		# shellcheck disable=SC2086
		if "$LAB/lab.sh" --out "$tmp" $flags --keep-going >"$tmp.log" 2>&1 &&
			python3 -c "import json,sys; s=json.load(open('$tmp/truth.json'))['summary']; sys.exit(0 if ($check) else 1)"; then
			ok=1
			break
		fi
		echo "record: $name attempt $attempt did not show the failure; retrying" >&2
		tail -5 "$tmp.log" >&2
		rm -rf "$tmp" "$tmp.log"
	done
	if [ -z "$ok" ]; then
		echo "record: $name: gave up after 3 attempts" >&2
		continue
	fi
	chmod -R u+rwX,go+rX,go-w "$tmp"
	rm -rf "${DATA:?}/$name"
	mv "$tmp" "$DATA/$name"
	rm -f "$tmp.log"
	printf 'record: %-20s %s\n' "$name" "$(python3 -c "import json; print(json.load(open('$DATA/$name/truth.json'))['summary'])")"
done
du -sh "$DATA"
