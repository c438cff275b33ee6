//! Configuration of the L2TP control plane (deserialised from the daemon's TOML by others).

use std::time::Duration;

use serde::Deserialize;

use crate::config_file::Problem;
use crate::reliable::{ReliableConfig, MAX_DURATION, MAX_WINDOW};

/// Settings of this node's control connections and sessions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L2tpConfig {
    /// Host Name AVP (RFC 2661 §4.4.3, RFC 3931 §5.4.3).
    pub host_name: String,
    /// Router ID AVP (L2TPv3, RFC 3931 §5.4.3).
    pub router_id: u32,
    /// Vendor Name AVP.
    pub vendor_name: String,
    /// Firmware Revision AVP (L2TPv2).
    pub firmware_revision: u16,
    /// The shared secret: enables tunnel authentication (v2 Challenge, RFC 2661 §5.1.1; v3
    /// Message Digest, RFC 3931 §4.3) and AVP hiding (RFC 2661 §4.3).
    pub secret: Option<String>,
    /// Hide AVPs (needs `secret`); which ones: [`HiddenAvps`].
    pub hide_avps: bool,
    /// Which AVPs to hide when `hide_avps` is on.
    pub hidden: HiddenAvps,
    /// Our Receive Window Size (RFC 2661 §5.8).
    pub receive_window: u16,
    /// Retransmission timers (passed to [`ReliableConfig`]).
    pub retransmit: RetransmitConfig,
    /// Send a HELLO after this many seconds without hearing from the peer (RFC 2661 §6.5).
    pub hello_interval_secs: u64,
    /// Our RFC 4951 Failover Capability; `None` sends no Failover Capability AVP.
    pub failover: Option<FailoverConfig>,
    /// RFC 4951 §8: the addresses a recovery SCCRQ may come from. Empty: only the old
    /// tunnel's peer address.
    pub recovery_peers: Vec<std::net::IpAddr>,
    /// Resource limits.
    pub limits: Limits,
    /// Pseudowire defaults (L2TPv3) and v2 session options.
    pub pseudowire: PseudowireConfig,
    /// L2TPv2: ask the LAC for sequenced data (Sequencing Required AVP in ICCN/OCCN we send).
    pub sequencing_required: bool,
    /// Transparent resume after a restart (default on; needs `[l2tp.failover]` with C for the
    /// state store): each tunnel's sequence state is persisted and a restarted l2xdpd goes on
    /// with the same control connections, whatever the peer implements; RFC 4951 recovery
    /// (with a peer that negotiated it) and a StopCCN are the fall-backs. Off: every restart
    /// recovers with RFC 4951 or tears down.
    pub resume: bool,
}

impl Default for L2tpConfig {
    fn default() -> Self {
        L2tpConfig {
            host_name: "l2xdp".into(),
            router_id: 1,
            vendor_name: "l2xdp".into(),
            firmware_revision: 0x0100,
            secret: None,
            hide_avps: false,
            hidden: HiddenAvps::default(),
            receive_window: crate::reliable::DEFAULT_WINDOW,
            retransmit: RetransmitConfig::default(),
            hello_interval_secs: 60,
            failover: None,
            recovery_peers: Vec::new(),
            limits: Limits::default(),
            pseudowire: PseudowireConfig::default(),
            sequencing_required: false,
            resume: true,
        }
    }
}

impl L2tpConfig {
    /// The reliable-delivery settings of one control channel.
    pub fn reliable(&self) -> ReliableConfig {
        ReliableConfig {
            initial_timeout: Duration::from_millis(self.retransmit.initial_timeout_ms.max(1)),
            max_timeout: Duration::from_millis(self.retransmit.max_timeout_ms.max(1)),
            max_retries: self.retransmit.max_retries,
            ack_delay: Duration::from_millis(self.retransmit.ack_delay_ms),
            receive_window: self.receive_window.max(1),
            hold: Duration::ZERO,
        }
    }

    /// The HELLO interval.
    pub fn hello_interval(&self) -> Duration {
        Duration::from_secs(self.hello_interval_secs.max(1))
    }

    /// The secret as bytes, when configured and non-empty.
    pub fn secret_bytes(&self) -> Option<&[u8]> {
        self.secret
            .as_deref()
            .map(str::as_bytes)
            .filter(|s| !s.is_empty())
    }

    /// Whether established tunnels and sessions are persisted for recovery: our Failover
    /// Capability has the C bit (RFC 4951 §5.1).
    pub fn persists(&self) -> bool {
        self.failover.is_some_and(|f| f.control)
    }

    /// One full retransmission cycle: the time from the first transmission until the channel
    /// gives up (RFC 2661 §5.7: state is kept this long after a StopCCN).
    pub fn retransmission_cycle(&self) -> Duration {
        let r = self.reliable();
        let mut rto = r.initial_timeout;
        let mut total = Duration::ZERO;
        for _ in 0..=r.max_retries.min(64) {
            total += rto;
            rto = (rto * 2).min(r.max_timeout);
        }
        total
    }
}

/// Which AVPs are hidden (RFC 2661 §4.3) when hiding is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HiddenAvps {
    /// Proxy Authen Name / Challenge / Response (RFC 2661 §4.4.5).
    pub proxy_authen: bool,
    /// Assigned Cookie (RFC 3931 §5.4.4).
    pub assigned_cookie: bool,
    /// Calling and Called Number.
    pub calling_number: bool,
    /// Assigned Session ID (L2TPv2).
    pub session_id: bool,
}

impl Default for HiddenAvps {
    fn default() -> Self {
        HiddenAvps {
            proxy_authen: true,
            assigned_cookie: true,
            calling_number: false,
            session_id: false,
        }
    }
}

/// Retransmission settings (RFC 2661 §5.8; defaults 1 s doubling to 8 s, 5 retries — a full
/// retransmission cycle of 31 s. RFC 3931 §4.2 recommends 10 retries: raise `max_retries` for
/// lossy access networks, at the cost of noticing a dead peer later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetransmitConfig {
    /// First retransmission timeout.
    pub initial_timeout_ms: u64,
    /// Cap of the exponential back-off.
    pub max_timeout_ms: u64,
    /// Retransmissions before the channel fails.
    pub max_retries: u32,
    /// Delay of a ZLB acknowledgement.
    pub ack_delay_ms: u64,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        let d = ReliableConfig::default();
        RetransmitConfig {
            initial_timeout_ms: d.initial_timeout.as_millis() as u64,
            max_timeout_ms: d.max_timeout.as_millis() as u64,
            max_retries: d.max_retries,
            ack_delay_ms: d.ack_delay.as_millis() as u64,
        }
    }
}

/// Our Failover Capability AVP (RFC 4951 §5.1). C and D are never both 0 (refused by
/// [`L2tpConfig::check`]). Fields left out of `[l2tp.failover]` take the defaults: C and D set,
/// a Recovery Time of 10 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverConfig {
    /// C: control channel failover supported.
    pub control: bool,
    /// D: data channel (silent) failover supported.
    pub data: bool,
    /// Recovery Time in milliseconds: how long the peer waits for our recovery (0: no extra
    /// time, RFC 4951 §5.1).
    pub recovery_time_ms: u32,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: 10_000,
        }
    }
}

/// The longest value an AVP can carry: a 10-bit Length (RFC 2661 §4.1) less the 6-byte header.
pub const MAX_AVP_VALUE: usize = 1023 - 6;

/// The largest Recovery Time accepted: an hour (RFC 4951 §5.1 asks the peer to keep our
/// tunnels this long; more is a typo).
pub const MAX_RECOVERY_TIME_MS: u32 = 3_600_000;

/// The smallest cap of the retransmission back-off (RFC 2661 §5.8: "MUST be no less than 8
/// seconds").
pub const MIN_MAX_TIMEOUT_MS: u64 = 8_000;

/// The largest tunnel or session count: 32-bit IDs (RFC 3931 §3.2.1, §4.1) with 0 reserved.
/// L2TPv2's IDs are 16-bit (RFC 2661 §3.1): beyond 65,535 only L2TPv3 can use the room.
pub const MAX_IDS: usize = u32::MAX as usize;

impl L2tpConfig {
    /// The checks a type cannot express; `prefix` is the section's dotted path (`l2tp`).
    pub fn check(&self, prefix: &str) -> Result<(), Problem> {
        let f = |name: &str| format!("{prefix}.{name}");
        let max_ms = MAX_DURATION.as_millis() as u64;
        if self.host_name.is_empty() || self.host_name.len() > MAX_AVP_VALUE {
            return Err(Problem::new(
                f("host_name"),
                format!("the Host Name must be 1 to {MAX_AVP_VALUE} bytes (RFC 2661 §4.4.3: at least 1 octet; one AVP)"),
            ));
        }
        if self.vendor_name.len() > MAX_AVP_VALUE {
            return Err(Problem::new(
                f("vendor_name"),
                format!("the Vendor Name must be at most {MAX_AVP_VALUE} bytes (one AVP)"),
            ));
        }
        if self.router_id == 0 {
            return Err(Problem::new(
                f("router_id"),
                "0: the Router ID identifies this LCCE (RFC 3931 §5.4.3) and must be non-zero and unique",
            ));
        }
        if let Some(secret) = &self.secret {
            if secret.is_empty() {
                return Err(Problem::new(
                    f("secret"),
                    "empty: an empty secret would silently mean no tunnel authentication; give the shared secret, or remove the line for none",
                ));
            }
            if secret.len() > MAX_AVP_VALUE {
                return Err(Problem::new(
                    f("secret"),
                    format!("{} bytes: at most {MAX_AVP_VALUE}", secret.len()),
                ));
            }
        }
        if self.hide_avps && self.secret_bytes().is_none() {
            return Err(Problem::new(
                f("hide_avps"),
                format!("hiding AVPs needs {prefix}.secret (RFC 2661 §4.3)"),
            ));
        }
        if self.receive_window == 0 || self.receive_window > MAX_WINDOW {
            return Err(Problem::new(
                f("receive_window"),
                format!(
                    "{}: must be 1 to {MAX_WINDOW} (RFC 2661 §5.8: 0 is invalid; default {})",
                    self.receive_window,
                    crate::reliable::DEFAULT_WINDOW
                ),
            ));
        }
        let r = &self.retransmit;
        let rf = |name: &str| format!("{prefix}.retransmit.{name}");
        if r.initial_timeout_ms == 0 || r.initial_timeout_ms > max_ms {
            return Err(Problem::new(
                rf("initial_timeout_ms"),
                format!(
                    "{}: must be 1 to {max_ms} ms (RFC 2661 §5.8 recommends 1000)",
                    r.initial_timeout_ms
                ),
            ));
        }
        if r.max_timeout_ms < MIN_MAX_TIMEOUT_MS || r.max_timeout_ms > max_ms {
            return Err(Problem::new(
                rf("max_timeout_ms"),
                format!("{}: must be {MIN_MAX_TIMEOUT_MS} to {max_ms} ms (RFC 2661 §5.8: the cap MUST be no less than 8 seconds)", r.max_timeout_ms),
            ));
        }
        if r.initial_timeout_ms > r.max_timeout_ms {
            return Err(Problem::new(
                rf("initial_timeout_ms"),
                format!(
                    "{} is above max_timeout_ms {}: the back-off starts below its cap",
                    r.initial_timeout_ms, r.max_timeout_ms
                ),
            ));
        }
        if r.max_retries == 0 || r.max_retries > 64 {
            return Err(Problem::new(
                rf("max_retries"),
                format!(
                    "{}: must be 1 to 64 (RFC 2661 §5.8 recommends 5, RFC 3931 §4.2 10)",
                    r.max_retries
                ),
            ));
        }
        if r.ack_delay_ms >= r.initial_timeout_ms {
            return Err(Problem::new(
                rf("ack_delay_ms"),
                format!("{} is not below initial_timeout_ms {}: the peer would retransmit before we acknowledge", r.ack_delay_ms, r.initial_timeout_ms),
            ));
        }
        if self.hello_interval_secs == 0 || self.hello_interval_secs > MAX_DURATION.as_secs() {
            return Err(Problem::new(
                f("hello_interval_secs"),
                format!(
                    "{}: must be 1 to {} s (RFC 2661 §6.5; default 60)",
                    self.hello_interval_secs,
                    MAX_DURATION.as_secs()
                ),
            ));
        }
        if let Some(fo) = &self.failover {
            if !fo.control && !fo.data {
                return Err(Problem::new(
                    f("failover"),
                    "control and data cannot both be false (RFC 4951 §5.1); remove the section to advertise no failover",
                ));
            }
            if fo.recovery_time_ms > MAX_RECOVERY_TIME_MS {
                return Err(Problem::new(
                    f("failover.recovery_time_ms"),
                    format!(
                        "{}: at most {MAX_RECOVERY_TIME_MS} ms (an hour; RFC 4951 §5.1)",
                        fo.recovery_time_ms
                    ),
                ));
            }
        }
        for (i, a) in self.recovery_peers.iter().enumerate() {
            if a.is_unspecified() || a.is_multicast() {
                return Err(Problem::new(
                    format!("{prefix}.recovery_peers[{i}]"),
                    format!("{a} is not a peer's unicast address (RFC 4951 §8)"),
                ));
            }
            if self.recovery_peers[..i].contains(a) {
                return Err(Problem::new(
                    format!("{prefix}.recovery_peers[{i}]"),
                    format!("{a} is listed twice"),
                ));
            }
        }
        let l = &self.limits;
        for (name, v) in [
            ("max_tunnels", l.max_tunnels),
            ("max_sessions_per_tunnel", l.max_sessions_per_tunnel),
        ] {
            if v == 0 || v > MAX_IDS {
                return Err(Problem::new(
                    format!("{prefix}.limits.{name}"),
                    format!("{v}: must be 1 to {MAX_IDS} (0 would refuse every peer; IDs are at most 32-bit, RFC 3931 §4.1)"),
                ));
            }
        }
        self.pseudowire.check(&f("pseudowire"))
    }
}

/// Resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Control connections; an SCCRQ beyond is answered with StopCCN (2, error 4).
    pub max_tunnels: usize,
    /// Sessions in one control connection; an ICRQ/OCRQ beyond is answered with CDN (4, 4).
    pub max_sessions_per_tunnel: usize,
    /// Half-open control connections (SCCRQ answered, SCCCN not yet), all sources: when full,
    /// the oldest one whose peer never acknowledged our SCCRP is dropped for the new one.
    pub max_half_open: usize,
    /// Half-open control connections from one source address; an SCCRQ beyond is answered
    /// with one StopCCN (2, error 4) and leaves no state.
    pub max_half_open_per_source: usize,
    /// A half-open control connection is dropped silently after this long (milliseconds;
    /// never less than one retransmission cycle).
    pub half_open_timeout_ms: u64,
    /// New control connections per second from one source address (token bucket); an SCCRQ
    /// beyond is dropped without an answer. 0: no limit.
    pub sccrq_per_source_per_sec: u32,
    /// The token bucket's depth: SCCRQs one source may send at once.
    pub sccrq_per_source_burst: u32,
    /// Source addresses whose rate is tracked (least recently seen forgotten first).
    pub rate_limit_sources: usize,
    /// XDP mode: SCCRQs (control messages to tunnel 0) the fast path passes to l2xdpd per
    /// second, all sources together; beyond, XDP drops them before user space and counts
    /// them (`l2xdp_fastpath_sccrq_over_budget_total`). 0: no budget. A flood from spoofed
    /// sources defeats the per-source limits above; this one bounds l2xdpd's CPU.
    pub xdp_sccrq_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tunnels: 16_384,
            max_sessions_per_tunnel: 65_535,
            max_half_open: 1_024,
            max_half_open_per_source: 256,
            half_open_timeout_ms: 10_000,
            sccrq_per_source_per_sec: 100,
            sccrq_per_source_burst: 1_000,
            rate_limit_sources: 8_192,
            xdp_sccrq_per_sec: 10_000,
        }
    }
}

/// The L2-Specific Sublayer we ask for (RFC 3931 §5.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sublayer {
    /// Type 0: no sublayer.
    None,
    /// Type 1: the default L2-Specific Sublayer (RFC 3931 §4.6).
    Default,
}

impl Sublayer {
    /// The L2-Specific Sublayer Type value.
    pub fn value(self) -> u16 {
        match self {
            Sublayer::None => 0,
            Sublayer::Default => 1,
        }
    }
}

/// Pseudowire defaults (L2TPv3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PseudowireConfig {
    /// Pseudowire types we accept (Pseudowire Capabilities List); Ethernet = 5 (RFC 4719).
    pub capabilities: Vec<u16>,
    /// The PW type of sessions we open.
    pub pw_type: u16,
    /// Length of the random cookie we assign: 0, 4 or 8.
    pub cookie_len: u8,
    /// The sublayer we require on received data.
    pub sublayer: Sublayer,
    /// Data Sequencing level we require (0 none, 1 non-IP, 2 all).
    pub data_sequencing: u16,
}

impl Default for PseudowireConfig {
    fn default() -> Self {
        PseudowireConfig {
            capabilities: vec![PW_ETHERNET],
            pw_type: PW_ETHERNET,
            cookie_len: 0,
            sublayer: Sublayer::Default,
            data_sequencing: 0,
        }
    }
}

impl PseudowireConfig {
    /// The checks of `[l2tp.pseudowire]` (`prefix` is its dotted path).
    pub fn check(&self, prefix: &str) -> Result<(), Problem> {
        let f = |name: &str| format!("{prefix}.{name}");
        if self.capabilities.is_empty() {
            return Err(Problem::new(
                f("capabilities"),
                "empty: no pseudowire type could be accepted; give at least one (5: Ethernet, RFC 4719)",
            ));
        }
        for (i, t) in self.capabilities.iter().enumerate() {
            if *t == 0 || self.capabilities[..i].contains(t) {
                return Err(Problem::new(
                    format!("{prefix}.capabilities[{i}]"),
                    format!("{t}: each PW type must be non-zero and listed once (RFC 3931 §5.4.3)"),
                ));
            }
        }
        if !self.capabilities.contains(&self.pw_type) {
            return Err(Problem::new(
                f("pw_type"),
                format!(
                    "{} is not in capabilities {:?}: we would open sessions of a type we refuse",
                    self.pw_type, self.capabilities
                ),
            ));
        }
        if !matches!(self.cookie_len, 0 | 4 | 8) {
            return Err(Problem::new(
                f("cookie_len"),
                format!(
                    "{}: a cookie is 0 (none), 4 or 8 bytes (RFC 3931 §4.1, §5.4.4)",
                    self.cookie_len
                ),
            ));
        }
        if self.data_sequencing > 2 {
            return Err(Problem::new(
                f("data_sequencing"),
                format!(
                    "{}: 0 (none), 1 (non-IP frames) or 2 (all) (RFC 3931 §5.4.4)",
                    self.data_sequencing
                ),
            ));
        }
        Ok(())
    }
}

/// Pseudowire type Ethernet (RFC 4719 §2).
pub const PW_ETHERNET: u16 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_of_defaults_is_1_2_4_8_8_8() {
        assert_eq!(
            L2tpConfig::default().retransmission_cycle(),
            Duration::from_secs(31)
        );
    }
}
