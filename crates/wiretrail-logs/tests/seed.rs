//! The incident's own lines (journald short around Go `log`, redacted hosts
//! `ip-proxy`/`ip-backend`, process replaced by `*`).

mod common;
use common::*;
use std::path::PathBuf;
use wiretrail_logs::{ErrorClass, LogReader, ParseConfig, Source, TimePrecision};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn seed_lines() {
    let cfg = ParseConfig {
        tz: Some(chrono_tz::Asia::Shanghai),
        ..cfg()
    };
    let mut r = LogReader::open(&[fixture("seed-journald-short.log")], cfg).unwrap();
    let recs: Vec<_> = r.by_ref().collect();
    let s = r.stats();
    assert_eq!(s.lines, 14);
    assert_eq!(s.proxy_errors, 12);
    assert_eq!(s.unparsed, 0, "{:?}", s.problems);
    assert_eq!(s.by_class[&ErrorClass::Reset], 5);
    assert_eq!(s.by_class[&ErrorClass::BrokenPipe], 2);
    assert_eq!(s.by_class[&ErrorClass::Closed], 5);
    assert_eq!(
        s.by_pair[&("ip-proxy".to_owned(), "ip-backend:80".to_owned())],
        12
    );

    let stats = serde_json::to_value(s).unwrap();
    assert_eq!(stats["by_pair"]["ip-proxy -> ip-backend:80"], 12);
    assert_eq!(stats["by_class"]["broken_pipe"], 2);

    let first = &recs[0];
    assert_eq!(ts(first), "2023-05-05T09:33:07Z");
    assert_eq!(first.time_precision, TimePrecision::Second);
    assert!(first.time_zone_assumed);
    assert_eq!(first.host, None, "`*` is a redaction, not a host");
    assert_eq!(first.local.as_deref(), Some("ip-proxy:51392"));
    assert_eq!(first.remote.as_deref(), Some("ip-backend:80"));
    assert_eq!(
        (first.op.as_deref(), first.syscall.as_deref()),
        (Some("read"), Some("read"))
    );
    assert!(matches!(&first.source, Source::File { line: 1, .. }));

    let closed = &recs[2];
    assert_eq!(closed.class, ErrorClass::Closed);
    assert_eq!(
        (closed.op.as_deref(), closed.syscall.as_deref()),
        (Some("readfrom"), Some("write"))
    );
    // Lines 4 and 5 are the article's "...." and a truncated fragment.
    assert!(matches!(&recs[3].source, Source::File { line: 6, .. }));
    assert_eq!(ts(&recs[3]), "2023-05-05T07:03:34Z");
    let last = recs.last().unwrap();
    assert_eq!(last.local.as_deref(), Some("ip-proxy:56908"));
    assert_eq!(last.class, ErrorClass::Closed);
    let json = serde_json::to_value(last).unwrap();
    assert_eq!(json["class"], "closed");
    assert_eq!(json["op"], "readfrom");
    assert_eq!(json["time_precision"], "second");
}
