//! Errors that point into a pipeline file: `FILE:LINE:COL: what`, the line
//! itself with a caret, and a hint ("did you mean `nodes`?").

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem at a place in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanError {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The offending line, for the caret display.
    pub source_line: String,
    /// Caret width in characters (at least 1).
    pub width: usize,
}

impl SpanError {
    pub fn new(
        file: &Path,
        src: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> SpanError {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(src.len());
        let (line, col, line_start) = line_col(src, start);
        let line_end = src[line_start..]
            .find('\n')
            .map(|i| line_start + i)
            .unwrap_or(src.len());
        let raw_line = src[line_start..line_end].trim_end_matches('\r');
        let end = span.end.clamp(start, line_end);
        let mut width = src[start..end].chars().count().max(1);
        let mut message = message.into();
        // A refused line may hold a secret (`password = "..."` pasted into
        // [elasticsearch]): never echo its value, in the line or the message.
        let source_line = match secret_value(raw_line) {
            Some(value) => {
                if !value.is_empty() {
                    message = message.replace(value, "***");
                }
                let shown = redact_line(raw_line);
                width = width.min(shown.chars().count().saturating_sub(col - 1).max(1));
                shown
            }
            None => raw_line.to_string(),
        };
        SpanError {
            file: file.to_path_buf(),
            line,
            col,
            message,
            hint: None,
            source_line,
            width,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> SpanError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for SpanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if !self.source_line.is_empty() {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            write!(
                f,
                "\n{pad} |\n{num} | {}\n{pad} | {}{}",
                self.source_line,
                " ".repeat(self.col - 1),
                "^".repeat(self.width)
            )?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  = hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpanError {}

/// Key names whose values are secrets (`password`, `api_key`, `token`, ...),
/// but not the names of files holding them (`credentials_file`).
fn is_secret_key(key: &str) -> bool {
    let k = key
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase();
    let k = k.rsplit('.').next().unwrap_or(&k);
    if k.ends_with("_file") || k.ends_with("_path") || k.ends_with("_env") {
        return false;
    }
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "bearer",
        "authorization",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The value of a `key = value` line whose key names a secret.
fn secret_value(line: &str) -> Option<&str> {
    let (key, value) = line.split_once('=')?;
    if !is_secret_key(key) {
        return None;
    }
    let v = value.trim();
    let v = v.split(" #").next().unwrap_or(v).trim();
    Some(v.trim_matches(|c| c == '"' || c == '\''))
}

/// `password = "hunter2"` shown as `password = "***"`.
fn redact_line(line: &str) -> String {
    match line.split_once('=') {
        Some((key, _)) => format!("{key}= \"***\""),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_refused_secret_line_is_never_echoed() {
        let src = "[elasticsearch]\nurl = \"https://es:9200\"\npassword = \"hunter2-Zq8\"\n";
        let at = src.find("password").unwrap();
        let e = SpanError::new(
            Path::new("p.toml"),
            src,
            Some(at..at + 8),
            "unknown key `password` (value \"hunter2-Zq8\")",
        )
        .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("password = \"***\""), "{e}");
        assert!(e.contains("p.toml:3:1"), "{e}");
        // A file name is no secret.
        let src = "credentials_file = \"/etc/wt/creds\"\n";
        let e = SpanError::new(Path::new("p.toml"), src, Some(0..16), "x").to_string();
        assert!(e.contains("/etc/wt/creds"), "{e}");
        for line in [
            "api_key = 'aWQ6a2V5'",
            "WIRETRAIL_ES_BEARER=tok-123",
            "auth.token = \"t\"",
        ] {
            assert!(secret_value(line).is_some(), "{line}");
        }
    }
}

/// 1-based line and character column of a byte offset, plus the line's start.
pub fn line_col(src: &str, offset: usize) -> (usize, usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = src[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = src[..offset].matches('\n').count() + 1;
    let col = src[line_start..offset].chars().count() + 1;
    (line, col, line_start)
}

/// Levenshtein distance, small inputs only (key names).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1) + 1;
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_ascii_lowercase(), c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Turn serde's "unknown field `x`, expected one of `a`, `b`" (and the
/// variant equivalent) into a short message and a did-you-mean hint.
pub fn explain_serde_message(msg: &str) -> (String, Option<String>) {
    let first_line = msg.lines().next().unwrap_or(msg).trim().to_string();
    let backticked: Vec<&str> = first_line.split('`').skip(1).step_by(2).collect();
    let (what, kind) = if first_line.starts_with("unknown field") {
        ("key", true)
    } else if first_line.starts_with("unknown variant") {
        ("value", true)
    } else {
        ("", false)
    };
    if !kind || backticked.is_empty() {
        return (first_line, None);
    }
    let bad = backticked[0];
    let expected: Vec<&str> = backticked[1..].to_vec();
    let message = format!("unknown {what} `{bad}`");
    let hint = match closest(bad, expected.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if expected.is_empty() => "this table takes no keys".to_string(),
        None => format!(
            "expected one of {}",
            expected
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    (message, Some(hint))
}

/// An error and its causes, outermost first, for people: each cause that a
/// message above already ends with (an error that prints its source and
/// also returns it) is left out, so nothing is said twice.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        let said = out.last().is_some_and(|prev| prev.ends_with(&text));
        if !said && !text.is_empty() {
            out.push(text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_typos() {
        let (m, h) = explain_serde_message(
            "unknown field `nodse`, expected one of `name`, `tz`, `nodes`, `logs`",
        );
        assert_eq!(m, "unknown key `nodse`");
        assert_eq!(h.as_deref(), Some("did you mean `nodes`?"));
        let (m, h) = explain_serde_message(
            "unknown variant `backnd`, expected one of `proxy`, `backend`, `switch`, `other`",
        );
        assert_eq!(m, "unknown value `backnd`");
        assert_eq!(h.as_deref(), Some("did you mean `backend`?"));
        let (_, h) = explain_serde_message("unknown field `zzzzzz`, expected `a` or `b`");
        assert_eq!(h.as_deref(), Some("expected one of `a`, `b`"));
    }

    #[test]
    fn caret_points_at_span() {
        let src = "a = 1\n[[nodse]]\nname = \"x\"\n";
        let e = SpanError::new(Path::new("p.toml"), src, Some(8..13), "unknown key `nodse`")
            .with_hint("did you mean `nodes`?");
        assert_eq!((e.line, e.col), (2, 3));
        let text = e.to_string();
        assert!(
            text.starts_with("p.toml:2:3: unknown key `nodse`"),
            "{text}"
        );
        assert!(text.contains("2 | [[nodse]]\n  |   ^^^^^"), "{text}");
    }
}
