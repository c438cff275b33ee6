//! `BPF_PROG_TEST_RUN` on an XDP program: the verdict, the output frame and the kernel's
//! average duration. aya does not wrap it, so this is the raw `bpf(2)` syscall.

use std::os::fd::RawFd;

use l2xdp_dataplane::bpf_sys::{prog_test_run, TestRunAttr, XdpMd, F_TEST_XDP_LIVE_FRAMES};

/// XDP actions.
pub mod action {
    /// XDP_ABORTED.
    pub const ABORTED: u32 = 0;
    /// XDP_DROP.
    pub const DROP: u32 = 1;
    /// XDP_PASS.
    pub const PASS: u32 = 2;
    /// XDP_TX.
    pub const TX: u32 = 3;
    /// XDP_REDIRECT.
    pub const REDIRECT: u32 = 4;
}

/// One test run's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The XDP action.
    pub action: u32,
    /// The frame after the program.
    pub frame: Vec<u8>,
    /// Average nanoseconds per run (the kernel's measure).
    pub duration_ns: u32,
}

/// Runs `prog_fd` on `frame` as received on `ifindex` (0: none; bpf_fib_lookup needs one),
/// `repeat` times.
pub fn run(prog_fd: RawFd, frame: &[u8], ifindex: u32, repeat: u32) -> std::io::Result<RunResult> {
    let mut out = vec![0u8; frame.len() + 512];
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ifindex,
        ..XdpMd::default()
    };
    let mut attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..TestRunAttr::default()
    };
    if ifindex != 0 {
        attr.ctx_size_in = core::mem::size_of::<XdpMd>() as u32;
        attr.ctx_in = &ctx as *const XdpMd as u64;
    }
    // SAFETY: the buffers `attr` points at (`frame`, `out`, `ctx`) live until the call returns,
    // with the sizes given.
    unsafe { prog_test_run(&mut attr)? };
    out.truncate(attr.data_size_out as usize);
    Ok(RunResult {
        action: attr.retval,
        frame: out,
        duration_ns: attr.duration,
    })
}

// `BPF_F_TEST_XDP_LIVE_FRAMES`: every repetition gets a fresh copy of the frame and the
// verdict is carried out (redirects really happen, XDP_TX really transmits).

/// Runs `prog_fd` `repeat` times in live-frames mode on `frame` received on `ifindex`; returns
/// the kernel's average nanoseconds per run. (Plain repeat would feed each run the previous
/// run's output: useless for programs that move the packet head.)
pub fn run_live(prog_fd: RawFd, frame: &[u8], ifindex: u32, repeat: u32) -> std::io::Result<u32> {
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ifindex,
        ..XdpMd::default()
    };
    let mut attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ctx_size_in: core::mem::size_of::<XdpMd>() as u32,
        ctx_in: &ctx as *const XdpMd as u64,
        flags: F_TEST_XDP_LIVE_FRAMES,
        ..TestRunAttr::default()
    };
    // SAFETY: the buffers `attr` points at (`frame`, `out`, `ctx`) live until the call returns,
    // with the sizes given.
    unsafe { prog_test_run(&mut attr)? };
    Ok(attr.duration)
}
