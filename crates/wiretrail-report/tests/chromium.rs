//! The HTML report in a real browser (Debian's `chromium`, headless):
//! it renders to a non-trivial screenshot, and hostile log content does not
//! become elements in the DOM. Skips loudly when chromium is not installed (fails in CI).
//!
//! The screenshots stay in `$CARGO_TARGET_TMPDIR/wiretrail-report-*.png` for a
//! human to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let ok = Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            ok.then(|| PathBuf::from(name))
        })
}

/// Runs headless chromium with `extra` args on `page`; returns stdout. Kills
/// it after 90 s so a hung browser fails the test instead of the suite.
fn run(bin: &Path, page: &Path, extra: &[&str]) -> String {
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "chromium-profile-{}-{}",
        std::process::id(),
        page.file_stem().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let start = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut { stdout }, &mut s).unwrap();
        s
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

fn write_page(name: &str, r: &wiretrail_correlate::model::Report) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wiretrail-report-{name}.html"));
    let mut f = std::fs::File::create(&path).unwrap();
    wiretrail_report::render_html(r, &mut f).unwrap();
    path
}

#[test]
fn seed_report_renders_in_chromium() {
    let Some(bin) = chromium() else {
        wiretrail_testsupport::require_or_skip(
            "chromium, to render the HTML (apt-get install -y chromium)",
        );
        return;
    };
    let page = write_page("seed", &two_incident_report());
    let png = page.with_extension("png");
    let _ = std::fs::remove_file(&png);
    run(
        &bin,
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,2000",
        ],
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank 1400x2000 page compresses to a few KiB; a drawn report does not.
    assert!(
        bytes.len() > 60_000,
        "screenshot suspiciously small: {} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());

    let dom = run(&bin, &page, &["--dump-dom"]);
    assert!(
        dom.contains("<svg class=\"ladder\""),
        "ladder missing from the DOM"
    );
    assert_eq!(dom.matches("<section class=\"incident\"").count(), 2);
}

#[test]
fn hostile_content_does_not_become_elements() {
    let Some(bin) = chromium() else {
        wiretrail_testsupport::require_or_skip(
            "chromium, to parse the hostile HTML (apt-get install -y chromium)",
        );
        return;
    };
    let page = write_page("hostile", &hostile_report());
    let dom = run(&bin, &page, &["--dump-dom"]);
    assert!(
        dom.contains("<svg class=\"ladder\""),
        "page did not render: {}",
        &dom[..dom.len().min(400)]
    );
    for bad in [
        "<script",
        "<img",
        "<b id=\"xss3\"",
        " onerror=\"",
        " onmouseover=\"",
    ] {
        assert!(!dom.contains(bad), "hostile markup became DOM: {bad}");
    }
    // The text is still there, as text.
    assert!(
        dom.contains("&lt;script&gt;alert('xss1')&lt;/script&gt;"),
        "hostile text should be visible as text"
    );
    assert!(dom.contains("evil\\u{202e}gnp.exe"));
    let png = page.with_extension("png");
    run(
        &bin,
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,1600",
        ],
    );
    eprintln!("screenshot: {}", png.display());
}
