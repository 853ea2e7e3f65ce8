//! `wiretrail capture index|extract`: catalog each node's rotated captures,
//! and pull flows out of all of them into one pcapng.

use super::{CmdResult, EXIT_FOUND, EXIT_NONE};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wiretrail_capture::catalog::{
    Catalog, CatalogOptions, Coverage, Detail, NodeCatalog, NodeSpec,
};
use wiretrail_capture::extract::{extract, ExtractOptions, Extraction, ProgressEvent, ProgressFn};
use wiretrail_capture::pcapng::{write_merged, MergedRecord};
use wiretrail_capture::problem::ProblemKind;
use wiretrail_capture::{FlowQuery, PacketObs};
use wiretrail_pipeline::config::NodeName;
use wiretrail_pipeline::time::{self, Duration, Timestamp};
use wiretrail_report::catalog::{
    extraction_json, render_catalog_text, render_extraction_text, render_file_change,
    render_watch_start, FileChange,
};

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
        /// Window start, in the times every command reads: RFC 3339,
        /// `2023-05-05 17:33:07 +08:00` (zone-less with --tz), a date
        /// `2023-05-05`, or epoch seconds.
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
    time::parse_tz(s).map_err(|e| e.to_string())
}

/// `NAME=DIR`, the name checked as every command checks node names (it
/// names the pcapng interface).
fn parse_node(s: &str) -> Result<NodeSpec, String> {
    let spec = NodeSpec::parse_arg(s).map_err(|e| e.to_string())?;
    NodeName::new(&spec.name).map_err(|e| format!("{e} ({})", NodeName::RULE))?;
    Ok(spec)
}

/// Two `--node` flags of one name are a mistake, not "the last one wins".
fn refuse_repeated_nodes(nodes: &[NodeSpec]) -> Result<(), String> {
    for (i, n) in nodes.iter().enumerate() {
        if nodes[..i].iter().any(|m| m.name == n.name) {
            return Err(format!(
                "--node {}={}: the node `{}` is given twice; give each node once",
                n.name,
                n.sources.join(","),
                n.name
            ));
        }
    }
    Ok(())
}

/// A time in the one vocabulary of every command
/// ([`wiretrail_pipeline::time::parse_time`]).
fn parse_time(s: &str, tz: Option<chrono_tz::Tz>) -> Result<Timestamp, String> {
    time::parse_time(s, tz).map_err(|e| e.to_string())
}

/// A non-negative number of seconds, checked into a [`Duration`].
fn seconds(flag: &str, secs: f64) -> Result<Duration, String> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(Duration::from_std)
        .ok_or_else(|| format!("{flag} {secs} must be a non-negative number of seconds"))
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

fn build_catalog(
    nodes: &[NodeSpec],
    c: &CatalogArgs,
    detail: Detail,
) -> Result<Catalog, Box<dyn std::error::Error + Send + Sync>> {
    refuse_repeated_nodes(nodes)?;
    let join_gap = seconds("--join-gap", c.join_gap)?;
    let opts = CatalogOptions {
        cache_dir: c
            .cache
            .clone()
            .or_else(|| wiretrail_capture::catalog::default_cache_dir().map(|d| d.join("catalog"))),
        use_cache: !c.no_cache,
        join_gap,
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
    window: Option<(Timestamp, Timestamp)>,
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
        } => index(
            &nodes,
            &catalog,
            if full { Detail::Full } else { Detail::Spans },
        ),
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
            let slack = seconds("--slack", slack)?;
            let queries = flow_queries(&flows, &ports, &backends, since, until)?;
            let widened = since
                .checked_sub(slack)
                .zip(until.checked_add(slack))
                .ok_or_else(|| {
                    format!(
                        "--slack {slack} widens the window past the times wiretrail can represent"
                    )
                })?;
            let cat = build_catalog(&nodes, &catalog, Detail::for_queries(&queries, slack))?;
            check_usable(&cat, Some(widened))?;
            let opts = ExtractOptions {
                threads,
                slack,
                progress: Some(progress()),
                ..ExtractOptions::default()
            };
            let ex = extract(&cat, &queries, &opts);
            let written = write_pcapng(&write, &ex)?;
            let mut summary = Vec::new();
            match catalog.format {
                OutFormat::Text => {
                    render_extraction_text(&cat, &queries, &ex, written, catalog.tz, &mut summary)?
                }
                OutFormat::Json => {
                    serde_json::to_writer_pretty(
                        &mut summary,
                        &extraction_json(&cat, &queries, &ex, written),
                    )?;
                    summary.push(b'\n');
                }
            }
            if write.as_os_str() == "-" {
                std::io::stderr().write_all(&summary)?;
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

/// The flags' flows, ports and backends as queries over one window.
fn flow_queries(
    flows: &[(IpAddr, Option<u16>, SocketAddr)],
    ports: &[u16],
    backends: &[SocketAddr],
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<FlowQuery>, String> {
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
    Ok(queries)
}

/// Progress as diagnostics (-v): what the plan reads, each file done.
fn progress() -> ProgressFn {
    std::sync::Arc::new(|e| match e {
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
    })
}

fn print_out(s: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn index(nodes: &[NodeSpec], c: &CatalogArgs, detail: Detail) -> CmdResult {
    let cat = build_catalog(nodes, c, detail)?;
    check_usable(&cat, None)?;
    let mut text = Vec::new();
    match c.format {
        OutFormat::Json => {
            serde_json::to_writer_pretty(&mut text, &cat)?;
            text.push(b'\n');
        }
        OutFormat::Text => render_catalog_text(&cat, c.tz, &mut text)?,
    }
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
    let every = seconds("--every", every)?;
    if every.is_zero() {
        return Err("--every must be a positive number of seconds".into());
    }
    if c.no_cache {
        return Err("--watch keeps the index cache warm: it cannot run with --no-cache".into());
    }
    let mut seen: BTreeMap<PathBuf, (u64, Timestamp)> = BTreeMap::new();
    let mut first = true;
    loop {
        let cat = build_catalog(nodes, c, Detail::Full)?;
        if first {
            check_usable(&cat, None)?;
        }
        let mut lines = Vec::new();
        for n in cat.nodes() {
            for f in &n.files {
                let now = (f.size, f.mtime);
                let change = match seen.insert(f.path.clone(), now) {
                    None if first => continue,
                    None => FileChange::New,
                    Some(old) if old != now => FileChange::Grew,
                    Some(_) => continue,
                };
                render_file_change(n, f, change, c.tz, &mut lines)?;
            }
        }
        if first {
            render_watch_start(&cat, &mut lines)?;
        }
        print_out(&lines)?;
        first = false;
        std::thread::sleep(every.to_std());
    }
}

/// Writes the matched packets of all nodes into one pcapng (`-`: stdout),
/// in capture-time order, through the one merged writer the incident slices
/// use; returns how many it wrote.
fn write_pcapng(
    path: &Path,
    ex: &Extraction,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut pkts: Vec<&PacketObs> = ex.packets.iter().collect();
    pkts.sort_by(|a, b| (a.ts, &a.node, &a.file, a.frame).cmp(&(b.ts, &b.node, &b.file, b.frame)));
    let records: Vec<MergedRecord<'_>> = pkts
        .into_iter()
        .map(|packet| MergedRecord {
            packet,
            comment: None,
        })
        .collect();
    let sink: Box<dyn Write> = if path.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    // (The writer warns once if it had to cut records to its snaplen.)
    let (_, written) = write_merged(std::io::BufWriter::new(sink), &records)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_the_vocabulary_of_every_command() {
        let t = |s, tz| parse_time(s, tz).map(Timestamp::as_nanos);
        let shanghai = Some(chrono_tz::Asia::Shanghai);
        assert_eq!(
            t("2023-05-05T17:33:07.5Z", None),
            Ok(1_683_307_987_500_000_000)
        );
        assert_eq!(t("1683307987.5", None), Ok(1_683_307_987_500_000_000));
        assert_eq!(
            t("2023-05-06 01:33:07.5", shanghai),
            Ok(1_683_307_987_500_000_000)
        );
        // Forms `capture` refused while `investigate` took them.
        assert_eq!(
            t("2023-05-06 01:33:07.5 +08:00", None),
            Ok(1_683_307_987_500_000_000)
        );
        assert_eq!(t("2023-05-06", shanghai), Ok(1_683_302_400_000_000_000));
        assert!(parse_time("2023-05-05 17:33:07", None)
            .unwrap_err()
            .contains("--tz"));
        assert!(parse_time("yesterday", None).is_err());
        assert!(parse_time("99999999999999", None).is_err());
    }

    #[test]
    fn seconds_are_checked() {
        assert_eq!(seconds("--slack", 1.5), Ok(Duration::from_millis(1500)));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            assert!(seconds("--slack", bad).unwrap_err().contains("--slack"));
        }
    }

    #[test]
    fn node_names_are_checked_once_and_given_once() {
        assert!(parse_node("b1=/cap/b1").is_ok());
        assert!(parse_node("log=/cap/x").unwrap_err().contains("`log`"));
        assert!(parse_node("b 1=/cap/x").is_err());
        let twice = [
            parse_node("b1=/cap/one").unwrap(),
            parse_node("b2=/cap/two").unwrap(),
            parse_node("b1=/cap/three").unwrap(),
        ];
        let e = refuse_repeated_nodes(&twice).unwrap_err();
        assert!(e.contains("`b1` is given twice"), "{e}");
        assert!(refuse_repeated_nodes(&twice[..2]).is_ok());
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
