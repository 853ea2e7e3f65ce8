//! `backend_state_lost`: the owner lost its socket without telling the
//! proxy (host crash or reboot, a process killed with its FIN/RST
//! suppressed, a NAT in front of it losing state) and its kernel answers
//! the proxy's next segment as it answers any unknown segment.
//!
//! **Signature**: the owner had the connection (it saw the handshake, or
//! answered with state, and served data on it) and later answers a proxy
//! segment with a bare RST in the stateless form (seq = the segment's ACK,
//! no ACK flag; typically IP ID 0), often after retransmissions; no other
//! node took part. Many connections to the same node failing within a short
//! time (a finding across errors) makes it stronger.
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the stateless RST is in the owner's own capture | the owner |
//! | proxy only | the stateless RST arrives with the owner's MAC and TTL, on a segment where MACs name hosts (backends share the proxy's L2 segment): the owner's NIC sent it | unknown (the proxy's capture names no node) |
//!
//! Not [`super::flow_split`] (no other backend involved), not
//! [`super::backend_reset`] (an application reset of a live socket carries
//! the ACK flag and the socket's own sequence number), not
//! [`super::accept_queue_overflow`] (the connection had served data).

use super::{Case, Proof, Rule, RuleHit};
use crate::conn::NodeView;
use crate::ctx::{Ctx, Pk};
use crate::model::Cause;
use crate::rst;
use wiretrail_capture::Timestamp;

pub(crate) const RULE: Rule = Rule {
    cause: Cause::BackendStateLost,
    explains: |e| super::closed_like(e),
    check,
    remedy: "The backend forgot live connections (crash, reboot, killed process, a NAT in front of it): find why the node restarted; let the proxy drop pooled connections to a node that went away (health checks, shorter IdleConnTimeout) and retry idempotent requests.",
};

/// The owner served data on the connection before `t`: it had the socket.
fn served_before(ctx: &Ctx<'_>, v: &NodeView, t: Timestamp) -> bool {
    v.facts.backend_data.iter().any(|&d| ctx.t(d) < t)
}

/// The answered segment, and how often the proxy had sent it.
fn answered(ctx: &Ctx<'_>, v: &NodeView, rst: Pk) -> Option<(Pk, u32)> {
    if super::after_peer_fin(ctx, v, rst) {
        return None;
    }
    let form = rst::form(ctx, v, rst);
    if !form.is_stateless() {
        return None;
    }
    let a = form.answers()?;
    Some((a, super::sends_of(ctx, v, a, ctx.t(rst))))
}

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    if !parts.strays(ctx).is_empty() {
        return None;
    }
    // The owner's own capture holds the RST.
    if let Some(o) = parts.owner {
        for &r in &o.facts.backend_rsts {
            let Some((a, sends)) = answered(ctx, o, r) else {
                continue;
            };
            if !served_before(ctx, o, ctx.t(a)) {
                continue;
            }
            let mut hit = hit(ctx, Some(&o.node), r, a, sends).proof(Proof::OwnerSent {
                node: o.node.to_string(),
                rst: r,
            });
            match (o.facts.syn, o.facts.synack) {
                (Some(syn), Some(synack)) => {
                    hit = hit.proof(Proof::Handshake {
                        node: o.node.to_string(),
                        syn,
                        synack,
                    })
                }
                _ => {
                    if let Some(&d) = o.facts.backend_data.first() {
                        hit = hit.proof(Proof::AnsweredWithState {
                            node: o.node.to_string(),
                            pkt: d,
                        });
                    }
                }
            }
            if let Some(pv) = parts.proxy {
                if let Some(&j) = pv.pkts.iter().find(|&&j| rst::same_packet(ctx, r, j)) {
                    hit.at = (ctx.t(j), ctx.t(j));
                }
            }
            return Some(hit);
        }
        return None;
    }
    // The proxy's wire alone: the RST carries the owner's MAC and TTL, and
    // MACs name hosts here.
    if !parts.backends(ctx).is_empty() {
        return None;
    }
    let pv = parts.proxy?;
    for &r in &pv.facts.backend_rsts {
        let Some((a, sends)) = answered(ctx, pv, r) else {
            continue;
        };
        if !served_before(ctx, pv, ctx.t(a)) {
            continue;
        }
        let Some((f, peer)) = parts.peer_fingerprint(ctx, ctx.t(a)) else {
            continue;
        };
        let rst_pkt = &ctx.pkts[r];
        if crate::ctx::Fingerprint::of(rst_pkt) != f
            || f.mac.is_none()
            || !ctx.mac_names_host(rst_pkt.obs.src.ip())
        {
            continue;
        }
        return Some(hit(ctx, None, r, a, sends).proof(Proof::SenderIsPeer { rst: r, peer }));
    }
    None
}

fn hit(ctx: &Ctx<'_>, owner: Option<&str>, r: Pk, a: Pk, sends: u32) -> RuleHit {
    let who = owner.unwrap_or("the owning backend");
    let mut h = RuleHit::new(
        Cause::BackendStateLost,
        ctx.t(r),
        format!(
            "backend state lost: {who} had this connection, then answered the proxy's segment with a stateless RST (seq = the segment's ACK, no ACK flag{}): it had lost the socket without a FIN or RST (crash, reboot, killed process)",
            match ctx.pkts[r].obs.ip_id {
                Some(0) => ", IP ID 0",
                _ => "",
            }
        ),
    )
    .owner(owner)
    .proof(Proof::StatelessRst { rst: r, answers: a });
    if sends > 1 {
        h = h.proof(Proof::Retransmitted {
            seg: a,
            times: sends,
        });
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    /// b2 served a request, crashed (nothing left it), came back; the
    /// proxy's next request is retransmitted, then answered statelessly.
    fn crash() -> Kit {
        let mut k = Kit::new(43000);
        let (s, a) = k.handshake("b2", 0.0);
        k.both("b2", 0.01, To::Backend, "PA", s, a, 200);
        k.both("b2", 0.02, To::Proxy, "PA", a, s + 200, 800);
        k.both("b2", 0.03, To::Backend, "A", s + 200, a + 800, 0);
        k.both("b2", 5.0, To::Backend, "PA", s + 200, a + 800, 200);
        k.both("b2", 5.2, To::Backend, "PA", s + 200, a + 800, 200);
        k.both("b2", 5.6, To::Proxy, "R", a + 800, 0, 0);
        k.pkts
            .iter_mut()
            .filter(|p| p.flags.rst())
            .for_each(|p| p.ip_id = Some(0));
        k
    }

    #[test]
    fn stateless_rst_from_the_owner() {
        let k = crash();
        let h = k.verdict(&k.reset_err(5.601)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::BackendStateLost, Some("b2"))
        );
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::Retransmitted { times: 2, .. })));
        assert!(
            !h.proofs
                .iter()
                .any(|p| matches!(p, Proof::Contested { .. })),
            "{:?}",
            h.proofs
        );
    }

    #[test]
    fn proxy_only_needs_macs_that_name_hosts() {
        let mut k = crash();
        k.only(&["proxy"]);
        // One MAC behind the VIP: it names no host, so the RST's sender is
        // not proven to be the owner.
        assert!(k.case(&k.reset_err(5.601), check).is_none());
        // Another connection from b1's MAC: now MACs name hosts.
        let mut k = crash();
        let mut other = Kit::new(43001);
        other.handshake("b1", 0.0);
        k.pkts.extend(
            other
                .pkts
                .into_iter()
                .filter(|p| p.node.as_ref() == "proxy")
                .map(|mut p| {
                    p.frame += 1000;
                    p
                }),
        );
        k.only(&["proxy"]);
        let h = k.case(&k.reset_err(5.601), check).expect("fires");
        assert_eq!(h.owner, None);
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::SenderIsPeer { .. })));
    }

    #[test]
    fn an_application_abort_is_not_state_loss() {
        let mut k = Kit::new(43000);
        let (s, a) = k.handshake("b2", 0.0);
        k.both("b2", 0.01, To::Backend, "PA", s, a, 200);
        k.both("b2", 0.02, To::Proxy, "PA", a, s + 200, 800);
        k.both("b2", 1.0, To::Backend, "PA", s + 200, a + 800, 1448);
        k.both("b2", 1.01, To::Proxy, "RA", a + 800, s + 1648, 0);
        assert!(k.case(&k.reset_err(1.02), check).is_none());
    }
}
