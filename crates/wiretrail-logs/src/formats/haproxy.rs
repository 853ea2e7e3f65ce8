//! HAProxy's `option httplog` lines, and custom `log-format`s built on it.
//!
//! ```text
//! 10.9.0.1:39976 [04/May/2023:17:33:07.123] fe be_app/s1 0/0/0/-1/0 502 209 - - SH-- 1/1/0/0/0 0/0 "POST /x HTTP/1.1"
//! ```
//!
//! (`%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc
//! %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`), usually inside a syslog
//! envelope (`haproxy[812]: ...`), or bare (`log stdout format raw`).
//!
//! Fields are found by their shape, so a custom `log-format` that keeps
//! them in this order may add others: the bracketed date (`%tr`, `%t`, or
//! `%trl` with its offset), the frontend, `backend/server`, then any
//! `ip:port` tokens before the timers: the first is `%bi:%bp` (HAProxy's
//! own socket to the server: the ephemeral port, so correlation joins by
//! port exactly), a second `%si:%sp` (the server's); `%bi:%bp->%si:%sp` as
//! one token is read too. The default `httplog` names neither: its lines
//! join by time and upstream.
//!
//! The stamp is the request's date (`%tr`, local time, no zone, in
//! milliseconds) plus the last timer (`%Ta`, total active time): when the
//! session ended, which for a failed exchange is when HAProxy gave up.
//!
//! A line is a record when its status is 502, 503 or 504, when it is -1
//! (no response reached the client) with a server-side termination (`S?`,
//! `s?`: the server reset the connection while HAProxy was still sending
//! the request, `SD--`), or when the client aborted while HAProxy waited
//! for the server (`CC`, `CH`, `CQ`: Go's `context canceled`). The termination state says what broke:
//!
//! | state | class | op |
//! |---|---|---|
//! | `SC` (the server refused the connection: RST or ICMP) | refused | dial |
//! | `sC` (connect timeout) | timeout | dial |
//! | `SH`, `SD` (the server closed or reset before or while sending the response; HAProxy does not say which) | eof | read |
//! | `sH`, `sD` (server timeout) | timeout | read |
//! | `sQ`, `SQ` (queue) | timeout, other | — |
//! | `CC`, `CH`, `CQ` (client aborted) | canceled | — |
//! | server `<NOSRV>`, `P?`, `R?`, `I?`, `D?`, `K?` | other | — |
//! | anything else | 504: timeout (read), else other | — |

use super::{socket, Found, Outcome, Phase};
use crate::record::{ErrorClass, SourceFormat};
use crate::time::{month_abbr, offset, PartialStamp};

pub(crate) fn parse(msg: &str) -> Option<Outcome> {
    let toks = tokens(msg);
    let di = toks
        .iter()
        .position(|t| t.starts_with('[') && date(t).is_some())?;
    let (mut stamp, mut i) = {
        let t = toks[di];
        if t.ends_with(']') {
            (date(t)?, di + 1)
        } else {
            // `[%trl]`: `[04/May/2023:17:33:07.123 +0200]`, two tokens.
            let mut d = date(t)?;
            let off = toks.get(di + 1)?.strip_suffix(']')?;
            let (rest, o) = offset(off.as_bytes()).ok()?;
            if !rest.is_empty() {
                return None;
            }
            d.offset = Some(o);
            (d, di + 2)
        }
    };
    let _frontend = toks.get(i)?;
    let (_backend, server) = toks.get(i + 1)?.split_once('/')?;
    i += 2;
    let mut sockets: Vec<&str> = Vec::new();
    while let Some(t) = toks.get(i) {
        if let Some((a, b)) = t.split_once("->") {
            sockets.extend(socket(a));
            sockets.extend(socket(b));
        } else if let Some(s) = socket(t) {
            sockets.push(s);
        } else {
            break;
        }
        i += 1;
    }
    let timers = timers(toks.get(i)?)?;
    let status: i32 = toks.get(i + 1)?.parse().ok()?;
    let state = toks
        .iter()
        .skip(i + 3)
        .take(4)
        .find_map(|t| termination(t))?;
    let canceled = state.0 == b'C' && matches!(state.1, b'C' | b'H' | b'Q');
    // -1: no response at all went to the client; the server side broke it.
    let unanswered = status <= 0 && matches!(state.0, b'S' | b's');
    if !matches!(status, 502..=504) && !canceled && !unanswered {
        return Some(Outcome::NotError);
    }
    let (class, phase) = if server == "<NOSRV>" {
        (ErrorClass::Other, Phase::None)
    } else {
        classify(state, status)
    };
    if let Some(&total) = timers.last() {
        if total >= 0 {
            stamp = stamp.shifted(chrono::Duration::milliseconds(total))?;
        }
    }
    let message = msg[toks[0].as_ptr() as usize - msg.as_ptr() as usize..].to_owned();
    let mut f = Found::new(SourceFormat::Haproxy, class, phase, message);
    f.stamp = Some(stamp);
    f.local = sockets.first().map(|s| (*s).to_owned());
    f.remote = sockets.get(1).map(|s| (*s).to_owned());
    Some(f.boxed())
}

fn classify(state: (u8, u8), status: i32) -> (ErrorClass, Phase) {
    match state {
        (b'S', b'C') => (ErrorClass::Refused, Phase::Connect),
        (b's', b'C') => (ErrorClass::Timeout, Phase::Connect),
        (b'S', b'H' | b'D' | b'L') => (ErrorClass::Eof, Phase::Receive),
        (b's', b'H' | b'D') => (ErrorClass::Timeout, Phase::Receive),
        (b's', b'Q') => (ErrorClass::Timeout, Phase::None),
        (b'C', b'C' | b'H' | b'Q') => (ErrorClass::Canceled, Phase::None),
        (b'S' | b'P' | b'R' | b'I' | b'D' | b'K', _) => (ErrorClass::Other, Phase::None),
        _ if status == 504 => (ErrorClass::Timeout, Phase::Receive),
        _ => (ErrorClass::Other, Phase::None),
    }
}

/// Space-separated tokens; a `"..."` or `{...}` token keeps its spaces.
fn tokens(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(20);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        let close = match b[i] {
            b'"' => Some(b'"'),
            b'{' => Some(b'}'),
            _ => None,
        };
        match close {
            Some(c) => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
            }
            None => {
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
            }
        }
        out.push(&s[start..i]);
    }
    out
}

/// `[04/May/2023:17:33:07.123]` (or without the closing bracket, when an
/// offset follows): local time, no zone.
fn date(t: &str) -> Option<PartialStamp> {
    let t = t.strip_prefix('[')?;
    let t = t.strip_suffix(']').unwrap_or(t);
    let b = t.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let day = num(0..2)?;
    let (_, month) = month_abbr(&b[3..6]).ok()?;
    let year = num(7..11)? as i32;
    let (rest, tod) = crate::time::clock(&b[12..]).ok()?;
    rest.is_empty()
        .then(|| tod.with_date(Some(year), month, day, None))
}

/// `TR/Tw/Tc/Tr/Ta` (or any 3 to 5 signed numbers, `+` when logged early).
fn timers(t: &str) -> Option<Vec<i64>> {
    let parts: Vec<&str> = t.split('/').collect();
    if !(3..=5).contains(&parts.len()) {
        return None;
    }
    parts
        .iter()
        .map(|p| p.trim_start_matches('+').parse::<i64>().ok())
        .collect()
}

/// A termination state (`SH--`, `----`, `CD`): the first two characters.
fn termination(t: &str) -> Option<(u8, u8)> {
    let b = t.as_bytes();
    if b.len() != 4 && b.len() != 2 {
        return None;
    }
    let first = b"-CSPRIDLKUcs".contains(&b[0]);
    let second = b"-RQCHDLT".contains(&b[1]);
    let rest = b.len() == 2 || (b"-NIDVEOC".contains(&b[2]) && b"-NIUPRD".contains(&b[3]));
    (first && second && rest).then_some((b[0], b[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_quoted_and_braced() {
        let t = tokens(r#"a [d] {h|x y} "POST /x HTTP/1.1""#);
        assert_eq!(t, vec!["a", "[d]", "{h|x y}", "\"POST /x HTTP/1.1\""]);
    }

    #[test]
    fn termination_states() {
        assert_eq!(termination("SH--"), Some((b'S', b'H')));
        assert_eq!(termination("----"), Some((b'-', b'-')));
        assert_eq!(termination("-"), None);
        assert_eq!(termination("GET"), None);
    }
}
