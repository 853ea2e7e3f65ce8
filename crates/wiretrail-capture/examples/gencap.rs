//! Capture generator for benchmarks: rotated Ethernet pcap files per node,
//! full of many concurrent, realistic HTTP-over-TCP connections between a
//! reverse proxy and the node, deterministic for a given seed.
//!
//! ```text
//! cargo run --release -p wiretrail-capture --example gencap -- \
//!     --out /tmp/caps --nodes 2 --bytes 1G --duration 3600 --files 4 --seed 7
//! ```
//!
//! Writes `OUT/NODE/NODE-YYYYmmddHHMMSS.pcap` (tcpdump `-G` names, rotated
//! like tcpdump: on the first packet past each boundary; `--names numbered`
//! names them `NODE.pcap`, `NODE.pcap1`, ... as tcpdump `-C` does, with no
//! time in the name) and `OUT/flows.tsv`
//! (node, proxy socket, backend socket, first and last packet time in ns,
//! packets) so benchmarks can pick real flows. Each connection: handshake
//! with MSS/SACK/WS/TS options, 1–20 keep-alive requests of 200–1400 bytes,
//! responses of log-normal size (median ~2 KiB, tail to MBs) in 1448-byte
//! segments with an ACK every second segment, keep-alive pauses of up to
//! 10 s, then a FIN close from either side: hundreds of connections are
//! open at once. Header checksums are real; payload bytes are filler.

use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// splitmix64: tiny, deterministic, good enough for traffic shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

const MSS: u32 = 1448;
const T0_NS: i64 = 1_683_306_000_000_000_000; // 2023-05-05 17:00:00 UTC

/// What to generate. `pub(crate)`: the `extract` bench links this file in
/// (`#[path]`) and calls [`run`] directly.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) out: PathBuf,
    pub(crate) nodes: usize,
    pub(crate) bytes: u64,
    pub(crate) duration_s: u64,
    pub(crate) files: u64,
    pub(crate) seed: u64,
    /// tcpdump `-C` names (`NODE.pcap`, `NODE.pcap1`, ...) instead of `-G` times.
    pub(crate) numbered: bool,
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    Ok((n * mult as f64) as u64)
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        out: PathBuf::from("gencap-out"),
        nodes: 2,
        bytes: 256 << 20,
        duration_s: 3600,
        files: 4,
        seed: 1,
        numbered: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--out" => a.out = PathBuf::from(v()?),
            "--nodes" => a.nodes = v()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--bytes" => a.bytes = parse_size(&v()?)?,
            "--duration" => a.duration_s = v()?.parse().map_err(|e| format!("--duration: {e}"))?,
            "--files" => a.files = v()?.parse().map_err(|e| format!("--files: {e}"))?,
            "--seed" => a.seed = v()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--names" => {
                a.numbered = match v()?.as_str() {
                    "numbered" => true,
                    "strftime" => false,
                    other => return Err(format!("--names {other:?}: numbered or strftime")),
                }
            }
            "-h" | "--help" => {
                return Err("usage: gencap --out DIR [--nodes N] [--bytes SIZE per node, e.g. 1G] [--duration SECS] \
                            [--files PER_NODE] [--seed N] [--names strftime|numbered]"
                    .into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if a.nodes == 0 || a.files == 0 || a.duration_s == 0 {
        return Err("--nodes, --files and --duration must be positive".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gencap: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("gencap: {e}");
        std::process::exit(1);
    }
}

/// Write `flows.tsv` and one directory of rotated captures per node.
pub(crate) fn run(a: &Args) -> std::io::Result<()> {
    std::fs::create_dir_all(&a.out)?;
    let mut flows = BufWriter::new(std::fs::File::create(a.out.join("flows.tsv"))?);
    writeln!(flows, "node\tproxy\tbackend\tfirst_ns\tlast_ns\tpackets")?;
    for n in 0..a.nodes {
        let name = format!("be{}", n + 1);
        let dir = a.out.join(&name);
        std::fs::create_dir_all(&dir)?;
        let (pkts, bytes) = gen_node(a, n, &name, &dir, &mut flows)?;
        eprintln!(
            "gencap: {name}: {pkts} packets, {} MiB in {} files",
            bytes >> 20,
            a.files
        );
    }
    flows.flush()
}

/// One side of a connection.
#[derive(Debug, Clone, Copy)]
struct Side {
    ip: [u8; 4],
    mac: [u8; 6],
    port: u16,
    seq: u32,
    ip_id: u16,
    ttl: u8,
    /// Millisecond clock for TSval, offset per host.
    ts_base: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Syn,
    SynAck,
    HandshakeAck,
    Request,
    Response,
    ClientAck,
    Idle,
    Fin1,
    Fin2,
    LastAck,
    Done,
}

#[derive(Debug)]
struct Flow {
    client: Side,
    server: Side,
    step: Step,
    requests_left: u32,
    /// (request, response) payload sizes still to send, last first.
    sizes: Vec<(u32, u32)>,
    req_len: u32,
    resp_left: u32,
    unacked: u32,
    rtt_ns: i64,
    client_closes: bool,
    first_ns: i64,
    packets: u64,
}

/// Heap entry: next event time of a flow (min-heap via reversed order).
#[derive(Debug, PartialEq, Eq)]
struct Ev(i64, usize);
impl Ord for Ev {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.cmp(&self.0).then(o.1.cmp(&self.1))
    }
}
impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Rotating pcap writer, tcpdump `-G` style.
struct Rotor {
    dir: PathBuf,
    name: String,
    every_ns: i64,
    next_rotate: i64,
    w: Option<BufWriter<std::fs::File>>,
    bytes: u64,
    /// `Some(next number)`: tcpdump `-C` names.
    numbered: Option<u64>,
}

impl Rotor {
    fn write(&mut self, ts: i64, frame: &[u8]) -> std::io::Result<()> {
        if self.w.is_none() || ts >= self.next_rotate {
            if let Some(mut w) = self.w.take() {
                w.flush()?;
            }
            let secs = ts.div_euclid(1_000_000_000);
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let path = match &mut self.numbered {
                Some(0) => {
                    self.numbered = Some(1);
                    self.dir.join(format!("{}.pcap", self.name))
                }
                Some(n) => {
                    let p = self.dir.join(format!("{}.pcap{n}", self.name));
                    *n += 1;
                    p
                }
                None => self
                    .dir
                    .join(format!("{}-{}.pcap", self.name, t.format("%Y%m%d%H%M%S"))),
            };
            let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
            // pcap, microseconds, little-endian, snaplen 262144, Ethernet.
            w.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
            w.write_all(&2u16.to_le_bytes())?;
            w.write_all(&4u16.to_le_bytes())?;
            w.write_all(&[0; 8])?;
            w.write_all(&262_144u32.to_le_bytes())?;
            w.write_all(&1u32.to_le_bytes())?;
            self.w = Some(w);
            self.next_rotate = T0_NS + ((ts - T0_NS) / self.every_ns + 1) * self.every_ns;
        }
        let w = self.w.as_mut().expect("opened above");
        let secs = ts.div_euclid(1_000_000_000) as u32;
        let usecs = (ts.rem_euclid(1_000_000_000) / 1000) as u32;
        w.write_all(&secs.to_le_bytes())?;
        w.write_all(&usecs.to_le_bytes())?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(&(frame.len() as u32).to_le_bytes())?;
        w.write_all(frame)?;
        self.bytes += 16 + frame.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if let Some(mut w) = self.w.take() {
            w.flush()?;
        }
        Ok(())
    }
}

fn gen_node(
    a: &Args,
    node: usize,
    name: &str,
    dir: &Path,
    flows_out: &mut impl Write,
) -> std::io::Result<(u64, u64)> {
    let mut rng = Rng(a.seed ^ (0x5151_0000 + node as u64).wrapping_mul(0x9e37_79b9));
    let dur_ns = a.duration_s as i64 * 1_000_000_000;
    let mut rotor = Rotor {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        every_ns: (dur_ns / a.files as i64).max(1),
        next_rotate: 0,
        w: None,
        bytes: 24,
        numbered: a.numbered.then_some(0),
    };
    let proxy_ip = [10, 0, 0, 1];
    let node_ip = [10, 1, 0, (node + 1) as u8];
    let text: &[u8] = b"GET /api/v1/items HTTP/1.1\r\nHost: backend\r\n";
    let payload: Vec<u8> = (0..65536).map(|i| text[i % text.len()]).collect();
    let mut flows: Vec<Flow> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut heap = BinaryHeap::new();
    let mut next_port: u16 = 32768 + (rng.next() % 1000) as u16;
    let mut frame = Vec::with_capacity(2048);
    let mut packets = 0u64;
    let end = T0_NS + dur_ns;
    // A spawner event starts connections. Each connection's size is drawn
    // when it starts (request count and response sizes), and the gap to the
    // next start is that size at the target byte rate, times an exponential
    // jitter: the run tracks `bytes` however long connections live.
    const SPAWNER: usize = usize::MAX;
    let rate = a.bytes as f64 / dur_ns as f64; // bytes per ns
    heap.push(Ev(T0_NS, SPAWNER));
    while let Some(Ev(t, id)) = heap.pop() {
        if id == SPAWNER {
            if t >= end {
                continue;
            }
            let requests = rng.range(1, 20) as usize;
            let sizes: Vec<(u32, u32)> = (0..requests)
                .map(|_| {
                    // Requests fit one segment; responses are log-normal:
                    // median e^7.6 ≈ 2 KiB, mean ≈ 6 KiB, a tail into MBs.
                    let req = rng.range(200, 1400) as u32;
                    let resp = ((7.6 + 1.5 * rng.normal()).exp() as u32).clamp(120, 8 << 20);
                    (req, resp)
                })
                .collect();
            let wire: f64 = 6.0 * 98.0
                + sizes
                    .iter()
                    .map(|&(q, r)| {
                        let segs = f64::from(r.div_ceil(MSS));
                        f64::from(q + r) + 98.0 * (2.0 + segs + (segs / 2.0).ceil())
                    })
                    .sum::<f64>();
            let gap = (-rng.unit().max(1e-12).ln() * wire / rate) as i64;
            heap.push(Ev(t + gap.max(1), SPAWNER));
            let start = t;
            next_port = if next_port >= 60999 {
                32768
            } else {
                next_port + 1
            };
            let f = Flow {
                client: Side {
                    ip: proxy_ip,
                    mac: [0x02, 0, 0, 0, 0, 1],
                    port: next_port,
                    seq: rng.next() as u32,
                    ip_id: rng.next() as u16,
                    ttl: 63,
                    ts_base: 7_000_000,
                },
                server: Side {
                    ip: node_ip,
                    mac: [0x02, 0, 0, 1, 0, node as u8 + 1],
                    port: 8080,
                    seq: rng.next() as u32,
                    ip_id: rng.next() as u16,
                    ttl: 64,
                    ts_base: 90_000_000 + node as u32 * 1_000_000,
                },
                step: Step::Syn,
                requests_left: sizes.len() as u32,
                sizes,
                req_len: 0,
                resp_left: 0,
                unacked: 0,
                rtt_ns: rng.range(80_000, 600_000) as i64,
                client_closes: rng.unit() < 0.5,
                first_ns: start,
                packets: 0,
            };
            let id = match free.pop() {
                Some(i) => {
                    flows[i] = f;
                    i
                }
                None => {
                    flows.push(f);
                    flows.len() - 1
                }
            };
            heap.push(Ev(start, id));
            continue;
        }
        let f = &mut flows[id];
        let next = step(f, t, &mut rng, &payload, &mut frame);
        if let Some(()) = next.0 {
            rotor.write(t, &frame)?;
            packets += 1;
            f.packets += 1;
        }
        match next.1 {
            Some(dt) => heap.push(Ev(t + dt, id)),
            None => {
                let c = f.client;
                let s = f.server;
                writeln!(
                    flows_out,
                    "{name}\t{}:{}\t{}:{}\t{}\t{t}\t{}",
                    ip_str(c.ip),
                    c.port,
                    ip_str(s.ip),
                    s.port,
                    f.first_ns,
                    f.packets
                )?;
                free.push(id);
            }
        }
    }
    rotor.finish()?;
    Ok((packets, rotor.bytes))
}

fn ip_str(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// Emits the flow's packet for this step into `frame` (if any) and says
/// when the next step is due (`None`: the connection is over).
fn step(
    f: &mut Flow,
    t: i64,
    rng: &mut Rng,
    payload: &[u8],
    frame: &mut Vec<u8>,
) -> (Option<()>, Option<i64>) {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;
    const FIN: u8 = 0x01;
    let half = f.rtt_ns / 2;
    match f.step {
        Step::Syn => {
            emit(frame, f, true, SYN, 0, t, payload, true);
            f.client.seq = f.client.seq.wrapping_add(1);
            f.step = Step::SynAck;
            (Some(()), Some(half))
        }
        Step::SynAck => {
            emit(frame, f, false, SYN | ACK, 0, t, payload, true);
            f.server.seq = f.server.seq.wrapping_add(1);
            f.step = Step::HandshakeAck;
            (Some(()), Some(half))
        }
        Step::HandshakeAck => {
            emit(frame, f, true, ACK, 0, t, payload, false);
            f.step = Step::Request;
            (Some(()), Some(rng.range(10_000, 100_000) as i64))
        }
        Step::Request => {
            let (req, resp) = f.sizes.pop().unwrap_or((300, 1000));
            f.req_len = req;
            emit(frame, f, true, PSH | ACK, f.req_len, t, payload, false);
            f.resp_left = resp;
            f.unacked = 0;
            f.step = Step::Response;
            (Some(()), Some(half + rng.range(200_000, 20_000_000) as i64))
        }
        Step::Response => {
            let n = f.resp_left.min(MSS);
            f.resp_left -= n;
            let flags = if f.resp_left == 0 { PSH | ACK } else { ACK };
            emit(frame, f, false, flags, n, t, payload, false);
            f.unacked += 1;
            if f.unacked >= 2 || f.resp_left == 0 {
                f.step = Step::ClientAck;
                (Some(()), Some(half))
            } else {
                (Some(()), Some(rng.range(5_000, 40_000) as i64))
            }
        }
        Step::ClientAck => {
            emit(frame, f, true, ACK, 0, t, payload, false);
            f.unacked = 0;
            if f.resp_left > 0 {
                f.step = Step::Response;
                (Some(()), Some(half))
            } else {
                f.requests_left -= 1;
                f.step = if f.requests_left > 0 {
                    Step::Idle
                } else {
                    Step::Fin1
                };
                (Some(()), Some(rng.range(1_000_000, 10_000_000_000) as i64))
            }
        }
        Step::Idle => {
            f.step = Step::Request;
            (None, Some(0))
        }
        Step::Fin1 => {
            emit(frame, f, f.client_closes, FIN | ACK, 0, t, payload, false);
            bump_fin(f, f.client_closes);
            f.step = Step::Fin2;
            (Some(()), Some(half))
        }
        Step::Fin2 => {
            emit(frame, f, !f.client_closes, FIN | ACK, 0, t, payload, false);
            bump_fin(f, !f.client_closes);
            f.step = Step::LastAck;
            (Some(()), Some(half))
        }
        Step::LastAck => {
            emit(frame, f, f.client_closes, ACK, 0, t, payload, false);
            f.step = Step::Done;
            (Some(()), None)
        }
        Step::Done => (None, None),
    }
}

fn bump_fin(f: &mut Flow, client: bool) {
    let s = if client { &mut f.client } else { &mut f.server };
    s.seq = s.seq.wrapping_add(1);
}

fn checksum(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds Ethernet + IPv4 + TCP (+ options) + payload into `frame`, and
/// advances the sender's sequence number and IP ID.
#[allow(clippy::too_many_arguments)]
fn emit(
    frame: &mut Vec<u8>,
    f: &mut Flow,
    from_client: bool,
    flags: u8,
    len: u32,
    t: i64,
    payload: &[u8],
    syn: bool,
) {
    let (me, peer) = if from_client {
        (&mut f.client, &f.server)
    } else {
        (&mut f.server, &f.client)
    };
    let ack = if flags & 0x10 != 0 { peer.seq } else { 0 };
    let tsval = me.ts_base.wrapping_add((t / 1_000_000) as u32);
    let tsecr = if flags == 0x02 {
        0
    } else {
        peer.ts_base
            .wrapping_add((t / 1_000_000) as u32)
            .wrapping_sub(1)
    };
    let mut opts: Vec<u8> = Vec::with_capacity(20);
    if syn {
        opts.extend_from_slice(&[2, 4, (MSS >> 8) as u8, MSS as u8, 4, 2, 8, 10]);
        opts.extend_from_slice(&tsval.to_be_bytes());
        opts.extend_from_slice(&tsecr.to_be_bytes());
        opts.extend_from_slice(&[1, 3, 3, 7]);
    } else {
        opts.extend_from_slice(&[1, 1, 8, 10]);
        opts.extend_from_slice(&tsval.to_be_bytes());
        opts.extend_from_slice(&tsecr.to_be_bytes());
    }
    let tcp_len = 20 + opts.len();
    let ip_total = 20 + tcp_len + len as usize;
    frame.clear();
    frame.extend_from_slice(&peer.mac);
    frame.extend_from_slice(&me.mac);
    frame.extend_from_slice(&[0x08, 0x00]);
    let ip_at = frame.len();
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&(ip_total as u16).to_be_bytes());
    frame.extend_from_slice(&me.ip_id.to_be_bytes());
    frame.extend_from_slice(&[0x40, 0, me.ttl, 6, 0, 0]);
    frame.extend_from_slice(&me.ip);
    frame.extend_from_slice(&peer.ip);
    let c = fold(checksum(&frame[ip_at..ip_at + 20], 0));
    frame[ip_at + 10..ip_at + 12].copy_from_slice(&c.to_be_bytes());
    let tcp_at = frame.len();
    frame.extend_from_slice(&me.port.to_be_bytes());
    frame.extend_from_slice(&peer.port.to_be_bytes());
    frame.extend_from_slice(&me.seq.to_be_bytes());
    frame.extend_from_slice(&ack.to_be_bytes());
    frame.extend_from_slice(&[((tcp_len / 4) as u8) << 4, flags]);
    frame.extend_from_slice(&(if syn { 64240u16 } else { 502 }).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(&opts);
    let start = (me.seq as usize) % (payload.len() - 2 * MSS as usize);
    frame.extend_from_slice(&payload[start..start + len as usize]);
    // TCP checksum over the pseudo-header and segment.
    let mut sum = checksum(&me.ip, 0);
    sum = checksum(&peer.ip, sum);
    sum += 6 + (tcp_len as u32 + len);
    let c = fold(checksum(&frame[tcp_at..], sum));
    frame[tcp_at + 16..tcp_at + 18].copy_from_slice(&c.to_be_bytes());
    me.seq = me.seq.wrapping_add(len);
    me.ip_id = me.ip_id.wrapping_add(1);
}
