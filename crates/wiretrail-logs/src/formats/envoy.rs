//! Envoy's access log: the default text format, Istio's text formats, and
//! JSON (`json_format` with Istio's key names).
//!
//! ```text
//! [2022-04-24T12:23:37.047Z] "GET /wrong HTTP/1.1" 502 UPE upstream_reset_before_response_started{protocol_error} - "-" 0 87 1001 - "-"
//!   "curl/7.80.0" "3987a4cb-..." "http-chunked:8080" "10.244.0.17:8080" inbound|8080|| 127.0.0.6:39063 10.244.0.17:8080 10.244.0.14:35500 - default
//! ```
//!
//! Text fields are found by position around the parts every format shares:
//! `[START_TIME] "REQUEST LINE" RESPONSE_CODE RESPONSE_FLAGS`, then (Istio)
//! `RESPONSE_CODE_DETAILS CONNECTION_TERMINATION_DETAILS
//! "UPSTREAM_TRANSPORT_FAILURE_REASON"`, then the run of three numbers
//! `BYTES_RECEIVED BYTES_SENT DURATION`, the quoted headers ending with
//! `"UPSTREAM_HOST"` (the last quoted field), then (Istio)
//! `UPSTREAM_CLUSTER UPSTREAM_LOCAL_ADDRESS ...`. `UPSTREAM_LOCAL_ADDRESS`
//! is Envoy's own socket to the upstream, with its ephemeral port: such
//! lines join by port exactly; the default format has none.
//!
//! A line is a record when Envoy itself failed the exchange: status 502,
//! 503 or 504 with an upstream flag, or status 0 with `DC` (the client left
//! before any response: `canceled`). A 5xx the upstream sent (no flag,
//! `via_upstream`) is the backend's answer, not a proxy error.
//!
//! | flag | class | op |
//! |---|---|---|
//! | `UF` (connection failure) | by the failure reason: refused (`111`, `refused`), timeout (`110`, `timeout`), tls, unreachable, else other | dial |
//! | `UC` (upstream connection termination) | eof | read |
//! | `UR` (upstream remote reset) | reset | read |
//! | `UT` (upstream request timeout), `UMSDR` | timeout | read |
//! | `UPE` (upstream protocol error) | other | read |
//! | `UH`, `UO`, `URX` alone, `LR` | other | — |
//! | `DC` with status 0 | canceled | — |
//!
//! The time is `START_TIME` (UTC, milliseconds by default) plus `DURATION`
//! (milliseconds): when Envoy answered.

use super::{socket, Found, Outcome, Phase};
use crate::record::{ErrorClass, SourceFormat};
use crate::time::{parse_rfc3339, PartialStamp};
use serde_json::{Map, Value};

/// What a line says, in either form.
struct Entry<'a> {
    start: PartialStamp,
    status: u32,
    flags: &'a str,
    details: &'a str,
    reason: &'a str,
    duration_ms: Option<i64>,
    upstream_host: &'a str,
    upstream_local: &'a str,
}

fn record(e: &Entry<'_>, message: String) -> Outcome {
    let flags: Vec<&str> = e.flags.split(',').map(str::trim).collect();
    let has = |f: &str| flags.contains(&f);
    let (class, phase) = if e.status == 0 && has("DC") {
        (ErrorClass::Canceled, Phase::None)
    } else if !matches!(e.status, 502..=504) {
        return Outcome::NotError;
    } else if has("UF") {
        (connect_failure(e.reason, e.details), Phase::Connect)
    } else if has("UT") || has("UMSDR") {
        (ErrorClass::Timeout, Phase::Receive)
    } else if has("UR") {
        (ErrorClass::Reset, Phase::Receive)
    } else if has("UC") {
        (ErrorClass::Eof, Phase::Receive)
    } else if has("UPE") {
        (ErrorClass::Other, Phase::Receive)
    } else if ["UH", "UO", "URX", "LR"].iter().any(|f| has(f)) {
        (ErrorClass::Other, Phase::None)
    } else {
        // No upstream flag: the upstream's own 5xx, or Envoy's for another
        // reason (authorization, rate limit, no route).
        return Outcome::NotError;
    };
    let stamp = match e.duration_ms {
        Some(ms) if ms >= 0 => match e.start.shifted(chrono::Duration::milliseconds(ms)) {
            Some(s) => s,
            None => return Outcome::Malformed("Envoy START_TIME + DURATION overflows".into()),
        },
        _ => e.start,
    };
    let mut f = Found::new(SourceFormat::Envoy, class, phase, message);
    f.stamp = Some(stamp);
    let host = e
        .upstream_host
        .split_once("://")
        .map_or(e.upstream_host, |(_, h)| h);
    f.remote = socket(host).map(str::to_owned);
    f.local = socket(e.upstream_local).map(str::to_owned);
    f.boxed()
}

/// `UF`'s failure, from `UPSTREAM_TRANSPORT_FAILURE_REASON` (`delayed
/// connect error: 111`) or the code details
/// (`upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}`).
fn connect_failure(reason: &str, details: &str) -> ErrorClass {
    let text = format!("{reason} {details}").to_ascii_lowercase();
    let has_errno = |n: &str| {
        text.match_indices(n).any(|(i, _)| {
            let before = text[..i].chars().last();
            let after = text[i + n.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    };
    if text.contains("refused") || has_errno("111") {
        ErrorClass::Refused
    } else if text.contains("timeout")
        || text.contains("timed_out")
        || text.contains("timed out")
        || has_errno("110")
    {
        ErrorClass::Timeout
    } else if text.contains("unreachable") || has_errno("113") || has_errno("101") {
        ErrorClass::Unreachable
    } else if text.contains("reset") && has_errno("104") {
        ErrorClass::Reset
    } else if text.contains("tls") || text.contains("ssl") || text.contains("certificate") {
        ErrorClass::Tls
    } else {
        ErrorClass::Other
    }
}

/// A text line of the default or an Istio format.
pub(crate) fn parse_text(msg: &str) -> Option<Outcome> {
    if !msg.starts_with('[') {
        return None;
    }
    let close = msg.find("] \"")?;
    let start = parse_rfc3339(&msg[1..close])?;
    let toks = tokens(&msg[close + 2..]);
    // "REQUEST LINE" CODE FLAGS ...
    let req = *toks.first()?;
    if !req.starts_with('"') {
        return None;
    }
    let status: u32 = toks.get(1)?.parse().ok()?;
    let flags = *toks.get(2)?;
    // The first run of three numbers: bytes received, bytes sent, duration.
    let num = |t: &str| t.bytes().all(|c| c.is_ascii_digit()) && !t.is_empty();
    let k = (3..toks.len().saturating_sub(2))
        .find(|&k| num(toks[k]) && num(toks[k + 1]) && num(toks[k + 2]))?;
    let between = &toks[3..k];
    let details = between
        .iter()
        .find(|t| !t.starts_with('"'))
        .copied()
        .unwrap_or("-");
    let reason = between
        .iter()
        .rev()
        .find(|t| t.starts_with('"'))
        .map_or("-", |t| unquote(t));
    let duration_ms = toks[k + 2].parse().ok();
    let last_quoted = (k + 3..toks.len())
        .rev()
        .find(|&i| toks[i].starts_with('"'));
    let (upstream_host, upstream_local) = match last_quoted {
        Some(i) => (unquote(toks[i]), toks.get(i + 2).copied().unwrap_or("-")),
        None => ("-", "-"),
    };
    let e = Entry {
        start,
        status,
        flags,
        details,
        reason,
        duration_ms,
        upstream_host,
        upstream_local,
    };
    Some(record(&e, msg.to_owned()))
}

/// A JSON entry with Istio's key names (`response_code`, `response_flags`,
/// `start_time`, `duration`, `upstream_host`, `upstream_local_address`,
/// `response_code_details`, `upstream_transport_failure_reason`); values
/// as strings or (typed JSON) numbers. `None` when the object has no
/// `response_flags`.
pub(crate) fn parse_json(obj: &Map<String, Value>) -> Option<Outcome> {
    let flags = obj.get("response_flags")?.as_str()?;
    let text = |k: &str| -> String {
        match obj.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "-".into(),
        }
    };
    let Some(start) = obj
        .get("start_time")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
    else {
        return Some(Outcome::Malformed(
            "Envoy entry without a readable start_time".into(),
        ));
    };
    let Ok(status) = text("response_code").parse::<u32>() else {
        return Some(Outcome::Malformed(
            "Envoy entry: response_code is not a number".into(),
        ));
    };
    let (details, reason) = (
        text("response_code_details"),
        text("upstream_transport_failure_reason"),
    );
    let (host, local) = (text("upstream_host"), text("upstream_local_address"));
    let message = format!(
        "{status} {flags} {details} \"{reason}\" {} {}{} {host}",
        text("method"),
        text("authority"),
        text("path")
    );
    let e = Entry {
        start,
        status,
        flags,
        details: &details,
        reason: &reason,
        duration_ms: text("duration").parse().ok(),
        upstream_host: &host,
        upstream_local: &local,
    };
    Some(record(&e, message))
}

/// Space-separated tokens; a `"..."` token keeps its spaces (and `\"`).
fn tokens(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(24);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
        }
        out.push(&s[start..i]);
    }
    out
}

fn unquote(t: &str) -> &str {
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures() {
        assert_eq!(
            connect_failure("delayed connect error: 111", "-"),
            ErrorClass::Refused
        );
        assert_eq!(
            connect_failure(
                "-",
                "upstream_reset_before_response_started{connection_timeout}"
            ),
            ErrorClass::Timeout
        );
        assert_eq!(
            connect_failure("TLS error: Secret is not supplied by SDS", "-"),
            ErrorClass::Tls
        );
        assert_eq!(connect_failure("-", "-"), ErrorClass::Other);
        assert_eq!(connect_failure("code 1110", "-"), ErrorClass::Other);
    }
}
