//! The seam between the modes and the crates that do the work.
//!
//! `investigate`, `batch` and `serve` only ever call an [`Engine`]: read the
//! window's proxy errors, then analyse them (plan, catalog and extract every
//! node's captures in one pass per file, correlate). [`CratesEngine`] is the
//! real one; tests use doubles so the modes' own logic (windows, chunking,
//! checkpoints, queues) is proven independently of packet parsing.

use crate::config::Pipeline;
use crate::progress::Progress;
use crate::time::Window;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use wiretrail_capture::PacketObs;
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource, Report, TimeSpan};
use wiretrail_logs::ProxyError;

/// Proxy errors analysed per window unless `correlate.max_errors` (or
/// `--max-errors`) says otherwise. Each analysed error costs a few KiB at
/// the peak (its record, its flow query, its connection views, its rows in
/// the report): 50 000 keep an investigation near 200 MB.
pub const DEFAULT_MAX_ERRORS: usize = 50_000;

/// How many of a window's errors are kept for analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every one (batch reads a whole range this way and caps each chunk).
    All,
    /// The earliest N; the later ones are counted, not held, and said in a
    /// typed `limit` problem.
    Earliest(usize),
}

impl Keep {
    /// From a `max_errors` setting (`None`: no limit).
    pub fn from_limit(max: Option<usize>) -> Keep {
        match max {
            Some(n) => Keep::Earliest(n),
            None => Keep::All,
        }
    }
}

/// What reading the log source saw, so nothing is dropped silently.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogStats {
    pub lines: u64,
    pub proxy_errors: u64,
    /// Lines that looked like proxy errors but did not parse.
    pub unparsed: u64,
    /// Proxy errors outside the window.
    pub outside_window: u64,
    /// Proxy errors from another host than the one asked for.
    pub other_host: u64,
    /// Proxy errors of the window past the limit ([`Keep::Earliest`]):
    /// counted, not analysed.
    #[serde(default)]
    pub over_limit: u64,
    /// Every problem of the read, typed (what, where).
    pub problems: Vec<Problem>,
}

/// The proxy errors of a window.
#[derive(Debug, Clone, Default)]
pub struct LogBatch {
    /// In time order.
    pub errors: Vec<ProxyError>,
    pub stats: LogStats,
}

/// The result of analysing one window.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub report: Report,
    /// Matched packets (all nodes), for the pcapng slices.
    pub packets: Vec<PacketObs>,
    /// What each capture node's fetch/extraction moved, for run logs.
    pub capture_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("logs: {0}")]
    Logs(String),
    #[error("captures: {0}")]
    Capture(String),
    #[error("correlation: {0}")]
    Correlate(String),
    #[error("elasticsearch: {0}")]
    Elastic(String),
    #[error("{0}")]
    Config(String),
    #[error("interrupted")]
    Interrupted,
}

/// Does the work of one window. Implementations are shared across threads
/// (serve runs two investigations at once; batch runs chunks in order).
pub trait Engine: Send + Sync {
    /// The pipeline's proxy errors inside `window` (and from `pipeline.host_filter`
    /// only, when set), in time order; past `keep`, only counted.
    fn read_errors(
        &self,
        pipeline: &Pipeline,
        window: &Window,
        keep: Keep,
    ) -> Result<LogBatch, EngineError>;

    /// Plan, read every node's captures once for all incidents, correlate.
    fn analyse(
        &self,
        pipeline: &Pipeline,
        window: &Window,
        errors: Vec<ProxyError>,
        log_stats: &LogStats,
        progress: &Arc<dyn Progress>,
    ) -> Result<Analysis, EngineError>;
}

/// The engine made of the wiretrail crates.
#[derive(Debug, Default, Clone, Copy)]
pub struct CratesEngine;

impl Engine for CratesEngine {
    fn read_errors(
        &self,
        pipeline: &Pipeline,
        window: &Window,
        keep: Keep,
    ) -> Result<LogBatch, EngineError> {
        crate::adapters::read_errors(pipeline, window, keep)
    }

    fn analyse(
        &self,
        pipeline: &Pipeline,
        window: &Window,
        errors: Vec<ProxyError>,
        log_stats: &LogStats,
        progress: &Arc<dyn Progress>,
    ) -> Result<Analysis, EngineError> {
        crate::adapters::analyse(pipeline, window, errors, log_stats, progress)
    }
}

/// Keep the errors of `window` from `host` (when given), counting the rest,
/// in time order; with [`Keep::Earliest`], never more than twice the limit
/// is held while reading, and the errors past it are only counted (and a
/// `limit` problem says so in `stats`).
pub fn filter_errors(
    errors: impl IntoIterator<Item = ProxyError>,
    window: &Window,
    host: Option<&str>,
    keep: Keep,
    stats: &mut LogStats,
) -> Vec<ProxyError> {
    let mut out = Vec::new();
    // The earliest of the errors dropped so far.
    let mut first_dropped: Option<DateTime<Utc>> = None;
    let mut dropped = 0u64;
    let mut trim = |out: &mut Vec<ProxyError>, n: usize| {
        out.sort_by_key(|e| e.timestamp);
        for e in out.drain(n.min(out.len())..) {
            dropped += 1;
            first_dropped = Some(first_dropped.map_or(e.timestamp, |f| f.min(e.timestamp)));
        }
    };
    for e in errors {
        stats.proxy_errors += 1;
        if !window.contains(e.timestamp) {
            stats.outside_window += 1;
            continue;
        }
        if let (Some(want), Some(got)) = (host, e.host.as_deref()) {
            if !got.eq_ignore_ascii_case(want) {
                stats.other_host += 1;
                continue;
            }
        }
        out.push(e);
        if let Keep::Earliest(n) = keep {
            if out.len() >= n.saturating_mul(2).max(1024) {
                trim(&mut out, n);
            }
        }
    }
    match keep {
        Keep::Earliest(n) => trim(&mut out, n),
        Keep::All => out.sort_by_key(|e| e.timestamp),
    }
    if let Some(first) = first_dropped {
        stats.over_limit += dropped;
        stats
            .problems
            .push(limit_problem(out.len(), dropped, first, window));
    }
    out
}

/// Keep the earliest errors of time-sorted `errors` (batch: per chunk);
/// the problem says what was left out.
pub fn cap_errors(
    mut errors: Vec<ProxyError>,
    keep: Keep,
    window: &Window,
) -> (Vec<ProxyError>, Option<Problem>) {
    let Keep::Earliest(n) = keep else {
        return (errors, None);
    };
    if errors.len() <= n {
        return (errors, None);
    }
    let dropped = errors.split_off(n);
    let first = dropped
        .iter()
        .map(|e| e.timestamp)
        .min()
        .expect("something was dropped");
    let p = limit_problem(errors.len(), dropped.len() as u64, first, window);
    (errors, Some(p))
}

/// The `limit` problem: how many were analysed, how many from when on were
/// not, and how to widen it.
fn limit_problem(
    kept: usize,
    dropped: u64,
    first_dropped: DateTime<Utc>,
    window: &Window,
) -> Problem {
    use chrono::SecondsFormat::AutoSi;
    let from = first_dropped.to_rfc3339_opts(AutoSi, true);
    Problem::new(
        ProblemKind::Limit,
        ProblemSource::Run,
        format!(
            "{} proxy errors in {window}: the {kept} earliest were analysed, the {dropped} from {from} on were not \
             (at most {kept} per window); narrow the window (--since/--until) or raise correlate.max_errors (--max-errors, 0 = no limit)",
            kept as u64 + dropped
        ),
    )
    .with_span(TimeSpan {
        since: first_dropped,
        until: window.until().to_utc(),
    })
}
