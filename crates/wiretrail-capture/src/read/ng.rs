//! pcapng block walking: framing checks, sections, interfaces, packet blocks.
//!
//! Every block's framing (total length >= 12, a multiple of 4, equal to the
//! trailing copy, within [`MAX_BLOCK`]) is checked before its body is looked
//! at; a block with bad framing is reported and we resynchronise on the next
//! well-framed block. Packet blocks (EPB, SPB, obsolete PB) are decoded here
//! by hand because they are the hot path (no option vector per packet);
//! SHB and IDB go through `pcap-parser` after our own option walk.

use super::{CaptureReader, Found, ReadError, SectionState, State, MAX_BLOCK};
use crate::time::Timestamp;
use pcap_parser::nom;
use serde::{Deserialize, Serialize};

pub(crate) const SHB_TYPE: u32 = 0x0A0D_0D0A;
const BOM: u32 = 0x1A2B_3C4D;
pub(crate) const IDB_TYPE: u32 = 1;
pub(crate) const OPB_TYPE: u32 = 2;
pub(crate) const SPB_TYPE: u32 = 3;
pub(crate) const EPB_TYPE: u32 = 6;
/// Block types we accept as resynchronisation points.
pub(crate) const KNOWN_TYPES: [u32; 12] = [
    SHB_TYPE,
    IDB_TYPE,
    OPB_TYPE,
    SPB_TYPE,
    4,
    5,
    EPB_TYPE,
    9,
    0x0A,
    0x0BAD,
    0x4000_0BAD,
    0x8000_0001,
];

/// One interface of a pcapng section: what decoding its packets needs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IfaceInfo {
    pub linktype: u16,
    pub snaplen: u32,
    /// Raw `if_tsresol` byte (default 6): bit 7 clear means 10^-n s, set means 2^-n s.
    pub tsresol: u8,
    /// `if_tsoffset`, seconds added to every timestamp.
    pub tsoffset: i64,
}

impl IfaceInfo {
    /// Convert a raw 64-bit timestamp to ns since the epoch (saturating).
    pub fn ts_nanos(&self, ticks: u64) -> Timestamp {
        let r = self.tsresol;
        let ns: i128 = if r & 0x80 == 0 {
            let e = u32::from(r);
            if e <= 9 {
                ticks as i128 * 10i128.pow(9 - e)
            } else if e <= 38 {
                ticks as i128 / 10i128.pow(e - 9)
            } else {
                0
            }
        } else {
            let n = u32::from(r & 0x7f);
            ((ticks as u128 * 1_000_000_000u128) >> n.min(127)) as i128
        };
        let total = ns + self.tsoffset as i128 * 1_000_000_000;
        Timestamp::from_nanos(total.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

pub(crate) fn rd16(be: bool, b: &[u8], at: usize) -> u16 {
    let w = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

pub(crate) fn rd32(be: bool, b: &[u8], at: usize) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Byte order from an SHB's byte-order magic (bytes 8..12), if valid.
pub(crate) fn shb_order(b: &[u8]) -> Option<bool> {
    let bom = [b[8], b[9], b[10], b[11]];
    if u32::from_le_bytes(bom) == BOM {
        Some(false)
    } else if u32::from_be_bytes(bom) == BOM {
        Some(true)
    } else {
        None
    }
}

/// Walk an option list `opts` (which starts at block offset `base`); calls
/// `f(code, value)` per option. Err gives the block-relative offset of the
/// option that overruns the block.
fn walk_options(
    be: bool,
    opts: &[u8],
    base: usize,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), (usize, String)> {
    let mut at = 0;
    while at + 4 <= opts.len() {
        let code = rd16(be, opts, at);
        let len = rd16(be, opts, at + 2) as usize;
        if code == 0 {
            return Ok(());
        }
        let padded = (len + 3) & !3;
        if at + 4 + padded > opts.len() {
            return Err((
                base + at,
                format!(
                    "option {code} length {len} overruns the block ({} bytes left)",
                    opts.len() - at - 4
                ),
            ));
        }
        f(code, &opts[at + 4..at + 4 + len]);
        at += 4 + padded;
    }
    Ok(())
}

/// The interface an IDB (`b`, the whole block, at least 20 bytes) declares,
/// and whether its options were well formed.
pub(crate) fn idb_iface(be: bool, b: &[u8]) -> (IfaceInfo, Result<(), (usize, String)>) {
    let len = b.len();
    let mut iface = IfaceInfo {
        linktype: rd16(be, b, 8),
        snaplen: rd32(be, b, 12),
        tsresol: 6,
        tsoffset: 0,
    };
    let walked = walk_options(be, &b[16..len - 4], 16, |code, v| match code {
        9 if !v.is_empty() => iface.tsresol = v[0],
        14 if v.len() == 8 => {
            let w = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
            iface.tsoffset = if be {
                i64::from_be_bytes(w)
            } else {
                i64::from_le_bytes(w)
            };
        }
        _ => {}
    });
    (iface, walked)
}

/// Check a complete SHB (`b` is the whole block). Returns its byte order or
/// the block-relative offset and reason of the defect.
fn check_shb(b: &[u8]) -> Result<bool, (usize, String)> {
    let be = shb_order(b).ok_or_else(|| {
        (
            8,
            format!(
                "SHB byte-order magic {:#010x} is neither 1a2b3c4d nor 4d3c2b1a",
                u32::from_le_bytes([b[8], b[9], b[10], b[11]])
            ),
        )
    })?;
    if b.len() < 28 {
        return Err((4, format!("SHB total length {} < 28", b.len())));
    }
    let (major, minor) = (rd16(be, b, 12), rd16(be, b, 14));
    // 1.0 is the only version; libpcap also accepts 1.2 written by old tools.
    if !(major == 1 && (minor == 0 || minor == 2)) {
        return Err((12, format!("SHB version {major}.{minor} unsupported")));
    }
    walk_options(be, &b[24..b.len() - 4], 24, |_, _| ())?;
    let trailer = rd32(be, b, b.len() - 4);
    if trailer != b.len() as u32 {
        return Err((
            b.len() - 4,
            format!("SHB total lengths differ ({} and {trailer})", b.len()),
        ));
    }
    let parsed = if be {
        pcap_parser::parse_sectionheaderblock_be(b)
    } else {
        pcap_parser::parse_sectionheaderblock_le(b)
    };
    match parsed {
        Ok(_) => Ok(be),
        Err(e) => Err((0, format!("SHB: {e:?}"))),
    }
}

/// Read the first SHB at `off` (the file header). Errors are header errors.
pub(crate) fn read_shb(
    rd: &mut CaptureReader,
    off: u64,
    prev_number: u32,
) -> Result<SectionState, ReadError> {
    rd.src.fill(off, 28);
    let head = rd.src.avail(off);
    if head.len() < 12 {
        return Err(rd.bad_header(off, "section header block cut short"));
    }
    let Some(be) = shb_order(head) else {
        return Err(rd.bad_header(
            off + 8,
            format!(
                "SHB byte-order magic {:#010x} is neither 1a2b3c4d nor 4d3c2b1a",
                u32::from_le_bytes([head[8], head[9], head[10], head[11]])
            ),
        ));
    };
    let len = rd32(be, head, 4);
    if len < 28 || !len.is_multiple_of(4) || len > MAX_BLOCK {
        return Err(rd.bad_header(off + 4, format!("SHB total length {len}")));
    }
    rd.src.fill(off, len as usize);
    let b = rd.src.avail(off);
    if b.len() < len as usize {
        return Err(rd.bad_header(off, format!("SHB of {len} bytes cut short")));
    }
    let b = &b[..len as usize];
    check_shb(b).map_err(|(at, what)| rd.bad_header(off + at as u64, what))?;
    rd.pos = off + len as u64;
    Ok(SectionState {
        number: prev_number + 1,
        big_endian: be,
        interfaces: Vec::new(),
    })
}

/// Outcome of looking at one block.
enum Step {
    Packet(Found),
    /// A non-packet block consumed; keep going.
    Next,
}

fn sec_mut(state: &mut State) -> &mut SectionState {
    match state {
        State::Ng(s) => s,
        State::Legacy(_) => unreachable!("pcapng walk on a legacy pcap reader"),
    }
}

fn sec(state: &State) -> &SectionState {
    match state {
        State::Ng(s) => s,
        State::Legacy(_) => unreachable!("pcapng walk on a legacy pcap reader"),
    }
}

impl CaptureReader {
    pub(super) fn advance_ng(&mut self) -> Option<Result<Found, ReadError>> {
        loop {
            if self.done {
                return None;
            }
            match self.ng_block() {
                Ok(Some(Step::Packet(f))) => return Some(Ok(f)),
                Ok(Some(Step::Next)) => continue,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Report a framing defect at `off` and move to the next well-framed block.
    fn framing_error(
        &mut self,
        off: u64,
        at: u64,
        what: String,
    ) -> Result<Option<Step>, ReadError> {
        let err = self.corrupt(at, what);
        self.resync(off + 4);
        Err(err)
    }

    /// Returns Ok(None) at the end (clean or partial); the end itself may
    /// carry a decompression error, which `end_*` returns as Some(Err).
    fn ng_block(&mut self) -> Result<Option<Step>, ReadError> {
        let off = self.pos;
        self.src.fill(off, 12);
        let head = self.src.avail(off);
        if head.is_empty() {
            return self.end_clean().transpose().map(|_| None);
        }
        if head.len() < 12 {
            return self.end_partial(off).transpose().map(|_| None);
        }
        let sec_be = sec(&self.state).big_endian;
        let is_shb = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == SHB_TYPE;
        let be = if is_shb {
            match shb_order(head) {
                Some(be) => be,
                None => {
                    let bom = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
                    return self.framing_error(
                        off,
                        off + 8,
                        format!("SHB byte-order magic {bom:#010x}"),
                    );
                }
            }
        } else {
            sec_be
        };
        let btype = rd32(be, head, 0);
        let len = rd32(be, head, 4);
        if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK {
            return self.framing_error(
                off,
                off,
                format!("block type {btype:#x}: total length {len} invalid"),
            );
        }
        self.src.fill(off, len as usize);
        let avail = self.src.avail(off);
        if avail.len() < len as usize {
            return self.end_partial(off).transpose().map(|_| None);
        }
        let b = &avail[..len as usize];
        let trailer = rd32(be, b, b.len() - 4);
        if trailer != len {
            return self.framing_error(
                off,
                off,
                format!("block type {btype:#x}: total lengths differ ({len} and {trailer})"),
            );
        }
        // From here on the block is well framed: a defect inside it costs
        // only this block.
        let next = off + len as u64;
        let step = self.ng_body(off, btype, be, len as usize);
        self.pos = next;
        match step {
            Ok(Step::Packet(f)) => {
                self.next_frame += 1;
                if f.ts_known {
                    self.last_ts = f.ts;
                }
                Ok(Some(Step::Packet(f)))
            }
            other => other.map(Some),
        }
    }

    fn ng_body(&mut self, off: u64, btype: u32, be: bool, len: usize) -> Result<Step, ReadError> {
        let b = &self.src.avail(off)[..len];
        match btype {
            SHB_TYPE => match check_shb(b) {
                Ok(be) => {
                    let number = sec(&self.state).number + 1;
                    self.state = State::Ng(SectionState {
                        number,
                        big_endian: be,
                        interfaces: Vec::new(),
                    });
                    Ok(Step::Next)
                }
                Err((at, what)) => {
                    // The new section's blocks cannot be trusted without it.
                    self.done = true;
                    Err(self.corrupt(off + at as u64, what))
                }
            },
            IDB_TYPE => {
                if len < 20 {
                    return Err(self.corrupt(off, format!("IDB total length {len} < 20")));
                }
                let (iface, walked) = idb_iface(be, b);
                let parsed = if be {
                    pcap_parser::parse_interfacedescriptionblock_be(b).map(|_| ())
                } else {
                    pcap_parser::parse_interfacedescriptionblock_le(b).map(|_| ())
                };
                // Keep the interface even if its options are bad: later
                // packets name it by position.
                sec_mut(&mut self.state).interfaces.push(iface);
                if let Err((at, what)) = walked {
                    return Err(self.corrupt(off + at as u64, format!("IDB: {what}")));
                }
                match parsed {
                    Ok(()) => Ok(Step::Next),
                    Err(nom::Err::Incomplete(_)) => Err(self.corrupt(off, "IDB body cut short")),
                    Err(e) => Err(self.corrupt(off, format!("IDB: {e:?}"))),
                }
            }
            EPB_TYPE | OPB_TYPE => {
                if len < 32 {
                    return Err(self.corrupt(off, format!("packet block total length {len} < 32")));
                }
                let (if_id, kind) = if btype == EPB_TYPE {
                    (rd32(be, b, 8), "EPB")
                } else {
                    (u32::from(rd16(be, b, 8)), "packet block")
                };
                let ticks = (u64::from(rd32(be, b, 12)) << 32) | u64::from(rd32(be, b, 16));
                let caplen = rd32(be, b, 20);
                let orig_len = rd32(be, b, 24);
                if caplen as usize > len - 32 {
                    return Err(self.corrupt(
                        off,
                        format!("{kind} caplen {caplen} does not fit its {len}-byte block"),
                    ));
                }
                let sec = sec(&self.state);
                let number = sec.number;
                let Some(iface) = sec.interfaces.get(if_id as usize) else {
                    let n = sec.interfaces.len();
                    return Err(self.corrupt(
                        off,
                        format!("{kind} names interface {if_id}, section has {n}"),
                    ));
                };
                Ok(Step::Packet(Found {
                    frame: self.next_frame,
                    ts: iface.ts_nanos(ticks),
                    ts_known: true,
                    linktype: iface.linktype,
                    interface: if_id,
                    section: number,
                    data_at: off + 28,
                    caplen: caplen as usize,
                    orig_len,
                    offset: off,
                }))
            }
            SPB_TYPE => {
                if len < 16 {
                    return Err(self.corrupt(off, format!("SPB total length {len} < 16")));
                }
                let orig_len = rd32(be, b, 8);
                let last_ts = self.last_ts;
                let sec = sec(&self.state);
                let number = sec.number;
                let Some(iface) = sec.interfaces.first() else {
                    return Err(self.corrupt(off, "SPB in a section without interfaces"));
                };
                let mut caplen = (orig_len as usize).min(len - 16);
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Ok(Step::Packet(Found {
                    frame: self.next_frame,
                    ts: last_ts,
                    ts_known: false,
                    linktype: iface.linktype,
                    interface: 0,
                    section: number,
                    data_at: off + 12,
                    caplen,
                    orig_len,
                    offset: off,
                }))
            }
            // NRB, ISB, custom, decryption secrets, journal...: not packets.
            _ => Ok(Step::Next),
        }
    }

    /// Scan forward from `from` (4-byte steps) for a well-framed block of a
    /// known type; continue there, or stop the file if there is none.
    fn resync(&mut self, from: u64) {
        let be = sec(&self.state).big_endian;
        let mut p = from;
        loop {
            self.src.fill(p, 12);
            let h = self.src.avail(p);
            if h.len() < 12 {
                self.done = true;
                return;
            }
            let is_shb = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) == SHB_TYPE;
            let bbe = if is_shb { shb_order(h) } else { Some(be) };
            if let Some(bbe) = bbe {
                let t = rd32(bbe, h, 0);
                let len = rd32(bbe, h, 4);
                if KNOWN_TYPES.contains(&t)
                    && len >= 12
                    && len.is_multiple_of(4)
                    && len <= MAX_BLOCK
                {
                    self.src.fill(p, len as usize);
                    let b = self.src.avail(p);
                    if b.len() >= len as usize && rd32(bbe, b, len as usize - 4) == len {
                        tracing::warn!(
                            "{}: resynchronised at byte {p} after skipping {} bytes",
                            self.path.display(),
                            p + 4 - from
                        );
                        self.pos = p;
                        return;
                    }
                }
            }
            p += 4;
        }
    }
}
