//! The Go error text after `http: proxy error: `.
//!
//! Grammar (what `net.OpError.Error()`, `os.SyscallError`, `net.DNSError`
//! and the `net/http` sentinels print):
//!
//! ```text
//! error    = [WRAPPER] (op_error | dns | tail)
//! WRAPPER  = "net/http: HTTP/1.x transport connection broken: "
//!          | "httputil: ReverseProxy read error during body copy: "
//!          | "readLoopPeekFailLocked: " | "write error: "
//! op_error = OP " " NET [" " [LOCAL "->"] REMOTE] ": " inner
//! inner    = op_error | dns | syscall | tail
//! syscall  = NAME ": " ERRNO-TEXT              (read: connection reset by peer)
//! dns      = "lookup " NAME [" on " SERVER] ": " TEXT
//! ```
//!
//! The wrappers are what `net/http` and `httputil` put before an error they
//! pass on (Go 1.26: `transport.go` `mapRoundTripError` and
//! `readLoopPeekFailLocked`, `reverseproxy.go` `copyBuffer`); the error
//! inside is read as if it stood alone. HTTP/2 errors (`http2: ...`,
//! `stream error: ...`) are tails: they print no socket.
//!
//! Addresses are kept exactly as Go printed them (`10.1.1.5:51392`,
//! `[fe80::1%eth0]:80`, `ip-proxy:51392`).

use crate::record::ErrorClass;
use nom::bytes::complete::{tag, take_until, take_while1};
use nom::combinator::opt;
use nom::{IResult, Parser};

/// A parsed Go error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoError {
    /// Outermost `net.OpError` operation (`read`, `readfrom`, `dial`).
    pub op: Option<String>,
    /// The network of the outermost `net.OpError` (`tcp`, `tcp6`, `unix`).
    pub net: Option<String>,
    /// Source socket (the proxy's), as printed.
    pub local: Option<String>,
    /// Destination socket (the backend's), as printed.
    pub remote: Option<String>,
    /// Innermost syscall (`read`, `write`, `connect`), else the innermost
    /// op, `lookup` for DNS errors, `None` for bare sentinels like `EOF`.
    pub syscall: Option<String>,
    /// The innermost text (`connection reset by peer`, `EOF`, `no such host`).
    pub detail: String,
    /// The name looked up, for DNS errors.
    pub lookup: Option<String>,
    pub class: ErrorClass,
}

/// Parse the Go error text. Never fails: text outside the grammar is a tail
/// of class `other` (or whatever its words say).
pub fn parse_go_error(msg: &str) -> GoError {
    let g = parse_borrowed(msg);
    let own = |s: Option<&str>| s.map(str::to_owned);
    GoError {
        op: own(g.op),
        net: own(g.net),
        local: own(g.local),
        remote: own(g.remote),
        syscall: own(g.syscall),
        detail: g.detail.to_owned(),
        lookup: own(g.lookup),
        class: g.class,
    }
}

/// [`GoError`] as views into the text (the line parser copies only what
/// the record keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoErrorRef<'a> {
    pub op: Option<&'a str>,
    pub net: Option<&'a str>,
    pub local: Option<&'a str>,
    pub remote: Option<&'a str>,
    pub syscall: Option<&'a str>,
    pub detail: &'a str,
    pub lookup: Option<&'a str>,
    pub class: ErrorClass,
}

pub(crate) fn parse_borrowed(msg: &str) -> GoErrorRef<'_> {
    let msg = msg.trim_end_matches(['\r', '\n', ' ']);
    let mut out = GoErrorRef {
        op: None,
        net: None,
        local: None,
        remote: None,
        syscall: None,
        detail: "",
        lookup: None,
        class: ErrorClass::Other,
    };
    let mut rest = msg;
    while let Some(inner) = WRAPPERS.iter().find_map(|w| rest.strip_prefix(w)) {
        rest = inner;
    }
    let mut depth = 0;
    // Walk inward through nested OpErrors; each level may add addresses.
    while let Ok((inner, op)) = op_error(rest) {
        if depth == 0 {
            out.op = Some(op.op);
            out.net = Some(op.net);
        }
        if out.remote.is_none() {
            out.remote = op.remote;
            out.local = op.local;
        }
        out.syscall = Some(op.op);
        rest = inner;
        depth += 1;
        if depth > 16 {
            break;
        }
    }
    if let Ok((text, (name, _server))) = dns(rest) {
        out.lookup = Some(name);
        out.syscall = Some("lookup");
        out.detail = text;
        out.class = ErrorClass::Dns;
        return out;
    }
    if depth > 0 {
        if let Ok((text, name)) = syscall(rest) {
            out.syscall = Some(name);
            rest = text;
        }
    }
    out.detail = rest;
    out.class = classify(rest);
    out
}

/// What `net/http` and `httputil` write before an error they pass on.
const WRAPPERS: [&str; 4] = [
    "net/http: HTTP/1.x transport connection broken: ",
    "httputil: ReverseProxy read error during body copy: ",
    "readLoopPeekFailLocked: ",
    "write error: ",
];

/// Class of an innermost error text.
pub fn classify(text: &str) -> ErrorClass {
    let t = text.trim();
    // Sentinels compared whole; errno texts and wrapped messages by content.
    match t {
        "EOF" | "unexpected EOF" | "http: server closed idle connection" => return ErrorClass::Eof,
        "context canceled" | "net/http: request canceled" => return ErrorClass::Canceled,
        "context deadline exceeded" | "i/o timeout" => return ErrorClass::Timeout,
        _ => {}
    }
    if t.starts_with("tls: ")
        || t.starts_with("x509: ")
        || t.starts_with("remote error: tls: ")
        || t.starts_with("local error: tls: ")
    {
        return ErrorClass::Tls;
    }
    if t.starts_with("lookup ") {
        return ErrorClass::Dns;
    }
    if let Some(class) = http2_class(t) {
        return class;
    }
    const TABLE: [(&str, ErrorClass); 14] = [
        ("connection reset by peer", ErrorClass::Reset),
        ("broken pipe", ErrorClass::BrokenPipe),
        ("use of closed network connection", ErrorClass::Closed),
        ("server closed idle connection", ErrorClass::Eof),
        ("unexpected EOF", ErrorClass::Eof),
        ("connection refused", ErrorClass::Refused),
        ("i/o timeout", ErrorClass::Timeout),
        ("timeout awaiting response headers", ErrorClass::Timeout),
        ("deadline exceeded", ErrorClass::Timeout),
        ("connection timed out", ErrorClass::Timeout),
        ("TLS handshake timeout", ErrorClass::Timeout),
        ("context canceled", ErrorClass::Canceled),
        ("no route to host", ErrorClass::Unreachable),
        ("network is unreachable", ErrorClass::Unreachable),
    ];
    for (needle, class) in TABLE {
        if t.contains(needle) {
            return class;
        }
    }
    if t.ends_with(": EOF") || t.ends_with("host is unreachable") {
        return if t.ends_with(": EOF") {
            ErrorClass::Eof
        } else {
            ErrorClass::Unreachable
        };
    }
    ErrorClass::Other
}

/// HTTP/2 texts (Go 1.26 `h2_bundle.go`), by what happened to the TCP
/// connection under the stream:
/// - `http2: server sent GOAWAY and closed the connection; LastStreamID=..,
///   ErrCode=.., debug=".."` (`GoAwayError`): the server closed the
///   connection after saying it would: `eof`, like an HTTP/1 server closing
///   a connection under a request.
/// - `http2: client connection lost` (`closeForLostPing`): the server
///   answered no PING within the transport's `PingTimeout`: `timeout`.
/// - `http2: timeout awaiting response headers`: `timeout`.
/// - `stream error: stream ID N; CODE[; received from peer]`
///   (`StreamError`): the peer (or the transport) reset one stream; the TCP
///   connection lives on, so there is no TCP event to look for: `other`.
///
/// Other `http2: ` texts go through the general table (one that wraps an
/// `i/o timeout` is a timeout).
fn http2_class(t: &str) -> Option<ErrorClass> {
    if t.starts_with("http2: server sent GOAWAY and closed the connection") {
        Some(ErrorClass::Eof)
    } else if t == "http2: client connection lost"
        || t == "http2: timeout awaiting response headers"
    {
        Some(ErrorClass::Timeout)
    } else if t.starts_with("stream error: stream ID ") {
        Some(ErrorClass::Other)
    } else {
        None
    }
}

struct OpLevel<'a> {
    op: &'a str,
    net: &'a str,
    local: Option<&'a str>,
    remote: Option<&'a str>,
}

fn word(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()).parse(i)
}

/// Networks `net.OpError` prints.
fn network(i: &str) -> IResult<&str, &str> {
    let (rest, w) = word(i)?;
    const NETS: [&str; 11] = [
        "tcp",
        "tcp4",
        "tcp6",
        "udp",
        "udp4",
        "udp6",
        "ip",
        "ip4",
        "ip6",
        "unix",
        "unixpacket",
    ];
    if NETS.contains(&w) || w == "unixgram" {
        Ok((rest, w))
    } else {
        Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )))
    }
}

/// One socket address as Go prints it: `[v6%zone]:port` or anything up to
/// `->`, `: ` or a space (IPv4:port, host:port, a unix path).
fn address(i: &str) -> IResult<&str, &str> {
    if i.starts_with('[') {
        let (rest, _) = (
            tag("["),
            take_until("]"),
            tag("]:"),
            take_while1(|c: char| c.is_ascii_digit()),
        )
            .parse(i)?;
        return Ok((rest, &i[..i.len() - rest.len()]));
    }
    let b = i.as_bytes();
    let mut end = 0;
    while end < b.len() {
        match b[end] {
            b' ' => break,
            b'-' if b.get(end + 1) == Some(&b'>') => break,
            b':' if b.get(end + 1) == Some(&b' ') => break,
            _ => end += 1,
        }
    }
    if end == 0 {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::TakeWhile1,
        )));
    }
    Ok((&i[end..], &i[..end]))
}

fn op_error(i: &str) -> IResult<&str, OpLevel<'_>> {
    let (i, (op, _, net)) = (word, tag(" "), network).parse(i)?;
    let (i, addrs) = opt((tag(" "), address, opt((tag("->"), address)))).parse(i)?;
    let (i, _) = tag(": ").parse(i)?;
    let (local, remote) = match addrs {
        None => (None, None),
        Some((_, a, None)) => (None, Some(a)),
        Some((_, a, Some((_, b)))) => (Some(a), Some(b)),
    };
    Ok((
        i,
        OpLevel {
            op,
            net,
            local,
            remote,
        },
    ))
}

/// `lookup NAME[ on SERVER]: ` → (name, server); the rest is the text.
fn dns(i: &str) -> IResult<&str, (&str, Option<&str>)> {
    let (i, _) = tag("lookup ").parse(i)?;
    let (i, name) = take_while1(|c: char| c != ' ' && c != ':').parse(i)?;
    let (i, server) = opt((tag(" on "), address)).parse(i)?;
    let (i, _) = tag(": ").parse(i)?;
    Ok((i, (name, server.map(|(_, s)| s))))
}

/// `read: ...`, `connect: ...`, `splice: ...` (an `os.SyscallError`); the
/// words that start other Go errors are not syscalls.
fn syscall(i: &str) -> IResult<&str, &str> {
    let (rest, (name, _)) = (word, tag(": ")).parse(i)?;
    const NOT: [&str; 6] = ["tls", "x509", "http", "http2", "lookup", "net"];
    if NOT.contains(&name) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    }
    Ok((rest, name))
}
