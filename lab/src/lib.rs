//! l2xdp-lab: what tests, benches and demos build on and the product does not — the
//! `l2xdp-dataplane`, `l2xdpd` and `l2xdpctl` binaries do not link this crate (its crates,
//! `l2xdp-dataplane` and `l2xdp-controlplane`, must never depend on it; their integration
//! tests may, their unit tests may not: they would see two copies of the crate).
//!
//! Network namespaces (uniquely named, always removed — the guard's `Drop` runs on panic too —
//! and entered per thread: `setns` changes only the calling thread), and on top of them:
//!
//! - [`topology`]: the `lac` — `lns` — `core` namespaces joined by veth pairs, the fast path
//!   attached on the lns side with pins in a per-run directory, `xdp_pass` on the peers.
//! - [`packet`]: AF_PACKET sockets bound to one interface, to send and receive raw frames.
//! - [`scratch`]: a run's temporary directory with a bpffs of its own (pins a process under
//!   `ip netns exec` can see).
//! - [`traffic`]: subscribers as the LAC sees them, frame builders and classifiers, counting
//!   receivers and senders paced by what the receivers counted.
//! - [`tshark`]: Wireshark as an independent judge of captured frames.
//! - [`skip`]: whether a test that needs root, a kernel feature, a resource or a workspace
//!   binary runs, fails (`L2XDP_REQUIRE_ROOT=1`, `make test`) or is skipped and recorded
//!   (`L2XDP_SKIP_LOG`, the totals of `scripts/test.sh`).
//! - [`test_run`]: `BPF_PROG_TEST_RUN` on an XDP program (verdict, output frame, duration;
//!   live frames), over the syscall the probe uses (`l2xdp_dataplane::bpf_sys`).
//! - [`raw`]: the raw AF_XDP forwarder (the fast path's worker loop with no L2TP work), the
//!   baseline of `l2xdp-bench afxdp`.
//! - [`bpf`]: the helper XDP programs (`xdp_pass`, `xdp_swap_mac`; C in `lab/bpf/`).
//! - [`cp`]: the pieces that need the control plane: a node on a thread in a namespace, waiting
//!   for its events, bringing up tunnels and sessions, `l2xdpd` as a process.
//!
//! Not here: anything the product runs. Everything here is a fixture: a failure panics with
//! what failed. Needs root and iproute2 (and `ethtool`).

pub mod bpf;
pub mod cp;
pub mod packet;
pub mod raw;
pub mod scratch;
pub mod skip;
pub mod test_run;
pub mod topology;
pub mod traffic;
pub mod tshark;

pub use skip::require_root;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether we can create namespaces (root).
pub fn is_root() -> bool {
    // SAFETY: no arguments, no side effects.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a command; panics with its output when it fails (labs are test fixtures).
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace that is deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name (`ip netns` name).
    pub name: String,
}

impl Netns {
    /// Creates `l2xdp-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("l2xdp-{tag}-{}-{n}", std::process::id());
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", self.name.as_str()];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// `ip netns exec <ns> <args>`.
    pub fn exec(&self, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// Moves the calling thread into the namespace until the guard drops.
    pub fn enter(&self) -> NetnsGuard {
        let here = File::open("/proc/thread-self/ns/net").expect("own netns");
        let there = File::open(format!("/run/netns/{}", self.name)).expect("netns file");
        // SAFETY: valid namespace fds; affects only this thread.
        let r = unsafe { libc::setns(there.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        NetnsGuard { back: here }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Returns the thread to its namespace on drop.
#[derive(Debug)]
pub struct NetnsGuard {
    back: File,
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // SAFETY: a valid namespace fd.
        unsafe { libc::setns(self.back.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// The workspace binary `name` (`l2xdpd`, `l2xdpctl`, …) next to the running executable: cargo
/// puts a workspace's binaries side by side and test executables one level below, in `deps/`.
/// Falls back to `name` (from `PATH`); tests check it exists with [`skip::require_binary`].
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().ok();
    exe.iter()
        .flat_map(|p| p.ancestors().skip(1).take(2))
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}
