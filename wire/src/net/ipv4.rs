//! The IPv4 header (RFC 791 §3.1).
//!
//! ```text
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options (IHL > 5)                          |
//! ```
//! Options are skipped (covered by the checksum, not interpreted). The payload is bounded by Total
//! Length; bytes after it (Ethernet padding) are ignored.

use core::net::Ipv4Addr;

use super::checksum;
use crate::error::{check_len, check_room, Error, Result};

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

/// The length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Offset of the TTL byte.
pub const TTL_OFFSET: usize = field::TTL;
/// Offset of the header checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header fits, IHL >= 5, the header with options fits, and Total Length
    /// covers the header and does not exceed the buffer.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("IPv4 header", buf, HEADER_LEN)?;
        let hlen = self.header_len();
        if hlen < HEADER_LEN {
            return Err(Error::Malformed {
                what: "IPv4 header",
                why: "IHL below 5",
            });
        }
        check_len("IPv4 options", buf, hlen)?;
        let total = usize::from(self.total_len());
        if total < hlen {
            return Err(Error::Malformed {
                what: "IPv4 header",
                why: "Total Length shorter than the header",
            });
        }
        check_len("IPv4 packet (Total Length)", buf, total)
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    fn word(&self, f: field::Field) -> u16 {
        let b = &self.b()[f];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Version nibble.
    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }
    /// DSCP (6 bits).
    pub fn dscp(&self) -> u8 {
        self.b()[field::DSCP_ECN] >> 2
    }
    /// ECN (2 bits).
    pub fn ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN] & 0x03
    }
    /// Total Length.
    pub fn total_len(&self) -> u16 {
        self.word(field::LENGTH)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        self.word(field::IDENT)
    }
    /// Don't Fragment.
    pub fn dont_frag(&self) -> bool {
        self.word(field::FLG_OFF) & DF != 0
    }
    /// More Fragments.
    pub fn more_frags(&self) -> bool {
        self.word(field::FLG_OFF) & MF != 0
    }
    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.word(field::FLG_OFF) & OFFSET_MASK
    }
    /// Whether this is a fragment (MF set or a nonzero offset): the first fragment, a middle one
    /// or the last one.
    pub fn is_fragment(&self) -> bool {
        self.word(field::FLG_OFF) & (MF | OFFSET_MASK) != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }
    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        self.word(field::CHECKSUM)
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let b = &self.b()[field::SRC];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let b = &self.b()[field::DST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// Whether the header checksum (over IHL × 4 bytes, options included) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.b()[..self.header_len()]) == 0xffff
    }
    /// The payload: from the end of the options to Total Length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the TTL, updating the checksum incrementally (RFC 1624): the TTL/protocol word
    /// changes.
    pub fn set_ttl_incremental(&mut self, ttl: u8) {
        let proto = self.protocol();
        let old = u16::from_be_bytes([self.ttl(), proto]);
        let new = u16::from_be_bytes([ttl, proto]);
        let c = checksum::update_word(self.checksum(), old, new);
        let b = self.buffer.as_mut();
        b[field::TTL] = ttl;
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
    /// Recomputes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        let hlen = self.header_len();
        let b = self.buffer.as_mut();
        b[field::CHECKSUM].fill(0);
        let c = checksum::finish(checksum::data(&b[..hlen]));
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[s..e]
    }
}

/// An owned IPv4 header (options are not kept; [`emit`](Ipv4Repr::emit) writes IHL 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Payload length (Total Length minus the header with options).
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parses a checked view: version 4 and a valid header checksum are required.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed {
                what: "IPv4 header",
                why: "version is not 4",
            });
        }
        if !packet.verify_checksum() {
            return Err(Error::Malformed {
                what: "IPv4 header",
                why: "bad header checksum",
            });
        }
        Ok(Ipv4Repr {
            src: packet.src(),
            dst: packet.dst(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            payload_len: packet.payload().len(),
        })
    }

    /// The emitted header length (always 20).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Emits the header (IHL 5, checksum filled) into the front of `buf`; returns 20.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        check_room("IPv4 header", buf, HEADER_LEN)?;
        let total = u16::try_from(HEADER_LEN + self.payload_len)
            .ok()
            .filter(|_| self.payload_len <= 0xffff - HEADER_LEN)
            .ok_or(Error::Malformed {
                what: "IPv4 packet",
                why: "longer than 65535 bytes",
            })?;
        let b = &mut buf[..HEADER_LEN];
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = (self.dscp << 2) | (self.ecn & 0x03);
        b[field::LENGTH].copy_from_slice(&total.to_be_bytes());
        b[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let fo = (if self.dont_frag { DF } else { 0 })
            | (if self.more_frags { MF } else { 0 })
            | (self.frag_offset & OFFSET_MASK);
        b[field::FLG_OFF].copy_from_slice(&fo.to_be_bytes());
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        b[field::CHECKSUM].fill(0);
        let c = checksum::finish(checksum::data(b));
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A captured header: 192.168.0.1 → 192.168.0.199, UDP, total 0x73, DF, TTL 64, checksum
    /// 0xb861.
    const CAPTURED: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn captured_packet() -> Vec<u8> {
        let mut p = CAPTURED.to_vec();
        p.resize(0x73, 0);
        p
    }

    #[test]
    fn golden_parse_and_emit() {
        let p = captured_packet();
        let v = Ipv4Packet::new_checked(&p[..]).expect("valid");
        assert!(v.verify_checksum());
        let r = Ipv4Repr::parse(&v).expect("valid");
        assert_eq!(r.src, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(r.dst, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(
            (r.protocol, r.ttl, r.dont_frag, r.payload_len),
            (17, 64, true, 0x73 - 20)
        );
        assert!(!v.is_fragment());
        let mut out = [0u8; 20];
        r.emit(&mut out).expect("fits");
        assert_eq!(out, CAPTURED);
    }

    #[test]
    fn bad_checksum_refused() {
        let mut p = captured_packet();
        p[11] ^= 1;
        let v = Ipv4Packet::new_checked(&p[..]).expect("lengths fine");
        assert!(Ipv4Repr::parse(&v).is_err());
    }

    #[test]
    fn options_skipped() {
        // IHL 6 with one NOP-padded option word.
        let mut p = vec![
            0x46, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 0, 9, 9,
            9, 9,
        ];
        Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
        let v = Ipv4Packet::new_checked(&p[..]).expect("valid");
        assert_eq!(v.payload(), &[9, 9, 9, 9]);
        assert_eq!(Ipv4Repr::parse(&v).expect("valid").payload_len, 4);
    }

    #[test]
    fn fragments_detected() {
        let mut p = captured_packet();
        p[6] = 0x20; // MF
        assert!(Ipv4Packet::new_unchecked(&p[..]).is_fragment());
        p[6] = 0x40;
        p[7] = 0x01; // DF + offset 1 (nonsense but a fragment)
        assert!(Ipv4Packet::new_unchecked(&p[..]).is_fragment());
    }

    #[test]
    fn ttl_incremental_update() {
        let mut p = captured_packet();
        let mut v = Ipv4Packet::new_unchecked(&mut p[..]);
        v.set_ttl_incremental(63);
        assert!(v.verify_checksum());
        assert_eq!(v.ttl(), 63);
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            any::<u8>(),
            0u8..64,
            0u8..4,
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..0x2000,
            0usize..100,
        )
            .prop_map(
                |(
                    s,
                    d,
                    protocol,
                    ttl,
                    dscp,
                    ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset,
                    payload_len,
                )| Ipv4Repr {
                    src: s.into(),
                    dst: d.into(),
                    protocol,
                    ttl,
                    dscp,
                    ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset,
                    payload_len,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(r in arb_repr()) {
            let mut buf = vec![0u8; 20 + r.payload_len];
            r.emit(&mut buf).expect("fits");
            let v = Ipv4Packet::new_checked(&buf[..]).expect("valid");
            prop_assert_eq!(Ipv4Repr::parse(&v).expect("valid"), r);
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(v) = Ipv4Packet::new_checked(&b[..]) {
                let _ = Ipv4Repr::parse(&v);
                let _ = v.payload();
                let _ = v.is_fragment();
            }
        }
    }
}
