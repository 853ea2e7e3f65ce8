//! The producer: opens inputs in order and cuts them into chunks of whole
//! lines for the workers, never inside a runtime-split line (see
//! [`clean_cut`]). Plain files are cut into memory-mapped windows (no copy);
//! streams (stdin, gzip, zstd, a caller's reader) into buffers.
//!
//! Every message gets a sequence number; the consumer puts results back in
//! that order. A permit is taken per message, so at most `2 × workers + 2`
//! messages (chunks among them) exist at once: memory stays bounded however
//! large the input.

use super::input::{map_window, open_file, sniff, Input, InputInfo, Opened};
use super::scan::{journald_export, scan_chunk, ChunkOut};
use super::split::clean_cut;
use super::{LogError, MAX_LINE};
use crate::config::ParseConfig;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

/// A file modified more recently than this may still be written.
pub(crate) const FRESH: std::time::Duration = std::time::Duration::from_secs(5);
/// Window starts are multiples of this (a multiple of every page size).
const ALIGN: u64 = 64 << 10;

/// What the consumer receives, in sequence order.
pub(crate) enum Msg {
    /// An input was opened: its line numbers start again at 1.
    Opened,
    /// An input (or part of it) could not be read.
    Failure { path: String, message: String },
    /// One line longer than [`MAX_LINE`], skipped.
    Overlong { info: Arc<InputInfo>, bytes: u64 },
    Chunk {
        info: Arc<InputInfo>,
        /// Boxed: a message is moved through channels and maps.
        out: Box<ChunkOut>,
    },
    /// The last line of a file written moments ago has no newline.
    Unterminated { info: Arc<InputInfo> },
    /// A file grew while read (someone is writing it): it was read up to
    /// `read` of the `size` bytes it had when opened; it has `now`.
    Growing {
        info: Arc<InputInfo>,
        read: u64,
        size: u64,
        now: u64,
    },
}

/// What [`Producer::long_line`] made of a line longer than a chunk.
enum Long {
    /// The line (up to its newline, or the end of the file) as a chunk.
    Chunk(memmap2::Mmap, usize),
    /// Longer than [`MAX_LINE`]: skipped up to this offset, said so.
    Skipped(u64),
    /// The file could not be read further: said so.
    Failed,
}

/// Bytes of one chunk: a window of a map, or a buffer.
enum Bytes {
    Map {
        map: memmap2::Mmap,
        start: usize,
        end: usize,
    },
    Buf(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Map { map, start, end } => &map[*start..*end],
            Bytes::Buf(b) => b,
        }
    }
}

pub(crate) struct Task {
    seq: u64,
    info: Arc<InputInfo>,
    bytes: Bytes,
    /// Offset of the chunk in its input (for messages).
    offset: u64,
    /// The input ends with this chunk.
    last: bool,
}

/// A worker: scan and parse chunks until the producer is done.
pub(crate) fn work(tasks: Arc<Mutex<Receiver<Task>>>, results: Sender<(u64, Msg)>) {
    loop {
        let task = tasks.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(t) = task else { return };
        let data = t.bytes.as_slice();
        let len = data.len();
        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scan_chunk(&t.info, data, t.last)
        }));
        drop(t.bytes);
        let msg = match scanned {
            Ok(out) => Msg::Chunk {
                info: t.info,
                out: Box::new(out),
            },
            // A bug, not bad input: say which bytes were lost, go on.
            Err(_) => Msg::Failure {
                path: t.info.name.clone(),
                message: format!(
                    "internal error while reading bytes {}..{}: those lines are lost",
                    t.offset,
                    t.offset + len as u64
                ),
            },
        };
        if results.send((t.seq, msg)).is_err() {
            return;
        }
    }
}

pub(crate) struct Producer {
    pub inputs: VecDeque<Input>,
    pub cfg: ParseConfig,
    /// Records are rendered by the workers (see [`super::Rendered`]).
    pub render: Option<crate::render::Format>,
    /// Bytes per chunk.
    pub chunk: usize,
    pub seq: u64,
    pub tasks: Sender<Task>,
    pub results: Sender<(u64, Msg)>,
    pub permits: SyncSender<()>,
}

/// The consumer has gone away: stop.
struct Gone;

impl Producer {
    pub fn run(mut self) {
        while let Some(input) = self.inputs.pop_front() {
            if self.input(input).is_err() {
                return;
            }
        }
    }

    fn next_seq(&mut self) -> Result<u64, Gone> {
        self.permits.send(()).map_err(|_| Gone)?;
        self.seq += 1;
        Ok(self.seq - 1)
    }

    fn note(&mut self, m: Msg) -> Result<(), Gone> {
        let seq = self.next_seq()?;
        self.results.send((seq, m)).map_err(|_| Gone)
    }

    fn task(
        &mut self,
        info: &Arc<InputInfo>,
        bytes: Bytes,
        offset: u64,
        last: bool,
    ) -> Result<(), Gone> {
        let seq = self.next_seq()?;
        self.tasks
            .send(Task {
                seq,
                info: Arc::clone(info),
                bytes,
                offset,
                last,
            })
            .map_err(|_| Gone)
    }

    fn input(&mut self, input: Input) -> Result<(), Gone> {
        let render = self.render;
        let info = |name: String, stdin: bool, cfg: ParseConfig| {
            Arc::new(InputInfo {
                name,
                stdin,
                cfg,
                journald: AtomicBool::new(false),
                render,
                searcher: std::sync::OnceLock::new(),
            })
        };
        match input {
            Input::Stdin => match sniff(Box::new(io::stdin())) {
                Ok(rd) => {
                    self.note(Msg::Opened)?;
                    let info = info("<stdin>".into(), true, self.cfg.clone());
                    self.stream(&info, rd)
                }
                Err(e) => self.note(Msg::Failure {
                    path: "<stdin>".into(),
                    message: e.to_string(),
                }),
            },
            Input::Reader(name, rd) => {
                self.note(Msg::Opened)?;
                let info = info(name, false, self.cfg.clone());
                self.stream(&info, rd)
            }
            Input::File(path) => match open_file(&path, &self.cfg) {
                Ok((opened, cfg)) => {
                    self.note(Msg::Opened)?;
                    let info = info(path.display().to_string(), false, cfg);
                    match opened {
                        Opened::Map { file, len } => self.map(&info, &file, len),
                        Opened::Stream(rd) => self.stream(&info, rd),
                    }
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    self.note(Msg::Failure {
                        path: path.display().to_string(),
                        message: e.reason(),
                    })
                }
            },
        }
    }

    fn read_failure(&mut self, info: &InputInfo, offset: u64, source: io::Error) -> Msg {
        let err = LogError::Read {
            path: info.name.clone().into(),
            offset,
            source,
        };
        tracing::warn!("{err}");
        Msg::Failure {
            path: info.name.clone(),
            message: err.reason(),
        }
    }

    /// A plain file, in memory-mapped windows of about `chunk` bytes.
    fn map(&mut self, info: &Arc<InputInfo>, file: &File, len: u64) -> Result<(), Gone> {
        let mut pos = 0u64;
        while pos < len {
            let aligned = pos - pos % ALIGN;
            let off = (pos - aligned) as usize;
            let want = (self.chunk as u64).min(len - pos);
            let map = match map_window(file, aligned, pos - aligned + want) {
                Ok(m) => m,
                Err(e) => {
                    let m = self.read_failure(info, pos, e);
                    return self.note(m);
                }
            };
            if pos == 0 {
                info.journald
                    .store(journald_export(&map), Ordering::Relaxed);
                info.decide(&map[off..], want == len);
            }
            let (map, cut) = if pos + want == len {
                match self.file_end(info, file, &map[off..], len)? {
                    Some(keep) => (map, keep),
                    None => (map, want as usize),
                }
            } else if let Some(p) = memchr::memrchr(b'\n', &map[off..]) {
                let cut = clean_cut(&map[off..], p + 1);
                (map, cut)
            } else {
                drop(map);
                match self.long_line(info, file, pos, len)? {
                    Long::Chunk(map, cut) => (map, cut),
                    Long::Skipped(end) => {
                        pos = end;
                        continue;
                    }
                    Long::Failed => return Ok(()),
                }
            };
            let end = pos + cut as u64;
            let bytes = Bytes::Map {
                map,
                start: off,
                end: off + cut,
            };
            if cut > 0 {
                self.task(info, bytes, pos, end == len)?;
            }
            if end < len && pos + want == len {
                // `file_end` left an unfinished line and said so.
                return Ok(());
            }
            pos = end;
        }
        match file.metadata() {
            Ok(m) if m.len() > len => self.note(Msg::Growing {
                info: Arc::clone(info),
                read: len,
                size: len,
                now: m.len(),
            }),
            _ => Ok(()),
        }
    }

    /// The last window of a file whose last line has no newline: is someone
    /// still writing it? If it grew since it was opened, the line is most
    /// likely unfinished: `Some(bytes to keep)` (up to the last newline) and a
    /// note say so. Written a moment ago but not grown: read as it is, with a
    /// note that it may be cut. Otherwise `None`: take the window whole.
    fn file_end(
        &mut self,
        info: &Arc<InputInfo>,
        file: &File,
        data: &[u8],
        len: u64,
    ) -> Result<Option<usize>, Gone> {
        if data.last() == Some(&b'\n') {
            return Ok(None);
        }
        let md = file.metadata().ok();
        let now = md.as_ref().map_or(len, |m| m.len());
        if now > len {
            let keep = memchr::memrchr(b'\n', data).map_or(0, |p| p + 1);
            let read = len - (data.len() - keep) as u64;
            self.note(Msg::Growing {
                info: Arc::clone(info),
                read,
                size: len,
                now,
            })?;
            return Ok(Some(keep));
        }
        let age = md
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|a| a < FRESH) {
            self.note(Msg::Unterminated {
                info: Arc::clone(info),
            })?;
        }
        Ok(None)
    }

    /// No newline within a chunk from `pos`: map up to the longest line kept
    /// and take that line as a chunk of its own, or skip it when it is longer.
    fn long_line(
        &mut self,
        info: &Arc<InputInfo>,
        file: &File,
        pos: u64,
        len: u64,
    ) -> Result<Long, Gone> {
        let aligned = pos - pos % ALIGN;
        let off = (pos - aligned) as usize;
        let big = (MAX_LINE as u64 + 1).min(len - pos);
        let map = match map_window(file, aligned, pos - aligned + big) {
            Ok(m) => m,
            Err(e) => {
                let m = self.read_failure(info, pos, e);
                self.note(m)?;
                return Ok(Long::Failed);
            }
        };
        match memchr::memchr(b'\n', &map[off..]) {
            Some(p) => Ok(Long::Chunk(map, p + 1)),
            None if pos + big == len && big <= MAX_LINE as u64 => {
                Ok(Long::Chunk(map, big as usize))
            }
            None => {
                let end = match skip_line(file, pos + big, len, self.chunk as u64) {
                    Ok(end) => end,
                    Err(e) => {
                        let m = self.read_failure(info, pos, e);
                        self.note(m)?;
                        return Ok(Long::Failed);
                    }
                };
                self.note(Msg::Overlong {
                    info: Arc::clone(info),
                    bytes: end - pos,
                })?;
                Ok(Long::Skipped(end))
            }
        }
    }

    /// A stream, in buffers of about `chunk` bytes.
    fn stream(&mut self, info: &Arc<InputInfo>, mut rd: Box<dyn Read + Send>) -> Result<(), Gone> {
        let chunk = self.chunk;
        let mut buf: Vec<u8> = Vec::with_capacity(chunk);
        // Bytes of the input before `buf`.
        let mut offset = 0u64;
        // Inside a line longer than MAX_LINE: bytes skipped so far.
        let mut skipping: Option<u64> = None;
        let mut first = true;
        loop {
            let (eof, err) = fill(&mut rd, &mut buf, chunk, info.stdin);
            if std::mem::take(&mut first) {
                info.journald
                    .store(journald_export(&buf), Ordering::Relaxed);
                info.decide(&buf, eof);
            }
            if let Some(skipped) = skipping.as_mut() {
                match memchr::memchr(b'\n', &buf) {
                    Some(p) => {
                        let bytes = *skipped + p as u64 + 1;
                        skipping = None;
                        buf.drain(..=p);
                        offset += bytes;
                        self.note(Msg::Overlong {
                            info: Arc::clone(info),
                            bytes,
                        })?;
                    }
                    None => {
                        *skipped += buf.len() as u64;
                        buf.clear();
                    }
                }
            }
            // Only the first line can be longer than a chunk: every later
            // one was read whole within the last `chunk` bytes.
            while skipping.is_none() {
                match memchr::memchr(b'\n', &buf) {
                    Some(p) if p > MAX_LINE => {
                        buf.drain(..=p);
                        offset += p as u64 + 1;
                        self.note(Msg::Overlong {
                            info: Arc::clone(info),
                            bytes: p as u64 + 1,
                        })?;
                    }
                    None if buf.len() > MAX_LINE => {
                        skipping = Some(buf.len() as u64);
                        buf.clear();
                    }
                    _ => break,
                }
            }
            if eof || err.is_some() {
                if let Some(bytes) = skipping.take() {
                    offset += bytes;
                    self.note(Msg::Overlong {
                        info: Arc::clone(info),
                        bytes,
                    })?;
                }
                if !buf.is_empty() {
                    let n = buf.len() as u64;
                    self.task(info, Bytes::Buf(buf), offset, true)?;
                    offset += n;
                }
                if let Some(e) = err {
                    let m = self.read_failure(info, offset, e);
                    self.note(m)?;
                }
                return Ok(());
            }
            if skipping.is_some() {
                continue;
            }
            // Without a newline, read more of this long line.
            if let Some(p) = memchr::memrchr(b'\n', &buf) {
                let cut = clean_cut(&buf, p + 1);
                let mut next = Vec::with_capacity(chunk.max(buf.len() - cut));
                next.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
                let done = std::mem::replace(&mut buf, next);
                self.task(info, Bytes::Buf(done), offset, false)?;
                offset += cut as u64;
            }
        }
    }
}

/// Read until `buf` holds `chunk` bytes more than a line's worth, the input
/// ends, or fails. Stdin also stops early when a read came back short and a
/// whole line is in: someone is typing or tailing, show their lines now.
fn fill(
    rd: &mut Box<dyn Read + Send>,
    buf: &mut Vec<u8>,
    chunk: usize,
    interactive: bool,
) -> (bool, Option<io::Error>) {
    let target = if buf.len() >= chunk {
        buf.len() + chunk
    } else {
        chunk
    };
    while buf.len() < target {
        let old = buf.len();
        let want = (target - old).min(1 << 20);
        buf.resize(old + want, 0);
        match rd.read(&mut buf[old..]) {
            Ok(0) => {
                buf.truncate(old);
                return (true, None);
            }
            Ok(k) => {
                buf.truncate(old + k);
                if interactive && k < want && memchr::memchr(b'\n', &buf[old..]).is_some() {
                    return (false, None);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(old),
            Err(e) => {
                buf.truncate(old);
                return (false, Some(e));
            }
        }
    }
    (false, None)
}

/// The end of the line that runs on past `from` (after its newline), or `len`.
fn skip_line(file: &File, from: u64, len: u64, window: u64) -> io::Result<u64> {
    let mut q = from;
    while q < len {
        let aligned = q - q % ALIGN;
        let n = window.max(ALIGN).min(len - aligned);
        let map = map_window(file, aligned, n)?;
        if let Some(p) = memchr::memchr(b'\n', &map[(q - aligned) as usize..]) {
            return Ok(q + p as u64 + 1);
        }
        q = aligned + n;
    }
    Ok(len)
}
