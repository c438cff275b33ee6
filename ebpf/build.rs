//! Compiles the fast path's XDP programs (C, `bpf/l2xdp.bpf.c`) with `clang -target bpf`; the
//! object is embedded in the crate (`include_bytes!` of OUT_DIR), so nothing is read at run
//! time. The lab's and the bench's programs are built by their own crates (`lab/build.rs`,
//! `bench/build.rs`) with the same flags (`build_bpf.rs`).

include!("build_bpf.rs");

fn main() {
    println!("cargo:rerun-if-changed=build_bpf.rs");
    compile_bpf(&["l2xdp"], "include");
}
