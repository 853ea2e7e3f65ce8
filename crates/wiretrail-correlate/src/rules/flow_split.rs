//! `flow_split`: segments of one connection reached two backends; the one
//! without the socket answered RST (the seed's switch problem, an ECMP
//! rehash, ARP flux on a shared VIP).
//!
//! **Signature**: an owner (a backend that saw the handshake, or answered
//! with state) **and** a distinct stray backend that received one of the
//! connection's segments without ever having its socket, and answered RST.
//!
//! | capture mode | proves | owner / strays |
//! |---|---|---|
//! | all, backends only | both backends' captures: the owner's handshake, the stray's segment and RST (stateless form: seq = the ACK of the segment it answers) | named |
//! | proxy only | never: the proxy's wire shows a stateless RST from somewhere, which is [`super::stray_rst`] | — |
//!
//! A single-node failure can never be a flow split: without a stray
//! backend's own capture of the segment this rule does not fire.

use super::{Case, Proof, Rule, RuleHit};
use crate::conn::Conn;
use crate::ctx::{Ctx, Pk, Sight};
use crate::model::Cause;
use crate::rst;
use wiretrail_capture::{Duration, SeqNumber};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::FlowSplit,
    explains: |e| super::closed_like(e),
    check,
    remedy: "One connection's segments were delivered to two backends: make the load balancing in front of the VIP per-flow (a consistent 5-tuple hash, no per-packet balancing, stable ECMP nexthops with resilient hashing, no ARP flux on the shared VIP).",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let owner = parts.owner?;
    let strays = parts.strays(ctx);
    // The stray RSTs, the earliest first.
    let (sv, srst) = strays
        .iter()
        .flat_map(|v| v.facts.backend_rsts.iter().map(move |&r| (*v, r)))
        .min_by_key(|&(_, r)| ctx.t(r))?;
    let mut hit = RuleHit::new(
        Cause::FlowSplit,
        ctx.t(srst),
        format!(
            "flow split: the connection belongs to {} ({}), but {} received part of it and, having no socket for it, answered RST; the proxy took the RST and failed the request",
            owner.node,
            if owner.facts.handshake_seen { "it saw the handshake" } else { "it answered with state" },
            strays.iter().map(|v| v.node.as_ref()).collect::<Vec<_>>().join(", ")
        ),
    )
    .owner(Some(&owner.node));
    hit.strays = strays.iter().map(|v| v.node.to_string()).collect();
    match (owner.facts.syn, owner.facts.synack) {
        (Some(syn), Some(synack)) => {
            hit = hit.proof(Proof::Handshake {
                node: owner.node.to_string(),
                syn,
                synack,
            })
        }
        _ => {
            let pkt = owner
                .pkts
                .iter()
                .copied()
                .find(|&i| !ctx.pkts[i].to_backend() && !ctx.pkts[i].obs.flags.rst())?;
            hit = hit.proof(Proof::AnsweredWithState {
                node: owner.node.to_string(),
                pkt,
            });
        }
    }
    // Every stray node: the segment it got, then its RST's form.
    let mut earliest: Option<Pk> = None;
    for v in &strays {
        let seg = v
            .facts
            .proxy_data
            .first()
            .copied()
            .or_else(|| v.pkts.iter().copied().find(|&i| ctx.pkts[i].to_backend()));
        if let Some(s) = seg {
            hit = hit.proof(Proof::SegmentAstray {
                node: v.node.to_string(),
                seg: s,
            });
            if earliest.is_none_or(|e| ctx.t(s) < ctx.t(e)) {
                earliest = Some(s);
            }
            let missed = !owner.pkts.iter().any(|&j| same_segment(ctx, s, j));
            let t = ctx.t(s);
            if missed
                && matches!(
                    ctx.sight(
                        &owner.node,
                        t - Duration::from_millis(1),
                        t + Duration::from_millis(1),
                    ),
                    Sight::Covered
                )
            {
                hit = hit.proof(Proof::OwnerMissed {
                    node: owner.node.to_string(),
                    seg: s,
                });
            }
        }
    }
    if let Some(answers) = rst::form(ctx, sv, srst).answers() {
        hit = hit.proof(Proof::StatelessRst { rst: srst, answers });
    }
    if let Some(s) = earliest {
        hit.stray_shape = shape(ctx, parts.conn, s);
    }
    // The proxy's wire: when the RST arrived there.
    if let Some(pv) = parts.proxy {
        if let Some(&j) = pv.pkts.iter().find(|&&j| rst::same_packet(ctx, srst, j)) {
            hit.at = (ctx.t(j), ctx.t(j));
        }
    }
    Some(hit)
}

/// The same proxy segment (seq, length) in another capture.
fn same_segment(ctx: &Ctx<'_>, a: Pk, b: Pk) -> bool {
    let (x, y) = (&ctx.pkts[a].obs, &ctx.pkts[b].obs);
    ctx.pkts[b].to_backend() && x.seq == y.seq && x.payload_len == y.payload_len
}

/// Where the stray segment sat in its request: its ordinal among the
/// request's distinct data segments (all nodes, by sequence number) and the
/// request's size. The request starts after the last response byte.
fn shape(ctx: &Ctx<'_>, c: &Conn, stray: Pk) -> Option<(usize, u64)> {
    let ts = ctx.t(stray);
    let last_resp = c
        .views
        .iter()
        .flat_map(|v| v.facts.backend_data.iter().copied())
        .filter(|&i| ctx.t(i) < ts)
        .map(|i| ctx.t(i))
        .max();
    let mut segs: Vec<(SeqNumber, u32)> = c
        .views
        .iter()
        .flat_map(|v| v.facts.proxy_data.iter().copied())
        .filter(|&i| last_resp.is_none_or(|t| ctx.t(i) > t))
        .map(|i| (ctx.pkts[i].obs.seq, ctx.pkts[i].obs.payload_len))
        .collect();
    // Sequence space has no least element: order from the earliest seq.
    let base = segs
        .iter()
        .map(|s| s.0)
        .reduce(|a, b| if b < a { b } else { a })?;
    segs.sort_by_key(|s| s.0.since(base));
    segs.dedup_by_key(|s| s.0);
    let seq = ctx.pkts[stray].obs.seq;
    let ordinal = segs.iter().position(|s| s.0 == seq)? + 1;
    let bytes = segs.iter().map(|s| u64::from(s.1)).sum();
    Some((ordinal, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{mac, Kit, To};

    /// The seed: b1 owns the connection, the 2nd data segment of a request
    /// goes to b3, which answers with a stateless RST.
    pub(crate) fn seed() -> Kit {
        let mut k = Kit::new(51392);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 1.0, To::Backend, "A", s, a, 1448);
        k.pkt("proxy", 1.0, To::Backend, "A", s + 1448, a, 1448);
        k.pkt("b3", 1.0001, To::Backend, "A", s + 1448, a, 1448);
        k.both("b1", 1.0002, To::Proxy, "A", a, s + 1448, 0);
        k.pkt("b3", 1.0002, To::Proxy, "R", a, 0, 0);
        let r = k.pkt("proxy", 1.0003, To::Proxy, "R", a, 0, 0);
        r.link.src_mac = Some(mac(3));
        r.ip_id = Some(0);
        k.pkts
            .iter_mut()
            .filter(|p| p.node.as_ref() == "b3" && p.flags.rst())
            .for_each(|p| p.ip_id = Some(0));
        k
    }

    #[test]
    fn the_seed_split_names_owner_stray_and_proofs() {
        let k = seed();
        let h = k.verdict(&k.reset_err(1.001)).expect("fires");
        assert_eq!(h.cause, Cause::FlowSplit);
        assert_eq!(
            (h.owner.as_deref(), h.strays.clone()),
            (Some("b1"), vec!["b3".to_string()])
        );
        for want in [
            "handshake",
            "segment_astray",
            "owner_missed",
            "stateless_rst",
            "log_agrees",
        ] {
            assert!(
                h.proofs
                    .iter()
                    .any(|p| serde_json::to_value(p.kind()).unwrap() == want),
                "{want} missing from {:?}",
                h.proofs
            );
        }
        assert!(h.confidence() >= 0.9, "{}", h.confidence());
        assert_eq!(h.stray_shape, Some((2, 2896)));
    }

    #[test]
    fn never_from_the_proxy_alone() {
        let mut k = seed();
        k.only(&["proxy"]);
        assert!(k.case(&k.reset_err(1.001), check).is_none());
    }

    #[test]
    fn backends_only_still_proves_it() {
        let mut k = seed();
        k.only(&["b1", "b2", "b3"]);
        let h = k.verdict(&k.reset_err(1.001)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::FlowSplit, Some("b1"))
        );
    }
}
