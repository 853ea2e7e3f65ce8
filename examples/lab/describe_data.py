#!/usr/bin/env python3
"""Write examples/data/README.md from the recorded datasets' own files.

usage: describe_data.py [DATA_DIR]   (default: examples/data next to this script)

Every figure in the README comes from a dataset's lab.json, logs/loadgen.json,
logs/switch-nft-ruleset.txt, truth.json and the files on disk, so re-recording
and re-running this keeps the README true.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "data")

ORDER = ["demo", "flow-split", "idle-race", "refused", "backend-reset", "slow-backend",
         "client-cancel", "clock-offset", "duplicate-capture", "gzip-old-rotations"]

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
}


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
    names += sorted(n for n in os.listdir(DATA)
                    if os.path.isdir(os.path.join(DATA, n)) and n not in names)
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
    w("Addresses: proxy `198.18.0.2` (backend side), VIP `198.18.10.10:80` answered by "
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
        flags = " ".join("--" + x for x in lab["scenarios"])
        causes = ", ".join(f"{k} {v}" for k, v in s["by_cause"].items())
        w(f"| `{n}` | `{flags}` | {lg['requests']} | {s['error_lines']} | {causes} | {kb(sz)} |")
    w(f"\nTotal: {grand / 1024 / 1024:.1f} MB.\n")
    for n, s, sz, lg in rows:
        ds = os.path.join(DATA, n)
        t = json.load(open(os.path.join(ds, "truth.json")))
        lab = json.load(open(os.path.join(ds, "lab.json")))
        w(f"## `{n}`\n")
        w(WHAT.get(n, "") + "\n")
        w(f"* ran: `lab.sh {' '.join('--' + x for x in lab['scenarios'])}` for "
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
