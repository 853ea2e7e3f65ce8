//! One log line through every envelope and the Go error grammar
//! (`parse_line`), the grammar alone on the text after `proxy error: `,
//! and, when the bytes are JSON, the document parser (Elasticsearch).
//! No input may panic, and an error record always serializes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wiretrail_logs::{parse_document, parse_go_error, parse_line, ParseConfig, Parsed, Source};

fn cfg() -> &'static ParseConfig {
    static C: OnceLock<ParseConfig> = OnceLock::new();
    C.get_or_init(|| ParseConfig {
        tz: Some(chrono_tz::Asia::Shanghai),
        year: None,
        // Fixed, so that a crash replays the same way later.
        reference: chrono::DateTime::from_timestamp(1_764_030_780, 0).unwrap(),
    })
}

fuzz_target!(|data: &[u8]| {
    let cfg = cfg();
    if let Parsed::Error(e) = parse_line(data, Source::Stdin { line: 1 }, cfg) {
        serde_json::to_string(&e).expect("a record always serializes");
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_go_error(&text);
    if let Some(at) = text.find("proxy error: ") {
        let _ = parse_go_error(&text[at + 13..]);
    }
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = parse_document(
            &doc,
            Source::Elasticsearch {
                index: "i".into(),
                id: "1".into(),
                path: None,
                offset: None,
            },
            cfg,
        );
    }
});
