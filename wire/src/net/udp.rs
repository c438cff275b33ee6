//! UDP (RFC 768) with the IPv4 (RFC 768) or IPv6 (RFC 8200 §8.1) pseudo-header checksum.
//!
//! ```text
//! |          Source Port          |       Destination Port        |
//! |            Length             |           Checksum            |
//! ```
//! Checksum rules: over IPv4 a transmitted checksum of 0 means "none" (RFC 768) and is accepted;
//! over IPv6 a zero checksum is invalid (RFC 8200 §8.1) unless a tunnel protocol allows it
//! (RFC 6935/6936), which the caller decides. A computed checksum of 0 is transmitted as 0xffff.
//! The payload is bounded by the Length field.

use core::net::IpAddr;

use super::{checksum, ip_proto};
use crate::error::{check_len, check_room, Error, Result};

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// The UDP header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header fits, Length >= 8 and Length does not exceed the buffer.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("UDP header", buf, HEADER_LEN)?;
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "UDP header",
                why: "Length shorter than the header",
            });
        }
        check_len("UDP datagram (Length)", buf, len)
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word(&self, f: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[f];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.word(field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.word(field::DST_PORT)
    }
    /// Length (header included).
    pub fn len(&self) -> u16 {
        self.word(field::LENGTH)
    }
    /// Whether the Length field is zero (never valid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.word(field::CHECKSUM)
    }
    /// The payload, bounded by Length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum over the pseudo-header and the Length bytes verifies. A zero field
    /// verifies over IPv4 (no checksum, RFC 768) and fails over IPv6 (RFC 8200 §8.1); mixed
    /// address families fail.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        let len = self.len();
        match checksum::pseudo_header(src, dst, ip_proto::UDP, u32::from(len)) {
            Some(ph) => {
                let d = checksum::data(&self.buffer.as_ref()[..usize::from(len)]);
                checksum::combine(&[ph, d]) == 0xffff
            }
            None => false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Computes and stores the checksum over the pseudo-header and Length bytes (a result of 0 is
    /// stored as 0xffff). Mixed address families store 0.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let len = self.len();
        self.buffer.as_mut()[field::CHECKSUM].fill(0);
        let c = match checksum::pseudo_header(src, dst, ip_proto::UDP, u32::from(len)) {
            Some(ph) => {
                let d = checksum::data(&self.buffer.as_ref()[..usize::from(len)]);
                match checksum::finish(checksum::combine(&[ph, d])) {
                    0 => 0xffff,
                    c => c,
                }
            }
            None => 0,
        };
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// An owned UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (Length minus 8).
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses a checked view and verifies its checksum with
    /// [`UdpPacket::verify_checksum`] (zero accepted over IPv4 only).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>, src: IpAddr, dst: IpAddr) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Malformed {
                what: "UDP datagram",
                why: "bad checksum",
            });
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// The emitted header length (8).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Emits the header into the front of `buf`, whose next `payload_len` bytes already hold the
    /// payload. The checksum is computed when `checksum` is true or the addresses are IPv6
    /// (mandatory there); otherwise 0 is written. Returns 8.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr, checksum: bool) -> Result<usize> {
        let total = HEADER_LEN + self.payload_len;
        check_room("UDP datagram", buf, total)?;
        let len = u16::try_from(total).map_err(|_| Error::Malformed {
            what: "UDP datagram",
            why: "longer than 65535 bytes",
        })?;
        buf[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        buf[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        buf[field::CHECKSUM].fill(0);
        if checksum || src.is_ipv6() || dst.is_ipv6() {
            UdpPacket::new_unchecked(&mut buf[..total]).fill_checksum(src, dst);
        }
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    /// A DNS-shaped datagram 192.168.1.100:53535 → 8.8.8.8:53 (hand-built, not captured).
    /// Checksum 0x46b5 computed independently (Python, RFC 1071 over the pseudo-header).
    const DNS: [u8; 25] = [
        0xd1, 0x1f, 0x00, 0x35, 0x00, 0x19, 0x46, 0xb5, 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00, 0x00, 0x01,
    ];

    #[test]
    fn golden_checksum_v4() {
        let p = UdpPacket::new_checked(&DNS[..]).expect("valid");
        let (s, d) = (v4([192, 168, 1, 100]), v4([8, 8, 8, 8]));
        assert!(p.verify_checksum(s, d));
        let r = UdpRepr::parse(&p, s, d).expect("valid");
        assert_eq!((r.src_port, r.dst_port, r.payload_len), (53535, 53, 17));
        let mut out = DNS;
        r.emit(&mut out, s, d, true).expect("fits");
        assert_eq!(out, DNS);
    }

    #[test]
    fn zero_checksum_v4_accepted_v6_refused() {
        let mut b = DNS;
        b[6] = 0;
        b[7] = 0;
        let p = UdpPacket::new_checked(&b[..]).expect("valid");
        assert!(p.verify_checksum(v4([1, 2, 3, 4]), v4([5, 6, 7, 8])));
        let s6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(!p.verify_checksum(s6, s6));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Pick a payload word that makes the sum 0xffff so the checksum would be 0.
        let (s, d) = (v4([0, 0, 0, 0]), v4([0, 0, 0, 0]));
        let mut b = [0u8; 10];
        // header sums: len 10 twice (pseudo + header) + proto 17 = 37; payload word = 0xffff-37.
        let w: u16 = 0xffff - 37;
        b[8..10].copy_from_slice(&w.to_be_bytes());
        UdpRepr {
            src_port: 0,
            dst_port: 0,
            payload_len: 2,
        }
        .emit(&mut b, s, d, true)
        .expect("fits");
        assert_eq!(&b[6..8], &[0xff, 0xff]);
        assert!(UdpPacket::new_checked(&b[..])
            .expect("ok")
            .verify_checksum(s, d));
    }

    proptest! {
        #[test]
        fn round_trip(sp in any::<u16>(), dp in any::<u16>(),
                      payload in proptest::collection::vec(any::<u8>(), 0..64),
                      s6 in any::<[u8; 16]>(), d6 in any::<[u8; 16]>(), six in any::<bool>(),
                      ck in any::<bool>()) {
            let (s, d) = if six {
                (IpAddr::V6(s6.into()), IpAddr::V6(d6.into()))
            } else {
                (v4([s6[0], s6[1], s6[2], s6[3]]), v4([d6[0], d6[1], d6[2], d6[3]]))
            };
            let r = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() };
            let mut buf = vec![0u8; 8 + payload.len()];
            buf[8..].copy_from_slice(&payload);
            r.emit(&mut buf, s, d, ck).expect("fits");
            let p = UdpPacket::new_checked(&buf[..]).expect("valid");
            prop_assert_eq!(UdpRepr::parse(&p, s, d).expect("valid"), r);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = UdpPacket::new_checked(&b[..]) {
                let a = v4([1, 2, 3, 4]);
                let _ = UdpRepr::parse(&p, a, a);
                let _ = p.payload();
            }
        }
    }
}
