//! Learning a capture file's span without reading it: a look at its first
//! records and one at its last ones.
//!
//! - Head: the file header and the first records (one small read), whose
//!   earliest time starts the span; the link types and, for pcapng, the
//!   section's interface table come with them.
//! - Tail (plain files): the last few hundred KiB, in which the record
//!   boundaries are found again by *resynchronising*: a candidate offset is
//!   accepted only if a chain of well-formed records starting there runs
//!   exactly to the end of the file (or into a record cut by the end).
//!   pcap records are checked field by field (caplen within the snaplen,
//!   origlen not below caplen, a sub-second fraction below one second, a
//!   time near the file's), pcapng blocks by type, length and trailing
//!   length. The latest time among the chain's records (but its first two,
//!   which a false start could have invented) ends the span, and a chain
//!   that ends inside a record says the file is cut there.
//! - Compressed files cannot be read from the end: their head is probed, and
//!   their end is the next rotation's start, until a window needs them and
//!   they are scanned (see `scan`).
//!
//! A probe that finds nothing trustworthy says so and the caller scans the
//! file instead: probing is a shortcut, never a guess.

use super::{Damage, FileEntry, Known};
use crate::catalog::cache::{head_print, CacheKey, HEAD_BYTES};
use crate::problem::LossReason;
use crate::read::ng::{self, IfaceInfo};
use crate::read::{CaptureReader, Compression, Format, ReadError, MAX_BLOCK, PCAP_MAX_CAPLEN};
use crate::time::{Duration, Timestamp};
use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Records looked at in the head.
const HEAD_RECORDS: u64 = 256;
/// Bytes of the head looked at (the reader reads in 256 KiB chunks anyway).
const HEAD_LIMIT: u64 = 192 << 10;
/// First tail window, grown 4× up to [`TAIL_MAX`] while no chain is found.
const TAIL_FIRST: u64 = 256 << 10;
const TAIL_MAX: u64 = 16 << 20;
/// Records a chain needs (its first two are not trusted for the time).
const MIN_CHAIN: usize = 4;
/// How far a record's time may lie from the file's first time and its
/// modification time and still be believed.
const TIME_SLOP: Duration = Duration::from_hours(24);
/// How far back a record's time may step behind the latest one seen before
/// it (several interfaces, `-i any` queues) for the file to count as
/// written in time order. A file probed out of order is scanned instead:
/// its first and last records would not bound it.
const REORDER_SLOP: Duration = Duration::from_secs(2);

/// What probing gave.
pub(crate) enum Probe {
    /// The span is known well enough to plan with.
    Done(Box<FileEntry>, Cost),
    /// Nothing trustworthy: read the whole file.
    NeedsScan(Cost),
}

/// What indexing one file cost.
#[derive(Debug, Default)]
pub(crate) struct Cost {
    pub bytes: u64,
    pub packets: u64,
}

/// An entry with only the identity filled in.
pub(crate) fn blank(path: &Path, key: Option<&CacheKey>) -> FileEntry {
    FileEntry {
        path: key.map_or_else(|| path.to_path_buf(), |k| k.path.clone()),
        size: key.map_or(0, |k| k.size),
        mtime: key.map_or(Timestamp::EPOCH, |k| k.mtime),
        format: None,
        compression: None,
        linktypes: Vec::new(),
        known: Known::Unread,
        packets: None,
        first_ts: None,
        last_ts: None,
        index: Vec::new(),
        hint: super::parse_hint(path),
        truncated_tail: None,
        head: None,
        damage: Vec::new(),
        problems: Vec::new(),
        until_next: None,
    }
}

/// The damage record of a file that cannot be opened as a capture.
pub(crate) fn unopenable(entry: &mut FileEntry, e: &ReadError) {
    let reason = match e {
        ReadError::Io { .. } => LossReason::Unreadable,
        _ => LossReason::Corrupt,
    };
    let detail = match e {
        ReadError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    entry.damage.push(Damage {
        offset: e.offset(),
        reason,
        after: None,
        before: None,
        detail,
    });
}

/// Probes `path` (see the module comment).
pub(crate) fn probe(path: &Path, key: &CacheKey) -> Probe {
    let mut entry = blank(path, Some(key));
    let mut rd = match CaptureReader::open_streamed(path) {
        Ok(r) => r,
        Err(e) => {
            unopenable(&mut entry, &e);
            return Probe::Done(Box::new(entry), Cost::default());
        }
    };
    entry.format = Some(rd.format());
    entry.compression = Some(rd.compression());
    let mut linktypes = BTreeSet::new();
    let mut first: Option<Timestamp> = None;
    let mut latest = Timestamp::MIN;
    let mut n = 0;
    loop {
        if n >= HEAD_RECORDS || rd.checkpoint().offset >= HEAD_LIMIT {
            break;
        }
        match rd.next_record() {
            Some(Ok(r)) => {
                n += 1;
                linktypes.insert(r.linktype);
                if r.ts_known {
                    if r.ts < latest - REORDER_SLOP {
                        return Probe::NeedsScan(Cost {
                            bytes: rd.bytes_consumed(),
                            packets: n,
                        });
                    }
                    latest = latest.max(r.ts);
                    first = Some(first.map_or(r.ts, |f| f.min(r.ts)));
                }
            }
            // The whole file fit in the head, or the head is damaged: the
            // scan reads the same bytes again (from the page cache) and
            // records everything properly.
            None | Some(Err(_)) => {
                return Probe::NeedsScan(Cost {
                    bytes: rd.bytes_consumed(),
                    packets: n,
                })
            }
        }
    }
    let head_cost = Cost {
        bytes: rd.bytes_consumed(),
        packets: n,
    };
    let Some(first) = first else {
        return Probe::NeedsScan(head_cost);
    };
    entry.first_ts = Some(first);
    entry.linktypes = linktypes.into_iter().collect();
    if rd.compression() != Compression::None {
        entry.known = Known::Head;
        return Probe::Done(Box::new(entry), head_cost);
    }
    entry.head = head_print(path, HEAD_BYTES.min(key.size as usize));
    let shape = match (rd.format(), rd.pcap_header(), rd.section()) {
        (Format::PcapUs | Format::PcapNs, Some((snaplen, nanos)), _) => Shape::Pcap {
            be: rd.big_endian(),
            nanos,
            max_caplen: PCAP_MAX_CAPLEN.max(snaplen).min(MAX_BLOCK),
        },
        (Format::Pcapng, _, Some(sec)) => Shape::Ng {
            be: sec.big_endian,
            ifaces: sec.interfaces.clone(),
        },
        _ => return Probe::NeedsScan(head_cost),
    };
    let data_start = rd.checkpoint().offset;
    drop(rd);
    let lo = first - TIME_SLOP;
    let hi = first.max(key.mtime) + TIME_SLOP;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return Probe::NeedsScan(head_cost),
    };
    let mut cost = head_cost;
    let mut want = TAIL_FIRST;
    loop {
        // pcapng blocks start at multiples of 4: so does the window.
        let start = key.size.saturating_sub(want).max(data_start) & !3;
        let start = start.max(data_start);
        let len = (key.size - start) as usize;
        let mut buf = vec![0u8; len];
        if file.read_exact_at(&mut buf, start).is_err() {
            return Probe::NeedsScan(cost);
        }
        cost.bytes += len as u64;
        let found = match &shape {
            Shape::Pcap {
                be,
                nanos,
                max_caplen,
            } => tail_pcap(&buf, *be, *nanos, *max_caplen, (lo, hi)),
            Shape::Ng { be, ifaces } => tail_ng(&buf, *be, ifaces, (lo, hi)),
        };
        match found {
            Some(t) if t.disordered => return Probe::NeedsScan(cost),
            Some(t) => {
                entry.last_ts = Some(t.last_ts.max(first));
                entry.truncated_tail = t.partial_at.map(|p| start + p as u64);
                entry.known = Known::Probed;
                return Probe::Done(Box::new(entry), cost);
            }
            None if start > data_start && want < TAIL_MAX => want *= 4,
            None => return Probe::NeedsScan(cost),
        }
    }
}

/// What decoding records needs.
enum Shape {
    Pcap {
        be: bool,
        nanos: bool,
        max_caplen: u32,
    },
    Ng {
        be: bool,
        ifaces: Vec<IfaceInfo>,
    },
}

/// The end of a file as a chain of records.
#[derive(Debug, PartialEq)]
struct Tail {
    last_ts: Timestamp,
    /// Window offset of a record cut by the end of the file.
    partial_at: Option<usize>,
    /// A record's time stepped back more than [`REORDER_SLOP`].
    disordered: bool,
}

/// One step of a chain.
enum Step {
    /// A whole record of `len` bytes (with its time, if it has one).
    Record { len: usize, ts: Option<Timestamp> },
    /// A record begins here and the file ends inside it.
    Cut,
    /// No record begins here.
    Invalid,
}

/// Tries every candidate offset (stepping by `align`) until a chain of
/// records from it runs to the end of `buf`.
fn chain(buf: &[u8], align: usize, mut step: impl FnMut(usize, usize) -> Step) -> Option<Tail> {
    let mut c = 0;
    while c < buf.len() {
        let mut p = c;
        let mut records = 0usize;
        let mut last: Option<Timestamp> = None;
        let mut disordered = false;
        // Chain id: lets `step` keep per-chain state (pcapng sections).
        let outcome = loop {
            if p == buf.len() {
                break Some(None);
            }
            match step(c, p) {
                Step::Record { len, ts } => {
                    records += 1;
                    if records > 2 {
                        if let Some(ts) = ts {
                            if last.is_some_and(|l| ts < l - REORDER_SLOP) {
                                disordered = true;
                            }
                            last = Some(last.map_or(ts, |l| l.max(ts)));
                        }
                    }
                    p += len;
                }
                Step::Cut => break Some(Some(p)),
                Step::Invalid => break None,
            }
        };
        if let Some(partial_at) = outcome {
            if records >= MIN_CHAIN {
                if let Some(last_ts) = last {
                    return Some(Tail {
                        last_ts,
                        partial_at,
                        disordered,
                    });
                }
            }
        }
        c += align;
    }
    None
}

fn rd32(be: bool, b: &[u8], at: usize) -> u32 {
    ng::rd32(be, b, at)
}

fn tail_pcap(
    buf: &[u8],
    be: bool,
    nanos: bool,
    max_caplen: u32,
    (lo, hi): (Timestamp, Timestamp),
) -> Option<Tail> {
    let mut prev: Option<(usize, Timestamp)> = None;
    chain(buf, 1, |c, p| {
        if buf.len() - p < 16 {
            return Step::Cut;
        }
        let secs = rd32(be, buf, p);
        let frac = rd32(be, buf, p + 4);
        let caplen = rd32(be, buf, p + 8);
        let origlen = rd32(be, buf, p + 12);
        let frac_ok = if nanos {
            frac < 1_000_000_000
        } else {
            frac < 1_000_000
        };
        let ts = Timestamp::from_nanos(
            i64::from(secs) * 1_000_000_000 + i64::from(frac) * if nanos { 1 } else { 1000 },
        );
        if !frac_ok
            || caplen == 0
            || caplen > max_caplen
            || origlen < caplen
            || origlen > MAX_BLOCK
            || ts < lo
            || ts > hi
        {
            return Step::Invalid;
        }
        // Consecutive records of one capture are close in time.
        if let Some((chain_id, t)) = prev {
            if chain_id == c && ts.abs_diff(t) > TIME_SLOP {
                return Step::Invalid;
            }
        }
        prev = Some((c, ts));
        let len = 16 + caplen as usize;
        if p + len > buf.len() {
            return Step::Cut;
        }
        Step::Record { len, ts: Some(ts) }
    })
}

fn tail_ng(
    buf: &[u8],
    section_be: bool,
    head_ifaces: &[IfaceInfo],
    (lo, hi): (Timestamp, Timestamp),
) -> Option<Tail> {
    // Per chain: the byte order and interface table in force. A chain that
    // crosses a new SHB starts a new table from the IDBs that follow it.
    let mut state: Option<(usize, bool, Vec<IfaceInfo>, bool)> = None;
    chain(buf, 4, |c, p| {
        if state.as_ref().is_none_or(|s| s.0 != c) {
            state = Some((c, section_be, head_ifaces.to_vec(), false));
        }
        let (_, be, ifaces, new_section) = state.as_mut().expect("set above");
        let rest = &buf[p..];
        if rest.len() < 12 {
            return Step::Cut;
        }
        let is_shb = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) == ng::SHB_TYPE;
        let bbe = if is_shb {
            match ng::shb_order(rest) {
                Some(b) => b,
                None => return Step::Invalid,
            }
        } else {
            *be
        };
        let btype = rd32(bbe, rest, 0);
        let len = rd32(bbe, rest, 4);
        if !ng::KNOWN_TYPES.contains(&btype)
            || len < 12
            || !len.is_multiple_of(4)
            || len > MAX_BLOCK
        {
            return Step::Invalid;
        }
        let len = len as usize;
        if len > rest.len() {
            return Step::Cut;
        }
        let b = &rest[..len];
        if rd32(bbe, b, len - 4) as usize != len {
            return Step::Invalid;
        }
        let ts = match btype {
            ng::SHB_TYPE => {
                *be = bbe;
                ifaces.clear();
                *new_section = true;
                None
            }
            ng::IDB_TYPE if len >= 20 => {
                // Before a new SHB, the IDBs are already in the head's table.
                if *new_section {
                    ifaces.push(ng::idb_iface(bbe, b).0);
                }
                None
            }
            ng::EPB_TYPE | ng::OPB_TYPE => {
                if len < 32 {
                    return Step::Invalid;
                }
                let if_id = if btype == ng::EPB_TYPE {
                    rd32(bbe, b, 8) as usize
                } else {
                    usize::from(ng::rd16(bbe, b, 8))
                };
                let caplen = rd32(bbe, b, 20) as usize;
                if caplen > len - 32 {
                    return Step::Invalid;
                }
                let Some(iface) = ifaces.get(if_id) else {
                    return Step::Invalid;
                };
                let ticks = (u64::from(rd32(bbe, b, 12)) << 32) | u64::from(rd32(bbe, b, 16));
                let ts = iface.ts_nanos(ticks);
                if ts < lo || ts > hi {
                    return Step::Invalid;
                }
                Some(ts)
            }
            _ => None,
        };
        Step::Record { len, ts }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts_s: u32, usec: u32, caplen: usize) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(ts_s.to_le_bytes());
        v.extend(usec.to_le_bytes());
        v.extend((caplen as u32).to_le_bytes());
        v.extend((caplen as u32 + 10).to_le_bytes());
        // Payload that itself looks like record headers would be the worst
        // case: fill it with plausible numbers.
        for i in 0..caplen {
            v.push((i % 7) as u8);
        }
        v
    }

    #[test]
    fn pcap_tail_chain_from_a_mid_record_window() {
        let t0 = 1_700_000_000u32;
        let mut file = Vec::new();
        for i in 0..50 {
            file.extend(rec(t0 + i, 1000 * i, 60 + (i as usize * 13) % 200));
        }
        let secs = |s: u32, ns: i64| Timestamp::from_nanos(i64::from(s) * 1_000_000_000 + ns);
        let span = (secs(t0 - 10, 0), secs(t0 + 100, 0));
        // A window starting anywhere inside a record finds the real end.
        for cut in [1usize, 7, 100, 333] {
            let t = tail_pcap(&file[cut..], false, false, 262_144, span).unwrap();
            assert_eq!(t.last_ts, secs(t0 + 49, 49_000_000));
            assert_eq!(t.partial_at, None);
        }
        // Cut short: the last record is partial, and says where.
        let whole = file.len() - rec(t0 + 49, 49_000, 60 + (49 * 13) % 200).len();
        let cut_file = &file[..file.len() - 5];
        let t = tail_pcap(&cut_file[3..], false, false, 262_144, span).unwrap();
        assert_eq!(t.partial_at, Some(whole - 3));
        assert_eq!(t.last_ts, secs(t0 + 48, 48_000_000));
        // Times far from the file's: no chain.
        assert_eq!(
            tail_pcap(&file, false, false, 262_144, (secs(0, 0), secs(0, 1))),
            None
        );
    }
}
