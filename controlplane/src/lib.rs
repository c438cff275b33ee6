//! l2xdp-controlplane: `l2xdpd`, the L2TP control plane (control connections, sessions, PPP
//! termination, RFC 4951 failover).
//!
//! - [`reliable`]: the sans-IO reliable delivery engine of one control channel (RFC 2661 §5.8 and
//!   Appendix A, RFC 3931 §4.2): Ns/Nr, the sliding window with slow start and congestion
//!   avoidance, retransmission with exponential back-off, in-order delivery, delayed ZLB
//!   acknowledgements, and the RFC 4951 hooks (sequence reset, hold before failure).
//!
//! - [`l2tp`]: the L2TP control connection and session state machines (RFC 2661, RFC 3931),
//!   both roles, sans-IO, and the [`l2tp::Registry`] that drives many of them.
//!
//! Not built yet: PPP termination and the daemon.

pub mod l2tp;
pub mod reliable;
