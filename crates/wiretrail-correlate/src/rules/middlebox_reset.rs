//! `middlebox_reset`: a device between proxy and backends (a stateful
//! firewall, NAT, a cloud load balancer's idle timer: AWS NLB 350 s, Azure
//! LB 4 min, GCP 600 s, IPVS 900 s) forgot an idle connection and answered
//! the next segment with RST in the backend's name.
//!
//! **Signature**, by capture mode:
//!
//! | capture mode | must be seen | owner |
//! |---|---|---|
//! | all | a RST reaches the proxy after an idle gap (≥ 2 s) on the connection; no backend capture holds it, and the owner's covers the moment and never received the segment the RST answers; plus its TTL differs from the owner's packets at the proxy, or every backend's capture covers the moment | the owner (alive, never reset it) |
//! | proxy only | a stateless RST answering the first segment after an idle gap (≥ 2 s) arrives with another TTL than the backend's packets (another hop distance: another device) | unknown |
//! | backends only | the log says reset; the owner's capture covers the idle gap up to the error and holds neither the request nor a RST of its own; no other backend got any of the connection, and every backend is covered | the owner |
//!
//! A different MAC alone is not enough (a stray backend on the same L2
//! segment has its own MAC): that is [`super::stray_rst`].

use super::{Case, Proof, Rule, RuleHit, MIDDLEBOX_IDLE_MIN};
use crate::conn::NodeView;
use crate::ctx::{Ctx, Parts, Pk, Sight};
use crate::model::Cause;
use crate::rst::{self, RstSender};
use wiretrail_capture::Duration;

pub(crate) const RULE: Rule = Rule {
    cause: Cause::MiddleboxReset,
    explains: |e| super::reset_like(e),
    check,
    remedy: "A firewall, NAT or load balancer between proxy and backends drops idle connections: keep the proxy's idle timeout (Go: Transport.IdleConnTimeout) below the device's idle timer, or enable TCP keep-alive on the proxy's connections with an interval under it.",
};

fn check(case: &Case<'_>) -> Option<RuleHit> {
    match case.parts.proxy {
        Some(pv) => from_proxy_wire(case, pv),
        None => from_backends(case),
    }
}

/// The idle gap on the proxy's wire before `seg`.
fn idle_before(ctx: &Ctx<'_>, v: &NodeView, seg: Pk) -> Option<Proof> {
    let last = super::last_packet_before(ctx, v, ctx.t(seg))?;
    let idle = ctx.t(seg).saturating_duration_since(ctx.t(last));
    (idle >= MIDDLEBOX_IDLE_MIN).then_some(Proof::IdleBefore {
        last,
        next: seg,
        idle,
    })
}

fn from_proxy_wire(case: &Case<'_>, pv: &NodeView) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts = &case.parts;
    for &r in &pv.facts.backend_rsts {
        if super::after_peer_fin(ctx, pv, r) {
            continue;
        }
        let form = rst::form(ctx, pv, r);
        let Some(answers) = form.answers().filter(|_| form.is_stateless()) else {
            continue;
        };
        // The first segment after a long idle gap is what a device that
        // forgot the flow answers.
        let Some(idle) = idle_before(ctx, pv, answers) else {
            continue;
        };
        let peer = parts.peer_fingerprint(ctx, ctx.t(answers));
        let ttl = peer.and_then(|(f, p)| {
            let got = ctx.pkts[r].obs.ttl;
            (got != f.ttl).then_some(Proof::TtlDiffers {
                rst: r,
                peer: p,
                rst_ttl: got,
                peer_ttl: f.ttl,
            })
        });
        let mut hit = RuleHit::new(Cause::MiddleboxReset, ctx.t(r), String::new())
            .proof(Proof::StatelessRst { rst: r, answers })
            .proof(idle.clone());
        let backends = parts.backends(ctx);
        if ctx.backend_nodes().next().is_some() && !backends.is_empty() {
            // Backend captures exist: the RST must be in none of them.
            match rst::sender(ctx, &backends, r) {
                RstSender::Node(..) => continue,
                RstSender::NotCaptured { covered, blind } => {
                    let owner = parts.owner?;
                    if !covered.iter().any(|n| n.as_str() == owner.node.as_ref()) {
                        continue;
                    }
                    // Did the owner get the segment the RST answers?
                    let a = &ctx.pkts[answers].obs;
                    let got = owner.pkts.iter().any(|&j| {
                        let o = &ctx.pkts[j].obs;
                        ctx.pkts[j].to_backend() && o.seq == a.seq && o.payload_len == a.payload_len
                    });
                    if got {
                        continue;
                    }
                    // A backend nobody watched could be a stray: only a TTL
                    // from another hop rules it out.
                    if !blind.is_empty() && ttl.is_none() {
                        continue;
                    }
                    hit = hit
                        .owner(Some(&owner.node))
                        .proof(Proof::RstInNoBackend {
                            rst: r,
                            covered: covered.clone(),
                        })
                        .proof(Proof::OwnerMissed {
                            node: owner.node.to_string(),
                            seg: answers,
                        });
                }
            }
        } else if ttl.is_none() {
            // The proxy's wire alone: only another hop distance tells a
            // device from a stray backend.
            continue;
        }
        if let Some(t) = ttl {
            hit = hit.proof(t);
        } else if let Some((f, p)) = peer {
            if ctx.pkts[r].obs.link.src_mac.is_some() && ctx.pkts[r].obs.link.src_mac != f.mac {
                hit = hit.proof(Proof::MacDiffers { rst: r, peer: p });
            }
        }
        let Proof::IdleBefore { idle, .. } = idle else {
            unreachable!()
        };
        hit.idle = Some(idle);
        hit.summary = summary(hit.owner.as_deref(), idle);
        return Some(hit);
    }
    None
}

/// Without the proxy's capture: the log says reset, but the owner never
/// saw the request and never reset anything.
fn from_backends(case: &Case<'_>) -> Option<RuleHit> {
    let ctx = case.ctx;
    let parts: &Parts<'_> = &case.parts;
    if !super::reset_like(case.err) {
        return None;
    }
    let owner = parts.owner?;
    if !parts.strays(ctx).is_empty() || parts.backends(ctx).len() > 1 {
        return None;
    }
    let t_log = crate::plan::log_ts(case.err);
    let last = super::last_packet_before(ctx, owner, t_log + Duration::NANOSECOND)?;
    let idle: Duration = t_log.saturating_duration_since(ctx.t(last));
    if idle < MIDDLEBOX_IDLE_MIN {
        return None;
    }
    // By construction nothing of the connection reached the owner between
    // the idle gap's start and the error (no request); nor did it reset
    // anything around the error. Its capture must cover that time.
    let slack = crate::plan::log_width(case.err) + Duration::from_secs(1);
    if owner
        .facts
        .backend_rsts
        .iter()
        .any(|&r| ctx.t(r) >= ctx.t(last) && ctx.t(r) <= t_log + slack)
    {
        return None;
    }
    let (from, to) = (ctx.t(last), t_log);
    let all_covered = ctx.backend_nodes().all(|n| {
        matches!(
            ctx.sight(n, to - Duration::from_secs(1), to),
            Sight::Covered
        )
    });
    if !matches!(ctx.sight(&owner.node, from, to), Sight::Covered) || !all_covered {
        return None;
    }
    let mut hit = RuleHit::new(
        Cause::MiddleboxReset,
        t_log,
        summary(Some(&owner.node), idle),
    )
    .owner(Some(&owner.node))
    .proof(Proof::OwnerNeverSawRequest {
        node: owner.node.to_string(),
        from,
        to,
    })
    .proof(Proof::IdleUntilError { last, idle });
    hit.idle = Some(idle);
    // The log's time is only as exact as its precision.
    hit.at = (
        t_log - Duration::from_secs(1),
        t_log + crate::plan::log_width(case.err),
    );
    Some(hit)
}

fn summary(owner: Option<&str>, idle: Duration) -> String {
    let timer = super::near_known_timer(idle)
        .map(|t| format!(", which matches {t}"))
        .unwrap_or_else(|| {
            ", below the idle timers of the common cloud load balancers (AWS NLB 350 s, Azure LB 4 min, GCP 600 s, IPVS 900 s): a firewall or NAT with a shorter one".into()
        });
    format!(
        "middlebox reset: after {:.1} s idle, a device between proxy and backend answered the proxy's next segment with RST; {} never received it and never reset the connection{timer}",
        idle.as_secs_f64(),
        owner.unwrap_or("the backend")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{Kit, To};

    /// b1 owns a keep-alive connection; behind a router (TTL 63 at the
    /// proxy); after 30 s idle the firewall (one hop nearer: TTL 64)
    /// answers the next request with a stateless RST.
    fn firewall() -> Kit {
        let mut k = Kit::new(42000);
        let (s, a) = k.handshake("b1", 0.0);
        k.both("b1", 0.01, To::Backend, "PA", s, a, 200);
        k.both("b1", 0.02, To::Proxy, "PA", a, s + 200, 800);
        k.both("b1", 0.03, To::Backend, "A", s + 200, a + 800, 0);
        for p in k.pkts.iter_mut().filter(|p| {
            p.node.as_ref() == "proxy" && p.dir == wiretrail_capture::Direction::ToProxy
        }) {
            p.ttl = 63;
        }
        k.pkt("proxy", 30.0, To::Backend, "PA", s + 200, a + 800, 200);
        let r = k.pkt("proxy", 30.0005, To::Proxy, "R", a + 800, 0, 0);
        r.ip_id = Some(0);
        k
    }

    #[test]
    fn all_captures() {
        let k = firewall();
        let h = k.verdict(&k.reset_err(30.001)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::MiddleboxReset, Some("b1"))
        );
        for want in [
            "rst_in_no_backend",
            "owner_missed",
            "ttl_differs",
            "idle_before",
            "stateless_rst",
        ] {
            assert!(
                h.proofs
                    .iter()
                    .any(|p| serde_json::to_value(p.kind()).unwrap() == want),
                "{want}: {:?}",
                h.proofs
            );
        }
        assert!(h.confidence() >= 0.9, "{}", h.confidence());
    }

    #[test]
    fn proxy_only_needs_the_ttl() {
        let mut k = firewall();
        k.only(&["proxy"]);
        let h = k.verdict(&k.reset_err(30.001)).expect("fires");
        assert_eq!((h.cause, h.owner.clone()), (Cause::MiddleboxReset, None));
        // Same TTL: a stray backend could have sent it; not this rule.
        let mut k = firewall();
        k.only(&["proxy"]);
        for p in &mut k.pkts {
            p.ttl = 64;
        }
        assert!(k.case(&k.reset_err(30.001), check).is_none());
    }

    #[test]
    fn backends_only_from_the_owners_silence() {
        let mut k = firewall();
        k.only(&["b1", "b2", "b3"]);
        let h = k.verdict(&k.reset_err(30.001)).expect("fires");
        assert_eq!(
            (h.cause, h.owner.as_deref()),
            (Cause::MiddleboxReset, Some("b1"))
        );
        assert!(h
            .proofs
            .iter()
            .any(|p| matches!(p, Proof::OwnerNeverSawRequest { .. })));
    }

    #[test]
    fn a_short_pause_is_not_a_forgotten_flow() {
        let mut k = Kit::new(42000);
        let (s, a) = k.handshake("b1", 0.0);
        k.pkt("proxy", 0.5, To::Backend, "PA", s, a, 200);
        k.pkt("proxy", 0.5005, To::Proxy, "R", a, 0, 0).ttl = 60;
        assert!(k.case(&k.reset_err(0.6), check).is_none());
    }
}
