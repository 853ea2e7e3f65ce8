//! Writing a run's results: the terminal report, JSON, HTML, one pcapng
//! slice per incident, each rendered by the [`Engine`] from the report and
//! its packets. Files are written atomically ([`crate::files`]) so a crash
//! or a second reader never sees half a report.

use crate::config::Outputs;
use crate::engine::{Color, Engine, Rendering, SlicePacket, TerminalStyle};
use crate::files::{safe_file_name, write_atomic, WriteError};
use crate::model::{EventBody, Incident, PacketEvent, PacketObs, Report};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `--format` asks for on stdout (or in `--out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            _ => Err(format!("format `{s}`: use text, json or html")),
        }
    }
}

/// Where each output goes in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPlan {
    /// Print the terminal report on `stdout`.
    pub terminal: bool,
    pub color: Color,
    pub width: Option<usize>,
    pub max_rows_per_incident: Option<usize>,
    /// Print this format on stdout instead of the terminal report.
    pub stdout_format: Option<Format>,
    /// `--format text --out F`: the terminal report (no colour) into F.
    pub text_out: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub pcap_dir: Option<PathBuf>,
}

impl OutputPlan {
    /// From the pipeline's outputs plus `--format`/`--out`/`--pcap-dir`.
    pub fn from_outputs(
        o: &Outputs,
        format: Option<Format>,
        out: Option<&Path>,
        pcap_dir: Option<&Path>,
        color: Color,
    ) -> OutputPlan {
        let mut plan = OutputPlan {
            terminal: o.terminal,
            color,
            width: None,
            max_rows_per_incident: o.max_rows_per_incident,
            stdout_format: None,
            text_out: None,
            json: o.json.clone(),
            html: o.html.clone(),
            pcap_dir: o.pcap_dir.clone(),
        };
        match (format.unwrap_or_default(), out) {
            (Format::Json, Some(p)) => plan.json = Some(p.to_path_buf()),
            (Format::Html, Some(p)) => plan.html = Some(p.to_path_buf()),
            (Format::Text, Some(p)) => {
                plan.terminal = true;
                plan.text_out = Some(p.to_path_buf());
            }
            (Format::Json, None) => plan.stdout_format = Some(Format::Json),
            (Format::Html, None) => plan.stdout_format = Some(Format::Html),
            (Format::Text, None) => {}
        }
        if let Some(p) = pcap_dir {
            plan.pcap_dir = Some(p.to_path_buf());
        }
        plan
    }

    fn terminal_style(&self, color: Color) -> TerminalStyle {
        TerminalStyle {
            color,
            width: self.width,
            max_rows_per_incident: self.max_rows_per_incident,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
}

/// Write everything the plan asks for; returns the files written.
pub fn write_outputs(
    engine: &dyn Engine,
    report: &Report,
    packets: &[PacketObs],
    plan: &OutputPlan,
    stdout: &mut dyn Write,
) -> Result<Vec<PathBuf>, OutputError> {
    let mut written = Vec::new();
    match plan.stdout_format {
        Some(f @ (Format::Json | Format::Html)) => {
            let how = if f == Format::Json {
                Rendering::Json
            } else {
                Rendering::Html
            };
            engine
                .render(report, how, stdout)
                .map_err(OutputError::Stdout)?
        }
        Some(Format::Text) | None => {
            if let Some(p) = &plan.text_out {
                let plain = Rendering::Terminal(plan.terminal_style(Color::Plain));
                write_atomic(p, |w| engine.render(report, plain, w))?;
                written.push(p.clone());
            } else if plan.terminal {
                let how = Rendering::Terminal(plan.terminal_style(plan.color));
                engine
                    .render(report, how, stdout)
                    .map_err(OutputError::Stdout)?;
            }
        }
    }
    if let Some(p) = &plan.json {
        write_atomic(p, |w| engine.render(report, Rendering::Json, w))?;
        written.push(p.clone());
    }
    if let Some(p) = &plan.html {
        write_atomic(p, |w| engine.render(report, Rendering::Html, w))?;
        written.push(p.clone());
    }
    if let Some(dir) = &plan.pcap_dir {
        written.extend(write_slices(engine, report, packets, dir)?);
    }
    Ok(written)
}

/// One pcapng per incident: every node's packets of the incident merged in
/// reference-clock order, one interface per node (named after it), each
/// finding's evidence packets carrying the finding as a packet comment.
pub fn write_slices(
    engine: &dyn Engine,
    report: &Report,
    packets: &[PacketObs],
    dir: &Path,
) -> Result<Vec<PathBuf>, WriteError> {
    // (node, file, frame) → packet.
    let mut by_key: HashMap<(&str, &Path, u64), &PacketObs> = HashMap::with_capacity(packets.len());
    for p in packets {
        by_key.insert((&p.node, p.file.as_path(), p.frame), p);
    }
    let mut written = Vec::new();
    for inc in &report.incidents {
        let rows = slice_rows(inc, &by_key);
        if rows.is_empty() {
            continue;
        }
        let path = dir.join(format!("{}.pcapng", safe_file_name(&inc.id)));
        write_atomic(&path, |w| engine.write_pcapng(&rows, w))?;
        written.push(path);
    }
    Ok(written)
}

/// The incident's packets in reference-clock order (each once), with the
/// findings whose evidence they are as comments.
fn slice_rows<'a>(
    inc: &Incident,
    by_key: &HashMap<(&str, &Path, u64), &'a PacketObs>,
) -> Vec<SlicePacket<'a>> {
    let mut rows: Vec<(crate::time::Timestamp, SlicePacket<'a>)> = Vec::new();
    for ev in &inc.timeline {
        if let EventBody::Packet(PacketEvent { file, frame, .. }) = &ev.body {
            if let Some(p) = by_key.get(&(ev.origin.as_str(), Path::new(file), *frame)) {
                rows.push((
                    ev.t_ns,
                    SlicePacket {
                        packet: p,
                        comments: Vec::new(),
                    },
                ));
            }
        }
    }
    rows.sort_by(|(ta, a), (tb, b)| {
        ta.cmp(tb)
            .then_with(|| a.packet.node.cmp(&b.packet.node))
            .then(a.packet.frame.cmp(&b.packet.frame))
    });
    let mut rows: Vec<SlicePacket<'a>> = rows.into_iter().map(|(_, r)| r).collect();
    rows.dedup_by(|a, b| {
        a.packet.node == b.packet.node
            && a.packet.file == b.packet.file
            && a.packet.frame == b.packet.frame
    });
    for f in &inc.findings {
        for e in &f.evidence {
            if let Some(r) = rows.iter_mut().find(|r| {
                *r.packet.node == *e.origin.as_str()
                    && r.packet.frame == e.frame
                    && r.packet.file.as_path() == Path::new(&e.file)
            }) {
                let kind = serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let text = match &e.note {
                    Some(n) => format!("wiretrail {kind}: {n}"),
                    None => format!("wiretrail {kind}: {}", f.summary),
                };
                if !r.comments.contains(&text) {
                    r.comments.push(text);
                }
            }
        }
    }
    rows
}

/// Whether a run publishes its report to the pipeline's Elasticsearch
/// output (`outputs.elasticsearch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Publish {
    /// When the pipeline names the output.
    #[default]
    AsConfigured,
    /// Never (`--no-publish`).
    Never,
}

/// Publish `report` when `publish` and the pipeline say so; the line saying
/// what arrived.
pub fn publish(
    engine: &dyn Engine,
    pipeline: &crate::config::Pipeline,
    report: &Report,
    publish: Publish,
) -> Result<Option<String>, crate::engine::EngineError> {
    match publish {
        Publish::AsConfigured if pipeline.outputs.elasticsearch => {
            engine.publish(pipeline, report).map(Some)
        }
        Publish::AsConfigured | Publish::Never => Ok(None),
    }
}
