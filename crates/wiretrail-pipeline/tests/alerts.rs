//! Alert bodies as Alertmanager, Grafana and Kibana send them.

mod common;
use chrono::Duration;
use common::utc;
use wiretrail_pipeline::alert::{parse_alert, AlertDefaults, AlertError};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/alerts")
            .join(name),
    )
    .unwrap()
}

fn defaults() -> AlertDefaults {
    AlertDefaults {
        before: Duration::minutes(5),
        after: Duration::seconds(30),
        received: utc("2023-05-05T10:00:00Z"),
    }
}

#[test]
fn alertmanager_payload() {
    let a = parse_alert(&fixture("alertmanager.json"), &defaults()).unwrap();
    assert_eq!(a.kind, "alertmanager");
    // From 5 minutes before the first alert started to 30 s after the last ended.
    assert_eq!(a.window.since(), utc("2023-05-05T09:29:00.123456789Z"));
    assert_eq!(a.window.until(), utc("2023-05-05T09:40:30Z"));
    assert_eq!(a.host.as_deref(), Some("edge-proxy-01"));
    assert_eq!(a.names, vec!["ProxyBadGateway"]);
    assert!(!a.resolved);
    assert_eq!(a.labels.get("severity").map(String::as_str), Some("page"));
}

#[test]
fn grafana_unified_alerting_payload() {
    let a = parse_alert(&fixture("grafana.json"), &defaults()).unwrap();
    assert_eq!(a.kind, "grafana");
    assert_eq!(a.window.since(), utc("2023-05-05T09:28:50Z"));
    assert_eq!(a.window.until(), utc("2023-05-05T09:34:20Z"));
    assert_eq!(a.host.as_deref(), Some("edge-proxy-02"));
}

#[test]
fn grafana_legacy_payload_uses_the_time_received() {
    let a = parse_alert(&fixture("grafana_legacy.json"), &defaults()).unwrap();
    assert_eq!(a.kind, "grafana_legacy");
    assert_eq!(a.window.since(), utc("2023-05-05T09:55:00Z"));
    assert_eq!(a.host.as_deref(), Some("edge-proxy-03"));
    assert_eq!(a.names, vec!["Edge 502 alert"]);
}

#[test]
fn kibana_and_generic_bodies() {
    let a = parse_alert(&fixture("kibana.json"), &defaults()).unwrap();
    assert_eq!(a.kind, "generic");
    assert_eq!(a.window.since(), utc("2023-05-05T09:24:12.345Z"));
    assert_eq!(a.window.until(), utc("2023-05-05T09:34:42.345Z"));
    assert_eq!(a.host.as_deref(), Some("edge-proxy-01"));
    let a = parse_alert(&fixture("generic_range.json"), &defaults()).unwrap();
    assert_eq!(
        (a.window.since(), a.window.until()),
        (utc("2023-05-05T09:30:00Z"), utc("2023-05-05T09:40:00Z"))
    );
    assert_eq!(a.host.as_deref(), Some("edge-proxy-01"));
}

#[test]
fn bad_bodies_say_why() {
    let d = defaults();
    assert!(matches!(
        parse_alert(b"not json", &d),
        Err(AlertError::NotJson(_))
    ));
    assert!(matches!(
        parse_alert(b"[1]", &d),
        Err(AlertError::NotObject)
    ));
    assert!(matches!(
        parse_alert(br#"{"alerts": []}"#, &d),
        Err(AlertError::NoAlerts)
    ));
    assert!(matches!(
        parse_alert(br#"{"labels": {"host": "x"}}"#, &d),
        Err(AlertError::NoTime)
    ));
    let e = parse_alert(
        br#"{"alerts": [{"labels": {}, "startsAt": "yesterday"}]}"#,
        &d,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("alerts[0].startsAt") || e.contains("startsAt"),
        "{e}"
    );
    let e = parse_alert(
        br#"{"since": "2023-05-05T10:00:00Z", "until": "2023-05-05T09:00:00Z"}"#,
        &d,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("empty window"), "{e}");
}
