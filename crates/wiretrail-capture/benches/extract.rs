//! Extraction speed, as ratios against peers timed in the same run.
//!
//! ```text
//! cargo bench -p wiretrail-capture
//! WIRETRAIL_BENCH_SIZE=1G WIRETRAIL_BENCH_REPS=3 cargo bench -p wiretrail-capture
//! ```
//!
//! On one node's capture generated for this run by the `gencap` example
//! (default 256 MiB of concurrent HTTP-over-TCP connections, in a temporary
//! directory removed at the end), it times, best of `REPS` after a warm-up:
//! a plain read loop (the ceiling), a record walk with `pcap-parser` (the
//! crate wiretrail frames records with) that decodes nothing, wiretrail's
//! extraction of 1 flow and of 100 flows in one pass (and the latter on one
//! thread), and, when `tcpdump` is on `PATH`, `tcpdump -r F -w /dev/null`
//! with the equivalent BPF (1 and 100 terms, the filter the `capbench`
//! example's `--print-bpf` prints, as `scripts/bench-capture.sh` uses).
//!
//! Machines are noisy, so absolute times mean little: what counts are the
//! ratios, all taken in this one process. Wall time is the best run; CPU
//! time (user + sys, all threads, children included for tcpdump; the mean
//! over the runs) is printed beside it: on a shared, loaded machine it is
//! the steadier figure.
//!
//! The `gencap` example's generator is linked in (`#[path]`), not run as a
//! process.
//!
//! Run without `--bench` (as `cargo test --benches` does) it only says so:
//! speed is never asserted in tests.

use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use pcap_parser::nom;
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Detail, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions};
use wiretrail_capture::{FlowQuery, Timestamp};

#[path = "../examples/gencap.rs"]
#[allow(dead_code)] // its `main` and argument parsing are for the example
mod gencap;

const NODE: &str = "be1";
const SEED: u64 = 7;
/// Flows in the many-flow case (the script's and the design's figure).
const MANY: usize = 100;

type Result<T> = std::result::Result<T, String>;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("extract bench: timing only under `cargo bench` (skipped in test mode)");
        return;
    }
    if let Err(e) = run() {
        eprintln!("extract bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let size = std::env::var("WIRETRAIL_BENCH_SIZE").unwrap_or_else(|_| "256M".into());
    let reps: usize = match std::env::var("WIRETRAIL_BENCH_REPS") {
        Ok(v) => v
            .parse()
            .map_err(|e| format!("WIRETRAIL_BENCH_REPS={v:?}: {e}"))?,
        Err(_) => 5,
    };
    let reps = reps.max(1);
    let tmp = tempfile::Builder::new()
        .prefix("wiretrail-bench-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let out = tmp.path();

    // The capture: one node, one hour in one rotation (plus the short
    // rotation gencap writes for connections still open at the end).
    let t = Instant::now();
    gencap::run(&gencap::Args {
        out: out.to_path_buf(),
        nodes: 1,
        bytes: gencap::parse_size(&size).map_err(|e| format!("WIRETRAIL_BENCH_SIZE: {e}"))?,
        duration_s: 3600,
        files: 1,
        seed: SEED,
        numbered: false,
    })
    .map_err(|e| format!("generating the capture: {e}"))?;
    let gen_secs = t.elapsed().as_secs_f64();
    let node_dir = out.join(NODE);
    let files = pcap_files(&node_dir)?;
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let flows_tsv = out.join("flows.tsv");
    let flows = read_flows(&flows_tsv)?;

    // The catalog is built once (indexing reads every packet: not timed as
    // extraction, reported on its own).
    let t = Instant::now();
    let spec = NodeSpec::new(NODE, [node_dir.to_string_lossy().into_owned()]);
    // No cache: the files live only for this run. Indexed whole, as a
    // warm catalog is: the extraction is what is timed.
    let opts = CatalogOptions {
        use_cache: false,
        detail: Detail::Full,
        ..CatalogOptions::default()
    };
    let cat = Catalog::build_with(&[spec], &opts).map_err(|e| e.to_string())?;
    let cat_secs = t.elapsed().as_secs_f64();
    let packets = cat.node(NODE).map_or(0, |n| n.packets());

    println!();
    println!(
        "capture: {} file(s), {:.1} MB, {packets} packets, {} distinct flows; gencap --bytes {size} --seed {SEED} took {gen_secs:.1} s",
        files.len(),
        total as f64 / 1e6,
        flows.len()
    );
    println!("catalog: indexed in {cat_secs:.2} s (not part of the extraction times)");
    println!(
        "machine: {} cores, load average {}; wall: best of {reps} after one warm-up, cpu: mean",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    );
    println!();

    let one = pick(&flows, 1)?;
    let many = pick(&flows, MANY)?;
    let mut rows = Vec::new();

    let read = best(reps, || read_all(&files))?;
    rows.push(Row::new(
        "read loop, 1 MiB buffer (ceiling)",
        read,
        None,
        None,
    ));
    let walk = best(reps, || walk_all(&files))?;
    rows.push(Row::new(
        "pcap-parser record walk, 1 thread",
        walk,
        Some(walk.out),
        Some(packets),
    ));

    let ex = |picked: &[Flow], threads: Option<usize>| {
        let queries = queries(picked);
        let opts = ExtractOptions {
            threads,
            ..ExtractOptions::default()
        };
        best(reps, || {
            let ex = extract(&cat, &queries, &opts);
            if let Some(p) = ex.problems.first() {
                return Err(format!("extraction problem: {p}"));
            }
            Ok(ex.stats.iter().map(|s| s.matched).sum())
        })
    };
    let w1 = ex(&one, None)?;
    rows.push(Row::new(
        "wiretrail extract, 1 flow",
        w1,
        Some(w1.out),
        Some(expected(&one)),
    ));
    let w100 = ex(&many, None)?;
    rows.push(Row::new(
        "wiretrail extract, 100 flows, one pass",
        w100,
        Some(w100.out),
        Some(expected(&many)),
    ));
    let w100_1t = ex(&many, Some(1))?;
    rows.push(Row::new(
        "wiretrail extract, 100 flows, 1 thread",
        w100_1t,
        Some(w100_1t.out),
        Some(expected(&many)),
    ));

    let tcpdump = if on_path("tcpdump") {
        let (bpf1, bpf100) = (bpf(&one), bpf(&many));
        let t1 = best(reps, || tcpdump_all(&files, &bpf1, None))?;
        rows.push(Row::new(
            "tcpdump -w /dev/null, 1-term BPF",
            t1,
            Some(tcpdump_count(&files, &bpf1, out)?),
            Some(expected(&one)),
        ));
        let t100 = best(reps, || tcpdump_all(&files, &bpf100, None))?;
        rows.push(Row::new(
            "tcpdump -w /dev/null, 100-term BPF",
            t100,
            Some(tcpdump_count(&files, &bpf100, out)?),
            Some(expected(&many)),
        ));
        Some((t1, t100))
    } else {
        None
    };

    println!(
        "{:<40} {:>8} {:>8} {:>7} {:>10} {:>10}",
        "what", "wall_s", "cpu_s", "MB/s", "packets", "expected"
    );
    for r in &rows {
        r.print(total);
    }
    println!();
    println!("ratios of times, wall (cpu) [target from scripts/bench-capture.sh]:");
    if let Some((t1, t100)) = tcpdump {
        ratio("tcpdump 1 term / wiretrail 1 flow", t1, w1, "[>= 1]");
        ratio(
            "tcpdump 100 terms / wiretrail 100 flows",
            t100,
            w100,
            "[>= 2]",
        );
    } else {
        println!("  (tcpdump not on PATH: no tcpdump comparison)");
    }
    ratio("wiretrail 100 flows / pcap-parser walk", w100, walk, "");
    ratio("wiretrail 100 flows 1 thread / walk", w100_1t, walk, "");
    ratio("wiretrail 100 flows / read loop", w100, read, "[<= 3]");
    ratio("wiretrail 1 flow / read loop", w1, read, "");
    ratio("pcap-parser walk / read loop", walk, read, "");
    Ok(())
}

/// The BPF `capbench --print-bpf` prints for these flows.
fn bpf(flows: &[Flow]) -> String {
    let terms: Vec<String> = flows
        .iter()
        .map(|f| {
            format!(
                "(host {} and host {} and port {} and port {})",
                f.proxy.ip(),
                f.backend.ip(),
                f.proxy.port(),
                f.backend.port()
            )
        })
        .collect();
    format!("tcp and ({})", terms.join(" or "))
}

/// The node's capture files, in name (= time) order.
fn pcap_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: gencap wrote no pcap file", dir.display()));
    }
    Ok(files)
}

/// A flow of gencap's `flows.tsv`, with the packets gencap wrote for it.
#[derive(Debug, Clone, Copy)]
struct Flow {
    proxy: SocketAddr,
    backend: SocketAddr,
    packets: u64,
}

/// The node's flows, one per distinct 4-tuple in first-seen order (packets
/// summed over reuses of the tuple), as capbench picks them.
fn read_flows(path: &Path) -> Result<Vec<Flow>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut flows: Vec<Flow> = Vec::new();
    let mut at = std::collections::HashMap::new();
    for (n, l) in text.lines().enumerate().skip(1) {
        let bad = |what: &str| format!("{}:{}: {what}: {l:?}", path.display(), n + 1);
        let c: Vec<&str> = l.split('\t').collect();
        if c.len() < 6 {
            return Err(bad("expected 6 columns"));
        }
        if c[0] != NODE {
            continue;
        }
        let proxy: SocketAddr = c[1].parse().map_err(|_| bad("proxy socket"))?;
        let backend: SocketAddr = c[2].parse().map_err(|_| bad("backend socket"))?;
        let packets: u64 = c[5].parse().map_err(|_| bad("packet count"))?;
        let i = *at.entry((proxy, backend)).or_insert_with(|| {
            flows.push(Flow {
                proxy,
                backend,
                packets: 0,
            });
            flows.len() - 1
        });
        flows[i].packets += packets;
    }
    Ok(flows)
}

/// `count` flows spread evenly over the list: capbench's choice, so that
/// its `--print-bpf` names the same flows (checked by the packet counts).
fn pick(flows: &[Flow], count: usize) -> Result<Vec<Flow>> {
    if flows.len() < count {
        return Err(format!(
            "only {} flows generated, {count} needed",
            flows.len()
        ));
    }
    let step = flows.len() / count;
    Ok((0..count).map(|i| flows[i * step]).collect())
}

fn queries(flows: &[Flow]) -> Vec<FlowQuery> {
    flows
        .iter()
        .map(|f| {
            FlowQuery::to_port(
                f.proxy.port(),
                Some(f.proxy.ip()),
                Some(f.backend),
                Timestamp::from_nanos(i64::MIN / 2),
                Timestamp::from_nanos(i64::MAX / 2),
            )
        })
        .collect()
}

fn expected(flows: &[Flow]) -> u64 {
    flows.iter().map(|f| f.packets).sum()
}

/// One timed measurement: the best wall time over the runs, the mean CPU
/// time (the kernel counts CPU in 10 ms ticks, too coarse for one run of a
/// few tens of ms: the mean over all runs is the finer figure), and what the
/// run returned (the same every run, or the measurement fails).
#[derive(Debug, Clone, Copy)]
struct Timed {
    wall: f64,
    cpu: Option<f64>,
    out: u64,
}

/// Runs `f` once to warm up, then `reps` times.
fn best(reps: usize, mut f: impl FnMut() -> Result<u64>) -> Result<Timed> {
    let out = f()?;
    let mut wall = f64::INFINITY;
    let c0 = cpu_now();
    for _ in 0..reps {
        let t = Instant::now();
        let o = std::hint::black_box(f()?);
        wall = wall.min(t.elapsed().as_secs_f64());
        if o != out {
            return Err(format!("runs disagree: {out} then {o}"));
        }
    }
    let cpu = c0.zip(cpu_now()).map(|(a, z)| (z - a) / reps as f64);
    Ok(Timed { wall, cpu, out })
}

/// CPU seconds of this process (all threads) and of its waited-for children
/// (tcpdump), from `/proc/self/stat`: utime + stime + cutime + cstime, in
/// USER_HZ ticks (100 per second on Linux). `None` elsewhere.
fn cpu_now() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at
    // field 3 (state); utime..cstime are fields 14..=17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let ticks: u64 = rest
        .split(' ')
        .skip(11)
        .take(4)
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(ticks as f64 / 100.0)
}

/// Every byte of the files through a plain 1 MiB read loop: what `cat`
/// does, the ceiling for anything that reads the files.
fn read_all(files: &[PathBuf]) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for path in files {
        let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += std::hint::black_box(&buf[..n]).len() as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
    }
    Ok(total)
}

/// Every record of the files framed by `pcap-parser` (header and record
/// headers only; no packet decoding), read through a 4 MiB buffer, on one
/// thread. Returns the number of records.
fn walk_all(files: &[PathBuf]) -> Result<u64> {
    let mut records = 0u64;
    for path in files {
        records += walk(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(records)
}

fn walk(path: &Path) -> std::result::Result<u64, String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4 << 20];
    // buf[start..end] is unparsed; `base` is the file offset of buf[0].
    let (mut start, mut end, mut base) = (0usize, 0usize, 0u64);
    let mut header = false;
    let mut records = 0u64;
    let mut caplens = 0u64;
    loop {
        if start == 0 && end == buf.len() {
            // A record larger than the buffer: grow it.
            buf.resize(buf.len() * 2, 0);
        }
        buf.copy_within(start..end, 0);
        base += start as u64;
        end -= start;
        start = 0;
        let n = match f.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            break;
        }
        end += n;
        if !header {
            match pcap_parser::parse_pcap_header(&buf[..end]) {
                Ok((rest, h)) if !h.is_bigendian() => {
                    start = end - rest.len();
                    header = true;
                }
                Ok(_) => return Err("big-endian pcap: gencap writes little-endian".into()),
                Err(nom::Err::Incomplete(_)) => continue,
                Err(e) => return Err(format!("offset 0: pcap header: {e:?}")),
            }
        }
        loop {
            match pcap_parser::parse_pcap_frame(&buf[start..end]) {
                Ok((rest, blk)) => {
                    records += 1;
                    caplens += u64::from(blk.caplen);
                    start = end - rest.len();
                }
                Err(nom::Err::Incomplete(_)) => break,
                Err(e) => {
                    return Err(format!(
                        "offset {}: pcap record: {e:?}",
                        base + start as u64
                    ))
                }
            }
        }
    }
    if start != end || !header {
        return Err(format!(
            "offset {}: {} bytes of a cut-off record (or header) at the end",
            base + start as u64,
            end - start
        ));
    }
    std::hint::black_box(caplens);
    Ok(records)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// `tcpdump -r F -w W BPF` over every file (W is /dev/null when timing).
fn tcpdump_all(files: &[PathBuf], bpf: &str, write: Option<&Path>) -> Result<u64> {
    for (i, f) in files.iter().enumerate() {
        let w = match write {
            Some(dir) => dir.join(format!("tcpdump-{i}.pcap")),
            None => PathBuf::from("/dev/null"),
        };
        let mut c = Command::new("tcpdump");
        c.arg("-r").arg(f).arg("-w").arg(w).arg(bpf);
        run_quiet(&mut c)?;
    }
    Ok(0)
}

/// The packets tcpdump selects with `bpf`, counted from its output files
/// (not timed): they must equal wiretrail's matches for a fair comparison.
fn tcpdump_count(files: &[PathBuf], bpf: &str, dir: &Path) -> Result<u64> {
    tcpdump_all(files, bpf, Some(dir))?;
    let outs: Vec<PathBuf> = (0..files.len())
        .map(|i| dir.join(format!("tcpdump-{i}.pcap")))
        .collect();
    let n = walk_all(&outs)?;
    for o in &outs {
        let _ = std::fs::remove_file(o);
    }
    Ok(n)
}

fn run_quiet(c: &mut Command) -> Result<()> {
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{c:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

#[derive(Debug)]
/// A line of the table: the packets the tool selected, and how many
/// gencap wrote for the flows asked (the catalog's count for the walk).
struct Row {
    what: &'static str,
    t: Timed,
    packets: Option<u64>,
    expected: Option<u64>,
}

impl Row {
    fn new(what: &'static str, t: Timed, packets: Option<u64>, expected: Option<u64>) -> Row {
        Row {
            what,
            t,
            packets,
            expected,
        }
    }

    fn print(&self, bytes: u64) {
        let cpu = self.t.cpu.map_or("-".into(), |c| format!("{c:.3}"));
        let got = self.packets.map_or(String::new(), |p| p.to_string());
        let want = match (self.packets, self.expected) {
            (Some(p), Some(e)) if p != e => format!("{e} DIFFERS"),
            (_, Some(e)) => e.to_string(),
            (_, None) => String::new(),
        };
        println!(
            "{:<40} {:>8.3} {:>8} {:>7.0} {:>10} {:>10}",
            self.what,
            self.t.wall,
            cpu,
            bytes as f64 / self.t.wall / 1e6,
            got,
            want
        );
    }
}

/// Prints `a / b` for wall and CPU times.
fn ratio(what: &str, a: Timed, b: Timed, target: &str) {
    let cpu = match (a.cpu, b.cpu) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
        _ => "-".into(),
    };
    println!("  {what:<42} {:>6.2} ({cpu})  {target}", a.wall / b.wall);
}
