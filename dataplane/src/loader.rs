//! Loading and attaching the XDP programs: native (driver) mode only, maps and links pinned
//! under a directory of bpffs (default `/sys/fs/bpf/l2xdp/`) so they outlive the process; a
//! second `attach` re-uses the pinned maps (sessions, sequence state and counters survive) and
//! replaces the links; [`detach`] removes programs and pins.
//!
//! Wherever `xdp_l2tp_core` is attached, `tc_l2tp_core` is attached to the same interface's
//! clsact ingress (the kernel path of encapsulation: frames for a next hop without a neighbour
//! entry, sent with `bpf_redirect_neigh`; see `l2xdp.bpf.c`): a pinned tcx link on 6.6+
//! (`link_tc_l2tp_core_<iface>`), else a netlink filter recorded by the program's pin
//! `tc_<iface>`. Best effort: where it cannot be attached those frames are dropped and
//! counted, and a warning says so; [`detach`] removes it first.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use aya::maps::{Array, CpuMap, HashMap as BpfHashMap};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::{self, NlOptions, TcAttachOptions};
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use l2xdp_ebpf::maps::{self, name};
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
/// The slot array has at least 4/3 as many slots as sessions (a power of two), so even when
/// full a third of the slots are free and the control plane finds ids whose home slot is free
/// in a few random draws; the IPv4 buckets hold eight addresses each, one bucket per three
/// sessions (a power of two), so a full bucket (whose addresses go on to the `l2xdp_sub4` hash)
/// is rare even for scattered addresses, and never for a contiguous pool. Sequence state
/// (sequenced sessions only) has room for half the sessions, the addresses of full buckets for
/// an eighth; profiles (one per tunnel and framing, v3 as v2) and attachment circuits
/// for a quarter, at most 65,536.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSizes {
    /// Sessions (the overflow index of sessions not in their home slot).
    pub sessions: u32,
    /// Slots of `l2xdp_sessions`.
    pub slots: u32,
    /// Buckets of `l2xdp_dst4`.
    pub dst4_buckets: u32,
    /// Entries of `l2xdp_profiles` and `l2xdp_ac`.
    pub profiles: u32,
    /// Entries of `l2xdp_circuits` (the power of two at or above `profiles`).
    pub circuits: u32,
    /// Entries of `l2xdp_seq` (sequenced sessions: half).
    pub sequenced: u32,
    /// Entries of `l2xdp_sub4` (addresses of full buckets: an eighth).
    pub overflow4: u32,
}

impl MapSizes {
    /// The sizes for `max_sessions` (at least 1, at most 2^30).
    pub fn for_sessions(max_sessions: u32) -> MapSizes {
        let n = max_sessions.clamp(1, 1 << 30);
        MapSizes {
            sessions: n,
            slots: (n / 3 * 4 + 4).next_power_of_two(),
            dst4_buckets: n.div_ceil(3).next_power_of_two(),
            profiles: (n / 4).clamp(1024, 65_536),
            circuits: (n / 4).clamp(1024, 65_536).next_power_of_two(),
            sequenced: (n / 2).max(256),
            overflow4: (n / 8).max(256),
        }
    }

    fn entries(&self) -> [(&'static str, u32); 9] {
        [
            (name::SESSIONS, self.slots),
            (name::SLOTS, self.sessions),
            (name::PROFILES, self.profiles),
            (name::SEQ, self.sequenced),
            (name::DST4, self.dst4_buckets),
            (name::SUB4, self.overflow4),
            (name::SUB6, self.sessions),
            (name::AC, self.profiles),
            (name::CIRCUITS, self.circuits),
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
    if let Some(d) = pin_dir {
        check_pinned_layouts(d)?;
    }
    for (n, p) in &paths {
        loader.map_pin_path(n, p.as_path());
    }
    let mut ebpf = loader
        .load(L2XDP_OBJ)
        .map_err(|e| LoadError::Load(e.to_string()))?;
    for p in [prog::ACCESS, prog::ACCESS_CPU, prog::CORE] {
        let xdp = program(&mut ebpf, p)?;
        retry_eagain(|| xdp.load()).map_err(|e| LoadError::Load(verifier_summary(p, &e)))?;
    }
    load_tc(&mut ebpf);
    Ok(ebpf)
}

/// The maps whose layout changed between versions, as this build has them: name, value size,
/// and `max_entries` where that is fixed by the layout (the per-reason counters).
fn pinned_layouts() -> [(&'static str, u32, Option<u32>); 5] {
    let size = |n: usize| n as u32;
    [
        (
            name::CONFIG,
            size(std::mem::size_of::<maps::Config>()),
            None,
        ),
        (
            name::SESSIONS,
            size(std::mem::size_of::<maps::Session>()),
            None,
        ),
        (
            name::PROFILES,
            size(std::mem::size_of::<maps::Profile>()),
            None,
        ),
        (name::VERDICTS, 8, Some(maps::verdict::COUNT)),
        (name::VBYTES, 8, Some(maps::verdict::COUNT)),
    ]
}

/// Maps pinned in `dir` by an older build whose layout differs from this one's: the programs
/// would not verify against them (a verifier message naming an offset), or would count into
/// the void. Refused with the remedy instead.
fn check_pinned_layouts(dir: &Path) -> Result<(), LoadError> {
    for (n, value_size, entries) in pinned_layouts() {
        let path = dir.join(n);
        if !path.exists() {
            continue;
        }
        let pin = |why: String| LoadError::Pin {
            dir: dir.into(),
            why,
        };
        let info = aya::maps::MapData::from_pin(&path)
            .and_then(|m| m.info())
            .map_err(|e| pin(format!("{n}: {e}")))?;
        let (vs, me) = (info.value_size(), info.max_entries());
        if vs != value_size || entries.is_some_and(|e| e != me) {
            return Err(pin(format!(
                "{n} was pinned by another version of l2xdp (values of {vs} bytes, {me} entries; this one has {value_size}{}): `l2xdp-dataplane detach` first (it removes the pinned sessions: restart l2xdpd after the new attach)",
                entries.map_or(String::new(), |e| format!(", {e} entries"))
            )));
        }
    }
    Ok(())
}

/// Loads `tc_l2tp_core` where the kernel has `bpf_redirect_neigh` (optional: without it the
/// fast path still loads, and [`attach_pinned_mode`] says what degrades).
fn load_tc(ebpf: &mut Ebpf) {
    let features = crate::probe::features();
    if !features.has(crate::probe::Feature::RedirectNeigh) {
        return;
    }
    let r = tc_program(ebpf).and_then(|p| {
        retry_eagain(|| p.load()).map_err(|e| LoadError::Load(verifier_summary(prog::TC_CORE, &e)))
    });
    if let Err(e) = r {
        tracing::warn!(%e, "tc_l2tp_core not loaded: encapsulation towards a next hop without a neighbour entry will drop");
    }
}

fn tc_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, LoadError> {
    ebpf.program_mut(prog::TC_CORE)
        .ok_or_else(|| LoadError::Load(format!("{} missing from the object", prog::TC_CORE)))?
        .try_into()
        .map_err(|e| LoadError::Load(format!("{}: {e}", prog::TC_CORE)))
}

/// A program load, tried again when the kernel answers EAGAIN: the verifier gives up on a
/// program when a signal is pending for the loading thread (`signal_pending()` in its main
/// loop), which says nothing about the program. libbpf retries the same way, 5 times.
fn retry_eagain(
    mut load: impl FnMut() -> Result<(), aya::programs::ProgramError>,
) -> Result<(), aya::programs::ProgramError> {
    let mut attempts = 5;
    loop {
        match load() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && attempts > 1 =>
            {
                attempts -= 1;
                tracing::debug!("program load interrupted (EAGAIN), trying again");
            }
            r => return r,
        }
    }
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
    if p == prog::CORE {
        if let Err(why) = attach_tc(ebpf, iface, dir) {
            tracing::warn!(
                iface,
                %why,
                "tc_l2tp_core not attached: on {iface}, encapsulation towards a next hop without a neighbour entry drops (counted as down_no_tc) until the kernel resolves it by itself"
            );
            eprintln!("warning: {iface}: tc_l2tp_core not attached ({why}): encapsulation towards an unresolved next hop drops");
            set_tc_iface(ebpf, iface, false)?;
        }
    }
    Ok(how)
}

/// Why the kernel path could not be set up on an interface.
#[derive(Debug, thiserror::Error)]
pub enum TcAttachError {
    /// The kernel has no `bpf_redirect_neigh` (or it is forced off).
    #[error("the kernel has no bpf_redirect_neigh for tc programs ({0})")]
    NoRedirectNeigh(String),
    /// The program did not load.
    #[error("tc_l2tp_core is not loaded (see the warning at load)")]
    NotLoaded,
    /// The kernel refused the attachment.
    #[error("attaching tc_l2tp_core to the clsact ingress of {iface}: {why}")]
    Attach { iface: String, why: String },
    /// The loader's own bookkeeping failed.
    #[error(transparent)]
    Load(#[from] LoadError),
}

fn tc_link_pin(dir: &Path, iface: &str) -> PathBuf {
    link_pin(dir, prog::TC_CORE, iface)
}

fn tc_filter_pin(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("tc_{iface}"))
}

/// Attaches `tc_l2tp_core` to the clsact ingress of `iface` (replacing one this pin directory
/// attached before), makes sure the configuration has a kernel mark, and enables the kernel
/// path of `iface` in `l2xdp_tc_ifaces`.
pub fn attach_tc(ebpf: &mut Ebpf, iface: &str, dir: &Path) -> Result<(), TcAttachError> {
    let features = crate::probe::features();
    if !features.has(crate::probe::Feature::RedirectNeigh) {
        let st = &features.status[&crate::probe::Feature::RedirectNeigh];
        return Err(TcAttachError::NoRedirectNeigh(format!(
            "{}{}",
            st.word(),
            if st.detail().is_empty() {
                String::new()
            } else {
                format!(": {}", st.detail())
            }
        )));
    }
    ensure_kernel_mark(ebpf)?;
    let tcx = features.has(crate::probe::Feature::Tcx);
    let err = |why: String| TcAttachError::Attach {
        iface: iface.into(),
        why,
    };
    // Whatever this directory attached before, in either form.
    remove_tc(dir, iface)?;
    let p = tc_program(ebpf)?;
    if p.fd().is_err() {
        return Err(TcAttachError::NotLoaded);
    }
    if tcx {
        let id = p
            .attach_with_options(
                iface,
                TcAttachType::Ingress,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .map_err(|e| err(format!("tcx: {e}")))?;
        let link = p.take_link(id).map_err(|e| err(e.to_string()))?;
        let fd_link: FdLink = link.try_into().map_err(|e| err(format!("tcx link: {e}")))?;
        fd_link
            .pin(tc_link_pin(dir, iface))
            .map_err(|e| LoadError::Pin {
                dir: dir.into(),
                why: e.to_string(),
            })?;
    } else {
        // Netlink: the clsact qdisc first (already there is fine: the attach says if not).
        let qdisc = tc::qdisc_add_clsact(iface).err();
        let id = p
            .attach_with_options(
                iface,
                TcAttachType::Ingress,
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .map_err(|e| {
                err(match &qdisc {
                    Some(q) => format!("{e} (adding the clsact qdisc: {q})"),
                    None => e.to_string(),
                })
            })?;
        let link = p.take_link(id).map_err(|e| err(e.to_string()))?;
        // A filter outlives the process (it holds the program); dropping the link would
        // remove it. The program's pin records it for `detach`.
        std::mem::forget(link);
        p.pin(tc_filter_pin(dir, iface))
            .map_err(|e| LoadError::Pin {
                dir: dir.into(),
                why: e.to_string(),
            })?;
    }
    set_tc_iface(ebpf, iface, true)?;
    tracing::info!(
        iface,
        tcx,
        "tc_l2tp_core attached (kernel path of encapsulation)"
    );
    Ok(())
}

/// Removes the `tc_l2tp_core` this pin directory attached to `iface`, in either form.
fn remove_tc(dir: &Path, iface: &str) -> Result<(), LoadError> {
    let link = tc_link_pin(dir, iface);
    if link.exists() {
        drop_pinned_link(&link)?;
    }
    let filter = tc_filter_pin(dir, iface);
    if filter.exists() {
        remove_tc_filter(&filter, iface)?;
    }
    Ok(())
}

/// The netlink filter recorded by `pin` (`tc_<iface>`): removed by name from `iface` in this
/// namespace (gone already, or the interface gone: fine), then the pin.
fn remove_tc_filter(pin: &Path, iface: &str) -> Result<(), LoadError> {
    if ifindex(iface).is_ok() {
        if let Err(e) = tc::qdisc_detach_program(iface, TcAttachType::Ingress, prog::TC_CORE) {
            let gone =
                matches!(&e, tc::TcError::IoError(io) if io.kind() == std::io::ErrorKind::NotFound);
            if !gone {
                return Err(LoadError::Pin {
                    dir: pin.into(),
                    why: format!("removing the tc filter of {iface}: {e}"),
                });
            }
        }
    }
    std::fs::remove_file(pin).map_err(|e| LoadError::Pin {
        dir: pin.into(),
        why: e.to_string(),
    })
}

/// Enables (or disables) the kernel path of `iface` for `xdp_l2tp_core`.
fn set_tc_iface(ebpf: &mut Ebpf, iface: &str, on: bool) -> Result<(), LoadError> {
    let i = ifindex(iface)?;
    let map = ebpf
        .map_mut(name::TC_IFACES)
        .ok_or_else(|| LoadError::Load(format!("{} missing", name::TC_IFACES)))?;
    let mut m: BpfHashMap<_, u32, u32> =
        BpfHashMap::try_from(map).map_err(|e| LoadError::Load(e.to_string()))?;
    let r = if on {
        m.insert(i, 1, 0)
    } else {
        match m.remove(&i) {
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            r => r,
        }
    };
    r.map_err(|e| LoadError::Load(format!("{}: {e}", name::TC_IFACES)))
}

/// Makes sure `l2xdp_config.kernel_mark` is set: 6 random bytes (getrandom(2)), locally
/// administered unicast (IEEE 802 §8.2.2: byte 0 bit 1 set, bit 0 clear). Kept as long as the
/// pinned configuration lives (`XdpDataPlane::set_config` keeps it).
fn ensure_kernel_mark(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let map = ebpf
        .map_mut(name::CONFIG)
        .ok_or_else(|| LoadError::Load(format!("{} missing", name::CONFIG)))?;
    let mut cfg: Array<_, maps::Config> =
        Array::try_from(map).map_err(|e| LoadError::Load(e.to_string()))?;
    let mut c = cfg
        .get(&0, 0)
        .map_err(|e| LoadError::Load(format!("{}: {e}", name::CONFIG)))?;
    if c.kernel_mark[0] & 3 == 2 {
        return Ok(());
    }
    c.kernel_mark = random_mark()?;
    cfg.set(0, c, 0)
        .map_err(|e| LoadError::Load(format!("{}: {e}", name::CONFIG)))
}

/// A fresh kernel mark (see [`ensure_kernel_mark`]).
pub fn random_mark() -> Result<[u8; 6], LoadError> {
    let mut m = [0u8; 6];
    // SAFETY: a valid buffer of the length given.
    let n = unsafe { libc::getrandom(m.as_mut_ptr().cast(), m.len(), 0) };
    if n != m.len() as isize {
        return Err(LoadError::Load(format!(
            "getrandom: {}",
            std::io::Error::last_os_error()
        )));
    }
    m[0] = (m[0] & 0xfc) | 0x02;
    Ok(m)
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
    // tc_l2tp_core first (its pins: `link_tc_l2tp_core_*`, `tc_*`), then the XDP programs,
    // then the maps.
    let rank = |f: &PathBuf| {
        let n = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let tc_link = format!("link_{}_", prog::TC_CORE);
        if n.starts_with(&tc_link) || n.starts_with("tc_") {
            0
        } else if n.starts_with("link_") {
            1
        } else {
            2
        }
    };
    files.sort_by_key(|f| (rank(f), f.clone()));
    for f in &files {
        let n = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if n.starts_with("link_") {
            drop_pinned_link(f)?;
        } else if let Some(iface) = n.strip_prefix("tc_") {
            remove_tc_filter(f, iface)?;
        } else {
            std::fs::remove_file(f).map_err(err)?;
        }
    }
    std::fs::remove_dir(dir).map_err(err)
}
