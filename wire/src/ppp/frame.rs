//! PPP framing as carried in L2TP (RFC 2661 §1, §3; RFC 1661 §2; RFC 1662 §3).
//!
//! An L2TPv2 data message carries a PPP frame without the HDLC flags, FCS or byte stuffing:
//! ```text
//! +----------+----------+----------+-------------+---------+
//! | Address  | Control  | Protocol | Information | Padding |
//! |   0xff   |   0x03   | 8/16 bits|      *      |    *    |
//! +----------+----------+----------+-------------+---------+
//! ```
//! Address and Control are absent when Address-and-Control-Field-Compression was negotiated
//! (RFC 1661 §6.6), and the Protocol field is one byte when Protocol-Field-Compression was
//! negotiated and the value fits (RFC 1661 §6.5). Parsing here never allocates: the XDP fast
//! path and the AF_XDP workers call [`parse`] on every data packet.

use crate::error::{check_room, Error, Result};

/// PPP protocol numbers (RFC 1661 §2, "Assigned Numbers").
pub mod protocol {
    /// Internet Protocol version 4 (RFC 1332).
    pub const IPV4: u16 = 0x0021;
    /// Internet Protocol version 6 (RFC 5072).
    pub const IPV6: u16 = 0x0057;
    /// IP Control Protocol (RFC 1332).
    pub const IPCP: u16 = 0x8021;
    /// IPv6 Control Protocol (RFC 5072).
    pub const IPV6CP: u16 = 0x8057;
    /// Compression Control Protocol (RFC 1962).
    pub const CCP: u16 = 0x80fd;
    /// Link Control Protocol (RFC 1661).
    pub const LCP: u16 = 0xc021;
    /// Password Authentication Protocol (RFC 1334).
    pub const PAP: u16 = 0xc023;
    /// Link Quality Report (RFC 1989).
    pub const LQR: u16 = 0xc025;
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    pub const CHAP: u16 = 0xc223;
}

/// The name of a PPP protocol number this crate knows.
pub fn protocol_name(protocol: u16) -> Option<&'static str> {
    Some(match protocol {
        protocol::IPV4 => "IPv4",
        protocol::IPV6 => "IPv6",
        protocol::IPCP => "IPCP",
        protocol::IPV6CP => "IPv6CP",
        protocol::CCP => "CCP",
        protocol::LCP => "LCP",
        protocol::PAP => "PAP",
        protocol::LQR => "LQR",
        protocol::CHAP => "CHAP",
        _ => return None,
    })
}

/// Whether a protocol number is in the Network Control Protocol ("8***" to "b***") or
/// link-layer Control Protocol ("c***" to "f***") range (RFC 1661 §2). The fast path hands every
/// such frame (LCP, PAP, CHAP, IPCP, IPv6CP, CCP, LQR, ...) to the control plane.
pub const fn is_control_protocol(protocol: u16) -> bool {
    protocol >= 0x8000
}

/// Whether a protocol number obeys RFC 1661 §2: the low octet odd and the high octet even.
/// Frames that don't "MUST be treated as having an unrecognized Protocol" — [`parse`] still
/// returns them so that the control plane can send an LCP Protocol-Reject.
pub const fn is_valid_protocol(protocol: u16) -> bool {
    protocol & 0x0001 == 1 && protocol & 0x0100 == 0
}

/// Byte values and lengths of the framing, named once.
mod field {
    /// The all-stations Address (RFC 1662 §3.1).
    pub const ADDRESS: u8 = 0xff;
    /// The Unnumbered Information Control (RFC 1662 §3.1).
    pub const CONTROL: u8 = 0x03;
    /// Length of Address and Control.
    pub const AC_LEN: usize = 2;
}

/// An owned view of the PPP framing in front of the Information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct FrameRepr {
    /// Address/Control `ff 03` present (false when ACFC is in effect).
    pub address_control: bool,
    /// The Protocol field.
    pub protocol: u16,
    /// The Protocol field is one byte (PFC is in effect and the value is below 0x100).
    pub protocol_compressed: bool,
}

/// Parses the PPP framing at the front of `buf` and returns it with the Information field
/// (and any padding: only the protocol inside knows its length).
///
/// RFC 1661 §6.6: "If they contain the values 0xff and 0x03, they are assumed to be the
/// Address and Control fields. If not, it is assumed that the fields were compressed". RFC 1661
/// §6.5: a first Protocol byte that is odd is a whole, compressed Protocol field. Protocol
/// values that break the §2 rules are returned as they are (see [`is_valid_protocol`]).
#[inline]
pub fn parse(buf: &[u8]) -> Result<(FrameRepr, &[u8])> {
    let (address_control, rest) = match buf {
        [field::ADDRESS, field::CONTROL, rest @ ..] => (true, rest),
        _ => (false, buf),
    };
    let (protocol, protocol_compressed, info) = match rest {
        [p, info @ ..] if p & 1 == 1 => (u16::from(*p), true, info),
        [hi, lo, info @ ..] => (u16::from_be_bytes([*hi, *lo]), false, info),
        _ => {
            return Err(Error::Truncated {
                what: "PPP Protocol field",
                need: buf.len() - rest.len() + 2,
                have: buf.len(),
            })
        }
    };
    Ok((
        FrameRepr {
            address_control,
            protocol,
            protocol_compressed,
        },
        info,
    ))
}

/// Reads only the Protocol field: what the fast path needs to decide between forwarding and
/// the control plane.
#[inline]
pub fn peek_protocol(buf: &[u8]) -> Result<u16> {
    parse(buf).map(|(f, _)| f.protocol)
}

impl FrameRepr {
    /// Full framing: `ff 03` and a two-byte Protocol field. What LCP always uses.
    pub const fn full(protocol: u16) -> Self {
        FrameRepr {
            address_control: true,
            protocol,
            protocol_compressed: false,
        }
    }

    /// The framing to send `protocol` with once ACFC and/or PFC were negotiated: LCP keeps
    /// full framing regardless (RFC 1661 §6.5, §6.6), and PFC only shortens values below 0x100
    /// that are odd (never the reserved 0x00ff, "compression inefficient", RFC 1661 §2).
    pub const fn negotiated(protocol: u16, acfc: bool, pfc: bool) -> Self {
        if protocol == protocol::LCP {
            return Self::full(protocol);
        }
        FrameRepr {
            address_control: !acfc,
            protocol,
            protocol_compressed: pfc && Self::compressible(protocol),
        }
    }

    const fn compressible(protocol: u16) -> bool {
        protocol < 0x00ff && protocol & 1 == 1
    }

    /// Length of the framing: 0 or 2 for Address/Control plus 1 or 2 for Protocol.
    pub const fn header_len(&self) -> usize {
        (if self.address_control {
            field::AC_LEN
        } else {
            0
        }) + if self.protocol_compressed { 1 } else { 2 }
    }

    /// Emits the framing into the front of `buf` and returns its length.
    ///
    /// Refuses what the receiver would read differently or what RFC 1661 forbids: an LCP frame
    /// without full Address/Control and Protocol (RFC 1661 §6.5, §6.6), a compressed Protocol
    /// that is not an odd value below 0xff, and a two-byte Protocol whose high byte is odd
    /// (the receiver would take it for a compressed field).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.protocol == protocol::LCP && (!self.address_control || self.protocol_compressed) {
            return Err(Error::Malformed {
                what: "PPP frame",
                why: "LCP must be sent with full Address/Control and Protocol fields",
            });
        }
        if self.protocol_compressed && !Self::compressible(self.protocol) {
            return Err(Error::Malformed {
                what: "PPP frame",
                why: "only odd protocol values below 0xff can be compressed",
            });
        }
        if !self.protocol_compressed && self.protocol & 0x0100 != 0 {
            return Err(Error::Malformed {
                what: "PPP frame",
                why: "protocol high byte is odd",
            });
        }
        let len = self.header_len();
        check_room("PPP frame header", buf, len)?;
        let mut at = 0;
        if self.address_control {
            buf[0] = field::ADDRESS;
            buf[1] = field::CONTROL;
            at = field::AC_LEN;
        }
        if self.protocol_compressed {
            buf[at] = self.protocol.to_be_bytes()[1];
        } else {
            buf[at..at + 2].copy_from_slice(&self.protocol.to_be_bytes());
        }
        Ok(len)
    }
}

/// Emits full LCP framing (`ff 03 c0 21`, RFC 1661 §6.5, §6.6: "LCP packets MUST be sent
/// with full Address/Control and Protocol") into the front of `buf`; returns its length, 4.
pub fn emit_lcp(buf: &mut [u8]) -> Result<usize> {
    FrameRepr::full(protocol::LCP).emit(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_ipv4() {
        let b = [0xff, 0x03, 0x00, 0x21, 0x45, 0x00];
        let (f, info) = parse(&b).expect("valid");
        assert_eq!(f, FrameRepr::full(protocol::IPV4));
        assert_eq!(f.header_len(), 4);
        assert_eq!(info, &[0x45, 0x00]);
    }

    #[test]
    fn acfc_and_pfc_ipv4() {
        let b = [0x21, 0x45, 0x00];
        let (f, info) = parse(&b).expect("valid");
        assert_eq!(
            f,
            FrameRepr {
                address_control: false,
                protocol: protocol::IPV4,
                protocol_compressed: true
            }
        );
        assert_eq!(f.header_len(), 1);
        assert_eq!(info, &[0x45, 0x00]);
        let mut out = [0u8; 1];
        assert_eq!(f.emit(&mut out).expect("fits"), 1);
        assert_eq!(out, [0x21]);
    }

    #[test]
    fn acfc_only_ipv6() {
        let b = [0x00, 0x57, 0x60];
        let (f, info) = parse(&b).expect("valid");
        assert!(!f.address_control && !f.protocol_compressed);
        assert_eq!(f.protocol, protocol::IPV6);
        assert_eq!(info, &[0x60]);
    }

    #[test]
    fn pfc_only_with_address_control() {
        let b = [0xff, 0x03, 0x57, 0x60];
        let (f, info) = parse(&b).expect("valid");
        assert!(f.address_control && f.protocol_compressed);
        assert_eq!(f.protocol, protocol::IPV6);
        assert_eq!(info, &[0x60]);
    }

    #[test]
    fn lcp_framing() {
        let mut b = [0u8; 4];
        assert_eq!(emit_lcp(&mut b).expect("fits"), 4);
        assert_eq!(b, [0xff, 0x03, 0xc0, 0x21]);
        // Negotiated compression never applies to LCP.
        assert_eq!(
            FrameRepr::negotiated(protocol::LCP, true, true),
            FrameRepr::full(protocol::LCP)
        );
        let bad = FrameRepr {
            address_control: false,
            protocol: protocol::LCP,
            protocol_compressed: false,
        };
        assert!(matches!(bad.emit(&mut b), Err(Error::Malformed { .. })));
        // A received LCP frame without Address/Control is still read.
        let (f, _) = parse(&[0xc0, 0x21, 0x01]).expect("valid");
        assert_eq!(f.protocol, protocol::LCP);
    }

    #[test]
    fn negotiated_compression() {
        let f = FrameRepr::negotiated(protocol::IPV4, true, true);
        assert_eq!(f.header_len(), 1);
        let f = FrameRepr::negotiated(protocol::IPCP, true, true);
        assert!(!f.protocol_compressed && !f.address_control);
        let mut b = [0u8; 2];
        f.emit(&mut b).expect("fits");
        assert_eq!(b, [0x80, 0x21]);
    }

    #[test]
    fn emit_refusals() {
        let mut b = [0u8; 8];
        let c = |protocol| FrameRepr {
            address_control: true,
            protocol,
            protocol_compressed: true,
        };
        assert!(c(0x8021).emit(&mut b).is_err());
        assert!(c(0x0020).emit(&mut b).is_err());
        assert!(c(0x00ff).emit(&mut b).is_err());
        assert!(FrameRepr::full(0x0121).emit(&mut b).is_err());
        assert!(matches!(
            FrameRepr::full(protocol::IPV4).emit(&mut b[..3]),
            Err(Error::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn ff_not_followed_by_03_is_a_compressed_protocol() {
        let (f, info) = parse(&[0xff, 0x21]).expect("valid");
        assert!(!f.address_control && f.protocol_compressed);
        assert_eq!(f.protocol, 0x00ff);
        assert_eq!(info, &[0x21]);
    }

    #[test]
    fn truncated() {
        assert!(matches!(parse(&[]), Err(Error::Truncated { .. })));
        assert!(matches!(parse(&[0xff, 0x03]), Err(Error::Truncated { .. })));
        assert!(matches!(
            parse(&[0xff, 0x03, 0x80]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(parse(&[0x80]), Err(Error::Truncated { .. })));
    }

    #[test]
    fn invalid_protocol_is_returned_unrecognised() {
        let (f, _) = parse(&[0x80, 0x20]).expect("framing is fine");
        assert_eq!(f.protocol, 0x8020);
        assert!(!is_valid_protocol(f.protocol));
        assert!(is_valid_protocol(protocol::CHAP));
    }

    #[test]
    fn names_and_ranges() {
        assert_eq!(protocol_name(protocol::LCP), Some("LCP"));
        assert_eq!(protocol_name(0x1234), None);
        for p in [
            protocol::LCP,
            protocol::PAP,
            protocol::CHAP,
            protocol::IPCP,
            protocol::IPV6CP,
            protocol::CCP,
            protocol::LQR,
        ] {
            assert!(is_control_protocol(p), "{p:#06x}");
        }
        assert!(!is_control_protocol(protocol::IPV4));
        assert!(!is_control_protocol(protocol::IPV6));
        assert!(!is_control_protocol(0x4021));
    }

    fn frame_strategy() -> impl Strategy<Value = FrameRepr> {
        (any::<bool>(), any::<bool>(), any::<u16>()).prop_map(|(ac, c, p)| {
            if c {
                // An odd value below 0xff.
                FrameRepr {
                    address_control: ac,
                    protocol: (p % 0x7f) * 2 + 1,
                    protocol_compressed: true,
                }
            } else {
                FrameRepr {
                    address_control: ac || p == protocol::LCP,
                    protocol: p & !0x0100,
                    protocol_compressed: false,
                }
            }
        })
    }

    proptest! {
        #[test]
        fn round_trip(f in frame_strategy(), info in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut buf = vec![0u8; f.header_len() + info.len()];
            let n = f.emit(&mut buf).expect("valid repr");
            prop_assert_eq!(n, f.header_len());
            buf[n..].copy_from_slice(&info);
            let (back, rest) = parse(&buf).expect("parses");
            prop_assert_eq!(back, f);
            prop_assert_eq!(rest, &info[..]);
        }

        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok((f, rest)) = parse(&b) {
                prop_assert_eq!(f.header_len() + rest.len(), b.len());
            }
        }
    }
}
