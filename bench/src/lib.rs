//! l2xdp-bench: the benchmark harness (LAC/LCCE emulator, traffic generators, scenarios).
//!
//! Not built yet: the benchmark issue fills this crate.
