//! Go `httputil.ReverseProxy` error lines, from every envelope users meet,
//! and the same failures as Caddy, Traefik, nginx, HAProxy and Envoy log
//! them ([`SourceFormat`]).
//!
//! This crate turns log lines (journald short/iso/precise and JSON, RFC 3164
//! and 5424 syslog, Kubernetes CRI, Docker json-file, Filebeat/Elasticsearch
//! documents, bare Go `log` output) into [`ProxyError`] records: when, which
//! proxy socket, which backend socket, which Go operation, and what the error
//! means at the TCP level ([`ErrorClass`]).
//!
//! Start at [`parse_line`] (one line), [`parse_document`] (one Elasticsearch
//! `_source`), [`parse_go_error`] (the Go error text alone) or [`LogReader`]
//! (files, directories, `.gz`/`.zst`, stdin, streaming).
//!
//! It is not a general log parser: lines that are not proxy errors are counted
//! and skipped. It does no network I/O (Elasticsearch lives in
//! `wiretrail-elastic`, which hands documents to [`parse_document`]).

pub mod config;
pub mod envelope;
mod formats;
pub mod goerr;
mod line;
pub mod reader;
pub mod record;
pub mod render;
pub mod text;
pub mod time;

pub use config::{Formats, ParseConfig};
pub use goerr::{parse_go_error, GoError};
pub use line::{parse_document, parse_line, Parsed, PHRASE};
pub use reader::{LogError, LogReader, ReadProblem, ReadProblemKind, ReadStats, Rendered};
pub use record::{ErrorClass, ProxyError, Source, SourceFormat, TimePrecision};
