//! Extraction benchmark driver (used by `scripts/bench-capture.sh`):
//! catalogs one node, then extracts N flows picked from gencap's
//! `flows.tsv` in one pass and prints one line of figures.
//!
//! ```text
//! capbench --node be1=DIR --cache DIR --flows OUT/flows.tsv --count 100 \
//!          [--since NS --until NS] [--print-bpf] [--print-tshark]
//! ```
//!
//! Output (tab-separated): `count  secs  bytes_read  packets_scanned
//! matched  MB/s`. With `--print-bpf` / `--print-tshark` it only prints the
//! equivalent tcpdump BPF / tshark display filter for the same flows.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Detail, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};

fn main() {
    if let Err(e) = run() {
        eprintln!("capbench: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut node = None;
    let mut cache = None;
    let mut flows = None;
    let mut count = 1usize;
    let (mut since, mut until) = (i64::MIN / 2, i64::MAX / 2);
    let (mut bpf, mut tshark) = (false, false);
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--node" => node = Some(NodeSpec::parse_arg(&v()?).map_err(|e| e.to_string())?),
            "--cache" => cache = Some(PathBuf::from(v()?)),
            "--flows" => flows = Some(PathBuf::from(v()?)),
            "--count" => count = v()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--since" => since = v()?.parse().map_err(|e| format!("--since: {e}"))?,
            "--until" => until = v()?.parse().map_err(|e| format!("--until: {e}"))?,
            "--print-bpf" => bpf = true,
            "--print-tshark" => tshark = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let node = node.ok_or("--node NAME=DIR is required")?;
    let flows = flows.ok_or("--flows FILE is required")?;
    let text = std::fs::read_to_string(&flows).map_err(|e| format!("{}: {e}", flows.display()))?;
    // Distinct 4-tuples of this node, spread evenly over the list.
    let mut all: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split('\t').collect();
        if c.len() < 3 || c[0] != node.name {
            continue;
        }
        let pair = (
            c[1].parse().map_err(|e| format!("{l}: {e}"))?,
            c[2].parse().map_err(|e| format!("{l}: {e}"))?,
        );
        if seen.insert(pair) {
            all.push(pair);
        }
    }
    if all.len() < count {
        return Err(format!(
            "only {} flows of {} in {}",
            all.len(),
            node.name,
            flows.display()
        ));
    }
    let step = all.len() / count;
    let picked: Vec<(SocketAddr, SocketAddr)> = (0..count).map(|i| all[i * step]).collect();
    if bpf {
        let terms: Vec<String> = picked
            .iter()
            .map(|(p, b)| {
                format!(
                    "(host {} and host {} and port {} and port {})",
                    p.ip(),
                    b.ip(),
                    p.port(),
                    b.port()
                )
            })
            .collect();
        println!("tcp and ({})", terms.join(" or "));
        return Ok(());
    }
    if tshark {
        let terms: Vec<String> = picked
            .iter()
            .map(|(p, b)| {
                format!(
                    "(ip.addr=={} && ip.addr=={} && tcp.port=={} && tcp.port=={})",
                    p.ip(),
                    b.ip(),
                    p.port(),
                    b.port()
                )
            })
            .collect();
        println!("{}", terms.join(" || "));
        return Ok(());
    }
    let queries: Vec<FlowQuery> = picked
        .iter()
        .map(|&(p, b)| {
            FlowQuery::to_port(
                p.port(),
                Some(p.ip()),
                Some(b),
                Timestamp::from_nanos(since),
                Timestamp::from_nanos(until),
            )
        })
        .collect();
    let cat = Catalog::build_with(
        &[node],
        &CatalogOptions {
            cache_dir: cache,
            // The files the windows touch are indexed (once: cached).
            detail: Detail::for_queries(&queries, Duration::ZERO),
            ..CatalogOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    if cat.stats().indexed > 0 {
        eprintln!(
            "capbench: indexed {} files first (not timed)",
            cat.stats().indexed
        );
    }
    let t = Instant::now();
    let ex = extract(&cat, &queries, &ExtractOptions::default());
    let secs = t.elapsed().as_secs_f64();
    let s = &ex.stats[0];
    println!(
        "{count}\t{secs:.3}\t{}\t{}\t{}\t{:.0}",
        s.bytes_read,
        s.packets_scanned,
        s.matched,
        s.bytes_read as f64 / secs / 1e6
    );
    for p in &ex.problems {
        eprintln!("capbench: problem: {p}");
    }
    Ok(())
}
