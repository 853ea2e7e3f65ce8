//! Test support for wiretrail: an in-process server that speaks
//! Elasticsearch's HTTP contract ([`es::EsServer`]) with fault injection.
//!
//! It is a test double, not a search engine: it implements the endpoints and
//! query subset wiretrail sends (see `shared/es-api.md`), with the real bodies
//! and status codes, and binds loopback only.

pub mod es;

pub use es::{Auth, Endpoint, EsServer, Fault, FaultKind, Flavor, ServerConfig};
