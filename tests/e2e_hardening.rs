//! Hostile and careless input through the binary (issue 14) and the one
//! time vocabulary (issue 16): each test is the repro of a defect the
//! hardening pass found, made automatic.

mod common;

use common::*;
use std::path::Path;

const DEMO: &str = "pipelines/demo.toml";

fn no_panic(o: &Out) {
    assert!(
        !o.stderr.contains("panicked"),
        "`{}` panicked:\n{}",
        o.what,
        o.stderr
    );
}

/// D6: a duration past what a time can hold is a usage error naming the
/// flag, not a panic (exit 101) in chrono's arithmetic.
#[test]
fn a_huge_window_is_refused_with_a_message_not_a_panic() {
    for (flag, value) in [
        ("--window", "1000000000d"),
        ("--window", "300000d"),
        ("--window", "99999999999999999999s"),
    ] {
        let o = run(wt([
            "investigate",
            "--pipeline",
            DEMO,
            "--at",
            "2026-11-25T00:34:00Z",
            flag,
            value,
        ]));
        no_panic(&o);
        o.expect_code(2);
        assert!(
            o.stderr.contains(flag) && o.stderr.contains(value),
            "the message names neither the flag nor the value:\n{}",
            o.stderr
        );
    }
    // A batch chunk the same.
    let out = tempfile::tempdir().unwrap();
    let o = run(wt([
        "batch",
        "--pipeline",
        DEMO,
        "--day",
        "2026-11-25",
        "--chunk",
        "1000000000d",
        "--out",
        out.path().to_str().unwrap(),
    ]));
    no_panic(&o);
    o.expect_refusal(&["--chunk"]);
}

/// Issue 16: the same time forms in every command. `investigate` used to
/// refuse epoch seconds that `capture extract` accepted, and only `es
/// fetch` took a bare date.
#[test]
fn epoch_seconds_and_bare_dates_are_times_in_investigate_and_batch() {
    // 2026-11-25T00:33:00Z and 00:35:00Z: the demo's burst.
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--since",
        "1795566780",
        "--until",
        "1795566900.5",
        "--format",
        "json",
    ]));
    o.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON report");
    assert_eq!(s(&r, "since"), "2026-11-25T00:33:00Z");
    assert_eq!(s(&r, "until"), "2026-11-25T00:35:00.500Z");
    assert_eq!(arr(&r, "incidents").len(), 1);

    // Bare dates: midnight in the pipeline's zone (the demo's is UTC).
    let out = tempfile::tempdir().unwrap();
    let o = run(wt([
        "batch",
        "--pipeline",
        DEMO,
        "--since",
        "2026-11-25",
        "--until",
        "2026-11-26",
        "--chunk",
        "6h",
        "--out",
        out.path().to_str().unwrap(),
        "--no-progress",
    ]));
    o.expect_code(0);
    let r = read_json(&out.path().join("report.json"));
    assert_eq!(s(&r, "since"), "2026-11-25T00:00:00Z");
    assert_eq!(s(&r, "until"), "2026-11-26T00:00:00Z");
    assert_eq!(r["summary"]["errors"], 8);

    // A time that is none of the forms says which forms there are.
    let o = run(wt(["investigate", "--pipeline", DEMO, "--at", "yesterday"]));
    o.expect_refusal(&["--at", "epoch seconds"]);
}

/// D18: two `--node` flags of one name used to replace each other silently.
#[test]
fn two_node_flags_with_one_name_are_refused() {
    demo_with_nodes(&[("extra", "backend-01"), ("extra", "backend-02")])
        .expect_refusal(&["extra", "twice"]);
}

/// The demo pipeline with more `--node NAME=DIR` flags, each DIR one of
/// the demo's capture directories.
fn demo_with_nodes(nodes: &[(&str, &str)]) -> Out {
    let caps = dataset_dir("demo").join("captures");
    let mut args = vec!["investigate".to_string(), "--pipeline".into(), DEMO.into()];
    for (name, dir) in nodes {
        args.push("--node".into());
        args.push(format!("{name}={}", caps.join(dir).display()));
    }
    run(wt(args))
}

/// A node named `log` on the command line, as the pipeline file already
/// refuses: its packets would be mixed into the timeline's log rows.
#[test]
fn a_node_named_log_is_refused_on_the_command_line() {
    demo_with_nodes(&[("log", "backend-01")]).expect_refusal(&["`log`", "node name"]);
}

/// D15: `ssh://-oProxyCommand=…` reached `ssh` as an option. A stand-in
/// `ssh` (WIRETRAIL_SSH) records every invocation: there must be none, and
/// the run must fail naming the problem.
#[test]
fn an_ssh_host_beginning_with_a_dash_is_refused_before_ssh_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("ssh");
    let record = dir.path().join("ssh-was-run");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexit 255\n",
            record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let demo = dataset_dir("demo");
    for spec in [
        "b1=ssh://-oProxyCommand=touch${IFS}pwned/var/cap",
        "b1=ssh://-oProxyCommand=touch${IFS}pwned@host/var/cap",
    ] {
        let mut c = wt([
            "investigate".to_string(),
            "--logs".into(),
            demo.join("logs/proxy.log").display().to_string(),
            "--tz".into(),
            "UTC".into(),
            "--since".into(),
            "2026-11-25T00:30:00Z".into(),
            "--until".into(),
            "2026-11-25T00:40:00Z".into(),
            "--node".into(),
            spec.into(),
        ]);
        c.current_dir(dir.path()).env("WIRETRAIL_SSH", &fake);
        let o = run(c);
        assert!(
            !record.exists(),
            "`{spec}` reached ssh as:\n{}",
            std::fs::read_to_string(&record).unwrap_or_default()
        );
        o.expect_refusal(&["`-`"]);
    }
}

/// D12: tracing's colour codes went to stderr when it was a file or a pipe.
#[test]
fn stderr_has_no_colour_codes_when_it_is_not_a_terminal() {
    let mut c = wt(["-v", "investigate", "--pipeline", DEMO, "--no-publish"]);
    c.env_remove("NO_COLOR");
    let o = run(c);
    o.expect_code(0);
    assert!(
        o.stderr.contains("DEBUG") || o.stderr.contains("INFO"),
        "-v printed no diagnostics to check:\n{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains('\u{1b}') && !o.stdout.contains('\u{1b}'),
        "escape codes on a pipe:\n{:?}",
        o.stderr
    );
    // NO_COLOR and --color never win over a terminal; --color always wins
    // over both a pipe and NO_COLOR.
    let mut c = wt(["-v", "--color", "always", "investigate", "--pipeline", DEMO]);
    c.env("NO_COLOR", "1");
    let o = run(c);
    o.expect_code(0);
    assert!(o.stderr.contains('\u{1b}'), "{}", o.stderr);
    assert!(o.stdout.contains('\u{1b}'), "{}", o.stdout);
}

/// A process id that is certainly not running: a child that has exited.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// D11: `kill -9` during batch leaves `.NAME.tmp-PID` files that a resume
/// never removed. The resume removes those of dead processes (and only
/// those, and only of wiretrail's pattern).
#[test]
fn a_resumed_batch_removes_the_temporaries_of_a_killed_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = |out: &Path| {
        vec![
            "batch".to_string(),
            "--pipeline".into(),
            DEMO.into(),
            "--day".into(),
            "2026-11-25".into(),
            "--chunk".into(),
            "6h".into(),
            "--out".into(),
            out.display().to_string(),
            "--no-progress".into(),
        ]
    };
    run(wt(args(&out))).expect_code(0);
    let dead = dead_pid();
    let stale = [
        out.join(format!(".report.json.tmp-{dead}")),
        out.join(format!(".checkpoint.json.tmp-{dead}")),
        out.join(format!("chunks/.20261125T000000Z.json.tmp-{dead}")),
    ];
    let keep = [
        // A live process's (this test's) temporary: maybe being written now.
        out.join(format!(".report.html.tmp-{}", std::process::id())),
        // Not wiretrail's pattern.
        out.join("notes.tmp"),
        out.join(format!("chunks/x.json.tmp-{dead}")),
    ];
    for f in stale.iter().chain(&keep) {
        std::fs::write(f, b"half a report").unwrap();
    }
    let o = run(wt(args(&out)));
    o.expect_code(0);
    for f in &stale {
        assert!(!f.exists(), "{} survived the resume", f.display());
    }
    for f in &keep {
        assert!(f.exists(), "{} was removed", f.display());
    }
    assert!(
        o.stderr.contains("removed 3 temporary file(s)"),
        "{}",
        o.stderr
    );
}

/// Memory: 200 000 errors in one window were all held and analysed (986 MB
/// and rising with no cap). Past `--max-errors` (default 50 000) the later
/// errors are counted, not analysed, and a typed `limit` problem says how
/// many, from when, and how to widen it — in the report and on stderr.
#[test]
fn errors_past_the_limit_are_counted_and_named_not_held() {
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--max-errors",
        "3",
        "--format",
        "json",
    ]));
    o.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON report");
    assert_eq!(r["summary"]["errors"], 3, "{}", short(&r["summary"]));
    let limits: Vec<&serde_json::Value> = arr(&r["inputs"], "problems")
        .iter()
        .filter(|p| p["kind"] == "limit")
        .collect();
    assert_eq!(limits.len(), 1, "{}", short(&r["inputs"]));
    let m = s(limits[0], "message");
    assert!(
        m.contains("8 proxy errors") && m.contains("the 3 earliest") && m.contains("the 5 from"),
        "{m}"
    );
    assert!(m.contains("--max-errors"), "{m}");
    assert_eq!(limits[0]["source"]["type"], "run");
    assert!(
        limits[0]["span"]["since"].is_string(),
        "{}",
        short(limits[0])
    );
    assert!(
        o.stderr.contains("wiretrail: limit: 8 proxy errors"),
        "{}",
        o.stderr
    );

    // The same per batch chunk.
    let out = tempfile::tempdir().unwrap();
    let o = run(wt([
        "batch",
        "--pipeline",
        DEMO,
        "--day",
        "2026-11-25",
        "--chunk",
        "6h",
        "--max-errors",
        "3",
        "--out",
        out.path().to_str().unwrap(),
        "--no-progress",
    ]));
    o.expect_code(0);
    let r = read_json(&out.path().join("report.json"));
    assert_eq!(r["summary"]["errors"], 3);
    assert!(
        arr(&r["inputs"], "problems")
            .iter()
            .any(|p| p["kind"] == "limit"),
        "{}",
        short(&r["inputs"])
    );
    assert!(o.stderr.contains("wiretrail: limit:"), "{}", o.stderr);

    // 0: no limit.
    let o = run(wt([
        "investigate",
        "--pipeline",
        DEMO,
        "--max-errors",
        "0",
        "--format",
        "json",
    ]));
    o.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON report");
    assert_eq!(r["summary"]["errors"], 8);
}
