//! `wiretrail es fetch|setup|publish`.
//!
//! Credentials never come from flags: `WIRETRAIL_ES_USER`/`_PASSWORD`,
//! `WIRETRAIL_ES_API_KEY`, `WIRETRAIL_ES_BEARER`, or `--credentials-file`.

use super::{CmdResult, EXIT_FAILED, EXIT_FOUND, EXIT_NONE};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use wiretrail_elastic::{EsClient, EsConfig, TemplateState, TimeRange};

// Parsed once at start-up and moved once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum EsCmd {
    /// Pull proxy errors from Elasticsearch as JSON lines (the records of `wiretrail logs --format json`).
    Fetch(FetchArgs),
    /// Install the index templates (incidents, timeline events), or check them with --check.
    Setup(SetupArgs),
    /// Publish a report's incidents and timeline events (`investigate --format json` output).
    Publish(PublishArgs),
}

/// Where the cluster is and how to trust it.
#[derive(Debug, clap::Args)]
pub struct ConnArgs {
    /// Cluster URL (no credentials in it).
    #[arg(
        long,
        env = "WIRETRAIL_ES_URL",
        default_value = "https://localhost:9200"
    )]
    pub url: String,
    /// File of KEY=VALUE lines (user/password, api_key or bearer) instead of the WIRETRAIL_ES_* variables.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// PEM CA certificate that signed the cluster's certificate (ES 8: config/certs/http_ca.crt).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the cluster's CA (ES 8 prints it for http_ca.crt) or of its self-signed
    /// certificate; hex, `:` allowed. The certificate is then pinned.
    #[arg(long, value_name = "HEX")]
    pub fingerprint: Option<String>,
    /// Do not verify the cluster's certificate (testing only; warned about).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds per request before it counts as failed (and is retried).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
    /// Retries of 429/502/503/504 and connection errors, with exponential backoff.
    #[arg(long, default_value_t = 8)]
    pub max_retries: u32,
}

impl ConnArgs {
    fn config(&self) -> EsConfig {
        let mut c = EsConfig {
            url: self.url.clone(),
            timeout_s: self.timeout,
            ..EsConfig::default()
        };
        c.auth.credentials_file = self.credentials_file.clone();
        c.tls.ca_file = self.ca_file.clone();
        c.tls.fingerprint = self.fingerprint.clone();
        c.tls.insecure = self.insecure;
        c.retry.max_retries = self.max_retries;
        c
    }
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Index names or patterns, comma-separated.
    #[arg(long, default_value = "logs-*,filebeat-*")]
    pub index: String,
    /// Start (inclusive): RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` with a zone or in --tz, a
    /// date, or epoch seconds.
    #[arg(long)]
    pub since: String,
    /// End (exclusive), same forms; default now.
    #[arg(long)]
    pub until: Option<String>,
    /// Zone of zone-less log stamps and of zone-less --since/--until (e.g. Asia/Shanghai).
    #[arg(long)]
    pub tz: Option<chrono_tz::Tz>,
    #[arg(long, default_value = "@timestamp")]
    pub timestamp_field: String,
    #[arg(long, default_value = "message")]
    pub message_field: String,
    #[arg(long, default_value = "host.name")]
    pub host_field: String,
    #[arg(long, default_value = "service.name")]
    pub service_field: String,
    /// The phrase every wanted document contains.
    #[arg(long, default_value = "http: proxy error")]
    pub phrase: String,
    /// Only this host (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Only this service (repeatable).
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// Parallel readers (sliced point in time).
    #[arg(long, default_value_t = 1)]
    pub slices: u32,
    /// Hits per request.
    #[arg(long, default_value_t = 1000)]
    pub page_size: u32,
    /// Point-in-time keep-alive between pages.
    #[arg(long, default_value = "2m")]
    pub keep_alive: String,
}

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Only check; change nothing (exit 2 when a template is missing or outdated).
    #[arg(long)]
    pub check: bool,
    /// Indices `<prefix>-incidents` and `<prefix>-events`.
    #[arg(long, default_value = "wiretrail")]
    pub index_prefix: String,
}

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The report (`wiretrail investigate --format json`), `-` for stdin.
    pub report: PathBuf,
    #[arg(long, default_value = "wiretrail")]
    pub index_prefix: String,
    /// Documents per _bulk request.
    #[arg(long, default_value_t = 1000)]
    pub bulk_docs: usize,
    /// Bytes per _bulk request.
    #[arg(long, default_value_t = 5 << 20)]
    pub bulk_bytes: usize,
    /// Make the documents searchable before returning.
    #[arg(long)]
    pub refresh: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: EsCmd) -> CmdResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cmd {
        EsCmd::Fetch(a) => rt.block_on(fetch(a)),
        EsCmd::Setup(a) => rt.block_on(setup(a)),
        EsCmd::Publish(a) => rt.block_on(publish(a)),
    }
}

/// A time in the one vocabulary (`wiretrail_pipeline::time`): RFC 3339,
/// `2023-05-05 17:33:07 +08:00`, a date, epoch seconds; zone-less ones in `tz`.
fn parse_time(s: &str, tz: Option<chrono_tz::Tz>, flag: &str) -> Result<DateTime<Utc>, String> {
    wiretrail_pipeline::time::parse_time(s, tz)
        .map(|t| t.to_utc())
        .map_err(|e| format!("{flag}: {e}"))
}

async fn fetch(a: FetchArgs) -> CmdResult {
    let since = parse_time(&a.since, a.tz, "--since")?;
    let until = match &a.until {
        Some(u) => parse_time(u, a.tz, "--until")?,
        None => Utc::now(),
    };
    if until <= since {
        return Err(format!("--until ({until}) must be after --since ({since})").into());
    }
    let mut cfg = a.conn.config();
    cfg.index = a.index.clone();
    cfg.fields.timestamp = a.timestamp_field.clone();
    cfg.fields.message = a.message_field.clone();
    cfg.fields.host = a.host_field.clone();
    cfg.fields.service = a.service_field.clone();
    cfg.phrase = a.phrase.clone();
    cfg.hosts = a.hosts.clone();
    cfg.services = a.services.clone();
    cfg.slices = a.slices;
    cfg.page_size = a.page_size;
    cfg.keep_alive = a.keep_alive.clone();
    let client = EsClient::new(&cfg)?;
    let parse = wiretrail_logs::ParseConfig::new(a.tz);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err: Option<std::io::Error> = None;
    let stats = wiretrail_elastic::fetch_errors(
        &client,
        &cfg,
        &TimeRange { since, until },
        &parse,
        |e| {
            let r = serde_json::to_writer(&mut out, &e).map_err(std::io::Error::from).and_then(|_| out.write_all(b"\n"));
            match r {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    write_err = Some(err);
                    ControlFlow::Break(())
                }
            }
        },
        |m| tracing::warn!(index = %m.index, id = %m.id, "malformed proxy error document: {}", m.reason),
    )
    .await?;
    if let Some(e) = write_err {
        // A closed pipe (`| head`) is a normal way to stop.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(format!("writing stdout: {e}").into());
        }
    }
    let _ = out.flush();
    eprintln!(
        "wiretrail: es fetch: {} proxy errors, {} other documents, {} malformed ({} hits in {} pages by {}, {} slice(s), {} retries, {} reopened contexts, {} duplicates dropped)",
        stats.errors,
        stats.not_proxy_error,
        stats.malformed,
        stats.scan.hits,
        stats.scan.pages,
        stats.scan.method,
        stats.scan.slices,
        stats.scan.retries,
        stats.scan.reopens,
        stats.scan.duplicates_dropped
    );
    Ok(ExitCode::from(if stats.errors > 0 {
        EXIT_FOUND
    } else {
        EXIT_NONE
    }))
}

async fn setup(a: SetupArgs) -> CmdResult {
    let mut cfg = a.conn.config();
    cfg.sink.index_prefix = a.index_prefix.clone();
    let client = EsClient::new(&cfg)?;
    let states = wiretrail_elastic::setup(&client, &cfg.sink, a.check).await?;
    let mut bad = 0;
    for s in &states {
        let what = match s.state {
            TemplateState::Installed => "installed".to_string(),
            TemplateState::Updated => {
                format!("updated (was version {})", s.found_version.unwrap_or(-1))
            }
            TemplateState::Current => "current".to_string(),
            TemplateState::Missing => {
                bad += 1;
                "MISSING (run `wiretrail es setup`)".to_string()
            }
            TemplateState::Outdated => {
                bad += 1;
                format!(
                    "OUTDATED (version {} on the cluster; run `wiretrail es setup`)",
                    s.found_version.unwrap_or(-1)
                )
            }
        };
        println!("index template {}: {what}", s.name);
    }
    Ok(ExitCode::from(if bad > 0 {
        EXIT_FAILED
    } else {
        EXIT_FOUND
    }))
}

async fn publish(a: PublishArgs) -> CmdResult {
    let text = if a.report.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&a.report).map_err(|e| format!("{}: {e}", a.report.display()))?
    };
    let report = wiretrail_elastic::sink::parse_report(&text)
        .map_err(|e| format!("{}: {e}", a.report.display()))?;
    let mut cfg = a.conn.config();
    cfg.sink.index_prefix = a.index_prefix.clone();
    cfg.sink.bulk_max_docs = a.bulk_docs;
    cfg.sink.bulk_max_bytes = a.bulk_bytes;
    cfg.sink.refresh = a.refresh;
    let client = EsClient::new(&cfg)?;
    let s = wiretrail_elastic::publish(&client, &cfg.sink, &report).await?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "published {} incidents and {} timeline events to {} / {}: {} created, {} updated, {} failed ({} requests, {} item retries)",
            s.incidents,
            s.events,
            cfg.sink.incidents_index(),
            cfg.sink.events_index(),
            s.created,
            s.updated,
            s.failed.len(),
            s.requests,
            s.retried_items
        );
    }
    for f in &s.failed {
        eprintln!("wiretrail: es publish: not written: {f}");
    }
    if s.failed.is_empty() {
        Ok(ExitCode::from(EXIT_FOUND))
    } else {
        Err(format!("{} document(s) not written (listed above)", s.failed.len()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2023-05-05T17:30:00Z", None, "--since")
                .unwrap()
                .to_rfc3339(),
            "2023-05-05T17:30:00+00:00"
        );
        let sh: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            parse_time("2023-05-05 17:30", Some(sh), "--since")
                .unwrap()
                .to_rfc3339(),
            "2023-05-05T09:30:00+00:00"
        );
        assert_eq!(
            parse_time("2023-05-05", Some(sh), "--since")
                .unwrap()
                .to_rfc3339(),
            "2023-05-04T16:00:00+00:00"
        );
        assert!(parse_time("2023-05-05 17:30", None, "--since")
            .unwrap_err()
            .contains("no zone"));
        assert!(parse_time("yesterday", None, "--since").is_err());
        // The same forms as every other command.
        assert_eq!(
            parse_time("1683307800", None, "--since")
                .unwrap()
                .to_rfc3339(),
            "2023-05-05T17:30:00+00:00"
        );
    }
}
