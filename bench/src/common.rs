//! What every scenario shares: the error type and its constructors, writing a report, the
//! report header ([`Header`], flattened into each report), formatting a summary, and the lab's
//! addresses. Scenario modules import this (and [`crate::cases`], [`crate::bpf`],
//! [`crate::xsk_lab`]), not each other's internals.

use std::path::Path;

use l2xdp_dataplane::loader;
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
