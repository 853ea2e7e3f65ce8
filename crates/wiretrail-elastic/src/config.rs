//! `EsConfig`: one struct for the CLI flags and the `[elasticsearch]` table
//! of a pipeline file. Secrets are never part of it: it names where they
//! come from (environment, a file), so a config can be printed or logged.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Where and how to talk to the cluster, what to read and where to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EsConfig {
    /// Base URL (`https://es.example:9200`). Must not carry credentials.
    pub url: String,
    /// Source: index names or patterns, comma-separated (`logs-*,filebeat-*`).
    pub index: String,
    pub fields: FieldNames,
    /// The phrase every wanted document contains (a `match_phrase`).
    pub phrase: String,
    /// Only these hosts (`fields.host` terms); empty: all.
    pub hosts: Vec<String>,
    /// Only these services (`fields.service` terms); empty: all.
    pub services: Vec<String>,
    /// Hits per search request.
    pub page_size: u32,
    /// Parallel readers (sliced PIT or sliced scroll); 1: no slicing.
    pub slices: u32,
    /// PIT / scroll keep-alive between two pages (`2m`).
    pub keep_alive: String,
    /// Per-request timeout, seconds.
    pub timeout_s: u64,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub retry: RetryPolicy,
    pub sink: SinkConfig,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            url: "https://localhost:9200".into(),
            index: "logs-*,filebeat-*".into(),
            fields: FieldNames::default(),
            phrase: "http: proxy error".into(),
            hosts: vec![],
            services: vec![],
            page_size: 1000,
            slices: 1,
            keep_alive: "2m".into(),
            timeout_s: 60,
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            retry: RetryPolicy::default(),
            sink: SinkConfig::default(),
        }
    }
}

/// Field names of the source documents (mappings differ between shippers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldNames {
    pub timestamp: String,
    pub message: String,
    pub host: String,
    pub service: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            timestamp: "@timestamp".into(),
            message: "message".into(),
            host: "host.name".into(),
            service: "service.name".into(),
        }
    }
}

impl FieldNames {
    pub fn is_default(&self) -> bool {
        *self == FieldNames::default()
    }
}

/// Where credentials come from. The secrets themselves never live here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A file of `KEY=VALUE` lines with the same keys as the environment
    /// variables (`WIRETRAIL_ES_USER`, `WIRETRAIL_ES_PASSWORD`,
    /// `WIRETRAIL_ES_API_KEY`, `WIRETRAIL_ES_BEARER`).
    pub credentials_file: Option<PathBuf>,
    /// Ignore the `WIRETRAIL_ES_*` environment variables.
    pub no_env: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA (chain) that signed the cluster's certificate.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint of a certificate in the chain the cluster presents
    /// (hex, `:` allowed): its CA (ES 8 prints the one of `http_ca.crt`) or a
    /// self-signed server certificate. Checked, then pinned ([`crate::tls`]).
    pub fingerprint: Option<String>,
    /// Accept any certificate. Warned about on every run.
    pub insecure: bool,
}

/// Retries of 429/502/503/504 and connection errors: capped exponential
/// backoff with "equal jitter" (half fixed, half random), bounded in count
/// and in total time (es-api.md B1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_ms: u64,
    pub max_ms: u64,
    /// Give up when the next wait would end after this many seconds since the first attempt.
    pub max_elapsed_s: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            initial_ms: 500,
            max_ms: 30_000,
            max_elapsed_s: 300,
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `n` (1-based), without jitter's random half.
    pub fn ceiling(&self, n: u32) -> Duration {
        let exp = self
            .initial_ms
            .saturating_mul(1u64 << (n.saturating_sub(1)).min(30));
        Duration::from_millis(exp.min(self.max_ms))
    }

    /// Wait before retry `n`: `ceiling/2 + U(0, ceiling/2)`.
    pub fn backoff(&self, n: u32) -> Duration {
        let c = self.ceiling(n).as_millis() as u64;
        let half = c / 2;
        let jitter = if half > 0 {
            rand::random_range(0..=half)
        } else {
            0
        };
        Duration::from_millis(half + jitter)
    }
}

/// Where and how `publish` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Indices are `<prefix>-incidents` and `<prefix>-events`; templates match `<prefix>-incidents*` / `<prefix>-events*`.
    pub index_prefix: String,
    /// Documents per `_bulk` request.
    pub bulk_max_docs: usize,
    /// Bytes per `_bulk` request (NDJSON body).
    pub bulk_max_bytes: usize,
    /// `refresh=wait_for` on the last request, so the documents are searchable when `publish` returns.
    pub refresh: bool,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            index_prefix: "wiretrail".into(),
            bulk_max_docs: 1000,
            bulk_max_bytes: 5 << 20,
            refresh: false,
        }
    }
}

impl SinkConfig {
    pub fn incidents_index(&self) -> String {
        format!("{}-incidents", self.index_prefix)
    }
    pub fn events_index(&self) -> String {
        format!("{}-events", self.index_prefix)
    }
}
