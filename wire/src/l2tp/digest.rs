//! L2TPv3 Control Message Authentication: the Message Digest AVP (RFC 3931 §4.3, §5.4.1).
//!
//! ```text
//! shared_key     = HMAC_MD5(shared_secret, 2)
//! Message Digest = HMAC_MD5(shared_key, local_nonce + remote_nonce + control_message)
//! SCCRQ          = HMAC_MD5(shared_key, control_message)
//! ```
//! `control_message` is the whole message from the control header on (after the zero Session ID
//! over IP), with the digest bytes of every Message Digest AVP set to zero. The Message Digest AVP
//! sits right after the Message Type AVP (offset 20), a second one right after it. Only Digest
//! Type 0 (HMAC-MD5) is computed here; a message whose digests are all of another type does not
//! verify.

use super::avp::{digest, AvpType, HEADER_LEN};
use super::header::ControlHeader;
use crate::crypto::{ct_eq, hmac_md5_parts};
use crate::error::{Error, Result};

/// Length of a Message Digest AVP carrying an HMAC-MD5 digest: header, type octet, 16 octets.
pub const MD5_AVP_LEN: usize = HEADER_LEN + 1 + 16;

/// The key digests are computed with: `HMAC_MD5(shared_secret, 2)` (RFC 3931 §5.4.1).
pub fn shared_key(shared_secret: &[u8]) -> [u8; 16] {
    hmac_md5_parts(shared_secret, &[&[2]])
}

/// The nonces that enter a digest: none for an SCCRQ, else (the sender's nonce, the
/// receiver's nonce) — "local + remote" from the sender's point of view.
#[derive(Debug, Clone, Copy)]
pub enum Nonces<'a> {
    /// The SCCRQ rule: no nonce in the calculation.
    Sccrq,
    /// (sender's nonce, receiver's nonce).
    Pair(&'a [u8], &'a [u8]),
}

/// The byte ranges (type octet, digest) of the Message Digest AVPs right after the Message Type
/// AVP, at most two.
fn digest_avps(msg: &[u8]) -> Vec<(usize, core::ops::Range<usize>)> {
    let mut out = Vec::new();
    let len = |at: usize| -> Option<usize> {
        let w = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
        Some(usize::from(w & 0x03ff))
    };
    let attr = |at: usize| -> Option<(u16, u16)> {
        Some((
            u16::from_be_bytes([*msg.get(at + 2)?, *msg.get(at + 3)?]),
            u16::from_be_bytes([*msg.get(at + 4)?, *msg.get(at + 5)?]),
        ))
    };
    let Some(first) = len(ControlHeader::LEN) else {
        return out;
    };
    let mut at = ControlHeader::LEN + first;
    for _ in 0..2 {
        match (len(at), attr(at)) {
            (Some(l), Some((0, t)))
                if t == AvpType::MessageDigest.value() && l > HEADER_LEN && at + l <= msg.len() =>
            {
                out.push((at + HEADER_LEN, at + HEADER_LEN + 1..at + l));
                at += l;
            }
            _ => break,
        }
    }
    out
}

fn compute(key: &[u8; 16], nonces: Nonces<'_>, zeroed: &[u8]) -> [u8; 16] {
    match nonces {
        Nonces::Pair(a, b) => hmac_md5_parts(key, &[a, b, zeroed]),
        Nonces::Sccrq => hmac_md5_parts(key, &[zeroed]),
    }
}

/// Writes the HMAC-MD5 digest into the Message Digest AVP(s) of `msg` (which must be there,
/// with Digest Type 0, right after the Message Type AVP). `nonces` are (ours, the peer's).
pub fn sign(msg: &mut [u8], key: &[u8; 16], nonces: Nonces<'_>) -> Result<()> {
    let avps = digest_avps(msg);
    if avps.is_empty() {
        return Err(Error::Malformed {
            what: "Message Digest AVP",
            why: "not right after the Message Type AVP",
        });
    }
    for (t, r) in &avps {
        if msg[*t] != digest::HMAC_MD5 || r.len() != 16 {
            return Err(Error::Unsupported {
                what: "Message Digest type",
                value: u32::from(msg[*t]),
            });
        }
        msg[r.clone()].fill(0);
    }
    let d = compute(key, nonces, msg);
    for (_, r) in avps {
        msg[r].copy_from_slice(&d);
    }
    Ok(())
}

/// Whether one of the (at most two) Message Digest AVPs of `msg` carries the HMAC-MD5 digest
/// under `key`. `nonces` are (the sender's, ours) — the sender's local nonce first.
pub fn verify(msg: &[u8], key: &[u8; 16], nonces: Nonces<'_>) -> bool {
    let avps = digest_avps(msg);
    if avps.is_empty() {
        return false;
    }
    let mut zeroed = msg.to_vec();
    for (_, r) in &avps {
        zeroed[r.clone()].fill(0);
    }
    let want = compute(key, nonces, &zeroed);
    avps.iter()
        .any(|(t, r)| msg[*t] == digest::HMAC_MD5 && ct_eq(&msg[r.clone()], &want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2tp::avp::Avp;
    use crate::l2tp::header::Version;
    use crate::l2tp::message::{ControlMessage, MessageType};

    fn hello_with_digest() -> Vec<u8> {
        let h = ControlHeader {
            version: Version::V3,
            tunnel_id: 0x1234_5678,
            session_id: 0,
            ns: 3,
            nr: 7,
        };
        ControlMessage::build(
            h,
            MessageType::Hello,
            vec![Avp::MessageDigest {
                digest_type: digest::HMAC_MD5,
                digest: vec![0; 16],
            }],
        )
        .to_bytes(None)
        .expect("emits")
    }

    /// Golden values, computed independently (Python hmac/hashlib) over the same bytes.
    #[test]
    fn golden_digests() {
        let key = shared_key(b"secret");
        assert_eq!(
            key,
            [
                0x21, 0xdc, 0x45, 0x71, 0x45, 0xad, 0x58, 0xf4, 0xb1, 0x49, 0x7a, 0xe2, 0x7d, 0x2a,
                0x87, 0xb4
            ]
        );
        let mut m = hello_with_digest();
        sign(&mut m, &key, Nonces::Pair(b"AAAA", b"BBBB")).expect("signs");
        assert_eq!(
            &m[27..43],
            &[
                0x12, 0xba, 0xaa, 0x30, 0xd8, 0x98, 0xd8, 0x4f, 0x9c, 0xc9, 0x94, 0x77, 0x67, 0x7b,
                0x76, 0x84
            ]
        );
        let mut q = hello_with_digest();
        sign(&mut q, &key, Nonces::Sccrq).expect("signs");
        assert_eq!(
            &q[27..43],
            &[
                0x42, 0xc9, 0x74, 0x9c, 0x7d, 0x0f, 0xa1, 0x9a, 0x6a, 0x3c, 0x3c, 0xe7, 0x39, 0x04,
                0x6a, 0x34
            ]
        );
    }

    #[test]
    fn verify_reverses_nonces_and_detects_tampering() {
        let key = shared_key(b"secret");
        let mut m = hello_with_digest();
        sign(&mut m, &key, Nonces::Pair(b"local", b"remote")).expect("signs");
        assert!(verify(&m, &key, Nonces::Pair(b"local", b"remote")));
        assert!(!verify(&m, &key, Nonces::Pair(b"remote", b"local")));
        assert!(!verify(
            &m,
            &shared_key(b"other"),
            Nonces::Pair(b"local", b"remote")
        ));
        let mut t = m.clone();
        t[10] ^= 1; // Nr
        assert!(!verify(&t, &key, Nonces::Pair(b"local", b"remote")));
        let mut no = hello_with_digest();
        no.truncate(20);
        assert!(!verify(&no, &key, Nonces::Sccrq));
        assert!(sign(&mut no, &key, Nonces::Sccrq).is_err());
    }
}
