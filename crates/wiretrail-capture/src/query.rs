//! What correlation asks extraction for.

use crate::obs::Nanos;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// A flow to pull out of every node's captures within a time window.
///
/// Either an exact 4-tuple (`proxy` and `backend` both set) or a proxy port,
/// optionally narrowed to a proxy address and/or a backend address; or a
/// *wildcard* (`proxy_port: None`): every connection to the backend socket
/// (from `proxy_ip` when set) in the window, for errors whose log line names
/// no proxy port (dial errors, header timeouts, canceled contexts, bare
/// EOF). A wildcard needs `backend`: without it nothing can be matched, and
/// extraction reports the query as a problem. Keep wildcard windows tight:
/// they pull every connection of the backend in them. Matching is
/// direction-independent: packets both ways match, and the observation's
/// [`crate::obs::Direction`] says which way each went.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowQuery {
    /// The proxy's ephemeral port, when the log line names it; `None`: any
    /// port (a wildcard over the connections to `backend`).
    pub proxy_port: Option<u16>,
    /// The proxy's address, when known.
    pub proxy_ip: Option<IpAddr>,
    /// The backend socket as the proxy addressed it (the VIP), when known.
    pub backend: Option<SocketAddr>,
    /// Inclusive window on the nodes' own clocks, in ns since the epoch.
    pub since: Nanos,
    pub until: Nanos,
}

impl FlowQuery {
    /// A wildcard: every connection from `proxy_ip` (any, if `None`) to
    /// `backend` within the window, whatever the proxy's port.
    pub fn to_backend(
        proxy_ip: Option<IpAddr>,
        backend: SocketAddr,
        since: Nanos,
        until: Nanos,
    ) -> Self {
        FlowQuery {
            proxy_port: None,
            proxy_ip,
            backend: Some(backend),
            since,
            until,
        }
    }

    /// The proxy port is left open.
    pub fn is_wildcard(&self) -> bool {
        self.proxy_port.is_none()
    }

    /// Why this query can match nothing, if it cannot: a wildcard without a
    /// backend socket would be every packet of the capture.
    pub fn problem(&self) -> Option<String> {
        (self.proxy_port.is_none() && self.backend.is_none()).then(|| {
            "a query with neither a proxy port nor a backend socket matches nothing (it would be every packet)".to_string()
        })
    }
}

impl std::fmt::Display for FlowQuery {
    /// `198.18.0.2:51392-198.18.10.10:80`, `*:51392-…`, `198.18.0.2:*-…`, `port 51392`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.proxy_ip.map(|ip| match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        });
        let port = self.proxy_port.map_or("*".to_string(), |p| p.to_string());
        match (ip, self.backend) {
            (Some(ip), Some(b)) => write!(f, "{ip}:{port}-{b}"),
            (Some(ip), None) => write!(f, "{ip}:{port} (any backend)"),
            (None, Some(b)) => write!(f, "*:{port}-{b}"),
            (None, None) => write!(f, "port {port}"),
        }
    }
}
