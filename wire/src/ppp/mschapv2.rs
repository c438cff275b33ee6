//! MS-CHAP-V2 (RFC 2759): CHAP with Algorithm 0x81, its Response and Success formats and the
//! cryptography of RFC 2759 §8, from well-kept crates (`md4`, `sha1`, `des`).
//!
//! ```text
//! Response Value (49 octets, RFC 2759 §4):
//!   Peer-Challenge (16) | Reserved, zero (8) | NT-Response (24) | Flags, zero (1)
//! Success Message (RFC 2759 §5):  "S=<40 hex digits of the Authenticator Response> M=<text>"
//! Failure Message (RFC 2759 §6):  "E=691 R=0 C=<32 hex digits> V=3 M=<text>"
//! ```

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use md4::{Digest, Md4};
use sha1::Sha1;

use crate::crypto::ct_eq;

/// The CHAP Algorithm byte for MS-CHAP-V2 (RFC 2759 §2).
pub const CHAP_ALGORITHM_MSCHAPV2: u8 = 0x81;
/// The length of the Authenticator Challenge a Challenge carries (RFC 2759 §3).
pub const CHALLENGE_LEN: usize = 16;
/// The length of a Response Value (RFC 2759 §4).
pub const RESPONSE_LEN: usize = 49;

/// A Response Value, read (RFC 2759 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChapV2Response {
    /// Peer-Challenge.
    pub peer_challenge: [u8; 16],
    /// NT-Response.
    pub nt_response: [u8; 24],
}

impl MsChapV2Response {
    /// Reads a 49-octet Response Value; `None` for another length.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() != RESPONSE_LEN {
            return None;
        }
        Some(MsChapV2Response {
            peer_challenge: value[..16].try_into().ok()?,
            nt_response: value[24..48].try_into().ok()?,
        })
    }

    /// The 49-octet Response Value.
    pub fn value(&self) -> [u8; RESPONSE_LEN] {
        let mut v = [0u8; RESPONSE_LEN];
        v[..16].copy_from_slice(&self.peer_challenge);
        v[24..48].copy_from_slice(&self.nt_response);
        v
    }
}

/// The user name as the hashes take it: without a leading "DOMAIN\" (RFC 2759 §4).
fn bare_user(user: &[u8]) -> &[u8] {
    match user.iter().rposition(|&b| b == b'\\') {
        Some(i) => &user[i + 1..],
        None => user,
    }
}

/// NtPasswordHash (RFC 2759 §8.3): MD4 of the password in UTF-16LE (the password is taken
/// as UTF-8; bytes that are not are taken one per code unit).
pub fn nt_password_hash(password: &[u8]) -> [u8; 16] {
    let mut h = Md4::new();
    match core::str::from_utf8(password) {
        Ok(s) => {
            for u in s.encode_utf16() {
                h.update(u.to_le_bytes());
            }
        }
        Err(_) => {
            for b in password {
                h.update([*b, 0]);
            }
        }
    }
    h.finalize().into()
}

/// ChallengeHash (RFC 2759 §8.2): the first 8 octets of SHA-1(PeerChallenge |
/// AuthenticatorChallenge | UserName).
pub fn challenge_hash(peer: &[u8; 16], auth: &[u8; 16], user: &[u8]) -> [u8; 8] {
    let d = Sha1::new()
        .chain_update(peer)
        .chain_update(auth)
        .chain_update(bare_user(user))
        .finalize();
    let mut c = [0u8; 8];
    c.copy_from_slice(&d[..8]);
    c
}

/// A 56-bit key spread over 8 octets, the low bit of each (parity) left zero: DES ignores it.
fn des_key(k: &[u8]) -> [u8; 8] {
    let v = k.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (((v >> (49 - 7 * i)) & 0x7f) as u8) << 1;
    }
    out
}

/// ChallengeResponse (RFC 2759 §8.5): the challenge DES-encrypted under the three 7-octet
/// thirds of the zero-padded password hash.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let key = des_key(&z[7 * i..7 * i + 7]);
        let Ok(c) = Des::new_from_slice(&key) else {
            unreachable!("a DES key is 8 octets")
        };
        let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(challenge);
        c.encrypt_block(&mut block);
        out[8 * i..8 * i + 8].copy_from_slice(&block);
    }
    out
}

/// GenerateNTResponse (RFC 2759 §8.1).
pub fn nt_response(auth: &[u8; 16], peer: &[u8; 16], user: &[u8], password: &[u8]) -> [u8; 24] {
    challenge_response(
        &challenge_hash(peer, auth, user),
        &nt_password_hash(password),
    )
}

/// Whether `got` is the NT-Response for `password` (constant time).
pub fn verify_nt_response(
    auth: &[u8; 16],
    peer: &[u8; 16],
    user: &[u8],
    password: &[u8],
    got: &[u8; 24],
) -> bool {
    ct_eq(&nt_response(auth, peer, user, password), got)
}

/// GenerateAuthenticatorResponse (RFC 2759 §8.7): "S=" and 40 upper-case hex digits.
pub fn authenticator_response(
    password: &[u8],
    nt_response: &[u8; 24],
    peer: &[u8; 16],
    auth: &[u8; 16],
    user: &[u8],
) -> String {
    const MAGIC1: &[u8] = b"Magic server to client signing constant";
    const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";
    let hash_hash: [u8; 16] = Md4::digest(nt_password_hash(password)).into();
    let d = Sha1::new()
        .chain_update(hash_hash)
        .chain_update(nt_response)
        .chain_update(MAGIC1)
        .finalize();
    let d = Sha1::new()
        .chain_update(d)
        .chain_update(challenge_hash(peer, auth, user))
        .chain_update(MAGIC2)
        .finalize();
    let mut s = String::from("S=");
    for b in d {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// The Success Message (RFC 2759 §5): the Authenticator Response and a text.
pub fn success_message(authenticator_response: &str, text: &str) -> Vec<u8> {
    format!("{authenticator_response} M={text}").into_bytes()
}

/// The Failure Message (RFC 2759 §6) for a wrong password (E=691), no retry, with the next
/// challenge `challenge` (hex) and version 3.
pub fn failure_message(challenge: &[u8; 16], text: &str) -> Vec<u8> {
    let mut c = String::new();
    for b in challenge {
        c.push_str(&format!("{b:02X}"));
    }
    format!("E=691 R=0 C={c} V=3 M={text}").into_bytes()
}

/// Whether a Success Message carries `expected` ("S=...") as its Authenticator Response
/// (RFC 2759 §5: the peer MUST check it; case-insensitive hex, constant time).
pub fn success_matches(message: &[u8], expected: &str) -> bool {
    message.len() >= 42 && ct_eq(&message[..42].to_ascii_uppercase(), expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 2759 §9.2, every intermediate value.
    #[test]
    fn rfc2759_hash_example() {
        let user = b"User";
        let password = b"clientPass";
        let auth: [u8; 16] = hex("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
            .try_into()
            .expect("16");
        let peer: [u8; 16] = hex("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
            .try_into()
            .expect("16");
        assert_eq!(
            challenge_hash(&peer, &auth, user).to_vec(),
            hex("D0 2E 43 86 BC E9 12 26")
        );
        assert_eq!(
            nt_password_hash(password).to_vec(),
            hex("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
        );
        let nt = nt_response(&auth, &peer, user, password);
        assert_eq!(
            nt.to_vec(),
            hex("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
        );
        assert!(verify_nt_response(&auth, &peer, user, password, &nt));
        assert!(!verify_nt_response(&auth, &peer, user, b"clientPasS", &nt));
        let s = authenticator_response(password, &nt, &peer, &auth, user);
        assert_eq!(s, "S=407A5589115FD0D6209F510FE9C04566932CDA56");
        assert!(success_matches(&success_message(&s, "hi"), &s));
        assert!(success_matches(
            b"S=407a5589115fd0d6209f510fe9c04566932cda56 M=x",
            &s
        ));
        assert!(!success_matches(b"S=407A", &s));
        // A domain prefix is not hashed.
        assert_eq!(
            nt_response(&auth, &peer, b"CORP\\User", password),
            nt,
            "RFC 2759 §4"
        );
        let r = MsChapV2Response {
            peer_challenge: peer,
            nt_response: nt,
        };
        assert_eq!(MsChapV2Response::parse(&r.value()), Some(r));
        assert_eq!(MsChapV2Response::parse(&r.value()[..48]), None);
    }
}
