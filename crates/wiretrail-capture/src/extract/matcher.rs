//! Which queries a packet belongs to, decided from its addresses alone.
//!
//! A query names the proxy's port, or (a wildcard) leaves it open and names
//! the backend socket. A 65536-bit port map holding the proxy ports of the
//! first kind and the backend ports of the second rejects almost every
//! packet with two bit tests; only packets with such a port on either side
//! reach the per-port query list or, for wildcards, a second small table
//! keyed by (backend ip, backend port), where addresses and the query's
//! time window are checked. That table is empty, and never consulted,
//! unless wildcard queries exist. Cost per packet is flat in the number of
//! queries (hundreds in one pass cost about what one does).

use crate::obs::Direction;
use crate::query::{FlowQuery, FlowTarget};
use crate::time::{Duration, Timestamp};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug)]
pub(crate) struct Matcher<'q> {
    queries: &'q [FlowQuery],
    /// Bit per port: some query has it as proxy port, or some wildcard
    /// query as backend port.
    ports: Box<[u64; 1024]>,
    by_port: HashMap<u16, Vec<usize>>,
    /// Wildcard queries by their backend socket.
    by_backend: HashMap<(IpAddr, u16), Vec<usize>>,
    slack: Duration,
    /// Union of the windows (with slack): packets outside are not looked at.
    pub lo: Timestamp,
    pub hi: Timestamp,
}

impl<'q> Matcher<'q> {
    /// A matcher over `queries[i]` for each `i` in `subset`.
    pub fn new(queries: &'q [FlowQuery], subset: &[usize], slack: Duration) -> Self {
        let mut ports = Box::new([0u64; 1024]);
        let mut by_port: HashMap<u16, Vec<usize>> = HashMap::new();
        let mut by_backend: HashMap<(IpAddr, u16), Vec<usize>> = HashMap::new();
        let (mut lo, mut hi) = (Timestamp::MAX, Timestamp::MIN);
        for &i in subset {
            let q = &queries[i];
            let p = match q.target {
                FlowTarget::ProxyPort { port, .. } => {
                    by_port.entry(port).or_default().push(i);
                    port
                }
                FlowTarget::Backend(b) => {
                    by_backend.entry((b.ip(), b.port())).or_default().push(i);
                    b.port()
                }
            };
            ports[usize::from(p >> 6)] |= 1 << (p & 63);
            lo = lo.min(q.since - slack);
            hi = hi.max(q.until + slack);
        }
        Matcher {
            queries,
            ports,
            by_port,
            by_backend,
            slack,
            lo,
            hi,
        }
    }

    #[inline]
    fn has_port(&self, p: u16) -> bool {
        self.ports[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }

    /// Cheap test on the port pair alone.
    #[inline]
    pub fn may_match(&self, sport: u16, dport: u16) -> bool {
        self.has_port(sport) || self.has_port(dport)
    }

    /// A shortcut for the overwhelmingly common frame, untagged Ethernet
    /// carrying IPv4/TCP: reads the two ports at their fixed place and says
    /// `true` when neither is a query's port, so the frame can be dropped
    /// without the full link/IP walk. It only ever rejects frames whose
    /// ports [`crate::decode::tcp_ports`] would read the same (or not at
    /// all, for a non-first fragment); anything else answers `false` and
    /// takes the full path.
    #[inline]
    pub fn reject_fast(&self, linktype: u16, data: &[u8]) -> bool {
        const ETHERNET: u16 = 1;
        if linktype != ETHERNET || data.len() < 14 + 20 || data[12..14] != [0x08, 0x00] {
            return false;
        }
        let (vihl, proto) = (data[14], data[23]);
        let ihl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || ihl < 20 || proto != 6 || data.len() < 14 + ihl + 4 {
            return false;
        }
        let t = &data[14 + ihl..];
        !self.may_match(
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        )
    }

    /// Every (query, direction) this packet matches, appended to `out`.
    pub fn matches(
        &self,
        ts: Timestamp,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        out: &mut Vec<(usize, Direction)>,
    ) {
        out.clear();
        // `src` as the proxy's side: by its port, or by `dst` as a
        // wildcard's backend; then the other way round.
        for (proxy, backend, dir) in [
            (src, dst, Direction::ToBackend),
            (dst, src, Direction::ToProxy),
        ] {
            let by_proxy_port = self
                .has_port(proxy.1)
                .then(|| self.by_port.get(&proxy.1))
                .flatten();
            let by_backend = if self.by_backend.is_empty() || !self.has_port(backend.1) {
                None
            } else {
                self.by_backend.get(&backend)
            };
            for &i in by_proxy_port.into_iter().chain(by_backend).flatten() {
                if !out.iter().any(|&(j, _)| j == i) && self.fits(i, ts, proxy, backend) {
                    out.push((i, dir));
                }
            }
        }
    }

    /// Does query `i` match with `proxy` as its proxy side at time `ts`?
    #[inline]
    fn fits(&self, i: usize, ts: Timestamp, proxy: (IpAddr, u16), backend: (IpAddr, u16)) -> bool {
        let q = &self.queries[i];
        q.proxy_port().is_none_or(|p| p == proxy.1)
            && q.proxy_ip.is_none_or(|ip| ip == proxy.0)
            && q.backend()
                .is_none_or(|b| b.ip() == backend.0 && b.port() == backend.1)
            && ts >= q.since - self.slack
            && ts <= q.until + self.slack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(spec: &str, since: i64, until: i64) -> FlowQuery {
        let (since, until) = (Timestamp::from_nanos(since), Timestamp::from_nanos(until));
        // "proxyip:port-backendip:port" or ":port"; port "*": wildcard
        let (p, b) = spec.split_once('-').unwrap_or((spec, ""));
        let (pip, pport) = p.rsplit_once(':').unwrap();
        let proxy_ip = (!pip.is_empty()).then(|| pip.parse().unwrap());
        let backend = (!b.is_empty()).then(|| b.parse().unwrap());
        match pport {
            "*" => FlowQuery::to_backend(proxy_ip, backend.unwrap(), since, until),
            p => FlowQuery::to_port(p.parse().unwrap(), proxy_ip, backend, since, until),
        }
    }

    fn addr(s: &str) -> (IpAddr, u16) {
        let a: std::net::SocketAddr = s.parse().unwrap();
        (a.ip(), a.port())
    }

    #[test]
    fn directions_windows_and_addresses() {
        let qs = [
            q("10.0.0.1:40000-10.0.1.5:8080", 100, 200),
            q(":40001", 0, 1000),
            q("10.0.0.9:40000", 0, 1000),
        ];
        let m = Matcher::new(&qs, &[0, 1, 2], Duration::from_nanos(10));
        let mut out = Vec::new();
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.0.1:40000"),
            addr("10.0.1.5:8080"),
            &mut out,
        );
        assert_eq!(out, vec![(0, Direction::ToBackend)]);
        m.matches(
            Timestamp::from_nanos(205),
            addr("10.0.1.5:8080"),
            addr("10.0.0.1:40000"),
            &mut out,
        );
        assert_eq!(out, vec![(0, Direction::ToProxy)], "inside the slack");
        m.matches(
            Timestamp::from_nanos(215),
            addr("10.0.1.5:8080"),
            addr("10.0.0.1:40000"),
            &mut out,
        );
        assert!(out.is_empty(), "outside window + slack");
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.0.1:40000"),
            addr("10.0.1.6:8080"),
            &mut out,
        );
        assert!(out.is_empty(), "other backend");
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.1.6:8080"),
            addr("192.168.3.3:40001"),
            &mut out,
        );
        assert_eq!(out, vec![(1, Direction::ToProxy)]);
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.0.9:40000"),
            addr("10.0.1.6:8080"),
            &mut out,
        );
        assert_eq!(out, vec![(2, Direction::ToBackend)]);
        assert!(!m.may_match(8080, 443));
        assert_eq!((m.lo.as_nanos(), m.hi.as_nanos()), (-10, 1010));
    }

    #[test]
    fn wildcards_match_by_backend_socket() {
        let qs = [
            q("10.0.0.1:*-10.0.1.5:8080", 100, 200),
            q(":*-10.0.1.6:8080", 100, 200),
            q(":40000", 0, 1000),
        ];
        let m = Matcher::new(&qs, &[0, 1, 2], Duration::from_nanos(0));
        let mut out = Vec::new();
        // Any proxy port, both ways.
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.0.1:51000"),
            addr("10.0.1.5:8080"),
            &mut out,
        );
        assert_eq!(out, vec![(0, Direction::ToBackend)]);
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.1.5:8080"),
            addr("10.0.0.1:51001"),
            &mut out,
        );
        assert_eq!(out, vec![(0, Direction::ToProxy)]);
        // Narrowed to the proxy's address; another backend; outside the window.
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.0.2:51000"),
            addr("10.0.1.5:8080"),
            &mut out,
        );
        assert!(out.is_empty());
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.0.0.1:51000"),
            addr("10.0.1.5:8081"),
            &mut out,
        );
        assert!(out.is_empty());
        m.matches(
            Timestamp::from_nanos(201),
            addr("10.0.0.1:51000"),
            addr("10.0.1.5:8080"),
            &mut out,
        );
        assert!(out.is_empty());
        // Without a proxy address: any client of the backend socket.
        m.matches(
            Timestamp::from_nanos(150),
            addr("10.9.9.9:40000"),
            addr("10.0.1.6:8080"),
            &mut out,
        );
        assert_eq!(
            out,
            vec![(2, Direction::ToBackend), (1, Direction::ToBackend)]
        );
        // The backend's port is in the fast map, its other traffic is not.
        assert!(m.may_match(8080, 443));
        assert!(!m.may_match(8081, 443));
    }

    #[test]
    fn fast_rejection_only_for_plain_ethernet_ipv4_tcp() {
        let qs = [q(":40000", 0, 10)];
        let m = Matcher::new(&qs, &[0], Duration::from_nanos(0));
        // Ethernet, IPv4 (IHL 6: one option word), TCP 8080 -> 443.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[
            0x08, 0x00, 0x46, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1,
            1,
        ]);
        f.extend_from_slice(&[0x1f, 0x90, 0x01, 0xbb]);
        f.extend_from_slice(&[0; 16]);
        assert!(m.reject_fast(1, &f));
        // The query's port on either side: not rejected.
        f[38..40].copy_from_slice(&40000u16.to_be_bytes());
        assert!(!m.reject_fast(1, &f));
        f[38..40].copy_from_slice(&443u16.to_be_bytes());
        f[40..42].copy_from_slice(&40000u16.to_be_bytes());
        assert!(!m.reject_fast(1, &f));
        // Not TCP, VLAN-tagged, another link type, too short: full path.
        f[40..42].copy_from_slice(&443u16.to_be_bytes());
        let mut udp = f.clone();
        udp[23] = 17;
        assert!(!m.reject_fast(1, &udp));
        let mut vlan = f.clone();
        vlan[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(!m.reject_fast(1, &vlan));
        assert!(!m.reject_fast(113, &f));
        assert!(!m.reject_fast(1, &f[..40]));
    }
}
