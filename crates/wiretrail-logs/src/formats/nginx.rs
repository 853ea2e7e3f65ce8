//! nginx's error log.
//!
//! ```text
//! 2023/05/04 17:33:07 [error] 812#812: *3 recv() failed (104: Connection reset by peer) while
//!   reading response header from upstream, client: 10.9.0.1, server: api, request: "POST /x HTTP/1.1",
//!   upstream: "http://10.2.2.9:80/x", host: "api"
//! ```
//!
//! The stamp is nginx's local time with no zone (`ngx_cached_err_log_time`,
//! one-second resolution): the configured zone completes it, as for Go's
//! own stamp. The `*3` is the connection number, `812#812` the worker's pid
//! and thread. No line names nginx's own socket to the upstream (no
//! ephemeral port): correlation joins these lines by time and upstream.
//!
//! The error, then `while <what nginx was doing>`:
//!
//! | text | class |
//! |---|---|
//! | `connect() failed (111: Connection refused)` | refused |
//! | `upstream timed out (110: Connection timed out)` | timeout |
//! | `recv() failed (104: Connection reset by peer)`, `writev() failed (32: Broken pipe)`, ... | by errno |
//! | `upstream prematurely closed connection` | eof |
//! | `no live upstreams` | other (nginx tried no connection: every server was marked down) |
//! | `upstream sent invalid header`, `upstream sent too big header`, ... | other |
//! | `epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too` (info level) | canceled |
//!
//! and `while connecting to upstream` (`op` `dial`, `syscall` `connect`),
//! `while sending request to upstream` (`write`), `while reading response
//! header from upstream` (`read`), `while SSL handshaking to upstream`
//! (`dial`). `while reading upstream` is the body, after the status went to
//! the client: not a record, like Go's body-copy errors.

use super::{errno_class, socket, Found, Outcome, Phase};
use crate::envelope::Envelope;
use crate::record::{ErrorClass, SourceFormat};
use crate::time::go_date;

/// `YYYY/MM/DD HH:MM:SS [level] PID#TID: [*CID ]TEXT`, or (nginx's syslog
/// output, or a shipper that cut the stamp) `*CID TEXT` from a process
/// named nginx.
pub(crate) fn parse(msg: &str, env: &Envelope<'_>) -> Option<Outcome> {
    let b = msg.as_bytes();
    let (stamp, rest, pid) = match go_date(b) {
        Ok((after, stamp)) => {
            let rest = std::str::from_utf8(after).ok()?;
            let rest = rest.strip_prefix(" [")?;
            let (level, rest) = rest.split_once("] ")?;
            if !LEVELS.contains(&level) {
                return None;
            }
            let (pid, rest) = rest.split_once(": ")?;
            let (p, t) = pid.split_once('#')?;
            if !p.bytes().all(|c| c.is_ascii_digit()) || !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (Some(stamp), rest, p.parse::<u32>().ok())
        }
        Err(_) => {
            // nginx logging to syslog sends `*CID TEXT` under the tag `nginx`.
            if env.process.as_deref() != Some("nginx") || !msg.starts_with('*') {
                return None;
            }
            (None, msg, None)
        }
    };
    let text = match rest.strip_prefix('*') {
        Some(r) => {
            let (cid, t) = r.split_once(' ')?;
            if !cid.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            t
        }
        None => rest,
    };
    let (err, fields) = match text.find(", client: ") {
        Some(p) => (&text[..p], &text[p..]),
        None => (text, ""),
    };
    let (what, during) = match err.rfind(" while ") {
        Some(p) => (&err[..p], &err[p + 7..]),
        None => (err, ""),
    };
    let phase = match during {
        "connecting to upstream" | "SSL handshaking to upstream" => Phase::Connect,
        "sending request to upstream" => Phase::Send,
        "reading response header from upstream" => Phase::Receive,
        // The body: the status line already went to the client.
        "reading upstream" => return Some(Outcome::NotError),
        _ => return Some(Outcome::NotError),
    };
    let (class, phase) = match classify(what) {
        Some(Kind::Socket(c)) => (c, phase),
        Some(Kind::NoSocket(c)) => (c, Phase::None),
        None => return Some(Outcome::NotError),
    };
    let mut f = Found::new(SourceFormat::Nginx, class, phase, text.to_owned());
    if let Some(s) = errno_call(what) {
        // The call nginx names (`recv`, `writev`, `connect`) is the syscall.
        if phase != Phase::None {
            f.syscall = Some(s.to_owned());
        }
    }
    f.stamp = stamp;
    f.pid = pid;
    f.process = Some("nginx".into());
    f.remote = field(fields, "upstream").and_then(upstream_socket);
    Some(f.boxed())
}

const LEVELS: [&str; 8] = [
    "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg",
];

/// What nginx says failed.
enum Kind {
    /// A socket operation to the upstream failed (or timed out).
    Socket(ErrorClass),
    /// No socket operation failed: nginx tried no server, or the client left.
    NoSocket(ErrorClass),
}

fn classify(what: &str) -> Option<Kind> {
    if what.starts_with("upstream timed out") {
        return Some(Kind::Socket(ErrorClass::Timeout));
    }
    if what.starts_with("upstream prematurely closed connection") {
        return Some(Kind::Socket(ErrorClass::Eof));
    }
    if what.starts_with("no live upstreams") {
        return Some(Kind::NoSocket(ErrorClass::Other));
    }
    if what.starts_with("upstream sent ") {
        return Some(Kind::Socket(ErrorClass::Other));
    }
    if what.contains("client prematurely closed connection") {
        return Some(Kind::NoSocket(ErrorClass::Canceled));
    }
    errno_call(what)?;
    let (n, text) = errno(what)?;
    Some(Kind::Socket(errno_class(n, text)))
}

/// `recv() failed (104: ...)` → `recv`.
fn errno_call(what: &str) -> Option<&str> {
    let (call, rest) = what.split_once("() failed (")?;
    (!call.is_empty() && call.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
        .then_some(())?;
    rest.contains(')').then_some(call)
}

/// `(104: Connection reset by peer)` → (104, `Connection reset by peer`).
fn errno(what: &str) -> Option<(Option<u32>, &str)> {
    // After the call's own `()`: `upstream timed out (110: ...)`, `recv()
    // failed (104: ...)`.
    let open = what.find(" (")? + 1;
    let close = what[open..].find(')')? + open;
    let inner = &what[open + 1..close];
    Some(match inner.split_once(": ") {
        Some((n, t)) => (n.parse().ok(), t),
        None => (None, inner),
    })
}

/// The value of `key: "..."` (or `key: value`) among `, key: value` fields.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(", {key}: ");
    let at = fields.find(&pat)? + pat.len();
    let rest = &fields[at..];
    if let Some(q) = rest.strip_prefix('"') {
        return q.find('"').map(|e| &q[..e]);
    }
    Some(rest.split(", ").next().unwrap_or(rest))
}

/// `http://10.2.2.9:80/x` → `10.2.2.9:80`; `http://unix:/run/app.sock:/x`
/// → `/run/app.sock`; an upstream group name (`http://backends/x`, what
/// nginx prints when it tried no server) is not a socket.
fn upstream_socket(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    if let Some(unix) = rest.strip_prefix("unix:") {
        let path = unix.split_once(':').map_or(unix, |(p, _)| p);
        return Some(path.to_owned());
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    socket(authority).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_lines() {
        let w = "recv() failed (104: Connection reset by peer)";
        assert_eq!(errno_call(w), Some("recv"));
        assert_eq!(errno(w), Some((Some(104), "Connection reset by peer")));
        assert!(matches!(classify(w), Some(Kind::Socket(ErrorClass::Reset))));
        let w = "connect() failed (111: Connection refused)";
        assert!(matches!(
            classify(w),
            Some(Kind::Socket(ErrorClass::Refused))
        ));
    }

    #[test]
    fn upstream_sockets() {
        assert_eq!(
            upstream_socket("http://10.2.2.9:80/x").as_deref(),
            Some("10.2.2.9:80")
        );
        assert_eq!(
            upstream_socket("http://[fd00::9]:80/x").as_deref(),
            Some("[fd00::9]:80")
        );
        assert_eq!(upstream_socket("http://backends/x"), None);
        assert_eq!(
            upstream_socket("http://unix:/run/app.sock:/x").as_deref(),
            Some("/run/app.sock")
        );
    }
}
