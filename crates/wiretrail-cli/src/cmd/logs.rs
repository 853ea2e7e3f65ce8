//! `wiretrail logs`.

use super::CmdResult;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {}

pub fn run(_args: LogsArgs) -> CmdResult {
    super::not_built("logs")
}
