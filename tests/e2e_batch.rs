//! `wiretrail batch --day 2026-11-25` over the demo pipeline: interrupted
//! (Ctrl-C, as the CLI offers, and a hard kill) and resumed, the day report
//! must equal an uninterrupted run's, `generated_at` aside.
//!
//! Chunks of 2 minutes (720 in the day): the demo's errors (00:33:53 ..
//! 00:34:20) are one burst across the 00:34 boundary, analysed whole in the
//! chunk where it starts (00:32); the 00:34 chunk carries nothing. The
//! interrupted runs stop at that chunk, so the resumed run still has real
//! analysis to do.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;

const DAY: &str = "2026-11-25";
const CHUNKS: u64 = 720;

fn batch_args(out: &Path) -> Vec<String> {
    [
        "batch",
        "--pipeline",
        "pipelines/demo.toml",
        "--day",
        DAY,
        "--chunk",
        "2m",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// JSON without `generated_at` (anywhere), for comparing reports of two runs.
fn without_generated_at(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("generated_at");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn chunk_reports(out: &Path) -> BTreeMap<String, Value> {
    std::fs::read_dir(out.join("chunks"))
        .expect("chunks dir")
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                without_generated_at(read_json(&p)),
            )
        })
        .collect()
}

/// Chunks recorded in the checkpoint journal (JSON lines: a header, then
/// one line per finished chunk).
fn completed(out: &Path) -> u64 {
    let text = std::fs::read_to_string(out.join("checkpoint.json")).expect("checkpoint");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).expect("header");
    assert_eq!(header["format"], "wiretrail-batch-journal", "{text}");
    lines.filter(|l| !l.trim().is_empty()).count() as u64
}

/// Start the batch, read its progress lines, and send `sig` once the line
/// `chunk K/720:` (chunk K started) appears. Returns the run's stderr.
fn run_and_signal(out: &Path, k: u64, sig: &str) -> (Option<i32>, String) {
    let mut c = wt(batch_args(out));
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn batch");
    let pid = child.id();
    let err = child.stderr.take().unwrap();
    let trigger = format!("wiretrail: chunk {k}/{CHUNKS}:");
    let (want, sig) = (trigger.clone(), sig.to_string());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut sent = false;
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if !sent && line.starts_with(&want) {
                signal(pid, &sig);
                sent = true;
            }
            all.push_str(&line);
            all.push('\n');
        }
        (sent, all)
    });
    let st = wait_limited(&mut child, RUN_LIMIT, "wiretrail batch (to interrupt)");
    let (sent, stderr) = reader.join().unwrap();
    assert!(sent, "never saw `{trigger}` in:\n{stderr}");
    (st.code(), stderr)
}

/// The uninterrupted run's day report and chunk reports, computed once for
/// both tests.
fn uninterrupted() -> &'static (Value, BTreeMap<String, Value>) {
    static ONCE: std::sync::OnceLock<(Value, BTreeMap<String, Value>)> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        run_uninterrupted(dir.path())
    })
}

fn run_uninterrupted(dir: &Path) -> (Value, BTreeMap<String, Value>) {
    let out = dir.join("straight");
    let o = run(wt(batch_args(&out)));
    o.expect_code(0);
    assert!(
        o.stderr.contains(&format!(
            "{CHUNKS} chunks ({CHUNKS} run now, 0 from the checkpoint)"
        )),
        "{}",
        o.stderr
    );
    // The day summary on stdout.
    assert!(o.stdout.contains("8 proxy errors"), "{}", o.stdout);
    assert!(o.stdout.contains("flow_split"), "{}", o.stdout);
    assert!(out.join("report.html").is_file());
    let report = read_json(&out.join("report.json"));
    assert_eq!(
        report["summary"]["errors"],
        8,
        "{}",
        short(&report["summary"])
    );
    assert_eq!(report["summary"]["by_cause"]["flow_split"], 8);
    let chunks = chunk_reports(&out);
    assert_eq!(
        chunks.keys().cloned().collect::<Vec<_>>(),
        ["20261125T003200Z.json"],
        "chunk reports are written only for chunks with errors; the burst across 00:34 is carried whole by the 00:32 chunk"
    );
    let incidents = arr(
        &read_json(&out.join("chunks/20261125T003200Z.json")),
        "incidents",
    )
    .len();
    assert_eq!(
        report["incidents"].as_array().map(Vec::len),
        Some(incidents),
        "every incident comes from the one chunk report"
    );
    (without_generated_at(report), chunks)
}

fn resume_and_compare(out: &Path, done_before: u64, want: &(Value, BTreeMap<String, Value>)) {
    let o = run(wt(batch_args(out)));
    o.expect_code(0);
    assert!(
        o.stderr.contains(&format!(
            "{CHUNKS} chunks ({} run now, {done_before} from the checkpoint)",
            CHUNKS - done_before
        )),
        "{}",
        o.stderr
    );
    let got = without_generated_at(read_json(&out.join("report.json")));
    assert!(
        got == want.0,
        "resumed day report differs from the uninterrupted one:\nresumed:  {}\nstraight: {}",
        short(&got),
        short(&want.0)
    );
    assert_eq!(chunk_reports(out), want.1, "chunk reports differ");
    assert_eq!(completed(out), CHUNKS);
}

#[test]
fn batch_interrupted_by_ctrl_c_resumes_to_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let want = uninterrupted();

    // Ctrl-C while chunk 17 (00:32-00:34, the whole burst) runs: the CLI
    // finishes that chunk, saves the checkpoint and stops with status 2.
    let out = dir.path().join("interrupted");
    let (code, stderr) = run_and_signal(&out, 17, "INT");
    assert_eq!(code, Some(2), "interrupted batch must exit 2:\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let done = completed(&out);
    eprintln!("Ctrl-C during chunk 17: stopped with {done} of {CHUNKS} chunks done");
    assert!(
        (17..CHUNKS).contains(&done),
        "the chunk running at Ctrl-C is finished, the rest is not: {done} done"
    );
    assert!(out.join("chunks/20261125T003200Z.json").is_file());
    assert!(
        !out.join("report.json").exists(),
        "no day report from an interrupted run"
    );
    resume_and_compare(&out, done, want);
}

#[test]
fn batch_killed_hard_resumes_to_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let want = uninterrupted();

    // SIGKILL as chunk 17 (00:32-00:34, the whole burst of eight errors)
    // starts: no chance to clean up; the checkpoint and chunk files must
    // still be consistent.
    let out = dir.path().join("killed");
    let (code, stderr) = run_and_signal(&out, 17, "KILL");
    assert_eq!(code, None, "killed by a signal:\n{stderr}");
    let done = completed(&out);
    eprintln!("SIGKILL at chunk 17: killed with {done} of {CHUNKS} chunks done");
    assert!((16..CHUNKS).contains(&done), "{done} chunks done");
    resume_and_compare(&out, done, want);
}
