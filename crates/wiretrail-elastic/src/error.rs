//! Errors that say which request failed (method and path, never a URL with
//! credentials, never a header) and what the cluster answered, with anything
//! credential-shaped in that answer redacted ([`crate::redact`]).

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum EsError {
    #[error("elasticsearch configuration: {0}")]
    Config(String),

    /// The cluster answered with an error status (after retries, when retryable).
    #[error("{method} {path}: cluster answered {status}{}{} (after {attempts} attempt(s))",
        error_type.as_deref().map(|t| format!(" {t}")).unwrap_or_default(),
        reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        error_type: Option<String>,
        reason: Option<String>,
        attempts: u32,
    },

    /// No answer: connection refused or dropped, timeout, TLS failure.
    #[error("{method} {path}: {message} (after {attempts} attempt(s))")]
    Transport {
        method: &'static str,
        path: String,
        message: String,
        attempts: u32,
    },

    /// The cluster's certificate is not the one configured (fingerprint
    /// mismatch), or checking it failed: host and what was found, never a
    /// credential.
    #[error("TLS to {host}: {message}")]
    Tls { host: String, message: String },

    /// A 200 answer that cannot be used: unparsable, or incomplete data
    /// (shard failures, timed out), which must never pass as "no matches".
    #[error("{method} {path}: {message}")]
    Response {
        method: &'static str,
        path: String,
        message: String,
    },
}

impl EsError {
    pub fn status(&self) -> Option<u16> {
        match self {
            EsError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `type` and `reason` from an error body: `error` as an object (the
/// standard form, with `caused_by` and `root_cause`) or a string (routing
/// errors), or nothing (413) (es-api.md A1.1).
pub fn error_details(body: &Value) -> (Option<String>, Option<String>) {
    let (ty, reason) = error_details_raw(body);
    (ty, reason.map(|r| crate::redact::redact(&r)))
}

fn error_details_raw(body: &Value) -> (Option<String>, Option<String>) {
    match &body["error"] {
        Value::String(s) => (None, Some(s.clone())),
        Value::Object(_) => {
            let e = &body["error"];
            let ty = e["type"].as_str().map(String::from);
            let mut reason = e["reason"].as_str().map(String::from);
            // "all shards failed" says little: add the root cause.
            let cause = e["caused_by"]
                .as_object()
                .or_else(|| e["root_cause"][0].as_object());
            if let Some(c) = cause {
                let cty = c.get("type").and_then(Value::as_str).unwrap_or("");
                let creason = c.get("reason").and_then(Value::as_str).unwrap_or("");
                if Some(cty) != ty.as_deref() || reason.is_none() {
                    reason = Some(match reason {
                        Some(r) => format!("{r} (caused by {cty}: {creason})"),
                        None => format!("{cty}: {creason}"),
                    });
                }
            }
            (ty, reason)
        }
        Value::Null => match body {
            // A non-JSON body (a proxy's HTML page) is kept short.
            Value::String(s) if !s.is_empty() => (None, Some(s.chars().take(200).collect())),
            _ => (None, None),
        },
        _ => (None, None),
    }
}

/// True when an answer says the PIT or scroll context is gone (es-api.md A4.2).
pub fn is_context_missing(body: &Value) -> bool {
    let e = &body["error"];
    let t = |v: &Value| v["type"].as_str() == Some("search_context_missing_exception");
    t(e) || t(&e["caused_by"])
        || e["root_cause"].as_array().is_some_and(|a| a.iter().any(t))
        || e["failed_shards"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| t(&f["reason"])))
}
