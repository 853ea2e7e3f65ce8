//! `wiretrail batch`: a whole day (or range), resumable, with progress.

use super::investigate::InputArgs;
use super::{CmdResult, EXIT_FOUND, EXIT_NONE};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wiretrail_pipeline::batch::{run_batch, write_day_summary, BatchOptions, BatchOutcome, Start};
use wiretrail_pipeline::investigate::{resolve_window, Overrides};
use wiretrail_pipeline::progress::{self, Progress, Show};
use wiretrail_pipeline::time::{Duration, Timestamp};
use wiretrail_pipeline::CratesEngine;

/// Investigate every proxy error of a day (or --since/--until), in resumable chunks.
///
/// Each chunk (default 1h) reads each capture file once for all its incidents;
/// a checkpoint in the output directory lets an interrupted run (Ctrl-C, a
/// crash) resume where it stopped without duplicating output. Ends with a day
/// summary (by cause, node, hour) here and in <out>/report.html.
///
/// Examples:
///   wiretrail batch -p pipelines/daily-batch.toml --day 2023-05-05
///   wiretrail batch -p prod.toml --since '2023-05-05 00:00 +08:00' --until '2023-05-05 12:00 +08:00' --out /var/lib/wiretrail/0505
///
/// Exit status: 0 incidents found, 1 none found, 2 failed or interrupted.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct BatchArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The day, YYYY-MM-DD, in the pipeline's zone (--tz).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub day: Option<String>,
    /// Range start: RFC 3339, `2023-05-05 17:33:07 +08:00`, a date, or epoch seconds.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Range end, same forms.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Chunk size (default: the pipeline's batch.chunk, else 1h).
    #[arg(long, value_name = "DURATION", value_parser = super::duration)]
    pub chunk: Option<Duration>,
    /// Output directory (chunk reports, checkpoint, report.json, report.html).
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Ignore an existing checkpoint and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Also write one pcapng per incident under <out>/slices.
    #[arg(long)]
    pub slices: bool,
    /// No progress bars or lines.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(a: BatchArgs) -> CmdResult {
    if a.day.is_none() && (a.since.is_none() || a.until.is_none()) {
        return Err("give --day YYYY-MM-DD or both --since and --until".into());
    }
    let o = Overrides {
        since: a.since.clone(),
        until: a.until.clone(),
        day: a.day.clone(),
        ..a.input.overrides()
    };
    let pipeline = a.input.pipeline(&o)?;
    let window = resolve_window(&pipeline, &o, None, Timestamp::now())?;
    let mut opts = BatchOptions::for_pipeline(&pipeline, window);
    if let Some(dir) = a.out.clone() {
        opts = opts.with_out_dir(dir);
    }
    opts.chunk = a.chunk.unwrap_or(opts.chunk);
    opts.slices |= a.slices;
    if a.fresh {
        opts.start = Start::Fresh;
    }
    install_interrupt(opts.cancel.clone());
    let show = if a.no_progress {
        Show::Never
    } else {
        Show::WhenTerminal
    };
    let chunks = window.chunks(opts.chunk).len() as u64;
    let progress: Arc<dyn Progress> = Arc::from(progress::auto(show, chunks));
    let out = run_batch(&CratesEngine, &pipeline, &opts, &progress)?;
    let mut stdout = std::io::stdout().lock();
    write_day_summary(&out.report, &mut stdout)?;
    say(&out);
    Ok(ExitCode::from(if out.report.incidents.is_empty() {
        EXIT_NONE
    } else {
        EXIT_FOUND
    }))
}

/// What the run did, on stderr.
fn say(out: &BatchOutcome) {
    if !out.removed_temporaries.is_empty() {
        eprintln!(
            "wiretrail: removed {} temporary file(s) left by a run that was killed: {}",
            out.removed_temporaries.len(),
            out.removed_temporaries
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for p in &out.written {
        eprintln!("wiretrail: wrote {}", p.display());
    }
    let ls = &out.log_stats;
    eprintln!(
        "wiretrail: logs: {} lines, {} proxy errors ({} outside the range, {} other hosts, {} unparsed)",
        ls.lines, ls.proxy_errors, ls.outside_window, ls.other_host, ls.unparsed
    );
    for p in ls.problems.iter().take(10) {
        eprintln!("wiretrail: logs: {p}");
    }
    let limited: Vec<_> = out
        .report
        .inputs
        .problems
        .iter()
        .filter(|p| p.kind == wiretrail_pipeline::ProblemKind::Limit)
        .collect();
    for p in limited.iter().take(10) {
        eprintln!("wiretrail: limit: {p}");
    }
    if limited.len() > 10 {
        eprintln!(
            "wiretrail: limit: {} more chunks reached the limit (report.json lists them)",
            limited.len() - 10
        );
    }
    eprintln!(
        "wiretrail: {} chunks ({} run now, {} from the checkpoint)",
        out.chunks_total, out.chunks_run, out.chunks_resumed
    );
    if let Some(p) = &out.published {
        eprintln!("wiretrail: published: {p}");
    }
}

/// First Ctrl-C: finish the current chunk, save the checkpoint, stop.
/// Second Ctrl-C: stop now (the checkpoint is still consistent).
///
/// The handler is registered before this returns (not in the thread it
/// starts): a Ctrl-C that comes before the first chunk must not kill the
/// run with the default action (it did, on a loaded machine).
fn install_interrupt(cancel: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("wiretrail: warning: no Ctrl-C handler (no runtime): Ctrl-C stops at once");
        return;
    };
    let registered = {
        let _in_rt = rt.enter();
        signal(SignalKind::interrupt())
    };
    let mut ints = match registered {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wiretrail: warning: no Ctrl-C handler ({e}): Ctrl-C stops at once");
            return;
        }
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            if ints.recv().await.is_some() {
                eprintln!("wiretrail: interrupted: finishing the current chunk (Ctrl-C again to stop now)");
                cancel.store(true, Ordering::SeqCst);
            }
            if ints.recv().await.is_some() {
                std::process::exit(130);
            }
        });
    });
}

const AFTER_HELP: &str = "Examples:
  wiretrail batch -p pipelines/daily-batch.toml --day 2023-05-05
  wiretrail batch -p prod.toml --since '2023-05-05 00:00:00 +08:00' --until '2023-05-05 12:00:00 +08:00' --out /var/lib/wiretrail/0505

Ctrl-C finishes the current chunk and saves the checkpoint; run the same command again to resume.
Exit status: 0 incidents found, 1 none found, 2 failed or interrupted.";
