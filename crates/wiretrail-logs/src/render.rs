//! The two forms `wiretrail logs` prints a record in, written straight into
//! a byte buffer: no allocation per record, so the reader's workers can
//! render their chunk's records and the caller only copies bytes.
//!
//! - [`Format::Json`]: exactly the bytes `serde_json` writes for
//!   [`ProxyError`] (the stable record, see `record.rs`), then `\n`
//!   (`tests/render.rs` compares them on generated records).
//! - [`Format::Text`]: one aligned line for a person,
//!   `2023-05-05T09:33:07Z~ reset       read     A -> B  message  [host proc[pid]] file:line`
//!   (`~`: the zone or year was assumed; `(nginx) ` before `file:line` when
//!   another proxy than Go's wrote the line); every string from the input is
//!   neutralised ([`crate::text::push_visible`]): a log line cannot drive
//!   the terminal.
//!
//! Both end with the record's line number (`..."line":N}}` and `file:N`),
//! so a record can be written in two steps: [`head`] up to the number,
//! [`tail`] from it. The reader's workers write heads; the iterator, which
//! alone knows how many lines came before the chunk, writes the tails.

use crate::record::{ProxyError, Source, TimePrecision};
use crate::text::push_visible;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// How a record is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON record per line (the documented schema).
    Json,
    /// One aligned, neutralised line per record.
    Text,
}

/// Append `e` as one line of `format` (with its `\n`).
pub fn write_record(out: &mut Vec<u8>, e: &ProxyError, format: Format) {
    if let Some(line) = head(out, e, format) {
        tail(out, line, format);
    }
}

/// Append everything of `e` before its line number and return that number;
/// `None` when the record has none (an Elasticsearch hit): then the whole
/// line was written.
pub fn head(out: &mut Vec<u8>, e: &ProxyError, format: Format) -> Option<u64> {
    match format {
        Format::Json => json_head(out, e),
        Format::Text => text_head(out, e),
    }
}

/// Append the line number and the end of the line [`head`] began.
pub fn tail(out: &mut Vec<u8>, line: u64, format: Format) {
    push_u64(out, line);
    out.extend_from_slice(match format {
        Format::Json => b"}}\n",
        Format::Text => b"\n",
    });
}

// ---- JSON -------------------------------------------------------------------

fn json_head(out: &mut Vec<u8>, e: &ProxyError) -> Option<u64> {
    out.extend_from_slice(b"{\"timestamp\":\"");
    push_stamp(out, &e.timestamp, Digits::Fixed(e.time_precision));
    out.extend_from_slice(b"\",\"time_precision\":\"");
    out.extend_from_slice(precision_word(e.time_precision).as_bytes());
    out.extend_from_slice(b"\",\"time_zone_assumed\":");
    out.extend_from_slice(if e.time_zone_assumed {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(b",\"host\":");
    json_opt(out, e.host.as_deref());
    out.extend_from_slice(b",\"process\":");
    json_opt(out, e.process.as_deref());
    out.extend_from_slice(b",\"pid\":");
    match e.pid {
        Some(p) => push_u64(out, u64::from(p)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"op\":");
    json_opt(out, e.op.as_deref());
    out.extend_from_slice(b",\"local\":");
    json_opt(out, e.local.as_deref());
    out.extend_from_slice(b",\"remote\":");
    json_opt(out, e.remote.as_deref());
    out.extend_from_slice(b",\"syscall\":");
    json_opt(out, e.syscall.as_deref());
    out.extend_from_slice(b",\"class\":\"");
    out.extend_from_slice(e.class.as_str().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    json_str(out, &e.message);
    if !e.source_format.is_go() {
        out.extend_from_slice(b",\"source_format\":\"");
        out.extend_from_slice(e.source_format.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"source\":{");
    match &e.source {
        Source::File { file, line } => {
            out.extend_from_slice(b"\"file\":");
            json_str(out, file);
            out.extend_from_slice(b",\"line\":");
            Some(*line)
        }
        Source::Stdin { line } => {
            out.extend_from_slice(b"\"line\":");
            Some(*line)
        }
        Source::Elasticsearch {
            index,
            id,
            path,
            offset,
        } => {
            out.extend_from_slice(b"\"index\":");
            json_str(out, index);
            out.extend_from_slice(b",\"id\":");
            json_str(out, id);
            if let Some(p) = path {
                out.extend_from_slice(b",\"path\":");
                json_str(out, p);
            }
            if let Some(o) = offset {
                out.extend_from_slice(b",\"offset\":");
                push_u64(out, *o);
            }
            out.extend_from_slice(b"}}\n");
            None
        }
    }
}

fn precision_word(p: TimePrecision) -> &'static str {
    match p {
        TimePrecision::Second => "second",
        TimePrecision::Millisecond => "millisecond",
        TimePrecision::Microsecond => "microsecond",
        TimePrecision::Nanosecond => "nanosecond",
    }
}

fn json_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string as `serde_json` escapes it: `"` and `\` escaped, C0
/// controls as `\b \t \n \f \r` or `\u00XX`, everything else as is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut plain = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[plain..i]);
        plain = i + 1;
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(&b[plain..]);
    out.push(b'"');
}

// ---- text -------------------------------------------------------------------

fn text_head(out: &mut Vec<u8>, e: &ProxyError) -> Option<u64> {
    push_stamp(out, &e.timestamp, Digits::Auto);
    if e.time_zone_assumed {
        out.push(b'~');
    }
    out.push(b' ');
    padded(out, e.class.as_str(), 11);
    out.push(b' ');
    padded(out, e.op.as_deref().unwrap_or("-"), 8);
    out.push(b' ');
    push_visible(out, e.local.as_deref().unwrap_or("-"));
    out.extend_from_slice(b" -> ");
    push_visible(out, e.remote.as_deref().unwrap_or("-"));
    out.extend_from_slice(b"  ");
    push_visible(out, &e.message);
    out.extend_from_slice(b"  [");
    push_visible(out, e.host.as_deref().unwrap_or("-"));
    if let Some(p) = &e.process {
        out.push(b' ');
        push_visible(out, p);
        if let Some(pid) = e.pid {
            out.push(b'[');
            push_u64(out, u64::from(pid));
            out.push(b']');
        }
    }
    out.extend_from_slice(b"] ");
    if !e.source_format.is_go() {
        out.push(b'(');
        out.extend_from_slice(e.source_format.as_str().as_bytes());
        out.extend_from_slice(b") ");
    }
    match &e.source {
        Source::File { file, line } => {
            push_visible(out, file);
            out.push(b':');
            Some(*line)
        }
        Source::Stdin { line } => {
            out.extend_from_slice(b"<stdin>:");
            Some(*line)
        }
        Source::Elasticsearch { index, id, .. } => {
            push_visible(out, index);
            out.push(b'/');
            push_visible(out, id);
            out.push(b'\n');
            None
        }
    }
}

/// `s` neutralised, then spaces up to `width` characters (as `{:<width}`).
fn padded(out: &mut Vec<u8>, s: &str, width: usize) {
    let start = out.len();
    push_visible(out, s);
    let chars = std::str::from_utf8(&out[start..]).map_or(0, |w| w.chars().count());
    out.resize(out.len() + width.saturating_sub(chars), b' ');
}

// ---- numbers and stamps -----------------------------------------------------

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// How many fractional digits a stamp gets.
#[derive(Clone, Copy)]
enum Digits {
    /// The record's precision (the JSON record).
    Fixed(TimePrecision),
    /// As few groups of three as show the value (chrono's `AutoSi`).
    Auto,
}

/// RFC 3339 in UTC with `Z`, as chrono's `to_rfc3339_opts(.., true)`
/// writes it; years outside 0..=9999 (which the reader refuses) and leap
/// seconds are left to chrono.
fn push_stamp(out: &mut Vec<u8>, t: &DateTime<Utc>, digits: Digits) {
    use chrono::SecondsFormat;
    let nanos = t.nanosecond();
    let year = t.year();
    let fmt = match digits {
        Digits::Fixed(TimePrecision::Second) => SecondsFormat::Secs,
        Digits::Fixed(TimePrecision::Millisecond) => SecondsFormat::Millis,
        Digits::Fixed(TimePrecision::Microsecond) => SecondsFormat::Micros,
        Digits::Fixed(TimePrecision::Nanosecond) => SecondsFormat::Nanos,
        Digits::Auto => SecondsFormat::AutoSi,
    };
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        out.extend_from_slice(t.to_rfc3339_opts(fmt, true).as_bytes());
        return;
    }
    let year = year as u32;
    push_2(out, year / 100);
    push_2(out, year % 100);
    out.push(b'-');
    push_2(out, t.month());
    out.push(b'-');
    push_2(out, t.day());
    out.push(b'T');
    push_2(out, t.hour());
    out.push(b':');
    push_2(out, t.minute());
    out.push(b':');
    push_2(out, t.second());
    let shown = match fmt {
        SecondsFormat::Secs => 0,
        SecondsFormat::Millis => 3,
        SecondsFormat::Micros => 6,
        SecondsFormat::Nanos => 9,
        _ if nanos == 0 => 0,
        _ if nanos.is_multiple_of(1_000_000) => 3,
        _ if nanos.is_multiple_of(1_000) => 6,
        _ => 9,
    };
    if shown > 0 {
        out.push(b'.');
        let mut d = [0u8; 9];
        let mut n = nanos;
        for x in d.iter_mut().rev() {
            *x = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&d[..shown]);
    }
    out.push(b'Z');
}
