//! Configuration of the L2TP control plane (deserialised from the daemon's TOML by others).

use std::time::Duration;

use serde::Deserialize;

use crate::reliable::ReliableConfig;

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

/// Our Failover Capability AVP (RFC 4951 §5.1). C and D are never both 0: such a
/// configuration sends no AVP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// C: control channel failover supported.
    pub control: bool,
    /// D: data channel (silent) failover supported.
    pub data: bool,
    /// Recovery Time in milliseconds.
    pub recovery_time_ms: u32,
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
