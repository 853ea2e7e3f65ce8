//! Test support for wiretrail: an in-process server that speaks
//! Elasticsearch's HTTP contract ([`es::EsServer`]) with fault injection,
//! and [`require_or_skip`] for tests that need a tool or server (they fail
//! in CI instead of passing by skipping).
//!
//! It is a test double, not a search engine: it implements the endpoints and
//! query subset wiretrail sends (see `shared/es-api.md`), with the real bodies
//! and status codes, and binds loopback only.

pub mod es;
pub mod require;

pub use es::{Auth, Endpoint, EsServer, Fault, FaultKind, Flavor, ServerConfig};
pub use require::{require_all, require_or_skip};
