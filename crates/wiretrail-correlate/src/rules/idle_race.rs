//! `idle_race`: the backend closed an idle keep-alive connection just as
//! the proxy reused it.
//!
//! **Signature**, in the owner's or the proxy's capture:
//! - the owner's FIN after the connection sat idle at least 200 ms with
//!   every request answered, and the proxy's next request crossing it (sent
//!   after the FIN reached that capture, or at most 100 ms before on the
//!   proxy's wire, where they cross in flight), usually answered by RST; or
//! - no FIN: after at least 200 ms idle the proxy's request is never
//!   acknowledged and the owner aborts (RST|ACK): its close crossed the
//!   request, and with the request unread in the socket Linux sends RST
//!   instead of FIN.
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the owner's capture: idle, FIN, late request, RST | the owner |
//! | proxy only | the peer's FIN and RST on the proxy's wire | unknown |
//!
//! A close within 100 ms of a response is not an idle timeout: that is
//! [`super::max_requests_close`].

use super::{Case, Proof, Rule, RuleHit, IDLE_MIN};
use crate::conn::NodeView;
use crate::ctx::{Ctx, Pk};
use crate::model::Cause;
use crate::rst::{self, RstForm};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::IdleRace,
    explains: |e| super::closed_like(e),
    check,
    remedy: "Keep the proxy's idle timeout (Go: Transport.IdleConnTimeout) below the backend's keep-alive idle timeout, so the proxy always closes first.",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    super::first_view(case, |ctx, v| {
        by_fin(ctx, v).or_else(|| by_unread_request(ctx, v))
    })
}

fn by_fin(ctx: &Ctx<'_>, v: &NodeView) -> Option<RuleHit> {
    let fin = v.facts.backend_fin?;
    let tf = ctx.t(fin);
    let (last, req) = super::crossing(ctx, v, fin)?;
    let idle = tf.saturating_duration_since(ctx.t(last));
    if idle < IDLE_MIN {
        return None;
    }
    let mut hit = RuleHit::new(
        Cause::IdleRace,
        tf,
        format!(
            "idle race: the backend closed the keep-alive connection after {} ms idle just as the proxy reused it; keep the proxy's IdleConnTimeout below the backend's idle timeout",
            idle.as_millis()
        ),
    )
    .proof(Proof::FinAfterIdle { fin, last, idle });
    // Without a crossing request the close alone is the story (a bare EOF
    // logged when the proxy picked the connection as it closed).
    if let Some(req) = req {
        hit = hit.proof(Proof::RequestCrossedFin { req, fin });
        if let Some(r) = super::rst_from(ctx, v, req) {
            hit = hit.proof(Proof::RstAfterClose { rst: r });
        }
    }
    hit.idle = Some(idle);
    Some(hit)
}

/// The owner closed with the request unread: RST|ACK, no FIN.
fn by_unread_request(ctx: &Ctx<'_>, v: &NodeView) -> Option<RuleHit> {
    let f = &v.facts;
    if f.backend_fin.is_some() {
        return None;
    }
    let &r = f.backend_rsts.first()?;
    if rst::form(ctx, v, r) != RstForm::Abort {
        return None;
    }
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
    let acked = v.pkts.iter().any(|&i: &Pk| {
        let p = &ctx.pkts[i];
        !p.to_backend()
            && !p.obs.flags.rst()
            && p.obs.flags.ack()
            && ctx.t(i) >= ctx.t(req)
            && ctx.t(i) < tr
            && p.obs.ack > req_seq
    });
    if acked {
        return None;
    }
    let prev = super::last_packet_before(ctx, v, ctx.t(req))?;
    let idle = ctx.t(req).saturating_duration_since(ctx.t(prev));
    if idle < IDLE_MIN {
        return None;
    }
    let mut hit = RuleHit::new(
        Cause::IdleRace,
        tr,
        format!(
            "idle race: the backend closed the keep-alive connection after {} ms idle just as the proxy's next request arrived; the unread request turned its FIN into a RST. Keep the proxy's IdleConnTimeout below the backend's idle timeout",
            idle.as_millis()
        ),
    )
    .proof(Proof::UnreadRequestRst { req, rst: r, idle })
    .proof(Proof::AbortRst { rst: r });
    hit.idle = Some(idle);
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    fn race() -> Kit {
        let mut k = Kit::new(44000);
        let (s, a) = k.handshake("b3", 0.0);
        k.both("b3", 0.01, To::Backend, "PA", s, a, 200);
        k.both("b3", 0.02, To::Proxy, "PA", a, s + 200, 800);
        k.both("b3", 0.03, To::Backend, "A", s + 200, a + 800, 0);
        k.both("b3", 1.02, To::Proxy, "FA", a + 800, s + 200, 0);
        k.both("b3", 1.0201, To::Backend, "PA", s + 200, a + 800, 300);
        k.both("b3", 1.0202, To::Proxy, "R", a + 801, 0, 0);
        k
    }

    fn pipe(k: &Kit) -> wiretrail_logs::ProxyError {
        k.err(
            1.021,
            &format!("write tcp {}->{}: write: broken pipe", k.proxy, k.vip),
        )
    }

    #[test]
    fn fin_after_idle_then_late_request() {
        let k = race();
        let h = k.verdict(&pipe(&k)).expect("fires");
        assert_eq!((h.cause, h.owner.as_deref()), (Cause::IdleRace, Some("b3")));
        assert_eq!(h.idle.map(|d| d.as_millis()), Some(1000));
        assert!(h.confidence() >= 0.85, "{} {:?}", h.confidence(), h.proofs);
    }

    #[test]
    fn proxy_only_sees_the_peers_fin() {
        let mut k = race();
        k.only(&["proxy"]);
        let h = k.verdict(&pipe(&k)).expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::IdleRace, None));
    }

    #[test]
    fn a_fin_right_after_a_response_is_not_an_idle_timeout() {
        let mut k = Kit::new(44000);
        let (s, a) = k.handshake("b3", 0.0);
        k.both("b3", 0.01, To::Backend, "PA", s, a, 200);
        k.both("b3", 0.02, To::Proxy, "PA", a, s + 200, 800);
        k.both("b3", 0.0201, To::Proxy, "FA", a + 800, s + 200, 0);
        k.both("b3", 0.0202, To::Backend, "PA", s + 200, a + 800, 300);
        assert!(k.case(&pipe(&k), check).is_none());
    }
}
