//! Sink: install or check the index templates, and publish a report with
//! `_bulk` in batches bounded by count and bytes (es-api.md A6, A8).
//!
//! Every item's result is read: an `errors: true` answer with HTTP 200 is a
//! partial failure. Items refused with 429 (or 502/503/504) are resent alone,
//! with backoff; other item errors (mapping errors, ...) are reported with
//! the document id; a 413 splits the batch. Nothing is dropped silently: the
//! summary counts every document as created, updated or failed.
//!
//! `publish` first makes sure the templates are installed and current
//! (two `GET`s when they are), so the indices it creates are typed.
//!
//! Documents are written with `index` and deterministic ids into plain
//! indices (not data streams, which are create-only and let a duplicate in
//! after a rollover): publishing the same report twice leaves the same
//! documents, the second time as `updated`.

use crate::client::{status_error, EsClient, Req};
use crate::ecs::{self, EsDoc};
use crate::error::EsError;
use crate::source::{detect, Flavor};
use crate::SinkConfig;
use bytes::Bytes;
use elasticsearch::indices::{
    IndicesGetIndexTemplateParts, IndicesPutIndexTemplateParts, IndicesRefreshParts,
};
use elasticsearch::BulkParts;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use wiretrail_correlate::model::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateState {
    /// Was missing, now installed.
    Installed,
    /// Was older, now replaced.
    Updated,
    /// Already at this version.
    Current,
    /// Check mode: not there.
    Missing,
    /// Check mode: there, another version (or not wiretrail's).
    Outdated,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateStatus {
    pub name: String,
    pub state: TemplateState,
    /// The version found on the cluster, if any.
    pub found_version: Option<i64>,
}

/// Install (or, with `check_only`, only check) both templates.
pub async fn setup(
    client: &EsClient,
    cfg: &SinkConfig,
    check_only: bool,
) -> Result<Vec<TemplateStatus>, EsError> {
    let mut text = match detect(client).await? {
        // match_only_text arrived in OpenSearch 2.12 only; text works everywhere.
        Flavor::OpenSearch { .. } => "text",
        _ => "match_only_text",
    };
    let mut out = Vec::new();
    // The namespace client borrows the transport; the builders borrow it.
    let indices = client.es.indices();
    for which in 0..2 {
        let (name, _) = &ecs::templates(&cfg.index_prefix, text)[which];
        let name = name.clone();
        let req = Req::new("GET", format!("/_index_template/{name}"));
        let a = client
            .call(&req, || {
                indices
                    .get_index_template(IndicesGetIndexTemplateParts::Name(&name))
                    .send()
            })
            .await?;
        let found_version = match a.status {
            200 => Some(
                a.body["index_templates"][0]["index_template"]["version"]
                    .as_i64()
                    .unwrap_or(-1),
            ),
            404 => None,
            s => return Err(status_error(&req, s, &a.body, 1)),
        };
        let state = match (found_version, check_only) {
            (Some(v), _) if v == ecs::TEMPLATE_VERSION => TemplateState::Current,
            (None, true) => TemplateState::Missing,
            (Some(_), true) => TemplateState::Outdated,
            (found, false) => {
                let req = Req::new("PUT", format!("/_index_template/{name}"));
                loop {
                    let body = ecs::templates(&cfg.index_prefix, text).swap_remove(which).1;
                    let a = client
                        .call(&req, || {
                            indices
                                .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
                                .body(body.clone())
                                .send()
                        })
                        .await?;
                    if a.is_success() {
                        break;
                    }
                    // `match_only_text` lives in the `mapper-extras` module,
                    // which minimal distributions leave out (Elasticsearch's
                    // integ-test zip: "The mapper type [match_only_text] ...
                    // does not exist"): `text` indexes the same words.
                    if a.status == 400
                        && text == "match_only_text"
                        && a.body.to_string().contains("[match_only_text]")
                    {
                        tracing::info!("this cluster has no match_only_text (no mapper-extras module): message fields are mapped as text");
                        text = "text";
                        continue;
                    }
                    return Err(status_error(&req, a.status, &a.body, 1));
                }
                if found.is_some() {
                    TemplateState::Updated
                } else {
                    TemplateState::Installed
                }
            }
        };
        out.push(TemplateStatus {
            name,
            state,
            found_version,
        });
    }
    Ok(out)
}

/// One item that could not be written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemFailure {
    pub index: String,
    pub id: String,
    pub status: u16,
    pub error_type: Option<String>,
    pub reason: Option<String>,
}

impl std::fmt::Display for ItemFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}: {} {}: {}",
            self.index,
            self.id,
            self.status,
            self.error_type.as_deref().unwrap_or("?"),
            self.reason.as_deref().unwrap_or("")
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PublishSummary {
    pub incidents: u64,
    pub events: u64,
    /// Documents written (created + updated).
    pub indexed: u64,
    pub created: u64,
    pub updated: u64,
    pub failed: Vec<ItemFailure>,
    /// Item resends after a 429/5xx item answer.
    pub retried_items: u64,
    pub requests: u64,
    /// The templates as found (and installed when missing or older) before
    /// writing; empty when the user may not manage templates (403).
    pub templates: Vec<TemplateStatus>,
}

impl PublishSummary {
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One NDJSON action + source pair.
#[derive(Debug, Clone)]
struct Item {
    index: String,
    id: String,
    lines: Bytes,
}

fn encode(doc: &EsDoc) -> Item {
    let mut buf = serde_json::to_vec(&json!({ "index": { "_index": doc.index, "_id": doc.id } }))
        .expect("json");
    buf.push(b'\n');
    serde_json::to_writer(&mut buf, &doc.source).expect("json");
    buf.push(b'\n');
    Item {
        index: doc.index.clone(),
        id: doc.id.clone(),
        lines: Bytes::from(buf),
    }
}

/// Publish a report: its incidents and timeline events.
pub async fn publish(
    client: &EsClient,
    cfg: &SinkConfig,
    report: &Report,
) -> Result<PublishSummary, EsError> {
    let (inc_index, ev_index) = (cfg.incidents_index(), cfg.events_index());
    let mut summary = PublishSummary::default();
    // Without the templates the first write maps `source.ip` as text and
    // `@timestamp` as a millisecond date: Kibana's `ip`/range queries then
    // miss. A user who may not manage templates relies on `es setup` run by
    // someone who may.
    match setup(client, cfg, false).await {
        Ok(t) => summary.templates = t,
        Err(e) if e.status() == Some(403) => tracing::warn!(
            "cannot check the index templates ({e}); publishing anyway: run `wiretrail es setup` with a user that has manage_index_templates"
        ),
        Err(e) => return Err(e),
    }
    let docs = ecs::documents(report, &inc_index, &ev_index).inspect(|d| {
        if d.index == inc_index {
            summary.incidents += 1;
        } else {
            summary.events += 1;
        }
    });
    let mut counts = Counts::default();
    publish_docs(client, cfg, docs, &mut counts).await?;
    summary.indexed = counts.created + counts.updated;
    summary.created = counts.created;
    summary.updated = counts.updated;
    summary.failed = counts.failed;
    summary.retried_items = counts.retried_items;
    summary.requests = counts.requests;
    if cfg.refresh {
        let names = [inc_index.as_str(), ev_index.as_str()];
        let req = Req::new("POST", format!("/{}/_refresh", names.join(",")));
        let indices = client.es.indices();
        client
            .call_ok(&req, || {
                indices.refresh(IndicesRefreshParts::Index(&names)).send()
            })
            .await?;
    }
    Ok(summary)
}

#[derive(Debug, Default)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub failed: Vec<ItemFailure>,
    pub retried_items: u64,
    pub requests: u64,
}

/// Write any documents with bounded batches (the engine of [`publish`],
/// public for benchmarks and other producers).
pub async fn publish_docs(
    client: &EsClient,
    cfg: &SinkConfig,
    docs: impl Iterator<Item = EsDoc>,
    counts: &mut Counts,
) -> Result<(), EsError> {
    let max_docs = cfg.bulk_max_docs.max(1);
    let max_bytes = cfg.bulk_max_bytes.max(1);
    let mut batch: Vec<Item> = Vec::new();
    let mut bytes = 0usize;
    for d in docs {
        let it = encode(&d);
        if !batch.is_empty() && (batch.len() >= max_docs || bytes + it.lines.len() > max_bytes) {
            send_batch(client, std::mem::take(&mut batch), counts).await?;
            bytes = 0;
        }
        bytes += it.lines.len();
        batch.push(it);
    }
    if !batch.is_empty() {
        send_batch(client, batch, counts).await?;
    }
    Ok(())
}

fn retry_item(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

async fn send_batch(
    client: &EsClient,
    batch: Vec<Item>,
    counts: &mut Counts,
) -> Result<(), EsError> {
    let policy = client.retry_policy().clone();
    let req = Req::new("POST", "/_bulk");
    // Work queue of (items, resend round): a 413 splits, 429 items come back.
    let mut queue: VecDeque<(Vec<Item>, u32)> = VecDeque::from([(batch, 0)]);
    while let Some((items, round)) = queue.pop_front() {
        let mut body = Vec::with_capacity(items.iter().map(|i| i.lines.len()).sum());
        for i in &items {
            body.extend_from_slice(&i.lines);
        }
        let body = Bytes::from(body);
        counts.requests += 1;
        let a = client
            .call(&req, || {
                client
                    .es
                    .bulk(BulkParts::None)
                    .body(vec![body.clone()])
                    .send()
            })
            .await?;
        if a.status == 413 {
            if items.len() == 1 {
                let it = &items[0];
                counts.failed.push(ItemFailure {
                    index: it.index.clone(),
                    id: it.id.clone(),
                    status: 413,
                    error_type: None,
                    reason: Some(format!(
                        "document alone ({} bytes) exceeds the cluster's http.max_content_length",
                        it.lines.len()
                    )),
                });
                continue;
            }
            let mut left = items;
            let right = left.split_off(left.len() / 2);
            queue.push_front((right, round));
            queue.push_front((left, round));
            continue;
        }
        if !a.is_success() {
            return Err(status_error(&req, a.status, &a.body, 1));
        }
        let results = a.body["items"]
            .as_array()
            .ok_or_else(|| EsError::Response {
                method: "POST",
                path: "/_bulk".into(),
                message: "bulk answer has no items array".into(),
            })?;
        if results.len() != items.len() {
            return Err(EsError::Response {
                method: "POST",
                path: "/_bulk".into(),
                message: format!(
                    "bulk answer has {} items for {} actions",
                    results.len(),
                    items.len()
                ),
            });
        }
        let mut again = Vec::new();
        for (it, r) in items.into_iter().zip(results) {
            // One-key object named after the action (A6.2).
            let r = r
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let status = r["status"].as_u64().unwrap_or(0) as u16;
            if let Some(err) = r.get("error").filter(|e| !e.is_null()) {
                if retry_item(status) && round < policy.max_retries {
                    again.push(it);
                    continue;
                }
                let (error_type, reason) = crate::error::error_details(&json!({ "error": err }));
                let reason = reason.map(|r| client.clean(&r));
                counts.failed.push(ItemFailure {
                    index: it.index,
                    id: it.id,
                    status,
                    error_type,
                    reason,
                });
                continue;
            }
            match r["result"].as_str() {
                Some("created") => counts.created += 1,
                Some("updated") | Some("noop") => counts.updated += 1,
                other => counts.failed.push(ItemFailure {
                    index: it.index,
                    id: it.id,
                    status,
                    error_type: None,
                    reason: Some(format!("unexpected item result {other:?}")),
                }),
            }
        }
        if !again.is_empty() {
            counts.retried_items += again.len() as u64;
            let wait = client.retry_policy().backoff(round + 1);
            tracing::warn!(
                items = again.len(),
                round = round + 1,
                wait_ms = wait.as_millis() as u64,
                "bulk items refused (429/5xx): resending them"
            );
            tokio::time::sleep(wait).await;
            queue.push_back((again, round + 1));
        }
    }
    Ok(())
}

/// Publish from a report file's JSON text (what `es publish REPORT.json` reads).
pub fn parse_report(json_text: &str) -> Result<Report, EsError> {
    serde_json::from_str(json_text).map_err(|e| {
        EsError::Config(format!(
            "report JSON: line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}
