//! One module per subcommand. Each exposes its clap `Args` and a `run`.

pub mod batch;
pub mod capture;
pub mod es;
pub mod investigate;
pub mod logs;
pub mod serve;

/// Exit status: incidents (or records) found.
pub const EXIT_FOUND: u8 = 0;
/// Exit status: the run worked and found nothing.
pub const EXIT_NONE: u8 = 1;
/// Exit status: the run failed.
pub const EXIT_FAILED: u8 = 2;

/// Errors from any subcommand, shown as `wiretrail: error: ...`.
pub type CmdResult = Result<std::process::ExitCode, Box<dyn std::error::Error + Send + Sync>>;

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
pub fn colour(choice: ColorChoice, stream: Stream) -> bool {
    use std::io::IsTerminal;
    let tty = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    choice.enabled(tty, std::env::var_os("NO_COLOR").as_deref())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Diagnostics on stderr, coloured only where `color` (default auto) says.
pub fn init_tracing(quiet: bool, verbose: u8, format: LogFormat, color: Option<ColorChoice>) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter =
        EnvFilter::try_from_env("WIRETRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = colour(color.unwrap_or(ColorChoice::Auto), Stream::Stderr);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
