//! Generated logs of the other proxies for `scripts/bench-logs.sh`: each
//! proxy's ordinary lines (its access or info lines, as its own log holds
//! them) with about 1 % of its error lines, the line shapes those of the
//! recorded fixtures (`tests/fixtures/proxies/`). `needle()` is the `rg`
//! pattern that finds exactly the lines wiretrail turns into records.

use super::Rng;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The formats `gen-proxy` writes.
pub const FORMATS: [&str; 5] = ["nginx", "haproxy", "caddy", "traefik", "envoy"];

/// The `rg` regex that matches this format's record lines and no other
/// line of the generated log.
pub fn needle(format: &str) -> &'static str {
    match format {
        "nginx" => "while (connecting to|sending request to|reading response header from) upstream",
        "haproxy" => " 50[234] ",
        "caddy" => "\"logger\":\"http\\.log\\.error|\"status\":50[234]",
        "traefik" => "\"DownstreamStatus\":50[234]",
        "envoy" => "\" 50[234] U",
        _ => panic!("unknown format {format}"),
    }
}

/// Write `mib` MiB of `format`'s log; returns (bytes, lines, record lines).
pub fn generate(format: &str, file: &Path, mib: u64) -> (u64, u64, u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file).expect("create"));
    let mut rng = Rng(17);
    let target = mib << 20;
    let (mut bytes, mut lines, mut records) = (0u64, 0u64, 0u64);
    let mut l = String::with_capacity(1024);
    let mut n = 0u64;
    while bytes < target {
        n += 1;
        l.clear();
        let err = rng.below(100) == 0;
        let (s, m) = (n / 60 % 60, n / 3600 % 60);
        let port = 32768 + rng.below(28000);
        let ms = rng.below(1000);
        let uri = [
            "/api/v1/items",
            "/upload/w3/r17",
            "/api/v2/orders/12345/lines",
            "/healthz",
        ][rng.below(4) as usize];
        let recs = match format {
            "nginx" => {
                if err {
                    let what = [
                        "recv() failed (104: Connection reset by peer) while reading response header from upstream",
                        "connect() failed (111: Connection refused) while connecting to upstream",
                        "upstream timed out (110: Connection timed out) while reading response header from upstream",
                        "upstream prematurely closed connection while reading response header from upstream",
                    ][rng.below(4) as usize];
                    l.push_str(&format!("2026/12/06 12:{m:02}:{s:02} [error] 812#812: *{n} {what}, client: 198.18.1.2, server: api, request: \"POST {uri} HTTP/1.1\", upstream: \"http://198.18.10.10:80{uri}\", host: \"198.18.1.1:8080\"\n"));
                    1
                } else if rng.below(20) == 0 {
                    l.push_str(&format!("2026/12/06 12:{m:02}:{s:02} [warn] 812#812: *{n} an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/1/00/00000{n} while reading upstream, client: 198.18.1.2, server: api, request: \"GET {uri} HTTP/1.1\", upstream: \"http://198.18.10.10:80{uri}\", host: \"198.18.1.1:8080\"\n"));
                    0
                } else {
                    l.push_str(&format!("2026/12/06 12:{m:02}:{s:02} [info] 812#812: *{n} client 198.18.1.2 closed keepalive connection\n"));
                    0
                }
            }
            "haproxy" => {
                // Byte counts never 502..=504: only the status field matches the needle.
                let b = 600 + rng.below(400);
                let (st, tsc, t) = if err {
                    [
                        ("502", "SH--", "0/0/0/-1/0"),
                        ("503", "SC--", "0/0/-1/-1/1001"),
                        ("504", "sH--", "0/0/0/-1/1001"),
                    ][rng.below(3) as usize]
                } else {
                    ("200", "----", "0/0/0/3/3")
                };
                l.push_str(&format!("<134>Dec  6 12:{m:02}:{s:02} lb1 haproxy[969]: 198.18.1.2:{port} [06/Dec/2026:12:{m:02}:{s:02}.{ms:03}] fe be_app/s1 198.18.0.2:{} {t} {st} {b} - - {tsc} 3/3/1/1/0 0/0 \"POST {uri} HTTP/1.1\"\n", port + 1));
                u64::from(err)
            }
            "caddy" => {
                let ts = format!("1796560{:03}.{:06}", n % 1000, rng.below(1_000_000));
                let req = format!("\"request\":{{\"remote_ip\":\"198.18.1.2\",\"remote_port\":\"{port}\",\"proto\":\"HTTP/1.1\",\"method\":\"POST\",\"host\":\"198.18.1.1:8080\",\"uri\":\"{uri}\",\"headers\":{{\"User-Agent\":[\"Go-http-client/1.1\"],\"Content-Length\":[\"5\"],\"Content-Type\":[\"text/plain\"]}}}}");
                if err {
                    l.push_str(&format!("{{\"level\":\"error\",\"ts\":{ts},\"logger\":\"http.log.error\",\"msg\":\"read tcp 198.18.0.2:{port}->198.18.10.10:80: read: connection reset by peer\",{req},\"duration\":0.000503,\"status\":502,\"err_id\":\"ntkmsanv1\",\"err_trace\":\"reverseproxy.statusError (reverseproxy.go:1272)\"}}\n"));
                    l.push_str(&format!("{{\"level\":\"error\",\"ts\":{ts},\"logger\":\"http.log.access\",\"msg\":\"handled request\",{req},\"user_id\":\"\",\"duration\":0.000503,\"size\":0,\"status\":502,\"resp_headers\":{{\"Server\":[\"Caddy\"]}}}}\n"));
                    2
                } else {
                    l.push_str(&format!("{{\"level\":\"info\",\"ts\":{ts},\"logger\":\"http.log.access\",\"msg\":\"handled request\",{req},\"user_id\":\"\",\"duration\":0.000792,\"size\":3,\"status\":200,\"resp_headers\":{{\"Server\":[\"Caddy\"],\"Content-Length\":[\"3\"],\"Content-Type\":[\"text/plain; charset=utf-8\"]}}}}\n"));
                    0
                }
            }
            "traefik" => {
                let (st, origin) = if err {
                    [(502, 502), (504, 504)][rng.below(2) as usize]
                } else {
                    (200, 200)
                };
                l.push_str(&format!("{{\"ClientAddr\":\"198.18.1.2:{port}\",\"ClientHost\":\"198.18.1.2\",\"ClientPort\":\"{port}\",\"ClientUsername\":\"-\",\"DownstreamContentSize\":11,\"DownstreamStatus\":{st},\"Duration\":885441,\"OriginContentSize\":11,\"OriginDuration\":761788,\"OriginStatus\":{origin},\"Overhead\":123653,\"RequestAddr\":\"198.18.1.1:8080\",\"RequestContentSize\":5,\"RequestCount\":{n},\"RequestHost\":\"198.18.1.1\",\"RequestMethod\":\"POST\",\"RequestPath\":\"{uri}\",\"RequestPort\":\"8080\",\"RequestProtocol\":\"HTTP/1.1\",\"RequestScheme\":\"http\",\"RetryAttempts\":0,\"RouterName\":\"all@file\",\"ServiceAddr\":\"198.18.10.10:80\",\"ServiceName\":\"vip@file\",\"ServiceURL\":\"http://198.18.10.10:80\",\"StartLocal\":\"2026-12-06T12:{m:02}:{s:02}.{ms:03}71218Z\",\"StartUTC\":\"2026-12-06T12:{m:02}:{s:02}.{ms:03}71218Z\",\"entryPointName\":\"web\",\"level\":\"info\",\"msg\":\"\",\"time\":\"2026-12-06T12:{m:02}:{s:02}Z\"}}\n"));
                u64::from(err)
            }
            "envoy" => {
                let (st, flags, det) = if err {
                    [("503", "UF", "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}"), ("504", "UT", "response_timeout"), ("503", "UC", "upstream_reset_before_response_started{connection_termination}")][rng.below(3) as usize]
                } else {
                    ("200", "-", "via_upstream")
                };
                l.push_str(&format!("[2026-12-06T12:{m:02}:{s:02}.{ms:03}Z] \"POST {uri} HTTP/1.1\" {st} {flags} {det} - \"-\" 5 3 4 3 \"-\" \"Go-http-client/1.1\" \"84961386-6d84-929d-98bd-{n:012}\" \"api:8080\" \"198.18.10.10:80\" outbound|80||api.default.svc.cluster.local 198.18.0.2:{port} 198.18.10.10:80 198.18.1.2:{} - default\n", port + 1));
                u64::from(err)
            }
            _ => panic!("unknown format {format}"),
        };
        records += recs;
        lines += l.matches('\n').count() as u64;
        bytes += l.len() as u64;
        out.write_all(l.as_bytes()).expect("write");
    }
    out.flush().expect("flush");
    (bytes, lines, records)
}
