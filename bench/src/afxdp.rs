//! `l2xdp-bench afxdp`: 64-byte forwarding per core in AF_XDP mode, as a ratio to a raw AF_XDP
//! forwarder (rx then tx, no L2TP work: [`RawForwarder`]) on the same veth pair in the same
//! run, cases alternating round by round (raw-up, afxdp-decap-v2, raw-down, afxdp-encap-v2,
//! raw-up, ...).
//!
//! Topology: the forward scenario's (`lac` — `lns` — `core`, its frames, sessions and sinks):
//!
//! ```text
//!   lac0 (xdp_count) ── la [xdp_l2tp_access | xdp_to_xsk]   lc [xdp_l2tp_core | xdp_to_xsk] ── core0 (xdp_count)
//!   gen: AF_XDP socket         ╲ AF_XDP socket, queue 0   AF_XDP socket, queue 0 ╱     gen: AF_XDP socket
//!   on lac0 (up)                ╲──── one worker thread pinned to --worker-cpu ───╱    on core0 (down)
//! ```
//!
//! The generator is an AF_XDP socket on lac0 (up) or core0 (down), driven by the calling
//! thread pinned to `--gen-cpu` (which so also runs the receiving veth's NAPI and the XDP
//! program that hands the frames to the worker's socket). It sends the case's prepared frames
//! (one per session, round robin) with at most [`WINDOW`] frames not yet counted at the sink:
//! flow control by delivery, so no ring overflows — an overloaded receive ring makes the kernel
//! and the worker fight over its cache lines, which slows the forwarder with the cheaper
//! classifier most and would skew the ratio. The worker — AF_XDP mode's ([`AfXdp`]: decap/encap
//! with `wire::datapath`) or the raw forwarder — takes the frames from its socket and sends
//! them on the other veth (copy mode), whose peer counts them (`xdp_count`). Delivery is
//! counted at that sink only; Mpps = sink count / wall time of the pass. A socket per
//! (interface, queue) is exclusive, so each case starts its own worker and stops it after its
//! pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aya::maps::{MapData, XskMap};
use aya::programs::xdp::XdpLink;
use aya::Ebpf;
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig};
use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::xsk::{XskConfig, XskSocket};
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::xsk_stat;
use l2xdp_lab::raw::RawForwarder;
use l2xdp_lab::topology::{Pins, Topology, CORE0, LA, LAC0, LC};
use l2xdp_lab::{is_root, Netns};
use serde::Serialize;

use crate::bpf::{bench, prog};
use crate::forward::{
    self, attach, fmt_summary, frames, io, load_bench, session, take, write_json, Error, Sink,
};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::summary::Summary;

/// Frames in flight (sent, not yet counted at the sink): below the worker's receive ring.
pub const WINDOW: u64 = 512;
/// The generator reads the sink count every this many frames.
const CHECK_EVERY: u64 = 64;
/// A window that does not move for this long is lost (counted, the pass goes on).
const STALL: Duration = Duration::from_millis(200);
/// Bounds a hung pass.
const LIMIT: Duration = Duration::from_secs(30);

/// The cases, in their default interleaving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// Raw AF_XDP forwarder la → lc, 64-byte frames.
    RawUp,
    /// AF_XDP mode L2TPv2 decap la → lc.
    AfxdpDecapV2,
    /// Raw AF_XDP forwarder lc → la, 64-byte frames.
    RawDown,
    /// AF_XDP mode L2TPv2 encap lc → la.
    AfxdpEncapV2,
}

impl Case {
    /// Every case, in the default interleaving order.
    pub const ALL: [Case; 4] = [
        Case::RawUp,
        Case::AfxdpDecapV2,
        Case::RawDown,
        Case::AfxdpEncapV2,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Case::RawUp => "raw-up",
            Case::AfxdpDecapV2 => "afxdp-decap-v2",
            Case::RawDown => "raw-down",
            Case::AfxdpEncapV2 => "afxdp-encap-v2",
        }
    }

    /// The case named `s`.
    pub fn parse(s: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Its raw-forwarder baseline (the raw cases are their own).
    pub fn baseline(self) -> Case {
        match self {
            Case::RawUp | Case::AfxdpDecapV2 => Case::RawUp,
            Case::RawDown | Case::AfxdpEncapV2 => Case::RawDown,
        }
    }

    /// lac → core.
    pub fn up(self) -> bool {
        matches!(self, Case::RawUp | Case::AfxdpDecapV2)
    }

    fn raw(self) -> bool {
        matches!(self, Case::RawUp | Case::RawDown)
    }

    /// The forward scenario's case with the same frames.
    fn frames_of(self) -> forward::Case {
        match self {
            Case::RawUp => forward::Case::BaselineUp,
            Case::AfxdpDecapV2 => forward::Case::DecapV2,
            Case::RawDown => forward::Case::BaselineDown,
            Case::AfxdpEncapV2 => forward::Case::EncapV2,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Generation time per case and round (ignored with `packets`).
    pub duration: Duration,
    /// Exactly this many frames per case and round instead of a duration.
    pub packets: Option<u64>,
    /// Sessions installed; frames spread over them round robin.
    pub sessions: u32,
    /// The generator's core (and the receiving veth's NAPI).
    pub gen_cpu: usize,
    /// The worker's core.
    pub worker_cpu: usize,
    /// Frames a worker takes per socket and pass.
    pub batch: u32,
    /// The cases, in interleaving order.
    pub cases: Vec<Case>,
    /// Where the JSON report goes.
    pub json: PathBuf,
    /// The command line, recorded in the report.
    pub command: String,
}

/// One case in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Round number (0-based).
    pub round: usize,
    /// Frames the generator sent.
    pub generated: u64,
    /// Frames given up as lost (a window that stalled).
    pub lost: u64,
    /// Frames the sink counted.
    pub received: u64,
    /// Bytes the sink counted.
    pub received_bytes: u64,
    /// Frames the worker took from its socket.
    pub worker_rx: u64,
    /// Frames the worker sent.
    pub worker_sent: u64,
    /// Frames the worker dropped (any reason: no transmit frame, fast-path drop...).
    pub worker_dropped: u64,
    /// Wall time of the generation pass, seconds.
    pub seconds: f64,
    /// received / seconds / 1e6.
    pub mpps: f64,
    /// This case's Mpps / its raw baseline's in the same round.
    pub mpps_ratio: Option<f64>,
}

/// One case over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case name.
    pub name: &'static str,
    /// "up" (lac → core) or "down".
    pub direction: &'static str,
    /// Its baseline case.
    pub baseline: &'static str,
    /// Frame length entering the LNS.
    pub frame_in_bytes: usize,
    /// Frame length the sink received (bytes / packets).
    pub frame_out_bytes: f64,
    /// Throughput at the sink, Mpps.
    pub mpps: Option<Summary>,
    /// Per-round ratio to the baseline's Mpps.
    pub ratio: Option<Summary>,
    /// Totals over rounds.
    pub generated: u64,
    /// Totals over rounds.
    pub received: u64,
    /// Totals over rounds: frames given up as lost.
    pub lost: u64,
    /// Totals over rounds: what the worker sent.
    pub worker_sent: u64,
    /// Totals over rounds: what the worker dropped.
    pub worker_dropped: u64,
    /// Every round.
    pub samples: Vec<Sample>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "afxdp".
    pub scenario: &'static str,
    /// "afxdp".
    pub mode: &'static str,
    /// UTC start time.
    pub date: String,
    /// The command line.
    pub command: String,
    /// Kernel, CPU, cores.
    pub machine: Machine,
    /// The topology, in words.
    pub topology: String,
    /// The generator's core.
    pub generator_cpu: usize,
    /// The worker's core.
    pub worker_cpu: usize,
    /// Frames per socket and pass.
    pub batch: u32,
    /// Whether the sockets ran zero-copy (veth: copy mode).
    pub zero_copy: bool,
    /// Sessions installed.
    pub sessions: u32,
    /// Rounds.
    pub rounds: usize,
    /// Frames in flight at most.
    pub window: u64,
    /// Per case and round (None: fixed packet count).
    pub duration_ms: Option<u64>,
    /// Per case and round (None: duration).
    pub packets: Option<u64>,
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// A running worker of either kind.
pub(crate) enum Running {
    Raw(RawForwarder),
    Fast(AfXdp),
}

impl Running {
    /// (rx, sent, dropped).
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let sum = |c: &[u64]| -> (u64, u64) {
            let sent = c[xsk_stat::DECAP as usize] + c[xsk_stat::ENCAP as usize];
            (sent, c.iter().sum::<u64>() - sent)
        };
        match self {
            Running::Raw(r) => {
                let s = r.stats();
                let c: Vec<u64> = s
                    .counters
                    .iter()
                    .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                    .collect();
                let (sent, dropped) = sum(&c);
                (
                    s.rx.load(std::sync::atomic::Ordering::Relaxed),
                    sent,
                    dropped,
                )
            }
            Running::Fast(a) => {
                let (sent, dropped) = sum(&a.counters());
                (a.received(), sent, dropped)
            }
        }
    }
}

/// What runs on la and lc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Programs {
    /// `xdp_redirect_plain` on la and lc (the XDP_REDIRECT baseline, `bench_fwd` set la ⇄ lc).
    Redirect,
    /// The fast path's `xdp_l2tp_access` on la and `xdp_l2tp_core` on lc (XDP or AF_XDP mode
    /// as [`LnsLab::set_afxdp`] configured).
    Fast,
    /// `xdp_to_xsk` on la and lc: the raw AF_XDP forwarder's classifier.
    ToXsk,
}

/// The LNS side of the AF_XDP-generator scenarios (`afxdp`, `latency`): the three-namespace
/// topology, the fast path loaded and pinned with `sessions` sessions installed, the bench
/// tools (XDP_REDIRECT baseline, `xdp_to_xsk` + its XSKMAP for the raw forwarder), the
/// programs on la and lc, and the worker (raw forwarder or AF_XDP mode) a case runs. Field
/// order is drop order: links and objects, pins, namespaces.
pub(crate) struct LnsLab {
    links: Vec<XdpLink>,
    programs: Option<Programs>,
    tools: Ebpf,
    pub(crate) workers: Workers,
    fast: Ebpf,
    dp: XdpDataPlane,
    pub(crate) pins: Pins,
    pub(crate) topo: Topology,
}

impl LnsLab {
    /// Topology `tag`, pins `/sys/fs/bpf/l2xdp-<pins_tag>-<pid>`, fast path in AF_XDP mode.
    pub(crate) fn new(tag: &str, pins_tag: &str, sessions: u32) -> Result<LnsLab, Error> {
        let topo = Topology::new(tag);
        let pins = Pins::under_sys_fs_bpf(pins_tag);
        let (fast, la, lc) = {
            let _g = topo.lns.enter();
            let fast = loader::load(Some(pins.path()))?;
            (fast, loader::ifindex(LA)?, loader::ifindex(LC)?)
        };
        let mut dp = XdpDataPlane::open(pins.path())?;
        for i in 0..sessions {
            dp.install(&session(i).1)?;
        }
        let mut tools = load_bench(&[prog::TO_XSK, prog::REDIRECT_PLAIN])?;
        forward::set_fwd(&mut tools, la, lc)?;
        let workers = Workers::new(&mut tools)?;
        let mut lab = LnsLab {
            links: vec![],
            programs: None,
            tools,
            workers,
            fast,
            dp,
            pins,
            topo,
        };
        lab.set_afxdp(true)?;
        Ok(lab)
    }

    /// The fast path's mode: AF_XDP (the programs hand forwarded frames to the workers) or
    /// XDP (the programs forward).
    pub(crate) fn set_afxdp(&mut self, afxdp: bool) -> Result<(), Error> {
        self.dp.set_config(&FastPathConfig {
            afxdp,
            ..FastPathConfig::default()
        })?;
        Ok(())
    }

    /// Puts `p` on la and lc (detaching what ran there).
    pub(crate) fn select(&mut self, p: Programs) -> Result<(), Error> {
        if self.programs == Some(p) {
            return Ok(());
        }
        self.links.clear();
        self.programs = None;
        let lns = self.topo.lns.clone();
        let (obj, la, lc) = match p {
            Programs::Redirect => (&mut self.tools, prog::REDIRECT_PLAIN, prog::REDIRECT_PLAIN),
            Programs::ToXsk => (&mut self.tools, prog::TO_XSK, prog::TO_XSK),
            Programs::Fast => (&mut self.fast, prog::ACCESS, prog::CORE),
        };
        self.links.push(attach(obj, la, &lns, LA)?);
        self.links.push(attach(obj, lc, &lns, LC)?);
        self.programs = Some(p);
        Ok(())
    }

    /// Starts the raw forwarder la → lc (`up`) or lc → la on `cpu` (needs [`Programs::ToXsk`]).
    pub(crate) fn start_raw(&mut self, up: bool, cpu: usize, batch: u32) -> Result<Running, Error> {
        self.workers.start_raw(&self.topo.lns, up, cpu, batch)
    }

    /// Starts one AF_XDP-mode worker on `cpu` with sockets on la and lc and waits until it
    /// holds every session (needs [`Programs::Fast`] and [`set_afxdp`](Self::set_afxdp)).
    pub(crate) fn start_afxdp(&mut self, cpu: usize, batch: u32) -> Result<Running, Error> {
        self.workers
            .start_afxdp(&self.topo.lns, self.pins.path(), &[LA, LC], cpu, batch)
    }

    /// Stops a worker (the raw forwarder gives the XSKMAP back).
    pub(crate) fn stop(&mut self, r: Running) {
        self.workers.stop(r);
    }
}

/// The workers a case runs on the LNS's la and lc — the raw forwarder or AF_XDP mode —
/// started and stopped per case (one socket per interface and queue); shared by [`LnsLab`]
/// and the throughput scenario's lab.
pub(crate) struct Workers {
    /// The XSKMAPs of `xdp_to_xsk`, lent to the running raw forwarder: `[0]` the one of the
    /// program on la (and on lc when there is no `[1]`), `[1]` the one of a separately loaded
    /// `xdp_to_xsk` on lc (`xdp_to_xsk` keys by queue: both ways at once need two maps).
    xsks: [Option<XskMap<MapData>>; 2],
    /// Whether lc's program has its own XSKMAP (`xsks[1]`).
    separate: bool,
    /// The `xsks` slots lent to the running raw forwarder, in the order it got them.
    lent: Vec<usize>,
    /// Whether the last AF_XDP-mode worker's sockets ran zero-copy (veth: copy mode).
    pub(crate) zero_copy: bool,
}

impl Workers {
    /// Takes the XSKMAP of `tools` (a bench object with `xdp_to_xsk` loaded, on la and lc).
    pub(crate) fn new(tools: &mut Ebpf) -> Result<Workers, Error> {
        Ok(Workers {
            xsks: [Some(take(tools, bench::XSKS)?), None],
            separate: false,
            lent: vec![],
            zero_copy: false,
        })
    }

    /// Takes the XSKMAPs of `la_tools` (its `xdp_to_xsk` runs on la) and `lc_tools` (a
    /// second bench object, its `xdp_to_xsk` on lc): the raw forwarder can then forward both
    /// ways at once ([`start_raw_both`](Self::start_raw_both)).
    pub(crate) fn new_separate(la_tools: &mut Ebpf, lc_tools: &mut Ebpf) -> Result<Workers, Error> {
        Ok(Workers {
            xsks: [
                Some(take(la_tools, bench::XSKS)?),
                Some(take(lc_tools, bench::XSKS)?),
            ],
            separate: true,
            lent: vec![],
            zero_copy: false,
        })
    }

    /// The `xsks` slot of the program on lc (`true`) or la.
    fn slot(&self, lc: bool) -> usize {
        usize::from(lc && self.separate)
    }

    /// Lends the XSKMAP of slot `k` to a raw forwarder.
    fn lend(&mut self, k: usize) -> Result<XskMap<MapData>, Error> {
        let m = self.xsks[k]
            .take()
            .ok_or_else(|| Error::Options("XSKMAP in use".into()))?;
        self.lent.push(k);
        Ok(m)
    }

    /// Starts the raw forwarder la → lc (`up`) or lc → la on `cpu`, in `lns` (needs
    /// `xdp_to_xsk` on la and lc).
    pub(crate) fn start_raw(
        &mut self,
        lns: &Netns,
        up: bool,
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        let _g = lns.enter();
        let (from, to) = if up { (LA, LC) } else { (LC, LA) };
        let k = self.slot(!up);
        let map = self.lend(k)?;
        match RawForwarder::start(from, to, map, Some(cpu), batch, &XskConfig::default()) {
            Ok(r) => Ok(Running::Raw(r)),
            Err(e) => {
                // The map went with the failed start: this slot stays empty (an error ends the run).
                self.lent.clear();
                Err(sys(e))
            }
        }
    }

    /// Starts one raw forwarder for both ways (la → lc and lc → la, one worker thread on
    /// `cpu`, sockets on queue 0 of both), in `lns` (needs the lab's two `xdp_to_xsk`
    /// programs: [`new_separate`](Self::new_separate)).
    pub(crate) fn start_raw_both(
        &mut self,
        lns: &Netns,
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        if !self.separate {
            return Err(Error::Options(
                "the raw forwarder both ways needs an XSKMAP per interface".into(),
            ));
        }
        let _g = lns.enter();
        let a = self.lend(0)?;
        let b = self.lend(1)?;
        match RawForwarder::start_both(LA, LC, a, b, Some(cpu), batch, &XskConfig::default()) {
            Ok(r) => Ok(Running::Raw(r)),
            Err(e) => {
                self.lent.clear();
                Err(sys(e))
            }
        }
    }

    /// Starts one AF_XDP-mode worker on `cpu` with sockets on `interfaces` (in `lns`) and
    /// waits until it holds every session of the fast path pinned at `pins` (needs the fast
    /// path's programs in AF_XDP mode).
    pub(crate) fn start_afxdp(
        &mut self,
        lns: &Netns,
        pins: &Path,
        interfaces: &[&str],
        cpu: usize,
        batch: u32,
    ) -> Result<Running, Error> {
        let _g = lns.enter();
        let a = AfXdp::start(
            pins,
            &AfXdpConfig {
                interfaces: interfaces.iter().map(|i| (*i).to_owned()).collect(),
                cores: vec![cpu],
                batch,
                xsk: XskConfig::default(),
            },
        )
        .map_err(sys)?;
        self.zero_copy = a.zero_copy.iter().all(|z| *z);
        a.settle(pins, LIMIT).map_err(sys)?;
        Ok(Running::Fast(a))
    }

    /// Stops a worker (the raw forwarder gives the XSKMAP back).
    pub(crate) fn stop(&mut self, r: Running) {
        match r {
            Running::Raw(r) => {
                let lent = std::mem::take(&mut self.lent);
                for (k, m) in lent.into_iter().zip(r.stop_all()) {
                    self.xsks[k] = Some(m);
                }
            }
            Running::Fast(a) => drop(a),
        }
    }
}

fn sys(e: l2xdp_dataplane::afxdp::AfXdpError) -> Error {
    Error::Options(e.to_string())
}

/// An AF_XDP socket on queue 0 of `iface` in `ns` (a generator or receiver; copy mode on veth).
pub(crate) fn xsk_on(ns: &Netns, iface: &str) -> Result<XskSocket, Error> {
    let _g = ns.enter();
    XskSocket::open(loader::ifindex(iface)?, 0, &XskConfig::default())
        .map_err(io(format!("AF_XDP socket on {iface}")))
}

/// The afxdp scenario's lab. Field order is drop order: sinks and generators, then the LNS side.
struct Lab {
    sink_core: Sink,
    sink_lac: Sink,
    /// The generators: AF_XDP sockets on lac0 and core0.
    gen_lac: XskSocket,
    gen_core: XskSocket,
    lns: LnsLab,
}

/// A case's frames (one per session).
type Prepared = (Case, Vec<Vec<u8>>);

impl Lab {
    fn new(opts: &Options) -> Result<(Lab, Vec<Prepared>), Error> {
        let lns = LnsLab::new("afx", "bench-afxdp", opts.sessions)?;
        let mut prepared = Vec::new();
        for case in &opts.cases {
            prepared.push((*case, frames(case.frames_of(), opts.sessions)?));
        }
        let sink_core = Sink::new(&lns.topo.core, CORE0)?;
        let sink_lac = Sink::new(&lns.topo.lac, LAC0)?;
        let gen_lac = xsk_on(&lns.topo.lac, LAC0)?;
        let gen_core = xsk_on(&lns.topo.core, CORE0)?;
        Ok((
            Lab {
                sink_core,
                sink_lac,
                gen_lac,
                gen_core,
                lns,
            },
            prepared,
        ))
    }

    fn start(&mut self, case: Case, opts: &Options) -> Result<Running, Error> {
        if case.raw() {
            self.lns.select(Programs::ToXsk)?;
            self.lns.start_raw(case.up(), opts.worker_cpu, opts.batch)
        } else {
            self.lns.select(Programs::Fast)?;
            self.lns.start_afxdp(opts.worker_cpu, opts.batch)
        }
    }

    fn sink(&self, case: Case) -> Result<(u64, u64), Error> {
        if case.up() {
            self.sink_core.read()
        } else {
            self.sink_lac.read()
        }
    }

    /// Sends `frames` round robin from `case`'s generator socket until `budget` is spent,
    /// at most [`WINDOW`] frames ahead of the sink. Returns (sent, lost, wall time).
    fn generate(
        &mut self,
        case: Case,
        frames: &[Vec<u8>],
        budget: Budget,
    ) -> Result<(u64, u64, Duration), Error> {
        let sink0 = self.sink(case)?.0;
        let start = Instant::now();
        let (mut sent, mut lost, mut counted) = (0u64, 0u64, 0u64);
        let mut last_move = Instant::now();
        let mut i = 0usize;
        loop {
            if interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let done = match budget {
                Budget::Packets(p) => sent >= p,
                Budget::Time(d) => start.elapsed() >= d,
            };
            if done {
                break;
            }
            if sent - counted - lost >= WINDOW || sent % CHECK_EVERY == 0 {
                let now = self.sink(case)?.0 - sink0;
                if now != counted {
                    counted = now;
                    last_move = Instant::now();
                }
                if sent - counted - lost >= WINDOW {
                    if last_move.elapsed() > STALL {
                        lost = sent - counted;
                        last_move = Instant::now();
                    }
                    self.gen_socket(case).flush();
                    std::thread::yield_now();
                    continue;
                }
            }
            let f = &frames[i % frames.len()];
            let s = self.gen_socket(case);
            let Some((addr, buf)) = s.tx_frame() else {
                s.flush();
                continue;
            };
            i += 1;
            buf[..f.len()].copy_from_slice(f);
            s.tx_push(addr, f.len() as u32);
            sent += 1;
            if sent % 16 == 0 {
                s.flush();
            }
        }
        self.gen_socket(case).flush();
        let wall = start.elapsed();
        // The window in flight lands (bounded).
        let end = Instant::now() + STALL;
        while self.sink(case)?.0 - sink0 < sent && Instant::now() < end {
            self.gen_socket(case).flush();
            std::thread::yield_now();
        }
        let counted = self.sink(case)?.0 - sink0;
        Ok((sent, sent.saturating_sub(counted), wall))
    }

    fn gen_socket(&mut self, case: Case) -> &mut XskSocket {
        if case.up() {
            &mut self.gen_lac
        } else {
            &mut self.gen_core
        }
    }

    fn run_case(
        &mut self,
        case: Case,
        frames: &[Vec<u8>],
        opts: &Options,
        budget: Budget,
        round: usize,
    ) -> Result<Sample, Error> {
        let running = self.start(case, opts)?;
        let rx0 = self.sink(case)?;
        let r = self.generate(case, frames, budget);
        let rx1 = self.sink(case)?;
        let (worker_rx, worker_sent, worker_dropped) = running.counts();
        self.lns.stop(running);
        let (generated, lost, wall) = r?;
        let seconds = wall.as_secs_f64();
        let received = rx1.0 - rx0.0;
        Ok(Sample {
            round,
            generated,
            lost,
            received,
            received_bytes: rx1.1 - rx0.1,
            worker_rx,
            worker_sent,
            worker_dropped,
            seconds,
            mpps: if seconds > 0.0 {
                received as f64 / seconds / 1e6
            } else {
                0.0
            },
            mpps_ratio: None,
        })
    }
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
    if opts.sessions > 60_000 {
        return Err(Error::Options(format!(
            "{} sessions: at most 60,000",
            opts.sessions
        )));
    }
    let machine = Machine::probe();
    for (what, cpu) in [
        ("--gen-cpu", opts.gen_cpu),
        ("--worker-cpu", opts.worker_cpu),
    ] {
        if cpu >= machine.cores {
            return Err(Error::Options(format!(
                "{what} {cpu} but {} CPUs online",
                machine.cores
            )));
        }
    }
    let date = utc_now();
    pin_thread(opts.gen_cpu).map_err(io(format!("pinning to CPU {}", opts.gen_cpu)))?;
    let (mut lab, first) = Lab::new(opts)?;
    let budget = match opts.packets {
        Some(p) => Budget::Packets(p),
        None => Budget::Time(opts.duration),
    };
    let warm = match budget {
        Budget::Packets(p) => Budget::Packets(p.min(65_536)),
        Budget::Time(d) => Budget::Time(d / 10),
    };
    for (case, frames) in &first {
        lab.run_case(*case, frames, opts, warm, usize::MAX)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); first.len()];
    for round in 0..opts.rounds {
        for (k, (case, frames)) in first.iter().enumerate() {
            samples[k].push(lab.run_case(*case, frames, opts, budget, round)?);
        }
    }
    let baseline_mpps: Vec<Vec<Option<f64>>> = first
        .iter()
        .map(|(case, _)| {
            let b = first.iter().position(|(c, _)| *c == case.baseline());
            (0..opts.rounds)
                .map(|r| b.map(|b| samples[b][r].mpps).filter(|m| *m > 0.0))
                .collect()
        })
        .collect();
    for (ss, bs) in samples.iter_mut().zip(baseline_mpps) {
        for (s, b) in ss.iter_mut().zip(bs) {
            s.mpps_ratio = b.map(|m| s.mpps / m);
        }
    }
    let cases = first
        .iter()
        .enumerate()
        .map(|(k, (case, frames))| {
            let ss = &samples[k];
            let received: u64 = ss.iter().map(|s| s.received).sum();
            let bytes: u64 = ss.iter().map(|s| s.received_bytes).sum();
            CaseReport {
                name: case.name(),
                direction: if case.up() { "up" } else { "down" },
                baseline: case.baseline().name(),
                frame_in_bytes: frames.first().map_or(0, Vec::len),
                frame_out_bytes: if received > 0 {
                    bytes as f64 / received as f64
                } else {
                    0.0
                },
                mpps: Summary::of(&ss.iter().map(|s| s.mpps).collect::<Vec<_>>()),
                ratio: Summary::of(&ss.iter().filter_map(|s| s.mpps_ratio).collect::<Vec<_>>()),
                generated: ss.iter().map(|s| s.generated).sum(),
                lost: ss.iter().map(|s| s.lost).sum(),
                received,
                worker_sent: ss.iter().map(|s| s.worker_sent).sum(),
                worker_dropped: ss.iter().map(|s| s.worker_dropped).sum(),
                samples: ss.clone(),
            }
        })
        .collect();
    let report = Report {
        scenario: "afxdp",
        mode: "afxdp",
        date,
        command: opts.command.clone(),
        machine,
        topology: "lac ns: lac0 --veth-- lns ns: la, lc (AF_XDP sockets on queue 0 of both; programs: xdp_l2tp_access/xdp_l2tp_core in AF_XDP mode, or xdp_to_xsk for the raw forwarder) --veth-- core ns: core0; generator = AF_XDP socket on lac0 (up) or core0 (down), at most `window` frames ahead of the sink; sinks = xdp_count on core0 (up) and lac0 (down)".into(),
        generator_cpu: opts.gen_cpu,
        worker_cpu: opts.worker_cpu,
        batch: opts.batch,
        zero_copy: lab.lns.workers.zero_copy,
        sessions: opts.sessions,
        rounds: opts.rounds,
        window: WINDOW,
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
        "l2xdp-bench afxdp ({}): {} rounds x {} per case, interleaved; {} sessions; generator on CPU {}, worker on CPU {}, batch {}, zero-copy {}\n",
        r.date, r.rounds, budget, r.sessions, r.generator_cpu, r.worker_cpu, r.batch, r.zero_copy
    );
    out += &format!(
        "kernel {}, {} ({} cores)\n",
        r.machine.kernel, r.machine.cpu_model, r.machine.cores
    );
    out += &format!("medians [min–max] over rounds; Mpps at the sink / wall time; ratio = Mpps / same-round raw AF_XDP forwarder Mpps, same veth pair; generator at most {} frames ahead of the sink\n", r.window);
    out += &format!(
        "{:<16} {:>5} {:>7} {:>20} {:>20} {:>12} {:>12} {:>12}\n",
        "case", "dir", "bytes", "Mpps at sink", "ratio to raw", "generated", "received", "lost"
    );
    for c in &r.cases {
        out += &format!(
            "{:<16} {:>5} {:>7} {:>20} {:>20} {:>12} {:>12} {:>12}\n",
            c.name,
            c.direction,
            format!("{}→{:.0}", c.frame_in_bytes, c.frame_out_bytes),
            fmt_summary(&c.mpps, 3),
            fmt_summary(&c.ratio, 3),
            c.generated,
            c.received,
            c.lost,
        );
    }
    out
}
