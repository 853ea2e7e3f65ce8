//! From an opened envelope to a [`ProxyError`]: find the phrase, read Go's
//! own `log` prefix, pick the best stamp, parse the Go error.

use crate::config::ParseConfig;
use crate::envelope::{self, Envelope};
use crate::goerr::parse_borrowed;
use crate::record::{ProxyError, Source};
use crate::time::{go_date, PartialStamp};
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
    if line.first() != Some(&b'{') && PHRASE_FINDER.find(line).is_none() {
        return Parsed::NotProxyError;
    }
    match envelope::open(line) {
        Ok(env) => finish(env, origin, cfg),
        Err(why) => {
            if LOOSE_FINDER.find(line).is_some() {
                Parsed::Malformed(why)
            } else {
                Parsed::NotProxyError
            }
        }
    }
}

/// One Elasticsearch/Filebeat document (`_source` of a hit); origin is
/// `Source::Elasticsearch{index,id}`.
pub fn parse_document(doc: &Value, origin: Source, cfg: &ParseConfig) -> Parsed {
    match envelope::document(doc) {
        Ok(env) => finish(env, origin, cfg),
        Err(why) => Parsed::Malformed(why),
    }
}

/// Go `log`'s own stamp in the text before the phrase: after an optional
/// `log.SetPrefix` prefix, before `file.go:12: ` and an `Lmsgprefix` prefix.
pub(crate) fn go_stamp(pre: &str) -> Option<PartialStamp> {
    let b = pre.as_bytes();
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

pub(crate) fn finish(env: Envelope<'_>, origin: Source, cfg: &ParseConfig) -> Parsed {
    let Some(at) = PHRASE_FINDER.find(env.msg.as_bytes()) else {
        return Parsed::NotProxyError;
    };
    let pre = &env.msg[..at];
    let text = env.msg[at + PHRASE.len()..].trim_end_matches(['\r', '\n', ' ']);
    let go = go_stamp(pre);

    // The most precise stamp wins; on a tie one that printed its zone, then
    // one that printed its year.
    let rank = |s: &PartialStamp| (s.precision, s.offset.is_some(), s.year.is_some());
    let best = env.stamps.iter().chain(go.iter()).copied().max_by_key(rank);
    let Some(best) = best else {
        return Parsed::Malformed(format!(
            "no timestamp in the line (envelope {:?})",
            env.kind
        ));
    };
    // A year-less winner takes its year from Go's own date when there is one.
    let hint = match (best.year, go) {
        (None, Some(g)) => g.resolve(cfg, None).map(|s| s.ts),
        _ => None,
    };
    let Some(stamp) = best.resolve(cfg, hint) else {
        return Parsed::Malformed(format!(
            "impossible date {:04}-{:02}-{:02}",
            best.year.or(cfg.year).unwrap_or(0),
            best.month,
            best.day
        ));
    };

    let g = parse_borrowed(text);
    let own = |s: Option<&str>| s.map(str::to_owned);
    Parsed::Error(ProxyError {
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
        source: origin,
    })
}
