//! l2xdp-tests: end-to-end tests on real sockets and kernels, and what they share.
//!
//! - [`cp`]: what the control-plane end-to-end tests share (waiting for events, users,
//!   checking captures).
//! - [`interop`]: a qemu guest with Debian's xl2tpd and pppd, driven through a shared folder.
//! - [`freeradius`]: a real FreeRADIUS on loopback for the RADIUS tests.
//! - [`tshark`]: Wireshark as an independent judge of what l2xdp emits (the lab's,
//!   `l2xdp_lab::tshark`, re-exported: one definition).
//!
//! The tests themselves are in `tests/tests/`: among them the fast-path end-to-end tests of the
//! control plane (`xdp_kill9`, `l2xdpctl`, `l2xdpd`: the real `l2xdpd` and `l2xdpctl`
//! processes, found next to the test executable by `l2xdp_lab::workspace_binary`).
//!
//! Not here: anything a product binary links.

pub mod cp;
pub mod freeradius;
pub mod interop;
pub use l2xdp_lab::tshark;
