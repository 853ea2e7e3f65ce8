//! Property: a random proxy error formatted into any envelope parses back
//! to the same record.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use wiretrail_logs::{parse_line, ErrorClass, ParseConfig, Parsed, Source, TimePrecision};

#[derive(Debug, Clone)]
struct Rec {
    ts: DateTime<Utc>,
    micros: bool,
    local: Option<String>,
    remote: String,
    tail: (&'static str, &'static str, ErrorClass),
    host: String,
    process: String,
    pid: u32,
    ahead_days: i64,
}

fn addr() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), 1u16..)
            .prop_map(|(a, p)| format!("{}.{}.{}.{}:{p}", a[0], a[1], a[2], a[3])),
        (any::<[u16; 3]>(), 1u16..)
            .prop_map(|(a, p)| format!("[fd00:{:x}:{:x}::{:x}]:{p}", a[0], a[1], a[2])),
        (any::<u16>(), "[a-z]{2,6}[0-9]", 1u16..)
            .prop_map(|(a, z, p)| format!("[fe80::{a:x}%{z}]:{p}")),
        ("[a-z][a-z0-9-]{0,12}(\\.[a-z]{2,5}){0,2}", 1u16..).prop_map(|(h, p)| format!("{h}:{p}")),
    ]
}

// (syscall part, errno text, class)
const TAILS: [(&str, &str, ErrorClass); 6] = [
    ("read: ", "connection reset by peer", ErrorClass::Reset),
    ("write: ", "broken pipe", ErrorClass::BrokenPipe),
    ("", "use of closed network connection", ErrorClass::Closed),
    ("connect: ", "connection refused", ErrorClass::Refused),
    ("", "i/o timeout", ErrorClass::Timeout),
    ("connect: ", "no route to host", ErrorClass::Unreachable),
];

fn rec() -> impl Strategy<Value = Rec> {
    (
        (
            946_684_800i64..2_000_000_000,
            0u32..1_000_000,
            any::<bool>(),
        ),
        proptest::option::of(addr()),
        addr(),
        0usize..TAILS.len(),
        (
            "[a-z][a-z0-9-]{0,10}",
            "[a-z][a-z0-9_-]{0,10}",
            1u32..4_000_000,
        ),
        0i64..300,
    )
        .prop_map(
            |((secs, us, micros), local, remote, t, (host, process, pid), ahead_days)| Rec {
                ts: Utc
                    .timestamp_opt(secs, if micros { us * 1000 } else { 0 })
                    .unwrap(),
                micros,
                local,
                remote,
                tail: TAILS[t],
                host,
                process,
                pid,
                ahead_days,
            },
        )
}

impl Rec {
    fn go_error(&self) -> String {
        let op = if self.local.is_some() { "read" } else { "dial" };
        let addrs = match &self.local {
            Some(l) => format!("{l}->{}", self.remote),
            None => self.remote.clone(),
        };
        format!("{op} tcp {addrs}: {}{}", self.tail.0, self.tail.1)
    }
    fn go_stamp(&self, micros: bool) -> String {
        if micros {
            self.ts.format("%Y/%m/%d %H:%M:%S%.6f").to_string()
        } else {
            self.ts.format("%Y/%m/%d %H:%M:%S").to_string()
        }
    }
    fn frac(&self) -> String {
        if self.micros {
            self.ts.format("%.6f").to_string()
        } else {
            String::new()
        }
    }
}

/// (line, has host/process/pid, the precision it carries)
fn envelopes(r: &Rec) -> Vec<(String, bool, TimePrecision)> {
    let p = if r.micros {
        TimePrecision::Microsecond
    } else {
        TimePrecision::Second
    };
    let go = format!(
        "{} http: proxy error: {}",
        r.go_stamp(r.micros),
        r.go_error()
    );
    let go_s = format!("{} http: proxy error: {}", r.go_stamp(false), r.go_error());
    let (h, pr, pid) = (&r.host, &r.process, r.pid);
    let bsd = r.ts.format("%b %d %H:%M:%S").to_string();
    let iso = r.ts.format("%Y-%m-%dT%H:%M:%S").to_string();
    let f = r.frac();
    let json_go = go.replace('\\', "\\\\");
    vec![
        (go.clone(), false, p),
        (
            format!(
                "{} proxy.go:88: http: proxy error: {}",
                r.go_stamp(r.micros),
                r.go_error()
            ),
            false,
            p,
        ),
        (format!("[{pr}] {go}"), false, p),
        (
            format!(
                "{} [{pr}] http: proxy error: {}",
                r.go_stamp(r.micros),
                r.go_error()
            ),
            false,
            p,
        ),
        (format!("{bsd}{f} {h} {pr}[{pid}]: {go_s}"), true, p),
        (
            format!(
                "{bsd}{f} {h} {pr}[{pid}]: http: proxy error: {}",
                r.go_error()
            ),
            true,
            p,
        ),
        (format!("{iso}{f}+0000 {h} {pr}[{pid}]: {go}"), true, p),
        (format!("<30>{bsd} {h} {pr}[{pid}]: {go}"), true, p),
        (format!("<30>1 {iso}{f}Z {h} {pr} {pid} - - {go}"), true, p),
        (format!("{iso}{f}Z stderr F {go}"), false, p),
        (
            format!(r#"{{"log":"{json_go}\n","stream":"stderr","time":"{iso}{f}Z"}}"#),
            false,
            p,
        ),
        (
            format!(
                r#"{{"__REALTIME_TIMESTAMP":"{}","_HOSTNAME":"{h}","SYSLOG_IDENTIFIER":"{pr}","_PID":"{pid}","MESSAGE":"{json_go_s}"}}"#,
                r.ts.timestamp_micros(),
                json_go_s = go_s
            ),
            true,
            TimePrecision::Microsecond,
        ),
        (
            format!(
                r#"{{"@timestamp":"{iso}{f}Z","message":"{go}","host":{{"name":"{h}"}},"process":{{"name":"{pr}","pid":{pid}}}}}"#
            ),
            true,
            p,
        ),
        (
            format!(
                r#"{{"@timestamp":"{iso}{f}Z","message":"{go}","host.name":"{h}","process.name":"{pr}","process.pid":{pid}}}"#
            ),
            true,
            p,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_envelope_round_trips(r in rec()) {
        let cfg = ParseConfig { tz: Some(chrono_tz::UTC), year: None, reference: r.ts + Duration::days(r.ahead_days), formats: wiretrail_logs::Formats::ALL };
        for (line, who, precision) in envelopes(&r) {
            let got = match parse_line(line.as_bytes(), Source::Stdin { line: 1 }, &cfg) {
                Parsed::Error(e) => e,
                other => panic!("{line:?} gave {other:?}"),
            };
            let want_ts = if precision == TimePrecision::Microsecond || r.micros { r.ts } else { r.ts - Duration::nanoseconds(i64::from(r.ts.timestamp_subsec_nanos())) };
            prop_assert_eq!(got.timestamp, want_ts, "{}", line);
            prop_assert_eq!(got.time_precision, precision, "{}", line);
            prop_assert_eq!(&got.local, &r.local, "{}", line);
            prop_assert_eq!(got.remote.as_deref(), Some(r.remote.as_str()), "{}", line);
            prop_assert_eq!(got.class, r.tail.2, "{}", line);
            prop_assert_eq!(&got.message, &r.go_error(), "{}", line);
            if who {
                prop_assert_eq!(got.host.as_deref(), Some(r.host.as_str()), "{}", line);
                prop_assert_eq!(got.process.as_deref(), Some(r.process.as_str()), "{}", line);
                prop_assert_eq!(got.pid, Some(r.pid), "{}", line);
            }
            // And the JSON record survives serde.
            let back: wiretrail_logs::ProxyError = serde_json::from_str(&serde_json::to_string(&got).unwrap()).unwrap();
            prop_assert_eq!(back, got);
        }
    }
}
