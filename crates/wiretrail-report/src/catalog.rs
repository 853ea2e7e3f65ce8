//! Renderings of a capture catalog and of one extraction, for
//! `wiretrail capture index|extract`: aligned text for people and the JSON
//! summary of an extraction.
//!
//! Like the report renderers, this module decides nothing: spans, gaps,
//! overlaps, losses and coverage come from `wiretrail_capture::catalog`.
//! File and node names come from the outside world and go through
//! [`text::visible`] before they reach a terminal.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::net::SocketAddr;

use chrono::DateTime;
use chrono_tz::Tz;
use wiretrail_capture::catalog::{Catalog, Coverage, FileEntry, Known, NodeCatalog};
use wiretrail_capture::extract::{Extraction, NodeStats};
use wiretrail_capture::problem::ProblemKind;
use wiretrail_capture::read::{Compression, Format};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};

use crate::describe::human_bytes;
use crate::text;

/// `capture index`: one summary line, then per node its files (format,
/// link types, packets, span), its coverage, gaps, overlaps, losses and
/// problems. Times in `tz`, else UTC.
pub fn render_catalog_text(cat: &Catalog, tz: Option<Tz>, out: &mut dyn Write) -> io::Result<()> {
    let st = cat.stats();
    writeln!(
        out,
        "{} files: {} from the cache, {} indexed, {} probed ({} read); cache {}",
        st.files,
        st.from_cache,
        st.indexed,
        st.probed,
        human_bytes(st.bytes_read),
        cache_text(cat)
    )?;
    for n in cat.nodes() {
        node_text(out, n, tz)?;
    }
    Ok(())
}

/// What `capture index --watch` says about a file it had not seen, or saw
/// grow, since its last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    New,
    Grew,
}

/// `capture index --watch`: one line for a new or grown file.
pub fn render_file_change(
    node: &NodeCatalog,
    f: &FileEntry,
    change: FileChange,
    tz: Option<Tz>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let what = match change {
        FileChange::New => "new",
        FileChange::Grew => "grew",
    };
    writeln!(
        out,
        "{} {}: {what}, {} indexed{}",
        text::visible(&node.name),
        file_name(f),
        human_bytes(f.size),
        f.last_ts
            .map(|t| format!(", up to {}", fmt_ts(t, tz)))
            .unwrap_or_default()
    )
}

/// `capture index --watch`: the line after the first round.
pub fn render_watch_start(cat: &Catalog, out: &mut dyn Write) -> io::Result<()> {
    let st = cat.stats();
    writeln!(
        out,
        "watching {} files of {} node(s): {} from the cache, {} indexed ({} read); cache {}",
        st.files,
        cat.nodes().len(),
        st.from_cache,
        st.indexed,
        human_bytes(st.bytes_read),
        cache_text(cat)
    )
}

/// `capture extract`: the window, then per node what was read and matched,
/// per query, what was skipped, lost, and every problem; last, how many
/// packets the pcapng holds.
pub fn render_extraction_text(
    cat: &Catalog,
    queries: &[FlowQuery],
    ex: &Extraction,
    written: u64,
    tz: Option<Tz>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(first) = queries.first() else {
        return writeln!(out, "no queries; wrote {written} packets");
    };
    let (since, until) = (first.since, first.until);
    writeln!(out, "window {} .. {}", fmt_ts(since, tz), fmt_ts(until, tz))?;
    for (n, st) in cat.nodes().iter().zip(&ex.stats) {
        extraction_node_text(out, n, st, queries, ex, tz)?;
    }
    for p in &ex.problems {
        writeln!(out, "problem: {}", text::visible(&p.to_string()))?;
    }
    writeln!(out, "wrote {written} packets")
}

fn extraction_node_text(
    out: &mut dyn Write,
    n: &NodeCatalog,
    st: &NodeStats,
    queries: &[FlowQuery],
    ex: &Extraction,
    tz: Option<Tz>,
) -> io::Result<()> {
    let (since, until) = (queries[0].since, queries[0].until);
    writeln!(
        out,
        "node {}: {} of {} files read, {} read, {} packets scanned, {} matched; window {}",
        text::visible(&n.name),
        st.files_read,
        st.files_total,
        human_bytes(st.bytes_read),
        st.packets_scanned,
        st.matched,
        coverage_text(&n.covered(since, until), tz)
    )?;
    // Per query: packets, and the distinct connections among them.
    let mut per: BTreeMap<usize, (u64, HashSet<(SocketAddr, SocketAddr)>)> = BTreeMap::new();
    for o in ex.packets.iter().filter(|o| *o.node == *n.name) {
        for &q in &o.queries {
            let e = per.entry(q).or_default();
            e.0 += 1;
            e.1.insert(o.proxy_backend());
        }
    }
    for (qi, q) in queries.iter().enumerate() {
        match per.get(&qi) {
            Some((k, conns)) => writeln!(
                out,
                "  {q}: {k} packets, {} connection 4-tuple(s)",
                conns.len()
            )?,
            None => writeln!(out, "  {q}: no packets")?,
        }
    }
    for (why, k) in &st.skipped {
        writeln!(out, "  skipped {k}: {why}")?;
    }
    if st.header_cut > 0 {
        writeln!(
            out,
            "  {} packets with TCP options cut by the snaplen (kept, flagged)",
            st.header_cut
        )?;
    }
    for l in &n.losses {
        writeln!(
            out,
            "  LOST: {}: {} ({})",
            text::visible(&l.file.display().to_string()),
            l.reason.as_str(),
            text::visible(&l.detail)
        )?;
    }
    Ok(())
}

/// `capture extract --format json`: the queries, the catalog's statistics,
/// per node what was read, its coverage of the window, losses and problems.
pub fn extraction_json(
    cat: &Catalog,
    queries: &[FlowQuery],
    ex: &Extraction,
    written: u64,
) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = cat
        .nodes()
        .iter()
        .zip(&ex.stats)
        .map(|(n, st)| {
            serde_json::json!({
                "stats": st,
                "coverage": queries.first().map(|q| n.covered(q.since, q.until)),
                "losses": n.losses,
                "problems": n.problems,
            })
        })
        .collect();
    serde_json::json!({
        "queries": queries,
        "catalog": cat.stats(),
        "nodes": nodes,
        "problems": ex.problems,
        "written": written,
    })
}

fn cache_text(cat: &Catalog) -> String {
    cat.cache_dir().map_or_else(
        || "off".to_string(),
        |d| text::visible(&d.display().to_string()).into_owned(),
    )
}

/// A capture time at microseconds, in `tz` (its abbreviation shown) or UTC.
fn fmt_ts(ns: Timestamp, tz: Option<Tz>) -> String {
    let (secs, nanos) = ns.as_secs_nanos();
    let t = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    match tz {
        Some(tz) => t
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S%.6f %Z")
            .to_string(),
        None => t.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string(),
    }
}

/// A bound of a lost span: `Timestamp::MIN`/`MAX` mean it is not known.
fn fmt_bound(ns: Timestamp, tz: Option<Tz>) -> String {
    if ns == Timestamp::MIN || ns == Timestamp::MAX {
        "(unbounded)".to_string()
    } else {
        fmt_ts(ns, tz)
    }
}

/// `12.345s`, `4m05s`, `2h30m`.
fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.3}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

fn file_name(f: &FileEntry) -> String {
    let name = f.path.file_name().map_or_else(
        || f.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    text::visible(&name).into_owned()
}

fn format_text(f: &FileEntry) -> String {
    let (Some(fm), Some(c)) = (f.format, f.compression) else {
        return "unreadable".to_string();
    };
    let fm = match fm {
        Format::PcapUs => "pcap-us",
        Format::PcapNs => "pcap-ns",
        Format::Pcapng => "pcapng",
    };
    let c = match c {
        Compression::None => "",
        Compression::Gzip => "+gz",
        Compression::Zstd => "+zst",
    };
    format!("{fm}{c}")
}

fn span_text(f: &FileEntry, tz: Option<Tz>) -> String {
    match (f.known, f.covered_span()) {
        (Known::Head, Some((a, _))) if f.until_next.is_none() => {
            format!("{} .. (end unknown until read)", fmt_ts(a, tz))
        }
        (Known::Head, Some((a, b))) => format!(
            "{} .. {} (until the next rotation)",
            fmt_ts(a, tz),
            fmt_ts(b, tz)
        ),
        (_, Some((a, b))) => format!(
            "{} .. {} ({})",
            fmt_ts(a, tz),
            fmt_ts(b, tz),
            fmt_dur(b.saturating_duration_since(a))
        ),
        (Known::Unread, None) => "UNREADABLE".to_string(),
        (_, None) => "no timestamped packets".to_string(),
    }
}

fn node_text(out: &mut dyn Write, n: &NodeCatalog, tz: Option<Tz>) -> io::Result<()> {
    let scanned = n.files.iter().filter(|f| f.packets.is_some()).count();
    let name = text::visible(&n.name);
    if scanned == n.files.len() {
        writeln!(
            out,
            "\nnode {name}: {} files, {} packets",
            n.files.len(),
            n.packets()
        )?;
    } else {
        writeln!(
            out,
            "\nnode {name}: {} files, {} packets in the {scanned} read whole (the others probed)",
            n.files.len(),
            n.packets()
        )?;
    }
    for f in &n.files {
        file_text(out, n, f, tz)?;
    }
    coverage_lines(out, n, tz)?;
    for l in &n.losses {
        let span = match l.span {
            Some((a, b)) => format!("{} .. {}", fmt_bound(a, tz), fmt_bound(b, tz)),
            None => "time unknown".to_string(),
        };
        writeln!(
            out,
            "  LOST:    {span} {}: {} ({})",
            text::visible(&l.file.display().to_string()),
            l.reason.as_str(),
            text::visible(&l.detail)
        )?;
    }
    for p in n
        .problems
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::UnusableSource | ProblemKind::Growing))
    {
        writeln!(
            out,
            "  problem: {}: {}",
            text::visible(&p.path),
            text::visible(&p.message)
        )?;
    }
    Ok(())
}

fn file_text(
    out: &mut dyn Write,
    n: &NodeCatalog,
    f: &FileEntry,
    tz: Option<Tz>,
) -> io::Result<()> {
    let pkts = f
        .packets
        .map_or_else(|| "probed".to_string(), |p| format!("{p} pkts"));
    let links: Vec<String> = f.linktypes.iter().map(u16::to_string).collect();
    writeln!(
        out,
        "  {:<40} {:>10} {:<14} link {:<7} {:>14}  {}",
        file_name(f),
        human_bytes(f.size),
        format_text(f),
        links.join(","),
        pkts,
        span_text(f, tz)
    )?;
    if let Some(at) = f.truncated_tail {
        let what = if n.files.get(n.growing.unwrap_or(usize::MAX)) == Some(f) {
            "still being written (read up to it)"
        } else {
            "the file was cut there"
        };
        writeln!(out, "      partial record at byte {at}: {what}")?;
    }
    for p in &f.problems {
        writeln!(out, "      problem: {}", text::visible(&p.message))?;
    }
    Ok(())
}

fn coverage_lines(out: &mut dyn Write, n: &NodeCatalog, tz: Option<Tz>) -> io::Result<()> {
    if n.coverage.spans.is_empty() {
        writeln!(out, "  coverage: NONE (no packets with timestamps: nothing about this node can be concluded)")?;
    }
    for &(a, b) in &n.coverage.spans {
        writeln!(
            out,
            "  covered: {} .. {} ({})",
            fmt_ts(a, tz),
            fmt_ts(b, tz),
            fmt_dur(b.saturating_duration_since(a))
        )?;
    }
    for g in &n.coverage.gaps {
        let (a, b) = (&n.files[g.before], &n.files[g.after]);
        span_of_two(
            out,
            "GAP:    ",
            (g.from, g.to),
            "between",
            (a, b),
            "not captured",
            tz,
        )?;
    }
    for o in &n.coverage.overlaps {
        let (a, b) = (&n.files[o.a], &n.files[o.b]);
        let what = "packets there may appear twice";
        span_of_two(out, "overlap:", (o.from, o.to), "in", (a, b), what, tz)?;
    }
    Ok(())
}

/// A coverage line about two files: a gap between them, or an overlap.
fn span_of_two(
    out: &mut dyn Write,
    label: &str,
    (from, to): (Timestamp, Timestamp),
    preposition: &str,
    (a, b): (&FileEntry, &FileEntry),
    what: &str,
    tz: Option<Tz>,
) -> io::Result<()> {
    writeln!(
        out,
        "  {label} {} .. {} ({}) {preposition} {} and {}: {what}",
        fmt_ts(from, tz),
        fmt_ts(to, tz),
        fmt_dur(to.saturating_duration_since(from)),
        file_name(a),
        file_name(b)
    )
}

fn coverage_text(c: &Coverage, tz: Option<Tz>) -> String {
    match c {
        Coverage::Full => "covered".to_string(),
        Coverage::NotCovered => {
            "NOT COVERED by any capture (no packets here means nothing)".to_string()
        }
        Coverage::Partial { missing } => {
            let m: Vec<String> = missing
                .iter()
                .map(|&(a, b)| format!("{} .. {}", fmt_ts(a, tz), fmt_ts(b, tz)))
                .collect();
            format!("PARTLY covered; not captured: {}", m.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_times_in_a_zone_or_utc() {
        let t = Timestamp::from_nanos(1_683_307_987_500_000_000);
        assert_eq!(fmt_ts(t, None), "2023-05-05 17:33:07.500000 UTC");
        assert_eq!(
            fmt_ts(t, Some(chrono_tz::Asia::Shanghai)),
            "2023-05-06 01:33:07.500000 CST"
        );
        assert_eq!(fmt_bound(Timestamp::MIN, None), "(unbounded)");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_dur(Duration::from_millis(1_500)), "1.500s");
        assert_eq!(fmt_dur(Duration::from_secs(245)), "4m05s");
        assert_eq!(fmt_dur(Duration::from_secs(9_000)), "2h30m");
    }
}
