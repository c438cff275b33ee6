//! The shared-secret cryptography of RADIUS: authenticators, User-Password hiding,
//! Message-Authenticator and the CHAP attributes.
//!
//! - Response Authenticator (RFC 2865 §3): `MD5(Code | ID | Length | Request Authenticator |
//!   Attributes | Secret)`, the same for Accounting-Response (RFC 2866 §3) and CoA/Disconnect
//!   responses (RFC 5176 §2.3).
//! - Accounting-Request and CoA/Disconnect-Request Authenticator (RFC 2866 §3, RFC 5176 §2.3):
//!   the same MD5 with sixteen zero octets in place of the Request Authenticator.
//! - User-Password (RFC 2865 §5.2): the password padded with NULs to a multiple of 16, XORed
//!   block by block with `MD5(Secret | previous block)`, the first "previous block" being the
//!   Request Authenticator.
//! - Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2): HMAC-MD5 under the secret over the
//!   whole packet with the Message-Authenticator value zeroed; in a response the Authenticator
//!   field holds the Request Authenticator while it is computed. Required on every response
//!   the LNS accepts (the CVE-2024-3596 "Blast-RADIUS" mitigation): without it an attacker in
//!   the path can forge an Access-Accept by an MD5 chosen-prefix collision on the Response
//!   Authenticator.

use md5::{Digest, Md5};

use super::attr;
use super::packet::{RadiusPacket, HEADER_LEN};
use crate::crypto::{ct_eq, hmac_md5};
use crate::error::{Error, Result};

/// The length of a Message-Authenticator value (an HMAC-MD5).
pub const MESSAGE_AUTHENTICATOR_LEN: usize = 16;
/// The longest User-Password (RFC 2865 §5.2: 128 octets).
pub const MAX_PASSWORD_LEN: usize = 128;

/// `MD5(packet[0..4] | authenticator | packet[20..] | secret)`: the Response Authenticator
/// when `authenticator` is the Request's, the Accounting-/CoA-Request Authenticator when it is
/// zero. `packet` is the packet within its Length.
pub fn packet_md5(packet: &[u8], authenticator: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(&packet[..4.min(packet.len())]);
    h.update(authenticator);
    h.update(packet.get(HEADER_LEN..).unwrap_or(&[]));
    h.update(secret);
    h.finalize().into()
}

/// Whether the Response Authenticator of `response` (within its Length) is right for the
/// request that carried `request_auth` (RFC 2865 §3), in constant time.
pub fn verify_response(response: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> bool {
    response.len() >= HEADER_LEN
        && ct_eq(
            &packet_md5(response, request_auth, secret),
            &response[4..HEADER_LEN],
        )
}

/// Whether the Request Authenticator of an Accounting-, CoA- or Disconnect-Request is right
/// (RFC 2866 §3, RFC 5176 §2.3).
pub fn verify_accounting_request(request: &[u8], secret: &[u8]) -> bool {
    request.len() >= HEADER_LEN
        && ct_eq(
            &packet_md5(request, &[0; 16], secret),
            &request[4..HEADER_LEN],
        )
}

/// Writes the Authenticator of an emitted response (Request Authenticator of the request it
/// answers) or, with `request_auth` zero, of an Accounting/CoA/Disconnect-Request. Sign the
/// Message-Authenticator first: this covers it.
pub fn sign_authenticator(packet: &mut [u8], request_auth: &[u8; 16], secret: &[u8]) {
    let a = packet_md5(packet, request_auth, secret);
    packet[4..HEADER_LEN].copy_from_slice(&a);
}

/// Hides a User-Password (RFC 2865 §5.2). A password longer than 128 octets is refused.
pub fn hide_password(password: &[u8], secret: &[u8], request_auth: &[u8; 16]) -> Result<Vec<u8>> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::Malformed {
            what: "User-Password",
            why: "longer than 128 octets",
        });
    }
    let blocks = password.len().div_ceil(16).max(1);
    let mut out = vec![0u8; blocks * 16];
    out[..password.len()].copy_from_slice(password);
    let mut prev: [u8; 16] = *request_auth;
    for chunk in out.chunks_mut(16) {
        let b: [u8; 16] = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize()
            .into();
        for (c, k) in chunk.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(chunk);
    }
    Ok(out)
}

/// Recovers a hidden User-Password (RFC 2865 §5.2), trailing NULs removed. A value that is not
/// a non-empty multiple of 16 octets up to 128 is refused.
pub fn unhide_password(hidden: &[u8], secret: &[u8], request_auth: &[u8; 16]) -> Result<Vec<u8>> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_PASSWORD_LEN {
        return Err(Error::Malformed {
            what: "User-Password",
            why: "not a multiple of 16 octets up to 128",
        });
    }
    let mut out = hidden.to_vec();
    let mut prev: [u8; 16] = *request_auth;
    for (chunk, h) in out.chunks_mut(16).zip(hidden.chunks(16)) {
        let b: [u8; 16] = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize()
            .into();
        for (c, k) in chunk.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(h);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// The Message-Authenticator of `packet` (within its Length), as it should read: HMAC-MD5
/// with its own value zeroed and, for a response, `request_auth` in the Authenticator field
/// (RFC 3579 §3.2). `None` when the packet has no (16-octet) Message-Authenticator or its
/// framing is broken.
pub fn message_authenticator(
    packet: &[u8],
    request_auth: Option<&[u8; 16]>,
    secret: &[u8],
) -> Option<[u8; 16]> {
    let mut copy = RadiusPacket::new_checked(packet.to_vec()).ok()?;
    if let Some(ra) = request_auth {
        copy.set_authenticator(ra);
    }
    let ma = copy.find_mut(attr::MESSAGE_AUTHENTICATOR)?;
    if ma.len() != MESSAGE_AUTHENTICATOR_LEN {
        return None;
    }
    ma.fill(0);
    Some(hmac_md5(secret, copy.bytes()))
}

/// Fills in the Message-Authenticator of an emitted packet (it must carry one, zeroed or
/// not): for a request with `request_auth` `None` (its own Authenticator is covered), for a
/// response with the Request Authenticator, before [`sign_authenticator`].
pub fn sign_message_authenticator(
    packet: &mut [u8],
    request_auth: Option<&[u8; 16]>,
    secret: &[u8],
) -> Result<()> {
    let mac = message_authenticator(packet, request_auth, secret).ok_or(Error::Malformed {
        what: "RADIUS packet",
        why: "no 16-octet Message-Authenticator to sign",
    })?;
    let mut p = RadiusPacket::new_unchecked(packet);
    if let Some(v) = p.find_mut(attr::MESSAGE_AUTHENTICATOR) {
        v.copy_from_slice(&mac);
    }
    Ok(())
}

/// Why a packet's Message-Authenticator was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageAuthenticatorError {
    /// The packet carries none (RFC 3579 §3.2 and the Blast-RADIUS mitigation: required).
    #[error("no Message-Authenticator")]
    Missing,
    /// More than one, or not 16 octets.
    #[error("malformed Message-Authenticator")]
    Malformed,
    /// The HMAC does not match.
    #[error("wrong Message-Authenticator")]
    Wrong,
}

/// Checks the Message-Authenticator of a received packet (within its Length): exactly one,
/// 16 octets, matching (constant time).
pub fn verify_message_authenticator(
    packet: &[u8],
    request_auth: Option<&[u8; 16]>,
    secret: &[u8],
) -> core::result::Result<(), MessageAuthenticatorError> {
    let Ok(view) = RadiusPacket::new_checked(packet) else {
        return Err(MessageAuthenticatorError::Malformed);
    };
    let mut found = view
        .attributes()
        .map_while(|a| a.ok())
        .filter(|a| a.1 == attr::MESSAGE_AUTHENTICATOR);
    let Some((_, _, got)) = found.next() else {
        return Err(MessageAuthenticatorError::Missing);
    };
    if found.next().is_some() || got.len() != MESSAGE_AUTHENTICATOR_LEN {
        return Err(MessageAuthenticatorError::Malformed);
    }
    let want = message_authenticator(packet, request_auth, secret)
        .ok_or(MessageAuthenticatorError::Malformed)?;
    if ct_eq(&want, got) {
        Ok(())
    } else {
        Err(MessageAuthenticatorError::Wrong)
    }
}

/// The CHAP-Password value (RFC 2865 §5.3): the CHAP Identifier, then the 16-octet Response.
pub fn chap_password(identifier: u8, response: &[u8; 16]) -> [u8; 17] {
    let mut v = [0u8; 17];
    v[0] = identifier;
    v[1..].copy_from_slice(response);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::packet::{Attribute, Packet};
    use crate::radius::{attr, code};

    /// The shared secret of the RFC 2865 §7 examples (not printed in the RFC; recovered from
    /// the example's bytes and used by every implementation's tests).
    const SECRET: &[u8] = b"xyzzy5461";

    const REQUEST: [u8; 56] = crate::radius::packet::tests::RFC2865_7_1_REQUEST;

    /// RFC 2865 §7.1, the Access-Accept.
    const ACCEPT: [u8; 38] = [
        0x02, 0x00, 0x00, 0x26, 0x86, 0xfe, 0x22, 0x0e, 0x76, 0x24, 0xba, 0x2a, 0x10, 0x05, 0xf6,
        0xbf, 0x9b, 0x55, 0xe0, 0xb2, 0x06, 0x06, 0x00, 0x00, 0x00, 0x01, 0x0f, 0x06, 0x00, 0x00,
        0x00, 0x00, 0x0e, 0x06, 0xc0, 0xa8, 0x01, 0x03,
    ];

    fn request_auth() -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&REQUEST[4..20]);
        a
    }

    #[test]
    fn rfc2865_example_password_and_response_authenticator() {
        let p = Packet::parse(&REQUEST).expect("parse");
        let hidden = p.get(attr::USER_PASSWORD).expect("password");
        assert_eq!(
            unhide_password(hidden, SECRET, &request_auth()).expect("unhide"),
            b"arctangent"
        );
        assert_eq!(
            hide_password(b"arctangent", SECRET, &request_auth()).expect("hide"),
            hidden
        );
        assert!(verify_response(&ACCEPT, &request_auth(), SECRET));
        assert!(!verify_response(&ACCEPT, &request_auth(), b"xyzzy5462"));
        let mut other = request_auth();
        other[0] ^= 1;
        assert!(!verify_response(&ACCEPT, &other, SECRET));
        let mut resigned = ACCEPT;
        resigned[4..20].fill(0);
        sign_authenticator(&mut resigned, &request_auth(), SECRET);
        assert_eq!(resigned, ACCEPT);
    }

    #[test]
    fn long_passwords_chain_blocks() {
        let ra = [0x5a; 16];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 100, 128] {
            let pw: Vec<u8> = (1..=len).map(|i| i as u8).collect();
            let h = hide_password(&pw, b"s", &ra).expect("hide");
            assert_eq!(h.len(), len.div_ceil(16).max(1) * 16);
            assert_eq!(unhide_password(&h, b"s", &ra).expect("unhide"), pw);
        }
        assert!(hide_password(&[1; 129], b"s", &ra).is_err());
        assert!(unhide_password(&[1; 15], b"s", &ra).is_err());
    }

    fn signed_accept(request_auth: &[u8; 16], secret: &[u8]) -> Vec<u8> {
        let p = Packet {
            code: code::ACCESS_ACCEPT,
            identifier: 7,
            authenticator: [0; 16],
            attributes: vec![
                Attribute::integer(attr::SESSION_TIMEOUT, 60),
                Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]),
            ],
        };
        let mut b = p.to_vec().expect("emit");
        sign_message_authenticator(&mut b, Some(request_auth), secret).expect("ma");
        sign_authenticator(&mut b, request_auth, secret);
        b
    }

    #[test]
    fn message_authenticator_signs_and_verifies() {
        let ra = [3; 16];
        let b = signed_accept(&ra, b"secret");
        assert!(verify_response(&b, &ra, b"secret"));
        assert_eq!(
            verify_message_authenticator(&b, Some(&ra), b"secret"),
            Ok(())
        );
        assert_eq!(
            verify_message_authenticator(&b, Some(&ra), b"other"),
            Err(MessageAuthenticatorError::Wrong)
        );
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            verify_message_authenticator(&flipped, Some(&ra), b"secret"),
            Err(MessageAuthenticatorError::Wrong)
        );
        // Without one.
        let mut bare = Packet::parse(&b).expect("parse");
        bare.attributes.pop();
        let bare = bare.to_vec().expect("emit");
        assert_eq!(
            verify_message_authenticator(&bare, Some(&ra), b"secret"),
            Err(MessageAuthenticatorError::Missing)
        );
        // Two of them.
        let mut two = Packet::parse(&b).expect("parse");
        two.attributes
            .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, [0; 16]));
        let two = two.to_vec().expect("emit");
        assert_eq!(
            verify_message_authenticator(&two, Some(&ra), b"secret"),
            Err(MessageAuthenticatorError::Malformed)
        );
    }

    /// An Access-Request with Message-Authenticator as radclient (FreeRADIUS 3.2.1) sent it:
    /// `echo 'User-Name = "bob", User-Password = "hello", Message-Authenticator = 0x00' |
    /// radclient -x 127.0.0.1:18120 auth testing123`, and FreeRADIUS's Access-Accept to it
    /// (its post-auth adding `Message-Authenticator`, as `tests/tests/radius.rs` configures
    /// it), captured off loopback with tshark. Both HMACs, the Response Authenticator and the
    /// hidden password check out under our code.
    #[test]
    fn radclient_access_request_checks_out() {
        let b = hex(RADCLIENT_REQUEST);
        let p = Packet::parse(&b).expect("parse");
        let mut ra = [0; 16];
        ra.copy_from_slice(&b[4..20]);
        assert_eq!(
            verify_message_authenticator(&b, None, b"testing123"),
            Ok(())
        );
        assert_eq!(
            unhide_password(p.get(attr::USER_PASSWORD).expect("pw"), b"testing123", &ra)
                .expect("unhide"),
            b"hello"
        );
        let resp = hex(RADCLIENT_RESPONSE);
        assert!(verify_response(&resp, &ra, b"testing123"));
        assert_eq!(
            verify_message_authenticator(&resp, Some(&ra), b"testing123"),
            Ok(())
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// The UDP payloads of that capture, in hex.
    const RADCLIENT_REQUEST: &str = include_str!("testdata/radclient-request.hex");
    const RADCLIENT_RESPONSE: &str = include_str!("testdata/freeradius-accept.hex");

    proptest::proptest! {
        #[test]
        fn hide_unhide_round_trip(
            pw in proptest::collection::vec(1u8..=255, 0..=128),
            secret in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..32),
            ra in proptest::prelude::any::<[u8; 16]>(),
        ) {
            let h = hide_password(&pw, &secret, &ra).expect("hide");
            proptest::prop_assert_eq!(unhide_password(&h, &secret, &ra).expect("unhide"), pw);
        }
    }
}
