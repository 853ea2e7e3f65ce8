//! Findings about one connection that do not depend on any one error:
//! capture duplicates, path anomalies, the provenance of every RST, gaps a
//! node acknowledged that another node captured, and the stray marks.

use crate::conn::{seq_gt, Conn};
use crate::diagnose::{strays, Ctx};
use crate::model::{Finding, FindingKind, Mark};
use crate::rst::{classify_rst, rst_word, RstKind};

/// Marks stray segments/RSTs and gaps filled elsewhere; returns the
/// connection's findings that do not depend on any one error.
pub(crate) fn conn_findings(ctx: &Ctx<'_>, c: &Conn) -> (Vec<Finding>, Vec<(usize, Mark)>) {
    let mut out = Vec::new();
    let mut marks = Vec::new();
    let stray_nodes: Vec<&str> = strays(ctx, c).iter().map(|v| v.node.as_ref()).collect();

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
                    ctx.pkts[d]
                        .dup_of
                        .map(|o| ctx.pkts[d].obs.ts - ctx.pkts[o].obs.ts)
                })
                .max()
                .unwrap_or(0);
            let mut evidence = Vec::new();
            for &d in v.dups.iter().take(2) {
                if let Some(o) = ctx.pkts[d].dup_of {
                    evidence.push(ctx.ev(o, "first copy"));
                    evidence.push(ctx.ev(
                        d,
                        format!(
                            "second copy of frame {} (same header except TTL/checksum, {} ns later): not a retransmission",
                            ctx.pkts[o].obs.frame,
                            ctx.pkts[d].obs.ts - ctx.pkts[o].obs.ts
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
                    max_gap / 1000
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
        // RST provenance: every RST classified. An observer (the proxy's or
        // a switch's capture) sees RSTs other nodes sent: the classification
        // is the sender's, found by the same packet on a backend node.
        let observer = !ctx.backendish(&v.node);
        for &i in v.pkts.iter().filter(|&&i| ctx.pkts[i].obs.flags.rst()) {
            let sender = if observer && !ctx.pkts[i].to_backend() {
                c.views
                    .iter()
                    .filter(|w| ctx.backendish(&w.node))
                    .find_map(|w| {
                        w.pkts
                            .iter()
                            .find(|&&j| same_packet(ctx, i, j))
                            .map(|&j| (w, j))
                    })
            } else {
                None
            };
            let (kind, note) = match sender {
                Some((w, j)) => {
                    let (k, n) = classify_rst(ctx, w, j, stray_nodes.contains(&w.node.as_ref()));
                    (
                        k,
                        format!(
                            "sent by {} (frame {} there): {n}",
                            w.node, ctx.pkts[j].obs.frame
                        ),
                    )
                }
                None if observer && !ctx.pkts[i].to_backend() => {
                    let (k, n) = classify_rst(ctx, v, i, false);
                    (
                        k,
                        format!("{n} (the sending node's capture does not hold it)"),
                    )
                }
                None => classify_rst(ctx, v, i, stray),
            };
            out.push(Finding {
                kind: FindingKind::RstProvenance,
                nodes: vec![v.node.to_string()],
                confidence: if kind == RstKind::AppAbort { 0.7 } else { 0.9 },
                summary: format!("RST on {}: {} — {}", v.node, rst_word(kind), note),
                evidence: vec![ctx.ev(i, rst_word(kind))],
            });
        }
        // Bytes the backend acknowledged but this node never saw.
        for &(ack_pkt, from, to) in &v.facts.acked_unseen {
            let filled: Vec<usize> = c
                .views
                .iter()
                .filter(|w| w.node != v.node)
                .flat_map(|w| w.pkts.iter().copied())
                .filter(|&j| {
                    let o = &ctx.pkts[j].obs;
                    ctx.pkts[j].to_backend()
                        && o.payload_len > 0
                        && !seq_gt(from, o.seq.wrapping_add(o.payload_len).wrapping_sub(1))
                        && seq_gt(to, o.seq)
                })
                .collect();
            let mut evidence = vec![ctx.ev(
                ack_pkt,
                format!(
                    "ACK {} covers {} bytes this node never captured",
                    to,
                    to.wrapping_sub(from)
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
                        to.wrapping_sub(from)
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

/// The same packet seen by two nodes (the header fields a forwarder keeps).
fn same_packet(ctx: &Ctx<'_>, a: usize, b: usize) -> bool {
    let (x, y) = (&ctx.pkts[a].obs, &ctx.pkts[b].obs);
    x.dir == y.dir
        && x.seq == y.seq
        && x.ack == y.ack
        && x.flags == y.flags
        && x.payload_len == y.payload_len
        && x.ip_id == y.ip_id
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
