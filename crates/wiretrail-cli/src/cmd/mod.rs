//! One module per subcommand. Each exposes its clap `Args` and a `run`:
//! flags are checked into typed values once, then one pipeline call does
//! the work.

pub mod batch;
pub mod capture;
#[cfg(feature = "elasticsearch")]
pub mod es;
pub mod investigate;
pub mod logs;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(not(all(feature = "serve", feature = "elasticsearch")))]
pub mod without;

/// Exit status: incidents (or records) found.
pub const EXIT_FOUND: u8 = 0;
/// Exit status: the run worked and found nothing.
pub const EXIT_NONE: u8 = 1;
/// Exit status: the run failed.
pub const EXIT_FAILED: u8 = 2;

/// Errors from any subcommand, shown as `wiretrail: error: ...` and one
/// `caused by:` line per cause ([`error_report`]).
pub type CmdResult = Result<std::process::ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// An error as `main` prints it: what failed, then each cause below it, one
/// per line (a cause a line above already ends with is not repeated).
pub fn error_report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut lines = wiretrail_pipeline::diag::error_chain(e).into_iter();
    let mut out = format!("wiretrail: error: {}\n", lines.next().unwrap_or_default());
    for cause in lines {
        out.push_str(&format!("  caused by: {cause}\n"));
    }
    out
}

/// A duration flag (`90s`, `5m`, `1h30m`, `2d`), checked by clap.
pub fn duration(s: &str) -> Result<wiretrail_pipeline::time::Duration, String> {
    wiretrail_pipeline::time::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    pub fn choice(self) -> ColorChoice {
        match self {
            ColorWhen::Auto => ColorChoice::Auto,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        }
    }
}

pub use wiretrail_pipeline::config::ColorChoice;

/// Whether to colour `stream`, by `choice`, the terminal and `NO_COLOR`.
pub fn colour(choice: ColorChoice, stream: Stream) -> Color {
    use std::io::IsTerminal;
    let tty = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    if choice.enabled(tty, std::env::var_os("NO_COLOR").as_deref()) {
        Color::Ansi
    } else {
        Color::Plain
    }
}

pub use wiretrail_pipeline::engine::Color;

/// How much the diagnostics on stderr say (`-q`, `-v`, `-vv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Warnings and errors.
    Normal,
    Debug,
    Trace,
}

impl Verbosity {
    /// From `--quiet` and the count of `-v`.
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Debug,
            (false, _) => Verbosity::Trace,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Diagnostics on stderr, coloured only where `color` (default auto) says.
pub fn init_tracing(v: Verbosity, format: LogFormat, color: Option<ColorChoice>) {
    use tracing_subscriber::EnvFilter;
    let default = match v {
        Verbosity::Quiet => "error",
        Verbosity::Normal => "warn",
        Verbosity::Debug => "debug",
        Verbosity::Trace => "trace",
    };
    let filter =
        EnvFilter::try_from_env("WIRETRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = colour(color.unwrap_or(ColorChoice::Auto), Stream::Stderr) == Color::Ansi;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
