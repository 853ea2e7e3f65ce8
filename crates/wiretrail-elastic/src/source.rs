//! Source: read every proxy-error document of a time range, exactly once,
//! with flat memory.
//!
//! How a cluster is read is decided from `GET /` ([`Flavor::read_method`]):
//! a point in time (Elasticsearch's `_pit` from 7.10, OpenSearch's
//! `_search/point_in_time` from 2.4) + `search_after`, optionally sliced;
//! scroll on older clusters (es-api.md A2 flavour rules, A4, A5). Pages travel
//! through a bounded channel, so at most `2 × slices` pages are in memory
//! whatever the total.
//!
//! The last sort key must make every hit unique or a page boundary can skip
//! documents. `_shard_doc` (shard ordinal + Lucene doc id) does, where it
//! exists (Elasticsearch ≥ 7.12, OpenSearch ≥ 3.3). Elsewhere the tiebreaker
//! is `_doc`, unique only within a shard: two shards can hold a document with
//! the same timestamp and the same doc id, and a strict `search_after` at one
//! of them skips the other. So with `_doc` each request resumes one doc id
//! *before* the last hit (the pages overlap by that one key, at most one hit
//! per shard) and the hits already delivered at that timestamp are dropped.
//!
//! Resumption: a retried request (429/5xx/dropped connection) repeats the
//! same `search_after`, which is exact. An expired PIT or scroll cannot be
//! resumed by position (`_shard_doc` values mean nothing in a new PIT), so
//! the scan reopens and restarts from the last primary sort value (`range
//! gte` the last timestamp) and drops the hits of that timestamp it already
//! delivered (by `_index` + `_id`) (A4.2). Slices use `slice.field` = the
//! timestamp field so that a document's slice depends on the document, not
//! on the PIT: after a reopen each slice still owns the same documents.

use crate::client::{status_error, EsClient, Req};
use crate::error::{is_context_missing, EsError};
use crate::EsConfig;
use chrono::{DateTime, SecondsFormat, Utc};
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::Method;
use elasticsearch::{ClearScrollParts, OpenPointInTimeParts, ScrollParts, SearchParts};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use tokio::sync::{mpsc, Mutex};
use wiretrail_logs::{parse_document, ParseConfig, Parsed, ProxyError, Source};

/// Half-open `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What `GET /` said (es-api.md A2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flavor {
    Elasticsearch {
        major: u32,
        minor: u32,
    },
    Serverless,
    OpenSearch {
        major: u32,
        minor: u32,
    },
    /// `GET /` was refused (403: no `monitor` privilege) or does not exist
    /// (a distribution without the `rest-root` module answers 405), and no
    /// version could be had otherwise: assume Elasticsearch ≥ 8.
    Unknown,
}

/// Which point-in-time API a cluster has (es-api.md A4, A4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PitApi {
    /// `POST /<index>/_pit` → `id`; `DELETE /_pit {"id"}` (Elasticsearch ≥ 7.10).
    Elasticsearch,
    /// `POST /<index>/_search/point_in_time` → `pit_id`;
    /// `DELETE /_search/point_in_time {"pit_id": [..]}` (OpenSearch ≥ 2.4).
    OpenSearch,
}

/// The sort key after the timestamp that orders hits of one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tiebreaker {
    /// `_shard_doc` (Elasticsearch ≥ 7.12): unique within the PIT;
    /// `search_after` is exact.
    ShardDoc,
    /// `_doc`: unique within a shard only; pages overlap by one key and the
    /// repeats are dropped (module docs).
    Doc,
}

impl Tiebreaker {
    fn field(self) -> &'static str {
        match self {
            Tiebreaker::ShardDoc => "_shard_doc",
            Tiebreaker::Doc => "_doc",
        }
    }
}

/// How a scan reads the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMethod {
    Pit {
        api: PitApi,
        tiebreaker: Tiebreaker,
    },
    /// Clusters without a point in time (Elasticsearch < 7.10, OpenSearch < 2.4).
    Scroll,
}

/// `pit (_shard_doc)`, `opensearch pit (_doc)`, `scroll`: for status lines.
impl std::fmt::Display for ReadMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadMethod::Pit { api, tiebreaker } => {
                let api = match api {
                    PitApi::Elasticsearch => "pit",
                    PitApi::OpenSearch => "opensearch pit",
                };
                write!(f, "{api} ({})", tiebreaker.field())
            }
            ReadMethod::Scroll => f.write_str("scroll"),
        }
    }
}

impl ReadMethod {
    pub fn is_pit(self) -> bool {
        matches!(self, ReadMethod::Pit { .. })
    }
}

impl Flavor {
    /// The best way to read this cluster exactly once.
    pub fn read_method(self) -> ReadMethod {
        let pit = |api, tiebreaker| ReadMethod::Pit { api, tiebreaker };
        match self {
            Flavor::Elasticsearch { major, minor } if (major, minor) >= (7, 12) => {
                pit(PitApi::Elasticsearch, Tiebreaker::ShardDoc)
            }
            // PIT came in 7.10, `_shard_doc` in 7.12.
            Flavor::Elasticsearch { major, minor } if (major, minor) >= (7, 10) => {
                pit(PitApi::Elasticsearch, Tiebreaker::Doc)
            }
            Flavor::Serverless | Flavor::Unknown => {
                pit(PitApi::Elasticsearch, Tiebreaker::ShardDoc)
            }
            // OpenSearch's `_shard_doc` (3.3+) carries no shard: `_doc` it is.
            Flavor::OpenSearch { major, minor } if (major, minor) >= (2, 4) => {
                pit(PitApi::OpenSearch, Tiebreaker::Doc)
            }
            Flavor::Elasticsearch { .. } | Flavor::OpenSearch { .. } => ReadMethod::Scroll,
        }
    }

    /// A point in time of either kind exists.
    pub fn has_pit(self) -> bool {
        self.read_method().is_pit()
    }
}

fn major_minor(number: &str) -> (u32, u32) {
    let mut it = number.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Ask `GET /` which cluster this is.
pub async fn detect(client: &EsClient) -> Result<Flavor, EsError> {
    let req = Req::new("GET", "/");
    let a = client.call(&req, || client.es.info().send()).await?;
    if a.status == 403 {
        tracing::info!("GET / refused (403, no monitor privilege): assuming Elasticsearch >= 8");
        return Ok(Flavor::Unknown);
    }
    // Elasticsearch 8+ serves `GET /` from the `rest-root` module; a
    // distribution without it (the integ-test one, some embedded builds)
    // answers 405 (only `DELETE /` is routed) or "no handler". OpenSearch
    // always has it: this is Elasticsearch. Its version, from the node info.
    if matches!(a.status, 400 | 404 | 405) && a.body["error"].is_string() {
        return Ok(version_from_nodes(client).await);
    }
    if !a.is_success() {
        return Err(status_error(&req, a.status, &a.body, 1));
    }
    let v = &a.body["version"];
    let number = v["number"].as_str().unwrap_or("");
    let (major, minor) = major_minor(number);
    Ok(if v["distribution"].as_str() == Some("opensearch") {
        Flavor::OpenSearch { major, minor }
    } else if v["build_flavor"].as_str() == Some("serverless") {
        Flavor::Serverless
    } else if number.is_empty() {
        return Err(EsError::Response {
            method: "GET",
            path: "/".into(),
            message: "no version.number: is this Elasticsearch?".into(),
        });
    } else {
        Flavor::Elasticsearch { major, minor }
    })
}

/// `GET /_nodes/_local` for the version when `GET /` is not routed.
async fn version_from_nodes(client: &EsClient) -> Flavor {
    let req = Req::new("GET", "/_nodes/_local");
    let a = client
        .call(&req, || {
            client.es.send(
                Method::Get,
                "/_nodes/_local",
                HeaderMap::new(),
                Some(&[("filter_path", "nodes.*.version")]),
                None::<()>,
                None,
            )
        })
        .await;
    let number = match &a {
        Ok(a) if a.is_success() => a.body["nodes"]
            .as_object()
            .and_then(|n| n.values().next())
            .and_then(|n| n["version"].as_str())
            .map(String::from),
        _ => None,
    };
    match number {
        Some(n) => {
            let (major, minor) = major_minor(&n);
            tracing::info!(version = %n, "GET / is not routed on this cluster (no rest-root module): Elasticsearch version from GET /_nodes/_local");
            Flavor::Elasticsearch { major, minor }
        }
        None => {
            tracing::info!("GET / is not routed and the node info is not readable: assuming Elasticsearch >= 8");
            Flavor::Unknown
        }
    }
}

/// One search hit: where it lives and its (filtered) `_source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub index: String,
    pub id: String,
    pub source: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanStats {
    /// What `GET /` said.
    pub flavor: Flavor,
    pub method: ReadMethod,
    pub slices: u32,
    pub hits: u64,
    pub pages: u64,
    /// Expired PIT / scroll contexts reopened (the view of the data changed).
    pub reopens: u64,
    /// Hits seen again and dropped: after a reopen, and the one-key
    /// overlap of pages with the `_doc` tiebreaker.
    pub duplicates_dropped: u64,
    /// Requests retried by the client.
    pub retries: u64,
}

const TS_FORMAT: &str = "strict_date_optional_time_nanos";

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The query: time range, phrase, optional host/service terms, and the
/// resume bound after a reopen.
pub fn query(cfg: &EsConfig, range: &TimeRange, resume_from: Option<&str>) -> Value {
    let f = &cfg.fields;
    let mut filters = vec![
        json!({ "range": { &f.timestamp: { "gte": rfc3339(range.since), "lt": rfc3339(range.until), "format": TS_FORMAT } } }),
        json!({ "match_phrase": { &f.message: cfg.phrase } }),
    ];
    if !cfg.hosts.is_empty() {
        filters.push(json!({ "terms": { &f.host: cfg.hosts } }));
    }
    if !cfg.services.is_empty() {
        filters.push(json!({ "terms": { &f.service: cfg.services } }));
    }
    if let Some(r) = resume_from {
        filters.push(json!({ "range": { &f.timestamp: { "gte": r, "format": TS_FORMAT } } }));
    }
    json!({ "bool": { "filter": filters } })
}

/// `_source` includes: the configured fields and what the envelope parser reads.
fn includes(cfg: &EsConfig) -> Vec<String> {
    let f = &cfg.fields;
    let mut v = vec![
        f.timestamp.clone(),
        f.message.clone(),
        f.host.clone(),
        f.service.clone(),
    ];
    // `log.*`: where the shipper read the line (carried in the record's source).
    for extra in [
        "host.hostname",
        "process.name",
        "process.pid",
        "log.file.path",
        "log.offset",
    ] {
        v.push(extra.to_string());
    }
    v.dedup();
    v
}

/// Timestamp as epoch nanoseconds (`numeric_type: date_nanos`: the same
/// unit for `date` and `date_nanos` fields, and across indices that
/// disagree), then the tiebreaker. No sort `format` (ES ≥ 7.13 only), so
/// 7.10–7.12 and OpenSearch take the same request.
fn sort(cfg: &EsConfig, tiebreak: &str) -> Value {
    json!([
        { &cfg.fields.timestamp: { "order": "asc", "numeric_type": "date_nanos" } },
        { tiebreak: "asc" }
    ])
}

/// A primary sort value as a `range` bound: nanoseconds become an RFC 3339
/// string with all nine digits (`epoch_millis` would lose them).
fn resume_bound(primary: &str) -> String {
    match primary.parse::<i64>() {
        Ok(ns) => DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true),
        Err(_) => primary.to_string(),
    }
}

/// `search_after` from the last hit's sort values. With `_doc` the doc id
/// is stepped back by one, so that a hit of another shard with the same
/// timestamp and the same doc id is not skipped (module docs); the hits
/// seen again are dropped by [`Progress`].
fn search_after(last_sort: &Value, tiebreaker: Tiebreaker) -> Value {
    let mut a = last_sort.clone();
    if tiebreaker == Tiebreaker::Doc {
        if let Some(doc) = a.as_array_mut().and_then(|v| v.last_mut()) {
            if let Some(d) = doc.as_i64() {
                *doc = json!(d - 1);
            }
        }
    }
    a
}

fn slice(cfg: &EsConfig, id: u32) -> Option<Value> {
    (cfg.slices > 1).then(|| json!({ "id": id, "max": cfg.slices, "field": cfg.fields.timestamp }))
}

/// Per-slice position and the duplicate filter used after a reopen.
#[derive(Debug, Default)]
struct Progress {
    after: Option<Value>,
    last_primary: Option<String>,
    seen_at_last: HashSet<(String, String)>,
    /// Set after a reopen: restart bound, and drop hits already delivered.
    resume_from: Option<String>,
    dedupe: bool,
    dropped: u64,
    reopens_in_a_row: u32,
}

impl Progress {
    fn take(&mut self, raw: &mut Vec<Value>) -> Vec<Hit> {
        self.reopens_in_a_row = 0;
        let mut out = Vec::with_capacity(raw.len());
        for mut h in raw.drain(..) {
            let index = h["_index"].as_str().unwrap_or("").to_string();
            let id = h["_id"].as_str().unwrap_or("").to_string();
            let sort = h["sort"].take();
            let primary = match &sort[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let key = (index, id);
            if self.last_primary.as_deref() != Some(primary.as_str()) {
                self.seen_at_last.clear();
                self.last_primary = Some(primary);
            } else if self.dedupe && self.seen_at_last.contains(&key) {
                self.dropped += 1;
                self.after = Some(sort);
                continue;
            }
            self.seen_at_last.insert(key.clone());
            self.after = Some(sort);
            out.push(Hit {
                index: key.0,
                id: key.1,
                source: h["_source"].take(),
            });
        }
        out
    }

    /// The context is gone: next request opens a new one from the last timestamp.
    /// Fails (naming `req`) when contexts keep expiring without progress.
    fn reopen(&mut self, req: &Req) -> Result<(), EsError> {
        self.after = None;
        self.resume_from = self.last_primary.as_deref().map(resume_bound);
        self.dedupe = true;
        self.reopens_in_a_row += 1;
        // A keep-alive shorter than a page takes to process would loop forever.
        if self.reopens_in_a_row > 5 {
            return Err(EsError::Response {
                method: req.method,
                path: req.path.clone(),
                message: format!(
                    "the search context expired {} times in a row without progress; raise keep_alive",
                    self.reopens_in_a_row
                ),
            });
        }
        Ok(())
    }
}

/// Shard failures or a timeout make a page incomplete: never "no matches".
/// `Ok(true)`: the failures are lost contexts (reopen).
fn check_complete(req: &Req, body: &Value) -> Result<bool, EsError> {
    let failed = body["_shards"]["failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        let failures = body["_shards"]["failures"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if failures
            .iter()
            .any(|f| f["reason"]["type"].as_str() == Some("search_context_missing_exception"))
        {
            return Ok(true);
        }
        let first = failures
            .first()
            .map(|f| {
                format!(
                    "{}: {}",
                    f["reason"]["type"].as_str().unwrap_or("?"),
                    f["reason"]["reason"].as_str().unwrap_or("?")
                )
            })
            .unwrap_or_default();
        return Err(EsError::Response {
            method: req.method,
            path: req.path.clone(),
            message: format!("incomplete results: {failed} shard(s) failed ({first})"),
        });
    }
    if body["timed_out"].as_bool() == Some(true) {
        return Err(EsError::Response {
            method: req.method,
            path: req.path.clone(),
            message: "incomplete results: the search timed out on some shards".into(),
        });
    }
    Ok(false)
}

fn hits_of(req: &Req, body: &mut Value) -> Result<Vec<Value>, EsError> {
    match body["hits"]["hits"].take() {
        Value::Array(a) => Ok(a),
        _ => Err(EsError::Response {
            method: req.method,
            path: req.path.clone(),
            message: "answer has no hits.hits array".into(),
        }),
    }
}

/// The PIT shared by all slices: its newest id, and a generation so that
/// only the first slice to see it expire reopens it.
#[derive(Debug)]
struct PitState {
    id: Option<String>,
    generation: u64,
}

struct Scan {
    client: EsClient,
    cfg: EsConfig,
    range: TimeRange,
    method: ReadMethod,
    pit: Mutex<PitState>,
    /// Live scroll ids per slice, to clear on exit.
    scrolls: std::sync::Mutex<Vec<Option<String>>>,
    reopens: std::sync::atomic::AtomicU64,
}

type PageMsg = Result<(Vec<Hit>, u64), EsError>;

impl Scan {
    fn indices(&self) -> Vec<&str> {
        self.cfg
            .index
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn pit_api(&self) -> PitApi {
        match self.method {
            ReadMethod::Pit { api, .. } => api,
            ReadMethod::Scroll => unreachable!("PIT call on a scroll scan"),
        }
    }

    fn tiebreaker(&self) -> Tiebreaker {
        match self.method {
            ReadMethod::Pit { tiebreaker, .. } => tiebreaker,
            ReadMethod::Scroll => Tiebreaker::Doc,
        }
    }

    async fn open_pit(&self) -> Result<String, EsError> {
        let parts = self.indices();
        let ka = self.cfg.keep_alive.as_str();
        let (req, id_key, body) = match self.pit_api() {
            PitApi::Elasticsearch => {
                let req = Req::new("POST", format!("/{}/_pit", parts.join(",")));
                let body = self
                    .client
                    .call_ok(&req, || {
                        self.client
                            .es
                            .open_point_in_time(OpenPointInTimeParts::Index(&parts))
                            .keep_alive(ka)
                            .send()
                    })
                    .await?;
                (req, "id", body)
            }
            PitApi::OpenSearch => {
                let path = format!("/{}/_search/point_in_time", parts.join(","));
                let req = Req::new("POST", path.clone());
                // OpenSearch creates a PIT over the shards it can reach unless
                // told not to: a PIT missing shards would read less, silently.
                let params = [("keep_alive", ka), ("allow_partial_pit_creation", "false")];
                let body = self
                    .client
                    .call_ok(&req, || {
                        self.client.es.send(
                            Method::Post,
                            &path,
                            HeaderMap::new(),
                            Some(&params),
                            None::<()>,
                            None,
                        )
                    })
                    .await?;
                (req, "pit_id", body)
            }
        };
        let failed = body["_shards"]["failed"].as_u64().unwrap_or(0);
        if failed > 0 {
            return Err(EsError::Response {
                method: req.method,
                path: req.path.clone(),
                message: format!("the point in time misses {failed} shard(s): incomplete data"),
            });
        }
        body[id_key]
            .as_str()
            .map(String::from)
            .ok_or_else(|| EsError::Response {
                method: req.method,
                path: req.path.clone(),
                message: format!("PIT answer has no {id_key}"),
            })
    }

    /// Reopen unless another slice already did since `seen_generation`.
    async fn reopen_pit(&self, seen_generation: u64) -> Result<(String, u64), EsError> {
        let mut st = self.pit.lock().await;
        if st.generation == seen_generation {
            let old = st.id.take();
            if let Some(old) = old {
                self.close_pit(&old).await;
            }
            st.id = Some(self.open_pit().await?);
            st.generation += 1;
            self.reopens
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(generation = st.generation, "point in time expired: reopened; the scan resumes from the last timestamp on a newer view of the data");
        }
        Ok((st.id.clone().unwrap_or_default(), st.generation))
    }

    /// Close, never failing the scan: 200 and 404 both mean "gone"
    /// (es-api.md A4.3; OpenSearch answers per id in `pits`).
    async fn close_pit(&self, id: &str) {
        let (req, r) = match self.pit_api() {
            PitApi::Elasticsearch => {
                let req = Req::new("DELETE", "/_pit");
                let r = self
                    .client
                    .call(&req, || {
                        self.client
                            .es
                            .close_point_in_time()
                            .body(json!({ "id": id }))
                            .send()
                    })
                    .await;
                (req, r)
            }
            PitApi::OpenSearch => {
                let req = Req::new("DELETE", "/_search/point_in_time");
                let r = self
                    .client
                    .call(&req, || {
                        self.client.es.send(
                            Method::Delete,
                            "/_search/point_in_time",
                            HeaderMap::new(),
                            None::<&()>,
                            Some(elasticsearch::http::request::JsonBody::new(
                                json!({ "pit_id": [id] }),
                            )),
                            None,
                        )
                    })
                    .await;
                (req, r)
            }
        };
        match r {
            Ok(a) if a.is_success() || a.status == 404 => {}
            Ok(a) => tracing::warn!(
                status = a.status,
                path = %req.path,
                "closing the point in time failed; it expires by itself"
            ),
            Err(e) => {
                tracing::warn!("closing the point in time failed ({e}); it expires by itself")
            }
        }
    }

    async fn pit_slice(self: Arc<Self>, slice_id: u32, tx: mpsc::Sender<PageMsg>) {
        let r = self.pit_slice_inner(slice_id, &tx).await;
        if let Err(e) = r {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn pit_slice_inner(
        &self,
        slice_id: u32,
        tx: &mpsc::Sender<PageMsg>,
    ) -> Result<(), EsError> {
        let (mut pit_id, mut generation) = {
            let st = self.pit.lock().await;
            (st.id.clone().unwrap_or_default(), st.generation)
        };
        let tiebreaker = self.tiebreaker();
        let mut p = Progress {
            // `_doc` pages overlap by one key: repeats are expected.
            dedupe: tiebreaker == Tiebreaker::Doc,
            ..Progress::default()
        };
        let req = Req::new("POST", "/_search");
        loop {
            let mut body = json!({
                "size": self.cfg.page_size,
                "query": query(&self.cfg, &self.range, p.resume_from.as_deref()),
                "_source": { "includes": includes(&self.cfg) },
                "pit": { "id": pit_id, "keep_alive": self.cfg.keep_alive },
                "sort": sort(&self.cfg, tiebreaker.field()),
                "track_total_hits": false,
            });
            if let Some(s) = slice(&self.cfg, slice_id) {
                body["slice"] = s;
            }
            if let Some(a) = &p.after {
                body["search_after"] = search_after(a, tiebreaker);
            }
            let a = self
                .client
                .call(&req, || {
                    self.client
                        .es
                        .search(SearchParts::None)
                        .body(body.clone())
                        .send()
                })
                .await?;
            if a.status == 404 && is_context_missing(&a.body) {
                (pit_id, generation) = self.reopen_pit(generation).await?;
                p.reopen(&req)?;
                continue;
            }
            if !a.is_success() {
                return Err(status_error(&req, a.status, &a.body, 1));
            }
            let mut resp = a.body;
            if check_complete(&req, &resp)? {
                (pit_id, generation) = self.reopen_pit(generation).await?;
                p.reopen(&req)?;
                continue;
            }
            // Always continue with the newest id (A4.2).
            if let Some(new_id) = resp["pit_id"].as_str() {
                if new_id != pit_id {
                    let mut st = self.pit.lock().await;
                    if st.generation == generation {
                        st.id = Some(new_id.to_string());
                    }
                    pit_id = new_id.to_string();
                }
            }
            let mut raw = hits_of(&req, &mut resp)?;
            if raw.is_empty() {
                return Ok(());
            }
            let before = p.dropped;
            let after_before = p.after.clone();
            let page_len = raw.len();
            let hits = p.take(&mut raw);
            if hits.is_empty() && p.after == after_before {
                // Only with `_doc`, whose pages overlap: a short page of
                // repeats is the end; a full one means more hits share one
                // (timestamp, doc id) than a page holds (one per shard at most).
                if page_len < self.cfg.page_size as usize {
                    return Ok(());
                }
                return Err(EsError::Response {
                    method: req.method,
                    path: req.path.clone(),
                    message: format!(
                        "a page of {page_len} hits made no progress: more documents share one sort key than page_size ({}) holds; raise page_size above the number of shards",
                        self.cfg.page_size
                    ),
                });
            }
            if tx.send(Ok((hits, p.dropped - before))).await.is_err() {
                return Ok(()); // consumer stopped
            }
        }
    }

    async fn scroll_slice(self: Arc<Self>, slice_id: u32, tx: mpsc::Sender<PageMsg>) {
        let r = self.scroll_slice_inner(slice_id, &tx).await;
        if let Err(e) = r {
            let _ = tx.send(Err(e)).await;
        }
    }

    fn set_scroll(&self, slice_id: u32, id: Option<String>) {
        self.scrolls.lock().unwrap()[slice_id as usize] = id;
    }

    async fn scroll_slice_inner(
        &self,
        slice_id: u32,
        tx: &mpsc::Sender<PageMsg>,
    ) -> Result<(), EsError> {
        let parts: Vec<&str> = self
            .cfg
            .index
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let ka = self.cfg.keep_alive.as_str();
        let mut p = Progress::default();
        let mut scroll_id: Option<String> = None;
        // Consecutive lost scroll answers (bounded like retries).
        let mut lost_answers = 0u32;
        loop {
            let (req, a) = match &scroll_id {
                None => {
                    let req = Req::new("POST", format!("/{}/_search?scroll={ka}", parts.join(",")));
                    let mut body = json!({
                        "size": self.cfg.page_size,
                        "query": query(&self.cfg, &self.range, p.resume_from.as_deref()),
                        "_source": { "includes": includes(&self.cfg) },
                        "sort": sort(&self.cfg, "_doc"),
                    });
                    if let Some(s) = slice(&self.cfg, slice_id) {
                        body["slice"] = s;
                    }
                    let a = self
                        .client
                        .call(&req, || {
                            self.client
                                .es
                                .search(SearchParts::Index(&parts))
                                .scroll(ka)
                                .body(body.clone())
                                .send()
                        })
                        .await?;
                    (req, a)
                }
                Some(id) => {
                    let req = Req::new("POST", "/_search/scroll");
                    let body = json!({ "scroll": ka, "scroll_id": id });
                    // A scroll page moves the server's cursor: resending after
                    // a lost answer would skip a page. Restart instead.
                    match self
                        .client
                        .call_unreplayable(&req, || {
                            self.client
                                .es
                                .scroll(ScrollParts::None)
                                .body(body.clone())
                                .send()
                        })
                        .await
                    {
                        Ok(a) if a.status != 502 && a.status != 504 => (req, a),
                        lost => {
                            lost_answers += 1;
                            let why = match &lost {
                                Ok(a) => format!("status {}", a.status),
                                Err(e) => e.to_string(),
                            };
                            if lost_answers > self.client.retry_policy().max_retries {
                                return Err(match lost {
                                    Ok(a) => status_error(&req, a.status, &a.body, lost_answers),
                                    Err(e) => e,
                                });
                            }
                            tracing::warn!(
                                slice = slice_id,
                                "scroll answer lost ({why}): restarting from the last timestamp"
                            );
                            self.restart_scroll(slice_id, &mut scroll_id, &mut p, &req)
                                .await?;
                            tokio::time::sleep(self.client.retry_policy().backoff(lost_answers))
                                .await;
                            continue;
                        }
                    }
                }
            };
            if a.status == 404 && is_context_missing(&a.body) && scroll_id.is_some() {
                tracing::warn!(slice = slice_id, "scroll expired: restarting from the last timestamp on a newer view of the data");
                // Expired: nothing left to clear.
                scroll_id = None;
                self.restart_scroll(slice_id, &mut scroll_id, &mut p, &req)
                    .await?;
                continue;
            }
            if !a.is_success() {
                return Err(status_error(&req, a.status, &a.body, 1));
            }
            let mut resp = a.body;
            if check_complete(&req, &resp)? {
                self.restart_scroll(slice_id, &mut scroll_id, &mut p, &req)
                    .await?;
                continue;
            }
            if let Some(id) = resp["_scroll_id"].as_str() {
                scroll_id = Some(id.to_string());
                self.set_scroll(slice_id, scroll_id.clone());
            }
            lost_answers = 0;
            let mut raw = hits_of(&req, &mut resp)?;
            if raw.is_empty() {
                return Ok(());
            }
            let before = p.dropped;
            let hits = p.take(&mut raw);
            if tx.send(Ok((hits, p.dropped - before))).await.is_err() {
                return Ok(());
            }
        }
    }

    /// Drop this slice's scroll (clearing it on the server when it still
    /// exists) and resume from the last timestamp seen, on a new scroll.
    async fn restart_scroll(
        &self,
        slice_id: u32,
        scroll_id: &mut Option<String>,
        p: &mut Progress,
        req: &Req,
    ) -> Result<(), EsError> {
        self.reopens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(id) = scroll_id.take() {
            self.clear_scrolls(vec![id]).await;
        }
        self.set_scroll(slice_id, None);
        p.reopen(req)
    }

    async fn clear_scrolls(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let req = Req::new("DELETE", "/_search/scroll");
        let body = json!({ "scroll_id": ids });
        match self
            .client
            .call(&req, || {
                self.client
                    .es
                    .clear_scroll(ClearScrollParts::None)
                    .body(body.clone())
                    .send()
            })
            .await
        {
            Ok(a) if a.is_success() || a.status == 404 => {}
            Ok(a) => tracing::warn!(
                status = a.status,
                "clearing scroll contexts failed; they expire by themselves"
            ),
            Err(e) => {
                tracing::warn!("clearing scroll contexts failed ({e}); they expire by themselves")
            }
        }
    }
}

/// Scan every matching hit, page by page. `on_page` runs on the caller's
/// task; returning `Break` stops the scan (contexts are still closed).
pub async fn scan<F>(
    client: &EsClient,
    cfg: &EsConfig,
    range: &TimeRange,
    mut on_page: F,
) -> Result<ScanStats, EsError>
where
    F: FnMut(Vec<Hit>) -> ControlFlow<()>,
{
    if cfg.page_size == 0 {
        return Err(EsError::Config("page size must be at least 1".into()));
    }
    if cfg.slices == 0 {
        return Err(EsError::Config("slices must be at least 1".into()));
    }
    let flavor = detect(client).await?;
    let method = flavor.read_method();
    let use_pit = method.is_pit();
    if !use_pit {
        tracing::info!(
            ?flavor,
            "no point in time on this cluster: reading by scroll"
        );
    }
    let retries_before = client.retries();
    let scan = Arc::new(Scan {
        client: client.clone(),
        cfg: cfg.clone(),
        range: *range,
        method,
        pit: Mutex::new(PitState {
            id: None,
            generation: 0,
        }),
        scrolls: std::sync::Mutex::new(vec![None; cfg.slices as usize]),
        reopens: Default::default(),
    });
    if use_pit {
        let id = scan.open_pit().await?;
        scan.pit.lock().await.id = Some(id);
    }
    let (tx, mut rx) = mpsc::channel::<PageMsg>(2 * cfg.slices as usize);
    let mut tasks = Vec::new();
    for s in 0..cfg.slices {
        let sc = scan.clone();
        let tx = tx.clone();
        tasks.push(if use_pit {
            tokio::spawn(sc.pit_slice(s, tx))
        } else {
            tokio::spawn(sc.scroll_slice(s, tx))
        });
    }
    drop(tx);

    let mut stats = ScanStats {
        flavor,
        method,
        slices: cfg.slices,
        hits: 0,
        pages: 0,
        reopens: 0,
        duplicates_dropped: 0,
        retries: 0,
    };
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Ok((hits, dropped)) => {
                stats.pages += 1;
                stats.hits += hits.len() as u64;
                stats.duplicates_dropped += dropped;
                if on_page(hits).is_break() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Stop the other slices before closing what they read from.
    drop(rx);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    if use_pit {
        let id = scan.pit.lock().await.id.take();
        if let Some(id) = id {
            scan.close_pit(&id).await;
        }
    } else {
        let ids: Vec<String> = scan
            .scrolls
            .lock()
            .unwrap()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        scan.clear_scrolls(ids).await;
    }
    stats.reopens = scan.reopens.load(std::sync::atomic::Ordering::Relaxed);
    stats.retries = client.retries() - retries_before;
    match failure {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// A parsed hit that is not a usable proxy error.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub index: String,
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchStats {
    #[serde(flatten)]
    pub scan: ScanStats,
    pub errors: u64,
    /// Hits that matched the phrase but are not proxy error lines.
    pub not_proxy_error: u64,
    pub malformed: u64,
}

/// The document the log parser expects (`message`, `@timestamp`,
/// `host.name`), built from configured field names when they differ.
fn normalise(cfg: &EsConfig, source: Value) -> Value {
    if cfg.fields.is_default() {
        return source;
    }
    let f = &cfg.fields;
    let get = |p: &str| crate::lookup(&source, p).cloned().unwrap_or(Value::Null);
    let mut doc = json!({ "message": get(&f.message), "@timestamp": get(&f.timestamp) });
    let host = get(&f.host);
    if !host.is_null() {
        doc["host"] = json!({ "name": host });
    }
    for p in ["process.name", "process.pid"] {
        let v = get(p);
        if !v.is_null() {
            let (a, b) = p.split_once('.').unwrap();
            doc[a][b] = v;
        }
    }
    doc
}

/// Scan and parse: each proxy error goes to `on_error`, each malformed hit
/// to `on_malformed`; both run on the caller's task, page by page.
pub async fn fetch_errors<E, M>(
    client: &EsClient,
    cfg: &EsConfig,
    range: &TimeRange,
    parse: &ParseConfig,
    mut on_error: E,
    mut on_malformed: M,
) -> Result<FetchStats, EsError>
where
    E: FnMut(ProxyError) -> ControlFlow<()>,
    M: FnMut(Malformed),
{
    let (mut errors, mut not_err, mut malformed) = (0u64, 0u64, 0u64);
    let scan_stats = scan(client, cfg, range, |hits| {
        for h in hits {
            // Before `normalise`, which keeps only the fields the parser reads.
            let (path, offset) = wiretrail_logs::envelope::shipped_from(&h.source);
            let origin = Source::Elasticsearch {
                index: h.index.clone(),
                id: h.id.clone(),
                path,
                offset,
            };
            match parse_document(&normalise(cfg, h.source), origin, parse) {
                Parsed::Error(e) => {
                    errors += 1;
                    if on_error(e).is_break() {
                        return ControlFlow::Break(());
                    }
                }
                Parsed::NotProxyError => not_err += 1,
                Parsed::Malformed(reason) => {
                    malformed += 1;
                    on_malformed(Malformed {
                        index: h.index,
                        id: h.id,
                        reason,
                    });
                }
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok(FetchStats {
        scan: scan_stats,
        errors,
        not_proxy_error: not_err,
        malformed,
    })
}
