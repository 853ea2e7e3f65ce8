//! One window's analysis: plan the flows, bring remote nodes' captures
//! over, catalog and extract every node's captures in one pass per file,
//! correlate; the crates' problems and losses as the report types them.

use super::remote::{self, Fetched, RemoteError};
use crate::config::{CaptureLocation, Node, Pipeline};
use crate::engine::{cause, Analysis, EngineError, LogStats};
use crate::progress::Progress;
use crate::time::Window;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Coverage, Detail, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions, Extraction, ProgressEvent};
use wiretrail_capture::problem::{self as cap, CaptureProblem};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource, Report, TimeSpan};
use wiretrail_correlate::{CaptureLoss, CorrelateConfig, LossReason, NodeInput};
use wiretrail_logs::ProxyError;

/// Correlation settings from the pipeline.
pub(super) fn correlate_config(p: &Pipeline) -> CorrelateConfig {
    let mut c = CorrelateConfig::default();
    if let Some(d) = p.correlate.incident_gap {
        c.incident_gap = d;
    }
    if let Some(d) = p.correlate.slack {
        c.match_slack = d;
    }
    if let Some(d) = p.correlate.max_clock_offset {
        c.max_clock_offset = d;
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
pub(super) fn analyse(
    p: &Pipeline,
    window: &Window,
    errors: Vec<ProxyError>,
    log_stats: &LogStats,
    progress: &Arc<dyn Progress>,
) -> Result<Analysis, EngineError> {
    let cfg = correlate_config(p);
    let plan = wiretrail_correlate::plan(&errors, &cfg);
    let slack = cfg.max_clock_offset;
    let cache_root = cache_root(p);
    let mut problems: Vec<Problem> = Vec::new();
    let sources = node_sources(
        p,
        &plan.queries,
        slack,
        &cache_root,
        progress,
        &mut problems,
    );

    // Probe every file's span; scan and index only the files the plan's
    // windows (widened by the clock slack) may touch.
    progress.stage("cataloging captures");
    let catalog = Catalog::build_with(
        &sources.specs,
        &CatalogOptions {
            cache_dir: Some(cache_root.join("catalog")),
            detail: Detail::for_queries(&plan.queries, slack),
            ..CatalogOptions::default()
        },
    )
    .map_err(|e| EngineError::Capture(Box::new(e)))?;
    catalog_problems(&catalog, window, &mut problems);
    require_a_readable_node(&catalog, window)?;

    progress.stage(&format!("extracting {} flows", plan.queries.len()));
    let ex = extract_flows(&catalog, &plan.queries, slack, progress);
    for cp in &ex.problems {
        let p = capture_problem(cp);
        // The catalog's scan already named the same corrupt record.
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    let files_read: u64 = ex.stats.iter().map(|s| s.files_read as u64).sum();
    let bytes_read: u64 = ex.stats.iter().map(|s| s.bytes_read).sum();
    let nodes = node_inputs(p, &catalog, &sources);

    progress.stage("correlating");
    let packets = ex.packets;
    let kept = packets.clone();
    let mut report: Report = wiretrail_correlate::correlate(errors, &plan, packets, &nodes, &cfg);
    report.since = window.since().to_utc();
    report.until = window.until().to_utc();
    let inputs = &mut report.inputs;
    inputs.log_lines = log_stats.lines;
    inputs.unparsed_lines = log_stats.unparsed;
    inputs.capture_files_read = files_read;
    inputs.capture_bytes_read = bytes_read + sources.remote_bytes;
    inputs.problems.extend(log_stats.problems.iter().cloned());
    inputs.problems.extend(problems);
    Ok(Analysis {
        report,
        packets: kept,
        capture_bytes: bytes_read + sources.remote_bytes,
    })
}

/// The user's cache (XDG), never the pipeline's directory: pipelines often
/// live in a repository.
fn cache_root(p: &Pipeline) -> PathBuf {
    p.cache_dir
        .clone()
        .or_else(wiretrail_capture::catalog::default_cache_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("wiretrail-cache"))
}

/// Where each node's captures are read from for this window.
#[derive(Debug, Default)]
struct NodeSources {
    /// What the catalog reads: local directories, and the local copies of
    /// remote nodes' files.
    specs: Vec<NodeSpec>,
    /// A remote node's coverage as its listing shows it (node clock).
    remote_coverage: HashMap<String, Vec<(Timestamp, Timestamp)>>,
    /// Remote nodes that could not be reached, with why.
    unreachable: HashMap<String, String>,
    /// Bytes that crossed the network.
    remote_bytes: u64,
}

/// Remote nodes first (in parallel): each becomes a local cache directory
/// holding only what the plan's windows need. A node that cannot be
/// reached is a capture gap, and the other nodes go on.
fn node_sources(
    p: &Pipeline,
    queries: &[FlowQuery],
    slack: Duration,
    cache_root: &Path,
    progress: &Arc<dyn Progress>,
    problems: &mut Vec<Problem>,
) -> NodeSources {
    let remote_nodes: Vec<&Node> = p
        .nodes
        .iter()
        .filter(|n| matches!(n.captures, CaptureLocation::Ssh(_)))
        .collect();
    let fetched = remote::fetch_nodes(
        &remote_nodes,
        queries,
        slack,
        &cache_root.join("remote"),
        progress.as_ref(),
    );
    let mut out = NodeSources::default();
    for n in &p.nodes {
        match &n.captures {
            CaptureLocation::Local(path) => out.specs.push(NodeSpec::new(
                n.name.to_string(),
                [path.to_string_lossy().into_owned()],
            )),
            CaptureLocation::Ssh(t) => match fetched.get(n.name.as_str()) {
                Some(Ok(f)) => out.fetched(n, f, problems),
                Some(Err(e)) => out.unreachable(n, &t.to_string(), e, problems),
                None => {}
            },
        }
    }
    out
}

impl NodeSources {
    fn fetched(&mut self, n: &Node, f: &Fetched, problems: &mut Vec<Problem>) {
        self.remote_bytes += f.bytes_transferred;
        problems.extend(f.problems.iter().cloned());
        if !f.files.is_empty() {
            self.specs.push(NodeSpec::new(
                n.name.to_string(),
                f.files.iter().map(|x| x.to_string_lossy().into_owned()),
            ));
        }
        self.remote_coverage
            .insert(n.name.to_string(), f.coverage.clone());
    }

    fn unreachable(&mut self, n: &Node, t: &str, e: &RemoteError, problems: &mut Vec<Problem>) {
        let msg = format!("{t} unreachable: {e}; its part is a capture gap");
        tracing::warn!(node = %n.name, "{msg}");
        problems.push(Problem::new(
            ProblemKind::CaptureGap,
            ProblemSource::Node {
                node: n.name.to_string(),
            },
            msg,
        ));
        self.unreachable
            .insert(n.name.to_string(), format!("{t}: {e}"));
        // A coverage that meets no window: correlation reports a
        // capture_gap for this node instead of "not seen".
        self.remote_coverage.insert(
            n.name.to_string(),
            vec![(Timestamp::EPOCH, Timestamp::EPOCH)],
        );
    }
}

/// The catalog's problems that matter to this window, as the report types
/// them (loud ones logged too).
fn catalog_problems(catalog: &Catalog, window: &Window, problems: &mut Vec<Problem>) {
    let w_until = window.until();
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
}

/// A node none of whose sources can be read is an error, unless other
/// nodes cover the window (then the problems say it loudly).
fn require_a_readable_node(catalog: &Catalog, window: &Window) -> Result<(), EngineError> {
    let (w_since, w_until) = (window.since(), window.until());
    let dead: Vec<&str> = catalog
        .nodes()
        .iter()
        .filter(|n| !n.usable())
        .map(|n| n.name.as_str())
        .collect();
    if dead.is_empty() {
        return Ok(());
    }
    let others_cover = catalog
        .nodes()
        .iter()
        .filter(|n| n.usable())
        .any(|n| n.covered(w_since, w_until) != Coverage::NotCovered);
    if others_cover {
        return Ok(());
    }
    let why: Vec<String> = catalog
        .problems()
        .filter(|cp| {
            cp.kind == cap::ProblemKind::UnusableSource
                && cp.node.as_deref().is_some_and(|n| dead.contains(&n))
        })
        .map(ToString::to_string)
        .collect();
    Err(EngineError::Capture(cause(format!(
        "no node has a readable capture for the window: {}",
        why.join("; ")
    ))))
}

/// Every query's packets from every node, each needed file read once.
fn extract_flows(
    catalog: &Catalog,
    queries: &[FlowQuery],
    slack: Duration,
    progress: &Arc<dyn Progress>,
) -> Extraction {
    let prog = progress.clone();
    let opts = ExtractOptions {
        threads: None,
        slack,
        progress: Some(Arc::new(move |ev: ProgressEvent| match ev {
            ProgressEvent::Planned { files, bytes } => prog.add_files(files as u64, bytes),
            ProgressEvent::FileFinished { bytes_read, .. } => prog.file_done(bytes_read),
            _ => {}
        })),
        ..ExtractOptions::default()
    };
    extract(catalog, queries, &opts)
}

/// What correlation is told of each node: role, coverage, known offset,
/// aliases, and the capture data known lost.
fn node_inputs(p: &Pipeline, catalog: &Catalog, sources: &NodeSources) -> Vec<NodeInput> {
    p.nodes
        .iter()
        .map(|n| {
            let mut losses: Vec<CaptureLoss> = catalog
                .node(n.name.as_str())
                .map(|c| c.losses.iter().map(capture_loss).collect())
                .unwrap_or_default();
            if let Some(why) = sources.unreachable.get(n.name.as_str()) {
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
                coverage: sources
                    .remote_coverage
                    .get(n.name.as_str())
                    .cloned()
                    .unwrap_or_else(|| catalog.coverage(n.name.as_str())),
                pinned_offset_s: n.clock_offset_s,
                aliases: n.aliases.clone(),
                losses,
            }
        })
        .collect()
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
            since: a.to_utc(),
            until: b.to_utc(),
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
