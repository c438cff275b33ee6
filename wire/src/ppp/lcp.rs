//! The Link Control Protocol (RFC 1661 §5, §6; RFC 1662 §7.1), protocol 0xc021.

use super::cp::{at_least, be16, be32, fixed, CpOption, CpRepr, RawOption};
use super::frame::protocol;
use crate::error::Result;

/// An LCP packet (RFC 1661 §5): codes 1 to 11.
pub type LcpPacket = CpRepr<LcpOption>;

/// LCP Configuration Option Types (RFC 1661 §6, RFC 1662 §7.1).
pub mod kind {
    /// Maximum-Receive-Unit (RFC 1661 §6.1).
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (RFC 1662 §7.1).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol (RFC 1661 §6.2).
    pub const AUTH_PROTOCOL: u8 = 3;
    /// Quality-Protocol (RFC 1661 §6.3).
    pub const QUALITY_PROTOCOL: u8 = 4;
    /// Magic-Number (RFC 1661 §6.4).
    pub const MAGIC_NUMBER: u8 = 5;
    /// Protocol-Field-Compression (RFC 1661 §6.5).
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression (RFC 1661 §6.6).
    pub const ACFC: u8 = 8;
}

/// The CHAP Algorithm byte for MD5 (RFC 1994 §3).
pub const CHAP_ALGORITHM_MD5: u8 = 5;

/// The value of an Authentication-Protocol option (RFC 1661 §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProtocol {
    /// PAP, 0xc023, no data (RFC 1334 §2.1: the option is exactly 4 bytes).
    Pap,
    /// CHAP, 0xc223, with Algorithm 5 = MD5 (RFC 1994 §3).
    ChapMd5,
    /// CHAP, 0xc223, with Algorithm 0x81 = MS-CHAP-V2 (RFC 2759 §2).
    ChapMsV2,
    /// Anything else: the protocol and its data. Parsing never yields PAP without data or
    /// CHAP with exactly `[5]` or `[0x81]`; those are the variants above.
    Other {
        protocol: u16,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
}

impl AuthProtocol {
    fn parse(data: &[u8]) -> Result<Self> {
        at_least("LCP Authentication-Protocol option", data, 2)?;
        let protocol = be16(data)?;
        let rest = &data[2..];
        Ok(match (protocol, rest) {
            (protocol::PAP, []) => AuthProtocol::Pap,
            (protocol::CHAP, [CHAP_ALGORITHM_MD5]) => AuthProtocol::ChapMd5,
            (protocol::CHAP, [super::mschapv2::CHAP_ALGORITHM_MSCHAPV2]) => AuthProtocol::ChapMsV2,
            _ => AuthProtocol::Other {
                protocol,
                data: rest.to_vec(),
            },
        })
    }

    /// The authentication protocol number.
    pub fn protocol(&self) -> u16 {
        match self {
            AuthProtocol::Pap => protocol::PAP,
            AuthProtocol::ChapMd5 | AuthProtocol::ChapMsV2 => protocol::CHAP,
            AuthProtocol::Other { protocol, .. } => *protocol,
        }
    }

    fn data(&self) -> &[u8] {
        match self {
            AuthProtocol::Pap => &[],
            AuthProtocol::ChapMd5 => &[CHAP_ALGORITHM_MD5],
            AuthProtocol::ChapMsV2 => &[super::mschapv2::CHAP_ALGORITHM_MSCHAPV2],
            AuthProtocol::Other { data, .. } => data,
        }
    }
}

/// An LCP Configuration Option (RFC 1661 §6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LcpOption {
    /// 1: Maximum-Receive-Unit (RFC 1661 §6.1), length 4.
    Mru(u16),
    /// 2: Async-Control-Character-Map (RFC 1662 §7.1), length 6.
    Accm(u32),
    /// 3: Authentication-Protocol (RFC 1661 §6.2), length >= 4.
    AuthProtocol(AuthProtocol),
    /// 4: Quality-Protocol (RFC 1661 §6.3), length >= 4; for LQR (0xc025) the data is the
    /// 32-bit Reporting-Period (RFC 1989 §2.5).
    QualityProtocol {
        protocol: u16,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// 5: Magic-Number (RFC 1661 §6.4), length 6.
    MagicNumber(u32),
    /// 7: Protocol-Field-Compression (RFC 1661 §6.5), length 2.
    ProtocolFieldCompression,
    /// 8: Address-and-Control-Field-Compression (RFC 1661 §6.6), length 2.
    AddressControlFieldCompression,
    /// Any other Type, kept opaque (typically answered with a Configure-Reject). Parsing never
    /// yields a Type listed above.
    Unknown {
        kind: u8,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
}

impl CpOption for LcpOption {
    const PROTOCOL: u16 = protocol::LCP;
    const NAME: &'static str = "LCP packet";
    const LCP_CODES: bool = true;

    fn parse(raw: RawOption<'_>) -> Result<Self> {
        let d = raw.data;
        Ok(match raw.kind {
            kind::MRU => {
                fixed("LCP Maximum-Receive-Unit option", d, 2)?;
                LcpOption::Mru(be16(d)?)
            }
            kind::ACCM => {
                fixed("LCP Async-Control-Character-Map option", d, 4)?;
                LcpOption::Accm(be32(d)?)
            }
            kind::AUTH_PROTOCOL => LcpOption::AuthProtocol(AuthProtocol::parse(d)?),
            kind::QUALITY_PROTOCOL => {
                at_least("LCP Quality-Protocol option", d, 2)?;
                LcpOption::QualityProtocol {
                    protocol: be16(d)?,
                    data: d[2..].to_vec(),
                }
            }
            kind::MAGIC_NUMBER => {
                fixed("LCP Magic-Number option", d, 4)?;
                LcpOption::MagicNumber(be32(d)?)
            }
            kind::PFC => {
                fixed("LCP Protocol-Field-Compression option", d, 0)?;
                LcpOption::ProtocolFieldCompression
            }
            kind::ACFC => {
                fixed("LCP Address-and-Control-Field-Compression option", d, 0)?;
                LcpOption::AddressControlFieldCompression
            }
            kind => LcpOption::Unknown {
                kind,
                data: d.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        match self {
            LcpOption::Mru(_) => kind::MRU,
            LcpOption::Accm(_) => kind::ACCM,
            LcpOption::AuthProtocol(_) => kind::AUTH_PROTOCOL,
            LcpOption::QualityProtocol { .. } => kind::QUALITY_PROTOCOL,
            LcpOption::MagicNumber(_) => kind::MAGIC_NUMBER,
            LcpOption::ProtocolFieldCompression => kind::PFC,
            LcpOption::AddressControlFieldCompression => kind::ACFC,
            LcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            LcpOption::Mru(_) => 2,
            LcpOption::Accm(_) | LcpOption::MagicNumber(_) => 4,
            LcpOption::AuthProtocol(a) => 2 + a.data().len(),
            LcpOption::QualityProtocol { data, .. } => 2 + data.len(),
            LcpOption::ProtocolFieldCompression | LcpOption::AddressControlFieldCompression => 0,
            LcpOption::Unknown { data, .. } => data.len(),
        }
    }

    fn emit_data(&self, buf: &mut [u8]) {
        match self {
            LcpOption::Mru(v) => buf.copy_from_slice(&v.to_be_bytes()),
            LcpOption::Accm(v) | LcpOption::MagicNumber(v) => buf.copy_from_slice(&v.to_be_bytes()),
            LcpOption::AuthProtocol(a) => {
                buf[..2].copy_from_slice(&a.protocol().to_be_bytes());
                buf[2..].copy_from_slice(a.data());
            }
            LcpOption::QualityProtocol { protocol, data } => {
                buf[..2].copy_from_slice(&protocol.to_be_bytes());
                buf[2..].copy_from_slice(data);
            }
            LcpOption::ProtocolFieldCompression | LcpOption::AddressControlFieldCompression => {}
            LcpOption::Unknown { data, .. } => buf.copy_from_slice(data),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;
    use crate::ppp::cp::tests::{body, bytes, round_trip};
    use crate::ppp::cp::CpBody;
    use proptest::prelude::*;

    /// A Configure-Request as an LNS sends it on a PPPoE-sized link: MRU 1492, CHAP-MD5,
    /// Magic-Number 0x5e63_0ab8.
    const CONF_REQ: [u8; 19] = [
        0x01, 0x01, 0x00, 0x13, // Configure-Request, id 1, length 19
        0x01, 0x04, 0x05, 0xd4, // MRU 1492
        0x03, 0x05, 0xc2, 0x23, 0x05, // Auth CHAP, MD5
        0x05, 0x06, 0x5e, 0x63, 0x0a, 0xb8, // Magic-Number
    ];

    #[test]
    fn configure_request_golden() {
        let p = LcpPacket::parse(&CONF_REQ).expect("valid");
        let want = LcpPacket {
            identifier: 1,
            body: CpBody::ConfigureRequest {
                options: vec![
                    LcpOption::Mru(1492),
                    LcpOption::AuthProtocol(AuthProtocol::ChapMd5),
                    LcpOption::MagicNumber(0x5e63_0ab8),
                ],
            },
        };
        assert_eq!(p, want);
        let mut out = [0u8; 19];
        assert_eq!(want.emit(&mut out).expect("fits"), 19);
        assert_eq!(out, CONF_REQ);
    }

    /// A Windows-style client request: ACCM 0, PFC, ACFC, Magic (RFC 1662 §7.1, RFC 1661
    /// §6.5, §6.6), plus Callback (13) kept opaque.
    #[test]
    fn client_request_with_compression_and_unknown() {
        let b = [
            0x01, 0x00, 0x00, 0x17, // id 0, length 23
            0x02, 0x06, 0x00, 0x00, 0x00, 0x00, // ACCM 0
            0x05, 0x06, 0x01, 0x02, 0x03, 0x04, // Magic
            0x07, 0x02, // PFC
            0x08, 0x02, // ACFC
            0x0d, 0x03, 0x06, // Callback, operation 6
        ];
        let p = LcpPacket::parse(&b).expect("valid");
        let CpBody::ConfigureRequest { options } = &p.body else {
            panic!("not a Configure-Request: {p:?}");
        };
        assert_eq!(
            options,
            &vec![
                LcpOption::Accm(0),
                LcpOption::MagicNumber(0x0102_0304),
                LcpOption::ProtocolFieldCompression,
                LcpOption::AddressControlFieldCompression,
                LcpOption::Unknown {
                    kind: 13,
                    data: vec![6]
                },
            ]
        );
        let mut out = vec![0u8; p.emit_len()];
        p.emit(&mut out).expect("fits");
        assert_eq!(out, b);
    }

    #[test]
    fn mschapv2_is_its_own_auth_protocol() {
        let o = LcpOption::AuthProtocol(AuthProtocol::ChapMsV2);
        let p = LcpPacket {
            identifier: 1,
            body: CpBody::ConfigureRequest {
                options: vec![o.clone()],
            },
        };
        let mut out = vec![0u8; p.emit_len()];
        p.emit(&mut out).expect("fits");
        assert_eq!(&out[4..], [0x03, 0x05, 0xc2, 0x23, 0x81]);
        assert_eq!(LcpPacket::parse(&out).expect("parse"), p);
    }

    #[test]
    fn auth_pap_and_other_and_quality() {
        let b = [
            0x02, 0x09, 0x00, 0x16, // Configure-Ack, id 9 (Length fixed below)
            0x03, 0x04, 0xc0, 0x23, // PAP
            0x03, 0x05, 0xc2, 0x23, 0x80, // CHAP MS-CHAPv1 (not one of ours)
            0x04, 0x08, 0xc0, 0x25, 0x00, 0x00, 0x0b, 0xb8, // LQR every 30 s (1/100 s)
            0x0b, // padding after Length
        ];
        let b = {
            let mut v = b.to_vec();
            v[3] = 21; // Length covers the LQR option, not the padding byte
            v
        };
        let p = LcpPacket::parse(&b).expect("valid");
        assert_eq!(
            p.body,
            CpBody::ConfigureAck {
                options: vec![
                    LcpOption::AuthProtocol(AuthProtocol::Pap),
                    LcpOption::AuthProtocol(AuthProtocol::Other {
                        protocol: protocol::CHAP,
                        data: vec![0x80]
                    }),
                    LcpOption::QualityProtocol {
                        protocol: protocol::LQR,
                        data: vec![0, 0, 0x0b, 0xb8]
                    },
                ]
            }
        );
        let mut out = vec![0u8; p.emit_len()];
        p.emit(&mut out).expect("fits");
        assert_eq!(out, &b[..21]);
    }

    #[test]
    fn wrong_fixed_lengths_are_malformed() {
        for opt in [
            &[0x01, 0x03, 0x05][..],
            &[0x01, 0x05, 0x05, 0xd4, 0x00],
            &[0x02, 0x04, 0, 0],
            &[0x05, 0x05, 0, 0, 0],
            &[0x07, 0x03, 0],
            &[0x08, 0x03, 0],
            &[0x03, 0x03, 0xc0],
            &[0x04, 0x02],
        ] {
            let mut b = vec![1, 1, 0, 0];
            b.extend_from_slice(opt);
            b[3] = b.len() as u8;
            assert!(
                matches!(LcpPacket::parse(&b), Err(Error::Malformed { .. })),
                "{opt:?}"
            );
        }
    }

    #[test]
    fn oversized_option_and_packet_are_refused() {
        let p = LcpPacket {
            identifier: 0,
            body: CpBody::ConfigureRequest {
                options: vec![LcpOption::Unknown {
                    kind: 0x20,
                    data: vec![0; 254],
                }],
            },
        };
        assert!(matches!(
            p.emit(&mut [0u8; 300]),
            Err(Error::Malformed { .. })
        ));
        let p = LcpPacket {
            identifier: 0,
            body: CpBody::TerminateRequest {
                data: vec![0; 65532],
            },
        };
        assert!(matches!(
            p.emit(&mut vec![0u8; 70000]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn echo_request_and_reply() {
        let b = [0x09, 0x2a, 0x00, 0x0a, 0xde, 0xad, 0xbe, 0xef, 0x68, 0x69];
        let p = LcpPacket::parse(&b).expect("valid");
        assert_eq!(
            p,
            LcpPacket {
                identifier: 0x2a,
                body: CpBody::EchoRequest {
                    magic: 0xdead_beef,
                    data: b"hi".to_vec()
                }
            }
        );
        let reply = LcpPacket {
            identifier: 0x2a,
            body: CpBody::EchoReply {
                magic: 0x0102_0304,
                data: vec![],
            },
        };
        let mut out = [0u8; 8];
        reply.emit(&mut out).expect("fits");
        assert_eq!(out, [0x0a, 0x2a, 0x00, 0x08, 1, 2, 3, 4]);
        // An Echo without its Magic-Number is truncated.
        assert!(matches!(
            LcpPacket::parse(&[0x09, 0x01, 0x00, 0x06, 0, 0]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn discard_terminate_code_and_protocol_reject() {
        let p = LcpPacket::parse(&[0x0b, 3, 0, 8, 0, 0, 0, 0]).expect("valid");
        assert_eq!(
            p.body,
            CpBody::DiscardRequest {
                magic: 0,
                data: vec![]
            }
        );
        let p = LcpPacket::parse(&[0x05, 4, 0, 6, b'b', b'y']).expect("valid");
        assert_eq!(
            p.body,
            CpBody::TerminateRequest {
                data: b"by".to_vec()
            }
        );
        let p = LcpPacket::parse(&[0x06, 4, 0, 4]).expect("valid");
        assert_eq!(p.body, CpBody::TerminateAck { data: vec![] });
        // Code-Reject of a packet with code 0x0c.
        let p = LcpPacket::parse(&[0x07, 5, 0, 8, 0x0c, 1, 0, 4]).expect("valid");
        assert_eq!(
            p.body,
            CpBody::CodeReject {
                rejected: vec![0x0c, 1, 0, 4]
            }
        );
        // Protocol-Reject of CCP with the start of the rejected Configure-Request.
        let b = [0x08, 6, 0, 10, 0x80, 0xfd, 0x01, 0x01, 0x00, 0x04];
        let p = LcpPacket::parse(&b).expect("valid");
        assert_eq!(
            p.body,
            CpBody::ProtocolReject {
                protocol: protocol::CCP,
                info: vec![1, 1, 0, 4]
            }
        );
        let mut out = [0u8; 10];
        p.emit(&mut out).expect("fits");
        assert_eq!(out, b);
    }

    #[test]
    fn unknown_code_is_kept() {
        let p = LcpPacket::parse(&[0x0c, 1, 0, 5, 0xaa]).expect("valid");
        assert_eq!(
            p.body,
            CpBody::Unknown {
                code: 12,
                data: vec![0xaa]
            }
        );
        let bad = LcpPacket {
            identifier: 0,
            body: CpBody::Unknown {
                code: 1,
                data: vec![],
            },
        };
        assert!(bad.emit(&mut [0u8; 8]).is_err());
    }

    #[test]
    fn serializes() {
        let p = LcpPacket::parse(&CONF_REQ).expect("valid");
        let j = serde_json::to_string(&p).expect("serializes");
        assert_eq!(
            j,
            r#"{"identifier":1,"body":{"code":"configure-request","options":[{"mru":1492},{"auth-protocol":"chap-md5"},{"magic-number":1583549112}]}}"#
        );
    }

    pub(crate) fn lcp_option() -> impl Strategy<Value = LcpOption> + Clone {
        prop_oneof![
            any::<u16>().prop_map(LcpOption::Mru),
            any::<u32>().prop_map(LcpOption::Accm),
            Just(LcpOption::AuthProtocol(AuthProtocol::Pap)),
            Just(LcpOption::AuthProtocol(AuthProtocol::ChapMd5)),
            (any::<u16>(), bytes(8))
                .prop_filter("canonical forms have their own variants", |(p, d)| {
                    !(*p == protocol::PAP && d.is_empty()
                        || *p == protocol::CHAP && d[..] == [CHAP_ALGORITHM_MD5])
                })
                .prop_map(
                    |(protocol, data)| LcpOption::AuthProtocol(AuthProtocol::Other {
                        protocol,
                        data
                    })
                ),
            (any::<u16>(), bytes(8))
                .prop_map(|(protocol, data)| LcpOption::QualityProtocol { protocol, data }),
            any::<u32>().prop_map(LcpOption::MagicNumber),
            Just(LcpOption::ProtocolFieldCompression),
            Just(LcpOption::AddressControlFieldCompression),
            (any::<u8>(), bytes(8))
                .prop_filter("known kinds have typed variants", |(k, _)| {
                    !matches!(k, 1..=5 | 7 | 8)
                })
                .prop_map(|(kind, data)| LcpOption::Unknown { kind, data }),
        ]
    }

    proptest! {
        #[test]
        fn lcp_round_trip(identifier in any::<u8>(), body in body(lcp_option())) {
            round_trip(&LcpPacket { identifier, body })?;
        }

        #[test]
        fn lcp_parse_never_panics(b in bytes(64)) {
            let _ = LcpPacket::parse(&b);
        }

        #[test]
        fn lcp_parse_never_panics_on_configure(id in any::<u8>(), code in 1u8..=4, opts in bytes(60)) {
            let mut b = vec![code, id, 0, (opts.len() + 4) as u8];
            b.extend_from_slice(&opts);
            let _ = LcpPacket::parse(&b);
        }
    }
}
