//! One table row per envelope, with lines as real programs print them.

mod common;
use common::*;
use wiretrail_logs::{parse_document, parse_line, ErrorClass, Parsed, Source, TimePrecision};

const RST: &str = "read tcp 10.1.1.5:51392->10.2.2.9:8080: read: connection reset by peer";

struct Row {
    line: String,
    ts: &'static str,
    precision: TimePrecision,
    assumed: bool,
    host: Option<&'static str>,
    process: Option<&'static str>,
    pid: Option<u32>,
}

fn row(
    line: String,
    ts: &'static str,
    precision: TimePrecision,
    assumed: bool,
    who: (Option<&'static str>, Option<&'static str>, Option<u32>),
) -> Row {
    Row {
        line,
        ts,
        precision,
        assumed,
        host: who.0,
        process: who.1,
        pid: who.2,
    }
}

#[test]
fn every_envelope() {
    use TimePrecision::*;
    let none = (None, None, None);
    let gw = (Some("gw1"), Some("proxy"), Some(812));
    let rows = vec![
        // Go `log`, default flags (LstdFlags).
        row(format!("2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, none),
        // Lmicroseconds.
        row(format!("2023/05/05 17:33:07.481516 http: proxy error: {RST}"), "2023-05-05T09:33:07.481516Z", Microsecond, true, none),
        // Lshortfile.
        row(format!("2023/05/05 17:33:07 reverseproxy.go:739: http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, none),
        // Llongfile + Lmicroseconds.
        row(
            format!("2023/05/05 17:33:07.000123 /usr/local/go/src/net/http/httputil/reverseproxy.go:739: http: proxy error: {RST}"),
            "2023-05-05T09:33:07.000123Z",
            Microsecond,
            true,
            none,
        ),
        // log.SetPrefix without Lmsgprefix: prefix before the date.
        row(format!("[gateway] 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, none),
        // Lmsgprefix: prefix after the date and file.
        row(format!("2023/05/05 17:33:07 proxy.go:12: [gateway] http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, none),
        // journald short (no year, no zone) around a Go line.
        row(format!("May 05 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, gw),
        // journald short, Go log without date: year inferred.
        row(format!("May 05 17:33:07 gw1 proxy[812]: http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, gw),
        // journald short-precise: its microseconds win.
        row(format!("May 05 17:33:07.481516 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07.481516Z", Microsecond, true, gw),
        // journald short-iso: zone printed.
        row(format!("2023-05-05T17:33:07+0800 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, false, gw),
        // journald short-iso-precise.
        row(format!("2023-05-05T17:33:07.481516+08:00 gw1 proxy[812]: http: proxy error: {RST}"), "2023-05-05T09:33:07.481516Z", Microsecond, false, gw),
        // journalctl -o json.
        row(
            format!(
                r#"{{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1683279187481516","__MONOTONIC_TIMESTAMP":"123","_HOSTNAME":"gw1","SYSLOG_IDENTIFIER":"proxy","_PID":"812","_COMM":"proxy","PRIORITY":"6","MESSAGE":"2023/05/05 17:33:07 http: proxy error: {RST}"}}"#
            ),
            "2023-05-05T09:33:07.481516Z",
            Microsecond,
            false,
            gw,
        ),
        // RFC 3164 with PRI, space-padded day.
        row(format!("<134>May  5 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07Z", Second, true, gw),
        // RFC 5424, no structured data.
        row(format!("<134>1 2023-05-05T17:33:07.481516+08:00 gw1 proxy 812 - - 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07.481516Z", Microsecond, false, gw),
        // RFC 5424 with structured data (escaped bracket) and a BOM.
        row(
            format!("<134>1 2023-05-05T09:33:07.481Z gw1 proxy 812 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]x\"] \u{feff}http: proxy error: {RST}"),
            "2023-05-05T09:33:07.481Z",
            Millisecond,
            false,
            gw,
        ),
        // Kubernetes CRI.
        row(format!("2023-05-05T09:33:07.123456789Z stderr F 2023/05/05 17:33:07 http: proxy error: {RST}"), "2023-05-05T09:33:07.123456789Z", Nanosecond, false, none),
        // Docker json-file.
        row(
            format!(r#"{{"log":"2023/05/05 17:33:07 http: proxy error: {RST}\n","stream":"stderr","time":"2023-05-05T09:33:07.123456789Z"}}"#),
            "2023-05-05T09:33:07.123456789Z",
            Nanosecond,
            false,
            none,
        ),
        // Filebeat NDJSON, nested objects.
        row(
            format!(
                r#"{{"@timestamp":"2023-05-05T09:33:07.481Z","message":"2023/05/05 17:33:07 http: proxy error: {RST}","host":{{"name":"gw1"}},"process":{{"name":"proxy","pid":812}},"log":{{"file":{{"path":"/var/log/proxy.log"}}}}}}"#
            ),
            "2023-05-05T09:33:07.481Z",
            Millisecond,
            false,
            gw,
        ),
        // Filebeat NDJSON, dotted keys.
        row(
            format!(r#"{{"@timestamp":"2023-05-05T09:33:07.481Z","message":"2023/05/05 17:33:07 http: proxy error: {RST}","host.name":"gw1","process.name":"proxy","process.pid":"812","log.file.path":"/var/log/proxy.log"}}"#),
            "2023-05-05T09:33:07.481Z",
            Millisecond,
            false,
            gw,
        ),
        // An Elasticsearch hit written as NDJSON (`_source` wrapper), message holding a syslog line.
        row(
            format!(r#"{{"_index":"filebeat-8","_id":"x1","_source":{{"@timestamp":"2023-05-05T09:33:07Z","message":"May  5 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07.481516 http: proxy error: {RST}"}}}}"#),
            "2023-05-05T09:33:07.481516Z",
            Microsecond,
            true,
            gw,
        ),
    ];
    let cfg = cfg();
    for r in rows {
        let e = parse_ok(&r.line, &cfg);
        assert_eq!(ts(&e), r.ts, "{}", r.line);
        assert_eq!(e.time_precision, r.precision, "{}", r.line);
        assert_eq!(e.time_zone_assumed, r.assumed, "{}", r.line);
        assert_eq!(
            (e.host.as_deref(), e.process.as_deref(), e.pid),
            (r.host, r.process, r.pid),
            "{}",
            r.line
        );
        assert_eq!(e.op.as_deref(), Some("read"), "{}", r.line);
        assert_eq!(e.local.as_deref(), Some("10.1.1.5:51392"), "{}", r.line);
        assert_eq!(e.remote.as_deref(), Some("10.2.2.9:8080"), "{}", r.line);
        assert_eq!(e.syscall.as_deref(), Some("read"), "{}", r.line);
        assert_eq!(e.class, ErrorClass::Reset, "{}", r.line);
        assert_eq!(e.message, RST, "{}", r.line);
    }
}

#[test]
fn go_lutc_needs_the_zone_configured() {
    let line = format!("2023/05/05 09:33:07.481516 http: proxy error: {RST}");
    let e = parse_ok(&line, &utc_cfg(chrono::Utc::now()));
    assert_eq!(ts(&e), "2023-05-05T09:33:07.481516Z");
    assert!(e.time_zone_assumed, "Go prints no zone even with LUTC");
}

#[test]
fn elasticsearch_document_keeps_its_origin() {
    let doc: serde_json::Value = serde_json::from_str(&format!(
        r#"{{"@timestamp":"2023-05-05T09:33:07.481Z","message":"2023/05/05 17:33:07 http: proxy error: {RST}","host":{{"name":"gw1"}},"log.file":{{"path":"/var/log/p.log"}},"log.offset":88213}}"#
    ))
    .unwrap();
    let origin = Source::Elasticsearch {
        index: "logs-1".into(),
        id: "abc".into(),
        path: None,
        offset: None,
    };
    let Parsed::Error(e) = parse_document(&doc, origin.clone(), &cfg()) else {
        panic!("not parsed")
    };
    // The shipper's file and offset join the hit's index and id.
    assert_eq!(
        e.source,
        Source::Elasticsearch {
            index: "logs-1".into(),
            id: "abc".into(),
            path: Some("/var/log/p.log".into()),
            offset: Some(88213),
        }
    );
    assert_eq!(
        serde_json::to_string(&e.source).unwrap(),
        r#"{"index":"logs-1","id":"abc","path":"/var/log/p.log","offset":88213}"#
    );
    assert_eq!(e.host.as_deref(), Some("gw1"));
    assert_eq!(ts(&e), "2023-05-05T09:33:07.481Z");
    let no_msg = serde_json::json!({"@timestamp": "2023-05-05T09:33:07Z"});
    assert!(matches!(
        parse_document(&no_msg, origin, &cfg()),
        Parsed::Malformed(_)
    ));
}

#[test]
fn journald_json_byte_array_message() {
    let msg = format!("2023/05/05 17:33:07 http: proxy error: {RST} \u{1}");
    let mut bytes: Vec<u8> = msg.into_bytes();
    bytes.push(0xff);
    let arr: Vec<String> = bytes.iter().map(|b| b.to_string()).collect();
    let line = format!(
        r#"{{"__REALTIME_TIMESTAMP":"1683279187000000","_HOSTNAME":"gw1","MESSAGE":[{}]}}"#,
        arr.join(",")
    );
    let e = parse_ok(&line, &cfg());
    assert_eq!(e.class, ErrorClass::Reset);
    assert_eq!(e.host.as_deref(), Some("gw1"));
    // µs source with zero µs: still six digits.
    assert_eq!(ts(&e), "2023-05-05T09:33:07.000000Z");
    assert_eq!(e.time_precision, TimePrecision::Microsecond);
}

#[test]
fn other_lines_are_not_errors_and_broken_ones_are_malformed() {
    let c = cfg();
    for l in [
        "May 05 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 GET /healthz 200",
        "2023-05-05T09:33:07.1Z stdout F listening on :8080",
        r#"{"log":"hello\n","stream":"stdout","time":"2023-05-05T09:33:07Z"}"#,
        r#"{"MESSAGE":"started","__REALTIME_TIMESTAMP":"1"}"#,
        "18.32.11:80: use of closed network connection",
        "",
    ] {
        assert_eq!(
            parse_line(l.as_bytes(), origin(), &c),
            Parsed::NotProxyError,
            "{l}"
        );
    }
    for l in [
        // No stamp anywhere.
        "http: proxy error: EOF".to_owned(),
        // Broken JSON holding the phrase.
        r#"{"log":"2023/05/05 17:33:07 http: proxy error: EOF"#.to_owned(),
        // Impossible date.
        "2023/02/30 17:33:07 http: proxy error: EOF".to_owned(),
    ] {
        assert!(
            matches!(parse_line(l.as_bytes(), origin(), &c), Parsed::Malformed(_)),
            "{l}"
        );
    }
}

#[test]
fn non_utf8_bytes_do_not_stop_a_line() {
    let mut line =
        b"May 05 17:33:07 gw\xff1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: ".to_vec();
    line.extend_from_slice(RST.as_bytes());
    let Parsed::Error(e) = parse_line(&line, origin(), &cfg()) else {
        panic!()
    };
    assert_eq!(e.host.as_deref(), Some("gw\u{fffd}1"));
    assert_eq!(e.class, ErrorClass::Reset);
}

#[test]
fn journald_and_docker_records_with_odd_field_types_read_the_same() {
    // A numeric `_PID` and a numeric Docker `stream` do not fit the fast
    // borrowed reading; the tree reading gives the same record, less the
    // field of the wrong type.
    let j = r#"{"__REALTIME_TIMESTAMP":"1683279187481516","_HOSTNAME":"gw1","SYSLOG_IDENTIFIER":"proxy","_PID":812,"MESSAGE":"2023/05/05 17:33:07 http: proxy error: EOF"}"#;
    let e = parse_ok(j, &cfg());
    assert_eq!(ts(&e), "2023-05-05T09:33:07.481516Z");
    assert_eq!(
        (e.host.as_deref(), e.process.as_deref(), e.pid),
        (Some("gw1"), Some("proxy"), None)
    );
    let d = r#"{"log":"2023/05/05 17:33:07 http: proxy error: EOF\n","stream":2,"time":"2023-05-05T09:33:07.123456789Z"}"#;
    let e = parse_ok(d, &cfg());
    assert_eq!(ts(&e), "2023-05-05T09:33:07.123456789Z");
    assert_eq!(e.class, ErrorClass::Eof);
}
