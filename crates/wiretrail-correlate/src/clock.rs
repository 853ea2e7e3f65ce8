//! One clock: each node's offset to a reference node.
//!
//! Two estimators, best first:
//! - **shared packets**: the same packet (direction, seq, ack, length, IP ID,
//!   TSval, flags) captured by two nodes. Packets both ways cancel the
//!   one-way latency (as NTP does); one way only leaves it in the uncertainty.
//! - **TSval**: the proxy stamps every segment it sends from one millisecond
//!   clock, offset at random per connection by current Linux. When one
//!   connection's segments reach two nodes (a split, or the proxy's own
//!   capture) each node's lower envelope of `capture_time - tsval * tick` is
//!   that connection's TSval zero on the node's clock; two nodes' zeros
//!   differ by their offset, within a tick. All such connections in the
//!   window are pooled (median).
//!
//! Pinned offsets are taken as given. Nodes reachable by neither stay at 0
//! with method `none`: never shifted silently.

use crate::config::NodeInput;
use crate::model::{ClockOffset, NodeRole, OffsetMethod};
use crate::packets::Store;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use wiretrail_capture::{Direction, Duration, SeqNumber, Timestamp};

/// Linux stamps TSval in milliseconds.
const DEFAULT_TICK_NS: f64 = 1_000_000.0;
/// One-way latency bound assumed when only one direction was shared.
const ONE_WAY_NS: f64 = 100_000.0;

/// An estimated relation between two nodes: `t_a = t_b + off_ns`.
#[derive(Debug, Clone, Copy)]
struct Edge {
    a: usize,
    b: usize,
    off_ns: f64,
    unc_ns: f64,
    method: OffsetMethod,
    samples: u64,
}

/// How far one node's clock is behind the reference: a signed span, the
/// one signed time in wiretrail (a [`wiretrail_capture::Duration`] is never
/// negative). `node time + skew = reference time`. Applying it saturates:
/// skews are bounded by `max_clock_offset` and capture times lie well
/// inside the range of a [`Timestamp`] (see `wiretrail_capture::time`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Skew(i64);

impl Skew {
    pub const ZERO: Skew = Skew(0);

    /// A fitted offset in (float) nanoseconds, rounded (saturating).
    pub fn from_nanos_f64(ns: f64) -> Skew {
        Skew(ns.round() as i64)
    }

    /// `a - b`, signed (saturating).
    pub fn between(a: Timestamp, b: Timestamp) -> Skew {
        Skew(a.as_nanos().saturating_sub(b.as_nanos()))
    }

    /// For the estimators' arithmetic, which is in float nanoseconds.
    pub fn as_nanos_f64(self) -> f64 {
        self.0 as f64
    }

    /// How far it moves a time, either way.
    pub fn magnitude(self) -> Duration {
        Duration::from_nanos(self.0.unsigned_abs())
    }
}

/// A node's time on the reference clock.
impl std::ops::Add<Skew> for Timestamp {
    type Output = Timestamp;
    fn add(self, s: Skew) -> Timestamp {
        if s.0 >= 0 {
            self + s.magnitude()
        } else {
            self - s.magnitude()
        }
    }
}

/// A reference time on a node's clock.
impl std::ops::Sub<Skew> for Timestamp {
    type Output = Timestamp;
    fn sub(self, s: Skew) -> Timestamp {
        if s.0 >= 0 {
            self - s.magnitude()
        } else {
            self + s.magnitude()
        }
    }
}

/// Offsets of every node, by node index.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    pub offsets: Vec<ClockOffset>,
    pub reference: Option<String>,
    by_name: HashMap<String, (Skew, f64)>,
}

impl Clock {
    /// What to add to this node's times to get reference time.
    pub fn skew(&self, node: &str) -> Skew {
        self.by_name.get(node).map_or(Skew::ZERO, |v| v.0)
    }
}

/// `max_off_ns`: offsets beyond it are implausible (the plan's windows were
/// widened by that much only) and are not used.
pub(crate) fn estimate(nodes: &[NodeInput], pkts: &Store, max_off_ns: f64) -> Clock {
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let idx: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let has_pkts: Vec<bool> = (0..nodes.len())
        .map(|i| pkts.iter().any(|p| p.obs.node.as_ref() == names[i]))
        .collect();
    let reference = (0..nodes.len())
        .find(|&i| nodes[i].role == NodeRole::Proxy && has_pkts[i])
        .or_else(|| (0..nodes.len()).find(|&i| has_pkts[i]))
        .or(if nodes.is_empty() { None } else { Some(0) });

    let mut edges = shared_packet_edges(&idx, pkts);
    edges.retain(|e| e.off_ns.abs() <= max_off_ns);
    edges.extend(tsval_edges(&idx, pkts, max_off_ns));

    // (offset ns, uncertainty ns, method, samples)
    let mut placed: Vec<Option<(f64, f64, OffsetMethod, u64)>> = vec![None; nodes.len()];
    let mut queue = VecDeque::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(p) = n.pinned_offset_s {
            placed[i] = Some((p * 1e9, 0.0, OffsetMethod::Pinned, 0));
            queue.push_back(i);
        }
    }
    if let Some(r) = reference {
        if placed[r].is_none() {
            placed[r] = Some((0.0, 0.0, OffsetMethod::Reference, 0));
            queue.push_back(r);
        }
    }
    // Shared packets first, then TSval for what is left.
    for pass in [OffsetMethod::SharedPackets, OffsetMethod::Tsval] {
        let mut q: VecDeque<usize> = (0..nodes.len()).filter(|&i| placed[i].is_some()).collect();
        if pass == OffsetMethod::SharedPackets {
            q = std::mem::take(&mut queue);
        }
        while let Some(a) = q.pop_front() {
            let (off_a, unc_a, m_a, _) = placed[a].expect("queued nodes are placed");
            let mut best: BTreeMap<usize, Edge> = BTreeMap::new();
            for e in edges.iter().filter(|e| e.method == pass) {
                // Orient the edge so that `a` is the placed side.
                let (other, off) = if e.a == a {
                    (e.b, e.off_ns)
                } else if e.b == a {
                    (e.a, -e.off_ns)
                } else {
                    continue;
                };
                if placed[other].is_some() {
                    continue;
                }
                let cand = Edge {
                    a,
                    b: other,
                    off_ns: off,
                    ..*e
                };
                match best.get(&other) {
                    Some(b) if b.unc_ns <= cand.unc_ns => {}
                    _ => {
                        best.insert(other, cand);
                    }
                }
            }
            for (other, e) in best {
                // t_a = t_other + off  ⇒  ref = t_other + off + off_a.
                let method = if m_a == OffsetMethod::Tsval {
                    OffsetMethod::Tsval
                } else {
                    e.method
                };
                placed[other] = Some((e.off_ns + off_a, e.unc_ns + unc_a, method, e.samples));
                q.push_back(other);
            }
        }
    }

    let mut offsets = Vec::new();
    let mut by_name = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let (off, unc, method, samples) = match placed[i] {
            Some(p) => p,
            None => (0.0, f64::INFINITY, OffsetMethod::Unplaced, 0),
        };
        offsets.push(ClockOffset {
            node: n.name.to_string(),
            offset_s: round9(off / 1e9),
            // None: the node could not be placed (no shared packets, no TSval).
            uncertainty_s: unc.is_finite().then(|| round9(unc / 1e9)),
            method,
            samples,
        });
        by_name.insert(
            n.name.to_string(),
            (
                Skew::from_nanos_f64(off),
                if unc.is_finite() {
                    unc / 1e9
                } else {
                    f64::INFINITY
                },
            ),
        );
    }
    Clock {
        offsets,
        reference: reference.map(|r| nodes[r].name.to_string()),
        by_name,
    }
}

fn round9(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct WireKey {
    src: SocketAddr,
    dst: SocketAddr,
    seq: SeqNumber,
    ack: SeqNumber,
    len: u32,
    ip_id: Option<u32>,
    tsval: Option<u32>,
    flags: u16,
}

fn shared_packet_edges(idx: &HashMap<&str, usize>, pkts: &Store) -> Vec<Edge> {
    // key → (node, time); a node with two different packets of one key
    // (a real identical retransmission) is ambiguous for that key.
    let mut seen: HashMap<WireKey, (usize, Vec<(usize, Timestamp)>)> = HashMap::new();
    for p in pkts.iter().filter(|p| !p.is_dup()) {
        let Some(&n) = idx.get(p.obs.node.as_ref()) else {
            continue;
        };
        let o = &p.obs;
        let k = WireKey {
            src: o.src,
            dst: o.dst,
            seq: o.seq,
            ack: o.ack,
            len: o.payload_len,
            ip_id: o.ip_id,
            tsval: o.opts.tsval,
            flags: o.flags.0,
        };
        let d = usize::from(o.dir == Direction::ToProxy);
        seen.entry(k)
            .or_insert_with(|| (d, Vec::new()))
            .1
            .push((n, o.ts));
    }
    // (a, b) → per direction, t_a - t_b samples
    let mut diffs: BTreeMap<(usize, usize), [Vec<f64>; 2]> = BTreeMap::new();
    for (d, obs) in seen.values() {
        let d = *d;
        let mut per_node: BTreeMap<usize, Vec<Timestamp>> = BTreeMap::new();
        for &(n, t) in obs {
            per_node.entry(n).or_default().push(t);
        }
        if per_node.len() < 2 || per_node.values().any(|v| v.len() != 1) {
            continue;
        }
        let nodes: Vec<(usize, Timestamp)> = per_node.iter().map(|(n, v)| (*n, v[0])).collect();
        for i in 0..nodes.len() {
            for j in i + 1..nodes.len() {
                let (a, ta) = nodes[i];
                let (b, tb) = nodes[j];
                diffs.entry((a, b)).or_default()[d].push(Skew::between(ta, tb).as_nanos_f64());
            }
        }
    }
    let mut edges = Vec::new();
    for ((a, b), mut dirs) in diffs {
        for v in dirs.iter_mut() {
            v.sort_by(f64::total_cmp);
        }
        let samples = (dirs[0].len() + dirs[1].len()) as u64;
        let (off, unc) = match (median(&dirs[0]), median(&dirs[1])) {
            (Some(m0), Some(m1)) => {
                let spread = spread(&dirs[0]).max(spread(&dirs[1]));
                (
                    (m0 + m1) / 2.0,
                    ((m1 - m0).abs() / 2.0).max(spread).max(1_000.0),
                )
            }
            (Some(m), None) | (None, Some(m)) => {
                let s = if dirs[0].is_empty() {
                    &dirs[1]
                } else {
                    &dirs[0]
                };
                (m, spread(s).max(ONE_WAY_NS))
            }
            (None, None) => continue,
        };
        edges.push(Edge {
            a,
            b,
            off_ns: off,
            unc_ns: unc,
            method: OffsetMethod::SharedPackets,
            samples,
        });
    }
    edges
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Half the 10–90 % range of sorted samples.
fn spread(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let lo = v[(v.len() - 1) / 10];
    let hi = v[(v.len() - 1) * 9 / 10];
    (hi - lo) / 2.0
}

/// Per node: (TSval, capture time) of the proxy's segments of one 4-tuple.
type TsvalSamples = BTreeMap<usize, Vec<(u32, Timestamp)>>;

/// Per TSval clock and node: the lower envelope of `t - tsval * tick`.
///
/// A TSval clock belongs to one connection: Linux adds a random offset per
/// connection (4-tuple), so only nodes that captured the same connection (a
/// split one, or the proxy's own capture) can be compared. A reused port
/// brings a new random offset: each node's samples of one 4-tuple are
/// clustered by their zero, and only zeros closer than `max_off_ns` are
/// compared (a random offset lands there with odds of about 1 in 10^5).
fn tsval_edges(idx: &HashMap<&str, usize>, pkts: &Store, max_off_ns: f64) -> Vec<Edge> {
    let mut samples: BTreeMap<(SocketAddr, SocketAddr), TsvalSamples> = BTreeMap::new();
    for p in pkts.iter().filter(|p| !p.is_dup() && p.to_backend()) {
        let (Some(tsval), Some(&n)) = (p.obs.opts.tsval, idx.get(p.obs.node.as_ref())) else {
            continue;
        };
        samples
            .entry((p.obs.src, p.obs.dst))
            .or_default()
            .entry(n)
            .or_default()
            .push((tsval, p.obs.ts));
    }
    // (a, b) → estimates from each TSval clock
    let mut per_pair: BTreeMap<(usize, usize), Vec<(f64, u64)>> = BTreeMap::new();
    let mut tick_used = DEFAULT_TICK_NS;
    for per_node in samples.values() {
        if per_node.len() < 2 {
            continue;
        }
        let tick = fit_tick(per_node).unwrap_or(DEFAULT_TICK_NS);
        tick_used = tick;
        // A common TSval origin keeps the products small; the signed
        // difference survives a TSval wrap inside one connection.
        let t0 = per_node.values().find_map(|v| v.first()).map_or(0, |s| s.0);
        let zeros: BTreeMap<usize, Vec<(f64, u64)>> = per_node
            .iter()
            .map(|(&n, v)| {
                let mut z: Vec<f64> = v
                    .iter()
                    .map(|&(tv, t)| {
                        t.as_nanos() as f64 - f64::from(tv.wrapping_sub(t0) as i32) * tick
                    })
                    .collect();
                z.sort_by(f64::total_cmp);
                // Clusters: one per connection instance; its zero is its minimum.
                let mut clusters: Vec<(f64, u64)> = Vec::new();
                let mut last = f64::NEG_INFINITY;
                for x in z {
                    match clusters.last_mut() {
                        Some(c) if x - last <= 1e9 => c.1 += 1,
                        _ => clusters.push((x, 1)),
                    }
                    last = x;
                }
                (n, clusters)
            })
            .collect();
        let ns: Vec<usize> = zeros.keys().copied().collect();
        for i in 0..ns.len() {
            for j in i + 1..ns.len() {
                for &(za, ca) in &zeros[&ns[i]] {
                    for &(zb, cb) in &zeros[&ns[j]] {
                        if (za - zb).abs() <= max_off_ns {
                            per_pair
                                .entry((ns[i], ns[j]))
                                .or_default()
                                .push((za - zb, ca.min(cb)));
                        }
                    }
                }
            }
        }
    }
    per_pair
        .into_iter()
        .filter_map(|((a, b), mut est)| {
            est.sort_by(|x, y| x.0.total_cmp(&y.0));
            let samples = est.iter().map(|e| e.1).sum();
            let offs: Vec<f64> = est.iter().map(|e| e.0).collect();
            let off = median(&offs)?;
            Some(Edge {
                a,
                b,
                off_ns: off,
                // A lower envelope is within one tick (plus stack latency).
                unc_ns: tick_used + spread(&offs),
                method: OffsetMethod::Tsval,
                samples,
            })
        })
        .collect()
}

/// The TSval tick in ns, fitted on the node with the longest TSval span, when
/// that span is long enough (10 s) for the fit to beat the 1 ms default.
fn fit_tick(per_node: &TsvalSamples) -> Option<f64> {
    let v = per_node.values().max_by_key(|v| {
        let lo = v.iter().map(|s| s.0).min().unwrap_or(0);
        let hi = v.iter().map(|s| s.0).max().unwrap_or(0);
        hi.wrapping_sub(lo)
    })?;
    let (lo, hi) = (v.iter().min_by_key(|s| s.0)?, v.iter().max_by_key(|s| s.0)?);
    let dticks = f64::from(hi.0.wrapping_sub(lo.0));
    let dt = Skew::between(hi.1, lo.1).as_nanos_f64();
    if dt < 10e9 || dticks <= 0.0 {
        return None;
    }
    let tick = dt / dticks;
    // Snap to the rates stacks use (1000, 250, 100 Hz) when close.
    [1e6, 4e6, 10e6]
        .into_iter()
        .find(|&t: &f64| (tick - t).abs() / t < 0.02)
        .or(Some(tick))
}
