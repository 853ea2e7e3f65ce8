//! The packet store correlation works on: every observation once, its
//! reference-clock time, whether it is a capture duplicate, and its marks.

use crate::model::Mark;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use wiretrail_capture::Duration;
use wiretrail_capture::{Direction, PacketObs, SeqNumber, Timestamp};

/// A packet's place in the [`Store`]. Typed (rust-analyzer's `la_arena::Idx`
/// idea) so a packet's index cannot be passed where a connection's, a
/// node's or an error's is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pk(u32);

impl Pk {
    pub(crate) fn at(i: usize) -> Pk {
        // A capture-side bound keeps stores far below 2^32 packets (the
        // max-errors cap and the query windows); say so if it ever is not.
        Pk(u32::try_from(i).expect("packet store exceeds 2^32 packets"))
    }
}

/// Every observation once, indexed by [`Pk`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Store(Vec<Pkt>);

impl Store {
    /// Every packet with its index, in store order.
    pub fn indexed(&self) -> impl Iterator<Item = (Pk, &Pkt)> {
        self.0.iter().enumerate().map(|(i, p)| (Pk::at(i), p))
    }
    /// Every index, in store order.
    pub fn ids(&self) -> impl Iterator<Item = Pk> + use<> {
        (0..self.0.len()).map(Pk::at)
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Pkt> {
        self.0.iter()
    }
}

impl std::ops::Index<Pk> for Store {
    type Output = Pkt;
    fn index(&self, i: Pk) -> &Pkt {
        &self.0[i.0 as usize]
    }
}

impl std::ops::IndexMut<Pk> for Store {
    fn index_mut(&mut self, i: Pk) -> &mut Pkt {
        &mut self.0[i.0 as usize]
    }
}

impl<'a> IntoIterator for &'a Store {
    type Item = &'a Pkt;
    type IntoIter = std::slice::Iter<'a, Pkt>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a mut Store {
    type Item = &'a mut Pkt;
    type IntoIter = std::slice::IterMut<'a, Pkt>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter_mut()
    }
}

impl FromIterator<Pkt> for Store {
    fn from_iter<I: IntoIterator<Item = Pkt>>(it: I) -> Self {
        Store(it.into_iter().collect())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Pkt {
    pub obs: PacketObs,
    /// The first copy when this is the same packet recorded again by the
    /// same node.
    pub dup_of: Option<Pk>,
    /// Time on the reference clock (set once offsets are known).
    pub ref_ts: Timestamp,
    pub marks: Vec<Mark>,
}

impl Pkt {
    pub fn is_dup(&self) -> bool {
        self.dup_of.is_some()
    }
    pub fn to_backend(&self) -> bool {
        self.obs.dir == Direction::ToBackend
    }
    pub fn file(&self) -> String {
        self.obs.file.display().to_string()
    }
    pub fn mark(&mut self, m: Mark) {
        if !self.marks.contains(&m) {
            self.marks.push(m);
        }
    }
}

/// The header fields that identify one packet on the wire: TTL and checksum
/// are left out (a bond member and the bond may see different TTLs after
/// a forwarding hop; checksums may be offloaded on one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct HeaderKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ip_id: Option<u32>,
    pub flags: u16,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub len: u32,
    pub window: u16,
    pub tsval: Option<u32>,
    pub tsecr: Option<u32>,
    /// The sender's MAC: two nodes answering one VIP can emit identical
    /// RSTs within microseconds; they are two packets, not one seen twice.
    pub src_mac: Option<[u8; 6]>,
}

impl HeaderKey {
    pub fn of(o: &PacketObs) -> Self {
        HeaderKey {
            src: o.src,
            dst: o.dst,
            ip_id: o.ip_id,
            flags: o.flags.0,
            seq: o.seq,
            ack: o.ack,
            len: o.payload_len,
            window: o.window,
            tsval: o.opts.tsval,
            tsecr: o.opts.tsecr,
            src_mac: o.link.src_mac,
        }
    }
}

/// Builds the store, one observation per (node, file, frame).
pub(crate) fn store(packets: Vec<PacketObs>) -> Store {
    let mut at: HashMap<(Arc<str>, Arc<PathBuf>, u64), usize> = HashMap::new();
    let mut out: Vec<Pkt> = Vec::with_capacity(packets.len());
    for obs in packets {
        let key = (obs.node.clone(), obs.file.clone(), obs.frame);
        if let Some(&i) = at.get(&key) {
            // The same frame handed twice (tests, or another direction's
            // reading): one packet, every query it matched.
            let qs = &mut out[i].obs.queries;
            qs.extend(obs.queries);
            qs.sort_unstable();
            qs.dedup();
            continue;
        }
        at.insert(key, out.len());
        out.push(Pkt {
            ref_ts: obs.ts,
            obs,
            dup_of: None,
            marks: Vec::new(),
        });
    }
    Store(out)
}

/// LINKTYPE_LINUX_SLL2 (`tcpdump -i any` since 4.99) records the interface
/// index in bytes 4..8 of its header.
const LINKTYPE_LINUX_SLL2: u16 = 276;

/// The capturing interface, when the link header records it.
pub(crate) fn ifindex(o: &PacketObs) -> Option<u32> {
    if o.linktype != LINKTYPE_LINUX_SLL2 || o.data.len() < 8 {
        return None;
    }
    Some(u32::from_be_bytes([
        o.data[4], o.data[5], o.data[6], o.data[7],
    ]))
}

/// Marks copies of one packet recorded by ONE node within `window` of the
/// first copy. Copies on different nodes are separate observations and are
/// never touched here. Returns how many copies were found.
///
/// Identical headers are not always one packet: a stack with no socket
/// answers two stray segments with two identical RSTs. So a repeat is a
/// copy only if (a) where the link header names the interface, it was
/// captured on another one, and (b) no whole packet the other way lies
/// between the two: a packet the other way between them that has no copy,
/// or whose copy is also between them, is what provoked the repeat (the
/// second stray segment before the second RST). Under duplicate capture the
/// copy of a packet follows it within microseconds, before the next exchange.
pub(crate) fn mark_capture_duplicates(pkts: &mut Store, window: Duration) -> usize {
    let mut order: Vec<Pk> = pkts.ids().collect();
    order.sort_by(|&a, &b| {
        (pkts[a].obs.node.as_ref(), pkts[a].obs.ts, a).cmp(&(
            pkts[b].obs.node.as_ref(),
            pkts[b].obs.ts,
            b,
        ))
    });
    type Lane<'a> = (&'a str, (SocketAddr, SocketAddr), Direction);
    // Pass 1: every repeat of a header within the window of its previous
    // occurrence (and, where known, on another interface) is a candidate
    // copy; `copy_pos` says where each packet's next repeat sits.
    let mut last: HashMap<(&str, HeaderKey), (Pk, Timestamp)> = HashMap::new();
    let mut lanes: HashMap<Lane<'_>, Vec<(usize, Pk)>> = HashMap::new();
    let mut copies: HashSet<Pk> = HashSet::new();
    let mut copy_pos: HashMap<Pk, usize> = HashMap::new();
    for (pos, &i) in order.iter().enumerate() {
        let o = &pkts[i].obs;
        let key = (o.node.as_ref(), HeaderKey::of(o));
        lanes
            .entry((o.node.as_ref(), o.proxy_backend(), o.dir))
            .or_default()
            .push((pos, i));
        if let Some(&(prev, t)) = last.get(&key) {
            if o.ts.saturating_duration_since(t) <= window
                && !matches!((ifindex(&pkts[prev].obs), ifindex(o)), (Some(a), Some(b)) if a == b)
            {
                copies.insert(i);
                copy_pos.entry(prev).or_insert(pos);
            }
        }
        last.insert(key, (i, o.ts));
    }
    // Pass 2, in capture order with final decisions: a repeat is a copy of
    // the last accepted original of its header unless a whole packet the
    // other way lies between them.
    let mut accepted = Vec::new();
    let mut is_copy: HashSet<Pk> = HashSet::new();
    let mut orig: HashMap<(&str, HeaderKey), (Pk, Timestamp, usize)> = HashMap::new();
    for (pos, &i) in order.iter().enumerate() {
        let o = &pkts[i].obs;
        let key = (o.node.as_ref(), HeaderKey::of(o));
        let copy_of = match orig.get(&key) {
            Some(&(first, t, first_pos))
                if copies.contains(&i)
                    && o.ts.saturating_duration_since(t) <= window
                    && !matches!((ifindex(&pkts[first].obs), ifindex(o)), (Some(a), Some(b)) if a == b) =>
            {
                let other = match o.dir {
                    Direction::ToBackend => Direction::ToProxy,
                    Direction::ToProxy => Direction::ToBackend,
                };
                let whole_between = lanes
                    .get(&(o.node.as_ref(), o.proxy_backend(), other))
                    .is_some_and(|lane| {
                        let from = lane.partition_point(|&(p, _)| p <= first_pos);
                        lane[from..]
                            .iter()
                            .take_while(|&&(p, _)| p < pos)
                            .any(|&(_, j)| {
                                // An original the other way in between whose own
                                // copy is missing or also in between: a whole
                                // exchange happened, so this repeat is new.
                                !is_copy.contains(&j) && copy_pos.get(&j).is_none_or(|&cp| cp < pos)
                            })
                    });
                (!whole_between).then_some(first)
            }
            _ => None,
        };
        match copy_of {
            Some(first) => {
                is_copy.insert(i);
                accepted.push((i, first));
            }
            None => {
                orig.insert(key, (i, o.ts, pos));
            }
        }
    }
    let n = accepted.len();
    for (i, first) in accepted {
        pkts[i].dup_of = Some(first);
        pkts[i].mark(Mark::CaptureDuplicate);
    }
    n
}
