#!/usr/bin/env bash
# Re-record the other proxies' datasets under examples/data/proxies/ (root,
# about 6 minutes): lab-proxy.sh per (proxy, scenario), kept only when the
# truth shows the failure the scenario claims (up to 3 tries, as
# ../record-examples.sh). Traefik's are recorded when TRAEFIK names a binary
# (build-traefik.sh).
#   examples/lab/proxies/record-proxies.sh [name...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=$HERE/../../data/proxies
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)

# name | proxy | extra environment | lab.sh flags | python check over truth.json summary `s`
SPECS=(
	"nginx-flow-split|nginx||--flow-split --duration 25 --seed 21|s['by_cause'].get('flow_split',0) >= 2"
	"nginx-refused|nginx||--refused --duration 15 --seed 22|s['by_cause'].get('refused',0) >= 3"
	"haproxy-flow-split|haproxy|WTLAB_HAPROXY_REUSE=never|--flow-split --duration 25 --seed 23|s['by_cause'].get('flow_split',0) >= 2"
	"haproxy-refused|haproxy|WTLAB_HAPROXY_HTTPLOG=1|--refused --duration 15 --seed 24|s['by_cause'].get('refused',0) >= 3"
	"caddy-flow-split|caddy||--flow-split --duration 25 --seed 25|s['by_cause'].get('flow_split',0) >= 2"
	"caddy-refused|caddy||--refused --duration 15 --seed 26|s['by_cause'].get('refused',0) >= 3"
	"traefik-flow-split|traefik||--flow-split --duration 25 --seed 27|s['by_cause'].get('flow_split',0) >= 2"
	"traefik-refused|traefik||--refused --duration 15 --seed 28|s['by_cause'].get('refused',0) >= 3"
)
want=("$@")
for spec in "${SPECS[@]}"; do
	IFS='|' read -r name proxy envs flags check <<<"$spec"
	if [ ${#want[@]} -gt 0 ] && [[ " ${want[*]} " != *" $name "* ]]; then continue; fi
	if [ "$proxy" = traefik ] && [ -z "${TRAEFIK:-}" ]; then
		echo "record: $name: skipped (TRAEFIK not set)" >&2
		continue
	fi
	ok=""
	for attempt in 1 2 3; do
		tmp=$(mktemp -d /tmp/wtlab-prx.XXXXXX)
		rmdir "$tmp"
		# shellcheck disable=SC2086
		if env $envs "$HERE/lab-proxy.sh" --proxy "$proxy" -- --out "$tmp" $flags >"$tmp.log" 2>&1 &&
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
du -sh "$DATA"/*
