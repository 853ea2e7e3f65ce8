//! Rotation series: which of a node's files were written one after the
//! other by one capture process, in which order, which consecutive ones are
//! neighbours (nothing between them), and which members are missing.
//!
//! Names only say this; packets say when. So names order the files and
//! tell neighbours apart from holes, and packet times (in `coverage`) decide
//! what is covered.
//!
//! - Numbered rotations (tcpdump `-C`: `t.pcap`, `t.pcap1`, ...; dumpcap
//!   rings `p_00007_<time>.pcapng`) are in number order, and consecutive
//!   numbers are neighbours. A number missing in the middle is a missing
//!   rotation (deleted). tcpdump `-W` rings reuse numbers: when the packet
//!   times of the members fall once along the numbers, the series is read
//!   from that point on (the oldest surviving file first), and the wrap from
//!   the highest number to the lowest is not a hole.
//! - Timed rotations (tcpdump `-G`, strftime or `%s` names) of one name
//!   template are in name-time order. tcpdump opens the next file only when
//!   the first packet after the period arrives, so names drift by up to a
//!   second or so per period: consecutive names less than 1.5 periods apart
//!   are neighbours (the period is the smallest step seen). A longer step
//!   whose packets do not run on from one file into the next means a
//!   rotation is missing: deleted, or tcpdump captured nothing in that
//!   period — which names cannot tell apart, so the stretch is a named gap,
//!   never covered. Unless no file fits there: a period is at least as
//!   long as the longest stretch of packets one file holds, and a deleted
//!   file needs two periods between its neighbours' names; a shorter step
//!   is only a period without packets (tcpdump opens a file when a packet
//!   arrives). With two files left there is one step only: a deleted
//!   file between them cannot be seen.

use super::names::NameHint;
use super::FileEntry;
use crate::time::{Duration, Timestamp};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One series: its members in rotation order.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Indices into the node's files, in rotation order.
    pub members: Vec<usize>,
    /// `holes[k]`: what is missing between `members[k]` and `members[k+1]`
    /// (`None`: they are neighbours).
    pub holes: Vec<Option<Hole>>,
}

/// Rotations missing between two members.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hole {
    /// The (first) missing file's name, as the rotation would have named it.
    pub file: PathBuf,
    /// "t.pcap3" or "t.pcap3 .. t.pcap5 (3 files)", or for timed series
    /// "no file between be1-1700.pcap and be1-1900.pcap".
    pub what: String,
}

/// Every series (two members or more) among `files`.
pub(crate) fn series(files: &[FileEntry], join_gap: Duration) -> Vec<Series> {
    let mut numbered: BTreeMap<(PathBuf, String), Vec<usize>> = BTreeMap::new();
    let mut timed: BTreeMap<(PathBuf, String), Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let dir = f.path.parent().map(Path::to_path_buf).unwrap_or_default();
        match &f.hint {
            NameHint::DumpcapRing { prefix, .. } => numbered
                .entry((dir, format!("ring:{prefix}")))
                .or_default()
                .push(i),
            NameHint::Numbered { base, .. } => numbered
                .entry((dir, format!("num:{base}")))
                .or_default()
                .push(i),
            NameHint::Strftime { .. } | NameHint::EpochSeconds { .. } => {
                timed.entry((dir, template(&f.path))).or_default().push(i)
            }
            NameHint::Unknown => {}
        }
    }
    let mut out = Vec::new();
    for (_, members) in numbered {
        if members.len() >= 2 {
            out.push(numbered_series(files, members));
        }
    }
    for (_, members) in timed {
        if members.len() >= 2 {
            out.push(timed_series(files, members, join_gap));
        }
    }
    out
}

/// The file name with every digit run blanked: one `-G` template.
fn template(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

fn seq(f: &FileEntry) -> u64 {
    f.hint.seq().unwrap_or(0)
}

fn numbered_series(files: &[FileEntry], mut members: Vec<usize>) -> Series {
    members.sort_by_key(|&i| (seq(&files[i]), files[i].path.clone()));
    // A ring that wrapped: the times drop once along the numbers.
    let timed: Vec<(usize, Timestamp)> = members
        .iter()
        .enumerate()
        .filter_map(|(k, &i)| files[i].first_ts.map(|t| (k, t)))
        .collect();
    let drops: Vec<usize> = timed
        .windows(2)
        .filter(|w| w[1].1 < w[0].1)
        .map(|w| w[1].0)
        .collect();
    if drops.len() == 1 {
        members.rotate_left(drops[0]);
    }
    let holes = members
        .windows(2)
        .map(|w| {
            let (a, b) = (&files[w[0]], &files[w[1]]);
            let (sa, sb) = (seq(a), seq(b));
            // sb < sa: the wrap of a ring, not a hole.
            (sb > sa + 1).then(|| numbered_hole(b, sa + 1, sb - 1))
        })
        .collect();
    Series { members, holes }
}

/// The name `b` would have had with number `k` (same zero padding).
fn renumbered(b: &FileEntry, k: u64) -> PathBuf {
    let name = b
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = match &b.hint {
        NameHint::DumpcapRing { prefix, .. } => {
            // prefix_NNNNN_<time>.ext: the time of a missing file is unknown.
            let rest = &name[prefix.len() + 1..];
            let width = rest.find('_').unwrap_or(5);
            let ext = name.split_once('.').map_or("", |(_, e)| e);
            format!("{prefix}_{k:0width$}_*.{ext}")
        }
        NameHint::Numbered { base, .. } => {
            // base + number (+ a compression suffix the missing file may
            // or may not have had), zero-padded like its neighbour.
            let digits = name
                .get(base.len()..)
                .unwrap_or("")
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let padded = name.as_bytes().get(base.len()) == Some(&b'0') && digits > 1;
            if padded {
                format!("{base}{k:0digits$}")
            } else {
                format!("{base}{k}")
            }
        }
        _ => format!("{name}#{k}"),
    };
    b.path.with_file_name(new)
}

fn numbered_hole(b: &FileEntry, from: u64, to: u64) -> Hole {
    let first = renumbered(b, from);
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let what = if from == to {
        name(&first)
    } else {
        format!(
            "{} .. {} ({} files)",
            name(&first),
            name(&renumbered(b, to)),
            to - from + 1
        )
    };
    Hole { file: first, what }
}

/// Name time in seconds (local wall time for strftime names: only
/// differences are used) and the `-C` number within it.
fn name_time(f: &FileEntry) -> (i64, u64) {
    match &f.hint {
        NameHint::Strftime { at, seq } => (at.and_utc().timestamp(), seq.unwrap_or(0)),
        NameHint::EpochSeconds { secs, seq } => (*secs, seq.unwrap_or(0)),
        _ => (0, 0),
    }
}

fn timed_series(files: &[FileEntry], mut members: Vec<usize>, join_gap: Duration) -> Series {
    members.sort_by_key(|&i| (name_time(&files[i]), files[i].path.clone()));
    let steps: Vec<i64> = members
        .windows(2)
        .map(|w| name_time(&files[w[1]]).0 - name_time(&files[w[0]]).0)
        .collect();
    // The period: the smallest step between names. (Not the files' own
    // packet spans: a quiet node's files hold a few seconds of a longer
    // period.) Two files alone give one step, which is the period as far
    // as names can tell: a file deleted between the only two is not seen.
    let period = steps.iter().copied().filter(|&d| d > 0).min().unwrap_or(0);
    // The longest stretch of packets in one file: the period is at least
    // that (tcpdump rotates once a period has passed since it opened the
    // file), so a file deleted between two names needs twice that between
    // them. A shorter step is a period without packets (tcpdump opens the
    // next file only when a packet arrives), not a lost file. Only spans
    // read from packets count: a compressed file's head says nothing of
    // its end.
    let longest_file = members
        .iter()
        .filter(|&&i| matches!(files[i].known, super::Known::Probed | super::Known::Scanned))
        .filter_map(|&i| {
            Some(
                files[i]
                    .last_ts?
                    .saturating_duration_since(files[i].first_ts?),
            )
        })
        .max()
        .unwrap_or(Duration::ZERO);
    let holes = members
        .windows(2)
        .zip(&steps)
        .map(|(w, &d)| {
            let (a, b) = (&files[w[0]], &files[w[1]]);
            // Packets that run on from one file into the next: nothing
            // missing, whatever the names say.
            let continuous = match (a.covered_span(), b.first_ts) {
                (Some((_, end)), Some(start)) => start.saturating_duration_since(end) <= join_gap,
                _ => false,
            };
            // 1.5 periods or more between names: a missing slot.
            // Names are whole seconds: the openings were up to a second
            // further apart than their names say.
            let file_fits =
                Duration::from_secs(1) * u64::try_from(d + 1).unwrap_or(0) >= longest_file * 2;
            (period > 0 && 2 * d >= 3 * period && file_fits && !continuous).then(|| {
                let name = |f: &FileEntry| {
                    f.path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                let slots = d / period - 1;
                Hole {
                    file: b.path.with_file_name(format!("(between {} and {})", name(a), name(b))),
                    what: format!(
                        "no rotation file between {} and {} ({} period(s) of {}s): deleted, or nothing was captured then",
                        name(a),
                        name(b),
                        slots.max(1),
                        period
                    ),
                }
            })
        })
        .collect();
    Series { members, holes }
}
