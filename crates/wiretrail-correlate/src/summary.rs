//! The summary across incidents, and the merging of reports (a day of
//! batch chunks) into one.
//!
//! The summary is a pure function of the incidents: counts, and patterns
//! computed from the typed figures each diagnosis measured
//! ([`crate::model::Measures`]). So a merged report recomputes it from all
//! the chunks' incidents instead of keeping each chunk's own sentences.

use crate::model::{Cause, ClockOffset, Incident, InputStats, Report, Summary, SCHEMA_VERSION};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Counts and patterns across `incidents`.
pub fn summarize(incidents: &[Incident]) -> Summary {
    let mut s = Summary {
        incidents: incidents.len() as u64,
        ..Summary::default()
    };
    let errors = || incidents.iter().flat_map(|i| i.errors.iter());
    for e in errors() {
        let d = &e.diagnosis;
        s.errors += 1;
        *s.by_cause.entry(d.cause).or_default() += 1;
        for n in &d.stray_nodes {
            *s.stray_nodes.entry(n.clone()).or_default() += 1;
        }
        if let Some(o) = &d.owner_node {
            *s.owner_nodes.entry(o.clone()).or_default() += 1;
        }
        *s.by_hour
            .entry(e.record.timestamp.format("%Y-%m-%dT%H").to_string())
            .or_default() += 1;
    }
    let of = |c: Cause| errors().filter(move |e| e.diagnosis.cause == c);

    let splits = s.by_cause.get(&Cause::FlowSplit).copied().unwrap_or(0);
    if splits > 0 {
        if let Some((node, n)) = s.stray_nodes.iter().max_by_key(|(_, n)| **n) {
            s.patterns.push(format!(
                "the stray node was {node} in {n}/{splits} flow_split errors"
            ));
        }
        let shapes: Vec<(u32, u64)> = of(Cause::FlowSplit)
            .filter_map(|e| {
                let m = &e.diagnosis.measures;
                Some((m.stray_segment?, m.request_bytes?))
            })
            .collect();
        if !shapes.is_empty() {
            let mut ords: BTreeMap<u32, usize> = BTreeMap::new();
            for (o, _) in &shapes {
                *ords.entry(*o).or_default() += 1;
            }
            let (ord, n) = ords.iter().max_by_key(|(_, n)| **n).expect("non-empty");
            s.patterns.push(format!(
                "the stray segment was data segment #{ord} of its request in {n}/{}",
                shapes.len()
            ));
            let mut sizes: Vec<u64> = shapes.iter().map(|s| s.1).collect();
            sizes.sort_unstable();
            s.patterns.push(format!(
                "request sizes at the split: {}–{} bytes (median {})",
                sizes[0],
                sizes[sizes.len() - 1],
                sizes[sizes.len() / 2]
            ));
        }
    }
    let idle = |c: Cause| {
        let mut v: Vec<i64> = of(c).filter_map(|e| e.diagnosis.measures.idle_ms).collect();
        v.sort_unstable();
        v
    };
    let v = idle(Cause::IdleRace);
    if !v.is_empty() {
        s.patterns.push(format!(
            "idle races: the backend closed after {}–{} ms idle (median {} ms, {} errors): its idle timeout; keep the proxy's IdleConnTimeout below it",
            v[0],
            v[v.len() - 1],
            v[v.len() / 2],
            v.len()
        ));
    }
    let v = idle(Cause::MiddleboxReset);
    if !v.is_empty() {
        s.patterns.push(format!(
            "middlebox resets came after {:.1}–{:.1} s idle (median {:.1} s, {} errors): the device's idle timer is at most the shortest; keep the proxy's idle timeout below it",
            v[0] as f64 / 1e3,
            v[v.len() - 1] as f64 / 1e3,
            v[v.len() / 2] as f64 / 1e3,
            v.len()
        ));
    }
    let mut budgets: BTreeMap<u32, usize> = BTreeMap::new();
    for n in of(Cause::MaxRequestsClose).filter_map(|e| e.diagnosis.measures.requests_served) {
        *budgets.entry(n).or_default() += 1;
    }
    if !budgets.is_empty() {
        let list: Vec<String> = budgets
            .iter()
            .map(|(n, k)| format!("after {n} requests ×{k}"))
            .collect();
        s.patterns.push(format!(
            "max-requests closes: the backend closed {} ({} errors): its request budget; have it announce the close or raise it",
            list.join(", "),
            budgets.values().sum::<usize>()
        ));
    }
    if let Some((cause, n)) = s.by_cause.iter().max_by_key(|(_, n)| **n) {
        if s.errors > 1 {
            s.patterns
                .push(format!("most common cause: {cause} ({n}/{})", s.errors));
        }
    }
    if let Some((h, n)) = s.by_hour.iter().max_by_key(|(_, n)| **n) {
        if s.by_hour.len() > 1 {
            s.patterns.push(format!("busiest hour: {h} ({n} errors)"));
        }
    }
    s
}

/// One report from several (the chunks of a batch, in order): incidents and
/// events concatenated, inputs added, per node the clock offset resting on
/// the most samples, and the summary recomputed from all the incidents.
pub fn merge(parts: Vec<Report>, since: DateTime<Utc>, until: DateTime<Utc>) -> Report {
    let mut out = Report {
        schema_version: SCHEMA_VERSION.to_string(),
        generated_at: Utc::now(),
        since,
        until,
        clock_offsets: Vec::new(),
        incidents: Vec::new(),
        events: Vec::new(),
        summary: Summary::default(),
        inputs: InputStats::default(),
    };
    for r in parts {
        merge_offsets(&mut out.clock_offsets, r.clock_offsets);
        add_inputs(&mut out.inputs, &r.inputs);
        out.incidents.extend(r.incidents);
        out.events.extend(r.events);
    }
    out.summary = summarize(&out.incidents);
    out
}

/// Keep, per node, the offset resting on the most samples.
fn merge_offsets(into: &mut Vec<ClockOffset>, more: Vec<ClockOffset>) {
    for o in more {
        match into.iter_mut().find(|x| x.node == o.node) {
            Some(x) if o.samples > x.samples => *x = o,
            Some(_) => {}
            None => into.push(o),
        }
    }
}

fn add_inputs(into: &mut InputStats, s: &InputStats) {
    into.log_lines += s.log_lines;
    into.proxy_errors += s.proxy_errors;
    into.unparsed_lines += s.unparsed_lines;
    into.capture_files_read += s.capture_files_read;
    into.capture_bytes_read += s.capture_bytes_read;
    into.packets_matched += s.packets_matched;
    into.problems.extend(s.problems.iter().cloned());
}
