//! `wiretrail logs`: proxy error records from files, directories or stdin.

use super::{CmdResult, EXIT_FAILED, EXIT_FOUND, EXIT_NONE};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use wiretrail_logs::{LogReader, ParseConfig, ProxyError, ReadStats, Source};

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

pub fn run(args: LogsArgs) -> CmdResult {
    let mut cfg = ParseConfig::new(args.tz);
    cfg.year = args.year;
    let mut reader = if args.paths.is_empty() {
        LogReader::stdin(cfg)
    } else {
        LogReader::open(&args.paths, cfg)?
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n = 0u64;
    loop {
        // Flush whenever we would wait: `journalctl -f | wiretrail logs -`
        // shows each error as it comes, a big file is still written in blocks.
        if !reader.ready() {
            if let Err(e) = out.flush() {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(ExitCode::from(EXIT_FOUND));
                }
                return Err(e.into());
            }
        }
        let Some(rec) = reader.next() else { break };
        n += 1;
        let written = match args.format {
            OutFormat::Json => serde_json::to_writer(&mut out, &rec)
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n")),
            OutFormat::Text => writeln!(out, "{}", text_line(&rec)),
        };
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::from(EXIT_FOUND));
            }
            return Err(e.into());
        }
    }
    out.flush()?;
    let stats = reader.stats();
    eprint!("{}", summary(stats));
    if !stats.failures.is_empty() {
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    Ok(ExitCode::from(if n > 0 { EXIT_FOUND } else { EXIT_NONE }))
}

/// `2023-05-05T09:33:07Z reset read ip-proxy:51392 -> ip-backend:80 (read: ...) host proxy[812] file:1`
fn text_line(r: &ProxyError) -> String {
    let ts = r
        .timestamp
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let who = match (&r.host, &r.process, r.pid) {
        (h, Some(p), Some(pid)) => format!("{} {p}[{pid}]", h.as_deref().unwrap_or("-")),
        (h, Some(p), None) => format!("{} {p}", h.as_deref().unwrap_or("-")),
        (h, None, _) => h.as_deref().unwrap_or("-").to_owned(),
    };
    let src = match &r.source {
        Source::File { file, line } => format!("{file}:{line}"),
        Source::Stdin { line } => format!("<stdin>:{line}"),
        Source::Elasticsearch { index, id, .. } => format!("{index}/{id}"),
    };
    format!(
        "{ts}{} {:<11} {:<8} {} -> {}  {}  [{who}] {src}",
        if r.time_zone_assumed { "~" } else { "" },
        r.class.as_str(),
        dash(&r.op),
        dash(&r.local),
        dash(&r.remote),
        r.message,
    )
}

fn summary(s: &ReadStats) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "wiretrail logs: {} lines in {} input(s), {} bytes; {} proxy errors",
        s.lines, s.files, s.bytes, s.proxy_errors
    );
    for (class, n) in &s.by_class {
        let _ = writeln!(o, "  class {:<12} {n}", class.as_str());
    }
    let mut pairs: Vec<_> = s.by_pair.iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for ((proxy, backend), n) in pairs.iter().take(20) {
        let _ = writeln!(o, "  pair  {proxy} -> {backend}  {n}");
    }
    if pairs.len() > 20 {
        let _ = writeln!(o, "  ... {} more pairs", pairs.len() - 20);
    }
    let _ = writeln!(o, "  unparsed proxy error lines: {}", s.unparsed);
    for sample in &s.samples {
        let _ = writeln!(o, "    {sample}");
    }
    for f in &s.failures {
        let _ = writeln!(o, "  input failed: {f}");
    }
    for g in &s.growing {
        let _ = writeln!(o, "  note: {g}");
    }
    o
}
