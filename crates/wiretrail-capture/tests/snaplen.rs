//! What the snaplen does to records, both ways: a capture's snaplen that
//! cut a TCP header (D17: counted and said, never silently dropped), and the
//! slices wiretrail writes, whose records must fit the interface's snaplen
//! or Wireshark refuses the whole file (D13).

mod rotations;

use rotations::*;
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Detail, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions};
use wiretrail_capture::pcapng::{PcapngWriter, SNAPLEN};
use wiretrail_capture::problem::ProblemKind;
use wiretrail_capture::read::CaptureReader;
use wiretrail_capture::{Duration, FlowQuery, Timestamp};

/// A tool on PATH; in CI (`CI=true` or `WIRETRAIL_REQUIRE_ALL=1`) a missing
/// one fails the test instead of skipping its part.
fn tool(name: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        wiretrail_testsupport::require_or_skip(&format!("{name} (apt-get install {name})"));
    }
    found
}

/// Extracts every packet of proxy port 12336 (the hostile files' port)
/// from one file of the corpus's `bad/` folder.
fn extract_bad(name: &str) -> wiretrail_capture::extract::Extraction {
    let tmp = tempfile::tempdir().unwrap();
    let q = vec![FlowQuery::to_port(
        12336,
        None,
        None,
        Timestamp::from_nanos(i64::MIN / 2),
        Timestamp::from_nanos(i64::MAX / 2),
    )];
    let cat = Catalog::build_with(
        &[NodeSpec::new(
            "n",
            [corpus().join("bad").join(name).to_str().unwrap()],
        )],
        &CatalogOptions {
            cache_dir: Some(tmp.path().to_path_buf()),
            detail: Detail::for_queries(&q, Duration::ZERO),
            ..CatalogOptions::default()
        },
    )
    .unwrap();
    extract(&cat, &q, &ExtractOptions::default())
}

#[test]
fn a_tcp_header_cut_before_its_fixed_part_is_counted_and_said() {
    // snaplen 46: the TCP header is cut after 12 bytes (ports, seq, ack).
    let ex = extract_bad("tcpdump-tcp-header-heapoverflow.pcap");
    assert!(ex.packets.is_empty(), "nothing to decode");
    assert_eq!(
        ex.stats[0].skipped.get("truncated before the TCP header"),
        Some(&1),
        "{:?}",
        ex.stats[0].skipped
    );
    let p = ex
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Undecodable && p.message.contains("snaplen cut"))
        .unwrap_or_else(|| panic!("said: {:?}", ex.problems));
    assert_eq!(p.offset, Some(24), "the record's offset");
    assert!(p.message.contains("1 skipped"), "{}", p.message);
}

#[test]
fn a_tcp_header_cut_in_its_options_is_kept_flagged_and_said() {
    // Data offset 15 (60 bytes), 30 captured: the fixed header is whole.
    let ex = extract_bad("tcpdump-heapoverflow-tcp-print.pcap");
    assert_eq!(ex.packets.len(), 1);
    assert!(ex.packets[0].opts.cut, "the options are flagged as cut");
    assert_eq!(ex.stats[0].header_cut, 1);
    assert!(
        ex.problems
            .iter()
            .any(|p| p.message.contains("1 kept with their options incomplete")),
        "{:?}",
        ex.problems
    );
}

#[test]
fn slice_records_longer_than_the_snaplen_are_cut_and_said() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("slice.pcapng");
    let big = vec![0xabu8; 300_000];
    let small = vec![0x11u8; 60];
    let mut w =
        PcapngWriter::new(std::fs::File::create(&path).unwrap(), &[("backend-01", 1)]).unwrap();
    w.write_packet(
        0,
        Timestamp::from_nanos(1_700_000_000_000_000_000),
        &small,
        60,
        None,
    )
    .unwrap();
    w.write_packet(
        0,
        Timestamp::from_nanos(1_700_000_000_100_000_000),
        &big,
        300_000,
        Some("stray RST"),
    )
    .unwrap();
    assert_eq!(w.cut(), 1);
    w.finish().unwrap();

    let mut rd = CaptureReader::open(&path).unwrap();
    let mut got = Vec::new();
    while let Some(r) = rd.next_record() {
        let r = r.unwrap();
        got.push((r.data.len(), r.orig_len));
    }
    assert_eq!(got, vec![(60, 60), (SNAPLEN as usize, 300_000)]);
    assert_eq!(
        rd.section().unwrap().interfaces[0].snaplen,
        SNAPLEN,
        "the interface declares the snaplen its records respect"
    );
    let bytes = std::fs::read(&path).unwrap();
    let said = b"cut this record to the interface's snaplen of 262144 bytes";
    assert!(bytes.windows(said.len()).any(|w| w == said));
    assert!(
        bytes.windows(9).any(|w| w == b"stray RST"),
        "the comment stays"
    );

    // Wireshark's reader takes the file whole.
    if tool("tshark") {
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-T", "fields", "-e", "frame.cap_len", "-e", "frame.len"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tshark refused the slice: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            ["60\t60", "262144\t300000"]
        );
    }
}
