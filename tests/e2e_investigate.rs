//! `wiretrail investigate --pipeline pipelines/demo.toml` on the bundled lab
//! recording (`examples/data/demo/`): the text, JSON and HTML reports and the
//! pcapng slices, checked against the recording's `truth.json` and, where
//! tshark is installed, against the capture files themselves.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const DEMO: &str = "pipelines/demo.toml";

fn demo_json(dir: &Path) -> Value {
    let out = dir.join("report.json");
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]));
    o.expect_code(0);
    assert!(
        o.stderr.contains(&format!("wrote {}", out.display())),
        "stderr does not say the JSON was written:\n{}",
        o.stderr
    );
    read_json(&out)
}

#[test]
fn demo_text_report_names_flow_split_owner_and_stray_nodes() {
    let o = run(wt(["investigate", "--pipeline", DEMO, "--color", "never"]));
    o.expect_code(0);
    let text = &o.stdout;
    assert!(
        !text.contains('\u{1b}'),
        "--color never still printed escape codes"
    );
    let verdict = text
        .lines()
        .find(|l| l.starts_with("verdict"))
        .unwrap_or_else(|| panic!("no verdict line in:\n{text}"));
    assert!(verdict.contains("flow_split"), "verdict: {verdict}");
    assert!(o.stderr.contains("1 incident(s)"), "stderr: {}", o.stderr);

    // Each proxy error of the truth: its log line, then its diagnosis naming
    // the owner (the node with the handshake) and the stray node.
    let t = truth("demo");
    let lines: Vec<&str> = text.lines().collect();
    for te in arr(&t, "errors") {
        let port = te["proxy_local_port"].as_u64().unwrap();
        let needle = format!("198.18.0.2:{port}->198.18.10.10:80");
        let i = lines
            .iter()
            .position(|l| l.contains(&needle) && l.contains("proxyhost"))
            .unwrap_or_else(|| panic!("the log line of port {port} is not in the report"));
        let diag = lines[i + 1];
        let owner = s(te, "owner_node");
        let strays = strings(&te["stray_nodes"]);
        assert!(
            diag.contains("diagnosis flow_split")
                && diag.contains(&format!("owner {owner}"))
                && diag.contains(&format!("stray {}", strays.join(", "))),
            "port {port}: expected flow_split owner {owner} stray {strays:?}, got: {diag}"
        );
        // The stray node's view of the connection: no handshake.
        let stray_row = lines[i + 2..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with('['))
            .find(|l| l.trim_start().starts_with(strays[0].as_str()))
            .unwrap_or_else(|| panic!("port {port}: no connection row for {}", strays[0]));
        assert!(stray_row.contains("no handshake"), "{stray_row}");
    }
}

#[test]
fn demo_json_report_has_the_schema_and_matches_truth() {
    let dir = tempfile::tempdir().unwrap();
    let r = demo_json(dir.path());
    let t = truth("demo");

    // Top level.
    let version = s(&r, "schema_version");
    assert!(
        version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "schema_version {version:?} is not MAJOR.MINOR"
    );
    let offsets = arr(&r, "clock_offsets");
    let mut named = BTreeSet::new();
    for o in offsets {
        has_keys(
            o,
            &["node", "offset_s", "uncertainty_s", "method"],
            "clock_offsets[]",
        );
        let m = s(o, "method");
        assert!(
            ["shared_packets", "tsval", "pinned", "reference"].contains(&m),
            "method {m}"
        );
        // Every node of the demo shares packets with the proxy: placed.
        assert!(num(o, "uncertainty_s") >= 0.0);
        // The lab's clocks are one clock: no node is off by a millisecond.
        assert!(num(o, "offset_s").abs() < 1e-3, "offset {}", short(o));
        named.insert(s(o, "node").to_string());
    }
    assert_eq!(named, NODES.iter().map(|n| n.to_string()).collect());

    let incidents = arr(&r, "incidents");
    assert_eq!(incidents.len(), 1, "one incident expected");
    let inc = &incidents[0];
    has_keys(
        inc,
        &[
            "id", "start", "end", "proxy", "backend", "verdict", "findings", "nodes", "errors",
        ],
        "incident",
    );
    assert!(rfc3339(inc, "start") <= rfc3339(inc, "end"));
    assert_eq!(s(inc, "proxy"), "proxyhost");
    assert_eq!(s(inc, "backend"), "198.18.10.10:80");
    let v = &inc["verdict"];
    has_keys(v, &["cause", "confidence", "summary"], "verdict");
    assert_eq!(s(v, "cause"), "flow_split");
    let conf = num(v, "confidence");
    assert!(conf > 0.5 && conf <= 1.0, "confidence {conf}");
    assert!(!s(v, "summary").is_empty());

    let findings = arr(inc, "findings");
    assert!(!findings.is_empty());
    for f in findings {
        has_keys(f, &["kind", "nodes", "evidence"], "findings[]");
        for ev in arr(f, "evidence") {
            has_keys(
                ev,
                &["node", "file", "frame", "time"],
                "findings[].evidence[]",
            );
            rfc3339(ev, "time");
        }
    }
    let splits = findings
        .iter()
        .filter(|f| s(f, "kind") == "flow_split")
        .count();
    assert_eq!(splits, 8, "one flow_split finding per failed connection");

    let nodes = arr(inc, "nodes");
    let mut roles = BTreeMap::new();
    for n in nodes {
        has_keys(n, &["name", "role", "saw_connection"], "nodes[]");
        assert!(n["saw_connection"].is_boolean());
        roles.insert(s(n, "name").to_string(), s(n, "role").to_string());
    }
    assert_eq!(roles.get("proxy").map(String::as_str), Some("proxy"));
    for b in &NODES[1..] {
        assert_eq!(roles.get(*b).map(String::as_str), Some("backend"), "{b}");
    }

    // Errors against truth.json, joined by the log line number.
    let by_line = truth_by_line(&t);
    let errors = arr(inc, "errors");
    assert_eq!(
        errors.len(),
        by_line.len(),
        "every proxy error is in the incident"
    );
    let mut seen_lines = BTreeSet::new();
    for e in errors {
        has_keys(
            e,
            &[
                "timestamp",
                "local",
                "remote",
                "op",
                "class",
                "host",
                "process",
                "pid",
                "syscall",
                "message",
                "source",
                "time_precision",
                "time_zone_assumed",
                "diagnosis",
                "connection",
            ],
            "errors[]",
        );
        let line = e["source"]["line"].as_u64().expect("source.line");
        assert!(seen_lines.insert(line), "line {line} twice");
        let te = &by_line[&line];
        assert_eq!(s(e, "message"), s(te, "message"), "line {line}");
        assert_eq!(rfc3339(e, "timestamp"), rfc3339(te, "log_time"));
        // The lab logs in UTC without a zone: wiretrail must say it assumed one.
        assert_eq!(e["time_zone_assumed"], Value::Bool(true));

        let d = &e["diagnosis"];
        has_keys(
            d,
            &[
                "cause",
                "confidence",
                "owner_node",
                "stray_nodes",
                "evidence",
            ],
            "diagnosis",
        );
        assert_eq!(s(d, "cause"), s(te, "cause"), "cause of line {line}");
        assert_eq!(d["owner_node"], te["owner_node"], "owner of line {line}");
        let mut got = strings(&d["stray_nodes"]);
        let mut want = strings(&te["stray_nodes"]);
        got.sort();
        want.sort();
        assert_eq!(got, want, "stray nodes of line {line}");

        // The evidence names truth's frames: the segment that went to the
        // stray node and the stray node's RST.
        let evidence: BTreeSet<_> = arr(d, "evidence")
            .iter()
            .filter(|x| s(x, "node") != "log")
            .map(evidence_key)
            .collect();
        for tev in arr(te, "evidence") {
            let what = s(tev, "what");
            if what.contains("never saw its SYN") || what.contains("RST from a node without") {
                let k = evidence_key(tev);
                assert!(
                    evidence.contains(&k),
                    "line {line}: truth evidence {k:?} ({what}) missing from {evidence:?}"
                );
            }
        }

        let conns = arr(e, "connection");
        let per_node: BTreeMap<&str, &Value> = conns.iter().map(|c| (s(c, "node"), c)).collect();
        for c in conns {
            has_keys(
                c,
                &["node", "conn_state", "history", "first", "last", "packets"],
                "connection[]",
            );
        }
        let owner = s(te, "owner_node");
        let oc = per_node
            .get(owner)
            .unwrap_or_else(|| panic!("line {line}: no connection view of owner {owner}"));
        assert!(
            s(oc, "history").starts_with('S'),
            "owner saw the SYN: {}",
            short(oc)
        );
        for st in &want {
            let sc = per_node
                .get(st.as_str())
                .unwrap_or_else(|| panic!("line {line}: no connection view of stray {st}"));
            assert!(
                !s(sc, "history").contains('S'),
                "stray node {st} cannot have seen the SYN: {}",
                short(sc)
            );
        }
    }

    // The evidence frames exist in the named capture files, belong to the
    // failed connection, and every RST named as one is a RST.
    if !require_tool(
        "tshark",
        "that the evidence frames exist and are what they claim",
    ) {
        return;
    }
    let mut frames_by_file: BTreeMap<PathBuf, BTreeMap<u64, (u16, u16, u16)>> = BTreeMap::new();
    let mut checked = 0;
    for e in errors {
        let port: u16 = s(e, "local").rsplit(':').next().unwrap().parse().unwrap();
        let line = e["source"]["line"].as_u64().unwrap();
        let te = &by_line[&line];
        let rsts: BTreeSet<_> = truth_backend_rsts(te).into_iter().collect();
        for ev in arr(&e["diagnosis"], "evidence") {
            if s(ev, "node") == "log" {
                continue;
            }
            let file = PathBuf::from(s(ev, "file"));
            let frames = frames_by_file
                .entry(file.clone())
                .or_insert_with(|| tshark_frames(&file));
            let n = ev["frame"].as_u64().unwrap();
            let &(flags, sp, dp) = frames.get(&n).unwrap_or_else(|| {
                panic!("{}#{n} is not a TCP frame of that file", file.display())
            });
            assert!(
                sp == port || dp == port,
                "{}#{n} is not on port {port} (ports {sp}->{dp})",
                file.display()
            );
            let note = ev.get("note").and_then(Value::as_str).unwrap_or("");
            let is_rst = rsts.contains(&evidence_key(ev))
                || note.contains("stateless reply")
                || note.contains("resets the connection");
            if is_rst {
                assert!(
                    flags & TCP_RST != 0,
                    "{}#{n} is called a RST ({note}) but its flags are {flags:#x}",
                    file.display()
                );
            }
            if note.starts_with("handshake on") {
                assert!(
                    flags & TCP_SYN != 0,
                    "{}#{n} is no handshake: {flags:#x}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8 * 4, "only {checked} evidence frames checked");
}

/// Only backend-01 and backend-02 (bare `--node NAME` picks from the
/// pipeline): the connection owned by backend-03 has no owner in the
/// captures. wiretrail must not invent one, nor call it a flow split; the
/// other errors keep truth's diagnosis.
#[test]
fn demo_without_the_owners_captures_does_not_invent_an_owner() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--node",
        "backend-01",
        "--node",
        "backend-02",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let r = read_json(&out);
    let inc = &arr(&r, "incidents")[0];
    let names: BTreeSet<&str> = arr(inc, "nodes").iter().map(|n| s(n, "name")).collect();
    assert_eq!(names, BTreeSet::from(["backend-01", "backend-02"]));
    let by_line = truth_by_line(&truth("demo"));
    let mut uncaptured_owner = 0;
    for e in arr(inc, "errors") {
        let te = &by_line[&e["source"]["line"].as_u64().unwrap()];
        let d = &e["diagnosis"];
        if s(te, "owner_node") == "backend-03" {
            uncaptured_owner += 1;
            assert!(d["owner_node"].is_null(), "invented owner: {}", short(d));
            assert_ne!(s(d, "cause"), "flow_split", "{}", short(d));
            if s(d, "cause") == "stray_rst" {
                assert_eq!(strings(&d["stray_nodes"]), strings(&te["stray_nodes"]));
            }
        } else {
            assert_eq!(s(d, "cause"), s(te, "cause"));
            assert_eq!(d["owner_node"], te["owner_node"]);
            assert_eq!(d["stray_nodes"], te["stray_nodes"]);
        }
    }
    assert_eq!(uncaptured_owner, 1);
}

#[test]
fn demo_incident_id_is_stable_across_runs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (ra, rb) = (demo_json(a.path()), demo_json(b.path()));
    let id = |r: &Value| s(&arr(r, "incidents")[0], "id").to_string();
    assert_eq!(id(&ra), id(&rb));
    assert!(!id(&ra).is_empty());
}

#[test]
fn demo_html_report_is_self_contained_and_has_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--format",
        "html",
        "--out",
        out.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let html = std::fs::read_to_string(&out).expect("HTML written");
    assert!(html
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("<!doctype html"));
    assert!(html.trim_end().to_ascii_lowercase().ends_with("</html>"));
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        for q in ["\"", "'", ""] {
            for scheme in ["http://", "https://", "//"] {
                let bad = format!("{attr}{q}{scheme}");
                assert!(
                    !lower.contains(&bad),
                    "HTML loads from the network: `{bad}`"
                );
            }
        }
    }
    assert!(!lower.contains("url(http"), "CSS loads from the network");
    assert!(!lower.contains("@import"), "CSS imports");
    assert!(html.contains("flow_split"), "verdict missing");
    for n in ["backend-01", "backend-02", "backend-03"] {
        assert!(html.contains(n), "{n} missing");
    }
    // The log lines are in it (escaped or not, the port is there).
    assert!(html.contains("47378"));
}

#[test]
fn demo_pcap_slice_opens_in_tshark_with_one_interface_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let slices = dir.path().join("slices");
    let out = dir.path().join("report.json");
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--pcap-dir",
        slices.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let r = read_json(&out);
    let id = s(&arr(&r, "incidents")[0], "id").to_string();
    let files: Vec<PathBuf> = std::fs::read_dir(&slices)
        .expect("slice dir")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one slice per incident: {files:?}");
    let slice = &files[0];
    assert!(
        slice.file_name().unwrap().to_string_lossy().contains(&id),
        "slice {slice:?} is not named after incident {id}"
    );
    let head = std::fs::read(slice).unwrap();
    assert_eq!(
        &head[..4],
        &[0x0a, 0x0d, 0x0d, 0x0a],
        "not a pcapng section header"
    );

    if !require_tool("tshark", "that the pcapng slice opens in tshark") {
        return;
    }
    let rows = tshark_fields(
        slice,
        None,
        &[
            "frame.interface_name",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.flags",
            "frame.comment",
        ],
    );
    assert!(rows.len() > 100, "only {} packets in the slice", rows.len());
    let mut per_iface: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *per_iface.entry(r[0].clone()).or_default() += 1;
    }
    let names: BTreeSet<String> = per_iface.keys().cloned().collect();
    assert_eq!(
        names,
        NODES.iter().map(|n| n.to_string()).collect(),
        "interfaces (one per node, named after it): {per_iface:?}"
    );
    // Every failed connection's port is in the slice, on the stray node too.
    let t = truth("demo");
    for te in arr(&t, "errors") {
        let port = te["proxy_local_port"].as_u64().unwrap().to_string();
        for st in strings(&te["stray_nodes"]) {
            assert!(
                rows.iter()
                    .any(|r| r[0] == st && (r[1] == port || r[2] == port)),
                "port {port} not seen on stray node {st} in the slice"
            );
        }
    }
    // Findings are packet comments, and a commented stateless RST is a RST.
    let comments: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r.len() > 4 && !r[4].is_empty())
        .collect();
    assert!(
        comments.iter().any(|r| r[4].contains("flow_split")),
        "no flow_split comment"
    );
    let rst_comments: Vec<_> = comments
        .iter()
        .filter(|r| r[4].contains("stateless RST"))
        .collect();
    assert!(!rst_comments.is_empty());
    for r in rst_comments {
        let flags = u16::from_str_radix(r[3].trim_start_matches("0x"), 16).unwrap();
        assert!(flags & TCP_RST != 0, "comment on a non-RST: {r:?}");
    }
}
