//! `l2xdp-bench latency`: one-way latency through the LNS at fixed offered loads —
//! hdrhistogram p50 / p99 / p99.9 / max per case and rate — for both fast-path modes beside
//! their plain baselines on the same veths, cases alternating (xdp-redirect, xdp, raw-afxdp,
//! afxdp, xdp-redirect, ...) within each rate and round.
//!
//! Topology (the afxdp scenario's lab, [`LnsLab`]; upstream only):
//!
//! ```text
//!   lac ns                  lns ns                                   core ns
//!   lac0 ────────────────── la [program]        lc [program] ──────── core0 [xdp_to_xsk]
//!   generator: AF_XDP        xdp-redirect: xdp_redirect_plain          receiver: AF_XDP
//!   socket, queue 0          xdp:   xdp_l2tp_access (XDP mode)          socket, queue 0
//!                            raw-afxdp: xdp_to_xsk → raw forwarder
//!                            afxdp: xdp_l2tp_access (AF_XDP mode) → worker
//!                            (raw forwarder / worker: one thread on --worker-cpu)
//! ```
//!
//! One thread pinned to `--gen-cpu` is both the generator and the receiver: a busy loop that
//! sends a batch of `--batch` frames whenever the next CLOCK_MONOTONIC deadline
//! (start + frames sent / rate) has passed, and otherwise drains the receiver's ring. Every
//! frame carries, in the last 22 bytes (the inner UDP payload, which the LNS does not touch),
//! the send time (CLOCK_MONOTONIC ns, read once per batch just before the batch is written),
//! a sequence number and a word that keeps the ones-complement sum of the payload — and so
//! the inner and outer UDP checksums — unchanged ([`stamp`]). The receiver reads the time on
//! arrival (once per drained batch) and records now − sent in an hdrhistogram (ns, 3
//! significant digits). Generator and receiver share one host and one clock, so the one-way
//! latency is valid. It includes the generator's copy-mode transmit (AF_XDP on veth), the
//! LNS's work and, in the AF_XDP cases, the worker's wake-up when it was idle. The frames are
//! the forward scenario's: L2TPv2 data frames of live sessions (102 bytes, inner 64-byte
//! frame), one per session, round robin over all sessions, for xdp and afxdp; the 64-byte
//! inner frames themselves for the baselines. Delivery is counted at the receiver.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aya::maps::{MapData, XskMap};
use aya::programs::xdp::XdpLink;
use aya::Ebpf;
use hdrhistogram::Histogram;
use l2xdp_dataplane::xsk::XskSocket;
use l2xdp_lab::is_root;
use l2xdp_lab::topology::{CORE0, LAC0};
use l2xdp_wire::net::checksum;
use plotters::prelude::*;
use serde::Serialize;

use crate::bpf::{attach, load_bench, take};
use crate::bpf::{bench, prog};
use crate::cases::{self, frames};
use crate::common::{self, io, napi_threaded, write_json, Error, Header};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::summary::Summary;
use crate::xsk_lab::{xsk_on, LnsLab, Programs, Running};

/// Bytes at the end of every frame the stamp occupies: the 22-byte payload of the inner UDP
/// datagram (send time 8, sequence 8, checksum compensation 2, 4 bytes left as they were).
pub const STAMP_LEN: usize = 22;
/// The 4 payload bytes after the stamp: as the frames are built (forward's payload).
const STAMP_TAIL: [u8; 4] = [7; 4];
/// After the last frame: how long the receiver waits without progress for the rest.
const DRAIN: Duration = Duration::from_millis(200);
/// Largest recordable latency, ns (10 s).
const HIST_MAX_NS: u64 = 10_000_000_000;
/// Receive descriptors drained per look at the ring.
const RX_BATCH: u32 = 64;

/// The cases, in their default interleaving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// `xdp_redirect_plain` la → lc, 64-byte frames: XDP mode's baseline.
    XdpRedirect,
    /// The fast path in XDP mode: L2TPv2 decap la → lc.
    Xdp,
    /// The raw AF_XDP forwarder la → lc, 64-byte frames: AF_XDP mode's baseline.
    RawAfxdp,
    /// The fast path in AF_XDP mode: L2TPv2 decap la → lc by the worker.
    Afxdp,
}

impl Case {
    /// Every case, in the default interleaving order.
    pub const ALL: [Case; 4] = [Case::XdpRedirect, Case::Xdp, Case::RawAfxdp, Case::Afxdp];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Case::XdpRedirect => "xdp-redirect",
            Case::Xdp => "xdp",
            Case::RawAfxdp => "raw-afxdp",
            Case::Afxdp => "afxdp",
        }
    }

    /// The case named `s`.
    pub fn parse(s: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Its baseline on the same veths (the baselines are their own).
    pub fn baseline(self) -> Case {
        match self {
            Case::XdpRedirect | Case::Xdp => Case::XdpRedirect,
            Case::RawAfxdp | Case::Afxdp => Case::RawAfxdp,
        }
    }

    /// The forward scenario's frames it sends.
    fn frames_of(self) -> cases::Case {
        match self {
            Case::XdpRedirect | Case::RawAfxdp => cases::Case::BaselineUp,
            Case::Xdp | Case::Afxdp => cases::Case::DecapV2,
        }
    }

    fn programs(self) -> Programs {
        match self {
            Case::XdpRedirect => Programs::Redirect,
            Case::Xdp | Case::Afxdp => Programs::Fast,
            Case::RawAfxdp => Programs::ToXsk,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Offered loads, frames per second.
    pub rates: Vec<u64>,
    /// Interleaved rounds.
    pub rounds: usize,
    /// Generation time per case, rate and round (ignored with `packets`).
    pub duration: Duration,
    /// Exactly this many frames per case, rate and round instead of a duration.
    pub packets: Option<u64>,
    /// Sessions installed; frames spread over them round robin.
    pub sessions: u32,
    /// The generator's and receiver's core (one thread).
    pub gen_cpu: usize,
    /// The AF_XDP worker's / raw forwarder's core.
    pub worker_cpu: usize,
    /// Frames sent per deadline.
    pub batch: u32,
    /// Frames a worker takes per socket and pass.
    pub worker_batch: u32,
    /// The cases, in interleaving order.
    pub cases: Vec<Case>,
    /// Where the JSON report goes.
    pub json: PathBuf,
    /// Where the SVG plot goes (None: no plot).
    pub svg: Option<PathBuf>,
    /// The command line, recorded in the report.
    pub command: String,
}

/// Latency percentiles of a histogram, ns.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Latencies recorded.
    pub count: u64,
    /// Smallest.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }
}

/// One case at one rate in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Round number (0-based).
    pub round: usize,
    /// Frames the generator sent.
    pub sent: u64,
    /// Stamped frames the receiver got (each one latency recorded).
    pub received: u64,
    /// sent − received (0 if more arrived).
    pub lost: u64,
    /// Frames at the receiver without our stamp.
    pub foreign: u64,
    /// Frames the worker dropped (AF_XDP cases).
    pub worker_dropped: u64,
    /// Generation time, seconds.
    pub seconds: f64,
    /// sent / seconds.
    pub sent_pps: f64,
    /// How late the generator was on a deadline at worst, ns.
    pub max_late_ns: u64,
    /// This pass's latencies.
    pub latency: Percentiles,
}

/// One case at one rate over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case name.
    pub name: &'static str,
    /// Its baseline.
    pub baseline: &'static str,
    /// Frame length the generator sends.
    pub frame_bytes: usize,
    /// Totals over rounds.
    pub sent: u64,
    /// Totals over rounds.
    pub received: u64,
    /// Totals over rounds.
    pub lost: u64,
    /// Totals over rounds.
    pub foreign: u64,
    /// Totals over rounds.
    pub worker_dropped: u64,
    /// Achieved send rate per round.
    pub sent_pps: Option<Summary>,
    /// All rounds' latencies merged.
    pub latency: Percentiles,
    /// p50 / the baseline's p50 (merged histograms, same rate).
    pub p50_ratio: Option<f64>,
    /// p99 / the baseline's p99.
    pub p99_ratio: Option<f64>,
    /// p99.9 / the baseline's p99.9.
    pub p999_ratio: Option<f64>,
    /// Per-round p50 / same-round baseline p50.
    pub p50_ratio_rounds: Option<Summary>,
    /// Every round.
    pub samples: Vec<Sample>,
}

/// One offered load.
#[derive(Debug, Clone, Serialize)]
pub struct RatePoint {
    /// Offered load, frames per second.
    pub rate_pps: u64,
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header,
    /// The topology, in words.
    pub topology: String,
    /// "CLOCK_MONOTONIC".
    pub clock: &'static str,
    /// The generator's and receiver's core.
    pub generator_cpu: usize,
    /// Same thread as the generator.
    pub receiver_cpu: usize,
    /// The worker's core (AF_XDP cases).
    pub worker_cpu: usize,
    /// How the veths' NAPI runs (`/sys/class/net/<dev>/threaded` of la and core0).
    pub napi: String,
    /// Frames per deadline.
    pub batch: u32,
    /// Frames per worker socket pass.
    pub worker_batch: u32,
    /// Sessions installed and spread over.
    pub sessions: u32,
    /// Rounds.
    pub rounds: usize,
    /// Per case, rate and round (None: fixed packet count).
    pub duration_ms: Option<u64>,
    /// Per case, rate and round (None: duration).
    pub packets: Option<u64>,
    /// Per offered load.
    pub points: Vec<RatePoint>,
}

/// CLOCK_MONOTONIC, ns.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Writes the send time and sequence number into the last [`STAMP_LEN`] bytes of `frame` (the
/// inner UDP payload) and a compensation word so that the ones-complement sum of those bytes
/// — and so every UDP checksum covering them, inner and outer (RFC 1624: a checksum depends
/// on the covered data only through that sum) — is what it was. The region starts at an even
/// offset of the inner datagram; at an odd offset of the outer one the sum is byte-swapped,
/// and an unchanged sum stays unchanged swapped. False if the frame is too short.
pub fn stamp(frame: &mut [u8], sent_ns: u64, seq: u64) -> bool {
    let Some(at) = frame.len().checked_sub(STAMP_LEN) else {
        return false;
    };
    let p = &mut frame[at..];
    let before = checksum::data(&p[..18]);
    p[..8].copy_from_slice(&sent_ns.to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    let now = checksum::data(&p[..16]);
    // before ≡ now + comp (mod 2^16 − 1): comp = before − now = before + !now.
    let comp = checksum::combine(&[before, !now]);
    p[16..18].copy_from_slice(&comp.to_be_bytes());
    true
}

/// (send time, sequence number) of a stamped frame; None if it does not end in a stamp.
pub fn read_stamp(frame: &[u8]) -> Option<(u64, u64)> {
    let at = frame.len().checked_sub(STAMP_LEN)?;
    let p = &frame[at..];
    if p[18..] != STAMP_TAIL {
        return None;
    }
    let ts = u64::from_be_bytes(p[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(p[8..16].try_into().ok()?);
    Some((ts, seq))
}

/// The lab: the LNS side plus the generator on lac0 and the receiver on core0. Field order
/// is drop order: the receiver's link and object, the sockets, then the LNS side.
struct Lab {
    _rx_link: XdpLink,
    _rx_tools: Ebpf,
    rx: XskSocket,
    gen: XskSocket,
    lns: LnsLab,
}

/// What one pass counted.
struct Pass {
    sent: u64,
    received: u64,
    foreign: u64,
    seconds: f64,
    max_late_ns: u64,
}

impl Lab {
    fn new(opts: &Options) -> Result<Lab, Error> {
        let lns = LnsLab::new("lat", "bench-latency", opts.sessions)?;
        let gen = xsk_on(&lns.topo.lac, LAC0)?;
        let rx = xsk_on(&lns.topo.core, CORE0)?;
        let mut rx_tools = load_bench(&[prog::TO_XSK])?;
        let mut xsks: XskMap<MapData> = take(&mut rx_tools, bench::XSKS)?;
        xsks.set(0, rx.fd(), 0)
            .map_err(|x| common::bpf("receiver XSKMAP")(x.to_string()))?;
        let core = lns.topo.core.clone();
        let link = attach(&mut rx_tools, prog::TO_XSK, &core, CORE0)?;
        Ok(Lab {
            _rx_link: link,
            _rx_tools: rx_tools,
            rx,
            gen,
            lns,
        })
    }

    fn start(&mut self, case: Case, opts: &Options) -> Result<Option<Running>, Error> {
        self.lns.select(case.programs())?;
        self.lns.set_afxdp(case == Case::Afxdp)?;
        match case {
            Case::XdpRedirect | Case::Xdp => Ok(None),
            Case::RawAfxdp => self
                .lns
                .start_raw(true, opts.worker_cpu, opts.worker_batch)
                .map(Some),
            Case::Afxdp => self
                .lns
                .start_afxdp(opts.worker_cpu, opts.worker_batch)
                .map(Some),
        }
    }

    /// Drains the receiver's ring into `hist`: (stamped, foreign).
    fn receive(&mut self, hist: &mut Histogram<u64>) -> (u64, u64) {
        let n = self.rx.rx_ready(RX_BATCH);
        if n == 0 {
            return (0, 0);
        }
        let now = monotonic_ns();
        let (mut got, mut foreign) = (0, 0);
        for i in 0..n {
            let d = self.rx.rx_desc(i);
            match self
                .rx
                .umem_bytes(d.addr, 0, d.len)
                .and_then(read_stamp)
                .filter(|(ts, _)| *ts <= now)
            {
                Some((ts, _)) => {
                    hist.saturating_record(now - ts);
                    got += 1;
                }
                None => foreign += 1,
            }
        }
        self.rx.rx_release(n);
        (got, foreign)
    }

    /// Sends `frames` round robin at `rate` frames/s in batches of `batch` until `budget`
    /// is spent, draining the receiver between deadlines; then waits for the rest.
    fn pass(
        &mut self,
        frames: &mut [Vec<u8>],
        rate: u64,
        batch: u32,
        budget: Budget,
        hist: &mut Histogram<u64>,
    ) -> Result<Pass, Error> {
        // Anything left from before does not count.
        let mut scratch = new_hist()?;
        while self.receive(&mut scratch) != (0, 0) {}
        let start = monotonic_ns();
        let end = match budget {
            Budget::Time(d) => Some(start + d.as_nanos() as u64),
            Budget::Packets(_) => None,
        };
        let (mut sent, mut received, mut foreign, mut max_late) = (0u64, 0u64, 0u64, 0u64);
        let mut i = 0usize;
        let mut spins = 0u32;
        loop {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(4096) && interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let now = monotonic_ns();
            let left = match (budget, end) {
                (Budget::Packets(p), _) => p - sent,
                (_, Some(e)) if now >= e => 0,
                _ => u64::MAX,
            };
            if left == 0 {
                break;
            }
            let due = start + (u128::from(sent) * 1_000_000_000 / u128::from(rate)) as u64;
            if now >= due {
                max_late = max_late.max(now - due);
                let n = left.min(u64::from(batch));
                for _ in 0..n {
                    let f = &mut frames[i % frames.len()];
                    let Some((addr, buf)) = self.gen.tx_frame() else {
                        break;
                    };
                    i += 1;
                    stamp(f, now, sent);
                    buf[..f.len()].copy_from_slice(f);
                    self.gen.tx_push(addr, f.len() as u32);
                    sent += 1;
                }
                self.gen.flush();
            }
            let (g, x) = self.receive(hist);
            received += g;
            foreign += x;
        }
        let seconds = (monotonic_ns() - start) as f64 / 1e9;
        let mut last = std::time::Instant::now();
        while received < sent && last.elapsed() < DRAIN {
            self.gen.flush();
            let (g, x) = self.receive(hist);
            received += g;
            foreign += x;
            if g + x > 0 {
                last = std::time::Instant::now();
            }
        }
        Ok(Pass {
            sent,
            received,
            foreign,
            seconds,
            max_late_ns: max_late,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run_case(
        &mut self,
        case: Case,
        frames: &mut [Vec<u8>],
        rate: u64,
        opts: &Options,
        budget: Budget,
        round: usize,
        hist: &mut Histogram<u64>,
    ) -> Result<Sample, Error> {
        let running = self.start(case, opts)?;
        let mut h = new_hist()?;
        let r = self.pass(frames, rate, opts.batch, budget, &mut h);
        let worker_dropped = running.as_ref().map_or(0, |r| r.counts().2);
        if let Some(r) = running {
            self.lns.stop(r);
        }
        let p = r?;
        hist.add(&h)
            .map_err(|e| Error::Options(format!("histogram: {e:?}")))?;
        Ok(Sample {
            round,
            sent: p.sent,
            received: p.received,
            lost: p.sent.saturating_sub(p.received),
            foreign: p.foreign,
            worker_dropped,
            seconds: p.seconds,
            sent_pps: if p.seconds > 0.0 {
                p.sent as f64 / p.seconds
            } else {
                0.0
            },
            max_late_ns: p.max_late_ns,
            latency: Percentiles::of(&h),
        })
    }
}

fn new_hist() -> Result<Histogram<u64>, Error> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3)
        .map_err(|e| Error::Options(format!("histogram: {e:?}")))
}

#[derive(Debug, Clone, Copy)]
enum Budget {
    Packets(u64),
    Time(Duration),
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (a > 0 && b > 0).then(|| a as f64 / b as f64)
}

/// Runs the scenario; writes the JSON report (and the plot) and returns it.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if !is_root() {
        return Err(Error::NotRoot);
    }
    if opts.cases.is_empty() || opts.rounds == 0 || opts.sessions == 0 || opts.rates.is_empty() {
        return Err(Error::Options(
            "need at least one case, rate, round and session".into(),
        ));
    }
    if opts.rates.contains(&0) || opts.batch == 0 {
        return Err(Error::Options("rates and --batch must be above 0".into()));
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
    let mut lab = Lab::new(opts)?;
    let mut prepared: Vec<(Case, Vec<Vec<u8>>)> = Vec::new();
    for case in &opts.cases {
        prepared.push((*case, frames(case.frames_of(), opts.sessions)?));
    }
    let budget = match opts.packets {
        Some(p) => Budget::Packets(p),
        None => Budget::Time(opts.duration),
    };
    let warm = match budget {
        Budget::Packets(p) => Budget::Packets(p.min(1000)),
        Budget::Time(d) => Budget::Time(d / 10),
    };
    let first_rate = opts.rates[0];
    for (case, frames) in &mut prepared {
        let mut h = new_hist()?;
        lab.run_case(*case, frames, first_rate, opts, warm, usize::MAX, &mut h)?;
    }
    // [rate][case] → samples, merged histogram.
    let mut samples: Vec<Vec<Vec<Sample>>> =
        vec![vec![Vec::new(); prepared.len()]; opts.rates.len()];
    let mut hists: Vec<Vec<Histogram<u64>>> = Vec::new();
    for _ in &opts.rates {
        hists.push(
            (0..prepared.len())
                .map(|_| new_hist())
                .collect::<Result<_, _>>()?,
        );
    }
    for round in 0..opts.rounds {
        for (r, rate) in opts.rates.iter().enumerate() {
            for (k, (case, frames)) in prepared.iter_mut().enumerate() {
                let s =
                    lab.run_case(*case, frames, *rate, opts, budget, round, &mut hists[r][k])?;
                samples[r][k].push(s);
            }
        }
    }
    let points = opts
        .rates
        .iter()
        .enumerate()
        .map(|(r, rate)| {
            let cases = prepared
                .iter()
                .enumerate()
                .map(|(k, (case, frames))| {
                    let ss = &samples[r][k];
                    let lat = Percentiles::of(&hists[r][k]);
                    let b = prepared.iter().position(|(c, _)| *c == case.baseline());
                    let base = b.map(|b| Percentiles::of(&hists[r][b]));
                    let per_round: Vec<f64> = b
                        .map(|b| {
                            ss.iter()
                                .zip(&samples[r][b])
                                .filter_map(|(s, t)| ratio(s.latency.p50_ns, t.latency.p50_ns))
                                .collect()
                        })
                        .unwrap_or_default();
                    CaseReport {
                        name: case.name(),
                        baseline: case.baseline().name(),
                        frame_bytes: frames.first().map_or(0, Vec::len),
                        sent: ss.iter().map(|s| s.sent).sum(),
                        received: ss.iter().map(|s| s.received).sum(),
                        lost: ss.iter().map(|s| s.lost).sum(),
                        foreign: ss.iter().map(|s| s.foreign).sum(),
                        worker_dropped: ss.iter().map(|s| s.worker_dropped).sum(),
                        sent_pps: Summary::of(&ss.iter().map(|s| s.sent_pps).collect::<Vec<_>>()),
                        latency: lat,
                        p50_ratio: base.and_then(|b| ratio(lat.p50_ns, b.p50_ns)),
                        p99_ratio: base.and_then(|b| ratio(lat.p99_ns, b.p99_ns)),
                        p999_ratio: base.and_then(|b| ratio(lat.p999_ns, b.p999_ns)),
                        p50_ratio_rounds: Summary::of(&per_round),
                        samples: ss.clone(),
                    }
                })
                .collect();
            RatePoint {
                rate_pps: *rate,
                cases,
            }
        })
        .collect();
    let napi = format!(
        "la: threaded={}, core0: threaded={} (la's NAPI runs on the generator's CPU; core0's on the CPU that transmits into lc: the generator's in the XDP cases, the worker's in the AF_XDP cases)",
        napi_threaded(&lab.lns.topo.lns, "la"),
        napi_threaded(&lab.lns.topo.core, "core0")
    );
    let report = Report {
        header: Header {
            scenario: "latency",
            mode: "xdp+afxdp",
            date,
            command: opts.command.clone(),
            machine,
        },
        topology: "lac ns: lac0 --veth-- lns ns: la, lc --veth-- core ns: core0; generator = AF_XDP socket on lac0 queue 0 (copy mode), paced by CLOCK_MONOTONIC deadlines; LNS: xdp_redirect_plain (xdp-redirect), xdp_l2tp_access in XDP mode (xdp), xdp_to_xsk + raw AF_XDP forwarder (raw-afxdp) or xdp_l2tp_access in AF_XDP mode + one worker (afxdp), sockets on queue 0 of la and lc; receiver = xdp_to_xsk on core0 → AF_XDP socket on core0 queue 0, drained by the generator's thread; one-way latency = receive time − send time stamped in the inner UDP payload".into(),
        clock: "CLOCK_MONOTONIC",
        generator_cpu: opts.gen_cpu,
        receiver_cpu: opts.gen_cpu,
        worker_cpu: opts.worker_cpu,
        napi,
        batch: opts.batch,
        worker_batch: opts.worker_batch,
        sessions: opts.sessions,
        rounds: opts.rounds,
        duration_ms: opts
            .packets
            .is_none()
            .then_some(opts.duration.as_millis() as u64),
        packets: opts.packets,
        points,
    };
    drop(lab);
    write_json(&report, &opts.json)?;
    if let Some(svg) = &opts.svg {
        plot(&report, svg)?;
    }
    Ok(report)
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
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
        "l2xdp-bench latency ({}): {} rounds x {} per case and rate, interleaved; {} sessions; generator+receiver on CPU {}, worker on CPU {}, batch {}\n",
        r.header.date, r.rounds, budget, r.sessions, r.generator_cpu, r.worker_cpu, r.batch
    );
    out += &format!(
        "kernel {}, {} ({} cores)\n",
        r.header.machine.kernel, r.header.machine.cpu_model, r.header.machine.cores
    );
    out += "one-way latency in µs (CLOCK_MONOTONIC, all rounds merged); ratio = p50 / p99 over the baseline's on the same veths at the same rate\n";
    out += &format!(
        "{:>8} {:<13} {:>8} {:>8} {:>8} {:>9} {:>11} {:>10} {:>10} {:>7}\n",
        "rate", "case", "p50", "p99", "p99.9", "max", "ratio", "sent", "received", "lost"
    );
    for p in &r.points {
        for c in &p.cases {
            let ratio = match (c.p50_ratio, c.p99_ratio) {
                _ if c.name == c.baseline => "baseline".to_string(),
                (Some(a), Some(b)) => format!("{a:.2}/{b:.2}"),
                _ => "-".into(),
            };
            out += &format!(
                "{:>8} {:<13} {:>8} {:>8} {:>8} {:>9} {:>11} {:>10} {:>10} {:>7}\n",
                p.rate_pps,
                c.name,
                us(c.latency.p50_ns),
                us(c.latency.p99_ns),
                us(c.latency.p999_ns),
                us(c.latency.max_ns),
                ratio,
                c.sent,
                c.received,
                c.lost,
            );
        }
    }
    out
}

/// p50 (solid) and p99.9 (dashed) against the offered load, one colour per case, both axes
/// logarithmic.
pub fn plot(r: &Report, path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
    }
    let e = |why: String| common::bpf(format!("plotting {}", path.display()))(why);
    let rates: Vec<f64> = r.points.iter().map(|p| p.rate_pps as f64).collect();
    let (lo, hi) = rates
        .iter()
        .fold((f64::MAX, 1.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
    let (lo, hi) = if lo <= hi {
        (lo / 1.5, hi * 1.5)
    } else {
        (1.0, 10.0)
    };
    let lat = r
        .points
        .iter()
        .flat_map(|p| &p.cases)
        .filter(|c| c.latency.count > 0);
    let ymin = lat
        .clone()
        .map(|c| c.latency.p50_ns as f64 / 1000.0)
        .fold(f64::MAX, f64::min)
        .clamp(0.01, 1e6)
        / 1.5;
    let ymax = lat
        .map(|c| c.latency.p999_ns as f64 / 1000.0)
        .fold(ymin * 10.0, f64::max)
        * 1.5;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "l2xdp-bench latency: one-way, {} ({})",
                r.header.date, r.header.machine.kernel
            ),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), (ymin..ymax).log_scale())
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("offered load, frames/s (log)")
        .y_desc("µs (log): p50 solid, p99.9 dashed")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let names: Vec<&'static str> = r
        .points
        .first()
        .map(|p| p.cases.iter().map(|c| c.name).collect())
        .unwrap_or_default();
    for (k, name) in names.iter().enumerate() {
        let pick = |f: fn(&Percentiles) -> u64| -> Vec<(f64, f64)> {
            r.points
                .iter()
                .filter_map(|p| {
                    p.cases
                        .iter()
                        .find(|c| c.name == *name && c.latency.count > 0)
                        .map(|c| (p.rate_pps as f64, f(&c.latency) as f64 / 1000.0))
                })
                .collect()
        };
        let c = Palette99::pick(k).to_rgba();
        let p50 = pick(|l| l.p50_ns);
        chart
            .draw_series(LineSeries::new(p50.clone(), c.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c.stroke_width(2)));
        chart
            .draw_series(p50.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(DashedLineSeries::new(
                pick(|l| l.p999_ns),
                6,
                4,
                c.stroke_width(1),
            ))
            .map_err(|x| e(x.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2xdp_wire::datapath::{decap, DecapConfig, DropReason, Verdict};

    #[test]
    fn stamp_keeps_checksums_and_reads_back() {
        for (case, n) in [(cases::Case::DecapV2, 3u32), (cases::Case::BaselineUp, 3)] {
            let fs = frames(case, n).expect("frames");
            for (i, f) in fs.into_iter().enumerate() {
                let mut g = f.clone();
                let (ts, seq) = (0x0123_4567_89ab_cdef ^ i as u64, 0xfedc_ba98 + i as u64);
                assert!(stamp(&mut g, ts, seq));
                assert_ne!(g, f, "stamped");
                assert_eq!(read_stamp(&g), Some((ts, seq)));
                let (a, b) = (
                    checksum::data(&f[f.len() - STAMP_LEN..]),
                    checksum::data(&g[g.len() - STAMP_LEN..]),
                );
                assert_eq!(a % 0xffff, b % 0xffff, "payload sum unchanged");
                if case == cases::Case::DecapV2 {
                    let ours = cases::session(i as u32).1.session;
                    let run = |f: &[u8]| {
                        decap(
                            f,
                            &DecapConfig::default(),
                            |_| Some(&ours),
                            |_| None,
                            |_| Some(ours.our_ids),
                        )
                    };
                    let v = run(&g);
                    assert!(
                        matches!(v, Verdict::Forward { .. }),
                        "outer UDP checksum still verifies: {v:?}"
                    );
                    // The check is live: the same stamp without compensation fails it.
                    let mut bad = g.clone();
                    let at = bad.len() - STAMP_LEN + 16;
                    bad[at] ^= 0x5a;
                    assert!(
                        matches!(run(&bad), Verdict::Drop(DropReason::BadUdpChecksum)),
                        "uncompensated"
                    );
                }
            }
        }
        assert!(!stamp(&mut [0u8; 4], 1, 2));
        assert_eq!(read_stamp(&[0u8; 30]), None);
    }
}
