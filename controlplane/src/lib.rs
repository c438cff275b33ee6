//! l2xdp-controlplane: `l2xdpd`, the L2TP control plane (control connections, sessions, PPP
//! termination, RFC 4951 failover).
//!
//! Not built yet: the control-plane issue fills this crate.
