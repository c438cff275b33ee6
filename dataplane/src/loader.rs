//! Loading and attaching the XDP programs: native (driver) mode only, maps and links pinned
//! under a directory of bpffs (default `/sys/fs/bpf/l2xdp/`) so they outlive the process; a
//! second `attach` re-uses the pinned maps (sessions, sequence state and counters survive) and
//! replaces the links; [`detach`] removes programs and pins.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use aya::maps::CpuMap;
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use l2xdp_ebpf::maps::name;
use l2xdp_ebpf::{prog, L2XDP_OBJ};

/// The default pin directory.
pub const PIN_DIR: &str = "/sys/fs/bpf/l2xdp";

/// Why loading or attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No such interface.
    #[error("no interface named {0:?}")]
    NoInterface(String),
    /// The kernel lacks what the fast path needs (one line, from the probes).
    #[error("{0}")]
    Kernel(String),
    /// The kernel refused the object or a program.
    #[error("loading the XDP object: {0}")]
    Load(String),
    /// Native XDP attach refused (driver without XDP, or another program attached).
    #[error("cannot attach {prog} to {iface} in native (driver) XDP mode: {why} — the kernel or the driver of {iface} may not support native XDP, or another XDP program is attached")]
    Attach {
        prog: &'static str,
        iface: String,
        why: String,
    },
    /// A pin operation failed.
    #[error("pinning under {dir}: {why}")]
    Pin { dir: PathBuf, why: String },
}

/// The ifindex of an interface (in the calling thread's network namespace).
pub fn ifindex(iface: &str) -> Result<u32, LoadError> {
    let c = CString::new(iface).map_err(|_| LoadError::NoInterface(iface.into()))?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(LoadError::NoInterface(iface.into()))
    } else {
        Ok(i)
    }
}

/// The programs' `.rodata` constant that selects the AF_XDP hand-off (`enum l2xdp_handoff`).
pub const XSK_HANDOFF_GLOBAL: &str = "l2xdp_xsk_handoff";

/// How the programs this process loads hand frames to AF_XDP workers: the kernel's answer
/// ([`crate::probe::Features::xsk_handoff`], with `L2XDP_FORCE_PROBE` applied). The workers
/// read the metadata where this says it is.
pub fn xsk_handoff() -> crate::probe::XskHandoff {
    crate::probe::features().xsk_handoff()
}

/// How many sessions the maps are built for when nothing else is said (the object's own
/// `max_entries`).
pub const DEFAULT_MAX_SESSIONS: u32 = 65_536;

/// The sizes of the per-session maps for a number of sessions.
///
/// The slot array has at least twice as many slots as sessions (a power of two), so the
/// control plane finds ids whose home slot is free with a few random draws; the IPv4 buckets
/// hold eight addresses each, one bucket per two sessions (a power of two), so a full bucket
/// (whose addresses go on to the `l2xdp_sub4` hash) is rare even for scattered addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSizes {
    /// Sessions (the hash maps: overflow slots, sequence state, bindings).
    pub sessions: u32,
    /// Slots of `l2xdp_sessions`.
    pub slots: u32,
    /// Buckets of `l2xdp_dst4`.
    pub dst4_buckets: u32,
    /// Entries of `l2xdp_profiles`.
    pub profiles: u32,
}

impl MapSizes {
    /// The sizes for `max_sessions` (at least 1, at most 2^30).
    pub fn for_sessions(max_sessions: u32) -> MapSizes {
        let n = max_sessions.clamp(1, 1 << 30);
        MapSizes {
            sessions: n,
            slots: (2 * n).next_power_of_two(),
            dst4_buckets: n.div_ceil(2).next_power_of_two(),
            profiles: n.clamp(1024, 65_536),
        }
    }

    fn entries(&self) -> [(&'static str, u32); 8] {
        [
            (name::SESSIONS, self.slots),
            (name::SLOTS, self.sessions),
            (name::PROFILES, self.profiles),
            (name::SEQ, self.sessions),
            (name::DST4, self.dst4_buckets),
            (name::SUB4, self.sessions),
            (name::SUB6, self.sessions),
            (name::AC, self.sessions.min(65_536)),
        ]
    }
}

/// Loads the fast-path object with room for [`DEFAULT_MAX_SESSIONS`]; see [`load_sized`].
pub fn load(pin_dir: Option<&Path>) -> Result<Ebpf, LoadError> {
    load_sized(pin_dir, DEFAULT_MAX_SESSIONS)
}

/// Loads the fast-path object with its per-session maps sized for `max_sessions`
/// ([`MapSizes`]); with `pin_dir`, every map is
/// pinned there. A map already pinned there is re-used as it is — with the size it was created
/// with: to resize, `detach` first (which drops the sessions). Without `pin_dir`, the maps are
/// private to the returned object (tests).
///
/// The kernel's features ([`crate::probe::features`]) are checked first: a kernel older than
/// [`crate::probe::MIN_KERNEL`] or without a required helper or map type gets one line naming
/// what is missing, never a verifier dump. The AF_XDP hand-off is chosen from them
/// ([`xsk_handoff`]) and frozen into the programs' `.rodata` before they are verified.
pub fn load_sized(pin_dir: Option<&Path>, max_sessions: u32) -> Result<Ebpf, LoadError> {
    let features = crate::probe::features();
    features.check_fast_path().map_err(LoadError::Kernel)?;
    load_with_handoff(pin_dir, max_sessions, features.xsk_handoff())
}

/// [`load_sized`] with the AF_XDP hand-off given rather than probed, and no kernel check
/// (tests: a kernel that refuses `bpf_xdp_adjust_meta` must refuse [`XskHandoff::Meta`] and
/// load [`XskHandoff::Inline`]).
pub fn load_with_handoff(
    pin_dir: Option<&Path>,
    max_sessions: u32,
    handoff: crate::probe::XskHandoff,
) -> Result<Ebpf, LoadError> {
    let handoff = handoff.rodata();
    let mut loader = EbpfLoader::new();
    loader.override_global(XSK_HANDOFF_GLOBAL, &handoff, true);
    for (n, size) in MapSizes::for_sessions(max_sessions).entries() {
        loader.map_max_entries(n, size);
    }
    let paths: Vec<(&str, PathBuf)> = match pin_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| LoadError::Pin {
                dir: d.into(),
                why: e.to_string(),
            })?;
            name::ALL.iter().map(|n| (*n, d.join(n))).collect()
        }
        None => vec![],
    };
    for (n, p) in &paths {
        loader.map_pin_path(n, p.as_path());
    }
    let mut ebpf = loader
        .load(L2XDP_OBJ)
        .map_err(|e| LoadError::Load(e.to_string()))?;
    for p in [prog::ACCESS, prog::ACCESS_CPU, prog::CORE] {
        program(&mut ebpf, p)?
            .load()
            .map_err(|e| LoadError::Load(verifier_summary(p, &e)))?;
    }
    Ok(ebpf)
}

/// One line for an unexpected refusal: the error and the verifier's last words (the whole log
/// goes to the debug log).
fn verifier_summary(p: &str, e: &aya::programs::ProgramError) -> String {
    match e {
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            tracing::debug!(program = p, log = %log, "verifier log");
            let tail: Vec<&str> = log
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("processed ")
                        && !l.starts_with("verification time")
                })
                .collect();
            let last = tail
                .iter()
                .rev()
                .take(2)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join(" / ");
            format!("the kernel refused {p} ({io_error}): {last}")
        }
        other => format!("{p}: {other}"),
    }
}

/// A loaded program of the object.
pub fn program<'a>(ebpf: &'a mut Ebpf, p: &'static str) -> Result<&'a mut Xdp, LoadError> {
    ebpf.program_mut(p)
        .ok_or_else(|| LoadError::Load(format!("{p} missing from the object")))?
        .try_into()
        .map_err(|e| LoadError::Load(format!("{p}: {e}")))
}

fn link_pin(dir: &Path, p: &str, iface: &str) -> PathBuf {
    dir.join(format!("link_{p}_{iface}"))
}

/// Which XDP attach modes to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode only.
    Native,
    /// Native mode, else generic (SKB) mode with a warning: a driver without XDP support
    /// still forwards, at the kernel stack's cost.
    NativeOrGeneric,
}

/// How a program ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    Native,
    Generic,
}

/// Attaches `p` to `iface` in native mode and pins the link (replacing a pinned one).
pub fn attach_pinned(
    ebpf: &mut Ebpf,
    p: &'static str,
    iface: &str,
    dir: &Path,
) -> Result<(), LoadError> {
    attach_pinned_mode(ebpf, p, iface, dir, AttachMode::Native).map(|_| ())
}

/// Attaches `p` to `iface` as `mode` allows and pins the link (replacing a pinned one).
pub fn attach_pinned_mode(
    ebpf: &mut Ebpf,
    p: &'static str,
    iface: &str,
    dir: &Path,
    mode: AttachMode,
) -> Result<Attached, LoadError> {
    ifindex(iface)?;
    let pin = link_pin(dir, p, iface);
    if pin.exists() {
        drop_pinned_link(&pin)?;
    }
    let xdp = program(ebpf, p)?;
    let (id, how) = match xdp.attach(iface, XdpMode::Driver) {
        Ok(id) => (id, Attached::Native),
        Err(native) if mode == AttachMode::NativeOrGeneric => {
            let id = xdp
                .attach(iface, XdpMode::Skb)
                .map_err(|e| LoadError::Attach {
                    prog: p,
                    iface: iface.into(),
                    why: format!("native: {native}; generic: {e}"),
                })?;
            tracing::warn!(
                iface,
                program = p,
                native = %native,
                "native XDP refused: attached in generic (SKB) mode, which forwards at the kernel stack's speed"
            );
            (id, Attached::Generic)
        }
        Err(e) => {
            return Err(LoadError::Attach {
                prog: p,
                iface: iface.into(),
                why: e.to_string(),
            })
        }
    };
    let link = xdp
        .take_link(id)
        .map_err(|e| LoadError::Load(e.to_string()))?;
    let fd_link = FdLink::try_from(link).map_err(|e| LoadError::Attach {
        prog: p,
        iface: iface.into(),
        why: format!("not a bpf_link (kernel too old?): {e}"),
    })?;
    fd_link.pin(&pin).map_err(|e| LoadError::Pin {
        dir: dir.into(),
        why: e.to_string(),
    })?;
    Ok(how)
}

fn drop_pinned_link(pin: &Path) -> Result<(), LoadError> {
    let err = |e: String| LoadError::Pin {
        dir: pin.into(),
        why: e,
    };
    let link = PinnedLink::from_pin(pin).map_err(|e| err(e.to_string()))?;
    // Unpinned and dropped: the last reference goes, the program is detached.
    drop(link.unpin().map_err(|e| err(e.to_string()))?);
    Ok(())
}

/// `max_entries` of `l2xdp_cpus`.
pub const CPUMAP_MAX: u32 = 64;

/// The CPUs to spread over: `0..n`, the online CPUs counted from 0 up to the first gap, at
/// most [`CPUMAP_MAX`]. The first pass picks the entry `hash % n` and the cpumap key is the CPU
/// number, so every CPU below `n` must be online (the kernel refuses an entry for an offline
/// CPU; the possible CPUs may be more than the online ones).
pub fn cpumap_cpus() -> Result<u32, LoadError> {
    let online = aya::util::online_cpus()
        .map_err(|(f, e)| LoadError::Load(format!("online CPUs ({f}): {e}")))?;
    let n = (0..CPUMAP_MAX).take_while(|c| online.contains(c)).count();
    Ok(n as u32)
}

/// Fills the cpumap with the second-pass program for CPUs `0..cpus`.
pub fn setup_cpumap(ebpf: &mut Ebpf, cpus: u32, queue_size: u32) -> Result<(), LoadError> {
    let fd = program(ebpf, prog::ACCESS_CPU)?
        .fd()
        .map_err(|e| LoadError::Load(e.to_string()))?
        .try_clone()
        .map_err(|e| LoadError::Load(e.to_string()))?;
    let map = ebpf
        .map_mut(name::CPUS)
        .ok_or_else(|| LoadError::Load("cpumap missing".into()))?;
    let mut cpumap: CpuMap<_> =
        CpuMap::try_from(map).map_err(|e| LoadError::Load(e.to_string()))?;
    for cpu in 0..cpus {
        cpumap
            .set(cpu, queue_size, Some(&fd), 0)
            .map_err(|e| LoadError::Load(format!("cpumap entry {cpu}: {e}")))?;
    }
    Ok(())
}

/// Removes every program link and map pin under `dir`, then the directory. Missing pins are
/// fine (idempotent).
pub fn detach(dir: &Path) -> Result<(), LoadError> {
    let err = |e: std::io::Error| LoadError::Pin {
        dir: dir.into(),
        why: e.to_string(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in &files {
        let is_link = f
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("link_"));
        if is_link {
            drop_pinned_link(f)?;
        } else {
            std::fs::remove_file(f).map_err(err)?;
        }
    }
    std::fs::remove_dir(dir).map_err(err)
}
