//! `batch`: a whole day (or any range), resumable.
//!
//! The logs are streamed once for the whole range and their errors bucketed
//! into time chunks (`batch.chunk`, 1 h by default). Each chunk is one
//! analysis: all of its incidents are planned together, so the extractor
//! reads each capture file once for every query of the chunk (a file that
//! straddles a chunk boundary is read once per chunk, in the part each
//! needs). Chunks without errors read no captures at all.
//!
//! Incidents across chunk boundaries: the correlator groups the errors of
//! one proxy and backend whose consecutive stamps are at most
//! `incident_gap` apart. Before bucketing, the errors of the whole range
//! are cut into *bursts*: maximal runs in which each error is at most
//! `incident_gap` after the previous one (of any proxy or backend). Every
//! incident lies inside one burst, and a burst goes whole to the chunk in
//! which it starts: a chunk whose last errors are within `incident_gap` of
//! the next ones carries them (and their plan) over its end instead of
//! closing the incident, so the chunks group exactly as one investigation
//! over the whole range would (same incident ids and members). The chunk
//! records how far it carried (`carried_until`); a resumed run drops the
//! errors up to there, which the chunk that carried them already reported.
//! A chunk whose burst was carried into is usually left with no errors of
//! its own and writes no file.
//!
//! Resumability: a chunk's report is written atomically to
//! `<out_dir>/chunks/<start>.json` *before* the checkpoint records it, and
//! chunk files have deterministic names, so a run killed at any point and
//! started again redoes at most the chunk it was in and never duplicates
//! output. The checkpoint (default `<out_dir>/checkpoint.json`) is an
//! append-only journal, one JSON line per finished chunk (see
//! [`journal`]): O(1) per chunk, fsync'd for chunks with output, and a
//! torn last line from a kill is dropped with a warning and its chunk
//! redone. It remembers the range and settings it belongs to; a different
//! run refuses to reuse it (use `--fresh`). Format change: the format-1
//! checkpoint (one pretty JSON object rewritten after every chunk) is not
//! read; such a run must be started over with `--fresh`.
//!
//! Files are written through `.NAME.tmp-PID` temporaries and a rename; a
//! run killed mid-write (`kill -9`, a power loss) leaves its temporary
//! behind, and the next run removes those of processes that no longer run
//! from the output, chunk, slice and checkpoint directories before it starts.
//!
//! Memory: the log read holds the records of every error of the range to
//! do (bursts are cut over all of them); each chunk analyses at most
//! `correlate.max_errors` of them (the earliest), the rest are named in a
//! `limit` problem of that chunk's report.
//!
//! At the end the chunk reports are merged into the day report
//! (`report.json`, `report.html`) and a day summary (by cause, node, hour).

pub mod journal;

use crate::config::Pipeline;
use crate::engine::{cap_errors, Engine, EngineError, Keep, LogStats, Rendering};
use crate::files::{remove_stale_temporaries, write_atomic, WriteError};
use crate::model::{ProxyError, Report};
use crate::outputs::{publish, write_slices, Publish};
use crate::progress::Progress;
use crate::time::{Duration, Timestamp, Window};
use chrono::{DateTime, Utc};
use journal::{Durability, JournalError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use journal::{Checkpoint, ChunkRecord, Start};

/// How to run one batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub window: Window,
    pub chunk: Duration,
    pub out_dir: PathBuf,
    /// Default `<out_dir>/checkpoint.json`.
    pub checkpoint: Option<PathBuf>,
    /// Resume from the checkpoint, or start over (`--fresh`).
    pub start: Start,
    /// Write pcapng slices under `<out_dir>/slices/`.
    pub slices: bool,
    /// Write `<out_dir>/report.html`.
    pub html: bool,
    /// Publish the day report to the pipeline's Elasticsearch output.
    pub publish: Publish,
    /// Set by a signal handler: stop after the current chunk.
    pub cancel: Arc<AtomicBool>,
}

impl BatchOptions {
    /// A run over `window` as the pipeline sets it up: its chunk size,
    /// output directory and checkpoint, pcapng slices when it writes them
    /// (`outputs.pcap_dir`), the HTML day report, publishing as configured,
    /// resuming a checkpoint of the same run.
    pub fn for_pipeline(p: &Pipeline, window: Window) -> BatchOptions {
        BatchOptions {
            window,
            chunk: p.batch.chunk,
            out_dir: p.batch.out_dir.clone(),
            checkpoint: p.batch.checkpoint.clone(),
            start: Start::Resume,
            slices: p.outputs.pcap_dir.is_some(),
            html: true,
            publish: Publish::AsConfigured,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Write into `dir` instead, the checkpoint with the rest
    /// (`<dir>/checkpoint.json`): a pipeline's checkpoint belongs to its
    /// own output directory.
    pub fn with_out_dir(mut self, dir: PathBuf) -> BatchOptions {
        self.out_dir = dir;
        self.checkpoint = None;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A chunk report the checkpoint lists cannot be used for the day report.
    #[error("chunk report {}: {what}", path.display())]
    ChunkReport {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Everything was written; only publishing failed.
    #[error("the day report is written ({}), but publishing it failed", report.display())]
    Publish {
        report: PathBuf,
        #[source]
        source: EngineError,
    },
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
    pub log_stats: LogStats,
    /// Temporary files of a killed run removed before this one started.
    pub removed_temporaries: Vec<PathBuf>,
    /// Publishing result line, when an Elasticsearch output is configured.
    pub published: Option<String>,
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
        o.chunk.as_secs(),
        p.name
    );
    let h = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x}")
}

fn chunk_file_name(w: &Window) -> String {
    format!(
        "chunks/{}.json",
        w.since().to_utc().format("%Y%m%dT%H%M%SZ")
    )
}

/// Cut time-sorted `errors` into bursts (each error at most `gap` after the
/// previous one) and give each burst whole to the chunk its first error
/// falls in. Returns, per chunk, its errors and the stamp of the last error
/// it carried past its end.
fn bucket_bursts(
    chunks: &[Window],
    errors: Vec<ProxyError>,
    gap: Duration,
) -> Vec<(Vec<ProxyError>, Option<Timestamp>)> {
    let mut buckets: Vec<(Vec<ProxyError>, Option<Timestamp>)> =
        vec![(Vec::new(), None); chunks.len()];
    let mut burst: Option<(usize, Timestamp)> = None;
    for e in errors {
        // Read inside the range, so always representable.
        let Some(t) = Timestamp::from_utc(e.timestamp) else {
            burst = None;
            continue;
        };
        let owner = match burst {
            Some((owner, last)) if t.duration_since(last).is_some_and(|d| d <= gap) => Some(owner),
            _ => {
                let i = chunks.partition_point(|c| c.until() <= t);
                (i < chunks.len() && chunks[i].contains(e.timestamp)).then_some(i)
            }
        };
        let Some(owner) = owner else {
            burst = None;
            continue;
        };
        if t >= chunks[owner].until() {
            buckets[owner].1 = Some(t);
        }
        buckets[owner].0.push(e);
        burst = Some((owner, t));
    }
    buckets
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
    let chunks = o.window.chunks(o.chunk);
    let header = journal::JournalHeader {
        format: journal::FORMAT.into(),
        version: journal::VERSION,
        fingerprint: fingerprint(p, o),
        since: o.window.since().to_utc(),
        until: o.window.until().to_utc(),
        chunk_s: o.chunk.as_secs() as i64,
    };
    // A run killed with `kill -9` (or a power loss) can leave the
    // temporaries of atomic writes behind; nothing refers to them.
    let mut removed_temporaries = Vec::new();
    let mut dirs = vec![
        o.out_dir.clone(),
        o.out_dir.join("chunks"),
        o.out_dir.join("slices"),
    ];
    if let Some(d) = cp_path.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
        dirs.push(d.to_path_buf());
    }
    for d in &dirs {
        removed_temporaries.extend(remove_stale_temporaries(d));
    }
    let opened = journal::Journal::open(&cp_path, &header, o.start)?;
    if let Some(w) = &opened.warning {
        tracing::warn!("{w}");
        progress.stage(&format!("warning: {w}"));
    }
    let (mut journal, mut cp) = (opened.journal, opened.checkpoint);
    let resumed = cp.completed.len();
    if resumed > 0 {
        progress.stage(&format!(
            "resuming: {resumed} of {} chunks already done",
            chunks.len()
        ));
    }
    let done: std::collections::BTreeSet<DateTime<Utc>> =
        cp.completed.iter().map(|c| c.since).collect();
    let keep = Keep::from_limit(p.correlate.max_errors);
    // Errors up to here were carried into a chunk already done.
    let carried_done = cp.completed.iter().filter_map(|c| c.carried_until).max();
    let todo: Vec<usize> = (0..chunks.len())
        .filter(|&i| !done.contains(&chunks[i].since().to_utc()))
        .collect();
    let gap = engine.incident_gap(p);

    // Stream the logs once, from the first chunk to do to the end of the
    // range (bursts are cut over everything after it, as an uninterrupted
    // run cuts them); bucket the bursts by chunk.
    let mut buckets = vec![(Vec::new(), None); chunks.len()];
    let mut log_stats = LogStats::default();
    if let Some(&first) = todo.first() {
        let span =
            Window::new(chunks[first].since(), o.window.until()).expect("chunks are non-empty");
        progress.stage(&format!("reading logs for {span}"));
        // Every error of the range: bursts are cut over all of them, and
        // the limit applies per chunk.
        let batch = engine.read_errors(p, &span, Keep::All)?;
        log_stats = batch.stats;
        let mut errors = batch.errors;
        errors.retain(|e| carried_done.is_none_or(|c| e.timestamp > c));
        errors.sort_by_key(|e| e.timestamp);
        buckets = bucket_bursts(&chunks, errors, gap);
    }

    let mut run = 0;
    for &i in &todo {
        if o.cancel.load(Ordering::SeqCst) {
            journal.sync()?;
            return Err(BatchError::Interrupted {
                done: cp.completed.len(),
                total: chunks.len(),
            });
        }
        let w = chunks[i];
        let (errors, carried_until) = std::mem::take(&mut buckets[i]);
        let n_errors = errors.len() as u64;
        let carried = match carried_until {
            Some(t) => format!(", carried on to {t}"),
            None => String::new(),
        };
        progress.stage(&format!(
            "chunk {}/{}: {w} ({n_errors} errors{carried})",
            i + 1,
            chunks.len()
        ));
        let record = if errors.is_empty() {
            ChunkRecord {
                since: w.since().to_utc(),
                until: w.until().to_utc(),
                file: None,
                errors: 0,
                incidents: 0,
                carried_until: None,
            }
        } else {
            // The analysis covers the carried errors too.
            let aw = match carried_until.and_then(|t| t.checked_add(Duration::from_nanos(1))) {
                Some(end) => Window::new(w.since(), end).expect("carried past the chunk's end"),
                None => w,
            };
            // Log line counts belong to a read, not to a chunk: chunk
            // reports carry none, so a resumed run writes the same files.
            // The limit does: it is the chunk's.
            let (errors, limited) = cap_errors(errors, keep, &aw);
            let mut a = engine.analyse(p, &aw, errors, &LogStats::default(), progress)?;
            a.report.inputs.problems.extend(limited);
            let rel = chunk_file_name(&w);
            write_atomic(&o.out_dir.join(&rel), |f| {
                engine.render(&a.report, Rendering::Json, f)
            })?;
            if o.slices {
                write_slices(engine, &a.report, &a.packets, &o.out_dir.join("slices"))?;
            }
            progress.incidents(a.report.incidents.len() as u64);
            ChunkRecord {
                since: w.since().to_utc(),
                until: w.until().to_utc(),
                file: Some(rel),
                errors: n_errors,
                incidents: a.report.incidents.len() as u64,
                carried_until: carried_until.map(Timestamp::to_utc),
            }
        };
        let durability = match record.file {
            Some(_) => Durability::Synced,
            None => Durability::Buffered,
        };
        journal.append(&record, durability)?;
        cp.completed.push(record);
        run += 1;
        progress.chunk_done(cp.completed.len() as u64, chunks.len() as u64);
    }
    journal.sync()?;

    progress.stage("merging the day report");
    let report = merge(engine, &o.out_dir, &cp, &o.window)?;
    let mut written = Vec::new();
    let json = o.out_dir.join("report.json");
    write_atomic(&json, |w| engine.render(&report, Rendering::Json, w))?;
    written.push(json.clone());
    if o.html {
        let html = o.out_dir.join("report.html");
        write_atomic(&html, |w| engine.render(&report, Rendering::Html, w))?;
        written.push(html);
    }
    progress.finish();
    let published =
        publish(engine, p, &report, o.publish).map_err(|source| BatchError::Publish {
            report: json,
            source,
        })?;
    Ok(BatchOutcome {
        report,
        chunks_total: chunks.len(),
        chunks_run: run,
        chunks_resumed: resumed,
        written,
        log_stats,
        removed_temporaries,
        published,
    })
}

/// The day report from the chunk files, in chunk order: merged by the
/// engine (incidents concatenated, the summary recomputed from them).
pub fn merge(
    engine: &dyn Engine,
    out_dir: &Path,
    cp: &Checkpoint,
    window: &Window,
) -> Result<Report, BatchError> {
    let mut completed = cp.completed.clone();
    completed.sort_by_key(|c| c.since);
    let mut parts = Vec::new();
    for c in &completed {
        let Some(rel) = &c.file else { continue };
        let path = out_dir.join(rel);
        let text = std::fs::read_to_string(&path).map_err(|e| BatchError::ChunkReport {
            path: path.clone(),
            what: "listed in the checkpoint, it cannot be read",
            source: Box::new(e),
        })?;
        let r: Report = serde_json::from_str(&text).map_err(|e| BatchError::ChunkReport {
            path: path.clone(),
            what: "it is not a report",
            source: Box::new(e),
        })?;
        parts.push(r);
    }
    Ok(engine.merge(parts, window))
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
    let by_cause: std::collections::BTreeMap<String, u64> = s
        .by_cause
        .iter()
        .map(|(c, n)| (c.as_str().to_owned(), *n))
        .collect();
    table(out, "by cause", &by_cause)?;
    table(out, "stray node", &s.stray_nodes)?;
    table(out, "owner node", &s.owner_nodes)?;
    table(out, "by hour", &s.by_hour)?;
    for p in &s.patterns {
        writeln!(out, "  pattern: {p}")?;
    }
    Ok(())
}
