//! What correlation asks extraction for.

use crate::obs::Nanos;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// A flow to pull out of every node's captures within a time window.
///
/// Either an exact 4-tuple (`proxy` and `backend` both set) or a proxy port,
/// optionally narrowed to a proxy address and/or a backend address. Matching
/// is direction-independent: packets both ways match, and the observation's
/// [`crate::obs::Direction`] says which way each went.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowQuery {
    /// The proxy's ephemeral port (always known from the log line).
    pub proxy_port: u16,
    /// The proxy's address, when known.
    pub proxy_ip: Option<IpAddr>,
    /// The backend socket as the proxy addressed it (the VIP), when known.
    pub backend: Option<SocketAddr>,
    /// Inclusive window on the nodes' own clocks, in ns since the epoch.
    pub since: Nanos,
    pub until: Nanos,
}
