//! Times, durations and windows as people type them: the one vocabulary of
//! every command (`investigate`, `batch`, `serve`'s webhook bodies,
//! `capture`, `es`) and of pipeline files.
//!
//! Times ([`parse_time`]):
//! - RFC 3339: `2023-05-05T09:33:07Z`, `2023-05-05T17:33:07.25+08:00`;
//! - `2023-05-05 17:33:07` (or `T`, seconds and fraction optional) followed
//!   by a zone: `+08:00`, `+0800`, `Z`, `UTC`, `Asia/Shanghai`;
//! - a bare date `2023-05-05` (its midnight), with the same optional zone;
//! - epoch seconds: `1683279187`, `1683279187.25`.
//!
//! A stamp without a zone takes the pipeline's `tz` (or `--tz`); with no `tz`
//! either it is refused, because guessing a zone silently shifts every
//! window by hours.
//!
//! Durations ([`parse_duration`]): `90s`, `5m`, `1h30m`, `500ms`, `2d`.
//!
//! Everything is parsed once into [`Timestamp`] and [`Duration`] (defined in
//! `wiretrail_capture::time`, re-exported through `model`), whose
//! arithmetic is checked: a window that would start before 1677 or end after
//! 2262 (the range of a nanosecond count in an `i64`, which captures use) is
//! an error naming the input, never a panic or a wrapped value. chrono's
//! `DateTime` and f64 seconds appear only at the edges (log records, reports,
//! Elasticsearch ranges).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use std::fmt;

pub use crate::model::{Duration, Timestamp};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// An optional duration in a pipeline file (`"5m"`), for
/// `#[serde(default, deserialize_with = "...")]`: [`Duration`] itself
/// (de)serialises as a nanosecond count, as reports and caches hold it.
pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

const TIME_FORMS: &str = "use RFC 3339 (`2023-05-05T09:33:07Z`), `2023-05-05 17:33:07 +08:00`, a date (`2023-05-05`) or epoch seconds (`1683279187`)";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a time: {TIME_FORMS}")]
    BadTime(String),
    #[error(
        "`{0}` has no zone: write it as `{0} +08:00` (or `{0} Asia/Shanghai`), or set `tz` / --tz"
    )]
    NoZone(String),
    #[error("`{zone}` in `{input}` is not a zone: use an offset like `+08:00` or an IANA name like `Asia/Shanghai`")]
    BadZone { input: String, zone: String },
    #[error("`{0}` is not a time zone: use an IANA name such as `Asia/Shanghai`, `Europe/Berlin` or `UTC`")]
    BadTz(String),
    #[error("`{0}` does not exist in that zone (skipped by a daylight-saving change)")]
    Nonexistent(String),
    #[error(
        "`{0}` is ambiguous in that zone (repeated by a daylight-saving change): give an offset"
    )]
    Ambiguous(String),
    #[error("`{0}` is outside the times wiretrail can represent (1677-09-21 .. 2262-04-11, those of capture timestamps)")]
    OutOfRange(String),
    #[error("`{0}` is not a duration: use e.g. `90s`, `5m`, `1h30m`, `500ms`, `2d`")]
    BadDuration(String),
    #[error(
        "`{0}` is longer than any window wiretrail can hold (at most about 584 years, `213503d`)"
    )]
    DurationTooLong(String),
    #[error("`{0}` is not a day: use YYYY-MM-DD")]
    BadDay(String),
    #[error("empty window: `since` ({since}) is not before `until` ({until})")]
    EmptyWindow { since: Timestamp, until: Timestamp },
    #[error("the window {what} {limit}, outside the times wiretrail can represent (1677-09-21 .. 2262-04-11)")]
    WindowOutOfRange {
        /// `would start before` / `would end after`.
        what: &'static str,
        limit: &'static str,
    },
}

const EARLIEST: &str = "1677-09-21";
const LATEST: &str = "2262-04-11";

fn starts_too_early() -> TimeError {
    TimeError::WindowOutOfRange {
        what: "would start before",
        limit: EARLIEST,
    }
}

fn ends_too_late() -> TimeError {
    TimeError::WindowOutOfRange {
        what: "would end after",
        limit: LATEST,
    }
}

/// Parse an IANA zone name (`--tz`, the pipeline's `tz`).
pub fn parse_tz(s: &str) -> Result<Tz, TimeError> {
    s.trim()
        .parse::<Tz>()
        .map_err(|_| TimeError::BadTz(s.to_string()))
}

/// Parse a zone name or offset (`UTC`, `Z`, `+08:00`, `Asia/Shanghai`).
pub fn parse_zone(s: &str) -> Option<Zone> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt")
    {
        return Some(Zone::Fixed(chrono::FixedOffset::east_opt(0)?));
    }
    if let Some(off) = parse_offset(s) {
        return Some(Zone::Fixed(off));
    }
    s.parse::<Tz>().ok().map(Zone::Named)
}

fn parse_offset(s: &str) -> Option<chrono::FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A zone given by the user: a fixed offset or an IANA name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Fixed(chrono::FixedOffset),
    Named(Tz),
}

impl Zone {
    fn resolve(&self, naive: NaiveDateTime, input: &str) -> Result<Timestamp, TimeError> {
        let r = match self {
            Zone::Fixed(o) => o.from_local_datetime(&naive).map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => tz
                .from_local_datetime(&naive)
                .map(|t| t.with_timezone(&Utc)),
        };
        let t = match r {
            LocalResult::Single(t) => t,
            LocalResult::None => return Err(TimeError::Nonexistent(input.to_string())),
            LocalResult::Ambiguous(..) => return Err(TimeError::Ambiguous(input.to_string())),
        };
        Timestamp::from_utc(t).ok_or_else(|| TimeError::OutOfRange(input.to_string()))
    }
}

/// Epoch seconds with an optional fraction of up to 9 digits.
fn parse_epoch(s: &str, input: &str) -> Option<Result<Timestamp, TimeError>> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    if frac.len() > 9 {
        return Some(Err(TimeError::BadTime(input.to_string())));
    }
    let out_of_range = || TimeError::OutOfRange(input.to_string());
    let frac_ns: i64 = format!("{frac:0<9}").parse().ok()?;
    let ns = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| s.checked_mul(NANOS_PER_SEC as i64))
        .and_then(|n| n.checked_add(frac_ns))
        .map(Timestamp::from_nanos)
        .ok_or_else(out_of_range);
    Some(ns)
}

/// Parse a time as users write it (see the module doc); `default_tz`
/// applies to zone-less stamps.
pub fn parse_time(input: &str, default_tz: Option<Tz>) -> Result<Timestamp, TimeError> {
    let s = input.trim();
    if let Some(r) = parse_epoch(s, input) {
        return r;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Timestamp::from_utc(t.with_timezone(&Utc))
            .ok_or_else(|| TimeError::OutOfRange(input.to_string()));
    }
    let b = s.as_bytes();
    // A bare date, `YYYY-MM-DD[ zone]`: its midnight.
    let is_date = b.len() >= 10
        && s.is_char_boundary(10)
        && NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").is_ok();
    if !is_date {
        return Err(TimeError::BadTime(input.to_string()));
    }
    let has_time = b.len() > 11 && matches!(b[10], b' ' | b'T') && b[11].is_ascii_digit();
    let (naive, zone_text) = if !has_time {
        let d = NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d")
            .map_err(|_| TimeError::BadTime(input.to_string()))?;
        (d.and_time(chrono::NaiveTime::MIN), s[10..].trim())
    } else {
        // `HH:MM[:SS[.frac]]` then an optional zone.
        let time_len = {
            let t = &b[11..];
            let mut n = t
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b':')
                .count();
            if t.get(n) == Some(&b'.') {
                n += 1 + t[n + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            }
            n
        };
        let end = 11 + time_len;
        let stamp = format!("{} {}", &s[..10], &s[11..end]);
        let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(&stamp, f).ok())
            .ok_or_else(|| TimeError::BadTime(input.to_string()))?;
        (naive, s[end..].trim())
    };
    let zone = if zone_text.is_empty() {
        match default_tz {
            Some(tz) => Zone::Named(tz),
            None => return Err(TimeError::NoZone(input.to_string())),
        }
    } else {
        parse_zone(zone_text).ok_or_else(|| TimeError::BadZone {
            input: input.to_string(),
            zone: zone_text.to_string(),
        })?
    };
    zone.resolve(naive, input)
}

/// Parse `90s`, `5m`, `1h30m`, `500ms`, `2d` (components in any order,
/// summed). A duration longer than a [`Duration`] holds (about 584 years)
/// is [`TimeError::DurationTooLong`].
pub fn parse_duration(input: &str) -> Result<Duration, TimeError> {
    let bad = || TimeError::BadDuration(input.to_string());
    let too_long = || TimeError::DurationTooLong(input.to_string());
    let s = input.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let number = &rest[..digits];
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit_ns: u64 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "d" => 86_400 * NANOS_PER_SEC,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        // All digits: a parse failure is an overflow.
        let n: u64 = number.parse().map_err(|_| too_long())?;
        total = n
            .checked_mul(unit_ns)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(too_long)?;
    }
    Ok(Duration::from_nanos(total))
}

/// A half-open time window `[since, until)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    since: Timestamp,
    until: Timestamp,
}

impl Window {
    pub fn new(since: Timestamp, until: Timestamp) -> Result<Window, TimeError> {
        if since >= until {
            return Err(TimeError::EmptyWindow { since, until });
        }
        Ok(Window { since, until })
    }

    /// From `before` ahead of `at` to `after` past it.
    pub fn around(at: Timestamp, before: Duration, after: Duration) -> Result<Window, TimeError> {
        Window::new(
            at.checked_sub(before).ok_or_else(starts_too_early)?,
            at.checked_add(after).ok_or_else(ends_too_late)?,
        )
    }

    /// The `len` up to `until`.
    pub fn ending(until: Timestamp, len: Duration) -> Result<Window, TimeError> {
        Window::around(until, len, Duration::ZERO)
    }

    /// The `len` from `since` on.
    pub fn starting(since: Timestamp, len: Duration) -> Result<Window, TimeError> {
        Window::around(since, Duration::ZERO, len)
    }

    /// A calendar day in `tz` (UTC when none).
    pub fn day(day: &str, tz: Option<Tz>) -> Result<Window, TimeError> {
        let d = NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
            .map_err(|_| TimeError::BadDay(day.to_string()))?;
        let start = d.and_time(chrono::NaiveTime::MIN);
        let next = d
            .succ_opt()
            .map(|n| n.and_time(chrono::NaiveTime::MIN))
            .ok_or_else(|| TimeError::BadDay(day.to_string()))?;
        let zone = tz.map(Zone::Named).unwrap_or(Zone::Fixed(
            chrono::FixedOffset::east_opt(0).expect("0 is valid"),
        ));
        Window::new(zone.resolve(start, day)?, zone.resolve(next, day)?)
    }

    pub fn since(&self) -> Timestamp {
        self.since
    }
    pub fn until(&self) -> Timestamp {
        self.until
    }
    /// Whether a log record's stamp falls inside.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        Timestamp::from_utc(t).is_some_and(|t| t >= self.since && t < self.until)
    }
    pub fn len(&self) -> Duration {
        self.until
            .duration_since(self.since)
            .expect("a window is never empty")
    }
    /// Cut into consecutive pieces of at most `chunk` (the last may be
    /// shorter); a zero chunk is the whole window.
    pub fn chunks(&self, chunk: Duration) -> Vec<Window> {
        let mut out = Vec::new();
        let mut t = self.since;
        while t < self.until {
            let end = match t.checked_add(chunk) {
                Some(e) if !chunk.is_zero() => e.min(self.until),
                _ => self.until,
            };
            out.push(Window {
                since: t,
                until: end,
            });
            t = end;
        }
        out
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} .. {}", self.since, self.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        Timestamp::from_utc(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)).unwrap()
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn times_in_every_spelling() {
        let want = utc("2023-05-05T09:33:07Z");
        for s in [
            "2023-05-05T09:33:07Z",
            "2023-05-05T17:33:07+08:00",
            "2023-05-05 17:33:07 +08:00",
            "2023-05-05 17:33:07+0800",
            "2023-05-05 17:33:07 Asia/Shanghai",
            "2023-05-05 09:33:07 UTC",
            "2023-05-05 09:33:07Z",
            "1683279187",
            " 1683279187.0 ",
        ] {
            assert_eq!(parse_time(s, None).unwrap(), want, "{s}");
        }
        for s in [
            "2023-05-05 17:33 +08:00",
            "2023-05-05T09:33Z",
            "2023-05-05 09:33",
        ] {
            let want = want.checked_sub(Duration::from_secs(7)).unwrap();
            assert_eq!(parse_time(s, Some(chrono_tz::UTC)).unwrap(), want, "{s}");
        }
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(parse_time("2023-05-05 17:33:07", Some(tz)).unwrap(), want);
        let quarter = want.checked_add(Duration::from_millis(250)).unwrap();
        assert_eq!(
            parse_time("2023-05-05 17:33:07.250 +08:00", None).unwrap(),
            quarter
        );
        assert_eq!(parse_time("1683279187.25", None).unwrap(), quarter);
        assert_eq!(
            parse_time("1683279187.000000001", None).unwrap().as_nanos(),
            1_683_279_187_000_000_001
        );
        // Bare dates: midnight, in the zone given or the default one.
        assert_eq!(
            parse_time("2023-05-05", Some(tz)).unwrap(),
            utc("2023-05-04T16:00:00Z")
        );
        assert_eq!(
            parse_time("2023-05-05 +08:00", None).unwrap(),
            utc("2023-05-04T16:00:00Z")
        );
        assert_eq!(
            parse_time("2023-05-05 UTC", None).unwrap(),
            utc("2023-05-05T00:00:00Z")
        );
        assert_eq!(want.to_string(), "2023-05-05T09:33:07Z");
        assert_eq!(quarter.to_string(), "2023-05-05T09:33:07.250Z");
    }

    #[test]
    fn bad_times_say_what_is_wrong() {
        let e = parse_time("2023-05-05 17:33:07", None).unwrap_err();
        assert!(matches!(e, TimeError::NoZone(_)));
        assert!(e.to_string().contains("+08:00"));
        assert!(matches!(
            parse_time("2023-05-05", None),
            Err(TimeError::NoZone(_))
        ));
        assert!(matches!(
            parse_time("2023-05-05 17:33:07 Mars/Base", None),
            Err(TimeError::BadZone { .. })
        ));
        for s in [
            "yesterday",
            "",
            "2023-13-05",
            "17:33:07",
            "1683279187.",
            "1.2.3",
            "1683279187.1234567891",
            "-5",
        ] {
            let e = parse_time(s, Some(chrono_tz::UTC)).unwrap_err();
            assert!(matches!(e, TimeError::BadTime(_)), "{s}: {e:?}");
            assert!(e.to_string().contains("epoch seconds"), "{e}");
        }
        // Outside what a capture timestamp holds: refused, not wrapped.
        for s in [
            "99999999999",
            "1600-01-01T00:00:00Z",
            "2263-01-01 00:00:00 +00:00",
            "9999-12-31",
        ] {
            assert!(
                matches!(
                    parse_time(s, Some(chrono_tz::UTC)),
                    Err(TimeError::OutOfRange(_))
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn dst_gaps_are_named() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        assert!(matches!(
            parse_time("2023-03-26 02:30:00", Some(tz)),
            Err(TimeError::Nonexistent(_))
        ));
        assert!(matches!(
            parse_time("2023-10-29 02:30:00", Some(tz)),
            Err(TimeError::Ambiguous(_))
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_mins(5));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_mins(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_hours(48));
        for bad in ["", "5", "m", "5x", "1h 30m", "-5m", "1.5h"] {
            assert!(
                matches!(parse_duration(bad), Err(TimeError::BadDuration(_))),
                "{bad}"
            );
        }
        for huge in ["1000000000d", "300000d", "99999999999999999999s"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(matches!(e, TimeError::DurationTooLong(_)), "{huge}: {e:?}");
            assert!(e.to_string().contains(huge));
        }
        assert_eq!(
            parse_duration("213503d").unwrap().as_secs(),
            213_503 * 86_400
        );
        assert_eq!(Duration::from_mins(90).to_string(), "1h30m");
        assert_eq!(
            parse_duration("1d2h3m4s5ms").unwrap().to_string(),
            "1d2h3m4s5ms"
        );
        assert_eq!(Duration::ZERO.to_string(), "0s");
    }

    #[test]
    fn arithmetic_is_checked() {
        let at = utc("2026-11-25T00:34:00Z");
        let huge = parse_duration("200000d").unwrap();
        assert_eq!(
            Window::around(at, huge, SEC),
            Err(TimeError::WindowOutOfRange {
                what: "would start before",
                limit: EARLIEST
            })
        );
        assert!(Window::starting(at, huge).is_err());
        assert!(Window::around(at, Duration::MAX, Duration::MAX).is_err());
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(Timestamp::MIN.checked_sub(Duration::from_nanos(1)), None);
        assert_eq!(
            Timestamp::MIN.checked_add(Duration::MAX),
            Some(Timestamp::from_nanos(i64::MAX))
        );
        let w = Window::around(at, Duration::from_mins(5), Duration::from_secs(30)).unwrap();
        assert_eq!(w.len(), Duration::from_secs(330));
        assert_eq!(at.duration_since(w.since()), Some(Duration::from_mins(5)));
        assert_eq!(w.since().duration_since(at), None);
        assert!(Timestamp::from_millis(i64::MAX).is_none());
    }

    #[test]
    fn windows_and_days() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let w = Window::day("2023-05-05", Some(tz)).unwrap();
        assert_eq!(w.since(), utc("2023-05-04T16:00:00Z"));
        assert_eq!(w.until(), utc("2023-05-05T16:00:00Z"));
        let c = w.chunks(Duration::from_hours(5));
        assert_eq!(c.len(), 5);
        assert_eq!(c[4].len(), Duration::from_hours(4));
        assert_eq!(c[0].until(), c[1].since());
        assert_eq!(w.chunks(Duration::ZERO), vec![w]);
        assert_eq!(w.chunks(Duration::MAX), vec![w]);
        assert!(Window::new(w.until(), w.since()).is_err());
        assert!(w.contains(w.since().to_utc()));
        assert!(!w.contains(w.until().to_utc()));
        // Outside the representable range: not contained, not a panic.
        assert!(!w.contains(DateTime::<Utc>::MAX_UTC));
    }
}
