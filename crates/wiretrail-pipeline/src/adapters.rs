//! The only module that calls the other wiretrail crates' APIs: logs,
//! capture catalog and extraction, correlation, Elasticsearch. Each function
//! is small so an API change there is one edit here.

use crate::config::{CaptureLocation, LogSource, Node, Pipeline};
use crate::engine::{filter_errors, Analysis, EngineError, Keep, LogBatch, LogStats};
use crate::progress::Progress;
use crate::remote;
use crate::time::Window;
use std::path::PathBuf;
use std::sync::Arc;
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Coverage, Detail, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions, ProgressEvent};
use wiretrail_capture::problem::{self as cap, CaptureProblem};
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource, Report, TimeSpan};
use wiretrail_correlate::{CaptureLoss, CorrelateConfig, LossReason, NodeInput};
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
pub fn read_errors(p: &Pipeline, window: &Window, keep: Keep) -> Result<LogBatch, EngineError> {
    let cfg = parse_config(p, window);
    let mut stats = LogStats::default();
    let host = p.host_filter.as_deref();
    let errors: Vec<ProxyError> = match &p.logs {
        LogSource::Files(paths) | LogSource::Journald(paths) if !paths.is_empty() => {
            let mut rd = LogReader::open(&expand(paths)?, cfg)
                .map_err(|e| EngineError::Logs(e.to_string()))?;
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
                since: window.since().to_utc(),
                until: window.until().to_utc(),
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
            .map_err(|e| EngineError::Elastic(e.to_string()))?;
            stats.unparsed += problems.len() as u64;
            stats.problems.extend(problems.into_iter().take(20));
            stats.problems.push(Problem::new(
                ProblemKind::Elasticsearch,
                ProblemSource::Run,
                format!("fetch: {fs:?}"),
            ));
            let errs = filter_errors(got, window, host, keep, &mut stats);
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

/// Correlation settings from the pipeline.
pub fn correlate_config(p: &Pipeline) -> CorrelateConfig {
    let mut c = CorrelateConfig::default();
    let std = |d: crate::time::Duration| d.to_std();
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
    let mut problems: Vec<Problem> = Vec::new();
    let mut remote_coverage = std::collections::HashMap::new();
    let mut unreachable: std::collections::HashMap<String, String> = Default::default();
    let mut remote_bytes = 0u64;
    for n in &p.nodes {
        match &n.captures {
            CaptureLocation::Local(path) => specs.push(NodeSpec::new(
                n.name.to_string(),
                [path.to_string_lossy().into_owned()],
            )),
            CaptureLocation::Ssh(t) => match fetched.get(n.name.as_str()) {
                Some(Ok(f)) => {
                    remote_bytes += f.bytes_transferred;
                    problems.extend(f.problems.iter().cloned());
                    if !f.files.is_empty() {
                        specs.push(NodeSpec::new(
                            n.name.to_string(),
                            f.files.iter().map(|x| x.to_string_lossy().into_owned()),
                        ));
                    }
                    remote_coverage.insert(n.name.to_string(), f.coverage.clone());
                }
                Some(Err(e)) => {
                    let msg = format!("{t} unreachable: {e}; its part is a capture gap");
                    tracing::warn!(node = %n.name, "{msg}");
                    problems.push(Problem::new(
                        ProblemKind::CaptureGap,
                        ProblemSource::Node {
                            node: n.name.to_string(),
                        },
                        msg,
                    ));
                    unreachable.insert(n.name.to_string(), format!("{t}: {e}"));
                    // A coverage that meets no window: correlation reports
                    // a capture_gap for this node instead of "not seen".
                    remote_coverage.insert(n.name.to_string(), vec![(0, 0)]);
                }
                None => {}
            },
        }
    }

    // Probe every file's span; scan and index only the files the plan's
    // windows (widened by the clock slack) may touch.
    progress.stage("cataloging captures");
    let catalog = Catalog::build_with(
        &specs,
        &CatalogOptions {
            cache_dir: Some(cache_root.join("catalog")),
            detail: Detail::for_queries(&plan.queries, slack),
            ..CatalogOptions::default()
        },
    )
    .map_err(|e| EngineError::Capture(e.to_string()))?;
    let (w_since, w_until) = (window.since_ns(), window.until_ns());
    for cp in catalog.problems() {
        // A file still being written matters only if the window reaches
        // past what was read of it.
        if cp.kind == cap::ProblemKind::Growing && cp.span.is_some_and(|(t, _)| w_until < t) {
            continue;
        }
        if matches!(
            cp.kind,
            cap::ProblemKind::CaptureGap | cap::ProblemKind::UnusableSource
        ) {
            tracing::warn!("{cp}");
        }
        problems.push(capture_problem(cp));
    }
    // A node none of whose sources can be read: an error, unless other
    // nodes cover the window (then the problems above say it loudly).
    let dead: Vec<&str> = catalog
        .nodes()
        .iter()
        .filter(|n| !n.usable())
        .map(|n| n.name.as_str())
        .collect();
    if !dead.is_empty() {
        let others_cover = catalog
            .nodes()
            .iter()
            .filter(|n| n.usable())
            .any(|n| n.covered(w_since, w_until) != Coverage::NotCovered);
        if !others_cover {
            let why: Vec<String> = catalog
                .problems()
                .filter(|cp| {
                    cp.kind == cap::ProblemKind::UnusableSource
                        && cp.node.as_deref().is_some_and(|n| dead.contains(&n))
                })
                .map(ToString::to_string)
                .collect();
            return Err(EngineError::Capture(format!(
                "no node has a readable capture for the window: {}",
                why.join("; ")
            )));
        }
    }

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
    for cp in &ex.problems {
        let p = capture_problem(cp);
        // The catalog's scan already named the same corrupt record.
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    problems.extend(
        ex.query_problems
            .iter()
            .map(|m| Problem::new(ProblemKind::Unjoinable, ProblemSource::Run, m.clone())),
    );
    let files_read: u64 = ex.stats.iter().map(|s| s.files_read as u64).sum();
    let bytes_read: u64 = ex.stats.iter().map(|s| s.bytes_read).sum();

    let nodes: Vec<NodeInput> = p
        .nodes
        .iter()
        .map(|n| {
            let mut losses: Vec<CaptureLoss> = catalog
                .node(n.name.as_str())
                .map(|c| c.losses.iter().map(capture_loss).collect())
                .unwrap_or_default();
            if let Some(why) = unreachable.get(n.name.as_str()) {
                losses.push(CaptureLoss {
                    file: why.clone(),
                    span: None,
                    reason: LossReason::Unreachable,
                    detail: "the host holding the captures could not be reached".into(),
                });
            }
            if let Some(c) = catalog.node(n.name.as_str()).filter(|c| !c.usable()) {
                losses.push(CaptureLoss {
                    file: c
                        .problems
                        .iter()
                        .find(|p| p.kind == cap::ProblemKind::UnusableSource)
                        .map_or_else(String::new, |p| p.path.clone()),
                    span: None,
                    reason: LossReason::Unreadable,
                    detail: "none of the node's capture sources could be read".into(),
                });
            }
            NodeInput {
                name: n.name.clone(),
                role: n.role,
                coverage: remote_coverage
                    .get(n.name.as_str())
                    .cloned()
                    .unwrap_or_else(|| catalog.coverage(n.name.as_str())),
                pinned_offset_s: n.clock_offset_s,
                aliases: n.aliases.clone(),
                losses,
            }
        })
        .collect();

    progress.stage("correlating");
    let packets = ex.packets;
    let kept = packets.clone();
    let mut report: Report = wiretrail_correlate::correlate(errors, &plan, packets, &nodes, &cfg);
    report.since = window.since().to_utc();
    report.until = window.until().to_utc();
    report.inputs.log_lines = log_stats.lines;
    report.inputs.unparsed_lines = log_stats.unparsed;
    report.inputs.capture_files_read = files_read;
    report.inputs.capture_bytes_read = bytes_read + remote_bytes;
    report
        .inputs
        .problems
        .extend(log_stats.problems.iter().cloned());
    report.inputs.problems.extend(problems);
    Ok(Analysis {
        report,
        packets: kept,
        capture_bytes: bytes_read + remote_bytes,
    })
}

/// A capture problem as the report types it.
fn capture_problem(cp: &CaptureProblem) -> Problem {
    let kind = match cp.kind {
        cap::ProblemKind::CaptureGap => ProblemKind::CaptureGap,
        cap::ProblemKind::UnusableSource => ProblemKind::UnusableSource,
        cap::ProblemKind::Undecodable => ProblemKind::Undecodable,
        cap::ProblemKind::Growing => ProblemKind::Growing,
        cap::ProblemKind::Cache => ProblemKind::Cache,
    };
    let source = match &cp.node {
        Some(node) => ProblemSource::Capture {
            node: node.clone(),
            path: cp.path.clone(),
            offset: cp.offset,
        },
        // The index cache belongs to the run, not to a node.
        None => ProblemSource::Run,
    };
    let message = match &cp.node {
        Some(_) => cp.message.clone(),
        None => format!("{}: {}", cp.path, cp.message),
    };
    let mut p = Problem::new(kind, source, message);
    if let Some((a, b)) = cp.span {
        p = p.with_span(TimeSpan {
            since: chrono::DateTime::from_timestamp_nanos(a),
            until: chrono::DateTime::from_timestamp_nanos(b),
        });
    }
    p
}

/// A lost stretch of capture as correlation takes it.
fn capture_loss(l: &cap::Loss) -> CaptureLoss {
    CaptureLoss {
        file: l.file.display().to_string(),
        span: l.span,
        reason: match l.reason {
            cap::LossReason::Unreadable => LossReason::Unreadable,
            cap::LossReason::Truncated => LossReason::Truncated,
            cap::LossReason::Missing => LossReason::Missing,
            cap::LossReason::Corrupt => LossReason::Corrupt,
        },
        detail: l.detail.clone(),
    }
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
