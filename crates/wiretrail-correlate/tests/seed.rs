//! The seed incident (`shared/seed/troubleshoot-502-problem.md`), rebuilt
//! from its own tshark lines: node 001 owns the connection (it saw the
//! handshake-era data, every packet captured twice), node 003 received the
//! 104-byte second part of a POST and answered RST with seq = the ACK of
//! that segment. Relative seq/ack from the tshark lines are turned into raw
//! values with proxy ISN 1_000_000_000 and backend ISN 3_000_000_000.

mod common;

use common::*;
use wiretrail_capture::Direction::{ToBackend as TB, ToProxy as TP};
use wiretrail_correlate::model::{
    Cause, ConnState, EventBody, FindingKind, Mark, OffsetMethod, PacketEvent,
};
use wiretrail_logs::{ErrorClass, TimePrecision};

const PI: u32 = 1_000_000_000; // proxy ISN
const BI: u32 = 3_000_000_000; // backend ISN
const BASE: &str = "2023-05-05T09:36:00Z";
/// backend-03's clock runs 2.5 s behind backend-01's.
const SKEW: f64 = 2.5;

fn seed() -> Sim {
    let mut s = Sim::new(49092);
    let n1 = "backend-01";
    let t1 = |x: f64| at(BASE, x);
    // Before the excerpt: the handshake and the first two request segments
    // (relative seq 1..4161, as the ACKs 1552 and 4161 prove), each twice.
    let early = [
        (
            3841690,
            P::new(n1, t1(220.893000), TB, "S", PI, 0, 0)
                .id(40000)
                .ts(1825820045, 0)
                .win(64240),
        ),
        (
            3841692,
            P::new(n1, t1(220.893050), TP, "SA", BI, PI + 1, 0)
                .ts(2612233210, 1825820045)
                .win(65160),
        ),
        (
            3841694,
            P::new(n1, t1(220.893100), TB, "A", PI + 1, BI + 1, 0)
                .id(40001)
                .ts(1825820046, 2612233210)
                .win(83),
        ),
        (
            3841696,
            P::new(n1, t1(220.895800), TB, "A", PI + 1, BI + 1, 1551)
                .id(40002)
                .ts(1825820047, 2612233210)
                .win(83),
        ),
        (
            3841698,
            P::new(n1, t1(220.895850), TB, "A", PI + 1552, BI + 1, 2609)
                .id(40003)
                .ts(1825820047, 2612233210)
                .win(83),
        ),
    ];
    for (f, p) in early {
        s.add_at(p, Some(f));
        s.dup_last(0, 63); // the second copy: TTL differs, ignored by the header hash
    }
    // The excerpt, line by line (every second line is tshark's "[TCP Retransmission]"/"[TCP Dup ACK]" copy).
    let lines = [
        (
            3841744,
            P::new(n1, t1(220.895866), TB, "PA", PI + 4161, BI + 1, 3433)
                .id(40004)
                .ts(1825820048, 2612233213)
                .win(83),
            0,
        ),
        (
            3841746,
            P::new(n1, t1(220.895879), TP, "A", BI + 1, PI + 1552, 0)
                .ts(2612233213, 1825820048)
                .win(272),
            1000,
        ),
        (
            3841748,
            P::new(n1, t1(220.895904), TP, "A", BI + 1, PI + 4161, 0)
                .ts(2612233213, 1825820048)
                .win(272),
            1000,
        ),
        (
            3841750,
            P::new(n1, t1(220.895937), TP, "A", BI + 1, PI + 7594, 0)
                .ts(2612233214, 1825820048)
                .win(272),
            1000,
        ),
        (
            3841803,
            P::new(n1, t1(220.901916), TP, "PA", BI + 1, PI + 7594, 1114)
                .ts(2612233219, 1825820048)
                .win(272),
            2000,
        ),
        (
            3841812,
            P::new(n1, t1(220.901996), TB, "A", PI + 7594, BI + 1115, 0)
                .id(40005)
                .ts(1825820054, 2612233219)
                .win(83),
            0,
        ),
        (
            3841962,
            P::new(n1, t1(220.904543), TB, "A", PI + 7594, BI + 1115, 1448)
                .id(40006)
                .ts(1825820057, 2612233219)
                .win(83),
            0,
        ),
        (
            3841964,
            P::new(n1, t1(220.904630), TP, "A", BI + 1115, PI + 9042, 0)
                .ts(2612233222, 1825820057)
                .win(272),
            1000,
        ),
        (
            3841966,
            P::new(n1, t1(220.904666), TB, "R", PI + 9042, 0, 0).win(0),
            0,
        ),
    ];
    for (f, p, dt) in lines {
        s.add_at(p, Some(f));
        s.dup_last(dt, 64);
    }
    // Node 003: the 104-byte rest of the POST (same TSval as frame 3841962),
    // then its RST, seq = the segment's ACK (relative 1 on 003: no handshake there).
    let n3 = "backend-03";
    let t3 = |x: f64| at(BASE, x - SKEW);
    s.add_at(
        P::new(n3, t3(220.904560), TB, "PA", PI + 9042, BI + 1115, 104)
            .id(40007)
            .ts(1825820057, 2612233219)
            .win(83),
        Some(3113698),
    );
    s.dup_last(0, 64);
    s.add_at(
        P::new(n3, t3(220.904585), TP, "R", BI + 1115, 0, 0).win(0),
        Some(3113700),
    );
    s.dup_last(1000, 64);
    s
}

fn seed_error() -> wiretrail_logs::ProxyError {
    error(
        "2023-05-05T09:39:40Z",
        TimePrecision::Second,
        "readfrom tcp ip-proxy:49092->ip-backend:80: write tcp ip-proxy:49092->ip-backend:80: use of closed network connection",
        ErrorClass::Closed,
        3,
    )
}

#[test]
fn seed_is_a_flow_split_owned_by_001_with_003_stray() {
    let s = seed();
    let report = run(vec![seed_error()], s.pkts, &backends(3));
    assert_eq!(report.incidents.len(), 1);
    let inc = &report.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::FlowSplit, "{:#?}", inc.verdict);
    assert!(inc.verdict.confidence >= 0.9, "{}", inc.verdict.confidence);
    let d = &inc.errors[0].diagnosis;
    assert_eq!(d.owner_node.as_deref(), Some("backend-01"));
    assert_eq!(d.stray_nodes, vec!["backend-03".to_string()]);
    let frames: Vec<(String, u64)> = d
        .evidence
        .iter()
        .map(|e| (e.origin.to_string(), e.frame))
        .collect();
    for want in [
        ("backend-01", 3841690),
        ("backend-03", 3113698),
        ("backend-03", 3113700),
    ] {
        assert!(
            frames.contains(&(want.0.to_string(), want.1)),
            "{want:?} missing from {frames:?}"
        );
    }
    // The stray RST's provenance: seq equals the ACK of the segment it answers.
    let prov = inc
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::RstProvenance && f.nodes == ["backend-03"])
        .expect("the stray RST is classified");
    assert!(
        prov.summary
            .contains("equals the ACK of the segment it answers (frame 3113698)"),
        "{}",
        prov.summary
    );
    // Node views, Zeek words.
    let views = &inc.errors[0].connection;
    let v1 = views.iter().find(|v| v.node == "backend-01").unwrap();
    let v3 = views.iter().find(|v| v.node == "backend-03").unwrap();
    assert!(v1.handshake_seen && !v3.handshake_seen);
    assert_eq!(v1.conn_state, ConnState::Rsto);
    assert_eq!(v1.history, "ShADadR");
    assert_eq!(
        (v3.conn_state, v3.history.as_str()),
        (ConnState::Rstrh, "Dr")
    );
    assert_eq!((v1.packets, v1.capture_duplicates), (14, 14));
    assert_eq!((v3.packets, v3.capture_duplicates), (2, 2));
    let b2 = inc.nodes.iter().find(|n| n.name == "backend-02").unwrap();
    assert!(!b2.saw_connection);
}

#[test]
fn seed_copies_are_capture_duplicates_not_retransmissions() {
    let report = run(vec![seed_error()], seed().pkts, &backends(3));
    let inc = &report.incidents[0];
    let mut dups = 0;
    for ev in &inc.timeline {
        if let EventBody::Packet(PacketEvent { marks, .. }) = &ev.body {
            assert!(!marks.contains(&Mark::Retransmission), "{ev:?}");
            assert!(!marks.contains(&Mark::DupAck), "{ev:?}");
            dups += usize::from(marks.contains(&Mark::CaptureDuplicate));
        }
    }
    assert_eq!(dups, 16);
    assert!(inc
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::CaptureDuplicate && f.nodes == ["backend-01"]));
    // The stray segment sits in the owner's sequence space: relative 9042, as on 001.
    let stray = inc
        .timeline
        .iter()
        .find_map(|ev| match &ev.body {
            EventBody::Packet(p) if p.frame == 3113698 => Some((p.rel_seq, p.marks.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(stray.0, Some(9042));
    assert!(stray.1.contains(&Mark::StraySegment));
}

#[test]
fn seed_same_tsval_on_two_nodes_sets_the_clock() {
    let report = run(vec![seed_error()], seed().pkts, &backends(3));
    let off = |n: &str| {
        report
            .clock_offsets
            .iter()
            .find(|o| o.node == n)
            .unwrap()
            .clone()
    };
    let o1 = off("backend-01");
    assert_eq!((o1.offset_s, o1.method), (0.0, OffsetMethod::Reference));
    let o3 = off("backend-03");
    assert_eq!(o3.method, OffsetMethod::Tsval);
    let u3 = o3.uncertainty_s.expect("placed");
    assert!(u3 > 0.0 && u3 < 0.005, "{o3:?}");
    assert!((o3.offset_s - SKEW).abs() <= u3, "{o3:?}");
    // On the reference clock the two halves of the POST (same TSval, sent
    // within one tick) land together, within the stated uncertainty.
    let inc = &report.incidents[0];
    let t = |f: u64| {
        inc.timeline
            .iter()
            .find(|e| matches!(e.body, EventBody::Packet(PacketEvent { frame, .. }) if frame == f))
            .unwrap()
            .t_ns
    };
    let gap_s = t(3113698).abs_diff(t(3841962)).as_secs_f64();
    assert!(gap_s <= u3, "{gap_s} > {u3}");
}

#[test]
fn seed_summary_and_json() {
    let report = run(vec![seed_error()], seed().pkts, &backends(3));
    assert!(
        report
            .summary
            .patterns
            .iter()
            .any(|p| p.contains("data segment #2 of its request in 1/1")),
        "{:?}",
        report.summary.patterns
    );
    assert!(
        report
            .summary
            .patterns
            .iter()
            .any(|p| p.contains("1552–1552 bytes")),
        "{:?}",
        report.summary.patterns
    );
    assert_eq!(report.summary.stray_nodes.get("backend-03"), Some(&1));
    let json = serde_json::to_string_pretty(&report).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for k in ["schema_version", "clock_offsets", "incidents"] {
        assert!(v.get(k).is_some(), "{k}");
    }
    let inc = &v["incidents"][0];
    for k in [
        "id", "start", "end", "proxy", "backend", "verdict", "findings", "nodes", "errors",
    ] {
        assert!(inc.get(k).is_some(), "incident key {k}");
    }
    assert_eq!(inc["verdict"]["cause"], "flow_split");
    let e = &inc["errors"][0];
    assert_eq!(e["diagnosis"]["owner_node"], "backend-01");
    assert_eq!(e["diagnosis"]["stray_nodes"][0], "backend-03");
    assert_eq!(
        e["local"], "ip-proxy:49092",
        "the log record's own keys are flattened in"
    );
    assert!(e["connection"][0].get("conn_state").is_some());
    let f = &inc["findings"][0];
    for k in ["kind", "nodes", "evidence"] {
        assert!(f.get(k).is_some(), "finding key {k}");
    }
    for k in ["node", "file", "frame", "time"] {
        assert!(f["evidence"][0].get(k).is_some(), "evidence key {k}");
    }
    for k in ["node", "offset_s", "uncertainty_s", "method"] {
        assert!(v["clock_offsets"][0].get(k).is_some(), "clock key {k}");
    }
    // The id is stable across runs.
    let again = run(vec![seed_error()], seed().pkts, &backends(3));
    assert_eq!(again.incidents[0].id, report.incidents[0].id);
}
