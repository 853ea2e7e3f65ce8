//! The on-disk cache of per-file index entries.
//!
//! One small JSON document per capture file, named after a hash of its
//! canonical path, in a cache directory of its own: captures often sit on
//! read-only or shared storage, so nothing is ever written next to them.
//! An entry is valid only for the exact (path, size, mtime) it was built
//! from; anything else is a miss and the file is indexed again.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bump when the cached entry's shape or meaning changes.
const CACHE_VERSION: u32 = 2;

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
    pub mtime_ns: i64,
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
        let tmp = slot.with_extension(format!("tmp{}", std::process::id()));
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
