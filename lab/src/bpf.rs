//! The lab's XDP helpers (C in `lab/bpf/l2xdp_util.bpf.c`, built by `lab/build.rs` with the
//! fast path's clang flags, embedded here): `xdp_pass` for veth peers (so that redirected
//! frames are delivered) and `xdp_swap_mac` (the XDP_TX baseline of the cost measurement).

/// The helper object (no maps; ELF, 8-byte aligned for aya).
pub static UTIL_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l2xdp_util.o"));

/// Program names in [`UTIL_OBJ`].
pub mod prog {
    /// `XDP_PASS`.
    pub const PASS: &str = "xdp_pass";
    /// Swap MACs and `XDP_TX`.
    pub const SWAP_MAC: &str = "xdp_swap_mac";
}
