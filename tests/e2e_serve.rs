//! `wiretrail serve` over the demo pipeline, spoken to with a hand-written
//! HTTP/1.1 client over `std::net::TcpStream`: token refused, oversized body
//! refused (announced and chunked), one Alertmanager alert accepted and
//! investigated (its run polled to the end), `/healthz`.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_BODY: usize = 8192;

/// The server process; killed (and reaped) on drop, also when a test panics.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(token: &str, runs_dir: &std::path::Path) -> Server {
        Server::start_with(token, runs_dir, &[])
    }

    fn start_with(token: &str, runs_dir: &std::path::Path, extra: &[&str]) -> Server {
        let mut c = wt([
            "serve",
            "--pipeline",
            "pipelines/demo.toml",
            "--listen",
            "127.0.0.1:0",
            "--max-body",
            &MAX_BODY.to_string(),
            "--runs-dir",
            runs_dir.to_str().unwrap(),
        ]);
        c.args(extra);
        c.env("WIRETRAIL_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn serve");
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log = stderr.clone();
        // Keep draining stderr for the server's whole life.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("on http://").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve did not say where it listens:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Body<'a> {
    None,
    /// Sent whole, with its Content-Length.
    Full(&'a [u8]),
    /// Only the headers, announcing this Content-Length.
    Announce(usize),
    /// `Transfer-Encoding: chunked`, in pieces of 1 KiB.
    Chunked(&'a [u8]),
}

/// One request on its own connection (`Connection: close`), read to EOF.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Body<'_>,
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: wiretrail-e2e\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    match body {
        Body::None => {}
        Body::Full(b) => head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )),
        Body::Announce(n) => head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {n}\r\n"
        )),
        Body::Chunked(_) => {
            head.push_str("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
        }
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    match body {
        Body::Full(b) => s.write_all(b).unwrap(),
        Body::Chunked(b) => {
            // The server may answer 413 and close before the last chunk.
            for piece in b.chunks(1024) {
                let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
                c.extend_from_slice(piece);
                c.extend_from_slice(b"\r\n");
                if s.write_all(&c).is_err() {
                    break;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
        Body::None | Body::Announce(_) => {}
    }
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        // A reset after the whole response arrived is fine (unread body).
        assert!(!raw.is_empty(), "{method} {path}: no response: {e}");
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .expect("chunk size");
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    Response {
        status,
        headers,
        body,
    }
}

fn alert_body() -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/alertmanager-demo.json")).unwrap()
}

#[test]
fn serve_refuses_without_token_and_oversized_and_runs_one_alert() {
    let token = "e2e-8f3c1a9b7d2e4f60a5b1c3d7";
    let runs = tempfile::tempdir().unwrap();
    let srv = Server::start(token, runs.path());
    assert!(srv.addr.ip().is_loopback());

    // Liveness without a token.
    let r = request(srv.addr, "GET", "/healthz", None, Body::None);
    assert_eq!(r.status, 200, "{r:?}");
    let h = r.json();
    assert_eq!(s(&h, "status"), "ok");
    assert_eq!(s(&h, "pipeline"), "demo");

    let alert = alert_body();
    // No token, a wrong token: 401.
    for auth in [None, Some("not-the-token-at-all-000000")] {
        let r = request(srv.addr, "POST", "/alertmanager", auth, Body::Full(&alert));
        assert_eq!(r.status, 401, "token {auth:?}: {r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = request(srv.addr, "GET", "/runs/anything", None, Body::None);
    assert_eq!(r.status, 401, "run states are behind the token too");

    // Oversized: announced by Content-Length (refused before reading), and
    // streamed chunked without a length (refused past the bound).
    let r = request(
        srv.addr,
        "POST",
        "/alertmanager",
        Some(token),
        Body::Announce(MAX_BODY * 16),
    );
    assert_eq!(r.status, 413, "{r:?}");
    let mut big = serde_json::from_slice::<Value>(&alert).unwrap();
    big["commonAnnotations"]["description"] = "x".repeat(MAX_BODY + 100).into();
    let big = serde_json::to_vec(&big).unwrap();
    let r = request(
        srv.addr,
        "POST",
        "/webhook",
        Some(token),
        Body::Chunked(&big),
    );
    assert_eq!(r.status, 413, "{r:?}");

    // Nothing was queued by any of that.
    let h = request(srv.addr, "GET", "/healthz", None, Body::None).json();
    assert_eq!(h["queued"], 0);
    assert_eq!(h["completed"], 0);

    // One real alert: accepted, then investigated.
    let r = request(
        srv.addr,
        "POST",
        "/alertmanager",
        Some(token),
        Body::Full(&alert),
    );
    assert_eq!(r.status, 202, "{r:?} {}", String::from_utf8_lossy(&r.body));
    let accepted = r.json();
    let id = s(&accepted, "run").to_string();
    assert_eq!(
        accepted["host"], "proxyhost",
        "host from the instance label"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let r = request(
            srv.addr,
            "GET",
            &format!("/runs/{id}"),
            Some(token),
            Body::None,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let st = r.json();
        match s(&st, "state") {
            "done" | "failed" => break st,
            "queued" | "running" => {}
            other => panic!("unknown run state {other}"),
        }
        assert!(
            Instant::now() < deadline,
            "run {id} not finished in 60 s: {}\n{}",
            short(&st),
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        s(&state, "state"),
        "done",
        "{}\n{}",
        short(&state),
        srv.log()
    );
    assert_eq!(state["incidents"], 1, "{}", short(&state));
    assert_eq!(state["causes"]["flow_split"], 1, "{}", short(&state));
    assert_eq!(s(&state, "kind"), "alertmanager");

    // Its outputs under runs_dir/<id>/, with the demo's diagnosis.
    let report = runs.path().join(&id).join("report.json");
    let written = strings(&state["written"]);
    assert!(
        written
            .iter()
            .any(|w| w.ends_with(&format!("{id}/report.json"))),
        "{written:?}"
    );
    let r = read_json(&report);
    let errors = arr(&arr(&r, "incidents")[0], "errors");
    assert_eq!(errors.len(), 8);
    assert!(errors
        .iter()
        .all(|e| s(&e["diagnosis"], "cause") == "flow_split"));
    assert!(runs.path().join(&id).join("report.html").is_file());

    let r = request(
        srv.addr,
        "GET",
        "/runs/no-such-run",
        Some(token),
        Body::None,
    );
    assert_eq!(r.status, 404);
    let h = request(srv.addr, "GET", "/healthz", None, Body::None).json();
    assert_eq!(h["completed"], 1, "{}", short(&h));
    assert_eq!(h["failed"], 0);
    // Each run is logged.
    assert!(srv.log().contains(&format!("run {id}")), "{}", srv.log());

    // Ctrl-C: a clean shutdown.
    let mut srv = srv;
    signal(srv.child.id(), "INT");
    let st = wait_limited(
        &mut srv.child,
        Duration::from_secs(20),
        "serve after Ctrl-C",
    );
    assert!(
        st.success(),
        "serve exited {st:?} after Ctrl-C:\n{}",
        srv.log()
    );
}

#[test]
fn serve_without_a_token_refuses_to_start() {
    let o = run(wt([
        "serve",
        "--pipeline",
        "pipelines/demo.toml",
        "--listen",
        "127.0.0.1:0",
    ]));
    o.expect_refusal(&["no token"]);

    // --no-auth is for loopback only.
    let o = run(wt([
        "serve",
        "--pipeline",
        "pipelines/demo.toml",
        "--listen",
        "0.0.0.0:0",
        "--no-auth",
    ]));
    o.expect_refusal(&["loopback"]);
}

/// D6: a duration no time can hold, in an alert body, used to drop the
/// connection without an answer (a panic in the handler). Now a 400 naming
/// the field.
#[test]
fn a_huge_window_in_an_alert_body_is_a_400_not_a_dropped_connection() {
    let token = "e2e-8f3c1a9b7d2e4f60a5b1c3d7";
    let runs = tempfile::tempdir().unwrap();
    let srv = Server::start(token, runs.path());
    for body in [
        r#"{"at":"2026-11-25T00:34:00Z","window":"1000000000d"}"#,
        r#"{"at":"2026-11-25T00:34:00Z","window":"200000d"}"#,
        r#"{"since":"1764030780","window":"99999999999999999999s"}"#,
    ] {
        let r = request(
            srv.addr,
            "POST",
            "/webhook",
            Some(token),
            Body::Full(body.as_bytes()),
        );
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let e = r.json();
        assert!(s(&e, "error").contains("window"), "{body}: {}", short(&e));
    }
    // The server is still there, and nothing was queued.
    let h = request(srv.addr, "GET", "/healthz", None, Body::None).json();
    assert_eq!(h["queued"], 0);
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}

/// A request head that never ends, sent on `n` connections.
fn half_sent_heads(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"POST /webhook HTTP/1.1\r\nHost: slow\r\nContent-Type: appl")
                .unwrap();
            s
        })
        .collect()
}

/// Whether the server closed `s` (EOF, a reset, or a 408 answer) before
/// `deadline`: a connection it keeps open times the read out.
fn closed_by_server(s: &mut TcpStream, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
        .unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // An answer (408) then the close.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// D3: 300 loopback connections holding half-sent request heads, before
/// any authentication. `/healthz` keeps answering, and the server cuts
/// each of them off after its header timeout instead of keeping them
/// forever (the defaults: no timeout at all, no cap).
#[test]
fn slow_clients_are_cut_off_and_healthz_keeps_answering() {
    let token = "e2e-8f3c1a9b7d2e4f60a5b1c3d7";
    let runs = tempfile::tempdir().unwrap();
    // Defaults: this is what a user runs.
    let srv = Server::start(token, runs.path());
    let mut slow = half_sent_heads(srv.addr, 300);
    let r = request(srv.addr, "GET", "/healthz", None, Body::None);
    assert_eq!(r.status, 200, "{r:?}");
    // The default header timeout is 10 s; a minute is a generous bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    let kept: usize = slow
        .iter_mut()
        .map(|s| usize::from(!closed_by_server(s, deadline)))
        .sum();
    assert_eq!(kept, 0, "{kept} of 300 slow connections still open");

    // A keep-alive connection that goes quiet after one request is closed
    // too (the header timeout runs while it waits for the next request).
    let mut ka = TcpStream::connect(srv.addr).unwrap();
    ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: ka\r\n\r\n")
        .unwrap();
    assert!(
        closed_by_server(&mut ka, Instant::now() + Duration::from_secs(60)),
        "an idle keep-alive connection is kept forever"
    );
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}

/// D3, the bounds made small: at most `--max-connections` are open at
/// once; at the cap a new connection takes the place of the oldest one
/// still sending its head, so `/healthz` answers at once although 40 slow
/// clients hold a head timeout far longer than the client's patience; a
/// body that stops half way is answered 408 after `--body-timeout`.
#[test]
fn connection_cap_and_body_timeout() {
    let token = "e2e-8f3c1a9b7d2e4f60a5b1c3d7";
    let runs = tempfile::tempdir().unwrap();
    let srv = Server::start_with(
        token,
        runs.path(),
        &[
            "--max-connections",
            "16",
            "--header-timeout",
            "5m",
            "--body-timeout",
            "1s",
        ],
    );
    let mut slow = half_sent_heads(srv.addr, 40);
    // `request` gives up after 30 s, long before the 5 min head timeout
    // would free a place.
    let r = request(srv.addr, "GET", "/healthz", None, Body::None);
    assert_eq!(r.status, 200, "{r:?}");
    let h = r.json();
    assert_eq!(h["max_connections"], 16, "{}", short(&h));
    assert!(
        h["connections"].as_u64().unwrap() <= 16,
        "{} connections open at once",
        short(&h)
    );
    // Every slow client beyond the cap was closed to make room (the
    // others are still open: their head timeout has not come).
    let deadline = Instant::now() + Duration::from_secs(3);
    let closed = slow
        .iter_mut()
        .map(|s| closed_by_server(s, deadline))
        .filter(|&c| c)
        .count();
    assert!(
        (40 - 16 + 1..40).contains(&closed),
        "{closed} of 40 slow connections closed"
    );
    assert!(
        h["connections_closed_for_room"].as_u64().unwrap() >= 25,
        "{}",
        short(&h)
    );

    // Authenticated, a body announced and never finished.
    let mut b = TcpStream::connect(srv.addr).unwrap();
    b.write_all(
        format!(
            "POST /webhook HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"at\":"
        )
        .as_bytes(),
    )
    .unwrap();
    b.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut raw = Vec::new();
    let _ = b.read_to_end(&mut raw);
    let r = parse_response(&raw);
    assert_eq!(r.status, 408, "{r:?}");
    let h = request(srv.addr, "GET", "/healthz", None, Body::None).json();
    assert_eq!(h["queued"], 0);
}
