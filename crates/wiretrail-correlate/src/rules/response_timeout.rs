//! `response_timeout`: the backend received the request and sent no
//! response before the proxy gave up.
//!
//! **Signature**: the request acknowledged in full by the peer, no response
//! byte after it, and the proxy closing the connection (FIN or RST) with
//! the request unanswered, at least a second after the request when the
//! log does not say timeout (`timeout awaiting response headers`). Not for
//! `context canceled` ([`super::client_canceled`]).
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the owner's capture: request acknowledged, no response, the proxy's close | the owner |
//! | proxy only | the same on the proxy's wire | unknown |
//!
//! A request never acknowledged is not this: the backend never got it
//! ([`super::pmtu_blackhole`], [`super::accept_queue_overflow`]).

use super::{Case, Rule, RuleHit};
use crate::model::Cause;
use wiretrail_capture::Duration;
use wiretrail_logs::{ErrorClass, ProxyError};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::ResponseTimeout,
    explains: |e: &ProxyError| e.class == ErrorClass::Timeout && !super::is_dial(e),
    check,
    remedy: "The backend took longer than the proxy's response-header timeout: find the slow handler or the saturated node (its own logs and metrics at that time), or raise Transport.ResponseHeaderTimeout if such latency is expected.",
};

/// Without the log saying timeout, a close this long after the request
/// still reads as one.
const WAIT_MIN: Duration = Duration::from_secs(1);

fn check(case: &Case<'_>) -> Option<RuleHit> {
    if case.class() == ErrorClass::Canceled {
        return None;
    }
    let ctx = case.ctx;
    let (_, p) = super::pending_of(case)?;
    let waited = ctx.t(p.close).saturating_duration_since(ctx.t(p.start));
    if case.class() != ErrorClass::Timeout && waited < WAIT_MIN {
        return None;
    }
    let owner = case.parts.owner.map(|o| o.node.to_string());
    let hit = RuleHit::new(
        Cause::ResponseTimeout,
        ctx.t(p.close),
        format!(
            "response timeout: {} received the request but sent no response before the proxy gave up after {} ms",
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

    fn slow() -> Kit {
        let mut k = Kit::new(48000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 0.01, To::Backend, "PA", s, a, 300);
        k.both("b1", 0.011, To::Proxy, "A", a, s + 300, 0);
        k.both("b1", 1.01, To::Backend, "FA", s + 300, a, 0);
        k
    }

    #[test]
    fn header_timeout() {
        let k = slow();
        let h = k
            .verdict(&k.err(1.01, "net/http: timeout awaiting response headers"))
            .expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::ResponseTimeout, Some("b1"))
        );
    }

    #[test]
    fn proxy_only() {
        let mut k = slow();
        k.only(&["proxy"]);
        let h = k
            .verdict(&k.err(1.01, "net/http: timeout awaiting response headers"))
            .expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::ResponseTimeout, None));
    }

    #[test]
    fn never_acknowledged_is_not_a_response_timeout() {
        let mut k = Kit::new(48000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 0.01, To::Backend, "PA", s, a, 300);
        k.both("b1", 1.01, To::Backend, "FA", s + 300, a, 0);
        let e = k.err(1.01, "net/http: timeout awaiting response headers");
        assert!(k.case(&e, check).is_none());
    }
}
