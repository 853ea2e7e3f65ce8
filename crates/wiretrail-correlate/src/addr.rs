//! Sockets as Go prints them in `net.OpError`: `10.1.1.5:51392`,
//! `[fd00::5%eth0]:46572`, `backend.svc:80`.

use std::net::{IpAddr, SocketAddr};

/// The host part: an address, or a name we cannot join on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// One side of the connection as the log line printed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: Host,
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::Ip(ip) => Some(ip),
            Host::Name(_) => None,
        }
    }

    pub fn socket(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.ip()?, self.port?))
    }
}

/// Parses Go's `host:port`. Zones (`%eth0`) are dropped: packets do not carry them.
pub fn parse_endpoint(s: &str) -> Option<Endpoint> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let host = host.split('%').next().unwrap_or(host);
        let ip: IpAddr = host.parse().ok()?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if tail.is_empty() => None,
            None => return None,
        };
        return Some(Endpoint {
            host: Host::Ip(ip),
            port,
        });
    }
    // A bare IPv6 address has several colons and no port.
    if s.matches(':').count() > 1 {
        let ip: IpAddr = s.split('%').next()?.parse().ok()?;
        return Some(Endpoint {
            host: Host::Ip(ip),
            port: None,
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (s, None),
    };
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(host.to_string()),
    };
    Some(Endpoint { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms() {
        let e = parse_endpoint("10.1.1.5:51392").unwrap();
        assert_eq!(e.socket(), Some("10.1.1.5:51392".parse().unwrap()));
        let e = parse_endpoint("[fd00::5%eth0]:46572").unwrap();
        assert_eq!(e.socket(), Some("[fd00::5]:46572".parse().unwrap()));
        let e = parse_endpoint("ip-backend:80").unwrap();
        assert_eq!(e.host, Host::Name("ip-backend".into()));
        assert_eq!(e.port, Some(80));
        assert_eq!(e.socket(), None);
        let e = parse_endpoint("fd00::5").unwrap();
        assert_eq!(e.port, None);
        assert!(parse_endpoint("10.0.0.1:notaport").is_none());
        assert!(parse_endpoint("").is_none());
    }
}
