//! `wiretrail`: the binary. Thin: argument parsing and exit codes here, the
//! work in the library crates. Each subcommand lives in `cmd/<name>.rs`.

// The doc comments of this crate are clap's `--help` text, written for a
// terminal (`<out>/report.html`, `ssh://[user@]host`), not Markdown: rustdoc
// must not read them as HTML tags or intra-doc links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod cmd;

/// The log reader allocates records on its worker threads and the caller
/// frees them on its own; glibc malloc serialises that on its arena locks
/// (35 % of the time on an error-heavy log), mimalloc does not.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// From a 502 log line to the packets on every node, and what broke.
///
/// wiretrail reads Go reverse-proxy error lines (`http: proxy error: ...`),
/// finds the rotated packet captures of every node that cover each error,
/// rebuilds each failing connection as every node saw it on one clock, and
/// names the cause with evidence.
#[derive(Debug, Parser)]
#[command(
    name = "wiretrail",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Less output: only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Diagnostics on stderr as text or JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = cmd::LogFormat::Text)]
    log_format: cmd::LogFormat,
    /// Colour on stdout and stderr: auto (each stream when it is a terminal
    /// and NO_COLOR is unset), always, never. Default: the pipeline's
    /// `outputs.color` for the report, auto for diagnostics.
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    color: Option<cmd::ColorWhen>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse proxy error lines from files, directories or stdin.
    Logs(cmd::logs::LogsArgs),
    /// Index rotated captures and extract flows from them.
    #[command(subcommand)]
    Capture(cmd::capture::CaptureCmd),
    /// Investigate the errors of a time window (after an alert).
    Investigate(cmd::investigate::InvestigateArgs),
    /// Investigate a whole day (or range), resumable, with progress.
    Batch(cmd::batch::BatchArgs),
    /// Receive alert webhooks and investigate them.
    #[cfg(feature = "serve")]
    Serve(cmd::serve::ServeArgs),
    /// Receive alert webhooks (not in this build: no `serve` feature).
    #[cfg(not(feature = "serve"))]
    Serve(cmd::without::Missing),
    /// Elasticsearch: fetch errors, set up templates, publish reports.
    #[cfg(feature = "elasticsearch")]
    #[command(subcommand)]
    Es(cmd::es::EsCmd),
    /// Elasticsearch (not in this build: no `elasticsearch` feature).
    #[cfg(not(feature = "elasticsearch"))]
    Es(cmd::without::Missing),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = cli.color.map(cmd::ColorWhen::choice);
    cmd::init_tracing(
        cmd::Verbosity::from_flags(cli.quiet, cli.verbose),
        cli.log_format,
        color,
    );
    let result = match cli.command {
        Command::Logs(a) => cmd::logs::run(a),
        Command::Capture(c) => cmd::capture::run(c),
        Command::Investigate(a) => cmd::investigate::run(a, color),
        Command::Batch(a) => cmd::batch::run(a),
        #[cfg(feature = "serve")]
        Command::Serve(a) => cmd::serve::run(a),
        #[cfg(not(feature = "serve"))]
        Command::Serve(_) => cmd::without::run("serve", "serve"),
        #[cfg(feature = "elasticsearch")]
        Command::Es(c) => cmd::es::run(c),
        #[cfg(not(feature = "elasticsearch"))]
        Command::Es(_) => cmd::without::run("es", "elasticsearch"),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "wiretrail",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // What failed, then why, cause by cause.
            eprint!("{}", cmd::error_report(&*e));
            ExitCode::from(cmd::EXIT_FAILED)
        }
    }
}
