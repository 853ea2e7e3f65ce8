//! [`CratesEngine`]: the [`Engine`] made of the wiretrail crates.
//!
//! Architecture invariant: this module (with its submodules) is the only
//! code of the pipeline that calls `wiretrail-logs`, `wiretrail-capture`,
//! `wiretrail-correlate`, `wiretrail-report` and `wiretrail-elastic`
//! (`crate::model` re-exports their data types, nothing more); the modes
//! reach them through the trait. `tests/architecture.rs` checks it.
//!
//! - [`logs`]: a window's proxy errors (files, stdin, journald, an index);
//! - [`analyse`]: plan, remote fetch, catalog, one extraction, correlation;
//! - [`remote`]: `ssh://` nodes' captures, brought over as little as needed;
//! - here: rendering, pcapng slices, merging, publishing.

mod analyse;
mod logs;
pub mod remote;

use crate::config::Pipeline;
use crate::engine::{
    Analysis, Color, Engine, EngineError, Keep, LogBatch, LogStats, Rendering, SlicePacket,
};
use crate::progress::Progress;
use crate::time::{Duration, Window};
use std::io::Write;
use std::sync::Arc;
use wiretrail_capture::pcapng::{write_merged, MergedRecord};
use wiretrail_correlate::model::Report;
use wiretrail_logs::ProxyError;

/// The engine made of the wiretrail crates.
#[derive(Debug, Default, Clone, Copy)]
pub struct CratesEngine;

impl Engine for CratesEngine {
    fn read_errors(
        &self,
        pipeline: &Pipeline,
        window: &Window,
        keep: Keep,
    ) -> Result<LogBatch, EngineError> {
        logs::read_errors(pipeline, window, keep)
    }

    fn analyse(
        &self,
        pipeline: &Pipeline,
        window: &Window,
        errors: Vec<ProxyError>,
        log_stats: &LogStats,
        progress: &Arc<dyn Progress>,
    ) -> Result<Analysis, EngineError> {
        analyse::analyse(pipeline, window, errors, log_stats, progress)
    }

    fn publish(&self, pipeline: &Pipeline, report: &Report) -> Result<String, EngineError> {
        publish(pipeline, report)
    }

    fn render(&self, report: &Report, how: Rendering, out: &mut dyn Write) -> std::io::Result<()> {
        match how {
            Rendering::Json => wiretrail_report::render_json(report, out),
            Rendering::Html => wiretrail_report::render_html(report, out),
            Rendering::Terminal(style) => {
                let opts = wiretrail_report::TerminalOptions {
                    color: style.color == Color::Ansi,
                    width: style.width,
                    max_rows_per_incident: style.max_rows_per_incident,
                };
                wiretrail_report::render_terminal(report, &opts, out)
            }
        }
    }

    fn write_pcapng(
        &self,
        packets: &[SlicePacket<'_>],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        // The one merged-pcapng writer (the `capture` command's too): one
        // interface per (node, link type), a frame given twice written once.
        let comments: Vec<Option<String>> = packets
            .iter()
            .map(|r| (!r.comments.is_empty()).then(|| r.comments.join("; ")))
            .collect();
        let records: Vec<MergedRecord<'_>> = packets
            .iter()
            .zip(&comments)
            .map(|(r, c)| MergedRecord {
                packet: r.packet,
                comment: c.as_deref(),
            })
            .collect();
        write_merged(out, &records).map(|_| ())
    }

    fn merge(&self, parts: Vec<Report>, window: &Window) -> Report {
        wiretrail_correlate::merge(parts, window.since().to_utc(), window.until().to_utc())
    }

    fn incident_gap(&self, pipeline: &Pipeline) -> Duration {
        analyse::correlate_config(pipeline).incident_gap
    }
}

/// Publish a report to the pipeline's cluster; one line saying what arrived.
#[cfg(feature = "elasticsearch")]
fn publish(p: &Pipeline, report: &Report) -> Result<String, EngineError> {
    let es = p.elasticsearch.as_ref().ok_or_else(|| {
        EngineError::Config("outputs.elasticsearch = true but no [elasticsearch] table".into())
    })?;
    let s = wiretrail_elastic::publish_blocking(es, report)
        .map_err(|e| EngineError::Publish(Box::new(e)))?;
    Ok(format!("{s:?}"))
}

#[cfg(not(feature = "elasticsearch"))]
fn publish(_p: &Pipeline, _report: &Report) -> Result<String, EngineError> {
    Err(EngineError::Unsupported {
        feature: "elasticsearch",
        what: "publishing to Elasticsearch",
    })
}
