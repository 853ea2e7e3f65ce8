//! One diagnosis per error: the rules' verdict on the error's connection
//! ([`crate::rules`]) turned into the report's words, or what the log line
//! alone says when no packets can be joined, or "incomplete" when capture
//! data the verdict depends on is lost.

use crate::conn::Conn;
use crate::ctx::{time, Ctx, Parts, Pk};
use crate::model::{
    Cause, ErrorDiagnosis, Evidence, Finding, FindingKind, Measures, Origin, ProofKind, ProofRecord,
};
use crate::rules::{self, Case, Proof, RuleHit};
use wiretrail_capture::Duration;
use wiretrail_logs::{ErrorClass, ProxyError, Source};

/// What one error's diagnosis produced.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub diagnosis: ErrorDiagnosis,
    pub findings: Vec<Finding>,
    pub summary: String,
}

/// The log line as evidence.
pub(crate) fn log_evidence(e: &ProxyError) -> Evidence {
    let (file, frame) = match &e.source {
        Source::File { file, line } => (file.clone(), *line),
        Source::Stdin { line } => ("-".to_string(), *line),
        Source::Elasticsearch { index, id, .. } => (format!("{index}/{id}"), 0),
    };
    Evidence {
        origin: Origin::Log,
        file,
        frame,
        time: e.timestamp,
        note: Some(e.message.clone()),
    }
}

/// What the log line alone says: the classes whose words are the cause
/// (the kernel said `connection refused`, Go said it timed out or the
/// client canceled). A bare `EOF` names no cause: an idle race, a
/// max-requests close and a lost socket all print it.
pub(crate) fn from_log(e: &ProxyError) -> Option<(Cause, &'static str)> {
    let dial = rules::is_dial(e);
    match e.class {
        ErrorClass::Refused => Some((Cause::Refused, "the log says connection refused")),
        ErrorClass::Timeout if dial => {
            Some((Cause::ConnectTimeout, "the log says the dial timed out"))
        }
        ErrorClass::Timeout => Some((
            Cause::ResponseTimeout,
            "the log says the proxy timed out waiting",
        )),
        ErrorClass::Canceled => Some((
            Cause::ClientCanceled,
            "the log says the client's context was canceled",
        )),
        _ => None,
    }
}

/// A log-only reading is worth this much.
const LOG_ONLY: f64 = 0.6;

fn log_only_outcome(e: &ProxyError, why: String, findings: Vec<Finding>) -> Outcome {
    let (cause, conf, proofs, summary) = match from_log(e) {
        Some((c, said)) => (
            c,
            LOG_ONLY,
            vec![ProofRecord {
                proof: ProofKind::LogOnly,
                weight: LOG_ONLY,
                note: said.to_string(),
            }],
            format!("{said}; {why}"),
        ),
        None => (
            Cause::Unknown,
            0.0,
            Vec::new(),
            match e.class {
                ErrorClass::Eof => format!(
                    "the backend closed a reused connection (EOF): an idle race, a max-requests close or a lost socket, which only the packets can tell; {why}"
                ),
                _ => why,
            },
        ),
    };
    Outcome {
        diagnosis: ErrorDiagnosis {
            cause,
            confidence: conf,
            owner_node: None,
            stray_nodes: Vec::new(),
            evidence: vec![log_evidence(e)],
            proofs,
            remedy: rules::rule_of(cause).map(|r| r.remedy.to_string()),
            measures: Measures::default(),
        },
        findings,
        summary,
    }
}

/// An error whose line names no proxy socket and nothing to join by time.
pub(crate) fn diagnose_unjoinable(e: &ProxyError, why: &str) -> Outcome {
    log_only_outcome(e, why.to_string(), Vec::new())
}

/// The flow of a joinable error is in no capture.
pub(crate) fn diagnose_missing(
    e: &ProxyError,
    uncovered: &[String],
    covered: &[String],
) -> Outcome {
    let summary = format!(
        "the connection is not in the captures: nodes searched {covered:?}, nodes without captures for the window {uncovered:?}"
    );
    let gap = Finding {
        kind: FindingKind::CaptureGap,
        nodes: uncovered.to_vec(),
        confidence: 0.9,
        summary: summary.clone(),
        evidence: vec![log_evidence(e)],
    };
    let mut o = log_only_outcome(e, summary, vec![gap]);
    // Joinable by port, yet absent: the log's reading stays a reading, and
    // "not captured" is the finding; the cause is not proven by packets.
    o.diagnosis.cause = Cause::Unknown;
    o.diagnosis.confidence = 0.0;
    o.diagnosis.proofs.clear();
    o.diagnosis.remedy = None;
    o
}

/// How far around a connection lost capture data still matters.
const LOSS_SLACK: Duration = Duration::from_secs(1);

/// Diagnoses one error against the connection instance it belongs to.
pub(crate) fn diagnose(ctx: &Ctx<'_>, e: &ProxyError, c: &Conn) -> Outcome {
    let case = Case {
        ctx,
        err: e,
        parts: Parts::of(ctx, c),
    };
    let hit = rules::evaluate(&case);
    let t_log = crate::plan::log_ts(e);
    let (from, to) = (
        c.first_ref.min(t_log) - LOSS_SLACK,
        c.last_ref.max(t_log) + LOSS_SLACK,
    );
    if let Some((node, loss)) = ctx.loss_between(from, to) {
        return incomplete(ctx, e, &case, hit, node, loss);
    }
    let mut out = match hit {
        Some(h) => from_hit(ctx, e, h, ""),
        None => no_rule(ctx, e, &case),
    };
    out.findings
        .extend(side_findings(ctx, &case, out.diagnosis.cause));
    out
}

/// Capture data the verdict could depend on is lost: say so, and what the
/// packets that are left would suggest, without naming it as the cause.
fn incomplete(
    ctx: &Ctx<'_>,
    e: &ProxyError,
    case: &Case<'_>,
    hit: Option<RuleHit>,
    node: &str,
    loss: &crate::config::CaptureLoss,
) -> Outcome {
    let span = loss
        .span
        .map(|(a, b)| {
            format!(
                "{} – {}",
                time(a).format("%H:%M:%S%.3f"),
                time(b).format("%H:%M:%S%.3f")
            )
        })
        .unwrap_or_else(|| "an unknown span".into());
    let left = hit
        .as_ref()
        .map(|h| {
            format!(
                "; the packets that are left point to {}, which the lost packets could change",
                h.cause.as_str()
            )
        })
        .unwrap_or_default();
    let summary = format!(
        "captures incomplete: {node}'s {} ({}, {span}: {}) covers part of this connection's life{left}",
        loss.file,
        loss.reason.as_str(),
        loss.detail
    );
    let mut evidence: Vec<Evidence> = case
        .parts
        .conn
        .views
        .iter()
        .filter_map(|v| {
            v.pkts
                .first()
                .map(|&i| ctx.ev(i, format!("first packet {} captured", v.node)))
        })
        .collect();
    evidence.push(log_evidence(e));
    let finding = Finding {
        kind: FindingKind::CaptureGap,
        nodes: vec![node.to_string()],
        confidence: 0.95,
        summary: summary.clone(),
        evidence: evidence.clone(),
    };
    let mut proofs = vec![ProofRecord {
        proof: ProofKind::CaptureIncomplete,
        weight: 0.0,
        note: format!("{} is {}: {}", loss.file, loss.reason.as_str(), loss.detail),
    }];
    if let Some(h) = &hit {
        proofs.extend(records(&h.proofs));
    }
    Outcome {
        diagnosis: ErrorDiagnosis {
            cause: Cause::Unknown,
            confidence: 0.0,
            owner_node: hit.as_ref().and_then(|h| h.owner.clone()),
            stray_nodes: Vec::new(),
            evidence,
            proofs,
            remedy: None,
            measures: Measures::default(),
        },
        findings: vec![finding],
        summary,
    }
}

/// No rule's signature is present.
fn no_rule(ctx: &Ctx<'_>, e: &ProxyError, case: &Case<'_>) -> Outcome {
    let mut o = log_only_outcome(
        e,
        "the packets show none of the failure signatures wiretrail knows".into(),
        Vec::new(),
    );
    if o.diagnosis.cause != Cause::Unknown {
        // The log's own words, neither confirmed nor contradicted.
        o.diagnosis.confidence = 0.5;
        if let Some(p) = o.diagnosis.proofs.first_mut() {
            p.weight = 0.5;
        }
        o.summary = format!(
            "{}; the packets neither confirm nor contradict it",
            from_log(e).map_or("", |x| x.1)
        );
    }
    o.diagnosis.owner_node = case.parts.owner.map(|v| v.node.to_string());
    if let Some(v) = case.parts.primary(ctx) {
        if let Some(&i) = v.pkts.last() {
            o.diagnosis
                .evidence
                .insert(0, ctx.ev(i, format!("last packet {} captured", v.node)));
        }
    }
    o
}

pub(crate) fn records(proofs: &[Proof]) -> Vec<ProofRecord> {
    proofs
        .iter()
        .map(|p| ProofRecord {
            proof: p.kind(),
            weight: p.weight(),
            note: p.note(),
        })
        .collect()
}

/// The report's words for a rule's hit. `joined` is added to the finding's
/// summary (how the error was joined to this connection, when by time).
pub(crate) fn from_hit(ctx: &Ctx<'_>, e: &ProxyError, h: RuleHit, joined: &str) -> Outcome {
    let conf = h.confidence();
    let mut seen: Vec<Pk> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    for p in &h.proofs {
        for (i, note) in p.frames(ctx) {
            if !seen.contains(&i) {
                seen.push(i);
                evidence.push(ctx.ev(i, note));
            }
        }
    }
    let finding = Finding {
        kind: cause_kind(h.cause),
        nodes: h.owner.iter().chain(&h.strays).cloned().collect(),
        confidence: conf,
        summary: format!("{}{joined}", h.summary),
        evidence: evidence.clone(),
    };
    evidence.push(log_evidence(e));
    Outcome {
        diagnosis: ErrorDiagnosis {
            cause: h.cause,
            confidence: conf,
            owner_node: h.owner.clone(),
            stray_nodes: h.strays.clone(),
            evidence,
            proofs: records(&h.proofs),
            remedy: Some(h.remedy.to_string()).filter(|r| !r.is_empty()),
            measures: Measures {
                stray_segment: h.stray_shape.map(|s| s.0 as u32),
                request_bytes: h.stray_shape.map(|s| s.1),
                idle_ms: h
                    .idle
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                requests_served: h.requests,
            },
        },
        findings: vec![finding],
        summary: h.summary,
    }
}

/// Findings about the connection that the cause does not cover: a stray
/// node that stayed silent, no handshake anywhere.
fn side_findings(ctx: &Ctx<'_>, case: &Case<'_>, cause: Cause) -> Vec<Finding> {
    let mut out = Vec::new();
    let strays = case.parts.strays(ctx);
    if cause != Cause::FlowSplit && !strays.is_empty() && case.parts.owner.is_some() {
        let names: Vec<String> = strays.iter().map(|v| v.node.to_string()).collect();
        out.push(Finding {
            kind: FindingKind::FlowSplit,
            nodes: names.clone(),
            confidence: 0.5,
            summary: format!(
                "part of the connection also reached {} (no handshake there, no answer)",
                names.join(", ")
            ),
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
    let c = case.parts.conn;
    if !c.views.iter().any(|v| v.facts.syn.is_some()) {
        out.push(Finding {
            kind: FindingKind::CaptureGap,
            nodes: c.views.iter().map(|v| v.node.to_string()).collect(),
            confidence: 0.6,
            summary: "no node captured the handshake: the connection started before the window or the captures".into(),
            evidence: c
                .views
                .iter()
                .filter_map(|v| v.pkts.first().map(|&i| ctx.ev(i, "first packet seen")))
                .collect(),
        });
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CaptureLoss, LossReason};
    use crate::rules::testkit::{at, Kit, To};

    #[test]
    fn lost_capture_data_makes_the_diagnosis_incomplete_not_a_cause() {
        // The seed's split, but b3's rotation holding the stray RST was
        // unreadable: the packets left would say something else.
        let mut k = Kit::new(51392);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 1.0, To::Backend, "A", s, a, 1448);
        k.pkt("proxy", 1.0, To::Backend, "A", s + 1448, a, 1448);
        k.both("b1", 1.0002, To::Proxy, "A", a, s + 1448, 0);
        k.pkt("proxy", 1.0003, To::Proxy, "R", a, 0, 0);
        k.lose(
            "b3",
            CaptureLoss {
                file: "/captures/b3/b3.pcap01".into(),
                span: Some((at(0.5), at(20.0))),
                reason: LossReason::Unreadable,
                detail: "permission denied".into(),
            },
        );
        let e = k.reset_err(1.001);
        let hits = k.hits(&e);
        assert!(!hits.is_empty(), "the packets left do suggest a cause");
        let o = k.case(&e, |c| diagnose(c.ctx, &e, c.parts.conn));
        assert_eq!(
            (o.diagnosis.cause, o.diagnosis.confidence),
            (Cause::Unknown, 0.0)
        );
        assert!(o.summary.contains("captures incomplete"), "{}", o.summary);
        assert_eq!(o.findings[0].kind, FindingKind::CaptureGap);
        assert_eq!(o.diagnosis.proofs[0].proof, ProofKind::CaptureIncomplete);
    }
}
