//! The raw `BPF_PROG_TEST_RUN` the probe uses ([`crate::probe`]), for the lab's test-run
//! helpers (`l2xdp_lab::test_run`): one definition of the attribute structs and the syscall.
//! Not part of the product's interface (hidden from the docs).

pub use crate::probe::bpf::{TestRunAttr, XdpMd, F_TEST_XDP_LIVE_FRAMES};

/// `BPF_PROG_TEST_RUN` with `attr`.
///
/// # Safety
///
/// Every pointer in `attr` (`data_in`, `data_out`, `ctx_in`, `ctx_out`) is 0 or points at a
/// live buffer of at least the size given beside it (`data_size_in`, …), writable for the
/// outputs, until the call returns: the kernel reads and writes through them.
pub unsafe fn prog_test_run(attr: &mut TestRunAttr) -> std::io::Result<()> {
    crate::probe::bpf::prog_test_run(attr)
}
