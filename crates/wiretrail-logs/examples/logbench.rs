//! Log parsing benchmark (not a test): generate a big mixed log, then time
//! wiretrail's reader and a `regex`-captures baseline over it.
//!
//! ```text
//! logbench gen FILE MIB        # write a log of MIB MiB, ~1% proxy errors, 6 envelopes in turn
//! logbench wiretrail FILE      # LogReader over FILE
//! logbench regex FILE          # line-by-line regex captures over FILE
//! logbench gen-proxy FORMAT FILE MIB  # nginx|haproxy|caddy|traefik|envoy log, ~1% error lines
//! logbench needle FORMAT       # the rg pattern that finds that format's record lines
//! ```
//! Each run prints one line: `mode bytes lines errors seconds MB/s lines/s`.
//! `scripts/bench-logs.sh` runs all of them plus `rg` on one file.

/// The allocator the `wiretrail` binary uses (see its `main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;
use wiretrail_logs::reader::ReadOptions;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 4 => {
            let c = common::generate(Path::new(&args[2]), args[3].parse().expect("MiB"));
            println!(
                "generated {}: {} bytes, {} lines, {} proxy errors",
                args[2], c.bytes, c.lines, c.errors
            );
        }
        Some("gen-proxy") if args.len() == 5 => {
            let (bytes, lines, records) = common::proxies::generate(
                &args[2],
                Path::new(&args[3]),
                args[4].parse().expect("MiB"),
            );
            println!(
                "generated {} ({}): {bytes} bytes, {lines} lines, {records} records",
                args[3], args[2]
            );
        }
        Some("needle") if args.len() == 3 => println!("{}", common::proxies::needle(&args[2])),
        Some("wiretrail") if args.len() == 3 => {
            // WIRETRAIL_LOG_THREADS sets the workers; LOGBENCH_CHUNK_MIB the chunk size.
            let mut opts = ReadOptions::default();
            if let Some(mib) = std::env::var("LOGBENCH_CHUNK_MIB")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                opts.chunk_bytes = mib << 20;
            }
            let t = Instant::now();
            let c = common::wiretrail(Path::new(&args[2]), opts);
            report("wiretrail", c, t);
        }
        Some("regex") if args.len() == 3 => {
            let t = Instant::now();
            let c = common::regex_baseline(Path::new(&args[2]));
            report("regex", c, t);
        }
        _ => {
            eprintln!(
                "usage: logbench gen FILE MIB | gen-proxy FORMAT FILE MIB | needle FORMAT | wiretrail FILE | regex FILE"
            );
            std::process::exit(2);
        }
    }
}

fn report(mode: &str, c: common::Counts, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    println!(
        "{mode} bytes={} lines={} errors={} seconds={s:.3} MB/s={:.1} lines/s={:.0}",
        c.bytes,
        c.lines,
        c.errors,
        c.bytes as f64 / 1e6 / s,
        c.lines as f64 / s
    );
}
