//! A stable-Rust fuzz target for the readers and the decoder: corpus
//! captures mutated (bit flips, truncations, corrupted length fields,
//! inserted and deleted bytes; a sixth of them then gzipped so the
//! streaming path sees the damage too) with a deterministic RNG, fed through
//! `CaptureReader` and `decode_tcp`. The property: no panic, no hang, no
//! absurd allocation; every error names the file.
//!
//! `WIRETRAIL_FUZZ_ITERS=N` runs N file-level cases (default 300; the
//! decoder gets 50× as many packet-level cases) and `WIRETRAIL_FUZZ_SEED`
//! changes the seed. A panicking input is saved under the temp dir and its
//! path printed: copy it to `tests/fixtures/fuzz/`, where
//! `fixtures_do_not_panic` replays it forever after.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use wiretrail_capture::decode::{decode_tcp, tcp_ports};
use wiretrail_capture::read::CaptureReader;

/// SplitMix64: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn corpus() -> Option<PathBuf> {
    common::corpus_with("captures")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Read every record of `path` and decode it under every link type we know.
fn exercise(path: &Path) -> usize {
    let Ok(mut rd) = CaptureReader::open(path) else {
        return 0;
    };
    let mut n = 0;
    // Bounded so that a reader stuck on one block shows up as a failure.
    for _ in 0..200_000 {
        match rd.next_record() {
            None => return n,
            Some(Ok(r)) => {
                n += 1;
                let _ = decode_tcp(r.linktype, r.data, r.orig_len);
                let _ = tcp_ports(r.linktype, r.data);
            }
            Some(Err(e)) => assert_eq!(e.path(), path),
        }
    }
    panic!("reader did not end within 200000 steps");
}

/// Offsets worth corrupting: record/block starts of a clean read.
fn boundaries(path: &Path) -> Vec<u64> {
    let mut rd = CaptureReader::open(path).unwrap();
    let mut v = vec![0];
    while let Some(Ok(r)) = rd.next_record() {
        v.push(r.offset);
    }
    v
}

const LENGTHS: [u32; 12] = [
    0,
    1,
    7,
    8,
    11,
    12,
    13,
    65535,
    65536,
    0x7fff_ffff,
    0xffff_fff0,
    0xffff_ffff,
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, bounds: &[u64]) {
    for _ in 0..1 + rng.below(4) {
        if data.is_empty() {
            return;
        }
        match rng.below(6) {
            0 => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let cut = rng.below(data.len());
                data.truncate(cut);
            }
            2 | 3 => {
                // A length-ish field near a record start: pcap caplen (+8),
                // pcapng block length (+4), EPB caplen (+20), IDB/option words.
                let base = bounds[rng.below(bounds.len())] as usize;
                let at = base + [4, 8, 12, 20, 24, 2][rng.below(6)];
                if at + 4 <= data.len() {
                    let v = LENGTHS[rng.below(LENGTHS.len())];
                    let bytes = if rng.below(2) == 0 {
                        v.to_le_bytes()
                    } else {
                        v.to_be_bytes()
                    };
                    data[at..at + 4].copy_from_slice(&bytes);
                }
            }
            4 => {
                let i = rng.below(data.len());
                let n = 1 + rng.below(8);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(i..i, junk);
            }
            _ => {
                let i = rng.below(data.len());
                let n = (1 + rng.below(16)).min(data.len() - i);
                data.drain(i..i + n);
            }
        }
    }
}

#[test]
fn mutated_captures_never_panic() {
    let Some(dir) = corpus() else { return };
    let iters = env_u64("WIRETRAIL_FUZZ_ITERS", 300);
    let mut rng = Rng(env_u64("WIRETRAIL_FUZZ_SEED", 0x5eed_2026));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let originals: Vec<(Vec<u8>, Vec<u64>)> = files
        .iter()
        .map(|p| (std::fs::read(p).unwrap(), boundaries(p)))
        .collect();
    let tmp = std::env::temp_dir().join(format!("wiretrail-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let case = tmp.join("case.bin");
    let mut crashes = Vec::new();
    for i in 0..iters {
        let k = rng.below(files.len());
        let (orig, bounds) = &originals[k];
        let mut data = orig.clone();
        mutate(&mut rng, &mut data, bounds);
        if rng.below(6) == 0 {
            // The same damage behind gzip: the streaming path must cope too.
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&data).unwrap();
            data = gz.finish().unwrap();
        }
        std::fs::write(&case, &data).unwrap();
        if catch_unwind(AssertUnwindSafe(|| exercise(&case))).is_err() {
            let keep = tmp.join(format!(
                "crash-{i}-{}",
                files[k].file_name().unwrap().to_string_lossy()
            ));
            std::fs::write(&keep, &data).unwrap();
            crashes.push(keep);
        }
    }
    if crashes.is_empty() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(crashes.is_empty(), "panicking inputs saved: {crashes:#?}");
}

#[test]
fn mutated_packets_never_panic() {
    let Some(dir) = corpus() else { return };
    let iters = env_u64("WIRETRAIL_FUZZ_ITERS", 300) * 50;
    let mut rng = Rng(env_u64("WIRETRAIL_FUZZ_SEED", 0x5eed_2026) ^ 0xdec0de);
    // Packets (link type, bytes, orig_len) from every plain capture.
    let mut pkts = Vec::new();
    for e in std::fs::read_dir(dir.join("captures")).unwrap() {
        let p = e.unwrap().path();
        let mut rd = CaptureReader::open(&p).unwrap();
        while let Some(Ok(r)) = rd.next_record() {
            pkts.push((r.linktype, r.data.to_vec(), r.orig_len));
        }
    }
    const LINKS: [u16; 10] = [0, 1, 12, 101, 108, 113, 228, 229, 274, 276];
    for _ in 0..iters {
        let (lt, data, orig) = &pkts[rng.below(pkts.len())];
        let mut d = data.clone();
        // Mutate the headers, where the decoder looks.
        for _ in 0..1 + rng.below(4) {
            let span = d.len().min(96);
            if span == 0 {
                break;
            }
            let i = rng.below(span);
            match rng.below(3) {
                0 => d[i] ^= 1 << rng.below(8),
                1 => d[i] = rng.next() as u8,
                _ => d.truncate(i),
            }
        }
        let lt = if rng.below(8) == 0 {
            LINKS[rng.below(LINKS.len())]
        } else {
            *lt
        };
        let orig = if rng.below(8) == 0 {
            rng.next() as u32
        } else {
            *orig
        };
        if let Ok(t) = decode_tcp(lt, &d, orig) {
            // Views stay inside the captured bytes.
            assert!(t.payload.len() <= d.len());
            let ports = tcp_ports(lt, &d).expect("tcp_ports must accept what decode_tcp accepts");
            assert_eq!(ports, (t.src, t.src_port, t.dst, t.dst_port));
        }
    }
}

/// Inputs that once crashed something (and the bad corpus): replayed always.
#[test]
fn fixtures_do_not_panic() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(&fixtures) {
        for e in rd {
            let p = e.unwrap().path();
            exercise(&p);
            n += 1;
        }
    }
    eprintln!("replayed {n} fuzz fixtures from {}", fixtures.display());
}
