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
use std::sync::Arc;
use wiretrail_capture::PacketObs;
use wiretrail_correlate::model::Report;
use wiretrail_logs::ProxyError;

/// What reading the log source saw, so nothing is dropped silently.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogStats {
    pub lines: u64,
    pub proxy_errors: u64,
    /// Lines that looked like proxy errors but did not parse.
    pub unparsed: u64,
    /// Proxy errors outside the window.
    pub outside_window: u64,
    /// Proxy errors from another host than the one asked for.
    pub other_host: u64,
    /// One line per problem (file:line: what).
    pub problems: Vec<String>,
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
    /// only, when set), in time order.
    fn read_errors(&self, pipeline: &Pipeline, window: &Window) -> Result<LogBatch, EngineError>;

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
    fn read_errors(&self, pipeline: &Pipeline, window: &Window) -> Result<LogBatch, EngineError> {
        crate::adapters::read_errors(pipeline, window)
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

/// Keep the errors of `window` from `host` (when given), counting the rest.
pub fn filter_errors(
    errors: impl IntoIterator<Item = ProxyError>,
    window: &Window,
    host: Option<&str>,
    stats: &mut LogStats,
) -> Vec<ProxyError> {
    let mut out = Vec::new();
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
    }
    out.sort_by_key(|e| e.timestamp);
    out
}
