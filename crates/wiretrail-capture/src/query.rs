//! What correlation asks extraction for.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// A flow to pull out of every node's captures within a time window.
///
/// Its [`FlowTarget`] is either the proxy's port, optionally narrowed to a
/// backend socket (and, with `proxy_ip`, an exact 4-tuple), or a
/// *wildcard*: every connection to a backend socket (from `proxy_ip` when
/// set) in the window, for errors whose log line names no proxy port (dial
/// errors, header timeouts, canceled contexts, bare EOF). A query with
/// neither a port nor a backend (every packet of the capture) cannot be
/// built. Keep wildcard windows tight: they pull every connection of the
/// backend in them. Matching is direction-independent: packets both ways
/// match, and the observation's [`crate::obs::Direction`] says which way
/// each went.
///
/// Serialized as before the target was typed (`proxy_port`, `proxy_ip`,
/// `backend`, `since`, `until`); a document with neither `proxy_port` nor
/// `backend` is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawFlowQuery", into = "RawFlowQuery")]
pub struct FlowQuery {
    /// Which connections.
    pub target: FlowTarget,
    /// The proxy's address, when known.
    pub proxy_ip: Option<IpAddr>,
    /// Inclusive window on the nodes' own clocks, in ns since the epoch.
    pub since: Timestamp,
    pub until: Timestamp,
}

/// Which connections a [`FlowQuery`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowTarget {
    /// The proxy's ephemeral port as the log line names it, and the backend
    /// socket as the proxy addressed it (the VIP) when known.
    ProxyPort {
        port: u16,
        backend: Option<SocketAddr>,
    },
    /// Every connection to this backend socket, whatever the proxy's port.
    Backend(SocketAddr),
}

impl FlowQuery {
    /// The connections of the proxy's `port` (to `backend`, from
    /// `proxy_ip`, when given) within the window.
    pub fn to_port(
        port: u16,
        proxy_ip: Option<IpAddr>,
        backend: Option<SocketAddr>,
        since: Timestamp,
        until: Timestamp,
    ) -> Self {
        FlowQuery {
            target: FlowTarget::ProxyPort { port, backend },
            proxy_ip,
            since,
            until,
        }
    }

    /// A wildcard: every connection from `proxy_ip` (any, if `None`) to
    /// `backend` within the window, whatever the proxy's port.
    pub fn to_backend(
        proxy_ip: Option<IpAddr>,
        backend: SocketAddr,
        since: Timestamp,
        until: Timestamp,
    ) -> Self {
        FlowQuery {
            target: FlowTarget::Backend(backend),
            proxy_ip,
            since,
            until,
        }
    }

    /// The proxy's port; `None` for a wildcard.
    pub fn proxy_port(&self) -> Option<u16> {
        match self.target {
            FlowTarget::ProxyPort { port, .. } => Some(port),
            FlowTarget::Backend(_) => None,
        }
    }

    /// The backend socket, when the query names one.
    pub fn backend(&self) -> Option<SocketAddr> {
        match self.target {
            FlowTarget::ProxyPort { backend, .. } => backend,
            FlowTarget::Backend(b) => Some(b),
        }
    }

    /// The proxy port is left open.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.target, FlowTarget::Backend(_))
    }
}

/// [`FlowQuery`] as it is (de)serialized: the fields it had before its
/// target was typed.
#[derive(Serialize, Deserialize)]
struct RawFlowQuery {
    proxy_port: Option<u16>,
    proxy_ip: Option<IpAddr>,
    backend: Option<SocketAddr>,
    since: Timestamp,
    until: Timestamp,
}

impl TryFrom<RawFlowQuery> for FlowQuery {
    type Error = &'static str;
    fn try_from(r: RawFlowQuery) -> Result<Self, Self::Error> {
        let target =
            match (r.proxy_port, r.backend) {
                (Some(port), backend) => FlowTarget::ProxyPort { port, backend },
                (None, Some(b)) => FlowTarget::Backend(b),
                (None, None) => return Err(
                    "a flow query needs a proxy_port or a backend (else it would be every packet)",
                ),
            };
        Ok(FlowQuery {
            target,
            proxy_ip: r.proxy_ip,
            since: r.since,
            until: r.until,
        })
    }
}

impl From<FlowQuery> for RawFlowQuery {
    fn from(q: FlowQuery) -> Self {
        RawFlowQuery {
            proxy_port: q.proxy_port(),
            proxy_ip: q.proxy_ip,
            backend: q.backend(),
            since: q.since,
            until: q.until,
        }
    }
}

impl std::fmt::Display for FlowQuery {
    /// `198.18.0.2:51392-198.18.10.10:80`, `*:51392-…`, `198.18.0.2:*-…`, `port 51392`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.proxy_ip.map(|ip| match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        });
        let port = self.proxy_port().map_or("*".to_string(), |p| p.to_string());
        match (ip, self.backend()) {
            (Some(ip), Some(b)) => write!(f, "{ip}:{port}-{b}"),
            (Some(ip), None) => write!(f, "{ip}:{port} (any backend)"),
            (None, Some(b)) => write!(f, "*:{port}-{b}"),
            (None, None) => write!(f, "port {port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire form is the old one, and it cannot carry a query with
    /// neither a port nor a backend.
    #[test]
    fn serialized_as_before_and_never_empty() {
        let q = FlowQuery::to_port(
            51392,
            None,
            Some("10.0.0.1:80".parse().unwrap()),
            Timestamp::from_nanos(1),
            Timestamp::from_nanos(2),
        );
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"proxy_port": 51392, "proxy_ip": null, "backend": "10.0.0.1:80", "since": 1, "until": 2})
        );
        assert_eq!(serde_json::from_value::<FlowQuery>(v).unwrap(), q);
        let w: FlowQuery = serde_json::from_value(serde_json::json!({"proxy_port": null, "proxy_ip": null, "backend": "10.0.0.1:80", "since": 1, "until": 2})).unwrap();
        assert!(w.is_wildcard());
        assert_eq!(w.to_string(), "*:*-10.0.0.1:80");
        let e = serde_json::from_value::<FlowQuery>(serde_json::json!({"proxy_port": null, "proxy_ip": "10.0.0.2", "backend": null, "since": 1, "until": 2})).unwrap_err();
        assert!(
            e.to_string().contains("needs a proxy_port or a backend"),
            "{e}"
        );
    }
}
