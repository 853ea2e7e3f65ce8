//! Year inference for year-less stamps (journald short, RFC 3164).

mod common;
use chrono::{TimeZone, Utc};
use common::*;
use wiretrail_logs::ParseConfig;

const TAIL: &str = "gw1 proxy[812]: http: proxy error: EOF";

#[test]
fn across_new_year() {
    // Read just after midnight on New Year's day: December lines are last year's.
    let cfg = utc_cfg(Utc.with_ymd_and_hms(2024, 1, 1, 0, 10, 0).unwrap());
    assert_eq!(
        ts(&parse_ok(&format!("Dec 31 23:59:58 {TAIL}"), &cfg)),
        "2023-12-31T23:59:58Z"
    );
    assert_eq!(
        ts(&parse_ok(&format!("Jan  1 00:05:00 {TAIL}"), &cfg)),
        "2024-01-01T00:05:00Z"
    );
    assert_eq!(
        ts(&parse_ok(&format!("<13>Dec 30 12:00:00 {TAIL}"), &cfg)),
        "2023-12-30T12:00:00Z"
    );
    // Minutes ahead of the reference (clock skew) stays in the same year.
    assert_eq!(
        ts(&parse_ok(&format!("Jan  1 00:15:00 {TAIL}"), &cfg)),
        "2024-01-01T00:15:00Z"
    );
    // Read in late December: a January line is from this year, not next.
    let dec = utc_cfg(Utc.with_ymd_and_hms(2023, 12, 31, 23, 0, 0).unwrap());
    assert_eq!(
        ts(&parse_ok(&format!("Jan  1 00:05:00 {TAIL}"), &dec)),
        "2023-01-01T00:05:00Z"
    );
}

#[test]
fn leap_day_and_override() {
    let cfg = utc_cfg(Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap());
    assert_eq!(
        ts(&parse_ok(&format!("Feb 29 10:00:00 {TAIL}"), &cfg)),
        "2024-02-29T10:00:00Z"
    );
    let fixed = ParseConfig {
        year: Some(2020),
        ..cfg
    };
    let e = parse_ok(&format!("Dec 31 23:59:58 {TAIL}"), &fixed);
    assert_eq!(ts(&e), "2020-12-31T23:59:58Z");
    assert!(e.time_zone_assumed);
}

#[test]
fn go_date_wins_over_the_year_guess() {
    // Reference in 2025, but Go printed 2023: the line is from 2023.
    let cfg = utc_cfg(Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap());
    let e = parse_ok(
        "Dec 31 23:59:58 gw1 proxy[812]: 2023/12/31 23:59:58 http: proxy error: EOF",
        &cfg,
    );
    assert_eq!(ts(&e), "2023-12-31T23:59:58Z");
    // The envelope is more precise, so it wins, but takes Go's year, even
    // when Go's stamp has already ticked into the new year.
    let e = parse_ok(
        "Dec 31 23:59:59.999999 gw1 proxy[812]: 2024/01/01 00:00:00 http: proxy error: EOF",
        &cfg,
    );
    assert_eq!(ts(&e), "2023-12-31T23:59:59.999999Z");
}

#[test]
fn zone_applied_with_dst() {
    let cfg = ParseConfig {
        tz: Some(chrono_tz::Europe::Berlin),
        year: None,
        reference: Utc.with_ymd_and_hms(2023, 12, 1, 0, 0, 0).unwrap(),
        formats: wiretrail_logs::Formats::ALL,
    };
    // Summer (+02:00) and winter (+01:00).
    assert_eq!(
        ts(&parse_ok(
            "2023/07/01 12:00:00 http: proxy error: EOF",
            &cfg
        )),
        "2023-07-01T10:00:00Z"
    );
    assert_eq!(
        ts(&parse_ok(
            "2023/11/01 12:00:00 http: proxy error: EOF",
            &cfg
        )),
        "2023-11-01T11:00:00Z"
    );
    // 02:30 does not exist on 2023-03-26 in Berlin: read with the offset before the gap.
    assert_eq!(
        ts(&parse_ok(
            "2023/03/26 02:30:00 http: proxy error: EOF",
            &cfg
        )),
        "2023-03-26T01:30:00Z"
    );
    // 02:30 happens twice on 2023-10-29: the earlier (+02:00) reading.
    assert_eq!(
        ts(&parse_ok(
            "2023/10/29 02:30:00 http: proxy error: EOF",
            &cfg
        )),
        "2023-10-29T00:30:00Z"
    );
}
