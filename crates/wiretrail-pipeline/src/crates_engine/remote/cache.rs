//! The local cache of a remote node's files (`<cache>/<node>/<host…>/`):
//! each fetched file has a `.NAME.remote` note beside it (remote size and
//! mtime, and for filtered files the remote path and the filter), written
//! after the file is renamed into place, so a re-run over the same windows
//! transfers nothing and a half-copied file is never taken for a hit.

use super::error::RemoteError;
use super::listing::RemoteFile;
use crate::config::SshTarget;
use std::path::{Path, PathBuf};
use wiretrail_capture::Timestamp;

/// Cache directory for one remote location.
pub(super) fn cache_dir_for(cache: &Path, node: &str, t: &SshTarget) -> PathBuf {
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

/// The local name of a filtered remote file: the same name, less a
/// compression suffix (what comes back is plain pcap).
pub(super) fn filtered_name(name: &str) -> String {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    let stem = stem
        .strip_suffix(".gz")
        .or_else(|| stem.strip_suffix(".zst"))
        .unwrap_or(stem);
    format!("{stem}{num}")
}

/// `<size> <mtime>` of the remote file, and what else decides a cache hit.
pub(super) fn stamp(f: &RemoteFile, extra: &str) -> String {
    format!("{} {}{extra}", f.size, f.mtime)
}

pub(super) fn fresh(dest: &Path, meta: &Path, stamp: &str, size: Option<u64>) -> bool {
    std::fs::read_to_string(meta)
        .map(|s| s == stamp)
        .unwrap_or(false)
        && std::fs::metadata(dest)
            .map(|m| size.is_none_or(|s| m.len() == s))
            .unwrap_or(false)
}

/// Record a fetched file's remote identity; keep the remote mtime so the
/// local catalog cache keys stay stable.
pub(super) fn seal(
    dest: &Path,
    meta: &Path,
    stamp: &str,
    mtime: Timestamp,
) -> Result<(), RemoteError> {
    if let Ok(file) = std::fs::File::options().write(true).open(dest) {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_nanos(u64::try_from(mtime.as_nanos()).unwrap_or(0));
        let _ = file.set_modified(t);
    }
    std::fs::write(meta, stamp).map_err(|source| RemoteError::Cache {
        path: meta.to_path_buf(),
        source,
    })
}

pub(super) fn fxhash(s: &str) -> u64 {
    // FNV-1a: a stable name for the same request.
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_files_keep_their_name_less_the_compression() {
        assert_eq!(filtered_name("cap-05.pcap.gz"), "cap-05.pcap");
        assert_eq!(filtered_name("cap.pcap.zst3"), "cap.pcap3");
        assert_eq!(filtered_name("cap.pcap7"), "cap.pcap7");
    }
}
