//! `refused`: nothing listens on the backend's port.
//!
//! **Signature**: the proxy's SYN answered by RST/ACK acknowledging SYN+1
//! ([`crate::rst::RstForm::Refusal`]).
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the refusing node's capture holds SYN and RST/ACK | the refusing node |
//! | proxy only | SYN and RST/ACK on the proxy's wire | unknown (null) |
//!
//! A middlebox that rejects SYNs with RST looks the same on the proxy's
//! wire; Go logs both as `connect: connection refused`.

use super::{Case, Proof, Rule, RuleHit};
use crate::model::Cause;
use crate::rst::{self, RstForm};
use wiretrail_logs::{ErrorClass, ProxyError};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::Refused,
    explains: |e: &ProxyError| e.class == ErrorClass::Refused,
    check,
    remedy: "The backend's port was closed: check that the service listens on every node behind the VIP (health checks should take a node out before its listener closes).",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    // The refusing node's own capture first, then the proxy's wire.
    let views = parts
        .backends(ctx)
        .into_iter()
        .chain(parts.proxy)
        .filter(|v| v.facts.syn.is_some() && v.facts.synack.is_none());
    for v in views {
        for &r in &v.facts.backend_rsts {
            let RstForm::Refusal { syn } = rst::form(ctx, v, r) else {
                continue;
            };
            let node = if ctx.is_backend(&v.node) {
                Some(v.node.to_string())
            } else {
                match rst::sender(ctx, &parts.backends(ctx), r) {
                    rst::RstSender::Node(w, _) => Some(w.node.to_string()),
                    rst::RstSender::NotCaptured { .. } => None,
                }
            };
            let who = node
                .as_deref()
                .unwrap_or("the backend (its capture is not here)");
            return Some(
                RuleHit::new(
                    Cause::Refused,
                    ctx.t(r),
                    format!("refused: {who} answered the proxy's SYN with RST/ACK: nothing listened on the port"),
                )
                .owner(node.as_deref())
                .proof(Proof::Refusal { syn, rst: r }),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    fn refusal() -> Kit {
        let mut k = Kit::new(40000);
        k.both("b3", 0.0, To::Backend, "S", 1000, 0, 0);
        k.both("b3", 0.0002, To::Proxy, "RA", 0, 1001, 0);
        k
    }

    fn line(k: &Kit) -> String {
        format!("dial tcp {}: connect: connection refused", k.vip)
    }

    #[test]
    fn names_the_refusing_node_from_its_capture() {
        let k = refusal();
        let h = k.case(&k.err(0.001, &line(&k)), check).expect("fires");
        assert_eq!(h.owner.as_deref(), Some("b3"));
        assert!(matches!(h.proofs[..], [Proof::Refusal { .. }]));
    }

    #[test]
    fn proxy_only_proves_the_refusal_not_the_node() {
        let mut k = refusal();
        k.only(&["proxy"]);
        let h = k.verdict(&k.err(0.001, &line(&k))).expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::Refused, None));
        assert!(h.confidence() >= 0.85, "{}", h.confidence());
    }

    #[test]
    fn a_rst_to_data_is_not_a_refusal() {
        let mut k = Kit::new(40000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 1.0, To::Backend, "PA", s, a, 100);
        k.both("b1", 1.001, To::Proxy, "RA", a, s + 100, 0);
        assert!(k.case(&k.reset_err(1.002), check).is_none());
    }
}
