//! The capture catalog: per node, which rotated files exist, what time each
//! really spans, and where inside it a given time starts.
//!
//! Building it reads each capture once (in parallel) to learn its packet
//! count, link types, first/last packet times and a sparse time→checkpoint
//! index; the result is cached per file, keyed by (canonical path, size,
//! mtime), in a cache directory that is never next to the captures. A
//! re-run over unchanged files reads no packet data at all. A plain file
//! that grew (the newest rotation, still being written) is read on from its
//! last checkpoint; any other change means indexing it again.
//!
//! Coverage (spans, gaps, overlaps) is derived from packet times, never from
//! file names: "no capture covers this time" is kept apart from "no packets".

mod cache;
mod coverage;
mod discover;
mod names;
mod scan;

pub use cache::default_cache_dir;
pub use coverage::{Coverage, Gap, NodeCoverage, Overlap};
pub use names::{parse_hint, NameHint};

use crate::obs::Nanos;
use crate::read::{Checkpoint, Compression, Format};
use cache::{CacheKey, EntryCache};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A node as the pipeline names it, and where its captures are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// `backend-01`.
    pub name: String,
    /// Directories, glob patterns (`/cap/be1/*.pcap*`) or single files.
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
    pub max_ts_before: Nanos,
    pub min_ts_from: Nanos,
}

/// Everything the catalog knows about one capture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Canonical path.
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// `None` when the file header could not be read (see `problems`).
    pub format: Option<Format>,
    pub compression: Option<Compression>,
    /// Link types of the packets, ascending.
    pub linktypes: Vec<u16>,
    pub packets: u64,
    /// Earliest and latest packet time (`None` without timestamped packets).
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
    /// Sparse index, one point about every [`CatalogOptions::index_every`] bytes.
    pub index: Vec<IndexPoint>,
    pub hint: NameHint,
    /// Byte offset of a partial last record: the file was still being
    /// written (or was cut short). Normal for the newest rotation.
    pub truncated_tail: Option<u64>,
    /// (length, FNV-1a hash) of the file's first bytes, to tell a grown
    /// file from a new one under the same name (plain files only).
    pub head: Option<(u32, u64)>,
    /// Corrupt records and unreadable headers, each naming the byte offset.
    pub problems: Vec<String>,
}

impl FileEntry {
    /// Time span `[first, last]` of the packets.
    pub fn span(&self) -> Option<(Nanos, Nanos)> {
        Some((self.first_ts?, self.last_ts?))
    }

    /// Whether the packets' span meets `[since, until]`.
    pub fn overlaps(&self, since: Nanos, until: Nanos) -> bool {
        self.span().is_some_and(|(a, b)| a <= until && b >= since)
    }

    /// The last index point before which every packet is earlier than
    /// `since` (so reading may start there), or `None` to start at the top.
    pub fn seek_point(&self, since: Nanos) -> Option<&IndexPoint> {
        // `max_ts_before` never decreases along the index.
        let n = self.index.partition_point(|p| p.max_ts_before < since);
        n.checked_sub(1).map(|i| &self.index[i])
    }

    /// The first index point after `from_frame` from which every packet is
    /// later than `until` (so reading may stop there), or `None`.
    pub fn stop_point(&self, from_frame: u64, until: Nanos) -> Option<&IndexPoint> {
        // `min_ts_from` never decreases along the index either.
        let n = self
            .index
            .partition_point(|p| p.min_ts_from <= until || p.at.frame <= from_frame);
        self.index.get(n)
    }
}

/// One node's files (in time order), coverage, and problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeCatalog {
    pub name: String,
    pub files: Vec<FileEntry>,
    pub coverage: NodeCoverage,
    /// Sources that could not be listed, files that could not be read.
    pub problems: Vec<String>,
}

/// What building cost: the proof that a warm re-run reads no packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogStats {
    pub files: usize,
    /// Files whose entry came from the cache untouched.
    pub from_cache: usize,
    /// Files (re)indexed by reading them.
    pub indexed: usize,
    /// Capture bytes read to index (compressed bytes for `.gz`/`.zst`).
    pub bytes_read: u64,
    pub packets_read: u64,
}

/// How to build a catalog.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Cache root; `None` means [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Write and read the cache at all.
    pub use_cache: bool,
    /// Longest packet-free stretch between two files still counted as one
    /// continuous capture (unless they are numbered neighbours).
    pub join_gap: Nanos,
    /// Sparse index spacing in (decompressed) bytes.
    pub index_every: u64,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            cache_dir: None,
            use_cache: true,
            join_gap: DEFAULT_JOIN_GAP,
            index_every: INDEX_EVERY_BYTES,
        }
    }
}

/// Default [`CatalogOptions::join_gap`]: one second.
pub const DEFAULT_JOIN_GAP: Nanos = 1_000_000_000;

/// Index spacing: a checkpoint about every 4 MiB of (decompressed) capture.
pub const INDEX_EVERY_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("node argument {0:?} is not NAME=DIR")]
    BadNodeArg(String),
    #[error("node name {0:?} is given twice")]
    DuplicateNode(String),
    #[error("node {0:?} has no capture source")]
    NoSources(String),
}

/// Every node's captures, indexed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    nodes: Vec<NodeCatalog>,
    stats: CatalogStats,
    /// Where entries were cached (`None`: cache off or unusable).
    cache_dir: Option<PathBuf>,
    /// Cache trouble (unwritable dir, ...): the catalog still works.
    cache_problems: Vec<String>,
}

impl Catalog {
    /// Builds (or refreshes from the cache in `cache_dir`, default
    /// [`default_cache_dir`]) the catalog of `nodes`.
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
                Some(root) => Some(EntryCache::new(&root)),
                None => {
                    cache_problems.push("no cache directory ($XDG_CACHE_HOME and $HOME unset): indexing without a cache".into());
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
        // Discover every node's files first, then index all files in parallel.
        let mut work: Vec<(usize, PathBuf)> = Vec::new();
        let mut node_problems: Vec<Vec<String>> = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let found = discover::discover(&n.sources, &known);
            work.extend(found.files.into_iter().map(|p| (i, p)));
            node_problems.push(found.problems);
        }

        let from_cache = AtomicUsize::new(0);
        let bytes_read = AtomicU64::new(0);
        let packets_read = AtomicU64::new(0);
        let store_errors = std::sync::Mutex::new(Vec::new());
        let entries: Vec<(usize, FileEntry)> = work
            .into_par_iter()
            .map(|(node, path)| {
                let meta = std::fs::metadata(&path);
                let key = meta
                    .as_ref()
                    .ok()
                    .map(|m| key_of(&path, m, opts.index_every));
                let mut resume = None;
                if let (Some(c), Some(k)) = (&cache, &key) {
                    if let Some(e) = c.load::<FileEntry>(k) {
                        from_cache.fetch_add(1, Ordering::Relaxed);
                        return (node, e);
                    }
                    resume = c
                        .load_same_path::<FileEntry>(k)
                        .filter(|old| scan::can_resume(old, k));
                }
                let (entry, cost) =
                    scan::index_file(&path, key.as_ref(), opts.index_every.max(1), resume);
                bytes_read.fetch_add(cost.bytes, Ordering::Relaxed);
                packets_read.fetch_add(cost.packets, Ordering::Relaxed);
                if let (Some(c), Some(k)) = (&cache, &key) {
                    if let Err(e) = c.store(k, &entry) {
                        store_errors
                            .lock()
                            .expect("no panics while held")
                            .push(format!(
                                "cannot write the index cache in {}: {e}",
                                c.dir().display()
                            ));
                    }
                }
                (node, entry)
            })
            .collect();
        let mut store_errors = store_errors.into_inner().expect("no panics while held");
        store_errors.dedup();
        cache_problems.extend(store_errors);

        let mut per_node: Vec<Vec<FileEntry>> = vec![Vec::new(); nodes.len()];
        let files = entries.len();
        for (i, e) in entries {
            per_node[i].push(e);
        }
        let nodes = nodes
            .iter()
            .zip(per_node)
            .zip(node_problems)
            .map(|((spec, files), problems)| {
                NodeCatalog::new(spec.name.clone(), files, problems, opts.join_gap)
            })
            .collect();
        let from_cache = from_cache.into_inner();
        Ok(Catalog {
            nodes,
            stats: CatalogStats {
                files,
                from_cache,
                indexed: files - from_cache,
                bytes_read: bytes_read.into_inner(),
                packets_read: packets_read.into_inner(),
            },
            cache_dir: cache.as_ref().map(|c| c.dir().to_path_buf()),
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

    pub fn cache_problems(&self) -> &[String] {
        &self.cache_problems
    }

    /// The node's covered spans, disjoint and in time order (empty for an
    /// unknown node).
    pub fn coverage(&self, node: &str) -> Vec<(Nanos, Nanos)> {
        self.node(node)
            .map(|n| n.coverage.spans.clone())
            .unwrap_or_default()
    }

    /// Whether `node`'s captures cover `[since, until]`, and what is missing.
    pub fn covered(&self, node: &str, since: Nanos, until: Nanos) -> Coverage {
        match self.node(node) {
            Some(n) => n.covered(since, until),
            None => Coverage::NotCovered,
        }
    }
}

impl NodeCatalog {
    fn new(
        name: String,
        mut files: Vec<FileEntry>,
        problems: Vec<String>,
        join_gap: Nanos,
    ) -> Self {
        files.sort_by(|a, b| {
            (a.first_ts.unwrap_or(Nanos::MAX), a.hint.seq(), &a.path).cmp(&(
                b.first_ts.unwrap_or(Nanos::MAX),
                b.hint.seq(),
                &b.path,
            ))
        });
        let series = rotation_series(&files);
        let spans = files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (start, end) = f.span()?;
                Some(coverage::FileSpan {
                    start,
                    end,
                    seq: series[i].as_ref().map(|(g, n)| (g.as_str(), *n)),
                    file: i,
                })
            })
            .collect();
        let coverage = coverage::build(spans, join_gap);
        NodeCatalog {
            name,
            files,
            coverage,
            problems,
        }
    }

    pub fn covered(&self, since: Nanos, until: Nanos) -> Coverage {
        coverage::covered(&self.coverage.spans, since, until)
    }

    /// Packets and problems over all files.
    pub fn packets(&self) -> u64 {
        self.files.iter().map(|f| f.packets).sum()
    }
}

fn key_of(path: &Path, meta: &std::fs::Metadata, index_every: u64) -> CacheKey {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    CacheKey {
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        size: meta.len(),
        mtime_ns,
        index_every,
    }
}

/// Each file's place in its rotation series, `(series, ordinal)`, so that
/// coverage can tell "the next file of the same rotation" from "a file that
/// starts after a hole".
///
/// Numbered rotations (dumpcap ring, tcpdump `-C`) carry their number. tcpdump
/// `-G` names carry a time instead, and tcpdump opens the next file only when
/// the first packet after the period arrives, so a quiet node leaves a
/// packet-free stretch between two consecutive `-G` files that tcpdump was
/// nevertheless capturing. Files of one `-G` template (the name with its digit
/// runs blanked) are therefore numbered by their name time: consecutive ones
/// are neighbours. A restart of tcpdump with the same template is
/// indistinguishable from a quiet stretch by names alone, so this is an
/// assumption, the same one an operator makes reading the directory.
fn rotation_series(files: &[FileEntry]) -> Vec<Option<(String, u64)>> {
    let mut out: Vec<Option<(String, u64)>> = files
        .iter()
        .map(|f| {
            f.hint
                .group()
                .zip(f.hint.seq())
                .map(|(g, n)| (g.to_string(), n))
        })
        .collect();
    let mut by_template: std::collections::BTreeMap<String, Vec<(i64, u64, usize)>> =
        Default::default();
    for (i, f) in files.iter().enumerate() {
        let key = match &f.hint {
            NameHint::Strftime { at, seq } => (at.and_utc().timestamp(), seq.unwrap_or(0)),
            NameHint::EpochSeconds { secs, seq } => (*secs, seq.unwrap_or(0)),
            _ => continue,
        };
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let template: String = name
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        by_template
            .entry(format!("-G:{template}"))
            .or_default()
            .push((key.0, key.1, i));
    }
    for (template, mut members) in by_template {
        members.sort_unstable();
        for (ordinal, (_, _, i)) in members.into_iter().enumerate() {
            out[i] = Some((template.clone(), ordinal as u64));
        }
    }
    out
}
