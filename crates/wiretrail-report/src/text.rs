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
use std::fmt::Write as _;

/// True for characters that must never reach an output verbatim: C0 and C1
/// controls, DEL, bidirectional controls, zero-width and line/paragraph
/// separators, the BOM, and interlinear annotation marks.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'              // Arabic letter mark
        | '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
        | '\u{2028}'..='\u{202e}' // line/para separators, LRE RLE PDF LRO RLO
        | '\u{2060}'..='\u{206f}' // word joiner, invisible operators, LRI RLI FSI PDI, deprecated format chars
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
    )
}

/// `s` with every unsafe character replaced by a visible escape (`\t`, `\n`,
/// `\x1b`, `\u{202e}`). Borrows when nothing needed replacing, which is the
/// common case.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !is_unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
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
