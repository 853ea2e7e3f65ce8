//! Phase 2: from errors, the plan and the extracted packets to a [`Report`].

use crate::clock;
use crate::community_id::community_id_v1;
use crate::config::{CorrelateConfig, NodeInput};
use crate::conn::{self, Conn, ConnId};
use crate::ctx::{time, Ctx};
use crate::diagnose::{self, Outcome};
use crate::findings;
use crate::model::*;
use crate::packets::{mark_capture_duplicates, store, Store};
use crate::plan::{error_key, log_ts, log_width, ErrorId, ErrorJoin, Plan};
use crate::systemic::{self, Judged};
use crate::timejoin;
use sha1::{Digest, Sha1};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use wiretrail_capture::{Direction, Duration, PacketObs, Timestamp};
use wiretrail_logs::ProxyError;

/// Everything after extraction: connection rebuild, one clock, diagnosis,
/// timeline and summary. `packets[i].queries` index `plan.queries`.
pub fn correlate(
    errors: Vec<ProxyError>,
    plan: &Plan,
    packets: Vec<PacketObs>,
    nodes: &[NodeInput],
    cfg: &CorrelateConfig,
) -> Report {
    let mut inputs = InputStats {
        proxy_errors: errors.len() as u64,
        packets_matched: packets.len() as u64,
        ..InputStats::default()
    };
    let unjoinable = unjoinable(&errors, plan, &mut inputs);
    let (nodes, packets) = admit_nodes(nodes, packets, &mut inputs);
    check_query_indices(&packets, plan, &mut inputs);

    let mut pkts: Store = store(packets);
    mark_capture_duplicates(&mut pkts, cfg.dup_window);
    let clock = clock::estimate(&nodes, &pkts, cfg.max_clock_offset.as_nanos() as f64);
    for p in &mut pkts {
        p.ref_ts = p.obs.ts + clock.skew(&p.obs.node);
    }
    let max_unc = clock
        .offsets
        .iter()
        .map(|o| uncertainty(o, cfg))
        .max()
        .unwrap_or(Duration::ZERO);
    let mut conns = conn::build(&mut pkts, max_unc + Duration::from_secs(1));

    // Per connection: marks and findings that do not depend on an error.
    let mut conn_findings: Vec<Vec<Finding>> = Vec::with_capacity(conns.len());
    {
        let mut all_marks = Vec::new();
        let ctx = Ctx::new(&pkts, &nodes, &clock);
        for c in &conns {
            let (f, m) = findings::conn_findings(&ctx, c);
            conn_findings.push(f);
            all_marks.extend(m);
        }
        for (i, m) in all_marks {
            pkts[i].mark(m);
        }
    }
    for c in &mut conns {
        c.views.retain(|v| !v.pkts.is_empty());
    }

    let node_times = NodeTimes::new(&pkts);
    let mut ctx = Ctx::new(&pkts, &nodes, &clock);
    ctx.facts = crate::rules::run_facts(&ctx, &conns);
    let w = World {
        ctx: &ctx,
        conns: &conns,
        conn_findings: &conn_findings,
        nodes: &nodes,
        clock: &clock,
        node_times: &node_times,
        cfg,
        max_unc,
    };
    let joins = w.join(&errors, plan, &unjoinable);

    // Every error diagnosed first (typed outcomes), then what only many
    // errors together show, then the incidents.
    let mut judged = w.judge(&errors, plan, &joins, &mut inputs);
    let events = systemic::events(&ctx, &mut judged, &errors);
    let mut judged: BTreeMap<ErrorId, Judged> = judged.into_iter().map(|j| (j.error, j)).collect();

    let errors_n = errors.len();
    let mut slots: Vec<Option<ProxyError>> = errors.into_iter().map(Some).collect();
    let incidents: Vec<Incident> = plan
        .incidents
        .iter()
        .filter_map(|pi| w.incident(pi, &mut judged, &mut slots, &events))
        .collect();
    let orphans = slots.iter().filter(|s| s.is_some()).count();
    if orphans > 0 {
        inputs.problems.push(Problem::new(
            ProblemKind::Unexpected,
            ProblemSource::Run,
            format!("{orphans} of {errors_n} errors belong to no planned incident"),
        ));
    }

    let summary = crate::summary::summarize(&incidents);
    let since = plan
        .incidents
        .iter()
        .map(|i| i.since)
        .min()
        .unwrap_or(Timestamp::EPOCH);
    let until = plan
        .incidents
        .iter()
        .map(|i| i.until)
        .max()
        .unwrap_or(Timestamp::EPOCH);
    Report {
        schema_version: SCHEMA_VERSION.to_string(),
        generated_at: chrono::Utc::now(),
        since: time(since),
        until: time(until),
        clock_offsets: clock.offsets.clone(),
        incidents,
        events: events.into_iter().map(|e| e.finding).collect(),
        summary,
        inputs,
    }
}

/// The errors the plan could not join, in their time order (as planned),
/// each said as a problem; keyed by error for the diagnosis.
fn unjoinable<'p>(
    errors: &[ProxyError],
    plan: &'p Plan,
    inputs: &mut InputStats,
) -> HashMap<ErrorId, &'p str> {
    let mut unjoinable: Vec<(Timestamp, ErrorId, &str)> = ErrorId::all(plan.joins.len())
        .zip(&plan.joins)
        .filter_map(|(i, j)| match j {
            ErrorJoin::Unjoinable { why } => Some((
                errors.get(i.index()).map_or(Timestamp::EPOCH, log_ts),
                i,
                why.as_str(),
            )),
            ErrorJoin::ByPort { .. } | ErrorJoin::ByTime { .. } => None,
        })
        .collect();
    unjoinable.sort_unstable();
    for &(_, i, why) in &unjoinable {
        inputs.problems.push(Problem::new(
            ProblemKind::Unjoinable,
            ProblemSource::Error { index: i.index() },
            why,
        ));
    }
    unjoinable.into_iter().map(|(_, i, why)| (i, why)).collect()
}

/// The pipeline's nodes, plus any that only the packets name (role other,
/// said as a problem); packets of an undeclared node whose name is not a
/// node name are dropped, and that is said too.
fn admit_nodes(
    nodes: &[NodeInput],
    packets: Vec<PacketObs>,
    inputs: &mut InputStats,
) -> (Vec<NodeInput>, Vec<PacketObs>) {
    let mut nodes: Vec<NodeInput> = nodes.to_vec();
    let known: BTreeSet<String> = nodes.iter().map(|n| n.name.to_string()).collect();
    let extra: BTreeSet<String> = packets
        .iter()
        .map(|p| p.node.to_string())
        .filter(|n| !known.contains(n))
        .collect();
    let mut refused: BTreeSet<String> = BTreeSet::new();
    for n in extra {
        match NodeName::new(&n) {
            Ok(name) => {
                inputs.problems.push(Problem::new(
                    ProblemKind::Unexpected,
                    ProblemSource::Node { node: n.clone() },
                    "packets from a node the pipeline does not declare: role taken as other",
                ));
                nodes.push(NodeInput::new(name, NodeRole::Other));
            }
            Err(e) => {
                inputs.problems.push(Problem::new(
                    ProblemKind::Unexpected,
                    ProblemSource::Run,
                    format!("packets from an undeclared node dropped: {e}"),
                ));
                refused.insert(n);
            }
        }
    }
    let packets = packets
        .into_iter()
        .filter(|p| !refused.contains(p.node.as_ref()))
        .collect();
    (nodes, packets)
}

/// Packets naming a query the plan does not have are still joined by
/// 4-tuple; say how many.
fn check_query_indices(packets: &[PacketObs], plan: &Plan, inputs: &mut InputStats) {
    let bad_query = packets
        .iter()
        .filter(|p| p.queries.iter().any(|&q| q >= plan.queries.len()))
        .count();
    if bad_query > 0 {
        inputs.problems.push(Problem::new(
            ProblemKind::Unexpected,
            ProblemSource::Run,
            format!(
                "{bad_query} packets carry a query index outside the plan's {} queries: joined by 4-tuple only",
                plan.queries.len()
            ),
        ));
    }
}

/// How each error found (or did not find) its connection.
struct Joins<'p> {
    unjoinable: HashMap<ErrorId, &'p str>,
    by_port: HashMap<ErrorId, Option<ConnId>>,
    by_time: BTreeMap<ErrorId, timejoin::Joined>,
}

/// What the diagnosis and the incidents read, once the connections are
/// rebuilt on one clock.
struct World<'a> {
    ctx: &'a Ctx<'a>,
    conns: &'a [Conn],
    conn_findings: &'a [Vec<Finding>],
    nodes: &'a [NodeInput],
    clock: &'a clock::Clock,
    node_times: &'a NodeTimes,
    cfg: &'a CorrelateConfig,
    max_unc: Duration,
}

impl World<'_> {
    /// Errors joined by port choose their connection first: those are then
    /// no candidates for the errors joined by time.
    fn join<'p>(
        &self,
        errors: &[ProxyError],
        plan: &Plan,
        unjoinable: &HashMap<ErrorId, &'p str>,
    ) -> Joins<'p> {
        let mut by_query: HashMap<usize, Vec<ConnId>> = HashMap::new();
        for (ci, c) in ConnId::all(self.conns.len()).zip(self.conns) {
            for &q in &c.queries {
                by_query.entry(q).or_default().push(ci);
            }
        }
        let mut by_port: HashMap<ErrorId, Option<ConnId>> = HashMap::new();
        for (ei, e) in ErrorId::all(errors.len()).zip(errors) {
            let query = match plan.joins.get(ei.index()) {
                Some(ErrorJoin::ByPort { query }) => Some(*query),
                Some(ErrorJoin::ByTime { .. } | ErrorJoin::Unjoinable { .. }) => continue,
                None => None,
            };
            let cands = query
                .and_then(|q| by_query.get(&q))
                .map_or(&[][..], Vec::as_slice);
            by_port.insert(
                ei,
                choose_conn(e, query, cands, self.conns, self.cfg, self.max_unc),
            );
        }
        let claimed: BTreeSet<ConnId> = by_port.values().flatten().copied().collect();
        let pools: Vec<(ErrorId, &ProxyError, Vec<ConnId>)> = ErrorId::all(plan.joins.len())
            .zip(&plan.joins)
            .filter_map(|(ei, j)| {
                let ErrorJoin::ByTime { queries: qs } = j else {
                    return None;
                };
                let e = errors.get(ei.index())?;
                let pool: BTreeSet<ConnId> = qs
                    .iter()
                    .flat_map(|q| by_query.get(q).into_iter().flatten().copied())
                    .collect();
                Some((ei, e, pool.into_iter().collect()))
            })
            .collect();
        let unc: BTreeMap<String, Duration> = self
            .clock
            .offsets
            .iter()
            .map(|o| (o.node.clone(), uncertainty(o, self.cfg)))
            .collect();
        let by_time = timejoin::join(
            self.ctx,
            self.conns,
            &pools,
            &claimed,
            &timejoin::Window {
                unc: &unc,
                default_unc: self.max_unc,
                match_slack: self.cfg.match_slack,
            },
        );
        Joins {
            unjoinable: unjoinable.clone(),
            by_port,
            by_time,
        }
    }

    /// Every planned error's diagnosis, in the plan's order; an error the
    /// plan names twice, or that is not in the input, is said as a problem.
    fn judge(
        &self,
        errors: &[ProxyError],
        plan: &Plan,
        joins: &Joins<'_>,
        inputs: &mut InputStats,
    ) -> Vec<Judged> {
        let mut judged: Vec<Judged> = Vec::new();
        let mut seen_errors: BTreeSet<ErrorId> = BTreeSet::new();
        for pi in &plan.incidents {
            for &ei in &pi.error_indices {
                let Some(e) = errors.get(ei.index()).filter(|_| seen_errors.insert(ei)) else {
                    inputs.problems.push(Problem::new(
                        ProblemKind::Unexpected,
                        ProblemSource::Error { index: ei.index() },
                        "the plan names this error, which is not in the input (or twice)",
                    ));
                    continue;
                };
                judged.push(self.judge_one(ei, e, pi, joins));
            }
        }
        judged
    }

    fn judge_one(
        &self,
        ei: ErrorId,
        e: &ProxyError,
        pi: &crate::plan::PlannedIncident,
        joins: &Joins<'_>,
    ) -> Judged {
        let mut shown: Vec<ConnId> = Vec::new();
        let (mut outcome, conn_idx) = if let Some(why) = joins.unjoinable.get(&ei) {
            (diagnose::diagnose_unjoinable(e, why), None)
        } else if let Some(j) = joins.by_time.get(&ei) {
            let uncovered = match j {
                timejoin::Joined::Nothing => self.uncovered_around(e),
                _ => Vec::new(),
            };
            let conn_idx = match j {
                timejoin::Joined::One(s) | timejoin::Joined::ByOrder { story: s, .. } => {
                    Some(s.conn)
                }
                timejoin::Joined::Several { all, .. } => {
                    shown = all.iter().map(|s| s.conn).collect();
                    None
                }
                timejoin::Joined::Nothing => None,
            };
            (
                timejoin::outcome(self.ctx, e, j, self.nodes, &uncovered),
                conn_idx,
            )
        } else {
            match joins.by_port.get(&ei).copied().flatten() {
                Some(ci) => (diagnose::diagnose(self.ctx, e, &self.conns[ci]), Some(ci)),
                None => {
                    let (covered, uncovered) =
                        coverage_split(self.nodes, pi.since, pi.until, self.node_times, self.clock);
                    (diagnose::diagnose_missing(e, &uncovered, &covered), None)
                }
            }
        };
        // A cause proven without naming its node: say which backends'
        // captures could have named it and did not cover the moment.
        let d = &outcome.diagnosis;
        if d.owner_node.is_none()
            && d.cause != Cause::Unknown
            && (conn_idx.is_some() || !shown.is_empty())
        {
            if let Some(f) = self.unnamed_node_gap(e, d.cause) {
                outcome.findings.push(f);
            }
        }
        Judged {
            error: ei,
            t: log_ts(e),
            outcome,
            conn: conn_idx,
            shown,
        }
    }

    /// The nodes whose captures do not cover the log line's moment (its
    /// precision, the match slack and the clocks' uncertainty around it).
    fn uncovered_around(&self, e: &ProxyError) -> Vec<String> {
        let t = log_ts(e);
        let s = self.cfg.match_slack + self.max_unc;
        coverage_split(
            self.nodes,
            t - s,
            t + log_width(e) + s,
            self.node_times,
            self.clock,
        )
        .1
    }

    /// A `capture_gap` naming the backends that could have named the node
    /// behind `cause` and did not cover the moment.
    fn unnamed_node_gap(&self, e: &ProxyError, cause: Cause) -> Option<Finding> {
        let blind: Vec<String> = self
            .uncovered_around(e)
            .into_iter()
            .filter(|n| {
                self.nodes
                    .iter()
                    .any(|x| &x.name == n && x.role != NodeRole::Proxy)
            })
            .collect();
        if blind.is_empty() {
            return None;
        }
        Some(Finding {
            kind: FindingKind::CaptureGap,
            nodes: blind.clone(),
            confidence: 0.9,
            summary: format!(
                "the node behind this {} is not named: the captures of {} do not cover the moment",
                cause.as_str(),
                blind.join(", ")
            ),
            evidence: vec![diagnose::log_evidence(e)],
        })
    }

    /// One planned incident from its judged errors (taken out of `judged`
    /// and `slots`); `None` when none of its errors is left.
    fn incident(
        &self,
        pi: &crate::plan::PlannedIncident,
        judged: &mut BTreeMap<ErrorId, Judged>,
        slots: &mut [Option<ProxyError>],
        events: &[systemic::Event],
    ) -> Option<Incident> {
        let conns = self.conns;
        let mut diagnosed = Vec::new();
        let mut findings: Vec<Finding> = Vec::new();
        let mut used_conns: BTreeSet<ConnId> = BTreeSet::new();
        let mut summaries = Vec::new();
        let mut tuple = None;
        for &ei in &pi.error_indices {
            let (Some(j), Some(e)) = (
                judged.remove(&ei),
                slots.get_mut(ei.index()).and_then(Option::take),
            ) else {
                continue;
            };
            let Outcome {
                diagnosis,
                findings: f,
                summary,
            } = j.outcome;
            summaries.push((diagnosis.cause, diagnosis.confidence, summary));
            findings.extend(f);
            // Candidates of an ambiguous time join: on the timeline, with
            // their connection findings, but no one connection is the error's.
            for ci in j.shown {
                if used_conns.insert(ci) {
                    findings.extend(self.conn_findings[ci].iter().cloned());
                }
            }
            let mut connection = Vec::new();
            if let Some(ci) = j.conn {
                let c = &conns[ci];
                tuple.get_or_insert(c.tuple);
                if used_conns.insert(ci) {
                    findings.extend(self.conn_findings[ci].iter().cloned());
                }
                connection = c.views.iter().map(connection_view).collect();
            }
            diagnosed.push(DiagnosedError {
                record: e,
                diagnosis,
                connection,
            });
        }
        if diagnosed.is_empty() {
            return None;
        }
        let verdict = verdict(&summaries, &diagnosed);
        findings.extend(clock_findings(self.clock, &used_conns, conns));
        // The events that concern this incident's errors.
        for ev in events {
            if ev.errors.iter().any(|e| pi.error_indices.contains(e)) {
                findings.push(ev.finding.clone());
            }
        }
        let timeline = timeline(self.ctx, conns, &used_conns, &diagnosed);
        let mut start = diagnosed
            .iter()
            .map(|d| d.record.timestamp)
            .min()
            .expect("non-empty");
        let mut end = diagnosed
            .iter()
            .map(|d| d.record.timestamp)
            .max()
            .expect("non-empty");
        for &ci in &used_conns {
            start = start.min(time(conns[ci].first_ref));
            end = end.max(time(conns[ci].last_ref));
        }
        let saw: BTreeSet<&str> = used_conns
            .iter()
            .flat_map(|&ci| conns[ci].views.iter().map(|v| v.node.as_ref()))
            .collect();
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                let off = self.clock.skew(&n.name);
                let covered = saw.contains(n.name.as_str())
                    || n.covers(pi.since - off, pi.until - off).unwrap_or_else(|| {
                        self.node_times.any_between(&n.name, pi.since, pi.until)
                    });
                IncidentNode {
                    name: n.name.to_string(),
                    role: n.role,
                    saw_connection: saw.contains(n.name.as_str()),
                    covered,
                }
            })
            .collect();
        let community_id = tuple.map(|(a, b)| community_id_v1(a, b)).or_else(|| {
            let k = error_key(&diagnosed[0].record);
            Some(community_id_v1(
                k.local.as_ref()?.socket()?,
                k.remote.as_ref()?.socket()?,
            ))
        });
        Some(Incident {
            id: incident_id(&pi.proxy, &pi.backend, log_ts(&diagnosed[0].record)),
            start,
            end,
            proxy: pi.proxy.clone(),
            backend: pi.backend.clone(),
            community_id,
            verdict,
            findings,
            nodes,
            errors: diagnosed,
            timeline,
        })
    }
}

/// A node's view of a connection, as the report shows it.
fn connection_view(v: &conn::NodeView) -> ConnectionView {
    ConnectionView {
        node: v.node.to_string(),
        conn_state: v.facts.conn_state,
        history: v.facts.history.clone(),
        handshake_seen: v.facts.handshake_seen,
        first: time(v.first_ref),
        last: time(v.last_ref),
        packets: v.pkts.len() as u64,
        capture_duplicates: v.dups.len() as u64,
    }
}

/// Stable incident id: the same proxy, backend and first error time give the
/// same id on every run (Elasticsearch `_id`).
pub fn incident_id(proxy: &str, backend: &str, first_error: Timestamp) -> String {
    let mut h = Sha1::new();
    h.update(proxy.as_bytes());
    h.update([0]);
    h.update(backend.as_bytes());
    h.update([0]);
    h.update(first_error.as_nanos().to_be_bytes());
    let d = h.finalize();
    let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("wt-{hex}")
}

/// The connection instance an error belongs to: one of the error's flow
/// whose life overlaps the log time (± precision, slack, clock uncertainty).
/// A connection that ended (FIN/RST) near the log time is preferred: Go logs
/// the error when the failure reaches it.
fn choose_conn(
    e: &ProxyError,
    query: Option<usize>,
    cands: &[ConnId],
    conns: &[Conn],
    cfg: &CorrelateConfig,
    max_unc: Duration,
) -> Option<ConnId> {
    let q = query?;
    let t = log_ts(e);
    let width = log_width(e);
    let k = error_key(e);
    let fits = |c: &Conn| {
        c.queries.contains(&q)
            && k.local
                .as_ref()
                .and_then(|l| l.port)
                .is_none_or(|p| c.tuple.0.port() == p)
            && k.remote
                .as_ref()
                .and_then(|r| r.socket())
                .is_none_or(|s| c.tuple.1 == s)
    };
    for slack in [cfg.match_slack + max_unc, cfg.max_clock_offset] {
        let (lo, hi) = (t - slack, t + width + slack);
        let best = cands
            .iter()
            .map(|&i| (i, &conns[i]))
            .filter(|(_, c)| fits(c) && c.first_ref <= hi && c.last_ref >= lo)
            .min_by_key(|(_, c)| {
                let end = c.last_ref;
                let ended_near = end >= lo && end <= hi;
                // Ended near the error: the closest end first; else the
                // latest start.
                if ended_near {
                    (false, end.abs_diff(t), Reverse(Timestamp::MIN))
                } else {
                    (true, Duration::ZERO, Reverse(c.first_ref))
                }
            })
            .map(|(i, _)| i);
        if best.is_some() {
            return best;
        }
    }
    None
}

/// Each node's packet times (reference clock), sorted: "did this node
/// capture anything in the window" without scanning every packet.
struct NodeTimes(HashMap<String, Vec<Timestamp>>);

impl NodeTimes {
    fn new(pkts: &Store) -> Self {
        let mut m: HashMap<String, Vec<Timestamp>> = HashMap::new();
        for p in pkts {
            m.entry(p.obs.node.to_string()).or_default().push(p.ref_ts);
        }
        for v in m.values_mut() {
            v.sort_unstable();
        }
        NodeTimes(m)
    }

    fn any_between(&self, node: &str, since: Timestamp, until: Timestamp) -> bool {
        self.0.get(node).is_some_and(|v| {
            let i = v.partition_point(|&t| t < since);
            i < v.len() && v[i] <= until
        })
    }
}

/// (nodes whose captures cover the window, nodes that do not).
fn coverage_split(
    nodes: &[NodeInput],
    since: Timestamp,
    until: Timestamp,
    times: &NodeTimes,
    clock: &clock::Clock,
) -> (Vec<String>, Vec<String>) {
    let mut covered = Vec::new();
    let mut uncovered = Vec::new();
    for n in nodes {
        let off = clock.skew(&n.name);
        let c = n
            .covers(since - off, until - off)
            .unwrap_or_else(|| times.any_between(&n.name, since, until));
        if c {
            covered.push(n.name.to_string());
        } else {
            uncovered.push(n.name.to_string());
        }
    }
    (covered, uncovered)
}

/// One verdict: the cause most errors share (unknown only if nothing else).
/// Its confidence is the summed confidence of those errors over all errors:
/// a mixed incident is a less certain one.
fn verdict(s: &[(Cause, f64, String)], errors: &[DiagnosedError]) -> Verdict {
    let mut by: BTreeMap<Cause, (usize, f64, &str)> = BTreeMap::new();
    for (c, conf, text) in s {
        let e = by.entry(*c).or_insert((0, 0.0, text.as_str()));
        e.0 += 1;
        e.1 += conf;
    }
    let best = by
        .iter()
        .max_by(|a, b| {
            let ka = (a.0 != &Cause::Unknown, a.1 .0);
            let kb = (b.0 != &Cause::Unknown, b.1 .0);
            ka.cmp(&kb).then(a.1 .1.total_cmp(&b.1 .1))
        })
        .map(|(c, v)| (*c, *v));
    let Some((cause, (n, sum, text))) = best else {
        return Verdict {
            cause: Cause::Unknown,
            confidence: 0.0,
            summary: "no errors".into(),
            remedy: None,
        };
    };
    let mut summary = text.to_string();
    if s.len() > 1 {
        // Several errors: say the cause once, then who was involved.
        let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
        let mut strays: BTreeMap<&str, usize> = BTreeMap::new();
        for e in errors.iter().filter(|e| e.diagnosis.cause == cause) {
            if let Some(o) = &e.diagnosis.owner_node {
                *owners.entry(o).or_default() += 1;
            }
            for st in &e.diagnosis.stray_nodes {
                *strays.entry(st).or_default() += 1;
            }
        }
        let list = |m: &BTreeMap<&str, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        summary = format!("{n} of {} errors: {}", s.len(), cause_phrase(cause));
        if !owners.is_empty() {
            summary.push_str(&format!("; owning node {}", list(&owners)));
        }
        if !strays.is_empty() {
            summary.push_str(&format!("; stray node {}", list(&strays)));
        }
        let others: Vec<String> = by
            .iter()
            .filter(|(c, _)| **c != cause)
            .map(|(c, v)| format!("{} ×{}", c.as_str(), v.0))
            .collect();
        if !others.is_empty() {
            summary.push_str(&format!(" (also: {})", others.join(", ")));
        }
    }
    Verdict {
        cause,
        confidence: (sum / s.len() as f64 * 1000.0).round() / 1000.0,
        summary,
        remedy: errors
            .iter()
            .find(|e| e.diagnosis.cause == cause)
            .and_then(|e| e.diagnosis.remedy.clone()),
    }
}

fn cause_phrase(c: Cause) -> &'static str {
    match c {
        Cause::FlowSplit => "flow split — segments of a connection reached a backend without its handshake, which answered RST",
        Cause::StrayRst => "stray RST from a node that never saw the handshake (owner not captured)",
        Cause::IdleRace => "idle race — the backend closed idle keep-alive connections just as the proxy reused them",
        Cause::BackendReset => "backend reset — the owning node reset the connection mid-request",
        Cause::Refused => "refused — the backend port answered the SYN with RST",
        Cause::ConnectTimeout => "connect timeout — SYN never answered",
        Cause::ResponseTimeout => "response timeout — request sent, no response before the proxy gave up",
        Cause::ClientCanceled => "client canceled — the client went away while the request was pending",
        Cause::MiddleboxReset => "middlebox reset — a device between proxy and backend answered RST for the backend",
        Cause::BackendStateLost => "backend state lost — the owning node lost its socket and answered a later segment with a stateless RST",
        Cause::PmtuBlackhole => "path-MTU black hole — full-size segments never reached the backend",
        Cause::AcceptQueueOverflow => "accept queue overflow — the backend never accepted a connection its kernel had completed",
        Cause::MaxRequestsClose => "max-requests close — the backend closed the connection after a fixed number of requests",
        Cause::Unknown => "unknown",
    }
}

/// How far a node's clock may be off the reference (ns): its measured
/// uncertainty, or the largest plausible offset when it was not placed.
fn uncertainty(o: &ClockOffset, cfg: &CorrelateConfig) -> Duration {
    o.uncertainty_s
        .map_or(cfg.max_clock_offset, Duration::from_secs_f64)
}

fn clock_findings(clock: &clock::Clock, used: &BTreeSet<ConnId>, conns: &[Conn]) -> Vec<Finding> {
    let nodes: BTreeSet<&str> = used
        .iter()
        .flat_map(|&ci| conns[ci].views.iter().map(|v| v.node.as_ref()))
        .collect();
    clock
        .offsets
        .iter()
        .filter(|o| nodes.contains(o.node.as_str()) && o.method != OffsetMethod::Reference)
        .map(|o| Finding {
            kind: FindingKind::ClockOffset,
            nodes: vec![o.node.clone()],
            confidence: if o.method.placed() { 0.9 } else { 0.0 },
            summary: match o.uncertainty_s {
                Some(u) => format!(
                    "{} times shifted by {:+.6} s (± {:.6} s, {}, reference {})",
                    o.node,
                    o.offset_s,
                    u,
                    match o.method {
                        OffsetMethod::SharedPackets => "from packets seen on two nodes",
                        OffsetMethod::Tsval => "from the proxy's TCP timestamps",
                        OffsetMethod::Pinned => "pinned by the pipeline",
                        OffsetMethod::Reference | OffsetMethod::Unplaced => "as given",
                    },
                    clock.reference.as_deref().unwrap_or("-")
                ),
                None => format!(
                    "{}'s clock could not be placed on the reference ({}): nothing it captured is shared with a placed node; its times are compared within ±{} s",
                    o.node,
                    clock.reference.as_deref().unwrap_or("-"),
                    "the largest plausible offset"
                ),
            },
            evidence: Vec::new(),
        })
        .collect()
}

fn timeline(
    ctx: &Ctx<'_>,
    conns: &[Conn],
    used: &BTreeSet<ConnId>,
    errors: &[DiagnosedError],
) -> Vec<TimelineEvent> {
    let mut out = Vec::new();
    for &ci in used {
        let c = &conns[ci];
        for v in &c.views {
            for &i in v.pkts.iter().chain(&v.dups) {
                let p = &ctx.pkts[i];
                let o = &p.obs;
                let (rs, ra) = match o.dir {
                    Direction::ToBackend => (c.proxy_isn, c.backend_isn),
                    Direction::ToProxy => (c.backend_isn, c.proxy_isn),
                };
                let mut marks = p.marks.clone();
                marks.sort();
                out.push(TimelineEvent {
                    t_ns: p.ref_ts,
                    origin: ctx.origin(&o.node),
                    body: EventBody::Packet(PacketEvent {
                        dir: o.dir,
                        flags: o.flags,
                        seq: o.seq.0,
                        ack: o.ack.0,
                        len: o.payload_len,
                        window: o.window,
                        tsval: o.opts.tsval,
                        tsecr: o.opts.tsecr,
                        rel_seq: rs.map(|b| o.seq.since(b)),
                        rel_ack: if o.flags.ack() {
                            ra.map(|b| o.ack.since(b))
                        } else {
                            None
                        },
                        file: p.file(),
                        frame: o.frame,
                        marks,
                    }),
                });
            }
        }
    }
    for (i, e) in errors.iter().enumerate() {
        out.push(TimelineEvent {
            t_ns: log_ts(&e.record),
            origin: Origin::Log,
            body: EventBody::Log {
                error: i,
                message: e.record.message.clone(),
            },
        });
    }
    out.sort_by(|a, b| {
        (a.t_ns, a.origin.as_str(), a.body.order_key()).cmp(&(
            b.t_ns,
            b.origin.as_str(),
            b.body.order_key(),
        ))
    });
    out
}
