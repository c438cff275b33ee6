//! l2xdp-ebpf: the fast path's XDP programs (C in `bpf/l2xdp.bpf.c`, built by `build.rs` with
//! `clang -target bpf`, embedded here) and the map layouts shared with user space ([`maps`],
//! the twins of `include/l2xdp_maps.h`).
//!
//! Programs in [`L2XDP_OBJ`]: `xdp_l2tp_access` (decap, access side), `xdp_l2tp_access_cpu`
//! (its second pass behind the cpumap), `xdp_l2tp_core` (encap, core side and v3 attachment
//! circuits), `tc_l2tp_core` (tc ingress beside `xdp_l2tp_core`: the kernel path of encap).
//!
//! Not here: the lab's helper programs (`xdp_pass`, `xdp_swap_mac`: `l2xdp_lab::bpf`) and the
//! benchmark's generators, baseline forwarder and sinks (`l2xdp_bench::bpf`); they are built by
//! their own crates with the same flags (`build_bpf.rs`), so the product embeds only its own
//! object.

pub mod btf;
pub mod maps;

/// The fast-path object (ELF, 8-byte aligned for aya).
pub static L2XDP_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l2xdp.o"));

/// Program names.
pub mod prog {
    /// Access side: decapsulation.
    pub const ACCESS: &str = "xdp_l2tp_access";
    /// Access side, second pass on the session's CPU (cpumap entry program).
    pub const ACCESS_CPU: &str = "xdp_l2tp_access_cpu";
    /// Core side and v3 attachment circuits: encapsulation.
    pub const CORE: &str = "xdp_l2tp_core";
    /// Clsact ingress wherever [`CORE`] is attached (tc, not XDP): sends the frames
    /// [`CORE`] encapsulated for a next hop without a neighbour entry with
    /// `bpf_redirect_neigh` (optional: kernels without it drop those frames, counted).
    pub const TC_CORE: &str = "tc_l2tp_core";
}
