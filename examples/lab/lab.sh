#!/usr/bin/env bash
# wiretrail lab: reproduce the seed's 502s for real, on one machine.
#
#   client ──► proxy ──► "switch" (Linux bridge + nftables, bridge family) ──► backend-01..03
#                                                                              (all answer for one VIP)
#
# Everything lives in network namespaces this script creates (addresses from
# 198.18.0.0/15) and removes on exit, even on failure. Run as root.
# See README.md for the scenarios; `lab.sh --help` for the flags.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TZ=UTC LC_ALL=C

usage() {
	cat <<'EOF'
usage: lab.sh --out DIR [scenario flags] [options]

scenario flags (combine freely; none = clean traffic):
  --flow-split          switch sends the 2nd data segment of a few POSTs to a random OTHER backend
  --idle-race           backends' idle timeout 1 s (proxy keeps the seed's 90 s); 8 clients send in bursts
                        1.000-1.003 s apart, so pooled connections are reused just as the backend closes them
  --refused             backend-03's port closes after a third of the run; backends close after each
                        response (no keep-alive) so the proxy keeps dialing and the switch hashes new flows to it
  --backend-reset       backends abort 12% of requests >= 6000 B mid-body (Hijack + SO_LINGER 0 => RST)
  --slow-backend        proxy gets ResponseHeaderTimeout=1s; backends delay 4% of responses by 2 s
  --client-cancel       client gives up after 1 s; backends delay 4% of responses by 2 s
  --clock-offset        afterwards shift backend-02's capture timestamps by --offset-seconds (editcap -t)
  --duplicate-capture   backend-01 captures with `tcpdump -i any` under a bridge inside the node: every packet twice
  --gzip-old-rotations  gzip all but the newest rotation of backend-01, zstd those of backend-03

options:
  --out DIR             output directory (created; must be empty or absent)
  --duration SECONDS    traffic duration (default 30)
  --workers N           load generator workers (default 4)
  --gap-min/--gap-max D per-worker pause between requests (Go durations; default 300ms / 900ms)
  --split-permille N    flow-split: chance per eligible segment, per mille (default 40)
  --split-mode M        flow-split: `second` (default: the 2nd data segment of a request, as in
                        the seed) or `any` (any full-size continuation segment; no set, fully stateless)
  --offset-seconds S    clock-offset: seconds added to backend-02's timestamps (default 2.750)
  --snaplen N           capture snap length (default 96: headers plus the start of the HTTP line)
  --seed N              seed for the load generator and backends (default: time)
  --keep-going          do not fail when the truth derivation finds no error lines
EOF
}

OUT=""
DURATION=30
WORKERS=4
GAP_MIN=300ms
GAP_MAX=900ms
SPLIT_PERMILLE=40
SPLIT_MODE=second
OFFSET_SECONDS=2.750
SNAPLEN=96
SEED=$(date +%s)
declare -A SC=()
ALL_SCENARIOS="flow-split idle-race refused backend-reset slow-backend client-cancel clock-offset duplicate-capture gzip-old-rotations"
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--gap-min) GAP_MIN=$2; shift 2 ;;
	--gap-max) GAP_MAX=$2; shift 2 ;;
	--split-permille) SPLIT_PERMILLE=$2; shift 2 ;;
	--split-mode) SPLIT_MODE=$2; shift 2 ;;
	--offset-seconds) OFFSET_SECONDS=$2; shift 2 ;;
	--snaplen) SNAPLEN=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	--keep-going) KEEP_GOING=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--*)
		name=${1#--}
		if [[ " $ALL_SCENARIOS " == *" $name "* ]]; then SC[$name]=1; shift
		else echo "lab.sh: unknown flag $1" >&2; usage >&2; exit 2; fi ;;
	*) echo "lab.sh: unexpected argument $1" >&2; exit 2 ;;
	esac
done
has() { [ -n "${SC[$1]:-}" ]; }
[ -n "$OUT" ] || { echo "lab.sh: --out DIR is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "lab.sh: must run as root (network namespaces)" >&2; exit 2; }
for t in ip bridge nft tcpdump dumpcap editcap tshark ethtool go python3 gzip zstd; do
	command -v "$t" >/dev/null || { echo "lab.sh: missing tool: $t" >&2; exit 2; }
done
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
	echo "lab.sh: $OUT exists and is not empty" >&2; exit 2
fi
mkdir -p "$OUT"/logs "$OUT"/captures/{proxy,backend-01,backend-02,backend-03}
OUT=$(cd "$OUT" && pwd)

# ---- names and addresses -----------------------------------------------------
ID=$(printf '%04x' $((RANDOM % 65536)))
P="wt${ID}"
NS_CLI=${P}-cli NS_PRX=${P}-prx NS_SW=${P}-sw
NS_BE=("${P}-be1" "${P}-be2" "${P}-be3")
NODES=(backend-01 backend-02 backend-03)
VIP=198.18.10.10
VMAC=02:00:c6:12:0a:0a          # the VIP's MAC, owned by the switch
PRX_IP=198.18.0.2 PRX_MAC=02:00:c6:12:00:02
BE_IP=(198.18.0.11 198.18.0.12 198.18.0.13)
BE_MAC=(02:00:c6:12:00:0b 02:00:c6:12:00:0c 02:00:c6:12:00:0d)
CLI_IP=198.18.1.2 PRX_CLI_IP=198.18.1.1
CREATED_NS=()

log() { printf '[lab %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
	local rc=$?
	set +e
	# Every process inside our namespaces was started by this script.
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -INT "$pid" 2>/dev/null; done
	done
	sleep 1
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	done
	for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "${BUILD_DIR:-}" ] && rm -rf "$BUILD_DIR"
	[ $rc -ne 0 ] && log "failed (exit $rc); namespaces removed"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
mkns() { ip netns add "$1"; CREATED_NS+=("$1"); nsx "$1" ip link set lo up; }
offloads_off() { # GSO/TSO would hand the switch 64 KB super-packets: keep real MTU-sized segments
	nsx "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
}

# ---- build the Go programs ---------------------------------------------------------
BUILD_DIR=$(mktemp -d /tmp/wtlab-build.XXXXXX)
log "building Go programs ($(go version | awk '{print $3}'))"
(cd "$LAB_DIR/go" && GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOCACHE="${GOCACHE:-/tmp/wtlab-gocache}" \
	go build -o "$BUILD_DIR/wtlab" .)
BIN=$BUILD_DIR/wtlab

# ---- topology ------------------------------------------------------------------------
log "creating namespaces ${P}-*"
mkns "$NS_CLI"; mkns "$NS_PRX"; mkns "$NS_SW"
for ns in "${NS_BE[@]}"; do mkns "$ns"; done

# client <-> proxy
ip -n "$NS_CLI" link add eth0 type veth peer name eth-cli netns "$NS_PRX"
ip -n "$NS_CLI" addr add $CLI_IP/24 dev eth0
ip -n "$NS_PRX" addr add $PRX_CLI_IP/24 dev eth-cli
# proxy <-> switch
ip -n "$NS_PRX" link add eth-be type veth peer name p-proxy netns "$NS_SW"
ip -n "$NS_PRX" link set eth-be address $PRX_MAC
ip -n "$NS_PRX" addr add $PRX_IP/24 dev eth-be
ip -n "$NS_PRX" link set eth-be up
# The VIP is reached on the L2 segment through the switch's virtual MAC.
ip -n "$NS_PRX" route add $VIP/32 dev eth-be
ip -n "$NS_PRX" neigh add $VIP lladdr $VMAC dev eth-be nud permanent
ip -n "$NS_SW" link add br0 type bridge
for i in 0 1 2; do
	ns=${NS_BE[$i]}
	ip -n "$ns" link add eth0 type veth peer name "p-be$((i + 1))" netns "$NS_SW"
	ip -n "$ns" link set eth0 address "${BE_MAC[$i]}"
	dev=eth0
	if [ $i = 0 ] && has duplicate-capture; then
		# A bridge inside the node with eth0 as its member (like a bond and its
		# slave): `tcpdump -i any` then records each packet on both devices.
		ip -n "$ns" link add br-node type bridge
		ip -n "$ns" link set br-node address "${BE_MAC[$i]}"
		ip -n "$ns" link set eth0 master br-node
		ip -n "$ns" link set br-node up
		dev=br-node
	fi
	ip -n "$ns" addr add "${BE_IP[$i]}/24" dev $dev
	ip -n "$ns" addr add $VIP/32 dev lo
	nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
	ip -n "$ns" link set eth0 up
	ip -n "$NS_SW" link set "p-be$((i + 1))" master br0
done
ip -n "$NS_SW" link set p-proxy master br0
for l in p-proxy p-be1 p-be2 p-be3 br0; do ip -n "$NS_SW" link set $l up; done
ip -n "$NS_CLI" link set eth0 up
ip -n "$NS_PRX" link set eth-cli up
ip -n "$NS_PRX" link set eth-be up
# Static forwarding entries: no flooding of unicast frames to other backends.
bridge -n "$NS_SW" fdb replace $PRX_MAC dev p-proxy master static
for i in 0 1 2; do bridge -n "$NS_SW" fdb replace "${BE_MAC[$i]}" dev "p-be$((i + 1))" master static; done
offloads_off "$NS_CLI" eth0; offloads_off "$NS_PRX" eth-cli; offloads_off "$NS_PRX" eth-be
for l in p-proxy p-be1 p-be2 p-be3 br0; do offloads_off "$NS_SW" $l; done
for ns in "${NS_BE[@]}"; do offloads_off "$ns" eth0; done
has duplicate-capture && offloads_off "${NS_BE[0]}" br-node

# ---- the switch: per-flow hash to one backend; flow-split strays a few segments --------
M1=${BE_MAC[0]} M2=${BE_MAC[1]} M3=${BE_MAC[2]}
SPLIT_RULES="" SPLIT_SET=""
if has flow-split; then
	# Stateless per packet as far as forwarding goes: no connection tracking
	# anywhere. The eligible segment goes, with probability SPLIT_PERMILLE/1000,
	# to one of the two OTHER backends.
	if [ "$SPLIT_MODE" = second ]; then
		# As in the seed: the 2nd data segment of a request. A segment
		# starting with "POST" puts the flow in a short-lived set; the flow's next
		# data segment (not starting with "POST") is taken out of it and marked.
		SPLIT_SET="set fresh { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 2s; }"
		SPLIT_RULES="
		ip daddr $VIP tcp dport 80 @th,256,32 == 0x504f5354 update @fresh { ip saddr . tcp sport } comment \"request-start\"
		ip daddr $VIP tcp dport 80 tcp flags & (syn|fin|rst) == 0 ip length > 100 @th,256,32 != 0x504f5354 ip saddr . tcp sport @fresh delete @fresh { ip saddr . tcp sport } meta mark set 0x2 comment \"second-segment\""
		elig="meta mark 0x2 numgen random mod 1000 < $SPLIT_PERMILLE"
	else
		# Any full-size continuation segment of a POST body.
		elig="ip daddr $VIP tcp flags & (syn|fin|rst) == 0 ip length 1500 @th,256,32 != 0x504f5354 numgen random mod 1000 < $SPLIT_PERMILLE"
	fi
	SPLIT_RULES+="
		ether daddr $M1 $elig ether daddr set numgen random mod 2 map { 0 : $M2, 1 : $M3 } counter accept comment \"split-from-backend-01\"
		ether daddr $M2 $elig ether daddr set numgen random mod 2 map { 0 : $M1, 1 : $M3 } counter accept comment \"split-from-backend-02\"
		ether daddr $M3 $elig ether daddr set numgen random mod 2 map { 0 : $M1, 1 : $M2 } counter accept comment \"split-from-backend-03\""
fi
nsx "$NS_SW" nft -f - <<EOF
table bridge wtlab {
	$SPLIT_SET
	chain steer {
		type filter hook prerouting priority -300; policy accept;
		ether daddr $VMAC ip daddr $VIP tcp dport 80 ether daddr set jhash ip saddr . tcp sport mod 3 map { 0 : $M1, 1 : $M2, 2 : $M3 } counter comment "per-flow-hash"
		$SPLIT_RULES
	}
}
EOF

# ---- captures ----------------------------------------------------------------------
CAP=$OUT/captures
start_bg() { # ns logfile cmd...  (runs in background inside ns)
	local ns=$1 lf=$2; shift 2
	ip netns exec "$ns" "$@" >>"$lf" 2>&1 &
	disown $! # cleanup() stops it by pid; no job-control chatter
}
CAPLOG=$BUILD_DIR/capture.log
if has duplicate-capture; then be1_if=any; else be1_if=eth0; fi
# backend-01: time-rotated, strftime names (tcpdump -G)
start_bg "${NS_BE[0]}" "$CAPLOG" tcpdump -Z root -U -n -i $be1_if -s "$SNAPLEN" -G 10 \
	-w "$CAP/backend-01/backend-01_%Y%m%d_%H%M%S.pcap"
# backend-02: size-rotated ring, numbered names (tcpdump -C/-W; 1 MB is tcpdump 4.99.3's smallest -C)
start_bg "${NS_BE[1]}" "$CAPLOG" tcpdump -Z root -U -n -i eth0 -s "$SNAPLEN" -C 1 -W 20 \
	-w "$CAP/backend-02/backend-02.pcap"
# backend-03: dumpcap ring buffer, pcapng, name_NNNNN_YYYYmmddHHMMSS.pcapng
start_bg "${NS_BE[2]}" "$CAPLOG" dumpcap -q -n -i eth0 -s "$SNAPLEN" -b duration:10 -b files:50 \
	-w "$CAP/backend-03/backend-03.pcapng"
# proxy: its backend-facing interface, time-rotated
start_bg "$NS_PRX" "$CAPLOG" tcpdump -Z root -U -n -i eth-be -s "$SNAPLEN" -G 15 \
	-w "$CAP/proxy/proxy-%Y%m%dT%H%M%S.pcap"
sleep 2

# ---- backends and proxy --------------------------------------------------------------
BE_ARGS=("" "" "")
for i in 0 1 2; do BE_ARGS[$i]="-node ${NODES[$i]} -seed $((SEED + i))"; done
PROXY_ARGS=()
LG_ARGS=(-workers "$WORKERS" -gap-min "$GAP_MIN" -gap-max "$GAP_MAX")
if has idle-race; then
	for i in 0 1 2; do BE_ARGS[$i]+=" -idle-timeout 1s"; done
	# All workers send together every 1.000-1.003 s: each pooled connection
	# then sits idle for about the backend's idle timeout between uses.
	LG_ARGS=(-workers 8 -burst-period-min 1000ms -burst-period-max 1003ms)
fi
if has refused; then
	for i in 0 1 2; do BE_ARGS[$i]+=" -keepalive=false"; done
	BE_ARGS[2]+=" -stop-after $((DURATION / 3))s"
fi
# The misbehaviours below are enabled on every backend: with keep-alive the
# proxy may hold only one or two connections, so a single misbehaving node
# might see no traffic at all. Which node did it is derived from the captures.
if has backend-reset; then
	for i in 0 1 2; do BE_ARGS[$i]+=" -reset-permille 120 -reset-min-body 6000"; done
fi
if has slow-backend; then
	PROXY_ARGS+=(-response-header-timeout 1s)
	for i in 0 1 2; do BE_ARGS[$i]+=" -slow-permille 40 -slow-delay 2s"; done
fi
if has client-cancel; then
	LG_ARGS+=(-timeout 1s)
	for i in 0 1 2; do BE_ARGS[$i]+=" -slow-permille 40 -slow-delay 2s"; done
fi
for i in 0 1 2; do
	# shellcheck disable=SC2086
	start_bg "${NS_BE[$i]}" "$OUT/logs/${NODES[$i]}.events.log" "$BIN" backend ${BE_ARGS[$i]} \
		-event-log "$OUT/logs/${NODES[$i]}.events.log"
done
start_bg "$NS_PRX" "$BUILD_DIR/proxy.stderr" env TZ=UTC "$BIN" proxy -listen $PRX_CLI_IP:8080 \
	-backend "http://$VIP:80" -log "$OUT/logs/proxy.log" -ndjson "$OUT/logs/proxy.ndjson" "${PROXY_ARGS[@]}"
for _ in $(seq 50); do
	nsx "$NS_CLI" bash -c "exec 3<>/dev/tcp/$PRX_CLI_IP/8080" 2>/dev/null && break
	sleep 0.1
done

# ---- traffic ---------------------------------------------------------------------------
SCEN_LIST="${!SC[*]}"
log "traffic for ${DURATION}s: scenarios: ${SCEN_LIST:-none}"
START_TS=$(date -u +%s.%N)
nsx "$NS_CLI" "$BIN" loadgen -url "http://$PRX_CLI_IP:8080/upload" -duration "${DURATION}s" -seed "$SEED" \
	-summary "$OUT/logs/loadgen.json" "${LG_ARGS[@]}" >/dev/null
sleep 3 # let late RSTs/FINs reach the captures
END_TS=$(date -u +%s.%N)
nsx "$NS_SW" nft list ruleset >"$OUT/logs/switch-nft-ruleset.txt"
for pid in $(ip netns pids "$NS_PRX"); do kill -TERM "$pid" 2>/dev/null || true; done
sleep 1
# Stop the captures cleanly (SIGINT flushes) before post-processing.
for ns in "${CREATED_NS[@]}"; do
	for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -INT "$pid" 2>/dev/null || true; done
done
sleep 2

# ---- post-processing: what operators' reality adds -------------------------------------
OFFSETS="{}"
if has clock-offset; then
	# backend-02's clock runs OFFSET_SECONDS ahead: shift every packet. Its file
	# names are numbered (-C/-W), so no name carries the wrong time.
	for f in "$CAP"/backend-02/*; do
		editcap -t "$OFFSET_SECONDS" "$f" "$f.shifted" && mv "$f.shifted" "$f"
	done
	OFFSETS="{\"backend-02\": $OFFSET_SECONDS}"
fi
COMPRESSION="{}"
if has gzip-old-rotations; then
	# Operators compress finished rotations; the newest is still being written.
	mapfile -t be1 < <(ls "$CAP"/backend-01/* | sort)
	for f in "${be1[@]:0:${#be1[@]}-1}"; do gzip -9 "$f"; done
	mapfile -t be3 < <(ls "$CAP"/backend-03/* | sort)
	for f in "${be3[@]:0:${#be3[@]}-1}"; do zstd -q --rm -19 "$f"; done
	COMPRESSION='{"backend-01": "gzip", "backend-03": "zstd"}'
fi

python3 - "$OUT/lab.json" <<EOF
import json, sys
scen = "${!SC[*]}".split()
doc = {
  "scenarios": sorted(scen),
  "seed": $SEED,
  "duration_s": $DURATION,
  "traffic_start_epoch": $START_TS,
  "traffic_end_epoch": $END_TS,
  "timezone_of_logs": "UTC",
  "snaplen": $SNAPLEN,
  "split_permille": $SPLIT_PERMILLE if "flow-split" in scen else None,
  "split_mode": "$SPLIT_MODE" if "flow-split" in scen else None,
  "vip": "$VIP", "vip_mac": "$VMAC",
  "proxy": {"ip": "$PRX_IP", "mac": "$PRX_MAC", "client_side_ip": "$PRX_CLI_IP", "hostname": "proxyhost",
            "response_header_timeout_s": 1 if "slow-backend" in scen else None},
  "client_ip": "$CLI_IP",
  "nodes": {
    "proxy":      {"role": "proxy",   "ip": "$PRX_IP", "capture": "tcpdump -i eth-be -G 15 -w proxy-%Y%m%dT%H%M%S.pcap"},
    "backend-01": {"role": "backend", "ip": "${BE_IP[0]}", "mac": "${BE_MAC[0]}",
                   "capture": "tcpdump -i $be1_if -G 10 -w backend-01_%Y%m%d_%H%M%S.pcap"},
    "backend-02": {"role": "backend", "ip": "${BE_IP[1]}", "mac": "${BE_MAC[1]}",
                   "capture": "tcpdump -i eth0 -C 1 -W 20 -w backend-02.pcap"},
    "backend-03": {"role": "backend", "ip": "${BE_IP[2]}", "mac": "${BE_MAC[2]}",
                   "capture": "dumpcap -i eth0 -b duration:10 -b files:50 -w backend-03.pcapng"},
  },
  "backend_args": {"backend-01": "${BE_ARGS[0]}", "backend-02": "${BE_ARGS[1]}", "backend-03": "${BE_ARGS[2]}"},
  "loadgen_args": "${LG_ARGS[*]}",
  "clock_offsets_applied_s": json.loads('$OFFSETS'),
  "duplicate_capture_nodes": ["backend-01"] if "duplicate-capture" in scen else [],
  "compression": json.loads('$COMPRESSION'),
}
json.dump(doc, open(sys.argv[1], "w"), indent=2)
open(sys.argv[1], "a").write("\n")
EOF
log "deriving truth from the captures"
python3 "$LAB_DIR/derive_truth.py" "$OUT" ${KEEP_GOING:+--allow-empty}
log "done: $OUT"
