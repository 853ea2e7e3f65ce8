//! RST provenance: how a RST is built says what state its sender had.
//!
//! - A stack with **no socket** for a segment answers it as RFC 793 says:
//!   `<SEQ=SEG.ACK><CTL=RST>` (no ACK flag) when the segment carried an ACK,
//!   `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` when it did not (Linux
//!   `tcp_v4_send_reset`; nftables `reject with tcp reset` builds the same).
//!   A stray node, a restarted host and a firewall that forgot the flow all
//!   answer this way: the form proves "no state", not who.
//! - A closed port answers a SYN with RST/ACK acknowledging SYN+1.
//! - A stack that **had** the socket and aborts it (`SO_LINGER 0`, close with
//!   unread data, `tcp_abort`) sends RST|ACK with its own send sequence.

use crate::conn::NodeView;
use crate::ctx::{Ctx, Pk};
use wiretrail_capture::{Duration, SeqNumber};

/// How a RST from the backend side is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RstForm {
    /// RST/ACK acknowledging the proxy's SYN: nothing listens on the port.
    Refusal { syn: Pk },
    /// `seq` = the ACK of the segment it answers, no ACK flag: the reply of
    /// a stack with no socket for the connection.
    Stateless { answers: Pk },
    /// `seq` 0, `ack` = seq + len of a segment without ACK: the same reply
    /// to a segment that carried no ACK.
    StatelessToNoAck { answers: Pk },
    /// RST|ACK in the sender's own sequence space: a stack that had the
    /// socket aborted it.
    Abort,
    /// None of the above could be checked: the segment it answers is not in
    /// this capture.
    Unmatched,
}

impl RstForm {
    pub fn is_stateless(self) -> bool {
        matches!(
            self,
            RstForm::Stateless { .. } | RstForm::StatelessToNoAck { .. }
        )
    }

    pub fn answers(self) -> Option<Pk> {
        match self {
            RstForm::Stateless { answers } | RstForm::StatelessToNoAck { answers } => Some(answers),
            RstForm::Refusal { syn } => Some(syn),
            RstForm::Abort | RstForm::Unmatched => None,
        }
    }
}

/// How far back the segment a RST answers may lie (a burst of segments
/// shares one ACK value; a RST answers the first that reached the sender).
const ANSWER_HORIZON: Duration = Duration::from_secs(3);

/// Classifies a RST sent towards the proxy (`rst`) against the proxy's
/// segments in the same view.
pub(crate) fn form(ctx: &Ctx<'_>, v: &NodeView, rst: Pk) -> RstForm {
    let r = &ctx.pkts[rst].obs;
    let tr = ctx.t(rst);
    let before = || {
        v.pkts
            .iter()
            .rev()
            .copied()
            .filter(move |&j| ctx.t(j) <= tr && j != rst)
            .take_while(move |&j| tr.saturating_duration_since(ctx.t(j)) <= ANSWER_HORIZON)
            .filter(|&j| ctx.pkts[j].to_backend() && !ctx.pkts[j].obs.flags.rst())
    };
    // A refusal: RST/ACK acknowledging a SYN.
    if r.flags.ack() {
        if let Some(syn) = before().find(|&j| {
            let s = &ctx.pkts[j].obs;
            s.flags.syn() && !s.flags.ack() && r.ack == s.seq + 1
        }) {
            return RstForm::Refusal { syn };
        }
    }
    if !r.flags.ack() {
        if let Some(a) = before().find(|&j| {
            let s = &ctx.pkts[j].obs;
            s.flags.ack() && s.ack == r.seq
        }) {
            return RstForm::Stateless { answers: a };
        }
    } else if r.seq == SeqNumber(0) {
        if let Some(a) = before().find(|&j| {
            let s = &ctx.pkts[j].obs;
            !s.flags.ack()
                && r.ack
                    == s.seq + (s.payload_len + u32::from(s.flags.syn()) + u32::from(s.flags.fin()))
        }) {
            return RstForm::StatelessToNoAck { answers: a };
        }
    }
    if r.flags.ack() && before().next().is_some() {
        return RstForm::Abort;
    }
    RstForm::Unmatched
}

/// Where a RST that reached the proxy was sent from.
#[derive(Debug, Clone)]
pub(crate) enum RstSender<'c> {
    /// The same packet is in this backend's capture (`.1`: its copy there).
    Node(&'c NodeView, Pk),
    /// No backend capture holds it. `covered`: backends whose captures
    /// cover the moment (so they did not send it); `blind`: backends that
    /// might have, unseen.
    NotCaptured {
        covered: Vec<String>,
        blind: Vec<String>,
    },
}

/// The same packet seen by two nodes (the header fields a forwarder keeps).
pub(crate) fn same_packet(ctx: &Ctx<'_>, a: Pk, b: Pk) -> bool {
    let (x, y) = (&ctx.pkts[a].obs, &ctx.pkts[b].obs);
    x.dir == y.dir
        && x.seq == y.seq
        && x.ack == y.ack
        && x.flags == y.flags
        && x.payload_len == y.payload_len
        && x.ip_id == y.ip_id
}

/// Finds who sent `rst` (a RST in the proxy's capture) among the backend
/// views of its connection, and which backends can vouch they did not.
pub(crate) fn sender<'c>(ctx: &Ctx<'_>, backends: &[&'c NodeView], rst: Pk) -> RstSender<'c> {
    let tr = ctx.t(rst);
    for v in backends {
        if let Some(&j) = v.pkts.iter().find(|&&j| same_packet(ctx, rst, j)) {
            return RstSender::Node(v, j);
        }
    }
    let mut covered = Vec::new();
    let mut blind = Vec::new();
    let mut names: Vec<&str> = ctx.backend_nodes().collect();
    names.sort_unstable();
    for n in names {
        // A backend's view of the moment: a small window around the RST
        // (its clock is aligned already; widen for its uncertainty).
        match ctx.sight(n, tr - Duration::from_secs(1), tr + Duration::from_secs(1)) {
            crate::ctx::Sight::Covered => covered.push(n.to_string()),
            _ => blind.push(n.to_string()),
        }
    }
    RstSender::NotCaptured { covered, blind }
}
