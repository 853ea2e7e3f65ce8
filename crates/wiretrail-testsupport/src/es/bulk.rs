//! `_bulk`: NDJSON parsing, per-item results (es-api.md A6) and the mapping
//! checks that produce real `document_parsing_exception` items.

use super::store::{parse_time_value, Doc, Index, IndexData, Store};
use serde_json::{json, Value};
use std::sync::Arc;

/// Whole-request failure: (status, error type, reason).
pub type BulkError = (u16, &'static str, String);

/// One parsed action.
struct Action {
    op: String,
    index: Option<String>,
    id: Option<String>,
    source: Option<Value>,
}

fn parse(body: &[u8]) -> Result<Vec<Action>, BulkError> {
    if body.is_empty() {
        return Err((
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;".into(),
        ));
    }
    if !body.ends_with(b"\n") {
        return Err((
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| (400, "parse_exception", format!("body is not UTF-8: {e}")))?;
    let mut lines = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty());
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        let v: Value = serde_json::from_str(line).map_err(|e| {
            (
                400,
                "x_content_parse_exception",
                format!("[1:1] Unexpected character in action line: {e}"),
            )
        })?;
        let (op, meta) = v.as_object().and_then(|o| o.iter().next()).ok_or((
            400,
            "illegal_argument_exception",
            "Malformed action/metadata line".to_string(),
        ))?;
        let op = op.clone();
        if !["index", "create", "delete", "update"].contains(&op.as_str()) {
            return Err((400, "illegal_argument_exception", format!("Malformed action/metadata line [1], expected one of [create, delete, index, update] but found [{op}]")));
        }
        let source = if op == "delete" {
            None
        } else {
            let l = lines.next().ok_or((
                400,
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]".to_string(),
            ))?;
            Some(serde_json::from_str(l).map_err(|e| {
                (
                    400,
                    "x_content_parse_exception",
                    format!("failed to parse source: {e}"),
                )
            })?)
        };
        out.push(Action {
            op,
            index: meta["_index"].as_str().map(String::from),
            id: meta["_id"].as_str().map(String::from),
            source,
        });
    }
    Ok(out)
}

/// Execute a bulk body. `reject` decides, per item position, whether the
/// item is refused with a 429 (fault injection).
pub fn execute(
    store: &mut Store,
    path_index: Option<&str>,
    body: &[u8],
    mut reject: impl FnMut() -> bool,
) -> Result<Value, BulkError> {
    let actions = parse(body)?;
    if actions
        .iter()
        .any(|a| a.index.is_none() && path_index.is_none())
    {
        return Err((
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index is missing;".into(),
        ));
    }
    let mut items = Vec::with_capacity(actions.len());
    let mut errors = false;
    for a in actions {
        let index = a
            .index
            .clone()
            .unwrap_or_else(|| path_index.unwrap().to_string());
        let op = a.op.clone();
        let item = if reject() {
            json!({ op.clone(): error_item(&index, a.id.as_deref().unwrap_or(""), 429, json!({
                "type": "es_rejected_execution_exception",
                "reason": "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=512, max_coordinating_and_primary_bytes=53687091]"
            })) })
        } else {
            apply(store, &index, a)
        };
        if item[&op].get("error").is_some() {
            errors = true;
        }
        items.push(item);
    }
    // Items are wrapped in a one-key object named after the action.
    Ok(json!({ "took": 1, "errors": errors, "items": items }))
}

fn error_item(index: &str, id: &str, status: u16, error: Value) -> Value {
    json!({ "_index": index, "_id": id, "status": status, "error": error })
}

fn apply(store: &mut Store, index: &str, a: Action) -> Value {
    let op = a.op.clone();
    let wrap = |v: Value| json!({ op.clone(): v });
    if !store.indices.contains_key(index) {
        if a.op == "delete" {
            return wrap(error_item(
                index,
                a.id.as_deref().unwrap_or(""),
                404,
                json!({"type": "index_not_found_exception", "reason": format!("no such index [{index}]"), "index": index}),
            ));
        }
        let mappings = store.template_mappings(index);
        store
            .indices
            .insert(index.to_string(), Index::new(mappings));
    }
    store.seq_no += 1;
    let seq_no = store.seq_no;
    let generated_id = format!("auto{seq_no}");
    let idx = store.indices.get_mut(index).unwrap();
    let mappings = idx.mappings.clone();
    let IndexData::Stored { docs, by_id } = &mut idx.data else {
        return wrap(error_item(
            index,
            "",
            400,
            json!({"type": "illegal_argument_exception", "reason": "generated indices are read-only"}),
        ));
    };
    let id = a.id.unwrap_or(generated_id);
    let existing = by_id.get(&id).copied();
    let ok = |status: u16, result: &str, version: u64| {
        json!({ "_index": index, "_id": id, "_version": version, "result": result,
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": seq_no, "_primary_term": 1, "status": status })
    };
    match a.op.as_str() {
        "delete" => match existing {
            // Deleting leaves a tombstone-free hole: rebuild the id map.
            Some(pos) => {
                let v = docs[pos].version + 1;
                Arc::make_mut(docs).remove(pos);
                *by_id = docs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (d.id.clone(), i))
                    .collect();
                wrap(ok(200, "deleted", v))
            }
            None => wrap(ok(404, "not_found", 1)),
        },
        "update" => {
            let Some(pos) = existing else {
                return wrap(error_item(
                    index,
                    &id,
                    404,
                    json!({"type": "document_missing_exception", "reason": format!("[{id}]: document missing"), "index": index, "shard": "0"}),
                ));
            };
            let mut merged = (*docs[pos].source).clone();
            if let (Some(m), Some(d)) = (
                merged.as_object_mut(),
                a.source.as_ref().and_then(|s| s["doc"].as_object()),
            ) {
                for (k, v) in d {
                    m.insert(k.clone(), v.clone());
                }
            }
            let d = &mut Arc::make_mut(docs)[pos];
            d.version += 1;
            d.source = Arc::new(merged);
            wrap(ok(200, "updated", d.version))
        }
        _ => {
            let source = a.source.unwrap_or(Value::Null);
            if let Err(e) = check_mapping(&mappings, &source, &id) {
                return wrap(error_item(index, &id, 400, e));
            }
            match existing {
                Some(_) if a.op == "create" => wrap(error_item(
                    index,
                    &id,
                    409,
                    json!({
                    "type": "version_conflict_engine_exception",
                    "reason": format!("[{id}]: version conflict, document already exists (current version [{}])", docs[existing.unwrap()].version),
                    "index_uuid": "RyFItiK4R4egwbGF3_8GAg", "shard": "0", "index": index }),
                )),
                Some(pos) => {
                    let d = &mut Arc::make_mut(docs)[pos];
                    d.version += 1;
                    d.source = Arc::new(source);
                    wrap(ok(200, "updated", d.version))
                }
                None => {
                    by_id.insert(id.clone(), docs.len());
                    Arc::make_mut(docs).push(Doc {
                        id: id.clone(),
                        source: Arc::new(source),
                        version: 1,
                    });
                    wrap(ok(201, "created", 1))
                }
            }
        }
    }
}

/// Check a document against `mappings.properties`: values of mapped fields
/// must parse as their type; `dynamic: strict` refuses unmapped fields.
pub fn check_mapping(mappings: &Value, doc: &Value, id: &str) -> Result<(), Value> {
    if mappings.is_null() {
        return Ok(());
    }
    let strict = mappings["dynamic"] == json!("strict");
    walk(&mappings["properties"], doc, "", strict, id)
}

fn walk(props: &Value, doc: &Value, prefix: &str, strict: bool, id: &str) -> Result<(), Value> {
    let Some(obj) = doc.as_object() else {
        return Ok(());
    };
    for (k, v) in obj {
        let full = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        // A dotted key in the source means nested objects.
        let mapping = lookup_mapping(props, k);
        match mapping {
            None if strict => {
                return Err(json!({"type": "strict_dynamic_mapping_exception",
                    "reason": format!("[1:2] mapping set to strict, dynamic introduction of [{k}] within [{}] is not allowed", if prefix.is_empty() { "_doc" } else { prefix })}));
            }
            None => {}
            Some(m) => {
                let ty = m["type"].as_str().unwrap_or("object");
                if ty == "object" || m.get("properties").is_some() {
                    let items: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        x => vec![x],
                    };
                    for x in items {
                        if !x.is_object() && !x.is_null() {
                            return Err(parse_error(
                                &full,
                                "object",
                                x,
                                id,
                                "tried to parse field as object, but found a concrete value",
                            ));
                        }
                        walk(&m["properties"], x, &full, strict, id)?;
                    }
                    continue;
                }
                let values: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    x => vec![x],
                };
                for x in values {
                    if x.is_null() {
                        continue;
                    }
                    let good = match ty {
                        "ip" => x
                            .as_str()
                            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
                        "long" | "integer" | "short" | "unsigned_long" => {
                            x.as_i64().is_some()
                                || x.as_u64().is_some()
                                || x.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
                        }
                        "float" | "double" | "half_float" | "scaled_float" => {
                            x.as_f64().is_some()
                                || x.as_str().is_some_and(|s| s.parse::<f64>().is_ok())
                        }
                        "date" | "date_nanos" => parse_time_value(x).is_some(),
                        "boolean" => {
                            x.is_boolean()
                                || x.as_str().is_some_and(|s| s == "true" || s == "false")
                        }
                        "keyword" | "text" | "match_only_text" | "wildcard"
                        | "constant_keyword" => !x.is_object(),
                        _ => true,
                    };
                    if !good {
                        let why = match ty {
                            "ip" => format!(
                                "'{}' is not an IP string literal.",
                                x.as_str().unwrap_or(&x.to_string())
                            ),
                            _ => format!(
                                "For input string: \"{}\"",
                                x.as_str().unwrap_or(&x.to_string())
                            ),
                        };
                        return Err(parse_error(&full, ty, x, id, &why));
                    }
                }
            }
        }
    }
    Ok(())
}

fn lookup_mapping<'a>(props: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(m) = props.get(key) {
        return Some(m);
    }
    let (head, rest) = key.split_once('.')?;
    lookup_mapping(&props.get(head)?["properties"], rest)
}

fn parse_error(field: &str, ty: &str, v: &Value, id: &str, why: &str) -> Value {
    json!({
        "type": "document_parsing_exception",
        "reason": format!("[1:2] failed to parse field [{field}] of type [{ty}] in document with id '{id}'. Preview of field's value: '{}'", v.as_str().map(String::from).unwrap_or_else(|| v.to_string())),
        "caused_by": { "type": "illegal_argument_exception", "reason": why }
    })
}
