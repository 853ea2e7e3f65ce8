//! What correlation is told: thresholds, and what is known about each node.

use crate::model::{NodeName, NodeRole};
use std::net::IpAddr;
use wiretrail_capture::{Duration, Timestamp};

/// Thresholds for grouping, windows and artefact detection.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelateConfig {
    /// Errors of the same proxy and backend closer than this form one incident.
    pub incident_gap: Duration,
    /// Capture window before each error. Long by default: a keep-alive
    /// connection that failed may have been opened minutes earlier, and
    /// without its handshake the owning node is harder to name.
    pub before: Duration,
    /// Capture window after each error (the proxy's FIN/RST, late ACKs).
    pub after: Duration,
    /// Two identical headers on ONE node closer than this are one packet
    /// captured twice (bond and member, `any` plus an interface).
    pub dup_window: Duration,
    /// The largest clock offset between nodes we plan for: windows are
    /// widened by it so a node whose clock is off still yields its packets.
    pub max_clock_offset: Duration,
    /// Slack added around an error when choosing the connection instance,
    /// on top of the log's precision and the offsets' uncertainty.
    pub match_slack: Duration,
    /// How far before a port-less error line (dial timeouts, header
    /// timeouts, canceled contexts) its connection's story may begin: the
    /// time-joined queries reach back this far. Go's default dial timeout
    /// is 30 s.
    pub story_lookback: Duration,
    /// What configuration says about the proxies, for errors whose line
    /// names no proxy port (and often no backend either: `context
    /// canceled`, `timeout awaiting response headers`, `EOF`). Empty: only
    /// what other error lines of the same proxy say is used.
    pub proxies: Vec<ProxyHint>,
}

/// One proxy as configuration knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyHint {
    /// The log host it applies to; `None`: every proxy.
    pub host: Option<String>,
    /// Its address on the backend side (narrows time-joined queries).
    pub ip: Option<std::net::IpAddr>,
    /// The backend sockets it dials (its upstreams / the VIP).
    pub upstreams: Vec<std::net::SocketAddr>,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        CorrelateConfig {
            incident_gap: Duration::from_secs(30),
            before: Duration::from_secs(120),
            after: Duration::from_secs(10),
            dup_window: Duration::from_millis(1),
            max_clock_offset: Duration::from_secs(10),
            match_slack: Duration::from_millis(250),
            story_lookback: Duration::from_secs(35),
            proxies: Vec::new(),
        }
    }
}

/// One capturing node, as the pipeline names it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInput {
    pub name: NodeName,
    pub role: NodeRole,
    /// Spans (node clock, ns since epoch) its capture files cover. Empty:
    /// unknown, judged from the packets alone.
    pub coverage: Vec<(Timestamp, Timestamp)>,
    /// A known offset: add to this node's capture times to get reference time.
    pub pinned_offset_s: Option<f64>,
    /// Addresses the node answers for besides its own (the VIP).
    pub aliases: Vec<IpAddr>,
    /// Capture data known to be lost (unreadable, truncated or missing
    /// rotations, an unreachable host). A connection whose life meets one
    /// of these spans is diagnosed as incomplete, never from what is left.
    pub losses: Vec<CaptureLoss>,
}

/// Why capture data of a node was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// The file exists but cannot be read (permission, I/O error).
    Unreadable,
    /// The file ends inside a record (cut mid-write, copied short).
    Truncated,
    /// A rotation is missing from the middle of a numbered or timed series.
    Missing,
    /// The file's header or records are not a capture format we read.
    Corrupt,
    /// The host holding the captures could not be reached.
    Unreachable,
}

impl LossReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Unreadable => "unreadable",
            LossReason::Truncated => "truncated",
            LossReason::Missing => "missing",
            LossReason::Corrupt => "corrupt",
            LossReason::Unreachable => "unreachable",
        }
    }
}

/// One stretch of a node's capture that is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureLoss {
    /// The file (or source) the data was in.
    pub file: String,
    /// Node clock, ns since epoch. `None`: the span could not be bounded
    /// (a lone unreadable file): it may hold any time.
    pub span: Option<(Timestamp, Timestamp)>,
    pub reason: LossReason,
    /// What happened, for the report ("permission denied", "cut at byte 4096").
    pub detail: String,
}

impl NodeInput {
    /// [`NodeInput::new`] from a name still to be checked.
    pub fn named(name: &str, role: NodeRole) -> Result<Self, crate::model::NodeNameError> {
        Ok(NodeInput::new(NodeName::new(name)?, role))
    }

    /// A node with no coverage information, no pinned offset and no aliases.
    pub fn new(name: NodeName, role: NodeRole) -> Self {
        NodeInput {
            name,
            role,
            coverage: Vec::new(),
            pinned_offset_s: None,
            aliases: Vec::new(),
            losses: Vec::new(),
        }
    }

    /// Whether its captures cover any part of `[since, until]` (node clock).
    /// `None` when coverage is unknown.
    pub fn covers(&self, since: Timestamp, until: Timestamp) -> Option<bool> {
        if self.coverage.is_empty() {
            return None;
        }
        Some(self.coverage.iter().any(|&(a, b)| a <= until && b >= since))
    }
}
