//! What the running kernel offers the fast path, asked once and answered for everyone.
//!
//! The loader, `l2xdp-dataplane attach` and `probe`, the AF_XDP runtime, the bench and the
//! tests ask [`features`] instead of discovering a missing feature as a load failure. Each
//! probe is small and read-only — a three-instruction XDP program that calls one helper
//! (libbpf's method), a map of one type, one `BPF_PROG_TEST_RUN` of `XDP_DROP`, the `netdev`
//! netlink family's `xdp-features` of an interface — and nothing is attached.
//!
//! **Forcing an answer.** `L2XDP_FORCE_PROBE=adjust_meta=off,live_frames=off` (a comma list of
//! `FEATURE=off`; `FEATURE` as [`Feature::name`]) makes the probes report those features absent
//! whatever the kernel says, so the fallbacks run on a kernel that has everything (the tests
//! do this on purpose; `l2xdp-dataplane probe` and `attach` take `--force FEATURE=off` for the
//! same). Forcing a feature *on* is not possible: the kernel would refuse it anyway.
//!
//! What depends on what:
//! - the fast path loads when every [`Feature::required`] one is present; [`MIN_KERNEL`] is
//!   checked first with a clear message;
//! - AF_XDP hands frames to the workers with their [`crate::afxdp`] metadata in the metadata
//!   area (`bpf_xdp_adjust_meta`) when the kernel allows it, else in an in-band header in
//!   front of the frame (`bpf_xdp_adjust_head`, every kernel and driver): [`XskHandoff`];
//! - the bench's generator is the live-frame test run when allowed, else AF_XDP/AF_PACKET;
//! - encapsulation towards a next hop without a neighbour entry goes through the kernel
//!   (`tc_l2tp_core`, `bpf_redirect_neigh`) when [`Feature::RedirectNeigh`] is there, else it
//!   is dropped and counted; the tc program is a pinned tcx link with [`Feature::Tcx`], else
//!   a netlink filter (`tcx=off` forces the latter).

pub(crate) mod bpf;
pub mod netdev;

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The oldest kernel the fast path is built and tested for (Debian 11's 5.10): bpf_link XDP
/// attachment (5.9), cpumap entries with a program (5.9), bounded loops and global functions.
pub const MIN_KERNEL: (u32, u32) = (5, 10);

/// The environment variable that forces probe answers (see the module documentation).
pub const FORCE_ENV: &str = "L2XDP_FORCE_PROBE";

/// One probed feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    Btf,
    Redirect,
    RedirectMap,
    CsumDiff,
    AdjustHead,
    AdjustTail,
    AdjustMeta,
    FibLookup,
    SpinLock,
    StoreBytes,
    MmapArray,
    LpmTrie,
    Cpumap,
    Xskmap,
    QueueMap,
    TestRun,
    TestRunCtx,
    LiveFrames,
    RedirectNeigh,
    Tcx,
}

impl Feature {
    /// Every feature, in the order `probe` prints them.
    pub const ALL: [Feature; 20] = [
        Feature::Btf,
        Feature::Redirect,
        Feature::RedirectMap,
        Feature::CsumDiff,
        Feature::AdjustHead,
        Feature::AdjustTail,
        Feature::AdjustMeta,
        Feature::FibLookup,
        Feature::SpinLock,
        Feature::StoreBytes,
        Feature::MmapArray,
        Feature::LpmTrie,
        Feature::Cpumap,
        Feature::Xskmap,
        Feature::QueueMap,
        Feature::TestRun,
        Feature::TestRunCtx,
        Feature::LiveFrames,
        Feature::RedirectNeigh,
        Feature::Tcx,
    ];

    /// The name used by `probe`, `--force` and [`FORCE_ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Feature::Btf => "btf",
            Feature::Redirect => "redirect",
            Feature::RedirectMap => "redirect_map",
            Feature::CsumDiff => "csum_diff",
            Feature::AdjustHead => "adjust_head",
            Feature::AdjustTail => "adjust_tail",
            Feature::AdjustMeta => "adjust_meta",
            Feature::FibLookup => "fib_lookup",
            Feature::SpinLock => "spin_lock",
            Feature::StoreBytes => "store_bytes",
            Feature::MmapArray => "mmap_array",
            Feature::LpmTrie => "lpm_trie",
            Feature::Cpumap => "cpumap",
            Feature::Xskmap => "xskmap",
            Feature::QueueMap => "queue_map",
            Feature::TestRun => "test_run",
            Feature::TestRunCtx => "test_run_ctx",
            Feature::LiveFrames => "live_frames",
            Feature::RedirectNeigh => "redirect_neigh",
            Feature::Tcx => "tcx",
        }
    }

    /// What it is, for the table.
    pub fn what(self) -> &'static str {
        match self {
            Feature::Btf => "kernel BTF (/sys/kernel/btf/vmlinux)",
            Feature::Redirect => "helper bpf_redirect",
            Feature::RedirectMap => "helper bpf_redirect_map",
            Feature::CsumDiff => "helper bpf_csum_diff",
            Feature::AdjustHead => "helper bpf_xdp_adjust_head",
            Feature::AdjustTail => "helper bpf_xdp_adjust_tail",
            Feature::AdjustMeta => "helper bpf_xdp_adjust_meta",
            Feature::FibLookup => "helper bpf_fib_lookup",
            Feature::SpinLock => "helper bpf_spin_lock",
            Feature::StoreBytes => "helper bpf_xdp_store_bytes",
            Feature::MmapArray => "map type ARRAY, BPF_F_MMAPABLE (5.5+)",
            Feature::LpmTrie => "map type LPM_TRIE",
            Feature::Cpumap => "map type CPUMAP (with entry programs)",
            Feature::Xskmap => "map type XSKMAP (AF_XDP)",
            Feature::QueueMap => "map type QUEUE",
            Feature::TestRun => "BPF_PROG_TEST_RUN of XDP",
            Feature::TestRunCtx => "BPF_PROG_TEST_RUN with an xdp_md (5.15+)",
            Feature::LiveFrames => "BPF_PROG_TEST_RUN live frames",
            Feature::RedirectNeigh => "helper bpf_redirect_neigh (tc programs)",
            Feature::Tcx => "tc programs as tcx bpf_links (6.6+)",
        }
    }

    /// What uses it, for the table.
    pub fn used_for(self) -> &'static str {
        match self {
            Feature::Btf => "map layout check (tests); optional",
            Feature::AdjustMeta => "AF_XDP hand-off in the metadata area; else in-band header",
            Feature::StoreBytes => "not used (encap writes the packet directly)",
            Feature::Cpumap => "--cpumap spreading",
            Feature::Xskmap => "AF_XDP mode",
            Feature::QueueMap => "AF_XDP change queue",
            Feature::TestRun => "tests, bench cost",
            Feature::TestRunCtx => "differential tests, bench cost (ingress ifindex)",
            Feature::LiveFrames => "bench generator; else AF_PACKET",
            Feature::RedirectNeigh => "encap to an unresolved next hop; else dropped",
            Feature::Tcx => "tc_l2tp_core as a pinned link; else a netlink filter",
            Feature::MmapArray => "the session slots (user space scans them in place)",
            _ => "fast path",
        }
    }

    /// Whether the fast path cannot load without it (every map type of the object is created
    /// when it loads, so the AF_XDP and cpumap map types are needed in XDP mode too).
    pub fn required(self) -> bool {
        !matches!(
            self,
            Feature::Btf
                | Feature::AdjustMeta
                | Feature::StoreBytes
                | Feature::TestRun
                | Feature::TestRunCtx
                | Feature::LiveFrames
                | Feature::RedirectNeigh
                | Feature::Tcx
        )
    }

    /// The feature named `s`.
    pub fn from_name(s: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// One probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The kernel offers it.
    Yes,
    /// The kernel refused it (the reason: a verifier line or an error).
    No(String),
    /// Reported absent by [`FORCE_ENV`] or `--force`.
    ForcedOff,
    /// Could not be asked (not root, no bpf(2)).
    Unknown(String),
}

impl Status {
    /// Present (and not forced off).
    pub fn yes(&self) -> bool {
        matches!(self, Status::Yes)
    }

    /// `yes`, `no`, `forced off`, `unknown`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Yes => "yes",
            Status::No(_) => "no",
            Status::ForcedOff => "forced off",
            Status::Unknown(_) => "unknown",
        }
    }

    /// The reason, if any.
    pub fn detail(&self) -> &str {
        match self {
            Status::No(s) | Status::Unknown(s) => s,
            Status::ForcedOff => FORCE_ENV,
            Status::Yes => "",
        }
    }
}

/// How the XDP programs hand a frame and its metadata to an AF_XDP worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XskHandoff {
    /// In the metadata area before the frame (`bpf_xdp_adjust_meta`).
    Meta,
    /// In a header in front of the frame (`bpf_xdp_adjust_head`): any kernel, any driver.
    Inline,
}

impl XskHandoff {
    /// The value of the programs' `l2xdp_xsk_handoff` constant (`.rodata`).
    pub fn rodata(self) -> u32 {
        match self {
            XskHandoff::Meta => 1,
            XskHandoff::Inline => 2,
        }
    }

    /// `metadata area` or `in-band header`.
    pub fn describe(self) -> &'static str {
        match self {
            XskHandoff::Meta => "metadata area (bpf_xdp_adjust_meta)",
            XskHandoff::Inline => "in-band header (bpf_xdp_adjust_head)",
        }
    }
}

/// What the kernel offers.
#[derive(Debug, Clone)]
pub struct Features {
    /// `uname -r`.
    pub kernel: String,
    /// (major, minor) of [`Features::kernel`].
    pub version: (u32, u32),
    /// Each probe's answer.
    pub status: BTreeMap<Feature, Status>,
}

/// Parses `L2XDP_FORCE_PROBE`-style text: a comma list of `FEATURE=off`.
pub fn parse_force(s: &str) -> Result<Vec<Feature>, String> {
    let mut out = vec![];
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("{FORCE_ENV}: {item:?}: expected FEATURE=off"))?;
        let f = Feature::from_name(name.trim()).ok_or_else(|| {
            let names: Vec<_> = Feature::ALL.iter().map(|f| f.name()).collect();
            format!(
                "{FORCE_ENV}: unknown feature {name:?} (one of {})",
                names.join(", ")
            )
        })?;
        if value.trim() != "off" {
            return Err(format!(
                "{FORCE_ENV}: {item:?}: only `off` can be forced (the kernel decides what is on)"
            ));
        }
        out.push(f);
    }
    Ok(out)
}

/// The kernel's (major, minor) from a release string such as `6.1.0-28-amd64`.
pub fn parse_version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn helper_status(id: i32) -> Status {
    match bpf::helper(id) {
        bpf::HelperAnswer::Allowed => Status::Yes,
        bpf::HelperAnswer::Refused(line) => Status::No(line),
        bpf::HelperAnswer::Unknown(e) => Status::Unknown(e),
    }
}

fn map_status(map_type: u32, key: u32, value: u32, flags: u32) -> Status {
    match bpf::map_create(map_type, key, value, flags) {
        Ok(()) => Status::Yes,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Status::Unknown(e.to_string()),
        Err(e) => Status::No(e.to_string()),
    }
}

fn run_status(run: bpf::Run) -> Status {
    match bpf::test_run(run) {
        Ok(()) => Status::Yes,
        Err(e) => Status::No(e.to_string()),
    }
}

impl Features {
    /// Asks the kernel, then applies `forced`.
    pub fn detect_with(forced: &[Feature]) -> Features {
        let kernel = kernel_release();
        let mut status = BTreeMap::new();
        for f in Feature::ALL {
            let s = match f {
                Feature::Btf => {
                    if std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
                        Status::Yes
                    } else {
                        Status::No("/sys/kernel/btf/vmlinux missing".into())
                    }
                }
                Feature::Redirect => helper_status(23),
                Feature::CsumDiff => helper_status(28),
                Feature::AdjustHead => helper_status(44),
                Feature::RedirectMap => helper_status(51),
                Feature::AdjustMeta => helper_status(54),
                Feature::AdjustTail => helper_status(65),
                Feature::FibLookup => helper_status(69),
                Feature::SpinLock => helper_status(93),
                Feature::StoreBytes => helper_status(190),
                // BPF_MAP_TYPE_ARRAY of 64-byte values, BPF_F_MMAPABLE (1 << 10).
                Feature::MmapArray => map_status(2, 4, 64, 1 << 10),
                Feature::LpmTrie => map_status(11, 8, 4, 1),
                // struct bpf_cpumap_val (qsize + program fd): 5.9+.
                Feature::Cpumap => map_status(16, 4, 8, 0),
                Feature::Xskmap => map_status(17, 4, 4, 0),
                Feature::QueueMap => map_status(22, 0, 4, 0),
                Feature::TestRun => run_status(bpf::Run::Plain),
                Feature::TestRunCtx => run_status(bpf::Run::WithCtx),
                Feature::LiveFrames => run_status(bpf::Run::Live),
                // BPF_FUNC_redirect_neigh (5.10), tc programs only.
                Feature::RedirectNeigh => match bpf::helper_in(bpf::BPF_PROG_TYPE_SCHED_CLS, 152) {
                    bpf::HelperAnswer::Allowed => Status::Yes,
                    bpf::HelperAnswer::Refused(line) => Status::No(line),
                    bpf::HelperAnswer::Unknown(e) => Status::Unknown(e),
                },
                // What aya decides by: tcx links from 6.6 (kernel/bpf/tcx.c), else netlink.
                Feature::Tcx => {
                    if parse_version(&kernel) >= (6, 6) {
                        Status::Yes
                    } else {
                        Status::No(format!("kernel {kernel} is older than 6.6"))
                    }
                }
            };
            status.insert(f, s);
        }
        for f in forced {
            status.insert(*f, Status::ForcedOff);
        }
        Features {
            version: parse_version(&kernel),
            kernel,
            status,
        }
    }

    /// Asks the kernel, with [`FORCE_ENV`] applied.
    pub fn detect() -> Result<Features, String> {
        let forced = match std::env::var(FORCE_ENV) {
            Ok(s) => parse_force(&s)?,
            Err(_) => vec![],
        };
        Ok(Features::detect_with(&forced))
    }

    /// Whether `f` is present (and not forced off).
    pub fn has(&self, f: Feature) -> bool {
        self.status.get(&f).is_some_and(Status::yes)
    }

    /// The required features that are absent (see [`Feature::required`]).
    pub fn missing_required(&self) -> Vec<Feature> {
        Feature::ALL
            .into_iter()
            .filter(|f| f.required() && !self.has(*f))
            .collect()
    }

    /// `Err` with one line naming what is missing when the fast path cannot load here.
    pub fn check_fast_path(&self) -> Result<(), String> {
        if self.version < MIN_KERNEL {
            return Err(format!(
                "kernel {} is older than {}.{}, the oldest the fast path supports",
                self.kernel, MIN_KERNEL.0, MIN_KERNEL.1
            ));
        }
        let missing = self.missing_required();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing
            .iter()
            .map(|f| format!("{} ({})", f.name(), self.status[f].detail()))
            .collect();
        Err(format!(
            "kernel {} lacks what the fast path needs: {} — `l2xdp-dataplane probe` lists every feature",
            self.kernel,
            names.join("; ")
        ))
    }

    /// How AF_XDP frames carry their metadata on this kernel.
    pub fn xsk_handoff(&self) -> XskHandoff {
        if self.has(Feature::AdjustMeta) {
            XskHandoff::Meta
        } else {
            XskHandoff::Inline
        }
    }
}

/// What an interface offers XDP.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    /// `ethtool -i`'s driver.
    pub driver: Option<String>,
    /// The `netdev` family's answer (kernels 6.3+).
    pub xdp: Option<netdev::XdpFeatures>,
}

impl Interface {
    /// Asks the kernel about `name` (in the calling thread's network namespace).
    pub fn probe(name: &str) -> Result<Interface, String> {
        let ifindex = crate::loader::ifindex(name).map_err(|e| e.to_string())?;
        Ok(Interface {
            name: name.into(),
            ifindex,
            driver: netdev::driver(name),
            xdp: netdev::xdp_features(ifindex),
        })
    }

    fn bit(&self, b: u64) -> Option<bool> {
        self.xdp.map(|f| f.xdp & b != 0)
    }

    /// Native (driver) XDP: `None` when the kernel cannot say (before 6.3: `attach` tries
    /// native mode and falls back to generic).
    pub fn native(&self) -> Option<bool> {
        self.bit(netdev::xdp_act::BASIC)
    }

    /// Can be the target of `XDP_REDIRECT` (`ndo_xdp_xmit`).
    pub fn redirect_target(&self) -> Option<bool> {
        self.bit(netdev::xdp_act::NDO_XMIT)
    }

    /// AF_XDP zero-copy.
    pub fn zero_copy(&self) -> Option<bool> {
        self.bit(netdev::xdp_act::XSK_ZEROCOPY)
    }
}

/// The features of this kernel, probed once per process ([`FORCE_ENV`] applied). A malformed
/// [`FORCE_ENV`] is reported on stderr and ignored.
pub fn features() -> &'static Features {
    static F: OnceLock<Features> = OnceLock::new();
    F.get_or_init(|| match Features::detect() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("{e}; ignored");
            eprintln!("l2xdp: {e}; ignored");
            Features::detect_with(&[])
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn force_lists_parse_and_refuse_what_they_cannot_mean() {
        assert_eq!(
            parse_force("adjust_meta=off, live_frames=off").unwrap(),
            vec![Feature::AdjustMeta, Feature::LiveFrames]
        );
        assert_eq!(parse_force("").unwrap(), vec![]);
        assert!(parse_force("adjust_meta=on")
            .unwrap_err()
            .contains("only `off`"));
        assert!(parse_force("warp_drive=off")
            .unwrap_err()
            .contains("unknown feature"));
        assert!(parse_force("adjust_meta")
            .unwrap_err()
            .contains("FEATURE=off"));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("5.10.0-33-amd64"), (5, 10));
        assert_eq!(parse_version("6.18.44-fc-v1300"), (6, 18));
        assert_eq!(parse_version("6.1.0-28-cloud-amd64"), (6, 1));
        assert_eq!(parse_version("weird"), (0, 0));
        assert!(parse_version("4.19.0-27-amd64") < MIN_KERNEL);
    }

    #[test]
    fn every_feature_has_a_unique_name() {
        for f in Feature::ALL {
            assert_eq!(Feature::from_name(f.name()), Some(f));
        }
    }

    #[test]
    fn a_forced_feature_is_absent_and_the_handoff_follows_it() {
        let f = Features::detect_with(&[Feature::AdjustMeta, Feature::LiveFrames]);
        assert_eq!(f.status[&Feature::AdjustMeta], Status::ForcedOff);
        assert!(!f.has(Feature::LiveFrames));
        assert_eq!(f.xsk_handoff(), XskHandoff::Inline);
    }

    #[test]
    fn a_missing_required_feature_is_named_in_one_line() {
        let mut f = Features::detect_with(&[]);
        f.version = (6, 1);
        f.status.insert(
            Feature::FibLookup,
            Status::No("program of this type cannot use helper bpf_fib_lookup#69".into()),
        );
        let e = f.check_fast_path().unwrap_err();
        assert!(e.contains("fib_lookup"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        f.version = (4, 19);
        assert!(f.check_fast_path().unwrap_err().contains("older than 5.10"));
    }
}
