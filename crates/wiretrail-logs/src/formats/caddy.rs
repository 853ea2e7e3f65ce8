//! Caddy's JSON logs (zap): one object per line,
//!
//! ```text
//! {"level":"error","ts":1683307987.1234567,"logger":"http.log.error","msg":"read tcp 10.1.1.5:51392->10.2.2.9:80: read: connection reset by peer",
//!  "request":{"remote_ip":..,"method":"POST","host":..,"uri":"/x",..},"duration":0.0005,"status":502,"err_id":..,"err_trace":"reverseproxy.statusError (reverseproxy.go:1272)"}
//! ```
//!
//! - The error logger (`http.log.error`, `http.log.error.log0` when the site
//!   has a `log` directive) logs the handler's error: for `reverse_proxy`
//!   the Go error of Go's own transport (`msg`), read exactly as Go's lines
//!   (sockets, op, class). A record when `status` is 502, 503 or 504 (or
//!   499, Caddy's word for a client that left); other statuses are other
//!   handlers' errors.
//! - Access entries (`http.log.access...`) with status 502, 503 or 504: a
//!   record with no socket and no error text (`message` is `"<status>
//!   <method> <host><uri>"`); 504 is Caddy's response-header timeout
//!   (class `timeout`, op `read`), 502 and 503 say only that it failed
//!   (`other`). Caddy writes both entries for one failure: read the error
//!   log when there is one.
//! - `ts` is a float of Unix seconds (zap's epoch encoder): a float64 holds
//!   today's seconds to about a quarter of a microsecond, so the record
//!   keeps microseconds (the digits printed are read as decimals, never
//!   through a float). A `ts` configured as an RFC 3339 string is read too.

use super::{json_u64, Found, Outcome, Phase};
use crate::goerr::parse_borrowed;
use crate::record::{ErrorClass, SourceFormat, TimePrecision};
use crate::time::{parse_rfc3339, PartialStamp};
use serde_json::{Map, Value};

pub(crate) fn parse(obj: &Map<String, Value>) -> Option<Outcome> {
    let logger = obj.get("logger")?.as_str()?;
    let error_log = logger == "http.log.error" || logger.starts_with("http.log.error.");
    let access_log = logger == "http.log.access" || logger.starts_with("http.log.access.");
    if !error_log && !access_log {
        // Caddy's other loggers (`admin`, `tls`, and
        // `http.handlers.reverse_proxy`'s "aborting with incomplete
        // response", a body-phase error after the status went out), or
        // another zap logger's line: not a record.
        return Some(Outcome::NotError);
    }
    let status = json_u64(obj.get("status"));
    let stamp = match obj.get("ts").map(stamp) {
        Some(Some(s)) => s,
        Some(None) => return Some(Outcome::Malformed(format!("bad Caddy ts {}", obj["ts"]))),
        None => return Some(Outcome::Malformed("Caddy entry without ts".into())),
    };
    let mut f = if error_log {
        if !matches!(status, Some(499 | 502..=504)) {
            return Some(Outcome::NotError);
        }
        let msg = obj.get("msg").and_then(Value::as_str).unwrap_or("");
        let msg = msg.trim_end_matches(['\r', '\n', ' ']);
        Found::go(SourceFormat::Caddy, &parse_borrowed(msg), msg.to_owned())
    } else {
        let (class, phase) = match status {
            Some(504) => (ErrorClass::Timeout, Phase::Receive),
            Some(502 | 503) => (ErrorClass::Other, Phase::None),
            _ => return Some(Outcome::NotError),
        };
        let req = obj.get("request");
        let s = |k: &str| {
            req.and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .unwrap_or("-")
        };
        let message = format!(
            "{} {} {}{}",
            status.unwrap_or(0),
            s("method"),
            s("host"),
            s("uri")
        );
        Found::new(SourceFormat::Caddy, class, phase, message)
    };
    f.stamp = Some(stamp);
    Some(f.boxed())
}

/// `ts`: Unix seconds as a JSON number (read from its decimal digits) or an
/// RFC 3339 string.
fn stamp(v: &Value) -> Option<PartialStamp> {
    match v {
        Value::Number(n) => epoch_decimal(&n.to_string()),
        Value::String(s) => parse_rfc3339(s).or_else(|| epoch_decimal(s)),
        _ => None,
    }
}

/// `1683307987.1234567` → that instant to the microsecond.
pub(crate) fn epoch_decimal(s: &str) -> Option<PartialStamp> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.contains(['e', 'E']) || int.contains(['e', 'E']) {
        // zap never prints exponents for today's seconds.
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let digits: String = frac.chars().take(6).collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = format!("{digits:0<6}").parse().ok()?;
    let ts = chrono::DateTime::from_timestamp(secs, (micros * 1000) as u32)?;
    Some(crate::envelope::exact_partial(
        ts,
        if frac.is_empty() {
            TimePrecision::Second
        } else {
            TimePrecision::Microsecond
        },
    ))
}
