//! What every scenario shares: the error type and its constructors, writing a report, the
//! report header ([`Header`], flattened into each report), formatting a summary, and the lab's
//! addresses. Scenario modules import this (and [`crate::cases`], [`crate::bpf`],
//! [`crate::xsk_lab`]), not each other's internals.

use std::path::Path;

use l2xdp_dataplane::loader;
use l2xdp_ebpf::maps::name;
use l2xdp_lab::Netns;
use serde::Serialize;

use crate::machine::Machine;
use crate::summary::Summary;

pub(crate) const LNS4: &str = "192.0.2.1";

pub(crate) const LAC4: &str = "192.0.2.2";

pub(crate) const CORE4: &str = "198.51.100.2";

/// Subscriber i has 100.64.0.0 + 1 + i.
pub(crate) const SUB_BASE: u32 = 0x6440_0000;

/// Why the scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root.
    #[error("needs root (network namespaces, BPF, kernel.bpf_stats_enabled)")]
    NotRoot,
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// Loading or attaching the fast path.
    #[error("fast path: {0}")]
    Load(#[from] loader::LoadError),
    /// Installing sessions or reading the fast path's counters.
    #[error("data plane: {0}")]
    DataPlane(#[from] l2xdp_dataplane::DataPlaneError),
    /// A benchmark program or map.
    #[error("{what}: {why}")]
    Bpf { what: String, why: String },
    /// A system call.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Building the frames.
    #[error("building frames: {0}")]
    Frame(String),
    /// Live sessions: l2xdpd or the LAC emulator (see [`crate::live`]).
    #[error("live sessions: {0}")]
    Live(String),
    /// The callgrind half of `cost` (see [`crate::callgrind`]).
    #[error("callgrind: {0}")]
    Callgrind(String),
}

pub(crate) fn bpf(what: impl Into<String>) -> impl FnOnce(String) -> Error {
    let what = what.into();
    move |why| Error::Bpf { what, why }
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// `cat /sys/class/net/<dev>/threaded` inside `ns` (sysfs as the namespace sees it).
pub(crate) fn napi_threaded(ns: &Netns, dev: &str) -> String {
    std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "cat"])
        .arg(format!("/sys/class/net/{dev}/threaded"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

/// Writes a scenario's report as pretty JSON (creating the directory).
pub(crate) fn write_json(report: &impl Serialize, path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    }
    let s = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Options(format!("serialising the report: {e}")))?;
    std::fs::write(path, s + "\n").map_err(io(path.display().to_string()))
}

/// Per-session maps' kernel memory (`memlock` of /proc/self/fdinfo), bytes, by map name.
pub(crate) fn session_map_memory(pins: &Path) -> Result<Vec<(String, u64, u64)>, Error> {
    let mut v = Vec::new();
    for n in [
        name::SESSIONS,
        name::SLOTS,
        name::PROFILES,
        name::SEQ,
        name::DST4,
        name::SUB4,
        name::SUB6,
        name::CIRCUITS,
        name::AC,
    ] {
        let m = aya::maps::MapData::from_pin(pins.join(n)).map_err(|e| bpf(n)(e.to_string()))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(m.fd()));
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
            .map_err(io(format!("fdinfo of {n}")))?;
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        v.push((n.to_owned(), field("memlock:"), field("max_entries:")));
    }
    Ok(v)
}

/// The seed of the sessions' order in `throughput` and `scale` templates (and `cost`'s
/// default `--seed`).
pub const SESSION_ORDER_SEED: u64 = 0x1_2d4b_e7c0;

/// A seeded permutation of `0..n` (Fisher–Yates over splitmix64): the order in which the
/// frames of a case visit the sessions — every one once per cycle, reproducible from `seed`.
pub(crate) fn permutation(n: u32, seed: u64) -> Vec<u32> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut v: Vec<u32> = (0..n).collect();
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

pub(crate) fn fmt_summary(s: &Option<Summary>, prec: usize) -> String {
    match s {
        Some(s) => format!("{:.p$} [{:.p$}–{:.p$}]", s.median, s.min, s.max, p = prec),
        None => "-".into(),
    }
}

/// A plotting failure of the SVG at `path`.
pub(crate) fn plot_err(path: &Path) -> impl FnOnce(String) -> Error + '_ {
    move |why| Error::Bpf {
        what: format!("plotting {}", path.display()),
        why,
    }
}

/// The fields every scenario's report opens with, flattened into it (`#[serde(flatten)]`): the
/// JSON keeps the names it always had (`scenario`, `mode`, `date`, `command`, `machine`).
#[derive(Debug, Clone, Serialize)]
pub struct Header<M = &'static str> {
    /// The scenario ("forward", "throughput", …).
    pub scenario: &'static str,
    /// The fast path's mode ("xdp", "afxdp", …).
    pub mode: M,
    /// UTC start time.
    pub date: String,
    /// The command line (left out of the JSON when empty: the control-plane scenarios do not
    /// record it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// Kernel, CPU, cores.
    pub machine: Machine,
}

#[cfg(test)]
mod tests {
    use super::permutation;

    #[test]
    fn the_order_is_a_reproducible_permutation_of_every_session() {
        let a = permutation(100_000, 7);
        assert_eq!(a, permutation(100_000, 7), "same seed, same order");
        assert_ne!(a, permutation(100_000, 8), "the seed matters");
        let mut seen = vec![false; a.len()];
        a.iter().for_each(|&i| seen[i as usize] = true);
        assert!(seen.iter().all(|&s| s), "every session once");
        assert_ne!(
            a[..1000],
            (0..1000).collect::<Vec<u32>>()[..],
            "not in order"
        );
        assert!(permutation(0, 1).is_empty());
    }
}
