//! l2xdp-controlplane: `l2xdpd`, the L2TP control plane (control connections, sessions, PPP
//! termination, RFC 4951 failover).
//!
//! - [`reliable`]: the sans-IO reliable delivery engine of one control channel (RFC 2661 §5.8 and
//!   Appendix A, RFC 3931 §4.2): Ns/Nr, the sliding window with slow start and congestion
//!   avoidance, retransmission with exponential back-off, in-order delivery, delayed ZLB
//!   acknowledgements, and the RFC 4951 hooks (sequence reset, hold before failure).
//! - [`ppp`]: PPP termination for the LNS and the client emulator as sans-IO state machines:
//!   the RFC 1661 §4 automaton for LCP/IPCP/IPv6CP, PAP and CHAP-MD5 (with RFC 2661 proxy LCP
//!   and proxy authentication), address pools and the users file.
//! - [`l2tp`]: the L2TP control connection and session state machines (RFC 2661, RFC 3931),
//!   both roles, sans-IO, and the [`l2tp::Registry`] that drives many of them.
//! - [`node`]: one node — registry, PPP links and the fast path glued together, sans-IO; its
//!   RFC 4951 recovery (`node/recovery.rs`) and what the operator sees of it
//!   (`node/status.rs`).
//! - [`aaa`]: the RADIUS client (authentication and accounting against several servers, with
//!   failover and the Blast-RADIUS mitigation).
//! - [`random`]: the one random source (a CSPRNG keyed from the OS; failing to key it stops
//!   start-up) for challenges, magic numbers, nonces, Random Vectors and IDs.
//! - [`driver`]: runs a node over real sockets on tokio.
//! - [`daemon`]: `l2xdpd`'s configuration file (`daemon/config.rs`), start-up
//!   (`daemon/start.rs`), `config reload` and the failover drill; [`control`]: its control
//!   socket.
//! - [`config_file`]: TOML configuration files with errors that name the file, line and field.
//! - [`socket`]: L2TP sockets over UDP and IP protocol 115, and a deterministic lossy shim for
//!   tests.
//!
//! Not here: labs and fixtures (a node on a thread in a network namespace, `l2xdpd` as a child
//! process, bringing up tunnels and sessions: `l2xdp_lab::cp`, a crate `l2xdpd` and `l2xdpctl`
//! do not link; the tests that use it are in `tests/`), and anything that needs the kernel's
//! fast path outside the default `xdp` feature: without it this crate builds and unit-tests
//! with no aya, eBPF object or clang.

pub mod aaa;
pub mod config_file;
pub mod control;
pub mod daemon;
pub mod driver;
pub mod l2tp;
pub mod metrics;
pub mod node;
pub mod ppp;
pub mod random;
pub mod reliable;
pub mod socket;
