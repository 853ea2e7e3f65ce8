//! Indexing one capture file: one sequential read that counts packets,
//! collects link types and the time span, drops a checkpoint about every
//! `index_every` bytes, and records every damaged stretch with the packet
//! times around it (what a corrupt block or a broken stream cost).
//!
//! A plain file that only grew since it was indexed (the newest rotation,
//! still being written) is not read again from the top: the scan resumes at
//! its last checkpoint, after checking that the file still starts with the
//! same bytes (tcpdump `-W` reuses names for new files).

use super::probe::{blank, unopenable, Cost};
use super::{Damage, FileEntry, IndexPoint, Known};
use crate::catalog::cache::{head_print, CacheKey, HEAD_BYTES};
use crate::problem::{CaptureProblem, LossReason, ProblemKind};
use crate::read::{CaptureReader, Compression, ReadError};
use crate::time::Timestamp;
use std::collections::BTreeSet;
use std::path::Path;

/// Stop a file after this many corrupt records in a row: it is not a
/// capture any more, and the reader must not spin on it.
pub(crate) const MAX_ERRORS_IN_A_ROW: usize = 64;

/// Problems kept per file; the rest are counted in one line.
const MAX_PROBLEMS: usize = 20;

/// Whether `old` (an entry for the same path) can be extended instead of
/// rebuilt: same plain file, grown, same first bytes.
pub(crate) fn can_resume(old: &FileEntry, key: &CacheKey) -> bool {
    old.known == Known::Scanned
        && old.compression == Some(Compression::None)
        && old.size < key.size
        && !old.index.is_empty()
        && old
            .head
            .is_some_and(|(len, h)| head_print(&key.path, len as usize) == Some((len, h)))
}

/// Reads `path` (from the top, or from `resume`'s last checkpoint) and
/// builds its entry.
pub(crate) fn index_file(
    path: &Path,
    key: Option<&CacheKey>,
    index_every: u64,
    resume: Option<FileEntry>,
) -> (FileEntry, Cost) {
    if let (Some(old), Some(k)) = (resume, key) {
        let at = old.index.last().expect("can_resume checked").at.clone();
        match CaptureReader::open_at(path, &at) {
            Ok(rd) => {
                tracing::debug!(
                    "{}: grew from {} to {} bytes; indexing from byte {}",
                    path.display(),
                    old.size,
                    k.size,
                    at.offset
                );
                let mut entry = old;
                entry.size = k.size;
                entry.mtime = k.mtime;
                entry.packets = Some(at.frame - 1);
                // The re-read stretch reports its own damage again.
                entry.damage.retain(|d| d.offset < start_of(&at));
                let first_new = entry.index.len();
                let start = at.offset;
                return scan(
                    rd,
                    entry,
                    first_new,
                    start + index_every,
                    index_every,
                    start,
                );
            }
            Err(e) => tracing::debug!("{e}; indexing {} from the top", path.display()),
        }
    }
    let mut entry = blank(path, key);
    let rd = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            unopenable(&mut entry, &e);
            return (entry, Cost::default());
        }
    };
    entry.format = Some(rd.format());
    entry.compression = Some(rd.compression());
    if entry.compression == Some(Compression::None) {
        entry.head = head_print(path, HEAD_BYTES.min(entry.size as usize));
    }
    scan(rd, entry, 0, index_every, index_every, 0)
}

/// The sequential read shared by fresh and resumed indexing. Index points
/// before `first_new` exist already (a resumed scan): their `min_ts_from`
/// is lowered by whatever the re-read tail holds.
fn scan(
    mut rd: CaptureReader,
    mut entry: FileEntry,
    first_new: usize,
    mut next_mark: u64,
    index_every: u64,
    start: u64,
) -> (FileEntry, Cost) {
    let path = rd.path().to_path_buf();
    let mut linktypes: BTreeSet<u16> = entry.linktypes.iter().copied().collect();
    let (mut min_ts, mut max_ts) = (
        entry.first_ts.unwrap_or(Timestamp::MAX),
        entry.last_ts.unwrap_or(Timestamp::MIN),
    );
    // Min packet time of each stretch between consecutive new points.
    let mut seg_min: Vec<Timestamp> = Vec::new();
    let mut cur_seg_min = Timestamp::MAX;
    let mut errors_in_a_row = 0;
    let mut packets = 0u64;
    let mut errors = 0usize;
    // Time of the last packet read, to bound a damaged stretch; and whether
    // the newest damage still waits for the first packet after it.
    let mut last_seen: Option<Timestamp> = entry.last_ts;
    let mut open_damage = false;
    loop {
        let (offset, ts) = match rd.next_record() {
            None => break,
            Some(Err(e)) => {
                errors += 1;
                if entry.problems.len() < MAX_PROBLEMS {
                    entry.problems.push(
                        CaptureProblem::new(
                            ProblemKind::Undecodable,
                            path.display().to_string(),
                            problem_text(&e),
                        )
                        .at(e.offset()),
                    );
                }
                // Consecutive errors are one damaged stretch.
                if !open_damage {
                    entry.damage.push(Damage {
                        offset: e.offset(),
                        reason: match e {
                            ReadError::Decompress { .. } => LossReason::Truncated,
                            ReadError::Io { .. } => LossReason::Unreadable,
                            _ => LossReason::Corrupt,
                        },
                        after: last_seen,
                        before: None,
                        detail: problem_text(&e),
                    });
                    open_damage = true;
                }
                errors_in_a_row += 1;
                if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
                    entry.problems.push(
                        CaptureProblem::new(
                            ProblemKind::Undecodable,
                            path.display().to_string(),
                            format!("gave up after {MAX_ERRORS_IN_A_ROW} corrupt records in a row: the rest of the file is not read"),
                        )
                        .at(e.offset()),
                    );
                    break;
                }
                continue;
            }
            Some(Ok(r)) => {
                errors_in_a_row = 0;
                linktypes.insert(r.linktype);
                (r.offset, r.ts_known.then_some(r.ts))
            }
        };
        packets += 1;
        if let Some(ts) = ts {
            if open_damage {
                if let Some(d) = entry.damage.last_mut() {
                    d.before = Some(ts);
                }
                open_damage = false;
            }
            last_seen = Some(ts);
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
            cur_seg_min = cur_seg_min.min(ts);
        }
        // A point goes after the first record starting at or past the
        // mark; the next mark counts from that point. (A resumed scan thus
        // places exactly the points a fresh one would.)
        if offset >= next_mark {
            let at = rd.checkpoint();
            next_mark = at.offset + index_every;
            entry.index.push(IndexPoint {
                at,
                max_ts_before: max_ts,
                min_ts_from: Timestamp::MAX,
            });
            seg_min.push(cur_seg_min);
            cur_seg_min = Timestamp::MAX;
        }
    }
    seg_min.push(cur_seg_min);
    // min_ts_from of new point k: min over the stretches after it.
    let mut suffix = Timestamp::MAX;
    for (k, p) in entry.index[first_new..].iter_mut().enumerate().rev() {
        suffix = suffix.min(seg_min[k + 1]);
        p.min_ts_from = suffix;
    }
    let from_start = suffix.min(seg_min[0]);
    for p in &mut entry.index[..first_new] {
        p.min_ts_from = p.min_ts_from.min(from_start);
    }
    entry.packets = Some(entry.packets.unwrap_or(0) + packets);
    entry.linktypes = linktypes.into_iter().collect();
    if min_ts <= max_ts {
        entry.first_ts = Some(min_ts);
        entry.last_ts = Some(max_ts);
    }
    if errors > MAX_PROBLEMS {
        entry.problems.push(CaptureProblem::new(
            ProblemKind::Undecodable,
            path.display().to_string(),
            format!(
                "{errors} corrupt records or blocks in all (the first {MAX_PROBLEMS} are listed)"
            ),
        ));
    }
    // A resumed scan re-reads the old tail: keep each problem once.
    let mut seen = Vec::new();
    entry.problems.retain(|p| {
        let new = !seen.contains(p);
        if new {
            seen.push(p.clone());
        }
        new
    });
    entry.known = Known::Scanned;
    entry.truncated_tail = rd.truncated_tail();
    if let Some(at) = entry.truncated_tail {
        tracing::debug!(
            "{}: partial record at byte {at} (still being written?); indexed up to it",
            path.display()
        );
    }
    let cost = Cost {
        bytes: rd.bytes_consumed().saturating_sub(start),
        packets,
    };
    (entry, cost)
}

/// Byte offset a checkpoint resumes at.
fn start_of(at: &crate::read::Checkpoint) -> u64 {
    at.offset
}

/// The error's message without the path (the problem names the file).
fn problem_text(e: &ReadError) -> String {
    let full = e.to_string();
    let prefix = format!("{}: ", e.path().display());
    full.strip_prefix(&prefix)
        .map_or(full.clone(), str::to_string)
}
