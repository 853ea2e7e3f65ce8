//! Making untrusted text safe to show.
//!
//! Log lines, file names and node names reach us from the outside world. A
//! log line carrying `ESC [ 2 J` must not clear the reader's terminal, and one
//! carrying U+202E (right-to-left override) must not make `evil.sh` look like
//! `hs.live` in a browser. So every such string goes through [`visible`]
//! before it is written anywhere: control and invisible formatting characters
//! become a visible `\x1b` / `\u{202e}` spelling. HTML escaping is applied on
//! top of that by the HTML renderer.

use std::borrow::Cow;

/// The neutraliser lives in `wiretrail-logs` (a leaf both crates use), so
/// `wiretrail logs` and the reports escape the same characters the same way.
pub use wiretrail_logs::text::{is_unsafe_char, push_visible, visible};

/// Cut `s` to at most `max` characters, ending with `…` when something was cut.
/// Counts chars, not display columns: wide CJK characters may overflow a
/// little, which is better than cutting inside a character.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if max == 0 {
        return Cow::Borrowed("");
    }
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) => {
            let keep: String = s.chars().take(max - 1).collect();
            Cow::Owned(keep + "…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            visible("read: connection reset by peer"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(visible("定位 502 问题"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_terminal_and_bidi_controls() {
        assert_eq!(visible("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(visible("x\u{9b}31m"), "x\\x9b31m");
        assert_eq!(visible("evil\u{202e}hs.sh"), "evil\\u{202e}hs.sh");
        assert_eq!(visible("a\tb\nc\r"), "a\\tb\\nc\\r");
        assert_eq!(
            visible("\u{2066}\u{feff}\u{200b}"),
            "\\u{2066}\\u{feff}\\u{200b}"
        );
        assert_eq!(visible("\u{7f}"), "\\x7f");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("问题问题", 3), "问题…");
        assert_eq!(truncate("abc", 0), "");
    }
}
