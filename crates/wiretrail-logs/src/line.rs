//! From an opened envelope to a [`ProxyError`]: find the phrase, read Go's
//! own `log` prefix, pick the best stamp, parse the Go error.

use crate::config::Formats;
use crate::config::ParseConfig;
use crate::envelope::{self, Envelope, EnvelopeKind};
use crate::formats::{self, Found, Outcome};
use crate::goerr::parse_borrowed;
use crate::record::{ProxyError, Source, SourceFormat};
use crate::time::{go_clock, go_date, PartialStamp, Stamp, TimeOfDay};
use memchr::memmem::Finder;
use serde_json::Value;
use std::sync::LazyLock;

/// What `net/http/httputil.ReverseProxy` logs before the Go error.
pub const PHRASE: &str = "http: proxy error: ";

/// Built once: building a `memmem` finder costs more than searching a line.
static PHRASE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(PHRASE.as_bytes()));
static LOOSE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"proxy error"));

/// The outcome for one line or document.
#[derive(Debug, Clone, PartialEq)]
// Records are the common case on the lines that reach the parser; boxing
// them would cost an allocation each for no gain.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    Error(ProxyError),
    /// Any other line: counted, not an error.
    NotProxyError,
    /// A proxy error line that could not be read; the reason.
    Malformed(String),
}

/// One line of text in any envelope (auto-detected).
pub fn parse_line(line: &[u8], origin: Source, cfg: &ParseConfig) -> Parsed {
    // Cheap reject first: most lines of a proxy's log are not errors. JSON
    // may hide the phrase in a byte-array MESSAGE, so JSON is always opened.
    // (The reader's scan found its lines by these needles already.)
    if line.first() != Some(&b'{') && !might_hold(line, cfg.formats) {
        return Parsed::NotProxyError;
    }
    parse_line_noted(line, origin, cfg).0
}

/// [`parse_line`] of a line the reader's scan found by a needle, and what
/// the reader should say about the record (two stamps that disagree: see
/// [`when`]).
pub(crate) fn parse_line_noted(
    line: &[u8],
    origin: Source,
    cfg: &ParseConfig,
) -> (Parsed, Option<String>) {
    let json = line.first() == Some(&b'{');
    // A proxy's own JSON record (Caddy, Traefik, Envoy) is no envelope.
    if json && formats::json_marker(line, cfg.formats) {
        if let Ok(v) = serde_json::from_slice::<Value>(line) {
            if let Some(o) = formats::json(&v, cfg.formats) {
                let env = Envelope::bare(EnvelopeKind::Bare, "".into());
                return outcome(&env, o, origin, cfg);
            }
        }
    }
    match envelope::open(line) {
        Ok(env) => finish(env, origin, cfg),
        Err(why) => {
            if LOOSE_FINDER.find(line).is_some() || formats::candidate(line, cfg.formats) {
                (Parsed::Malformed(why), None)
            } else {
                (Parsed::NotProxyError, None)
            }
        }
    }
}

/// Whether a line may hold a record of one of `formats`: Go's phrase, or
/// another format's needle.
pub(crate) fn might_hold(line: &[u8], formats: Formats) -> bool {
    (formats.contains(SourceFormat::Go) && PHRASE_FINDER.find(line).is_some())
        || formats::candidate(line, formats)
}

/// One Elasticsearch/Filebeat document (`_source` of a hit); origin is
/// `Source::Elasticsearch{index,id,..}`. An Elasticsearch origin without
/// `path`/`offset` takes them from the document's `log.file.path` and
/// `log.offset` ([`envelope::shipped_from`]); other origins are kept as given.
pub fn parse_document(doc: &Value, origin: Source, cfg: &ParseConfig) -> Parsed {
    let origin = match origin {
        Source::Elasticsearch {
            index,
            id,
            path,
            offset,
        } => {
            let (p, o) = envelope::shipped_from(doc);
            Source::Elasticsearch {
                index,
                id,
                path: path.or(p),
                offset: offset.or(o),
            }
        }
        other => other,
    };
    // A proxy's JSON record shipped with its keys decoded (no `message`).
    if let Some(o) = formats::json(doc, cfg.formats) {
        let env = Envelope::bare(EnvelopeKind::Document, "".into());
        return outcome(&env, o, origin, cfg).0;
    }
    match envelope::document(doc) {
        Ok(env) => finish(env, origin, cfg).0,
        Err(why) => Parsed::Malformed(why),
    }
}

/// Go `log`'s own stamp, from the text before the phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoStamp {
    /// `Ldate`: `2006/01/02 15:04:05[.000000]`.
    Dated(PartialStamp),
    /// `Ltime` or `Lmicroseconds` without `Ldate`: `15:04:05[.000000]`.
    Clock(TimeOfDay),
}

/// Go `log`'s own stamp in the text before the phrase: after an optional
/// `log.SetPrefix` prefix, before `file.go:12: ` and an `Lmsgprefix` prefix.
pub(crate) fn go_stamp(pre: &str) -> Option<GoStamp> {
    go_dated(pre.as_bytes())
        .map(GoStamp::Dated)
        .or_else(|| go_time_of_day(pre.as_bytes()).map(GoStamp::Clock))
}

fn go_dated(b: &[u8]) -> Option<PartialStamp> {
    let mut from = 0;
    while from + 19 <= b.len() {
        let i = from + b[from..].iter().position(u8::is_ascii_digit)?;
        if b.get(i + 4) == Some(&b'/') && (i == 0 || !b[i - 1].is_ascii_digit()) {
            if let Ok((_, st)) = go_date(&b[i..]) {
                return Some(st);
            }
        }
        from = i + 1;
    }
    None
}

/// The first `15:04:05[.000000] ` that starts a token: not inside a longer
/// number or clock, and not the time half of some other date format
/// (`2023-05-05 17:33:07`, `2023-05-05T17:33:07`), which is not Go's.
fn go_time_of_day(b: &[u8]) -> Option<TimeOfDay> {
    let mut from = 0;
    while from + 9 <= b.len() {
        let i = from + b[from..].iter().position(u8::is_ascii_digit)?;
        let starts_token = i == 0 || !matches!(b[i - 1], b'0'..=b'9' | b':' | b'.' | b',');
        if starts_token && b.get(i + 2) == Some(&b':') && !after_date(&b[..i]) {
            if let Ok((_, t)) = go_clock(&b[i..]) {
                return Some(t);
            }
        }
        from = i + 1;
    }
    None
}

/// `before` ends with `2023-05-05 `, `2023/05/05T`, ...
fn after_date(before: &[u8]) -> bool {
    let Some(tail) = before.len().checked_sub(11).map(|s| &before[s..]) else {
        return false;
    };
    let d = |r: std::ops::Range<usize>| tail[r].iter().all(u8::is_ascii_digit);
    d(0..4)
        && matches!(tail[4], b'-' | b'/')
        && d(5..7)
        && tail[7] == tail[4]
        && d(8..10)
        && matches!(tail[10], b' ' | b'T')
}

pub(crate) fn finish(
    env: Envelope<'_>,
    origin: Source,
    cfg: &ParseConfig,
) -> (Parsed, Option<String>) {
    let go = cfg
        .formats
        .contains(SourceFormat::Go)
        .then(|| PHRASE_FINDER.find(env.msg.as_bytes()))
        .flatten();
    let Some(at) = go else {
        return match formats::inner(&env, cfg.formats) {
            Some(o) => outcome(&env, o, origin, cfg),
            None => (Parsed::NotProxyError, None),
        };
    };
    let pre = &env.msg[..at];
    let text = env.msg[at + PHRASE.len()..].trim_end_matches(['\r', '\n', ' ']);
    let (stamp, note) = match when(&env, go_stamp(pre), Own::Go, cfg) {
        Ok(s) => s,
        Err(why) => return (Parsed::Malformed(why), None),
    };
    let g = parse_borrowed(text);
    let own = |s: Option<&str>| s.map(str::to_owned);
    let record = Parsed::Error(ProxyError {
        timestamp: stamp.ts,
        time_precision: stamp.precision,
        time_zone_assumed: stamp.assumed,
        host: env.host,
        process: env.process,
        pid: env.pid,
        op: own(g.op),
        local: own(g.local),
        remote: own(g.remote),
        syscall: own(g.syscall),
        class: g.class,
        message: text.to_owned(),
        source_format: SourceFormat::Go,
        source: origin,
    });
    (record, note)
}

/// A proxy format's reading of a line, as the line's outcome.
fn outcome(
    env: &Envelope<'_>,
    o: Outcome,
    origin: Source,
    cfg: &ParseConfig,
) -> (Parsed, Option<String>) {
    match o {
        Outcome::Found(f) => build(env, *f, origin, cfg),
        Outcome::NotError => (Parsed::NotProxyError, None),
        Outcome::Malformed(why) => (Parsed::Malformed(why), None),
    }
}

/// The record of a proxy format's line: its own stamp weighed against the
/// envelope's like Go's own stamp is, the envelope's host and process
/// where the proxy's text names none.
fn build(
    env: &Envelope<'_>,
    f: Found,
    origin: Source,
    cfg: &ParseConfig,
) -> (Parsed, Option<String>) {
    let (stamp, note) = match when(env, f.stamp.map(GoStamp::Dated), Own::Proxy, cfg) {
        Ok(s) => s,
        Err(why) => return (Parsed::Malformed(why), None),
    };
    let record = Parsed::Error(ProxyError {
        timestamp: stamp.ts,
        time_precision: stamp.precision,
        time_zone_assumed: stamp.assumed,
        host: f
            .host
            .or_else(|| env.host.clone().filter(|_| !f.no_envelope_host)),
        process: env.process.clone().or(f.process),
        pid: env.pid.or(f.pid),
        op: f.op,
        local: f.local,
        remote: f.remote,
        syscall: f.syscall,
        class: f.class,
        message: f.message,
        source_format: f.format,
        source: origin,
    });
    (record, note)
}

/// Whose stamp is inside the envelope, for what the reader says when two
/// stamps disagree.
#[derive(Debug, Clone, Copy)]
enum Own {
    Go,
    Proxy,
}

impl Own {
    fn name(self) -> &'static str {
        match self {
            Own::Go => "Go's own",
            Own::Proxy => "the proxy's own",
        }
    }
}

/// Two stamps of one line further apart than this cannot be the same
/// moment read in two zones (UTC−12 to UTC+14, plus the shipper's delay).
const ZONE_SPAN: chrono::Duration = chrono::Duration::hours(26);

/// Whether an instant fits the signed 64-bit nanoseconds every later stage
/// (plans, packet times, Elasticsearch) counts in: 1677-09-21 to 2262-04-11.
fn representable(ts: &chrono::DateTime<chrono::Utc>) -> bool {
    ts.timestamp_nanos_opt().is_some()
}

/// A stamp a line can have: representable, and not after the time its
/// input was last written (plus the year guess's slack).
fn plausible(s: &Stamp, cfg: &ParseConfig) -> bool {
    representable(&s.ts) && s.ts <= cfg.reference + crate::time::YEAR_SLACK
}

/// The line's instant from the envelope's stamps and Go's own, and a note
/// when they disagree.
///
/// Agreeing stamps (the common case) give the most precise one, as the
/// README says. When the envelope's winner and Go's own dated stamp are
/// more than [`ZONE_SPAN`] apart, no zone explains it: one of them is wrong
/// (a journald `__REALTIME_TIMESTAMP` rewritten by an import, a shipper's
/// bogus field). The consistent one is kept: representable and not after
/// the input was last written, Go's own first (the process wrote it with
/// the error); the note says which was dropped. A stamp nothing can
/// represent (before 1677, after 2262) is refused rather than becoming 0.
fn when(
    env: &Envelope<'_>,
    go: Option<GoStamp>,
    own: Own,
    cfg: &ParseConfig,
) -> Result<(Stamp, Option<String>), String> {
    let (stamp, note) = pick(env, go, own, cfg)?;
    if !representable(&stamp.ts) {
        return Err(format!(
            "timestamp {} is outside what can be represented (1677-09-21 to 2262-04-11): refused",
            stamp.precision.format(&stamp.ts)
        ));
    }
    Ok((stamp, note))
}

fn pick(
    env: &Envelope<'_>,
    go: Option<GoStamp>,
    own_name: Own,
    cfg: &ParseConfig,
) -> Result<(Stamp, Option<String>), String> {
    let (dated, clock) = match go {
        Some(GoStamp::Dated(d)) => (Some(d), None),
        Some(GoStamp::Clock(c)) => (None, Some(c)),
        None => (None, None),
    };
    // The most precise stamp wins; on a tie one that printed its zone, then
    // one that printed its year.
    let rank = |s: &PartialStamp| (s.precision, s.offset.is_some(), s.year.is_some());
    let best = env
        .stamps
        .iter()
        .chain(dated.iter())
        .copied()
        .max_by_key(rank);
    let Some(best) = best else {
        // Only Go's time of day: the date is inferred before the reference.
        return clock
            .and_then(|c| c.before_reference(cfg))
            .map(|s| (s, None))
            .ok_or_else(|| format!("no timestamp in the line (envelope {:?})", env.kind));
    };
    // A year-less winner takes its year from Go's own date when there is one.
    let hint = match (best.year, dated) {
        (None, Some(g)) => g.resolve(cfg, None).map(|s| s.ts),
        _ => None,
    };
    let stamp = best.resolve(cfg, hint).ok_or_else(|| {
        format!(
            "impossible date {:04}-{:02}-{:02}",
            best.year.or(cfg.year).unwrap_or(0),
            best.month,
            best.day
        )
    })?;
    if let Some(g) = dated.filter(|g| *g != best) {
        if let Some(own) = g.resolve(cfg, None) {
            if (own.ts - stamp.ts).abs() > ZONE_SPAN {
                let show = |s: &Stamp| s.precision.format(&s.ts);
                let own_stamp = format!("{} stamp", own_name.name());
                let (kept, dropped, whose) = if plausible(&own, cfg) {
                    (own, stamp, own_stamp.as_str())
                } else if plausible(&stamp, cfg) {
                    (stamp, own, "the envelope's stamp")
                } else {
                    (stamp, own, "the envelope's stamp (neither is plausible)")
                };
                let note = format!(
                    "the envelope's stamp {} and {} {} cannot be the same moment in any zone: \
                     {whose} {} was used, {} dropped",
                    show(&stamp),
                    own_name.name(),
                    show(&own),
                    show(&kept),
                    show(&dropped)
                );
                return Ok((kept, Some(note)));
            }
        }
    }
    // Go's time of day, when finer, refines the envelope's stamp.
    let stamp = match clock {
        Some(c) if c.precision > stamp.precision => {
            c.refine(stamp, best.offset, cfg).unwrap_or(stamp)
        }
        _ => stamp,
    };
    Ok((stamp, None))
}
