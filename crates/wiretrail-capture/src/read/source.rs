//! Where the bytes come from: a memory map of a plain file, or a bounded
//! sliding buffer over a decompressing stream. Both expose the same "give me
//! the bytes from stream offset `pos` on" view, so the container parsers do
//! not care which one they read.

use memmap2::Mmap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Read size for compressed streams: large enough to amortise the
/// decompressor call, small enough to keep memory per open file bounded.
const CHUNK: usize = 256 * 1024;

/// Set to `1` to read plain files through `read(2)` instead of a memory
/// map: for capture directories rotated by truncating files in place.
pub const NO_MMAP_ENV: &str = "WIRETRAIL_NO_MMAP";

/// Memory-map `file` read-only.
///
/// SAFETY: a memory map is only sound while nobody changes the mapped range
/// under us. We assume capture files are append-only while we read them:
/// tcpdump and dumpcap only ever append to the file they are writing and
/// rotate by opening a new file; nothing rewrites bytes already written.
/// Appends beyond the length mapped here are simply not seen (we map the
/// length at open time). What we cannot guard against is a file truncated
/// while mapped (e.g. `logrotate copytruncate`): touching pages past the new
/// end raises SIGBUS. Operators who rotate that way set `WIRETRAIL_NO_MMAP=1`
/// and plain files are then read as streams (see [`NO_MMAP_ENV`]).
#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: see the function comment: the file is append-only while mapped.
    let map = unsafe { Mmap::map(file) }?;
    // Records are walked front to back: let the kernel read ahead instead of
    // faulting page by page (a quarter of the extraction time otherwise).
    // Advice is a hint; a kernel that refuses it changes nothing we rely on.
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}

/// Counts the compressed bytes pulled from the file, for progress figures.
#[derive(Debug)]
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub(crate) enum Source {
    Mapped(Option<Mmap>),
    Stream(Stream),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Mapped(m) => write!(f, "Mapped({} bytes)", m.as_ref().map_or(0, |m| m.len())),
            Source::Stream(s) => write!(f, "Stream(base {}, {} buffered)", s.base, s.buf.len()),
        }
    }
}

pub(crate) struct Stream {
    rd: Box<dyn Read + Send>,
    /// Bytes of the decompressed stream from offset `base` on.
    buf: Vec<u8>,
    base: u64,
    eof: bool,
    /// The decompressor's error, if the stream ended on one (cut-off gzip).
    pub(crate) error: Option<io::Error>,
    compressed: Arc<AtomicU64>,
    /// An uncompressed file read without a map (offsets are file offsets).
    plain: bool,
}

impl Source {
    /// A plain file: memory-mapped, unless [`NO_MMAP_ENV`] asks for reads.
    pub(crate) fn plain(path: &Path, start: u64) -> io::Result<Source> {
        if std::env::var_os(NO_MMAP_ENV).is_some_and(|v| v == "1") {
            return Self::stream_plain(File::open(path)?, start);
        }
        Self::mapped(path)
    }

    /// A plain file read with `read(2)` from `start` on.
    pub(crate) fn stream_plain(mut file: File, start: u64) -> io::Result<Source> {
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(start))?;
        let mut src = Source::stream(file, Ok)?;
        if let Source::Stream(s) = &mut src {
            s.base = start;
            s.plain = true;
        }
        Ok(src)
    }

    fn mapped(path: &Path) -> io::Result<Source> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            // mmap of an empty file fails on some systems; nothing to map anyway.
            return Ok(Source::Mapped(None));
        }
        let map = map_file(&file)?;
        // Capture files are read front to back: let the kernel read ahead.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Source::Mapped(Some(map)))
    }

    /// A decompressing stream over `file`; `make` wraps the counted file.
    pub(crate) fn stream(
        file: File,
        make: impl FnOnce(Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>>,
    ) -> io::Result<Source> {
        let compressed = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: io::BufReader::with_capacity(CHUNK, file),
            count: compressed.clone(),
        };
        let rd = make(Box::new(counted))?;
        Ok(Source::Stream(Stream {
            rd,
            buf: Vec::new(),
            base: 0,
            eof: false,
            error: None,
            compressed,
            plain: false,
        }))
    }

    /// Make bytes `[pos, pos + need)` available if the stream has them.
    /// Bytes before `pos` may be discarded: callers never go back.
    pub(crate) fn fill(&mut self, pos: u64, need: usize) {
        let Source::Stream(s) = self else { return };
        // Drop what lies before pos once it is a good part of the buffer.
        let drop = pos.saturating_sub(s.base) as usize;
        if drop > 0 && drop >= s.buf.len() / 2 {
            let drop = drop.min(s.buf.len());
            s.buf.drain(..drop);
            s.base += drop as u64;
        }
        let want_end = pos.saturating_add(need as u64);
        while !s.eof && s.base + (s.buf.len() as u64) < want_end {
            let old = s.buf.len();
            let short = (want_end - s.base - old as u64) as usize;
            s.buf.resize(old + short.max(CHUNK), 0);
            match s.rd.read(&mut s.buf[old..]) {
                Ok(0) => {
                    s.buf.truncate(old);
                    s.eof = true;
                }
                Ok(n) => s.buf.truncate(old + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => s.buf.truncate(old),
                Err(e) => {
                    s.buf.truncate(old);
                    s.eof = true;
                    s.error = Some(e);
                }
            }
        }
    }

    /// The bytes available from stream offset `pos` on (may be empty).
    pub(crate) fn avail(&self, pos: u64) -> &[u8] {
        match self {
            Source::Mapped(None) => &[],
            Source::Mapped(Some(m)) => m.get(pos as usize..).unwrap_or(&[]),
            Source::Stream(s) => {
                let start = pos.saturating_sub(s.base) as usize;
                if pos < s.base {
                    &[]
                } else {
                    s.buf.get(start..).unwrap_or(&[])
                }
            }
        }
    }

    /// Total length when known (mapped files).
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Source::Mapped(m) => Some(m.as_ref().map_or(0, |m| m.len() as u64)),
            Source::Stream(_) => None,
        }
    }

    /// Compressed bytes read so far (streams), or `pos` for plain files.
    pub(crate) fn consumed(&self, pos: u64) -> u64 {
        match self {
            Source::Stream(s) if !s.plain => s.compressed.load(Ordering::Relaxed),
            _ => pos,
        }
    }

    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        match self {
            Source::Stream(s) => s.error.take(),
            Source::Mapped(_) => None,
        }
    }
}
