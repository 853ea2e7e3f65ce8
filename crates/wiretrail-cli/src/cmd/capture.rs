//! `wiretrail capture index|extract`: catalog each node's rotated captures,
//! and pull flows out of all of them into one pcapng.

use super::{CmdResult, EXIT_FOUND, EXIT_NONE};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use wiretrail_capture::catalog::{
    Catalog, CatalogOptions, Coverage, Detail, FileEntry, Known, NodeCatalog, NodeSpec,
};
use wiretrail_capture::extract::{extract, ExtractOptions, Extraction, ProgressEvent, ProgressFn};
use wiretrail_capture::pcapng::PcapngWriter;
use wiretrail_capture::problem::ProblemKind;
use wiretrail_capture::read::{Compression, Format};
use wiretrail_capture::{FlowQuery, Nanos, PacketObs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// Aligned text for people.
    Text,
    /// One JSON document.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    /// Index cache directory (default `$XDG_CACHE_HOME/wiretrail/catalog`,
    /// else `~/.cache/wiretrail/catalog`: the one `investigate` uses, so a
    /// catalog built here serves it); never written next to the captures.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Do not read or write the index cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Longest packet-free stretch between two rotations still counted as
    /// continuous capture, in seconds (numbered neighbours always join).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub join_gap: f64,
    /// Zone to print times in (and to read zone-less --since/--until in).
    #[arg(long, value_name = "ZONE", value_parser = parse_tz)]
    pub tz: Option<chrono_tz::Tz>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

#[derive(Debug, clap::Subcommand)]
pub enum CaptureCmd {
    /// Build or refresh the catalog of each node's rotated captures and show
    /// files, spans, gaps, overlaps, losses and coverage.
    ///
    /// Spans are learned by probing each file's first and last records (a
    /// few hundred KiB per file); `--full` reads every file end to end and
    /// indexes it, so that the first extraction after an alert reads only
    /// its window.
    Index {
        /// `NAME=DIR` (or `NAME=GLOB`, or `NAME=FILE`), one per node.
        #[arg(value_name = "NODE=DIR", required = true, value_parser = parse_node)]
        nodes: Vec<NodeSpec>,
        /// Scan and index every file (not only probe it).
        #[arg(long)]
        full: bool,
        /// Keep running and keep the catalogs current as files rotate in
        /// (implies --full): every new or grown file is indexed within
        /// --every seconds, so the first investigation after an alert finds
        /// its window already indexed. Stop with Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// With --watch: seconds between two looks at the directories.
        #[arg(long, value_name = "SECS", default_value_t = 10.0, requires = "watch")]
        every: f64,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Extract flows from every node's captures into one pcapng (one
    /// interface per node, packets in time order).
    Extract {
        /// `NAME=DIR` (or `NAME=GLOB`), one per node.
        #[arg(long = "node", value_name = "NAME=DIR", required = true, value_parser = parse_node)]
        nodes: Vec<NodeSpec>,
        /// An exact flow `PROXY_IP:PORT-BACKEND_IP:PORT` (IPv6 in brackets);
        /// the first socket is the proxy's side. `PROXY_IP:*-BACKEND_IP:PORT`
        /// leaves the proxy's port open: every connection from that address
        /// to the backend socket in the window.
        #[arg(long = "flow", value_name = "A:P-B:P", value_parser = parse_flow)]
        flows: Vec<(IpAddr, Option<u16>, SocketAddr)>,
        /// Any flow with this proxy (ephemeral) port.
        #[arg(long = "port", value_name = "P")]
        ports: Vec<u16>,
        /// Every connection to this backend socket `IP:PORT`, from any
        /// address and port (for errors whose log names no proxy port; keep
        /// the window tight).
        #[arg(long = "backend", value_name = "B:P")]
        backends: Vec<SocketAddr>,
        /// Window start: RFC 3339, `2023-05-05 17:33:07[.frac]` (with --tz),
        /// or epoch seconds.
        #[arg(long, value_name = "TIME")]
        since: String,
        /// Window end (inclusive), same forms as --since.
        #[arg(long, value_name = "TIME")]
        until: String,
        /// Widen the window by this many seconds on both sides (clock offsets).
        #[arg(long, value_name = "SECS", default_value_t = 0.0)]
        slack: f64,
        /// Output pcapng file; `-` writes it to stdout (the summary then goes
        /// to stderr).
        #[arg(short = 'w', long = "write", value_name = "FILE")]
        write: PathBuf,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
}

fn parse_tz(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("unknown IANA time zone {s:?} (e.g. UTC, Europe/Berlin, Asia/Shanghai)")
    })
}

fn parse_node(s: &str) -> Result<NodeSpec, String> {
    NodeSpec::parse_arg(s).map_err(|e| e.to_string())
}

fn parse_flow(s: &str) -> Result<(IpAddr, Option<u16>, SocketAddr), String> {
    let bad = || {
        format!("{s:?} is not PROXY_IP:PORT-BACKEND_IP:PORT (IPv6 as [addr]:port; PORT * for any)")
    };
    // IPv6 sockets are bracketed and bracketed addresses hold no '-'.
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a = a.trim();
    let (ip, port) = match a.strip_suffix(":*") {
        Some(ip) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            (ip.parse().map_err(|_| bad())?, None)
        }
        None => {
            let p: SocketAddr = a.parse().map_err(|_| bad())?;
            (p.ip(), Some(p.port()))
        }
    };
    Ok((ip, port, b.trim().parse().map_err(|_| bad())?))
}

/// RFC 3339, a zone-less `YYYY-mm-dd HH:MM:SS[.frac]` read in `tz`, or
/// epoch seconds (`1683307987`, `1683307987.25`).
fn parse_time(s: &str, tz: Option<chrono_tz::Tz>) -> Result<Nanos, String> {
    let s = s.trim();
    let to_ns = |t: DateTime<Utc>| {
        t.timestamp_nanos_opt()
            .ok_or_else(|| format!("{s:?} is out of range"))
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return to_ns(t.with_timezone(&Utc));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.is_empty() {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = secs
            .parse()
            .map_err(|_| format!("{s:?} is not epoch seconds"))?;
        let mut frac = frac.to_string();
        frac.truncate(9);
        while frac.len() < 9 {
            frac.push('0');
        }
        let frac: i64 = frac
            .parse()
            .map_err(|_| format!("{s:?} is not epoch seconds"))?;
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(frac))
            .ok_or_else(|| format!("{s:?} is out of range"));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, f) {
            let Some(tz) = tz else {
                return Err(format!("{s:?} names no zone: add --tz (e.g. --tz UTC or --tz Asia/Shanghai), or use RFC 3339"));
            };
            let t = tz.from_local_datetime(&naive).earliest().ok_or_else(|| {
                format!("{s:?} does not exist in {tz} (skipped by a clock change)")
            })?;
            return to_ns(t.with_timezone(&Utc));
        }
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339, `2023-05-05 17:33:07` with --tz, or epoch seconds"
    ))
}

fn build_catalog(
    nodes: &[NodeSpec],
    c: &CatalogArgs,
    detail: Detail,
) -> Result<Catalog, Box<dyn std::error::Error + Send + Sync>> {
    if !(c.join_gap.is_finite() && c.join_gap >= 0.0) {
        return Err(format!(
            "--join-gap {} must be a non-negative number of seconds",
            c.join_gap
        )
        .into());
    }
    let opts = CatalogOptions {
        cache_dir: c
            .cache
            .clone()
            .or_else(|| wiretrail_capture::catalog::default_cache_dir().map(|d| d.join("catalog"))),
        use_cache: !c.no_cache,
        join_gap: (c.join_gap * 1e9) as Nanos,
        detail,
        ..CatalogOptions::default()
    };
    let cat = Catalog::build_with(nodes, &opts)?;
    // Lost capture data and unusable sources are said at once, on stderr,
    // whatever the output format.
    for p in cat.problems() {
        match p.kind {
            ProblemKind::CaptureGap | ProblemKind::UnusableSource | ProblemKind::Cache => {
                tracing::warn!("{p}")
            }
            ProblemKind::Undecodable | ProblemKind::Growing => tracing::info!("{p}"),
        }
    }
    Ok(cat)
}

/// A node none of whose sources can be read is an error, unless another
/// node covers some of the window (then the warning above stands).
fn check_usable(
    cat: &Catalog,
    window: Option<(Nanos, Nanos)>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dead: Vec<&NodeCatalog> = cat.nodes().iter().filter(|n| !n.usable()).collect();
    if dead.is_empty() {
        return Ok(());
    }
    let others_cover = cat
        .nodes()
        .iter()
        .filter(|n| n.usable())
        .any(|n| match window {
            Some((a, b)) => n.covered(a, b) != Coverage::NotCovered,
            None => true,
        });
    if others_cover {
        return Ok(());
    }
    let why: Vec<String> = dead
        .iter()
        .map(|n| {
            let reasons: Vec<String> = n
                .problems
                .iter()
                .filter(|p| p.kind == ProblemKind::UnusableSource)
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect();
            format!("node {}: {}", n.name, reasons.join("; "))
        })
        .collect();
    Err(format!("no readable capture: {}", why.join(" | ")).into())
}

pub fn run(cmd: CaptureCmd) -> CmdResult {
    match cmd {
        CaptureCmd::Index {
            nodes,
            full: _,
            watch: true,
            every,
            catalog,
        } => watch(&nodes, &catalog, every),
        CaptureCmd::Index {
            nodes,
            full,
            watch: false,
            every: _,
            catalog,
        } => index(&nodes, &catalog, full),
        CaptureCmd::Extract {
            nodes,
            flows,
            ports,
            backends,
            since,
            until,
            slack,
            write,
            threads,
            catalog,
        } => {
            let since = parse_time(&since, catalog.tz)?;
            let until = parse_time(&until, catalog.tz)?;
            if until < since {
                return Err("--until is before --since".into());
            }
            if !(slack.is_finite() && slack >= 0.0) {
                return Err(
                    format!("--slack {slack} must be a non-negative number of seconds").into(),
                );
            }
            let mut queries: Vec<FlowQuery> = flows
                .iter()
                .map(|&(ip, port, b)| match port {
                    Some(p) => FlowQuery::to_port(p, Some(ip), Some(b), since, until),
                    None => FlowQuery::to_backend(Some(ip), b, since, until),
                })
                .collect();
            queries.extend(
                ports
                    .iter()
                    .map(|&p| FlowQuery::to_port(p, None, None, since, until)),
            );
            queries.extend(
                backends
                    .iter()
                    .map(|&b| FlowQuery::to_backend(None, b, since, until)),
            );
            if queries.is_empty() {
                return Err("name at least one --flow, --port or --backend".into());
            }
            let slack_ns = (slack * 1e9) as Nanos;
            let cat = build_catalog(&nodes, &catalog, Detail::for_queries(&queries, slack_ns))?;
            check_usable(&cat, Some((since - slack_ns, until + slack_ns)))?;
            // Progress as diagnostics (-v): what the plan reads, each file done.
            let progress: ProgressFn = std::sync::Arc::new(|e| match e {
                ProgressEvent::Planned { files, bytes } => {
                    tracing::debug!("reading {files} files ({bytes} bytes at most)")
                }
                ProgressEvent::FileFinished {
                    node,
                    path,
                    bytes_read,
                    matched,
                } => {
                    tracing::debug!(
                        "{node}: {}: read {bytes_read} bytes, {matched} matched",
                        path.display()
                    )
                }
                _ => {}
            });
            let opts = ExtractOptions {
                threads,
                slack: slack_ns,
                progress: Some(progress),
                ..ExtractOptions::default()
            };
            let ex = extract(&cat, &queries, &opts);
            let written = write_pcapng(&write, &cat, &ex)?;
            let to_stderr = write.as_os_str() == "-";
            let summary = match catalog.format {
                OutFormat::Text => extract_text(&cat, &queries, &ex, written, catalog.tz),
                OutFormat::Json => {
                    serde_json::to_string_pretty(&extract_json(&cat, &queries, &ex, written))?
                        + "\n"
                }
            };
            if to_stderr {
                eprint!("{summary}");
            } else {
                print_out(&summary)?;
            }
            Ok(ExitCode::from(if ex.packets.is_empty() {
                EXIT_NONE
            } else {
                EXIT_FOUND
            }))
        }
    }
}

fn print_out(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn index(nodes: &[NodeSpec], c: &CatalogArgs, full: bool) -> CmdResult {
    let detail = if full { Detail::Full } else { Detail::Spans };
    let cat = build_catalog(nodes, c, detail)?;
    check_usable(&cat, None)?;
    let text = match c.format {
        OutFormat::Json => serde_json::to_string_pretty(&cat)? + "\n",
        OutFormat::Text => index_text(&cat, c.tz),
    };
    print_out(&text)?;
    let any = cat
        .nodes()
        .iter()
        .any(|n| n.files.iter().any(|f| f.first_ts.is_some()));
    Ok(ExitCode::from(if any { EXIT_FOUND } else { EXIT_NONE }))
}

/// `capture index --watch`: index everything, then every `every` seconds
/// whatever is new or grew, saying what changed, until killed. Each round
/// is a catalog build over the cache: unchanged files cost a stat and a
/// cache read, the file being written is read on from its last checkpoint.
fn watch(nodes: &[NodeSpec], c: &CatalogArgs, every: f64) -> CmdResult {
    if !(every.is_finite() && every > 0.0) {
        return Err(format!("--every {every} must be a positive number of seconds").into());
    }
    if c.no_cache {
        return Err("--watch keeps the index cache warm: it cannot run with --no-cache".into());
    }
    let mut seen: BTreeMap<PathBuf, (u64, i64)> = BTreeMap::new();
    let mut first = true;
    loop {
        let cat = build_catalog(nodes, c, Detail::Full)?;
        if first {
            check_usable(&cat, None)?;
        }
        let mut lines = Vec::new();
        for n in cat.nodes() {
            for f in &n.files {
                let now = (f.size, f.mtime_ns);
                let what = match seen.insert(f.path.clone(), now) {
                    None if first => continue,
                    None => "new",
                    Some(old) if old != now => "grew",
                    Some(_) => continue,
                };
                lines.push(format!(
                    "{} {}: {what}, {} indexed{}",
                    n.name,
                    file_name(f),
                    fmt_bytes(f.size),
                    f.last_ts
                        .map(|t| format!(", up to {}", fmt_ts(t, c.tz)))
                        .unwrap_or_default()
                ));
            }
        }
        if first {
            let st = cat.stats();
            lines.push(format!(
                "watching {} files of {} node(s): {} from the cache, {} indexed ({} read); cache {}",
                st.files,
                cat.nodes().len(),
                st.from_cache,
                st.indexed,
                fmt_bytes(st.bytes_read),
                cat.cache_dir()
                    .map_or_else(|| "off".to_string(), |d| d.display().to_string())
            ));
        }
        if !lines.is_empty() {
            print_out(&(lines.join("\n") + "\n"))?;
        }
        first = false;
        std::thread::sleep(std::time::Duration::from_secs_f64(every));
    }
}

fn fmt_ts(ns: Nanos, tz: Option<chrono_tz::Tz>) -> String {
    let t = DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default();
    match tz {
        Some(tz) => t
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S%.6f %Z")
            .to_string(),
        None => t.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string(),
    }
}

fn fmt_dur(ns: Nanos) -> String {
    let s = ns as f64 / 1e9;
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

fn fmt_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn file_name(f: &FileEntry) -> String {
    f.path.file_name().map_or_else(
        || f.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn index_text(cat: &Catalog, tz: Option<chrono_tz::Tz>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let st = cat.stats();
    let _ = writeln!(
        s,
        "{} files: {} from the cache, {} indexed, {} probed ({} read); cache {}",
        st.files,
        st.from_cache,
        st.indexed,
        st.probed,
        fmt_bytes(st.bytes_read),
        cat.cache_dir()
            .map_or_else(|| "off".to_string(), |d| d.display().to_string())
    );
    for n in cat.nodes() {
        node_text(&mut s, n, tz);
    }
    s
}

fn node_text(s: &mut String, n: &NodeCatalog, tz: Option<chrono_tz::Tz>) {
    use std::fmt::Write as _;
    let scanned = n.files.iter().filter(|f| f.packets.is_some()).count();
    if scanned == n.files.len() {
        let _ = writeln!(
            s,
            "\nnode {}: {} files, {} packets",
            n.name,
            n.files.len(),
            n.packets()
        );
    } else {
        let _ = writeln!(
            s,
            "\nnode {}: {} files, {} packets in the {scanned} read whole (the others probed)",
            n.name,
            n.files.len(),
            n.packets()
        );
    }
    for f in &n.files {
        let fmt = match (f.format, f.compression) {
            (Some(fm), Some(c)) => {
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
            _ => "unreadable".to_string(),
        };
        let span = match (f.known, f.covered_span()) {
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
                fmt_dur(b - a)
            ),
            (Known::Unread, None) => "UNREADABLE".to_string(),
            (_, None) => "no timestamped packets".to_string(),
        };
        let pkts = f
            .packets
            .map_or_else(|| "probed".to_string(), |p| format!("{p} pkts"));
        let links: Vec<String> = f.linktypes.iter().map(u16::to_string).collect();
        let _ = writeln!(
            s,
            "  {:<40} {:>10} {:<14} link {:<7} {:>14}  {span}",
            file_name(f),
            fmt_bytes(f.size),
            fmt,
            links.join(","),
            pkts
        );
        if let Some(at) = f.truncated_tail {
            let what = if n.files.get(n.growing.unwrap_or(usize::MAX)) == Some(f) {
                "still being written (read up to it)"
            } else {
                "the file was cut there"
            };
            let _ = writeln!(s, "      partial record at byte {at}: {what}");
        }
        for p in &f.problems {
            let _ = writeln!(s, "      problem: {}", p.message);
        }
    }
    if n.coverage.spans.is_empty() {
        let _ = writeln!(s, "  coverage: NONE (no packets with timestamps: nothing about this node can be concluded)");
    }
    for &(a, b) in &n.coverage.spans {
        let _ = writeln!(
            s,
            "  covered: {} .. {} ({})",
            fmt_ts(a, tz),
            fmt_ts(b, tz),
            fmt_dur(b - a)
        );
    }
    for g in &n.coverage.gaps {
        let _ = writeln!(
            s,
            "  GAP:     {} .. {} ({}) between {} and {}: not captured",
            fmt_ts(g.from, tz),
            fmt_ts(g.to, tz),
            fmt_dur(g.to - g.from),
            file_name(&n.files[g.before]),
            file_name(&n.files[g.after])
        );
    }
    for o in &n.coverage.overlaps {
        let _ = writeln!(
            s,
            "  overlap: {} .. {} ({}) in {} and {}: packets there may appear twice",
            fmt_ts(o.from, tz),
            fmt_ts(o.to, tz),
            fmt_dur(o.to - o.from),
            file_name(&n.files[o.a]),
            file_name(&n.files[o.b])
        );
    }
    for l in &n.losses {
        let span = match l.span {
            Some((a, b)) => format!(
                "{} .. {}",
                if a == Nanos::MIN {
                    "(unbounded)".to_string()
                } else {
                    fmt_ts(a, tz)
                },
                if b == Nanos::MAX {
                    "(unbounded)".to_string()
                } else {
                    fmt_ts(b, tz)
                }
            ),
            None => "time unknown".to_string(),
        };
        let _ = writeln!(
            s,
            "  LOST:    {span} {}: {} ({})",
            l.file.display(),
            l.reason.as_str(),
            l.detail
        );
    }
    for p in n
        .problems
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::UnusableSource | ProblemKind::Growing))
    {
        let _ = writeln!(s, "  problem: {}: {}", p.path, p.message);
    }
}

fn query_label(q: &FlowQuery) -> String {
    q.to_string()
}

fn coverage_text(c: &Coverage, tz: Option<chrono_tz::Tz>) -> String {
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

fn extract_text(
    cat: &Catalog,
    queries: &[FlowQuery],
    ex: &Extraction,
    written: u64,
    tz: Option<chrono_tz::Tz>,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let (since, until) = (queries[0].since, queries[0].until);
    let _ = writeln!(s, "window {} .. {}", fmt_ts(since, tz), fmt_ts(until, tz));
    for (n, st) in cat.nodes().iter().zip(&ex.stats) {
        let _ = writeln!(
            s,
            "node {}: {} of {} files read, {} read, {} packets scanned, {} matched; window {}",
            n.name,
            st.files_read,
            st.files_total,
            fmt_bytes(st.bytes_read),
            st.packets_scanned,
            st.matched,
            coverage_text(&n.covered(since, until), tz)
        );
        let mut per: BTreeMap<usize, (u64, HashSet<(SocketAddr, SocketAddr)>)> = BTreeMap::new();
        for o in ex.packets.iter().filter(|o| *o.node == *n.name) {
            let e = per.entry(o.query).or_default();
            e.0 += 1;
            e.1.insert(o.proxy_backend());
        }
        for (qi, q) in queries.iter().enumerate() {
            match per.get(&qi) {
                Some((k, conns)) => {
                    let _ = writeln!(
                        s,
                        "  {}: {k} packets, {} connection 4-tuple(s)",
                        query_label(q),
                        conns.len()
                    );
                }
                None => {
                    let _ = writeln!(s, "  {}: no packets", query_label(q));
                }
            }
        }
        for (why, k) in &st.skipped {
            let _ = writeln!(s, "  skipped {k}: {why}");
        }
        if st.header_cut > 0 {
            let _ = writeln!(
                s,
                "  {} packets with TCP options cut by the snaplen (kept, flagged)",
                st.header_cut
            );
        }
        for l in &n.losses {
            let _ = writeln!(
                s,
                "  LOST: {}: {} ({})",
                l.file.display(),
                l.reason.as_str(),
                l.detail
            );
        }
    }
    for p in &ex.problems {
        let _ = writeln!(s, "problem: {p}");
    }
    let _ = writeln!(s, "wrote {written} packets");
    s
}

fn extract_json(
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
            let q = &queries[0];
            serde_json::json!({
                "stats": st,
                "coverage": n.covered(q.since, q.until),
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

/// Writes the matched packets of all nodes, once each (a packet matching
/// two queries is one packet), in time order; one interface per node and
/// link type, named after the node.
fn write_pcapng(
    path: &std::path::Path,
    cat: &Catalog,
    ex: &Extraction,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut seen = HashSet::new();
    let mut pkts: Vec<&PacketObs> = ex
        .packets
        .iter()
        .filter(|o| seen.insert((o.node.clone(), o.file.clone(), o.frame)))
        .collect();
    pkts.sort_by(|a, b| (a.ts, &a.node, &a.file, a.frame).cmp(&(b.ts, &b.node, &b.file, b.frame)));
    // Interfaces in node order, then link type.
    let mut ifaces: Vec<(String, u16)> = Vec::new();
    for n in cat.nodes() {
        let mut links: Vec<u16> = ex
            .packets
            .iter()
            .filter(|o| *o.node == *n.name)
            .map(|o| o.linktype)
            .collect();
        links.sort_unstable();
        links.dedup();
        ifaces.extend(links.into_iter().map(|l| (n.name.clone(), l)));
    }
    let names: Vec<(&str, u16)> = ifaces.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let sink: Box<dyn Write> = if path.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    let mut w = PcapngWriter::new(std::io::BufWriter::new(sink), &names)?;
    // (The writer warns once if it had to cut records to its snaplen.)
    for o in &pkts {
        let iface = ifaces
            .iter()
            .position(|(n, l)| **n == *o.node && *l == o.linktype)
            .expect("every node/link pair has an interface");
        w.write_packet(iface as u32, o.ts, &o.data, o.orig_len, None)?;
    }
    w.finish()?.flush()?;
    Ok(pkts.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2023-05-05T17:33:07.5Z", None),
            Ok(1_683_307_987_500_000_000)
        );
        assert_eq!(
            parse_time("1683307987.5", None),
            Ok(1_683_307_987_500_000_000)
        );
        assert_eq!(
            parse_time("2023-05-06 01:33:07.5", Some(chrono_tz::Asia::Shanghai)),
            Ok(1_683_307_987_500_000_000)
        );
        assert!(parse_time("2023-05-05 17:33:07", None)
            .unwrap_err()
            .contains("--tz"));
        assert!(parse_time("yesterday", None).is_err());
    }

    #[test]
    fn flows() {
        let (_, p, b) = parse_flow("10.0.0.1:40000-10.0.1.5:8080").unwrap();
        assert_eq!((p, b.port()), (Some(40000), 8080));
        let (ip, _, _) = parse_flow("[fe80::1]:40000-[fe80::2]:80").unwrap();
        assert!(ip.is_ipv6());
        assert!(parse_flow("10.0.0.1-10.0.1.5").is_err());
        // The proxy's port left open.
        let (ip, p, b) = parse_flow("10.0.0.1:*-10.0.1.5:8080").unwrap();
        assert_eq!(
            (ip.to_string(), p, b.port()),
            ("10.0.0.1".into(), None, 8080)
        );
        let (ip, p, _) = parse_flow("[fe80::1]:*-[fe80::2]:80").unwrap();
        assert!(ip.is_ipv6() && p.is_none());
    }
}
