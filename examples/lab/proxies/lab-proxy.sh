#!/usr/bin/env bash
# Run the lab (../lab.sh) with another real reverse proxy in the proxy's
# place: nginx, HAProxy or Caddy from Debian, or Traefik (TRAEFIK=path to a
# binary; see README.md). Same namespaces, switch, backends, load and
# captures as lab.sh; only the program answering on 198.18.1.1:8080 and
# dialing the VIP changes, and its own logs land in OUT/logs/.
#
#   sudo examples/lab/proxies/lab-proxy.sh --proxy nginx -- --out /tmp/run --flow-split --duration 20
#
# lab.sh is not edited: it builds its Go programs with `go build -o BIN`;
# a `go` first in PATH (a shim in a temporary directory) runs the real
# `go`, then puts a wrapper at BIN that hands `BIN proxy ...` to
# start-proxy.sh and everything else (backends, load generator) to the real
# binary. lab.sh then runs its own truth derivation, which finds no Go lines
# (--keep-going); derive_truth_proxy.py derives the truth from this proxy's
# log instead and overwrites truth.json. See README.md for the lab.sh
# option that would replace the shim.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROXY=""
while [ $# -gt 0 ]; do
	case "$1" in
	--proxy) PROXY=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "lab-proxy.sh: usage: lab-proxy.sh --proxy nginx|haproxy|caddy|traefik -- LAB.SH ARGS" >&2; exit 2 ;;
	esac
done
case "$PROXY" in
nginx | haproxy | caddy) command -v "$PROXY" >/dev/null || { echo "lab-proxy.sh: $PROXY is not installed (apt-get install $PROXY)" >&2; exit 2; } ;;
traefik) [ -x "${TRAEFIK:-}" ] || { echo "lab-proxy.sh: set TRAEFIK to a traefik binary (see README.md)" >&2; exit 2; } ;;
*) echo "lab-proxy.sh: --proxy nginx|haproxy|caddy|traefik" >&2; exit 2 ;;
esac
OUT=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[ "${args[$i]}" = --out ] && OUT=${args[$((i + 1))]}
done
[ -n "$OUT" ] || { echo "lab-proxy.sh: lab.sh needs --out DIR" >&2; exit 2; }

REAL_GO=$(command -v go) || { echo "lab-proxy.sh: go not found" >&2; exit 2; }
SHIM=$(mktemp -d /tmp/wtlab-proxy-shim.XXXXXX)
trap 'rm -rf "$SHIM"' EXIT
cat >"$SHIM/go" <<SH
#!/usr/bin/env bash
# lab-proxy.sh's shim: the real go, then a wrapper at the -o output.
"$REAL_GO" "\$@" || exit \$?
out=""
prev=""
for a in "\$@"; do [ "\$prev" = -o ] && out=\$a; prev=\$a; done
if [ "\${1:-}" = build ] && [ -n "\$out" ]; then
	mv "\$out" "\$out.real"
	cat >"\$out" <<'WRAP'
#!/usr/bin/env bash
if [ "\${1:-}" = proxy ]; then shift; exec "$HERE/start-proxy.sh" "$PROXY" "\$@"; fi
exec "\$0.real" "\$@"
WRAP
	chmod +x "\$out"
fi
SH
chmod +x "$SHIM/go"
export WTLAB_TRAEFIK=${TRAEFIK:-}
PATH="$SHIM:$PATH" "$HERE/../lab.sh" "${args[@]}" --keep-going
python3 "$HERE/derive_truth_proxy.py" "$OUT" --proxy "$PROXY"
# lab.sh's empty Go log and the proxies' runtime files are not part of the dataset.
rm -rf "$OUT/.run"
[ -s "$OUT/logs/proxy.log" ] || rm -f "$OUT/logs/proxy.log"
[ -s "$OUT/logs/proxy.ndjson" ] || rm -f "$OUT/logs/proxy.ndjson"
