//! The Elasticsearch path end to end: the demo proxy's log lines as Filebeat
//! shipped them (`examples/data/demo/logs/proxy.ndjson`: `@timestamp`,
//! `message`, `host.name`, `log.file.path`, `log.offset`) bulk-loaded into a
//! `filebeat-*` index → `wiretrail investigate` with the Elasticsearch log
//! source over a pipeline file → incidents and timeline events published →
//! the queries a Kibana user runs find them (`term` on `wiretrail.cause`,
//! `range` on `@timestamp`, a `terms` aggregation on the backend, `ip` and
//! `date_nanos` fields typed by the installed templates), and publishing the
//! same report again leaves the counts unchanged.
//!
//! Against the in-process contract server by default; against a real
//! cluster when `WIRETRAIL_TEST_ES_URL` is set (`.ci/run` does it once per
//! flavor started by `scripts/search-server.sh`; credentials from
//! `WIRETRAIL_TEST_ES_CREDENTIALS`, a `KEY=VALUE` file).

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wiretrail_elastic::{EsClient, EsConfig};
use wiretrail_testsupport::{EsServer, ServerConfig};

struct Cluster {
    /// The in-process server, kept alive for the test; `None` on a real cluster.
    server: Option<EsServer>,
    url: String,
    credentials: Option<PathBuf>,
    rt: tokio::runtime::Runtime,
    client: EsClient,
}

impl Cluster {
    fn new() -> Cluster {
        let real = std::env::var("WIRETRAIL_TEST_ES_URL")
            .ok()
            .filter(|s| !s.is_empty());
        let (server, url) = match real {
            Some(u) => (None, u),
            None => {
                let s = EsServer::start(ServerConfig::default()).expect("test server");
                let u = s.url();
                (Some(s), u)
            }
        };
        let credentials = std::env::var("WIRETRAIL_TEST_ES_CREDENTIALS")
            .ok()
            .filter(|s| !s.is_empty() && server.is_none())
            .map(PathBuf::from);
        let mut cfg = EsConfig {
            url: url.clone(),
            ..EsConfig::default()
        };
        cfg.auth.no_env = true;
        cfg.auth.credentials_file = credentials.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = EsClient::new(&cfg).expect("client");
        Cluster {
            server,
            url,
            credentials,
            rt,
            client,
        }
    }

    fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// A raw request: (status, JSON body).
    fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        use wiretrail_elastic::elasticsearch::http::{
            headers::HeaderMap, request::JsonBody, Method,
        };
        let m = match method {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            other => panic!("method {other}"),
        };
        self.rt.block_on(async {
            let r = self
                .client
                .es()
                .send(
                    m,
                    path,
                    HeaderMap::new(),
                    None::<&()>,
                    body.map(JsonBody::new),
                    None,
                )
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let status = r.status_code().as_u16();
            let text = r.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (st, v) = self.req(method, path, body);
        assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
        v
    }

    fn count(&self, index: &str, query: Value) -> u64 {
        self.ok("POST", &format!("/{index}/_refresh"), None);
        let v = self.ok(
            "POST",
            &format!("/{index}/_count"),
            Some(json!({ "query": query })),
        );
        v["count"].as_u64().unwrap_or_else(|| panic!("count: {v}"))
    }

    /// Bulk-load the demo's Filebeat documents into `index`, created first
    /// with the field types Filebeat's template gives them.
    fn load_filebeat(&self, index: &str) -> usize {
        self.ok(
            "PUT",
            &format!("/{index}"),
            Some(json!({ "mappings": { "properties": {
                "@timestamp": { "type": "date" },
                "message": { "type": "text" },
                "host": { "properties": { "name": { "type": "keyword" } } },
                "log": { "properties": { "file": { "properties": { "path": { "type": "keyword" } } },
                                         "offset": { "type": "long" } } },
                "process": { "properties": { "name": { "type": "keyword" }, "pid": { "type": "long" } } } } } })),
        );
        let text =
            std::fs::read_to_string(root().join("examples/data/demo/logs/proxy.ndjson")).unwrap();
        let mut body = String::new();
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let doc: Value = serde_json::from_str(line).expect("a Filebeat document");
            body.push_str(
                &json!({ "create": { "_index": index, "_id": format!("fb-{n}") } }).to_string(),
            );
            body.push('\n');
            body.push_str(&doc.to_string());
            body.push('\n');
            n += 1;
        }
        let r = self.rt.block_on(async {
            let r = self
                .client
                .es()
                .bulk(wiretrail_elastic::elasticsearch::BulkParts::None)
                .refresh(wiretrail_elastic::elasticsearch::params::Refresh::True)
                .body(vec![body])
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        });
        assert_eq!(r["errors"], json!(false), "bulk: {r}");
        n
    }

    fn cleanup(&self, indices: &[String], templates: &[String]) {
        if !self.is_real() {
            return;
        }
        for i in indices {
            let _ = self.req("DELETE", &format!("/{i}"), None);
        }
        for t in templates {
            let _ = self.req("DELETE", &format!("/_index_template/{t}"), None);
        }
    }
}

/// The pipeline file: the demo's nodes and window, logs from the cluster,
/// reports published back to it.
fn write_pipeline(dir: &Path, c: &Cluster, source_index: &str, prefix: &str) -> PathBuf {
    let demo = root().join("examples/data/demo/captures");
    let node = |name: &str, role: &str, alias: bool| {
        format!(
            "[[nodes]]\nname = \"{name}\"\nrole = \"{role}\"\ncaptures = \"{}\"\n{}\n",
            demo.join(name).display(),
            if alias {
                "aliases = [\"198.18.10.10\"]\n"
            } else {
                ""
            }
        )
    };
    let auth = match &c.credentials {
        Some(f) => format!("credentials_file = \"{}\"\n", f.display()),
        None => "no_env = true\n".into(),
    };
    let text = format!(
        r#"name = "demo-es"
tz = "UTC"

[logs]
source = "elasticsearch"

[elasticsearch]
url = "{url}"
index = "{source_index}"
# Several pages even for the demo's 18 documents.
page_size = 4
keep_alive = "1m"
timeout_s = 30

[elasticsearch.auth]
{auth}
[elasticsearch.sink]
index_prefix = "{prefix}"
refresh = true

{proxy}{b1}{b2}{b3}
[correlate]
incident_gap = "30s"
max_clock_offset = "10s"
proxy_ip = "198.18.0.2"
upstreams = ["198.18.10.10:80"]

[window]
before = "5m"
after = "30s"
since = "2026-11-25T00:30:00Z"
until = "2026-11-25T00:40:00Z"

[outputs]
terminal = false
json = "{json}"
elasticsearch = true
"#,
        url = c.url,
        proxy = node("proxy", "proxy", false),
        b1 = node("backend-01", "backend", true),
        b2 = node("backend-02", "backend", true),
        b3 = node("backend-03", "backend", true),
        json = dir.join("report.json").display(),
    );
    let p = dir.join("demo-es.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// What `published:` said: the summary's counters.
fn published(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("published:"))
        .unwrap_or_else(|| panic!("no `published:` line:\n{stderr}"));
    let mut out = BTreeMap::new();
    for key in ["incidents", "events", "indexed", "created", "updated"] {
        let at = line
            .find(&format!("{key}: "))
            .unwrap_or_else(|| panic!("{key} in {line}"));
        let n: String = line[at + key.len() + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        out.insert(key.to_string(), n.parse().unwrap());
    }
    assert!(line.contains("failed: []"), "{line}");
    out
}

fn mapping_type(mapping: &Value, index: &str, path: &str) -> String {
    // Real clusters name the concrete index; the pattern is one index here.
    let m = mapping
        .get(index)
        .or_else(|| mapping.as_object().and_then(|o| o.values().next()))
        .unwrap_or_else(|| panic!("no mapping for {index}: {mapping}"));
    let mut v = &m["mappings"];
    for part in path.split('.') {
        v = &v["properties"][part];
    }
    v["type"].as_str().unwrap_or("").to_string()
}

#[test]
fn filebeat_logs_to_published_incidents_that_kibana_queries_find() {
    let c = Cluster::new();
    let tag = format!("wt{}", std::process::id());
    let source = format!("filebeat-{tag}-8.7.1-2026.11.25");
    let prefix = format!("wiretrail-e2e-{tag}");
    let (inc, ev) = (format!("{prefix}-incidents"), format!("{prefix}-events"));
    c.cleanup(
        &[source.clone(), inc.clone(), ev.clone()],
        &[inc.clone(), ev.clone()],
    );
    let loaded = c.load_filebeat(&source);
    assert_eq!(loaded, 18);

    let dir = tempfile::tempdir().unwrap();
    let pipeline = write_pipeline(dir.path(), &c, &format!("filebeat-{tag}-*"), &prefix);
    let o = run(wt([
        "investigate",
        "--pipeline",
        pipeline.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let first = published(&o.stderr);
    let report = read_json(&dir.path().join("report.json"));

    // The same incidents as from the log file itself (e2e_investigate's demo).
    let file_dir = tempfile::tempdir().unwrap();
    let file_json = file_dir.path().join("report.json");
    run(wt([
        "investigate",
        "--pipeline",
        "pipelines/demo.toml",
        "--format",
        "json",
        "--out",
        file_json.to_str().unwrap(),
    ]))
    .expect_code(0);
    let from_file = read_json(&file_json);
    // (Incident ids hash where the errors were read: they differ.)
    let summary = |r: &Value| -> Vec<(String, Option<String>, Vec<String>, usize)> {
        arr(r, "incidents")
            .iter()
            .map(|i| {
                (
                    i["verdict"]["cause"].as_str().unwrap_or("").to_string(),
                    i["backend"].as_str().map(String::from),
                    i["errors"]
                        .as_array()
                        .map(|es| es.iter().map(|e| e["local"].to_string()).collect())
                        .unwrap_or_default(),
                    i["timeline"].as_array().map_or(0, Vec::len),
                )
            })
            .collect()
    };
    assert!(
        summary(&report)[0]
            .2
            .iter()
            .all(|l| l.contains("198.18.0.2:")),
        "{:?}",
        summary(&report)
    );
    assert_eq!(
        summary(&report),
        summary(&from_file),
        "the Elasticsearch source gives the log file's incidents"
    );

    let incidents = arr(&report, "incidents");
    assert!(!incidents.is_empty(), "the demo has incidents");
    let n_inc = incidents.len() as u64;
    let n_ev: u64 = incidents
        .iter()
        .map(|i| i["timeline"].as_array().map_or(0, Vec::len) as u64)
        .sum();
    assert_eq!(
        (first["incidents"], first["events"], first["indexed"]),
        (n_inc, n_ev, n_inc + n_ev)
    );

    // Kibana's queries.
    assert_eq!(c.count(&inc, json!({ "match_all": {} })), n_inc);
    assert_eq!(c.count(&ev, json!({ "match_all": {} })), n_ev);
    let mut by_cause: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_backend: BTreeMap<String, u64> = BTreeMap::new();
    for i in incidents {
        *by_cause
            .entry(i["verdict"]["cause"].as_str().unwrap().to_string())
            .or_default() += 1;
        if let Some(b) = i["backend"].as_str() {
            *by_backend.entry(b.to_string()).or_default() += 1;
        }
    }
    for (cause, n) in &by_cause {
        assert_eq!(
            c.count(&inc, json!({ "term": { "wiretrail.cause": cause } })),
            *n,
            "term wiretrail.cause={cause}"
        );
        let per_event: u64 = incidents
            .iter()
            .filter(|i| i["verdict"]["cause"] == json!(cause))
            .map(|i| i["timeline"].as_array().map_or(0, Vec::len) as u64)
            .sum();
        assert_eq!(
            c.count(&ev, json!({ "term": { "wiretrail.cause": cause } })),
            per_event
        );
    }
    assert_eq!(
        c.count(
            &inc,
            json!({ "term": { "wiretrail.cause": "no_such_cause" } })
        ),
        0
    );
    let window = json!({ "range": { "@timestamp": { "gte": "2026-11-25T00:30:00Z", "lt": "2026-11-25T00:40:00Z" } } });
    assert_eq!(c.count(&ev, window.clone()), n_ev);
    assert_eq!(c.count(&inc, window), n_inc);
    assert_eq!(
        c.count(
            &ev,
            json!({ "range": { "@timestamp": { "lt": "2026-11-25T00:00:00Z" } } })
        ),
        0
    );
    // Nanosecond precision kept: the first packet event's own stamp finds it.
    let first_ev = incidents[0]["timeline"][0]["t_ns"]
        .as_i64()
        .expect("t_ns of a timeline event");
    let stamp = chrono::DateTime::from_timestamp_nanos(first_ev)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    assert!(
        c.count(&ev, json!({ "range": { "@timestamp": { "gte": stamp, "lte": stamp, "format": "strict_date_optional_time_nanos" } } })) >= 1,
        "an event at {stamp}"
    );
    let aggs = c.ok(
        "POST",
        &format!("/{inc}/_search"),
        Some(json!({ "size": 0, "aggs": { "backends": { "terms": { "field": "wiretrail.backend", "size": 20 } } } })),
    );
    let buckets: BTreeMap<String, u64> = aggs["aggregations"]["backends"]["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("terms aggregation: {aggs}"))
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_string(),
                b["doc_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buckets, by_backend,
        "terms aggregation on wiretrail.backend"
    );

    // Typed by the templates, not by dynamic mapping.
    for index in [&inc, &ev] {
        let m = c.ok("GET", &format!("/{index}/_mapping"), None);
        for (path, ty) in [
            ("@timestamp", "date_nanos"),
            ("source.ip", "ip"),
            ("destination.ip", "ip"),
            ("related.ip", "ip"),
            ("source.port", "long"),
            ("host.name", "keyword"),
            ("wiretrail.cause", "keyword"),
        ] {
            assert_eq!(mapping_type(&m, index, path), ty, "{index} {path}");
        }
    }
    let m = c.ok("GET", &format!("/{inc}/_mapping"), None);
    assert_eq!(mapping_type(&m, &inc, "event.start"), "date_nanos");
    assert_eq!(mapping_type(&m, &inc, "wiretrail.backend"), "keyword");
    if c.is_real() {
        // What only a real `ip` field does: a CIDR term.
        let in_lab = c.count(&inc, json!({ "term": { "source.ip": "198.18.0.0/16" } }));
        assert_eq!(in_lab, n_inc, "CIDR query on source.ip");
        assert_eq!(
            c.count(&inc, json!({ "term": { "source.ip": "10.0.0.0/8" } })),
            0
        );
    }

    // Publishing the same report again: same documents, same counts.
    let o = run(wt([
        "investigate",
        "--pipeline",
        pipeline.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let second = published(&o.stderr);
    assert_eq!(
        (second["created"], second["updated"]),
        (0, n_inc + n_ev),
        "second publish overwrites by id"
    );
    assert_eq!(c.count(&inc, json!({ "match_all": {} })), n_inc);
    assert_eq!(c.count(&ev, json!({ "match_all": {} })), n_ev);

    c.cleanup(&[source, inc.clone(), ev.clone()], &[inc, ev]);
}

/// Issue 14 D8: a pipeline line holding a secret is refused without being echoed.
#[test]
fn a_password_in_the_pipeline_is_refused_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leak.toml");
    std::fs::write(
        &p,
        "name = \"leak\"\ntz = \"UTC\"\n[logs]\nsource = \"elasticsearch\"\n[elasticsearch]\nurl = \"http://127.0.0.1:9\"\npassword = \"Hunter2-never-echo\"\n",
    )
    .unwrap();
    let o = run(wt(["investigate", "--pipeline", p.to_str().unwrap()]));
    o.expect_code(2);
    assert!(
        o.stderr.contains("leak.toml:7"),
        "names the line: {}",
        o.stderr
    );
    assert!(o.stderr.contains("password"), "{}", o.stderr);
    assert!(!o.stderr.contains("Hunter2"), "secret echoed: {}", o.stderr);
    assert!(!o.stdout.contains("Hunter2"));
}
