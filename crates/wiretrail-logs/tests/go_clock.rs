//! Go `log` with `Ltime` but no `Ldate` (`15:04:05`, `15:04:05.000000`).
//!
//! The fixtures in `fixtures/go-clock/` are what `fixtures/go-clock/gen.go`
//! printed through a real `httputil.ReverseProxy` (one backend resetting,
//! one refusing) on 2026-11-25 around 02:30 UTC, once per flag set: `Ltime`,
//! `Ltime|Lmicroseconds`, `Lmicroseconds`, `Ltime|LUTC`,
//! `Ltime|Lmicroseconds|LUTC`, `+Lshortfile`, `Ltime|Llongfile`,
//! `SetPrefix("[gw] ")`, `SetPrefix("gw: ")`, `+Lmsgprefix`, two lines each.
//! The envelopes were added by a shell loop stamping each line as it read
//! it (as a shipper does):
//! - `bare-shanghai.log`: `TZ=Asia/Shanghai ./gen`
//! - `journald-short-shanghai.log`: `date +'%b %d %H:%M:%S'` in Shanghai
//! - `journald-short-iso-utc.log`: the process and `date +%FT%T%z` in UTC
//! - `cri-utc.log`: `date -u +%FT%T.%NZ`, the process in UTC

mod common;
use chrono::{TimeZone, Utc};
use common::*;
use wiretrail_logs::{
    parse_document, parse_line, ErrorClass, ParseConfig, Parsed, Source, TimePrecision,
};

const BARE: &str = include_str!("fixtures/go-clock/bare-shanghai.log");
const JOURNALD: &str = include_str!("fixtures/go-clock/journald-short-shanghai.log");
const ISO_UTC: &str = include_str!("fixtures/go-clock/journald-short-iso-utc.log");
const CRI: &str = include_str!("fixtures/go-clock/cri-utc.log");

const SHANGHAI: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn shanghai(reference: chrono::DateTime<Utc>) -> ParseConfig {
    ParseConfig {
        tz: Some(SHANGHAI),
        year: None,
        reference,
        formats: wiretrail_logs::Formats::ALL,
    }
}

fn precision_of(ts: &str) -> TimePrecision {
    if ts.contains('.') {
        TimePrecision::Microsecond
    } else {
        TimePrecision::Second
    }
}

/// Every line parses, alternating reset / refused as the generator ran them.
fn check_all(text: &str, cfg: &ParseConfig, want: &[&str], assumed: bool) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), want.len());
    for (n, (line, want)) in lines.iter().zip(want).enumerate() {
        let e = parse_ok(line, cfg);
        assert_eq!(ts(&e), *want, "line {}: {line}", n + 1);
        assert_eq!(e.time_precision, precision_of(want), "line {}", n + 1);
        assert_eq!(e.time_zone_assumed, assumed, "line {}", n + 1);
        let class = if n % 2 == 0 {
            ErrorClass::Reset
        } else {
            ErrorClass::Refused
        };
        assert_eq!(e.class, class, "line {}: {line}", n + 1);
        assert!(
            e.message.starts_with("read tcp 127.0.0.1:")
                || e.message.starts_with("dial tcp 127.0.0.1:1:"),
            "line {}: {}",
            n + 1,
            e.message
        );
    }
}

#[test]
fn bare_lines_take_the_last_day_before_the_reference() {
    // The file's mtime: a few seconds after the last line.
    let cfg = shanghai(Utc.with_ymd_and_hms(2026, 11, 25, 2, 30, 40).unwrap());
    // Lines 7-10 are LUTC: read in the configured zone (Shanghai) they are
    // eight hours earlier, which is what the configuration says.
    let want = [
        "2026-11-25T02:30:33Z",
        "2026-11-25T02:30:33Z",
        "2026-11-25T02:30:33.993851Z",
        "2026-11-25T02:30:33.993985Z",
        "2026-11-25T02:30:33.994164Z",
        "2026-11-25T02:30:33.994230Z",
        "2026-11-24T18:30:33Z",
        "2026-11-24T18:30:33Z",
        "2026-11-24T18:30:33.994601Z",
        "2026-11-24T18:30:33.994674Z",
        "2026-11-25T02:30:33.994835Z",
        "2026-11-25T02:30:33.994918Z",
        "2026-11-25T02:30:33Z",
        "2026-11-25T02:30:33Z",
        "2026-11-25T02:30:33.995292Z",
        "2026-11-25T02:30:33.995361Z",
        "2026-11-25T02:30:33Z",
        "2026-11-25T02:30:33Z",
        "2026-11-25T02:30:33.996096Z",
        "2026-11-25T02:30:33.996227Z",
    ];
    check_all(BARE, &cfg, &want, true);

    let lines: Vec<&str> = BARE.lines().collect();
    // LUTC lines with the zone configured as UTC.
    let utc = utc_cfg(Utc.with_ymd_and_hms(2026, 11, 25, 2, 30, 40).unwrap());
    assert_eq!(ts(&parse_ok(lines[8], &utc)), "2026-11-25T02:30:33.994601Z");

    // The reference decides the day: the next morning, the line is still
    // yesterday's; 5 minutes before it (clock skew) still today; 15
    // minutes before it, the day before.
    let line = lines[2];
    for (reference, want) in [
        ((2026, 11, 26, 1, 0), "2026-11-25T02:30:33.993851Z"),
        ((2026, 11, 25, 2, 25), "2026-11-25T02:30:33.993851Z"),
        ((2026, 11, 25, 2, 15), "2026-11-24T02:30:33.993851Z"),
    ] {
        let (y, mo, d, h, mi) = reference;
        let cfg = shanghai(Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap());
        assert_eq!(ts(&parse_ok(line, &cfg)), want, "reference {reference:?}");
    }
    // `year` names no day: the reference still decides.
    let fixed = ParseConfig {
        year: Some(2020),
        ..cfg.clone()
    };
    assert_eq!(ts(&parse_ok(line, &fixed)), "2026-11-25T02:30:33.993851Z");
}

#[test]
fn journald_short_takes_gos_microseconds() {
    let cfg = shanghai(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    // Lines 9-10 are LUTC: Go's 02:30:34 read in Shanghai is eight hours
    // from the envelope's 10:30:34, so it cannot be the same moment and the
    // envelope's second stands.
    let want = [
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34.001787Z",
        "2026-11-25T02:30:34.001854Z",
        "2026-11-25T02:30:34.002545Z",
        "2026-11-25T02:30:34.002653Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34.003533Z",
        "2026-11-25T02:30:34.003700Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34.004166Z",
        "2026-11-25T02:30:34.004243Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34Z",
        "2026-11-25T02:30:34.004589Z",
        "2026-11-25T02:30:34.004644Z",
    ];
    check_all(JOURNALD, &cfg, &want, true);
    let e = parse_ok(JOURNALD.lines().nth(18).unwrap(), &cfg);
    assert_eq!(
        (e.host.as_deref(), e.process.as_deref(), e.pid),
        (Some("gw1"), Some("proxy"), Some(812))
    );
    assert_eq!(e.local.as_deref(), Some("127.0.0.1:38598"));
}

#[test]
fn envelope_offset_names_the_zone_the_configuration_got_wrong() {
    // A UTC process behind a journal printing +0000, read with --tz
    // Asia/Shanghai: the configured zone puts Go's clock eight hours away,
    // the envelope's own offset puts it within a millisecond.
    let want: Vec<String> = [
        "", "", ".045745", ".045832", ".046029", ".046104", "", "", ".046405", ".046462",
        ".046594", ".046661", "", "", ".047077", ".047149", "", "", ".047713", ".047871",
    ]
    .iter()
    .map(|f| format!("2026-11-25T02:30:34{f}Z"))
    .collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    let reference = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    // The envelope printed its year and zone: nothing is assumed.
    check_all(ISO_UTC, &shanghai(reference), &want, false);
    check_all(ISO_UTC, &utc_cfg(reference), &want, false);
}

#[test]
fn cri_nanoseconds_beat_gos_microseconds() {
    let cfg = shanghai(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    for line in CRI.lines() {
        let e = parse_ok(line, &cfg);
        assert_eq!(ts(&e), line[..30], "{line}");
        assert_eq!(e.time_precision, TimePrecision::Nanosecond);
        assert!(!e.time_zone_assumed);
    }
}

const EOF_TAIL: &str = "http: proxy error: EOF";

#[test]
fn midnight_crossing_both_ways() {
    // Real formats, times moved to midnight.
    let cfg = shanghai(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    // Written at 23:59:59.9, stamped 00:00:00 by journald: the earlier day.
    let e = parse_ok(
        &format!("Nov 26 00:00:00 gw1 proxy[812]: 23:59:59.912345 {EOF_TAIL}"),
        &cfg,
    );
    assert_eq!(ts(&e), "2026-11-25T15:59:59.912345Z");
    assert!(e.time_zone_assumed);
    // A shipper whose clock is a millisecond behind stamps 23:59:59.999 a
    // line Go wrote at 00:00:00.000123: the later day.
    let doc = serde_json::json!({
        "@timestamp": "2026-11-25T15:59:59.999Z",
        "message": format!("[gw] 00:00:00.000123 {EOF_TAIL}"),
        "host": {"name": "gw1"},
    });
    let Parsed::Error(e) = parse_document(&doc, origin(), &cfg) else {
        panic!("not parsed")
    };
    assert_eq!(ts(&e), "2026-11-25T16:00:00.000123Z");
    assert_eq!(e.time_precision, TimePrecision::Microsecond);
    assert!(!e.time_zone_assumed);

    // Across New Year, the envelope's year inferred from the reference.
    let utc = utc_cfg(Utc.with_ymd_and_hms(2027, 1, 1, 0, 5, 0).unwrap());
    assert_eq!(
        ts(&parse_ok(
            &format!("Jan  1 00:00:00 gw1 proxy[812]: 23:59:59.999999 {EOF_TAIL}"),
            &utc
        )),
        "2026-12-31T23:59:59.999999Z"
    );
    assert_eq!(
        ts(&parse_ok(
            &format!("<134>Dec 31 23:59:59 gw1 proxy[812]: 00:00:00.000042 {EOF_TAIL}"),
            &utc
        )),
        "2027-01-01T00:00:00.000042Z"
    );
    // A bare line just after midnight, file modified just before it, with
    // less than the 10 minutes of slack: today; a bare line of 23:59 read
    // at 00:01: yesterday.
    assert_eq!(
        ts(&parse_ok(
            &format!("00:03:00.5 {EOF_TAIL}"),
            &utc_cfg(Utc.with_ymd_and_hms(2026, 12, 31, 23, 58, 0).unwrap())
        )),
        "2027-01-01T00:03:00.500Z"
    );
    assert_eq!(
        ts(&parse_ok(
            &format!("23:59:00 {EOF_TAIL}"),
            &utc_cfg(Utc.with_ymd_and_hms(2027, 1, 1, 0, 1, 0).unwrap())
        )),
        "2026-12-31T23:59:00Z"
    );
}

#[test]
fn the_more_precise_stamp_wins() {
    let cfg = shanghai(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    let rows = [
        // Same precision (seconds): the envelope, even when Go disagrees.
        (
            format!("Nov 25 10:30:35 gw1 proxy[812]: 10:30:34 {EOF_TAIL}"),
            "2026-11-25T02:30:35Z",
        ),
        // RFC 5424 microseconds against Go's microseconds: the envelope.
        (
            format!("<134>1 2026-11-25T10:30:34.481516+08:00 gw1 proxy 812 - - 10:30:34.481000 {EOF_TAIL}"),
            "2026-11-25T02:30:34.481516Z",
        ),
        // RFC 5424 milliseconds: Go's microseconds.
        (
            format!("<134>1 2026-11-25T10:30:34.482+08:00 gw1 proxy 812 - - 10:30:34.481516 {EOF_TAIL}"),
            "2026-11-25T02:30:34.481516Z",
        ),
        // journald JSON (µs since the epoch) against Go's µs: the envelope.
        (
            format!(r#"{{"__REALTIME_TIMESTAMP":"1795573834481600","_HOSTNAME":"gw1","MESSAGE":"10:30:34.481516 {EOF_TAIL}"}}"#),
            "2026-11-25T02:30:34.481600Z",
        ),
        // Docker json-file nanoseconds: the envelope.
        (
            format!(r#"{{"log":"10:30:34.481516 {EOF_TAIL}\n","stream":"stderr","time":"2026-11-25T02:30:34.481999999Z"}}"#),
            "2026-11-25T02:30:34.481999999Z",
        ),
        // journald JSON without a stamp: Go's time of day, day from the reference.
        (
            format!(r#"{{"_HOSTNAME":"gw1","MESSAGE":"10:30:34.481516 {EOF_TAIL}"}}"#),
            "2026-11-30T02:30:34.481516Z",
        ),
    ];
    for (line, want) in rows {
        assert_eq!(ts(&parse_ok(&line, &cfg)), want, "{line}");
    }
}

#[test]
fn zone_rules() {
    // Berlin springs forward at 02:00 CET on 2023-03-26. journald stamps
    // 03:00:00 (CEST) a line Go wrote at 01:59:59.999 (CET): 1 ms apart.
    let cfg = ParseConfig {
        tz: Some(chrono_tz::Europe::Berlin),
        year: None,
        reference: Utc.with_ymd_and_hms(2023, 8, 1, 0, 0, 0).unwrap(),
        formats: wiretrail_logs::Formats::ALL,
    };
    assert_eq!(
        ts(&parse_ok(
            &format!("Mar 26 03:00:00 gw1 proxy[812]: 01:59:59.999 {EOF_TAIL}"),
            &cfg
        )),
        "2023-03-26T00:59:59.999Z"
    );
    // A process in UTC behind a Berlin journal without a printed zone:
    // Go's 11:00:00.25 read in Berlin (CEST) is two hours off the
    // envelope's 13:00:00, so the envelope's second stands.
    let e = parse_ok(
        &format!("Jul 01 13:00:00 gw1 proxy[812]: 11:00:00.250000 {EOF_TAIL}"),
        &cfg,
    );
    assert_eq!(ts(&e), "2023-07-01T11:00:00Z");
    assert_eq!(e.time_precision, TimePrecision::Second);
    // A late shipper (Filebeat harvesting 4 minutes after the write) is
    // still the same moment; 20 minutes is not.
    for (at, want) in [
        ("2023-07-01T11:04:00.000Z", "2023-07-01T11:00:00.250000Z"),
        ("2023-07-01T11:20:00.000Z", "2023-07-01T11:20:00.000Z"),
    ] {
        let doc =
            serde_json::json!({"@timestamp": at, "message": format!("13:00:00.250000 {EOF_TAIL}")});
        let Parsed::Error(e) = parse_document(&doc, origin(), &cfg) else {
            panic!("not parsed")
        };
        assert_eq!(ts(&e), want, "{at}");
    }
}

#[test]
fn what_is_not_a_go_clock() {
    let cfg = shanghai(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    for line in [
        // No stamp anywhere.
        format!("[gw] {EOF_TAIL}"),
        format!("reverseproxy.go:503: [gw] {EOF_TAIL}"),
        // Not followed by the space Go writes.
        format!("10:30:34.5s {EOF_TAIL}"),
        // Part of a longer clock or number.
        format!("1:10:30:34 {EOF_TAIL}"),
        format!("110:30:34 {EOF_TAIL}"),
        // The time half of a date Go does not print.
        format!("[2026-11-25 10:30:34 {EOF_TAIL}"),
        // Out of range.
        format!("24:30:34 {EOF_TAIL}"),
    ] {
        assert!(
            matches!(
                parse_line(line.as_bytes(), origin(), &cfg),
                Parsed::Malformed(ref why) if why.starts_with("no timestamp")
            ),
            "{line}"
        );
    }
    // The source is untouched for files.
    let e = parse_ok(&format!("10:30:34 {EOF_TAIL}"), &cfg);
    assert_eq!(
        e.source,
        Source::File {
            file: "t.log".into(),
            line: 1
        }
    );
}

mod property {
    use super::*;
    use chrono::{DateTime, Duration};
    use proptest::prelude::*;

    // Zones without DST (a fold makes a local time name two instants):
    // whole hours, half and quarter hours, west and east.
    const ZONES: [chrono_tz::Tz; 5] = [
        chrono_tz::UTC,
        chrono_tz::Asia::Shanghai,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::America::Phoenix,
    ];

    fn at(secs: i64, micros: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, micros * 1000).unwrap()
    }

    fn micros(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    proptest! {
        /// journald short stamps (seconds) a line Go wrote up to 3 s
        /// earlier: the result is Go's instant, whatever midnight or New
        /// Year lies between them.
        #[test]
        fn journald_short_gives_back_gos_instant(
            secs in 946_684_800i64..2_000_000_000, us in 0u32..1_000_000,
            delay_ms in 0i64..3000, z in 0usize..ZONES.len(),
        ) {
            let tz = ZONES[z];
            let t = at(secs, us);
            let shipped = (t + Duration::milliseconds(delay_ms)).with_timezone(&tz);
            let line = format!(
                "{} gw1 proxy[812]: {} {EOF_TAIL}",
                shipped.format("%b %e %H:%M:%S"),
                t.with_timezone(&tz).format("%H:%M:%S%.6f"),
            );
            let cfg = ParseConfig { tz: Some(tz), year: None, reference: t + Duration::days(2), formats: wiretrail_logs::Formats::ALL };
            let e = parse_ok(&line, &cfg);
            prop_assert_eq!(ts(&e), micros(t), "{}", line);
            prop_assert_eq!(e.time_precision, TimePrecision::Microsecond);
        }

        /// Filebeat's `@timestamp` (ms, UTC) up to 4 minutes late.
        #[test]
        fn late_filebeat_gives_back_gos_instant(
            secs in 946_684_800i64..2_000_000_000, us in 0u32..1_000_000,
            delay_ms in 0i64..240_000, z in 0usize..ZONES.len(),
        ) {
            let tz = ZONES[z];
            let t = at(secs, us);
            let shipped = t + Duration::milliseconds(delay_ms);
            let doc = serde_json::json!({
                "@timestamp": shipped.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "message": format!("{} {EOF_TAIL}", t.with_timezone(&tz).format("%H:%M:%S%.6f")),
            });
            let cfg = ParseConfig { tz: Some(tz), year: None, reference: t, formats: wiretrail_logs::Formats::ALL };
            let Parsed::Error(e) = parse_document(&doc, origin(), &cfg) else {
                panic!("{doc}")
            };
            prop_assert_eq!(ts(&e), micros(t), "{}", doc);
            prop_assert!(!e.time_zone_assumed);
        }

        /// A bare line read less than a day (minus the slack) after it was
        /// written.
        #[test]
        fn bare_line_within_a_day_of_the_reference(
            secs in 946_684_800i64..2_000_000_000, us in 0u32..1_000_000,
            later_s in 0i64..(24 * 3600 - 600), z in 0usize..ZONES.len(),
        ) {
            let tz = ZONES[z];
            let t = at(secs, us);
            let line = format!("[gw] {} {EOF_TAIL}", t.with_timezone(&tz).format("%H:%M:%S%.6f"));
            let cfg = ParseConfig { tz: Some(tz), year: None, reference: t + Duration::seconds(later_s), formats: wiretrail_logs::Formats::ALL };
            let e = parse_ok(&line, &cfg);
            prop_assert_eq!(ts(&e), micros(t), "{}", line);
            prop_assert!(e.time_zone_assumed);
        }
    }
}
