//! PPP as carried in L2TPv2 data messages (RFC 2661 §1, §3) and terminated by the LNS control
//! plane: framing (RFC 1661 §2, RFC 1662 §3), LCP (RFC 1661), IPCP (RFC 1332, RFC 1877),
//! IPv6CP (RFC 5072), PAP (RFC 1334) and CHAP (RFC 1994).
//!
//! The fast path only needs [`frame::parse`] (no allocation) and [`is_control_protocol`];
//! the control plane parses the control packets into owned representations, and a decoder can
//! take a whole frame with [`PppPacket::parse`].

pub mod chap;
pub mod cp;
pub mod frame;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod pap;

pub use frame::{is_control_protocol, is_valid_protocol, protocol, protocol_name, FrameRepr};

/// Serializes bytes as a lowercase hex string (for `#[serde(serialize_with)]`).
pub(crate) fn ser_hex<S: serde::Serializer>(
    bytes: &[u8],
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    s.serialize_str(&hex)
}

/// Serializes bytes as text when they are UTF-8, else as hex prefixed with `0x`.
pub(crate) fn ser_text<S: serde::Serializer>(
    bytes: &[u8],
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    match core::str::from_utf8(bytes) {
        Ok(t) => s.serialize_str(t),
        Err(_) => {
            let mut hex = String::with_capacity(2 + bytes.len() * 2);
            hex.push_str("0x");
            for b in bytes {
                hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
            }
            s.serialize_str(&hex)
        }
    }
}

/// Serializes a secret as its length only.
pub(crate) fn ser_redacted<S: serde::Serializer>(
    bytes: &[u8],
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("<{} bytes>", bytes.len()))
}
