//! Credentials: from `WIRETRAIL_ES_*` environment variables or a file,
//! never from the command line, never printed. [`Secret`] has no `Display`
//! and a redacting `Debug`, so a secret cannot reach a log line or an error
//! message by accident.

use crate::error::EsError;
use crate::AuthConfig;
use std::collections::HashMap;
use std::path::Path;

pub const ENV_USER: &str = "WIRETRAIL_ES_USER";
pub const ENV_PASSWORD: &str = "WIRETRAIL_ES_PASSWORD";
pub const ENV_API_KEY: &str = "WIRETRAIL_ES_API_KEY";
pub const ENV_BEARER: &str = "WIRETRAIL_ES_BEARER";

/// A secret string. Only [`Secret::expose`] reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How requests authenticate (es-api.md B2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        user: String,
        password: Secret,
    },
    /// `id:key`, or the `encoded` base64 form the create-API-key call returns.
    ApiKey(Secret),
    Bearer(Secret),
}

impl Credentials {
    /// The exact strings these credentials put on the wire (the secret,
    /// and the base64 forms headers carry), to scrub from anything printed.
    pub fn sent_values(&self) -> Vec<String> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        match self {
            Credentials::Basic { user, password } => vec![
                password.expose().to_string(),
                b64(&format!("{user}:{}", password.expose())),
            ],
            Credentials::ApiKey(k) => {
                let k = k.expose();
                let mut v = vec![k.to_string()];
                if let Some((_, key)) = k.split_once(':') {
                    v.push(key.to_string());
                    v.push(b64(k));
                }
                v
            }
            Credentials::Bearer(t) => vec![t.expose().to_string()],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Basic { .. } => "basic",
            Credentials::ApiKey(_) => "api key",
            Credentials::Bearer(_) => "bearer token",
        }
    }

    pub(crate) fn to_es(&self) -> elasticsearch::auth::Credentials {
        use elasticsearch::auth::Credentials as C;
        match self {
            Credentials::Basic { user, password } => {
                C::Basic(user.clone(), password.expose().to_string())
            }
            Credentials::ApiKey(k) => match k.expose().split_once(':') {
                Some((id, key)) => C::ApiKey(id.to_string(), key.to_string()),
                None => C::EncodedApiKey(k.expose().to_string()),
            },
            Credentials::Bearer(t) => C::Bearer(t.expose().to_string()),
        }
    }

    /// The first complete set among: API key, bearer, user + password.
    fn from_map(
        get: impl Fn(&str) -> Option<String>,
        origin: &str,
    ) -> Result<Option<Credentials>, EsError> {
        if let Some(k) = get(ENV_API_KEY).filter(|s| !s.is_empty()) {
            return Ok(Some(Credentials::ApiKey(Secret(k))));
        }
        if let Some(t) = get(ENV_BEARER).filter(|s| !s.is_empty()) {
            return Ok(Some(Credentials::Bearer(Secret(t))));
        }
        match (get(ENV_USER).filter(|s| !s.is_empty()), get(ENV_PASSWORD)) {
            (Some(user), Some(pw)) => Ok(Some(Credentials::Basic {
                user,
                password: Secret(pw),
            })),
            (Some(_), None) => Err(EsError::Config(format!(
                "{origin}: {ENV_USER} is set but {ENV_PASSWORD} is not"
            ))),
            (None, Some(_)) => Err(EsError::Config(format!(
                "{origin}: {ENV_PASSWORD} is set but {ENV_USER} is not"
            ))),
            (None, None) => Ok(None),
        }
    }
}

/// Credentials per the config: the file first (when named), then the environment.
pub fn resolve(cfg: &AuthConfig) -> Result<Option<Credentials>, EsError> {
    if let Some(path) = &cfg.credentials_file {
        let map = read_file(path)?;
        let origin = format!("credentials file {}", path.display());
        return match Credentials::from_map(|k| map.get(k).cloned(), &origin)? {
            Some(c) => Ok(Some(c)),
            None => Err(EsError::Config(format!(
                "{origin}: no credentials in it (expected {ENV_API_KEY}, {ENV_BEARER}, or {ENV_USER} and {ENV_PASSWORD})"
            ))),
        };
    }
    if cfg.no_env {
        return Ok(None);
    }
    Credentials::from_map(|k| std::env::var(k).ok(), "environment")
}

/// `KEY=VALUE` lines; `#` comments; keys with or without the
/// `WIRETRAIL_ES_` prefix, any case (`user`, `password`, `api_key`, `bearer`).
/// Errors name the line number, never its content.
pub fn read_file(path: &Path) -> Result<HashMap<String, String>, EsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EsError::Config(format!("credentials file {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "credentials file is readable by group or others (chmod 600 it)");
            }
        }
    }
    let mut map = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(EsError::Config(format!(
                "credentials file {} line {}: expected KEY=VALUE",
                path.display(),
                n + 1
            )));
        };
        let k = k.trim().to_ascii_uppercase();
        let k = if k.starts_with("WIRETRAIL_ES_") {
            k
        } else {
            format!("WIRETRAIL_ES_{k}")
        };
        if ![ENV_USER, ENV_PASSWORD, ENV_API_KEY, ENV_BEARER].contains(&k.as_str()) {
            return Err(EsError::Config(format!(
                "credentials file {} line {}: unknown key {k}",
                path.display(),
                n + 1
            )));
        }
        let v = v.trim().trim_matches('"').to_string();
        map.insert(k, v);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let c = Credentials::Basic {
            user: "elastic".into(),
            password: Secret::new("hunter2-secret"),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("elastic"));
    }

    #[test]
    fn file_forms_and_errors() {
        let dir = std::env::temp_dir().join(format!("wt-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("creds");
        std::fs::write(
            &p,
            "# comment\nuser = elastic\nWIRETRAIL_ES_PASSWORD=\"s3cr3t-value\"\n",
        )
        .unwrap();
        let c = resolve(&AuthConfig {
            credentials_file: Some(p.clone()),
            no_env: true,
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                user: "elastic".into(),
                password: Secret::new("s3cr3t-value")
            }
        );

        std::fs::write(&p, "api_key=aWQ6a2V5\n").unwrap();
        let c = resolve(&AuthConfig {
            credentials_file: Some(p.clone()),
            no_env: true,
        })
        .unwrap()
        .unwrap();
        assert_eq!(c, Credentials::ApiKey(Secret::new("aWQ6a2V5")));

        std::fs::write(&p, "password s3cr3t-value\n").unwrap();
        let e = resolve(&AuthConfig {
            credentials_file: Some(p.clone()),
            no_env: true,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 1") && !e.contains("s3cr3t"), "{e}");

        std::fs::write(&p, "password=s3cr3t-value\n").unwrap();
        let e = resolve(&AuthConfig {
            credentials_file: Some(p.clone()),
            no_env: true,
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("WIRETRAIL_ES_USER") && !e.contains("s3cr3t"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
