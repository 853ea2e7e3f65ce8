//! Finding a node's capture files: a directory, a glob (`**` included), or a
//! single file.
//!
//! In a directory every regular file is looked at and kept when its first
//! bytes are a pcap, pcapng, gzip or zstd magic (tcpdump `-G` names can have
//! any extension, or none) or when its name says it is a capture (so a
//! damaged capture is reported, not ignored). Only a 4-byte peek, and only
//! for files the cache does not already know; which the caller decides by
//! asking `is_known`. A file that cannot even be peeked at is kept when its
//! name says capture or rotation: the catalog then reports it as lost data
//! at its place in the series instead of silently covering over it.
//!
//! Symbolic links are followed, but every directory and file is identified
//! by (device, inode): a `current -> .` link cannot make a `**` walk loop,
//! and a file reached by two names (`latest.pcap -> trace.pcap7`) is read
//! once, under its real name (the one that carries the rotation number).

use super::names::{looks_like_capture_name, parse_hint, NameHint};
use crate::problem::{CaptureProblem, ProblemKind};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Capture-looking file magics: pcap (µs/ns, both orders), pcapng SHB,
/// gzip, zstd.
fn looks_like_capture(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 8] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
        [0x1f, 0x8b, 0x08, 0x00],
        [0x28, 0xb5, 0x2f, 0xfd],
        [0x1f, 0x8b, 0x08, 0x08],
    ];
    head.len() >= 4 && (MAGICS.iter().any(|m| head[..4] == m[..]) || head[..2] == [0x1f, 0x8b])
}

fn sniff(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < 4 {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(looks_like_capture(&head[..n]))
}

/// What discovery found for a node's sources.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Each file once, sorted.
    pub files: Vec<PathBuf>,
    /// Sources that gave nothing, entries that could not be looked at.
    pub problems: Vec<CaptureProblem>,
}

/// (device, inode): what a file or directory *is*, whatever it is called.
type Id = (u64, u64);

fn id(meta: &std::fs::Metadata) -> Id {
    (meta.dev(), meta.ino())
}

/// Files gathered so far, one per inode.
#[derive(Default)]
struct Acc {
    by_id: HashMap<Id, PathBuf>,
    /// Files whose identity is unknown (could not stat): kept by path.
    loose: HashSet<PathBuf>,
    problems: Vec<CaptureProblem>,
}

impl Acc {
    fn push(&mut self, path: PathBuf, meta: Option<&std::fs::Metadata>) {
        let Some(meta) = meta else {
            self.loose.insert(path);
            return;
        };
        match self.by_id.get_mut(&id(meta)) {
            None => {
                self.by_id.insert(id(meta), path);
            }
            Some(kept) => {
                // Keep the real name over a link to it (the real name
                // carries the rotation hint), then the shorter path.
                let is_link = |p: &Path| {
                    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
                };
                let better = (is_link(kept), kept.as_os_str().len(), kept.clone())
                    > (is_link(&path), path.as_os_str().len(), path.clone());
                if better {
                    *kept = path;
                }
            }
        }
    }

    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(CaptureProblem::new(
            ProblemKind::UnusableSource,
            path,
            message,
        ));
    }
}

/// Expands `sources` (directories, globs or files) into capture files.
/// `is_known(path, meta)` lets the caller skip the magic peek for files its
/// cache already describes. Explicitly named files are always kept (a bad
/// one then gets a clear reader error instead of vanishing).
pub(crate) fn discover(
    sources: &[String],
    is_known: &dyn Fn(&Path, &std::fs::Metadata) -> bool,
) -> Found {
    let mut acc = Acc::default();
    for src in sources {
        let path = Path::new(src);
        let before = acc.by_id.len() + acc.loose.len();
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(rd) => {
                    for entry in rd {
                        match entry {
                            Ok(e) => consider(&e.path(), is_known, &mut acc),
                            Err(e) => acc.problem(src.as_str(), format!("cannot list: {e}")),
                        }
                    }
                }
                Err(e) => acc.problem(src.as_str(), format!("cannot list the directory: {e}")),
            }
            if acc.by_id.len() + acc.loose.len() == before {
                acc.problem(src.as_str(), "the directory holds no capture file");
            }
        } else if path.is_file() {
            let meta = std::fs::metadata(path).ok();
            acc.push(path.to_path_buf(), meta.as_ref());
        } else if src.contains(['*', '?', '[']) {
            match glob::Pattern::new(src) {
                Ok(pattern) => {
                    walk_pattern(src, &pattern, is_known, &mut acc);
                    if acc.by_id.len() + acc.loose.len() == before {
                        acc.problem(src.as_str(), "the pattern matches no capture file");
                    }
                }
                Err(e) => acc.problem(src.as_str(), format!("bad pattern: {e}")),
            }
        } else {
            let why = match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => "a broken symbolic link".to_string(),
                Ok(_) => "neither a file nor a directory".to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    "no such file or directory".to_string()
                }
                Err(e) => format!("cannot look at it: {e}"),
            };
            acc.problem(src.as_str(), why);
        }
    }
    let mut files: Vec<PathBuf> = acc.by_id.into_values().chain(acc.loose).collect();
    files.sort();
    files.dedup();
    Found {
        files,
        problems: acc.problems,
    }
}

/// Walks the literal directory prefix of `pattern` (as deep as the pattern
/// can reach; without limit below a `**`), each directory once.
fn walk_pattern(
    src: &str,
    pattern: &glob::Pattern,
    is_known: &dyn Fn(&Path, &std::fs::Metadata) -> bool,
    acc: &mut Acc,
) {
    let path = Path::new(src);
    let mut base = PathBuf::new();
    let mut rest: Vec<String> = Vec::new();
    for c in path.components() {
        let s = c.as_os_str().to_string_lossy();
        if rest.is_empty() && !s.contains(['*', '?', '[']) {
            base.push(c);
        } else {
            rest.push(s.into_owned());
        }
    }
    // Components left below the base; None: unbounded (`**`).
    let depth = if rest.iter().any(|c| c == "**") {
        None
    } else {
        Some(rest.len())
    };
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut seen_dirs = HashSet::new();
    // A relative pattern without a literal prefix walks the working
    // directory, and its paths keep the pattern's relative form.
    let listed = |dir: &Path| {
        if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        }
    };
    if let Ok(m) = std::fs::metadata(listed(&base)) {
        seen_dirs.insert(id(&m));
    }
    let mut stack = vec![(base, 0usize)];
    while let Some((dir, level)) = stack.pop() {
        let rd = match std::fs::read_dir(listed(&dir)) {
            Ok(rd) => rd,
            Err(e) => {
                acc.problem(dir.display().to_string(), format!("cannot list: {e}"));
                continue;
            }
        };
        for entry in rd {
            let p = match entry {
                Ok(e) => dir.join(e.file_name()),
                Err(e) => {
                    acc.problem(dir.display().to_string(), format!("cannot list: {e}"));
                    continue;
                }
            };
            let Ok(meta) = std::fs::metadata(&p) else {
                // A dangling link or a vanished file: kept if the pattern
                // wanted it, so that its loss is reported.
                if pattern.matches_path_with(&p, opts) && named_like_capture(&p) {
                    acc.push(p, None);
                }
                continue;
            };
            if meta.is_dir() {
                let deeper = depth.is_none_or(|d| level + 1 < d);
                // A directory already walked (a loop, or two links to it) is
                // not walked again.
                if deeper && seen_dirs.insert(id(&meta)) {
                    stack.push((p, level + 1));
                } else if deeper {
                    tracing::debug!("{}: already walked (symbolic link loop?)", p.display());
                }
            } else if meta.is_file() && pattern.matches_path_with(&p, opts) {
                consider_with(&p, &meta, is_known, acc);
            }
        }
    }
}

fn consider(path: &Path, is_known: &dyn Fn(&Path, &std::fs::Metadata) -> bool, acc: &mut Acc) {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => consider_with(path, &meta, is_known, acc),
        Ok(_) => {}
        // Named like a capture but cannot even be looked at (a link loop, a
        // vanished target): kept, so that the catalog reports the data lost
        // at its place in the series.
        Err(_) if named_like_capture(path) => acc.push(path.to_path_buf(), None),
        Err(_) => {}
    }
}

fn consider_with(
    path: &Path,
    meta: &std::fs::Metadata,
    is_known: &dyn Fn(&Path, &std::fs::Metadata) -> bool,
    acc: &mut Acc,
) {
    if is_known(path, meta) {
        acc.push(path.to_path_buf(), Some(meta));
        return;
    }
    match sniff(path) {
        Ok(true) => acc.push(path.to_path_buf(), Some(meta)),
        // Named like a capture but not one: keep it, the reader says why.
        Ok(false) if looks_like_capture_name(path) => acc.push(path.to_path_buf(), Some(meta)),
        Ok(false) => {}
        // Cannot be read: if its name says capture or rotation, it is a
        // capture we lose, and the catalog must say so where it sits.
        Err(_) if named_like_capture(path) => acc.push(path.to_path_buf(), Some(meta)),
        Err(e) => acc.problem(
            path.display().to_string(),
            format!("cannot read: {e} (its name does not say whether it is a capture)"),
        ),
    }
}

fn named_like_capture(path: &Path) -> bool {
    looks_like_capture_name(path) || parse_hint(path) != NameHint::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_magics() {
        assert!(looks_like_capture(&[0xd4, 0xc3, 0xb2, 0xa1]));
        assert!(looks_like_capture(&[0x0a, 0x0d, 0x0d, 0x0a]));
        assert!(!looks_like_capture(b"hello"));
        assert!(!looks_like_capture(&[0xd4]));
    }
}
