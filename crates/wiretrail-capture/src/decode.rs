//! Zero-copy TCP/IP decoding of one captured frame, for every link type a
//! Linux capture box writes.
//!
//! The link layer (a handful of fixed offsets per link type) is walked here;
//! the IP layer (IPv4 options, lengths, fragments; IPv6 extension headers)
//! is `etherparse`'s lax slicer, which keeps going on truncated captures;
//! the TCP fixed header and options are read here because we must keep the
//! fields of a header whose options were cut by the snaplen (tshark does),
//! and must not stop at option kinds nobody registered (TFO, MPTCP).
//!
//! Nothing allocates. Nothing reads past the captured bytes. Lengths come
//! from the IP headers (not from the capture length), as tshark computes
//! `tcp.len`; BIG TCP (IPv4 total length 0, IPv6 jumbograms) takes it from
//! the original frame length.

use crate::obs::{LinkInfo, TcpFlags, TcpOpts};
use etherparse::{Ethernet2HeaderSlice, LaxIpSlice, SingleVlanHeaderSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// LINKTYPE_* values we decode.
pub mod linktype {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const ETHERNET_MPACKET: u16 = 274;
    pub const LINUX_SLL2: u16 = 276;
    /// DLT_RAW as some BSDs number it in files.
    pub const RAW_BSD12: u16 = 12;
    pub const RAW_BSD14: u16 = 14;
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const IPPROTO_TCP: u8 = 6;

/// One TCP segment, viewed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 identification, or the IPv6 fragment header's id if present.
    pub ip_id: Option<u32>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    /// Raw window field (unscaled).
    pub window: u16,
    /// TCP payload length from the IP lengths (what tshark calls tcp.len).
    pub payload_len: u32,
    /// Options found in the captured part of the header.
    pub opts: TcpOpts,
    pub link: LinkInfo,
    /// The captured part of the payload (may be shorter than `payload_len`).
    pub payload: &'a [u8],
    /// True if this is the first fragment of a fragmented IP datagram: the
    /// header is real but `payload_len` covers only this fragment.
    pub first_fragment: bool,
    /// True if the TCP header itself (with its options) was cut by the snaplen.
    pub header_truncated: bool,
}

/// Why a frame yields no TCP segment. Count these; none is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// ARP, LLDP, ... anything that is not IPv4/IPv6.
    NotIp,
    /// IP, but not TCP (UDP, ICMP, GRE: tunnels are not decoded).
    NotTcp,
    /// A non-first IP fragment (fragments are counted, not reassembled).
    Fragment,
    /// The capture ends before the fixed TCP header (or a lower header) does.
    Truncated,
    UnsupportedLink(u16),
    Malformed(&'static str),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NotIp => f.write_str("not IP"),
            Skip::NotTcp => f.write_str("not TCP"),
            Skip::Fragment => f.write_str("non-first IP fragment"),
            Skip::Truncated => f.write_str("truncated before the TCP header"),
            Skip::UnsupportedLink(l) => write!(f, "unsupported link type {l}"),
            Skip::Malformed(why) => write!(f, "malformed: {why}"),
        }
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Strip the link layer: returns the link facts, the ethertype-like
/// protocol (0 = "look at the IP version nibble") and the network bytes.
fn link_layer(linktype: u16, data: &[u8]) -> Result<(LinkInfo, u16, &[u8]), Skip> {
    use linktype::*;
    match linktype {
        ETHERNET => ethernet(data),
        ETHERNET_MPACKET => {
            // 7 bytes preamble + 1 byte SMD. Express (SMD-E) and preemptable
            // start (SMD-S0..3) mPackets begin an Ethernet frame; verify,
            // respond and continuation mPackets carry no header of their own.
            match data.get(7) {
                None => Err(Skip::Truncated),
                Some(0xD5 | 0xE6 | 0x4C | 0x7F | 0xB3) => ethernet(&data[8..]),
                Some(_) => Err(Skip::NotIp),
            }
        }
        LINUX_SLL => {
            if data.len() < 16 {
                return Err(Skip::Truncated);
            }
            let halen = be16(data, 4);
            let src_mac = (halen == 6).then(|| mac(&data[6..12]));
            let link = LinkInfo {
                src_mac,
                ..LinkInfo::default()
            };
            Ok((link, be16(data, 14), &data[16..]))
        }
        LINUX_SLL2 => {
            if data.len() < 20 {
                return Err(Skip::Truncated);
            }
            let src_mac = (data[11] == 6).then(|| mac(&data[12..18]));
            let link = LinkInfo {
                src_mac,
                ..LinkInfo::default()
            };
            Ok((link, be16(data, 0), &data[20..]))
        }
        NULL | LOOP => {
            if data.len() < 4 {
                return Err(Skip::Truncated);
            }
            // NULL: the AF in the capturing host's byte order; LOOP: network order.
            let raw = [data[0], data[1], data[2], data[3]];
            let af = if linktype == LOOP || u32::from_le_bytes(raw) > 0xffff {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            };
            let proto = match af {
                2 => ETH_IPV4,
                // Linux 10, FreeBSD 28, OpenBSD/NetBSD 24, macOS 30.
                10 | 24 | 28 | 30 => ETH_IPV6,
                _ => return Err(Skip::NotIp),
            };
            Ok((LinkInfo::default(), proto, &data[4..]))
        }
        RAW | RAW_BSD12 | RAW_BSD14 => Ok((LinkInfo::default(), 0, data)),
        IPV4 => Ok((LinkInfo::default(), ETH_IPV4, data)),
        IPV6 => Ok((LinkInfo::default(), ETH_IPV6, data)),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

fn mac(b: &[u8]) -> [u8; 6] {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

fn ethernet(data: &[u8]) -> Result<(LinkInfo, u16, &[u8]), Skip> {
    let eth = Ethernet2HeaderSlice::from_slice(data).map_err(|_| Skip::Truncated)?;
    let mut link = LinkInfo {
        src_mac: Some(eth.source()),
        dst_mac: Some(eth.destination()),
        vlan: None,
    };
    let mut proto = eth.ether_type().0;
    let mut rest = &data[eth.slice().len()..];
    // Any depth of 802.1Q / 802.1ad tags; bounded by the frame length.
    while matches!(proto, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD) {
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| Skip::Truncated)?;
        if link.vlan.is_none() {
            link.vlan = Some(tag.vlan_identifier().value());
        }
        proto = tag.ether_type().0;
        rest = &rest[tag.slice().len()..];
    }
    Ok((link, proto, rest))
}

/// The IP layer's facts needed for TCP.
struct IpView<'a> {
    src: IpAddr,
    dst: IpAddr,
    ip_id: Option<u32>,
    ttl: u8,
    /// Declared length of the IP payload (the TCP segment), in bytes.
    declared: u64,
    /// Captured part of it.
    payload: &'a [u8],
    first_fragment: bool,
}

/// `frame_extra` is how many bytes of the frame the snaplen cut off (for
/// BIG TCP lengths taken from the frame).
fn ip_layer(proto: u16, net: &[u8], frame_extra: u64) -> Result<IpView<'_>, Skip> {
    let version = net.first().ok_or(Skip::Truncated)? >> 4;
    match (proto, version) {
        (ETH_IPV4 | 0, 4) | (ETH_IPV6 | 0, 6) => {}
        (0, _) => return Err(Skip::NotIp),
        (ETH_IPV4 | ETH_IPV6, _) => {
            return Err(Skip::Malformed(
                "IP version does not match the link's protocol",
            ))
        }
        _ => return Err(Skip::NotIp),
    }
    let (ip, stop) = LaxIpSlice::from_slice(net).map_err(|e| {
        use etherparse::err::ip::LaxHeaderSliceError as E;
        match e {
            E::Len(_) => Skip::Truncated,
            E::Content(_) => Skip::Malformed("IP header"),
        }
    })?;
    let pl = ip.payload();
    match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            if h.fragments_offset().value() != 0 {
                return Err(Skip::Fragment);
            }
            if pl.ip_number.0 != IPPROTO_TCP {
                return Err(Skip::NotTcp);
            }
            let hdr_len =
                h.slice().len() as u64 + v4.extensions().auth.map_or(0, |a| a.slice().len() as u64);
            let total = u64::from(h.total_len());
            let declared = if total == 0 {
                // BIG TCP / TSO: the IPv4 length field is 0; take the frame's.
                (net.len() as u64 + frame_extra).saturating_sub(hdr_len)
            } else if total < hdr_len {
                return Err(Skip::Malformed("IPv4 total length shorter than its header"));
            } else {
                total - hdr_len
            };
            Ok(IpView {
                src: IpAddr::V4(Ipv4Addr::from(h.source())),
                dst: IpAddr::V4(
                    source_route_dst(h.options()).unwrap_or(Ipv4Addr::from(h.destination())),
                ),
                ip_id: Some(u32::from(h.identification())),
                ttl: h.ttl(),
                declared,
                payload: pl.payload,
                first_fragment: h.more_fragments(),
            })
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            if stop.is_some() {
                // Do not walk extension headers etherparse could not parse.
                return Err(Skip::Malformed("IPv6 extension header"));
            }
            let (ip_id, first_fragment) =
                match v6_fragment(h.next_header().0, v6.extensions().slice()) {
                    Some((_, offset, _)) if offset != 0 => return Err(Skip::Fragment),
                    Some((id, _, more)) => (Some(id), more),
                    None => (None, false),
                };
            if pl.ip_number.0 != IPPROTO_TCP {
                return Err(Skip::NotTcp);
            }
            let exts = v6.extensions().slice().len() as u64;
            let declared = match h.payload_length() {
                // Jumbogram (BIG TCP): length from the frame.
                0 => (net.len() as u64 - 40 + frame_extra).saturating_sub(exts),
                n => u64::from(n).checked_sub(exts).ok_or(Skip::Malformed(
                    "IPv6 payload length shorter than its extension headers",
                ))?,
            };
            Ok(IpView {
                src: IpAddr::V6(Ipv6Addr::from(h.source())),
                dst: IpAddr::V6(Ipv6Addr::from(h.destination())),
                ip_id,
                ttl: h.hop_limit(),
                declared,
                payload: pl.payload,
                first_fragment,
            })
        }
    }
}

/// Find a Fragment header in an IPv6 extension chain that etherparse has
/// already validated: (identification, offset in 8-byte units, more flag).
fn v6_fragment(mut next: u8, exts: &[u8]) -> Option<(u32, u16, bool)> {
    let mut at = 0;
    while at + 8 <= exts.len() {
        let len = match next {
            44 => {
                let f = &exts[at..at + 8];
                let off_flags = be16(f, 2);
                return Some((be32(f, 4), off_flags >> 3, off_flags & 1 == 1));
            }
            // Authentication header: length in 4-byte units, minus 2.
            51 => (usize::from(exts[at + 1]) + 2) * 4,
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => (usize::from(exts[at + 1]) + 1) * 8,
            _ => return None,
        };
        next = exts[at];
        at += len;
    }
    None
}

/// With loose or strict source routing (options 131/137) the header's
/// destination is only the next hop; the endpoint is the route's last
/// address (tshark reports that one too).
fn source_route_dst(opts: &[u8]) -> Option<Ipv4Addr> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = *opts.get(i + 1)? as usize;
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                if (kind == 131 || kind == 137) && len >= 7 {
                    let a = &opts[i + 3..i + len];
                    let last = &a[(a.len() / 4 - 1) * 4..][..4];
                    return Some(Ipv4Addr::new(last[0], last[1], last[2], last[3]));
                }
                i += len;
            }
        }
    }
    None
}

/// Read the options present in `opts` (the captured part of the option
/// area). Stops quietly at EOL or at an option cut by the capture.
fn tcp_options(opts: &[u8]) -> TcpOpts {
    let mut o = TcpOpts::default();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            kind => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = len as usize;
                if len < 2 || i + len > opts.len() {
                    break;
                }
                let v = &opts[i + 2..i + len];
                match (kind, v.len()) {
                    (2, 2) => o.mss = Some(be16(v, 0)),
                    (3, 1) => o.wscale = Some(v[0]),
                    (4, 0) => o.sack_permitted = true,
                    (5, n) => o.sack_blocks = o.sack_blocks.saturating_add((n / 8) as u8),
                    (8, 8) => {
                        o.tsval = Some(be32(v, 0));
                        o.tsecr = Some(be32(v, 4));
                    }
                    _ => {}
                }
                i += len;
            }
        }
    }
    o
}

/// Decode one frame as TCP/IP. `orig_len` is the frame's length on the wire.
pub fn decode_tcp(linktype: u16, data: &[u8], orig_len: u32) -> Result<TcpPacket<'_>, Skip> {
    let (link, proto, net) = link_layer(linktype, data)?;
    let frame_extra = u64::from(orig_len).saturating_sub(data.len() as u64);
    let ip = ip_layer(proto, net, frame_extra)?;
    let t = ip.payload;
    if t.len() < 20 {
        return Err(Skip::Truncated);
    }
    let hdr_len = usize::from(t[12] >> 4) * 4;
    if hdr_len < 20 {
        return Err(Skip::Malformed("TCP data offset below 5"));
    }
    let captured_hdr = hdr_len.min(t.len());
    let mut opts = tcp_options(&t[20..captured_hdr]);
    opts.cut = captured_hdr < hdr_len;
    let payload_len = ip.declared.saturating_sub(hdr_len as u64);
    let payload_end = usize::try_from(ip.declared)
        .unwrap_or(usize::MAX)
        .min(t.len());
    let payload = t
        .get(captured_hdr..payload_end.max(captured_hdr))
        .unwrap_or(&[]);
    Ok(TcpPacket {
        src: ip.src,
        dst: ip.dst,
        src_port: be16(t, 0),
        dst_port: be16(t, 2),
        ip_id: ip.ip_id,
        ttl: ip.ttl,
        flags: TcpFlags(u16::from_be_bytes([t[12] & 0x01, t[13]])),
        seq: be32(t, 4),
        ack: be32(t, 8),
        window: be16(t, 14),
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        opts,
        link,
        payload,
        first_fragment: ip.first_fragment,
        header_truncated: captured_hdr < hdr_len,
    })
}

/// Cheap pre-filter: the TCP 4-tuple (src, src port, dst, dst port), or
/// `None` for anything that `decode_tcp` would not decode as TCP, except a
/// TCP header cut short after its ports: that one is returned, so that a
/// wanted flow's cut packet is counted by `decode_tcp` instead of vanishing.
pub fn tcp_ports(linktype: u16, data: &[u8]) -> Option<(IpAddr, u16, IpAddr, u16)> {
    let (_, proto, net) = link_layer(linktype, data).ok()?;
    let ip = ip_layer(proto, net, 0).ok()?;
    let t = ip.payload;
    // The ports are enough to know whether a flow is wanted; a header cut
    // after them is for `decode_tcp` to flag or count, never to hide.
    if t.len() < 4 || t.get(12).is_some_and(|b| b >> 4 < 5) {
        return None;
    }
    Some((ip.src, be16(t, 0), ip.dst, be16(t, 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 10.0.0.1:1234 -> 10.0.0.2:80, SYN, with MSS/SACK_PERM/TS/WS options.
    fn ipv4_syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 60, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0,
            2, // IPv4
            0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xff, 0xff, 0, 0, 0,
            0, // TCP
        ];
        p.extend_from_slice(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        p
    }

    fn check(t: &TcpPacket<'_>) {
        assert_eq!(t.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (t.src_port, t.dst_port, t.seq, t.ip_id, t.ttl),
            (1234, 80, 1, Some(0x1234), 64)
        );
        assert!(t.flags.syn() && !t.flags.ack());
        assert_eq!(t.opts.mss, Some(1460));
        assert_eq!(t.opts.wscale, Some(7));
        assert!(t.opts.sack_permitted);
        assert_eq!((t.opts.tsval, t.opts.tsecr), (Some(7), Some(0)));
        assert_eq!(t.payload_len, 0);
    }

    #[test]
    fn null_loopback_all_address_families_and_byte_orders() {
        for (lt, af, be) in [(0u16, 2u32, false), (0, 2, true), (108, 2, true)] {
            let mut f = if be {
                af.to_be_bytes()
            } else {
                af.to_le_bytes()
            }
            .to_vec();
            f.extend(ipv4_syn());
            check(&decode_tcp(lt, &f, f.len() as u32).unwrap());
        }
        // IPv6 AF values of Linux, OpenBSD/NetBSD, FreeBSD, macOS: an IPv4
        // packet behind them is a mismatch, not a silent decode.
        for af in [10u32, 24, 28, 30] {
            let mut f = af.to_le_bytes().to_vec();
            f.extend(ipv4_syn());
            assert!(
                matches!(decode_tcp(0, &f, 0), Err(Skip::Malformed(_))),
                "AF {af}"
            );
        }
        let mut f = 99u32.to_le_bytes().to_vec();
        f.extend(ipv4_syn());
        assert_eq!(decode_tcp(0, &f, 0).unwrap_err(), Skip::NotIp);
    }

    #[test]
    fn ethernet_tags_mpacket_and_unknown_links() {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(&[0x88, 0xa8, 0x20, 0x07, 0x81, 0x00, 0xf0, 0x0a, 0x08, 0x00]);
        f.extend(ipv4_syn());
        let t = decode_tcp(1, &f, f.len() as u32).unwrap();
        check(&t);
        assert_eq!(t.link.vlan, Some(7), "outer VID, PCP bits masked");
        assert_eq!(t.link.src_mac, Some([2, 0, 0, 0, 0, 2]));
        let mut m = vec![0x55; 7];
        m.push(0xD5);
        m.extend(&f);
        check(&decode_tcp(274, &m, 0).unwrap());
        m[7] = 0x61; // continuation fragment
        assert_eq!(decode_tcp(274, &m, 0).unwrap_err(), Skip::NotIp);
        assert_eq!(
            decode_tcp(127, &f, 0).unwrap_err(),
            Skip::UnsupportedLink(127)
        );
    }

    #[test]
    fn truncation_fragments_and_big_tcp() {
        let p = ipv4_syn();
        // Cut inside the options: fixed header kept, options that fit read.
        let t = decode_tcp(228, &p[..44], 60).unwrap();
        assert!(t.header_truncated);
        assert_eq!(t.opts.mss, Some(1460));
        assert_eq!(t.opts.tsval, None);
        assert_eq!(decode_tcp(228, &p[..39], 60).unwrap_err(), Skip::Truncated);
        // Non-first fragment.
        let mut q = p.clone();
        q[6] = 0x00;
        q[7] = 0x10;
        assert_eq!(decode_tcp(228, &q, 60).unwrap_err(), Skip::Fragment);
        // BIG TCP: total length 0; payload from the original frame length.
        let mut b = p.clone();
        b[2] = 0;
        b[3] = 0;
        b.extend_from_slice(&[0xaa; 100]);
        let t = decode_tcp(228, &b, 80_060).unwrap();
        assert_eq!(t.payload_len, 80_000);
        assert_eq!(t.payload.len(), 100);
    }
}
