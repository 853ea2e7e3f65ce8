//! Times, durations and windows as people type them.
//!
//! Times: RFC 3339 (`2023-05-05T09:33:07Z`), or `2023-05-05 17:33:07` followed
//! by a zone (`+08:00`, `+0800`, `Z`, `UTC`, `Asia/Shanghai`). A stamp without
//! a zone takes the pipeline's `tz`; with no `tz` either it is refused, because
//! guessing a zone silently shifts every window by hours.
//!
//! Durations: `90s`, `5m`, `1h30m`, `500ms`, `2d`.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a time: use RFC 3339 (`2023-05-05T09:33:07Z`) or `2023-05-05 17:33:07 +08:00`")]
    BadTime(String),
    #[error(
        "`{0}` has no zone: write it as `{0} +08:00` (or `{0} Asia/Shanghai`), or set `tz` / --tz"
    )]
    NoZone(String),
    #[error("`{zone}` in `{input}` is not a zone: use an offset like `+08:00` or an IANA name like `Asia/Shanghai`")]
    BadZone { input: String, zone: String },
    #[error("`{0}` does not exist in that zone (skipped by a daylight-saving change)")]
    Nonexistent(String),
    #[error(
        "`{0}` is ambiguous in that zone (repeated by a daylight-saving change): give an offset"
    )]
    Ambiguous(String),
    #[error("`{0}` is not a duration: use e.g. `90s`, `5m`, `1h30m`, `500ms`, `2d`")]
    BadDuration(String),
    #[error("`{0}` is not a day: use YYYY-MM-DD")]
    BadDay(String),
    #[error("empty window: `since` ({since}) is not before `until` ({until})")]
    EmptyWindow { since: String, until: String },
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
    fn resolve(&self, naive: NaiveDateTime, input: &str) -> Result<DateTime<Utc>, TimeError> {
        let r = match self {
            Zone::Fixed(o) => o.from_local_datetime(&naive).map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => tz
                .from_local_datetime(&naive)
                .map(|t| t.with_timezone(&Utc)),
        };
        match r {
            LocalResult::Single(t) => Ok(t),
            LocalResult::None => Err(TimeError::Nonexistent(input.to_string())),
            LocalResult::Ambiguous(..) => Err(TimeError::Ambiguous(input.to_string())),
        }
    }
}

/// Parse a time as users write it; `default_tz` applies to zone-less stamps.
pub fn parse_time(input: &str, default_tz: Option<Tz>) -> Result<DateTime<Utc>, TimeError> {
    let s = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // `YYYY-MM-DD[ T]HH:MM[:SS[.frac]]` then an optional zone.
    let owned;
    let s = if s.len() >= 16
        && s.is_char_boundary(16)
        && s.as_bytes().get(16) != Some(&b':')
        && s.as_bytes().get(13) == Some(&b':')
    {
        // No seconds: `2023-05-05 17:33 +08:00` means 17:33:00.
        owned = format!("{}:00{}", &s[..16], &s[16..]);
        owned.as_str()
    } else {
        s
    };
    let b = s.as_bytes();
    if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') {
        return Err(TimeError::BadTime(input.to_string()));
    }
    let mut end = 19;
    if b.get(19) == Some(&b'.') {
        end = 20;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    let stamp = s[..end].replacen('T', " ", 1);
    let naive = NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S%.f")
        .map_err(|_| TimeError::BadTime(input.to_string()))?;
    let zone_text = s[end..].trim();
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

/// Parse `90s`, `5m`, `1h30m`, `500ms`, `2d` (components in any order, summed).
pub fn parse_duration(input: &str) -> Result<Duration, TimeError> {
    let bad = || TimeError::BadDuration(input.to_string());
    let s = input.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total_ms: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Duration::milliseconds(total_ms))
}

/// Print a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.num_milliseconds();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A duration field in a pipeline file (`"5m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// A half-open time window `[since, until)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl Window {
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Window, TimeError> {
        if since >= until {
            return Err(TimeError::EmptyWindow {
                since: since.to_rfc3339(),
                until: until.to_rfc3339(),
            });
        }
        Ok(Window { since, until })
    }

    /// The window ending `after` past `at` and starting `before` ahead of it.
    pub fn around(
        at: DateTime<Utc>,
        before: Duration,
        after: Duration,
    ) -> Result<Window, TimeError> {
        Window::new(at - before, at + after)
    }

    /// A calendar day in `tz` (UTC when none).
    pub fn day(day: &str, tz: Option<Tz>) -> Result<Window, TimeError> {
        let d = NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
            .map_err(|_| TimeError::BadDay(day.to_string()))?;
        let start = d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| TimeError::BadDay(day.to_string()))?;
        let next = d
            .succ_opt()
            .and_then(|n| n.and_hms_opt(0, 0, 0))
            .ok_or_else(|| TimeError::BadDay(day.to_string()))?;
        let zone = tz.map(Zone::Named).unwrap_or(Zone::Fixed(
            chrono::FixedOffset::east_opt(0).expect("0 is valid"),
        ));
        Window::new(zone.resolve(start, day)?, zone.resolve(next, day)?)
    }

    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }
    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.since && t < self.until
    }
    pub fn len(&self) -> Duration {
        self.until - self.since
    }
    /// Cut into consecutive pieces of at most `chunk` (the last may be shorter).
    pub fn chunks(&self, chunk: Duration) -> Vec<Window> {
        let chunk = if chunk <= Duration::zero() {
            self.len()
        } else {
            chunk
        };
        let mut out = Vec::new();
        let mut t = self.since;
        while t < self.until {
            let end = (t + chunk).min(self.until);
            out.push(Window {
                since: t,
                until: end,
            });
            t = end;
        }
        out
    }
    pub fn since_ns(&self) -> i64 {
        self.since.timestamp_nanos_opt().unwrap_or(i64::MIN)
    }
    pub fn until_ns(&self) -> i64 {
        self.until.timestamp_nanos_opt().unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::SecondsFormat::AutoSi;
        write!(
            f,
            "{} .. {}",
            self.since.to_rfc3339_opts(AutoSi, true),
            self.until.to_rfc3339_opts(AutoSi, true)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

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
        ] {
            assert_eq!(parse_time(s, None).unwrap(), want, "{s}");
        }
        for s in [
            "2023-05-05 17:33 +08:00",
            "2023-05-05T09:33Z",
            "2023-05-05 09:33",
        ] {
            let want = want - Duration::seconds(7);
            assert_eq!(parse_time(s, Some(chrono_tz::UTC)).unwrap(), want, "{s}");
        }
        assert_eq!(parse_time("2023-05-05T09:33:07Z", None).unwrap(), want);
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(parse_time("2023-05-05 17:33:07", Some(tz)).unwrap(), want);
        assert_eq!(
            parse_time("2023-05-05 17:33:07.250 +08:00", None).unwrap(),
            want + Duration::milliseconds(250)
        );
    }

    #[test]
    fn zone_less_time_is_refused_without_tz() {
        let e = parse_time("2023-05-05 17:33:07", None).unwrap_err();
        assert!(matches!(e, TimeError::NoZone(_)));
        assert!(e.to_string().contains("+08:00"));
        assert!(matches!(
            parse_time("2023-05-05 17:33:07 Mars/Base", None),
            Err(TimeError::BadZone { .. })
        ));
        assert!(matches!(
            parse_time("yesterday", None),
            Err(TimeError::BadTime(_))
        ));
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
        assert_eq!(parse_duration("5m").unwrap(), Duration::minutes(5));
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(
            parse_duration("500ms").unwrap(),
            Duration::milliseconds(500)
        );
        assert_eq!(parse_duration("2d").unwrap(), Duration::days(2));
        for bad in ["", "5", "m", "5x", "1h 30m", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::minutes(90)), "1h30m");
    }

    #[test]
    fn windows_and_days() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let w = Window::day("2023-05-05", Some(tz)).unwrap();
        assert_eq!(w.since(), utc("2023-05-04T16:00:00Z"));
        assert_eq!(w.until(), utc("2023-05-05T16:00:00Z"));
        let c = w.chunks(Duration::hours(5));
        assert_eq!(c.len(), 5);
        assert_eq!(c[4].len(), Duration::hours(4));
        assert_eq!(c[0].until(), c[1].since());
        assert!(Window::new(w.until(), w.since()).is_err());
    }
}
