//! Tests that need something the machine may lack (a tool, a server, a
//! corpus) skip on a developer's laptop and FAIL in CI (issue 14: a test
//! must not pass by skipping). CI is `CI=true` (or `1`) or
//! `WIRETRAIL_REQUIRE_ALL=1`; `.ci/run` sets both.
//!
//! ```no_run
//! # fn tshark_is_installed() -> bool { true }
//! if !tshark_is_installed() {
//!     wiretrail_testsupport::require_or_skip("tshark (apt-get install tshark)");
//!     return;
//! }
//! ```

/// Whether a missing requirement fails the test: `CI` is `true`/`1`, or
/// `WIRETRAIL_REQUIRE_ALL` is set to anything but `0`/empty.
pub fn require_all() -> bool {
    decide(
        std::env::var("CI").ok().as_deref(),
        std::env::var("WIRETRAIL_REQUIRE_ALL").ok().as_deref(),
    )
}

fn decide(ci: Option<&str>, require_all: Option<&str>) -> bool {
    let ci = ci.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let all = require_all.is_some_and(|v| !v.is_empty() && v != "0");
    ci || all
}

/// Call where a test cannot run because `what` is missing, then `return`.
/// On a developer's machine it prints `SKIPPING <test>: <what> is missing`
/// to stderr; under CI it panics with the same words, so the test fails.
#[track_caller]
pub fn require_or_skip(what: &str) {
    skip_unless_required(what, require_all());
}

#[track_caller]
fn skip_unless_required(what: &str, required: bool) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if required {
        panic!(
            "{test}: {what} is missing, and CI=true / WIRETRAIL_REQUIRE_ALL=1 forbids skipping (install it, or unset both on a developer machine)"
        );
    }
    eprintln!(
        "SKIPPING {test}: {what} is missing (this fails under CI=true or WIRETRAIL_REQUIRE_ALL=1)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_or_require_all_forbid_skipping() {
        assert!(!decide(None, None));
        assert!(decide(Some("true"), None));
        assert!(decide(Some("TRUE"), None));
        assert!(decide(Some("1"), None));
        assert!(!decide(Some("false"), None));
        assert!(!decide(Some(""), None));
        assert!(decide(None, Some("1")));
        assert!(decide(Some("false"), Some("yes")));
        assert!(!decide(None, Some("0")));
        assert!(!decide(None, Some("")));
    }

    #[test]
    fn skipping_fails_when_required() {
        // Prints SKIPPING and returns.
        skip_unless_required("a probe tool", false);
        let e = std::panic::catch_unwind(|| skip_unless_required("a probe tool", true))
            .expect_err("required: must panic");
        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("a probe tool is missing") && msg.contains("WIRETRAIL_REQUIRE_ALL"),
            "{msg}"
        );
    }
}
