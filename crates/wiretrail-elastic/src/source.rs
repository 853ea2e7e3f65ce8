//! Source: read every proxy-error document of a time range, exactly once,
//! with flat memory.
//!
//! Elasticsearch ≥ 7.10 (and serverless): point in time + `search_after` +
//! `_shard_doc` tiebreaker, optionally sliced; older clusters and OpenSearch:
//! scroll (es-api.md A2 flavour rules, A4, A5). Pages travel through a bounded
//! channel, so at most `2 × slices` pages are in memory whatever the total.
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
    /// `GET /` was refused (403: no `monitor` privilege): assume ES ≥ 8.
    Unknown,
}

impl Flavor {
    /// Elasticsearch's `_pit` exists (≥ 7.10). OpenSearch has its own PIT
    /// API; wiretrail reads OpenSearch by scroll.
    pub fn has_pit(self) -> bool {
        match self {
            Flavor::Elasticsearch { major, minor } => (major, minor) >= (7, 10),
            Flavor::Serverless | Flavor::Unknown => true,
            Flavor::OpenSearch { .. } => false,
        }
    }
}

/// Ask `GET /` which cluster this is.
pub async fn detect(client: &EsClient) -> Result<Flavor, EsError> {
    let req = Req::new("GET", "/");
    let a = client.call(&req, || client.es.info().send()).await?;
    if a.status == 403 {
        tracing::info!("GET / refused (403, no monitor privilege): assuming Elasticsearch >= 8");
        return Ok(Flavor::Unknown);
    }
    if !a.is_success() {
        return Err(status_error(&req, a.status, &a.body, 1));
    }
    let v = &a.body["version"];
    let number = v["number"].as_str().unwrap_or("");
    let mut it = number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
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

/// One search hit: where it lives and its (filtered) `_source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub index: String,
    pub id: String,
    pub source: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanStats {
    /// `pit` or `scroll`.
    pub method: &'static str,
    pub slices: u32,
    pub hits: u64,
    pub pages: u64,
    /// Expired PIT / scroll contexts reopened (the view of the data changed).
    pub reopens: u64,
    /// Hits seen again after a reopen and dropped.
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
    pit: Mutex<PitState>,
    /// Live scroll ids per slice, to clear on exit.
    scrolls: std::sync::Mutex<Vec<Option<String>>>,
    reopens: std::sync::atomic::AtomicU64,
}

type PageMsg = Result<(Vec<Hit>, u64), EsError>;

impl Scan {
    async fn open_pit(&self) -> Result<String, EsError> {
        let parts: Vec<&str> = self
            .cfg
            .index
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let req = Req::new("POST", format!("/{}/_pit", parts.join(",")));
        let ka = self.cfg.keep_alive.as_str();
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
        body["id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| EsError::Response {
                method: "POST",
                path: req.path.clone(),
                message: "PIT answer has no id".into(),
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

    async fn close_pit(&self, id: &str) {
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
        match r {
            // 404: already gone (es-api.md A4.3).
            Ok(a) if a.is_success() || a.status == 404 => {}
            Ok(a) => tracing::warn!(
                status = a.status,
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
        let mut p = Progress::default();
        let req = Req::new("POST", "/_search");
        loop {
            let mut body = json!({
                "size": self.cfg.page_size,
                "query": query(&self.cfg, &self.range, p.resume_from.as_deref()),
                "_source": { "includes": includes(&self.cfg) },
                "pit": { "id": pit_id, "keep_alive": self.cfg.keep_alive },
                "sort": sort(&self.cfg, "_shard_doc"),
                "track_total_hits": false,
            });
            if let Some(s) = slice(&self.cfg, slice_id) {
                body["slice"] = s;
            }
            if let Some(a) = &p.after {
                body["search_after"] = a.clone();
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
            let hits = p.take(&mut raw);
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
    let use_pit = flavor.has_pit();
    if !use_pit {
        tracing::info!(
            ?flavor,
            "no Elasticsearch point in time on this cluster: reading by scroll"
        );
    }
    let retries_before = client.retries();
    let scan = Arc::new(Scan {
        client: client.clone(),
        cfg: cfg.clone(),
        range: *range,
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
        method: if use_pit { "pit" } else { "scroll" },
        slices: cfg.slices,
        ..Default::default()
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

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
