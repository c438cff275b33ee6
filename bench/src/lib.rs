//! l2xdp-bench: the benchmark harness. Scenarios (one `l2xdp-bench` subcommand each):
//!
//! - [`forward`]: 64-byte forwarding through the LNS namespace on one core (XDP, live-frame
//!   generator), decap and encap Mpps as a ratio to a plain XDP_REDIRECT baseline and their
//!   programs' cost per packet (bpf_stats) as a ratio to a swap-MAC XDP_TX program.
//! - [`setup_rate`]: sessions per second through ICCN and IPCP against an `l2xdpd` process,
//!   and its memory per tunnel and per session.
//!
//! Shared pieces: [`bpf_stats`] (run_time_ns / run_cnt of a program under
//! `kernel.bpf_stats_enabled`), [`machine`] (kernel, CPU, pinning), [`summary`] (median and
//! spread), [`interrupt`] (Ctrl-C turns into an orderly stop, so guards clean up).

pub mod bpf_stats;
pub mod forward;
pub mod interrupt;
pub mod machine;
pub mod setup_rate;
pub mod summary;
