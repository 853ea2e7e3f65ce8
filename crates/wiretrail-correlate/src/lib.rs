//! Correlation: from proxy errors and the packets every node captured to one
//! cross-node timeline per incident, on one clock, with a named cause.
//!
//! Input: [`wiretrail_logs::ProxyError`] records and
//! [`wiretrail_capture::PacketObs`] observations. Output: a [`model::Report`].
//! This crate reads no files and renders nothing: extraction is
//! `wiretrail-capture`, rendering is `wiretrail-report`.

pub mod model;

pub use model::{Cause, Report, SCHEMA_VERSION};
