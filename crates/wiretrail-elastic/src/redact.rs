//! Never print a secret, even one the cluster (or a proxy in front of it)
//! echoes back: some servers put the request headers in their error body
//! (`Authorization: Basic dXNlcjpwYXNz`), some reasons quote a token.
//!
//! Two nets, both applied to every text this crate puts in an error:
//! - [`redact`]: patterns — an auth scheme and its credentials (`Basic …`,
//!   `Bearer …`, `ApiKey …`), `Authorization`/`Cookie`/API-key headers,
//!   `password`/`secret`/`token`/`api_key` keys with their values (JSON,
//!   `k=v`, `k: v`), and `user:password@` in URLs;
//! - [`Secrets::scrub`]: the exact values this client sends (the password,
//!   `base64(user:password)`, the API key in both forms, the bearer token),
//!   wherever they appear.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

const MARK: &str = "[redacted]";

/// An auth scheme and what follows it: `Basic dXNlcjpwYXNz`, `Bearer eyJ...`.
fn scheme() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(r"\b(Basic|BASIC|basic|Bearer|BEARER|bearer|ApiKey|APIKEY|apikey|ApiKey|Negotiate|Digest)(\s+)([A-Za-z0-9+/=._~:-]+)")
            .expect("scheme pattern")
    })
}

/// Credentials are random-looking: long enough, and with a digit, base64
/// punctuation or mixed case ("Basic authentication" is no credential).
fn looks_like_credential(v: &str) -> bool {
    v.len() >= 8
        && (v
            .bytes()
            .any(|b| b.is_ascii_digit() || b"+/=._~:-".contains(&b))
            || (v.bytes().any(|b| b.is_ascii_uppercase())
                && v.bytes().any(|b| b.is_ascii_lowercase())))
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            // A header or key that holds a secret, with its value.
            (
                r#"(?i)(authorization|cookie|x-api-key|api[_-]?key|password|passwd|pwd|secret|token|credentials)(\\?"?\s*[:=]\s*\\?"?)([^"\\\s,;&}\]]+)"#,
                "${1}${2}[redacted]",
            ),
            // `https://user:password@host`.
            (r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", "${1}[redacted]@"),
        ]
        .into_iter()
        .map(|(re, rep)| (Regex::new(re).expect("redaction pattern"), rep))
        .collect()
    })
}

/// `text` with anything shaped like a credential replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut out = scheme()
        .replace_all(text, |c: &regex::Captures<'_>| {
            if looks_like_credential(&c[3]) {
                format!("{}{}{MARK}", &c[1], &c[2])
            } else {
                c[0].to_string()
            }
        })
        .into_owned();
    for (re, rep) in patterns() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *rep).into_owned();
        }
    }
    out
}

/// The exact secret strings a client sends, to scrub from what it prints.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} value(s))", self.0.len())
    }
}

impl Secrets {
    /// Scrub these exact values (the ones credentials put on the wire:
    /// [`crate::auth::Credentials::sent_values`]). Very short values are
    /// left out: they would blank out ordinary words.
    pub fn new(values: impl IntoIterator<Item = String>) -> Secrets {
        Secrets(values.into_iter().filter(|s| s.len() >= 4).collect())
    }

    /// [`redact`], then every exact secret value replaced.
    pub fn clean(&self, text: &str) -> String {
        let mut out = redact(text);
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MARK);
            }
        }
        out
    }

    /// Clean every string in a JSON value (an error body), in place.
    pub fn scrub(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let c = self.clean(s);
                if c != *s {
                    *s = c;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.scrub(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.scrub(x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Credentials, Secret};
    use base64::Engine as _;

    #[test]
    fn schemes_headers_keys_and_urls() {
        for (input, gone) in [
            (
                "Authorization: Basic ZWxhc3RpYzpodW50ZXIy",
                "ZWxhc3RpYzpodW50ZXIy",
            ),
            ("authorization=Bearer eyJhbGciOi.J9.abc", "eyJhbGciOi"),
            (
                r#"{"headers":{"Authorization":"ApiKey aWQ6a2V5LXNlY3JldA=="}}"#,
                "aWQ6a2V5",
            ),
            (r#"{\"password\":\"hunter2-Zq\"}"#, "hunter2"),
            ("user=elastic&password=hunter2-Zq&x=1", "hunter2"),
            ("x-api-key: 0123456789abcdef", "0123456789"),
            (
                "proxy said: https://elastic:hunter2@es.example:9200/_bulk",
                "hunter2",
            ),
            ("Cookie: sid=abcdef123456", "abcdef123456"),
        ] {
            let r = redact(input);
            assert!(!r.contains(gone), "{input} -> {r}");
            assert!(r.contains("[redacted]"), "{input} -> {r}");
        }
        // Ordinary error text is left alone.
        let plain = "no such index [logs-2024.05.01] and the basic license is active";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn exact_values_everywhere() {
        let creds = Credentials::Basic {
            user: "elastic".into(),
            password: Secret::new("pw-Zq83"),
        };
        let s = Secrets::new(creds.sent_values());
        let b64 = base64::engine::general_purpose::STANDARD.encode("elastic:pw-Zq83");
        let mut body = serde_json::json!({ "error": { "reason": format!("echo [{b64}] and pw-Zq83"), "x": [ "pw-Zq83" ] } });
        s.scrub(&mut body);
        let t = body.to_string();
        assert!(!t.contains("pw-Zq83") && !t.contains(&b64), "{t}");
        let s = Secrets::new(Credentials::ApiKey(Secret::new("myid:mykey-123")).sent_values());
        let t = s.clean("unauthorized key [mykey-123] (bXlpZDpteWtleS0xMjM=)");
        assert!(
            !t.contains("mykey-123") && !t.contains("bXlpZDpteWtleS0xMjM="),
            "{t}"
        );
    }
}
