//! `wiretrail serve`: receive alert webhooks and investigate them.

use super::investigate::InputArgs;
use super::CmdResult;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wiretrail_pipeline::investigate::{apply_overrides, Overrides};
use wiretrail_pipeline::serve::{is_loopback, load_token, serve, ServeOptions};
use wiretrail_pipeline::time::{parse_duration, Duration};
use wiretrail_pipeline::CratesEngine;

/// Receive Alertmanager / Grafana / generic JSON webhooks and investigate each alert.
///
/// Endpoints: POST /alertmanager, POST /webhook (Authorization: Bearer TOKEN),
/// GET /runs/ID, GET /healthz. The token comes from --token-file or the
/// environment variable named by --token-env (default WIRETRAIL_TOKEN).
/// Binds to 127.0.0.1:9402 unless --listen says otherwise.
///
/// Alertmanager receiver:
///   receivers:
///   - name: wiretrail
///     webhook_configs:
///     - url: http://127.0.0.1:9402/alertmanager
///       http_config: { authorization: { credentials_file: /etc/wiretrail/token } }
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ServeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Address to listen on (default: the pipeline's serve.listen, else 127.0.0.1:9402).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// File whose first line is the bearer token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the bearer token.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Accept requests without a token (loopback addresses only).
    #[arg(long)]
    pub no_auth: bool,
    /// Largest accepted body in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_body: Option<usize>,
    /// Alerts waiting beyond the running ones.
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Investigations at a time (1 or 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub concurrency: Option<u8>,
    /// Write each run's outputs under DIR/<run id>/.
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Run directories kept under --runs-dir, newest first (default 500).
    #[arg(long, value_name = "N")]
    pub runs_keep: Option<usize>,
    /// Run directories older than this are removed (default 30d).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub runs_max_age: Option<Duration>,
    /// Time a client has to send a request's head, and the longest an idle
    /// keep-alive connection is kept (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub header_timeout: Option<Duration>,
    /// Time a client has to send a request's body (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub body_timeout: Option<Duration>,
    /// Connections open at once (default 256); at the cap a new one replaces the oldest not
    /// being answered (a slow or idle client).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

pub fn run(a: ServeArgs) -> CmdResult {
    let o = Overrides {
        nodes: a.input.nodes.clone(),
        logs: a.input.logs.clone(),
        tz: a.input.tz.clone(),
        host: a.input.host.clone(),
        ..Overrides::default()
    };
    let mut pipeline = apply_overrides(a.input.pipeline()?, &o)?;
    wiretrail_pipeline::investigate::check_runnable(&pipeline)?;
    {
        let s = &mut pipeline.serve;
        let (r, l) = (&mut s.retention, &mut s.limits);
        r.runs_keep = a.runs_keep.unwrap_or(r.runs_keep);
        r.runs_max_age = a.runs_max_age.unwrap_or(r.runs_max_age);
        l.header_timeout = a.header_timeout.unwrap_or(l.header_timeout);
        l.body_timeout = a.body_timeout.unwrap_or(l.body_timeout);
        l.max_connections = a.max_connections.unwrap_or(l.max_connections);
        if let Some(e) = s.check() {
            return Err(e.into());
        }
    }
    let s = &pipeline.serve;
    let listen = a.listen.unwrap_or(s.listen);
    let token_env = a.token_env.clone().unwrap_or_else(|| s.token_env.clone());
    let token = load_token(
        a.token_file.as_deref().or(s.token_file.as_deref()),
        &token_env,
    )?;
    let token = match (token, a.no_auth) {
        (Some(t), _) => Some(t),
        (None, true) if is_loopback(&listen) => None,
        (None, true) => {
            return Err(
                format!("--no-auth is only allowed on a loopback address, not {listen}").into(),
            )
        }
        (None, false) => {
            return Err(format!(
                "no token: set ${token_env}, or --token-file FILE (or --no-auth on loopback)"
            )
            .into())
        }
    };
    if !is_loopback(&listen) {
        tracing::warn!(%listen, "listening beyond loopback: put TLS in front (a reverse proxy)");
    }
    let opts = ServeOptions {
        token,
        max_body_bytes: a.max_body.unwrap_or(s.max_body_bytes),
        queue: a.queue.unwrap_or(s.queue),
        concurrency: a.concurrency.map(usize::from).unwrap_or(s.concurrency),
        runs_dir: a.runs_dir.clone().or_else(|| s.runs_dir.clone()),
        retention: s.retention,
        limits: s.limits,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        eprintln!(
            "wiretrail: serving pipeline `{}` on http://{}",
            pipeline.name,
            listener.local_addr()?
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("wiretrail: shutting down");
        };
        serve(
            Arc::new(CratesEngine),
            Arc::new(pipeline),
            opts,
            listener,
            shutdown,
        )
        .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

const AFTER_HELP: &str = "Endpoints: POST /alertmanager, POST /webhook (Authorization: Bearer TOKEN), GET /runs/ID, GET /healthz.

Alertmanager receiver:
  receivers:
  - name: wiretrail
    webhook_configs:
    - url: http://127.0.0.1:9402/alertmanager
      http_config: { authorization: { credentials_file: /etc/wiretrail/token } }";
