#!/usr/bin/env python3
"""Derive the ground truth of a lab run from what its captures show.

usage: derive_truth.py RUN_DIR [--allow-empty] [--quiet]

RUN_DIR holds logs/proxy.log, captures/<node>/... and lab.json (written by
lab.sh). For every `http: proxy error:` line of the proxy log this finds the
proxy->VIP connection in the captures of every node and says, from the packets
alone, what broke:

  flow_split      a backend that never saw the connection's SYN received one of
                  its segments and answered RST (the seed's switch problem; also
                  an ECMP rehash: then the proxy's capture shows the flow's next
                  hop MAC changing, and `systemic_events` groups the moved flows)
  refused         the proxy's SYN was answered with RST by the node it reached
  connect_timeout the proxy's SYNs went unanswered (no SYN-ACK, no RST); owner =
                  the node whose capture holds them
  middlebox_reset a RST reached the proxy that no backend capture holds, answering
                  a segment the owner never received (a stateful device on the path
                  answered for the backend); TTL / IP ID / MAC compared with the
                  owner's packets as the proxy saw them
  backend_state_lost  the owner (which had carried data on the connection) answered
                  a later segment with a bare RST (no ACK flag, seq = the segment's
                  ACK): it had lost the socket (crash, reboot, kill with its FIN/RST
                  suppressed); often after retransmissions
  accept_queue_overflow  the handshake completed at the proxy's side but the owner's
                  listen queue was full: its SYN-ACK repeats after the proxy's ACK
                  and the request stays unacknowledged, or a bare RST answers the
                  handshake ACK / first segment of a connection that never carried
                  anything (tcp_abort_on_overflow, or a SYN cookie it cannot use)
  pmtu_blackhole  full-size proxy segments never reached the owner (retransmitted at
                  the same seq) while every smaller one did; no ICMP
                  fragmentation-needed reached the proxy
  idle_race       the owning backend closed (FIN) the idle keep-alive connection
                  and the proxy's next request arrived after that FIN
  max_requests_close  like idle_race, but the owner closed milliseconds after its
                  last response, after the same number of responses as on every
                  connection the backends closed that way (a request budget per
                  connection, without `Connection: close`)
  backend_reset   the owning backend reset the connection mid-request (no FIN
                  of its own before, no stray node involved)
  proxy_abandoned the proxy closed the connection while its request was still
                  unanswered (the log line says why: response header timeout,
                  client canceled)
  unknown         the captures hold the connection but none of the above
  not_in_capture  no node captured a matching connection

Lines that carry the proxy's local port (read/write/readfrom errors) are joined
by port (the connection instance alive at the log time); lines without one
(dial errors, timeouts, cancellations) are joined by time to the nearest
unclaimed failure of the matching kind within the log's 1 s resolution (for
unanswered SYNs, whose give-up sends no packet: within 2 s after the last SYN).

Node clocks: lab.json's `clock_offsets_applied_s` (what the lab added to a
node's capture timestamps) is subtracted so all times are on one clock; the
evidence keeps each packet's raw capture time too. Duplicated capture records
(same packet recorded twice within 1 ms by one node) are counted and dropped.
Writes RUN_DIR/truth.json and prints a summary. Needs tshark (and zstd for
.zst rotations). Standard library only.
"""
import collections
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

FLAG_FIN, FLAG_SYN, FLAG_RST, FLAG_PSH, FLAG_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
SEQ_MOD = 1 << 32

# Idle timers of devices that forget connections (seconds), to compare a
# middlebox reset's idle gap with.
KNOWN_IDLE_TIMERS_S = {"aws_nlb": 350, "azure_lb": 240, "gcp_lb": 600, "ipvs_tcp": 900}
# An owner close this soon after its last response is not an idle timeout.
MAX_REQUESTS_CLOSE_GAP_S = 0.5
HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ")

ERR_RE = re.compile(r"http: proxy error: (?P<msg>.*)$")
GO_TS_RE = re.compile(r"(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) http: proxy error:")
PORT_RE = re.compile(r"tcp (?P<lip>[\d.]+):(?P<lport>\d+)->(?P<rip>[\d.]+):(?P<rport>\d+)")

# Which failure kinds a log line without a port may be joined to.
TIME_MATCH_KINDS = {
    "refused": {"refused"},
    "response_header_timeout": {"proxy_abandoned", "pmtu_blackhole", "accept_queue_overflow"},
    "context_canceled": {"proxy_abandoned", "pmtu_blackhole", "accept_queue_overflow",
                         "connect_timeout"},
    "eof": {"idle_race", "backend_reset", "max_requests_close"},
    "server_closed_idle": {"idle_race", "max_requests_close"},
    "io_timeout": {"connect_timeout"},
    "connect_timed_out": {"connect_timeout"},
    "connect_reset": {"accept_queue_overflow"},
}


def error_class(msg):
    """Classify the Go error text the way an operator reads it."""
    if "connect: connection refused" in msg:
        return "refused"
    if "connect: connection timed out" in msg:
        return "connect_timed_out"
    if "connect: connection reset by peer" in msg:
        return "connect_reset"
    if "timeout awaiting response headers" in msg:
        return "response_header_timeout"
    if msg.strip() == "context canceled" or msg.endswith("context canceled"):
        return "context_canceled"
    if "use of closed network connection" in msg:
        return "use_of_closed_conn"
    if "write: broken pipe" in msg:
        return "broken_pipe"
    if "write: connection reset by peer" in msg:
        return "write_reset"
    if "read: connection reset by peer" in msg:
        return "read_reset"
    if "server closed idle connection" in msg:
        return "server_closed_idle"
    if msg.endswith("EOF"):
        return "eof"
    if "i/o timeout" in msg:
        return "io_timeout"
    return "other"


class Pkt:
    __slots__ = ("node", "file", "frame", "t", "t_raw", "to_backend", "port", "flags",
                 "seq", "ack", "len", "ipid", "iface", "ttl", "smac", "dmac", "head", "iplen")

    def fingerprint(self):
        """Who sent it, as far as the headers tell: TTL, IP ID, source MAC."""
        return {"ttl": self.ttl, "ip_id": self.ipid, "src_mac": self.smac}

    def ev(self, what):
        return {"node": self.node, "file": self.file, "frame": self.frame,
                "time": iso(self.t), "capture_time": iso(self.t_raw),
                "dir": "proxy->vip" if self.to_backend else "vip->proxy",
                "flags": flag_str(self.flags), "seq": self.seq, "ack": self.ack,
                "len": self.len, "what": what}


def flag_str(f):
    return ",".join(n for b, n in ((FLAG_SYN, "SYN"), (FLAG_FIN, "FIN"), (FLAG_RST, "RST"),
                                    (FLAG_PSH, "PSH"), (FLAG_ACK, "ACK")) if f & b)


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tshark_fields(path, proxy_ip, vip, port):
    """One line per TCP packet between the proxy and the VIP:port."""
    flt = f"ip.addr=={proxy_ip} && ip.addr=={vip} && tcp.port=={port}"
    cmd = ["tshark", "-n", "-r", path, "-Y", flt, "-T", "fields", "-E", "separator=\t",
           "-o", "tcp.relative_sequence_numbers:FALSE",
           "-e", "frame.number", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport",
           "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.seq", "-e", "tcp.ack",
           "-e", "tcp.len", "-e", "ip.id", "-e", "sll.ifindex", "-e", "frame.interface_id",
           "-e", "ip.ttl", "-e", "eth.src", "-e", "eth.dst", "-e", "sll.src.eth",
           "-e", "ip.len", "-e", "tcp.payload"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    # The newest rotation may end in a cut-off record: tshark says so and
    # exits non-zero after printing every complete packet; that is normal.
    if r.returncode != 0 and "cut short" not in r.stderr and "truncated" not in r.stderr:
        raise SystemExit(f"derive_truth: tshark failed on {path}: {r.stderr.strip()}")
    return r.stdout.splitlines()


def node_files(capdir):
    out = []
    for name in sorted(os.listdir(capdir)):
        p = os.path.join(capdir, name)
        if os.path.isfile(p):
            out.append(p)
    return out


def load_node(run, node, cfg, tmp):
    proxy_ip, vip = cfg["proxy"]["ip"], cfg["vip"]
    offset = float(cfg.get("clock_offsets_applied_s", {}).get(node, 0.0))
    capdir = os.path.join(run, "captures", node)
    pkts, info = [], {"files": [], "packets": 0, "duplicates_dropped": 0,
                      "clock_offset_applied_s": offset}
    spans = []
    for path in node_files(capdir):
        rel = os.path.relpath(path, run)
        readable = path
        if path.endswith(".zst"):
            # Not every tshark build reads zstd: decompress to a scratch copy.
            readable = os.path.join(tmp, os.path.basename(path)[:-4])
            subprocess.run(["zstd", "-q", "-d", "-f", path, "-o", readable], check=True)
        span = capture_span(readable)
        if span:
            spans.append(span)
        n = 0
        for line in tshark_fields(readable, proxy_ip, vip, 80):
            f = line.split("\t")
            if len(f) < 10 or not f[0]:
                continue
            p = Pkt()
            p.node, p.file, p.frame = node, rel, int(f[0])
            p.t_raw = float(f[1])
            p.t = p.t_raw - offset
            p.to_backend = f[2] == proxy_ip
            p.port = int(f[3]) if p.to_backend else int(f[4])
            p.flags = int(f[5], 16)
            p.seq, p.ack, p.len = int(f[6]), int(f[7] or 0), int(f[8])
            p.ipid = f[9]
            p.iface = (f[10] if len(f) > 10 else "") + "/" + (f[11] if len(f) > 11 else "")
            g = f + [""] * (18 - len(f))
            p.ttl = int(g[12].split(",")[0]) if g[12] else None
            p.smac = g[13] or g[15] or None
            p.dmac = g[14] or None
            p.iplen = int(g[16].split(",")[0]) if g[16] else None
            p.head = bytes.fromhex(g[17][:16]) if g[17] else b""
            pkts.append(p)
            n += 1
        info["files"].append({"path": rel, "packets": n})
    pkts.sort(key=lambda p: (p.t, p.file, p.frame))
    # Capture duplicates: the same packet (same IP ID too) recorded twice
    # within 1 ms on two different interfaces of one node (`-i any` over a
    # bridge/bond and its member). Identical packets on one interface are real
    # (e.g. a stack answering each stray segment with the same RST).
    last = {}
    kept = []
    for p in pkts:
        key = (p.to_backend, p.port, p.seq, p.ack, p.flags, p.len, p.ipid)
        prev = last.get(key)
        if prev is not None and p.t - prev[0] < 0.001 and p.iface != prev[1]:
            info["duplicates_dropped"] += 1
            continue
        last[key] = (p.t, p.iface)
        kept.append(p)
    info["packets"] = len(kept)
    # What this node's capture covers (one clock): from the first packet of its
    # first rotation to the last of its last (rotations follow each other, and
    # the lab's captures lose nothing), and at least until lab.sh's
    # `traffic_end_epoch`, which it takes 3 s after the traffic while every
    # capture still runs. A packet missing inside this span was not there;
    # outside it nobody knows.
    info["_span"] = None
    if spans:
        end = max(b for _, b in spans) - offset
        if cfg.get("traffic_end_epoch"):
            end = max(end, float(cfg["traffic_end_epoch"]))
        info["_span"] = (min(a for a, _ in spans) - offset, end)
    return kept, info


def capture_span(path):
    """First and last packet time of one capture file (any packet), or None."""
    r = subprocess.run(["capinfos", "-T", "-r", "-a", "-e", "-S", path], capture_output=True, text=True)
    f = r.stdout.strip().split("\t")
    try:
        return float(f[1]), float(f[2])
    except (IndexError, ValueError):
        return None


def icmp_frag_needed(run, node, cfg, tmp):
    """ICMP "fragmentation needed" messages in a node's captures (time, frame)."""
    offset = float(cfg.get("clock_offsets_applied_s", {}).get(node, 0.0))
    out = []
    for path in node_files(os.path.join(run, "captures", node)):
        readable = path
        if path.endswith(".zst"):
            readable = os.path.join(tmp, os.path.basename(path)[:-4])
            subprocess.run(["zstd", "-q", "-d", "-f", path, "-o", readable], check=True)
        r = subprocess.run(["tshark", "-n", "-r", readable, "-Y", "icmp.type == 3 && icmp.code == 4",
                            "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch"],
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            f = line.split("\t")
            if len(f) == 2 and f[0]:
                out.append({"node": node, "file": os.path.relpath(path, run), "frame": int(f[0]),
                            "time": iso(float(f[1]) - offset)})
    return out


class Conn:
    """One connection instance (proxy SYN onwards) of one proxy port, all nodes."""

    def __init__(self, port, syn):
        self.port, self.syn, self.isn = port, syn, syn.seq
        self.pkts = []

    def by_node(self):
        d = collections.defaultdict(list)
        for p in self.pkts:
            d[p.node].append(p)
        return d


def build_conns(all_pkts):
    """Split each port's packets into instances at the proxy's SYNs (any node)."""
    by_port = collections.defaultdict(list)
    for p in all_pkts:
        by_port[p.port].append(p)
    conns = []
    for port, ps in by_port.items():
        ps.sort(key=lambda p: p.t)
        syns = []
        for p in ps:
            if p.to_backend and p.flags & FLAG_SYN and not p.flags & FLAG_ACK:
                if not syns or p.seq != syns[-1].seq:
                    syns.append(p)
        if not syns:
            c = Conn(port, ps[0])
            c.isn = None
            c.pkts = ps
            conns.append(c)
            continue
        cs = [Conn(port, s) for s in syns]
        for p in ps:
            # Belongs to the latest instance whose SYN is not later than it
            # (packets just before the first SYN: midstream start of capture).
            idx = 0
            for i, s in enumerate(syns):
                if s.t <= p.t + 0.0005:
                    idx = i
            cs[idx].pkts.append(p)
        conns.extend(cs)
    return conns


def segment_index(proxy_pkts, seg):
    """Which data segment of its HTTP request `seg` was (1 = the one carrying
    the request line), counted in the proxy's own capture: the proxy's data
    segments since the last response data, up to seg's sequence number."""
    if not proxy_pkts:
        return None
    same = [p for p in proxy_pkts if p.to_backend and p.len > 0 and p.seq == seg.seq]
    if not same:
        return None
    t = same[0].t
    last_resp = max([p.t for p in proxy_pkts if not p.to_backend and p.len > 0 and p.t < t],
                    default=None)
    seqs = {p.seq for p in proxy_pkts if p.to_backend and p.len > 0 and p.t <= t
            and (last_resp is None or p.t > last_resp)}
    return len(seqs)


def is_syn(p):
    return p.flags & FLAG_SYN and not p.flags & FLAG_ACK


def is_synack(p):
    return p.flags & FLAG_SYN and p.flags & FLAG_ACK


def seq_after(a, b):
    """a > b in sequence space."""
    d = (a - b) % SEQ_MOD
    return 0 < d < (1 << 31)


def covered(ctx, node, t):
    """Did `node`'s capture run at time t (a packet absent there was really absent)?"""
    span = ctx["spans"].get(node)
    return span is not None and span[0] <= t <= span[1]


def rule_connect_timeout(conn, nodes, backends, res, ctx):
    """The proxy's SYNs got no answer at all (no SYN-ACK, no RST, on any node).

    Owner: the node whose capture holds the unanswered SYNs (its firewall, a
    full listen queue or a dead host dropped them after its capture saw them).
    The proxy gives up without a packet, so the failure time is the last SYN
    and the proxy's capture must go on long enough after it to be sure.
    """
    if any(is_synack(p) or p.flags & FLAG_RST for p in conn.pkts):
        return False
    if any(p.len > 0 for p in conn.pkts):
        return False
    psyn = [p for p in nodes.get("proxy", []) if is_syn(p)]
    holders = [n for n in backends if any(is_syn(p) for p in nodes.get(n, []))]
    syns = psyn or [p for n in holders for p in nodes[n] if is_syn(p)]
    if not syns:
        return False
    last = syns[-1]
    if not covered(ctx, "proxy", last.t + 1.0):
        return False  # maybe still connecting when the capture ended
    res["cause"] = "connect_timeout"
    res["owner_nodes"] = holders[:1]
    res["event_time"] = last.t
    # It gave up after its last SYN and before the next one would have left
    # (1 s after a first SYN; at most twice the last spacing after that).
    gap = syns[-1].t - syns[-2].t if len(syns) > 1 else 0.5
    res["join_interval"] = (last.t, last.t + 2 * gap)
    res["syn_count"] = len(syns)
    res["syn_spacing_s"] = [round(b.t - a.t, 3) for a, b in zip(syns, syns[1:])]
    ev = res["evidence"]
    for p in psyn[:1] + psyn[-1:] if len(psyn) > 1 else psyn:
        ev.append(p.ev("proxy SYN (no answer)"))
    for n in holders[:1]:
        for p in [p for p in nodes[n] if is_syn(p)][:6]:
            ev.append(p.ev("the node's capture holds the SYN; the node never answered it"))
    return True


def proxy_close(nodes, after_t):
    """The proxy's first FIN or RST after after_t (its giving up), from its own
    capture or else any node's."""
    for src in (nodes.get("proxy", []), [p for n, ps in nodes.items() if n != "proxy" for p in ps]):
        c = sorted((p for p in src if p.to_backend and p.flags & (FLAG_FIN | FLAG_RST)
                    and p.t >= after_t), key=lambda p: p.t)
        if c:
            return c[0]
    return None


def rule_middlebox_reset(conn, nodes, backends, owner, res, ctx):
    """A RST reached the proxy that no backend sent, answering a segment the
    owner never received: a stateful device between them answered for it."""
    prx = nodes.get("proxy", [])
    back_rst = {p.seq for n in backends for p in nodes.get(n, [])
                if not p.to_backend and p.flags & FLAG_RST}
    unseen = [p for p in prx if not p.to_backend and p.flags & FLAG_RST and p.seq not in back_rst]
    if not unseen:
        return False
    r = unseen[0]
    # The segment it answers: the first proxy segment of the burst just before it.
    burst = [p for p in prx if p.to_backend and r.t - 0.5 <= p.t <= r.t]
    if not burst:
        return False
    seg = burst[0]
    if not all(covered(ctx, n, seg.t) for n in backends):
        return False  # a backend capture that was not running could hold the RST
    ops = nodes.get(owner, [])
    if any(p.to_backend and p.seq == seg.seq and p.len == seg.len and p.flags == seg.flags
           and abs(p.t - seg.t) < 1.0 for p in ops):
        return False  # the owner got it: its own stack answered
    if any(not p.to_backend and p.flags & (FLAG_FIN | FLAG_RST) and p.t <= r.t + 1.0 for p in ops):
        return False
    prev = [p for p in prx if p.t < seg.t]
    idle = seg.t - prev[-1].t if prev else None
    res["cause"] = "middlebox_reset"
    res["event_time"] = r.t
    ev = res["evidence"]
    theirs = [p for p in prx if not p.to_backend and not p.flags & FLAG_RST]
    fp_owner = {"ttl": sorted({p.ttl for p in theirs if p.ttl is not None}),
                "ip_id_last": [p.ipid for p in theirs[-3:]],
                "src_mac": sorted({p.smac for p in theirs if p.smac})}
    fp_rst = r.fingerprint()
    differs = []
    if fp_rst["ttl"] not in fp_owner["ttl"]:
        differs.append("ttl")
    if fp_rst["src_mac"] not in fp_owner["src_mac"]:
        differs.append("src_mac")
    if r.ipid in ("0x0000", "0") and any(i not in ("0x0000", "0") for i in fp_owner["ip_id_last"]):
        differs.append("ip_id")
    syn = next((p for p in ops if is_synack(p)), None)
    if syn:
        ev.append(syn.ev("the owner accepted the connection"))
    if prev:
        e = prev[-1].ev("last packet of the connection before it went idle")
        ev.append(e)
    e = seg.ev("proxy sends on the idle connection; the owner's capture never has this segment")
    e["idle_before_s"] = round(idle, 6) if idle is not None else None
    ev.append(e)
    e = r.ev("RST at the proxy that no backend capture holds (sent by something in between)")
    e["answers_segment_ack"] = r.seq == seg.ack and not r.flags & FLAG_ACK
    e.update(rst_fingerprint=fp_rst, owner_fingerprint_at_proxy=fp_owner, differs=differs)
    ev.append(e)
    # The other half: when the owner's side speaks again (a keep-alive probe)
    # the device resets it too, in the proxy's name; the proxy never sent it.
    sent = {p.seq for p in prx if p.to_backend and p.flags & FLAG_RST}
    ghost = next((p for p in ops if p.to_backend and p.flags & FLAG_RST and p.seq not in sent), None)
    if ghost is not None:
        probe = [p for p in ops if not p.to_backend and p.t <= ghost.t]
        if probe:
            ev.append(probe[-1].ev("the owner speaks on the connection again (still open on its side)"))
        ev.append(ghost.ev("RST in the proxy's name at the owner that the proxy's capture does not "
                           "have: the device reset the owner's side too"))
    res["middlebox"] = {"idle_gap_s": round(idle, 6) if idle is not None else None,
                        "rst_fingerprint": fp_rst, "owner_fingerprint_at_proxy": fp_owner,
                        "differs": differs,
                        "idle_gap_reaches_known_timers": sorted(
                            k for k, v in KNOWN_IDLE_TIMERS_S.items()
                            if idle is not None and idle >= v),
                        "owner_side_reset_not_sent_by_proxy": ghost is not None}
    return True


def rule_accept_queue_overflow(conn, nodes, owner, res, ctx):
    """The handshake completed at the proxy but the owner's listen queue was full.

    (a) the proxy's handshake ACK reached the owner, its request was not
        acknowledged and the owner repeated its SYN-ACK (it still held only a
        request sock); the proxy gave up;
    (b) a bare RST (no ACK flag, seq = the segment's ACK) answered the handshake
        ACK or the first segment of a connection that never carried anything
        (tcp_abort_on_overflow=1, or a SYN cookie it could not turn into a socket).
    """
    ps = nodes.get(owner, [])
    synacks = [p for p in ps if not p.to_backend and is_synack(p)]
    if not synacks:
        return False
    sa = synacks[0]
    hs = [p for p in ps if p.to_backend and not p.flags & (FLAG_SYN | FLAG_RST) and p.flags & FLAG_ACK
          and p.ack == (sa.seq + 1) % SEQ_MOD and p.t >= sa.t]
    if not hs:
        return False
    ack = hs[0]
    isn1 = (conn.isn + 1) % SEQ_MOD if conn.isn is not None else None
    owner_data = [p for p in ps if not p.to_backend and p.len > 0]
    pdata = [p for p in ps if p.to_backend and p.len > 0]
    ev = res["evidence"]
    # (b) the stateless RST on a fresh connection
    rst = [p for p in ps if not p.to_backend and p.flags & FLAG_RST and not p.flags & FLAG_ACK]
    if rst and not owner_data:
        r = rst[0]
        before = [p for p in ps if p.to_backend and p.t <= r.t]
        acked = [p for p in ps if not p.to_backend and not p.flags & FLAG_RST and isn1 is not None
                 and seq_after(p.ack, isn1)]
        if before and r.seq == before[-1].ack and not acked and r.t - ack.t < 1.0:
            res["cause"] = "accept_queue_overflow"
            res["event_time"] = r.t
            res["accept_queue"] = {"variant": "rst_after_handshake",
                                   "rst_after_handshake_ack_s": round(r.t - ack.t, 6)}
            ev.append(sa.ev("owner's SYN-ACK"))
            ev.append(ack.ev("proxy completes the handshake"))
            if before[-1] is not ack:
                ev.append(before[-1].ev("the segment the RST answers"))
            e = r.ev("bare RST (seq = that segment's ACK, no ACK flag): the listener had no "
                     "socket to give it (full accept queue)")
            e.update(fingerprint=r.fingerprint())
            ev.append(e)
            return True
    # (a) SYN-ACK repeated after the handshake ACK, request unacknowledged
    again = [p for p in synacks[1:] if p.seq == sa.seq and p.t > ack.t]
    if not again or not pdata or isn1 is None:
        return False
    first_ack_of_data = next((p for p in ps if not p.to_backend and not p.flags & FLAG_SYN
                              and seq_after(p.ack, isn1)), None)
    if first_ack_of_data is not None and first_ack_of_data.t < again[0].t:
        return False
    close = proxy_close(nodes, pdata[0].t)
    answered = [p for p in owner_data if close is None or p.t <= close.t]
    if answered:
        return False  # answered before the proxy gave up (if it did): slow, not failed
    res["cause"] = "accept_queue_overflow"
    if close is not None and not (first_ack_of_data is not None
                                  and 0 <= close.t - first_ack_of_data.t < 0.05):
        res["event_time"] = close.t
    elif close is not None:
        # The FIN left right after the owner finally acknowledged the request:
        # it had been waiting behind it, the proxy gave up earlier.
        res["event_time"] = pdata[0].t
        res["join_interval"] = (pdata[0].t, close.t)
    else:
        # Its FIN waits behind the unacknowledged request: the give-up sends
        # nothing. It happened between the request and its last retransmission.
        last = [p for p in conn.pkts if p.to_backend][-1]
        res["event_time"] = pdata[0].t
        res["join_interval"] = (pdata[0].t, last.t)
    retrans = [p for p in pdata if p.seq == pdata[0].seq][1:]
    res["accept_queue"] = {"variant": "synack_repeated",
                           "synack_repeats": len(synacks) - 1,
                           "request_unacknowledged_s": round(
                               (first_ack_of_data or close or pdata[-1]).t - pdata[0].t, 6),
                           "request_acknowledged_at_all": first_ack_of_data is not None,
                           "request_retransmissions_seen_by_owner": len(retrans)}
    ev.append(sa.ev("owner's SYN-ACK"))
    ev.append(ack.ev("proxy completes the handshake (its side is established)"))
    ev.append(pdata[0].ev("request reaches the owner and is not acknowledged"))
    if retrans:
        ev.append(retrans[0].ev("proxy retransmits the unacknowledged request"))
    ev.append(again[0].ev("owner repeats its SYN-ACK after the handshake ACK: the ACK found "
                          "the accept queue full"))
    if first_ack_of_data is not None:
        ev.append(first_ack_of_data.ev("owner acknowledges the request only now (queue had room)"))
    if close is not None:
        ev.append(close.ev("proxy gives up with the request unanswered"))
    return True


def rule_pmtu_blackhole(conn, nodes, owner, res, ctx):
    """Full-size proxy segments never reach the owner while smaller ones do."""
    prx = nodes.get("proxy", [])
    ops = nodes.get(owner, [])
    pdata = [p for p in prx if p.to_backend and p.len > 0]
    if not pdata or not ops:
        return False
    arrived = {(p.seq, p.len) for p in ops if p.to_backend and p.len > 0}
    sent = collections.OrderedDict()
    for p in pdata:
        sent.setdefault((p.seq, p.len), []).append(p)
    lost = [(k, v) for k, v in sent.items() if k not in arrived and covered(ctx, owner, v[0].t)]
    got = [k for k in sent if k in arrived]
    if not lost or not got:
        return False
    retried = [(k, v) for k, v in lost if len(v) >= 2]
    if not retried:
        return False
    min_lost = min(v[0].iplen or (k[1] + 40) for k, v in lost)
    max_got = max(sent[k][0].iplen or (k[1] + 40) for k in got)
    if min_lost <= max_got:
        return False  # not a size limit: something else lost them
    if any(not p.to_backend and p.flags & (FLAG_FIN | FLAG_RST) for p in ops):
        return False
    (k, copies) = max(retried, key=lambda kv: len(kv[1]))
    close = proxy_close(nodes, pdata[0].t)
    res["cause"] = "pmtu_blackhole"
    first_lost = min(v[0].t for _, v in lost)
    if close is not None:
        res["event_time"] = close.t
    else:
        # The proxy's FIN queues behind the undelivered data, so its giving up
        # sends nothing: it happened between the first lost segment and the
        # last retransmission (which its kernel goes on sending after close).
        res["event_time"] = first_lost
        res["join_interval"] = (first_lost, max(p.t for _, v in lost for p in v))
    icmp = [i for i in ctx["icmp_frag_needed"].get("proxy", [])]
    res["pmtu"] = {"largest_ip_packet_delivered": max_got, "smallest_ip_packet_lost": min_lost,
                   "lost_segments": len(lost), "max_transmissions_of_one_segment": len(copies),
                   "icmp_frag_needed_at_proxy": len(icmp)}
    ev = res["evidence"]
    big = sent[max(got, key=lambda kk: sent[kk][0].iplen or 0)][0]
    e = big.ev("a smaller segment of this connection reaches the owner")
    e["ip_len"] = big.iplen
    ev.append(e)
    for i, c in enumerate(copies[:4]):
        e = c.ev("full-size segment sent" if i == 0 else "the same full-size segment retransmitted "
                 "(same seq); the owner's capture never has it")
        e["ip_len"] = c.iplen
        ev.append(e)
    if len(copies) > 4:
        e = copies[-1].ev("last retransmission of that segment")
        e["transmissions"] = len(copies)
        ev.append(e)
    last_ack = [p for p in ops if not p.to_backend and p.flags & FLAG_ACK and p.t <= copies[-1].t]
    if last_ack:
        ev.append(last_ack[-1].ev("the owner's last ACK: it still waits for that sequence number"))
    if close:
        ev.append(close.ev("proxy gives up with the request undelivered"))
    return True


def rule_backend_state_lost(conn, nodes, owner, res, ctx):
    """The owner, which had carried data on this connection, answered a later
    segment with a bare RST (no ACK flag, seq = that segment's ACK): the kernel
    had no socket for it any more, and had not said so (no FIN, no RST before)."""
    ps = nodes.get(owner, [])
    rsts = [p for p in ps if not p.to_backend and p.flags & FLAG_RST and not p.flags & FLAG_ACK]
    if not rsts:
        return False
    r = rsts[0]
    if any(not p.to_backend and p.flags & FLAG_FIN and p.t <= r.t for p in ps):
        return False
    before = [p for p in ps if p.to_backend and p.t <= r.t]
    if not before or not before[-1].flags & FLAG_ACK or r.seq != before[-1].ack:
        return False
    seg = before[-1]
    earlier = [p for p in ps if not p.to_backend and p.len > 0 and p.t < seg.t]
    if not earlier:
        return False  # a fresh connection: not state lost (see accept_queue_overflow)
    # The first proxy segment the owner never acknowledged: where it went silent.
    owner_acks = [p for p in ps if not p.to_backend and not p.flags & FLAG_RST]
    last_ack = max((p.ack for p in owner_acks), key=lambda a: (a - conn.isn) % SEQ_MOD
                   if conn.isn is not None else a, default=None)
    unacked = [p for p in ps if p.to_backend and p.len > 0 and p.t <= r.t
               and (last_ack is None or not seq_after(last_ack, p.seq))]
    first = unacked[0] if unacked else seg
    prx = nodes.get("proxy", [])
    copies = [p for p in prx if p.to_backend and p.seq == first.seq and p.len == first.len]
    rst_at_proxy = next((p for p in prx if not p.to_backend and p.flags & FLAG_RST
                         and p.seq == r.seq), None)
    res["cause"] = "backend_state_lost"
    res["event_time"] = r.t
    theirs = [p for p in prx if not p.to_backend and not p.flags & FLAG_RST]
    res["state_lost"] = {
        "rst_after_first_transmission_s": round(r.t - first.t, 6),
        "transmissions_before_rst": len(copies) if copies else None,
        "rst_fingerprint": (rst_at_proxy or r).fingerprint(),
        "owner_fingerprint_at_proxy": {"ttl": sorted({p.ttl for p in theirs if p.ttl is not None}),
                                       "ip_id_last": [p.ipid for p in theirs[-3:]],
                                       "src_mac": sorted({p.smac for p in theirs if p.smac})},
    }
    ev = res["evidence"]
    ev.append(earlier[-1].ev("the owner's last data on this connection (it had a socket then)"))
    ev.append(first.ev("request the owner never acknowledges"))
    for c in copies[1:4]:
        ev.append(c.ev("proxy retransmits it (same seq)"))
    e = r.ev("bare RST from the owner: seq = the segment's ACK, no ACK flag (no socket)")
    e.update(answers_frame=seg.frame, fingerprint=r.fingerprint())
    ev.append(e)
    return True


def owner_close_info(conn, owner):
    """How the owner closed the connection: its first FIN or RST, the HTTP
    responses it had started before, and the time since the last of them."""
    ps = conn.by_node().get(owner, [])
    close = next((p for p in ps if not p.to_backend and p.flags & (FLAG_FIN | FLAG_RST)), None)
    if close is None:
        return None
    starts = {}
    for p in ps:
        if not p.to_backend and p.len > 0 and p.t <= close.t and p.head.startswith(b"HTTP/"):
            starts.setdefault(p.seq, p)
    if not starts:
        return None
    last = max(starts.values(), key=lambda p: p.t)
    late = [p for p in ps if p.to_backend and p.len > 0 and p.t > last.t
            and p.head.startswith(HTTP_METHODS)]
    return {"close": close, "responses": len(starts), "last_response": last,
            "gap_s": close.t - last.t, "next_request": late[0] if late else None}


def requests_per_connection(analysed, backends):
    """The constant number of responses after which backends close connections
    (milliseconds after the last one), if there is one; else None."""
    counts = []
    for c, a in analysed:
        if len(a["owner_nodes"]) != 1 or a["stray_nodes"]:
            continue
        info = owner_close_info(c, a["owner_nodes"][0])
        if info and info["gap_s"] < MAX_REQUESTS_CLOSE_GAP_S:
            counts.append(info["responses"])
    if len(counts) < 5:
        return None, counts
    n, k = collections.Counter(counts).most_common(1)[0]
    return (n if n >= 2 and k >= 0.8 * len(counts) else None), counts


def as_max_requests(conn, a, n):
    """Re-read an idle_race/backend_reset failure as a max-requests close when
    the owner closed ms after its n-th response and the proxy's next request
    crossed the close; returns the new analysis or None."""
    if n is None or a["cause"] not in ("idle_race", "backend_reset") or len(a["owner_nodes"]) != 1:
        return None
    info = owner_close_info(conn, a["owner_nodes"][0])
    if not info or info["responses"] != n or info["gap_s"] >= MAX_REQUESTS_CLOSE_GAP_S:
        return None
    req = info["next_request"]
    if req is None or req.t > info["close"].t + 1.0:
        return None
    b = dict(a, cause="max_requests_close", evidence=[])
    b["max_requests"] = {"responses_on_connection": n, "close_after_last_response_s":
                         round(info["gap_s"], 6), "request_vs_close_s":
                         round(req.t - info["close"].t, 6)}
    ev = b["evidence"]
    ev.append(info["last_response"].ev(f"response number {n} on this connection (no "
                                       "Connection: close seen by the proxy, it reuses it)"))
    ev.append(req.ev("proxy's next request on the connection"))
    what = ("owner closes with that request unread: RST" if info["close"].flags & FLAG_RST
            else "owner closes the connection (FIN)")
    e = info["close"].ev(what + f", {info['gap_s'] * 1000:.1f} ms after its last response")
    ev.append(e)
    return b


def analyse(conn, backends, ctx):
    """What the packets of one instance say, with evidence."""
    nodes = conn.by_node()
    owners, stray, got_syn = [], [], []
    for n in backends:
        ps = nodes.get(n, [])
        if not ps:
            continue
        synack = [p for p in ps if not p.to_backend and p.flags & FLAG_SYN and p.flags & FLAG_ACK]
        syn = [p for p in ps if p.to_backend and p.flags & FLAG_SYN and not p.flags & FLAG_ACK]
        if synack:
            owners.append(n)
        elif syn:
            got_syn.append(n)
        else:
            stray.append(n)
    res = {"port": conn.port, "owner_nodes": owners, "stray_nodes": [], "cause": None,
           "event_time": None, "evidence": []}
    ev = res["evidence"]
    isn = conn.isn

    def rel(p):
        if isn is None:
            return None
        return (p.seq - isn) % (1 << 32) if p.to_backend else None

    # flow_split: a node without the handshake answered RST.
    for n in stray:
        ps = nodes[n]
        rsts = [p for p in ps if not p.to_backend and p.flags & FLAG_RST]
        if rsts:
            res["stray_nodes"].append(n)
            segs = [p for p in ps if p.to_backend]
            for s in segs[:2]:
                e = s.ev("segment of this connection seen by a node that never saw its SYN")
                e["relative_seq"] = rel(s)
                idx = segment_index(nodes.get("proxy", []), s)
                if idx:
                    e["data_segment_of_request"] = idx
                ev.append(e)
            ev.append(rsts[0].ev("RST from a node without the connection (no socket)"))
    if res["stray_nodes"]:
        res["cause"] = "flow_split"
        res["event_time"] = min(p.t for n in res["stray_nodes"] for p in nodes[n]
                                if p.flags & FLAG_RST)
        for n in owners:
            ps = nodes[n]
            syn = next(p for p in ps if p.to_backend and p.flags & FLAG_SYN)
            ev.append(syn.ev("owning node saw the handshake"))
            dup = [p for p in ps if not p.to_backend and p.len == 0 and p.flags == FLAG_ACK
                   and p.t >= res["event_time"] - 0.01]
            if dup:
                ev.append(dup[0].ev("owning node ACKs around the hole (segment went elsewhere)"))
            prst = [p for p in ps if p.to_backend and p.flags & FLAG_RST]
            if prst:
                ev.append(prst[0].ev("proxy resets the owner's connection (socket already gone)"))
        # Which data segment of its request went astray: count the proxy's
        # data segments since the last request start seen by the owner.
        return res

    # refused: SYN answered with RST by the node it reached.
    for n in got_syn:
        ps = nodes[n]
        rst = [p for p in ps if not p.to_backend and p.flags & FLAG_RST]
        if rst:
            res["cause"] = "refused"
            res["owner_nodes"] = [n]
            res["event_time"] = rst[0].t
            ev.append(next(p for p in ps if p.to_backend and p.flags & FLAG_SYN).ev("proxy SYN"))
            ev.append(rst[0].ev("node answers the SYN with RST: port closed"))
            return res
    if not owners:
        rule_connect_timeout(conn, nodes, backends, res, ctx)
        return res
    o = owners[0]
    ps = nodes[o]
    # Causes the seed's lab did not have; each checks its own signature and
    # none of them matches the connections of the causes below.
    if (rule_middlebox_reset(conn, nodes, backends, o, res, ctx)
            or rule_accept_queue_overflow(conn, nodes, o, res, ctx)
            or rule_pmtu_blackhole(conn, nodes, o, res, ctx)
            or rule_backend_state_lost(conn, nodes, o, res, ctx)):
        return res
    b_fin = [p for p in ps if not p.to_backend and p.flags & FLAG_FIN]
    b_rst = [p for p in ps if not p.to_backend and p.flags & FLAG_RST]
    p_data = [p for p in ps if p.to_backend and p.len > 0]
    b_data = [p for p in ps if not p.to_backend and p.len > 0]
    p_fin = [p for p in ps if p.to_backend and p.flags & FLAG_FIN]
    p_rst = [p for p in ps if p.to_backend and p.flags & FLAG_RST]

    # idle_race: backend FIN, then proxy request data arrives after it.
    if b_fin:
        late = [p for p in p_data if p.t > b_fin[0].t]
        if late:
            res["cause"] = "idle_race"
            res["event_time"] = late[0].t
            last_resp = [p for p in b_data if p.t < b_fin[0].t]
            if last_resp:
                e = last_resp[-1].ev("last response before the connection went idle")
                ev.append(e)
            e = b_fin[0].ev("owning backend closes the idle keep-alive connection")
            if last_resp:
                e["idle_s"] = round(b_fin[0].t - last_resp[-1].t, 6)
            ev.append(e)
            e = late[0].ev("proxy reuses the connection: request sent after the backend's FIN")
            e["after_fin_s"] = round(late[0].t - b_fin[0].t, 6)
            ev.append(e)
            if b_rst:
                ev.append(b_rst[0].ev("backend answers the late request with RST"))
            return res

    # Owner RST (no FIN of its own) while the proxy's request was in flight:
    # either the backend aborted the request (it had ACKed request data
    # first: backend_reset), or it closed an idle connection at the very
    # moment the next request arrived, with that request unread in its
    # socket buffer, which makes the kernel send RST instead of FIN
    # (idle_race; the request followed an idle pause and got no ACK).
    if b_rst and not b_fin:
        r = b_rst[0]
        before = [p for p in p_data if p.t <= r.t]
        resp_after = [p for p in b_data if before and p.t > before[-1].t and p.t < r.t]
        if before and not resp_after:
            last_resp_t = max([p.t for p in b_data if p.t < r.t], default=None)
            req = [p for p in before if last_resp_t is None or p.t > last_resp_t]
            if not req:
                req = before[-1:]
            acked = [p for p in ps if not p.to_backend and not p.flags & FLAG_RST
                     and req[0].t <= p.t < r.t and p.flags & FLAG_ACK
                     and (p.ack - req[0].seq) % (1 << 32) > 0
                     and (p.ack - req[0].seq) % (1 << 32) < (1 << 31)]
            prev_activity = max([p.t for p in ps if p.t < req[0].t], default=None)
            idle = req[0].t - prev_activity if prev_activity is not None else None
            res["event_time"] = r.t
            ev.append(req[0].ev("request starts"))
            if not acked and idle is not None and idle >= 0.2:
                res["cause"] = "idle_race"
                ev[-1]["idle_before_s"] = round(idle, 6)
                e = r.ev("owning backend closes the idle connection with the new request unread: RST, no FIN")
                e["after_request_s"] = round(r.t - req[0].t, 6)
                ev.append(e)
            else:
                res["cause"] = "backend_reset"
                e = r.ev("owning backend resets mid-request")
                e["request_bytes_before_reset"] = sum(p.len for p in req)
                e["request_bytes_acked_before_reset"] = max(
                    [(p.ack - req[0].seq) % (1 << 32) for p in acked], default=0)
                ev.append(e)
            return res

    # proxy_abandoned: the proxy closed while its request was unanswered.
    closes = sorted(p_fin + p_rst, key=lambda p: p.t)
    if closes and p_data:
        c = closes[0]
        before = [p for p in p_data if p.t <= c.t]
        if before:
            last_req = before[-1]
            answered = [p for p in b_data if last_req.t < p.t <= c.t]
            if not answered:
                # start of that request: first proxy data after the last response
                last_resp_t = max([p.t for p in b_data if p.t < c.t], default=0)
                req = [p for p in before if p.t > last_resp_t]
                res["cause"] = "proxy_abandoned"
                res["event_time"] = c.t
                ev.append(req[0].ev("request starts"))
                e = c.ev("proxy closes the connection with the request unanswered")
                e["waited_s"] = round(c.t - req[-1].t, 6)
                ev.append(e)
                late = [p for p in b_data if p.t > c.t]
                if late:
                    ev.append(late[0].ev("backend's response arrives after the proxy gave up"))
                return res
    # Not a failure by itself: the backend closed an idle connection and the
    # proxy sent nothing after. A proxy `EOF` line at that moment means the
    # proxy had just picked this connection for a request (the idle race, lost
    # before a byte was written); kept so such lines can be joined by time.
    if b_fin and not [p for p in p_data if p.t > b_fin[0].t]:
        res["idle_close"] = b_fin[0]
    res["cause"] = None
    return res


EXTRA_KEYS = ("syn_count", "syn_spacing_s", "middlebox", "accept_queue", "pmtu", "state_lost",
              "max_requests")


def extras(conn, a):
    """Cause-specific facts of a failure (only the new causes have any), and
    for a flow split whether the proxy itself moved the flow (its next hop's
    MAC changed: a route/ECMP change, not a switch)."""
    out = {k: a[k] for k in EXTRA_KEYS if k in a}
    if a["cause"] == "flow_split":
        nh = next_hop_change(conn)
        if nh:
            out["next_hop_change"] = nh
    return out


def next_hop_change(conn):
    """The proxy's capture: the destination MAC of the flow's packets changes."""
    ps = [p for p in conn.pkts if p.node == "proxy" and p.to_backend and p.dmac]
    for a, b in zip(ps, ps[1:]):
        if b.dmac != a.dmac:
            return {"from_mac": a.dmac, "to_mac": b.dmac, "last_old": a.ev("last packet to the old "
                    "next hop"), "first_new": b.ev("first packet to the new next hop")}
    return None


def systemic_events(errs, unlogged):
    """Group failures that are one event: flows the proxy moved to another next
    hop within seconds of each other (a route change), and >= 3 failures of
    one node each within 2 s of the previous (a crash, a restart, a full
    queue, a closed port)."""
    out = []
    moved = sorted((f for f in errs + unlogged if f.get("next_hop_change")),
                   key=lambda f: f["next_hop_change"]["first_new"]["time"])
    groups = []
    for f in moved:
        t = dt.datetime.strptime(f["next_hop_change"]["first_new"]["time"],
                                 "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        if groups and t - groups[-1][-1][0] <= 3.0:
            groups[-1].append((t, f))
        else:
            groups.append([(t, f)])
    for g in groups:
        if len(g) < 2:
            continue
        nh = [f["next_hop_change"] for _, f in g]
        out.append({
            "kind": "flows_moved_to_another_node",
            # The route changed after the last packet any of these flows sent
            # to its old next hop and before the first one to its new one.
            "changed_after": max(x["last_old"]["time"] for x in nh),
            "seen_from": min(x["first_new"]["time"] for x in nh),
            "seen_until": max(x["first_new"]["time"] for x in nh),
            "connections": len(g),
            "moves": collections.Counter(f"{f.get('owner_node')} -> {','.join(f['stray_nodes'])}"
                                         for _, f in g).most_common(),
            "proxy_ports": sorted(f.get("proxy_local_port") or f.get("proxy_local_port_from_capture")
                                  or f.get("proxy_port") for _, f in g),
        })
    node_causes = {"backend_state_lost", "refused", "connect_timeout", "accept_queue_overflow"}
    by_node = collections.defaultdict(list)
    for e in errs:
        if e["cause"] in node_causes and e.get("owner_node") and e.get("connection") and \
                e["connection"].get("failure_time"):
            t = dt.datetime.strptime(e["connection"]["failure_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            by_node[e["owner_node"]].append((t.replace(tzinfo=dt.timezone.utc).timestamp(), e))
    for node, lst in sorted(by_node.items()):
        lst.sort(key=lambda x: x[0])
        # Chains of failures less than 2 s apart.
        chains = [[lst[0]]] if lst else []
        for x in lst[1:]:
            if x[0] - chains[-1][-1][0] <= 2.0:
                chains[-1].append(x)
            else:
                chains.append([x])
        for grp in chains:
            if len(grp) >= 3:
                out.append({"kind": "many_connections_to_one_node_failed", "node": node,
                            "first": iso(grp[0][0]), "last": iso(grp[-1][0]),
                            "errors": len(grp),
                            "causes": dict(collections.Counter(e["cause"] for _, e in grp)),
                            "log_lines": [e["line"] for _, e in grp]})
    return out


def parse_log(path):
    errs = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            m = ERR_RE.search(line)
            if not m:
                continue
            ts = GO_TS_RE.search(line)
            if not ts:
                raise SystemExit(f"derive_truth: {path}:{no}: proxy error line without a Go timestamp")
            t = dt.datetime.strptime(ts.group(1), "%Y/%m/%d %H:%M:%S").replace(
                tzinfo=dt.timezone.utc).timestamp()
            pm = PORT_RE.search(m.group("msg"))
            errs.append({"line": no, "text": line, "log_time": iso(t)[:19] + "Z", "_t": t,
                         "message": m.group("msg"), "error_class": error_class(m.group("msg")),
                         "proxy_local_port": int(pm.group("lport")) if pm else None})
    return errs


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    run = args[0]
    allow_empty = "--allow-empty" in argv
    quiet = "--quiet" in argv
    cfg = json.load(open(os.path.join(run, "lab.json")))
    if not shutil.which("tshark"):
        raise SystemExit("derive_truth: tshark not found")
    backends = sorted(n for n, v in cfg["nodes"].items() if v["role"] == "backend")
    nodes = ["proxy"] + backends
    all_pkts, node_info = [], {}
    ctx = {"spans": {}, "icmp_frag_needed": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for n in nodes:
            ps, info = load_node(run, n, cfg, tmp)
            all_pkts.extend(ps)
            ctx["spans"][n] = info.pop("_span")
            node_info[n] = info
        ctx["icmp_frag_needed"]["proxy"] = icmp_frag_needed(run, "proxy", cfg, tmp)
    conns = build_conns(all_pkts)
    analysed = [(c, analyse(c, backends, ctx)) for c in conns]
    # A request budget per connection shows across connections: the same
    # number of responses before every close the backends make ms after one.
    per_conn_n, close_counts = requests_per_connection(analysed, backends)
    analysed = [(c, as_max_requests(c, a, per_conn_n) or a) for c, a in analysed]
    failures = [(c, a) for c, a in analysed if a["cause"]]

    errs = parse_log(os.path.join(run, "logs", "proxy.log"))
    claimed = set()
    # 1) errors naming the proxy port: the instance alive at the log time.
    for e in errs:
        port = e["proxy_local_port"]
        if port is None:
            continue
        cands = [(c, a) for c, a in analysed if c.port == port and c.syn.t <= e["_t"] + 1.0]
        if not cands:
            e["matched_by"] = None
            continue
        c, a = max(cands, key=lambda ca: ca[0].syn.t)
        claimed.add(id(c))
        e["matched_by"] = "port"
        e["_a"] = a
        e["_c"] = c
    # 2) errors without a port: the failure of a matching kind when the proxy
    #    gave up (an instant: its FIN/RST or the RST it got; or, when giving
    #    up sent no packet, an interval) within 1 s of the line's second
    #    [L, L+1). Assigned over all lines at once: the most specific texts
    #    first (`dial ...: i/o timeout` can only be a connect failure,
    #    `context canceled` could be many), then a known instant before an
    #    interval that merely covers the line, then the nearest to L + 0.5,
    #    then the earliest failure (constant timeouts keep the order).
    portless = [e for e in errs if e["proxy_local_port"] is None]
    cand_of = {}
    for e in portless:
        kinds = TIME_MATCH_KINDS.get(e["error_class"], set())
        cs = []
        for c, a in failures:
            if id(c) in claimed or a["cause"] not in kinds:
                continue
            lo, hi = a.get("join_interval", (a["event_time"], a["event_time"]))
            if not (lo - e["_t"] < 1.0 and hi - e["_t"] >= -1.0):
                continue
            m = e["_t"] + 0.5
            cs.append((0.0 if lo <= m <= hi else min(abs(lo - m), abs(hi - m)), lo, c, a))
        cand_of[id(e)] = cs
    pairs = sorted(((len(TIME_MATCH_KINDS.get(e["error_class"], ())), "join_interval" in a, dist, lo,
                     e["line"], e, c, a)
                    for e in portless for dist, lo, c, a in cand_of[id(e)]),
                   key=lambda x: x[:5])
    for _, _, _, _, _, e, c, a in pairs:
        if "_a" in e or id(c) in claimed:
            continue
        claimed.add(id(c))
        e["matched_by"] = "time"
        e["_a"], e["_c"] = a, c
        if a["cause"] not in ("refused", "proxy_abandoned", "idle_race", "backend_reset"):
            # Port-less lines of the new kinds often come in bursts (one
            # client timeout, one dial timeout): say which connections the
            # same line could belong to.
            cs = cand_of[id(e)]
            e["candidate_ports"] = sorted(cc.port for _, _, cc, _ in cs)
            e["candidate_causes"] = sorted({aa["cause"] for _, _, _, aa in cs})
            e["ambiguous_connection"] = len(cs) > 1
    for e in portless:
        if "_a" in e:
            continue
        if e["error_class"] in ("eof", "server_closed_idle"):
            # The idle race lost before the proxy wrote anything: the only
            # trace is the backend's FIN on an idle connection at that second.
            cands = [(c, a) for c, a in analysed if a.get("idle_close") is not None
                     and id(c) not in claimed
                     and -1.0 <= a["idle_close"].t - e["_t"] < 1.0]
            if cands:
                c, a = min(cands, key=lambda ca: abs(ca[1]["idle_close"].t - e["_t"] - 0.5))
                fin = a["idle_close"]
                info = owner_close_info(c, a["owner_nodes"][0]) if per_conn_n else None
                if info and info["responses"] == per_conn_n and \
                        info["gap_s"] < MAX_REQUESTS_CLOSE_GAP_S:
                    a = dict(a, cause="max_requests_close", event_time=fin.t, evidence=[
                        info["last_response"].ev(f"response number {per_conn_n} on this connection"),
                        fin.ev(f"owner closes the connection {info['gap_s'] * 1000:.1f} ms later, "
                               "as the proxy picks it (nothing written yet)")])
                    a["max_requests"] = {"responses_on_connection": per_conn_n,
                                         "close_after_last_response_s": round(info["gap_s"], 6)}
                else:
                    a = dict(a, cause="idle_race", event_time=fin.t,
                             evidence=[fin.ev("owning backend closes an idle keep-alive connection "
                                              "as the proxy picks it (nothing written yet)")])
                claimed.add(id(c))
                e["matched_by"] = "time"
                e["candidate_ports"] = sorted(cc.port for cc, _ in cands)
                e["ambiguous_connection"] = len(cands) > 1
                e["_a"], e["_c"] = a, c
            else:
                e["matched_by"] = None
        else:
            e["matched_by"] = None

    out_errs = []
    for e in errs:
        a, c = e.pop("_a", None), e.pop("_c", None)
        e.pop("_t")
        if a is None:
            e.update(cause="not_in_capture", owner_node=None, stray_nodes=[], connection=None,
                     evidence=[])
        else:
            e.update(cause=a["cause"] or "unknown",
                     owner_node=a["owner_nodes"][0] if a["owner_nodes"] else None,
                     stray_nodes=a["stray_nodes"],
                     connection={"proxy_port": c.port, "syn_time": iso(c.syn.t),
                                 "proxy_isn": c.isn,
                                 "failure_time": iso(a["event_time"]) if a["event_time"] else None,
                                 "nodes_seen": sorted({p.node for p in c.pkts})},
                     evidence=a["evidence"])
            if e["proxy_local_port"] is None:
                e["proxy_local_port_from_capture"] = c.port
            e.update(extras(c, a))
        out_errs.append(e)

    unlogged = []
    for c, a in failures:
        if id(c) not in claimed:
            unlogged.append(dict({"proxy_port": c.port, "cause": a["cause"],
                                  "failure_time": iso(a["event_time"]),
                                  "owner_node": a["owner_nodes"][0] if a["owner_nodes"] else None,
                                  "stray_nodes": a["stray_nodes"], "evidence": a["evidence"]},
                                 **extras(c, a)))

    by_class = collections.Counter(e["error_class"] for e in out_errs)
    by_cause = collections.Counter(e["cause"] for e in out_errs)
    strays = collections.Counter(n for e in out_errs for n in e["stray_nodes"])
    owners = collections.Counter(e["owner_node"] for e in out_errs if e["owner_node"])
    truth = {
        "generated_by": "examples/lab/derive_truth.py",
        "scenarios": cfg.get("scenarios", []),
        "timezone_of_log_lines": cfg.get("timezone_of_logs", "UTC"),
        "vip": cfg["vip"], "proxy_ip": cfg["proxy"]["ip"],
        "clock_offsets_applied_s": cfg.get("clock_offsets_applied_s", {}),
        "duplicate_capture_nodes": [n for n, i in node_info.items() if i["duplicates_dropped"]],
        "compression": cfg.get("compression", {}),
        "nodes": node_info,
        "summary": {
            "error_lines": len(out_errs),
            "by_error_class": dict(sorted(by_class.items())),
            "by_cause": dict(sorted(by_cause.items())),
            "owner_nodes": dict(sorted(owners.items())),
            "stray_nodes": dict(sorted(strays.items())),
            "matched_by_port": sum(1 for e in out_errs if e["matched_by"] == "port"),
            "matched_by_time": sum(1 for e in out_errs if e["matched_by"] == "time"),
            "unmatched": sum(1 for e in out_errs if e["matched_by"] is None),
            "connections_in_captures": len(conns),
            "failed_connections_without_log_line": len(unlogged),
        },
        "errors": out_errs,
        "failures_without_log_line": unlogged,
        # Across errors: many connections failing on one node at once, many
        # flows moving to another node at once (derived from the packets;
        # `lab_events` is what the lab did, for comparison only).
        "systemic_events": systemic_events(out_errs, unlogged),
        "lab_events": cfg.get("events", []),
    }
    if per_conn_n is not None:
        truth["requests_per_connection"] = {
            "responses_before_backend_close": per_conn_n,
            "closes_observed": len(close_counts),
            "closes_with_that_count": close_counts.count(per_conn_n)}
    with open(os.path.join(run, "truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")
    if not quiet:
        s = truth["summary"]
        print(f"truth: {s['error_lines']} error lines; classes {s['by_error_class']}; "
              f"causes {s['by_cause']}; owners {s['owner_nodes']}; strays {s['stray_nodes']}; "
              f"unmatched {s['unmatched']}; failed conns without a log line "
              f"{s['failed_connections_without_log_line']}")
        for n, i in node_info.items():
            print(f"  {n}: {len(i['files'])} files, {i['packets']} packets"
                  + (f", {i['duplicates_dropped']} capture duplicates dropped"
                     if i["duplicates_dropped"] else "")
                  + (f", clock offset {i['clock_offset_applied_s']:+} s removed"
                     if i["clock_offset_applied_s"] else ""))
    if not out_errs and not allow_empty:
        print("derive_truth: no proxy error lines in the log", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
