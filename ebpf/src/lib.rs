//! l2xdp-ebpf: the XDP programs (C in `bpf/`, built by `build.rs` with `clang -target bpf`,
//! embedded here) and the map layouts shared with user space ([`maps`], the twins of
//! `include/l2xdp_maps.h`).
//!
//! Programs in [`L2XDP_OBJ`]: `xdp_l2tp_access` (decap, access side), `xdp_l2tp_access_cpu`
//! (its second pass behind the cpumap), `xdp_l2tp_core` (encap, core side and v3 attachment
//! circuits). In [`UTIL_OBJ`]: `xdp_pass` (for veth peers, so redirected frames are delivered)
//! and `xdp_swap_mac` (the XDP_TX baseline of the cost measurement).

pub mod btf;
pub mod maps;

/// The fast-path object (ELF, 8-byte aligned for aya).
pub static L2XDP_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l2xdp.o"));

/// The helper object (no maps).
pub static UTIL_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l2xdp_util.o"));

/// Program names.
pub mod prog {
    /// Access side: decapsulation.
    pub const ACCESS: &str = "xdp_l2tp_access";
    /// Access side, second pass on the session's CPU (cpumap entry program).
    pub const ACCESS_CPU: &str = "xdp_l2tp_access_cpu";
    /// Core side and v3 attachment circuits: encapsulation.
    pub const CORE: &str = "xdp_l2tp_core";
    /// `XDP_PASS` (in [`super::UTIL_OBJ`]).
    pub const PASS: &str = "xdp_pass";
    /// Swap MACs and `XDP_TX` (in [`super::UTIL_OBJ`]).
    pub const SWAP_MAC: &str = "xdp_swap_mac";
}
