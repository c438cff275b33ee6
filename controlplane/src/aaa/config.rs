//! The RADIUS client's settings (the `[radius]` section of `l2xdpd`'s configuration).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One RADIUS server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Authentication address (RFC 2865 §3: port 1812).
    pub auth: SocketAddr,
    /// Accounting address (RFC 2866 §3: port 1813).
    pub acct: SocketAddr,
    /// The shared secret (RFC 2865 §3), per server.
    pub secret: Vec<u8>,
    /// Lower is tried first; equal priorities keep the configured order.
    pub priority: u32,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("auth", &self.auth)
            .field("acct", &self.acct)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("priority", &self.priority)
            .finish()
    }
}

/// The client's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusConfig {
    /// The servers (at least one).
    pub servers: Vec<ServerConfig>,
    /// How long to wait for a response before retransmitting (RFC 5080 §2.2.1 retransmits
    /// the same packet: same Identifier and Authenticator).
    pub timeout: Duration,
    /// Transmissions to one server before it counts as not answering (at least 1).
    pub tries: u32,
    /// How long a server that did not answer is left out before it is tried again.
    pub dead_time: Duration,
    /// Requests waiting for an answer, all servers together (at most 256 per server: the
    /// Identifier has 8 bits). Past it a request fails at once (fail closed).
    pub max_outstanding: usize,
    /// NAS-Identifier (RFC 2865 §5.32); with `nas_ip`, at least one is sent (§4.1).
    pub nas_identifier: Option<String>,
    /// NAS-IP-Address (RFC 2865 §5.4) or NAS-IPv6-Address (RFC 3162 §2.1).
    pub nas_ip: Option<IpAddr>,
}

impl RadiusConfig {
    /// Defaults for everything but the servers: 3 s timeout, 3 tries, 30 s dead time, 256
    /// outstanding, NAS-Identifier "l2xdp".
    pub fn new(servers: Vec<ServerConfig>) -> Self {
        RadiusConfig {
            servers,
            timeout: Duration::from_secs(3),
            tries: 3,
            dead_time: Duration::from_secs(30),
            max_outstanding: 256,
            nas_identifier: Some("l2xdp".into()),
            nas_ip: None,
        }
    }
}
