//! The Password Authentication Protocol (RFC 1334 §2), protocol 0xc023.
//!
//! ```text
//! Authenticate-Request (RFC 1334 §2.2.1):
//! |     Code      |  Identifier   |            Length             |
//! | Peer-ID Length|  Peer-Id ...
//! | Passwd-Length |  Password ...
//! Authenticate-Ack and -Nak (RFC 1334 §2.2.2):
//! |     Code      |  Identifier   |            Length             |
//! |  Msg-Length   |  Message  ...
//! ```

use super::cp::{CpPacket, HEADER_LEN};
use crate::error::{check_room, Error, Result};

/// PAP Codes (RFC 1334 §2.2).
pub mod code {
    /// Authenticate-Request.
    pub const AUTHENTICATE_REQUEST: u8 = 1;
    /// Authenticate-Ack.
    pub const AUTHENTICATE_ACK: u8 = 2;
    /// Authenticate-Nak.
    pub const AUTHENTICATE_NAK: u8 = 3;
}

/// The code-specific content of a PAP packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum PapBody {
    /// 1: the peer's name and password (RFC 1334 §2.2.1). The password is serialized as
    /// `"<N bytes>"`, never in clear, so that decoded packets can be logged.
    AuthenticateRequest {
        #[serde(serialize_with = "super::ser_text")]
        peer_id: Vec<u8>,
        #[serde(serialize_with = "super::ser_redacted")]
        password: Vec<u8>,
    },
    /// 2: the authenticator accepts (RFC 1334 §2.2.2).
    AuthenticateAck {
        #[serde(serialize_with = "super::ser_text")]
        message: Vec<u8>,
    },
    /// 3: the authenticator refuses (RFC 1334 §2.2.2).
    AuthenticateNak {
        #[serde(serialize_with = "super::ser_text")]
        message: Vec<u8>,
    },
}

/// An owned PAP packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PapPacket {
    /// Identifier: an Ack or Nak copies the Request's (RFC 1334 §2.2.2).
    pub identifier: u8,
    /// Code and Data.
    pub body: PapBody,
}

/// Splits a one-byte-length-prefixed field off the front of `data`.
fn counted<'a>(what: &'static str, data: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
    let (len, rest) = match data {
        [len, rest @ ..] => (usize::from(*len), rest),
        [] => {
            return Err(Error::Truncated {
                what,
                need: 1,
                have: 0,
            })
        }
    };
    if rest.len() < len {
        return Err(Error::Truncated {
            what,
            need: len + 1,
            have: data.len(),
        });
    }
    Ok(rest.split_at(len))
}

fn len8(what: &'static str, v: &[u8]) -> Result<u8> {
    u8::try_from(v.len()).map_err(|_| Error::Malformed {
        what,
        why: "longer than 255 bytes",
    })
}

impl PapPacket {
    /// Parses a PAP packet starting at its Code. Octets outside Length are padding
    /// (RFC 1334 §2.2); octets inside Length after the last field are ignored. An Ack or Nak
    /// without even a Msg-Length octet is read as an empty message (some peers send that).
    /// Codes other than 1-3 are [`Error::Unsupported`] (PAP has no Code-Reject; RFC 1334 §2.2
    /// says to silently discard them).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let p = CpPacket::new_checked(buf)?;
        let data = p.data();
        let body = match p.code() {
            code::AUTHENTICATE_REQUEST => {
                let (peer_id, rest) = counted("PAP Peer-ID", data)?;
                let (password, _) = counted("PAP Password", rest)?;
                PapBody::AuthenticateRequest {
                    peer_id: peer_id.to_vec(),
                    password: password.to_vec(),
                }
            }
            c @ (code::AUTHENTICATE_ACK | code::AUTHENTICATE_NAK) => {
                let message = if data.is_empty() {
                    Vec::new()
                } else {
                    counted("PAP Message", data)?.0.to_vec()
                };
                if c == code::AUTHENTICATE_ACK {
                    PapBody::AuthenticateAck { message }
                } else {
                    PapBody::AuthenticateNak { message }
                }
            }
            c => {
                return Err(Error::Unsupported {
                    what: "PAP code",
                    value: u32::from(c),
                })
            }
        };
        Ok(PapPacket {
            identifier: p.identifier(),
            body,
        })
    }

    /// The Code this packet is sent with.
    pub fn code(&self) -> u8 {
        match self.body {
            PapBody::AuthenticateRequest { .. } => code::AUTHENTICATE_REQUEST,
            PapBody::AuthenticateAck { .. } => code::AUTHENTICATE_ACK,
            PapBody::AuthenticateNak { .. } => code::AUTHENTICATE_NAK,
        }
    }

    /// The length of the emitted packet (its Length field).
    pub fn emit_len(&self) -> usize {
        HEADER_LEN
            + match &self.body {
                PapBody::AuthenticateRequest { peer_id, password } => {
                    2 + peer_id.len() + password.len()
                }
                PapBody::AuthenticateAck { message } | PapBody::AuthenticateNak { message } => {
                    1 + message.len()
                }
            }
    }

    /// Emits the packet into the front of `buf`; returns its length. Fields longer than 255
    /// bytes are refused.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.emit_len();
        // At most 4 + 2 + 2 * 255 once the fields are checked below.
        let fields: [&[u8]; 2] = match &self.body {
            PapBody::AuthenticateRequest { peer_id, password } => [peer_id, password],
            PapBody::AuthenticateAck { message } | PapBody::AuthenticateNak { message } => {
                [message, &[]]
            }
        };
        for f in fields {
            len8("PAP field", f)?;
        }
        check_room("PAP packet", buf, len)?;
        let mut p = CpPacket::new_unchecked(&mut buf[..len]);
        p.set_code(self.code());
        p.set_identifier(self.identifier);
        p.set_length(len as u16);
        let out = p.data_mut();
        let n = match &self.body {
            PapBody::AuthenticateRequest { .. } => 2,
            _ => 1,
        };
        let mut at = 0;
        for f in &fields[..n] {
            out[at] = f.len() as u8;
            out[at + 1..at + 1 + f.len()].copy_from_slice(f);
            at += 1 + f.len();
        }
        Ok(len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ppp::cp::tests::bytes;
    use proptest::prelude::*;

    const REQUEST: [u8; 18] = [
        0x01, 0x07, 0x00, 0x12, // Authenticate-Request, id 7, length 18
        0x05, b'a', b'l', b'i', b'c', b'e', // Peer-ID "alice"
        0x06, b's', b'e', b'c', b'r', b'e', b't', // Password "secret"
        0x00, // padding once Length is set to 17 below
    ];

    #[test]
    fn request_golden() {
        // Length 17 covers the fields; the trailing zero is padding.
        let mut b = REQUEST;
        b[3] = 17;
        let p = PapPacket::parse(&b).expect("valid");
        let want = PapPacket {
            identifier: 7,
            body: PapBody::AuthenticateRequest {
                peer_id: b"alice".to_vec(),
                password: b"secret".to_vec(),
            },
        };
        assert_eq!(p, want);
        let mut out = [0u8; 17];
        assert_eq!(want.emit(&mut out).expect("fits"), 17);
        assert_eq!(out, b[..17]);
        assert_eq!(
            serde_json::to_string(&want).expect("serializes"),
            r#"{"identifier":7,"body":{"code":"authenticate-request","peer_id":"alice","password":"<6 bytes>"}}"#
        );
    }

    #[test]
    fn ack_and_nak_golden() {
        let ack = [0x02, 0x07, 0x00, 0x07, 0x02, b'O', b'K'];
        let p = PapPacket::parse(&ack).expect("valid");
        assert_eq!(
            p,
            PapPacket {
                identifier: 7,
                body: PapBody::AuthenticateAck {
                    message: b"OK".to_vec()
                }
            }
        );
        let nak = PapPacket {
            identifier: 8,
            body: PapBody::AuthenticateNak { message: vec![] },
        };
        let mut out = [0u8; 5];
        nak.emit(&mut out).expect("fits");
        assert_eq!(out, [0x03, 0x08, 0x00, 0x05, 0x00]);
        // An Ack without a Msg-Length octet.
        let p = PapPacket::parse(&[0x02, 0x01, 0x00, 0x04]).expect("lenient");
        assert_eq!(p.body, PapBody::AuthenticateAck { message: vec![] });
    }

    #[test]
    fn bad_lengths() {
        // Peer-ID Length runs past Length.
        assert!(matches!(
            PapPacket::parse(&[0x01, 0x01, 0x00, 0x07, 0x05, b'a', b'b']),
            Err(Error::Truncated { .. })
        ));
        // No Passwd-Length.
        assert!(matches!(
            PapPacket::parse(&[0x01, 0x01, 0x00, 0x06, 0x01, b'a']),
            Err(Error::Truncated { .. })
        ));
        // Msg-Length runs past Length.
        assert!(matches!(
            PapPacket::parse(&[0x03, 0x01, 0x00, 0x06, 0x05, b'a', b'b', b'c']),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            PapPacket::parse(&[0x04, 0x01, 0x00, 0x04]),
            Err(Error::Unsupported { .. })
        ));
        let long = PapPacket {
            identifier: 0,
            body: PapBody::AuthenticateRequest {
                peer_id: vec![0; 256],
                password: vec![],
            },
        };
        assert!(matches!(
            long.emit(&mut [0u8; 300]),
            Err(Error::Malformed { .. })
        ));
    }

    pub(crate) fn pap() -> impl Strategy<Value = PapPacket> {
        let body = prop_oneof![
            (bytes(40), bytes(40))
                .prop_map(|(peer_id, password)| PapBody::AuthenticateRequest { peer_id, password }),
            bytes(40).prop_map(|message| PapBody::AuthenticateAck { message }),
            bytes(40).prop_map(|message| PapBody::AuthenticateNak { message }),
        ];
        (any::<u8>(), body).prop_map(|(identifier, body)| PapPacket { identifier, body })
    }

    proptest! {
        #[test]
        fn pap_round_trip(p in pap()) {
            let mut buf = vec![0u8; p.emit_len() + 2];
            let n = p.emit(&mut buf).expect("valid repr");
            prop_assert_eq!(n, p.emit_len());
            prop_assert_eq!(PapPacket::parse(&buf).expect("parses"), p);
        }

        #[test]
        fn pap_parse_never_panics(b in bytes(64)) {
            let _ = PapPacket::parse(&b);
        }

        #[test]
        fn pap_parse_never_panics_framed(code in 1u8..=3, id in any::<u8>(), d in bytes(60)) {
            let mut b = vec![code, id, 0, (d.len() + 4) as u8];
            b.extend_from_slice(&d);
            let _ = PapPacket::parse(&b);
        }
    }
}
