//! The pipeline's Elasticsearch wiring against the in-process test server
//! (wiretrail-testsupport): logs read from an index with the pipeline's
//! `[elasticsearch]` table (host filter from an alert label), and a report
//! published back, twice, without duplicates.

#![cfg(feature = "elasticsearch")]

mod common;
use common::{ts, FakeEngine};
use serde_json::json;
use std::sync::Arc;
use wiretrail_pipeline::config::{LogSource, Pipeline};
use wiretrail_pipeline::engine::Engine;
use wiretrail_pipeline::progress::{Progress, Silent};
use wiretrail_pipeline::time::Window;
use wiretrail_pipeline::CratesEngine;
use wiretrail_testsupport::{EsServer, ServerConfig};

fn doc(ts: &str, host: &str, port: u16) -> serde_json::Value {
    json!({
        "@timestamp": ts,
        "host": {"name": host},
        "message": format!("2023/05/05 09:33:07 http: proxy error: read tcp 10.1.1.5:{port}->10.0.0.100:80: read: connection reset by peer"),
    })
}

#[test]
fn logs_from_elasticsearch_and_reports_back() {
    let server = EsServer::start(ServerConfig::default()).unwrap();
    server.add_docs(
        "filebeat-2023.05.05",
        vec![
            (
                "a".to_string(),
                doc("2023-05-05T09:33:07.000Z", "edge-proxy-01", 51392),
            ),
            (
                "b".to_string(),
                doc("2023-05-05T09:34:07.000Z", "edge-proxy-01", 51394),
            ),
            (
                "c".to_string(),
                doc("2023-05-05T09:34:08.000Z", "edge-proxy-02", 51396),
            ),
            (
                "d".to_string(),
                doc("2023-05-05T11:00:00.000Z", "edge-proxy-01", 51398),
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        format!(
            "tz = \"UTC\"\n[logs]\nsource = \"elasticsearch\"\nhost = \"edge-proxy-01\"\n\
             [elasticsearch]\nurl = \"{}\"\nindex = \"filebeat-*\"\n[elasticsearch.auth]\nno_env = true\n\
             [elasticsearch.sink]\nindex_prefix = \"wt\"\nrefresh = true\n\
             [[nodes]]\nname = \"b1\"\ncaptures = \"caps\"\n[outputs]\nelasticsearch = true\n",
            server.url()
        ),
    )
    .unwrap();
    let p = Pipeline::load(&file).unwrap();
    assert_eq!(p.logs, LogSource::Elasticsearch);
    let w = Window::new(ts("2023-05-05T09:30:00Z"), ts("2023-05-05T09:40:00Z")).unwrap();
    let logs = CratesEngine
        .read_errors(&p, &w, wiretrail_pipeline::engine::Keep::All)
        .unwrap();
    let ports: Vec<&str> = logs
        .errors
        .iter()
        .map(|e| e.local.as_deref().unwrap())
        .collect();
    assert_eq!(
        ports,
        ["10.1.1.5:51392", "10.1.1.5:51394"],
        "window and host filter applied"
    );

    // Publish a report made from those errors; twice leaves the same documents.
    let fake = FakeEngine::new(vec![]);
    let progress: Arc<dyn Progress> = Arc::new(Silent);
    let a = fake
        .analyse(&p, &w, logs.errors, &logs.stats, &progress)
        .unwrap();
    let first = CratesEngine.publish(&p, &a.report).unwrap();
    let n = server.docs("wt-incidents").len();
    assert_eq!(n, 2, "{first}");
    CratesEngine.publish(&p, &a.report).unwrap();
    assert_eq!(server.docs("wt-incidents").len(), 2);
}
