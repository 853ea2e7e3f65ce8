//! `batch`: a whole day (or any range), resumable.
//!
//! The logs are streamed once for the whole range and their errors bucketed
//! into time chunks (`batch.chunk`, 1 h by default). Each chunk is one
//! analysis: all of its incidents are planned together, so the extractor
//! reads each capture file once for every query of the chunk (a file that
//! straddles a chunk boundary is read once per chunk, in the part each
//! needs). Chunks without errors read no captures at all.
//!
//! Resumability: a chunk's report is written atomically to
//! `<out_dir>/chunks/<start>.json` *before* the checkpoint records it, and
//! chunk files have deterministic names, so a run killed at any point and
//! started again redoes at most the chunk it was in and never duplicates
//! output. The checkpoint remembers the range and settings it belongs to;
//! a different run refuses to reuse it (use `--fresh`).
//!
//! At the end the chunk reports are merged into the day report
//! (`report.json`, `report.html`) and a day summary (by cause, node, hour).
//! Known limit: errors of one incident that straddle a chunk boundary
//! become two incidents.

use crate::config::Pipeline;
use crate::engine::{Engine, EngineError};
use crate::outputs::{write_atomic, write_json, write_slices, OutputError};
use crate::progress::Progress;
use crate::time::Window;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wiretrail_correlate::model::{ClockOffset, InputStats, Report, Summary};
use wiretrail_logs::ProxyError;

/// How to run one batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub window: Window,
    pub chunk: Duration,
    pub out_dir: PathBuf,
    /// Default `<out_dir>/checkpoint.json`.
    pub checkpoint: Option<PathBuf>,
    /// Ignore (and replace) an existing checkpoint.
    pub fresh: bool,
    /// Write pcapng slices under `<out_dir>/slices/`.
    pub slices: bool,
    /// Write `<out_dir>/report.html`.
    pub html: bool,
    /// Set by a signal handler: stop after the current chunk.
    pub cancel: Arc<AtomicBool>,
}

/// What the checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// Identifies the run: range, chunk size, log source and nodes.
    pub fingerprint: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub chunk_s: i64,
    pub completed: Vec<ChunkRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Relative to the output directory; `None` when the chunk had no errors.
    pub file: Option<String>,
    pub errors: u64,
    pub incidents: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("checkpoint {}: {why}", path.display())]
    Checkpoint { path: PathBuf, why: String },
    #[error("interrupted after {done} of {total} chunks; run the same command again to resume")]
    Interrupted { done: usize, total: usize },
}

#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// The merged report of the whole range.
    pub report: Report,
    pub chunks_total: usize,
    /// Chunks analysed by this run.
    pub chunks_run: usize,
    /// Chunks taken from the checkpoint.
    pub chunks_resumed: usize,
    pub written: Vec<PathBuf>,
    /// What this run's log read saw (not part of the report: a resumed run
    /// reads only the remaining range).
    pub log_stats: crate::engine::LogStats,
}

fn fingerprint(p: &Pipeline, o: &BatchOptions) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}",
        p.logs,
        p.host_filter,
        p.nodes,
        p.correlate,
        p.tz,
        o.window,
        o.chunk.num_seconds(),
        p.name
    );
    let h = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x}")
}

fn chunk_file_name(w: &Window) -> String {
    format!("chunks/{}.json", w.since().format("%Y%m%dT%H%M%SZ"))
}

fn load_checkpoint(path: &Path, fp: &str, fresh: bool) -> Result<Option<Checkpoint>, BatchError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BatchError::Checkpoint {
                path: path.into(),
                why: e.to_string(),
            })
        }
    };
    if fresh {
        return Ok(None);
    }
    let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| BatchError::Checkpoint {
        path: path.into(),
        why: format!("unreadable ({e}); remove it or pass --fresh"),
    })?;
    if cp.fingerprint != fp {
        return Err(BatchError::Checkpoint {
            path: path.into(),
            why: format!(
                "belongs to another run ({} .. {}, other settings); pass --fresh to start over or use another --out",
                cp.since, cp.until
            ),
        });
    }
    Ok(Some(cp))
}

fn save_checkpoint(path: &Path, cp: &Checkpoint) -> Result<(), BatchError> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, cp).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
    .map_err(BatchError::from)
}

/// Run (or resume) a batch. `stdout` receives the day summary.
pub fn run_batch(
    engine: &dyn Engine,
    p: &Pipeline,
    o: &BatchOptions,
    progress: &Arc<dyn Progress>,
) -> Result<BatchOutcome, BatchError> {
    let cp_path = o
        .checkpoint
        .clone()
        .unwrap_or_else(|| o.out_dir.join("checkpoint.json"));
    let fp = fingerprint(p, o);
    let chunks = o.window.chunks(o.chunk);
    let mut cp = load_checkpoint(&cp_path, &fp, o.fresh)?.unwrap_or_else(|| Checkpoint {
        version: 1,
        fingerprint: fp.clone(),
        since: o.window.since(),
        until: o.window.until(),
        chunk_s: o.chunk.num_seconds(),
        completed: Vec::new(),
    });
    let resumed = cp.completed.len();
    if resumed > 0 {
        progress.stage(&format!(
            "resuming: {resumed} of {} chunks already done",
            chunks.len()
        ));
    }
    let is_done = |cp: &Checkpoint, w: &Window| cp.completed.iter().any(|c| c.since == w.since());
    let todo: Vec<usize> = (0..chunks.len())
        .filter(|&i| !is_done(&cp, &chunks[i]))
        .collect();

    // Stream the logs once for the remaining range; bucket by chunk.
    let mut buckets: Vec<Vec<ProxyError>> = vec![Vec::new(); chunks.len()];
    let mut log_stats = crate::engine::LogStats::default();
    if let (Some(&first), Some(&last)) = (todo.first(), todo.last()) {
        let span =
            Window::new(chunks[first].since(), chunks[last].until()).expect("chunks are non-empty");
        progress.stage(&format!("reading logs for {span}"));
        let batch = engine.read_errors(p, &span)?;
        log_stats = batch.stats;
        for e in batch.errors {
            if let Some(i) = chunks.iter().position(|c| c.contains(e.timestamp)) {
                if todo.binary_search(&i).is_ok() {
                    buckets[i].push(e);
                }
            }
        }
    }

    let mut run = 0;
    for &i in &todo {
        if o.cancel.load(Ordering::SeqCst) {
            save_checkpoint(&cp_path, &cp)?;
            return Err(BatchError::Interrupted {
                done: cp.completed.len(),
                total: chunks.len(),
            });
        }
        let w = chunks[i];
        let errors = std::mem::take(&mut buckets[i]);
        let n_errors = errors.len() as u64;
        progress.stage(&format!(
            "chunk {}/{}: {w} ({n_errors} errors)",
            i + 1,
            chunks.len()
        ));
        let record = if errors.is_empty() {
            ChunkRecord {
                since: w.since(),
                until: w.until(),
                file: None,
                errors: 0,
                incidents: 0,
            }
        } else {
            // Log line counts belong to a read, not to a chunk: chunk
            // reports carry none, so a resumed run writes the same files.
            let a = engine.analyse(p, &w, errors, &crate::engine::LogStats::default(), progress)?;
            let rel = chunk_file_name(&w);
            write_atomic(&o.out_dir.join(&rel), |f| write_json(&a.report, f))?;
            if o.slices {
                write_slices(&a.report, &a.packets, &o.out_dir.join("slices"))?;
            }
            progress.incidents(a.report.incidents.len() as u64);
            ChunkRecord {
                since: w.since(),
                until: w.until(),
                file: Some(rel),
                errors: n_errors,
                incidents: a.report.incidents.len() as u64,
            }
        };
        cp.completed.push(record);
        save_checkpoint(&cp_path, &cp)?;
        run += 1;
        progress.chunk_done(cp.completed.len() as u64, chunks.len() as u64);
    }

    progress.stage("merging the day report");
    let report = merge(&o.out_dir, &cp, &o.window)?;
    let mut written = Vec::new();
    let json = o.out_dir.join("report.json");
    write_atomic(&json, |w| write_json(&report, w))?;
    written.push(json);
    if o.html {
        let html = o.out_dir.join("report.html");
        write_atomic(&html, |w| wiretrail_report::render_html(&report, w))?;
        written.push(html);
    }
    progress.finish();
    Ok(BatchOutcome {
        report,
        chunks_total: chunks.len(),
        chunks_run: run,
        chunks_resumed: resumed,
        written,
        log_stats,
    })
}

/// The day report from the chunk files, in chunk order.
pub fn merge(out_dir: &Path, cp: &Checkpoint, window: &Window) -> Result<Report, BatchError> {
    let mut completed = cp.completed.clone();
    completed.sort_by_key(|c| c.since);
    let mut report = Report {
        schema_version: wiretrail_correlate::SCHEMA_VERSION.to_string(),
        generated_at: Utc::now(),
        since: window.since(),
        until: window.until(),
        clock_offsets: Vec::new(),
        incidents: Vec::new(),
        summary: Summary::default(),
        inputs: InputStats::default(),
    };
    for c in &completed {
        let Some(rel) = &c.file else { continue };
        let path = out_dir.join(rel);
        let text = std::fs::read_to_string(&path).map_err(|e| BatchError::Checkpoint {
            path: path.clone(),
            why: format!("chunk report listed in the checkpoint cannot be read: {e}"),
        })?;
        let r: Report = serde_json::from_str(&text).map_err(|e| BatchError::Checkpoint {
            path: path.clone(),
            why: format!("chunk report is not a report: {e}"),
        })?;
        merge_offsets(&mut report.clock_offsets, r.clock_offsets);
        add_summary(&mut report.summary, &r.summary);
        add_inputs(&mut report.inputs, &r.inputs);
        report.incidents.extend(r.incidents);
    }
    Ok(report)
}

/// Keep, per node, the offset resting on the most samples.
fn merge_offsets(into: &mut Vec<ClockOffset>, more: Vec<ClockOffset>) {
    for o in more {
        match into.iter_mut().find(|x| x.node == o.node) {
            Some(x) if o.samples > x.samples => *x = o,
            Some(_) => {}
            None => into.push(o),
        }
    }
}

fn add_summary(into: &mut Summary, s: &Summary) {
    into.incidents += s.incidents;
    into.errors += s.errors;
    for (dst, src) in [
        (&mut into.by_cause, &s.by_cause),
        (&mut into.stray_nodes, &s.stray_nodes),
        (&mut into.owner_nodes, &s.owner_nodes),
        (&mut into.by_hour, &s.by_hour),
    ] {
        for (k, v) in src {
            *dst.entry(k.clone()).or_default() += v;
        }
    }
    for p in &s.patterns {
        if !into.patterns.contains(p) {
            into.patterns.push(p.clone());
        }
    }
}

fn add_inputs(into: &mut InputStats, s: &InputStats) {
    into.log_lines += s.log_lines;
    into.proxy_errors += s.proxy_errors;
    into.unparsed_lines += s.unparsed_lines;
    into.capture_files_read += s.capture_files_read;
    into.capture_bytes_read += s.capture_bytes_read;
    into.packets_matched += s.packets_matched;
    into.problems.extend(s.problems.iter().cloned());
}

/// The day summary for the terminal: by cause, by node, by hour.
pub fn write_day_summary(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &r.summary;
    writeln!(
        out,
        "wiretrail batch {} .. {}",
        r.since.to_rfc3339(),
        r.until.to_rfc3339()
    )?;
    writeln!(
        out,
        "  {} incidents, {} proxy errors",
        r.incidents.len(),
        s.errors
    )?;
    let table = |out: &mut dyn Write,
                 title: &str,
                 m: &std::collections::BTreeMap<String, u64>|
     -> std::io::Result<()> {
        if m.is_empty() {
            return Ok(());
        }
        writeln!(out, "  {title}:")?;
        let mut rows: Vec<(&String, &u64)> = m.iter().collect();
        if title != "by hour" {
            rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        }
        let max = rows.iter().map(|r| *r.1).max().unwrap_or(1).max(1);
        for (k, v) in rows {
            let bar = "#".repeat(((*v as f64 / max as f64) * 30.0).ceil() as usize);
            writeln!(out, "    {k:<20} {v:>6}  {bar}")?;
        }
        Ok(())
    };
    table(out, "by cause", &s.by_cause)?;
    table(out, "stray node", &s.stray_nodes)?;
    table(out, "owner node", &s.owner_nodes)?;
    table(out, "by hour", &s.by_hour)?;
    for p in &s.patterns {
        writeln!(out, "  pattern: {p}")?;
    }
    Ok(())
}
