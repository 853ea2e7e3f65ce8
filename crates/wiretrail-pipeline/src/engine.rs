//! The seam between the modes and the crates that do the work.
//!
//! `investigate`, `batch` and `serve` (and the binary) only ever call an
//! [`Engine`]: read the window's proxy errors, analyse them (plan, catalog
//! and extract every node's captures in one pass per file, correlate),
//! render and write what was found, publish it. [`crate::CratesEngine`] is
//! the real one and the only code of this crate that calls the other
//! wiretrail crates (architecture invariant, checked by
//! `tests/architecture.rs`); tests use doubles so the modes' own logic
//! (windows, chunking, checkpoints, queues, outputs) is proven
//! independently of packet parsing.
//!
//! This module holds the trait and the types that cross it, and the
//! window/limit bookkeeping every engine shares ([`filter_errors`],
//! [`cap_errors`]).

use crate::config::Pipeline;
use crate::model::{PacketObs, Problem, ProblemKind, ProblemSource, ProxyError, Report, TimeSpan};
use crate::progress::Progress;
use crate::time::{Duration, Window};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::sync::Arc;

pub use crate::config::DEFAULT_MAX_ERRORS;

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

/// What a report is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// The terminal timeline.
    Terminal(TerminalStyle),
    /// The versioned JSON report (`docs/report-schema.md`).
    Json,
    /// The self-contained HTML report with its ladder diagram.
    Html,
}

/// How the terminal report looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TerminalStyle {
    pub color: Color,
    /// Cut lines to this many characters.
    pub width: Option<usize>,
    /// Timeline rows per incident (the telling ones are kept); `None`: all.
    pub max_rows_per_incident: Option<usize>,
}

/// Whether a text output carries ANSI colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    #[default]
    Plain,
    Ansi,
}

impl Color {
    /// `Ansi` when `on` (a terminal that wants colour).
    pub fn when(on: bool) -> Color {
        if on {
            Color::Ansi
        } else {
            Color::Plain
        }
    }
}

/// One packet of a pcapng slice, with what the report says about it.
#[derive(Debug, Clone)]
pub struct SlicePacket<'a> {
    pub packet: &'a PacketObs,
    /// Written as the packet's comment (joined with `; `).
    pub comments: Vec<String>,
}

/// An error kept as the cause of an [`EngineError`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an engine could not do a window's work. Each variant says which
/// stage failed; the cause (the crate's own error, naming the file or the
/// request) is its `source()`, which the binary prints as `caused by:`
/// lines.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the proxy logs (files, stdin, journald, Elasticsearch).
    #[error("reading the proxy logs")]
    Logs(#[source] Cause),
    /// Finding, cataloguing or reading the nodes' captures.
    #[error("reading the captures")]
    Capture(#[source] Cause),
    /// Talking to Elasticsearch (as the report sink).
    #[error("publishing to elasticsearch")]
    Publish(#[source] Cause),
    /// The pipeline asks for something it does not set up.
    #[error("{0}")]
    Config(String),
    /// The pipeline asks for something this build cannot do.
    #[error("this wiretrail was built without the `{feature}` feature, which {what} needs (rebuild with `--features {feature}`)")]
    Unsupported {
        feature: &'static str,
        what: &'static str,
    },
    #[error("interrupted")]
    Interrupted,
}

/// A cause made of a message alone (nothing below it).
pub fn cause(message: impl Into<String>) -> Cause {
    message.into().into()
}

/// Does the work of one window, and everything else that touches the other
/// crates. Implementations are shared across threads (serve runs two
/// investigations at once; batch runs chunks in order).
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

    /// Publish a report to the pipeline's Elasticsearch output; one line
    /// saying what arrived.
    fn publish(&self, pipeline: &Pipeline, report: &Report) -> Result<String, EngineError>;

    /// Render a report into `out`.
    fn render(&self, report: &Report, how: Rendering, out: &mut dyn Write) -> std::io::Result<()>;

    /// One pcapng of `packets`, in this order: one interface per node (and
    /// link type), named after it; comments as packet comments; a captured
    /// frame given twice is written once.
    fn write_pcapng(&self, packets: &[SlicePacket<'_>], out: &mut dyn Write)
        -> std::io::Result<()>;

    /// The report of a whole range from the reports of its chunks (in
    /// chunk order): incidents concatenated, the summary recomputed.
    fn merge(&self, parts: Vec<Report>, window: &Window) -> Report;

    /// The longest quiet time inside one incident for this pipeline
    /// (`correlate.incident_gap`, else the correlator's default): batch
    /// cuts its chunks only at quieter points, so no incident is split.
    fn incident_gap(&self, pipeline: &Pipeline) -> Duration;
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
