//! Cold catalogs and honest coverage (issues 14 and 15): spans learned by
//! probing, indexes built only for the files a window touches, and capture
//! data that is lost (unreadable, cut, corrupt or missing rotations) named
//! with its file, its time and its reason, and never counted as covered.

mod rotations;

use rotations::*;
use std::path::{Path, PathBuf};
use wiretrail_capture::catalog::{Catalog, CatalogOptions, Coverage, Detail, Known, NodeSpec};
use wiretrail_capture::extract::{extract, ExtractOptions};
use wiretrail_capture::problem::{LossReason, ProblemKind};
use wiretrail_capture::{Duration, FlowQuery, Timestamp};

const MIB: usize = 1 << 20;

fn opts(cache: &Path) -> CatalogOptions {
    CatalogOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..CatalogOptions::default()
    }
}

fn node(name: &str, src: &Path) -> NodeSpec {
    NodeSpec::new(name, [src.to_str().unwrap()])
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every packet of the capture's flows (port queries on the loopback
/// capture's server ports) in a window.
fn all_queries(since: Timestamp, until: Timestamp) -> Vec<FlowQuery> {
    let flows = tsv(&oracle("gen-lo-nano.pcap.flows.tsv"));
    let mut ports: Vec<u16> = flows
        .iter()
        .map(|r| r["srcport"].parse().unwrap())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
        .into_iter()
        .map(|p| FlowQuery::to_port(p, None, None, since, until))
        .collect()
}

#[test]
fn a_cold_catalog_probes_and_indexes_only_what_the_window_touches() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spans) = numbered_rotations(tmp.path(), 6, 3 * MIB);
    let total: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let cache = tmp.path().join("cache");
    let nodes = [node("be1", &dir)];
    // An index point every 256 KiB (4 MiB by default) for 3 MiB files.
    let opts = |c: &Path| CatalogOptions {
        index_every: 256 << 10,
        ..opts(c)
    };

    // Spans only: every file probed, a small part of each read.
    let cold = Catalog::build_with(&nodes, &opts(&cache)).unwrap();
    let st = cold.stats();
    assert_eq!((st.probed, st.indexed, st.from_cache), (6, 0, 0), "{st:?}");
    assert!(
        st.bytes_read < total / 5,
        "probing read {} of {total} bytes",
        st.bytes_read
    );
    let n = &cold.nodes()[0];
    for (f, &(first, last)) in n.files.iter().zip(&spans) {
        assert_eq!(f.known, Known::Probed, "{}", f.path.display());
        assert_eq!(f.span(), Some((first, last)), "{}", f.path.display());
        assert_eq!(f.packets, None);
    }
    assert_eq!(cold.coverage("be1"), vec![(spans[0].0, spans[5].1)]);
    assert!(n.losses.is_empty(), "{:?}", n.losses);

    // A 20 ms window inside the fourth file: that file alone is scanned.
    let mid = spans[3].0 + spans[3].1.saturating_duration_since(spans[3].0) / 2;
    let queries = all_queries(mid, mid + Duration::from_millis(20));
    let o = CatalogOptions {
        detail: Detail::for_queries(&queries, Duration::ZERO),
        ..opts(&cache)
    };
    let windowed = Catalog::build_with(&nodes, &o).unwrap();
    let st = windowed.stats();
    assert_eq!((st.from_cache, st.indexed), (6, 1), "{st:?}");
    let known: Vec<Known> = windowed.nodes()[0].files.iter().map(|f| f.known).collect();
    assert_eq!(
        known,
        [
            Known::Probed,
            Known::Probed,
            Known::Probed,
            Known::Scanned,
            Known::Probed,
            Known::Probed
        ]
    );
    let ex = extract(&windowed, &queries, &ExtractOptions::default());
    assert!(!ex.packets.is_empty());
    assert!(ex.problems.is_empty(), "{:?}", ex.problems);
    // Only the window's stretch of the indexed file was read.
    assert!(
        ex.stats[0].bytes_read < 3 * MIB as u64 / 2,
        "{}",
        ex.stats[0].bytes_read
    );

    // The same packets as from a catalog that read everything.
    let full = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            detail: Detail::Full,
            ..opts(&tmp.path().join("cache-full"))
        },
    )
    .unwrap();
    assert_eq!(full.coverage("be1"), windowed.coverage("be1"));
    let ex_full = extract(&full, &queries, &ExtractOptions::default());
    assert_eq!(ex.packets, ex_full.packets);

    // Warm: the second query of the same window reads no capture data to
    // catalog, and the index is there.
    let warm = Catalog::build_with(&nodes, &o).unwrap();
    assert_eq!(warm.stats().from_cache, 6);
    assert_eq!(warm.stats().bytes_read, 0);
    assert_eq!(warm.nodes(), windowed.nodes());
}

#[test]
fn a_compressed_rotation_is_scanned_only_when_a_window_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spans) = numbered_rotations(tmp.path(), 3, 2 * MIB);
    let plain = dir.join("be1.pcap1");
    let gz = dir.join("be1.pcap1.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&plain).unwrap())).unwrap();
    std::fs::remove_file(&plain).unwrap();
    let nodes = [node("be1", &dir)];
    // Compressed, it is small: probe it anyway.
    let opts = |c: &Path| CatalogOptions {
        scan_below: 0,
        ..opts(c)
    };
    let cat = Catalog::build_with(&nodes, &opts(&tmp.path().join("c"))).unwrap();
    let f = cat.nodes()[0].files.iter().find(|f| f.path == gz).unwrap();
    // Its head only: it lasts until the next rotation starts.
    assert_eq!(f.known, Known::Head);
    assert_eq!(f.span(), Some((spans[1].0, spans[2].0)));
    assert_eq!(cat.coverage("be1"), vec![(spans[0].0, spans[2].1)]);
    // A window in another file leaves it alone; one inside it scans it.
    let away = Detail::Windows(vec![(
        spans[2].0 + Duration::from_micros(1),
        spans[2].0 + Duration::from_micros(2),
    )]);
    let cat = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            detail: away,
            ..opts(&tmp.path().join("c"))
        },
    )
    .unwrap();
    assert_eq!(cat.stats().indexed, 1);
    let inside = Detail::Windows(vec![(
        spans[1].0 + Duration::from_micros(1),
        spans[1].0 + Duration::from_micros(2),
    )]);
    let cat = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            detail: inside,
            ..opts(&tmp.path().join("c"))
        },
    )
    .unwrap();
    let f = cat.nodes()[0].files.iter().find(|f| f.path == gz).unwrap();
    assert_eq!(f.known, Known::Scanned);
    assert_eq!(f.span(), Some(spans[1]));
}

/// The loss of `file` in node `n`, if any.
fn loss_of<'a>(cat: &'a Catalog, file: &str) -> Option<&'a wiretrail_capture::problem::Loss> {
    cat.nodes()[0]
        .losses
        .iter()
        .find(|l| name_of(&l.file) == file)
}

#[test]
fn an_unreadable_rotation_is_a_gap_bounded_by_its_neighbours() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spans) = numbered_rotations(tmp.path(), 4, 2 * MIB);
    // open() fails whoever we are: the rotation is a link to itself (the
    // CLI test does it with chmod 000 as an unprivileged user).
    let bad = dir.join("be1.pcap2");
    std::fs::remove_file(&bad).unwrap();
    std::os::unix::fs::symlink("be1.pcap2", &bad).unwrap();
    let cat = Catalog::build_with(&[node("be1", &dir)], &opts(&tmp.path().join("c"))).unwrap();
    let n = &cat.nodes()[0];
    assert_eq!(n.files.len(), 4, "the unreadable rotation is listed");
    let l = loss_of(&cat, "be1.pcap2").expect("a named loss");
    assert_eq!(l.reason, LossReason::Unreadable);
    assert_eq!(
        l.span,
        Some((spans[1].1, spans[3].0)),
        "bounded by its neighbours"
    );
    assert!(l.detail.contains("symbolic links"), "{}", l.detail);
    // Not covered: two spans around the loss.
    assert_eq!(
        cat.coverage("be1"),
        vec![(spans[0].0, spans[1].1), (spans[3].0, spans[3].1)]
    );
    assert!(matches!(
        cat.covered("be1", spans[2].0, spans[2].1),
        Coverage::NotCovered
    ));
    // Said as a capture gap (with its time) and as an unusable source.
    let gap = n
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::CaptureGap)
        .unwrap();
    assert!(gap.path.ends_with("be1.pcap2") && gap.node.as_deref() == Some("be1"));
    assert_eq!(gap.span, l.span);
    assert!(n
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::UnusableSource && p.path.ends_with("be1.pcap2")));
}

#[test]
fn an_older_rotation_cut_mid_record_is_a_truncation_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spans) = numbered_rotations(tmp.path(), 4, 2 * MIB);
    let cut = dir.join("be1.pcap1");
    let data = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &data[..data.len() - 7]).unwrap();
    let cat = Catalog::build_with(&[node("be1", &dir)], &opts(&tmp.path().join("c"))).unwrap();
    let f = cat.nodes()[0].files.iter().find(|f| f.path == cut).unwrap();
    assert_eq!(f.known, Known::Probed, "the tail probe found the cut");
    assert!(f.truncated_tail.is_some());
    let l = loss_of(&cat, "be1.pcap1").expect("a named loss");
    assert_eq!(l.reason, LossReason::Truncated);
    let (lo, hi) = l.span.unwrap();
    assert!(
        lo < spans[1].1 && lo > spans[1].0,
        "from its last whole record"
    );
    assert_eq!(hi, spans[2].0, "up to the next rotation");
    assert_eq!(l.offset, f.truncated_tail);
    // The coverage stops at the cut and resumes with the next file.
    let cov = cat.coverage("be1");
    assert_eq!(cov.len(), 2, "{cov:?}");
    assert_eq!(cov[0], (spans[0].0, lo));
    assert_eq!(cov[1], (spans[2].0, spans[3].1));
}

#[test]
fn the_rotation_being_written_is_growing_and_a_dead_one_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, spans) = numbered_rotations(tmp.path(), 3, 2 * MIB);
    let newest = dir.join("be1.pcap2");
    let data = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &data[..data.len() - 7]).unwrap();
    // tcpdump wrote its last (cut) record a moment after its last packet.
    let mtime = spans[2].1 + Duration::from_millis(500);
    std::fs::File::options()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_modified(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime.as_nanos() as u64),
        )
        .unwrap();
    let nodes = [node("be1", &dir)];
    // Written a second ago: being written. No loss, a `growing` note.
    let live = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            now: Some(mtime + Duration::from_secs(1)),
            use_cache: false,
            ..CatalogOptions::default()
        },
    )
    .unwrap();
    let n = &live.nodes()[0];
    assert!(n.losses.is_empty(), "{:?}", n.losses);
    assert_eq!(n.growing, Some(2));
    assert!(n
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Growing && p.path.ends_with("be1.pcap2")));
    // Untouched for an hour: the capture died; the cut is a loss up to the
    // last write.
    let dead = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            now: Some(mtime + Duration::from_hours(1)),
            use_cache: false,
            ..CatalogOptions::default()
        },
    )
    .unwrap();
    let l = loss_of(&dead, "be1.pcap2").expect("a loss");
    assert_eq!(l.reason, LossReason::Truncated);
    assert_eq!(l.span.unwrap().1, mtime);
    assert!(l.span.unwrap().0 < spans[2].1);
    assert_eq!(dead.nodes()[0].growing, None);
    // Modified a second ago but holding packets of two hours before: a
    // copy of a dead capture, not one being written.
    let copied = spans[2].1 + Duration::from_hours(2);
    std::fs::File::options()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_modified(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(copied.as_nanos() as u64),
        )
        .unwrap();
    let copy = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            now: Some(copied + Duration::from_secs(1)),
            use_cache: false,
            ..CatalogOptions::default()
        },
    )
    .unwrap();
    assert_eq!(copy.nodes()[0].growing, None);
    assert!(loss_of(&copy, "be1.pcap2").is_some());
}

#[test]
fn a_rotation_deleted_from_a_numbered_series_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lo_rotations(tmp.path());
    let full = Catalog::build_with(&[node("lo", &dir)], &opts(&tmp.path().join("c"))).unwrap();
    let files: Vec<(String, (Timestamp, Timestamp))> = full.nodes()[0]
        .files
        .iter()
        .map(|f| (name_of(&f.path), f.span().unwrap()))
        .collect();
    std::fs::remove_file(dir.join("lo.pcap1")).unwrap();
    let cat = Catalog::build_with(&[node("lo", &dir)], &opts(&tmp.path().join("c"))).unwrap();
    let l = loss_of(&cat, "lo.pcap1").expect("the deleted rotation is named");
    assert_eq!(l.reason, LossReason::Missing);
    assert_eq!(l.span, Some((files[0].1 .1, files[2].1 .0)));
    assert_eq!(l.file, dir.join("lo.pcap1"));
    let cov = cat.coverage("lo");
    assert_eq!(
        cov,
        vec![
            (files[0].1 .0, files[0].1 .1),
            (files[2].1 .0, files[3].1 .1)
        ]
    );
}

#[test]
fn a_rotation_deleted_from_a_timed_series_is_missing() {
    // The demo's backend-01 (tcpdump -G 10: names 13, 11, 10, 12 s apart
    // as packets arrive), its middle rotation deleted.
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/demo/captures/backend-01");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b1");
    std::fs::create_dir(&dir).unwrap();
    let gone = "backend-01_20261125_003413.pcap";
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for f in names.iter().filter(|f| *f != gone) {
        std::fs::copy(data.join(f), dir.join(f)).unwrap();
    }
    let whole = Catalog::build_with(&[node("b1", &data)], &opts(&tmp.path().join("c"))).unwrap();
    assert!(
        whole.nodes()[0].losses.is_empty(),
        "{:?}",
        whole.nodes()[0].losses
    );
    let spans: Vec<(Timestamp, Timestamp)> = whole.nodes()[0]
        .files
        .iter()
        .map(|f| f.span().unwrap())
        .collect();

    let cat = Catalog::build_with(&[node("b1", &dir)], &opts(&tmp.path().join("c"))).unwrap();
    let n = &cat.nodes()[0];
    assert_eq!(n.losses.len(), 1, "{:?}", n.losses);
    let l = &n.losses[0];
    assert_eq!(l.reason, LossReason::Missing);
    assert_eq!(l.span, Some((spans[1].1, spans[3].0)));
    assert!(
        l.detail.contains("backend-01_20261125_003402.pcap")
            && l.detail.contains("backend-01_20261125_003423.pcap"),
        "{}",
        l.detail
    );
    let cov = cat.coverage("b1");
    assert!(
        cov.iter().all(|&(a, b)| b <= spans[1].1 || a >= spans[3].0),
        "the lost stretch is not covered: {cov:?}"
    );
}

#[test]
fn quiet_timed_rotations_are_not_missing_ones() {
    // Every lab dataset's captures, as recorded: quiet nodes rotate late
    // (tcpdump -G opens a file on the first packet after the period), and
    // nothing is missing. (proxies/traefik-flow-split's backend-01 names
    // are 10 s then 16 s apart, its files hold 9 s of packets each: no
    // third file fits between.)
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data");
    let tmp = tempfile::tempdir().unwrap();
    let datasets = std::fs::read_dir(&root)
        .unwrap()
        .chain(std::fs::read_dir(root.join("proxies")).unwrap());
    for ds in datasets {
        let caps = ds.unwrap().path().join("captures");
        let Ok(nodes) = std::fs::read_dir(&caps) else {
            continue;
        };
        for n in nodes {
            let n = n.unwrap().path();
            let cat = Catalog::build_with(&[node("n", &n)], &opts(&tmp.path().join("c"))).unwrap();
            assert!(
                cat.nodes()[0].losses.is_empty(),
                "{}: {:?}",
                n.display(),
                cat.nodes()[0].losses
            );
        }
    }
}

#[test]
fn a_corrupt_stretch_is_bounded_by_the_packets_around_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        corpus().join("bad/bad-blocklen-lt12.pcapng"),
        dir.join("x.pcapng"),
    )
    .unwrap();
    let cat = Catalog::build_with(&[node("x", &dir)], &opts(&tmp.path().join("c"))).unwrap();
    let f = &cat.nodes()[0].files[0];
    assert_eq!(f.damage.len(), 1, "{:?}", f.damage);
    let d = &f.damage[0];
    assert_eq!(d.offset, 420);
    assert_eq!(d.reason, LossReason::Corrupt);
    let (after, before) = (d.after.unwrap(), d.before.unwrap());
    assert!(after <= before);
    let l = &cat.nodes()[0].losses[0];
    assert_eq!(l.span, Some((after, before)));
    assert_eq!(l.offset, Some(420));
}

/// Every capture file under `dir`, by name, and the packets extracted.
fn files_and_packets(src: &str, cache: &Path) -> (Vec<PathBuf>, usize) {
    let nodes = [NodeSpec::new("lo", [src])];
    let q = all_queries(
        Timestamp::from_nanos(i64::MIN / 2),
        Timestamp::from_nanos(i64::MAX / 2),
    );
    let cat = Catalog::build_with(
        &nodes,
        &CatalogOptions {
            detail: Detail::for_queries(&q, Duration::ZERO),
            ..opts(cache)
        },
    )
    .unwrap();
    let ex = extract(&cat, &q, &ExtractOptions::default());
    let mut files: Vec<PathBuf> = cat.nodes()[0]
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    files.sort();
    (files, ex.packets.len())
}

#[test]
fn symlink_loops_and_second_names_read_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lo_rotations(tmp.path());
    let cache = tmp.path().join("c");
    let (want_files, want_packets) = files_and_packets(dir.to_str().unwrap(), &cache);
    assert_eq!(want_files.len(), 4);
    // A loop, a second loop one level down, and a second name for a file.
    std::os::unix::fs::symlink(".", dir.join("current")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("lo.pcap1", dir.join("latest.pcap")).unwrap();
    for src in [
        format!("{}/**/*.pcap*", dir.display()),
        format!("{}/**/lo.pcap*", dir.display()),
        dir.display().to_string(),
    ] {
        let (files, packets) = files_and_packets(&src, &cache);
        assert_eq!(
            files.len(),
            4,
            "{src}: each file once, under its real name: {files:?}"
        );
        assert!(
            files.iter().all(|f| !name_of(f).starts_with("latest")),
            "{files:?}"
        );
        assert_eq!(packets, want_packets, "{src}");
    }
}

#[test]
fn stale_cache_temp_files_of_killed_runs_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = lo_rotations(tmp.path());
    let cache = tmp.path().join("cache");
    let cat = Catalog::build_with(&[node("lo", &dir)], &opts(&cache)).unwrap();
    let cdir = cat.cache_dir().unwrap().to_path_buf();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let make = |name: &str, when: std::time::SystemTime| {
        let p = cdir.join(name);
        std::fs::write(&p, b"{half a docu").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
        p
    };
    // What kill -9 leaves: ours and old (both naming schemes).
    let stale = make("0123456789abcdef-lo.pcap.json.tmp4242", old);
    let stale_v2 = make("fedcba9876543210-lo.pcap1.tmp77", old);
    // Ours but fresh (a run writing right now), and not ours at all.
    let fresh = make(
        "0123456789abcdef-lo.pcap2.json.tmp4243",
        std::time::SystemTime::now(),
    );
    let foreign = make("notes.tmp12", old);
    Catalog::build_with(&[node("lo", &dir)], &opts(&cache)).unwrap();
    assert!(
        !stale.exists() && !stale_v2.exists(),
        "stale temp files removed"
    );
    assert!(fresh.exists(), "a live writer's temp file is left alone");
    assert!(foreign.exists(), "only our own files are touched");
}
