//! Tunnel authentication.
//!
//! - L2TPv2 (RFC 2661 §4.4.3, §5.1.1): a Challenge AVP in SCCRQ or SCCRP is answered with a
//!   Challenge Response AVP in SCCRP or SCCCN, computed CHAP-style (RFC 1994) with the Message
//!   Type of the response as the ID: `MD5(type octet + secret + challenge)`.
//! - L2TPv3 (RFC 3931 §4.3): the Message Digest of every message, see
//!   [`l2xdp_wire::l2tp::digest`]; the nonces travel in the Control Message Authentication
//!   Nonce AVP of SCCRQ and SCCRP.

use l2xdp_wire::ppp::chap_md5_response;

/// Length of our challenges and nonces.
pub const CHALLENGE_LEN: usize = 16;

/// The v2 Challenge Response sent in a message of type `message_type` (2 in SCCRP, 3 in SCCCN):
/// the CHAP computation (RFC 1994 §4.1) with the Message Type as the Identifier.
pub fn challenge_response(message_type: u16, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    chap_md5_response(message_type as u8, secret, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2xdp_wire::crypto::ct_eq;

    /// Pins the CHAP-style computation: MD5(0x02 "secret" 0x01..0x10), computed independently.
    #[test]
    fn golden_response() {
        let ch: Vec<u8> = (1..=16).collect();
        let r = challenge_response(2, b"secret", &ch);
        assert_eq!(
            r,
            [
                0x4b, 0x70, 0xdc, 0xe8, 0x7d, 0x3d, 0xf3, 0x5d, 0xa1, 0x9c, 0xdd, 0xa9, 0x87, 0x3a,
                0xc3, 0xe8
            ]
        );
        assert_ne!(r, challenge_response(3, b"secret", &ch));
        assert!(ct_eq(&r, &r));
        assert!(!ct_eq(&r, &challenge_response(3, b"secret", &ch)));
    }
}
