//! `serve`: receive alert webhooks and investigate them.
//!
//! - `POST /alertmanager`, `POST /webhook`: an Alertmanager, Grafana or
//!   generic JSON body (see [`crate::alert`]); answered `202` with a run id
//!   once queued. `401` without the bearer token (checked before the body is
//!   read), `413` past the body bound, `400` for a body that names no time,
//!   `503` when the queue is full.
//! - `GET /runs/{id}`: that run's state and result.
//! - `GET /healthz`: liveness plus queue, run and connection counters (no token).
//!
//! Investigations run on blocking threads, `concurrency` (1 or 2) at a time,
//! from a bounded queue; each is logged (tracing) with its window, incidents
//! and duration, and writes the pipeline's outputs (per run under
//! `runs_dir/<id>/` when set).
//!
//! Before a client is authenticated it can hold only bounded resources
//! ([`ConnLimits`]): at most `max_connections` connections are open at once;
//! at the cap a new connection takes the place of the oldest one that is
//! not being answered (still sending its head, or idle between keep-alive
//! requests), so slow clients cannot starve one that sends its request at
//! once (when every connection is being answered, the new one waits in the
//! listen queue). Each connection must send its request head within
//! `header_timeout` (also the longest a keep-alive connection may sit idle)
//! and its body within `body_timeout` (else `408`); a keep-alive connection
//! is closed after `max_requests_per_connection` requests. HTTP/1.1 only: webhook senders
//! speak it, and HTTP/2's preface would be read without a deadline.
//!
//! What is kept of finished runs is bounded too ([`Retention`]): the last
//! `keep_runs` finished runs answer `GET /runs/{id}` (queued and running ones
//! always do; an alert refused with `503` is not a run and evicts nothing),
//! and `runs_dir` keeps the newest `runs_keep` run directories no older than
//! `runs_max_age`.

use crate::alert::{parse_alert, AlertKind};
pub use crate::config::{ConnLimits, Retention};
use crate::config::{Pipeline, ServeSettings};
use crate::engine::{Color, Engine};
use crate::investigate::{alert_defaults, apply_alert, investigate, InvestigateRequest};
use crate::model::Cause;
use crate::outputs::{OutputPlan, Publish};
use crate::progress::{Progress, Silent};
use crate::time::Timestamp;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `None`: no authentication (allowed on loopback only; the CLI enforces it).
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub queue: usize,
    pub concurrency: usize,
    /// Each run's outputs under `<runs_dir>/<run id>/`; else the pipeline's outputs.
    pub runs_dir: Option<PathBuf>,
    pub retention: Retention,
    pub limits: ConnLimits,
}

impl Default for ServeOptions {
    /// The pipeline defaults, without a token.
    fn default() -> Self {
        ServeOptions::new(&ServeSettings::default(), None)
    }
}

impl ServeOptions {
    /// The pipeline's `[serve]` settings, with `token` (`None`: no
    /// authentication, see [`resolve_token`]).
    pub fn new(s: &ServeSettings, token: Option<String>) -> ServeOptions {
        ServeOptions {
            token,
            max_body_bytes: s.max_body_bytes,
            queue: s.queue,
            concurrency: s.concurrency,
            runs_dir: s.runs_dir.clone(),
            retention: s.retention,
            limits: s.limits,
        }
    }
}

/// Whether requests must carry the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// Always (the default).
    #[default]
    Required,
    /// Not when no token is configured and the server listens on loopback
    /// only (`--no-auth`).
    OffOnLoopback,
}

/// The bearer token the server requires: from `file` (first line), else the
/// environment variable `env`, else none; each at least 16 characters.
/// Without one the server answers unauthenticated only with
/// [`Auth::OffOnLoopback`] on a loopback address.
pub fn resolve_token(
    listen: &SocketAddr,
    file: Option<&Path>,
    env: &str,
    auth: Auth,
) -> Result<Option<String>, String> {
    match (load_token(file, env)?, auth) {
        (Some(t), _) => Ok(Some(t)),
        (None, Auth::OffOnLoopback) if is_loopback(listen) => Ok(None),
        (None, Auth::OffOnLoopback) => Err(format!(
            "--no-auth is only allowed on a loopback address, not {listen}"
        )),
        (None, Auth::Required) => Err(format!(
            "no token: set ${env}, or --token-file FILE (or --no-auth on loopback)"
        )),
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the server's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving on {addr}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Serve `pipeline` on `listen` (two runtime threads) until Ctrl-C.
pub fn serve_until_interrupted(
    engine: Arc<dyn Engine>,
    pipeline: Pipeline,
    opts: ServeOptions,
    listen: SocketAddr,
) -> Result<(), ServeError> {
    if !is_loopback(&listen) {
        tracing::warn!(%listen, "listening beyond loopback: put TLS in front (a reverse proxy)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().unwrap_or(listen);
        eprintln!(
            "wiretrail: serving pipeline `{}` on http://{addr}",
            pipeline.name
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("wiretrail: shutting down");
        };
        serve(engine, Arc::new(pipeline), opts, listener, shutdown)
            .await
            .map_err(|source| ServeError::Serve { addr, source })
    })
}

/// Where a run is. Serialized as its lowercase word (`queued`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunPhase {
    Queued,
    Running,
    Done,
    Failed,
}

impl RunPhase {
    /// Done or failed: the run will not change again.
    pub fn finished(self) -> bool {
        matches!(self, RunPhase::Done | RunPhase::Failed)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunState {
    pub id: String,
    pub state: RunPhase,
    pub kind: AlertKind,
    pub since: String,
    pub until: String,
    pub host: Option<String>,
    pub incidents: Option<usize>,
    pub causes: BTreeMap<Cause, u64>,
    pub written: Vec<String>,
    pub error: Option<String>,
}

struct Job {
    id: String,
    req: InvestigateRequest,
}

struct Shared {
    engine: Arc<dyn Engine>,
    opts: ServeOptions,
    pipeline: Arc<Pipeline>,
    tx: mpsc::Sender<Job>,
    runs: Mutex<VecDeque<RunState>>,
    seq: AtomicU64,
    queued: AtomicU64,
    running: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    /// Connections being served now.
    connections: AtomicU64,
    conns: Conns,
    /// Connections closed to make room at the cap.
    evicted: AtomicU64,
}

impl Shared {
    fn update(&self, id: &str, f: impl FnOnce(&mut RunState)) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = runs.iter_mut().find(|r| r.id == id) {
            f(r);
        }
        forget_finished(&mut runs, self.opts.retention.keep_runs);
    }

    /// Ids of the runs still to finish, whose directories must stay.
    fn live_ids(&self) -> Vec<String> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter()
            .filter(|r| !finished(r))
            .map(|r| r.id.clone())
            .collect()
    }
}

fn finished(r: &RunState) -> bool {
    r.state.finished()
}

/// Keep the last `keep` finished runs (oldest forgotten first); queued and
/// running ones are never forgotten (there are at most queue + concurrency).
fn forget_finished(runs: &mut VecDeque<RunState>, keep: usize) {
    let mut done = runs.iter().filter(|r| finished(r)).count();
    while done > keep {
        let Some(i) = runs.iter().position(finished) else {
            break;
        };
        runs.remove(i);
        done -= 1;
    }
}

/// Whether a directory name is a run id (`20260101T000000Z-0001`): only
/// those are ever removed from `runs_dir`.
fn is_run_id(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 21
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..].iter().all(u8::is_ascii_digit)
}

/// Apply the retention to `runs_dir`: keep the newest `runs_keep` run
/// directories no older than `runs_max_age`, never one in `live`, never
/// anything whose name is not a run id. Returns what was removed.
pub fn prune_runs_dir(dir: &Path, r: &Retention, live: &[String]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<(String, PathBuf, Option<std::time::SystemTime>)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            is_run_id(&name).then(|| (name, e.path(), modified))
        })
        .collect();
    // Newest first: ids start with their UTC time.
    runs.sort_by(|a, b| b.0.cmp(&a.0));
    let max_age = r.runs_max_age.to_std();
    let mut removed = Vec::new();
    for (i, (name, path, modified)) in runs.into_iter().enumerate() {
        if live.contains(&name) {
            continue;
        }
        let too_old = modified
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if (i >= r.runs_keep || too_old) && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        tracing::info!(dir = %dir.display(), removed = removed.len(), keep = r.runs_keep, max_age = %r.runs_max_age, "old run directories removed");
    }
    removed
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<dyn Engine>,
    pipeline: Arc<Pipeline>,
    opts: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<Job>(opts.queue.max(1));
    let shared = Arc::new(Shared {
        engine,
        opts: opts.clone(),
        pipeline,
        tx,
        runs: Mutex::new(VecDeque::new()),
        seq: AtomicU64::new(0),
        queued: AtomicU64::new(0),
        running: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        conns: Conns::default(),
        evicted: AtomicU64::new(0),
    });
    if let Some(dir) = &opts.runs_dir {
        let (dir, r) = (dir.clone(), opts.retention);
        let _ = tokio::task::spawn_blocking(move || prune_runs_dir(&dir, &r, &[])).await;
    }
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..opts.concurrency.clamp(1, 2) {
        tokio::spawn(worker(shared.clone(), rx.clone()));
    }
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "wiretrail serve listening");
    let app = router(shared.clone());
    let limits = opts.limits;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, mostly: wait a little, not spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // At the cap, the oldest connection that is not being
                // answered (still sending its head, or idle between
                // keep-alive requests) makes room: slow clients cannot
                // hold the server, and a client that sends its request at
                // once is served at once. When every connection is being
                // answered, the new one waits for the first to finish.
                if shared.conns.evict_oldest_idle() {
                    shared.evicted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::select! {
                    s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (id, ctl, evicted) = shared.conns.register();
        let watched = graceful.watch(connection(stream, app.clone(), limits, ctl));
        let shared = shared.clone();
        shared.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::select! {
                r = watched => if let Err(e) = r {
                    tracing::debug!("connection closed: {e}");
                },
                _ = evicted => tracing::debug!("connection closed to make room for a new one"),
            }
            shared.conns.remove(id);
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    // Let the connections finish what they are answering, briefly.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
            tracing::warn!("connections still open at shutdown: closed");
        }
    }
    Ok(())
}

/// The connections being served, oldest first.
#[derive(Debug, Default)]
struct Conns {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<ConnCtl>>>,
}

#[derive(Debug)]
struct ConnCtl {
    /// A request is being answered (its head was read, its response is not
    /// ready yet): not to be closed to make room.
    busy: std::sync::atomic::AtomicBool,
    /// Fired to close the connection.
    close: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Conns {
    fn register(&self) -> (u64, Arc<ConnCtl>, tokio::sync::oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ctl = Arc::new(ConnCtl {
            busy: std::sync::atomic::AtomicBool::new(false),
            close: Mutex::new(Some(tx)),
        });
        self.lock().insert(id, ctl.clone());
        (id, ctl, rx)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Close the oldest connection not being answered; false when every
    /// connection is busy answering a request.
    fn evict_oldest_idle(&self) -> bool {
        let open = self.lock();
        for ctl in open.values() {
            if ctl.busy.load(Ordering::Acquire) {
                continue;
            }
            let tx = ctl.close.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(tx) = tx {
                let _ = tx.send(());
                return true;
            }
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnCtl>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One HTTP/1.1 connection with the head timeout (also the idle keep-alive
/// timeout) and the per-connection request bound; `ctl.busy` says when a
/// request is being answered.
fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: ConnLimits,
    ctl: Arc<ConnCtl>,
) -> hyper::server::conn::http1::Connection<
    TokioIo<tokio::net::TcpStream>,
    impl hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
            Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send,
        > + Send,
> {
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let served = Arc::new(AtomicU32::new(0));
    let max = limits.max_requests_per_connection;
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let n = served.fetch_add(1, Ordering::Relaxed) + 1;
        ctl.busy.store(true, Ordering::Release);
        let answer = inner.call(req.map(axum::body::Body::new));
        let ctl = ctl.clone();
        async move {
            let answered = answer.await;
            ctl.busy.store(false, Ordering::Release);
            let mut resp = answered?;
            if n >= max {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(resp)
        }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.to_std())
        .keep_alive(true)
        // Heads larger than this are refused (431); bodies are bounded
        // separately by `max_body_bytes`.
        .max_buf_size(64 * 1024);
    b.serve_connection(TokioIo::new(stream), svc)
}

fn router(shared: Arc<Shared>) -> Router {
    let hooks = Router::new()
        .route("/alertmanager", post(receive))
        .route("/webhook", post(receive))
        .route("/runs/{id}", get(run_state))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(hooks)
        .with_state(shared)
}

/// Refuse before the body is read: a wrong token costs us nothing.
async fn auth(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.opts.token {
        let got = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(got.as_bytes(), token.as_bytes()) {
            tracing::warn!(path = %req.uri().path(), "refused: missing or wrong bearer token");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    // Refuse an announced oversize body before reading it.
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if len.is_some_and(|l| l > s.opts.max_body_bytes) {
        return too_large(s.opts.max_body_bytes);
    }
    next.run(req).await
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({"error": format!("body larger than {limit} bytes")})),
    )
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "queued": s.queued.load(Ordering::Relaxed),
        "running": s.running.load(Ordering::Relaxed),
        "completed": s.completed.load(Ordering::Relaxed),
        "failed": s.failed.load(Ordering::Relaxed),
        "connections": s.connections.load(Ordering::Relaxed),
        "max_connections": s.opts.limits.max_connections,
        "connections_closed_for_room": s.evicted.load(Ordering::Relaxed),
        "pipeline": s.pipeline.name,
    }))
}

async fn run_state(State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    let runs = s.runs.lock().unwrap_or_else(|e| e.into_inner());
    match runs.iter().find(|r| r.id == id) {
        Some(r) => Json(r.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no such run"}))).into_response(),
    }
}

/// Read the body within `body_timeout` and `max_body_bytes`.
async fn read_body(s: &Shared, req: Request) -> Result<axum::body::Bytes, Response> {
    let limit = s.opts.max_body_bytes;
    let wait = s.opts.limits.body_timeout;
    match tokio::time::timeout(wait.to_std(), axum::body::to_bytes(req.into_body(), limit)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(c) = cause {
                if c.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large(limit));
                }
                cause = c.source();
            }
            Err((
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("reading the body: {e}")})),
            )
                .into_response())
        }
        Err(_) => {
            tracing::warn!("refused: body not received within {wait}");
            Err((
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                Json(json!({"error": format!("body not received within {wait}")})),
            )
                .into_response())
        }
    }
}

async fn receive(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let body = match read_body(&s, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let p = &s.pipeline;
    let alert = match parse_alert(&body, &alert_defaults(p, Timestamp::now())) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response()
        }
    };
    // A place in the queue first: an alert refused with 503 is not a run
    // and must not push a finished run out of `/runs`.
    let Ok(slot) = s.tx.try_reserve() else {
        tracing::warn!(kind = alert.kind.as_str(), window = %alert.window, "refused: queue full");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "60")],
            Json(json!({"error": "queue full, retry later"})),
        )
            .into_response();
    };
    let n = s.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("{}-{n:04}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut pipeline = (**p).clone();
    apply_alert(&mut pipeline, &alert);
    let mut outputs = OutputPlan::from_outputs(&pipeline.outputs, None, None, None, Color::Plain);
    outputs.terminal = false;
    if let Some(dir) = &s.opts.runs_dir {
        let d = dir.join(&id);
        outputs.json = Some(d.join("report.json"));
        outputs.html = Some(d.join("report.html"));
        if outputs.pcap_dir.is_some() {
            outputs.pcap_dir = Some(d.join("slices"));
        }
    }
    let state = RunState {
        id: id.clone(),
        state: RunPhase::Queued,
        kind: alert.kind,
        since: alert.window.since().to_string(),
        until: alert.window.until().to_string(),
        host: pipeline.host_filter.clone(),
        incidents: None,
        causes: BTreeMap::new(),
        written: Vec::new(),
        error: None,
    };
    let job = Job {
        id: id.clone(),
        req: InvestigateRequest {
            pipeline,
            window: alert.window,
            outputs,
            publish: Publish::AsConfigured,
        },
    };
    {
        let mut runs = s.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.push_back(state.clone());
        forget_finished(&mut runs, s.opts.retention.keep_runs);
    }
    s.queued.fetch_add(1, Ordering::Relaxed);
    slot.send(job);
    tracing::info!(run = %id, kind = alert.kind.as_str(), window = %alert.window, host = ?alert.host, alerts = ?alert.names, "alert queued");
    eprintln!(
        "wiretrail: run {id} queued: {} alert, window {}, host {:?}",
        alert.kind, alert.window, alert.host
    );
    (
        StatusCode::ACCEPTED,
        Json(json!({"run": id, "since": state.since, "until": state.until, "host": state.host})),
    )
        .into_response()
}

async fn worker(s: Arc<Shared>, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let job = {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(j) => j,
                None => return,
            }
        };
        s.queued.fetch_sub(1, Ordering::Relaxed);
        s.running.fetch_add(1, Ordering::Relaxed);
        s.update(&job.id, |r| r.state = RunPhase::Running);
        let started = std::time::Instant::now();
        let engine = s.engine.clone();
        let id = job.id.clone();
        let result = tokio::task::spawn_blocking(move || {
            let progress: Arc<dyn Progress> = Arc::new(Silent);
            let mut sink = std::io::sink();
            investigate(engine.as_ref(), &job.req, &progress, &mut sink)
        })
        .await;
        s.running.fetch_sub(1, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(Ok(out)) => {
                s.completed.fetch_add(1, Ordering::Relaxed);
                let r = &out.analysis.report;
                let mut causes = BTreeMap::new();
                for i in &r.incidents {
                    *causes.entry(i.verdict.cause).or_insert(0) += 1;
                }
                tracing::info!(run = %id, incidents = r.incidents.len(), ?causes, seconds = secs, published = ?out.published, "run done");
                // One line per run on stderr whatever the log level: an
                // operator watching the service sees every investigation.
                eprintln!(
                    "wiretrail: run {id}: {} incident(s) {causes:?} in {secs:.1}s",
                    r.incidents.len()
                );
                let written = out
                    .written
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                s.update(&id, |st| {
                    st.state = RunPhase::Done;
                    st.incidents = Some(r.incidents.len());
                    st.causes = causes;
                    st.written = written;
                });
            }
            Ok(Err(e)) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
                let e = crate::diag::error_chain(&e).join(": ");
                tracing::error!(run = %id, seconds = secs, "run failed: {e}");
                eprintln!("wiretrail: run {id} failed after {secs:.1}s: {e}");
                s.update(&id, |st| {
                    st.state = RunPhase::Failed;
                    st.error = Some(e);
                });
            }
            Err(e) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(run = %id, "run panicked: {e}");
                s.update(&id, |st| {
                    st.state = RunPhase::Failed;
                    st.error = Some("investigation panicked".into());
                });
            }
        }
        if let Some(dir) = s.opts.runs_dir.clone() {
            let (r, live) = (s.opts.retention, s.live_ids());
            let _ = tokio::task::spawn_blocking(move || prune_runs_dir(&dir, &r, &live)).await;
        }
    }
}

/// Whether an address is loopback (serving elsewhere needs a token).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// The bearer token from a file (first line) or the named environment variable.
pub fn load_token(file: Option<&std::path::Path>, env: &str) -> Result<Option<String>, String> {
    if let Some(f) = file {
        let t =
            std::fs::read_to_string(f).map_err(|e| format!("token file {}: {e}", f.display()))?;
        let t = t.lines().next().unwrap_or("").trim().to_string();
        if t.len() < 16 {
            return Err(format!(
                "token file {}: token shorter than 16 characters",
                f.display()
            ));
        }
        return Ok(Some(t));
    }
    match std::env::var(env) {
        Ok(t) if t.trim().len() >= 16 => Ok(Some(t.trim().to_string())),
        Ok(_) => Err(format!("${env}: token shorter than 16 characters")),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, state: RunPhase) -> RunState {
        RunState {
            id: id.into(),
            state,
            kind: AlertKind::Generic,
            since: String::new(),
            until: String::new(),
            host: None,
            incidents: None,
            causes: BTreeMap::new(),
            written: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn only_finished_runs_are_forgotten_oldest_first() {
        let mut runs: VecDeque<RunState> = [
            run("a", RunPhase::Done),
            run("b", RunPhase::Running),
            run("c", RunPhase::Failed),
            run("d", RunPhase::Queued),
            run("e", RunPhase::Done),
        ]
        .into();
        forget_finished(&mut runs, 1);
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "d", "e"]);
    }

    #[test]
    fn room_is_made_from_the_oldest_connection_not_being_answered() {
        let c = Conns::default();
        let (a, ctl_a, mut rx_a) = c.register();
        let (_, _ctl_b, mut rx_b) = c.register();
        ctl_a.busy.store(true, Ordering::Release);
        // `a` is answering a request: `b`, although newer, goes.
        assert!(c.evict_oldest_idle());
        assert!(rx_b.try_recv().is_ok());
        assert!(rx_a.try_recv().is_err());
        // Only `a` left, busy: nothing to close.
        assert!(!c.evict_oldest_idle());
        ctl_a.busy.store(false, Ordering::Release);
        assert!(c.evict_oldest_idle());
        assert!(rx_a.try_recv().is_ok());
        c.remove(a);
        assert!(!c.evict_oldest_idle());
    }

    #[test]
    fn runs_dir_retention_removes_only_old_run_directories() {
        let d = tempfile::tempdir().unwrap();
        let ids = [
            "20260101T000000Z-0001",
            "20260101T000001Z-0002",
            "20260101T000002Z-0003",
            "20260101T000003Z-0004",
        ];
        for id in ids {
            std::fs::create_dir_all(d.path().join(id)).unwrap();
            std::fs::write(d.path().join(id).join("report.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(d.path().join("keep-me")).unwrap();
        std::fs::write(d.path().join("20260101T000000Z-0009"), "a file").unwrap();
        let r = Retention {
            keep_runs: 10,
            runs_keep: 2,
            runs_max_age: crate::time::Duration::from_hours(1),
        };
        // The oldest is still running: kept whatever the count says.
        let removed = prune_runs_dir(d.path(), &r, &[ids[0].to_string()]);
        assert_eq!(removed, vec![d.path().join(ids[1])]);
        for keep in [ids[0], ids[2], ids[3], "keep-me", "20260101T000000Z-0009"] {
            assert!(d.path().join(keep).exists(), "{keep}");
        }
        assert!(is_run_id("20260101T000003Z-12345"));
        assert!(!is_run_id("20260101T000003Z-"));
        assert!(!is_run_id("../20260101T000003Z-0001"));
    }
}
