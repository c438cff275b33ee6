//! `l2xdp-bench cost --method testrun` (the default): nanoseconds per packet of each XDP
//! program by plain `BPF_PROG_TEST_RUN`, which every kernel the fast path supports runs (no
//! live frames, no traffic), beside the swap-MAC program measured the same way, cases
//! interleaved round by round.
//!
//! Each run is `repeat = 1` on one frame: the kernel does not reset the frame between the
//! repetitions of one run, so with `repeat > 1` every repetition after the first would see the
//! frame the previous one rewrote (decapsulated, encapsulated, MACs swapped). A pass is
//! `--runs` (65,536) runs whose frames cycle across every installed session (v3: the one
//! pseudowire), and every run's verdict and output frame are checked against the reference,
//! `l2xdp_wire::datapath` (`decap` + `emit_inner_ethernet`, `encap`; swapmac: the MACs
//! swapped), as the differential tests do; the fast path's DECAP/ENCAP counter must rise by
//! the runs, with no other verdict and no drop. A pass with a mismatch is reported and left
//! out (`verified`).
//!
//! ns/packet = the sum of the kernel's `duration` of the runs / runs: the program and the two
//! clock reads around it (test-run overhead that the swap-MAC baseline has too), not the
//! syscall. The programs run in the LNS namespace with the ingress interface of their side
//! (la, lc; encap-v3: ac0), so `bpf_fib_lookup` and the session maps see what they see in
//! forwarding; the test run carries out no redirect.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};

use aya::programs::ProgramFd;

use aya::Ebpf;
use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::bpf::UTIL_OBJ;
use l2xdp_lab::is_root;
use l2xdp_lab::test_run::{self, action};
use l2xdp_lab::topology::{Pins, Topology, CORE_MAC, LC_MAC};
use l2xdp_wire::datapath::{
    decap, emit_inner_ethernet, encap, DecapConfig, InnerKind, Session, SessionKey, TxSeq, Verdict,
};
use serde::Serialize;

use crate::bpf::prog;
use crate::bpf::xdp;
use crate::cases::{frames, session, v3_session, Case};
use crate::common::{bpf, fmt_summary, io, Error};
use crate::interrupt;
use crate::machine::{pin_thread, utc_now, Machine};
use crate::summary::Summary;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interleaved rounds.
    pub rounds: usize,
    /// Test runs (frames) per case and round.
    pub runs: u32,
    /// v2 sessions installed; the frames cycle across all of them.
    pub sessions: u32,
    /// The core the test runs run on.
    pub cpu: usize,
    /// The cases, in interleaving order (swapmac is the baseline).
    pub cases: Vec<Case>,
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
    /// Distinct frames cycled (sessions).
    pub frames: usize,
    /// Verified rounds' ns per packet.
    pub ns_per_packet: Option<Summary>,
    /// Per-round ratio to swapmac.
    pub ratio_to_swapmac: Option<Summary>,
    /// Verified rounds.
    pub verified_rounds: usize,
    /// Every round.
    pub samples: Vec<Sample>,
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
    /// Per case.
    pub cases: Vec<CaseReport>,
}

/// One case's inputs and the reference's outputs.
struct Prepared {
    case: Case,
    fd: ProgramFd,
    ifindex: u32,
    /// (frame, expected action, expected output).
    frames: Vec<(Vec<u8>, u32, Vec<u8>)>,
}

fn reference(
    case: Case,
    frame: &[u8],
    sessions: &HashMap<SessionKey, Session>,
    bound: &HashMap<std::net::IpAddr, SessionKey>,
    by_index: &Session,
    mtu: usize,
) -> Result<(u32, Vec<u8>), Error> {
    let bad = |why: String| Error::Frame(format!("{}: reference: {why}", case.name()));
    match case {
        Case::SwapMac => {
            let mut out = frame.to_vec();
            out[..6].copy_from_slice(&frame[6..12]);
            out[6..12].copy_from_slice(&frame[..6]);
            Ok((action::TX, out))
        }
        Case::DecapV2 | Case::DecapV3 => {
            let v = decap(
                frame,
                &DecapConfig::default(),
                |k| sessions.get(k),
                |_| None,
                |a| bound.get(&a).copied(),
            );
            let Verdict::Forward { inner, kind, .. } = v else {
                return Err(bad(format!("{v:?}, not forwarded")));
            };
            let out = match kind {
                InnerKind::Ethernet => frame[inner].to_vec(),
                _ => {
                    let mut out = vec![0; 2048];
                    let n = emit_inner_ethernet(&frame[inner], CORE_MAC, LC_MAC, &mut out)
                        .map_err(|e| bad(format!("{e:?}")))?;
                    out.truncate(n);
                    out
                }
            };
            Ok((action::REDIRECT, out))
        }
        Case::EncapV2 | Case::EncapV3 => {
            let inner = if case == Case::EncapV2 {
                &frame[14..]
            } else {
                frame
            };
            let mut out = vec![0; 2048];
            let n = encap(by_index, &mut TxSeq::default(), inner, mtu, &mut out)
                .map_err(|e| bad(format!("{e:?}")))?;
            out.truncate(n);
            Ok((action::REDIRECT, out))
        }
        Case::BaselineUp | Case::BaselineDown => Err(bad("not a cost case".into())),
    }
}

fn prog_fd(e: &mut Ebpf, p: &'static str) -> Result<ProgramFd, Error> {
    let x = xdp(e, p)?;
    x.fd()
        .map_err(|x| bpf(p)(x.to_string()))?
        .try_clone()
        .map_err(|x| bpf(p)(x.to_string()))
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
    if opts.cases.is_empty() || opts.rounds == 0 || opts.sessions == 0 || opts.runs == 0 {
        return Err(Error::Options(
            "need at least one case, round, session and run".into(),
        ));
    }
    if let Some(c) = opts
        .cases
        .iter()
        .find(|c| matches!(c, Case::BaselineUp | Case::BaselineDown))
    {
        return Err(Error::Options(format!(
            "{}: not a cost case (swapmac, decap-v2, encap-v2, decap-v3, encap-v3)",
            c.name()
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

    // Field order is drop order: objects, pins, then the namespaces.
    let topo = Topology::new("cost");
    let lns = &topo.lns;
    let acs = topo.add_attachment_circuits(1);
    let pins = Pins::under_sys_fs_bpf("cost");
    let pin_dir = pins.path().to_path_buf();
    let (mut fast, la, lc, ac0) = {
        let _g = lns.enter();
        let fast = loader::load(Some(&pin_dir))?;
        (
            fast,
            loader::ifindex("la")?,
            loader::ifindex("lc")?,
            loader::ifindex(&acs[0].0)?,
        )
    };
    let mut dp = XdpDataPlane::open(&pin_dir)?;
    let cfg = FastPathConfig::default();
    dp.set_config(&cfg)?;
    let mut sessions = HashMap::new();
    let mut bound = HashMap::new();
    let mut by_index = Vec::new();
    for i in 0..opts.sessions {
        let e = session(i).1;
        dp.install(&e)?;
        sessions.insert(e.session.our_ids, e.session);
        if let l2xdp_dataplane::api::Binding::Subscriber { ipv4: Some(a), .. } = e.binding {
            bound.insert(std::net::IpAddr::V4(a), e.session.our_ids);
        }
        by_index.push(e.session);
    }
    let v3 = v3_session(0, ac0).1;
    dp.install(&v3)?;
    sessions.insert(v3.session.our_ids, v3.session);
    let mut util = Ebpf::load(UTIL_OBJ).map_err(|x| bpf("util object")(x.to_string()))?;
    xdp(&mut util, prog::SWAP_MAC)?
        .load()
        .map_err(|x| bpf(prog::SWAP_MAC)(format!("{x:?}")))?;

    let mut prepared = Vec::new();
    for case in &opts.cases {
        let (fd, ifindex) = match case {
            Case::SwapMac => (prog_fd(&mut util, prog::SWAP_MAC)?, la),
            Case::DecapV2 | Case::DecapV3 => (prog_fd(&mut fast, prog::ACCESS)?, la),
            Case::EncapV2 => (prog_fd(&mut fast, prog::CORE)?, lc),
            _ => (prog_fd(&mut fast, prog::CORE)?, ac0),
        };
        let n = if Case::V3.contains(case) {
            1
        } else {
            opts.sessions
        };
        let mut fs = Vec::new();
        for (i, f) in frames(*case, n)?.into_iter().enumerate() {
            let s = if Case::V3.contains(case) {
                &v3.session
            } else {
                &by_index[i]
            };
            let (a, out) = reference(*case, &f, &sessions, &bound, s, cfg.mtu as usize)?;
            fs.push((f, a, out));
        }
        prepared.push(Prepared {
            case: *case,
            fd,
            ifindex,
            frames: fs,
        });
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); prepared.len()];
    {
        let _g = lns.enter();
        // Warm-up: caches, map entries; not recorded.
        for p in &prepared {
            pass(&dp, p, opts.runs.min(4096), usize::MAX)?;
        }
        for round in 0..opts.rounds {
            for (k, p) in prepared.iter().enumerate() {
                samples[k].push(pass(&dp, p, opts.runs, round)?);
            }
        }
    }
    let swap_k = prepared.iter().position(|p| p.case == Case::SwapMac);
    for r in 0..opts.rounds {
        let base = swap_k
            .map(|w| &samples[w][r])
            .filter(|w| w.verified && w.ns_per_packet > 0.0)
            .map(|w| w.ns_per_packet);
        for ss in samples.iter_mut() {
            let s = &mut ss[r];
            s.ratio_to_swapmac = base.filter(|_| s.verified).map(|b| s.ns_per_packet / b);
        }
    }
    let cases = prepared
        .iter()
        .zip(samples)
        .map(|(p, ss)| CaseReport {
            case: p.case.name(),
            program: p.case.program(),
            frame_in_bytes: p.frames[0].0.len(),
            frame_out_bytes: p.frames[0].2.len(),
            frames: p.frames.len(),
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
        runs: opts.runs,
        sessions: opts.sessions,
        cases,
    })
}

/// (forwarding verdict of the case, every other verdict + drops) so far.
fn counters(dp: &XdpDataPlane, case: Case) -> Result<(u64, u64), Error> {
    let v = dp.verdict_counters()?;
    let k = match case {
        Case::DecapV2 | Case::DecapV3 => Some(verdict::DECAP),
        Case::EncapV2 | Case::EncapV3 => Some(verdict::ENCAP),
        _ => None,
    };
    let fwd = k.map_or(0, |k| v[k as usize]);
    let all: u64 = v[..verdict::WHY_BASE as usize].iter().sum();
    let drops: u64 = dp.drop_counters()?.iter().sum();
    Ok((fwd, all - fwd + drops))
}

/// One pass of `runs` test runs of one case, frames cycling; every output checked.
fn pass(dp: &XdpDataPlane, p: &Prepared, runs: u32, round: usize) -> Result<Sample, Error> {
    let (f0, o0) = counters(dp, p.case)?;
    let mut ns_total = 0u64;
    let mut mismatches = 0u64;
    let fd = p.fd.as_fd().as_raw_fd();
    for i in 0..runs as usize {
        if i.is_multiple_of(4096) && interrupt::requested() {
            return Err(Error::Interrupted);
        }
        let (frame, want_action, want) = &p.frames[i % p.frames.len()];
        let got = match test_run::run(fd, frame, p.ifindex, 1) {
            Ok(g) => g,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Err(Error::Interrupted),
            Err(e) => return Err(io(format!("test run of {}", p.case.program()))(e)),
        };
        ns_total += u64::from(got.duration_ns);
        if got.action != *want_action || got.frame != *want {
            if mismatches == 0 && round != usize::MAX {
                eprintln!(
                    "l2xdp-bench cost: {} round {round} run {i}: action {} (want {want_action}), \
                     {} bytes out (want {}): differs from the reference",
                    p.case.name(),
                    got.action,
                    got.frame.len(),
                    want.len()
                );
            }
            mismatches += 1;
        }
    }
    let (f1, o1) = counters(dp, p.case)?;
    let forwarded = f1 - f0;
    let other = o1 - o0;
    let expect_fwd = if p.case == Case::SwapMac {
        0
    } else {
        u64::from(runs)
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
    })
}

/// The table rows.
pub fn table(r: &Report) -> String {
    let mut out = format!(
        "method testrun: plain BPF_PROG_TEST_RUN, repeat 1, {} runs per case and round cycling over every session ({} v2), {} rounds interleaved; CPU {}\n",
        r.runs, r.sessions, r.rounds, r.cpu
    );
    out += "ns/packet = sum of the kernel's per-run duration / runs (verified rounds: every output = wire::datapath reference, fast-path counters = runs); ratio = / same-round swapmac\n";
    out += &format!(
        "{:<12} {:<19} {:>8} {:>7} {:>22} {:>20} {:>8}\n",
        "case", "program", "bytes", "frames", "ns/packet", "ratio to swapmac", "verified"
    );
    for c in &r.cases {
        out += &format!(
            "{:<12} {:<19} {:>8} {:>7} {:>22} {:>20} {:>8}\n",
            c.case,
            c.program,
            format!("{}→{}", c.frame_in_bytes, c.frame_out_bytes),
            c.frames,
            fmt_summary(&c.ns_per_packet, 1),
            fmt_summary(&c.ratio_to_swapmac, 2),
            format!("{}/{}", c.verified_rounds, c.samples.len())
        );
    }
    out
}
