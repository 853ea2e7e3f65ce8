//! One chunk of an input, scanned and parsed by a worker.
//!
//! ripgrep's trick: find candidate lines with a SIMD substring search
//! (`memchr::memmem`) and fully parse only those; every other line is merely
//! counted. The chunk is walked in blocks that fit the CPU cache, so the line
//! count and the secondary searches read bytes the first search just brought
//! in. Line numbers here are relative to the chunk; the consumer adds the
//! lines of the chunks before.

use super::input::InputInfo;
use super::split::{part_of, Part, Runtime};
use super::{ReadProblemKind, MAX_SAMPLES};
use crate::line::{parse_line_noted, Parsed};
use crate::record::{ErrorClass, ProxyError, Source};
use memchr::memmem::Finder;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A split line longer than this many bytes is parsed as far as it got.
const MAX_PARTIAL: usize = 1 << 20;
/// Records per block of [`ChunkOut::records`].
const RECORD_BLOCK: usize = 256;
/// Bytes scanned at a time: about an L2 cache.
const BLOCK: usize = 256 << 10;

/// `"MESSAGE":[` in a journald export. A single-byte search for `[` runs
/// several times faster than a substring search, and `[` is rare in
/// journald's own keys.
fn find_byte_message(hay: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"MESSAGE\":";
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'[', &hay[from..]) {
        let at = from + p;
        if hay[..at].ends_with(KEY) {
            return Some(at - KEY.len());
        }
        from = at + 1;
    }
    None
}

static JOURNALD_KEY: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"__REALTIME_TIMESTAMP\""));

/// Whether an input whose first bytes are `head` is a journald JSON export.
pub(crate) fn journald_export(head: &[u8]) -> bool {
    let line = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
    line.first() == Some(&b'{') && JOURNALD_KEY.find(line).is_some()
}

/// What a worker found in one chunk.
#[derive(Debug, Default)]
pub(crate) struct ChunkOut {
    /// Lines in the chunk (an unterminated last line of the input counts).
    pub lines: u64,
    pub bytes: u64,
    /// Records in blocks of [`RECORD_BLOCK`] (a chunk of errors only would
    /// otherwise grow one vector of tens of megabytes by copying it over and
    /// over); `Source` line numbers relative to the chunk.
    pub records: Vec<Vec<ProxyError>>,
    /// How many records in all.
    pub errors: u64,
    /// With a render format: the records' heads ([`crate::render::head`]),
    /// one after the other, instead of `records`.
    pub rendered: Vec<u8>,
    /// Per rendered record: where its head ends in `rendered`, and its line
    /// relative to the chunk (`None`: the head is the whole line).
    pub marks: Vec<(usize, Option<u64>)>,
    /// Proxy error lines that could not be read.
    pub unparsed: u64,
    /// Records whose stamps disagreed (see `ReadStats::stamp_conflicts`).
    pub stamp_conflicts: u64,
    /// The first [`MAX_SAMPLES`] unparsed lines and stamp conflicts each:
    /// (kind, relative line, why).
    pub samples: Vec<(ReadProblemKind, u64, String)>,
    pub by_class: [u64; ErrorClass::ALL.len()],
    /// proxy address without port → backend address → count (looked up by
    /// `&str`, so a known pair costs no allocation).
    pub by_pair: BTreeMap<String, BTreeMap<String, u64>>,
}

/// A line split by the runtime, waiting for its last part.
struct Group {
    line: u64,
    runtime: Runtime,
    /// CRI: the first part's `STAMP STREAM P ` header and then every part's
    /// content. Docker: the first part, kept whole for its other keys.
    head: Vec<u8>,
    /// Docker: the decoded `log` of every part.
    log: String,
    size: usize,
}

impl Group {
    fn new(line_no: u64, line: &[u8], part: Part) -> Self {
        let head = match part.runtime {
            Runtime::Cri { content } => line[..content].to_vec(),
            Runtime::Docker => line.to_vec(),
        };
        Group {
            line: line_no,
            runtime: part.runtime,
            head,
            log: String::new(),
            size: 0,
        }
    }

    fn push(&mut self, line: &[u8], part: Part) {
        self.size += line.len();
        match part.runtime {
            Runtime::Cri { content } => self.head.extend_from_slice(&line[content..]),
            Runtime::Docker => match serde_json::from_slice::<DockerLog<'_>>(line) {
                Ok(d) => self.log.push_str(&d.log),
                // Not valid JSON after all: keep the raw bytes visible.
                Err(_) => self.log.push_str(&String::from_utf8_lossy(line)),
            },
        }
    }

    /// The whole line, in its runtime's envelope.
    fn joined(self) -> Vec<u8> {
        match self.runtime {
            Runtime::Cri { .. } => self.head,
            Runtime::Docker => {
                let mut v: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(&self.head).unwrap_or_default();
                v.insert("log".into(), serde_json::Value::String(self.log));
                serde_json::to_vec(&v).unwrap_or_default()
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct DockerLog<'a> {
    #[serde(borrow)]
    log: std::borrow::Cow<'a, str>,
}

/// Scan and parse one chunk. `last`: the input ends with it.
pub(crate) fn scan_chunk(info: &InputInfo, data: &[u8], last: bool) -> ChunkOut {
    let mut w = Worker {
        info,
        line: 0,
        groups: [None, None],
        out: ChunkOut {
            bytes: data.len() as u64,
            ..ChunkOut::default()
        },
    };
    let mut pos = 0;
    while pos < data.len() {
        // The block ends at the first newline past BLOCK bytes: searching
        // forward touches pages in the order the scan will, where looking back
        // from the block's end would fault its last page in first.
        let end = if data.len() - pos <= BLOCK {
            data.len()
        } else {
            memchr::memchr(b'\n', &data[pos + BLOCK..]).map_or(data.len(), |p| pos + BLOCK + p + 1)
        };
        w.block(&data[pos..end]);
        pos = end;
    }
    w.flush_groups();
    // An unterminated last line (end of input) is a line too.
    if last && data.last().is_some_and(|&c| c != b'\n') {
        w.line += 1;
    }
    w.out.lines = w.line;
    w.out
}

struct Worker<'a> {
    info: &'a InputInfo,
    /// Lines completed so far in the chunk.
    line: u64,
    /// Open split lines per stream (stdout, stderr).
    groups: [Option<Group>; 2],
    out: ChunkOut,
}

impl Worker<'_> {
    /// Complete lines (the last may lack its newline at end of input).
    fn block(&mut self, region: &[u8]) {
        let first_line = self.line;
        let journald = self
            .info
            .journald
            .load(std::sync::atomic::Ordering::Relaxed);
        let enabled = [true, journald];
        let searcher = self.info.searcher();
        let mut pos = 0;
        let mut counted = 0;
        let mut next = [0usize; 2];
        let mut valid = [false; 2];
        let mut line = first_line;
        loop {
            // Whether the line was found by a needle (else it is read because
            // it may continue a split line, and must show a needle itself).
            let hit = self.groups.iter().all(Option::is_none);
            let cand = if !hit {
                // Inside a split line: every line may continue it.
                if pos >= region.len() {
                    break;
                }
                pos
            } else {
                let mut best = usize::MAX;
                for k in 0..2 {
                    if !valid[k] || next[k] < pos {
                        let hay = &region[pos.min(region.len())..];
                        let found = match k {
                            0 => searcher.find(hay),
                            _ if enabled[k] => find_byte_message(hay),
                            _ => None,
                        };
                        next[k] = found.map_or(usize::MAX, |p| p + pos);
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
            line += memchr::memchr_iter(b'\n', &region[counted..line_start]).count() as u64;
            counted = line_start;
            self.handle(&region[line_start..line_end], line + 1, hit);
            pos = line_end + 1;
            if pos > region.len() {
                break;
            }
        }
        let tail = &region[counted.min(region.len())..];
        line += memchr::memchr_iter(b'\n', tail).count() as u64;
        self.line = line;
    }

    fn handle(&mut self, line: &[u8], no: u64, hit: bool) {
        let Some(part) = part_of(line) else {
            // A line of another kind ends any split line: its parts were not
            // followed by the rest.
            self.flush_groups();
            return self.parse(line, no, hit);
        };
        let slot = &mut self.groups[part.stream];
        if slot.as_ref().is_some_and(|g| g.runtime != part.runtime) {
            self.flush_stream(part.stream);
        }
        let slot = &mut self.groups[part.stream];
        match slot {
            None if !part.partial => self.parse(line, no, hit),
            None => {
                let mut g = Group::new(no, line, part);
                g.push(line, part);
                *slot = Some(g);
            }
            Some(g) => {
                g.push(line, part);
                if !part.partial || g.size >= MAX_PARTIAL {
                    self.flush_stream(part.stream);
                }
            }
        }
    }

    fn flush_stream(&mut self, stream: usize) {
        if let Some(g) = self.groups[stream].take() {
            let no = g.line;
            let joined = g.joined();
            self.parse(&joined, no, false);
        }
    }

    fn flush_groups(&mut self) {
        // In the order the split lines began.
        let mut open: Vec<usize> = (0..2).filter(|&s| self.groups[s].is_some()).collect();
        open.sort_by_key(|&s| self.groups[s].as_ref().map(|g| g.line));
        for s in open {
            self.flush_stream(s);
        }
    }

    fn sample(&mut self, kind: ReadProblemKind, no: u64, why: String) {
        let kept = self.out.samples.iter().filter(|s| s.0 == kind).count();
        if kept < MAX_SAMPLES {
            self.out.samples.push((kind, no, why));
        }
    }

    /// `hit`: a needle found the line (else it is checked for one first).
    fn parse(&mut self, line: &[u8], no: u64, hit: bool) {
        if !hit
            && line.first() != Some(&b'{')
            && !crate::line::might_hold(line, self.info.cfg.formats)
        {
            return;
        }
        let origin = if self.info.stdin {
            Source::Stdin { line: no }
        } else {
            Source::File {
                file: self.info.name.clone(),
                line: no,
            }
        };
        let (parsed, note) = parse_line_noted(line, origin, &self.info.cfg);
        if let Some(why) = note {
            self.out.stamp_conflicts += 1;
            self.sample(ReadProblemKind::StampConflict, no, why);
        }
        match parsed {
            Parsed::Error(e) => {
                let out = &mut self.out;
                let k = ErrorClass::ALL
                    .iter()
                    .position(|&c| c == e.class)
                    .unwrap_or(ErrorClass::ALL.len() - 1);
                out.by_class[k] += 1;
                let proxy = e.local.as_deref().map_or("-", super::strip_port);
                let backend = e.remote.as_deref().unwrap_or("-");
                let inner = match out.by_pair.get_mut(proxy) {
                    Some(m) => m,
                    None => out.by_pair.entry(proxy.to_owned()).or_default(),
                };
                match inner.get_mut(backend) {
                    Some(n) => *n += 1,
                    None => {
                        inner.insert(backend.to_owned(), 1);
                    }
                }
                out.errors += 1;
                if let Some(format) = self.info.render {
                    // Rendered here, on the worker: the caller only copies.
                    let line = crate::render::head(&mut out.rendered, &e, format);
                    out.marks.push((out.rendered.len(), line));
                    return;
                }
                if out.records.last().is_none_or(|b| b.len() == RECORD_BLOCK) {
                    out.records.push(Vec::with_capacity(RECORD_BLOCK));
                }
                out.records.last_mut().expect("a block").push(e);
            }
            Parsed::NotProxyError => {}
            Parsed::Malformed(why) => {
                self.out.unparsed += 1;
                self.sample(ReadProblemKind::Unparsed, no, why);
            }
        }
    }
}
