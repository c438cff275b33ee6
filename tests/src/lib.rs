//! l2xdp-tests: end-to-end tests on real sockets and kernels, and what they share.
//!
//! - [`cp`]: what the control-plane end-to-end tests share (waiting for events, users,
//!   checking captures).
//! - [`tshark`]: Wireshark as an independent judge of what l2xdp emits (the lab's,
//!   `l2xdp_lab::tshark`, re-exported: one definition).
//!
//! The tests themselves are in `tests/tests/`.

pub mod cp;
pub use l2xdp_lab::tshark;
