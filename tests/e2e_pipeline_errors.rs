//! Pipeline files with mistakes: every mode refuses them with exit status 2
//! and a message naming FILE:LINE, the offending line and a hint.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A valid pipeline over the demo data (absolute paths), with `extra`
/// appended, or with `from` replaced by `to`.
fn pipeline(dir: &Path, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let demo = dataset_dir("demo");
    let text = format!(
        r#"name = "broken"
tz = "UTC"

[logs]
source = "files"
paths = ["{logs}"]

[[nodes]]
name = "backend-01"
role = "backend"
captures = "{caps}/backend-01"
aliases = ["198.18.10.10"]

[correlate]
incident_gap = "30s"

[window]
before = "5m"
"#,
        logs = demo.join("logs/proxy.log").display(),
        caps = demo.join("captures").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {}", path.display()))
        + 1
}

/// investigate and batch both refuse `path` naming `path:line:` and showing
/// the line; returns investigate's stderr.
fn refused(path: &Path, needle: &str, words: &[&str]) -> String {
    let line = line_of(path, needle);
    let p = path.to_str().unwrap();
    let runs = [
        vec![
            "investigate",
            "--pipeline",
            p,
            "--at",
            "2026-11-25T00:34:00Z",
        ],
        vec![
            "batch",
            "--pipeline",
            p,
            "--day",
            "2026-11-25",
            "--out",
            "/nonexistent/never-written",
        ],
    ];
    let mut first = None;
    for args in runs {
        let o = run(wt(&args));
        o.expect_code(2);
        let loc = format!("{p}:{line}:");
        assert!(
            o.stderr.contains(&loc),
            "`{}`: message does not name {loc}:\n{}",
            args[0],
            o.stderr
        );
        assert!(
            o.stderr.contains(needle),
            "the offending line is not shown:\n{}",
            o.stderr
        );
        for w in words {
            assert!(o.stderr.contains(w), "message lacks {w:?}:\n{}", o.stderr);
        }
        assert!(o.stdout.is_empty(), "nothing on stdout: {}", o.stdout);
        first.get_or_insert(o.stderr);
    }
    first.unwrap()
}

#[test]
fn the_base_pipeline_is_valid() {
    // Guards the tests below: their only error is the one they add.
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "ok.toml", |t| t);
    let o = run(wt([
        "investigate",
        "--pipeline",
        p.to_str().unwrap(),
        "--at",
        "2026-11-25T00:34:30Z",
    ]));
    o.expect_code(0);
}

#[test]
fn unknown_key_names_file_line_and_the_known_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "unknown-key.toml", |t| {
        t.replace("aliases = [", "colour = \"red\"\naliases = [")
    });
    let err = refused(&p, "colour = \"red\"", &["unknown key", "colour"]);
    assert!(err.contains("captures"), "hint lists the valid keys: {err}");
}

#[test]
fn misspelt_table_is_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "unknown-table.toml", |t| {
        t.replace("[correlate]", "[corelate]")
    });
    refused(&p, "[corelate]", &["corelate"]);
}

#[test]
fn bad_value_names_file_line_and_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "bad-role.toml", |t| {
        t.replace("role = \"backend\"", "role = \"server\"")
    });
    let err = refused(&p, "role = \"server\"", &["server"]);
    assert!(err.contains("backend") && err.contains("proxy"), "{err}");
}

#[test]
fn bad_duration_names_file_line_and_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "bad-duration.toml", |t| {
        t.replace("incident_gap = \"30s\"", "incident_gap = \"30 parsecs\"")
    });
    refused(&p, "30 parsecs", &["duration", "5m"]);
}

#[test]
fn bad_time_zone_and_bad_type_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "bad-tz.toml", |t| {
        t.replace("tz = \"UTC\"", "tz = \"Mars/Olympus_Mons\"")
    });
    refused(&p, "Mars/Olympus_Mons", &["time zone"]);

    let p = pipeline(dir.path(), "bad-type.toml", |t| {
        t.replace("before = \"5m\"", "before = 300")
    });
    refused(&p, "before = 300", &[]);
}

#[test]
fn toml_syntax_error_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), "syntax.toml", |t| t.replace("[logs]", "[logs"));
    refused(&p, "[logs", &[]);
}

/// Issue 16: an error keeps its causes, and the binary prints each one:
/// what failed first, then `caused by:` lines down to the operating
/// system's word, none repeated.
#[test]
fn an_error_is_printed_with_its_causes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/proxy.log");
    let o = run(wt([
        "investigate",
        "--logs",
        missing.to_str().unwrap(),
        "--node",
        &format!("b1={}", dir.path().display()),
        "--tz",
        "UTC",
        "--at",
        "2026-11-25T00:34:00Z",
    ]));
    o.expect_code(2);
    let want = format!(
        "wiretrail: error: reading the proxy logs\n  caused by: {}: cannot open: No such file or directory",
        missing.display()
    );
    assert!(o.stderr.contains(&want), "{}", o.stderr);

    // An output that cannot be written: the file, then the system's reason,
    // said once.
    let out = dir.path().join("not-a-dir");
    std::fs::write(&out, "a file").unwrap();
    let target = out.join("report.json");
    let o = run(wt([
        "investigate",
        "--pipeline",
        root().join("pipelines/demo.toml").to_str().unwrap(),
        "--format",
        "json",
        "--out",
        target.to_str().unwrap(),
    ]));
    o.expect_code(2);
    let want = format!(
        "wiretrail: error: cannot write {}\n  caused by: ",
        target.display()
    );
    assert!(o.stderr.contains(&want), "{}", o.stderr);
    assert_eq!(o.stderr.matches("(os error").count(), 1, "{}", o.stderr);
}
