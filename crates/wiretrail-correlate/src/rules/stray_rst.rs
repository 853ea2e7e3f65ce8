//! `stray_rst`: a stateless RST killed the connection and the node that
//! sent it is not among the captures that own the connection.
//!
//! **Signature**: a RST in the stateless form (seq = the ACK of the segment
//! it answers, no ACK flag: its sender had no socket), and either
//! - a backend that never saw the handshake sent it and no owner is in the
//!   captures (backends captured); or
//! - it reached the proxy and no captured owner sent it: no backend capture
//!   holds it, or the backends were not captured, and it is not the owner's
//!   (its MAC differs from the owner's packets, or MACs name no host here).
//!
//! | capture mode | proves | owner / strays |
//! |---|---|---|
//! | all, backends only | the stray's own capture holds its RST; the owner is not captured | strays named, owner null |
//! | proxy only | the stateless form and its arrival right after the segment it answers; the sender is unknown (a flow split to another backend, or a device at the backends' hop distance) | null |
//!
//! This is the honest word for the seed's flow split when only the proxy
//! captured: the packets prove "a node without the socket answered", not
//! which.

use super::{Case, Proof, Rule, RuleHit, MIDDLEBOX_IDLE_MIN};
use crate::ctx::Fingerprint;
use crate::model::Cause;
use crate::rst::{self, RstSender};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::StrayRst,
    explains: |e| super::closed_like(e),
    check,
    remedy: "A node without the connection's socket answered it: capture on every backend behind the VIP (and on the proxy) to see where the segment went; then check per-flow load balancing (switch hashing, ECMP, ARP flux).",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let strays = parts.strays(ctx);
    // A captured stray answered, and the owner is not in the captures.
    if parts.owner.is_none() {
        if let Some((v, r)) = strays
            .iter()
            .flat_map(|v| v.facts.backend_rsts.iter().map(move |&r| (*v, r)))
            .min_by_key(|&(_, r)| ctx.t(r))
        {
            let mut hit = RuleHit::new(
                Cause::StrayRst,
                ctx.t(r),
                format!(
                    "stray RST: {} answered RST without ever seeing the handshake; the node that owns the connection is not in the captures",
                    strays.iter().map(|v| v.node.as_ref()).collect::<Vec<_>>().join(", ")
                ),
            );
            hit.strays = strays.iter().map(|v| v.node.to_string()).collect();
            for s in &strays {
                if let Some(&seg) = s.facts.proxy_data.first() {
                    hit = hit.proof(Proof::SegmentAstray {
                        node: s.node.to_string(),
                        seg,
                    });
                }
            }
            if let Some(answers) = rst::form(ctx, v, r).answers() {
                hit = hit.proof(Proof::StatelessRst { rst: r, answers });
            }
            return Some(hit);
        }
    }
    // The proxy's wire: a stateless RST nobody captured sending.
    let pv = parts.proxy?;
    let backends = parts.backends(ctx);
    for &r in &pv.facts.backend_rsts {
        // A RST after the peer's own FIN, or right after the handshake
        // before any data was taken: the peer's, not a stray's.
        if super::after_peer_fin(ctx, pv, r) || super::reset_on_accept(ctx, pv, r).is_some() {
            continue;
        }
        let form = rst::form(ctx, pv, r);
        let Some(answers) = form.answers().filter(|_| form.is_stateless()) else {
            continue;
        };
        let covered = match rst::sender(ctx, &backends, r) {
            // A captured backend sent it: flow split or state loss say more.
            RstSender::Node(..) => continue,
            RstSender::NotCaptured { covered, .. } => covered,
        };
        let peer = parts.peer_fingerprint(ctx, ctx.t(answers));
        let fp = Fingerprint::of(&ctx.pkts[r]);
        if let Some((f, _)) = peer {
            // The owner's own NIC, where MACs name hosts: state loss.
            if fp == f && f.mac.is_some() && ctx.mac_names_host(ctx.pkts[r].obs.src.ip()) {
                continue;
            }
            // Another hop distance after a long idle gap: a middlebox.
            let idle = super::last_packet_before(ctx, pv, ctx.t(answers)).is_some_and(|l| {
                ctx.t(answers).saturating_duration_since(ctx.t(l)) >= MIDDLEBOX_IDLE_MIN
            });
            if fp.ttl != f.ttl && idle {
                continue;
            }
        }
        let mut hit = RuleHit::new(
            Cause::StrayRst,
            ctx.t(r),
            format!(
                "stray RST: a node with no socket for the connection answered the proxy's segment with a stateless RST {:.0} µs after it; {}",
                ctx.t(r).saturating_duration_since(ctx.t(answers)).as_nanos() as f64 / 1e3,
                if backends.is_empty() {
                    "the node that sent it is not in the captures (only the proxy's wire is)".to_string()
                } else {
                    "no backend capture holds it: the sender is not in the captures".to_string()
                }
            ),
        )
        .proof(Proof::StatelessRst { rst: r, answers });
        if !covered.is_empty() {
            hit = hit.proof(Proof::RstInNoBackend { rst: r, covered });
        }
        if let Some((f, p)) = peer {
            if fp.mac.is_some() && fp.mac != f.mac {
                hit = hit.proof(Proof::MacDiffers { rst: r, peer: p });
            }
        }
        return Some(hit);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    /// The seed on the proxy's wire alone: segment 2 went to b3, whose RST
    /// arrives with b3's MAC.
    fn seed_proxy_only() -> Kit {
        let mut k = Kit::new(51392);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 1.0, To::Backend, "A", s, a, 1448);
        k.pkt("proxy", 1.0, To::Backend, "A", s + 1448, a, 1448);
        k.both("b1", 1.0002, To::Proxy, "A", a, s + 1448, 0);
        let r = k.pkt("proxy", 1.0003, To::Proxy, "R", a, 0, 0);
        r.link.src_mac = Some(crate::rules::testkit::mac(3));
        r.ip_id = Some(0);
        k.only(&["proxy"]);
        k
    }

    #[test]
    fn the_seed_with_only_the_proxy_capture_is_a_stray_rst_not_a_backend_reset() {
        let k = seed_proxy_only();
        let h = k.verdict(&k.reset_err(1.001)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.clone(), h.strays.len()),
            (Cause::StrayRst, None, 0)
        );
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::StatelessRst { .. })));
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::MacDiffers { .. })));
        assert!(
            !h.proofs
                .iter()
                .any(|p| matches!(p, Proof::Contested { .. })),
            "{:?}",
            h.proofs
        );
    }

    #[test]
    fn a_captured_stray_without_an_owner() {
        let mut k = Kit::new(51392);
        k.pkt("b3", 1.0, To::Backend, "A", 2449, 5001, 1448);
        k.pkt("b3", 1.0001, To::Proxy, "R", 5001, 0, 0);
        k.only(&["b1", "b2", "b3"]);
        let h = k.verdict(&k.reset_err(1.001)).expect("fires");
        assert_eq!(
            (h.cause, h.strays.clone()),
            (Cause::StrayRst, vec!["b3".to_string()])
        );
    }

    #[test]
    fn an_abort_is_not_stray() {
        let mut k = Kit::new(51392);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 1.0, To::Backend, "PA", s, a, 100);
        k.both("b1", 1.001, To::Proxy, "RA", a, s + 100, 0);
        k.only(&["proxy"]);
        assert!(k.case(&k.reset_err(1.002), check).is_none());
    }
}
