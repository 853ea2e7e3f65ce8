//! Single-pass multi-flow extraction: every packet of many flows, from
//! every node's captures, reading as little as possible.
//!
//! The plan selects only the files whose packet span meets a query window
//! (with slack), seeks inside each with the catalog's sparse index, and
//! reads each needed stretch once for all the queries touching it. Files
//! are read in parallel (rayon), and a large plain file in pieces cut at
//! its index points, so one huge rotation also keeps every core busy.
//!
//! Per record the work is: a time check, the port pair from
//! [`crate::decode::tcp_ports`], two bit tests; only packets of a queried
//! flow are fully decoded and copied. A wildcard query (no proxy port) puts
//! its backend port in the bit map instead, so while one is active every
//! packet of that port takes the address check: keep wildcard windows tight.

mod matcher;
mod plan;

use crate::catalog::{Catalog, FileEntry};
use crate::decode::Skip;
use crate::decode::{decode_tcp, tcp_ports};
use crate::obs::{Direction, PacketObs, SeqNumber};
use crate::problem::{CaptureProblem, ProblemKind};
use crate::query::FlowQuery;
use crate::read::{CaptureReader, ReadError};
use crate::time::{Duration, Timestamp};
use matcher::Matcher;
use plan::Range;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a progress bar hears.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// Once, before reading: how much the plan will read at most.
    Planned { files: usize, bytes: u64 },
    FileStarted {
        node: Arc<str>,
        path: Arc<PathBuf>,
        bytes: u64,
    },
    /// Bytes read since the previous `Bytes` event of this file.
    Bytes { node: Arc<str>, bytes: u64 },
    FileFinished {
        node: Arc<str>,
        path: Arc<PathBuf>,
        bytes_read: u64,
        matched: u64,
    },
}

/// A progress callback, shared by the worker threads.
pub type ProgressFn = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// How to extract.
#[derive(Clone)]
pub struct ExtractOptions {
    /// Worker threads; `None` uses rayon's global pool.
    pub threads: Option<usize>,
    /// Widens every query window on both sides (clock offsets between nodes).
    pub slack: Duration,
    pub progress: Option<ProgressFn>,
    /// A plain file's stretch is cut, at index points at least this many
    /// bytes apart, into pieces read by different threads.
    pub piece_bytes: u64,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            threads: None,
            slack: Duration::ZERO,
            progress: None,
            piece_bytes: PIECE_BYTES,
        }
    }
}

impl std::fmt::Debug for ExtractOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtractOptions")
            .field("threads", &self.threads)
            .field("slack", &self.slack)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .field("piece_bytes", &self.piece_bytes)
            .finish()
    }
}

/// What one node's extraction read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    pub node: String,
    /// Files in the node's catalog.
    pub files_total: usize,
    /// Files whose span met a window, and so were read (in part).
    pub files_read: usize,
    /// Capture bytes read (compressed bytes for `.gz`/`.zst`).
    pub bytes_read: u64,
    /// Records looked at.
    pub packets_scanned: u64,
    /// Observations produced (a packet matching two queries counts twice).
    pub matched: u64,
    /// Records not used, by reason: corrupt records, and packets of a
    /// queried port pair that would not decode as TCP (a TCP header cut
    /// before its 20 fixed bytes among them).
    pub skipped: BTreeMap<String, u64>,
    /// Packets kept whose TCP options were cut by the snaplen (flagged in
    /// [`crate::TcpOpts::cut`]: options missing there may have been sent).
    pub header_cut: u64,
}

/// The result of one extraction.
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    /// Sorted by node (catalog order), then time, then file, then frame.
    pub packets: Vec<PacketObs>,
    /// One per catalog node, in catalog order.
    pub stats: Vec<NodeStats>,
    /// Everything that went wrong, each naming the node, file and offset.
    /// (A query that could match nothing cannot be built: [`FlowQuery`].)
    pub problems: Vec<CaptureProblem>,
}

/// Packets with a TCP header cut by the snaplen in one file: kept (options
/// cut), skipped (fixed header cut), and the first one's offset.
type Cuts = (u64, u64, Option<u64>);

/// One file to read, and for which queries.
struct Task<'c> {
    node: usize,
    node_name: Arc<str>,
    file: &'c FileEntry,
    path: Arc<PathBuf>,
    queries: Vec<usize>,
    /// Treat the file as possibly longer than indexed (it grew).
    grown: bool,
}

struct TaskOut {
    node: usize,
    packets: Vec<(usize, PacketObs)>,
    bytes_read: u64,
    scanned: u64,
    skipped: BTreeMap<String, u64>,
    problems: Vec<CaptureProblem>,
    /// Queried packets with the TCP header cut: kept (options cut) and
    /// skipped (fixed header cut), with the first one's offset.
    header_cut: u64,
    header_cut_skipped: u64,
    first_cut_at: Option<u64>,
}

/// Pulls every packet of `queries` out of every node of `catalog`.
pub fn extract(catalog: &Catalog, queries: &[FlowQuery], opts: &ExtractOptions) -> Extraction {
    let tasks = plan(catalog, queries, opts.slack);
    // Each file's stretches, cut into pieces that threads can share (one
    // huge file is read by all cores), each piece read exactly once.
    let prepared: Vec<(Matcher<'_>, Vec<Range>)> =
        tasks.iter().map(|t| prepare(t, queries, opts)).collect();
    let pieces: Vec<(usize, &Range)> = prepared
        .iter()
        .enumerate()
        .flat_map(|(ti, (_, rs))| rs.iter().map(move |r| (ti, r)))
        .collect();
    let progress = FileProgress::new(&tasks, &prepared, opts.progress.clone());
    let run = || {
        pieces
            .par_iter()
            .map(|&(ti, range)| {
                let out = read_piece(&tasks[ti], &prepared[ti].0, range, opts, &progress, ti);
                progress.piece_done(&tasks[ti], ti, &out);
                out
            })
            .collect::<Vec<_>>()
    };
    let outs = match opts.threads {
        Some(n) => match rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
        {
            Ok(pool) => pool.install(run),
            Err(_) => run(),
        },
        None => run(),
    };

    let mut ex = Extraction {
        stats: catalog
            .nodes()
            .iter()
            .map(|n| NodeStats {
                node: n.name.clone(),
                files_total: n.files.len(),
                ..NodeStats::default()
            })
            .collect(),
        ..Extraction::default()
    };
    for t in &tasks {
        ex.stats[t.node].files_read += 1;
    }
    let mut keyed: Vec<(usize, PacketObs)> = Vec::new();
    // Cut TCP headers per (node, file): kept, skipped, first offset.
    let mut cuts: BTreeMap<(usize, Arc<PathBuf>), Cuts> = BTreeMap::new();
    for (out, &(ti, _)) in outs.into_iter().zip(&pieces) {
        let s = &mut ex.stats[out.node];
        s.bytes_read += out.bytes_read;
        s.packets_scanned += out.scanned;
        s.matched += out.packets.len() as u64;
        s.header_cut += out.header_cut;
        for (k, v) in out.skipped {
            *s.skipped.entry(k).or_default() += v;
        }
        if out.header_cut + out.header_cut_skipped > 0 {
            let c = cuts.entry((out.node, tasks[ti].path.clone())).or_default();
            c.0 += out.header_cut;
            c.1 += out.header_cut_skipped;
            c.2 = match (c.2, out.first_cut_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        ex.problems.extend(out.problems);
        keyed.extend(out.packets);
    }
    for ((node, path), (kept, skipped, at)) in cuts {
        let mut p = CaptureProblem::new(
            ProblemKind::Undecodable,
            path.display().to_string(),
            format!(
                "the snaplen cut the TCP header of {} packet(s) of the queried flows: {kept} kept with their options incomplete (MSS, SACK, timestamps may be missing), {skipped} skipped (cut before the 20-byte fixed header)",
                kept + skipped
            ),
        )
        .of_node(&catalog.nodes()[node].name);
        p.offset = at;
        ex.problems.push(p);
    }
    keyed.sort_by(|(na, a), (nb, b)| {
        (na, a.ts, &a.file, a.frame, &a.queries).cmp(&(nb, b.ts, &b.file, b.frame, &b.queries))
    });
    ex.packets = keyed.into_iter().map(|(_, p)| p).collect();
    ex
}

/// Per-file progress over pieces read by several threads.
struct FileProgress {
    cb: Option<ProgressFn>,
    started: Vec<AtomicBool>,
    pieces_left: Vec<AtomicUsize>,
    bytes: Vec<AtomicU64>,
    matched: Vec<AtomicU64>,
}

impl FileProgress {
    fn new(
        tasks: &[Task<'_>],
        prepared: &[(Matcher<'_>, Vec<Range>)],
        cb: Option<ProgressFn>,
    ) -> Self {
        if let Some(p) = &cb {
            p(ProgressEvent::Planned {
                files: tasks.len(),
                bytes: tasks.iter().map(|t| t.file.size).sum(),
            });
        }
        FileProgress {
            cb,
            started: tasks.iter().map(|_| AtomicBool::new(false)).collect(),
            pieces_left: prepared
                .iter()
                .map(|(_, rs)| AtomicUsize::new(rs.len()))
                .collect(),
            bytes: tasks.iter().map(|_| AtomicU64::new(0)).collect(),
            matched: tasks.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn piece_started(&self, t: &Task<'_>, ti: usize) {
        if let Some(p) = &self.cb {
            if !self.started[ti].swap(true, Ordering::Relaxed) {
                p(ProgressEvent::FileStarted {
                    node: t.node_name.clone(),
                    path: t.path.clone(),
                    bytes: t.file.size,
                });
            }
        }
    }

    fn bytes(&self, t: &Task<'_>, bytes: u64) {
        if let Some(p) = &self.cb {
            p(ProgressEvent::Bytes {
                node: t.node_name.clone(),
                bytes,
            });
        }
    }

    fn piece_done(&self, t: &Task<'_>, ti: usize, out: &TaskOut) {
        if self.cb.is_none() {
            return;
        }
        let bytes = self.bytes[ti].fetch_add(out.bytes_read, Ordering::Relaxed) + out.bytes_read;
        let n = out.packets.len() as u64;
        let matched = self.matched[ti].fetch_add(n, Ordering::Relaxed) + n;
        if self.pieces_left[ti].fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(p) = &self.cb {
                p(ProgressEvent::FileFinished {
                    node: t.node_name.clone(),
                    path: t.path.clone(),
                    bytes_read: bytes,
                    matched,
                });
            }
        }
    }
}

/// Files to read: those whose span meets some widened query window.
fn plan<'c>(catalog: &'c Catalog, queries: &[FlowQuery], slack: Duration) -> Vec<Task<'c>> {
    let mut tasks = Vec::new();
    for (ni, node) in catalog.nodes().iter().enumerate() {
        let name: Arc<str> = Arc::from(node.name.as_str());
        // The newest file may have grown since it was indexed: its real
        // end is unknown, so it is read whenever a window reaches past its
        // start.
        let newest = node
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.first_ts.is_some())
            .max_by_key(|(_, f)| f.first_ts)
            .map(|(i, _)| i);
        for (fi, file) in node.files.iter().enumerate() {
            let grown = (Some(fi) == newest || node.growing == Some(fi))
                && std::fs::metadata(&file.path)
                    .map(|m| m.len() != file.size)
                    .unwrap_or(false);
            let Some((first, last)) = file.span() else {
                continue;
            };
            let last = if grown { Timestamp::MAX } else { last };
            let qs: Vec<usize> = queries
                .iter()
                .enumerate()
                .filter(|(_, q)| q.since - slack <= last && q.until + slack >= first)
                .map(|(i, _)| i)
                .collect();
            if !qs.is_empty() {
                tasks.push(Task {
                    node: ni,
                    node_name: name.clone(),
                    file,
                    path: Arc::new(file.path.clone()),
                    queries: qs,
                    grown,
                });
            }
        }
    }
    // Biggest first: better balance across threads.
    tasks.sort_by_key(|t| std::cmp::Reverse(t.file.size));
    tasks
}

/// Report progress every this many bytes.
const PROGRESS_EVERY: u64 = 8 << 20;

/// Default [`ExtractOptions::piece_bytes`].
pub const PIECE_BYTES: u64 = 64 << 20;

/// The matcher of a file's queries and the pieces of it to read.
fn prepare<'q>(
    t: &Task<'_>,
    queries: &'q [FlowQuery],
    opts: &ExtractOptions,
) -> (Matcher<'q>, Vec<Range>) {
    let slack = opts.slack;
    let m = Matcher::new(queries, &t.queries, slack);
    let windows: Vec<(Timestamp, Timestamp)> = t
        .queries
        .iter()
        .map(|&i| (queries[i].since - slack, queries[i].until + slack))
        .collect();
    let mut ranges = plan::ranges(t.file, &windows);
    if t.grown {
        // Whatever was appended after indexing lies after every index point.
        if let Some(r) = ranges.last_mut() {
            r.stop_frame = None;
        }
    }
    (m, plan::pieces(t.file, ranges, opts.piece_bytes.max(1)))
}

fn read_piece(
    t: &Task<'_>,
    m: &Matcher<'_>,
    range: &Range,
    opts: &ExtractOptions,
    progress: &FileProgress,
    ti: usize,
) -> TaskOut {
    let mut out = TaskOut {
        node: t.node,
        packets: Vec::new(),
        bytes_read: 0,
        scanned: 0,
        skipped: BTreeMap::new(),
        problems: Vec::new(),
        header_cut: 0,
        header_cut_skipped: 0,
        first_cut_at: None,
    };
    let problem = |e: &ReadError| {
        CaptureProblem::new(
            ProblemKind::Undecodable,
            t.path.display().to_string(),
            e.to_string()
                .strip_prefix(&format!("{}: ", t.path.display()))
                .map_or_else(|| e.to_string(), str::to_string),
        )
        .of_node(&t.node_name)
        .at(e.offset())
    };
    progress.piece_started(t, ti);
    let reporting = opts.progress.is_some();
    let opened = match &range.start {
        Some(cp) => CaptureReader::open_at(&t.file.path, cp).or_else(|e| {
            // The file changed under the index: read it from the top.
            let mut p = problem(&e);
            p.message.push_str("; read from the start instead");
            out.problems.push(p);
            CaptureReader::open(&t.file.path)
        }),
        None => CaptureReader::open(&t.file.path),
    };
    let mut rd = match opened {
        Ok(r) => r,
        Err(e) => {
            let mut p = problem(&e);
            p.kind = ProblemKind::UnusableSource;
            out.problems.push(p);
            *out.skipped.entry("unreadable file".into()).or_default() += 1;
            return out;
        }
    };
    let base = rd.bytes_consumed();
    let mut reported = base;
    let mut errors_in_a_row = 0;
    let mut hits = Vec::new();
    loop {
        if reporting && out.scanned.is_multiple_of(8192) {
            let now = rd.bytes_consumed();
            if now - reported >= PROGRESS_EVERY {
                progress.bytes(t, now - reported);
                reported = now;
            }
        }
        let rec = match rd.next_record() {
            None => break,
            Some(Err(e)) => {
                out.problems.push(problem(&e));
                *out.skipped.entry("corrupt record".into()).or_default() += 1;
                errors_in_a_row += 1;
                if errors_in_a_row >= 64 {
                    let mut p = problem(&e);
                    p.message = "gave up after 64 corrupt records in a row: the rest of the file is not read".into();
                    out.problems.push(p);
                    break;
                }
                continue;
            }
            Some(Ok(r)) => r,
        };
        errors_in_a_row = 0;
        if range.stop_frame.is_some_and(|s| rec.frame >= s) {
            break;
        }
        out.scanned += 1;
        if rec.ts < m.lo || rec.ts > m.hi {
            continue;
        }
        if m.reject_fast(rec.linktype, rec.data) {
            continue;
        }
        let Some((sip, sport, dip, dport)) = tcp_ports(rec.linktype, rec.data) else {
            continue;
        };
        if !m.may_match(sport, dport) {
            continue;
        }
        m.matches(rec.ts, (sip, sport), (dip, dport), &mut hits);
        if hits.is_empty() {
            continue;
        }
        let tcp = match decode_tcp(rec.linktype, rec.data, rec.orig_len) {
            Ok(tcp) => tcp,
            Err(skip) => {
                if skip == Skip::Truncated {
                    out.header_cut_skipped += 1;
                    out.first_cut_at.get_or_insert(rec.offset);
                }
                *out.skipped.entry(skip.to_string()).or_default() += 1;
                continue;
            }
        };
        if tcp.header_truncated {
            out.header_cut += 1;
            out.first_cut_at.get_or_insert(rec.offset);
        }
        // One observation per frame and direction: the queries it matched
        // travel with it. (A direction differs only between queries that
        // disagree on which end is the proxy: then each reading is kept.)
        let mut dirs: Vec<(Direction, Vec<usize>)> = Vec::with_capacity(1);
        for &(qi, dir) in &hits {
            match dirs.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, qs)) => qs.push(qi),
                None => dirs.push((dir, vec![qi])),
            }
        }
        let data: Arc<[u8]> = rec.data.into();
        for (dir, mut queries) in dirs {
            queries.sort_unstable();
            queries.dedup();
            let obs = PacketObs {
                node: t.node_name.clone(),
                file: t.path.clone(),
                frame: rec.frame,
                ts: rec.ts,
                queries,
                dir,
                src: SocketAddr::new(tcp.src, tcp.src_port),
                dst: SocketAddr::new(tcp.dst, tcp.dst_port),
                ip_id: tcp.ip_id,
                ttl: tcp.ttl,
                flags: tcp.flags,
                seq: SeqNumber(tcp.seq),
                ack: SeqNumber(tcp.ack),
                payload_len: tcp.payload_len,
                window: tcp.window,
                opts: tcp.opts,
                link: tcp.link,
                linktype: rec.linktype,
                orig_len: rec.orig_len,
                data: data.clone(),
            };
            out.packets.push((t.node, obs));
        }
    }
    let now = rd.bytes_consumed();
    if reporting {
        progress.bytes(t, now.saturating_sub(reported));
    }
    // Bytes of this piece; a piece from the top also counts the header.
    out.bytes_read = now.saturating_sub(base) + if range.start.is_none() { base } else { 0 };
    out
}
