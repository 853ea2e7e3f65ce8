//! Renderings of a correlation report ([`wiretrail_correlate::model::Report`]):
//! a terminal timeline, pretty JSON, and one self-contained HTML file with a
//! ladder diagram per incident; and of a capture catalog and an extraction
//! ([`catalog`], for `wiretrail capture index|extract`).
//!
//! Modules form a DAG: `text` (escapers) is a leaf, `describe` (the shared
//! words) uses only it, and the renderers (`terminal`, `html`, `ladder`,
//! `catalog`) use those two and never each other, except `html` drawing its
//! `ladder`.
//!
//! This crate draws; it decides nothing. Causes, offsets, marks and row order
//! come from `wiretrail-correlate`. It reads no files and probes no terminal:
//! the caller says whether to colour and how wide to draw. Everything that
//! came from logs or packets is treated as hostile: control and bidi
//! characters are made visible ([`text::visible`]) and HTML output is escaped
//! in text and attribute contexts.

pub mod catalog;
pub mod describe;
pub mod html;
mod ladder;
pub mod terminal;
pub mod text;

use std::io::{self, Write};

use wiretrail_correlate::model::Report;

pub use html::render_html;
pub use terminal::{render_summary_terminal, render_terminal, TerminalOptions};

/// The report as pretty JSON (the documented schema, `docs/report-schema.md`),
/// followed by a newline.
pub fn render_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}
