//! Generate a day of proxy logs and rotated captures for `wiretrail batch`
//! measurements: `cargo run -p wiretrail-pipeline --example gen_day -- DIR [MB_PER_FILE]`.
//!
//! Three backend nodes, hourly rotations (`cap-HH.pcap`, mtime at the end of
//! the hour), filler traffic, and two failing connections per hour (SYN,
//! request, RST from the owning backend) with their Go proxy error lines in
//! `logs/proxy.log`. Writes `DIR/pipeline.toml` to run it:
//! `wiretrail batch -p DIR/pipeline.toml --day 2023-05-05`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{write_pcap, Seg};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

const BASE: i64 = 1_683_244_800; // 2023-05-05T00:00:00Z
const S: i64 = 1_000_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: gen_day DIR [MB_PER_FILE]"));
    let mb: i64 = args
        .next()
        .map(|s| s.parse().expect("MB_PER_FILE"))
        .unwrap_or(2);
    let per_file = mb * 1_000_000 / 108; // 108-byte records (16 + 92)
    let nodes = ["backend-01", "backend-02", "backend-03"];
    let mut log = String::new();
    let mut total = 0u64;
    for (ni, node) in nodes.iter().enumerate() {
        let d = dir.join("captures").join(node);
        std::fs::create_dir_all(&d).unwrap();
        for h in 0..24i64 {
            let start = (BASE + h * 3600) * S;
            let mut segs: Vec<Seg> = (0..per_file)
                .map(|i| Seg {
                    ts_ns: start + i * (3600 * S / per_file),
                    src: ([10, 1, 1, 9], 20000 + (i % 2000) as u16),
                    dst: ([10, 0, 0, 7 + ni as u8], 443),
                    flags: 0x18,
                    seq: i as u32,
                    ack: 1,
                    payload: 38,
                    ip_id: i as u16,
                })
                .collect();
            // Two failing connections per hour, owned by node (h + k) % 3.
            for k in 0..2i64 {
                if (h + k) as usize % nodes.len() != ni {
                    continue;
                }
                let t = start + (600 + k * 1800) * S;
                let port = 30000 + (h * 10 + k) as u16;
                let p = ([10, 1, 1, 5], port);
                let b = ([10, 0, 0, 100], 80);
                let seg = |dt_ms: i64, src, dst, flags, seq, ack, payload| Seg {
                    ts_ns: t + dt_ms * 1_000_000,
                    src,
                    dst,
                    flags,
                    seq,
                    ack,
                    payload,
                    ip_id: 9,
                };
                segs.extend([
                    seg(-3000, p, b, 0x02, 100, 0, 0),
                    seg(-2999, b, p, 0x12, 900, 101, 0),
                    seg(-2998, p, b, 0x10, 101, 901, 0),
                    seg(-20, p, b, 0x18, 101, 901, 200),
                    seg(-10, b, p, 0x14, 901, 0, 0),
                ]);
            }
            segs.sort_by_key(|s| s.ts_ns);
            let path = d.join(format!("cap-{h:02}.pcap"));
            write_pcap(&path, &segs);
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(
                std::time::UNIX_EPOCH + Duration::from_secs((BASE + (h + 1) * 3600) as u64),
            )
            .unwrap();
            total += f.metadata().unwrap().len();
        }
    }
    for h in 0..24i64 {
        for k in 0..2i64 {
            let t = chrono::DateTime::from_timestamp(BASE + h * 3600 + 600 + k * 1800, 0).unwrap();
            let port = 30000 + (h * 10 + k) as u16;
            for j in 0..50 {
                let _ = writeln!(
                    log,
                    "{} request ok id={h}-{k}-{j}",
                    t.format("%Y/%m/%d %H:%M:%S")
                );
            }
            let _ = writeln!(
                log,
                "{} http: proxy error: read tcp 10.1.1.5:{port}->10.0.0.100:80: read: connection reset by peer",
                t.format("%Y/%m/%d %H:%M:%S")
            );
        }
    }
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/proxy.log"), log).unwrap();
    let mut toml = String::from("name = \"gen-day\"\ntz = \"UTC\"\ncache_dir = \"cache\"\n\n[logs]\nsource = \"files\"\npaths = [\"logs/proxy.log\"]\n");
    for n in nodes {
        let _ = write!(toml, "\n[[nodes]]\nname = \"{n}\"\ncaptures = \"captures/{n}\"\naliases = [\"10.0.0.100\"]\n");
    }
    toml.push_str("\n[batch]\nchunk = \"1h\"\nout_dir = \"out\"\n");
    std::fs::write(dir.join("pipeline.toml"), toml).unwrap();
    println!(
        "{} capture files, {:.1} MB, 48 proxy errors in {}",
        nodes.len() * 24,
        total as f64 / 1e6,
        dir.display()
    );
}
