//! The read-only context every diagnosis rule, finding and time join works
//! over: the packet store, what is known about each node (role, coverage,
//! lost capture data, clock offset), and facts derived once for the whole
//! run (whether source MACs tell the backends apart at the proxy).
//!
//! It sits at the crate root so that rules, RST provenance and findings all
//! read it without importing each other (rust-analyzer's
//! `DiagnosticsContext`). Nothing here decides a cause.

use crate::clock::Clock;
use crate::config::{CaptureLoss, NodeInput};
use crate::conn::{Conn, NodeView};
use crate::model::{Evidence, NodeName, NodeRole, Origin};
use crate::packets::{Pkt, Store};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use wiretrail_capture::{Direction, Duration, Timestamp};

/// Without coverage information, a node is taken to watch a moment when it
/// captured anything this close to it.
const UNKNOWN_COVERAGE_SLACK: Duration = Duration::from_secs(10);

pub(crate) use crate::packets::Pk;

pub(crate) fn time(ns: Timestamp) -> DateTime<Utc> {
    ns.to_utc()
}

/// Where the packets of one node sit on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The proxy's own capture: an observer of both directions on the
    /// proxy's wire, never an owner.
    Proxy,
    /// A node that answers for the backend (role `backend`, or `other`,
    /// which is taken as a possible backend).
    Backend,
    /// A switch or other observer in the path.
    Observer,
}

/// What one node's capture can say about a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Sight<'a> {
    /// The node's captures cover it: absence of a packet there is evidence.
    Covered,
    /// Capture data of that stretch is known lost.
    Lost(&'a CaptureLoss),
    /// The node's captures do not cover it: absence proves nothing.
    Blind,
}

/// The sender of a packet as the proxy's wire saw it: the link-layer
/// source and the TTL left when it arrived. Two senders at the same hop
/// distance share a TTL; a device one hop nearer or farther does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint {
    pub mac: Option<[u8; 6]>,
    pub ttl: u8,
}

impl Fingerprint {
    pub fn of(p: &Pkt) -> Self {
        Fingerprint {
            mac: p.obs.link.src_mac,
            ttl: p.obs.ttl,
        }
    }
}

/// Facts about the whole run that single connections cannot show, read by
/// the rules (filled by [`crate::rules::run_facts`]).
#[derive(Debug, Default)]
pub(crate) struct RunFacts {
    /// Per backend node: request count → how many of its connections it
    /// closed right after serving exactly that many (a request budget shows
    /// as one count that keeps coming back).
    pub closes_after: HashMap<String, std::collections::BTreeMap<u32, u32>>,
}

pub(crate) struct Ctx<'a> {
    pub pkts: &'a Store,
    pub facts: RunFacts,
    nodes: HashMap<&'a str, &'a NodeInput>,
    clock: &'a Clock,
    /// Per node, its packets' reference times, sorted: "did it capture
    /// anything then" when its coverage is unknown.
    times: HashMap<&'a str, Vec<Timestamp>>,
    /// Backend addresses whose packets reach the proxy's capture from two or
    /// more source MACs: there, a MAC names one backend host (a shared VIP
    /// on one L2 segment, or ECMP to the hosts themselves). Behind a router
    /// every backend has the router's MAC and a MAC proves nothing.
    mac_names_host: BTreeSet<IpAddr>,
}

impl<'a> Ctx<'a> {
    pub fn new(pkts: &'a Store, nodes: &'a [NodeInput], clock: &'a Clock) -> Self {
        let mut times: HashMap<&str, Vec<Timestamp>> = HashMap::new();
        for p in pkts {
            times.entry(p.obs.node.as_ref()).or_default().push(p.ref_ts);
        }
        for v in times.values_mut() {
            v.sort_unstable();
        }
        let nodes: HashMap<&str, &NodeInput> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let mut macs: HashMap<IpAddr, BTreeSet<[u8; 6]>> = HashMap::new();
        for p in pkts.iter().filter(|p| !p.is_dup()) {
            let proxy_side = nodes
                .get(p.obs.node.as_ref())
                .is_some_and(|n| n.role == NodeRole::Proxy);
            if proxy_side && p.obs.dir == Direction::ToProxy && !p.obs.flags.rst() {
                if let Some(m) = p.obs.link.src_mac {
                    macs.entry(p.obs.src.ip()).or_default().insert(m);
                }
            }
        }
        let mac_names_host = macs
            .into_iter()
            .filter(|(_, s)| s.len() >= 2)
            .map(|(ip, _)| ip)
            .collect();
        Ctx {
            pkts,
            facts: RunFacts::default(),
            nodes,
            clock,
            times,
            mac_names_host,
        }
    }

    pub fn t(&self, i: Pk) -> Timestamp {
        self.pkts[i].ref_ts
    }

    pub fn side(&self, node: &str) -> Side {
        match self.nodes.get(node).map_or(NodeRole::Other, |n| n.role) {
            NodeRole::Proxy => Side::Proxy,
            NodeRole::Backend | NodeRole::Other => Side::Backend,
            NodeRole::Switch => Side::Observer,
        }
    }

    pub fn is_backend(&self, node: &str) -> bool {
        self.side(node) == Side::Backend
    }

    /// Every node declared as a possible backend.
    pub fn backend_nodes(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n.role, NodeRole::Backend | NodeRole::Other))
            .map(|(k, _)| *k)
    }

    /// What `node`'s captures say about `[since, until]` (reference clock).
    pub fn sight(&self, node: &str, since: Timestamp, until: Timestamp) -> Sight<'a> {
        let Some(n) = self.nodes.get(node) else {
            return Sight::Blind;
        };
        let off = self.clock.skew(node);
        let (a, b) = (since - off, until - off);
        if let Some(l) = n.losses.iter().find(|l| match l.span {
            Some((s, e)) => s <= b && e >= a,
            None => true,
        }) {
            return Sight::Lost(l);
        }
        let covered = match n.covers(a, b) {
            Some(c) => c && n.coverage.iter().any(|&(s, e)| s <= a && e >= b),
            // Coverage unknown (no catalog, a hand-built input): a node that
            // captured anything around the moment is taken as watching it.
            None => self.times.get(node).is_some_and(|v| {
                let i = v.partition_point(|&t| t < since - UNKNOWN_COVERAGE_SLACK);
                i < v.len() && v[i] <= until + UNKNOWN_COVERAGE_SLACK
            }),
        };
        if covered {
            Sight::Covered
        } else {
            Sight::Blind
        }
    }

    /// The first capture loss of any node that meets `[since, until]`.
    pub fn loss_between(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Option<(&'a str, &'a CaptureLoss)> {
        let mut names: Vec<&&str> = self.nodes.keys().collect();
        names.sort();
        names
            .into_iter()
            .find_map(|n| match self.sight(n, since, until) {
                Sight::Lost(l) => Some((*n, l)),
                _ => None,
            })
    }

    /// At the proxy, does the source MAC of packets from `ip` name one host?
    pub fn mac_names_host(&self, ip: IpAddr) -> bool {
        self.mac_names_host.contains(&ip)
    }

    /// The origin of a packet of `node`: every node in the store was checked
    /// once on the way in (declared, or refused at `correlate`'s entry).
    pub fn origin(&self, node: &str) -> Origin {
        match self.nodes.get(node) {
            Some(n) => Origin::Node(n.name.clone()),
            None => NodeName::new(node).map_or(Origin::Log, Origin::Node),
        }
    }

    /// A packet as evidence, with a note.
    pub fn ev(&self, i: Pk, note: impl Into<String>) -> Evidence {
        let p = &self.pkts[i];
        Evidence {
            origin: self.origin(&p.obs.node),
            file: p.file(),
            frame: p.obs.frame,
            time: time(p.ref_ts),
            note: Some(note.into()),
        }
    }
}

/// One connection seen from the roles that matter: the proxy's own capture
/// of it, the backend that owns it, and backends that got part of it
/// without ever having its socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'c> {
    pub conn: &'c Conn,
    /// The proxy's own capture of this connection.
    pub proxy: Option<&'c NodeView>,
    /// The backend that saw the handshake, else one that answered with
    /// state (a SYN-ACK, data or an ACK: it had the socket).
    pub owner: Option<&'c NodeView>,
}

impl<'c> Parts<'c> {
    pub fn of(ctx: &Ctx<'_>, conn: &'c Conn) -> Self {
        let backends = || conn.views.iter().filter(|v| ctx.is_backend(&v.node));
        let owner = backends()
            .find(|v| v.facts.handshake_seen)
            .or_else(|| backends().find(|v| v.facts.backend_stateful));
        let proxy = conn.views.iter().find(|v| ctx.side(&v.node) == Side::Proxy);
        Parts { conn, proxy, owner }
    }

    /// Backends that received the proxy's segments mid-connection (no SYN)
    /// and never answered with state: they had no socket for it.
    pub fn strays(&self, ctx: &Ctx<'_>) -> Vec<&'c NodeView> {
        self.conn
            .views
            .iter()
            .filter(|v| ctx.is_backend(&v.node))
            .filter(|v| self.owner.is_none_or(|o| o.node != v.node))
            .filter(|v| {
                !v.facts.handshake_seen
                    && !v.facts.backend_stateful
                    && v.facts.syn.is_none()
                    && v.facts.to_backend > 0
            })
            .collect()
    }

    /// Every backend view.
    pub fn backends(&self, ctx: &Ctx<'_>) -> Vec<&'c NodeView> {
        self.conn
            .views
            .iter()
            .filter(|v| ctx.is_backend(&v.node))
            .collect()
    }

    /// The view the connection's story is best read from: the owner's, else
    /// the proxy's, else any backend's.
    pub fn primary(&self, ctx: &Ctx<'_>) -> Option<&'c NodeView> {
        self.owner
            .or(self.proxy)
            .or_else(|| self.backends(ctx).into_iter().next())
    }

    /// The peer's usual fingerprint at the proxy: how the owner's stateful
    /// packets (SYN-ACK, data, ACKs) arrived there, by majority.
    pub fn peer_fingerprint(&self, ctx: &Ctx<'_>, before: Timestamp) -> Option<(Fingerprint, Pk)> {
        let pv = self.proxy?;
        let mut count: HashMap<Fingerprint, (usize, Pk)> = HashMap::new();
        for &i in &pv.pkts {
            let p = &ctx.pkts[i];
            if p.to_backend() || p.obs.flags.rst() || ctx.t(i) >= before {
                continue;
            }
            let e = count.entry(Fingerprint::of(p)).or_insert((0, i));
            e.0 += 1;
        }
        count
            .into_iter()
            .max_by_key(|(_, (n, i))| (*n, std::cmp::Reverse(*i)))
            .map(|(f, (_, i))| (f, i))
    }
}
