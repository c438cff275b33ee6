//! PPP as carried in L2TPv2 data messages (RFC 2661 §1, §3) and terminated by the LNS control
//! plane: framing (RFC 1661 §2, RFC 1662 §3), LCP (RFC 1661), IPCP (RFC 1332, RFC 1877),
//! IPv6CP (RFC 5072), PAP (RFC 1334) and CHAP (RFC 1994).
//!
//! The fast path only needs [`frame::parse`] (no allocation) and [`is_control_protocol`];
//! the control plane parses the control packets into owned representations, and a decoder can
//! take a whole frame with [`PppPacket::parse`].

pub mod cp;
pub mod frame;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;

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
