//! What extraction hands to correlation: one matched packet as one node saw it.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::time::Timestamp;

/// A TCP sequence (or acknowledgement) number: 32 bits that wrap, so
/// "after" is the sign of the wrapping difference (RFC 793 §3.3), never
/// the integers' order. Comparisons (`<`, `>`) follow sequence space, as
/// smoltcp's `TcpSeqNumber` does; they are only meaningful within 2^31 of
/// each other, which is why the type is not `Ord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// How far `self` lies past `base`, forward in sequence space
    /// (a relative sequence number when `base` is the ISN).
    pub fn since(self, base: SeqNumber) -> u32 {
        self.0.wrapping_sub(base.0)
    }

    /// The shorter way round between two sequence numbers.
    pub fn distance(self, other: SeqNumber) -> u32 {
        self.since(other).min(other.since(self))
    }

    /// The later of two (in sequence space).
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if other > self {
            other
        } else {
            self
        }
    }
}

impl std::ops::Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }
}

impl std::ops::Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n))
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<std::cmp::Ordering> {
        Some((self.0.wrapping_sub(other.0) as i32).cmp(&0))
    }
}

impl std::fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// TCP flag bits as on the wire (low 9 bits of the flags field: NS..FIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }
}

/// Direction relative to the query's proxy side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Proxy (the ephemeral port) → backend.
    ToBackend,
    /// Backend → proxy.
    ToProxy,
}

/// Link-layer facts kept for path-anomaly checks (MAC flux, VLAN change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct LinkInfo {
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Outermost VLAN id, if tagged.
    pub vlan: Option<u16>,
}

/// TCP options wiretrail reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TcpOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// Number of SACK blocks (the blocks themselves are in the packet bytes).
    pub sack_blocks: u8,
    pub tsval: Option<u32>,
    pub tsecr: Option<u32>,
    /// The snaplen cut the option area: an option absent here may have
    /// been sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

/// One matched TCP packet as one node captured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketObs {
    /// Node name as given in the pipeline (`backend-01`).
    pub node: Arc<str>,
    /// The capture file it came from.
    pub file: Arc<PathBuf>,
    /// 1-based record number within the file, as tshark numbers frames.
    pub frame: u64,
    /// Capture time on the node's own clock.
    pub ts: Timestamp,
    /// Indices of the [`crate::query::FlowQuery`]s that matched (into the
    /// slice given to extraction), ascending, never empty: one observation
    /// per frame however many queries it matched (overlapping windows of
    /// one flow are common), so its bytes are held once.
    pub queries: Vec<usize>,
    pub dir: Direction,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IPv4 identification; `None` for IPv6 (unless a fragment header gives one).
    pub ip_id: Option<u32>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    pub flags: TcpFlags,
    /// Raw (absolute) sequence and acknowledgement numbers.
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    /// TCP payload length from the IP lengths (not the captured length).
    pub payload_len: u32,
    /// Raw window field (unscaled).
    pub window: u16,
    pub opts: TcpOpts,
    pub link: LinkInfo,
    /// pcap/pcapng LINKTYPE of the bytes below.
    pub linktype: u16,
    /// Original length on the wire.
    pub orig_len: u32,
    /// The captured bytes (possibly snaplen-truncated), for the slice writer;
    /// shared, so cloning an observation (analysis, slices) copies no bytes.
    pub data: Arc<[u8]>,
}

impl PacketObs {
    /// The proxy-side and backend-side sockets regardless of direction.
    pub fn proxy_backend(&self) -> (SocketAddr, SocketAddr) {
        match self.dir {
            Direction::ToBackend => (self.src, self.dst),
            Direction::ToProxy => (self.dst, self.src),
        }
    }

    /// Whether query `q` matched this packet.
    pub fn matched(&self, q: usize) -> bool {
        self.queries.binary_search(&q).is_ok()
    }

    pub fn proxy_ip(&self) -> IpAddr {
        self.proxy_backend().0.ip()
    }
}

#[cfg(test)]
mod tests {
    use super::SeqNumber;

    #[test]
    fn sequence_numbers_compare_across_the_wrap() {
        let near_end = SeqNumber(u32::MAX - 10);
        let wrapped = near_end + 100;
        assert_eq!(wrapped, SeqNumber(89));
        assert!(wrapped > near_end, "89 is 100 bytes after 2^32-11");
        assert!(near_end < wrapped);
        assert_eq!(wrapped.since(near_end), 100);
        assert_eq!(near_end.distance(wrapped), 100);
        assert_eq!(wrapped.distance(near_end), 100);
        assert_eq!(near_end.max(wrapped), wrapped);
        assert_eq!(wrapped - 100, near_end);
        // Integers' order would say the opposite.
        assert!(wrapped.0 < near_end.0);
    }
}
