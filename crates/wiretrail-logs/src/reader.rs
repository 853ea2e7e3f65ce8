//! Streaming readers over files, directories and stdin.
//!
//! ripgrep's trick: read big buffers, find candidate lines with a SIMD
//! substring search (`memchr::memmem`) and fully parse only those; every
//! other line is merely counted (a `memchr` newline count). Memory stays at
//! one buffer (plus at most one pending CRI partial line per stream) however
//! large the input. Gzip and zstd are recognised by their magic bytes.

use crate::config::ParseConfig;
use crate::line::{parse_line, Parsed};
use crate::record::{ErrorClass, ProxyError, Source};
use chrono::{DateTime, Utc};
use memchr::memmem::Finder;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
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
}

fn pairs_as_strings<S: serde::Serializer>(
    m: &BTreeMap<(String, String), u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|((a, b), n)| (format!("{a} -> {b}"), n)))
}

/// Every journald JSON record has this key.
static JOURNALD_KEY: std::sync::LazyLock<Finder<'static>> =
    std::sync::LazyLock::new(|| Finder::new(b"\"__REALTIME_TIMESTAMP\""));

/// How many malformed-line samples are kept.
pub const MAX_SAMPLES: usize = 10;
/// Lines longer than this are skipped (counted as unparsed, with a sample)
/// so memory stays bounded.
pub const MAX_LINE: usize = 16 << 20;
/// A CRI line split into more than this many bytes of `P` parts is parsed
/// as far as it got.
const MAX_PARTIAL: usize = 1 << 20;
const BUF: usize = 1 << 20;

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

#[derive(Debug, Clone)]
enum Input {
    File(PathBuf),
    Stdin,
}

/// Proxy errors from files, directories (recursively, sorted by name) and
/// stdin, in input order.
///
/// A scanner thread reads the inputs, counts every line and picks the
/// candidate lines; the iterator parses them on the caller's thread, so the
/// two overlap on a multi-core machine. At most [`IN_FLIGHT`] batches of
/// candidates are queued between them: memory stays bounded.
pub struct LogReader {
    rx: Option<Receiver<Batch>>,
    scanner: Option<JoinHandle<()>>,
    out: VecDeque<ProxyError>,
    stats: ReadStats,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Batches of candidate lines queued between the scanner and the parser.
pub const IN_FLIGHT: usize = 4;
/// A batch is sent when it holds this many bytes of candidate lines.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_LINES: usize = 8192;

/// One input as the parser needs to know it.
#[derive(Debug)]
struct InputInfo {
    name: String,
    stdin: bool,
    cfg: ParseConfig,
}

/// Candidate lines of one input, and the scanner's counters so far.
#[derive(Debug, Default)]
struct Batch {
    input: Option<Arc<InputInfo>>,
    data: Vec<u8>,
    /// (line number, start, end) into `data`.
    lines: Vec<(u64, usize, usize)>,
    /// Cumulative: lines, bytes, inputs opened.
    lines_read: u64,
    bytes: u64,
    files: u64,
    /// New since the previous batch: overlong lines, failures, samples.
    unparsed: u64,
    failures: Vec<String>,
    samples: Vec<String>,
}

/// The scanning half: inputs, buffers or maps, candidate finding.
struct Scanner {
    inputs: VecDeque<Input>,
    cfg: ParseConfig,
    cur: Option<Current>,
    /// Only the scanner's counters are kept here (lines, bytes, files,
    /// failures, overlong lines).
    stats: ReadStats,
    finders: [Finder<'static>; 4],
    tx: SyncSender<Batch>,
    batch: Batch,
    sent_failures: usize,
    sent_samples: usize,
    sent_unparsed: u64,
}

/// A CRI line the runtime split (`P`), waiting for its final part.
#[derive(Debug)]
struct Partial {
    line: u64,
    /// The first part's `STAMP STREAM P ` header.
    header: Vec<u8>,
    content: Vec<u8>,
}

struct Current {
    name: String,
    info: Arc<InputInfo>,
    rd: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Lines completed before `buf[start]`.
    line: u64,
    offset: u64,
    /// Skipping the rest of an overlong line.
    skipping: bool,
    partial: [Option<Partial>; 2],
    /// Set for plain files read through memory maps.
    map: Option<MapState>,
}

impl LogReader {
    /// Read `paths` in order; directories are walked recursively in name
    /// order; `-` is stdin. Every path must exist now.
    pub fn open(paths: &[PathBuf], cfg: ParseConfig) -> Result<Self, LogError> {
        let mut inputs = VecDeque::new();
        for p in paths {
            if p.as_os_str() == "-" {
                inputs.push_back(Input::Stdin);
                continue;
            }
            let md = std::fs::metadata(p).map_err(|source| LogError::Open {
                path: p.clone(),
                source,
            })?;
            if md.is_dir() {
                let mut files = Vec::new();
                walk(p, &mut files)?;
                inputs.extend(files.into_iter().map(Input::File));
            } else {
                inputs.push_back(Input::File(p.clone()));
            }
        }
        Ok(Self::spawn(inputs, cfg, None))
    }

    /// Read stdin; year-less stamps are placed before `cfg.reference`.
    pub fn stdin(cfg: ParseConfig) -> Self {
        Self::spawn(VecDeque::from([Input::Stdin]), cfg, None)
    }

    /// Read any byte stream (tests, decompressed bodies); `name` is used in
    /// sources and samples.
    pub fn from_reader(name: &str, rd: Box<dyn Read + Send>, cfg: ParseConfig) -> Self {
        let cur = Current::new(name.to_owned(), false, cfg.clone(), rd);
        Self::spawn(VecDeque::new(), cfg, Some(cur))
    }

    fn spawn(inputs: VecDeque<Input>, cfg: ParseConfig, cur: Option<Current>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        let mut scanner = Scanner {
            inputs,
            cfg,
            cur: None,
            stats: ReadStats::default(),
            finders: [
                Finder::new(b"proxy error").into_owned(),
                // journald JSON keeps a non-UTF-8 MESSAGE as an array of bytes.
                Finder::new(b"\"MESSAGE\":[").into_owned(),
                Finder::new(b" stdout P ").into_owned(),
                Finder::new(b" stderr P ").into_owned(),
            ],
            tx,
            batch: Batch::default(),
            sent_failures: 0,
            sent_samples: 0,
            sent_unparsed: 0,
        };
        if let Some(c) = cur {
            scanner.stats.files = 1;
            scanner.cur = Some(c);
        }
        let handle = std::thread::Builder::new()
            .name("wiretrail-logs-scan".into())
            .spawn(move || scanner.run())
            .expect("cannot start the log scanner thread");
        LogReader {
            rx: Some(rx),
            scanner: Some(handle),
            out: VecDeque::new(),
            stats: ReadStats::default(),
        }
    }

    /// Counts over everything read so far (complete once the iterator has
    /// returned `None`).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    fn finish(&mut self) {
        self.rx = None;
        if let Some(h) = self.scanner.take() {
            if h.join().is_err() {
                self.stats
                    .failures
                    .push("internal error: the log scanner thread panicked".into());
            }
        }
    }

    fn absorb(&mut self, b: Batch) {
        self.stats.lines = b.lines_read;
        self.stats.bytes = b.bytes;
        self.stats.files = b.files;
        self.stats.unparsed += b.unparsed;
        self.stats.failures.extend(b.failures);
        for sample in b.samples {
            if self.stats.samples.len() < MAX_SAMPLES {
                self.stats.samples.push(sample);
            }
        }
        let Some(info) = b.input else { return };
        for (no, start, end) in b.lines {
            self.record(&b.data[start..end], no, &info);
        }
    }

    fn record(&mut self, line: &[u8], no: u64, info: &InputInfo) {
        let origin = if info.stdin {
            Source::Stdin { line: no }
        } else {
            Source::File {
                file: info.name.clone(),
                line: no,
            }
        };
        match parse_line(line, origin, &info.cfg) {
            Parsed::Error(e) => {
                self.stats.proxy_errors += 1;
                *self.stats.by_class.entry(e.class).or_default() += 1;
                let pair = (
                    e.local
                        .as_deref()
                        .map_or("-".to_owned(), |l| strip_port(l).to_owned()),
                    e.remote.clone().unwrap_or_else(|| "-".into()),
                );
                *self.stats.by_pair.entry(pair).or_default() += 1;
                self.out.push_back(e);
            }
            Parsed::NotProxyError => {}
            Parsed::Malformed(why) => {
                self.stats.unparsed += 1;
                if self.stats.samples.len() < MAX_SAMPLES {
                    self.stats
                        .samples
                        .push(format!("{}:{no}: {why}", info.name));
                }
            }
        }
    }
}

impl Scanner {
    fn run(mut self) {
        loop {
            if self.cur.is_none() && !self.open_next() {
                break;
            }
            self.step();
            // Send after every buffer or window, so counters keep flowing.
            if !self.flush() {
                return; // the reader was dropped
            }
        }
        self.flush();
    }

    /// Send the pending batch; `false` when nobody listens any more.
    fn flush(&mut self) -> bool {
        let mut b = std::mem::take(&mut self.batch);
        b.lines_read = self.stats.lines;
        b.bytes = self.stats.bytes;
        b.files = self.stats.files;
        b.unparsed = self.stats.unparsed - self.sent_unparsed;
        self.sent_unparsed = self.stats.unparsed;
        b.failures = self.stats.failures[self.sent_failures..].to_vec();
        self.sent_failures = self.stats.failures.len();
        b.samples = self.stats.samples[self.sent_samples..].to_vec();
        self.sent_samples = self.stats.samples.len();
        self.tx.send(b).is_ok()
    }

    fn open_next(&mut self) -> bool {
        while let Some(input) = self.inputs.pop_front() {
            match input {
                Input::Stdin => {
                    let cfg = self.cfg.clone();
                    match sniff(Box::new(io::stdin())) {
                        Ok(rd) => {
                            self.stats.files += 1;
                            self.cur = Some(Current::new("<stdin>".into(), true, cfg, rd));
                            return true;
                        }
                        Err(e) => self.stats.failures.push(format!("<stdin>: {e}")),
                    }
                }
                Input::File(path) => match open_file(&path, &self.cfg) {
                    Ok((opened, cfg)) => {
                        self.stats.files += 1;
                        let name = path.display().to_string();
                        self.cur = Some(match opened {
                            Opened::Stream(rd) => Current::new(name, false, cfg, rd),
                            Opened::Map(m) => {
                                let mut c = Current::new(name, false, cfg, Box::new(io::empty()));
                                c.buf = Vec::new();
                                c.map = Some(m);
                                c
                            }
                        });
                        return true;
                    }
                    Err(e) => {
                        tracing::warn!("{e}");
                        self.stats.failures.push(e.to_string());
                    }
                },
            }
        }
        false
    }

    /// Read and scan one buffer of the current input.
    fn step(&mut self) {
        let Some(cur) = self.cur.as_mut() else { return };
        if cur.map.is_some() {
            return self.step_map();
        }
        if let Err(e) = cur.fill() {
            let err = LogError::Read {
                path: cur.name.clone().into(),
                offset: cur.offset,
                source: e,
            };
            tracing::warn!("{err}");
            self.stats.failures.push(err.to_string());
            cur.eof = true;
            cur.start = cur.end; // drop the rest
        }
        let region_end = if cur.eof {
            cur.end
        } else {
            match memchr::memrchr(b'\n', &cur.buf[cur.start..cur.end]) {
                Some(p) => cur.start + p + 1,
                None => {
                    if cur.skipping || cur.end - cur.start >= MAX_LINE {
                        // One enormous line: drop what we have, skip to its end.
                        if !cur.skipping && self.stats.samples.len() < MAX_SAMPLES {
                            self.stats.samples.push(format!(
                                "{}:{}: line longer than {} bytes, skipped",
                                cur.name,
                                cur.line + 1,
                                MAX_LINE
                            ));
                        }
                        self.stats.unparsed += u64::from(!cur.skipping);
                        cur.skipping = true;
                        self.stats.bytes += (cur.end - cur.start) as u64;
                        cur.offset += (cur.end - cur.start) as u64;
                        cur.start = 0;
                        cur.end = 0;
                    }
                    return;
                }
            }
        };
        let (start, end) = (cur.start, region_end);
        cur.start = region_end;
        let region = std::mem::take(&mut cur.buf);
        self.scan(&region[start..end]);
        let cur = self.cur.as_mut().expect("current input");
        cur.buf = region;
        cur.offset += (end - start) as u64;
        self.stats.bytes += (end - start) as u64;
        if cur.eof && cur.start >= cur.end {
            self.flush_partials();
            self.cur = None;
        }
    }

    /// Map the next window of a plain file and scan its complete lines.
    fn step_map(&mut self) {
        let cur = self.cur.as_mut().expect("current input");
        let m = cur.map.as_mut().expect("mapped input");
        if m.pos >= m.len {
            self.flush_partials();
            self.cur = None;
            return;
        }
        let aligned = m.pos - m.pos % ALIGN;
        let len = WINDOW.min(m.len - aligned);
        let at_end = aligned + len == m.len;
        let map = match map_window(&m.file, aligned, len) {
            Ok(map) => map,
            Err(source) => {
                let err = LogError::Read {
                    path: cur.name.clone().into(),
                    offset: m.pos,
                    source,
                };
                tracing::warn!("{err}");
                self.stats.failures.push(err.to_string());
                self.flush_partials();
                self.cur = None;
                return;
            }
        };
        let data = &map[(m.pos - aligned) as usize..];
        let take = if at_end {
            data.len()
        } else {
            match memchr::memrchr(b'\n', data) {
                Some(p) => p + 1,
                None => {
                    // A line longer than the window: skip it like an overlong
                    // line of a stream.
                    if !cur.skipping {
                        self.stats.unparsed += 1;
                        if self.stats.samples.len() < MAX_SAMPLES {
                            self.stats.samples.push(format!(
                                "{}:{}: line longer than {} bytes, skipped",
                                cur.name,
                                cur.line + 1,
                                MAX_LINE
                            ));
                        }
                    }
                    cur.skipping = true;
                    data.len()
                }
            }
        };
        m.pos += take as u64;
        cur.offset += take as u64;
        self.stats.bytes += take as u64;
        let skipping_whole = cur.skipping && memchr::memchr(b'\n', &data[..take]).is_none();
        if !skipping_whole {
            self.scan(&data[..take]);
        }
    }

    /// Scan complete lines (the last may lack its newline at end of input).
    fn scan(&mut self, region: &[u8]) {
        let cur = self.cur.as_mut().expect("current input");
        let first_line = cur.line;
        let mut pos = 0;
        if cur.skipping {
            // The tail of an overlong line.
            match memchr::memchr(b'\n', region) {
                Some(p) => {
                    pos = p + 1;
                    cur.line += 1;
                    cur.skipping = false;
                }
                None => return,
            }
        }
        // The secondary finders only run where their envelope is in use, judged
        // by the region's first line: a CRI log gets the partial-line finders,
        // a journald JSON export the byte-array MESSAGE finder. Files hold one
        // envelope; in a mixed file a `P` line holding the phrase is still
        // joined, only a phrase split across parts can be missed.
        let head = &region[pos..];
        let head = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
        let cri = cri_split(head).is_some();
        let journald = head.first() == Some(&b'{') && JOURNALD_KEY.find(head).is_some();
        let enabled = [true, journald, cri, cri];
        let mut counted = pos;
        let mut next = [0usize; 4];
        let mut valid = [false; 4];
        loop {
            let cur = self.cur.as_ref().expect("current input");
            let pending = cur.partial.iter().any(Option::is_some);
            let cand = if pending {
                if pos >= region.len() {
                    break;
                }
                pos
            } else {
                let mut best = usize::MAX;
                for k in 0..4 {
                    if !valid[k] || next[k] < pos {
                        next[k] = if enabled[k] {
                            self.finders[k]
                                .find(&region[pos.min(region.len())..])
                                .map_or(usize::MAX, |p| p + pos)
                        } else {
                            usize::MAX
                        };
                        valid[k] = true;
                    }
                    best = best.min(next[k]);
                }
                if best == usize::MAX {
                    break;
                }
                best
            };
            let line_start = memchr::memrchr(b'\n', &region[..cand])
                .map_or(0, |p| p + 1)
                .max(pos);
            let line_end =
                memchr::memchr(b'\n', &region[cand..]).map_or(region.len(), |p| cand + p);
            let cur = self.cur.as_mut().expect("current input");
            cur.line += memchr::memchr_iter(b'\n', &region[counted..line_start]).count() as u64;
            counted = line_start;
            let no = cur.line + 1;
            self.handle(&region[line_start..line_end], no);
            pos = line_end + 1;
            if pos > region.len() {
                break;
            }
        }
        let cur = self.cur.as_mut().expect("current input");
        let tail = &region[counted.min(region.len())..];
        cur.line += memchr::memchr_iter(b'\n', tail).count() as u64;
        // An unterminated last line (end of input) is a line too.
        if !region.is_empty() && region.last() != Some(&b'\n') {
            cur.line += 1;
        }
        self.stats.lines += cur.line - first_line;
    }

    fn handle(&mut self, line: &[u8], no: u64) {
        if let Some((stderr, partial, content)) = cri_split(line) {
            let cur = self.cur.as_mut().expect("current input");
            let slot = &mut cur.partial[usize::from(stderr)];
            if partial {
                let p = slot.get_or_insert_with(|| Partial {
                    line: no,
                    header: line[..content].to_vec(),
                    content: Vec::new(),
                });
                p.content.extend_from_slice(&line[content..]);
                if p.content.len() < MAX_PARTIAL {
                    return;
                }
            }
            if let Some(mut p) = slot.take() {
                if !partial {
                    p.content.extend_from_slice(&line[content..]);
                }
                let mut joined = p.header;
                joined.extend_from_slice(&p.content);
                self.record(&joined, p.line);
                return;
            }
        }
        self.record(line, no);
    }

    fn flush_partials(&mut self) {
        let Some(cur) = self.cur.as_mut() else { return };
        let parts: Vec<Partial> = cur.partial.iter_mut().filter_map(Option::take).collect();
        for p in parts {
            let mut joined = p.header;
            joined.extend_from_slice(&p.content);
            self.record(&joined, p.line);
        }
    }

    /// Queue a candidate line for the parser.
    fn record(&mut self, line: &[u8], no: u64) {
        let info = Arc::clone(&self.cur.as_ref().expect("current input").info);
        if self
            .batch
            .input
            .as_ref()
            .is_some_and(|i| !Arc::ptr_eq(i, &info))
        {
            self.flush();
        }
        let b = &mut self.batch;
        b.input.get_or_insert(info);
        let start = b.data.len();
        b.data.extend_from_slice(line);
        b.lines.push((no, start, b.data.len()));
        if b.data.len() >= BATCH_BYTES || b.lines.len() >= BATCH_LINES {
            self.flush();
        }
    }
}

impl Iterator for LogReader {
    type Item = ProxyError;

    fn next(&mut self) -> Option<ProxyError> {
        loop {
            if let Some(e) = self.out.pop_front() {
                return Some(e);
            }
            let msg = self.rx.as_ref()?.recv();
            match msg {
                Ok(batch) => self.absorb(batch),
                Err(_) => {
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

/// A CRI line's stream, partial flag and where its content starts.
fn cri_split(line: &[u8]) -> Option<(bool, bool, usize)> {
    if !line.first()?.is_ascii_digit() {
        return None;
    }
    let sp = memchr::memchr(b' ', line)?;
    crate::time::iso(&line[..sp])
        .ok()
        .filter(|(r, _)| r.is_empty())?;
    let rest = &line[sp + 1..];
    let stderr = if rest.starts_with(b"stderr ") {
        true
    } else if rest.starts_with(b"stdout ") {
        false
    } else {
        return None;
    };
    let partial = match rest.get(7..9) {
        Some(b"P ") => true,
        Some(b"F ") => false,
        _ if rest.len() == 8 && (rest[7] == b'F' || rest[7] == b'P') => rest[7] == b'P',
        _ => return None,
    };
    Some((stderr, partial, (sp + 1 + 9).min(line.len())))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LogError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LogError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Set to read plain files as streams instead of memory maps.
pub const NO_MMAP_ENV: &str = "WIRETRAIL_NO_MMAP";
/// Bytes mapped at a time: bounds the resident set like a buffer would.
const WINDOW: u64 = 32 << 20;
/// Window starts are multiples of this (a multiple of every page size).
const ALIGN: u64 = 64 << 10;

enum Opened {
    Stream(Box<dyn Read + Send>),
    Map(MapState),
}

/// A plain file read through memory-mapped windows (no copy into a buffer).
struct MapState {
    file: File,
    len: u64,
    pos: u64,
}

fn open_file(path: &Path, cfg: &ParseConfig) -> Result<(Opened, ParseConfig), LogError> {
    let open_err = |source| LogError::Open {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(open_err)?;
    let mut cfg = cfg.clone();
    let md = f.metadata().map_err(open_err)?;
    // Year-less stamps belong before the file was last written.
    if let Ok(m) = md.modified() {
        cfg.reference = DateTime::<Utc>::from(m);
    }
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut f, &mut magic).map_err(open_err)?;
    let compressed =
        magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd];
    if md.is_file() && !compressed && md.len() > 0 && std::env::var_os(NO_MMAP_ENV).is_none() {
        return Ok((
            Opened::Map(MapState {
                file: f,
                len: md.len(),
                pos: 0,
            }),
            cfg,
        ));
    }
    let rd = sniff_with(&magic[..n], Box::new(f)).map_err(open_err)?;
    Ok((Opened::Stream(rd), cfg))
}

fn read_up_to(rd: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match rd.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Map `len` bytes of `file` from `offset` read-only.
///
/// SAFETY: a map is sound only while nobody changes the mapped range. Log
/// files are append-only while written (appends past the mapped length are
/// not seen: the length is taken at open time). What cannot be guarded
/// against is truncation while mapped (`logrotate copytruncate` at that very
/// moment): touching pages past the new end raises SIGBUS, as it would for
/// ripgrep. Set `WIRETRAIL_NO_MMAP=1` to read files as streams instead.
#[allow(unsafe_code)]
fn map_window(file: &File, offset: u64, len: u64) -> io::Result<memmap2::Mmap> {
    // SAFETY: see the function comment.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len as usize)
            .map(file)
    }
}

/// Wrap a decompressor when the stream starts with gzip or zstd magic.
fn sniff(mut rd: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut rd, &mut magic)?;
    sniff_with(&magic[..n], rd)
}

/// `magic` was already read from `rd`; put it back in front.
fn sniff_with(magic: &[u8], rd: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let whole = io::Cursor::new(magic.to_vec()).chain(rd);
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(whole))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(whole)?)
    } else {
        Box::new(whole)
    })
}

impl Current {
    fn new(name: String, stdin: bool, cfg: ParseConfig, rd: Box<dyn Read + Send>) -> Self {
        Current {
            info: Arc::new(InputInfo {
                name: name.clone(),
                stdin,
                cfg,
            }),
            name,
            rd,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            eof: false,
            line: 0,
            offset: 0,
            skipping: false,
            partial: [None, None],
            map: None,
        }
    }

    /// Move unread bytes to the front and read until the buffer is full or
    /// the input ends; grows the buffer for a line longer than it.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grow = self.buf.len().min(MAX_LINE);
            self.buf.resize(self.buf.len() + grow, 0);
        }
        while self.end < self.buf.len() && !self.eof {
            match self.rd.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
