//! The terminal rendering of the seed incident: rows, arrows, marks, the
//! header, colour only on request, caps, and hostile text neutralised.

mod common;

use common::*;
use wiretrail_report::{render_summary_terminal, render_terminal, TerminalOptions};

fn render(r: &wiretrail_correlate::model::Report, opts: &TerminalOptions) -> String {
    let mut out = Vec::new();
    render_terminal(r, opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn plain() -> TerminalOptions {
    TerminalOptions {
        color: false,
        width: None,
        max_rows_per_incident: None,
    }
}

/// The whole output against a checked-in golden file. Regenerate with
/// `UPDATE_GOLDEN=1 cargo test -p wiretrail-report --test terminal` and
/// review the diff.
#[test]
fn seed_matches_golden() {
    let got = render(&seed_report(), &plain());
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-terminal.txt"
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want =
        std::fs::read_to_string(path).expect("golden file (run with UPDATE_GOLDEN=1 to create)");
    assert_eq!(
        got, want,
        "terminal output changed; see tests/fixtures/seed-terminal.txt"
    );
}

fn row<'a>(out: &'a str, needle: &str) -> &'a str {
    let mut hits = out.lines().filter(|l| l.contains(needle));
    let first = hits
        .next()
        .unwrap_or_else(|| panic!("no row contains {needle:?} in\n{out}"));
    first
}

fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn seed_rows_have_tshark_columns_and_marks() {
    let out = render(&seed_report(), &plain());
    // The stray 104-byte tail on backend-03: proxy → node, relative seq 9042.
    let stray = cells(row(&out, " 3113698 "));
    assert_eq!(
        stray,
        [
            "+0.904561",
            "backend-03",
            "→",
            "3113698",
            "[PSH,",
            "ACK]",
            "9042",
            "1115",
            "104",
            "83",
            "1825820057",
            "stray_segment"
        ]
    );
    // Its RST back to the proxy: no ACK flag, so no ack number.
    let rst = cells(row(&out, " 3113700 "));
    assert_eq!(
        rst,
        [
            "+0.904586",
            "backend-03",
            "←",
            "3113700",
            "[RST]",
            "1115",
            "-",
            "0",
            "0",
            "-",
            "stray_rst"
        ]
    );
    // The copy recorded by the same node is marked, not called a retransmission.
    let dup = cells(row(&out, " 3113699 "));
    assert_eq!(dup.last(), Some(&"stray_segment,capture_duplicate"));
    // The proxy's RST to the owner after the reset, relative seq 9042.
    let prst = cells(row(&out, " 3841966 "));
    assert_eq!(
        &prst[..7],
        [
            "+0.904666",
            "backend-01",
            "→",
            "3841966",
            "[RST]",
            "9042",
            "-"
        ]
    );
    // backend-01's handshake, relative numbers.
    let syn = cells(row(&out, " 3841700 "));
    assert_eq!(
        &syn[..8],
        [
            "+0.889101",
            "backend-01",
            "→",
            "3841700",
            "[SYN]",
            "0",
            "-",
            "0"
        ]
    );
    let synack = cells(row(&out, " 3841702 "));
    assert_eq!(
        &synack[..8],
        [
            "+0.889130",
            "backend-01",
            "←",
            "3841702",
            "[SYN,",
            "ACK]",
            "0",
            "1"
        ]
    );
    // The log line is interleaved at its time, first (its stamp has 1 s precision).
    let log = row(&out, "┆ [1] http: proxy error:");
    assert!(log.trim_start().starts_with("+0.000000  log"), "{log}");
    // Rows are in time order.
    let pos = |s: &str| out.find(s).unwrap();
    assert!(
        pos(" 3841962 ") < pos(" 3113698 ")
            && pos(" 3113698 ") < pos(" 3113700 ")
            && pos(" 3113700 ") < pos(" 3841964 ")
    );
}

#[test]
fn seed_header_says_what_happened() {
    let out = render(&seed_report(), &plain());
    for needle in [
        "verdict  flow_split (90% confidence): one connection's segments reached two nodes",
        "proxy    192.0.2.10  backend 198.51.100.80:80  community_id 1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "[1] 2023-05-05T17:39:14Z (zone assumed) proxy-01 readfrom tcp 192.0.2.10:49092->198.51.100.80:80",
        "[closed]  (/var/log/gateway/proxy.log:48213)",
        "diagnosis flow_split 90%  owner backend-01  stray backend-03",
        "flow_split 90% [backend-01, backend-03]",
        "evidence backend-03 /captures/backend-03/003.cap#3113700 2023-05-05T17:39:14.904586Z  RST seq=1115",
        "backend-02   backend  did not see it (its captures cover the window)",
        "clock    backend-03   +0.012300 s ±0.000350 s (tsval, 412 samples)",
        "conn_state OTH    history Dr         2 packets (+2 capture duplicates)",
        "by cause     flow_split 1",
        "stray nodes  backend-03 1",
        "patterns     - stray segment was the 2nd segment of a POST",
        "problems (1):",
        "3 capture files (3.0 GiB), 36 packets matched",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    assert!(!out.contains('\x1b'), "no colour was asked for");
}

#[test]
fn colour_only_when_asked_and_rst_is_red() {
    let opts = TerminalOptions {
        color: true,
        ..plain()
    };
    let out = render(&seed_report(), &opts);
    let rst = row(&out, " 3113700 ");
    assert!(
        rst.starts_with("\x1b[31m") && rst.ends_with("\x1b[0m"),
        "{rst:?}"
    );
    let stray = row(&out, " 3113698 ");
    assert!(stray.starts_with("\x1b[33m"), "{stray:?}");
    let log = row(&out, "┆ [1]");
    assert!(log.starts_with("\x1b[36m"), "{log:?}");
    // Without colour the same rows carry no escapes at all.
    let out = render(&seed_report(), &plain());
    assert!(!out.contains('\x1b'));
}

#[test]
fn width_cuts_lines_before_colour() {
    let opts = TerminalOptions {
        color: true,
        width: Some(60),
        max_rows_per_incident: None,
    };
    let out = render(&seed_report(), &opts);
    for line in out.lines() {
        let visible: String = line
            .replace("\x1b[0m", "")
            .split('\x1b')
            .map(|p| {
                p.trim_start_matches(|c: char| c == '[' || c.is_ascii_digit())
                    .trim_start_matches('m')
            })
            .collect();
        assert!(visible.chars().count() <= 60, "{line:?}");
        if line.contains('\x1b') {
            assert!(line.ends_with("\x1b[0m"), "cut inside colour: {line:?}");
        }
    }
    assert!(out.contains('…'));
}

#[test]
fn row_cap_keeps_the_telling_rows_and_says_what_it_dropped() {
    let r = big_report(2000);
    let total = r.incidents[0].timeline.len();
    let opts = TerminalOptions {
        max_rows_per_incident: Some(40),
        ..plain()
    };
    let out = render(&r, &opts);
    let rows = out
        .lines()
        .filter(|l| l.trim_start().starts_with('+'))
        .count();
    assert_eq!(rows, 40, "{out}");
    for must in [" 3113698 ", " 3113700 ", " 3841966 ", " 3841700 ", "┆ [1]"] {
        assert!(out.contains(must), "capped output lost {must}");
    }
    // Every dropped row is accounted for: in "⋯ N rows not shown" lines or
    // as capture duplicates folded into the row they copy.
    let elided: usize = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("⋯ "))
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    let folded: usize = out
        .lines()
        .filter_map(|l| l.split("(+").nth(1))
        .filter_map(|l| {
            l.strip_suffix(" capture duplicates not shown)")
                .or_else(|| l.strip_suffix(" capture duplicate not shown)"))
        })
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    assert!(folded > 0, "{out}");
    assert_eq!(elided + folded + 40, total);
}

#[test]
fn hostile_text_cannot_reach_the_terminal() {
    for color in [false, true] {
        let out = render(&hostile_report(), &TerminalOptions { color, ..plain() });
        let mut sum = Vec::new();
        render_summary_terminal(&hostile_report(), &mut sum).unwrap();
        let sum = String::from_utf8(sum).unwrap();
        for text in [&out, &sum] {
            // The only escape sequences are our own SGR colour codes.
            let mut rest = text.as_str();
            while let Some(i) = rest.find('\x1b') {
                let tail = &rest[i..];
                assert!(
                    [
                        "\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m",
                        "\x1b[36m"
                    ]
                    .iter()
                    .any(|s| tail.starts_with(s)),
                    "foreign escape: {:?}",
                    &tail[..tail.len().min(12)]
                );
                rest = &tail[1..];
            }
            assert!(
                !text.contains('\u{202e}') && !text.contains('\u{9b}') && !text.contains('\x07')
            );
            assert!(
                text.contains("\\x1b[2J") && text.contains("\\u{202e}") && text.contains("\\x07")
            );
        }
    }
}

#[test]
fn summary_view_lists_causes_nodes_hours_and_inputs() {
    let mut out = Vec::new();
    render_summary_terminal(&seed_report(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("── summary: 1 incidents, 1 errors"));
    assert!(out.contains("owner nodes  backend-01 1"));
    assert!(
        out.contains("2023-05-05T17  ████████████████████████████████████████ 1"),
        "{out}"
    );
    assert!(out.contains("84213 log lines, 12 proxy errors"));
    assert!(
        !out.contains("══ incident"),
        "the summary view has no incidents"
    );
}

#[test]
fn empty_report_says_so() {
    let mut r = seed_report();
    r.incidents.clear();
    let out = render(&r, &plain());
    assert!(out.contains("no incidents in the window"));
}
