//! The catalog on real captures: spans against capinfos, rotations named
//! the tcpdump and dumpcap ways, the cache (a warm re-run reads nothing),
//! growing files, gaps, overlaps and coverage questions.

mod rotations;

use rotations::*;
use std::collections::HashMap;
use wiretrail_capture::catalog::{
    Catalog, CatalogOptions, Coverage, Detail, Known, NameHint, NodeSpec,
};
use wiretrail_capture::read::Compression;
use wiretrail_capture::Duration;

fn opts(cache: &std::path::Path) -> CatalogOptions {
    CatalogOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..CatalogOptions::default()
    }
}

fn node(name: &str, dir: &std::path::Path) -> NodeSpec {
    NodeSpec::new(name, [dir.to_str().unwrap()])
}

#[test]
fn corpus_spans_and_counts_match_capinfos() {
    let cache = tempfile::tempdir().unwrap();
    let cat = Catalog::build_with(
        &[node("corpus", &corpus().join("captures"))],
        &CatalogOptions {
            detail: Detail::Full,
            ..opts(cache.path())
        },
    )
    .unwrap();
    let summary: HashMap<String, HashMap<String, String>> = tsv(&oracle("summary.tsv"))
        .into_iter()
        .map(|r| (r["file"].clone(), r))
        .collect();
    let n = &cat.nodes()[0];
    assert_eq!(
        n.files.len(),
        summary.len(),
        "every capture in the corpus is catalogued"
    );
    for f in &n.files {
        let name = f.path.file_name().unwrap().to_str().unwrap();
        let row = &summary[name];
        assert_eq!(
            f.packets,
            Some(row["packets"].parse::<u64>().unwrap()),
            "{name}: packet count"
        );
        assert!(f.problems.is_empty(), "{name}: {:?}", f.problems);
        assert_eq!(f.truncated_tail, None, "{name}");
        if row["first_epoch"] != "n/a" {
            assert_eq!(
                f.first_ts,
                Some(epoch_ns(&row["first_epoch"])),
                "{name}: first packet"
            );
            assert_eq!(
                f.last_ts,
                Some(epoch_ns(&row["last_epoch"])),
                "{name}: last packet"
            );
        }
        let want_comp = if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        };
        assert_eq!(f.compression, Some(want_comp), "{name}");
    }
    // The two-section file carries SLL (113) then Ethernet (1).
    let two = n
        .files
        .iter()
        .find(|f| f.path.ends_with("drv-two-sections-le-be.pcapng"))
        .unwrap();
    assert_eq!(two.linktypes, vec![1, 113]);
}

#[test]
fn corpus_probes_agree_with_capinfos() {
    // Every file probed (none scanned for being small): the spans read from
    // heads and tails are capinfos' earliest and latest times, and a file
    // whose head holds all of it is scanned instead.
    let cache = tempfile::tempdir().unwrap();
    let cat = Catalog::build_with(
        &[node("corpus", &corpus().join("captures"))],
        &CatalogOptions {
            scan_below: 0,
            ..opts(cache.path())
        },
    )
    .unwrap();
    let summary: HashMap<String, HashMap<String, String>> = tsv(&oracle("summary.tsv"))
        .into_iter()
        .map(|r| (r["file"].clone(), r))
        .collect();
    let n = &cat.nodes()[0];
    let mut probed = 0;
    for f in &n.files {
        let name = f.path.file_name().unwrap().to_str().unwrap();
        let row = &summary[name];
        if row["first_epoch"] == "n/a" {
            continue;
        }
        assert_eq!(f.first_ts, Some(epoch_ns(&row["first_epoch"])), "{name}");
        match f.known {
            Known::Probed => {
                probed += 1;
                assert_eq!(f.packets, None, "{name}: a probe counts nothing");
                assert_eq!(f.last_ts, Some(epoch_ns(&row["last_epoch"])), "{name}");
            }
            Known::Head => assert!(f.compression != Some(Compression::None), "{name}"),
            Known::Scanned => assert_eq!(f.last_ts, Some(epoch_ns(&row["last_epoch"])), "{name}"),
            Known::Unread => panic!("{name} unread"),
        }
    }
    assert!(probed >= 3, "{probed} files probed");
    assert!(
        cat.stats().bytes_read < 3 * 1024 * 1024,
        "{}",
        cat.stats().bytes_read
    );
}

#[test]
fn tcpdump_c_rotations_make_one_span() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lo_rotations(tmp.path());
    let cat = Catalog::build_with(&[node("lo", &dir)], &opts(&tmp.path().join("cache"))).unwrap();
    let n = &cat.nodes()[0];
    let names: Vec<_> = n
        .files
        .iter()
        .map(|f| f.path.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["lo.pcap", "lo.pcap1", "lo.pcap2.gz", "lo.pcap3.zst"],
        "time order"
    );
    let seqs: Vec<_> = n.files.iter().map(|f| f.hint.seq()).collect();
    assert_eq!(seqs, [Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(n.packets(), 160);
    let first = epoch_ns("1795562981.673011356");
    let last = epoch_ns("1795562983.012381186");
    assert_eq!(cat.coverage("lo"), vec![(first, last)]);
    assert!(
        n.coverage.gaps.is_empty() && n.coverage.overlaps.is_empty(),
        "{:?}",
        n.coverage
    );
    assert_eq!(cat.covered("lo", first, last), Coverage::Full);
    assert_eq!(
        cat.covered(
            "lo",
            last + Duration::from_nanos(1),
            last + Duration::from_nanos(10)
        ),
        Coverage::NotCovered
    );
    assert_eq!(
        cat.covered(
            "lo",
            first - Duration::from_nanos(10),
            first + Duration::from_nanos(10)
        ),
        Coverage::Partial {
            missing: vec![(
                first - Duration::from_nanos(10),
                first - Duration::from_nanos(1)
            )]
        }
    );
    assert_eq!(
        cat.covered("no-such-node", first, last),
        Coverage::NotCovered
    );
}

#[test]
fn names_are_hints_and_packets_give_spans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("be1");
    std::fs::create_dir(&dir).unwrap();
    // dumpcap ring of the SLL2 capture; the ring's opening times are made
    // up (and disagree with the packets, as local-time names do).
    let parts = split_pcap(&capture("gen-any-sll2.pcap"), 3);
    put(&dir, "any_00007_20261124120000.pcap", &parts[0]);
    put(&dir, "any_00008_20261124120001.pcap.zst", &parts[1]);
    put(&dir, "any_00009_20261124120002.pcap", &parts[2]);
    // A tcpdump -G file of another, older capture, named for a later hour.
    std::fs::copy(
        capture("zeek-tcp-ssh-dups.pcap"),
        dir.join("be1-20991231235959.pcap"),
    )
    .unwrap();
    // Not a capture: ignored.
    std::fs::write(dir.join("README.txt"), "notes").unwrap();

    let cat = Catalog::build_with(&[node("be1", &dir)], &opts(&tmp.path().join("cache"))).unwrap();
    let n = &cat.nodes()[0];
    assert_eq!(n.files.len(), 4);
    // Packets, not names, order the files: the -G file is from 2013 whatever its name says.
    assert!(n.files[0].path.ends_with("be1-20991231235959.pcap"));
    assert!(matches!(n.files[0].hint, NameHint::Strftime { .. }));
    for (f, seq) in n.files[1..].iter().zip([7, 8, 9]) {
        assert!(
            matches!(&f.hint, NameHint::DumpcapRing { prefix, seq: s, .. } if prefix == "any" && *s == seq),
            "{:?}",
            f.hint
        );
        assert_eq!(f.linktypes, vec![276]);
    }
    let ssh = tsv(&oracle("zeek-tcp-ssh-dups.pcap.flows.tsv"));
    let sll2 = tsv(&oracle("gen-any-sll2.pcap.frames.tsv"));
    let ssh_last = ssh
        .iter()
        .map(|r| epoch_ns(&r["last_epoch"]))
        .max()
        .unwrap();
    let sll2_first = epoch_ns(&sll2[0]["frame.time_epoch"]);
    let sll2_last = sll2
        .iter()
        .map(|r| epoch_ns(&r["frame.time_epoch"]))
        .max()
        .unwrap();
    // Two spans with one gap between them.
    let spans = cat.coverage("be1");
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(spans[0].1, ssh_last);
    assert_eq!(spans[1], (sll2_first, sll2_last));
    assert_eq!(n.coverage.gaps.len(), 1);
    assert_eq!(
        (n.coverage.gaps[0].from, n.coverage.gaps[0].to),
        (ssh_last, sll2_first)
    );
    // A window across the gap is partial, inside it not covered at all.
    match cat.covered(
        "be1",
        ssh_last - Duration::from_nanos(5),
        sll2_first + Duration::from_nanos(5),
    ) {
        Coverage::Partial { missing } => assert_eq!(
            missing,
            vec![(
                ssh_last + Duration::from_nanos(1),
                sll2_first - Duration::from_nanos(1)
            )]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cat.covered(
            "be1",
            ssh_last + Duration::from_nanos(1),
            sll2_first - Duration::from_nanos(1)
        ),
        Coverage::NotCovered
    );
}

#[test]
fn overlapping_copies_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dup");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(capture("gen-lo-nano.pcap"), dir.join("a.pcap")).unwrap();
    std::fs::copy(capture("gen-lo-nano.pcap.gz"), dir.join("b.pcap.gz")).unwrap();
    let cat = Catalog::build_with(&[node("dup", &dir)], &opts(&tmp.path().join("cache"))).unwrap();
    let n = &cat.nodes()[0];
    assert_eq!(n.coverage.spans.len(), 1);
    assert_eq!(n.coverage.overlaps.len(), 1);
    let o = &n.coverage.overlaps[0];
    assert_eq!((o.from, o.to), n.files[0].span().unwrap());
}

#[test]
fn warm_rerun_reads_no_packets_and_growth_reindexes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lo_rotations(tmp.path());
    let o = opts(&tmp.path().join("cache"));
    let nodes = [node("lo", &dir)];
    let cold = Catalog::build_with(&nodes, &o).unwrap();
    assert_eq!(cold.stats().indexed, 4);
    assert!(cold.stats().bytes_read > 0);
    assert!(
        cold.cache_problems().is_empty(),
        "{:?}",
        cold.cache_problems()
    );
    // The cache lives in its own directory, never beside the captures.
    assert!(cold
        .cache_dir()
        .unwrap()
        .starts_with(tmp.path().join("cache")));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);

    let warm = Catalog::build_with(&nodes, &o).unwrap();
    assert_eq!(warm.stats().from_cache, 4);
    assert_eq!(warm.stats().indexed, 0);
    assert_eq!(
        warm.stats().bytes_read,
        0,
        "a warm re-run reads no capture data"
    );
    assert_eq!(warm.stats().packets_read, 0);
    assert_eq!(warm.nodes(), cold.nodes());

    // The newest rotation grows: a packet header arrives without its data.
    let newest = dir.join("lo.pcap1");
    let before = cold.nodes()[0]
        .files
        .iter()
        .find(|f| f.path.ends_with("lo.pcap1"))
        .unwrap()
        .clone();
    let mut partial = std::fs::read(&newest).unwrap();
    let tail_at = partial.len() as u64;
    partial.extend_from_slice(&[
        0x10, 0x20, 0x30, 0x40, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 1, 2, 3,
    ]);
    std::fs::write(&newest, &partial).unwrap();
    let grown = Catalog::build_with(&nodes, &o).unwrap();
    assert_eq!(
        grown.stats().indexed,
        1,
        "only the changed file is read again"
    );
    assert_eq!(grown.stats().from_cache, 3);
    let after = grown.nodes()[0]
        .files
        .iter()
        .find(|f| f.path.ends_with("lo.pcap1"))
        .unwrap();
    assert_eq!(after.truncated_tail, Some(tail_at));
    assert_eq!(after.packets, before.packets);
    assert_eq!(after.span(), before.span());
    assert!(
        after.problems.is_empty(),
        "a partial tail is normal: {:?}",
        after.problems
    );
}

#[test]
fn damaged_files_are_reported_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "bad-trunc-record-data.pcap",
        "bad-magic.pcap",
        "bad-blocklen-lt12.pcapng",
        "bad-trunc.pcap.gz",
    ] {
        std::fs::copy(corpus().join("bad").join(f), dir.join(f)).unwrap();
    }
    let cat = Catalog::build_with(&[node("bad", &dir)], &opts(&tmp.path().join("cache"))).unwrap();
    let files: HashMap<String, _> = cat.nodes()[0]
        .files
        .iter()
        .map(|f| (f.path.file_name().unwrap().to_str().unwrap().to_string(), f))
        .collect();
    assert_eq!(
        files.len(),
        4,
        "a damaged capture is listed, not silently dropped"
    );
    let magic = files["bad-magic.pcap"];
    assert_eq!(magic.format, None);
    assert!(
        magic.damage.len() == 1
            && magic.damage[0].offset == 0
            && magic.damage[0].detail.contains("bad-magic.pcap"),
        "{:?}",
        magic.damage
    );
    // The node names the file and why, as an unusable source.
    assert!(
        cat.nodes()[0].problems.iter().any(|p| p.kind
            == wiretrail_capture::problem::ProblemKind::UnusableSource
            && p.path.ends_with("bad-magic.pcap")
            && p.node.as_deref() == Some("bad")),
        "{:?}",
        cat.nodes()[0].problems
    );
    // Truncated records are a partial tail (2 packets), not a corrupt file.
    let trunc = files["bad-trunc-record-data.pcap"];
    assert_eq!(trunc.packets, Some(2));
    assert_eq!(trunc.truncated_tail, Some(216));
    let lt12 = files["bad-blocklen-lt12.pcapng"];
    // The reader resynchronises on the next valid block after the bad one.
    assert!(lt12.packets >= Some(2), "{:?}", lt12.packets);
    assert!(
        lt12.problems.iter().any(|p| p.offset == Some(420)),
        "{:?}",
        lt12.problems
    );
    let gz = files["bad-trunc.pcap.gz"];
    assert_eq!(gz.packets, Some(206));
    assert!(gz.span().is_some());
}

#[test]
fn node_arguments() {
    let n = NodeSpec::parse_arg("be1=/cap/be1").unwrap();
    assert_eq!(
        (n.name.as_str(), n.sources.as_slice()),
        ("be1", &["/cap/be1".to_string()][..])
    );
    assert!(NodeSpec::parse_arg("/cap/be1").is_err());
    assert!(NodeSpec::parse_arg("=x").is_err());
    let dup = Catalog::build(
        &[NodeSpec::new("a", ["/x"]), NodeSpec::new("a", ["/y"])],
        None,
    );
    assert!(dup.is_err());
}

#[test]
fn a_growing_file_is_extended_like_a_fresh_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("grow");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("be1.pcap");
    let full = std::fs::read(capture("gen-lo-nano.pcap")).unwrap();
    let o = CatalogOptions {
        index_every: 8192,
        ..opts(&tmp.path().join("cache"))
    };
    let nodes = [node("grow", &dir)];

    // tcpdump is mid-way through writing a record.
    std::fs::write(&file, &full[..130_001]).unwrap();
    let early = Catalog::build_with(&nodes, &o).unwrap();
    let e = &early.nodes()[0].files[0];
    assert!(e.truncated_tail.is_some() && e.index.len() > 5, "{e:?}");

    std::fs::write(&file, &full).unwrap();
    let grown = Catalog::build_with(&nodes, &o).unwrap();
    assert_eq!(grown.stats().indexed, 1);
    assert!(
        grown.stats().bytes_read < (full.len() - 120_000) as u64,
        "resumed near the old end, read {}",
        grown.stats().bytes_read
    );
    let fresh = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            cache_dir: Some(tmp.path().join("cache2")),
            ..o.clone()
        },
    )
    .unwrap();
    assert_eq!(fresh.stats().bytes_read, full.len() as u64);
    assert_eq!(
        grown.nodes()[0].files,
        fresh.nodes()[0].files,
        "extending gives exactly a fresh index"
    );
    assert_eq!(grown.nodes()[0].files[0].packets, Some(160));

    // tcpdump -W reused the name for a new, larger file: read from the top.
    let other = std::fs::read(capture("sv-vlan-syn-retransmit.pcap")).unwrap();
    assert!(other.len() > full.len());
    std::fs::write(&file, &other).unwrap();
    let replaced = Catalog::build_with(&nodes, &o).unwrap();
    assert_eq!(replaced.stats().bytes_read, other.len() as u64);
    assert_eq!(replaced.nodes()[0].files[0].packets, Some(254));
}
