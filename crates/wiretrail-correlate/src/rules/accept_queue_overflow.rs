//! `accept_queue_overflow`: the backend's kernel completed the handshake
//! but its listen (accept) queue was full, so the server never took the
//! connection.
//!
//! **Signature**, in a capture that holds the handshake (the proxy's or the
//! owner's): SYN, SYN-ACK, the proxy's ACK completing it, and then either
//! - the server's SYN-ACK **again**, same sequence number, after that ACK
//!   (Linux drops the ACK when the accept queue is full and keeps the
//!   request in its SYN queue, retransmitting the SYN-ACK), with the
//!   request never acknowledged; or
//! - a stateless RST answering the ACK or the first request segment within
//!   a second of the handshake (`net.ipv4.tcp_abort_on_overflow = 1`).
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all, backends only | the owner's capture shows the ACK arriving and the SYN-ACK repeating (so the ACK was not lost on the way) | the node |
//! | proxy only | the same exchange on the proxy's wire; an ACK lost on the path would look alike, so confidence is lower | unknown |

use super::{Case, Proof, Rule, RuleHit};
use crate::conn::NodeView;
use crate::ctx::{Ctx, Pk};
use crate::model::Cause;
use wiretrail_capture::{Duration, Timestamp};
use wiretrail_logs::{ErrorClass, ProxyError};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::AcceptQueueOverflow,
    explains: |e: &ProxyError| {
        // A RST on accept reaches Go while it is still dialling
        // (`dial tcp …: connect: connection reset by peer`); otherwise the
        // request hangs until a deadline.
        if super::is_dial(e) {
            return e.class == ErrorClass::Reset;
        }
        matches!(
            e.class,
            ErrorClass::Timeout
                | ErrorClass::Canceled
                | ErrorClass::Reset
                | ErrorClass::BrokenPipe
                | ErrorClass::Eof
        )
    },
    check,
    remedy: "The backend accepts connections slower than they arrive: raise its listen backlog (and net.core.somaxconn), add accept capacity or instances, and watch `nstat TcpExtListenOverflows`.",
};

/// (the proxy's ACK completing the handshake, what followed it).
fn overflow(ctx: &Ctx<'_>, v: &NodeView) -> Option<(Pk, Proof)> {
    let f = &v.facts;
    let synack = f.synack?;
    f.syn?;
    let sa_seq = ctx.pkts[synack].obs.seq;
    let ack = v.pkts.iter().copied().find(|&i| {
        let o = &ctx.pkts[i].obs;
        ctx.pkts[i].to_backend()
            && !o.flags.syn()
            && !o.flags.rst()
            && o.flags.ack()
            && o.ack == sa_seq + 1
            && ctx.t(i) > ctx.t(synack)
    })?;
    let t_ack = ctx.t(ack);
    // The SYN-ACK again, after the handshake completed.
    if let Some(again) = v.pkts.iter().copied().find(|&i| {
        let o = &ctx.pkts[i].obs;
        !ctx.pkts[i].to_backend()
            && o.flags.syn()
            && o.flags.ack()
            && o.seq == sa_seq
            && ctx.t(i) > t_ack
    }) {
        // ...and nothing of the request acknowledged before it: the server
        // had no established socket until then (it may accept later, when
        // the queue has room, and answer late).
        let t_again = ctx.t(again);
        let served = v.pkts.iter().any(|&i| {
            let o = &ctx.pkts[i].obs;
            !ctx.pkts[i].to_backend() && o.payload_len > 0 && ctx.t(i) < t_again
        });
        let req_acked = f
            .proxy_data
            .iter()
            .any(|&d| super::acked(ctx, v, super::seg_end(ctx, d), ctx.t(d), t_again).is_some());
        if !served && !req_acked {
            return Some((ack, Proof::SynAckRepeated { ack, synack: again }));
        }
    }
    // A stateless RST right after the handshake, before the server ever
    // acknowledged data: the kernel reset the embryonic connection.
    let &r = f
        .backend_rsts
        .iter()
        .find(|&&r| super::reset_on_accept(ctx, v, r).is_some())?;
    Some((ack, Proof::ResetOnAccept { ack, rst: r }))
}

/// A close this soon after the data it followed was acknowledged had been
/// queued behind it.
const QUEUED_CLOSE: Duration = Duration::from_millis(10);

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let from_owner = parts.owner.and_then(|v| overflow(ctx, v).map(|o| (v, o)));
    let (view, (ack, proof)) = from_owner.or_else(|| {
        let p = parts.proxy?;
        overflow(ctx, p).map(|o| (p, o))
    })?;
    let owner = ctx.is_backend(&view.node).then(|| view.node.to_string());
    let mut hit = RuleHit::new(
        Cause::AcceptQueueOverflow,
        ctx.t(ack),
        format!(
            "accept queue overflow: {} completed the handshake in its kernel but the server never accepted the connection{}",
            owner.as_deref().unwrap_or("the backend"),
            match proof {
                Proof::ResetOnAccept { .. } => " and reset it (tcp_abort_on_overflow)",
                _ => ": its SYN-ACK repeats and the request is never acknowledged",
            }
        ),
    )
    .owner(owner.as_deref())
    .proof(proof.clone());
    // The request that waited: sent again and again before an ACK, if any.
    let f = &view.facts;
    if let Some(&d) = f.proxy_data.first() {
        let until = super::acked(ctx, view, super::seg_end(ctx, d), ctx.t(d), Timestamp::MAX)
            .map_or(Timestamp::MAX, |a| ctx.t(a));
        let sends = super::sends_of(ctx, view, d, until);
        hit = hit.proof(Proof::RequestNeverAcked { seg: d, sends });
    }
    // When the proxy saw the failure: the RST; else Go's own deadline,
    // which shows as the proxy's close once nothing it sent is left
    // unacknowledged, and is any time after the handshake when its close
    // stays queued behind the unanswered request.
    let close = f
        .proxy_fin
        .into_iter()
        .chain(f.proxy_rsts.iter().copied())
        .map(|i| ctx.t(i))
        .filter(|&t| t > ctx.t(ack))
        .min();
    // A close that follows the request's first acknowledgment within
    // milliseconds was waiting behind it: Go gave up any time before.
    let acked_at = f.proxy_data.first().and_then(|&d| {
        super::acked(ctx, view, super::seg_end(ctx, d), ctx.t(d), Timestamp::MAX).map(|a| ctx.t(a))
    });
    hit.at = match (proof, close) {
        (Proof::ResetOnAccept { rst, .. }, _) => (ctx.t(rst), ctx.t(rst)),
        (_, Some(c)) if acked_at.is_none_or(|a| c.saturating_duration_since(a) >= QUEUED_CLOSE) => {
            (c, c)
        }
        (_, Some(c)) => (ctx.t(ack), c),
        _ => (ctx.t(ack), view.last_ref.max(ctx.t(ack))),
    };
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    fn full_queue() -> Kit {
        let mut k = Kit::new(41000);
        let (s, a) = k.handshake("b2", 0.0);
        k.both("b2", 0.01, To::Backend, "PA", s, a, 300);
        // The server never took it: SYN-ACK again, the request retransmitted.
        k.both("b2", 1.0, To::Proxy, "SA", 5000, 1001, 0);
        k.both("b2", 1.0005, To::Backend, "A", s, a, 0);
        k.both("b2", 0.25, To::Backend, "PA", s, a, 300);
        k.both("b2", 3.0, To::Proxy, "SA", 5000, 1001, 0);
        k.both("b2", 5.0, To::Backend, "FA", s + 300, a, 0);
        k
    }

    fn timeout(k: &Kit, s: f64) -> wiretrail_logs::ProxyError {
        k.err(s, "net/http: timeout awaiting response headers")
    }

    #[test]
    fn synack_after_the_handshake_completed() {
        let k = full_queue();
        let h = k.verdict(&timeout(&k, 5.0)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::AcceptQueueOverflow, Some("b2"))
        );
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::SynAckRepeated { .. })));
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::RequestNeverAcked { sends: 2, .. })));
    }

    #[test]
    fn proxy_only_sees_it_too() {
        let mut k = full_queue();
        k.only(&["proxy"]);
        let h = k.verdict(&timeout(&k, 5.0)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.clone()),
            (Cause::AcceptQueueOverflow, None)
        );
    }

    #[test]
    fn abort_on_overflow_reset() {
        let mut k = Kit::new(41000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 0.003, To::Backend, "PA", s, a, 300);
        k.both("b1", 0.0031, To::Proxy, "R", a, 0, 0);
        let h = k.verdict(&k.reset_err(0.004)).expect("fires");
        assert_eq!(h.cause, Cause::AcceptQueueOverflow);
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::ResetOnAccept { .. })));
    }

    #[test]
    fn a_served_connection_is_not_an_overflow() {
        let mut k = Kit::new(41000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 0.01, To::Backend, "PA", s, a, 300);
        k.both("b1", 0.02, To::Proxy, "PA", a, s + 300, 500);
        k.both("b1", 9.0, To::Backend, "PA", s + 300, a + 500, 300);
        k.both("b1", 9.001, To::Proxy, "R", a + 500, 0, 0);
        assert!(k.case(&k.reset_err(9.002), check).is_none());
    }
}
