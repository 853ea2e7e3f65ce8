//! Lines a container runtime split: Kubernetes CRI `P` parts and Docker
//! json-file entries whose `log` does not end with a newline. Both split a
//! long line into parts of 16 KiB; the parts of one stream follow each other,
//! the other stream may interleave, and the last part closes the line.

use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Which runtime wrote the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// `STAMP STREAM P|F content`.
    Cri {
        /// Where the content starts.
        content: usize,
    },
    /// `{"log":"...","stream":"...","time":"..."}`.
    Docker,
}

/// One line of a container log, as far as splitting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub runtime: Runtime,
    /// 0 stdout, 1 stderr.
    pub stream: usize,
    /// More parts of this line follow on the same stream.
    pub partial: bool,
}

/// Classify a line; `None` for anything that is not a container log line.
pub(crate) fn part_of(line: &[u8]) -> Option<Part> {
    match line.first()? {
        b'{' => docker(line),
        c if c.is_ascii_digit() => cri(line),
        _ => None,
    }
}

/// A CRI line's stream, partial flag and where its content starts.
fn cri(line: &[u8]) -> Option<Part> {
    let sp = memchr::memchr(b' ', line)?;
    crate::time::iso(&line[..sp])
        .ok()
        .filter(|(r, _)| r.is_empty())?;
    let rest = &line[sp + 1..];
    let stream = if rest.starts_with(b"stderr ") {
        1
    } else if rest.starts_with(b"stdout ") {
        0
    } else {
        return None;
    };
    let partial = match rest.get(7..9) {
        Some(b"P ") => true,
        Some(b"F ") => false,
        _ if rest.len() == 8 && (rest[7] == b'F' || rest[7] == b'P') => rest[7] == b'P',
        _ => return None,
    };
    Some(Part {
        runtime: Runtime::Cri {
            content: (sp + 1 + 9).min(line.len()),
        },
        stream,
        partial,
    })
}

static DOCKER_STREAM: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\",\"stream\":\"std"));

/// Docker json-file writes `log`, `stream`, `time` in that order, so the raw
/// bytes tell a part from a whole line without decoding the JSON: the `log`
/// string of a whole line ends with the `\n` escape.
fn docker(line: &[u8]) -> Option<Part> {
    if !line.starts_with(b"{\"log\":\"") {
        return None;
    }
    let at = DOCKER_STREAM.find(line)?;
    let stream = match line.get(at + 15..at + 18)? {
        b"out" => 0,
        b"err" => 1,
        _ => return None,
    };
    let log = &line[..at];
    // `\n` closes the line unless its backslash is itself escaped (`\\n`).
    let backslashes = log
        .iter()
        .rev()
        .skip(1)
        .take_while(|&&c| c == b'\\')
        .count();
    let whole = log.ends_with(b"n") && backslashes % 2 == 1;
    Some(Part {
        runtime: Runtime::Docker,
        stream,
        partial: !whole,
    })
}

/// Bytes of lines looked at before a chunk boundary. Parts are at most 16 KiB:
/// a split line of fewer than four parts is always seen whole.
pub const LOOKBACK: usize = 64 << 10;

/// Move a chunk boundary so that no split line straddles it.
///
/// `c` is a line start in `data` (just after a newline). Looking back at most
/// [`LOOKBACK`] bytes, find for each stream whether its last line before `c`
/// is an unfinished part; if so, move before that line's first part, so the
/// whole line goes to the next chunk. Moving back can open the other stream's
/// line again (its closing part now lies after the boundary), so this repeats
/// until nothing is open. Returns `c` when nothing is open or when moving
/// would leave nothing before the boundary.
pub(crate) fn clean_cut(data: &[u8], c: usize) -> usize {
    let mut at = c;
    loop {
        match open_from(data, at) {
            Some(earlier) if earlier > 0 && earlier < at => at = earlier,
            Some(0) => return c,
            _ => return at,
        }
    }
}

/// The start of the earliest unfinished split line before `c`, if any.
fn open_from(data: &[u8], c: usize) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unknown,
        Closed,
        /// Open; the earliest part found so far starts here.
        Open(usize),
        /// Open, and the part before its first one was found: complete.
        Found(usize),
    }
    let floor = c.saturating_sub(LOOKBACK);
    let mut state = [State::Unknown; 2];
    let mut end = c;
    while end > floor && end > 0 {
        let start = memchr::memrchr(b'\n', &data[..end - 1]).map_or(0, |p| p + 1);
        let Some(p) = part_of(&data[start..end - 1]) else {
            break;
        };
        let s = &mut state[p.stream];
        *s = match (*s, p.partial) {
            (State::Unknown, true) => State::Open(start),
            (State::Unknown, false) => State::Closed,
            (State::Open(_), true) => State::Open(start),
            (State::Open(first), false) => State::Found(first),
            (other, _) => other,
        };
        if state
            .iter()
            .all(|s| matches!(s, State::Closed | State::Found(_)))
        {
            break;
        }
        end = start;
    }
    state
        .iter()
        .filter_map(|s| match s {
            State::Open(at) | State::Found(at) => Some(*at),
            _ => None,
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRI_P: &str = "2023-05-05T09:33:07.1Z stderr P abc\n";
    const CRI_F: &str = "2023-05-05T09:33:07.2Z stderr F def\n";
    const CRI_OUT: &str = "2023-05-05T09:33:07.3Z stdout F xyz\n";
    const CRI_OUT_P: &str = "2023-05-05T09:33:07.4Z stdout P uvw\n";

    #[test]
    fn parts_are_classified() {
        let p = part_of(CRI_P.trim_end().as_bytes()).unwrap();
        assert_eq!((p.stream, p.partial), (1, true));
        let p = part_of(CRI_OUT.trim_end().as_bytes()).unwrap();
        assert_eq!((p.stream, p.partial), (0, false));
        let whole = br#"{"log":"a line\n","stream":"stderr","time":"2023-05-05T09:33:07.1Z"}"#;
        let part = br#"{"log":"a part","stream":"stdout","time":"2023-05-05T09:33:07.1Z"}"#;
        let slash_n = br#"{"log":"ends in a backslash and n: \\n","stream":"stdout","time":"2023-05-05T09:33:07.1Z"}"#;
        assert_eq!(
            part_of(whole).map(|p| (p.stream, p.partial)),
            Some((1, false))
        );
        assert_eq!(
            part_of(part).map(|p| (p.stream, p.partial)),
            Some((0, true))
        );
        assert_eq!(part_of(slash_n).map(|p| p.partial), Some(true));
        assert_eq!(part_of(b"May 05 17:33:07 host proxy[1]: x"), None);
        assert_eq!(part_of(br#"{"MESSAGE":"x"}"#), None);
    }

    #[test]
    fn boundaries_move_before_unfinished_parts() {
        // stderr P, stdout F, stderr P | cut: both stderr parts move.
        let text = format!("{CRI_F}{CRI_P}{CRI_OUT}{CRI_P}{CRI_F}");
        let c = CRI_F.len() + CRI_P.len() + CRI_OUT.len() + CRI_P.len();
        assert_eq!(clean_cut(text.as_bytes(), c), CRI_F.len());
        // Moving back for one stream reopens the other: stdout P, stderr P,
        // stdout F | the boundary goes before both.
        let text = format!("{CRI_F}{CRI_OUT_P}{CRI_P}{CRI_OUT}{CRI_F}");
        let c = CRI_F.len() + CRI_OUT_P.len() + CRI_P.len() + CRI_OUT.len();
        assert_eq!(clean_cut(text.as_bytes(), c), CRI_F.len());
        // After the closing F nothing is open.
        assert_eq!(clean_cut(text.as_bytes(), text.len()), text.len());
        // A group from the very start cannot move: the boundary stays.
        let text = format!("{CRI_P}{CRI_P}{CRI_F}");
        assert_eq!(clean_cut(text.as_bytes(), 2 * CRI_P.len()), 2 * CRI_P.len());
        // Plain lines stop the look back at once.
        let text = format!("{CRI_P}plain line\n");
        assert_eq!(clean_cut(text.as_bytes(), text.len()), text.len());
    }
}
