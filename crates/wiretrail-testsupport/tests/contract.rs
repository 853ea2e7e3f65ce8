//! The test server's answers against the shapes in `shared/es-api.md`,
//! over raw HTTP/1.1 (no client library in between).

use serde_json::{json, Value};
use std::io::{Read, Write};
use wiretrail_testsupport::{Auth, EsServer, Flavor, ServerConfig};

/// (status, headers lowercased, JSON body or Null).
fn http(
    server: &EsServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Value) {
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (
        status,
        headers,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    h.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn root_and_product_header() {
    let es = EsServer::start(ServerConfig::default()).unwrap();
    let (st, h, b) = http(&es, "GET", "/", &[], b"");
    assert_eq!(st, 200);
    assert_eq!(header(&h, "x-elastic-product"), ["Elasticsearch"]);
    assert_eq!(b["version"]["build_flavor"], "default");
    let os = EsServer::start(ServerConfig {
        flavor: Flavor::OpenSearch("2.11.0".into()),
        ..ServerConfig::default()
    })
    .unwrap();
    let (_, h, b) = http(&os, "GET", "/", &[], b"");
    assert!(header(&h, "x-elastic-product").is_empty());
    assert_eq!(b["version"]["distribution"], "opensearch");
    // No ES point in time on OpenSearch: the routing error is a string.
    os.add_docs("logs", [("1".to_string(), json!({"message": "m"}))]);
    let (st, _, b) = http(&os, "POST", "/logs/_pit?keep_alive=1m", &[], b"");
    assert_eq!(
        (st, b["error"].as_str().unwrap()),
        (
            400,
            "no handler found for uri [/logs/_pit] and method [POST]"
        )
    );
}

#[test]
fn pit_rules() {
    let es = EsServer::start(ServerConfig::default()).unwrap();
    es.add_docs(
        "logs",
        (0..5).map(|i| {
            (
                format!("d{i}"),
                json!({"@timestamp": format!("2024-05-01T10:00:0{i}Z"), "message": "x"}),
            )
        }),
    );
    let (st, _, b) = http(&es, "POST", "/logs/_pit", &[], b"");
    assert_eq!(
        (st, b["error"]["type"].as_str()),
        (400, Some("action_request_validation_exception"))
    );
    let (st, _, b) = http(&es, "POST", "/logs/_pit?keep_alive=2d", &[], b"");
    assert_eq!(st, 400);
    assert!(b["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("search.max_keep_alive"));
    let (_, _, b) = http(&es, "POST", "/logs/_pit?keep_alive=1m", &[], b"");
    let id = b["id"].as_str().unwrap().to_string();
    let q = json!({"pit": {"id": id, "keep_alive": "1m"}, "size": 2, "sort": [{"@timestamp": "asc"}], "track_total_hits": false});
    let (st, _, b) = http(
        &es,
        "POST",
        "/logs/_search",
        &[("content-type", "application/json")],
        q.to_string().as_bytes(),
    );
    assert_eq!(st, 400);
    assert!(b["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("[indices] cannot be used with point in time"));
    let (st, _, b) = http(
        &es,
        "POST",
        "/_search",
        &[("content-type", "application/json")],
        q.to_string().as_bytes(),
    );
    assert_eq!(st, 200);
    assert!(
        b["hits"].get("total").is_none(),
        "track_total_hits:false omits total"
    );
    let hits = b["hits"]["hits"].as_array().unwrap();
    assert_eq!(
        hits[0]["sort"],
        json!([1714557600000i64, 0]),
        "date millis + implicit _shard_doc"
    );
    let newest = b["pit_id"].as_str().unwrap().to_string();
    let (st, _, b) = http(
        &es,
        "DELETE",
        "/_pit",
        &[("content-type", "application/json")],
        json!({"id": newest}).to_string().as_bytes(),
    );
    assert_eq!((st, b), (200, json!({"succeeded": true, "num_freed": 1})));
    let (st, _, b) = http(
        &es,
        "DELETE",
        "/_pit",
        &[("content-type", "application/json")],
        json!({"id": newest}).to_string().as_bytes(),
    );
    assert_eq!((st, b), (404, json!({"succeeded": false, "num_freed": 0})));
    // A search on the closed PIT: the all-shards-failed 404.
    let (st, _, b) = http(&es, "POST", "/_search", &[], q.to_string().as_bytes());
    assert_eq!(st, 404);
    assert_eq!(b["error"]["type"], "search_phase_execution_exception");
    assert_eq!(
        b["error"]["caused_by"]["type"],
        "search_context_missing_exception"
    );
}

#[test]
fn bulk_rules() {
    let es = EsServer::start(ServerConfig::default()).unwrap();
    let (st, _, b) = http(
        &es,
        "POST",
        "/_bulk",
        &[],
        b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"f\":1}",
    );
    assert_eq!(st, 400);
    assert_eq!(
        b["error"]["reason"],
        "The bulk request must be terminated by a newline [\\n]"
    );
    let body = b"{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"f\":1}\n{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"f\":2}\n{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"f\":3}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"zz\"}}\n";
    let (st, _, b) = http(
        &es,
        "POST",
        "/_bulk",
        &[("content-type", "application/x-ndjson")],
        body,
    );
    assert_eq!(st, 200);
    assert_eq!(b["errors"], true);
    let items = b["items"].as_array().unwrap();
    assert_eq!(
        (
            items[0]["create"]["status"].as_u64(),
            items[0]["create"]["result"].as_str()
        ),
        (Some(201), Some("created"))
    );
    assert_eq!(items[1]["create"]["status"], 409);
    assert_eq!(
        items[1]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(
        (
            items[2]["index"]["status"].as_u64(),
            items[2]["index"]["_version"].as_u64()
        ),
        (Some(200), Some(2))
    );
    assert_eq!(
        (
            items[3]["delete"]["status"].as_u64(),
            items[3]["delete"]["result"].as_str()
        ),
        (Some(404), Some("not_found"))
    );
    assert!(
        items[3]["delete"].get("error").is_none(),
        "a missing delete is not an error"
    );
}

#[test]
fn templates_and_auth() {
    let es = EsServer::start(ServerConfig {
        auth: Some(Auth::ApiKey("bXlpZDpteWtleQ==".into())),
        ..ServerConfig::default()
    })
    .unwrap();
    let (st, h, b) = http(&es, "GET", "/_index_template/x", &[], b"");
    assert_eq!(st, 401);
    assert_eq!(header(&h, "www-authenticate").len(), 3);
    assert!(b["error"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("missing authentication credentials for REST request"));
    let auth = [("authorization", "ApiKey bXlpZDpteWtleQ==")];
    let (st, _, b) = http(&es, "GET", "/_index_template/x", &auth, b"");
    assert_eq!(
        (st, b["error"]["reason"].as_str()),
        (404, Some("index template matching [x] not found"))
    );
    let (st, _, b) = http(&es, "GET", "/_index_template/x*", &auth, b"");
    assert_eq!((st, b), (404, json!({"index_templates": []})));
    let t = json!({"index_patterns": ["x-*"], "priority": 300, "version": 3, "template": {"mappings": {"properties": {"source": {"properties": {"ip": {"type": "ip"}}}}}}});
    let (st, _, _) = http(
        &es,
        "PUT",
        "/_index_template/x",
        &auth,
        t.to_string().as_bytes(),
    );
    assert_eq!(st, 200);
    let (_, _, b) = http(&es, "GET", "/_index_template/x", &auth, b"");
    assert_eq!(b["index_templates"][0]["index_template"]["version"], 3);
    // The template's mapping applies to a new index: a bad IP is a 400 item.
    let body = b"{\"index\":{\"_index\":\"x-1\",\"_id\":\"7\"}}\n{\"source\":{\"ip\":\"backend.local\"}}\n";
    let (_, _, b) = http(&es, "POST", "/_bulk", &auth, body);
    let item = &b["items"][0]["index"];
    assert_eq!(
        (item["status"].as_u64(), item["error"]["type"].as_str()),
        (Some(400), Some("document_parsing_exception"))
    );
    assert!(item["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("failed to parse field [source.ip] of type [ip] in document with id '7'"));
}

/// OpenSearch's own point in time, as OpenSearch 2.19.6 and 3.6.0 answered
/// (scripts/search-server.sh os2/os3): `pit_id` + `creation_time`; no
/// tiebreaker added; `_shard_doc` refused before 3.3 and a bare doc id from
/// 3.3; the same id back on every search; close answers 200 per id, even
/// for one already closed; a closed PIT searched is a 404 context missing.
#[test]
fn opensearch_pit_rules() {
    for version in ["2.19.6", "3.6.0"] {
        let os = EsServer::start(ServerConfig {
            flavor: Flavor::OpenSearch(version.into()),
            ..ServerConfig::default()
        })
        .unwrap();
        for idx in ["pa", "pb"] {
            os.add_docs(
                idx,
                (0..2).map(|i| {
                    (
                        format!("{}", i + 1),
                        json!({"@timestamp": "2024-01-01T00:00:00Z", "message": "x"}),
                    )
                }),
            );
        }
        let (st, _, b) = http(
            &os,
            "POST",
            "/pa,pb/_search/point_in_time?keep_alive=1m&allow_partial_pit_creation=false",
            &[],
            b"",
        );
        assert_eq!(st, 200, "{b}");
        assert!(b["creation_time"].is_u64(), "{b}");
        assert_eq!(b["_shards"]["total"], 2);
        let id = b["pit_id"].as_str().unwrap().to_string();
        let search = |sort: Value| {
            let q = json!({"pit": {"id": id, "keep_alive": "1m"}, "size": 10, "sort": sort});
            http(
                &os,
                "POST",
                "/_search",
                &[("content-type", "application/json")],
                q.to_string().as_bytes(),
            )
        };
        let (st, _, b) = search(json!([{"@timestamp": "asc"}]));
        assert_eq!(st, 200);
        assert_eq!(b["pit_id"].as_str(), Some(id.as_str()), "no rotation");
        assert_eq!(
            b["hits"]["hits"][0]["sort"],
            json!([1704067200000i64]),
            "no tiebreaker added"
        );
        let (st, _, b) = search(json!([{"@timestamp": "asc"}, {"_shard_doc": "asc"}]));
        if version.starts_with('2') {
            assert_eq!(st, 400);
            assert_eq!(b["error"]["root_cause"][0]["type"], "query_shard_exception");
            assert!(b["error"]["root_cause"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("No mapping found for [_shard_doc]"));
        } else {
            assert_eq!(st, 200);
            let sorts: Vec<Value> = b["hits"]["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["sort"].clone())
                .collect();
            // Both indices' first documents: the same values, no shard in them.
            assert_eq!(sorts[0], json!([1704067200000i64, 0]));
            assert_eq!(sorts[1], json!([1704067200000i64, 0]));
        }
        let (_, _, b) = search(json!([{"@timestamp": "asc"}, {"_doc": "asc"}]));
        assert_eq!(b["hits"]["hits"][1]["sort"], json!([1704067200000i64, 0]));
        let close = || {
            http(
                &os,
                "DELETE",
                "/_search/point_in_time",
                &[("content-type", "application/json")],
                json!({"pit_id": [id]}).to_string().as_bytes(),
            )
        };
        for _ in 0..2 {
            let (st, _, b) = close();
            assert_eq!(st, 200);
            assert_eq!(b["pits"][0]["successful"], true);
            assert_eq!(b["pits"][0]["pit_id"].as_str(), Some(id.as_str()));
        }
        let (st, _, b) = search(json!([{"@timestamp": "asc"}]));
        assert_eq!(st, 404);
        assert_eq!(
            b["error"]["caused_by"]["type"],
            "search_context_missing_exception"
        );
        // Elasticsearch's `_pit` does not exist there.
        let (st, _, _) = http(&os, "POST", "/pa/_pit?keep_alive=1m", &[], b"");
        assert_eq!(st, 400);
    }
}
