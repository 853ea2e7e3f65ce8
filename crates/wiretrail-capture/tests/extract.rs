//! Extraction on real captures against the tshark oracle: every packet of
//! every queried flow, in one pass, across rotations (plain, gzip, zstd),
//! with window seeks that must never lose a packet.

mod rotations;

use rotations::*;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Detail, Known, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions, ProgressEvent};
use wiretrail_capture::problem::ProblemKind;
use wiretrail_capture::{Direction, Duration, FlowQuery, Timestamp};

/// A window wide enough for any capture, far from the types' ends.
const MIN_HALF: Timestamp = Timestamp::from_nanos(i64::MIN / 2);
const MAX_HALF: Timestamp = Timestamp::from_nanos(i64::MAX / 2);

/// Captures whose TCP rows a non-reassembling, non-tunnel decoder cannot
/// produce (fragments, GRE, 802.11): covered by the reader's own tests.
const EXCLUDED: &[&str] = &[
    "arkime-80211-radiotap-http.pcap",
    "arkime-socks5-http-ipfrag.pcap",
    "zeek-ipv4-fragmented-4.pcap",
    "sv-raw229-ipv6-frag-tcp.pcap",
    "zeek-gre-sample.pcap",
];

/// One TCP row of `NAME.tcp.tsv`.
#[derive(Debug, Clone)]
struct Row {
    frame: u64,
    ts: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u16,
    seq: u32,
    ack: u32,
    len: u32,
}

fn rows(capture: &str) -> Vec<Row> {
    tsv(&oracle(&format!("{capture}.tcp.tsv")))
        .iter()
        .map(|r| {
            let ip = |k: &str| r[k].parse::<IpAddr>().unwrap();
            let port = |k: &str| r[k].parse::<u16>().unwrap();
            Row {
                frame: r["frame.number"].parse().unwrap(),
                ts: epoch_ns(&r["frame.time_epoch"]),
                src: SocketAddr::new(ip("src"), port("tcp.srcport")),
                dst: SocketAddr::new(ip("dst"), port("tcp.dstport")),
                flags: u16::from_str_radix(r["tcp.flags"].trim_start_matches("0x"), 16).unwrap(),
                seq: r["tcp.seq_raw"].parse().unwrap(),
                ack: r["tcp.ack_raw"].parse().unwrap(),
                len: r["tcp.len"].parse().unwrap_or(0),
            }
        })
        .collect()
}

/// One exact 4-tuple query per distinct connection in `flows.tsv`, the
/// stream's first packet's source taken as the proxy side.
fn tuple_queries(capture: &str, since: Timestamp, until: Timestamp) -> Vec<FlowQuery> {
    let mut seen = std::collections::HashSet::new();
    tsv(&oracle(&format!("{capture}.flows.tsv")))
        .iter()
        .filter_map(|r| {
            let p = SocketAddr::new(r["src"].parse().unwrap(), r["srcport"].parse().unwrap());
            let b = SocketAddr::new(r["dst"].parse().unwrap(), r["dstport"].parse().unwrap());
            let key = if p < b { (p, b) } else { (b, p) };
            seen.insert(key).then_some(FlowQuery::to_port(
                p.port(),
                Some(p.ip()),
                Some(b),
                since,
                until,
            ))
        })
        .collect()
}

fn matches_query(q: &FlowQuery, r: &Row) -> Option<Direction> {
    let b = q.backend().unwrap();
    let p = SocketAddr::new(q.proxy_ip.unwrap(), q.proxy_port().unwrap());
    if r.ts < q.since || r.ts > q.until {
        None
    } else if r.src == p && r.dst == b {
        Some(Direction::ToBackend)
    } else if r.src == b && r.dst == p {
        Some(Direction::ToProxy)
    } else {
        None
    }
}

/// The catalog of the loopback rotations written under `root` (node `lo`,
/// its cache beside them).
fn lo_catalog(root: &Path) -> Catalog {
    let lo = lo_rotations(root);
    let opts = CatalogOptions {
        cache_dir: Some(root.join("cache")),
        ..CatalogOptions::default()
    };
    Catalog::build_with(&[single("lo", &lo)], &opts).unwrap()
}

fn single(name: &str, path: &Path) -> NodeSpec {
    NodeSpec::new(name, [path.to_str().unwrap()])
}

/// Extracts `queries` from one corpus file (catalogued with `index_every`,
/// read in pieces of at least `piece_bytes`) and checks every observation
/// against the oracle rows, and that no oracle row is missing. Returns the
/// extraction's bytes read and the number of oracle packets.
fn check_file(
    capture_name: &str,
    index_every: u64,
    piece_bytes: u64,
    window: impl Fn(Timestamp, Timestamp) -> (Timestamp, Timestamp),
) -> (u64, u64) {
    let cache = tempfile::tempdir().unwrap();
    let opts = CatalogOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        index_every,
        ..CatalogOptions::default()
    };
    let nodes = [single("n", &capture(capture_name))];
    let spans = Catalog::build_with(&nodes, &opts).unwrap();
    let file = &spans.nodes()[0].files[0];
    let (first, last) = file.span().unwrap();
    let (since, until) = window(first, last);
    let queries = tuple_queries(capture_name, since, until);
    // The catalog an extraction uses: spans probed, the window's files indexed.
    let cat = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            detail: Detail::for_queries(&queries, Duration::ZERO),
            ..opts
        },
    )
    .unwrap();
    assert_eq!(cat.nodes()[0].files[0].known, Known::Scanned);
    let ex = extract(
        &cat,
        &queries,
        &ExtractOptions {
            piece_bytes,
            ..ExtractOptions::default()
        },
    );
    // The only problem a clean capture may give: TCP headers the snaplen
    // cut (D17), said once per file, and exactly when such packets exist.
    let cut = ex.packets.iter().filter(|o| o.opts.cut).count() as u64;
    assert_eq!(ex.stats[0].header_cut, cut, "{capture_name}");
    let cut_problems: Vec<_> = ex
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Undecodable && p.message.contains("snaplen cut"))
        .collect();
    assert_eq!(
        cut_problems.len(),
        usize::from(cut > 0),
        "{capture_name}: {:?}",
        ex.problems
    );
    assert_eq!(
        cut_problems.len(),
        ex.problems.len(),
        "{capture_name}: {:?}",
        ex.problems
    );

    let oracle = rows(capture_name);
    let mut want: BTreeMap<(usize, u64), (Direction, &Row)> = BTreeMap::new();
    for (qi, q) in queries.iter().enumerate() {
        for r in &oracle {
            if let Some(d) = matches_query(q, r) {
                want.insert((qi, r.frame), (d, r));
            }
        }
    }
    let mut got = BTreeMap::new();
    for o in &ex.packets {
        for &q in &o.queries {
            assert!(
                got.insert((q, o.frame), o).is_none(),
                "{capture_name}: frame {} twice for one query",
                o.frame
            );
        }
    }
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{capture_name}: missing {missing:?} extra {extra:?}"
    );
    for (k, (dir, r)) in &want {
        let o = got[k];
        assert_eq!(
            (o.ts, o.src, o.dst, o.dir),
            (r.ts, r.src, r.dst, *dir),
            "{capture_name} frame {}",
            r.frame
        );
        assert_eq!(
            (o.flags.0 & 0x1ff, o.seq.0, o.ack.0, o.payload_len),
            (r.flags & 0x1ff, r.seq, r.ack, r.len),
            "{capture_name} frame {}",
            r.frame
        );
        assert!(!o.data.is_empty());
    }
    // Sorted by time, then frame, within the one node.
    assert!(ex
        .packets
        .windows(2)
        .all(|w| (w[0].ts, w[0].frame) <= (w[1].ts, w[1].frame)));
    (ex.stats[0].bytes_read, want.len() as u64)
}

fn clean_captures() -> Vec<String> {
    let mut v: Vec<String> = tsv(&oracle("summary.tsv"))
        .into_iter()
        .filter(|r| r["tcp_packets"] != "0" && !EXCLUDED.contains(&r["file"].as_str()))
        .map(|r| r["file"].clone())
        .collect();
    v.sort();
    v
}

#[test]
fn every_flow_of_every_capture_matches_the_oracle() {
    let mut total = 0;
    for name in clean_captures() {
        let (_, n) = check_file(&name, 4 << 20, 64 << 20, |a, b| (a, b));
        total += n;
    }
    assert!(total > 4000, "{total} oracle packets checked");
}

#[test]
fn window_seeks_lose_nothing() {
    // A dense index (every 2 KiB) and the middle third of each file: the
    // seek and the early stop must return exactly the oracle's packets,
    // also in files whose timestamps are not in order (merged interfaces).
    for name in clean_captures() {
        check_file(&name, 2048, 64 << 20, |a, b| {
            (a + b.abs_diff(a) / 3, b - b.abs_diff(a) / 3)
        });
    }
}

#[test]
fn pieces_read_in_parallel_lose_and_repeat_nothing() {
    // Cut every file at each index point (every 2 KiB): threads read the
    // pieces, each record once, whole file and window alike.
    for name in clean_captures() {
        check_file(&name, 2048, 1, |a, b| (a, b));
        check_file(&name, 2048, 1, |a, b| {
            (a + b.abs_diff(a) / 4, b - b.abs_diff(a) / 4)
        });
    }
}

#[test]
fn a_narrow_window_reads_a_small_part_of_the_file() {
    let name = "zeek-irc-dcc-send.pcapng";
    let size = std::fs::metadata(capture(name)).unwrap().len();
    let (full, _) = check_file(name, 16 << 10, 64 << 20, |a, b| (a, b));
    // The DCC transfer is a burst of ~1000 packets in one second: take 5%
    // of the packets from its middle.
    let frames = tsv(&oracle(&format!("{name}.frames.tsv")));
    let (since, until) = (
        epoch_ns(&frames[500]["frame.time_epoch"]),
        epoch_ns(&frames[560]["frame.time_epoch"]),
    );
    let (narrow, n) = check_file(name, 16 << 10, 64 << 20, |_, _| (since, until));
    assert!(n > 0, "the window holds packets");
    assert!(full >= size * 9 / 10, "full {full} of {size}");
    assert!(
        narrow < size / 4,
        "a window of 5% of the packets read {narrow} of {size} bytes"
    );
}

#[test]
fn rotations_and_nodes_in_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let lo = lo_rotations(tmp.path());
    let opts = CatalogOptions {
        cache_dir: Some(tmp.path().join("cache")),
        ..CatalogOptions::default()
    };
    let nodes = [
        single("lo", &lo),
        single("dumpcap", &capture("gen-dumpcap-lo-any.pcapng.zst")),
    ];
    let cat = Catalog::build_with(&nodes, &opts).unwrap();
    let flows = tsv(&oracle("gen-lo-nano.pcap.flows.tsv"));
    let queries = tuple_queries("gen-lo-nano.pcap", MIN_HALF, MAX_HALF);
    assert_eq!(queries.len(), flows.len(), "no port reuse in this capture");

    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let xo = ExtractOptions {
        threads: Some(2),
        progress: Some(Arc::new(move |e| ev.lock().unwrap().push(e))),
        ..ExtractOptions::default()
    };
    let ex = extract(&cat, &queries, &xo);
    assert!(ex.problems.is_empty(), "{:?}", ex.problems);

    // Per stream: the lo node (4 rotations) has exactly the oracle's
    // packets; dumpcap recorded each packet on two interfaces.
    let mut per: HashMap<(&str, usize), u64> = HashMap::new();
    for o in &ex.packets {
        for &q in &o.queries {
            *per.entry((&*o.node, q)).or_default() += 1;
        }
    }
    for (qi, f) in flows.iter().enumerate() {
        let want: u64 = f["packets"].parse().unwrap();
        assert_eq!(
            per.get(&("lo", qi)).copied().unwrap_or(0),
            want,
            "lo stream {qi}"
        );
        assert_eq!(
            per.get(&("dumpcap", qi)).copied().unwrap_or(0),
            2 * want,
            "dumpcap stream {qi}"
        );
    }
    // Each file read once, all rotations read.
    assert_eq!(
        (
            ex.stats[0].node.as_str(),
            ex.stats[0].files_read,
            ex.stats[0].packets_scanned
        ),
        ("lo", 4, 160)
    );
    assert_eq!(
        (
            ex.stats[1].node.as_str(),
            ex.stats[1].files_read,
            ex.stats[1].packets_scanned
        ),
        ("dumpcap", 1, 320)
    );
    // Sorted by node, then time.
    let split = ex
        .packets
        .iter()
        .position(|o| &*o.node == "dumpcap")
        .unwrap();
    assert!(ex.packets[..split].iter().all(|o| &*o.node == "lo"));
    assert!(ex.packets[split..].iter().all(|o| &*o.node == "dumpcap"));
    assert!(ex.packets[..split].windows(2).all(|w| w[0].ts <= w[1].ts));
    // Frames are numbered within each rotation.
    let files: std::collections::BTreeSet<_> =
        ex.packets[..split].iter().map(|o| o.file.clone()).collect();
    assert_eq!(files.len(), 4);

    let events = events.lock().unwrap();
    assert!(
        matches!(events[0], ProgressEvent::Planned { files: 5, .. }),
        "{:?}",
        events[0]
    );
    let finished = events
        .iter()
        .filter(|e| matches!(e, ProgressEvent::FileFinished { .. }))
        .count();
    assert_eq!(finished, 5);
}

#[test]
fn a_frame_matched_by_overlapping_queries_is_one_observation() {
    // Two errors on one connection give two queries with overlapping
    // windows: each frame comes once, naming both, its bytes held once.
    let tmp = tempfile::tempdir().unwrap();
    let cat = lo_catalog(tmp.path());
    let q = FlowQuery::to_port(18080, None, None, MIN_HALF, MAX_HALF);
    let one = extract(&cat, std::slice::from_ref(&q), &ExtractOptions::default());
    let two = extract(&cat, &[q.clone(), q], &ExtractOptions::default());
    assert!(!one.packets.is_empty());
    assert_eq!(two.packets.len(), one.packets.len());
    assert!(two.packets.iter().all(|o| o.queries == [0, 1]));
    let copy = two.packets[0].clone();
    assert!(std::sync::Arc::ptr_eq(&copy.data, &two.packets[0].data));
}

#[test]
fn port_queries_and_disjoint_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let cat = lo_catalog(tmp.path());
    let oracle = rows("gen-lo-nano.pcap");
    // Port 18080 is the server side: as a "proxy port" query it matches
    // every IPv4 HTTP packet with the direction as seen from port 18080.
    let q = FlowQuery::to_port(18080, None, None, MIN_HALF, MAX_HALF);
    // A query whose window misses the capture entirely.
    let empty = FlowQuery {
        since: Timestamp::EPOCH,
        until: Timestamp::from_nanos(1_000),
        ..q.clone()
    };
    let ex = extract(&cat, &[q, empty], &ExtractOptions::default());
    let want = oracle
        .iter()
        .filter(|r| r.src.port() == 18080 || r.dst.port() == 18080)
        .count();
    assert_eq!(ex.packets.len(), want);
    assert!(ex.packets.iter().all(|o| o.queries == [0]));
    assert!(ex
        .packets
        .iter()
        .all(|o| (o.dir == Direction::ToBackend) == (o.src.port() == 18080)));
    // No file overlaps 1970: nothing is read for the second query alone.
    let ex = extract(
        &cat,
        &[FlowQuery::to_port(
            18080,
            None,
            None,
            Timestamp::EPOCH,
            Timestamp::from_nanos(1_000),
        )],
        &ExtractOptions::default(),
    );
    assert!(ex.packets.is_empty());
    assert_eq!((ex.stats[0].files_read, ex.stats[0].bytes_read), (0, 0));
}

#[test]
fn wildcard_query_takes_every_connection_to_the_backend_in_its_window() {
    // As for a dial error: the proxy's port is unknown, the backend socket
    // and the time are. Every connection to the server socket within the
    // window, both directions, nothing else, across the rotations.
    let tmp = tempfile::tempdir().unwrap();
    let cat = lo_catalog(tmp.path());
    let oracle = rows("gen-lo-nano.pcap");
    let server = oracle
        .iter()
        .find(|r| r.dst.port() == 18080)
        .expect("an HTTP request in the capture")
        .dst;
    // From just after the server's first packet to its last: the window's
    // edge cuts one packet off, and other servers' flows run alongside.
    let mine: Vec<Timestamp> = oracle
        .iter()
        .filter(|r| r.src == server || r.dst == server)
        .map(|r| r.ts)
        .collect();
    let (since, until) = (mine[0] + Duration::NANOSECOND, mine[mine.len() - 1]);
    let client_ips: std::collections::BTreeSet<IpAddr> = oracle
        .iter()
        .filter(|r| r.dst == server)
        .map(|r| r.src.ip())
        .collect();
    let client = *client_ips.iter().next().unwrap();
    let any = FlowQuery::to_backend(None, server, since, until);
    let narrowed = FlowQuery::to_backend(Some(client), server, since, until);
    assert!(any.is_wildcard());
    assert_eq!(narrowed.to_string(), format!("{client}:*-{server}"));
    let ex = extract(&cat, &[any, narrowed], &ExtractOptions::default());
    assert!(ex.problems.is_empty(), "{:?}", ex.problems);
    for (qi, from) in [(0usize, None), (1, Some(client))] {
        let want: Vec<(u64, Direction)> = oracle
            .iter()
            .filter(|r| r.ts >= since && r.ts <= until)
            .filter_map(|r| {
                if r.dst == server && from.is_none_or(|ip| r.src.ip() == ip) {
                    Some((r.frame, Direction::ToBackend))
                } else if r.src == server && from.is_none_or(|ip| r.dst.ip() == ip) {
                    Some((r.frame, Direction::ToProxy))
                } else {
                    None
                }
            })
            .collect();
        let got: Vec<(u64, Direction)> = ex
            .packets
            .iter()
            .filter(|o| o.matched(qi))
            .map(|o| {
                // Rotated files restart frame numbers: map back by time.
                let r = oracle
                    .iter()
                    .find(|r| r.ts == o.ts && r.src == o.src && r.dst == o.dst && r.seq == o.seq.0)
                    .unwrap_or_else(|| panic!("{o:?} is not in the oracle"));
                (r.frame, o.dir)
            })
            .collect();
        assert!(!want.is_empty());
        let key = |v: &[(u64, Direction)]| {
            let mut k: Vec<(u64, bool)> = v
                .iter()
                .map(|&(f, d)| (f, d == Direction::ToBackend))
                .collect();
            k.sort();
            k
        };
        let (got_sorted, want_sorted) = (key(&got), key(&want));
        assert_eq!(got_sorted, want_sorted, "query {qi}");
        // Several connections: the ports of the proxy side differ.
        let ports: std::collections::BTreeSet<u16> = ex
            .packets
            .iter()
            .filter(|o| o.matched(qi))
            .map(|o| o.proxy_backend().0.port())
            .collect();
        assert!(ports.len() > 1, "one connection only: {ports:?}");
    }
}
