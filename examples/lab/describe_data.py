#!/usr/bin/env python3
"""Write examples/data/README.md from the recorded datasets' own files.

usage: describe_data.py [DATA_DIR]   (default: examples/data next to this script)

Every figure in the README comes from a dataset's lab.json, logs/loadgen.json,
logs/switch-nft-ruleset.txt, truth.json and the files on disk, so re-recording
and re-running this keeps the README true.
"""
import collections
import datetime as dt
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "data")

ORDER = ["demo", "flow-split", "idle-race", "refused", "backend-reset", "slow-backend",
         "client-cancel", "clock-offset", "duplicate-capture", "gzip-old-rotations",
         "middlebox-reset", "backend-crash", "pmtu-blackhole", "syn-drop", "accept-queue",
         "accept-queue-abort", "max-requests", "ecmp-rehash"]

WHAT = {
    "demo": "The seed's case: the switch occasionally sends the 2nd data segment of a POST to "
            "another backend, which has no socket for it and answers RST. The README demo runs "
            "on this one.",
    "flow-split": "Same failure as the demo, shorter run.",
    "idle-race": "Backends close idle keep-alive connections after 1 s; the proxy (IdleConnTimeout "
                 "90 s, as in the seed) reuses them at that very moment.",
    "refused": "backend-03's port closes a third into the run; the switch keeps hashing new flows "
               "to it. Backends answer without keep-alive so the proxy dials per request.",
    "backend-reset": "Backends abort some large requests after 1 KB of body (Hijack + SO_LINGER 0).",
    "slow-backend": "Proxy ResponseHeaderTimeout 1 s (this scenario only); backends delay some "
                    "responses by 2 s.",
    "client-cancel": "The client gives up after 1 s; backends delay some responses by 2 s.",
    "clock-offset": "Flow split, and backend-02's capture timestamps shifted afterwards with "
                    "`editcap -t` (an unsynchronised clock).",
    "duplicate-capture": "Flow split, and backend-01 captured with `tcpdump -i any` over a bridge "
                         "inside the node and its member veth: every packet recorded twice "
                         "(Linux cooked capture).",
    "gzip-old-rotations": "Flow split, and all but the newest rotation of backend-01 gzipped, of "
                          "backend-03 zstd-compressed.",
    "middlebox-reset": "A routed stateful firewall (conntrack, established timeout 5 s, no mid-stream "
                       "pickup, `ct state invalid reject with tcp reset`) between the proxy (here "
                       "`198.18.2.2`, its own subnet) and the switch. Load comes in pulses, so pooled "
                       "connections idle ~7 s; the firewall has forgotten them and answers the next "
                       "request with its own RST. The firewall is not captured: the RST is only in the "
                       "proxy's capture, with TTL 64 and IP ID 0 where the backend's packets arrive "
                       "with TTL 63 and counting IDs.",
    "backend-crash": "backend-02 crashes a third into the run: its outgoing FIN/RST dropped, its "
                     "server killed and its sockets destroyed; 2 s later it is back on the network "
                     "with no state (its kernel answers RST), 3 s later a new server listens. The "
                     "proxy's pooled connections to it fail within milliseconds of each other, each "
                     "after retransmissions, with a bare RST (seq = the segment's ACK, IP ID 0).",
    "pmtu-blackhole": "The switch port toward backend-03 has MTU 1400 (the node keeps 1500 and "
                      "advertises MSS 1460): full-size frames are dropped silently, no ICMP. Requests "
                      "needing a full-size segment hang; the client gives up after 2 s and the proxy "
                      "logs `context canceled` (no port: joined by time).",
    "syn-drop": "backend-01's firewall drops SYNs (its capture still has them). No keep-alive, so "
                "the proxy dials per request; proxy Dialer.Timeout 3 s: `dial tcp ...: i/o timeout`.",
    "accept-queue": "backend-02 listens with backlog 2 and accepts one connection per 1.5 s; 12 "
                    "clients dial together. Handshake ACKs that find the queue full are dropped and "
                    "the SYN-ACK repeats while the request stays unacknowledged; SYNs that find it full "
                    "are dropped; SYN cookies end in a RST. Default kernel settings.",
    "accept-queue-abort": "As `accept-queue`, with `net.ipv4.tcp_abort_on_overflow=1` on backend-02: "
                          "a RST right after the handshake ACK (`dial tcp ...: connect: connection "
                          "reset by peer`).",
    "max-requests": "Backends close a keep-alive connection 15 ms after its 10th response, without "
                    "`Connection: close`; requests come milliseconds apart, so the proxy's next "
                    "request sometimes crosses the close.",
    "ecmp-rehash": "The proxy reaches the VIP over a kernel multipath route (nexthops = the three "
                   "backends, L4 hash). A third into the run backend-03's nexthop is removed, at two "
                   "thirds it comes back: established flows are rehashed, many move to another "
                   "backend at once, which answers RST.",
}


def facts(t):
    """Cause-specific lines of the newer datasets, from truth.json."""
    out = []
    errs = t["errors"]
    mb = sorted((e["middlebox"] for e in errs if e.get("middlebox")), key=lambda m: -len(m["differs"]))
    if mb:
        out.append(f"* middlebox RST vs the owner's packets at the proxy: RST "
                   f"{mb[0]['rst_fingerprint']}, owner {mb[0]['owner_fingerprint_at_proxy']}; "
                   f"differs {sorted({d for m in mb for d in m['differs']})}; idle gaps "
                   f"{sorted(round(m['idle_gap_s'], 1) for m in mb)} s")
    sl = [e["state_lost"] for e in errs if e.get("state_lost")]
    if sl:
        out.append(f"* state lost: RST {sl[0]['rst_fingerprint']} vs owner "
                   f"{sl[0]['owner_fingerprint_at_proxy']}; RST after "
                   f"{sorted(round(x['rst_after_first_transmission_s'], 2) for x in sl)} s, "
                   f"transmissions before it {sorted(x['transmissions_before_rst'] or 0 for x in sl)}")
    pm = [e["pmtu"] for e in errs if e.get("pmtu")]
    if pm:
        out.append(f"* path MTU: largest IP packet delivered {max(p['largest_ip_packet_delivered'] for p in pm)}, "
                   f"smallest lost {min(p['smallest_ip_packet_lost'] for p in pm)}; transmissions of one "
                   f"lost segment up to {max(p['max_transmissions_of_one_segment'] for p in pm)}; ICMP "
                   f"frag-needed at the proxy: {max(p['icmp_frag_needed_at_proxy'] for p in pm)}")
    aq = [e["accept_queue"]["variant"] for e in errs if e.get("accept_queue")]
    if aq:
        out.append(f"* accept queue overflow variants: {dict(sorted(collections.Counter(aq).items()))}")
    ct = [e["syn_count"] for e in errs if e.get("syn_count")]
    if ct:
        out.append(f"* unanswered SYNs per failed dial: {dict(sorted(collections.Counter(ct).items()))}")
    rpc = t.get("requests_per_connection")
    if rpc:
        out.append(f"* backends closed {rpc['closes_observed']} connections milliseconds after a "
                   f"response; {rpc['closes_with_that_count']} of them after exactly "
                   f"{rpc['responses_before_backend_close']} responses")
    amb = sum(1 for e in errs if e.get("ambiguous_connection") and "candidate_causes" in e)
    if amb:
        out.append(f"* port-less lines joined by time with more than one candidate connection: {amb} "
                   "(see `candidate_ports`/`candidate_causes`)")
    for x in t.get("systemic_events", []):
        if x["kind"] == "flows_moved_to_another_node":
            out.append(f"* systemic: {x['connections']} flows moved to another node, route changed "
                       f"after {x['changed_after']} (seen {x['seen_from']} .. {x['seen_until']}); "
                       f"moves {dict(x['moves'])}")
        else:
            out.append(f"* systemic: {x['errors']} failures of {x['node']} from {x['first']} to "
                       f"{x['last']} ({x['causes']})")
    for x in t.get("lab_events", []):
        out.append(f"* lab event (what the lab did, not used for the truth): "
                   f"{iso_s(x['epoch'])} {x['what']}")
    return out


def flags_of(lab):
    """The lab.sh flags of a dataset (options that change a scenario included)."""
    if lab.get("argv"):
        out, skip = [], False
        for a in lab["argv"]:
            if skip:
                skip = False
            elif a == "--out":
                skip = True
            elif a != "--keep-going":
                out.append(a)
        return " ".join(out)
    f = " ".join("--" + x for x in lab["scenarios"])
    if lab.get("accept_queue", {}).get("tcp_abort_on_overflow"):
        f += " --abort-on-overflow"
    return f


def iso_s(epoch):
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def size_of(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def kb(n):
    return f"{n / 1024:.0f} KB"


def split_counters(ds):
    p = os.path.join(ds, "logs", "switch-nft-ruleset.txt")
    if not os.path.exists(p):
        return None
    n = 0
    for line in open(p):
        if "split-from" in line:
            m = re.search(r"counter packets (\d+)", line)
            if m:
                n += int(m.group(1))
    return n


def main():
    names = [n for n in ORDER if os.path.isdir(os.path.join(DATA, n))]
    # Datasets are the folders with a lab.json (proxies/ holds datasets of
    # other proxies, described in its own README).
    names += sorted(n for n in os.listdir(DATA)
                    if os.path.exists(os.path.join(DATA, n, "lab.json")) and n not in names)
    out = []
    w = out.append
    w("# Recorded lab datasets\n")
    w("Real logs and real captures of real failures, recorded by `examples/lab/lab.sh` in network "
      "namespaces on one machine (see `examples/lab/README.md`). Re-record with "
      "`sudo examples/lab/record-examples.sh`, then regenerate this file with "
      "`python3 examples/lab/describe_data.py`.\n")
    w("**Time zone: UTC.** The proxy runs with `TZ=UTC`: both the journald-style prefix "
      "(`Nov 25 00:01:38`, no year) and Go's `log` timestamp (`2026/11/25 00:01:38`) are UTC; "
      "a pipeline reading these logs sets `tz = \"UTC\"`. Capture timestamps are UTC epoch as "
      "always (except the deliberately shifted node of `clock-offset`).\n")
    w("Addresses: proxy `198.18.0.2` (backend side; `198.18.2.2` behind the firewall of "
      "`middlebox-reset`), VIP `198.18.10.10:80` answered by "
      "backend-01 `198.18.0.11`, backend-02 `198.18.0.12`, backend-03 `198.18.0.13`. Every "
      "dataset has the same layout:\n")
    w("```\n<name>/lab.json            what ran (flags, addresses, capture commands, offsets)\n"
      "<name>/truth.json          per proxy error line: cause, owner node, stray nodes, evidence "
      "(node, file, frame, time)\n"
      "<name>/logs/proxy.log      journald-style text;  logs/proxy.ndjson: the same lines as "
      "Filebeat documents\n"
      "<name>/logs/...            backend event logs, load generator summary, switch ruleset "
      "with counters\n"
      "<name>/captures/{proxy,backend-01,backend-02,backend-03}/   rotated captures\n```\n")
    w("Capture naming: proxy `proxy-%Y%m%dT%H%M%S.pcap` (tcpdump -G 15), backend-01 "
      "`backend-01_%Y%m%d_%H%M%S.pcap` (tcpdump -G 10), backend-02 `backend-02.pcap00` "
      "(tcpdump -C 1 -W 20: 1 MB is tcpdump 4.99.3's smallest size, so these short runs fill "
      "only the first file), backend-03 `backend-03_NNNNN_YYYYmmddHHMMSS.pcapng` (dumpcap ring "
      "buffer, 10 s). Snap length 96.\n")
    grand = 0
    rows = []
    for n in names:
        ds = os.path.join(DATA, n)
        t = json.load(open(os.path.join(ds, "truth.json")))
        lab = json.load(open(os.path.join(ds, "lab.json")))
        lg = json.load(open(os.path.join(ds, "logs", "loadgen.json")))
        s = t["summary"]
        sz = size_of(ds)
        grand += sz
        rows.append((n, s, sz, lg))
    w("## Overview\n")
    w("| dataset | flags | requests | proxy errors | causes (derived from captures) | size |")
    w("|---|---|---|---|---|---|")
    for n, s, sz, lg in rows:
        lab = json.load(open(os.path.join(DATA, n, "lab.json")))
        flags = flags_of(lab)
        causes = ", ".join(f"{k} {v}" for k, v in s["by_cause"].items())
        w(f"| `{n}` | `{flags}` | {lg['requests']} | {s['error_lines']} | {causes} | {kb(sz)} |")
    w(f"\nTotal: {grand / 1024 / 1024:.1f} MB.\n")
    for n, s, sz, lg in rows:
        ds = os.path.join(DATA, n)
        t = json.load(open(os.path.join(ds, "truth.json")))
        lab = json.load(open(os.path.join(ds, "lab.json")))
        w(f"## `{n}`\n")
        w(WHAT.get(n, "") + "\n")
        w(f"* ran: `lab.sh {flags_of(lab)}` for "
          f"{lab['duration_s']} s (seed {lab['seed']}"
          + (f", split {lab['split_permille']}‰ of eligible segments, mode "
             f"`{lab.get('split_mode') or 'any'}`" if lab.get("split_permille") else "") + ")")
        w(f"* traffic: {lg['requests']} POSTs, status {lg['by_status']}")
        sc = split_counters(ds)
        if sc is not None and "flow-split" in lab["scenarios"]:
            w(f"* switch counters: {sc} segment(s) sent to a non-owning backend")
            idx = [x.get("data_segment_of_request") for e in t["errors"] for x in e["evidence"]
                   if "relative_seq" in x]
            if idx:
                w(f"* stray segment, as data segment number of its request: {idx}")
        w(f"* proxy error lines: {s['error_lines']}, by class {s['by_error_class']}")
        w(f"* truth: causes {s['by_cause']}; owner nodes {s['owner_nodes']}; stray nodes "
          f"{s['stray_nodes']}; joined by port {s['matched_by_port']}, by time "
          f"{s['matched_by_time']}, unmatched {s['unmatched']}; failed connections without a "
          f"log line {s['failed_connections_without_log_line']}")
        if t["clock_offsets_applied_s"]:
            w(f"* clock offsets applied to captures: {t['clock_offsets_applied_s']} (seconds "
              f"added to that node's timestamps)")
        if t["duplicate_capture_nodes"]:
            d = {k: v['duplicates_dropped'] for k, v in t['nodes'].items() if v['duplicates_dropped']}
            w(f"* capture duplicates: {d}")
        if t["compression"]:
            w(f"* compression: {t['compression']}")
        for line in facts(t):
            w(line)
        if lab.get("go"):
            w(f"* built with: {lab['go']['version']}")
        files = {k: len(v["files"]) for k, v in t["nodes"].items()}
        w(f"* capture files per node: {files}; size {kb(sz)}")
        w("")
        w("| log time (UTC) | port | class | cause | owner | stray |")
        w("|---|---|---|---|---|---|")
        for e in t["errors"]:
            port = e["proxy_local_port"] or (f"({e['proxy_local_port_from_capture']})"
                                             if e.get("proxy_local_port_from_capture") else "-")
            w(f"| {e['log_time']} | {port} | {e['error_class']} | {e['cause']} | "
              f"{e['owner_node'] or '-'} | {', '.join(e['stray_nodes']) or '-'} |")
        w("\n(port in parentheses: not in the log line; the connection found by time.)\n"
          if any(e["proxy_local_port"] is None for e in t["errors"]) else "")
    with open(os.path.join(DATA, "README.md"), "w") as fh:
        fh.write("\n".join(out).rstrip() + "\n")
    print(f"wrote {os.path.join(DATA, 'README.md')}: {len(rows)} datasets, {grand / 1024:.0f} KB")


if __name__ == "__main__":
    main()
