//! Per-node connection rebuild.
//!
//! Packets are grouped by 4-tuple and node, split into connection
//! *instances* (ephemeral ports are reused: a SYN with a new ISN starts a new
//! one), and the instances seen by different nodes are joined into one
//! [`Conn`] by the proxy's sequence space: the node that saw the handshake
//! knows the ISN, a node that saw only a stray segment has a sequence number
//! a few KB above it. Each node's view is then analysed on its own: Zeek's
//! `conn_state` and `history`, and the per-packet marks.

use crate::model::{ConnState, Mark};
use crate::packets::{Pk, Store};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use wiretrail_capture::{Duration, SeqNumber, Timestamp};

/// (proxy socket, backend socket).
pub(crate) type Tuple = (SocketAddr, SocketAddr);

/// A segment this far above a connection's ISN belongs to it whatever the
/// time between (16 MiB of one connection's bytes: far below the 2^32
/// space where an unrelated ISN would land at random).
const SEQ_JOIN_BYTES: u32 = 1 << 24;

/// What one node's view of a connection shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct ViewFacts {
    /// Packet indices of the proxy's SYN and the backend's SYN-ACK.
    pub syn: Option<Pk>,
    pub synack: Option<Pk>,
    pub handshake_seen: bool,
    pub conn_state: ConnState,
    pub history: String,
    pub to_backend: usize,
    pub proxy_data: Vec<Pk>,
    pub backend_data: Vec<Pk>,
    /// The backend answered with something other than RST (it had state).
    pub backend_stateful: bool,
    pub backend_rsts: Vec<Pk>,
    pub proxy_rsts: Vec<Pk>,
    pub backend_fin: Option<Pk>,
    pub proxy_fin: Option<Pk>,
    /// Backend ACKs of proxy bytes this node never saw: (packet, from, to).
    pub acked_unseen: Vec<(Pk, SeqNumber, SeqNumber)>,
    pub path_anomalies: Vec<Pk>,
}

/// One connection instance: its position among those [`build`] returns,
/// typed so that it cannot be taken for an error's, a query's or a
/// packet's index. Indexes `[Conn]` (and the per-connection findings)
/// directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ConnId(u32);

impl ConnId {
    /// The `i`-th connection; there are fewer connections than packets,
    /// which [`Pk`] already bounds to 2^32.
    pub fn at(i: usize) -> ConnId {
        ConnId(u32::try_from(i).expect("more than 2^32 connections"))
    }
    /// Every id of `n` connections, in build order.
    pub fn all(n: usize) -> impl Iterator<Item = ConnId> {
        (0..n).map(ConnId::at)
    }
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// `conns[id]`, `conn_findings[id]`: the slices and vectors that hold one
/// entry per connection.
macro_rules! index_by_conn {
    ($($t:ty),+) => {$(
        impl std::ops::Index<ConnId> for [$t] {
            type Output = $t;
            fn index(&self, i: ConnId) -> &$t {
                &self[i.index()]
            }
        }
        impl std::ops::Index<ConnId> for Vec<$t> {
            type Output = $t;
            fn index(&self, i: ConnId) -> &$t {
                &self[i.index()]
            }
        }
    )+};
}

index_by_conn!(Conn, Vec<crate::model::Finding>);

#[derive(Debug, Clone)]
pub(crate) struct NodeView {
    pub node: Arc<str>,
    /// Distinct packets, in capture order.
    pub pkts: Vec<Pk>,
    /// Capture duplicates of those packets.
    pub dups: Vec<Pk>,
    pub first_ref: Timestamp,
    pub last_ref: Timestamp,
    pub facts: ViewFacts,
}

/// One connection instance across every node that saw part of it.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub tuple: Tuple,
    pub proxy_isn: Option<SeqNumber>,
    pub backend_isn: Option<SeqNumber>,
    pub views: Vec<NodeView>,
    pub first_ref: Timestamp,
    pub last_ref: Timestamp,
    /// Queries whose packets are in it.
    pub queries: BTreeSet<usize>,
}

struct Inst {
    node: Arc<str>,
    tuple: Tuple,
    pkts: Vec<Pk>,
    syn_seq: Option<SeqNumber>,
    last_tb_seq: Option<SeqNumber>,
}

/// Groups packets (reference times already set) into connections.
/// `tol` is how far apart in time two nodes' parts of one connection may
/// appear (clock uncertainty).
pub(crate) fn build(pkts: &mut Store, tol: Duration) -> Vec<Conn> {
    let mut groups: BTreeMap<(Tuple, Arc<str>), Vec<Pk>> = BTreeMap::new();
    for (i, p) in pkts.indexed().filter(|(_, p)| !p.is_dup()) {
        groups
            .entry((p.obs.proxy_backend(), p.obs.node.clone()))
            .or_default()
            .push(i);
    }
    let mut insts: Vec<Inst> = Vec::new();
    for ((tuple, node), mut idx) in groups {
        idx.sort_by_key(|&i| (pkts[i].obs.ts, pkts[i].obs.frame));
        let mut cur: Option<Inst> = None;
        for i in idx {
            let o = &pkts[i].obs;
            let tb = pkts[i].to_backend();
            let pure_syn = tb && o.flags.syn() && !o.flags.ack();
            let split = cur.as_ref().is_some_and(|c| {
                if pure_syn {
                    c.syn_seq != Some(o.seq)
                } else {
                    tb && !o.flags.rst()
                        && c.last_tb_seq.is_some_and(|s| s.distance(o.seq) > 1 << 30)
                }
            });
            if split {
                insts.extend(cur.take());
            }
            let c = cur.get_or_insert_with(|| Inst {
                node: node.clone(),
                tuple,
                pkts: Vec::new(),
                syn_seq: None,
                last_tb_seq: None,
            });
            if pure_syn {
                c.syn_seq = Some(o.seq);
            }
            if tb && !o.flags.rst() {
                c.last_tb_seq = Some(o.seq);
            }
            c.pkts.push(i);
        }
        insts.extend(cur);
    }

    let span = |inst: &Inst| {
        let f = inst
            .pkts
            .iter()
            .map(|&i| pkts[i].ref_ts)
            .min()
            .unwrap_or(Timestamp::EPOCH);
        let l = inst
            .pkts
            .iter()
            .map(|&i| pkts[i].ref_ts)
            .max()
            .unwrap_or(Timestamp::EPOCH);
        (f, l)
    };
    let mut conns: Vec<Conn> = Vec::new();
    // Instances with a handshake define connections; the rest join them.
    insts.sort_by_key(|i| i.syn_seq.is_none());
    for inst in insts {
        let (f, l) = span(&inst);
        let anchor = inst
            .pkts
            .iter()
            .find(|&&i| pkts[i].to_backend() && !pkts[i].obs.flags.rst())
            .map(|&i| pkts[i].obs.seq)
            .or_else(|| {
                inst.pkts
                    .iter()
                    .find(|&&i| !pkts[i].to_backend() && pkts[i].obs.flags.ack())
                    .map(|&i| pkts[i].obs.ack)
            });
        let overlaps = |c: &Conn| f <= c.last_ref + tol && l >= c.first_ref - tol;
        let target = match inst.syn_seq {
            Some(isn) => conns
                .iter()
                .position(|c| c.tuple == inst.tuple && c.proxy_isn == Some(isn)),
            // Without a handshake of its own, an instance joins the
            // connection of its 4-tuple that overlaps it in time; or, when
            // its sequence numbers sit just above a connection's ISN, that
            // connection even after a long silence (a keep-alive connection
            // idle for minutes whose next segment went to another node: an
            // ECMP rehash). The nearest ISN below wins, then the nearest start.
            None => conns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.tuple == inst.tuple)
                .filter_map(|(i, c)| {
                    let by_seq = match (anchor, c.proxy_isn) {
                        (Some(a), Some(isn)) if a.since(isn) < 1 << 30 => Some(a.since(isn)),
                        (Some(_), Some(_)) => return None,
                        (Some(a), None) => match conn_anchor(c, pkts) {
                            Some(b) if a.distance(b) < 1 << 24 => None,
                            Some(_) => return None,
                            None => None,
                        },
                        (None, _) => None,
                    };
                    let joins = overlaps(c)
                        || by_seq.is_some_and(|d| d < SEQ_JOIN_BYTES && f >= c.first_ref - tol);
                    joins.then_some((i, by_seq.unwrap_or(u32::MAX), f.abs_diff(c.first_ref)))
                })
                .min_by_key(|&(_, d, dt)| (d, dt))
                .map(|(i, _, _)| i),
        };
        let view = NodeView {
            node: inst.node.clone(),
            pkts: inst.pkts,
            dups: Vec::new(),
            first_ref: f,
            last_ref: l,
            facts: ViewFacts::default(),
        };
        match target {
            Some(t) => {
                let c = &mut conns[t];
                c.first_ref = c.first_ref.min(f);
                c.last_ref = c.last_ref.max(l);
                if let Some(v) = c.views.iter_mut().find(|v| v.node == view.node) {
                    v.pkts.extend(view.pkts);
                    v.pkts.sort_by_key(|&i| (pkts[i].obs.ts, pkts[i].obs.frame));
                    v.first_ref = v.first_ref.min(f);
                    v.last_ref = v.last_ref.max(l);
                } else {
                    c.views.push(view);
                }
            }
            None => conns.push(Conn {
                tuple: inst.tuple,
                proxy_isn: inst.syn_seq,
                backend_isn: None,
                views: vec![view],
                first_ref: f,
                last_ref: l,
                queries: BTreeSet::new(),
            }),
        }
    }

    // Duplicates follow their first copy.
    let mut home: HashMap<Pk, (usize, usize)> = HashMap::new();
    for (ci, c) in conns.iter().enumerate() {
        for (vi, v) in c.views.iter().enumerate() {
            for &p in &v.pkts {
                home.insert(p, (ci, vi));
            }
        }
    }
    for (i, p) in pkts.indexed() {
        if let Some(orig) = p.dup_of {
            if let Some(&(ci, vi)) = home.get(&orig) {
                conns[ci].views[vi].dups.push(i);
            }
        }
    }

    for c in &mut conns {
        c.views.sort_by(|a, b| a.node.cmp(&b.node));
        c.backend_isn = c.views.iter().find_map(|v| {
            v.pkts
                .iter()
                .find(|&&i| {
                    !pkts[i].to_backend() && pkts[i].obs.flags.syn() && pkts[i].obs.flags.ack()
                })
                .map(|&i| pkts[i].obs.seq)
        });
        for v in &c.views {
            for &i in &v.pkts {
                c.queries.extend(pkts[i].obs.queries.iter().copied());
            }
        }
        for v in &mut c.views {
            v.facts = analyse(pkts, &v.pkts);
        }
    }
    conns.sort_by_key(|c| (c.first_ref, c.tuple));
    conns
}

fn conn_anchor(c: &Conn, pkts: &Store) -> Option<SeqNumber> {
    c.views.iter().find_map(|v| {
        v.pkts
            .iter()
            .find(|&&i| pkts[i].to_backend() && !pkts[i].obs.flags.rst())
            .map(|&i| pkts[i].obs.seq)
    })
}

/// Zeek's per-endpoint TCP states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// Source MAC, destination MAC, VLAN, TTL.
type PathKey = (Option<[u8; 6]>, Option<[u8; 6]>, Option<u16>, u8);

#[derive(Debug, Clone, Default)]
struct DirState {
    seen: bool,
    max_end: SeqNumber,
    holes: Vec<(SeqNumber, SeqNumber)>,
    last_ack: Option<SeqNumber>,
    last_win: u16,
    path: Option<PathKey>,
    bytes: u64,
}

/// Analyses one node's view: marks on its packets, Zeek state and history.
pub(crate) fn analyse(pkts: &mut Store, view: &[Pk]) -> ViewFacts {
    let mut f = ViewFacts::default();
    let mut st = [DirState::default(), DirState::default()];
    let mut ep = [Ep::Inactive, Ep::Inactive];
    let mut hist: [Vec<char>; 2] = [Vec::new(), Vec::new()];
    let mut history = String::new();
    for &i in view {
        let p = &pkts[i];
        let o = &p.obs;
        let d = usize::from(!p.to_backend());
        let od = 1 - d;
        let fl = o.flags;
        let mut marks = Vec::new();
        let mut letters = Vec::new();

        // Sequence space: retransmission / out of order.
        let seg_len = o.payload_len + u32::from(fl.syn()) + u32::from(fl.fin());
        if seg_len > 0 && !fl.rst() {
            let end = o.seq + seg_len;
            let s = &mut st[d];
            if !s.seen {
                s.seen = true;
                s.max_end = end;
            } else if end > s.max_end {
                if o.seq > s.max_end {
                    s.holes.push((s.max_end, o.seq));
                }
                s.max_end = end;
            } else if let Some(h) = s.holes.iter().position(|&(a, b)| a <= o.seq && b > o.seq) {
                marks.push(Mark::OutOfOrder);
                let (a, b) = s.holes.remove(h);
                if o.seq > a {
                    s.holes.push((a, o.seq));
                }
                if b > end {
                    s.holes.push((end, b));
                }
            } else {
                marks.push(Mark::Retransmission);
                letters.push('T');
            }
            s.bytes += u64::from(o.payload_len);
        } else if !fl.rst() && !st[d].seen {
            st[d].seen = true;
            st[d].max_end = o.seq;
        }

        // Acknowledgements.
        if fl.ack() && !fl.rst() {
            if st[od].seen && o.ack > st[od].max_end {
                marks.push(Mark::AckedUnseen);
                if d == 1 {
                    f.acked_unseen.push((i, st[od].max_end, o.ack));
                }
                let from = st[od].max_end;
                st[od].holes.push((from, o.ack));
                st[od].max_end = o.ack;
            }
            if seg_len == 0
                && st[d].last_ack == Some(o.ack)
                && st[d].last_win == o.window
                && st[od].seen
            {
                marks.push(Mark::DupAck);
            }
            st[d].last_ack = Some(o.ack);
            st[d].last_win = o.window;
        }
        if o.window == 0 && !fl.rst() && !fl.syn() {
            marks.push(Mark::ZeroWindow);
            letters.push('W');
        }

        // Path: MACs, VLAN, TTL per direction.
        let path = (o.link.src_mac, o.link.dst_mac, o.link.vlan, o.ttl);
        match st[d].path {
            Some(prev) if prev != path => {
                marks.push(Mark::PathAnomaly);
                f.path_anomalies.push(i);
                st[d].path = Some(path);
            }
            None => st[d].path = Some(path),
            _ => {}
        }

        // Zeek endpoint states and history letters.
        if fl.syn() {
            letters.insert(0, if fl.ack() { 'H' } else { 'S' });
        } else if o.payload_len > 0 {
            letters.insert(0, 'D');
        } else if fl.ack() && !fl.fin() && !fl.rst() {
            letters.insert(0, 'A');
        }
        if fl.fin() {
            letters.push('F');
        }
        if fl.rst() {
            letters.push('R');
        }
        if fl.rst() {
            ep[d] = Ep::Reset;
        } else if fl.syn() && !fl.ack() {
            if ep[d] == Ep::Inactive {
                ep[d] = Ep::SynSent;
            }
        } else if fl.syn() && fl.ack() {
            if ep[d] == Ep::Inactive {
                ep[d] = Ep::SynAckSent;
            }
            if ep[od] == Ep::SynSent {
                ep[od] = Ep::Established;
                ep[d] = Ep::Established;
            }
        } else {
            if ep[d] == Ep::Inactive {
                ep[d] = Ep::Partial;
            }
            if fl.fin() && ep[d] != Ep::Reset {
                ep[d] = Ep::Closed;
            }
        }
        // Zeek records each letter once per direction, upper case for the
        // originator (the proxy).
        for l in letters {
            if !hist[d].contains(&l) {
                hist[d].push(l);
                history.push(if d == 0 { l } else { l.to_ascii_lowercase() });
            }
        }

        // Facts.
        if d == 0 {
            f.to_backend += 1;
            if fl.syn() && !fl.ack() && f.syn.is_none() {
                f.syn = Some(i);
            }
            if o.payload_len > 0 {
                f.proxy_data.push(i);
            }
            if fl.rst() {
                f.proxy_rsts.push(i);
            }
            if fl.fin() && f.proxy_fin.is_none() {
                f.proxy_fin = Some(i);
            }
        } else {
            if fl.syn() && fl.ack() && f.synack.is_none() {
                f.synack = Some(i);
            }
            if !fl.rst() {
                f.backend_stateful = true;
            }
            if o.payload_len > 0 {
                f.backend_data.push(i);
            }
            if fl.rst() {
                f.backend_rsts.push(i);
            }
            if fl.fin() && f.backend_fin.is_none() {
                f.backend_fin = Some(i);
            }
        }
        for m in marks {
            pkts[i].mark(m);
        }
    }
    f.handshake_seen = f.syn.is_some() && f.synack.is_some();
    f.history = history;
    f.conn_state = zeek_conn_state(ep[0], ep[1], &f.history, st[0].bytes, st[1].bytes);
    f
}

/// Zeek's `conn_state` (base/protocols/conn/main.zeek), from the two
/// endpoint states.
fn zeek_conn_state(os: Ep, rs: Ep, history: &str, osize: u64, rsize: u64) -> ConnState {
    let o_inactive = matches!(os, Ep::Inactive | Ep::Partial);
    let r_inactive = matches!(rs, Ep::Inactive | Ep::Partial);
    if rs == Ep::Reset {
        if matches!(os, Ep::SynSent | Ep::SynAckSent)
            || (os == Ep::Reset && osize == 0 && rsize == 0)
        {
            // Zeek requires the SYN to be seen for REJ; a reset with no
            // data on either side after a bare SYN is the same thing.
            if os == Ep::Reset && !history.starts_with('S') {
                return if o_inactive {
                    ConnState::Rstrh
                } else {
                    ConnState::Rstr
                };
            }
            return ConnState::Rej;
        }
        return if o_inactive {
            ConnState::Rstrh
        } else {
            ConnState::Rstr
        };
    }
    if os == Ep::Reset {
        if r_inactive {
            let h = history.trim_start_matches('^');
            if h.starts_with('S')
                && h[1..]
                    .chars()
                    .take_while(|c| !"HAFGIQ".contains(*c))
                    .any(|c| c == 'R')
            {
                return ConnState::Rstos0;
            }
            return ConnState::Oth;
        }
        return ConnState::Rsto;
    }
    match (os, rs) {
        (Ep::Closed, Ep::Closed) => ConnState::Sf,
        (Ep::Closed, _) => {
            if r_inactive {
                ConnState::Sh
            } else {
                ConnState::S2
            }
        }
        (_, Ep::Closed) => {
            if o_inactive {
                ConnState::Shr
            } else {
                ConnState::S3
            }
        }
        (Ep::SynSent, Ep::Inactive) => ConnState::S0,
        (Ep::Established, Ep::Established) => ConnState::S1,
        _ => ConnState::Oth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_ids_index_connections_and_their_findings() {
        let findings: Vec<Vec<crate::model::Finding>> = vec![Vec::new(), Vec::new()];
        let ids: Vec<ConnId> = ConnId::all(findings.len()).collect();
        assert_eq!(ids.iter().map(|c| c.index()).collect::<Vec<_>>(), [0, 1]);
        assert!(findings[ids[1]].is_empty());
        assert!(ConnId::at(3) > ConnId::at(2));
    }
}
