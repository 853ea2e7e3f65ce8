//! Community ID v1 (corelight/community-id-spec) for a TCP 4-tuple: the key
//! Zeek, Suricata and Elastic users already join on.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::{IpAddr, SocketAddr};

const PROTO_TCP: u8 = 6;

/// `1:<base64(sha1(seed, ordered tuple))>` with seed 0.
pub fn community_id_v1(a: SocketAddr, b: SocketAddr) -> String {
    community_id_v1_seed(a, b, 0)
}

pub fn community_id_v1_seed(a: SocketAddr, b: SocketAddr, seed: u16) -> String {
    // The spec orders endpoints so both directions hash the same.
    let key = |s: &SocketAddr| (ip_bytes(s.ip()), s.port());
    let (src, dst) = if key(&a) <= key(&b) { (a, b) } else { (b, a) };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(ip_bytes(src.ip()));
    h.update(ip_bytes(dst.ip()));
    h.update([PROTO_TCP, 0]);
    h.update(src.port().to_be_bytes());
    h.update(dst.port().to_be_bytes());
    let digest = h.finalize();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector() {
        // From the community-id-spec README / pycommunityid tests.
        let a: SocketAddr = "128.232.110.120:34855".parse().unwrap();
        let b: SocketAddr = "66.35.250.204:80".parse().unwrap();
        assert_eq!(community_id_v1(a, b), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(community_id_v1(b, a), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    }
}
