//! Shared by the `reader` bench and the `logbench` example: the generated
//! log and the contenders, each returning what it counted.
#![allow(dead_code)] // each includer uses a part

pub mod proxies;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use wiretrail_logs::reader::ReadOptions;
use wiretrail_logs::{LogReader, ParseConfig};

/// What a contender read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub bytes: u64,
    pub lines: u64,
    pub errors: u64,
}

/// SplitMix64: deterministic, no dependency.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TAILS: [&str; 6] = [
    "read: connection reset by peer",
    "write: broken pipe",
    "use of closed network connection",
    "i/o timeout",
    "read: connection reset by peer",
    "EOF",
];
const PATHS: [&str; 5] = [
    "/api/v1/items",
    "/healthz",
    "/api/v2/orders/12345/lines",
    "/static/app.js",
    "/metrics",
];

/// Write a log of `mib` MiB: ~1 % proxy errors, sections of 50 000 lines in
/// six envelopes in turn.
pub fn generate(file: &Path, mib: u64) -> Counts {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file).expect("create"));
    let mut rng = Rng(42);
    let target = mib << 20;
    let mut written = 0u64;
    let mut errors = 0u64;
    let mut lines = 0u64;
    let mut secs = 0u64;
    let mut line = String::with_capacity(512);
    while written < target {
        line.clear();
        secs += rng.below(2);
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let us = rng.below(1_000_000);
        let is_err = rng.below(100) == 0;
        let body = if is_err {
            errors += 1;
            let port = 32768 + rng.below(28000);
            let tail = TAILS[rng.below(TAILS.len() as u64) as usize];
            let op = if tail.starts_with("write") || tail.starts_with("use") {
                "readfrom"
            } else {
                "read"
            };
            if tail == "EOF" {
                format!("2023/05/05 {h:02}:{m:02}:{s:02}.{us:06} http: proxy error: EOF")
            } else {
                format!("2023/05/05 {h:02}:{m:02}:{s:02}.{us:06} http: proxy error: {op} tcp 10.1.1.5:{port}->10.2.2.{}:8080: {tail}", rng.below(3) + 7)
            }
        } else {
            let p = PATHS[rng.below(PATHS.len() as u64) as usize];
            format!("2023/05/05 {h:02}:{m:02}:{s:02}.{us:06} 10.0.{}.{}:{} \"GET {p} HTTP/1.1\" 200 {} {}us", rng.below(256), rng.below(256), 1024 + rng.below(60000), rng.below(100_000), rng.below(90_000))
        };
        use std::fmt::Write as _;
        let json_body = body.replace('"', "\\\"");
        // Sections of 50k lines, one envelope each (logs of several shippers
        // concatenated), rotating through all six.
        match (lines / 50_000) % 6 {
            0 => write!(line, "May 05 {h:02}:{m:02}:{s:02} gw1 proxy[812]: {body}"),
            1 => write!(line, "{body}"),
            2 => write!(line, "2023-05-05T{h:02}:{m:02}:{s:02}.{us:06}123Z stderr F {body}"),
            3 => write!(line, "{{\"log\":\"{json_body}\\n\",\"stream\":\"stderr\",\"time\":\"2023-05-05T{h:02}:{m:02}:{s:02}.{us:06}123Z\"}}"),
            4 => write!(line, "<134>1 2023-05-05T{h:02}:{m:02}:{s:02}.{us:06}+08:00 gw1 proxy 812 - - {body}"),
            _ => write!(line, "{{\"__REALTIME_TIMESTAMP\":\"{}\",\"_HOSTNAME\":\"gw1\",\"SYSLOG_IDENTIFIER\":\"proxy\",\"_PID\":\"812\",\"MESSAGE\":\"{json_body}\"}}", 1_683_244_800_000_000 + (secs % 86_400) * 1_000_000 + us),
        }
        .expect("format");
        line.push('\n');
        out.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        lines += 1;
    }
    out.flush().expect("flush");
    Counts {
        bytes: written,
        lines,
        errors,
    }
}

/// What a first version would do: every line through one regex with captures.
pub fn regex_baseline(file: &Path) -> Counts {
    let re = regex::Regex::new(
        r"(?:(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?) )?http: proxy error: (?:(\w+) (tcp\d?) (?:(\S+)->)?(\S+): )?(?:(\w+) tcp\S* \S+: )?(?:(\w+): )?(.*)",
    )
    .expect("regex");
    let mut rd = BufReader::with_capacity(1 << 20, std::fs::File::open(file).expect("open"));
    let mut line = Vec::with_capacity(1024);
    let (mut bytes, mut lines, mut errors) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        let n = rd.read_until(b'\n', &mut line).expect("read");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += 1;
        let text = String::from_utf8_lossy(&line);
        if let Some(c) = re.captures(&text) {
            errors += 1;
            std::hint::black_box((c.get(1), c.get(2), c.get(4), c.get(5), c.get(7), c.get(8)));
        }
    }
    Counts {
        bytes,
        lines,
        errors,
    }
}

/// wiretrail's reader over `file`, every record taken.
pub fn wiretrail(file: &Path, opts: ReadOptions) -> Counts {
    let mut r = LogReader::open_with(
        &[file.to_path_buf()],
        ParseConfig::new(Some(chrono_tz::UTC)),
        opts,
    )
    .expect("open");
    let mut n = 0u64;
    for e in r.by_ref() {
        n += 1;
        std::hint::black_box(&e);
    }
    let s = r.stats();
    assert_eq!(n, s.proxy_errors);
    assert_eq!(s.unparsed, 0, "{:?}", s.problems);
    Counts {
        bytes: s.bytes,
        lines: s.lines,
        errors: n,
    }
}

/// The fastest of `runs` runs of `f`, and what it counted.
pub fn best(runs: usize, mut f: impl FnMut() -> Counts) -> (Duration, Counts) {
    let mut best = Duration::MAX;
    let mut counts = None;
    for _ in 0..runs {
        let t = Instant::now();
        let c = f();
        best = best.min(t.elapsed());
        counts = Some(c);
    }
    (best, counts.expect("at least one run"))
}
