//! l2xdp-ebpf: the XDP programs (C, built with `clang -target bpf`) and the map layouts shared
//! with user space.
//!
//! Not built yet: the fast-path issue fills this crate. It exists so the workspace layout is the
//! one the product will have.
