//! The source against the in-process server (or a real cluster): every
//! matching document exactly once, across pages and slices, under faults.

mod common;

use common::*;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;
use wiretrail_elastic::{scan, EsConfig, EsError, PitApi, ReadMethod, ScanStats, Tiebreaker};
use wiretrail_testsupport::{Auth, Endpoint, Fault, FaultKind, Flavor, ServerConfig};

const N: usize = 12_000;

async fn scan_ids(
    t: &Target,
    cfg: &EsConfig,
) -> Result<(HashMap<String, u32>, ScanStats), EsError> {
    let client = wiretrail_elastic::EsClient::new(cfg).unwrap();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let _ = t;
    let stats = scan(&client, cfg, &window(), |hits| {
        for h in hits {
            assert!(
                h.source.get("message").is_some(),
                "_source filtering kept the message"
            );
            assert!(
                h.source.get("agent").is_none(),
                "_source filtering dropped agent.*: {}",
                h.source
            );
            if h.id.contains("-e") {
                assert_eq!(
                    h.source.pointer("/log/file/path").and_then(|v| v.as_str()),
                    Some("/var/log/proxy.log"),
                    "log.file.path kept: {}",
                    h.source
                );
                assert!(h.source.pointer("/log/offset").is_some(), "{}", h.source);
            }
            *seen.entry(h.id).or_default() += 1;
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok((seen, stats))
}

fn assert_exactly_once(seen: &HashMap<String, u32>, expected: &[String]) {
    let dup: Vec<_> = seen.iter().filter(|(_, &c)| c != 1).take(5).collect();
    assert!(
        dup.is_empty(),
        "documents delivered more than once: {dup:?}"
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "documents missing (first 5): {missing:?}"
    );
    assert_eq!(seen.len(), expected.len(), "unexpected extra documents");
}

/// Load the corpus, inject faults, scan with the given page size and slices.
async fn run(
    server_cfg: ServerConfig,
    faults: &[Fault],
    page: u32,
    slices: u32,
    test: &str,
) -> Option<ScanStats> {
    let t = target_with(server_cfg);
    if !faults.is_empty() && injectable(&t, test).is_none() {
        return None;
    }
    let c = corpus(N, "c");
    // Two indices: the PIT spans both (two "shards").
    let (a, b) = c.docs.split_at(c.docs.len() / 2);
    t.load("a", a.to_vec()).await;
    t.load("b", b.to_vec()).await;
    if let Some(s) = &t.server {
        for f in faults {
            s.inject(f.clone());
        }
    }
    let cfg = EsConfig {
        page_size: page,
        slices,
        ..t.cfg.clone()
    };
    let (seen, stats) = scan_ids(&t, &cfg)
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    assert_exactly_once(&seen, &c.expected);
    assert_eq!(stats.hits as usize, N);
    if let Some(s) = &t.server {
        assert!(
            faults.is_empty() || s.faults_fired() > 0,
            "{test}: no fault fired"
        );
        assert_eq!(s.open_contexts(), 0, "{test}: PIT/scroll left open");
    }
    t.cleanup().await;
    Some(stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pit_pages_and_slices_without_faults() {
    let s = run(ServerConfig::default(), &[], 700, 1, "plain")
        .await
        .unwrap();
    assert!(s.method.is_pit(), "{s:?}");
    assert!(s.pages >= (N / 700) as u64);
    let s = run(ServerConfig::default(), &[], 500, 4, "sliced")
        .await
        .unwrap();
    assert_eq!(s.slices, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_429_is_retried() {
    let f = [Fault::new(Endpoint::Search, FaultKind::Status(429), 3, 6)];
    if let Some(s) = run(ServerConfig::default(), &f, 500, 3, "429").await {
        assert!(s.retries >= 6, "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_pit_503_are_retried() {
    let f = [
        Fault::new(Endpoint::PitOpen, FaultKind::Status(503), 1, 1),
        Fault::new(Endpoint::Search, FaultKind::Status(503), 4, 5),
        Fault::new(Endpoint::Search, FaultKind::Status(502), 5, 2),
        Fault::new(Endpoint::Search, FaultKind::Status(504), 7, 2),
        Fault::new(Endpoint::Root, FaultKind::Status(503), 1, 1),
    ];
    run(ServerConfig::default(), &f, 500, 2, "503").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_resumes() {
    let f = [Fault::new(Endpoint::Search, FaultKind::Drop, 3, 5)];
    if let Some(s) = run(ServerConfig::default(), &f, 400, 2, "drop").await {
        assert!(s.retries >= 5, "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_pit_is_reopened_and_resumed() {
    let f = [Fault::new(
        Endpoint::Search,
        FaultKind::ExpireContexts,
        6,
        3,
    )];
    if let Some(s) = run(ServerConfig::default(), &f, 500, 1, "expire").await {
        assert!(s.reopens >= 3, "{s:?}");
        assert!(
            s.duplicates_dropped > 0,
            "the restart re-read the last timestamp: {s:?}"
        );
    }
    // Sliced: every slice sees the PIT vanish; one reopens it for all.
    let f = [Fault::new(
        Endpoint::Search,
        FaultKind::ExpireContexts,
        9,
        2,
    )];
    if let Some(s) = run(ServerConfig::default(), &f, 300, 3, "expire-sliced").await {
        assert!(s.reopens >= 2, "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_results_are_never_taken_as_the_end() {
    // A shard lost its context: reopen and resume, nothing missing.
    let f = [Fault::new(
        Endpoint::Search,
        FaultKind::ShardFailure {
            context_missing: true,
        },
        4,
        3,
    )];
    if let Some(s) = run(ServerConfig::default(), &f, 500, 2, "partial-context").await {
        assert!(s.reopens >= 1, "{s:?}");
    }
    // Any other shard failure: an error, not a short result.
    let t = target();
    let Some(server) = injectable(&t, "partial-other") else {
        return;
    };
    t.load("a", corpus(3000, "p").docs).await;
    server.inject(Fault::new(
        Endpoint::Search,
        FaultKind::ShardFailure {
            context_missing: false,
        },
        2,
        1,
    ));
    let e = scan_ids(
        &t,
        &EsConfig {
            page_size: 500,
            ..t.cfg.clone()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("incomplete results: 1 shard(s) failed (node_not_connected_exception"),
        "{e}"
    );
    assert_eq!(server.open_contexts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_and_timeouts() {
    let t = target();
    let Some(server) = injectable(&t, "slow") else {
        return;
    };
    let c = corpus(N, "s");
    t.load("a", c.docs.clone()).await;
    // Slow but within the timeout, and twice beyond it (retried).
    server.inject(Fault::new(
        Endpoint::Search,
        FaultKind::Delay(Duration::from_millis(30)),
        2,
        10,
    ));
    server.inject(Fault::new(
        Endpoint::Search,
        FaultKind::Delay(Duration::from_millis(1500)),
        5,
        2,
    ));
    let cfg = EsConfig {
        page_size: 1000,
        slices: 2,
        timeout_s: 1,
        ..t.cfg.clone()
    };
    let (seen, stats) = scan_ids(&t, &cfg).await.unwrap();
    assert_exactly_once(&seen, &c.expected);
    assert!(stats.retries >= 2, "{stats:?}");
    assert_eq!(server.open_contexts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_fallback_on_opensearch_and_old_es() {
    // The flavor is the in-process server's: a real cluster is what it is.
    if real_cluster().is_some() {
        eprintln!("scroll-fallback: in-process only (needs an old server flavor)");
        return;
    }
    for flavor in [
        Flavor::OpenSearch("2.3.0".into()),
        Flavor::Elasticsearch("7.9.3".into()),
    ] {
        let cfg = ServerConfig {
            flavor: flavor.clone(),
            ..ServerConfig::default()
        };
        let f = [
            Fault::new(Endpoint::Scroll, FaultKind::ExpireContexts, 5, 2),
            Fault::new(Endpoint::Scroll, FaultKind::Drop, 4, 2),
            Fault::new(Endpoint::Search, FaultKind::Status(429), 2, 1),
        ];
        if let Some(s) = run(cfg.clone(), &f, 600, 1, "scroll").await {
            assert_eq!(s.method, ReadMethod::Scroll, "{flavor:?}");
            assert!(s.reopens >= 2);
        }
        if let Some(s) = run(cfg, &[], 600, 3, "scroll-sliced").await {
            assert_eq!(s.method, ReadMethod::Scroll);
        }
    }
}

/// OpenSearch reads through its own point in time with `_doc` as the
/// tiebreaker (before 3.3 there is no `_shard_doc`; from 3.3 it carries no
/// shard ordinal); the PIT is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_point_in_time() {
    if real_cluster().is_some() {
        eprintln!("opensearch-pit: in-process only (the real flavors run the whole suite)");
        return;
    }
    for (version, tiebreaker) in [("2.19.6", Tiebreaker::Doc), ("3.6.0", Tiebreaker::Doc)] {
        let cfg = ServerConfig {
            flavor: Flavor::OpenSearch(version.into()),
            ..ServerConfig::default()
        };
        let f = [
            Fault::new(Endpoint::Search, FaultKind::ExpireContexts, 7, 2),
            Fault::new(Endpoint::Search, FaultKind::Status(429), 3, 2),
            Fault::new(Endpoint::PitOpen, FaultKind::Status(503), 1, 1),
        ];
        for (faults, slices) in [(&f[..], 1), (&[][..], 3)] {
            let s = run(cfg.clone(), faults, 500, slices, "opensearch-pit")
                .await
                .unwrap();
            assert_eq!(
                s.method,
                ReadMethod::Pit {
                    api: PitApi::OpenSearch,
                    tiebreaker
                },
                "{version}"
            );
        }
    }
}

/// Several shards holding documents with the same timestamps in the same
/// order: their `_doc` values are equal too. With a tiebreaker unique only
/// within a shard (OpenSearch < 3.3), a strict `search_after` at a page
/// boundary skips the twins on the later shards; the overlapping pages must
/// not. Run against every real flavor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_across_shards_are_read_exactly_once() {
    let flavors: Vec<Option<Flavor>> = if real_cluster().is_some() {
        vec![None]
    } else {
        vec![
            Some(Flavor::OpenSearch("2.19.6".into())),
            Some(Flavor::OpenSearch("3.6.0".into())),
            Some(Flavor::Elasticsearch("9.2.0".into())),
        ]
    };
    for flavor in flavors {
        let t = target_with(ServerConfig {
            flavor: flavor.clone().unwrap_or(Flavor::Serverless),
            ..ServerConfig::default()
        });
        let mut expected = Vec::new();
        for shard in ["a", "b", "c"] {
            let docs: Vec<(String, serde_json::Value)> = (0..240)
                .map(|i| {
                    // 40 documents per millisecond, identical in every index.
                    let ts = t0() + chrono::Duration::milliseconds(i / 40);
                    let id = format!("{shard}-e{i}");
                    expected.push(id.clone());
                    (
                        id,
                        serde_json::json!({
                        "@timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "message": go_line(ts, 40000 + i as u32, i as usize),
                        "host": { "name": "proxy-0" },
                        "log": { "file": { "path": "/var/log/proxy.log" }, "offset": 200 * i } }),
                    )
                })
                .collect();
            t.load(shard, docs).await;
        }
        for (page, slices) in [(7, 1), (40, 1), (41, 2), (1000, 1)] {
            let cfg = EsConfig {
                page_size: page,
                slices,
                ..t.cfg.clone()
            };
            let (seen, stats) = scan_ids(&t, &cfg)
                .await
                .unwrap_or_else(|e| panic!("{flavor:?} page {page}: {e}"));
            let lost = expected.iter().filter(|id| !seen.contains_key(*id)).count();
            assert_eq!(
                lost, 0,
                "{flavor:?} {:?} page {page} slices {slices}: {lost} documents skipped",
                stats.method
            );
            assert_exactly_once(&seen, &expected);
        }
        if let Some(s) = &t.server {
            assert_eq!(s.open_contexts(), 0);
        }
        t.cleanup().await;
    }
}

/// `GET /` (or the node info when `GET /` is not routed) decides how the
/// cluster is read. On a real cluster `WIRETRAIL_TEST_ES_FLAVOR` (es8, es9,
/// os2, os3: `.ci/run` sets it) says what it must have found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flavor_decides_the_read_method() {
    use wiretrail_elastic::Flavor as F;
    let es_pit = ReadMethod::Pit {
        api: PitApi::Elasticsearch,
        tiebreaker: Tiebreaker::ShardDoc,
    };
    let os_pit = ReadMethod::Pit {
        api: PitApi::OpenSearch,
        tiebreaker: Tiebreaker::Doc,
    };
    if real_cluster().is_some() {
        let t = target();
        let flavor = wiretrail_elastic::source::detect(&t.client())
            .await
            .unwrap();
        let want = std::env::var("WIRETRAIL_TEST_ES_FLAVOR").unwrap_or_default();
        let ok = match want.as_str() {
            "es8" => matches!(flavor, F::Elasticsearch { major: 8, .. }),
            "es9" => matches!(flavor, F::Elasticsearch { major: 9, .. }),
            "os2" => matches!(flavor, F::OpenSearch { major: 2, .. }),
            "os3" => matches!(flavor, F::OpenSearch { major: 3, .. }),
            "" => true,
            other => panic!("WIRETRAIL_TEST_ES_FLAVOR={other}: es8, es9, os2 or os3"),
        };
        assert!(ok, "expected {want}, GET / says {flavor:?}");
        let m = flavor.read_method();
        assert!(m == es_pit || m == os_pit, "{flavor:?} -> {m:?}");
        eprintln!("real cluster: {flavor:?} read by {m}");
        return;
    }
    for (flavor, not_routed, want_flavor, want) in [
        (
            Flavor::Elasticsearch("9.2.0".into()),
            false,
            F::Elasticsearch { major: 9, minor: 2 },
            es_pit,
        ),
        (
            Flavor::Elasticsearch("9.2.0".into()),
            true,
            F::Elasticsearch { major: 9, minor: 2 },
            es_pit,
        ),
        (
            Flavor::Elasticsearch("7.11.2".into()),
            false,
            F::Elasticsearch {
                major: 7,
                minor: 11,
            },
            ReadMethod::Pit {
                api: PitApi::Elasticsearch,
                tiebreaker: Tiebreaker::Doc,
            },
        ),
        (
            Flavor::Elasticsearch("7.9.3".into()),
            false,
            F::Elasticsearch { major: 7, minor: 9 },
            ReadMethod::Scroll,
        ),
        (
            Flavor::OpenSearch("2.19.6".into()),
            false,
            F::OpenSearch {
                major: 2,
                minor: 19,
            },
            os_pit,
        ),
        (
            Flavor::OpenSearch("3.6.0".into()),
            false,
            F::OpenSearch { major: 3, minor: 6 },
            os_pit,
        ),
        (
            Flavor::OpenSearch("2.3.0".into()),
            false,
            F::OpenSearch { major: 2, minor: 3 },
            ReadMethod::Scroll,
        ),
    ] {
        let t = target_with(ServerConfig {
            flavor,
            root_not_routed: not_routed,
            ..ServerConfig::default()
        });
        let got = wiretrail_elastic::source::detect(&t.client())
            .await
            .unwrap();
        assert_eq!(got, want_flavor, "not routed: {not_routed}");
        assert_eq!(got.read_method(), want);
        if want != ReadMethod::Scroll {
            // And it reads, exactly once.
            let c = corpus(900, "fl");
            t.load("a", c.docs.clone()).await;
            let (seen, stats) = scan_ids(
                &t,
                &EsConfig {
                    page_size: 100,
                    ..t.cfg.clone()
                },
            )
            .await
            .unwrap();
            assert_exactly_once(&seen, &c.expected);
            assert_eq!(stats.method, want);
            assert_eq!(t.server.as_ref().unwrap().open_contexts(), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_root_assumes_pit() {
    let t = target_with(ServerConfig {
        forbid_root: true,
        ..ServerConfig::default()
    });
    let Some(_) = injectable(&t, "forbidden-root") else {
        return;
    };
    let c = corpus(3000, "f");
    t.load("a", c.docs.clone()).await;
    let (seen, stats) = scan_ids(&t, &t.cfg).await.unwrap();
    assert_exactly_once(&seen, &c.expected);
    assert!(stats.method.is_pit(), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_error_names_the_request_and_closes_the_pit() {
    let t = target();
    let Some(server) = injectable(&t, "fatal") else {
        return;
    };
    t.load("a", corpus(3000, "x").docs).await;
    server.inject(Fault::new(Endpoint::Search, FaultKind::Status(400), 2, 1));
    let e = scan_ids(
        &t,
        &EsConfig {
            page_size: 500,
            ..t.cfg.clone()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("POST /_search: cluster answered 400"), "{e}");
    assert_eq!(server.open_contexts(), 0, "PIT closed on error");

    // Retries are bounded: a cluster that keeps answering 503 is reported.
    server.clear_faults();
    server.inject(Fault::new(
        Endpoint::Search,
        FaultKind::Status(503),
        1,
        1000,
    ));
    let cfg = EsConfig {
        retry: wiretrail_elastic::RetryPolicy {
            max_retries: 3,
            initial_ms: 1,
            max_ms: 5,
            max_elapsed_s: 10,
        },
        ..t.cfg.clone()
    };
    let e = scan_ids(&t, &cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("503 cluster_block_exception: blocked by: [SERVICE_UNAVAILABLE/2/no master];")
            && e.contains("after 4 attempt(s)"),
        "{e}"
    );
    assert_eq!(server.open_contexts(), 0);

    // A missing index: 404 with its reason.
    let cfg = EsConfig {
        index: "nope-logs".into(),
        ..t.cfg.clone()
    };
    let e = scan_ids(&t, &cfg).await.unwrap_err().to_string();
    assert!(e.contains("POST /nope-logs/_pit: cluster answered 404 index_not_found_exception: no such index [nope-logs]"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_in_errors() {
    let password = "pw-Zq83-never-print-me";
    for auth in [
        Auth::Basic {
            user: "elastic".into(),
            password: password.into(),
        },
        Auth::ApiKey("aWQ6cHctWnE4My1uZXZlci1wcmludC1tZQ==".into()),
        Auth::Bearer(password.into()),
    ] {
        let t = target_with(ServerConfig {
            auth: Some(auth.clone()),
            ..ServerConfig::default()
        });
        let Some(server) = injectable(&t, "secrets") else {
            return;
        };
        // Right credentials (through a credentials file) work.
        let dir = std::env::temp_dir().join(format!("wt-es-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("creds");
        let line = |s: &str| match &auth {
            Auth::Basic { user, .. } => format!("user={user}\npassword={s}\n"),
            Auth::ApiKey(_) => format!("api_key={s}\n"),
            Auth::Bearer(_) => format!("bearer={s}\n"),
        };
        let right = match &auth {
            Auth::ApiKey(k) => k.clone(),
            _ => password.to_string(),
        };
        std::fs::write(&file, line(&right)).unwrap();
        let mut cfg = t.cfg.clone();
        cfg.auth.credentials_file = Some(file.clone());
        t.load("a", corpus(300, "a").docs).await;
        let (seen, _) = scan_ids(&t, &cfg).await.unwrap();
        assert_eq!(seen.len(), 300);
        // Wrong ones: 401, and neither secret shows in the message.
        let wrong = "wrong-Kx91-secret";
        std::fs::write(&file, line(wrong)).unwrap();
        let e = scan_ids(&t, &cfg).await.unwrap_err();
        let msg = format!("{e} {e:?}");
        assert!(
            msg.contains("401") && msg.contains("security_exception"),
            "{msg}"
        );
        assert!(
            !msg.contains(wrong) && !msg.contains(password) && !msg.contains(&right),
            "{msg}"
        );
        // The server did receive the header: the secret was sent, just never shown.
        assert!(server
            .requests()
            .iter()
            .any(|r| r.status == 401 && r.authorization.is_some()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Issue 14 D8: a server or proxy that echoes the request's headers in its
/// error body must not make wiretrail print the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_credentials_are_never_printed() {
    let password = "pw-Echo-5521";
    for auth in [
        Auth::Basic {
            user: "elastic".into(),
            password: password.into(),
        },
        Auth::ApiKey("ZWNob2lkOnB3LUVjaG8tNTUyMQ==".into()),
        Auth::Bearer(format!("tok-{password}")),
    ] {
        let t = target_with(ServerConfig {
            auth: Some(auth.clone()),
            ..ServerConfig::default()
        });
        let Some(server) = injectable(&t, "echoed-credentials") else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("wt-es-echo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("creds");
        let (line, header) = match &auth {
            Auth::Basic { user, password } => {
                use base64::Engine as _;
                let b64 =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                (format!("user={user}\npassword={password}\n"), b64)
            }
            Auth::ApiKey(k) => (format!("api_key={k}\n"), k.clone()),
            Auth::Bearer(tok) => (format!("bearer={tok}\n"), tok.clone()),
        };
        std::fs::write(&file, line).unwrap();
        let mut cfg = t.cfg.clone();
        cfg.auth.credentials_file = Some(file);
        cfg.retry.max_retries = 1;
        t.load("a", corpus(300, "a").docs).await;
        for status in [400, 502] {
            server.clear_faults();
            server.inject(Fault::new(
                Endpoint::Search,
                FaultKind::EchoHeaders(status),
                1,
                100,
            ));
            let e = scan_ids(&t, &cfg).await.unwrap_err();
            let msg = format!("{e} | {e:?}");
            assert!(msg.contains(&status.to_string()), "{msg}");
            for secret in [password, header.as_str(), "ZWxhc3RpYz", "ZWNob2lk"] {
                assert!(!msg.contains(secret), "{status}: {secret} printed: {msg}");
            }
            assert!(msg.contains("[redacted]"), "{msg}");
        }
        assert!(server.faults_fired() > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_filter_and_custom_field_names() {
    let t = target();
    let c = corpus(3000, "h");
    t.load("a", c.docs.clone()).await;
    let cfg = EsConfig {
        hosts: vec!["proxy-1".into()],
        ..t.cfg.clone()
    };
    let (seen, _) = scan_ids(&t, &cfg).await.unwrap();
    let want: Vec<String> = c
        .expected
        .iter()
        .filter(|id| id[3..].parse::<usize>().unwrap() % 2 == 1)
        .cloned()
        .collect();
    assert_exactly_once(&seen, &want);

    // A shipper with other names: `ts` and `log_line`.
    let renamed: Vec<_> = c
        .docs
        .iter()
        .map(|(id, d)| (id.clone(), serde_json::json!({ "ts": d["@timestamp"], "log_line": d["message"], "agent": { "hostname": d["host"]["name"] } })))
        .collect();
    t.load("renamed", renamed).await;
    let mut cfg = EsConfig {
        index: format!("{}-logs-renamed", t.prefix),
        ..t.cfg.clone()
    };
    cfg.fields.timestamp = "ts".into();
    cfg.fields.message = "log_line".into();
    cfg.fields.host = "agent.hostname".into();
    let client = wiretrail_elastic::EsClient::new(&cfg).unwrap();
    let pc = wiretrail_logs::ParseConfig::new(Some(chrono_tz::UTC));
    let mut errors = Vec::new();
    let stats = wiretrail_elastic::fetch_errors(
        &client,
        &cfg,
        &window(),
        &pc,
        |e| {
            errors.push(e);
            ControlFlow::Continue(())
        },
        |m| panic!("malformed {m:?}"),
    )
    .await
    .unwrap();
    assert_eq!(stats.errors as usize, c.expected.len());
    assert_eq!(errors.len(), c.expected.len());
    let e = errors.iter().find(|e| matches!(&e.source, wiretrail_logs::Source::Elasticsearch { id, .. } if id == "h-e3")).unwrap();
    assert_eq!(e.host.as_deref(), Some("proxy-1"));
    assert_eq!(e.local.as_deref(), Some("10.1.1.5:30003"));
    assert_eq!(e.remote.as_deref(), Some("10.2.0.7:80"));
    assert_eq!(e.class, wiretrail_logs::ErrorClass::Reset);
    assert_eq!(e.timestamp, t0() + chrono::Duration::milliseconds(8));
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_counts_non_errors() {
    let t = target();
    let c = corpus(900, "n");
    let mut docs = c.docs.clone();
    // Contains the phrase (so the query returns it) but is no proxy error line.
    for i in 0..7 {
        let ts = (t0() + chrono::Duration::seconds(i)).to_rfc3339();
        docs.push((format!("n-talk{i}"), serde_json::json!({ "@timestamp": ts, "message": "alert: too many `http: proxy error` lines today", "host": { "name": "proxy-0" } })));
    }
    t.load("a", docs).await;
    let client = t.client();
    let pc = wiretrail_logs::ParseConfig::new(Some(chrono_tz::UTC));
    let mut n = 0;
    let stats = wiretrail_elastic::fetch_errors(
        &client,
        &t.cfg,
        &window(),
        &pc,
        |e| {
            n += 1;
            // Where the shipper read the line travels with the record.
            match &e.source {
                wiretrail_logs::Source::Elasticsearch {
                    id, path, offset, ..
                } => {
                    let i: u64 = id.trim_start_matches("n-e").parse().unwrap();
                    assert_eq!(path.as_deref(), Some("/var/log/proxy.log"), "{id}");
                    assert_eq!(*offset, Some(4096 * i), "{id}");
                }
                other => panic!("{other:?}"),
            }
            ControlFlow::Continue(())
        },
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (stats.errors, stats.not_proxy_error, stats.malformed),
        (900, 7, 0)
    );
    assert_eq!(n, 900);
    t.cleanup().await;
}
