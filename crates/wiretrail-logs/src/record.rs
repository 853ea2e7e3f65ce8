//! The parsed proxy error: the stable record every later stage reads.
//!
//! Its JSON form (`serde`) is a documented, stable schema: `wiretrail logs
//! --format json` prints it and the correlation report embeds it. Do not rename
//! keys; add new ones only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the Go error means at the TCP level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// `connection reset by peer`: a RST arrived.
    Reset,
    /// `broken pipe`: write after the peer's RST (or after our own shutdown).
    BrokenPipe,
    /// `use of closed network connection`: our side already closed the socket.
    Closed,
    /// `EOF`, `unexpected EOF`, `http: server closed idle connection`.
    Eof,
    /// `connection refused`: SYN answered by RST.
    Refused,
    /// `i/o timeout`, `timeout awaiting response headers`, `context deadline exceeded`.
    Timeout,
    /// `context canceled`: the client went away.
    Canceled,
    /// `no route to host`, `network is unreachable`.
    Unreachable,
    /// `lookup X on R: ...`.
    Dns,
    /// `tls: ...`, `x509: ...`.
    Tls,
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 11] = [
        ErrorClass::Reset,
        ErrorClass::BrokenPipe,
        ErrorClass::Closed,
        ErrorClass::Eof,
        ErrorClass::Refused,
        ErrorClass::Timeout,
        ErrorClass::Canceled,
        ErrorClass::Unreachable,
        ErrorClass::Dns,
        ErrorClass::Tls,
        ErrorClass::Other,
    ];

    /// The schema word (`reset`, `broken_pipe`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Reset => "reset",
            ErrorClass::BrokenPipe => "broken_pipe",
            ErrorClass::Closed => "closed",
            ErrorClass::Eof => "eof",
            ErrorClass::Refused => "refused",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Canceled => "canceled",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Dns => "dns",
            ErrorClass::Tls => "tls",
            ErrorClass::Other => "other",
        }
    }
}

/// How finely the source stamped the line. A one-second stamp means the
/// event happened somewhere in `[t, t + 1 s)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecision {
    Second,
    Millisecond,
    Microsecond,
    Nanosecond,
}

impl TimePrecision {
    /// Width of the interval a stamp of this precision stands for, in nanoseconds.
    pub fn width_ns(self) -> i64 {
        match self {
            TimePrecision::Second => 1_000_000_000,
            TimePrecision::Millisecond => 1_000_000,
            TimePrecision::Microsecond => 1_000,
            TimePrecision::Nanosecond => 1,
        }
    }
}

/// Which program wrote the line a record was read from.
///
/// In the JSON record as `source_format`, written only when it is not `go`
/// (a Go `httputil.ReverseProxy` line prints exactly as it did before the
/// key existed, and a record without the key reads back as `go`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Go `httputil.ReverseProxy`: `http: proxy error: <Go error>`.
    #[default]
    Go,
    /// Caddy's JSON logs: the `http.log.error` logger (the Go error in
    /// `msg`) and access entries with status 502/503/504.
    Caddy,
    /// Traefik's `'502 Bad Gateway' caused by: <Go error>` (text or JSON
    /// log) and its JSON access log.
    Traefik,
    /// nginx's error log (`... while connecting to upstream`, ...).
    Nginx,
    /// HAProxy's `httplog` (or a custom `log-format` built on it).
    Haproxy,
    /// Envoy's access log (default or Istio text format, JSON).
    Envoy,
}

impl SourceFormat {
    pub const ALL: [SourceFormat; 6] = [
        SourceFormat::Go,
        SourceFormat::Caddy,
        SourceFormat::Traefik,
        SourceFormat::Nginx,
        SourceFormat::Haproxy,
        SourceFormat::Envoy,
    ];

    /// The schema word (`go`, `caddy`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Go => "go",
            SourceFormat::Caddy => "caddy",
            SourceFormat::Traefik => "traefik",
            SourceFormat::Nginx => "nginx",
            SourceFormat::Haproxy => "haproxy",
            SourceFormat::Envoy => "envoy",
        }
    }

    /// `go` is the default: the key is left out for it.
    pub fn is_go(&self) -> bool {
        *self == SourceFormat::Go
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SourceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SourceFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a log format (go, caddy, traefik, nginx, haproxy, envoy)")
            })
    }
}

/// Where a record came from: a file and line, or an Elasticsearch hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Source {
    File {
        file: String,
        line: u64,
    },
    Elasticsearch {
        index: String,
        id: String,
        /// The shipper's `log.file.path`: the file the line was read from
        /// on its host. Not printed when the document had none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// The shipper's `log.offset`: the line's byte offset in `path`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    Stdin {
        line: u64,
    },
}

/// One proxy error line (Go's `http: proxy error: ...`, or one of the
/// other proxies' lines of [`SourceFormat`]), parsed.
///
/// `Serialize` is written out by hand (same keys, same order as the fields)
/// so that `timestamp` prints exactly the fractional digits of
/// `time_precision`, zeros included.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProxyError {
    /// UTC instant; serialized as RFC 3339 with as many fractional digits as
    /// the source had (see `time_precision`).
    #[serde(deserialize_with = "crate::record::ts_serde::deserialize")]
    pub timestamp: DateTime<Utc>,
    pub time_precision: TimePrecision,
    /// The configured zone had to be applied (the stamp carried no zone).
    /// Also true when the year was inferred.
    pub time_zone_assumed: bool,
    pub host: Option<String>,
    pub process: Option<String>,
    pub pid: Option<u32>,
    /// Outermost Go operation (`read`, `write`, `readfrom`, `dial`), `None`
    /// when the error is not a `net.OpError`.
    pub op: Option<String>,
    /// The proxy's socket as Go printed it (`10.1.1.5:51392`, `[fd00::5]:46572`).
    pub local: Option<String>,
    /// The backend's socket as Go printed it.
    pub remote: Option<String>,
    /// The innermost syscall or op (`read`, `write`, `connect`).
    pub syscall: Option<String>,
    pub class: ErrorClass,
    /// The Go error text after `http: proxy error: `; for the other
    /// formats the proxy's own text (see the crate's README).
    pub message: String,
    /// Which program wrote the line; `go` when absent from the JSON.
    #[serde(default)]
    pub source_format: SourceFormat,
    pub source: Source,
}

impl TimePrecision {
    /// `timestamp` as RFC 3339 UTC with this precision's digits (0, 3, 6, 9).
    pub fn format(self, t: &DateTime<Utc>) -> String {
        use chrono::SecondsFormat;
        let f = match self {
            TimePrecision::Second => SecondsFormat::Secs,
            TimePrecision::Millisecond => SecondsFormat::Millis,
            TimePrecision::Microsecond => SecondsFormat::Micros,
            TimePrecision::Nanosecond => SecondsFormat::Nanos,
        };
        t.to_rfc3339_opts(f, true)
    }
}

impl Serialize for ProxyError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ProxyError", 15)?;
        st.serialize_field("timestamp", &self.time_precision.format(&self.timestamp))?;
        st.serialize_field("time_precision", &self.time_precision)?;
        st.serialize_field("time_zone_assumed", &self.time_zone_assumed)?;
        st.serialize_field("host", &self.host)?;
        st.serialize_field("process", &self.process)?;
        st.serialize_field("pid", &self.pid)?;
        st.serialize_field("op", &self.op)?;
        st.serialize_field("local", &self.local)?;
        st.serialize_field("remote", &self.remote)?;
        st.serialize_field("syscall", &self.syscall)?;
        st.serialize_field("class", &self.class)?;
        st.serialize_field("message", &self.message)?;
        if self.source_format.is_go() {
            st.skip_field("source_format")?;
        } else {
            st.serialize_field("source_format", &self.source_format)?;
        }
        st.serialize_field("source", &self.source)?;
        st.end()
    }
}

pub(crate) mod ts_serde {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}
