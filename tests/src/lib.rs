//! l2xdp-tests: end-to-end tests on real sockets and kernels, and what they share.
//!
//! - [`tshark`]: Wireshark as an independent judge of what l2xdp emits.
//!
//! The tests themselves are in `tests/tests/`.

pub mod tshark;
