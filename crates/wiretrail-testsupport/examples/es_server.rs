//! Run the in-process Elasticsearch test server on its own, for trying the
//! CLI by hand: `es_server [SECONDS]` prints its URL, loads the proxy error
//! lines of the seed incident into `logs-proxy`, and serves for SECONDS
//! (default 600).

use serde_json::json;
use wiretrail_testsupport::{EsServer, ServerConfig};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let server = EsServer::start(ServerConfig::default()).expect("start");
    let lines = [
        ("2023-05-05T09:33:07.481Z", "2023/05/05 17:33:07 http: proxy error: read tcp 10.1.1.5:51392->10.2.0.7:80: read: connection reset by peer"),
        ("2023-05-05T09:38:09.112Z", "2023/05/05 17:38:09 http: proxy error: read tcp 10.1.1.5:52468->10.2.0.7:80: read: connection reset by peer"),
        ("2023-05-05T09:39:14.020Z", "2023/05/05 17:39:14 http: proxy error: readfrom tcp 10.1.1.5:52736->10.2.0.7:80: write tcp 10.1.1.5:52736->10.2.0.7:80: use of closed network connection"),
        ("2023-05-05T07:03:34.500Z", "2023/05/05 15:03:34 http: proxy error: readfrom tcp 10.1.1.5:56344->10.2.0.7:80: write tcp 10.1.1.5:56344->10.2.0.7:80: write: broken pipe"),
        ("2023-05-05T09:40:00.000Z", "2023/05/05 17:40:00 GET /healthz 200"),
    ];
    server.add_docs(
        "logs-proxy",
        lines.iter().enumerate().map(|(i, (ts, msg))| {
            (
                format!("doc{i}"),
                json!({ "@timestamp": ts, "message": msg, "host": { "name": "proxy" } }),
            )
        }),
    );
    println!("{}", server.url());
    std::thread::sleep(std::time::Duration::from_secs(secs));
}
