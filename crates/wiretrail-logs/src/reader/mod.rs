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
mod split;

pub use input::NO_MMAP_ENV;
pub use split::LOOKBACK;

use crate::config::ParseConfig;
use crate::record::{ErrorClass, ProxyError, Source};
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
    /// Proxy error lines that could not be read.
    pub unparsed: u64,
    /// The first few of those, as `file:line: why`.
    pub samples: Vec<String>,
    /// Inputs opened (files, or stdin).
    pub files: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Inputs that failed while being read (`file: why`); the rest of that
    /// input is lost, the other inputs are still read.
    pub failures: Vec<String>,
    /// Files that grew while read (a live log): what was read and what was
    /// left for the next run. Not failures.
    pub growing: Vec<String>,
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
        Ok(Self::spawn(expand(paths)?.into(), cfg, opts))
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
                    self.stats.failures.push(format!(
                        "internal error: {} part(s) of the input were lost",
                        seq - self.next_seq
                    ));
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
                self.stats
                    .failures
                    .push("internal error: a log reader thread panicked".into());
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
            Msg::Failure(f) => st.failures.push(f),
            Msg::Unterminated { info } => st.growing.push(format!(
                "{}: the last line has no newline and the file was written less than \
                 {} s ago: it was read as it is, but may be unfinished",
                info.name,
                produce::FRESH.as_secs()
            )),
            Msg::Growing {
                info,
                read,
                size,
                now,
            } => st.growing.push(if read < size {
                format!(
                    "{}: still being written ({size} bytes when opened, {now} now): read \
                     {read} bytes; the unfinished last line and what follows are left for \
                     the next read",
                    info.name
                )
            } else {
                format!(
                    "{}: still being written ({size} bytes when opened, {now} now): the \
                     {} bytes appended meanwhile are left for the next read",
                    info.name,
                    now - size
                )
            }),
            Msg::Overlong { info, bytes } => {
                st.lines += 1;
                st.bytes += bytes;
                st.unparsed += 1;
                if st.samples.len() < MAX_SAMPLES {
                    st.samples.push(format!(
                        "{}:{}: line longer than {MAX_LINE} bytes, skipped",
                        info.name,
                        self.base + 1
                    ));
                }
                self.base += 1;
            }
            Msg::Chunk { info, out } => {
                st.lines += out.lines;
                st.bytes += out.bytes;
                st.unparsed += out.unparsed;
                for (no, why) in out.samples {
                    if st.samples.len() < MAX_SAMPLES {
                        st.samples
                            .push(format!("{}:{}: {why}", info.name, self.base + no));
                    }
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
