//! Batch: chunking, checkpoints, resume without duplicates.

mod common;
use chrono::Duration;
use common::{proxy_error, utc, FakeEngine};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use wiretrail_pipeline::batch::{run_batch, write_day_summary, BatchError, BatchOptions};
use wiretrail_pipeline::config::Pipeline;
use wiretrail_pipeline::progress::{Progress, Silent};
use wiretrail_pipeline::time::Window;

/// A day of errors: 3 per hour in 8 of the 24 hours.
fn day_errors() -> Vec<wiretrail_logs::ProxyError> {
    let mut v = Vec::new();
    let mut line = 0;
    for h in [0, 3, 4, 9, 12, 17, 18, 23] {
        for k in 0..3 {
            line += 1;
            let t =
                utc("2023-05-05T00:00:00Z") + Duration::hours(h) + Duration::seconds(60 * k + 7);
            v.push(proxy_error(t, 51000 + (h * 10 + k) as u16, line));
        }
    }
    // Outside the day: must be counted, never reported.
    v.push(proxy_error(utc("2023-05-06T00:00:00Z"), 50001, 999));
    v
}

fn opts(out: &Path) -> BatchOptions {
    BatchOptions {
        window: Window::day("2023-05-05", None).unwrap(),
        chunk: Duration::hours(1),
        out_dir: out.to_path_buf(),
        checkpoint: None,
        fresh: false,
        slices: false,
        html: false,
        cancel: Arc::new(AtomicBool::new(false)),
    }
}

fn pipeline() -> Pipeline {
    let mut p = Pipeline::empty(Path::new("/"));
    p.name = "test".into();
    p
}

fn silent() -> Arc<dyn Progress> {
    Arc::new(Silent)
}

/// The day report without the run's own clock (generated_at).
fn comparable(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("generated_at");
    v
}

fn chunk_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn uninterrupted_day() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(day_errors());
    let out = run_batch(&engine, &pipeline(), &opts(dir.path()), &silent()).unwrap();
    assert_eq!(out.chunks_total, 24);
    assert_eq!(out.chunks_run, 24);
    assert_eq!(out.report.incidents.len(), 24);
    // Only chunks with errors were analysed (no capture reading for the rest).
    assert_eq!(engine.windows.lock().unwrap().len(), 8);
    assert_eq!(chunk_files(dir.path()).len(), 8);
    let s = &out.report.summary;
    assert_eq!(s.by_hour.len(), 8);
    assert_eq!(s.by_cause.values().sum::<u64>(), 24);
    let mut text = Vec::new();
    write_day_summary(&out.report, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("24 incidents"), "{text}");
    assert!(
        text.contains("flow_split")
            && text.contains("backend-03")
            && text.contains("2023-05-05T17"),
        "{text}"
    );
}

#[test]
fn interrupted_then_resumed_equals_uninterrupted() {
    let whole = tempfile::tempdir().unwrap();
    run_batch(
        &FakeEngine::new(day_errors()),
        &pipeline(),
        &opts(whole.path()),
        &silent(),
    )
    .unwrap();

    // Run 1: Ctrl-C arrives during the 3rd analysed chunk.
    let split = tempfile::tempdir().unwrap();
    let o = opts(split.path());
    let mut e1 = FakeEngine::new(day_errors());
    e1.cancel_after = Some((3, o.cancel.clone()));
    match run_batch(&e1, &pipeline(), &o, &silent()) {
        Err(BatchError::Interrupted { done, total }) => assert_eq!(
            (done, total),
            (5, 24),
            "hours 0..=4: the 3rd analysed chunk (04h) completes, then it stops"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!split.path().join("report.json").exists());
    // Run 2: a crash (engine failure) in the 2nd chunk it analyses.
    let mut e2 = FakeEngine::new(day_errors());
    e2.fail_at = Some(2);
    assert!(matches!(
        run_batch(&e2, &pipeline(), &opts(split.path()), &silent()),
        Err(BatchError::Engine(_))
    ));
    // Run 3: finishes; only the chunks not yet done are analysed.
    let e3 = FakeEngine::new(day_errors());
    let out = run_batch(&e3, &pipeline(), &opts(split.path()), &silent()).unwrap();
    assert_eq!(
        out.chunks_resumed, 12,
        "5 from run 1, 7 from run 2 (05h..11h)"
    );
    assert_eq!(e3.windows.lock().unwrap().len(), 4);
    let done_first: Vec<_> = e1.windows.lock().unwrap().clone();
    assert!(
        e3.windows
            .lock()
            .unwrap()
            .iter()
            .all(|w| !done_first.contains(w)),
        "no chunk analysed twice after it was recorded"
    );

    assert_eq!(comparable(whole.path()), comparable(split.path()));
    assert_eq!(chunk_files(whole.path()), chunk_files(split.path()));
    for f in chunk_files(whole.path()) {
        let a: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(whole.path().join("chunks").join(&f)).unwrap(),
        )
        .unwrap();
        let b: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(split.path().join("chunks").join(&f)).unwrap(),
        )
        .unwrap();
        assert_eq!(a["incidents"], b["incidents"], "{f}");
    }
    // A re-run of a finished batch does nothing new and changes nothing.
    let e4 = FakeEngine::new(day_errors());
    let again = run_batch(&e4, &pipeline(), &opts(split.path()), &silent()).unwrap();
    assert_eq!((again.chunks_run, e4.windows.lock().unwrap().len()), (0, 0));
    assert_eq!(comparable(whole.path()), comparable(split.path()));
}

#[test]
fn checkpoint_of_another_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_batch(
        &FakeEngine::new(day_errors()),
        &pipeline(),
        &opts(dir.path()),
        &silent(),
    )
    .unwrap();
    let mut o = opts(dir.path());
    o.window = Window::day("2023-05-06", None).unwrap();
    let e = run_batch(&FakeEngine::new(day_errors()), &pipeline(), &o, &silent())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("belongs to another run") && e.contains("--fresh"),
        "{e}"
    );
    o.fresh = true;
    let out = run_batch(&FakeEngine::new(day_errors()), &pipeline(), &o, &silent()).unwrap();
    assert_eq!(
        out.report.incidents.len(),
        1,
        "the one error at 2023-05-06T00:00:00Z"
    );
}
