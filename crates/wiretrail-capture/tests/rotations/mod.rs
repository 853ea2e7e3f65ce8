//! Test support: real corpus captures cut into rotations, named the way
//! tcpdump and dumpcap name them, and the tshark oracle beside them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use wiretrail_capture::{Duration, Timestamp};

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

pub fn capture(name: &str) -> PathBuf {
    corpus().join("captures").join(name)
}

/// `1795562981.673011356` (or 6 fractional digits) → ns.
pub fn epoch_ns(s: &str) -> Timestamp {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut frac = frac.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    Timestamp::from_nanos(
        secs.parse::<i64>().unwrap() * 1_000_000_000 + frac.parse::<i64>().unwrap(),
    )
}

/// Rows of an oracle TSV as header→value maps.
pub fn tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub fn oracle(name: &str) -> PathBuf {
    corpus().join("oracle").join(name)
}

/// Splits a legacy pcap file into `parts` valid pcap files (same header,
/// consecutive records), as tcpdump -C would have written them.
pub fn split_pcap(src: &Path, parts: usize) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(src).unwrap();
    let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2c3d4 | 0xa1b23c4d);
    let rd32 = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = rd32(at + 8) as usize;
        records.push(at..at + 16 + caplen);
        at += 16 + caplen;
    }
    let per = records.len().div_ceil(parts);
    records
        .chunks(per)
        .map(|chunk| {
            let mut out = bytes[..24].to_vec();
            for r in chunk {
                out.extend_from_slice(&bytes[r.clone()]);
            }
            out
        })
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Writes `data` to `dir/name`, compressing by the name's suffix.
pub fn put(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let data = if name.ends_with(".gz") {
        gzip(data)
    } else if name.ends_with(".zst") {
        zstd(data)
    } else {
        data.to_vec()
    };
    std::fs::write(&p, data).unwrap();
    p
}

/// A directory `node` under `root` holding `gen-lo-nano.pcap` cut into four
/// tcpdump `-C` rotations: plain, plain, gzip, zstd.
pub fn lo_rotations(root: &Path) -> PathBuf {
    let dir = root.join("lo");
    std::fs::create_dir_all(&dir).unwrap();
    let parts = split_pcap(&capture("gen-lo-nano.pcap"), 4);
    for (p, name) in parts
        .iter()
        .zip(["lo.pcap", "lo.pcap1", "lo.pcap2.gz", "lo.pcap3.zst"])
    {
        put(&dir, name, p);
    }
    dir
}

/// A legacy pcap of about `bytes` bytes made of `src`'s records (its header,
/// its frames, in a loop) re-stamped from `t0` every `step` ns: real frames
/// on a synthetic clock, to make rotations big enough to be probed.
/// Returns the file and the times of its first and last records.
pub fn stretch_pcap(
    src: &Path,
    t0: Timestamp,
    step: Duration,
    bytes: usize,
) -> (Vec<u8>, Timestamp, Timestamp) {
    let data = std::fs::read(src).unwrap();
    let magic = u32::from_le_bytes(data[..4].try_into().unwrap());
    assert!(
        matches!(magic, 0xa1b2c3d4 | 0xa1b23c4d),
        "little-endian pcap wanted"
    );
    let nanos = magic == 0xa1b23c4d;
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(data[at + 12..at + 16].try_into().unwrap());
        frames.push((orig, &data[at + 16..at + 16 + caplen]));
        at += 16 + caplen;
    }
    let mut out = data[..24].to_vec();
    let mut ts = t0;
    let mut last = t0;
    for (orig, f) in frames.iter().cycle() {
        if out.len() >= bytes {
            break;
        }
        let (secs, frac) = ts.as_secs_nanos();
        out.extend((secs as u32).to_le_bytes());
        out.extend((if nanos { frac } else { frac / 1000 } as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(orig.to_le_bytes());
        out.extend_from_slice(f);
        last = if nanos {
            ts
        } else {
            ts - Duration::from_nanos(u64::from(frac % 1000))
        };
        ts += step;
    }
    (out, t0, last)
}

/// `n` numbered tcpdump `-C` rotations `be1.pcap`, `be1.pcap1`, ... of about
/// `bytes` each, back to back in time (1 ms between records). Returns the
/// directory and each file's (first, last) record time.
pub fn numbered_rotations(
    root: &Path,
    n: usize,
    bytes: usize,
) -> (PathBuf, Vec<(Timestamp, Timestamp)>) {
    let dir = root.join("be1");
    std::fs::create_dir_all(&dir).unwrap();
    let mut t = Timestamp::from_nanos(1_700_000_000_000_000_000);
    let mut spans = Vec::new();
    for i in 0..n {
        let (data, first, last) = stretch_pcap(
            &capture("gen-lo-nano.pcap"),
            t,
            Duration::from_millis(1),
            bytes,
        );
        let name = if i == 0 {
            "be1.pcap".to_string()
        } else {
            format!("be1.pcap{i}")
        };
        std::fs::write(dir.join(name), data).unwrap();
        spans.push((first, last));
        t = last + Duration::from_millis(1);
    }
    (dir, spans)
}
