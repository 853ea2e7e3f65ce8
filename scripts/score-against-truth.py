#!/usr/bin/env python3
"""Score a wiretrail JSON report against a lab run's truth.json.

    scripts/score-against-truth.py REPORT.json TRUTH.json [--min-accuracy 0.9]

Errors are matched by log line number. The lab's truth words map to
wiretrail's causes as documented in examples/data/README.md: `proxy_abandoned`
is a response timeout or a client cancel, told apart by the log line's class.
Exits 1 when cause accuracy is below the threshold, when a flow_split verdict
lands on an error whose truth is a single-node cause, or when an error of the
truth is missing from the report.
"""
import argparse
import json
import sys


def truth_cause(t):
    cause = t["cause"]
    if cause == "proxy_abandoned":
        return "client_canceled" if "context canceled" in t["message"] else "response_timeout"
    return cause


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("truth")
    ap.add_argument("--min-accuracy", type=float, default=0.9)
    a = ap.parse_args()
    report = json.load(open(a.report))
    truth = json.load(open(a.truth))
    got = {}
    for inc in report["incidents"]:
        for e in inc["errors"]:
            got[e["source"]["line"]] = e
    n = ok_cause = ok_nodes = named = missing = wrong_split = 0
    for t in truth["errors"]:
        n += 1
        e = got.get(t["line"])
        if e is None:
            missing += 1
            print(f"  line {t['line']}: missing from the report")
            continue
        d = e["diagnosis"]
        want = truth_cause(t)
        if d["cause"] == want:
            ok_cause += 1
        else:
            print(f"  line {t['line']}: cause {d['cause']}, truth {want}")
        if d["cause"] == "flow_split" and want != "flow_split":
            wrong_split += 1
        if t.get("owner_node"):
            named += 1
            if d.get("owner_node") == t["owner_node"] and sorted(d.get("stray_nodes") or []) == sorted(t.get("stray_nodes") or []):
                ok_nodes += 1
            else:
                print(f"  line {t['line']}: owner {d.get('owner_node')} strays {d.get('stray_nodes')}, "
                      f"truth {t['owner_node']} {t.get('stray_nodes')}")
    acc = ok_cause / n if n else 1.0
    print(f"score: {n} errors, {ok_cause} correct causes ({acc:.0%}), "
          f"{ok_nodes}/{named} correct node attributions, {missing} missing, "
          f"{wrong_split} flow_split on a non-split error")
    if n == 0:
        print("FAIL: the truth file has no errors")
        return 1
    if acc < a.min_accuracy or wrong_split or missing:
        print("FAIL")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
