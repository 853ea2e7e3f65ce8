#!/usr/bin/env bash
# wiretrail lab: reproduce the seed's 502s for real, on one machine.
#
#   client ──► proxy ──► "switch" (Linux bridge + nftables, bridge family) ──► backend-01..03
#                                                                              (all answer for one VIP)
#   (--middlebox-reset puts a routed, stateful firewall between proxy and switch;
#    --ecmp-rehash routes the VIP over a multipath route whose nexthops are the backends)
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
  --middlebox-reset     a routed stateful firewall between proxy and switch forgets connections idle for
                        --fw-timeout s (conntrack) and answers their next segment with a TCP RST
                        (the proxy's pool keeps idle connections 90 s; load comes in pulses)
  --backend-crash       --target node "crashes" at --crash-at: its outgoing FIN/RST are dropped, the server is
                        killed and its sockets destroyed; after --crash-dark s the drop is lifted, after
                        --crash-down s more a new server process starts on the same port
  --pmtu-blackhole      the switch port toward --target has MTU --pmtu-mtu: full-size frames are dropped
                        silently (no ICMP); the client gives up after --client-timeout (context canceled)
  --syn-drop            --target drops incoming SYNs (after its capture saw them); backends without
                        keep-alive so the proxy keeps dialing; proxy Dialer.Timeout --dial-timeout
  --accept-queue        --target listens with backlog --backlog and accepts slowly (one connection per
                        --accept-delay; optionally not at all for --accept-pause every --accept-pause-every);
                        12 clients send together, without keep-alive; --abort-on-overflow sets
                        net.ipv4.tcp_abort_on_overflow=1 on it (RST instead of silence)
  --max-requests        backends close a keep-alive connection --close-delay after its
                        --requests-per-conn-th response, without `Connection: close`; requests ms apart
  --ecmp-rehash         the proxy reaches the VIP over a kernel multipath route (nexthops = the backends,
                        L4 hash); at 1/3 of the run backend-03's nexthop is removed, at 2/3 put back

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
  --target NODE         node of backend-crash/pmtu-blackhole/syn-drop/accept-queue (default per scenario)
  --fw-timeout S        middlebox-reset: conntrack established timeout on the firewall (default 5)
  --crash-at S          backend-crash: seconds into the traffic (default: a third of the run)
  --crash-dark S        backend-crash: seconds the node's FIN/RST stay dropped (default 2)
  --crash-down S        backend-crash: further seconds until the new server process (default 3)
  --pmtu-mtu N          pmtu-blackhole: MTU of the switch port toward --target (default 1400)
  --client-timeout D    client gives up after D (Go duration; default 30s, client-cancel 1s,
                        pmtu-blackhole 2s, accept-queue 3s)
  --dial-timeout D      proxy Dialer.Timeout (seed: 10s; syn-drop default 3s)
  --proxy-syn-retries N net.ipv4.tcp_syn_retries in the proxy's namespace (kernel gives up on connect)
  --backlog N           accept-queue: listen(2) backlog of --target (default 2)
  --accept-delay D      accept-queue: the accept loop sleeps D before every accept (default 1500ms)
  --accept-pause D / --accept-pause-every D   accept-queue: stall length / period (default 0s / 6s)
  --abort-on-overflow   accept-queue: net.ipv4.tcp_abort_on_overflow=1 on --target
  --requests-per-conn N max-requests: responses per connection (default 10)
  --close-delay D       max-requests: close this long after the last response (default 15ms)
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
ARGV=("$@")
TARGET=""
FW_TIMEOUT=5
CRASH_AT="" CRASH_DARK=2 CRASH_DOWN=3
PMTU_MTU=1400
CLIENT_TIMEOUT="" DIAL_TIMEOUT="" PROXY_SYN_RETRIES=""
BACKLOG=2 ACCEPT_PAUSE=0s ACCEPT_PAUSE_EVERY=6s ACCEPT_DELAY=1500ms ABORT_ON_OVERFLOW=0
MAX_REQUESTS=10 MAX_REQUESTS_CLOSE_DELAY=15ms
declare -A SC=()
ALL_SCENARIOS="flow-split idle-race refused backend-reset slow-backend client-cancel clock-offset duplicate-capture gzip-old-rotations middlebox-reset backend-crash pmtu-blackhole syn-drop accept-queue max-requests ecmp-rehash"
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
	--target) TARGET=$2; shift 2 ;;
	--fw-timeout) FW_TIMEOUT=$2; shift 2 ;;
	--crash-at) CRASH_AT=$2; shift 2 ;;
	--crash-dark) CRASH_DARK=$2; shift 2 ;;
	--crash-down) CRASH_DOWN=$2; shift 2 ;;
	--pmtu-mtu) PMTU_MTU=$2; shift 2 ;;
	--client-timeout) CLIENT_TIMEOUT=$2; shift 2 ;;
	--dial-timeout) DIAL_TIMEOUT=$2; shift 2 ;;
	--proxy-syn-retries) PROXY_SYN_RETRIES=$2; shift 2 ;;
	--backlog) BACKLOG=$2; shift 2 ;;
	--accept-pause) ACCEPT_PAUSE=$2; shift 2 ;;
	--accept-pause-every) ACCEPT_PAUSE_EVERY=$2; shift 2 ;;
	--accept-delay) ACCEPT_DELAY=$2; shift 2 ;;
	--abort-on-overflow) ABORT_ON_OVERFLOW=1; shift ;;
	--requests-per-conn) MAX_REQUESTS=$2; shift 2 ;;
	--close-delay) MAX_REQUESTS_CLOSE_DELAY=$2; shift 2 ;;
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
for t in ip bridge nft ss tcpdump dumpcap editcap capinfos tshark ethtool python3 gzip zstd; do
	command -v "$t" >/dev/null || { echo "lab.sh: missing tool: $t" >&2; exit 2; }
done
# shellcheck source=find-go.sh
. "$LAB_DIR/find-go.sh"
GO=$(wtlab_find_go) || { echo "lab.sh: cannot build the Go programs" >&2; exit 2; }
# Scenarios that act on one backend: which one.
n_single=0
for x in backend-crash pmtu-blackhole syn-drop accept-queue; do has $x && n_single=$((n_single + 1)); done
[ $n_single -le 1 ] || { echo "lab.sh: combine at most one of --backend-crash --pmtu-blackhole --syn-drop --accept-queue" >&2; exit 2; }
if [ -z "$TARGET" ]; then
	if has backend-crash || has accept-queue; then TARGET=backend-02
	elif has pmtu-blackhole; then TARGET=backend-03
	else TARGET=backend-01; fi
fi
case "$TARGET" in backend-01) TI=0 ;; backend-02) TI=1 ;; backend-03) TI=2 ;;
	*) echo "lab.sh: --target must be backend-01, backend-02 or backend-03" >&2; exit 2 ;; esac
if has middlebox-reset && has ecmp-rehash; then
	echo "lab.sh: --middlebox-reset and --ecmp-rehash change the proxy's route differently; pick one" >&2; exit 2
fi
[ -n "$CRASH_AT" ] || CRASH_AT=$((DURATION / 3))
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
UP_MAC=$PRX_MAC                 # the MAC the switch sees on its uplink port p-proxy
NS_FW="" PRX_NET="" FW_PRX_IP="" FW_PRX_MAC="" FW_SW_IP="" FW_SW_MAC=""
if has middlebox-reset; then
	# A routed firewall between proxy and switch: the proxy lives in its own
	# subnet, so every packet between it and the backends crosses one L3 hop.
	NS_FW=${P}-fw
	PRX_IP=198.18.2.2 PRX_MAC=02:00:c6:12:02:02
	PRX_NET=198.18.2.0/24
	FW_PRX_IP=198.18.2.1 FW_PRX_MAC=02:00:c6:12:02:01
	FW_SW_IP=198.18.0.1 FW_SW_MAC=02:00:c6:12:00:01
	UP_MAC=$FW_SW_MAC
fi
CREATED_NS=()
BE_ROUTE_TO_PROXY=()

log() { printf '[lab %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
	local rc=$?
	set +e
	[ -n "${TIMELINE_PID:-}" ] && kill "$TIMELINE_PID" 2>/dev/null
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
GO_VERSION=$(GOTOOLCHAIN=local "$GO" version)
log "building Go programs with $GO ($GO_VERSION)"
(cd "$LAB_DIR/go" && GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
	GOCACHE="${GOCACHE:-/tmp/wtlab-gocache}" "$GO" build -o "$BUILD_DIR/wtlab" .)
BIN=$BUILD_DIR/wtlab

# ---- topology ------------------------------------------------------------------------
log "creating namespaces ${P}-*"
mkns "$NS_CLI"; mkns "$NS_PRX"; mkns "$NS_SW"
for ns in "${NS_BE[@]}"; do mkns "$ns"; done
[ -z "$NS_FW" ] || mkns "$NS_FW"

# client <-> proxy
ip -n "$NS_CLI" link add eth0 type veth peer name eth-cli netns "$NS_PRX"
ip -n "$NS_CLI" addr add $CLI_IP/24 dev eth0
ip -n "$NS_PRX" addr add $PRX_CLI_IP/24 dev eth-cli
if [ -z "$NS_FW" ]; then
	# proxy <-> switch
	ip -n "$NS_PRX" link add eth-be type veth peer name p-proxy netns "$NS_SW"
	ip -n "$NS_PRX" link set eth-be address $PRX_MAC
	ip -n "$NS_PRX" addr add $PRX_IP/24 dev eth-be
	ip -n "$NS_PRX" link set eth-be up
	if has ecmp-rehash; then
		# The VIP over a kernel multipath route, one nexthop per backend,
		# hashed on the 5-tuple (policy 1: L4). The backends answer ARP for
		# their own addresses; the switch just forwards by MAC.
		nsx "$NS_PRX" sysctl -qw net.ipv4.fib_multipath_hash_policy=1
	else
		# The VIP is reached on the L2 segment through the switch's virtual MAC.
		ip -n "$NS_PRX" route add $VIP/32 dev eth-be
		ip -n "$NS_PRX" neigh add $VIP lladdr $VMAC dev eth-be nud permanent
	fi
else
	# proxy <-> firewall <-> switch. The firewall routes; it reaches the VIP
	# through the switch's virtual MAC, as the proxy does without it.
	ip -n "$NS_PRX" link add eth-be type veth peer name eth-prx netns "$NS_FW"
	ip -n "$NS_PRX" link set eth-be address $PRX_MAC
	ip -n "$NS_PRX" addr add $PRX_IP/24 dev eth-be
	ip -n "$NS_PRX" link set eth-be up
	ip -n "$NS_PRX" route add $VIP/32 via $FW_PRX_IP dev eth-be
	ip -n "$NS_FW" link set eth-prx address $FW_PRX_MAC
	ip -n "$NS_FW" addr add $FW_PRX_IP/24 dev eth-prx
	ip -n "$NS_FW" link add eth-sw type veth peer name p-proxy netns "$NS_SW"
	ip -n "$NS_FW" link set eth-sw address $FW_SW_MAC
	ip -n "$NS_FW" addr add $FW_SW_IP/24 dev eth-sw
	ip -n "$NS_FW" link set eth-prx up
	ip -n "$NS_FW" link set eth-sw up
	ip -n "$NS_FW" route add $VIP/32 dev eth-sw
	ip -n "$NS_FW" neigh add $VIP lladdr $VMAC dev eth-sw nud permanent
	offloads_off "$NS_FW" eth-prx; offloads_off "$NS_FW" eth-sw
fi
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
	[ -z "$NS_FW" ] || BE_ROUTE_TO_PROXY=("${BE_ROUTE_TO_PROXY[@]}" "$ns:$dev")
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
bridge -n "$NS_SW" fdb replace $UP_MAC dev p-proxy master static
for i in 0 1 2; do bridge -n "$NS_SW" fdb replace "${BE_MAC[$i]}" dev "p-be$((i + 1))" master static; done
offloads_off "$NS_CLI" eth0; offloads_off "$NS_PRX" eth-cli; offloads_off "$NS_PRX" eth-be
for l in p-proxy p-be1 p-be2 p-be3 br0; do offloads_off "$NS_SW" $l; done
for ns in "${NS_BE[@]}"; do offloads_off "$ns" eth0; done
has duplicate-capture && offloads_off "${NS_BE[0]}" br-node
# Backends reach the proxy's own subnet through the firewall.
for x in "${BE_ROUTE_TO_PROXY[@]}"; do ip -n "${x%%:*}" route add $PRX_NET via $FW_SW_IP dev "${x#*:}"; done
if has ecmp-rehash; then
	ECMP_ALL="nexthop via ${BE_IP[0]} dev eth-be nexthop via ${BE_IP[1]} dev eth-be nexthop via ${BE_IP[2]} dev eth-be"
	ECMP_DRAIN="nexthop via ${BE_IP[0]} dev eth-be nexthop via ${BE_IP[1]} dev eth-be"
	# shellcheck disable=SC2086
	ip -n "$NS_PRX" route add $VIP/32 $ECMP_ALL
fi
if has pmtu-blackhole; then
	# A smaller MTU on the switch port toward one backend (a jumbo/overlay
	# mismatch): the bridge drops every larger frame without a word; the
	# backend's own MTU stays 1500, so it still advertises MSS 1460.
	ip -n "$NS_SW" link set "p-be$((TI + 1))" mtu "$PMTU_MTU"
fi
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

# ---- the firewall: stateful, with a short memory -------------------------------------
if has middlebox-reset; then
	# Conntrack forgets an established connection after FW_TIMEOUT s without
	# a packet (a cloud LB's or firewall's idle timer, shortened), does not
	# pick up connections mid-stream (tcp_loose=0), and whatever it does not
	# know is INVALID: answered with a TCP RST in the backend's name
	# (nf_reject builds it from the segment: seq = its ACK, IP ID 0, TTL 64,
	# while the backend's own packets reach the proxy with TTL 63).
	nsx "$NS_FW" sysctl -qw net.ipv4.ip_forward=1 \
		net.netfilter.nf_conntrack_tcp_timeout_established="$FW_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_loose=0
	nsx "$NS_FW" nft -f - <<EOF
table inet fw {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related counter accept comment "known-connection"
		ct state new ip saddr $PRX_NET ip daddr $VIP tcp dport 80 tcp flags & (syn|ack|fin|rst) == syn counter accept comment "new-connection"
		ct state invalid counter reject with tcp reset comment "unknown-connection-reset"
		counter comment "dropped-other"
	}
}
EOF
fi
if has syn-drop; then
	# The node's firewall drops new connections' SYNs. Its capture still
	# records them: packet taps see ingress before netfilter.
	nsx "${NS_BE[$TI]}" nft -f - <<EOF
table inet syndrop {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 80 tcp flags & (syn|ack) == syn counter drop comment "drop-syn"
	}
}
EOF
fi
[ -z "$PROXY_SYN_RETRIES" ] || nsx "$NS_PRX" sysctl -qw net.ipv4.tcp_syn_retries="$PROXY_SYN_RETRIES"
if has accept-queue && [ "$ABORT_ON_OVERFLOW" = 1 ]; then
	nsx "${NS_BE[$TI]}" sysctl -qw net.ipv4.tcp_abort_on_overflow=1
fi

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
if has middlebox-reset; then
	# Load in pulses: the pool grows to ~8 connections in each 1 s busy phase;
	# in the 7 s quiet phase two workers reuse the same few (LIFO pool) and
	# the rest idle past the firewall's timer, still within the proxy's 90 s.
	LG_ARGS=(-workers 8 -gap-min "$GAP_MIN" -gap-max "$GAP_MAX" -pulse-period 8s -pulse-on 1s -pulse-base-workers 2)
fi
if has backend-crash; then
	# 12 workers sending together every 1.5-2 s: the proxy's pool holds ~12
	# connections, all in use, about a third of them on the node that crashes.
	LG_ARGS=(-workers 12 -burst-period-min 1500ms -burst-period-max 2000ms)
fi
if has pmtu-blackhole; then
	# Every request dials (no keep-alive), so the switch's flow hash keeps
	# sending some to the node behind the small MTU; the client gives up.
	for i in 0 1 2; do BE_ARGS[$i]+=" -keepalive=false"; done
	CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-2s}
fi
if has syn-drop; then
	# Every request dials (no keep-alive), a third of the dials go to the node.
	for i in 0 1 2; do BE_ARGS[$i]+=" -keepalive=false"; done
	DIAL_TIMEOUT=${DIAL_TIMEOUT:-3s}
fi
if has accept-queue; then
	for i in 0 1 2; do BE_ARGS[$i]+=" -keepalive=false"; done
	BE_ARGS[$TI]+=" -backlog $BACKLOG -accept-pause $ACCEPT_PAUSE -accept-pause-every $ACCEPT_PAUSE_EVERY -accept-delay $ACCEPT_DELAY"
	# 12 clients dialing together: about four SYNs reach the node at once, so
	# some are admitted while the queue still has room and their handshake
	# ACKs find it full (the kernel drops the ACK and repeats its SYN-ACK).
	LG_ARGS=(-workers 12 -burst-period-min 1500ms -burst-period-max 2000ms)
	CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-3s}
fi
if has ecmp-rehash; then
	# 12 workers sending together: ~12 pooled connections spread over the
	# three nexthops, all in use when the route changes.
	LG_ARGS=(-workers 12 -burst-period-min 1500ms -burst-period-max 2000ms)
fi
if has max-requests; then
	for i in 0 1 2; do BE_ARGS[$i]+=" -max-requests $MAX_REQUESTS -max-requests-close-delay $MAX_REQUESTS_CLOSE_DELAY"; done
	# Requests milliseconds apart (smaller bodies keep the captures small).
	LG_ARGS=(-workers 2 -gap-min 20ms -gap-max 150ms -max-body 3000)
fi
[ -z "$CLIENT_TIMEOUT" ] || LG_ARGS+=(-timeout "$CLIENT_TIMEOUT")
[ -z "$DIAL_TIMEOUT" ] || PROXY_ARGS+=(-dial-timeout "$DIAL_TIMEOUT")
BE_PID=("" "" "")
start_backend() { # index
	local i=$1
	# shellcheck disable=SC2086
	start_bg "${NS_BE[$i]}" "$OUT/logs/${NODES[$i]}.events.log" "$BIN" backend ${BE_ARGS[$i]} \
		-event-log "$OUT/logs/${NODES[$i]}.events.log"
	BE_PID[$i]=$!
}
for i in 0 1 2; do start_backend $i; done
start_bg "$NS_PRX" "$BUILD_DIR/proxy.stderr" env TZ=UTC "$BIN" proxy -listen $PRX_CLI_IP:8080 \
	-backend "http://$VIP:80" -log "$OUT/logs/proxy.log" -ndjson "$OUT/logs/proxy.ndjson" "${PROXY_ARGS[@]}"
for _ in $(seq 50); do
	nsx "$NS_CLI" bash -c "exec 3<>/dev/tcp/$PRX_CLI_IP/8080" 2>/dev/null && break
	sleep 0.1
done

# ---- what happens during the run (backend-crash, ecmp-rehash) ---------------------------
EVENTS=$OUT/logs/lab-events.log
: >"$EVENTS"
event() { printf '%s %s\n' "$(date -u +%s.%N)" "$*" >>"$EVENTS"; log "event: $*"; }
timeline() {
	if has backend-crash; then
		local ns=${NS_BE[$TI]}
		sleep "$CRASH_AT"
		# The host dies: nothing it would still say (FIN, RST) leaves it, and
		# its kernel's socket state is gone (killed process, sockets destroyed).
		nsx "$ns" nft -f - <<EOF
table inet crash {
	chain output {
		type filter hook output priority filter; policy accept;
		tcp sport 80 tcp flags & (fin|rst) != 0 counter drop comment "crash-silence"
	}
}
EOF
		event "backend-crash $TARGET: outgoing FIN/RST dropped"
		kill -KILL "${BE_PID[$TI]}"
		event "backend-crash $TARGET: server pid ${BE_PID[$TI]} killed"
		sleep 0.2
		nsx "$ns" ss -tK '( sport = :80 )' >/dev/null
		event "backend-crash $TARGET: its remaining sockets destroyed ($(nsx "$ns" ss -tan '( sport = :80 )' | tail -n +2 | wc -l) left)"
		sleep "$CRASH_DARK"
		nsx "$ns" nft list table inet crash >"$OUT/logs/crash-nft-ruleset.txt"
		nsx "$ns" nft delete table inet crash
		event "backend-crash $TARGET: back on the network (no socket, no listener: the kernel answers RST)"
		sleep "$CRASH_DOWN"
		start_backend "$TI"
		event "backend-crash $TARGET: new server pid ${BE_PID[$TI]} on the same port"
	fi
	if has ecmp-rehash; then
		sleep $((DURATION / 3))
		# shellcheck disable=SC2086
		ip -n "$NS_PRX" route replace $VIP/32 $ECMP_DRAIN
		event "ecmp-rehash: nexthop ${BE_IP[2]} (backend-03) removed from the route to $VIP"
		sleep $((DURATION / 3))
		# shellcheck disable=SC2086
		ip -n "$NS_PRX" route replace $VIP/32 $ECMP_ALL
		event "ecmp-rehash: nexthop ${BE_IP[2]} (backend-03) added back"
	fi
}

# ---- traffic ---------------------------------------------------------------------------
SCEN_LIST="${!SC[*]}"
log "traffic for ${DURATION}s: scenarios: ${SCEN_LIST:-none}"
START_TS=$(date -u +%s.%N)
timeline &
TIMELINE_PID=$!
nsx "$NS_CLI" "$BIN" loadgen -url "http://$PRX_CLI_IP:8080/upload" -duration "${DURATION}s" -seed "$SEED" \
	-summary "$OUT/logs/loadgen.json" "${LG_ARGS[@]}" >/dev/null
wait "$TIMELINE_PID"
TIMELINE_PID=""
sleep 3 # let late RSTs/FINs reach the captures
END_TS=$(date -u +%s.%N) # every capture still runs now (derive_truth.py relies on it)
nsx "$NS_SW" nft list ruleset >"$OUT/logs/switch-nft-ruleset.txt"
[ -z "$NS_FW" ] || nsx "$NS_FW" nft list ruleset >"$OUT/logs/firewall-nft-ruleset.txt"
if has syn-drop; then nsx "${NS_BE[$TI]}" nft list ruleset >"$OUT/logs/$TARGET-nft-ruleset.txt"; fi
if has ecmp-rehash; then ip -n "$NS_PRX" route show $VIP/32 >"$OUT/logs/proxy-route-at-end.txt"; fi
if has accept-queue; then
	# ListenOverflows / ListenDrops: the kernel's own count of what it dropped.
	nsx "${NS_BE[$TI]}" nstat -asz TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop \
		TcpExtTCPReqQFullDoCookies TcpExtSyncookiesSent >"$OUT/logs/$TARGET-nstat.txt" 2>&1 || true
fi
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

SINGLE=""
for x in backend-crash pmtu-blackhole syn-drop accept-queue; do has $x && SINGLE=$x; done
python3 - "$OUT/lab.json" "$EVENTS" "${ARGV[@]}" <<EOF
import json, sys
scen = "${!SC[*]}".split()
argv = sys.argv[3:]
events = []
for line in open(sys.argv[2]):
    t, what = line.rstrip("\n").split(" ", 1)
    events.append({"epoch": float(t), "what": what})
def dur_s(d):  # Go duration (ms/s) -> seconds
    return None if not d else float(d[:-2]) / 1000 if d.endswith("ms") else float(d[:-1])
doc = {
  "scenarios": sorted(scen),
  "argv": argv,
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
            "response_header_timeout_s": 1 if "slow-backend" in scen else None,
            "dial_timeout_s": dur_s("$DIAL_TIMEOUT") or 10.0,
            "tcp_syn_retries": int("$PROXY_SYN_RETRIES") if "$PROXY_SYN_RETRIES" else None,
            "route_to_vip": "multipath over the backends, fib_multipath_hash_policy=1" if "ecmp-rehash" in scen
                            else "via the firewall $FW_PRX_IP" if "middlebox-reset" in scen
                            else "on link, static neighbour $VMAC (the switch's virtual MAC)"},
  "go": {"path": "$GO", "version": "$GO_VERSION"},
  "target_node": "$TARGET" if "$SINGLE" else None,
  "client_timeout_s": dur_s("$CLIENT_TIMEOUT") or (1.0 if "client-cancel" in scen else 30.0),
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
  "events": events,
}
if "middlebox-reset" in scen:
    doc["middlebox"] = {
        "role": "stateful firewall, routed hop between proxy and switch (not captured)",
        "proxy_side": {"ip": "$FW_PRX_IP", "mac": "$FW_PRX_MAC"},
        "switch_side": {"ip": "${FW_SW_IP:-}", "mac": "${FW_SW_MAC:-}"},
        "conntrack_tcp_timeout_established_s": $FW_TIMEOUT,
        "conntrack_tcp_loose": 0,
        "invalid": "reject with tcp reset",
        "ruleset": "logs/firewall-nft-ruleset.txt",
    }
if "backend-crash" in scen:
    doc["crash"] = {"node": "$TARGET", "at_s": $CRASH_AT, "dark_s": $CRASH_DARK, "down_s": $CRASH_DOWN}
if "pmtu-blackhole" in scen:
    doc["pmtu"] = {"node": "$TARGET", "switch_port": "p-be$((TI + 1))", "switch_port_mtu": $PMTU_MTU,
                   "node_mtu": 1500, "icmp": "none (a bridge drops oversize frames silently)"}
if "syn-drop" in scen:
    doc["syn_drop"] = {"node": "$TARGET", "ruleset": "logs/$TARGET-nft-ruleset.txt"}
if "accept-queue" in scen:
    doc["accept_queue"] = {"node": "$TARGET", "backlog": $BACKLOG, "accept_pause": "$ACCEPT_PAUSE",
                           "accept_pause_every": "$ACCEPT_PAUSE_EVERY",
                           "tcp_abort_on_overflow": $ABORT_ON_OVERFLOW, "nstat": "logs/$TARGET-nstat.txt"}
if "max-requests" in scen:
    doc["max_requests"] = {"per_connection": $MAX_REQUESTS, "close_delay": "$MAX_REQUESTS_CLOSE_DELAY",
                           "connection_close_header": False}
if "ecmp-rehash" in scen:
    doc["ecmp"] = {"hash_policy": 1, "nexthops": ["${BE_IP[0]}", "${BE_IP[1]}", "${BE_IP[2]}"],
                   "changes": "backend-03's nexthop removed at 1/3 of the run, added back at 2/3 (see events)"}
json.dump(doc, open(sys.argv[1], "w"), indent=2)
open(sys.argv[1], "a").write("\n")
EOF
log "deriving truth from the captures"
python3 "$LAB_DIR/derive_truth.py" "$OUT" ${KEEP_GOING:+--allow-empty}
log "done: $OUT"
