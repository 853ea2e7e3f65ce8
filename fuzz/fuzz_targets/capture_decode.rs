//! The link → IP → TCP decoder on arbitrary packets: the first byte picks a
//! link type the decoder knows (or, rarely, any), the second how much the
//! original packet was longer than what was captured, the rest is the
//! packet. No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wiretrail_capture::decode::linktype::*;
use wiretrail_capture::decode::{decode_tcp, tcp_ports};

const LINKTYPES: [u16; 12] = [
    NULL,
    ETHERNET,
    RAW,
    LOOP,
    LINUX_SLL,
    IPV4,
    IPV6,
    ETHERNET_MPACKET,
    LINUX_SLL2,
    RAW_BSD12,
    RAW_BSD14,
    127, // 802.11 radiotap: refused, never read
];

fuzz_target!(|data: &[u8]| {
    let [pick, extra, packet @ ..] = data else {
        return;
    };
    let linktype = LINKTYPES[usize::from(*pick) % LINKTYPES.len()];
    let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX) + u32::from(*extra);
    let _ = decode_tcp(linktype, packet, orig_len);
    let _ = tcp_ports(linktype, packet);
});
