//! Pipeline files: the shipped ones load; broken ones are refused with the
//! file, line and column of the mistake and a hint.

use std::path::{Path, PathBuf};
use wiretrail_pipeline::config::{CaptureLocation, LogSource, Pipeline};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../pipelines")
        .join(name)
}

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, text).unwrap();
    match Pipeline::load(&p) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string().replace(&p.display().to_string(), "bad.toml"),
    }
}

const GOOD: &str = r#"
tz = "UTC"
[logs]
source = "files"
paths = ["logs/proxy.log"]
[[nodes]]
name = "b1"
captures = "caps/b1"
"#;

#[test]
fn shipped_pipelines_load() {
    let demo = Pipeline::load(&shipped("demo.toml")).unwrap();
    assert_eq!(demo.nodes.len(), 4);
    assert_eq!(demo.tz, Some(chrono_tz::UTC));
    match &demo.logs {
        LogSource::Files(p) => {
            assert!(p[0].ends_with("examples/data/demo/logs/proxy.log"), "{p:?}")
        }
        other => panic!("{other:?}"),
    }
    // Relative to the pipeline file, not to the current directory.
    match &demo.nodes[1].captures {
        CaptureLocation::Local(p) => assert!(
            p.is_absolute() && p.ends_with("examples/data/demo/captures/backend-01"),
            "{p:?}"
        ),
        other => panic!("{other:?}"),
    }
    let seed = Pipeline::load(&shipped("seed-502.toml")).unwrap();
    assert_eq!(seed.logs, LogSource::Elasticsearch);
    assert!(seed.outputs.elasticsearch && seed.elasticsearch.is_some());
    assert_eq!(seed.host_filter.as_deref(), Some("edge-proxy-01"));
    assert!(seed
        .nodes
        .iter()
        .all(|n| matches!(&n.captures, CaptureLocation::Ssh(t) if t.dir == "/var/lib/tcpdump")));
    assert_eq!(
        seed.nodes
            .iter()
            .filter(|n| n.aliases == vec!["10.18.32.11".parse::<std::net::IpAddr>().unwrap()])
            .count(),
        3
    );
    let daily = Pipeline::load(&shipped("daily-batch.toml")).unwrap();
    assert_eq!(
        daily.batch.chunk,
        wiretrail_pipeline::time::Duration::from_hours(1)
    );
    assert!(matches!(daily.logs, LogSource::Journald(_)));
}

#[test]
fn good_minimal_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, GOOD).unwrap();
    let pl = Pipeline::load(&p).unwrap();
    assert_eq!(pl.name, "p");
    assert_eq!(
        pl.window.before,
        wiretrail_pipeline::time::Duration::from_mins(5)
    );
}

#[test]
fn misspelt_table_names_the_line_and_suggests() {
    let e = load_err(&GOOD.replace("[[nodes]]", "[[nodse]]"));
    assert!(e.starts_with("bad.toml:6:"), "{e}");
    assert!(e.contains("unknown key `nodse`"), "{e}");
    assert!(e.contains("did you mean `nodes`?"), "{e}");
    assert!(e.contains("6 | [[nodse]]"), "{e}");
}

#[test]
fn misspelt_key_inside_a_node() {
    let e = load_err(&GOOD.replace("captures = ", "capture = "));
    assert!(e.starts_with("bad.toml:8:1: unknown key `capture`"), "{e}");
    assert!(e.contains("did you mean `captures`?"), "{e}");
}

#[test]
fn bad_values_point_at_the_value() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "tz = \"UTC\"",
            "tz = \"Asia/Shangai\"",
            "bad.toml:2:6: `Asia/Shangai` is not a time zone",
        ),
        (
            "name = \"b1\"",
            "name = \"b1\"\nrole = \"backnd\"",
            "bad.toml:8:8: unknown value `backnd`",
        ),
        (
            "captures = \"caps/b1\"",
            "captures = \"ssh://:22/x\"",
            "bad.toml:8:12: bad ssh capture location",
        ),
        (
            "captures = \"caps/b1\"",
            "captures = \"caps/b1\"\naliases = [\"10.0.0.300\"]",
            "bad.toml:9:12: `10.0.0.300` is not an IP address",
        ),
        (
            "source = \"files\"",
            "source = \"elasticsearch\"",
            "bad.toml:4:10: `source = \"elasticsearch\"` needs an [elasticsearch] table",
        ),
        (
            "source = \"files\"",
            "source = \"kafka\"",
            "bad.toml:4:10: unknown value `kafka`",
        ),
        (
            "captures = \"caps/b1\"",
            "captures = \"caps/b1\"\n[correlate]\nincident_gap = \"30 seconds\"",
            "bad.toml:10:16: `30 seconds` is not a duration",
        ),
        (
            "captures = \"caps/b1\"",
            "captures = \"caps/b1\"\n[serve]\nconcurrency = 8",
            "bad.toml:10:15: concurrency = 8 is out of range",
        ),
        (
            "captures = \"caps/b1\"",
            "captures = \"caps/b1\"\n[outputs]\nelasticsearch = true",
            "bad.toml:10:17: `elasticsearch = true` needs an [elasticsearch] table",
        ),
        (
            "captures = \"caps/b1\"",
            "captures = \"caps/b1\"\n[correlate]\nincident_gab = \"5s\"",
            "bad.toml:10:1: unknown key `incident_gab`",
        ),
    ];
    for (from, to, want) in cases {
        let e = load_err(&GOOD.replace(from, to));
        assert!(e.starts_with(want), "want `{want}`\n got `{e}`");
    }
}

#[test]
fn duplicate_nodes_and_missing_logs() {
    let twice = format!("{GOOD}\n[[nodes]]\nname = \"b1\"\ncaptures = \"x\"\n");
    let e = load_err(&twice);
    assert!(
        e.starts_with("bad.toml:11:8: node `b1` is defined twice"),
        "{e}"
    );
    let e = load_err("tz = \"UTC\"\n");
    assert!(e.contains("no [logs] table"), "{e}");
    let e = load_err(&GOOD.replace("paths = [\"logs/proxy.log\"]", "paths = \"logs/proxy.log\""));
    assert!(e.starts_with("bad.toml:5:9:"), "{e}");
}

#[test]
fn elasticsearch_table_typos_are_caught_too() {
    let text = GOOD.replace(
        "source = \"files\"\npaths = [\"logs/proxy.log\"]",
        "source = \"elasticsearch\"",
    ) + "[elasticsearch]\nurl = \"https://es:9200\"\nindx = \"filebeat-*\"\n";
    let e = load_err(&text);
    assert!(e.contains("bad.toml:10:1: unknown key `indx`"), "{e}");
    assert!(e.contains("did you mean `index`?"), "{e}");
}
