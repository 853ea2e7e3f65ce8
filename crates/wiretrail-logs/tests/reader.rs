//! Streaming reader: compression, directories, CRI joining, counting.

mod common;
use common::*;
use std::io::Write;
use std::path::PathBuf;
use wiretrail_logs::{ErrorClass, LogReader, ProxyError, ReadProblemKind, Source};

const L1: &str = "May 05 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: read tcp 10.1.1.5:51392->10.2.2.9:8080: read: connection reset by peer\n";
const L2: &str = "May 05 17:33:08 gw1 proxy[812]: 2023/05/05 17:33:08 http: proxy error: dial tcp 10.2.2.9:8080: connect: connection refused\n";
const NOISE: &str =
    "May 05 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 GET /api/v1/items 200 1.2ms\n";

fn read_all(r: &mut LogReader) -> Vec<ProxyError> {
    r.by_ref().collect()
}

fn line_of(e: &ProxyError) -> u64 {
    match e.source {
        Source::File { line, .. } | Source::Stdin { line } => line,
        Source::Elasticsearch { .. } => 0,
    }
}

#[test]
fn plain_gz_zst_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{NOISE}{L1}{NOISE}{L2}");
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("a.log"), &text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    // Named .log on purpose: detection is by magic bytes, not the name.
    std::fs::write(dir.path().join("b/c.log"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("b/d.zst"),
        zstd::encode_all(text.as_bytes(), 1).unwrap(),
    )
    .unwrap();

    let mut r = LogReader::open(&[dir.path().to_path_buf()], cfg()).unwrap();
    let recs = read_all(&mut r);
    let s = r.stats();
    assert_eq!(s.files, 3);
    assert_eq!(s.lines, 12);
    assert_eq!(s.proxy_errors, 6);
    assert_eq!(s.bytes, 3 * text.len() as u64);
    let files: Vec<String> = recs
        .iter()
        .map(|e| match &e.source {
            Source::File { file, .. } => file.rsplit('/').next().unwrap().to_owned(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        files,
        ["a.log", "a.log", "c.log", "c.log", "d.zst", "d.zst"]
    );
    assert_eq!(
        recs.iter().map(line_of).collect::<Vec<_>>(),
        [2, 4, 2, 4, 2, 4]
    );
    assert_eq!(s.by_class[&ErrorClass::Refused], 3);
    assert_eq!(s.by_pair[&("-".to_owned(), "10.2.2.9:8080".to_owned())], 3);
    assert_eq!(
        s.by_pair[&("10.1.1.5".to_owned(), "10.2.2.9:8080".to_owned())],
        3
    );
}

#[test]
fn missing_path_names_the_file() {
    let err = LogReader::open(&[PathBuf::from("/nonexistent/x.log")], cfg()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.log"), "{err}");
}

#[test]
fn many_buffers_line_numbers_and_no_final_newline() {
    // Several MiB so candidates and line counts cross buffer boundaries.
    let mut text = String::new();
    let mut expect = Vec::new();
    let mut n = 0u64;
    while text.len() < 5 << 20 {
        n += 1;
        if n.is_multiple_of(977) {
            text.push_str(L1);
            expect.push(n);
        } else {
            text.push_str(NOISE);
        }
    }
    n += 1;
    text.push_str(L2.trim_end());
    expect.push(n);
    let mut r = LogReader::from_reader(
        "mem",
        Box::new(std::io::Cursor::new(text.into_bytes())),
        cfg(),
    );
    let recs = read_all(&mut r);
    assert_eq!(recs.iter().map(line_of).collect::<Vec<_>>(), expect);
    assert_eq!(r.stats().lines, n);
}

#[test]
fn cri_partial_lines_are_joined_per_stream() {
    let text = "\
2023-05-05T09:33:07.100000000Z stderr P 2023/05/05 17:33:07 http: proxy error: read tcp 10.1.1.5:5
2023-05-05T09:33:07.100000001Z stdout F unrelated stdout line between the parts
2023-05-05T09:33:07.100000002Z stderr P 1392->10.2.2.9:8080: 
2023-05-05T09:33:07.100000003Z stderr F read: connection reset by peer
2023-05-05T09:33:08.000000000Z stdout F 2023/05/05 17:33:08 http: proxy error: EOF
";
    let mut r = LogReader::from_reader(
        "cri",
        Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        cfg(),
    );
    let recs = read_all(&mut r);
    assert_eq!(recs.len(), 2, "{:?}", r.stats());
    assert_eq!(recs[0].class, ErrorClass::Reset);
    assert_eq!(
        recs[0].message,
        "read tcp 10.1.1.5:51392->10.2.2.9:8080: read: connection reset by peer"
    );
    assert_eq!(
        ts(&recs[0]),
        "2023-05-05T09:33:07.100000000Z",
        "the first part's stamp"
    );
    assert_eq!(line_of(&recs[0]), 1);
    assert_eq!(recs[1].class, ErrorClass::Eof);
    assert_eq!(r.stats().lines, 5);
}

#[test]
fn cri_partial_at_end_of_input_is_parsed() {
    let text = "2023-05-05T09:33:07Z stderr P 2023/05/05 17:33:07 http: proxy error: EOF";
    let mut r = LogReader::from_reader(
        "cri",
        Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        cfg(),
    );
    assert_eq!(read_all(&mut r).len(), 1);
}

#[test]
fn malformed_lines_are_counted_with_samples_and_bad_bytes_do_not_stop() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\xff\xfe garbage \x00\x01 bytes\n");
    bytes.extend_from_slice(b"http: proxy error: EOF\n"); // no stamp
    bytes.extend_from_slice(L1.as_bytes());
    bytes.extend_from_slice(b"{\"log\":\"http: proxy error: \xff\n");
    bytes.extend_from_slice(L2.as_bytes());
    let mut r = LogReader::from_reader("bad.log", Box::new(std::io::Cursor::new(bytes)), cfg());
    let recs = read_all(&mut r);
    assert_eq!(recs.len(), 2);
    let s = r.stats();
    assert_eq!(s.unparsed, 2);
    assert_eq!(s.lines, 5);
    assert!(
        problems(s, ReadProblemKind::Unparsed)[0].starts_with("bad.log:2: no timestamp"),
        "{:?}",
        problems(s, ReadProblemKind::Unparsed)
    );
    assert!(
        problems(s, ReadProblemKind::Unparsed)[1].starts_with("bad.log:4: bad JSON"),
        "{:?}",
        problems(s, ReadProblemKind::Unparsed)
    );
}

#[test]
fn journald_json_message_hidden_as_bytes_is_found() {
    let msg = "2023/05/05 17:33:07 http: proxy error: EOF";
    let arr: Vec<String> = msg.bytes().map(|b| b.to_string()).collect();
    let text = format!(
        "{{\"__REALTIME_TIMESTAMP\":\"1683279187000001\",\"MESSAGE\":[{}]}}\n",
        arr.join(",")
    );
    let mut r = LogReader::from_reader(
        "j",
        Box::new(std::io::Cursor::new(text.into_bytes())),
        cfg(),
    );
    let recs = read_all(&mut r);
    assert_eq!(recs.len(), 1);
    assert_eq!(ts(&recs[0]), "2023-05-05T09:33:07.000001Z");
}

#[test]
fn overlong_line_is_skipped_counted_and_sampled() {
    let mut text = Vec::new();
    text.extend_from_slice(L1.as_bytes());
    text.extend(std::iter::repeat_n(
        b'x',
        wiretrail_logs::reader::MAX_LINE + (3 << 20),
    ));
    text.push(b'\n');
    text.extend_from_slice(L2.as_bytes());
    let mut r = LogReader::from_reader("long", Box::new(std::io::Cursor::new(text)), cfg());
    let recs = read_all(&mut r);
    assert_eq!(recs.iter().map(line_of).collect::<Vec<_>>(), [1, 3]);
    let s = r.stats();
    assert_eq!((s.lines, s.unparsed), (3, 1));
    assert!(
        problems(s, ReadProblemKind::Unparsed)[0].starts_with("long:2: line longer than"),
        "{:?}",
        problems(s, ReadProblemKind::Unparsed)
    );
}

#[test]
fn a_mapped_file_skips_overlong_lines_and_reads_long_ones() {
    // Longer than a chunk (8 MiB) but within MAX_LINE: read, phrase and all;
    // longer than MAX_LINE: skipped, counted, sampled, like a stream does.
    let long_error = format!(
        "{}{}",
        L1.trim_end(),
        " x".repeat(5 << 20) // the Go error text runs on: still one record
    );
    let mut text = Vec::new();
    text.extend_from_slice(L1.as_bytes());
    text.extend_from_slice(long_error.as_bytes());
    text.push(b'\n');
    text.extend(std::iter::repeat_n(
        b'x',
        wiretrail_logs::reader::MAX_LINE + (3 << 20),
    ));
    text.push(b'\n');
    text.extend_from_slice(L2.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.log");
    std::fs::write(&path, &text).unwrap();
    let mut r = LogReader::open(std::slice::from_ref(&path), cfg()).unwrap();
    let recs = read_all(&mut r);
    assert_eq!(recs.iter().map(line_of).collect::<Vec<_>>(), [1, 2, 4]);
    let s = r.stats();
    assert_eq!((s.lines, s.unparsed, s.bytes), (4, 1, text.len() as u64));
    assert!(
        problems(s, ReadProblemKind::Unparsed)[0]
            .ends_with("long.log:3: line longer than 16777216 bytes, skipped"),
        "{:?}",
        problems(s, ReadProblemKind::Unparsed)
    );
}

#[test]
fn mapped_windows_and_streams_agree() {
    // Over one 32 MiB map window, so lines straddle a window boundary.
    let mut text = String::with_capacity(40 << 20);
    let mut n = 0u64;
    while text.len() < 40 << 20 {
        n += 1;
        text.push_str(if n.is_multiple_of(501) { L1 } else { NOISE });
    }
    text.push_str("2023-05-05T09:33:07Z stderr F 2023/05/05 17:33:07 http: proxy error: EOF");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    std::fs::write(&path, &text).unwrap();
    let mut mapped = LogReader::open(std::slice::from_ref(&path), cfg()).unwrap();
    let a = read_all(&mut mapped);
    let mut streamed = LogReader::from_reader(
        &path.display().to_string(),
        Box::new(std::io::Cursor::new(text.into_bytes())),
        cfg(),
    );
    let b = read_all(&mut streamed);
    assert_eq!(a.len() as u64, n / 501 + 1);
    assert_eq!(a, b);
    // The file was just written and ends without a newline: the mapped
    // reader says the last line may be unfinished; a stream cannot know.
    let mut ms = mapped.stats().clone();
    assert_eq!(
        problems(&ms, ReadProblemKind::Growing).len(),
        1,
        "{:?}",
        ms.problems
    );
    ms.problems.retain(|p| p.kind != ReadProblemKind::Growing);
    assert_eq!(&ms, streamed.stats());
    assert_eq!(mapped.stats().lines, n + 1);
}

#[test]
fn reader_is_send() {
    fn send<T: Send>(_: &T) {}
    send(&LogReader::stdin(cfg()));
}

#[test]
fn a_file_growing_while_read_leaves_its_unfinished_line_and_says_so() {
    use wiretrail_logs::reader::ReadOptions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.log");
    // 2000 whole lines, then a writer caught in the middle of one.
    let (head, tail) = L1.split_at(L1.find("->10.2").unwrap() + 6);
    let mut text = String::new();
    for _ in 0..1000 {
        text.push_str(NOISE);
        text.push_str(L1);
    }
    text.push_str(head);
    std::fs::write(&path, &text).unwrap();
    // Small chunks and one worker: the reader is still early in the file
    // (at most a few chunks in flight) when the writer finishes its line.
    let opts = ReadOptions {
        threads: 1,
        chunk_bytes: 4096,
    };
    let mut r = LogReader::open_with(std::slice::from_ref(&path), cfg(), opts).unwrap();
    let first = r.next().expect("the file was opened and read from");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(tail.as_bytes()).unwrap();
    f.write_all(L2.as_bytes()).unwrap();
    drop(f);
    let mut recs = vec![first];
    recs.extend(r.by_ref());
    assert_eq!(recs.len(), 1000, "only the lines whole when opened");
    for e in &recs {
        assert_eq!(
            e.remote.as_deref(),
            Some("10.2.2.9:8080"),
            "a cut line: {e:?}"
        );
    }
    let s = r.stats();
    assert_eq!(s.lines, 2000);
    assert!(!s.failed(), "{:?}", s.problems);
    assert_eq!(
        problems(s, ReadProblemKind::Growing).len(),
        1,
        "{:?}",
        problems(s, ReadProblemKind::Growing)
    );
    assert!(
        problems(s, ReadProblemKind::Growing)[0].contains("live.log: still being written")
            && problems(s, ReadProblemKind::Growing)[0].contains("unfinished last line"),
        "{:?}",
        problems(s, ReadProblemKind::Growing)
    );
}

#[test]
fn a_fresh_file_ending_without_newline_is_read_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.log");
    std::fs::write(&path, format!("{NOISE}{}", L1.trim_end())).unwrap();
    let mut r = LogReader::open(std::slice::from_ref(&path), cfg()).unwrap();
    let recs = read_all(&mut r);
    assert_eq!(recs.len(), 1);
    let s = r.stats();
    assert_eq!(s.lines, 2);
    assert!(
        problems(s, ReadProblemKind::Growing).len() == 1
            && problems(s, ReadProblemKind::Growing)[0]
                .contains("fresh.log: the last line has no newline"),
        "{:?}",
        problems(s, ReadProblemKind::Growing)
    );
}
