//! Which parts of which files to read for a set of windows.
//!
//! A file is read only if its packet span meets some query window (with
//! slack). Inside it, the sparse index gives, per window, the last
//! checkpoint before which every packet is earlier than the window, and the
//! first one after which every packet is later; windows whose stretches
//! touch are merged, so each byte is read at most once for all queries.

use crate::catalog::FileEntry;
use crate::read::{Checkpoint, Compression};
use crate::time::Timestamp;

/// A stretch of one file to read: from `start` (or the top) until the
/// record numbered `stop_frame` (or the end).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Range {
    pub start: Option<Checkpoint>,
    pub stop_frame: Option<u64>,
}

impl Range {
    pub fn start_frame(&self) -> u64 {
        self.start.as_ref().map_or(1, |c| c.frame)
    }
}

/// The ranges of `file` to read for `windows` (already widened by slack),
/// in file order and disjoint.
pub(crate) fn ranges(file: &FileEntry, windows: &[(Timestamp, Timestamp)]) -> Vec<Range> {
    let seekable = file.compression == Some(Compression::None);
    let mut rs: Vec<Range> = windows
        .iter()
        .map(|&(since, until)| {
            let start = if seekable {
                file.seek_point(since).map(|p| p.at.clone())
            } else {
                None
            };
            let from = start.as_ref().map_or(0, |c| c.frame);
            let stop_frame = file.stop_point(from, until).map(|p| p.at.frame);
            Range { start, stop_frame }
        })
        .collect();
    rs.sort_by_key(Range::start_frame);
    let mut out: Vec<Range> = Vec::with_capacity(rs.len());
    for r in rs {
        if let Some(last) = out.last_mut() {
            match last.stop_frame {
                None => continue,
                Some(stop) if r.start_frame() <= stop => {
                    last.stop_frame = r.stop_frame.map(|s| s.max(stop));
                    continue;
                }
                Some(_) => {}
            }
        }
        out.push(r);
    }
    out
}

/// Cuts plain-file ranges at index points at least `min_bytes` apart, so
/// that one large file is read by several threads; each piece stops where
/// the next begins. Compressed files cannot seek and stay whole.
pub(crate) fn pieces(file: &FileEntry, ranges: Vec<Range>, min_bytes: u64) -> Vec<Range> {
    if file.compression != Some(Compression::None) {
        return ranges;
    }
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let mut cut_at = r.start.as_ref().map_or(0, |c| c.offset);
        let mut cur = Range {
            start: r.start.clone(),
            stop_frame: r.stop_frame,
        };
        for p in &file.index {
            let inside =
                p.at.frame > cur.start_frame() && r.stop_frame.is_none_or(|s| p.at.frame < s);
            if inside && p.at.offset >= cut_at + min_bytes {
                let next = Range {
                    start: Some(p.at.clone()),
                    stop_frame: r.stop_frame,
                };
                cur.stop_frame = Some(p.at.frame);
                out.push(std::mem::replace(&mut cur, next));
                cut_at = p.at.offset;
            }
        }
        out.push(cur);
    }
    out
}
