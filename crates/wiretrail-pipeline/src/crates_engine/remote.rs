//! Captures that stay on other machines: `ssh://[user@]host[:port]/dir`.
//!
//! Uses the system `ssh` client, so the user's keys, agent and
//! `~/.ssh/config` apply as they do for `rsync` and `git`; `BatchMode=yes`
//! so a missing key fails at once instead of prompting.
//!
//! Per node, in parallel with the other nodes, one round trip lists the
//! directory (`find -printf`: size, mtime, name, each record ended by a NUL
//! byte, the one byte a file name cannot hold) and says which of
//! `wiretrail` and `tcpdump` the host has. Only the rotated files whose span
//! can overlap a window are considered: a rotated file's span is taken from
//! the listing alone (it ends at its mtime, the last packet written, and
//! starts after the previous file of the same series ended). Then, cheapest
//! first (the node's `remote_extract` can force a later one):
//! 1. `extract`: `wiretrail` runs on the host (`wiretrail capture extract
//!    ... -w -`) and only the matched packets come back, as one pcapng.
//! 2. `tcpdump`: per overlapping file, the host's `tcpdump` keeps only the
//!    packets of the windows' flows (a BPF filter, see [`bpf_filter`]) and
//!    only those come back, one pcap per remote file under its own name.
//! 3. `copy`: each overlapping file is copied whole.
//!
//! Never the whole directory. Results are cached (`<cache>/<node>/<host…>/`,
//! keyed by the remote size and mtime and, for filtered files, the filter),
//! so a re-run over the same windows transfers nothing; the local catalog
//! then indexes and caches them like any local capture.
//! A node that cannot be reached is an `Err`, which the caller turns into a
//! capture gap for that node while the other nodes go on. What went wrong
//! short of that (a remote tool that failed, a file that could not be
//! fetched) is a typed [`Problem`] of the node.
//!
//! The destination is passed after `--`, and [`SshTarget::parse`] refuses a
//! host or user beginning with `-`: nothing in a capture location can become
//! an ssh option.

use crate::config::{CaptureLocation, Node, RemoteExtract, SshTarget};
use crate::progress::Progress;
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use wiretrail_capture::{FlowQuery, Nanos};
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource};

/// What was brought over for one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// Local files to catalog (copies or one remote-extracted pcapng).
    pub files: Vec<PathBuf>,
    /// The node's capture coverage as the listing shows it (node clock).
    pub coverage: Vec<(Nanos, Nanos)>,
    /// Bytes that crossed the network (file contents or extracted pcapng).
    pub bytes_transferred: u64,
    /// Bytes of the remote directory's capture files, for comparison.
    pub remote_dir_bytes: u64,
    /// `extract` (ran wiretrail there), `tcpdump` (filtered there) or
    /// `copy`.
    pub mode: &'static str,
    /// What did not go as planned (a remote tool that failed, a file that
    /// could not be fetched), each of this node.
    pub problems: Vec<Problem>,
    /// Which remote file each local file holds (all or, for `tcpdump`,
    /// the filtered part of it); empty for `extract`.
    pub origins: Vec<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("ssh {dest}: {what} failed (exit {code:?}): {stderr}")]
    Ssh {
        dest: String,
        what: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    #[error("local cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("listing of {0} is not understood: {1}")]
    Listing(String, String),
}

/// One file as the remote listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    /// Modification time, ns since the epoch (node clock).
    pub mtime: Nanos,
}

/// Windows per query, widened by `slack` and shifted to the node's clock.
pub fn node_windows(
    queries: &[FlowQuery],
    slack: Nanos,
    offset_s: Option<f64>,
) -> Vec<(Nanos, Nanos)> {
    let shift = offset_s.map(|o| (o * 1e9) as i64).unwrap_or(0);
    let mut w: Vec<(Nanos, Nanos)> = queries
        .iter()
        .map(|q| {
            (
                q.since.saturating_sub(slack).saturating_sub(shift),
                q.until.saturating_add(slack).saturating_sub(shift),
            )
        })
        .collect();
    w.sort();
    let mut merged: Vec<(Nanos, Nanos)> = Vec::new();
    for (a, b) in w {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Files of one rotation series share their name with the digits removed
/// (`cap-20230505-1733.pcap`, `ring_00012_20230505173307.pcapng`, `cap.pcap3`).
fn series_key(name: &str) -> String {
    name.chars().filter(|c| !c.is_ascii_digit()).collect()
}

/// Looks like a capture file (plain or compressed pcap/pcapng, or tcpdump's
/// numbered `-C` suffixes).
pub fn is_capture_name(name: &str) -> bool {
    let n = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = n
        .strip_suffix(".gz")
        .or_else(|| n.strip_suffix(".zst"))
        .unwrap_or(n);
    n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".cap") || n.contains(".pcap")
}

/// How long before its mtime a series' first file is assumed to start:
/// the median span of the others, or an hour when there are none.
fn typical_span(ends: &[Nanos]) -> Nanos {
    let mut d: Vec<Nanos> = ends
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    d.sort();
    d.get(d.len() / 2).copied().unwrap_or(3_600_000_000_000)
}

/// Pick the files whose span can meet a window, and the coverage the
/// listing shows. `mtime_slack` absorbs coarse mtimes (1 s on some systems).
pub fn select(
    files: &[RemoteFile],
    windows: &[(Nanos, Nanos)],
    mtime_slack: Nanos,
) -> (Vec<RemoteFile>, Vec<(Nanos, Nanos)>) {
    let mut series: HashMap<String, Vec<&RemoteFile>> = HashMap::new();
    for f in files.iter().filter(|f| is_capture_name(&f.name)) {
        series.entry(series_key(&f.name)).or_default().push(f);
    }
    let mut chosen = Vec::new();
    let mut coverage = Vec::new();
    for (_, mut fs) in series {
        fs.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
        let ends: Vec<Nanos> = fs.iter().map(|f| f.mtime).collect();
        let first_start = ends[0].saturating_sub(typical_span(&ends));
        for (i, f) in fs.iter().enumerate() {
            // A file may hold packets from the previous file's end (minus
            // slack) up to its own mtime (plus slack).
            let start = if i == 0 {
                Nanos::MIN
            } else {
                ends[i - 1].saturating_sub(mtime_slack)
            };
            let end = f.mtime.saturating_add(mtime_slack);
            if windows.iter().any(|&(a, b)| start <= b && end >= a) {
                chosen.push((*f).clone());
            }
            let cov_start = if i == 0 { first_start } else { ends[i - 1] };
            coverage.push((cov_start, f.mtime));
        }
    }
    chosen.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name)));
    coverage.sort();
    let mut merged: Vec<(Nanos, Nanos)> = Vec::new();
    for (a, b) in coverage {
        match merged.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    (chosen, merged)
}

/// A listing: the files, and the names that are not UTF-8 (skipped, and
/// said so: they cannot be named in a report).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub files: Vec<RemoteFile>,
    pub unusable_names: Vec<String>,
}

/// Parse `find -printf '%s %T@ %f\0'` output: one record per NUL-ended
/// entry, so a name may hold newlines and spaces.
pub fn parse_listing(bytes: &[u8]) -> Result<Listing, String> {
    let mut out = Listing::default();
    for (i, rec) in bytes.split(|&b| b == 0).enumerate() {
        if rec.is_empty() {
            continue;
        }
        let shown = || String::from_utf8_lossy(rec).into_owned();
        let mut it = rec.splitn(3, |&b| b == b' ');
        let (Some(size), Some(mtime), Some(name)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("record {}: {:?}", i + 1, shown()));
        };
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_string);
        let size: u64 = text(size)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("record {}: size in {:?}", i + 1, shown()))?;
        let mtime = text(mtime)
            .and_then(|m| parse_mtime(&m))
            .ok_or_else(|| format!("record {}: mtime in {:?}", i + 1, shown()))?;
        match std::str::from_utf8(name) {
            Ok(name) => out.files.push(RemoteFile {
                name: name.to_string(),
                size,
                mtime,
            }),
            Err(_) => out
                .unusable_names
                .push(String::from_utf8_lossy(name).into_owned()),
        }
    }
    Ok(out)
}

/// `find`'s `%T@`: seconds with a fraction, to nanoseconds.
fn parse_mtime(m: &str) -> Option<Nanos> {
    let (secs, frac) = m.split_once('.').unwrap_or((m, "0"));
    let secs: i64 = secs.parse().ok()?;
    let frac9: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: i64 = frac9.parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Single-quote for the remote POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `ssh` invocation for a node, without the remote command.
fn ssh_command(t: &SshTarget, extra: &[String]) -> Command {
    let ssh = std::env::var_os("WIRETRAIL_SSH").unwrap_or_else(|| "ssh".into());
    let mut c = Command::new(ssh);
    c.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "ServerAliveInterval=15",
    ]);
    if let Some(p) = t.port {
        c.args(["-p", &p.to_string()]);
    }
    c.args(extra);
    // Options end here: the destination cannot be read as one (and after
    // `--` ssh reads no options past the destination either, so the remote
    // command follows it directly).
    c.arg("--");
    c.arg(t.destination());
    c.stdin(Stdio::null());
    c
}

fn run(
    t: &SshTarget,
    extra: &[String],
    what: &str,
    remote_cmd: &str,
) -> Result<Vec<u8>, RemoteError> {
    let out = ssh_command(t, extra)
        .arg(remote_cmd)
        .output()
        .map_err(RemoteError::Spawn)?;
    if !out.status.success() {
        return Err(RemoteError::Ssh {
            dest: t.to_string(),
            what: what.into(),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(500)
                .collect(),
        });
    }
    Ok(out.stdout)
}

/// Stream a remote command's stdout into `dest` (atomically); returns bytes.
/// `truncated_ok`: tcpdump exits 1 on a file that ends inside a record (the
/// newest rotation, still being written); what it wrote up to there is a
/// whole pcap and is kept, as a copy of that file would be.
fn run_to_file(
    t: &SshTarget,
    extra: &[String],
    what: &str,
    remote_cmd: &str,
    dest: &Path,
    truncated_ok: bool,
) -> Result<u64, RemoteError> {
    let cache_err = |source| RemoteError::Cache {
        path: dest.to_path_buf(),
        source,
    };
    // Hidden, and named so a later run can tell whose it was (see
    // `files::remove_stale_temporaries`).
    let tmp = crate::files::temporary_path(dest);
    let mut child = ssh_command(t, extra)
        .arg(remote_cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RemoteError::Spawn)?;
    let mut stdout = child.stdout.take().expect("piped");
    let copied = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::copy(&mut stdout, &mut f)
    })();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(RemoteError::Spawn)?;
    let n = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(cache_err(e));
        }
    };
    let truncated =
        truncated_ok && status.code() == Some(1) && n >= 24 && stderr.contains("truncated");
    if truncated {
        tracing::info!(dest = %dest.display(), "{what}: the remote file ends inside a packet; kept the {n} bytes before it");
    }
    if !status.success() && !truncated {
        let _ = std::fs::remove_file(&tmp);
        return Err(RemoteError::Ssh {
            dest: t.to_string(),
            what: what.into(),
            code: status.code(),
            stderr: stderr.trim().chars().take(500).collect(),
        });
    }
    std::fs::rename(&tmp, dest).map_err(cache_err)?;
    Ok(n)
}

/// Cache directory for one remote location.
fn cache_dir_for(cache: &Path, node: &str, t: &SshTarget) -> PathBuf {
    let key = format!("{}_{}_{}", t.host, t.port.unwrap_or(22), t.dir);
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache.join(crate::files::safe_file_name(node)).join(safe)
}

/// What the host offers besides a shell, from the listing's round trip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostTools {
    /// Path of `wiretrail` on the host's `PATH`.
    pub wiretrail: Option<String>,
    /// Path of `tcpdump` (the `PATH`, else `/usr/sbin`, where older Debian
    /// puts it out of a normal user's `PATH`).
    pub tcpdump: Option<String>,
}

/// The one remote command that probes the tools and lists `dir`: `tool`
/// records first (a listing record starts with a digit, so they cannot be
/// confused), then `find`'s, whose exit status is the command's; every
/// record ends with a NUL byte. Run by `sh -c` so a login shell such as
/// fish or csh does not matter.
pub fn listing_command(dir: &str) -> String {
    let script = format!(
        "for t in wiretrail tcpdump /usr/sbin/tcpdump; do p=$(command -v \"$t\" 2>/dev/null) && printf 'tool %s %s\\0' \"${{t##*/}}\" \"$p\"; done; \
         find {}/ -maxdepth 1 -type f -printf '%s %T@ %f\\0'",
        sh_quote(dir)
    );
    format!("sh -c {}", sh_quote(&script))
}

/// Split [`listing_command`]'s output into the tools and the listing.
pub fn parse_probe(out: &[u8]) -> (HostTools, Vec<u8>) {
    let mut tools = HostTools::default();
    let mut listing = Vec::with_capacity(out.len());
    for rec in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let tool = std::str::from_utf8(rec)
            .ok()
            .and_then(|r| r.strip_prefix("tool "))
            .and_then(|r| r.split_once(' '));
        match tool {
            Some(("wiretrail", p)) => {
                tools.wiretrail.get_or_insert_with(|| p.to_string());
            }
            Some(("tcpdump", p)) => {
                tools.tcpdump.get_or_insert_with(|| p.to_string());
            }
            _ => {
                listing.extend_from_slice(rec);
                listing.push(0);
            }
        }
    }
    (tools, listing)
}

/// How close a [`bpf_filter`] is to the queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterPrecision {
    /// One term per query: the flows' packets and (nearly) nothing else.
    Exact,
    /// The exact filter was too long: backend ports (and a port range for
    /// queries naming no backend), narrowed to the proxy hosts when all
    /// queries name one. More packets, still a superset.
    Coarse,
}

/// Longest BPF expression sent (before its VLAN twin is added). libpcap
/// compiles and optimises the whole expression for every file: thousands of
/// terms make that slow and the command line long, for little gain.
pub const MAX_FILTER_LEN: usize = 2000;

/// A BPF expression that keeps every packet local extraction can match for
/// `queries` (a superset: matching is redone locally, with the windows),
/// `None` when no query can match anything or even the coarse form is
/// longer than `max_len`.
pub fn bpf_filter(queries: &[FlowQuery], max_len: usize) -> Option<(String, FilterPrecision)> {
    use std::collections::BTreeSet;
    use std::fmt::Write;
    let live: Vec<&FlowQuery> = queries.iter().filter(|q| q.problem().is_none()).collect();
    if live.is_empty() {
        return None;
    }
    // `port` matches either end, so the proxy's port needs no direction.
    let mut terms = BTreeSet::new();
    for q in &live {
        let mut t = Vec::new();
        if let Some(a) = q.proxy_ip {
            t.push(format!("host {a}"));
        }
        if let Some(p) = q.proxy_port {
            t.push(format!("port {p}"));
        }
        if let Some(b) = q.backend {
            t.push(format!("host {}", b.ip()));
            t.push(format!("port {}", b.port()));
        }
        terms.insert(t.join(" and "));
    }
    let exact = format!(
        "tcp and ({})",
        terms
            .iter()
            .map(|t| format!("({t})"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    if exact.len() <= max_len {
        return Some((exact, FilterPrecision::Exact));
    }
    let mut ports: BTreeSet<u16> = BTreeSet::new();
    let (mut lo, mut hi) = (u16::MAX, 0u16);
    for q in &live {
        match (q.backend, q.proxy_port) {
            (Some(b), _) => {
                ports.insert(b.port());
            }
            (None, Some(p)) => {
                lo = lo.min(p);
                hi = hi.max(p);
            }
            (None, None) => {}
        }
    }
    let mut any = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>();
    if lo <= hi {
        any.push(format!("portrange {lo}-{hi}"));
    }
    let mut coarse = format!("tcp and ({})", any.join(" or "));
    let hosts: BTreeSet<IpAddr> = live.iter().filter_map(|q| q.proxy_ip).collect();
    if live.iter().all(|q| q.proxy_ip.is_some()) {
        let h: Vec<String> = hosts.iter().map(|h| format!("host {h}")).collect();
        let _ = write!(coarse, " and ({})", h.join(" or "));
    }
    (coarse.len() <= max_len).then_some((coarse, FilterPrecision::Coarse))
}

/// The filter as sent: also through one VLAN tag (the local decoder strips
/// tags; plain `tcp` would not see tagged frames).
fn with_vlan(filter: &str) -> String {
    format!("({filter}) or (vlan and ({filter}))")
}

/// The remote command that filters one capture file to a pcap on stdout.
/// The file is opened by the shell (`< FILE`), not by tcpdump: AppArmor
/// profiles confine what tcpdump itself may open, and compressed files go
/// through the same `-r -`. Nanosecond precision keeps the timestamps of
/// nanosecond captures exact (libpcap scales microsecond ones up).
pub fn tcpdump_command(tcpdump: &str, path: &str, filter: &str) -> String {
    let name = path.trim_end_matches(|c: char| c.is_ascii_digit());
    let td = format!(
        "{} -r - -w - --time-stamp-precision=nano {}",
        sh_quote(tcpdump),
        sh_quote(filter)
    );
    if name.ends_with(".gz") {
        format!("gzip -dc < {} | {td}", sh_quote(path))
    } else if name.ends_with(".zst") {
        format!("zstd -dc < {} | {td}", sh_quote(path))
    } else {
        format!("{td} < {}", sh_quote(path))
    }
}

/// The local name of a filtered remote file: the same name, less a
/// compression suffix (what comes back is plain pcap).
fn filtered_name(name: &str) -> String {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    let stem = stem
        .strip_suffix(".gz")
        .or_else(|| stem.strip_suffix(".zst"))
        .unwrap_or(stem);
    format!("{stem}{num}")
}

/// `<size> <mtime>` of the remote file, and what else decides a cache hit.
fn stamp(f: &RemoteFile, extra: &str) -> String {
    format!("{} {}{extra}", f.size, f.mtime)
}

fn fresh(dest: &Path, meta: &Path, stamp: &str, size: Option<u64>) -> bool {
    std::fs::read_to_string(meta)
        .map(|s| s == stamp)
        .unwrap_or(false)
        && std::fs::metadata(dest)
            .map(|m| size.is_none_or(|s| m.len() == s))
            .unwrap_or(false)
}

/// Record a fetched file's remote identity; keep the remote mtime so the
/// local catalog cache keys stay stable.
fn seal(dest: &Path, meta: &Path, stamp: &str, mtime: Nanos) -> Result<(), RemoteError> {
    if let Ok(file) = std::fs::File::options().write(true).open(dest) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime.max(0) as u64);
        let _ = file.set_modified(t);
    }
    std::fs::write(meta, stamp).map_err(|source| RemoteError::Cache {
        path: meta.to_path_buf(),
        source,
    })
}

fn node_problem(node: &Node, kind: ProblemKind, message: String) -> Problem {
    Problem::new(
        kind,
        ProblemSource::Node {
            node: node.name.to_string(),
        },
        message,
    )
}

fn capture_problem(node: &Node, remote_path: &str, kind: ProblemKind, message: String) -> Problem {
    Problem::new(
        kind,
        ProblemSource::Capture {
            node: node.name.to_string(),
            path: remote_path.to_string(),
            offset: None,
        },
        message,
    )
}

/// Fetch one node's part of the windows.
pub fn fetch_node(
    node: &Node,
    t: &SshTarget,
    queries: &[FlowQuery],
    slack: Nanos,
    cache: &Path,
) -> Result<Fetched, RemoteError> {
    let windows = node_windows(queries, slack, node.clock_offset_s);
    let dir = cache_dir_for(cache, &node.name, t);
    std::fs::create_dir_all(&dir).map_err(|source| RemoteError::Cache {
        path: dir.clone(),
        source,
    })?;
    // What a killed run left half-copied here is never used (a cache hit
    // needs the `.remote` note written after the rename): remove it.
    crate::files::remove_stale_temporaries(&dir);
    let out = run(
        t,
        &node.ssh_options,
        "list captures",
        &listing_command(&t.dir),
    )?;
    let (tools, listing) = parse_probe(&out);
    let listing = parse_listing(&listing).map_err(|e| RemoteError::Listing(t.to_string(), e))?;
    let files = listing.files;
    let remote_dir_bytes = files
        .iter()
        .filter(|f| is_capture_name(&f.name))
        .map(|f| f.size)
        .sum();
    let (chosen, coverage) = select(&files, &windows, 2_000_000_000);
    let mut fetched = Fetched {
        coverage,
        remote_dir_bytes,
        ..Fetched::default()
    };
    for name in listing.unusable_names {
        fetched.problems.push(node_problem(
            node,
            ProblemKind::UnusableSource,
            format!("{t}: skipped {name:?}: its name is not UTF-8"),
        ));
    }
    if windows.is_empty() {
        fetched.mode = "copy";
        return Ok(fetched);
    }
    if chosen.is_empty() {
        fetched.mode = "copy";
        fetched.problems.push(node_problem(
            node,
            ProblemKind::CaptureGap,
            format!("no capture file of {t} overlaps the windows"),
        ));
        return Ok(fetched);
    }

    let fetched = fetch_chosen(node, t, queries, &windows, &tools, &chosen, &dir, fetched)?;
    tracing::info!(
        node = %node.name,
        mode = fetched.mode,
        files = fetched.files.len(),
        bytes = fetched.bytes_transferred,
        remote_files_bytes = chosen.iter().map(|f| f.size).sum::<u64>(),
        remote_dir_bytes = fetched.remote_dir_bytes,
        "remote captures fetched"
    );
    Ok(fetched)
}

/// Bring over what the chosen files hold for the windows, by the cheapest
/// mode the host and the node's setting allow.
#[allow(clippy::too_many_arguments)]
fn fetch_chosen(
    node: &Node,
    t: &SshTarget,
    queries: &[FlowQuery],
    windows: &[(Nanos, Nanos)],
    tools: &HostTools,
    chosen: &[RemoteFile],
    dir: &Path,
    mut fetched: Fetched,
) -> Result<Fetched, RemoteError> {
    if node.remote_extract == RemoteExtract::Auto {
        if let Some(bin) = &tools.wiretrail {
            let cmd = remote_extract_command(bin, &node.name, &t.dir, queries, windows);
            let name = format!("extract-{:016x}.pcapng", fxhash(&cmd));
            let dest = dir.join(&name);
            match run_to_file(t, &node.ssh_options, "remote extract", &cmd, &dest, false) {
                Ok(n) => {
                    fetched.bytes_transferred += n;
                    fetched.files.push(dest);
                    fetched.mode = "extract";
                    return Ok(fetched);
                }
                Err(e) => fetched.problems.push(node_problem(
                    node,
                    ProblemKind::UnusableSource,
                    format!("remote extract failed, filtering or copying files instead: {e}"),
                )),
            }
        }
    }

    let filter = match (node.remote_extract, &tools.tcpdump) {
        (RemoteExtract::Copy, _) => None,
        (_, None) => {
            if node.remote_extract == RemoteExtract::Tcpdump {
                fetched.problems.push(node_problem(
                    node,
                    ProblemKind::UnusableSource,
                    format!(
                        "remote_extract = \"tcpdump\" but {t} has no tcpdump: copying whole files"
                    ),
                ));
            }
            None
        }
        (_, Some(td)) => match bpf_filter(queries, MAX_FILTER_LEN) {
            Some((f, precision)) => {
                if precision == FilterPrecision::Coarse {
                    tracing::info!(node = %node.name, queries = queries.len(), "per-flow capture filter too long; using the coarse one: {f}");
                }
                Some((td.as_str(), f))
            }
            None => {
                fetched.problems.push(node_problem(
                    node,
                    ProblemKind::Limit,
                    format!(
                        "no capture filter fits {} queries (at most {MAX_FILTER_LEN} characters): copying whole files",
                        queries.len()
                    ),
                ));
                None
            }
        },
    };

    fetched.mode = if filter.is_some() { "tcpdump" } else { "copy" };
    let qdir = sh_quote(&t.dir);
    for f in chosen {
        let remote_path = format!("{}/{}", t.dir.trim_end_matches('/'), f.name);
        // `find -printf %f` prints no `/`; a listing that does is not to be
        // trusted with a path.
        if f.name.contains('/') {
            fetched.problems.push(capture_problem(
                node,
                &remote_path,
                ProblemKind::UnusableSource,
                format!("skipped {:?}: not a plain file name", f.name),
            ));
            continue;
        }
        if let Some((td, filter)) = &filter {
            match fetch_filtered(node, t, td, filter, f, &remote_path, dir) {
                Ok((dest, n)) => {
                    fetched.bytes_transferred += n;
                    fetched.origins.push((dest.clone(), remote_path));
                    fetched.files.push(dest);
                    continue;
                }
                // Unreachable is unreachable: no use trying a copy.
                Err(
                    e @ RemoteError::Ssh {
                        code: Some(255), ..
                    },
                ) => return Err(e),
                Err(e) => fetched.problems.push(capture_problem(
                    node,
                    &remote_path,
                    ProblemKind::UnusableSource,
                    format!("tcpdump on {t} could not filter it, copying it whole: {e}"),
                )),
            }
        }
        let dest = dir.join(&f.name);
        let meta = dir.join(format!(".{}.remote", f.name));
        let stamp = stamp(f, "");
        if !fresh(&dest, &meta, &stamp, Some(f.size)) {
            let cmd = format!("cat -- {}/{}", qdir, sh_quote(&f.name));
            let n = run_to_file(
                t,
                &node.ssh_options,
                &format!("copy {}", f.name),
                &cmd,
                &dest,
                false,
            )?;
            fetched.bytes_transferred += n;
            seal(&dest, &meta, &stamp, f.mtime)?;
        }
        fetched.origins.push((dest.clone(), remote_path));
        fetched.files.push(dest);
    }
    Ok(fetched)
}

/// One remote file through the host's tcpdump, into
/// `<dir>/tcpdump-<filter hash>/<same name>` with a `.<name>.remote` note
/// beside it (remote size and mtime, remote path, filter). Frame numbers in
/// reports built over it count the packets of this filtered file, not of the
/// remote original: evidence therefore names this local file, which a user
/// can open as it is; the note says which remote file it came from.
fn fetch_filtered(
    node: &Node,
    t: &SshTarget,
    tcpdump: &str,
    filter: &str,
    f: &RemoteFile,
    remote_path: &str,
    dir: &Path,
) -> Result<(PathBuf, u64), RemoteError> {
    let sub = dir.join(format!("tcpdump-{:016x}", fxhash(filter)));
    std::fs::create_dir_all(&sub).map_err(|source| RemoteError::Cache {
        path: sub.clone(),
        source,
    })?;
    let name = filtered_name(&f.name);
    let dest = sub.join(&name);
    let meta = sub.join(format!(".{name}.remote"));
    let stamp = stamp(f, &format!("\n{remote_path}\n{filter}\n"));
    if fresh(&dest, &meta, &stamp, None) {
        return Ok((dest, 0));
    }
    // With the VLAN twin first; link types without VLANs (raw IP, cooked
    // captures on some libpcap versions) refuse it at compile time, before
    // any output, so the plain filter is then tried.
    let what = format!("tcpdump {}", f.name);
    let full = with_vlan(filter);
    let n = match run_to_file(
        t,
        &node.ssh_options,
        &what,
        &tcpdump_command(tcpdump, remote_path, &full),
        &dest,
        true,
    ) {
        Err(RemoteError::Ssh { stderr, .. }) if stderr.contains("VLAN") => run_to_file(
            t,
            &node.ssh_options,
            &what,
            &tcpdump_command(tcpdump, remote_path, filter),
            &dest,
            true,
        )?,
        r => r?,
    };
    seal(&dest, &meta, &stamp, f.mtime)?;
    Ok((dest, n))
}

/// `wiretrail capture extract` on the host, pcapng to stdout.
pub fn remote_extract_command(
    bin: &str,
    node: &str,
    dir: &str,
    queries: &[FlowQuery],
    windows: &[(Nanos, Nanos)],
) -> String {
    let since = windows.iter().map(|w| w.0).min().unwrap_or(0);
    let until = windows.iter().map(|w| w.1).max().unwrap_or(0);
    let secs = |ns: Nanos| {
        format!(
            "{}.{:09}",
            ns.div_euclid(1_000_000_000),
            ns.rem_euclid(1_000_000_000)
        )
    };
    let mut cmd = format!(
        "{} capture extract --node {}",
        sh_quote(bin),
        sh_quote(&format!("{node}={dir}"))
    );
    let mut seen = std::collections::BTreeSet::new();
    for q in queries {
        // `FlowQuery`'s display is the remote CLI's `--flow` form
        // (`IP:PORT-B:P`, `IP:*-B:P` for a wildcard).
        let arg = match (q.proxy_port, q.proxy_ip, q.backend) {
            (_, Some(_), Some(_)) => format!("--flow {}", sh_quote(&q.to_string())),
            (Some(p), _, _) => format!("--port {p}"),
            (None, None, Some(b)) => format!("--backend {}", sh_quote(&b.to_string())),
            // Matches nothing: extraction says so locally.
            (None, _, None) => continue,
        };
        if seen.insert(arg.clone()) {
            cmd.push(' ');
            cmd.push_str(&arg);
        }
    }
    cmd.push_str(&format!(
        " --since {} --until {} -w -",
        secs(since),
        secs(until)
    ));
    cmd
}

fn fxhash(s: &str) -> u64 {
    // FNV-1a: a stable name for the same request.
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Fetch every remote node in parallel. Nodes with no query windows are skipped.
pub fn fetch_nodes(
    nodes: &[&Node],
    queries: &[FlowQuery],
    slack: Nanos,
    cache: &Path,
    progress: &dyn Progress,
) -> HashMap<String, Result<Fetched, RemoteError>> {
    if nodes.is_empty() {
        return HashMap::new();
    }
    progress.stage(&format!(
        "fetching captures from {} remote nodes",
        nodes.len()
    ));
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .filter_map(|n| match &n.captures {
                CaptureLocation::Ssh(t) => Some((
                    n.name.to_string(),
                    s.spawn(move || fetch_node(n, t, queries, slack, cache)),
                )),
                CaptureLocation::Local(_) => None,
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                let r = h.join().unwrap_or_else(|_| {
                    Err(RemoteError::Listing(
                        name.clone(),
                        "fetch thread panicked".into(),
                    ))
                });
                // Success is logged by `fetch_node` (mode and bytes).
                if let Err(e) = &r {
                    tracing::warn!(node = %name, "remote captures unavailable: {e}");
                }
                (name, r)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn f(name: &str, mtime_s: i64) -> RemoteFile {
        RemoteFile {
            name: name.into(),
            size: 100,
            mtime: mtime_s * S,
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
            &[(5 * 3600 * S + 10 * S, 5 * 3600 * S + 70 * S)],
            2 * S,
        );
        let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["cap-06.pcap"]);
        assert_eq!(cov, vec![(0, 24 * 3600 * S)]);
        // A window across a rotation takes both neighbours.
        let (chosen, _) = select(
            &files,
            &[(6 * 3600 * S - 5 * S, 6 * 3600 * S + 5 * S)],
            2 * S,
        );
        assert_eq!(chosen.len(), 2);
        // Before the first file ends: only the first file can hold it.
        let (chosen, _) = select(&files, &[(10 * S, 20 * S)], 2 * S);
        assert_eq!(
            chosen.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["cap-01.pcap"]
        );
        // After the newest file's mtime: nothing.
        let (chosen, _) = select(&files, &[(30 * 3600 * S, 31 * 3600 * S)], 2 * S);
        assert!(chosen.is_empty());
    }

    #[test]
    fn listing_and_quoting() {
        let l =
            parse_listing(b"1234 1683279187.5000000000 cap 1.pcap\x0099 1683279188 b.pcapng\x00")
                .unwrap()
                .files;
        assert_eq!(
            l[0],
            RemoteFile {
                name: "cap 1.pcap".into(),
                size: 1234,
                mtime: 1683279187 * S + S / 2
            }
        );
        assert_eq!(l[1].mtime, 1683279188 * S);
        assert!(parse_listing(b"x y\x00").is_err());
        // D14: names may hold newlines, even ones that look like records;
        // a name that is not UTF-8 is set aside, not fatal.
        let l = parse_listing(b"1 1683279187 a\nb.pcap\x002 1683279188 c.pcap\n3 1683279189 d.pcap\x004 1683279190 \xff.pcap\x00")
            .unwrap();
        assert_eq!(
            l.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["a\nb.pcap", "c.pcap\n3 1683279189 d.pcap"]
        );
        assert_eq!(l.unusable_names, ["\u{fffd}.pcap"]);
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert!(is_capture_name("ring_00012_20230505173307.pcapng"));
        assert!(is_capture_name("cap.pcap3"));
        assert!(is_capture_name("cap-1.pcap.zst"));
        assert!(!is_capture_name("README"));
    }

    fn fq(port: Option<u16>, ip: Option<&str>, backend: Option<&str>) -> FlowQuery {
        FlowQuery {
            proxy_port: port,
            proxy_ip: ip.map(|i| i.parse().unwrap()),
            backend: backend.map(|b| b.parse().unwrap()),
            since: 0,
            until: 1,
        }
    }

    #[test]
    fn filters_are_exact_then_coarse_then_absent() {
        let qs = [
            fq(Some(51392), Some("10.1.1.5"), Some("10.0.0.100:80")),
            fq(Some(51392), Some("10.1.1.5"), Some("10.0.0.100:80")),
            fq(None, Some("10.1.1.5"), Some("10.0.0.100:8080")),
            fq(Some(40000), None, None),
            // Matches nothing: left out.
            fq(None, None, None),
        ];
        let (f, p) = bpf_filter(&qs, MAX_FILTER_LEN).unwrap();
        assert_eq!(p, FilterPrecision::Exact);
        assert_eq!(
            f,
            "tcp and ((host 10.1.1.5 and host 10.0.0.100 and port 8080) or \
             (host 10.1.1.5 and port 51392 and host 10.0.0.100 and port 80) or (port 40000))"
        );
        // Too long: backend ports plus a range over the bare proxy ports.
        let (f, p) = bpf_filter(&qs, 60).unwrap();
        assert_eq!(p, FilterPrecision::Coarse);
        assert_eq!(f, "tcp and (port 80 or port 8080 or portrange 40000-40000)");
        // All queries name the proxy: narrowed to it.
        let many: Vec<FlowQuery> = (0..500)
            .map(|i| fq(Some(30000 + i), Some("10.1.1.5"), Some("10.0.0.100:80")))
            .collect();
        let (f, p) = bpf_filter(&many, MAX_FILTER_LEN).unwrap();
        assert_eq!(p, FilterPrecision::Coarse);
        assert_eq!(f, "tcp and (port 80) and (host 10.1.1.5)");
        assert!(bpf_filter(&many, 10).is_none());
        assert!(bpf_filter(&[fq(None, None, None)], MAX_FILTER_LEN).is_none());
        assert_eq!(
            with_vlan("tcp"),
            "(tcp) or (vlan and (tcp))",
            "tagged frames too"
        );
    }

    #[test]
    fn probe_and_tcpdump_commands() {
        let (tools, listing) = parse_probe(
            b"tool tcpdump /usr/bin/tcpdump\0tool tcpdump /usr/sbin/tcpdump\x0012 1683279187 cap.pcap\0",
        );
        assert_eq!(
            tools,
            HostTools {
                wiretrail: None,
                tcpdump: Some("/usr/bin/tcpdump".into())
            }
        );
        assert_eq!(parse_listing(&listing).unwrap().files.len(), 1);
        assert!(listing_command("/cap dir").starts_with("sh -c '"));
        assert_eq!(
            tcpdump_command("/usr/bin/tcpdump", "/d/c.pcap", "tcp"),
            "'/usr/bin/tcpdump' -r - -w - --time-stamp-precision=nano 'tcp' < '/d/c.pcap'"
        );
        assert!(tcpdump_command("td", "/d/c.pcap.gz", "tcp")
            .starts_with("gzip -dc < '/d/c.pcap.gz' | "));
        assert!(tcpdump_command("td", "/d/c.pcap.zst2", "tcp").starts_with("zstd -dc < "));
        assert_eq!(filtered_name("cap-05.pcap.gz"), "cap-05.pcap");
        assert_eq!(filtered_name("cap.pcap.zst3"), "cap.pcap3");
        assert_eq!(filtered_name("cap.pcap7"), "cap.pcap7");
    }

    /// D15: options end before the destination; the remote command
    /// follows it directly.
    #[test]
    fn the_destination_comes_after_the_end_of_options() {
        let t = SshTarget::parse("ssh://cap@backend-01:2222/var/cap").unwrap();
        let c = ssh_command(&t, &["-F".into(), "cfg".into()]);
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let dd = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dd + 1], "cap@backend-01");
        assert_eq!(args.len(), dd + 2, "{args:?}");
        assert!(args[..dd].ends_with(&["-F".to_string(), "cfg".to_string()]));
        assert!(args[..dd].contains(&"2222".to_string()));
    }

    #[test]
    fn windows_merge_and_shift() {
        let q = |a: i64, b: i64| FlowQuery {
            proxy_port: Some(1),
            proxy_ip: None,
            backend: None,
            since: a,
            until: b,
        };
        let w = node_windows(
            &[q(100, 200), q(150, 300), q(1000, 1100)],
            10,
            Some(0.000_000_05),
        );
        assert_eq!(w, vec![(40, 260), (940, 1060)]);
    }
}
