//! The Challenge-Handshake Authentication Protocol (RFC 1994 §4), protocol 0xc223.
//!
//! ```text
//! Challenge and Response (RFC 1994 §4.1):
//! |     Code      |  Identifier   |            Length             |
//! |  Value-Size   |  Value ...
//! |  Name ...
//! Success and Failure (RFC 1994 §4.2):
//! |     Code      |  Identifier   |            Length             |
//! |  Message  ...
//! ```

use md5::{Digest, Md5};

use super::cp::{CpPacket, HEADER_LEN};
use crate::error::{check_room, Error, Result};

/// CHAP Codes (RFC 1994 §4).
pub mod code {
    /// Challenge.
    pub const CHALLENGE: u8 = 1;
    /// Response.
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;
}

/// The length of an MD5 CHAP Response Value (RFC 1994 §4.1).
pub const MD5_VALUE_LEN: usize = 16;

/// The code-specific content of a CHAP packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ChapBody {
    /// 1: the authenticator's challenge Value and its Name (RFC 1994 §4.1).
    Challenge {
        #[serde(serialize_with = "super::ser_hex")]
        value: Vec<u8>,
        #[serde(serialize_with = "super::ser_text")]
        name: Vec<u8>,
    },
    /// 2: the peer's response Value (for MD5, [`chap_md5_response`]) and its Name
    /// (RFC 1994 §4.1).
    Response {
        #[serde(serialize_with = "super::ser_hex")]
        value: Vec<u8>,
        #[serde(serialize_with = "super::ser_text")]
        name: Vec<u8>,
    },
    /// 3 (RFC 1994 §4.2).
    Success {
        #[serde(serialize_with = "super::ser_text")]
        message: Vec<u8>,
    },
    /// 4 (RFC 1994 §4.2).
    Failure {
        #[serde(serialize_with = "super::ser_text")]
        message: Vec<u8>,
    },
}

/// An owned CHAP packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChapPacket {
    /// Identifier: a Response copies the Challenge's, and Success/Failure the Response's
    /// (RFC 1994 §4.1, §4.2).
    pub identifier: u8,
    /// Code and Data.
    pub body: ChapBody,
}

impl ChapPacket {
    /// Parses a CHAP packet starting at its Code. Octets outside Length are padding
    /// (RFC 1994 §4). A Value-Size that runs past Length is [`Error::Truncated`]; codes other
    /// than 1-4 are [`Error::Unsupported`] (RFC 1994 §4: silently discarded).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let p = CpPacket::new_checked(buf)?;
        let data = p.data();
        let value_name = |data: &[u8]| -> Result<(Vec<u8>, Vec<u8>)> {
            let (size, rest) = match data {
                [size, rest @ ..] => (usize::from(*size), rest),
                [] => {
                    return Err(Error::Truncated {
                        what: "CHAP Value-Size",
                        need: 1,
                        have: 0,
                    })
                }
            };
            if rest.len() < size {
                return Err(Error::Truncated {
                    what: "CHAP Value",
                    need: size + 1,
                    have: data.len(),
                });
            }
            let (value, name) = rest.split_at(size);
            Ok((value.to_vec(), name.to_vec()))
        };
        let body = match p.code() {
            code::CHALLENGE => {
                let (value, name) = value_name(data)?;
                ChapBody::Challenge { value, name }
            }
            code::RESPONSE => {
                let (value, name) = value_name(data)?;
                ChapBody::Response { value, name }
            }
            code::SUCCESS => ChapBody::Success {
                message: data.to_vec(),
            },
            code::FAILURE => ChapBody::Failure {
                message: data.to_vec(),
            },
            c => {
                return Err(Error::Unsupported {
                    what: "CHAP code",
                    value: u32::from(c),
                })
            }
        };
        Ok(ChapPacket {
            identifier: p.identifier(),
            body,
        })
    }

    /// The Code this packet is sent with.
    pub fn code(&self) -> u8 {
        match self.body {
            ChapBody::Challenge { .. } => code::CHALLENGE,
            ChapBody::Response { .. } => code::RESPONSE,
            ChapBody::Success { .. } => code::SUCCESS,
            ChapBody::Failure { .. } => code::FAILURE,
        }
    }

    /// The length of the emitted packet (its Length field).
    pub fn emit_len(&self) -> usize {
        HEADER_LEN
            + match &self.body {
                ChapBody::Challenge { value, name } | ChapBody::Response { value, name } => {
                    1 + value.len() + name.len()
                }
                ChapBody::Success { message } | ChapBody::Failure { message } => message.len(),
            }
    }

    /// Emits the packet into the front of `buf`; returns its length. A Value longer than 255
    /// bytes or a packet longer than the 16-bit Length field is refused.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.emit_len();
        let len16 = u16::try_from(len).map_err(|_| Error::Malformed {
            what: "CHAP packet",
            why: "longer than the 16-bit Length field",
        })?;
        check_room("CHAP packet", buf, len)?;
        let mut p = CpPacket::new_unchecked(&mut buf[..len]);
        p.set_code(self.code());
        p.set_identifier(self.identifier);
        p.set_length(len16);
        let out = p.data_mut();
        match &self.body {
            ChapBody::Challenge { value, name } | ChapBody::Response { value, name } => {
                out[0] = u8::try_from(value.len()).map_err(|_| Error::Malformed {
                    what: "CHAP Value",
                    why: "longer than 255 bytes",
                })?;
                out[1..=value.len()].copy_from_slice(value);
                out[1 + value.len()..].copy_from_slice(name);
            }
            ChapBody::Success { message } | ChapBody::Failure { message } => {
                out.copy_from_slice(message);
            }
        }
        Ok(len)
    }
}

/// The CHAP-MD5 Response Value (RFC 1994 §4.1, algorithm 5 in the LCP Authentication-Protocol
/// option, RFC 1994 §3): "the one-way hash function ... over a stream of octets consisting of
/// the Identifier, followed by (concatenated with) the "secret", followed by (concatenated
/// with) the Challenge Value", i.e. `MD5(Identifier || secret || challenge)`.
///
/// `identifier` is the Identifier of the Challenge packet (which the Response copies),
/// `secret` the shared secret for the peer's Name, and `challenge` the Challenge's Value field
/// (not the whole packet). The authenticator computes the same value and compares it with the
/// Response's Value (see [`chap_md5_verify`]).
pub fn chap_md5_response(identifier: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([identifier]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// Whether a Response Value is the expected [`chap_md5_response`]; compares in constant time
/// ([`crate::crypto::ct_eq`]) so that the time taken does not reveal the first wrong byte.
pub fn chap_md5_verify(identifier: u8, secret: &[u8], challenge: &[u8], response: &[u8]) -> bool {
    crate::crypto::ct_eq(response, &chap_md5_response(identifier, secret, challenge))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ppp::cp::tests::bytes;
    use proptest::prelude::*;

    /// A Challenge with Identifier 1, Value 00..0f and Name "lns".
    const CHALLENGE: [u8; 24] = [
        0x01, 0x01, 0x00, 0x18, // Challenge, id 1, length 24
        0x10, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
        0x0e, 0x0f, // Value-Size 16, Value
        b'l', b'n', b's', // Name
    ];

    /// The Response for secret "secret" from user "bob". The Value was computed independently:
    /// `python3 -c 'import hashlib; print(hashlib.md5(bytes([1])+b"secret"+bytes(range(16))).hexdigest())'`
    /// = 740e86463bda3a4d7017d6e0fba0699d.
    const RESPONSE: [u8; 24] = [
        0x02, 0x01, 0x00, 0x18, // Response, id 1, length 24
        0x10, 0x74, 0x0e, 0x86, 0x46, 0x3b, 0xda, 0x3a, 0x4d, 0x70, 0x17, 0xd6, 0xe0, 0xfb, 0xa0,
        0x69, 0x9d, // Value-Size 16, Value
        b'b', b'o', b'b', // Name
    ];

    #[test]
    fn challenge_response_pair() {
        let c = ChapPacket::parse(&CHALLENGE).expect("valid");
        let ChapBody::Challenge { value, name } = &c.body else {
            panic!("not a Challenge: {c:?}");
        };
        assert_eq!(name, b"lns");
        let digest = chap_md5_response(c.identifier, b"secret", value);
        assert_eq!(
            digest,
            [
                0x74, 0x0e, 0x86, 0x46, 0x3b, 0xda, 0x3a, 0x4d, 0x70, 0x17, 0xd6, 0xe0, 0xfb, 0xa0,
                0x69, 0x9d
            ]
        );
        let r = ChapPacket {
            identifier: c.identifier,
            body: ChapBody::Response {
                value: digest.to_vec(),
                name: b"bob".to_vec(),
            },
        };
        let mut out = [0u8; 24];
        assert_eq!(r.emit(&mut out).expect("fits"), 24);
        assert_eq!(out, RESPONSE);
        assert_eq!(ChapPacket::parse(&RESPONSE).expect("valid"), r);
        assert!(chap_md5_verify(1, b"secret", value, &digest));
        assert!(!chap_md5_verify(2, b"secret", value, &digest));
        assert!(!chap_md5_verify(1, b"secreT", value, &digest));
        assert!(!chap_md5_verify(1, b"secret", value, &digest[..15]));
        let mut out = [0u8; 24];
        c.emit(&mut out).expect("fits");
        assert_eq!(out, CHALLENGE);
    }

    #[test]
    fn md5_other_vectors() {
        // python3: hashlib.md5(bytes([0x2a])+b"s3cr3t"+bytes.fromhex("0123456789abcdeffedcba9876543210"))
        assert_eq!(
            chap_md5_response(
                0x2a,
                b"s3cr3t",
                &[
                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76,
                    0x54, 0x32, 0x10
                ]
            ),
            [
                0x1e, 0x02, 0x0f, 0xe9, 0xe5, 0x2f, 0x0a, 0x45, 0x23, 0x3a, 0x7b, 0x2a, 0xd5, 0x56,
                0xcf, 0xc6
            ]
        );
        // MD5 of the single byte 0x00.
        assert_eq!(
            chap_md5_response(0, b"", b""),
            [
                0x93, 0xb8, 0x85, 0xad, 0xfe, 0x0d, 0xa0, 0x89, 0xcd, 0xf6, 0x34, 0x90, 0x4f, 0xd5,
                0x9f, 0x71
            ]
        );
    }

    #[test]
    fn success_and_failure() {
        let b = [
            0x03, 0x01, 0x00, 0x0c, b'W', b'e', b'l', b'c', b'o', b'm', b'e', b'!', 0,
        ];
        let p = ChapPacket::parse(&b).expect("valid");
        assert_eq!(
            p.body,
            ChapBody::Success {
                message: b"Welcome!".to_vec()
            }
        );
        let f = ChapPacket {
            identifier: 9,
            body: ChapBody::Failure { message: vec![] },
        };
        let mut out = [0u8; 4];
        f.emit(&mut out).expect("fits");
        assert_eq!(out, [0x04, 0x09, 0x00, 0x04]);
        assert_eq!(
            serde_json::to_string(&p).expect("serializes"),
            r#"{"identifier":1,"body":{"code":"success","message":"Welcome!"}}"#
        );
    }

    #[test]
    fn bad_lengths() {
        assert!(matches!(
            ChapPacket::parse(&[0x01, 0x01, 0x00, 0x04]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            ChapPacket::parse(&[0x02, 0x01, 0x00, 0x06, 0x10, 0xaa, 0xbb]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            ChapPacket::parse(&[0x05, 0x01, 0x00, 0x04]),
            Err(Error::Unsupported { .. })
        ));
        let long = ChapPacket {
            identifier: 0,
            body: ChapBody::Challenge {
                value: vec![0; 256],
                name: vec![],
            },
        };
        assert!(matches!(
            long.emit(&mut [0u8; 300]),
            Err(Error::Malformed { .. })
        ));
    }

    pub(crate) fn chap() -> impl Strategy<Value = ChapPacket> {
        let body = prop_oneof![
            (bytes(40), bytes(40)).prop_map(|(value, name)| ChapBody::Challenge { value, name }),
            (bytes(40), bytes(40)).prop_map(|(value, name)| ChapBody::Response { value, name }),
            bytes(40).prop_map(|message| ChapBody::Success { message }),
            bytes(40).prop_map(|message| ChapBody::Failure { message }),
        ];
        (any::<u8>(), body).prop_map(|(identifier, body)| ChapPacket { identifier, body })
    }

    proptest! {
        #[test]
        fn chap_round_trip(p in chap()) {
            let mut buf = vec![0u8; p.emit_len() + 2];
            let n = p.emit(&mut buf).expect("valid repr");
            prop_assert_eq!(n, p.emit_len());
            prop_assert_eq!(ChapPacket::parse(&buf).expect("parses"), p);
        }

        #[test]
        fn chap_parse_never_panics(b in bytes(64)) {
            let _ = ChapPacket::parse(&b);
        }

        #[test]
        fn chap_parse_never_panics_framed(code in 1u8..=4, id in any::<u8>(), d in bytes(60)) {
            let mut b = vec![code, id, 0, (d.len() + 4) as u8];
            b.extend_from_slice(&d);
            let _ = ChapPacket::parse(&b);
        }

        #[test]
        fn md5_verify_accepts_its_own_response(id in any::<u8>(), s in bytes(32), c in bytes(32)) {
            prop_assert!(chap_md5_verify(id, &s, &c, &chap_md5_response(id, &s, &c)));
        }
    }
}
