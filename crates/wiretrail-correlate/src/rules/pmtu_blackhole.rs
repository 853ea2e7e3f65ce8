//! `pmtu_blackhole`: full-size segments never reach the backend while
//! smaller packets do, and no ICMP "fragmentation needed" tells the sender
//! to shrink them (filtered ICMP, a tunnel or a link with a smaller MTU).
//!
//! **Signature**: the proxy sends a full-size segment (the handshake's MSS)
//! again and again at one sequence number, never acknowledged, while
//! smaller packets of the same connection got through; the owner's capture
//! (where present) covers the time and holds none of the full-size
//! segments. The Go line is usually port-less (`context canceled`,
//! `timeout awaiting response headers`): it is joined by time.
//!
//! | capture mode | proves | owner |
//! |---|---|---|
//! | all | the proxy's retransmissions and the owner never receiving them, while it received the handshake | the owner |
//! | backends only | the owner received only segments shorter than the MSS and a hole the size of full segments never filled | the owner |
//! | proxy only | the retransmitted full-size segment and a smaller one acknowledged after it was first sent; without that, a dead path looks the same and the rule does not fire | unknown |
//!
//! ICMP is not read: its absence is assumed, not proven (a sender that got
//! "fragmentation needed" would have sent smaller segments).

use super::{Case, Proof, Rule, RuleHit};
use crate::conn::NodeView;
use crate::ctx::{Ctx, Pk, Sight};
use crate::model::Cause;
use wiretrail_capture::{SeqNumber, Timestamp};
use wiretrail_logs::{ErrorClass, ProxyError};

pub(crate) const RULE: Rule = Rule {
    cause: Cause::PmtuBlackhole,
    explains: |e: &ProxyError| {
        !super::is_dial(e) && matches!(e.class, ErrorClass::Timeout | ErrorClass::Canceled)
    },
    check,
    remedy: "Full-size packets are dropped on the path and ICMP \"fragmentation needed\" does not come back: clamp the TCP MSS on the path (iptables/nft `tcp option maxseg size set rt mtu`), lower the MTU on the proxy's interface, or let ICMP type 3 code 4 through.",
};

/// The first full-size proxy segment sent at least twice and never
/// acknowledged on the proxy's wire: (segment, times sent).
fn stuck_full_size(ctx: &Ctx<'_>, pv: &NodeView, full: u32) -> Option<(Pk, u32)> {
    pv.facts.proxy_data.iter().copied().find_map(|d| {
        let o = &ctx.pkts[d].obs;
        if o.payload_len < full || super::is_retransmission(ctx, pv, d) {
            return None;
        }
        let sends = super::sends_of(ctx, pv, d, Timestamp::MAX);
        let acked =
            super::acked(ctx, pv, super::seg_end(ctx, d), ctx.t(d), Timestamp::MAX).is_some();
        (sends >= 2 && !acked).then_some((d, sends))
    })
}

fn check(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    let full = super::full_size(ctx, parts)?;
    let owner = parts.owner;
    let mut hit;
    let first_seen;
    match (parts.proxy, owner) {
        (Some(pv), _) => {
            let (seg, sends) = stuck_full_size(ctx, pv, full)?;
            first_seen = ctx.t(seg);
            hit = RuleHit::new(Cause::PmtuBlackhole, first_seen, String::new()).proof(
                Proof::FullSizeRetransmitted {
                    seg,
                    len: full,
                    sends,
                },
            );
            match owner {
                Some(o) => {
                    let got_full = o
                        .facts
                        .proxy_data
                        .iter()
                        .any(|&d| ctx.pkts[d].obs.payload_len >= full);
                    let last = pv.last_ref;
                    if got_full || !matches!(ctx.sight(&o.node, first_seen, last), Sight::Covered) {
                        return None;
                    }
                    // Smaller packets from the proxy reached it.
                    let small = o.pkts.iter().copied().find(|&i| ctx.pkts[i].to_backend())?;
                    hit = hit
                        .owner(Some(&o.node))
                        .proof(Proof::OwnerNeverGotFullSize {
                            node: o.node.to_string(),
                            len: full,
                        })
                        .proof(Proof::SmallerGotThrough { pkt: small });
                }
                None => {
                    // The proxy's wire alone: a smaller segment sent after
                    // the stuck one was acknowledged, so the path lives.
                    let small = pv.facts.proxy_data.iter().copied().find(|&d| {
                        let o = &ctx.pkts[d].obs;
                        o.payload_len < full
                            && ctx.t(d) > first_seen
                            && super::acked(
                                ctx,
                                pv,
                                super::seg_end(ctx, d),
                                ctx.t(d),
                                Timestamp::MAX,
                            )
                            .is_some()
                    })?;
                    hit = hit.proof(Proof::SmallerGotThrough { pkt: small });
                }
            }
        }
        (None, Some(o)) => {
            // The owner's capture alone: it got only short segments, and a
            // hole of full segments before them never filled.
            o.facts.syn?;
            if o.facts
                .proxy_data
                .iter()
                .any(|&d| ctx.pkts[d].obs.payload_len >= full)
            {
                return None;
            }
            let (hole_seg, _) = unfilled_hole(ctx, o, full)?;
            first_seen = ctx.t(hole_seg);
            if !matches!(ctx.sight(&o.node, first_seen, o.last_ref), Sight::Covered) {
                return None;
            }
            hit = RuleHit::new(Cause::PmtuBlackhole, first_seen, String::new())
                .owner(Some(&o.node))
                .proof(Proof::OwnerNeverGotFullSize {
                    node: o.node.to_string(),
                    len: full,
                })
                .proof(Proof::SmallerGotThrough { pkt: hole_seg });
        }
        (None, None) => return None,
    }
    hit.summary = format!(
        "path-MTU black hole: the proxy's full-size segments ({full} bytes) never reached {} while smaller packets did; the sender kept retransmitting them and was never told to shrink them",
        hit.owner.as_deref().unwrap_or("the backend")
    );
    // Go gives up when the client does or a header timeout fires, any time
    // while the segment goes unanswered; its own close may wait behind the
    // unacknowledged data. The failure reaches the proxy somewhere between
    // the first full-size transmission and the connection's end.
    let view = parts.proxy.or(owner)?;
    hit.at = (first_seen, view.last_ref.max(first_seen));
    Some(hit)
}

/// A segment the owner received beyond a gap of at least one full segment
/// that never filled: (that segment, the gap's start).
fn unfilled_hole(ctx: &Ctx<'_>, o: &NodeView, full: u32) -> Option<(Pk, SeqNumber)> {
    let mut expected: Option<SeqNumber> = None;
    for &i in &o.pkts {
        let p = &ctx.pkts[i].obs;
        if !ctx.pkts[i].to_backend() || p.flags.rst() {
            continue;
        }
        let end = p.seq + (p.payload_len + u32::from(p.flags.syn()));
        match expected {
            None => expected = Some(end),
            Some(e) if p.payload_len > 0 && p.seq > e && p.seq.since(e) >= full => {
                let filled = o.pkts.iter().any(|&j| {
                    let q = &ctx.pkts[j].obs;
                    ctx.pkts[j].to_backend() && q.seq == e && q.payload_len > 0
                });
                if !filled {
                    return Some((i, e));
                }
            }
            Some(e) if end > e => expected = Some(end),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    /// Handshake and a small first segment reach b2; the 1448-byte ones
    /// never do; the proxy retransmits, the client gives up at 8 s.
    fn blackhole() -> Kit {
        let mut k = Kit::new(47000);
        let (s, a) = k.handshake("b2", 0.0);
        k.both("b2", 0.01, To::Backend, "PA", s, a, 200);
        k.both("b2", 0.011, To::Proxy, "A", a, s + 200, 0);
        for t in [0.012, 0.25, 0.7, 1.6, 3.4, 7.0] {
            k.pkt("proxy", t, To::Backend, "A", s + 200, a, 1448);
        }
        // A keep-alive-sized probe later on gets through.
        k.both("b2", 7.5, To::Backend, "A", s + 199, a, 1);
        k.both("b2", 7.5002, To::Proxy, "A", a, s + 200, 0);
        k.both("b2", 8.0, To::Backend, "FA", s + 1648, a, 0);
        k
    }

    fn canceled(k: &Kit) -> wiretrail_logs::ProxyError {
        k.err(8.0, "context canceled")
    }

    #[test]
    fn all_captures() {
        let k = blackhole();
        let h = k.verdict(&canceled(&k)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::PmtuBlackhole, Some("b2"))
        );
        assert!(h.proofs.iter().any(|p| matches!(
            p,
            Proof::FullSizeRetransmitted {
                sends: 6,
                len: 1448,
                ..
            }
        )));
        assert!(h.confidence() >= 0.8, "{} {:?}", h.confidence(), h.proofs);
    }

    #[test]
    fn proxy_only_without_a_smaller_acknowledged_segment_does_not_fire() {
        let mut k = blackhole();
        k.pkts.retain(|p| {
            !(p.ts > crate::rules::testkit::at(7.4) && p.ts < crate::rules::testkit::at(7.6))
        });
        k.only(&["proxy"]);
        assert!(k.case(&canceled(&k), check).is_none());
    }

    #[test]
    fn proxy_only_with_a_smaller_acknowledged_segment() {
        let mut k = blackhole();
        k.only(&["proxy"]);
        let h = k.verdict(&canceled(&k)).expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::PmtuBlackhole, None));
    }
}
