//! l2xdp-bench: the benchmark harness (LAC/LCCE emulator, traffic generators, scenarios).
//!
//! - [`setup_rate`]: sessions per second through ICCN and IPCP against an `l2xdpd` process,
//!   and its memory per tunnel and per session.
//! - [`env`]: the environment recorded with every result.

pub mod env;
pub mod setup_rate;
