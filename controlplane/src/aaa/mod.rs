//! AAA through RADIUS: the client the LNS authenticates subscribers with (RFC 2865) and sends
//! accounting to (RFC 2866).
//!
//! - [`client`]: [`RadiusClient`], several servers by priority with retransmission, failover,
//!   dead-server detection and revival, per-request timeouts and a bound on outstanding
//!   requests. Every Access-Request carries a Message-Authenticator and every Access-* response
//!   must carry a valid one (the CVE-2024-3596 "Blast-RADIUS" mitigation); responses are
//!   matched by source, Identifier and Response Authenticator, and anything else is dropped
//!   and counted ([`DropCounters`]).
//! - [`request`]: what an authentication asks ([`AccessRequest`]: PAP, CHAP-MD5, MS-CHAPv2
//!   and the L2TP-side attributes) and what an Access-Accept grants ([`AccessAccept`]).
//! - [`config`]: the servers, secrets, timeouts and NAS identity (`[radius]`).
//! - [`metrics`]: its Prometheus series.
//!
//! Wire format and cryptography are `l2xdp_wire::radius`; Request Authenticators come from the
//! node's CSPRNG ([`crate::random::Random`], RFC 2865 §3: "SHOULD exhibit global and temporal
//! uniqueness" and be unpredictable).

pub mod client;
pub mod config;
pub mod metrics;
pub mod request;

#[cfg(test)]
mod tests;

pub use client::{AaaError, DropCounters, RadiusClient, ServerState, ServerStatus};
pub use config::{RadiusConfig, ServerConfig};
pub use request::{AccessAccept, AccessOutcome, AccessRequest, Credential};
