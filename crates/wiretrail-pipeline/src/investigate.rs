//! `investigate`: one window, after an alert.
//!
//! Flow: pipeline (file or flags) + overrides → window (flags, or an alert
//! body) → read the window's proxy errors → analyse (plan, catalog, extract,
//! correlate) → outputs (terminal, JSON, HTML, pcapng slices) → publish to
//! Elasticsearch when the pipeline names it.
//!
//! The rules every front end shares live here, once: how command-line
//! values override a pipeline ([`apply_overrides`]), which window the flags
//! or an alert mean ([`resolve_window`]), and that an alert's host label
//! becomes the host filter unless one was given ([`apply_alert`]).

use crate::alert::{parse_alert, AlertDefaults, AlertError, AlertRequest};
use crate::config::{parse_node_flag, ConfigError, LogSource, Pipeline};
use crate::engine::{Analysis, Engine, EngineError, Keep};
use crate::outputs::{publish, write_outputs, OutputError, OutputPlan, Publish};
use crate::progress::Progress;
use crate::time::{parse_duration, parse_time, parse_tz, Timestamp, Window};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Command-line values that override the pipeline file. Strings are parsed
/// here (not by clap) because times need the pipeline's zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub since: Option<String>,
    pub until: Option<String>,
    pub at: Option<String>,
    pub window: Option<String>,
    /// `YYYY-MM-DD` in the pipeline's zone (batch).
    pub day: Option<String>,
    /// `NAME=LOCATION[,role=..][,offset=..]` defines or replaces a node;
    /// a bare `NAME` restricts the run to the named pipeline nodes.
    pub nodes: Vec<String>,
    /// Replace the log source with these files (`-` for stdin).
    pub logs: Vec<String>,
    pub tz: Option<String>,
    /// Only this proxy host's errors.
    pub host: Option<String>,
    /// The proxy's address on the backend side (`correlate.proxy_ip`).
    pub proxy_ip: Option<IpAddr>,
    /// Backend sockets the proxy dials (`correlate.upstreams`); replaces the
    /// pipeline's when given.
    pub upstreams: Vec<SocketAddr>,
    /// Proxy errors analysed per window, as written (0 = no limit).
    pub max_errors: Option<usize>,
    /// Terminal rows per incident, as written (0 = all).
    pub max_rows: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvestigateError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{origin}")]
    Alert {
        /// Where the alert came from (`--alert FILE`).
        origin: String,
        #[source]
        source: AlertError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

fn usage(s: impl Into<String>) -> InvestigateError {
    InvestigateError::Usage(s.into())
}

/// The pipeline a command runs: its file (or an empty one in the current
/// directory), with the command line's overrides applied.
pub fn load_pipeline(file: Option<&Path>, o: &Overrides) -> Result<Pipeline, InvestigateError> {
    let p = match file {
        Some(f) => Pipeline::load(f)?,
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| usage(format!("the current directory: {e}")))?;
            Pipeline::empty(&cwd)
        }
    };
    apply_overrides(p, o)
}

/// Apply everything but the window to the pipeline.
pub fn apply_overrides(mut p: Pipeline, o: &Overrides) -> Result<Pipeline, InvestigateError> {
    if o.proxy_ip.is_some() {
        p.correlate.proxy_ip = o.proxy_ip;
    }
    if !o.upstreams.is_empty() {
        p.correlate.upstreams = o.upstreams.clone();
    }
    if let Some(n) = o.max_errors {
        p.correlate.max_errors = crate::config::max_errors_setting(n);
    }
    if let Some(n) = o.max_rows {
        p.outputs.max_rows_per_incident = (n > 0).then_some(n);
    }
    if let Some(tz) = &o.tz {
        p.tz = Some(parse_tz(tz).map_err(|e| usage(format!("--tz: {e}")))?);
    }
    if !o.logs.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        p.logs = if o.logs.iter().any(|l| l == "-") {
            if o.logs.len() > 1 {
                return Err(usage("--logs -: stdin cannot be mixed with files"));
            }
            LogSource::Stdin
        } else {
            LogSource::Files(o.logs.iter().map(|l| cwd.join(l)).collect())
        };
    }
    if let Some(h) = &o.host {
        p.host_filter = Some(h.clone());
    }
    let (defs, picks): (Vec<&String>, Vec<&String>) = o.nodes.iter().partition(|n| n.contains('='));
    if !picks.is_empty() {
        for name in &picks {
            if p.node(name).is_none() {
                let hint = crate::diag::closest(name, p.nodes.iter().map(|n| n.name.as_str()))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                return Err(usage(format!("--node {name}: the pipeline has no such node{hint}; define one with --node {name}=DIR")));
            }
        }
        p.nodes.retain(|n| picks.iter().any(|k| n.name == **k));
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut defined: Vec<crate::config::NodeName> = Vec::new();
    for d in defs {
        let n = parse_node_flag(d, &cwd).map_err(|e| usage(format!("--node {d}: {e}")))?;
        // One flag replaces a pipeline node of its name; two flags of one
        // name are a mistake, not "the last one wins".
        if defined.contains(&n.name) {
            return Err(usage(format!(
                "--node {}: the node `{}` is given twice; give each node once",
                d, n.name
            )));
        }
        defined.push(n.name.clone());
        match p.nodes.iter_mut().find(|m| m.name == n.name) {
            Some(m) => *m = n,
            None => p.nodes.push(n),
        }
    }
    Ok(p)
}

/// The window from flags, else from the alert; `--window` alone means "the
/// last D up to now". All arithmetic is checked: a window outside the
/// times wiretrail can represent is a usage error naming the flags.
pub fn resolve_window(
    p: &Pipeline,
    o: &Overrides,
    alert: Option<&AlertRequest>,
    now: Timestamp,
) -> Result<Window, InvestigateError> {
    let t = |s: &str, flag: &str| parse_time(s, p.tz).map_err(|e| usage(format!("{flag}: {e}")));
    let before = match &o.window {
        Some(w) => parse_duration(w).map_err(|e| usage(format!("--window: {e}")))?,
        None => p.window.before,
    };
    // Which flags decided the window, for the message when it cannot be.
    let with_window = |what: &str| match &o.window {
        Some(w) => format!("{what} with --window {w}"),
        None => what.to_string(),
    };
    // No time flag and no alert: fall back to the window the pipeline pins.
    let pinned = o.day.is_none()
        && o.since.is_none()
        && o.until.is_none()
        && o.at.is_none()
        && alert.is_none();
    let (since, until, at) = if pinned {
        (&p.window.since, &p.window.until, &p.window.at)
    } else {
        (&o.since, &o.until, &o.at)
    };
    let w =
        match (&o.day, since, until, at) {
            (Some(day), None, None, None) => {
                Window::day(day, p.tz).map_err(|e| usage(format!("--day: {e}")))?
            }
            (Some(_), ..) => {
                return Err(usage(
                    "--day cannot be combined with --since, --until or --at",
                ))
            }
            (None, Some(_), _, Some(_)) | (None, _, Some(_), Some(_)) => {
                return Err(usage("--at cannot be combined with --since/--until"))
            }
            (None, Some(s), Some(u), None) => {
                Window::new(t(s, "--since")?, t(u, "--until")?).map_err(|e| usage(e.to_string()))?
            }
            (None, Some(s), None, None) => {
                let s = t(s, "--since")?;
                if o.window.is_some() {
                    Window::starting(s, before)
                        .map_err(|e| usage(format!("{}: {e}", with_window("--since"))))?
                } else {
                    Window::new(s, now).map_err(|e| usage(format!("--since: {e}")))?
                }
            }
            (None, None, Some(u), None) => Window::ending(t(u, "--until")?, before)
                .map_err(|e| usage(format!("{}: {e}", with_window("--until"))))?,
            (None, None, None, Some(at)) => Window::around(t(at, "--at")?, before, p.window.after)
                .map_err(|e| usage(format!("{}: {e}", with_window("--at"))))?,
            (None, None, None, None) => match (alert, &o.window) {
                (Some(a), _) => a.window,
                (None, Some(_)) => Window::ending(now, before)
                    .map_err(|e| usage(format!("{}: {e}", with_window("now"))))?,
                (None, None) => return Err(usage(
                    "which time? give --at T [--window 5m], --since T --until T, or --alert FILE",
                )),
            },
        };
    Ok(w)
}

/// How an alert body is read for this pipeline: its window defaults, and
/// `received` for bodies that name no time of their own.
pub fn alert_defaults(p: &Pipeline, received: Timestamp) -> AlertDefaults {
    AlertDefaults {
        before: p.window.before,
        after: p.window.after,
        received,
    }
}

/// An alert narrows the run to its proxy: its host label becomes the host
/// filter, unless one was given (`--host`, `logs.host`), which wins.
pub fn apply_alert(p: &mut Pipeline, alert: &AlertRequest) {
    if p.host_filter.is_none() {
        p.host_filter.clone_from(&alert.host);
    }
}

/// Parse an alert body (from `origin`, named in errors) for this pipeline
/// and apply it ([`apply_alert`]).
pub fn read_alert(
    p: &mut Pipeline,
    body: &[u8],
    origin: &str,
    received: Timestamp,
) -> Result<AlertRequest, InvestigateError> {
    let alert = parse_alert(body, &alert_defaults(p, received)).map_err(|source| {
        InvestigateError::Alert {
            origin: origin.to_string(),
            source,
        }
    })?;
    apply_alert(p, &alert);
    tracing::info!(kind = %alert.kind, window = %alert.window, host = ?alert.host, "alert read");
    Ok(alert)
}

/// One investigation, ready to run.
#[derive(Debug, Clone)]
pub struct InvestigateRequest {
    pub pipeline: Pipeline,
    pub window: Window,
    pub outputs: OutputPlan,
    /// Publish to the pipeline's Elasticsearch output (when it names one).
    pub publish: Publish,
}

#[derive(Debug, Clone)]
pub struct InvestigateOutcome {
    pub analysis: Analysis,
    pub written: Vec<PathBuf>,
    /// Publishing result line, when an Elasticsearch output is configured.
    pub published: Option<String>,
}

impl InvestigateOutcome {
    pub fn found(&self) -> bool {
        !self.analysis.report.incidents.is_empty()
    }
}

/// Check a pipeline is runnable before reading anything.
pub fn check_runnable(p: &Pipeline) -> Result<(), InvestigateError> {
    if p.nodes.is_empty() {
        return Err(usage(
            "no capture nodes: add [[nodes]] to the pipeline or --node NAME=DIR",
        ));
    }
    Ok(())
}

/// Run one investigation and write its outputs.
pub fn investigate(
    engine: &dyn Engine,
    req: &InvestigateRequest,
    progress: &Arc<dyn Progress>,
    stdout: &mut dyn Write,
) -> Result<InvestigateOutcome, InvestigateError> {
    check_runnable(&req.pipeline)?;
    progress.stage(&format!("reading logs for {}", req.window));
    let keep = Keep::from_limit(req.pipeline.correlate.max_errors);
    let logs = engine.read_errors(&req.pipeline, &req.window, keep)?;
    tracing::info!(errors = logs.errors.len(), lines = logs.stats.lines, window = %req.window, "logs read");
    progress.stage(&format!("analysing {} proxy errors", logs.errors.len()));
    let analysis = engine.analyse(
        &req.pipeline,
        &req.window,
        logs.errors,
        &logs.stats,
        progress,
    )?;
    progress.incidents(analysis.report.incidents.len() as u64);
    // Bars off the terminal before the report is printed on it.
    progress.finish();
    let written = write_outputs(
        engine,
        &analysis.report,
        &analysis.packets,
        &req.outputs,
        stdout,
    )?;
    let published = publish(engine, &req.pipeline, &analysis.report, req.publish)?;
    Ok(InvestigateOutcome {
        analysis,
        written,
        published,
    })
}
