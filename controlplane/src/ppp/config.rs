//! PPP configuration: plain structs that deserialize from the daemon's TOML (durations are
//! numbers of seconds, fractions allowed), with the RFC defaults.
//!
//! ```toml
//! [ppp]
//! auth = ["chap", "pap"]          # server: request in this order; client: accept these
//! hostname = "lns"                # CHAP Name of the authenticator
//! restart_timer = 3               # RFC 1661 §4.6
//! max_terminate = 2
//! max_configure = 10
//! max_failure = 5
//! mru = 1460
//! echo_interval = 30              # 0 turns LCP keepalives off
//! echo_failures = 3
//! [ppp.ipcp]
//! local_address = "192.0.2.1"
//! pool = ["10.0.0.0/24", "10.0.1.10-10.0.1.99"]
//! dns = ["192.0.2.53", "192.0.2.54"]
//! [ppp.ipv6cp]
//! enabled = true
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::pool::Ipv4Range;

/// Durations are clamped to this so that adding them to an `Instant` cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// An authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// PAP (RFC 1334 §2).
    Pap,
    /// CHAP with MD5 (RFC 1994).
    #[serde(alias = "chap-md5")]
    Chap,
}

/// PPP tunables of one side (an LNS or a client emulator).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PppConfig {
    /// Server: the protocols to request in LCP, most preferred first; empty means no
    /// authentication. Client: the protocols it agrees to (a Configure-Nak suggests the first).
    pub auth: Vec<AuthMethod>,
    /// The Name sent in CHAP Challenges (RFC 1994 §4.1).
    pub hostname: String,
    /// The Restart timer (RFC 1661 §4.6, default 3 s). Also the retransmission interval of PAP
    /// Authenticate-Requests and CHAP Challenges.
    #[serde(deserialize_with = "seconds")]
    pub restart_timer: Duration,
    /// Max-Terminate (RFC 1661 §4.6, default 2).
    pub max_terminate: u32,
    /// Max-Configure (RFC 1661 §4.6, default 10); also the transmissions of one PAP request or
    /// CHAP challenge.
    pub max_configure: u32,
    /// Max-Failure (RFC 1661 §4.6, default 5): Configure-Naks sent before Rejecting instead.
    pub max_failure: u32,
    /// The MRU we ask for (RFC 1661 §6.1); not requested when 1500 (the default value).
    pub mru: u16,
    /// The smallest MRU the peer may announce; a smaller one is Nak'ed with this.
    pub min_mru: u16,
    /// Interval of LCP Echo-Requests once the link is up (RFC 1661 §5.8); zero: none.
    #[serde(deserialize_with = "seconds")]
    pub echo_interval: Duration,
    /// Unanswered Echo-Requests in a row after which the peer is dead.
    pub echo_failures: u32,
    /// Request and accept Protocol-Field-Compression (RFC 1661 §6.5).
    pub pfc: bool,
    /// Request and accept Address-and-Control-Field-Compression (RFC 1661 §6.6).
    pub acfc: bool,
    /// How long the authenticator waits for the peer to authenticate (PAP), in total.
    #[serde(deserialize_with = "seconds")]
    pub auth_timeout: Duration,
    /// IPCP.
    pub ipcp: IpcpConfig,
    /// IPv6CP.
    pub ipv6cp: Ipv6cpConfig,
}

/// IPCP settings (RFC 1332, RFC 1877).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpcpConfig {
    /// Run IPCP.
    pub enabled: bool,
    /// Server: the IP-Address we send in our Configure-Request (RFC 1332 §3.3). Unspecified
    /// (0.0.0.0): the option is not sent.
    pub local_address: Ipv4Addr,
    /// Server: the address pool(s).
    pub pool: Vec<Ipv4Range>,
    /// Server: Primary and Secondary DNS to offer (RFC 1877 §1.1, §1.3); at most two used.
    /// Client: ask for DNS when non-empty or when `request_dns` is set.
    pub dns: Vec<Ipv4Addr>,
    /// Client: request Primary/Secondary-DNS.
    pub request_dns: bool,
}

/// IPv6CP settings (RFC 5072).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ipv6cpConfig {
    /// Run IPv6CP.
    pub enabled: bool,
    /// Our Interface-Identifier; random (non-zero) when absent.
    pub interface_id: Option<u64>,
}

impl Default for PppConfig {
    fn default() -> Self {
        PppConfig {
            auth: vec![AuthMethod::Chap, AuthMethod::Pap],
            hostname: "l2xdp".to_string(),
            restart_timer: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
            mru: 1500,
            min_mru: 128,
            echo_interval: Duration::from_secs(30),
            echo_failures: 3,
            pfc: false,
            acfc: false,
            auth_timeout: Duration::from_secs(30),
            ipcp: IpcpConfig::default(),
            ipv6cp: Ipv6cpConfig::default(),
        }
    }
}

impl Default for IpcpConfig {
    fn default() -> Self {
        IpcpConfig {
            enabled: true,
            local_address: Ipv4Addr::UNSPECIFIED,
            pool: Vec::new(),
            dns: Vec::new(),
            request_dns: true,
        }
    }
}

impl Default for Ipv6cpConfig {
    fn default() -> Self {
        Ipv6cpConfig {
            enabled: true,
            interface_id: None,
        }
    }
}

impl PppConfig {
    /// The restart timer, clamped to 10 ms..=[`MAX_DURATION`].
    pub(crate) fn restart(&self) -> Duration {
        self.restart_timer
            .clamp(Duration::from_millis(10), MAX_DURATION)
    }
}

/// Deserializes a number of seconds (integer or fraction) into a Duration.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = f64::deserialize(d)?;
    Duration::try_from_secs_f64(s)
        .map(|v| v.min(MAX_DURATION))
        .map_err(|e| serde::de::Error::custom(format!("bad number of seconds {s}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_with_defaults() {
        let c: PppConfig = serde_json::from_str(
            r#"{"auth":["pap"],"restart_timer":1.5,"echo_interval":0,
                "ipcp":{"pool":["10.0.0.0/24"],"dns":["192.0.2.53"]},
                "ipv6cp":{"enabled":false}}"#,
        )
        .expect("valid config");
        assert_eq!(c.auth, vec![AuthMethod::Pap]);
        assert_eq!(c.restart_timer, Duration::from_millis(1500));
        assert_eq!(c.echo_interval, Duration::ZERO);
        assert_eq!(c.max_configure, 10);
        assert_eq!(c.ipcp.pool[0].to_string(), "10.0.0.1-10.0.0.254");
        assert!(!c.ipv6cp.enabled);
        assert!(serde_json::from_str::<PppConfig>(r#"{"restart_timer":-1}"#).is_err());
        assert!(serde_json::from_str::<PppConfig>(r#"{"bogus":1}"#).is_err());
        assert!(serde_json::from_str::<PppConfig>(r#"{"ipcp":{"pool":["10.0.0.1/24"]}}"#).is_err());
    }
}
