//! Making untrusted text safe to show.
//!
//! Log lines, file names and host names reach us from the outside world. A
//! log line carrying `ESC [ 2 J` must not clear the reader's terminal, and
//! one carrying U+202E (right-to-left override) must not make `evil.sh` look
//! like `hs.live`. So every such string goes through [`visible`] (or
//! [`push_visible`]) before a text output writes it: control and invisible
//! formatting characters become a visible `\x1b` / `\u{202e}` spelling.
//! `wiretrail logs` and every report renderer (`wiretrail-report`
//! re-exports these) use this one neutraliser; HTML escaping is applied on
//! top by the HTML renderer.

use std::borrow::Cow;

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

/// Whether `s` may hold an unsafe character: every one of them is a byte
/// below 0x20, DEL, or starts with a lead byte 0xC2 (U+0080–U+009F), 0xD8
/// (U+061C), 0xE2 (U+2000–U+2FFF) or 0xEF (U+F000–U+FFFF). Printable
/// ASCII and most other text pass with one byte test each.
fn may_be_unsafe(s: &str) -> bool {
    s.bytes()
        .any(|b| b < 0x20 || b == 0x7f || matches!(b, 0xc2 | 0xd8 | 0xe2 | 0xef))
}

/// `s` with every unsafe character replaced by a visible escape (`\t`, `\n`,
/// `\x1b`, `\u{202e}`). Borrows when nothing needed replacing, which is the
/// common case.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !may_be_unsafe(s) || !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len() + 16);
    escape_into(&mut out, s);
    // Only whole characters and ASCII escapes were written.
    Cow::Owned(String::from_utf8(out).expect("escaped text is UTF-8"))
}

/// Append `s` to `out`, neutralised as [`visible`] does, without allocating.
pub fn push_visible(out: &mut Vec<u8>, s: &str) {
    if may_be_unsafe(s) {
        escape_into(out, s);
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    use std::io::Write as _;
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        if !is_unsafe_char(c) {
            continue;
        }
        out.extend_from_slice(&s.as_bytes()[plain..i]);
        plain = i + c.len_utf8();
        // Writing to a Vec cannot fail.
        let _ = match c {
            '\t' => out.write_all(b"\\t"),
            '\n' => out.write_all(b"\\n"),
            '\r' => out.write_all(b"\\r"),
            c if (c as u32) < 0x100 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
    }
    out.extend_from_slice(&s.as_bytes()[plain..]);
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
        assert!(matches!(visible("naïve — “quoted”"), Cow::Borrowed(_)));
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
        assert_eq!(visible("\u{7f}\u{0}\u{7}\u{8}"), "\\x7f\\x00\\x07\\x08");
        assert_eq!(visible("\u{61c}"), "\\u{61c}");
    }

    #[test]
    fn the_byte_prefilter_misses_no_unsafe_char() {
        // Every unsafe char's UTF-8 form trips the byte test.
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            if is_unsafe_char(c) {
                let mut b = [0u8; 4];
                assert!(may_be_unsafe(c.encode_utf8(&mut b)), "{c:?}");
            }
        }
    }

    #[test]
    fn push_visible_appends_what_visible_returns() {
        for s in [
            "",
            "plain",
            "a\x1b]0;title\x07b",
            "\u{202e}x\u{9b}",
            "é\u{200b}é",
        ] {
            let mut out = b"pre ".to_vec();
            push_visible(&mut out, s);
            assert_eq!(out, format!("pre {}", visible(s)).into_bytes());
        }
    }
}
