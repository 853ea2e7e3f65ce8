//! Inputs: naming, walking directories, opening files as memory maps or
//! (decompressing) streams.

use super::LogError;
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
pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, LogError> {
    let mut inputs = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let md = std::fs::metadata(p).map_err(|source| LogError::Open {
            path: p.clone(),
            source,
        })?;
        if md.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)?;
            inputs.extend(files.into_iter().map(Input::File));
        } else {
            inputs.push(Input::File(p.clone()));
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LogError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LogError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
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
