//! Go `httputil.ReverseProxy` error lines, from every envelope users meet.
//!
//! This crate turns log lines (journald short/iso/precise and JSON, RFC 3164
//! and 5424 syslog, Kubernetes CRI, Docker json-file, Filebeat/Elasticsearch
//! documents, bare Go `log` output) into [`ProxyError`] records: when, which
//! proxy socket, which backend socket, which Go operation, and what the error
//! means at the TCP level ([`ErrorClass`]).
//!
//! It is not a general log parser: lines that are not proxy errors are counted
//! and skipped. It does no network I/O (Elasticsearch lives in
//! `wiretrail-elastic`, which hands documents to [`envelope`]).

pub mod record;

pub use record::{ErrorClass, ProxyError, Source, TimePrecision};
