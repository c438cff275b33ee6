//! `l2xdp-bench cost`: nanoseconds per packet of each XDP program (bpf_stats run_time_ns /
//! run_cnt) beside a plain swap-MAC XDP_TX program, from [`crate::forward`]'s verified
//! stats-on passes (the same code and run: this module only picks the cases and reports the
//! cost columns). Cases: swapmac, decap-v2, encap-v2, decap-v3, encap-v3.
//!
//! The other half of the issue's `cost` — instructions per packet of the AF_XDP worker loop
//! under `valgrind --tool=callgrind` — belongs to the AF_XDP data plane (issue 6):
//! [`afxdp_callgrind`] is its hook and reports "not available" until its callgrind run is
//! written (`l2xdp-bench afxdp` measures the workers).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::forward::{self, fmt_summary, write_json, Case, Error};

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
}

/// The cases `cost` runs, in interleaving order.
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
    /// Rounds whose stats pass was verified to be the forwarding path.
    pub verified_rounds: usize,
    /// Rounds.
    pub rounds: usize,
}

/// The AF_XDP worker's instructions per packet under callgrind.
#[derive(Debug, Clone, Serialize)]
pub struct AfxdpCallgrind {
    /// Instructions per packet (None: not measured).
    pub instructions_per_packet: Option<f64>,
    /// Why not, or how.
    pub note: String,
}

/// The hook for the AF_XDP half of `cost` (issue 6): instructions per packet of the AF_XDP
/// worker loop under `valgrind --tool=callgrind`. Not built yet: says so.
pub fn afxdp_callgrind() -> AfxdpCallgrind {
    AfxdpCallgrind {
        instructions_per_packet: None,
        note: "not available yet: the callgrind run of the AF_XDP worker loop is not written (`l2xdp-bench afxdp` measures the workers)".into(),
    }
}

/// The report: the cost columns, and the forward report they come from (every sample).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "cost".
    pub scenario: &'static str,
    /// Per program.
    pub programs: Vec<ProgramCost>,
    /// The AF_XDP half.
    pub afxdp_callgrind: AfxdpCallgrind,
    /// The forward run (environment, samples, verification).
    pub forward: forward::Report,
}

/// Runs the cost cases through [`forward::run`]; writes `cost.json` under `opts.out`.
pub fn run(opts: &Options) -> Result<Report, Error> {
    let fwd = forward::Options {
        rounds: opts.rounds,
        duration: opts.duration,
        packets: opts.packets,
        sessions: opts.sessions,
        cpu: opts.cpu,
        cases: CASES.to_vec(),
        json: opts.out.join("cost-forward.json"),
        command: opts.command.clone(),
    };
    let f = forward::run(&fwd)?;
    let programs = f
        .cases
        .iter()
        .map(|c| ProgramCost {
            case: c.name,
            program: c.program,
            frame_in_bytes: c.frame_in_bytes,
            ns_per_packet: c.prog_ns,
            ratio_to_swapmac: c.cost_ratio,
            verified_rounds: c.verified_rounds,
            rounds: c.samples.len(),
        })
        .collect();
    let r = Report {
        scenario: "cost",
        programs,
        afxdp_callgrind: afxdp_callgrind(),
        forward: f,
    };
    write_json(&r, &opts.out.join("cost.json"))?;
    Ok(r)
}

/// The readable table.
pub fn table(r: &Report) -> String {
    let f = &r.forward;
    let mut out = format!(
        "l2xdp-bench cost ({}): bpf_stats ns/packet, {} rounds interleaved; kernel {}, {} ({} cores); CPU {}\n",
        f.date, f.rounds, f.machine.kernel, f.machine.cpu_model, f.machine.cores, f.generator_cpu
    );
    out += "medians [min–max] over verified rounds; ratio = ns/pkt / same-round swapmac ns/pkt\n";
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
    out += &format!(
        "AF_XDP worker, callgrind instructions/packet: {}\n",
        r.afxdp_callgrind.note
    );
    out
}
