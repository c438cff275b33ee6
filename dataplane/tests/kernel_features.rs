//! The fast path loads on the kernel it meets (issue 12): the probes' answers decide what is
//! verified, and what the kernel refuses is never in the verified path.

use l2xdp_dataplane::loader;
use l2xdp_dataplane::probe::{self, Feature, Status, XskHandoff};
use l2xdp_lab::require_root as root;

/// The in-band hand-off loads everywhere; the metadata hand-off loads exactly where the kernel
/// gives XDP programs `bpf_xdp_adjust_meta` — so on a kernel that refuses it the in-band
/// program loading proves the verifier never saw the call (it was pruned on the frozen
/// `.rodata` constant).
#[test]
fn each_handoff_loads_exactly_where_the_kernel_allows_it() {
    if !root("each_handoff_loads_exactly_where_the_kernel_allows_it") {
        return;
    }
    // The kernel's own answer, not a forced one.
    let real = probe::Features::detect_with(&[]);
    loader::load_with_handoff(None, 1024, XskHandoff::Inline)
        .expect("the in-band hand-off loads on every kernel");
    let meta = loader::load_with_handoff(None, 1024, XskHandoff::Meta);
    match &real.status[&Feature::AdjustMeta] {
        Status::Yes => {
            meta.expect("the kernel allows bpf_xdp_adjust_meta: the metadata hand-off loads");
        }
        Status::No(line) => {
            let Err(e) = meta else {
                panic!("the kernel refuses bpf_xdp_adjust_meta, yet the metadata hand-off loaded")
            };
            let e = e.to_string();
            assert!(e.contains("adjust_meta"), "{e} (probe: {line})");
        }
        other => panic!("adjust_meta probe: {other:?}"),
    }
}

/// This kernel runs the fast path: nothing required is missing (a failure here names it).
#[test]
fn this_kernel_has_what_the_fast_path_requires() {
    if !root("this_kernel_has_what_the_fast_path_requires") {
        return;
    }
    let f = probe::Features::detect_with(&[]);
    if let Err(e) = f.check_fast_path() {
        panic!("{e}");
    }
    loader::load(None).expect("the fast path loads");
}
