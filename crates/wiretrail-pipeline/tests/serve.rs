//! The webhook server, driven by a real HTTP client over loopback.

#![cfg(feature = "serve")]

mod common;
use bytes::Bytes;
use common::{proxy_error, utc, FakeEngine, Gate};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wiretrail_pipeline::config::Pipeline;
use wiretrail_pipeline::serve::{serve, ServeOptions};

const TOKEN: &str = "s3cret-token-for-tests-0123456789";

async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_body_bound_and_one_alert() {
    let on = |host: &str, mut e: wiretrail_logs::ProxyError| {
        e.host = Some(host.into());
        e
    };
    let errors = vec![
        on(
            "edge-proxy-01",
            proxy_error(utc("2023-05-05T09:33:07Z"), 51392, 1),
        ),
        on(
            "edge-proxy-01",
            proxy_error(utc("2023-05-05T09:38:09Z"), 52467, 2),
        ),
        on(
            "edge-proxy-02",
            proxy_error(utc("2023-05-05T09:38:10Z"), 52469, 3),
        ),
        on(
            "edge-proxy-01",
            proxy_error(utc("2023-05-05T12:00:00Z"), 52000, 4),
        ),
    ];
    let engine = Arc::new(FakeEngine::new(errors));
    let runs = tempfile::tempdir().unwrap();
    let mut p = Pipeline::empty(Path::new("/"));
    p.name = "serve-test".into();
    p.nodes.push(
        wiretrail_pipeline::config::parse_node_flag("b1=/nonexistent", Path::new("/")).unwrap(),
    );
    let opts = ServeOptions {
        token: Some(TOKEN.into()),
        max_body_bytes: 4096,
        queue: 4,
        concurrency: 1,
        runs_dir: Some(runs.path().to_path_buf()),
        ..ServeOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(engine.clone(), Arc::new(p), opts, listener, async {
        let _ = stop_rx.await;
    }));

    let (st, body) = send(addr, "GET", "/healthz", None, vec![]).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("ok")));

    let alert = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alerts/alertmanager.json"),
    )
    .unwrap();
    // No token, wrong token: refused, nothing queued.
    assert_eq!(
        send(addr, "POST", "/alertmanager", None, alert.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        send(
            addr,
            "POST",
            "/alertmanager",
            Some("wrong-token-wrong-token-wrong"),
            alert.clone()
        )
        .await
        .0,
        401
    );
    // Oversized body: refused.
    let mut big =
        br#"{"since":"2023-05-05T09:00:00Z","until":"2023-05-05T10:00:00Z","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 8192));
    big.extend(br#""}"#);
    assert_eq!(
        send(addr, "POST", "/webhook", Some(TOKEN), big).await.0,
        413
    );
    // A body that names no time.
    assert_eq!(
        send(
            addr,
            "POST",
            "/webhook",
            Some(TOKEN),
            br#"{"labels":{}}"#.to_vec()
        )
        .await
        .0,
        400
    );
    assert_eq!(engine.windows.lock().unwrap().len(), 0);

    // One real alert.
    let (st, body) = send(addr, "POST", "/alertmanager", Some(TOKEN), alert).await;
    assert_eq!(st, 202, "{body}");
    let run = body["run"].as_str().unwrap().to_string();
    assert_eq!(body["host"].as_str(), Some("edge-proxy-01"));
    let mut state = serde_json::Value::Null;
    for _ in 0..100 {
        let (st, b) = send(addr, "GET", &format!("/runs/{run}"), Some(TOKEN), vec![]).await;
        assert_eq!(st, 200);
        if b["state"] == "done" || b["state"] == "failed" {
            state = b;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "done", "{state}");
    // The alert's window (09:29..09:40:30) holds three errors, two from the
    // proxy its `instance` label names.
    assert_eq!(state["incidents"], 2, "{state}");
    assert_eq!(
        engine.hosts.lock().unwrap().as_slice(),
        &[Some("edge-proxy-01".to_string())]
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.path().join(&run).join("report.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["inc-1683279187-51392", "inc-1683279489-52467"]);
    let (_, h) = send(addr, "GET", "/healthz", None, vec![]).await;
    assert_eq!(h["completed"], 1);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

async fn wait_state(addr: std::net::SocketAddr, run: &str, want: &[&str]) -> serde_json::Value {
    for _ in 0..400 {
        let (st, b) = send(addr, "GET", &format!("/runs/{run}"), Some(TOKEN), vec![]).await;
        assert_eq!(st, 200, "run {run}: {b}");
        if want.iter().any(|w| b["state"] == *w) {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("run {run} never reached {want:?}");
}

fn generic_alert(at: &str) -> Vec<u8> {
    format!(r#"{{"at":"{at}","window":"5m"}}"#).into_bytes()
}

/// D10: every alert refused with 503 (queue full) used to push a "failed"
/// run into the list of the last 200, evicting finished runs: a burst of
/// refusals made `/runs/<id>` of a run that had just finished a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_alerts_do_not_evict_finished_runs() {
    let gate = Gate::new();
    // Open on every way out, or a failed assertion leaves the worker
    // blocked and the runtime waiting for it forever.
    struct Opens(Arc<Gate>);
    impl Drop for Opens {
        fn drop(&mut self) {
            self.0.open();
        }
    }
    let _opens = Opens(gate.clone());
    let mut engine = FakeEngine::new(vec![proxy_error(utc("2023-05-05T09:33:07Z"), 51392, 1)]);
    engine.gate = Some(gate.clone());
    let engine = Arc::new(engine);
    let mut p = Pipeline::empty(Path::new("/"));
    p.nodes.push(
        wiretrail_pipeline::config::parse_node_flag("b1=/nonexistent", Path::new("/")).unwrap(),
    );
    let opts = ServeOptions {
        token: Some(TOKEN.into()),
        max_body_bytes: 4096,
        queue: 1,
        concurrency: 1,
        runs_dir: None,
        ..ServeOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(engine.clone(), Arc::new(p), opts, listener, async {
        let _ = stop_rx.await;
    }));
    let alert = generic_alert("2023-05-05T09:34:00Z");

    let (st, b) = send(addr, "POST", "/webhook", Some(TOKEN), alert.clone()).await;
    assert_eq!(st, 202, "{b}");
    let first = b["run"].as_str().unwrap().to_string();
    assert_eq!(wait_state(addr, &first, &["done"]).await["incidents"], 1);

    // One run held running, one queued: the queue is full.
    gate.shut();
    let (_, b) = send(addr, "POST", "/webhook", Some(TOKEN), alert.clone()).await;
    let running = b["run"].as_str().unwrap().to_string();
    wait_state(addr, &running, &["running"]).await;
    let (st, b) = send(addr, "POST", "/webhook", Some(TOKEN), alert.clone()).await;
    assert_eq!(st, 202, "{b}");
    let queued = b["run"].as_str().unwrap().to_string();
    for _ in 0..250 {
        let (st, b) = send(addr, "POST", "/webhook", Some(TOKEN), alert.clone()).await;
        assert_eq!(st, 503, "{b}");
    }
    // The finished run is still there, and so are the two live ones.
    assert_eq!(wait_state(addr, &first, &["done"]).await["incidents"], 1);
    wait_state(addr, &running, &["running"]).await;
    wait_state(addr, &queued, &["queued"]).await;
    gate.open();
    wait_state(addr, &queued, &["done"]).await;
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

/// D10, `runs_dir`: the newest `runs_keep` run directories stay, older ones
/// go; nothing else in the directory is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_dir_keeps_the_newest_runs() {
    let engine = Arc::new(FakeEngine::new(vec![proxy_error(
        utc("2023-05-05T09:33:07Z"),
        51392,
        1,
    )]));
    let runs = tempfile::tempdir().unwrap();
    std::fs::write(runs.path().join("notes.txt"), "mine").unwrap();
    std::fs::create_dir(runs.path().join("archive")).unwrap();
    let mut p = Pipeline::empty(Path::new("/"));
    p.nodes.push(
        wiretrail_pipeline::config::parse_node_flag("b1=/nonexistent", Path::new("/")).unwrap(),
    );
    let mut opts = ServeOptions {
        token: Some(TOKEN.into()),
        runs_dir: Some(runs.path().to_path_buf()),
        ..ServeOptions::default()
    };
    opts.retention.runs_keep = 2;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(engine, Arc::new(p), opts, listener, async {
        let _ = stop_rx.await;
    }));
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (st, b) = send(
            addr,
            "POST",
            "/webhook",
            Some(TOKEN),
            generic_alert("2023-05-05T09:34:00Z"),
        )
        .await;
        assert_eq!(st, 202, "{b}");
        let id = b["run"].as_str().unwrap().to_string();
        wait_state(addr, &id, &["done"]).await;
        ids.push(id);
    }
    // Pruning follows each run; give the last one a moment.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = std::fs::read_dir(runs.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        left.sort();
        if left.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut want = vec![
        "archive".to_string(),
        "notes.txt".to_string(),
        ids[2].clone(),
        ids[3].clone(),
    ];
    want.sort();
    assert_eq!(left, want);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

/// D3, keep-alive: a connection is closed after
/// `max_requests_per_connection` requests (its last answer says
/// `Connection: close`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let engine = Arc::new(FakeEngine::new(vec![]));
    let mut p = Pipeline::empty(Path::new("/"));
    p.name = "ka".into();
    let mut opts = ServeOptions::default();
    opts.limits.max_requests_per_connection = 3;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(engine, Arc::new(p), opts, listener, async {
        let _ = stop_rx.await;
    }));
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Five requests pipelined on one connection: three are answered.
    let one = "GET /healthz HTTP/1.1\r\nHost: ka\r\n\r\n";
    c.write_all(one.repeat(5).as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert_eq!(text.matches("http/1.1 200").count(), 3, "{text}");
    assert_eq!(text.matches("connection: close").count(), 1, "{text}");
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}
