//! An in-process server that follows Elasticsearch's HTTP contract for the
//! endpoints wiretrail uses (see `shared/es-api.md`): `GET /`, point in time,
//! `_search` with `pit` + `search_after` + `slice`, scroll, `_bulk`,
//! `_index_template`, plus `_count`/`_refresh`/index create-delete for tests.
//! Bodies and status codes are the real ones; faults are injected per request.
//!
//! It binds `127.0.0.1:0` only and runs on its own thread and runtime, so sync
//! and async tests can both use it. It is not a search engine: queries are the
//! subset in [`store::Filter`], sorting is ascending on one date field plus
//! the `_shard_doc` tiebreaker.

pub mod bulk;
pub mod store;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use store::{run_search, Filter, Pit, Scroll, SearchSpec, SortSupport, Store};
pub use store::{Doc, Generated};

/// What `GET /` claims to be. Decides which endpoints exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// Elasticsearch with this version number (`"8.17.0"`, `"7.9.3"`).
    Elasticsearch(String),
    /// Elastic serverless: placeholder version, PIT available.
    Serverless,
    /// OpenSearch 2.x with this version: no ES `_pit`, no `X-Elastic-Product`.
    OpenSearch(String),
}

fn version_of(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

impl Flavor {
    fn is_es(&self) -> bool {
        !matches!(self, Flavor::OpenSearch(_))
    }
    /// ES point in time exists from 7.10.
    fn has_es_pit(&self) -> bool {
        match self {
            Flavor::Elasticsearch(v) => version_of(v) >= (7, 10),
            Flavor::Serverless => true,
            Flavor::OpenSearch(_) => false,
        }
    }
    /// OpenSearch's own point in time exists from 2.4.
    fn has_os_pit(&self) -> bool {
        matches!(self, Flavor::OpenSearch(v) if version_of(v) >= (2, 4))
    }
    /// `_shard_doc`: Elasticsearch 7.12 (implicit on PIT searches);
    /// OpenSearch 3.3 (only when given: 3.6 adds none; its values are bare
    /// doc ids, checked on the real server).
    fn sort_support(&self) -> SortSupport {
        match self {
            Flavor::Elasticsearch(v) => {
                let has = version_of(v) >= (7, 12);
                SortSupport {
                    shard_doc: has,
                    shard_doc_is_local: false,
                    implicit_on_pit: has,
                }
            }
            Flavor::Serverless => SortSupport {
                shard_doc: true,
                shard_doc_is_local: false,
                implicit_on_pit: true,
            },
            Flavor::OpenSearch(v) => SortSupport {
                shard_doc: version_of(v) >= (3, 3),
                shard_doc_is_local: true,
                implicit_on_pit: false,
            },
        }
    }
}

/// Credentials the server demands (es-api.md B2/A7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Basic {
        user: String,
        password: String,
    },
    /// The `encoded` form: base64(id ":" key).
    ApiKey(String),
    Bearer(String),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub flavor: Flavor,
    pub auth: Option<Auth>,
    /// `GET /` answers 403 (a key without `monitor`), other calls work.
    pub forbid_root: bool,
    /// Every search on a PIT returns a new `pit_id` (old ones stay valid).
    pub rotate_pit_id: bool,
    /// `GET /` is not routed, as on Elasticsearch 8/9 without the
    /// `rest-root` module (the integ-test distribution): 405, `Allow: DELETE`.
    pub root_not_routed: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            flavor: Flavor::Elasticsearch("8.17.0".into()),
            auth: None,
            forbid_root: false,
            rotate_pit_id: true,
            root_not_routed: false,
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Any,
    Root,
    PitOpen,
    PitClose,
    Search,
    Scroll,
    Bulk,
    Template,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status and its real body (429 rejected execution,
    /// 503 no master, 502/504 proxy text, 413 empty) instead of handling.
    Status(u16),
    /// Handle the request, then send half of the response and drop the connection.
    Drop,
    /// Sleep before handling.
    Delay(Duration),
    /// Expire every open PIT and scroll context before handling.
    ExpireContexts,
    /// Refuse the first N items of the bulk request with a 429 item.
    BulkItems429(usize),
    /// A search answers 200 with one failed shard and no hits (a partial
    /// result): `true` as a lost search context, `false` as another failure.
    ShardFailure { context_missing: bool },
    /// Answer with this status and an error body that echoes the request's
    /// `Authorization` header, as some servers and proxies do: JSON for 4xx
    /// (in `reason` and in a `headers` object), an HTML page for 5xx.
    EchoHeaders(u16),
}

/// A fault fires on every `every`-th matching request, at most `times` times,
/// so tests stop by themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub endpoint: Endpoint,
    pub kind: FaultKind,
    pub every: u32,
    pub times: u32,
}

impl Fault {
    pub fn new(endpoint: Endpoint, kind: FaultKind, every: u32, times: u32) -> Fault {
        Fault {
            endpoint,
            kind,
            every: every.max(1),
            times,
        }
    }
}

#[derive(Debug)]
struct FaultState {
    fault: Fault,
    seen: u32,
    fired: u32,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub endpoint: Endpoint,
    pub status: u16,
    pub authorization: Option<String>,
}

#[derive(Debug)]
struct Shared {
    cfg: ServerConfig,
    store: Mutex<Store>,
    faults: Mutex<Vec<FaultState>>,
    log: Mutex<Vec<Logged>>,
    fired: AtomicU64,
}

/// The running server. Dropping it stops the server.
#[derive(Debug)]
pub struct EsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EsServer {
    /// Start on 127.0.0.1 with an OS-chosen port, on a thread of its own.
    pub fn start(cfg: ServerConfig) -> std::io::Result<EsServer> {
        let shared = Arc::new(Shared {
            cfg,
            store: Mutex::new(Store::default()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            fired: AtomicU64::new(0),
        });
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new().name("es-test-server".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("test server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        acc = listener.accept() => {
                            let Ok((stream, _)) = acc else { continue };
                            let sh = sh.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| handle(sh.clone(), req));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        })?;
        Ok(EsServer {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Add (or replace) documents in an index, creating it from the matching template.
    pub fn add_docs(&self, index: &str, docs: impl IntoIterator<Item = (String, Value)>) {
        let mut st = self.shared.store.lock().unwrap();
        if !st.indices.contains_key(index) {
            let m = st.template_mappings(index);
            st.indices.insert(index.to_string(), store::Index::new(m));
        }
        let idx = st.indices.get_mut(index).unwrap();
        let store::IndexData::Stored {
            docs: stored,
            by_id,
        } = &mut idx.data
        else {
            panic!("{index} is a generated index")
        };
        let stored = Arc::make_mut(stored);
        for (id, source) in docs {
            match by_id.get(&id) {
                Some(&pos) => {
                    stored[pos].source = Arc::new(source);
                    stored[pos].version += 1;
                }
                None => {
                    by_id.insert(id.clone(), stored.len());
                    stored.push(Doc {
                        id,
                        source: Arc::new(source),
                        version: 1,
                    });
                }
            }
        }
    }

    /// Add an index whose documents are computed on demand (benchmarks).
    pub fn add_generated(&self, index: &str, g: Generated) {
        let mut st = self.shared.store.lock().unwrap();
        st.indices.insert(
            index.to_string(),
            store::Index {
                data: store::IndexData::Generated(Arc::new(g)),
                mappings: Value::Null,
            },
        );
    }

    /// Documents of an index: (id, source, version), in insertion order.
    pub fn docs(&self, index: &str) -> Vec<(String, Value, u64)> {
        let st = self.shared.store.lock().unwrap();
        match st.indices.get(index).map(|i| &i.data) {
            Some(store::IndexData::Stored { docs, .. }) => docs
                .iter()
                .map(|d| (d.id.clone(), (*d.source).clone(), d.version))
                .collect(),
            _ => vec![],
        }
    }

    pub fn template(&self, name: &str) -> Option<Value> {
        self.shared
            .store
            .lock()
            .unwrap()
            .templates
            .get(name)
            .cloned()
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push(FaultState {
            fault,
            seen: 0,
            fired: 0,
        });
    }

    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// How many times injected faults fired.
    pub fn faults_fired(&self) -> u64 {
        self.shared.fired.load(Ordering::Relaxed)
    }

    /// Open PIT and scroll contexts (to check that clients close them).
    pub fn open_contexts(&self) -> usize {
        let st = self.shared.store.lock().unwrap();
        st.pits.len() + st.scrolls.len()
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn request_count(&self, e: Endpoint) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| e == Endpoint::Any || l.endpoint == e)
            .count()
    }
}

impl Drop for EsServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response body that is either whole or cut off mid-way (dropped connection).
struct ReplyBody {
    data: Option<Bytes>,
    fail_after: bool,
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        if self.fail_after {
            self.fail_after = false;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault: connection dropped",
            ))));
        }
        Poll::Ready(None)
    }
}

struct Reply {
    status: u16,
    body: Option<Value>,
    raw: Option<(String, Bytes)>,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            raw: None,
            headers: vec![],
        }
    }
    fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            raw: None,
            headers: vec![],
        }
    }
    fn text(status: u16, ct: &str, text: &str) -> Reply {
        Reply {
            status,
            body: None,
            raw: Some((ct.to_string(), Bytes::from(text.to_string()))),
            headers: vec![],
        }
    }
}

/// The standard error body (es-api.md A1.1).
pub fn error_body(status: u16, ty: &str, reason: &str) -> Value {
    json!({ "error": { "root_cause": [ { "type": ty, "reason": reason } ], "type": ty, "reason": reason }, "status": status })
}

fn err(status: u16, ty: &str, reason: &str) -> Reply {
    Reply::json(status, error_body(status, ty, reason))
}

fn context_missing(id: &str) -> Reply {
    let cause = json!({ "type": "search_context_missing_exception", "reason": format!("No search context found for id [{id}]") });
    Reply::json(
        404,
        json!({ "error": {
        "root_cause": [cause.clone()], "type": "search_phase_execution_exception", "reason": "all shards failed",
        "phase": "query", "grouped": true,
        "failed_shards": [ { "shard": -1, "index": null, "reason": cause.clone() } ],
        "caused_by": cause }, "status": 404 }),
    )
}

fn classify(method: &Method, segs: &[&str]) -> Endpoint {
    match segs {
        [] => Endpoint::Root,
        ["_pit"] => Endpoint::PitClose,
        [_, "_pit"] | [_, "_search", "point_in_time"] => Endpoint::PitOpen,
        ["_search", "point_in_time", ..] if method != Method::GET => Endpoint::PitClose,
        ["_search", "scroll", ..] => Endpoint::Scroll,
        ["_search"] | [_, "_search"] => Endpoint::Search,
        ["_bulk"] | [_, "_bulk"] => Endpoint::Bulk,
        ["_index_template", ..] => Endpoint::Template,
        _ => Endpoint::Other,
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    sh: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ReplyBody>, std::convert::Infallible> {
    let method = req.method().clone();
    let path = percent_decode(req.uri().path());
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let endpoint = classify(&method, &segs);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };

    // Faults that act before handling.
    let mut drop_after = false;
    let mut reject_items = 0usize;
    let mut early: Option<Reply> = None;
    let mut delay = Duration::ZERO;
    let mut shard_failure: Option<bool> = None;
    {
        let mut faults = sh.faults.lock().unwrap();
        for f in faults.iter_mut() {
            if f.fault.endpoint != Endpoint::Any && f.fault.endpoint != endpoint {
                continue;
            }
            f.seen += 1;
            if f.fired >= f.fault.times || f.seen % f.fault.every != 0 {
                continue;
            }
            f.fired += 1;
            sh.fired.fetch_add(1, Ordering::Relaxed);
            match &f.fault.kind {
                FaultKind::Status(s) => early = early.or_else(|| Some(fault_reply(*s))),
                FaultKind::EchoHeaders(s) => {
                    early = early.or_else(|| Some(echo_reply(*s, authorization.as_deref())))
                }
                FaultKind::Drop => drop_after = true,
                FaultKind::Delay(d) => delay += *d,
                FaultKind::BulkItems429(n) => reject_items += n,
                FaultKind::ShardFailure { context_missing } => {
                    shard_failure = Some(*context_missing)
                }
                FaultKind::ExpireContexts => {
                    let mut st = sh.store.lock().unwrap();
                    st.pits.clear();
                    st.scrolls.clear();
                }
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut reply = if let Some(r) = early {
        r
    } else if let Some(r) = check_auth(&sh.cfg, authorization.as_deref(), &path) {
        r
    } else {
        route(&sh, &method, &segs, &query, &body, &mut reject_items)
    };
    if let (Some(ctx), 200, Some(b)) = (shard_failure, reply.status, reply.body.as_mut()) {
        if b.get("hits").is_some() {
            let reason = if ctx {
                json!({ "type": "search_context_missing_exception", "reason": "No search context found for id [7]" })
            } else {
                json!({ "type": "node_not_connected_exception", "reason": "[node-2][127.0.0.1:9301] Node not connected" })
            };
            let total = b["_shards"]["total"].as_u64().unwrap_or(1).max(2);
            b["_shards"] = json!({ "total": total, "successful": total - 1, "skipped": 0, "failed": 1,
                "failures": [ { "shard": 1, "index": "logs-app", "node": "aBcDeF", "reason": reason } ] });
            b["hits"]["hits"] = json!([]);
        }
    }

    sh.log.lock().unwrap().push(Logged {
        method: method.to_string(),
        path: path.clone(),
        endpoint,
        status: reply.status,
        authorization,
    });
    Ok(render(&sh.cfg, reply, &method, drop_after))
}

fn fault_reply(status: u16) -> Reply {
    match status {
        429 => err(429, "es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=54215758, max_coordinating_and_primary_bytes=53687091]"),
        503 => err(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
        502 => Reply::text(502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        504 => Reply::text(504, "text/html", "<html><body><h1>504 Gateway Time-out</h1></body></html>"),
        413 => Reply::empty(413),
        s => err(s, "exception", "injected fault"),
    }
}

fn echo_reply(status: u16, authorization: Option<&str>) -> Reply {
    let auth = authorization.unwrap_or("");
    if status >= 500 {
        return Reply::text(
            status,
            "text/html",
            &format!("<html><body><h1>{status} Bad Gateway</h1><pre>GET /_search HTTP/1.1\r\nHost: es\r\nAuthorization: {auth}\r\n</pre></body></html>"),
        );
    }
    Reply::json(
        status,
        json!({ "error": { "root_cause": [ { "type": "illegal_argument_exception",
            "reason": format!("request [POST /_search] has headers {{Authorization=[{auth}]}}") } ],
            "type": "illegal_argument_exception",
            "reason": format!("request [POST /_search] has headers {{Authorization=[{auth}]}}"),
            "headers": { "Authorization": auth } }, "status": status }),
    )
}

fn check_auth(cfg: &ServerConfig, got: Option<&str>, path: &str) -> Option<Reply> {
    use base64::Engine as _;
    let want = cfg.auth.as_ref()?;
    let expected = match want {
        Auth::Basic { user, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ),
        Auth::ApiKey(k) => format!("ApiKey {k}"),
        Auth::Bearer(t) => format!("Bearer {t}"),
    };
    if got == Some(expected.as_str()) {
        return None;
    }
    let reason = match got {
        None => format!("missing authentication credentials for REST request [{path}]"),
        Some(_) => format!("unable to authenticate user [elastic] for REST request [{path}]"),
    };
    let hdr = json!({"WWW-Authenticate": ["Basic realm=\"security\", charset=\"UTF-8\"", "Bearer realm=\"security\"", "ApiKey"]});
    let cause = json!({"type": "security_exception", "reason": reason, "header": hdr});
    let mut r = Reply::json(
        401,
        json!({"error": {"root_cause": [cause.clone()], "type": "security_exception", "reason": reason, "header": hdr}, "status": 401}),
    );
    r.headers = vec![
        (
            "WWW-Authenticate".into(),
            "Basic realm=\"security\", charset=\"UTF-8\"".into(),
        ),
        (
            "WWW-Authenticate".into(),
            "Bearer realm=\"security\"".into(),
        ),
        ("WWW-Authenticate".into(), "ApiKey".into()),
    ];
    Some(r)
}

fn render(
    cfg: &ServerConfig,
    reply: Reply,
    method: &Method,
    drop_after: bool,
) -> Response<ReplyBody> {
    let (ct, bytes) = match (reply.raw, reply.body) {
        (Some((ct, b)), _) => (Some(ct), b),
        (None, Some(v)) => (
            Some("application/json".to_string()),
            Bytes::from(serde_json::to_vec(&v).unwrap()),
        ),
        (None, None) => (None, Bytes::new()),
    };
    let mut b = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    // Elasticsearch 9.2 sends it on 200/4xx answers but not on a 401 from
    // its security layer (seen on the real server).
    if cfg.flavor.is_es() && reply.status != 401 {
        b = b.header("X-elastic-product", "Elasticsearch");
    }
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    for (k, v) in reply.headers {
        b = b.header(k, v);
    }
    b = b.header("content-length", bytes.len().to_string());
    let body = if *method == Method::HEAD {
        ReplyBody {
            data: None,
            fail_after: false,
        }
    } else if drop_after {
        let half = bytes.slice(..bytes.len() / 2);
        ReplyBody {
            data: Some(half),
            fail_after: true,
        }
    } else {
        ReplyBody {
            data: Some(bytes),
            fail_after: false,
        }
    };
    b.body(body).unwrap()
}

fn no_handler(method: &Method, segs: &[&str]) -> Reply {
    Reply::json(
        400,
        json!({ "error": format!("no handler found for uri [/{}] and method [{method}]", segs.join("/")) }),
    )
}

fn parse_body(body: &[u8]) -> Result<Value, Reply> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        err(
            400,
            "parse_exception",
            &format!("request body is not valid JSON: {e}"),
        )
    })
}

fn keep_alive(q: Option<&str>) -> Result<Duration, Reply> {
    let s = q.ok_or_else(|| {
        err(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: [keep_alive] is not specified;",
        )
    })?;
    let d = store::parse_duration(s).ok_or_else(|| {
        err(
            400,
            "parse_exception",
            &format!("failed to parse setting [keep_alive] with value [{s}] as a time value"),
        )
    })?;
    if d > Duration::from_secs(86400) {
        return Err(err(400, "illegal_argument_exception", &format!("Keep alive for request ({s}) is too large. It must be less than (1d). This limit can be set by changing the [search.max_keep_alive] cluster level setting.")));
    }
    Ok(d)
}

/// A point in time over `index` (Elasticsearch's and OpenSearch's alike;
/// only the look of the id differs, from `id_prefix`): its id and shard
/// count.
fn open_pit(
    sh: &Shared,
    index: &str,
    q: &HashMap<String, String>,
    id_prefix: &str,
) -> Result<(String, usize), Reply> {
    let ka = keep_alive(q.get("keep_alive").map(String::as_str))?;
    let mut st = sh.store.lock().unwrap();
    let names = st.resolve(index).map_err(|n| index_not_found(&n))?;
    let snapshot = Arc::new(st.snapshot(&names));
    let id = st.new_ctx_id(id_prefix);
    let group = st.next_ctx;
    st.pits.insert(
        id.clone(),
        Pit {
            snapshot,
            expires: Instant::now() + ka,
            group,
        },
    );
    Ok((id, names.len()))
}

fn route(
    sh: &Shared,
    method: &Method,
    segs: &[&str],
    q: &HashMap<String, String>,
    body: &Bytes,
    reject_items: &mut usize,
) -> Reply {
    let cfg = &sh.cfg;
    let m = method.as_str();
    let result: Result<Reply, Reply> = (|| {
        Ok(match (m, segs) {
            ("HEAD", []) => Reply::empty(200),
            ("GET", []) if cfg.root_not_routed => {
                let mut r = Reply::json(
                    405,
                    json!({ "error": "Incorrect HTTP method for uri [/] and method [GET], allowed: [DELETE]", "status": 405 }),
                );
                r.headers.push(("Allow".into(), "DELETE".into()));
                r
            }
            ("GET", []) => root(cfg),
            ("GET", ["_nodes", "_local"]) => {
                let v = match &cfg.flavor {
                    Flavor::Elasticsearch(v) | Flavor::OpenSearch(v) => v.clone(),
                    Flavor::Serverless => "8.11.0".into(),
                };
                Reply::json(
                    200,
                    json!({ "nodes": { "5lfLsgM2T36zvBUkWIdqLg": { "version": v } } }),
                )
            }
            ("POST", [index, "_pit"]) if cfg.flavor.has_es_pit() => {
                let (id, shards) = open_pit(sh, index, q, "46ToAwMDaWR5BXV1aWQy")?;
                Reply::json(
                    200,
                    json!({ "id": id, "_shards": { "total": shards, "successful": shards, "skipped": 0, "failed": 0 } }),
                )
            }
            ("DELETE", ["_pit"]) if cfg.flavor.has_es_pit() => {
                let b = parse_body(body)?;
                let id = b["id"].as_str().ok_or_else(|| {
                    err(
                        400,
                        "action_request_validation_exception",
                        "Validation Failed: 1: [id] is not specified;",
                    )
                })?;
                let mut st = sh.store.lock().unwrap();
                let now = Instant::now();
                let freed = match st.pits.remove(id) {
                    Some(p) => {
                        // Other ids of a rotated PIT name the same context: free them too.
                        st.pits.retain(|_, o| o.group != p.group);
                        p.expires > now
                    }
                    None => false,
                };
                Reply::json(
                    if freed { 200 } else { 404 },
                    json!({ "succeeded": freed, "num_freed": freed as u32 }),
                )
            }
            ("POST", [index, "_search", "point_in_time"]) if cfg.flavor.has_os_pit() => {
                let (id, shards) = open_pit(sh, index, q, "o463QQEPbXktaW5kZXgWN0xW")?;
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                Reply::json(
                    200,
                    json!({ "pit_id": id, "_shards": { "total": shards, "successful": shards, "skipped": 0, "failed": 0 }, "creation_time": created }),
                )
            }
            ("DELETE", ["_search", "point_in_time"]) if cfg.flavor.has_os_pit() => {
                let b = parse_body(body)?;
                let ids: Vec<String> = match &b["pit_id"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect(),
                    _ => {
                        return Err(err(
                            400,
                            "action_request_validation_exception",
                            "Validation Failed: 1: no pit ids specified;",
                        ))
                    }
                };
                let mut st = sh.store.lock().unwrap();
                // OpenSearch 2.19 and 3.6 answer `successful: true` for an
                // id already closed or expired, with 200.
                let pits: Vec<Value> = ids
                    .iter()
                    .map(|id| {
                        if let Some(p) = st.pits.remove(id) {
                            st.pits.retain(|_, o| o.group != p.group);
                        }
                        json!({ "successful": true, "pit_id": id })
                    })
                    .collect();
                Reply::json(200, json!({ "pits": pits }))
            }
            ("DELETE", ["_search", "point_in_time", "_all"]) if cfg.flavor.has_os_pit() => {
                let mut st = sh.store.lock().unwrap();
                let pits: Vec<Value> = st
                    .pits
                    .drain()
                    .map(|(id, _)| json!({ "successful": true, "pit_id": id }))
                    .collect();
                Reply::json(200, json!({ "pits": pits }))
            }
            ("POST" | "GET", ["_search"]) => search(sh, None, q, body)?,
            ("POST" | "GET", [index, "_search"]) => search(sh, Some(index), q, body)?,
            ("POST" | "GET", ["_search", "scroll"]) => {
                let b = parse_body(body)?;
                let id = b["scroll_id"].as_str().unwrap_or("").to_string();
                let ka = keep_alive(b["scroll"].as_str().or(q.get("scroll").map(String::as_str)))?;
                scroll_next(sh, &id, ka)?
            }
            ("DELETE", ["_search", "scroll"]) => {
                let b = parse_body(body)?;
                let ids: Vec<String> = match &b["scroll_id"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect(),
                    _ => vec![],
                };
                let mut st = sh.store.lock().unwrap();
                let n = ids
                    .iter()
                    .filter(|i| st.scrolls.remove(i.as_str()).is_some())
                    .count();
                Reply::json(
                    if n > 0 { 200 } else { 404 },
                    json!({ "succeeded": true, "num_freed": n }),
                )
            }
            ("POST" | "PUT", ["_bulk"]) => do_bulk(sh, None, body, reject_items)?,
            ("POST" | "PUT", [index, "_bulk"]) => do_bulk(sh, Some(index), body, reject_items)?,
            ("PUT" | "POST", ["_index_template", name]) => {
                let b = parse_body(body)?;
                if name.contains(',') {
                    return Err(err(
                        400,
                        "invalid_index_template_exception",
                        &format!(
                            "index_template [{name}] invalid, cause [name must not contain a ',']"
                        ),
                    ));
                }
                if b["index_patterns"].is_null() {
                    return Err(err(
                        400,
                        "action_request_validation_exception",
                        "Validation Failed: 1: index patterns are missing;",
                    ));
                }
                let mut st = sh.store.lock().unwrap();
                if q.get("create").map(String::as_str) == Some("true")
                    && st.templates.contains_key(*name)
                {
                    return Err(err(
                        400,
                        "illegal_argument_exception",
                        &format!("index template [{name}] already exists"),
                    ));
                }
                st.templates.insert(name.to_string(), b);
                Reply::json(200, json!({ "acknowledged": true }))
            }
            ("GET" | "HEAD", ["_index_template", name]) => {
                let st = sh.store.lock().unwrap();
                let found: Vec<Value> = st
                    .templates
                    .iter()
                    .filter(|(n, _)| store::glob(name, n))
                    .map(|(n, t)| json!({ "name": n, "index_template": t }))
                    .collect();
                if found.is_empty() {
                    if name.contains('*') {
                        Reply::json(404, json!({ "index_templates": [] }))
                    } else {
                        err(
                            404,
                            "resource_not_found_exception",
                            &format!("index template matching [{name}] not found"),
                        )
                    }
                } else {
                    Reply::json(200, json!({ "index_templates": found }))
                }
            }
            ("DELETE", ["_index_template", name]) => {
                let mut st = sh.store.lock().unwrap();
                if st.templates.remove(*name).is_some() {
                    Reply::json(200, json!({ "acknowledged": true }))
                } else {
                    err(
                        404,
                        "resource_not_found_exception",
                        &format!("index_template [{name}] missing"),
                    )
                }
            }
            ("POST" | "GET", [_, "_refresh"]) | ("POST" | "GET", ["_refresh"]) => Reply::json(
                200,
                json!({ "_shards": { "total": 1, "successful": 1, "failed": 0 } }),
            ),
            ("GET", [index, "_mapping"]) => {
                let st = sh.store.lock().unwrap();
                let names = st.resolve(index).map_err(|n| index_not_found(&n))?;
                let mut out = serde_json::Map::new();
                for n in names {
                    out.insert(n.clone(), json!({ "mappings": st.indices[&n].mappings }));
                }
                Reply::json(200, Value::Object(out))
            }
            ("POST" | "GET", [index, "_count"]) => {
                let b = parse_body(body)?;
                let filter = match &b["query"] {
                    Value::Null => Filter::All,
                    qv => Filter::parse(qv).map_err(|e| err(400, "parsing_exception", &e))?,
                };
                let st = sh.store.lock().unwrap();
                let names = st.resolve(index).map_err(|n| index_not_found(&n))?;
                let snap = st.snapshot(&names);
                drop(st);
                let view = snap
                    .view(None, false, store::DocOrder::ShardDoc)
                    .map_err(|e| err(400, "illegal_argument_exception", &e))?;
                let n = (0..view.len())
                    .filter(|&i| filter.matches(&snap.doc(view.get(i).1).2))
                    .count();
                Reply::json(
                    200,
                    json!({ "count": n, "_shards": { "total": names.len(), "successful": names.len(), "skipped": 0, "failed": 0 } }),
                )
            }
            ("PUT", [index]) if !index.starts_with('_') => {
                let b = parse_body(body)?;
                let mut st = sh.store.lock().unwrap();
                if st.indices.contains_key(*index) {
                    return Err(err(
                        400,
                        "resource_already_exists_exception",
                        &format!("index [{index}/RyFItiK4R4egwbGF3_8GAg] already exists"),
                    ));
                }
                let mappings = if b["mappings"].is_null() {
                    st.template_mappings(index)
                } else {
                    b["mappings"].clone()
                };
                st.indices
                    .insert(index.to_string(), store::Index::new(mappings));
                Reply::json(
                    200,
                    json!({ "acknowledged": true, "shards_acknowledged": true, "index": index }),
                )
            }
            ("DELETE", [index]) if !index.starts_with('_') => {
                let mut st = sh.store.lock().unwrap();
                let names = st.resolve(index).map_err(|n| index_not_found(&n))?;
                for n in names {
                    st.indices.remove(&n);
                }
                Reply::json(200, json!({ "acknowledged": true }))
            }
            ("HEAD", [index]) if !index.starts_with('_') => {
                let st = sh.store.lock().unwrap();
                Reply::empty(if st.indices.contains_key(*index) {
                    200
                } else {
                    404
                })
            }
            ("GET", [index, "_doc", id]) => {
                let st = sh.store.lock().unwrap();
                let Some(idx) = st.indices.get(*index) else {
                    return Err(index_not_found(index));
                };
                match &idx.data {
                    store::IndexData::Stored { docs, by_id } => match by_id.get(*id) {
                        Some(&p) => Reply::json(
                            200,
                            json!({ "_index": index, "_id": id, "_version": docs[p].version, "found": true, "_source": *docs[p].source }),
                        ),
                        None => {
                            Reply::json(404, json!({ "_index": index, "_id": id, "found": false }))
                        }
                    },
                    _ => Reply::json(404, json!({ "_index": index, "_id": id, "found": false })),
                }
            }
            _ => no_handler(method, segs),
        })
    })();
    result.unwrap_or_else(|e| e)
}

/// A sort on `_shard_doc` where it does not exist, as OpenSearch 2.19 answers.
fn shard_doc_missing() -> Reply {
    let cause = json!({ "type": "query_shard_exception", "reason": store::SHARD_DOC_MISSING,
        "index": "logs", "index_uuid": "X46olyi5S3C71iTd6PXxDg" });
    Reply::json(
        400,
        json!({ "error": { "root_cause": [cause.clone()], "type": "search_phase_execution_exception",
            "reason": "all shards failed", "phase": "query", "grouped": true,
            "failed_shards": [ { "shard": 0, "index": "logs", "node": "b9SsS2_ERoufLgrJxVy9Pw", "reason": cause.clone() } ],
            "caused_by": cause }, "status": 400 }),
    )
}

fn index_not_found(name: &str) -> Reply {
    let cause = json!({ "type": "index_not_found_exception", "reason": format!("no such index [{name}]"),
        "resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name });
    let mut e = cause.clone();
    e["root_cause"] = json!([cause]);
    Reply::json(404, json!({ "error": e, "status": 404 }))
}

fn root(cfg: &ServerConfig) -> Reply {
    if cfg.forbid_root {
        return err(403, "security_exception", "action [cluster:monitor/main] is unauthorized for user [wiretrail] with effective roles [reader], this action is granted by the cluster privileges [monitor,manage,all]");
    }
    let version = match &cfg.flavor {
        Flavor::Elasticsearch(v) => {
            json!({ "number": v, "build_flavor": "default", "build_type": "docker", "build_hash": "00000000",
            "build_date": "2025-07-09T22:10:13.578182715Z", "build_snapshot": false, "lucene_version": "10.2.2",
            "minimum_wire_compatibility_version": "8.19.0", "minimum_index_compatibility_version": "8.0.0" })
        }
        Flavor::Serverless => {
            json!({ "number": "8.11.0", "build_flavor": "serverless", "build_type": "docker", "build_hash": "00000000",
            "build_date": "2023-10-31", "build_snapshot": false, "lucene_version": "9.7.0",
            "minimum_wire_compatibility_version": "8.11.0", "minimum_index_compatibility_version": "8.11.0" })
        }
        Flavor::OpenSearch(v) => {
            json!({ "distribution": "opensearch", "number": v, "build_type": "tar", "build_hash": "00000000",
            "build_date": "2024-01-01T00:00:00Z", "build_snapshot": false, "lucene_version": "9.10.0",
            "minimum_wire_compatibility_version": "7.10.0", "minimum_index_compatibility_version": "7.0.0" })
        }
    };
    let tagline = if cfg.flavor.is_es() {
        "You Know, for Search"
    } else {
        "The OpenSearch Project: https://opensearch.org/"
    };
    Reply::json(
        200,
        json!({ "name": if cfg.flavor == Flavor::Serverless { "serverless" } else { "instance-0000000000" },
        "cluster_name": "wiretrail_test", "cluster_uuid": "zk-HjQtYQGyL3NFSSu7InA", "version": version, "tagline": tagline }),
    )
}

fn search(
    sh: &Shared,
    index: Option<&str>,
    q: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Reply, Reply> {
    let b = parse_body(body)?;
    let pit = &b["pit"];
    if !pit.is_null() {
        if index.is_some() {
            return Err(err(400, "action_request_validation_exception", "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;"));
        }
        if q.contains_key("scroll") {
            return Err(err(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: using [point in time] is not allowed in a scroll context;",
            ));
        }
    }
    let spec =
        SearchSpec::parse(&b, !pit.is_null(), sh.cfg.flavor.sort_support()).map_err(|e| {
            if e == store::SHARD_DOC_MISSING {
                shard_doc_missing()
            } else {
                err(400, "x_content_parse_exception", &e)
            }
        })?;
    let after = match &b["search_after"] {
        Value::Null => None,
        a => Some(
            spec.sort
                .parse_after(a)
                .map_err(|e| err(400, "illegal_argument_exception", &e))?,
        ),
    };
    let mut st = sh.store.lock().unwrap();
    let (snap, pit_id) = if !pit.is_null() {
        let id = pit["id"].as_str().unwrap_or("").to_string();
        let now = Instant::now();
        match st.pits.get_mut(&id) {
            Some(p) if p.expires > now => {
                if let Some(ka) = pit["keep_alive"].as_str() {
                    p.expires = now + keep_alive(Some(ka))?;
                }
                let snap = p.snapshot.clone();
                let expires = p.expires;
                let group = p.group;
                // OpenSearch hands back the id it was given.
                let new_id = if sh.cfg.rotate_pit_id && sh.cfg.flavor.is_es() {
                    let nid = st.new_ctx_id("46ToAwMDaWR5BXV1aWQy");
                    st.pits.insert(
                        nid.clone(),
                        Pit {
                            snapshot: snap.clone(),
                            expires,
                            group,
                        },
                    );
                    // The previous id stays valid for a while, as on a real cluster.
                    nid
                } else {
                    id
                };
                (snap, Some(new_id))
            }
            _ => {
                st.pits.remove(&id);
                return Err(context_missing(&id));
            }
        }
    } else {
        let names = match index {
            Some(i) => st.resolve(i).map_err(|n| index_not_found(&n))?,
            None => st.indices.keys().cloned().collect(),
        };
        (Arc::new(st.snapshot(&names)), None)
    };
    let scroll = match q.get("scroll") {
        Some(s) => Some(keep_alive(Some(s))?),
        None => None,
    };
    drop(st);
    let page =
        run_search(&snap, &spec, after).map_err(|e| err(400, "illegal_argument_exception", &e))?;
    let shards = snap.shards.len();
    let mut resp = json!({
        "took": 1, "timed_out": false,
        "_shards": { "total": shards, "successful": shards, "skipped": 0, "failed": 0 },
        "hits": { "max_score": null, "hits": page.hits },
    });
    // `terms` aggregations (what a Kibana visualisation sends).
    let aggs = if b["aggs"].is_object() {
        &b["aggs"]
    } else {
        &b["aggregations"]
    };
    if let Some(aggs) = aggs.as_object() {
        let mut out = serde_json::Map::new();
        for (name, a) in aggs {
            let Some(field) = a["terms"]["field"].as_str() else {
                return Err(err(
                    400,
                    "x_content_parse_exception",
                    &format!("the test server knows only `terms` aggregations, not {a}"),
                ));
            };
            let size = a["terms"]["size"].as_u64().unwrap_or(10) as usize;
            out.insert(
                name.clone(),
                store::terms_agg(&snap, &spec.filter, field, size),
            );
        }
        resp["aggregations"] = Value::Object(out);
    }
    if let Some(t) = page.total {
        resp["hits"]["total"] =
            json!({ "value": t.min(10_000), "relation": if t > 10_000 { "gte" } else { "eq" } });
    }
    if let Some(id) = pit_id {
        resp["pit_id"] = json!(id);
    }
    if let Some(ka) = scroll {
        let mut st = sh.store.lock().unwrap();
        let id = st.new_ctx_id("DXF1ZXJ5QW5kRmV0Y2gBAAAAAAAAAD4W");
        st.scrolls.insert(
            id.clone(),
            Scroll {
                snapshot: snap,
                search: spec,
                after: page.last,
                expires: Instant::now() + ka,
            },
        );
        resp["_scroll_id"] = json!(id);
    }
    Ok(Reply::json(200, resp))
}

fn scroll_next(sh: &Shared, id: &str, ka: Duration) -> Result<Reply, Reply> {
    let mut st = sh.store.lock().unwrap();
    let now = Instant::now();
    let Some(sc) = st.scrolls.get_mut(id).filter(|s| s.expires > now) else {
        st.scrolls.remove(id);
        return Err(context_missing(id));
    };
    sc.expires = now + ka;
    let (snap, spec, after) = (sc.snapshot.clone(), sc.search.clone(), sc.after);
    drop(st);
    let page =
        run_search(&snap, &spec, after).map_err(|e| err(400, "illegal_argument_exception", &e))?;
    let mut st = sh.store.lock().unwrap();
    if let Some(sc) = st.scrolls.get_mut(id) {
        if page.last.is_some() {
            sc.after = page.last;
        }
    }
    let shards = snap.shards.len();
    Ok(Reply::json(
        200,
        json!({
            "_scroll_id": id, "took": 1, "timed_out": false,
            "_shards": { "total": shards, "successful": shards, "skipped": 0, "failed": 0 },
            "hits": { "max_score": null, "hits": page.hits },
        }),
    ))
}

fn do_bulk(
    sh: &Shared,
    index: Option<&str>,
    body: &Bytes,
    reject_items: &mut usize,
) -> Result<Reply, Reply> {
    let mut st = sh.store.lock().unwrap();
    let out = bulk::execute(&mut st, index, body, || {
        if *reject_items > 0 {
            *reject_items -= 1;
            true
        } else {
            false
        }
    });
    match out {
        Ok(v) => Ok(Reply::json(200, v)),
        Err((s, ty, reason)) => Err(err(s, ty, &reason)),
    }
}
