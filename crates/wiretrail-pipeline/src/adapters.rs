//! The only module that calls the other wiretrail crates' APIs: logs,
//! capture catalog and extraction, correlation, Elasticsearch. Each function
//! is small so an API change there is one edit here.

use crate::config::{CaptureLocation, LogSource, Node, Pipeline};
use crate::engine::{filter_errors, Analysis, EngineError, LogBatch, LogStats};
use crate::progress::Progress;
use crate::remote;
use crate::time::Window;
use std::path::PathBuf;
use std::sync::Arc;
use wiretrail_capture::catalog::{Catalog, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions, ProgressEvent};
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource, Report};
use wiretrail_correlate::{CorrelateConfig, NodeInput};
use wiretrail_logs::{LogReader, ParseConfig, ProxyError};

fn parse_config(p: &Pipeline, window: &Window) -> ParseConfig {
    let mut cfg = ParseConfig::new(p.tz);
    cfg.year = p.year;
    cfg.formats = p.log_formats;
    // Year-less stamps are placed in the year that puts them nearest the window.
    cfg.reference = window.until();
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
                .map_err(|e| EngineError::Logs(format!("bad glob `{s}`: {e}")))?
                .filter_map(Result::ok)
                .collect();
            if matched.is_empty() {
                return Err(EngineError::Logs(format!("`{s}` matches no file")));
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
pub fn read_errors(p: &Pipeline, window: &Window) -> Result<LogBatch, EngineError> {
    let cfg = parse_config(p, window);
    let mut stats = LogStats::default();
    let host = p.host_filter.as_deref();
    let errors: Vec<ProxyError> = match &p.logs {
        LogSource::Files(paths) | LogSource::Journald(paths) if !paths.is_empty() => {
            let mut rd = LogReader::open(&expand(paths)?, cfg)
                .map_err(|e| EngineError::Logs(e.to_string()))?;
            let errs = filter_errors(&mut rd, window, host, &mut stats);
            absorb(&mut stats, rd.stats());
            errs
        }
        LogSource::Files(_) | LogSource::Journald(_) | LogSource::Stdin => {
            let mut rd = LogReader::stdin(cfg);
            let errs = filter_errors(&mut rd, window, host, &mut stats);
            absorb(&mut stats, rd.stats());
            errs
        }
        LogSource::Elasticsearch => {
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
                since: window.since(),
                until: window.until(),
            };
            let mut got = Vec::new();
            let mut problems = Vec::new();
            let fs = wiretrail_elastic::fetch_errors_blocking(
                &es,
                &range,
                &cfg,
                |e| {
                    got.push(e);
                    std::ops::ControlFlow::Continue(())
                },
                |m| problems.push(format!("{m:?}")),
            )
            .map_err(|e| EngineError::Elastic(e.to_string()))?;
            stats.unparsed += problems.len() as u64;
            stats.problems.extend(problems.into_iter().take(20));
            stats.problems.push(format!("elasticsearch: {fs:?}"));
            let errs = filter_errors(got, window, host, &mut stats);
            stats.lines = stats.proxy_errors + stats.unparsed;
            errs
        }
    };
    Ok(LogBatch { errors, stats })
}

fn absorb(stats: &mut LogStats, rs: &wiretrail_logs::ReadStats) {
    stats.lines += rs.lines;
    stats.unparsed += rs.unparsed;
    // Unparsed lines, stamp conflicts, failed, growing (a live log: what
    // was left for the next run) and skipped inputs, typed in
    // `rs.problems` (kind, path, line); shown here as one line each.
    stats
        .problems
        .extend(rs.problems.iter().map(ToString::to_string));
}

/// Correlation settings from the pipeline.
pub fn correlate_config(p: &Pipeline) -> CorrelateConfig {
    let mut c = CorrelateConfig::default();
    let std = |d: chrono::Duration| d.to_std().unwrap_or_default();
    if let Some(d) = p.correlate.incident_gap {
        c.incident_gap = std(d);
    }
    if let Some(d) = p.correlate.slack {
        c.match_slack = std(d);
    }
    if let Some(d) = p.correlate.max_clock_offset {
        c.max_clock_offset = std(d);
    }
    if p.correlate.proxy_ip.is_some() || !p.correlate.upstreams.is_empty() {
        c.proxies.push(wiretrail_correlate::ProxyHint {
            host: p.host_filter.clone(),
            ip: p.correlate.proxy_ip,
            upstreams: p.correlate.upstreams.clone(),
        });
    }
    c
}

/// Plan, fetch remote nodes, catalog, extract once, correlate.
pub fn analyse(
    p: &Pipeline,
    window: &Window,
    errors: Vec<ProxyError>,
    log_stats: &LogStats,
    progress: &Arc<dyn Progress>,
) -> Result<Analysis, EngineError> {
    let cfg = correlate_config(p);
    let plan = wiretrail_correlate::plan(&errors, &cfg);
    let slack = i64::try_from(cfg.max_clock_offset.as_nanos()).unwrap_or(i64::MAX / 4);

    // Remote nodes first (in parallel): each becomes a local cache directory
    // holding only what the plan's windows need.
    // The user's cache (XDG), never the pipeline's directory: pipelines
    // often live in a repository.
    let cache_root = p
        .cache_dir
        .clone()
        .or_else(wiretrail_capture::catalog::default_cache_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("wiretrail-cache"));
    let remote_nodes: Vec<&Node> = p
        .nodes
        .iter()
        .filter(|n| matches!(n.captures, CaptureLocation::Ssh(_)))
        .collect();
    let fetched = remote::fetch_nodes(
        &remote_nodes,
        &plan.queries,
        slack,
        &cache_root.join("remote"),
        progress.as_ref(),
    );

    let mut specs = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut remote_coverage = std::collections::HashMap::new();
    let mut remote_bytes = 0u64;
    for n in &p.nodes {
        match &n.captures {
            CaptureLocation::Local(path) => specs.push(NodeSpec::new(
                n.name.clone(),
                [path.to_string_lossy().into_owned()],
            )),
            CaptureLocation::Ssh(t) => match fetched.get(&n.name) {
                Some(Ok(f)) => {
                    remote_bytes += f.bytes_transferred;
                    problems.extend(f.notes.iter().map(|x| format!("{}: {x}", n.name)));
                    if !f.files.is_empty() {
                        specs.push(NodeSpec::new(
                            n.name.clone(),
                            f.files.iter().map(|x| x.to_string_lossy().into_owned()),
                        ));
                    }
                    remote_coverage.insert(n.name.clone(), f.coverage.clone());
                }
                Some(Err(e)) => {
                    problems.push(format!(
                        "{}: {t} unreachable: {e}; its part is a capture gap",
                        n.name
                    ));
                    // A coverage that meets no window: correlation reports
                    // a capture_gap for this node instead of "not seen".
                    remote_coverage.insert(n.name.clone(), vec![(0, 0)]);
                }
                None => {}
            },
        }
    }

    progress.stage("cataloging captures");
    let catalog = Catalog::build(&specs, Some(&cache_root.join("catalog")))
        .map_err(|e| EngineError::Capture(e.to_string()))?;
    problems.extend(catalog.cache_problems().iter().cloned());

    let prog2 = progress.clone();
    let opts = ExtractOptions {
        threads: None,
        slack,
        progress: Some(Arc::new(move |ev: ProgressEvent| match ev {
            ProgressEvent::Planned { files, bytes } => prog2.add_files(files as u64, bytes),
            ProgressEvent::FileFinished { bytes_read, .. } => prog2.file_done(bytes_read),
            _ => {}
        })),
        ..ExtractOptions::default()
    };
    progress.stage(&format!("extracting {} flows", plan.queries.len()));
    let ex = extract(&catalog, &plan.queries, &opts);
    problems.extend(ex.problems.iter().cloned());
    let files_read: u64 = ex.stats.iter().map(|s| s.files_read as u64).sum();
    let bytes_read: u64 = ex.stats.iter().map(|s| s.bytes_read).sum();

    let nodes: Vec<NodeInput> = p
        .nodes
        .iter()
        .map(|n| NodeInput {
            name: n.name.clone(),
            role: n.role,
            coverage: remote_coverage
                .get(&n.name)
                .cloned()
                .unwrap_or_else(|| catalog.coverage(&n.name)),
            pinned_offset_s: n.clock_offset_s,
            aliases: n.aliases.clone(),
            losses: Vec::new(),
        })
        .collect();

    progress.stage("correlating");
    let packets = ex.packets;
    let kept = packets.clone();
    let mut report: Report = wiretrail_correlate::correlate(errors, &plan, packets, &nodes, &cfg);
    report.since = window.since();
    report.until = window.until();
    report.inputs.log_lines = log_stats.lines;
    report.inputs.unparsed_lines = log_stats.unparsed;
    report.inputs.capture_files_read = files_read;
    report.inputs.capture_bytes_read = bytes_read + remote_bytes;
    // Transitional: the crates still report problems as lines; each is
    // typed by the stage that produced it.
    report.inputs.problems.extend(
        log_stats
            .problems
            .iter()
            .map(|m| Problem::new(ProblemKind::UnparsedLines, ProblemSource::Run, m.clone())),
    );
    report.inputs.problems.extend(
        problems
            .into_iter()
            .map(|m| Problem::new(ProblemKind::Undecodable, ProblemSource::Run, m)),
    );
    Ok(Analysis {
        report,
        packets: kept,
        capture_bytes: bytes_read + remote_bytes,
    })
}

/// Publish a report to the pipeline's cluster; one line saying what arrived.
pub fn publish(report: &Report, p: &Pipeline) -> Result<String, EngineError> {
    let es = p.elasticsearch.as_ref().ok_or_else(|| {
        EngineError::Config("outputs.elasticsearch = true but no [elasticsearch] table".into())
    })?;
    let s = wiretrail_elastic::publish_blocking(es, report)
        .map_err(|e| EngineError::Elastic(e.to_string()))?;
    Ok(format!("{s:?}"))
}
