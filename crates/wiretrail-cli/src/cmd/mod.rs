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

pub fn init_tracing(quiet: bool, verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter =
        EnvFilter::try_from_env("WIRETRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
