//! `source` of the record: Filebeat's `log.file.path` and `log.offset` join
//! an Elasticsearch hit's origin; nothing changes for files and stdin.

mod common;
use common::*;
use serde_json::json;
use wiretrail_logs::envelope::shipped_from;
use wiretrail_logs::{parse_document, parse_line, Parsed, ProxyError, Source};

/// A Filebeat 8 document as Elasticsearch returns it (`_source`).
const LINE: &str = "2023/05/05 17:33:07.481516 http: proxy error: read tcp 10.1.1.5:51392->10.2.2.9:8080: read: connection reset by peer";

fn hit(index: &str, id: &str) -> Source {
    Source::Elasticsearch {
        index: index.into(),
        id: id.into(),
        path: None,
        offset: None,
    }
}

fn parse_doc(doc: &serde_json::Value, origin: Source) -> ProxyError {
    match parse_document(doc, origin, &cfg()) {
        Parsed::Error(e) => e,
        other => panic!("{doc} gave {other:?}"),
    }
}

#[test]
fn path_and_offset_in_every_key_form() {
    let docs = [
        // Filebeat 7/8 as stored: nested objects.
        json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE,
               "log": {"file": {"path": "/var/log/proxy/proxy.log"}, "offset": 1_048_576}}),
        // Dotted keys (ingest pipelines, Logstash).
        json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE,
               "log.file.path": "/var/log/proxy/proxy.log", "log.offset": 1_048_576}),
        // A mix, offset as a string.
        json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE,
               "log": {"file.path": "/var/log/proxy/proxy.log", "offset": "1048576"}}),
    ];
    for doc in docs {
        assert_eq!(
            shipped_from(&doc),
            (Some("/var/log/proxy/proxy.log".into()), Some(1_048_576)),
            "{doc}"
        );
        let e = parse_doc(&doc, hit("filebeat-8.11-2023.05.05", "Xq3w"));
        assert_eq!(
            serde_json::to_value(&e).unwrap()["source"],
            json!({"index": "filebeat-8.11-2023.05.05", "id": "Xq3w",
                   "path": "/var/log/proxy/proxy.log", "offset": 1_048_576}),
            "{doc}"
        );
    }
}

#[test]
fn absent_keys_print_exactly_as_before() {
    let doc =
        json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE, "host": {"name": "gw1"}});
    let e = parse_doc(&doc, hit("logs", "a1"));
    let text = serde_json::to_string(&e).unwrap();
    assert!(
        text.ends_with(r#""source":{"index":"logs","id":"a1"}}"#),
        "{text}"
    );
    // Only one of the two.
    let doc =
        json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE, "log": {"offset": 77}});
    let text = serde_json::to_string(&parse_doc(&doc, hit("logs", "a2")).source).unwrap();
    assert_eq!(text, r#"{"index":"logs","id":"a2","offset":77}"#);
    // Not a number: absent, not an error.
    let doc = json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE, "log": {"offset": "x", "file": {"path": 3}}});
    assert_eq!(shipped_from(&doc), (None, None));
}

#[test]
fn what_the_caller_set_wins() {
    let doc = json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE,
                     "log": {"file": {"path": "/var/log/a.log"}, "offset": 10}});
    let given = Source::Elasticsearch {
        index: "logs".into(),
        id: "b1".into(),
        path: Some("/srv/b.log".into()),
        offset: None,
    };
    assert_eq!(
        parse_doc(&doc, given).source,
        Source::Elasticsearch {
            index: "logs".into(),
            id: "b1".into(),
            path: Some("/srv/b.log".into()),
            offset: Some(10),
        }
    );
}

#[test]
fn ndjson_read_from_a_file_keeps_the_file_origin() {
    let line = json!({"@timestamp": "2023-05-05T09:33:07.481Z", "message": LINE,
                      "log": {"file": {"path": "/var/log/a.log"}, "offset": 10}})
    .to_string();
    let e = parse_ok(&line, &cfg());
    assert_eq!(e.source, origin());
    let Parsed::Error(e) =
        parse_document(&json!({"message": LINE, "log.offset": 5}), origin(), &cfg())
    else {
        panic!()
    };
    assert_eq!(e.source, origin());
    let Parsed::Error(e) = parse_line(line.as_bytes(), Source::Stdin { line: 4 }, &cfg()) else {
        panic!()
    };
    assert_eq!(serde_json::to_string(&e.source).unwrap(), r#"{"line":4}"#);
}

#[test]
fn every_source_reads_back() {
    for s in [
        origin(),
        Source::Stdin { line: 9 },
        hit("logs", "c1"),
        Source::Elasticsearch {
            index: "logs".into(),
            id: "c2".into(),
            path: Some("/var/log/p.log".into()),
            offset: Some(0),
        },
    ] {
        let text = serde_json::to_string(&s).unwrap();
        let back: Source = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s, "{text}");
    }
}
