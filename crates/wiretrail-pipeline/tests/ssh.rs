//! Remote captures over a real `sshd` on a loopback port: only the rotated
//! file that covers the window crosses the wire, a second run transfers
//! nothing, an unreachable node becomes a capture gap, and the whole
//! investigation (real log parser, catalog, extractor, correlation) runs
//! over the fetched files.
//!
//! Needs Debian's openssh-server (`/usr/sbin/sshd`) and `ssh-keygen`; skips
//! loudly when they are missing or sshd will not start, and fails instead in
//! CI (`CI=true`, `WIRETRAIL_REQUIRE_ALL=1`). Changes nothing
//! system-wide except creating sshd's privilege-separation directory
//! `/run/sshd` when it is absent (the package normally creates it at boot).

mod common;
use common::{write_pcap, Seg};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiretrail_capture::{FlowQuery, FlowTarget};
use wiretrail_correlate::model::{ProblemKind, ProblemSource};
use wiretrail_pipeline::config::{
    parse_node_flag, CaptureLocation, LogSource, Pipeline, RemoteExtract,
};
use wiretrail_pipeline::engine::{Engine, Keep};
use wiretrail_pipeline::progress::{Progress, Silent};
use wiretrail_pipeline::remote::{fetch_node, FetchMode};
use wiretrail_pipeline::time::{Timestamp, Window};
use wiretrail_pipeline::CratesEngine;

const BASE: i64 = 1_683_244_800; // 2023-05-05T00:00:00Z
const S: i64 = 1_000_000_000;
const SLACK: wiretrail_pipeline::time::Duration = wiretrail_pipeline::time::Duration::from_secs(10);

struct Sshd {
    child: Child,
    port: u16,
    client_config: PathBuf,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Skips on a developer's machine, fails in CI.
#[track_caller]
fn skip(what_is_missing: &str) {
    wiretrail_testsupport::require_or_skip(what_is_missing);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_sshd(dir: &Path, remote_path: Option<&Path>) -> Option<Sshd> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() || Command::new("ssh-keygen").arg("-?").output().is_err() {
        skip("sshd or ssh-keygen (apt-get install openssh-server openssh-client)");
        return None;
    }
    if !Path::new("/run/sshd").exists() && std::fs::create_dir_all("/run/sshd").is_err() {
        skip("a writable /run/sshd (sshd's privilege-separation directory)");
        return None;
    }
    for (name, kind) in [("host_key", "ed25519"), ("user_key", "ed25519")] {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(dir.join(name))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            skip("a working ssh-keygen");
            return None;
        }
    }
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let port = free_port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile {pid}\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel ERROR\n{setenv}",
            hk = dir.join("host_key").display(),
            ak = dir.join("authorized_keys").display(),
            pid = dir.join("sshd.pid").display(),
            setenv = remote_path.map(|p| format!("SetEnv PATH={}:/usr/bin:/bin XDG_CACHE_HOME={}\n", p.display(), dir.join("remote-cache").display())).unwrap_or_default(),
        ),
    )
    .unwrap();
    let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let mut parts = host_pub.split_whitespace();
    let known = format!(
        "[127.0.0.1]:{port} {} {}\n",
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    std::fs::write(dir.join("known_hosts"), known).unwrap();
    let client_config = dir.join("ssh_config");
    std::fs::write(
        &client_config,
        format!(
            "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            dir.join("user_key").display(),
            dir.join("known_hosts").display()
        ),
    )
    .unwrap();
    let child = match Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            skip(&format!("an sshd that starts ({e})"));
            return None;
        }
    };
    let mut me = Sshd {
        child,
        port,
        client_config,
        user,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if Instant::now() > deadline || me.child.try_wait().ok().flatten().is_some() {
            skip("an sshd that listens on loopback");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // One real login proves keys and config before the assertions start.
    let ok = Command::new("ssh")
        .args(["-F"])
        .arg(&me.client_config)
        .args([
            "-o",
            "BatchMode=yes",
            "-p",
            &port.to_string(),
            &format!("{}@127.0.0.1", me.user),
            "true",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip("an ssh login to the test sshd");
        let _ = me.child.kill();
        return None;
    }
    Some(me)
}

/// 24 hourly rotations of `cap-HH.pcap`, ~2000 filler packets each; hour 05
/// also holds the failing connection 10.1.1.5:51392 -> 10.0.0.100:80.
fn capture_dir(dir: &Path) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut total = 0;
    for k in 1..=24i64 {
        let start = (BASE + (k - 1) * 3600) * S;
        let mut segs: Vec<Seg> = (0..2000)
            .map(|i| Seg {
                ts_ns: start + i * (3600 * S / 2000),
                src: ([10, 1, 1, 9], 40000 + (i % 500) as u16),
                dst: ([10, 0, 0, 7], 443),
                flags: 0x18,
                seq: 1000 + i as u32,
                ack: 1,
                payload: 40,
                ip_id: i as u16,
            })
            .collect();
        if k == 6 {
            let t = (BASE + 5 * 3600 + 1800) * S; // 05:30:00
            let p = ([10, 1, 1, 5], 51392);
            let b = ([10, 0, 0, 100], 80);
            let seg = |dt_ms: i64, src, dst, flags, seq, ack, payload| Seg {
                ts_ns: t + dt_ms * 1_000_000,
                src,
                dst,
                flags,
                seq,
                ack,
                payload,
                ip_id: 7,
            };
            segs.extend([
                seg(-3000, p, b, 0x02, 100, 0, 0),
                seg(-2999, b, p, 0x12, 900, 101, 0),
                seg(-2998, p, b, 0x10, 101, 901, 0),
                seg(-2000, p, b, 0x18, 101, 901, 200),
                seg(-1999, b, p, 0x10, 901, 301, 0),
                seg(-10, p, b, 0x18, 301, 901, 200),
                seg(-9, b, p, 0x14, 901, 0, 0),
            ]);
            segs.sort_by_key(|s| s.ts_ns);
        }
        let path = dir.join(format!("cap-{:02}.pcap", k - 1));
        write_pcap(&path, &segs);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs((BASE + k * 3600) as u64))
            .unwrap();
        total += f.metadata().unwrap().len();
    }
    total
}

/// The failing connection's proxy port, from 05:28:20 to 05:30:10
/// (the window an error at 05:30 asks for).
fn failing_port() -> FlowQuery {
    let (since, until) = failing_window();
    FlowQuery::to_port(51392, None, None, since, until)
}

/// The failing connection's exact 4-tuple, same window.
fn failing_flow() -> FlowQuery {
    let (since, until) = failing_window();
    FlowQuery::to_port(
        51392,
        Some("10.1.1.5".parse().unwrap()),
        Some("10.0.0.100:80".parse().unwrap()),
        since,
        until,
    )
}

fn failing_window() -> (Timestamp, Timestamp) {
    (
        Timestamp::from_nanos((BASE + 5 * 3600 + 1700) * S),
        Timestamp::from_nanos((BASE + 5 * 3600 + 1810) * S),
    )
}

/// The ssh location of a node made by [`ssh_node`].
fn ssh_target(node: &wiretrail_pipeline::config::Node) -> wiretrail_pipeline::config::SshTarget {
    match &node.captures {
        CaptureLocation::Ssh(t) => t.clone(),
        other => panic!("not an ssh node: {other:?}"),
    }
}

fn ssh_node(sshd: &Sshd, name: &str, port: u16, dir: &Path) -> wiretrail_pipeline::config::Node {
    let mut n = parse_node_flag(
        &format!(
            "{name}=ssh://{}@127.0.0.1:{port}{}",
            sshd.user,
            dir.display()
        ),
        Path::new("/"),
    )
    .unwrap();
    n.ssh_options = vec!["-F".into(), sshd.client_config.display().to_string()];
    n.aliases = vec!["10.0.0.100".parse().unwrap()];
    n
}

#[test]
fn remote_captures_over_ssh() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(sshd) = start_sshd(tmp.path(), None) else {
        return;
    };
    let caps = tmp.path().join("remote-captures");
    let dir_bytes = capture_dir(&caps);
    let cache = tmp.path().join("cache");
    let mut node = ssh_node(&sshd, "b1", sshd.port, &caps);
    // Whole-file copies here (the host has tcpdump, which `auto` would use;
    // that mode has its own test below).
    node.remote_extract = RemoteExtract::Copy;
    let target = ssh_target(&node);

    // 1. Only what the window needs crosses the wire.
    let q = failing_port();
    let f = fetch_node(&node, &target, std::slice::from_ref(&q), SLACK, &cache).unwrap();
    assert_eq!(f.mode, FetchMode::Copy, "forced: files are copied");
    assert_eq!(f.files.len(), 1, "{:?}", f.files);
    assert!(f.files[0].ends_with("cap-05.pcap"));
    assert_eq!(f.remote_dir_bytes, dir_bytes);
    let one_file = std::fs::metadata(caps.join("cap-05.pcap")).unwrap().len();
    assert_eq!(f.bytes_transferred, one_file);
    assert!(
        f.bytes_transferred * 10 < dir_bytes,
        "transferred {} of {}",
        f.bytes_transferred,
        dir_bytes
    );
    eprintln!(
        "ssh: transferred {} of {} bytes ({:.1}%)",
        f.bytes_transferred,
        dir_bytes,
        100.0 * f.bytes_transferred as f64 / dir_bytes as f64
    );
    assert_eq!(
        std::fs::read(&f.files[0]).unwrap(),
        std::fs::read(caps.join("cap-05.pcap")).unwrap()
    );
    // 2. Cached: a second run moves nothing.
    let again = fetch_node(&node, &target, std::slice::from_ref(&q), SLACK, &cache).unwrap();
    assert_eq!(again.bytes_transferred, 0);
    // 3. An unreachable node is an error naming it (the caller turns it into a gap).
    let dead = ssh_node(&sshd, "b9", free_port(), &caps);
    let CaptureLocation::Ssh(dead_t) = dead.captures.clone() else {
        panic!()
    };
    let e = fetch_node(&dead, &dead_t, &[q], SLACK, &cache)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ssh ssh://") && e.contains("list captures"),
        "{e}"
    );

    // 4. The whole investigation over the ssh node, with one dead node.
    let log = tmp.path().join("proxy.log");
    std::fs::write(&log, "2023/05/05 05:30:00 http: proxy error: read tcp 10.1.1.5:51392->10.0.0.100:80: read: connection reset by peer\n").unwrap();
    let mut p = Pipeline::empty(tmp.path());
    p.tz = Some(chrono_tz::UTC);
    p.logs = LogSource::Files(vec![log]);
    p.cache_dir = Some(tmp.path().join("cache2"));
    p.nodes = vec![node.clone(), dead];
    let w = Window::new(
        Timestamp::from_nanos((BASE + 5 * 3600) * S),
        Timestamp::from_nanos((BASE + 6 * 3600) * S),
    )
    .unwrap();
    let logs = CratesEngine.read_errors(&p, &w, Keep::All).unwrap();
    assert_eq!(logs.errors.len(), 1);
    let progress: Arc<dyn Progress> = Arc::new(Silent);
    let a = CratesEngine
        .analyse(&p, &w, logs.errors, &logs.stats, &progress)
        .unwrap();
    let r = &a.report;
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.inputs);
    let inc = &r.incidents[0];
    let b1 = inc.nodes.iter().find(|n| n.name == "b1").unwrap();
    assert!(b1.saw_connection && b1.covered, "{:?}", inc.nodes);
    let b9 = inc.nodes.iter().find(|n| n.name == "b9").unwrap();
    assert!(!b9.saw_connection && !b9.covered, "{:?}", inc.nodes);
    // The dead node is a typed capture gap of that node.
    assert!(
        r.inputs
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::CaptureGap
                && p.source == ProblemSource::Node { node: "b9".into() }
                && p.message.contains("unreachable")),
        "{:?}",
        r.inputs.problems
    );
    assert!(
        r.inputs.capture_bytes_read < dir_bytes / 5,
        "read {} of {}",
        r.inputs.capture_bytes_read,
        dir_bytes
    );
    let err = &inc.errors[0];
    assert_eq!(
        err.diagnosis.owner_node.as_deref(),
        Some("b1"),
        "{:?}",
        err.diagnosis
    );
    assert_eq!(
        a.packets
            .iter()
            .filter(|p| p.src.port() == 51392 || p.dst.port() == 51392)
            .count(),
        7
    );
    eprintln!(
        "ssh investigation verdict: {:?} ({})",
        inc.verdict.cause, inc.verdict.summary
    );
}

/// D14: one remote file whose name holds a newline used to make the whole
/// listing "not understood" and the node unreachable. The listing is
/// NUL-separated now: the node is read, that file included.
#[test]
fn a_newline_in_a_remote_file_name_does_not_hide_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(sshd) = start_sshd(tmp.path(), None) else {
        return;
    };
    let caps = tmp.path().join("remote-captures");
    capture_dir(&caps);
    // A careless rotation script's names: a newline, and a line-like name
    // that would pass for a listing record of its own.
    let odd = ["odd\nname.pcap", "odd2.pcap\n12 1683266400 fake.pcap"];
    for name in odd {
        let p = caps.join(name);
        std::fs::copy(caps.join("cap-05.pcap"), &p).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs((BASE + 6 * 3600) as u64))
            .unwrap();
    }
    let mut node = ssh_node(&sshd, "b1", sshd.port, &caps);
    node.remote_extract = RemoteExtract::Copy;
    let target = ssh_target(&node);
    let q = failing_port();
    let f = fetch_node(&node, &target, &[q], SLACK, &tmp.path().join("cache"))
        .unwrap_or_else(|e| panic!("the node is lost to one file name: {e}"));
    let mut names: Vec<String> = f
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["cap-05.pcap", odd[0], odd[1]], "{f:?}");
    let want = std::fs::read(caps.join("cap-05.pcap")).unwrap();
    for p in &f.files {
        assert_eq!(std::fs::read(p).unwrap(), want, "{}", p.display());
    }
}

/// The `wiretrail` binary next to this test's build, if it was built.
fn built_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("wiretrail");
    p.exists().then_some(p)
}

#[test]
fn remote_extract_when_wiretrail_is_installed_there() {
    let Some(bin) = built_binary() else {
        skip("the wiretrail binary next to the tests (cargo build -p wiretrail)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bindir = tmp.path().join("remote-bin");
    std::fs::create_dir_all(&bindir).unwrap();
    std::os::unix::fs::symlink(&bin, bindir.join("wiretrail")).unwrap();
    let Some(sshd) = start_sshd(tmp.path(), Some(&bindir)) else {
        return;
    };
    let caps = tmp.path().join("remote-captures");
    let dir_bytes = capture_dir(&caps);
    let node = ssh_node(&sshd, "b1", sshd.port, &caps);
    let target = ssh_target(&node);
    let q = failing_flow();
    let f = fetch_node(&node, &target, &[q], SLACK, &tmp.path().join("cache")).unwrap();
    assert_eq!(f.mode, FetchMode::Extract, "{:?}", f.problems);
    // The host cached its catalog where we told it to, not in a home directory.
    assert!(tmp.path().join("remote-cache/wiretrail").exists());
    assert_eq!(f.files.len(), 1);
    // Only the 7 matched packets came back, as pcapng.
    let bytes = std::fs::read(&f.files[0]).unwrap();
    assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    assert!(f.bytes_transferred < 4096, "{} bytes", f.bytes_transferred);
    eprintln!(
        "ssh extract: {} bytes back for a {} byte directory",
        f.bytes_transferred, dir_bytes
    );
}

/// The investigation of the one logged 502 over `nodes`.
fn investigate(
    tmp: &Path,
    cache: &str,
    nodes: Vec<wiretrail_pipeline::config::Node>,
) -> wiretrail_pipeline::engine::Analysis {
    let log = tmp.join("proxy.log");
    std::fs::write(&log, "2023/05/05 05:30:00 http: proxy error: read tcp 10.1.1.5:51392->10.0.0.100:80: read: connection reset by peer\n").unwrap();
    let mut p = Pipeline::empty(tmp);
    p.tz = Some(chrono_tz::UTC);
    p.logs = LogSource::Files(vec![log]);
    p.cache_dir = Some(tmp.join(cache));
    p.nodes = nodes;
    let w = Window::new(
        Timestamp::from_nanos((BASE + 5 * 3600) * S),
        Timestamp::from_nanos((BASE + 6 * 3600) * S),
    )
    .unwrap();
    let logs = CratesEngine.read_errors(&p, &w, Keep::All).unwrap();
    assert_eq!(logs.errors.len(), 1);
    let progress: Arc<dyn Progress> = Arc::new(Silent);
    CratesEngine
        .analyse(&p, &w, logs.errors, &logs.stats, &progress)
        .unwrap()
}

#[test]
fn tcpdump_filters_on_the_host_when_wiretrail_is_not_there() {
    if !Command::new("sh")
        .args(["-c", "command -v tcpdump"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        skip("tcpdump (apt-get install tcpdump), for the host-side filter mode");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The remote PATH is this empty directory plus /usr/bin:/bin: tcpdump,
    // and certainly no wiretrail.
    let bindir = tmp.path().join("remote-bin");
    std::fs::create_dir_all(&bindir).unwrap();
    let Some(sshd) = start_sshd(tmp.path(), Some(&bindir)) else {
        return;
    };
    let caps = tmp.path().join("remote-captures");
    let dir_bytes = capture_dir(&caps);
    let mut node = ssh_node(&sshd, "b1", sshd.port, &caps);
    let target = ssh_target(&node);
    let q = failing_flow();
    let fetch = |node: &wiretrail_pipeline::config::Node, cache: &str| {
        fetch_node(
            node,
            &target,
            std::slice::from_ref(&q),
            SLACK,
            &tmp.path().join(cache),
        )
        .unwrap()
    };

    // Whole-file copy, forced (and by its old name).
    node.remote_extract = RemoteExtract::Copy;
    let copy = fetch(&node, "cache-copy");
    assert_eq!(copy.mode, FetchMode::Copy);
    let one_file = std::fs::metadata(caps.join("cap-05.pcap")).unwrap().len();
    assert_eq!(copy.bytes_transferred, one_file);

    // Auto: no wiretrail there, so tcpdump filters each overlapping file.
    node.remote_extract = RemoteExtract::Auto;
    let td = fetch(&node, "cache-td");
    assert_eq!(td.mode, FetchMode::Tcpdump, "{:?}", td.problems);
    assert!(td.problems.is_empty(), "{:?}", td.problems);
    assert_eq!(td.files.len(), 1);
    // Same name as the remote file, and the remote path is recorded.
    assert!(td.files[0].ends_with("cap-05.pcap"), "{:?}", td.files);
    assert_eq!(
        td.origins,
        vec![(
            td.files[0].clone(),
            caps.join("cap-05.pcap").display().to_string()
        )]
    );
    assert_eq!(
        td.bytes_transferred,
        std::fs::metadata(&td.files[0]).unwrap().len()
    );
    // 7 packets of ~54-254 bytes plus headers, of a ~200 kB file.
    assert!(
        td.bytes_transferred * 50 < copy.bytes_transferred,
        "tcpdump {} vs copy {}",
        td.bytes_transferred,
        copy.bytes_transferred
    );
    eprintln!(
        "ssh bytes for one window: copy {} / tcpdump {} (directory {})",
        copy.bytes_transferred, td.bytes_transferred, dir_bytes
    );
    // Cached: nothing moves the second time.
    assert_eq!(fetch(&node, "cache-td").bytes_transferred, 0);
    // Forced tcpdump does the same.
    node.remote_extract = RemoteExtract::Tcpdump;
    let forced = fetch(&node, "cache-forced");
    assert_eq!(forced.mode, FetchMode::Tcpdump);
    assert_eq!(forced.bytes_transferred, td.bytes_transferred);

    // Hundreds of errors in one window: the per-flow filter would be too
    // long, the coarse one (backend port, proxy host) runs instead and
    // still keeps exactly this connection's packets here (the filler
    // traffic is another client and port).
    node.remote_extract = RemoteExtract::Auto;
    let mut many: Vec<FlowQuery> = (0..300)
        .map(|i| FlowQuery {
            target: FlowTarget::ProxyPort {
                port: 20000 + i,
                backend: q.backend(),
            },
            ..q.clone()
        })
        .collect();
    many.push(q.clone());
    assert_eq!(
        wiretrail_pipeline::remote::bpf_filter(&many, wiretrail_pipeline::remote::MAX_FILTER_LEN)
            .unwrap()
            .1,
        wiretrail_pipeline::remote::FilterPrecision::Coarse
    );
    let coarse = fetch_node(
        &node,
        &target,
        &many,
        SLACK,
        &tmp.path().join("cache-coarse"),
    )
    .unwrap();
    assert_eq!(coarse.mode, FetchMode::Tcpdump, "{:?}", coarse.problems);
    assert_eq!(
        std::fs::read(&coarse.files[0]).unwrap(),
        std::fs::read(&td.files[0]).unwrap()
    );

    // A gzip'd rotation is decompressed there and filtered the same way.
    let gz = tmp.path().join("remote-gz");
    std::fs::create_dir_all(&gz).unwrap();
    let gz_file = gz.join("cap-05.pcap.gz");
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c < '{}' > '{}'",
            caps.join("cap-05.pcap").display(),
            gz_file.display()
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok, "gzip");
    std::fs::File::options()
        .write(true)
        .open(&gz_file)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs((BASE + 6 * 3600) as u64))
        .unwrap();
    let gz_node = ssh_node(&sshd, "b1", sshd.port, &gz);
    let CaptureLocation::Ssh(gz_target) = gz_node.captures.clone() else {
        panic!()
    };
    let g = fetch_node(
        &gz_node,
        &gz_target,
        std::slice::from_ref(&q),
        SLACK,
        &tmp.path().join("cache-gz"),
    )
    .unwrap();
    assert_eq!(g.mode, FetchMode::Tcpdump, "{:?}", g.problems);
    assert!(g.files[0].ends_with("cap-05.pcap"), "{:?}", g.files);
    assert_eq!(
        std::fs::read(&g.files[0]).unwrap(),
        std::fs::read(&td.files[0]).unwrap()
    );

    // The investigation says the same over filtered remote captures as
    // over the local directory; evidence names a file one can open.
    let mut remote = ssh_node(&sshd, "b1", sshd.port, &caps);
    remote.remote_extract = RemoteExtract::Auto;
    let over_ssh = investigate(tmp.path(), "inv-ssh", vec![remote]);
    let mut local = parse_node_flag(&format!("b1={}", caps.display()), Path::new("/")).unwrap();
    local.aliases = vec!["10.0.0.100".parse().unwrap()];
    let over_local = investigate(tmp.path(), "inv-local", vec![local]);
    let (a, b) = (&over_ssh.report, &over_local.report);
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.inputs);
    assert_eq!(b.incidents.len(), 1, "{:#?}", b.inputs);
    let (ia, ib) = (&a.incidents[0], &b.incidents[0]);
    assert_eq!(ia.verdict.cause, ib.verdict.cause);
    assert_eq!(ia.verdict.summary, ib.verdict.summary);
    assert_eq!(ia.errors[0].diagnosis.cause, ib.errors[0].diagnosis.cause);
    assert_eq!(ia.errors[0].diagnosis.owner_node.as_deref(), Some("b1"));
    assert_eq!(over_ssh.packets.len(), over_local.packets.len());
    assert_eq!(over_ssh.packets.len(), 7);
    let ev: Vec<_> = ia.errors[0]
        .diagnosis
        .evidence
        .iter()
        .chain(ia.findings.iter().flat_map(|f| &f.evidence))
        .filter(|e| e.origin.as_str() == "b1")
        .collect();
    assert!(!ev.is_empty(), "{ia:#?}");
    for e in ev {
        // The local filtered file: frames count its packets, and it opens.
        assert!(Path::new(&e.file).exists(), "{e:?}");
        assert!(
            e.file.contains("tcpdump-") && e.file.ends_with("cap-05.pcap"),
            "{e:?}"
        );
        assert!(e.frame >= 1 && e.frame <= 7, "{e:?}");
    }
    eprintln!(
        "ssh tcpdump investigation verdict: {:?} ({}), as with local captures",
        ia.verdict.cause, ia.verdict.summary
    );
}
