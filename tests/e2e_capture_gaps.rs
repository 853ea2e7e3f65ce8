//! Lost and unusable captures, end to end (issue 14, D1 and D2): the
//! binary names every rotation it could not read, with its time span and
//! reason, in the JSON problems and on stderr; the node stops covering that
//! time; a node with nothing readable is an error unless others cover the
//! window.
//!
//! Permission tests need open() to fail: as root they run the binary as
//! `nobody` through `setpriv` (root reads any file).

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The proxy's demo rotations (tcpdump -G every 15 s), the middle one's span
/// bounded by its neighbours': the end of the first, the start of the last.
const MIDDLE: &str = "proxy-20261125T003404.pcap";
const LOST_FROM: &str = "2026-11-25T00:34:03.221673";
const LOST_UNTIL: &str = "2026-11-25T00:34:18.526787";

fn is_root() -> bool {
    // SAFETY-free: the effective uid of this process, as /proc tells it.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A directory everyone may read (and, for caches, write).
fn open_dir(mode: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    d
}

/// `wiretrail ARGS` as an unprivileged user: `nobody` through setpriv when
/// we are root, ourselves otherwise. `None` (outside CI) when that cannot
/// be arranged.
fn unprivileged(args: &[String], cache: &Path) -> Option<Out> {
    let mut c = if is_root() {
        if !require_tool("setpriv", "reading as an unprivileged user") {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("WIRETRAIL_REQUIRE_ALL").is_ok_and(|v| v == "1");
            assert!(!ci, "setpriv (util-linux) is required in CI");
            return None;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(bin());
        c
    } else {
        Command::new(bin())
    };
    c.args(args)
        .current_dir("/")
        .env("XDG_CACHE_HOME", cache)
        .env("NO_COLOR", "1")
        .env_remove("WIRETRAIL_LOG");
    Some(run(c))
}

/// A copy of the demo's proxy captures, everyone may read, with `MIDDLE`
/// readable by nobody.
fn proxy_copy_with_unreadable_middle() -> (tempfile::TempDir, PathBuf) {
    let tmp = open_dir(0o755);
    let dir = tmp.path().join("proxy");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir(dataset_dir("demo").join("captures/proxy")).unwrap() {
        let p = e.unwrap().path();
        let to = dir.join(p.file_name().unwrap());
        std::fs::copy(&p, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(dir.join(MIDDLE), std::fs::Permissions::from_mode(0o000)).unwrap();
    (tmp, dir)
}

/// The demo's investigate flags with the proxy node's captures at `proxy`.
fn demo_flags_with_proxy(proxy: &Path) -> Vec<String> {
    let mut a = dataset_flags("demo");
    for w in a.iter_mut() {
        if w.starts_with("proxy=") {
            *w = format!("proxy={},role=proxy", proxy.display());
        }
    }
    a
}

fn problems(report: &Value) -> Vec<Value> {
    report["inputs"]["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn an_unreadable_rotation_is_a_named_capture_gap_and_not_covered() {
    let (_tmp, proxy) = proxy_copy_with_unreadable_middle();
    let cache = open_dir(0o777);
    let mut args = vec!["investigate".to_string()];
    args.extend(demo_flags_with_proxy(&proxy));
    args.extend(["--format".into(), "json".into(), "--no-progress".into()]);
    let Some(o) = unprivileged(&args, cache.path()) else {
        return;
    };
    assert!(
        matches!(o.code, Some(0 | 1)),
        "the other rotations still make a run: {:?}\n{}",
        o.code,
        o.stderr
    );
    let report: Value = serde_json::from_str(&o.stdout).expect("a JSON report");
    let probs = problems(&report);
    // The typed problem: kind, node, file, time span lost, reason.
    let gap = probs
        .iter()
        .find(|p| {
            p["kind"] == "capture_gap"
                && p["source"]["type"] == "capture"
                && p["source"]["node"] == "proxy"
                && p["source"]["path"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(MIDDLE))
        })
        .unwrap_or_else(|| panic!("no capture_gap for {MIDDLE} in {probs:#?}"));
    let span = &gap["span"];
    assert!(
        span["since"].as_str().unwrap().starts_with(LOST_FROM)
            && span["until"].as_str().unwrap().starts_with(LOST_UNTIL),
        "the lost span is bounded by the neighbouring rotations: {span}"
    );
    assert!(
        gap["message"].as_str().unwrap().contains("unreadable")
            && gap["message"]
                .as_str()
                .unwrap()
                .contains("ermission denied"),
        "{gap}"
    );
    // The same file named as an unusable source, with the reason.
    assert!(
        probs.iter().any(|p| p["kind"] == "unusable_source"
            && p["source"]["path"]
                .as_str()
                .is_some_and(|s| s.ends_with(MIDDLE))),
        "{probs:#?}"
    );
    // Said on stderr, whatever the output format.
    assert!(
        o.stderr
            .lines()
            .any(|l| l.contains(MIDDLE) && l.contains("unreadable")),
        "stderr:\n{}",
        o.stderr
    );
    // Correlation gets the loss (NodeInput.losses): an error logged inside
    // the lost span is not explained from the rotations that are left.
    let lost = |t: &str| ("2026-11-25T00:34:04".."2026-11-25T00:34:18").contains(&t);
    let mut inside = 0;
    for inc in report["incidents"].as_array().unwrap() {
        for e in inc["errors"].as_array().unwrap() {
            if !e["timestamp"].as_str().is_some_and(lost) {
                continue;
            }
            inside += 1;
            let d = &e["diagnosis"];
            assert_eq!(d["cause"], "unknown", "{}: {d}", e["timestamp"]);
            assert!(
                d["proofs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["proof"] == "capture_incomplete"
                        && p["note"].as_str().is_some_and(|n| n.contains(MIDDLE))),
                "{}: {d}",
                e["timestamp"]
            );
        }
    }
    assert!(inside >= 3, "the demo logs errors inside the lost span");
    // That the node's coverage no longer spans it: `capture index` below.
}

#[test]
fn capture_index_and_extract_name_the_unreadable_rotation() {
    let (_tmp, proxy) = proxy_copy_with_unreadable_middle();
    let cache = open_dir(0o777);
    let args = vec![
        "capture".to_string(),
        "index".into(),
        format!("proxy={}", proxy.display()),
        "--tz".into(),
        "UTC".into(),
    ];
    let Some(o) = unprivileged(&args, cache.path()) else {
        return;
    };
    o.expect_code(0);
    assert!(
        o.stdout.contains(MIDDLE) && o.stdout.contains("LOST:") && o.stdout.contains("unreadable"),
        "{}",
        o.stdout
    );
    // Two covered spans: the lost one is not among them.
    assert_eq!(o.stdout.matches("  covered: ").count(), 2, "{}", o.stdout);
    assert!(o.stderr.contains(MIDDLE), "{}", o.stderr);
}

#[test]
fn a_missing_capture_directory_is_named_and_alone_it_is_an_error() {
    // Beside readable nodes: a loud problem naming node, path and reason.
    let mut args = vec!["investigate".to_string()];
    args.extend(dataset_flags("demo"));
    args.extend([
        "--node".into(),
        "b9=/srv/typo-dir,role=backend".into(),
        "--format".into(),
        "json".into(),
    ]);
    let o = run(wt(&args));
    assert!(matches!(o.code, Some(0 | 1)), "{:?}\n{}", o.code, o.stderr);
    let report: Value = serde_json::from_str(&o.stdout).unwrap();
    let probs = problems(&report);
    let p = probs
        .iter()
        .find(|p| p["kind"] == "unusable_source" && p["source"]["node"] == "b9")
        .unwrap_or_else(|| panic!("{probs:#?}"));
    assert_eq!(p["source"]["path"], "/srv/typo-dir");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("no such file or directory"),
        "{p}"
    );
    assert!(o.stderr.contains("/srv/typo-dir"), "{}", o.stderr);

    // Alone: nothing covers the window, the run fails and says why.
    let (since, until) = recording_window("demo");
    let o = run(wt([
        "investigate",
        "--logs",
        dataset_dir("demo").join("logs/proxy.log").to_str().unwrap(),
        "--tz",
        "UTC",
        "--node",
        "b9=/srv/typo-dir",
        "--since",
        &since,
        "--until",
        &until,
    ]));
    o.expect_code(2);
    assert!(
        o.stderr.contains("b9")
            && o.stderr.contains("/srv/typo-dir")
            && o.stderr.contains("no such file or directory"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_node_whose_only_file_has_a_bad_header_is_an_error_naming_it() {
    let bad = root().join("../shared/corpus/bad/bad-magic.pcap");
    assert!(bad.is_file(), "corpus at {}", bad.display());
    let (since, until) = recording_window("demo");
    let o = run(wt([
        "investigate",
        "--logs",
        dataset_dir("demo").join("logs/proxy.log").to_str().unwrap(),
        "--tz",
        "UTC",
        "--node",
        &format!("b1={}", bad.display()),
        "--since",
        &since,
        "--until",
        &until,
    ]));
    o.expect_code(2);
    assert!(
        o.stderr.contains("b1")
            && o.stderr.contains("bad-magic.pcap")
            && o.stderr.contains("magic"),
        "{}",
        o.stderr
    );
    // The same through `capture extract`.
    let out = tempfile::tempdir().unwrap();
    let o = run(wt([
        "capture",
        "extract",
        "--node",
        &format!("b1={}", bad.display()),
        "--port",
        "80",
        "--since",
        "0",
        "--until",
        "2000000000",
        "-w",
        out.path().join("x.pcapng").to_str().unwrap(),
    ]));
    o.expect_refusal(&["bad-magic.pcap"]);
}

#[test]
fn a_node_with_only_unreadable_files_is_an_error_naming_them() {
    let (_tmp, proxy) = proxy_copy_with_unreadable_middle();
    for e in std::fs::read_dir(&proxy).unwrap() {
        std::fs::set_permissions(e.unwrap().path(), std::fs::Permissions::from_mode(0o000))
            .unwrap();
    }
    let cache = open_dir(0o777);
    let (since, until) = recording_window("demo");
    let log = dataset_dir("demo").join("logs/proxy.log");
    let args: Vec<String> = [
        "investigate",
        "--logs",
        log.to_str().unwrap(),
        "--tz",
        "UTC",
        "--node",
        &format!("proxy={}", proxy.display()),
        "--since",
        &since,
        "--until",
        &until,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Some(o) = unprivileged(&args, cache.path()) else {
        return;
    };
    o.expect_refusal(&["proxy", "ermission denied"]);
}

#[test]
fn watch_indexes_rotations_as_they_arrive_so_the_next_run_is_warm() {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let src = dataset_dir("demo").join("captures/backend-01");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let last = names.pop().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b1");
    std::fs::create_dir(&dir).unwrap();
    for n in &names {
        std::fs::copy(src.join(n), dir.join(n)).unwrap();
    }
    let cache = tmp.path().join("cache");
    let node = format!("b1={}", dir.display());
    let mut child = wt([
        "capture",
        "index",
        "--watch",
        "--every",
        "0.2",
        "--tz",
        "UTC",
        "--cache",
        cache.to_str().unwrap(),
        &node,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut wait_for = |what: &dyn Fn(&str) -> bool, why: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if what(&l) => return l,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("--watch never said: {why}");
                }
            }
        }
    };
    wait_for(&|l| l.starts_with("watching 4 files"), "the first round");
    // A rotation arrives: it is indexed within a round or two.
    std::fs::copy(src.join(&last), dir.join(&last)).unwrap();
    let l = wait_for(&|l| l.contains(&last), "the new rotation");
    assert!(l.contains("new") && l.contains("indexed"), "{l}");
    child.kill().unwrap();
    child.wait().unwrap();

    // The next run finds every file in the cache: nothing to read.
    let o = run(wt([
        "capture",
        "index",
        "--cache",
        cache.to_str().unwrap(),
        &node,
    ]));
    o.expect_code(0);
    assert!(
        o.stdout
            .starts_with("5 files: 5 from the cache, 0 indexed, 0 probed (0 B read)"),
        "{}",
        o.stdout
    );
}

/// `capture index --format json` of one node: (file names, coverage spans).
fn index_json(src: &str, cache: &Path) -> Value {
    let o = run(wt([
        "capture",
        "index",
        "--format",
        "json",
        "--cache",
        cache.to_str().unwrap(),
        &format!("n={src}"),
    ]));
    o.expect_code(0);
    serde_json::from_str(&o.stdout).unwrap()
}

#[test]
fn capture_globs_through_symlink_loops_list_each_file_once() {
    // D4: `**` under a directory holding `current -> .` (and a second name
    // for one rotation) must not walk the loop nor read a file twice.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b1");
    std::fs::create_dir(&dir).unwrap();
    let src = dataset_dir("demo").join("captures/backend-01");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        names.push(p.file_name().unwrap().to_string_lossy().into_owned());
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    names.sort();
    std::os::unix::fs::symlink(".", dir.join("current")).unwrap();
    std::os::unix::fs::symlink(&names[0], dir.join("latest.pcap")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let v = index_json(&format!("{}/**/*.pcap", dir.display()), cache.path());
    let files: Vec<String> = v["nodes"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(files.len(), names.len(), "each file once: {files:?}");
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(sorted, names, "under its real name");
    assert!(
        v["nodes"][0]["coverage"]["overlaps"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no file overlaps itself: {}",
        v["nodes"][0]["coverage"]
    );
}

#[test]
fn stale_temp_files_in_the_catalog_cache_are_removed_on_the_next_run() {
    // D11: a run killed while writing a cache entry leaves `*.tmp<pid>`.
    let cache = tempfile::tempdir().unwrap();
    let src = dataset_dir("demo").join("captures/backend-01");
    index_json(src.to_str().unwrap(), cache.path());
    // The catalog's directory inside the cache, whatever its version.
    let cdir = walk(cache.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("a cache entry");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let make = |name: &str, when| {
        let p = cdir.join(name);
        std::fs::write(&p, b"{\"version\":").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
        p
    };
    let stale = make("0123456789abcdef-backend-01.pcap.tmp31337", old);
    let stale2 = make("0123456789abcdef-backend-01.pcap.json.tmp31338", old);
    let fresh = make(
        "0123456789abcdef-backend-02.pcap.json.tmp31339",
        std::time::SystemTime::now(),
    );
    let foreign = make("keep-me.tmp1", old);
    index_json(src.to_str().unwrap(), cache.path());
    assert!(
        !stale.exists() && !stale2.exists(),
        "stale temp files removed"
    );
    assert!(fresh.exists() && foreign.exists(), "only old files of ours");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A pcap (snaplen 512 KiB) holding one BIG TCP segment of `payload` bytes
/// from 10.0.0.1:40000 to 10.0.0.2:80 (IPv4 total length 0, as Linux
/// writes BIG TCP), stamped at 1700000000.
fn big_tcp_pcap(payload: usize) -> Vec<u8> {
    let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend([
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    frame.extend([
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    frame.extend(std::iter::repeat_n(b'x', payload));
    let mut f = Vec::new();
    f.extend(0xa1b2c3d4u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend([0; 8]);
    f.extend((512u32 << 10).to_le_bytes());
    f.extend(1u32.to_le_bytes());
    f.extend(1_700_000_000u32.to_le_bytes());
    f.extend(0u32.to_le_bytes());
    f.extend((frame.len() as u32).to_le_bytes());
    f.extend((frame.len() as u32).to_le_bytes());
    f.extend(frame);
    f
}

#[test]
fn an_extracted_record_longer_than_the_snaplen_is_cut_so_wireshark_reads_the_slice() {
    // D13: one 300 KB record in the slice made Wireshark refuse the file.
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("big.pcap");
    std::fs::write(&cap, big_tcp_pcap(300_000)).unwrap();
    let out = tmp.path().join("slice.pcapng");
    let o = run(wt([
        "capture",
        "extract",
        "--node",
        &format!("b1={}", cap.display()),
        "--port",
        "40000",
        "--since",
        "1699999999",
        "--until",
        "1700000001",
        "-w",
        out.to_str().unwrap(),
    ]));
    o.expect_code(0);
    assert!(o.stderr.contains("cut"), "said on stderr: {}", o.stderr);
    if require_tool("tshark", "that Wireshark reads the slice") {
        let t = Command::new("tshark")
            .arg("-r")
            .arg(&out)
            .args(["-T", "fields", "-e", "frame.cap_len", "-e", "frame.len"])
            .output()
            .unwrap();
        assert!(
            t.status.success(),
            "tshark refused the slice: {}",
            String::from_utf8_lossy(&t.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&t.stdout).trim(),
            "262144\t300054",
            "cut to the snaplen, original length kept"
        );
    }
}

#[test]
fn a_tcp_header_cut_by_the_snaplen_is_counted_and_reported() {
    // D17: the corpus file whose snaplen (46) cuts the TCP header after 12
    // bytes; its flow was silently dropped.
    let bad = root().join("../shared/corpus/bad/tcpdump-tcp-header-heapoverflow.pcap");
    assert!(bad.is_file(), "corpus at {}", bad.display());
    let tmp = tempfile::tempdir().unwrap();
    let o = run(wt([
        "capture",
        "extract",
        "--node",
        &format!("b1={}", bad.display()),
        "--port",
        "12336",
        "--since",
        "0",
        "--until",
        "4000000000",
        "--format",
        "json",
        "-w",
        tmp.path().join("x.pcapng").to_str().unwrap(),
    ]));
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    let skipped = &v["nodes"][0]["stats"]["skipped"];
    assert_eq!(
        skipped["truncated before the TCP header"], 1,
        "counted: {skipped}"
    );
    assert!(
        v["problems"]
            .to_string()
            .contains("snaplen cut the TCP header"),
        "reported: {}",
        v["problems"]
    );
}
