//! `wiretrail es fetch|setup|publish`.

use super::CmdResult;

#[derive(Debug, clap::Subcommand)]
pub enum EsCmd {
    /// Pull proxy errors from Elasticsearch as JSON lines.
    Fetch {},
    /// Install or check the index templates.
    Setup {},
    /// Publish a report's incidents and timeline events.
    Publish {},
}

pub fn run(cmd: EsCmd) -> CmdResult {
    match cmd {
        EsCmd::Fetch {} => super::not_built("es fetch"),
        EsCmd::Setup {} => super::not_built("es setup"),
        EsCmd::Publish {} => super::not_built("es publish"),
    }
}
