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
//! enabled = true                  # off by default
//! ```
//!
//! [`PppConfig::check`] refuses what parses but cannot work (a zero timer, `min_mru` above
//! `mru`, a third DNS server...), naming the field and what is allowed.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::pool::Ipv4Range;
use crate::config_file::Problem;

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
    /// MS-CHAP-V2 (RFC 2759): CHAP algorithm 0x81.
    #[serde(rename = "mschapv2", alias = "ms-chap-v2")]
    MsChapV2,
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
    /// Server: Primary and Secondary DNS to offer (RFC 1877 §1.1, §1.3: IPCP carries two, a
    /// third is refused). Client: ask for DNS when non-empty or when `request_dns` is set.
    pub dns: Vec<Ipv4Addr>,
    /// Client (the LAC role): request Primary/Secondary-DNS (RFC 1877) with 0.0.0.0. **Off by
    /// default**, as in pppd (`usepeerdns` is opt-in): an LNS that has no DNS to give (pppd
    /// without `ms-dns`, as under xl2tpd) Configure-Rejects the options, which costs a round
    /// trip and a log line on both sides for nothing.
    pub request_dns: bool,
}

/// IPv6CP settings (RFC 5072). **Off by default**: most LACs' PPP peers (pppd without `+ipv6`)
/// answer an unexpected IPV6CP Configure-Request with a Protocol-Reject (RFC 1661 §5.7) —
/// harmless but noisy — and IPv6CP alone gives a subscriber only a link-local address; switch
/// it on where the subscribers do IPv6.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ipv6cpConfig {
    /// Run IPv6CP (default off).
    pub enabled: bool,
    /// Our Interface-Identifier; random (non-zero) when absent; 0 is refused (RFC 5072 §4.1).
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
            request_dns: false,
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

/// Deserializes a number of seconds (integer or fraction) into a Duration; negative values and
/// values above [`MAX_DURATION`] are refused (not clamped: a typo must not become a day).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = f64::deserialize(d)?;
    let v = Duration::try_from_secs_f64(s).map_err(|e| {
        serde::de::Error::custom(format!(
            "bad number of seconds {s}: {e} (allowed: 0 to {})",
            MAX_DURATION.as_secs()
        ))
    })?;
    if v > MAX_DURATION {
        return Err(serde::de::Error::custom(format!(
            "{s} seconds is more than the largest allowed, {} (24 hours)",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(v)
}

/// The smallest MRU accepted for `min_mru`: every IPv4 link carries 68-byte datagrams
/// (RFC 791, "Fragmentation").
pub const MIN_MRU_FLOOR: u16 = 68;

/// The smallest MRU of a link that runs IPv6 (RFC 8200 §5: a link MTU of 1280).
pub const IPV6_MIN_MTU: u16 = 1280;

/// The shortest Restart timer accepted (the code clamps to it; less is a typo).
pub const MIN_RESTART: Duration = Duration::from_millis(10);

impl PppConfig {
    /// The checks a type cannot express; `prefix` is the section's dotted path (`ppp`).
    pub fn check(&self, prefix: &str) -> Result<(), Problem> {
        let f = |name: &str| format!("{prefix}.{name}");
        for (i, a) in self.auth.iter().enumerate() {
            if self.auth[..i].contains(a) {
                return Err(Problem::new(
                    format!("{prefix}.auth[{i}]"),
                    format!("{a:?} is listed twice; give each protocol (\"chap\", \"pap\", \"mschapv2\") once"),
                ));
            }
        }
        if self.hostname.is_empty() || self.hostname.len() > 255 {
            return Err(Problem::new(
                f("hostname"),
                "the CHAP Name (RFC 1994 §4.1) must be 1 to 255 bytes",
            ));
        }
        if self.restart_timer < MIN_RESTART {
            return Err(Problem::new(
                f("restart_timer"),
                format!(
                    "{} s is too short: the Restart timer (RFC 1661 §4.6) must be at least 0.01 s (default 3)",
                    self.restart_timer.as_secs_f64()
                ),
            ));
        }
        for (name, v, default) in [
            ("max_terminate", self.max_terminate, 2),
            ("max_configure", self.max_configure, 10),
            ("max_failure", self.max_failure, 5),
        ] {
            if v == 0 || v > 255 {
                return Err(Problem::new(
                    f(name),
                    format!("{v}: must be 1 to 255 (RFC 1661 §4.6, default {default})"),
                ));
            }
        }
        if self.min_mru < MIN_MRU_FLOOR {
            return Err(Problem::new(
                f("min_mru"),
                format!(
                    "{} is below {MIN_MRU_FLOOR}, the smallest datagram every IPv4 link carries (RFC 791)",
                    self.min_mru
                ),
            ));
        }
        if self.mru < self.min_mru {
            // Blame the one the operator changed.
            let name = if self.min_mru != PppConfig::default().min_mru {
                "min_mru"
            } else {
                "mru"
            };
            return Err(Problem::new(
                f(name),
                format!(
                    "mru {} is below min_mru {}: we would Nak an MRU we ask for ourselves (RFC 1661 §6.1); min_mru must not exceed mru",
                    self.mru, self.min_mru
                ),
            ));
        }
        if self.ipv6cp.enabled && self.mru < IPV6_MIN_MTU {
            return Err(Problem::new(
                f("mru"),
                format!(
                    "{} is below {IPV6_MIN_MTU}, the smallest link MTU of IPv6 (RFC 8200 §5), and {prefix}.ipv6cp is enabled",
                    self.mru
                ),
            ));
        }
        if !self.echo_interval.is_zero() && self.echo_failures == 0 {
            return Err(Problem::new(
                f("echo_failures"),
                "0 with echo_interval set: a link would be dead at its first echo; give 1 or more (default 3), or echo_interval = 0 for no keepalives",
            ));
        }
        if !self.auth.is_empty() && self.auth_timeout.is_zero() {
            return Err(Problem::new(
                f("auth_timeout"),
                "0: no peer could authenticate; give the seconds a peer may take (default 30)",
            ));
        }
        self.ipcp.check(&f("ipcp"))?;
        if self.ipv6cp.interface_id == Some(0) {
            return Err(Problem::new(
                f("ipv6cp.interface_id"),
                "0 is not an Interface-Identifier (RFC 5072 §4.1: it MUST NOT be zero); remove the line for a random one",
            ));
        }
        Ok(())
    }
}

/// An address that is no host's unicast address: unspecified, loopback, multicast, broadcast,
/// class E (reserved).
fn not_unicast(a: Ipv4Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.is_broadcast() {
        Some("the broadcast address")
    } else if a.octets()[0] >= 240 {
        Some("a reserved (class E) address")
    } else {
        None
    }
}

impl IpcpConfig {
    /// The checks of `[ppp.ipcp]` (`prefix` is its dotted path).
    pub fn check(&self, prefix: &str) -> Result<(), Problem> {
        let f = |name: &str| format!("{prefix}.{name}");
        if !self.local_address.is_unspecified() {
            if let Some(why) = not_unicast(self.local_address) {
                return Err(Problem::new(
                    f("local_address"),
                    format!(
                        "{} is {why}: give the LNS's unicast IPv4 address, or remove the line to send none (RFC 1332 §3.3)",
                        self.local_address
                    ),
                ));
            }
        }
        for (i, r) in self.pool.iter().enumerate() {
            let field = format!("{prefix}.pool[{i}]");
            for a in [r.first, r.last] {
                if let Some(why) = not_unicast(a) {
                    return Err(Problem::new(
                        field,
                        format!(
                            "{r} holds {a}, {why}: a pool holds subscribers' unicast addresses"
                        ),
                    ));
                }
            }
            for (lo, hi) in [
                (Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(0, 255, 255, 255)),
                (
                    Ipv4Addr::new(127, 0, 0, 0),
                    Ipv4Addr::new(127, 255, 255, 255),
                ),
                (
                    Ipv4Addr::new(224, 0, 0, 0),
                    Ipv4Addr::new(255, 255, 255, 255),
                ),
            ] {
                if r.first <= hi && lo <= r.last {
                    return Err(Problem::new(
                        field,
                        format!("{r} overlaps {lo}-{hi} (\"this network\", loopback, multicast or reserved): a pool holds subscribers' unicast addresses"),
                    ));
                }
            }
            if r.len() == 1 && r.first == self.local_address {
                return Err(Problem::new(
                    field,
                    format!(
                        "{r} is only {prefix}.local_address, the LNS's own address, which is never leased: this range gives no subscriber an address"
                    ),
                ));
            }
        }
        if self.dns.len() > 2 {
            return Err(Problem::new(
                format!("{prefix}.dns[2]"),
                format!(
                    "{} DNS servers given: IPCP carries a primary and a secondary (RFC 1877 §1.1, §1.3), at most 2",
                    self.dns.len()
                ),
            ));
        }
        for (i, a) in self.dns.iter().enumerate() {
            if let Some(why) = not_unicast(*a) {
                return Err(Problem::new(
                    format!("{prefix}.dns[{i}]"),
                    format!("{a} is {why}: give a DNS server's unicast IPv4 address"),
                ));
            }
            if self.dns[..i].contains(a) {
                return Err(Problem::new(
                    format!("{prefix}.dns[{i}]"),
                    format!("{a} is given twice: the secondary must differ from the primary"),
                ));
            }
        }
        Ok(())
    }
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
