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
    // What correlation does with the loss (NodeInput.losses: "captures
    // incomplete" for errors inside it) is correlation's own test; that the
    // node's coverage no longer spans it is `capture index`'s below.
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
    o.expect_code(2);
    assert!(o.stderr.contains("bad-magic.pcap"), "{}", o.stderr);
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
    o.expect_code(2);
    assert!(
        o.stderr.contains("proxy") && o.stderr.contains("ermission denied"),
        "{}",
        o.stderr
    );
}
