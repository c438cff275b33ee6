//! PPP as carried in L2TPv2 data messages (RFC 2661 §1, §3) and terminated by the LNS control
//! plane: framing (RFC 1661 §2, RFC 1662 §3), LCP (RFC 1661), IPCP (RFC 1332, RFC 1877),
//! IPv6CP (RFC 5072), PAP (RFC 1334) and CHAP (RFC 1994).
//!
//! The fast path only needs [`frame::parse`] (no allocation) and [`is_control_protocol`];
//! the control plane parses the control packets into owned representations, and a decoder can
//! take a whole frame with [`PppPacket::parse`].

pub mod chap;
pub mod cp;
pub mod frame;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod mschapv2;
pub mod pap;

pub use chap::{chap_md5_response, chap_md5_verify, ChapBody, ChapPacket};
pub use cp::{CpBody, CpOption, CpPacket, CpRepr};
pub use frame::{is_control_protocol, is_valid_protocol, protocol, protocol_name, FrameRepr};
pub use ipcp::{IpcpOption, IpcpPacket};
pub use ipv6cp::{Ipv6cpOption, Ipv6cpPacket};
pub use lcp::{AuthProtocol, LcpOption, LcpPacket};
pub use pap::{PapBody, PapPacket};

use crate::error::{check_room, Error, Result};

/// What a PPP frame carries, as far as the LNS parses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PppBody {
    /// 0xc021.
    Lcp(LcpPacket),
    /// 0x8021.
    Ipcp(IpcpPacket),
    /// 0x8057.
    Ipv6cp(Ipv6cpPacket),
    /// 0xc023.
    Pap(PapPacket),
    /// 0xc223.
    Chap(ChapPacket),
    /// 0x0021: an IPv4 datagram of this many bytes (the Information field, padding included).
    Ipv4(usize),
    /// 0x0057: an IPv6 datagram of this many bytes (the Information field, padding included).
    Ipv6(usize),
    /// Any other protocol (CCP, LQR, unassigned or invalid values, ...) and the length of its
    /// Information field. Never one of the protocols above.
    Other { protocol: u16, len: usize },
}

impl PppBody {
    /// The PPP protocol number of this body.
    pub fn protocol(&self) -> u16 {
        match self {
            PppBody::Lcp(_) => protocol::LCP,
            PppBody::Ipcp(_) => protocol::IPCP,
            PppBody::Ipv6cp(_) => protocol::IPV6CP,
            PppBody::Pap(_) => protocol::PAP,
            PppBody::Chap(_) => protocol::CHAP,
            PppBody::Ipv4(_) => protocol::IPV4,
            PppBody::Ipv6(_) => protocol::IPV6,
            PppBody::Other { protocol, .. } => *protocol,
        }
    }

    /// The length of the Information field this body emits.
    pub fn emit_len(&self) -> usize {
        match self {
            PppBody::Lcp(p) => p.emit_len(),
            PppBody::Ipcp(p) => p.emit_len(),
            PppBody::Ipv6cp(p) => p.emit_len(),
            PppBody::Pap(p) => p.emit_len(),
            PppBody::Chap(p) => p.emit_len(),
            PppBody::Ipv4(len) | PppBody::Ipv6(len) | PppBody::Other { len, .. } => *len,
        }
    }
}

/// A whole PPP frame as found in the payload of an L2TPv2 data message (RFC 2661 §3.1): the
/// framing and the parsed Information field. For a packet decoder and the control plane; the
/// fast path uses [`frame::parse`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PppPacket {
    /// Address/Control and Protocol.
    pub frame: FrameRepr,
    /// The Information field.
    pub body: PppBody,
}

impl PppPacket {
    /// Parses a whole frame. LCP, IPCP, IPv6CP, PAP and CHAP are parsed (their errors are
    /// returned); IPv4, IPv6 and any other protocol are only measured.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let (frame, info) = frame::parse(buf)?;
        let body = match frame.protocol {
            protocol::LCP => PppBody::Lcp(LcpPacket::parse(info)?),
            protocol::IPCP => PppBody::Ipcp(IpcpPacket::parse(info)?),
            protocol::IPV6CP => PppBody::Ipv6cp(Ipv6cpPacket::parse(info)?),
            protocol::PAP => PppBody::Pap(PapPacket::parse(info)?),
            protocol::CHAP => PppBody::Chap(ChapPacket::parse(info)?),
            protocol::IPV4 => PppBody::Ipv4(info.len()),
            protocol::IPV6 => PppBody::Ipv6(info.len()),
            protocol => PppBody::Other {
                protocol,
                len: info.len(),
            },
        };
        Ok(PppPacket { frame, body })
    }

    /// The length of the emitted frame.
    pub fn emit_len(&self) -> usize {
        self.frame.header_len().saturating_add(self.body.emit_len())
    }

    /// Emits the frame into the front of `buf`; returns its length. For `Ipv4`, `Ipv6` and
    /// `Other` only the framing is written and the `len` bytes after it are left for the caller
    /// to fill. Refuses a body whose protocol differs from the framing's, an `Other` body for a
    /// protocol that has its own variant, and the framing [`FrameRepr::emit`] refuses (LCP
    /// without full framing).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.body.protocol() != self.frame.protocol {
            return Err(Error::Malformed {
                what: "PPP frame",
                why: "body protocol differs from the Protocol field",
            });
        }
        if let PppBody::Other { protocol, .. } = self.body {
            if matches!(
                protocol,
                protocol::LCP
                    | protocol::IPCP
                    | protocol::IPV6CP
                    | protocol::PAP
                    | protocol::CHAP
                    | protocol::IPV4
                    | protocol::IPV6
            ) {
                return Err(Error::Malformed {
                    what: "PPP frame",
                    why: "Other body for a protocol with its own variant",
                });
            }
        }
        let len = self.emit_len();
        check_room("PPP frame", buf, len)?;
        let h = self.frame.emit(buf)?;
        let info = &mut buf[h..len];
        match &self.body {
            PppBody::Lcp(p) => p.emit(info)?,
            PppBody::Ipcp(p) => p.emit(info)?,
            PppBody::Ipv6cp(p) => p.emit(info)?,
            PppBody::Pap(p) => p.emit(info)?,
            PppBody::Chap(p) => p.emit(info)?,
            PppBody::Ipv4(n) | PppBody::Ipv6(n) | PppBody::Other { len: n, .. } => *n,
        };
        Ok(len)
    }
}

pub(crate) use crate::ser::{ser_hex, ser_redacted, ser_text};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppp::cp::tests::{body, bytes};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// The payload of an L2TPv2 data message carrying an LCP Configure-Request (MRU 1492,
    /// CHAP-MD5, Magic-Number), as an LNS sends it.
    const LCP_FRAME: [u8; 23] = [
        0xff, 0x03, 0xc0, 0x21, // Address, Control, LCP
        0x01, 0x01, 0x00, 0x13, 0x01, 0x04, 0x05, 0xd4, 0x03, 0x05, 0xc2, 0x23, 0x05, 0x05, 0x06,
        0x5e, 0x63, 0x0a, 0xb8,
    ];

    #[test]
    fn lcp_frame() {
        let p = PppPacket::parse(&LCP_FRAME).expect("valid");
        assert_eq!(p.frame, FrameRepr::full(protocol::LCP));
        let PppBody::Lcp(lcp) = &p.body else {
            panic!("not LCP: {p:?}");
        };
        assert_eq!(lcp.identifier, 1);
        assert_eq!(
            lcp.body,
            CpBody::ConfigureRequest {
                options: vec![
                    LcpOption::Mru(1492),
                    LcpOption::AuthProtocol(AuthProtocol::ChapMd5),
                    LcpOption::MagicNumber(0x5e63_0ab8),
                ]
            }
        );
        let mut out = [0u8; 23];
        assert_eq!(p.emit(&mut out).expect("fits"), 23);
        assert_eq!(out, LCP_FRAME);
    }

    #[test]
    fn ipcp_nak_frame_with_acfc() {
        let b = [
            0x80, 0x21, 0x03, 0x02, 0x00, 0x10, 0x03, 0x06, 0x0a, 0x00, 0x00, 0x05, 0x81, 0x06,
            0x08, 0x08, 0x08, 0x08,
        ];
        let p = PppPacket::parse(&b).expect("valid");
        assert!(!p.frame.address_control);
        assert_eq!(
            p.body,
            PppBody::Ipcp(IpcpPacket {
                identifier: 2,
                body: CpBody::ConfigureNak {
                    options: vec![
                        IpcpOption::IpAddress(Ipv4Addr::new(10, 0, 0, 5)),
                        IpcpOption::PrimaryDns(Ipv4Addr::new(8, 8, 8, 8)),
                    ]
                }
            })
        );
    }

    #[test]
    fn data_frames() {
        let p = PppPacket::parse(&[0x21, 0x45, 0, 0, 20]).expect("valid");
        assert_eq!(p.body, PppBody::Ipv4(4));
        assert!(p.frame.protocol_compressed && !p.frame.address_control);
        let p = PppPacket::parse(&[0xff, 0x03, 0x00, 0x57, 0x60]).expect("valid");
        assert_eq!(p.body, PppBody::Ipv6(1));
        let p = PppPacket::parse(&[0xff, 0x03, 0x80, 0xfd, 1, 1, 0, 4]).expect("valid");
        assert_eq!(
            p.body,
            PppBody::Other {
                protocol: protocol::CCP,
                len: 4
            }
        );
        assert!(is_control_protocol(p.frame.protocol));
        assert_eq!(
            serde_json::to_string(&p).expect("serializes"),
            r#"{"frame":{"address_control":true,"protocol":33021,"protocol_compressed":false},"body":{"other":{"protocol":33021,"len":4}}}"#
        );
        // Emitting a data frame writes the framing and leaves the payload to the caller.
        let d = PppPacket {
            frame: FrameRepr::negotiated(protocol::IPV4, true, true),
            body: PppBody::Ipv4(3),
        };
        let mut out = [0xaa; 4];
        assert_eq!(d.emit(&mut out).expect("fits"), 4);
        assert_eq!(out, [0x21, 0xaa, 0xaa, 0xaa]);
    }

    #[test]
    fn emit_refusals() {
        let mut out = [0u8; 64];
        let mismatch = PppPacket {
            frame: FrameRepr::full(protocol::IPCP),
            body: PppBody::Ipv4(0),
        };
        assert!(mismatch.emit(&mut out).is_err());
        let other_lcp = PppPacket {
            frame: FrameRepr::full(protocol::LCP),
            body: PppBody::Other {
                protocol: protocol::LCP,
                len: 0,
            },
        };
        assert!(other_lcp.emit(&mut out).is_err());
        let lcp_compressed = PppPacket {
            frame: FrameRepr {
                address_control: false,
                protocol: protocol::LCP,
                protocol_compressed: false,
            },
            body: PppBody::Lcp(LcpPacket {
                identifier: 0,
                body: CpBody::TerminateAck { data: vec![] },
            }),
        };
        assert!(lcp_compressed.emit(&mut out).is_err());
        assert!(matches!(
            PppPacket::parse(&LCP_FRAME)
                .expect("valid")
                .emit(&mut out[..22]),
            Err(Error::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn body_errors_propagate() {
        // LCP Configure-Request with an MRU option of length 3.
        let b = [
            0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x07, 0x01, 0x03, 0x05,
        ];
        assert!(matches!(PppPacket::parse(&b), Err(Error::Malformed { .. })));
    }

    fn ppp_body() -> impl Strategy<Value = PppBody> {
        prop_oneof![
            (any::<u8>(), body(lcp::tests::lcp_option()))
                .prop_map(|(identifier, body)| PppBody::Lcp(LcpPacket { identifier, body })),
            (any::<u8>(), body(ipcp::tests::ipcp_option()))
                .prop_map(|(identifier, body)| PppBody::Ipcp(IpcpPacket { identifier, body })),
            (any::<u8>(), body(ipv6cp::tests::ipv6cp_option())).prop_map(|(identifier, body)| {
                PppBody::Ipv6cp(Ipv6cpPacket { identifier, body })
            }),
            pap::tests::pap().prop_map(PppBody::Pap),
            chap::tests::chap().prop_map(PppBody::Chap),
            (0usize..64).prop_map(PppBody::Ipv4),
            (0usize..64).prop_map(PppBody::Ipv6),
            (any::<u16>(), 0usize..64)
                .prop_filter("typed protocols have their own variant", |(p, _)| {
                    !matches!(
                        *p,
                        protocol::LCP
                            | protocol::IPCP
                            | protocol::IPV6CP
                            | protocol::PAP
                            | protocol::CHAP
                            | protocol::IPV4
                            | protocol::IPV6
                    ) && *p & 0x0100 == 0
                })
                .prop_map(|(protocol, len)| PppBody::Other { protocol, len }),
        ]
    }

    proptest! {
        #[test]
        fn ppp_round_trip(body in ppp_body(), acfc in any::<bool>(), pfc in any::<bool>()) {
            let p = PppPacket {
                frame: FrameRepr::negotiated(body.protocol(), acfc, pfc),
                body,
            };
            let mut buf = vec![0u8; p.emit_len()];
            let n = p.emit(&mut buf).expect("valid repr");
            prop_assert_eq!(n, p.emit_len());
            prop_assert_eq!(PppPacket::parse(&buf).expect("parses"), p);
        }

        #[test]
        fn ppp_parse_never_panics(b in bytes(96)) {
            let _ = PppPacket::parse(&b);
        }

        #[test]
        fn ppp_parse_never_panics_known_protocols(
            proto in prop::sample::select(vec![
                protocol::LCP, protocol::IPCP, protocol::IPV6CP, protocol::PAP, protocol::CHAP,
            ]),
            code in 1u8..=11,
            id in any::<u8>(),
            d in bytes(60),
        ) {
            let mut b = vec![0xff, 0x03];
            b.extend_from_slice(&proto.to_be_bytes());
            b.extend_from_slice(&[code, id, 0, (d.len() + 4) as u8]);
            b.extend_from_slice(&d);
            let _ = PppPacket::parse(&b);
        }
    }
}
