//! Diagnosis: one cause per error, with evidence and a confidence.
//!
//! The rules read one connection across nodes (RST provenance is in
//! [`crate::rst`], per-connection findings in [`crate::findings`]). Node roles matter: only
//! backend nodes can own or stray (a proxy or switch capture is an
//! observer), so a single-node failure can never become `flow_split`.

use crate::conn::{seq_gt, Conn, NodeView};
use crate::model::{Cause, ErrorDiagnosis, Evidence, Finding, FindingKind, NodeRole};
use crate::packets::Pkt;
use crate::rst::{classify_rst, RstKind};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use wiretrail_capture::Nanos;
use wiretrail_logs::{ErrorClass, ProxyError, Source};

/// What the rules read: the packet store and each node's role.
pub(crate) struct Ctx<'a> {
    pub pkts: &'a [Pkt],
    pub roles: &'a HashMap<String, NodeRole>,
}

impl Ctx<'_> {
    pub fn backendish(&self, node: &str) -> bool {
        matches!(
            self.roles.get(node).copied().unwrap_or(NodeRole::Other),
            NodeRole::Backend | NodeRole::Other
        )
    }

    pub fn ev(&self, i: usize, note: impl Into<String>) -> Evidence {
        let p = &self.pkts[i];
        Evidence {
            node: p.obs.node.to_string(),
            file: p.file(),
            frame: p.obs.frame,
            time: time(p.ref_ts),
            note: Some(note.into()),
        }
    }

    pub fn t(&self, i: usize) -> Nanos {
        self.pkts[i].ref_ts
    }
}

pub(crate) fn time(ns: Nanos) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// The log line as evidence.
pub(crate) fn log_evidence(e: &ProxyError) -> Evidence {
    let (file, frame) = match &e.source {
        Source::File { file, line } => (file.clone(), *line),
        Source::Stdin { line } => ("-".to_string(), *line),
        Source::Elasticsearch { index, id, .. } => (format!("{index}/{id}"), 0),
    };
    Evidence {
        node: "log".into(),
        file,
        frame,
        time: e.timestamp,
        note: Some(e.message.clone()),
    }
}

/// Owners: backend views with state (handshake, or any non-RST answer).
pub(crate) fn owners<'c>(ctx: &Ctx<'_>, c: &'c Conn) -> Vec<&'c NodeView> {
    c.views
        .iter()
        .filter(|v| ctx.backendish(&v.node))
        .filter(|v| v.facts.handshake_seen || v.facts.backend_stateful)
        .collect()
}

/// Strays: backend views that saw the proxy's segments mid-connection (no
/// SYN) and never answered with state.
pub(crate) fn strays<'c>(ctx: &Ctx<'_>, c: &'c Conn) -> Vec<&'c NodeView> {
    c.views
        .iter()
        .filter(|v| ctx.backendish(&v.node))
        .filter(|v| {
            !v.facts.handshake_seen
                && !v.facts.backend_stateful
                && v.facts.syn.is_none()
                && v.facts.to_backend > 0
        })
        .collect()
}

/// What one error's diagnosis produced.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub diagnosis: ErrorDiagnosis,
    pub findings: Vec<Finding>,
    pub summary: String,
    /// For flow splits: (ordinal of the stray segment in its request, request bytes).
    pub stray_shape: Option<(usize, u64)>,
    /// For idle races: how long the connection had been idle when the backend closed it.
    pub idle_ms: Option<i64>,
}

/// What the log's error class alone says, and how much it is worth.
pub(crate) fn from_log(e: &ProxyError) -> Option<(Cause, &'static str, f64)> {
    let dial = e.op.as_deref() == Some("dial") || e.syscall.as_deref() == Some("connect");
    match e.class {
        ErrorClass::Refused => Some((Cause::Refused, "the log says connection refused", 0.6)),
        ErrorClass::Timeout if dial => Some((Cause::ConnectTimeout, "the log says the dial timed out", 0.6)),
        ErrorClass::Timeout => Some((Cause::ResponseTimeout, "the log says the proxy timed out waiting", 0.6)),
        ErrorClass::Canceled => Some((Cause::ClientCanceled, "the log says the client's context was canceled", 0.6)),
        // Go's transport reports a bare EOF when the backend closed a
        // connection it had just reused: the idle race's own symptom, but
        // without packets it is a reading of the log, not a finding.
        ErrorClass::Eof => Some((
            Cause::IdleRace,
            "the log's EOF means the backend closed a reused keep-alive connection (typically an idle race)",
            0.4,
        )),
        _ => None,
    }
}

/// An error whose line names no proxy socket: the log is all there is.
pub(crate) fn diagnose_unjoinable(e: &ProxyError, why: &str) -> Outcome {
    let (cause, conf, summary) = match from_log(e) {
        Some((c, s, conf)) => (c, conf, format!("{s}; {why}")),
        None => (
            Cause::Unknown,
            0.0,
            format!("no packets can be joined: {why}"),
        ),
    };
    Outcome {
        diagnosis: ErrorDiagnosis {
            cause,
            confidence: conf,
            owner_node: None,
            stray_nodes: Vec::new(),
            evidence: vec![log_evidence(e)],
        },
        findings: Vec::new(),
        summary,
        stray_shape: None,
        idle_ms: None,
    }
}

/// The flow of a joinable error is in no capture.
pub(crate) fn diagnose_missing(
    e: &ProxyError,
    uncovered: &[String],
    covered: &[String],
) -> Outcome {
    let hint = from_log(e)
        .map(|(_, s, _)| format!(" ({s})"))
        .unwrap_or_default();
    let summary = format!(
        "the connection is not in the captures{hint}: nodes searched {:?}, nodes without captures for the window {:?}",
        covered, uncovered
    );
    Outcome {
        diagnosis: ErrorDiagnosis {
            cause: Cause::Unknown,
            confidence: 0.0,
            owner_node: None,
            stray_nodes: Vec::new(),
            evidence: vec![log_evidence(e)],
        },
        findings: vec![Finding {
            kind: FindingKind::CaptureGap,
            nodes: uncovered.to_vec(),
            confidence: 0.9,
            summary: summary.clone(),
            evidence: vec![log_evidence(e)],
        }],
        summary,
        stray_shape: None,
        idle_ms: None,
    }
}

/// Diagnoses one error against the connection instance it belongs to.
pub(crate) fn diagnose(ctx: &Ctx<'_>, e: &ProxyError, c: &Conn) -> Outcome {
    let owners = owners(ctx, c);
    let strays = strays(ctx, c);
    let owner = owners
        .iter()
        .find(|v| v.facts.handshake_seen)
        .or(owners.first())
        .copied();
    let primary = owner
        .or_else(|| c.views.iter().find(|v| v.facts.syn.is_some()))
        .or(c.views.first());
    let owner_name = owner.map(|v| v.node.to_string());
    let stray_names: Vec<String> = strays.iter().map(|v| v.node.to_string()).collect();
    let log_ev = log_evidence(e);
    let class_fits = |classes: &[ErrorClass]| classes.contains(&e.class);

    let mut ev: Vec<Evidence> = Vec::new();
    let mut findings = Vec::new();
    let mut stray_shape = None;
    let mut idle_seen: Option<i64> = None;

    let stray_rsts: Vec<(usize, &NodeView)> = strays
        .iter()
        .flat_map(|v| v.facts.backend_rsts.iter().map(move |&i| (i, *v)))
        .collect();

    let (cause, mut conf, summary): (Cause, f64, String) = if !stray_rsts.is_empty() {
        // A node with no state answered RST to part of the connection.
        let (rst, sv) = stray_rsts[0];
        let (_, note) = classify_rst(ctx, sv, rst, true);
        let seq_proof = note.starts_with("seq=");
        if let Some(o) = owner {
            for i in [o.facts.syn, o.facts.synack].into_iter().flatten() {
                ev.push(ctx.ev(i, format!("handshake on {} (the owner)", o.node)));
            }
            if let Some(&d) = o
                .facts
                .proxy_data
                .iter()
                .rev()
                .find(|&&d| ctx.t(d) <= ctx.t(rst))
            {
                ev.push(ctx.ev(
                    d,
                    format!("last request segment the owner {} received", o.node),
                ));
            }
        }
        // Every stray node: its first segment of the connection and its RST.
        let mut earliest: Option<usize> = None;
        for v in &strays {
            let seg = v
                .facts
                .proxy_data
                .first()
                .copied()
                .or_else(|| v.pkts.iter().copied().find(|&i| ctx.pkts[i].to_backend()));
            if let Some(s) = seg {
                ev.push(ctx.ev(
                    s,
                    format!("segment of the connection delivered to {} instead", v.node),
                ));
                if earliest.is_none_or(|e| ctx.t(s) < ctx.t(e)) {
                    earliest = Some(s);
                }
            }
            if let Some(&r) = v.facts.backend_rsts.first() {
                let n = if r == rst {
                    note.clone()
                } else {
                    classify_rst(ctx, v, r, true).1
                };
                ev.push(ctx.ev(r, n));
            }
        }
        if let Some(s) = earliest {
            stray_shape = shape(ctx, c, s);
        }
        if let Some(o) = owner {
            if let Some(&pr) = o.facts.proxy_rsts.iter().find(|&&p| ctx.t(p) >= ctx.t(rst)) {
                ev.push(ctx.ev(pr, "the proxy then resets the connection on the owner"));
            }
        }
        match owner {
            Some(o) => {
                let mut conf: f64 = 0.75;
                if o.facts.handshake_seen {
                    conf += 0.1;
                }
                if seq_proof {
                    conf += 0.1;
                }
                if !class_fits(&[
                    ErrorClass::Reset,
                    ErrorClass::BrokenPipe,
                    ErrorClass::Closed,
                    ErrorClass::Eof,
                ]) {
                    conf -= 0.2;
                }
                let s = format!(
                    "flow split: the connection belongs to {} ({}), but {} received part of it and, having no socket for it, answered RST; the proxy took the RST and failed the request",
                    o.node,
                    if o.facts.handshake_seen { "it saw the handshake" } else { "it answered with state" },
                    stray_names.join(", ")
                );
                findings.push(Finding {
                    kind: FindingKind::FlowSplit,
                    nodes: std::iter::once(o.node.to_string())
                        .chain(stray_names.iter().cloned())
                        .collect(),
                    confidence: conf,
                    summary: s.clone(),
                    evidence: ev.clone(),
                });
                (Cause::FlowSplit, conf, s)
            }
            None => {
                let s = format!(
                    "stray RST: {} answered RST without ever seeing the handshake; the node that owns the connection is not in the captures",
                    stray_names.join(", ")
                );
                findings.push(Finding {
                    kind: FindingKind::StrayRst,
                    nodes: stray_names.clone(),
                    confidence: 0.65,
                    summary: s.clone(),
                    evidence: ev.clone(),
                });
                (Cause::StrayRst, 0.65, s)
            }
        }
    } else if let Some(v) = primary {
        let f = &v.facts;
        let node = v.node.to_string();
        let late_data = |after: Nanos| f.proxy_data.iter().copied().find(|&d| ctx.t(d) > after);
        let refused = f.syn.is_some()
            && f.synack.is_none()
            && f.backend_rsts
                .iter()
                .any(|&r| classify_rst(ctx, v, r, false).0 == RstKind::Refused);
        if refused {
            let syn = f.syn.expect("checked");
            let rst = f.backend_rsts[0];
            ev.push(ctx.ev(syn, "SYN"));
            ev.push(ctx.ev(rst, "RST/ACK: nothing listens on the port"));
            let conf = if class_fits(&[ErrorClass::Refused]) {
                0.95
            } else {
                0.8
            };
            (
                Cause::Refused,
                conf,
                format!("refused: {node} answered the proxy's SYN with RST/ACK"),
            )
        } else if f.syn.is_some()
            && f.synack.is_none()
            && f.backend_rsts.is_empty()
            && !f.backend_stateful
        {
            for &i in v.pkts.iter().filter(|&&i| ctx.pkts[i].obs.flags.syn()) {
                ev.push(ctx.ev(i, "SYN without answer"));
            }
            let conf = if class_fits(&[ErrorClass::Timeout]) {
                0.9
            } else {
                0.6
            };
            (
                Cause::ConnectTimeout,
                conf,
                format!("connect timeout: the proxy's SYN to {node} was never answered"),
            )
        } else if let Some((fin, late)) = f
            .backend_fin
            .and_then(|fin| late_data(ctx.t(fin)).map(|l| (fin, l)))
            .filter(|&(fin, _)| was_idle(ctx, v, fin))
        {
            ev.push(ctx.ev(
                fin,
                "the backend closes the idle keep-alive connection (FIN)",
            ));
            ev.push(ctx.ev(
                late,
                "the proxy reuses the connection: request sent after the FIN",
            ));
            let mut conf: f64 = 0.85;
            if let Some(&r) = f.backend_rsts.iter().find(|&&r| ctx.t(r) >= ctx.t(late)) {
                ev.push(ctx.ev(r, "RST for the data that arrived after the close"));
                conf += 0.05;
            }
            if class_fits(&[ErrorClass::Eof, ErrorClass::Reset, ErrorClass::BrokenPipe]) {
                conf += 0.05;
            }
            let idle_ms = last_activity_before(ctx, v, fin).map(|t| (ctx.t(fin) - t) / 1_000_000);
            idle_seen = idle_ms;
            (
                Cause::IdleRace,
                conf,
                format!(
                    "idle race: {node} closed an idle keep-alive connection{} just as the proxy reused it; keep the proxy's IdleConnTimeout below the backend's idle timeout",
                    idle_ms.map(|m| format!(" after {m} ms idle")).unwrap_or_default()
                ),
            )
        } else if let Some((req, r, idle_ns)) = idle_close_by_rst(ctx, v) {
            idle_seen = Some(idle_ns / 1_000_000);
            ev.push(ctx.ev(req, "the proxy reuses the idle connection: request sent"));
            ev.push(ctx.ev(
                r,
                "the backend closes the idle connection with the new request unread: RST instead of FIN",
            ));
            let conf = if class_fits(&[ErrorClass::Reset, ErrorClass::Eof, ErrorClass::BrokenPipe])
            {
                0.75
            } else {
                0.6
            };
            (
                Cause::IdleRace,
                conf,
                format!(
                    "idle race: {node} closed the keep-alive connection after {} ms idle just as the proxy's next request arrived; the unread request turned its FIN into a RST. Keep the proxy's IdleConnTimeout below the backend's idle timeout",
                    idle_ns / 1_000_000
                ),
            )
        } else if let Some(&r) = f
            .backend_rsts
            .iter()
            .find(|&&r| classify_rst(ctx, v, r, false).0 == RstKind::AppAbort)
        {
            if let Some(&d) = f.proxy_data.iter().rev().find(|&&d| ctx.t(d) <= ctx.t(r)) {
                ev.push(ctx.ev(d, "request data the backend had received"));
            }
            ev.push(ctx.ev(
                r,
                "RST from the owning node, with state: the application aborted",
            ));
            let conf = if class_fits(&[
                ErrorClass::Reset,
                ErrorClass::BrokenPipe,
                ErrorClass::Eof,
                ErrorClass::Closed,
            ]) {
                0.85
            } else {
                0.65
            };
            (
                Cause::BackendReset,
                conf,
                format!("backend reset: {node}, which owned the connection, reset it mid-request"),
            )
        } else if let Some(pending) = pending_request(ctx, v) {
            ev.push(ctx.ev(pending.0, "last request data; no response byte follows"));
            if let Some(close) = pending.1 {
                ev.push(ctx.ev(close, "the proxy gives up on the connection"));
            }
            let waited_ms = pending.1.map(|c| (ctx.t(c) - ctx.t(pending.0)) / 1_000_000);
            let waited = waited_ms
                .map(|m| format!(" after {m} ms"))
                .unwrap_or_default();
            match e.class {
                ErrorClass::Canceled => (
                    Cause::ClientCanceled,
                    0.85,
                    format!("client canceled: the client went away while {node} was still working on the request; the proxy closed{waited}"),
                ),
                ErrorClass::Timeout => (
                    Cause::ResponseTimeout,
                    0.85,
                    format!("response timeout: {node} received the request but sent no response before the proxy gave up{waited}"),
                ),
                _ if waited_ms.is_some_and(|m| m >= 1000) => (
                    Cause::ResponseTimeout,
                    0.5,
                    format!("probably a response timeout: no response from {node}, proxy closed{waited}"),
                ),
                _ => (Cause::Unknown, 0.2, format!("request outstanding on {node} when the proxy closed; the packets do not say why")),
            }
        } else if let Some((c2, s, c)) = from_log(e) {
            (
                c2,
                c.min(0.5),
                format!("{s}; the packets neither confirm nor contradict it"),
            )
        } else {
            (
                Cause::Unknown,
                0.2,
                "the packets show no failure pattern wiretrail knows".into(),
            )
        }
    } else {
        (Cause::Unknown, 0.0, "no node view".into())
    };

    // Flow splits without a RST (the stray node stayed silent) are worth saying.
    if cause != Cause::FlowSplit && !strays.is_empty() && owner.is_some() {
        let s = format!(
            "part of the connection also reached {} (no handshake there, no answer)",
            stray_names.join(", ")
        );
        findings.push(Finding {
            kind: FindingKind::FlowSplit,
            nodes: stray_names.clone(),
            confidence: 0.5,
            summary: s,
            evidence: strays
                .iter()
                .filter_map(|v| {
                    v.pkts
                        .first()
                        .map(|&i| ctx.ev(i, "segment on a node without the handshake"))
                })
                .collect(),
        });
    }
    // No handshake anywhere: the start of the connection is outside the captures.
    if !c.views.iter().any(|v| v.facts.syn.is_some()) {
        findings.push(Finding {
            kind: FindingKind::CaptureGap,
            nodes: c.views.iter().map(|v| v.node.to_string()).collect(),
            confidence: 0.6,
            summary: "no node captured the handshake: the connection started before the window or the captures".into(),
            evidence: c.views.iter().filter_map(|v| v.pkts.first().map(|&i| ctx.ev(i, "first packet seen"))).collect(),
        });
        if cause == Cause::FlowSplit {
            conf -= 0.05;
        }
    }
    if !matches!(cause, Cause::FlowSplit | Cause::StrayRst | Cause::Unknown) {
        findings.push(Finding {
            kind: cause_kind(cause),
            nodes: primary
                .map(|v| vec![v.node.to_string()])
                .unwrap_or_default(),
            confidence: conf,
            summary: summary.clone(),
            evidence: ev.clone(),
        });
    }
    ev.push(log_ev);
    Outcome {
        diagnosis: ErrorDiagnosis {
            cause,
            confidence: conf.clamp(0.0, 1.0),
            owner_node: owner_name,
            stray_nodes: stray_names,
            evidence: ev,
        },
        findings,
        summary,
        stray_shape,
        idle_ms: idle_seen,
    }
}

pub(crate) fn cause_kind(c: Cause) -> FindingKind {
    match c {
        Cause::FlowSplit => FindingKind::FlowSplit,
        Cause::StrayRst => FindingKind::StrayRst,
        Cause::IdleRace => FindingKind::IdleRace,
        Cause::BackendReset => FindingKind::BackendReset,
        Cause::Refused => FindingKind::Refused,
        Cause::ConnectTimeout => FindingKind::ConnectTimeout,
        Cause::ResponseTimeout => FindingKind::ResponseTimeout,
        Cause::ClientCanceled => FindingKind::ClientCanceled,
        Cause::MiddleboxReset => FindingKind::MiddleboxReset,
        Cause::BackendStateLost => FindingKind::BackendStateLost,
        Cause::PmtuBlackhole => FindingKind::PmtuBlackhole,
        Cause::AcceptQueueOverflow => FindingKind::AcceptQueueOverflow,
        Cause::MaxRequestsClose => FindingKind::MaxRequestsClose,
        Cause::Unknown => FindingKind::CaptureGap,
    }
}

/// Minimum pause before a request for a RST-without-FIN to read as the
/// backend closing an idle connection rather than aborting a request.
const IDLE_MIN_NS: Nanos = 200_000_000;

/// The owner closed an idle connection while the next request was arriving:
/// Linux turns the close into a RST when unread data sits in the socket.
/// Signs: RST without FIN, the request that preceded it was never ACKed
/// (the application never read it), and the connection had been idle
/// before that request. Returns (first request segment, RST, idle ns).
fn idle_close_by_rst(ctx: &Ctx<'_>, v: &NodeView) -> Option<(usize, usize, Nanos)> {
    let f = &v.facts;
    if f.backend_fin.is_some() {
        return None;
    }
    let &r = f.backend_rsts.first()?;
    let tr = ctx.t(r);
    let last_resp = f
        .backend_data
        .iter()
        .map(|&i| ctx.t(i))
        .filter(|&t| t < tr)
        .max();
    let &req = f
        .proxy_data
        .iter()
        .find(|&&i| ctx.t(i) <= tr && last_resp.is_none_or(|t| ctx.t(i) > t))?;
    let req_seq = ctx.pkts[req].obs.seq;
    let acked = v.pkts.iter().any(|&i| {
        let p = &ctx.pkts[i];
        !p.to_backend()
            && !p.obs.flags.rst()
            && p.obs.flags.ack()
            && ctx.t(i) >= ctx.t(req)
            && ctx.t(i) < tr
            && seq_gt(p.obs.ack, req_seq)
    });
    if acked {
        return None;
    }
    let prev = v
        .pkts
        .iter()
        .map(|&i| ctx.t(i))
        .filter(|&t| t < ctx.t(req))
        .max()?;
    let idle = ctx.t(req) - prev;
    (idle >= IDLE_MIN_NS).then_some((req, r, idle))
}

/// Time of the last data (either way) on the view before `t_idx`.
pub(crate) fn last_activity_before(ctx: &Ctx<'_>, v: &NodeView, t_idx: usize) -> Option<Nanos> {
    let t = ctx.t(t_idx);
    v.pkts
        .iter()
        .filter(|&&i| ctx.t(i) < t && ctx.pkts[i].obs.payload_len > 0)
        .map(|&i| ctx.t(i))
        .max()
}

/// The connection was idle when the backend sent `fin`: every request before
/// it had been answered (the last data before the FIN came from the backend),
/// or there was no data at all.
pub(crate) fn was_idle(ctx: &Ctx<'_>, v: &NodeView, fin: usize) -> bool {
    let t = ctx.t(fin);
    let last = v
        .pkts
        .iter()
        .filter(|&&i| ctx.t(i) < t && ctx.pkts[i].obs.payload_len > 0)
        .max_by_key(|&&i| ctx.t(i));
    match last {
        None => true,
        Some(&i) => !ctx.pkts[i].to_backend(),
    }
}

/// A request the backend never answered before the proxy gave up: (last
/// request segment, the proxy's FIN/RST after it, if any). A response that
/// arrives after the proxy closed does not count as an answer.
pub(crate) fn pending_request(ctx: &Ctx<'_>, v: &NodeView) -> Option<(usize, Option<usize>)> {
    let f = &v.facts;
    let first_data = ctx.t(*f.proxy_data.first()?);
    let close = f
        .proxy_rsts
        .iter()
        .copied()
        .chain(f.proxy_fin)
        .filter(|&c| ctx.t(c) > first_data)
        .min_by_key(|&c| ctx.t(c));
    let horizon = close.map_or(Nanos::MAX, |c| ctx.t(c));
    let &last_req = f.proxy_data.iter().rev().find(|&&d| ctx.t(d) <= horizon)?;
    let t = ctx.t(last_req);
    if f.backend_data
        .iter()
        .any(|&d| ctx.t(d) > t && ctx.t(d) <= horizon)
    {
        return None;
    }
    Some((last_req, close))
}

/// Where the stray segment sat in its request: its ordinal among the
/// request's distinct data segments (all nodes, by sequence number) and the
/// request's size. The request starts after the last response byte.
fn shape(ctx: &Ctx<'_>, c: &Conn, stray: usize) -> Option<(usize, u64)> {
    let ts = ctx.t(stray);
    let last_resp = c
        .views
        .iter()
        .flat_map(|v| v.facts.backend_data.iter().copied())
        .filter(|&i| ctx.t(i) < ts)
        .map(|i| ctx.t(i))
        .max();
    let mut segs: Vec<(u32, u32)> = c
        .views
        .iter()
        .flat_map(|v| v.facts.proxy_data.iter().copied())
        .filter(|&i| last_resp.is_none_or(|t| ctx.t(i) > t))
        .map(|i| (ctx.pkts[i].obs.seq, ctx.pkts[i].obs.payload_len))
        .collect();
    let base = segs.iter().map(|s| s.0).min_by(|a, b| {
        if seq_gt(*a, *b) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Less
        }
    })?;
    segs.sort_by_key(|s| s.0.wrapping_sub(base));
    segs.dedup_by_key(|s| s.0);
    let seq = ctx.pkts[stray].obs.seq;
    let ordinal = segs.iter().position(|s| s.0 == seq)? + 1;
    let bytes = segs.iter().map(|s| u64::from(s.1)).sum();
    Some((ordinal, bytes))
}
