//! One test per diagnosis rule, on hand-built but realistic observations
//! (what Linux stacks put on the wire in each situation).

mod common;

use common::*;
use wiretrail_capture::Direction::{ToBackend as TB, ToProxy as TP};
use wiretrail_capture::{Duration, Timestamp};
use wiretrail_correlate::model::{
    Cause, ConnState, EventBody, FindingKind, Mark, NodeRole, OffsetMethod, PacketEvent,
};
use wiretrail_correlate::{plan, CorrelateConfig, ErrorJoin, NodeInput};
use wiretrail_logs::{ErrorClass, TimePrecision};

const BASE: &str = "2024-03-01T10:00:00Z";
const PI: u32 = 2_000_000_000;
const BI: u32 = 500_000;

fn t(s: f64) -> Timestamp {
    at(BASE, s)
}

/// SYN, SYN-ACK, ACK on `node` at `t0` (node clock), with the proxy's TSval.
fn handshake(s: &mut Sim, node: &str, t0: Timestamp, tsval: u32) {
    s.add(
        P::new(node, t0, TB, "S", PI, 0, 0)
            .id(1)
            .ts(tsval, 0)
            .win(64240),
    );
    s.add(
        P::new(
            node,
            t0 + Duration::from_nanos(60_000),
            TP,
            "SA",
            BI,
            PI + 1,
            0,
        )
        .ts(7000, tsval)
        .win(65160),
    );
    s.add(
        P::new(
            node,
            t0 + Duration::from_nanos(120_000),
            TB,
            "A",
            PI + 1,
            BI + 1,
            0,
        )
        .id(2)
        .ts(tsval, 7000),
    );
}

fn reset_error(port: u16, at: &str) -> wiretrail_logs::ProxyError {
    error(
        at,
        TimePrecision::Second,
        &format!("read tcp 10.0.0.10:{port}->10.0.0.100:80: read: connection reset by peer"),
        ErrorClass::Reset,
        1,
    )
}

#[test]
fn refused_dial_error_without_packets_falls_back_to_the_log() {
    // Go prints no local socket for dial errors: joined by time (a wildcard
    // over the proxy's ports to the backend socket, within the log's second
    // plus slack). Nothing in the captures: the log's class is the evidence.
    let e = refused_dial("2024-03-01T10:00:05Z", 9);
    let cfg = CorrelateConfig::default();
    let p = plan(std::slice::from_ref(&e), &cfg);
    assert_eq!(p.queries.len(), 1);
    let q = &p.queries[0];
    assert!(q.is_wildcard());
    assert_eq!(q.backend(), Some("10.0.0.100:80".parse().unwrap()));
    assert_eq!(q.proxy_ip, None, "no other line names the proxy's address");
    // The log's second, the clock slack and the match slack, reaching back
    // the story lookback (a dial timeout's SYNs lie before the line).
    assert_eq!((q.since, q.until), (t(5.0 - 10.25 - 35.0), t(6.0 + 10.25)));
    assert_eq!(p.joins, [ErrorJoin::ByTime { queries: vec![0] }]);
    let r = run(vec![e], Vec::new(), &backends(2));
    let d = &r.incidents[0].errors[0].diagnosis;
    assert_eq!(d.cause, Cause::Refused);
    assert!(d.confidence <= 0.6);
    assert_eq!(d.owner_node, None);
    assert_eq!(d.evidence[0].origin.as_str(), "log");
    assert_eq!(d.evidence[0].frame, 9);
}

#[test]
fn refused_syn_answered_by_rst_ack() {
    let mut s = Sim::new(40100);
    let syn = s.add(
        P::new("backend-02", t(5.0), TB, "S", PI, 0, 0)
            .id(7)
            .ts(100, 0)
            .win(64240),
    );
    // Linux answers a SYN to a closed port with RST/ACK: seq 0, ack = ISN+1.
    let rst = s.add(P::new("backend-02", t(5.00005), TP, "RA", 0, PI + 1, 0).win(0));
    let e = error(
        "2024-03-01T10:00:05Z",
        TimePrecision::Second,
        "read tcp 10.0.0.10:40100->10.0.0.100:80: read: connection refused",
        ErrorClass::Refused,
        2,
    );
    let r = run(vec![e], s.pkts, &backends(3));
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::Refused);
    let d = &inc.errors[0].diagnosis;
    assert!(d.confidence >= 0.9);
    assert!(d.stray_nodes.is_empty());
    let frames: Vec<u64> = d
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == "backend-02")
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, vec![syn, rst]);
    assert_eq!(inc.errors[0].connection[0].conn_state, ConnState::Rej);
    assert_eq!(inc.errors[0].connection[0].history, "Sr");
}

#[test]
fn idle_race_backend_fin_then_late_request_then_rst() {
    let mut s = Sim::new(40200);
    let n = "backend-01";
    handshake(&mut s, n, t(0.0), 1000);
    // One request/response, then 4 s idle (the backend's idle timeout).
    s.add(
        P::new(n, t(0.1), TB, "PA", PI + 1, BI + 1, 300)
            .id(3)
            .ts(1100, 7000),
    );
    let resp = s.add(P::new(n, t(0.102), TP, "PA", BI + 1, PI + 301, 200).ts(7002, 1100));
    s.add(
        P::new(n, t(0.103), TB, "A", PI + 301, BI + 201, 0)
            .id(4)
            .ts(1103, 7002),
    );
    let fin = s.add(P::new(n, t(4.102), TP, "FA", BI + 201, PI + 301, 0).ts(11002, 1103));
    // The proxy had already picked the connection: its request crosses the FIN.
    let late = s.add(
        P::new(n, t(4.10205), TB, "PA", PI + 301, BI + 201, 900)
            .id(5)
            .ts(5102, 7002),
    );
    s.add(
        P::new(n, t(4.1021), TB, "A", PI + 1201, BI + 202, 0)
            .id(6)
            .ts(5102, 11002),
    );
    let rst = s.add(P::new(n, t(4.1022), TP, "R", BI + 202, 0, 0).win(0));
    let r = run(
        vec![reset_error(40200, "2024-03-01T10:00:04Z")],
        s.pkts,
        &backends(3),
    );
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::IdleRace, "{:#?}", inc.verdict);
    let d = &inc.errors[0].diagnosis;
    assert_eq!(d.owner_node.as_deref(), Some(n));
    assert!(d.stray_nodes.is_empty());
    let frames: Vec<u64> = d
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == n)
        .map(|e| e.frame)
        .collect();
    // The last response (where the idle time starts), the FIN, the
    // crossing request, the RST.
    assert_eq!(frames, vec![resp, fin, late, rst]);
    assert!(
        inc.verdict.summary.contains("after 4000 ms idle"),
        "{}",
        inc.verdict.summary
    );
    // The RST is classified as an idle close, not a stray or an abort.
    assert!(inc
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::RstProvenance && f.summary.contains("idle close")));
}

#[test]
fn backend_reset_mid_request_by_the_owner() {
    let mut s = Sim::new(40300);
    let n = "backend-02";
    handshake(&mut s, n, t(10.0), 2000);
    let first = s.add(
        P::new(n, t(10.001), TB, "A", PI + 1, BI + 1, 1448)
            .id(3)
            .ts(2001, 7000),
    );
    let _data = s.add(
        P::new(n, t(10.0011), TB, "PA", PI + 1449, BI + 1, 600)
            .id(4)
            .ts(2001, 7000),
    );
    let ack = s.add(P::new(n, t(10.0012), TP, "A", BI + 1, PI + 2049, 0).ts(7001, 2001));
    // The handler aborts: the kernel sends RST/ACK with its own snd_nxt.
    let rst = s.add(P::new(n, t(10.2), TP, "RA", BI + 1, PI + 2049, 0).win(0));
    let r = run(
        vec![reset_error(40300, "2024-03-01T10:00:10Z")],
        s.pkts,
        &backends(3),
    );
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::BackendReset);
    let d = &inc.errors[0].diagnosis;
    assert_eq!(d.owner_node.as_deref(), Some(n));
    let frames: Vec<u64> = d
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == n)
        .map(|e| e.frame)
        .collect();
    // The request (its first segment), the owner's ACK of it, the abort.
    assert_eq!(frames, vec![first, ack, rst]);
    assert_eq!(inc.errors[0].connection[0].conn_state, ConnState::Rstr);
}

fn pending_request(port: u16) -> (Sim, u64, u64, u64) {
    let mut s = Sim::new(port);
    let n = "backend-01";
    handshake(&mut s, n, t(20.0), 3000);
    let req = s.add(
        P::new(n, t(20.001), TB, "PA", PI + 1, BI + 1, 700)
            .id(3)
            .ts(3001, 7000),
    );
    let ack = s.add(P::new(n, t(20.0012), TP, "A", BI + 1, PI + 701, 0).ts(7001, 3001));
    // Nothing for 5 s, then the proxy closes its side.
    let fin = s.add(
        P::new(n, t(25.001), TB, "FA", PI + 701, BI + 1, 0)
            .id(4)
            .ts(8001, 7001),
    );
    s.add(P::new(n, t(25.0012), TP, "A", BI + 1, PI + 702, 0).ts(12001, 8001));
    (s, req, ack, fin)
}

#[test]
fn response_timeout_request_acked_never_answered() {
    let (s, req, ack, fin) = pending_request(40400);
    let e = error(
        "2024-03-01T10:00:25Z",
        TimePrecision::Second,
        "read tcp 10.0.0.10:40400->10.0.0.100:80: i/o timeout",
        ErrorClass::Timeout,
        4,
    );
    let r = run(vec![e], s.pkts, &backends(2));
    let inc = &r.incidents[0];
    assert_eq!(
        inc.verdict.cause,
        Cause::ResponseTimeout,
        "{:#?}",
        inc.verdict
    );
    assert!(
        inc.verdict.summary.contains("after 5000 ms"),
        "{}",
        inc.verdict.summary
    );
    let frames: Vec<u64> = inc.errors[0]
        .diagnosis
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() != "log")
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, vec![req, ack, fin]);
    assert_eq!(inc.errors[0].connection[0].conn_state, ConnState::S2);
}

#[test]
fn client_canceled_request_outstanding() {
    let (s, req, ack, fin) = pending_request(40500);
    let e = error(
        "2024-03-01T10:00:25Z",
        TimePrecision::Second,
        "readfrom tcp 10.0.0.10:40500->10.0.0.100:80: context canceled",
        ErrorClass::Canceled,
        5,
    );
    let r = run(vec![e], s.pkts, &backends(2));
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::ClientCanceled);
    let frames: Vec<u64> = inc.errors[0]
        .diagnosis
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() != "log")
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, vec![req, ack, fin]);
    // "context canceled" without addresses is still diagnosed, from the log.
    let bare = error(
        "2024-03-01T10:00:25Z",
        TimePrecision::Second,
        "context canceled",
        ErrorClass::Canceled,
        6,
    );
    let r = run(vec![bare], Vec::new(), &backends(2));
    assert_eq!(
        r.incidents[0].errors[0].diagnosis.cause,
        Cause::ClientCanceled
    );
}

#[test]
fn capture_gap_is_unknown_never_a_cause() {
    let mut nodes = backends(2);
    // The captures end a minute before the error.
    for n in &mut nodes {
        n.coverage = vec![(t(-3600.0), t(-200.0))];
    }
    let r = run(
        vec![reset_error(40600, "2024-03-01T10:00:30Z")],
        Vec::new(),
        &nodes,
    );
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::Unknown);
    let gap = inc
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::CaptureGap)
        .expect("capture_gap finding");
    assert_eq!(
        gap.nodes,
        vec!["backend-01".to_string(), "backend-02".to_string()]
    );
    assert!(inc.nodes.iter().all(|n| !n.covered && !n.saw_connection));
}

#[test]
fn clock_offset_from_packets_seen_on_two_nodes() {
    // The proxy captures too; backend-01's clock is 3.2 s fast. One-way
    // latency 80 µs both ways.
    let mut s = Sim::new(40700);
    let skew = 3.2;
    let lat = 0.00008;
    let both = |s: &mut Sim, t0: f64, dir, fl: &'static str, seq, ack, len, id| {
        let (tp, tb) = match dir {
            TB => (t0, t0 + lat + skew),
            TP => (t0 + lat, t0 + skew),
        };
        s.add(
            P::new("proxy", t(tp), dir, fl, seq, ack, len)
                .id(id)
                .ts(4000, 7000),
        );
        s.add(
            P::new("backend-01", t(tb), dir, fl, seq, ack, len)
                .id(id)
                .ts(4000, 7000),
        );
    };
    both(&mut s, 30.0, TB, "S", PI, 0, 0, 1);
    both(&mut s, 30.0002, TP, "SA", BI, PI + 1, 0, 0);
    both(&mut s, 30.0004, TB, "A", PI + 1, BI + 1, 0, 2);
    both(&mut s, 30.0005, TB, "PA", PI + 1, BI + 1, 500, 3);
    both(&mut s, 30.0007, TP, "A", BI + 1, PI + 501, 0, 0);
    both(&mut s, 30.3, TP, "RA", BI + 1, PI + 501, 0, 0);
    let mut nodes = backends(1);
    nodes.insert(0, NodeInput::named("proxy", NodeRole::Proxy).unwrap());
    let r = run(
        vec![reset_error(40700, "2024-03-01T10:00:30Z")],
        s.pkts,
        &nodes,
    );
    let o = r
        .clock_offsets
        .iter()
        .find(|o| o.node == "backend-01")
        .unwrap();
    assert_eq!(o.method, OffsetMethod::SharedPackets);
    assert!(
        (o.offset_s + skew).abs() <= o.uncertainty_s.expect("placed"),
        "{o:?}"
    );
    assert!(o.uncertainty_s.expect("placed") < 0.0002, "{o:?}");
    // One node's failure seen by two captures is not a flow split.
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::BackendReset);
    assert!(inc.errors[0].diagnosis.stray_nodes.is_empty());
    assert!(!inc
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::FlowSplit));
    // On the reference clock, each packet's two observations are 80 µs apart.
    let times: Vec<Timestamp> = inc
        .timeline
        .iter()
        .filter(|e| e.origin.as_str() != "log")
        .map(|e| e.t_ns)
        .collect();
    assert!(times.windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn clock_offset_from_tsval_when_nodes_share_no_packet() {
    // One connection whose segments alternate between two backends (a
    // split), no packet seen twice. backend-02's clock is 0.75 s slow. The
    // proxy's TSval ticks every ms from a random per-connection origin.
    let mut s = Sim::new(40800);
    let tsval = |origin: u32, true_s: f64| origin.wrapping_add((true_s * 1000.0).floor() as u32);
    let o = 4_000_000_000; // wraps inside the connection
    let mut seq = PI + 1;
    for (k, true_s) in [
        10.0005, 10.1002, 10.2003, 10.3009, 10.4007, 10.9004, 11.0001,
    ]
    .into_iter()
    .enumerate()
    {
        let (node, skew) = if k % 2 == 0 {
            ("backend-01", 0.0)
        } else {
            ("backend-02", -0.75)
        };
        s.add(
            P::new(node, t(true_s + 0.00005 + skew), TB, "PA", seq, BI + 1, 100)
                .id(10 + k as u32)
                .ts(tsval(o, true_s), 1),
        );
        seq += 100;
    }
    // Another connection, on backend-02 only, with its own random origin:
    // nothing to compare it with, and it must not disturb the estimate.
    let mut other = Sim::new(40801);
    other.add(
        P::new("backend-02", t(10.5 - 0.75), TB, "PA", 77, 88, 10)
            .id(1)
            .ts(tsval(123_456, 10.5), 1),
    );
    let mut pkts = s.pkts;
    pkts.extend(other.pkts);
    let errors = vec![
        reset_error(40800, "2024-03-01T10:00:11Z"),
        reset_error(40801, "2024-03-01T10:00:11Z"),
    ];
    let r = run(errors, pkts, &backends(2));
    let o = r
        .clock_offsets
        .iter()
        .find(|o| o.node == "backend-02")
        .unwrap();
    assert_eq!(o.method, OffsetMethod::Tsval);
    assert!(
        (o.offset_s - 0.75).abs() <= o.uncertainty_s.expect("placed"),
        "{o:?}"
    );
    assert!(o.uncertainty_s.expect("placed") <= 0.0015, "{o:?}");
}

#[test]
fn tsval_of_different_connections_is_not_compared() {
    // Current Linux gives each connection its own random TSval origin: two
    // connections on two nodes say nothing about the nodes' clocks.
    let mut a = Sim::new(40900);
    a.add(
        P::new("backend-01", t(10.0), TB, "PA", PI + 1, BI + 1, 100)
            .id(1)
            .ts(1_000_000, 1),
    );
    let mut b = Sim::new(40901);
    b.add(
        P::new("backend-02", t(10.0), TB, "PA", PI + 1, BI + 1, 100)
            .id(1)
            .ts(3_000_000_000, 1),
    );
    let mut pkts = a.pkts;
    pkts.extend(b.pkts);
    let errors = vec![
        reset_error(40900, "2024-03-01T10:00:10Z"),
        reset_error(40901, "2024-03-01T10:00:10Z"),
    ];
    let r = run(errors, pkts, &backends(2));
    let o = &r.clock_offsets[1];
    assert_eq!(
        (o.offset_s, o.method, o.uncertainty_s),
        (0.0, OffsetMethod::Unplaced, None)
    );
}

#[test]
fn pinned_offset_is_honoured() {
    let (s, _, _, _) = pending_request(40950);
    let mut nodes = backends(2);
    nodes[1].pinned_offset_s = Some(-1.5);
    let e = error(
        "2024-03-01T10:00:25Z",
        TimePrecision::Second,
        "read tcp 10.0.0.10:40950->10.0.0.100:80: i/o timeout",
        ErrorClass::Timeout,
        4,
    );
    let r = run(vec![e], s.pkts, &nodes);
    let o = &r.clock_offsets[1];
    assert_eq!(
        (o.node.as_str(), o.offset_s, o.method),
        ("backend-02", -1.5, OffsetMethod::Pinned)
    );
}

#[test]
fn duplicate_capture_versus_real_retransmission() {
    let mut s = Sim::new(41000);
    let n = "backend-01";
    handshake(&mut s, n, t(40.0), 5000);
    // Every packet below is recorded twice, 3 µs apart (bond + member).
    let seg = s.add(
        P::new(n, t(40.001), TB, "PA", PI + 1, BI + 1, 800)
            .id(3)
            .ts(5001, 7000),
    );
    let seg_copy = s.dup_last(3_000, 64);
    // The real retransmission: 200 ms later, new IP ID and TSval.
    let rtx = s.add(
        P::new(n, t(40.201), TB, "PA", PI + 1, BI + 1, 800)
            .id(4)
            .ts(5201, 7000),
    );
    let rtx_copy = s.dup_last(3_000, 64);
    s.add(P::new(n, t(40.2012), TP, "A", BI + 1, PI + 801, 0).ts(7201, 5201));
    s.dup_last(3_000, 64);
    s.add(P::new(n, t(40.5), TP, "RA", BI + 1, PI + 801, 0).win(0));
    s.dup_last(3_000, 64);
    let r = run(
        vec![reset_error(41000, "2024-03-01T10:00:40Z")],
        s.pkts,
        &backends(1),
    );
    let inc = &r.incidents[0];
    let marks = |f: u64| {
        inc.timeline
            .iter()
            .find_map(|e| match &e.body {
                EventBody::Packet(PacketEvent { frame, marks, .. }) if *frame == f => {
                    Some(marks.clone())
                }
                _ => None,
            })
            .unwrap()
    };
    assert!(marks(seg).is_empty());
    assert_eq!(marks(seg_copy), vec![Mark::CaptureDuplicate]);
    assert_eq!(marks(rtx), vec![Mark::Retransmission]);
    assert_eq!(marks(rtx_copy), vec![Mark::CaptureDuplicate]);
    let v = &inc.errors[0].connection[0];
    assert_eq!((v.packets, v.capture_duplicates), (7, 4));
    assert!(v.history.contains('T'));
    assert_eq!(inc.verdict.cause, Cause::BackendReset);
}

#[test]
fn port_reuse_picks_the_instance_alive_at_the_log_time() {
    let mut s = Sim::new(41100);
    let n = "backend-01";
    // An earlier connection on the same port, closed cleanly 100 s before.
    s.add(P::new(n, t(0.0), TB, "S", 111, 0, 0).id(1).ts(10, 0));
    s.add(P::new(n, t(0.0001), TP, "SA", 222, 112, 0).ts(10, 10));
    s.add(P::new(n, t(0.0002), TB, "FA", 112, 223, 0).id(2).ts(10, 10));
    s.add(P::new(n, t(0.0003), TP, "FA", 223, 113, 0).ts(10, 10));
    // The one that failed.
    handshake(&mut s, n, t(100.0), 6000);
    s.add(
        P::new(n, t(100.001), TB, "PA", PI + 1, BI + 1, 10)
            .id(3)
            .ts(6001, 7000),
    );
    s.add(P::new(n, t(100.3), TP, "RA", BI + 1, PI + 11, 0).win(0));
    let r = run(
        vec![reset_error(41100, "2024-03-01T10:01:40Z")],
        s.pkts,
        &backends(1),
    );
    let v = &r.incidents[0].errors[0].connection[0];
    assert_eq!(v.conn_state, ConnState::Rstr);
    assert_eq!(v.first, t(100.0).to_utc());
    assert_eq!(r.incidents[0].verdict.cause, Cause::BackendReset);
}

#[test]
fn plan_groups_dedups_and_widens() {
    let cfg = CorrelateConfig::default();
    let errors = vec![
        reset_error(42000, "2024-03-01T10:00:00Z"),
        reset_error(42000, "2024-03-01T10:00:10Z"),
        reset_error(42001, "2024-03-01T10:00:20Z"),
        reset_error(42002, "2024-03-01T10:05:00Z"),
        error(
            "2024-03-01T10:00:21Z",
            TimePrecision::Second,
            "EOF",
            ErrorClass::Eof,
            7,
        ),
    ];
    let p = plan(&errors, &cfg);
    // 42000 twice → one merged query; the port-less EOF → a wildcard to the
    // backend the proxy's other lines name, from the address they name.
    assert_eq!(p.queries.len(), 4);
    let ErrorJoin::ByTime { queries } = &p.joins[4] else {
        panic!("{:?}", p.joins[4]);
    };
    let w = &p.queries[queries[0]];
    assert!(w.is_wildcard());
    assert_eq!(w.backend(), Some("10.0.0.100:80".parse().unwrap()));
    assert_eq!(w.proxy_ip, Some("10.0.0.10".parse().unwrap()));
    assert_eq!(
        (w.since, w.until),
        (t(21.0 - 10.25 - 35.0), t(22.0 + 10.25))
    );
    assert_eq!(p.joins[0], p.joins[1]);
    let ErrorJoin::ByPort { query } = p.joins[0] else {
        panic!("{:?}", p.joins[0]);
    };
    let q = &p.queries[query];
    assert_eq!(q.proxy_port(), Some(42000));
    assert_eq!(q.backend(), Some("10.0.0.100:80".parse().unwrap()));
    assert!(q.since <= t(-120.0 - 10.0) && q.until >= t(10.0 + 1.0 + 10.0 + 10.0));
    // Same proxy and backend within 30 s → one incident; 5 min later → another;
    // the address-less EOF has its own backend key.
    let sizes: Vec<usize> = p.incidents.iter().map(|i| i.error_indices.len()).collect();
    assert_eq!(sizes, vec![3, 1, 1]);
    assert!(!p
        .joins
        .iter()
        .any(|j| matches!(j, ErrorJoin::Unjoinable { .. })));
    // Alone, the EOF names nothing to join on: unjoinable, said why.
    let p = plan(&errors[4..], &cfg);
    assert!(p.queries.is_empty());
    let [ErrorJoin::Unjoinable { why }] = &p.joins[..] else {
        panic!("{:?}", p.joins);
    };
    assert!(why.contains("no proxy port and no backend"));
    // Unless the configuration names the proxy's upstream.
    let cfg = CorrelateConfig {
        proxies: vec![wiretrail_correlate::ProxyHint {
            host: None,
            ip: None,
            upstreams: vec!["10.0.0.100:80".parse().unwrap()],
        }],
        ..CorrelateConfig::default()
    };
    let p = plan(&errors[4..], &cfg);
    assert_eq!(p.queries.len(), 1);
    assert_eq!(p.joins, [ErrorJoin::ByTime { queries: vec![0] }]);
}

#[test]
fn one_incident_errors_of_different_causes() {
    // A flow split and a backend reset within 30 s on the same VIP.
    let mut a = Sim::new(43000);
    handshake(&mut a, "backend-01", t(50.0), 9000);
    a.add(
        P::new("backend-01", t(50.001), TB, "A", PI + 1, BI + 1, 1448)
            .id(3)
            .ts(9001, 7000),
    );
    a.add(P::new("backend-01", t(50.0011), TP, "A", BI + 1, PI + 1449, 0).ts(7001, 9001));
    a.add(
        P::new("backend-03", t(50.00105), TB, "PA", PI + 1449, BI + 1, 300)
            .id(4)
            .ts(9001, 7000),
    );
    a.add(P::new("backend-03", t(50.00107), TP, "R", BI + 1, 0, 0).win(0));
    let mut b = Sim::new(43001);
    handshake(&mut b, "backend-02", t(55.0), 9500);
    b.add(
        P::new("backend-02", t(55.001), TB, "PA", PI + 1, BI + 1, 100)
            .id(3)
            .ts(9501, 7000),
    );
    b.add(P::new("backend-02", t(55.1), TP, "RA", BI + 1, PI + 101, 0).win(0));
    let mut pkts = a.pkts;
    pkts.extend(b.pkts);
    let r = run(
        vec![
            reset_error(43000, "2024-03-01T10:00:50Z"),
            reset_error(43001, "2024-03-01T10:00:55Z"),
        ],
        pkts,
        &backends(3),
    );
    assert_eq!(r.incidents.len(), 1);
    let inc = &r.incidents[0];
    let causes: Vec<Cause> = inc.errors.iter().map(|e| e.diagnosis.cause).collect();
    assert_eq!(causes, vec![Cause::FlowSplit, Cause::BackendReset]);
    assert_eq!(
        inc.errors[0].diagnosis.stray_nodes,
        vec!["backend-03".to_string()]
    );
    assert!(inc.errors[1].diagnosis.stray_nodes.is_empty());
    assert!(
        inc.verdict.summary.contains("1 of 2 errors"),
        "{}",
        inc.verdict.summary
    );
    assert_eq!(r.summary.by_cause.get(&Cause::FlowSplit), Some(&1));
    assert_eq!(r.summary.by_cause.get(&Cause::BackendReset), Some(&1));
}

#[test]
fn identical_rsts_answering_two_segments_are_two_packets() {
    // A stray node answers each of two segments with the same RST (seq =
    // their common ACK, IP ID 0): identical headers 40 µs apart, but each
    // follows its own segment, so neither is a capture duplicate.
    let mut s = Sim::new(44000);
    handshake(&mut s, "backend-01", t(60.0), 9900);
    s.add(
        P::new("backend-01", t(60.001), TB, "A", PI + 1, BI + 1, 1448)
            .id(3)
            .ts(9901, 7000),
    );
    let n3 = "backend-03";
    s.add(
        P::new(n3, t(60.00101), TB, "A", PI + 1449, BI + 1, 1448)
            .id(4)
            .ts(9901, 7000),
    );
    let r1 = s.add(P::new(n3, t(60.00102), TP, "R", BI + 1, 0, 0).win(0));
    s.add(
        P::new(n3, t(60.00105), TB, "PA", PI + 2897, BI + 1, 500)
            .id(5)
            .ts(9901, 7000),
    );
    let r2 = s.add(P::new(n3, t(60.00106), TP, "R", BI + 1, 0, 0).win(0));
    let r = run(
        vec![reset_error(44000, "2024-03-01T10:01:00Z")],
        s.pkts,
        &backends(3),
    );
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::FlowSplit);
    let v3 = inc.errors[0]
        .connection
        .iter()
        .find(|v| v.node == n3)
        .unwrap();
    assert_eq!((v3.packets, v3.capture_duplicates), (4, 0));
    let rsts = inc
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::RstProvenance && f.nodes == [n3])
        .count();
    assert_eq!(rsts, 2, "both RSTs ({r1}, {r2}) are classified");
}

#[test]
fn same_interface_copies_are_not_duplicates_other_interface_copies_are() {
    // `tcpdump -i any` (LINKTYPE_LINUX_SLL2) names the interface: the same
    // header twice on ifindex 3 and 7 is one packet seen on bridge and
    // member; on ifindex 3 twice it is two packets.
    let sll2 = |ifindex: u32| {
        let mut d = vec![0x08, 0x00, 0, 0];
        d.extend_from_slice(&ifindex.to_be_bytes());
        d.extend_from_slice(&[0; 12]);
        d
    };
    let mut s = Sim::new(44100);
    handshake(&mut s, "backend-01", t(70.0), 9950);
    s.add(
        P::new("backend-01", t(70.001), TB, "PA", PI + 1, BI + 1, 10)
            .id(3)
            .ts(9951, 7000),
    );
    s.dup_last(2_000, 64);
    s.add(P::new("backend-01", t(70.3), TP, "RA", BI + 1, PI + 11, 0).win(0));
    s.dup_last(2_000, 64);
    let n = s.pkts.len();
    for (k, p) in s.pkts.iter_mut().enumerate() {
        p.linktype = 276;
        // The data copy comes from the member (7); the RST copy from the same interface.
        p.data = sll2(if k == n - 4 + 1 { 7 } else { 3 }).into();
    }
    let r = run(
        vec![reset_error(44100, "2024-03-01T10:01:10Z")],
        s.pkts,
        &backends(1),
    );
    let v = &r.incidents[0].errors[0].connection[0];
    assert_eq!((v.packets, v.capture_duplicates), (6, 1));
}

#[test]
fn idle_close_with_unread_request_is_rst_without_fin() {
    // The backend's idle timer fires as the next request lands: the request
    // sits unread in the socket, so the close goes out as RST/ACK, not FIN.
    // The request was never ACKed by the backend and followed 1 s of quiet.
    let mut s = Sim::new(44200);
    let n = "backend-02";
    handshake(&mut s, n, t(80.0), 9970);
    s.add(
        P::new(n, t(80.001), TB, "PA", PI + 1, BI + 1, 199)
            .id(3)
            .ts(9971, 7000),
    );
    s.add(P::new(n, t(80.002), TP, "PA", BI + 1, PI + 200, 120).ts(7001, 9971));
    s.add(
        P::new(n, t(80.0021), TB, "A", PI + 200, BI + 121, 0)
            .id(4)
            .ts(9972, 7001),
    );
    let req = s.add(
        P::new(n, t(81.0021), TB, "PA", PI + 200, BI + 121, 199)
            .id(5)
            .ts(10972, 7001),
    );
    let rst = s.add(P::new(n, t(81.00211), TP, "RA", BI + 121, PI + 399, 0).win(0));
    let r = run(
        vec![reset_error(44200, "2024-03-01T10:01:21Z")],
        s.pkts,
        &backends(3),
    );
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::IdleRace, "{:#?}", inc.verdict);
    assert!(
        inc.verdict.summary.contains("after 1000 ms idle"),
        "{}",
        inc.verdict.summary
    );
    let frames: Vec<u64> = inc.errors[0]
        .diagnosis
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == n)
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, vec![req, rst]);
}

#[test]
fn bare_eof_without_packets_names_no_cause() {
    // An idle race, a max-requests close and a lost socket all print EOF:
    // without packets the line names no cause.
    let e = error(
        "2024-03-01T10:00:21Z",
        TimePrecision::Second,
        "EOF",
        ErrorClass::Eof,
        7,
    );
    let r = run(vec![e], Vec::new(), &backends(1));
    let d = &r.incidents[0].errors[0].diagnosis;
    assert_eq!((d.cause, d.confidence), (Cause::Unknown, 0.0));
    assert!(d.owner_node.is_none());
    let f = &r.incidents[0].verdict.summary;
    assert!(
        f.contains("idle race, a max-requests close or a lost socket"),
        "{f}"
    );
}

#[test]
fn connect_timeout_syn_never_answered() {
    let mut s = Sim::new(44300);
    let n = "backend-01";
    let syn1 = s.add(
        P::new(n, t(90.0), TB, "S", PI, 0, 0)
            .id(1)
            .ts(20000, 0)
            .win(64240),
    );
    let syn2 = s.add(
        P::new(n, t(91.0), TB, "S", PI, 0, 0)
            .id(2)
            .ts(21000, 0)
            .win(64240),
    );
    let e = error(
        "2024-03-01T10:01:31Z",
        TimePrecision::Second,
        "readfrom tcp 10.0.0.10:44300->10.0.0.100:80: i/o timeout",
        ErrorClass::Timeout,
        3,
    );
    let r = run(vec![e], s.pkts, &backends(1));
    let inc = &r.incidents[0];
    assert_eq!(inc.verdict.cause, Cause::ConnectTimeout);
    let v = &inc.errors[0].connection[0];
    assert_eq!((v.conn_state, v.history.as_str()), (ConnState::S0, "ST"));
    let frames: Vec<u64> = inc.errors[0]
        .diagnosis
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == n)
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, vec![syn1, syn2]);
}

#[test]
fn segment_acked_by_owner_but_captured_only_elsewhere() {
    // backend-01's capture dropped a segment its stack ACKed; a switch
    // mirror port captured it: the gap is filled elsewhere, not lost.
    let mut s = Sim::new(44400);
    handshake(&mut s, "backend-01", t(95.0), 30000);
    s.add(
        P::new("backend-01", t(95.001), TB, "A", PI + 1, BI + 1, 1000)
            .id(3)
            .ts(30001, 7000),
    );
    let ack =
        s.add(P::new("backend-01", t(95.0013), TP, "A", BI + 1, PI + 1501, 0).ts(7001, 30001));
    let seg = s.add(
        P::new("mirror", t(95.0011), TB, "PA", PI + 1001, BI + 1, 500)
            .id(4)
            .ts(30001, 7000),
    );
    s.add(P::new("backend-01", t(95.2), TP, "RA", BI + 1, PI + 1501, 0).win(0));
    let mut nodes = backends(1);
    nodes.push(NodeInput::named("mirror", NodeRole::Switch).unwrap());
    let r = run(
        vec![reset_error(44400, "2024-03-01T10:01:35Z")],
        s.pkts,
        &nodes,
    );
    let inc = &r.incidents[0];
    let f = inc
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::GapFilledElsewhere)
        .expect("gap filled elsewhere");
    let ev: Vec<(String, u64)> = f
        .evidence
        .iter()
        .map(|e| (e.origin.to_string(), e.frame))
        .collect();
    assert_eq!(
        ev,
        vec![("backend-01".to_string(), ack), ("mirror".to_string(), seg)]
    );
    let marks = inc
        .timeline
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Packet(PacketEvent { frame, marks, .. })
                if e.origin.as_str() == "mirror" && *frame == seg =>
            {
                Some(marks.clone())
            }
            _ => None,
        })
        .unwrap();
    assert!(marks.contains(&Mark::GapFilledElsewhere));
    // The switch is an observer: never stray, never owner.
    assert!(inc.errors[0].diagnosis.stray_nodes.is_empty());
    assert_eq!(inc.verdict.cause, Cause::BackendReset);
}

#[test]
fn destination_mac_change_mid_connection_is_a_path_anomaly() {
    let mut s = Sim::new(44500);
    let n = "proxy";
    handshake(&mut s, n, t(99.0), 40000);
    s.add(
        P::new(n, t(99.001), TB, "PA", PI + 1, BI + 1, 100)
            .id(3)
            .ts(40001, 7000),
    );
    let moved = s.add(
        P::new(n, t(99.002), TB, "PA", PI + 101, BI + 1, 100)
            .id(4)
            .ts(40002, 7000),
    );
    for (k, p) in s.pkts.iter_mut().enumerate() {
        p.link.dst_mac = Some(if k == 4 {
            [2, 0, 0, 0, 0, 0x0d]
        } else {
            [2, 0, 0, 0, 0, 0x0b]
        });
        if p.dir == TP {
            p.link.dst_mac = Some([2, 0, 0, 0, 0, 2]);
        }
    }
    let r = run(
        vec![reset_error(44500, "2024-03-01T10:01:39Z")],
        s.pkts,
        &[NodeInput::named("proxy", NodeRole::Proxy).unwrap()],
    );
    let inc = &r.incidents[0];
    let f = inc
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::PathAnomaly)
        .expect("path anomaly");
    assert_eq!(f.evidence[0].frame, moved);
    assert!(f.evidence[0]
        .note
        .as_deref()
        .unwrap()
        .contains("02:00:00:00:00:0d"));
}

/// A SYN from `port` refused by `node` at `at` (node clock): SYN, RST/ACK.
fn refusal(node: &str, port: u16, at: Timestamp) -> (Vec<wiretrail_capture::PacketObs>, u64, u64) {
    let mut s = Sim::new(port);
    let syn = s.add(
        P::new(node, at, TB, "S", PI, 0, 0)
            .id(7)
            .ts(100, 0)
            .win(64240),
    );
    let rst = s.add(
        P::new(
            node,
            at + Duration::from_nanos(40_000),
            TP,
            "RA",
            0,
            PI + 1,
            0,
        )
        .win(0),
    );
    (s.pkts, syn, rst)
}

/// A refused dial Go logged at `at` (second precision), on `line`: the
/// line prints no proxy port, so it is joined by time.
fn refused_dial(at: &str, line: u64) -> wiretrail_logs::ProxyError {
    error(
        at,
        TimePrecision::Second,
        "dial tcp 10.0.0.100:80: connect: connection refused",
        ErrorClass::Refused,
        line,
    )
}

#[test]
fn refused_joined_by_time_names_the_refusing_node_or_says_it_cannot() {
    // Three dial errors without a proxy port; three refused SYNs in the
    // captures (clocks pinned: NTP-synchronised nodes), and a healthy
    // connection in the same second that tells no refusal.
    let errors = vec![
        refused_dial("2024-03-01T10:00:05Z", 1),
        refused_dial("2024-03-01T10:00:07Z", 2),
        refused_dial("2024-03-01T10:00:07Z", 3),
    ];
    let (mut pkts, syn, rst) = refusal("backend-02", 40300, t(5.2));
    let file_frames = |node: &str, p: Vec<wiretrail_capture::PacketObs>| {
        // One file per connection here: frames restart, files differ.
        p.into_iter()
            .map(|mut o| {
                o.file = std::sync::Arc::new(
                    format!("/cap/{node}/{}.pcap", o.src.port().max(o.dst.port())).into(),
                );
                o
            })
            .collect::<Vec<_>>()
    };
    pkts = file_frames("backend-02", pkts);
    pkts.extend(file_frames(
        "backend-01",
        refusal("backend-01", 40301, t(7.1)).0,
    ));
    // Within milliseconds of the other: Go may log the two either way round.
    pkts.extend(file_frames(
        "backend-02",
        refusal("backend-02", 40302, t(7.102)).0,
    ));
    let mut ok = Sim::new(40303);
    handshake(&mut ok, "backend-03", t(7.3), 5000);
    pkts.extend(file_frames("backend-03", ok.pkts));
    let nodes = synced_backends(3);
    let r = run(errors, pkts, &nodes);
    let all: Vec<_> = r.incidents.iter().flat_map(|i| i.errors.iter()).collect();
    assert_eq!(all.len(), 3);

    // :05 — one refusal in that second: named, with its SYN and RST/ACK.
    let d = &all[0].diagnosis;
    assert_eq!(d.cause, Cause::Refused);
    assert_eq!(d.owner_node.as_deref(), Some("backend-02"));
    assert!(d.confidence >= 0.9);
    let frames: Vec<u64> = d
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == "backend-02")
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, vec![syn, rst]);
    assert_eq!(all[0].connection[0].conn_state, ConnState::Rej);

    // :07 twice — two refusals on two nodes 2 ms apart: both lines list
    // both, name no node, and say the two pair up one to one.
    for e in &all[1..] {
        let d = &e.diagnosis;
        assert_eq!(d.cause, Cause::Refused);
        assert_eq!(d.owner_node, None);
        assert!(d.confidence <= 0.5);
        let cands: std::collections::BTreeSet<&str> = d
            .evidence
            .iter()
            .filter(|x| {
                x.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("candidate"))
            })
            .map(|x| x.origin.as_str())
            .collect();
        assert_eq!(cands, ["backend-01", "backend-02"].into_iter().collect());
        assert!(e.connection.is_empty(), "no one connection is this line's");
    }
    let f = r.incidents[0]
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Refused && f.nodes.len() == 2)
        .expect("a finding listing both candidates");
    assert!(f.summary.contains("pair up one to one"), "{}", f.summary);
    assert!(f.summary.contains("40301") && f.summary.contains("40302"));
    // The healthy connection is no candidate.
    assert!(!f.summary.contains("40303"));
}

#[test]
fn more_lines_than_connections_telling_the_story_give_no_line_a_cause() {
    // Three refused dials logged in one second, two refusals in the
    // captures (the third connection is not in them: its story is not the
    // captures'). Both refusals agree, but any one line may be the third:
    // no line is given `refused`, and the summary says why.
    let errors: Vec<_> = (1..=3)
        .map(|n| refused_dial("2024-03-01T10:00:07Z", n))
        .collect();
    let mut pkts = refusal("backend-02", 40301, t(7.1)).0;
    let mut more = refusal("backend-02", 40302, t(7.102)).0;
    for o in &mut more {
        o.file = std::sync::Arc::new("/cap/backend-02/second.pcap".into());
    }
    pkts.extend(more);
    let nodes = synced_backends(3);
    let r = run(errors, pkts, &nodes);
    let all: Vec<_> = r.incidents.iter().flat_map(|i| i.errors.iter()).collect();
    assert_eq!(all.len(), 3);
    for e in &all {
        let d = &e.diagnosis;
        assert_eq!(d.cause, Cause::Unknown, "{:?}", d);
        assert_eq!(d.confidence, 0.0);
        assert_eq!(d.owner_node, None, "the third line's node is not known");
        assert!(d.proofs.is_empty());
    }
    let f = r.incidents[0]
        .findings
        .iter()
        .find(|f| {
            f.summary
                .contains("3 lines of that second share 2 connections")
        })
        .expect("a finding saying more lines than connections fit");
    assert!(
        f.summary.contains("at least 1 of the lines"),
        "{}",
        f.summary
    );
    assert!(f.summary.contains("40301") && f.summary.contains("40302"));
}

#[test]
fn lines_are_not_paired_by_order_with_more_connections_than_lines() {
    // One refused dial logged, two refusals on two nodes 300 ms apart in
    // that second: clearly ordered, but only one failure was logged, so the
    // first to fail need not be the line's. The node is not named.
    let errors = vec![refused_dial("2024-03-01T10:00:07Z", 1)];
    let mut pkts = refusal("backend-01", 40301, t(7.1)).0;
    let mut more = refusal("backend-02", 40302, t(7.4)).0;
    for o in &mut more {
        o.file = std::sync::Arc::new("/cap/backend-02/b.pcap".into());
    }
    pkts.extend(more);
    let nodes = synced_backends(3);
    let r = run(errors, pkts, &nodes);
    let d = &r.incidents[0].errors[0].diagnosis;
    assert_eq!(d.cause, Cause::Refused);
    assert_eq!(d.owner_node, None, "{d:?}");
    assert!(d.confidence <= 0.5);
    assert!(
        d.proofs
            .iter()
            .all(|p| p.proof != wiretrail_correlate::model::ProofKind::PairedByOrder),
        "{:?}",
        d.proofs
    );
}

#[test]
fn dial_timeout_joined_by_time_names_the_node_holding_the_syns() {
    // SYNs dropped at backend-02 (its capture still holds them: taps see
    // ingress before the firewall); Go gives up 10 s after the first SYN
    // and prints no proxy port.
    let mut s = Sim::new(44800);
    let n = "backend-02";
    let syns: Vec<u64> = [50.0, 51.0, 53.0, 57.0]
        .iter()
        .map(|&at| {
            s.add(
                P::new(n, t(at), TB, "S", PI, 0, 0)
                    .id(9)
                    .ts(500, 0)
                    .win(64240),
            )
        })
        .collect();
    // A healthy connection to backend-01 in the same window tells no story.
    let mut ok = Sim::new(44801);
    handshake(&mut ok, "backend-01", t(58.0), 600);
    let mut pkts = s.pkts;
    pkts.extend(ok.pkts);
    let nodes = synced_backends(3);
    let e = error(
        "2024-03-01T10:01:00Z",
        TimePrecision::Second,
        "dial tcp 10.0.0.100:80: i/o timeout",
        ErrorClass::Timeout,
        12,
    );
    let r = run(vec![e], pkts, &nodes);
    let d = &r.incidents[0].errors[0].diagnosis;
    assert_eq!(d.cause, Cause::ConnectTimeout, "{d:?}");
    assert_eq!(d.owner_node.as_deref(), Some(n));
    let frames: Vec<u64> = d
        .evidence
        .iter()
        .filter(|e| e.origin.as_str() == n)
        .map(|e| e.frame)
        .collect();
    assert_eq!(frames, syns);
    assert!(d.confidence >= 0.8, "{}", d.confidence);
}

#[test]
fn pmtu_blackhole_joined_by_time_from_a_canceled_context() {
    // The proxy's capture and backend-02's: the handshake and a small
    // segment reach backend-02, the 1448-byte one never does; the proxy
    // retransmits it until the client gives up (`context canceled`, no
    // socket in the line: joined by time through the configured upstream).
    let mut s = Sim::new(44900);
    let b = "backend-02";
    for node in ["proxy", b] {
        handshake(&mut s, node, t(70.0), 700);
        s.add(P::new(node, t(70.001), TB, "PA", PI + 1, BI + 1, 200).id(3));
        s.add(P::new(node, t(70.0012), TP, "A", BI + 1, PI + 201, 0));
    }
    for at in [70.002, 70.25, 70.7, 71.6, 73.4, 77.0] {
        s.add(P::new("proxy", t(at), TB, "A", PI + 201, BI + 1, 1448).id(4));
    }
    s.add(P::new("proxy", t(78.0), TB, "FA", PI + 1649, BI + 1, 0).id(5));
    // MSS 1460 less the timestamp option both SYNs carry: 1448.
    for p in s.pkts.iter_mut().filter(|p| p.flags.syn()) {
        p.opts.mss = Some(1460);
    }
    let mut nodes = vec![NodeInput::named("proxy", NodeRole::Proxy).unwrap()];
    nodes.extend(backends(3));
    let mut cfg = CorrelateConfig::default();
    cfg.proxies.push(wiretrail_correlate::ProxyHint {
        host: None,
        ip: Some("10.0.0.10".parse().unwrap()),
        upstreams: vec!["10.0.0.100:80".parse().unwrap()],
    });
    let e = error(
        "2024-03-01T10:01:18Z",
        TimePrecision::Second,
        "context canceled",
        ErrorClass::Canceled,
        13,
    );
    let r = common::run_cfg(vec![e], s.pkts, &nodes, &cfg);
    let d = &r.incidents[0].errors[0].diagnosis;
    assert_eq!(d.cause, Cause::PmtuBlackhole, "{d:#?}");
    assert_eq!(d.owner_node.as_deref(), Some(b));
    assert!(d.confidence >= 0.8, "{}", d.confidence);
}

#[test]
fn refusals_far_apart_in_one_second_are_paired_by_order() {
    // Two refused dials logged in the same second, their refusals 500 ms
    // apart on two nodes: Go logs each as it happens, so the first line is
    // the first refusal. Named, with the pairing said as a proof.
    let errors = vec![
        refused_dial("2024-03-01T10:00:07Z", 2),
        refused_dial("2024-03-01T10:00:07Z", 3),
    ];
    let mut pkts = refusal("backend-01", 40301, t(7.1)).0;
    pkts.extend(refusal("backend-02", 40302, t(7.6)).0);
    let nodes = synced_backends(3);
    let r = run(errors, pkts, &nodes);
    let all: Vec<_> = r.incidents.iter().flat_map(|i| i.errors.iter()).collect();
    let owners: Vec<Option<&str>> = all
        .iter()
        .map(|e| e.diagnosis.owner_node.as_deref())
        .collect();
    assert_eq!(owners, vec![Some("backend-01"), Some("backend-02")]);
    for e in &all {
        assert_eq!(e.diagnosis.cause, Cause::Refused);
        assert!(e
            .diagnosis
            .proofs
            .iter()
            .any(|p| p.proof == wiretrail_correlate::model::ProofKind::PairedByOrder));
        assert!(
            e.diagnosis.confidence < 0.9,
            "an inference: {}",
            e.diagnosis.confidence
        );
    }
}
