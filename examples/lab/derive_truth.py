#!/usr/bin/env python3
"""Derive the ground truth of a lab run from what its captures show.

usage: derive_truth.py RUN_DIR [--allow-empty] [--quiet]

RUN_DIR holds logs/proxy.log, captures/<node>/... and lab.json (written by
lab.sh). For every `http: proxy error:` line of the proxy log this finds the
proxy->VIP connection in the captures of every node and says, from the packets
alone, what broke:

  flow_split      a backend that never saw the connection's SYN received one of
                  its segments and answered RST (the seed's switch problem)
  refused         the proxy's SYN was answered with RST by the node it reached
  idle_race       the owning backend closed (FIN) the idle keep-alive connection
                  and the proxy's next request arrived after that FIN
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
unclaimed failure of the matching kind within the log's 1 s resolution.

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

ERR_RE = re.compile(r"http: proxy error: (?P<msg>.*)$")
GO_TS_RE = re.compile(r"(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) http: proxy error:")
PORT_RE = re.compile(r"tcp (?P<lip>[\d.]+):(?P<lport>\d+)->(?P<rip>[\d.]+):(?P<rport>\d+)")

# Which failure kinds a log line without a port may be joined to.
TIME_MATCH_KINDS = {
    "refused": {"refused"},
    "response_header_timeout": {"proxy_abandoned"},
    "context_canceled": {"proxy_abandoned"},
    "eof": {"idle_race", "backend_reset"},
    "server_closed_idle": {"idle_race"},
}


def error_class(msg):
    """Classify the Go error text the way an operator reads it."""
    if "connect: connection refused" in msg:
        return "refused"
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
                 "seq", "ack", "len", "ipid", "iface")

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
           "-e", "tcp.len", "-e", "ip.id", "-e", "sll.ifindex", "-e", "frame.interface_id"]
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
    for path in node_files(capdir):
        rel = os.path.relpath(path, run)
        readable = path
        if path.endswith(".zst"):
            # Not every tshark build reads zstd: decompress to a scratch copy.
            readable = os.path.join(tmp, os.path.basename(path)[:-4])
            subprocess.run(["zstd", "-q", "-d", "-f", path, "-o", readable], check=True)
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
    return kept, info


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


def analyse(conn, backends):
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
        return res
    o = owners[0]
    ps = nodes[o]
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
    with tempfile.TemporaryDirectory() as tmp:
        for n in nodes:
            ps, info = load_node(run, n, cfg, tmp)
            all_pkts.extend(ps)
            node_info[n] = info
    conns = build_conns(all_pkts)
    analysed = [(c, analyse(c, backends)) for c in conns]
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
    # 2) errors without a port: nearest unclaimed failure of a matching kind
    #    within the log's second (event in [log_s - 1, log_s + 1)).
    for e in errs:
        if e["proxy_local_port"] is not None:
            continue
        kinds = TIME_MATCH_KINDS.get(e["error_class"], set())
        best = None
        for c, a in failures:
            if id(c) in claimed or a["cause"] not in kinds:
                continue
            d = a["event_time"] - e["_t"]
            if -1.0 <= d < 1.0 and (best is None or abs(d - 0.5) < abs(best[0] - 0.5)):
                best = (d, c, a)
        if best:
            claimed.add(id(best[1]))
            e["matched_by"] = "time"
            e["_a"], e["_c"] = best[2], best[1]
        elif e["error_class"] in ("eof", "server_closed_idle"):
            # The idle race lost before the proxy wrote anything: the only
            # trace is the backend's FIN on an idle connection at that second.
            cands = [(c, a) for c, a in analysed if a.get("idle_close") is not None
                     and id(c) not in claimed
                     and -1.0 <= a["idle_close"].t - e["_t"] < 1.0]
            if cands:
                c, a = min(cands, key=lambda ca: abs(ca[1]["idle_close"].t - e["_t"] - 0.5))
                fin = a["idle_close"]
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
        out_errs.append(e)

    unlogged = []
    for c, a in failures:
        if id(c) not in claimed:
            unlogged.append({"proxy_port": c.port, "cause": a["cause"],
                             "failure_time": iso(a["event_time"]),
                             "owner_node": a["owner_nodes"][0] if a["owner_nodes"] else None,
                             "stray_nodes": a["stray_nodes"], "evidence": a["evidence"]})

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
    }
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
