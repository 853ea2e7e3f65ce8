//! The webhook server, driven by a real HTTP client over loopback.

mod common;
use bytes::Bytes;
use common::{proxy_error, utc, FakeEngine};
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
