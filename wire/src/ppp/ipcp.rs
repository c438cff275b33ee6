//! The IP Control Protocol (RFC 1332 §2, §3; DNS and NBNS options from RFC 1877 §1),
//! protocol 0x8021. IPCP uses codes 1 to 7 only (RFC 1332 §2).

use std::net::Ipv4Addr;

use super::cp::{at_least, be16, fixed, CpOption, CpRepr, RawOption};
use super::frame::protocol;
use crate::error::Result;

/// An IPCP packet (RFC 1332 §2): codes 1 to 7.
pub type IpcpPacket = CpRepr<IpcpOption>;

/// IPCP Configuration Option Types.
pub mod kind {
    /// IP-Addresses (RFC 1332 §3.1, deprecated).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol (RFC 1332 §3.2).
    pub const IP_COMPRESSION_PROTOCOL: u8 = 2;
    /// IP-Address (RFC 1332 §3.3).
    pub const IP_ADDRESS: u8 = 3;
    /// Primary-DNS-Server-Address (RFC 1877 §1.1).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary-NBNS-Server-Address (RFC 1877 §1.2).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary-DNS-Server-Address (RFC 1877 §1.3).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary-NBNS-Server-Address (RFC 1877 §1.4).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// The Van Jacobson compressed TCP/IP protocol number for IP-Compression-Protocol
/// (RFC 1332 §3.2); its data is Max-Slot-Id and Comp-Slot-Id.
pub const VJ_COMPRESSION: u16 = 0x002d;

/// An IPCP Configuration Option.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpcpOption {
    /// 1: IP-Addresses (RFC 1332 §3.1, deprecated), length 10.
    IpAddresses {
        source: Ipv4Addr,
        destination: Ipv4Addr,
    },
    /// 2: IP-Compression-Protocol (RFC 1332 §3.2), length >= 4.
    IpCompressionProtocol {
        protocol: u16,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
    /// 3: IP-Address (RFC 1332 §3.3), length 6; 0.0.0.0 asks the peer to assign one.
    IpAddress(Ipv4Addr),
    /// 129: Primary-DNS-Server-Address (RFC 1877 §1.1), length 6.
    PrimaryDns(Ipv4Addr),
    /// 130: Primary-NBNS-Server-Address (RFC 1877 §1.2), length 6.
    PrimaryNbns(Ipv4Addr),
    /// 131: Secondary-DNS-Server-Address (RFC 1877 §1.3), length 6.
    SecondaryDns(Ipv4Addr),
    /// 132: Secondary-NBNS-Server-Address (RFC 1877 §1.4), length 6.
    SecondaryNbns(Ipv4Addr),
    /// Any other Type, kept opaque. Parsing never yields a Type listed above.
    Unknown {
        kind: u8,
        #[serde(serialize_with = "super::ser_hex")]
        data: Vec<u8>,
    },
}

fn addr(what: &'static str, d: &[u8]) -> Result<Ipv4Addr> {
    fixed(what, d, 4)?;
    Ok(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
}

impl CpOption for IpcpOption {
    const PROTOCOL: u16 = protocol::IPCP;
    const NAME: &'static str = "IPCP packet";
    const LCP_CODES: bool = false;

    fn parse(raw: RawOption<'_>) -> Result<Self> {
        let d = raw.data;
        Ok(match raw.kind {
            kind::IP_ADDRESSES => {
                fixed("IPCP IP-Addresses option", d, 8)?;
                IpcpOption::IpAddresses {
                    source: Ipv4Addr::new(d[0], d[1], d[2], d[3]),
                    destination: Ipv4Addr::new(d[4], d[5], d[6], d[7]),
                }
            }
            kind::IP_COMPRESSION_PROTOCOL => {
                at_least("IPCP IP-Compression-Protocol option", d, 2)?;
                IpcpOption::IpCompressionProtocol {
                    protocol: be16(d)?,
                    data: d[2..].to_vec(),
                }
            }
            kind::IP_ADDRESS => IpcpOption::IpAddress(addr("IPCP IP-Address option", d)?),
            kind::PRIMARY_DNS => IpcpOption::PrimaryDns(addr("IPCP Primary-DNS option", d)?),
            kind::PRIMARY_NBNS => IpcpOption::PrimaryNbns(addr("IPCP Primary-NBNS option", d)?),
            kind::SECONDARY_DNS => IpcpOption::SecondaryDns(addr("IPCP Secondary-DNS option", d)?),
            kind::SECONDARY_NBNS => {
                IpcpOption::SecondaryNbns(addr("IPCP Secondary-NBNS option", d)?)
            }
            kind => IpcpOption::Unknown {
                kind,
                data: d.to_vec(),
            },
        })
    }

    fn kind(&self) -> u8 {
        match self {
            IpcpOption::IpAddresses { .. } => kind::IP_ADDRESSES,
            IpcpOption::IpCompressionProtocol { .. } => kind::IP_COMPRESSION_PROTOCOL,
            IpcpOption::IpAddress(_) => kind::IP_ADDRESS,
            IpcpOption::PrimaryDns(_) => kind::PRIMARY_DNS,
            IpcpOption::PrimaryNbns(_) => kind::PRIMARY_NBNS,
            IpcpOption::SecondaryDns(_) => kind::SECONDARY_DNS,
            IpcpOption::SecondaryNbns(_) => kind::SECONDARY_NBNS,
            IpcpOption::Unknown { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            IpcpOption::IpAddresses { .. } => 8,
            IpcpOption::IpCompressionProtocol { data, .. } => 2 + data.len(),
            IpcpOption::IpAddress(_)
            | IpcpOption::PrimaryDns(_)
            | IpcpOption::PrimaryNbns(_)
            | IpcpOption::SecondaryDns(_)
            | IpcpOption::SecondaryNbns(_) => 4,
            IpcpOption::Unknown { data, .. } => data.len(),
        }
    }

    fn emit_data(&self, buf: &mut [u8]) {
        match self {
            IpcpOption::IpAddresses {
                source,
                destination,
            } => {
                buf[..4].copy_from_slice(&source.octets());
                buf[4..].copy_from_slice(&destination.octets());
            }
            IpcpOption::IpCompressionProtocol { protocol, data } => {
                buf[..2].copy_from_slice(&protocol.to_be_bytes());
                buf[2..].copy_from_slice(data);
            }
            IpcpOption::IpAddress(a)
            | IpcpOption::PrimaryDns(a)
            | IpcpOption::PrimaryNbns(a)
            | IpcpOption::SecondaryDns(a)
            | IpcpOption::SecondaryNbns(a) => buf.copy_from_slice(&a.octets()),
            IpcpOption::Unknown { data, .. } => buf.copy_from_slice(data),
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

    /// The LNS's Configure-Nak to a client's request for 0.0.0.0 and DNS 0.0.0.0: address
    /// 10.0.0.5, primary DNS 8.8.8.8.
    const CONF_NAK: [u8; 16] = [
        0x03, 0x02, 0x00, 0x10, // Configure-Nak, id 2, length 16
        0x03, 0x06, 0x0a, 0x00, 0x00, 0x05, // IP-Address 10.0.0.5
        0x81, 0x06, 0x08, 0x08, 0x08, 0x08, // Primary-DNS 8.8.8.8
    ];

    #[test]
    fn configure_nak_golden() {
        let want = IpcpPacket {
            identifier: 2,
            body: CpBody::ConfigureNak {
                options: vec![
                    IpcpOption::IpAddress(Ipv4Addr::new(10, 0, 0, 5)),
                    IpcpOption::PrimaryDns(Ipv4Addr::new(8, 8, 8, 8)),
                ],
            },
        };
        assert_eq!(IpcpPacket::parse(&CONF_NAK).expect("valid"), want);
        let mut out = [0u8; 16];
        assert_eq!(want.emit(&mut out).expect("fits"), 16);
        assert_eq!(out, CONF_NAK);
        assert_eq!(
            serde_json::to_string(&want).expect("serializes"),
            r#"{"identifier":2,"body":{"code":"configure-nak","options":[{"ip-address":"10.0.0.5"},{"primary-dns":"8.8.8.8"}]}}"#
        );
    }

    #[test]
    fn every_option_golden() {
        let b = [
            0x01, 0x07, 0x00, 0x36, // Configure-Request, id 7, length 54
            0x01, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, // IP-Addresses
            0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01, // VJ, Max-Slot-Id 15, Comp-Slot-Id 1
            0x03, 0x06, 0, 0, 0, 0, // IP-Address 0.0.0.0
            0x81, 0x06, 0, 0, 0, 0, // Primary-DNS
            0x82, 0x06, 0, 0, 0, 1, // Primary-NBNS
            0x83, 0x06, 0, 0, 0, 2, // Secondary-DNS
            0x84, 0x06, 0, 0, 0, 3, // Secondary-NBNS
            0x90, 0x04, 0xab, 0xcd, // unknown 144
        ];
        let p = IpcpPacket::parse(&b).expect("valid");
        let want = vec![
            IpcpOption::IpAddresses {
                source: Ipv4Addr::new(1, 2, 3, 4),
                destination: Ipv4Addr::new(5, 6, 7, 8),
            },
            IpcpOption::IpCompressionProtocol {
                protocol: VJ_COMPRESSION,
                data: vec![0x0f, 0x01],
            },
            IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED),
            IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED),
            IpcpOption::PrimaryNbns(Ipv4Addr::new(0, 0, 0, 1)),
            IpcpOption::SecondaryDns(Ipv4Addr::new(0, 0, 0, 2)),
            IpcpOption::SecondaryNbns(Ipv4Addr::new(0, 0, 0, 3)),
            IpcpOption::Unknown {
                kind: 0x90,
                data: vec![0xab, 0xcd],
            },
        ];
        assert_eq!(p.body, CpBody::ConfigureRequest { options: want });
        let mut out = vec![0u8; p.emit_len()];
        p.emit(&mut out).expect("fits");
        assert_eq!(out, b);
    }

    #[test]
    fn wrong_lengths_are_malformed() {
        for opt in [
            &[0x01, 0x06, 1, 2, 3, 4][..],
            &[0x02, 0x03, 0x00],
            &[0x03, 0x05, 1, 2, 3],
            &[0x81, 0x07, 1, 2, 3, 4, 5],
            &[0x84, 0x02],
        ] {
            let mut b = vec![1, 1, 0, 0];
            b.extend_from_slice(opt);
            b[3] = b.len() as u8;
            assert!(
                matches!(IpcpPacket::parse(&b), Err(Error::Malformed { .. })),
                "{opt:?}"
            );
        }
    }

    #[test]
    fn lcp_only_codes_are_unknown() {
        let p = IpcpPacket::parse(&[0x09, 1, 0, 8, 0, 0, 0, 0]).expect("valid");
        assert_eq!(
            p.body,
            CpBody::Unknown {
                code: 9,
                data: vec![0; 4]
            }
        );
        let echo = IpcpPacket {
            identifier: 1,
            body: CpBody::EchoRequest {
                magic: 0,
                data: vec![],
            },
        };
        assert!(echo.emit(&mut [0u8; 16]).is_err());
        // ... and an IPCP Unknown with code 9 does emit.
        let mut out = [0u8; 8];
        p.emit(&mut out).expect("fits");
        assert_eq!(out, [0x09, 1, 0, 8, 0, 0, 0, 0]);
    }

    fn v4() -> impl Strategy<Value = Ipv4Addr> + Clone {
        any::<[u8; 4]>().prop_map(Ipv4Addr::from)
    }

    pub(crate) fn ipcp_option() -> impl Strategy<Value = IpcpOption> + Clone {
        prop_oneof![
            (v4(), v4()).prop_map(|(source, destination)| IpcpOption::IpAddresses {
                source,
                destination
            }),
            (any::<u16>(), bytes(8))
                .prop_map(|(protocol, data)| IpcpOption::IpCompressionProtocol { protocol, data }),
            v4().prop_map(IpcpOption::IpAddress),
            v4().prop_map(IpcpOption::PrimaryDns),
            v4().prop_map(IpcpOption::PrimaryNbns),
            v4().prop_map(IpcpOption::SecondaryDns),
            v4().prop_map(IpcpOption::SecondaryNbns),
            (any::<u8>(), bytes(8))
                .prop_filter("known kinds have typed variants", |(k, _)| {
                    !matches!(k, 1..=3 | 129..=132)
                })
                .prop_map(|(kind, data)| IpcpOption::Unknown { kind, data }),
        ]
    }

    proptest! {
        #[test]
        fn ipcp_round_trip(identifier in any::<u8>(), body in body(ipcp_option())) {
            round_trip(&IpcpPacket { identifier, body })?;
        }

        #[test]
        fn ipcp_parse_never_panics(b in bytes(64)) {
            let _ = IpcpPacket::parse(&b);
        }

        #[test]
        fn ipcp_parse_never_panics_on_configure(id in any::<u8>(), code in 1u8..=4, opts in bytes(60)) {
            let mut b = vec![code, id, 0, (opts.len() + 4) as u8];
            b.extend_from_slice(&opts);
            let _ = IpcpPacket::parse(&b);
        }
    }
}
