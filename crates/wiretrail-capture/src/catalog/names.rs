//! What a rotated capture's file name says about it.
//!
//! Capture boxes rotate with `tcpdump -G` (strftime names), `tcpdump -C/-W`
//! (numbered suffixes: `file.pcap`, `file.pcap1`, ... or `file.pcap00`, ...)
//! or dumpcap's ring buffer (`name_00001_20230505173307.pcapng`). A name is
//! only a *hint*: tcpdump formats `-G` names in the box's local time and
//! rotates only when a packet arrives, so the name drifts from the content.
//! The catalog orders and labels files with it; spans come from packets.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The rotation scheme a file name suggests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NameHint {
    /// dumpcap ring buffer: `prefix_NNNNN_YYYYmmddHHMMSS.ext`; the time is
    /// when dumpcap opened the file, in the capture box's local time.
    DumpcapRing {
        prefix: String,
        seq: u64,
        opened: NaiveDateTime,
    },
    /// tcpdump `-C`/`-W`: `base`, `base1`, `base2`, ... (or zero-padded).
    /// `seq` 0 is the file without a numeric suffix.
    Numbered { base: String, seq: u64 },
    /// tcpdump `-G` strftime name (local wall time, zone unknown), possibly
    /// combined with a `-C` number.
    Strftime { at: NaiveDateTime, seq: Option<u64> },
    /// tcpdump `-G` with `%s`: epoch seconds, which are zone-free.
    EpochSeconds { secs: i64, seq: Option<u64> },
    /// Nothing recognisable.
    Unknown,
}

impl NameHint {
    /// Sequence number within a numbered rotation, if any.
    pub fn seq(&self) -> Option<u64> {
        match self {
            NameHint::DumpcapRing { seq, .. } | NameHint::Numbered { seq, .. } => Some(*seq),
            NameHint::Strftime { seq, .. } | NameHint::EpochSeconds { seq, .. } => *seq,
            NameHint::Unknown => None,
        }
    }

    /// The group a numbered sequence belongs to (files whose numbers can be
    /// compared), so that `a.pcap3` is never taken as following `b.pcap2`.
    pub fn group(&self) -> Option<&str> {
        match self {
            NameHint::DumpcapRing { prefix, .. } => Some(prefix),
            NameHint::Numbered { base, .. } => Some(base),
            _ => None,
        }
    }

    /// A short human label (`ring #3 @ 2023-05-05 17:33:07 (local)`).
    pub fn label(&self) -> String {
        match self {
            NameHint::DumpcapRing { seq, opened, .. } => {
                format!("dumpcap ring #{seq} opened {opened} (local)")
            }
            NameHint::Numbered { seq, .. } => format!("tcpdump -C #{seq}"),
            NameHint::Strftime { at, seq: None } => format!("tcpdump -G {at} (local)"),
            NameHint::Strftime { at, seq: Some(s) } => format!("tcpdump -G {at} (local) -C #{s}"),
            NameHint::EpochSeconds { secs, seq } => {
                let t = DateTime::from_timestamp(*secs, 0)
                    .map(|t| t.naive_utc().to_string())
                    .unwrap_or_default();
                match seq {
                    None => format!("tcpdump -G %s {t} UTC"),
                    Some(s) => format!("tcpdump -G %s {t} UTC -C #{s}"),
                }
            }
            NameHint::Unknown => "no rotation hint".to_string(),
        }
    }
}

/// Capture file extensions (after removing `.gz`/`.zst`).
const CAPTURE_EXTS: [&str; 5] = ["pcapng", "pcap", "cap", "ntar", "dmp"];

/// Strip a compression suffix: `x.pcap.gz` → `x.pcap`.
pub fn strip_compression(name: &str) -> &str {
    for ext in [".gz", ".zst", ".zstd"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s;
        }
    }
    name
}

/// Reads the rotation hint from a path's file name.
pub fn parse_hint(path: &Path) -> NameHint {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return NameHint::Unknown;
    };
    let name = strip_compression(name);
    if let Some(h) = dumpcap_ring(name) {
        return h;
    }
    let (stem, seq) = numbered_suffix(name);
    if let Some(h) = strftime_in(stem, seq) {
        return h;
    }
    match seq {
        Some(seq) => NameHint::Numbered {
            base: stem.to_string(),
            seq,
        },
        None if has_capture_ext(name) => NameHint::Numbered {
            base: name.to_string(),
            seq: 0,
        },
        None => NameHint::Unknown,
    }
}

/// Whether a file name says "capture" (`x.pcap`, `x.pcapng.zst`,
/// `x.pcap7`): such a file is catalogued even when its first bytes are not
/// a capture magic, so that a damaged one is reported instead of ignored.
pub fn looks_like_capture_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let (stem, _) = numbered_suffix(strip_compression(name));
    has_capture_ext(stem)
}

fn has_capture_ext(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| CAPTURE_EXTS.contains(&ext))
}

/// `prefix_NNNNN_YYYYmmddHHMMSS.ext` (dumpcap `-b` ring buffer or multiple files).
fn dumpcap_ring(name: &str) -> Option<NameHint> {
    let (stem, ext) = name.rsplit_once('.')?;
    if !CAPTURE_EXTS.contains(&ext) {
        return None;
    }
    let (rest, stamp) = stem.rsplit_once('_')?;
    let (prefix, seq) = rest.rsplit_once('_')?;
    if seq.len() < 5 || !all_digits(seq) || stamp.len() != 14 || !all_digits(stamp) {
        return None;
    }
    let opened = compact_datetime(stamp)?;
    Some(NameHint::DumpcapRing {
        prefix: prefix.to_string(),
        seq: seq.parse().ok()?,
        opened,
    })
}

/// `file.pcap7` → (`file.pcap`, Some(7)); tcpdump appends the `-C` number
/// right after the whole `-w` name.
pub fn numbered_suffix(name: &str) -> (&str, Option<u64>) {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return (name, None);
    }
    let stem = &name[..name.len() - digits];
    if has_capture_ext(stem) {
        (stem, name[stem.len()..].parse().ok())
    } else {
        (name, None)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYYmmddHHMMSS`.
fn compact_datetime(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()
}

/// Finds a strftime-looking time in a name: `20230505173307`,
/// `20230505-173307`, `20230505_1733`, `2023-05-05_17:33:07`,
/// `2023-05-05T17-33-07`, or 10-digit epoch seconds (`%s`).
fn strftime_in(name: &str, seq: Option<u64>) -> Option<NameHint> {
    // Digit runs with their byte positions.
    let bytes = name.as_bytes();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    let text = |r: (usize, usize)| &name[r.0..r.1];
    let len = |r: (usize, usize)| r.1 - r.0;
    // Adjacent runs separated by exactly one non-digit byte.
    let joined = |a: (usize, usize), b: (usize, usize)| b.0 == a.1 + 1;
    for (k, &r) in runs.iter().enumerate() {
        let next = runs.get(k + 1).copied().filter(|&n| joined(r, n));
        match len(r) {
            14 => {
                if let Some(at) = compact_datetime(text(r)) {
                    return Some(NameHint::Strftime { at, seq });
                }
            }
            12 => {
                if let Ok(at) =
                    NaiveDateTime::parse_from_str(&format!("{}00", text(r)), "%Y%m%d%H%M%S")
                {
                    return Some(NameHint::Strftime { at, seq });
                }
            }
            8 => {
                let date = NaiveDate::parse_from_str(text(r), "%Y%m%d").ok();
                if let (Some(date), Some(n)) = (date, next) {
                    let t = text(n);
                    let hms = match t.len() {
                        6 => Some(t.to_string()),
                        4 => Some(format!("{t}00")),
                        _ => None,
                    };
                    if let Some(at) = hms
                        .and_then(|h| chrono::NaiveTime::parse_from_str(&h, "%H%M%S").ok())
                        .map(|t| date.and_time(t))
                    {
                        return Some(NameHint::Strftime { at, seq });
                    }
                }
            }
            4 => {
                // Y m d H M [S], each separated by one byte.
                let mut parts = vec![text(r)];
                let mut prev = r;
                for &n in &runs[k + 1..] {
                    if !joined(prev, n) || len(n) != 2 || parts.len() == 6 {
                        break;
                    }
                    parts.push(text(n));
                    prev = n;
                }
                if parts.len() >= 5 {
                    let s = format!(
                        "{}{}{}{}{}{}",
                        parts[0],
                        parts[1],
                        parts[2],
                        parts[3],
                        parts[4],
                        parts.get(5).unwrap_or(&"00")
                    );
                    if let Some(at) = compact_datetime(&s) {
                        return Some(NameHint::Strftime { at, seq });
                    }
                }
            }
            10 => {
                let secs: i64 = text(r).parse().ok()?;
                // 2001-09-09 .. 2033-05-18: plausible capture times only.
                if (1_000_000_000..2_000_000_000).contains(&secs) {
                    return Some(NameHint::EpochSeconds { secs, seq });
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(s: &str) -> NameHint {
        parse_hint(Path::new(s))
    }

    fn dt(s: &str) -> NaiveDateTime {
        compact_datetime(s).unwrap()
    }

    #[test]
    fn dumpcap_ring_names() {
        assert_eq!(
            hint("/cap/eth0_00042_20230505173307.pcapng.zst"),
            NameHint::DumpcapRing {
                prefix: "eth0".into(),
                seq: 42,
                opened: dt("20230505173307")
            }
        );
        assert_eq!(
            hint("be_01_00001_20230505173307.pcap"),
            NameHint::DumpcapRing {
                prefix: "be_01".into(),
                seq: 1,
                opened: dt("20230505173307")
            }
        );
    }

    #[test]
    fn tcpdump_numbered() {
        assert_eq!(
            hint("trace.pcap"),
            NameHint::Numbered {
                base: "trace.pcap".into(),
                seq: 0
            }
        );
        assert_eq!(
            hint("trace.pcap12"),
            NameHint::Numbered {
                base: "trace.pcap".into(),
                seq: 12
            }
        );
        assert_eq!(
            hint("trace.pcap07.gz"),
            NameHint::Numbered {
                base: "trace.pcap".into(),
                seq: 7
            }
        );
        assert_eq!(hint("notes.txt"), NameHint::Unknown);
    }

    #[test]
    fn tcpdump_strftime() {
        assert_eq!(
            hint("be1-20230505173307.pcap"),
            NameHint::Strftime {
                at: dt("20230505173307"),
                seq: None
            }
        );
        assert_eq!(
            hint("be1_20230505-1733.pcap.gz"),
            NameHint::Strftime {
                at: dt("20230505173300"),
                seq: None
            }
        );
        assert_eq!(
            hint("cap-2023-05-05_17:33:07.pcap3"),
            NameHint::Strftime {
                at: dt("20230505173307"),
                seq: Some(3)
            }
        );
        assert_eq!(
            hint("cap.1683307987.pcap"),
            NameHint::EpochSeconds {
                secs: 1683307987,
                seq: None
            }
        );
        // Not a date: falls back to the numbered scheme.
        assert_eq!(
            hint("cap-99999999-999999.pcap"),
            NameHint::Numbered {
                base: "cap-99999999-999999.pcap".into(),
                seq: 0
            }
        );
    }
}
