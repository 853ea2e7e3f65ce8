//! Issue 14's log defects, each as its repro: D4 (symlink loops in log
//! directories), D7 (stamps no i64 nanosecond count can hold), D16 (a bogus
//! journald `__REALTIME_TIMESTAMP` beside Go's own stamp), and the reader's
//! problems as typed values.

mod common;
use chrono::{TimeZone, Utc};
use std::path::PathBuf;
use wiretrail_logs::{parse_line, LogReader, ParseConfig, Parsed, ReadProblemKind, ReadStats};

const ERR: &str = "2023/05/05 17:33:07.481516 http: proxy error: read tcp 10.1.1.5:51392->10.2.2.9:8080: read: connection reset by peer\n";

fn cfg() -> ParseConfig {
    common::utc_cfg(Utc.with_ymd_and_hms(2023, 6, 1, 0, 0, 0).unwrap())
}

fn read(paths: &[PathBuf]) -> (Vec<wiretrail_logs::ProxyError>, ReadStats) {
    let mut r = LogReader::open(paths, cfg()).expect("open");
    let recs: Vec<_> = r.by_ref().collect();
    (recs, r.stats().clone())
}

/// D4: `current -> .` made every level of the loop read the same files
/// again (8 errors became 328); two loops ran for minutes.
#[cfg(unix)]
#[test]
fn symlink_loops_are_walked_once_and_said() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("old")).unwrap();
    std::fs::write(logs.join("proxy.log"), ERR.repeat(3)).unwrap();
    std::fs::write(logs.join("old/proxy.log.1"), ERR.repeat(5)).unwrap();
    symlink(".", logs.join("current")).unwrap();
    symlink("..", logs.join("old/up")).unwrap();
    // A second name for a file, and the directory named twice.
    symlink("proxy.log", logs.join("proxy.log.link")).unwrap();
    let (recs, st) = read(&[logs.clone(), logs.clone()]);
    assert_eq!(recs.len(), 8, "each file once");
    assert_eq!(st.files, 2);
    let skipped: Vec<String> = st
        .problems
        .iter()
        .filter(|p| p.kind == ReadProblemKind::Skipped)
        .map(ToString::to_string)
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:#?}");
    assert!(skipped
        .iter()
        .any(|s| s.contains("logs/current: a link back to")));
    assert!(skipped.iter().any(|s| s.contains("old/up: a link back to")));
    assert!(skipped
        .iter()
        .any(|s| s.contains("proxy.log.link: the same file as")));
    assert!(!st.failed());
}

/// D7: stamps before 1677 or after 2262 became 0 downstream; they are
/// refused with the line number.
#[test]
fn stamps_outside_the_nanosecond_range_are_refused_with_their_line() {
    for line in [
        "2263/01/01 00:00:00 http: proxy error: EOF",
        "1677/09/20 00:00:00 http: proxy error: EOF",
        "9999-12-31T23:59:59Z stderr F http: proxy error: EOF",
        r#"{"__REALTIME_TIMESTAMP":"9999999999999999","MESSAGE":"http: proxy error: EOF"}"#,
    ] {
        match parse_line(line.as_bytes(), common::origin(), &cfg()) {
            Parsed::Malformed(why) => {
                assert!(why.contains("outside what can be represented"), "{why}")
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    // At the edges, still read.
    let e = common::parse_ok("2262/04/11 00:00:00 http: proxy error: EOF", &cfg());
    assert_eq!(common::ts(&e), "2262-04-11T00:00:00Z");
    let e = common::parse_ok("1677/09/22 00:00:00 http: proxy error: EOF", &cfg());
    assert_eq!(common::ts(&e), "1677-09-22T00:00:00Z");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.log");
    std::fs::write(
        &f,
        format!("{ERR}x\n2263/01/01 00:00:00 http: proxy error: EOF\n{ERR}"),
    )
    .unwrap();
    let (recs, st) = read(std::slice::from_ref(&f));
    assert_eq!(recs.len(), 2);
    assert_eq!(st.unparsed, 1);
    let p = &st.problems[0];
    assert_eq!(p.kind, ReadProblemKind::Unparsed);
    assert_eq!(p.line, Some(3));
    assert_eq!(p.path, f.display().to_string());
}

/// D16: a journald record whose `__REALTIME_TIMESTAMP` is bogus took that
/// stamp over Go's valid one in the message.
#[test]
fn a_bogus_journald_stamp_gives_way_to_gos_own_and_is_flagged() {
    let journald = |realtime: &str| {
        format!(
            r#"{{"__REALTIME_TIMESTAMP":"{realtime}","_HOSTNAME":"gw1","SYSLOG_IDENTIFIER":"proxy","_PID":"812","MESSAGE":"2023/05/05 17:33:07.481516 http: proxy error: EOF"}}"#
        )
    };
    // Consistent: journald's stamp (exact, UTC) wins as before.
    let ok = journald("1683279187481516");
    let e = common::parse_ok(&ok, &cfg());
    assert_eq!(common::ts(&e), "2023-05-05T09:33:07.481516Z");
    assert!(!e.time_zone_assumed);
    // A few hours apart (the process's zone is not --tz): still journald's.
    let e = common::parse_ok(&journald("1683250387481516"), &cfg());
    assert_eq!(common::ts(&e), "2023-05-05T01:33:07.481516Z");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("journal.json");
    let lines = [
        ok.clone(),
        journald("1"),                 // 1970
        journald("99999999999999999"), // year 5138
        journald("1783279187481516"),  // 2026: after the file was written
    ];
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let mut c = cfg();
    c.reference = Utc.with_ymd_and_hms(2023, 6, 1, 0, 0, 0).unwrap();
    let mut r = LogReader::from_reader(
        &f.display().to_string(),
        Box::new(std::fs::File::open(&f).unwrap()),
        c,
    );
    let recs: Vec<_> = r.by_ref().collect();
    let st = r.stats();
    assert_eq!(recs.len(), 4, "{:?}", st.problems);
    for e in &recs[1..] {
        assert_eq!(
            common::ts(e),
            "2023-05-05T17:33:07.481516Z",
            "Go's own, read in --tz UTC"
        );
        assert!(e.time_zone_assumed);
    }
    assert_eq!(st.stamp_conflicts, 3);
    let flagged: Vec<_> = st
        .problems
        .iter()
        .filter(|p| p.kind == ReadProblemKind::StampConflict)
        .collect();
    assert_eq!(
        flagged.iter().map(|p| p.line).collect::<Vec<_>>(),
        [Some(2), Some(3), Some(4)]
    );
    assert!(
        flagged[0].message.contains("1970-01-01T00:00:00.000001Z"),
        "{}",
        flagged[0]
    );
    assert!(flagged[0]
        .message
        .contains("Go's own stamp 2023-05-05T17:33:07.481516Z was used"));
}

/// The reader's problems are values a pipeline maps to its own (kind,
/// file, line), not sentences to parse.
#[test]
fn problems_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.log");
    std::fs::write(&f, "{\"bad json http: proxy error: EOF\n").unwrap();
    let (_, st) = read(std::slice::from_ref(&f));
    let p = &st.problems[0];
    assert_eq!(
        (p.kind, p.path.as_str(), p.line),
        (ReadProblemKind::Unparsed, f.to_str().unwrap(), Some(1))
    );
    assert!(p
        .to_string()
        .starts_with(&format!("{}:1: bad JSON", f.display())));
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["problems"][0]["kind"], "unparsed");
    assert_eq!(v["problems"][0]["line"], 1);

    // An input that cannot be read is a failure of that input.
    #[cfg(unix)]
    {
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::symlink("nowhere", d.join("dangling.log")).unwrap();
        let (_, st) = read(&[d]);
        assert!(st.failed());
        assert_eq!(st.problems[0].kind, ReadProblemKind::Failed);
        assert!(st.problems[0].path.ends_with("dangling.log"));
        assert!(
            st.problems[0].message.starts_with("cannot open:"),
            "{}",
            st.problems[0]
        );
    }
}
