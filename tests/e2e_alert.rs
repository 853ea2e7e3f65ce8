//! `wiretrail investigate --alert FILE|-` with an Alertmanager webhook body
//! (`tests/fixtures/alertmanager-demo.json`, fired during the demo
//! recording): the alert's time range and host label choose what is
//! investigated.

mod common;

use common::*;
use serde_json::Value;

const DEMO: &str = "pipelines/demo.toml";

fn fixture_path() -> std::path::PathBuf {
    root().join("tests/fixtures/alertmanager-demo.json")
}

fn fixture() -> Value {
    read_json(&fixture_path())
}

/// Investigate with `--alert ALERT` (a path, or `-` with `stdin`); the JSON report.
fn investigate_alert(alert: &str, stdin: Option<&[u8]>, code: i32) -> (Out, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let o = run_with_stdin(
        wt([
            "investigate",
            "--pipeline",
            DEMO,
            "--alert",
            alert,
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ]),
        stdin,
    );
    o.expect_code(code);
    let r = read_json(&out);
    (o, r)
}

fn check_demo_incident(r: &Value) {
    let incidents = arr(r, "incidents");
    assert_eq!(incidents.len(), 1, "{}", short(r));
    let inc = &incidents[0];
    assert_eq!(s(&inc["verdict"], "cause"), "flow_split");
    assert_eq!(s(inc, "proxy"), "proxyhost");
    let errors = arr(inc, "errors");
    assert_eq!(errors.len(), arr(&truth("demo"), "errors").len());
    assert!(errors
        .iter()
        .all(|e| s(&e["diagnosis"], "cause") == "flow_split"));
}

#[test]
fn alertmanager_payload_from_a_file_finds_the_incident() {
    let path = fixture_path();
    let (_, r) = investigate_alert(path.to_str().unwrap(), None, 0);
    check_demo_incident(&r);
    // The window is the alert's: demo.toml's `window.before` (5m) ahead of
    // startsAt, `window.after` (30s) past it (still firing: no endsAt) —
    // not the window the pipeline pins for runs without a time.
    assert_eq!(
        rfc3339(&r, "since"),
        rfc3339(&serde_json::json!({"t": "2026-11-25T00:29:30.127Z"}), "t")
    );
    assert_eq!(
        rfc3339(&r, "until"),
        rfc3339(&serde_json::json!({"t": "2026-11-25T00:35:00.127Z"}), "t")
    );
}

#[test]
fn alertmanager_payload_on_stdin_gives_the_same_report() {
    let body = std::fs::read(fixture_path()).unwrap();
    let (_, from_stdin) = investigate_alert("-", Some(&body), 0);
    check_demo_incident(&from_stdin);
    let path = fixture_path();
    let (_, from_file) = investigate_alert(path.to_str().unwrap(), None, 0);
    let id = |r: &Value| s(&arr(r, "incidents")[0], "id").to_string();
    assert_eq!(id(&from_stdin), id(&from_file));
    assert_eq!(from_stdin["since"], from_file["since"]);
    assert_eq!(from_stdin["until"], from_file["until"]);
}

#[test]
fn the_alert_decides_time_and_proxy_host() {
    // The same alert a day later: nothing in that window.
    let mut later = fixture();
    later["alerts"][0]["startsAt"] = "2026-11-26T00:34:30Z".into();
    let body = serde_json::to_vec(&later).unwrap();
    let (o, r) = investigate_alert("-", Some(&body), 1);
    assert!(arr(&r, "incidents").is_empty());
    assert!(o.stderr.contains("0 incident(s)"), "{}", o.stderr);

    // Another proxy's alert (instance label, port stripped): not this proxy's errors.
    let mut other = fixture();
    other["alerts"][0]["labels"]["instance"] = "edge-proxy-07:9100".into();
    other["commonLabels"]["instance"] = "edge-proxy-07:9100".into();
    let body = serde_json::to_vec(&other).unwrap();
    let (_, r) = investigate_alert("-", Some(&body), 1);
    assert!(arr(&r, "incidents").is_empty(), "{}", short(&r));
}

#[test]
fn a_bad_alert_body_fails_with_a_reason() {
    let o = run_with_stdin(
        wt(["investigate", "--pipeline", DEMO, "--alert", "-"]),
        Some(br#"{"version":"4","status":"firing","alerts":[]}"#),
    );
    o.expect_refusal(&["no alerts"]);

    let o = run_with_stdin(
        wt(["investigate", "--pipeline", DEMO, "--alert", "-"]),
        Some(b"alertname=EdgeProxyBadGateway"),
    );
    o.expect_refusal(&["not JSON"]);
}
