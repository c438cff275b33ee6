//! The IPv6 Control Protocol (RFC 5072 §3, §4), protocol 0x8057. IPv6CP uses codes 1 to 7
//! only (RFC 5072 §3).

use super::cp::{at_least, be16, fixed, CpOption, CpRepr, RawOption};
use super::frame::protocol;
use crate::error::Result;

/// An IPv6CP packet (RFC 5072 §3): codes 1 to 7.
pub type Ipv6cpPacket = CpRepr<Ipv6cpOption>;

/// IPv6CP Configuration Option Types (RFC 5072 §4).
pub mod kind {
    /// Interface-Identifier (RFC 5072 §4.1).
    pub const INTERFACE_IDENTIFIER: u8 = 1;
    /// IPv6-Compression-Protocol (RFC 5072 §4.2).
    pub const IPV6_COMPRESSION_PROTOCOL: u8 = 2;
}

/// An IPv6CP Configuration Option.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6cpOption {
    /// 1: Interface-Identifier (RFC 5072 §4.1), length 10; serialized as hex.
    InterfaceIdentifier(#[serde(serialize_with = "super::ser_hex")] [u8; 8]),
    /// 2: IPv6-Compression-Protocol (RFC 5072 §4.2), length >= 4.
    Ipv6CompressionProtocol {
        protocol: u16,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// Any other Type, kept opaque. Parsing never yields a Type listed above.
    Unknown {
        kind: u8,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
}

impl CpOption for Ipv6cpOption {
    const PROTOCOL: u16 = protocol::IPV6CP;
    const NAME: &'static str = "IPv6CP packet";
    const LCP_CODES: bool = false;

    fn parse(raw: RawOption<'_>) -> Result<Self> {
        let d = raw.data;
        Ok(match raw.kind {
            kind::INTERFACE_IDENTIFIER => {
                fixed("IPv6CP Interface-Identifier option", d, 8)?;
                let mut id = [0u8; 8];
                id.copy_from_slice(d);
                Ipv6cpOption::InterfaceIdentifier(id)
            }
            kind::IPV6_COMPRESSION_PROTOCOL => {
                at_least("IPv6CP IPv6-Compression-Protocol option", d, 2)?;
                Ipv6cpOption::Ipv6CompressionProtocol {
                    protocol: be16(d)?,
                    data: d[2..].to_vec(),
                }
            }
            kind => Ipv6cpOption::Unknown {
                kind,
                data: d.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => kind::INTERFACE_IDENTIFIER,
            Ipv6cpOption::Ipv6CompressionProtocol { .. } => kind::IPV6_COMPRESSION_PROTOCOL,
            Ipv6cpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Ipv6cpOption::InterfaceIdentifier(_) => 8,
            Ipv6cpOption::Ipv6CompressionProtocol { data, .. } => 2 + data.len(),
            Ipv6cpOption::Unknown { data, .. } => data.len(),
        }
    }

    fn emit_data(&self, buf: &mut [u8]) {
        match self {
            Ipv6cpOption::InterfaceIdentifier(id) => buf.copy_from_slice(id),
            Ipv6cpOption::Ipv6CompressionProtocol { protocol, data } => {
                buf[..2].copy_from_slice(&protocol.to_be_bytes());
                buf[2..].copy_from_slice(data);
            }
            Ipv6cpOption::Unknown { data, .. } => buf.copy_from_slice(data),
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

    #[test]
    fn configure_request_golden() {
        let b = [
            0x01, 0x01, 0x00, 0x14, // Configure-Request, id 1, length 20
            0x01, 0x0a, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44,
            0x55, // Interface-Identifier
            0x02, 0x06, 0x00, 0x61, 0x00, 0x0f, // IPHC, TCP_SPACE 15 (truncated, opaque)
        ];
        let want = Ipv6cpPacket {
            identifier: 1,
            body: CpBody::ConfigureRequest {
                options: vec![
                    Ipv6cpOption::InterfaceIdentifier([
                        0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55,
                    ]),
                    Ipv6cpOption::Ipv6CompressionProtocol {
                        protocol: 0x0061,
                        data: vec![0x00, 0x0f],
                    },
                ],
            },
        };
        assert_eq!(Ipv6cpPacket::parse(&b).expect("valid"), want);
        let mut out = [0u8; 20];
        want.emit(&mut out).expect("fits");
        assert_eq!(out, b);
        assert_eq!(
            serde_json::to_string(&want.body).expect("serializes"),
            r#"{"code":"configure-request","options":[{"interface-identifier":"021122fffe334455"},{"ipv6-compression-protocol":{"protocol":97,"data":"000f"}}]}"#
        );
    }

    #[test]
    fn configure_ack_and_unknown() {
        // Length 7: the two zero bytes after the option are padding.
        let b = [0x02, 0x05, 0x00, 0x07, 0x07, 0x03, 0xaa, 0x00, 0x00];
        let p = Ipv6cpPacket::parse(&b).expect("valid");
        assert_eq!(p.identifier, 5);
        assert_eq!(
            p.body,
            CpBody::ConfigureAck {
                options: vec![Ipv6cpOption::Unknown {
                    kind: 7,
                    data: vec![0xaa]
                }]
            }
        );
    }

    #[test]
    fn wrong_lengths_are_malformed() {
        for opt in [&[0x01, 0x09, 0, 0, 0, 0, 0, 0, 0][..], &[0x02, 0x03, 0x00]] {
            let mut b = vec![1, 1, 0, 0];
            b.extend_from_slice(opt);
            b[3] = b.len() as u8;
            assert!(
                matches!(Ipv6cpPacket::parse(&b), Err(Error::Malformed { .. })),
                "{opt:?}"
            );
        }
    }

    pub(crate) fn ipv6cp_option() -> impl Strategy<Value = Ipv6cpOption> + Clone {
        prop_oneof![
            any::<[u8; 8]>().prop_map(Ipv6cpOption::InterfaceIdentifier),
            (any::<u16>(), bytes(8)).prop_map(|(protocol, data)| {
                Ipv6cpOption::Ipv6CompressionProtocol { protocol, data }
            }),
            (3u8..=255, bytes(8)).prop_map(|(kind, data)| Ipv6cpOption::Unknown { kind, data }),
            bytes(8).prop_map(|data| Ipv6cpOption::Unknown { kind: 0, data }),
        ]
    }

    proptest! {
        #[test]
        fn ipv6cp_round_trip(identifier in any::<u8>(), body in body(ipv6cp_option())) {
            round_trip(&Ipv6cpPacket { identifier, body })?;
        }

        #[test]
        fn ipv6cp_parse_never_panics(b in bytes(64)) {
            let _ = Ipv6cpPacket::parse(&b);
        }

        #[test]
        fn ipv6cp_parse_never_panics_on_configure(id in any::<u8>(), code in 1u8..=4, opts in bytes(60)) {
            let mut b = vec![code, id, 0, (opts.len() + 4) as u8];
            b.extend_from_slice(&opts);
            let _ = Ipv6cpPacket::parse(&b);
        }
    }
}
