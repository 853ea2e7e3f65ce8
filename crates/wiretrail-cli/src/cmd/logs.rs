//! `wiretrail logs`: proxy error records from files, directories or stdin.

use super::{CmdResult, EXIT_FAILED, EXIT_FOUND, EXIT_NONE};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use wiretrail_logs::reader::{ReadOptions, ReadProblemKind, Rendered};
use wiretrail_logs::render::Format;
use wiretrail_logs::text::visible;
use wiretrail_logs::{ParseConfig, ReadStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// One aligned line per record.
    Text,
    /// One JSON record per line (the documented `ProxyError` schema).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Log files (plain, .gz, .zst) or directories (read recursively in name
    /// order); none or `-` reads stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// IANA zone of stamps that print none (Go `log`, journald short,
    /// RFC 3164), e.g. `Asia/Shanghai`, `UTC`. Default: the machine's zone,
    /// with a warning.
    #[arg(long, value_name = "ZONE", value_parser = parse_tz)]
    pub tz: Option<chrono_tz::Tz>,
    /// Year of year-less stamps. Default: the year that puts each stamp
    /// closest before the file's modification time (now for stdin).
    #[arg(long, value_name = "Y")]
    pub year: Option<i32>,
    /// Output records as text or JSON lines.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

fn parse_tz(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("unknown IANA time zone {s:?} (e.g. UTC, Europe/Berlin, Asia/Shanghai)")
    })
}

/// Bytes gathered before a write to stdout.
const OUT_BUF: usize = 1 << 20;

pub fn run(args: LogsArgs) -> CmdResult {
    let mut cfg = ParseConfig::new(args.tz);
    cfg.year = args.year;
    let format = match args.format {
        OutFormat::Json => Format::Json,
        OutFormat::Text => Format::Text,
    };
    // The reader's workers render the records; here bytes are only copied.
    let mut reader = if args.paths.is_empty() {
        Rendered::stdin(cfg, format)
    } else {
        Rendered::open(&args.paths, cfg, ReadOptions::default(), format)?
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf: Vec<u8> = Vec::with_capacity(2 * OUT_BUF);
    let mut n = 0u64;
    loop {
        // Write whenever we would wait: `journalctl -f | wiretrail logs -`
        // shows each error as it comes, a big file is written in 1 MiB blocks.
        let waiting = !reader.ready();
        if waiting || buf.len() >= OUT_BUF {
            if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(ExitCode::from(EXIT_FOUND));
                }
                return Err(e.into());
            }
            buf.clear();
        }
        match reader.next_into(&mut buf) {
            Some(k) => n += k,
            None => break,
        }
    }
    if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    let stats = reader.stats();
    eprint!("{}", summary(stats));
    if stats.failed() {
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    Ok(ExitCode::from(if n > 0 { EXIT_FOUND } else { EXIT_NONE }))
}

/// The counts and problems, for stderr. Names and samples come from the
/// input: each line is neutralised like the records.
fn summary(s: &ReadStats) -> String {
    let mut o = String::new();
    let mut line = |text: String| {
        o.push_str(&visible(&text));
        o.push('\n');
    };
    line(format!(
        "wiretrail logs: {} lines in {} input(s), {} bytes; {} proxy errors",
        s.lines, s.files, s.bytes, s.proxy_errors
    ));
    for (class, n) in &s.by_class {
        line(format!("  class {:<12} {n}", class.as_str()));
    }
    let mut pairs: Vec<_> = s.by_pair.iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for ((proxy, backend), n) in pairs.iter().take(20) {
        line(format!("  pair  {proxy} -> {backend}  {n}"));
    }
    if pairs.len() > 20 {
        line(format!("  ... {} more pairs", pairs.len() - 20));
    }
    line(format!("  unparsed proxy error lines: {}", s.unparsed));
    if s.stamp_conflicts > 0 {
        line(format!(
            "  lines whose stamps disagree (the consistent one was used): {}",
            s.stamp_conflicts
        ));
    }
    for p in &s.problems {
        let what = match p.kind {
            ReadProblemKind::Unparsed | ReadProblemKind::StampConflict => "   ",
            ReadProblemKind::Failed => "  input failed:",
            ReadProblemKind::Growing => "  note:",
            ReadProblemKind::Skipped => "  skipped:",
        };
        line(format!("{what} {p}"));
    }
    o
}
