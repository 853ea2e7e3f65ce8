//! Envelopes: what log shippers wrap around the program's own line.
//!
//! Each parser takes one line and yields the envelope's stamp, host, process
//! and pid, and the program's message (Go `log` output) inside it. Detection
//! is by the first bytes: `{` JSON (journald `-o json`, Docker json-file,
//! Filebeat/Elasticsearch documents), `<PRI>` syslog (RFC 5424 when a version
//! follows, else RFC 3164), an ISO stamp (CRI when `stdout|stderr F|P`
//! follows, else journald short-iso / RFC 3339 syslog), a month name
//! (journald short / short-precise, RFC 3164 without PRI), anything else is
//! bare Go `log` output.

use crate::time::{bsd, iso, parse_rfc3339, In, PartialStamp};
use chrono::{Datelike, Timelike, Utc};
use nom::bytes::complete::{tag, take_while1, take_while_m_n};
use nom::character::complete::char;
use nom::{IResult, Parser};
use serde_json::Value;
use std::borrow::Cow;

/// Which envelope a line was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// Go `log` output with no wrapper.
    Bare,
    /// journald short / short-precise, or RFC 3164 without PRI.
    SyslogBsd,
    /// journald short-iso(-precise), or syslog with an RFC 3339 stamp.
    SyslogIso,
    Rfc3164,
    Rfc5424,
    Cri,
    DockerJson,
    JournaldJson,
    Document,
}

/// A CRI stream line's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriTag {
    pub stderr: bool,
    /// `P`: the runtime split a long line; the next lines of the stream continue it.
    pub partial: bool,
}

/// An envelope, opened.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub kind: EnvelopeKind,
    /// Stamps the envelope printed (a Filebeat document holding a syslog
    /// line has two). The Go stamp inside `msg` is found later.
    pub stamps: Vec<PartialStamp>,
    pub host: Option<String>,
    pub process: Option<String>,
    pub pid: Option<u32>,
    pub msg: Cow<'a, str>,
    pub cri: Option<CriTag>,
}

impl<'a> Envelope<'a> {
    pub(crate) fn bare(kind: EnvelopeKind, msg: Cow<'a, str>) -> Self {
        Envelope {
            kind,
            stamps: Vec::new(),
            host: None,
            process: None,
            pid: None,
            msg,
            cri: None,
        }
    }
}

fn err<T>(i: In<'_>) -> IResult<In<'_>, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Open the envelope of one line (no trailing newline). JSON lines that do
/// not parse are an `Err` with the reason; text lines always open (at worst
/// as `Bare`).
pub fn open(line: &[u8]) -> Result<Envelope<'_>, String> {
    let line = trim_end(line);
    match line.first() {
        Some(b'{') => json(line),
        _ => Ok(text(line)),
    }
}

fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n' | b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// A text envelope; falls back to `Bare`.
pub fn text(line: &[u8]) -> Envelope<'_> {
    let parsed = match line.first() {
        Some(b'<') => syslog_pri(line).ok(),
        Some(c) if c.is_ascii_digit() => cri(line).or_else(|_| syslog_iso(line)).ok(),
        Some(c) if c.is_ascii_alphabetic() => syslog_bsd(line).ok(),
        _ => None,
    };
    match parsed {
        Some((_, env)) => env,
        None => Envelope::bare(EnvelopeKind::Bare, lossy(line)),
    }
}

/// `2023-05-05T09:33:07.123456789Z stderr F message`
fn cri(i: In<'_>) -> IResult<In<'_>, Envelope<'_>> {
    let (i, stamp) = iso(i)?;
    let (i, _) = char(' ').parse(i)?;
    if let Some(r) = i.strip_prefix(b"stderr ") {
        return cri_tag(r, stamp, true);
    }
    if let Some(r) = i.strip_prefix(b"stdout ") {
        return cri_tag(r, stamp, false);
    }
    err(i)
}

fn cri_tag(i: In<'_>, stamp: PartialStamp, stderr: bool) -> IResult<In<'_>, Envelope<'_>> {
    let (i, t) = take_while1(|c: u8| c.is_ascii_uppercase()).parse(i)?;
    let partial = match t {
        b"P" => true,
        b"F" => false,
        _ => return err(i),
    };
    // Content may be empty (`... stdout F` then nothing).
    let msg = i.strip_prefix(b" ").unwrap_or(i);
    let mut env = Envelope::bare(EnvelopeKind::Cri, lossy(msg));
    env.stamps.push(stamp);
    env.cri = Some(CriTag { stderr, partial });
    Ok((&[], env))
}

/// `2023-05-05T17:33:07+0800 host proxy[812]: message`
fn syslog_iso(i: In<'_>) -> IResult<In<'_>, Envelope<'_>> {
    let (i, stamp) = iso(i)?;
    let (i, _) = char(' ').parse(i)?;
    Ok(syslog_header(i, stamp, EnvelopeKind::SyslogIso))
}

/// `May 05 17:33:07[.123456] host proxy[812]: message`
fn syslog_bsd(i: In<'_>) -> IResult<In<'_>, Envelope<'_>> {
    let (i, stamp) = bsd(i)?;
    let (i, _) = char(' ').parse(i)?;
    Ok(syslog_header(i, stamp, EnvelopeKind::SyslogBsd))
}

/// `<134>...`: RFC 5424 when a version digit and space follow the PRI.
fn syslog_pri(i: In<'_>) -> IResult<In<'_>, Envelope<'_>> {
    let (i, (_, _pri, _)) = (
        char('<'),
        take_while_m_n(1, 3, |c: u8| c.is_ascii_digit()),
        char('>'),
    )
        .parse(i)?;
    let version: IResult<In<'_>, _> =
        (take_while_m_n(1, 2, |c: u8| c.is_ascii_digit()), char(' ')).parse(i);
    if let Ok((r, _)) = version {
        return rfc5424(r);
    }
    let (r, stamp) = match bsd(i) {
        Ok(ok) => ok,
        Err(_) => iso(i)?,
    };
    let (r, _) = char(' ').parse(r)?;
    Ok(syslog_header(r, stamp, EnvelopeKind::Rfc3164))
}

/// After the stamp: `HOST TAG[PID]: MSG`, `TAG: MSG` (no host), or `HOST MSG`.
fn syslog_header(i: In<'_>, stamp: PartialStamp, kind: EnvelopeKind) -> (In<'_>, Envelope<'_>) {
    let i = skip_spaces(i);
    let (tok1, rest1) = split_token(i);
    let (host, tagtok, msg) = if let Some(t) = tok1.strip_suffix(b":") {
        (None, Some(t), rest1)
    } else {
        let (tok2, rest2) = split_token(rest1);
        match tok2.strip_suffix(b":") {
            Some(t) => (Some(tok1), Some(t), rest2),
            None => (Some(tok1), None, rest1),
        }
    };
    let mut env = Envelope::bare(kind, lossy(msg));
    env.stamps.push(stamp);
    env.host = host
        .filter(|h| !h.is_empty() && *h != b"*" && *h != b"-")
        .map(|h| lossy(h).into_owned());
    if let Some(t) = tagtok {
        let (name, pid) = split_tag(t);
        env.process = name;
        env.pid = pid;
    }
    (&[], env)
}

fn skip_spaces(i: In<'_>) -> In<'_> {
    let n = i.iter().take_while(|c| **c == b' ').count();
    &i[n..]
}

/// The next space-delimited token and what follows its single space.
fn split_token(i: In<'_>) -> (In<'_>, In<'_>) {
    match memchr::memchr(b' ', i) {
        Some(p) => (&i[..p], &i[p + 1..]),
        None => (i, &[]),
    }
}

/// `proxy[812]` → (`proxy`, 812); `*` (a redacted tag) → nothing.
fn split_tag(t: In<'_>) -> (Option<String>, Option<u32>) {
    if t == b"*" || t.is_empty() {
        return (None, None);
    }
    if let (Some(open), Some(b']')) = (memchr::memchr(b'[', t), t.last()) {
        let pid = std::str::from_utf8(&t[open + 1..t.len() - 1])
            .ok()
            .and_then(|s| s.parse().ok());
        return (Some(lossy(&t[..open]).into_owned()), pid);
    }
    (Some(lossy(t).into_owned()), None)
}

/// `1 2023-05-05T17:33:07.123456+08:00 host proxy 812 - - message`
fn rfc5424(i: In<'_>) -> IResult<In<'_>, Envelope<'_>> {
    let (i, stamp) = if let Some(r) = i.strip_prefix(b"-") {
        (r, None)
    } else {
        iso(i).map(|(r, s)| (r, Some(s)))?
    };
    let (i, _) = char(' ').parse(i)?;
    let (host, i) = split_token(i);
    let (app, i) = split_token(i);
    let (procid, i) = split_token(i);
    let (_msgid, i) = split_token(i);
    let (i, _) = structured_data(i)?;
    let i = i.strip_prefix(b" ").unwrap_or(i);
    let i = i.strip_prefix("\u{feff}".as_bytes()).unwrap_or(i);
    let nil = |b: In<'_>| {
        if b == b"-" || b.is_empty() {
            None
        } else {
            Some(lossy(b).into_owned())
        }
    };
    let mut env = Envelope::bare(EnvelopeKind::Rfc5424, lossy(i));
    env.stamps.extend(stamp);
    env.host = nil(host);
    env.process = nil(app);
    env.pid = std::str::from_utf8(procid)
        .ok()
        .and_then(|s| s.parse().ok());
    Ok((&[], env))
}

/// `-` or `[id k="v" ...][...]`; `\]` inside values is escaped.
fn structured_data(i: In<'_>) -> IResult<In<'_>, ()> {
    if let Ok((r, _)) = tag::<_, _, nom::error::Error<In<'_>>>(&b"-"[..]).parse(i) {
        return Ok((r, ()));
    }
    let mut i = i;
    let mut any = false;
    while i.first() == Some(&b'[') {
        let mut p = 1;
        let mut quoted = false;
        loop {
            match i.get(p) {
                None => return err(i),
                Some(b'\\') => p += 2,
                Some(b'"') => {
                    quoted = !quoted;
                    p += 1;
                }
                Some(b']') if !quoted => break,
                Some(_) => p += 1,
            }
        }
        i = &i[p + 1..];
        any = true;
    }
    if any {
        Ok((i, ()))
    } else {
        err(i)
    }
}

// ---- JSON envelopes ---------------------------------------------------------

fn json(line: &[u8]) -> Result<Envelope<'static>, String> {
    // Fast path: journald and Docker records read into borrowed fields, no
    // tree. Anything else (documents, odd field types) goes through `Value`.
    if let Ok(p) = serde_json::from_slice::<Probe<'_>>(line) {
        if let Some(env) = p.envelope()? {
            return Ok(env);
        }
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("bad JSON: {e}"))?;
    // A journald or Docker record with a field of an unusual type (a numeric
    // `_PID`): the same reading, from the tree.
    if let Some(env) = Probe::from_value(&v).envelope()? {
        return Ok(env);
    }
    let src = v.get("_source").unwrap_or(&v);
    document(src)
}

/// The fields of journald `-o json` and Docker json-file records.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(rename = "MESSAGE")]
    message: Option<Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    realtime: Option<Cow<'a, str>>,
    #[serde(rename = "_HOSTNAME", borrow)]
    hostname: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow)]
    identifier: Option<Cow<'a, str>>,
    #[serde(rename = "_COMM", borrow)]
    comm: Option<Cow<'a, str>>,
    #[serde(rename = "_PID", borrow)]
    pid: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_PID", borrow)]
    syslog_pid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    log: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
}

impl<'a> Probe<'a> {
    /// The same fields from a parsed tree; a field of another type than a
    /// string is absent.
    fn from_value(v: &'a Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(Cow::Borrowed);
        Probe {
            message: v.get("MESSAGE").cloned(),
            realtime: s("__REALTIME_TIMESTAMP"),
            hostname: s("_HOSTNAME"),
            identifier: s("SYSLOG_IDENTIFIER"),
            comm: s("_COMM"),
            pid: s("_PID"),
            syslog_pid: s("SYSLOG_PID"),
            log: s("log"),
            stream: s("stream"),
            time: s("time"),
        }
    }

    /// `None`: neither journald nor Docker; let the general path decide.
    fn envelope(self) -> Result<Option<Envelope<'static>>, String> {
        if let Some(m) = self.message {
            let msg = match m {
                Value::String(s) => s,
                Value::Array(a) => {
                    let bytes: Vec<u8> = a
                        .iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u8)
                        .collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => String::new(),
            };
            let mut env = Envelope::bare(EnvelopeKind::JournaldJson, Cow::Owned(msg));
            let us = self.realtime.and_then(|s| s.parse::<i64>().ok());
            if let Some(ts) = us.and_then(chrono::DateTime::<Utc>::from_timestamp_micros) {
                env.stamps
                    .push(exact_partial(ts, crate::record::TimePrecision::Microsecond));
            }
            env.host = self.hostname.map(Cow::into_owned);
            env.process = self.identifier.or(self.comm).map(Cow::into_owned);
            env.pid = self.pid.or(self.syslog_pid).and_then(|s| s.parse().ok());
            return Ok(Some(env));
        }
        if let (Some(log), true) = (self.log, self.time.is_some() || self.stream.is_some()) {
            let mut env = Envelope::bare(EnvelopeKind::DockerJson, Cow::Owned(log.into_owned()));
            if let Some(t) = self.time {
                env.stamps
                    .push(parse_rfc3339(&t).ok_or_else(|| format!("bad Docker time {t:?}"))?);
            }
            return Ok(Some(env));
        }
        Ok(None)
    }
}

/// A UTC instant as a stamp that printed everything.
pub(crate) fn exact_partial(
    ts: chrono::DateTime<Utc>,
    precision: crate::record::TimePrecision,
) -> PartialStamp {
    PartialStamp {
        year: Some(ts.year()),
        month: ts.month(),
        day: ts.day(),
        hour: ts.hour(),
        minute: ts.minute(),
        second: ts.second(),
        nanos: ts.nanosecond(),
        precision,
        offset: Some(chrono::FixedOffset::east_opt(0).expect("zero offset")),
    }
}

/// Look a dotted key up as nested objects, dotted keys, or any mix
/// (`host.name`, `{"host":{"name":..}}`, `{"log":{"file.path":..}}`).
pub fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(x) = v.get(path) {
        return Some(x);
    }
    let mut cut = path.len();
    while let Some(dot) = path[..cut].rfind('.') {
        if let Some(inner) = v.get(&path[..dot]) {
            if let Some(x) = lookup(inner, &path[dot + 1..]) {
                return Some(x);
            }
        }
        cut = dot;
    }
    None
}

fn lookup_str<'v>(v: &'v Value, path: &str) -> Option<&'v str> {
    lookup(v, path).and_then(Value::as_str)
}

/// Where the shipper read a document's line: Filebeat's `log.file.path`
/// and `log.offset` (nested, dotted or mixed keys; an offset may be a
/// number or a numeric string).
pub fn shipped_from(doc: &Value) -> (Option<String>, Option<u64>) {
    let path = lookup_str(doc, "log.file.path").map(str::to_owned);
    let offset =
        lookup(doc, "log.offset").and_then(|o| o.as_u64().or_else(|| o.as_str()?.parse().ok()));
    (path, offset)
}

/// A Filebeat / Elasticsearch document (the `_source` of a hit).
pub fn document(v: &Value) -> Result<Envelope<'static>, String> {
    let msg = lookup_str(v, "message").ok_or("document has no `message`")?;
    // Filebeat reading a syslog file ships the whole syslog line: open it too.
    let inner = text(trim_end(msg.as_bytes()));
    let mut env = match inner.kind {
        EnvelopeKind::Bare => Envelope::bare(EnvelopeKind::Document, Cow::Owned(msg.to_owned())),
        _ => Envelope {
            kind: EnvelopeKind::Document,
            msg: Cow::Owned(inner.msg.into_owned()),
            ..inner
        },
    };
    if let Some(t) = lookup_str(v, "@timestamp") {
        env.stamps
            .push(parse_rfc3339(t).ok_or_else(|| format!("bad @timestamp {t:?}"))?);
    }
    if env.host.is_none() {
        env.host = lookup_str(v, "host.name")
            .or_else(|| lookup_str(v, "host.hostname"))
            .map(str::to_owned);
    }
    if env.process.is_none() {
        env.process = lookup_str(v, "process.name").map(str::to_owned);
    }
    if env.pid.is_none() {
        env.pid = lookup(v, "process.pid")
            .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
            .map(|p| p as u32);
    }
    Ok(env)
}
