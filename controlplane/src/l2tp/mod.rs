//! L2TP control connections and sessions, both versions (L2TPv2 RFC 2661, L2TPv3 RFC 3931),
//! both roles, sans-IO.
//!
//! - [`registry`]: [`Registry`], the many-tunnel front end the I/O glue drives: datagrams in
//!   ([`Registry::handle_datagram`]), datagrams out ([`Registry::poll_transmit`]), timers
//!   ([`Registry::poll_timeout`], [`Registry::handle_timeout`]), commands and [`Event`]s.
//! - [`tunnel`]: one control connection (RFC 2661 §7.2, RFC 3931 §7.3) on top of
//!   [`crate::reliable::Channel`], and its sessions (RFC 2661 §7.4, RFC 3931 §7.4), in four
//!   files: `tunnel/mod.rs` (the control connection state machine), `tunnel/dispatch.rs`
//!   (control messages in — parsed, validated, dispatched — and out), `tunnel/session.rs`
//!   (where sessions are created and torn down) and `tunnel/recovery.rs` (RFC 4951: persisting,
//!   restoring and recovering a tunnel and its sessions).
//! - [`failover`]: RFC 4951 failover state — the records, the store, the events.
//! - [`auth`]: tunnel authentication (v2 Challenge Response, v3 Message Digest keys).
//! - [`ids`]: random tunnel and session IDs that avoid reusing recently freed ones (the random
//!   source itself is [`crate::random`]).
//! - [`config`]: serde-deserialisable configuration.

pub(crate) mod admission;
pub mod auth;
pub mod config;
pub mod failover;
pub mod ids;
pub mod registry;
pub mod tunnel;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use l2xdp_wire::datapath::SessionKey;
pub use l2xdp_wire::l2tp::header::{Cookie, Transport, Version};

pub use self::config::{FailoverConfig, L2tpConfig};
pub use self::failover::{FailoverEvent, RecoveryState, StateStore, StoreOp};
pub use self::registry::{RecoveryReport, Registry, RegistryFootprint};

/// A peer's transport address. Over IP (L2TPv3 only) the port is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Peer {
    /// Address (and UDP port).
    pub addr: SocketAddr,
    /// UDP or IP protocol 115.
    pub transport: Transport,
}

impl Peer {
    /// A peer over UDP.
    pub fn udp(addr: SocketAddr) -> Self {
        Peer {
            addr,
            transport: Transport::Udp,
        }
    }

    /// A peer over IP protocol 115 (the port is ignored and set to 0).
    pub fn ip(addr: std::net::IpAddr) -> Self {
        Peer {
            addr: SocketAddr::new(addr, 0),
            transport: Transport::Ip,
        }
    }
}

/// Our identifier of a control connection (the Tunnel ID / Control Connection ID we assigned).
pub type TunnelId = u32;

/// Incoming call (ICRQ/ICRP/ICCN) or outgoing call (OCRQ/OCRP/OCCN).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum CallKind {
    /// ICRQ, ICRP, ICCN (RFC 2661 §5.2.1 / RFC 3931 §3.2).
    #[default]
    Incoming,
    /// OCRQ, OCRP, OCCN (RFC 2661 §5.2.2).
    Outgoing,
}

/// Proxy LCP and authentication values (RFC 2661 §4.4.5): sent by a LAC in ICCN, captured by
/// an LNS and handed to PPP in [`SessionUp`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProxyValues {
    /// Initial Received LCP CONFREQ (options only).
    pub initial_received_confreq: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ.
    pub last_sent_confreq: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ.
    pub last_received_confreq: Option<Vec<u8>>,
    /// Proxy Authen Type ([`l2xdp_wire::l2tp::codes::ProxyAuthenType`]).
    pub authen_type: Option<u16>,
    /// Proxy Authen Name.
    pub authen_name: Option<Vec<u8>>,
    /// Proxy Authen Challenge.
    pub authen_challenge: Option<Vec<u8>>,
    /// Proxy Authen ID.
    pub authen_id: Option<u8>,
    /// Proxy Authen Response.
    pub authen_response: Option<Vec<u8>>,
}

impl ProxyValues {
    /// Whether nothing was given.
    pub fn is_empty(&self) -> bool {
        *self == ProxyValues::default()
    }
}

/// What the opener of a session says about the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallParams {
    /// Incoming or outgoing call.
    pub kind: CallKind,
    /// Calling Number (v2).
    pub calling_number: Vec<u8>,
    /// Called Number (v2; mandatory in OCRQ).
    pub called_number: Vec<u8>,
    /// Sub-Address (v2).
    pub sub_address: Vec<u8>,
    /// Remote End ID (v3).
    pub remote_end_id: Vec<u8>,
    /// PW type (v3); the configured default when `None`.
    pub pw_type: Option<u16>,
    /// Proxy LCP / authentication values a LAC sends in ICCN (v2).
    pub proxy: ProxyValues,
    /// Connect speed in bits/s (default 100 Mbit/s).
    pub connect_speed: Option<u64>,
}

/// A peer's Failover Capability (RFC 4951 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailoverCapability {
    /// C: control channel failover.
    pub control: bool,
    /// D: data channel failover.
    pub data: bool,
    /// Recovery Time, ms.
    pub recovery_time_ms: u32,
}

/// A Result Code with its optional Error Code and Error Message (RFC 2661 §4.4.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResultCode {
    /// StopCCN or CDN result.
    pub result: u16,
    /// General Error Code.
    pub error: Option<u16>,
    /// Error Message.
    pub message: String,
}

impl ResultCode {
    /// A result with an error code and message.
    pub fn new(result: u16, error: u16, message: impl Into<String>) -> Self {
        ResultCode {
            result,
            error: Some(error),
            message: message.into(),
        }
    }

    fn avp(&self) -> l2xdp_wire::l2tp::avp::Avp {
        l2xdp_wire::l2tp::avp::Avp::ResultCode {
            result: self.result,
            error: self.error,
            message: self.message.as_bytes().to_vec(),
        }
    }
}

/// Why a control connection went down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum TunnelDownReason {
    /// We sent a StopCCN with this result.
    Local(ResultCode),
    /// The peer sent a StopCCN with this result.
    Peer(ResultCode),
    /// The control channel failed (retransmissions exhausted).
    Timeout,
    /// Lost the tie breaker (RFC 2661 §4.4.3, RFC 3931 §5.4.3): the peer's connection survives.
    LostTieBreaker,
    /// RFC 4951 §3.2.1: the recovery of this restored tunnel failed; it was cleared silently
    /// (no StopCCN).
    RecoveryFailed(String),
}

/// A PPP Disconnect Cause Code (RFC 3145 §2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PppDisconnectCause {
    /// Disconnect Code ([`l2xdp_wire::l2tp::codes::PppDisconnectCode`]).
    pub code: u16,
    /// Control Protocol Number.
    pub protocol: u16,
    /// Direction.
    pub direction: u8,
    /// Message.
    pub message: String,
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum SessionDownReason {
    /// We sent a CDN.
    Local(ResultCode),
    /// The peer sent a CDN.
    Peer {
        /// Its Result Code.
        result: ResultCode,
        /// Its PPP Disconnect Cause, when given.
        ppp_cause: Option<PppDisconnectCause>,
    },
    /// The control connection went down.
    TunnelDown,
    /// RFC 4951 §3.3: cleared silently (no CDN) after a failover: not established at the
    /// failure (Step I), reported non-existent by the peer's FSR, or its tunnel's recovery
    /// failed.
    FailoverCleared,
}

/// Everything the fast path and PPP need about an established session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionUp {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// Our session ID.
    pub session: u32,
    /// L2TP version.
    pub version: Version,
    /// The tunnel's peer address and transport (as the caller gave it).
    pub peer: Peer,
    /// The peer's tunnel ID.
    pub peer_tunnel: u32,
    /// The peer's session ID.
    pub peer_session: u32,
    /// Our IDs (what arrives): the data plane's lookup key.
    pub our_ids: SessionKey,
    /// The peer's IDs (what we send).
    pub peer_ids: SessionKey,
    /// v3: the cookie we assigned (expected on received data).
    pub cookie_rx: Cookie,
    /// v3: the peer's cookie (sent on our data).
    pub cookie_tx: Cookie,
    /// v3: we asked for the default L2-Specific Sublayer on received data.
    pub sublayer_rx: bool,
    /// v3: the peer asked for the default L2-Specific Sublayer on data we send.
    pub sublayer_tx: bool,
    /// Sequencing requested on data we receive (v3 Data Sequencing we sent; v2 Sequencing
    /// Required we sent).
    pub sequencing_rx: bool,
    /// Sequencing requested on data we send (v3 peer's Data Sequencing > 0; v2 the LAC sent
    /// Sequencing Required).
    pub sequencing_tx: bool,
    /// v3 PW type.
    pub pw_type: Option<u16>,
    /// Incoming or outgoing call.
    pub call: CallKind,
    /// We sent the ICRQ/OCRQ.
    pub initiator: bool,
    /// Calling Number (v2).
    pub calling_number: Vec<u8>,
    /// Called Number (v2).
    pub called_number: Vec<u8>,
    /// Sub-Address (v2).
    pub sub_address: Vec<u8>,
    /// Remote End ID (v3).
    pub remote_end_id: Vec<u8>,
    /// Private Group ID (v2).
    pub private_group_id: Vec<u8>,
    /// Proxy LCP and authentication values from the LAC (v2); `None` when it sent none.
    /// Boxed: most LACs send none, and a node holds a million of these.
    #[serde(serialize_with = "serialize_proxy")]
    pub proxy: Option<Box<ProxyValues>>,
    /// Tx connect speed the peer reported, bits/s.
    pub tx_connect_speed: Option<u64>,
    /// Rx connect speed the peer reported, bits/s.
    pub rx_connect_speed: Option<u64>,
}

/// [`SessionUp::proxy`] serialized as before it was optional: empty values when none.
fn serialize_proxy<S: serde::Serializer>(
    p: &Option<Box<ProxyValues>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&p.as_deref().cloned().unwrap_or_default(), s)
}

/// Something the control plane tells its user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Event {
    /// A control connection reached the established state.
    TunnelUp {
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// The peer.
        peer: Peer,
        /// Version.
        version: Version,
        /// The peer's tunnel ID.
        peer_tunnel: u32,
        /// The peer's Host Name.
        peer_host_name: Vec<u8>,
        /// The peer's Failover Capability (RFC 4951 §5.1), when it sent one.
        failover: Option<FailoverCapability>,
    },
    /// A control connection went down (its sessions got [`Event::SessionDown`] first).
    TunnelDown {
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// The peer.
        peer: Peer,
        /// Why.
        reason: TunnelDownReason,
    },
    /// A session is established.
    SessionUp(Box<SessionUp>),
    /// A session went down (only for sessions that were up or being set up).
    SessionDown {
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Our session ID.
        session: u32,
        /// The peer's session ID (0 if never learnt).
        peer_session: u32,
        /// Whether it had been up ([`Event::SessionUp`] was emitted).
        was_up: bool,
        /// Why.
        reason: SessionDownReason,
    },
    /// WEN or SLI received for a session (RFC 2661 §6.14, §6.15; RFC 3931 §6.14, §6.15).
    LinkInfo {
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Our session ID.
        session: u32,
        /// WEN or SLI.
        message: l2xdp_wire::l2tp::message::MessageType,
        /// The message's AVPs after the Message Type.
        avps: Vec<l2xdp_wire::l2tp::avp::Avp>,
    },
}

/// Counters of the control plane.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Control messages delivered in order, by type ("ZLB" and "ACK" count acknowledgements).
    pub messages_in: BTreeMap<&'static str, u64>,
    /// Control messages queued for sending, by type (retransmissions not included).
    pub messages_out: BTreeMap<&'static str, u64>,
    /// Invalid or dropped messages by reason.
    pub invalid: BTreeMap<String, u64>,
    /// Retransmissions (all tunnels, including closed ones).
    pub retransmissions: u64,
    /// Tunnels established.
    pub tunnels_up: u64,
    /// Sessions established.
    pub sessions_up: u64,
    /// RFC 4951 failover steps by name (recovery tunnels, resets, FSQ/FSR, clearances).
    pub failover: BTreeMap<&'static str, u64>,
    /// What became of SCCRQs and half-open tunnels under the admission limits, by outcome.
    pub admission: BTreeMap<&'static str, u64>,
}

impl Counters {
    pub(crate) fn count_failover(&mut self, what: &'static str) {
        *self.failover.entry(what).or_default() += 1;
    }

    pub(crate) fn count_admission(&mut self, what: &'static str) {
        *self.admission.entry(what).or_default() += 1;
    }

    pub(crate) fn count_invalid(&mut self, why: impl Into<String>) {
        *self.invalid.entry(why.into()).or_default() += 1;
    }
}

/// Errors of the commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum L2tpError {
    /// No such tunnel (or it is closing).
    #[error("no tunnel {0}")]
    NoTunnel(TunnelId),
    /// No such session.
    #[error("no session {session} in tunnel {tunnel}")]
    NoSession {
        /// Tunnel.
        tunnel: TunnelId,
        /// Session.
        session: u32,
    },
    /// The tunnel is not established yet.
    #[error("tunnel {0} is not established")]
    NotEstablished(TunnelId),
    /// A limit was reached or no ID is free.
    #[error("resource limit: {0}")]
    Limit(&'static str),
    /// A tunnel is being recovered (RFC 4951 §3.2.2: no new sessions before Step I).
    #[error("tunnel {0} is being recovered")]
    Recovering(TunnelId),
    /// The persisted failover state cannot be used.
    #[error("recovery state: {0}")]
    BadState(String),
    /// L2TPv2 runs over UDP only.
    #[error("L2TPv2 runs over UDP only")]
    BadTransport,
}
