//! `l2xdp-bench scale`: the no-drop rate of 64-byte decap and encap (L2TPv2) with 1,000,
//! 10,000, 100,000 and 1,000,000 sessions installed — the fast-path maps sized for each count
//! with the loader's `load_sized`, as `l2xdp-dataplane attach --max-sessions` does — each as a
//! ratio to the same-round XDP_REDIRECT baseline, and the kernel memory of the per-session maps
//! (`memlock` of each map's fdinfo) per session. The same lab, generator, pacing, search and
//! sinks as [`crate::throughput`]; a fresh lab per session count. The generator's frames are
//! spread over all sessions in a seeded random order
//! ([`SESSION_ORDER_SEED`](crate::common::SESSION_ORDER_SEED)): one template per session up to
//! [`TEMPLATE_CAP`](crate::throughput::TEMPLATE_CAP), every session once per cycle; beyond
//! that a random sample of TEMPLATE_CAP sessions out of all of them (the generator's frames
//! are a map of templates, or an AF_PACKET ring written once: not a million of them).
//! With `--sessions-from live` (the default) counts up to [`LIVE_MAX`] are live sessions (the
//! LAC emulator through l2xdpd, see [`crate::live`]); larger ones are installed.

mod svg;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::common::{fmt_summary, io, write_json, Error, Header};
use crate::live::{SessionsFrom, LIVE_MAX};
use crate::machine::{pin_thread, utc_now};
use crate::throughput::{
    self, cases, measure, preflight, CaseReport, Direction, Dut, Lab, Mode, Search, Size,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `xdp` or `afxdp`.
    pub mode: Mode,
    /// Session counts.
    pub sessions: Vec<u32>,
    /// Directions (64-byte L2TPv2 frames, each with its baseline).
    pub directions: Vec<Direction>,
    /// `live` (counts up to [`LIVE_MAX`]; installed above) or `installed`.
    pub sessions_from: SessionsFrom,
    /// The l2xdpd binary (live sessions).
    pub l2xdpd: PathBuf,
    /// Rounds per session count.
    pub rounds: usize,
    /// Trial length.
    pub trial: Duration,
    /// Search halvings.
    pub steps: u32,
    /// Loss tolerated, fraction.
    pub loss: f64,
    /// Only trials at this rate (smoke runs).
    pub fixed_rate: Option<f64>,
    /// Extra trials at a failing rate.
    pub retries: u32,
    /// Generator core.
    pub cpu: usize,
    /// DUT core.
    pub dut_cpu: usize,
    /// SCHED_FIFO priority of the generator and the DUT's NAPI (0: SCHED_OTHER).
    pub rt_prio: i32,
    /// Output directory.
    pub out: PathBuf,
    /// The command line.
    pub command: String,
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

/// One session count.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Sessions installed (and the maps' size).
    pub sessions: u32,
    /// Where they came from.
    pub sessions_from: SessionsFrom,
    /// Seconds to install them through `XdpDataPlane::install`, or (live) to bring them up
    /// through l2xdpd until all are bound.
    pub install_seconds: f64,
    /// Per-session maps.
    pub maps: Vec<MapMemory>,
    /// Σ memlock / sessions, bytes.
    pub bytes_per_session: f64,
    /// Cases (baseline and v2 per direction).
    pub cases: Vec<CaseReport>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header<Mode>,
    /// The topology, in words.
    pub topology: String,
    /// Generator core.
    pub generator_cpu: usize,
    /// Which generator ran (the probe's `live_frames`): live-frame test runs, or AF_PACKET
    /// with one sender thread per core but the DUT's (its ceiling per case: `generator_ceiling_mpps`).
    pub generator: crate::pktgen::Kind,
    /// DUT core.
    pub dut_cpu: usize,
    /// SCHED_FIFO priority (0: SCHED_OTHER).
    pub rt_prio: i32,
    /// NAPI set-up (of the last lab).
    pub receivers_napi: String,
    /// Where delivery is counted.
    pub sink: String,
    /// Pacing.
    pub pacing: String,
    /// Loss tolerated, percent.
    pub loss_pct: f64,
    /// Trial length, ms.
    pub trial_ms: u64,
    /// Halvings.
    pub steps: u32,
    /// Extra trials at a failing rate.
    pub retries: u32,
    /// Rounds per count.
    pub rounds: usize,
    /// Which sessions the frames go to, in which order.
    pub session_order: String,
    /// Per session count.
    pub points: Vec<Point>,
}

/// Runs the scenario; writes `scale.json` and `scale.svg` under `opts.out`.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if opts.mode == Mode::Afxdp {
        return Err(Error::Options(
            "--mode afxdp: not available in scale (see `l2xdp-bench throughput --mode afxdp`); use --mode xdp".into(),
        ));
    }
    let machine = preflight(opts.cpu, opts.dut_cpu)?;
    if opts.sessions.is_empty() || opts.sessions.contains(&0) || opts.rounds == 0 {
        return Err(Error::Options(
            "need session counts above 0 and a round".into(),
        ));
    }
    let date = utc_now();
    pin_thread(opts.cpu).map_err(io(format!("pinning to CPU {}", opts.cpu)))?;
    let _fifo = throughput::FifoGuard::new(opts.rt_prio)?;
    let groups = cases(Mode::Xdp, &opts.directions, &[Size::B64], &[Dut::V2]);
    let s = Search {
        trial: opts.trial,
        steps: opts.steps,
        loss: opts.loss,
        fixed_rate: opts.fixed_rate,
        retries: opts.retries,
    };
    let generator = crate::pktgen::Kind::for_this_kernel();
    let mut points = Vec::new();
    let mut napi = String::new();
    for &n in &opts.sessions {
        eprintln!("l2xdp-bench scale: {n} sessions");
        let t = Instant::now();
        let live = (opts.sessions_from == SessionsFrom::Live && n <= LIVE_MAX)
            .then_some(opts.l2xdpd.as_path());
        let mut lab = Lab::new(n, 0, opts.dut_cpu, opts.rt_prio, live)?;
        if generator == crate::pktgen::Kind::AfPacket {
            lab.use_af_packet(&throughput::spare_cpus(
                machine.cores,
                opts.dut_cpu,
                opts.cpu,
            ))?;
        }
        let from = lab.sessions_from(Dut::V2);
        let install_seconds = t.elapsed().as_secs_f64();
        let maps: Vec<MapMemory> = crate::common::session_map_memory(lab.pins.path())?
            .into_iter()
            .map(|(map, memlock, max_entries)| MapMemory {
                map,
                memlock,
                max_entries,
            })
            .collect();
        let measured = measure(&mut lab, &groups, opts.rounds, s)?;
        napi = lab.napi.clone();
        drop(lab);
        points.push(Point {
            sessions: n,
            sessions_from: from,
            install_seconds,
            bytes_per_session: maps.iter().map(|m| m.memlock as f64).sum::<f64>() / f64::from(n),
            maps,
            cases: measured
                .into_iter()
                .map(|(c, mean, ss)| CaseReport {
                    sessions_from: from,
                    ..throughput::case_report(c, mean, ss)
                })
                .collect(),
        });
    }
    let report = Report {
        header: Header {
            scenario: "scale",
            mode: opts.mode,
            date,
            command: opts.command.clone(),
            machine,
        },
        topology: throughput::TOPOLOGY.into(),
        generator_cpu: opts.cpu,
        generator,
        dut_cpu: opts.dut_cpu,
        rt_prio: opts.rt_prio,
        receivers_napi: napi,
        sink: "xdp_count on core0 (up) and lac0 (down), softirq on the DUT core; delivery counted there".into(),
        pacing: match generator {
            crate::pktgen::Kind::LiveFrames => throughput::PACING,
            crate::pktgen::Kind::AfPacket => throughput::PACING_AF_PACKET,
        }
        .into(),
        loss_pct: opts.loss * 100.0,
        trial_ms: opts.trial.as_millis() as u64,
        steps: opts.steps,
        retries: opts.retries,
        rounds: opts.rounds,
        session_order: format!(
            "one template per session up to {} per direction, in a seeded random order (seed {:#x};              more sessions: a random sample of {} of them)",
            throughput::TEMPLATE_CAP,
            crate::common::SESSION_ORDER_SEED,
            throughput::TEMPLATE_CAP
        ),
        points,
    };
    write_json(&report, &opts.out.join("scale.json"))?;
    svg::scale(&report, &opts.out.join("scale.svg"))?;
    Ok(report)
}

/// The readable table.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "l2xdp-bench scale ({}), mode {:?}: {} rounds per count, trials of {} ms, {} halvings, loss ≤ {} %; generator CPU {}, DUT CPU {}\n",
        r.header.date, r.header.mode, r.rounds, r.trial_ms, r.steps, r.loss_pct, r.generator_cpu, r.dut_cpu
    );
    out += &format!(
        "topology: {}\nNAPI: {}\nsink: {}\ngenerator: {}\npacing: {}\nsession order: {}\n",
        r.topology,
        r.receivers_napi,
        r.sink,
        r.generator.describe(),
        r.pacing,
        r.session_order
    );
    out += &format!(
        "kernel {}, {} ({} cores)\nmedians [min–max] over rounds; ratio = no-drop / same-round baseline; memory = Σ memlock of the per-session maps / sessions\n",
        r.header.machine.kernel, r.header.machine.cpu_model, r.header.machine.cores
    );
    out += &format!(
        "{:>9} {:>9} {:<18} {:>22} {:>20} {:>20} {:>20} {:>10} {:>9}\n",
        "sessions",
        "from",
        "case",
        "no-drop Mpps",
        "ratio",
        "overload Mpps",
        "overload ratio",
        "B/session",
        "set-up s"
    );
    for p in &r.points {
        for c in &p.cases {
            out += &format!(
                "{:>9} {:>9} {:<18} {:>22} {:>20} {:>20} {:>20} {:>10.0} {:>9.1}\n",
                p.sessions,
                p.sessions_from.name(),
                format!(
                    "{}{}",
                    c.name,
                    if c.generator_bound_rounds > 0 {
                        "*"
                    } else {
                        ""
                    }
                ),
                fmt_summary(&c.no_drop_mpps, 3),
                fmt_summary(&c.ratio, 3),
                fmt_summary(&c.overload_mpps, 3),
                fmt_summary(&c.overload_ratio, 3),
                p.bytes_per_session,
                p.install_seconds,
            );
        }
    }
    out
}
