//! Writes every example control message of both versions (RFC 4951 failover messages included)
//! as UDP/IPv4 frames to a pcap: `cargo run -p l2xdp-wire --example emit-examples -- out.pcap`,
//! then read it with `l2xdp-decode out.pcap --secret l2xdp-test-secret` or Wireshark.

use l2xdp_wire::l2tp::header::Version;
use l2xdp_wire::l2tp::message::examples::{examples, TEST_SECRET};
use l2xdp_wire::net::ethernet::MacAddr;
use l2xdp_wire::net::frame::{udp_frame, Endpoints};
use l2xdp_wire::pcap::{linktype, Writer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: emit-examples OUT.pcap")?;
    let ends = Endpoints {
        src_mac: MacAddr([2, 0, 0, 0, 0, 0x0a]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 0x0b]),
        src: "192.0.2.10".parse()?,
        dst: "192.0.2.11".parse()?,
    };
    let mut w = Writer::new(std::fs::File::create(&path)?, linktype::ETHERNET)?;
    let mut n = 0u64;
    for v in [Version::V2, Version::V3] {
        for m in examples(v) {
            let frame = udp_frame(&ends, 1701, 1701, &m.to_bytes(Some(TEST_SECRET))?)?;
            w.write(1_700_000_000_000_000_000 + n * 1_000_000, &frame)?;
            n += 1;
        }
    }
    w.finish()?;
    eprintln!("wrote {n} messages to {path}");
    Ok(())
}
