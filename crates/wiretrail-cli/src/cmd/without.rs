//! Subcommands of a build without their Cargo feature: still listed, so
//! `wiretrail es ...` says what is missing instead of "unrecognized
//! subcommand".

use super::CmdResult;

/// The arguments of a subcommand this build does not have, taken as they
/// come (they are not read).
#[derive(Debug, Clone, clap::Args)]
pub struct Missing {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// The error for `wiretrail <command>` built without `feature`.
pub fn run(command: &str, feature: &str) -> CmdResult {
    Err(format!(
        "`wiretrail {command}` is not in this build: it was built without the `{feature}` feature (rebuild with `cargo build --features {feature}`, or with the default features)"
    )
    .into())
}
