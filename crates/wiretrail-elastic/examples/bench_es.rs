//! Benchmark: hits/s scanned (PIT + search_after, parsed into proxy errors)
//! and documents/s published (`_bulk`), with the process's peak RSS, so runs
//! at 1M and 5M hits show whether memory stays flat. Run through
//! `scripts/bench-es.sh`.
//!
//! `bench_es scan N SLICES PAGE` | `bench_es publish N BATCH`
//!
//! Against the in-process server by default (documents generated on the
//! fly); against a real cluster when `WIRETRAIL_BENCH_ES_URL` is set
//! (credentials: `WIRETRAIL_TEST_ES_CREDENTIALS`, a `KEY=VALUE` file): `scan`
//! first bulk-loads the N documents into an index of its own (timed
//! separately, as `load`), `publish` writes into indices typed by the
//! installed templates; both delete what they created.

use chrono::{TimeZone, Utc};
use serde_json::json;
use std::ops::ControlFlow;
use std::time::Instant;
use wiretrail_elastic::ecs::EsDoc;
use wiretrail_elastic::elasticsearch;
use wiretrail_elastic::{sink, EsClient, EsConfig, TimeRange};
use wiretrail_testsupport::es::Generated;
use wiretrail_testsupport::{EsServer, ServerConfig};

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("scan");
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let real = std::env::var("WIRETRAIL_BENCH_ES_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let server = match real {
        Some(_) => None,
        None => Some(
            EsServer::start(ServerConfig {
                rotate_pit_id: false,
                ..ServerConfig::default()
            })
            .unwrap(),
        ),
    };
    let tag = format!("wiretrail-bench-{}", std::process::id());
    let t0 = Utc.with_ymd_and_hms(2023, 5, 5, 0, 0, 0).unwrap();
    let mut cfg = EsConfig {
        url: real
            .clone()
            .unwrap_or_else(|| server.as_ref().unwrap().url()),
        index: if real.is_some() {
            format!("{tag}-logs")
        } else {
            "logs-bench".into()
        },
        timeout_s: 120,
        ..EsConfig::default()
    };
    cfg.auth.no_env = true;
    cfg.auth.credentials_file = std::env::var("WIRETRAIL_TEST_ES_CREDENTIALS")
        .ok()
        .filter(|s| !s.is_empty())
        .map(Into::into);
    cfg.sink.index_prefix = tag.clone();
    let flavor = rt
        .block_on(async { wiretrail_elastic::source::detect(&EsClient::new(&cfg)?).await })
        .unwrap();
    let target = match &real {
        Some(u) => format!("{flavor:?} at {u}"),
        None => "in-process server".into(),
    };
    match mode {
        "scan" => {
            let slices: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            let page: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1000);
            let make = |i: u64, ts: i64| {
                let t = chrono::DateTime::from_timestamp_nanos(ts);
                let port = 1024 + i % 60000;
                json!({
                    "@timestamp": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "message": format!("{} http: proxy error: read tcp 10.1.1.5:{port}->10.2.0.7:80: read: connection reset by peer", t.format("%Y/%m/%d %H:%M:%S")),
                    "host": { "name": "proxy-1" },
                    "agent": { "type": "filebeat", "version": "8.17.0" },
                })
            };
            let start_ns = t0.timestamp_nanos_opt().unwrap();
            match &server {
                Some(server) => server.add_generated(
                    "logs-bench",
                    Generated {
                        count: n,
                        start_ns,
                        step_ns: 1_000_000,
                        ts_field: "@timestamp".into(),
                        make: Box::new(make),
                    },
                ),
                None => {
                    let started = Instant::now();
                    rt.block_on(load(&cfg, n, start_ns, make));
                    let secs = started.elapsed().as_secs_f64();
                    println!(
                        "load ({target}): {n} docs by _bulk (batches of 5000, then refresh): {secs:.2} s, {:.0} docs/s",
                        n as f64 / secs
                    );
                }
            }
            cfg.slices = slices;
            cfg.page_size = page;
            let range = TimeRange {
                since: t0,
                until: t0 + chrono::Duration::days(200),
            };
            let parse = wiretrail_logs::ParseConfig::new(Some(chrono_tz::UTC));
            let started = Instant::now();
            let stats = rt
                .block_on(async {
                    let client = EsClient::new(&cfg)?;
                    wiretrail_elastic::fetch_errors(
                        &client,
                        &cfg,
                        &range,
                        &parse,
                        |_| ControlFlow::Continue(()),
                        |_| {},
                    )
                    .await
                })
                .unwrap();
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(stats.scan.hits, n, "every hit once");
            assert_eq!(stats.errors, n);
            println!(
                "scan ({target}, {}): {n} hits, {} slice(s), page {page}: {secs:.2} s, {:.0} hits/s, peak RSS {:.1} MiB",
                stats.scan.method,
                slices,
                n as f64 / secs,
                peak_rss_mib()
            );
        }
        "publish" => {
            let batch: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
            cfg.sink.bulk_max_docs = batch;
            let index = cfg.sink.events_index();
            let docs = (0..n).map(|i| EsDoc {
                index: index.clone(),
                id: format!("inc-1-{i:08}"),
                source: json!({ "@timestamp": "2023-05-05T17:33:07.481516000Z", "message": "proxy → backend [ACK,PSH] seq=1 ack=1 win=502 len=517",
                    "host": { "name": "backend-01" }, "source": { "ip": "10.1.1.5", "port": 51392 }, "destination": { "ip": "10.2.0.7", "port": 80 },
                    "network": { "transport": "tcp", "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" },
                    "wiretrail": { "incident_id": "inc-1", "event_index": i, "packet": { "seq": 1, "ack": 1, "len": 517 } } }),
            });
            let started = Instant::now();
            let counts = rt
                .block_on(async {
                    let client = EsClient::new(&cfg)?;
                    if real.is_some() {
                        // Typed as `publish` writes them (templates first).
                        sink::setup(&client, &cfg.sink, false).await?;
                    }
                    let mut counts = sink::Counts::default();
                    sink::publish_docs(&client, &cfg.sink, docs, &mut counts)
                        .await
                        .map(|_| counts)
                })
                .unwrap();
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(counts.created, n);
            println!("publish ({target}): {n} docs, batches of {batch}: {secs:.2} s, {:.0} docs/s, {} requests, peak RSS {:.1} MiB", n as f64 / secs, counts.requests, peak_rss_mib());
        }
        other => panic!("unknown mode {other} (scan | publish)"),
    }
    if real.is_some() {
        rt.block_on(cleanup(&cfg, &tag));
    }
}

/// Bulk-load `n` generated documents into `cfg.index` (real clusters).
async fn load(cfg: &EsConfig, n: u64, start_ns: i64, make: impl Fn(u64, i64) -> serde_json::Value) {
    let client = EsClient::new(cfg).unwrap();
    let r = client
        .es()
        .indices()
        .create(elasticsearch::indices::IndicesCreateParts::Index(&cfg.index))
        .body(json!({ "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
            "mappings": { "properties": { "@timestamp": { "type": "date" }, "message": { "type": "text" },
            "host": { "properties": { "name": { "type": "keyword" } } } } } }))
        .send()
        .await
        .unwrap();
    assert!(
        r.status_code().is_success(),
        "create {}: {}",
        cfg.index,
        r.text().await.unwrap()
    );
    let sink_cfg = wiretrail_elastic::SinkConfig {
        bulk_max_docs: 5000,
        ..cfg.sink.clone()
    };
    let docs = (0..n).map(|i| EsDoc {
        index: cfg.index.clone(),
        id: format!("g{i}"),
        source: make(i, start_ns + i as i64 * 1_000_000),
    });
    let mut counts = sink::Counts::default();
    sink::publish_docs(&client, &sink_cfg, docs, &mut counts)
        .await
        .unwrap();
    assert_eq!(counts.created, n, "{:?}", counts.failed.first());
    client
        .es()
        .indices()
        .refresh(elasticsearch::indices::IndicesRefreshParts::Index(&[
            &cfg.index
        ]))
        .send()
        .await
        .unwrap();
}

/// Delete the bench's indices (by name) and templates.
async fn cleanup(cfg: &EsConfig, tag: &str) {
    let client = EsClient::new(cfg).unwrap();
    let names = [
        cfg.index.clone(),
        cfg.sink.incidents_index(),
        cfg.sink.events_index(),
    ];
    for name in &names {
        let _ = client
            .es()
            .indices()
            .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[name]))
            .send()
            .await;
    }
    for t in ["incidents", "events"] {
        let name = format!("{tag}-{t}");
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
