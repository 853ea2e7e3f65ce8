//! Alert webhook bodies → what to investigate.
//!
//! Accepted shapes:
//! - Alertmanager webhook (`version: "4"`, `alerts[]` with `startsAt`,
//!   `endsAt`, `labels`). Grafana unified alerting sends the same shape plus
//!   `orgId`, `title`, `state`, so it is read by the same code.
//! - Grafana legacy alerting (`ruleName`, `state`, `evalMatches[].tags`): no
//!   time in the body, so the time received is used.
//! - Generic JSON (Kibana webhook connectors, scripts): a time range
//!   (`since`/`until`, `from`/`to`, `start`/`end`) or an instant (`at`,
//!   `date`, `timestamp`, `@timestamp`, Kibana's `context.date`), an optional
//!   `window` duration, and labels (`labels`, `tags`, or top-level `host`).
//!
//! The proxy host comes from the first of the labels `proxy`, `host`,
//! `hostname`, `host.name`, `instance` (port stripped), so the investigation
//! reads only that proxy's errors.

use crate::time::{parse_duration, parse_time, Duration, Timestamp, Window};
use serde_json::Value;
use std::collections::BTreeMap;

/// The shape of an alert body: which sender's schema it followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Alertmanager's webhook (`alerts[]` with `labels`, `startsAt`).
    Alertmanager,
    /// Grafana unified alerting (Alertmanager's shape plus Grafana's keys).
    Grafana,
    /// Grafana's legacy alerting (`evalMatches`, `ruleName`).
    GrafanaLegacy,
    /// A plain body: `since`/`until`, or `at` and `window`.
    Generic,
}

impl AlertKind {
    /// The word the run log and the run list use.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Alertmanager => "alertmanager",
            AlertKind::Grafana => "grafana",
            AlertKind::GrafanaLegacy => "grafana_legacy",
            AlertKind::Generic => "generic",
        }
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRequest {
    /// Which shape the body had.
    pub kind: AlertKind,
    pub window: Window,
    /// Proxy host to restrict to, if a label names one.
    pub host: Option<String>,
    /// All labels seen (merged over alerts; first value wins).
    pub labels: BTreeMap<String, String>,
    /// Alert names or rule titles, for the run log.
    pub names: Vec<String>,
    /// Resolved-only notifications are still investigated, but said so.
    pub resolved: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alert body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("alert body is not a JSON object")]
    NotObject,
    #[error("Alertmanager payload has no alerts")]
    NoAlerts,
    #[error("alert `{field}`: {reason}")]
    BadField { field: String, reason: String },
    #[error("alert body names no time: give `since`/`until`, `at`, `startsAt` (Alertmanager) or `date` (Kibana)")]
    NoTime,
    #[error("alert window: {0}")]
    Window(#[from] crate::time::TimeError),
}

/// How to turn an instant into a window.
#[derive(Debug, Clone, Copy)]
pub struct AlertDefaults {
    pub before: Duration,
    pub after: Duration,
    /// Used when the body has no time at all (Grafana legacy).
    pub received: Timestamp,
}

const HOST_LABELS: &[&str] = &["proxy", "host", "hostname", "host.name", "instance"];

/// Read any accepted alert body.
pub fn parse_alert(body: &[u8], d: &AlertDefaults) -> Result<AlertRequest, AlertError> {
    let v: Value = serde_json::from_slice(body)?;
    let obj = v.as_object().ok_or(AlertError::NotObject)?;
    if obj.contains_key("alerts") {
        parse_alertmanager(obj, d)
    } else if obj.contains_key("evalMatches") || obj.contains_key("ruleName") {
        parse_grafana_legacy(obj, d)
    } else {
        parse_generic(obj, d)
    }
}

/// A time in any form [`parse_time`] reads (zone-less ones are refused: a
/// webhook has no `--tz`), or a number of epoch milliseconds.
fn time_field(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Timestamp>, AlertError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => parse_time(s, None)
            .map(Some)
            .map_err(|e| AlertError::BadField {
                field: key.to_string(),
                reason: e.to_string(),
            }),
        // Epoch milliseconds, as Kibana's `{{date}}` can be configured to send.
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(Timestamp::from_millis)
            .map(Some)
            .ok_or_else(|| AlertError::BadField {
                field: key.to_string(),
                reason: format!("{n} is not epoch milliseconds"),
            }),
        Some(other) => Err(AlertError::BadField {
            field: key.to_string(),
            reason: format!("expected a time string, got {other}"),
        }),
    }
}

fn merge_labels(into: &mut BTreeMap<String, String>, v: Option<&Value>) {
    if let Some(Value::Object(m)) = v {
        for (k, v) in m {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            into.entry(k.clone()).or_insert(s);
        }
    }
}

fn host_from(labels: &BTreeMap<String, String>) -> Option<String> {
    HOST_LABELS
        .iter()
        .find_map(|k| labels.get(*k))
        .map(|h| strip_port(h).to_string())
}

/// `proxy-1:9100` → `proxy-1`; `[fd00::1]:9100` → `fd00::1`; bare v6 untouched.
fn strip_port(h: &str) -> &str {
    if let Some(inner) = h.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => h,
    }
}

fn parse_alertmanager(
    obj: &serde_json::Map<String, Value>,
    d: &AlertDefaults,
) -> Result<AlertRequest, AlertError> {
    let alerts = obj
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or(AlertError::NoAlerts)?;
    if alerts.is_empty() {
        return Err(AlertError::NoAlerts);
    }
    let mut first: Option<Timestamp> = None;
    let mut last: Option<Timestamp> = None;
    let mut labels = BTreeMap::new();
    let mut names = Vec::new();
    let mut all_resolved = true;
    for (i, a) in alerts.iter().enumerate() {
        let a = a.as_object().ok_or_else(|| AlertError::BadField {
            field: format!("alerts[{i}]"),
            reason: "not an object".into(),
        })?;
        let starts = time_field(a, "startsAt")?.ok_or_else(|| AlertError::BadField {
            field: format!("alerts[{i}].startsAt"),
            reason: "missing".into(),
        })?;
        // Alertmanager sends `0001-01-01T00:00:00Z` for "still firing"
        // (outside what a Timestamp holds, so not parsed).
        let firing = a
            .get("endsAt")
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("0001-01-01"));
        let ends = if firing {
            None
        } else {
            time_field(a, "endsAt")?.filter(|t| t.as_nanos() > 0)
        };
        first = Some(first.map_or(starts, |f| f.min(starts)));
        let end = ends.unwrap_or(starts);
        last = Some(last.map_or(end, |l| l.max(end)));
        let lab = a.get("labels");
        if let Some(name) = lab.and_then(|l| l.get("alertname")).and_then(Value::as_str) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        merge_labels(&mut labels, lab);
        all_resolved &= a.get("status").and_then(Value::as_str) == Some("resolved");
    }
    merge_labels(&mut labels, obj.get("commonLabels"));
    merge_labels(&mut labels, obj.get("groupLabels"));
    let (first, last) = (
        first.ok_or(AlertError::NoAlerts)?,
        last.ok_or(AlertError::NoAlerts)?,
    );
    // An alert fires after the errors it counts: look `before` ahead of its start.
    let since = Window::around(first, d.before, Duration::ZERO)?.since();
    let until = Window::around(last.max(first), Duration::ZERO, d.after)?.until();
    let window = Window::new(since, until)?;
    let grafana =
        obj.contains_key("orgId") || obj.contains_key("title") && obj.contains_key("state");
    Ok(AlertRequest {
        kind: if grafana {
            AlertKind::Grafana
        } else {
            AlertKind::Alertmanager
        },
        window,
        host: host_from(&labels),
        labels,
        names,
        resolved: all_resolved,
    })
}

fn parse_grafana_legacy(
    obj: &serde_json::Map<String, Value>,
    d: &AlertDefaults,
) -> Result<AlertRequest, AlertError> {
    let mut labels = BTreeMap::new();
    merge_labels(&mut labels, obj.get("tags"));
    if let Some(Value::Array(m)) = obj.get("evalMatches") {
        for e in m {
            merge_labels(&mut labels, e.get("tags"));
        }
    }
    let names = obj
        .get("ruleName")
        .and_then(Value::as_str)
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    Ok(AlertRequest {
        kind: AlertKind::GrafanaLegacy,
        window: Window::around(d.received, d.before, d.after)?,
        host: host_from(&labels),
        labels,
        names,
        resolved: obj.get("state").and_then(Value::as_str) == Some("ok"),
    })
}

fn parse_generic(
    obj: &serde_json::Map<String, Value>,
    d: &AlertDefaults,
) -> Result<AlertRequest, AlertError> {
    let pick = |keys: &[&str]| -> Result<Option<Timestamp>, AlertError> {
        for k in keys {
            if let Some(t) = time_field(obj, k)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    };
    let since = pick(&["since", "from", "start"])?;
    let until = pick(&["until", "to", "end"])?;
    let at = match pick(&["at", "date", "timestamp", "@timestamp"])? {
        Some(t) => Some(t),
        None => match obj.get("context").and_then(Value::as_object) {
            Some(ctx) => time_field(ctx, "date")?,
            None => None,
        },
    };
    let before = match obj.get("window") {
        Some(Value::String(s)) => parse_duration(s).map_err(|e| AlertError::BadField {
            field: "window".into(),
            reason: e.to_string(),
        })?,
        None | Some(Value::Null) => d.before,
        Some(other) => {
            return Err(AlertError::BadField {
                field: "window".into(),
                reason: format!("expected a duration like \"5m\", got {other}"),
            })
        }
    };
    let window = match (since, until, at) {
        (Some(s), Some(u), _) => Window::new(s, u)?,
        (Some(s), None, _) => Window::starting(
            s,
            before
                .checked_add(d.after)
                .ok_or_else(|| AlertError::BadField {
                    field: "window".into(),
                    reason: format!("{before} is too long"),
                })?,
        )?,
        (None, Some(u), _) => Window::ending(u, before)?,
        (None, None, Some(t)) => Window::around(t, before, d.after)?,
        (None, None, None) => return Err(AlertError::NoTime),
    };
    let mut labels = BTreeMap::new();
    merge_labels(&mut labels, obj.get("labels"));
    merge_labels(&mut labels, obj.get("tags"));
    for k in HOST_LABELS {
        if let Some(Value::String(s)) = obj.get(*k) {
            labels.entry(k.to_string()).or_insert_with(|| s.clone());
        }
    }
    let names = ["rule_name", "ruleName", "alert_name", "name", "title"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    Ok(AlertRequest {
        kind: AlertKind::Generic,
        window,
        host: host_from(&labels),
        labels,
        names,
        resolved: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("proxy-1:9100"), "proxy-1");
        assert_eq!(strip_port("[fd00::1]:9100"), "fd00::1");
        assert_eq!(strip_port("fd00::1"), "fd00::1");
        assert_eq!(strip_port("proxy-1"), "proxy-1");
    }
}
