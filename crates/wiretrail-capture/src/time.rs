//! The one time vocabulary of wiretrail, in the manner of smoltcp's
//! `Instant` and `Duration`: a [`Timestamp`] is a point on a clock, a
//! [`Duration`] a length of time. Capture records, catalog spans, flow
//! windows, the correlation's slacks and the report's instants all use
//! them; f64 seconds and chrono's `DateTime` appear only at the edges
//! (log records, report fields, Elasticsearch ranges, text).
//!
//! Defined here, at the lowest layer that needs them, so that correlate,
//! report, pipeline and the binary share one pair (capture depends on no
//! wiretrail crate).
//!
//! Overflow, two rules:
//! - values a user typed (a `--since`, a `5m` slack, a webhook body) go
//!   through the checked methods (`checked_add`, `checked_sub`,
//!   [`Duration::checked_mul`]) and an overflow is an error naming the
//!   input (`wiretrail_pipeline::time`);
//! - values derived from captures use the operators, which saturate at
//!   [`Timestamp::MIN`] / [`Timestamp::MAX`] and [`Duration::MAX`]. Capture
//!   times lie between 1677 and 2262 by construction (they are read into an
//!   `i64` of nanoseconds), so only a window grown by a slack at the very
//!   edge of that range can reach a bound; a saturated bound there means
//!   "no bound on that side", which is what the callers want, where a wrap
//!   would move a window's end to before its start.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// An instant: nanoseconds since the Unix epoch, UTC, as some clock read it
/// (a capturing node's clock for a packet, the reference clock once
/// correlate has aligned them).
///
/// The range is that of an `i64` count of nanoseconds,
/// 1677-09-21T00:12:43.145224192Z ..= 2262-04-11T23:47:16.854775807Z, which
/// is what capture formats can hold.
///
/// There is deliberately no `Timestamp - Timestamp` operator: two instants
/// from different packets, nodes or log lines come in no guaranteed order,
/// and an unsigned [`Duration`] cannot say "before". Say which one you
/// mean: [`Timestamp::duration_since`] (`None` when `earlier` is later),
/// [`Timestamp::saturating_duration_since`] (zero then, for "how long
/// after, if at all") or [`Timestamp::abs_diff`] (how far apart, either
/// way round). `Timestamp ± Duration` saturates (see the module doc); the
/// `checked_*` methods are for user input.
///
/// Serialised as the bare nanosecond count (`#[serde(transparent)]`), so
/// report and catalog JSON are those of an `i64`.
///
/// `Default` is the epoch (what a reader checkpoint holds before its first
/// record).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_nanos(ns: i64) -> Timestamp {
        Timestamp(ns)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// `None` outside [`Timestamp::MIN`] ..= [`Timestamp::MAX`].
    pub fn from_utc(t: DateTime<Utc>) -> Option<Timestamp> {
        t.timestamp_nanos_opt().map(Timestamp)
    }

    /// Epoch milliseconds (what Kibana can send), `None` out of range.
    pub fn from_millis(ms: i64) -> Option<Timestamp> {
        ms.checked_mul(1_000_000).map(Timestamp)
    }

    /// Epoch seconds and nanoseconds within that second (what a capture
    /// record or a file's mtime holds), `None` out of range.
    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Option<Timestamp> {
        secs.checked_mul(NANOS_PER_SEC as i64)
            .and_then(|ns| ns.checked_add(i64::from(nanos)))
            .map(Timestamp)
    }

    /// Epoch seconds as a float (an edge: a log record's or a report's
    /// time), truncated to the nanosecond (towards zero, as `as` does);
    /// `None` for NaN or out of range.
    pub fn from_secs_f64(s: f64) -> Option<Timestamp> {
        let ns = (s * NANOS_PER_SEC as f64).trunc();
        // `i64::MAX as f64` rounds up to 2^63, itself out of range.
        (ns.is_finite() && ns >= i64::MIN as f64 && ns < i64::MAX as f64)
            .then_some(Timestamp(ns as i64))
    }

    pub fn to_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    /// The clock now. (Until 2262.)
    pub fn now() -> Timestamp {
        Timestamp::from_utc(Utc::now()).unwrap_or(Timestamp::MAX)
    }

    /// `None` past [`Timestamp::MAX`] (user input: report the overflow).
    pub fn checked_add(self, d: Duration) -> Option<Timestamp> {
        self.0.checked_add_unsigned(d.0).map(Timestamp)
    }

    /// `None` before [`Timestamp::MIN`] (user input: report the overflow).
    pub fn checked_sub(self, d: Duration) -> Option<Timestamp> {
        self.0.checked_sub_unsigned(d.0).map(Timestamp)
    }

    /// How long after `earlier` this is; `None` when it is before it.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        (self >= earlier).then(|| Duration(self.0.abs_diff(earlier.0)))
    }

    /// How long after `earlier` this is, zero when it is not after it.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        self.duration_since(earlier).unwrap_or(Duration::ZERO)
    }

    /// How far apart two instants are, whichever comes first.
    pub fn abs_diff(self, other: Timestamp) -> Duration {
        Duration(self.0.abs_diff(other.0))
    }

    /// Seconds since the epoch, for outputs that want them.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// Whole seconds since the epoch (rounded towards minus infinity) and
    /// the nanoseconds past them, as pcap records and `tcpdump` want them.
    pub const fn as_secs_nanos(self) -> (i64, u32) {
        (
            self.0.div_euclid(NANOS_PER_SEC as i64),
            self.0.rem_euclid(NANOS_PER_SEC as i64) as u32,
        )
    }
}

/// Saturating: see the module doc.
impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add_unsigned(d.0))
    }
}

/// Saturating: see the module doc.
impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub_unsigned(d.0))
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl SubAssign<Duration> for Timestamp {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with as many fraction digits as needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
    }
}

/// A length of time, never negative, in nanoseconds (up to ~584 years,
/// longer than any window a [`Timestamp`] can hold). Operators saturate
/// (at zero and [`Duration::MAX`]); `checked_*` for user input.
///
/// Serialised as the bare nanosecond count (`#[serde(transparent)]`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Duration(u64);

impl Duration {
    pub const ZERO: Duration = Duration(0);
    /// The resolution of both types: the step between inclusive spans.
    pub const NANOSECOND: Duration = Duration(1);
    pub const MAX: Duration = Duration(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Duration {
        Duration(ns)
    }
    // The constructors from larger units take a `u32`: up to seconds that
    // cannot overflow; minutes and hours past ~584 years saturate (they are
    // for constants; user input goes through the checked parser).
    pub const fn from_micros(us: u32) -> Duration {
        Duration(us as u64 * 1_000)
    }
    pub const fn from_millis(ms: u32) -> Duration {
        Duration(ms as u64 * 1_000_000)
    }
    pub const fn from_secs(s: u32) -> Duration {
        Duration(s as u64 * NANOS_PER_SEC)
    }
    pub const fn from_mins(m: u32) -> Duration {
        Duration((m as u64).saturating_mul(60 * NANOS_PER_SEC))
    }
    pub const fn from_hours(h: u32) -> Duration {
        Duration((h as u64).saturating_mul(3600 * NANOS_PER_SEC))
    }
    /// Seconds as a float (an edge: a report's uncertainty, a fitted
    /// offset), truncated to the nanosecond; `None` for NaN, negative or
    /// too long.
    pub fn try_from_secs_f64(s: f64) -> Option<Duration> {
        let ns = (s * NANOS_PER_SEC as f64).trunc();
        // `u64::MAX as f64` rounds up to 2^64, itself out of range.
        (ns.is_finite() && ns >= 0.0 && ns < u64::MAX as f64).then_some(Duration(ns as u64))
    }
    /// As [`Duration::try_from_secs_f64`], saturating: NaN and negative
    /// give zero, too long gives [`Duration::MAX`]. For values derived from
    /// captures, never user input.
    pub fn from_secs_f64(s: f64) -> Duration {
        // `as` from float to integer truncates, saturates and maps NaN to 0.
        Duration((s * NANOS_PER_SEC as f64) as u64)
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole microseconds (rounded down).
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }
    /// Whole milliseconds (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / NANOS_PER_SEC
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn checked_add(self, other: Duration) -> Option<Duration> {
        self.0.checked_add(other.0).map(Duration)
    }
    pub fn checked_sub(self, other: Duration) -> Option<Duration> {
        self.0.checked_sub(other.0).map(Duration)
    }
    pub fn checked_mul(self, n: u64) -> Option<Duration> {
        self.0.checked_mul(n).map(Duration)
    }
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
    /// `None` past [`Duration::MAX`].
    pub fn from_std(d: std::time::Duration) -> Option<Duration> {
        u64::try_from(d.as_nanos()).ok().map(Duration)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }
}

/// Saturates at zero: `a - b` is how much longer `a` is than `b`, if at all.
impl Sub for Duration {
    type Output = Duration;
    fn sub(self, other: Duration) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, other: Duration) {
        *self = *self + other;
    }
}

impl Mul<u64> for Duration {
    type Output = Duration;
    fn mul(self, n: u64) -> Duration {
        Duration(self.0.saturating_mul(n))
    }
}

/// Panics on division by zero, as integers do.
impl Div<u64> for Duration {
    type Output = Duration;
    fn div(self, n: u64) -> Duration {
        Duration(self.0 / n)
    }
}

impl fmt::Display for Duration {
    /// The form `wiretrail_pipeline::time::parse_duration` reads (`1h30m`,
    /// `250ms`), nanoseconds below a millisecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400 * NANOS_PER_SEC),
            ("h", 3_600 * NANOS_PER_SEC),
            ("m", 60 * NANOS_PER_SEC),
            ("s", NANOS_PER_SEC),
            ("ms", 1_000_000),
            ("ns", 1),
        ] {
            if ns >= size {
                write!(f, "{}{unit}", ns / size)?;
                ns %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn instant_plus_span_saturates_at_the_ends() {
        let t = Timestamp::from_nanos(1_000);
        assert_eq!(t + Duration::from_nanos(5), Timestamp::from_nanos(1_005));
        assert_eq!(t - Duration::from_nanos(5), Timestamp::from_nanos(995));
        assert_eq!(Timestamp::MAX + Duration::from_nanos(1), Timestamp::MAX);
        assert_eq!(Timestamp::MIN - Duration::from_nanos(1), Timestamp::MIN);
        assert_eq!(Timestamp::MIN + Duration::MAX, Timestamp::MAX);
        assert_eq!(Timestamp::MAX - Duration::MAX, Timestamp::MIN);
        // Past i64::MAX nanoseconds of span, still not a wrap.
        assert_eq!(Timestamp::EPOCH - Duration::MAX, Timestamp::MIN);
        let mut m = t;
        m += S;
        m -= Duration::from_nanos(1_000);
        assert_eq!(m, Timestamp::from_nanos(1_000_000_000));
    }

    #[test]
    fn checked_arithmetic_refuses_to_leave_the_range() {
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(Timestamp::MIN.checked_sub(Duration::from_nanos(1)), None);
        assert_eq!(
            Timestamp::MIN.checked_add(Duration::from_nanos(u64::MAX)),
            Some(Timestamp::MAX)
        );
        assert_eq!(Timestamp::EPOCH.checked_sub(Duration::MAX), None);
        assert_eq!(Duration::MAX.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(Duration::ZERO.checked_sub(Duration::from_nanos(1)), None);
        assert_eq!(S.checked_mul(u64::MAX), None);
        assert_eq!(S.checked_mul(3), Some(Duration::from_secs(3)));
    }

    #[test]
    fn differences_say_which_way() {
        let a = Timestamp::from_nanos(-5);
        let b = Timestamp::from_nanos(7);
        assert_eq!(b.duration_since(a), Some(Duration::from_nanos(12)));
        assert_eq!(a.duration_since(b), None);
        assert_eq!(a.duration_since(a), Some(Duration::ZERO));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(a.abs_diff(b), b.abs_diff(a));
        // The whole range, which does not fit an i64 of nanoseconds.
        assert_eq!(
            Timestamp::MAX.duration_since(Timestamp::MIN),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn durations_saturate_and_order() {
        assert_eq!(S - Duration::from_secs(2), Duration::ZERO);
        assert_eq!(Duration::MAX + S, Duration::MAX);
        assert_eq!(Duration::MAX * 2, Duration::MAX);
        assert_eq!(Duration::from_secs(3) / 2, Duration::from_millis(1500));
        assert!(Duration::from_millis(999) < S);
        assert_eq!(Duration::from_secs(u32::MAX).as_secs(), u64::from(u32::MAX));
        assert_eq!(Duration::from_hours(u32::MAX), Duration::MAX);
        assert_eq!(Duration::from_mins(90), Duration::from_secs(5400));
        let mut d = Duration::ZERO;
        d += S;
        assert_eq!(d.as_millis(), 1000);
        assert_eq!(Duration::from_micros(1500).as_micros(), 1500);
    }

    #[test]
    fn instants_order_across_the_epoch() {
        let mut v = [
            Timestamp::from_nanos(3),
            Timestamp::MIN,
            Timestamp::from_nanos(-3),
            Timestamp::MAX,
            Timestamp::EPOCH,
        ];
        v.sort();
        assert_eq!(v.map(Timestamp::as_nanos), [i64::MIN, -3, 0, 3, i64::MAX]);
    }

    #[test]
    fn seconds_at_the_edges() {
        assert_eq!(
            Timestamp::from_secs_f64(1.5),
            Some(Timestamp::from_nanos(1_500_000_000))
        );
        assert_eq!(Timestamp::from_secs_f64(f64::NAN), None);
        assert_eq!(Timestamp::from_secs_f64(1e10), None);
        assert_eq!(Timestamp::from_secs_f64(-1e10), None);
        assert_eq!(Duration::try_from_secs_f64(-0.5), None);
        assert_eq!(Duration::try_from_secs_f64(1e11), None);
        assert_eq!(
            Duration::try_from_secs_f64(0.25),
            Some(Duration::from_millis(250))
        );
        assert_eq!(Duration::from_secs_f64(-0.5), Duration::ZERO);
        assert_eq!(Duration::from_secs_f64(f64::NAN), Duration::ZERO);
        assert_eq!(Duration::from_secs_f64(1e11), Duration::MAX);
        assert_eq!(Duration::from_millis(250).as_secs_f64(), 0.25);
        assert_eq!(Timestamp::from_nanos(-1_500_000_000).as_secs_f64(), -1.5);
        assert_eq!(
            Timestamp::from_nanos(-1_500_000_000).as_secs_nanos(),
            (-2, 500_000_000)
        );
        assert_eq!(
            Timestamp::from_secs_nanos(-2, 500_000_000),
            Some(Timestamp::from_nanos(-1_500_000_000))
        );
        assert_eq!(Timestamp::from_secs_nanos(i64::MAX, 0), None);
    }

    #[test]
    fn serde_is_the_bare_count() {
        let t = Timestamp::from_nanos(-1_764_030_000_000_000_001);
        assert_eq!(serde_json::to_string(&t).unwrap(), "-1764030000000000001");
        assert_eq!(
            serde_json::from_str::<Timestamp>("-1764030000000000001").unwrap(),
            t
        );
        assert_eq!(
            serde_json::to_string(&Duration::MAX).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(
            serde_json::from_str::<Duration>("250").unwrap(),
            Duration::from_nanos(250)
        );
        assert!(serde_json::from_str::<Duration>("-1").is_err());
    }

    #[test]
    fn display() {
        assert_eq!(
            Timestamp::from_nanos(1_683_279_187_250_000_000).to_string(),
            "2023-05-05T09:33:07.250Z"
        );
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(Duration::from_nanos(1_000_001).to_string(), "1ms1ns");
        assert_eq!(Duration::ZERO.to_string(), "0s");
    }
}
