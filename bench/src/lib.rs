//! l2xdp-bench: the benchmark harness. Scenarios (one `l2xdp-bench` subcommand each):
//!
//! - [`forward`]: 64-byte forwarding through the LNS namespace on one core (XDP, live-frame
//!   generator), decap and encap Mpps as a ratio to a plain XDP_REDIRECT baseline and their
//!   programs' cost per packet (bpf_stats) as a ratio to a swap-MAC XDP_TX program.
//! - [`afxdp`]: 64-byte forwarding per core in AF_XDP mode (decap, encap) as a ratio to a raw
//!   AF_XDP forwarder on the same veth pair, cases alternating.
//! - [`latency`]: one-way latency (hdrhistogram p50/p99/p99.9/max) at fixed offered loads in
//!   XDP and AF_XDP mode beside their baselines on the same veths, AF_XDP generator and
//!   receiver with timestamps in the payload, cases alternating.
//! - [`setup_rate`]: sessions per second through ICCN and IPCP against an `l2xdpd` process,
//!   and its memory per tunnel and per session.
//! - [`throughput`]: the no-drop rate (loss ≤ 0.001 % at the sinks) through the LNS on one
//!   core — up, down, both; 64 B, 512 B, IMIX; L2TPv2 and L2TPv3 — beside a plain
//!   XDP_REDIRECT baseline on the same veths, paced live-frame generator (`xdp_gen_paced`) on
//!   another core, the DUT's NAPI threaded and pinned.
//! - [`scale`]: the same at 1k … 1M sessions installed, and the maps' memory per session.
//! - [`cost`]: ns per packet of each XDP program beside a swap-MAC program and a routed
//!   baseline (`xdp_router`, what the kernel's xdp_fwd sample does), v2 and v3, frames over
//!   every session in random order ([`cost_testrun`]; or the `forward` scenario's bpf_stats
//!   passes); and instructions per packet of the AF_XDP worker loop under callgrind beside
//!   the raw forwarder's ([`callgrind`]).
//! - [`failover`]: kill -9 and restart of an `l2xdpd` process with RFC 4951 failover: time
//!   to its control socket, to every tunnel recovered, the state restore, and nothing lost.
//!
//! - [`demo`]: what `make run` shows: the lab in network namespaces, a few hundred PPP
//!   sessions, traffic both ways with a live view, a kill -9 failover drill, clean-up.
//!
//! Generators: where the probe (`l2xdp_dataplane::probe`) reports live-frame test runs
//! absent, `forward`, `throughput` and `scale` send with [`pktgen`] (AF_PACKET TX ring, qdisc
//! bypass) and report its ceiling; `cost`'s default method, [`cost_testrun`], needs no
//! generator (plain test runs, outputs checked against `wire::datapath`).
//!
//! Shared pieces (scenario modules import these, never another scenario's internals; a few
//! scenarios are built on others: `cost` runs `forward`, `callgrind` and `cost_testrun`;
//! `scale` is `throughput` at 1k … 1M sessions; `failover_xdp` is `demo`'s drill with
//! `failover`'s settings, which `setup_rate` shares): [`common`] (the error type, writing
//! reports, the report [`common::Header`] every scenario flattens into its JSON, the lab's
//! addresses), [`cases`] (the forwarding cases, their sessions and frames), [`bpf`] (the
//! benchmark's XDP programs, `bench/bpf/l2xdp_bench.bpf.c`, and loading, attaching and reading
//! them), [`xsk_lab`] (the AF_XDP lab of `afxdp`, `latency` and `throughput`), [`lns`] (the
//! `l2xdpd` child: configuration, start, control socket, VmRSS) and [`lac`] (the LAC emulator
//! and the bring-up phases) of the control-plane scenarios, [`bpf_stats`] (run_time_ns /
//! run_cnt of a program under `kernel.bpf_stats_enabled`), [`machine`] (kernel, CPU, pinning,
//! scheduling), [`summary`] (median and spread), [`interrupt`] (Ctrl-C turns into an orderly
//! stop, so guards clean up). The namespaces, topology, traffic and fixtures are the lab
//! crate's (`l2xdp_lab`).
//!
//! Not here: anything the product runs; the product crates do not depend on this one.

pub mod afxdp;
pub mod bpf;
pub mod bpf_stats;
pub mod callgrind;
pub mod cases;
pub mod common;
pub mod cost;
pub mod cost_testrun;
pub mod demo;
pub mod failover;
pub mod failover_xdp;
pub mod flood;
pub mod flood_xdp;
pub mod forward;
pub mod interrupt;
pub mod lac;
pub mod latency;
pub mod live;
pub mod lns;
pub mod machine;
pub mod pktgen;
pub mod scale;
pub mod setup_rate;
pub mod summary;
pub mod throughput;
pub mod xsk_lab;
#[cfg(feature = "xskrs")]
pub mod xskrs;
