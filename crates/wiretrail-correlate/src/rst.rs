//! RST provenance: who sent a RST and in what state.
//!
//! A node with no socket for the connection answers a segment with a RST
//! whose seq is the ACK of that segment (or seq 0 and ack = seq + len when
//! the segment had no ACK, RFC 793); the owner aborting mid-request sends
//! its own snd_nxt with state behind it; a backend that has already sent FIN
//! answers late data with RST; a closed port answers a SYN with RST/ACK.

use crate::conn::NodeView;
use crate::diagnose::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RstKind {
    /// The proxy reset the connection.
    ProxyAbort,
    /// From a node with no socket: seq = ACK of the segment it answers.
    Stateless,
    /// SYN answered by RST/ACK.
    Refused,
    /// The backend had sent FIN; data that came later is answered by RST.
    IdleClose,
    /// The owner, with state, aborted mid-connection.
    AppAbort,
}

/// Classifies one RST of a view, with a note saying why.
pub(crate) fn classify_rst(
    ctx: &Ctx<'_>,
    v: &NodeView,
    i: usize,
    stray: bool,
) -> (RstKind, String) {
    let p = &ctx.pkts[i];
    if p.to_backend() {
        return (
            RstKind::ProxyAbort,
            format!(
                "RST from the proxy seq={} (the proxy abandoned the connection)",
                p.obs.seq
            ),
        );
    }
    let f = &v.facts;
    // The segment it answers: the last proxy segment before it on this node.
    let answered = v
        .pkts
        .iter()
        .take_while(|&&j| j != i)
        .filter(|&&j| ctx.pkts[j].to_backend() && !ctx.pkts[j].obs.flags.rst())
        .last()
        .copied();
    if let (Some(syn), None) = (f.syn, f.synack) {
        if p.obs.flags.ack() && p.obs.ack == ctx.pkts[syn].obs.seq.wrapping_add(1) {
            return (
                RstKind::Refused,
                format!(
                    "RST/ACK answering the SYN (frame {}): port closed",
                    ctx.pkts[syn].obs.frame
                ),
            );
        }
    }
    if stray {
        let how = match answered {
            Some(a) if ctx.pkts[a].obs.flags.ack() && p.obs.seq == ctx.pkts[a].obs.ack => format!(
                "seq={} equals the ACK of the segment it answers (frame {}): a stateless reply from a node with no socket for this connection",
                p.obs.seq, ctx.pkts[a].obs.frame
            ),
            Some(a)
                if !ctx.pkts[a].obs.flags.ack()
                    && p.obs.seq == 0
                    && p.obs.ack
                        == ctx.pkts[a].obs.seq.wrapping_add(ctx.pkts[a].obs.payload_len) =>
            {
                format!(
                    "seq=0, ack=seq+len of frame {} (RFC 793 reply to a segment without ACK): no socket",
                    ctx.pkts[a].obs.frame
                )
            }
            _ => "from a node that never saw the handshake and never answered with state".into(),
        };
        return (RstKind::Stateless, how);
    }
    if let Some(fin) = f.backend_fin {
        if ctx.t(fin) <= ctx.t(i) {
            return (
                RstKind::IdleClose,
                format!(
                    "after the backend's own FIN (frame {}): data arrived on a socket it had closed",
                    ctx.pkts[fin].obs.frame
                ),
            );
        }
    }
    (
        RstKind::AppAbort,
        format!(
            "from the node that owns the connection (it had answered with state): an application abort seq={}",
            p.obs.seq
        ),
    )
}

pub(crate) fn rst_word(k: RstKind) -> &'static str {
    match k {
        RstKind::ProxyAbort => "proxy abort",
        RstKind::Stateless => "stateless RST (no socket on this node)",
        RstKind::Refused => "refused (RST/ACK to SYN)",
        RstKind::IdleClose => "idle close (RST after the backend's FIN)",
        RstKind::AppAbort => "application abort by the owner",
    }
}
