//! Finding a node's capture files: a directory, a glob, or a single file.
//!
//! In a directory every regular file is looked at and kept when its first
//! bytes are a pcap, pcapng, gzip or zstd magic (tcpdump `-G` names can have
//! any extension, or none) or when its name says it is a capture (so a
//! damaged capture is reported, not ignored). Only a 4-byte peek, and only for files the cache
//! does not already know; which the caller decides by asking `is_known`.

use std::io::Read;
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

/// What discovery found for one source.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub files: Vec<PathBuf>,
    /// Sources or entries that could not be read, with why.
    pub problems: Vec<String>,
}

/// Expands `sources` (directories, globs or files) into capture files.
/// `is_known(path, size, mtime)` lets the caller skip the magic peek for
/// files its cache already describes. Explicitly named files are always kept
/// (a bad one then gets a clear reader error instead of vanishing).
pub(crate) fn discover(
    sources: &[String],
    is_known: &dyn Fn(&Path, &std::fs::Metadata) -> bool,
) -> Found {
    let mut out = Found::default();
    for src in sources {
        let path = Path::new(src);
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(rd) => {
                    for entry in rd {
                        match entry {
                            Ok(e) => consider(&e.path(), is_known, &mut out),
                            Err(e) => out.problems.push(format!("{src}: cannot list: {e}")),
                        }
                    }
                }
                Err(e) => out.problems.push(format!("{src}: cannot list: {e}")),
            }
        } else if path.is_file() {
            out.files.push(path.to_path_buf());
        } else if src.contains(['*', '?', '[']) {
            match glob::glob(src) {
                Ok(paths) => {
                    let before = out.files.len();
                    for p in paths {
                        match p {
                            Ok(p) if p.is_file() => consider(&p, is_known, &mut out),
                            Ok(_) => {}
                            Err(e) => out.problems.push(format!("{src}: {e}")),
                        }
                    }
                    if out.files.len() == before {
                        out.problems
                            .push(format!("{src}: the pattern matches no capture file"));
                    }
                }
                Err(e) => out.problems.push(format!("{src}: bad pattern: {e}")),
            }
        } else {
            out.problems
                .push(format!("{src}: no such file or directory"));
        }
    }
    out.files.sort();
    out.files.dedup();
    out
}

fn consider(path: &Path, is_known: &dyn Fn(&Path, &std::fs::Metadata) -> bool, out: &mut Found) {
    let Ok(meta) = std::fs::metadata(path) else {
        out.problems
            .push(format!("{}: cannot stat", path.display()));
        return;
    };
    if !meta.is_file() {
        return;
    }
    if is_known(path, &meta) {
        out.files.push(path.to_path_buf());
        return;
    }
    match sniff(path) {
        Ok(true) => out.files.push(path.to_path_buf()),
        // Named like a capture but not one: keep it, the reader says why.
        Ok(false) if super::names::looks_like_capture_name(path) => {
            out.files.push(path.to_path_buf())
        }
        Ok(false) => {}
        Err(e) => out
            .problems
            .push(format!("{}: cannot read: {e}", path.display())),
    }
}
