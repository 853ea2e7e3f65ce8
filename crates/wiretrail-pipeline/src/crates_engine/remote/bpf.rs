//! What the host keeps of its captures: a BPF expression of the windows'
//! flows for its `tcpdump`, or the flows themselves for its `wiretrail
//! capture extract`. Either is a superset: matching is redone locally.

use super::ssh::sh_quote;
use std::net::IpAddr;
use wiretrail_capture::{FlowQuery, FlowTarget, Timestamp};

/// How close a [`bpf_filter`] is to the queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterPrecision {
    /// One term per query: the flows' packets and (nearly) nothing else.
    Exact,
    /// The exact filter was too long: backend ports (and a port range for
    /// queries naming no backend), narrowed to the proxy hosts when all
    /// queries name one. More packets, still a superset.
    Coarse,
}

/// Longest BPF expression sent (before its VLAN twin is added). libpcap
/// compiles and optimises the whole expression for every file: thousands of
/// terms make that slow and the command line long, for little gain.
pub const MAX_FILTER_LEN: usize = 2000;

/// A BPF expression that keeps every packet local extraction can match for
/// `queries` (a superset: matching is redone locally, with the windows),
/// `None` when there are no queries or even the coarse form is longer than
/// `max_len`.
pub fn bpf_filter(queries: &[FlowQuery], max_len: usize) -> Option<(String, FilterPrecision)> {
    use std::collections::BTreeSet;
    use std::fmt::Write;
    let live = queries;
    if live.is_empty() {
        return None;
    }
    // `port` matches either end, so the proxy's port needs no direction.
    let mut terms = BTreeSet::new();
    for q in live {
        let mut t = Vec::new();
        if let Some(a) = q.proxy_ip {
            t.push(format!("host {a}"));
        }
        if let Some(p) = q.proxy_port() {
            t.push(format!("port {p}"));
        }
        if let Some(b) = q.backend() {
            t.push(format!("host {}", b.ip()));
            t.push(format!("port {}", b.port()));
        }
        terms.insert(t.join(" and "));
    }
    let exact = format!(
        "tcp and ({})",
        terms
            .iter()
            .map(|t| format!("({t})"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    if exact.len() <= max_len {
        return Some((exact, FilterPrecision::Exact));
    }
    let mut ports: BTreeSet<u16> = BTreeSet::new();
    let (mut lo, mut hi) = (u16::MAX, 0u16);
    for q in live {
        match q.target {
            FlowTarget::ProxyPort {
                backend: Some(b), ..
            }
            | FlowTarget::Backend(b) => {
                ports.insert(b.port());
            }
            FlowTarget::ProxyPort {
                port,
                backend: None,
            } => {
                lo = lo.min(port);
                hi = hi.max(port);
            }
        }
    }
    let mut any = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>();
    if lo <= hi {
        any.push(format!("portrange {lo}-{hi}"));
    }
    let mut coarse = format!("tcp and ({})", any.join(" or "));
    let hosts: BTreeSet<IpAddr> = live.iter().filter_map(|q| q.proxy_ip).collect();
    if live.iter().all(|q| q.proxy_ip.is_some()) {
        let h: Vec<String> = hosts.iter().map(|h| format!("host {h}")).collect();
        let _ = write!(coarse, " and ({})", h.join(" or "));
    }
    (coarse.len() <= max_len).then_some((coarse, FilterPrecision::Coarse))
}

/// The filter as sent: also through one VLAN tag (the local decoder strips
/// tags; plain `tcp` would not see tagged frames).
pub(super) fn with_vlan(filter: &str) -> String {
    format!("({filter}) or (vlan and ({filter}))")
}

/// The remote command that filters one capture file to a pcap on stdout.
/// The file is opened by the shell (`< FILE`), not by tcpdump: AppArmor
/// profiles confine what tcpdump itself may open, and compressed files go
/// through the same `-r -`. Nanosecond precision keeps the timestamps of
/// nanosecond captures exact (libpcap scales microsecond ones up).
pub fn tcpdump_command(tcpdump: &str, path: &str, filter: &str) -> String {
    let name = path.trim_end_matches(|c: char| c.is_ascii_digit());
    let td = format!(
        "{} -r - -w - --time-stamp-precision=nano {}",
        sh_quote(tcpdump),
        sh_quote(filter)
    );
    if name.ends_with(".gz") {
        format!("gzip -dc < {} | {td}", sh_quote(path))
    } else if name.ends_with(".zst") {
        format!("zstd -dc < {} | {td}", sh_quote(path))
    } else {
        format!("{td} < {}", sh_quote(path))
    }
}

/// `wiretrail capture extract` on the host, pcapng to stdout.
pub fn remote_extract_command(
    bin: &str,
    node: &str,
    dir: &str,
    queries: &[FlowQuery],
    windows: &[(Timestamp, Timestamp)],
) -> String {
    let since = windows
        .iter()
        .map(|w| w.0)
        .min()
        .unwrap_or(Timestamp::EPOCH);
    let until = windows
        .iter()
        .map(|w| w.1)
        .max()
        .unwrap_or(Timestamp::EPOCH);
    let secs = |t: Timestamp| {
        let (s, ns) = t.as_secs_nanos();
        format!("{s}.{ns:09}")
    };
    let mut cmd = format!(
        "{} capture extract --node {}",
        sh_quote(bin),
        sh_quote(&format!("{node}={dir}"))
    );
    let mut seen = std::collections::BTreeSet::new();
    for q in queries {
        // `FlowQuery`'s display is the remote CLI's `--flow` form
        // (`IP:PORT-B:P`, `IP:*-B:P` for a wildcard).
        let arg = match (q.proxy_ip, q.backend(), q.target) {
            (Some(_), Some(_), _) => format!("--flow {}", sh_quote(&q.to_string())),
            (_, _, FlowTarget::ProxyPort { port, .. }) => format!("--port {port}"),
            (_, _, FlowTarget::Backend(b)) => format!("--backend {}", sh_quote(&b.to_string())),
        };
        if seen.insert(arg.clone()) {
            cmd.push(' ');
            cmd.push_str(&arg);
        }
    }
    cmd.push_str(&format!(
        " --since {} --until {} -w -",
        secs(since),
        secs(until)
    ));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: i64) -> Timestamp {
        Timestamp::from_nanos(ns)
    }

    fn fq(port: Option<u16>, ip: Option<&str>, backend: Option<&str>) -> FlowQuery {
        let ip = ip.map(|i| i.parse().unwrap());
        let backend = backend.map(|b| b.parse().unwrap());
        match port {
            Some(p) => FlowQuery::to_port(p, ip, backend, t(0), t(1)),
            None => FlowQuery::to_backend(ip, backend.unwrap(), t(0), t(1)),
        }
    }

    #[test]
    fn filters_are_exact_then_coarse_then_absent() {
        let qs = [
            fq(Some(51392), Some("10.1.1.5"), Some("10.0.0.100:80")),
            fq(Some(51392), Some("10.1.1.5"), Some("10.0.0.100:80")),
            fq(None, Some("10.1.1.5"), Some("10.0.0.100:8080")),
            fq(Some(40000), None, None),
        ];
        let (f, p) = bpf_filter(&qs, MAX_FILTER_LEN).unwrap();
        assert_eq!(p, FilterPrecision::Exact);
        assert_eq!(
            f,
            "tcp and ((host 10.1.1.5 and host 10.0.0.100 and port 8080) or \
             (host 10.1.1.5 and port 51392 and host 10.0.0.100 and port 80) or (port 40000))"
        );
        // Too long: backend ports plus a range over the bare proxy ports.
        let (f, p) = bpf_filter(&qs, 60).unwrap();
        assert_eq!(p, FilterPrecision::Coarse);
        assert_eq!(f, "tcp and (port 80 or port 8080 or portrange 40000-40000)");
        // All queries name the proxy: narrowed to it.
        let many: Vec<FlowQuery> = (0..500)
            .map(|i| fq(Some(30000 + i), Some("10.1.1.5"), Some("10.0.0.100:80")))
            .collect();
        let (f, p) = bpf_filter(&many, MAX_FILTER_LEN).unwrap();
        assert_eq!(p, FilterPrecision::Coarse);
        assert_eq!(f, "tcp and (port 80) and (host 10.1.1.5)");
        assert!(bpf_filter(&many, 10).is_none());
        assert!(bpf_filter(&[], MAX_FILTER_LEN).is_none());
        assert_eq!(
            with_vlan("tcp"),
            "(tcp) or (vlan and (tcp))",
            "tagged frames too"
        );
    }

    #[test]
    fn tcpdump_commands() {
        assert_eq!(
            tcpdump_command("/usr/bin/tcpdump", "/d/c.pcap", "tcp"),
            "'/usr/bin/tcpdump' -r - -w - --time-stamp-precision=nano 'tcp' < '/d/c.pcap'"
        );
        assert!(tcpdump_command("td", "/d/c.pcap.gz", "tcp")
            .starts_with("gzip -dc < '/d/c.pcap.gz' | "));
        assert!(tcpdump_command("td", "/d/c.pcap.zst2", "tcp").starts_with("zstd -dc < "));
    }
}
