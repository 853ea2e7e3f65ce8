//! The report as ECS documents: one per incident, one per timeline event,
//! and the index templates that type them for Kibana (es-api.md A8.3).
//!
//! Document ids are deterministic: the incident's id, and for an event the
//! incident id plus a hash of what identifies the event (node, file, frame
//! for a packet; the error index for a log line), so a re-run writes the
//! same documents even if the timeline's order changed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use wiretrail_capture::{Direction, TcpFlags, Timestamp};
use wiretrail_correlate::model::{EventBody, Incident, PacketEvent, Report, TimelineEvent};

/// Bump when the templates change; `setup` compares it with the cluster's.
pub const TEMPLATE_VERSION: i64 = 1;

/// One document to write.
#[derive(Debug, Clone, PartialEq)]
pub struct EsDoc {
    pub index: String,
    pub id: String,
    pub source: Value,
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn ts_at(t: Timestamp) -> String {
    ts(t.to_utc())
}

/// `10.1.1.5:51392`, `[fd00::5]:46572`; host names give `None`.
pub fn socket(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

fn endpoint(a: SocketAddr) -> Value {
    json!({ "ip": a.ip().to_string(), "port": a.port() })
}

fn flag_names(f: TcpFlags) -> Vec<&'static str> {
    const NAMES: [(u16, &str); 8] = [
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
    ];
    NAMES
        .iter()
        .filter(|(b, _)| f.has(*b))
        .map(|(_, n)| *n)
        .collect()
}

fn enum_str<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The proxy and backend sockets of an incident's first error.
fn sockets(inc: &Incident) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let first = inc.errors.first().map(|e| &e.record);
    let local = first.and_then(|r| r.local.as_deref()).and_then(socket);
    let remote = first.and_then(|r| r.remote.as_deref()).and_then(socket);
    (local, remote)
}

fn related(ips: impl IntoIterator<Item = IpAddr>) -> Vec<String> {
    let mut v: Vec<String> = ips.into_iter().map(|i| i.to_string()).collect();
    v.sort();
    v.dedup();
    v
}

pub fn incident_doc(report: &Report, inc: &Incident, index: &str) -> EsDoc {
    let (local, remote) = sockets(inc);
    let duration = (inc.end - inc.start).num_nanoseconds().unwrap_or(0).max(0);
    let mut ips = Vec::new();
    for e in &inc.errors {
        for s in [&e.record.local, &e.record.remote].into_iter().flatten() {
            if let Some(a) = socket(s) {
                ips.push(a.ip());
            }
        }
    }
    let node_names: Vec<&str> = inc.nodes.iter().map(|n| n.name.as_str()).collect();
    let evidence: Vec<Value> = inc
        .findings
        .iter()
        .flat_map(|f| f.evidence.iter().map(move |e| (f, e)))
        .map(|(f, e)| json!({ "finding": enum_str(&f.kind), "node": e.origin.as_str(), "file": e.file, "frame": e.frame, "time": ts(e.time), "note": e.note }))
        .collect();
    let offsets: Vec<Value> = report
        .clock_offsets
        .iter()
        .filter(|o| node_names.contains(&o.node.as_str()))
        .map(|o| json!({ "node": o.node, "offset_s": o.offset_s, "uncertainty_s": o.uncertainty_s, "method": enum_str(&o.method), "samples": o.samples }))
        .collect();
    let mut stray: Vec<&str> = inc
        .errors
        .iter()
        .flat_map(|e| e.diagnosis.stray_nodes.iter().map(String::as_str))
        .collect();
    stray.sort_unstable();
    stray.dedup();
    let mut owners: Vec<&str> = inc
        .errors
        .iter()
        .filter_map(|e| e.diagnosis.owner_node.as_deref())
        .collect();
    owners.sort_unstable();
    owners.dedup();
    let errors: Vec<Value> = inc
        .errors
        .iter()
        .map(|e| {
            let r = &e.record;
            json!({ "timestamp": ts(r.timestamp), "host": r.host, "op": r.op, "local": r.local, "remote": r.remote,
                    "class": enum_str(&r.class), "message": r.message, "cause": e.diagnosis.cause.as_str(),
                    "confidence": e.diagnosis.confidence, "source": enum_str(&r.source) })
        })
        .collect();
    let mut doc = json!({
        "@timestamp": ts(inc.start),
        "message": inc.verdict.summary,
        "event": { "kind": "alert", "category": ["network"], "type": ["connection", "error"], "outcome": "failure",
                   "start": ts(inc.start), "end": ts(inc.end), "duration": duration, "dataset": "wiretrail.incident" },
        "network": { "transport": "tcp" },
        "host": { "name": inc.proxy },
        "related": { "ip": related(ips) },
        "wiretrail": {
            "schema_version": report.schema_version,
            "incident_id": inc.id,
            "proxy": inc.proxy,
            "backend": inc.backend,
            "cause": inc.verdict.cause.as_str(),
            "confidence": inc.verdict.confidence,
            "nodes": node_names,
            "node_states": inc.nodes.iter().map(|n| json!({ "name": n.name, "role": enum_str(&n.role), "saw_connection": n.saw_connection, "covered": n.covered })).collect::<Vec<_>>(),
            "stray_nodes": stray,
            "owner_nodes": owners,
            "findings": inc.findings.iter().map(|f| json!({ "kind": enum_str(&f.kind), "nodes": f.nodes, "confidence": f.confidence, "summary": f.summary })).collect::<Vec<_>>(),
            "evidence": evidence,
            "clock_offsets": offsets,
            "errors": errors,
            "error_count": inc.errors.len(),
            "event_count": inc.timeline.len(),
        }
    });
    if let Some(c) = &inc.community_id {
        doc["network"]["community_id"] = json!(c);
    }
    if let Some(l) = local {
        doc["source"] = endpoint(l);
    }
    if let Some(r) = remote {
        doc["destination"] = endpoint(r);
    }
    EsDoc {
        index: index.to_string(),
        id: inc.id.clone(),
        source: doc,
    }
}

fn event_key(ev: &TimelineEvent) -> String {
    match &ev.body {
        EventBody::Packet(PacketEvent { file, frame, .. }) => {
            format!("packet\0{}\0{}\0{}", ev.origin, file, frame)
        }
        EventBody::Log { error, .. } => format!("log\0{error}"),
    }
}

fn short_hash(s: &str) -> String {
    let d = Sha1::digest(s.as_bytes());
    d[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// The timeline of one incident as documents.
pub fn event_docs(inc: &Incident, index: &str) -> Vec<EsDoc> {
    let (local, remote) = sockets(inc);
    let mut used: HashMap<String, u32> = HashMap::new();
    inc.timeline
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            let base = format!("{}-{}", inc.id, short_hash(&event_key(ev)));
            // Two events with one key (should not happen) must not overwrite each other.
            let n = used.entry(base.clone()).or_insert(0);
            let id = if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            *n += 1;
            EsDoc {
                index: index.to_string(),
                id,
                source: event_doc(inc, i, ev, local, remote),
            }
        })
        .collect()
}

fn event_doc(
    inc: &Incident,
    i: usize,
    ev: &TimelineEvent,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
) -> Value {
    let mut w = Map::new();
    w.insert("incident_id".into(), json!(inc.id));
    w.insert("event_index".into(), json!(i));
    w.insert("cause".into(), json!(inc.verdict.cause.as_str()));
    w.insert("node".into(), json!(ev.origin.as_str()));
    let (message, etype, outcome, from_proxy) = match &ev.body {
        EventBody::Packet(p) => {
            let names = flag_names(p.flags);
            w.insert("event_type".into(), json!("packet"));
            w.insert("packet".into(), json!({
                "dir": enum_str(&p.dir), "flags": names, "flag_bits": p.flags.0, "seq": p.seq, "ack": p.ack,
                "len": p.len, "window": p.window, "tsval": p.tsval, "tsecr": p.tsecr, "rel_seq": p.rel_seq,
                "rel_ack": p.rel_ack, "file": p.file, "frame": p.frame,
                "marks": p.marks.iter().map(enum_str).collect::<Vec<_>>() }));
            let to_backend = p.dir == Direction::ToBackend;
            let arrow = if to_backend {
                "proxy → backend"
            } else {
                "backend → proxy"
            };
            let mut msg = format!(
                "{arrow} [{}] seq={} ack={} win={} len={}",
                names.join(","),
                p.rel_seq.unwrap_or(p.seq),
                p.rel_ack.unwrap_or(p.ack),
                p.window,
                p.len
            );
            if !p.marks.is_empty() {
                let m: Vec<String> = p
                    .marks
                    .iter()
                    .map(|m| enum_str(m).as_str().unwrap_or("").to_string())
                    .collect();
                msg.push_str(&format!(" ({})", m.join(", ")));
            }
            (msg, "connection", None, to_backend)
        }
        EventBody::Log { error, message } => {
            w.insert("event_type".into(), json!("log"));
            w.insert("log".into(), json!({ "error": error }));
            (message.clone(), "error", Some("failure"), true)
        }
    };
    let mut doc = json!({
        "@timestamp": ts_at(ev.t_ns),
        "message": message,
        "event": { "kind": "event", "category": ["network"], "type": [etype], "dataset": "wiretrail.timeline" },
        "network": { "transport": "tcp" },
        "host": { "name": ev.origin.as_str() },
        "wiretrail": Value::Object(w),
    });
    if let Some(o) = outcome {
        doc["event"]["outcome"] = json!(o);
    }
    if let Some(c) = &inc.community_id {
        doc["network"]["community_id"] = json!(c);
    }
    let (src, dst) = if from_proxy {
        (local, remote)
    } else {
        (remote, local)
    };
    if let Some(s) = src {
        doc["source"] = endpoint(s);
    }
    if let Some(d) = dst {
        doc["destination"] = endpoint(d);
    }
    doc["related"] = json!({ "ip": related(src.into_iter().chain(dst).map(|a| a.ip())) });
    doc
}

/// All documents of a report, incidents first, lazily.
pub fn documents<'a>(
    report: &'a Report,
    incidents_index: &'a str,
    events_index: &'a str,
) -> impl Iterator<Item = EsDoc> + 'a {
    report.incidents.iter().flat_map(move |inc| {
        std::iter::once(incident_doc(report, inc, incidents_index))
            .chain(event_docs(inc, events_index))
    })
}

fn kw() -> Value {
    json!({ "type": "keyword" })
}

/// Mappings shared by both templates: the ECS fields.
fn ecs_properties(text_type: &str) -> Map<String, Value> {
    let endpoint = json!({ "properties": { "ip": { "type": "ip" }, "port": { "type": "long" } } });
    let mut p = Map::new();
    p.insert("@timestamp".into(), json!({ "type": "date_nanos" }));
    p.insert("message".into(), json!({ "type": text_type }));
    p.insert("source".into(), endpoint.clone());
    p.insert("destination".into(), endpoint);
    p.insert(
        "network".into(),
        json!({ "properties": { "community_id": kw(), "transport": kw() } }),
    );
    p.insert("event".into(), json!({ "properties": {
        "kind": kw(), "category": kw(), "type": kw(), "outcome": kw(), "dataset": kw(),
        "start": { "type": "date_nanos" }, "end": { "type": "date_nanos" }, "duration": { "type": "long" } } }));
    p.insert("host".into(), json!({ "properties": { "name": kw() } }));
    p.insert(
        "related".into(),
        json!({ "properties": { "ip": { "type": "ip" } } }),
    );
    p
}

/// `(name, body)` of the incidents and events templates. `text_type` is
/// `match_only_text` for Elasticsearch, `text` for OpenSearch.
pub fn templates(prefix: &str, text_type: &str) -> Vec<(String, Value)> {
    let dn = json!({ "type": "date_nanos" });
    let mut inc = ecs_properties(text_type);
    inc.insert("wiretrail".into(), json!({ "properties": {
        "schema_version": kw(), "incident_id": kw(), "proxy": kw(), "backend": kw(), "cause": kw(),
        "confidence": { "type": "float" }, "nodes": kw(), "stray_nodes": kw(), "owner_nodes": kw(),
        "node_states": { "properties": { "name": kw(), "role": kw(), "saw_connection": { "type": "boolean" }, "covered": { "type": "boolean" } } },
        "findings": { "properties": { "kind": kw(), "nodes": kw(), "confidence": { "type": "float" }, "summary": { "type": text_type } } },
        "evidence": { "properties": { "finding": kw(), "node": kw(), "file": kw(), "frame": { "type": "long" }, "time": dn, "note": { "type": text_type } } },
        "clock_offsets": { "properties": { "node": kw(), "offset_s": { "type": "double" }, "uncertainty_s": { "type": "double" }, "method": kw(), "samples": { "type": "long" } } },
        "errors": { "properties": { "timestamp": dn, "host": kw(), "op": kw(), "local": kw(), "remote": kw(), "class": kw(),
                                     "message": { "type": text_type }, "cause": kw(), "confidence": { "type": "float" },
                                     "source": { "properties": { "file": kw(), "line": { "type": "long" }, "index": kw(), "id": kw() } } } },
        "error_count": { "type": "long" }, "event_count": { "type": "long" }
    } }));
    let mut ev = ecs_properties(text_type);
    ev.insert("wiretrail".into(), json!({ "properties": {
        "incident_id": kw(), "event_index": { "type": "long" }, "cause": kw(), "node": kw(), "event_type": kw(),
        "packet": { "properties": { "dir": kw(), "flags": kw(), "flag_bits": { "type": "long" }, "seq": { "type": "long" }, "ack": { "type": "long" },
            "len": { "type": "long" }, "window": { "type": "long" }, "tsval": { "type": "long" }, "tsecr": { "type": "long" },
            "rel_seq": { "type": "long" }, "rel_ack": { "type": "long" }, "file": kw(), "frame": { "type": "long" }, "marks": kw() } },
        "log": { "properties": { "error": { "type": "long" } } }
    } }));
    let body = |pattern: String, what: &str, props: Map<String, Value>| {
        json!({
            "index_patterns": [pattern],
            // Above the built-in templates (100) and Fleet's (200); the
            // pattern does not overlap theirs anyway (A8.1).
            "priority": 300,
            "version": TEMPLATE_VERSION,
            "_meta": { "managed_by": "wiretrail", "description": what },
            "template": {
                "settings": { "number_of_shards": 1 },
                // Unknown keys stay in _source without growing the mapping.
                "mappings": { "dynamic": false, "properties": props }
            }
        })
    };
    vec![
        (
            format!("{prefix}-incidents"),
            body(
                format!("{prefix}-incidents*"),
                "wiretrail incidents: one document per incident",
                inc,
            ),
        ),
        (
            format!("{prefix}-events"),
            body(
                format!("{prefix}-events*"),
                "wiretrail timeline events: one document per packet or log event",
                ev,
            ),
        ),
    ]
}
