//! What an authentication asks a RADIUS server and what its answer grants.
//!
//! The attributes of an Access-Request for a PPP subscriber carried in L2TP (RFC 2865 §5,
//! RFC 2868 §3 tunnel attributes, RFC 2548 Microsoft attributes), and the reading of an
//! Access-Accept (RFC 2865 §5.8 Framed-IP-Address, §5.12 Framed-MTU, §5.25 Class, §5.27
//! Session-Timeout, §5.28 Idle-Timeout; RFC 2869 §5.16 Acct-Interim-Interval; RFC 2869 §5.18
//! Framed-Pool; RFC 3162 §2.3 Framed-IPv6-Prefix; RFC 4818 Delegated-IPv6-Prefix).

use std::net::{IpAddr, Ipv4Addr};

use l2xdp_wire::radius::auth::{chap_password, hide_password};
use l2xdp_wire::radius::packet::as_ipv4;
use l2xdp_wire::radius::{attr, code, microsoft, value, Attribute, Packet};

/// The subscriber's proof of identity, as PPP carried it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// PAP (RFC 1334): the password, sent as User-Password (RFC 2865 §5.2, hidden).
    Pap(Vec<u8>),
    /// CHAP-MD5 (RFC 1994): sent as CHAP-Password and CHAP-Challenge (RFC 2865 §5.3, §5.40).
    Chap {
        /// The CHAP Identifier of the Challenge.
        identifier: u8,
        /// The Challenge Value the LNS sent.
        challenge: Vec<u8>,
        /// The peer's 16-octet Response Value.
        response: [u8; 16],
    },
    /// MS-CHAPv2 (RFC 2759): MS-CHAP-Challenge and MS-CHAP2-Response (RFC 2548 §2.3.2).
    MsChapV2 {
        /// The CHAP Identifier.
        identifier: u8,
        /// The 16-octet Authenticator Challenge the LNS sent.
        challenge: [u8; 16],
        /// The 16-octet Peer-Challenge from the Response.
        peer_challenge: [u8; 16],
        /// The 24-octet NT-Response.
        nt_response: [u8; 24],
    },
}

impl serde::Serialize for Credential {
    /// The method only: never the secret material.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Credential::Pap(_) => "pap",
            Credential::Chap { .. } => "chap",
            Credential::MsChapV2 { .. } => "mschapv2",
        })
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret material.
        f.write_str(match self {
            Credential::Pap(_) => "Pap(<password>)",
            Credential::Chap { .. } => "Chap(<response>)",
            Credential::MsChapV2 { .. } => "MsChapV2(<response>)",
        })
    }
}

/// An Access-Request for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessRequest {
    /// User-Name: the PAP Peer-ID or CHAP Name.
    #[serde(serialize_with = "ser_lossy")]
    pub user: Vec<u8>,
    /// The proof (serialized as its method only).
    pub credential: Credential,
    /// Attributes from the L2TP side (Calling-/Called-Station-Id, tunnel endpoints, ...),
    /// sent as given.
    #[serde(skip)]
    pub attributes: Vec<Attribute>,
}

fn ser_lossy<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

impl AccessRequest {
    /// The attributes every PPP-over-L2TP request carries (RFC 2865 §5.6, §5.7, §5.41;
    /// RFC 2868 §3.1, §3.2): Service-Type Framed, Framed-Protocol PPP, NAS-Port-Type Virtual,
    /// Tunnel-Type L2TP over IPv4.
    pub fn ppp_attributes() -> Vec<Attribute> {
        vec![
            Attribute::integer(attr::SERVICE_TYPE, value::SERVICE_TYPE_FRAMED),
            Attribute::integer(attr::FRAMED_PROTOCOL, value::FRAMED_PROTOCOL_PPP),
            Attribute::integer(attr::NAS_PORT_TYPE, value::NAS_PORT_TYPE_VIRTUAL),
            // Tag 0 in the first octet (RFC 2868 §3.1: "Tag field ... 0x00 if unused").
            Attribute::integer(attr::TUNNEL_TYPE, value::TUNNEL_TYPE_L2TP),
            Attribute::integer(attr::TUNNEL_MEDIUM_TYPE, value::TUNNEL_MEDIUM_IPV4),
        ]
    }

    /// The Access-Request to one server: a zeroed Message-Authenticator first (to be signed
    /// after emit), User-Name, the credential (hidden under `secret` and `authenticator`),
    /// NAS identity, then the caller's attributes.
    pub(crate) fn packet(
        &self,
        identifier: u8,
        authenticator: [u8; 16],
        secret: &[u8],
        nas: &[Attribute],
    ) -> Result<Packet, l2xdp_wire::Error> {
        let mut a = Vec::with_capacity(8 + self.attributes.len());
        a.push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]));
        a.push(Attribute::new(attr::USER_NAME, self.user.clone()));
        match &self.credential {
            Credential::Pap(pw) => a.push(Attribute::new(
                attr::USER_PASSWORD,
                hide_password(pw, secret, &authenticator)?,
            )),
            Credential::Chap {
                identifier: id,
                challenge,
                response,
            } => {
                a.push(Attribute::new(
                    attr::CHAP_PASSWORD,
                    chap_password(*id, response),
                ));
                a.push(Attribute::new(attr::CHAP_CHALLENGE, challenge.clone()));
            }
            Credential::MsChapV2 {
                identifier: id,
                challenge,
                peer_challenge,
                nt_response,
            } => {
                a.push(Attribute::vsa(
                    microsoft::VENDOR_ID,
                    microsoft::MS_CHAP_CHALLENGE,
                    challenge,
                ));
                // RFC 2548 §2.3.2: Ident, Flags (0), Peer-Challenge, Reserved (8 zeros),
                // Response.
                let mut r = Vec::with_capacity(50);
                r.push(*id);
                r.push(0);
                r.extend_from_slice(peer_challenge);
                r.extend_from_slice(&[0; 8]);
                r.extend_from_slice(nt_response);
                a.push(Attribute::vsa(
                    microsoft::VENDOR_ID,
                    microsoft::MS_CHAP2_RESPONSE,
                    &r,
                ));
            }
        }
        a.extend_from_slice(nas);
        a.extend(self.attributes.iter().cloned());
        Ok(Packet {
            code: code::ACCESS_REQUEST,
            identifier,
            authenticator,
            attributes: a,
        })
    }
}

/// The NAS identity attributes (RFC 2865 §4.1: NAS-IP-Address or NAS-Identifier, at least
/// one).
pub(crate) fn nas_attributes(
    nas_identifier: Option<&str>,
    nas_ip: Option<IpAddr>,
) -> Vec<Attribute> {
    let mut v = Vec::new();
    match nas_ip {
        Some(IpAddr::V4(ip)) => v.push(Attribute::ipv4(attr::NAS_IP_ADDRESS, ip)),
        Some(IpAddr::V6(ip)) => v.push(Attribute::new(attr::NAS_IPV6_ADDRESS, ip.octets())),
        None => {}
    }
    if let Some(id) = nas_identifier {
        v.push(Attribute::new(attr::NAS_IDENTIFIER, id.as_bytes()));
    }
    v
}

/// What an Access-Accept grants the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccessAccept {
    /// Framed-IP-Address: the subscriber's address (RFC 2865 §5.8). 255.255.255.255 ("let
    /// the user select") and 255.255.255.254 ("the NAS should select") are given as `None`:
    /// the pool decides.
    pub framed_ip: Option<Ipv4Addr>,
    /// Framed-Pool: the pool to take the address from (RFC 2869 §5.18).
    pub framed_pool: Option<String>,
    /// Framed-IPv6-Prefix (RFC 3162 §2.3), raw, kept for the IPv6 work.
    pub framed_ipv6_prefix: Option<Vec<u8>>,
    /// Delegated-IPv6-Prefix (RFC 4818), raw, kept for the IPv6 work.
    pub delegated_ipv6_prefix: Option<Vec<u8>>,
    /// Session-Timeout in seconds (RFC 2865 §5.27).
    pub session_timeout: Option<u32>,
    /// Idle-Timeout in seconds (RFC 2865 §5.28).
    pub idle_timeout: Option<u32>,
    /// Acct-Interim-Interval in seconds (RFC 2869 §5.16).
    pub acct_interim_interval: Option<u32>,
    /// Framed-MTU (RFC 2865 §5.12: 64..=65535).
    pub framed_mtu: Option<u16>,
    /// Class values, echoed unchanged in accounting (RFC 2865 §5.25).
    #[serde(skip)]
    pub class: Vec<Vec<u8>>,
    /// Reply-Message, joined (RFC 2865 §5.18: several are concatenated).
    pub reply_message: Option<String>,
    /// MS-CHAP2-Success: the Ident and "S=<authenticator response>" for the PPP Success
    /// message (RFC 2548 §2.3.3, RFC 2759 §5).
    #[serde(skip)]
    pub ms_chap2_success: Option<Vec<u8>>,
}

/// How the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessOutcome {
    /// Access-Accept.
    Accept(AccessAccept),
    /// Access-Reject, with its Reply-Message (for the PPP Failure/Nak message).
    Reject {
        /// Reply-Message, joined.
        reply_message: Option<String>,
    },
    /// Access-Challenge: not supported for PPP (no EAP); treated as a reject by callers.
    Challenge,
}

fn reply_message(p: &Packet) -> Option<String> {
    let parts: Vec<String> = p
        .all(attr::REPLY_MESSAGE)
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.concat())
}

impl AccessOutcome {
    /// Reads a verified response.
    pub(crate) fn from_packet(p: &Packet) -> Self {
        match p.code {
            code::ACCESS_ACCEPT => {
                let framed_ip = p
                    .get(attr::FRAMED_IP_ADDRESS)
                    .and_then(as_ipv4)
                    .filter(|ip| {
                        *ip != Ipv4Addr::BROADCAST && *ip != Ipv4Addr::new(255, 255, 255, 254)
                    });
                AccessOutcome::Accept(AccessAccept {
                    framed_ip,
                    framed_pool: p
                        .get(attr::FRAMED_POOL)
                        .map(|v| String::from_utf8_lossy(v).into_owned()),
                    framed_ipv6_prefix: p.get(attr::FRAMED_IPV6_PREFIX).map(<[u8]>::to_vec),
                    delegated_ipv6_prefix: p.get(attr::DELEGATED_IPV6_PREFIX).map(<[u8]>::to_vec),
                    session_timeout: p.integer(attr::SESSION_TIMEOUT),
                    idle_timeout: p.integer(attr::IDLE_TIMEOUT),
                    acct_interim_interval: p.integer(attr::ACCT_INTERIM_INTERVAL),
                    framed_mtu: p
                        .integer(attr::FRAMED_MTU)
                        .and_then(|m| u16::try_from(m).ok())
                        .filter(|m| *m >= 64),
                    class: p.all(attr::CLASS).map(<[u8]>::to_vec).collect(),
                    reply_message: reply_message(p),
                    ms_chap2_success: p
                        .vendor(microsoft::VENDOR_ID, microsoft::MS_CHAP2_SUCCESS)
                        .map(<[u8]>::to_vec),
                })
            }
            code::ACCESS_REJECT => AccessOutcome::Reject {
                reply_message: reply_message(p),
            },
            _ => AccessOutcome::Challenge,
        }
    }
}
