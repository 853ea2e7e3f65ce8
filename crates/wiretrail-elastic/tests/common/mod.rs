//! Where the integration tests run: the in-process server (default), or a
//! real cluster when `WIRETRAIL_TEST_ES_URL` is set (credentials from the
//! usual `WIRETRAIL_ES_*` variables, TLS CA from `WIRETRAIL_TEST_ES_CA`).
//! Tests that need fault injection skip themselves on a real cluster.

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use wiretrail_elastic::ecs::EsDoc;
use wiretrail_elastic::{sink, EsClient, EsConfig, RetryPolicy, TimeRange};
use wiretrail_testsupport::{EsServer, ServerConfig};

pub struct Target {
    pub server: Option<EsServer>,
    pub cfg: EsConfig,
    /// Unique per test, so runs against a real cluster do not collide.
    pub prefix: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        initial_ms: 5,
        max_ms: 50,
        max_elapsed_s: 60,
    }
}

pub fn real_cluster() -> Option<String> {
    std::env::var("WIRETRAIL_TEST_ES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The in-process server with this config, or the real cluster (the
/// server config is then ignored).
pub fn target_with(server_cfg: ServerConfig) -> Target {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("wiretrail-test-{}-{n}", std::process::id());
    let mut cfg = EsConfig {
        retry: fast_retry(),
        timeout_s: 10,
        keep_alive: "1m".into(),
        ..EsConfig::default()
    };
    cfg.sink.index_prefix = prefix.clone();
    cfg.index = format!("{prefix}-logs-*");
    match real_cluster() {
        Some(url) => {
            cfg.url = url;
            cfg.tls.ca_file = std::env::var("WIRETRAIL_TEST_ES_CA").ok().map(Into::into);
            cfg.auth.credentials_file = std::env::var("WIRETRAIL_TEST_ES_CREDENTIALS")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Into::into);
            cfg.sink.refresh = true;
            Target {
                server: None,
                cfg,
                prefix,
            }
        }
        None => {
            let server = EsServer::start(server_cfg).expect("start test server");
            cfg.url = server.url();
            cfg.auth.no_env = true;
            Target {
                server: Some(server),
                cfg,
                prefix,
            }
        }
    }
}

pub fn target() -> Target {
    target_with(ServerConfig::default())
}

/// The in-process server, or `None` with a message when on a real cluster:
/// fault injection exists only in-process, and the in-process run of the
/// same suite (always part of `cargo test`) covers these tests. Nothing is
/// missing, so this is no skip in the sense of `require_or_skip`.
pub fn injectable<'a>(t: &'a Target, test: &str) -> Option<&'a EsServer> {
    if t.server.is_none() {
        eprintln!("{test}: in-process only (fault injection); covered by the in-process run");
    }
    t.server.as_ref()
}

impl Target {
    pub fn client(&self) -> EsClient {
        EsClient::new(&self.cfg).expect("client")
    }

    /// Load source documents into `<prefix>-logs-<suffix>`.
    pub async fn load(&self, suffix: &str, docs: Vec<(String, Value)>) {
        let index = format!("{}-logs-{suffix}", self.prefix);
        match &self.server {
            Some(s) => s.add_docs(&index, docs),
            None => {
                let client = self.client();
                let mappings = json!({ "mappings": { "properties": {
                    "@timestamp": { "type": "date" }, "message": { "type": "text" },
                    "host": { "properties": { "name": { "type": "keyword" } } } } } });
                let parts = [index.as_str()];
                let r = client
                    .es()
                    .indices()
                    .create(elasticsearch::indices::IndicesCreateParts::Index(parts[0]))
                    .body(mappings)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    r.status_code().is_success(),
                    "create {index}: {}",
                    r.text().await.unwrap()
                );
                let sink_cfg = wiretrail_elastic::SinkConfig {
                    bulk_max_docs: 2000,
                    ..self.cfg.sink.clone()
                };
                let mut counts = sink::Counts::default();
                let docs = docs.into_iter().map(|(id, source)| EsDoc {
                    index: index.clone(),
                    id,
                    source,
                });
                sink::publish_docs(&client, &sink_cfg, docs, &mut counts)
                    .await
                    .unwrap();
                assert!(counts.failed.is_empty(), "{:?}", counts.failed);
                client
                    .es()
                    .indices()
                    .refresh(elasticsearch::indices::IndicesRefreshParts::Index(&parts))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Number of documents in an index (after a refresh).
    pub async fn count(&self, index: &str) -> u64 {
        let client = self.client();
        let parts = [index];
        client
            .es()
            .indices()
            .refresh(elasticsearch::indices::IndicesRefreshParts::Index(&parts))
            .send()
            .await
            .unwrap();
        let r = client
            .es()
            .count(elasticsearch::CountParts::Index(&parts))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("count {index}: {v}"))
    }

    /// Delete what this test created on a real cluster.
    pub async fn cleanup(&self) {
        if self.server.is_some() {
            return;
        }
        let client = self.client();
        // By name: Elasticsearch 8+ refuses wildcard deletes
        // (`action.destructive_requires_name` defaults to true).
        let pattern = format!("{}-*", self.prefix);
        let r = client
            .es()
            .indices()
            .get(elasticsearch::indices::IndicesGetParts::Index(&[
                pattern.as_str()
            ]))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let names: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if !names.is_empty() {
            let r = client
                .es()
                .indices()
                .delete(elasticsearch::indices::IndicesDeleteParts::Index(&names))
                .send()
                .await
                .unwrap();
            assert!(
                r.status_code().is_success(),
                "cleanup: delete {names:?}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        for t in ["incidents", "events"] {
            let name = format!("{}-{t}", self.prefix);
            let _ = client
                .es()
                .indices()
                .delete_index_template(
                    elasticsearch::indices::IndicesDeleteIndexTemplateParts::Name(&name),
                )
                .send()
                .await;
        }
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 5, 5, 9, 0, 0).unwrap()
}

/// The scan window used by [`corpus`].
pub fn window() -> TimeRange {
    TimeRange {
        since: t0(),
        until: t0() + Duration::hours(2),
    }
}

/// Proxy error messages as Go's `log` prints them (from the seed incident).
pub fn go_line(t: DateTime<Utc>, port: u32, kind: usize) -> String {
    let stamp = t.format("%Y/%m/%d %H:%M:%S");
    let l = format!("10.1.1.5:{port}");
    match kind % 3 {
        0 => format!("{stamp} http: proxy error: read tcp {l}->10.2.0.7:80: read: connection reset by peer"),
        1 => format!("{stamp} http: proxy error: readfrom tcp {l}->10.2.0.7:80: write tcp {l}->10.2.0.7:80: write: broken pipe"),
        _ => format!("{stamp} http: proxy error: readfrom tcp {l}->10.2.0.7:80: write tcp {l}->10.2.0.7:80: use of closed network connection"),
    }
}

pub struct Corpus {
    pub docs: Vec<(String, Value)>,
    /// Ids that a scan of [`window`] must return.
    pub expected: Vec<String>,
}

/// `n` matching documents in the window (several per millisecond, so the
/// tiebreaker matters), plus documents without the phrase and documents
/// outside the window, which must not come back.
pub fn corpus(n: usize, tag: &str) -> Corpus {
    let mut docs = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        // 3 documents share each millisecond.
        let t = t0() + Duration::milliseconds((i / 3) as i64 * 7 + 1);
        let id = format!("{tag}-e{i}");
        docs.push((id.clone(), json!({ "@timestamp": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "message": go_line(t, 30000 + (i as u32 % 30000), i), "host": { "name": format!("proxy-{}", i % 2) },
            "log": { "file": { "path": "/var/log/proxy.log" }, "offset": 4096 * i },
            "agent": { "ephemeral_id": "8d4b6c0e", "version": "8.11.1" } })));
        expected.push(id);
    }
    for i in 0..n / 20 {
        let t = t0() + Duration::milliseconds(i as i64 * 13);
        docs.push((format!("{tag}-ok{i}"), json!({ "@timestamp": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "message": format!("{} GET /healthz 200", t.format("%Y/%m/%d %H:%M:%S")), "host": { "name": "proxy-0" } })));
    }
    for i in 0..n / 40 {
        let t = t0() - Duration::minutes(5) + Duration::milliseconds(i as i64);
        docs.push((
            format!("{tag}-early{i}"),
            json!({ "@timestamp": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "message": go_line(t, 20000, i), "host": { "name": "proxy-0" } }),
        ));
    }
    Corpus { docs, expected }
}
