//! Inputs: naming, walking directories, opening files as memory maps or
//! (decompressing) streams.

use super::{LogError, ReadProblem, ReadProblemKind};
use crate::config::ParseConfig;
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Set to read plain files as streams instead of memory maps.
pub const NO_MMAP_ENV: &str = "WIRETRAIL_NO_MMAP";

/// One input as the workers and the consumer need to know it.
#[derive(Debug)]
pub(crate) struct InputInfo {
    /// File path as given, `<stdin>`, or the caller's name for a stream.
    pub name: String,
    pub stdin: bool,
    /// The configuration with this input's reference time.
    pub cfg: ParseConfig,
    /// The input is a journald JSON export (judged by its first line; set by
    /// the producer before it hands out the input's first chunk).
    pub journald: std::sync::atomic::AtomicBool,
    /// The workers render records in this form instead of keeping them.
    pub render: Option<crate::render::Format>,
    /// What the workers search this input for (set by the producer from the
    /// input's first bytes before it hands out the first chunk).
    pub searcher: std::sync::OnceLock<super::search::Searcher>,
}

impl InputInfo {
    /// The input's searcher; every format's needles if the producer has not
    /// set one (it always does before the first chunk).
    pub(crate) fn searcher(&self) -> &super::search::Searcher {
        self.searcher
            .get_or_init(|| super::search::Searcher::new(self.cfg.formats))
    }

    /// Decide what to search this input for. Formats the configuration
    /// names (`logs.format`) are all searched. In auto mode (every format),
    /// those [`crate::formats::sniff`] finds in the input's first bytes; a
    /// head shorter than the sniff window from a live stream (stdin handing
    /// over the first lines as they come) says too little: every format is
    /// searched then.
    pub(crate) fn decide(&self, head: &[u8], whole: bool) {
        let auto = self.cfg.formats == crate::config::Formats::ALL;
        let formats = if auto && (whole || head.len() >= crate::formats::SNIFF_BYTES) {
            crate::formats::sniff(head, self.cfg.formats)
        } else {
            self.cfg.formats
        };
        let _ = self.searcher.set(super::search::Searcher::new(formats));
    }
}

/// Something to read, in order.
pub(crate) enum Input {
    File(PathBuf),
    Stdin,
    /// A caller's stream (`LogReader::from_reader`).
    Reader(String, Box<dyn Read + Send>),
}

/// An input, opened.
pub(crate) enum Opened {
    /// A plain file: read through memory-mapped windows (no copy).
    Map {
        file: File,
        len: u64,
    },
    Stream(Box<dyn Read + Send>),
}

/// Directories are walked recursively in name order; `-` is stdin. Every
/// path must exist now.
///
/// Each file is read once and each directory walked once, however many
/// names lead to it: a symbolic link back up the tree (`current -> .`) would
/// otherwise walk the same files again at every level until the path grew
/// too long, and a file named twice would count its errors twice. Files and
/// directories are known by device and inode; what was skipped is said in
/// the returned problems.
pub(crate) fn expand(paths: &[PathBuf]) -> Result<(Vec<Input>, Vec<ReadProblem>), LogError> {
    let mut w = Walk::default();
    for p in paths {
        if p.as_os_str() == "-" {
            w.inputs.push(Input::Stdin);
            continue;
        }
        let md = std::fs::metadata(p).map_err(|source| LogError::Open {
            path: p.clone(),
            source,
        })?;
        if md.is_dir() {
            w.dir(p, &md)?;
        } else {
            w.file(p.clone(), &md);
        }
    }
    Ok((w.inputs, w.problems))
}

/// Device and inode: what a file is, whatever its name.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(md: &std::fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((md.dev(), md.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<FileId> {
    None
}

#[derive(Default)]
struct Walk {
    inputs: Vec<Input>,
    problems: Vec<ReadProblem>,
    /// Files already taken, and the name they were taken by.
    files: std::collections::HashMap<FileId, PathBuf>,
    /// Directories already walked (or being walked), and by which name.
    dirs: std::collections::HashMap<FileId, PathBuf>,
}

impl Walk {
    fn skipped(&mut self, path: &Path, message: String) {
        tracing::warn!("{}: {message}", path.display());
        self.problems.push(ReadProblem {
            kind: ReadProblemKind::Skipped,
            path: path.display().to_string(),
            line: None,
            message,
        });
    }

    fn file(&mut self, path: PathBuf, md: &std::fs::Metadata) {
        if let Some(id) = file_id(md) {
            if let Some(first) = self.files.get(&id) {
                let message = format!("the same file as {}: read once", first.display());
                return self.skipped(&path, message);
            }
            self.files.insert(id, path.clone());
        }
        self.inputs.push(Input::File(path));
    }

    fn dir(&mut self, dir: &Path, md: &std::fs::Metadata) -> Result<(), LogError> {
        if let Some(id) = file_id(md) {
            if let Some(first) = self.dirs.get(&id) {
                let what = if dir.starts_with(first) {
                    "a link back to"
                } else {
                    "the same directory as"
                };
                let message = format!("{what} {} (walked once): skipped", first.display());
                self.skipped(dir, message);
                return Ok(());
            }
            self.dirs.insert(id, dir.to_owned());
        }
        let rd = std::fs::read_dir(dir).map_err(|source| LogError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            match std::fs::metadata(&p) {
                Ok(md) if md.is_dir() => self.dir(&p, &md)?,
                Ok(md) => self.file(p, &md),
                // A dangling link or a file gone meanwhile: opening it says why.
                Err(_) => self.inputs.push(Input::File(p)),
            }
        }
        Ok(())
    }
}

/// Open a file: a memory map for a plain regular file, a stream (through a
/// decompressor when the magic bytes say gzip or zstd) otherwise. Year-less
/// stamps of a file belong before it was last written: its modification
/// time becomes the reference.
pub(crate) fn open_file(path: &Path, cfg: &ParseConfig) -> Result<(Opened, ParseConfig), LogError> {
    let open_err = |source| LogError::Open {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(open_err)?;
    let mut cfg = cfg.clone();
    let md = f.metadata().map_err(open_err)?;
    if let Ok(m) = md.modified() {
        cfg.reference = DateTime::<Utc>::from(m);
    }
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut f, &mut magic).map_err(open_err)?;
    let compressed =
        magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd];
    if md.is_file() && !compressed && md.len() > 0 && std::env::var_os(NO_MMAP_ENV).is_none() {
        // The length is taken now: lines appended while we read are not seen.
        return Ok((
            Opened::Map {
                file: f,
                len: md.len(),
            },
            cfg,
        ));
    }
    let rd = sniff_with(&magic[..n], Box::new(f)).map_err(open_err)?;
    Ok((Opened::Stream(rd), cfg))
}

pub(crate) fn read_up_to(rd: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match rd.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Map `len` bytes of `file` from `offset` read-only.
///
/// SAFETY: a map is sound only while nobody changes the mapped range. Log
/// files are append-only while written (appends past the mapped length are
/// not seen: the length is taken at open time). What cannot be guarded
/// against is truncation while mapped (`logrotate copytruncate` at that very
/// moment): touching pages past the new end raises SIGBUS, as it would for
/// ripgrep. Set `WIRETRAIL_NO_MMAP=1` to read files as streams instead.
#[allow(unsafe_code)]
pub(crate) fn map_window(file: &File, offset: u64, len: u64) -> io::Result<memmap2::Mmap> {
    // SAFETY: see the function comment.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len as usize)
            .map(file)
    }
}

/// Wrap a decompressor when the stream starts with gzip or zstd magic.
pub(crate) fn sniff(mut rd: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut rd, &mut magic)?;
    sniff_with(&magic[..n], rd)
}

/// `magic` was already read from `rd`; put it back in front.
fn sniff_with(magic: &[u8], rd: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let whole = io::Cursor::new(magic.to_vec()).chain(rd);
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(whole))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(whole)?)
    } else {
        Box::new(whole)
    })
}
