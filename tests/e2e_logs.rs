//! `wiretrail logs`: proxy error records as JSON lines, a summary on stderr,
//! bad lines counted (never fatal), and exit 1 when there is nothing.

mod common;

use common::*;
use serde_json::Value;

fn demo_log() -> std::path::PathBuf {
    dataset_dir("demo").join("logs/proxy.log")
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

const RECORD_KEYS: [&str; 13] = [
    "timestamp",
    "local",
    "remote",
    "op",
    "class",
    "host",
    "process",
    "pid",
    "syscall",
    "message",
    "source",
    "time_precision",
    "time_zone_assumed",
];

#[test]
fn demo_log_gives_one_json_line_per_proxy_error() {
    let log = demo_log();
    let o = run(wt([
        "logs",
        "--tz",
        "UTC",
        "--format",
        "json",
        log.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let recs = json_lines(&o.stdout);
    let t = truth("demo");
    let by_line = truth_by_line(&t);
    assert_eq!(recs.len(), by_line.len(), "one record per proxy error line");
    for r in &recs {
        has_keys(r, &RECORD_KEYS, "logs record");
        let line = r["source"]["line"].as_u64().expect("source.line");
        let te = by_line
            .get(&line)
            .unwrap_or_else(|| panic!("line {line} is not a proxy error"));
        assert_eq!(s(r, "message"), s(te, "message"));
        assert_eq!(rfc3339(r, "timestamp"), rfc3339(te, "log_time"));
        assert_eq!(s(r, "host"), "proxyhost");
        assert_eq!(s(r, "process"), "proxy");
        assert_eq!(s(r, "remote"), "198.18.10.10:80");
        let port = te["proxy_local_port"].as_u64().unwrap();
        assert_eq!(s(r, "local"), format!("198.18.0.2:{port}"));
        assert_eq!(s(r, "time_precision"), "second");
    }
    // The stderr summary: lines read, errors, classes.
    let lines_in_file = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        o.stderr
            .contains(&format!("{lines_in_file} lines in 1 input(s)")),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("8 proxy errors"), "{}", o.stderr);
    assert!(
        o.stderr.contains("unparsed proxy error lines: 0"),
        "{}",
        o.stderr
    );
}

#[test]
fn stdin_gives_the_same_records() {
    let log = std::fs::read(demo_log()).unwrap();
    let o = run_with_stdin(
        wt(["logs", "--tz", "UTC", "--format", "json", "-"]),
        Some(&log),
    );
    o.expect_code(0);
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 8);
    assert_eq!(recs[0]["source"]["line"], 2);
}

#[test]
fn garbage_and_non_utf8_lines_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.log");
    let mut data = std::fs::read(demo_log()).unwrap();
    let demo_lines = data.iter().filter(|&&b| b == b'\n').count();
    // 1: plain garbage; 2: binary; 3: a proxy error marker on an unreadable
    // line; 4: a good error line whose tail is not UTF-8 (Latin-1 é).
    data.extend_from_slice(b"}}} this is not a log line {{{\n");
    data.extend_from_slice(b"\x00\x01\x02\xff\xfe\xfd\xfc\n");
    data.extend_from_slice(b"\xff\xfe http: proxy error: \xc3\x28 tcp garbage\n");
    data.extend_from_slice(
        b"Nov 25 00:34:40 proxyhost proxy[7583]: 2026/11/25 00:34:40 http: proxy error: read tcp 198.18.0.2:50300->198.18.10.10:80: read: connection reset by peer caf\xe9\n",
    );
    std::fs::write(&path, &data).unwrap();
    let o = run(wt([
        "logs",
        "--tz",
        "UTC",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let recs = json_lines(&o.stdout);
    assert_eq!(recs.len(), 9, "the 8 demo errors and the non-UTF-8 one");
    let last = recs.last().unwrap();
    assert_eq!(s(last, "local"), "198.18.0.2:50300");
    assert_eq!(last["source"]["line"].as_u64(), Some(demo_lines as u64 + 4));
    assert!(
        o.stderr
            .contains(&format!("{} lines in 1 input(s)", demo_lines + 4)),
        "every line is counted: {}",
        o.stderr
    );
    assert!(o.stderr.contains("9 proxy errors"), "{}", o.stderr);
    assert!(
        o.stderr.contains("unparsed proxy error lines: 1"),
        "the unreadable error line is counted: {}",
        o.stderr
    );
    // ... and named, by file and line.
    assert!(
        o.stderr
            .contains(&format!("{}:{}", path.display(), demo_lines + 3)),
        "{}",
        o.stderr
    );
}

#[test]
fn a_log_without_proxy_errors_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.log");
    // The demo log's other lines: start, stats, stop.
    let quiet: String = std::fs::read_to_string(demo_log())
        .unwrap()
        .lines()
        .filter(|l| !l.contains("http: proxy error"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(quiet.lines().count() >= 5);
    std::fs::write(&path, &quiet).unwrap();
    let o = run(wt([
        "logs",
        "--tz",
        "UTC",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]));
    o.expect_code(1);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(o.stderr.contains("0 proxy errors"), "{}", o.stderr);

    // A missing file is a failure, not "nothing found".
    let o = run(wt(["logs", "--tz", "UTC", "/nonexistent/proxy.log"]));
    o.expect_refusal(&["/nonexistent/proxy.log"]);
}

#[test]
fn a_live_stream_shows_each_error_before_stdin_ends() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;
    let log = std::fs::read_to_string(demo_log()).unwrap();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("proxy error")).collect();
    let mut child = wt(["logs", "--tz", "UTC", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Like `journalctl -f`: one line, then nothing until it was answered.
    for (i, l) in errors.iter().take(3).enumerate() {
        writeln!(stdin, "{l}").unwrap();
        stdin.flush().unwrap();
        let rec = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("record {i} not printed while stdin is still open"));
        let v: Value = serde_json::from_str(&rec).unwrap();
        assert_eq!(v["source"]["line"], i as u64 + 1);
    }
    drop(stdin);
    wait_limited(&mut child, Duration::from_secs(60), "wiretrail logs -");
}

/// Issue 14 D5: terminal control characters from the host, the process,
/// the message and the file name (ESC/OSC/BEL/backspace/NUL, C1 CSI, bidi)
/// reach neither stdout nor stderr: the text output neutralises them as the
/// investigate report does; JSON escapes them as JSON.
#[test]
fn text_output_never_passes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("evil\u{1b}[31m.log");
    let lines = [
        "May 05 17:33:07 gw\u{1b}]0;pwned\u{7}1 proxy\u{8}\u{8}[812]: 2023/05/05 17:33:07 http: proxy error: read tcp 10.1.1.5:5->10.2.2.9:80: read: connection reset by peer\u{1b}[2J\u{0}\u{9b}31m\u{202e}",
        "May 05 17:33:08 gw1 proxy[812]: \u{1b}[2J http: proxy error: {broken",
        "{\"MESSAGE\":\"http: proxy error: EOF \\u001b]8;;http://x\\u0007\",\"_HOSTNAME\":\"h\\u001bc\"}",
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let unsafe_chars = |s: &str| {
        s.chars()
            .filter(|&c| c != '\n' && wiretrail_logs::text::is_unsafe_char(c))
            .collect::<Vec<_>>()
    };
    let o = run(wt([
        "logs",
        "--tz",
        "UTC",
        "--year",
        "2023",
        "--format",
        "text",
        log.to_str().unwrap(),
    ]));
    o.expect_code(0);
    assert_eq!(o.stdout.lines().count(), 2, "{}", o.stdout);
    assert!(unsafe_chars(&o.stdout).is_empty(), "stdout: {:?}", o.stdout);
    assert!(unsafe_chars(&o.stderr).is_empty(), "stderr: {:?}", o.stderr);
    assert!(
        o.stdout
            .contains("reset by peer\\x1b[2J\\x00\\x9b31m\\u{202e}"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("[gw\\x1b]0;pwned\\x071 proxy\\x08\\x08[812]]"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("evil\\x1b[31m.log:1"), "{}", o.stdout);
    let o = run(wt([
        "logs",
        "--tz",
        "UTC",
        "--year",
        "2023",
        "--format",
        "json",
        log.to_str().unwrap(),
    ]));
    o.expect_code(0);
    let recs = json_lines(&o.stdout);
    assert_eq!(
        recs[0]["host"], "gw\u{1b}]0;pwned\u{7}1",
        "JSON keeps the value, escaped"
    );
    assert!(!o.stdout.contains('\u{1b}') && !o.stdout.contains('\u{7}'));
}

/// Issue 14 D4: a `current -> .` link in a log directory made the demo's
/// errors be read again at every level of the loop.
#[cfg(unix)]
#[test]
fn a_symlink_loop_in_a_log_directory_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(demo_log(), logs.join("proxy.log")).unwrap();
    std::os::unix::fs::symlink(".", logs.join("current")).unwrap();
    std::os::unix::fs::symlink(".", logs.join("again")).unwrap();
    let direct = run(wt([
        "logs",
        "--format",
        "json",
        demo_log().to_str().unwrap(),
    ]));
    direct.expect_code(0);
    let o = run(wt(["logs", "--format", "json", logs.to_str().unwrap()]));
    o.expect_code(0);
    assert_eq!(o.stdout.lines().count(), direct.stdout.lines().count());
    assert!(
        o.stderr.contains("skipped:") && o.stderr.contains("current: a link back to"),
        "{}",
        o.stderr
    );
}
