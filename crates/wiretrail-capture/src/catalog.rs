//! The capture catalog: per node, which rotated files exist, what time each
//! really spans, what is lost, and where inside a file a given time starts.
//!
//! Learning a span does not read the file: a *probe* looks at its first
//! records and, for plain files, at its last ones (see `probe`), so a cold
//! catalog of tens of gigabytes costs a few hundred KiB per file. Only the
//! files that may hold packets of a requested window ([`Detail::Windows`])
//! are *scanned*: read once, end to end, for their packet count and a sparse
//! time→checkpoint index that lets extraction seek. Compressed files cannot
//! be read from the end; their span ends where the next rotation starts
//! until a window needs them and they are scanned.
//!
//! Every entry is cached per file, keyed by (canonical path, size, mtime),
//! in a cache directory that is never next to the captures: a re-run over
//! unchanged files reads no capture data at all. A plain file that grew (the
//! rotation being written) misses the cache, so it is probed again on every
//! run and never taken for complete; a scanned one is read on from its last
//! checkpoint.
//!
//! Coverage (spans, gaps, overlaps) comes from packet times, never from file
//! names, and from what was actually read: an unreadable, truncated or
//! corrupt rotation and a rotation missing from the middle of a series are
//! [`Loss`]es, named with the file, the time bounded by the neighbours, and
//! the reason, and the node does not cover them. "No capture covers this
//! time" is kept apart from "no packets".

mod cache;
mod coverage;
mod discover;
pub mod names;
mod probe;
mod scan;
mod series;

pub use cache::default_cache_dir;
pub use coverage::{Coverage, Gap, NodeCoverage, Overlap};
pub use names::{parse_hint, NameHint};

use crate::problem::{CaptureProblem, Loss, LossReason, ProblemKind};
use crate::query::FlowQuery;
use crate::read::{Checkpoint, Compression, Format};
use crate::time::{Duration, Timestamp};
use cache::{CacheKey, EntryCache};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A node as the pipeline names it, and where its captures are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// `backend-01`.
    pub name: String,
    /// Directories, glob patterns (`/cap/be1/*.pcap*`, `/cap/**/*.pcap`) or
    /// single files.
    pub sources: Vec<String>,
}

impl NodeSpec {
    pub fn new(
        name: impl Into<String>,
        sources: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        NodeSpec {
            name: name.into(),
            sources: sources.into_iter().map(Into::into).collect(),
        }
    }

    /// Parses the CLI form `NAME=DIR` (or `NAME=GLOB`).
    pub fn parse_arg(s: &str) -> Result<Self, CatalogError> {
        match s.split_once('=') {
            Some((name, src)) if !name.is_empty() && !src.is_empty() => {
                Ok(NodeSpec::new(name, [src]))
            }
            _ => Err(CatalogError::BadNodeArg(s.to_string())),
        }
    }
}

/// A resume point inside a file with what is known of the times around it.
///
/// Packet times in a file are not always monotonic (several interfaces,
/// merged captures, clock steps), so seeking uses bounds, not the time of
/// the next packet: every packet *before* the point is at most
/// `max_ts_before`, every packet *from* it on is at least `min_ts_from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexPoint {
    pub at: Checkpoint,
    pub max_ts_before: Timestamp,
    pub min_ts_from: Timestamp,
}

/// How much of a file was read to learn what its entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Known {
    /// It could not be opened as a capture (see its damage).
    Unread,
    /// Its first records only (a compressed file): the span ends where the
    /// next rotation starts, or is unknown.
    Head,
    /// Its first and last records: the span is the earliest time of the
    /// first ones and the latest of the last ones; packets are not counted
    /// and there is no index (reading starts at the top).
    Probed,
    /// Every record: exact span, packet count, sparse index, damage.
    Scanned,
}

/// A damaged stretch inside a file, with the packet times around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// Byte offset (decompressed stream) where it starts.
    pub offset: u64,
    pub reason: LossReason,
    /// Time of the last packet before it (`None`: none in this file).
    pub after: Option<Timestamp>,
    /// Time of the first packet after it (`None`: none; the rest of the file is lost).
    pub before: Option<Timestamp>,
    pub detail: String,
}

/// Everything the catalog knows about one capture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Canonical path.
    pub path: PathBuf,
    pub size: u64,
    /// Modification time (the field keeps its cached name).
    #[serde(rename = "mtime_ns")]
    pub mtime: Timestamp,
    /// `None` when the file header could not be read (see `damage`).
    pub format: Option<Format>,
    pub compression: Option<Compression>,
    /// Link types of the packets seen, ascending.
    pub linktypes: Vec<u16>,
    /// How much of the file was read.
    pub known: Known,
    /// Packets (known once the file is scanned).
    pub packets: Option<u64>,
    /// Earliest and latest packet time seen (`None` without timestamped
    /// packets, or not known: see `known`).
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Sparse index (scanned files), one point about every
    /// [`CatalogOptions::index_every`] bytes.
    pub index: Vec<IndexPoint>,
    pub hint: NameHint,
    /// Byte offset of a partial last record: the file is still being
    /// written (normal for the newest rotation) or was cut short.
    pub truncated_tail: Option<u64>,
    /// (length, FNV-1a hash) of the file's first bytes, to tell a grown
    /// file from a new one under the same name (plain files only).
    pub head: Option<(u32, u64)>,
    /// Stretches that could not be read (a file that cannot be opened has
    /// one, at byte 0).
    pub damage: Vec<Damage>,
    /// Corrupt records and blocks, each naming the byte offset.
    pub problems: Vec<CaptureProblem>,
    /// For a [`Known::Head`] file: where the next rotation of its series
    /// starts (set when the node is assembled; not part of the cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_next: Option<Timestamp>,
}

impl FileEntry {
    /// Where packets of this file may lie `[first, last]`, for planning
    /// reads: a compressed file not read to its end may hold anything up to
    /// where the next rotation starts (or anything after its start).
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self.first_ts?;
        match self.known {
            Known::Head => Some((first, self.until_next.unwrap_or(Timestamp::MAX))),
            Known::Unread => None,
            Known::Probed | Known::Scanned => Some((first, self.last_ts?)),
        }
    }

    /// The stretch this file is known to cover (coverage): the packets'
    /// span, or for a compressed file not read to its end, up to the next
    /// rotation's start (only its first packet's instant without one).
    pub fn covered_span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self.first_ts?;
        match self.known {
            Known::Head => Some((
                first,
                self.until_next
                    .map_or(first, |n| (n - Duration::NANOSECOND).max(first)),
            )),
            Known::Unread => None,
            Known::Probed | Known::Scanned => Some((first, self.last_ts?)),
        }
    }

    /// Whether the packets' span meets `[since, until]`.
    pub fn overlaps(&self, since: Timestamp, until: Timestamp) -> bool {
        self.span().is_some_and(|(a, b)| a <= until && b >= since)
    }

    /// Whether the file could be opened as a capture.
    pub fn readable(&self) -> bool {
        self.format.is_some()
    }

    /// The last index point before which every packet is earlier than
    /// `since` (so reading may start there), or `None` to start at the top.
    pub fn seek_point(&self, since: Timestamp) -> Option<&IndexPoint> {
        // `max_ts_before` never decreases along the index.
        let n = self.index.partition_point(|p| p.max_ts_before < since);
        n.checked_sub(1).map(|i| &self.index[i])
    }

    /// The first index point after `from_frame` from which every packet is
    /// later than `until` (so reading may stop there), or `None`.
    pub fn stop_point(&self, from_frame: u64, until: Timestamp) -> Option<&IndexPoint> {
        // `min_ts_from` never decreases along the index either.
        let n = self
            .index
            .partition_point(|p| p.min_ts_from <= until || p.at.frame <= from_frame);
        self.index.get(n)
    }
}

/// One node's files (in time order), coverage, losses and problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeCatalog {
    pub name: String,
    pub files: Vec<FileEntry>,
    /// What the readable files cover, losses taken out.
    pub coverage: NodeCoverage,
    /// Capture data known to be lost, with the time it covered.
    pub losses: Vec<Loss>,
    /// The file still being written (index into `files`), if any.
    pub growing: Option<usize>,
    /// Everything worth telling, typed, each naming the node and the path.
    pub problems: Vec<CaptureProblem>,
}

/// What building cost: the proof that a warm re-run reads no packets and a
/// cold one reads little.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogStats {
    pub files: usize,
    /// Files whose entry came from the cache untouched.
    pub from_cache: usize,
    /// Files whose span was learned by probing their head (and tail).
    pub probed: usize,
    /// Files scanned end to end (indexed).
    pub indexed: usize,
    /// Capture bytes read (compressed bytes for `.gz`/`.zst`).
    pub bytes_read: u64,
    pub packets_read: u64,
}

/// How much the catalog must know.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Detail {
    /// Spans only: files are probed, small ones scanned, none indexed.
    #[default]
    Spans,
    /// Spans, and an index of every file that may hold packets of one of
    /// these windows (ns, inclusive, already widened by any slack).
    Windows(Vec<(Timestamp, Timestamp)>),
    /// Every file scanned and indexed (a warm-up, `capture index --full`).
    Full,
}

impl Detail {
    /// The windows of `queries`, widened by `slack` on both sides.
    pub fn for_queries(queries: &[FlowQuery], slack: Duration) -> Detail {
        Detail::Windows(
            queries
                .iter()
                .map(|q| (q.since - slack, q.until + slack))
                .collect(),
        )
    }

    fn wants(&self, span: (Timestamp, Timestamp)) -> bool {
        match self {
            Detail::Spans => false,
            Detail::Full => true,
            Detail::Windows(ws) => ws.iter().any(|&(a, b)| span.0 <= b && span.1 >= a),
        }
    }
}

/// How to build a catalog.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Cache root; `None` means [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Write and read the cache at all.
    pub use_cache: bool,
    /// Longest packet-free stretch between two files still counted as one
    /// continuous capture (unless they are rotation neighbours).
    pub join_gap: Duration,
    /// Sparse index spacing in (decompressed) bytes.
    pub index_every: u64,
    /// Which files to scan and index besides probing every file.
    pub detail: Detail,
    /// Files up to this size are scanned instead of probed (a probe reads
    /// a few hundred KiB anyway).
    pub scan_below: u64,
    /// The newest file of a node modified less than this long ago, with
    /// packets from about when it was modified, is being written: its cut
    /// last record is not a loss.
    pub live_for: Duration,
    /// "Now", for deciding what is being written (tests); `None`: the clock.
    pub now: Option<Timestamp>,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            cache_dir: None,
            use_cache: true,
            join_gap: DEFAULT_JOIN_GAP,
            index_every: INDEX_EVERY_BYTES,
            detail: Detail::Spans,
            scan_below: SCAN_BELOW_BYTES,
            live_for: DEFAULT_LIVE_FOR,
            now: None,
        }
    }
}

/// Default [`CatalogOptions::join_gap`]: one second.
pub const DEFAULT_JOIN_GAP: Duration = Duration::from_secs(1);

/// Index spacing: a checkpoint about every 4 MiB of (decompressed) capture.
pub const INDEX_EVERY_BYTES: u64 = 4 << 20;

/// Default [`CatalogOptions::scan_below`]: 1 MiB.
pub const SCAN_BELOW_BYTES: u64 = 1 << 20;

/// Default [`CatalogOptions::live_for`]: ten minutes.
pub const DEFAULT_LIVE_FOR: Duration = Duration::from_mins(10);

/// A grown, scanned file is read on from its last checkpoint when at most
/// this much was appended; beyond, probing it is cheaper.
const RESUME_MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("node argument {0:?} is not NAME=DIR")]
    BadNodeArg(String),
    #[error("node name {0:?} is given twice")]
    DuplicateNode(String),
    #[error("node {0:?} has no capture source")]
    NoSources(String),
}

/// Every node's captures, catalogued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    nodes: Vec<NodeCatalog>,
    stats: CatalogStats,
    /// Where entries were cached (`None`: cache off or unusable).
    cache_dir: Option<PathBuf>,
    /// Cache trouble (unwritable dir, ...): the catalog still works.
    cache_problems: Vec<CaptureProblem>,
}

/// Counters shared by the worker threads.
#[derive(Default)]
struct Costs {
    from_cache: AtomicUsize,
    probed: AtomicUsize,
    indexed: AtomicUsize,
    bytes: AtomicU64,
    packets: AtomicU64,
    store_errors: Mutex<Vec<String>>,
}

impl Costs {
    fn add(&self, c: &probe::Cost) {
        self.bytes.fetch_add(c.bytes, Ordering::Relaxed);
        self.packets.fetch_add(c.packets, Ordering::Relaxed);
    }
}

/// What one file's catalog step needs.
struct Ctx<'a> {
    cache: Option<&'a EntryCache>,
    opts: &'a CatalogOptions,
    costs: &'a Costs,
}

impl Ctx<'_> {
    fn store(&self, key: &CacheKey, entry: &FileEntry) {
        if let Some(c) = self.cache {
            if let Err(e) = c.store(key, entry) {
                self.costs
                    .store_errors
                    .lock()
                    .expect("no panics while held")
                    .push(format!(
                        "cannot write the index cache in {}: {e}",
                        c.dir().display()
                    ));
            }
        }
    }

    /// Scans `path` (reading on from `resume` when given) and caches it.
    fn scan(&self, path: &Path, key: Option<&CacheKey>, resume: Option<FileEntry>) -> FileEntry {
        let (entry, cost) = scan::index_file(path, key, self.opts.index_every.max(1), resume);
        self.costs.add(&cost);
        self.costs.indexed.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = key {
            self.store(k, &entry);
        }
        entry
    }

    /// The entry of one file: from the cache, by probing, or by scanning.
    fn entry(&self, path: &Path) -> FileEntry {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                let mut entry = probe::blank(path, None);
                entry.damage.push(Damage {
                    offset: 0,
                    reason: LossReason::Unreadable,
                    after: None,
                    before: None,
                    detail: format!("cannot stat: {e}"),
                });
                return entry;
            }
        };
        let key = key_of(path, &meta, self.opts.index_every);
        if let Some(c) = self.cache {
            if let Some(e) = c.load::<FileEntry>(&key) {
                self.costs.from_cache.fetch_add(1, Ordering::Relaxed);
                return e;
            }
            let resume = c
                .load_same_path::<FileEntry>(&key)
                .filter(|old| scan::can_resume(old, &key));
            if let Some(old) = resume {
                let appended = key.size - old.size;
                if self.opts.detail == Detail::Full || appended <= RESUME_MAX_BYTES {
                    return self.scan(path, Some(&key), Some(old));
                }
            }
        }
        if self.opts.detail == Detail::Full || key.size <= self.opts.scan_below {
            return self.scan(path, Some(&key), None);
        }
        match probe::probe(path, &key) {
            probe::Probe::Done(entry, cost) => {
                self.costs.add(&cost);
                self.costs.probed.fetch_add(1, Ordering::Relaxed);
                self.store(&key, &entry);
                *entry
            }
            probe::Probe::NeedsScan(cost) => {
                self.costs.add(&cost);
                self.scan(path, Some(&key), None)
            }
        }
    }
}

impl Catalog {
    /// Builds (or refreshes from the cache in `cache_dir`, default
    /// [`default_cache_dir`]) the catalog of `nodes`: spans only.
    pub fn build(nodes: &[NodeSpec], cache_dir: Option<&Path>) -> Result<Catalog, CatalogError> {
        let opts = CatalogOptions {
            cache_dir: cache_dir.map(Path::to_path_buf),
            ..CatalogOptions::default()
        };
        Self::build_with(nodes, &opts)
    }

    pub fn build_with(nodes: &[NodeSpec], opts: &CatalogOptions) -> Result<Catalog, CatalogError> {
        let mut seen = HashSet::new();
        for n in nodes {
            if !seen.insert(n.name.as_str()) {
                return Err(CatalogError::DuplicateNode(n.name.clone()));
            }
            if n.sources.is_empty() {
                return Err(CatalogError::NoSources(n.name.clone()));
            }
        }
        let mut cache_problems = Vec::new();
        let cache = if opts.use_cache {
            match opts.cache_dir.clone().or_else(default_cache_dir) {
                Some(root) => {
                    let c = EntryCache::new(&root);
                    c.sweep_stale();
                    Some(c)
                }
                None => {
                    cache_problems.push(CaptureProblem::new(
                        ProblemKind::Cache,
                        "$XDG_CACHE_HOME",
                        "no cache directory ($XDG_CACHE_HOME and $HOME unset): cataloguing without a cache",
                    ));
                    None
                }
            }
        } else {
            None
        };

        let known = |path: &Path, meta: &std::fs::Metadata| {
            cache.as_ref().is_some_and(|c| {
                c.load::<FileEntry>(&key_of(path, meta, opts.index_every))
                    .is_some()
            })
        };
        // Discover every node's files first, then look at all files in parallel.
        let mut work: Vec<(usize, PathBuf)> = Vec::new();
        let mut node_problems: Vec<Vec<CaptureProblem>> = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let found = discover::discover(&n.sources, &known);
            work.extend(found.files.into_iter().map(|p| (i, p)));
            node_problems.push(found.problems);
        }
        let costs = Costs::default();
        let ctx = Ctx {
            cache: cache.as_ref(),
            opts,
            costs: &costs,
        };
        let entries: Vec<(usize, FileEntry)> = work
            .into_par_iter()
            .map(|(node, path)| (node, ctx.entry(&path)))
            .collect();
        let files = entries.len();
        let mut per_node: Vec<Vec<FileEntry>> = vec![Vec::new(); nodes.len()];
        for (i, e) in entries {
            per_node[i].push(e);
        }
        let now = opts.now.unwrap_or_else(Timestamp::now);
        let assemble = |per_node: Vec<Vec<FileEntry>>| -> Vec<NodeCatalog> {
            nodes
                .iter()
                .zip(per_node)
                .zip(&node_problems)
                .map(|((spec, files), problems)| {
                    NodeCatalog::assemble(spec.name.clone(), files, problems.clone(), opts, now)
                })
                .collect()
        };
        let mut nodes_out = assemble(per_node);

        // The windows' files: scan what was only probed.
        if matches!(opts.detail, Detail::Windows(_)) {
            let todo: Vec<(usize, usize)> = nodes_out
                .iter()
                .enumerate()
                .flat_map(|(ni, n)| {
                    n.files.iter().enumerate().filter_map(move |(fi, f)| {
                        let partial = matches!(f.known, Known::Head | Known::Probed);
                        (partial && f.span().is_some_and(|s| opts.detail.wants(s)))
                            .then_some((ni, fi))
                    })
                })
                .collect();
            if !todo.is_empty() {
                let scanned: Vec<(usize, usize, FileEntry)> = todo
                    .into_par_iter()
                    .map(|(ni, fi)| {
                        let path = nodes_out[ni].files[fi].path.clone();
                        let key = std::fs::metadata(&path)
                            .ok()
                            .map(|m| key_of(&path, &m, opts.index_every));
                        (ni, fi, ctx.scan(&path, key.as_ref(), None))
                    })
                    .collect();
                let mut per_node: Vec<Vec<FileEntry>> = nodes_out
                    .iter_mut()
                    .map(|n| std::mem::take(&mut n.files))
                    .collect();
                for (ni, fi, e) in scanned {
                    per_node[ni][fi] = e;
                }
                nodes_out = assemble(per_node);
            }
        }

        let mut store_errors = costs
            .store_errors
            .into_inner()
            .expect("no panics while held");
        store_errors.dedup();
        let cache_dir = cache.as_ref().map(|c| c.dir().to_path_buf());
        cache_problems.extend(store_errors.into_iter().map(|m| {
            CaptureProblem::new(
                ProblemKind::Cache,
                cache_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                m,
            )
        }));
        Ok(Catalog {
            nodes: nodes_out,
            stats: CatalogStats {
                files,
                from_cache: costs.from_cache.into_inner(),
                probed: costs.probed.into_inner(),
                indexed: costs.indexed.into_inner(),
                bytes_read: costs.bytes.into_inner(),
                packets_read: costs.packets.into_inner(),
            },
            cache_dir,
            cache_problems,
        })
    }

    pub fn nodes(&self) -> &[NodeCatalog] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeCatalog> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn stats(&self) -> CatalogStats {
        self.stats
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    pub fn cache_problems(&self) -> &[CaptureProblem] {
        &self.cache_problems
    }

    /// Every problem: each node's, then the cache's.
    pub fn problems(&self) -> impl Iterator<Item = &CaptureProblem> {
        self.nodes
            .iter()
            .flat_map(|n| &n.problems)
            .chain(&self.cache_problems)
    }

    /// The node's covered spans, disjoint and in time order (empty for an
    /// unknown node).
    pub fn coverage(&self, node: &str) -> Vec<(Timestamp, Timestamp)> {
        self.node(node)
            .map(|n| n.coverage.spans.clone())
            .unwrap_or_default()
    }

    /// Whether `node`'s captures cover `[since, until]`, and what is missing.
    pub fn covered(&self, node: &str, since: Timestamp, until: Timestamp) -> Coverage {
        match self.node(node) {
            Some(n) => n.covered(since, until),
            None => Coverage::NotCovered,
        }
    }
}

impl NodeCatalog {
    /// Orders the files, places them in their rotation series, and derives
    /// what is being written, what is lost, what is covered and what to say.
    fn assemble(
        name: String,
        mut files: Vec<FileEntry>,
        mut problems: Vec<CaptureProblem>,
        opts: &CatalogOptions,
        now: Timestamp,
    ) -> Self {
        files.sort_by(|a, b| {
            (a.first_ts.unwrap_or(Timestamp::MAX), a.hint.seq(), &a.path).cmp(&(
                b.first_ts.unwrap_or(Timestamp::MAX),
                b.hint.seq(),
                &b.path,
            ))
        });
        let series = series::series(&files, opts.join_gap);
        // A compressed file not read to its end lasts until the next rotation.
        for f in &mut files {
            f.until_next = None;
        }
        for s in &series {
            for (k, &i) in s.members.iter().enumerate() {
                if files[i].known == Known::Head {
                    let next = s.members[k + 1..].iter().find_map(|&j| files[j].first_ts);
                    files[i].until_next = next;
                }
            }
        }
        // The file being written: the newest, plain, modified lately, and
        // by packets of about then (a copy of an old capture is modified
        // lately too, but its packets are old).
        let growing = files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.first_ts.is_some())
            .max_by_key(|(_, f)| f.first_ts)
            .filter(|(_, f)| {
                let latest = f.last_ts.or(f.first_ts).unwrap_or(Timestamp::MIN);
                f.compression == Some(Compression::None)
                    && now.saturating_duration_since(f.mtime) <= opts.live_for
                    && f.mtime.abs_diff(latest) <= opts.live_for
            })
            .map(|(i, _)| i);

        let losses = losses(&files, &series, growing);

        // Coverage: files as rotation neighbours know them, losses taken out.
        let ordinals = ordinals(&files, &series);
        let spans = files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (start, end) = f.covered_span()?;
                Some(coverage::FileSpan {
                    start,
                    end,
                    seq: ordinals[i],
                    file: i,
                })
            })
            .collect();
        let mut coverage = coverage::build(spans, opts.join_gap);
        for l in &losses {
            if let Some(span) = l.span {
                coverage::subtract(&mut coverage.spans, span);
            }
        }

        // What to say, each naming the node and the file.
        for p in &mut problems {
            p.node = Some(name.clone());
        }
        for f in &files {
            let path = f.path.display().to_string();
            if !f.readable() {
                let d = f.damage.first();
                problems.push(
                    CaptureProblem::new(
                        ProblemKind::UnusableSource,
                        path.clone(),
                        format!(
                            "cannot be read as a capture: {}",
                            d.map_or("unknown reason", |d| d.detail.as_str())
                        ),
                    )
                    .of_node(&name)
                    .at(d.map_or(0, |d| d.offset)),
                );
            }
            problems.extend(f.problems.iter().cloned().map(|p| p.of_node(&name)));
        }
        if let Some(g) = growing {
            let f = &files[g];
            let ago = now.saturating_duration_since(f.mtime).as_secs();
            let mut p = CaptureProblem::new(
                ProblemKind::Growing,
                f.path.display().to_string(),
                format!(
                    "still being written (modified {ago}s ago): packets written after this run read it are not in the report"
                ),
            )
            .of_node(&name);
            p.offset = f.truncated_tail;
            p.span = f.last_ts.map(|t| (t, Timestamp::MAX));
            problems.push(p);
        }
        for l in &losses {
            let mut p = CaptureProblem::new(
                ProblemKind::CaptureGap,
                l.file.display().to_string(),
                format!(
                    "{} rotation: {}; packets there are unknown and the node does not cover that time",
                    l.reason.as_str(),
                    l.detail
                ),
            )
            .of_node(&name);
            p.offset = l.offset;
            p.span = l.span;
            problems.push(p);
        }
        if !files.iter().any(FileEntry::readable) {
            problems.push(
                CaptureProblem::new(
                    ProblemKind::UnusableSource,
                    problems
                        .iter()
                        .find(|p| p.kind == ProblemKind::UnusableSource)
                        .map_or_else(String::new, |p| p.path.clone()),
                    "none of the node's sources gave a readable capture",
                )
                .of_node(&name),
            );
        }
        NodeCatalog {
            name,
            files,
            coverage,
            losses,
            growing,
            problems,
        }
    }

    pub fn covered(&self, since: Timestamp, until: Timestamp) -> Coverage {
        coverage::covered(&self.coverage.spans, since, until)
    }

    /// Packets over the scanned files (probed files are not counted).
    pub fn packets(&self) -> u64 {
        self.files.iter().filter_map(|f| f.packets).sum()
    }

    /// Whether any source gave a readable capture.
    pub fn usable(&self) -> bool {
        self.files.iter().any(FileEntry::readable)
    }
}

/// Each file's place for coverage, `(series, ordinal)`: rotation neighbours
/// get consecutive ordinals, a hole between two members skips one.
fn ordinals(files: &[FileEntry], series: &[series::Series]) -> Vec<Option<(usize, u64)>> {
    let mut out = vec![None; files.len()];
    for (si, s) in series.iter().enumerate() {
        let mut n = 0u64;
        for (k, &i) in s.members.iter().enumerate() {
            if k > 0 {
                n += if s.holes[k - 1].is_some() { 2 } else { 1 };
            }
            out[i] = Some((si, n));
        }
    }
    out
}

/// Every loss of a node: unreadable and damaged files, cut ones that are
/// not being written, and rotations missing from a series. Each is bounded
/// by what the neighbours in its series (or its own packets, or its mtime)
/// say.
fn losses(files: &[FileEntry], series: &[series::Series], growing: Option<usize>) -> Vec<Loss> {
    // Series position of each file.
    let mut place: Vec<Option<(usize, usize)>> = vec![None; files.len()];
    for (si, s) in series.iter().enumerate() {
        for (k, &i) in s.members.iter().enumerate() {
            place[i] = Some((si, k));
        }
    }
    let end_of = |i: usize| files[i].covered_span().map(|s| s.1);
    let start_of = |i: usize| files[i].first_ts;
    // The nearest readable member's end before position k (exclusive) and
    // start from position k on.
    let prev_end = |si: usize, k: usize| {
        series[si].members[..k]
            .iter()
            .rev()
            .find_map(|&j| end_of(j))
    };
    let next_start =
        |si: usize, k: usize| series[si].members[k..].iter().find_map(|&j| start_of(j));
    let bounds = |i: usize| -> (Option<Timestamp>, Option<Timestamp>) {
        match place[i] {
            Some((si, k)) => (prev_end(si, k), next_start(si, k + 1)),
            None => (None, None),
        }
    };
    let mtime_bound = |i: usize, lower: Timestamp| {
        let m = files[i].mtime;
        (m > lower).then_some(m)
    };
    let finish = |lo: Option<Timestamp>, hi: Option<Timestamp>| match (lo, hi) {
        (None, None) => None,
        (lo, hi) => Some((lo.unwrap_or(Timestamp::MIN), hi.unwrap_or(Timestamp::MAX))),
    };
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (prev, next) = bounds(i);
        if !f.readable() {
            let d = f.damage.first();
            let hi = next.or_else(|| mtime_bound(i, prev.unwrap_or(Timestamp::MIN)));
            out.push(Loss {
                file: f.path.clone(),
                span: finish(prev, hi),
                reason: d.map_or(LossReason::Unreadable, |d| d.reason),
                offset: d.map(|d| d.offset),
                detail: d.map_or_else(|| "cannot be read".into(), |d| d.detail.clone()),
            });
            continue;
        }
        for d in &f.damage {
            let lo = d.after.or(prev);
            let hi = d
                .before
                .or(next)
                .or_else(|| mtime_bound(i, lo.unwrap_or(Timestamp::MIN)));
            out.push(Loss {
                file: f.path.clone(),
                span: finish(lo, hi),
                reason: d.reason,
                offset: Some(d.offset),
                detail: format!("{} (at byte {})", d.detail, d.offset),
            });
        }
        if let Some(at) = f.truncated_tail {
            if Some(i) != growing && !f.damage.iter().any(|d| d.before.is_none()) {
                let lo = f.last_ts.or(prev);
                let hi = next.or_else(|| mtime_bound(i, lo.unwrap_or(Timestamp::MIN)));
                out.push(Loss {
                    file: f.path.clone(),
                    span: finish(lo, hi),
                    reason: LossReason::Truncated,
                    offset: Some(at),
                    detail: format!(
                        "ends inside a record at byte {at} and is not being written: it was cut short (copied while written, disk full, or the capture was killed)"
                    ),
                });
            }
        }
    }
    for (si, s) in series.iter().enumerate() {
        for (k, hole) in s.holes.iter().enumerate() {
            let Some(hole) = hole else { continue };
            out.push(Loss {
                file: hole.file.clone(),
                span: finish(prev_end(si, k + 1), next_start(si, k + 1)),
                reason: LossReason::Missing,
                offset: None,
                detail: format!("missing from its series: {}", hole.what),
            });
        }
    }
    out
}

fn key_of(path: &Path, meta: &std::fs::Metadata, index_every: u64) -> CacheKey {
    // Before the epoch or unreadable: the epoch, as before the types.
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(Timestamp::EPOCH, |d| {
            Duration::from_std(d).map_or(Timestamp::MAX, |d| Timestamp::EPOCH + d)
        });
    CacheKey {
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        size: meta.len(),
        mtime,
        index_every,
    }
}
