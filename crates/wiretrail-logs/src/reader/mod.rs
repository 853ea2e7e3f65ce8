//! Streaming readers over files, directories and stdin.
//!
//! A producer thread opens the inputs in order and cuts them into chunks of
//! whole lines (memory-mapped windows of plain files, buffers of streams);
//! worker threads, one per core, scan and parse chunks in parallel (ripgrep's
//! trick inside each: a SIMD substring search finds the candidate lines, only
//! those are parsed, every other line is merely counted); the iterator puts
//! the results back in input order and numbers the lines. At most a few
//! chunks exist at once, so memory stays bounded however large the input.
//! Gzip and zstd are recognised by their magic bytes.
//!
//! The output does not depend on the number of threads or the chunk size:
//! chunks never cut a line, nor a line a container runtime split in parts
//! (CRI `P`, Docker json-file), as far as [`LOOKBACK`] bytes can tell.

mod input;
mod produce;
mod scan;
mod search;
mod split;

pub use input::NO_MMAP_ENV;
pub use split::LOOKBACK;

use crate::config::ParseConfig;
use crate::record::{ErrorClass, ProxyError, Source};
use crate::render;
use crate::render::Format;
use input::{expand, Input};
use produce::{work, Msg, Producer};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Counts over everything read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    /// Lines read (every line, proxy error or not).
    pub lines: u64,
    pub proxy_errors: u64,
    pub by_class: BTreeMap<ErrorClass, u64>,
    /// (proxy address without its ephemeral port, backend address as
    /// printed) → count; `-` where the line had no such address. In JSON
    /// the key is `"proxy -> backend"`.
    #[serde(serialize_with = "pairs_as_strings")]
    pub by_pair: BTreeMap<(String, String), u64>,
    /// Proxy error lines that could not be read (refused stamps included).
    pub unparsed: u64,
    /// Records whose line carried two stamps that cannot be the same moment
    /// in any zone (a bogus journald `__REALTIME_TIMESTAMP` beside Go's own
    /// stamp): the record has the consistent one.
    pub stamp_conflicts: u64,
    /// Inputs opened (files, or stdin).
    pub files: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// What the reader has to say, in input order: every input that failed,
    /// grew, or was skipped, and the first [`MAX_SAMPLES`] unparsed lines
    /// and stamp conflicts.
    pub problems: Vec<ReadProblem>,
}

impl ReadStats {
    /// Whether an input (or part of it) could not be read.
    pub fn failed(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == ReadProblemKind::Failed)
    }

    fn sample(&mut self, kind: ReadProblemKind, path: &str, line: u64, message: String) {
        if self.problems.iter().filter(|p| p.kind == kind).count() < MAX_SAMPLES {
            self.problems.push(ReadProblem {
                kind,
                path: path.to_owned(),
                line: Some(line),
                message,
            });
        }
    }

    fn input(&mut self, kind: ReadProblemKind, path: &str, message: String) {
        self.problems.push(ReadProblem {
            kind,
            path: path.to_owned(),
            line: None,
            message,
        });
    }
}

/// Something the reader could not do, or did differently than asked: what
/// a caller turns into a report's problem (kind, file, line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReadProblem {
    pub kind: ReadProblemKind,
    /// The input as named (`<stdin>` for stdin).
    pub path: String,
    /// The line (1-based) when the problem is one line's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What happened and what it means, in one sentence.
    pub message: String,
}

impl std::fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// What kind of problem a [`ReadProblem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadProblemKind {
    /// A line holding the phrase that could not be read (bad JSON, no or an
    /// impossible stamp, a stamp outside 1677–2262, longer than
    /// [`MAX_LINE`]): counted in [`ReadStats::unparsed`].
    Unparsed,
    /// A line whose stamps disagree (see [`ReadStats::stamp_conflicts`]).
    StampConflict,
    /// An input could not be opened or read on: the rest of it is lost.
    Failed,
    /// A file was being written while read: what was left for the next read
    /// (or a last line without newline that may be unfinished).
    Growing,
    /// A path not read: the same file or directory as one already read (a
    /// symbolic link loop, a file named twice).
    Skipped,
}

fn pairs_as_strings<S: serde::Serializer>(
    m: &BTreeMap<(String, String), u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|((a, b), n)| (format!("{a} -> {b}"), n)))
}

/// How many malformed-line samples are kept.
pub const MAX_SAMPLES: usize = 10;
/// Lines longer than this are skipped (counted as unparsed, with a sample)
/// so memory stays bounded.
pub const MAX_LINE: usize = 16 << 20;
/// Set to the number of worker threads (default: one per core).
pub const THREADS_ENV: &str = "WIRETRAIL_LOG_THREADS";

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{}: cannot open: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{}: cannot list directory: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("{}: read failed after {offset} bytes: {source}", path.display())]
    Read {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
}

impl LogError {
    /// The message without the path (which a [`ReadProblem`] holds apart).
    pub(crate) fn reason(&self) -> String {
        match self {
            LogError::Open { source, .. } => format!("cannot open: {source}"),
            LogError::Dir { source, .. } => format!("cannot list directory: {source}"),
            LogError::Read { offset, source, .. } => {
                format!("read failed after {offset} bytes: {source}")
            }
        }
    }
}

/// How a [`LogReader`] splits its work. The output is the same whatever the
/// values; they change only speed and memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Worker threads scanning and parsing chunks.
    pub threads: usize,
    /// Bytes per chunk (a memory-mapped window, or a stream buffer); at most
    /// `MAX_LINE / 2`.
    pub chunk_bytes: usize,
}

impl Default for ReadOptions {
    /// One worker per core up to 8 (by then memory bandwidth, not CPU, is the
    /// limit; [`THREADS_ENV`] overrides), 8 MiB chunks (the largest allowed:
    /// a chunk may not exceed half of [`MAX_LINE`], so that only its first
    /// line can be longer than that).
    fn default() -> Self {
        let threads = std::env::var(THREADS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)));
        ReadOptions {
            threads: threads.clamp(1, 64),
            chunk_bytes: MAX_LINE / 2,
        }
    }
}

/// Proxy errors from files, directories (recursively, sorted by name) and
/// stdin, in input order.
pub struct LogReader {
    results: Option<Receiver<(u64, Msg)>>,
    /// One permit per message in flight (see `produce`).
    permits: Option<Receiver<()>>,
    /// Results that arrived before their turn.
    waiting: BTreeMap<u64, Msg>,
    next_seq: u64,
    /// The current chunk's records: the block being handed out, the rest.
    out: std::vec::IntoIter<ProxyError>,
    blocks: std::vec::IntoIter<Vec<ProxyError>>,
    /// Lines of the current input before the next chunk.
    base: u64,
    threads: Vec<JoinHandle<()>>,
    stats: ReadStats,
    /// [`Rendered`] only: the last chunk's rendered records, not yet taken.
    rendered: Option<RenderedChunk>,
}

/// One chunk's rendered records and the lines of its input before it.
struct RenderedChunk {
    bytes: Vec<u8>,
    marks: Vec<(usize, Option<u64>)>,
    base: u64,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    /// Read `paths` in order; directories are walked recursively in name
    /// order; `-` is stdin. Every path must exist now.
    pub fn open(paths: &[PathBuf], cfg: ParseConfig) -> Result<Self, LogError> {
        Self::open_with(paths, cfg, ReadOptions::default())
    }

    /// [`LogReader::open`] with explicit threads and chunk size.
    pub fn open_with(
        paths: &[PathBuf],
        cfg: ParseConfig,
        opts: ReadOptions,
    ) -> Result<Self, LogError> {
        let (inputs, problems) = expand(paths)?;
        let mut reader = Self::spawn(inputs.into(), cfg, opts);
        reader.stats.problems = problems;
        Ok(reader)
    }

    /// Read stdin; year-less stamps are placed before `cfg.reference`.
    pub fn stdin(cfg: ParseConfig) -> Self {
        Self::spawn(VecDeque::from([Input::Stdin]), cfg, ReadOptions::default())
    }

    /// Read any byte stream (tests, decompressed bodies); `name` is used in
    /// sources and samples.
    pub fn from_reader(name: &str, rd: Box<dyn Read + Send>, cfg: ParseConfig) -> Self {
        Self::from_reader_with(name, rd, cfg, ReadOptions::default())
    }

    /// [`LogReader::from_reader`] with explicit threads and chunk size.
    pub fn from_reader_with(
        name: &str,
        rd: Box<dyn Read + Send>,
        cfg: ParseConfig,
        opts: ReadOptions,
    ) -> Self {
        let input = Input::Reader(name.to_owned(), rd);
        Self::spawn(VecDeque::from([input]), cfg, opts)
    }

    fn spawn(inputs: VecDeque<Input>, cfg: ParseConfig, opts: ReadOptions) -> Self {
        Self::spawn_rendering(inputs, cfg, opts, None)
    }

    fn spawn_rendering(
        inputs: VecDeque<Input>,
        cfg: ParseConfig,
        opts: ReadOptions,
        render: Option<Format>,
    ) -> Self {
        let threads = opts.threads.max(1);
        let (results_tx, results) = std::sync::mpsc::channel();
        let (tasks_tx, tasks) = std::sync::mpsc::channel();
        let (permits_tx, permits) = std::sync::mpsc::sync_channel(2 * threads + 2);
        let tasks = Arc::new(Mutex::new(tasks));
        let mut handles = Vec::with_capacity(threads + 1);
        for i in 0..threads {
            let (tasks, results) = (Arc::clone(&tasks), results_tx.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("wiretrail-logs-{i}"))
                    .spawn(move || work(tasks, results))
                    .expect("cannot start a log worker thread"),
            );
        }
        let producer = Producer {
            inputs,
            cfg,
            render,
            // Only a chunk's first line can then be longer than MAX_LINE.
            chunk: opts.chunk_bytes.clamp(1, MAX_LINE / 2),
            seq: 0,
            tasks: tasks_tx,
            results: results_tx,
            permits: permits_tx,
        };
        handles.push(
            std::thread::Builder::new()
                .name("wiretrail-logs-read".into())
                .spawn(move || producer.run())
                .expect("cannot start the log reader thread"),
        );
        LogReader {
            results: Some(results),
            permits: Some(permits),
            waiting: BTreeMap::new(),
            next_seq: 0,
            out: Vec::new().into_iter(),
            blocks: Vec::new().into_iter(),
            base: 0,
            threads: handles,
            stats: ReadStats::default(),
            rendered: None,
        }
    }

    /// Counts over everything read so far (complete once the iterator has
    /// returned `None`).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Whether [`Iterator::next`] has a record at hand, or the next chunk's
    /// results have arrived. A caller printing records flushes its output when
    /// this is false: following a live stream, lines then show as they come.
    pub fn ready(&mut self) -> bool {
        if self.out.len() > 0 || self.blocks.len() > 0 {
            return true;
        }
        if let Some(rx) = &self.results {
            while let Ok((seq, m)) = rx.try_recv() {
                self.waiting.insert(seq, m);
            }
        }
        self.waiting.contains_key(&self.next_seq)
    }

    /// The next message in sequence; `None` when every thread is done.
    fn next_msg(&mut self) -> Option<Msg> {
        loop {
            if let Some(m) = self.waiting.remove(&self.next_seq) {
                return Some(self.took(m));
            }
            match self.results.as_ref()?.recv() {
                Ok((seq, m)) if seq == self.next_seq => return Some(self.took(m)),
                Ok((seq, m)) => {
                    self.waiting.insert(seq, m);
                }
                Err(_) => {
                    // Every sender is gone. Anything still waiting means a
                    // message was never sent (a thread died): say so, go on.
                    let (&seq, _) = self.waiting.first_key_value()?;
                    self.stats.input(
                        ReadProblemKind::Failed,
                        "",
                        format!(
                            "internal error: {} part(s) of the input were lost",
                            seq - self.next_seq
                        ),
                    );
                    self.next_seq = seq;
                }
            }
        }
    }

    fn took(&mut self, m: Msg) -> Msg {
        self.next_seq += 1;
        if let Some(p) = &self.permits {
            let _ = p.try_recv();
        }
        m
    }

    fn finish(&mut self) {
        self.results = None;
        self.permits = None;
        for h in self.threads.drain(..) {
            if h.join().is_err() {
                self.stats.input(
                    ReadProblemKind::Failed,
                    "",
                    "internal error: a log reader thread panicked".into(),
                );
            }
        }
    }

    fn absorb(&mut self, m: Msg) {
        let st = &mut self.stats;
        match m {
            Msg::Opened => {
                st.files += 1;
                self.base = 0;
            }
            Msg::Failure { path, message } => st.input(ReadProblemKind::Failed, &path, message),
            Msg::Unterminated { info } => st.input(
                ReadProblemKind::Growing,
                &info.name,
                format!(
                    "the last line has no newline and the file was written less than \
                     {} s ago: it was read as it is, but may be unfinished",
                    produce::FRESH.as_secs()
                ),
            ),
            Msg::Growing {
                info,
                read,
                size,
                now,
            } => st.input(
                ReadProblemKind::Growing,
                &info.name,
                if read < size {
                    format!(
                        "still being written ({size} bytes when opened, {now} now): read \
                         {read} bytes; the unfinished last line and what follows are left for \
                         the next read"
                    )
                } else {
                    format!(
                        "still being written ({size} bytes when opened, {now} now): the \
                         {} bytes appended meanwhile are left for the next read",
                        now - size
                    )
                },
            ),
            Msg::Overlong { info, bytes } => {
                st.lines += 1;
                st.bytes += bytes;
                st.unparsed += 1;
                st.sample(
                    ReadProblemKind::Unparsed,
                    &info.name,
                    self.base + 1,
                    format!("line longer than {MAX_LINE} bytes, skipped"),
                );
                self.base += 1;
            }
            Msg::Chunk { info, out } => {
                let out = *out;
                st.lines += out.lines;
                st.bytes += out.bytes;
                st.unparsed += out.unparsed;
                st.stamp_conflicts += out.stamp_conflicts;
                for (kind, no, why) in out.samples {
                    st.sample(kind, &info.name, self.base + no, why);
                }
                for (k, n) in out.by_class.iter().enumerate() {
                    if *n > 0 {
                        *st.by_class.entry(ErrorClass::ALL[k]).or_default() += n;
                    }
                }
                for (proxy, backends) in out.by_pair {
                    for (backend, n) in backends {
                        *st.by_pair.entry((proxy.clone(), backend)).or_default() += n;
                    }
                }
                st.proxy_errors += out.errors;
                let mut records = out.records;
                if self.base > 0 {
                    for e in records.iter_mut().flatten() {
                        if let Source::File { line, .. } | Source::Stdin { line } = &mut e.source {
                            *line += self.base;
                        }
                    }
                }
                if !out.marks.is_empty() {
                    self.rendered = Some(RenderedChunk {
                        bytes: out.rendered,
                        marks: out.marks,
                        base: self.base,
                    });
                }
                self.base += out.lines;
                self.blocks = records.into_iter();
            }
        }
    }
}

impl Iterator for LogReader {
    type Item = ProxyError;

    fn next(&mut self) -> Option<ProxyError> {
        loop {
            if let Some(e) = self.out.next() {
                return Some(e);
            }
            if let Some(block) = self.blocks.next() {
                self.out = block.into_iter();
                continue;
            }
            match self.next_msg() {
                Some(m) => self.absorb(m),
                None => {
                    self.finish();
                    return None;
                }
            }
        }
    }
}

/// Proxy errors already printed: the reader's workers render each record
/// ([`crate::render`]) as they parse it, so the caller only copies bytes in
/// input order; what `wiretrail logs` uses. Same inputs, order, line numbers
/// and [`ReadStats`] as [`LogReader`]; the records themselves are not kept.
pub struct Rendered {
    reader: LogReader,
    format: Format,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("format", &self.format)
            .field("stats", &self.reader.stats)
            .finish_non_exhaustive()
    }
}

impl Rendered {
    /// [`LogReader::open_with`], rendering.
    pub fn open(
        paths: &[PathBuf],
        cfg: ParseConfig,
        opts: ReadOptions,
        format: Format,
    ) -> Result<Self, LogError> {
        let (inputs, problems) = expand(paths)?;
        let mut reader = LogReader::spawn_rendering(inputs.into(), cfg, opts, Some(format));
        reader.stats.problems = problems;
        Ok(Rendered { reader, format })
    }

    /// [`LogReader::stdin`], rendering.
    pub fn stdin(cfg: ParseConfig, format: Format) -> Self {
        let inputs = VecDeque::from([Input::Stdin]);
        let reader = LogReader::spawn_rendering(inputs, cfg, ReadOptions::default(), Some(format));
        Rendered { reader, format }
    }

    /// [`LogReader::from_reader_with`], rendering.
    pub fn from_reader(
        name: &str,
        rd: Box<dyn Read + Send>,
        cfg: ParseConfig,
        opts: ReadOptions,
        format: Format,
    ) -> Self {
        let inputs = VecDeque::from([Input::Reader(name.to_owned(), rd)]);
        let reader = LogReader::spawn_rendering(inputs, cfg, opts, Some(format));
        Rendered { reader, format }
    }

    /// Append the next records (those of one chunk: one or more), rendered,
    /// to `out`; how many. `None` once everything was read.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        loop {
            if let Some(c) = self.reader.rendered.take() {
                let mut from = 0;
                for &(end, line) in &c.marks {
                    out.extend_from_slice(&c.bytes[from..end]);
                    if let Some(line) = line {
                        render::tail(out, c.base + line, self.format);
                    }
                    from = end;
                }
                return Some(c.marks.len() as u64);
            }
            match self.reader.next_msg() {
                Some(m) => self.reader.absorb(m),
                None => {
                    self.reader.finish();
                    return None;
                }
            }
        }
    }

    /// Whether [`Rendered::next_into`] has records at hand without waiting
    /// (see [`LogReader::ready`]): a caller flushes its output when not.
    pub fn ready(&mut self) -> bool {
        self.reader.rendered.is_some() || self.reader.ready()
    }

    /// Counts over everything read so far (complete once
    /// [`Rendered::next_into`] has returned `None`).
    pub fn stats(&self) -> &ReadStats {
        &self.reader.stats
    }
}

/// `10.1.1.5:51392` → `10.1.1.5`, `[fd00::5]:46572` → `[fd00::5]`.
pub fn strip_port(addr: &str) -> &str {
    match addr.rfind(':') {
        Some(p)
            if addr[p + 1..].bytes().all(|c| c.is_ascii_digit())
                && (addr.starts_with('[') || !addr[..p].contains(':')) =>
        {
            &addr[..p]
        }
        _ => addr,
    }
}
