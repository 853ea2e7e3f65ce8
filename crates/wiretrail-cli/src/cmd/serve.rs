//! `wiretrail serve`: receive alert webhooks and investigate them.

use super::investigate::InputArgs;
use super::{duration, CmdResult};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wiretrail_pipeline::serve::{resolve_token, serve_until_interrupted, Auth, ServeOptions};
use wiretrail_pipeline::time::Duration;
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

pub fn run(a: ServeArgs) -> CmdResult {
    let mut pipeline = a.input.pipeline(&a.input.overrides())?;
    wiretrail_pipeline::investigate::check_runnable(&pipeline)?;
    let s = &mut pipeline.serve;
    let (r, l) = (&mut s.retention, &mut s.limits);
    r.runs_keep = a.runs_keep.unwrap_or(r.runs_keep);
    r.runs_max_age = a.runs_max_age.unwrap_or(r.runs_max_age);
    l.header_timeout = a.header_timeout.unwrap_or(l.header_timeout);
    l.body_timeout = a.body_timeout.unwrap_or(l.body_timeout);
    l.max_connections = a.max_connections.unwrap_or(l.max_connections);
    s.max_body_bytes = a.max_body.unwrap_or(s.max_body_bytes);
    s.queue = a.queue.unwrap_or(s.queue);
    s.concurrency = a.concurrency.map(usize::from).unwrap_or(s.concurrency);
    if a.runs_dir.is_some() {
        s.runs_dir.clone_from(&a.runs_dir);
    }
    if let Some(e) = s.check() {
        return Err(e.into());
    }
    let listen = a.listen.unwrap_or(s.listen);
    let auth = if a.no_auth {
        Auth::OffOnLoopback
    } else {
        Auth::Required
    };
    let token = resolve_token(
        &listen,
        a.token_file.as_deref().or(s.token_file.as_deref()),
        a.token_env.as_deref().unwrap_or(&s.token_env),
        auth,
    )?;
    let opts = ServeOptions::new(s, token);
    serve_until_interrupted(Arc::new(CratesEngine), pipeline, opts, listen)?;
    Ok(ExitCode::SUCCESS)
}

const AFTER_HELP: &str = "Endpoints: POST /alertmanager, POST /webhook (Authorization: Bearer TOKEN), GET /runs/ID, GET /healthz.

Alertmanager receiver:
  receivers:
  - name: wiretrail
    webhook_configs:
    - url: http://127.0.0.1:9402/alertmanager
      http_config: { authorization: { credentials_file: /etc/wiretrail/token } }";
