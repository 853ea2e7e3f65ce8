//! Timestamps as the sources print them, and how they become instants.
//!
//! Every envelope yields a [`PartialStamp`]: the fields it printed, its
//! precision, and its zone if it printed one. [`PartialStamp::resolve`] completes the
//! missing year (closest before the reference time) and zone (the configured
//! one) and says whether it had to.

use crate::config::ParseConfig;
use crate::record::TimePrecision;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use nom::bytes::complete::{tag, take_while1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{map_res, opt};
use nom::{IResult, Parser};

/// A stamp as printed: the year and zone may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialStamp {
    pub year: Option<i32>,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Only the digits the source printed (zero beyond them).
    pub nanos: u32,
    pub precision: TimePrecision,
    /// `None`: the source printed no zone.
    pub offset: Option<FixedOffset>,
}

/// A completed stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub ts: DateTime<Utc>,
    pub precision: TimePrecision,
    /// The zone or the year (or both) came from configuration or inference.
    pub assumed: bool,
}

impl Stamp {
    /// An instant that carried its own zone and year (epoch stamps, RFC 3339 with offset).
    pub fn exact(ts: DateTime<Utc>, precision: TimePrecision) -> Self {
        Stamp {
            ts,
            precision,
            assumed: false,
        }
    }
}

/// A year-less stamp may be up to this far after the reference and still
/// take the reference's year: file mtimes and clocks of other machines are
/// not exact, and a stamp a few minutes "in the future" is not a year old.
pub(crate) const YEAR_SLACK: Duration = Duration::minutes(10);

/// How far a Go time of day may land from the envelope's stamp and still be
/// taken as the same moment (see [`TimeOfDay::refine`]). Shippers stamp a
/// line milliseconds to seconds after the program wrote it (Filebeat: when
/// it harvested the line); zones differ by whole quarter hours, so a window
/// narrower than 15 minutes cannot accept a time of day read in the wrong
/// zone.
pub const CLOCK_SLACK: Duration = Duration::minutes(5);

/// Go `log`'s stamp with `Ltime` (or `Lmicroseconds`) but without `Ldate`:
/// `15:04:05` or `15:04:05.000000`. The date and the zone are not printed;
/// Go's clock is the process's local zone, or UTC with `LUTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Only the digits the source printed (zero beyond them).
    pub nanos: u32,
    pub precision: TimePrecision,
}

impl TimeOfDay {
    fn on(&self, date: NaiveDate, offset: Option<FixedOffset>) -> PartialStamp {
        self.with_date(Some(date.year()), date.month(), date.day(), offset)
    }

    /// This time of day with whatever date and offset a stamp printed.
    pub(crate) fn with_date(
        &self,
        year: Option<i32>,
        month: u32,
        day: u32,
        offset: Option<FixedOffset>,
    ) -> PartialStamp {
        PartialStamp {
            year,
            month,
            day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            nanos: self.nanos,
            precision: self.precision,
            offset,
        }
    }

    /// This time of day on `date`, `date - 1` and `date + 1` in the
    /// configured zone (`offset: None`) or a fixed offset.
    fn around<'a>(
        &'a self,
        date: NaiveDate,
        offset: Option<FixedOffset>,
        cfg: &'a ParseConfig,
    ) -> impl Iterator<Item = DateTime<Utc>> + 'a {
        [date.pred_opt(), Some(date), date.succ_opt()]
            .into_iter()
            .flatten()
            .filter_map(move |d| self.on(d, offset).instant(d.year(), cfg))
    }

    /// Put Go's finer time of day onto an envelope's coarser `env` stamp.
    ///
    /// The date comes from the envelope: of the envelope's local day, the
    /// day before and the day after, the one that puts the instant closest
    /// to `env` (a line written at 23:59:59.9 and stamped 00:00:00 by its
    /// shipper belongs to the earlier day). Go's clock reads the process's
    /// zone, which nothing on the line names: the configured zone is tried
    /// first (as for every zone-less stamp), then `env_offset`, the offset
    /// the envelope printed (right when the shipper and the process share a
    /// zone: journald short-iso and RFC 5424 from the same host, a UTC
    /// container behind CRI or Docker). A reading counts only when it lands
    /// within [`CLOCK_SLACK`] of `[env, env + its precision)`; when none
    /// does, the zone is not the process's and `None` keeps the envelope's
    /// stamp. The result keeps `env.assumed`: the instant rests on the
    /// envelope's stamp, Go only adds digits within the quarter hour, which
    /// no zone changes.
    pub fn refine(
        &self,
        env: Stamp,
        env_offset: Option<FixedOffset>,
        cfg: &ParseConfig,
    ) -> Option<Stamp> {
        let lo = env.ts - CLOCK_SLACK;
        let hi = env.ts + Duration::nanoseconds(env.precision.width_ns()) + CLOCK_SLACK;
        let zone = cfg.zone();
        let configured = (None, env.ts.with_timezone(&zone).date_naive());
        let printed = env_offset.map(|o| (Some(o), env.ts.with_timezone(&o).date_naive()));
        std::iter::once(configured)
            .chain(printed)
            .find_map(|(off, date)| {
                self.around(date, off, cfg)
                    .min_by_key(|t| (*t - env.ts).abs())
                    .filter(|t| (lo..hi).contains(t))
            })
            .map(|ts| Stamp {
                ts,
                precision: self.precision,
                assumed: env.assumed,
            })
    }

    /// With no other stamp on the line: the latest date that puts this time
    /// of day, in the configured zone, at or before `cfg.reference` (plus
    /// the same 10 minutes of slack as the year guess). `cfg.year` plays no
    /// part: a year does not name a day.
    pub fn before_reference(&self, cfg: &ParseConfig) -> Option<Stamp> {
        let limit = cfg.reference + YEAR_SLACK;
        let today = cfg.reference.with_timezone(&cfg.zone()).date_naive();
        // Yesterday always qualifies; the day before covers odd DST days.
        let days = (-2..=1).filter_map(|n| today.checked_add_signed(Duration::days(n)));
        let ts = days
            .filter_map(|d| self.on(d, None).instant(d.year(), cfg))
            .filter(|t| *t <= limit)
            .max()?;
        Some(Stamp {
            ts,
            precision: self.precision,
            assumed: true,
        })
    }
}

/// Precision of a fraction printed with `digits` digits.
pub fn precision_of(digits: usize) -> TimePrecision {
    match digits {
        0 => TimePrecision::Second,
        1..=3 => TimePrecision::Millisecond,
        4..=6 => TimePrecision::Microsecond,
        _ => TimePrecision::Nanosecond,
    }
}

impl PartialStamp {
    fn naive(&self, year: i32) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(year, self.month, self.day)?.and_hms_nano_opt(
            self.hour,
            self.minute,
            self.second,
            self.nanos,
        )
    }

    /// The instant for a given year, in the stamp's own zone or `cfg`'s.
    fn instant(&self, year: i32, cfg: &ParseConfig) -> Option<DateTime<Utc>> {
        let naive = self.naive(year)?;
        match self.offset {
            Some(off) => off
                .from_local_datetime(&naive)
                .single()
                .map(|t| t.with_timezone(&Utc)),
            None => {
                let tz = cfg.zone();
                // In a DST fold take the earlier reading; in a gap the clock
                // cannot have shown it, read it with the offset before the gap.
                tz.from_local_datetime(&naive)
                    .earliest()
                    .or_else(|| {
                        let before = naive.checked_sub_signed(Duration::hours(1))?;
                        tz.from_local_datetime(&before)
                            .latest()?
                            .checked_add_signed(Duration::hours(1))
                    })
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }

    /// The same stamp `d` later, on the clock it was printed on (a proxy
    /// that stamps a request's start and prints how long it lasted). Only
    /// for stamps that printed their year.
    pub(crate) fn shifted(&self, d: Duration) -> Option<PartialStamp> {
        let t = self.naive(self.year?)?.checked_add_signed(d)?;
        let dur_precision = if d.subsec_nanos() % 1_000_000 == 0 {
            TimePrecision::Millisecond
        } else {
            TimePrecision::Nanosecond
        };
        Some(PartialStamp {
            year: Some(t.year()),
            month: t.month(),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            nanos: t.nanosecond(),
            // The sum is no finer than the coarser of the two.
            precision: self.precision.min(dur_precision),
            offset: self.offset,
        })
    }

    /// Complete the stamp. `hint` is another stamp of the same line that
    /// printed its own date (Go's `log`): it decides the year, not the
    /// reference.
    pub fn resolve(&self, cfg: &ParseConfig, hint: Option<DateTime<Utc>>) -> Option<Stamp> {
        let zone_assumed = self.offset.is_none();
        if let Some(y) = self.year {
            return Some(Stamp {
                ts: self.instant(y, cfg)?,
                precision: self.precision,
                assumed: zone_assumed,
            });
        }
        if let Some(y) = cfg.year {
            return Some(Stamp {
                ts: self.instant(y, cfg)?,
                precision: self.precision,
                assumed: true,
            });
        }
        let ts = match hint {
            Some(h) => self.nearest_year(h, cfg)?,
            None => self.year_before(cfg.reference, cfg)?,
        };
        Some(Stamp {
            ts,
            precision: self.precision,
            assumed: true,
        })
    }

    fn candidates(
        &self,
        around: i32,
        cfg: &ParseConfig,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let cfg = cfg.clone();
        (around - 1..=around + 1).filter_map(move |y| self.instant(y, &cfg))
    }

    /// The year that puts the stamp closest before `reference` (Feb 29 only
    /// exists in leap years: look back up to 8 years for it).
    fn year_before(&self, reference: DateTime<Utc>, cfg: &ParseConfig) -> Option<DateTime<Utc>> {
        let limit = reference + YEAR_SLACK;
        let y = reference.year();
        let best = self.candidates(y, cfg).filter(|t| *t <= limit).max();
        best.or_else(|| (y - 8..y - 1).rev().find_map(|yy| self.instant(yy, cfg)))
    }

    fn nearest_year(&self, hint: DateTime<Utc>, cfg: &ParseConfig) -> Option<DateTime<Utc>> {
        self.candidates(hint.year(), cfg)
            .min_by_key(|t| (*t - hint).num_seconds().abs())
    }
}

// ---- nom pieces shared by the envelopes -------------------------------------

pub(crate) type In<'a> = &'a [u8];

fn num(n: usize) -> impl FnMut(In<'_>) -> IResult<In<'_>, u32> {
    move |i| {
        map_res(
            take_while_m_n(n, n, |c: u8| c.is_ascii_digit()),
            |d: In<'_>| {
                std::str::from_utf8(d)
                    .map_err(|_| ())
                    .and_then(|s| s.parse::<u32>().map_err(|_| ()))
            },
        )
        .parse(i)
    }
}

/// `.123456789`: nanoseconds holding only the printed digits, and how many
/// there were. Digits beyond nine are read and dropped.
pub(crate) fn fraction(i: In<'_>) -> IResult<In<'_>, (u32, usize)> {
    let (i, _) = alt_char(i, b".,")?;
    let (i, d) = take_while1(|c: u8| c.is_ascii_digit()).parse(i)?;
    let used = &d[..d.len().min(9)];
    let mut n = 0u32;
    for &c in used {
        n = n * 10 + u32::from(c - b'0');
    }
    n *= 10u32.pow(9 - used.len() as u32);
    Ok((i, (n, used.len())))
}

fn alt_char<'a>(i: In<'a>, set: &[u8]) -> IResult<In<'a>, u8> {
    match i.first() {
        Some(c) if set.contains(c) => Ok((&i[1..], *c)),
        _ => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Char,
        ))),
    }
}

/// `15:04:05` with an optional fraction.
pub(crate) fn clock(i: In<'_>) -> IResult<In<'_>, TimeOfDay> {
    let (i, (h, _, m, _, s)) = (num(2), char(':'), num(2), char(':'), num(2)).parse(i)?;
    let (i, f) = opt(fraction).parse(i)?;
    let (n, d) = f.unwrap_or((0, 0));
    if h > 23 || m > 59 || s > 60 {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((
        i,
        TimeOfDay {
            hour: h,
            minute: m,
            second: s.min(59),
            nanos: n,
            precision: precision_of(d),
        },
    ))
}

/// `Z`, `+08:00`, `+0800`, `-07`.
pub(crate) fn offset(i: In<'_>) -> IResult<In<'_>, FixedOffset> {
    if let Some(rest) = i.strip_prefix(b"Z").or_else(|| i.strip_prefix(b"z")) {
        return Ok((rest, FixedOffset::east_opt(0).expect("zero offset")));
    }
    let (i, sign) = alt_char(i, b"+-")?;
    let (i, h) = num(2)(i)?;
    let (i, _) = opt(char(':')).parse(i)?;
    let (i, m) = opt(num(2)).parse(i)?;
    let secs = (h * 3600 + m.unwrap_or(0) * 60) as i32;
    let secs = if sign == b'-' { -secs } else { secs };
    match FixedOffset::east_opt(secs) {
        Some(o) if h < 24 => Ok((i, o)),
        _ => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        ))),
    }
}

fn ymd(sep: char) -> impl FnMut(In<'_>) -> IResult<In<'_>, (i32, u32, u32)> {
    move |i| {
        let (i, (y, _, m, _, d)) = (num(4), char(sep), num(2), char(sep), num(2)).parse(i)?;
        Ok((i, (y as i32, m, d)))
    }
}

/// RFC 3339 / ISO 8601: `2023-05-05T09:33:07.123456789Z`, offset optional
/// (`T` or a space between date and time).
pub(crate) fn iso(i: In<'_>) -> IResult<In<'_>, PartialStamp> {
    let (i, (y, mo, d)) = ymd('-')(i)?;
    let (i, _) = alt_char(i, b"T ")?;
    let (i, t) = clock(i)?;
    let (i, off) = opt(offset).parse(i)?;
    Ok((i, t.with_date(Some(y), mo, d, off)))
}

/// Go `log`'s `2006/01/02 15:04:05[.000000]`; Go prints no zone (`LUTC`
/// only changes which clock is read, so the zone must be configured).
pub(crate) fn go_date(i: In<'_>) -> IResult<In<'_>, PartialStamp> {
    let (i, (y, mo, d)) = ymd('/')(i)?;
    let (i, _) = char(' ').parse(i)?;
    let (i, t) = clock(i)?;
    Ok((i, t.with_date(Some(y), mo, d, None)))
}

/// Go `log`'s `15:04:05[.000000]` without `Ldate`, and the space Go always
/// writes after it.
pub(crate) fn go_clock(i: In<'_>) -> IResult<In<'_>, TimeOfDay> {
    let (i, t) = clock(i)?;
    let (i, _) = char(' ').parse(i)?;
    Ok((i, t))
}

pub(crate) fn month_abbr(i: In<'_>) -> IResult<In<'_>, u32> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if i.len() >= 3 {
        for (n, m) in MONTHS.iter().enumerate() {
            if i[..3].eq_ignore_ascii_case(m) {
                return Ok((&i[3..], n as u32 + 1));
            }
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// BSD syslog / journald short: `May 05 17:33:07[.123456]`, `May  5 ...`; no
/// year, no zone.
pub(crate) fn bsd(i: In<'_>) -> IResult<In<'_>, PartialStamp> {
    let (i, mo) = month_abbr(i)?;
    let (i, _) = take_while_m_n(1, 2, |c| c == b' ').parse(i)?;
    let (i, d) = take_while_m_n(1, 2, |c: u8| c.is_ascii_digit()).parse(i)?;
    let day: u32 = d.iter().fold(0, |a, c| a * 10 + u32::from(c - b'0'));
    let (i, _) = tag(&b" "[..]).parse(i)?;
    let (i, t) = clock(i)?;
    if !(1..=31).contains(&day) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((i, t.with_date(None, mo, day, None)))
}

/// Parse a whole RFC 3339 string (Filebeat `@timestamp`, Docker `time`).
pub fn parse_rfc3339(s: &str) -> Option<PartialStamp> {
    match iso(s.as_bytes()) {
        Ok(([], p)) => Some(p),
        _ => None,
    }
}

/// Microseconds since the epoch (journald `__REALTIME_TIMESTAMP`).
pub fn from_epoch_micros(us: i64) -> Option<Stamp> {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|ts| Stamp::exact(ts, TimePrecision::Microsecond))
}
