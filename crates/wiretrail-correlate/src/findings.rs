//! Findings about one connection that do not depend on any one error:
//! capture duplicates, path anomalies, the provenance of every RST, gaps a
//! node acknowledged that another node captured, and the stray marks.

use crate::conn::Conn;
use crate::ctx::{Ctx, Parts, Pk, Side};
use crate::model::{Finding, FindingKind, Mark};
use crate::rst::{self, RstForm, RstSender};
use wiretrail_capture::Duration;

/// The words of an RST's form, with the packets that prove it.
fn form_words(ctx: &Ctx<'_>, rst: Pk, f: RstForm, after_fin: bool) -> String {
    let frame = |i: Pk| ctx.pkts[i].obs.frame;
    match f {
        _ if after_fin => {
            "idle close: RST after the backend's own FIN, data arrived on a socket it had closed".into()
        }
        RstForm::Refusal { syn } => format!(
            "refusal: RST/ACK acknowledging the SYN (frame {}), nothing listens on the port",
            frame(syn)
        ),
        RstForm::Stateless { answers } => format!(
            "stateless: seq={} equals the ACK of the segment it answers (frame {}), no ACK flag: its sender had no socket for the connection",
            ctx.pkts[rst].obs.seq,
            frame(answers)
        ),
        RstForm::StatelessToNoAck { answers } => format!(
            "stateless: seq=0, ack=seq+len of frame {} (RFC 793 reply to a segment without ACK): its sender had no socket for the connection",
            frame(answers)
        ),
        RstForm::Abort => format!(
            "abort: RST|ACK seq={} in the sender's own sequence space, from a stack that had the socket",
            ctx.pkts[rst].obs.seq
        ),
        RstForm::Unmatched => "the segment it answers is not in this capture".into(),
    }
}

/// Marks stray segments/RSTs and gaps filled elsewhere; returns the
/// connection's findings that do not depend on any one error.
pub(crate) fn conn_findings(ctx: &Ctx<'_>, c: &Conn) -> (Vec<Finding>, Vec<(Pk, Mark)>) {
    let mut out = Vec::new();
    let mut marks = Vec::new();
    let parts = Parts::of(ctx, c);
    let stray_nodes: Vec<&str> = parts.strays(ctx).iter().map(|v| v.node.as_ref()).collect();
    let backends = parts.backends(ctx);

    for v in &c.views {
        let stray = stray_nodes.contains(&v.node.as_ref());
        if stray {
            for &i in &v.pkts {
                let p = &ctx.pkts[i];
                if p.to_backend() {
                    marks.push((i, Mark::StraySegment));
                } else if p.obs.flags.rst() {
                    marks.push((i, Mark::StrayRst));
                }
            }
        }
        // Capture duplicates.
        if !v.dups.is_empty() {
            let max_gap = v
                .dups
                .iter()
                .filter_map(|&d| {
                    ctx.pkts[d].dup_of.map(|o| {
                        ctx.pkts[d]
                            .obs
                            .ts
                            .saturating_duration_since(ctx.pkts[o].obs.ts)
                    })
                })
                .max()
                .unwrap_or(Duration::ZERO);
            let mut evidence = Vec::new();
            for &d in v.dups.iter().take(2) {
                if let Some(o) = ctx.pkts[d].dup_of {
                    evidence.push(ctx.ev(o, "first copy"));
                    evidence.push(ctx.ev(
                        d,
                        format!(
                            "second copy of frame {} (same header except TTL/checksum, {} ns later): not a retransmission",
                            ctx.pkts[o].obs.frame,
                            ctx.pkts[d]
                                .obs
                                .ts
                                .saturating_duration_since(ctx.pkts[o].obs.ts)
                                .as_nanos()
                        ),
                    ));
                }
            }
            out.push(Finding {
                kind: FindingKind::CaptureDuplicate,
                nodes: vec![v.node.to_string()],
                confidence: 0.95,
                summary: format!(
                    "{} recorded {} of its {} packets of this connection twice (copies at most {} µs apart, e.g. bond and member): capture duplicates, not retransmissions",
                    v.node,
                    v.dups.len(),
                    v.pkts.len() + v.dups.len(),
                    max_gap.as_micros()
                ),
                evidence,
            });
        }
        // Path anomalies.
        if !v.facts.path_anomalies.is_empty() {
            out.push(Finding {
                kind: FindingKind::PathAnomaly,
                nodes: vec![v.node.to_string()],
                confidence: 0.7,
                summary: format!(
                    "on {} the MAC address, VLAN or TTL changed {} time(s) inside one connection (ARP flux on a shared VIP, ECMP, or a different sender)",
                    v.node,
                    v.facts.path_anomalies.len()
                ),
                evidence: v
                    .facts
                    .path_anomalies
                    .iter()
                    .take(4)
                    .map(|&i| {
                        let o = &ctx.pkts[i].obs;
                        ctx.ev(i, format!("ttl={} vlan={:?} dst_mac={}", o.ttl, o.link.vlan, mac(o.link.dst_mac)))
                    })
                    .collect(),
            });
        }
        // RST provenance: every RST classified by its form; on the proxy's
        // (or a switch's) wire, the sender is looked up among the backends.
        let observer = ctx.side(&v.node) != Side::Backend;
        for &i in v.pkts.iter().filter(|&&i| ctx.pkts[i].obs.flags.rst()) {
            if ctx.pkts[i].to_backend() {
                out.push(Finding {
                    kind: FindingKind::RstProvenance,
                    nodes: vec![v.node.to_string()],
                    confidence: 0.9,
                    summary: format!(
                        "RST on {}: from the proxy, seq={} (the proxy abandoned the connection)",
                        v.node, ctx.pkts[i].obs.seq
                    ),
                    evidence: vec![ctx.ev(i, "the proxy's RST")],
                });
                continue;
            }
            let form = rst::form(ctx, v, i);
            let word = form_words(ctx, i, form, crate::rules::after_peer_fin(ctx, v, i));
            let who = if observer {
                match rst::sender(ctx, &backends, i) {
                    RstSender::Node(w, j) => {
                        format!("sent by {} (frame {} there)", w.node, ctx.pkts[j].obs.frame)
                    }
                    RstSender::NotCaptured { covered, .. } if !covered.is_empty() => format!(
                        "no backend capture holds it ({} cover the moment)",
                        covered.join(", ")
                    ),
                    RstSender::NotCaptured { .. } => {
                        "the sending node's capture is not here".to_string()
                    }
                }
            } else if stray {
                format!(
                    "sent by {}, a node without the connection's handshake",
                    v.node
                )
            } else {
                format!("sent by {}", v.node)
            };
            out.push(Finding {
                kind: FindingKind::RstProvenance,
                nodes: vec![v.node.to_string()],
                confidence: if matches!(form, RstForm::Unmatched) {
                    0.5
                } else {
                    0.9
                },
                summary: format!("RST on {}: {word}; {who}", v.node),
                evidence: vec![ctx.ev(i, word.clone())],
            });
        }
        // Bytes the backend acknowledged but this node never saw.
        for &(ack_pkt, from, to) in &v.facts.acked_unseen {
            let filled: Vec<Pk> = c
                .views
                .iter()
                .filter(|w| w.node != v.node)
                .flat_map(|w| w.pkts.iter().copied())
                .filter(|&j| {
                    let o = &ctx.pkts[j].obs;
                    ctx.pkts[j].to_backend()
                        && o.payload_len > 0
                        && from < o.seq + o.payload_len
                        && to > o.seq
                })
                .collect();
            let mut evidence = vec![ctx.ev(
                ack_pkt,
                format!(
                    "ACK {} covers {} bytes this node never captured",
                    to,
                    to.since(from)
                ),
            )];
            if filled.is_empty() {
                out.push(Finding {
                    kind: FindingKind::CaptureGap,
                    nodes: vec![v.node.to_string()],
                    confidence: 0.8,
                    summary: format!(
                        "{} acknowledged {} bytes no capture holds: the capture dropped them",
                        v.node,
                        to.since(from)
                    ),
                    evidence,
                });
            } else {
                for &j in &filled {
                    marks.push((j, Mark::GapFilledElsewhere));
                    evidence.push(ctx.ev(j, "the missing segment, captured here"));
                }
                let mut nodes = vec![v.node.to_string()];
                nodes.extend(filled.iter().map(|&j| ctx.pkts[j].obs.node.to_string()));
                nodes.dedup();
                out.push(Finding {
                    kind: FindingKind::GapFilledElsewhere,
                    nodes,
                    confidence: 0.8,
                    summary: format!(
                        "{} acknowledged bytes it never captured; they were captured on another node",
                        v.node
                    ),
                    evidence,
                });
            }
        }
    }
    (out, marks)
}

fn mac(m: Option<[u8; 6]>) -> String {
    m.map_or_else(
        || "-".into(),
        |m| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        },
    )
}
