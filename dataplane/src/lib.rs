//! l2xdp-dataplane: the fast path.
//!
//! - [`api`]: the `DataPlane` interface the control plane calls when a session becomes usable
//!   or goes away, and [`api::MemoryDataPlane`], an in-memory implementation for tests.
//!
//! Not built yet: the XDP implementation over pinned maps, the `l2xdp-dataplane` process and the
//! AF_XDP workers (the fast-path issues).

pub mod api;

pub use api::{Binding, DataPlane, DataPlaneError, MemoryDataPlane, SessionCounters, SessionEntry};
