//! A minimal pcapng writer: one section, one interface (IDB) per capturing
//! node and link type, named after the node, nanosecond timestamps, an
//! optional comment per packet. Little-endian, as Wireshark writes.
//!
//! [`write_merged`] is the one way wiretrail writes the packets of several
//! nodes into one file: `wiretrail capture extract` (capture-clock order) and
//! the per-incident slices (reference-clock order, findings as comments)
//! both call it.
//!
//! Every interface declares a snaplen of [`SNAPLEN`], the largest packet
//! Wireshark and libpcap accept for these link types: a file holding a
//! longer record is refused whole ("packet bigger than maximum"). A longer
//! record (a corrupt length, or a capture tool without that limit) is cut
//! to it, keeps its original length, and says so in a packet comment; the
//! writer counts the cuts ([`PcapngWriter::cut`]) and warns once.

use crate::obs::PacketObs;
use crate::time::Timestamp;
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// The snaplen every interface declares, and the longest record written:
/// libpcap's and Wireshark's limit for the link types captures use
/// (`MAXIMUM_SNAPLEN`, `WTAP_MAX_PACKET_SIZE_STANDARD`).
pub const SNAPLEN: u32 = 262_144;

/// Writes a pcapng stream. Call [`PcapngWriter::finish`] to flush.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    w: W,
    interfaces: u32,
    /// Reused block buffer: one allocation for the whole file.
    buf: Vec<u8>,
    /// Records cut to [`SNAPLEN`].
    cut: u64,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn put_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) -> io::Result<()> {
    let len = u16::try_from(value.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "pcapng option longer than 65535 bytes",
        )
    })?;
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + pad4(value.len()) - value.len(), 0);
    Ok(())
}

/// Start a block of `btype` in `buf` (the length is patched by `end_block`).
fn begin_block(buf: &mut Vec<u8>, btype: u32) {
    buf.clear();
    buf.extend_from_slice(&btype.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
}

fn end_block(buf: &mut Vec<u8>) -> io::Result<()> {
    let total = u32::try_from(buf.len() + 4)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pcapng block too large"))?;
    buf[4..8].copy_from_slice(&total.to_le_bytes());
    buf.extend_from_slice(&total.to_le_bytes());
    Ok(())
}

impl<W: Write> PcapngWriter<W> {
    /// Write the section header and one interface per `(node name, linktype)`;
    /// interface ids are the positions in `interfaces`.
    pub fn new(w: W, interfaces: &[(&str, u16)]) -> io::Result<Self> {
        let mut me = PcapngWriter {
            w,
            interfaces: u32::try_from(interfaces.len()).unwrap_or(u32::MAX),
            buf: Vec::with_capacity(2048),
            cut: 0,
        };
        let buf = &mut me.buf;
        begin_block(buf, SHB);
        buf.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        buf.extend_from_slice(&1u16.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        put_option(buf, SHB_USERAPPL, b"wiretrail")?;
        put_option(buf, OPT_END, &[])?;
        end_block(buf)?;
        me.w.write_all(&me.buf)?;
        for (name, linktype) in interfaces {
            let buf = &mut me.buf;
            begin_block(buf, IDB);
            buf.extend_from_slice(&linktype.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.extend_from_slice(&SNAPLEN.to_le_bytes());
            put_option(buf, IF_NAME, name.as_bytes())?;
            put_option(buf, IF_TSRESOL, &[9])?;
            put_option(buf, OPT_END, &[])?;
            end_block(buf)?;
            me.w.write_all(&me.buf)?;
        }
        Ok(me)
    }

    /// Append one packet on `interface` (an index into the list given to
    /// `new`). Data longer than [`SNAPLEN`] is cut to it (the original
    /// length is kept, and a comment says so).
    pub fn write_packet(
        &mut self,
        interface: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
        comment: Option<&str>,
    ) -> io::Result<()> {
        if interface >= self.interfaces {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "interface {interface} not declared ({} interfaces)",
                    self.interfaces
                ),
            ));
        }
        let orig_len = orig_len.max(u32::try_from(data.len()).unwrap_or(u32::MAX));
        let note;
        let (data, comment) = if data.len() > SNAPLEN as usize {
            self.cut += 1;
            note = format!(
                "wiretrail cut this record to the interface's snaplen of {SNAPLEN} bytes (the capture held {} bytes){}",
                data.len(),
                comment.map(|c| format!("; {c}")).unwrap_or_default()
            );
            (&data[..SNAPLEN as usize], Some(note.as_str()))
        } else {
            (data, comment)
        };
        let caplen = data.len() as u32;
        // Timestamps before 1970 cannot be written with an unsigned field.
        let ticks = u64::try_from(ts.as_nanos()).unwrap_or(0);
        let buf = &mut self.buf;
        begin_block(buf, EPB);
        buf.extend_from_slice(&interface.to_le_bytes());
        buf.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        buf.extend_from_slice(&(ticks as u32).to_le_bytes());
        buf.extend_from_slice(&caplen.to_le_bytes());
        buf.extend_from_slice(&orig_len.max(caplen).to_le_bytes());
        buf.extend_from_slice(data);
        buf.resize(buf.len() + pad4(data.len()) - data.len(), 0);
        if let Some(c) = comment {
            put_option(buf, OPT_COMMENT, c.as_bytes())?;
            put_option(buf, OPT_END, &[])?;
        }
        end_block(buf)?;
        self.w.write_all(&self.buf)
    }

    /// Records cut to [`SNAPLEN`] so far.
    pub fn cut(&self) -> u64 {
        self.cut
    }

    /// Flush and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.cut > 0 {
            tracing::warn!(
                "{} record(s) longer than {SNAPLEN} bytes were cut to that length in the pcapng slice (each says so in its comment; original lengths kept)",
                self.cut
            );
        }
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One record of a merged file: a packet, and what to say about it.
#[derive(Debug, Clone, Copy)]
pub struct MergedRecord<'a> {
    pub packet: &'a PacketObs,
    /// A packet comment (Wireshark shows it with the packet).
    pub comment: Option<&'a str>,
}

/// Write the packets of several nodes into one pcapng, in the order given
/// (the caller's clock decides: capture time for an extraction, reference
/// time for an incident slice), each at its capture timestamp. One interface
/// per (node, link type), named after the node, declared in the order they
/// first appear. A captured frame given twice (same node, file and frame:
/// it matched two queries) is written once, with the first one's comment.
///
/// Returns the flushed writer and how many records it wrote.
pub fn write_merged<W: Write>(w: W, records: &[MergedRecord<'_>]) -> io::Result<(W, u64)> {
    let mut interfaces: Vec<(&str, u16)> = Vec::new();
    for r in records {
        let key = (&*r.packet.node, r.packet.linktype);
        if !interfaces.contains(&key) {
            interfaces.push(key);
        }
    }
    let mut pw = PcapngWriter::new(w, &interfaces)?;
    let mut seen: HashSet<(&str, &Path, u64)> = HashSet::with_capacity(records.len());
    let mut written = 0u64;
    for r in records {
        let p = r.packet;
        if !seen.insert((&p.node, p.file.as_path(), p.frame)) {
            continue;
        }
        let iface = interfaces
            .iter()
            .position(|&(n, l)| n == &*p.node && l == p.linktype)
            .expect("every (node, link type) was declared above");
        pw.write_packet(iface as u32, p.ts, &p.data, p.orig_len, r.comment)?;
        written += 1;
    }
    Ok((pw.finish()?, written))
}
