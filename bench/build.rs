//! Compiles the benchmark's XDP programs (`bpf/l2xdp_bench.bpf.c`: generators, baseline
//! forwarder, counting sink, AF_XDP classifier) with `clang -target bpf`, the same flags as the
//! fast path's (`../ebpf/build_bpf.rs`).

include!("../ebpf/build_bpf.rs");

fn main() {
    println!("cargo:rerun-if-changed=../ebpf/build_bpf.rs");
    compile_bpf(&["l2xdp_bench"], "../ebpf/include");
}
