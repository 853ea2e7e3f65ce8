//! Writing a run's results: the terminal report, JSON, HTML, one pcapng
//! slice per incident. Files are written atomically (temporary file, then
//! rename) so a crash or a second reader never sees half a report.

use crate::config::Outputs;
use crate::engine::Analysis;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use wiretrail_capture::pcapng::{write_merged, MergedRecord};
use wiretrail_capture::PacketObs;
use wiretrail_correlate::model::{EventBody, Incident, PacketEvent, Report};

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
    pub color: bool,
    pub width: Option<usize>,
    pub max_rows_per_incident: Option<usize>,
    /// Print this format on stdout instead of the terminal report.
    pub stdout_format: Option<Format>,
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
        color: bool,
    ) -> OutputPlan {
        let mut plan = OutputPlan {
            terminal: o.terminal,
            color,
            width: None,
            max_rows_per_incident: o.max_rows_per_incident,
            stdout_format: None,
            json: o.json.clone(),
            html: o.html.clone(),
            pcap_dir: o.pcap_dir.clone(),
        };
        match (format.unwrap_or_default(), out) {
            (Format::Json, Some(p)) => plan.json = Some(p.to_path_buf()),
            (Format::Html, Some(p)) => plan.html = Some(p.to_path_buf()),
            // `--format text --out F`: the terminal report (no colour) into F.
            (Format::Text, Some(_)) => plan.terminal = true,
            (Format::Json, None) => plan.stdout_format = Some(Format::Json),
            (Format::Html, None) => plan.stdout_format = Some(Format::Html),
            (Format::Text, None) => {}
        }
        if let Some(p) = pcap_dir {
            plan.pcap_dir = Some(p.to_path_buf());
        }
        plan
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
}

fn werr(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The temporary sibling `path` is written through: `.NAME.tmp-PID`, hidden,
/// and naming the process that writes it, so a later run can tell a
/// leftover of a killed run from a file being written now.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The process id in a [`temporary_path`] file name.
fn temporary_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (name, pid) = rest.rsplit_once(".tmp-")?;
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` runs; `None` where that cannot be told (no /proc).
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
}

/// Remove the [`temporary_path`] files in `dir` left by processes that no
/// longer run (a `kill -9`, a power loss): their contents were never
/// renamed into place, so nothing refers to them. Files of a running
/// process (another wiretrail writing into the same directory), or of any
/// other name, are left alone; where liveness cannot be told, only those
/// untouched for a day are removed. Returns what was removed.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else {
            continue;
        };
        if pid == me || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let stale = match process_alive(pid) {
            Some(alive) => !alive,
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(86_400)),
        };
        if stale && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!(file = %e.path().display(), pid, "removed the temporary file of a run that no longer runs");
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

/// Write `path` through a temporary sibling and a rename.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), OutputError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr(path))?;
    }
    let tmp = temporary_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        f(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr(path))
}

/// Write everything the plan asks for; returns the files written.
pub fn write_outputs(
    a: &Analysis,
    plan: &OutputPlan,
    stdout: &mut dyn Write,
    text_out: Option<&Path>,
) -> Result<Vec<PathBuf>, OutputError> {
    let mut written = Vec::new();
    let report = &a.report;
    let topts = wiretrail_report::TerminalOptions {
        color: plan.color,
        width: plan.width,
        max_rows_per_incident: plan.max_rows_per_incident,
    };
    match plan.stdout_format {
        Some(Format::Json) => {
            wiretrail_report::render_json(report, stdout).map_err(OutputError::Stdout)?
        }
        Some(Format::Html) => {
            wiretrail_report::render_html(report, stdout).map_err(OutputError::Stdout)?
        }
        Some(Format::Text) | None => {
            if let Some(p) = text_out {
                let plain = wiretrail_report::TerminalOptions {
                    color: false,
                    ..topts.clone()
                };
                write_atomic(p, |w| wiretrail_report::render_terminal(report, &plain, w))?;
                written.push(p.to_path_buf());
            } else if plan.terminal {
                wiretrail_report::render_terminal(report, &topts, stdout)
                    .map_err(OutputError::Stdout)?;
            }
        }
    }
    if let Some(p) = &plan.json {
        write_atomic(p, |w| wiretrail_report::render_json(report, w))?;
        written.push(p.clone());
    }
    if let Some(p) = &plan.html {
        write_atomic(p, |w| wiretrail_report::render_html(report, w))?;
        written.push(p.clone());
    }
    if let Some(dir) = &plan.pcap_dir {
        written.extend(write_slices(report, &a.packets, dir)?);
    }
    Ok(written)
}

/// One pcapng per incident: every node's packets of the incident merged in
/// reference-clock order, one interface per node (named after it), each
/// finding's evidence packets carrying the finding as a packet comment.
pub fn write_slices(
    report: &Report,
    packets: &[PacketObs],
    dir: &Path,
) -> Result<Vec<PathBuf>, OutputError> {
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
        let comments: Vec<Option<String>> = rows
            .iter()
            .map(|r| (!r.comments.is_empty()).then(|| r.comments.join("; ")))
            .collect();
        let records: Vec<MergedRecord<'_>> = rows
            .iter()
            .zip(&comments)
            .map(|(r, c)| MergedRecord {
                packet: r.packet,
                comment: c.as_deref(),
            })
            .collect();
        let path = dir.join(format!("{}.pcapng", safe_file_name(&inc.id)));
        write_atomic(&path, |w| write_merged(w, &records).map(|_| ()))?;
        written.push(path);
    }
    Ok(written)
}

struct SliceRow<'a> {
    t_ns: i64,
    packet: &'a PacketObs,
    comments: Vec<String>,
}

fn slice_rows<'a>(
    inc: &Incident,
    by_key: &HashMap<(&str, &Path, u64), &'a PacketObs>,
) -> Vec<SliceRow<'a>> {
    let mut rows: Vec<SliceRow<'a>> = Vec::new();
    for ev in &inc.timeline {
        if let EventBody::Packet(PacketEvent { file, frame, .. }) = &ev.body {
            if let Some(p) = by_key.get(&(ev.origin.as_str(), Path::new(file), *frame)) {
                rows.push(SliceRow {
                    t_ns: ev.t_ns,
                    packet: p,
                    comments: Vec::new(),
                });
            }
        }
    }
    rows.sort_by(|a, b| {
        a.t_ns
            .cmp(&b.t_ns)
            .then_with(|| a.packet.node.cmp(&b.packet.node))
            .then(a.packet.frame.cmp(&b.packet.frame))
    });
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

/// Incident ids become file names: keep them boring.
pub fn safe_file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised_by_name_and_owner() {
        assert_eq!(temporary_owner(".report.json.tmp-4242"), Some(4242));
        assert_eq!(temporary_owner(".a.b.tmp-1.tmp-7"), Some(7));
        for other in [
            "report.json.tmp-4242",
            ".report.json.tmp-",
            ".report.json.tmp-12x",
            "..tmp-5",
            ".report.json",
            "notes.tmp",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
        let p = temporary_path(Path::new("/d/chunks/x.json"));
        assert_eq!(
            temporary_owner(p.file_name().unwrap().to_str().unwrap()),
            Some(std::process::id())
        );
        assert_eq!(p.parent(), Some(Path::new("/d/chunks")));
    }
}
