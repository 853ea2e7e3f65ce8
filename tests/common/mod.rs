//! Shared helpers of the end-to-end tests: run the real `wiretrail` binary
//! (with a time limit, its own cache directory and no colour), read the lab
//! datasets' `truth.json`, and ask tshark about capture frames.
//!
//! Each `tests/e2e_*.rs` is its own test crate and uses only part of this
//! module, hence the `dead_code` allowance.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest any single `wiretrail` run may take before the test fails (and
/// kills it) instead of hanging the suite.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

/// The workspace root (the crate running these tests is `crates/wiretrail-cli`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wiretrail")
}

/// One cache directory per test process, so capture catalogs are never
/// written into the user's `~/.cache`.
fn cache_home() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("cache tempdir"))
        .path()
}

/// `wiretrail ARGS` from the workspace root, isolated from the caller's
/// environment (cache, colour, log level, tokens, Elasticsearch credentials).
pub fn wt<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(root())
        .env("XDG_CACHE_HOME", cache_home())
        .env("NO_COLOR", "1")
        .env_remove("WIRETRAIL_LOG")
        .env_remove("WIRETRAIL_TOKEN")
        .env_remove("WIRETRAIL_ES_API_KEY")
        .env_remove("WIRETRAIL_ES_BEARER")
        .env_remove("WIRETRAIL_ES_USER")
        .env_remove("WIRETRAIL_ES_PASSWORD");
    c
}

/// What a finished run said.
#[derive(Debug)]
pub struct Out {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: Vec<u8>,
    pub what: String,
}

impl Out {
    /// Panics with the whole stderr when the exit status is not `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited {:?}, expected {code}\n--- stderr ---\n{}\n--- stdout (first 3000 bytes) ---\n{}",
            self.what,
            self.code,
            self.stderr,
            &self.stdout[..self.stdout.len().min(3000)]
        );
        self
    }

    /// Panics unless the run was refused (exit 2) with a message holding
    /// every one of `words` (what was wrong and where).
    pub fn expect_refusal(&self, words: &[&str]) -> &Self {
        self.expect_code(2);
        let missing: Vec<&&str> = words
            .iter()
            .filter(|w| !self.stderr.contains(**w))
            .collect();
        assert!(
            missing.is_empty(),
            "`{}` was refused without saying {missing:?}:\n{}",
            self.what,
            self.stderr
        );
        self
    }
}

fn describe(c: &Command) -> String {
    let mut s = String::from("wiretrail");
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run to completion (feeding `stdin` if given) within [`RUN_LIMIT`].
pub fn run_with_stdin(mut c: Command, stdin: Option<&[u8]>) -> Out {
    let what = describe(&c);
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let feeder = stdin.map(|input| {
        let mut w = child.stdin.take().expect("stdin piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            // The child may legitimately stop reading early.
            let _ = w.write_all(&input);
        })
    });
    let mut so = child.stdout.take().expect("stdout piped");
    let mut se = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let status = wait_limited(&mut child, RUN_LIMIT, &what);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout_bytes = t_out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&t_err.join().expect("stderr reader")).into_owned();
    Out {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr,
        what,
    }
}

pub fn run(c: Command) -> Out {
    run_with_stdin(c, None)
}

/// Wait for `child`, killing it (and failing the test) past `limit`.
pub fn wait_limited(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{what}` still running after {limit:?}: killed");
            }
            Err(e) => panic!("wait for `{what}`: {e}"),
        }
    }
}

/// Send a signal by number with the system `kill` (no libc dependency).
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{sig} {pid} failed");
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `wiretrail investigate ARGS --format json --out TMP`, which must exit 0:
/// its report.
pub fn investigate_json(args: Vec<String>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let mut all = vec!["investigate".to_string()];
    all.extend(args);
    all.extend([
        "--format".into(),
        "json".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    run(wt(&all)).expect_code(0);
    read_json(&out)
}

/// A diagnosis's owner and stray nodes beside truth's, strays sorted.
pub struct Nodes<'a> {
    pub want_owner: &'a str,
    pub want_strays: Vec<String>,
    pub got_owner: Option<&'a str>,
    pub got_strays: Vec<String>,
}

impl<'a> Nodes<'a> {
    pub fn of(diagnosis: &'a Value, truth_error: &'a Value) -> Nodes<'a> {
        let sorted = |v: &Value| {
            let mut s = strings(v);
            s.sort();
            s
        };
        Nodes {
            want_owner: s(truth_error, "owner_node"),
            want_strays: sorted(&truth_error["stray_nodes"]),
            got_owner: diagnosis["owner_node"].as_str(),
            got_strays: sorted(&diagnosis["stray_nodes"]),
        }
    }

    /// Owner and strays both as truth says.
    pub fn right(&self) -> bool {
        self.got_owner == Some(self.want_owner) && self.got_strays == self.want_strays
    }
}

/// Panics listing every disagreement with the datasets' truth, if any.
pub fn assert_agrees_with_truth(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with truth.json:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// `v[key]` as a string, with a message naming the key when it is not one.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{key}` is not a string in {}", short(v)))
}

pub fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("`{key}` is not an array in {}", short(v)))
}

pub fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("`{key}` is not a number in {}", short(v)))
}

/// Every key in `keys` is present (null allowed) in the object `v`.
pub fn has_keys(v: &Value, keys: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {}", short(v)));
    let missing: Vec<&&str> = keys.iter().filter(|k| !obj.contains_key(**k)).collect();
    assert!(
        missing.is_empty(),
        "{what} lacks {missing:?}; has {:?}",
        obj.keys().collect::<Vec<_>>()
    );
}

pub fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 400 {
        format!("{}…", t.chars().take(400).collect::<String>())
    } else {
        t
    }
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {}", short(v)))
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

pub fn rfc3339(v: &Value, key: &str) -> chrono::DateTime<chrono::Utc> {
    let t = s(v, key);
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("`{key}` = {t:?} is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc)
}

// ---------------------------------------------------------------- datasets

pub const NODES: [&str; 4] = ["proxy", "backend-01", "backend-02", "backend-03"];
pub const VIP: &str = "198.18.10.10";

pub fn dataset_dir(name: &str) -> PathBuf {
    root().join("examples/data").join(name)
}

pub fn truth(name: &str) -> Value {
    read_json(&dataset_dir(name).join("truth.json"))
}

pub fn lab(name: &str) -> Value {
    read_json(&dataset_dir(name).join("lab.json"))
}

/// The recording's traffic span from `lab.json`, widened by a minute each side.
pub fn recording_window(name: &str) -> (String, String) {
    let l = lab(name);
    let t = |k: &str| {
        let e = num(&l, k);
        chrono::DateTime::from_timestamp(e.floor() as i64, 0).expect("epoch")
    };
    let since = t("traffic_start_epoch") - chrono::Duration::seconds(60);
    let until = t("traffic_end_epoch") + chrono::Duration::seconds(61);
    (
        since.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        until.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// `investigate` flags describing a dataset without any pipeline file:
/// logs, zone, the four nodes (backends owning the VIP) and the window.
pub fn dataset_flags(name: &str) -> Vec<String> {
    let d = dataset_dir(name);
    let (since, until) = recording_window(name);
    let mut a = vec![
        "--logs".to_string(),
        d.join("logs/proxy.log").display().to_string(),
        "--tz".into(),
        "UTC".into(),
    ];
    for n in NODES {
        let dir = d.join("captures").join(n).display().to_string();
        let spec = if n == "proxy" {
            format!("{n}={dir},role=proxy")
        } else {
            format!("{n}={dir},role=backend,alias={VIP}")
        };
        a.push("--node".into());
        a.push(spec);
    }
    // Where the proxy sits and what it dials: joins the lines that print no
    // socket (timeouts, cancels, EOF) to connections by time.
    let truth = read_json(&d.join("truth.json"));
    a.extend([
        "--proxy-ip".into(),
        s(&truth, "proxy_ip").to_string(),
        "--upstream".into(),
        format!("{VIP}:80"),
    ]);
    a.extend(["--since".into(), since, "--until".into(), until]);
    a
}

/// The cause wiretrail should name for a truth error. The lab calls both a
/// response-header timeout and a client cancel `proxy_abandoned` (the proxy
/// gave up on a live connection); wiretrail tells them apart by the log
/// line's class, as `examples/data/README.md` explains.
pub fn expected_cause(truth_error: &Value) -> String {
    let cause = s(truth_error, "cause");
    if cause != "proxy_abandoned" {
        return cause.to_string();
    }
    match s(truth_error, "error_class") {
        "response_header_timeout" => "response_timeout".into(),
        "context_canceled" => "client_canceled".into(),
        other => panic!("proxy_abandoned with unexpected class {other}"),
    }
}

/// Truth errors by the line of `logs/proxy.log` they came from.
pub fn truth_by_line(t: &Value) -> BTreeMap<u64, Value> {
    arr(t, "errors")
        .iter()
        .map(|e| (e["line"].as_u64().expect("truth line"), e.clone()))
        .collect()
}

/// (node, path below `captures/`, frame) of a truth or report evidence entry.
pub fn evidence_key(ev: &Value) -> (String, String, u64) {
    let file = s(ev, "file");
    let rel = match file.rfind("captures/") {
        Some(i) => &file[i + "captures/".len()..],
        None => file,
    };
    (
        s(ev, "node").to_string(),
        rel.to_string(),
        ev["frame"].as_u64().expect("frame number"),
    )
}

/// The RST frames a backend sent in truth's evidence (the stray node's
/// stateless RST, the idle close's RST, the mid-request reset, the refusal).
pub fn truth_backend_rsts(truth_error: &Value) -> Vec<(String, String, u64)> {
    arr(truth_error, "evidence")
        .iter()
        .filter(|e| s(e, "dir") == "vip->proxy" && s(e, "flags").contains("RST"))
        .map(evidence_key)
        .collect()
}

// ------------------------------------------------------------------ tshark

/// Whether `tool --version` runs.
pub fn have_tool(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `tool` is installed: tests that need it skip loudly without it
/// on a developer's machine and fail in CI (`CI=true`,
/// `WIRETRAIL_REQUIRE_ALL=1`; see `wiretrail_testsupport::require_or_skip`).
#[track_caller]
pub fn require_tool(tool: &str, what: &str) -> bool {
    if have_tool(tool) {
        return true;
    }
    wiretrail_testsupport::require_or_skip(&format!("{tool} (needed to check {what})"));
    false
}

/// `tshark -r FILE [-Y FILTER] -T fields -e F...`: one row per frame.
pub fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut c = Command::new("tshark");
    c.arg("-n").arg("-r").arg(file);
    if let Some(f) = filter {
        c.args(["-Y", f]);
    }
    c.args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let out = c.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// TCP flags (`tcp.flags` as a number), ports and frame count of the frames
/// of `file`, read once: frame number → (flags, srcport, dstport).
pub fn tshark_frames(file: &Path) -> BTreeMap<u64, (u16, u16, u16)> {
    tshark_fields(
        file,
        None,
        &["frame.number", "tcp.flags", "tcp.srcport", "tcp.dstport"],
    )
    .into_iter()
    .filter_map(|r| {
        let n = r.first()?.parse().ok()?;
        let flags = u16::from_str_radix(r.get(1)?.trim_start_matches("0x"), 16).ok()?;
        Some((n, (flags, r.get(2)?.parse().ok()?, r.get(3)?.parse().ok()?)))
    })
    .collect()
}

pub const TCP_FIN: u16 = 0x01;
pub const TCP_SYN: u16 = 0x02;
pub const TCP_RST: u16 = 0x04;
