//! `l2xdp-bench throughput`: the no-drop rate of the LNS on one core — upstream (decap),
//! downstream (encap) and both at once, 64 B / 512 B / IMIX frames, L2TPv2 and L2TPv3 — each
//! beside the no-drop rate of a plain XDP_REDIRECT forwarder on the same veth pair with the
//! same frames (the baseline), measured in the same round, cases alternating baseline, v2, v3,
//! baseline, v2, v3 … Also the engine of `l2xdp-bench scale`.
//!
//! Topology (the lab's three namespaces, plus `--v3-sessions` attachment-circuit veth pairs):
//!
//! ```text
//!   lac ns               lns ns  (DUT core)                       core ns
//!   lac0 (sink down) ─── la [xdp_l2tp_access | baseline]
//!                        lc [xdp_l2tp_core | baseline] ─────────── core0 (sink up, v2)
//!                        ac<k> [xdp_l2tp_core] ────────────────── acp<k> (sink up, v3)
//!   generator: xdp_gen_paced test runs on the generator core, in the lac ns, each frame
//!   redirected (DEVMAP) to lac0 (up), core0 (down v2, baseline down) or acp<k> (down v3)
//! ```
//!
//! - **Generator** (`xdp_gen_paced`, `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`) on
//!   `--cpu` (default: the last CPU): it copies the next prepared frame (round robin over the
//!   case's templates: one per session, spread over all sessions, sizes interleaved) and sends
//!   it through a DEVMAP to the veth it belongs to, so one generator offers both directions
//!   at once. **Pacing**: a token bucket in the program on `bpf_ktime_get_ns` — a run before the
//!   next frame is due returns XDP_DROP without sending — so frames leave spaced by
//!   1/rate with a resolution of one generator run (100–190 ns on average here, sends
//!   included: `paced_generator_run_ns` in the JSON), credit capped at
//!   [`BURST`] frames (a preempted generator does not catch up with a burst). The offered rate
//!   is the frames sent over the time from the first to the last send, both read by the
//!   program (`bpf_ktime_get_ns`), not the requested rate. The generator's veth transmit puts
//!   each frame in the DUT veth's receive ring (256 frames): what the DUT cannot take is
//!   dropped there, as a NIC's full RX ring would.
//! - **DUT**: the LNS program (or the baseline) runs in the veth's NAPI, **threaded NAPI**
//!   (`/sys/class/net/<dev>/threaded` = 1) whose kthreads (`napi/<dev>-<id>`) are pinned to
//!   `--dut-cpu` (default 0) with `sched_setaffinity`, as `taskset -p` does. Programs are
//!   swapped by replacing the program of the XDP link (`bpf_link_update`), so the NAPI and its
//!   pinned kthread stay.
//! - **Sink**: `xdp_count` (count, XDP_DROP) on core0 and acp<k> (up) and lac0 (down). Their
//!   veths are not threaded: their NAPI runs in softirq on the CPU that redirected to them,
//!   the DUT core — the sink's ~20 ns per frame is on the DUT's budget, for the baseline as
//!   for the LNS. Delivery is counted there, never at the generator.
//! - **No-drop rate**: a trial offers frames at a rate for `--trial-ms`; it passes when the
//!   sinks counted all but at most `--loss` (default 0.001 %) of the frames sent. Per case:
//!   one unpaced trial (overload: what the DUT delivers when offered all the generator can
//!   give, and the generator's maximum), then a binary search between 0 and the overload
//!   delivery rate (`--steps` halvings; resolution ≈ overload rate / 2^steps) — or, when a
//!   trial at about the overload delivery rate passes (a DUT part starved under overload, as
//!   AF_XDP mode's worker is beside the SCHED_FIFO NAPI), doubling the rate until a trial
//!   fails and bisecting between the last two. If the unpaced
//!   trial passes, the DUT outran the generator: the figure is the generator's maximum and
//!   the case is marked `generator_bound`.
//!
//! Frame sizes are Ethernet frame lengths on the veth (no FCS) on the plain side: the frame
//! leaving the LNS upstream and entering it downstream; the L2TP side is larger by the
//! encapsulation (v2 over UDP: 38 bytes; installed v3 over IP, no cookie: 38 bytes; live v3
//! over UDP, no cookie, Default L2-Specific Sublayer: 54 bytes). IMIX is the
//! common 7:4:1 mix of 64/570/1518-byte frames with 1518 → 1514 (a veth frame has no FCS:
//! a 1500-byte IP packet), interleaved 64,570,64,64,570,64,1514,64,570,64,64,570.

mod svg;

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aya::maps::{Array, DevMap, HashMap, MapData, PerCpuArray, PerCpuValues};
use aya::programs::xdp::XdpLink;
use aya::{Ebpf, EbpfLoader};
use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::scratch::Scratch;
use l2xdp_lab::test_run;
use l2xdp_lab::topology::{Pins, Topology, CORE_MAC, LAC_MAC, LA_MAC, LC_MAC};
use l2xdp_lab::traffic::Sub;
use l2xdp_lab::Netns;
use l2xdp_wire::datapath::{encap, Session, TxSeq};
use l2xdp_wire::net::ethernet::MacAddr;
use l2xdp_wire::net::frame::{udp_frame, Endpoints};
use serde::Serialize;

use crate::bpf::{attach, load_bench, take, xdp, Sink};
use crate::bpf::{bench, prog, BENCH_OBJ};
use crate::cases::{sub_addr, v2_session, v3_session};
use crate::common::{
    bpf, fmt_summary, io, napi_threaded, permutation, write_json, Error, Header, CORE4,
    SESSION_ORDER_SEED,
};
use crate::interrupt;
use crate::live::{Circuit, Live, SessionsFrom};
use crate::machine::{pin_thread, set_fifo, utc_now, Machine};
use crate::pktgen::{self, Generator, Kind};
use crate::summary::Summary;
use crate::xsk_lab::{Running, Workers};

/// Frames of credit the pacer keeps at most.
pub const BURST: u64 = 32;
/// Templates per direction at most (with more sessions, the templates are a seeded random
/// sample of them all: [`SESSION_ORDER_SEED`]).
pub const TEMPLATE_CAP: u32 = 65_536;
/// MTU of the access-side veths (la, lac0): room for a 1514-byte frame plus L2TP.
const ACCESS_MTU: u32 = 1600;
/// The IMIX sequence (7 × 64, 4 × 570, 1 × 1514).
const IMIX: [u32; 12] = [64, 570, 64, 64, 570, 64, 1514, 64, 570, 64, 64, 570];
/// Egress keys of the generator's DEVMAP.
const EG_LAC0: u32 = 0;
const EG_CORE0: u32 = 1;
const EG_ACP: u32 = 2;

/// `xdp` (the XDP fast path) or `afxdp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The XDP programs.
    Xdp,
    /// AF_XDP mode: the same programs hand forwarded frames to one worker (decap/encap with
    /// `wire::datapath`); the baseline is the raw AF_XDP forwarder (`xdp_to_xsk`, rx → tx).
    Afxdp,
}

impl Mode {
    /// Parses `xdp` or `afxdp`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "xdp" => Some(Mode::Xdp),
            "afxdp" => Some(Mode::Afxdp),
            _ => None,
        }
    }
}

/// Which way the frames go through the LNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// LAC → core: decapsulation.
    Up,
    /// Core → LAC: encapsulation.
    Down,
    /// Both at once, frames alternating (half the rate each way).
    Both,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Direction; 3] = [Direction::Up, Direction::Down, Direction::Both];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Both => "both",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// Frame sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// 64-byte frames.
    B64,
    /// 512-byte frames.
    B512,
    /// 7:4:1 of 64/570/1514.
    Imix,
}

impl Size {
    /// Every size.
    pub const ALL: [Size; 3] = [Size::B64, Size::B512, Size::Imix];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Size::B64 => "64",
            Size::B512 => "512",
            Size::Imix => "imix",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Size> {
        Size::ALL.into_iter().find(|z| z.name() == s)
    }

    /// The plain-side frame lengths, in sending order.
    fn pattern(self) -> &'static [u32] {
        match self {
            Size::B64 => &[64],
            Size::B512 => &[512],
            Size::Imix => &IMIX,
        }
    }
}

/// What runs on the LNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dut {
    /// `xdp_redirect_plain`: rewrite MACs, redirect to the other veth.
    Baseline,
    /// The fast path with L2TPv2 sessions (UDP, checksums on, PPP).
    V2,
    /// The fast path with L2TPv3 Ethernet pseudowires (IP encapsulation, no cookie).
    V3,
}

impl Dut {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Dut::Baseline => "baseline",
            Dut::V2 => "v2",
            Dut::V3 => "v3",
        }
    }

    /// Parses `v2` or `v3` (the baseline is always run).
    pub fn parse(s: &str) -> Option<Dut> {
        [Dut::V2, Dut::V3].into_iter().find(|d| d.name() == s)
    }
}

/// One case: a direction, a size and what runs on the LNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Direction.
    pub dir: Direction,
    /// Frame sizes.
    pub size: Size,
    /// Program(s) under test.
    pub dut: Dut,
    /// XDP or AF_XDP mode.
    pub mode: Mode,
}

impl Case {
    /// `up-64-v2`, `both-imix-baseline`, … (AF_XDP mode's baseline: `up-64-raw`).
    pub fn name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.dir.name(),
            self.size.name(),
            if self.mode == Mode::Afxdp && self.dut == Dut::Baseline {
                "raw"
            } else {
                self.dut.name()
            }
        )
    }

    /// The LNS programs: (on la, on lc).
    fn programs(&self) -> (&'static str, &'static str) {
        match (self.dut, self.mode) {
            (Dut::Baseline, Mode::Xdp) => (prog::REDIRECT_PLAIN, prog::REDIRECT_PLAIN),
            (Dut::Baseline, Mode::Afxdp) => (prog::TO_XSK, prog::TO_XSK),
            (Dut::V2 | Dut::V3, _) => (prog::ACCESS, prog::CORE),
        }
    }

    /// The programs (and AF_XDP worker), in words.
    pub fn program_names(&self) -> String {
        let (a, c) = self.programs();
        let worker = match (self.mode, self.dut, self.dir) {
            (Mode::Xdp, _, _) => "",
            (Mode::Afxdp, Dut::Baseline, Direction::Up) => " → raw AF_XDP forwarder la→lc",
            (Mode::Afxdp, Dut::Baseline, Direction::Down) => " → raw AF_XDP forwarder lc→la",
            (Mode::Afxdp, Dut::Baseline, Direction::Both) => {
                " → raw AF_XDP forwarder la⇄lc (one worker)"
            }
            (Mode::Afxdp, Dut::V3, _) => " → AF_XDP-mode worker (sockets on la, lc, ac<k>)",
            (Mode::Afxdp, _, _) => " → AF_XDP-mode worker (sockets on la, lc)",
        };
        let progs = match self.dir {
            Direction::Up => a.to_string(),
            Direction::Down if self.dut == Dut::V3 => format!("{c} (on ac<k>)"),
            Direction::Down => c.to_string(),
            Direction::Both if self.dut == Dut::V3 => format!("{a} + {c} (on ac<k>)"),
            Direction::Both => format!("{a} + {c}"),
        };
        progs + worker
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `xdp` or `afxdp`.
    pub mode: Mode,
    /// Directions.
    pub directions: Vec<Direction>,
    /// Sizes.
    pub sizes: Vec<Size>,
    /// L2TP versions (each with the baseline of its direction and size).
    pub versions: Vec<Dut>,
    /// v2 sessions; the v2 frames are spread over all of them.
    pub sessions: u32,
    /// Where the sessions come from: `live` (v2: the LAC emulator through l2xdpd, which
    /// installs them; v3: a v3 LCCE l2xdpd opening pseudowires) or `installed` by the bench.
    pub sessions_from: SessionsFrom,
    /// The l2xdpd binary (live sessions).
    pub l2xdpd: PathBuf,
    /// v3 sessions (one attachment-circuit veth pair each).
    pub v3_sessions: u8,
    /// Rounds (each case once per round, baseline first in its group).
    pub rounds: usize,
    /// Length of one trial.
    pub trial: Duration,
    /// Binary-search halvings.
    pub steps: u32,
    /// Loss tolerated by a passing trial, as a fraction (1e-5 = 0.001 %).
    pub loss: f64,
    /// Only trials at this offered rate (pps), no search (smoke runs).
    pub fixed_rate: Option<f64>,
    /// A rate passes if one of 1 + `retries` trials does (a hiccup of the VM longer than the
    /// 256-frame ring lasts is not the DUT's rate).
    pub retries: u32,
    /// Generator core.
    pub cpu: usize,
    /// The core the DUT's NAPI kthreads are pinned to.
    pub dut_cpu: usize,
    /// SCHED_FIFO priority of the generator thread and the DUT's NAPI kthreads (0: leave
    /// them SCHED_OTHER). On a shared machine a CFS kthread waits behind other jobs for
    /// milliseconds, longer than its 256-frame ring lasts.
    pub rt_prio: i32,
    /// Output directory (JSON and SVG).
    pub out: PathBuf,
    /// The command line.
    pub command: String,
    /// AF_XDP mode: frames the worker takes per socket and pass.
    pub batch: u32,
    /// The generator ([`Kind::for_this_kernel`] unless chosen).
    pub generator: Kind,
}

/// One trial at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Requested rate, pps (None: unpaced).
    pub target_pps: Option<f64>,
    /// Frames the generator sent.
    pub sent: u64,
    /// Bytes the generator sent.
    pub sent_bytes: u64,
    /// Frames the sinks counted.
    pub received: u64,
    /// Bytes the sinks counted.
    pub received_bytes: u64,
    /// Of which at the upstream sinks (core0, acp<k>).
    pub received_up: u64,
    /// Of which at the downstream sink (lac0).
    pub received_down: u64,
    /// First to last send, seconds (the generator's clock).
    pub seconds: f64,
    /// sent / seconds.
    pub offered_pps: f64,
    /// received / seconds.
    pub received_pps: f64,
    /// sent − received.
    pub lost: u64,
    /// lost / sent.
    pub loss_ratio: f64,
    /// Passed: loss_ratio ≤ the tolerance.
    pub pass: bool,
    /// Fast-path DECAP + ENCAP verdicts (0 for the baseline).
    pub fastpath_forwarded: u64,
    /// Any other fast-path verdict (must be 0: else frames took another path).
    pub fastpath_other: u64,
    /// The kernel's mean time per generator run over the trial (sent or not), ns: the
    /// pacing's resolution.
    pub generator_run_ns: f64,
}

/// One case in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Round (0-based).
    pub round: usize,
    /// The no-drop rate: the offered rate of the fastest passing trial, Mpps (None: none passed).
    pub no_drop_mpps: Option<f64>,
    /// Its bit rate at the plain-side frame sizes... as sent by the generator, Gbit/s.
    pub no_drop_gbps: Option<f64>,
    /// The overload trial's delivery rate, Mpps.
    pub overload_mpps: f64,
    /// The generator's maximum (overload trial's offered rate), Mpps.
    pub generator_mpps: f64,
    /// The unpaced trial lost nothing: the figure is the generator's, not the DUT's limit.
    pub generator_bound: bool,
    /// AF_PACKET generator: what it delivers into a drop sink on la with this case's frames,
    /// unpaced, measured just before the case (None: live frames).
    pub generator_ceiling_mpps: Option<f64>,
    /// no_drop_mpps / the same round's baseline no_drop_mpps.
    pub ratio: Option<f64>,
    /// overload_mpps / the same round's baseline overload_mpps (None for fixed-rate runs).
    pub overload_ratio: Option<f64>,
    /// Every trial, in order.
    pub trials: Vec<Trial>,
}

/// One case over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case name.
    pub name: String,
    /// Direction.
    pub direction: Direction,
    /// Sizes.
    pub size: Size,
    /// baseline, v2 or v3.
    pub dut: Dut,
    /// xdp or afxdp.
    pub mode: Mode,
    /// Programs on the LNS.
    pub programs: String,
    /// Where the case's sessions came from.
    pub sessions_from: SessionsFrom,
    /// Its baseline case.
    pub baseline: String,
    /// Mean generated frame length (the generator's side), bytes.
    pub frame_bytes: f64,
    /// No-drop rate, Mpps.
    pub no_drop_mpps: Option<Summary>,
    /// No-drop bit rate, Gbit/s.
    pub no_drop_gbps: Option<Summary>,
    /// Ratio to the baseline, per round.
    pub ratio: Option<Summary>,
    /// Delivery rate under overload, Mpps.
    pub overload_mpps: Option<Summary>,
    /// Ratio of the overload delivery rate to the baseline's, per round.
    pub overload_ratio: Option<Summary>,
    /// Generator maximum, Mpps.
    pub generator_mpps: Option<Summary>,
    /// Rounds where the generator, not the DUT, was the limit.
    pub generator_bound_rounds: usize,
    /// AF_PACKET generator: its ceiling with this case's frames (see
    /// [`Sample::generator_ceiling_mpps`]), Mpps.
    pub generator_ceiling_mpps: Option<Summary>,
    /// Mean time per generator run in the paced trials (the pacing's resolution), ns.
    pub paced_generator_run_ns: Option<Summary>,
    /// Trials whose fast path gave a verdict other than DECAP/ENCAP (must be 0).
    pub trials_other_verdicts: usize,
    /// Every round.
    pub samples: Vec<Sample>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header<Mode>,
    /// The topology, in words.
    pub topology: String,
    /// The generator's core.
    pub generator_cpu: usize,
    /// Which generator ran (the probe's `live_frames`).
    pub generator: Kind,
    /// It, in words.
    pub generator_describe: &'static str,
    /// Its sender threads' cores (AF_PACKET: one per core but the DUT's).
    pub generator_cpus: Vec<usize>,
    /// SCHED_FIFO priority of the generator and the DUT's NAPI kthreads (0: SCHED_OTHER).
    pub rt_prio: i32,
    /// The DUT's core (NAPI kthreads pinned there).
    pub dut_cpu: usize,
    /// AF_XDP mode: the worker's core (the DUT core).
    pub worker_cpu: Option<usize>,
    /// AF_XDP mode: frames per socket and pass.
    pub batch: Option<u32>,
    /// AF_XDP mode: how the worker is scheduled.
    pub worker_sched: Option<String>,
    /// AF_XDP mode: whether the sockets ran zero-copy (veth: copy mode).
    pub zero_copy: Option<bool>,
    /// The receivers' NAPI: threaded state and the kthreads pinned.
    pub receivers_napi: String,
    /// Where delivery is counted.
    pub sink: String,
    /// How the generator is paced.
    pub pacing: String,
    /// Loss tolerated by a passing trial, percent.
    pub loss_pct: f64,
    /// Trial length, ms.
    pub trial_ms: u64,
    /// Search halvings.
    pub steps: u32,
    /// Extra trials at a failing rate before it counts as failed.
    pub retries: u32,
    /// v2 sessions.
    pub sessions: u32,
    /// v3 sessions.
    pub v3_sessions: u8,
    /// Templates per direction (sessions spread over them).
    pub templates_per_direction: u32,
    /// Rounds.
    pub rounds: usize,
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// An Ethernet/IPv4/UDP frame of `len` bytes, payload zeros.
fn plain(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: &str,
    dst: &str,
    len: u32,
) -> Result<Vec<u8>, Error> {
    let ep = Endpoints {
        src_mac,
        dst_mac,
        src: src
            .parse()
            .map_err(|e| Error::Frame(format!("{src}: {e}")))?,
        dst: dst
            .parse()
            .map_err(|e| Error::Frame(format!("{dst}: {e}")))?,
    };
    let payload = vec![0u8; (len as usize).saturating_sub(42)];
    udp_frame(&ep, 4000, 5000, &payload).map_err(|e| Error::Frame(format!("{e:?}")))
}

fn encap_for(peer: &Session, inner: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = vec![0; bench::PFRAME_MAX + 256];
    let n = encap(peer, &mut TxSeq::default(), inner, 4000, &mut out)
        .map_err(|e| Error::Frame(format!("encap: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}

/// The template of one frame: its first 128 bytes (the rest must be zeros), length, egress.
fn template(frame: &[u8], egress: u32) -> Result<bench::PTemplate, Error> {
    if frame.len() > bench::PFRAME_MAX || frame.len() < 14 {
        return Err(Error::Frame(format!("{}-byte frame", frame.len())));
    }
    let head = frame.len().min(bench::FRAME_MAX);
    if frame[head..].iter().any(|b| *b != 0) {
        return Err(Error::Frame(
            "a frame has non-zero bytes past the template's first 128".into(),
        ));
    }
    let mut t = bench::PTemplate {
        len: frame.len() as u32,
        egress,
        data: [0; bench::FRAME_MAX],
    };
    t.data[..head].copy_from_slice(&frame[..head]);
    Ok(t)
}

/// The v2 sessions the frames are built for.
pub(crate) enum V2Sessions {
    /// `0..n` of [`v2_session`], installed by the bench.
    Installed(u32),
    /// Live sessions: the LAC's view of each and its IPCP address.
    Live(Vec<Sub>),
}

impl V2Sessions {
    fn count(&self) -> u32 {
        match self {
            V2Sessions::Installed(n) => *n,
            V2Sessions::Live(v) => v.len() as u32,
        }
    }

    /// Session `i` (< count): the LAC's view (the peer of the LNS's), the subscriber address.
    fn get(&self, i: u32) -> (Session, std::net::Ipv4Addr) {
        match self {
            V2Sessions::Installed(_) => (v2_session(i).0, sub_addr(i)),
            V2Sessions::Live(v) => (v[i as usize].view, v[i as usize].addr),
        }
    }

    fn from(&self) -> SessionsFrom {
        match self {
            V2Sessions::Installed(_) => SessionsFrom::Installed,
            V2Sessions::Live(_) => SessionsFrom::Live,
        }
    }
}

/// The frames of one direction: `m` of them, frame k of session `spread(k)`, size
/// `pattern[k % len]`.
fn direction_frames(
    dir_up: bool,
    dut: Dut,
    size: Size,
    v2: &V2Sessions,
    v3: &[Session],
) -> Result<Vec<bench::PTemplate>, Error> {
    let sessions = v2.count();
    let pat = size.pattern();
    let l = pat.len() as u32;
    let s_eff = match dut {
        Dut::V3 => v3.len() as u32,
        _ => sessions.min(TEMPLATE_CAP),
    };
    let m = s_eff.div_ceil(l) * l;
    // The sessions in a seeded random order: template j is session order[j] — every session
    // once per cycle, or, with more sessions than templates, a random sample of them all
    // (without repetition), never a block of neighbours.
    let order = permutation(sessions, SESSION_ORDER_SEED);
    let order3 = permutation(v3.len() as u32, SESSION_ORDER_SEED);
    let mut out = Vec::with_capacity(m as usize);
    for k in 0..m {
        let len = pat[(k % l) as usize];
        let j = k % s_eff;
        let i = order[j as usize % order.len().max(1)];
        let (peer, sub) = v2.get(i);
        let sub = sub.to_string();
        let t = match (dut, dir_up) {
            (Dut::Baseline, true) => template(&plain(LAC_MAC, LA_MAC, &sub, CORE4, len)?, EG_LAC0)?,
            (Dut::Baseline, false) | (Dut::V2, false) => {
                template(&plain(CORE_MAC, LC_MAC, CORE4, &sub, len)?, EG_CORE0)?
            }
            (Dut::V2, true) => {
                let inner = plain(LAC_MAC, LA_MAC, &sub, CORE4, len)?;
                template(&encap_for(&peer, &inner[14..])?, EG_LAC0)?
            }
            (Dut::V3, true) => {
                let peer = v3[order3[j as usize] as usize];
                let inner = plain(
                    MacAddr([2, 0, 0, 2, 0, 1]),
                    MacAddr([2, 0, 0, 3, 0, 1]),
                    &sub,
                    CORE4,
                    len,
                )?;
                template(&encap_for(&peer, &inner)?, EG_LAC0)?
            }
            (Dut::V3, false) => template(
                &plain(
                    MacAddr([2, 0, 0, 3, 0, 1]),
                    MacAddr([2, 0, 0, 2, 0, 1]),
                    CORE4,
                    &sub,
                    len,
                )?,
                EG_ACP + order3[j as usize],
            )?,
        };
        out.push(t);
    }
    Ok(out)
}

/// The case's frames: one direction, or both interleaved (up, down, up, down …).
fn case_frames(
    case: &Case,
    v2: &V2Sessions,
    v3: &[Session],
) -> Result<Vec<bench::PTemplate>, Error> {
    match case.dir {
        Direction::Up => direction_frames(true, case.dut, case.size, v2, v3),
        Direction::Down => direction_frames(false, case.dut, case.size, v2, v3),
        Direction::Both => {
            let up = direction_frames(true, case.dut, case.size, v2, v3)?;
            let down = direction_frames(false, case.dut, case.size, v2, v3)?;
            Ok(up.into_iter().zip(down).flat_map(|(a, b)| [a, b]).collect())
        }
    }
}

/// The lab of the scenario. Field order is drop order: links and objects, pins, namespaces.
pub(crate) struct Lab {
    /// The LAC emulator and l2xdpd of live sessions: stopped first.
    _live: Option<Live>,
    /// AF_XDP mode: the case's worker (raw forwarder or AF_XDP mode), stopped first.
    running: Option<Running>,
    /// AF_XDP mode: the workers and where they run (None: XDP mode).
    afxdp: Option<AfxdpMode>,
    la: Option<(&'static str, XdpLink)>,
    lc: Option<(&'static str, XdpLink)>,
    _ac_links: Vec<XdpLink>,
    sink_up: Sink,
    sink_down: Sink,
    gen: Ebpf,
    base: Ebpf,
    /// AF_XDP mode: a second bench object whose `xdp_to_xsk` (own XSKMAP) runs on lc.
    base_lc: Option<Ebpf>,
    fast: Ebpf,
    dp: XdpDataPlane,
    pace: Array<MapData, bench::Pace>,
    state: PerCpuArray<MapData, bench::PaceState>,
    templates: Array<MapData, bench::PTemplate>,
    _egress: DevMap<MapData>,
    lac0: u32,
    /// The v3 sessions as the LAC/LCCE sees them, session k on attachment circuit k.
    v3: Vec<Session>,
    /// Where the v3 sessions came from.
    v3_from: SessionsFrom,
    v2: V2Sessions,
    /// ns per generator run, last seen (sizes the test-run calls).
    iter_ns: f64,
    /// The NAPI set-up, in words.
    pub(crate) napi: String,
    pub(crate) pins: Pins,
    /// The bpffs of live sessions' pins (l2xdpd runs under `ip netns exec`).
    _scratch: Option<Scratch>,
    /// Live frames refused (the probe): the AF_PACKET generator ([`Lab::use_af_packet`]).
    pkt: Option<PktMode>,
    /// The v3 attachment circuits' far ends (acp<k>, core ns).
    acps: Vec<String>,
    topo: Topology,
}

/// The AF_PACKET generator of the lab: ports lac0, core0, acp0, acp1 … (a template's
/// `egress` is its port), and the ceiling's sink.
struct PktMode {
    gen: Generator,
    /// The loaded case's frames, and the id of their set.
    frames: Vec<pktgen::Frame>,
    set: u32,
    /// `xdp_count` for la during the ceiling pass, and its counter.
    count: Ebpf,
    count_rx: PerCpuArray<MapData, u64>,
}

/// AF_XDP mode's settings in the lab.
struct AfxdpMode {
    workers: Workers,
    cpu: usize,
    batch: u32,
    /// The generator's SCHED_FIFO priority (restored after spawning a worker).
    rt_prio: i32,
}

/// Runs `cat`/`echo` through `ip netns exec` (sysfs as the namespace sees it).
fn ns_sh(ns: &Netns, script: &str) -> Result<String, Error> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "sh", "-c", script])
        .output()
        .map_err(io(format!("ip netns exec {}: {script}", ns.name)))?;
    if !out.status.success() {
        return Err(Error::Options(format!(
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Kernel threads whose name starts with `prefix`: (pid, name).
fn kthreads(prefix: &str) -> Vec<(i32, String)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(c) = std::fs::read_to_string(e.path().join("comm")) {
                let c = c.trim();
                if c.starts_with(prefix) {
                    v.push((pid, c.to_owned()));
                }
            }
        }
    }
    v
}

/// `taskset -p` for a thread: pins `pid` to `cpu`.
fn pin_pid(pid: i32, cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t filled with CPU_SET; the size is the struct's.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread back to SCHED_OTHER on drop.
pub(crate) struct FifoGuard(bool);

impl FifoGuard {
    /// The calling thread to SCHED_FIFO `prio` (0: nothing).
    pub(crate) fn new(prio: i32) -> Result<FifoGuard, Error> {
        if prio > 0 {
            set_fifo(0, prio).map_err(io(format!("SCHED_FIFO {prio} for the generator")))?;
        }
        Ok(FifoGuard(prio > 0))
    }
}

impl Drop for FifoGuard {
    fn drop(&mut self) {
        if self.0 {
            let _ = set_fifo(0, 0);
        }
    }
}

impl Lab {
    /// Builds the topology, loads everything (fast-path maps sized for `sessions`), brings up
    /// `sessions` live v2 sessions through the l2xdpd binary `live` (else installs them),
    /// installs `v3_sessions` v3 sessions, threads and pins the DUT's NAPI.
    pub(crate) fn new(
        sessions: u32,
        v3_sessions: u8,
        dut_cpu: usize,
        rt_prio: i32,
        live: Option<&Path>,
    ) -> Result<Lab, Error> {
        let topo = Topology::new("tput");
        let (lac, lns, core) = (topo.lac.clone(), topo.lns.clone(), topo.core.clone());
        let acs = topo.add_attachment_circuits(v3_sessions);
        lns.ip(&["link", "set", "la", "mtu", &ACCESS_MTU.to_string()]);
        lac.ip(&["link", "set", "lac0", "mtu", &ACCESS_MTU.to_string()]);
        let mut devs = vec!["la".to_owned(), "lc".to_owned()];
        devs.extend(acs.iter().map(|(a, _)| a.clone()));
        // Unique per lab: a process may build several (scale, tests).
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = live.map(|_| Scratch::new(&format!("tput{k}")));
        let pins = match &scratch {
            Some(s) => Pins(s.pins.clone()),
            None => Pins::under_sys_fs_bpf(&format!("tput{k}")),
        };
        let pin_dir = pins.path().to_path_buf();
        let (mut fast, la_if, lc_if, ac_ifs) = {
            let _g = lns.enter();
            let fast = loader::load_sized(Some(&pin_dir), sessions + u32::from(v3_sessions))?;
            let mut acx = Vec::new();
            for (a, _) in &acs {
                acx.push(loader::ifindex(a)?);
            }
            (fast, loader::ifindex("la")?, loader::ifindex("lc")?, acx)
        };
        let mut dp = XdpDataPlane::open(&pin_dir)?;
        dp.set_config(&FastPathConfig {
            mtu: ACCESS_MTU - 14,
            ..FastPathConfig::default()
        })?;
        let (live, v2, v3) = match (live, &scratch) {
            (Some(bin), Some(s)) => {
                let acp_ifs = {
                    let _g = core.enter();
                    acs.iter()
                        .map(|(_, p)| loader::ifindex(p))
                        .collect::<Result<Vec<_>, _>>()?
                };
                let circuits: Vec<Circuit> = acs
                    .iter()
                    .zip(&ac_ifs)
                    .zip(acp_ifs)
                    .map(|(((a, _), l), c)| Circuit {
                        name: a.clone(),
                        lns_ifindex: *l,
                        core_ifindex: c,
                    })
                    .collect();
                // The access program on la while the sessions come up: it passes L2TP control
                // and PPP negotiation to l2xdpd.
                let la = attach(&mut fast, prog::ACCESS, &lns, "la")?;
                let (l, subs, pws) = Live::bring_up(&topo, s, bin, sessions, &circuits, &dp)?;
                drop(la);
                let v3 = pws.iter().map(|p| p.view).collect();
                (Some(l), V2Sessions::Live(subs), v3)
            }
            _ => {
                for i in 0..sessions {
                    if i % 65_536 == 0 && interrupt::requested() {
                        return Err(Error::Interrupted);
                    }
                    dp.install(&v2_session(i).1)?;
                }
                let mut v3 = Vec::new();
                for (k, ifx) in ac_ifs.iter().enumerate() {
                    let (view, entry) = v3_session(k as u32, *ifx);
                    dp.install(&entry)?;
                    v3.push(view);
                }
                (None, V2Sessions::Installed(sessions), v3)
            }
        };
        // The baseline forwarder and the generator: separate objects (the generator's
        // templates map is sized for the run).
        let mut base = load_bench(&[prog::REDIRECT_PLAIN, prog::TO_XSK])?;
        let mut fwd: HashMap<MapData, u32, bench::Fwd> = take(&mut base, bench::FWD)?;
        for (from, to, dst, src) in [
            (la_if, lc_if, CORE_MAC, LC_MAC),
            (lc_if, la_if, LAC_MAC, LA_MAC),
        ] {
            fwd.insert(
                from,
                bench::Fwd {
                    ifindex: to,
                    dst: dst.0,
                    src: src.0,
                },
                0,
            )
            .map_err(|x| bpf(bench::FWD)(x.to_string()))?;
        }
        let slots = 2 * (sessions.clamp(16, TEMPLATE_CAP) + 24);
        let mut gen = EbpfLoader::new()
            .map_max_entries(bench::PTEMPLATES, slots)
            .load(BENCH_OBJ)
            .map_err(|x| bpf("bench object")(x.to_string()))?;
        xdp(&mut gen, prog::GEN_PACED)?
            .load()
            .map_err(|x| bpf(prog::GEN_PACED)(format!("{x:?}")))?;
        let templates = take(&mut gen, bench::PTEMPLATES)?;
        let pace = take(&mut gen, bench::PACE)?;
        let state = take(&mut gen, bench::PACE_STATE)?;
        let mut egress: DevMap<MapData> = take(&mut gen, bench::EGRESS)?;
        // DEVMAP entries are looked up in the namespace of the thread that adds them.
        let lac0 = {
            let _g = lac.enter();
            let i = loader::ifindex("lac0")?;
            egress
                .set(EG_LAC0, i, None, 0)
                .map_err(|x| bpf(bench::EGRESS)(x.to_string()))?;
            i
        };
        {
            let _g = core.enter();
            egress
                .set(EG_CORE0, loader::ifindex("core0")?, None, 0)
                .map_err(|x| bpf(bench::EGRESS)(x.to_string()))?;
            for (k, (_, p)) in acs.iter().enumerate() {
                egress
                    .set(EG_ACP + k as u32, loader::ifindex(p)?, None, 0)
                    .map_err(|x| bpf(bench::EGRESS)(x.to_string()))?;
            }
        }
        let mut sink_up = Sink::new(&core, "core0")?;
        for (_, p) in &acs {
            sink_up.also(&core, p)?;
        }
        let sink_down = Sink::new(&lac, "lac0")?;
        let la = attach(&mut base, prog::REDIRECT_PLAIN, &lns, "la")?;
        let lc = attach(&mut base, prog::REDIRECT_PLAIN, &lns, "lc")?;
        let mut ac_links = Vec::new();
        for (a, _) in &acs {
            ac_links.push(attach(&mut fast, prog::CORE, &lns, a)?);
        }
        // Threaded NAPI on the DUT's receiving veths, now that their NAPI exists (it comes
        // with the XDP program and stays while the link's program is replaced); the kthreads
        // that appear are ours: pin them.
        let before: Vec<i32> = kthreads("napi/").into_iter().map(|(p, _)| p).collect();
        for d in &devs {
            ns_sh(&lns, &format!("echo 1 > /sys/class/net/{d}/threaded"))?;
        }
        let mut pinned = Vec::new();
        for (pid, comm) in kthreads("napi/") {
            let ours = devs.iter().any(|d| comm.starts_with(&format!("napi/{d}-")));
            if ours && !before.contains(&pid) {
                pin_pid(pid, dut_cpu).map_err(io(format!("pinning {comm} to CPU {dut_cpu}")))?;
                if rt_prio > 0 {
                    set_fifo(pid, rt_prio).map_err(io(format!("SCHED_FIFO for {comm}")))?;
                }
                pinned.push(format!("{comm} (pid {pid})"));
            }
        }
        let threaded: Vec<String> = devs
            .iter()
            .map(|d| format!("{d}={}", napi_threaded(&lns, d)))
            .collect();
        let napi = format!(
            "DUT veths threaded NAPI ({}), kthreads pinned to CPU {dut_cpu} ({}): {}; sinks lac0={}, core0={} (softirq on the CPU that redirects to them: the DUT's)",
            threaded.join(", "),
            if rt_prio > 0 { format!("SCHED_FIFO {rt_prio}") } else { "SCHED_OTHER".into() },
            if pinned.is_empty() { "none found".to_string() } else { pinned.join(", ") },
            napi_threaded(&lac, "lac0"),
            napi_threaded(&core, "core0"),
        );
        if pinned.len() < devs.len() {
            eprintln!(
                "l2xdp-bench: found {} NAPI kthreads of {} DUT veths: {napi}",
                pinned.len(),
                devs.len()
            );
        }
        Ok(Lab {
            _live: live,
            running: None,
            afxdp: None,
            la: Some((prog::REDIRECT_PLAIN, la)),
            lc: Some((prog::REDIRECT_PLAIN, lc)),
            _ac_links: ac_links,
            sink_up,
            sink_down,
            gen,
            base,
            base_lc: None,
            fast,
            dp,
            pace,
            state,
            templates,
            _egress: egress,
            lac0,
            v3,
            v3_from: v2.from(),
            v2,
            iter_ns: 40.0,
            napi,
            pins,
            _scratch: scratch,
            pkt: None,
            acps: acs.iter().map(|(_, p)| p.clone()).collect(),
            topo,
        })
    }

    /// Sends with AF_PACKET TX rings instead of live-frame test runs, one thread on each of
    /// `cpus`.
    pub(crate) fn use_af_packet(&mut self, cpus: &[usize]) -> Result<(), Error> {
        let mut ports: Vec<(&Netns, &str)> =
            vec![(&self.topo.lac, "lac0"), (&self.topo.core, "core0")];
        for p in &self.acps {
            ports.push((&self.topo.core, p.as_str()));
        }
        let gen = Generator::new(&ports, cpus).map_err(io("AF_PACKET generator"))?;
        let mut count = load_bench(&[prog::COUNT])?;
        let count_rx = take(&mut count, bench::RX)?;
        self.pkt = Some(PktMode {
            gen,
            frames: vec![],
            set: 0,
            count,
            count_rx,
        });
        Ok(())
    }

    /// Which generator runs.
    pub(crate) fn generator(&self) -> Kind {
        if self.pkt.is_some() {
            Kind::AfPacket
        } else {
            Kind::LiveFrames
        }
    }

    /// The AF_PACKET generator's ceiling for the loaded case: its frames, unpaced, all from
    /// lac0 into `xdp_count` on la (count, XDP_DROP) in place of la's program, for `dur`.
    /// Mpps counted at la. None with the live-frame generator.
    pub(crate) fn ceiling(&mut self, dur: Duration) -> Result<Option<f64>, Error> {
        let Some(pm) = self.pkt.as_mut() else {
            return Ok(None);
        };
        let Some((_, link)) = self.la.take() else {
            return Err(Error::Options("la's link is gone".into()));
        };
        let x = xdp(&mut pm.count, prog::COUNT)?;
        let id = x
            .attach_to_link(link)
            .map_err(|e| bpf(format!("replacing with {}", prog::COUNT))(e.to_string()))?;
        let link = x
            .take_link(id)
            .map_err(|e| bpf(format!("link of {}", prog::COUNT))(e.to_string()))?;
        // select_programs() puts the case's program back.
        self.la = Some((prog::COUNT, link));
        let read = |m: &PerCpuArray<MapData, u64>| -> Result<u64, Error> {
            Ok(m.get(&0, 0)
                .map_err(|x| bpf(bench::RX)(x.to_string()))?
                .iter()
                .sum())
        };
        let frames: Vec<pktgen::Frame> = pm.frames.iter().map(|(_, f)| (0, f.clone())).collect();
        pm.gen
            .load(pm.set + 1, &frames)
            .map_err(io("AF_PACKET generator"))?;
        let c0 = read(&pm.count_rx)?;
        let p = match pm.gen.pass(pktgen::Budget::Time(dur), None) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
            Err(e) => return Err(io("AF_PACKET generator")(e)),
        };
        std::thread::sleep(Duration::from_millis(30));
        let c1 = read(&pm.count_rx)?;
        // Back to the case's frames.
        pm.gen
            .load(pm.set, &pm.frames)
            .map_err(io("AF_PACKET generator"))?;
        Ok((p.seconds > 0.0).then(|| (c1 - c0) as f64 / p.seconds / 1e6))
    }

    /// Where the sessions of `dut`'s frames came from.
    pub(crate) fn sessions_from(&self, dut: Dut) -> SessionsFrom {
        match dut {
            Dut::V3 => self.v3_from,
            _ => self.v2.from(),
        }
    }

    /// AF_XDP mode from now on: the fast path hands forwarded frames to the workers, which
    /// run on `cpu` (SCHED_OTHER: the NAPI kthreads there, SCHED_FIFO, preempt them), taking
    /// `batch` frames per socket and pass.
    pub(crate) fn set_afxdp(&mut self, cpu: usize, batch: u32, rt_prio: i32) -> Result<(), Error> {
        self.dp.set_config(&FastPathConfig {
            mtu: ACCESS_MTU - 14,
            afxdp: true,
            ..FastPathConfig::default()
        })?;
        // xdp_to_xsk keys its XSKMAP by queue: lc's gets its own object (and map), so the raw
        // forwarder can serve both ways at once.
        let mut base_lc = load_bench(&[prog::TO_XSK])?;
        let workers = Workers::new_separate(&mut self.base, &mut base_lc)?;
        self.base_lc = Some(base_lc);
        self.afxdp = Some(AfxdpMode {
            workers,
            cpu,
            batch,
            rt_prio,
        });
        Ok(())
    }

    /// AF_XDP mode: stops the running worker, starts the case's.
    fn start_worker(&mut self, case: &Case) -> Result<(), Error> {
        let Some(m) = self.afxdp.as_mut() else {
            return Ok(());
        };
        if let Some(r) = self.running.take() {
            m.workers.stop(r);
        }
        // The worker thread inherits the calling thread's policy: spawn it SCHED_OTHER.
        if m.rt_prio > 0 {
            set_fifo(0, 0).map_err(io("SCHED_OTHER for spawning the worker"))?;
        }
        // v3: sockets on the attachment circuits too (a frame for an interface without one is
        // dropped, xsk_stat::NO_EGRESS).
        let acs: Vec<String> = (0..self.v3.len()).map(|k| format!("ac{k}")).collect();
        let mut ifaces = vec!["la", "lc"];
        if case.dut == Dut::V3 {
            ifaces.extend(acs.iter().map(String::as_str));
        }
        let r = match (case.dut, case.dir) {
            (Dut::Baseline, Direction::Both) => {
                m.workers.start_raw_both(&self.topo.lns, m.cpu, m.batch)
            }
            (Dut::Baseline, d) => {
                m.workers
                    .start_raw(&self.topo.lns, d == Direction::Up, m.cpu, m.batch)
            }
            _ => m
                .workers
                .start_afxdp(&self.topo.lns, self.pins.path(), &ifaces, m.cpu, m.batch),
        };
        if m.rt_prio > 0 {
            set_fifo(0, m.rt_prio).map_err(io("SCHED_FIFO back for the generator"))?;
        }
        self.running = Some(r?);
        Ok(())
    }

    /// Replaces the program of la's and lc's links (bpf_link_update: the NAPI stays); in
    /// AF_XDP mode, then starts the case's worker.
    fn select(&mut self, case: &Case) -> Result<(), Error> {
        self.select_programs(case)?;
        self.start_worker(case)
    }

    fn select_programs(&mut self, case: &Case) -> Result<(), Error> {
        let (pa, pc) = case.programs();
        for (slot, p, on_lc) in [(&mut self.la, pa, false), (&mut self.lc, pc, true)] {
            if matches!(slot, Some((q, _)) if *q == p) {
                continue;
            }
            let Some((_, link)) = slot.take() else {
                return Err(Error::Options("an LNS link is gone".into()));
            };
            let obj = if p == prog::TO_XSK && on_lc && self.base_lc.is_some() {
                self.base_lc
                    .as_mut()
                    .ok_or_else(|| Error::Options("lc's bench object".into()))?
            } else if p == prog::REDIRECT_PLAIN || p == prog::TO_XSK {
                &mut self.base
            } else {
                &mut self.fast
            };
            let x = xdp(obj, p)?;
            let id = x
                .attach_to_link(link)
                .map_err(|e| bpf(format!("replacing with {p}"))(e.to_string()))?;
            let link = x
                .take_link(id)
                .map_err(|e| bpf(format!("link of {p}"))(e.to_string()))?;
            *slot = Some((p, link));
        }
        Ok(())
    }

    /// Writes the case's templates; returns (count, mean length).
    fn load_case(&mut self, case: &Case) -> Result<(u32, f64), Error> {
        let ts = case_frames(case, &self.v2, &self.v3)?;
        for (k, t) in ts.iter().enumerate() {
            self.templates
                .set(k as u32, *t, 0)
                .map_err(|x| bpf(bench::PTEMPLATES)(x.to_string()))?;
        }
        let mean = ts.iter().map(|t| f64::from(t.len)).sum::<f64>() / ts.len().max(1) as f64;
        if let Some(pm) = self.pkt.as_mut() {
            // The whole frame: the template's head, then zeros (as the live generator sends).
            pm.frames = ts
                .iter()
                .map(|t| {
                    let mut f = vec![0u8; t.len as usize];
                    let head = f.len().min(bench::FRAME_MAX);
                    f[..head].copy_from_slice(&t.data[..head]);
                    (t.egress as usize, f)
                })
                .collect();
            pm.set += 2;
            let set = pm.set;
            pm.gen
                .load(set, &pm.frames)
                .map_err(io("AF_PACKET generator"))?;
        }
        Ok((ts.len() as u32, mean))
    }

    fn pace_state(&self) -> Result<bench::PaceState, Error> {
        let v = self
            .state
            .get(&0, 0)
            .map_err(|x| bpf(bench::PACE_STATE)(x.to_string()))?;
        let mut s = bench::PaceState::default();
        for c in v.iter() {
            s.sent += c.sent;
            s.sent_bytes += c.sent_bytes;
            s.skipped += c.skipped;
        }
        Ok(s)
    }

    fn verdicts(&self) -> Result<(u64, u64), Error> {
        let v = self.dp.verdict_counters()?;
        let fwd = v[verdict::DECAP as usize] + v[verdict::ENCAP as usize];
        let all: u64 = v[..verdict::WHY_BASE as usize].iter().sum();
        Ok((fwd, all - fwd))
    }

    /// One trial: `n` templates at `rate` pps (None: unpaced) for `dur`.
    fn trial(
        &mut self,
        n: u32,
        rate: Option<f64>,
        dur: Duration,
        loss: f64,
    ) -> Result<Trial, Error> {
        let interval_ps = rate.map_or(0, |r| (1e12 / r.max(1.0)) as u64);
        self.pace
            .set(
                0,
                bench::Pace {
                    interval_ps,
                    burst_ps: interval_ps * BURST,
                    base: 0,
                    n,
                },
                0,
            )
            .map_err(|x| bpf(bench::PACE)(x.to_string()))?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| io("possible CPUs")(e))?;
        let zero = PerCpuValues::try_from(vec![bench::PaceState::default(); cpus])
            .map_err(|e| io("per-CPU values")(e))?;
        self.state
            .set(0, zero, 0)
            .map_err(|x| bpf(bench::PACE_STATE)(x.to_string()))?;
        if self.pkt.is_some() {
            return self.packet_trial(rate, dur, loss);
        }
        let up0 = self.sink_up.read()?;
        let down0 = self.sink_down.read()?;
        let v0 = self.verdicts()?;
        let gen_fd = {
            let x = xdp(&mut self.gen, prog::GEN_PACED)?;
            x.fd()
                .map_err(|x| bpf(prog::GEN_PACED)(x.to_string()))?
                .try_clone()
                .map_err(|x| bpf(prog::GEN_PACED)(x.to_string()))?
        };
        // The test run's input: a frame of zeros (the program sets length and bytes).
        let input = [0u8; 64];
        let want_ns = dur.as_nanos() as f64;
        let mut loop_ns = 0f64;
        let mut runs = 0f64;
        let t0 = Instant::now();
        {
            let _g = self.topo.lac.enter();
            while loop_ns < want_ns * 0.95 {
                if interrupt::requested() {
                    return Err(Error::Interrupted);
                }
                let repeat = ((want_ns - loop_ns) / self.iter_ns).clamp(4096.0, 1e9) as u32;
                match test_run::run_live(gen_fd.as_fd().as_raw_fd(), &input, self.lac0, repeat) {
                    Ok(avg) => {
                        let ns = f64::from(avg.max(1)) * f64::from(repeat);
                        loop_ns += ns;
                        runs += f64::from(repeat);
                        self.iter_ns = f64::from(avg.max(1));
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                        return Err(Error::Interrupted)
                    }
                    Err(e) => return Err(io("paced live-frame test run")(e)),
                }
                if t0.elapsed() > dur * 4 + Duration::from_secs(2) {
                    break;
                }
            }
        }
        // Let the DUT's kthread drain its ring.
        std::thread::sleep(Duration::from_millis(30));
        let st = self.pace_state()?;
        let up1 = self.sink_up.read()?;
        let down1 = self.sink_down.read()?;
        let v1 = self.verdicts()?;
        let first_last = self.first_last()?;
        let seconds = first_last.max(1) as f64 / 1e12;
        let received_up = up1.0 - up0.0;
        let received_down = down1.0 - down0.0;
        let received = received_up + received_down;
        let lost = st.sent.saturating_sub(received);
        let loss_ratio = if st.sent > 0 {
            lost as f64 / st.sent as f64
        } else {
            1.0
        };
        Ok(Trial {
            target_pps: rate,
            sent: st.sent,
            sent_bytes: st.sent_bytes,
            received,
            received_bytes: (up1.1 - up0.1) + (down1.1 - down0.1),
            received_up,
            received_down,
            seconds,
            offered_pps: st.sent as f64 / seconds,
            received_pps: received as f64 / seconds,
            lost,
            loss_ratio,
            pass: st.sent > 0 && loss_ratio <= loss,
            fastpath_forwarded: v1.0 - v0.0,
            fastpath_other: v1.1 - v0.1,
            generator_run_ns: if runs > 0.0 { loop_ns / runs } else { 0.0 },
        })
    }

    /// [`Lab::trial`] with the AF_PACKET generator: offered = frames handed to the veths +
    /// offers their full rings refused (each a frame lost, as a live frame redirected into a
    /// full ring is).
    fn packet_trial(
        &mut self,
        rate: Option<f64>,
        dur: Duration,
        loss: f64,
    ) -> Result<Trial, Error> {
        let up0 = self.sink_up.read()?;
        let down0 = self.sink_down.read()?;
        let v0 = self.verdicts()?;
        let pm = self
            .pkt
            .as_mut()
            .ok_or_else(|| Error::Options("no AF_PACKET generator".into()))?;
        let p = match pm.gen.pass(pktgen::Budget::Time(dur), rate) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
            Err(e) => return Err(io("AF_PACKET generator")(e)),
        };
        // Let the DUT drain: until the sinks have counted every frame handed over, or their
        // count has not moved for 100 ms (nothing arrived at all: 1 s), at most 1 s. AF_XDP
        // mode's worker runs SCHED_OTHER on the DUT core beside the SCHED_FIFO NAPI kthreads
        // and the machine's other jobs, and may run late.
        std::thread::sleep(Duration::from_millis(30));
        let want = up0.0 + down0.0 + p.sent;
        let t0 = Instant::now();
        let (mut last, mut moved) = (0u64, Instant::now());
        let (up1, down1) = loop {
            let (u, d) = (self.sink_up.read()?, self.sink_down.read()?);
            let n = u.0 + d.0;
            if n != last {
                (last, moved) = (n, Instant::now());
            }
            let some = n > up0.0 + down0.0;
            if n >= want
                || t0.elapsed() > Duration::from_secs(1)
                || (some && moved.elapsed() > Duration::from_millis(100))
            {
                break (u, d);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let v1 = self.verdicts()?;
        let sent = p.offered();
        let seconds = p.seconds.max(1e-9);
        let received_up = up1.0 - up0.0;
        let received_down = down1.0 - down0.0;
        let received = received_up + received_down;
        let lost = sent.saturating_sub(received);
        let loss_ratio = if sent > 0 {
            lost as f64 / sent as f64
        } else {
            1.0
        };
        Ok(Trial {
            target_pps: rate,
            sent,
            sent_bytes: p.sent_bytes,
            received,
            received_bytes: (up1.1 - up0.1) + (down1.1 - down0.1),
            received_up,
            received_down,
            seconds,
            offered_pps: sent as f64 / seconds,
            received_pps: received as f64 / seconds,
            lost,
            loss_ratio,
            pass: sent > 0 && loss_ratio <= loss,
            fastpath_forwarded: v1.0 - v0.0,
            fastpath_other: v1.1 - v0.1,
            generator_run_ns: if sent > 0 {
                p.seconds * 1e9 / sent as f64
            } else {
                0.0
            },
        })
    }

    /// Picoseconds from the first to the last frame sent (the generator keeps both).
    fn first_last(&self) -> Result<u64, Error> {
        let v = self
            .state
            .get(&0, 0)
            .map_err(|x| bpf(bench::PACE_STATE)(x.to_string()))?;
        Ok(v.iter()
            .filter(|c| c.first_ps != 0)
            .map(|c| c.last_ps.saturating_sub(c.first_ps))
            .max()
            .unwrap_or(0))
    }
}

/// How to search.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Search {
    pub(crate) trial: Duration,
    pub(crate) steps: u32,
    pub(crate) loss: f64,
    pub(crate) fixed_rate: Option<f64>,
    pub(crate) retries: u32,
}

/// Trials at `rate` until one passes, at most 1 + `s.retries`; every attempt is recorded.
fn attempt(
    lab: &mut Lab,
    n: u32,
    rate: Option<f64>,
    s: Search,
    trials: &mut Vec<Trial>,
) -> Result<Trial, Error> {
    let mut last = None;
    for _ in 0..=s.retries {
        let t = lab.trial(n, rate, s.trial, s.loss)?;
        trials.push(t.clone());
        let pass = t.pass;
        last = Some(t);
        if pass {
            break;
        }
    }
    last.ok_or_else(|| Error::Options("no trial ran".into()))
}

/// The no-drop rate of the loaded case (`n` templates of mean length `mean`).
fn search(lab: &mut Lab, n: u32, mean: f64, s: Search, round: usize) -> Result<Sample, Error> {
    let mut trials = Vec::new();
    let mut best: Option<Trial> = None;
    let (generator_mpps, overload_mpps, generator_bound);
    if let Some(r) = s.fixed_rate {
        let t = attempt(lab, n, Some(r), s, &mut trials)?;
        generator_mpps = t.offered_pps / 1e6;
        overload_mpps = t.received_pps / 1e6;
        generator_bound = false;
        if t.pass {
            best = Some(t);
        }
    } else {
        let over = lab.trial(n, None, s.trial, s.loss)?;
        generator_mpps = over.offered_pps / 1e6;
        overload_mpps = over.received_pps / 1e6;
        generator_bound = over.pass;
        trials.push(over.clone());
        if over.pass {
            best = Some(over);
        } else {
            // The no-drop rate is usually at most about what the DUT delivers under overload.
            let mut hi = (over.received_pps * 1.05).min(over.offered_pps);
            let mut lo = 0.0;
            let top = attempt(lab, n, Some(hi), s, &mut trials)?;
            let mut bisect = !top.pass;
            if top.pass {
                // Not when overload starves part of the DUT (AF_XDP mode: the worker beside
                // the SCHED_FIFO NAPI kthreads): double the rate until a trial fails (at most
                // the generator's maximum), then bisect.
                lo = hi;
                best = Some(top);
                loop {
                    let next = (lo * 2.0).min(over.offered_pps);
                    if next <= lo * 1.001 {
                        break;
                    }
                    let t = attempt(lab, n, Some(next), s, &mut trials)?;
                    if t.pass {
                        lo = next;
                        best = Some(t);
                    } else {
                        hi = next;
                        bisect = true;
                        break;
                    }
                }
            }
            if bisect {
                let mut mid = (lo + hi) / 2.0;
                for _ in 0..=s.steps {
                    let t = attempt(lab, n, Some(mid), s, &mut trials)?;
                    if t.pass {
                        lo = mid;
                        if best.as_ref().is_none_or(|b| t.offered_pps > b.offered_pps) {
                            best = Some(t);
                        }
                    } else {
                        hi = mid;
                    }
                    mid = (lo + hi) / 2.0;
                }
            }
        }
    }
    let _ = mean;
    Ok(Sample {
        round,
        generator_ceiling_mpps: None,
        no_drop_mpps: best.as_ref().map(|b| b.offered_pps / 1e6),
        no_drop_gbps: best
            .as_ref()
            .map(|b| b.sent_bytes as f64 * 8.0 / b.seconds / 1e9),
        overload_mpps,
        generator_mpps,
        generator_bound,
        ratio: None,
        overload_ratio: None,
        trials,
    })
}

/// The cases of a run, grouped (direction, size), baseline first in each group.
pub fn cases(mode: Mode, dirs: &[Direction], sizes: &[Size], versions: &[Dut]) -> Vec<Vec<Case>> {
    let mut groups = Vec::new();
    for &dir in dirs {
        for &size in sizes {
            let mut g = vec![Case {
                dir,
                size,
                dut: Dut::Baseline,
                mode,
            }];
            g.extend(versions.iter().map(|&dut| Case {
                dir,
                size,
                dut,
                mode,
            }));
            groups.push(g);
        }
    }
    groups
}

/// Runs the groups' cases round by round (baseline, v2, v3, baseline, v2, v3 …); returns
/// the samples per case (flattened group order), ratios filled in.
pub(crate) fn measure(
    lab: &mut Lab,
    groups: &[Vec<Case>],
    rounds: usize,
    s: Search,
) -> Result<Vec<(Case, f64, Vec<Sample>)>, Error> {
    let flat: Vec<Case> = groups.iter().flatten().copied().collect();
    let mut out: Vec<(Case, f64, Vec<Sample>)> =
        flat.iter().map(|c| (*c, 0.0, Vec::new())).collect();
    // Warm-up (page pools, caches, map entries): one short unpaced trial, not recorded.
    if let Some(c) = flat.first() {
        let (n, _) = lab.load_case(c)?;
        lab.select(c)?;
        lab.trial(n, None, s.trial / 4, s.loss)?;
    }
    for round in 0..rounds {
        for (k, c) in flat.iter().enumerate() {
            let (n, mean) = lab.load_case(c)?;
            let ceiling = lab.ceiling(s.trial)?;
            lab.select(c)?;
            let mut sample = search(lab, n, mean, s, round)?;
            sample.generator_ceiling_mpps = ceiling;
            out[k].1 = mean;
            out[k].2.push(sample);
        }
    }
    // Same-round ratios to the group's baseline.
    for k in 0..out.len() {
        let c = out[k].0;
        let b = flat
            .iter()
            .position(|x| x.dir == c.dir && x.size == c.size && x.dut == Dut::Baseline);
        if let Some(b) = b {
            for r in 0..rounds {
                let base = out[b].2[r].no_drop_mpps;
                let base_over = out[b].2[r].overload_mpps;
                let me = &mut out[k].2[r];
                me.ratio = match (me.no_drop_mpps, base) {
                    (Some(a), Some(z)) if z > 0.0 => Some(a / z),
                    _ => None,
                };
                me.overload_ratio = (s.fixed_rate.is_none() && base_over > 0.0)
                    .then(|| me.overload_mpps / base_over);
            }
        }
    }
    Ok(out)
}

pub(crate) fn case_report(c: Case, mean: f64, samples: Vec<Sample>) -> CaseReport {
    let col = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<Summary> {
        Summary::of(&samples.iter().filter_map(f).collect::<Vec<_>>())
    };
    CaseReport {
        name: c.name(),
        direction: c.dir,
        size: c.size,
        dut: c.dut,
        mode: c.mode,
        programs: c.program_names(),
        sessions_from: SessionsFrom::Installed,
        baseline: Case {
            dut: Dut::Baseline,
            ..c
        }
        .name(),
        frame_bytes: mean,
        no_drop_mpps: col(&|s| s.no_drop_mpps),
        no_drop_gbps: col(&|s| s.no_drop_gbps),
        ratio: col(&|s| s.ratio),
        overload_mpps: col(&|s| Some(s.overload_mpps)),
        overload_ratio: col(&|s| s.overload_ratio),
        generator_mpps: col(&|s| Some(s.generator_mpps)),
        generator_bound_rounds: samples.iter().filter(|s| s.generator_bound).count(),
        generator_ceiling_mpps: col(&|s| s.generator_ceiling_mpps),
        paced_generator_run_ns: Summary::of(
            &samples
                .iter()
                .flat_map(|s| &s.trials)
                .filter(|t| t.target_pps.is_some())
                .map(|t| t.generator_run_ns)
                .collect::<Vec<_>>(),
        ),
        trials_other_verdicts: samples
            .iter()
            .flat_map(|s| &s.trials)
            .filter(|t| t.fastpath_other > 0)
            .count(),
        samples,
    }
}

/// The checks every run makes before it builds anything.
pub(crate) fn preflight(cpu: usize, dut_cpu: usize) -> Result<Machine, Error> {
    if !l2xdp_lab::is_root() {
        return Err(Error::NotRoot);
    }
    let machine = Machine::probe();
    for (what, c) in [("--cpu", cpu), ("--dut-cpu", dut_cpu)] {
        if c >= machine.cores {
            return Err(Error::Options(format!(
                "{what} {c} but {} CPUs online",
                machine.cores
            )));
        }
    }
    if cpu == dut_cpu {
        eprintln!("l2xdp-bench: generator and DUT share CPU {cpu}: the no-drop rate includes the generator's work");
    }
    Ok(machine)
}

pub(crate) const TOPOLOGY: &str = "lac ns: lac0 --veth-- lns ns: la [LNS access prog | xdp_redirect_plain], lc [LNS core prog | xdp_redirect_plain], ac<k> [xdp_l2tp_core: v3 attachment circuits] --veth-- core ns: core0, acp<k>; generator = xdp_gen_paced live-frame test runs in the lac ns, frames redirected through a DEVMAP to lac0 (up), core0 (down v2, baseline down) or acp<k> (down v3); sinks = xdp_count (XDP_DROP) on core0 + acp<k> (up) and lac0 (down)";

pub(crate) const TOPOLOGY_AFXDP: &str = "lac ns: lac0 --veth-- lns ns: la, lc, ac<k> [LNS access/core progs in AF_XDP mode -> one AF_XDP-mode worker with sockets on queue 0 of la and lc (v3: and of every ac<k>) | xdp_to_xsk on la and lc (one object each, so one XSKMAP each) -> one raw AF_XDP forwarder la->lc (up), lc->la (down) or both ways (both), sockets on both] --veth-- core ns: core0, acp<k>; AF_XDP on veth is copy mode; generator = xdp_gen_paced live-frame test runs in the lac ns, frames redirected through a DEVMAP to lac0 (up), core0 (down v2, baseline down) or acp<k> (down v3); sinks = xdp_count (XDP_DROP) on core0 + acp<k> (up) and lac0 (down), their softirq on the CPU whose worker transmits (the DUT core)";

pub(crate) const PACING: &str = "token bucket inside xdp_gen_paced on bpf_ktime_get_ns: a run before the next frame is due returns XDP_DROP (nothing sent), so frames leave 1/rate apart with a resolution of one generator run (its mean per trial is generator_run_ns), at most 32 frames of credit; offered rate = frames sent / (last send - first send), both read by the program";

pub(crate) const PACING_AF_PACKET: &str = "AF_PACKET TX_RING generator (the kernel refuses live-frame test runs), one sender thread per core but the DUT's, pinned, each with a socket per egress veth (lac0, core0, acp<k>) in its namespace: token bucket on the monotonic clock in the sender, at most 32 frames of credit; a send into a veth whose peer's ring is full is refused (ENOBUFS) and counts as a frame offered and lost, its retry as a new offer; offered rate = offers / (last send - first send)";

/// The generator's cores: every core but the DUT's (one sender thread each), or `cpu` on one
/// core.
pub(crate) fn spare_cpus(cores: usize, dut_cpu: usize, cpu: usize) -> Vec<usize> {
    let v: Vec<usize> = (0..cores).filter(|c| *c != dut_cpu).collect();
    if v.is_empty() {
        vec![cpu]
    } else {
        v
    }
}

/// The output files' name: `throughput` (XDP mode), `throughput-afxdp`.
pub fn file_stem(mode: Mode) -> &'static str {
    match mode {
        Mode::Xdp => "throughput",
        Mode::Afxdp => "throughput-afxdp",
    }
}

/// Runs the scenario; writes `<file_stem>.json` and `.svg` under `opts.out`.
pub fn run(opts: &Options) -> Result<Report, Error> {
    let machine = preflight(opts.cpu, opts.dut_cpu)?;
    if opts.directions.is_empty() || opts.sizes.is_empty() || opts.rounds == 0 || opts.sessions == 0
    {
        return Err(Error::Options(
            "need a direction, a size, a round and a session".into(),
        ));
    }
    let date = utc_now();
    pin_thread(opts.cpu).map_err(io(format!("pinning to CPU {}", opts.cpu)))?;
    let _fifo = FifoGuard::new(opts.rt_prio)?;
    let v3_sessions = if opts.versions.contains(&Dut::V3) {
        opts.v3_sessions.max(1)
    } else {
        0
    };
    let live = (opts.sessions_from == SessionsFrom::Live).then_some(opts.l2xdpd.as_path());
    let mut lab = Lab::new(opts.sessions, v3_sessions, opts.dut_cpu, opts.rt_prio, live)?;
    let afxdp = opts.mode == Mode::Afxdp;
    if afxdp {
        lab.set_afxdp(opts.dut_cpu, opts.batch, opts.rt_prio)?;
    }
    let gen_cpus = match opts.generator {
        Kind::LiveFrames => vec![opts.cpu],
        Kind::AfPacket => {
            let cpus = spare_cpus(machine.cores, opts.dut_cpu, opts.cpu);
            lab.use_af_packet(&cpus)?;
            cpus
        }
    };
    let groups = cases(opts.mode, &opts.directions, &opts.sizes, &opts.versions);
    let s = Search {
        trial: opts.trial,
        steps: opts.steps,
        loss: opts.loss,
        fixed_rate: opts.fixed_rate,
        retries: opts.retries,
    };
    let measured = measure(&mut lab, &groups, opts.rounds, s)?;
    let report = Report {
        header: Header {
            scenario: "throughput",
            mode: opts.mode,
            date,
            command: opts.command.clone(),
            machine,
        },
        topology: {
            let t = if afxdp { TOPOLOGY_AFXDP } else { TOPOLOGY };
            match lab.generator() {
                Kind::LiveFrames => t.to_owned(),
                Kind::AfPacket => t.replace(
                    "generator = xdp_gen_paced live-frame test runs in the lac ns, frames redirected through a DEVMAP to",
                    "generator = AF_PACKET TX_RING sockets (qdisc bypass) sending on",
                ),
            }
        },
        generator_cpu: opts.cpu,
        generator: lab.generator(),
        generator_describe: lab.generator().describe(),
        generator_cpus: gen_cpus,
        rt_prio: opts.rt_prio,
        dut_cpu: opts.dut_cpu,
        worker_cpu: afxdp.then_some(opts.dut_cpu),
        batch: afxdp.then_some(opts.batch),
        worker_sched: afxdp.then(|| format!("SCHED_OTHER on CPU {} beside the DUT's NAPI kthreads (SCHED_FIFO {}, they preempt it): the kernel's and the worker's work share one core, as the XDP mode's does", opts.dut_cpu, opts.rt_prio)),
        zero_copy: afxdp.then(|| lab.afxdp.as_ref().is_some_and(|m| m.workers.zero_copy)),
        receivers_napi: lab.napi.clone(),
        sink: "xdp_count on core0 + acp<k> (up) and lac0 (down), softirq on the DUT core; delivery counted there".into(),
        pacing: match opts.generator {
            Kind::LiveFrames => PACING,
            Kind::AfPacket => PACING_AF_PACKET,
        }
        .into(),
        loss_pct: opts.loss * 100.0,
        trial_ms: opts.trial.as_millis() as u64,
        steps: opts.steps,
        retries: opts.retries,
        sessions: opts.sessions,
        v3_sessions,
        templates_per_direction: opts.sessions.min(TEMPLATE_CAP),
        rounds: opts.rounds,
        cases: measured
            .into_iter()
            .map(|(c, mean, ss)| CaseReport {
                sessions_from: lab.sessions_from(c.dut),
                ..case_report(c, mean, ss)
            })
            .collect(),
    };
    drop(lab);
    let stem = file_stem(opts.mode);
    write_json(&report, &opts.out.join(format!("{stem}.json")))?;
    svg::throughput(&report, &opts.out.join(format!("{stem}.svg")))?;
    Ok(report)
}

/// The readable table.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "l2xdp-bench throughput ({}), mode {:?}: {} rounds, trials of {} ms, {} halvings, {} retries, loss ≤ {} %; {} v2 sessions, {} v3 sessions\n",
        r.header.date, r.header.mode, r.rounds, r.trial_ms, r.steps, r.retries, r.loss_pct, r.sessions, r.v3_sessions
    );
    out += &format!(
        "kernel {}, {} ({} cores); generator {} on CPU {:?}, DUT NAPI on CPU {}\n",
        r.header.machine.kernel,
        r.header.machine.cpu_model,
        r.header.machine.cores,
        r.generator_describe,
        r.generator_cpus,
        r.dut_cpu
    );
    if r.generator == Kind::AfPacket {
        out += "gen ceil = the generator's ceiling: what it delivers with the case's frames, unpaced, into xdp_count (count, XDP_DROP) on la, measured before the case each round; a no-drop rate near it is the generator's limit, not the DUT's\n";
    }
    out += &format!(
        "topology: {}\nNAPI: {}\nsink: {}\npacing: {}\n",
        r.topology, r.receivers_napi, r.sink, r.pacing
    );
    out += "medians [min–max] over rounds; no-drop = offered rate of the fastest trial losing ≤ the tolerance at the sinks; ratio = no-drop / same-round baseline (";
    out += match r.header.mode {
        Mode::Xdp => "xdp_redirect_plain",
        Mode::Afxdp => "the raw AF_XDP forwarder",
    };
    out += ", same veths, same frames); overload = delivered when offered the generator's maximum (unpaced), overload ratio = that / same-round baseline's; * = generator-bound in some round\n";
    out += "sessions: live = brought up through l2xdpd, which installed them (v2: by the LAC emulator; v3: by a v3 LCCE l2xdpd); installed = written into the maps by the bench\n";
    out += &format!(
        "{:<20} {:>9} {:>7} {:>22} {:>20} {:>20} {:>20} {:>20} {:>9} {:>9}\n",
        "case",
        "sessions",
        "bytes",
        "no-drop Mpps",
        "Gbit/s",
        "ratio",
        "overload Mpps",
        "overload ratio",
        "gen Mpps",
        "gen ceil"
    );
    if let (Some(w), Some(b)) = (r.worker_cpu, r.batch) {
        out += &format!(
            "AF_XDP mode: worker on CPU {w}, batch {b}, zero-copy {}; {}; baseline = raw AF_XDP forwarder (xdp_to_xsk, rx → tx, no L2TP work), ratio against it\n",
            r.zero_copy.unwrap_or(false),
            r.worker_sched.as_deref().unwrap_or("")
        );
    }
    for c in &r.cases {
        out += &format!(
            "{:<20} {:>9} {:>7.0} {:>22} {:>20} {:>20} {:>20} {:>20} {:>9} {:>9}\n",
            format!(
                "{}{}",
                match c.mode {
                    Mode::Xdp => c.name.clone(),
                    Mode::Afxdp => format!("afxdp {}", c.name),
                },
                if c.generator_bound_rounds > 0 {
                    "*"
                } else {
                    ""
                }
            ),
            c.sessions_from.name(),
            c.frame_bytes,
            fmt_summary(&c.no_drop_mpps, 3),
            fmt_summary(&c.no_drop_gbps, 2),
            fmt_summary(&c.ratio, 3),
            fmt_summary(&c.overload_mpps, 3),
            fmt_summary(&c.overload_ratio, 3),
            c.generator_mpps
                .map_or("-".into(), |s| format!("{:.2}", s.median)),
            c.generator_ceiling_mpps
                .map_or("-".into(), |s| format!("{:.2}", s.median)),
        );
    }
    out
}
