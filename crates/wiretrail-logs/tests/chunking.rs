//! The parallel reader's promise: the same records, line numbers and counts
//! whatever the number of threads, the chunk size, and whether a file is
//! memory-mapped or streamed, including lines a container runtime split in
//! parts (CRI `P`, Docker json-file) right where a chunk would end.

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use wiretrail_logs::reader::ReadOptions;
use wiretrail_logs::{ErrorClass, LogReader, ProxyError, ReadStats, Source};

/// SplitMix64: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// A line Go's `log` + `httputil.ReverseProxy` print (as in the seed).
fn go_error(i: u64) -> String {
    format!(
        "2023/05/05 17:{:02}:{:02} http: proxy error: read tcp 10.1.1.5:{}->10.2.2.9:80: read: connection reset by peer",
        (i / 60) % 60,
        i % 60,
        32768 + i % 20000
    )
}

fn go_noise(i: u64) -> String {
    format!(
        "2023/05/05 17:{:02}:{:02} 10.0.0.{}:{} \"GET /api/v1/items/{i} HTTP/1.1\" 200 {}",
        (i / 60) % 60,
        i % 60,
        i % 250,
        1024 + i % 60000,
        i * 7 % 100_000
    )
}

fn cri_stamp(i: u64) -> String {
    format!("2023-05-05T09:{:02}:{:02}.{:09}Z", (i / 60) % 60, i % 60, i)
}

/// A CRI log: whole lines on both streams, and proxy errors the runtime split
/// into two to four parts after the phrase (runtimes cut at 16 KiB, Go puts
/// the phrase in the first hundred bytes), with the other stream's lines
/// between the parts. Returns the text and how many
/// proxy errors it holds.
fn cri_log(lines: u64) -> (String, u64) {
    let mut rng = Rng(7);
    let mut s = String::new();
    let mut errors = 0;
    let mut i = 0;
    while i < lines {
        i += 1;
        let stream = if rng.below(2) == 0 {
            "stdout"
        } else {
            "stderr"
        };
        match rng.below(10) {
            0 => {
                errors += 1;
                s += &format!("{} {stream} F {}\n", cri_stamp(i), go_error(i));
            }
            1 => {
                errors += 1;
                let text = go_error(i);
                let parts = 2 + rng.below(3) as usize;
                let mut cuts: Vec<usize> = (1..parts)
                    .map(|_| 40 + rng.below(text.len() as u64 - 41) as usize)
                    .collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut from = 0;
                for (k, &c) in cuts.iter().chain([text.len()].iter()).enumerate() {
                    let tag = if c == text.len() { "F" } else { "P" };
                    s += &format!("{} {stream} {tag} {}\n", cri_stamp(i), &text[from..c]);
                    from = c;
                    if k == 0 && rng.below(2) == 0 {
                        let other = if stream == "stdout" {
                            "stderr"
                        } else {
                            "stdout"
                        };
                        i += 1;
                        s += &format!("{} {other} F {}\n", cri_stamp(i), go_noise(i));
                    }
                }
            }
            _ => s += &format!("{} {stream} F {}\n", cri_stamp(i), go_noise(i)),
        }
    }
    (s, errors)
}

fn docker_line(log: &str, stream: &str, i: u64) -> String {
    let v = serde_json::json!({"log": log, "stream": stream, "time": cri_stamp(i)});
    format!("{v}\n")
}

/// A Docker json-file log with proxy errors split into parts (a `log` that
/// does not end in a newline continues on the next entry of its stream).
fn docker_log(lines: u64) -> (String, u64) {
    let mut rng = Rng(11);
    let mut s = String::new();
    let mut errors = 0;
    for i in 0..lines {
        let stream = if rng.below(2) == 0 {
            "stdout"
        } else {
            "stderr"
        };
        match rng.below(10) {
            0 => {
                errors += 1;
                s += &docker_line(&format!("{}\n", go_error(i)), stream, i);
            }
            1 => {
                errors += 1;
                let text = format!("{}\n", go_error(i));
                // Docker cuts at 16 KiB; here after the phrase, keeping the
                // phrase in the first part as it is for every real Go line.
                let c = 40 + rng.below(text.len() as u64 - 41) as usize;
                s += &docker_line(&text[..c], stream, i);
                if rng.below(2) == 0 {
                    let other = if stream == "stdout" {
                        "stderr"
                    } else {
                        "stdout"
                    };
                    s += &docker_line(&format!("{}\n", go_noise(i)), other, i);
                }
                s += &docker_line(&text[c..], stream, i);
            }
            _ => s += &docker_line(&format!("{}\n", go_noise(i)), stream, i),
        }
    }
    (s, errors)
}

/// journald short, bare Go, RFC 5424 and journald JSON, one after another.
fn mixed_log(lines: u64) -> (String, u64) {
    let mut s = String::new();
    let mut errors = 0;
    for i in 0..lines {
        let body = if i % 9 == 0 {
            errors += 1;
            go_error(i)
        } else {
            go_noise(i)
        };
        s += &match (i / 500) % 4 {
            0 => format!("May 05 17:33:07 gw1 proxy[812]: {body}\n"),
            1 => format!("{body}\n"),
            2 => format!("<134>1 2023-05-05T17:33:07.{i:06}+08:00 gw1 proxy 812 - - {body}\n"),
            _ => format!(
                "{}\n",
                serde_json::json!({"__REALTIME_TIMESTAMP": (1_683_279_187_000_000u64 + i).to_string(), "MESSAGE": body})
            ),
        };
    }
    (s, errors)
}

fn read(path: &Path, threads: usize, chunk_bytes: usize) -> (Vec<ProxyError>, ReadStats) {
    let opts = ReadOptions {
        threads,
        chunk_bytes,
    };
    let mut r = LogReader::open_with(&[path.to_path_buf()], cfg(), opts).unwrap();
    let recs: Vec<ProxyError> = r.by_ref().collect();
    (recs, r.stats().clone())
}

/// Records with the file name replaced, so a `.gz` twin compares equal.
fn named(mut recs: Vec<ProxyError>) -> Vec<ProxyError> {
    for e in &mut recs {
        if let Source::File { file, .. } = &mut e.source {
            *file = "x".into();
        }
    }
    recs
}

fn check_everywhere(name: &str, text: &str, errors: u64) {
    let dir = tempfile::tempdir().unwrap();
    let plain: PathBuf = dir.path().join(format!("{name}.log"));
    std::fs::write(&plain, text).unwrap();
    let gz = dir.path().join(format!("{name}.log.gz"));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();

    let (want, want_stats) = read(&plain, 1, 8 << 20);
    assert_eq!(want.len() as u64, errors, "{name}: {want_stats:?}");
    assert_eq!(want_stats.unparsed, 0, "{name}: {:?}", want_stats.problems);
    assert_eq!(want_stats.lines, text.lines().count() as u64, "{name}");
    for e in &want {
        assert_eq!(e.class, ErrorClass::Reset, "{name}: {e:?}");
        assert!(
            e.message.ends_with("read: connection reset by peer"),
            "{name}: {e:?}"
        );
    }
    for threads in [1, 2, 3] {
        for chunk in [4096, 10_007, 65_536] {
            for path in [&plain, &gz] {
                let (got, stats) = read(path, threads, chunk);
                let what = format!("{name}: {} threads={threads} chunk={chunk}", path.display());
                assert_eq!(named(got), named(want.clone()), "{what}");
                assert_eq!(stats.lines, want_stats.lines, "{what}");
                assert_eq!(stats.by_pair, want_stats.by_pair, "{what}");
                assert_eq!(stats.bytes, text.len() as u64, "{what}");
            }
        }
    }
}

#[test]
fn cri_split_lines_survive_every_chunking() {
    let (text, errors) = cri_log(3000);
    check_everywhere("cri", &text, errors);
}

#[test]
fn docker_split_lines_survive_every_chunking() {
    let (text, errors) = docker_log(3000);
    check_everywhere("docker", &text, errors);
}

#[test]
fn mixed_envelopes_survive_every_chunking() {
    let (text, errors) = mixed_log(4000);
    check_everywhere("mixed", &text, errors);
}

#[test]
fn docker_parts_are_joined_with_the_first_parts_time() {
    let text = concat!(
        r#"{"log":"2023/05/05 17:33:07 http: proxy error: read tcp 10.1.1.5:51392-","stream":"stderr","time":"2023-05-05T09:33:07.100000000Z"}"#,
        "\n",
        r#"{"log":"GET /healthz 200\n","stream":"stdout","time":"2023-05-05T09:33:07.150000000Z"}"#,
        "\n",
        r#"{"log":">10.2.2.9:80: read: connection reset by peer\n","stream":"stderr","time":"2023-05-05T09:33:07.200000000Z"}"#,
        "\n",
    );
    let mut r = LogReader::from_reader(
        "docker.log",
        Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        cfg(),
    );
    let recs: Vec<ProxyError> = r.by_ref().collect();
    assert_eq!(recs.len(), 1, "{:?}", r.stats());
    assert_eq!(recs[0].local.as_deref(), Some("10.1.1.5:51392"));
    assert_eq!(recs[0].remote.as_deref(), Some("10.2.2.9:80"));
    assert_eq!(ts(&recs[0]), "2023-05-05T09:33:07.100000000Z");
    assert_eq!(
        recs[0].source,
        Source::File {
            file: "docker.log".into(),
            line: 1
        }
    );
    assert_eq!(r.stats().lines, 3);
}

mod arbitrary {
    //! Random mixes of container parts, whole lines, garbage and non-UTF-8
    //! bytes: whatever they are, every chunking reads them alike.
    use super::*;
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        let stamp = (0u64..5000).prop_map(cri_stamp);
        let stream = prop_oneof![Just("stdout"), Just("stderr")];
        let text = prop_oneof![
            (0u64..100).prop_map(go_error),
            (0u64..100).prop_map(go_noise),
            "[ -~]{0,60}",
            Just("http: proxy error: EOF".to_owned()),
        ];
        prop_oneof![
            (
                stamp.clone(),
                stream.clone(),
                prop_oneof![Just("P"), Just("F")],
                text.clone()
            )
                .prop_map(|(t, s, tag, x)| format!("{t} {s} {tag} {x}\n").into_bytes()),
            (stream, text.clone(), any::<bool>(), 0u64..100).prop_map(|(s, x, whole, i)| {
                docker_line(&if whole { format!("{x}\n") } else { x }, s, i).into_bytes()
            }),
            text.prop_map(|x| format!("May 05 17:33:07 gw1 proxy[812]: {x}\n").into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(|mut b| {
                b.retain(|&c| c != b'\n');
                b.push(b'\n');
                b
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn any_chunking_reads_the_same(
            pieces in proptest::collection::vec(piece(), 1..400),
            chunk in 4096usize..20_000,
            threads in 1usize..4,
            cut_last_newline in any::<bool>(),
        ) {
            let mut text: Vec<u8> = pieces.concat();
            if cut_last_newline {
                text.pop();
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("any.log");
            std::fs::write(&path, &text).unwrap();
            let (want, want_stats) = read(&path, 1, 8 << 20);
            let (got, stats) = read(&path, threads, chunk);
            prop_assert_eq!(got, want);
            prop_assert_eq!(stats, want_stats);
            let mut r = LogReader::from_reader_with(
                &path.display().to_string(),
                Box::new(std::io::Cursor::new(text.clone())),
                cfg(),
                ReadOptions { threads, chunk_bytes: chunk },
            );
            let streamed: Vec<ProxyError> = r.by_ref().collect();
            let (mapped, _) = read(&path, 1, 8 << 20);
            // A stream's year-less stamps use cfg's reference, a file's its
            // mtime: compare what does not depend on that.
            prop_assert_eq!(streamed.len(), mapped.len());
            let unterminated = text.last().is_some_and(|&c| c != b'\n');
            let newlines = text.iter().filter(|&&c| c == b'\n').count() as u64;
            prop_assert_eq!(r.stats().lines, newlines + u64::from(unterminated));
        }
    }
}
