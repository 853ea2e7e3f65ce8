//! TLS trust for real: certificates generated here (rcgen), HTTPS served on
//! 127.0.0.1 by a TLS-terminating proxy (tokio-rustls) in front of the
//! in-process Elasticsearch server, and the client built the way the CLI
//! builds it (`EsClient::new` from an `EsConfig`).
//!
//! Fingerprints given to the client are computed by `openssl x509
//! -fingerprint -sha256`, so the format users copy from openssl (and Kibana)
//! is what is tested.

mod common;

use common::{corpus, window};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::Write;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use wiretrail_elastic::auth::{Credentials, Secret};
use wiretrail_elastic::client::Req;
use wiretrail_elastic::{scan, EsClient, EsConfig, EsError, RetryPolicy};
use wiretrail_testsupport::{EsServer, ServerConfig};

/// An ES 8-like setup: a CA (`http_ca.crt`) and the node's certificate
/// signed by it, naming 127.0.0.1 and localhost.
struct Pki {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    leaf_der: CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

fn params(cn: &str, sans: &[&str]) -> rcgen::CertificateParams {
    let mut p =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, cn.to_string());
    p
}

fn ca_signed(sans: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = params("wiretrail test http CA", &[]);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = params("es-node-1", sans).signed_by(&leaf_key, &ca).unwrap();
    Pki {
        ca_der: ca.der().clone(),
        ca_pem: ca.pem(),
        leaf_der: leaf.der().clone(),
        leaf_key: leaf_key.serialize_der(),
    }
}

/// `sha256 Fingerprint=AB:CD:...` as openssl prints it for a PEM certificate.
fn openssl_fingerprint(pem: &str) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl x509 failed");
    let line = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        line.to_ascii_lowercase().starts_with("sha256 fingerprint="),
        "{line}"
    );
    line
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

/// HTTPS on 127.0.0.1:0 in front of a plain HTTP server: each TLS
/// connection is forwarded byte for byte. Runs on a thread and runtime of
/// its own (the fingerprint check in `EsClient::new` blocks the caller's).
struct TlsFront {
    addr: SocketAddr,
    /// TCP connections accepted (each one a TLS handshake attempt).
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    fn start(backend: &str, chain: Vec<CertificateDer<'static>>, key: Vec<u8>) -> TlsFront {
        let backend: SocketAddr = backend
            .trim_start_matches("http://")
            .parse()
            .expect("backend address");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        acc = listener.accept() => {
                            let Ok((tcp, _)) = acc else { continue };
                            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                // A client that refuses the certificate ends here.
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                            });
                        }
                    }
                }
            });
        });
        TlsFront {
            addr,
            accepted,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain test server with a small corpus, and HTTPS in front of it.
fn serve(pki_chain: Vec<CertificateDer<'static>>, key: Vec<u8>) -> (EsServer, TlsFront) {
    let server = EsServer::start(ServerConfig::default()).unwrap();
    server.add_docs("tls-logs-a", corpus(60, "t").docs);
    let front = TlsFront::start(&server.url(), pki_chain, key);
    (server, front)
}

fn config(url: String) -> EsConfig {
    let mut cfg = EsConfig {
        url,
        index: "tls-logs-*".into(),
        timeout_s: 10,
        // A TLS refusal is a connection error, which is retried: once is enough here.
        retry: RetryPolicy {
            max_retries: 0,
            initial_ms: 1,
            max_ms: 1,
            max_elapsed_s: 5,
        },
        ..EsConfig::default()
    };
    cfg.auth.no_env = true;
    cfg
}

async fn root(client: &EsClient) -> Result<serde_json::Value, EsError> {
    client
        .call_ok(&Req::new("GET", "/"), || client.es().info().send())
        .await
}

async fn scan_count(client: &EsClient, cfg: &EsConfig) -> usize {
    let mut n = 0;
    scan(client, cfg, &window(), |hits| {
        n += hits.len();
        ControlFlow::Continue(())
    })
    .await
    .expect("scan over the pinned connection");
    n
}

#[tokio::test]
async fn ca_fingerprint_from_openssl_pins_and_requests_work() {
    let pki = ca_signed(&["127.0.0.1", "localhost"]);
    // ES 8 sends its CA in the chain; Kibana's fingerprint is the CA's.
    let (_server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    for url in [
        front.url(),
        format!("https://localhost:{}", front.addr.port()),
    ] {
        let mut cfg = config(url.clone());
        cfg.tls.fingerprint = Some(openssl_fingerprint(&pki.ca_pem));
        let client = EsClient::new(&cfg).unwrap_or_else(|e| panic!("{url}: {e}"));
        let info = root(&client).await.unwrap();
        assert!(info["version"]["number"].is_string(), "{info}");
        assert_eq!(scan_count(&client, &cfg).await, 60, "{url}");
    }
    // Plain lowercase hex without colons is the same fingerprint.
    let mut cfg = config(front.url());
    let colon = openssl_fingerprint(&pki.ca_pem);
    let plain = colon
        .split_once('=')
        .unwrap()
        .1
        .replace(':', "")
        .to_lowercase();
    cfg.tls.fingerprint = Some(plain);
    let client = EsClient::new(&cfg).unwrap();
    root(&client).await.unwrap();
}

#[tokio::test]
async fn self_signed_server_certificate_fingerprint_pins() {
    // A single self-signed certificate (no CA), as `rcgen` or a test cluster makes.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params("es-self-signed", &["127.0.0.1"])
        .self_signed(&key)
        .unwrap();
    let (_server, front) = serve(vec![cert.der().clone()], key.serialize_der());
    let mut cfg = config(front.url());
    cfg.tls.fingerprint = Some(openssl_fingerprint(&cert.pem()));
    let client = EsClient::new(&cfg).unwrap();
    assert_eq!(scan_count(&client, &cfg).await, 60);
}

#[tokio::test]
async fn wrong_fingerprint_names_host_and_both_fingerprints_never_credentials() {
    let pki = ca_signed(&["127.0.0.1"]);
    let (server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    let other = ca_signed(&["127.0.0.1"]);
    let wrong = openssl_fingerprint(&other.ca_pem);
    let wrong_hex = wrong.split_once('=').unwrap().1.to_string();
    let mut cfg = config(front.url());
    cfg.tls.fingerprint = Some(wrong.clone());
    let creds = Credentials::Basic {
        user: "elastic".into(),
        password: Secret::new("pw-must-not-leak-9f3"),
    };
    let e = EsClient::with_credentials(&cfg, Some(creds)).unwrap_err();
    assert!(matches!(e, EsError::Tls { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&front.addr.to_string()), "host: {msg}");
    assert!(msg.contains("mismatch"), "{msg}");
    assert!(msg.contains(&wrong_hex), "expected fingerprint: {msg}");
    for presented in [&pki.leaf_der, &pki.ca_der] {
        let fp = openssl_fingerprint(&pem_of(presented));
        let hex = fp.split_once('=').unwrap().1;
        assert!(msg.contains(hex), "presented {hex} missing: {msg}");
    }
    assert!(!msg.contains("pw-must-not-leak"), "{msg}");
    // Nothing reached the cluster: the check happens before any request.
    assert_eq!(server.requests().len(), 0);
}

#[tokio::test]
async fn without_fingerprint_or_ca_a_private_certificate_is_refused() {
    let pki = ca_signed(&["127.0.0.1"]);
    let (server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    let cfg = config(front.url());
    let client = EsClient::new(&cfg).unwrap();
    let e = root(&client).await.unwrap_err();
    assert!(matches!(e, EsError::Tls { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("certificate") && msg.contains("UnknownIssuer"),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 0);

    // The same CA given as a file is trusted (the `--ca-file` path).
    let dir = std::env::temp_dir().join(format!("wt-tls-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("http_ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let mut cfg = config(front.url());
    cfg.tls.ca_file = Some(ca);
    let client = EsClient::new(&cfg).unwrap();
    root(&client).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 14 D9: a certificate error is final. With the default retry policy
/// (8 retries, up to 5 minutes) it used to be retried 9 times over ~56 s;
/// now one handshake, then an error naming the host and the reason.
#[tokio::test]
async fn certificate_errors_fail_at_once_with_host_and_reason() {
    let pki = ca_signed(&["127.0.0.1"]);
    let (server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    let mut cfg = config(front.url());
    cfg.retry = RetryPolicy::default();
    let client = EsClient::new(&cfg).unwrap();
    let e = root(&client).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, EsError::Tls { .. }), "{e:?}");
    assert!(
        msg.starts_with(&format!("TLS to 127.0.0.1:{}: ", front.addr.port())),
        "host first: {msg}"
    );
    assert!(
        msg.contains("UnknownIssuer") && msg.contains("not retried"),
        "{msg}"
    );
    assert!(msg.contains("ca_file"), "says what to do: {msg}");
    assert_eq!(client.retries(), 0, "{msg}");
    assert_eq!(
        front.accepted.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "one handshake, no retry"
    );
    // A certificate for another name: the same, at once.
    let other = ca_signed(&["es.example"]);
    let (_server2, front2) = serve(
        vec![other.leaf_der.clone(), other.ca_der.clone()],
        other.leaf_key.clone(),
    );
    let dir = std::env::temp_dir().join(format!("wt-tls-d9-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &other.ca_pem).unwrap();
    let mut cfg = config(front2.url());
    cfg.retry = RetryPolicy::default();
    cfg.tls.ca_file = Some(ca);
    let client = EsClient::new(&cfg).unwrap();
    let msg = root(&client).await.unwrap_err().to_string();
    assert!(
        msg.contains("not valid for name") && msg.contains("host name the certificate names"),
        "{msg}"
    );
    assert_eq!(
        front2.accepted.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(server.requests().len(), 0);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn insecure_works_and_warns() {
    let pki = ca_signed(&["127.0.0.1"]);
    let (_server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    let mut cfg = config(front.url());
    cfg.tls.insecure = true;
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let client = tracing::subscriber::with_default(subscriber, || EsClient::new(&cfg)).unwrap();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("WARN") && logged.contains("--insecure"),
        "{logged}"
    );
    assert_eq!(scan_count(&client, &cfg).await, 60);
}

#[tokio::test]
async fn fingerprint_of_a_ca_signed_server_certificate_is_explained() {
    let pki = ca_signed(&["127.0.0.1"]);
    let (_server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    let mut cfg = config(front.url());
    cfg.tls.fingerprint = Some(openssl_fingerprint(&pem_of(&pki.leaf_der)));
    let msg = EsClient::new(&cfg).unwrap_err().to_string();
    assert!(msg.contains("give the CA's fingerprint"), "{msg}");
}

#[tokio::test]
async fn fingerprint_matches_but_host_name_does_not() {
    let pki = ca_signed(&["es.example.internal"]);
    let (_server, front) = serve(
        vec![pki.leaf_der.clone(), pki.ca_der.clone()],
        pki.leaf_key.clone(),
    );
    let mut cfg = config(front.url());
    cfg.tls.fingerprint = Some(openssl_fingerprint(&pki.ca_pem));
    let e = EsClient::new(&cfg).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, EsError::Tls { .. }), "{msg}");
    assert!(msg.contains("host name the certificate names"), "{msg}");
}

#[test]
fn fingerprint_config_errors_before_any_connection() {
    let fp = "AB".repeat(32);
    // Plain http: nothing to pin.
    let mut cfg = config("http://127.0.0.1:9".into());
    cfg.tls.fingerprint = Some(fp.clone());
    let msg = EsClient::new(&cfg).unwrap_err().to_string();
    assert!(msg.contains("plain http"), "{msg}");
    // Contradictory trust settings.
    let mut cfg = config("https://127.0.0.1:9".into());
    cfg.tls.fingerprint = Some(fp);
    cfg.tls.insecure = true;
    let msg = EsClient::new(&cfg).unwrap_err().to_string();
    assert!(msg.contains("cannot be combined"), "{msg}");
    // SHA-1 (what older tools print by default) is refused with a reason.
    let mut cfg = config("https://127.0.0.1:9".into());
    cfg.tls.fingerprint = Some("AB:".repeat(19) + "AB");
    let msg = EsClient::new(&cfg).unwrap_err().to_string();
    assert!(msg.contains("40 hex digits"), "{msg}");
}

#[test]
fn nothing_listening_is_a_clear_tls_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = config(format!("https://127.0.0.1:{port}"));
    cfg.tls.fingerprint = Some("AB".repeat(32));
    let msg = EsClient::new(&cfg).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("cannot connect"),
        "{msg}"
    );
}
