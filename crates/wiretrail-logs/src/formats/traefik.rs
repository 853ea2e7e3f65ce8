//! Traefik: the proxy's error line (logged at debug level) and its JSON
//! access log.
//!
//! The error handler (`pkg/proxy/httputil/proxy.go` `ErrorHandler`) logs
//! the Go error of Go's own `httputil.ReverseProxy` with the status it
//! chose (502 for EOF and other network errors, 504 for timeouts, 499 for a
//! client that left):
//!
//! - v2 (logrus): `time="2023-05-05T17:33:07Z" level=debug msg="'502 Bad
//!   Gateway' caused by: dial tcp 10.2.2.9:80: connect: connection
//!   refused"`, or the same as JSON (`msg`, `time`);
//! - v3 (zerolog): `2023-05-05T17:33:07Z DBG pkg/proxy/httputil/proxy.go:205
//!   > 502 Bad Gateway error="dial tcp ..."` (add `--log.nocolor`), or
//!   JSON `{"level":"debug","error":"dial tcp ...","time":"...","message":"502 Bad Gateway"}`.
//!
//! The Go error is read as Go's own lines (sockets, op, class). A record
//! for 502, 503, 504 and 499.
//!
//! The JSON access log (`accessLog.format=json`): an entry with
//! `DownstreamStatus` 502, 503, 504 or 499 is a record with `remote` from
//! `ServiceAddr`, no error text (`message` is `"<status> <method>
//! <host><path>"`) and the class the status implies: 499 `canceled`, 504
//! `timeout` (a dial or a response: Traefik answers 504 for both, so no
//! `op`), 502 and 503 `other`. Its time is `StartUTC` plus `Duration`
//! (nanoseconds): when Traefik answered.

use super::{json_u64, socket, Found, Outcome, Phase};
use crate::envelope::{Envelope, EnvelopeKind};
use crate::goerr::parse_borrowed;
use crate::record::{ErrorClass, SourceFormat};
use crate::time::{iso, parse_rfc3339, PartialStamp};
use serde_json::{Map, Value};

/// The statuses Traefik's error handler gives a failed upstream exchange.
fn upstream_status(s: u64) -> bool {
    matches!(s, 499 | 502..=504)
}

/// `502 Bad Gateway` (v3's message) or `'502 Bad Gateway' caused by: ERR`
/// (v2's): the status, and v2's error.
fn status_text(msg: &str) -> Option<(u64, Option<&str>)> {
    let m = msg.strip_prefix('\'').unwrap_or(msg);
    let code: u64 = m.get(..3)?.parse().ok()?;
    let rest = m.get(3..)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let err = msg.split_once("' caused by: ").map(|(_, e)| e);
    Some((code, err))
}

fn from_error(err: &str, stamp: PartialStamp) -> Outcome {
    let err = err.trim_end_matches(['\r', '\n', ' ']);
    let mut f = Found::go(SourceFormat::Traefik, &parse_borrowed(err), err.to_owned());
    f.stamp = Some(stamp);
    f.boxed()
}

/// A JSON line of Traefik's: an error line (v2 `msg`, v3 `message` +
/// `error`) or an access log entry.
pub(crate) fn parse_json(obj: &Map<String, Value>) -> Option<Outcome> {
    if obj.contains_key("DownstreamStatus") {
        return Some(access(obj));
    }
    let text = obj
        .get("msg")
        .or_else(|| obj.get("message"))
        .and_then(Value::as_str)?;
    let (code, v2_err) = status_text(text)?;
    let err = match v2_err {
        Some(e) => e,
        None => obj.get("error").and_then(Value::as_str)?,
    };
    if !upstream_status(code) {
        return Some(Outcome::NotError);
    }
    let Some(stamp) = obj
        .get("time")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
    else {
        return Some(Outcome::Malformed(
            "Traefik line without a readable `time`".into(),
        ));
    };
    Some(from_error(err, stamp))
}

fn access(obj: &Map<String, Value>) -> Outcome {
    let Some(status) = json_u64(obj.get("DownstreamStatus")) else {
        return Outcome::Malformed("Traefik access entry: DownstreamStatus is not a number".into());
    };
    let (class, phase) = match status {
        499 => (ErrorClass::Canceled, Phase::None),
        504 => (ErrorClass::Timeout, Phase::None),
        502 | 503 => (ErrorClass::Other, Phase::None),
        _ => return Outcome::NotError,
    };
    let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("-");
    let Some(start) = obj
        .get("StartUTC")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
    else {
        return Outcome::Malformed("Traefik access entry without a readable StartUTC".into());
    };
    let took = json_u64(obj.get("Duration")).unwrap_or(0);
    let Some(stamp) = start.shifted(chrono::Duration::nanoseconds(took as i64)) else {
        return Outcome::Malformed("Traefik access entry: StartUTC + Duration overflows".into());
    };
    let message = format!(
        "{status} {} {}{}",
        s("RequestMethod"),
        s("RequestHost"),
        s("RequestPath")
    );
    let mut f = Found::new(SourceFormat::Traefik, class, phase, message);
    f.remote = socket(s("ServiceAddr")).map(str::to_owned);
    f.stamp = Some(stamp);
    f.boxed()
}

/// A text line: v2's logrus `time="..." level=debug msg="'502 ...' caused
/// by: ..."`, v3's `TIME DBG CALLER > 502 Bad Gateway error="..."`.
pub(crate) fn parse_text(msg: &str, env: &Envelope<'_>) -> Option<Outcome> {
    // v3's `TIME LVL CALLER > ...` reads like an RFC 3339 syslog line to the
    // envelope detection: its stamp became the envelope's, the level its
    // host. The rest is Traefik's.
    if env.kind == EnvelopeKind::SyslogIso
        && env
            .host
            .as_deref()
            .is_some_and(|h| ZEROLOG_LEVELS.contains(&h))
    {
        let at = msg.find("> ").map_or(0, |p| p + 2);
        return v3_message(&msg[at..], None).map(|o| match o {
            Outcome::Found(mut f) => {
                f.no_envelope_host = true;
                Outcome::Found(f)
            }
            other => other,
        });
    }
    if let Some(rest) = msg.strip_prefix("time=\"") {
        let (t, rest) = rest.split_once('"')?;
        let stamp = parse_rfc3339(t)?;
        let at = rest.find(" msg=\"")? + 6;
        let text = unquote(&rest[at..]);
        let (code, err) = status_text(&text)?;
        let err = err?;
        if !upstream_status(code) {
            return Some(Outcome::NotError);
        }
        return Some(from_error(err, stamp));
    }
    // v3: an RFC 3339 stamp, a three-letter level, then `> MESSAGE fields`.
    let b = msg.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let (after, stamp) = iso(b).ok()?;
    let rest = std::str::from_utf8(after).ok()?.strip_prefix(' ')?;
    let (level, rest) = rest.split_once(' ')?;
    if level.len() != 3 || !level.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let at = rest.find("> ")? + 2;
    v3_message(&rest[at..], Some(stamp))
}

/// zerolog's console levels.
const ZEROLOG_LEVELS: [&str; 7] = ["TRC", "DBG", "INF", "WRN", "ERR", "FTL", "PNC"];

/// `502 Bad Gateway error="..."`: v3's message and its `error` field.
/// `stamp`: the line's own, when the envelope did not take it.
fn v3_message(rest: &str, stamp: Option<PartialStamp>) -> Option<Outcome> {
    let (code, _) = status_text(rest)?;
    let e = rest.find(" error=")? + 7;
    let err = if rest[e..].starts_with('"') {
        unquote(&rest[e + 1..])
    } else {
        rest[e..].split(' ').next().unwrap_or("").to_owned()
    };
    if !upstream_status(code) {
        return Some(Outcome::NotError);
    }
    let err = err.trim_end_matches(['\r', '\n', ' ']);
    let mut f = Found::go(SourceFormat::Traefik, &parse_borrowed(err), err.to_owned());
    f.stamp = stamp;
    Some(f.boxed())
}

/// The rest of a Go-quoted string (after its opening quote), unescaped up to
/// the closing quote.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '"' => break,
            '\\' => match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => break,
            },
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_texts() {
        assert_eq!(status_text("502 Bad Gateway"), Some((502, None)));
        assert_eq!(
            status_text("'504 Gateway Timeout' caused by: i/o timeout"),
            Some((504, Some("i/o timeout")))
        );
        assert_eq!(status_text("Starting provider"), None);
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote(r#"a \"b\" c" level=x"#), r#"a "b" c"#);
    }
}
