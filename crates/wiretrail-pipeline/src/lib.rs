//! Pipelines, and the three ways people run wiretrail.
//!
//! A pipeline file (`pipelines/*.toml`, see [`config`]) names the log source,
//! the nodes and where their captures are (local directories, globs, or
//! `ssh://` hosts), correlation settings and the outputs. This crate checks
//! it (every error points at FILE:LINE:COL), applies command-line overrides,
//! and drives the other crates in three modes:
//!
//! - [`investigate`]: one window after an alert (flags, a pipeline file, or
//!   an Alertmanager / Grafana / Kibana webhook body, see [`alert`]);
//! - [`batch`]: a whole day in resumable, checkpointed chunks with progress;
//! - [`serve`]: a webhook receiver that runs investigations one or two at a time.
//!
//! It parses no log lines and no packets itself: that is `wiretrail-logs`,
//! `wiretrail-capture` and `wiretrail-correlate`, reached only through the
//! [`engine::Engine`] trait so each mode can be tested with a double.
//! Remote captures ([`remote`]) are fetched with the system `ssh` client.

mod adapters;
pub mod alert;
pub mod batch;
pub mod config;
pub mod diag;
pub mod engine;
pub mod investigate;
pub mod outputs;
pub mod progress;
pub mod remote;
pub mod serve;
pub mod time;

pub use config::Pipeline;
pub use engine::{CratesEngine, Engine};
/// The typed problems a run reports (`report.inputs.problems`).
pub use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource};
