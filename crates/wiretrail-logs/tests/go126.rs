//! What Go 1.26's `httputil.ReverseProxy` logs when a backend fails, as a
//! real proxy printed it.
//!
//! `fixtures/go126/gen.go` runs a real `httputil.ReverseProxy` (a real HTTP
//! server on 127.0.0.1, a real `http.Client` in front) against real servers
//! that misbehave one way each, and writes the proxy's `ErrorLog` lines
//! (`log.LstdFlags|log.Lmicroseconds`, process in UTC) to `NAME.log`; the Go
//! version is in `go-version.txt`. Regenerate with
//! `cd tests/fixtures/go126 && TZ=UTC /usr/local/go/bin/go run . .` (see the
//! README there). Ports change from one run to the next, so sockets are
//! checked by shape: loopback, with a port.

mod common;
use chrono::{TimeZone, Utc};
use wiretrail_logs::{parse_go_error, parse_line, ErrorClass, ParseConfig, Parsed, Source};

const GO_VERSION: &str = include_str!("fixtures/go126/go-version.txt");

fn cfg() -> ParseConfig {
    common::utc_cfg(Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap())
}

/// What a line must parse to. Sockets: `Some(true)` a loopback socket,
/// `Some(false)` absent.
struct Want {
    class: ErrorClass,
    op: Option<&'static str>,
    local: bool,
    remote: bool,
    syscall: Option<&'static str>,
    /// The message begins with this (the Go text the scenario is about).
    text: &'static str,
}

const fn want(
    class: ErrorClass,
    op: Option<&'static str>,
    local: bool,
    remote: bool,
    syscall: Option<&'static str>,
    text: &'static str,
) -> Want {
    Want {
        class,
        op,
        local,
        remote,
        syscall,
        text,
    }
}

fn loopback(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|a| {
        a.strip_prefix("127.0.0.1:")
            .is_some_and(|p| p.parse::<u16>().is_ok())
    })
}

#[track_caller]
fn check(name: &str, text: &str, w: Want) {
    assert!(GO_VERSION.starts_with("go1.26"), "{GO_VERSION}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: one line per scenario: {text}");
    let line = lines[0];
    let e = match parse_line(line.as_bytes(), common::origin(), &cfg()) {
        Parsed::Error(e) => e,
        other => panic!("{name}: {line:?} gave {other:?}"),
    };
    assert!(e.message.starts_with(w.text), "{name}: {}", e.message);
    assert_eq!(e.class, w.class, "{name}: class of {line}");
    assert_eq!(e.op.as_deref(), w.op, "{name}: op of {line}");
    assert_eq!(loopback(&e.local), w.local, "{name}: local of {line}");
    assert_eq!(loopback(&e.remote), w.remote, "{name}: remote of {line}");
    assert_eq!(e.local.is_some(), w.local, "{name}: local of {line}");
    assert_eq!(e.remote.is_some(), w.remote, "{name}: remote of {line}");
    assert_eq!(e.syscall.as_deref(), w.syscall, "{name}: syscall of {line}");
    // Go's own stamp, to the microsecond, in the generator's year.
    assert_eq!(e.time_precision, wiretrail_logs::TimePrecision::Microsecond);
    assert_eq!(chrono::Datelike::year(&e.timestamp), 2026, "{name}: {line}");
    assert!(matches!(e.source, Source::File { line: 1, .. }));
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("fixtures/go126/", $name, ".log")),
        )
    };
}

#[test]
fn reset_read() {
    let (n, t) = fixture!("reset");
    use ErrorClass::*;
    check(
        n,
        t,
        want(
            Reset,
            Some("read"),
            true,
            true,
            Some("read"),
            "read tcp 127.0.0.1:",
        ),
    );
}

#[test]
fn eof_without_a_response() {
    let (n, t) = fixture!("eof");
    check(n, t, want(ErrorClass::Eof, None, false, false, None, "EOF"));
}

#[test]
fn http1_transport_connection_broken() {
    let (n, t) = fixture!("transport-broken");
    check(
        n,
        t,
        want(
            ErrorClass::Eof,
            None,
            false,
            false,
            None,
            "net/http: HTTP/1.x transport connection broken: unexpected EOF",
        ),
    );
}

#[test]
fn server_closed_idle_connection() {
    let (n, t) = fixture!("server-closed-idle");
    check(
        n,
        t,
        want(
            ErrorClass::Eof,
            None,
            false,
            false,
            None,
            "http: server closed idle connection",
        ),
    );
}

#[test]
fn timeout_awaiting_response_headers_is_not_a_dial() {
    let (n, t) = fixture!("response-header-timeout");
    check(
        n,
        t,
        want(
            ErrorClass::Timeout,
            None,
            false,
            false,
            None,
            "net/http: timeout awaiting response headers",
        ),
    );
}

#[test]
fn dial_timeouts_from_go_and_from_the_kernel() {
    // Go's dialer gave up (Dialer.Timeout): no syscall, the op is the dial.
    let (n, t) = fixture!("dial-io-timeout");
    check(
        n,
        t,
        want(
            ErrorClass::Timeout,
            Some("dial"),
            false,
            true,
            Some("dial"),
            "dial tcp 127.0.0.1:",
        ),
    );
    assert!(t.trim_end().ends_with(": i/o timeout"));
    // The kernel gave up after its SYN retries (ETIMEDOUT from connect).
    let (n, t) = fixture!("connect-timed-out");
    check(
        n,
        t,
        want(
            ErrorClass::Timeout,
            Some("dial"),
            false,
            true,
            Some("connect"),
            "dial tcp 127.0.0.1:",
        ),
    );
    assert!(t.trim_end().ends_with(": connect: connection timed out"));
}

#[test]
fn client_went_away() {
    let (n, t) = fixture!("context-canceled");
    check(
        n,
        t,
        want(
            ErrorClass::Canceled,
            None,
            false,
            false,
            None,
            "context canceled",
        ),
    );
}

#[test]
fn http2_goaway_lost_connection_and_stream_reset() {
    let (n, t) = fixture!("h2-goaway");
    check(
        n,
        t,
        want(
            ErrorClass::Eof,
            None,
            false,
            false,
            None,
            "http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=INTERNAL_ERROR, debug=\"backend shutting down\"",
        ),
    );
    let (n, t) = fixture!("h2-connection-lost");
    check(
        n,
        t,
        want(
            ErrorClass::Timeout,
            None,
            false,
            false,
            None,
            "http2: client connection lost",
        ),
    );
    let (n, t) = fixture!("h2-stream-reset");
    check(
        n,
        t,
        want(
            ErrorClass::Other,
            None,
            false,
            false,
            None,
            "stream error: stream ID 1; INTERNAL_ERROR; received from peer",
        ),
    );
}

/// `httputil: ReverseProxy read error during body copy: ...` is logged
/// after the backend's status and headers went to the client: there is no
/// 502 to explain, so the line is not a record (see the README). Its Go
/// error follows the same grammar, wrapper included.
#[test]
fn body_copy_errors_are_not_records_but_parse() {
    for (name, text, class, sockets) in [
        (
            "body-copy-reset",
            include_str!("fixtures/go126/body-copy-reset.log"),
            ErrorClass::Reset,
            true,
        ),
        (
            "body-copy-eof",
            include_str!("fixtures/go126/body-copy-eof.log"),
            ErrorClass::Eof,
            false,
        ),
    ] {
        let line = text.trim_end();
        assert_eq!(
            parse_line(line.as_bytes(), common::origin(), &cfg()),
            Parsed::NotProxyError,
            "{name}"
        );
        let at = line.find("httputil: ").expect("the wrapper");
        let g = parse_go_error(&line[at..]);
        assert_eq!(g.class, class, "{name}: {line}");
        assert_eq!(loopback(&g.local), sockets, "{name}");
        assert_eq!(loopback(&g.remote), sockets, "{name}");
        if sockets {
            assert_eq!(g.op.as_deref(), Some("read"));
            assert_eq!(g.syscall.as_deref(), Some("read"));
        }
    }
}
