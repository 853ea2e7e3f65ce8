//! The shared capture corpus (`../shared/corpus` beside the repository), for
//! the tests that read it.

use std::path::{Path, PathBuf};

/// The corpus, if `need` (a path inside it) is there. Otherwise the test
/// skips on a developer's machine and fails in CI
/// ([`wiretrail_testsupport::require_or_skip`]): the caller returns on `None`.
#[track_caller]
pub fn corpus_with(need: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if dir.join(need).exists() {
        return Some(dir);
    }
    wiretrail_testsupport::require_or_skip(&format!(
        "the capture corpus ({} not found)",
        dir.join(need).display()
    ));
    None
}
