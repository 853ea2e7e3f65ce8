//! `wiretrail investigate`: the errors of one window, after an alert.

use super::{colour, CmdResult, ColorChoice, Stream, EXIT_FOUND, EXIT_NONE};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wiretrail_pipeline::engine::Color;
use wiretrail_pipeline::investigate::{
    investigate, load_pipeline, read_alert, resolve_window, InvestigateError, InvestigateRequest,
    Overrides,
};
use wiretrail_pipeline::outputs::{Format, OutputPlan, Publish};
use wiretrail_pipeline::progress::{Bars, Progress, Silent};
use wiretrail_pipeline::time::Timestamp;
use wiretrail_pipeline::{CratesEngine, Pipeline};

/// Inputs shared by investigate, batch and serve: a pipeline file and/or flags.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// Pipeline file (pipelines/*.toml); flags below override it.
    #[arg(short, long, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,
    /// Proxy log files, directories or globs (`-` for stdin); replaces the pipeline's log source.
    #[arg(long, value_name = "PATH")]
    pub logs: Vec<String>,
    /// A capture node: NAME=DIR|GLOB|ssh://[user@]host[:port]/dir[,role=backend][,offset=SECONDS][,alias=IP].
    /// With a pipeline, a bare NAME limits the run to the named nodes.
    #[arg(long = "node", value_name = "NAME=DIR[,..]")]
    pub nodes: Vec<String>,
    /// Time zone of zone-less log stamps and of times given without a zone (e.g. Asia/Shanghai).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Only errors logged by this proxy host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// The proxy's address on the backend side. With --upstream, errors whose line prints no
    /// socket (timeouts, `context canceled`, `EOF`) are joined to connections by time.
    #[arg(long, value_name = "IP")]
    pub proxy_ip: Option<std::net::IpAddr>,
    /// A backend socket the proxy dials (the VIP and port); repeatable.
    #[arg(long = "upstream", value_name = "IP:PORT")]
    pub upstreams: Vec<std::net::SocketAddr>,
    /// Proxy errors analysed per window (investigation, batch chunk, webhook run); the later
    /// ones are counted and named in a `limit` problem. 0 = no limit. Default: the pipeline's
    /// `correlate.max_errors`, else 50000.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<usize>,
}

impl InputArgs {
    /// What these flags override in the pipeline (the times are each
    /// command's own).
    pub fn overrides(&self) -> Overrides {
        Overrides {
            nodes: self.nodes.clone(),
            logs: self.logs.clone(),
            tz: self.tz.clone(),
            host: self.host.clone(),
            proxy_ip: self.proxy_ip,
            upstreams: self.upstreams.clone(),
            max_errors: self.max_errors,
            ..Overrides::default()
        }
    }

    /// The pipeline file (or none) with `o` applied.
    pub fn pipeline(&self, o: &Overrides) -> Result<Pipeline, InvestigateError> {
        load_pipeline(self.pipeline.as_deref(), o)
    }
}

/// Investigate the proxy errors of one time window.
///
/// Examples:
///   wiretrail investigate -p pipelines/demo.toml --at '2023-05-05 17:33:07 +08:00'
///   wiretrail investigate --logs proxy.log --tz Asia/Shanghai --node b1=/cap/b1 --node b2=/cap/b2 \
///       --since '2023-05-05 17:30:00' --until '2023-05-05 17:40:00' --format json --out report.json
///   curl -s $ALERTMANAGER_PAYLOAD | wiretrail investigate -p prod.toml --alert -
///
/// Exit status: 0 incidents found, 1 none found, 2 failed.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct InvestigateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The alert time: look --window before it (default 5m) and 30s after.
    /// RFC 3339, `2023-05-05 17:33:07 +08:00`, a date, or epoch seconds.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// How far before --at (or --until) to look: `5m`, `90s`, `1h30m`.
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// Window start.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Window end.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// An alert webhook body (Alertmanager, Grafana, Kibana/generic JSON) from FILE or `-` (stdin):
    /// its time range and host label choose the window and the proxy.
    #[arg(long, value_name = "FILE|-")]
    pub alert: Option<String>,
    /// What to print (or write to --out): the terminal report, the JSON report, or the HTML report.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = format_parser())]
    pub format: Format,
    /// Write the --format output to this file instead of stdout.
    #[arg(short, long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Write one pcapng per incident here (all nodes merged, findings as packet comments).
    #[arg(long, value_name = "DIR")]
    pub pcap_dir: Option<PathBuf>,
    /// Do not publish to the pipeline's Elasticsearch output.
    #[arg(long)]
    pub no_publish: bool,
    /// No progress bars (they show only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Terminal rows per incident (the telling ones are kept; 0 = all). The JSON and HTML
    /// reports always hold every row. Default: the pipeline's `max_rows_per_incident`, else 120.
    #[arg(long, value_name = "N")]
    pub max_rows: Option<usize>,
}

/// `--format`: one of the three names, as the pipeline's [`Format`].
fn format_parser() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(["text", "json", "html"])
        .map(|s| s.parse::<Format>().expect("one of the possible values"))
}

/// `--alert FILE|-`: the body, from the file or stdin.
fn alert_body(src: &str) -> Result<Vec<u8>, String> {
    if src == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| format!("--alert -: reading stdin: {e}"))?;
        Ok(b)
    } else {
        std::fs::read(src).map_err(|e| format!("--alert {src}: {e}"))
    }
}

/// `color`: the global `--color`, when given.
pub fn run(a: InvestigateArgs, color: Option<ColorChoice>) -> CmdResult {
    let o = Overrides {
        since: a.since.clone(),
        until: a.until.clone(),
        at: a.at.clone(),
        window: a.window.clone(),
        max_rows: a.max_rows,
        ..a.input.overrides()
    };
    let mut pipeline = a.input.pipeline(&o)?;
    let alert = match &a.alert {
        Some(src) => Some(read_alert(
            &mut pipeline,
            &alert_body(src)?,
            &format!("--alert {src}"),
            Timestamp::now(),
        )?),
        None => None,
    };
    let window = resolve_window(&pipeline, &o, alert.as_ref(), Timestamp::now())?;
    let color = match a.out {
        Some(_) => Color::Plain,
        None => colour(color.unwrap_or(pipeline.outputs.color), Stream::Stdout),
    };
    let outputs = OutputPlan::from_outputs(
        &pipeline.outputs,
        Some(a.format),
        a.out.as_deref(),
        a.pcap_dir.as_deref(),
        color,
    );
    let req = InvestigateRequest {
        pipeline,
        window,
        outputs,
        publish: if a.no_publish {
            Publish::Never
        } else {
            Publish::AsConfigured
        },
    };
    // Bars on a terminal (tens of GB of captures take a while); nothing in
    // scripts and webhooks, whose stderr is a log.
    let progress: Arc<dyn Progress> = if !a.no_progress && std::io::stderr().is_terminal() {
        Arc::new(Bars::spinner())
    } else {
        Arc::new(Silent)
    };
    let mut stdout = std::io::stdout().lock();
    let out = investigate(&CratesEngine, &req, &progress, &mut stdout)?;
    for p in &out.written {
        eprintln!("wiretrail: wrote {}", p.display());
    }
    if let Some(p) = &out.published {
        eprintln!("wiretrail: published: {p}");
    }
    // A limit reached changes what the report covers: say it here too,
    // whatever the format.
    for p in out
        .analysis
        .report
        .inputs
        .problems
        .iter()
        .filter(|p| p.kind == wiretrail_pipeline::ProblemKind::Limit)
    {
        eprintln!("wiretrail: limit: {p}");
    }
    let n = out.analysis.report.incidents.len();
    eprintln!(
        "wiretrail: {n} incident(s) in {window}",
        window = req.window
    );
    Ok(ExitCode::from(if out.found() {
        EXIT_FOUND
    } else {
        EXIT_NONE
    }))
}

const AFTER_HELP: &str = "Examples:
  wiretrail investigate -p pipelines/demo.toml --at '2026-11-25 00:34:00 +00:00' --window 2m
  wiretrail investigate --logs proxy.log --tz Asia/Shanghai --node b1=/cap/b1 --node b2=/cap/b2 \\
      --since '2023-05-05 17:30:00' --until '2023-05-05 17:40:00' --format json --out report.json
  wiretrail investigate -p prod.toml --alert alertmanager-payload.json --pcap-dir slices/

Times: RFC 3339, `2023-05-05 17:33:07 +08:00`, a date `2023-05-05` (its midnight), or epoch
seconds `1683279187[.25]`; zone-less times take --tz / the pipeline's tz.
Durations: 90s, 5m, 1h30m, 500ms, 2d.
Exit status: 0 incidents found, 1 none found, 2 failed.";
