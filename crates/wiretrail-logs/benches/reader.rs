//! `cargo bench -p wiretrail-logs`: the log reader against peers, in one run.
//!
//! Generates a mixed log (default 256 MiB; `WIRETRAIL_BENCH_LOG_MIB`), warms
//! the page cache, then takes the best of 5 runs (2 for the slow baseline) of:
//! wiretrail's reader with one worker per core and with one worker, a
//! `regex`-captures parser, and `rg -c 'http: proxy error'` when ripgrep is
//! installed (timed as a whole process, start-up included, where wiretrail
//! is timed in-process: the ratio leans slightly in wiretrail's favour;
//! `scripts/bench-logs.sh` times every contender as a process). Prints
//! MB/s and the ratios; no figure is asserted (machines are noisy: compare
//! ratios). `scripts/bench-logs.sh` does the same on 1 GiB with
//! peak memory.

/// The allocator the `wiretrail` binary uses (see its `main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;
use wiretrail_logs::reader::ReadOptions;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass none
    // of that and should not spend a minute here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mib: u64 = std::env::var("WIRETRAIL_BENCH_LOG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bench.log");
    let made = common::generate(&file, mib);
    let _ = std::fs::read(&file); // into the page cache
    println!(
        "log: {} MiB, {} lines, {} proxy errors, six envelopes",
        made.bytes >> 20,
        made.lines,
        made.errors
    );

    let all = ReadOptions::default();
    let one = ReadOptions {
        threads: 1,
        ..ReadOptions::default()
    };
    let mut rows: Vec<(String, Duration)> = Vec::new();
    let mut row = |name: &str, (t, c): (Duration, common::Counts)| {
        assert_eq!(c.errors, made.errors, "{name} found every error");
        println!(
            "{name:<28} {:>8.3} s {:>9.1} MB/s",
            t.as_secs_f64(),
            made.bytes as f64 / 1e6 / t.as_secs_f64()
        );
        rows.push((name.to_owned(), t));
    };
    let workers = all.threads;
    row(
        &format!("wiretrail ({workers} workers)"),
        common::best(5, || common::wiretrail(&file, all.clone())),
    );
    row(
        "wiretrail (1 worker)",
        common::best(5, || common::wiretrail(&file, one.clone())),
    );
    row(
        "regex captures",
        common::best(2, || common::regex_baseline(&file)),
    );
    let rg = Command::new("rg")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if rg {
        row(
            "rg -c 'http: proxy error'",
            common::best(5, || {
                let out = Command::new("rg")
                    .args(["-c", "http: proxy error"])
                    .arg(&file)
                    .output()
                    .expect("rg");
                let errors = String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0);
                common::Counts {
                    bytes: made.bytes,
                    lines: 0,
                    errors,
                }
            }),
        );
    } else {
        println!("rg not installed: no ripgrep ratio (apt-get install ripgrep)");
    }
    let t = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.starts_with(name))
            .map(|(_, t)| t.as_secs_f64())
    };
    let (w, w1, re) = (
        t("wiretrail (").unwrap_or(f64::NAN),
        t("wiretrail (1").unwrap_or(f64::NAN),
        t("regex").unwrap_or(f64::NAN),
    );
    println!(
        "ratios: wiretrail is {:.1}x the regex baseline (1 worker: {:.1}x)",
        re / w,
        re / w1
    );
    if let Some(r) = t("rg") {
        println!(
            "        wiretrail runs at {:.0}% of rg's speed (1 worker: {:.0}%)",
            100.0 * r / w,
            100.0 * r / w1
        );
    }
}
