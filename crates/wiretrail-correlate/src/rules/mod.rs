//! The diagnosis rules: one cause per file, over a shared read-only
//! [`Case`] (one error and the connection it was joined to).
//!
//! Each rule documents at the top of its file the packet signature it needs
//! and what each capture mode (all captures, backends only, proxy only) can
//! prove of it, and refuses to fire without that signature. A rule returns
//! a [`RuleHit`]: the cause, the owner and stray nodes, typed [`Proof`]s
//! (each naming its packets), the moment the failure reached the proxy, a
//! summary and a remedy. Confidence is computed from the proofs alone
//! ([`Proof::weight`]); no rule sets it and nothing reads English text.
//!
//! [`RULES`] is the precedence: every rule is evaluated, the first hit in
//! table order names the cause, and a later hit naming another cause is kept
//! as a [`Proof::Contested`] that lowers the winner's confidence. The
//! signatures are meant to exclude each other; a contest is shown, never
//! hidden. Rules never import each other; shared reading lives in
//! [`crate::ctx`], [`crate::rst`] and the helpers below.

mod accept_queue_overflow;
mod backend_reset;
mod backend_state_lost;
mod client_canceled;
mod connect_timeout;
#[cfg(test)]
mod docs;
mod flow_split;
mod idle_race;
mod max_requests_close;
mod middlebox_reset;
mod pmtu_blackhole;
mod refused;
mod response_timeout;
mod stray_rst;

#[cfg(test)]
pub(crate) mod testkit;

use crate::conn::NodeView;
use crate::ctx::{Ctx, Parts, Pk};
use crate::model::{Cause, ProofKind};
use wiretrail_capture::{Duration, SeqNumber, Timestamp};
use wiretrail_logs::{ErrorClass, ProxyError};

/// One error and the connection instance it belongs to.
pub(crate) struct Case<'a> {
    pub ctx: &'a Ctx<'a>,
    pub err: &'a ProxyError,
    pub parts: Parts<'a>,
}

impl Case<'_> {
    pub fn class(&self) -> ErrorClass {
        self.err.class
    }
}

/// A rule: the cause it names, the log classes that cause explains, and
/// the check that looks for its signature.
pub(crate) struct Rule {
    pub cause: Cause,
    /// Whether an error logged like this is what this cause produces. Used
    /// as a proof ([`Proof::LogAgrees`] / [`Proof::LogDisagrees`]) and, for
    /// errors joined by time, to keep only connections telling this story.
    pub explains: fn(&ProxyError) -> bool,
    pub check: fn(&Case<'_>) -> Option<RuleHit>,
    /// What the user can do about it.
    pub remedy: &'static str,
}

/// Precedence, first wins. Handshake failures first (they exclude the
/// rest), then RSTs by what their sender is proven to be (a stray node, a
/// middlebox, the owner without state, unknown), then the owner's own
/// closes and aborts, then requests that never got through or never got an
/// answer.
pub(crate) const RULES: &[Rule] = &[
    refused::RULE,
    connect_timeout::RULE,
    accept_queue_overflow::RULE,
    flow_split::RULE,
    middlebox_reset::RULE,
    backend_state_lost::RULE,
    stray_rst::RULE,
    idle_race::RULE,
    max_requests_close::RULE,
    backend_reset::RULE,
    pmtu_blackhole::RULE,
    client_canceled::RULE,
    response_timeout::RULE,
];

pub(crate) fn rule_of(cause: Cause) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.cause == cause)
}

/// A node by name, as the pipeline gave it.
pub(crate) type Name = String;

/// Typed evidence. Each proof names the packets it rests on and carries its
/// own weight: the confidence of a hit is the sum of its proofs' weights,
/// clamped to [0, 0.99].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Proof {
    /// The node saw the connection's handshake: it owns the connection.
    Handshake { node: Name, syn: Pk, synack: Pk },
    /// No handshake captured, but the node answered with state.
    AnsweredWithState { node: Name, pkt: Pk },
    /// A backend without the connection's socket received this segment.
    SegmentAstray { node: Name, seg: Pk },
    /// The owner's capture covers the moment and lacks that segment.
    OwnerMissed { node: Name, seg: Pk },
    /// `seq` = the ACK of the segment it answers and no ACK flag (or the
    /// seq-0 form for a segment without ACK): a stack with no socket.
    StatelessRst { rst: Pk, answers: Pk },
    /// RST|ACK in the sender's own sequence space: a stack that had the
    /// socket aborted it.
    AbortRst { rst: Pk },
    /// The RST reached the proxy; no backend capture holds it, and these
    /// backends' captures cover the moment.
    RstInNoBackend { rst: Pk, covered: Vec<Name> },
    /// The RST arrived at the proxy with another TTL than the peer's
    /// packets: sent from another hop distance, by another device.
    TtlDiffers {
        rst: Pk,
        peer: Pk,
        rst_ttl: u8,
        peer_ttl: u8,
    },
    /// The RST arrived from another link-layer sender than the peer's packets.
    MacDiffers { rst: Pk, peer: Pk },
    /// The RST arrived with the peer's own MAC and TTL, where MACs name
    /// hosts: the owner sent it.
    SenderIsPeer { rst: Pk, peer: Pk },
    /// The RST is in the owner's own capture: the owner sent it.
    OwnerSent { node: Name, rst: Pk },
    /// The connection was idle this long before the segment that failed.
    IdleBefore { last: Pk, next: Pk, idle: Duration },
    /// The owner's capture shows the connection idle from `last` up to the
    /// error's time.
    IdleUntilError { last: Pk, idle: Duration },
    /// The owner's capture covers `[from, to]` and holds neither the
    /// failing request nor any RST of its own.
    OwnerNeverSawRequest {
        node: Name,
        from: Timestamp,
        to: Timestamp,
    },
    /// The segment the RST answers had been sent before, unanswered.
    Retransmitted { seg: Pk, times: u32 },
    /// The owner closed (FIN) after the connection sat idle this long.
    FinAfterIdle { fin: Pk, last: Pk, idle: Duration },
    /// The owner closed (FIN) right after its last response.
    FinAfterResponse { resp: Pk, fin: Pk, gap: Duration },
    /// The proxy's next request crossed the owner's FIN.
    RequestCrossedFin { req: Pk, fin: Pk },
    /// The owner answered data that arrived after its close with a RST.
    RstAfterClose { rst: Pk },
    /// The owner closed an idle connection with the next request unread in
    /// its socket: RST instead of FIN, the request never acknowledged.
    UnreadRequestRst { req: Pk, rst: Pk, idle: Duration },
    /// Requests the connection carried, counted from its handshake.
    RequestsServed { n: u32 },
    /// The owner closed this many of its connections right after exactly
    /// `n` requests: a request budget.
    SameRequestCount { n: u32, conns: u32 },
    /// SYN answered by RST/ACK.
    Refusal { syn: Pk, rst: Pk },
    /// The proxy's SYNs (first and retransmissions), never answered.
    SynsUnanswered { syns: Vec<Pk> },
    /// The handshake completed on the proxy's side, yet the server sent its
    /// SYN-ACK again: it never took the connection off its queue.
    SynAckRepeated { ack: Pk, synack: Pk },
    /// The server answered the handshake's ACK (or the first request
    /// segment) with a RST: `tcp_abort_on_overflow`.
    ResetOnAccept { ack: Pk, rst: Pk },
    /// Request data sent this many times before the peer acknowledged it
    /// (if it ever did).
    RequestNeverAcked { seg: Pk, sends: u32 },
    /// A full-size segment sent again and again at one sequence number.
    FullSizeRetransmitted { seg: Pk, len: u32, sends: u32 },
    /// Smaller packets of the same connection got through.
    SmallerGotThrough { pkt: Pk },
    /// The owner's capture covers the connection and holds none of its
    /// full-size segments, while it holds smaller ones.
    OwnerNeverGotFullSize { node: Name, len: u32 },
    /// The peer acknowledged the request (`ack` may be the abort's own ACK
    /// field: a RST|ACK carries the receiver's `rcv_nxt`).
    RequestAcked { req: Pk, ack: Pk },
    /// The proxy closed the connection with its request unanswered.
    ProxyGaveUp {
        req: Pk,
        close: Pk,
        waited: Duration,
    },
    /// The backend's response arrived after the proxy had given up.
    LateResponse { pkt: Pk },
    /// Many connections to this node failed within a short time.
    NodeBurst {
        node: Name,
        errors: u32,
        within: Duration,
    },
    /// The log line says what this cause produces.
    LogAgrees { class: ErrorClass },
    /// The log line says something this cause does not produce.
    LogDisagrees { class: ErrorClass },
    /// Another rule's signature is also present.
    Contested { cause: Cause },
    /// A line joined by time was paired with one of several connections
    /// telling the same story by order (failures of one kind end in the
    /// order they began).
    PairedByOrder { among: u32 },
    /// No node captured the connection's handshake.
    NoHandshakeCaptured,
}

/// Idle at least this long before a close (or before a request the close
/// crossed): an idle timeout, not an abort.
pub(crate) const IDLE_MIN: Duration = Duration::from_millis(200);

/// A close this soon after the owner's last response was decided when the
/// response was (a request budget, a worker restart), not by an idle timer.
pub(crate) const AFTER_RESPONSE_MAX: Duration = Duration::from_millis(100);

/// Idle gaps at or above this, before the segment a middlebox answered,
/// are long enough for a state-tracking device to have dropped the flow.
pub(crate) const MIDDLEBOX_IDLE_MIN: Duration = Duration::from_secs(2);

impl Proof {
    /// What this proof is worth, with the reason beside each number.
    pub fn weight(&self) -> f64 {
        match self {
            // Who owns the connection.
            Proof::Handshake { .. } => 0.30,
            Proof::AnsweredWithState { .. } => 0.20,
            // A split: the stray's own capture holds the segment.
            Proof::SegmentAstray { .. } => 0.30,
            Proof::OwnerMissed { .. } => 0.10,
            // RST forms: exact sequence-number matches, hard to fake.
            Proof::StatelessRst { .. } => 0.20,
            Proof::AbortRst { .. } => 0.20,
            // Absence in every covering backend capture: strong, but only
            // as good as the list of backends.
            Proof::RstInNoBackend { .. } => 0.25,
            // TTL: a different hop distance means a different device.
            Proof::TtlDiffers { .. } => 0.25,
            // A MAC differs for many reasons (a router in between, ARP
            // flux): supporting only.
            Proof::MacDiffers { .. } => 0.10,
            Proof::SenderIsPeer { .. } => 0.20,
            // Its own capture holds it: no doubt who sent it.
            Proof::OwnerSent { .. } => 0.25,
            // Long idle gaps are when state-tracking devices forget flows;
            // gaps near a known idle timer say more.
            Proof::IdleBefore { idle, .. } | Proof::IdleUntilError { idle, .. } => {
                if near_known_timer(*idle).is_some() {
                    0.15
                } else {
                    0.10
                }
            }
            Proof::OwnerNeverSawRequest { .. } => 0.25,
            Proof::Retransmitted { .. } => 0.05,
            Proof::FinAfterIdle { .. } => 0.45,
            Proof::FinAfterResponse { .. } => 0.40,
            Proof::RequestCrossedFin { .. } => 0.25,
            Proof::RstAfterClose { .. } => 0.10,
            Proof::UnreadRequestRst { .. } => 0.50,
            Proof::RequestsServed { .. } => 0.10,
            Proof::SameRequestCount { .. } => 0.15,
            Proof::Refusal { .. } => 0.80,
            Proof::SynsUnanswered { syns } => 0.60 + 0.05 * (syns.len().min(4) as f64 - 1.0),
            Proof::SynAckRepeated { .. } => 0.45,
            Proof::ResetOnAccept { .. } => 0.45,
            Proof::RequestNeverAcked { .. } => 0.20,
            Proof::FullSizeRetransmitted { .. } => 0.35,
            Proof::SmallerGotThrough { .. } => 0.15,
            Proof::OwnerNeverGotFullSize { .. } => 0.25,
            Proof::RequestAcked { .. } => 0.30,
            Proof::ProxyGaveUp { .. } => 0.35,
            Proof::LateResponse { .. } => 0.10,
            Proof::NodeBurst { .. } => 0.10,
            Proof::LogAgrees { .. } => 0.10,
            Proof::LogDisagrees { .. } => -0.25,
            Proof::Contested { .. } => -0.25,
            // An inference about which connection, not about the cause.
            Proof::PairedByOrder { .. } => -0.05,
            Proof::NoHandshakeCaptured => -0.05,
        }
    }

    pub fn kind(&self) -> ProofKind {
        match self {
            Proof::Handshake { .. } => ProofKind::Handshake,
            Proof::AnsweredWithState { .. } => ProofKind::AnsweredWithState,
            Proof::SegmentAstray { .. } => ProofKind::SegmentAstray,
            Proof::OwnerMissed { .. } => ProofKind::OwnerMissed,
            Proof::StatelessRst { .. } => ProofKind::StatelessRst,
            Proof::AbortRst { .. } => ProofKind::AbortRst,
            Proof::RstInNoBackend { .. } => ProofKind::RstInNoBackend,
            Proof::TtlDiffers { .. } => ProofKind::TtlDiffers,
            Proof::MacDiffers { .. } => ProofKind::MacDiffers,
            Proof::SenderIsPeer { .. } => ProofKind::SenderIsPeer,
            Proof::OwnerSent { .. } => ProofKind::OwnerSent,
            Proof::IdleBefore { .. } | Proof::IdleUntilError { .. } => ProofKind::IdleBefore,
            Proof::OwnerNeverSawRequest { .. } => ProofKind::OwnerNeverSawRequest,
            Proof::Retransmitted { .. } => ProofKind::Retransmitted,
            Proof::FinAfterIdle { .. } => ProofKind::FinAfterIdle,
            Proof::FinAfterResponse { .. } => ProofKind::FinAfterResponse,
            Proof::RequestCrossedFin { .. } => ProofKind::RequestCrossedFin,
            Proof::RstAfterClose { .. } => ProofKind::RstAfterClose,
            Proof::UnreadRequestRst { .. } => ProofKind::UnreadRequestRst,
            Proof::RequestsServed { .. } => ProofKind::RequestsServed,
            Proof::SameRequestCount { .. } => ProofKind::SameRequestCount,
            Proof::Refusal { .. } => ProofKind::Refusal,
            Proof::SynsUnanswered { .. } => ProofKind::SynsUnanswered,
            Proof::SynAckRepeated { .. } => ProofKind::SynAckRepeated,
            Proof::ResetOnAccept { .. } => ProofKind::ResetOnAccept,
            Proof::RequestNeverAcked { .. } => ProofKind::RequestNeverAcked,
            Proof::FullSizeRetransmitted { .. } => ProofKind::FullSizeRetransmitted,
            Proof::SmallerGotThrough { .. } => ProofKind::SmallerGotThrough,
            Proof::OwnerNeverGotFullSize { .. } => ProofKind::OwnerNeverGotFullSize,
            Proof::RequestAcked { .. } => ProofKind::RequestAcked,
            Proof::ProxyGaveUp { .. } => ProofKind::ProxyGaveUp,
            Proof::LateResponse { .. } => ProofKind::LateResponse,
            Proof::NodeBurst { .. } => ProofKind::NodeBurst,
            Proof::LogAgrees { .. } => ProofKind::LogAgrees,
            Proof::LogDisagrees { .. } => ProofKind::LogDisagrees,
            Proof::Contested { .. } => ProofKind::Contested,
            Proof::PairedByOrder { .. } => ProofKind::PairedByOrder,
            Proof::NoHandshakeCaptured => ProofKind::NoHandshakeCaptured,
        }
    }

    /// The packets the proof rests on, each with what it shows.
    pub fn frames(&self, ctx: &Ctx<'_>) -> Vec<(Pk, String)> {
        let ms = |d: Duration| d.as_millis();
        let frame = |i: Pk| ctx.pkts[i].obs.frame;
        match self {
            Proof::Handshake { node, syn, synack } => vec![
                (*syn, format!("SYN: the handshake on {node} (the owner)")),
                (*synack, format!("SYN-ACK from {node}")),
            ],
            Proof::AnsweredWithState { node, pkt } => vec![(
                *pkt,
                format!("{node} answers with state (it has the socket)"),
            )],
            Proof::SegmentAstray { node, seg } => vec![(
                *seg,
                format!("segment of the connection delivered to {node}, which has no socket for it"),
            )],
            Proof::OwnerMissed { node, seg } => vec![(
                *seg,
                format!("{node}, the owner, never received this segment (its capture covers the moment)"),
            )],
            Proof::StatelessRst { rst, answers } => {
                let r = &ctx.pkts[*rst].obs;
                let a = &ctx.pkts[*answers].obs;
                let how = if r.flags.ack() {
                    format!(
                        "seq=0, ack={} = seq+len of frame {} (RFC 793 reply to a segment without ACK)",
                        r.ack, a.frame
                    )
                } else {
                    format!(
                        "seq={} = the ACK of the segment it answers (frame {}), no ACK flag, IP ID {}",
                        r.seq,
                        a.frame,
                        r.ip_id.map_or_else(|| "-".into(), |v| v.to_string())
                    )
                };
                vec![
                    (*answers, "the segment the RST answers".into()),
                    (*rst, format!("stateless RST: {how}: its sender had no socket for the connection")),
                ]
            }
            Proof::AbortRst { rst } => vec![(
                *rst,
                format!(
                    "RST|ACK seq={} in the sender's own sequence space: a stack that had the socket aborted it",
                    ctx.pkts[*rst].obs.seq
                ),
            )],
            Proof::RstInNoBackend { rst, covered } => vec![(
                *rst,
                format!(
                    "this RST reached the proxy, but no backend capture holds it ({} cover the moment)",
                    covered.join(", ")
                ),
            )],
            Proof::TtlDiffers {
                rst,
                peer,
                rst_ttl,
                peer_ttl,
            } => vec![
                (*peer, format!("the peer's packets arrive with TTL {peer_ttl}")),
                (*rst, format!("the RST arrives with TTL {rst_ttl}: sent from another hop distance than the backend")),
            ],
            Proof::MacDiffers { rst, peer } => vec![
                (*peer, format!("the peer's packets come from MAC {}", mac(ctx, *peer))),
                (*rst, format!("the RST comes from MAC {}", mac(ctx, *rst))),
            ],
            Proof::SenderIsPeer { rst, peer } => vec![
                (*peer, format!("the owner's packets: MAC {}, TTL {}", mac(ctx, *peer), ctx.pkts[*peer].obs.ttl)),
                (*rst, "the RST has the owner's MAC and TTL, and MACs name hosts on this segment: the owner sent it".into()),
            ],
            Proof::OwnerSent { node, rst } => vec![(*rst, format!("sent by {node}, the owner: its own capture holds it"))],
            Proof::IdleBefore { last, next, idle } => {
                let timer = near_known_timer(*idle)
                    .map(|t| format!(" — near {t}'s idle timer"))
                    .unwrap_or_default();
                vec![
                    (*last, "last packet before the idle gap".into()),
                    (*next, format!("first segment after {:.1} s idle{timer}", idle.as_secs_f64())),
                ]
            }
            Proof::OwnerNeverSawRequest { .. } => Vec::new(),
            Proof::IdleUntilError { last, idle } => vec![(
                *last,
                format!(
                    "the owner's last packet of the connection, {:.1} s before the error",
                    idle.as_secs_f64()
                ),
            )],
            Proof::Retransmitted { seg, times } => vec![(
                *seg,
                format!("the proxy had sent this segment {times} times, unanswered"),
            )],
            Proof::FinAfterIdle { fin, last, idle } => vec![
                (*last, "last data before the close".into()),
                (*fin, format!("the backend closes the idle keep-alive connection (FIN) after {} ms idle", ms(*idle))),
            ],
            Proof::FinAfterResponse { resp, fin, gap } => vec![
                (*resp, "the backend's last response".into()),
                (*fin, format!("the backend closes the connection {:.1} ms after that response (FIN)", gap.as_nanos() as f64 / 1e6)),
            ],
            Proof::RequestCrossedFin { req, fin } => vec![(
                *req,
                format!("the proxy's next request crosses the FIN (frame {})", frame(*fin)),
            )],
            Proof::RstAfterClose { rst } => vec![(
                *rst,
                "RST for the data that arrived after the close".into(),
            )],
            Proof::UnreadRequestRst { req, rst, idle } => vec![
                (*req, format!("the proxy reuses the connection after {} ms idle: request sent, never acknowledged", ms(*idle))),
                (*rst, "the backend closes with the request unread: RST instead of FIN".into()),
            ],
            Proof::RequestsServed { .. } | Proof::SameRequestCount { .. } => Vec::new(),
            Proof::Refusal { syn, rst } => vec![
                (*syn, format!("proxy SYN from port {}", ctx.pkts[*syn].obs.src.port())),
                (*rst, format!("RST/ACK from {}: nothing listens on the port", sender_name(ctx, *rst))),
            ],
            Proof::SynsUnanswered { syns } => {
                let t0 = syns.first().map(|&s| ctx.t(s)).unwrap_or(Timestamp::EPOCH);
                syns.iter()
                    .enumerate()
                    .map(|(k, &s)| {
                        let note = if k == 0 {
                            "SYN, never answered".to_string()
                        } else {
                            format!("SYN retransmitted {:+.3} s after the first, never answered", ctx.t(s).saturating_duration_since(t0).as_secs_f64())
                        };
                        (s, note)
                    })
                    .collect()
            }
            Proof::SynAckRepeated { ack, synack } => vec![
                (*ack, "the proxy completes the handshake (ACK)".into()),
                (*synack, "the server sends its SYN-ACK again: it never took the connection off its accept queue".into()),
            ],
            Proof::ResetOnAccept { ack, rst } => vec![
                (*ack, "the proxy completes the handshake".into()),
                (*rst, "the server resets it at once: its accept queue is full (tcp_abort_on_overflow)".into()),
            ],
            Proof::RequestNeverAcked { seg, sends } => vec![(
                *seg,
                format!("request data sent {sends} time(s) before any acknowledgment"),
            )],
            Proof::FullSizeRetransmitted { seg, len, sends } => vec![(
                *seg,
                format!("full-size segment ({len} bytes) sent {sends} times at the same seq, never acknowledged"),
            )],
            Proof::SmallerGotThrough { pkt } => vec![(
                *pkt,
                "smaller packets of the same connection got through".into(),
            )],
            Proof::OwnerNeverGotFullSize { .. } => Vec::new(),
            Proof::RequestAcked { req, ack } => vec![
                (*req, "request starts".into()),
                (*ack, format!("the backend acknowledges the request (ack={})", ctx.pkts[*ack].obs.ack)),
            ],
            Proof::ProxyGaveUp { req, close, waited } => vec![
                (*req, "last request data; no response byte follows".into()),
                (*close, format!("the proxy closes the connection with the request unanswered, {} ms after it began", ms(*waited))),
            ],
            Proof::LateResponse { pkt } => vec![(
                *pkt,
                "the backend's response arrives after the proxy gave up".into(),
            )],
            Proof::NodeBurst { .. }
            | Proof::LogAgrees { .. }
            | Proof::LogDisagrees { .. }
            | Proof::Contested { .. }
            | Proof::PairedByOrder { .. }
            | Proof::NoHandshakeCaptured => Vec::new(),
        }
    }

    /// One line for the report's proof list.
    pub fn note(&self) -> String {
        let s = Duration::as_secs_f64;
        match self {
            Proof::Handshake { node, .. } => format!("{node} saw the handshake"),
            Proof::AnsweredWithState { node, .. } => format!("{node} answered with state"),
            Proof::SegmentAstray { node, .. } => format!("{node} received a segment without having the socket"),
            Proof::OwnerMissed { node, .. } => format!("{node} (owner) never received that segment"),
            Proof::StatelessRst { .. } => "the RST is in the stateless form (seq = the answered segment's ACK)".into(),
            Proof::AbortRst { .. } => "the RST is an abort by a stack that had the socket".into(),
            Proof::RstInNoBackend { covered, .. } => format!("no backend capture holds the RST ({} cover the moment)", covered.join(", ")),
            Proof::TtlDiffers { rst_ttl, peer_ttl, .. } => format!("RST TTL {rst_ttl} vs the backend's {peer_ttl}"),
            Proof::MacDiffers { .. } => "the RST's source MAC is not the backend's".into(),
            Proof::SenderIsPeer { .. } => "the RST carries the owner's MAC and TTL".into(),
            Proof::OwnerSent { node, .. } => format!("{node}'s own capture holds the RST"),
            Proof::IdleBefore { idle, .. } | Proof::IdleUntilError { idle, .. } => match near_known_timer(*idle) {
                Some(t) => format!("idle {:.1} s before the failing segment, near {t}'s idle timer", s(*idle)),
                None => format!("idle {:.1} s before the failing segment", s(*idle)),
            },
            Proof::OwnerNeverSawRequest { node, from, to } => format!(
                "{node}'s capture covers the {:.1} s before the error and holds neither the request nor a RST of its own",
                s(to.saturating_duration_since(*from))
            ),
            Proof::Retransmitted { times, .. } => format!("the answered segment had been sent {times} times"),
            Proof::FinAfterIdle { idle, .. } => format!("the owner closed after {} ms idle", idle.as_millis()),
            Proof::FinAfterResponse { gap, .. } => format!("the owner closed {:.1} ms after its last response", gap.as_nanos() as f64 / 1e6),
            Proof::RequestCrossedFin { .. } => "the proxy's next request crossed the FIN".into(),
            Proof::RstAfterClose { .. } => "the late request was answered by RST".into(),
            Proof::UnreadRequestRst { idle, .. } => format!("idle {} ms, then the close crossed the unread request (RST, no FIN)", idle.as_millis()),
            Proof::RequestsServed { n } => format!("the connection had served {n} requests"),
            Proof::SameRequestCount { n, conns } => format!("{conns} failing connections were closed right after exactly {n} requests: a request budget"),
            Proof::Refusal { .. } => "SYN answered by RST/ACK".into(),
            Proof::SynsUnanswered { syns } => format!("{} SYNs, none answered", syns.len()),
            Proof::SynAckRepeated { .. } => "SYN-ACK repeated after the handshake completed".into(),
            Proof::ResetOnAccept { .. } => "RST right after the handshake".into(),
            Proof::RequestNeverAcked { sends, .. } => format!("request sent {sends} time(s) before any acknowledgment"),
            Proof::FullSizeRetransmitted { len, sends, .. } => format!("a {len}-byte segment sent {sends} times at one seq"),
            Proof::SmallerGotThrough { .. } => "smaller packets got through".into(),
            Proof::OwnerNeverGotFullSize { node, len } => format!("{node} received no segment of {len} bytes, only smaller ones"),
            Proof::RequestAcked { .. } => "the backend acknowledged the request".into(),
            Proof::ProxyGaveUp { waited, .. } => format!("the proxy gave up after {} ms", waited.as_millis()),
            Proof::LateResponse { .. } => "the response came after the proxy gave up".into(),
            Proof::NodeBurst { node, errors, within } => format!("{errors} connections to {node} failed within {:.1} s", s(*within)),
            Proof::LogAgrees { class } => format!("the log's `{}` is what this cause produces", class.as_str()),
            Proof::LogDisagrees { class } => format!("the log's `{}` is not what this cause produces", class.as_str()),
            Proof::Contested { cause } => format!("the signature of {} is present too", cause.as_str()),
            Proof::PairedByOrder { among } => format!("one of {among} connections telling this story, paired with the line by order"),
            Proof::NoHandshakeCaptured => "no node captured the handshake".into(),
        }
    }
}

/// Who sent a packet, as far as the capture holding it can say.
fn sender_name(ctx: &Ctx<'_>, i: Pk) -> String {
    let node = ctx.pkts[i].obs.node.as_ref();
    if ctx.is_backend(node) {
        node.to_string()
    } else {
        format!("the backend (seen on {node})")
    }
}

fn mac(ctx: &Ctx<'_>, i: Pk) -> String {
    ctx.pkts[i].obs.link.src_mac.map_or_else(
        || "-".into(),
        |m| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        },
    )
}

/// Idle timers of devices that track flows, which drop idle connections
/// silently (then answer the next segment with RST, or drop it).
pub(crate) const KNOWN_IDLE_TIMERS: [(&str, Duration); 4] = [
    ("Azure Load Balancer (4 min)", Duration::from_secs(240)),
    ("AWS NLB (350 s)", Duration::from_secs(350)),
    (
        "GCP load balancing / firewall (600 s)",
        Duration::from_secs(600),
    ),
    ("Linux IPVS (900 s)", Duration::from_secs(900)),
];

/// The known timer an idle gap matches: at or above it, by at most 10 %.
pub(crate) fn near_known_timer(idle: Duration) -> Option<&'static str> {
    KNOWN_IDLE_TIMERS
        .iter()
        .find(|(_, t)| idle >= *t && idle <= *t + *t / 10)
        .map(|(n, _)| *n)
}

/// What a rule found.
#[derive(Debug, Clone)]
pub(crate) struct RuleHit {
    pub cause: Cause,
    pub owner: Option<Name>,
    pub strays: Vec<Name>,
    pub proofs: Vec<Proof>,
    /// When the failure reached the proxy, as `[earliest, latest]`
    /// (reference clock): what the log line's time should meet.
    pub at: (Timestamp, Timestamp),
    /// One sentence, written from the typed findings.
    pub summary: String,
    pub remedy: &'static str,
    /// Flow splits: (ordinal of the stray segment in its request, request bytes).
    pub stray_shape: Option<(usize, u64)>,
    /// How long the connection sat idle before the failure, where that matters.
    pub idle: Option<Duration>,
    /// Requests the connection served, when counted from its handshake.
    pub requests: Option<u32>,
}

impl RuleHit {
    pub fn new(cause: Cause, at: Timestamp, summary: String) -> Self {
        RuleHit {
            cause,
            owner: None,
            strays: Vec::new(),
            proofs: Vec::new(),
            at: (at, at),
            summary,
            remedy: rule_of(cause).map_or("", |r| r.remedy),
            stray_shape: None,
            idle: None,
            requests: None,
        }
    }

    pub fn owner(mut self, node: Option<&str>) -> Self {
        self.owner = node.map(str::to_string);
        self
    }

    pub fn proof(mut self, p: Proof) -> Self {
        self.proofs.push(p);
        self
    }

    /// The sum of the proofs' weights, in [0, 0.99], three decimals.
    pub fn confidence(&self) -> f64 {
        let sum: f64 = self.proofs.iter().map(Proof::weight).sum();
        (sum.clamp(0.0, 0.99) * 1000.0).round() / 1000.0
    }
}

/// Every rule's verdict on one case: the winner (first by precedence) with
/// a [`Proof::Contested`] for every other cause whose signature is present.
pub(crate) fn evaluate(case: &Case<'_>) -> Option<RuleHit> {
    let mut hits = all_hits(case);
    if hits.is_empty() {
        return None;
    }
    let mut winner = hits.remove(0);
    for other in hits {
        if other.cause != winner.cause
            && !winner
                .proofs
                .iter()
                .any(|p| matches!(p, Proof::Contested { cause } if *cause == other.cause))
        {
            winner.proofs.push(Proof::Contested { cause: other.cause });
        }
    }
    Some(winner)
}

/// Every hit, in precedence order, each with its log agreement proof and
/// the handshake caveat.
pub(crate) fn all_hits(case: &Case<'_>) -> Vec<RuleHit> {
    let handshake_anywhere = case.parts.conn.views.iter().any(|v| v.facts.syn.is_some());
    RULES
        .iter()
        .filter_map(|r| {
            let mut h = (r.check)(case)?;
            debug_assert_eq!(h.cause, r.cause, "a rule names only its own cause");
            h.remedy = r.remedy;
            // A line that names no failure (an access log's bare 502) neither
            // agrees nor disagrees.
            let class = case.class();
            if class != ErrorClass::Other {
                h.proofs.push(if (r.explains)(case.err) {
                    Proof::LogAgrees { class }
                } else {
                    Proof::LogDisagrees { class }
                });
            }
            // A missing handshake weakens a story told about an established
            // connection; handshake failures and splits are told without it.
            if !handshake_anywhere
                && !matches!(
                    h.cause,
                    Cause::FlowSplit | Cause::StrayRst | Cause::Refused | Cause::ConnectTimeout
                )
            {
                h.proofs.push(Proof::NoHandshakeCaptured);
            }
            Some(h)
        })
        .collect()
}

// ---- shared reading of one view, for the rules -----------------------------

/// Log classes of a connection that a RST killed.
pub(crate) fn reset_like(e: &ProxyError) -> bool {
    matches!(
        e.class,
        ErrorClass::Reset | ErrorClass::BrokenPipe | ErrorClass::Closed
    )
}

/// Log classes of a reused connection the backend closed.
pub(crate) fn closed_like(e: &ProxyError) -> bool {
    matches!(
        e.class,
        ErrorClass::Eof | ErrorClass::Reset | ErrorClass::BrokenPipe | ErrorClass::Closed
    )
}

pub(crate) fn is_dial(e: &ProxyError) -> bool {
    e.op.as_deref() == Some("dial") || e.syscall.as_deref() == Some("connect")
}

/// The last packet of the view strictly before `t` (either way).
pub(crate) fn last_packet_before(ctx: &Ctx<'_>, v: &NodeView, t: Timestamp) -> Option<Pk> {
    v.pkts
        .iter()
        .copied()
        .filter(|&i| ctx.t(i) < t)
        .max_by_key(|&i| ctx.t(i))
}

/// How many times the proxy sent a segment at this seq with this length
/// on the view, up to `until`.
pub(crate) fn sends_of(ctx: &Ctx<'_>, v: &NodeView, seg: Pk, until: Timestamp) -> u32 {
    let s = &ctx.pkts[seg].obs;
    v.pkts
        .iter()
        .filter(|&&j| {
            let o = &ctx.pkts[j].obs;
            ctx.pkts[j].to_backend()
                && ctx.t(j) <= until
                && o.seq == s.seq
                && o.payload_len == s.payload_len
                && !o.flags.rst()
        })
        .count() as u32
}

/// The peer acknowledged everything up to `end` (sequence space) on this
/// view, between `from` and `until`.
pub(crate) fn acked(
    ctx: &Ctx<'_>,
    v: &NodeView,
    end: SeqNumber,
    from: Timestamp,
    until: Timestamp,
) -> Option<Pk> {
    v.pkts.iter().copied().find(|&j| {
        let o = &ctx.pkts[j].obs;
        !ctx.pkts[j].to_backend()
            && !o.flags.rst()
            && o.flags.ack()
            && ctx.t(j) >= from
            && ctx.t(j) <= until
            && end <= o.ack
    })
}

/// The end (seq + len) of a proxy segment.
pub(crate) fn seg_end(ctx: &Ctx<'_>, i: Pk) -> SeqNumber {
    let o = &ctx.pkts[i].obs;
    o.seq + o.payload_len
}

/// Request boundaries on a view: the first data segment of each request
/// (a request starts after the last response byte before it).
pub(crate) fn request_starts(ctx: &Ctx<'_>, v: &NodeView) -> Vec<Pk> {
    let mut out = Vec::new();
    let mut answered = true;
    for &i in &v.pkts {
        let p = &ctx.pkts[i];
        if p.obs.payload_len == 0 || p.obs.flags.rst() {
            continue;
        }
        if p.to_backend() {
            if answered && !is_retransmission(ctx, v, i) {
                out.push(i);
            }
            answered = false;
        } else {
            answered = true;
        }
    }
    out
}

/// An earlier packet of the view carried the same proxy segment.
pub(crate) fn is_retransmission(ctx: &Ctx<'_>, v: &NodeView, i: Pk) -> bool {
    let s = &ctx.pkts[i].obs;
    v.pkts.iter().take_while(|&&j| j != i).any(|&j| {
        let o = &ctx.pkts[j].obs;
        ctx.pkts[j].to_backend() && o.seq == s.seq && o.payload_len == s.payload_len
    })
}

/// The largest payload the proxy can put in one segment on this
/// connection: the smaller MSS of the handshake, less the timestamp option
/// when both sides use it; else the largest segment the proxy sent.
pub(crate) fn full_size(ctx: &Ctx<'_>, parts: &Parts<'_>) -> Option<u32> {
    let mut mss: Option<u32> = None;
    let mut ts = true;
    for v in &parts.conn.views {
        for &i in &v.pkts {
            let o = &ctx.pkts[i].obs;
            if o.flags.syn() {
                if let Some(m) = o.opts.mss {
                    mss = Some(mss.map_or(u32::from(m), |x| x.min(u32::from(m))));
                }
                ts &= o.opts.tsval.is_some();
            }
        }
    }
    if let Some(m) = mss {
        return Some(if ts { m.saturating_sub(12) } else { m });
    }
    parts
        .conn
        .views
        .iter()
        .flat_map(|v| v.pkts.iter())
        .filter(|&&i| ctx.pkts[i].to_backend())
        .map(|&i| ctx.pkts[i].obs.payload_len)
        .max()
        .filter(|&m| m >= 512)
}

/// A request the peer acknowledged in full and never answered before the
/// proxy closed the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// First and last segment of the request.
    pub start: Pk,
    pub last: Pk,
    /// The peer's ACK covering the whole request.
    pub ack: Pk,
    /// The proxy's FIN or RST giving up.
    pub close: Pk,
    /// A response byte that came after the close.
    pub late: Option<Pk>,
}

impl Pending {
    /// The proofs an unanswered request gives whoever explains it (a
    /// client that left, a backend too slow): the request acknowledged, the
    /// proxy giving up after `waited`, and a response too late, if one came.
    pub(crate) fn proofs(&self, hit: RuleHit, waited: Duration) -> RuleHit {
        let hit = hit
            .proof(Proof::RequestAcked {
                req: self.start,
                ack: self.ack,
            })
            .proof(Proof::ProxyGaveUp {
                req: self.last,
                close: self.close,
                waited,
            });
        match self.late {
            Some(l) => hit.proof(Proof::LateResponse { pkt: l }),
            None => hit,
        }
    }
}

/// The unanswered request of a view, if the proxy gave up on one.
pub(crate) fn pending(ctx: &Ctx<'_>, v: &NodeView) -> Option<Pending> {
    let f = &v.facts;
    let first_data = ctx.t(*f.proxy_data.first()?);
    let close = f
        .proxy_rsts
        .iter()
        .copied()
        .chain(f.proxy_fin)
        .filter(|&c| ctx.t(c) > first_data)
        .min_by_key(|&c| ctx.t(c))?;
    let horizon = ctx.t(close);
    let &last = f.proxy_data.iter().rev().find(|&&d| ctx.t(d) <= horizon)?;
    let t_last = ctx.t(last);
    if f.backend_data
        .iter()
        .any(|&d| ctx.t(d) > t_last && ctx.t(d) <= horizon)
    {
        return None;
    }
    let last_resp = f
        .backend_data
        .iter()
        .map(|&i| ctx.t(i))
        .filter(|&t| t < t_last)
        .max();
    let start = f
        .proxy_data
        .iter()
        .copied()
        .find(|&d| last_resp.is_none_or(|t| ctx.t(d) > t) && ctx.t(d) <= t_last)
        .unwrap_or(last);
    // The whole request: the furthest end among its segments.
    let end = f
        .proxy_data
        .iter()
        .copied()
        .filter(|&d| ctx.t(d) >= ctx.t(start) && ctx.t(d) <= t_last)
        .map(|d| seg_end(ctx, d))
        .reduce(SeqNumber::max)?;
    let ack = acked(ctx, v, end, ctx.t(start), horizon)?;
    // Acknowledged at the first try: a request the peer needed sent again
    // (a full accept queue, a lossy path) did not reach a working server.
    if sends_of(ctx, v, start, ctx.t(ack)) > 1 {
        return None;
    }
    let late = f.backend_data.iter().copied().find(|&d| ctx.t(d) > horizon);
    Some(Pending {
        start,
        last,
        ack,
        close,
        late,
    })
}

/// The pending request, shown on the owner's capture. Where the proxy's
/// capture is there it must agree: it holds everything the proxy sent,
/// where the owner's may lack segments lost on the way (and then shows a
/// smaller request, acknowledged).
pub(crate) fn pending_of<'c>(case: &Case<'c>) -> Option<(&'c NodeView, Pending)> {
    let ctx = case.ctx;
    let on_proxy = case.parts.proxy.map(|pv| pending(ctx, pv).map(|p| (pv, p)));
    if let Some(None) = on_proxy {
        return None;
    }
    case.parts
        .owner
        .and_then(|o| pending(ctx, o).map(|p| (o, p)))
        .or(on_proxy.flatten())
}

/// On a capture away from the backend (the proxy's), a request sent at most
/// this long before the backend's FIN reached it crossed the FIN in flight.
const CROSS: Duration = Duration::from_millis(100);

/// The backend's FIN on a view, read as a close of a connection whose
/// requests were all answered: (its last response, the proxy's request that
/// crossed the FIN, if one did). A request sent before the FIN reached this
/// capture (more than [`CROSS`] before, on a capture away from the backend)
/// was outstanding, not crossing: `None`.
pub(crate) fn crossing(ctx: &Ctx<'_>, v: &NodeView, fin: Pk) -> Option<(Pk, Option<Pk>)> {
    let cross = if ctx.is_backend(&v.node) {
        Duration::ZERO
    } else {
        CROSS
    };
    let tf = ctx.t(fin);
    let resp = v
        .facts
        .backend_data
        .iter()
        .copied()
        .filter(|&d| ctx.t(d) < tf)
        .max_by_key(|&d| ctx.t(d))?;
    let req = v
        .facts
        .proxy_data
        .iter()
        .copied()
        .find(|&d| ctx.t(d) > ctx.t(resp) && !is_retransmission(ctx, v, d));
    match req {
        Some(r) if ctx.t(r) <= tf - cross => None,
        _ => Some((resp, req)),
    }
}

/// The backend's first RST on a view at or after `after` (the RST that
/// followed a close, answering the request that crossed it).
pub(crate) fn rst_from(ctx: &Ctx<'_>, v: &NodeView, after: Pk) -> Option<Pk> {
    let t = ctx.t(after);
    v.facts
        .backend_rsts
        .iter()
        .copied()
        .find(|&r| ctx.t(r) >= t)
}

/// The first hit of `by` on the owner's view, then the proxy's, named for
/// the owner: the rules that read a close look where it is seen best first.
pub(crate) fn first_view(
    case: &Case<'_>,
    by: impl Fn(&Ctx<'_>, &NodeView) -> Option<RuleHit>,
) -> Option<RuleHit> {
    let parts = &case.parts;
    let owner = parts.owner.map(|o| o.node.to_string());
    parts
        .owner
        .into_iter()
        .chain(parts.proxy)
        .find_map(|v| by(case.ctx, v))
        .map(|hit| hit.owner(owner.as_deref()))
}

/// A RST this soon after the handshake's ACK, with nothing of the proxy's
/// acknowledged and no data served, answers the handshake itself.
pub(crate) const ON_ACCEPT: Duration = Duration::from_secs(1);

/// `rst` is a stateless RST the server sent within [`ON_ACCEPT`] of the
/// handshake's completion on this view, before it acknowledged any of the
/// proxy's data or sent any: the listener had no socket to give the
/// connection (`tcp_abort_on_overflow`). Returns the handshake's ACK.
pub(crate) fn reset_on_accept(ctx: &Ctx<'_>, v: &NodeView, rst: Pk) -> Option<Pk> {
    let f = &v.facts;
    let synack = f.synack?;
    let sa = ctx.pkts[synack].obs.seq;
    let ack = v.pkts.iter().copied().find(|&i| {
        let o = &ctx.pkts[i].obs;
        ctx.pkts[i].to_backend()
            && !o.flags.syn()
            && !o.flags.rst()
            && o.flags.ack()
            && o.ack == sa + 1
            && ctx.t(i) > ctx.t(synack)
    })?;
    let (ta, tr) = (ctx.t(ack), ctx.t(rst));
    if tr < ta
        || tr.saturating_duration_since(ta) > ON_ACCEPT
        || !crate::rst::form(ctx, v, rst).is_stateless()
    {
        return None;
    }
    let served = v
        .pkts
        .iter()
        .any(|&i| !ctx.pkts[i].to_backend() && ctx.pkts[i].obs.payload_len > 0 && ctx.t(i) < tr);
    let data_acked = f
        .proxy_data
        .iter()
        .any(|&d| acked(ctx, v, seg_end(ctx, d), ctx.t(d), tr).is_some());
    (!served && !data_acked).then_some(ack)
}

/// When the abort `rst` went out, its ACK field (the receiver's `rcv_nxt`)
/// covered every byte the proxy had sent: the request was whole in the
/// socket, not arriving.
pub(crate) fn request_complete_at(ctx: &Ctx<'_>, v: &NodeView, rst: Pk) -> bool {
    let tr = ctx.t(rst);
    let sent = v
        .facts
        .proxy_data
        .iter()
        .copied()
        .filter(|&d| ctx.t(d) <= tr)
        .map(|d| seg_end(ctx, d))
        .reduce(SeqNumber::max);
    sent.is_some_and(|end| end <= ctx.pkts[rst].obs.ack)
}

/// Requests the owner served on this view before `t` (requests it answered).
pub(crate) fn served_before(ctx: &Ctx<'_>, v: &NodeView, t: Timestamp) -> u32 {
    request_starts(ctx, v)
        .into_iter()
        .filter(|&s| ctx.t(s) < t)
        .filter(|&s| {
            v.facts
                .backend_data
                .iter()
                .any(|&d| ctx.t(d) > ctx.t(s) && ctx.t(d) < t)
        })
        .count() as u32
}

/// The owner's close of this view right after a response: (the close — its
/// FIN, else an abort —, requests it had served). Only for views holding
/// the handshake, where the count is whole.
pub(crate) fn close_after_response(ctx: &Ctx<'_>, v: &NodeView) -> Option<(Pk, u32)> {
    v.facts.syn?;
    let f = &v.facts;
    let close = f.backend_fin.or_else(|| {
        f.backend_rsts
            .iter()
            .copied()
            .find(|&r| crate::rst::form(ctx, v, r) == crate::rst::RstForm::Abort)
    })?;
    let tc = ctx.t(close);
    let last = f
        .backend_data
        .iter()
        .map(|&d| ctx.t(d))
        .filter(|&t| t < tc)
        .max()?;
    (tc.saturating_duration_since(last) <= AFTER_RESPONSE_MAX)
        .then(|| (close, served_before(ctx, v, tc)))
}

/// What the run shows across connections (see [`crate::ctx::RunFacts`]).
pub(crate) fn run_facts(ctx: &Ctx<'_>, conns: &[crate::conn::Conn]) -> crate::ctx::RunFacts {
    let mut facts = crate::ctx::RunFacts::default();
    for c in conns {
        let parts = Parts::of(ctx, c);
        // The owner's capture, else the proxy's (then the count is the
        // proxy's view of all backends together).
        let Some(o) = parts.owner.or(parts.proxy) else {
            continue;
        };
        if let Some((_, n)) = close_after_response(ctx, o) {
            *facts
                .closes_after
                .entry(o.node.to_string())
                .or_default()
                .entry(n)
                .or_default() += 1;
        }
    }
    facts
}

/// How many connections were closed right after exactly `n` requests, when
/// that is more than one: a request budget. Counted on `node` first; else
/// across the backends (the captures hold only the failing connections, and
/// a budget is usually the same setting on every backend of a pool).
pub(crate) fn request_budget(ctx: &Ctx<'_>, node: &str, n: u32) -> Option<u32> {
    let here = ctx
        .facts
        .closes_after
        .get(node)
        .and_then(|m| m.get(&n))
        .copied();
    let all: u32 = ctx
        .facts
        .closes_after
        .values()
        .filter_map(|m| m.get(&n))
        .sum();
    here.filter(|&k| k >= 2).or((all >= 2).then_some(all))
}

/// The peer had closed (FIN) on this view before `rst`: a RST to data after
/// one's own close is that close's consequence, not a lost socket.
pub(crate) fn after_peer_fin(ctx: &Ctx<'_>, v: &NodeView, rst: Pk) -> bool {
    v.facts.backend_fin.is_some_and(|f| ctx.t(f) <= ctx.t(rst))
}
