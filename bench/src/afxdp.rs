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

use std::path::PathBuf;
use std::time::{Duration, Instant};

use l2xdp_dataplane::xsk::XskSocket;
use l2xdp_lab::is_root;
use l2xdp_lab::topology::{CORE0, LAC0};
use serde::Serialize;

use crate::bpf::Sink;
use crate::cases::{self, frames};
use crate::common::{fmt_summary, io, write_json, Error, Header};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::summary::Summary;
use crate::xsk_lab::{xsk_on, LnsLab, Programs, Running};

/// Frames in flight (sent, not yet counted at the sink): below the worker's receive ring.
pub const WINDOW: u64 = 512;
/// The generator reads the sink count every this many frames.
const CHECK_EVERY: u64 = 64;
/// A window that does not move for this long is lost (counted, the pass goes on).
const STALL: Duration = Duration::from_millis(200);

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
    /// As [`RawUp`](Self::RawUp) on xsk-rs sockets (`crate::xskrs`), baseline raw-up.
    RawXskrsUp,
    /// As [`RawDown`](Self::RawDown) on xsk-rs sockets, baseline raw-down.
    RawXskrsDown,
}

impl Case {
    /// Every case, in the default interleaving order.
    pub const ALL: [Case; 4] = [
        Case::RawUp,
        Case::AfxdpDecapV2,
        Case::RawDown,
        Case::AfxdpEncapV2,
    ];

    /// The xsk-rs comparison cases (built with `--features xskrs`), beside [`ALL`](Self::ALL).
    pub const XSKRS: [Case; 2] = [Case::RawXskrsUp, Case::RawXskrsDown];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Case::RawUp => "raw-up",
            Case::AfxdpDecapV2 => "afxdp-decap-v2",
            Case::RawDown => "raw-down",
            Case::AfxdpEncapV2 => "afxdp-encap-v2",
            Case::RawXskrsUp => "raw-xskrs-up",
            Case::RawXskrsDown => "raw-xskrs-down",
        }
    }

    /// The case named `s`.
    pub fn parse(s: &str) -> Option<Case> {
        Case::ALL
            .into_iter()
            .chain(Case::XSKRS)
            .find(|c| c.name() == s)
    }

    /// Its raw-forwarder baseline (the raw cases are their own).
    pub fn baseline(self) -> Case {
        match self {
            Case::RawUp | Case::AfxdpDecapV2 | Case::RawXskrsUp => Case::RawUp,
            Case::RawDown | Case::AfxdpEncapV2 | Case::RawXskrsDown => Case::RawDown,
        }
    }

    /// lac → core.
    pub fn up(self) -> bool {
        matches!(self, Case::RawUp | Case::AfxdpDecapV2 | Case::RawXskrsUp)
    }

    /// A raw forwarder (`xdp_to_xsk` on la and lc), hand-written or xsk-rs.
    fn raw(self) -> bool {
        matches!(
            self,
            Case::RawUp | Case::RawDown | Case::RawXskrsUp | Case::RawXskrsDown
        )
    }

    /// The raw forwarder on xsk-rs.
    fn xskrs(self) -> bool {
        matches!(self, Case::RawXskrsUp | Case::RawXskrsDown)
    }

    /// The forward scenario's case with the same frames.
    fn frames_of(self) -> cases::Case {
        match self {
            Case::RawUp | Case::RawXskrsUp => cases::Case::BaselineUp,
            Case::AfxdpDecapV2 => cases::Case::DecapV2,
            Case::RawDown | Case::RawXskrsDown => cases::Case::BaselineDown,
            Case::AfxdpEncapV2 => cases::Case::EncapV2,
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
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header,
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
        if case.xskrs() {
            self.lns.select(Programs::ToXsk)?;
            self.lns
                .start_raw_xskrs(case.up(), opts.worker_cpu, opts.batch)
        } else if case.raw() {
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
        header: Header {
            scenario: "afxdp",
            mode: "afxdp",
            date,
            command: opts.command.clone(),
            machine,
        },
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
        r.header.date, r.rounds, budget, r.sessions, r.generator_cpu, r.worker_cpu, r.batch, r.zero_copy
    );
    out += &format!(
        "kernel {}, {} ({} cores)\n",
        r.header.machine.kernel, r.header.machine.cpu_model, r.header.machine.cores
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
