//! Errors joined by time: the log line names no proxy port, so the
//! connection is found among all the proxy's connections to the backend
//! around the log's time by the story the error tells.
//!
//! Every candidate connection goes through the same rules as an error
//! joined by port ([`crate::rules`]); a connection tells the error's story
//! when a rule fires on it whose cause explains the error's log class (a
//! refusal for `connection refused`, unanswered SYNs for a dial timeout, an
//! unanswered request the proxy gave up on for `timeout awaiting response
//! headers` or `context canceled`, an idle close for a bare `EOF`, ...) and
//! the moment that rule says the failure reached the proxy meets the log's
//! time, within its precision widened by the node's clock uncertainty,
//! first tightly, then by the match slack. Connections already joined to an
//! error by port are not candidates. Candidates are assigned across all the
//! errors of a window at once: an error with one candidate takes it, and it
//! is then no one else's, until nothing changes. What remains with several
//! candidates is said as such (every candidate listed, confidence lowered,
//! the node named only when all candidates agree on it); never picked
//! silently.

use crate::config::NodeInput;
use crate::conn::{Conn, ConnId};
use crate::ctx::{Ctx, Parts};
use crate::diagnose::{cause_kind, from_hit, from_log, log_evidence, records, Outcome};
use crate::model::{Cause, ErrorDiagnosis, Evidence, Finding, FindingKind};
use crate::plan::ErrorId;
use crate::rules::{self, Case, Proof, RuleHit};
use std::collections::{BTreeMap, BTreeSet};
use wiretrail_capture::{Duration, Timestamp};
use wiretrail_logs::ProxyError;

/// One connection that tells an error's story.
#[derive(Debug, Clone)]
pub(crate) struct Story {
    pub conn: ConnId,
    /// The proxy's port on that connection.
    pub port: u16,
    pub hit: RuleHit,
}

impl Story {
    fn node(&self) -> &str {
        self.hit.owner.as_deref().unwrap_or("an unnamed node")
    }
}

/// What the time join found for one error.
#[derive(Debug, Clone)]
pub(crate) enum Joined {
    One(Story),
    /// Several connections fit equally. `lines`: how many error lines
    /// share exactly these candidates; as many lines as candidates means
    /// they pair up one to one (only which is which is unknown).
    Several {
        all: Vec<Story>,
        lines: usize,
    },
    /// Several connections told the same story; this one was paired with
    /// the line by order (the k-th line, the k-th connection to fail).
    ByOrder {
        story: Story,
        among: usize,
    },
    /// No connection tells the story.
    Nothing,
}

/// Two failures that began closer than this may be logged in either order.
const ORDER_MARGIN: Duration = Duration::from_millis(50);

/// Confidence lost when several connections tell the story and as many
/// lines share them (they pair up; only which is which is unknown)...
const PAIRED_PENALTY: f64 = 0.05;
/// ...and when more connections than lines fit.
const UNPAIRED_PENALTY: f64 = 0.15;

/// The story the error's class tells on connection `ci`, if a rule finds it.
fn story(ctx: &Ctx<'_>, e: &ProxyError, ci: ConnId, c: &Conn) -> Option<Story> {
    let case = Case {
        ctx,
        err: e,
        parts: Parts::of(ctx, c),
    };
    // A line that names no failure (an access log's bare 502: class
    // `other`) takes whatever story a connection tells.
    let any = e.class == wiretrail_logs::ErrorClass::Other;
    let hit = rules::all_hits(&case)
        .into_iter()
        .find(|h| any || rules::rule_of(h.cause).is_some_and(|r| (r.explains)(e)))?;
    Some(Story {
        conn: ci,
        port: c.tuple.0.port(),
        hit,
    })
}

/// What the time join needs besides the packets.
pub(crate) struct Window<'a> {
    /// Per node, how uncertain its clock is (ns).
    pub unc: &'a BTreeMap<String, Duration>,
    /// Used when a node has no entry.
    pub default_unc: Duration,
    pub match_slack: Duration,
}

/// Finds, for every error joined by time, the connection(s) that tell its
/// story. `errors` are (error index, the error, the conns its wildcard
/// queries pulled); `claimed` are conns already joined to an error by port.
pub(crate) fn join(
    ctx: &Ctx<'_>,
    conns: &[Conn],
    errors: &[(ErrorId, &ProxyError, Vec<ConnId>)],
    claimed: &BTreeSet<ConnId>,
    w: &Window<'_>,
) -> BTreeMap<ErrorId, Joined> {
    let mut cands: BTreeMap<ErrorId, Vec<Story>> = BTreeMap::new();
    for (ei, e, pool) in errors {
        let stories: Vec<Story> = pool
            .iter()
            .filter(|ci| !claimed.contains(ci))
            .filter_map(|&ci| story(ctx, e, ci, &conns[ci]))
            .collect();
        let t = crate::plan::log_ts(e);
        let width = crate::plan::log_width(e);
        let unc = |s: &Story| {
            s.hit
                .owner
                .as_ref()
                .and_then(|n| w.unc.get(n).copied())
                .unwrap_or(w.default_unc)
        };
        // Tightly first (the log's precision and the clock's uncertainty),
        // then with the match slack.
        let mut found = Vec::new();
        for extra in [Duration::from_millis(1), w.match_slack] {
            found = stories
                .iter()
                .filter(|s| {
                    let slack = unc(s) + extra;
                    s.hit.at.1 >= t - slack && s.hit.at.0 <= t + width + slack
                })
                .cloned()
                .collect();
            if !found.is_empty() {
                break;
            }
        }
        cands.insert(*ei, found);
    }

    // One candidate: taken, and no one else's. Repeat until stable.
    let original = cands.clone();
    let mut taken: BTreeMap<ErrorId, ConnId> = BTreeMap::new();
    loop {
        let single = cands
            .iter()
            .find(|(ei, c)| c.len() == 1 && !taken.contains_key(ei))
            .map(|(ei, c)| (*ei, c[0].conn));
        let Some((ei, ci)) = single else { break };
        taken.insert(ei, ci);
        for (other, c) in cands.iter_mut() {
            if *other != ei {
                c.retain(|s| s.conn != ci);
            }
        }
    }
    // Lines left with nothing had their only candidates go to other
    // lines: they share them, they do not lose them.
    for (ei, c) in cands.iter_mut() {
        if c.is_empty() {
            *c = original.get(ei).cloned().unwrap_or_default();
        }
    }
    // Lines still with several candidates that all tell one story are
    // paired with them in order: Go logs a failure when it reaches the
    // proxy, and failures of one kind through one transport (one dial
    // timeout, one header timeout, one client deadline) end in the order
    // they began. The k-th such line is the k-th such connection to fail.
    let line_of = |ei: ErrorId| {
        errors
            .iter()
            .find(|(i, _, _)| *i == ei)
            .map(|(_, e, _)| {
                let line = match &e.source {
                    wiretrail_logs::Source::File { line, .. }
                    | wiretrail_logs::Source::Stdin { line } => *line,
                    wiretrail_logs::Source::Elasticsearch { .. } => 0,
                };
                (crate::plan::log_ts(e), line)
            })
            .unwrap_or((Timestamp::EPOCH, 0))
    };
    // That holds only when every candidate's failure was logged: a group
    // of lines linked by shared candidates pairs only when it has at least
    // as many lines as connections. With more connections than lines (an
    // idle close that raced no request is no error) the k-th line need not
    // be the k-th connection.
    let logged = fully_logged(&cands);
    let mut pending: Vec<ErrorId> = cands
        .iter()
        .filter(|(ei, _)| logged.contains(ei))
        .filter(|(_, c)| c.len() > 1 && c.iter().all(|s| s.hit.cause == c[0].hit.cause))
        .map(|(ei, _)| *ei)
        .collect();
    pending.sort_by_key(|&ei| (line_of(ei), ei));
    let mut used: BTreeSet<ConnId> = taken.values().copied().collect();
    let mut ordered: BTreeMap<ErrorId, usize> = BTreeMap::new();
    for ei in pending {
        let c = &cands[&ei];
        let among = c.len();
        let mut free: Vec<&Story> = c.iter().filter(|s| !used.contains(&s.conn)).collect();
        free.sort_by_key(|s| (s.hit.at.0, s.conn));
        // Failures that began within a few milliseconds of each other may
        // reach the log in either order: those stay unpaired.
        let clear = match free[..] {
            [] => false,
            [_] => true,
            [a, b, ..] => b.hit.at.0.saturating_duration_since(a.hit.at.0) >= ORDER_MARGIN,
        };
        if clear {
            let s = free[0].clone();
            used.insert(s.conn);
            ordered.insert(ei, among);
            cands.insert(ei, vec![s]);
        }
    }
    let set = |c: &[Story]| c.iter().map(|s| s.conn).collect::<BTreeSet<ConnId>>();
    let mut sharing: BTreeMap<BTreeSet<ConnId>, usize> = BTreeMap::new();
    for c in cands.values().filter(|c| c.len() > 1) {
        *sharing.entry(set(c)).or_default() += 1;
    }
    cands
        .into_iter()
        .map(|(ei, mut c)| {
            let j = match c.len() {
                0 => Joined::Nothing,
                1 => match ordered.get(&ei) {
                    Some(&among) => Joined::ByOrder {
                        story: c.pop().expect("one"),
                        among,
                    },
                    None => Joined::One(c.pop().expect("one")),
                },
                _ => Joined::Several {
                    lines: sharing.get(&set(&c)).copied().unwrap_or(1),
                    all: c,
                },
            };
            (ei, j)
        })
        .collect()
}

/// The lines (with several candidates) whose group, the lines linked to
/// each other through shared candidate connections, has at least as many
/// lines as connections: every connection's failure may be one of them.
fn fully_logged(cands: &BTreeMap<ErrorId, Vec<Story>>) -> BTreeSet<ErrorId> {
    // Union-find over connections; a line joins its candidates.
    fn root(parent: &mut BTreeMap<ConnId, ConnId>, x: ConnId) -> ConnId {
        let mut r = x;
        while let Some(&up) = parent.get(&r).filter(|&&up| up != r) {
            r = up;
        }
        let mut y = x;
        while y != r {
            let up = parent.insert(y, r).unwrap_or(r);
            y = up;
        }
        r
    }
    let several = || cands.iter().filter(|(_, c)| c.len() > 1);
    let mut parent: BTreeMap<ConnId, ConnId> = BTreeMap::new();
    for (_, c) in several() {
        for s in c {
            parent.entry(s.conn).or_insert(s.conn);
        }
        let a = root(&mut parent, c[0].conn);
        for s in &c[1..] {
            let b = root(&mut parent, s.conn);
            if a != b {
                parent.insert(b, a);
            }
        }
    }
    let mut conns: BTreeMap<ConnId, usize> = BTreeMap::new();
    let all: Vec<ConnId> = parent.keys().copied().collect();
    for k in all {
        *conns.entry(root(&mut parent, k)).or_default() += 1;
    }
    let mut lines: BTreeMap<ConnId, Vec<ErrorId>> = BTreeMap::new();
    for (ei, c) in several() {
        lines
            .entry(root(&mut parent, c[0].conn))
            .or_default()
            .push(*ei);
    }
    lines
        .into_iter()
        .filter(|(r, ls)| ls.len() >= conns.get(r).copied().unwrap_or(0))
        .flat_map(|(_, ls)| ls)
        .collect()
}

/// The diagnosis of an error joined by time.
pub(crate) fn outcome(
    ctx: &Ctx<'_>,
    e: &ProxyError,
    joined: &Joined,
    nodes: &[NodeInput],
    uncovered: &[String],
) -> Outcome {
    match joined {
        Joined::One(s) => from_hit(
            ctx,
            e,
            s.hit.clone(),
            &format!(
                " (joined by time: the log line names no proxy port; port {} is the only connection around the log's time that tells this story)",
                s.port
            ),
        ),
        Joined::ByOrder { story, among } => {
            let mut hit = story.hit.clone();
            hit.proofs.push(Proof::PairedByOrder { among: *among as u32 });
            from_hit(
                ctx,
                e,
                hit,
                &format!(
                    " (joined by time: {among} connections around the log's time tell this story; lines and connections paired in order, port {} for this line)",
                    story.port
                ),
            )
        }
        Joined::Several { all, lines } => {
            let paired = *lines == all.len();
            let names: BTreeSet<Option<&str>> = all.iter().map(|s| s.hit.owner.as_deref()).collect();
            let one_node = match names.iter().collect::<Vec<_>>()[..] {
                [Some(n)] => Some(n.to_string()),
                _ => None,
            };
            // No candidate names a node (the proxy's capture alone): the
            // node was never going to be named; only the connection is unknown.
            let unnamed = names.iter().all(Option::is_none);
            let cause = all[0].hit.cause;
            let same_cause = all.iter().all(|s| s.hit.cause == cause);
            let ports: Vec<String> = all
                .iter()
                .map(|s| format!("{} on {} ({})", s.port, s.node(), s.hit.cause.as_str()))
                .collect();
            let mut ev: Vec<Evidence> = Vec::new();
            for (k, s) in all.iter().enumerate() {
                for p in &s.hit.proofs {
                    for (i, note) in p.frames(ctx) {
                        ev.push(ctx.ev(i, format!("candidate {} of {}: {note}", k + 1, all.len())));
                    }
                }
            }
            let pairing = if paired {
                format!(
                    "; {lines} lines of that second share exactly these {} connections, so they pair up one to one",
                    all.len()
                )
            } else {
                String::new()
            };
            let base = all.iter().map(|s| s.hit.confidence()).fold(f64::INFINITY, f64::min);
            // More lines than connections share these candidates: at least
            // `lines - all.len()` of the lines failed on a connection that
            // tells no story the captures show (a request that never reached
            // the wire, a connection outside the capture). Any one line may
            // be one of those, so however well the candidates agree, their
            // story is no line's in particular.
            let crowded = *lines > all.len();
            let (cause, confidence, summary) = match (&one_node, same_cause) {
                (_, true) if crowded => (
                    Cause::Unknown,
                    0.0,
                    format!(
                        "{lines} lines of that second share {} connections that tell {} ({}): at least {} of the lines failed on a connection whose story the captures do not show, so which lines these are cannot be told",
                        all.len(),
                        cause.as_str(),
                        ports.join(", "),
                        lines - all.len()
                    ),
                ),
                (None, true) if unnamed => (
                    cause,
                    ((base - if paired { PAIRED_PENALTY } else { UNPAIRED_PENALTY }).max(0.0) * 1000.0)
                        .round()
                        / 1000.0,
                    format!(
                        "{}: {} connections around the log's time tell this story equally (ports {}){pairing}; which one this line is cannot be told from its timestamp",
                        cause.as_str(),
                        all.len(),
                        ports.join(", ")
                    ),
                ),
                (Some(n), true) => (
                    cause,
                    // Which connection is unknown; the node and cause are
                    // not. Lines that pair up one to one lose less.
                    ((base - if paired { PAIRED_PENALTY } else { UNPAIRED_PENALTY }).max(0.0) * 1000.0)
                        .round()
                        / 1000.0,
                    format!(
                        "{}: {} connections around the log's time tell this story equally (ports {}), all on {n}{pairing}; which one this line is cannot be told from its timestamp, the node can",
                        cause.as_str(),
                        all.len(),
                        ports.join(", ")
                    ),
                ),
                (_, true) => (
                    cause,
                    // The node cannot be named: no more than even odds.
                    base.min(0.5),
                    format!(
                        "{}: {} connections around the log's time tell this story equally ({}), on different nodes{pairing}: the node cannot be named",
                        cause.as_str(),
                        all.len(),
                        ports.join(", ")
                    ),
                ),
                (_, false) => (
                    Cause::Unknown,
                    0.0,
                    format!(
                        "{} connections around the log's time tell different stories that all fit the line ({}): which one this line is cannot be told",
                        all.len(),
                        ports.join(", ")
                    ),
                ),
            };
            let finding = Finding {
                kind: cause_kind(cause),
                nodes: names.iter().flatten().map(|n| n.to_string()).collect(),
                confidence,
                summary: summary.clone(),
                evidence: ev.clone(),
            };
            ev.push(log_evidence(e));
            Outcome {
                diagnosis: ErrorDiagnosis {
                    cause,
                    confidence,
                    // Candidates that all sit on one node name it, whatever
                    // their stories; unless some lines' connections are
                    // not among them.
                    owner_node: one_node.filter(|_| !crowded),
                    stray_nodes: Vec::new(),
                    evidence: ev,
                    // An unknown cause proves nothing: no candidate's proofs are this line's.
                    proofs: if cause == Cause::Unknown {
                        Vec::new()
                    } else {
                        records(&all[0].hit.proofs)
                    },
                    remedy: rules::rule_of(cause).map(|r| r.remedy.to_string()),
                    measures: Default::default(),
                },
                findings: vec![finding],
                summary,
            }
        }
        Joined::Nothing => {
            let said = from_log(e).map_or_else(
                || "the log class names no cause".to_string(),
                |(_, s)| s.to_string(),
            );
            let searched: Vec<&str> = nodes
                .iter()
                .map(|n| n.name.as_str())
                .filter(|n| !uncovered.iter().any(|u| u == n))
                .collect();
            let summary = format!(
                "{said}; joined by time, but no connection of the proxy to the backend around the log's time shows a failure that explains it (nodes searched {searched:?}{})",
                if uncovered.is_empty() {
                    String::new()
                } else {
                    format!(", nodes without captures for the window {uncovered:?}")
                }
            );
            let findings = if uncovered.is_empty() {
                Vec::new()
            } else {
                vec![Finding {
                    kind: FindingKind::CaptureGap,
                    nodes: uncovered.to_vec(),
                    confidence: 0.9,
                    summary: summary.clone(),
                    evidence: vec![log_evidence(e)],
                }]
            };
            let mut o = crate::diagnose::diagnose_unjoinable(e, &summary);
            o.summary = summary;
            o.findings = findings;
            // Captures that cover the moment and show no connection with an
            // acknowledged, unanswered request contradict "the backend was
            // slow" (a timeout) and "the client left while it worked" (a
            // cancel): the request may never have reached it. The errno
            // words (refused, a dial timeout) stay, unconfirmed.
            let contradicted = !searched.is_empty()
                && matches!(o.diagnosis.cause, Cause::ResponseTimeout | Cause::ClientCanceled);
            if contradicted {
                o.summary = format!(
                    "{}; a request that never reached the backend (a path-MTU black hole, a full accept queue, a dead path) leaves no such connection: the cause is not named",
                    o.summary
                );
                o.diagnosis.cause = Cause::Unknown;
                o.diagnosis.confidence = 0.0;
                o.diagnosis.proofs.clear();
                o.diagnosis.remedy = None;
            } else if !searched.is_empty() {
                // Searched and not confirmed: the log's word, for what it is worth.
                o.diagnosis.confidence = o.diagnosis.confidence.min(0.5);
                for p in &mut o.diagnosis.proofs {
                    p.weight = p.weight.min(0.5);
                }
            }
            o
        }
    }
}
