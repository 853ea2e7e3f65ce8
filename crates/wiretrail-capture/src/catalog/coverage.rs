//! From when to when a node has every packet: spans, gaps, overlaps.
//!
//! A file covers `[first, last]` of its packets. Consecutive rotations leave
//! a short packet-free stretch between one file's last packet and the next
//! file's first: that is still covered when the two are numbered neighbours
//! of one rotation (dumpcap ring `#7` then `#8`, tcpdump `-C` `.pcap3` then
//! `.pcap4`) or when the stretch is at most the join tolerance. Anything
//! else is a gap, and a gap means "not captured", never "no packets".

use crate::time::{Duration, Timestamp};
use serde::{Deserialize, Serialize};

/// One file's contribution to coverage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileSpan {
    pub start: Timestamp,
    pub end: Timestamp,
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
    pub from: Timestamp,
    /// First packet after the gap.
    pub to: Timestamp,
    /// Index (into the node's files) of the file before and after.
    pub before: usize,
    pub after: usize,
}

/// Two files whose spans overlap (two capture processes, a copied file, or
/// a ring that restarted): packets there may appear twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub from: Timestamp,
    pub to: Timestamp,
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
    Partial {
        missing: Vec<(Timestamp, Timestamp)>,
    },
    /// No capture of this node covers any of it: absence of packets there
    /// says nothing.
    NotCovered,
}

/// Spans, gaps and overlaps of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCoverage {
    /// Disjoint covered spans, in time order.
    pub spans: Vec<(Timestamp, Timestamp)>,
    pub gaps: Vec<Gap>,
    pub overlaps: Vec<Overlap>,
}

/// Builds a node's coverage. `join_gap` is the longest packet-free stretch
/// between two files that still counts as continuous capture.
pub(crate) fn build(mut files: Vec<FileSpan>, join_gap: Duration) -> NodeCoverage {
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
            if !neighbours && f.start.saturating_duration_since(r.end) > join_gap {
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
pub(crate) fn subtract(spans: &mut Vec<(Timestamp, Timestamp)>, lost: (Timestamp, Timestamp)) {
    let (a, b) = lost;
    if b.saturating_duration_since(a) < Duration::NANOSECOND * 2 {
        return;
    }
    let (cut_from, cut_to) = (a + Duration::NANOSECOND, b - Duration::NANOSECOND);
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
pub(crate) fn covered(
    spans: &[(Timestamp, Timestamp)],
    since: Timestamp,
    until: Timestamp,
) -> Coverage {
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
            missing.push((cursor, s - Duration::NANOSECOND));
        }
        cursor = e + Duration::NANOSECOND;
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

    fn t(ns: i64) -> Timestamp {
        Timestamp::from_nanos(ns)
    }

    fn spans(v: &[(i64, i64)]) -> Vec<(Timestamp, Timestamp)> {
        v.iter().map(|&(a, b)| (t(a), t(b))).collect()
    }

    fn span(start: i64, end: i64, file: usize, seq: Option<u64>) -> FileSpan {
        FileSpan {
            start: t(start),
            end: t(end),
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
            Duration::from_nanos(10),
        );
        assert_eq!(c.spans, spans(&[(0, 200), (500, 1100)]));
        assert_eq!(
            c.gaps,
            vec![Gap {
                from: t(200),
                to: t(500),
                before: 1,
                after: 2
            }]
        );
        assert_eq!(
            c.overlaps,
            vec![Overlap {
                from: t(950),
                to: t(1000),
                a: 3,
                b: 4
            }]
        );
    }

    #[test]
    fn losses_are_taken_out() {
        let mut sp = spans(&[(0, 100), (200, 300)]);
        subtract(&mut sp, (t(50), t(60)));
        assert_eq!(sp, spans(&[(0, 50), (60, 100), (200, 300)]));
        subtract(&mut sp, (t(90), t(250)));
        assert_eq!(sp, spans(&[(0, 50), (60, 90), (250, 300)]));
        subtract(&mut sp, (Timestamp::MIN, t(10)));
        assert_eq!(sp, spans(&[(10, 50), (60, 90), (250, 300)]));
        subtract(&mut sp, (t(280), Timestamp::MAX));
        assert_eq!(sp, spans(&[(10, 50), (60, 90), (250, 280)]));
        // Nothing strictly between: nothing taken.
        subtract(&mut sp, (t(20), t(21)));
        assert_eq!(sp, spans(&[(10, 50), (60, 90), (250, 280)]));
    }

    #[test]
    fn window_coverage() {
        let sp = spans(&[(0, 100), (200, 300)]);
        assert_eq!(covered(&sp, t(10), t(90)), Coverage::Full);
        assert_eq!(covered(&sp, t(400), t(500)), Coverage::NotCovered);
        assert_eq!(covered(&sp, t(120), t(150)), Coverage::NotCovered);
        assert_eq!(
            covered(&sp, t(50), t(250)),
            Coverage::Partial {
                missing: vec![(t(101), t(199))]
            }
        );
        assert_eq!(
            covered(&sp, t(250), t(350)),
            Coverage::Partial {
                missing: vec![(t(301), t(350))]
            }
        );
        assert_eq!(
            covered(&sp, t(-5), t(5)),
            Coverage::Partial {
                missing: vec![(t(-5), t(-1))]
            }
        );
        assert_eq!(covered(&[], t(0), t(1)), Coverage::NotCovered);
    }
}
