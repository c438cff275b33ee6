//! `l2xdp-bench afxdp`: 64-byte forwarding per core in AF_XDP mode, as a ratio to a raw AF_XDP
//! forwarder (rx then tx, no L2TP work: [`RawForwarder`]) on the same veth pair in the same
//! run, cases alternating round by round (raw-up, afxdp-decap-v2, raw-down, afxdp-encap-v2,
//! raw-up, ...).
//!
//! Topology: the forward scenario's (`lac` — `lns` — `core`, the [`forward`] module's
//! generator, frames, sessions and sinks):
//!
//! ```text
//!   lac0 (xdp_count) ── la [xdp_l2tp_access | xdp_to_xsk]   lc [xdp_l2tp_core | xdp_to_xsk] ── core0 (xdp_count)
//!   gen: xdp_gen XDP_TX        ╲ AF_XDP socket, queue 0   AF_XDP socket, queue 0 ╱       gen: xdp_gen XDP_TX
//!                               ╲──── one worker thread pinned to --worker-cpu ───╱
//! ```
//!
//! The generator (live-frame test runs of `xdp_gen`, pinned to `--gen-cpu`, which also runs
//! the receiving veth's NAPI and the XDP program that hands frames to the socket) offers as
//! fast as it can; the worker — AF_XDP mode's ([`AfXdp`]: decap/encap with `wire::datapath`) or
//! the raw forwarder — takes them from the socket's ring and sends them on the other veth
//! (copy mode), whose peer counts them (`xdp_count`). Delivery is counted at that sink only;
//! Mpps = sink count / wall time of the generation pass. What the worker cannot take is dropped
//! by the kernel at its receive ring: the figure is the worker's capacity on its core. A
//! socket per (interface, queue) is exclusive, so each case starts its own worker and stops it
//! after its pass.
//!
//! `--paced` (smoke runs) generates in chunks of [`PACE_CHUNK`] and waits for the sink to
//! count each chunk before the next: nothing overflows, every frame must arrive.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aya::maps::{Array, MapData, XskMap};
use aya::programs::xdp::XdpLink;
use aya::Ebpf;
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig, RawForwarder};
use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::lab::is_root;
use l2xdp_dataplane::lab::topology::{Pins, Topology, LA, LC};
use l2xdp_dataplane::test_run;
use l2xdp_dataplane::xsk::XskConfig;
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::xsk_stat;
use l2xdp_ebpf::{bench, prog};
use serde::Serialize;

use crate::forward::{
    self, attach, bpf, fmt_summary, frames, io, load_bench, session, take, write_json, xdp, Error,
    Sink,
};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::summary::Summary;

/// Frames per generator call in a timed pass.
const CHUNK: u32 = 1 << 18;
/// Frames per generator call in a paced pass.
pub const PACE_CHUNK: u32 = 256;
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
    /// Wait for the sink after every [`PACE_CHUNK`] frames (smoke runs: nothing may be lost).
    pub paced: bool,
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
    /// Frames the generator offered.
    pub generated: u64,
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
    /// Whether passes were paced.
    pub paced: bool,
    /// Per case and round (None: fixed packet count).
    pub duration_ms: Option<u64>,
    /// Per case and round (None: duration).
    pub packets: Option<u64>,
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// A running worker of either kind.
enum Running {
    Raw(RawForwarder),
    Fast(AfXdp),
}

impl Running {
    /// (rx, sent, dropped).
    fn counts(&self) -> (u64, u64, u64) {
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

/// The lab. Field order is drop order: links and objects, pins, namespaces.
struct Lab {
    links: Vec<XdpLink>,
    links_raw: bool,
    sink_core: Sink,
    sink_lac: Sink,
    tools: Ebpf,
    xsks: Option<XskMap<MapData>>,
    fast: Ebpf,
    gen_cfg: Array<MapData, bench::GenConfig>,
    lac0: u32,
    core0: u32,
    zero_copy: bool,
    pins: Pins,
    topo: Topology,
}

/// A case's first frame and its first template slot.
type Prepared = (Case, Vec<u8>, u32);

impl Lab {
    fn new(opts: &Options) -> Result<(Lab, Vec<Prepared>), Error> {
        let topo = Topology::new("afx");
        let pins = Pins::under_sys_fs_bpf("bench-afxdp");
        let fast = {
            let _g = topo.lns.enter();
            loader::load(Some(pins.path()))?
        };
        let mut dp = XdpDataPlane::open(pins.path())?;
        dp.set_config(&FastPathConfig {
            afxdp: true,
            ..FastPathConfig::default()
        })?;
        for i in 0..opts.sessions {
            dp.install(&session(i).1)?;
        }
        let mut tools = load_bench(&[prog::GEN, prog::TO_XSK])?;
        let xsks: XskMap<MapData> = take(&mut tools, bench::XSKS)?;
        let mut templates: Array<MapData, bench::Template> = take(&mut tools, bench::TEMPLATES)?;
        let gen_cfg = take(&mut tools, bench::GEN_CFG)?;
        let mut first = Vec::new();
        for (k, case) in opts.cases.iter().enumerate() {
            let base = k as u32 * opts.sessions;
            let fs = frames(case.frames_of(), opts.sessions)?;
            for (i, f) in fs.iter().enumerate() {
                if f.len() > bench::FRAME_MAX || f.len() != fs[0].len() {
                    return Err(Error::Frame(format!("{}: frame {i}", case.name())));
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
        let sink_core = Sink::new(&topo.core, "core0")?;
        let sink_lac = Sink::new(&topo.lac, "lac0")?;
        let lac0 = {
            let _g = topo.lac.enter();
            loader::ifindex("lac0")?
        };
        let core0 = {
            let _g = topo.core.enter();
            loader::ifindex("core0")?
        };
        Ok((
            Lab {
                links: vec![],
                links_raw: false,
                sink_core,
                sink_lac,
                tools,
                xsks: Some(xsks),
                fast,
                gen_cfg,
                lac0,
                core0,
                zero_copy: false,
                pins,
                topo,
            },
            first,
        ))
    }

    /// The programs of `case` on la and lc: `xdp_to_xsk` on both for the raw forwarder, the
    /// fast path's access and core programs otherwise.
    fn select(&mut self, case: Case) -> Result<(), Error> {
        if !self.links.is_empty() && self.links_raw == case.raw() {
            return Ok(());
        }
        self.links.clear();
        let lns = self.topo.lns.clone();
        if case.raw() {
            for iface in [LA, LC] {
                self.links
                    .push(attach(&mut self.tools, prog::TO_XSK, &lns, iface)?);
            }
        } else {
            self.links
                .push(attach(&mut self.fast, prog::ACCESS, &lns, LA)?);
            self.links
                .push(attach(&mut self.fast, prog::CORE, &lns, LC)?);
        }
        self.links_raw = case.raw();
        Ok(())
    }

    fn start(&mut self, case: Case, opts: &Options) -> Result<Running, Error> {
        let _g = self.topo.lns.enter();
        let xsk = XskConfig::default();
        let sys = |e: l2xdp_dataplane::afxdp::AfXdpError| Error::Options(e.to_string());
        if case.raw() {
            let (from, to) = if case.up() { (LA, LC) } else { (LC, LA) };
            let map = self
                .xsks
                .take()
                .ok_or_else(|| Error::Options("XSKMAP in use".into()))?;
            let r = RawForwarder::start(from, to, map, Some(opts.worker_cpu), opts.batch, &xsk)
                .map_err(sys)?;
            Ok(Running::Raw(r))
        } else {
            let a = AfXdp::start(
                self.pins.path(),
                &AfXdpConfig {
                    interfaces: vec![LA.into(), LC.into()],
                    cores: vec![opts.worker_cpu],
                    batch: opts.batch,
                    xsk,
                },
            )
            .map_err(sys)?;
            self.zero_copy = a.zero_copy.iter().all(|z| *z);
            a.settle(self.pins.path(), LIMIT).map_err(sys)?;
            Ok(Running::Fast(a))
        }
    }

    fn stop(&mut self, r: Running) {
        match r {
            Running::Raw(r) => self.xsks = r.stop(),
            Running::Fast(a) => drop(a),
        }
    }

    fn sink(&self, case: Case) -> Result<(u64, u64), Error> {
        if case.up() {
            self.sink_core.read()
        } else {
            self.sink_lac.read()
        }
    }

    /// Offers frames from `case`'s generator namespace; returns (frames, wall time).
    fn generate(
        &mut self,
        case: Case,
        frame: &[u8],
        budget: Budget,
        paced: bool,
    ) -> Result<(u64, Duration), Error> {
        let gen_fd = {
            let x = xdp(&mut self.tools, prog::GEN)?;
            x.fd()
                .map_err(|x| bpf(prog::GEN)(x.to_string()))?
                .try_clone()
                .map_err(|x| bpf(prog::GEN)(x.to_string()))?
        };
        let (ns, ifindex) = if case.up() {
            (self.topo.lac.clone(), self.lac0)
        } else {
            (self.topo.core.clone(), self.core0)
        };
        let sink0 = self.sink(case)?.0;
        let guard = ns.enter();
        let start = Instant::now();
        let mut generated = 0u64;
        loop {
            if interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let chunk = if paced { PACE_CHUNK } else { CHUNK };
            let repeat = match budget {
                Budget::Packets(p) => {
                    let left = p - generated;
                    if left == 0 {
                        break;
                    }
                    left.min(u64::from(chunk)) as u32
                }
                Budget::Time(d) => {
                    if start.elapsed() >= d {
                        break;
                    }
                    chunk
                }
            };
            match test_run::run_live(gen_fd.as_fd().as_raw_fd(), frame, ifindex, repeat) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
                Err(e) => return Err(io("live-frame test run")(e)),
            }
            generated += u64::from(repeat);
            if paced {
                let end = Instant::now() + LIMIT;
                while self.sink(case)?.0 - sink0 < generated && Instant::now() < end {
                    std::thread::yield_now();
                }
            }
        }
        let wall = start.elapsed();
        drop(guard);
        Ok((generated, wall))
    }

    fn run_case(
        &mut self,
        case: Case,
        frame: &[u8],
        base: u32,
        opts: &Options,
        budget: Budget,
        round: usize,
    ) -> Result<Sample, Error> {
        self.select(case)?;
        self.gen_cfg
            .set(
                0,
                bench::GenConfig {
                    base,
                    n: opts.sessions,
                },
                0,
            )
            .map_err(|x| bpf(bench::GEN_CFG)(x.to_string()))?;
        let running = self.start(case, opts)?;
        let rx0 = self.sink(case)?;
        let r = self.generate(case, frame, budget, opts.paced);
        // What the worker still holds drains.
        std::thread::sleep(Duration::from_millis(50));
        let rx1 = self.sink(case)?;
        let (worker_rx, worker_sent, worker_dropped) = running.counts();
        self.stop(running);
        let (generated, wall) = r?;
        let seconds = wall.as_secs_f64();
        let received = rx1.0 - rx0.0;
        Ok(Sample {
            round,
            generated,
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
    if opts.sessions as usize * opts.cases.len() > bench::TEMPLATE_SLOTS as usize
        || opts.sessions > 60_000
    {
        return Err(Error::Options(format!(
            "{} sessions x {} cases exceed the generator's template slots",
            opts.sessions,
            opts.cases.len()
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
    for (case, frame, base) in &first {
        lab.run_case(*case, frame, *base, opts, warm, usize::MAX)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); first.len()];
    for round in 0..opts.rounds {
        for (k, (case, frame, base)) in first.iter().enumerate() {
            samples[k].push(lab.run_case(*case, frame, *base, opts, budget, round)?);
        }
    }
    let baseline_mpps: Vec<Vec<Option<f64>>> = first
        .iter()
        .map(|(case, _, _)| {
            let b = first.iter().position(|(c, _, _)| *c == case.baseline());
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
        .map(|(k, (case, frame, _))| {
            let ss = &samples[k];
            let received: u64 = ss.iter().map(|s| s.received).sum();
            let bytes: u64 = ss.iter().map(|s| s.received_bytes).sum();
            CaseReport {
                name: case.name(),
                direction: if case.up() { "up" } else { "down" },
                baseline: case.baseline().name(),
                frame_in_bytes: frame.len(),
                frame_out_bytes: if received > 0 {
                    bytes as f64 / received as f64
                } else {
                    0.0
                },
                mpps: Summary::of(&ss.iter().map(|s| s.mpps).collect::<Vec<_>>()),
                ratio: Summary::of(&ss.iter().filter_map(|s| s.mpps_ratio).collect::<Vec<_>>()),
                generated: ss.iter().map(|s| s.generated).sum(),
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
        topology: "lac ns: lac0 --veth-- lns ns: la, lc (AF_XDP sockets on queue 0 of both; programs: xdp_l2tp_access/xdp_l2tp_core in AF_XDP mode, or xdp_to_xsk for the raw forwarder) --veth-- core ns: core0; generator = xdp_gen live-frame test run (XDP_TX) on lac0 (up) or core0 (down); sinks = xdp_count on core0 (up) and lac0 (down)".into(),
        generator_cpu: opts.gen_cpu,
        worker_cpu: opts.worker_cpu,
        batch: opts.batch,
        zero_copy: lab.zero_copy,
        sessions: opts.sessions,
        rounds: opts.rounds,
        paced: opts.paced,
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
    out += "medians [min–max] over rounds; Mpps at the sink / wall time; ratio = Mpps / same-round raw AF_XDP forwarder Mpps, same veth pair\n";
    out += &format!(
        "{:<16} {:>5} {:>7} {:>20} {:>20} {:>12} {:>12} {:>12}\n",
        "case",
        "dir",
        "bytes",
        "Mpps at sink",
        "ratio to raw",
        "generated",
        "received",
        "worker drop"
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
            c.worker_dropped,
        );
    }
    out
}
