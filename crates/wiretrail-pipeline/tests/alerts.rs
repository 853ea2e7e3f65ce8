//! Alert bodies as Alertmanager, Grafana and Kibana send them.

mod common;
use common::ts as utc;
use wiretrail_pipeline::alert::{parse_alert, AlertDefaults, AlertError, AlertKind};
use wiretrail_pipeline::time::Duration;

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
        before: Duration::from_mins(5),
        after: Duration::from_secs(30),
        received: utc("2023-05-05T10:00:00Z"),
    }
}

#[test]
fn alertmanager_payload() {
    let a = parse_alert(&fixture("alertmanager.json"), &defaults()).unwrap();
    assert_eq!(a.kind, AlertKind::Alertmanager);
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
    assert_eq!(a.kind, AlertKind::Grafana);
    assert_eq!(a.window.since(), utc("2023-05-05T09:28:50Z"));
    assert_eq!(a.window.until(), utc("2023-05-05T09:34:20Z"));
    assert_eq!(a.host.as_deref(), Some("edge-proxy-02"));
}

#[test]
fn grafana_legacy_payload_uses_the_time_received() {
    let a = parse_alert(&fixture("grafana_legacy.json"), &defaults()).unwrap();
    assert_eq!(a.kind, AlertKind::GrafanaLegacy);
    assert_eq!(a.window.since(), utc("2023-05-05T09:55:00Z"));
    assert_eq!(a.host.as_deref(), Some("edge-proxy-03"));
    assert_eq!(a.names, vec!["Edge 502 alert"]);
}

#[test]
fn kibana_and_generic_bodies() {
    let a = parse_alert(&fixture("kibana.json"), &defaults()).unwrap();
    assert_eq!(a.kind, AlertKind::Generic);
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

/// D6 and the one time vocabulary: webhook times take every form the
/// command line takes, and a window no time can hold is an error naming
/// the field, never a panic (which dropped the connection unanswered).
#[test]
fn alert_times_in_every_form_and_huge_windows_refused() {
    let d = defaults();
    for body in [
        r#"{"at": "1683279187"}"#,
        r#"{"at": "2023-05-05 17:33:07 +08:00"}"#,
        r#"{"at": 1683279187000}"#,
    ] {
        let a = parse_alert(body.as_bytes(), &d).unwrap();
        assert_eq!(a.window.since(), utc("2023-05-05T09:28:07Z"), "{body}");
    }
    let a = parse_alert(
        br#"{"since": "2023-05-05 +00:00", "until": "2023-05-06 +00:00"}"#,
        &d,
    )
    .unwrap();
    assert_eq!(a.window.len(), Duration::from_hours(24));
    for body in [
        r#"{"at": "2023-05-05T09:33:07Z", "window": "1000000000d"}"#,
        r#"{"at": "2023-05-05T09:33:07Z", "window": "200000d"}"#,
        r#"{"since": "2023-05-05T09:33:07Z", "window": "213503d"}"#,
        r#"{"until": "1683279187", "window": "99999999999999999999s"}"#,
    ] {
        let e = parse_alert(body.as_bytes(), &d).unwrap_err().to_string();
        assert!(e.contains("window"), "{body}: {e}");
    }
    // Epoch milliseconds outside a timestamp, a zone-less time (a webhook
    // has no --tz): refused with the field.
    let e = parse_alert(br#"{"at": 9223372036854775807}"#, &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`at`"), "{e}");
    let e = parse_alert(br#"{"at": "2023-05-05 17:33:07"}"#, &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`at`") && e.contains("no zone"), "{e}");
}

/// The one rule both front ends (`investigate --alert`, `serve`) apply: an
/// alert's host label narrows the run to that proxy, unless a host was
/// given (`--host`, `logs.host`), which wins.
#[test]
fn an_alert_host_becomes_the_host_filter_unless_one_was_given() {
    use wiretrail_pipeline::investigate::read_alert;
    use wiretrail_pipeline::Pipeline;
    let received = utc("2023-05-05T10:00:00Z");
    let mut p = Pipeline::empty(std::path::Path::new("/"));
    let a = read_alert(&mut p, &fixture("alertmanager.json"), "am.json", received).unwrap();
    assert_eq!(a.host.as_deref(), Some("edge-proxy-01"));
    assert_eq!(p.host_filter.as_deref(), Some("edge-proxy-01"));
    // The window follows the pipeline's defaults.
    assert_eq!(a.window.until(), utc("2023-05-05T09:40:30Z"));

    let mut p = Pipeline::empty(std::path::Path::new("/"));
    p.host_filter = Some("edge-proxy-02".into());
    read_alert(&mut p, &fixture("alertmanager.json"), "am.json", received).unwrap();
    assert_eq!(p.host_filter.as_deref(), Some("edge-proxy-02"));

    // A body that is not an alert names where it came from, and why.
    let e = read_alert(&mut p, b"{", "hook.json", received).unwrap_err();
    assert_eq!(e.to_string(), "hook.json");
    assert!(std::error::Error::source(&e).is_some());
}
