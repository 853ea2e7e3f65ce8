//! `backend_reset`: the owner, with the socket alive, aborted the
//! connection mid-request (an application reset: `SO_LINGER 0` and close,
//! a crash of the worker but not of the kernel, a request too large).
//!
//! **Signature**: a RST|ACK in the owner's own sequence space (not the
//! stateless form) after the owner acknowledged request data of the
//! current request, not after its own FIN.
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the abort is in the owner's capture | the owner |
//! | proxy only | an abort-form RST arriving with the owner's own MAC and TTL | unknown |
//!
//! A RST without ACK flag whose seq is the ACK of the segment it answers is
//! no abort: its sender had no socket ([`super::backend_state_lost`],
//! [`super::stray_rst`], [`super::flow_split`]).

use super::{Case, Proof, Rule, RuleHit, IDLE_MIN};
use crate::conn::NodeView;
use crate::ctx::{Ctx, Fingerprint, Pk};
use crate::model::Cause;
use crate::rst::{self, RstForm};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::BackendReset,
    explains: |e| super::closed_like(e),
    check,
    remedy: "The backend application reset a live connection mid-request: look in its logs at that time (request size limits, worker crashes, SO_LINGER 0 closes, panics in handlers).",
};

/// The abort, the request segment it cut, and what proves the owner had
/// received that request: a separate ACK, or the abort's own ACK field
/// (`rcv_nxt`) covering it when no idle gap came before the request (after
/// one, an unread request and a RST is an idle close crossing it).
fn abort(ctx: &Ctx<'_>, v: &NodeView) -> Option<(Pk, Pk, Pk)> {
    let f = &v.facts;
    for &r in &f.backend_rsts {
        if rst::form(ctx, v, r) != RstForm::Abort {
            continue;
        }
        let tr = ctx.t(r);
        if f.backend_fin.is_some_and(|fin| ctx.t(fin) <= tr) {
            continue;
        }
        // The request being sent when it came: data after the last response.
        let last_resp = f
            .backend_data
            .iter()
            .map(|&i| ctx.t(i))
            .filter(|&t| t < tr)
            .max();
        let Some(&first) = f
            .proxy_data
            .iter()
            .find(|&&d| ctx.t(d) <= tr && last_resp.is_none_or(|t| ctx.t(d) > t))
        else {
            continue;
        };
        // A close right after the last response, with the whole next
        // request in the socket, after exactly the node's request budget:
        // the close crossed the request (`max_requests_close`).
        let on_budget = super::close_after_response(ctx, v)
            .is_some_and(|(c, n)| c == r && super::request_budget(ctx, &v.node, n).is_some());
        if on_budget && super::request_complete_at(ctx, v, r) {
            continue;
        }
        let end = super::seg_end(ctx, first);
        if let Some(ack) = super::acked(ctx, v, end, ctx.t(first), tr) {
            return Some((r, first, ack));
        }
        // Only the abort's own ACK field says the request arrived: that is
        // an abort of a request in flight unless the close was an idle
        // timer's (idle before the request: an idle race).
        let idle = super::last_packet_before(ctx, v, ctx.t(first))
            .is_some_and(|p| ctx.t(first).saturating_duration_since(ctx.t(p)) >= IDLE_MIN);
        if !idle && end <= ctx.pkts[r].obs.ack {
            return Some((r, first, r));
        }
    }
    None
}

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let (view, (r, req, ack), via_proxy) = match parts.owner {
        Some(o) => (o, abort(ctx, o)?, false),
        None => {
            let pv = parts.proxy?;
            (pv, abort(ctx, pv)?, true)
        }
    };
    let mut hit = RuleHit::new(
        Cause::BackendReset,
        ctx.t(r),
        format!(
            "backend reset: {}, which owned the connection, reset it mid-request",
            parts.owner.map_or("the backend", |o| o.node.as_ref())
        ),
    )
    .owner(parts.owner.map(|o| o.node.as_ref()))
    .proof(Proof::RequestAcked { req, ack })
    .proof(Proof::AbortRst { rst: r });
    if via_proxy {
        // The proxy's wire: the abort must come from the peer's own NIC.
        let (f, peer) = parts.peer_fingerprint(ctx, ctx.t(r))?;
        if Fingerprint::of(&ctx.pkts[r]) != f {
            return None;
        }
        hit = hit.proof(Proof::SenderIsPeer { rst: r, peer });
    } else {
        hit = hit.proof(Proof::OwnerSent {
            node: view.node.to_string(),
            rst: r,
        });
        if let Some(pv) = parts.proxy {
            if let Some(&j) = pv.pkts.iter().find(|&&j| rst::same_packet(ctx, r, j)) {
                hit.at = (ctx.t(j), ctx.t(j));
            }
        }
    }
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    fn aborted() -> Kit {
        let mut k = Kit::new(46000);
        let (s, a) = k.handshake("b3", 0.0);
        k.both("b3", 0.01, To::Backend, "A", s, a, 1448);
        k.both("b3", 0.0102, To::Proxy, "A", a, s + 1448, 0);
        k.both("b3", 0.011, To::Backend, "A", s + 1448, a, 1448);
        k.both("b3", 0.012, To::Proxy, "RA", a, s + 2896, 0);
        k
    }

    #[test]
    fn abort_mid_request() {
        let k = aborted();
        let h = k.verdict(&k.reset_err(0.013)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::BackendReset, Some("b3"))
        );
    }

    #[test]
    fn proxy_only_when_the_abort_is_the_peers() {
        let mut k = aborted();
        k.only(&["proxy"]);
        let h = k.verdict(&k.reset_err(0.013)).expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::BackendReset, None));
    }

    #[test]
    fn an_unread_request_after_idle_is_no_mid_request_abort() {
        let mut k = Kit::new(46000);
        let (s, a) = k.handshake("b3", 0.0);
        k.both("b3", 2.0, To::Backend, "PA", s, a, 300);
        k.both("b3", 2.0001, To::Proxy, "RA", a, s + 300, 0);
        assert!(k.case(&k.reset_err(2.001), check).is_none());
    }
}
