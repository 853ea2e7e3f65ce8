//! The other proxies people run in front of the same backends, read into
//! the same [`ProxyError`](crate::ProxyError) as Go's lines.
//!
//! One module per program, each a parser of the proxy's own text (the
//! message inside whatever envelope carried it, or a JSON line of its own):
//!
//! - [`caddy`]: Caddy's JSON logs (the `http.log.error` logger, whose `msg`
//!   is the Go error; access entries with status 502/503/504);
//! - [`traefik`]: Traefik's `'502 Bad Gateway' caused by: <Go error>`
//!   (text and JSON, v2 and v3 log formats) and its JSON access log;
//! - [`nginx`]: nginx's error log (`connect() failed (111: ...) while
//!   connecting to upstream`, ...);
//! - [`haproxy`]: HAProxy's `httplog` and custom log-formats built on it
//!   (termination state, status, timers, `%bi:%bp`);
//! - [`envoy`]: Envoy's access log (default and Istio text formats, JSON).
//!
//! Each says what broke in the record's own words: the error class with its
//! TCP meaning ([`ErrorClass`]), and `op`/`syscall` as Go would have printed
//! them (`dial`/`connect` for a connect that failed, `read` for a response
//! that did not come, `write` for a request that could not be sent), so that
//! correlation tells a connect timeout from a response timeout whatever the
//! proxy. Which lines are records, and why, is in the crate's README.

pub(crate) mod caddy;
pub(crate) mod envoy;
pub(crate) mod haproxy;
pub(crate) mod nginx;
pub(crate) mod traefik;

use crate::config::Formats;
use crate::envelope::Envelope;
use crate::goerr::GoErrorRef;
use crate::record::{ErrorClass, SourceFormat};
use crate::time::PartialStamp;
use serde_json::Value;

/// What a proxy's line says, before the stamps are weighed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub format: SourceFormat,
    /// The proxy's own stamp (`None`: only the envelope's stamps).
    pub stamp: Option<PartialStamp>,
    /// Filled from the envelope when the proxy's text has none.
    pub host: Option<String>,
    /// The envelope's host field is not a host (Traefik v3's level, read
    /// as one by the syslog detection).
    pub no_envelope_host: bool,
    pub process: Option<String>,
    pub pid: Option<u32>,
    pub op: Option<String>,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub syscall: Option<String>,
    pub class: ErrorClass,
    pub message: String,
}

/// One proxy's reading of one line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Found(Box<Found>),
    /// A line of that proxy that is not a failed upstream exchange (an
    /// access entry with status 200, a warning, a body-phase error after
    /// the status went out).
    NotError,
    /// A line of that proxy that should be a record but cannot be read.
    Malformed(String),
}

/// Where in the upstream exchange something failed: what Go's `net.OpError`
/// would have said (`op`, and the innermost syscall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Opening the connection: `dial` / `connect`.
    Connect,
    /// Sending the request: `write`.
    Send,
    /// Waiting for (or reading) the response head: `read`.
    Receive,
    /// No socket operation failed (no live upstream, a client that left,
    /// a queue timeout): no `op`.
    None,
}

impl Phase {
    pub fn op(self) -> Option<&'static str> {
        match self {
            Phase::Connect => Some("dial"),
            Phase::Send => Some("write"),
            Phase::Receive => Some("read"),
            Phase::None => None,
        }
    }

    pub fn syscall(self) -> Option<&'static str> {
        match self {
            Phase::Connect => Some("connect"),
            Phase::Send => Some("write"),
            Phase::Receive => Some("read"),
            Phase::None => None,
        }
    }
}

impl Found {
    /// A record of `format` whose failure is `class` in `phase`.
    pub fn new(format: SourceFormat, class: ErrorClass, phase: Phase, message: String) -> Found {
        Found {
            format,
            stamp: None,
            host: None,
            no_envelope_host: false,
            process: None,
            pid: None,
            op: phase.op().map(str::to_owned),
            local: None,
            remote: None,
            syscall: phase.syscall().map(str::to_owned),
            class,
            message,
        }
    }

    /// A record whose failure is a Go error the proxy printed (Caddy,
    /// Traefik): `op`, sockets, syscall and class as for Go's own lines.
    pub fn go(format: SourceFormat, g: &GoErrorRef<'_>, message: String) -> Found {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Found {
            format,
            stamp: None,
            host: None,
            no_envelope_host: false,
            process: None,
            pid: None,
            op: own(g.op),
            local: own(g.local),
            remote: own(g.remote),
            syscall: own(g.syscall),
            class: g.class,
            message,
        }
    }

    pub fn boxed(self) -> Outcome {
        Outcome::Found(Box::new(self))
    }
}

/// Whether `line` may hold a record of one of `formats` (besides Go's
/// phrase): the per-format needles of [`NEEDLES`], searched whole.
pub(crate) fn candidate(line: &[u8], formats: Formats) -> bool {
    /// Built once: building a finder costs more than searching a line.
    static FINDERS: std::sync::LazyLock<Vec<memchr::memmem::Finder<'static>>> =
        std::sync::LazyLock::new(|| {
            NEEDLES
                .iter()
                .map(|n| memchr::memmem::Finder::new(n.text.as_bytes()))
                .collect()
        });
    NEEDLES
        .iter()
        .zip(FINDERS.iter())
        .filter(|(n, _)| formats.contains(n.format))
        .any(|(n, f)| f.find_iter(line).any(|at| (n.check)(line, at)))
}

/// A cheap needle that every record line of a format holds, and a check of
/// the bytes around a hit (the reader's scan calls it on each hit, so it
/// must look only near `at`).
pub(crate) struct Needle {
    pub format: SourceFormat,
    pub text: &'static str,
    pub check: fn(&[u8], usize) -> bool,
}

fn any(_: &[u8], _: usize) -> bool {
    true
}

/// `to upstream`, `from upstream`, `no live upstreams`: what nginx says
/// while connecting, sending the request or reading the response head; not
/// `reading upstream` (the body, after the status went out) nor `an
/// upstream response is buffered` (a warning).
fn nginx_upstream(hay: &[u8], at: usize) -> bool {
    let before = &hay[..at];
    before.ends_with(b" to ") || before.ends_with(b" from ") || before.ends_with(b"no live ")
}

/// ` 502 `, ` 503 `, ` 504 ` (after a ` 50` hit).
fn status_5xx_spaced(hay: &[u8], at: usize) -> bool {
    matches!(hay.get(at + 3), Some(b'2'..=b'4')) && hay.get(at + 4) == Some(&b' ')
}

/// `502`, `503`, `504`, then not a digit (after a `":50` hit).
fn status_5xx_json(hay: &[u8], at: usize) -> bool {
    matches!(hay.get(at + 4), Some(b'2'..=b'4')) && !hay.get(at + 5).is_some_and(u8::is_ascii_digit)
}

/// Every format's needles: what the reader's scan searches for besides Go's
/// phrase. Each is rare in the format's other lines, so the scan parses few
/// lines that are not records.
///
/// - Caddy: the error logger's name (`"logger":"http.log.error`; inside a
///   Docker or journald JSON envelope the quotes are escaped, so the name
///   alone), and access entries' `"status":50[234]`.
/// - Traefik: `caused by: ` (v2's debug line), `Bad Gateway` / `Gateway
///   Timeout` / `Service Unavailable` / `Client Closed Request` (v3's),
///   `"DownstreamStatus":50[234]` and `"DownstreamStatus":499` (its access
///   log).
/// - nginx: `upstream` after `to `, `from ` or `no live ` (every record
///   says `while connecting to upstream`, `while sending request to
///   upstream` or `while reading response header from upstream`).
/// - HAProxy: ` 50[234] ` and ` -1 ` (the status field; the timers' `-1`
///   are between slashes).
/// - Envoy: `" 50[234] ` and `" 0 ` (default and Istio text formats: the
///   status right after the quoted request line; 0 when no response was
///   sent at all), JSON: `"response_code":50[234]` and `"response_flags":"`
///   followed by an upstream (`U`), downstream (`D`) or no-route (`NR`) flag.
pub(crate) static NEEDLES: &[Needle] = &[
    Needle {
        format: SourceFormat::Caddy,
        text: "http.log.error",
        check: any,
    },
    Needle {
        format: SourceFormat::Caddy,
        text: "\"status\":50",
        check: |h, at| matches!(h.get(at + 11), Some(b'2'..=b'4')),
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "caused by: ",
        check: any,
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "Bad Gateway",
        check: any,
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "Gateway Timeout",
        check: any,
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "Service Unavailable",
        check: any,
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "Client Closed Request",
        check: any,
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "\"DownstreamStatus\":50",
        check: |h, at| matches!(h.get(at + 21), Some(b'2'..=b'4')),
    },
    Needle {
        format: SourceFormat::Traefik,
        text: "\"DownstreamStatus\":499",
        check: any,
    },
    Needle {
        format: SourceFormat::Nginx,
        text: "upstream",
        check: nginx_upstream,
    },
    Needle {
        format: SourceFormat::Haproxy,
        text: " 50",
        check: status_5xx_spaced,
    },
    Needle {
        format: SourceFormat::Haproxy,
        text: " -1 ",
        check: any,
    },
    Needle {
        format: SourceFormat::Envoy,
        text: "\" 50",
        check: |h, at| status_5xx_spaced(h, at + 1),
    },
    Needle {
        format: SourceFormat::Envoy,
        text: "\" 0 ",
        check: any,
    },
    Needle {
        format: SourceFormat::Envoy,
        text: "\"response_code\":50",
        check: |h, at| status_5xx_json(h, at + 15),
    },
    Needle {
        format: SourceFormat::Envoy,
        text: "\"response_flags\":\"",
        check: |h, at| {
            matches!(h.get(at + 18), Some(b'U' | b'D')) || h.get(at + 18..at + 20) == Some(b"NR")
        },
    },
];

/// A JSON line that is a proxy's own record (not an envelope around one):
/// Caddy, Traefik's JSON log and access log, Envoy's JSON access log.
/// `None` when the value is none of these.
pub(crate) fn json(v: &Value, formats: Formats) -> Option<Outcome> {
    let obj = v.as_object()?;
    if formats.contains(SourceFormat::Caddy) && obj.contains_key("logger") && obj.contains_key("ts")
    {
        if let Some(o) = caddy::parse(obj) {
            return Some(o);
        }
    }
    if formats.contains(SourceFormat::Traefik) {
        if let Some(o) = traefik::parse_json(obj) {
            return Some(o);
        }
    }
    if formats.contains(SourceFormat::Envoy) {
        if let Some(o) = envoy::parse_json(obj) {
            return Some(o);
        }
    }
    None
}

/// Whether a top-level JSON line looks like one of the proxies' own records
/// (its keys, unescaped), so the line parser reads it as such rather than as
/// an envelope.
pub(crate) fn json_marker(line: &[u8], formats: Formats) -> bool {
    const MARKS: [(SourceFormat, &str); 7] = [
        (SourceFormat::Caddy, "\"logger\":\"http."),
        (SourceFormat::Traefik, "\"DownstreamStatus\""),
        (SourceFormat::Traefik, "caused by: "),
        (SourceFormat::Traefik, "\"level\":\""),
        (SourceFormat::Envoy, "\"response_flags\""),
        (SourceFormat::Envoy, "\"upstream_host\""),
        (SourceFormat::Envoy, "\"response_code\""),
    ];
    MARKS
        .iter()
        .any(|(f, m)| formats.contains(*f) && memchr::memmem::find(line, m.as_bytes()).is_some())
}

/// The proxy formats' reading of an envelope's message (text formats, or a
/// JSON record inside Docker/CRI/journald/a document). `None`: no format
/// claims it.
pub(crate) fn inner(env: &Envelope<'_>, formats: Formats) -> Option<Outcome> {
    let msg = env.msg.trim_end_matches(['\r', '\n', ' ']);
    if msg.starts_with('{') {
        let v: Value = serde_json::from_str(msg).ok()?;
        return json(&v, formats);
    }
    if formats.contains(SourceFormat::Nginx) {
        if let Some(o) = nginx::parse(msg, env) {
            return Some(o);
        }
    }
    if formats.contains(SourceFormat::Traefik) {
        if let Some(o) = traefik::parse_text(msg, env) {
            return Some(o);
        }
    }
    if formats.contains(SourceFormat::Envoy) {
        if let Some(o) = envoy::parse_text(msg) {
            return Some(o);
        }
    }
    if formats.contains(SourceFormat::Haproxy) {
        if let Some(o) = haproxy::parse(msg) {
            return Some(o);
        }
    }
    None
}

/// `ip:port`, `[v6]:port` or `host:port` with a numeric port: a socket as a
/// record keeps it. Anything else (a name without port, `-`) is not one.
pub(crate) fn socket(s: &str) -> Option<&str> {
    let (host, port) = s.rsplit_once(':')?;
    let ok_port = !port.is_empty() && port.len() <= 5 && port.bytes().all(|c| c.is_ascii_digit());
    let ok_host = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']') || !host.contains(':'))
        && !host.contains(' ');
    (ok_port && ok_host).then_some(s)
}

/// Class of an errno as the C library prints it (`104: Connection reset by
/// peer`): by number where Linux's is known, else by its words.
pub(crate) fn errno_class(errno: Option<u32>, text: &str) -> ErrorClass {
    match errno {
        Some(104) => ErrorClass::Reset,
        Some(111) => ErrorClass::Refused,
        Some(110) => ErrorClass::Timeout,
        Some(32) => ErrorClass::BrokenPipe,
        Some(101 | 113) => ErrorClass::Unreachable,
        _ => crate::goerr::classify(&text.to_ascii_lowercase()),
    }
}

/// `u64` from a JSON number or a numeric string.
pub(crate) fn json_u64(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// How much of an input's beginning [`sniff`] reads.
pub(crate) const SNIFF_BYTES: usize = 64 << 10;

/// Which of `allowed` an input holds, judged by the lines of its first
/// [`SNIFF_BYTES`] (`head`): the reader then searches that input only for
/// those formats' needles, so a Go proxy's log is searched for Go's phrase
/// alone, as fast as before the other formats existed. Go is always kept
/// (the phrase is the cheapest needle, and Go lines hide in every envelope).
///
/// A line is taken for a format by its shape, not by whether it is an
/// error: nginx's `YYYY/MM/DD HH:MM:SS [level] PID#TID: `, HAProxy's
/// `[dd/Mon/yyyy:HH:MM:SS`, Envoy's `[YYYY-MM-DDTHH:MM:SS.mmmZ] "`, Caddy's
/// `"logger":"http.`, Traefik's `DownstreamStatus`, logrus's `level=...
/// msg=` and zerolog's `level`/`message` JSON or `TIME LVL ... > ` text
/// (escaped quotes count too: the line may sit in a JSON envelope).
pub(crate) fn sniff(head: &[u8], allowed: Formats) -> Formats {
    let mut found = Formats::NONE;
    if allowed.contains(SourceFormat::Go) {
        found = found.with(SourceFormat::Go);
    }
    let head = &head[..head.len().min(SNIFF_BYTES)];
    for line in head.split(|&c| c == b'\n') {
        for f in allowed.iter() {
            if !found.contains(f) && looks_like(f, line) {
                found = found.with(f);
            }
        }
        if found == allowed {
            break;
        }
    }
    found
}

fn has(line: &[u8], s: &str) -> bool {
    memchr::memmem::find(line, s.as_bytes()).is_some()
}

/// Whether `line` has `f`'s shape (see [`sniff`]).
fn looks_like(f: SourceFormat, line: &[u8]) -> bool {
    match f {
        SourceFormat::Go => true,
        SourceFormat::Caddy => has(line, "\"logger\":\"http.") || has(line, "logger\\\":\\\"http."),
        SourceFormat::Traefik => {
            has(line, "DownstreamStatus")
                || (has(line, "level=") && has(line, " msg="))
                || (has(line, "level\"") || has(line, "level\\\""))
                    && (has(line, "message") || has(line, "msg"))
                || zerolog_text(line)
        }
        SourceFormat::Nginx => nginx_prefix(line),
        SourceFormat::Haproxy => haproxy_date(line),
        SourceFormat::Envoy => {
            has(line, "response_flags")
                || memchr::memmem::find(line, b"Z] \"").is_some_and(|p| p >= 20)
        }
    }
}

/// ` [error] 812#812: ` after a `YYYY/MM/DD HH:MM:SS` stamp.
fn nginx_prefix(line: &[u8]) -> bool {
    memchr::memmem::find_iter(line, b"] ").any(|p| {
        let open = match line[..p].iter().rposition(|&c| c == b'[') {
            Some(o) => o,
            None => return false,
        };
        let level = &line[open + 1..p];
        let pid = &line[p + 2..];
        let digits = pid.iter().take_while(|c| c.is_ascii_digit()).count();
        open >= 20
            && line[open - 1] == b' '
            && line[open - 20..open - 1]
                .iter()
                .filter(|c| c.is_ascii_digit())
                .count()
                == 14
            && [
                &b"error"[..],
                b"crit",
                b"warn",
                b"notice",
                b"info",
                b"alert",
                b"emerg",
                b"debug",
            ]
            .contains(&level)
            && digits > 0
            && pid.get(digits) == Some(&b'#')
    })
}

/// `[04/May/2023:17:33:07` anywhere.
fn haproxy_date(line: &[u8]) -> bool {
    memchr::memchr_iter(b'[', line).any(|p| {
        let d = &line[p + 1..];
        d.len() >= 20
            && d[..2].iter().all(u8::is_ascii_digit)
            && d[2] == b'/'
            && d[3..6].iter().all(u8::is_ascii_alphabetic)
            && d[6] == b'/'
            && d[7..11].iter().all(u8::is_ascii_digit)
            && d[11] == b':'
    })
}

/// zerolog's console writer: `2023-05-05T17:33:07Z DBG ... > message`.
fn zerolog_text(line: &[u8]) -> bool {
    const LEVELS: [&[u8]; 7] = [
        b" TRC ", b" DBG ", b" INF ", b" WRN ", b" ERR ", b" FTL ", b" PNC ",
    ];
    line.first().is_some_and(u8::is_ascii_digit)
        && LEVELS
            .iter()
            .any(|l| memchr::memmem::find(line, l).is_some())
        && has(line, " > ")
}

/// The needles of `formats` other than Go's phrase, and their checks, in
/// the order [`NEEDLES`] lists them.
pub(crate) fn needles(formats: Formats) -> impl Iterator<Item = &'static Needle> {
    NEEDLES.iter().filter(move |n| formats.contains(n.format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets() {
        assert_eq!(socket("10.2.2.9:80"), Some("10.2.2.9:80"));
        assert_eq!(socket("[fd00::9]:8080"), Some("[fd00::9]:8080"));
        assert_eq!(socket("backend:80"), Some("backend:80"));
        assert_eq!(socket("refusing"), None);
        assert_eq!(socket("fd00::9"), None);
        assert_eq!(socket("-"), None);
    }

    #[test]
    fn needles_check_around_the_hit() {
        let f = Formats::ALL;
        assert!(candidate(b"x 0/0/-1/-1/1 503 217 - - SC--", f));
        assert!(!candidate(b"x 0/0/0/0/0 200 217 - - ---- 500 ok", f));
        assert!(candidate(br#"{"status":502,"x":1}"#, f));
        assert!(!candidate(br#"{"status":500}"#, f));
    }
}
