//! Correlation: from proxy errors and the packets every node captured to one
//! cross-node timeline per incident, on one clock, with a named cause.
//!
//! Two phases. [`plan()`] groups [`wiretrail_logs::ProxyError`] records into
//! incidents and says which flows (with time windows) extraction must pull
//! from every node's captures: by the proxy's port when the line prints it,
//! else by time (every connection to the backend in the log's second; see
//! `timejoin` for how the one telling the error's story is chosen, and how
//! ties are reported rather than picked). [`correlate`] takes the errors, the plan and
//! the extracted [`wiretrail_capture::PacketObs`] and returns a
//! [`model::Report`]: per node the connection instance each error belongs to
//! (Zeek `conn_state`/`history`, per-packet marks, capture duplicates), one
//! reference clock (offsets from shared packets or the proxy's TSval),
//! findings with evidence (node, file, frame, time), one diagnosis per error
//! and one verdict per incident, and a summary across incidents.
//!
//! This crate reads no files and renders nothing: extraction is
//! `wiretrail-capture`, rendering is `wiretrail-report`. The JSON form of the
//! report is documented in `docs/report-schema.md`.

pub mod addr;
mod clock;
pub mod community_id;
pub mod config;
mod conn;
mod correlate;
mod ctx;
mod diagnose;
mod findings;
pub mod model;
mod packets;
pub mod plan;
mod rst;
mod rules;
pub mod summary;
mod systemic;
mod timejoin;

pub use config::{CaptureLoss, CorrelateConfig, LossReason, NodeInput, ProxyHint};
pub use correlate::{correlate, incident_id};
pub use model::{Cause, Report, SCHEMA_VERSION};
pub use plan::{plan, ErrorId, ErrorJoin, Plan, PlannedIncident};
pub use summary::{merge, summarize};
