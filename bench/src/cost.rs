//! `l2xdp-bench cost`: nanoseconds per packet of each XDP program beside a plain swap-MAC
//! XDP_TX program, cases swapmac, decap-v2, encap-v2, decap-v3, encap-v3, by one of two
//! methods ([`Method`]):
//!
//! - `testrun` (the default, on every kernel): plain `BPF_PROG_TEST_RUN`, `repeat = 1`, frames
//!   spread over every session in a seeded random order, every output checked against
//!   `wire::datapath`; beside swap-MAC also a routed baseline (`xdp_router`, what the
//!   kernel's xdp_fwd sample does, IPv4 and IPv6) and decap-v2 with the UDP checksum
//!   verification off ([`crate::cost_testrun`]);
//! - `forward`: bpf_stats run_time_ns / run_cnt from [`crate::forward`]'s verified stats-on
//!   passes (the programs forwarding real traffic through veths; the generator is the
//!   live-frame test run, or AF_PACKET where the kernel refuses live frames).
//!
//! The other half — instructions per packet of the AF_XDP worker loop under
//! `valgrind --tool=callgrind`, beside the raw forwarder's — is [`crate::callgrind`]; it needs
//! no root, and `--callgrind-only` runs it alone.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::callgrind::{self, AfxdpCallgrind};
use crate::cases::Case;
use crate::common::{self, fmt_summary, write_json, Error};
use crate::forward;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Timed pass per case and round (the stats pass is a quarter of it).
    pub duration: Duration,
    /// Exactly this many frames per pass instead.
    pub packets: Option<u64>,
    /// v2 sessions.
    pub sessions: u32,
    /// Generator (and path) core.
    pub cpu: usize,
    /// Output directory.
    pub out: PathBuf,
    /// The command line.
    pub command: String,
    /// The callgrind half's N (runs of N and 2N packets).
    pub callgrind_packets: u64,
    /// The `l2xdp-bench` binary the callgrind runs drive (normally this one).
    pub exe: PathBuf,
    /// Only the callgrind half (no root, no XDP).
    pub callgrind_only: bool,
    /// How the XDP programs are measured.
    pub method: Method,
    /// `testrun`: test runs per case and round (None: 65,536 or one cycle over the sessions).
    pub runs: Option<u32>,
    /// `testrun`: v3 sessions, one per attachment circuit.
    pub v3_circuits: u32,
    /// `testrun`: seed of the session order.
    pub seed: u64,
}

/// How `cost` measures the XDP programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Plain `BPF_PROG_TEST_RUN`, repeat 1, outputs checked ([`crate::cost_testrun`]).
    Testrun,
    /// bpf_stats of the `forward` scenario's stats-on passes.
    Forward,
}

impl Method {
    /// Parses `testrun` or `forward`.
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "testrun" => Some(Method::Testrun),
            "forward" => Some(Method::Forward),
            _ => None,
        }
    }
}

/// The cases `cost --method forward` runs, in interleaving order (`--method testrun`:
/// [`crate::cost_testrun::TrCase::ALL`], with the routed baseline).
pub const CASES: [Case; 5] = [
    Case::SwapMac,
    Case::DecapV2,
    Case::EncapV2,
    Case::DecapV3,
    Case::EncapV3,
];

/// One program's cost.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramCost {
    /// Case.
    pub case: &'static str,
    /// Program.
    pub program: &'static str,
    /// Frame in → out, bytes.
    pub frame_in_bytes: usize,
    /// bpf_stats ns per packet (verified rounds).
    pub ns_per_packet: Option<crate::summary::Summary>,
    /// Per-round ratio to swapmac.
    pub ratio_to_swapmac: Option<crate::summary::Summary>,
    /// Per-round ratio to the routed baseline, router-v4 (`testrun` only).
    pub ratio_to_router: Option<crate::summary::Summary>,
    /// Rounds whose stats pass was verified to be the forwarding path.
    pub verified_rounds: usize,
    /// Rounds.
    pub rounds: usize,
}

/// The report: the cost columns, and the forward report they come from (every sample).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "cost".
    pub scenario: &'static str,
    /// UTC time of the report.
    pub date: String,
    /// The command line.
    pub command: String,
    /// `testrun` or `forward`.
    pub method: Method,
    /// Per program.
    pub programs: Vec<ProgramCost>,
    /// The AF_XDP half.
    pub afxdp_callgrind: AfxdpCallgrind,
    /// `forward` method: the forward run (environment, samples, verification).
    pub forward: Option<forward::Report>,
    /// `testrun` method: every sample.
    pub testrun: Option<crate::cost_testrun::Report>,
}

/// Runs the cost cases through [`forward::run`] (unless `callgrind_only`), then the callgrind
/// half ([`callgrind::measure`]); writes `cost.json` under `opts.out`.
pub fn run(opts: &Options) -> Result<Report, Error> {
    let t = if opts.callgrind_only || opts.method != Method::Testrun {
        None
    } else {
        Some(crate::cost_testrun::run(&crate::cost_testrun::Options {
            rounds: opts.rounds,
            runs: opts.runs,
            sessions: opts.sessions,
            v3_circuits: opts.v3_circuits,
            seed: opts.seed,
            cpu: opts.cpu,
            cases: crate::cost_testrun::TrCase::ALL.to_vec(),
        })?)
    };
    let f = if opts.callgrind_only || opts.method != Method::Forward {
        None
    } else {
        let fwd = forward::Options {
            rounds: opts.rounds,
            duration: opts.duration,
            packets: opts.packets,
            sessions: opts.sessions,
            cpu: opts.cpu,
            cases: CASES.to_vec(),
            json: opts.out.join("cost-forward.json"),
            command: opts.command.clone(),
            generator: crate::pktgen::Kind::for_this_kernel(),
        };
        Some(forward::run(&fwd)?)
    };
    let mut programs: Vec<ProgramCost> = f
        .iter()
        .flat_map(|f| &f.cases)
        .map(|c| ProgramCost {
            case: c.name,
            program: c.program,
            frame_in_bytes: c.frame_in_bytes,
            ns_per_packet: c.prog_ns,
            ratio_to_swapmac: c.cost_ratio,
            ratio_to_router: None,
            verified_rounds: c.verified_rounds,
            rounds: c.samples.len(),
        })
        .collect();
    programs.extend(t.iter().flat_map(|t| &t.cases).map(|c| ProgramCost {
        case: c.case,
        program: c.program,
        frame_in_bytes: c.frame_in_bytes,
        ns_per_packet: c.ns_per_packet,
        ratio_to_swapmac: c.ratio_to_swapmac,
        ratio_to_router: c.ratio_to_router,
        verified_rounds: c.verified_rounds,
        rounds: c.samples.len(),
    }));
    std::fs::create_dir_all(&opts.out).map_err(common::io(opts.out.display().to_string()))?;
    let cg = callgrind::measure(
        &opts.exe,
        opts.callgrind_packets,
        opts.sessions.min(1000),
        &opts.out,
    );
    if opts.callgrind_only && cg.cases.is_empty() {
        return Err(Error::Callgrind(cg.note));
    }
    let r = Report {
        scenario: "cost",
        date: crate::machine::utc_now(),
        command: opts.command.clone(),
        method: opts.method,
        programs,
        afxdp_callgrind: cg,
        forward: f,
        testrun: t,
    };
    write_json(&r, &opts.out.join("cost.json"))?;
    Ok(r)
}

/// The readable table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    if let Some(t) = &r.testrun {
        out += &format!(
            "l2xdp-bench cost ({}): kernel {}, {} ({} cores)\n",
            t.date, t.machine.kernel, t.machine.cpu_model, t.machine.cores
        );
        out += &crate::cost_testrun::table(t);
    }
    if let Some(f) = &r.forward {
        out += &format!(
            "l2xdp-bench cost ({}): method forward: bpf_stats ns/packet, {} rounds interleaved; kernel {}, {} ({} cores); CPU {}; generator {}\n",
            f.header.date, f.rounds, f.header.machine.kernel, f.header.machine.cpu_model, f.header.machine.cores, f.generator_cpu, f.generator_describe
        );
        out +=
            "medians [min–max] over verified rounds; ratio = ns/pkt / same-round swapmac ns/pkt\n";
        out += &format!(
            "{:<12} {:<19} {:>6} {:>22} {:>20} {:>8}\n",
            "case", "program", "bytes", "ns/packet", "ratio to swapmac", "verified"
        );
        for p in &r.programs {
            out += &format!(
                "{:<12} {:<19} {:>6} {:>22} {:>20} {:>8}\n",
                p.case,
                p.program,
                p.frame_in_bytes,
                fmt_summary(&p.ns_per_packet, 1),
                fmt_summary(&p.ratio_to_swapmac, 2),
                format!("{}/{}", p.verified_rounds, p.rounds)
            );
        }
    }
    let cg = &r.afxdp_callgrind;
    out += &format!(
        "AF_XDP worker loop, callgrind instructions/packet ({}): {}\n",
        cg.valgrind.as_deref().unwrap_or("no valgrind"),
        cg.note
    );
    if !cg.cases.is_empty() {
        out += &format!(
            "{:<12} {:>6} {:>14} {:>14} {:>10} {:>12}\n",
            "case", "bytes", "Ir (N)", "Ir (2N)", "Ir/packet", "ratio to raw"
        );
        for c in &cg.cases {
            out += &format!(
                "{:<12} {:>6} {:>14} {:>14} {:>10.1} {:>12}\n",
                c.case,
                c.frame_in_bytes,
                c.ir[0],
                c.ir[1],
                c.instructions_per_packet,
                c.ratio_to_raw.map_or("-".into(), |x| format!("{x:.2}"))
            );
        }
    }
    out
}
