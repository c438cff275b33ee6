//! The two cryptographic primitives the protocols share, from well-kept crates (`hmac`,
//! `subtle`) rather than written here:
//!
//! - HMAC-MD5 (RFC 2104): the L2TPv3 keys and Message Digest (RFC 3931 §4.3, §5.3, §5.4.1);
//! - comparison of secrets and digests in constant time (CHAP, RFC 1994 §4.1; PAP passwords;
//!   the L2TPv2 Challenge Response, RFC 2661 §5.1.1; the v3 Message Digest), so that the time
//!   taken does not reveal where the first wrong byte is.

use hmac::{Hmac, Mac};
use md5::Md5;
use subtle::ConstantTimeEq;

/// HMAC-MD5 (RFC 2104) of `data` under `key`.
pub fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    hmac_md5_parts(key, &[data])
}

/// HMAC-MD5 (RFC 2104) under `key` of the concatenation of `parts` (no copy into one buffer).
pub fn hmac_md5_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length (longer than the block are hashed, RFC 2104 §2).
    let Ok(mut mac) = <Hmac<Md5> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length")
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2104 Appendix / RFC 2202 §2: the HMAC-MD5 test cases 1, 2, 3, 6 (a key longer
    /// than the block) and 7.
    #[test]
    fn rfc2202_vectors() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        };
        let cases: [(&[u8], &[u8], &str); 5] = [
            (&[0x0b; 16], b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (&[0xaa; 16], &[0xdd; 50], "56be34521d144c88dbb8c733f0e8b3f6"),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
                "6f630fad67cda0ee1fb1f562db3aa53e",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hmac_md5(key, data).to_vec(), hex(want), "{want}");
        }
        let (a, b) = b"what do ya want ".split_at(7);
        assert_eq!(
            hmac_md5_parts(b"Jefe", &[a, b, b"for nothing?"]),
            hmac_md5(b"Jefe", b"what do ya want for nothing?")
        );
    }

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"Secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secret!"));
        assert!(!ct_eq(b"secret", b""));
    }
}
