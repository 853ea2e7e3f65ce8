#!/usr/bin/env bash
# Re-record the committed dataset under examples/data/ (root, ~15 minutes).
#   examples/lab/record-examples.sh [scenario...]     (default: all)
# Each dataset is recorded into a scratch directory first and only replaces
# examples/data/<name> when its truth file shows what the scenario claims
# (retried up to 3 times otherwise: the failures are random, as in the seed).
set -euo pipefail
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=$(cd "$LAB/../data" && pwd)

# name | lab.sh flags | python check over truth.json `t` and its summary `s`
# (every dataset must also stay under 1 MB)
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
	"middlebox-reset|--middlebox-reset --duration 26 --seed 21|s['by_cause'].get('middlebox_reset',0) >= 3 and all(e['cause'] == 'middlebox_reset' and 'ttl' in e['middlebox']['differs'] for e in t['errors'])"
	"backend-crash|--backend-crash --duration 24 --seed 22|s['by_cause'].get('backend_state_lost',0) >= 3 and {e['owner_node'] for e in t['errors'] if e['cause'] == 'backend_state_lost'} == {'backend-02'} and any(x['kind'] == 'many_connections_to_one_node_failed' and x['node'] == 'backend-02' for x in t['systemic_events'])"
	"pmtu-blackhole|--pmtu-blackhole --duration 16 --seed 23|s['by_cause'].get('pmtu_blackhole',0) >= 3 and s['by_cause'].get('pmtu_blackhole',0) >= s['error_lines'] - 1 and all(e['owner_node'] == 'backend-03' and e['pmtu']['icmp_frag_needed_at_proxy'] == 0 for e in t['errors'] if e['cause'] == 'pmtu_blackhole')"
	"syn-drop|--syn-drop --duration 16 --seed 24|s['by_cause'].get('connect_timeout',0) >= 3 and s['by_cause'].get('connect_timeout',0) >= s['error_lines'] - 1 and s['owner_nodes'] == {'backend-01': s['by_cause']['connect_timeout']}"
	"accept-queue|--accept-queue --duration 16 --seed 25|sum(1 for e in t['errors'] if e['cause'] == 'accept_queue_overflow' and e['accept_queue']['variant'] == 'synack_repeated') >= 1 and s['by_cause'].get('accept_queue_overflow',0) >= 3"
	"accept-queue-abort|--accept-queue --abort-on-overflow --duration 16 --seed 26|sum(1 for e in t['errors'] if e['cause'] == 'accept_queue_overflow' and e['accept_queue']['variant'] == 'rst_after_handshake') >= 3"
	"max-requests|--max-requests --duration 20 --seed 27|s['by_cause'].get('max_requests_close',0) >= 3 and t.get('requests_per_connection', {}).get('responses_before_backend_close') == 10"
	"ecmp-rehash|--ecmp-rehash --duration 24 --seed 28|s['by_cause'].get('flow_split',0) >= 3 and sum(1 for x in t['systemic_events'] if x['kind'] == 'flows_moved_to_another_node') >= 1"
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
			python3 -c "import json,sys; t=json.load(open('$tmp/truth.json')); s=t['summary']; sys.exit(0 if ($check) else 1)" &&
			[ "$(du -sb "$tmp" | cut -f1)" -lt 1000000 ]; then
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
