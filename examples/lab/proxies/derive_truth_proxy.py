#!/usr/bin/env python3
"""Ground truth of a lab run whose proxy was nginx, HAProxy, Caddy or Traefik.

usage: derive_truth_proxy.py RUN_DIR --proxy nginx|haproxy|caddy|traefik

../derive_truth.py derives what broke from the captures alone and joins each
error line of a Go proxy's log to its connection. This runs the same
derivation (imported, not copied) with the log reader swapped for one that
reads this proxy's own log (OUT/logs/<file> below) into the same per-line
facts: the line, its time, the error class in derive_truth's words, and the
proxy's local port when the line prints it (HAProxy's %bi:%bp, Caddy's and
Traefik's Go errors). Lines without a port join by time like Go's port-less
lines; a reset with no port (nginx's `recv() failed (104: ...)`, HAProxy's
`SH` without %bi:%bp) may join a flow split, a backend reset or an idle race
(derive_truth only ever sees those classes with a port). truth.json gains
`"log_file"`: the file whose lines `errors[].line` numbers.
"""
import datetime as dt
import importlib.util
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("derive_truth", os.path.join(HERE, "..", "derive_truth.py"))
DT = importlib.util.module_from_spec(spec)
spec.loader.exec_module(DT)

LOG_FILES = {
    "nginx": "logs/nginx-error.log",
    "haproxy": "logs/haproxy.log",
    "caddy": "logs/caddy.log",
    "traefik": "logs/traefik.log",
}
RESETS = {"flow_split", "backend_reset", "idle_race"}
for k in ("read_reset", "write_reset", "broken_pipe", "use_of_closed_conn"):
    DT.TIME_MATCH_KINDS.setdefault(k, set()).update(RESETS)
DT.TIME_MATCH_KINDS.setdefault("connect_timeout", set())

NGINX_RE = re.compile(
    r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] \d+#\d+: \*\d+ (?P<what>.*?) while "
    r"(?P<during>connecting to upstream|sending request to upstream|reading response header from upstream)")
HAPROXY_RE = re.compile(
    r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] \S+ \S+/(\S+) (?:(?P<bi>[\d.]+):(?P<bp>\d+) )?"
    r"(?P<timers>[-\d+]+/[-\d+]+/[-\d+]+/[-\d+]+/[-\d+]+) (?P<status>-?\d+) \S+ \S+ \S+ (?P<tsc>\S{4})")


def utc(s, fmt):
    return dt.datetime.strptime(s, fmt).replace(tzinfo=dt.timezone.utc).timestamp()


def nginx_line(line):
    m = NGINX_RE.search(line)
    if not m:
        return None
    what, during = m.group("what"), m.group("during")
    t = utc(m.group(1), "%Y/%m/%d %H:%M:%S")  # the lab runs everything with TZ=UTC
    if "Connection refused" in what:
        cls = "refused"
    elif "timed out" in what:
        cls = "connect_timeout" if during.startswith("connecting") else "response_header_timeout"
    elif "(104:" in what:
        cls = "write_reset" if during.startswith("sending") else "read_reset"
    elif "(32:" in what:
        cls = "broken_pipe"
    elif "prematurely closed" in what:
        cls = "eof"
    else:
        cls = "other"
    return t, what + " while " + during, cls, None


def haproxy_line(line):
    m = HAPROXY_RE.search(line)
    if not m:
        return None
    status, tsc = int(m.group("status")), m.group("tsc")
    if not (502 <= status <= 504 or (status <= 0 and tsc[0] in "Ss")):
        return None
    total = int(m.group("timers").split("/")[-1].lstrip("+"))
    t = utc(m.group(1), "%d/%b/%Y:%H:%M:%S.%f") + max(total, 0) / 1000.0
    cls = {"SC": "refused", "sC": "connect_timeout", "sH": "response_header_timeout"}.get(
        tsc[:2], "read_reset" if tsc[0] == "S" else "other")
    port = int(m.group("bp")) if m.group("bp") else None
    return t, line.split("]: ", 1)[-1].strip(), cls, port


def go_error(msg):
    pm = DT.PORT_RE.search(msg)
    return DT.error_class(msg), int(pm.group("lport")) if pm else None


def caddy_line(line):
    try:
        d = json.loads(line)
    except ValueError:
        return None
    if not str(d.get("logger", "")).startswith("http.log.error") or d.get("status") not in (502, 503, 504):
        return None
    cls, port = go_error(d["msg"])
    return float(d["ts"]), d["msg"], cls, port


def traefik_line(line):
    try:
        d = json.loads(line)
    except ValueError:
        return None
    msg = str(d.get("message", ""))
    if not re.match(r"^(502|503|504) ", msg) or "error" not in d:
        return None
    cls, port = go_error(d["error"])
    return utc(d["time"], "%Y-%m-%dT%H:%M:%SZ"), d["error"], cls, port


# Proxies whose stamps are finer than a second.
FINE = {"haproxy", "caddy"}

READERS = {"nginx": nginx_line, "haproxy": haproxy_line, "caddy": caddy_line, "traefik": traefik_line}


def reader(kind, run):
    path = os.path.join(run, LOG_FILES[kind])

    def parse_log(_ignored):
        errs = []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for no, line in enumerate(fh, 1):
                line = line.rstrip("\n")
                got = READERS[kind](line)
                if got is None:
                    continue
                t, msg, cls, port = got
                # derive_truth matches a port-less line to the failure nearest
                # half a second after its stamp (Go's whole seconds); a
                # finer stamp is the moment itself.
                match_t = t - 0.5 if kind in FINE else t
                errs.append({"line": no, "text": line, "log_time": DT.iso(t), "_t": match_t,
                             "message": msg, "error_class": cls, "proxy_local_port": port})
        return errs
    return parse_log


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    kind = argv[argv.index("--proxy") + 1] if "--proxy" in argv else None
    if kind not in READERS or len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run = args[0]
    DT.parse_log = reader(kind, run)
    rc = DT.main([argv[0], run] + [a for a in argv[1:] if a in ("--allow-empty", "--quiet")])
    p = os.path.join(run, "truth.json")
    truth = json.load(open(p))
    truth["generated_by"] = "examples/lab/proxies/derive_truth_proxy.py (examples/lab/derive_truth.py's derivation)"
    truth["proxy_program"] = kind
    truth["log_file"] = LOG_FILES[kind]
    with open(p, "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
