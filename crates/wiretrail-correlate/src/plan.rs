//! Phase 1: group errors into incidents and say which flows extraction must
//! pull from the captures.
//!
//! Runs before any capture is read, so it only knows the log lines: windows
//! are widened by the largest plausible clock offset. An error whose line
//! names no proxy port (dial errors, header timeouts, canceled contexts,
//! bare EOF) is joined *by time*: a wildcard query takes every connection
//! from the proxy to the backend socket within the log's precision plus the
//! clock slack, and correlation picks the one whose packets tell the
//! error's story. The backend comes from the line, else from the other
//! lines of the same proxy host or from configuration
//! ([`crate::config::ProxyHint`]); the proxy's address likewise. Errors with
//! nothing to join on are listed as unjoinable, not dropped.

use crate::addr::{parse_endpoint, Endpoint};
use crate::config::CorrelateConfig;
use crate::config::ProxyHint;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};
use wiretrail_logs::ProxyError;

/// One error of those given to [`plan`]: its position in that slice (and
/// in [`Plan::joins`]), typed so that it cannot be taken for a query's,
/// a connection's or a packet's index. Indexes `[ProxyError]` directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorId(u32);

impl ErrorId {
    /// The `i`-th error. Inputs are capped far below 2^32 errors (the
    /// per-window error limit; each is a parsed log line in memory).
    pub fn at(i: usize) -> ErrorId {
        ErrorId(u32::try_from(i).expect("more than 2^32 proxy errors"))
    }
    /// Every id of `n` errors, in input order.
    pub fn all(n: usize) -> impl Iterator<Item = ErrorId> {
        (0..n).map(ErrorId::at)
    }
    /// The position in the input (for the report's `Error { index }`).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// `errors[id]`, `keys[id]`, `joins[id]`: the slices and vectors that hold
/// one entry per error, and those only.
macro_rules! index_by_error {
    ($($t:ty),+) => {$(
        impl std::ops::Index<ErrorId> for [$t] {
            type Output = $t;
            fn index(&self, i: ErrorId) -> &$t {
                &self[i.index()]
            }
        }
        impl std::ops::IndexMut<ErrorId> for [$t] {
            fn index_mut(&mut self, i: ErrorId) -> &mut $t {
                &mut self[i.index()]
            }
        }
        impl std::ops::Index<ErrorId> for Vec<$t> {
            type Output = $t;
            fn index(&self, i: ErrorId) -> &$t {
                &self[i.index()]
            }
        }
        impl std::ops::IndexMut<ErrorId> for Vec<$t> {
            fn index_mut(&mut self, i: ErrorId) -> &mut $t {
                &mut self[i.index()]
            }
        }
    )+};
}

index_by_error!(ProxyError, ErrorKey, ErrorJoin, Option<ErrorJoin>);

/// Errors of one proxy and backend, close in time.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedIncident {
    /// Indices into the errors given to [`plan`], in time order.
    pub error_indices: Vec<ErrorId>,
    /// The flows of this incident (copies of entries of [`Plan::queries`]).
    pub queries: Vec<FlowQuery>,
    /// Where those flows are in [`Plan::queries`].
    pub query_indices: Vec<usize>,
    /// Window covered by the incident's queries (ns, node clocks, widened).
    pub since: Timestamp,
    pub until: Timestamp,
    /// The proxy (log host, else its address as printed).
    pub proxy: String,
    /// The backend as the log printed it (`ip-backend:80`).
    pub backend: String,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub incidents: Vec<PlannedIncident>,
    /// Deduplicated: what extraction gets. `PacketObs::query` indexes this.
    pub queries: Vec<FlowQuery>,
    /// Per error (same index as the input): how it is joined to packets,
    /// exactly one way.
    pub joins: Vec<ErrorJoin>,
}

/// How one error is joined to the packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorJoin {
    /// The line names the proxy's port: the connections of this query
    /// (an index into [`Plan::queries`]).
    ByPort { query: usize },
    /// The line names no port: every connection of these wildcard queries,
    /// one per backend socket the error may have dialled, is a candidate,
    /// and correlation picks the one whose packets tell the error's story.
    ByTime { queries: Vec<usize> },
    /// Nothing to join on (no port, no backend, from the line, the proxy's
    /// other lines or the configuration): diagnosed from the log alone,
    /// still a member of its incident. `why` says so.
    Unjoinable { why: String },
}

impl ErrorJoin {
    /// The queries whose packets may hold this error's connection.
    pub fn queries(&self) -> &[usize] {
        match self {
            ErrorJoin::ByPort { query } => std::slice::from_ref(query),
            ErrorJoin::ByTime { queries } => queries,
            ErrorJoin::Unjoinable { .. } => &[],
        }
    }
}

/// The fields of one error that planning and correlation both need.
#[derive(Debug, Clone)]
pub(crate) struct ErrorKey {
    pub ts: Timestamp,
    pub width: Duration,
    pub proxy: String,
    pub backend: String,
    pub local: Option<Endpoint>,
    pub remote: Option<Endpoint>,
}

pub(crate) fn error_key(e: &ProxyError) -> ErrorKey {
    let local = e.local.as_deref().and_then(parse_endpoint);
    let remote = e.remote.as_deref().and_then(parse_endpoint);
    let proxy = match (&e.host, &local) {
        (Some(h), _) => h.clone(),
        (None, Some(l)) => match &l.host {
            crate::addr::Host::Ip(ip) => ip.to_string(),
            crate::addr::Host::Name(n) => n.clone(),
        },
        (None, None) => "unknown-proxy".to_string(),
    };
    let backend = e.remote.clone().unwrap_or_else(|| "unknown-backend".into());
    ErrorKey {
        ts: log_ts(e),
        width: log_width(e),
        proxy,
        backend,
        local,
        remote,
    }
}

/// A log line's time as an instant (the epoch for one outside 1677..2262,
/// which no log source writes).
pub(crate) fn log_ts(e: &ProxyError) -> Timestamp {
    Timestamp::from_utc(e.timestamp).unwrap_or(Timestamp::EPOCH)
}

/// How long a log line's time stands for (its precision: 1 s for a Go
/// `log` line without microseconds).
pub(crate) fn log_width(e: &ProxyError) -> Duration {
    Duration::from_nanos(u64::try_from(e.time_precision.width_ns()).unwrap_or(0))
}

/// Groups errors into incidents and lists the flows to extract.
pub fn plan(errors: &[ProxyError], cfg: &CorrelateConfig) -> Plan {
    let keys: Vec<ErrorKey> = errors.iter().map(error_key).collect();
    let slack = cfg.max_clock_offset;
    let before = cfg.before;
    let after = cfg.after;
    let gap = cfg.incident_gap;

    let mut plan = Plan::default();
    // Every error is joined below (its slot set once, in time order).
    let mut joins: Vec<Option<ErrorJoin>> = vec![None; errors.len()];

    // Queries: one per (port, proxy ip, backend socket), windows merged
    // when they overlap, so a busy port is read once.
    let mut order: Vec<ErrorId> = ErrorId::all(errors.len()).collect();
    order.sort_by_key(|&i| (keys[i].ts, i));
    type Key = (Option<u16>, Option<IpAddr>, Option<SocketAddr>);
    let mut open: BTreeMap<Key, usize> = BTreeMap::new();
    let hosts = HostFacts::new(&keys, cfg);
    let wide = slack + cfg.match_slack;
    for &i in &order {
        let k = &keys[i];
        let Some(port) = k.local.as_ref().and_then(|l| l.port) else {
            // No proxy port: join by time, over every connection of the
            // proxy to the backend within the log's precision.
            let backends = hosts.backends(k);
            if backends.is_empty() {
                joins[i] = Some(ErrorJoin::Unjoinable {
                    why: format!(
                        "the log line names no proxy port and no backend (Go prints neither for header timeouts, canceled contexts, bare EOF), and neither other lines of {} nor the configuration name its upstream: diagnosed from the log alone",
                        k.proxy
                    ),
                });
                continue;
            }
            let ip = k
                .local
                .as_ref()
                .and_then(Endpoint::ip)
                .or_else(|| hosts.ip(k));
            // The story of a port-less line starts before it: SYNs a whole dial
            // timeout earlier, a request a whole header timeout earlier.
            let (since, until) = (k.ts - wide - cfg.story_lookback, k.ts + k.width + wide);
            let mut qs = Vec::new();
            for b in backends {
                let key = (None, ip, Some(b));
                let q = match open.get(&key) {
                    Some(&q) if plan.queries[q].until >= since => {
                        let fq = &mut plan.queries[q];
                        fq.until = fq.until.max(until);
                        q
                    }
                    _ => {
                        plan.queries
                            .push(FlowQuery::to_backend(ip, b, since, until));
                        let q = plan.queries.len() - 1;
                        open.insert(key, q);
                        q
                    }
                };
                qs.push(q);
            }
            joins[i] = Some(ErrorJoin::ByTime { queries: qs });
            continue;
        };
        let local = k.local.as_ref().expect("has a port");
        let backend = k.remote.as_ref().and_then(Endpoint::socket);
        let since = k.ts - before - slack;
        let until = k.ts + k.width + after + slack;
        let key = (Some(port), local.ip(), backend);
        match open.get(&key) {
            Some(&q) if plan.queries[q].until >= since => {
                let fq = &mut plan.queries[q];
                fq.until = fq.until.max(until);
                joins[i] = Some(ErrorJoin::ByPort { query: q });
            }
            _ => {
                plan.queries
                    .push(FlowQuery::to_port(port, local.ip(), backend, since, until));
                let q = plan.queries.len() - 1;
                open.insert(key, q);
                joins[i] = Some(ErrorJoin::ByPort { query: q });
            }
        }
    }
    plan.joins = joins
        .into_iter()
        .map(|j| j.expect("every error is joined one way above"))
        .collect();

    // Incidents: same proxy and backend, consecutive errors within `gap`.
    let mut by_pair: BTreeMap<(String, String), Vec<ErrorId>> = BTreeMap::new();
    for &i in &order {
        by_pair
            .entry((keys[i].proxy.clone(), keys[i].backend.clone()))
            .or_default()
            .push(i);
    }
    for ((proxy, backend), idx) in by_pair {
        let mut cur: Vec<ErrorId> = Vec::new();
        for i in idx {
            if let Some(&last) = cur.last() {
                if keys[i].ts.saturating_duration_since(keys[last].ts) > gap {
                    let done = std::mem::take(&mut cur);
                    plan.incidents
                        .push(planned(&plan, &keys, done, &proxy, &backend, cfg));
                }
            }
            cur.push(i);
        }
        if !cur.is_empty() {
            plan.incidents
                .push(planned(&plan, &keys, cur, &proxy, &backend, cfg));
        }
    }
    plan.incidents
        .sort_by_key(|inc| (keys[inc.error_indices[0]].ts, inc.error_indices[0]));
    plan
}

/// What the lines of each proxy host, and the configuration, say about its
/// address and its upstreams.
struct HostFacts<'a> {
    ips: BTreeMap<&'a str, BTreeSet<IpAddr>>,
    backends: BTreeMap<&'a str, BTreeSet<SocketAddr>>,
    hints: &'a [ProxyHint],
}

impl<'a> HostFacts<'a> {
    fn new(keys: &'a [ErrorKey], cfg: &'a CorrelateConfig) -> Self {
        let mut ips: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
        let mut backends: BTreeMap<&str, BTreeSet<SocketAddr>> = BTreeMap::new();
        for k in keys {
            if let Some(ip) = k.local.as_ref().and_then(Endpoint::ip) {
                ips.entry(k.proxy.as_str()).or_default().insert(ip);
            }
            if let Some(b) = k.remote.as_ref().and_then(Endpoint::socket) {
                backends.entry(k.proxy.as_str()).or_default().insert(b);
            }
        }
        HostFacts {
            ips,
            backends,
            hints: &cfg.proxies,
        }
    }

    fn hints(&self, k: &ErrorKey) -> impl Iterator<Item = &'a ProxyHint> + '_ {
        let host = k.proxy.clone();
        self.hints
            .iter()
            .filter(move |h| h.host.as_deref().is_none_or(|x| x == host))
    }

    /// The backend sockets the error may concern: its own, else every one
    /// the proxy's other lines or the configuration name.
    fn backends(&self, k: &ErrorKey) -> Vec<SocketAddr> {
        if let Some(b) = k.remote.as_ref().and_then(Endpoint::socket) {
            return vec![b];
        }
        let mut out: BTreeSet<SocketAddr> = self
            .backends
            .get(k.proxy.as_str())
            .cloned()
            .unwrap_or_default();
        out.extend(self.hints(k).flat_map(|h| h.upstreams.iter().copied()));
        out.into_iter().collect()
    }

    /// The proxy's address, when its other lines agree on one, else from
    /// the configuration. Two addresses: none (the wildcard stays open).
    fn ip(&self, k: &ErrorKey) -> Option<IpAddr> {
        match self.ips.get(k.proxy.as_str()) {
            Some(s) if s.len() == 1 => s.first().copied(),
            Some(_) => None,
            None => {
                let from_cfg: BTreeSet<IpAddr> = self.hints(k).filter_map(|h| h.ip).collect();
                (from_cfg.len() == 1).then(|| *from_cfg.first().expect("one"))
            }
        }
    }
}

fn planned(
    plan: &Plan,
    keys: &[ErrorKey],
    error_indices: Vec<ErrorId>,
    proxy: &str,
    backend: &str,
    cfg: &CorrelateConfig,
) -> PlannedIncident {
    let mut query_indices: Vec<usize> = error_indices
        .iter()
        .flat_map(|&i| plan.joins[i].queries().iter().copied())
        .collect();
    query_indices.sort_unstable();
    query_indices.dedup();
    let slack = cfg.max_clock_offset;
    let first = keys[error_indices[0]].ts;
    let last = error_indices
        .iter()
        .map(|&i| keys[i].ts + keys[i].width)
        .max()
        .unwrap_or(first);
    PlannedIncident {
        queries: query_indices
            .iter()
            .map(|&q| plan.queries[q].clone())
            .collect(),
        query_indices,
        since: first - cfg.before - slack,
        until: last + cfg.after + slack,
        proxy: proxy.to_string(),
        backend: backend.to_string(),
        error_indices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_ids_index_the_per_error_slices_in_input_order() {
        // A Vec, as `Plan::joins` is (and its slice below).
        let joins: Vec<ErrorJoin> = [
            ErrorJoin::ByPort { query: 0 },
            ErrorJoin::Unjoinable {
                why: "no port".into(),
            },
        ]
        .into();
        let ids: Vec<ErrorId> = ErrorId::all(joins.len()).collect();
        assert_eq!(ids, [ErrorId::at(0), ErrorId::at(1)]);
        assert!(ids[0] < ids[1]);
        assert_eq!(joins[ids[0]], ErrorJoin::ByPort { query: 0 });
        assert_eq!(joins[..][ids[1]].queries(), &[] as &[usize]);
        assert_eq!(ids[1].index(), 1);
    }
}
