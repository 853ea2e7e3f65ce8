//! Trust by certificate fingerprint, as Elastic's own clients do it
//! (`ca_trusted_fingerprint`, `caFingerprint`): the user gives the SHA-256
//! of a certificate in the cluster's chain (ES 8 prints the one of its
//! `http_ca.crt` at first start; `openssl x509 -fingerprint -sha256` prints
//! any), and the cluster is trusted when it presents a chain containing it.
//!
//! The official crate's rustls backend has no hook for a verifier of our own
//! (its `CertificateValidation` is `Default`, `Full(cert)` or `None` there;
//! `Certificate(cert)` exists only with native-tls). So [`pin`] does the
//! check before the transport exists: one TLS handshake of its own to the
//! cluster's host and port, with a verifier that reads the presented chain,
//! accepts only if one certificate's SHA-256 matches, and still checks the
//! handshake signature (the server proves it holds the leaf's key). The
//! matched certificate is then checked as the ONLY trust anchor for the
//! chain and the host name, exactly what the transport will check next when
//! it is given that certificate as `CertificateValidation::Full`.

use crate::error::EsError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A SHA-256 certificate fingerprint. Parsed from hex, any case, with or
/// without `:` (also a whole `openssl x509 -fingerprint -sha256` line:
/// `sha256 Fingerprint=AB:CD:...`); shown as `AB:CD:...`, as openssl and
/// Kibana print it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn parse(s: &str) -> Result<Fingerprint, EsError> {
        let bad = |why: &str| {
            EsError::Config(format!(
                "certificate fingerprint {s:?}: {why}; expected the SHA-256 as 64 hex digits, `:` allowed (openssl x509 -noout -fingerprint -sha256 -in http_ca.crt)"
            ))
        };
        // openssl prints `sha256 Fingerprint=AB:..`, older ones `SHA256 Fingerprint=`.
        let hex = s.rsplit_once('=').map_or(s, |(_, h)| h).trim();
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(bad(&format!(
                "{} hex digits (SHA-1 has 40; only SHA-256 is accepted)",
                digits.len()
            )));
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            match (nib(pair[0]), nib(pair[1])) {
                (Some(h), Some(l)) => out[i] = h << 4 | l,
                _ => return Err(bad("not hexadecimal")),
            }
        }
        Ok(Fingerprint(out))
    }

    /// SHA-256 of a DER certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The certificate of the presented chain that matched the fingerprint.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// DER of the matched certificate.
    pub der: Vec<u8>,
    /// Its place in the presented chain: 0 is the server's own certificate.
    pub position: usize,
    /// Length of the presented chain.
    pub chain_len: usize,
}

/// Connect to `host:port`, read the presented chain, and return the
/// certificate whose SHA-256 is `expected`. Blocking, bounded by `timeout`
/// for the connect and for each read and write (called once from
/// [`EsClient::new`](crate::EsClient::new), which is synchronous).
///
/// Errors name the host and both fingerprints, never a credential (none is
/// sent: the connection closes after the handshake).
pub fn pin(
    host: &url::Host<&str>,
    port: u16,
    expected: Fingerprint,
    timeout: Duration,
) -> Result<Pinned, EsError> {
    let hostport = match host {
        url::Host::Ipv6(a) => format!("[{a}]:{port}"),
        h => format!("{h}:{port}"),
    };
    let tls_err = |message: String| EsError::Tls {
        host: hostport.clone(),
        message,
    };
    let server_name: ServerName<'static> = match host {
        url::Host::Domain(d) => ServerName::try_from(d.to_string())
            .map_err(|e| tls_err(format!("not a valid TLS server name: {e}")))?,
        url::Host::Ipv4(a) => ServerName::IpAddress((*a).into()),
        url::Host::Ipv6(a) => ServerName::IpAddress((*a).into()),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ChainReader {
        expected,
        provider: provider.clone(),
        seen: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();

    let mut tcp = connect(&hostport, timeout).map_err(&tls_err)?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server_name.clone())
        .map_err(|e| tls_err(format!("TLS setup: {e}")))?;
    let handshake = (|| -> std::io::Result<()> {
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(())
    })();
    let chain = verifier.seen.lock().expect("chain lock").take();
    if let Err(e) = handshake {
        return Err(tls_err(match (&chain, e.kind()) {
            (Some(chain), _) if !chain.iter().any(|c| Fingerprint::of_der(c) == expected) => {
                mismatch_message(expected, chain)
            }
            (None, std::io::ErrorKind::InvalidData) => format!(
                "TLS handshake failed before the server showed a certificate: {e} (is this an https port?)"
            ),
            _ => format!("TLS handshake failed: {e}"),
        }));
    }
    // Polite close; the answer does not matter.
    conn.send_close_notify();
    let _ = conn.write_tls(&mut tcp);
    let _ = tcp.flush();
    let mut sink = [0u8; 1];
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = tcp.read(&mut sink);

    let chain = chain.ok_or_else(|| tls_err("the server presented no certificate".into()))?;
    let position = chain
        .iter()
        .position(|c| Fingerprint::of_der(c) == expected)
        .ok_or_else(|| tls_err(mismatch_message(expected, &chain)))?;
    let pinned = chain[position].clone();

    // What the transport will check next, with only the pinned certificate
    // as a root: say it here, plainly, instead of a bare handshake error.
    let mut roots = RootCertStore::empty();
    roots.add(pinned.clone()).map_err(|e| {
        tls_err(format!(
            "the certificate with fingerprint {expected} (position {position} of {} in the chain) cannot serve as a trust anchor: {e}",
            chain.len()
        ))
    })?;
    let check = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| tls_err(format!("TLS setup: {e}")))?;
    if let Err(e) =
        check.verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
    {
        let hint = match &e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                if position == 0 =>
            {
                " (the fingerprint is the server's own certificate, which a CA signed: give the CA's fingerprint instead, as ES 8 prints for http_ca.crt, or --ca-file)"
            }
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            ) => " (connect with a host name the certificate names)",
            _ => "",
        };
        return Err(tls_err(format!(
            "the server presented the certificate with fingerprint {expected}, but its chain does not verify against it: {e}{hint}"
        )));
    }
    Ok(Pinned {
        der: pinned.as_ref().to_vec(),
        position,
        chain_len: chain.len(),
    })
}

fn mismatch_message(expected: Fingerprint, chain: &[CertificateDer<'static>]) -> String {
    let presented: Vec<String> = chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let role = if i == 0 { "server" } else { "chain" };
            format!("{role} #{i} {}", Fingerprint::of_der(c))
        })
        .collect();
    format!(
        "certificate fingerprint mismatch: expected {expected}, the server presented {}",
        presented.join(", ")
    )
}

fn connect(hostport: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = hostport
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = format!("no address for {hostport}");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))
                    .and_then(|_| s.set_write_timeout(Some(timeout)))
                    .map_err(|e| format!("socket: {e}"))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// Accepts a chain only when one certificate has the expected fingerprint,
/// and remembers the chain for the error message. Handshake signatures are
/// verified with the provider's algorithms, as any verifier does.
#[derive(Debug)]
struct ChainReader {
    expected: Fingerprint,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Vec<CertificateDer<'static>>>>,
}

impl ServerCertVerifier for ChainReader {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let ok = chain
            .iter()
            .any(|c| Fingerprint::of_der(c) == self.expected);
        *self.seen.lock().expect("chain lock") = Some(chain);
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint mismatch".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_forms() {
        let colon = "A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34:45:56:67:78:89:9A:AB:BC:CD:DE:EF:F0";
        let a = Fingerprint::parse(colon).unwrap();
        assert_eq!(a.to_string(), colon);
        let plain = colon.replace(':', "").to_lowercase();
        assert_eq!(Fingerprint::parse(&plain).unwrap(), a);
        assert_eq!(
            Fingerprint::parse(&format!("sha256 Fingerprint={colon}\n")).unwrap(),
            a
        );
        let e = Fingerprint::parse(&colon[..59]).unwrap_err().to_string();
        assert!(e.contains("40 hex digits"), "{e}");
        let e = Fingerprint::parse(&colon.replace('A', "Z"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not hexadecimal"), "{e}");
    }

    #[test]
    fn sha256_of_der() {
        // SHA-256 of the empty input, a known vector.
        assert_eq!(
            Fingerprint::of_der(b"").to_string().replace(':', ""),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
    }
}
