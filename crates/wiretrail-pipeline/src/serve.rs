//! `serve`: receive alert webhooks and investigate them.
//!
//! - `POST /alertmanager`, `POST /webhook`: an Alertmanager, Grafana or
//!   generic JSON body (see [`crate::alert`]); answered `202` with a run id
//!   once queued. `401` without the bearer token (checked before the body is
//!   read), `413` past the body bound, `400` for a body that names no time,
//!   `503` when the queue is full.
//! - `GET /runs/{id}`: that run's state and result.
//! - `GET /healthz`: liveness plus queue and run counters (no token).
//!
//! Investigations run on blocking threads, `concurrency` (1 or 2) at a time,
//! from a bounded queue; each is logged (tracing) with its window, incidents
//! and duration, and writes the pipeline's outputs (per run under
//! `runs_dir/<id>/` when set).

use crate::alert::{parse_alert, AlertDefaults};
use crate::config::Pipeline;
use crate::engine::Engine;
use crate::investigate::{investigate, InvestigateRequest};
use crate::outputs::OutputPlan;
use crate::progress::{Progress, Silent};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunState {
    pub id: String,
    /// `queued`, `running`, `done`, `failed`.
    pub state: &'static str,
    pub kind: &'static str,
    pub since: String,
    pub until: String,
    pub host: Option<String>,
    pub incidents: Option<usize>,
    pub causes: BTreeMap<String, u64>,
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
}

/// Runs kept for `GET /runs/{id}`.
const KEEP_RUNS: usize = 200;

impl Shared {
    fn update(&self, id: &str, f: impl FnOnce(&mut RunState)) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = runs.iter_mut().find(|r| r.id == id) {
            f(r);
        }
    }
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
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..opts.concurrency.clamp(1, 2) {
        tokio::spawn(worker(shared.clone(), rx.clone()));
    }
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "wiretrail serve listening");
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.opts.max_body_bytes;
    let hooks = Router::new()
        .route("/alertmanager", post(receive))
        .route("/webhook", post(receive))
        .route("/runs/{id}", get(run_state))
        .layer(DefaultBodyLimit::max(limit))
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

async fn receive(
    State(s): State<Arc<Shared>>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let p = &s.pipeline;
    let defaults = AlertDefaults {
        before: p.window.before,
        after: p.window.after,
        received: Utc::now(),
    };
    let alert = match parse_alert(&body, &defaults) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response()
        }
    };
    let n = s.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("{}-{n:04}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut pipeline = (**p).clone();
    if alert.host.is_some() && pipeline.host_filter.is_none() {
        pipeline.host_filter = alert.host.clone();
    }
    let mut outputs = OutputPlan::from_outputs(&pipeline.outputs, None, None, None, false);
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
        state: "queued",
        kind: alert.kind,
        since: alert.window.since().to_rfc3339(),
        until: alert.window.until().to_rfc3339(),
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
            text_out: None,
            publish: true,
        },
    };
    {
        let mut runs = s.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.push_back(state.clone());
        while runs.len() > KEEP_RUNS {
            runs.pop_front();
        }
    }
    match s.tx.try_send(job) {
        Ok(()) => {
            s.queued.fetch_add(1, Ordering::Relaxed);
            tracing::info!(run = %id, kind = alert.kind, window = %alert.window, host = ?alert.host, alerts = ?alert.names, "alert queued");
            eprintln!(
                "wiretrail: run {id} queued: {} alert, window {}, host {:?}",
                alert.kind, alert.window, alert.host
            );
            (StatusCode::ACCEPTED, Json(json!({"run": id, "since": state.since, "until": state.until, "host": state.host}))).into_response()
        }
        Err(_) => {
            s.update(&id, |r| {
                r.state = "failed";
                r.error = Some("queue full".into());
            });
            tracing::warn!(run = %id, "refused: queue full");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "60")],
                Json(json!({"error": "queue full, retry later"})),
            )
                .into_response()
        }
    }
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
        s.update(&job.id, |r| r.state = "running");
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
                    *causes
                        .entry(i.verdict.cause.as_str().to_string())
                        .or_insert(0) += 1;
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
                    st.state = "done";
                    st.incidents = Some(r.incidents.len());
                    st.causes = causes;
                    st.written = written;
                });
            }
            Ok(Err(e)) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(run = %id, seconds = secs, "run failed: {e}");
                eprintln!("wiretrail: run {id} failed after {secs:.1}s: {e}");
                s.update(&id, |st| {
                    st.state = "failed";
                    st.error = Some(e.to_string());
                });
            }
            Err(e) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(run = %id, "run panicked: {e}");
                s.update(&id, |st| {
                    st.state = "failed";
                    st.error = Some("investigation panicked".into());
                });
            }
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
