//! The words and numbers both renderers share: flag lists, mark names,
//! arrows, time formats, which rows matter most when a timeline is too long
//! to show in full, and which clock offsets an incident used.

use chrono::{DateTime, SecondsFormat, Utc};
use wiretrail_capture::{Direction, TcpFlags, Timestamp};
use wiretrail_logs::record::Source;

use crate::text;
use wiretrail_correlate::model::{
    ClockOffset, EventBody, FindingKind, Incident, Mark, NodeRole, OffsetMethod, PacketEvent,
    Report, TimelineEvent,
};

/// tshark's flag list: `[SYN, ACK]`, `[PSH, ACK]`, `[RST]`, in its bit order.
pub fn flags_text(f: TcpFlags) -> String {
    const NAMES: [(u16, &str); 9] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
        (0x100, "NS"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| f.has(*b))
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "[<none>]".to_owned()
    } else {
        format!("[{}]", names.join(", "))
    }
}

/// The schema word of a mark (the same as in the JSON), so a reader can grep
/// the terminal output, the HTML and the JSON for one spelling.
pub fn mark_word(m: Mark) -> &'static str {
    match m {
        Mark::Retransmission => "retransmission",
        Mark::DupAck => "dup_ack",
        Mark::ZeroWindow => "zero_window",
        Mark::AckedUnseen => "acked_unseen",
        Mark::OutOfOrder => "out_of_order",
        Mark::CaptureDuplicate => "capture_duplicate",
        Mark::GapFilledElsewhere => "gap_filled_elsewhere",
        Mark::PathAnomaly => "path_anomaly",
        Mark::StraySegment => "stray_segment",
        Mark::StrayRst => "stray_rst",
    }
}

pub fn marks_text(marks: &[Mark]) -> String {
    marks
        .iter()
        .map(|m| mark_word(*m))
        .collect::<Vec<_>>()
        .join(",")
}

/// `→` proxy to node, `←` node to proxy.
pub fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::ToBackend => "→",
        Direction::ToProxy => "←",
    }
}

/// The schema word of a finding kind.
pub fn finding_word(k: FindingKind) -> &'static str {
    match k {
        FindingKind::FlowSplit => "flow_split",
        FindingKind::StrayRst => "stray_rst",
        FindingKind::IdleRace => "idle_race",
        FindingKind::BackendReset => "backend_reset",
        FindingKind::Refused => "refused",
        FindingKind::ConnectTimeout => "connect_timeout",
        FindingKind::ResponseTimeout => "response_timeout",
        FindingKind::ClientCanceled => "client_canceled",
        FindingKind::MiddleboxReset => "middlebox_reset",
        FindingKind::BackendStateLost => "backend_state_lost",
        FindingKind::PmtuBlackhole => "pmtu_blackhole",
        FindingKind::AcceptQueueOverflow => "accept_queue_overflow",
        FindingKind::MaxRequestsClose => "max_requests_close",
        FindingKind::BackendMassFailure => "backend_mass_failure",
        FindingKind::FlowRehash => "flow_rehash",
        FindingKind::CaptureGap => "capture_gap",
        FindingKind::CaptureDuplicate => "capture_duplicate",
        FindingKind::GapFilledElsewhere => "gap_filled_elsewhere",
        FindingKind::PathAnomaly => "path_anomaly",
        FindingKind::RstProvenance => "rst_provenance",
        FindingKind::ClockOffset => "clock_offset",
    }
}

/// The schema word of a proof.
pub fn proof_word(k: wiretrail_correlate::model::ProofKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub fn role_word(r: NodeRole) -> &'static str {
    match r {
        NodeRole::Proxy => "proxy",
        NodeRole::Backend => "backend",
        NodeRole::Switch => "switch",
        NodeRole::Other => "other",
    }
}

pub fn method_word(m: OffsetMethod) -> &'static str {
    match m {
        OffsetMethod::SharedPackets => "shared_packets",
        OffsetMethod::Tsval => "tsval",
        OffsetMethod::Pinned => "pinned",
        OffsetMethod::Reference => "reference",
        OffsetMethod::Unplaced => "unplaced",
    }
}

/// `±0.000018 s`, or `unplaced` when the node's clock could not be placed.
pub fn uncertainty_text(o: &ClockOffset) -> String {
    o.uncertainty_s
        .map_or_else(|| "unplaced".to_owned(), |u| format!("±{u:.6} s"))
}

/// Seconds relative to a base, sign always shown, microsecond digits:
/// `+0.904543`, `-1.000000`.
pub fn rel_time(t: Timestamp, base: Timestamp) -> String {
    let sign = if t < base { '-' } else { '+' };
    let a = t.abs_diff(base).as_nanos();
    format!(
        "{sign}{}.{:06}",
        a / 1_000_000_000,
        (a % 1_000_000_000) / 1_000
    )
}

/// RFC 3339, UTC, microseconds: `2023-05-05T17:39:14.904543Z`.
pub fn abs_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn ns_time(t: Timestamp) -> String {
    abs_time(t.to_utc())
}

/// Seconds with sign and enough digits for microsecond offsets.
pub fn offset_text(o: &ClockOffset) -> String {
    format!(
        "{:+.6} s {} ({}, {} samples)",
        o.offset_s,
        uncertainty_text(o),
        method_word(o.method),
        o.samples
    )
}

/// Relative number when the correlator knew the ISN, raw otherwise.
pub fn seq_text(rel: Option<u32>, raw: u32) -> String {
    match rel {
        Some(r) => r.to_string(),
        None => format!("{raw}*"),
    }
}

/// A packet's sequence number as every view shows it.
pub fn packet_seq(p: &PacketEvent) -> String {
    seq_text(p.rel_seq, p.seq)
}

/// A packet's acknowledgement as every view shows it: `-` without ACK.
pub fn packet_ack(p: &PacketEvent) -> String {
    if p.flags.ack() {
        seq_text(p.rel_ack, p.ack)
    } else {
        "-".to_owned()
    }
}

/// An optional number, or `-`.
pub fn opt_text(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| x.to_string())
}

/// How an event should stand out, shared by the terminal colours and the
/// HTML classes so both tell the same story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowClass {
    Log,
    Rst,
    Stray,
    /// A second copy of a packet the same node already recorded.
    Duplicate,
    /// Any other tshark-style mark (retransmission, dup ACK, ...).
    Marked,
    Plain,
}

impl RowClass {
    pub fn css(self) -> &'static str {
        match self {
            RowClass::Log => "log",
            RowClass::Rst => "rst",
            RowClass::Stray => "stray",
            RowClass::Duplicate => "dup",
            RowClass::Marked => "marked",
            RowClass::Plain => "plain",
        }
    }
}

pub fn row_class(ev: &TimelineEvent) -> RowClass {
    match &ev.body {
        EventBody::Log { .. } => RowClass::Log,
        EventBody::Packet(PacketEvent { flags, marks, .. }) => {
            if marks.contains(&Mark::CaptureDuplicate) {
                RowClass::Duplicate
            } else if flags.rst() || marks.contains(&Mark::StrayRst) {
                RowClass::Rst
            } else if marks.contains(&Mark::StraySegment) {
                RowClass::Stray
            } else if !marks.is_empty() {
                RowClass::Marked
            } else {
                RowClass::Plain
            }
        }
    }
}

/// Lower is more important. Logs, RSTs and stray segments first; then the
/// connection's edges (SYN, FIN) and other marks; then ordinary segments;
/// capture duplicates last (they repeat a row already shown).
pub fn priority(ev: &TimelineEvent) -> u8 {
    match &ev.body {
        EventBody::Log { .. } => 0,
        EventBody::Packet(PacketEvent { flags, marks, .. }) => {
            if marks.contains(&Mark::CaptureDuplicate) {
                3
            } else if flags.rst()
                || marks
                    .iter()
                    .any(|m| matches!(m, Mark::StrayRst | Mark::StraySegment))
            {
                0
            } else if flags.syn() || flags.fin() || !marks.is_empty() {
                1
            } else {
                2
            }
        }
    }
}

/// Which of `prios.len()` rows to keep under a budget: by priority tier, and
/// inside the lowest tier that still fits partly, the rows nearest to an
/// already kept row (context around what matters), earliest first on ties.
/// Returns one flag per row; all true when the budget is not exceeded.
pub fn select_rows(prios: &[u8], budget: Option<usize>) -> Vec<bool> {
    let n = prios.len();
    let budget = match budget {
        Some(b) if b < n => b,
        _ => return vec![true; n],
    };
    let mut keep = vec![false; n];
    let mut left = budget;
    let mut tiers: Vec<u8> = prios.to_vec();
    tiers.sort_unstable();
    tiers.dedup();
    for tier in tiers {
        if left == 0 {
            break;
        }
        let members: Vec<usize> = (0..n).filter(|&i| prios[i] == tier).collect();
        if members.len() <= left {
            for &i in &members {
                keep[i] = true;
            }
            left -= members.len();
            continue;
        }
        // Partial tier: rank by distance to the nearest kept row.
        let dist = distance_to_kept(&keep);
        let mut ranked = members;
        ranked.sort_by_key(|&i| (dist[i], i));
        for &i in ranked.iter().take(left) {
            keep[i] = true;
        }
        left = 0;
    }
    keep
}

/// For each index, the distance in rows to the nearest `true`; `usize::MAX`
/// when none is kept.
fn distance_to_kept(keep: &[bool]) -> Vec<usize> {
    let n = keep.len();
    let mut d = vec![usize::MAX; n];
    let mut last: Option<usize> = None;
    for i in 0..n {
        if keep[i] {
            last = Some(i);
        }
        if let Some(l) = last {
            d[i] = i - l;
        }
    }
    last = None;
    for i in (0..n).rev() {
        if keep[i] {
            last = Some(i);
        }
        if let Some(l) = last {
            d[i] = d[i].min(l - i);
        }
    }
    d
}

/// The clock offsets that apply to the nodes of one incident, in the
/// incident's node order (then any other timeline node).
pub fn offsets_for<'r>(report: &'r Report, inc: &Incident) -> Vec<&'r ClockOffset> {
    let names = node_names(inc);
    names
        .iter()
        .filter_map(|n| report.clock_offsets.iter().find(|o| &o.node == n))
        .collect()
}

/// Nodes of an incident: the declared ones first, then any node that only
/// appears in the timeline (never `"log"`).
pub fn node_names(inc: &Incident) -> Vec<String> {
    let mut names: Vec<String> = inc.nodes.iter().map(|n| n.name.clone()).collect();
    for ev in &inc.timeline {
        if matches!(ev.body, EventBody::Packet(_))
            && !names.iter().any(|n| n.as_str() == ev.origin.as_str())
        {
            names.push(ev.origin.to_string());
        }
    }
    names
}

/// Distinct capture files per node in the timeline, in first-seen order.
pub fn files_by_node(inc: &Incident) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for ev in &inc.timeline {
        if let EventBody::Packet(PacketEvent { file, .. }) = &ev.body {
            let pos = match out
                .iter()
                .position(|(n, _)| n.as_str() == ev.origin.as_str())
            {
                Some(p) => p,
                None => {
                    out.push((ev.origin.to_string(), Vec::new()));
                    out.len() - 1
                }
            };
            if !out[pos].1.contains(file) {
                out[pos].1.push(file.clone());
            }
        }
    }
    out
}

/// The earliest event time of an incident, the base of relative times.
pub fn base_time(inc: &Incident) -> Timestamp {
    inc.timeline
        .iter()
        .map(|e| e.t_ns)
        .min()
        .unwrap_or_else(|| Timestamp::from_utc(inc.start).unwrap_or(Timestamp::EPOCH))
}

/// `0.92` as `92%`.
pub fn pct(c: f64) -> String {
    if c.is_finite() {
        format!("{:.0}%", (c * 100.0).clamp(0.0, 100.0))
    } else {
        "?%".to_owned()
    }
}

/// Where a log line came from: `file:line`, `es:index/id`, `stdin:line`
/// (made visible: file names and ids come from outside).
pub fn source_text(s: &Source) -> String {
    match s {
        Source::File { file, line } => format!("{}:{line}", text::visible(file)),
        Source::Elasticsearch { index, id, .. } => {
            format!("es:{}/{}", text::visible(index), text::visible(id))
        }
        Source::Stdin { line } => format!("stdin:{line}"),
    }
}

/// A byte count for people: `512 B`, `217.4 KiB`, `1.2 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_tshark_order() {
        assert_eq!(
            flags_text(TcpFlags(TcpFlags::PSH | TcpFlags::ACK)),
            "[PSH, ACK]"
        );
        assert_eq!(
            flags_text(TcpFlags(TcpFlags::SYN | TcpFlags::ACK)),
            "[SYN, ACK]"
        );
        assert_eq!(
            flags_text(TcpFlags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK)),
            "[FIN, PSH, ACK]"
        );
        assert_eq!(flags_text(TcpFlags(TcpFlags::RST)), "[RST]");
        assert_eq!(flags_text(TcpFlags(0)), "[<none>]");
    }

    #[test]
    fn words_match_the_json_schema() {
        use wiretrail_correlate::model::FindingKind as K;
        for k in [
            K::FlowSplit,
            K::StrayRst,
            K::IdleRace,
            K::BackendReset,
            K::Refused,
            K::ConnectTimeout,
            K::ResponseTimeout,
            K::ClientCanceled,
            K::CaptureGap,
            K::CaptureDuplicate,
            K::GapFilledElsewhere,
            K::PathAnomaly,
            K::RstProvenance,
            K::ClockOffset,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), finding_word(k));
        }
        for m in [
            Mark::Retransmission,
            Mark::DupAck,
            Mark::ZeroWindow,
            Mark::AckedUnseen,
            Mark::OutOfOrder,
            Mark::CaptureDuplicate,
            Mark::GapFilledElsewhere,
            Mark::PathAnomaly,
            Mark::StraySegment,
            Mark::StrayRst,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), mark_word(m));
        }
        for r in [
            NodeRole::Proxy,
            NodeRole::Backend,
            NodeRole::Switch,
            NodeRole::Other,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), role_word(r));
        }
        for m in [
            OffsetMethod::SharedPackets,
            OffsetMethod::Tsval,
            OffsetMethod::Pinned,
            OffsetMethod::Reference,
            OffsetMethod::Unplaced,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), method_word(m));
        }
    }

    #[test]
    fn relative_times() {
        assert_eq!(
            rel_time(
                Timestamp::from_nanos(1_904_543_210),
                Timestamp::from_nanos(1_000_000_000)
            ),
            "+0.904543"
        );
        assert_eq!(
            rel_time(
                Timestamp::from_nanos(0),
                Timestamp::from_nanos(1_000_000_000)
            ),
            "-1.000000"
        );
        assert_eq!(
            rel_time(Timestamp::from_nanos(5), Timestamp::from_nanos(5)),
            "+0.000000"
        );
    }

    #[test]
    fn selection_keeps_everything_under_budget() {
        assert_eq!(select_rows(&[2, 2, 0], Some(3)), vec![true; 3]);
        assert_eq!(select_rows(&[2, 2, 0], None), vec![true; 3]);
    }

    #[test]
    fn selection_prefers_important_rows_and_their_neighbours() {
        //            0  1  2  3  4  5  6  7  8  9
        let prios = [1, 2, 2, 2, 2, 2, 2, 2, 0, 3];
        let keep = select_rows(&prios, Some(4));
        // tier 0 (row 8), tier 1 (row 0), then the tier-2 rows nearest to a
        // kept row: row 7 (next to 8) and row 1 (next to 0).
        let kept: Vec<usize> = (0..10).filter(|&i| keep[i]).collect();
        assert_eq!(kept, vec![0, 1, 7, 8]);
    }

    #[test]
    fn selection_with_zero_budget_keeps_nothing() {
        assert_eq!(select_rows(&[0, 1], Some(0)), vec![false, false]);
    }
}
