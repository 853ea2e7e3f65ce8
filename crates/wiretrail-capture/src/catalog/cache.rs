//! The on-disk cache of per-file index entries.
//!
//! One small JSON document per capture file, named after a hash of its
//! canonical path, in a cache directory of its own: captures often sit on
//! read-only or shared storage, so nothing is ever written next to them.
//! An entry is valid only for the exact (path, size, mtime) it was built
//! from; anything else is a miss and the file is indexed again.
//!
//! Entries are written to a temporary file and renamed into place. A process
//! killed between the two (kill -9, OOM) leaves the temporary file behind;
//! the next run removes such leftovers, but only files of our own naming
//! scheme and only once they are old enough that no live writer can still
//! be busy with them.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of the file's head that identify it across growth.
pub(crate) const HEAD_BYTES: usize = 4096;

/// FNV-1a of the first `HEAD_BYTES` (or fewer) bytes, with their count.
pub(crate) fn head_print(path: &Path, len: usize) -> Option<(u32, u64)> {
    let mut buf = vec![0u8; len];
    let mut f = std::fs::File::open(path).ok()?;
    f.read_exact(&mut buf).ok()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &buf {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some((len as u32, h))
}

/// Bump when the cached entry's shape or meaning changes.
const CACHE_VERSION: u32 = 3;

/// A temporary entry file this old is a leftover of a killed run (a live
/// writer holds one for milliseconds).
const STALE_TMP_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// `$XDG_CACHE_HOME/wiretrail`, else `$HOME/.cache/wiretrail`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    Some(base.join("wiretrail"))
}

/// The identity a cached entry is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheKey {
    pub path: PathBuf,
    pub size: u64,
    #[serde(rename = "mtime_ns")]
    pub mtime: crate::time::Timestamp,
    /// Index spacing the entry was built with.
    pub index_every: u64,
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    version: u32,
    key: CacheKey,
    entry: T,
}

#[derive(Debug)]
pub(crate) struct EntryCache {
    dir: PathBuf,
}

impl EntryCache {
    pub fn new(root: &Path) -> Self {
        EntryCache {
            dir: root.join(format!("catalog-v{CACHE_VERSION}")),
        }
    }

    /// Removes temporary files that killed runs left in the cache
    /// directory: only names of the form `<16 hex>-<name>.json.tmp<pid>` (or
    /// `.tmp<pid>`, as older versions wrote them), only regular files, only
    /// older than [`STALE_TMP_AFTER`]. Returns how many were removed.
    pub fn sweep_stale(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_our_tmp(name) {
                continue;
            }
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= STALE_TMP_AFTER);
            if meta.is_file() && old && std::fs::remove_file(e.path()).is_ok() {
                tracing::debug!("removed a stale cache temp file {}", e.path().display());
                removed += 1;
            }
        }
        removed
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn slot(&self, path: &Path) -> PathBuf {
        // FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in path.as_os_str().as_encoded_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Keep the name readable for whoever looks into the cache.
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .take(60)
            .collect();
        self.dir.join(format!("{h:016x}-{name}.json"))
    }

    /// The cached entry for exactly this key, if any. A damaged or stale
    /// cache file is a miss (and gets overwritten), never an error.
    pub fn load<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        let bytes = std::fs::read(self.slot(&key.path)).ok()?;
        let stored: Stored<T> = serde_json::from_slice(&bytes).ok()?;
        (stored.version == CACHE_VERSION && stored.key == *key).then_some(stored.entry)
    }

    /// The entry cached for the same path and index spacing whatever its
    /// size and mtime (to extend a file that grew).
    pub fn load_same_path<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        let bytes = std::fs::read(self.slot(&key.path)).ok()?;
        let stored: Stored<T> = serde_json::from_slice(&bytes).ok()?;
        let same = stored.version == CACHE_VERSION
            && stored.key.path == key.path
            && stored.key.index_every == key.index_every;
        same.then_some(stored.entry)
    }

    /// Writes atomically (temp file + rename) so a concurrent reader never
    /// sees half a document.
    pub fn store<T: Serialize>(&self, key: &CacheKey, entry: &T) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let slot = self.slot(&key.path);
        let tmp = tmp_slot(&slot);
        let doc = Stored {
            version: CACHE_VERSION,
            key: key.clone(),
            entry,
        };
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&doc)?)?;
        f.sync_data().ok();
        drop(f);
        std::fs::rename(&tmp, &slot)
    }
}

/// Where an entry is written before it is renamed into `slot`.
fn tmp_slot(slot: &Path) -> PathBuf {
    let mut name = slot.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    slot.with_file_name(name)
}

/// `0123456789abcdef-name.json.tmp4242` (or `...-name.tmp4242`, the form
/// before cache version 3): a temporary entry of ours.
fn is_our_tmp(name: &str) -> bool {
    let Some((stem, pid)) = name.rsplit_once(".tmp") else {
        return false;
    };
    let hash = stem.get(..16).unwrap_or("");
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && hash.len() == 16
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && stem.as_bytes().get(16) == Some(&b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_only_ours() {
        assert!(is_our_tmp("0123456789abcdef-be1.pcap.json.tmp4242"));
        assert!(is_our_tmp("0123456789abcdef-be1.pcap.tmp7"));
        assert!(!is_our_tmp("0123456789abcdef-be1.pcap.json"));
        assert!(!is_our_tmp("notes.tmp12"));
        assert!(!is_our_tmp("0123456789abcdef-x.tmpfoo"));
        assert!(!is_our_tmp("0123456789abcdeg-x.tmp1"));
        let slot = Path::new("/c/0123456789abcdef-a.pcap.json");
        let tmp = tmp_slot(slot);
        assert!(is_our_tmp(tmp.file_name().unwrap().to_str().unwrap()));
    }
}
