//! Making untrusted text safe to show.
//!
//! Log lines, file names and node names reach us from the outside world. A
//! log line carrying `ESC [ 2 J` must not clear the reader's terminal, and one
//! carrying U+202E (right-to-left override) must not make `evil.sh` look like
//! `hs.live` in a browser. So every such string goes through [`visible`]
//! before it is written anywhere: control and invisible formatting characters
//! become a visible `\x1b` / `\u{202e}` spelling; [`html`] escapes for HTML
//! on top of that.
//!
//! A leaf: the renderers (`terminal`, `html`, `ladder`, `catalog`) import it,
//! it imports none of them.

use std::borrow::Cow;

/// The neutraliser lives in `wiretrail-logs` (a leaf both crates use), so
/// `wiretrail logs` and the reports escape the same characters the same way.
pub use wiretrail_logs::text::{is_unsafe_char, push_visible, visible};

/// Untrusted text for HTML, in element content or a double-quoted attribute
/// value alike: controls made visible, then `&`, `<`, `>`, `"` and `'`
/// escaped (quotes are not needed in element content, but escaping them
/// means a fragment stays inert even if a later edit moves it into an
/// attribute).
pub fn html(s: &str) -> String {
    html_escape::encode_quoted_attribute(&visible(s)).into_owned()
}

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
    fn html_makes_controls_visible_then_escapes() {
        assert_eq!(
            html("<b a=\"1\" b='2'>&\u{202e}\x1b[2J</b>"),
            "&lt;b a=&quot;1&quot; b=&#x27;2&#x27;&gt;&amp;\\u{202e}\\x1b[2J&lt;/b&gt;"
        );
        assert_eq!(html("plain"), "plain");
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
