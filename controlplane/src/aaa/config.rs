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
    /// The shortest Acct-Interim-Interval honoured: a smaller one from a server is raised to
    /// it (RFC 2869 §5.16: "SHOULD NOT be smaller than 60").
    pub min_interim: Duration,
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
            min_interim: Duration::from_secs(60),
        }
    }
}

/// `[radius]` in `l2xdpd`'s configuration: with it, subscribers are authenticated by the
/// RADIUS servers (the users file is not consulted for them).
///
/// ```toml
/// [radius]
/// timeout_ms = 3000
/// tries = 3
/// dead_time_secs = 30
/// max_outstanding = 256
/// nas_identifier = "lns1"
/// nas_ip = "192.0.2.1"
/// [[radius.server]]
/// address = "192.0.2.10"
/// secret = "..."
/// ```
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RadiusSection {
    /// The servers, tried by priority.
    pub server: Vec<ServerSection>,
    /// Wait before retransmitting, milliseconds (100 to 60000).
    pub timeout_ms: u64,
    /// Transmissions per server (1 to 10).
    pub tries: u32,
    /// How long a server that did not answer is left out, seconds (0 to 3600).
    pub dead_time_secs: u64,
    /// Requests waiting for an answer, all servers together (1 to 4096).
    pub max_outstanding: usize,
    /// NAS-Identifier (RFC 2865 §5.32), 1 to 253 bytes; none: not sent.
    pub nas_identifier: Option<String>,
    /// NAS-IP-Address or NAS-IPv6-Address (RFC 2865 §5.4, RFC 3162 §2.1); none: not sent.
    pub nas_ip: Option<IpAddr>,
    /// The shortest Acct-Interim-Interval honoured, seconds (1 to 86400).
    pub min_interim_secs: u64,
}

impl Default for RadiusSection {
    fn default() -> Self {
        let d = RadiusConfig::new(Vec::new());
        RadiusSection {
            server: Vec::new(),
            timeout_ms: d.timeout.as_millis() as u64,
            tries: d.tries,
            dead_time_secs: d.dead_time.as_secs(),
            max_outstanding: d.max_outstanding,
            nas_identifier: d.nas_identifier,
            nas_ip: d.nas_ip,
            min_interim_secs: d.min_interim.as_secs(),
        }
    }
}

impl std::fmt::Debug for RadiusSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusSection")
            .field("server", &self.server)
            .field("timeout_ms", &self.timeout_ms)
            .field("tries", &self.tries)
            .field("dead_time_secs", &self.dead_time_secs)
            .field("max_outstanding", &self.max_outstanding)
            .field("nas_identifier", &self.nas_identifier)
            .field("nas_ip", &self.nas_ip)
            .field("min_interim_secs", &self.min_interim_secs)
            .finish()
    }
}

/// `[[radius.server]]`.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The server's address (IPv4 or IPv6).
    pub address: IpAddr,
    /// Authentication port (RFC 2865 §3).
    #[serde(default = "auth_port")]
    pub auth_port: u16,
    /// Accounting port (RFC 2866 §3).
    #[serde(default = "acct_port")]
    pub acct_port: u16,
    /// The shared secret (RFC 2865 §3: at least 16 octets is recommended), 1 to 128 bytes.
    pub secret: String,
    /// Lower is tried first.
    #[serde(default)]
    pub priority: u32,
}

fn auth_port() -> u16 {
    1812
}

fn acct_port() -> u16 {
    1813
}

impl std::fmt::Debug for ServerSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSection")
            .field("address", &self.address)
            .field("auth_port", &self.auth_port)
            .field("acct_port", &self.acct_port)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("priority", &self.priority)
            .finish()
    }
}

impl RadiusSection {
    /// The checks a type cannot express; `at` is the section's dotted path ("radius").
    pub fn check(&self, at: &str) -> Result<(), crate::config_file::Problem> {
        use crate::config_file::Problem;
        if self.server.is_empty() {
            return Err(Problem::new(
                format!("{at}.server"),
                "no [[radius.server]]: give at least one, or remove [radius] to use the users file",
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (i, s) in self.server.iter().enumerate() {
            let f = |n: &str| format!("{at}.server[{i}].{n}");
            if s.address.is_unspecified() || s.address.is_multicast() {
                return Err(Problem::new(
                    f("address"),
                    format!("{} is not a server's address", s.address),
                ));
            }
            if s.auth_port == 0 {
                return Err(Problem::new(
                    f("auth_port"),
                    "port 0: give 1 to 65535 (1812 is usual)",
                ));
            }
            if s.acct_port == 0 {
                return Err(Problem::new(
                    f("acct_port"),
                    "port 0: give 1 to 65535 (1813 is usual)",
                ));
            }
            if s.secret.is_empty() || s.secret.len() > 128 {
                return Err(Problem::new(
                    f("secret"),
                    "the shared secret must be 1 to 128 bytes (RFC 2865 §3 recommends at least 16)",
                ));
            }
            if let Some(first) = seen.insert((s.address, s.auth_port), i) {
                return Err(Problem::new(
                    f("address"),
                    format!(
                        "{}:{} is also {at}.server[{first}]'s: one entry per server",
                        s.address, s.auth_port
                    ),
                ));
            }
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(Problem::new(
                format!("{at}.timeout_ms"),
                format!("{}: give 100 to 60000 milliseconds", self.timeout_ms),
            ));
        }
        if !(1..=10).contains(&self.tries) {
            return Err(Problem::new(
                format!("{at}.tries"),
                format!("{}: give 1 to 10 transmissions per server", self.tries),
            ));
        }
        if self.dead_time_secs > 3600 {
            return Err(Problem::new(
                format!("{at}.dead_time_secs"),
                format!("{}: give 0 to 3600 seconds", self.dead_time_secs),
            ));
        }
        if !(1..=4096).contains(&self.max_outstanding) {
            return Err(Problem::new(
                format!("{at}.max_outstanding"),
                format!("{}: give 1 to 4096 requests", self.max_outstanding),
            ));
        }
        if !(1..=86_400).contains(&self.min_interim_secs) {
            return Err(Problem::new(
                format!("{at}.min_interim_secs"),
                format!("{}: give 1 to 86400 seconds", self.min_interim_secs),
            ));
        }
        if let Some(id) = &self.nas_identifier {
            if id.is_empty() || id.len() > 253 {
                return Err(Problem::new(
                    format!("{at}.nas_identifier"),
                    "the NAS-Identifier must be 1 to 253 bytes (RFC 2865 §5.32); remove the line to send none",
                ));
            }
        }
        if self.nas_identifier.is_none() && self.nas_ip.is_none() {
            return Err(Problem::new(
                format!("{at}.nas_identifier"),
                "neither nas_identifier nor nas_ip: RFC 2865 §4.1 needs one of them in every Access-Request",
            ));
        }
        Ok(())
    }

    /// The client's settings.
    pub fn client_config(&self) -> RadiusConfig {
        RadiusConfig {
            servers: self
                .server
                .iter()
                .map(|s| ServerConfig {
                    auth: SocketAddr::new(s.address, s.auth_port),
                    acct: SocketAddr::new(s.address, s.acct_port),
                    secret: s.secret.as_bytes().to_vec(),
                    priority: s.priority,
                })
                .collect(),
            timeout: Duration::from_millis(self.timeout_ms),
            tries: self.tries,
            dead_time: Duration::from_secs(self.dead_time_secs),
            max_outstanding: self.max_outstanding,
            nas_identifier: self.nas_identifier.clone(),
            nas_ip: self.nas_ip,
            min_interim: Duration::from_secs(self.min_interim_secs),
        }
    }
}
