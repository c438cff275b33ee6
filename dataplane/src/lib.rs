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
//! - [`test_run`], [`lab`]: `BPF_PROG_TEST_RUN` and network namespaces for tests and benches.

pub mod afxdp;
/// The `DataPlane` interface (its own crate, `l2xdp-dataplane-api`, so the control plane
/// builds without aya); re-exported under its old path.
pub use l2xdp_dataplane_api as api;
pub mod lab;
pub mod loader;
pub mod probe;
pub mod session_map;
pub mod static_pw;
pub mod stats;
pub mod test_run;
pub mod xdp;
pub mod xsk;

pub use api::{Binding, DataPlane, DataPlaneError, MemoryDataPlane, SessionCounters, SessionEntry};
pub use xdp::{FastPathConfig, XdpDataPlane};
