//! Hand-built reports for the renderer tests.
//!
//! `seed_report` is the incident of `shared/seed/troubleshoot-502-problem.md`
//! as the correlator should describe it: three backends behind one VIP;
//! backend-01 had the handshake and the data (every packet recorded twice,
//! bond + member), backend-03 received the 104-byte tail of the POST (same
//! TSval 1825820057 as backend-01's 1448-byte segment) and answered RST with
//! seq = the segment's ACK; backend-02 saw nothing. Frame numbers, lengths,
//! TSvals and relative seq/ack are the seed's tshark lines; the handshake and
//! the first two data segments (elided as "....." in the seed) are filled in
//! consistently (frames below 3841744).
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use wiretrail_capture::{Direction, Duration, TcpFlags, Timestamp};
use wiretrail_correlate::model::*;
use wiretrail_logs::record::{ErrorClass, ProxyError, Source, TimePrecision};

pub const PROXY_ISN: u32 = 3_141_592_653;
pub const BACKEND_ISN: u32 = 2_718_281_828;
pub const F01: &str = "/captures/backend-01/001.cap";
pub const F03: &str = "/captures/backend-03/003.cap";

const ACK: u16 = TcpFlags::ACK;
const PSH_ACK: u16 = TcpFlags::PSH | TcpFlags::ACK;

/// 2023-05-05T17:39:14Z plus `us` microseconds.
pub fn at_us(us: i64) -> Timestamp {
    Timestamp::from_nanos(
        Utc.with_ymd_and_hms(2023, 5, 5, 17, 39, 14)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
            + us * 1000,
    )
}

pub fn dt_us(us: i64) -> DateTime<Utc> {
    at_us(us).to_utc()
}

/// Backend-01's capture-relative seconds (220.xxxxxx) on the reference clock.
fn b01(rel_us: i64) -> Timestamp {
    at_us(rel_us - 220_000_000)
}

#[allow(clippy::too_many_arguments)]
pub fn pkt(
    t_ns: Timestamp,
    node: &str,
    file: &str,
    frame: u64,
    dir: Direction,
    flags: u16,
    rel_seq: u32,
    rel_ack: u32,
    len: u32,
    window: u16,
    tsval: Option<u32>,
    tsecr: Option<u32>,
    marks: Vec<Mark>,
) -> TimelineEvent {
    let (sisn, aisn) = match dir {
        Direction::ToBackend => (PROXY_ISN, BACKEND_ISN),
        Direction::ToProxy => (BACKEND_ISN, PROXY_ISN),
    };
    TimelineEvent {
        t_ns,
        origin: origin(node),
        body: EventBody::Packet(PacketEvent {
            dir,
            flags: TcpFlags(flags),
            seq: sisn.wrapping_add(rel_seq),
            ack: if flags & TcpFlags::ACK != 0 {
                aisn.wrapping_add(rel_ack)
            } else {
                0
            },
            len,
            window,
            tsval,
            tsecr,
            rel_seq: Some(rel_seq),
            rel_ack: (flags & TcpFlags::ACK != 0).then_some(rel_ack),
            file: file.to_owned(),
            frame,
            marks,
        }),
    }
}

/// A packet and its capture duplicate one microsecond (or less) later.
#[allow(clippy::too_many_arguments)]
fn twice(
    out: &mut Vec<TimelineEvent>,
    t_ns: Timestamp,
    dup_delay_ns: u64,
    node: &str,
    file: &str,
    frame: u64,
    dir: Direction,
    flags: u16,
    rel_seq: u32,
    rel_ack: u32,
    len: u32,
    window: u16,
    tsval: Option<u32>,
    tsecr: Option<u32>,
    marks: Vec<Mark>,
) {
    out.push(pkt(
        t_ns,
        node,
        file,
        frame,
        dir,
        flags,
        rel_seq,
        rel_ack,
        len,
        window,
        tsval,
        tsecr,
        marks.clone(),
    ));
    let mut dm = marks;
    dm.push(Mark::CaptureDuplicate);
    out.push(pkt(
        t_ns + Duration::from_nanos(dup_delay_ns),
        node,
        file,
        frame + 1,
        dir,
        flags,
        rel_seq,
        rel_ack,
        len,
        window,
        tsval,
        tsecr,
        dm,
    ));
}

pub const LOG_MESSAGE: &str = "readfrom tcp 192.0.2.10:49092->198.51.100.80:80: write tcp 192.0.2.10:49092->198.51.100.80:80: use of closed network connection";

pub fn seed_error() -> ProxyError {
    ProxyError {
        timestamp: dt_us(0),
        time_precision: TimePrecision::Second,
        time_zone_assumed: true,
        host: Some("proxy-01".into()),
        process: Some("gateway".into()),
        pid: Some(1187),
        op: Some("readfrom".into()),
        local: Some("192.0.2.10:49092".into()),
        remote: Some("198.51.100.80:80".into()),
        syscall: None,
        class: ErrorClass::Closed,
        message: LOG_MESSAGE.into(),
        source_format: wiretrail_logs::SourceFormat::Go,
        source: Source::File {
            file: "/var/log/gateway/proxy.log".into(),
            line: 48213,
        },
    }
}

pub fn seed_timeline() -> Vec<TimelineEvent> {
    use Direction::{ToBackend as TB, ToProxy as TP};
    let n1 = "backend-01";
    let n3 = "backend-03";
    let mut t = vec![TimelineEvent {
        t_ns: at_us(0),
        origin: Origin::Log,
        body: EventBody::Log {
            error: 0,
            message: format!("http: proxy error: {LOG_MESSAGE}"),
        },
    }];
    let e = &mut t;
    // Handshake and the first two data segments (elided in the seed).
    twice(
        e,
        b01(220_889_101),
        900,
        n1,
        F01,
        3841700,
        TB,
        TcpFlags::SYN,
        0,
        0,
        0,
        64240,
        Some(1825820041),
        Some(0),
        vec![],
    );
    twice(
        e,
        b01(220_889_130),
        900,
        n1,
        F01,
        3841702,
        TP,
        TcpFlags::SYN | ACK,
        0,
        1,
        0,
        65160,
        Some(2612233206),
        Some(1825820041),
        vec![],
    );
    twice(
        e,
        b01(220_889_190),
        900,
        n1,
        F01,
        3841704,
        TB,
        ACK,
        1,
        1,
        0,
        83,
        Some(1825820042),
        Some(2612233206),
        vec![],
    );
    twice(
        e,
        b01(220_895_700),
        1000,
        n1,
        F01,
        3841720,
        TB,
        ACK,
        1,
        1,
        1551,
        83,
        Some(1825820048),
        Some(2612233206),
        vec![],
    );
    twice(
        e,
        b01(220_895_780),
        1000,
        n1,
        F01,
        3841730,
        TB,
        ACK,
        1552,
        1,
        2609,
        83,
        Some(1825820048),
        Some(2612233206),
        vec![],
    );
    // The seed's tshark lines, backend-01 (001.cap).
    twice(
        e,
        b01(220_895_866),
        0,
        n1,
        F01,
        3841744,
        TB,
        PSH_ACK,
        4161,
        1,
        3433,
        83,
        Some(1825820048),
        Some(2612233213),
        vec![],
    );
    twice(
        e,
        b01(220_895_879),
        1000,
        n1,
        F01,
        3841746,
        TP,
        ACK,
        1,
        1552,
        0,
        272,
        Some(2612233213),
        Some(1825820048),
        vec![],
    );
    twice(
        e,
        b01(220_895_904),
        1000,
        n1,
        F01,
        3841748,
        TP,
        ACK,
        1,
        4161,
        0,
        272,
        Some(2612233213),
        Some(1825820048),
        vec![],
    );
    twice(
        e,
        b01(220_895_937),
        1000,
        n1,
        F01,
        3841750,
        TP,
        ACK,
        1,
        7594,
        0,
        272,
        Some(2612233214),
        Some(1825820048),
        vec![],
    );
    // 3841803 and its copy 3841805 (tshark numbered another packet in between).
    e.push(pkt(
        b01(220_901_916),
        n1,
        F01,
        3841803,
        TP,
        PSH_ACK,
        1,
        7594,
        1114,
        272,
        Some(2612233219),
        Some(1825820048),
        vec![],
    ));
    e.push(pkt(
        b01(220_901_918),
        n1,
        F01,
        3841805,
        TP,
        PSH_ACK,
        1,
        7594,
        1114,
        272,
        Some(2612233219),
        Some(1825820048),
        vec![Mark::CaptureDuplicate],
    ));
    twice(
        e,
        b01(220_901_996),
        0,
        n1,
        F01,
        3841812,
        TB,
        ACK,
        7594,
        1115,
        0,
        83,
        Some(1825820054),
        Some(2612233219),
        vec![],
    );
    twice(
        e,
        b01(220_904_543),
        0,
        n1,
        F01,
        3841962,
        TB,
        ACK,
        7594,
        1115,
        1448,
        83,
        Some(1825820057),
        Some(2612233219),
        vec![],
    );
    // backend-03 (003.cap), shifted to the reference clock: the 104-byte tail
    // of the same POST, then its RST.
    twice(
        e,
        at_us(904_561),
        0,
        n3,
        F03,
        3113698,
        TB,
        PSH_ACK,
        9042,
        1115,
        104,
        83,
        Some(1825820057),
        Some(2612233219),
        vec![Mark::StraySegment],
    );
    twice(
        e,
        at_us(904_586),
        1000,
        n3,
        F03,
        3113700,
        TP,
        TcpFlags::RST,
        1115,
        0,
        0,
        0,
        None,
        None,
        vec![Mark::StrayRst],
    );
    twice(
        e,
        b01(220_904_630),
        1000,
        n1,
        F01,
        3841964,
        TP,
        ACK,
        1115,
        9042,
        0,
        272,
        Some(2612233222),
        Some(1825820057),
        vec![],
    );
    twice(
        e,
        b01(220_904_666),
        0,
        n1,
        F01,
        3841966,
        TB,
        TcpFlags::RST,
        9042,
        0,
        0,
        0,
        None,
        None,
        vec![],
    );
    t.sort_by_key(|e| e.t_ns);
    t
}

/// A node's origin, or the log's.
pub fn origin(node: &str) -> Origin {
    if node == "log" {
        Origin::Log
    } else {
        Origin::Node(NodeName::new(node).expect("a valid node name"))
    }
}

fn ev(node: &str, file: &str, frame: u64, us: i64, note: &str) -> Evidence {
    Evidence {
        origin: origin(node),
        file: file.into(),
        frame,
        time: dt_us(us),
        note: Some(note.into()),
    }
}

pub fn seed_incident() -> Incident {
    let stray = ev("backend-03", F03, 3113698, 904_561, "104-byte segment seq 9042 (tail of the POST), TSval 1825820057 as on backend-01 #3841962, no handshake on this node");
    let rst = ev(
        "backend-03",
        F03,
        3113700,
        904_586,
        "RST seq=1115 = ACK of the segment it answers: sent without connection state",
    );
    let owner = ev(
        "backend-01",
        F01,
        3841962,
        904_543,
        "1448-byte segment seq 7594, TSval 1825820057",
    );
    let hs = ev(
        "backend-01",
        F01,
        3841700,
        889_101,
        "SYN: backend-01 owns the connection",
    );
    let log = Evidence {
        origin: Origin::Log,
        file: "/var/log/gateway/proxy.log".into(),
        frame: 48213,
        time: dt_us(0),
        note: Some("use of closed network connection".into()),
    };
    Incident {
        id: "inc-20230505T173914Z-192.0.2.10-198.51.100.80:80".into(),
        start: dt_us(0),
        end: dt_us(904_666),
        proxy: "192.0.2.10".into(),
        backend: "198.51.100.80:80".into(),
        community_id: Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=".into()),
        verdict: Verdict {
            cause: Cause::FlowSplit,
            confidence: 0.9,
            summary: "one connection's segments reached two nodes behind 198.51.100.80: backend-01 had the handshake and the data, backend-03 got the 104-byte tail of the POST and answered RST".into(),
            remedy: None,
        },
        findings: vec![
            Finding {
                kind: FindingKind::FlowSplit,
                nodes: vec!["backend-01".into(), "backend-03".into()],
                confidence: 0.9,
                summary: "segments of 192.0.2.10:49092 → 198.51.100.80:80 seen on backend-01 (owner) and backend-03 (stray)".into(),
                evidence: vec![hs, owner, stray.clone(), rst.clone()],
            },
            Finding {
                kind: FindingKind::RstProvenance,
                nodes: vec!["backend-03".into()],
                confidence: 0.95,
                summary: "backend-03's RST carries seq = ACK of the stray segment: a node with no state for the connection".into(),
                evidence: vec![rst.clone()],
            },
            Finding {
                kind: FindingKind::CaptureDuplicate,
                nodes: vec!["backend-01".into(), "backend-03".into()],
                confidence: 1.0,
                summary: "every packet recorded twice within 1 µs (bond and member): the copies are not retransmissions".into(),
                evidence: vec![ev("backend-01", F01, 3841745, 895_866, "copy of #3841744")],
            },
        ],
        nodes: vec![
            IncidentNode { name: "backend-01".into(), role: NodeRole::Backend, saw_connection: true, covered: true },
            IncidentNode { name: "backend-02".into(), role: NodeRole::Backend, saw_connection: false, covered: true },
            IncidentNode { name: "backend-03".into(), role: NodeRole::Backend, saw_connection: true, covered: true },
        ],
        errors: vec![DiagnosedError {
            record: seed_error(),
            diagnosis: ErrorDiagnosis {
                cause: Cause::FlowSplit,
                confidence: 0.9,
                owner_node: Some("backend-01".into()),
                stray_nodes: vec!["backend-03".into()],
                evidence: vec![log, stray, rst],
                proofs: vec![],
                remedy: None,
                measures: Default::default(),
            },
            connection: vec![
                ConnectionView {
                    node: "backend-01".into(),
                    conn_state: ConnState::Rsto,
                    history: "ShADadR".into(),
                    handshake_seen: true,
                    first: dt_us(889_101),
                    last: dt_us(904_666),
                    packets: 14,
                    capture_duplicates: 14,
                },
                ConnectionView {
                    node: "backend-03".into(),
                    conn_state: ConnState::Oth,
                    history: "Dr".into(),
                    handshake_seen: false,
                    first: dt_us(904_561),
                    last: dt_us(904_586),
                    packets: 2,
                    capture_duplicates: 2,
                },
            ],
        }],
        timeline: seed_timeline(),
    }
}

pub fn seed_report() -> Report {
    let mut by_cause = std::collections::BTreeMap::new();
    by_cause.insert(Cause::FlowSplit, 1);
    let mut stray = std::collections::BTreeMap::new();
    stray.insert("backend-03".to_owned(), 1);
    let mut owner = std::collections::BTreeMap::new();
    owner.insert("backend-01".to_owned(), 1);
    let mut by_hour = std::collections::BTreeMap::new();
    by_hour.insert("2023-05-05T17".to_owned(), 1);
    Report {
        schema_version: SCHEMA_VERSION.into(),
        generated_at: Utc.with_ymd_and_hms(2023, 5, 6, 3, 0, 0).unwrap(),
        since: Utc.with_ymd_and_hms(2023, 5, 5, 17, 30, 0).unwrap(),
        until: Utc.with_ymd_and_hms(2023, 5, 5, 17, 45, 0).unwrap(),
        clock_offsets: vec![
            ClockOffset {
                node: "backend-01".into(),
                offset_s: 0.0,
                uncertainty_s: Some(0.0),
                method: OffsetMethod::Reference,
                samples: 0,
            },
            ClockOffset {
                node: "backend-02".into(),
                offset_s: 0.0,
                uncertainty_s: None,
                method: OffsetMethod::Unplaced,
                samples: 0,
            },
            ClockOffset {
                node: "backend-03".into(),
                offset_s: 0.0123,
                uncertainty_s: Some(0.00035),
                method: OffsetMethod::Tsval,
                samples: 412,
            },
        ],
        incidents: vec![seed_incident()],
        summary: Summary {
            incidents: 1,
            errors: 1,
            by_cause,
            stray_nodes: stray,
            owner_nodes: owner,
            by_hour,
            patterns: vec![
                "stray segment was the 2nd segment of a POST split at 1448 bytes in 1/1".into(),
            ],
        },
        inputs: InputStats {
            log_lines: 84_213,
            proxy_errors: 12,
            unparsed_lines: 0,
            capture_files_read: 3,
            capture_bytes_read: 3 * 1_073_741_824,
            packets_matched: 36,
            problems: vec![Problem::new(
                ProblemKind::Growing,
                ProblemSource::Capture {
                    node: "backend-02".into(),
                    path: "/captures/backend-02/002.cap".into(),
                    offset: Some(31_457_280_112),
                },
                "truncated last record (file still growing)",
            )],
        },
        events: vec![],
    }
}

/// Strings a hostile log line, file name or node name could carry.
pub const HOSTILE: [&str; 7] = [
    "<script>alert('xss1')</script>",
    "\"><img src=x onerror=alert('xss2')>",
    "</style><b id=\"xss3\">bold</b>",
    "</svg><script>alert('xss4')</script>",
    "' onmouseover='alert(5)' x='",
    "evil\u{202e}gnp.exe",
    "\x1b[2J\x1b]0;pwned\x07\u{9b}31m",
];

/// The seed report with hostile text in every field that comes from logs,
/// packets or configuration.
pub fn hostile_report() -> Report {
    let h = HOSTILE.join(" | ");
    let mut r = seed_report();
    r.schema_version = format!("1.0{}", HOSTILE[0]);
    r.summary.patterns.push(h.clone());
    // A cause is a word of the schema: a hostile one cannot be represented.
    r.summary.by_hour.insert(HOSTILE[3].into(), 2);
    r.inputs.problems.push(Problem::new(
        ProblemKind::UnusableSource,
        ProblemSource::Capture {
            node: h.clone(),
            path: h.clone(),
            offset: None,
        },
        h.clone(),
    ));
    r.clock_offsets[2].node = HOSTILE[2].into();
    let mut ev = r.incidents[0].findings[0].clone();
    ev.summary = h.clone();
    r.events.push(ev);
    let inc = &mut r.incidents[0];
    inc.verdict.remedy = Some(h.clone());
    inc.errors[0].diagnosis.remedy = Some(h.clone());
    inc.errors[0].diagnosis.proofs.push(ProofRecord {
        proof: ProofKind::StatelessRst,
        weight: 0.2,
        note: h.clone(),
    });
    inc.id = HOSTILE[1].into();
    inc.proxy = HOSTILE[0].into();
    inc.backend = HOSTILE[4].into();
    inc.community_id = Some(HOSTILE[3].into());
    inc.verdict.summary = h.clone();
    inc.findings[0].summary = h.clone();
    inc.findings[0].evidence[0].note = Some(h.clone());
    inc.findings[0].evidence[0].file = HOSTILE[1].into();
    inc.findings[0].nodes.push(HOSTILE[2].into());
    inc.nodes[1].name = HOSTILE[2].into();
    let e = &mut inc.errors[0];
    e.record.message = h.clone();
    e.record.host = Some(HOSTILE[5].into());
    e.record.source = Source::File {
        file: HOSTILE[1].into(),
        line: 1,
    };
    e.diagnosis.stray_nodes.push(HOSTILE[0].into());
    e.connection[0].history = HOSTILE[1].into();
    for ev in &mut inc.timeline {
        match &mut ev.body {
            EventBody::Log { message, .. } => *message = h.clone(),
            EventBody::Packet(PacketEvent { file, .. }) => {
                *file = format!("/captures/{}", HOSTILE[1])
            }
        }
        // Node names are checked once (NodeName): a hostile one cannot be
        // represented, so hostile text rides in the fields that carry free text.
    }
    r
}

/// One incident with `n` data segments (and their ACKs) before the seed's
/// ending: a large transfer that must be capped in the ladder and the
/// terminal, and stay complete in the HTML table.
pub fn big_report(n: u32) -> Report {
    let mut r = seed_report();
    let inc = &mut r.incidents[0];
    let mut extra = Vec::new();
    for i in 0..n {
        let t = at_us(889_200 + i as i64 * 3);
        extra.push(pkt(
            t,
            "backend-01",
            F01,
            1_000_000 + 2 * i as u64,
            Direction::ToBackend,
            ACK,
            1 + i * 1448,
            1,
            1448,
            83,
            Some(1825819000 + i),
            Some(2612233000),
            vec![],
        ));
        extra.push(pkt(
            t + Duration::from_micros(1),
            "backend-01",
            F01,
            1_000_001 + 2 * i as u64,
            Direction::ToProxy,
            ACK,
            1,
            1 + (i + 1) * 1448,
            0,
            272,
            Some(2612233000 + i),
            Some(1825819000 + i),
            vec![],
        ));
    }
    inc.timeline.extend(extra);
    inc.timeline.sort_by_key(|e| e.t_ns);
    r
}

/// A second, single-node incident for the multi-incident views: backend-02
/// owns the connection, the proxy's request is retransmitted after a 204 ms
/// RTO, and the backend application aborts it (RST, ACK) mid-request.
pub fn backend_reset_incident() -> Incident {
    use Direction::{ToBackend as TB, ToProxy as TP};
    let f = "/captures/backend-02/002.cap";
    let n = "backend-02";
    let base = 60_000_000i64; // 17:40:14 on the reference clock
    let us = |x: i64| at_us(base + x);
    let mut t = vec![
        pkt(
            us(0),
            n,
            f,
            77001,
            TB,
            TcpFlags::SYN,
            0,
            0,
            0,
            64240,
            Some(1825880000),
            Some(0),
            vec![],
        ),
        pkt(
            us(40),
            n,
            f,
            77002,
            TP,
            TcpFlags::SYN | ACK,
            0,
            1,
            0,
            65160,
            Some(2612290000),
            Some(1825880000),
            vec![],
        ),
        pkt(
            us(95),
            n,
            f,
            77003,
            TB,
            ACK,
            1,
            1,
            0,
            83,
            Some(1825880001),
            Some(2612290000),
            vec![],
        ),
        pkt(
            us(180),
            n,
            f,
            77004,
            TB,
            PSH_ACK,
            1,
            1,
            517,
            83,
            Some(1825880001),
            Some(2612290000),
            vec![],
        ),
        pkt(
            us(204_310),
            n,
            f,
            77011,
            TB,
            PSH_ACK,
            1,
            1,
            517,
            83,
            Some(1825880205),
            Some(2612290000),
            vec![Mark::Retransmission],
        ),
        pkt(
            us(204_350),
            n,
            f,
            77012,
            TP,
            ACK,
            1,
            518,
            0,
            272,
            Some(2612290204),
            Some(1825880205),
            vec![],
        ),
        pkt(
            us(204_390),
            n,
            f,
            77013,
            TP,
            ACK,
            1,
            518,
            0,
            272,
            Some(2612290204),
            Some(1825880205),
            vec![Mark::DupAck],
        ),
        pkt(
            us(811_020),
            n,
            f,
            77040,
            TP,
            TcpFlags::RST | ACK,
            1,
            518,
            0,
            0,
            None,
            None,
            vec![],
        ),
    ];
    t.push(TimelineEvent {
        t_ns: us(811_400),
        origin: Origin::Log,
        body: EventBody::Log {
            error: 0,
            message: "http: proxy error: read tcp 192.0.2.10:52468->198.51.100.80:80: read: connection reset by peer".into(),
        },
    });
    let mut err = seed_error();
    err.timestamp = us(811_400).to_utc();
    err.time_precision = TimePrecision::Microsecond;
    err.op = Some("read".into());
    err.local = Some("192.0.2.10:52468".into());
    err.class = ErrorClass::Reset;
    err.message =
        "read tcp 192.0.2.10:52468->198.51.100.80:80: read: connection reset by peer".into();
    let rst = Evidence {
        origin: origin(n),
        file: f.into(),
        frame: 77040,
        time: us(811_020).to_utc(),
        note: Some("RST, ACK from the owning node after it ACKed the request".into()),
    };
    Incident {
        id: "inc-20230505T174014Z-192.0.2.10-198.51.100.80:80".into(),
        start: us(0).to_utc(),
        end: us(811_400).to_utc(),
        proxy: "192.0.2.10".into(),
        backend: "198.51.100.80:80".into(),
        community_id: None,
        verdict: Verdict {
            cause: Cause::BackendReset,
            confidence: 0.8,
            summary:
                "backend-02 accepted the request, ACKed it, and reset the connection 607 ms later"
                    .into(),
            remedy: None,
        },
        findings: vec![Finding {
            kind: FindingKind::BackendReset,
            nodes: vec![n.into()],
            confidence: 0.8,
            summary: "the owning node reset mid-request".into(),
            evidence: vec![rst.clone()],
        }],
        nodes: vec![
            IncidentNode {
                name: "backend-01".into(),
                role: NodeRole::Backend,
                saw_connection: false,
                covered: true,
            },
            IncidentNode {
                name: "backend-02".into(),
                role: NodeRole::Backend,
                saw_connection: true,
                covered: true,
            },
            IncidentNode {
                name: "backend-03".into(),
                role: NodeRole::Backend,
                saw_connection: false,
                covered: false,
            },
        ],
        errors: vec![DiagnosedError {
            record: err,
            diagnosis: ErrorDiagnosis {
                cause: Cause::BackendReset,
                confidence: 0.8,
                owner_node: Some(n.into()),
                stray_nodes: vec![],
                evidence: vec![rst],
                proofs: vec![],
                remedy: None,
                measures: Default::default(),
            },
            connection: vec![ConnectionView {
                node: n.into(),
                conn_state: ConnState::Rstr,
                history: "ShADr".into(),
                handshake_seen: true,
                first: us(0).to_utc(),
                last: us(811_020).to_utc(),
                packets: 8,
                capture_duplicates: 0,
            }],
        }],
        timeline: t,
    }
}

/// The seed incident plus the backend reset: two incidents, two causes.
pub fn two_incident_report() -> Report {
    let mut r = seed_report();
    r.incidents.push(backend_reset_incident());
    r.summary.incidents = 2;
    r.summary.errors = 2;
    r.summary.by_cause.insert(Cause::BackendReset, 1);
    r.summary.owner_nodes.insert("backend-02".into(), 1);
    *r.summary.by_hour.get_mut("2023-05-05T17").unwrap() += 1;
    r
}
