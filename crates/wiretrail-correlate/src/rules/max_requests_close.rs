//! `max_requests_close`: the backend closes a keep-alive connection after a
//! fixed number of requests (nginx `keepalive_requests`, gunicorn
//! `max_requests`, Go servers with a request budget) without saying so in
//! the last response, and the proxy's next request crosses the close.
//!
//! **Signature**: the owner's FIN at most 100 ms after its last response
//! (a close on a count, not on a timer: the connection never sat idle), the
//! proxy's next request crossing it, usually answered by RST. Supporting:
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

use super::{Case, Proof, Rule, RuleHit};
use crate::conn::NodeView;
use crate::ctx::Ctx;
use crate::model::Cause;
use wiretrail_capture::Nanos;

pub(crate) const RULE: Rule = Rule {
    cause: Cause::MaxRequestsClose,
    explains: |e| super::closed_like(e),
    check,
    remedy: "The backend closes connections after a fixed number of requests without `Connection: close`: make it announce the close (nginx and gunicorn do when configured to), raise its limit, or have the proxy retry requests that failed on a reused connection.",
};

/// A close this soon after a response was decided when the response was.
const AFTER_RESPONSE_MAX_NS: Nanos = 100_000_000;
/// A request sent at most this long before the FIN reached the proxy
/// crossed it in flight.
const CROSS_NS: Nanos = 100_000_000;

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let owner = parts.owner.map(|o| o.node.to_string());
    for v in parts.owner.into_iter().chain(parts.proxy) {
        if let Some(hit) = close_after_response(ctx, v) {
            return Some(hit.owner(owner.as_deref()));
        }
    }
    None
}

fn close_after_response(ctx: &Ctx<'_>, v: &NodeView) -> Option<crate::rules::RuleHit> {
    let fin = v.facts.backend_fin?;
    let tf = ctx.t(fin);
    let cross = if ctx.is_backend(&v.node) { 0 } else { CROSS_NS };
    let (resp, req) = super::crossing(ctx, v, fin, cross)?;
    let req = req?;
    let gap_ns = tf - ctx.t(resp);
    if gap_ns > AFTER_RESPONSE_MAX_NS {
        return None;
    }
    let mut hit = RuleHit::new(Cause::MaxRequestsClose, tf, String::new())
        .proof(Proof::FinAfterResponse { resp, fin, gap_ns })
        .proof(Proof::RequestCrossedFin { req, fin });
    if let Some(&r) = v
        .facts
        .backend_rsts
        .iter()
        .find(|&&r| ctx.t(r) >= ctx.t(req))
    {
        hit = hit.proof(Proof::RstAfterClose { rst: r });
    }
    // Requests served, when the capture holds the connection from its start.
    if v.facts.syn.is_some() {
        let n = super::request_starts(ctx, v)
            .into_iter()
            .filter(|&s| ctx.t(s) < ctx.t(req))
            .count() as u32;
        hit.requests = Some(n);
        hit = hit.proof(Proof::RequestsServed { n });
    }
    hit.summary = format!(
        "max-requests close: the backend closed the connection {:.1} ms after its last response{}, with the proxy's next request already on its way",
        gap_ns as f64 / 1e6,
        hit.requests
            .map(|n| format!(" (request #{n} on it)"))
            .unwrap_or_default()
    );
    hit.idle_ns = Some(gap_ns);
    Some(hit)
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
    fn close_on_a_count() {
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
