//! Container cases the shared corpus lacks: base-2 `if_tsresol`,
//! `if_tsoffset`, big-endian IDB options, obsolete Packet Blocks.

use super::*;

/// Builds pcapng blocks in either byte order.
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, btype: u32, body: &[u8]) {
        let len = 12 + body.len() as u32;
        assert_eq!(len % 4, 0);
        let (t, l) = (self.u32(btype), self.u32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(&l);
    }
    fn shb(&mut self) {
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32(0x1A2B_3C4D));
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&[0xff; 8]);
        self.block(0x0A0D_0D0A, &b);
    }
    fn idb(&mut self, linktype: u16, tsresol: u8, tsoffset: i64) {
        let mut b = Vec::new();
        b.extend_from_slice(&self.u16(linktype));
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&self.u32(0));
        b.extend_from_slice(&self.u16(9));
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&[tsresol, 0, 0, 0]);
        b.extend_from_slice(&self.u16(14));
        b.extend_from_slice(&self.u16(8));
        b.extend_from_slice(&if self.be {
            tsoffset.to_be_bytes()
        } else {
            tsoffset.to_le_bytes()
        });
        b.extend_from_slice(&[0; 4]);
        self.block(1, &b);
    }
    fn packet(&mut self, obsolete: bool, iface: u32, ticks: u64, data: &[u8]) {
        let mut b = Vec::new();
        if obsolete {
            b.extend_from_slice(&self.u16(iface as u16));
            b.extend_from_slice(&self.u16(0));
        } else {
            b.extend_from_slice(&self.u32(iface));
        }
        b.extend_from_slice(&self.u32((ticks >> 32) as u32));
        b.extend_from_slice(&self.u32(ticks as u32));
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(&self.u32(data.len() as u32 + 10));
        b.extend_from_slice(data);
        b.resize(b.len().next_multiple_of(4), 0);
        self.block(if obsolete { 2 } else { 6 }, &b);
    }
}

fn read_all(bytes: &[u8], tag: &str) -> Vec<(u64, Timestamp, u16, u32, Vec<u8>, u32)> {
    let path = std::env::temp_dir().join(format!(
        "wiretrail-read-{tag}-{}.pcapng",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let mut rd = CaptureReader::open(&path).unwrap();
    let mut v = Vec::new();
    while let Some(r) = rd.next_record() {
        let r = r.unwrap();
        v.push((
            r.frame,
            r.ts,
            r.linktype,
            r.interface,
            r.data.to_vec(),
            r.orig_len,
        ));
    }
    assert!(rd.truncated_tail().is_none());
    std::fs::remove_file(&path).unwrap();
    v
}

#[test]
fn base2_resolution_offsets_and_obsolete_blocks_in_both_byte_orders() {
    for be in [false, true] {
        let mut ng = Ng {
            be,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(1, 0x80 | 20, 0); // 2^-20 s ticks
        ng.idb(101, 3, 1_000); // milliseconds, 1000 s offset
        ng.packet(false, 0, (5u64 << 20) | (1 << 19), b"abc"); // 5.5 s
        ng.packet(true, 1, 2_500, b"defgh"); // 2.5 s + 1000 s
        let got = read_all(&ng.out, if be { "be" } else { "le" });
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            (
                1,
                Timestamp::from_nanos(5_500_000_000),
                1,
                0,
                b"abc".to_vec(),
                13
            )
        );
        assert_eq!(
            got[1],
            (
                2,
                Timestamp::from_nanos(1_002_500_000_000),
                101,
                1,
                b"defgh".to_vec(),
                15
            )
        );
    }
}

#[test]
fn timestamp_conversion_saturates_instead_of_overflowing() {
    let i = IfaceInfo {
        linktype: 1,
        snaplen: 0,
        tsresol: 0,
        tsoffset: i64::MAX,
    };
    assert_eq!(i.ts_nanos(u64::MAX), Timestamp::MAX);
    let i = IfaceInfo {
        linktype: 1,
        snaplen: 0,
        tsresol: 0xff,
        tsoffset: 0,
    };
    assert_eq!(i.ts_nanos(u64::MAX), Timestamp::EPOCH);
    let i = IfaceInfo {
        linktype: 1,
        snaplen: 0,
        tsresol: 12,
        tsoffset: 0,
    };
    assert_eq!(
        i.ts_nanos(1_500_000_000_000),
        Timestamp::from_nanos(1_500_000_000)
    );
}

#[test]
fn compression_is_sniffed_from_content() {
    assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
        Compression::Zstd
    );
    assert_eq!(
        Compression::sniff(&[0xd4, 0xc3, 0xb2, 0xa1]),
        Compression::None
    );
    assert_eq!(Compression::sniff(&[]), Compression::None);
}
