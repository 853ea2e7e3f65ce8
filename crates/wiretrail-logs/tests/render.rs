//! The renderer writes exactly what `serde_json` writes for the record
//! (the JSON record is a stable contract), and the rendered reader prints
//! the same records, in the same order, as the record reader.

mod common;
use chrono::{TimeZone, Utc};
use wiretrail_logs::reader::{ReadOptions, Rendered};
use wiretrail_logs::render::{write_record, Format};
use wiretrail_logs::{ErrorClass, LogReader, ProxyError, Source, SourceFormat, TimePrecision};

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn string(&mut self) -> String {
        const PIECES: [&str; 12] = [
            "a",
            "\"",
            "\\",
            "\n",
            "\r",
            "\t",
            "\u{8}",
            "\u{c}",
            "\u{1b}[2J",
            "\u{7f}",
            "é定",
            "\u{202e}",
        ];
        let n = self.below(6);
        (0..n)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
    fn opt(&mut self) -> Option<String> {
        (self.below(3) > 0).then(|| self.string())
    }
}

fn record(rng: &mut Rng) -> ProxyError {
    let precision = [
        TimePrecision::Second,
        TimePrecision::Millisecond,
        TimePrecision::Microsecond,
        TimePrecision::Nanosecond,
    ][rng.below(4) as usize];
    let secs = rng.below(4_000_000_000) as i64 - 1_000_000_000;
    let nanos = match rng.below(4) {
        0 => 0,
        1 => rng.below(1000) as u32 * 1_000_000,
        2 => rng.below(1_000_000) as u32 * 1000,
        _ => rng.below(1_000_000_000) as u32,
    };
    let source = match rng.below(3) {
        0 => Source::File {
            file: rng.string(),
            line: rng.next() >> rng.below(64),
        },
        1 => Source::Stdin {
            line: rng.below(1 << 40),
        },
        _ => Source::Elasticsearch {
            index: rng.string(),
            id: rng.string(),
            path: rng.opt(),
            offset: (rng.below(2) == 0).then(|| rng.next()),
        },
    };
    ProxyError {
        timestamp: Utc.timestamp_opt(secs, nanos).unwrap(),
        time_precision: precision,
        time_zone_assumed: rng.below(2) == 0,
        host: rng.opt(),
        process: rng.opt(),
        pid: (rng.below(2) == 0).then(|| rng.next() as u32),
        op: rng.opt(),
        local: rng.opt(),
        remote: rng.opt(),
        syscall: rng.opt(),
        class: ErrorClass::ALL[rng.below(ErrorClass::ALL.len() as u64) as usize],
        message: rng.string(),
        // Every format: the key is written for all but `go`.
        source_format: SourceFormat::ALL[rng.below(SourceFormat::ALL.len() as u64) as usize],
        source,
    }
}

#[test]
fn json_is_byte_for_byte_what_serde_writes() {
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for _ in 0..20_000 {
        let e = record(&mut rng);
        out.clear();
        write_record(&mut out, &e, Format::Json);
        let mut want = serde_json::to_vec(&e).unwrap();
        want.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "{e:?}"
        );
    }
}

#[test]
fn text_is_neutralised_and_keeps_its_layout() {
    let e = ProxyError {
        timestamp: Utc.with_ymd_and_hms(2023, 5, 5, 9, 33, 7).unwrap(),
        time_precision: TimePrecision::Second,
        time_zone_assumed: true,
        host: Some("gw\u{1b}]0;pwned\u{7}1".into()),
        process: Some("proxy\u{8}\u{8}".into()),
        pid: Some(812),
        op: Some("read".into()),
        local: Some("10.1.1.5:51392".into()),
        remote: Some("10.2.2.9:80".into()),
        syscall: Some("read".into()),
        class: ErrorClass::Reset,
        message: "read: connection reset by peer\u{1b}[2J\u{0}\u{202e}".into(),
        source_format: SourceFormat::Go,
        source: Source::File {
            file: "/var/log/p\u{9b}.log".into(),
            line: 12,
        },
    };
    let mut out = Vec::new();
    write_record(&mut out, &e, Format::Text);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "2023-05-05T09:33:07Z~ reset       read     10.1.1.5:51392 -> 10.2.2.9:80  \
         read: connection reset by peer\\x1b[2J\\x00\\u{202e}  \
         [gw\\x1b]0;pwned\\x071 proxy\\x08\\x08[812]] /var/log/p\\x9b.log:12\n"
    );
    assert!(!text
        .chars()
        .any(|c| c != '\n' && wiretrail_logs::text::is_unsafe_char(c)));
}

/// A generated log in every envelope: the rendered reader's bytes are the
/// record reader's records rendered one by one, whatever the chunk size.
#[test]
fn rendered_reader_prints_what_the_record_reader_reads() {
    let mut log = String::new();
    let lines = [
        "May 05 17:33:07 gw1 proxy[812]: 2023/05/05 17:33:07 http: proxy error: read tcp 10.1.1.5:51392->10.2.2.9:80: read: connection reset by peer",
        "2023-05-05T09:33:07.123456789Z stderr F 2023/05/05 17:33:07 http: proxy error: EOF",
        r#"{"__REALTIME_TIMESTAMP":"1683279187481516","_HOSTNAME":"gw\u001b1","MESSAGE":"2023/05/05 17:33:07.481516 http: proxy error: context canceled"}"#,
        "not an error",
        "{\"broken http: proxy error: x",
    ];
    for i in 0..3000 {
        log.push_str(lines[i % lines.len()]);
        log.push('\n');
    }
    let cfg = common::cfg();
    let opts = |chunk| ReadOptions {
        threads: 3,
        chunk_bytes: chunk,
    };
    let mut want = Vec::new();
    let mut r = LogReader::from_reader_with(
        "g.log",
        Box::new(std::io::Cursor::new(log.clone())),
        cfg.clone(),
        opts(4096),
    );
    let recs: Vec<_> = r.by_ref().collect();
    for format in [Format::Json, Format::Text] {
        want.clear();
        for e in &recs {
            write_record(&mut want, e, format);
        }
        for chunk in [1000, 65536, 8 << 20] {
            let mut rd = Rendered::from_reader(
                "g.log",
                Box::new(std::io::Cursor::new(log.clone())),
                cfg.clone(),
                opts(chunk),
                format,
            );
            let mut got = Vec::new();
            let mut n = 0;
            while let Some(k) = rd.next_into(&mut got) {
                n += k;
            }
            assert_eq!(n, recs.len() as u64);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{format:?} {chunk}"
            );
            assert_eq!(rd.stats(), r.stats());
        }
    }
}
