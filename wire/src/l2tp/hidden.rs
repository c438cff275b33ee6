//! Hiding of AVP attribute values (RFC 2661 §4.3, RFC 3931 §5.3).
//!
//! The cleartext is first put in the Hidden AVP Subformat:
//! ```text
//! |   Length of Original Value    |   Original Attribute Value ...
//!    ...                          |             Padding ...
//! ```
//! then XORed 16 octets at a time with a key stream:
//! ```text
//! b1 = MD5(A + S + RV)   c1 = p1 xor b1
//! bi = MD5(S + c(i-1))   ci = pi xor bi
//! ```
//! where A is the 2-octet Attribute Type, S the shared secret (L2TPv2) or the key derived from it
//! (L2TPv3: `HMAC-MD5(shared_secret, 1)`, see [`hiding_key`]) and RV the value of the Random
//! Vector AVP most closely preceding the hidden AVP. A last block shorter than 16 octets is XORed
//! with the first octets of its hash only.

use md5::{Digest, Md5};

use super::header::Version;
use crate::crypto::hmac_md5;
use crate::error::{Error, Result};

/// Length of the "Length of Original Value" field of the subformat.
pub const LENGTH_FIELD: usize = 2;

/// The longest value that can be hidden inside one AVP: 1023 - 6 (header) - 2 (length field).
pub const MAX_VALUE: usize = 1015;

/// The message for AVP value errors whose cause is a length (mapped to General Error Code 2).
pub const WRONG_LENGTH: &str = "wrong value length";

/// The key used for hiding in L2TPv3: `HMAC_MD5(shared_secret, 1)` (RFC 3931 §5.3).
pub fn v3_hiding_key(shared_secret: &[u8]) -> [u8; 16] {
    hmac_md5(shared_secret, &[1])
}

/// The key a version hides with: the shared secret itself for L2TPv2 (RFC 2661 §4.3), the derived
/// key of [`v3_hiding_key`] for L2TPv3 (RFC 3931 §5.3).
pub fn hiding_key(version: Version, shared_secret: &[u8]) -> Vec<u8> {
    match version {
        Version::V2 => shared_secret.to_vec(),
        Version::V3 => v3_hiding_key(shared_secret).to_vec(),
    }
}

/// XORs `data` in place with the key stream; `cipher_out` says whether `data` is cleartext
/// (hiding: the chaining uses the output) or ciphertext (unhiding: the chaining uses the input).
fn xor_stream(attr_type: u16, key: &[u8], random_vector: &[u8], data: &mut [u8], hiding: bool) {
    let mut prev = [0u8; 16];
    let mut prev_len = 0;
    for (i, chunk) in data.chunks_mut(16).enumerate() {
        let b = if i == 0 {
            Md5::new()
                .chain_update(attr_type.to_be_bytes())
                .chain_update(key)
                .chain_update(random_vector)
                .finalize()
        } else {
            Md5::new()
                .chain_update(key)
                .chain_update(&prev[..prev_len])
                .finalize()
        };
        if !hiding {
            prev[..chunk.len()].copy_from_slice(chunk);
        }
        for (c, k) in chunk.iter_mut().zip(b.iter()) {
            *c ^= k;
        }
        if hiding {
            prev[..chunk.len()].copy_from_slice(chunk);
        }
        prev_len = chunk.len();
    }
}

/// Hides `value` of attribute `attr_type`: builds the subformat (length, value, `padding`) and
/// encrypts it with `key` (see [`hiding_key`]) and the Random Vector. Returns the new Attribute
/// Value. Fails if the result would not fit in an AVP.
pub fn hide(
    attr_type: u16,
    key: &[u8],
    random_vector: &[u8],
    value: &[u8],
    padding: &[u8],
) -> Result<Vec<u8>> {
    let total = LENGTH_FIELD + value.len() + padding.len();
    if total > MAX_VALUE + LENGTH_FIELD {
        return Err(Error::Malformed {
            what: "hidden AVP",
            why: "value and padding do not fit in an AVP",
        });
    }
    let len = u16::try_from(value.len()).map_err(|_| Error::Malformed {
        what: "hidden AVP",
        why: "value longer than 65535 octets",
    })?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(padding);
    xor_stream(attr_type, key, random_vector, &mut out, true);
    Ok(out)
}

/// Reverses [`hide`]: decrypts a hidden Attribute Value and returns the original value (the
/// padding is dropped). Fails when the subformat is shorter than its length field or the original
/// length exceeds what is there (typically a wrong secret or Random Vector).
pub fn unhide(attr_type: u16, key: &[u8], random_vector: &[u8], hidden: &[u8]) -> Result<Vec<u8>> {
    if hidden.len() < LENGTH_FIELD {
        return Err(Error::Malformed {
            what: "hidden AVP subformat",
            why: WRONG_LENGTH,
        });
    }
    let mut clear = hidden.to_vec();
    xor_stream(attr_type, key, random_vector, &mut clear, false);
    let len = usize::from(u16::from_be_bytes([clear[0], clear[1]]));
    if len > clear.len() - LENGTH_FIELD {
        return Err(Error::Malformed {
            what: "hidden AVP subformat",
            why: WRONG_LENGTH,
        });
    }
    clear.truncate(LENGTH_FIELD + len);
    clear.drain(..LENGTH_FIELD);
    Ok(clear)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Golden vector computed independently (Python hashlib):
    /// attr 9 (Assigned Tunnel ID), secret "secret", RV 01..10, value 0x1234, no padding.
    /// MD5(00 09 "secret" 01..10) = b1; c = (00 02 12 34) xor b1[..4].
    #[test]
    fn golden_short_value() {
        let rv: Vec<u8> = (1..=16).collect();
        let h = hide(9, b"secret", &rv, &[0x12, 0x34], &[]).expect("fits");
        assert_eq!(h, GOLDEN_SHORT);
        assert_eq!(
            unhide(9, b"secret", &rv, &GOLDEN_SHORT).expect("valid"),
            vec![0x12, 0x34]
        );
    }

    /// Golden vector over three blocks (chaining), computed independently (Python hashlib):
    /// attr 33 (Proxy Authen Response), secret "s3cr3t", RV "abcdefgh", value "password-0123456789"
    /// (19 octets), padding 00 * 15 -> subformat of 36 octets.
    #[test]
    fn golden_chained_value() {
        let h = hide(33, b"s3cr3t", b"abcdefgh", b"password-0123456789", &[0; 15]).expect("fits");
        assert_eq!(h, GOLDEN_CHAINED);
        assert_eq!(
            unhide(33, b"s3cr3t", b"abcdefgh", &GOLDEN_CHAINED).expect("valid"),
            b"password-0123456789".to_vec()
        );
    }

    #[test]
    fn v3_key_is_hmac_of_one() {
        // Python: hmac.new(b"secret", b"\x01", "md5").digest()
        assert_eq!(v3_hiding_key(b"secret"), GOLDEN_V3_KEY);
        assert_eq!(hiding_key(Version::V2, b"secret"), b"secret".to_vec());
    }

    #[test]
    fn bad_length_is_malformed() {
        assert!(unhide(1, b"k", b"rv", &[0]).is_err());
        // An original length larger than the subformat.
        let h = hide(1, b"k", b"rv", &[1, 2, 3], &[]).expect("fits");
        let mut bad = h.clone();
        bad.truncate(3);
        assert!(unhide(1, b"k", b"rv", &bad).is_err());
        assert!(hide(1, b"k", b"rv", &[0; 1016], &[]).is_err());
    }

    pub(super) const GOLDEN_SHORT: [u8; 4] = [0x3f, 0xd8, 0xbd, 0x76];
    pub(super) const GOLDEN_CHAINED: [u8; 36] = [
        0x15, 0x58, 0x61, 0x6f, 0xc7, 0x39, 0x75, 0xa6, 0xc9, 0x8f, 0x73, 0x72, 0x07, 0x92, 0x65,
        0x25, 0xc3, 0xcf, 0x81, 0xd9, 0x28, 0xfb, 0x37, 0x75, 0x75, 0x44, 0xba, 0xb5, 0x08, 0x52,
        0x22, 0xd6, 0x58, 0xf5, 0x2c, 0x98,
    ];
    pub(super) const GOLDEN_V3_KEY: [u8; 16] = [
        0x6f, 0x9f, 0x79, 0x0a, 0x81, 0x10, 0x71, 0x91, 0x77, 0xda, 0x10, 0x02, 0x87, 0xda, 0xe7,
        0xb8,
    ];

    proptest! {
        #[test]
        fn round_trip(
            attr in any::<u16>(),
            key in proptest::collection::vec(any::<u8>(), 0..40),
            rv in proptest::collection::vec(any::<u8>(), 0..40),
            value in proptest::collection::vec(any::<u8>(), 0..200),
            padding in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let h = hide(attr, &key, &rv, &value, &padding).expect("fits");
            prop_assert_eq!(h.len(), 2 + value.len() + padding.len());
            prop_assert_eq!(unhide(attr, &key, &rv, &h).expect("valid"), value);
        }

        #[test]
        fn unhide_never_panics(
            attr in any::<u16>(),
            key in proptest::collection::vec(any::<u8>(), 0..20),
            data in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let _ = unhide(attr, &key, b"rv", &data);
        }
    }
}
