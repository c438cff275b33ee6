//! Whole frames around a payload: Ethernet + IPv4/IPv6 + UDP, or Ethernet + IP with a given
//! protocol. For tests, captures and emulators that need complete frames of L2TP control
//! messages; the per-packet data path uses [`crate::datapath::encap`] instead.

use core::net::IpAddr;

use super::ethernet::{ethertype, EthernetRepr, MacAddr, Vlans};
use super::ip_proto;
use super::ipv4::{self, Ipv4Repr};
use super::ipv6::{self, Ipv6Repr};
use super::udp::{self, UdpRepr};
use crate::error::{Error, Result};

/// Who sends a frame to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
}

impl Endpoints {
    /// The same endpoints in the other direction.
    pub fn reversed(&self) -> Self {
        Endpoints {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src: self.dst,
            dst: self.src,
        }
    }
}

/// Ethernet + IP around `header` bytes the caller fills (a transport header) and `payload`.
fn ip_frame_with(e: &Endpoints, protocol: u8, header: usize, payload: &[u8]) -> Result<Vec<u8>> {
    let ip_payload = header + payload.len();
    let (ethertype, ip) = match (e.src, e.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => (
            ethertype::IPV4,
            IpHeader::V4(Ipv4Repr {
                src,
                dst,
                protocol,
                ttl: 64,
                dscp: 0,
                ecn: 0,
                ident: 0,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                payload_len: ip_payload,
            }),
        ),
        (IpAddr::V6(src), IpAddr::V6(dst)) => (
            ethertype::IPV6,
            IpHeader::V6(Ipv6Repr {
                src,
                dst,
                next_header: protocol,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
                payload_len: ip_payload,
            }),
        ),
        _ => {
            return Err(Error::Malformed {
                what: "frame endpoints",
                why: "source and destination of different address families",
            })
        }
    };
    let eth = EthernetRepr {
        dst: e.dst_mac,
        src: e.src_mac,
        vlans: Vlans::NONE,
        ethertype,
    };
    let ip_hlen = match ip {
        IpHeader::V4(_) => ipv4::HEADER_LEN,
        IpHeader::V6(_) => ipv6::HEADER_LEN,
    };
    let mut buf = vec![0u8; eth.header_len() + ip_hlen + ip_payload];
    let mut at = eth.emit(&mut buf)?;
    at += match ip {
        IpHeader::V4(r) => r.emit(&mut buf[at..])?,
        IpHeader::V6(r) => r.emit(&mut buf[at..])?,
    };
    buf[at + header..].copy_from_slice(payload);
    Ok(buf)
}

enum IpHeader {
    V4(Ipv4Repr),
    V6(Ipv6Repr),
}

/// An Ethernet frame carrying `payload` in UDP from `sport` to `dport`. The UDP checksum is
/// always computed.
pub fn udp_frame(e: &Endpoints, sport: u16, dport: u16, payload: &[u8]) -> Result<Vec<u8>> {
    let mut buf = ip_frame_with(e, ip_proto::UDP, udp::HEADER_LEN, payload)?;
    let ip_len = match e.src {
        IpAddr::V4(_) => ipv4::HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    };
    let at = super::ethernet::HEADER_LEN + ip_len;
    UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len: payload.len(),
    }
    .emit(&mut buf[at..], e.src, e.dst, true)?;
    Ok(buf)
}

/// An Ethernet frame carrying `payload` directly in IP with `protocol` (115 for L2TPv3).
pub fn ip_frame(e: &Endpoints, protocol: u8, payload: &[u8]) -> Result<Vec<u8>> {
    ip_frame_with(e, protocol, 0, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{EthernetFrame, Ipv4Packet, UdpPacket};

    fn ends(v6: bool) -> Endpoints {
        let (src, dst) = if v6 {
            ("2001:db8::1", "2001:db8::2")
        } else {
            ("192.0.2.1", "192.0.2.2")
        };
        Endpoints {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src: src.parse().expect("addr"),
            dst: dst.parse().expect("addr"),
        }
    }

    #[test]
    fn udp_frame_parses_back_with_valid_checksums() {
        for v6 in [false, true] {
            let e = ends(v6);
            let f = udp_frame(&e, 1701, 1702, b"hello").expect("fits");
            let eth = EthernetFrame::new_checked(&f[..]).expect("eth");
            let ip = &f[eth.header_len()..];
            let (l4, src, dst) = if v6 {
                (&ip[40..], e.src, e.dst)
            } else {
                let p = Ipv4Packet::new_checked(ip).expect("ipv4");
                assert!(p.verify_checksum());
                (&ip[20..], e.src, e.dst)
            };
            let u = UdpPacket::new_checked(l4).expect("udp");
            assert!(u.verify_checksum(src, dst));
            assert_eq!((u.src_port(), u.dst_port()), (1701, 1702));
            assert_eq!(u.payload(), b"hello");
        }
    }

    #[test]
    fn ip_frame_carries_the_protocol() {
        let f = ip_frame(&ends(false), ip_proto::L2TP, &[0, 0, 0, 0, 1]).expect("fits");
        let p = Ipv4Packet::new_checked(&f[14..]).expect("ipv4");
        assert_eq!(p.protocol(), 115);
        assert_eq!(p.payload(), &[0, 0, 0, 0, 1]);
    }

    #[test]
    fn mixed_families_are_refused() {
        let mut e = ends(false);
        e.dst = "2001:db8::2".parse().expect("addr");
        assert!(udp_frame(&e, 1, 2, &[]).is_err());
    }
}
