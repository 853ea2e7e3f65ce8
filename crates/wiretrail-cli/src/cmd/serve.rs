//! `wiretrail serve`.

use super::CmdResult;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> CmdResult {
    super::not_built("serve")
}
