//! The HTML report: one self-contained file (inline CSS and SVG, no script,
//! no external URL, and a Content-Security-Policy that forbids both), with
//! the window, clock offsets and summary, a list of incidents, and per
//! incident the verdict, findings with evidence, a ladder diagram, the
//! complete timeline table and the log lines.
//!
//! Escaping discipline: every string that did not originate in this module
//! goes through [`text::html`] (element content and double-quoted attribute
//! values alike), which first makes control and bidi characters visible and
//! then HTML-escapes. Anchors use incident ordinals, never ids from data.

use std::fmt::Write as _;
use std::io::{self, Write};

use wiretrail_correlate::model::{
    DiagnosedError, EventBody, Finding, Incident, Report, Summary, TimelineEvent,
};

use crate::describe;
use crate::describe::{human_bytes, source_text};
use crate::ladder;
use crate::text;

/// Timelines longer than this start collapsed (still complete).
const OPEN_TABLE_ROWS: usize = 400;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// The whole report as one HTML document.
pub fn render_html(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!(
        "wiretrail report {} .. {}",
        describe::abs_time(report.since),
        describe::abs_time(report.until)
    );
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="wiretrail">
<title>{title}</title>
<style>
{css}</style>
</head><body>
"#,
        csp = text::html(CSP),
        title = text::html(&title),
        css = include_str!("style.css"),
    );
    header(&mut h, report);
    out.write_all(h.as_bytes())?;
    for (i, inc) in report.incidents.iter().enumerate() {
        let mut h = String::with_capacity(32 * 1024);
        incident(&mut h, report, inc, i + 1);
        out.write_all(h.as_bytes())?;
    }
    out.write_all(b"</body></html>\n")
}

fn header(h: &mut String, r: &Report) {
    let _ = writeln!(
        h,
        r#"<header><h1>wiretrail report</h1><div class="muted">window <code>{}</code> .. <code>{}</code> · generated <code>{}</code> · schema {}</div></header>"#,
        describe::abs_time(r.since),
        describe::abs_time(r.until),
        describe::abs_time(r.generated_at),
        text::html(&r.schema_version)
    );
    h.push_str(r#"<div class="grid">"#);
    // Summary.
    summary(h, &r.summary);
    // Clock offsets.
    h.push_str(r#"<section class="card" id="clock"><h3>Clock offsets</h3>"#);
    if r.clock_offsets.is_empty() {
        h.push_str(r#"<p class="muted">none estimated: node clocks taken as they are</p>"#);
    } else {
        h.push_str(r#"<table><tr><th>node</th><th class="num">offset</th><th class="num">±</th><th>method</th><th class="num">samples</th></tr>"#);
        for o in &r.clock_offsets {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td class="num mono">{:+.6} s</td><td class="num mono">{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                text::html(&o.node),
                o.offset_s,
                describe::uncertainty_text(o),
                describe::method_word(o.method),
                o.samples
            );
        }
        h.push_str("</table><p class=\"muted\">offset: add to the node's capture times to get reference time</p>");
    }
    h.push_str("</section>");
    // Findings across errors.
    if !r.events.is_empty() {
        let _ = write!(
            h,
            r#"<section class="card" id="events"><h3>Events across errors ({})</h3><ul>"#,
            r.events.len()
        );
        for f in &r.events {
            let _ = write!(
                h,
                r#"<li><span class="pill">{}</span> {} {}</li>"#,
                describe::finding_word(f.kind),
                describe::pct(f.confidence),
                text::html(&f.summary)
            );
        }
        h.push_str("</ul></section>");
    }
    // Inputs.
    let s = &r.inputs;
    let _ = write!(
        h,
        r#"<section class="card" id="inputs"><h3>Inputs</h3><table>
<tr><td>log lines</td><td class="num">{}</td></tr><tr><td>proxy errors</td><td class="num">{}</td></tr>
<tr><td>unparsed lines</td><td class="num">{}</td></tr><tr><td>capture files read</td><td class="num">{}</td></tr>
<tr><td>capture bytes read</td><td class="num">{}</td></tr><tr><td>packets matched</td><td class="num">{}</td></tr></table>"#,
        s.log_lines,
        s.proxy_errors,
        s.unparsed_lines,
        s.capture_files_read,
        human_bytes(s.capture_bytes_read),
        s.packets_matched
    );
    if !s.problems.is_empty() {
        let _ = write!(h, "<h3>Problems ({})</h3><ul>", s.problems.len());
        for p in &s.problems {
            let _ = write!(h, "<li class=\"mono\">{}</li>", text::html(&p.to_string()));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section></div>\n");
    // Incident list.
    let _ = write!(
        h,
        r#"<section class="block" id="incidents"><h2>Incidents ({})</h2>"#,
        r.incidents.len()
    );
    if r.incidents.is_empty() {
        h.push_str("<p>No incidents in the window.</p>");
    } else {
        h.push_str(r#"<table><tr><th>#</th><th>start</th><th>proxy</th><th>backend</th><th>verdict</th><th class="num">confidence</th><th class="num">errors</th><th>nodes with packets</th></tr>"#);
        for (i, inc) in r.incidents.iter().enumerate() {
            let saw: Vec<String> = inc
                .nodes
                .iter()
                .filter(|n| n.saw_connection)
                .map(|n| text::html(&n.name))
                .collect();
            let _ = write!(
                h,
                r##"<tr><td><a href="#inc-{n}">{n}</a></td><td class="mono">{start}</td><td>{proxy}</td><td>{backend}</td><td><span class="pill cause-{c}">{c}</span></td><td class="num">{conf}</td><td class="num">{errs}</td><td>{saw}</td></tr>"##,
                n = i + 1,
                start = describe::abs_time(inc.start),
                proxy = text::html(&inc.proxy),
                backend = text::html(&inc.backend),
                c = inc.verdict.cause.as_str(),
                conf = describe::pct(inc.verdict.confidence),
                errs = inc.errors.len(),
                saw = saw.join(", ")
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

fn summary(h: &mut String, s: &Summary) {
    let _ = write!(
        h,
        r#"<section class="card" id="summary"><h3>Summary: {} incidents, {} errors</h3>"#,
        s.incidents, s.errors
    );
    let by_cause: std::collections::BTreeMap<String, u64> = s
        .by_cause
        .iter()
        .map(|(c, n)| (c.as_str().to_owned(), *n))
        .collect();
    for (label, m) in [
        ("by cause", &by_cause),
        ("stray nodes", &s.stray_nodes),
        ("owner nodes", &s.owner_nodes),
        ("by hour", &s.by_hour),
    ] {
        if m.is_empty() {
            continue;
        }
        let max = m.values().copied().max().unwrap_or(1).max(1);
        let _ = write!(h, "<div><b>{label}</b><table>");
        for (k, v) in m {
            let px = (*v as f64 / max as f64 * 160.0).ceil();
            let _ = write!(
                h,
                r#"<tr><td class="mono">{}</td><td class="num">{v}</td><td><span class="bar" style="width:{px:.0}px"></span></td></tr>"#,
                text::html(k)
            );
        }
        h.push_str("</table></div>");
    }
    if !s.patterns.is_empty() {
        h.push_str("<div><b>patterns</b><ul>");
        for p in &s.patterns {
            let _ = write!(h, "<li>{}</li>", text::html(&p.to_string()));
        }
        h.push_str("</ul></div>");
    }
    h.push_str("</section>");
}

fn incident(h: &mut String, report: &Report, inc: &Incident, n: usize) {
    let _ = write!(
        h,
        r#"<section class="incident" id="inc-{n}"><h2>Incident {n} <span class="muted mono">{id}</span></h2>
<div><code>{start}</code> .. <code>{end}</code> · proxy <b>{proxy}</b> → backend <b>{backend}</b>"#,
        id = text::html(&inc.id),
        start = describe::abs_time(inc.start),
        end = describe::abs_time(inc.end),
        proxy = text::html(&inc.proxy),
        backend = text::html(&inc.backend),
    );
    if let Some(c) = &inc.community_id {
        let _ = write!(h, " · community_id <code>{}</code>", text::html(c));
    }
    let v = &inc.verdict;
    let _ = write!(
        h,
        r#"</div><div class="verdict {cls}"><span class="cause">{cause}</span> · confidence {conf}<div>{summary}</div></div>"#,
        cls = if v.cause == wiretrail_correlate::Cause::Unknown {
            "unknown"
        } else {
            ""
        },
        cause = v.cause.as_str(),
        conf = describe::pct(v.confidence),
        summary = text::html(&v.summary)
    );
    if let Some(r) = &v.remedy {
        let _ = write!(
            h,
            r#"<div class="remedy"><b>Remedy.</b> {}</div>"#,
            text::html(r)
        );
    }

    // Ladder.
    let drawn_cap = ladder::MAX_ARROWS;
    h.push_str("<h3>Ladder</h3>");
    h.push_str(concat!(
        r#"<div class="muted">time runs down, one row per event on the reference clock · "#,
        r#"<span style="color:#c62828">red ✕ = RST</span> · "#,
        r#"<span style="color:#e67e00">orange dashed = stray segment (node without the handshake)</span> · "#,
        r#"<span style="color:#6a1b9a">(R) = retransmission</span> · ×2 = capture duplicate folded in · "#,
        r#"<span style="color:#00838f">◆ = proxy log line (502 to the client)</span></div>"#
    ));
    let packets = inc
        .timeline
        .iter()
        .filter(|e| matches!(e.body, EventBody::Packet(_)))
        .count();
    if inc.timeline.len() > drawn_cap {
        let _ = write!(
            h,
            r#"<div class="note">{} events ({packets} packets): the ladder draws at most {drawn_cap} (logs, RSTs, stray segments, SYN/FIN and marked packets first, with their neighbours); the table below lists every event.</div>"#,
            inc.timeline.len()
        );
    }
    if inc.timeline.is_empty() {
        h.push_str(r#"<div class="note">No packets: the connection is not in the captures that were read.</div>"#);
    } else {
        h.push_str(r#"<div class="ladder-wrap">"#);
        h.push_str(&ladder::svg(inc, n, drawn_cap));
        h.push_str("</div>");
    }

    // Log lines and per-error diagnosis.
    let _ = write!(h, "<h3>Log lines ({})</h3>", inc.errors.len());
    for (i, e) in inc.errors.iter().enumerate() {
        error_block(h, i + 1, e);
    }

    // Findings.
    if !inc.findings.is_empty() {
        let _ = write!(h, "<h3>Findings ({})</h3>", inc.findings.len());
        for f in &inc.findings {
            finding(h, f);
        }
    }

    // Nodes and the offsets used.
    h.push_str(r#"<h3>Nodes</h3><table><tr><th>node</th><th>role</th><th>saw the connection</th><th>captures cover the window</th><th>clock offset used</th></tr>"#);
    let offsets = describe::offsets_for(report, inc);
    for node in &inc.nodes {
        let off = offsets
            .iter()
            .find(|o| o.node == node.name)
            .map(|o| describe::offset_text(o))
            .unwrap_or_else(|| "-".into());
        let role = describe::role_word(node.role);
        let _ = write!(
            h,
            r#"<tr><td><b>{}</b></td><td>{role}</td><td>{}</td><td>{}</td><td class="mono">{}</td></tr>"#,
            text::html(&node.name),
            if node.saw_connection { "yes" } else { "no" },
            if node.covered {
                "yes"
            } else {
                "<b>no</b>: absence proves nothing"
            },
            text::html(&off)
        );
    }
    h.push_str("</table>");

    // Timeline table.
    timeline_table(h, inc);
    h.push_str("</section>\n");
}

fn error_block(h: &mut String, n: usize, e: &DiagnosedError) {
    let r = &e.record;
    let _ = write!(
        h,
        r#"<div class="logline">[{n}] <b>{ts}</b>{assumed} {host}{msg}</div><div class="muted">class <b>{class}</b> · op {op} · local {local} · remote {remote} · source <code>{src}</code></div>"#,
        ts = describe::abs_time(r.timestamp),
        assumed = if r.time_zone_assumed {
            " (zone assumed)"
        } else {
            ""
        },
        host = r
            .host
            .as_deref()
            .map(|h| format!("{} ", text::html(h)))
            .unwrap_or_default(),
        msg = text::html(&r.message),
        class = r.class.as_str(),
        op = text::html(r.op.as_deref().unwrap_or("-")),
        local = text::html(r.local.as_deref().unwrap_or("-")),
        remote = text::html(r.remote.as_deref().unwrap_or("-")),
        src = text::html(&source_text(&r.source)),
    );
    let d = &e.diagnosis;
    let strays: Vec<String> = d.stray_nodes.iter().map(|s| text::html(s)).collect();
    let _ = write!(
        h,
        r#"<div>diagnosis <span class="pill cause-{c}">{c}</span> {conf} · owner <b>{owner}</b> · stray <b>{strays}</b></div>"#,
        c = d.cause.as_str(),
        conf = describe::pct(d.confidence),
        owner = text::html(d.owner_node.as_deref().unwrap_or("none")),
        strays = if strays.is_empty() {
            "none".to_owned()
        } else {
            strays.join(", ")
        },
    );
    if !d.proofs.is_empty() {
        h.push_str(r#"<div class="proofs">proofs:"#);
        for pr in &d.proofs {
            let _ = write!(
                h,
                r#" <span class="pill" title="{note}">{w} {wt:+.2}</span>"#,
                note = text::html(&pr.note),
                w = describe::proof_word(pr.proof),
                wt = pr.weight
            );
        }
        h.push_str("</div>");
    }
    if !e.connection.is_empty() {
        h.push_str(r#"<table class="evidence"><tr><th>node</th><th>conn_state</th><th>history</th><th>handshake</th><th class="num">packets</th><th class="num">capture dups</th><th>first</th><th>last</th></tr>"#);
        for c in &e.connection {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td class="mono">{}</td><td class="mono">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="mono">{}</td><td class="mono">{}</td></tr>"#,
                text::html(&c.node),
                c.conn_state.as_str(),
                text::html(&c.history),
                if c.handshake_seen { "seen" } else { "not seen" },
                c.packets,
                c.capture_duplicates,
                describe::abs_time(c.first),
                describe::abs_time(c.last)
            );
        }
        h.push_str("</table>");
    }
    if !d.evidence.is_empty() {
        evidence_table(h, &d.evidence);
    }
}

fn finding(h: &mut String, f: &Finding) {
    let kind = describe::finding_word(f.kind);
    let nodes: Vec<String> = f.nodes.iter().map(|n| text::html(n)).collect();
    let _ = write!(
        h,
        r#"<div class="finding"><span class="kind">{kind}</span> <span class="pill">{}</span> [{}] {}"#,
        describe::pct(f.confidence),
        nodes.join(", "),
        text::html(&f.summary)
    );
    if !f.evidence.is_empty() {
        evidence_table(h, &f.evidence);
    }
    h.push_str("</div>");
}

fn evidence_table(h: &mut String, ev: &[wiretrail_correlate::model::Evidence]) {
    h.push_str(r#"<table class="evidence"><tr><th>node</th><th>file</th><th class="num">frame</th><th>time</th><th>note</th></tr>"#);
    for e in ev {
        let _ = write!(
            h,
            r#"<tr><td>{}</td><td class="mono">{}</td><td class="num mono">{}</td><td class="mono">{}</td><td>{}</td></tr>"#,
            text::html(e.origin.as_str()),
            text::html(&e.file),
            e.frame,
            describe::abs_time(e.time),
            text::html(e.note.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>");
}

fn timeline_table(h: &mut String, inc: &Incident) {
    let open = if inc.timeline.len() <= OPEN_TABLE_ROWS {
        " open"
    } else {
        ""
    };
    let _ = write!(
        h,
        r#"<details{open}><summary>Timeline ({} events; seq/ack relative to the ISN, * = raw)</summary><table class="tl"><thead><tr><th class="num">rel. time</th><th>time</th><th>node</th><th>dir</th><th>flags</th><th class="num">seq</th><th class="num">ack</th><th class="num">len</th><th class="num">win</th><th class="num">tsval</th><th class="num">tsecr</th><th>file#frame</th><th>marks</th></tr></thead><tbody>"#,
        inc.timeline.len()
    );
    let base = describe::base_time(inc);
    for ev in &inc.timeline {
        row(h, ev, base);
    }
    h.push_str("</tbody></table></details>");
}

fn row(h: &mut String, ev: &TimelineEvent, base: wiretrail_capture::Timestamp) {
    let class = describe::row_class(ev).css();
    let rel = describe::rel_time(ev.t_ns, base);
    let abs = describe::ns_time(ev.t_ns);
    match &ev.body {
        EventBody::Log { error, message } => {
            let _ = write!(
                h,
                r#"<tr class="{class}"><td class="num">{rel}</td><td>{abs}</td><td>log</td><td>◆</td><td colspan="9">[{}] {}</td></tr>"#,
                error + 1,
                text::html(message)
            );
        }
        EventBody::Packet(p) => {
            let _ = write!(
                h,
                r#"<tr class="{class}"><td class="num">{rel}</td><td>{abs}</td><td>{node}</td><td>{arrow}</td><td>{flags}</td><td class="num">{seq}</td><td class="num">{ack}</td><td class="num">{len}</td><td class="num">{window}</td><td class="num">{tsval}</td><td class="num">{tsecr}</td><td title="{file_attr}">{file_short}#{frame}</td><td>{marks}</td></tr>"#,
                node = text::html(ev.origin.as_str()),
                arrow = describe::arrow(p.dir),
                flags = describe::flags_text(p.flags),
                seq = describe::packet_seq(p),
                ack = describe::packet_ack(p),
                len = p.len,
                window = p.window,
                tsval = describe::opt_text(p.tsval),
                tsecr = describe::opt_text(p.tsecr),
                file_attr = text::html(&p.file),
                file_short = text::html(p.file.rsplit('/').next().unwrap_or(&p.file)),
                frame = p.frame,
                marks = describe::marks_text(&p.marks),
            );
        }
    }
}
