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
//!
//! Parts: `ssh` (the client), `listing` (the probe and the listing),
//! `select` (which files can meet the windows), `bpf` (what the host
//! keeps), `cache` (the local copies); here, the order in which the modes
//! are tried for each node.

mod bpf;
mod cache;
mod error;
mod listing;
mod select;
mod ssh;

pub use bpf::{
    bpf_filter, remote_extract_command, tcpdump_command, FilterPrecision, MAX_FILTER_LEN,
};
pub use error::RemoteError;
pub use listing::{listing_command, parse_listing, parse_probe, HostTools, Listing, RemoteFile};
pub use select::{is_capture_name, node_windows, select};
pub use ssh::sh_quote;

use crate::config::{CaptureLocation, Node, RemoteExtract, SshTarget};
use crate::progress::Progress;
use bpf::with_vlan;
use cache::{cache_dir_for, filtered_name, fresh, fxhash, seal, stamp};
use ssh::{run, run_to_file, Truncated};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};
use wiretrail_correlate::model::{Problem, ProblemKind, ProblemSource};

/// How a node's captures crossed the network, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchMode {
    /// `wiretrail capture extract` ran on the host: only the matched
    /// packets came back, as one pcapng.
    Extract,
    /// The host's `tcpdump` kept only the windows' flows of each
    /// overlapping file.
    Tcpdump,
    /// Each overlapping file was copied whole (or nothing had to be).
    #[default]
    Copy,
}

impl FetchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchMode::Extract => "extract",
            FetchMode::Tcpdump => "tcpdump",
            FetchMode::Copy => "copy",
        }
    }
}

impl std::fmt::Display for FetchMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was brought over for one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// Local files to catalog (copies or one remote-extracted pcapng).
    pub files: Vec<PathBuf>,
    /// The node's capture coverage as the listing shows it (node clock).
    pub coverage: Vec<(Timestamp, Timestamp)>,
    /// Bytes that crossed the network (file contents or extracted pcapng).
    pub bytes_transferred: u64,
    /// Bytes of the remote directory's capture files, for comparison.
    pub remote_dir_bytes: u64,
    pub mode: FetchMode,
    /// What did not go as planned (a remote tool that failed, a file that
    /// could not be fetched), each of this node.
    pub problems: Vec<Problem>,
    /// Which remote file each local file holds (all or, for `tcpdump`,
    /// the filtered part of it); empty for `extract`.
    pub origins: Vec<(PathBuf, String)>,
}

/// Fetch one node's part of the windows.
pub fn fetch_node(
    node: &Node,
    t: &SshTarget,
    queries: &[FlowQuery],
    slack: Duration,
    cache: &Path,
) -> Result<Fetched, RemoteError> {
    let job = Job {
        node,
        t,
        queries,
        windows: node_windows(queries, slack, node.clock_offset_s),
        dir: cache_dir_for(cache, &node.name, t),
    };
    std::fs::create_dir_all(&job.dir).map_err(|source| RemoteError::Cache {
        path: job.dir.clone(),
        source,
    })?;
    // What a killed run left half-copied here is never used (a cache hit
    // needs the `.remote` note written after the rename): remove it.
    crate::files::remove_stale_temporaries(&job.dir);
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
    let (chosen, coverage) = select(&files, &job.windows, Duration::from_secs(2));
    let mut fetched = Fetched {
        coverage,
        remote_dir_bytes,
        ..Fetched::default()
    };
    for name in listing.unusable_names {
        fetched.problems.push(job.problem(
            ProblemKind::UnusableSource,
            format!("{t}: skipped {name:?}: its name is not UTF-8"),
        ));
    }
    if job.windows.is_empty() {
        return Ok(fetched);
    }
    if chosen.is_empty() {
        fetched.problems.push(job.problem(
            ProblemKind::CaptureGap,
            format!("no capture file of {t} overlaps the windows"),
        ));
        return Ok(fetched);
    }
    job.fetch(&tools, &chosen, &mut fetched)?;
    tracing::info!(
        node = %node.name,
        mode = %fetched.mode,
        files = fetched.files.len(),
        bytes = fetched.bytes_transferred,
        remote_files_bytes = chosen.iter().map(|f| f.size).sum::<u64>(),
        remote_dir_bytes = fetched.remote_dir_bytes,
        "remote captures fetched"
    );
    Ok(fetched)
}

/// One node's fetch: what each step needs.
struct Job<'a> {
    node: &'a Node,
    t: &'a SshTarget,
    queries: &'a [FlowQuery],
    /// The queries' windows on the node's clock, merged.
    windows: Vec<(Timestamp, Timestamp)>,
    /// The node's local cache directory.
    dir: PathBuf,
}

impl Job<'_> {
    /// A problem of this node.
    fn problem(&self, kind: ProblemKind, message: String) -> Problem {
        Problem::new(
            kind,
            ProblemSource::Node {
                node: self.node.name.to_string(),
            },
            message,
        )
    }

    /// A problem of one of this node's remote files.
    fn file_problem(&self, remote_path: &str, kind: ProblemKind, message: String) -> Problem {
        Problem::new(
            kind,
            ProblemSource::Capture {
                node: self.node.name.to_string(),
                path: remote_path.to_string(),
                offset: None,
            },
            message,
        )
    }

    /// Bring over what the chosen files hold for the windows, by the
    /// cheapest mode the host and the node's setting allow.
    fn fetch(
        &self,
        tools: &HostTools,
        chosen: &[RemoteFile],
        fetched: &mut Fetched,
    ) -> Result<(), RemoteError> {
        if self.node.remote_extract == RemoteExtract::Auto {
            if let Some(bin) = &tools.wiretrail {
                if self.extract_there(bin, fetched) {
                    return Ok(());
                }
            }
        }
        let filter = self.filter(tools, fetched);
        fetched.mode = match filter {
            Some(_) => FetchMode::Tcpdump,
            None => FetchMode::Copy,
        };
        for f in chosen {
            let remote_path = format!("{}/{}", self.t.dir.trim_end_matches('/'), f.name);
            // `find -printf %f` prints no `/`; a listing that does is not to be
            // trusted with a path.
            if f.name.contains('/') {
                fetched.problems.push(self.file_problem(
                    &remote_path,
                    ProblemKind::UnusableSource,
                    format!("skipped {:?}: not a plain file name", f.name),
                ));
                continue;
            }
            if let Some((td, filter)) = &filter {
                match self.fetch_filtered(td, filter, f, &remote_path) {
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
                    Err(e) => fetched.problems.push(self.file_problem(
                        &remote_path,
                        ProblemKind::UnusableSource,
                        format!(
                            "tcpdump on {} could not filter it, copying it whole: {e}",
                            self.t
                        ),
                    )),
                }
            }
            let (dest, n) = self.copy(f)?;
            fetched.bytes_transferred += n;
            fetched.origins.push((dest.clone(), remote_path));
            fetched.files.push(dest);
        }
        Ok(())
    }

    /// `wiretrail capture extract` on the host; false (and a problem) when
    /// it failed, so the files are filtered or copied instead.
    fn extract_there(&self, bin: &str, fetched: &mut Fetched) -> bool {
        let cmd = remote_extract_command(
            bin,
            &self.node.name,
            &self.t.dir,
            self.queries,
            &self.windows,
        );
        let dest = self
            .dir
            .join(format!("extract-{:016x}.pcapng", fxhash(&cmd)));
        let ssh = &self.node.ssh_options;
        match run_to_file(self.t, ssh, "remote extract", &cmd, &dest, Truncated::Fails) {
            Ok(n) => {
                fetched.bytes_transferred += n;
                fetched.files.push(dest);
                fetched.mode = FetchMode::Extract;
                true
            }
            Err(e) => {
                fetched.problems.push(self.problem(
                    ProblemKind::UnusableSource,
                    format!("remote extract failed, filtering or copying files instead: {e}"),
                ));
                false
            }
        }
    }

    /// The host's tcpdump and the filter it runs, when the node's setting,
    /// the host and the queries allow one; else files are copied whole
    /// (and a problem says why, unless copying was asked for).
    fn filter(&self, tools: &HostTools, fetched: &mut Fetched) -> Option<(String, String)> {
        let td = match (self.node.remote_extract, &tools.tcpdump) {
            (RemoteExtract::Copy, _) => return None,
            (RemoteExtract::Tcpdump, None) => {
                fetched.problems.push(self.problem(
                    ProblemKind::UnusableSource,
                    format!(
                        "remote_extract = \"tcpdump\" but {} has no tcpdump: copying whole files",
                        self.t
                    ),
                ));
                return None;
            }
            (_, None) => return None,
            (_, Some(td)) => td,
        };
        match bpf_filter(self.queries, MAX_FILTER_LEN) {
            Some((f, precision)) => {
                if precision == FilterPrecision::Coarse {
                    tracing::info!(node = %self.node.name, queries = self.queries.len(), "per-flow capture filter too long; using the coarse one: {f}");
                }
                Some((td.clone(), f))
            }
            None => {
                fetched.problems.push(self.problem(
                    ProblemKind::Limit,
                    format!(
                        "no capture filter fits {} queries (at most {MAX_FILTER_LEN} characters): copying whole files",
                        self.queries.len()
                    ),
                ));
                None
            }
        }
    }

    /// One remote file copied whole into the cache (unless the copy there
    /// is of the same remote size and mtime); its path and the bytes moved.
    fn copy(&self, f: &RemoteFile) -> Result<(PathBuf, u64), RemoteError> {
        let dest = self.dir.join(&f.name);
        let meta = self.dir.join(format!(".{}.remote", f.name));
        let stamp = stamp(f, "");
        if fresh(&dest, &meta, &stamp, Some(f.size)) {
            return Ok((dest, 0));
        }
        let cmd = format!("cat -- {}/{}", sh_quote(&self.t.dir), sh_quote(&f.name));
        let what = format!("copy {}", f.name);
        let ssh = &self.node.ssh_options;
        let n = run_to_file(self.t, ssh, &what, &cmd, &dest, Truncated::Fails)?;
        seal(&dest, &meta, &stamp, f.mtime)?;
        Ok((dest, n))
    }

    /// One remote file through the host's tcpdump, into
    /// `<dir>/tcpdump-<filter hash>/<same name>` with a `.<name>.remote`
    /// note beside it (remote size and mtime, remote path, filter). Frame
    /// numbers in reports built over it count the packets of this filtered
    /// file, not of the remote original: evidence therefore names this
    /// local file, which a user can open as it is; the note says which
    /// remote file it came from.
    fn fetch_filtered(
        &self,
        tcpdump: &str,
        filter: &str,
        f: &RemoteFile,
        remote_path: &str,
    ) -> Result<(PathBuf, u64), RemoteError> {
        let sub = self.dir.join(format!("tcpdump-{:016x}", fxhash(filter)));
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
        let ssh = &self.node.ssh_options;
        let run = |filter: &str| {
            let cmd = tcpdump_command(tcpdump, remote_path, filter);
            run_to_file(
                self.t,
                ssh,
                &what,
                &cmd,
                &dest,
                Truncated::KeepsWholeRecords,
            )
        };
        let n = match run(&with_vlan(filter)) {
            Err(RemoteError::Ssh { stderr, .. }) if stderr.contains("VLAN") => run(filter)?,
            r => r?,
        };
        seal(&dest, &meta, &stamp, f.mtime)?;
        Ok((dest, n))
    }
}

/// Fetch every remote node in parallel. Nodes with no query windows are skipped.
pub fn fetch_nodes(
    nodes: &[&Node],
    queries: &[FlowQuery],
    slack: Duration,
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
