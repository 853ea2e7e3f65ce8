//! What can go wrong fetching a node's captures.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("ssh {dest}: {what} failed (exit {code:?}): {stderr}")]
    Ssh {
        dest: String,
        what: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    #[error("local cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("listing of {0} is not understood: {1}")]
    Listing(String, String),
}
