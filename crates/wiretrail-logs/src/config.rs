//! How zone-less and year-less stamps are completed.

use crate::record::SourceFormat;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::OnceLock;

/// What the parsers need to turn a partial stamp into an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseConfig {
    /// Zone for stamps that carry none (Go `log`, journald short, RFC 3164).
    /// `None`: the machine's zone (`TZ`, then `/etc/localtime`), with a
    /// warning naming it, and every such record marked `time_zone_assumed`.
    pub tz: Option<Tz>,
    /// Year for year-less stamps; `None` infers it from `reference`.
    pub year: Option<i32>,
    /// A year-less stamp takes the year that puts it closest before this
    /// instant (a file's modification time, or now for stdin).
    pub reference: DateTime<Utc>,
    /// Which proxies' lines are read: every format (auto-detected per line)
    /// unless the pipeline names some (`logs.format`).
    pub formats: Formats,
}

/// A set of [`SourceFormat`]s: which proxies' lines the parsers look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Formats(u8);

impl Formats {
    /// Every format, each line auto-detected.
    pub const ALL: Formats = Formats((1 << SourceFormat::ALL.len()) - 1);
    pub const NONE: Formats = Formats(0);

    fn bit(f: SourceFormat) -> u8 {
        1 << (f as u8)
    }

    /// Only `f`.
    pub fn only(f: SourceFormat) -> Formats {
        Formats(Self::bit(f))
    }

    /// This set and `f`.
    pub fn with(self, f: SourceFormat) -> Formats {
        Formats(self.0 | Self::bit(f))
    }

    pub fn contains(self, f: SourceFormat) -> bool {
        self.0 & Self::bit(f) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The formats in the set, in [`SourceFormat::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = SourceFormat> {
        SourceFormat::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

impl Default for Formats {
    fn default() -> Self {
        Formats::ALL
    }
}

impl FromIterator<SourceFormat> for Formats {
    fn from_iter<I: IntoIterator<Item = SourceFormat>>(it: I) -> Self {
        it.into_iter().fold(Formats::NONE, Formats::with)
    }
}

impl std::fmt::Display for Formats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Formats::ALL {
            return f.write_str("auto");
        }
        let names: Vec<&str> = self.iter().map(SourceFormat::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl ParseConfig {
    /// `reference` is now, `year` is inferred.
    pub fn new(tz: Option<Tz>) -> Self {
        ParseConfig {
            tz,
            year: None,
            reference: Utc::now(),
            formats: Formats::ALL,
        }
    }

    /// The zone applied to zone-less stamps: the configured one, else the
    /// machine's (warned about once per process).
    pub fn zone(&self) -> Tz {
        match self.tz {
            Some(tz) => tz,
            None => machine_zone(),
        }
    }
}

/// The machine's zone from `TZ` or `/etc/localtime`, resolved once. When
/// neither names an IANA zone we fall back to UTC, and say so: a silent UTC
/// would shift every stamp of a non-UTC machine without a trace.
pub fn machine_zone() -> Tz {
    static ZONE: OnceLock<Tz> = OnceLock::new();
    *ZONE.get_or_init(|| {
        let (tz, how) = detect_machine_zone();
        match tz {
            Some(tz) => {
                tracing::warn!(
                    "no --tz given: zone-less log stamps are read as {} (the machine's zone, from {how}); \
                     records are marked time_zone_assumed",
                    tz.name()
                );
                tz
            }
            None => {
                tracing::warn!(
                    "no --tz given and the machine's zone is unknown ({how}): zone-less log stamps are read as UTC; \
                     records are marked time_zone_assumed"
                );
                Tz::UTC
            }
        }
    })
}

fn detect_machine_zone() -> (Option<Tz>, &'static str) {
    if let Ok(v) = std::env::var("TZ") {
        let name = v.trim_start_matches(':');
        let name = name.rsplit_once("zoneinfo/").map_or(name, |(_, n)| n);
        if let Ok(tz) = name.parse::<Tz>() {
            return (Some(tz), "TZ");
        }
        if name.is_empty() {
            return (Some(Tz::UTC), "TZ");
        }
    }
    if let Ok(target) = std::fs::read_link("/etc/localtime") {
        let s = target.to_string_lossy();
        if let Some((_, name)) = s.rsplit_once("zoneinfo/") {
            if let Ok(tz) = name.parse::<Tz>() {
                return (Some(tz), "/etc/localtime");
            }
        }
    }
    if let Ok(name) = std::fs::read_to_string("/etc/timezone") {
        if let Ok(tz) = name.trim().parse::<Tz>() {
            return (Some(tz), "/etc/timezone");
        }
    }
    if std::path::Path::new("/etc/localtime").exists() {
        (None, "/etc/localtime is not a link to a named zone")
    } else {
        (None, "TZ unset and no /etc/localtime")
    }
}
