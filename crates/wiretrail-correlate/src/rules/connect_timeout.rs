//! `connect_timeout`: the proxy's SYNs were never answered.
//!
//! **Signature**: one or more SYNs of the proxy (the first and its
//! retransmissions, 1 s, 2 s, 4 s … apart on Linux) and no SYN-ACK and no
//! RST in the capture that holds them, which covers the time an answer
//! would take.
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the SYNs reached this backend, which never answered (SYNs dropped at the node, a dead listener, a full SYN queue) | the node whose capture holds the SYNs |
//! | proxy only | the SYNs left the proxy and nothing came back | unknown (null) |
//!
//! With the proxy's capture and every backend covered, SYNs that no backend
//! captured never reached one (dropped on the way): the owner stays null.

use super::{Case, Proof, Rule, RuleHit};
use crate::ctx::{Pk, Sight};
use crate::model::Cause;
use wiretrail_capture::Duration;
use wiretrail_logs::{ErrorClass, ProxyError};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::ConnectTimeout,
    explains: |e: &ProxyError| e.class == ErrorClass::Timeout && super::is_dial(e),
    check,
    remedy: "SYNs to the backend went unanswered: check the node's firewall, SYN backlog (`netstat -s | grep -i listen`) and health; lower the proxy's dial timeout only after fixing it, or it will just fail faster.",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let unanswered = |v: &crate::conn::NodeView| -> Option<Vec<Pk>> {
        let f = &v.facts;
        if f.syn.is_none() || f.synack.is_some() || !f.backend_rsts.is_empty() || f.backend_stateful
        {
            return None;
        }
        let syns: Vec<Pk> = v
            .pkts
            .iter()
            .copied()
            .filter(|&i| {
                let o = &ctx.pkts[i].obs;
                ctx.pkts[i].to_backend() && o.flags.syn() && !o.flags.ack()
            })
            .collect();
        (!syns.is_empty()).then_some(syns)
    };
    // The node whose capture holds the SYNs, with the most of them.
    let backend = parts
        .backends(ctx)
        .into_iter()
        .filter_map(|v| unanswered(v).map(|s| (v, s)))
        .max_by_key(|(_, s)| s.len());
    let (view, syns) = match backend {
        Some(b) => b,
        None => (parts.proxy?, unanswered(parts.proxy?)?),
    };
    let first = ctx.t(syns[0]);
    let last = ctx.t(*syns.last().expect("non-empty"));
    // An answer takes at most about one retransmission interval: the capture
    // must cover that much past the last SYN for silence to mean anything.
    let gap = if syns.len() >= 2 {
        last.saturating_duration_since(ctx.t(syns[syns.len() - 2]))
    } else {
        Duration::from_secs(1)
    };
    if !matches!(ctx.sight(&view.node, first, last + gap), Sight::Covered) {
        return None;
    }
    let owner = ctx.is_backend(&view.node).then(|| view.node.to_string());
    let summary = match &owner {
        Some(n) => format!(
            "connect timeout: the proxy's {} SYN(s) reached {n}, which never answered",
            syns.len()
        ),
        None => format!(
            "connect timeout: the proxy sent {} SYN(s) and nothing answered (which backend they reached is not in the captures)",
            syns.len()
        ),
    };
    // The proxy gave up after its last SYN, before the next retransmission
    // would have gone out (Linux doubles the interval each time).
    let mut hit = RuleHit::new(Cause::ConnectTimeout, last, summary)
        .owner(owner.as_deref())
        .proof(Proof::SynsUnanswered { syns });
    hit.at = (last, last + gap * 2 + Duration::from_secs(1));
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    fn dropped() -> Kit {
        let mut k = Kit::new(40000);
        for s in [0.0, 1.0, 3.0, 7.0] {
            k.both("b2", s, To::Backend, "S", 1000, 0, 0);
        }
        k
    }

    fn line(k: &Kit) -> String {
        format!("dial tcp {}: i/o timeout", k.vip)
    }

    #[test]
    fn the_owner_is_the_node_holding_the_syns() {
        let k = dropped();
        let h = k.verdict(&k.err(10.0, &line(&k))).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::ConnectTimeout, Some("b2"))
        );
        assert!(matches!(&h.proofs[0], Proof::SynsUnanswered { syns } if syns.len() == 4));
        assert!(
            h.at.0 <= crate::rules::testkit::at(10.0) && h.at.1 >= crate::rules::testkit::at(10.0)
        );
    }

    #[test]
    fn proxy_only_has_no_owner() {
        let mut k = dropped();
        k.only(&["proxy"]);
        let h = k.verdict(&k.err(10.0, &line(&k))).expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::ConnectTimeout, None));
    }

    #[test]
    fn silence_the_capture_did_not_cover_proves_nothing() {
        let mut k = dropped();
        k.only(&["proxy"]);
        k.nodes[0].coverage = vec![(
            crate::rules::testkit::at(-1.0),
            crate::rules::testkit::at(7.5),
        )];
        assert!(k.case(&k.err(10.0, &line(&k)), check).is_none());
    }
}
