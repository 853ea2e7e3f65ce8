//! The correlation report: what `--format json` writes, what the HTML and
//! terminal renderers draw, and what the Elasticsearch sink turns into
//! documents. Versioned by [`SCHEMA_VERSION`]; keys are stable (add, never
//! rename). `docs/report-schema.md` documents every key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use wiretrail_capture::{Direction, TcpFlags, Timestamp};
use wiretrail_logs::ProxyError;

/// Bump the major part when a key changes meaning or disappears.
pub const SCHEMA_VERSION: &str = "2.0";

/// Why the proxy answered 502, as one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    FlowSplit,
    StrayRst,
    IdleRace,
    BackendReset,
    Refused,
    ConnectTimeout,
    ResponseTimeout,
    ClientCanceled,
    /// A device between proxy and backends (stateful firewall, NAT, load
    /// balancer idle timer) answered RST for the backend.
    MiddleboxReset,
    /// The owner lost its socket without telling the proxy (crash, reboot,
    /// killed process) and answers a later segment with a stateless RST.
    BackendStateLost,
    /// Full-size segments never arrive while smaller ones do; no ICMP
    /// "fragmentation needed" reaches the sender.
    PmtuBlackhole,
    /// The backend's listen queue was full: the handshake completed on the
    /// proxy's side but the server never accepted the connection.
    AcceptQueueOverflow,
    /// The backend closes a keep-alive connection after a fixed number of
    /// requests without saying so; the proxy's next request crosses the close.
    MaxRequestsClose,
    Unknown,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Cause {
    /// Every cause, in the order reports list them.
    pub const ALL: [Cause; 14] = [
        Cause::FlowSplit,
        Cause::StrayRst,
        Cause::IdleRace,
        Cause::BackendReset,
        Cause::Refused,
        Cause::ConnectTimeout,
        Cause::ResponseTimeout,
        Cause::ClientCanceled,
        Cause::MiddleboxReset,
        Cause::BackendStateLost,
        Cause::PmtuBlackhole,
        Cause::AcceptQueueOverflow,
        Cause::MaxRequestsClose,
        Cause::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::FlowSplit => "flow_split",
            Cause::StrayRst => "stray_rst",
            Cause::IdleRace => "idle_race",
            Cause::BackendReset => "backend_reset",
            Cause::Refused => "refused",
            Cause::ConnectTimeout => "connect_timeout",
            Cause::ResponseTimeout => "response_timeout",
            Cause::ClientCanceled => "client_canceled",
            Cause::MiddleboxReset => "middlebox_reset",
            Cause::BackendStateLost => "backend_state_lost",
            Cause::PmtuBlackhole => "pmtu_blackhole",
            Cause::AcceptQueueOverflow => "accept_queue_overflow",
            Cause::MaxRequestsClose => "max_requests_close",
            Cause::Unknown => "unknown",
        }
    }
}

/// What a finding says. Causes plus observations that are not causes
/// (`capture_gap`, `capture_duplicate`, `path_anomaly`, `rst_provenance`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    FlowSplit,
    StrayRst,
    IdleRace,
    BackendReset,
    Refused,
    ConnectTimeout,
    ResponseTimeout,
    ClientCanceled,
    MiddleboxReset,
    BackendStateLost,
    PmtuBlackhole,
    AcceptQueueOverflow,
    MaxRequestsClose,
    /// Many connections to one backend failed within a short time (restart,
    /// deploy, state loss): a finding across errors, not a cause.
    BackendMassFailure,
    /// Many flows moved to another node at one instant (ECMP rehash after a
    /// route change, VIP/ARP flux): a finding across errors, not a cause.
    FlowRehash,
    /// The flow is not (fully) in the captures: a limit, never a cause.
    CaptureGap,
    /// A node recorded each packet twice (bond + member): not retransmissions.
    CaptureDuplicate,
    /// A segment node A acknowledged but never saw was captured on node B.
    GapFilledElsewhere,
    /// Destination MAC, TTL or VLAN changed inside one flow.
    PathAnomaly,
    /// The classification of one RST (who sent it, with or without state).
    RstProvenance,
    /// The clock of a node was shifted to the reference.
    ClockOffset,
}

/// A node's name, checked once for every place it goes: file names
/// (slices, caches), the remote `--node NAME=DIR` argument, pcapng interface
/// names, Elasticsearch documents. Letters, digits, `-`, `_`, `.`, starting
/// with a letter or digit, at most 64 characters; not `log`, the origin of a
/// timeline's log rows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

/// Why a string is not a [`NodeName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a usable node name: {why}")]
pub struct NodeNameError {
    pub name: String,
    pub why: &'static str,
}

impl NodeName {
    pub const MAX_LEN: usize = 64;
    /// The hint shown with a refusal.
    pub const RULE: &'static str =
        "use letters, digits, `-`, `_`, `.` (and not `log`, which names log events)";

    pub fn new(name: &str) -> Result<NodeName, NodeNameError> {
        let refuse = |why| {
            Err(NodeNameError {
                name: name.to_string(),
                why,
            })
        };
        let Some(first) = name.chars().next() else {
            return refuse("it is empty");
        };
        if name.chars().count() > Self::MAX_LEN {
            return refuse("longer than 64 characters");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return refuse("only letters, digits, `-`, `_` and `.` are allowed");
        }
        if !first.is_ascii_alphanumeric() {
            return refuse("it must start with a letter or a digit");
        }
        if name == "log" {
            return refuse("`log` names the log events of a timeline");
        }
        Ok(NodeName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for NodeName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for NodeName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> String {
        n.0
    }
}

impl TryFrom<String> for NodeName {
    type Error = NodeNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NodeName::new(&s)
    }
}

impl TryFrom<&str> for NodeName {
    type Error = NodeNameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        NodeName::new(s)
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Where a timeline row or a piece of evidence comes from: a node's capture
/// or the proxy's log. In the JSON it is the `node` key: the node's name, or
/// `"log"` (which no node may be called).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Node(NodeName),
    Log,
}

impl Origin {
    pub fn node(&self) -> Option<&NodeName> {
        match self {
            Origin::Node(n) => Some(n),
            Origin::Log => None,
        }
    }

    pub fn is_log(&self) -> bool {
        matches!(self, Origin::Log)
    }

    /// The JSON word: the node's name or `log`.
    pub fn as_str(&self) -> &str {
        match self {
            Origin::Node(n) => n.as_str(),
            Origin::Log => "log",
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "log" {
            return Ok(Origin::Log);
        }
        NodeName::new(&s)
            .map(Origin::Node)
            .map_err(serde::de::Error::custom)
    }
}

/// One piece of evidence: a packet on a node, or a log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The node that captured it, or the log.
    #[serde(rename = "node")]
    pub origin: Origin,
    /// Capture file (or log source) path.
    pub file: String,
    /// Frame number in that file (1-based), or line number for logs.
    pub frame: u64,
    /// Reference-clock time.
    pub time: DateTime<Utc>,
    /// Short human note ("RST seq=9042 from a node without the handshake").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub nodes: Vec<String>,
    /// 0..1.
    pub confidence: f64,
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub cause: Cause,
    /// 0..1.
    pub confidence: f64,
    pub summary: String,
    /// What to do about the cause, when wiretrail knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// A typed piece of proof a diagnosis rests on. The confidence of a
/// diagnosis is the sum of its proofs' weights (clamped to 0..0.99);
/// `docs/causes.md` lists every proof, its weight and the causes it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    Handshake,
    AnsweredWithState,
    SegmentAstray,
    OwnerMissed,
    StatelessRst,
    AbortRst,
    RstInNoBackend,
    TtlDiffers,
    MacDiffers,
    SenderIsPeer,
    OwnerSent,
    IdleBefore,
    OwnerNeverSawRequest,
    Retransmitted,
    FinAfterIdle,
    FinAfterResponse,
    RequestCrossedFin,
    RstAfterClose,
    UnreadRequestRst,
    RequestsServed,
    SameRequestCount,
    Refusal,
    SynsUnanswered,
    SynAckRepeated,
    ResetOnAccept,
    RequestNeverAcked,
    FullSizeRetransmitted,
    SmallerGotThrough,
    OwnerNeverGotFullSize,
    RequestAcked,
    ProxyGaveUp,
    LateResponse,
    NodeBurst,
    LogAgrees,
    LogDisagrees,
    Contested,
    PairedByOrder,
    NoHandshakeCaptured,
    /// Capture data of a node is lost for part of the connection's life.
    CaptureIncomplete,
    /// The log line alone (no packets joined).
    LogOnly,
}

/// One proof of a diagnosis, with what it is worth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofRecord {
    pub proof: ProofKind,
    pub weight: f64,
    /// What it shows, in one line.
    pub note: String,
}

/// How a node's clock was placed on the reference clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetMethod {
    /// The same packets captured by two nodes.
    SharedPackets,
    /// The proxy's TCP timestamp clock, fitted per connection.
    Tsval,
    /// Given by the pipeline.
    Pinned,
    /// This node's clock is the reference.
    Reference,
    /// Nothing relates this node's clock to the reference: not shifted, and
    /// its times compare with others' only within the largest plausible
    /// offset.
    Unplaced,
}

impl OffsetMethod {
    /// Whether the offset was measured (or given), not assumed.
    pub fn placed(self) -> bool {
        !matches!(self, OffsetMethod::Unplaced)
    }
}

/// Add `offset_s` to the node's capture times to get reference time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    pub node: String,
    pub offset_s: f64,
    /// ± bound of `offset_s`; `None` when the node could not be placed.
    pub uncertainty_s: Option<f64>,
    pub method: OffsetMethod,
    /// How many packet pairs / flows the estimate rests on.
    #[serde(default)]
    pub samples: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Proxy,
    Backend,
    Switch,
    Other,
}

/// Whether one node saw the connection of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentNode {
    pub name: String,
    pub role: NodeRole,
    pub saw_connection: bool,
    /// Its captures covered the incident's window (false: absence proves nothing).
    pub covered: bool,
}

/// Zeek's `conn_state` (base/protocols/conn/main.zeek), with the proxy as
/// originator: the vocabulary people already read conn.log in. Serialized
/// as Zeek writes it (`RSTO`, `S0`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    #[serde(rename = "SF")]
    Sf,
    /// Connection attempt rejected.
    #[serde(rename = "REJ")]
    Rej,
    /// Established, close attempt by the originator only.
    S2,
    /// Established, close attempt by the responder only.
    S3,
    /// Established, the originator aborted (sent a RST).
    #[serde(rename = "RSTO")]
    Rsto,
    /// Established, the responder aborted.
    #[serde(rename = "RSTR")]
    Rstr,
    /// The originator sent a SYN then a RST; no SYN-ACK from the responder.
    #[serde(rename = "RSTOS0")]
    Rstos0,
    /// The responder sent a SYN-ACK then a RST; no SYN from the originator.
    #[serde(rename = "RSTRH")]
    Rstrh,
    /// The originator sent a SYN then a FIN; no SYN-ACK.
    #[serde(rename = "SH")]
    Sh,
    /// The responder sent a SYN-ACK then a FIN; no SYN.
    #[serde(rename = "SHR")]
    Shr,
    /// No SYN seen, only midstream traffic (also what nothing seen yet is).
    #[serde(rename = "OTH")]
    #[default]
    Oth,
}

impl ConnState {
    /// Zeek's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S0 => "S0",
            Self::S1 => "S1",
            Self::Sf => "SF",
            Self::Rej => "REJ",
            Self::S2 => "S2",
            Self::S3 => "S3",
            Self::Rsto => "RSTO",
            Self::Rstr => "RSTR",
            Self::Rstos0 => "RSTOS0",
            Self::Rstrh => "RSTRH",
            Self::Sh => "SH",
            Self::Shr => "SHR",
            Self::Oth => "OTH",
        }
    }
}

impl std::fmt::Display for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One connection instance as one node saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub node: String,
    pub conn_state: ConnState,
    /// Zeek history letters, from the proxy's side as originator.
    pub history: String,
    pub handshake_seen: bool,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub packets: u64,
    /// Packets dropped as capture duplicates (not counted in `packets`).
    #[serde(default)]
    pub capture_duplicates: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDiagnosis {
    pub cause: Cause,
    pub confidence: f64,
    /// The node that saw the handshake, or null.
    pub owner_node: Option<String>,
    /// Nodes that saw part of the connection without its handshake.
    pub stray_nodes: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// What the confidence is made of.
    #[serde(default)]
    pub proofs: Vec<ProofRecord>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// Figures the diagnosis measured, for patterns across errors.
    #[serde(default, skip_serializing_if = "Measures::is_empty")]
    pub measures: Measures,
}

/// Figures a diagnosis measured on the packets (absent when not measured).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measures {
    /// Flow splits: which data segment of its request went astray (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stray_segment: Option<u32>,
    /// Flow splits: the request's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// Idle races and middlebox resets: how long the connection sat idle (ms);
    /// max-requests closes: how soon after its response the backend closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<i64>,
    /// Max-requests closes: the requests the connection had served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_served: Option<u32>,
}

impl Measures {
    pub fn is_empty(&self) -> bool {
        *self == Measures::default()
    }
}

/// A log record plus what wiretrail concluded about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosedError {
    /// The same keys as `wiretrail logs --format json`.
    #[serde(flatten)]
    pub record: ProxyError,
    pub diagnosis: ErrorDiagnosis,
    /// Per node that saw it.
    pub connection: Vec<ConnectionView>,
}

/// Per-packet marks, tshark's and wiretrail's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Retransmission,
    DupAck,
    ZeroWindow,
    AckedUnseen,
    OutOfOrder,
    CaptureDuplicate,
    GapFilledElsewhere,
    PathAnomaly,
    StraySegment,
    StrayRst,
}

/// One packet on the timeline, as a node captured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketEvent {
    pub dir: Direction,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub window: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsecr: Option<u32>,
    /// Sequence numbers relative to the proxy's ISN on this connection, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_seq: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_ack: Option<u32>,
    pub file: String,
    pub frame: u64,
    pub marks: Vec<Mark>,
}

/// What a timeline row is. Internally tagged: a packet's fields sit beside
/// `"type": "packet"` in the JSON, as they did when the variant held them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    Packet(PacketEvent),
    Log {
        /// Index into the incident's `errors`.
        error: usize,
        message: String,
    },
}

impl EventBody {
    /// Orders rows that share a time and node: a packet's frame, a log
    /// line's error index.
    pub fn order_key(&self) -> u64 {
        match self {
            EventBody::Packet(p) => p.frame,
            EventBody::Log { error, .. } => *error as u64,
        }
    }

    pub fn packet(&self) -> Option<&PacketEvent> {
        match self {
            EventBody::Packet(p) => Some(p),
            EventBody::Log { .. } => None,
        }
    }
}

/// One row of the cross-node timeline, on the reference clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Reference-clock time, ns since epoch.
    pub t_ns: Timestamp,
    /// The node that captured the row, or the log.
    #[serde(rename = "node")]
    pub origin: Origin,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable: derived from proxy, backend and the first error's time.
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub proxy: String,
    pub backend: String,
    /// Community ID v1 of the first error's 4-tuple, when both ends are IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub nodes: Vec<IncidentNode>,
    pub errors: Vec<DiagnosedError>,
    pub timeline: Vec<TimelineEvent>,
}

/// Counts across incidents, for "always backend-03, always the 2nd segment".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub incidents: u64,
    pub errors: u64,
    pub by_cause: std::collections::BTreeMap<Cause, u64>,
    /// Stray node name → count of errors where it was stray.
    pub stray_nodes: std::collections::BTreeMap<String, u64>,
    pub owner_nodes: std::collections::BTreeMap<String, u64>,
    /// Hour (`2023-05-05T17`) → errors.
    pub by_hour: std::collections::BTreeMap<String, u64>,
    /// Free-form observations, each one line ("stray segment was the 2nd data segment in 7/7").
    pub patterns: Vec<String>,
}

/// What kind of trouble an input gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Capture data for a span of time was lost (unreadable, truncated or
    /// missing rotation, unreachable node): packets there are unknown.
    CaptureGap,
    /// A configured source (directory, file, glob, host) gave nothing usable.
    UnusableSource,
    /// Part of a file could not be decoded (bad record, cut header, snaplen
    /// cut a TCP header): counted and skipped.
    Undecodable,
    /// Log lines that held no proxy error wiretrail could parse, or were refused.
    UnparsedLines,
    /// A file was still being written; what was left for the next read.
    Growing,
    /// A proxy error that cannot be joined to packets.
    Unjoinable,
    /// Packets or errors that fit nothing the run was told about.
    Unexpected,
    /// The Elasticsearch side (partial shards, retries that gave up, rejected documents).
    Elasticsearch,
    /// A limit of the run was reached (memory, rows, errors per window).
    Limit,
    /// A cache entry could not be read or written (the run went on without it).
    Cache,
}

/// Where a problem was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProblemSource {
    /// A log input (file path, `-` for stdin).
    Log {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
    },
    /// A capture file or source of one node.
    Capture {
        node: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    /// A node as a whole (unreachable host, no usable source).
    Node { node: String },
    /// One Elasticsearch request (method and path, never credentials).
    Elasticsearch { request: String },
    /// One proxy error of the input (index into the errors read).
    Error { index: usize },
    /// The run itself.
    Run,
}

/// One problem: what and where, so nothing is lost silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub source: ProblemSource,
    /// One line saying what happened and what it means for the report.
    pub message: String,
    /// The stretch of time affected (capture gaps), when it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<TimeSpan>,
}

impl Problem {
    pub fn new(kind: ProblemKind, source: ProblemSource, message: impl Into<String>) -> Self {
        Problem {
            kind,
            source,
            message: message.into(),
            span: None,
        }
    }

    pub fn with_span(mut self, span: TimeSpan) -> Self {
        self.span = Some(span);
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            ProblemSource::Log {
                path,
                line: Some(l),
            } => write!(f, "{path}:{l}: ")?,
            ProblemSource::Log { path, line: None } => write!(f, "{path}: ")?,
            ProblemSource::Capture {
                node,
                path,
                offset: Some(o),
            } => write!(f, "{node}: {path} @{o}: ")?,
            ProblemSource::Capture {
                node,
                path,
                offset: None,
            } => write!(f, "{node}: {path}: ")?,
            ProblemSource::Node { node } => write!(f, "{node}: ")?,
            ProblemSource::Elasticsearch { request } => write!(f, "elasticsearch {request}: ")?,
            ProblemSource::Error { index } => write!(f, "error #{index}: ")?,
            ProblemSource::Run => {}
        }
        f.write_str(&self.message)
    }
}

/// A closed stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSpan {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What was read and what was skipped, so nothing is lost silently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputStats {
    pub log_lines: u64,
    pub proxy_errors: u64,
    pub unparsed_lines: u64,
    pub capture_files_read: u64,
    pub capture_bytes_read: u64,
    pub packets_matched: u64,
    /// Every problem, typed (kind, where, what).
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub generated_at: DateTime<Utc>,
    /// The window investigated.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub clock_offsets: Vec<ClockOffset>,
    pub incidents: Vec<Incident>,
    /// Findings across errors and incidents: many connections to one
    /// backend failing at once, many flows moving to another node at one
    /// instant (`backend_mass_failure`, `flow_rehash`).
    #[serde(default)]
    pub events: Vec<Finding>,
    pub summary: Summary,
    pub inputs: InputStats,
}
