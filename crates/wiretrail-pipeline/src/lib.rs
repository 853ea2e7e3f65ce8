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
//! [`engine::Engine`] trait so each mode can be tested with a double;
//! [`CratesEngine`] is the real one, and the only code here that calls
//! them ([`model`] re-exports their data types). Remote captures
//! ([`remote`]) are fetched with the system `ssh` client.
//!
//! Cargo features (both on by default): `elasticsearch` (logs from an
//! index, reports published to one) and `serve` (the webhook server, with
//! axum and hyper). Without them a pipeline that needs them is refused with
//! "built without the `…` feature".
//!
//! Modules form a DAG, leaves first: `model`, `time`, `diag`, `files`,
//! `progress`; `alert`, `config`; `engine`; `crates_engine` (private,
//! with `remote`); `outputs`; `investigate`; `batch`; `serve`.

pub mod alert;
pub mod batch;
pub mod config;
mod crates_engine;
pub mod diag;
pub mod engine;
pub mod files;
pub mod investigate;
pub mod model;
pub mod outputs;
pub mod progress;
#[cfg(feature = "serve")]
pub mod serve;
pub mod time;

pub use config::Pipeline;
pub use crates_engine::{remote, CratesEngine};
pub use engine::Engine;
/// The typed problems a run reports (`report.inputs.problems`).
pub use model::{Problem, ProblemKind, ProblemSource};
