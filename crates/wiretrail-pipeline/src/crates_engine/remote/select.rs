//! Which of a listing's files can hold packets of the windows, from the
//! listing alone: a rotated file's span ends at its mtime (the last packet
//! written) and starts after the previous file of the same series ended.
//! Which files are captures, and which belong to one series, are the
//! catalog's name rules ([`wiretrail_capture::catalog::names`]).

use super::listing::RemoteFile;
use std::collections::HashMap;
use std::path::Path;
use wiretrail_capture::catalog::names::{
    looks_like_capture_name, numbered_suffix, parse_hint, strip_compression, NameHint,
};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};

/// Windows per query, widened by `slack` and shifted to the node's clock.
pub fn node_windows(
    queries: &[FlowQuery],
    slack: Duration,
    offset_s: Option<f64>,
) -> Vec<(Timestamp, Timestamp)> {
    // Reference time minus the node's (signed, pinned) offset: the node's
    // clock. Truncated to the nanosecond.
    let o = offset_s.unwrap_or(0.0);
    let shift = Duration::from_secs_f64(o.abs());
    let to_node = |t: Timestamp| if o >= 0.0 { t - shift } else { t + shift };
    let mut w: Vec<(Timestamp, Timestamp)> = queries
        .iter()
        .map(|q| (to_node(q.since - slack), to_node(q.until + slack)))
        .collect();
    w.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (a, b) in w {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Files of one rotation series, by the catalog's name rules: a dumpcap
/// ring's prefix; a tcpdump `-C` base (`t.pcap`, `t.pcap1`, ...); a timed
/// (`-G`) name less its `-C` number; each with its digit runs blanked, so
/// names the rules cannot place (`cap-%H.pcap`) still group by template.
/// Compression is left out: the newest file of a series is often not
/// compressed yet.
fn series_key(name: &str) -> String {
    let plain = strip_compression(name);
    match parse_hint(Path::new(name)) {
        NameHint::DumpcapRing { prefix, .. } => format!("ring:{prefix}"),
        NameHint::Numbered { base, .. } => format!("num:{}", template(&base)),
        NameHint::Strftime { .. } | NameHint::EpochSeconds { .. } => {
            format!("time:{}", template(numbered_suffix(plain).0))
        }
        NameHint::Unknown => format!("other:{}", template(plain)),
    }
}

/// A name with every digit run blanked.
fn template(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// Looks like a capture file (plain or compressed pcap/pcapng, or tcpdump's
/// numbered `-C` suffixes), as the catalog decides.
pub fn is_capture_name(name: &str) -> bool {
    looks_like_capture_name(Path::new(name))
}

/// How long before its mtime a series' first file is assumed to start:
/// the median span of the others, or an hour when there are none.
fn typical_span(ends: &[Timestamp]) -> Duration {
    let mut d: Vec<Duration> = ends
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .filter(|d| !d.is_zero())
        .collect();
    d.sort();
    d.get(d.len() / 2)
        .copied()
        .unwrap_or(Duration::from_hours(1))
}

/// Pick the files whose span can meet a window, and the coverage the
/// listing shows. `mtime_slack` absorbs coarse mtimes (1 s on some systems).
pub fn select(
    files: &[RemoteFile],
    windows: &[(Timestamp, Timestamp)],
    mtime_slack: Duration,
) -> (Vec<RemoteFile>, Vec<(Timestamp, Timestamp)>) {
    let mut series: HashMap<String, Vec<&RemoteFile>> = HashMap::new();
    for f in files.iter().filter(|f| is_capture_name(&f.name)) {
        series.entry(series_key(&f.name)).or_default().push(f);
    }
    let mut chosen = Vec::new();
    let mut coverage = Vec::new();
    for (_, mut fs) in series {
        fs.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
        let ends: Vec<Timestamp> = fs.iter().map(|f| f.mtime).collect();
        let first_start = ends[0] - typical_span(&ends);
        for (i, f) in fs.iter().enumerate() {
            // A file may hold packets from the previous file's end (minus
            // slack) up to its own mtime (plus slack).
            let start = if i == 0 {
                Timestamp::MIN
            } else {
                ends[i - 1] - mtime_slack
            };
            let end = f.mtime + mtime_slack;
            if windows.iter().any(|&(a, b)| start <= b && end >= a) {
                chosen.push((*f).clone());
            }
            let cov_start = if i == 0 { first_start } else { ends[i - 1] };
            coverage.push((cov_start, f.mtime));
        }
    }
    chosen.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
    coverage.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (a, b) in coverage {
        match merged.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    (chosen, merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const SLACK: Duration = Duration::from_secs(2);

    fn w(a: i64, b: i64) -> (Timestamp, Timestamp) {
        (Timestamp::from_nanos(a), Timestamp::from_nanos(b))
    }

    fn f(name: &str, mtime_s: i64) -> RemoteFile {
        RemoteFile {
            name: name.into(),
            size: 100,
            mtime: Timestamp::from_nanos(mtime_s * S),
        }
    }

    #[test]
    fn selection_takes_only_overlapping_rotations() {
        // Hourly rotation: file k holds (k-1)h .. kh.
        let files: Vec<RemoteFile> = (1..=24)
            .map(|k| f(&format!("cap-{k:02}.pcap"), k * 3600))
            .chain([f("notes.txt", 5)])
            .collect();
        let (chosen, cov) = select(
            &files,
            &[w(5 * 3600 * S + 10 * S, 5 * 3600 * S + 70 * S)],
            SLACK,
        );
        let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["cap-06.pcap"]);
        assert_eq!(cov, vec![w(0, 24 * 3600 * S)]);
        // A window across a rotation takes both neighbours.
        let (chosen, _) = select(
            &files,
            &[w(6 * 3600 * S - 5 * S, 6 * 3600 * S + 5 * S)],
            SLACK,
        );
        assert_eq!(chosen.len(), 2);
        // Before the first file ends: only the first file can hold it.
        let (chosen, _) = select(&files, &[w(10 * S, 20 * S)], SLACK);
        assert_eq!(
            chosen.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["cap-01.pcap"]
        );
        // After the newest file's mtime: nothing.
        let (chosen, _) = select(&files, &[w(30 * 3600 * S, 31 * 3600 * S)], SLACK);
        assert!(chosen.is_empty());
    }

    /// The catalog's name rules group the series: a tcpdump `-C` series
    /// with its newest file not compressed yet, a dumpcap ring, timed
    /// names; a name they cannot place groups by its template.
    #[test]
    fn series_follow_the_catalogs_name_rules() {
        assert_eq!(series_key("t.pcap"), series_key("t.pcap1"));
        assert_eq!(series_key("t.pcap2.gz"), series_key("t.pcap3"));
        assert_eq!(
            series_key("eth0_00001_20230505173307.pcapng"),
            series_key("eth0_00002_20230505183307.pcapng")
        );
        assert_ne!(
            series_key("eth0_00001_20230505173307.pcapng"),
            series_key("eth1_00001_20230505173307.pcapng")
        );
        assert_eq!(
            series_key("be1-20230505-1700.pcap.gz"),
            series_key("be1-20230505-1800.pcap")
        );
        assert_eq!(series_key("cap-01.pcap"), series_key("cap-24.pcap"));
        assert_ne!(series_key("t.pcap1"), series_key("u.pcap1"));
        assert!(is_capture_name("ring_00012_20230505173307.pcapng"));
        assert!(is_capture_name("cap.pcap3"));
        assert!(is_capture_name("cap-1.pcap.zst"));
        assert!(!is_capture_name("README"));
    }

    /// A tcpdump `-C` series whose newest file is not compressed yet: the
    /// compressed ones are its predecessors, so a window before the newest
    /// file's span does not take it.
    #[test]
    fn a_series_compressed_but_for_its_newest_file_is_one_series() {
        let files = [
            f("t.pcap1.gz", 3600),
            f("t.pcap2.gz", 7200),
            f("t.pcap3", 10800),
        ];
        let (chosen, _) = select(&files, &[w(4000 * S, 4100 * S)], SLACK);
        assert_eq!(
            chosen.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["t.pcap2.gz"]
        );
    }

    #[test]
    fn windows_merge_and_shift() {
        let q = |a: i64, b: i64| {
            let (a, b) = w(a, b);
            FlowQuery::to_port(1, None, None, a, b)
        };
        let got = node_windows(
            &[q(100, 200), q(150, 300), q(1000, 1100)],
            Duration::from_nanos(10),
            Some(0.000_000_05),
        );
        assert_eq!(got, vec![w(40, 260), w(940, 1060)]);
        // A negative offset shifts the other way.
        let got = node_windows(&[q(100, 200)], Duration::ZERO, Some(-0.000_000_05));
        assert_eq!(got, vec![w(150, 250)]);
    }
}
