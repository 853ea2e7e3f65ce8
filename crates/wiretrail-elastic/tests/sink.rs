//! Templates and publishing against the in-process server (or a real cluster).

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use wiretrail_correlate::model::Report;
use wiretrail_elastic::ecs;
use wiretrail_elastic::sink::{parse_report, publish, setup, TemplateState};
use wiretrail_testsupport::{Endpoint, Fault, FaultKind};

fn report() -> Report {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report.json"
    ))
    .unwrap();
    parse_report(&text).unwrap()
}

/// A report with many incidents (copies of the fixture's, new ids) for batching.
fn big_report(copies: usize) -> Report {
    let mut r = report();
    let base = r.incidents.clone();
    r.incidents.clear();
    for i in 0..copies {
        for inc in &base {
            let mut inc = inc.clone();
            inc.id = format!("{}-{i}", inc.id);
            r.incidents.push(inc);
        }
    }
    r
}

fn n_docs(r: &Report) -> usize {
    r.incidents.iter().map(|i| 1 + i.timeline.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_installs_then_reports_current() {
    let t = target();
    let client = t.client();
    let st = setup(&client, &t.cfg.sink, true).await.unwrap();
    assert!(
        st.iter().all(|s| s.state == TemplateState::Missing),
        "{st:?}"
    );
    let st = setup(&client, &t.cfg.sink, false).await.unwrap();
    assert_eq!(
        st.iter().map(|s| s.state).collect::<Vec<_>>(),
        [TemplateState::Installed, TemplateState::Installed]
    );
    let st = setup(&client, &t.cfg.sink, false).await.unwrap();
    assert!(
        st.iter().all(|s| s.state == TemplateState::Current),
        "{st:?}"
    );
    if let Some(s) = &t.server {
        let tpl = s.template(&format!("{}-events", t.prefix)).unwrap();
        let p = &tpl["template"]["mappings"]["properties"];
        assert_eq!(p["@timestamp"]["type"], "date_nanos");
        assert_eq!(p["source"]["properties"]["ip"]["type"], "ip");
        assert_eq!(
            p["network"]["properties"]["community_id"]["type"],
            "keyword"
        );
        assert_eq!(
            tpl["index_patterns"],
            json!([format!("{}-events*", t.prefix)])
        );
        // An older version on the cluster is replaced (install) or reported (check).
        let mut old = tpl.clone();
        old["version"] = json!(0);
        let name = format!("{}-events", t.prefix);
        let r = client
            .es()
            .indices()
            .put_index_template(elasticsearch::indices::IndicesPutIndexTemplateParts::Name(
                &name,
            ))
            .body(old)
            .send()
            .await
            .unwrap();
        assert!(r.status_code().is_success());
        let st = setup(&client, &t.cfg.sink, true).await.unwrap();
        assert_eq!(st[1].state, TemplateState::Outdated);
        assert_eq!(st[1].found_version, Some(0));
        let st = setup(&client, &t.cfg.sink, false).await.unwrap();
        assert_eq!(st[1].state, TemplateState::Updated);
    }
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_twice_same_documents() {
    let t = target();
    let client = t.client();
    setup(&client, &t.cfg.sink, false).await.unwrap();
    let r = report();
    let s1 = publish(&client, &t.cfg.sink, &r).await.unwrap();
    assert!(s1.is_complete(), "{:?}", s1.failed);
    assert_eq!((s1.incidents, s1.events), (2, 9));
    assert_eq!((s1.created, s1.updated), (11, 0));
    let s2 = publish(&client, &t.cfg.sink, &r).await.unwrap();
    assert_eq!((s2.created, s2.updated, s2.indexed), (0, 11, 11));
    let (inc, ev) = (t.cfg.sink.incidents_index(), t.cfg.sink.events_index());
    assert_eq!(t.count(&inc).await, 2);
    assert_eq!(t.count(&ev).await, 9);
    if let Some(s) = &t.server {
        let ids: BTreeSet<String> = s.docs(&inc).into_iter().map(|d| d.0).collect();
        assert_eq!(ids, r.incidents.iter().map(|i| i.id.clone()).collect());
        let docs = s.docs(&ev);
        assert!(
            docs.iter().all(|d| d.2 == 2),
            "each event written twice, same id"
        );
        let ids: BTreeSet<String> = docs.iter().map(|d| d.0.clone()).collect();
        let again: BTreeSet<String> = r
            .incidents
            .iter()
            .flat_map(|i| ecs::event_docs(i, &ev))
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, again);
        // The ECS shape Kibana will see.
        let inc_doc = &s.docs(&inc)[0].1;
        assert_eq!(inc_doc["@timestamp"], "2023-05-05T17:33:07.481516Z");
        assert_eq!(inc_doc["source"], json!({"ip": "10.1.1.5", "port": 51392}));
        assert_eq!(
            inc_doc["destination"],
            json!({"ip": "10.2.0.7", "port": 80})
        );
        assert_eq!(inc_doc["wiretrail"]["cause"], "flow_split");
        assert_eq!(inc_doc["wiretrail"]["stray_nodes"], json!(["backend-03"]));
        assert_eq!(inc_doc["event"]["duration"], 2_386_000);
        let rst = docs
            .iter()
            .map(|d| &d.1)
            .find(|d| d["wiretrail"]["packet"]["flags"] == json!(["RST"]))
            .unwrap();
        assert_eq!(rst["host"]["name"], "backend-03");
        assert_eq!(rst["source"]["ip"], "10.2.0.7", "RST goes backend → proxy");
        assert_eq!(rst["@timestamp"], "2023-05-05T17:33:07.483410Z");
        assert_eq!(rst["wiretrail"]["packet"]["marks"], json!(["stray_rst"]));
    }
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_bulk_failures_are_retried() {
    let t = target();
    let Some(server) = injectable(&t, "bulk-429") else {
        return;
    };
    let client = t.client();
    setup(&client, &t.cfg.sink, false).await.unwrap();
    let r = big_report(60);
    let mut sink = t.cfg.sink.clone();
    sink.bulk_max_docs = 100;
    sink.bulk_max_bytes = 64 << 10;
    server.inject(Fault::new(Endpoint::Bulk, FaultKind::BulkItems429(7), 2, 4));
    server.inject(Fault::new(Endpoint::Bulk, FaultKind::Status(429), 5, 1));
    server.inject(Fault::new(Endpoint::Bulk, FaultKind::Status(503), 6, 1));
    server.inject(Fault::new(Endpoint::Bulk, FaultKind::Drop, 7, 1));
    server.inject(Fault::new(Endpoint::Bulk, FaultKind::Status(413), 3, 1));
    let s = publish(&client, &sink, &r).await.unwrap();
    assert!(s.is_complete(), "{:?}", s.failed);
    assert!(s.retried_items >= 7, "{s:?}");
    assert_eq!(s.indexed as usize, n_docs(&r));
    assert_eq!(s.events + s.incidents, n_docs(&r) as u64);
    // A dropped answer means the batch was applied, then resent: "updated".
    assert_eq!((s.created + s.updated) as usize, n_docs(&r));
    assert_eq!(server.docs(&sink.incidents_index()).len(), 120);
    assert_eq!(server.docs(&sink.events_index()).len(), 60 * 9);
    let batches_min = n_docs(&r).div_ceil(100);
    assert!(s.requests as usize > batches_min, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_errors_reported_with_ids() {
    let t = target();
    let client = t.client();
    setup(&client, &t.cfg.sink, false).await.unwrap();
    // An incidents index someone created with another type for our field.
    let inc = t.cfg.sink.incidents_index();
    let r = client
        .es()
        .indices()
        .create(elasticsearch::indices::IndicesCreateParts::Index(&inc))
        .body(json!({ "mappings": { "properties": { "wiretrail": { "properties": { "cause": { "type": "long" } } } } } }))
        .send()
        .await
        .unwrap();
    assert!(r.status_code().is_success());
    let rep = report();
    let s = publish(&client, &t.cfg.sink, &rep).await.unwrap();
    assert_eq!(s.failed.len(), 2, "{s:?}");
    let ids: BTreeSet<&str> = s.failed.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, rep.incidents.iter().map(|i| i.id.as_str()).collect());
    for f in &s.failed {
        assert_eq!(f.status, 400);
        assert!(
            matches!(
                f.error_type.as_deref(),
                Some("document_parsing_exception" | "mapper_parsing_exception")
            ),
            "{f}"
        );
        assert!(
            f.reason
                .as_deref()
                .unwrap_or("")
                .contains("wiretrail.cause"),
            "{f}"
        );
        assert!(f.to_string().starts_with(&format!("{inc}/inc-")), "{f}");
    }
    assert_eq!(s.indexed, 9, "events still written");
    t.cleanup().await;
}

#[test]
fn documents_are_deterministic_and_typed() {
    let r = report();
    let a: Vec<_> = ecs::documents(&r, "i", "e").collect();
    let b: Vec<_> = ecs::documents(&r, "i", "e").collect();
    assert_eq!(a, b);
    let ids: BTreeSet<&str> = a.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), a.len(), "ids unique");
    // Reordering the timeline keeps each event's id.
    let mut r2 = r.clone();
    r2.incidents[0].timeline.reverse();
    let ids2: BTreeSet<String> = ecs::documents(&r2, "i", "e").map(|d| d.id).collect();
    assert_eq!(ids2, ids.iter().map(|s| s.to_string()).collect());
    // Every document satisfies the template (the test server's mapping check).
    for (name, tpl) in ecs::templates("wiretrail", "match_only_text") {
        let mappings = &tpl["template"]["mappings"];
        let index = if name.ends_with("incidents") {
            "i"
        } else {
            "e"
        };
        for d in a.iter().filter(|d| d.index == index) {
            let strict = {
                let mut m = mappings.clone();
                m["dynamic"] = Value::from("strict");
                m
            };
            wiretrail_testsupport::es::bulk::check_mapping(&strict, &d.source, &d.id)
                .unwrap_or_else(|e| panic!("{}: {e}", d.id));
        }
    }
}
