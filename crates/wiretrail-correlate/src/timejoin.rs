//! Errors joined by time: the log line names no proxy port, so the
//! connection is found among all the proxy's connections to the backend in
//! the log's second by the story the error tells.
//!
//! - `connection refused`: a SYN answered by RST/ACK; the node that sent the
//!   RST is the refusing node.
//! - `timeout awaiting response headers` / `context canceled`: a request
//!   sent, no response, and the proxy closing (FIN or RST) at the log time;
//!   the node that held the connection owns it.
//! - bare `EOF`: the backend closed an idle keep-alive connection (FIN)
//!   just before the log time (then, often, the proxy's request and the
//!   backend's RST).
//!
//! The moment the story ends (the RST, the proxy's close, the backend's FIN)
//! must lie within the log's precision, widened by the node's clock
//! uncertainty, first tightly, then by the match slack. Connections already
//! joined to an error by port are not candidates. Candidates are assigned
//! across all the errors of a window at once: an error with one candidate
//! takes it, and it is then no one else's, until nothing changes. What
//! remains with several candidates is said as such (every candidate listed,
//! confidence lowered, the node named only when all candidates agree on
//! it); never picked silently.

use crate::config::NodeInput;
use crate::conn::{Conn, NodeView};
use crate::diagnose::{
    cause_kind, from_log, last_activity_before, log_evidence, owners, pending_request, was_idle,
    Ctx, Outcome,
};
use crate::model::{Cause, ErrorDiagnosis, Evidence, Finding, FindingKind};
use crate::rst::{classify_rst, RstKind};
use std::collections::{BTreeMap, BTreeSet};
use wiretrail_capture::Nanos;
use wiretrail_logs::{ErrorClass, ProxyError};

/// One connection that tells an error's story.
#[derive(Debug, Clone)]
pub(crate) struct Story {
    pub conn: usize,
    /// The proxy's port on that connection.
    pub port: u16,
    pub cause: Cause,
    /// The refusing node, or the node that owned the connection.
    pub node: String,
    /// When the story ended (reference clock): what the log line reports.
    pub at: Nanos,
    pub evidence: Vec<(usize, String)>,
    pub confidence: f64,
    pub summary: String,
    pub idle_ms: Option<i64>,
}

/// What the time join found for one error.
#[derive(Debug, Clone)]
pub(crate) enum Joined {
    One(Story),
    /// Several connections fit equally. `lines`: how many error lines
    /// share exactly these candidates; as many lines as candidates means
    /// they pair up one to one (only which is which is unknown).
    Several {
        all: Vec<Story>,
        lines: usize,
    },
    /// No connection tells the story.
    Nothing,
}

/// Which story an error class tells, if wiretrail knows one for it.
fn wanted(e: &ProxyError) -> Option<Cause> {
    let dial = e.op.as_deref() == Some("dial") || e.syscall.as_deref() == Some("connect");
    match e.class {
        ErrorClass::Refused => Some(Cause::Refused),
        ErrorClass::Timeout if !dial => Some(Cause::ResponseTimeout),
        ErrorClass::Canceled => Some(Cause::ClientCanceled),
        ErrorClass::Eof => Some(Cause::IdleRace),
        _ => None,
    }
}

/// The story `cause` on connection `ci`, if its packets tell it.
fn story(ctx: &Ctx<'_>, cause: Cause, ci: usize, c: &Conn) -> Option<Story> {
    let port = c.tuple.0.port();
    match cause {
        Cause::Refused => c
            .views
            .iter()
            .filter(|v| ctx.backendish(&v.node))
            .find_map(|v| {
                let f = &v.facts;
                let syn = f.syn?;
                if f.synack.is_some() {
                    return None;
                }
                let &rst = f
                    .backend_rsts
                    .iter()
                    .find(|&&r| classify_rst(ctx, v, r, false).0 == RstKind::Refused)?;
                Some(Story {
                    conn: ci,
                    port,
                    cause,
                    node: v.node.to_string(),
                    at: ctx.t(rst),
                    evidence: vec![
                        (syn, format!("proxy SYN from port {port}")),
                        (
                            rst,
                            format!("RST/ACK from {}: nothing listens on the port", v.node),
                        ),
                    ],
                    confidence: 0.9,
                    summary: format!(
                        "refused: {} answered the proxy's SYN (port {port}) with RST/ACK",
                        v.node
                    ),
                    idle_ms: None,
                })
            }),
        Cause::ResponseTimeout | Cause::ClientCanceled => {
            let os = owners(ctx, c);
            let v: &NodeView = os
                .iter()
                .find(|v| v.facts.handshake_seen)
                .or(os.first())
                .copied()?;
            let (last_req, close) = pending_request(ctx, v)?;
            let close = close?;
            let f = &v.facts;
            // Where the unanswered request began: its first segment after
            // the last response byte before it.
            let t_last = ctx.t(last_req);
            let last_resp = f
                .backend_data
                .iter()
                .map(|&i| ctx.t(i))
                .filter(|&t| t < t_last)
                .max();
            let start = f
                .proxy_data
                .iter()
                .copied()
                .find(|&d| last_resp.is_none_or(|t| ctx.t(d) > t) && ctx.t(d) <= t_last)
                .unwrap_or(last_req);
            let waited_ms = (ctx.t(close) - ctx.t(start)) / 1_000_000;
            let mut evidence = vec![(start, format!("request starts (port {port})"))];
            if start != last_req {
                evidence.push((last_req, "last request segment".to_string()));
            }
            evidence.push((
                close,
                format!("the proxy closes the connection with the request unanswered, {waited_ms} ms later"),
            ));
            if let Some(&late) = f.backend_data.iter().find(|&&d| ctx.t(d) > ctx.t(close)) {
                evidence.push((
                    late,
                    "the backend's response arrives after the proxy gave up".to_string(),
                ));
            }
            let summary = match cause {
                Cause::ClientCanceled => format!(
                    "client canceled: the client went away while {} was still working on the request (port {port}); the proxy closed after {waited_ms} ms",
                    v.node
                ),
                _ => format!(
                    "response timeout: {} received the request (port {port}) but sent no response before the proxy gave up after {waited_ms} ms",
                    v.node
                ),
            };
            Some(Story {
                conn: ci,
                port,
                cause,
                node: v.node.to_string(),
                at: ctx.t(close),
                evidence,
                confidence: 0.9,
                summary,
                idle_ms: None,
            })
        }
        Cause::IdleRace => c
            .views
            .iter()
            .filter(|v| ctx.backendish(&v.node))
            .find_map(|v| {
                let f = &v.facts;
                let fin = f.backend_fin?;
                if !was_idle(ctx, v, fin) {
                    return None;
                }
                let idle_ms =
                    last_activity_before(ctx, v, fin).map(|t| (ctx.t(fin) - t) / 1_000_000);
                let mut evidence = vec![(
                    fin,
                    format!(
                        "{} closes the idle keep-alive connection (FIN, port {port}){}",
                        v.node,
                        idle_ms
                            .map(|m| format!(" after {m} ms idle"))
                            .unwrap_or_default()
                    ),
                )];
                let mut confidence: f64 = 0.8;
                if let Some(&late) = f.proxy_data.iter().find(|&&d| ctx.t(d) > ctx.t(fin)) {
                    evidence.push((late, "the proxy reuses it: request sent after the FIN".into()));
                    confidence += 0.05;
                    if let Some(&r) = f.backend_rsts.iter().find(|&&r| ctx.t(r) >= ctx.t(late)) {
                        evidence.push((r, "RST for the data that arrived after the close".into()));
                        confidence += 0.05;
                    }
                }
                Some(Story {
                    conn: ci,
                    port,
                    cause,
                    node: v.node.to_string(),
                    at: ctx.t(fin),
                    evidence,
                    confidence,
                    summary: format!(
                        "idle race: {} closed an idle keep-alive connection (port {port}){} just as the proxy picked it; keep the proxy's IdleConnTimeout below the backend's idle timeout",
                        v.node,
                        idle_ms.map(|m| format!(" after {m} ms idle")).unwrap_or_default()
                    ),
                    idle_ms,
                })
            }),
        _ => None,
    }
}

/// What the time join needs besides the packets.
pub(crate) struct Window<'a> {
    /// Per node, how uncertain its clock is (ns).
    pub unc_ns: &'a BTreeMap<String, Nanos>,
    /// Used when a node has no entry.
    pub default_unc_ns: Nanos,
    pub match_slack_ns: Nanos,
}

/// Finds, for every error joined by time, the connection(s) that tell its
/// story. `errors` are (error index, the error, the conns its wildcard
/// queries pulled); `claimed` are conns already joined to an error by port.
pub(crate) fn join(
    ctx: &Ctx<'_>,
    conns: &[Conn],
    errors: &[(usize, &ProxyError, Vec<usize>)],
    claimed: &BTreeSet<usize>,
    w: &Window<'_>,
) -> BTreeMap<usize, Joined> {
    let mut cands: BTreeMap<usize, Vec<Story>> = BTreeMap::new();
    for (ei, e, pool) in errors {
        let Some(cause) = wanted(e) else {
            cands.insert(*ei, Vec::new());
            continue;
        };
        let stories: Vec<Story> = pool
            .iter()
            .filter(|ci| !claimed.contains(ci))
            .filter_map(|&ci| story(ctx, cause, ci, &conns[ci]))
            .collect();
        let t = crate::plan::ts_ns(e);
        let width = e.time_precision.width_ns();
        let unc = |s: &Story| w.unc_ns.get(&s.node).copied().unwrap_or(w.default_unc_ns);
        // Tightly first (the log's precision and the clock's uncertainty),
        // then with the match slack.
        let mut found = Vec::new();
        for extra in [1_000_000, w.match_slack_ns] {
            found = stories
                .iter()
                .filter(|s| {
                    let slack = unc(s) + extra;
                    s.at >= t - slack && s.at <= t + width + slack
                })
                .cloned()
                .collect();
            if !found.is_empty() {
                break;
            }
        }
        cands.insert(*ei, found);
    }

    // One candidate: taken, and no one else's. Repeat until stable.
    let original = cands.clone();
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    loop {
        let single = cands
            .iter()
            .find(|(ei, c)| c.len() == 1 && !taken.contains_key(ei))
            .map(|(ei, c)| (*ei, c[0].conn));
        let Some((ei, ci)) = single else { break };
        taken.insert(ei, ci);
        for (other, c) in cands.iter_mut() {
            if *other != ei {
                c.retain(|s| s.conn != ci);
            }
        }
    }
    // Lines left with nothing had their only candidates go to other
    // lines: they share them, they do not lose them.
    for (ei, c) in cands.iter_mut() {
        if c.is_empty() {
            *c = original.get(ei).cloned().unwrap_or_default();
        }
    }
    let set = |c: &[Story]| c.iter().map(|s| s.conn).collect::<BTreeSet<usize>>();
    let mut sharing: BTreeMap<BTreeSet<usize>, usize> = BTreeMap::new();
    for c in cands.values().filter(|c| c.len() > 1) {
        *sharing.entry(set(c)).or_default() += 1;
    }
    cands
        .into_iter()
        .map(|(ei, mut c)| {
            let j = match c.len() {
                0 => Joined::Nothing,
                1 => Joined::One(c.pop().expect("one")),
                _ => Joined::Several {
                    lines: sharing.get(&set(&c)).copied().unwrap_or(1),
                    all: c,
                },
            };
            (ei, j)
        })
        .collect()
}

fn evidence(ctx: &Ctx<'_>, s: &Story, prefix: &str) -> Vec<Evidence> {
    s.evidence
        .iter()
        .map(|(i, note)| ctx.ev(*i, format!("{prefix}{note}")))
        .collect()
}

/// The diagnosis of an error joined by time.
pub(crate) fn outcome(
    ctx: &Ctx<'_>,
    e: &ProxyError,
    joined: &Joined,
    nodes: &[NodeInput],
    uncovered: &[String],
) -> Outcome {
    let log_ev = log_evidence(e);
    match joined {
        Joined::One(s) => {
            let mut ev = evidence(ctx, s, "");
            let finding = Finding {
                kind: cause_kind(s.cause),
                nodes: vec![s.node.clone()],
                confidence: s.confidence,
                summary: format!(
                    "{} (joined by time: the log line names no proxy port; the only connection in the log's second that tells this story)",
                    s.summary
                ),
                evidence: ev.clone(),
            };
            ev.push(log_ev);
            Outcome {
                diagnosis: ErrorDiagnosis {
                    cause: s.cause,
                    confidence: s.confidence,
                    owner_node: Some(s.node.clone()),
                    stray_nodes: Vec::new(),
                    evidence: ev,
                },
                findings: vec![finding],
                summary: s.summary.clone(),
                stray_shape: None,
                idle_ms: s.idle_ms,
            }
        }
        Joined::Several { all, lines } => {
            let paired = *lines == all.len();
            let names: BTreeSet<&str> = all.iter().map(|s| s.node.as_str()).collect();
            let one_node = (names.len() == 1).then(|| all[0].node.clone());
            let cause = all[0].cause;
            let ports: Vec<String> = all
                .iter()
                .map(|s| format!("{} on {}", s.port, s.node))
                .collect();
            let mut ev: Vec<Evidence> = Vec::new();
            for (k, s) in all.iter().enumerate() {
                ev.extend(evidence(
                    ctx,
                    s,
                    &format!("candidate {} of {}: ", k + 1, all.len()),
                ));
            }
            let pairing = if paired {
                format!(
                    "; {lines} lines of that second share exactly these {} connections, so they pair up one to one",
                    all.len()
                )
            } else {
                String::new()
            };
            let (confidence, summary) = match &one_node {
                Some(n) => (
                    if paired { 0.85 } else { 0.75 },
                    format!(
                        "{}: {} connections in the log's second tell this story equally (ports {}), all on {n}{pairing}; which one this line is cannot be told from a 1 s timestamp, the node can",
                        cause.as_str(),
                        all.len(),
                        ports.join(", ")
                    ),
                ),
                None => (
                    0.5,
                    format!(
                        "{}: {} connections in the log's second tell this story equally ({}), on different nodes{pairing}: the node cannot be named",
                        cause.as_str(),
                        all.len(),
                        ports.join(", ")
                    ),
                ),
            };
            let finding = Finding {
                kind: cause_kind(cause),
                nodes: names.iter().map(|n| n.to_string()).collect(),
                confidence,
                summary: summary.clone(),
                evidence: ev.clone(),
            };
            ev.push(log_ev);
            Outcome {
                diagnosis: ErrorDiagnosis {
                    cause,
                    confidence,
                    owner_node: one_node,
                    stray_nodes: Vec::new(),
                    evidence: ev,
                },
                findings: vec![finding],
                summary,
                stray_shape: None,
                idle_ms: None,
            }
        }
        Joined::Nothing => {
            let (cause, conf, said) = match from_log(e) {
                Some((c, s, conf)) => (c, conf, s.to_string()),
                None => (Cause::Unknown, 0.0, "the log class names no cause".into()),
            };
            let searched: Vec<&str> = nodes
                .iter()
                .map(|n| n.name.as_str())
                .filter(|n| !uncovered.iter().any(|u| u == n))
                .collect();
            let story = if wanted(e).is_some() {
                "no connection of the proxy to the backend in the log's second tells this story"
            } else {
                "wiretrail reads no packet story for this error class (a dial timeout's SYNs lie a whole timeout before the line)"
            };
            let summary = format!(
                "{said}; joined by time, but {story} (nodes searched {searched:?}{})",
                if uncovered.is_empty() {
                    String::new()
                } else {
                    format!(", nodes without captures for the window {uncovered:?}")
                }
            );
            let findings = if uncovered.is_empty() {
                Vec::new()
            } else {
                vec![Finding {
                    kind: FindingKind::CaptureGap,
                    nodes: uncovered.to_vec(),
                    confidence: 0.9,
                    summary: summary.clone(),
                    evidence: vec![log_ev.clone()],
                }]
            };
            Outcome {
                diagnosis: ErrorDiagnosis {
                    cause,
                    confidence: conf,
                    owner_node: None,
                    stray_nodes: Vec::new(),
                    evidence: vec![log_ev],
                },
                findings,
                summary,
                stray_shape: None,
                idle_ms: None,
            }
        }
    }
}
