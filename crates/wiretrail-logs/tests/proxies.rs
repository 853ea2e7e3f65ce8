//! The other proxies' real lines (`fixtures/proxies/`, recorded by
//! `record.sh` from nginx 1.22, HAProxy 2.6, Caddy 2.6 and Traefik 3.7
//! against misbehaving backends on loopback; Envoy's from its docs and
//! published logs, see `envoy/SOURCES.md`) read into the same record as Go's:
//! stamp, class, op, syscall and sockets of every line that is a record, and
//! no record from the others.

mod common;

use chrono::{TimeZone, Utc};
use std::path::{Path, PathBuf};
use wiretrail_logs::reader::ReadOptions;
use wiretrail_logs::{
    parse_line, Formats, LogReader, ParseConfig, Parsed, ProxyError, Source, SourceFormat,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proxies")
        .join(name)
}

fn cfg(tz: &str, formats: Formats) -> ParseConfig {
    ParseConfig {
        tz: Some(tz.parse().unwrap()),
        year: None,
        reference: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
        formats,
    }
}

/// `LINE TIMESTAMP CLASS OP SYSCALL LOCAL REMOTE` (`-`: none).
fn summary(line: u64, e: &ProxyError) -> String {
    let j = serde_json::to_value(e).unwrap();
    let f = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "{line} {} {} {} {} {} {}",
        j["timestamp"].as_str().unwrap(),
        e.class.as_str(),
        f(&e.op),
        f(&e.syscall),
        f(&e.local),
        f(&e.remote)
    )
}

/// (fixture, zone of its zone-less stamps, format, every record it holds).
type Case = (
    &'static str,
    &'static str,
    SourceFormat,
    &'static [&'static str],
);

const CASES: &[Case] = &[
    (
        "nginx/error-info-shanghai.log",
        "Asia/Shanghai",
        SourceFormat::Nginx,
        &[
            "1 2026-12-06T12:33:37Z reset read recv - 127.0.0.1:9101",
            "2 2026-12-06T12:33:37Z eof read read - 127.0.0.1:9102",
            "3 2026-12-06T12:33:37Z refused dial connect - 127.0.0.1:9103",
            "5 2026-12-06T12:33:37Z refused dial connect - 127.0.0.2:9103",
            "7 2026-12-06T12:33:37Z other - - - -",
            "8 2026-12-06T12:33:38Z other - - - -",
            "9 2026-12-06T12:33:39Z timeout read read - 127.0.0.1:9104",
            "10 2026-12-06T12:33:40Z timeout dial connect - 127.0.0.1:9105",
            "12 2026-12-06T12:33:42Z canceled - - - 127.0.0.1:9107",
            "13 2026-12-06T12:33:42Z reset read recv - 127.0.0.1:9108",
        ],
    ),
    (
        "nginx/error-shanghai.log",
        "Asia/Shanghai",
        SourceFormat::Nginx,
        &[
            "1 2026-12-06T12:33:37Z reset read recv - 127.0.0.1:9101",
            "2 2026-12-06T12:33:37Z eof read read - 127.0.0.1:9102",
            "3 2026-12-06T12:33:37Z refused dial connect - 127.0.0.1:9103",
            "4 2026-12-06T12:33:37Z refused dial connect - 127.0.0.2:9103",
            "5 2026-12-06T12:33:37Z other - - - -",
            "6 2026-12-06T12:33:38Z other - - - -",
            "7 2026-12-06T12:33:39Z timeout read read - 127.0.0.1:9104",
            "8 2026-12-06T12:33:40Z timeout dial connect - 127.0.0.1:9105",
            "10 2026-12-06T12:33:42Z reset read recv - 127.0.0.1:9108",
        ],
    ),
    (
        "haproxy/httplog-rfc3164.log",
        "UTC",
        SourceFormat::Haproxy,
        &[
            "2 2026-12-06T12:33:45.013Z eof read read - -",
            "3 2026-12-06T12:33:45.241Z eof read read - -",
            "4 2026-12-06T12:33:46.444Z refused dial connect - -",
            "5 2026-12-06T12:33:47.648Z refused dial connect - -",
            "6 2026-12-06T12:33:48.854Z refused dial connect - -",
            "7 2026-12-06T12:33:50.056Z timeout read read - -",
            "8 2026-12-06T12:33:52.263Z timeout dial connect - -",
            "10 2026-12-06T12:33:53.776Z eof read read - -",
        ],
    ),
    (
        "haproxy/custom-bp-raw.log",
        "UTC",
        SourceFormat::Haproxy,
        &[
            "2 2026-12-06T12:33:53.993Z eof read read 127.0.0.1:40526 -",
            "3 2026-12-06T12:33:54.195Z eof read read 127.0.0.1:47306 -",
            "4 2026-12-06T12:33:55.397Z refused dial connect 127.0.0.1:38828 -",
            "5 2026-12-06T12:33:56.601Z refused dial connect 127.0.0.1:38842 -",
            "6 2026-12-06T12:33:57.802Z refused dial connect 127.0.0.1:38866 -",
            "7 2026-12-06T12:33:59.008Z timeout read read 127.0.0.1:40260 -",
            "8 2026-12-06T12:34:01.214Z timeout dial connect 127.0.0.1:35456 -",
            "10 2026-12-06T12:34:02.721Z eof read read 127.0.0.1:48578 -",
        ],
    ),
    (
        "caddy/caddy.log",
        "UTC",
        SourceFormat::Caddy,
        &[
            "9 2026-12-06T12:34:06.176066Z reset read read 127.0.0.1:48474 127.0.0.1:9101",
            "10 2026-12-06T12:34:06.378121Z eof - - - -",
            "11 2026-12-06T12:34:06.579586Z refused dial connect - 127.0.0.1:9103",
            "12 2026-12-06T12:34:06.781019Z refused dial connect - 127.0.0.1:9103",
            "13 2026-12-06T12:34:06.982593Z refused dial connect - 127.0.0.1:9103",
            "14 2026-12-06T12:34:08.185511Z timeout - - - -",
            "15 2026-12-06T12:34:09.388071Z timeout dial dial - 127.0.0.1:9105",
            "18 2026-12-06T12:34:10.893839Z closed readfrom write 127.0.0.1:50416 127.0.0.1:9108",
        ],
    ),
    (
        "caddy/access.log",
        "UTC",
        SourceFormat::Caddy,
        &[
            "2 2026-12-06T12:34:06.176103Z other - - - -",
            "3 2026-12-06T12:34:06.378154Z other - - - -",
            "4 2026-12-06T12:34:06.579617Z other - - - -",
            "5 2026-12-06T12:34:06.781080Z other - - - -",
            "6 2026-12-06T12:34:06.982633Z other - - - -",
            "7 2026-12-06T12:34:08.185680Z timeout read read - -",
            "8 2026-12-06T12:34:09.388145Z other - - - -",
            "11 2026-12-06T12:34:10.893864Z other - - - -",
        ],
    ),
    (
        "traefik/debug-common.log",
        "UTC",
        SourceFormat::Traefik,
        &[
            "1 2026-12-06T12:34:15Z reset read read 127.0.0.1:45496 127.0.0.1:9101",
            "2 2026-12-06T12:34:15Z closed readfrom write 127.0.0.1:50888 127.0.0.1:9102",
            "3 2026-12-06T12:34:15Z refused dial connect - 127.0.0.1:9103",
            "4 2026-12-06T12:34:15Z refused dial connect - 127.0.0.1:9103",
            "5 2026-12-06T12:34:16Z refused dial connect - 127.0.0.1:9103",
            "6 2026-12-06T12:34:17Z timeout - - - -",
            "7 2026-12-06T12:34:18Z timeout dial dial - 127.0.0.1:9105",
            "8 2026-12-06T12:34:20Z canceled - - - -",
            "9 2026-12-06T12:34:20Z reset readfrom write 127.0.0.1:58672 127.0.0.1:9108",
        ],
    ),
    (
        "traefik/debug-json.log",
        "UTC",
        SourceFormat::Traefik,
        &[
            "1 2026-12-06T12:34:25Z closed readfrom write 127.0.0.1:35352 127.0.0.1:9101",
            "2 2026-12-06T12:34:25Z eof - - - -",
            "3 2026-12-06T12:34:25Z refused dial connect - 127.0.0.1:9103",
            "4 2026-12-06T12:34:26Z refused dial connect - 127.0.0.1:9103",
            "5 2026-12-06T12:34:26Z refused dial connect - 127.0.0.1:9103",
            "6 2026-12-06T12:34:27Z timeout - - - -",
            "7 2026-12-06T12:34:28Z timeout dial dial - 127.0.0.1:9105",
            "8 2026-12-06T12:34:30Z canceled - - - -",
            "9 2026-12-06T12:34:30Z reset read read 127.0.0.1:47414 127.0.0.1:9108",
        ],
    ),
    (
        "traefik/access-json-run.log",
        "UTC",
        SourceFormat::Traefik,
        &[
            "2 2026-12-06T12:34:25.528597621Z other - - - 127.0.0.1:9101",
            "3 2026-12-06T12:34:25.730753986Z other - - - 127.0.0.1:9102",
            "4 2026-12-06T12:34:25.933376808Z other - - - 127.0.0.1:9103",
            "5 2026-12-06T12:34:26.135060249Z other - - - 127.0.0.1:9103",
            "6 2026-12-06T12:34:26.336925699Z other - - - 127.0.0.1:9103",
            "7 2026-12-06T12:34:27.539358385Z timeout - - - 127.0.0.1:9104",
            "8 2026-12-06T12:34:28.741427823Z timeout - - - 127.0.0.1:9105",
            "10 2026-12-06T12:34:30.247604390Z canceled - - - 127.0.0.1:9107",
            "11 2026-12-06T12:34:30.250172304Z other - - - 127.0.0.1:9108",
        ],
    ),
    (
        "envoy/access.log",
        "UTC",
        SourceFormat::Envoy,
        &[
            "2 2024-07-20T07:05:58.670Z timeout read read - 172.27.0.2:8080",
            "3 2024-07-20T07:06:24.729Z other - - - -",
            "4 2024-07-20T07:09:48.470Z refused dial connect - 172.28.0.2:801",
            "6 2022-04-24T12:23:38.048Z other read read 127.0.0.6:39063 10.244.0.17:8080",
        ],
    ),
    (
        "envoy/access.json",
        "UTC",
        SourceFormat::Envoy,
        &[
            "1 2024-07-20T07:09:48.470Z refused dial connect - 172.28.0.2:801",
            "2 2022-04-24T12:23:38.048Z other read read 127.0.0.6:39063 10.244.0.17:8080",
        ],
    ),
];

#[test]
fn every_fixture_line_reads_as_recorded() {
    for (name, tz, format, want) in CASES {
        let cfg = cfg(tz, Formats::ALL);
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        let mut got = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let no = i as u64 + 1;
            let origin = Source::File {
                file: (*name).into(),
                line: no,
            };
            match parse_line(line.as_bytes(), origin, &cfg) {
                Parsed::Error(e) => {
                    assert_eq!(e.source_format, *format, "{name}:{no}");
                    got.push(summary(no, &e));
                }
                Parsed::NotProxyError => {}
                Parsed::Malformed(why) => panic!("{name}:{no}: {why}\n{line}"),
            }
        }
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn the_reader_finds_the_same_records() {
    for (name, tz, _, want) in CASES {
        for threads in [1, 3] {
            let opts = ReadOptions {
                threads,
                chunk_bytes: 1 << 10,
            };
            let rd = LogReader::open_with(&[fixture(name)], cfg(tz, Formats::ALL), opts).unwrap();
            let got: Vec<String> = rd
                .map(|e| {
                    let Source::File { line, .. } = e.source else {
                        panic!("file source")
                    };
                    summary(line, &e)
                })
                .collect();
            assert_eq!(got, *want, "{name} ({threads} threads)");
        }
    }
}

#[test]
fn a_named_format_reads_only_its_own_lines() {
    for (name, tz, format, want) in CASES {
        let only = |f: Formats| {
            LogReader::open(&[fixture(name)], cfg(tz, f))
                .unwrap()
                .count()
        };
        assert_eq!(only(Formats::only(*format)), want.len(), "{name}");
        let others: Formats = SourceFormat::ALL
            .into_iter()
            .filter(|f| f != format)
            .collect();
        assert_eq!(only(others), 0, "{name} read as another format");
    }
}

#[test]
fn nginx_local_time_takes_the_configured_zone() {
    // nginx wrote 20:33:37 in Asia/Shanghai and printed no zone.
    let line = std::fs::read_to_string(fixture("nginx/error-shanghai.log")).unwrap();
    let line = line.lines().next().unwrap();
    let read =
        |tz: &str| match parse_line(line.as_bytes(), common::origin(), &cfg(tz, Formats::ALL)) {
            Parsed::Error(e) => e,
            other => panic!("{other:?}"),
        };
    let sh = read("Asia/Shanghai");
    assert_eq!(common::ts(&sh), "2026-12-06T12:33:37Z");
    assert!(sh.time_zone_assumed);
    assert_eq!(sh.pid, Some(32411));
    assert_eq!(sh.process.as_deref(), Some("nginx"));
    assert_eq!(common::ts(&read("UTC")), "2026-12-06T20:33:37Z");
}

#[test]
fn haproxy_stamp_is_the_request_date_plus_its_total_time() {
    // `[06/Dec/2026:12:33:45.443]` and Ta = 1001 ms: HAProxy gave up at .444
    // of the next second; the syslog header's 12:33:46 is coarser.
    let text = std::fs::read_to_string(fixture("haproxy/httplog-rfc3164.log")).unwrap();
    let line = text.lines().nth(3).unwrap();
    assert!(line.contains("[06/Dec/2026:12:33:45.443]") && line.contains("/1001 503"));
    let Parsed::Error(e) = parse_line(line.as_bytes(), common::origin(), &cfg("UTC", Formats::ALL))
    else {
        panic!("{line}")
    };
    assert_eq!(common::ts(&e), "2026-12-06T12:33:46.444Z");
    assert_eq!(e.time_precision, wiretrail_logs::TimePrecision::Millisecond);
    assert_eq!(e.host.as_deref(), Some("localhost"));
    assert_eq!(e.process.as_deref(), Some("haproxy"));
    assert_eq!(e.pid, Some(969));
}

#[test]
fn caddy_float_epoch_keeps_microseconds_and_no_assumption() {
    let text = std::fs::read_to_string(fixture("caddy/caddy.log")).unwrap();
    let line = text.lines().nth(8).unwrap();
    assert!(line.contains("\"ts\":1796560446.176066"), "{line}");
    let Parsed::Error(e) = parse_line(
        line.as_bytes(),
        common::origin(),
        &cfg("Asia/Shanghai", Formats::ALL),
    ) else {
        panic!("{line}")
    };
    assert_eq!(common::ts(&e), "2026-12-06T12:34:06.176066Z");
    assert_eq!(e.time_precision, wiretrail_logs::TimePrecision::Microsecond);
    assert!(!e.time_zone_assumed);
}

#[test]
fn source_format_is_written_for_other_proxies_only() {
    let go = common::parse_ok(
        "May 05 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: EOF",
        &common::cfg(),
    );
    let j = serde_json::to_string(&go).unwrap();
    assert!(!j.contains("source_format"), "{j}");
    let back: ProxyError = serde_json::from_str(&j).unwrap();
    assert_eq!(back.source_format, SourceFormat::Go);

    let text = std::fs::read_to_string(fixture("nginx/error-shanghai.log")).unwrap();
    let Parsed::Error(e) = parse_line(
        text.lines().next().unwrap().as_bytes(),
        common::origin(),
        &cfg("UTC", Formats::ALL),
    ) else {
        panic!()
    };
    let j = serde_json::to_string(&e).unwrap();
    assert!(j.contains(r#","source_format":"nginx","source":{"#), "{j}");
    let back: ProxyError = serde_json::from_str(&j).unwrap();
    assert_eq!(back, e);
    // The workers' renderer writes the same bytes, and the text line names
    // the program.
    let mut out = Vec::new();
    wiretrail_logs::render::write_record(&mut out, &e, wiretrail_logs::render::Format::Json);
    assert_eq!(String::from_utf8(out).unwrap(), format!("{j}\n"));
    let mut out = Vec::new();
    wiretrail_logs::render::write_record(&mut out, &e, wiretrail_logs::render::Format::Text);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("] (nginx) t.log:1\n"), "{text}");
}

/// The reader searches an input for the formats its first 64 KiB show:
/// a Go log whose nginx lines only start later is read for Go's phrase
/// alone (as fast as before), unless the configuration names nginx.
#[test]
fn formats_are_judged_by_the_head_of_an_input_unless_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mixed.log");
    let mut s = String::new();
    for i in 0..2000 {
        s.push_str(&format!(
            "2026/12/06 12:00:{:02} proxy started worker {i}\n",
            i % 60
        ));
    }
    s.push_str("2026/12/06 12:01:00 http: proxy error: EOF\n");
    let nginx = std::fs::read_to_string(fixture("nginx/error-shanghai.log")).unwrap();
    s.push_str(&nginx);
    std::fs::write(&p, &s).unwrap();
    let count = |f: Formats| {
        LogReader::open(std::slice::from_ref(&p), cfg("UTC", f))
            .unwrap()
            .count()
    };
    assert_eq!(
        count(Formats::ALL),
        1,
        "only the Go line: nginx was not in the head"
    );
    assert_eq!(
        count(Formats::only(SourceFormat::Go).with(SourceFormat::Nginx)),
        1 + 9
    );
}

/// The same lines shipped by Docker (json-file), Kubernetes (CRI) and
/// journald (`-o json`): the envelope is opened first, the proxy's line
/// inside reads as when it stood alone (the shipper's finer stamp wins,
/// as for Go's lines).
#[test]
fn envelopes_carry_the_other_proxies_lines() {
    let line = |name: &str, n: usize| {
        std::fs::read_to_string(fixture(name))
            .unwrap()
            .lines()
            .nth(n - 1)
            .unwrap()
            .to_owned()
    };
    let read = |l: &str| match parse_line(l.as_bytes(), common::origin(), &cfg("UTC", Formats::ALL))
    {
        Parsed::Error(e) => e,
        other => panic!("{other:?}\n{l}"),
    };
    let caddy = line("caddy/caddy.log", 9);
    let docker = serde_json::json!({"log": format!("{caddy}\n"), "stream": "stderr", "time": "2026-12-06T12:34:06.176999999Z"});
    let e = read(&docker.to_string());
    assert_eq!(e.source_format, SourceFormat::Caddy);
    assert_eq!(e.local.as_deref(), Some("127.0.0.1:48474"));
    assert_eq!(common::ts(&e), "2026-12-06T12:34:06.176999999Z");

    let traefik = line("traefik/debug-json.log", 3);
    let e = read(&format!(
        "2026-12-06T12:34:25.123456789Z stderr F {traefik}"
    ));
    assert_eq!(e.source_format, SourceFormat::Traefik);
    assert_eq!(
        (e.class, e.op.as_deref()),
        (wiretrail_logs::ErrorClass::Refused, Some("dial"))
    );

    let nginx = line("nginx/error-shanghai.log", 4);
    let journald = serde_json::json!({"MESSAGE": nginx, "__REALTIME_TIMESTAMP": "1796560417000000", "_HOSTNAME": "edge1", "SYSLOG_IDENTIFIER": "nginx", "_PID": "32411"});
    let e = read(&journald.to_string());
    assert_eq!(e.source_format, SourceFormat::Nginx);
    assert_eq!(e.host.as_deref(), Some("edge1"));
    assert_eq!(e.remote.as_deref(), Some("127.0.0.2:9103"));
    assert_eq!(e.class, wiretrail_logs::ErrorClass::Refused);
}
