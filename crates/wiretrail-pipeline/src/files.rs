//! Files every mode writes: atomically (a temporary sibling, then a rename),
//! so a crash or a second reader never sees half a file; the temporaries a
//! killed run left behind, recognised and removed; names made from ids.
//!
//! A leaf: it knows nothing of reports, engines or captures, so `outputs`,
//! `batch` and the remote-capture cache all use it without depending on
//! each other.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn werr(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_path_buf(),
        source,
    }
}

/// The temporary sibling `path` is written through: `.NAME.tmp-PID`, hidden,
/// and naming the process that writes it, so a later run can tell a
/// leftover of a killed run from a file being written now.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The process id in a [`temporary_path`] file name.
fn temporary_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (name, pid) = rest.rsplit_once(".tmp-")?;
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` runs; `None` where that cannot be told (no /proc).
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
}

/// Remove the [`temporary_path`] files in `dir` left by processes that no
/// longer run (a `kill -9`, a power loss): their contents were never
/// renamed into place, so nothing refers to them. Files of a running
/// process (another wiretrail writing into the same directory), or of any
/// other name, are left alone; where liveness cannot be told, only those
/// untouched for a day are removed. Returns what was removed.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else {
            continue;
        };
        if pid == me || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let stale = match process_alive(pid) {
            Some(alive) => !alive,
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(86_400)),
        };
        if stale && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!(file = %e.path().display(), pid, "removed the temporary file of a run that no longer runs");
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

/// Write `path` through a temporary sibling and a rename.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr(path))?;
    }
    let tmp = temporary_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        f(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr(path))
}

/// Ids (incidents, nodes, hosts) become file names: keep them boring.
pub fn safe_file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised_by_name_and_owner() {
        assert_eq!(temporary_owner(".report.json.tmp-4242"), Some(4242));
        assert_eq!(temporary_owner(".a.b.tmp-1.tmp-7"), Some(7));
        for other in [
            "report.json.tmp-4242",
            ".report.json.tmp-",
            ".report.json.tmp-12x",
            "..tmp-5",
            ".report.json",
            "notes.tmp",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
        let p = temporary_path(Path::new("/d/chunks/x.json"));
        assert_eq!(
            temporary_owner(p.file_name().unwrap().to_str().unwrap()),
            Some(std::process::id())
        );
        assert_eq!(p.parent(), Some(Path::new("/d/chunks")));
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_cause() {
        let d = tempfile::tempdir().unwrap();
        // A directory where the file should go: the rename fails.
        let path = d.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), "keep").unwrap();
        let e = write_atomic(&path, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(e.to_string(), format!("cannot write {}", path.display()));
        assert!(std::error::Error::source(&e).is_some());
        // Nothing left behind.
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
