//! Hand-built but realistic observations: what the extractor would hand
//! over for packets whose headers are written out below, field by field.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use wiretrail_capture::{
    Direction, Duration, LinkInfo, PacketObs, SeqNumber, TcpFlags, TcpOpts, Timestamp,
};
use wiretrail_correlate::model::{NodeRole, Report};
use wiretrail_correlate::{correlate, plan, CorrelateConfig, NodeInput};
use wiretrail_logs::{ErrorClass, ProxyError, Source, TimePrecision};

pub const PROXY: &str = "10.0.0.10";
pub const VIP: &str = "10.0.0.100:80";

/// `base + s` seconds (`s` may be negative).
pub fn at(base: &str, s: f64) -> Timestamp {
    let b: DateTime<Utc> = base.parse().unwrap();
    Timestamp::from_nanos(b.timestamp_nanos_opt().unwrap() + (s * 1e9).round() as i64)
}

pub fn flags(s: &str) -> TcpFlags {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'S' => TcpFlags::SYN,
            'A' => TcpFlags::ACK,
            'P' => TcpFlags::PSH,
            'F' => TcpFlags::FIN,
            'R' => TcpFlags::RST,
            _ => panic!("flag {c}"),
        };
    }
    TcpFlags(f)
}

/// One TCP connection's packets as several nodes captured them.
pub struct Sim {
    pub proxy: SocketAddr,
    pub backend: SocketAddr,
    pub pkts: Vec<PacketObs>,
    frames: HashMap<String, u64>,
}

/// A packet, written like a tshark line.
#[derive(Clone, Copy)]
pub struct P<'a> {
    pub node: &'a str,
    pub t: Timestamp,
    pub dir: Direction,
    pub flags: &'a str,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub win: u16,
    pub ip_id: u32,
    pub tsval: Option<u32>,
    pub tsecr: Option<u32>,
    pub ttl: u8,
}

impl<'a> P<'a> {
    pub fn new(
        node: &'a str,
        t: Timestamp,
        dir: Direction,
        flags: &'a str,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> Self {
        P {
            node,
            t,
            dir,
            flags,
            seq,
            ack,
            len,
            win: 502,
            ip_id: 0,
            tsval: None,
            tsecr: None,
            ttl: 64,
        }
    }
    pub fn id(mut self, id: u32) -> Self {
        self.ip_id = id;
        self
    }
    pub fn ts(mut self, v: u32, e: u32) -> Self {
        self.tsval = Some(v);
        self.tsecr = Some(e);
        self
    }
    pub fn win(mut self, w: u16) -> Self {
        self.win = w;
        self
    }
    pub fn ttl(mut self, t: u8) -> Self {
        self.ttl = t;
        self
    }
}

impl Sim {
    pub fn new(proxy_port: u16) -> Self {
        Sim {
            proxy: format!("{PROXY}:{proxy_port}").parse().unwrap(),
            backend: VIP.parse().unwrap(),
            pkts: Vec::new(),
            frames: HashMap::new(),
        }
    }

    /// Frame numbers count per node (one capture file per node).
    pub fn next_frame(&mut self, node: &str, frame: Option<u64>) -> u64 {
        let f = self.frames.entry(node.to_string()).or_insert(0);
        *f = frame.unwrap_or(*f + 1);
        *f
    }

    /// Adds the packet; returns its frame number in the node's file.
    pub fn add(&mut self, p: P<'_>) -> u64 {
        self.add_at(p, None)
    }

    pub fn add_at(&mut self, p: P<'_>, frame: Option<u64>) -> u64 {
        let frame = self.next_frame(p.node, frame);
        let (src, dst) = match p.dir {
            Direction::ToBackend => (self.proxy, self.backend),
            Direction::ToProxy => (self.backend, self.proxy),
        };
        self.pkts.push(PacketObs {
            node: Arc::from(p.node),
            file: Arc::new(PathBuf::from(format!("/cap/{}/{}.pcap", p.node, p.node))),
            frame,
            ts: p.t,
            queries: vec![0],
            dir: p.dir,
            src,
            dst,
            ip_id: Some(p.ip_id),
            ttl: p.ttl,
            flags: flags(p.flags),
            seq: SeqNumber(p.seq),
            ack: SeqNumber(p.ack),
            payload_len: p.len,
            window: p.win,
            opts: TcpOpts {
                tsval: p.tsval,
                tsecr: p.tsecr,
                ..TcpOpts::default()
            },
            link: LinkInfo::default(),
            linktype: 1,
            orig_len: 54 + p.len,
            data: Vec::new().into(),
        });
        frame
    }

    /// The same packet recorded a second time by the same node, `dt_ns` later.
    pub fn dup_last(&mut self, dt_ns: u64, ttl: u8) -> u64 {
        let mut p = self.pkts.last().unwrap().clone();
        p.frame = self.next_frame(&p.node, None);
        p.ts += Duration::from_nanos(dt_ns);
        p.ttl = ttl;
        let f = p.frame;
        self.pkts.push(p);
        f
    }
}

/// A proxy error as `wiretrail-logs` produces it from a Go `log` line.
pub fn error(
    ts: &str,
    precision: TimePrecision,
    message: &str,
    class: ErrorClass,
    line: u64,
) -> ProxyError {
    // The Go grammar: `op tcp LOCAL->REMOTE: [op tcp LOCAL->REMOTE: ]syscall: text`.
    let mut op = None;
    let mut local = None;
    let mut remote = None;
    let mut syscall = None;
    let words: Vec<&str> = message.split(' ').collect();
    if words.len() > 2 && words[1] == "tcp" {
        op = Some(words[0].to_string());
        let addrs = words[2].trim_end_matches(':');
        match addrs.split_once("->") {
            Some((l, r)) => {
                local = Some(l.to_string());
                remote = Some(r.to_string());
            }
            None => remote = Some(addrs.to_string()),
        }
        syscall = message
            .rsplit(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next_back())
            .map(str::to_string);
    }
    ProxyError {
        timestamp: ts.parse().unwrap(),
        time_precision: precision,
        time_zone_assumed: false,
        host: Some("proxy-1".into()),
        process: Some("proxy".into()),
        pid: Some(812),
        op,
        local,
        remote,
        syscall,
        class,
        message: message.to_string(),
        source_format: wiretrail_logs::SourceFormat::Go,
        source: Source::File {
            file: "/var/log/proxy.log".into(),
            line,
        },
    }
}

pub fn backends(n: usize) -> Vec<NodeInput> {
    (1..=n)
        .map(|i| {
            let mut node = NodeInput::named(&format!("backend-0{i}"), NodeRole::Backend).unwrap();
            node.aliases = vec![VIP.parse::<SocketAddr>().unwrap().ip()];
            node
        })
        .collect()
}

/// [`backends`] with their clocks pinned at offset 0 (NTP-synchronised
/// nodes): time joins then match on the captures' own times.
pub fn synced_backends(n: usize) -> Vec<NodeInput> {
    let mut nodes = backends(n);
    for node in &mut nodes {
        node.pinned_offset_s = Some(0.0);
    }
    nodes
}

/// plan + correlate, with each packet's query indices set the way the
/// extractor sets them (every plan query whose port and window match).
pub fn run(errors: Vec<ProxyError>, pkts: Vec<PacketObs>, nodes: &[NodeInput]) -> Report {
    run_cfg(errors, pkts, nodes, &CorrelateConfig::default())
}

/// [`run`] with a configuration (proxy hints, windows).
pub fn run_cfg(
    errors: Vec<ProxyError>,
    mut pkts: Vec<PacketObs>,
    nodes: &[NodeInput],
    cfg: &CorrelateConfig,
) -> Report {
    let cfg = cfg.clone();
    let plan = plan(&errors, &cfg);
    for p in &mut pkts {
        let (proxy, backend) = p.proxy_backend();
        p.queries = plan
            .queries
            .iter()
            .enumerate()
            .filter(|(_, q)| {
                let flow = match q.proxy_port() {
                    Some(port) => port == proxy.port(),
                    // A wildcard (time join): any port to its backend socket.
                    None => q.backend() == Some(backend),
                };
                flow && p.ts >= q.since && p.ts <= q.until
            })
            .map(|(i, _)| i)
            .collect();
        assert!(
            !p.queries.is_empty(),
            "a packet outside every query window: the test is wrong"
        );
    }
    correlate(errors, &plan, pkts, nodes, &cfg)
}
