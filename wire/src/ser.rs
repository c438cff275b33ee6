//! How byte strings appear in JSON (`#[serde(serialize_with = ...)]`): binary values as hex,
//! names and messages as text, secrets as their length only. One place, so the decoder's output
//! is consistent across L2TP and PPP.

/// Bytes as a lowercase hex string.
pub(crate) fn ser_hex<T: AsRef<[u8]> + ?Sized, S: serde::Serializer>(
    bytes: &T,
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes.as_ref()))
}

/// Bytes as text when they are UTF-8, else as hex prefixed with `0x`.
pub(crate) fn ser_text<T: AsRef<[u8]> + ?Sized, S: serde::Serializer>(
    bytes: &T,
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    match core::str::from_utf8(bytes.as_ref()) {
        Ok(t) => s.serialize_str(t),
        Err(_) => s.serialize_str(&format!("0x{}", hex(bytes.as_ref()))),
    }
}

/// A secret as its length only.
pub(crate) fn ser_redacted<T: AsRef<[u8]> + ?Sized, S: serde::Serializer>(
    bytes: &T,
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("<{} bytes>", bytes.as_ref().len()))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
