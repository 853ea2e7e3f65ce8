// Shared helpers for the integration tests (each test file `mod common;`s it).
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use wiretrail_logs::{parse_line, ParseConfig, Parsed, ProxyError, Source};

/// Shanghai (the seed's zone, +08:00), reference 2023-06-01.
pub fn cfg() -> ParseConfig {
    ParseConfig {
        tz: Some(chrono_tz::Asia::Shanghai),
        year: None,
        reference: Utc.with_ymd_and_hms(2023, 6, 1, 0, 0, 0).unwrap(),
        formats: wiretrail_logs::Formats::ALL,
    }
}

pub fn utc_cfg(reference: DateTime<Utc>) -> ParseConfig {
    ParseConfig {
        tz: Some(chrono_tz::UTC),
        year: None,
        reference,
        formats: wiretrail_logs::Formats::ALL,
    }
}

pub fn origin() -> Source {
    Source::File {
        file: "t.log".into(),
        line: 1,
    }
}

#[track_caller]
pub fn parse_ok(line: &str, cfg: &ParseConfig) -> ProxyError {
    match parse_line(line.as_bytes(), origin(), cfg) {
        Parsed::Error(e) => e,
        other => panic!("{line:?} gave {other:?}"),
    }
}

pub fn ts(e: &ProxyError) -> String {
    serde_json::to_value(e).unwrap()["timestamp"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The reader's problems of one kind, as `path[:line]: message` lines.
pub fn problems(
    s: &wiretrail_logs::ReadStats,
    kind: wiretrail_logs::ReadProblemKind,
) -> Vec<String> {
    s.problems
        .iter()
        .filter(|p| p.kind == kind)
        .map(ToString::to_string)
        .collect()
}
