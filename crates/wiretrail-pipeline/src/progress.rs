//! Progress for long runs: bars on a terminal, plain lines otherwise (CI
//! logs, `nohup`, systemd), nothing when quiet.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Receives what a run is doing. Shared across worker threads.
pub trait Progress: Send + Sync {
    /// A phase starts (`reading logs`, `cataloging captures`, `chunk 3/24`).
    fn stage(&self, msg: &str);
    /// More capture work became known.
    fn add_files(&self, files: u64, bytes: u64);
    /// One capture file finished (`bytes` read from it).
    fn file_done(&self, bytes: u64);
    /// Incidents found so far in this run (added).
    fn incidents(&self, n: u64);
    /// A batch chunk finished.
    fn chunk_done(&self, done: u64, total: u64);
    /// Called once at the end.
    fn finish(&self) {}
}

/// Says nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: &str) {}
    fn add_files(&self, _: u64, _: u64) {}
    fn file_done(&self, _: u64) {}
    fn incidents(&self, _: u64) {}
    fn chunk_done(&self, _: u64, _: u64) {}
}

/// Bars: chunks, files, bytes, with the incident count in the message.
#[derive(Debug)]
pub struct Bars {
    _multi: MultiProgress,
    chunks: ProgressBar,
    files: ProgressBar,
    bytes: ProgressBar,
    incidents: AtomicU64,
    /// Clear the bars at the end (an investigation prints its report next).
    clear: bool,
}

impl Bars {
    pub fn new(chunks_total: u64) -> Bars {
        Bars::with_top(
            ProgressBar::new(chunks_total),
            "{prefix:>9} [{bar:30}] {pos}/{len} {msg}",
            "chunks",
        )
    }

    /// The top line (`chunks`, or a spinner), then files and bytes.
    fn with_top(top: ProgressBar, template: &str, prefix: &'static str) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = |t: &str| {
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        top.set_style(style(template));
        top.set_prefix(prefix);
        let chunks = multi.add(top);
        let files = multi.add(ProgressBar::new(0));
        files.set_style(style("{prefix:>9} [{bar:30}] {pos}/{len}"));
        files.set_prefix("files");
        let bytes = multi.add(ProgressBar::new(0));
        bytes.set_style(style(
            "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ));
        bytes.set_prefix("captures");
        Bars {
            _multi: multi,
            chunks,
            files,
            bytes,
            incidents: AtomicU64::new(0),
            clear: false,
        }
    }
}

impl Bars {
    /// One investigation: a spinner with the stage instead of a chunk bar,
    /// then the capture files and bytes.
    pub fn spinner() -> Bars {
        let mut b = Bars::with_top(
            ProgressBar::new_spinner(),
            "{prefix:>9} {spinner} {msg} ({elapsed})",
            "wiretrail",
        );
        b.clear = true;
        b.chunks.enable_steady_tick(Duration::from_millis(120));
        b
    }
}

impl Progress for Bars {
    fn stage(&self, msg: &str) {
        self.chunks.set_message(format!(
            "{msg} · {} incidents",
            self.incidents.load(Ordering::Relaxed)
        ));
    }
    fn add_files(&self, files: u64, bytes: u64) {
        self.files.inc_length(files);
        self.bytes.inc_length(bytes);
    }
    fn file_done(&self, bytes: u64) {
        self.files.inc(1);
        self.bytes.inc(bytes);
    }
    fn incidents(&self, n: u64) {
        let total = self.incidents.fetch_add(n, Ordering::Relaxed) + n;
        self.chunks.set_message(format!("{total} incidents"));
    }
    fn chunk_done(&self, done: u64, total: u64) {
        self.chunks.set_length(total);
        self.chunks.set_position(done);
    }
    fn finish(&self) {
        for bar in [&self.chunks, &self.files, &self.bytes] {
            if self.clear {
                bar.finish_and_clear();
            } else {
                bar.finish();
            }
        }
    }
}

/// One line per stage and chunk, and a files/bytes line at most every 10 s.
#[derive(Debug)]
pub struct Lines {
    state: Mutex<LineState>,
}

#[derive(Debug)]
struct LineState {
    files_total: u64,
    bytes_total: u64,
    files_done: u64,
    bytes_done: u64,
    incidents: u64,
    last_print: Instant,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            state: Mutex::new(LineState {
                files_total: 0,
                bytes_total: 0,
                files_done: 0,
                bytes_done: 0,
                incidents: 0,
                last_print: Instant::now(),
            }),
        }
    }
}

impl Lines {
    fn line(&self, s: &LineState, what: &str) {
        eprintln!(
            "wiretrail: {what}: files {}/{}, {:.1}/{:.1} MB, {} incidents",
            s.files_done,
            s.files_total,
            s.bytes_done as f64 / 1e6,
            s.bytes_total as f64 / 1e6,
            s.incidents
        );
    }
}

impl Progress for Lines {
    fn stage(&self, msg: &str) {
        eprintln!("wiretrail: {msg}");
    }
    fn add_files(&self, files: u64, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.files_total += files;
        s.bytes_total += bytes;
    }
    fn file_done(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.files_done += 1;
        s.bytes_done += bytes;
        if s.last_print.elapsed() >= Duration::from_secs(10) {
            s.last_print = Instant::now();
            self.line(&s, "progress");
        }
    }
    fn incidents(&self, n: u64) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .incidents += n;
    }
    fn chunk_done(&self, done: u64, total: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.last_print = Instant::now();
        self.line(&s, &format!("chunk {done}/{total} done"));
    }
    fn finish(&self) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.line(&s, "finished");
    }
}

/// Whether progress is shown at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Show {
    /// Bars on a terminal, lines on anything else (a log).
    #[default]
    WhenTerminal,
    /// Nothing (`--no-progress`).
    Never,
}

/// Bars on a terminal, lines otherwise, nothing with [`Show::Never`].
pub fn auto(show: Show, chunks_total: u64) -> Box<dyn Progress> {
    match show {
        Show::Never => Box::new(Silent),
        Show::WhenTerminal if std::io::stderr().is_terminal() => Box::new(Bars::new(chunks_total)),
        Show::WhenTerminal => Box::new(Lines::default()),
    }
}
