//! `docs/causes.md` is written from the rules themselves: each rule file's
//! own documentation (its signature and what each capture mode proves), its
//! remedy, and the proofs with their weights. A test keeps the file
//! current: `UPDATE_DOCS=1 cargo test -p wiretrail-correlate docs` rewrites
//! it, and without it the test fails when the file and the code disagree.

use super::{Proof, RULES};
use crate::ctx::Pk;
use crate::model::{Cause, ProofKind};
use wiretrail_capture::{Duration, Timestamp};
use wiretrail_logs::ErrorClass;

/// Each rule's source, in precedence order (checked against [`RULES`]).
const SOURCES: &[(Cause, &str)] = &[
    (Cause::Refused, include_str!("refused.rs")),
    (Cause::ConnectTimeout, include_str!("connect_timeout.rs")),
    (
        Cause::AcceptQueueOverflow,
        include_str!("accept_queue_overflow.rs"),
    ),
    (Cause::FlowSplit, include_str!("flow_split.rs")),
    (Cause::MiddleboxReset, include_str!("middlebox_reset.rs")),
    (
        Cause::BackendStateLost,
        include_str!("backend_state_lost.rs"),
    ),
    (Cause::StrayRst, include_str!("stray_rst.rs")),
    (Cause::IdleRace, include_str!("idle_race.rs")),
    (
        Cause::MaxRequestsClose,
        include_str!("max_requests_close.rs"),
    ),
    (Cause::BackendReset, include_str!("backend_reset.rs")),
    (Cause::PmtuBlackhole, include_str!("pmtu_blackhole.rs")),
    (Cause::ClientCanceled, include_str!("client_canceled.rs")),
    (Cause::ResponseTimeout, include_str!("response_timeout.rs")),
];

const INTRO: &str = r#"# Causes: what wiretrail can prove, and from which captures

This file is generated from the diagnosis rules (`crates/wiretrail-correlate/src/rules/`):
`UPDATE_DOCS=1 cargo test -p wiretrail-correlate docs` rewrites it, and the test fails when
it and the code disagree.

Every proxy error is joined to its connection (by the proxy port the line prints, else by
time: see `timejoin`) and the rules below run over it, in this order; the first whose
**signature** is present names the cause. A rule that does not find its whole signature does
not fire: the answer is then a weaker honest word (`stray_rst`, or `unknown` with what is
missing). A later rule that also fires is listed as `contested` and lowers the confidence.

**Lines joined by time.** A line that prints no proxy port is matched to the connections
around its time whose rule explains its words. One candidate: its cause. Several telling one
story: paired in order when their failures are clearly ordered and the lines linked by those
candidates are at least as many as the connections (every failure logged), else the cause with
lowered confidence, every candidate listed, and the node only when all candidates share it. Several telling different stories, or more lines of
that second than connections telling the story (some lines then failed on a connection the
captures do not show, and any line may be one of them): `unknown`, candidates listed.

**Capture modes.** wiretrail is often run with only some captures: the proxy's alone (the
most common setup), the backends' alone, or all of them. Each rule says what each mode can
prove; where a mode cannot name the node that owned the connection, `owner_node` is null and
a `capture_gap` finding says which captures would have named it.

**Confidence** is the sum of the weights of the typed proofs a rule found (below), clamped
to 0..0.99; every diagnosis lists its proofs (`diagnosis.proofs[]` in the JSON report).
Capture data known to be lost (an unreadable, truncated or missing rotation, an unreachable
node) over a connection's life turns any cause into `unknown` with a `capture_gap` finding:
the missing packets could change the answer.

Findings across errors, not causes: `backend_mass_failure` (3 or more connections to one
backend failing within 5 s: a restart, a deploy, lost state; it adds the `node_burst` proof
to `backend_state_lost`) and `flow_rehash` (3 or more flow splits or stray RSTs within 2 s:
flows moved at one instant, an ECMP rehash or VIP/ARP flux). They are in the report's
`events[]` and in the findings of the incidents they concern.
"#;

/// A sample of every proof, to print its weight (the match is exhaustive:
/// a new proof cannot be added without a line here).
fn samples() -> Vec<(Proof, &'static str)> {
    let n = || "b1".to_string();
    let all = vec![
        (Proof::Handshake { node: n(), syn: Pk::at(0), synack: Pk::at(0) }, "the node saw the connection's handshake"),
        (Proof::AnsweredWithState { node: n(), pkt: Pk::at(0) }, "no handshake captured, but the node answered with state"),
        (Proof::SegmentAstray { node: n(), seg: Pk::at(0) }, "a backend without the socket received a segment of the connection"),
        (Proof::OwnerMissed { node: n(), seg: Pk::at(0) }, "the owner's capture covers the moment and lacks that segment"),
        (Proof::StatelessRst { rst: Pk::at(0), answers: Pk::at(0) }, "the RST's seq is the ACK of the segment it answers and it has no ACK flag: its sender had no socket"),
        (Proof::AbortRst { rst: Pk::at(0) }, "RST|ACK in the sender's own sequence space: a stack that had the socket aborted it"),
        (Proof::RstInNoBackend { rst: Pk::at(0), covered: vec![] }, "the RST reached the proxy; no backend capture covering the moment holds it"),
        (Proof::TtlDiffers { rst: Pk::at(0), peer: Pk::at(0), rst_ttl: 64, peer_ttl: 63 }, "the RST arrived with another TTL than the backend's packets: another hop distance"),
        (Proof::MacDiffers { rst: Pk::at(0), peer: Pk::at(0) }, "the RST arrived from another source MAC than the backend's packets"),
        (Proof::SenderIsPeer { rst: Pk::at(0), peer: Pk::at(0) }, "the RST has the owner's MAC and TTL where MACs name hosts"),
        (Proof::OwnerSent { node: n(), rst: Pk::at(0) }, "the RST is in the owner's own capture"),
        (Proof::IdleBefore { last: Pk::at(0), next: Pk::at(0), idle: Duration::from_nanos(3_000_000_000) }, "the connection was idle before the failing segment (0.15 when the gap matches a known cloud idle timer)"),
        (Proof::IdleUntilError { last: Pk::at(0), idle: Duration::from_nanos(3_000_000_000) }, "the owner's capture shows the connection idle up to the error (shown as `idle_before`)"),
        (Proof::OwnerNeverSawRequest { node: n(), from: Timestamp::EPOCH, to: Timestamp::EPOCH }, "the owner's capture covers the time up to the error and holds neither the request nor a RST"),
        (Proof::Retransmitted { seg: Pk::at(0), times: 2 }, "the answered segment had been sent before, unanswered"),
        (Proof::FinAfterIdle { fin: Pk::at(0), last: Pk::at(0), idle: Duration::from_nanos(1_000_000_000) }, "the owner closed (FIN) after at least 200 ms idle"),
        (Proof::FinAfterResponse { resp: Pk::at(0), fin: Pk::at(0), gap: Duration::from_nanos(100_000) }, "the owner closed (FIN) within 100 ms of its last response"),
        (Proof::RequestCrossedFin { req: Pk::at(0), fin: Pk::at(0) }, "the proxy's next request crossed the owner's FIN"),
        (Proof::RstAfterClose { rst: Pk::at(0) }, "the late request was answered by RST"),
        (Proof::UnreadRequestRst { req: Pk::at(0), rst: Pk::at(0), idle: Duration::from_nanos(1_000_000_000) }, "after 200 ms idle, a request never acknowledged and the owner's RST (its close crossed the unread request)"),
        (Proof::RequestsServed { n: 100 }, "the requests the connection served, counted from its handshake"),
        (Proof::SameRequestCount { n: 100, conns: 3 }, "the backend closed several connections right after exactly as many requests: a request budget (from every connection of the run)"),
        (Proof::Refusal { syn: Pk::at(0), rst: Pk::at(0) }, "SYN answered by RST/ACK"),
        (Proof::SynsUnanswered { syns: vec![Pk::at(0)] }, "SYNs never answered (+0.05 per retransmission, up to 3)"),
        (Proof::SynAckRepeated { ack: Pk::at(0), synack: Pk::at(0) }, "the server's SYN-ACK again after the handshake completed"),
        (Proof::ResetOnAccept { ack: Pk::at(0), rst: Pk::at(0) }, "a stateless RST answering the handshake's ACK or first segment"),
        (Proof::RequestNeverAcked { seg: Pk::at(0), sends: 1 }, "request data never acknowledged"),
        (Proof::FullSizeRetransmitted { seg: Pk::at(0), len: 1448, sends: 3 }, "a full-size segment sent again and again at one seq, never acknowledged"),
        (Proof::SmallerGotThrough { pkt: Pk::at(0) }, "smaller packets of the connection got through"),
        (Proof::OwnerNeverGotFullSize { node: n(), len: 1448 }, "the owner received no full-size segment, only smaller ones"),
        (Proof::RequestAcked { req: Pk::at(0), ack: Pk::at(0) }, "the backend acknowledged the request"),
        (Proof::ProxyGaveUp { req: Pk::at(0), close: Pk::at(0), waited: Duration::from_nanos(0) }, "the proxy closed with its request unanswered"),
        (Proof::LateResponse { pkt: Pk::at(0) }, "the response came after the proxy gave up"),
        (Proof::NodeBurst { node: n(), errors: 3, within: Duration::from_nanos(0) }, "many connections to the node failed within a short time"),
        (Proof::LogAgrees { class: ErrorClass::Reset }, "the log line says what this cause produces"),
        (Proof::LogDisagrees { class: ErrorClass::Reset }, "the log line says something this cause does not produce"),
        (Proof::Contested { cause: Cause::Unknown }, "another rule's signature is present too"),
        (Proof::PairedByOrder { among: 3 }, "a line joined by time paired by order with one of several connections telling the same story"),
        (Proof::NoHandshakeCaptured, "no node captured the handshake"),
    ];
    for (p, _) in &all {
        // Exhaustiveness: every variant has a sample above.
        match p {
            Proof::Handshake { .. }
            | Proof::AnsweredWithState { .. }
            | Proof::SegmentAstray { .. }
            | Proof::OwnerMissed { .. }
            | Proof::StatelessRst { .. }
            | Proof::AbortRst { .. }
            | Proof::RstInNoBackend { .. }
            | Proof::TtlDiffers { .. }
            | Proof::MacDiffers { .. }
            | Proof::SenderIsPeer { .. }
            | Proof::OwnerSent { .. }
            | Proof::IdleBefore { .. }
            | Proof::IdleUntilError { .. }
            | Proof::OwnerNeverSawRequest { .. }
            | Proof::Retransmitted { .. }
            | Proof::FinAfterIdle { .. }
            | Proof::FinAfterResponse { .. }
            | Proof::RequestCrossedFin { .. }
            | Proof::RstAfterClose { .. }
            | Proof::UnreadRequestRst { .. }
            | Proof::RequestsServed { .. }
            | Proof::SameRequestCount { .. }
            | Proof::Refusal { .. }
            | Proof::SynsUnanswered { .. }
            | Proof::SynAckRepeated { .. }
            | Proof::ResetOnAccept { .. }
            | Proof::RequestNeverAcked { .. }
            | Proof::FullSizeRetransmitted { .. }
            | Proof::SmallerGotThrough { .. }
            | Proof::OwnerNeverGotFullSize { .. }
            | Proof::RequestAcked { .. }
            | Proof::ProxyGaveUp { .. }
            | Proof::LateResponse { .. }
            | Proof::NodeBurst { .. }
            | Proof::LogAgrees { .. }
            | Proof::LogDisagrees { .. }
            | Proof::Contested { .. }
            | Proof::PairedByOrder { .. }
            | Proof::NoHandshakeCaptured => {}
        }
    }
    all
}

fn word(k: ProofKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The whole of `docs/causes.md`.
pub(crate) fn render() -> String {
    let mut out = String::from(INTRO);
    out.push_str("\n## The rules, in precedence order\n");
    for (cause, src) in SOURCES {
        out.push_str(&format!("\n### `{}`\n\n", cause.as_str()));
        for l in src.lines().take_while(|l| l.starts_with("//!")) {
            let t = l.trim_start_matches("//!").strip_prefix(' ').unwrap_or("");
            // Intra-doc links read as plain names here.
            let t = t
                .replace("[`super::", "[`")
                .replace("[`crate::rst::RstForm::Refusal`]", "the refusal form");
            let t = strip_links(&t);
            out.push_str(&t);
            out.push('\n');
        }
        let remedy = RULES
            .iter()
            .find(|r| r.cause == *cause)
            .map_or("", |r| r.remedy);
        out.push_str(&format!("\n**Remedy.** {remedy}\n"));
    }
    out.push_str(
        "\n## Proofs and their weights\n\n| proof | weight | what it shows |\n|---|---|---|\n",
    );
    for (p, what) in samples() {
        out.push_str(&format!(
            "| `{}` | {:+.2} | {what} |\n",
            word(p.kind()),
            p.weight()
        ));
    }
    out.push_str(
        "\nTwo more appear in reports without coming from a rule: `log_only` (no packets could be joined: \
the log's own words, 0.6, or 0.5 when packets were joined but show no signature; only for \
`connection refused`, timeouts and `context canceled`: a bare `EOF` names no cause) and \
`capture_incomplete` (capture data over the connection's life is lost: the cause is `unknown`).\n",
    );
    out
}

/// `[`name`]` → `` `name` `` (rustdoc links mean nothing in Markdown).
fn strip_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("[`") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find("`]") {
            Some(j) => {
                out.push_str(&after[..j + 1]);
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_follow_the_precedence() {
        let order: Vec<Cause> = RULES.iter().map(|r| r.cause).collect();
        let docs: Vec<Cause> = SOURCES.iter().map(|s| s.0).collect();
        assert_eq!(order, docs);
        for (c, src) in SOURCES {
            assert!(
                src.starts_with(&format!("//! `{}`", c.as_str())),
                "the file of {c:?} does not open with its word"
            );
        }
    }

    #[test]
    fn docs_causes_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/causes.md");
        let want = render();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let got = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            got == want,
            "docs/causes.md is not what the rules say: run UPDATE_DOCS=1 cargo test -p wiretrail-correlate docs"
        );
    }
}
