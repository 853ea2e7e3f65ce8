//! The ladder (sequence) diagram of one incident, as inline SVG.
//!
//! Lanes left to right: client, proxy, then every node. Time runs down; one
//! row per drawn event (ordinal, so microsecond bursts stay readable), with a
//! labelled break where the clock jumps. A packet a backend captured is an
//! arrow between the proxy lane and that node's lane; a packet the proxy's own
//! capture holds is a short stub at the proxy lane (which backend received it
//! is unknown from there). A log line is a diamond on the proxy lane and a
//! dashed `502` arrow to the client. RSTs are red with a cross at the head,
//! stray segments orange and dashed over a highlighted row, retransmissions
//! carry an `R` badge, and a capture duplicate is folded into the arrow of the
//! packet it copies as a `×2` badge. A details column on the right repeats
//! seq/ack/len/marks so the arrows can stay short.

use std::fmt::Write as _;

use wiretrail_capture::{Direction, Duration, Timestamp};
use wiretrail_correlate::model::{EventBody, Incident, Mark, NodeRole, PacketEvent, TimelineEvent};

use crate::describe::{self, RowClass};
use crate::text::{self, truncate};

/// Upper bound on arrows per ladder; the table below it stays complete.
pub const MAX_ARROWS: usize = 300;

const ROW_H: f64 = 26.0;
const BREAK_H: f64 = 22.0;
const TOP: f64 = 70.0;
const TIME_W: f64 = 96.0;
const CLIENT_X: f64 = TIME_W + 50.0;
const PROXY_X: f64 = CLIENT_X + 170.0;
const NODE_GAP: f64 = 180.0;
/// A jump between consecutive drawn events larger than this gets a break row.
const GAP: Duration = Duration::from_millis(100);

/// One drawn row: an event, possibly with capture duplicates folded in.
struct Item<'a> {
    ev: &'a TimelineEvent,
    copies: u32,
}

enum Line<'a> {
    Event(Item<'a>),
    /// Clock jump between two drawn events, in ns.
    Gap(Duration),
    /// Events not drawn because of the arrow cap.
    Elided(usize),
}

/// True when `b` is a capture duplicate of `a`: same node, direction and TCP
/// header fields.
fn copies(a: &TimelineEvent, b: &TimelineEvent) -> bool {
    match (&a.body, &b.body) {
        (EventBody::Packet(p), EventBody::Packet(q)) => {
            q.marks.contains(&Mark::CaptureDuplicate)
                && a.origin == b.origin
                && (p.dir, p.flags, p.seq, p.ack, p.len) == (q.dir, q.flags, q.seq, q.ack, q.len)
        }
        _ => false,
    }
}

/// Fold duplicates into the packet they copy (looking back a few events, as
/// copies are recorded within microseconds but may interleave with another
/// node's packets), then apply the arrow cap.
fn layout(inc: &Incident, cap: usize) -> (Vec<Line<'_>>, usize) {
    let mut items: Vec<Item<'_>> = Vec::with_capacity(inc.timeline.len());
    for ev in &inc.timeline {
        let back = items.len().saturating_sub(4);
        if let Some(orig) = items[back..].iter_mut().rev().find(|it| copies(it.ev, ev)) {
            orig.copies += 1;
            continue;
        }
        items.push(Item { ev, copies: 1 });
    }
    let prios: Vec<u8> = items.iter().map(|it| describe::priority(it.ev)).collect();
    let keep = describe::select_rows(&prios, Some(cap));
    let total = items.len();
    let mut lines = Vec::new();
    let mut elided = 0usize;
    let mut last_t: Option<Timestamp> = None;
    for (it, k) in items.into_iter().zip(keep) {
        if !k {
            elided += 1;
            continue;
        }
        if elided > 0 {
            lines.push(Line::Elided(elided));
            elided = 0;
        } else if let Some(lt) = last_t {
            let gap = it.ev.t_ns.saturating_duration_since(lt);
            if gap > GAP {
                lines.push(Line::Gap(gap));
            }
        }
        last_t = Some(it.ev.t_ns);
        lines.push(Line::Event(it));
    }
    if elided > 0 {
        lines.push(Line::Elided(elided));
    }
    (lines, total)
}

struct Lane {
    name: String,
    x: f64,
    sub: String,
    class: &'static str,
}

fn lanes(inc: &Incident) -> (Vec<Lane>, Vec<String>) {
    let owners: Vec<&str> = inc
        .errors
        .iter()
        .filter_map(|e| e.diagnosis.owner_node.as_deref())
        .collect();
    let strays: Vec<&str> = inc
        .errors
        .iter()
        .flat_map(|e| e.diagnosis.stray_nodes.iter().map(String::as_str))
        .collect();
    let proxy_nodes: Vec<String> = inc
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::Proxy)
        .map(|n| n.name.clone())
        .collect();
    let mut out = vec![
        Lane {
            name: "client".into(),
            x: CLIENT_X,
            sub: "(not captured)".into(),
            class: "lane-client",
        },
        Lane {
            name: "proxy".into(),
            x: PROXY_X,
            sub: truncate(&inc.proxy, 26).into_owned(),
            class: "lane-proxy",
        },
    ];
    let mut i = 0;
    for name in describe::node_names(inc) {
        if proxy_nodes.contains(&name) {
            continue;
        }
        let node = inc.nodes.iter().find(|n| n.name == name);
        let (sub, class) = if strays.contains(&name.as_str()) {
            ("stray: no handshake", "lane-stray")
        } else if owners.contains(&name.as_str()) {
            ("owner: saw handshake", "lane-owner")
        } else {
            match node {
                Some(n) if !n.covered => ("not covered", "lane-quiet"),
                Some(n) if !n.saw_connection => ("did not see it", "lane-quiet"),
                _ => ("saw packets", "lane-node"),
            }
        };
        i += 1;
        out.push(Lane {
            name,
            x: PROXY_X + NODE_GAP * i as f64,
            sub: sub.into(),
            class,
        });
    }
    (out, proxy_nodes)
}

/// The SVG for one incident; `n` makes marker ids unique in the document.
pub fn svg(inc: &Incident, n: usize, cap: usize) -> String {
    let (lines, total) = layout(inc, cap);
    let (lanes, proxy_nodes) = lanes(inc);
    let last_x = lanes.last().map(|l| l.x).unwrap_or(PROXY_X);
    let detail_x = last_x + 60.0;
    let width = detail_x + 540.0;
    let height = TOP
        + lines
            .iter()
            .map(|l| match l {
                Line::Event(_) => ROW_H,
                _ => BREAK_H,
            })
            .sum::<f64>()
        + 30.0;
    let base = describe::base_time(inc);
    let lane_x = |name: &str| lanes.iter().find(|l| l.name == name).map(|l| l.x);

    let mut s = String::new();
    let drawn = lines.iter().filter(|l| matches!(l, Line::Event(_))).count();
    let _ = write!(
        s,
        r#"<svg class="ladder" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="ladder diagram, {drawn} of {total} events">"#
    );
    // Markers: one per colour, ids scoped by incident number.
    s.push_str("<defs>");
    for (cls, colour) in [
        ("plain", "#334"),
        ("rst", "#c62828"),
        ("stray", "#e67e00"),
        ("log", "#00838f"),
        ("marked", "#6a1b9a"),
        ("dup", "#999"),
    ] {
        let _ = write!(
            s,
            r#"<marker id="ah{n}-{cls}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
        );
    }
    s.push_str("</defs>");

    // Lane heads and lines.
    for l in &lanes {
        let _ = write!(
            s,
            r#"<g class="lane {cls}"><rect x="{x0:.1}" y="8" width="150" height="40" rx="5"/><text class="lane-name" x="{x:.1}" y="25">{name}</text><text class="lane-sub" x="{x:.1}" y="41">{sub}</text><line x1="{x:.1}" y1="48" x2="{x:.1}" y2="{y2:.1}"/></g>"#,
            cls = l.class,
            x0 = l.x - 75.0,
            x = l.x,
            name = text::html(&truncate(&l.name, 20)),
            sub = text::html(&l.sub),
            y2 = height - 10.0,
        );
    }
    let _ = write!(
        s,
        r#"<text class="col-head" x="8" y="62">time (s)</text><text class="col-head" x="{detail_x:.1}" y="62">node · seq / ack · len · win · marks</text>"#
    );

    let rows = Rows {
        n,
        base,
        detail_x,
        width,
        lane_x: &lane_x,
        proxy_nodes: &proxy_nodes,
    };
    let mut y = TOP;
    for line in &lines {
        match line {
            Line::Gap(ns) => {
                let _ = write!(
                    s,
                    r#"<g class="gap"><line x1="8" y1="{yl:.1}" x2="{x2:.1}" y2="{yl:.1}"/><text x="{tx:.1}" y="{yt:.1}">⋯ {secs:.3} s later ⋯</text></g>"#,
                    yl = y + BREAK_H / 2.0,
                    x2 = width - 8.0,
                    tx = TIME_W + 4.0,
                    yt = y + BREAK_H / 2.0 - 3.0,
                    secs = ns.as_secs_f64(),
                );
                y += BREAK_H;
            }
            Line::Elided(k) => {
                let _ = write!(
                    s,
                    r#"<g class="gap elided"><line x1="8" y1="{yl:.1}" x2="{x2:.1}" y2="{yl:.1}"/><text x="{tx:.1}" y="{yt:.1}">⋯ {k} events not drawn (see the table) ⋯</text></g>"#,
                    yl = y + BREAK_H / 2.0,
                    x2 = width - 8.0,
                    tx = TIME_W + 4.0,
                    yt = y + BREAK_H / 2.0 - 3.0,
                );
                y += BREAK_H;
            }
            Line::Event(it) => {
                event(&mut s, &rows, it, y);
                y += ROW_H;
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// What every event row of one ladder shares.
struct Rows<'a> {
    /// The incident's ordinal: marker ids are scoped by it.
    n: usize,
    /// Times are shown relative to it.
    base: Timestamp,
    detail_x: f64,
    width: f64,
    lane_x: &'a dyn Fn(&str) -> Option<f64>,
    proxy_nodes: &'a [String],
}

fn event(s: &mut String, rows: &Rows<'_>, it: &Item<'_>, y: f64) {
    let ev = it.ev;
    let class = describe::row_class(ev);
    let cls = class.css();
    let mid = y + ROW_H / 2.0;
    let _ = write!(s, r#"<g class="ev {cls}">"#);
    if matches!(class, RowClass::Stray | RowClass::Rst) {
        let _ = write!(
            s,
            r#"<rect class="band" x="4" y="{y:.1}" width="{w:.1}" height="{ROW_H}"/>"#,
            w = rows.width - 8.0
        );
    }
    let _ = write!(
        s,
        r#"<text class="t" x="{x:.1}" y="{ty:.1}">{t}</text>"#,
        x = TIME_W - 6.0,
        ty = mid + 4.0,
        t = describe::rel_time(ev.t_ns, rows.base)
    );
    match &ev.body {
        EventBody::Log { error, message } => log_event(s, rows, mid, *error, message),
        EventBody::Packet(p) => packet_event(s, rows, it, p, class, mid),
    }
    s.push_str("</g>");
}

/// A log line: a diamond on the proxy's lane, an arrow to the client.
fn log_event(s: &mut String, rows: &Rows<'_>, mid: f64, error: usize, message: &str) {
    let tip = format!("log line [{}] {}", error + 1, message);
    let _ = write!(
        s,
        r#"<title>{tip}</title><path class="diamond" d="M{x0:.1},{y0:.1} l7,7 l-7,7 l-7,-7 z"/><line class="arrow" x1="{x1:.1}" y1="{mid:.1}" x2="{x2:.1}" y2="{y2:.1}" marker-end="url(#ah{n}-log)"/><text class="lbl" x="{lx:.1}" y="{ly:.1}">502 · [{e}]</text><text class="detail" x="{detail_x:.1}" y="{dy:.1}">log [{e}] {msg}</text>"#,
        tip = text::html(&tip),
        n = rows.n,
        x0 = PROXY_X,
        y0 = mid - 7.0,
        x1 = PROXY_X - 9.0,
        x2 = CLIENT_X + 2.0,
        y2 = mid + 6.0,
        lx = (PROXY_X + CLIENT_X) / 2.0,
        ly = mid - 3.0,
        e = error + 1,
        msg = text::html(&truncate(message, 80)),
        detail_x = rows.detail_x,
        dy = mid + 4.0,
    );
}

/// Where a packet's arrow starts and ends, and whether it is a stub: a
/// packet captured at the proxy has no known far end on this drawing.
fn arrow_ends(rows: &Rows<'_>, node: &str, dir: Direction) -> (f64, f64, bool) {
    match (rows.lane_x)(node) {
        Some(nx) if !rows.proxy_nodes.iter().any(|p| p == node) => match dir {
            Direction::ToBackend => (PROXY_X, nx, false),
            Direction::ToProxy => (nx, PROXY_X, false),
        },
        _ => match dir {
            Direction::ToBackend => (PROXY_X, PROXY_X + 80.0, true),
            Direction::ToProxy => (PROXY_X + 80.0, PROXY_X, true),
        },
    }
}

/// A packet: an arrow between lanes with a short label, a cross for a RST,
/// badges, and the detail column.
fn packet_event(
    s: &mut String,
    rows: &Rows<'_>,
    it: &Item<'_>,
    p: &PacketEvent,
    class: RowClass,
    mid: f64,
) {
    let ev = it.ev;
    let (x_from, x_to, stub) = arrow_ends(rows, ev.origin.as_str(), p.dir);
    let marker = match class {
        RowClass::Log | RowClass::Plain => "plain",
        other => other.css(),
    };
    let dash = if p
        .marks
        .iter()
        .any(|m| matches!(m, Mark::StraySegment | Mark::StrayRst))
        || stub
    {
        r#" stroke-dasharray="6 3""#
    } else {
        ""
    };
    let sign = if x_to > x_from { 1.0 } else { -1.0 };
    let (y1, y2) = (mid + 1.0, mid + 7.0);
    let seq_s = describe::packet_seq(p);
    let ack_s = describe::packet_ack(p);
    let tip = format!(
        "{node} {file}#{frame} {flags} seq={seq_s} ack={ack_s} len={len} win={window} {marks}",
        node = ev.origin,
        file = p.file,
        frame = p.frame,
        len = p.len,
        window = p.window,
        flags = describe::flags_text(p.flags),
        marks = describe::marks_text(&p.marks)
    );
    let _ = write!(
        s,
        r#"<title>{tip}</title><line class="arrow" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"{dash} marker-end="url(#ah{n}-{marker})"/>"#,
        tip = text::html(&tip),
        n = rows.n,
        x1 = x_from + 2.0 * sign,
        x2 = x_to - 3.0 * sign,
    );
    // Short label above the arrow, near its start so long arrows to far
    // lanes stay attributable.
    let mut lbl = describe::flags_text(p.flags);
    lbl = lbl
        .trim_matches(|c| c == '[' || c == ']')
        .replace(", ", ",");
    if p.len > 0 {
        let _ = write!(lbl, " {}", p.len);
    }
    let lx = (x_from.min(x_to) + 105.0).min((x_from + x_to) / 2.0);
    let _ = write!(
        s,
        r#"<text class="lbl" x="{lx:.1}" y="{ly:.1}">{lbl}</text>"#,
        ly = mid - 3.0,
    );
    if p.flags.rst() {
        // A cross at the receiving end.
        let cx = x_to - 12.0 * sign;
        let _ = write!(
            s,
            r#"<path class="cross" d="M{a:.1},{b:.1} l8,8 M{a:.1},{c:.1} l8,-8"/>"#,
            a = cx - 4.0,
            b = y2 - 8.0,
            c = y2,
        );
    }
    badges(s, it, p, x_to + 16.0 * sign, sign, y2);
    let mut detail = format!(
        "{} #{} · {seq_s} / {ack_s} · {} · {}",
        truncate(ev.origin.as_str(), 14),
        p.frame,
        p.len,
        p.window
    );
    if !p.marks.is_empty() {
        let _ = write!(detail, " · {}", describe::marks_text(&p.marks));
    }
    if it.copies > 1 {
        let _ = write!(detail, " (captured ×{})", it.copies);
    }
    let _ = write!(
        s,
        r#"<text class="detail" x="{detail_x:.1}" y="{dy:.1}">{d}</text>"#,
        detail_x = rows.detail_x,
        dy = mid + 4.0,
        d = text::html(&detail),
    );
}

/// Badges sit just past the arrowhead (from `bx`), beyond the lane, where
/// nothing else is drawn on this row: the capture-copy count, then `R` for
/// a retransmission.
fn badges(s: &mut String, it: &Item<'_>, p: &PacketEvent, mut bx: f64, sign: f64, y2: f64) {
    if it.copies > 1 {
        let _ = write!(
            s,
            r#"<g class="badge dupb"><rect x="{rx:.1}" y="{ry:.1}" width="22" height="13" rx="3"/><text x="{bx:.1}" y="{ty:.1}">×{c}</text></g>"#,
            rx = bx - 11.0,
            ry = y2 - 7.0,
            ty = y2 + 3.0,
            c = it.copies
        );
        bx += 28.0 * sign;
    }
    if p.marks.contains(&Mark::Retransmission) {
        let _ = write!(
            s,
            r#"<g class="badge rtx"><circle cx="{bx:.1}" cy="{cy:.1}" r="7"/><text x="{bx:.1}" y="{ty:.1}">R</text></g>"#,
            cy = y2,
            ty = y2 + 3.5,
        );
    }
}
