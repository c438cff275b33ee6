//! l2xdp-dataplane: the fast-path process (loads and attaches the XDP program, owns the pinned
//! maps, runs the AF_XDP workers).
//!
//! Not built yet: the fast-path issues fill this crate.
