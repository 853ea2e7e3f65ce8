//! Capture file readers: legacy pcap (microsecond and nanosecond magic, both
//! byte orders) and pcapng (several sections and interfaces, `if_tsresol`
//! including base 2, EPB/SPB/obsolete PB), plain (memory-mapped) or `.gz` /
//! `.zst` (streamed; detected by magic bytes, not by name).
//!
//! Records are handed out as zero-copy views into the map or the stream
//! buffer. Container framing (lengths, trailers, interface ids) is checked
//! here before any slice is taken, so a hostile length can neither make us
//! allocate nor read out of bounds; `pcap-parser` parses the header blocks.
//!
//! Two kinds of trouble, treated differently:
//! - a *partial tail* (the file ends inside a record): the newest rotation is
//!   still being written. `next_record` returns `None`, `truncated_tail()`
//!   says where, and it is logged at debug level only.
//! - a *corrupt* record or block: `next_record` yields one `Err` naming file
//!   and byte offset (also kept in `skipped()`), then pcapng resynchronises
//!   on the next valid block while legacy pcap (no framing to resync on)
//!   stops the file.

pub(crate) mod ng;
mod source;
#[cfg(test)]
mod tests;

use pcap_parser::nom;
use serde::{Deserialize, Serialize};
use source::Source;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::time::Timestamp;

pub use ng::IfaceInfo;
pub use source::NO_MMAP_ENV;

/// Largest record or block we accept. Real packets stay far below (BIG TCP
/// tops out near 512 KiB); anything larger is a corrupt length field, and
/// this bounds the stream buffer for compressed files.
pub const MAX_BLOCK: u32 = 64 * 1024 * 1024;

/// Legacy pcap caplen above which a record is corrupt, unless the file's
/// snaplen is larger (libpcap's own limit for non-D-Bus link types).
pub(crate) const PCAP_MAX_CAPLEN: u32 = 262_144;

/// Container format (of the decompressed stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Legacy pcap, microsecond timestamps (magic a1b2c3d4).
    PcapUs,
    /// Legacy pcap, nanosecond timestamps (magic a1b23c4d).
    PcapNs,
    Pcapng,
}

/// Compression wrapper, detected by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Recognise gzip (`1f 8b`) and zstd (`28 b5 2f fd`) frames.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// One packet record, borrowed from the reader until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// 1-based packet number in the file (non-packet pcapng blocks are not counted).
    pub frame: u64,
    /// Capture time, ns since the epoch. For a pcapng Simple Packet Block,
    /// which has no timestamp, this repeats the previous packet's time and
    /// `ts_known` is false.
    pub ts: Timestamp,
    pub linktype: u16,
    /// Interface id within the pcapng section (0 for pcap).
    pub interface: u32,
    /// The captured bytes (possibly shorter than `orig_len`).
    pub data: &'a [u8],
    pub orig_len: u32,
    /// Byte offset of the record (pcap record header / pcapng block) in the
    /// decompressed stream.
    pub offset: u64,
    /// False for records without a timestamp of their own (pcapng SPB).
    pub ts_known: bool,
    /// 1-based pcapng section number (0 for legacy pcap).
    pub section: u32,
}

/// Where to resume reading: enough state to continue mid-file without
/// re-reading what came before (for the catalog's sparse index).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// Byte offset of the next record or block.
    pub offset: u64,
    /// Frame number the next packet will get.
    pub frame: u64,
    /// pcapng only: the state of the section the offset lies in.
    pub section: Option<SectionState>,
    /// Timestamp of the last packet before the offset (what a following
    /// timestamp-less Simple Packet Block inherits).
    #[serde(default)]
    pub last_ts: Timestamp,
}

/// The pcapng section state needed to decode blocks mid-section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SectionState {
    /// 1-based section number.
    pub number: u32,
    pub big_endian: bool,
    /// Interface table so far, in IDB order.
    pub interfaces: Vec<IfaceInfo>,
}

/// Why reading stopped or skipped something. Every variant names the file
/// and the byte offset (in the decompressed stream for `.gz`/`.zst`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: I/O error at byte {offset}: {source}")]
    Io {
        path: PathBuf,
        offset: u64,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("{path}: not a pcap or pcapng capture (magic {magic:#010x} at byte {offset})")]
    UnknownFormat {
        path: PathBuf,
        offset: u64,
        magic: u32,
    },
    #[error("{path}: bad file header at byte {offset}: {what}")]
    BadHeader {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path}: corrupt record at byte {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path}: compressed stream broken, decompressed data ends at byte {offset}: {source}")]
    Decompress {
        path: PathBuf,
        offset: u64,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("{path}: cannot resume at byte {offset}: {what}")]
    Resume {
        path: PathBuf,
        offset: u64,
        what: String,
    },
}

impl ReadError {
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::UnknownFormat { path, .. }
            | ReadError::BadHeader { path, .. }
            | ReadError::Corrupt { path, .. }
            | ReadError::Decompress { path, .. }
            | ReadError::Resume { path, .. } => path,
        }
    }

    pub fn offset(&self) -> u64 {
        match self {
            ReadError::Io { offset, .. }
            | ReadError::UnknownFormat { offset, .. }
            | ReadError::BadHeader { offset, .. }
            | ReadError::Corrupt { offset, .. }
            | ReadError::Decompress { offset, .. }
            | ReadError::Resume { offset, .. } => *offset,
        }
    }
}

/// Legacy pcap file header facts.
#[derive(Debug, Clone, Copy)]
struct Legacy {
    big_endian: bool,
    nanos: bool,
    linktype: u16,
    snaplen: u32,
}

#[derive(Debug)]
enum State {
    Legacy(Legacy),
    Ng(SectionState),
}

/// What the container walk found, before the data slice is taken.
struct Found {
    frame: u64,
    ts: Timestamp,
    ts_known: bool,
    linktype: u16,
    interface: u32,
    section: u32,
    data_at: u64,
    caplen: usize,
    orig_len: u32,
    offset: u64,
}

/// A reader over one capture file. Not `Clone`; `Send`.
#[derive(Debug)]
pub struct CaptureReader {
    path: PathBuf,
    src: Source,
    compression: Compression,
    format: Format,
    state: State,
    /// Offset of the next record/block.
    pos: u64,
    next_frame: u64,
    last_ts: Timestamp,
    tail: Option<u64>,
    skipped: Vec<ReadError>,
    done: bool,
}

impl CaptureReader {
    /// Open a capture: plain files are memory-mapped (unless `WIRETRAIL_NO_MMAP=1`),
    /// `.gz`/`.zst` streamed.
    /// Fails when the file header cannot be read.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        Self::open_with(path, false)
    }

    /// Open for a few small reads (the catalog's probes): plain files are
    /// read with `read(2)` in small chunks instead of being mapped, so that
    /// looking at a file's first records does not make the kernel read
    /// ahead megabytes of it.
    pub fn open_streamed(path: &Path) -> Result<Self, ReadError> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, streamed: bool) -> Result<Self, ReadError> {
        let (src, compression) = open_source(path, streamed)?;
        let mut rd = CaptureReader {
            path: path.to_path_buf(),
            src,
            compression,
            format: Format::PcapUs,
            state: State::Legacy(Legacy {
                big_endian: false,
                nanos: false,
                linktype: 0,
                snaplen: 0,
            }),
            pos: 0,
            next_frame: 1,
            last_ts: Timestamp::EPOCH,
            tail: None,
            skipped: Vec::new(),
            done: false,
        };
        rd.read_file_header()?;
        Ok(rd)
    }

    /// Resume at a checkpoint taken earlier on the same (plain) file.
    /// Compressed files cannot seek and are refused.
    pub fn open_at(path: &Path, at: &Checkpoint) -> Result<Self, ReadError> {
        let mut rd = Self::open(path)?;
        if rd.compression != Compression::None {
            return Err(ReadError::Resume {
                path: path.to_path_buf(),
                offset: at.offset,
                what: "compressed files can only be read from the start".into(),
            });
        }
        let len = match rd.src.len() {
            Some(len) => len,
            None => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        };
        if at.offset > len || at.offset < rd.pos {
            return Err(rd.resume_err(at.offset, format!("offset outside the file ({len} bytes)")));
        }
        if !matches!(rd.src, Source::Mapped(_)) {
            rd.src = Source::plain(path, at.offset).map_err(|e| ReadError::Io {
                path: path.to_path_buf(),
                offset: at.offset,
                source: Arc::new(e),
            })?;
        }
        match (&mut rd.state, &at.section) {
            (State::Legacy(_), None) => {}
            (State::Ng(_), Some(sec)) => rd.state = State::Ng(sec.clone()),
            _ => return Err(rd.resume_err(at.offset, "checkpoint is for another format".into())),
        }
        rd.pos = at.offset;
        rd.next_frame = at.frame;
        rd.last_ts = at.last_ts;
        Ok(rd)
    }

    fn resume_err(&self, offset: u64, what: String) -> ReadError {
        ReadError::Resume {
            path: self.path.clone(),
            offset,
            what,
        }
    }

    /// The next packet record; `None` at the clean end or at a partial tail
    /// (see [`Self::truncated_tail`]). A corrupt record yields one `Err`.
    pub fn next_record(&mut self) -> Option<Result<Record<'_>, ReadError>> {
        let found = match self.advance()? {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("{e}");
                self.skipped.push(e.clone());
                return Some(Err(e));
            }
        };
        let data = &self.src.avail(found.data_at)[..found.caplen];
        Some(Ok(Record {
            frame: found.frame,
            ts: found.ts,
            linktype: found.linktype,
            interface: found.interface,
            data,
            orig_len: found.orig_len,
            offset: found.offset,
            ts_known: found.ts_known,
            section: found.section,
        }))
    }

    /// Position of the next record.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            offset: self.pos,
            frame: self.next_frame,
            section: match &self.state {
                State::Legacy(_) => None,
                State::Ng(s) => Some(s.clone()),
            },
            last_ts: self.last_ts,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Byte order of the file (pcap) or of the current section (pcapng).
    pub fn big_endian(&self) -> bool {
        match &self.state {
            State::Legacy(l) => l.big_endian,
            State::Ng(s) => s.big_endian,
        }
    }

    /// Legacy pcap: (snaplen, nanosecond timestamps) from the file header.
    pub fn pcap_header(&self) -> Option<(u32, bool)> {
        match &self.state {
            State::Legacy(l) => Some((l.snaplen, l.nanos)),
            State::Ng(_) => None,
        }
    }

    /// pcapng: the current section (byte order, interfaces seen so far).
    pub fn section(&self) -> Option<&SectionState> {
        match &self.state {
            State::Legacy(_) => None,
            State::Ng(s) => Some(s),
        }
    }

    /// Link type of a legacy pcap file, or of the first interface seen so
    /// far in the current pcapng section.
    pub fn linktype(&self) -> Option<u16> {
        match &self.state {
            State::Legacy(l) => Some(l.linktype),
            State::Ng(s) => s.interfaces.first().map(|i| i.linktype),
        }
    }

    /// Bytes consumed: the file position for plain files, compressed bytes
    /// pulled from disk for `.gz`/`.zst`.
    pub fn bytes_consumed(&self) -> u64 {
        self.src.consumed(self.pos)
    }

    /// Total file size for plain files (`None` for compressed streams).
    pub fn file_len(&self) -> Option<u64> {
        self.src.len()
    }

    /// `Some(offset)` if the stream ended inside a record (file still being
    /// written, or cut short).
    pub fn truncated_tail(&self) -> Option<u64> {
        self.tail
    }

    /// Corrupt records/blocks met so far (each was also yielded as an `Err`).
    pub fn skipped(&self) -> &[ReadError] {
        &self.skipped
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, offset: u64, what: impl Into<String>) -> ReadError {
        ReadError::Corrupt {
            path: self.path.clone(),
            offset,
            what: what.into(),
        }
    }

    fn bad_header(&self, offset: u64, what: impl Into<String>) -> ReadError {
        ReadError::BadHeader {
            path: self.path.clone(),
            offset,
            what: what.into(),
        }
    }

    /// The stream ended inside a record at `offset`. For a compressed stream
    /// that broke (not merely ended), report that once as an error.
    fn end_partial(&mut self, offset: u64) -> Option<Result<Found, ReadError>> {
        self.done = true;
        self.tail = Some(offset);
        if let Some(e) = self.src.take_error() {
            return Some(Err(ReadError::Decompress {
                path: self.path.clone(),
                offset,
                source: Arc::new(e),
            }));
        }
        tracing::debug!(
            "{}: ends inside a record at byte {offset} (still being written?)",
            self.path.display()
        );
        None
    }

    /// The clean end, unless the decompressor failed exactly at a boundary.
    fn end_clean(&mut self) -> Option<Result<Found, ReadError>> {
        self.done = true;
        let e = self.src.take_error()?;
        self.tail = Some(self.pos);
        Some(Err(ReadError::Decompress {
            path: self.path.clone(),
            offset: self.pos,
            source: Arc::new(e),
        }))
    }

    fn advance(&mut self) -> Option<Result<Found, ReadError>> {
        if self.done {
            return None;
        }
        match self.state {
            State::Legacy(l) => self.advance_legacy(l),
            State::Ng(_) => self.advance_ng(),
        }
    }

    fn read_file_header(&mut self) -> Result<(), ReadError> {
        self.src.fill(0, 24);
        let got = self.src.avail(0).len();
        if let Some(e) = self.src.take_error() {
            if got < 4 {
                return Err(ReadError::Decompress {
                    path: self.path.clone(),
                    offset: 0,
                    source: Arc::new(e),
                });
            }
            // Put it back: the prefix may still hold records.
            if let Source::Stream(s) = &mut self.src {
                s.error = Some(e);
            }
        }
        let head = self.src.avail(0);
        if head.len() < 4 {
            return Err(self.bad_header(0, format!("file too short ({} bytes)", head.len())));
        }
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        match magic {
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => self.read_pcap_header(),
            ng::SHB_TYPE => {
                let sec = ng::read_shb(self, 0, 0)?;
                self.format = Format::Pcapng;
                self.state = State::Ng(sec);
                Ok(())
            }
            // Never parse it as standard pcap: its record headers are 24 bytes.
            0xa1b2_cd34 | 0x34cd_b2a1 => Err(self.bad_header(
                0,
                "\"modified\" pcap (magic a1b2cd34, 24-byte record headers) is not supported",
            )),
            _ => Err(ReadError::UnknownFormat {
                path: self.path.clone(),
                offset: 0,
                magic,
            }),
        }
    }

    fn read_pcap_header(&mut self) -> Result<(), ReadError> {
        let head = self.src.avail(0);
        let hdr = match pcap_parser::parse_pcap_header(head) {
            Ok((_, h)) => h,
            Err(nom::Err::Incomplete(_)) => {
                return Err(self.bad_header(0, "pcap file header cut short (24 bytes needed)"))
            }
            Err(e) => return Err(self.bad_header(0, format!("pcap file header: {e:?}"))),
        };
        if hdr.version_major != 2 {
            return Err(self.bad_header(
                4,
                format!(
                    "pcap version {}.{} (major must be 2)",
                    hdr.version_major, hdr.version_minor
                ),
            ));
        }
        let word = hdr.network.0 as u32;
        // Bits 16-25 are reserved; 26-31 carry FCS information (allowed).
        if (word >> 16) & 0x3ff != 0 {
            return Err(self.bad_header(
                20,
                format!("link-type word {word:#010x}: reserved bits set"),
            ));
        }
        self.format = if hdr.is_nanosecond_precision() {
            Format::PcapNs
        } else {
            Format::PcapUs
        };
        self.state = State::Legacy(Legacy {
            big_endian: hdr.is_bigendian(),
            nanos: hdr.is_nanosecond_precision(),
            linktype: (word & 0xffff) as u16,
            snaplen: hdr.snaplen,
        });
        self.pos = 24;
        Ok(())
    }

    fn advance_legacy(&mut self, l: Legacy) -> Option<Result<Found, ReadError>> {
        let off = self.pos;
        self.src.fill(off, 16);
        let avail = self.src.avail(off);
        if avail.is_empty() {
            return self.end_clean();
        }
        if avail.len() < 16 {
            return self.end_partial(off);
        }
        let rd32 = |b: &[u8], at: usize| {
            let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            if l.big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let caplen = rd32(avail, 8);
        if caplen > PCAP_MAX_CAPLEN.max(l.snaplen).min(MAX_BLOCK) {
            // No framing to resynchronise on: the rest of the file is lost.
            self.done = true;
            return Some(Err(self.corrupt(
                off,
                format!("record caplen {caplen} exceeds snaplen {}", l.snaplen),
            )));
        }
        self.src.fill(off, 16 + caplen as usize);
        let avail = self.src.avail(off);
        let parsed = if l.big_endian {
            pcap_parser::parse_pcap_frame_be(avail)
        } else {
            pcap_parser::parse_pcap_frame(avail)
        };
        let blk = match parsed {
            Ok((_, b)) => b,
            Err(nom::Err::Incomplete(_)) => return self.end_partial(off),
            Err(e) => {
                self.done = true;
                return Some(Err(self.corrupt(off, format!("pcap record: {e:?}"))));
            }
        };
        let frac = if l.nanos {
            blk.ts_usec as i64
        } else {
            blk.ts_usec as i64 * 1000
        };
        // Fractions >= 1 s (seen in the wild) are carried into the seconds.
        let ts = Timestamp::from_nanos(blk.ts_sec as i64 * 1_000_000_000 + frac);
        let found = Found {
            frame: self.next_frame,
            ts,
            ts_known: true,
            linktype: l.linktype,
            interface: 0,
            section: 0,
            data_at: off + 16,
            caplen: caplen as usize,
            orig_len: blk.origlen,
            offset: off,
        };
        self.pos = off + 16 + caplen as u64;
        self.next_frame += 1;
        self.last_ts = ts;
        Some(Ok(found))
    }
}

fn open_source(path: &Path, streamed: bool) -> Result<(Source, Compression), ReadError> {
    let io_err = |e: io::Error| ReadError::Io {
        path: path.to_path_buf(),
        offset: 0,
        source: Arc::new(e),
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    let compression = Compression::sniff(&head[..n]);
    let src = match compression {
        Compression::None if streamed => {
            let file = File::open(path).map_err(io_err)?;
            Source::stream_plain(file, 0)
        }
        Compression::None => Source::plain(path, 0),
        Compression::Gzip => {
            let file = File::open(path).map_err(io_err)?;
            Source::stream(file, |r| {
                Ok(Box::new(flate2::read::MultiGzDecoder::new(r)) as Box<dyn Read + Send>)
            })
        }
        Compression::Zstd => {
            let file = File::open(path).map_err(io_err)?;
            Source::stream(file, |r| {
                let mut d = zstd::stream::read::Decoder::new(r)?;
                // Allow long-distance windows (zstd --long) up to 2 GiB.
                d.window_log_max(31)?;
                Ok(Box::new(d) as Box<dyn Read + Send>)
            })
        }
    }
    .map_err(io_err)?;
    Ok((src, compression))
}
