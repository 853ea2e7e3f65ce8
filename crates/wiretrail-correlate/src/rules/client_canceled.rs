//! `client_canceled`: the client went away while the backend was still
//! working on the request; the proxy closed the connection to the backend.
//!
//! **Signature**: the request acknowledged in full by the peer, no response
//! byte after it, and the proxy closing the connection (FIN or RST) with
//! the request unanswered; the log line is `context canceled` (only the
//! log can say the client left: on the wire it looks like a timeout).
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the owner's capture: request acknowledged, no response, the proxy's close | the owner |
//! | proxy only | the same on the proxy's wire | unknown |

use super::{Case, Rule, RuleHit};
use crate::model::Cause;
use wiretrail_logs::{ErrorClass, ProxyError};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::ClientCanceled,
    explains: |e: &ProxyError| e.class == ErrorClass::Canceled,
    check,
    remedy: "The client gave up before the backend answered: compare the client's timeout with the backend's response time for these requests (slow handlers, queues), and consider answering 499/504 instead of 502.",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    if case.class() != ErrorClass::Canceled {
        return None;
    }
    let ctx = case.ctx;
    let (_, p) = super::pending_of(case)?;
    let waited = ctx.t(p.close).saturating_duration_since(ctx.t(p.start));
    let owner = case.parts.owner.map(|o| o.node.to_string());
    let hit = RuleHit::new(
        Cause::ClientCanceled,
        ctx.t(p.close),
        format!(
            "client canceled: the client went away while {} was still working on the request; the proxy closed after {} ms",
            owner.as_deref().unwrap_or("the backend"),
            waited.as_millis()
        ),
    )
    .owner(owner.as_deref());
    Some(p.proofs(hit, waited))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};
    use crate::rules::Proof;

    pub(crate) fn slow() -> Kit {
        let mut k = Kit::new(48000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 0.01, To::Backend, "PA", s, a, 300);
        k.both("b1", 0.011, To::Proxy, "A", a, s + 300, 0);
        k.both("b1", 1.01, To::Backend, "FA", s + 300, a, 0);
        k.both("b1", 2.01, To::Proxy, "PA", a, s + 301, 1000);
        k
    }

    #[test]
    fn request_acknowledged_never_answered() {
        let k = slow();
        let h = k.verdict(&k.err(1.01, "context canceled")).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::ClientCanceled, Some("b1"))
        );
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::LateResponse { .. })));
        assert!(h.confidence() >= 0.8, "{}", h.confidence());
    }

    #[test]
    fn only_the_log_says_canceled() {
        let k = slow();
        let e = k.err(1.01, "net/http: timeout awaiting response headers");
        assert!(k.case(&e, check).is_none());
    }
}
