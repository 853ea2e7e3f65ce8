//! The system `ssh` client: one command per call, the destination after
//! `--` (options end there; [`crate::config::SshTarget::parse`] refuses a
//! host or user beginning with `-`), `BatchMode=yes` so a missing key fails
//! at once instead of prompting. Output is streamed into the local cache
//! atomically.

use super::error::RemoteError;
use crate::config::SshTarget;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a remote command's exit status 1 with "truncated" on stderr means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Truncated {
    /// A failure like any other.
    Fails,
    /// tcpdump read a file that ends inside a record (the newest rotation,
    /// still being written): what it wrote up to there is a whole pcap and
    /// is kept, as a copy of that file would be.
    KeepsWholeRecords,
}

/// Single-quote for the remote POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `ssh` invocation for a node, without the remote command.
pub(super) fn ssh_command(t: &SshTarget, extra: &[String]) -> Command {
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

pub(super) fn run(
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
/// See [`Truncated`] for what a truncated input means.
pub(super) fn run_to_file(
    t: &SshTarget,
    extra: &[String],
    what: &str,
    remote_cmd: &str,
    dest: &Path,
    truncated: Truncated,
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
    let truncated = truncated == Truncated::KeepsWholeRecords
        && status.code() == Some(1)
        && n >= 24
        && stderr.contains("truncated");
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quoting() {
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }
}
