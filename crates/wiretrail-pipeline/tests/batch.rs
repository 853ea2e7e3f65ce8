//! Batch: chunking, checkpoints, resume without duplicates.

mod common;
use chrono::Duration;
use common::{proxy_error, utc, FakeEngine};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use wiretrail_pipeline::batch::{run_batch, write_day_summary, BatchError, BatchOptions, Start};
use wiretrail_pipeline::config::Pipeline;
use wiretrail_pipeline::outputs::Publish;
use wiretrail_pipeline::progress::{Progress, Silent};
use wiretrail_pipeline::time::{Duration as Len, Window};

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
        chunk: Len::from_hours(1),
        out_dir: out.to_path_buf(),
        checkpoint: None,
        start: Start::Resume,
        slices: false,
        html: false,
        publish: Publish::AsConfigured,
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

/// The day report is published by the batch itself (once, merged, after
/// it is written), as the pipeline's outputs say; `Publish::Never` and a
/// pipeline without the output publish nothing.
#[test]
fn the_day_report_is_published_when_the_pipeline_says_so() {
    let mut p = pipeline();
    p.outputs.elasticsearch = true;
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new(day_errors());
    let out = run_batch(&engine, &p, &opts(dir.path()), &silent()).unwrap();
    assert_eq!(*engine.published.lock().unwrap(), [24]);
    assert_eq!(out.published.as_deref(), Some("24 incidents (fake)"));
    assert!(dir.path().join("report.json").exists());

    for (p, publish) in [
        (p.clone(), Publish::Never),
        (pipeline(), Publish::AsConfigured),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeEngine::new(day_errors());
        let o = BatchOptions {
            publish,
            ..opts(dir.path())
        };
        let out = run_batch(&engine, &p, &o, &silent()).unwrap();
        assert!(engine.published.lock().unwrap().is_empty());
        assert_eq!(out.published, None);
    }
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
    o.start = Start::Fresh;
    let out = run_batch(&FakeEngine::new(day_errors()), &pipeline(), &o, &silent()).unwrap();
    assert_eq!(
        out.report.incidents.len(),
        1,
        "the one error at 2023-05-06T00:00:00Z"
    );
}

/// Two bursts that straddle chunk boundaries (errors at most 20 s apart,
/// under the 30 s `incident_gap`), and lone errors around them.
fn straddling_errors() -> Vec<wiretrail_logs::ProxyError> {
    let day = utc("2023-05-05T00:00:00Z");
    let mut v = Vec::new();
    let mut line = 0;
    let mut at = |t: chrono::DateTime<chrono::Utc>, port: u16| {
        line += 1;
        v.push(proxy_error(t, port, line));
    };
    // 00:59:30 .. 01:00:30 across 01:00.
    for k in 0..4 {
        at(
            day + Duration::seconds(59 * 60 + 30 + 20 * k),
            52000 + k as u16,
        );
    }
    at(day + Duration::minutes(70), 52100);
    // 05:58:50 .. 06:02:30 across 06:00 (and, in 1-minute chunks, across
    // four boundaries).
    for k in 0..12 {
        at(
            day + Duration::seconds(5 * 3600 + 58 * 60 + 50 + 20 * k),
            52200 + k as u16,
        );
    }
    at(day + Duration::hours(9), 52300);
    v
}

fn grouping_engine() -> FakeEngine {
    let mut e = FakeEngine::new(straddling_errors());
    e.incident_gap = Some(Duration::seconds(30));
    e
}

/// Incidents as one investigation over the whole day groups them.
fn whole_day_incidents() -> serde_json::Value {
    use wiretrail_pipeline::engine::{Engine, Keep, LogStats};
    let e = grouping_engine();
    let day = Window::day("2023-05-05", None).unwrap();
    let errors = e.read_errors(&pipeline(), &day, Keep::All).unwrap().errors;
    let a = e
        .analyse(&pipeline(), &day, errors, &LogStats::default(), &silent())
        .unwrap();
    serde_json::to_value(&a.report.incidents).unwrap()
}

#[test]
fn incident_across_chunk_boundaries_is_one_incident() {
    let want = whole_day_incidents();
    let ids: Vec<_> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["errors"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!((ids[0].1, ids[2].1), (4, 12), "{ids:?}");
    for chunk in [Len::from_hours(1), Len::from_mins(1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.chunk = chunk;
        let e = grouping_engine();
        let out = run_batch(&e, &pipeline(), &o, &silent()).unwrap();
        assert_eq!(
            serde_json::to_value(&out.report.incidents).unwrap(),
            want,
            "chunk {chunk}: same incidents (ids and members) as one investigation"
        );
        assert_eq!(out.report.summary.incidents, 4);
        assert_eq!(out.report.summary.errors, 18);
        // The chunk where a burst starts analyses all of it; the chunks it
        // was carried into have nothing left and write no file.
        let files = chunk_files(dir.path());
        let want_files = if chunk == Len::from_hours(1) {
            vec![
                "20230505T000000Z.json",
                "20230505T010000Z.json",
                "20230505T050000Z.json",
                "20230505T090000Z.json",
            ]
        } else {
            vec![
                "20230505T005900Z.json",
                "20230505T011000Z.json",
                "20230505T055800Z.json",
                "20230505T090000Z.json",
            ]
        };
        assert_eq!(files, want_files, "chunk {chunk}");
        assert_eq!(e.windows.lock().unwrap().len(), 4, "one analysis per burst");
    }
}

/// The checkpoint journal: header + one line per finished chunk.
fn journal_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("checkpoint.json"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn carried_burst_survives_interrupt_crash_and_torn_journal() {
    for chunk in [Len::from_hours(1), Len::from_mins(1)] {
        let whole = tempfile::tempdir().unwrap();
        let mut o = opts(whole.path());
        o.chunk = chunk;
        run_batch(&grouping_engine(), &pipeline(), &o, &silent()).unwrap();
        let n = o.window.chunks(chunk).len();
        assert_eq!(
            journal_lines(whole.path()).len(),
            n + 1,
            "header + a line per chunk"
        );

        // Run 1: Ctrl-C during the first analysis (the burst carried
        // across 01:00): that chunk is recorded, the next is not started.
        let split = tempfile::tempdir().unwrap();
        let mut o = opts(split.path());
        o.chunk = chunk;
        let mut e1 = grouping_engine();
        e1.cancel_after = Some((1, o.cancel.clone()));
        let Err(BatchError::Interrupted { done: d1, .. }) =
            run_batch(&e1, &pipeline(), &o, &silent())
        else {
            panic!("not interrupted")
        };
        let carried = journal_lines(split.path())
            .last()
            .unwrap()
            .contains("\"carried_until\":\"2023-05-05T01:00:30Z\"");
        assert!(carried, "{:?}", journal_lines(split.path()).last());

        // Run 2: crashes in its 2nd analysis (the burst across 06:00).
        let mut o = opts(split.path());
        o.chunk = chunk;
        let mut e2 = grouping_engine();
        e2.fail_at = Some(2);
        assert!(matches!(
            run_batch(&e2, &pipeline(), &o, &silent()),
            Err(BatchError::Engine(_))
        ));
        // Its first analysis was the lone 01:10 error, without the two
        // errors carried into 01:00 by run 1.
        let w2 = e2.windows.lock().unwrap()[0];
        assert!(w2.contains(utc("2023-05-05T01:10:00Z")), "{w2}");
        let before = journal_lines(split.path()).len();
        assert!(before > d1 + 1);

        // A kill while appending leaves a torn last line: it is dropped
        // (with a warning) and its chunk redone.
        let mut text = std::fs::read_to_string(split.path().join("checkpoint.json")).unwrap();
        let last = text.trim_end().rsplit('\n').next().unwrap().to_string();
        text.truncate(text.len() - last.len() - 1);
        text.push_str(&last[..last.len() / 2]);
        std::fs::write(split.path().join("checkpoint.json"), text).unwrap();

        // Run 3 finishes.
        let e3 = grouping_engine();
        let out = run_batch(&e3, &pipeline(), &o, &silent()).unwrap();
        assert_eq!(
            out.chunks_resumed,
            before - 2,
            "the torn record's chunk is redone"
        );
        assert_eq!(
            comparable(whole.path()),
            comparable(split.path()),
            "chunk {chunk}"
        );
        assert_eq!(chunk_files(whole.path()), chunk_files(split.path()));
        assert_eq!(journal_lines(split.path()).len(), n + 1);
        // A re-run does nothing.
        let e4 = grouping_engine();
        let again = run_batch(&e4, &pipeline(), &o, &silent()).unwrap();
        assert_eq!((again.chunks_run, e4.windows.lock().unwrap().len()), (0, 0));
        assert_eq!(comparable(whole.path()), comparable(split.path()));
    }
}

#[test]
fn corrupt_or_old_checkpoints_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    run_batch(
        &FakeEngine::new(day_errors()),
        &pipeline(),
        &opts(dir.path()),
        &silent(),
    )
    .unwrap();
    let path = dir.path().join("checkpoint.json");
    let mut lines = journal_lines(dir.path());
    lines[3] = "{\"since\": garbage".into();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let e = run_batch(
        &FakeEngine::new(day_errors()),
        &pipeline(),
        &opts(dir.path()),
        &silent(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 4 (byte") && e.contains("--fresh"), "{e}");

    std::fs::write(
        &path,
        "{\n  \"version\": 1,\n  \"fingerprint\": \"x\",\n  \"completed\": []\n}\n",
    )
    .unwrap();
    let e = run_batch(
        &FakeEngine::new(day_errors()),
        &pipeline(),
        &opts(dir.path()),
        &silent(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("format-1") && e.contains("--fresh"), "{e}");
}

/// The error limit keeps the earliest errors of the window even when the
/// input is not in time order (several files), holding at most twice the
/// limit while reading, and says what it left out.
#[test]
fn the_error_limit_keeps_the_earliest_and_says_what_it_dropped() {
    use wiretrail_pipeline::engine::{filter_errors, Keep, LogStats};
    let day = Window::day("2023-05-05", None).unwrap();
    let start = utc("2023-05-05T00:00:00Z");
    // 5000 errors a second apart, newest first, plus one outside the day.
    let mut input: Vec<_> = (0..5000)
        .rev()
        .map(|i| {
            proxy_error(
                start + Duration::seconds(i),
                20000 + (i % 40000) as u16,
                i as u64,
            )
        })
        .collect();
    input.push(proxy_error(utc("2023-05-06T01:00:00Z"), 1, 9999));
    let mut stats = LogStats::default();
    let kept = filter_errors(input, &day, None, Keep::Earliest(100), &mut stats);
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0].timestamp, start);
    assert_eq!(kept[99].timestamp, start + Duration::seconds(99));
    assert_eq!((stats.over_limit, stats.outside_window), (4900, 1));
    assert_eq!(stats.problems.len(), 1);
    let p = &stats.problems[0];
    assert_eq!(p.kind, wiretrail_correlate::model::ProblemKind::Limit);
    assert!(
        p.message.contains("5000 proxy errors")
            && p.message.contains("the 100 earliest")
            && p.message.contains("the 4900 from 2023-05-05T00:01:40Z on"),
        "{}",
        p.message
    );
    assert_eq!(p.span.unwrap().since, start + Duration::seconds(100));
    // No limit: everything, sorted.
    let mut stats = LogStats::default();
    let all = filter_errors(
        (0..50)
            .rev()
            .map(|i| proxy_error(start + Duration::seconds(i), 1, 1)),
        &day,
        None,
        Keep::All,
        &mut stats,
    );
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert!(stats.problems.is_empty());
}
