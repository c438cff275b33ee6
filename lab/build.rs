//! Compiles the lab's XDP helpers (`bpf/l2xdp_util.bpf.c`: `xdp_pass`, `xdp_swap_mac`) with
//! `clang -target bpf`, the same flags as the fast path's (`../ebpf/build_bpf.rs`).

include!("../ebpf/build_bpf.rs");

fn main() {
    println!("cargo:rerun-if-changed=../ebpf/build_bpf.rs");
    compile_bpf(&["l2xdp_util"], "../ebpf/include");
}
