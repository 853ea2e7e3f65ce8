//! What only many errors together show: one backend failing many
//! connections at once (a restart, a deploy, lost state) and many flows
//! moving to another node at one instant (an ECMP rehash after a route
//! change, VIP/ARP flux). These are findings across errors, never causes;
//! they also add typed proofs to the errors they explain (a lost socket is
//! likelier when the same node lost many at once).

use crate::conn::ConnId;
use crate::ctx::{time, Ctx};
use crate::diagnose::{log_evidence, Outcome};
use crate::model::{Cause, Finding, FindingKind, ProofKind, ProofRecord};
use crate::plan::ErrorId;
use crate::rules::Proof;
use std::collections::BTreeMap;
use wiretrail_capture::{Duration, Timestamp};
use wiretrail_logs::ProxyError;

/// One error's diagnosis before it joins its incident.
#[derive(Debug)]
pub(crate) struct Judged {
    pub error: ErrorId,
    /// The log line's time.
    pub t: Timestamp,
    pub outcome: Outcome,
    /// The connection it was joined to.
    pub conn: Option<ConnId>,
    /// Connections shown as candidates of an ambiguous time join.
    pub shown: Vec<ConnId>,
}

/// Errors of one node within this long form a burst...
const BURST_WINDOW: Duration = Duration::from_secs(5);
/// ...when there are at least this many.
const BURST_MIN: usize = 3;
/// Flows moving at one instant: split errors within this long.
const REHASH_WINDOW: Duration = Duration::from_secs(2);
const REHASH_MIN: usize = 3;

/// A finding across errors, and the errors it concerns.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub finding: Finding,
    pub errors: Vec<ErrorId>,
}

/// Finds the events and adds their proofs to the errors they concern.
pub(crate) fn events(_ctx: &Ctx<'_>, judged: &mut [Judged], errors: &[ProxyError]) -> Vec<Event> {
    let mut out = Vec::new();
    out.extend(node_bursts(judged, errors));
    out.extend(rehashes(judged, errors));
    out
}

/// Clusters of `idx` (sorted by time) where at least `min` lie within `window`.
fn clusters(
    judged: &[Judged],
    mut idx: Vec<usize>,
    window: Duration,
    min: usize,
) -> Vec<Vec<usize>> {
    idx.sort_by_key(|&i| judged[i].t);
    let mut out = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for i in idx {
        if cur
            .first()
            .is_some_and(|&f| judged[i].t.saturating_duration_since(judged[f].t) > window)
        {
            if cur.len() >= min {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
        cur.push(i);
    }
    if cur.len() >= min {
        out.push(cur);
    }
    out
}

fn node_bursts(judged: &mut [Judged], errors: &[ProxyError]) -> Vec<Event> {
    let mut by_node: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, j) in judged.iter().enumerate() {
        let d = &j.outcome.diagnosis;
        // Path and client problems are not the node's own.
        let node_own = !matches!(
            d.cause,
            Cause::FlowSplit
                | Cause::StrayRst
                | Cause::MiddleboxReset
                | Cause::PmtuBlackhole
                | Cause::ClientCanceled
                | Cause::Unknown
        );
        if let (true, Some(n)) = (node_own, &d.owner_node) {
            by_node.entry(n.clone()).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for (node, idx) in by_node {
        for c in clusters(judged, idx, BURST_WINDOW, BURST_MIN) {
            let (t0, t1) = (judged[c[0]].t, judged[*c.last().expect("non-empty")].t);
            let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
            for &i in &c {
                *causes
                    .entry(judged[i].outcome.diagnosis.cause.as_str())
                    .or_default() += 1;
            }
            let list = causes
                .iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let finding = Finding {
                kind: FindingKind::BackendMassFailure,
                nodes: vec![node.clone()],
                confidence: 0.8,
                summary: format!(
                    "{} connections to {node} failed within {:.1} s from {} ({list}): the node restarted, was redeployed or lost its connection state",
                    c.len(),
                    t1.saturating_duration_since(t0).as_secs_f64(),
                    time(t0).format("%H:%M:%S%.3f")
                ),
                evidence: c.iter().map(|&i| log_evidence(&errors[judged[i].error])).collect(),
            };
            let proof = Proof::NodeBurst {
                node: node.clone(),
                errors: c.len() as u32,
                within: t1.saturating_duration_since(t0),
            };
            for &i in &c {
                if judged[i].outcome.diagnosis.cause == Cause::BackendStateLost {
                    add_proof(&mut judged[i].outcome, &proof);
                }
            }
            out.push(Event {
                finding,
                errors: c.iter().map(|&i| judged[i].error).collect(),
            });
        }
    }
    out
}

fn rehashes(judged: &[Judged], errors: &[ProxyError]) -> Vec<Event> {
    let idx: Vec<usize> = (0..judged.len())
        .filter(|&i| {
            matches!(
                judged[i].outcome.diagnosis.cause,
                Cause::FlowSplit | Cause::StrayRst
            )
        })
        .collect();
    clusters(judged, idx, REHASH_WINDOW, REHASH_MIN)
        .into_iter()
        .map(|c| {
            let (t0, t1) = (judged[c[0]].t, judged[*c.last().expect("non-empty")].t);
            let mut nodes: Vec<String> = c
                .iter()
                .flat_map(|&i| {
                    let d = &judged[i].outcome.diagnosis;
                    d.stray_nodes.iter().cloned().chain(d.owner_node.clone())
                })
                .collect();
            nodes.sort();
            nodes.dedup();
            let moved: BTreeMap<String, usize> = c.iter().fold(BTreeMap::new(), |mut m, &i| {
                for s in &judged[i].outcome.diagnosis.stray_nodes {
                    *m.entry(s.clone()).or_default() += 1;
                }
                m
            });
            let to = if moved.is_empty() {
                "a node not in the captures".to_string()
            } else {
                moved
                    .iter()
                    .map(|(k, v)| format!("{k} ×{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Event {
                finding: Finding {
                    kind: FindingKind::FlowRehash,
                    nodes,
                    confidence: 0.7,
                    summary: format!(
                        "{} established flows were answered by a node without their socket within {:.1} s from {} (to {to}): flows moved at one instant — an ECMP rehash after a route change, or VIP/ARP flux",
                        c.len(),
                        t1.saturating_duration_since(t0).as_secs_f64(),
                        time(t0).format("%H:%M:%S%.3f")
                    ),
                    evidence: c.iter().map(|&i| log_evidence(&errors[judged[i].error])).collect(),
                },
                errors: c.iter().map(|&i| judged[i].error).collect(),
            }
        })
        .collect()
}

/// Adds a proof to a rule's diagnosis and recomputes its confidence from
/// its proofs, as the rules do.
fn add_proof(o: &mut Outcome, p: &Proof) {
    let d = &mut o.diagnosis;
    if d.proofs
        .iter()
        .any(|r| matches!(r.proof, ProofKind::LogOnly | ProofKind::CaptureIncomplete))
    {
        return;
    }
    d.proofs.push(ProofRecord {
        proof: p.kind(),
        weight: p.weight(),
        note: p.note(),
    });
    let sum: f64 = d.proofs.iter().map(|r| r.weight).sum();
    d.confidence = (sum.clamp(0.0, 0.99) * 1000.0).round() / 1000.0;
    for f in o
        .findings
        .iter_mut()
        .filter(|f| f.kind == crate::diagnose::cause_kind(d.cause))
    {
        f.confidence = d.confidence;
    }
}
