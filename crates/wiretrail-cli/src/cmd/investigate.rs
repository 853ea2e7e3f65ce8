//! `wiretrail investigate`.

use super::CmdResult;

#[derive(Debug, clap::Args)]
pub struct InvestigateArgs {}

pub fn run(_args: InvestigateArgs) -> CmdResult {
    super::not_built("investigate")
}
