//! l2xdp-dataplane: the fast path.
//!
//! - [`api`]: the `DataPlane` interface the control plane calls when a session becomes usable
//!   or goes away, and [`api::MemoryDataPlane`], an in-memory implementation for tests.
//! - [`xdp`]: [`XdpDataPlane`], the same interface over the XDP programs' (pinned) maps.
//! - [`loader`]: load, attach (native XDP), pin, detach.
//! - [`probe`]: what the running kernel offers; the loader, bench and tests ask it.
//! - [`session_map`]: session entries ↔ map values, the encap template.
//! - [`static_pw`]: static L2TPv3 pseudowires from TOML (Linux `ip l2tp` manual mode).
//! - [`afxdp`], [`xsk`]: the AF_XDP mode: per-core workers behind the same programs.
//! - [`stats`]: the counters `show stats` and the metrics endpoint read.
//!
//! Not here: labs, traffic generators, baseline forwarders, test-run helpers and fixtures
//! (`l2xdp-lab`, which the `l2xdp-dataplane` binary does not link) and the benchmark's programs
//! (`l2xdp-bench`). The one way in for them: [`bpf_sys`], the raw `BPF_PROG_TEST_RUN` the probe
//! uses too (hidden from the docs), and, behind the `test-peer` feature, the in-memory AF_XDP
//! peer of [`xsk`].

pub mod afxdp;
#[doc(hidden)]
pub mod bpf_sys;
/// The `DataPlane` interface (its own crate, `l2xdp-dataplane-api`, so the control plane
/// builds without aya); re-exported under its old path.
pub use l2xdp_dataplane_api as api;
pub mod loader;
pub mod probe;
pub mod session_map;
pub mod static_pw;
pub mod stats;
pub mod sysctl;
pub mod tables;
pub mod xdp;
pub mod xsk;

pub use api::{Binding, DataPlane, DataPlaneError, MemoryDataPlane, SessionCounters, SessionEntry};
pub use xdp::{FastPathConfig, XdpDataPlane};
/// The loader library and the map layouts, for tests and tools that read the pinned maps
/// directly (so they need no dependency of their own on aya or the eBPF object).
pub use {aya, l2xdp_ebpf};
