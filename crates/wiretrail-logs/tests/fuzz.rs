//! A fuzz target that runs on stable: mutated and random lines from a
//! deterministic RNG through every envelope, the Go error parser, the
//! document parser and the streaming reader. No input may panic.
//!
//! `WIRETRAIL_FUZZ_ITERS=5000000 cargo test -p wiretrail-logs --release --test fuzz`
//! runs longer; `WIRETRAIL_FUZZ_SEED` picks another sequence. A crashing
//! input is written to `tests/fixtures/fuzz/crash-*.bin`; commit it, and it
//! is replayed by `regressions` from then on.

use std::path::PathBuf;
use wiretrail_logs::reader::ReadOptions;
use wiretrail_logs::{
    parse_document, parse_go_error, parse_line, LogReader, ParseConfig, Parsed, Source,
};

const SEEDS: &[&str] = &[
    "May 05 17:33:07 *: 2023/05/05 17:33:07 http: proxy error: read tcp ip-proxy:51392->ip-backend:80: read: connection reset by peer",
    "May 05 17:39:14 gw1 proxy[812]: 2023/05/05 17:39:14 http: proxy error: readfrom tcp ip-proxy:52736->ip-backend:80: write tcp ip-proxy:52736->ip-backend:80: use of closed network connection",
    "2023/05/05 17:33:07.481516 /go/src/reverseproxy.go:739: [gw] http: proxy error: dial tcp [fe80::1%eth0]:80: connect: no route to host",
    "[gw] 2023/05/05 17:33:07 http: proxy error: dial tcp: lookup backend.svc on 10.96.0.10:53: no such host",
    "2023-05-05T17:33:07.481516+08:00 gw1 proxy[812]: http: proxy error: context canceled",
    "<134>May  5 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: EOF",
    "<134>1 2023-05-05T09:33:07.481Z gw1 proxy 812 ID47 [ex@1 a=\"\\]\"] \u{feff}http: proxy error: tls: bad certificate",
    "2023-05-05T09:33:07.123456789Z stderr P 2023/05/05 17:33:07 http: proxy error: read tcp6 [fd00:1::5]:46572->[fd00:2::9]:8080: i/o timeout",
    "2023-05-05T09:33:07.123456789Z stderr F 2023/05/05 17:33:07 http: proxy error: net/http: timeout awaiting response headers",
    r#"{"log":"2023/05/05 17:33:07 http: proxy error: unexpected EOF\n","stream":"stderr","time":"2023-05-05T09:33:07.123456789Z"}"#,
    r#"{"__REALTIME_TIMESTAMP":"1683279187481516","_HOSTNAME":"gw1","SYSLOG_IDENTIFIER":"proxy","_PID":"812","MESSAGE":"2023/05/05 17:33:07 http: proxy error: http2: client connection lost"}"#,
    r#"{"__REALTIME_TIMESTAMP":"1683279187481516","MESSAGE":[104,116,116,112,58,32]}"#,
    r#"{"@timestamp":"2023-05-05T09:33:07.481Z","message":"May  5 17:33:07 gw1 p[1]: http: proxy error: write tcp 1.2.3.4:5->6.7.8.9:80: write: broken pipe","host":{"name":"gw1"},"log.file":{"path":"/x"}}"#,
];

const TOKENS: &[&str] = &[
    "->",
    ": ",
    "[",
    "]",
    "%",
    "{",
    "}",
    "\"",
    "\\",
    ":",
    " ",
    "\n",
    "\r",
    "\u{feff}",
    "\u{fffd}",
    "http: proxy error: ",
    "tcp ",
    "tcp6 ",
    "lookup ",
    " on ",
    "2023/",
    "12/31 ",
    "23:59:60",
    ".999999999999",
    "+99:99",
    "Z",
    "Feb 29 ",
    "<999>",
    "1 ",
    " stderr P ",
    " stdout F ",
    "[",
    "99999999999999999999",
    "\"MESSAGE\":[",
    "\u{0}",
    "\u{7f}",
];

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                input.splice(at..at, t.iter().copied());
            }
            3 if at < input.len() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            4 => input.truncate(at),
            5 => {
                let other = SEEDS[rng.below(SEEDS.len())].as_bytes();
                let from = rng.below(other.len());
                input.splice(at..at, other[from..].iter().copied());
            }
            _ if at < input.len() => {
                let end = (at + rng.below(8)).min(input.len());
                let dup: Vec<u8> = input[at..end].to_vec();
                input.splice(at..at, dup);
            }
            _ => {}
        }
    }
}

fn cfg() -> ParseConfig {
    ParseConfig {
        tz: Some(chrono_tz::Asia::Shanghai),
        year: None,
        reference: chrono::Utc::now(),
        formats: wiretrail_logs::Formats::ALL,
    }
}

/// Everything one input goes through.
fn exercise(input: &[u8], cfg: &ParseConfig) {
    let parsed = parse_line(input, Source::Stdin { line: 1 }, cfg);
    if let Parsed::Error(e) = &parsed {
        serde_json::to_string(e).expect("a record always serializes");
    }
    let text = String::from_utf8_lossy(input);
    let _ = parse_go_error(&text);
    if let Some(at) = text.find("proxy error: ") {
        let _ = parse_go_error(&text[at + 13..]);
    }
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(input) {
        let _ = parse_document(
            &doc,
            Source::Elasticsearch {
                index: "i".into(),
                id: "1".into(),
                path: None,
                offset: None,
            },
            cfg,
        );
    }
}

fn save_crash(input: &[u8]) -> PathBuf {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/fuzz/crash-{h:016x}.bin"));
    let _ = std::fs::write(&p, input);
    p
}

#[test]
fn fuzz_envelopes_and_go_errors() {
    let iters: u64 = std::env::var("WIRETRAIL_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("WIRETRAIL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Rng(seed);
    let cfg = cfg();
    let mut batch: Vec<u8> = Vec::new();
    for i in 0..iters {
        let mut input = if rng.below(20) == 0 {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec()
        };
        mutate(&mut rng, &mut input);
        let r = std::panic::catch_unwind(|| exercise(&input, &cfg));
        if r.is_err() {
            panic!(
                "iteration {i}: input saved to {}",
                save_crash(&input).display()
            );
        }
        batch.extend_from_slice(&input);
        batch.push(b'\n');
        // Stream the inputs through the reader too (CRI/Docker joining,
        // counting), once whole and once cut into chunks on two workers: the
        // two must agree (a worker's panic would show as a failure).
        if batch.len() > 256 << 10 || i + 1 == iters {
            let bytes = std::mem::take(&mut batch);
            let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
            let copy = bytes.clone();
            let chunk = (64 << 10) + rng.below(64 << 10);
            let r = std::panic::catch_unwind(|| reader_agrees(&copy, &cfg, chunk, Some(lines)));
            if r.is_err() {
                panic!("reader: input saved to {}", save_crash(&bytes).display());
            }
        }
    }
}

/// Read `bytes` whole on one worker and cut into chunks of `chunk` bytes on
/// two: the records and counts must agree, nothing may fail.
fn reader_agrees(bytes: &[u8], cfg: &ParseConfig, chunk: usize, lines: Option<u64>) {
    let read = |opts: ReadOptions| {
        let mut rd = LogReader::from_reader_with(
            "fuzz",
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            cfg.clone(),
            opts,
        );
        let recs: Vec<_> = rd.by_ref().collect();
        (recs, rd.stats().clone())
    };
    let (whole, ws) = read(ReadOptions {
        threads: 1,
        chunk_bytes: 16 << 20,
    });
    assert_eq!(ws.proxy_errors, whole.len() as u64);
    if let Some(lines) = lines {
        assert_eq!(ws.lines, lines, "every line counted");
    }
    assert!(!ws.failed(), "{:?}", ws.problems);
    let (cut, cs) = read(ReadOptions {
        threads: 2,
        chunk_bytes: chunk,
    });
    assert_eq!(cut, whole, "chunks of {chunk} bytes");
    assert_eq!(cs, ws, "chunks of {chunk} bytes");
}

/// Inputs that once crashed (or were interesting) stay fixed.
#[test]
fn regressions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let cfg = cfg();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        for line in bytes.split(|b| *b == b'\n') {
            exercise(line, &cfg);
        }
        for chunk in [4096, 75_991] {
            reader_agrees(&bytes, &cfg, chunk, None);
        }
        n += 1;
    }
    assert!(n > 0, "no regression fixtures in {}", dir.display());
}
