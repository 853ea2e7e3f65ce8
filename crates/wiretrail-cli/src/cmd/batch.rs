//! `wiretrail batch`.

use super::CmdResult;

#[derive(Debug, clap::Args)]
pub struct BatchArgs {}

pub fn run(_args: BatchArgs) -> CmdResult {
    super::not_built("batch")
}
