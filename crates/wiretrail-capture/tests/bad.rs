//! Every broken or hostile file in the corpus's `bad/` folder against
//! `bad/EXPECTED.tsv`: the reader returns the good prefix, then an error (or
//! a partial-tail stop) naming the right byte offset, and never panics,
//! loops or allocates from an unchecked length.

mod common;

use std::path::{Path, PathBuf};
use wiretrail_capture::decode::{decode_tcp, tcp_ports};
use wiretrail_capture::read::{CaptureReader, ReadError};

fn corpus() -> Option<PathBuf> {
    common::corpus_with("bad/EXPECTED.tsv")
}

/// What reading a file gave: records before the first error, the first
/// error, how the stream ended.
#[derive(Debug)]
struct Outcome {
    good: usize,
    first_error: Option<ReadError>,
    tail: Option<u64>,
    total_records: usize,
}

fn read(path: &Path) -> Result<Outcome, ReadError> {
    let mut rd = CaptureReader::open(path)?;
    let mut out = Outcome {
        good: 0,
        first_error: None,
        tail: None,
        total_records: 0,
    };
    // Bounded: a reader that loops on a bad block fails here.
    for _ in 0..100_000 {
        match rd.next_record() {
            None => break,
            Some(Ok(r)) => {
                out.total_records += 1;
                if out.first_error.is_none() {
                    out.good += 1;
                }
                assert!(r.data.len() <= 16 * 1024 * 1024);
                // The decoder must survive whatever the record holds.
                let _ = decode_tcp(r.linktype, r.data, r.orig_len);
                let _ = tcp_ports(r.linktype, r.data);
            }
            Some(Err(e)) => {
                assert_eq!(e.path(), path, "error must name the file");
                out.first_error.get_or_insert(e);
            }
        }
    }
    assert!(rd.next_record().is_none(), "reader must stay ended");
    out.tail = rd.truncated_tail();
    Ok(out)
}

#[test]
fn every_bad_file_behaves_as_expected() {
    let Some(dir) = corpus() else { return };
    let text = std::fs::read_to_string(dir.join("bad/EXPECTED.tsv")).unwrap();
    let mut checked = 0;
    let mut problems = Vec::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let (file, level, expect, good) = (c[0], c[1], c[2], c[3].parse::<usize>().unwrap());
        let offset: Option<u64> = c[4].split_whitespace().next().and_then(|s| s.parse().ok());
        let path = dir.join("bad").join(file);
        let res = read(&path);
        checked += 1;
        let mut bad = |m: String| problems.push(format!("{file} ({expect}): {m}"));
        match expect {
            "error" | "error-or-variant" => match &res {
                Err(e) => {
                    if Some(e.offset()) != offset {
                        bad(format!("error at {} (want {offset:?}): {e}", e.offset()));
                    }
                    assert!(e.to_string().contains(file), "message names the file: {e}");
                }
                Ok(o) if expect == "error-or-variant" && o.first_error.is_none() && o.good == 1 => {
                }
                Ok(o) => bad(format!("opened: {o:?}")),
            },
            "ok" => match &res {
                Ok(o) if o.first_error.is_none() && o.tail.is_none() && o.good == good => {}
                other => bad(format!("{other:?}")),
            },
            "prefix+error" => match &res {
                Ok(o) if o.good == good => {
                    let at = o.first_error.as_ref().map(|e| e.offset()).or(o.tail);
                    if at != offset {
                        bad(format!("stopped at {at:?}, want {offset:?}: {o:?}"));
                    }
                }
                other => bad(format!("want {good} records then an error: {other:?}")),
            },
            other => panic!("unknown expectation {other}"),
        }
        let _ = level;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 30, "only {checked} bad files checked");
}

/// pcapng corruption costs one block, not the file: after a bad block the
/// reader resynchronises and delivers the following packets.
#[test]
fn pcapng_resynchronises_after_a_bad_block() {
    let Some(dir) = corpus() else { return };
    // The good original of the bad-*.pcapng files: take a real capture and
    // break its third EPB's length in memory.
    let src = std::fs::read(dir.join("captures/zeek-irc-dcc-send.pcapng")).unwrap();
    let mut rd = CaptureReader::open(&dir.join("captures/zeek-irc-dcc-send.pcapng")).unwrap();
    let mut offsets = Vec::new();
    while let Some(r) = rd.next_record() {
        offsets.push(r.unwrap().offset);
    }
    let total = offsets.len();
    let victim = offsets[2] as usize;
    let mut broken = src.clone();
    broken[victim + 4..victim + 8].copy_from_slice(&7u32.to_le_bytes()); // length 7: invalid
    let tmp = std::env::temp_dir().join(format!("wiretrail-resync-{}.pcapng", std::process::id()));
    std::fs::write(&tmp, &broken).unwrap();
    let o = read(&tmp).unwrap();
    std::fs::remove_file(&tmp).unwrap();
    assert_eq!(o.good, 2);
    assert_eq!(
        o.first_error.as_ref().map(|e| e.offset()),
        Some(victim as u64)
    );
    assert_eq!(o.total_records, total - 1, "only the broken block is lost");
}

/// A file that is still being written: every cut point inside the last
/// record reads as a clean partial tail, never an error.
#[test]
fn growing_file_is_a_partial_tail() {
    let Some(dir) = corpus() else { return };
    for name in ["gen-lo-nano.pcap", "zeek-mysql-lo-nsres.pcapng"] {
        let full = std::fs::read(dir.join("captures").join(name)).unwrap();
        let mut rd = CaptureReader::open(&dir.join("captures").join(name)).unwrap();
        let mut last = 0;
        let mut n = 0;
        while let Some(r) = rd.next_record() {
            last = r.unwrap().offset;
            n += 1;
        }
        let tmp =
            std::env::temp_dir().join(format!("wiretrail-tail-{}-{name}", std::process::id()));
        let mut cuts = vec![last as usize + 1, last as usize + 9, last as usize + 17];
        if name.ends_with(".pcap") {
            cuts.push(full.len() - 1); // the last record is the file's end
        }
        for cut in cuts {
            std::fs::write(&tmp, &full[..cut]).unwrap();
            let o = read(&tmp).unwrap();
            assert!(o.first_error.is_none(), "{name} cut at {cut}: {o:?}");
            assert_eq!(o.tail, Some(last), "{name} cut at {cut}");
            assert_eq!(o.good, n - 1);
        }
        std::fs::remove_file(&tmp).unwrap();
    }
}
