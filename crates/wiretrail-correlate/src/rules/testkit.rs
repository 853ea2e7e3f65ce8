//! Unit-test kit for the rules: packets written like tshark lines, on the
//! lab's topology (a proxy, three backends answering one VIP on one L2
//! segment, each with its own MAC), run through the same store, clock and
//! connection rebuild as a real report, then handed to one rule.

use super::{all_hits, evaluate, Case, RuleHit};
use crate::clock;
use crate::config::{CaptureLoss, NodeInput};
use crate::conn::{self, Conn};
use crate::ctx::{Ctx, Parts};
use crate::model::NodeRole;
use crate::packets::{mark_capture_duplicates, store};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use wiretrail_capture::{
    Direction, Duration, LinkInfo, PacketObs, SeqNumber, TcpFlags, TcpOpts, Timestamp,
};
use wiretrail_logs::{ProxyError, Source, TimePrecision};

pub const T0: Timestamp = Timestamp::from_nanos(1_764_030_000_000_000_000);
pub const PROXY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Seconds after T0.
pub fn at(s: f64) -> Timestamp {
    // Signed: tests place packets before T0 too.
    Timestamp::from_nanos(T0.as_nanos() + (s * 1e9).round() as i64)
}

/// The MAC of backend `n` (1-based).
pub fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, 10 + n]
}

pub struct Kit {
    pub proxy: SocketAddr,
    pub vip: SocketAddr,
    pub pkts: Vec<PacketObs>,
    pub nodes: Vec<NodeInput>,
}

/// Which direction a packet goes.
#[derive(Clone, Copy)]
pub enum To {
    Backend,
    Proxy,
}

impl Kit {
    /// The proxy (`proxy`, role proxy) and `b1`..`b3` (backends), all
    /// capturing from T0-100 s to T0+100 s.
    pub fn new(port: u16) -> Self {
        let cov = vec![(T0 - Duration::from_secs(100), T0 + Duration::from_secs(100))];
        let mut nodes = vec![NodeInput::named("proxy", NodeRole::Proxy).unwrap()];
        for b in ["b1", "b2", "b3"] {
            nodes.push(NodeInput::named(b, NodeRole::Backend).unwrap());
        }
        for n in &mut nodes {
            n.coverage = cov.clone();
        }
        Kit {
            proxy: format!("10.0.0.10:{port}").parse().unwrap(),
            vip: "10.0.0.100:80".parse().unwrap(),
            pkts: Vec::new(),
            nodes,
        }
    }

    /// One packet captured on `node`. `flags` like tshark: `S`, `SA`, `A`,
    /// `PA`, `FA`, `R`, `RA`. Backend-sent packets carry the sending
    /// backend's MAC (`from`), TTL 64; IP ID 1000+frame unless set.
    #[allow(clippy::too_many_arguments)]
    pub fn pkt(
        &mut self,
        node: &str,
        s: f64,
        to: To,
        flags: &str,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> &mut PacketObs {
        let frame = self.pkts.iter().filter(|p| p.node.as_ref() == node).count() as u64 + 1;
        let (dir, src, dst) = match to {
            To::Backend => (Direction::ToBackend, self.proxy, self.vip),
            To::Proxy => (Direction::ToProxy, self.vip, self.proxy),
        };
        let mut f = 0u16;
        for c in flags.chars() {
            f |= match c {
                'S' => TcpFlags::SYN,
                'A' => TcpFlags::ACK,
                'P' => TcpFlags::PSH,
                'F' => TcpFlags::FIN,
                'R' => TcpFlags::RST,
                _ => panic!("flag {c}"),
            };
        }
        let backend_mac = match node {
            "b2" => mac(2),
            "b3" => mac(3),
            _ => mac(1),
        };
        let link = match to {
            To::Backend => LinkInfo {
                src_mac: Some(PROXY_MAC),
                dst_mac: Some(backend_mac),
                vlan: None,
            },
            To::Proxy => LinkInfo {
                src_mac: Some(backend_mac),
                dst_mac: Some(PROXY_MAC),
                vlan: None,
            },
        };
        let syn = f & TcpFlags::SYN != 0;
        self.pkts.push(PacketObs {
            node: Arc::from(node),
            file: Arc::new(PathBuf::from(format!("/captures/{node}.pcap"))),
            frame,
            ts: at(s),
            queries: vec![0],
            dir,
            src,
            dst,
            ip_id: Some(1000 + frame as u32),
            ttl: 64,
            flags: TcpFlags(f),
            seq: SeqNumber(seq),
            ack: SeqNumber(ack),
            payload_len: len,
            window: 502,
            opts: TcpOpts {
                mss: syn.then_some(1460),
                tsval: Some(1000 + (s * 1000.0) as u32),
                tsecr: Some(0),
                ..TcpOpts::default()
            },
            link,
            linktype: 1,
            orig_len: 54 + len,
            data: Vec::new().into(),
        });
        self.pkts.last_mut().unwrap()
    }

    /// The same packet on the proxy and on `node` (a backend), `lat` s later
    /// at the far end.
    #[allow(clippy::too_many_arguments)]
    pub fn both(&mut self, node: &str, s: f64, to: To, flags: &str, seq: u32, ack: u32, len: u32) {
        let lat = 0.0001;
        let (sp, sb) = match to {
            To::Backend => (s, s + lat),
            To::Proxy => (s + lat, s),
        };
        let id = {
            let p = self.pkt("proxy", sp, to, flags, seq, ack, len);
            p.ip_id
        };
        let q = self.pkt(node, sb, to, flags, seq, ack, len);
        q.ip_id = id;
        if let To::Proxy = to {
            // The proxy's copy arrived with the sender's MAC.
            let m = q.link.src_mac;
            self.pkts.iter_mut().rev().nth(1).unwrap().link.src_mac = m;
        }
    }

    /// A handshake on `node` seen by the proxy too, proxy ISN 1000, backend
    /// ISN 5000: returns the next proxy and backend seq.
    pub fn handshake(&mut self, node: &str, s: f64) -> (u32, u32) {
        self.both(node, s, To::Backend, "S", 1000, 0, 0);
        self.both(node, s + 0.001, To::Proxy, "SA", 5000, 1001, 0);
        self.both(node, s + 0.002, To::Backend, "A", 1001, 5001, 0);
        (1001, 5001)
    }

    /// Keep only these nodes' packets and declarations (a capture mode).
    pub fn only(&mut self, nodes: &[&str]) -> &mut Self {
        self.pkts.retain(|p| nodes.contains(&p.node.as_ref()));
        self.nodes.retain(|n| nodes.contains(&n.name.as_str()));
        self
    }

    pub fn lose(&mut self, node: &str, loss: CaptureLoss) -> &mut Self {
        self.nodes
            .iter_mut()
            .find(|n| n.name == node)
            .unwrap()
            .losses
            .push(loss);
        self
    }

    /// A proxy error at `s`: `message` is the Go text after `http: proxy
    /// error: `, parsed by the log crate's grammar (so op, sockets, syscall
    /// and class are what a real line gives).
    pub fn err(&self, s: f64, message: &str) -> ProxyError {
        let g = wiretrail_logs::parse_go_error(message);
        let ts: DateTime<Utc> = at(s).to_utc();
        ProxyError {
            timestamp: ts,
            time_precision: TimePrecision::Microsecond,
            time_zone_assumed: false,
            host: Some("proxyhost".into()),
            process: Some("proxy".into()),
            pid: Some(1),
            op: g.op,
            local: g.local,
            remote: g.remote.or_else(|| Some(self.vip.to_string())),
            syscall: g.syscall,
            class: g.class,
            message: message.into(),
            source_format: wiretrail_logs::SourceFormat::Go,
            source: Source::File {
                file: "proxy.log".into(),
                line: 1,
            },
        }
    }

    /// `read: connection reset by peer` on this connection.
    pub fn reset_err(&self, s: f64) -> ProxyError {
        self.err(
            s,
            &format!(
                "read tcp {}->{}: read: connection reset by peer",
                self.proxy, self.vip
            ),
        )
    }

    /// Builds the store and connections, and runs `f` on the case of `err`
    /// against the connection with the most packets.
    pub fn case<R>(&self, err: &ProxyError, f: impl FnOnce(&Case<'_>) -> R) -> R {
        let mut pkts = store(self.pkts.clone());
        mark_capture_duplicates(&mut pkts, Duration::from_millis(1));
        let clock = clock::estimate(&self.nodes, &pkts, 10e9);
        for p in &mut pkts {
            p.ref_ts = p.obs.ts + clock.skew(&p.obs.node);
        }
        let conns: Vec<Conn> = conn::build(&mut pkts, Duration::from_secs(1));
        let mut ctx = Ctx::new(&pkts, &self.nodes, &clock);
        ctx.facts = super::run_facts(&ctx, &conns);
        let c = conns
            .iter()
            .max_by_key(|c| c.views.iter().map(|v| v.pkts.len()).sum::<usize>())
            .expect("a connection");
        let case = Case {
            ctx: &ctx,
            err,
            parts: Parts::of(&ctx, c),
        };
        f(&case)
    }

    /// The winning hit for `err`.
    pub fn verdict(&self, err: &ProxyError) -> Option<RuleHit> {
        self.case(err, evaluate)
    }

    /// Every rule that fires, in precedence order.
    pub fn hits(&self, err: &ProxyError) -> Vec<RuleHit> {
        self.case(err, all_hits)
    }
}
