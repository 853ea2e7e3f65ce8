//! The capture reader and the packet decoder on arbitrary files: the bytes
//! are written to a file (tmpfs) and read both ways the catalog reads
//! captures, mapped and streamed (pcap, pcapng, gzip and zstd are sniffed
//! from the bytes), every record decoded, then read again from a checkpoint
//! taken after the first record. No input may panic or make the reader
//! spin. Seeds: the corpus's captures and `bad/` files (fuzz/run.sh).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use wiretrail_capture::decode::{decode_tcp, tcp_ports};
use wiretrail_capture::read::CaptureReader;

/// Records and errors one read may yield before it counts as spinning (the
/// deterministic test's bound).
const MAX_STEPS: usize = 200_000;

fn case_path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::var_os("WIRETRAIL_FUZZ_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/dev/shm"));
        dir.join(format!("wiretrail-fuzz-{}.cap", std::process::id()))
    })
}

/// Read to the end, decoding every record; the checkpoint after the first.
fn read_all(rd: &mut CaptureReader) -> Option<wiretrail_capture::read::Checkpoint> {
    let mut first = None;
    for _ in 0..MAX_STEPS {
        match rd.next_record() {
            None => return first,
            Some(Ok(r)) => {
                let _ = decode_tcp(r.linktype, r.data, r.orig_len);
                let _ = tcp_ports(r.linktype, r.data);
                if first.is_none() {
                    first = Some(rd.checkpoint());
                }
            }
            Some(Err(_)) => {}
        }
    }
    panic!("the reader did not end within {MAX_STEPS} steps");
}

fuzz_target!(|data: &[u8]| {
    let path = case_path();
    std::fs::write(path, data).expect("the fuzz case file is writable");
    let mut at = None;
    if let Ok(mut rd) = CaptureReader::open(path) {
        at = read_all(&mut rd);
    }
    if let Ok(mut rd) = CaptureReader::open_streamed(path) {
        read_all(&mut rd);
    }
    if let Some(at) = at {
        if let Ok(mut rd) = CaptureReader::open_at(path, &at) {
            read_all(&mut rd);
        }
    }
});
