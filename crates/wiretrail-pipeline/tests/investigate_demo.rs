//! `investigate` end to end with the real crates on the bundled lab
//! recording (`examples/data/demo`, a flow-split scenario): pipeline file,
//! log parser, capture catalog, extractor, correlation and every output.

use std::path::Path;
use std::sync::Arc;
use wiretrail_pipeline::engine::Color;
use wiretrail_pipeline::investigate::{
    apply_overrides, investigate, resolve_window, InvestigateRequest, Overrides,
};
use wiretrail_pipeline::outputs::{Format, OutputPlan, Publish};
use wiretrail_pipeline::progress::{Progress, Silent};
use wiretrail_pipeline::{CratesEngine, Pipeline};

#[test]
fn demo_pipeline_finds_the_flow_split() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("examples/data/demo");
    assert!(
        data.join("lab.json").exists(),
        "the bundled recording is missing: {}",
        data.display()
    );
    let lab: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("lab.json")).unwrap()).unwrap();
    let start = lab["traffic_start_epoch"].as_f64().unwrap() as i64;
    let end = lab["traffic_end_epoch"].as_f64().unwrap() as i64 + 60;
    let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();

    let tmp = tempfile::tempdir().unwrap();
    let mut p = Pipeline::load(&root.join("pipelines/demo.toml")).unwrap();
    p.cache_dir = Some(tmp.path().join("cache"));
    let o = Overrides {
        since: Some(t(start - 60)),
        until: Some(t(end)),
        ..Overrides::default()
    };
    let p = apply_overrides(p, &o).unwrap();
    let window = resolve_window(&p, &o, None, wiretrail_pipeline::time::Timestamp::now()).unwrap();
    let outputs = OutputPlan::from_outputs(
        &p.outputs,
        Some(Format::Json),
        Some(&tmp.path().join("r.json")),
        Some(&tmp.path().join("slices")),
        Color::Plain,
    );
    let req = InvestigateRequest {
        pipeline: p,
        window,
        outputs,
        publish: Publish::Never,
    };
    let progress: Arc<dyn Progress> = Arc::new(Silent);
    let mut stdout = Vec::new();
    let out = investigate(&CratesEngine, &req, &progress, &mut stdout).unwrap();
    assert!(out.found());
    let r = &out.analysis.report;
    assert!(
        r.incidents
            .iter()
            .all(|i| i.verdict.cause == wiretrail_correlate::Cause::FlowSplit),
        "{:?}",
        r.summary
    );
    let errors: Vec<_> = r.incidents.iter().flat_map(|i| &i.errors).collect();
    assert!(!errors.is_empty());
    for e in &errors {
        let d = &e.diagnosis;
        assert!(
            d.owner_node
                .as_deref()
                .is_some_and(|o| o.starts_with("backend-")),
            "{d:?}"
        );
        assert!(
            !d.stray_nodes.is_empty() && !d.stray_nodes.contains(d.owner_node.as_ref().unwrap()),
            "{d:?}"
        );
    }
    // The JSON on disk is the report; one pcapng slice per incident.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(
        json["incidents"].as_array().unwrap().len(),
        r.incidents.len()
    );
    let slices = std::fs::read_dir(tmp.path().join("slices"))
        .unwrap()
        .count();
    assert_eq!(slices, r.incidents.len());
    for w in &out.written {
        assert!(w.exists(), "{}", w.display());
    }
    let slice = std::fs::read(
        tmp.path()
            .join("slices")
            .join(format!("{}.pcapng", r.incidents[0].id)),
    )
    .unwrap();
    assert_eq!(
        &slice[..4],
        &[0x0a, 0x0d, 0x0d, 0x0a],
        "pcapng section header"
    );
    // The comment text of a flow_split finding travels in the slice.
    assert!(
        slice.windows(21).any(|w| w == b"wiretrail flow_split:"),
        "findings as packet comments"
    );
}
