//! Reading a window's proxy errors: `wiretrail-logs` over files, stdin and
//! journald exports, `wiretrail-elastic` over an index.

use crate::config::{LogSource, Pipeline};
use crate::engine::{cause, filter_errors, EngineError, Keep, LogBatch, LogStats};
use crate::time::Window;
use std::path::PathBuf;
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource};
use wiretrail_logs::{LogReader, ParseConfig, ProxyError};

fn parse_config(p: &Pipeline, window: &Window) -> ParseConfig {
    let mut cfg = ParseConfig::new(p.tz);
    cfg.year = p.year;
    cfg.formats = p.log_formats;
    // Year-less stamps are placed in the year that puts them nearest the window.
    cfg.reference = window.until().to_utc();
    cfg
}

/// Expand globs (`logs/*.log*`); plain paths pass through (the reader
/// reports missing ones).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, EngineError> {
    let mut out = Vec::new();
    for p in paths {
        let s = p.to_string_lossy();
        if s.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(&s)
                .map_err(|e| EngineError::Logs(cause(format!("bad glob `{s}`: {e}"))))?
                .filter_map(Result::ok)
                .collect();
            if matched.is_empty() {
                return Err(EngineError::Logs(cause(format!("`{s}` matches no file"))));
            }
            matched.sort();
            out.extend(matched);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The window's proxy errors from the pipeline's log source.
pub(super) fn read_errors(
    p: &Pipeline,
    window: &Window,
    keep: Keep,
) -> Result<LogBatch, EngineError> {
    let cfg = parse_config(p, window);
    let mut stats = LogStats::default();
    let host = p.host_filter.as_deref();
    let errors: Vec<ProxyError> = match &p.logs {
        LogSource::Files(paths) | LogSource::Journald(paths) if !paths.is_empty() => {
            let mut rd = LogReader::open(&expand(paths)?, cfg)
                .map_err(|e| EngineError::Logs(Box::new(e)))?;
            let errs = filter_errors(&mut rd, window, host, keep, &mut stats);
            absorb(&mut stats, rd.stats());
            errs
        }
        LogSource::Files(_) | LogSource::Journald(_) | LogSource::Stdin => {
            let mut rd = LogReader::stdin(cfg);
            let errs = filter_errors(&mut rd, window, host, keep, &mut stats);
            absorb(&mut stats, rd.stats());
            errs
        }
        LogSource::Elasticsearch => from_elasticsearch(p, window, &cfg, keep, &mut stats)?,
    };
    Ok(LogBatch { errors, stats })
}

#[cfg(not(feature = "elasticsearch"))]
fn from_elasticsearch(
    _p: &Pipeline,
    _window: &Window,
    _cfg: &ParseConfig,
    _keep: Keep,
    _stats: &mut LogStats,
) -> Result<Vec<ProxyError>, EngineError> {
    Err(EngineError::Unsupported {
        feature: "elasticsearch",
        what: "reading logs from Elasticsearch",
    })
}

/// The window's proxy errors from the pipeline's cluster (`[elasticsearch]`).
#[cfg(feature = "elasticsearch")]
fn from_elasticsearch(
    p: &Pipeline,
    window: &Window,
    cfg: &ParseConfig,
    keep: Keep,
    stats: &mut LogStats,
) -> Result<Vec<ProxyError>, EngineError> {
    let host = p.host_filter.as_deref();
    let mut es = p.elasticsearch.clone().ok_or_else(|| {
        EngineError::Config(
            "logs come from Elasticsearch but the pipeline has no [elasticsearch]".into(),
        )
    })?;
    if let Some(h) = host {
        if !es.hosts.iter().any(|x| x == h) {
            es.hosts.push(h.to_string());
        }
    }
    let range = wiretrail_elastic::TimeRange {
        since: window.since().to_utc(),
        until: window.until().to_utc(),
    };
    let mut got = Vec::new();
    let mut problems = Vec::new();
    let fs = wiretrail_elastic::fetch_errors_blocking(
        &es,
        &range,
        cfg,
        |e| {
            got.push(e);
            std::ops::ControlFlow::Continue(())
        },
        |m| {
            problems.push(Problem::new(
                ProblemKind::UnparsedLines,
                ProblemSource::Elasticsearch {
                    request: format!("GET {}/_doc/{}", m.index, m.id),
                },
                format!("malformed proxy error document: {}", m.reason),
            ))
        },
    )
    .map_err(|e| EngineError::Logs(Box::new(e)))?;
    stats.unparsed += problems.len() as u64;
    stats.problems.extend(problems.into_iter().take(20));
    stats.problems.push(Problem::new(
        ProblemKind::Elasticsearch,
        ProblemSource::Run,
        format!("fetch: {fs:?}"),
    ));
    let errs = filter_errors(got, window, host, keep, stats);
    stats.lines = stats.proxy_errors + stats.unparsed;
    Ok(errs)
}

fn absorb(stats: &mut LogStats, rs: &wiretrail_logs::ReadStats) {
    stats.lines += rs.lines;
    stats.unparsed += rs.unparsed;
    // Unparsed lines, stamp conflicts, failed, growing (a live log: what
    // was left for the next run) and skipped inputs, typed by the reader
    // (kind, path, line).
    stats.problems.extend(rs.problems.iter().map(log_problem));
}

/// A log reader's problem as a report problem.
fn log_problem(p: &wiretrail_logs::ReadProblem) -> Problem {
    use wiretrail_logs::ReadProblemKind as K;
    let kind = match p.kind {
        K::Unparsed | K::StampConflict => ProblemKind::UnparsedLines,
        K::Failed | K::Skipped => ProblemKind::UnusableSource,
        K::Growing => ProblemKind::Growing,
    };
    Problem::new(
        kind,
        ProblemSource::Log {
            path: p.path.clone(),
            line: p.line,
        },
        p.message.clone(),
    )
}
