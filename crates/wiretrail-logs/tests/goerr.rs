//! One row per Go error tail, as Go's net, net/http, crypto/tls print them.

use wiretrail_logs::{parse_go_error, ErrorClass};

type R = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    ErrorClass,
);

#[test]
fn every_tail() {
    use ErrorClass::*;
    let rows: Vec<R> = vec![
        // (text, op, local, remote, syscall, class)
        ("read tcp 10.1.1.5:51392->10.2.2.9:8080: read: connection reset by peer", Some("read"), Some("10.1.1.5:51392"), Some("10.2.2.9:8080"), Some("read"), Reset),
        ("write tcp 10.1.1.5:51392->10.2.2.9:8080: write: broken pipe", Some("write"), Some("10.1.1.5:51392"), Some("10.2.2.9:8080"), Some("write"), BrokenPipe),
        ("dial tcp 10.2.2.9:8080: connect: connection refused", Some("dial"), None, Some("10.2.2.9:8080"), Some("connect"), Refused),
        (
            "readfrom tcp ip-proxy:52736->ip-backend:80: write tcp ip-proxy:52736->ip-backend:80: use of closed network connection",
            Some("readfrom"),
            Some("ip-proxy:52736"),
            Some("ip-backend:80"),
            Some("write"),
            Closed,
        ),
        ("readfrom tcp 10.1.1.5:5->10.2.2.9:80: splice: connection reset by peer", Some("readfrom"), Some("10.1.1.5:5"), Some("10.2.2.9:80"), Some("splice"), Reset),
        ("read tcp6 [fd00:1::5]:46572->[fd00:2::9]:8080: read: connection reset by peer", Some("read"), Some("[fd00:1::5]:46572"), Some("[fd00:2::9]:8080"), Some("read"), Reset),
        ("dial tcp [fe80::1%eth0]:80: connect: no route to host", Some("dial"), None, Some("[fe80::1%eth0]:80"), Some("connect"), Unreachable),
        ("dial tcp 10.2.2.9:8080: connect: network is unreachable", Some("dial"), None, Some("10.2.2.9:8080"), Some("connect"), Unreachable),
        ("dial tcp 10.2.2.9:8080: i/o timeout", Some("dial"), None, Some("10.2.2.9:8080"), Some("dial"), Timeout),
        ("read tcp 10.1.1.5:51392->10.2.2.9:8080: i/o timeout", Some("read"), Some("10.1.1.5:51392"), Some("10.2.2.9:8080"), Some("read"), Timeout),
        ("dial tcp 10.2.2.9:8080: connect: connection timed out", Some("dial"), None, Some("10.2.2.9:8080"), Some("connect"), Timeout),
        ("dial tcp: lookup backend.svc.cluster.local on 10.96.0.10:53: no such host", Some("dial"), None, None, Some("lookup"), Dns),
        ("dial tcp: lookup backend on [::1]:53: server misbehaving", Some("dial"), None, None, Some("lookup"), Dns),
        ("dial tcp: lookup backend: no such host", Some("dial"), None, None, Some("lookup"), Dns),
        ("dial tcp: lookup backend on 127.0.0.53:53: read udp 127.0.0.1:40000->127.0.0.53:53: i/o timeout", Some("dial"), None, None, Some("lookup"), Dns),
        ("proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused", Some("proxyconnect"), None, Some("10.0.0.1:3128"), Some("connect"), Refused),
        ("dial unix /run/backend.sock: connect: no such file or directory", Some("dial"), None, Some("/run/backend.sock"), Some("connect"), Other),
        ("EOF", None, None, None, None, Eof),
        ("unexpected EOF", None, None, None, None, Eof),
        ("http: server closed idle connection", None, None, None, None, Eof),
        ("context canceled", None, None, None, None, Canceled),
        ("context deadline exceeded", None, None, None, None, Timeout),
        ("net/http: timeout awaiting response headers", None, None, None, None, Timeout),
        ("net/http: TLS handshake timeout", None, None, None, None, Timeout),
        ("net/http: request canceled", None, None, None, None, Canceled),
        ("tls: failed to verify certificate: x509: certificate signed by unknown authority", None, None, None, None, Tls),
        ("x509: certificate has expired or is not yet valid: current time 2023-05-05T09:33:07Z is after 2023-05-01T00:00:00Z", None, None, None, None, Tls),
        ("remote error: tls: handshake failure", None, None, None, None, Tls),
        ("local error: tls: bad record MAC", None, None, None, None, Tls),
        ("http2: server sent GOAWAY and closed the connection; LastStreamID=1, ErrCode=NO_ERROR, debug=\"\"", None, None, None, None, Eof),
        ("http2: client connection lost", None, None, None, None, Timeout),
        ("http2: timeout awaiting response headers", None, None, None, None, Timeout),
        ("stream error: stream ID 3; PROTOCOL_ERROR; received from peer", None, None, None, None, Other),
        // A GOAWAY's debug text is the server's: its words classify nothing.
        ("http2: server sent GOAWAY and closed the connection; LastStreamID=5, ErrCode=NO_ERROR, debug=\"connection reset by peer\"", None, None, None, None, Eof),
        // Wrappers: the error inside is read as if it stood alone.
        ("net/http: HTTP/1.x transport connection broken: write tcp 10.1.1.5:5->10.2.2.9:80: write: broken pipe", Some("write"), Some("10.1.1.5:5"), Some("10.2.2.9:80"), Some("write"), BrokenPipe),
        ("httputil: ReverseProxy read error during body copy: read tcp 10.1.1.5:5->10.2.2.9:80: read: connection reset by peer", Some("read"), Some("10.1.1.5:5"), Some("10.2.2.9:80"), Some("read"), Reset),
        ("readLoopPeekFailLocked: read tcp 10.1.1.5:5->10.2.2.9:80: read: connection reset by peer", Some("read"), Some("10.1.1.5:5"), Some("10.2.2.9:80"), Some("read"), Reset),
        ("malformed HTTP response \"\\x15\\x03\\x01\\x00\\x02\\x02\"", None, None, None, None, Other),
        ("net/http: HTTP/1.x transport connection broken: unexpected EOF", None, None, None, None, Eof),
        ("readfrom tcp 10.1.1.5:5->10.2.2.9:80: EOF", Some("readfrom"), Some("10.1.1.5:5"), Some("10.2.2.9:80"), Some("readfrom"), Eof),
    ];
    for (text, op, local, remote, syscall, class) in rows {
        let g = parse_go_error(text);
        assert_eq!(g.op.as_deref(), op, "op of {text}");
        assert_eq!(g.local.as_deref(), local, "local of {text}");
        assert_eq!(g.remote.as_deref(), remote, "remote of {text}");
        assert_eq!(g.syscall.as_deref(), syscall, "syscall of {text}");
        assert_eq!(g.class, class, "class of {text}");
    }
}

#[test]
fn details_and_lookup_name() {
    let g = parse_go_error("dial tcp: lookup backend.svc on 10.96.0.10:53: no such host");
    assert_eq!(g.lookup.as_deref(), Some("backend.svc"));
    assert_eq!(g.detail, "no such host");
    assert_eq!(g.net.as_deref(), Some("tcp"));
    let g = parse_go_error("read tcp 1.2.3.4:5->6.7.8.9:80: read: connection reset by peer\r\n");
    assert_eq!(g.detail, "connection reset by peer");
}
