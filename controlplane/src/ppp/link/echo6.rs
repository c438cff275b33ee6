//! The LNS's IPv6 gateway answers ping (issue 16 item 4): an ICMPv6 Echo Request (RFC 4443
//! §4.1) to our link-local address on the link — `fe80::` and the Interface-Identifier IPv6CP
//! negotiated for us (RFC 5072 §5) — is answered with an Echo Reply (§4.2) in the same link.
//!
//! Where this runs: the fast path hands every IPv6 packet with a link-local source to the
//! control plane (`L2XDP_WHY_IPV6_LINK_LOCAL` in `ebpf/bpf/l2xdp.bpf.c`; a ping of a link-local
//! address comes from the subscriber's link-local address), and the memory fast path hands it
//! every data frame: both reach [`Link::handle_frame`]. The IPv4 gateway is answered in XDP
//! (`gateway_echo`), where subscribers' traffic to it arrives; the IPv6 one is answered here,
//! since it only sees link-local traffic, which XDP does not forward. A ping costs one reply
//! (the link's bounded transmit queue, `Io::push`), never more.

use std::net::Ipv6Addr;

use l2xdp_wire::net::checksum;
use l2xdp_wire::ppp::frame::{protocol, FrameRepr};

use super::Link;
use crate::ppp::fsm::State;

/// IPv6 Next Header: ICMPv6 (RFC 4443 §1).
const ICMPV6: u8 = 58;
/// ICMPv6 Echo Request and Echo Reply types (RFC 4443 §4.1, §4.2).
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
/// The Hop Limit of our replies (a fresh packet: RFC 8200 §3, the usual default).
const HOP_LIMIT: u8 = 64;
/// The IPv6 header (RFC 8200 §3).
const HEADER: usize = 40;

/// Our link-local address from our Interface-Identifier: `fe80::/64` + the identifier
/// (RFC 5072 §5).
pub(crate) fn link_local(interface_id: [u8; 8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(a)
}

/// The Echo Reply to `packet` (an IPv6 packet) when it is an Echo Request to `ours` with a
/// correct checksum and no extension header; the reply carries the request's Identifier,
/// Sequence Number and data (RFC 4443 §4.2), from `ours` to the request's source.
pub(crate) fn reply(packet: &[u8], ours: Ipv6Addr) -> Option<Vec<u8>> {
    let header = packet.get(..HEADER)?;
    if header[0] >> 4 != 6 || header[6] != ICMPV6 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    // What follows the header is exactly the Payload Length (PPP adds no padding).
    let icmp = packet.get(HEADER..)?;
    if icmp.len() != len || len < 8 {
        return None;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&header[8..24]).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&header[24..40]).ok()?);
    if dst != ours || icmp[0] != ECHO_REQUEST || icmp[1] != 0 {
        return None;
    }
    // RFC 4443 §2.3: the checksum covers the pseudo-header (RFC 8200 §8.1); a wrong one is
    // discarded. The sum of a correct message with its checksum is 0xffff.
    let length = u32::try_from(len).ok()?;
    let sum = checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, ICMPV6, length),
        checksum::data(icmp),
    ]);
    if sum != 0xffff {
        return None;
    }
    // A source that cannot be answered (RFC 4443 §2.2: unspecified or multicast).
    if src.is_unspecified() || src.is_multicast() {
        return None;
    }
    let mut out = Vec::with_capacity(packet.len());
    // Version 6, traffic class and flow label 0 (ours, not the request's).
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&header[4..6]);
    out.push(ICMPV6);
    out.push(HOP_LIMIT);
    out.extend_from_slice(&ours.octets());
    out.extend_from_slice(&src.octets());
    out.push(ECHO_REPLY);
    out.push(0);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&icmp[4..]);
    let c = !checksum::combine(&[
        checksum::pseudo_header_v6(ours, src, ICMPV6, length),
        checksum::data(&out[HEADER..]),
    ]);
    out[HEADER + 2..HEADER + 4].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

impl Link {
    /// An IPv6 packet received on the link (PPP protocol 0x0057): an Echo Request to our
    /// link-local address is answered ([`reply`]) once IPv6CP is opened; anything else is
    /// discarded (the control plane routes no subscriber traffic).
    pub(super) fn ipv6_input(&mut self, packet: &[u8]) {
        let ours = self
            .ipv6cp
            .as_ref()
            .filter(|c| c.state() == State::Opened)
            .map(|c| link_local(c.neg.ours));
        match ours.and_then(|a| reply(packet, a)) {
            Some(r) => {
                let framing = FrameRepr::full(protocol::IPV6);
                let mut buf = vec![0u8; framing.header_len() + r.len()];
                match framing.emit(&mut buf) {
                    Ok(h) => {
                        buf[h..].copy_from_slice(&r);
                        self.io.counters.echo6_replies += 1;
                        self.io.push(buf);
                    }
                    Err(_) => self.io.counters.emit_errors += 1,
                }
            }
            None => self.io.counters.discarded += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request built by hand (checksum from the RFC 1071 sum, independent of [`reply`]'s
    /// code path only in its layout).
    fn request(src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) -> Vec<u8> {
        let mut icmp = vec![ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0x00, 0x07];
        icmp.extend_from_slice(data);
        let len = icmp.len() as u32;
        let c = !checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, ICMPV6, len),
            checksum::data(&icmp),
        ]);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        p.extend_from_slice(&[ICMPV6, 255]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&icmp);
        p
    }

    const ID: [u8; 8] = [0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55];

    #[test]
    fn an_echo_request_to_our_link_local_address_is_answered() {
        let ours = link_local(ID);
        assert_eq!(
            ours,
            "fe80::211:22ff:fe33:4455"
                .parse::<Ipv6Addr>()
                .expect("addr")
        );
        let peer: Ipv6Addr = "fe80::1".parse().expect("addr");
        let req = request(peer, ours, b"abcdefgh-0123456");
        let r = reply(&req, ours).expect("a reply");
        assert_eq!(r.len(), req.len());
        assert_eq!(&r[8..24], &ours.octets());
        assert_eq!(&r[24..40], &peer.octets());
        assert_eq!((r[6], r[7]), (ICMPV6, HOP_LIMIT));
        assert_eq!((r[40], r[41]), (ECHO_REPLY, 0));
        // Identifier, Sequence Number and data as in the request.
        assert_eq!(&r[44..], &req[44..]);
        // The reply's checksum verifies.
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(ours, peer, ICMPV6, (r.len() - HEADER) as u32),
            checksum::data(&r[HEADER..]),
        ]);
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn other_packets_are_not_answered() {
        let ours = link_local(ID);
        let peer: Ipv6Addr = "fe80::1".parse().expect("addr");
        // Another destination.
        let other: Ipv6Addr = "fe80::2".parse().expect("addr");
        assert!(reply(&request(peer, other, b"x"), other).is_some());
        assert!(reply(&request(peer, other, b"x"), ours).is_none());
        // A wrong checksum (RFC 4443 §2.3).
        let mut bad = request(peer, ours, b"x");
        bad[43] ^= 1;
        assert!(reply(&bad, ours).is_none());
        // Not an Echo Request (an Echo Reply).
        let mut rep = request(peer, ours, b"x");
        rep[40] = ECHO_REPLY;
        assert!(reply(&rep, ours).is_none());
        // Truncated, or a Payload Length that does not match.
        let req = request(peer, ours, b"abcd");
        assert!(reply(&req[..req.len() - 1], ours).is_none());
        assert!(reply(&req[..30], ours).is_none());
        // From the unspecified address.
        assert!(reply(&request(Ipv6Addr::UNSPECIFIED, ours, b"x"), ours).is_none());
    }
}
