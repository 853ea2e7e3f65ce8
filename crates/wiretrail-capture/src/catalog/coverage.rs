//! From when to when a node has every packet: spans, gaps, overlaps.
//!
//! A file covers `[first, last]` of its packets. Consecutive rotations leave
//! a short packet-free stretch between one file's last packet and the next
//! file's first: that is still covered when the two are numbered neighbours
//! of one rotation (dumpcap ring `#7` then `#8`, tcpdump `-C` `.pcap3` then
//! `.pcap4`) or when the stretch is at most the join tolerance. Anything
//! else is a gap, and a gap means "not captured", never "no packets".

use crate::obs::Nanos;
use serde::{Deserialize, Serialize};

/// One file's contribution to coverage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileSpan {
    pub start: Nanos,
    pub end: Nanos,
    /// (rotation series, ordinal): consecutive ordinals of one series are
    /// rotation neighbours (see `series`).
    pub seq: Option<(usize, u64)>,
    /// Index into the node's file list.
    pub file: usize,
}

/// A stretch between two files that no capture covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Last packet before the gap.
    pub from: Nanos,
    /// First packet after the gap.
    pub to: Nanos,
    /// Index (into the node's files) of the file before and after.
    pub before: usize,
    pub after: usize,
}

/// Two files whose spans overlap (two capture processes, a copied file, or
/// a ring that restarted): packets there may appear twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub from: Nanos,
    pub to: Nanos,
    pub a: usize,
    pub b: usize,
}

/// The answer to "does this node's capture cover `[since, until]`?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "coverage", rename_all = "snake_case")]
pub enum Coverage {
    /// Every instant of the window is inside a covered span.
    Full,
    /// Some of it is: `missing` lists the uncovered stretches (inclusive
    /// bounds clipped to the window).
    Partial { missing: Vec<(Nanos, Nanos)> },
    /// No capture of this node covers any of it: absence of packets there
    /// says nothing.
    NotCovered,
}

/// Spans, gaps and overlaps of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCoverage {
    /// Disjoint covered spans, in time order.
    pub spans: Vec<(Nanos, Nanos)>,
    pub gaps: Vec<Gap>,
    pub overlaps: Vec<Overlap>,
}

/// Builds a node's coverage. `join_gap` is the longest packet-free stretch
/// between two files that still counts as continuous capture.
pub(crate) fn build(mut files: Vec<FileSpan>, join_gap: Nanos) -> NodeCoverage {
    files.sort_by_key(|f| (f.start, f.end, f.file));
    let mut out = NodeCoverage::default();
    // The file reaching furthest so far, for overlap and gap checks.
    let mut reach: Option<FileSpan> = None;
    for f in files {
        let Some(r) = reach else {
            out.spans.push((f.start, f.end));
            reach = Some(f);
            continue;
        };
        if f.start <= r.end {
            out.overlaps.push(Overlap {
                from: f.start,
                to: f.end.min(r.end),
                a: r.file,
                b: f.file,
            });
        } else {
            let neighbours =
                matches!((r.seq, f.seq), (Some((ga, a)), Some((gb, b))) if ga == gb && b == a + 1);
            if !neighbours && f.start - r.end > join_gap {
                out.gaps.push(Gap {
                    from: r.end,
                    to: f.start,
                    before: r.file,
                    after: f.file,
                });
                out.spans.push((f.start, f.end));
            }
        }
        let last = out
            .spans
            .last_mut()
            .expect("a span was pushed for the first file");
        last.1 = last.1.max(f.end);
        if f.end > r.end {
            reach = Some(f);
        }
    }
    out
}

/// Takes the stretch strictly between `lost.0` and `lost.1` out of the
/// disjoint sorted `spans`: a span through it keeps its two ends.
pub(crate) fn subtract(spans: &mut Vec<(Nanos, Nanos)>, lost: (Nanos, Nanos)) {
    let (a, b) = lost;
    if b.saturating_sub(a) < 2 {
        return;
    }
    let (cut_from, cut_to) = (a + 1, b - 1);
    let mut out = Vec::with_capacity(spans.len() + 1);
    for &(s, e) in spans.iter() {
        if e < cut_from || s > cut_to {
            out.push((s, e));
            continue;
        }
        if s < cut_from {
            out.push((s, a));
        }
        if e > cut_to {
            out.push((b, e));
        }
    }
    *spans = out;
}

/// Clips `[since, until]` against disjoint sorted `spans`.
pub(crate) fn covered(spans: &[(Nanos, Nanos)], since: Nanos, until: Nanos) -> Coverage {
    let mut missing = Vec::new();
    let mut cursor = since;
    let mut any = false;
    for &(s, e) in spans {
        if e < cursor {
            continue;
        }
        if s > until {
            break;
        }
        any = true;
        if s > cursor {
            missing.push((cursor, s - 1));
        }
        cursor = e.saturating_add(1);
        if cursor > until {
            break;
        }
    }
    if cursor <= until {
        missing.push((cursor, until));
    }
    match (any, missing.is_empty()) {
        (false, _) => Coverage::NotCovered,
        (true, true) => Coverage::Full,
        (true, false) => Coverage::Partial { missing },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: Nanos, end: Nanos, file: usize, seq: Option<u64>) -> FileSpan {
        FileSpan {
            start,
            end,
            seq: seq.map(|s| (0, s)),
            file,
        }
    }

    #[test]
    fn joins_gaps_and_overlaps() {
        let c = build(
            vec![
                span(0, 100, 0, None),
                span(105, 200, 1, None),     // within tolerance
                span(500, 600, 2, Some(1)),  // real gap
                span(900, 1000, 3, Some(2)), // numbered neighbour: joined
                span(950, 1100, 4, None),    // overlap
            ],
            10,
        );
        assert_eq!(c.spans, vec![(0, 200), (500, 1100)]);
        assert_eq!(
            c.gaps,
            vec![Gap {
                from: 200,
                to: 500,
                before: 1,
                after: 2
            }]
        );
        assert_eq!(
            c.overlaps,
            vec![Overlap {
                from: 950,
                to: 1000,
                a: 3,
                b: 4
            }]
        );
    }

    #[test]
    fn losses_are_taken_out() {
        let mut spans = vec![(0, 100), (200, 300)];
        subtract(&mut spans, (50, 60));
        assert_eq!(spans, vec![(0, 50), (60, 100), (200, 300)]);
        subtract(&mut spans, (90, 250));
        assert_eq!(spans, vec![(0, 50), (60, 90), (250, 300)]);
        subtract(&mut spans, (Nanos::MIN, 10));
        assert_eq!(spans, vec![(10, 50), (60, 90), (250, 300)]);
        subtract(&mut spans, (280, Nanos::MAX));
        assert_eq!(spans, vec![(10, 50), (60, 90), (250, 280)]);
        // Nothing strictly between: nothing taken.
        subtract(&mut spans, (20, 21));
        assert_eq!(spans, vec![(10, 50), (60, 90), (250, 280)]);
    }

    #[test]
    fn window_coverage() {
        let spans = [(0, 100), (200, 300)];
        assert_eq!(covered(&spans, 10, 90), Coverage::Full);
        assert_eq!(covered(&spans, 400, 500), Coverage::NotCovered);
        assert_eq!(covered(&spans, 120, 150), Coverage::NotCovered);
        assert_eq!(
            covered(&spans, 50, 250),
            Coverage::Partial {
                missing: vec![(101, 199)]
            }
        );
        assert_eq!(
            covered(&spans, 250, 350),
            Coverage::Partial {
                missing: vec![(301, 350)]
            }
        );
        assert_eq!(
            covered(&spans, -5, 5),
            Coverage::Partial {
                missing: vec![(-5, -1)]
            }
        );
        assert_eq!(covered(&[], 0, 1), Coverage::NotCovered);
    }
}
