//! Pipeline files: the TOML a user writes ([`raw`]) and the checked
//! [`Pipeline`] every mode runs from.
//!
//! Loading is two steps, both of which point into the file on failure:
//! serde with `deny_unknown_fields` (typos and wrong types, with toml's span),
//! then `validate` (values that parse but make no sense: a zone that does
//! not exist, two nodes with one name, an `ssh://` URL without a host).
//! Relative paths are relative to the pipeline file's directory, so a
//! pipeline can be run from anywhere.

use crate::diag::{explain_serde_message, SpanError};
use crate::model::{LogFormats, NodeRole, SourceFormat};
use crate::time::{de_opt_duration, parse_duration, parse_tz, Duration};
use chrono_tz::Tz;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// What the user writes. Every table refuses keys it does not know.
pub mod raw {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PipelineFile {
        pub name: Option<String>,
        pub description: Option<String>,
        /// Zone of log stamps that carry none (Go's `log`, syslog).
        pub tz: Option<Spanned<String>>,
        /// Year of year-less stamps (RFC 3164 syslog); default: inferred.
        pub year: Option<i32>,
        /// Where catalogs and copies of remote captures are cached.
        pub cache_dir: Option<String>,
        pub logs: Option<Spanned<Logs>>,
        /// The cluster: source of logs (`logs.source = "elasticsearch"`) and/or
        /// sink of reports (`outputs.elasticsearch = true`). The table is
        /// `wiretrail_elastic::EsConfig` ([`super::EsConfig`]).
        pub elasticsearch: Option<Spanned<EsConfig>>,
        #[serde(default)]
        pub nodes: Vec<Spanned<Node>>,
        #[serde(default)]
        pub correlate: Correlate,
        #[serde(default)]
        pub window: WindowDefaults,
        #[serde(default)]
        pub outputs: Outputs,
        #[serde(default)]
        pub batch: Batch,
        #[serde(default)]
        pub serve: Serve,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum LogSourceKind {
        Files,
        Stdin,
        Journald,
        Elasticsearch,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Logs {
        pub source: Spanned<LogSourceKind>,
        /// Files, directories or globs (files, journald).
        #[serde(default)]
        pub paths: Vec<Spanned<String>>,
        /// Only errors logged by this host (syslog/journald host field).
        pub host: Option<String>,
        /// Which proxies' lines to read: `"auto"` (default: every format,
        /// detected per input), one name (`"nginx"`) or a list
        /// (`["haproxy", "go"]`).
        pub format: Option<Spanned<LogFormat>>,
    }

    /// `logs.format`: one name or a list of names.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    pub enum LogFormat {
        One(String),
        Many(Vec<String>),
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Node {
        pub name: Spanned<String>,
        #[serde(default = "default_role")]
        pub role: NodeRole,
        /// A directory, a glob, or `ssh://[user@]host[:port]/dir`.
        pub captures: Spanned<String>,
        /// Addresses this node answers for besides its own (the VIP).
        #[serde(default)]
        pub aliases: Vec<Spanned<String>>,
        /// Known clock offset: seconds to add to this node's capture times.
        pub clock_offset_s: Option<f64>,
        /// Extra arguments for `ssh` (e.g. `["-F", "ssh_config"]`).
        #[serde(default)]
        pub ssh_options: Vec<String>,
        /// How an `ssh://` node's captures are brought over; see
        /// [`RemoteExtract`].
        #[serde(default)]
        pub remote_extract: RemoteExtract,
    }

    fn default_role() -> NodeRole {
        NodeRole::Backend
    }

    /// How an `ssh://` node's captures cross the network, cheapest first.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RemoteExtract {
        /// The best the host offers: `wiretrail` there (only matched
        /// packets), else `tcpdump` there (only the flows' packets of each
        /// overlapping file), else whole-file copies.
        #[default]
        Auto,
        /// Skip a remote `wiretrail`; filter with the host's `tcpdump`
        /// (whole-file copies when it has none).
        Tcpdump,
        /// Always copy the overlapping files whole. `never` is the name
        /// older pipeline files use for it.
        #[serde(alias = "never")]
        Copy,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Correlate {
        /// Errors on one proxy→backend closer than this form one incident.
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub incident_gap: Option<Duration>,
        /// How far around each error to look for its connection in captures.
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub slack: Option<Duration>,
        /// Largest clock offset between nodes to consider.
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub max_clock_offset: Option<Duration>,
        /// The proxy's address on the backend side: lets errors whose line
        /// prints no socket (timeouts, `context canceled`, `EOF`) be joined
        /// to connections by time.
        pub proxy_ip: Option<Spanned<String>>,
        /// The backend sockets the proxy dials (the VIP and port), for the
        /// same time joins.
        #[serde(default)]
        pub upstreams: Vec<Spanned<String>>,
        /// Proxy errors analysed per window (an investigation, a batch
        /// chunk, a webhook run); the later ones are counted and named in a
        /// `limit` problem. Default 50000; 0 = no limit.
        pub max_errors: Option<usize>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WindowDefaults {
        /// How far before `--at` to look (default 5m).
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub before: Option<Duration>,
        /// How far after `--at` to look (default 30s).
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub after: Option<Duration>,
        /// A pinned window (for recorded data such as the demo): used when
        /// no time flag and no alert gives one. Same forms as the flags.
        pub at: Option<String>,
        pub since: Option<String>,
        pub until: Option<String>,
    }

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ColorChoice {
        #[default]
        Auto,
        Always,
        Never,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Outputs {
        #[serde(default = "yes")]
        pub terminal: bool,
        #[serde(default)]
        pub color: ColorChoice,
        pub max_rows_per_incident: Option<usize>,
        pub json: Option<String>,
        pub html: Option<String>,
        pub pcap_dir: Option<String>,
        /// Publish incidents and timeline events to `[elasticsearch]`.
        pub elasticsearch: Option<Spanned<bool>>,
    }

    impl Default for Outputs {
        fn default() -> Self {
            Outputs {
                terminal: true,
                color: ColorChoice::Auto,
                max_rows_per_incident: None,
                json: None,
                html: None,
                pcap_dir: None,
                elasticsearch: None,
            }
        }
    }

    fn yes() -> bool {
        true
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Batch {
        /// Size of the pieces a day is cut into (default 1h).
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub chunk: Option<Duration>,
        /// Where chunk reports, the day report and the checkpoint go.
        pub out_dir: Option<String>,
        /// Default: `<out_dir>/checkpoint.json`.
        pub checkpoint: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Serve {
        pub listen: Option<Spanned<String>>,
        /// Environment variable holding the bearer token (default `WIRETRAIL_TOKEN`).
        pub token_env: Option<String>,
        pub token_file: Option<String>,
        /// Largest accepted request body (default 1 MiB).
        pub max_body_bytes: Option<usize>,
        /// Alerts waiting beyond the running ones (default 16).
        pub queue: Option<usize>,
        /// Investigations at a time, 1 or 2 (default 1).
        pub concurrency: Option<Spanned<usize>>,
        /// Where each run's outputs go (`<dir>/<run id>/`); default: the pipeline's outputs.
        pub runs_dir: Option<String>,
        /// Run directories kept under `runs_dir` (oldest removed first; default 500).
        pub runs_keep: Option<usize>,
        /// Run directories older than this are removed (default 30d).
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub runs_max_age: Option<Duration>,
        /// Finished runs remembered for `GET /runs/<id>` (default 1000).
        pub keep_runs: Option<usize>,
        /// Time a client has to send a request's head (default 10s); also
        /// how long an idle keep-alive connection is kept.
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub header_timeout: Option<Duration>,
        /// Time a client has to send a request's body (default 30s).
        #[serde(default, deserialize_with = "de_opt_duration")]
        pub body_timeout: Option<Duration>,
        /// Connections open at once (default 256); at the cap a new one
        /// replaces the oldest not being answered.
        pub max_connections: Option<usize>,
        /// Requests on one keep-alive connection before it is closed (default 100).
        pub max_requests_per_connection: Option<u32>,
    }
}

/// Top-level keys, for hints when a whole table is misspelled.
pub const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "tz",
    "year",
    "cache_dir",
    "logs",
    "elasticsearch",
    "nodes",
    "correlate",
    "window",
    "outputs",
    "batch",
    "serve",
];

/// A checked pipeline: absolute paths, parsed zones and addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: String,
    /// The pipeline file, when there is one.
    pub file: Option<PathBuf>,
    /// Relative paths were resolved against this.
    pub base_dir: PathBuf,
    pub tz: Option<Tz>,
    pub year: Option<i32>,
    pub cache_dir: Option<PathBuf>,
    pub logs: LogSource,
    /// `logs.format`: which proxies' lines are read (all, auto-detected, by
    /// default).
    pub log_formats: LogFormats,
    /// The `[elasticsearch]` table, paths resolved.
    pub elasticsearch: Option<EsConfig>,
    /// Only errors from this proxy host (from `logs.host`, an alert label, or --host).
    pub host_filter: Option<String>,
    pub nodes: Vec<Node>,
    pub correlate: CorrelateSettings,
    pub window: WindowSettings,
    pub outputs: Outputs,
    pub batch: BatchSettings,
    pub serve: ServeSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogSource {
    /// Files, directories or glob patterns (already absolute).
    Files(Vec<PathBuf>),
    Stdin,
    /// journald JSON export (`journalctl -o json`): files, or stdin when empty.
    Journald(Vec<PathBuf>),
    /// The pipeline's `[elasticsearch]` cluster.
    Elasticsearch,
}

/// Where a node's captures are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureLocation {
    /// A directory or a glob pattern on this machine (absolute).
    Local(PathBuf),
    Ssh(SshTarget),
}

/// `ssh://[user@]host[:port]/dir`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Absolute directory on the host.
    pub dir: String,
}

impl SshTarget {
    /// Parse `ssh://[user@]host[:port]/dir`.
    pub fn parse(s: &str) -> Result<SshTarget, String> {
        let rest = s
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("`{s}` does not start with ssh://"))?;
        let slash = rest
            .find('/')
            .ok_or("no directory: write ssh://host/var/captures")?;
        let (authority, dir) = rest.split_at(slash);
        if dir.len() <= 1 {
            return Err("no directory after the host: write ssh://host/var/captures".into());
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err("empty user before `@`".into()),
            None => (None, authority),
        };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            // [v6]:port
            let close = inner.find(']').ok_or("unclosed `[` in the host")?;
            let host = &inner[..close];
            let after = &inner[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("`{p}` is not a port"))?,
                ),
                None if after.is_empty() => None,
                None => return Err(format!("unexpected `{after}` after the host")),
            };
            (host.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("`{p}` is not a port"))?,
                    ),
                ),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err("no host: write ssh://[user@]host[:port]/dir".into());
        }
        // `ssh` reads an argument beginning with `-` as an option
        // (`-oProxyCommand=...` runs a command here): never a destination.
        for (what, v) in [("host", Some(host.as_str())), ("user", user.as_deref())] {
            let Some(v) = v else { continue };
            if v.starts_with('-') {
                return Err(format!(
                    "the {what} `{v}` begins with `-`, which ssh would read as an option"
                ));
            }
            if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "the {what} {v:?} contains spaces or control characters"
                ));
            }
        }
        if dir.contains(['\'', '\n', '\0']) {
            return Err("the directory may not contain quotes or newlines".into());
        }
        Ok(SshTarget {
            user,
            host,
            port,
            dir: dir.to_string(),
        })
    }

    /// `user@host` or `host`, as ssh takes it.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.dir)
    }
}

/// Node names are the report model's: checked once, here and everywhere.
pub use crate::model::{NodeName, NodeNameError};

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: NodeName,
    pub role: NodeRole,
    pub captures: CaptureLocation,
    pub aliases: Vec<IpAddr>,
    pub clock_offset_s: Option<f64>,
    pub ssh_options: Vec<String>,
    pub remote_extract: RemoteExtract,
}

/// Proxy errors analysed per window unless `correlate.max_errors` (or
/// `--max-errors`) says otherwise. Each analysed error costs a few KiB at
/// the peak (its record, its flow query, its connection views, its rows in
/// the report): 50 000 keep an investigation near 200 MB.
pub const DEFAULT_MAX_ERRORS: usize = 50_000;

/// The `[elasticsearch]` table, as `wiretrail-elastic` reads it.
#[cfg(feature = "elasticsearch")]
pub use crate::model::EsConfig;

/// The `[elasticsearch]` table of a build without the `elasticsearch`
/// feature: kept unread, so a pipeline that has one still loads; naming it
/// as the log source or as an output is refused when the pipeline is
/// checked ("built without the `elasticsearch` feature").
#[cfg(not(feature = "elasticsearch"))]
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(transparent)]
pub struct EsConfig(toml::Table);

#[derive(Debug, Clone, PartialEq)]
pub struct CorrelateSettings {
    pub incident_gap: Option<Duration>,
    pub slack: Option<Duration>,
    pub max_clock_offset: Option<Duration>,
    pub proxy_ip: Option<IpAddr>,
    pub upstreams: Vec<std::net::SocketAddr>,
    /// Proxy errors analysed per window; `None`: no limit.
    pub max_errors: Option<usize>,
}

impl Default for CorrelateSettings {
    fn default() -> Self {
        CorrelateSettings {
            incident_gap: None,
            slack: None,
            max_clock_offset: None,
            proxy_ip: None,
            upstreams: Vec::new(),
            max_errors: Some(DEFAULT_MAX_ERRORS),
        }
    }
}

/// `max_errors` as written (0 = no limit) to the setting.
pub fn max_errors_setting(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

/// Terminal rows per incident unless `max_rows_per_incident` says otherwise.
pub const DEFAULT_TERMINAL_ROWS: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSettings {
    pub before: Duration,
    pub after: Duration,
    /// Pinned `at` / `since` / `until` (unparsed: they take the pipeline's
    /// zone, parsed when the window is resolved).
    pub at: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Default for WindowSettings {
    fn default() -> Self {
        WindowSettings {
            before: Duration::from_mins(5),
            after: Duration::from_secs(30),
            at: None,
            since: None,
            until: None,
        }
    }
}

pub use raw::ColorChoice;
pub use raw::RemoteExtract;

impl ColorChoice {
    /// Whether to colour a stream: `always` and `never` say so (over
    /// `NO_COLOR` too: a flag is the user's latest word); `auto` colours a
    /// terminal unless `NO_COLOR` is set to anything but the empty string
    /// (<https://no-color.org>).
    pub fn enabled(self, is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub terminal: bool,
    pub color: ColorChoice,
    pub max_rows_per_incident: Option<usize>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub pcap_dir: Option<PathBuf>,
    /// Publish to the pipeline's `[elasticsearch]`.
    pub elasticsearch: bool,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            terminal: true,
            color: ColorChoice::Auto,
            max_rows_per_incident: Some(DEFAULT_TERMINAL_ROWS),
            json: None,
            html: None,
            pcap_dir: None,
            elasticsearch: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchSettings {
    pub chunk: Duration,
    pub out_dir: PathBuf,
    pub checkpoint: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub token_env: String,
    pub token_file: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub queue: usize,
    pub concurrency: usize,
    pub runs_dir: Option<PathBuf>,
    pub retention: Retention,
    pub limits: ConnLimits,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 9402)),
            token_env: "WIRETRAIL_TOKEN".into(),
            token_file: None,
            max_body_bytes: 1 << 20,
            queue: 16,
            concurrency: 1,
            runs_dir: None,
            retention: Retention::default(),
            limits: ConnLimits::default(),
        }
    }
}

impl ServeSettings {
    /// A value that cannot work, said plainly (`None`: all usable).
    pub fn check(&self) -> Option<String> {
        let l = &self.limits;
        if l.max_connections == 0 {
            return Some("serve.max_connections = 0 would serve no one".into());
        }
        if l.header_timeout.is_zero() || l.body_timeout.is_zero() {
            return Some("serve.header_timeout and body_timeout must be longer than 0s".into());
        }
        if l.max_requests_per_connection == 0 {
            return Some("serve.max_requests_per_connection must be at least 1".into());
        }
        if self.retention.runs_keep == 0 || self.retention.keep_runs == 0 {
            return Some(
                "serve.runs_keep and keep_runs must be at least 1 (the run being answered)".into(),
            );
        }
        None
    }
}

/// What `serve` keeps of finished runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished runs answered by `GET /runs/<id>` (queued and running ones
    /// are always kept).
    pub keep_runs: usize,
    /// Run directories kept under `runs_dir`, newest first.
    pub runs_keep: usize,
    /// Run directories older than this are removed.
    pub runs_max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_runs: 1000,
            runs_keep: 500,
            runs_max_age: Duration::from_hours(30 * 24),
        }
    }
}

/// Bounds on what one client can hold of the server before (and after) it
/// is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// To send a request's head; also the longest idle keep-alive wait.
    pub header_timeout: Duration,
    /// To send a request's body.
    pub body_timeout: Duration,
    /// Connections open at once; at the cap a new one replaces the oldest
    /// not being answered (see `serve`).
    pub max_connections: usize,
    /// Requests on one keep-alive connection before it is closed.
    pub max_requests_per_connection: u32,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_requests_per_connection: 100,
        }
    }
}

impl Pipeline {
    /// An empty pipeline for runs made of flags alone, paths relative to `base_dir`.
    pub fn empty(base_dir: &Path) -> Pipeline {
        Pipeline {
            name: "adhoc".into(),
            file: None,
            base_dir: base_dir.to_path_buf(),
            tz: None,
            year: None,
            cache_dir: None,
            logs: LogSource::Stdin,
            log_formats: LogFormats::ALL,
            elasticsearch: None,
            host_filter: None,
            nodes: Vec::new(),
            correlate: CorrelateSettings::default(),
            window: WindowSettings::default(),
            outputs: Outputs::default(),
            batch: BatchSettings {
                chunk: Duration::from_hours(1),
                out_dir: base_dir.join("wiretrail-batch"),
                checkpoint: None,
            },
            serve: ServeSettings::default(),
        }
    }

    /// Read and check a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.to_path_buf(),
            source: e,
        })?;
        Pipeline::from_str(&src, path)
    }

    /// Check pipeline text; `path` names it in errors and anchors relative paths.
    pub fn from_str(src: &str, path: &Path) -> Result<Pipeline, ConfigError> {
        let file: raw::PipelineFile = toml::from_str(src).map_err(|e| {
            let (message, mut hint) = explain_serde_message(e.message());
            // A misspelt top-level table ("[[nodse]]") is reported against the
            // top-level keys, which serde already lists; nothing more to add.
            if message.starts_with("missing field") {
                hint = Some("add it; pipelines/README.md lists every key".into());
            }
            let mut err = SpanError::new(path, src, e.span(), message);
            err.hint = hint;
            ConfigError::Syntax(Box::new(err))
        })?;
        validate(file, src, path)
    }

    pub fn resolve_path(&self, p: &str) -> PathBuf {
        resolve(&self.base_dir, p)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let expanded = if let Some(rest) = p.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| PathBuf::from(p))
    } else {
        PathBuf::from(p)
    };
    if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(Box<SpanError>),
    #[error("{0}")]
    Invalid(Box<SpanError>),
}

impl ConfigError {
    /// Where in the file, when known.
    pub fn span_error(&self) -> Option<&SpanError> {
        match self {
            ConfigError::Syntax(e) | ConfigError::Invalid(e) => Some(e),
            ConfigError::Read { .. } => None,
        }
    }
}

/// What a pipeline naming Elasticsearch is told by a build without it.
const WITHOUT_ELASTICSEARCH: &str =
    "this wiretrail was built without the `elasticsearch` feature, which {what} needs (rebuild with `--features elasticsearch`)";

/// Paths inside the `[elasticsearch]` table are relative to the pipeline too.
#[cfg(feature = "elasticsearch")]
fn es_paths(mut es: EsConfig, base: &Path) -> EsConfig {
    es.auth.credentials_file = es
        .auth
        .credentials_file
        .map(|p| resolve(base, &p.to_string_lossy()));
    es.tls.ca_file = es.tls.ca_file.map(|p| resolve(base, &p.to_string_lossy()));
    es
}

/// Without the feature the table is not read.
#[cfg(not(feature = "elasticsearch"))]
fn es_paths(es: EsConfig, _base: &Path) -> EsConfig {
    es
}

/// Check values that parse but make no sense, pointing at them.
fn validate(f: raw::PipelineFile, src: &str, path: &Path) -> Result<Pipeline, ConfigError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    let at = |span: std::ops::Range<usize>, msg: String| -> ConfigError {
        ConfigError::Invalid(Box::new(SpanError::new(path, src, Some(span), msg)))
    };
    let at_hint = |span: std::ops::Range<usize>, msg: String, hint: &str| -> ConfigError {
        ConfigError::Invalid(Box::new(
            SpanError::new(path, src, Some(span), msg).with_hint(hint),
        ))
    };

    let tz = match &f.tz {
        Some(tz) => Some(parse_tz(tz.get_ref()).map_err(|_| {
            at_hint(
                tz.span(),
                format!("`{}` is not a time zone", tz.get_ref()),
                "use an IANA name such as `Asia/Shanghai`, `Europe/Berlin` or `UTC`",
            )
        })?),
        None => None,
    };

    let logs_raw = f.logs.ok_or_else(|| {
        ConfigError::Invalid(Box::new(
            SpanError::new(path, src, Some(0..0), "no [logs] table")
                .with_hint("add [logs] with `source = \"files\"` and `paths = [...]`"),
        ))
    })?;
    let logs_span = logs_raw.span();
    let logs_raw = logs_raw.into_inner();
    let log_formats = match &logs_raw.format {
        None => LogFormats::ALL,
        Some(f) => log_formats(f.get_ref()).map_err(|m| {
            at_hint(
                f.span(),
                m,
                "format = \"auto\", one of go, caddy, traefik, nginx, haproxy, envoy, or a list of them",
            )
        })?,
    };
    let kind = *logs_raw.source.get_ref();
    let paths: Vec<PathBuf> = logs_raw
        .paths
        .iter()
        .map(|p| resolve(&base, p.get_ref()))
        .collect();
    let elasticsearch = f.elasticsearch.map(|es| es_paths(es.into_inner(), &base));
    let logs = match kind {
        raw::LogSourceKind::Files => {
            if paths.is_empty() {
                return Err(at_hint(
                    logs_span,
                    "`source = \"files\"` needs `paths`".into(),
                    "paths = [\"logs/proxy.log\"]",
                ));
            }
            LogSource::Files(paths)
        }
        raw::LogSourceKind::Journald => LogSource::Journald(paths),
        raw::LogSourceKind::Stdin => {
            if let Some(p) = logs_raw.paths.first() {
                return Err(at(p.span(), "`source = \"stdin\"` takes no paths".into()));
            }
            LogSource::Stdin
        }
        raw::LogSourceKind::Elasticsearch => {
            if !cfg!(feature = "elasticsearch") {
                return Err(at(
                    logs_raw.source.span(),
                    WITHOUT_ELASTICSEARCH.replace("{what}", "reading logs from Elasticsearch"),
                ));
            }
            if elasticsearch.is_none() {
                return Err(at_hint(
                    logs_raw.source.span(),
                    "`source = \"elasticsearch\"` needs an [elasticsearch] table".into(),
                    "[elasticsearch]\nurl = \"https://es:9200\"\nindex = \"filebeat-*\"",
                ));
            }
            if let Some(p) = logs_raw.paths.first() {
                return Err(at(
                    p.span(),
                    "`source = \"elasticsearch\"` takes no paths (the index is in [elasticsearch])"
                        .into(),
                ));
            }
            LogSource::Elasticsearch
        }
    };

    let mut nodes: Vec<Node> = Vec::new();
    for n in f.nodes {
        let n = n.into_inner();
        let name = NodeName::new(n.name.get_ref().trim())
            .map_err(|e| at_hint(n.name.span(), e.to_string(), NodeName::RULE))?;
        if nodes.iter().any(|m| m.name == name) {
            return Err(at(n.name.span(), format!("node `{name}` is defined twice")));
        }
        let cap = n.captures.get_ref();
        let captures = if cap.starts_with("ssh://") {
            CaptureLocation::Ssh(SshTarget::parse(cap).map_err(|e| {
                at_hint(
                    n.captures.span(),
                    format!("bad ssh capture location: {e}"),
                    "ssh://[user@]host[:port]/dir",
                )
            })?)
        } else if cap.contains("://") {
            return Err(at_hint(
                n.captures.span(),
                format!("`{cap}`: only local paths and ssh:// are supported"),
                "a directory, a glob like `captures/b1/*.pcap*`, or ssh://host/dir",
            ));
        } else {
            CaptureLocation::Local(resolve(&base, cap))
        };
        let mut aliases = Vec::new();
        for a in &n.aliases {
            aliases.push(a.get_ref().parse::<IpAddr>().map_err(|_| {
                at_hint(
                    a.span(),
                    format!("`{}` is not an IP address", a.get_ref()),
                    "aliases are addresses, e.g. the VIP: [\"10.0.0.100\"]",
                )
            })?);
        }
        if let Some(o) = n.clock_offset_s {
            if !o.is_finite() || o.abs() > 86_400.0 {
                return Err(at(
                    n.name.span(),
                    format!("node `{name}`: clock_offset_s = {o} is not a plausible offset"),
                ));
            }
        }
        nodes.push(Node {
            name,
            role: n.role,
            captures,
            aliases,
            clock_offset_s: n.clock_offset_s,
            ssh_options: n.ssh_options,
            remote_extract: n.remote_extract,
        });
    }

    let proxy_ip = match &f.correlate.proxy_ip {
        Some(ip) => Some(ip.get_ref().parse::<IpAddr>().map_err(|_| {
            at_hint(
                ip.span(),
                format!("`{}` is not an IP address", ip.get_ref()),
                "the proxy's address on the backend side, e.g. \"10.1.1.5\"",
            )
        })?),
        None => None,
    };
    let mut upstreams = Vec::new();
    for u in &f.correlate.upstreams {
        upstreams.push(u.get_ref().parse::<std::net::SocketAddr>().map_err(|_| {
            at_hint(
                u.span(),
                format!("`{}` is not an IP:port socket", u.get_ref()),
                "upstreams are the sockets the proxy dials, e.g. [\"10.2.2.9:80\"]",
            )
        })?);
    }
    let correlate = CorrelateSettings {
        incident_gap: f.correlate.incident_gap,
        slack: f.correlate.slack,
        max_clock_offset: f.correlate.max_clock_offset,
        proxy_ip,
        upstreams,
        max_errors: match f.correlate.max_errors {
            Some(n) => max_errors_setting(n),
            None => Some(DEFAULT_MAX_ERRORS),
        },
    };

    let defaults = WindowSettings::default();
    let window = WindowSettings {
        before: f.window.before.unwrap_or(defaults.before),
        after: f.window.after.unwrap_or(defaults.after),
        at: f.window.at,
        since: f.window.since,
        until: f.window.until,
    };

    let o = f.outputs;
    let outputs = Outputs {
        terminal: o.terminal,
        color: o.color,
        // A terminal report of a long-lived keep-alive connection runs to
        // thousands of rows; the renderer keeps the telling ones. 0 = all.
        max_rows_per_incident: match o.max_rows_per_incident {
            None => Some(DEFAULT_TERMINAL_ROWS),
            Some(0) => None,
            Some(n) => Some(n),
        },
        json: o.json.as_deref().map(|p| resolve(&base, p)),
        html: o.html.as_deref().map(|p| resolve(&base, p)),
        pcap_dir: o.pcap_dir.as_deref().map(|p| resolve(&base, p)),
        elasticsearch: o.elasticsearch.as_ref().is_some_and(|b| *b.get_ref()),
    };
    if let Some(b) = o
        .elasticsearch
        .as_ref()
        .filter(|b| *b.get_ref() && !cfg!(feature = "elasticsearch"))
    {
        return Err(at(
            b.span(),
            WITHOUT_ELASTICSEARCH.replace("{what}", "publishing to Elasticsearch"),
        ));
    }
    if let (Some(b), None) = (
        o.elasticsearch.as_ref().filter(|b| *b.get_ref()),
        &elasticsearch,
    ) {
        return Err(at_hint(
            b.span(),
            "`elasticsearch = true` needs an [elasticsearch] table".into(),
            "[elasticsearch]\nurl = \"https://es:9200\"",
        ));
    }

    let out_dir = resolve(
        &base,
        f.batch.out_dir.as_deref().unwrap_or("wiretrail-batch"),
    );
    let batch = BatchSettings {
        chunk: f.batch.chunk.unwrap_or(Duration::from_hours(1)),
        checkpoint: f.batch.checkpoint.as_deref().map(|p| resolve(&base, p)),
        out_dir,
    };
    if batch.chunk < Duration::from_mins(1) {
        return Err(ConfigError::Invalid(Box::new(SpanError::new(
            path,
            src,
            src.find("chunk").map(|i| i..i + 5),
            "batch chunk shorter than 1m: each chunk re-plans captures",
        ))));
    }

    let sd = ServeSettings::default();
    let s = f.serve;
    let serve = ServeSettings {
        listen: match s.listen {
            Some(l) => l.get_ref().parse::<SocketAddr>().map_err(|_| {
                at_hint(
                    l.span(),
                    format!("`{}` is not an address:port", l.get_ref()),
                    "listen = \"127.0.0.1:9402\"",
                )
            })?,
            None => sd.listen,
        },
        token_env: s.token_env.unwrap_or(sd.token_env),
        token_file: s.token_file.as_deref().map(|p| resolve(&base, p)),
        max_body_bytes: s.max_body_bytes.unwrap_or(sd.max_body_bytes),
        queue: s.queue.unwrap_or(sd.queue),
        concurrency: match s.concurrency {
            Some(c) if !(1..=2).contains(c.get_ref()) => {
                return Err(at_hint(
                    c.span(),
                    format!("concurrency = {} is out of range", c.get_ref()),
                    "1 or 2: each investigation reads many captures",
                ));
            }
            Some(c) => c.into_inner(),
            None => sd.concurrency,
        },
        runs_dir: s.runs_dir.as_deref().map(|p| resolve(&base, p)),
        retention: Retention {
            keep_runs: s.keep_runs.unwrap_or(sd.retention.keep_runs),
            runs_keep: s.runs_keep.unwrap_or(sd.retention.runs_keep),
            runs_max_age: s.runs_max_age.unwrap_or(sd.retention.runs_max_age),
        },
        limits: ConnLimits {
            header_timeout: s.header_timeout.unwrap_or(sd.limits.header_timeout),
            body_timeout: s.body_timeout.unwrap_or(sd.limits.body_timeout),
            max_connections: s.max_connections.unwrap_or(sd.limits.max_connections),
            max_requests_per_connection: s
                .max_requests_per_connection
                .unwrap_or(sd.limits.max_requests_per_connection),
        },
    };
    if let Some(e) = serve.check() {
        return Err(ConfigError::Invalid(Box::new(SpanError::new(
            path,
            src,
            src.find("[serve]").map(|i| i..i + 7),
            e,
        ))));
    }

    Ok(Pipeline {
        name: f.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        file: Some(path.to_path_buf()),
        base_dir: base.clone(),
        tz,
        year: f.year,
        cache_dir: f.cache_dir.as_deref().map(|p| resolve(&base, p)),
        logs,
        log_formats,
        elasticsearch,
        host_filter: logs_raw.host,
        nodes,
        correlate,
        window,
        outputs,
        batch,
        serve,
    })
}

/// `logs.format`: `"auto"`, one format's name, or a list of names.
fn log_formats(f: &raw::LogFormat) -> Result<LogFormats, String> {
    let names: Vec<&str> = match f {
        raw::LogFormat::One(s) if s == "auto" => return Ok(LogFormats::ALL),
        raw::LogFormat::One(s) => vec![s.as_str()],
        raw::LogFormat::Many(v) => v.iter().map(String::as_str).collect(),
    };
    if names.is_empty() {
        return Err("`format = []` reads nothing".into());
    }
    names.into_iter().map(str::parse::<SourceFormat>).collect()
}

/// Parse a `--node NAME=LOCATION[,role=R][,offset=S][,alias=IP]` flag.
pub fn parse_node_flag(s: &str, base: &Path) -> Result<Node, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write NAME=DIR[,role=backend][,offset=SECONDS]"))?;
    let mut parts = rest.split(',');
    let loc = parts.next().unwrap_or_default();
    if name.is_empty() || loc.is_empty() {
        return Err(format!(
            "`{s}`: write NAME=DIR[,role=backend][,offset=SECONDS]"
        ));
    }
    let captures = if loc.starts_with("ssh://") {
        CaptureLocation::Ssh(SshTarget::parse(loc)?)
    } else {
        CaptureLocation::Local(resolve(base, loc))
    };
    let name = NodeName::new(name).map_err(|e| format!("{e} ({})", NodeName::RULE))?;
    let mut node = Node {
        name,
        role: NodeRole::Backend,
        captures,
        aliases: Vec::new(),
        clock_offset_s: None,
        ssh_options: Vec::new(),
        remote_extract: RemoteExtract::Auto,
    };
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("`{p}` in `{s}`: expected key=value"))?;
        match k {
            "role" => {
                node.role = match v {
                    "proxy" => NodeRole::Proxy,
                    "backend" => NodeRole::Backend,
                    "switch" => NodeRole::Switch,
                    "other" => NodeRole::Other,
                    _ => return Err(format!("role `{v}`: use proxy, backend, switch or other")),
                }
            }
            "offset" => {
                let o: f64 = match v.parse() {
                    Ok(o) => o,
                    Err(_) => parse_duration(v).map_err(|e| e.to_string())?.as_secs_f64(),
                };
                node.clock_offset_s = Some(o);
            }
            "alias" => node.aliases.push(
                v.parse()
                    .map_err(|_| format!("alias `{v}` is not an IP address"))?,
            ),
            _ => {
                let hint = crate::diag::closest(k, ["role", "offset", "alias"])
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown node option `{k}`{hint}: use role=, offset=, alias="
                ));
            }
        }
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets() {
        let t = SshTarget::parse("ssh://cap@backend-01:2222/var/cap").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port, t.dir.as_str()),
            (Some("cap"), "backend-01", Some(2222), "/var/cap")
        );
        assert_eq!(t.to_string(), "ssh://cap@backend-01:2222/var/cap");
        let t = SshTarget::parse("ssh://[fd00::3]:22/c").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fd00::3", Some(22)));
        assert!(SshTarget::parse("ssh://host").is_err());
        assert!(SshTarget::parse("ssh://host:xx/d").is_err());
        assert!(SshTarget::parse("ssh:///d").is_err());
        // D15: nothing ssh would take for an option.
        for bad in [
            "ssh://-oProxyCommand=touch${IFS}x/d",
            "ssh://-oProxyCommand=x@host/d",
            "ssh://-p/d",
            "ssh://user@-host:22/d",
            "ssh://us er@host/d",
            "ssh://host\tx/d",
        ] {
            let e = SshTarget::parse(bad).unwrap_err();
            assert!(e.contains("`-`") || e.contains("spaces"), "{bad}: {e}");
        }
    }

    #[test]
    fn colour_only_where_it_is_wanted() {
        let set = Some(std::ffi::OsStr::new("1"));
        let empty = Some(std::ffi::OsStr::new(""));
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(ColorChoice::Auto.enabled(true, empty));
        assert!(!ColorChoice::Auto.enabled(true, set));
        assert!(!ColorChoice::Auto.enabled(false, None));
        assert!(ColorChoice::Always.enabled(false, set));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn node_names() {
        for good in ["b1", "backend-01", "proxy_2.dc1", "9x"] {
            assert_eq!(NodeName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "", "log", "..", ".hidden", "-x", "a/b", "a b", "a\nb", "a:b", "b\u{e9}",
        ] {
            assert!(NodeName::new(bad).is_err(), "{bad:?}");
        }
        assert!(NodeName::new(&"x".repeat(65)).is_err());
        let e = parse_node_flag("log=/d", Path::new("/")).unwrap_err();
        assert!(e.contains("`log`") && e.contains("node name"), "{e}");
    }

    #[test]
    fn remote_extract_modes() {
        #[derive(serde::Deserialize)]
        struct W {
            m: RemoteExtract,
        }
        let m = |s: &str| toml::from_str::<W>(&format!("m = \"{s}\"")).map(|w| w.m);
        assert_eq!(m("auto").unwrap(), RemoteExtract::Auto);
        assert_eq!(m("tcpdump").unwrap(), RemoteExtract::Tcpdump);
        assert_eq!(m("copy").unwrap(), RemoteExtract::Copy);
        // The old name of `copy` still reads.
        assert_eq!(m("never").unwrap(), RemoteExtract::Copy);
        assert!(m("always").is_err());
    }

    #[test]
    fn node_flags() {
        let n = parse_node_flag(
            "b1=caps/b1,role=backend,offset=0.25,alias=10.0.0.100",
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(
            n.captures,
            CaptureLocation::Local(PathBuf::from("/base/caps/b1"))
        );
        assert_eq!(n.clock_offset_s, Some(0.25));
        assert_eq!(n.aliases, vec!["10.0.0.100".parse::<IpAddr>().unwrap()]);
        let e = parse_node_flag("b1=d,rol=proxy", Path::new("/")).unwrap_err();
        assert!(e.contains("did you mean `role`"), "{e}");
        assert!(parse_node_flag("b1", Path::new("/")).is_err());
    }
}
