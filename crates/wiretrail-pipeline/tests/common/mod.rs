//! Shared by the integration tests: an engine double (for the modes' own
//! logic), proxy errors built like the logs crate builds them, and a writer
//! of real pcap files (Ethernet/IPv4/TCP) for the capture-facing tests.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use wiretrail_correlate::model::*;
use wiretrail_logs::{ErrorClass, ProxyError, Source, TimePrecision};
use wiretrail_pipeline::config::Pipeline;
use wiretrail_pipeline::engine::{
    cause, Analysis, Engine, EngineError, Keep, LogBatch, LogStats, Rendering, SlicePacket,
};
use wiretrail_pipeline::progress::Progress;
use wiretrail_pipeline::time::Window;
use wiretrail_pipeline::CratesEngine;

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `utc` as a [`Timestamp`](wiretrail_pipeline::time::Timestamp).
pub fn ts(s: &str) -> wiretrail_pipeline::time::Timestamp {
    wiretrail_pipeline::time::Timestamp::from_utc(utc(s)).unwrap()
}

/// A `read: connection reset by peer` error as the logs crate would parse it.
pub fn proxy_error(ts: DateTime<Utc>, port: u16, line: u64) -> ProxyError {
    ProxyError {
        timestamp: ts,
        time_precision: TimePrecision::Second,
        time_zone_assumed: true,
        host: Some("edge-1".into()),
        process: None,
        pid: None,
        op: Some("read".into()),
        local: Some(format!("10.1.1.5:{port}")),
        remote: Some("10.0.0.100:80".into()),
        syscall: Some("read".into()),
        class: ErrorClass::Reset,
        message: format!("read tcp 10.1.1.5:{port}->10.0.0.100:80: read: connection reset by peer"),
        source_format: wiretrail_logs::SourceFormat::Go,
        source: Source::File {
            file: "proxy.log".into(),
            line,
        },
    }
}

/// A door analyses wait at while it is shut (to hold a run "running").
#[derive(Debug, Default)]
pub struct Gate {
    shut: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }
    pub fn shut(&self) {
        *self.shut.lock().unwrap() = true;
    }
    pub fn open(&self) {
        *self.shut.lock().unwrap() = false;
        self.cv.notify_all();
    }
    pub fn pass(&self) {
        let mut shut = self.shut.lock().unwrap();
        while *shut {
            shut = self.cv.wait(shut).unwrap();
        }
    }
}

/// A deterministic engine: its log source is a fixed list of errors, and
/// analysis makes one incident per error (cause from the port's parity).
/// It can fail on the Nth analysis, or raise a cancel flag after it.
/// With `incident_gap` set it groups like the correlator instead: errors of
/// one proxy and backend at most that far apart form one incident.
pub struct FakeEngine {
    pub errors: Vec<ProxyError>,
    pub incident_gap: Option<chrono::Duration>,
    pub analysed: AtomicUsize,
    pub fail_at: Option<usize>,
    pub cancel_after: Option<(usize, Arc<AtomicBool>)>,
    pub windows: Mutex<Vec<Window>>,
    pub hosts: Mutex<Vec<Option<String>>>,
    /// Analyses wait here while it is shut.
    pub gate: Option<Arc<Gate>>,
    /// The incident count of each report published.
    pub published: Mutex<Vec<usize>>,
}

impl FakeEngine {
    pub fn new(errors: Vec<ProxyError>) -> FakeEngine {
        FakeEngine {
            errors,
            incident_gap: None,
            analysed: AtomicUsize::new(0),
            fail_at: None,
            cancel_after: None,
            windows: Mutex::new(Vec::new()),
            hosts: Mutex::new(Vec::new()),
            gate: None,
            published: Mutex::new(Vec::new()),
        }
    }
}

impl Engine for FakeEngine {
    fn read_errors(&self, p: &Pipeline, w: &Window, keep: Keep) -> Result<LogBatch, EngineError> {
        self.hosts.lock().unwrap().push(p.host_filter.clone());
        let mut stats = LogStats {
            lines: self.errors.len() as u64 * 10,
            ..LogStats::default()
        };
        let errors = wiretrail_pipeline::engine::filter_errors(
            self.errors.clone(),
            w,
            p.host_filter.as_deref(),
            keep,
            &mut stats,
        );
        Ok(LogBatch { errors, stats })
    }

    fn analyse(
        &self,
        _p: &Pipeline,
        w: &Window,
        errors: Vec<ProxyError>,
        _s: &LogStats,
        _pr: &Arc<dyn Progress>,
    ) -> Result<Analysis, EngineError> {
        if let Some(g) = &self.gate {
            g.pass();
        }
        let n = self.analysed.fetch_add(1, Ordering::SeqCst) + 1;
        self.windows.lock().unwrap().push(*w);
        if self.fail_at == Some(n) {
            return Err(EngineError::Capture(cause(format!(
                "injected failure on analysis {n}"
            ))));
        }
        if let Some((k, flag)) = &self.cancel_after {
            if n >= *k {
                flag.store(true, Ordering::SeqCst);
            }
        }
        let mut summary = Summary::default();
        let mut incidents: Vec<Incident> = errors
            .into_iter()
            .map(|e| {
                let port: u16 = e
                    .local
                    .as_deref()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let (cause, stray) = if port.is_multiple_of(2) {
                    (Cause::FlowSplit, vec!["backend-03".to_string()])
                } else {
                    (Cause::IdleRace, vec![])
                };
                summary.incidents += 1;
                summary.errors += 1;
                *summary.by_cause.entry(cause).or_default() += 1;
                for s in &stray {
                    *summary.stray_nodes.entry(s.clone()).or_default() += 1;
                }
                *summary.owner_nodes.entry("backend-01".into()).or_default() += 1;
                *summary
                    .by_hour
                    .entry(e.timestamp.format("%Y-%m-%dT%H").to_string())
                    .or_default() += 1;
                Incident {
                    id: format!("inc-{}-{port}", e.timestamp.timestamp()),
                    start: e.timestamp,
                    end: e.timestamp,
                    proxy: "10.1.1.5".into(),
                    backend: "10.0.0.100:80".into(),
                    community_id: None,
                    verdict: Verdict {
                        cause,
                        confidence: 0.9,
                        summary: format!("{} on port {port}", cause.as_str()),
                        remedy: None,
                    },
                    findings: vec![],
                    nodes: vec![],
                    errors: vec![DiagnosedError {
                        diagnosis: ErrorDiagnosis {
                            cause,
                            confidence: 0.9,
                            owner_node: Some("backend-01".into()),
                            stray_nodes: stray,
                            evidence: vec![],
                            proofs: vec![],
                            remedy: None,
                            measures: Default::default(),
                        },
                        record: e,
                        connection: vec![],
                    }],
                    timeline: vec![],
                }
            })
            .collect();
        if let Some(gap) = self.incident_gap {
            incidents = group(incidents, gap);
            summary.incidents = incidents.len() as u64;
        }
        let report = Report {
            schema_version: wiretrail_correlate::SCHEMA_VERSION.into(),
            generated_at: Utc::now(),
            since: w.since().to_utc(),
            until: w.until().to_utc(),
            clock_offsets: vec![],
            inputs: InputStats {
                proxy_errors: incidents.len() as u64,
                ..InputStats::default()
            },
            incidents,
            summary,
            events: vec![],
        };
        Ok(Analysis {
            report,
            packets: vec![],
            capture_bytes: 0,
        })
    }

    /// Publishing is counted, not sent.
    fn publish(&self, _p: &Pipeline, r: &Report) -> Result<String, EngineError> {
        self.published.lock().unwrap().push(r.incidents.len());
        Ok(format!("{} incidents (fake)", r.incidents.len()))
    }

    // What does not depend on logs or captures is the real engine's.
    fn render(&self, r: &Report, how: Rendering, out: &mut dyn Write) -> std::io::Result<()> {
        CratesEngine.render(r, how, out)
    }

    fn write_pcapng(&self, p: &[SlicePacket<'_>], out: &mut dyn Write) -> std::io::Result<()> {
        CratesEngine.write_pcapng(p, out)
    }

    fn merge(&self, parts: Vec<Report>, w: &Window) -> Report {
        CratesEngine.merge(parts, w)
    }

    fn incident_gap(&self, p: &Pipeline) -> wiretrail_pipeline::time::Duration {
        CratesEngine.incident_gap(p)
    }
}

/// Merge one-error incidents as the correlator groups them: same proxy and
/// backend, consecutive errors at most `gap` apart; the id is the first
/// error's, so it does not depend on which window the group was analysed in.
fn group(mut one_each: Vec<Incident>, gap: chrono::Duration) -> Vec<Incident> {
    one_each.sort_by_key(|i| i.start);
    let mut out: Vec<Incident> = Vec::new();
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    for inc in one_each {
        let key = (inc.proxy.clone(), inc.backend.clone());
        match open.get(&key) {
            Some(&k) if inc.start - out[k].end <= gap => {
                let g = &mut out[k];
                g.end = inc.end;
                g.errors.extend(inc.errors);
            }
            _ => {
                open.insert(key, out.len());
                out.push(inc);
            }
        }
    }
    out
}

/// One TCP segment for [`write_pcap`].
#[derive(Clone, Copy, Debug)]
pub struct Seg {
    pub ts_ns: i64,
    pub src: ([u8; 4], u16),
    pub dst: ([u8; 4], u16),
    /// TCP flag bits (FIN 1, SYN 2, RST 4, PSH 8, ACK 16).
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub payload: u16,
    pub ip_id: u16,
}

/// Write a classic pcap (LINKTYPE_ETHERNET, ns resolution) with these segments.
pub fn write_pcap(path: &Path, segs: &[Seg]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b23c4du32.to_le_bytes()); // nanosecond pcap
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for s in segs {
        let frame = frame(s);
        out.extend_from_slice(&((s.ts_ns / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((s.ts_ns % 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn frame(s: &Seg) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // dst mac
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // src mac
    f.extend_from_slice(&[0x08, 0x00]);
    let tcp_len = 20u16;
    let total = 20 + tcp_len + s.payload;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&s.ip_id.to_be_bytes());
    ip.extend_from_slice(&s.src.0);
    ip.extend_from_slice(&s.dst.0);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&s.src.1.to_be_bytes());
    tcp.extend_from_slice(&s.dst.1.to_be_bytes());
    tcp.extend_from_slice(&s.seq.to_be_bytes());
    tcp.extend_from_slice(&s.ack.to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(s.flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend(std::iter::repeat_n(b'x', s.payload as usize));
    f.extend_from_slice(&tcp);
    f
}

/// Causes of a report's incidents, counted.
pub fn causes(r: &Report) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in &r.incidents {
        *m.entry(i.verdict.cause.as_str().to_string()).or_default() += 1;
    }
    m
}
