//! `wiretrail capture index` and `capture extract` on the demo captures,
//! cross-checked with capinfos/tshark where installed.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn node_args() -> Vec<String> {
    let caps = dataset_dir("demo").join("captures");
    NODES
        .iter()
        .map(|n| format!("{n}={}", caps.join(n).display()))
        .collect()
}

/// One file row of the index text: name → (packets, first, last).
fn file_rows(text: &str) -> BTreeMap<String, (u64, Option<String>)> {
    let mut rows = BTreeMap::new();
    for l in text.lines() {
        let Some(p) = l.find(" pkts") else { continue };
        let name = l.split_whitespace().next().unwrap().to_string();
        let count: u64 = l[..p]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no packet count in {l}"));
        // `2026-11-25 00:33:49.535545 UTC .. ...`: the first timestamp.
        let first = l[p + 5..]
            .trim()
            .split(" UTC")
            .next()
            .filter(|s| s.starts_with("20"))
            .map(str::to_string);
        rows.insert(name, (count, first));
    }
    rows
}

#[test]
fn index_lists_every_node_file_span_and_coverage() {
    let cache = tempfile::tempdir().unwrap();
    let mut args = vec!["capture".to_string(), "index".into()];
    args.extend(node_args());
    args.extend([
        "--tz".into(),
        "UTC".into(),
        "--cache".into(),
        cache.path().display().to_string(),
    ]);
    let o = run(wt(&args));
    o.expect_code(0);
    let text = &o.stdout;
    let caps = dataset_dir("demo").join("captures");

    // Per node: a header with its file count, and a coverage line.
    let mut files_total = 0;
    for n in NODES {
        let on_disk: BTreeSet<String> = std::fs::read_dir(caps.join(n))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files_total += on_disk.len();
        let header = format!("node {n}: {} files,", on_disk.len());
        let start = text
            .find(&header)
            .unwrap_or_else(|| panic!("no `{header}` in:\n{text}"));
        let block = &text[start..];
        let block = &block[..block[1..].find("\nnode ").map_or(block.len(), |i| i + 1)];
        assert!(
            block.contains("covered: 2026-11-25 00:3"),
            "{n}: no coverage:\n{block}"
        );
        let rows = file_rows(block);
        assert_eq!(
            rows.keys().cloned().collect::<BTreeSet<_>>(),
            on_disk,
            "{n}: files listed"
        );
    }
    assert!(
        text.starts_with(&format!(
            "{files_total} files: 0 from the cache, {files_total} indexed"
        )),
        "{}",
        text.lines().next().unwrap_or("")
    );
    // backend-03's last ring file holds no packet: said, not hidden.
    assert!(text.contains("0 pkts  no timestamped packets"), "{text}");

    // Packet counts and first packet times agree with capinfos.
    if require_tool("capinfos", "the index's packet counts and spans") {
        let rows = file_rows(text);
        for n in NODES {
            for e in std::fs::read_dir(caps.join(n)).unwrap() {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let (count, first) = &rows[&name];
                let (c, f) = capinfos(&path);
                assert_eq!(*count, c, "{name}: packets");
                if c > 0 {
                    assert_eq!(
                        first.as_deref(),
                        Some(f.as_str()),
                        "{name}: first packet time"
                    );
                }
            }
        }
    }

    // A second run takes every file from the cache.
    let o = run(wt(&args));
    o.expect_code(0);
    assert!(
        o.stdout.starts_with(&format!(
            "{files_total} files: {files_total} from the cache, 0 indexed"
        )),
        "{}",
        o.stdout.lines().next().unwrap_or("")
    );
}

/// capinfos: (packets, first packet time as `YYYY-mm-dd HH:MM:SS.ffffff`).
fn capinfos(path: &Path) -> (u64, String) {
    let out = std::process::Command::new("capinfos")
        .args(["-T", "-r", "-c", "-S", "-a"])
        .arg(path)
        .output()
        .expect("capinfos");
    let text = String::from_utf8_lossy(&out.stdout);
    let cols: Vec<&str> = text.lines().next().unwrap_or("").split('\t').collect();
    let count = cols.get(1).and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    let first = cols
        .get(2)
        .and_then(|t| {
            let (secs, frac) = t.trim().split_once('.')?;
            let ns: u32 = format!("{frac:0<9}")[..9].parse().ok()?;
            chrono::DateTime::from_timestamp(secs.parse().ok()?, ns)
        })
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_default();
    (count, first)
}

#[test]
fn extract_one_flow_to_a_pcapng_that_tshark_reads() {
    let t = truth("demo");
    let te = &arr(&t, "errors")[0];
    let port = te["proxy_local_port"].as_u64().unwrap();
    let owner = s(te, "owner_node").to_string();
    let stray = strings(&te["stray_nodes"])[0].clone();
    let (since, until) = ("2026-11-25T00:33:50Z", "2026-11-25T00:33:55Z");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flow.pcapng");
    let mut args = vec!["capture".to_string(), "extract".into()];
    for n in node_args() {
        args.push("--node".into());
        args.push(n);
    }
    args.extend(
        [
            "--flow",
            &format!("198.18.0.2:{port}-198.18.10.10:80"),
            "--since",
            since,
            "--until",
            until,
            "--no-cache",
            "-w",
            out.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let o = run(wt(&args));
    o.expect_code(0);
    let wrote: u64 = o
        .stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("wrote ")?
                .strip_suffix(" packets")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `wrote N packets` in:\n{}", o.stdout));
    assert!(wrote > 50, "{wrote} packets");

    if !require_tool(
        "tshark",
        "that the extracted pcapng opens and holds the flow",
    ) {
        return;
    }
    let rows = tshark_fields(
        &out,
        None,
        &[
            "frame.interface_name",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.flags",
        ],
    );
    assert_eq!(
        rows.len() as u64,
        wrote,
        "tshark reads every packet written"
    );
    let mut per_node: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for r in &rows {
        let p = port.to_string();
        assert!(r[1] == p || r[2] == p, "packet of another flow: {r:?}");
        let flags = u16::from_str_radix(r[3].trim_start_matches("0x"), 16).unwrap();
        per_node.entry(r[0].clone()).or_default().push(flags);
    }
    // The flow split is visible: the owner saw the SYN, the stray node a RST.
    assert_eq!(
        per_node.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([owner.clone(), stray.clone(), "proxy".to_string()]),
        "interfaces named after the nodes that saw the flow"
    );
    assert!(per_node[&owner]
        .iter()
        .any(|f| f & TCP_SYN != 0 && f & 0x10 == 0));
    assert!(per_node[&stray].iter().any(|f| f & TCP_RST != 0));
    assert!(per_node[&stray].iter().all(|f| f & TCP_SYN == 0));

    // Same count as tshark filtering the owner's own capture files.
    let filter = format!(
        "tcp.port=={port} && frame.time_epoch >= {} && frame.time_epoch <= {}",
        chrono::DateTime::parse_from_rfc3339(since)
            .unwrap()
            .timestamp(),
        chrono::DateTime::parse_from_rfc3339(until)
            .unwrap()
            .timestamp()
    );
    let caps = dataset_dir("demo").join("captures").join(&owner);
    let direct: usize = std::fs::read_dir(caps)
        .unwrap()
        .map(|e| tshark_fields(&e.unwrap().path(), Some(&filter), &["frame.number"]).len())
        .sum();
    assert_eq!(
        per_node[&owner].len(),
        direct,
        "{owner}: wiretrail vs tshark"
    );
}

#[test]
fn extract_of_an_absent_flow_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.pcapng");
    let mut args = vec!["capture".to_string(), "extract".into()];
    for n in node_args() {
        args.push("--node".into());
        args.push(n);
    }
    args.extend(
        [
            "--port",
            "1",
            "--since",
            "2026-11-25T00:33:50Z",
            "--until",
            "2026-11-25T00:33:55Z",
            "--no-cache",
            "-w",
            out.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let o = run(wt(&args));
    o.expect_code(1);
    assert!(o.stdout.contains("wrote 0 packets"), "{}", o.stdout);
}

/// `capture extract` with `--port` on the demo's first error, in `window`.
fn extract_args(out: &Path, window: &[&str]) -> Vec<String> {
    let t = truth("demo");
    let port = arr(&t, "errors")[0]["proxy_local_port"].as_u64().unwrap();
    let mut args = vec!["capture".to_string(), "extract".into()];
    for n in node_args() {
        args.push("--node".into());
        args.push(n);
    }
    args.extend(["--port".to_string(), port.to_string(), "--no-cache".into()]);
    args.extend(window.iter().map(|s| s.to_string()));
    args.extend(["-w".to_string(), out.display().to_string()]);
    args
}

fn wrote(o: &Out) -> u64 {
    o.stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("wrote ")?
                .strip_suffix(" packets")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `wrote N packets` in:\n{}", o.stdout))
}

#[test]
fn extract_reads_the_times_every_command_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flow.pcapng");
    let rfc3339 = run(wt(extract_args(
        &out,
        &[
            "--since",
            "2026-11-25T00:33:50Z",
            "--until",
            "2026-11-25T00:33:55Z",
        ],
    )));
    rfc3339.expect_code(0);
    let expected = wrote(&rfc3339);
    assert!(expected > 0);
    // The same window with an offset (08:33:50 +08:00 is 00:33:50Z), and as
    // epoch seconds: forms `investigate` and `es` read.
    for window in [
        [
            "--since",
            "2026-11-25 08:33:50 +08:00",
            "--until",
            "2026-11-25 08:33:55 +08:00",
        ],
        ["--since", "1795566830", "--until", "1795566835"],
    ] {
        let o = run(wt(extract_args(&out, &window)));
        o.expect_code(0);
        assert_eq!(wrote(&o), expected, "{window:?}");
    }
    // A bare date is its midnight in --tz: the whole day holds the flow.
    let o = run(wt(extract_args(
        &out,
        &[
            "--since",
            "2026-11-25",
            "--until",
            "2026-11-26",
            "--tz",
            "UTC",
        ],
    )));
    o.expect_code(0);
    assert!(wrote(&o) >= expected);
    // A zone-less stamp without --tz is refused, naming the fix.
    let o = run(wt(extract_args(
        &out,
        &[
            "--since",
            "2026-11-25 00:33:50",
            "--until",
            "2026-11-25T00:33:55Z",
        ],
    )));
    o.expect_refusal(&["--tz"]);
}

#[test]
fn capture_refuses_a_node_given_twice() {
    let caps = dataset_dir("demo").join("captures");
    let twice = [
        format!("backend-01={}", caps.join("backend-01").display()),
        format!("backend-01={}", caps.join("backend-02").display()),
    ];
    let mut index = vec!["capture".to_string(), "index".into(), "--no-cache".into()];
    index.extend(twice.iter().cloned());
    let dir = tempfile::tempdir().unwrap();
    let mut extract = vec!["capture".to_string(), "extract".into()];
    for n in &twice {
        extract.extend(["--node".to_string(), n.clone()]);
    }
    extract.extend(
        [
            "--port",
            "1",
            "--since",
            "2026-11-25T00:33:50Z",
            "--until",
            "2026-11-25T00:33:55Z",
            "--no-cache",
            "-w",
        ]
        .map(String::from),
    );
    extract.push(dir.path().join("x.pcapng").display().to_string());
    for args in [index, extract] {
        let o = run(wt(&args));
        o.expect_refusal(&["`backend-01` is given twice"]);
    }
}

#[test]
fn index_text_neutralises_control_characters_in_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_dir(dataset_dir("demo").join("captures").join("proxy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    std::fs::copy(&src, dir.path().join("evil\x1b[2J\u{202e}.pcap")).unwrap();
    let node = format!("proxy={}", dir.path().display());
    let o = run(wt(["capture", "index", "--no-cache", node.as_str()]));
    o.expect_code(0);
    assert!(
        !o.stdout.contains('\x1b') && !o.stdout.contains('\u{202e}'),
        "a file name reached the terminal raw:\n{:?}",
        o.stdout
    );
    assert!(
        o.stdout.contains("evil\\x1b[2J\\u{202e}.pcap"),
        "{}",
        o.stdout
    );
}

#[test]
fn index_text_names_gaps_and_overlaps_between_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut src: Vec<_> = std::fs::read_dir(dataset_dir("demo").join("captures").join("proxy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    src.sort();
    // Names without rotation hints: the first and the third rotation leave
    // a stretch nothing covers; one file twice overlaps itself.
    let (gap, twice) = (dir.path().join("gap"), dir.path().join("twice"));
    std::fs::create_dir_all(&gap).unwrap();
    std::fs::create_dir_all(&twice).unwrap();
    std::fs::copy(&src[0], gap.join("x.pcap")).unwrap();
    std::fs::copy(&src[2], gap.join("y.pcap")).unwrap();
    std::fs::copy(&src[0], twice.join("a.pcap")).unwrap();
    std::fs::copy(&src[0], twice.join("b.pcap")).unwrap();
    let o = run(wt([
        "capture".to_string(),
        "index".into(),
        "--no-cache".into(),
        format!("g={}", gap.display()),
        format!("t={}", twice.display()),
    ]));
    o.expect_code(0);
    let line = |start: &str| {
        o.stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no `{start}` line in:\n{}", o.stdout))
            .to_string()
    };
    let g = line("  GAP:     2026-11-25 00:34:");
    assert!(
        g.ends_with(" between x.pcap and y.pcap: not captured"),
        "{g}"
    );
    let ov = line("  overlap: 2026-11-25 00:33:");
    assert!(
        ov.ends_with(" in a.pcap and b.pcap: packets there may appear twice"),
        "{ov}"
    );
}
