//! PPP termination for the LNS and the matching client (the subscriber emulator), as sans-IO
//! state machines.
//!
//! A [`Link`] is one PPP session as carried in L2TPv2 data messages (RFC 2661 §3.1): it goes
//! through the phases of RFC 1661 §3.2 (Dead, Establish, Authenticate, Network, Terminate) in
//! either [`Role`]. The caller (the L2TP I/O glue)
//!
//! - feeds it every PPP frame the fast path hands up ([`Link::handle_frame`]) and expired
//!   deadlines ([`Link::handle_timeout`]), with the current time,
//! - drains whole PPP frames to send ([`Link::poll_transmit`]) and [`Event`]s
//!   ([`Link::poll_event`]) until they return `None`,
//! - and sleeps until [`Link::poll_timeout`] (one deadline per link).
//!
//! Modules: [`fsm`] (the RFC 1661 §4 automaton shared by LCP, IPCP, IPv6CP), `negotiate`
//! (driving it with wire-crate packets), `lcp`, `ipcp`, `ipv6cp` (the options of each
//! protocol), `auth` (PAP and CHAP-MD5), [`users`] (credentials and the users file),
//! [`pool`] (IPv4 address pools), [`config`] and `link`.
//!
//! Randomness (Magic-Numbers, CHAP Challenges, Interface-Identifiers) comes from the
//! [`crate::random::Random`] the caller passes in: the node's CSPRNG in production (CHAP
//! Challenges must be unpredictable, RFC 1994 §2.3), a seeded one in tests.

pub mod config;
pub mod fsm;
pub mod pool;
pub mod users;

mod auth;
mod ipcp;
mod ipv6cp;
mod lcp;
mod link;
mod negotiate;

#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

pub use config::{AuthMethod, IpcpConfig, Ipv6cpConfig, PppConfig};
pub use fsm::State;
pub use lcp::DEFAULT_MRU;
pub use link::{Link, Proxy, ProxyAuthType};
pub use pool::{Ipv4Pool, Ipv4Range, PoolError};
pub use users::{Credentials, ExternalCredentials, MemoryCredentials, UserEntry, UsersFileError};

/// Which end of the PPP link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Role {
    /// The LNS: requests authentication, verifies it, assigns addresses.
    Server,
    /// The subscriber (emulator): authenticates, takes the addresses it is given.
    Client,
}

/// The link phases of RFC 1661 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Phase {
    /// Link Dead: finished (or not started).
    Dead,
    /// Link Establishment: LCP negotiating.
    Establish,
    /// Authentication.
    Authenticate,
    /// Network-Layer Protocol: NCPs negotiating or open.
    Network,
    /// Link Termination.
    Terminate,
}

/// Why a link went down (or is closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, thiserror::Error)]
pub enum DownReason {
    /// [`Link::close`] was called by the operator or the daemon.
    #[error("closed administratively")]
    Administrative,
    /// The L2TP session carrying the link went away ([`Link::lower_down`]).
    #[error("lower layer down")]
    LowerLayerDown,
    /// The peer sent an LCP Terminate-Request.
    #[error("terminated by the peer")]
    PeerTerminated,
    /// LCP did not converge within Max-Configure, or the peer Rejected a code we need.
    #[error("LCP negotiation failed")]
    LcpFailed,
    /// No authentication protocol both sides accept.
    #[error("no acceptable authentication protocol")]
    AuthNotAgreed,
    /// The peer failed authentication.
    #[error("authentication failed")]
    AuthFailed,
    /// The peer did not complete authentication in time.
    #[error("authentication timed out")]
    AuthTimeout,
    /// No free address in the pool.
    #[error("address pool exhausted")]
    PoolExhausted,
    /// The subscriber's fixed address is leased to another session.
    #[error("fixed address already in use")]
    AddressInUse,
    /// Every NCP failed or was rejected.
    #[error("no network protocols running")]
    NoNetworkProtocols,
    /// Echo-Requests went unanswered.
    #[error("peer not answering LCP Echo-Requests")]
    DeadPeer,
    /// The Session-Timeout the authentication server set has passed (RFC 2865 §5.27).
    #[error("session timeout")]
    SessionTimeout,
    /// No packet from the subscriber for the Idle-Timeout the server set (RFC 2865 §5.28).
    #[error("idle timeout")]
    IdleTimeout,
    /// The link appears to be looped back (RFC 1661 §6.4).
    #[error("link looped back")]
    LoopedBack,
}

/// What the network layer came up with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkUp {
    /// The authenticated user (server: the peer's name; client: our own); `None` without
    /// authentication.
    pub user: Option<String>,
    /// Our IPv4 address as agreed in IPCP (server: its `local_address`; client: the address
    /// it was assigned).
    pub local_ipv4: Option<Ipv4Addr>,
    /// The peer's IPv4 address (server: the subscriber's assigned address; client: the
    /// server's address).
    pub peer_ipv4: Option<Ipv4Addr>,
    /// Primary and secondary DNS (server: what the subscriber accepted; client: what it got).
    pub dns: [Option<Ipv4Addr>; 2],
    /// IPv6CP Interface-Identifiers (ours, the peer's), when IPv6CP opened. The peer's is
    /// zero when it sent none.
    pub ipv6: Option<([u8; 8], [u8; 8])>,
    /// The MRU the peer announced: the largest frame we may send it.
    pub peer_mru: u16,
    /// The MRU the peer acknowledged for us.
    pub local_mru: u16,
    /// Our Magic-Number (0 if not negotiated).
    pub local_magic: u32,
    /// The peer's Magic-Number (0 if not negotiated).
    pub peer_magic: u32,
    /// We may send frames with a one-byte Protocol field (the peer asked for PFC).
    pub pfc: bool,
    /// We may send frames without Address/Control (the peer asked for ACFC).
    pub acfc: bool,
}

/// What an Up link agreed: enough to rebuild it in a restarted control plane without
/// renegotiating ([`Link::restore_server`], [`Link::restore_client`]). RFC 4951 recovers the
/// L2TP session; this keeps the PPP session inside it alive: the subscriber's Echo-Requests are
/// answered with the same Magic-Number, its address stays its own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkState {
    /// The authenticated user (server: the peer's name; client: our own).
    pub user: Option<String>,
    /// Our IPv4 address as agreed in IPCP; with `peer_ipv4`, `None` when IPCP was not open.
    pub local_ipv4: Option<Ipv4Addr>,
    /// The peer's IPv4 address (server: the subscriber's).
    pub peer_ipv4: Option<Ipv4Addr>,
    /// Primary and secondary DNS as agreed.
    pub dns: [Option<Ipv4Addr>; 2],
    /// IPv6CP Interface-Identifiers (ours, the peer's), when IPv6CP was open.
    pub ipv6: Option<([u8; 8], [u8; 8])>,
    /// Our Magic-Number (0 if not negotiated).
    pub local_magic: u32,
    /// The peer's Magic-Number (0 if not negotiated).
    pub peer_magic: u32,
    /// The MRU the peer acknowledged for us.
    pub local_mru: u16,
    /// The MRU the peer announced.
    pub peer_mru: u16,
    /// We may send PFC frames.
    pub pfc: bool,
    /// We may send ACFC frames.
    pub acfc: bool,
    /// The authentication protocol agreed in LCP.
    pub auth: Option<AuthMethod>,
}

impl LinkState {
    /// The values as [`Event::Up`] reports them.
    pub fn link_up(&self) -> LinkUp {
        LinkUp {
            user: self.user.clone(),
            local_ipv4: self.local_ipv4,
            peer_ipv4: self.peer_ipv4,
            dns: self.dns,
            ipv6: self.ipv6,
            peer_mru: self.peer_mru,
            local_mru: self.local_mru,
            local_magic: self.local_magic,
            peer_magic: self.peer_magic,
            pfc: self.pfc,
            acfc: self.acfc,
        }
    }
}

/// What a link reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Event {
    /// Every configured NCP is open (or was rejected/failed while at least one opened): the
    /// fast path can carry the subscriber's traffic.
    Up(LinkUp),
    /// The network layer went down but the link lives on (LCP or an NCP is renegotiating,
    /// RFC 1661 §4.3): remove the fast-path entry; an `Up` follows when it is back.
    NetworkDown,
    /// External credentials: the peer's proof, to be verified (RADIUS); the answer goes to
    /// [`Link::auth_answer`].
    AuthRequest {
        /// The PAP Peer-ID or CHAP Name.
        user: String,
        /// The proof.
        credential: crate::aaa::Credential,
    },
    /// Authentication failed (the link then terminates with `Down`).
    AuthFailed {
        /// The name the peer gave (server), or ours (client).
        user: Option<String>,
    },
    /// The link is dead: terminate the L2TP session. Always the last event.
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// Per-link counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Frames given to [`Link::handle_frame`].
    pub frames_in: u64,
    /// Frames returned by [`Link::poll_transmit`].
    pub frames_out: u64,
    /// Frames that failed to parse (framing, or the control packet inside).
    pub malformed: u64,
    /// Well-formed frames silently discarded (wrong phase, unexpected, data frames).
    pub discarded: u64,
    /// Configure-Ack/Nak/Reject with a wrong Identifier or options (RFC 1661 §5.2-§5.4).
    pub bad_replies: u64,
    /// Retransmitted Configure-Requests re-acknowledged in Opened (our Ack was lost).
    pub duplicate_requests: u64,
    /// Code-Rejects sent (RFC 1661 §5.6).
    pub code_rejects_sent: u64,
    /// LCP Protocol-Rejects sent (RFC 1661 §5.7).
    pub protocol_rejects_sent: u64,
    /// Configure-Requests, Terminate-Requests, Challenges and PAP requests sent again on timeout.
    pub retransmissions: u64,
    /// LCP Echo-Requests sent.
    pub echo_requests_sent: u64,
    /// LCP Echo-Replies received (from a peer with another magic number).
    pub echo_replies_received: u64,
    /// Authentication failures.
    pub auth_failures: u64,
    /// Times the network layer went down while the link stayed (renegotiations).
    pub renegotiations: u64,
    /// Frames dropped because the transmit queue was full (the caller did not drain it).
    pub tx_dropped: u64,
    /// Packets the wire crate refused to emit (too long).
    pub emit_errors: u64,
    /// ICMPv6 Echo Replies sent: pings of our link-local address (RFC 4443 §4.2).
    pub echo6_replies: u64,
}

/// The links' random source (Magic-Numbers, CHAP Challenges, Interface-Identifiers).
pub(crate) use crate::random::Random as Rng;
