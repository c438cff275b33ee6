//! Static L2TPv3 Ethernet pseudowires (RFC 3931, RFC 4719) from TOML, what Linux
//! `ip l2tp add tunnel/session` does in manual mode: no control connection, both ends
//! configured by hand. Each `[[pseudowire]]` becomes a [`SessionEntry`] installed with
//! [`crate::DataPlane::install`]. Errors name the line and the field.
//!
//! ```toml
//! [[pseudowire]]
//! tunnel_id = 10          # ours (documentation: v3 data packets carry only the session id)
//! peer_tunnel_id = 20
//! session_id = 100        # ours: what arrives
//! peer_session_id = 200   # the peer's: what we send
//! local = "192.0.2.1"
//! peer = "192.0.2.2"
//! encap = "udp"           # or "ip" (protocol 115)
//! local_port = 1701       # udp only
//! peer_port = 1701
//! cookie = "0011223344556677"  # hex, 0/4/8 bytes: what we expect
//! peer_cookie = "a1b2c3d4"     # what we send
//! l2spec = true           # default L2-Specific Sublayer (RFC 3931 §4.6)
//! sequencing = false      # needs l2spec
//! interface = "eth1"      # attachment circuit
//! ttl = 64
//! ```

use std::net::IpAddr;

use l2xdp_wire::datapath::{PppTx, Session, SessionKey};
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::api::{Binding, SessionEntry};

/// A configuration error: where and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}: line {line}: {field}: {why}")]
pub struct ConfigError {
    /// The file (or "<string>").
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The field (or table) at fault.
    pub field: String,
    /// What is wrong.
    pub why: String,
}

/// Encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    /// UDP.
    Udp,
    /// IP protocol 115.
    Ip,
}

fn hex_cookie<'de, D: Deserializer<'de>>(d: D) -> Result<Cookie, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim_start_matches("0x");
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(serde::de::Error::custom(
            "a cookie is hex digits, 0, 8 or 16 of them",
        ));
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    Cookie::new(&bytes).map_err(|_| serde::de::Error::custom("a cookie is 0, 4 or 8 bytes"))
}

/// One pseudowire as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pseudowire {
    /// Our tunnel id (not on the wire for v3 data).
    pub tunnel_id: u32,
    /// The peer's tunnel id.
    pub peer_tunnel_id: u32,
    /// Our session id (nonzero).
    pub session_id: Spanned<u32>,
    /// The peer's session id (nonzero).
    pub peer_session_id: Spanned<u32>,
    /// Our address.
    pub local: Spanned<IpAddr>,
    /// The peer's address.
    pub peer: Spanned<IpAddr>,
    /// UDP or IP.
    pub encap: Encap,
    /// Our UDP port.
    #[serde(default = "default_port")]
    pub local_port: u16,
    /// The peer's UDP port.
    #[serde(default = "default_port")]
    pub peer_port: u16,
    /// The cookie we expect.
    #[serde(default, deserialize_with = "hex_cookie")]
    pub cookie: Cookie,
    /// The cookie we send.
    #[serde(default, deserialize_with = "hex_cookie")]
    pub peer_cookie: Cookie,
    /// Default L2-Specific Sublayer.
    #[serde(default)]
    pub l2spec: bool,
    /// Sequencing.
    #[serde(default = "no")]
    pub sequencing: Spanned<bool>,
    /// Attachment circuit interface name.
    pub interface: String,
    /// Outer TTL.
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// UDP checksum over IPv4.
    #[serde(default)]
    pub udp_checksum: bool,
}

fn default_port() -> u16 {
    1701
}
fn no() -> Spanned<bool> {
    Spanned::new(0..0, false)
}
fn default_ttl() -> u8 {
    64
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    pseudowire: Vec<Pseudowire>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Parses a configuration. `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<Pseudowire>, ConfigError> {
    let f: File = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        // The key at fault is the last word before '=' on the error's line.
        let line = line_of(text, span.start);
        let field = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split('=').next())
            .map(|k| k.trim().to_owned())
            .unwrap_or_default();
        ConfigError {
            file: file.into(),
            line,
            field,
            why: e.message().to_owned(),
        }
    })?;
    let err = |at: usize, field: &str, why: &str| ConfigError {
        file: file.into(),
        line: line_of(text, at),
        field: field.into(),
        why: why.into(),
    };
    for pw in &f.pseudowire {
        if *pw.session_id.get_ref() == 0 {
            return Err(err(
                pw.session_id.span().start,
                "session_id",
                "must be nonzero",
            ));
        }
        if *pw.peer_session_id.get_ref() == 0 {
            return Err(err(
                pw.peer_session_id.span().start,
                "peer_session_id",
                "must be nonzero",
            ));
        }
        if pw.local.get_ref().is_ipv4() != pw.peer.get_ref().is_ipv4() {
            return Err(err(
                pw.peer.span().start,
                "peer",
                "not the address family of local",
            ));
        }
        if *pw.sequencing.get_ref() && !pw.l2spec {
            return Err(err(
                pw.sequencing.span().start,
                "sequencing",
                "needs l2spec = true (the sequence number is in the sublayer)",
            ));
        }
    }
    Ok(f.pseudowire)
}

impl Pseudowire {
    /// The session entry, with the attachment circuit's ifindex resolved by the caller.
    pub fn entry(&self, ifindex: u32) -> SessionEntry {
        SessionEntry {
            session: Session {
                transport: match self.encap {
                    Encap::Udp => Transport::Udp,
                    Encap::Ip => Transport::Ip,
                },
                local_addr: *self.local.get_ref(),
                peer_addr: *self.peer.get_ref(),
                local_port: self.local_port,
                peer_port: self.peer_port,
                local_mac: MacAddr([0; 6]),
                next_hop_mac: MacAddr([0; 6]),
                vlans: Vlans::NONE,
                our_ids: SessionKey::V3 {
                    session_id: *self.session_id.get_ref(),
                },
                peer_ids: SessionKey::V3 {
                    session_id: *self.peer_session_id.get_ref(),
                },
                cookie_rx: self.cookie,
                cookie_tx: self.peer_cookie,
                l2ss: self.l2spec,
                sequencing: *self.sequencing.get_ref(),
                ppp: PppTx::default(),
                ttl: self.ttl,
                dscp: 0,
                udp_checksum_v4: self.udp_checksum,
            },
            binding: Binding::AttachmentCircuit { ifindex },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[pseudowire]]
tunnel_id = 10
peer_tunnel_id = 20
session_id = 100
peer_session_id = 200
local = "192.0.2.1"
peer = "192.0.2.2"
encap = "udp"
cookie = "0011223344556677"
peer_cookie = "a1b2c3d4"
l2spec = true
sequencing = true
interface = "eth1"
"#;

    #[test]
    fn parses_a_pseudowire() {
        let pws = parse(GOOD, "t.toml").expect("valid");
        assert_eq!(pws.len(), 1);
        let e = pws[0].entry(7);
        assert_eq!(e.key(), SessionKey::V3 { session_id: 100 });
        assert_eq!(
            e.session.cookie_rx.as_bytes(),
            &[0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
        );
        assert_eq!(e.session.cookie_tx.as_bytes(), &[0xa1, 0xb2, 0xc3, 0xd4]);
        assert_eq!(e.session.local_port, 1701);
        assert!(e.session.validate().is_ok());
        assert_eq!(e.binding, Binding::AttachmentCircuit { ifindex: 7 });
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad_cookie = GOOD.replace("\"a1b2c3d4\"", "\"a1b2c3\"");
        let e = parse(&bad_cookie, "t.toml").expect_err("3-byte cookie");
        assert_eq!((e.line, e.field.as_str()), (11, "peer_cookie"), "{e}");
        let bad_seq = GOOD.replace("l2spec = true", "l2spec = false");
        let e = parse(&bad_seq, "t.toml").expect_err("seq without sublayer");
        assert_eq!((e.line, e.field.as_str()), (13, "sequencing"), "{e}");
        let bad_fam = GOOD.replace("\"192.0.2.2\"", "\"2001:db8::2\"");
        let e = parse(&bad_fam, "t.toml").expect_err("families");
        assert_eq!((e.line, e.field.as_str()), (8, "peer"), "{e}");
        let bad_encap = GOOD.replace("\"udp\"", "\"gre\"");
        let e = parse(&bad_encap, "t.toml").expect_err("encap");
        assert_eq!((e.line, e.field.as_str()), (9, "encap"), "{e}");
        let zero = GOOD.replace("session_id = 100", "session_id = 0");
        let e = parse(&zero, "t.toml").expect_err("zero");
        assert_eq!((e.line, e.field.as_str()), (5, "session_id"), "{e}");
        assert!(
            e.to_string().starts_with("t.toml: line 5: session_id:"),
            "{e}"
        );
    }
}
