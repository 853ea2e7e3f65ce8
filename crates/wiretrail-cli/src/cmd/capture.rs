//! `wiretrail capture index|extract`.

use super::CmdResult;

#[derive(Debug, clap::Subcommand)]
pub enum CaptureCmd {
    /// Build or refresh the catalog of each node's rotated captures.
    Index {},
    /// Extract flows from every node's captures into one pcapng.
    Extract {},
}

pub fn run(cmd: CaptureCmd) -> CmdResult {
    match cmd {
        CaptureCmd::Index {} => super::not_built("capture index"),
        CaptureCmd::Extract {} => super::not_built("capture extract"),
    }
}
