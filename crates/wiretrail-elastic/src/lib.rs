//! Elasticsearch both ways, for wiretrail.
//!
//! - [`source`]: pull proxy-error documents of a time range (point in time +
//!   `search_after` + `_shard_doc`, sliced; scroll on clusters without PIT),
//!   streamed page by page into the log parser's document envelope, with
//!   retries, PIT reopening and exactly-once delivery.
//! - [`sink`]: index templates (ECS names + `wiretrail.*`) and `_bulk`
//!   publishing of a correlation [`Report`]
//!   with deterministic ids, per-item results and item retries.
//!
//! Built on the official `elasticsearch` crate; retries, backoff and error
//! reporting are ours ([`client`]), as the crate has none. Credentials come
//! from the environment or a file ([`auth`]) and never appear in errors.
//! TLS trusts the built-in roots, a CA file, or a certificate fingerprint
//! ([`tls`]: checked with a handshake of its own, then pinned).
//!
//! It is async (tokio); the `*_blocking` functions wrap each call in a
//! runtime of their own for synchronous callers. It does not parse log text
//! (that is `wiretrail-logs`) nor correlate anything.

pub mod auth;
pub mod client;
pub mod config;
pub mod ecs;
pub mod error;
pub mod redact;
pub mod sink;
pub mod source;
pub mod tls;

pub use client::EsClient;
pub use config::{AuthConfig, EsConfig, FieldNames, RetryPolicy, SinkConfig, TlsConfig};
/// The official crate, for requests this crate does not wrap ([`EsClient::es`]).
pub use elasticsearch;
pub use error::EsError;
pub use sink::{publish, setup, ItemFailure, PublishSummary, TemplateState, TemplateStatus};
pub use source::{
    fetch_errors, scan, FetchStats, Flavor, Hit, Malformed, PitApi, ReadMethod, ScanStats,
    Tiebreaker, TimeRange,
};

use std::ops::ControlFlow;
use wiretrail_correlate::model::Report;
use wiretrail_logs::{ParseConfig, ProxyError};

/// A field by dotted path, whether the document stored it nested
/// (`{"host":{"name":..}}`) or dotted (`{"host.name":..}`) (es-api.md A3.1):
/// the log crate's reading of Filebeat documents, the same rule.
pub use wiretrail_logs::envelope::lookup;

fn runtime() -> Result<tokio::runtime::Runtime, EsError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| EsError::Config(format!("cannot start the async runtime: {e}")))
}

/// [`fetch_errors`] for synchronous callers (the pipeline): each proxy error
/// goes to `on_error` in scan order per slice; malformed hits to `on_malformed`.
pub fn fetch_errors_blocking<E, M>(
    cfg: &EsConfig,
    range: &TimeRange,
    parse: &ParseConfig,
    on_error: E,
    on_malformed: M,
) -> Result<FetchStats, EsError>
where
    E: FnMut(ProxyError) -> ControlFlow<()>,
    M: FnMut(Malformed),
{
    let rt = runtime()?;
    rt.block_on(async {
        let client = EsClient::new(cfg)?;
        fetch_errors(&client, cfg, range, parse, on_error, on_malformed).await
    })
}

/// [`setup`] for synchronous callers.
pub fn setup_blocking(cfg: &EsConfig, check_only: bool) -> Result<Vec<TemplateStatus>, EsError> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = EsClient::new(cfg)?;
        setup(&client, &cfg.sink, check_only).await
    })
}

/// [`publish`] for synchronous callers (`investigate`/`batch` with an
/// Elasticsearch output).
pub fn publish_blocking(cfg: &EsConfig, report: &Report) -> Result<PublishSummary, EsError> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = EsClient::new(cfg)?;
        publish(&client, &cfg.sink, report).await
    })
}
