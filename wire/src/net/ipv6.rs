//! The IPv6 fixed header (RFC 8200 §3).
//!
//! ```text
//! |Version| Traffic Class |           Flow Label                  |
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! |                      Source Address (16)                      |
//! |                   Destination Address (16)                    |
//! ```
//! Extension headers are not walked: [`Ipv6Packet::next_header`] is reported as is. The payload is
//! bounded by Payload Length; jumbograms (Payload Length 0 with a Jumbo option) are not supported
//! and read as an empty payload.

use core::net::Ipv6Addr;

use crate::error::{check_len, check_room, Error, Result};

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

/// The fixed header length.
pub const HEADER_LEN: usize = 40;
/// Offset of the hop limit byte.
pub const HOP_LIMIT_OFFSET: usize = field::HOP_LIMIT;

/// A zero-copy view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header and Payload Length bytes fit.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("IPv6 header", buf, HEADER_LEN)?;
        check_len(
            "IPv6 packet (Payload Length)",
            buf,
            HEADER_LEN + usize::from(self.payload_len()),
        )
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    fn first_word(&self) -> u32 {
        let b = &self.b()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Version nibble.
    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }
    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }
    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }
    /// Payload Length.
    pub fn payload_len(&self) -> u16 {
        let b = &self.b()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Next Header.
    pub fn next_header(&self) -> u8 {
        self.b()[field::NXT_HDR]
    }
    /// Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }
    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.b()[field::SRC]);
        a.into()
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.b()[field::DST]);
        a.into()
    }
    /// The payload: Payload Length bytes after the fixed header.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the hop limit (IPv6 has no header checksum).
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }
    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let e = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..e]
    }
}

/// An owned IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header, as is (extension headers are not walked).
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP << 2 | ECN).
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload Length.
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Parses a checked view; the version must be 6.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::Malformed {
                what: "IPv6 header",
                why: "version is not 6",
            });
        }
        Ok(Ipv6Repr {
            src: packet.src(),
            dst: packet.dst(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// The emitted header length (40).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Emits the fixed header into the front of `buf`; returns 40. The flow label is masked to
    /// 20 bits.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_room("IPv6 header", buf, HEADER_LEN)?;
        let len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed {
            what: "IPv6 packet",
            why: "payload longer than 65535 bytes (jumbograms unsupported)",
        })?;
        let w = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0xf_ffff);
        buf[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
        buf[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        buf[field::NXT_HDR] = self.next_header;
        buf[field::HOP_LIMIT] = self.hop_limit;
        buf[field::SRC].copy_from_slice(&self.src.octets());
        buf[field::DST].copy_from_slice(&self.dst.octets());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An IPv6 header as captured: traffic class 0, flow label 0x12345, payload 8, UDP, hop
    /// limit 64, 2001:db8::1 → 2001:db8::2.
    const GOLDEN: [u8; 40] = [
        0x60, 0x01, 0x23, 0x45, 0x00, 0x08, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];

    #[test]
    fn golden() {
        let mut p = GOLDEN.to_vec();
        p.extend_from_slice(&[0; 8]);
        let r = Ipv6Repr::parse(&Ipv6Packet::new_checked(&p[..]).expect("valid")).expect("v6");
        assert_eq!(r.flow_label, 0x12345);
        assert_eq!((r.next_header, r.hop_limit, r.payload_len), (17, 64, 8));
        assert_eq!(r.dst, "2001:db8::2".parse::<Ipv6Addr>().expect("addr"));
        let mut out = [0u8; 40];
        r.emit(&mut out).expect("fits");
        assert_eq!(out, GOLDEN);
    }

    #[test]
    fn short_payload_is_truncated() {
        assert!(matches!(
            Ipv6Packet::new_checked(&GOLDEN[..]),
            Err(Error::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(s in any::<[u8; 16]>(), d in any::<[u8; 16]>(), nh in any::<u8>(),
                      hl in any::<u8>(), tc in any::<u8>(), fl in 0u32..0x10_0000,
                      len in 0usize..64) {
            let r = Ipv6Repr { src: s.into(), dst: d.into(), next_header: nh, hop_limit: hl,
                               traffic_class: tc, flow_label: fl, payload_len: len };
            let mut buf = vec![0u8; 40 + len];
            r.emit(&mut buf).expect("fits");
            prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).expect("ok"))
                .expect("ok"), r);
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(v) = Ipv6Packet::new_checked(&b[..]) {
                let _ = Ipv6Repr::parse(&v);
                let _ = v.payload();
            }
        }
    }
}
