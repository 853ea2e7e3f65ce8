#!/usr/bin/env bash
# Smoke test of the lab (~2 minutes): a short flow-split run end to end (the
# seed's failure; .ci/run then scores wiretrail on it), and a short
# middlebox-reset run (a routed stateful firewall that forgets idle
# connections) whose truth must show the firewall's RST.
# Prints `SKIP: <reason>` and exits 0 where it cannot run (not root, no
# network namespaces, a tool or Go >= 1.26 missing) -- unless CI=true (or 1)
# or WIRETRAIL_REQUIRE_ALL is set to anything but 0 (as .ci/run does), then
# that is a failure (the rule of wiretrail_testsupport::require_all). Exits
# non-zero when the lab ran but did not produce proxy errors, rotated captures
# and a consistent truth file.
#   examples/lab/ci-smoke.sh [OUT_DIR]      (default: a temporary directory, removed)
# OUT_DIR receives the flow-split run; the middlebox run always goes to a
# temporary directory that is removed.
set -uo pipefail
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() {
	local required=""
	case "${CI:-}" in [Tt][Rr][Uu][Ee] | 1) required=1 ;; esac
	case "${WIRETRAIL_REQUIRE_ALL:-0}" in "" | 0) ;; *) required=1 ;; esac
	if [ -n "$required" ]; then
		echo "FAIL: lab smoke test cannot run (CI=true / WIRETRAIL_REQUIRE_ALL=1 forbid skipping): $*"
		exit 1
	fi
	echo "SKIP: lab smoke test: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, veth, nftables)"
for t in ip bridge nft ss tcpdump dumpcap editcap capinfos tshark ethtool python3 gzip zstd; do
	command -v "$t" >/dev/null 2>&1 || skip "missing tool: $t"
done
# shellcheck source=find-go.sh
. "$LAB/find-go.sh"
wtlab_find_go >/dev/null 2>&1 || skip "$(wtlab_find_go 2>&1)"
probe=wtsmoke$$
if ! ip netns add "$probe" 2>/dev/null; then skip "cannot create a network namespace"; fi
trap 'ip netns del "$probe" 2>/dev/null' EXIT
ip -n "$probe" link add br0 type bridge 2>/dev/null || skip "cannot create a bridge in a namespace"
ip -n "$probe" link add v0 type veth peer name v1 2>/dev/null || skip "cannot create veth pairs"
ip netns exec "$probe" nft add table bridge t 2>/dev/null || skip "nftables bridge family unavailable"
ip netns exec "$probe" nft add table inet f 2>/dev/null &&
	ip netns exec "$probe" nft add chain inet f c '{ type filter hook forward priority 0; }' 2>/dev/null &&
	ip netns exec "$probe" nft add rule inet f c ct state invalid reject with tcp reset 2>/dev/null ||
	skip "nftables conntrack / reject unavailable"
ip netns del "$probe"
trap - EXIT

if [ $# -ge 1 ]; then OUT=$1; KEEP=1; else OUT=$(mktemp -d /tmp/wtlab-smoke.XXXXXX); rmdir "$OUT"; KEEP=""; fi
MB=$(mktemp -d /tmp/wtlab-smoke-mb.XXXXXX)
rmdir "$MB"
fail() {
	echo "FAIL: lab smoke test: $*"
	[ -n "$KEEP" ] || rm -rf "$OUT"
	rm -rf "$MB"
	exit 1
}

echo "lab smoke: flow-split, 25 s of traffic -> $OUT"
# A high split rate so a short run surely shows the failure.
timeout 180 "$LAB/lab.sh" --out "$OUT" --flow-split --split-permille 40 --duration 25 ||
	fail "lab.sh --flow-split exited with $?"
python3 - "$OUT" <<'PY' || fail "flow-split checks failed (see above)"
import json, os, sys
out = sys.argv[1]
errs = []
log = open(os.path.join(out, "logs/proxy.log")).read().splitlines()
lines = [l for l in log if "http: proxy error:" in l]
if not lines: errs.append("no proxy error lines in logs/proxy.log")
nd = [json.loads(l) for l in open(os.path.join(out, "logs/proxy.ndjson"))]
if len(nd) != len(log): errs.append(f"proxy.ndjson has {len(nd)} docs for {len(log)} log lines")
if nd and nd[0].get("agent", {}).get("type") != "filebeat": errs.append("ndjson docs are not Filebeat-shaped")
for node in ("proxy", "backend-01", "backend-02", "backend-03"):
    files = os.listdir(os.path.join(out, "captures", node))
    if not files: errs.append(f"no captures for {node}")
if len(os.listdir(os.path.join(out, "captures", "backend-01"))) < 2:
    errs.append("backend-01 did not rotate (-G 10)")
lab = json.load(open(os.path.join(out, "lab.json")))
if not lab.get("go", {}).get("version", "").startswith("go version go1.2"):
    errs.append(f"lab.json does not record the Go version: {lab.get('go')}")
t = json.load(open(os.path.join(out, "truth.json")))
s = t["summary"]
if s["error_lines"] != len(lines): errs.append("truth.json does not cover every error line")
if s["by_cause"].get("flow_split", 0) < 1: errs.append(f"no flow_split derived from captures: {s['by_cause']}")
for e in t["errors"]:
    if e["cause"] == "flow_split" and not (e["owner_node"] and e["stray_nodes"]):
        errs.append(f"flow_split without owner/stray: line {e['line']}")
print(f"lab smoke: {len(lines)} proxy errors; truth {s['by_cause']}; owners {s['owner_nodes']}; "
      f"strays {s['stray_nodes']}; built with {lab['go']['version']}")
for e in errs: print("  -", e)
sys.exit(1 if errs else 0)
PY

echo "lab smoke: middlebox-reset, 20 s of traffic -> $MB"
timeout 180 "$LAB/lab.sh" --out "$MB" --middlebox-reset --duration 20 ||
	fail "lab.sh --middlebox-reset exited with $?"
python3 - "$MB" <<'PY' || fail "middlebox-reset checks failed (see above)"
import json, os, sys
out = sys.argv[1]
errs = []
t = json.load(open(os.path.join(out, "truth.json")))
s = t["summary"]
mb = [e for e in t["errors"] if e["cause"] == "middlebox_reset"]
if not mb: errs.append(f"no middlebox_reset derived from captures: {s['by_cause']}")
for e in mb:
    if not e["owner_node"]: errs.append(f"middlebox_reset without owner: line {e['line']}")
    if "ttl" not in e["middlebox"]["differs"]:
        errs.append(f"line {e['line']}: the firewall's RST does not differ in TTL: {e['middlebox']}")
    if any(x["node"] != "proxy" and "RST" in x["flags"] and x["dir"] == "vip->proxy"
           for x in e["evidence"]):
        errs.append(f"line {e['line']}: a backend capture holds the RST the proxy got")
print(f"lab smoke: middlebox-reset: {s['error_lines']} proxy errors; truth {s['by_cause']}; "
      f"owners {s['owner_nodes']}")
for e in errs: print("  -", e)
sys.exit(1 if errs else 0)
PY
rm -rf "$MB"
leftover=$(ip netns list | grep -c '^wt[0-9a-f]\{4\}-' || true)
[ "$leftover" = 0 ] || echo "note: $leftover wt????-* namespaces exist (another lab run in progress?)"
echo "PASS: lab smoke test"
[ -n "$KEEP" ] || rm -rf "$OUT"
