//! The client: the official crate's `Elasticsearch` over its `Transport`,
//! plus what the crate leaves to callers (es-api.md B3): retries with
//! backoff, error bodies turned into [`EsError`]s that name the request.
//!
//! Requests are built with the crate's typed builders inside a closure that
//! [`EsClient::call`] re-invokes per attempt: a builder is consumed by
//! `send()`, so a retry needs a fresh one.

use crate::auth::{self, Credentials};
use crate::error::{error_details, EsError};
use crate::redact::Secrets;
use crate::EsConfig;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An answer that is not a retryable failure: status and JSON body
/// (`Null` when empty, a string when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a request is, for error messages: method and path only.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
}

impl Req {
    pub fn new(method: &'static str, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EsClient {
    pub(crate) es: Elasticsearch,
    retry: crate::RetryPolicy,
    retries: Arc<AtomicU64>,
    credentials: Option<&'static str>,
    /// What must never be printed: scrubbed from error bodies and messages.
    secrets: Secrets,
    /// `host:port`, for TLS errors.
    host: String,
}

impl EsClient {
    /// Build from a config: URL check, credentials (env or file), TLS.
    pub fn new(cfg: &EsConfig) -> Result<EsClient, EsError> {
        let creds = auth::resolve(&cfg.auth)?;
        Self::with_credentials(cfg, creds)
    }

    /// Build with explicit credentials (tests, embedding).
    pub fn with_credentials(
        cfg: &EsConfig,
        creds: Option<Credentials>,
    ) -> Result<EsClient, EsError> {
        let url = url::Url::parse(&cfg.url)
            .map_err(|e| EsError::Config(format!("--url {:?}: {e}", redact_url(&cfg.url))))?;
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in a URL end up in shell history, process lists and logs.
            return Err(EsError::Config(format!(
                "the URL must not contain credentials; use {} / {}, {}, {} or a credentials file",
                auth::ENV_USER,
                auth::ENV_PASSWORD,
                auth::ENV_API_KEY,
                auth::ENV_BEARER
            )));
        }
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            s => {
                return Err(EsError::Config(format!(
                    "unsupported URL scheme {s:?} (http or https)"
                )))
            }
        };
        let mut b = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
            .timeout(Duration::from_secs(cfg.timeout_s.max(1)))
            .enable_meta_header(false);
        if let Some(c) = &creds {
            if !https {
                tracing::warn!(url = %url, kind = c.kind(), "sending credentials over plain http");
            }
            b = b.auth(c.to_es());
        }
        if let Some(fp) = &cfg.tls.fingerprint {
            let expected = crate::tls::Fingerprint::parse(fp)?;
            if cfg.tls.insecure || cfg.tls.ca_file.is_some() {
                return Err(EsError::Config(
                    "a certificate fingerprint cannot be combined with --insecure or --ca-file: give one way to trust the cluster".into(),
                ));
            }
            if !https {
                return Err(EsError::Config(format!(
                    "a certificate fingerprint is configured but {} is plain http: there is no certificate to pin (use https://)",
                    url
                )));
            }
            let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
                return Err(EsError::Config(format!("{url}: no host to connect to")));
            };
            let pinned = crate::tls::pin(
                &host,
                port,
                expected,
                Duration::from_secs(cfg.timeout_s.max(1)),
            )?;
            tracing::info!(
                fingerprint = %expected,
                position = pinned.position,
                chain = pinned.chain_len,
                "cluster certificate matched the configured fingerprint; pinned as the trust anchor"
            );
            let cert = Certificate::from_der(&pinned.der)
                .map_err(|e| EsError::Config(format!("pinned certificate: {e}")))?;
            // The rustls backend has no `Certificate` (pin without CA
            // semantics): `Full` adds it as a root and keeps the host name
            // check, which `tls::pin` has just verified will pass.
            b = b.cert_validation(CertificateValidation::Full(cert));
        } else if cfg.tls.insecure {
            tracing::warn!("TLS certificate verification is OFF (--insecure): anyone on the path can read and change this traffic");
            b = b.cert_validation(CertificateValidation::None);
        } else if let Some(ca) = &cfg.tls.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| EsError::Config(format!("CA file {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| EsError::Config(format!("CA file {}: {e}", ca.display())))?;
            b = b.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = b
            .build()
            .map_err(|e| EsError::Config(format!("client: {e}")))?;
        Ok(EsClient {
            es: Elasticsearch::new(transport),
            retry: cfg.retry.clone(),
            retries: Arc::new(AtomicU64::new(0)),
            credentials: creds.as_ref().map(Credentials::kind),
            secrets: Secrets::new(creds.iter().flat_map(Credentials::sent_values)),
            host: match (url.host_str(), url.port_or_known_default()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                _ => url.to_string(),
            },
        })
    }

    /// The crate's client, for calls this module does not wrap.
    pub fn es(&self) -> &Elasticsearch {
        &self.es
    }

    pub fn retry_policy(&self) -> &crate::RetryPolicy {
        &self.retry
    }

    /// Retries done so far by this client (and its clones).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn credentials_kind(&self) -> Option<&'static str> {
        self.credentials
    }

    /// `text` without anything credential-shaped and without this client's
    /// own secrets ([`crate::redact`]).
    pub fn clean(&self, text: &str) -> String {
        self.secrets.clean(text)
    }

    /// Send with retries: 429/502/503/504 and connection errors (also a
    /// body cut off mid-way) are retried with backoff, bounded by the
    /// policy; every other answer is returned for the caller to judge.
    pub async fn call<F, Fut>(&self, req: &Req, make: F) -> Result<Answer, EsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        self.call_with(req, Replay::Safe, make).await
    }

    /// [`call`](Self::call) for a request that must not be sent twice when
    /// it may have been executed (a scroll page moves the cursor): only
    /// answers that prove the cluster refused it (429, 503) are retried;
    /// a lost answer (connection error, 502/504 from a proxy) is returned
    /// to the caller, which restarts from a known position.
    pub async fn call_unreplayable<F, Fut>(&self, req: &Req, make: F) -> Result<Answer, EsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        self.call_with(req, Replay::Unsafe, make).await
    }

    async fn call_with<F, Fut>(&self, req: &Req, replay: Replay, make: F) -> Result<Answer, EsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = match make().await {
                // A certificate the client does not trust stays untrusted:
                // retrying it only delays the answer (issue 14 D9).
                Err(e) if tls_rejection(&e).is_some() => {
                    let why = tls_rejection(&e).unwrap_or_default();
                    let what_to_do = if why.contains("not valid for name") {
                        "connect with a host name the certificate names"
                    } else {
                        "trust the cluster's CA with tls.ca_file / --ca-file, or pin it with tls.fingerprint / --fingerprint"
                    };
                    return Err(EsError::Tls {
                        host: self.host.clone(),
                        message: format!(
                            "{why} ({} {}; not retried): {what_to_do}",
                            req.method, req.path
                        ),
                    });
                }
                Err(e) => Err(self.secrets.clean(&describe_transport(&e))),
                Ok(resp) => {
                    let status = resp.status_code().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    match resp.bytes().await {
                        Err(e) => Err(format!(
                            "response body cut off: {}",
                            self.secrets.clean(&describe_transport(&e))
                        )),
                        Ok(bytes) => {
                            let mut body = parse_body(&bytes);
                            // An error body may echo the request's headers.
                            if !(200..300).contains(&status) {
                                self.secrets.scrub(&mut body);
                            }
                            Ok((status, body, retry_after))
                        }
                    }
                }
            };
            let (retryable, wait_hint) = match (&outcome, replay) {
                (Err(message), Replay::Unsafe) => {
                    return Err(EsError::Transport {
                        method: req.method,
                        path: req.path.clone(),
                        message: message.clone(),
                        attempts: attempt,
                    })
                }
                (Err(_), Replay::Safe) => (true, None),
                (Ok((502 | 504, _, _)), Replay::Unsafe) => (false, None),
                (Ok((status, body, ra)), _) => (is_retryable(*status, body), *ra),
            };
            if !retryable {
                let (status, body, _) = outcome.unwrap();
                return Ok(Answer { status, body });
            }
            let wait = wait_hint
                .unwrap_or_else(|| self.retry.backoff(attempt))
                .min(Duration::from_millis(self.retry.max_ms.max(1)));
            let out_of_time =
                started.elapsed() + wait > Duration::from_secs(self.retry.max_elapsed_s);
            if attempt > self.retry.max_retries || out_of_time {
                return Err(match outcome {
                    Err(message) => EsError::Transport {
                        method: req.method,
                        path: req.path.clone(),
                        message,
                        attempts: attempt,
                    },
                    Ok((status, body, _)) => status_error(req, status, &body, attempt),
                });
            }
            match &outcome {
                Err(m) => {
                    tracing::warn!(method = req.method, path = %req.path, attempt, wait_ms = wait.as_millis() as u64, "retrying after: {m}")
                }
                Ok((s, _, _)) => {
                    tracing::warn!(method = req.method, path = %req.path, attempt, wait_ms = wait.as_millis() as u64, "retrying after status {s}")
                }
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// [`call`](Self::call), then any non-2xx answer is an error.
    pub async fn call_ok<F, Fut>(&self, req: &Req, make: F) -> Result<Value, EsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        let a = self.call(req, make).await?;
        if a.is_success() {
            Ok(a.body)
        } else {
            Err(status_error(req, a.status, &a.body, 1))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Sending twice is harmless (reads by position, writes by id).
    Safe,
    Unsafe,
}

/// 429 (except a circuit breaker that says retrying cannot help) and the
/// gateway statuses.
fn is_retryable(status: u16, body: &Value) -> bool {
    match status {
        429 => body["error"]["durability"].as_str() != Some("PERMANENT"),
        502..=504 => true,
        _ => false,
    }
}

pub(crate) fn status_error(req: &Req, status: u16, body: &Value, attempts: u32) -> EsError {
    let (error_type, reason) = error_details(body);
    EsError::Status {
        method: req.method,
        path: req.path.clone(),
        status,
        error_type,
        reason,
        attempts,
    }
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).into_owned())
    })
}

/// The TLS handshake refused the server's certificate (unknown issuer,
/// expired, wrong host name, ...): the reason, or `None` for other errors.
fn tls_rejection(e: &elasticsearch::Error) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = src {
        let rustls_err = c.downcast_ref::<rustls::Error>().or_else(|| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(r) = rustls_err {
            return match r {
                rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
                | rustls::Error::InvalidCertRevocationList(_) => Some(r.to_string()),
                _ => None,
            };
        }
        src = c.source();
    }
    // Another rustls than ours in the chain: its words.
    let text = describe_transport(e);
    text.find("invalid peer certificate")
        .map(|i| text[i..].split(':').take(2).collect::<Vec<_>>().join(":"))
}

/// A transport error with its causes. Our URLs never carry credentials
/// (refused in `new`), so reqwest's URL in the text is safe to show.
fn describe_transport(e: &elasticsearch::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

fn redact_url(u: &str) -> String {
    match u.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => u.to_string(),
        },
        None => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_credentials_refused_without_echo() {
        let cfg = EsConfig {
            url: "https://elastic:topsecret@es.example:9200".into(),
            ..EsConfig::default()
        };
        let e = EsClient::with_credentials(&cfg, None)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("must not contain credentials"), "{e}");
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = crate::RetryPolicy {
            max_retries: 5,
            initial_ms: 100,
            max_ms: 1000,
            max_elapsed_s: 10,
        };
        for n in 1..20 {
            let b = p.backoff(n);
            assert!(b <= Duration::from_millis(1000));
            assert!(b >= p.ceiling(n) / 2);
        }
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(10), Duration::from_millis(1000));
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable(429, &Value::Null));
        assert!(!is_retryable(
            429,
            &serde_json::json!({"error": {"type": "circuit_breaking_exception", "durability": "PERMANENT"}})
        ));
        assert!(is_retryable(503, &Value::Null));
        for s in [400, 401, 403, 404, 409, 413, 500] {
            assert!(!is_retryable(s, &Value::Null), "{s}");
        }
    }
}
