//! `l2xdp-bench cost --method testrun` (the default): nanoseconds per packet of each XDP
//! program by plain `BPF_PROG_TEST_RUN`, which every kernel the fast path supports runs (no
//! live frames, no traffic), beside two baselines measured the same way, cases interleaved
//! round by round:
//!
//! - `swapmac`: swap the MACs, XDP_TX (the lab's `xdp_swap_mac`): the least an XDP program does;
//! - `router-v4` (and `router-v6`): the bench's `xdp_router`, what the kernel's xdp_fwd sample
//!   does — parse, `bpf_fib_lookup`, TTL − 1 with the incremental checksum (RFC 1624, as
//!   `ip_decrease_ttl`), the MACs from the FIB, `bpf_redirect` — so the report says what L2TP
//!   adds on top of routing (`ratio_to_router`: / the same round's router-v4).
//!
//! Each run is `repeat = 1` on one frame: the kernel does not reset the frame between the
//! repetitions of one run, so with `repeat > 1` every repetition after the first would see the
//! frame the previous one rewrote (decapsulated, encapsulated, MACs swapped). A pass is
//! `--runs` runs; each case has one frame per installed session (v2: `--sessions`; v3: one
//! pseudowire per attachment circuit, `--v3-circuits`; the baselines: one per v2 session, with
//! the subscriber's source address) and visits them in a seeded random permutation (`--seed`,
//! printed), every session once per cycle, the cursor carried from pass to pass and round to
//! round (a pass shorter than a cycle continues where the previous one stopped): the frames are
//! spread over all installed sessions, not a hot subset. Every run's verdict and output frame
//! are checked against the reference — `l2xdp_wire::datapath` (`decap` +
//! `emit_inner_ethernet`, `encap`) as the differential tests do; swapmac: the MACs swapped;
//! router: the MACs of the FIB's answer (the lab's permanent neighbour), TTL − 1 and the
//! checksum as `ip_decrease_ttl` computes it (and checked to be a valid header checksum) —
//! and the fast path's DECAP/ENCAP counter must rise by the runs, with no other verdict and no
//! drop. A pass with a mismatch is reported and left out (`verified`).
//!
//! `decap-v2` runs with the fast path's default configuration (UDP checksums verified),
//! `decap-v2-nocsum` with `verify_udp_checksum` off, on the same frames (every one with a
//! non-zero UDP checksum): their difference is the checksum's share (`udp_checksum_share`).
//!
//! ns/packet = the sum of the kernel's `duration` of the runs / runs: the program and the two
//! clock reads around it (test-run overhead that the baselines have too), not the syscall. The
//! programs run in the LNS namespace with the ingress interface of their side (la, lc; v3: the
//! session's attachment circuit), so `bpf_fib_lookup` and the session maps see what they see
//! in forwarding; the test run carries out no redirect.
//!
//! v3: a pseudowire is bound to an attachment-circuit interface (`Binding::AttachmentCircuit`,
//! the `l2xdp_ac` map keyed by ifindex, 4096 entries), so v3 reaches as many sessions as
//! there are circuits: here veth ends `v3ac<k>` in the LNS namespace (both ends of each pair; a
//! test run needs only an ingress ifindex), at most [`V3_MAX`]. A million v3 sessions would need circuits keyed
//! by more than the interface (e.g. a VLAN per pseudowire): a product feature, not a bench one.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};
use std::time::Instant;

use aya::programs::ProgramFd;
use aya::Ebpf;
use l2xdp_dataplane::api::{Binding, DataPlane};
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::bpf::UTIL_OBJ;
use l2xdp_lab::is_root;
use l2xdp_lab::test_run::{self, action};
use l2xdp_lab::topology::{Pins, Topology, CORE_MAC, LAC_MAC, LA_MAC, LC_MAC};
use l2xdp_lab::Netns;
use l2xdp_wire::datapath::{
    decap, emit_inner_ethernet, encap, DecapConfig, InnerKind, Session, SessionKey, TxSeq, Verdict,
};
use l2xdp_wire::net::frame::{udp_frame, Endpoints};
use serde::Serialize;

use crate::bpf::{load_bench, prog, xdp};
use crate::cases::{frame64, peer_of, sub_addr, v2_session, v3_session, V3_CUST_CORE, V3_CUST_SUB};
use crate::common::{bpf, fmt_summary, io, permutation, session_map_memory, Error, CORE4};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::summary::Summary;

/// The most v3 sessions (attachment circuits): `max_entries` of the fast path's `l2xdp_ac`.
pub const V3_MAX: u32 = 4096;

/// The default `--seed` of the session order.
pub const DEFAULT_SEED: u64 = crate::common::SESSION_ORDER_SEED;

/// The LNS's IPv6 address on lc, the core host's (the router-v6 destination, a permanent
/// neighbour at [`CORE_MAC`]) and the subscribers' prefix (router-v6 sources).
const LNS_CORE6: &str = "2001:db8:c::1";
const CORE6: &str = "2001:db8:c::2";
const LNS_ACCESS6: &str = "2001:db8:a::1";
const SUB6_BASE: u128 = 0x2001_0db8_0100_0000_0000_0000_0000_0000;

/// The testrun cases, in their default interleaving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TrCase {
    /// Swap MACs, XDP_TX: the first baseline.
    #[serde(rename = "swapmac")]
    SwapMac,
    /// `xdp_router` on IPv4 la → lc: the routed baseline.
    #[serde(rename = "router-v4")]
    RouterV4,
    /// `xdp_router` on IPv6 la → lc.
    #[serde(rename = "router-v6")]
    RouterV6,
    /// L2TPv2 decap la → lc, UDP checksums verified (the default configuration).
    #[serde(rename = "decap-v2")]
    DecapV2,
    /// L2TPv2 decap la → lc, `verify_udp_checksum` off.
    #[serde(rename = "decap-v2-nocsum")]
    DecapV2NoCsum,
    /// L2TPv2 encap lc → la.
    #[serde(rename = "encap-v2")]
    EncapV2,
    /// L2TPv3 decap la → the session's circuit.
    #[serde(rename = "decap-v3")]
    DecapV3,
    /// L2TPv3 encap the session's circuit → la.
    #[serde(rename = "encap-v3")]
    EncapV3,
}

impl TrCase {
    /// Every case, in the default interleaving order.
    pub const ALL: [TrCase; 8] = [
        TrCase::SwapMac,
        TrCase::RouterV4,
        TrCase::RouterV6,
        TrCase::DecapV2,
        TrCase::DecapV2NoCsum,
        TrCase::EncapV2,
        TrCase::DecapV3,
        TrCase::EncapV3,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TrCase::SwapMac => "swapmac",
            TrCase::RouterV4 => "router-v4",
            TrCase::RouterV6 => "router-v6",
            TrCase::DecapV2 => "decap-v2",
            TrCase::DecapV2NoCsum => "decap-v2-nocsum",
            TrCase::EncapV2 => "encap-v2",
            TrCase::DecapV3 => "decap-v3",
            TrCase::EncapV3 => "encap-v3",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<TrCase> {
        TrCase::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The program under test.
    pub fn program(self) -> &'static str {
        match self {
            TrCase::SwapMac => prog::SWAP_MAC,
            TrCase::RouterV4 | TrCase::RouterV6 => prog::ROUTER,
            TrCase::DecapV2 | TrCase::DecapV2NoCsum | TrCase::DecapV3 => prog::ACCESS,
            TrCase::EncapV2 | TrCase::EncapV3 => prog::CORE,
        }
    }

    fn v3(self) -> bool {
        matches!(self, TrCase::DecapV3 | TrCase::EncapV3)
    }

    /// The fast path's verdict counter every run must raise, if any.
    fn fastpath_verdict(self) -> Option<u32> {
        match self {
            TrCase::DecapV2 | TrCase::DecapV2NoCsum | TrCase::DecapV3 => Some(verdict::DECAP),
            TrCase::EncapV2 | TrCase::EncapV3 => Some(verdict::ENCAP),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Test runs (frames) per case and round; None: 65,536 or one full cycle over the v2
    /// sessions, whichever is more.
    pub runs: Option<u32>,
    /// v2 sessions installed; the frames are spread over all of them.
    pub sessions: u32,
    /// v3 sessions (attachment circuits), at most [`V3_MAX`].
    pub v3_circuits: u32,
    /// Seed of the session order.
    pub seed: u64,
    /// The core the test runs run on.
    pub cpu: usize,
    /// The cases, in interleaving order (swapmac and router-v4 are the baselines).
    pub cases: Vec<TrCase>,
}

/// One case in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Round (0-based).
    pub round: usize,
    /// Runs.
    pub runs: u64,
    /// Sum of the kernel's durations, ns.
    pub ns_total: u64,
    /// ns_total / runs.
    pub ns_per_packet: f64,
    /// Runs whose verdict or output frame differed from the reference.
    pub mismatches: u64,
    /// Fast-path DECAP/ENCAP verdicts counted during the pass.
    pub fastpath_forwarded: u64,
    /// Any other verdict, and drops.
    pub fastpath_other: u64,
    /// Every run matched the reference and the fast path's counters agree.
    pub verified: bool,
    /// ns_per_packet / swapmac's in the same round (both verified).
    pub ratio_to_swapmac: Option<f64>,
    /// ns_per_packet / router-v4's in the same round (both verified).
    pub ratio_to_router: Option<f64>,
}

/// One case over rounds.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case.
    pub case: &'static str,
    /// Program.
    pub program: &'static str,
    /// Frame in, bytes.
    pub frame_in_bytes: usize,
    /// Frame out (the reference's), bytes.
    pub frame_out_bytes: usize,
    /// Distinct frames (sessions) the runs are spread over.
    pub frames: usize,
    /// Runs of all rounds / frames: how many times the permutation was gone through.
    pub cycles: f64,
    /// Verified rounds' ns per packet.
    pub ns_per_packet: Option<Summary>,
    /// Per-round ratio to swapmac.
    pub ratio_to_swapmac: Option<Summary>,
    /// Per-round ratio to router-v4.
    pub ratio_to_router: Option<Summary>,
    /// Verified rounds.
    pub verified_rounds: usize,
    /// Every round.
    pub samples: Vec<Sample>,
}

/// One per-session map's kernel memory.
#[derive(Debug, Clone, Serialize)]
pub struct MapMemory {
    /// Map name.
    pub map: String,
    /// fdinfo `memlock`, bytes.
    pub memlock: u64,
    /// fdinfo `max_entries`.
    pub max_entries: u64,
}

/// The run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "testrun".
    pub method: &'static str,
    /// UTC start.
    pub date: String,
    /// Machine.
    pub machine: Machine,
    /// Core.
    pub cpu: usize,
    /// Rounds.
    pub rounds: usize,
    /// Runs per case and round.
    pub runs: u32,
    /// v2 sessions.
    pub sessions: u32,
    /// v3 sessions (one per attachment circuit).
    pub v3_sessions: u32,
    /// Seed of the session order (a Fisher–Yates permutation over splitmix64).
    pub seed: u64,
    /// `max_sessions` the fast path's maps were sized for (`loader::load_sized`).
    pub max_sessions: u32,
    /// Seconds to install the v2 sessions (`XdpDataPlane::install`, one by one).
    pub install_v2_seconds: f64,
    /// Seconds to install the v3 sessions.
    pub install_v3_seconds: f64,
    /// The per-session maps' kernel memory.
    pub maps: Vec<MapMemory>,
    /// Σ memlock / (v2 + v3 sessions), bytes.
    pub bytes_per_session: f64,
    /// Per-round (decap-v2 − decap-v2-nocsum) / decap-v2: the UDP checksum's share of decap.
    pub udp_checksum_share: Option<Summary>,
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// One run's input and the reference's output.
struct Frame {
    input: Vec<u8>,
    ifindex: u32,
    action: u32,
    out: Vec<u8>,
}

/// One case's inputs, order and configuration.
struct Prepared {
    case: TrCase,
    fd: ProgramFd,
    cfg: FastPathConfig,
    frames: Vec<Frame>,
    /// Index into `orders`.
    order: usize,
    cursor: usize,
}

struct Reference<'a> {
    sessions: &'a HashMap<SessionKey, Session>,
    bound: &'a HashMap<IpAddr, SessionKey>,
    mtu: usize,
}

impl Reference<'_> {
    fn decap(&self, case: TrCase, frame: &[u8], cfg: &DecapConfig) -> Result<Vec<u8>, Error> {
        let bad = |why: String| Error::Frame(format!("{}: reference: {why}", case.name()));
        let v = decap(
            frame,
            cfg,
            |k| self.sessions.get(k),
            |_| None,
            |a| self.bound.get(&a).copied(),
        );
        let Verdict::Forward { inner, kind, .. } = v else {
            return Err(bad(format!("{v:?}, not forwarded")));
        };
        match kind {
            InnerKind::Ethernet => Ok(frame[inner].to_vec()),
            _ => {
                let mut out = vec![0; 2048];
                let n = emit_inner_ethernet(&frame[inner], CORE_MAC, LC_MAC, &mut out)
                    .map_err(|e| bad(format!("{e:?}")))?;
                out.truncate(n);
                out.shrink_to_fit();
                Ok(out)
            }
        }
    }

    fn encap(&self, case: TrCase, s: &Session, inner: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = vec![0; 2048];
        let n = encap(s, &mut TxSeq::default(), inner, self.mtu, &mut out)
            .map_err(|e| Error::Frame(format!("{}: reference: {e:?}", case.name())))?;
        out.truncate(n);
        // Exact: a million frames of 2 KiB buffers would not fit.
        out.shrink_to_fit();
        Ok(out)
    }
}

/// The routed frame: the MACs of the FIB's answer (lc → the core host), TTL − 1 with the
/// checksum as Linux `ip_decrease_ttl` updates it (RFC 1624 eqn. 3), or hop limit − 1.
fn routed(frame: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = |why: &str| Error::Frame(format!("router reference: {why}"));
    let mut out = frame.to_vec();
    out[..6].copy_from_slice(&CORE_MAC.0);
    out[6..12].copy_from_slice(&LC_MAC.0);
    match (frame.get(12), frame.get(13)) {
        (Some(0x08), Some(0x00)) if frame.len() >= 34 => {
            let check = u32::from(u16::from_ne_bytes([out[24], out[25]]));
            let check = check + u32::from(0x0100u16.to_be());
            let check = (check + u32::from(check >= 0xffff)) as u16;
            out[24..26].copy_from_slice(&check.to_ne_bytes());
            out[22] -= 1;
            // The incremental update must leave a valid header checksum.
            let mut sum: u32 = out[14..34]
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            if sum != 0xffff {
                return Err(bad("the updated IPv4 header checksum is not valid"));
            }
        }
        (Some(0x86), Some(0xdd)) if frame.len() >= 54 => out[21] -= 1,
        _ => return Err(bad("neither IPv4 nor IPv6")),
    }
    Ok(out)
}

fn prog_fd(e: &mut Ebpf, p: &'static str) -> Result<ProgramFd, Error> {
    let x = xdp(e, p)?;
    x.fd()
        .map_err(|x| bpf(p)(x.to_string()))?
        .try_clone()
        .map_err(|x| bpf(p)(x.to_string()))
}

/// `ip -n <ns> -batch -` with `lines`.
fn ip_batch(ns: &Netns, lines: &str) -> Result<(), Error> {
    let what = format!("ip -n {} -batch -", ns.name);
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(io(what.clone()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(lines.as_bytes())
            .map_err(io(what.clone()))?;
    }
    let st = child.wait().map_err(io(what.clone()))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::Options(format!("{what}: {st}")))
    }
}

/// IPv6 in the LNS namespace for router-v6: addresses on la and lc, forwarding, the core host
/// a permanent neighbour on lc (the lab's topology has IPv6 off).
fn enable_ipv6(lns: &Netns) -> Result<(), Error> {
    for k in [
        "all.disable_ipv6=0",
        "default.disable_ipv6=0",
        "la.disable_ipv6=0",
        "lc.disable_ipv6=0",
        "all.forwarding=1",
    ] {
        let st = Command::new("ip")
            .args(["netns", "exec", &lns.name, "sysctl", "-qw"])
            .arg(format!("net.ipv6.conf.{k}"))
            .status()
            .map_err(io("sysctl"))?;
        if !st.success() {
            return Err(Error::Options(format!("sysctl net.ipv6.conf.{k}: {st}")));
        }
    }
    ip_batch(
        lns,
        &format!(
            "addr add {LNS_ACCESS6}/64 dev la nodad\naddr add {LNS_CORE6}/64 dev lc nodad\n\
             neigh replace {CORE6} lladdr {CORE_MAC} nud permanent dev lc\n"
        ),
    )
}

fn sub6(i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(SUB6_BASE + 1 + u128::from(i)))
}

/// Runs the method; the caller writes the JSON.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if !is_root() {
        return Err(Error::NotRoot);
    }
    let features = l2xdp_dataplane::probe::features();
    if !features.has(l2xdp_dataplane::probe::Feature::TestRunCtx) {
        return Err(Error::Options(format!(
            "cost --method testrun needs BPF_PROG_TEST_RUN with an xdp_md context (5.15+; \
             bpf_fib_lookup needs the ingress interface): kernel {} has none — \
             use --method forward",
            features.kernel
        )));
    }
    if opts.cases.is_empty() || opts.rounds == 0 || opts.sessions == 0 || opts.runs == Some(0) {
        return Err(Error::Options(
            "need at least one case, round, session and run".into(),
        ));
    }
    let any_v3 = opts.cases.iter().any(|c| c.v3());
    if any_v3 && !(1..=V3_MAX).contains(&opts.v3_circuits) {
        return Err(Error::Options(format!(
            "--v3-circuits {}: 1 to {V3_MAX} (one v3 session per attachment-circuit interface; \
             the fast path's l2xdp_ac map holds {V3_MAX})",
            opts.v3_circuits
        )));
    }
    let n3 = if any_v3 { opts.v3_circuits } else { 0 };
    let runs = opts.runs.unwrap_or(opts.sessions.max(65_536));
    let machine = Machine::probe();
    if opts.cpu >= machine.cores {
        return Err(Error::Options(format!(
            "--cpu {} but {} CPUs online",
            opts.cpu, machine.cores
        )));
    }
    let date = utc_now();
    pin_thread(opts.cpu).map_err(io(format!("pinning to CPU {}", opts.cpu)))?;

    // Field order is drop order: objects, pins, then the namespaces.
    let topo = Topology::new("cost");
    let lns = &topo.lns;
    if opts.cases.contains(&TrCase::RouterV6) {
        enable_ipv6(lns)?;
    }
    let ac_names: Vec<String> = (0..n3).map(|k| format!("v3ac{k}")).collect();
    if n3 > 0 {
        let mut b = String::new();
        // veth pairs with both ends in the LNS namespace, each end a circuit (veth is what the
        // lab needs anyway; no dummy or ifb module is assumed).
        for pair in ac_names.chunks(2) {
            match pair {
                [a, z] => {
                    b += &format!(
                        "link add {a} type veth peer name {z}\nlink set {a} up\nlink set {z} up\n"
                    )
                }
                [a] => b += &format!("link add {a} type veth peer name {a}p\nlink set {a} up\n"),
                _ => {}
            }
        }
        ip_batch(lns, &b)?;
    }
    let pins = Pins::under_sys_fs_bpf("cost");
    let pin_dir = pins.path().to_path_buf();
    let max_sessions = opts.sessions.saturating_add(n3).max(1);
    let (mut fast, la, lc, acs) = {
        let _g = lns.enter();
        let fast = loader::load_sized(Some(&pin_dir), max_sessions)?;
        let acs = ac_names
            .iter()
            .map(|a| loader::ifindex(a))
            .collect::<Result<Vec<u32>, _>>()?;
        (fast, loader::ifindex("la")?, loader::ifindex("lc")?, acs)
    };
    let mut dp = XdpDataPlane::open(&pin_dir)?;
    let cfg = FastPathConfig::default();
    dp.set_config(&cfg)?;
    let no_csum = FastPathConfig {
        decap: DecapConfig {
            verify_udp_checksum: false,
            ..cfg.decap
        },
        ..cfg
    };

    let mut sessions = HashMap::new();
    let mut bound = HashMap::new();
    let mut v2 = Vec::with_capacity(opts.sessions as usize);
    let t = Instant::now();
    for i in 0..opts.sessions {
        if i.is_multiple_of(65_536) && interrupt::requested() {
            return Err(Error::Interrupted);
        }
        let e = v2_session(i).1;
        dp.install(&e)?;
        sessions.insert(e.session.our_ids, e.session);
        if let Binding::Subscriber { ipv4: Some(a), .. } = e.binding {
            bound.insert(IpAddr::V4(a), e.session.our_ids);
        }
        v2.push(e.session);
    }
    let install_v2_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut v3 = Vec::with_capacity(n3 as usize);
    for (k, &ifindex) in acs.iter().enumerate() {
        let e = v3_session(k as u32, ifindex).1;
        dp.install(&e)?;
        sessions.insert(e.session.our_ids, e.session);
        v3.push(e.session);
    }
    let install_v3_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "l2xdp-bench cost: {} v2 sessions installed in {install_v2_seconds:.1} s, {n3} v3 in \
         {install_v3_seconds:.1} s (maps sized for {max_sessions})",
        opts.sessions
    );
    let maps: Vec<MapMemory> = session_map_memory(&pin_dir)?
        .into_iter()
        .map(|(map, memlock, max_entries)| MapMemory {
            map,
            memlock,
            max_entries,
        })
        .collect();
    let bytes_per_session = maps.iter().map(|m| m.memlock as f64).sum::<f64>()
        / f64::from(opts.sessions.saturating_add(n3));

    let mut util = Ebpf::load(UTIL_OBJ).map_err(|x| bpf("util object")(x.to_string()))?;
    xdp(&mut util, prog::SWAP_MAC)?
        .load()
        .map_err(|x| bpf(prog::SWAP_MAC)(format!("{x:?}")))?;
    let mut bench = load_bench(&[prog::ROUTER])?;

    // One order per set of frames: the v2 sessions' (also the baselines') and the v3 ones'.
    let orders = [
        permutation(opts.sessions, opts.seed),
        permutation(n3, opts.seed),
    ];
    let r = Reference {
        sessions: &sessions,
        bound: &bound,
        mtu: cfg.mtu as usize,
    };
    let mut prepared = Vec::new();
    for &case in &opts.cases {
        let fd = match case {
            TrCase::SwapMac => prog_fd(&mut util, prog::SWAP_MAC)?,
            TrCase::RouterV4 | TrCase::RouterV6 => prog_fd(&mut bench, prog::ROUTER)?,
            TrCase::DecapV2 | TrCase::DecapV2NoCsum | TrCase::DecapV3 => {
                prog_fd(&mut fast, prog::ACCESS)?
            }
            TrCase::EncapV2 | TrCase::EncapV3 => prog_fd(&mut fast, prog::CORE)?,
        };
        let n = if case.v3() { n3 } else { opts.sessions };
        let mut frames = Vec::with_capacity(n as usize);
        for i in 0..n {
            if i.is_multiple_of(65_536) && interrupt::requested() {
                return Err(Error::Interrupted);
            }
            frames.push(frame(case, i, &v2, &v3, &acs, la, lc, &r, &no_csum)?);
        }
        prepared.push(Prepared {
            case,
            fd,
            cfg: if case == TrCase::DecapV2NoCsum {
                no_csum
            } else {
                cfg
            },
            frames,
            order: usize::from(case.v3()),
            cursor: 0,
        });
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); prepared.len()];
    {
        let _g = lns.enter();
        // Warm-up: caches, map entries; not recorded (the cursor starts over afterwards).
        for p in prepared.iter_mut() {
            pass(&mut dp, p, &orders[p.order], runs.min(4096), usize::MAX)?;
            p.cursor = 0;
        }
        for round in 0..opts.rounds {
            for (k, p) in prepared.iter_mut().enumerate() {
                samples[k].push(pass(&mut dp, p, &orders[p.order], runs, round)?);
            }
        }
        dp.set_config(&cfg)?;
    }
    let base_of = |samples: &[Vec<Sample>], c: TrCase, r: usize| {
        prepared
            .iter()
            .position(|p| p.case == c)
            .map(|w| &samples[w][r])
            .filter(|w| w.verified && w.ns_per_packet > 0.0)
            .map(|w| w.ns_per_packet)
    };
    let mut share = Vec::new();
    for r in 0..opts.rounds {
        let swap = base_of(&samples, TrCase::SwapMac, r);
        let router = base_of(&samples, TrCase::RouterV4, r);
        if let (Some(on), Some(off)) = (
            base_of(&samples, TrCase::DecapV2, r),
            base_of(&samples, TrCase::DecapV2NoCsum, r),
        ) {
            share.push((on - off) / on);
        }
        for ss in samples.iter_mut() {
            let s = &mut ss[r];
            s.ratio_to_swapmac = swap.filter(|_| s.verified).map(|b| s.ns_per_packet / b);
            s.ratio_to_router = router.filter(|_| s.verified).map(|b| s.ns_per_packet / b);
        }
    }
    let cases = prepared
        .iter()
        .zip(samples)
        .map(|(p, ss)| CaseReport {
            case: p.case.name(),
            program: p.case.program(),
            frame_in_bytes: p.frames.first().map_or(0, |f| f.input.len()),
            frame_out_bytes: p.frames.first().map_or(0, |f| f.out.len()),
            frames: p.frames.len(),
            cycles: ss.iter().map(|s| s.runs as f64).sum::<f64>() / p.frames.len().max(1) as f64,
            ns_per_packet: Summary::of(
                &ss.iter()
                    .filter(|s| s.verified)
                    .map(|s| s.ns_per_packet)
                    .collect::<Vec<_>>(),
            ),
            ratio_to_swapmac: Summary::of(
                &ss.iter()
                    .filter_map(|s| s.ratio_to_swapmac)
                    .collect::<Vec<_>>(),
            ),
            ratio_to_router: Summary::of(
                &ss.iter()
                    .filter_map(|s| s.ratio_to_router)
                    .collect::<Vec<_>>(),
            ),
            verified_rounds: ss.iter().filter(|s| s.verified).count(),
            samples: ss,
        })
        .collect();
    Ok(Report {
        method: "testrun",
        date,
        machine,
        cpu: opts.cpu,
        rounds: opts.rounds,
        runs,
        sessions: opts.sessions,
        v3_sessions: n3,
        seed: opts.seed,
        max_sessions,
        install_v2_seconds,
        install_v3_seconds,
        maps,
        bytes_per_session,
        udp_checksum_share: Summary::of(&share),
        cases,
    })
}

/// Frame `i` of `case` (session i; baselines: subscriber i's address) and its reference.
#[allow(clippy::too_many_arguments)]
fn frame(
    case: TrCase,
    i: u32,
    v2: &[Session],
    v3: &[Session],
    acs: &[u32],
    la: u32,
    lc: u32,
    r: &Reference,
    no_csum: &FastPathConfig,
) -> Result<Frame, Error> {
    let sub = sub_addr(i).to_string();
    let k = i as usize;
    let missing = || Error::Frame(format!("{}: no session {i}", case.name()));
    let f = match case {
        TrCase::SwapMac => {
            let input = frame64(LAC_MAC, LA_MAC, &sub, CORE4)?;
            let mut out = input.clone();
            out[..6].copy_from_slice(&input[6..12]);
            out[6..12].copy_from_slice(&input[..6]);
            Frame {
                input,
                ifindex: la,
                action: action::TX,
                out,
            }
        }
        TrCase::RouterV4 | TrCase::RouterV6 => {
            let input = if case == TrCase::RouterV4 {
                frame64(LAC_MAC, LA_MAC, &sub, CORE4)?
            } else {
                let ep = Endpoints {
                    src_mac: LAC_MAC,
                    dst_mac: LA_MAC,
                    src: sub6(i),
                    dst: CORE6
                        .parse()
                        .map_err(|e| Error::Frame(format!("{CORE6}: {e}")))?,
                };
                udp_frame(&ep, 4000, 5000, &[7; 22]).map_err(|e| Error::Frame(format!("{e:?}")))?
            };
            let out = routed(&input)?;
            Frame {
                input,
                ifindex: la,
                action: action::REDIRECT,
                out,
            }
        }
        TrCase::DecapV2 | TrCase::DecapV2NoCsum => {
            let s = v2.get(k).ok_or_else(missing)?;
            let inner = frame64(LAC_MAC, LA_MAC, &sub, CORE4)?;
            let input = r.encap(case, &peer_of(s), &inner[14..])?;
            // The outer UDP checksum (IPv4 outer, no VLAN: bytes 40..42) must be there for
            // verify_udp_checksum to have anything to do.
            if input.get(40..42).is_none_or(|c| c == [0, 0]) {
                return Err(Error::Frame(format!(
                    "{}: frame {i} has no UDP checksum",
                    case.name()
                )));
            }
            let dc = if case == TrCase::DecapV2NoCsum {
                no_csum.decap
            } else {
                DecapConfig::default()
            };
            let out = r.decap(case, &input, &dc)?;
            Frame {
                input,
                ifindex: la,
                action: action::REDIRECT,
                out,
            }
        }
        TrCase::EncapV2 => {
            let s = v2.get(k).ok_or_else(missing)?;
            let input = frame64(CORE_MAC, LC_MAC, CORE4, &sub)?;
            let out = r.encap(case, s, &input[14..])?;
            Frame {
                input,
                ifindex: lc,
                action: action::REDIRECT,
                out,
            }
        }
        TrCase::DecapV3 => {
            let s = v3.get(k).ok_or_else(missing)?;
            let inner = frame64(V3_CUST_SUB, V3_CUST_CORE, &sub, CORE4)?;
            let input = r.encap(case, &peer_of(s), &inner)?;
            let out = r.decap(case, &input, &DecapConfig::default())?;
            Frame {
                input,
                ifindex: la,
                action: action::REDIRECT,
                out,
            }
        }
        TrCase::EncapV3 => {
            let s = v3.get(k).ok_or_else(missing)?;
            let input = frame64(V3_CUST_CORE, V3_CUST_SUB, CORE4, &sub)?;
            let out = r.encap(case, s, &input)?;
            Frame {
                input,
                ifindex: *acs.get(k).ok_or_else(missing)?,
                action: action::REDIRECT,
                out,
            }
        }
    };
    Ok(f)
}

/// (forwarding verdict of the case, every other verdict + drops) so far.
fn counters(dp: &XdpDataPlane, case: TrCase) -> Result<(u64, u64), Error> {
    let v = dp.verdict_counters()?;
    let fwd = case.fastpath_verdict().map_or(0, |k| v[k as usize]);
    let all: u64 = v[..verdict::WHY_BASE as usize].iter().sum();
    let drops: u64 = dp.drop_counters()?.iter().sum();
    Ok((fwd, all - fwd + drops))
}

/// One pass of `runs` test runs of one case, the frames in `order` from the case's cursor on;
/// every output checked.
fn pass(
    dp: &mut XdpDataPlane,
    p: &mut Prepared,
    order: &[u32],
    runs: u32,
    round: usize,
) -> Result<Sample, Error> {
    dp.set_config(&p.cfg)?;
    let (f0, o0) = counters(dp, p.case)?;
    let mut ns_total = 0u64;
    let mut mismatches = 0u64;
    let fd = p.fd.as_fd().as_raw_fd();
    if order.len() != p.frames.len() || order.is_empty() {
        return Err(Error::Options(format!(
            "{}: {} frames, an order of {}",
            p.case.name(),
            p.frames.len(),
            order.len()
        )));
    }
    for i in 0..runs as usize {
        if i.is_multiple_of(4096) && interrupt::requested() {
            return Err(Error::Interrupted);
        }
        let f = &p.frames[order[p.cursor] as usize];
        p.cursor = (p.cursor + 1) % order.len();
        let got = match test_run::run(fd, &f.input, f.ifindex, 1) {
            Ok(g) => g,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
            Err(e) => return Err(io(format!("test run of {}", p.case.program()))(e)),
        };
        ns_total += u64::from(got.duration_ns);
        if got.action != f.action || got.frame != f.out {
            if mismatches == 0 && round != usize::MAX {
                eprintln!(
                    "l2xdp-bench cost: {} round {round} run {i}: action {} (want {}), \
                     {} bytes out (want {}): differs from the reference",
                    p.case.name(),
                    got.action,
                    f.action,
                    got.frame.len(),
                    f.out.len()
                );
            }
            mismatches += 1;
        }
    }
    let (f1, o1) = counters(dp, p.case)?;
    let forwarded = f1 - f0;
    let other = o1 - o0;
    let expect_fwd = if p.case.fastpath_verdict().is_some() {
        u64::from(runs)
    } else {
        0
    };
    let verified = mismatches == 0 && forwarded == expect_fwd && other == 0;
    if !verified && round != usize::MAX {
        eprintln!(
            "l2xdp-bench cost: {} round {round}: NOT verified ({mismatches} of {runs} runs differ \
             from the reference; fast path forwarded {forwarded}, other {other}): left out",
            p.case.name()
        );
    }
    Ok(Sample {
        round,
        runs: u64::from(runs),
        ns_total,
        ns_per_packet: ns_total as f64 / f64::from(runs),
        mismatches,
        fastpath_forwarded: forwarded,
        fastpath_other: other,
        verified,
        ratio_to_swapmac: None,
        ratio_to_router: None,
    })
}

/// The table rows.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "method testrun: plain BPF_PROG_TEST_RUN, repeat 1, {} runs per case and round, {} rounds interleaved; CPU {}\n",
        r.runs, r.rounds, r.cpu
    );
    out += &format!(
        "sessions: {} v2, {} v3 (one per attachment circuit), maps sized for {}; installed in {:.1} s + {:.1} s; {:.0} B/session (Σ memlock of the per-session maps)\n",
        r.sessions, r.v3_sessions, r.max_sessions, r.install_v2_seconds, r.install_v3_seconds, r.bytes_per_session
    );
    out += &format!(
        "order: each case's frames (one per session) in a seeded random permutation, seed {:#x}, every session once per cycle\n",
        r.seed
    );
    out += "ns/packet = sum of the kernel's per-run duration / runs (verified rounds: every output = reference, fast-path counters = runs); ratios = / same-round swapmac, router-v4\n";
    out += &format!(
        "{:<16} {:<19} {:>8} {:>8} {:>7} {:>20} {:>18} {:>18} {:>8}\n",
        "case",
        "program",
        "bytes",
        "frames",
        "cycles",
        "ns/packet",
        "ratio to swapmac",
        "ratio to router",
        "verified"
    );
    for c in &r.cases {
        out += &format!(
            "{:<16} {:<19} {:>8} {:>8} {:>7.2} {:>20} {:>18} {:>18} {:>8}\n",
            c.case,
            c.program,
            format!("{}→{}", c.frame_in_bytes, c.frame_out_bytes),
            c.frames,
            c.cycles,
            fmt_summary(&c.ns_per_packet, 1),
            fmt_summary(&c.ratio_to_swapmac, 2),
            fmt_summary(&c.ratio_to_router, 2),
            format!("{}/{}", c.verified_rounds, c.samples.len())
        );
    }
    if let Some(s) = &r.udp_checksum_share {
        out += &format!(
            "UDP checksum verification's share of decap-v2 ((decap-v2 − decap-v2-nocsum) / decap-v2, per round): {}\n",
            fmt_summary(&Some(Summary {
                median: s.median * 100.0,
                min: s.min * 100.0,
                max: s.max * 100.0,
                ..*s
            }), 1) + " %"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routed_reference_decrements_the_ttl_and_keeps_the_checksum_valid() {
        for i in [0u32, 1, 255, 65_535, 1_048_575] {
            let f = frame64(LAC_MAC, LA_MAC, &sub_addr(i).to_string(), CORE4).expect("frame");
            let out = routed(&f).expect("a valid checksum after the update");
            assert_eq!((&out[..6], &out[6..12]), (&CORE_MAC.0[..], &LC_MAC.0[..]));
            assert_eq!(out[22], f[22] - 1, "TTL − 1");
            assert_eq!(out[26..], f[26..], "addresses and payload untouched");
            let ep = Endpoints {
                src_mac: LAC_MAC,
                dst_mac: LA_MAC,
                src: sub6(i),
                dst: CORE6.parse().expect("literal"),
            };
            let f6 = udp_frame(&ep, 4000, 5000, &[7; 22]).expect("frame");
            let out6 = routed(&f6).expect("IPv6");
            assert_eq!(out6[21], f6[21] - 1, "hop limit − 1");
            assert_eq!(out6[22..], f6[22..]);
        }
        assert!(routed(&[0; 60]).is_err(), "neither IPv4 nor IPv6");
    }
}
