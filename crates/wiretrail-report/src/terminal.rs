//! The terminal rendering: per incident a header (time, proxy, backend, log
//! lines, verdict, findings, nodes, clock offsets) and one row per event on
//! the aligned clock, tshark's one-line summary with a node column; then the
//! summary across incidents and what the inputs held.
//!
//! Every string that came from a log or a packet goes through
//! [`crate::text::visible`] before it is written, so a hostile log line cannot
//! send escape sequences to the reader's terminal. Colour codes are only ever
//! added by this module, around text that is already clean.

use std::io::{self, Write};

use chrono::SecondsFormat;
use wiretrail_correlate::model::{
    ClockOffset, DiagnosedError, EventBody, Incident, IncidentNode, InputStats, PacketEvent,
    Report, Summary, TimelineEvent,
};
use wiretrail_logs::record::TimePrecision;

use crate::describe::{self, human_bytes, source_text, RowClass};
use crate::text::{truncate, visible};

/// How to draw the terminal report. The binary decides `color` (a TTY and no
/// `NO_COLOR`) and `width` (the terminal's columns); the library never probes
/// the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Emit ANSI SGR colour codes.
    pub color: bool,
    /// Cut every line to this many characters (`…` marks the cut).
    pub width: Option<usize>,
    /// Show at most this many timeline rows per incident; the most telling
    /// rows are kept (logs, RSTs, stray segments, SYN/FIN, marks) with their
    /// neighbours, and each elided stretch is announced.
    pub max_rows_per_incident: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    None,
    Bold,
    Red,
    Yellow,
    Cyan,
    Dim,
    Green,
}

impl Style {
    fn sgr(self) -> &'static str {
        match self {
            Style::None => "",
            Style::Bold => "\x1b[1m",
            Style::Red => "\x1b[31m",
            Style::Yellow => "\x1b[33m",
            Style::Cyan => "\x1b[36m",
            Style::Dim => "\x1b[2m",
            Style::Green => "\x1b[32m",
        }
    }

    fn for_row(c: RowClass) -> Style {
        match c {
            RowClass::Log => Style::Cyan,
            RowClass::Rst => Style::Red,
            RowClass::Stray | RowClass::Marked => Style::Yellow,
            RowClass::Duplicate => Style::Dim,
            RowClass::Plain => Style::None,
        }
    }
}

/// Writes whole lines: cut to the width first, colour after, so a cut never
/// lands inside an escape sequence and widths count only visible text.
struct Painter<'w> {
    out: &'w mut dyn Write,
    color: bool,
    width: Option<usize>,
}

impl Painter<'_> {
    /// `text` must already be clean (see [`visible`]).
    fn line(&mut self, style: Style, text: &str) -> io::Result<()> {
        let text = match self.width {
            Some(w) => truncate(text, w),
            None => text.into(),
        };
        if self.color && style != Style::None {
            writeln!(self.out, "{}{}\x1b[0m", style.sgr(), text)
        } else {
            writeln!(self.out, "{text}")
        }
    }

    fn blank(&mut self) -> io::Result<()> {
        writeln!(self.out)
    }
}

/// The whole report: header, every incident, the summary and the input stats.
pub fn render_terminal(
    report: &Report,
    opts: &TerminalOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut p = Painter {
        out,
        color: opts.color,
        width: opts.width,
    };
    p.line(
        Style::Bold,
        &format!(
            "wiretrail report  window {} .. {}  ({} incidents, generated {}, schema {})",
            describe::abs_time(report.since),
            describe::abs_time(report.until),
            report.incidents.len(),
            describe::abs_time(report.generated_at),
            visible(&report.schema_version),
        ),
    )?;
    for o in &report.clock_offsets {
        p.line(Style::None, &clock_line(o))?;
    }
    p.line(
        Style::Dim,
        "legend   → proxy to node, ← node to proxy; seq/ack relative to the connection's ISN (* = raw); times on the reference clock",
    )?;
    if report.incidents.is_empty() {
        p.blank()?;
        p.line(Style::Green, "no incidents in the window")?;
    }
    for (i, inc) in report.incidents.iter().enumerate() {
        p.blank()?;
        incident(&mut p, report, inc, i + 1, opts.max_rows_per_incident)?;
    }
    p.blank()?;
    summary(&mut p, &report.summary)?;
    events(&mut p, &report.events)?;
    inputs(&mut p, &report.inputs)
}

/// The summary across incidents and the input stats only (no colour): the
/// "day at a glance" view.
pub fn render_summary_terminal(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut p = Painter {
        out,
        color: false,
        width: None,
    };
    p.line(
        Style::None,
        &format!(
            "wiretrail summary  window {} .. {}",
            describe::abs_time(report.since),
            describe::abs_time(report.until)
        ),
    )?;
    summary(&mut p, &report.summary)?;
    events(&mut p, &report.events)?;
    inputs(&mut p, &report.inputs)
}

fn incident(
    p: &mut Painter<'_>,
    report: &Report,
    inc: &Incident,
    n: usize,
    max_rows: Option<usize>,
) -> io::Result<()> {
    let title = format!(
        "══ incident {n}/{}  {} ",
        report.incidents.len(),
        visible(&inc.id)
    );
    let pad = 100usize.saturating_sub(title.chars().count());
    p.line(Style::Bold, &format!("{title}{}", "═".repeat(pad)))?;
    p.line(
        Style::None,
        &format!(
            "time     {} .. {}",
            describe::abs_time(inc.start),
            describe::abs_time(inc.end)
        ),
    )?;
    let mut who = format!(
        "proxy    {}  backend {}",
        visible(&inc.proxy),
        visible(&inc.backend)
    );
    if let Some(c) = &inc.community_id {
        who.push_str(&format!("  community_id {}", visible(c)));
    }
    p.line(Style::None, &who)?;
    let v = &inc.verdict;
    let vstyle = if v.cause == wiretrail_correlate::Cause::Unknown {
        Style::Yellow
    } else {
        Style::Red
    };
    p.line(
        vstyle,
        &format!(
            "verdict  {} ({} confidence): {}",
            v.cause.as_str(),
            describe::pct(v.confidence),
            visible(&v.summary)
        ),
    )?;
    if let Some(r) = &v.remedy {
        p.line(Style::None, &format!("remedy   {}", visible(r)))?;
    }

    for (i, e) in inc.errors.iter().enumerate() {
        error_lines(p, i + 1, e)?;
    }

    if !inc.findings.is_empty() {
        p.line(Style::None, "findings")?;
    }
    for f in &inc.findings {
        let kind = describe::finding_word(f.kind);
        let nodes: Vec<String> = f.nodes.iter().map(|n| visible(n).into_owned()).collect();
        p.line(
            Style::Yellow,
            &format!(
                "  {kind} {} [{}] {}",
                describe::pct(f.confidence),
                nodes.join(", "),
                visible(&f.summary)
            ),
        )?;
        for ev in &f.evidence {
            let mut s = format!(
                "      evidence {} {}#{} {}",
                visible(ev.origin.as_str()),
                visible(&ev.file),
                ev.frame,
                describe::abs_time(ev.time)
            );
            if let Some(note) = &ev.note {
                s.push_str(&format!("  {}", visible(note)));
            }
            p.line(Style::None, &s)?;
        }
    }

    for (i, node) in inc.nodes.iter().enumerate() {
        let label = if i == 0 { "nodes   " } else { "        " };
        p.line(Style::None, &format!("{label} {}", node_line(node)))?;
    }
    for o in describe::offsets_for(report, inc) {
        p.line(Style::None, &clock_line(o))?;
    }
    for (node, files) in describe::files_by_node(inc) {
        let files: Vec<String> = files.iter().map(|f| visible(f).into_owned()).collect();
        p.line(
            Style::Dim,
            &format!("files    {}: {}", visible(&node), files.join(", ")),
        )?;
    }
    timeline(p, inc, max_rows)
}

fn node_line(n: &IncidentNode) -> String {
    let role = describe::role_word(n.role);
    let saw = match (n.saw_connection, n.covered) {
        (true, _) => "saw the connection",
        (false, true) => "did not see it (its captures cover the window)",
        (false, false) => {
            "did not see it, but its captures do NOT cover the window (absence proves nothing)"
        }
    };
    format!("{:<12} {:<8} {saw}", visible(&n.name), role)
}

fn error_lines(p: &mut Painter<'_>, n: usize, e: &DiagnosedError) -> io::Result<()> {
    let r = &e.record;
    let ts = r.timestamp.to_rfc3339_opts(
        match r.time_precision {
            TimePrecision::Second => SecondsFormat::Secs,
            TimePrecision::Millisecond => SecondsFormat::Millis,
            TimePrecision::Microsecond => SecondsFormat::Micros,
            TimePrecision::Nanosecond => SecondsFormat::Nanos,
        },
        true,
    );
    let assumed = if r.time_zone_assumed {
        " (zone assumed)"
    } else {
        ""
    };
    let host = r
        .host
        .as_deref()
        .map(|h| format!("{} ", visible(h)))
        .unwrap_or_default();
    let label = if n == 1 { "log     " } else { "        " };
    p.line(
        Style::Cyan,
        &format!(
            "{label} [{n}] {ts}{assumed} {host}{} [{}]  ({})",
            visible(&r.message),
            r.class.as_str(),
            source_text(&r.source)
        ),
    )?;
    let d = &e.diagnosis;
    let owner = d
        .owner_node
        .as_deref()
        .map(visible)
        .unwrap_or("none".into());
    let strays: Vec<String> = d
        .stray_nodes
        .iter()
        .map(|s| visible(s).into_owned())
        .collect();
    let mut s = format!(
        "             diagnosis {} {}  owner {owner}",
        d.cause.as_str(),
        describe::pct(d.confidence)
    );
    if !strays.is_empty() {
        s.push_str(&format!("  stray {}", strays.join(", ")));
    }
    p.line(Style::None, &s)?;
    if !d.proofs.is_empty() {
        let proofs: Vec<String> = d
            .proofs
            .iter()
            .map(|pr| format!("{} {:+.2}", describe::proof_word(pr.proof), pr.weight))
            .collect();
        p.line(
            Style::Dim,
            &format!("             proofs {}", proofs.join(", ")),
        )?;
    }
    for c in &e.connection {
        p.line(
            Style::Dim,
            &format!(
                "             {:<12} conn_state {:<6} history {:<10} {} packets (+{} capture duplicates) {} .. {}{}",
                visible(&c.node),
                c.conn_state,
                visible(&c.history),
                c.packets,
                c.capture_duplicates,
                describe::abs_time(c.first),
                describe::abs_time(c.last),
                if c.handshake_seen { "" } else { "  no handshake" }
            ),
        )?;
    }
    Ok(())
}

/// One formatted timeline row, before colour.
struct Row {
    class: RowClass,
    cells: Cells,
}

enum Cells {
    Packet([String; 10]),
    Log { rel: String, text: String },
}

fn build_row(ev: &TimelineEvent, base: wiretrail_capture::Timestamp) -> Row {
    let rel = describe::rel_time(ev.t_ns, base);
    let class = describe::row_class(ev);
    let cells = match &ev.body {
        EventBody::Log { error, message } => Cells::Log {
            rel,
            text: format!("[{}] {}", error + 1, visible(message)),
        },
        EventBody::Packet(p) => Cells::Packet([
            rel,
            visible(ev.origin.as_str()).into_owned(),
            describe::arrow(p.dir).to_owned(),
            p.frame.to_string(),
            describe::flags_text(p.flags),
            describe::packet_seq(p),
            describe::packet_ack(p),
            p.len.to_string(),
            p.window.to_string(),
            describe::opt_text(p.tsval),
        ]),
    };
    Row { class, cells }
}

/// `clock    backend-02   -2.750005 s ±0.000017 s (shared_packets, ...)`
fn clock_line(o: &ClockOffset) -> String {
    format!(
        "clock    {:<12} {}",
        visible(&o.node),
        describe::offset_text(o)
    )
}

fn marks_of(ev: &TimelineEvent) -> String {
    match &ev.body {
        EventBody::Packet(PacketEvent { marks, .. }) => describe::marks_text(marks),
        EventBody::Log { .. } => String::new(),
    }
}

const HEADERS: [&str; 10] = [
    "time", "node", "dir", "frame", "flags", "seq", "ack", "len", "win", "tsval",
];
/// Right-aligned columns (numbers).
const RIGHT: [bool; 10] = [
    true, false, false, true, false, true, true, true, true, true,
];

fn timeline(p: &mut Painter<'_>, inc: &Incident, max_rows: Option<usize>) -> io::Result<()> {
    if inc.timeline.is_empty() {
        return p.line(
            Style::Yellow,
            "  (no events: the connection is not in the captures that were read)",
        );
    }
    let base = describe::base_time(inc);
    let prios: Vec<u8> = inc.timeline.iter().map(describe::priority).collect();
    let keep = describe::select_rows(&prios, max_rows);
    let rows: Vec<Option<(Row, String)>> = inc
        .timeline
        .iter()
        .zip(&keep)
        .map(|(ev, k)| k.then(|| (build_row(ev, base), marks_of(ev))))
        .collect();

    let mut w: [usize; 10] = HEADERS.map(|h| h.chars().count());
    for (r, _) in rows.iter().flatten() {
        match &r.cells {
            Cells::Packet(c) => {
                for (wi, ci) in w.iter_mut().zip(c) {
                    *wi = (*wi).max(ci.chars().count());
                }
            }
            Cells::Log { rel, .. } => w[0] = w[0].max(rel.chars().count()),
        }
    }
    let fmt_cells = |cells: &[String; 10]| -> String {
        let mut s = String::from("  ");
        for i in 0..10 {
            let cell = &cells[i];
            let pad = w[i].saturating_sub(cell.chars().count());
            if RIGHT[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        s
    };
    let header = fmt_cells(&HEADERS.map(str::to_owned)) + "marks";
    p.line(Style::Bold, &header)?;
    for item in plan(&inc.timeline, &keep) {
        match item {
            Planned::Elided(k) => {
                p.line(
                    Style::Dim,
                    &format!(
                        "  ⋯ {k} rows not shown (see --max-rows, the JSON or the HTML report) ⋯"
                    ),
                )?;
            }
            Planned::Row { idx, folded_dups } => {
                let Some((row, marks)) = &rows[idx] else {
                    continue;
                };
                let mut text = match &row.cells {
                    Cells::Packet(c) => {
                        let mut s = fmt_cells(c);
                        s.push_str(marks);
                        s
                    }
                    Cells::Log { rel, text } => {
                        // Right-align the time, put `log` in the node column,
                        // then let the line run across the packet columns.
                        let pad = w[0].saturating_sub(rel.chars().count());
                        let node_pad = w[1].saturating_sub(3);
                        format!(
                            "  {}{rel}  log{}  ┆ {text}",
                            " ".repeat(pad),
                            " ".repeat(node_pad)
                        )
                    }
                };
                if folded_dups > 0 {
                    let plural = if folded_dups == 1 { "" } else { "s" };
                    text.push_str(&format!(
                        " (+{folded_dups} capture duplicate{plural} not shown)"
                    ));
                }
                p.line(Style::for_row(row.class), text.trim_end())?;
            }
        }
    }
    Ok(())
}

/// What the timeline prints, in order, once the row cap has chosen.
#[derive(Debug, PartialEq, Eq)]
enum Planned {
    Row { idx: usize, folded_dups: usize },
    Elided(usize),
}

/// Turns keep-flags into printed items. A dropped stretch made only of
/// capture duplicates right after a shown row is folded into that row as a
/// count (it repeats it), instead of a separate "not shown" line.
fn plan(events: &[TimelineEvent], keep: &[bool]) -> Vec<Planned> {
    let is_dup = |i: usize| matches!(describe::row_class(&events[i]), RowClass::Duplicate);
    let mut out = Vec::new();
    let mut i = 0;
    while i < keep.len() {
        if keep[i] {
            out.push(Planned::Row {
                idx: i,
                folded_dups: 0,
            });
            i += 1;
            continue;
        }
        let start = i;
        while i < keep.len() && !keep[i] {
            i += 1;
        }
        let all_dups = (start..i).all(is_dup);
        match out.last_mut() {
            Some(Planned::Row { folded_dups, .. }) if all_dups => *folded_dups += i - start,
            _ => out.push(Planned::Elided(i - start)),
        }
    }
    out
}

fn summary(p: &mut Painter<'_>, s: &Summary) -> io::Result<()> {
    p.line(
        Style::Bold,
        &format!("── summary: {} incidents, {} errors", s.incidents, s.errors),
    )?;
    p.line(
        Style::None,
        &format!("by cause     {}", counts(&s.by_cause)),
    )?;
    p.line(
        Style::None,
        &format!("stray nodes  {}", counts(&s.stray_nodes)),
    )?;
    p.line(
        Style::None,
        &format!("owner nodes  {}", counts(&s.owner_nodes)),
    )?;
    let max = s.by_hour.values().copied().max().unwrap_or(0).max(1);
    for (i, (hour, n)) in s.by_hour.iter().enumerate() {
        let label = if i == 0 { "by hour " } else { "        " };
        // Bars scale to 40 cells; a non-zero count always gets one cell.
        let cells = ((*n as f64 / max as f64) * 40.0).ceil() as usize;
        p.line(
            Style::None,
            &format!("{label}     {}  {} {n}", visible(hour), "█".repeat(cells)),
        )?;
    }
    if s.by_hour.is_empty() {
        p.line(Style::None, "by hour      -")?;
    }
    for (i, pat) in s.patterns.iter().enumerate() {
        let label = if i == 0 { "patterns" } else { "        " };
        p.line(Style::Yellow, &format!("{label}     - {}", visible(pat)))?;
    }
    Ok(())
}

/// `flow_split 9, idle_race 1`, largest first, then by name.
fn counts<K: std::fmt::Display + Ord>(m: &std::collections::BTreeMap<K, u64>) -> String {
    if m.is_empty() {
        return "-".to_owned();
    }
    let mut v: Vec<(&K, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{} {n}", visible(&k.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Findings across errors: many connections to one node failing at once,
/// many flows moving at one instant.
fn events(p: &mut Painter<'_>, events: &[wiretrail_correlate::model::Finding]) -> io::Result<()> {
    for (i, f) in events.iter().enumerate() {
        let label = if i == 0 { "events" } else { "      " };
        p.line(
            Style::Yellow,
            &format!(
                "{label}       {} {}: {}",
                describe::finding_word(f.kind),
                describe::pct(f.confidence),
                visible(&f.summary)
            ),
        )?;
    }
    Ok(())
}

fn inputs(p: &mut Painter<'_>, s: &InputStats) -> io::Result<()> {
    p.line(
        Style::Bold,
        &format!(
            "── inputs: {} log lines, {} proxy errors, {} unparsed lines; {} capture files ({}), {} packets matched",
            s.log_lines,
            s.proxy_errors,
            s.unparsed_lines,
            s.capture_files_read,
            human_bytes(s.capture_bytes_read),
            s.packets_matched
        ),
    )?;
    if !s.problems.is_empty() {
        p.line(Style::Yellow, &format!("problems ({}):", s.problems.len()))?;
        for pr in &s.problems {
            p.line(Style::Yellow, &format!("  - {}", visible(&pr.to_string())))?;
        }
    }
    Ok(())
}
