//! The same investigation from the other proxies' logs: lab datasets where
//! nginx, HAProxy, Caddy or Traefik stood where the Go proxy stands
//! (`examples/data/proxies/`, recorded by `examples/lab/proxies/`), through
//! `wiretrail investigate` with flags only, each proxy error's diagnosis
//! compared with the dataset's `truth.json` (derived from the captures by
//! the lab's own derivation, see `examples/lab/proxies/README.md`).
//!
//! The same requirements as `e2e_datasets.rs` holds the Go proxy's datasets
//! to: every error reported once, its cause truth's; for lines that print
//! the proxy's port (HAProxy's `%bi:%bp`, Caddy's and Traefik's Go errors:
//! truth `matched_by: port`) the owner and stray nodes truth's; for the
//! others (nginx, HAProxy's plain httplog, dial errors) a node named only if
//! it is truth's, and no stray node on a single-node cause. The table
//! printed at the end says how many port-less lines got their node anyway
//! (`cargo test --test e2e_proxies -- --nocapture`).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// (dataset under `examples/data/`, the program that logged it).
const DATASETS: [(&str, &str); 8] = [
    ("proxies/nginx-flow-split", "nginx"),
    ("proxies/nginx-refused", "nginx"),
    ("proxies/haproxy-flow-split", "haproxy"),
    ("proxies/haproxy-refused", "haproxy"),
    ("proxies/caddy-flow-split", "caddy"),
    ("proxies/caddy-refused", "caddy"),
    ("proxies/traefik-flow-split", "traefik"),
    ("proxies/traefik-refused", "traefik"),
];

/// The dataset's flags with `--logs` pointing at the proxy's own log.
fn flags(ds: &str) -> Vec<String> {
    let t = truth(ds);
    let log = dataset_dir(ds).join(s(&t, "log_file"));
    let mut a = dataset_flags(ds);
    let at = a.iter().position(|x| x == "--logs").expect("--logs") + 1;
    a[at] = log.display().to_string();
    a
}

#[derive(Default)]
struct Row {
    dataset: &'static str,
    errors: usize,
    cause_ok: usize,
    nodes_ok: usize,
    by_port: usize,
    verdicts: BTreeSet<String>,
    formats: BTreeSet<String>,
}

fn check(ds: &'static str, program: &str, failures: &mut Vec<String>) -> Row {
    let r = investigate_json(flags(ds));
    let t = truth(ds);
    assert_eq!(
        s(&t, "proxy_program"),
        program,
        "{ds}: truth of another program"
    );
    let by_line = truth_by_line(&t);
    assert!(!by_line.is_empty(), "{ds}: truth has no error line");
    let single_node = arr(&t, "errors")
        .iter()
        .all(|e| arr(e, "stray_nodes").is_empty());
    let mut row = Row {
        dataset: ds,
        errors: by_line.len(),
        ..Row::default()
    };
    let mut fail = |m: String| failures.push(format!("{ds}: {m}"));
    let mut seen = BTreeSet::new();
    for inc in arr(&r, "incidents") {
        row.verdicts.insert(s(&inc["verdict"], "cause").to_string());
        for e in arr(inc, "errors") {
            row.formats.insert(
                e.get("source_format")
                    .and_then(Value::as_str)
                    .unwrap_or("go")
                    .to_string(),
            );
            let line = e["source"]["line"].as_u64().expect("source.line");
            if !seen.insert(line) {
                fail(format!("line {line} reported twice"));
            }
            let Some(te) = by_line.get(&line) else {
                fail(format!("line {line} is not a proxy error of truth.json"));
                continue;
            };
            let d = &e["diagnosis"];
            let (want, got) = (expected_cause(te), s(d, "cause").to_string());
            if want == got {
                row.cause_ok += 1;
            } else {
                fail(format!("line {line}: cause {got}, truth {want}"));
            }
            let nodes = Nodes::of(d, te);
            let right = nodes.right();
            let Nodes {
                want_owner,
                want_strays,
                got_owner,
                got_strays,
            } = nodes;
            row.nodes_ok += usize::from(right);
            let by_port = s(te, "matched_by") == "port";
            row.by_port += usize::from(by_port);
            if by_port && !right {
                fail(format!(
                    "line {line}: owner {got_owner:?} strays {got_strays:?}, truth {want_owner} {want_strays:?}"
                ));
            }
            if !by_port && got_owner.is_some_and(|o| o != want_owner) {
                fail(format!(
                    "line {line} (no port): owner {got_owner:?}, truth {want_owner}"
                ));
            }
            if single_node && !got_strays.is_empty() {
                fail(format!(
                    "line {line}: stray nodes {got_strays:?} on a single-node cause"
                ));
            }
        }
    }
    for line in by_line.keys().filter(|l| !seen.contains(l)) {
        fail(format!(
            "proxy error of line {line} missing from the report"
        ));
    }
    if row.formats != BTreeSet::from([program.to_string()]) {
        fail(format!("records of {:?}, not {program}", row.formats));
    }
    row
}

#[test]
fn every_proxy_gets_the_go_proxys_verdicts() {
    let mut failures = Vec::new();
    let rows: Vec<Row> = DATASETS
        .iter()
        .map(|(ds, program)| check(ds, program, &mut failures))
        .collect();
    let mut t = String::from(
        "\n| dataset | errors | correct cause | correct owner and strays | joined by port (truth) | verdicts |\n|---|---:|---:|---:|---:|---|\n",
    );
    for r in &rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} |",
            r.dataset,
            r.errors,
            r.cause_ok,
            r.nodes_ok,
            r.by_port,
            r.verdicts.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!("{t}");
    assert_agrees_with_truth(&failures);
}

/// `pipelines/nginx-demo.toml` (`logs.format = "nginx"`) on the nginx
/// flow-split recording: the verdicts of the flags-only run above.
#[test]
fn the_nginx_pipeline_names_the_flow_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let args = [
        "investigate",
        "--pipeline",
        "pipelines/nginx-demo.toml",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ];
    run(wt(args)).expect_code(0);
    let r = read_json(&out);
    let by_line = truth_by_line(&truth("proxies/nginx-flow-split"));
    let mut n = 0;
    for inc in arr(&r, "incidents") {
        for e in arr(inc, "errors") {
            let line = e["source"]["line"].as_u64().unwrap();
            assert_eq!(s(e, "source_format"), "nginx");
            assert_eq!(
                s(&e["diagnosis"], "cause"),
                expected_cause(&by_line[&line]),
                "line {line}"
            );
            n += 1;
        }
    }
    assert_eq!(n, by_line.len());
}
