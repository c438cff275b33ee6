//! `l2xdp-bench forward`: 64-byte forwarding through the LNS namespace on one core, as a ratio to
//! a plain XDP_REDIRECT baseline measured in the same run, and the LNS program's cost per packet
//! (bpf_stats) as a ratio to a plain swap-MAC XDP_TX program's in the same run, cases
//! interleaved round by round.
//!
//! Topology (three namespaces, two veth pairs, native XDP everywhere):
//!
//! ```text
//!   lac ns                 lns ns                           core ns
//!   lac0 (xdp_count) ──── la (access side)   lc (core side) ──── core0 (xdp_count)
//!   gen: xdp_gen XDP_TX    xdp_l2tp_access   xdp_l2tp_core       gen: xdp_gen XDP_TX
//!        on lac0           or baseline       or baseline              on core0
//!                          or xdp_swap_mac
//! ```
//!
//! The generator is `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` of `xdp_gen` (it
//! copies the next of N prepared frames over the packet, then XDP_TX) with the ingress ifindex
//! of lac0 (upstream, swapmac) or core0 (downstream), run from a thread pinned to one core. The
//! copy matters: a recycled live-frame page keeps the bytes the forwarder rewrote, so without
//! it every program after the first recycle would see a corrupted frame. The generator's
//! frames cross the veth into the LNS program under test (veth XDP NAPI, softirq), which
//! redirects them to the other veth (or, swapmac, sends them back with XDP_TX), whose peer
//! counts and drops them (`xdp_count`; the generator runs as a test run, not as lac0's or
//! core0's attached program, so the counter attached there sees only what comes back over the
//! veth — checked: the other sink must count nothing). NAPI runs where the veth transmit
//! scheduled it — the generator's core — so generator, LNS program and sink all run on that
//! one core, the softirq processing each 64-frame batch as the test run leaves its bh-disabled
//! section. Delivery is counted at the sink, never at the generator; the time is the kernel's
//! in-loop time of the test runs (batches plus the softirq work they trigger, without the fixed
//! per-call setup), so Mpps = sink count / in-loop time. Each case and round is a timed pass
//! with `kernel.bpf_stats_enabled=0` (checked: the LNS program's run_cnt must not move), then
//! a pass a quarter as long with the statistics held on (`BPF_ENABLE_STATS`, which another
//! process's sysctl write cannot undo) for run_time_ns / run_cnt of the generator, the LNS
//! program and the sink (the statistics cost a clock read or two per program run, so they stay
//! out of the throughput).
//!
//! The stats-on pass is verified before its cost is used ([`Sample::path_verified`]): the LNS
//! program ran once per generated frame, the sink received every frame, the other sink none,
//! and for decap/encap the fast path's DECAP/ENCAP verdict counter rose by exactly the frames
//! generated with no other verdict and no drop — so the cost is the forwarding path's.
//!
//! Cases:
//! - `swapmac`: `xdp_swap_mac` on la, XDP_TX back to lac0, 64-byte frames: the cost baseline
//!   (every case's ns/pkt is also reported as a ratio to its, same round);
//! - `baseline-up`: `xdp_redirect_plain` on la → lc, 64-byte frames;
//! - `decap-v2`: `xdp_l2tp_access` on la, L2TPv2 (UDP, checksum set) frames of N sessions
//!   installed with `XdpDataPlane::install`, inner IPv4 packet of 50 bytes (a 64-byte frame
//!   after decap, 102 bytes on the wire before), bpf_fib_lookup, → lc;
//! - `baseline-down`: `xdp_redirect_plain` on lc → la, 64-byte frames;
//! - `encap-v2`: `xdp_l2tp_core` on lc, 64-byte IPv4 frames to the N subscribers' addresses,
//!   encapsulated (UDP checksum computed), bpf_fib_lookup, → la.
//!
//! Each direction has its own Mpps baseline on the same veth pair (swapmac's is baseline-up).

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aya::maps::{Array, MapData};
use aya::programs::xdp::XdpLink;
use aya::Ebpf;
use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::bpf::UTIL_OBJ;
use l2xdp_lab::test_run;
use l2xdp_lab::topology::{Pins, Topology};
use l2xdp_lab::{is_root, Netns};
use serde::Serialize;

use crate::bpf::{attach, load_bench, set_fwd, stats_of, take, xdp, Sink};
use crate::bpf::{bench, prog};
use crate::bpf_stats::{ProgStats, StatsHold, StatsSwitch};
use crate::cases::{frames, session, v3_session, Case};
use crate::common::{bpf, fmt_summary, io, napi_threaded, write_json, Error, Header};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::pktgen::{self, Generator, Kind};
use crate::summary::Summary;

/// SCHED_FIFO priority of the AF_PACKET sender thread.
const PKTGEN_RT_PRIO: i32 = 50;
/// Frames per test-run call (the interrupt check granularity).
const CHUNK: u32 = 1 << 22;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Generation time per case and round (ignored with `packets`).
    pub duration: Duration,
    /// Exactly this many frames per case and round instead of a duration (smoke runs).
    pub packets: Option<u64>,
    /// Sessions installed; the frames are spread over them round robin.
    pub sessions: u32,
    /// The core the generator (and so the whole path) runs on.
    pub cpu: usize,
    /// The cases, in interleaving order.
    pub cases: Vec<Case>,
    /// Where the JSON report goes.
    pub json: PathBuf,
    /// The command line, recorded in the report.
    pub command: String,
    /// The generator ([`Kind::for_this_kernel`] unless chosen).
    pub generator: Kind,
}

/// One case in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Round number (0-based).
    pub round: usize,
    /// Frames the generator offered (test-run repetitions), both passes.
    pub generated: u64,
    /// Frames the sink counted, both passes.
    pub received: u64,
    /// Bytes the sink counted, both passes.
    pub received_bytes: u64,
    /// Frames offered in the timed pass (bpf_stats off).
    pub timed_generated: u64,
    /// Frames the sink counted in the timed pass.
    pub timed_received: u64,
    /// Runs of the LNS program that bpf_stats counted during the timed pass: 0 unless another
    /// process switched the statistics on, which lowers the Mpps.
    pub timed_stats_runs: u64,
    /// Frames offered in the bpf_stats pass.
    pub stats_generated: u64,
    /// Frames the sink counted in the bpf_stats pass.
    pub stats_received: u64,
    /// Frames the other sink (the one this case does not send to) counted, both passes: 0
    /// unless the generator's own frames reach the counter attached on its veth.
    pub other_sink_received: u64,
    /// Timed pass: time inside the test runs' loops (the kernel's measure, summed over calls), seconds.
    pub seconds: f64,
    /// Timed pass: wall time of the test-run calls (adds page-pool setup/teardown per call), seconds.
    pub wall_seconds: f64,
    /// timed_received / seconds / 1e6.
    pub mpps: f64,
    /// Timed pass: this case's Mpps / its XDP_REDIRECT baseline's in the same round (None if
    /// either timed pass had the statistics on).
    pub mpps_ratio: Option<f64>,
    /// bpf_stats ns per run of the LNS program.
    pub prog_ns: Option<f64>,
    /// prog_ns / swapmac's prog_ns in the same round (both verified; None without swapmac).
    pub cost_ratio: Option<f64>,
    /// Runs of the LNS program in the bpf_stats pass.
    pub prog_runs: u64,
    /// bpf_stats ns per run of the generator program.
    pub gen_ns: Option<f64>,
    /// Runs of the generator in the bpf_stats pass.
    pub gen_runs: u64,
    /// bpf_stats ns per run of the sink program.
    pub sink_ns: Option<f64>,
    /// Fast-path verdict counter deltas (decap/encap cases): forwarded.
    pub fastpath_forwarded: u64,
    /// Fast-path verdict counter deltas: anything but forwarded (pass, drop, fib miss...).
    pub fastpath_other: u64,
    /// Fast-path drop counter deltas (every reason), both passes.
    pub fastpath_drops: u64,
    /// The bpf_stats pass alone: the case's forwarding verdict (DECAP or ENCAP; 0 otherwise).
    pub stats_fastpath_forwarded: u64,
    /// The bpf_stats pass alone: any other verdict.
    pub stats_fastpath_other: u64,
    /// The bpf_stats pass alone: drop counters.
    pub stats_fastpath_drops: u64,
    /// The bpf_stats pass measured the forwarding path: the LNS program and the generator ran
    /// once per frame generated, the sink received every frame and the other sink none, and the
    /// fast path gave every frame the case's forwarding verdict (decap/encap: forwarded ==
    /// generated) with no other verdict and no drop. Only verified samples count in `prog_ns`
    /// and `cost_ratio` of the case report.
    pub path_verified: bool,
}

/// One case over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case name.
    pub name: &'static str,
    /// "up" (lac → core) or "down".
    pub direction: &'static str,
    /// LNS program under test.
    pub program: &'static str,
    /// Its baseline case.
    pub baseline: &'static str,
    /// Frame length entering the LNS.
    pub frame_in_bytes: usize,
    /// Frame length the sink received (bytes / packets).
    pub frame_out_bytes: f64,
    /// Throughput at the sink, Mpps (rounds whose timed pass had the statistics off).
    pub mpps: Option<Summary>,
    /// Sink count / wall time of the timed pass (adds per-call setup and preemption by
    /// other tasks), Mpps.
    pub wall_mpps: Option<Summary>,
    /// Per-round ratio of this case's Mpps to its baseline's in the same round.
    pub ratio: Option<Summary>,
    /// bpf_stats ns per packet of the LNS program (verified rounds only).
    pub prog_ns: Option<Summary>,
    /// Per-round ratio of prog_ns to swapmac's in the same round (rounds where both were
    /// verified; None when swapmac is not run).
    pub cost_ratio: Option<Summary>,
    /// Rounds whose bpf_stats pass was verified (see [`Sample::path_verified`]).
    pub verified_rounds: usize,
    /// Rounds whose timed pass ran with the statistics off throughout (`timed_stats_runs` 0).
    pub stats_off_rounds: usize,
    /// bpf_stats ns per packet of the generator.
    pub gen_ns: Option<Summary>,
    /// bpf_stats ns per packet of the sink.
    pub sink_ns: Option<Summary>,
    /// Totals over rounds.
    pub generated: u64,
    /// Totals over rounds.
    pub received: u64,
    /// generated - received.
    pub lost: u64,
    /// Fast-path verdicts over rounds: forwarded.
    pub fastpath_forwarded: u64,
    /// Fast-path verdicts over rounds: anything else.
    pub fastpath_other: u64,
    /// Fast-path drop counters over rounds.
    pub fastpath_drops: u64,
    /// Frames of the bpf_stats passes over rounds.
    pub stats_generated: u64,
    /// Fast-path forwarding verdicts in the bpf_stats passes over rounds.
    pub stats_fastpath_forwarded: u64,
    /// Every round.
    pub samples: Vec<Sample>,
}

/// The generator alone in one round: into a sink on la that counts and drops.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingSample {
    /// Round.
    pub round: usize,
    /// Frames the generator offered.
    pub offered: u64,
    /// Frames the sink on la counted.
    pub received: u64,
    /// The pass's time (live frames: the kernel's in-loop time; AF_PACKET: first to last send).
    pub seconds: f64,
    /// received / seconds / 1e6.
    pub mpps: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header,
    /// The topology, in words.
    pub topology: String,
    /// Where the generator ran.
    pub generator_cpu: usize,
    /// Which generator ran (the probe's `live_frames`).
    pub generator: Kind,
    /// It, in words.
    pub generator_describe: &'static str,
    /// The generator's ceiling, Mpps: what it delivers into a drop sink (`xdp_count`) on la,
    /// measured each round before the cases. A case near it is generator-bound.
    pub generator_ceiling_mpps: Option<Summary>,
    /// Every round's ceiling pass.
    pub generator_ceiling: Vec<CeilingSample>,
    /// How the receivers process frames.
    pub receivers_napi: String,
    /// Sessions installed and spread over.
    pub sessions: u32,
    /// Rounds.
    pub rounds: usize,
    /// Per case and round (None: fixed packet count).
    pub duration_ms: Option<u64>,
    /// Per case and round (None: duration).
    pub packets: Option<u64>,
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// A case's first frame (the test run's input) and its first template slot.
type Prepared = (Case, Vec<u8>, u32);

/// Which program an LNS interface runs now.
#[derive(Default)]
struct Slot {
    current: Option<(&'static str, XdpLink)>,
}

/// The lab: namespaces, objects, links. Field order is drop order: links and objects first,
/// then the pins, then the namespaces.
struct Lab {
    la_slot: Slot,
    lc_slot: Slot,
    sink_core: Sink,
    sink_lac: Sink,
    /// v3 cases: the pseudowire's far end (acp0) and the core program's link on ac0.
    v3: Option<(Sink, XdpLink, u32)>,
    tools: Ebpf,
    util: Ebpf,
    fast: Ebpf,
    dp: XdpDataPlane,
    gen_cfg: Array<MapData, bench::GenConfig>,
    /// Live frames refused (the probe): the AF_PACKET generator, ports lac0, core0 (, acp0),
    /// and each case's frames (index k of the cases).
    pkt: Option<(Generator, Vec<Vec<pktgen::Frame>>)>,
    lac0: u32,
    core0: u32,
    _pins: Pins,
    topo: Topology,
}

impl Lab {
    fn new(opts: &Options) -> Result<(Lab, Vec<Prepared>), Error> {
        let topo = Topology::new("fwd");
        let (lac, lns, core) = (&topo.lac, &topo.lns, &topo.core);
        let pins = Pins::under_sys_fs_bpf("bench");
        let pin_dir = pins.path().to_path_buf();
        let (fast, la, lc) = {
            let _g = lns.enter();
            let fast = loader::load(Some(&pin_dir))?;
            (fast, loader::ifindex("la")?, loader::ifindex("lc")?)
        };
        // As the control plane would: through the pins.
        let mut dp = XdpDataPlane::open(&pin_dir)?;
        dp.set_config(&FastPathConfig::default())?;
        for i in 0..opts.sessions {
            dp.install(&session(i).1)?;
        }
        let mut tools = load_bench(&[prog::GEN, prog::REDIRECT_PLAIN, prog::ROUTER])?;
        set_fwd(&mut tools, la, lc)?;
        let mut templates: Array<MapData, bench::Template> = take(&mut tools, bench::TEMPLATES)?;
        let gen_cfg = take(&mut tools, bench::GEN_CFG)?;
        let mut first = Vec::new();
        for (k, case) in opts.cases.iter().enumerate() {
            let base = k as u32 * opts.sessions;
            let fs = frames(*case, opts.sessions)?;
            for (i, f) in fs.iter().enumerate() {
                if f.len() > bench::FRAME_MAX || f.len() != fs[0].len() {
                    return Err(Error::Frame(format!(
                        "{}: frame {i} is {} bytes",
                        case.name(),
                        f.len()
                    )));
                }
                let mut t = bench::Template {
                    len: f.len() as u32,
                    data: [0; bench::FRAME_MAX],
                };
                t.data[..f.len()].copy_from_slice(f);
                templates
                    .set(base + i as u32, t, 0)
                    .map_err(|x| bpf(bench::TEMPLATES)(x.to_string()))?;
            }
            first.push((*case, fs[0].clone(), base));
        }
        let mut util = Ebpf::load(UTIL_OBJ).map_err(|x| bpf("util object")(x.to_string()))?;
        xdp(&mut util, prog::SWAP_MAC)?
            .load()
            .map_err(|x| bpf(prog::SWAP_MAC)(format!("{x:?}")))?;
        let sink_core = Sink::new(core, "core0")?;
        let sink_lac = Sink::new(lac, "lac0")?;
        let mut fast = fast;
        let mut v3_acp: Option<String> = None;
        let v3 = if opts.cases.iter().any(|c| Case::V3.contains(c)) {
            let acs = topo.add_attachment_circuits(1);
            let (ac, acp) = &acs[0];
            let ac_if = {
                let _g = lns.enter();
                loader::ifindex(ac)?
            };
            dp.install(&v3_session(0, ac_if).1)?;
            let link = attach(&mut fast, prog::CORE, lns, ac)?;
            let acp_if = {
                let _g = core.enter();
                loader::ifindex(acp)?
            };
            v3_acp = Some(acp.clone());
            Some((Sink::new(core, acp)?, link, acp_if))
        } else {
            None
        };
        let lac0 = {
            let _g = lac.enter();
            loader::ifindex("lac0")?
        };
        let core0 = {
            let _g = core.enter();
            loader::ifindex("core0")?
        };
        let pkt = match opts.generator {
            Kind::LiveFrames => None,
            Kind::AfPacket => {
                let mut ports: Vec<(&Netns, &str)> = vec![(lac, "lac0"), (core, "core0")];
                if let Some(acp) = v3_acp.as_deref() {
                    ports.push((core, acp));
                }
                let mut g =
                    Generator::new(&ports, &[opts.cpu]).map_err(io("AF_PACKET generator"))?;
                // Its time is wall time (first to last send), not the kernel's in-loop time:
                // other tasks must not preempt it.
                g.set_rt_prio(PKTGEN_RT_PRIO);
                let mut sets = Vec::new();
                for case in &opts.cases {
                    let port = match case {
                        Case::EncapV3 => 2,
                        c if c.gen_at_lac() => 0,
                        _ => 1,
                    };
                    let fs = frames(*case, opts.sessions)?;
                    sets.push(fs.into_iter().map(|f| (port, f)).collect());
                }
                // The ceiling's: 64-byte frames from lac0 into la's drop sink.
                let fs = frames(Case::SwapMac, opts.sessions)?;
                sets.push(fs.into_iter().map(|f| (0, f)).collect());
                Some((g, sets))
            }
        };
        Ok((
            Lab {
                la_slot: Slot::default(),
                lc_slot: Slot::default(),
                sink_core,
                sink_lac,
                v3,
                tools,
                util,
                fast,
                dp,
                gen_cfg,
                pkt,
                lac0,
                core0,
                _pins: pins,
                topo,
            },
            first,
        ))
    }

    /// Puts `case`'s program on its LNS interface (detach the other first: one per interface).
    fn select(&mut self, case: Case) -> Result<(), Error> {
        let (slot, iface) = if case.gen_at_lac() {
            (&mut self.la_slot, "la")
        } else {
            (&mut self.lc_slot, "lc")
        };
        let p = case.program();
        if matches!(&slot.current, Some((q, _)) if *q == p) {
            return Ok(());
        }
        drop(slot.current.take());
        let obj = match case {
            Case::SwapMac => &mut self.util,
            Case::BaselineUp | Case::BaselineDown | Case::RouterUp => &mut self.tools,
            Case::DecapV2 | Case::EncapV2 | Case::DecapV3 => &mut self.fast,
            // Attached to ac0 for the whole run.
            Case::EncapV3 => return Ok(()),
        };
        let link = attach(obj, p, &self.topo.lns, iface)?;
        slot.current = Some((p, link));
        Ok(())
    }

    fn lns_prog_stats(&mut self, case: Case) -> Result<ProgStats, Error> {
        let p = case.program();
        match case {
            Case::SwapMac => stats_of(&mut self.util, p),
            Case::BaselineUp | Case::BaselineDown | Case::RouterUp => stats_of(&mut self.tools, p),
            Case::DecapV2 | Case::EncapV2 | Case::DecapV3 | Case::EncapV3 => {
                stats_of(&mut self.fast, p)
            }
        }
    }

    /// The sink `case`'s frames end at, and the other one.
    fn sinks(&mut self, case: Case) -> (&mut Sink, &mut Sink) {
        if let (Case::DecapV3, Some((ac, _, _))) = (case, self.v3.as_mut()) {
            return (ac, &mut self.sink_lac);
        }
        if case.to_core() {
            (&mut self.sink_core, &mut self.sink_lac)
        } else {
            (&mut self.sink_lac, &mut self.sink_core)
        }
    }

    /// Reads both sinks: (this case's (packets, bytes), the other's packets).
    fn read_sinks(&mut self, case: Case) -> Result<((u64, u64), u64), Error> {
        let (mine, other) = self.sinks(case);
        Ok((mine.read()?, other.read()?.0))
    }

    fn fastpath(&self, case: Case) -> Result<FastPathCounts, Error> {
        let v = self.dp.verdict_counters()?;
        let forwarded = case.fastpath_verdict().map_or(0, |k| v[k as usize]);
        // Sub-counters of TO_CONTROL (WHY_BASE..) double count: leave them out.
        let all: u64 = v[..verdict::WHY_BASE as usize].iter().sum();
        Ok(FastPathCounts {
            forwarded,
            other: all - forwarded,
            drops: self.dp.drop_counters()?.iter().sum(),
        })
    }

    /// Offers frames from `case`'s generator namespace until `budget` is spent. Returns
    /// (frames offered, in-loop ns, wall time).
    fn generate(
        &mut self,
        case: Case,
        k: usize,
        frame: &[u8],
        budget: Budget,
    ) -> Result<Pass, Error> {
        if let Some((g, sets)) = self.pkt.as_mut() {
            let set = sets
                .get(k)
                .ok_or_else(|| Error::Options(format!("no frames for case {k}")))?;
            return packet_pass(g, k as u32, set, budget);
        }
        let gen_fd = {
            let x = xdp(&mut self.tools, prog::GEN)?;
            x.fd()
                .map_err(|x| bpf(prog::GEN)(x.to_string()))?
                .try_clone()
                .map_err(|x| bpf(prog::GEN)(x.to_string()))?
        };
        let (ns, ifindex) = if let (Case::EncapV3, Some((_, _, acp))) = (case, &self.v3) {
            (&self.topo.core, *acp)
        } else if case.gen_at_lac() {
            (&self.topo.lac, self.lac0)
        } else {
            (&self.topo.core, self.core0)
        };
        let mut pass = Pass::default();
        let guard = ns.enter();
        loop {
            if interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let repeat = match budget {
                Budget::Packets(p) => {
                    let left = p - pass.generated;
                    if left == 0 {
                        break;
                    }
                    left.min(u64::from(CHUNK)) as u32
                }
                Budget::Time(d) => {
                    if pass.wall >= d {
                        break;
                    }
                    CHUNK
                }
            };
            let t = Instant::now();
            match test_run::run_live(gen_fd.as_fd().as_raw_fd(), frame, ifindex, repeat) {
                // The kernel's average over the repetitions (truncated to a ns: < 0.5 % at
                // the rates here) covers the batches and the softirq work each batch
                // triggers, not the per-call page-pool setup and teardown (~15 ms here).
                Ok(avg_ns) => pass.in_loop_ns += u64::from(avg_ns) * u64::from(repeat),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
                Err(e) => return Err(io("live-frame test run")(e)),
            }
            pass.wall += t.elapsed();
            pass.generated += u64::from(repeat);
        }
        drop(guard);
        // Let anything a softirq deferred to ksoftirqd land before counting.
        std::thread::sleep(Duration::from_millis(20));
        Ok(pass)
    }

    /// The generator's own ceiling: `xdp_count` (count, XDP_DROP) on la instead of any LNS
    /// program, frames from lac0 as for the upstream cases, the same budget as a timed pass.
    fn ceiling(
        &mut self,
        cases: usize,
        frame: &[u8],
        n: u32,
        budget: Budget,
        round: usize,
    ) -> Result<CeilingSample, Error> {
        drop(self.la_slot.current.take());
        let sink = Sink::new(&self.topo.lns, "la")?;
        self.gen_cfg
            .set(0, bench::GenConfig { base: 0, n }, 0)
            .map_err(|x| bpf(bench::GEN_CFG)(x.to_string()))?;
        let (c0, _) = sink.read()?;
        let p = self.generate(Case::SwapMac, cases, frame, budget)?;
        let (c1, _) = sink.read()?;
        drop(sink);
        let received = c1 - c0;
        let seconds = p.in_loop_ns as f64 / 1e9;
        Ok(CeilingSample {
            round,
            offered: p.generated,
            received,
            seconds,
            mpps: if seconds > 0.0 {
                received as f64 / seconds / 1e6
            } else {
                0.0
            },
        })
    }

    /// One case in one round: a timed pass with bpf_stats off (the throughput), then a shorter
    /// pass with bpf_stats on (ns per packet of each program; the statistics cost a clock read
    /// or two per program run, so they stay out of the timed pass), verified to have taken the
    /// forwarding path ([`Sample::path_verified`]).
    #[allow(clippy::too_many_arguments)]
    fn run_case(
        &mut self,
        stats: &StatsSwitch,
        case: Case,
        frame: &[u8],
        base: u32,
        n: u32,
        budget: Budget,
        round: usize,
    ) -> Result<Sample, Error> {
        let k = (base / n.max(1)) as usize;
        self.select(case)?;
        self.gen_cfg
            .set(0, bench::GenConfig { base, n }, 0)
            .map_err(|x| bpf(bench::GEN_CFG)(x.to_string()))?;
        let (rx0, other0) = self.read_sinks(case)?;
        let fp0 = self.fastpath(case)?;

        stats.set(false).map_err(io("kernel.bpf_stats_enabled"))?;
        let t0 = self.lns_prog_stats(case)?;
        let timed = self.generate(case, k, frame, budget)?;
        let t1 = self.lns_prog_stats(case)?;
        let (rx1, _) = self.read_sinks(case)?;
        let fp1 = self.fastpath(case)?;

        let stats_budget = match budget {
            Budget::Packets(p) => Budget::Packets(p),
            Budget::Time(d) => Budget::Time(d / 4),
        };
        // Held, not the sysctl: another process's write of 0 must not end the pass early.
        let hold = StatsHold::new().map_err(io("BPF_ENABLE_STATS"))?;
        let p0 = self.lns_prog_stats(case)?;
        let live = self.pkt.is_none();
        let g0 = stats_of(&mut self.tools, prog::GEN)?;
        let s0 = stats_of(&mut self.sinks(case).0.ebpf, prog::COUNT)?;
        let counted = self.generate(case, k, frame, stats_budget)?;
        drop(hold);
        let p1 = self.lns_prog_stats(case)?;
        let g1 = stats_of(&mut self.tools, prog::GEN)?;
        let s1 = stats_of(&mut self.sinks(case).0.ebpf, prog::COUNT)?;

        let (rx2, other2) = self.read_sinks(case)?;
        let fp2 = self.fastpath(case)?;
        let timed_received = rx1.0 - rx0.0;
        let stats_received = rx2.0 - rx1.0;
        let seconds = timed.in_loop_ns as f64 / 1e9;
        let stats_fp = fp2.since(&fp1);
        let all_fp = fp2.since(&fp0);
        let prog_runs = p1.runs_since(&p0);
        let gen_runs = g1.runs_since(&g0);
        let other_sink_received = other2 - other0;
        let timed_stats_runs = t1.runs_since(&t0);
        if timed_stats_runs > 0 && round != usize::MAX {
            eprintln!(
                "l2xdp-bench forward: {} round {round}: bpf_stats were on during {timed_stats_runs} \
                 runs of the timed pass (another process?): its Mpps is lowered",
                case.name()
            );
        }
        // The AF_PACKET generator is no program: nothing to count.
        let path_verified = prog_runs == counted.generated
            && (!live || gen_runs == counted.generated)
            && stats_received == counted.generated
            && other_sink_received == 0
            && stats_fp.other == 0
            && stats_fp.drops == 0
            && (case.fastpath_verdict().is_none() || stats_fp.forwarded == counted.generated);
        if !path_verified && round != usize::MAX {
            eprintln!(
                "l2xdp-bench forward: {} round {round}: bpf_stats pass NOT verified \
                 (generated {}, LNS runs {prog_runs}, generator runs {gen_runs}, received \
                 {stats_received}, other sink {other_sink_received}, fast path forwarded {} \
                 other {} drops {}): its cost is left out",
                case.name(),
                counted.generated,
                stats_fp.forwarded,
                stats_fp.other,
                stats_fp.drops,
            );
        }
        Ok(Sample {
            round,
            generated: timed.generated + counted.generated,
            received: rx2.0 - rx0.0,
            received_bytes: rx2.1 - rx0.1,
            timed_generated: timed.generated,
            timed_received,
            stats_generated: counted.generated,
            stats_received,
            other_sink_received,
            timed_stats_runs,
            seconds,
            wall_seconds: timed.wall.as_secs_f64(),
            mpps: if seconds > 0.0 {
                timed_received as f64 / seconds / 1e6
            } else {
                0.0
            },
            mpps_ratio: None,
            prog_ns: p1.ns_per_run_since(&p0),
            cost_ratio: None,
            prog_runs,
            gen_ns: if live { g1.ns_per_run_since(&g0) } else { None },
            gen_runs,
            sink_ns: s1.ns_per_run_since(&s0),
            fastpath_forwarded: all_fp.forwarded,
            fastpath_other: all_fp.other,
            fastpath_drops: all_fp.drops,
            stats_fastpath_forwarded: stats_fp.forwarded,
            stats_fastpath_other: stats_fp.other,
            stats_fastpath_drops: stats_fp.drops,
            path_verified,
        })
    }
}

/// The fast path's counters for one case: its forwarding verdict, every other verdict, drops.
#[derive(Debug, Clone, Copy)]
struct FastPathCounts {
    forwarded: u64,
    other: u64,
    drops: u64,
}

impl FastPathCounts {
    fn since(&self, before: &FastPathCounts) -> FastPathCounts {
        FastPathCounts {
            forwarded: self.forwarded.saturating_sub(before.forwarded),
            other: self.other.saturating_sub(before.other),
            drops: self.drops.saturating_sub(before.drops),
        }
    }
}

/// One pass of the AF_PACKET generator (on the calling thread's core).
fn packet_pass(
    g: &mut Generator,
    id: u32,
    frames: &[pktgen::Frame],
    budget: Budget,
) -> Result<Pass, Error> {
    g.load(id, frames).map_err(io("AF_PACKET generator"))?;
    let b = match budget {
        Budget::Packets(p) => pktgen::Budget::Packets(p),
        Budget::Time(d) => pktgen::Budget::Time(d),
    };
    let p = match g.pass(b, None) {
        Ok(p) => p,
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
        Err(e) => return Err(io("AF_PACKET generator")(e)),
    };
    // Let anything a softirq deferred to ksoftirqd land before counting.
    std::thread::sleep(Duration::from_millis(20));
    let wall = Duration::from_secs_f64(p.seconds);
    Ok(Pass {
        generated: p.sent,
        in_loop_ns: wall.as_nanos() as u64,
        wall,
    })
}

/// What one generator pass did.
#[derive(Debug, Default)]
struct Pass {
    generated: u64,
    in_loop_ns: u64,
    wall: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Budget {
    Packets(u64),
    Time(Duration),
}

/// Runs the scenario; writes the JSON report to `opts.json` and returns it.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if !is_root() {
        return Err(Error::NotRoot);
    }
    if opts.cases.is_empty() || opts.rounds == 0 || opts.sessions == 0 {
        return Err(Error::Options(
            "need at least one case, round and session".into(),
        ));
    }
    if opts.sessions as usize * opts.cases.len() > bench::TEMPLATE_SLOTS as usize
        || opts.sessions > 60_000
    {
        return Err(Error::Options(format!(
            "{} sessions x {} cases exceed the generator's {} template slots",
            opts.sessions,
            opts.cases.len(),
            bench::TEMPLATE_SLOTS
        )));
    }
    let machine = Machine::probe();
    if opts.cpu >= machine.cores {
        return Err(Error::Options(format!(
            "--cpu {} but {} CPUs online",
            opts.cpu, machine.cores
        )));
    }
    let date = utc_now();
    pin_thread(opts.cpu).map_err(io(format!("pinning to CPU {}", opts.cpu)))?;
    let (mut lab, first) = Lab::new(opts)?;
    let napi = format!(
        "veth XDP NAPI in softirq on the generator's core (threaded: lac0={}, la={}, lc={}, core0={}); GRO off; every receiving veth has an XDP program",
        napi_threaded(&lab.topo.lac, "lac0"),
        napi_threaded(&lab.topo.lns, "la"),
        napi_threaded(&lab.topo.lns, "lc"),
        napi_threaded(&lab.topo.core, "core0"),
    );
    let stats = StatsSwitch::new().map_err(io("kernel.bpf_stats_enabled"))?;

    let budget = match opts.packets {
        Some(p) => Budget::Packets(p),
        None => Budget::Time(opts.duration),
    };
    // Warm-up: page pools, caches, map entries; not recorded.
    let warm = match budget {
        Budget::Packets(p) => Budget::Packets(p.min(65_536)),
        Budget::Time(d) => Budget::Time(d / 10),
    };
    for (case, frame, base) in &first {
        lab.run_case(&stats, *case, frame, *base, opts.sessions, warm, usize::MAX)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); first.len()];
    let mut ceiling = Vec::new();
    for round in 0..opts.rounds {
        ceiling.push(lab.ceiling(first.len(), &first[0].1, opts.sessions, budget, round)?);
        for (k, (case, frame, base)) in first.iter().enumerate() {
            let s = lab.run_case(&stats, *case, frame, *base, opts.sessions, budget, round)?;
            samples[k].push(s);
        }
    }
    // Same-round ratios: Mpps to the case's XDP_REDIRECT baseline, cost to swapmac's (both
    // stats passes verified).
    let swap_k = first.iter().position(|(c, _, _)| *c == Case::SwapMac);
    let ratios: Vec<Vec<(Option<f64>, Option<f64>)>> = (0..first.len())
        .map(|k| {
            let base_k = first
                .iter()
                .position(|(c, _, _)| *c == first[k].0.baseline());
            (0..opts.rounds)
                .map(|r| {
                    let s = &samples[k][r];
                    let mpps_ratio = base_k
                        .map(|b| &samples[b][r])
                        .filter(|b| b.mpps > 0.0 && b.timed_stats_runs == 0)
                        .filter(|_| s.timed_stats_runs == 0)
                        .map(|b| s.mpps / b.mpps);
                    let cost_ratio = swap_k
                        .map(|w| &samples[w][r])
                        .filter(|w| s.path_verified && w.path_verified)
                        .and_then(|w| match (s.prog_ns, w.prog_ns) {
                            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                            _ => None,
                        });
                    (mpps_ratio, cost_ratio)
                })
                .collect()
        })
        .collect();
    for (ss, rs) in samples.iter_mut().zip(ratios) {
        for (s, (mpps_ratio, cost_ratio)) in ss.iter_mut().zip(rs) {
            s.mpps_ratio = mpps_ratio;
            s.cost_ratio = cost_ratio;
        }
    }
    let cases = first
        .iter()
        .enumerate()
        .map(|(k, (case, frame, _))| {
            let ss = &samples[k];
            let col =
                |f: fn(&Sample) -> Option<f64>| -> Vec<f64> { ss.iter().filter_map(f).collect() };
            let generated = ss.iter().map(|s| s.generated).sum::<u64>();
            let received = ss.iter().map(|s| s.received).sum::<u64>();
            let bytes = ss.iter().map(|s| s.received_bytes).sum::<u64>();
            CaseReport {
                name: case.name(),
                direction: case.direction(),
                program: case.program(),
                baseline: case.baseline().name(),
                frame_in_bytes: frame.len(),
                frame_out_bytes: if received > 0 {
                    bytes as f64 / received as f64
                } else {
                    0.0
                },
                mpps: Summary::of(&col(|s| (s.timed_stats_runs == 0).then_some(s.mpps))),
                wall_mpps: Summary::of(&col(|s| {
                    (s.wall_seconds > 0.0 && s.timed_stats_runs == 0)
                        .then(|| s.timed_received as f64 / s.wall_seconds / 1e6)
                })),
                ratio: Summary::of(&col(|s| s.mpps_ratio)),
                prog_ns: Summary::of(&col(|s| s.prog_ns.filter(|_| s.path_verified))),
                cost_ratio: Summary::of(&col(|s| s.cost_ratio)),
                verified_rounds: ss.iter().filter(|s| s.path_verified).count(),
                stats_off_rounds: ss.iter().filter(|s| s.timed_stats_runs == 0).count(),
                gen_ns: Summary::of(&col(|s| s.gen_ns)),
                sink_ns: Summary::of(&col(|s| s.sink_ns)),
                generated,
                received,
                lost: generated.saturating_sub(received),
                fastpath_forwarded: ss.iter().map(|s| s.fastpath_forwarded).sum(),
                fastpath_other: ss.iter().map(|s| s.fastpath_other).sum(),
                fastpath_drops: ss.iter().map(|s| s.fastpath_drops).sum(),
                stats_generated: ss.iter().map(|s| s.stats_generated).sum(),
                stats_fastpath_forwarded: ss.iter().map(|s| s.stats_fastpath_forwarded).sum(),
                samples: ss.clone(),
            }
        })
        .collect();
    let report = Report {
        header: Header {
            scenario: "forward",
            mode: "xdp",
            date,
            command: opts.command.clone(),
            machine,
        },
        topology: "lac ns: lac0 --veth-- lns ns: la [LNS access prog] ... lc [LNS core prog] --veth-- core ns: core0; generator = xdp_gen live-frame test run (XDP_TX) on lac0 (up, back) or core0 (down); sinks = xdp_count (XDP_DROP) on core0 (up) and lac0 (down, back: swapmac's XDP_TX on la)".into(),
        generator_cpu: opts.cpu,
        generator: opts.generator,
        generator_describe: opts.generator.describe(),
        generator_ceiling_mpps: Summary::of(&ceiling.iter().map(|c| c.mpps).collect::<Vec<_>>()),
        generator_ceiling: ceiling,
        receivers_napi: napi,
        sessions: opts.sessions,
        rounds: opts.rounds,
        duration_ms: opts
            .packets
            .is_none()
            .then_some(opts.duration.as_millis() as u64),
        packets: opts.packets,
        cases,
    };
    write_json(&report, &opts.json)?;
    Ok(report)
}

/// The readable table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let budget = match (r.packets, r.duration_ms) {
        (Some(p), _) => format!("{p} frames"),
        (None, Some(ms)) => format!("{:.1} s", ms as f64 / 1000.0),
        _ => "?".into(),
    };
    out += &format!(
        "l2xdp-bench forward ({}): {} rounds x {} per case, interleaved; {} sessions; generator and path on CPU {}\n",
        r.header.date, r.rounds, budget, r.sessions, r.generator_cpu
    );
    out += &format!(
        "kernel {}, {} ({} cores)\n",
        r.header.machine.kernel, r.header.machine.cpu_model, r.header.machine.cores
    );
    out += &format!(
        "generator: {} on CPU {}; its ceiling (into xdp_count on la, same run, every round) {} Mpps\n",
        r.generator_describe,
        r.generator_cpu,
        fmt_summary(&r.generator_ceiling_mpps, 2)
    );
    out += "medians [min–max] over rounds. Mpps ratio = Mpps / same-round XDP_REDIRECT baseline Mpps (swapmac: baseline-up);\n";
    out += "ns/pkt = LNS program's bpf_stats run_time_ns/run_cnt (stats-on pass); cost ratio = ns/pkt / same-round swapmac ns/pkt;\n";
    out += "verified = rounds whose stats-on pass took the forwarding path (runs = frames, all at the sink, fast-path DECAP/ENCAP = frames, no other verdict, no drop);\n";
    out += "stats off = rounds whose timed pass ran with bpf_stats off throughout (only those count in Mpps and Mpps ratio)\n";
    out += &format!(
        "{:<14} {:<19} {:>7} {:>20} {:>20} {:>20} {:>20} {:>6} {:>7} {:>5} {:>8} {:>9}\n",
        "case",
        "LNS program",
        "bytes",
        "Mpps at sink",
        "Mpps ratio",
        "LNS ns/pkt",
        "cost ratio",
        "gen ns",
        "sink ns",
        "lost",
        "verified",
        "stats off"
    );
    for c in &r.cases {
        out += &format!(
            "{:<14} {:<19} {:>7} {:>20} {:>20} {:>20} {:>20} {:>6} {:>7} {:>5} {:>8} {:>9}\n",
            c.name,
            c.program,
            format!("{}→{:.0}", c.frame_in_bytes, c.frame_out_bytes),
            fmt_summary(&c.mpps, 2),
            fmt_summary(&c.ratio, 3),
            fmt_summary(&c.prog_ns, 1),
            fmt_summary(&c.cost_ratio, 2),
            c.gen_ns.map_or("-".into(), |s| format!("{:.1}", s.median)),
            c.sink_ns.map_or("-".into(), |s| format!("{:.1}", s.median)),
            c.lost,
            format!("{}/{}", c.verified_rounds, c.samples.len()),
            format!("{}/{}", c.stats_off_rounds, c.samples.len()),
        );
    }
    out
}
