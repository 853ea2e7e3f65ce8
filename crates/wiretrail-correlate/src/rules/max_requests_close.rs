//! `max_requests_close`: the backend closes a keep-alive connection after a
//! fixed number of requests (nginx `keepalive_requests`, gunicorn
//! `max_requests`, Go servers with a request budget) without saying so in
//! the last response, and the proxy's next request crosses the close.
//!
//! **Signature**: the owner's close at most 100 ms after its last response
//! (a close on a count, not on a timer: the connection never sat idle),
//! with the proxy's next request crossing it: a FIN the request arrives
//! after (usually answered by RST), or — when the request was already in
//! the socket, unread — the close going out as an abort (RST|ACK) instead
//! of a FIN. Supporting:
//! the number of requests the connection served, counted from its
//! handshake, and the same number on other failing connections of the run
//! (added across errors).
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the owner's capture | the owner |
//! | proxy only | the peer's FIN right after its response, on the proxy's wire | unknown |
//!
//! An idle gap of 200 ms or more before the close is [`super::idle_race`].

use super::{Case, Proof, Rule, RuleHit, AFTER_RESPONSE_MAX};
use crate::conn::NodeView;
use crate::ctx::Ctx;
use crate::ctx::Pk;
use crate::model::Cause;
use crate::rst::{self, RstForm};
use wiretrail_capture::Duration;

pub(crate) const RULE: Rule = Rule {
    cause: Cause::MaxRequestsClose,
    explains: |e| super::closed_like(e),
    check,
    remedy: "The backend closes connections after a fixed number of requests without `Connection: close`: make it announce the close (nginx and gunicorn do when configured to), raise its limit, or have the proxy retry requests that failed on a reused connection.",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    super::first_view(case, |ctx, v| by_fin(ctx, v).or_else(|| by_abort(ctx, v)))
}

/// The owner's FIN right after a response, the next request crossing it.
fn by_fin(ctx: &Ctx<'_>, v: &NodeView) -> Option<RuleHit> {
    let fin = v.facts.backend_fin?;
    let tf = ctx.t(fin);
    let (resp, req) = super::crossing(ctx, v, fin)?;
    let req = req?;
    let gap = tf.saturating_duration_since(ctx.t(resp));
    if gap > AFTER_RESPONSE_MAX {
        return None;
    }
    let mut hit = RuleHit::new(Cause::MaxRequestsClose, tf, String::new())
        .proof(Proof::FinAfterResponse { resp, fin, gap })
        .proof(Proof::RequestCrossedFin { req, fin });
    if let Some(r) = super::rst_from(ctx, v, req) {
        hit = hit.proof(Proof::RstAfterClose { rst: r });
    }
    finish(ctx, v, &mut hit, fin, gap);
    Some(hit)
}

/// The owner's close crossed a request already whole in its socket: an
/// abort (RST|ACK), no FIN, right after its last response. An application
/// aborting the request it just read looks the same on one connection, so
/// this needs the count to be the node's request budget (more connections
/// closed after exactly as many requests).
fn by_abort(ctx: &Ctx<'_>, v: &NodeView) -> Option<RuleHit> {
    let f = &v.facts;
    if f.backend_fin.is_some() {
        return None;
    }
    let (r, n) = super::close_after_response(ctx, v)?;
    if rst::form(ctx, v, r) != RstForm::Abort || !super::request_complete_at(ctx, v, r) {
        return None;
    }
    super::request_budget(ctx, &v.node, n)?;
    let tr = ctx.t(r);
    let resp = f
        .backend_data
        .iter()
        .copied()
        .filter(|&d| ctx.t(d) < tr)
        .max_by_key(|&d| ctx.t(d))?;
    let req = f
        .proxy_data
        .iter()
        .copied()
        .find(|&d| ctx.t(d) > ctx.t(resp) && ctx.t(d) <= tr)?;
    let gap = tr.saturating_duration_since(ctx.t(resp));
    let mut hit = RuleHit::new(Cause::MaxRequestsClose, tr, String::new())
        .proof(Proof::FinAfterResponse { resp, fin: r, gap })
        .proof(Proof::RequestCrossedFin { req, fin: r });
    finish(ctx, v, &mut hit, r, gap);
    Some(hit)
}

/// Requests served, the node's budget, the summary.
fn finish(ctx: &Ctx<'_>, v: &NodeView, hit: &mut RuleHit, close: Pk, gap: Duration) {
    if v.facts.syn.is_some() {
        let n = super::served_before(ctx, v, ctx.t(close));
        hit.requests = Some(n);
        hit.proofs.push(Proof::RequestsServed { n });
        if let Some(conns) = super::request_budget(ctx, &v.node, n) {
            hit.proofs.push(Proof::SameRequestCount { n, conns });
        }
    }
    hit.summary = format!(
        "max-requests close: the backend closed the connection {:.1} ms after its last response{}, with the proxy's next request already on its way",
        gap.as_nanos() as f64 / 1e6,
        hit.requests
            .map(|n| format!(" (after {n} requests)"))
            .unwrap_or_default()
    );
    hit.idle = Some(gap);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    /// Three requests, the third response followed at once by a FIN, the
    /// fourth request crossing it.
    fn budget() -> Kit {
        let mut k = Kit::new(45000);
        let (mut s, mut a) = k.handshake("b1", 0.0);
        for n in 0..3 {
            let t = 0.01 + f64::from(n) * 0.1;
            k.both("b1", t, To::Backend, "PA", s, a, 200);
            k.both("b1", t + 0.005, To::Proxy, "PA", a, s + 200, 800);
            s += 200;
            a += 800;
        }
        // The FIN leaves b1 0.1 ms after the response; Go writes the next
        // request as soon as it has read the response.
        k.both("b1", 0.2151, To::Proxy, "FA", a, s, 0);
        k.pkt("proxy", 0.21515, To::Backend, "PA", s, a, 200);
        k.pkt("b1", 0.21525, To::Backend, "PA", s, a, 200);
        k.both("b1", 0.2153, To::Proxy, "R", a + 1, 0, 0);
        k
    }

    #[test]
    fn close_after_a_response() {
        let k = budget();
        let e = k.err(0.216, "EOF");
        let h = k.verdict(&e).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref(), h.requests),
            (Cause::MaxRequestsClose, Some("b1"), Some(3))
        );
        assert!(
            !h.proofs
                .iter()
                .any(|p| matches!(p, Proof::Contested { .. })),
            "{:?}",
            h.proofs
        );
    }

    #[test]
    fn proxy_only() {
        let mut k = budget();
        k.only(&["proxy"]);
        let h = k.verdict(&k.err(0.216, "EOF")).expect("fires");
        assert_eq!(
            (h.cause, h.owner, h.requests),
            (Cause::MaxRequestsClose, None, Some(3))
        );
    }
}
