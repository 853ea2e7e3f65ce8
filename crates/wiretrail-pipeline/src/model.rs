//! The data the pipeline speaks, as the crates that define it spell it.
//!
//! Architecture invariant: outside [`crate::CratesEngine`]'s module
//! (`src/crates_engine/`), this file is the only place in the pipeline that
//! names another wiretrail crate, and it only re-exports *data types*: the
//! report model, a packet observation, a proxy error record, node names and
//! roles, typed problems, which log formats to read. Building and reading
//! those values is not a call into the crates' machinery; anything that
//! reads logs or captures, plans, correlates, renders, writes pcapng or
//! talks to Elasticsearch is an [`crate::engine::Engine`] method.
//! `tests/architecture.rs` checks both halves of this (names and `pub use`
//! only).

pub use wiretrail_capture::{Duration, PacketObs, Timestamp};
pub use wiretrail_correlate::model::{
    Cause, EventBody, Incident, NodeName, NodeNameError, NodeRole, PacketEvent, Problem,
    ProblemKind, ProblemSource, Report, TimeSpan,
};
pub use wiretrail_logs::{Formats as LogFormats, ProxyError, SourceFormat};

/// The `[elasticsearch]` table of a pipeline (cluster, index, credentials,
/// sink settings).
#[cfg(feature = "elasticsearch")]
pub use wiretrail_elastic::EsConfig;
