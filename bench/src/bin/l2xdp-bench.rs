//! l2xdp-bench: benchmark scenarios, one subcommand each (see bench/README.md).
//!
//! `sudo target/release/l2xdp-bench forward [--rounds 5] [--duration-ms 2000] [--sessions 1000]
//!  [--cpu N] [--cases swapmac,baseline-up,decap-v2,baseline-down,encap-v2] [--json PATH]`
//! `sudo target/release/l2xdp-bench afxdp [--rounds 5] [--duration-ms 2000] [--sessions 1000]
//!  [--gen-cpu 0] [--worker-cpu 1] [--batch 64] [--cases raw-up,afxdp-decap-v2,raw-down,afxdp-encap-v2]
//!  [--json PATH]`
//! `sudo target/release/l2xdp-bench throughput [--mode xdp] [--directions up,down,both]
//!  [--sizes 64,512,imix] [--versions v2,v3] [--sessions 1000] [--v3-sessions 4] [--rounds 2]
//!  [--trial-ms 250] [--steps 5] [--retries 1] [--loss-pct 0.001] [--cpu N] [--dut-cpu 0]
//!  [--rt-prio 50] [--batch 64] [--out bench/results]` (`--mode afxdp`: the worker runs on
//!  `--dut-cpu`)
//! `sudo target/release/l2xdp-bench scale [--sessions 1000,10000,100000,1000000] [--directions up,down] …`
//! `sudo target/release/l2xdp-bench cost [--rounds 5] [--duration-ms 1000] [--out bench/results]`
//! `sudo target/release/l2xdp-bench latency [--rates 10000,100000,500000] [--rounds 3]
//!  [--duration-ms 1000] [--sessions 1000] [--gen-cpu 0] [--worker-cpu 1] [--batch 8]
//!  [--cases xdp-redirect,xdp,raw-afxdp,afxdp] [--json PATH] [--svg PATH]`
//! `target/release/l2xdp-bench setup-rate [--tunnels 100] [--sessions 10] [--in-flight 1000]
//!  [--json PATH]`
//! `sudo target/release/l2xdp-bench failover [--fast-path xdp|memory] [--tunnels 1000]
//!  [--sessions 100] [--in-flight 1000] [--pps 20000] [--seconds 5] [--json PATH]`
//! `sudo target/release/l2xdp-bench demo [--tunnels 4] [--sessions 50] [--seconds 5] [--pps 20000]
//!  [--config FILE] [--print-config] [--json PATH]` (what `make run` runs)

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use l2xdp_bench::cases::Case;
use l2xdp_bench::common;
use l2xdp_bench::forward;
use l2xdp_bench::live::SessionsFrom;
use l2xdp_bench::throughput::{self, Direction, Dut, Mode, Size};
use l2xdp_bench::{
    afxdp, callgrind, cost, demo, failover, failover_xdp, flood, latency, lns, scale, setup_rate,
};
use l2xdp_bench::{interrupt, machine};

#[derive(Parser)]
#[command(name = "l2xdp-bench", about = "l2xdp benchmark scenarios (root)")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// The demo `make run` shows: the lab in network namespaces (XDP fast path and l2xdpd in
    /// `lns`), the LAC emulator bringing up PPP sessions, traffic both ways with a live view, a
    /// kill -9 failover drill, then everything removed. Exit 0 only if all of it worked.
    Demo {
        /// Control connections from the LAC.
        #[arg(long, default_value_t = 4)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        /// Seconds of live traffic before the failover drill.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Packets per second in each direction.
        #[arg(long, default_value_t = 20_000)]
        pps: u64,
        /// Sessions being set up at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        /// l2xdpd configuration instead of the built-in one (see --print-config); the lab sets
        /// the listen address, control socket, state dir, fast-path pins and users file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the built-in l2xdpd configuration and exit.
        #[arg(long)]
        print_config: bool,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// 64-byte forwarding through the LNS namespace on one core (XDP, live-frame generator):
    /// decap and encap Mpps as ratios to a plain XDP_REDIRECT baseline and their programs'
    /// bpf_stats ns/pkt as ratios to a swap-MAC XDP_TX program, cases interleaved.
    Forward {
        /// Interleaved rounds (A B C D E A B C D E ...).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Generation time per case and round, milliseconds.
        #[arg(long, default_value_t = 2000)]
        duration_ms: u64,
        /// Send exactly this many frames per case and round instead (smoke runs).
        #[arg(long)]
        packets: Option<u64>,
        /// Sessions installed; frames are spread over them round robin.
        #[arg(long, default_value_t = 1000)]
        sessions: u32,
        /// The core that runs the generator (and with it the whole path); default: the last.
        #[arg(long)]
        cpu: Option<usize>,
        /// Comma-separated cases, in interleaving order.
        #[arg(
            long,
            default_value = "swapmac,baseline-up,decap-v2,baseline-down,encap-v2"
        )]
        cases: String,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/forward.json")]
        json: PathBuf,
    },
    /// 64-byte forwarding per core in AF_XDP mode (L2TPv2 decap and encap by the workers) as a
    /// ratio to a raw AF_XDP forwarder (rx then tx) on the same veth pair, cases alternating.
    Afxdp {
        /// Interleaved rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Generation time per case and round, milliseconds.
        #[arg(long, default_value_t = 2000)]
        duration_ms: u64,
        /// Send exactly this many frames per case and round instead.
        #[arg(long)]
        packets: Option<u64>,
        /// Sessions installed; frames are spread over them round robin.
        #[arg(long, default_value_t = 1000)]
        sessions: u32,
        /// The generator's core.
        #[arg(long, default_value_t = 0)]
        gen_cpu: usize,
        /// The worker's core (default: the last).
        #[arg(long)]
        worker_cpu: Option<usize>,
        /// Frames a worker takes per socket and pass.
        #[arg(long, default_value_t = 64)]
        batch: u32,
        /// Comma-separated cases, in interleaving order (raw-xskrs-up and raw-xskrs-down, the
        /// raw forwarder on xsk-rs, need `--features xskrs`).
        #[arg(long, default_value = "raw-up,afxdp-decap-v2,raw-down,afxdp-encap-v2")]
        cases: String,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/afxdp.json")]
        json: PathBuf,
    },
    /// No-drop rate search (loss ≤ 0.001 % at the sinks) through the LNS on one DUT core,
    /// paced live-frame generator on another: up (decap), down (encap), both; 64 B, 512 B,
    /// IMIX; L2TPv2 and L2TPv3; each beside a plain XDP_REDIRECT baseline on the same veths,
    /// alternating baseline, v2, v3 round by round. JSON and SVG in --out.
    Throughput {
        #[command(flatten)]
        rate: RateArgs,
        /// Comma-separated directions: up, down, both.
        #[arg(long, default_value = "up,down,both")]
        directions: String,
        /// Comma-separated sizes: 64, 512, imix.
        #[arg(long, default_value = "64,512,imix")]
        sizes: String,
        /// Comma-separated versions: v2, v3 (the baseline always runs).
        #[arg(long, default_value = "v2,v3")]
        versions: String,
        /// L2TPv2 sessions; frames spread over all.
        #[arg(long, default_value_t = 1000)]
        sessions: u32,
        /// Where the L2TPv2 sessions come from: live (the LAC emulator brings them up, PPP
        /// through IPCP, against an l2xdpd in the lns namespace, which installs them) or
        /// installed (written into the maps by the bench). L2TPv3 sessions are installed.
        #[arg(long, default_value = "live")]
        sessions_from: String,
        /// The l2xdpd binary of live sessions (default: next to this one).
        #[arg(long)]
        l2xdpd: Option<PathBuf>,
        /// L2TPv3 sessions (one attachment-circuit veth pair each).
        #[arg(long, default_value_t = 4)]
        v3_sessions: u8,
        /// `--mode afxdp`: frames the worker takes per socket and pass.
        #[arg(long, default_value_t = 64)]
        batch: u32,
    },
    /// No-drop rate of 64-byte L2TPv2 decap and encap against the number of sessions
    /// installed (maps sized to match), with baselines, and kernel memory per session.
    Scale {
        #[command(flatten)]
        rate: RateArgs,
        /// Comma-separated session counts.
        #[arg(long, default_value = "1000,10000,100000,1000000")]
        sessions: String,
        /// Comma-separated directions: up, down, both.
        #[arg(long, default_value = "up,down")]
        directions: String,
        /// live (counts up to 100,000: the LAC emulator through l2xdpd; larger counts are
        /// installed) or installed (written into the maps by the bench).
        #[arg(long, default_value = "live")]
        sessions_from: String,
        /// The l2xdpd binary of live sessions (default: next to this one).
        #[arg(long)]
        l2xdpd: Option<PathBuf>,
    },
    /// Nanoseconds per packet of each XDP program beside a swap-MAC XDP_TX program, decap/encap
    /// v2 and v3 (`--method testrun`, the default: plain BPF_PROG_TEST_RUN, repeat 1, frames
    /// cycling over every session, outputs checked against wire::datapath; `--method forward`:
    /// bpf_stats of the `forward` scenario's verified stats passes); and instructions per
    /// packet of the AF_XDP worker loop under `valgrind --tool=callgrind` beside the raw
    /// forwarder's (in-memory sockets, no root).
    Cost {
        /// Interleaved rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// testrun (every kernel) or forward (bpf_stats while forwarding).
        #[arg(long, default_value = "testrun")]
        method: String,
        /// testrun: test runs per case and round (default: 65,536 or one cycle over the
        /// sessions, whichever is more).
        #[arg(long)]
        runs: Option<u32>,
        /// testrun: v3 sessions, one per attachment circuit (veth ends in the LNS
        /// namespace), 1 to 4096 (the fast path's l2xdp_ac map).
        #[arg(long, default_value_t = 256)]
        v3_circuits: u32,
        /// testrun: seed of the sessions' random order (printed in the report).
        #[arg(long, default_value_t = l2xdp_bench::cost_testrun::DEFAULT_SEED)]
        seed: u64,
        /// Timed pass per case and round, milliseconds (the bpf_stats pass is a quarter of it).
        #[arg(long, default_value_t = 1000)]
        duration_ms: u64,
        /// Exactly this many frames per pass instead (smoke runs).
        #[arg(long)]
        packets: Option<u64>,
        /// Sessions installed (v2; up to 1,048,576 and more: the maps are sized for them).
        #[arg(long, default_value_t = 1000)]
        sessions: u32,
        /// The core that runs the generator and the path; default: the last.
        #[arg(long)]
        cpu: Option<usize>,
        /// Output directory (cost.json).
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// Callgrind half: N (each case runs N and 2N packets).
        #[arg(long, default_value_t = 4096)]
        callgrind_packets: u64,
        /// Only the callgrind half (needs neither root nor XDP).
        #[arg(long)]
        callgrind_only: bool,
    },
    /// The driver `cost` runs under callgrind: N frames of one case through the AF_XDP worker
    /// on in-memory sockets; prints a JSON line. Not a scenario by itself.
    #[command(hide = true)]
    CostWorker {
        /// raw, decap-v2, encap-v2, decap-v3, encap-v3.
        #[arg(long)]
        case: String,
        /// Frames.
        #[arg(long)]
        packets: u64,
        /// v2 sessions the frames are spread over.
        #[arg(long, default_value_t = 1000)]
        sessions: u32,
    },
    /// One-way latency (hdrhistogram p50/p99/p99.9/max) at fixed offered loads through the
    /// LNS in XDP and AF_XDP mode beside their baselines (XDP_REDIRECT, raw AF_XDP forwarder)
    /// on the same veths, cases alternating; AF_XDP generator and receiver, timestamps in the
    /// payload.
    Latency {
        /// Comma-separated offered loads, frames per second.
        #[arg(long, default_value = "10000,100000,500000")]
        rates: String,
        /// Interleaved rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Generation time per case, rate and round, milliseconds.
        #[arg(long, default_value_t = 1000)]
        duration_ms: u64,
        /// Send exactly this many frames per case, rate and round instead.
        #[arg(long)]
        packets: Option<u64>,
        /// Sessions installed; frames are spread over them round robin.
        #[arg(long, default_value_t = 1000)]
        sessions: u32,
        /// The generator's and receiver's core (one thread).
        #[arg(long, default_value_t = 0)]
        gen_cpu: usize,
        /// The worker's core (default: the last).
        #[arg(long)]
        worker_cpu: Option<usize>,
        /// Frames sent per deadline.
        #[arg(long, default_value_t = 8)]
        batch: u32,
        /// Frames a worker takes per socket and pass.
        #[arg(long, default_value_t = 64)]
        worker_batch: u32,
        /// Comma-separated cases, in interleaving order.
        #[arg(long, default_value = "xdp-redirect,xdp,raw-afxdp,afxdp")]
        cases: String,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/latency.json")]
        json: PathBuf,
        /// SVG plot path (p50 and p99.9 against the offered load).
        #[arg(long, default_value = "target/bench/latency.svg")]
        svg: PathBuf,
    },
    /// A flood from spoofed sources at an `l2xdpd` on loopback (raw socket, root): SCCRQs at
    /// `rate` per second from `sources` addresses while the LAC emulator brings up `tunnels`
    /// tunnels with PPP, or with `--junk` one-byte datagrams each from its own source. Reports
    /// the LAC's tunnels up, l2xdpd's memory (before, peak, after) and its log lines.
    Flood {
        /// Datagrams per second.
        #[arg(long, default_value_t = 5000)]
        rate: u32,
        /// Distinct spoofed source addresses (SCCRQs).
        #[arg(long, default_value_t = 50_000)]
        sources: u32,
        /// Seconds of flood.
        #[arg(long, default_value_t = 20)]
        secs: u64,
        /// One-byte datagrams from distinct sources instead of SCCRQs.
        #[arg(long)]
        junk: bool,
        /// Tunnels (one PPP session each) the LAC brings up during the flood.
        #[arg(long, default_value_t = 10)]
        tunnels: usize,
        /// Seconds to wait after the flood before the last memory reading.
        #[arg(long, default_value_t = 15)]
        settle_secs: u64,
        /// The l2xdpd binary (default: next to this one).
        #[arg(long)]
        l2xdpd: Option<PathBuf>,
        /// l2xdpd's log (INFO).
        #[arg(long, default_value = "target/bench/flood-l2xdpd.log")]
        log: PathBuf,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/flood.json")]
        json: PathBuf,
        /// The XDP fast path (lab namespaces, `l2xdp-dataplane attach`; no LAC) with this
        /// SCCRQ budget (`[l2tp.limits] xdp_sccrq_per_sec`, 0: none) instead of the in-memory
        /// one on loopback.
        #[arg(long)]
        xdp_budget: Option<u32>,
    },
    /// Session set-up rate through ICCN and IPCP (PPP with CHAP) against an `l2xdpd` process on
    /// loopback, per-session latency, and the daemon's memory per tunnel and per session.
    SetupRate {
        /// Control connections.
        #[arg(long, default_value_t = 100)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 10)]
        sessions: usize,
        /// Sessions being set up at once (a new one opens as one reaches IPCP).
        #[arg(long, default_value_t = 1000)]
        in_flight: usize,
        /// The l2xdpd binary (default: next to this one).
        #[arg(long)]
        l2xdpd: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        limit_secs: u64,
        /// RFC 4951 failover on both ends (C = 1, D = 1): l2xdpd persists every tunnel and
        /// session in its state store before acknowledging it — the set-up rate with
        /// persistence.
        #[arg(long)]
        failover: bool,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/setup-rate.json")]
        json: PathBuf,
    },
    /// kill -9 of an `l2xdpd` process with RFC 4951 failover and its restart, with
    /// `tunnels × sessions` PPP sessions up. `--fast-path xdp` (root): the demo's lab in
    /// network namespaces, traffic both ways through XDP while l2xdpd is killed, data packets
    /// lost, time to every tunnel recovered, sessions kept. `--fast-path memory`: LAC emulator
    /// on loopback, in-memory fast path (the control plane alone): time to the control socket,
    /// to every tunnel recovered, the state restore. Both: VmRSS, and that the emulator lost no
    /// tunnel or session.
    Failover {
        /// `xdp` (traffic counted through the XDP fast path) or `memory` (control plane only).
        #[arg(long, value_enum, default_value_t = FastPath::Xdp)]
        fast_path: FastPath,
        /// Control connections.
        #[arg(long, default_value_t = 1000)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Sessions being set up at once during the bring-up (default: xdp 256, memory 1000).
        #[arg(long)]
        in_flight: Option<usize>,
        /// xdp: data packets per second in each direction, round robin over every session.
        #[arg(long, default_value_t = 20_000)]
        pps: u64,
        /// xdp: seconds of traffic before the kill.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// The l2xdpd binary (default: next to this one).
        #[arg(long)]
        l2xdpd: Option<PathBuf>,
        /// Give up on any one step after this many seconds.
        #[arg(long, default_value_t = 600)]
        limit_secs: u64,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/failover.json")]
        json: PathBuf,
        /// memory: the LAC emulator advertises the RFC 4951 Failover Capability (`false`: a
        /// peer without RFC 4951, as xl2tpd; only transparent resume keeps its tunnels).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        lac_failover: bool,
    },
}

/// Options shared by the no-drop rate scenarios (throughput, scale).
#[derive(clap::Args)]
struct RateArgs {
    /// `xdp` (the XDP fast path) or `afxdp` (AF_XDP mode; throughput only).
    #[arg(long, default_value = "xdp")]
    mode: String,
    /// Rounds (every case once per round, baseline first in its group).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Length of one trial, milliseconds.
    #[arg(long, default_value_t = 250)]
    trial_ms: u64,
    /// Binary-search halvings after the overload and top trials.
    #[arg(long, default_value_t = 5)]
    steps: u32,
    /// Extra trials at a failing rate before it counts as failed (a VM hiccup longer than
    /// the 256-frame veth ring lasts is not the DUT's rate).
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// Loss a passing trial may have, percent.
    #[arg(long, default_value_t = 0.001)]
    loss_pct: f64,
    /// Only trials at this offered rate (pps), no search (smoke runs).
    #[arg(long)]
    fixed_rate: Option<f64>,
    /// The generator's core (default: the last).
    #[arg(long)]
    cpu: Option<usize>,
    /// The core the DUT's threaded NAPI kthreads are pinned to.
    #[arg(long, default_value_t = 0)]
    dut_cpu: usize,
    /// SCHED_FIFO priority of the generator thread and the DUT's NAPI kthreads (0: leave
    /// them SCHED_OTHER, at the mercy of other jobs on a shared machine).
    #[arg(long, default_value_t = 50)]
    rt_prio: i32,
    /// Output directory (JSON and SVG).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

fn parse_list<T>(s: &str, what: &str, f: fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| f(x).ok_or_else(|| format!("unknown {what} {x:?}")))
        .collect()
}

/// The failover scenario's fast path.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FastPath {
    /// The XDP fast path in network namespaces, traffic counted (root).
    Xdp,
    /// The in-memory fast path on loopback: the control plane alone.
    Memory,
}

/// A runtime for the control-plane scenarios: one worker for the LAC emulator's driver.
/// Ends a scenario: its table and where its files went, or its error (exit 2 when not run as
/// root, 1 otherwise).
fn finish<R>(
    name: &str,
    result: Result<R, common::Error>,
    table: fn(&R) -> String,
    files: Vec<String>,
) -> ExitCode {
    match result {
        Ok(r) => {
            print!("{}", table(&r));
            for f in files {
                println!("{f}");
            }
            ExitCode::SUCCESS
        }
        Err(common::Error::NotRoot) => {
            eprintln!("l2xdp-bench {name}: {}", common::Error::NotRoot);
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("l2xdp-bench {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ends a control-plane scenario: its table, its JSON report written to `json`, or its error.
fn finish_json<R: serde::Serialize>(
    name: &str,
    result: Result<R, String>,
    table: fn(&R) -> String,
    json: &std::path::Path,
) -> ExitCode {
    let written = result.and_then(|r| {
        println!("{}", table(&r));
        setup_rate::write_json(json, &r)
    });
    match written {
        Ok(()) => {
            println!("JSON: {}", json.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("l2xdp-bench {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = interrupt::install() {
        eprintln!("l2xdp-bench: signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    match cli.scenario {
        Scenario::Afxdp {
            rounds,
            duration_ms,
            packets,
            sessions,
            gen_cpu,
            worker_cpu,
            batch,
            cases,
            json,
        } => {
            let mut parsed = Vec::new();
            for c in cases.split(',').filter(|c| !c.is_empty()) {
                match afxdp::Case::parse(c) {
                    Some(c) => parsed.push(c),
                    None => {
                        eprintln!(
                            "l2xdp-bench: unknown case {c:?} (known: {})",
                            afxdp::Case::ALL
                                .into_iter()
                                .chain(afxdp::Case::XSKRS)
                                .map(afxdp::Case::name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            let opts = afxdp::Options {
                rounds,
                duration: Duration::from_millis(duration_ms),
                packets,
                sessions,
                gen_cpu,
                worker_cpu: worker_cpu.unwrap_or_else(|| machine::online_cpus() - 1),
                batch,
                cases: parsed,
                json: json.clone(),
                command,
            };
            finish(
                "afxdp",
                afxdp::run(&opts),
                afxdp::table,
                vec![format!("JSON: {}", json.display())],
            )
        }
        Scenario::Demo {
            tunnels,
            sessions,
            seconds,
            pps,
            in_flight,
            config,
            print_config,
            json,
        } => {
            if print_config {
                print!("{}", demo::DEFAULT_CONFIG);
                return ExitCode::SUCCESS;
            }
            let opts = demo::Options {
                tunnels,
                sessions,
                seconds,
                pps,
                in_flight,
                config,
                l2xdpd: lns::sibling_binary("l2xdpd"),
                dataplane: lns::sibling_binary("l2xdp-dataplane"),
                l2xdpctl: lns::sibling_binary("l2xdpctl"),
                scale: demo::Scale::default(),
            };
            match demo::run(&opts) {
                Ok(r) => {
                    if let Some(p) = &json {
                        if let Err(e) = setup_rate::write_json(p, &r) {
                            eprintln!("l2xdp-bench demo: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                    println!("\n{}", demo::verdict(&r));
                    if r.ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(demo::Error::Interrupted) => {
                    eprintln!("\nl2xdp-bench demo: interrupted; everything was removed");
                    ExitCode::from(130)
                }
                Err(e) => {
                    eprintln!("\nFAIL: l2xdp-bench demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Scenario::Throughput {
            rate,
            directions,
            sizes,
            versions,
            sessions,
            sessions_from,
            l2xdpd,
            v3_sessions,
            batch,
        } => {
            let parsed = (|| -> Result<_, String> {
                Ok((
                    Mode::parse(&rate.mode)
                        .ok_or(format!("unknown mode {:?} (xdp, afxdp)", rate.mode))?,
                    parse_list(&directions, "direction", Direction::parse)?,
                    parse_list(&sizes, "size", Size::parse)?,
                    parse_list(&versions, "version", Dut::parse)?,
                    SessionsFrom::parse(&sessions_from).ok_or(format!(
                        "unknown --sessions-from {sessions_from:?} (live, installed)"
                    ))?,
                ))
            })();
            let (mode, directions, sizes, versions, sessions_from) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("l2xdp-bench throughput: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = throughput::Options {
                mode,
                directions,
                sizes,
                versions,
                sessions,
                sessions_from,
                l2xdpd: l2xdpd.unwrap_or_else(lns::default_l2xdpd),
                v3_sessions,
                rounds: rate.rounds,
                trial: Duration::from_millis(rate.trial_ms),
                steps: rate.steps,
                loss: rate.loss_pct / 100.0,
                fixed_rate: rate.fixed_rate,
                retries: rate.retries,
                cpu: rate.cpu.unwrap_or_else(|| machine::online_cpus() - 1),
                dut_cpu: rate.dut_cpu,
                rt_prio: rate.rt_prio,
                out: rate.out.clone(),
                command,
                batch,
                generator: l2xdp_bench::pktgen::Kind::for_this_kernel(),
            };
            finish(
                "throughput",
                throughput::run(&opts),
                throughput::table,
                vec![format!(
                    "JSON and SVG: {}/{}.{{json,svg}}",
                    rate.out.display(),
                    throughput::file_stem(mode)
                )],
            )
        }
        Scenario::Scale {
            rate,
            sessions,
            directions,
            sessions_from,
            l2xdpd,
        } => {
            let parsed = (|| -> Result<_, String> {
                Ok((
                    Mode::parse(&rate.mode)
                        .ok_or(format!("unknown mode {:?} (xdp, afxdp)", rate.mode))?,
                    parse_list(&sessions, "session count", |x| x.parse::<u32>().ok())?,
                    parse_list(&directions, "direction", Direction::parse)?,
                    SessionsFrom::parse(&sessions_from).ok_or(format!(
                        "unknown --sessions-from {sessions_from:?} (live, installed)"
                    ))?,
                ))
            })();
            let (mode, sessions, directions, sessions_from) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("l2xdp-bench scale: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = scale::Options {
                mode,
                sessions,
                directions,
                sessions_from,
                l2xdpd: l2xdpd.unwrap_or_else(lns::default_l2xdpd),
                rounds: rate.rounds,
                trial: Duration::from_millis(rate.trial_ms),
                steps: rate.steps,
                loss: rate.loss_pct / 100.0,
                fixed_rate: rate.fixed_rate,
                retries: rate.retries,
                cpu: rate.cpu.unwrap_or_else(|| machine::online_cpus() - 1),
                dut_cpu: rate.dut_cpu,
                rt_prio: rate.rt_prio,
                out: rate.out.clone(),
                command,
            };
            finish(
                "scale",
                scale::run(&opts),
                scale::table,
                vec![format!(
                    "JSON and SVG: {}/scale.{{json,svg}}",
                    rate.out.display()
                )],
            )
        }
        Scenario::Cost {
            rounds,
            method,
            runs,
            v3_circuits,
            seed,
            duration_ms,
            packets,
            sessions,
            cpu,
            out,
            callgrind_packets,
            callgrind_only,
        } => {
            let Some(method) = cost::Method::parse(&method) else {
                eprintln!("l2xdp-bench cost: --method {method:?}: testrun or forward");
                return ExitCode::from(2);
            };
            let opts = cost::Options {
                method,
                runs,
                v3_circuits,
                seed,
                rounds,
                duration: Duration::from_millis(duration_ms),
                packets,
                sessions,
                cpu: cpu.unwrap_or_else(|| machine::online_cpus() - 1),
                out: out.clone(),
                command,
                callgrind_packets,
                exe: std::env::current_exe().unwrap_or_else(|_| callgrind::default_exe()),
                callgrind_only,
            };
            finish(
                "cost",
                cost::run(&opts),
                cost::table,
                vec![format!("JSON: {}/cost.json", out.display())],
            )
        }
        Scenario::CostWorker {
            case,
            packets,
            sessions,
        } => {
            let Some(c) = callgrind::WorkerCase::parse(&case) else {
                eprintln!("l2xdp-bench cost-worker: unknown case {case}");
                return ExitCode::FAILURE;
            };
            match callgrind::drive(c, packets, sessions) {
                Ok(r) => match serde_json::to_string(&r) {
                    Ok(j) => {
                        println!("{j}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("l2xdp-bench cost-worker: {e}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("l2xdp-bench cost-worker: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Scenario::Latency {
            rates,
            rounds,
            duration_ms,
            packets,
            sessions,
            gen_cpu,
            worker_cpu,
            batch,
            worker_batch,
            cases,
            json,
            svg,
        } => {
            let mut parsed = Vec::new();
            for c in cases.split(',').filter(|c| !c.is_empty()) {
                match latency::Case::parse(c) {
                    Some(c) => parsed.push(c),
                    None => {
                        eprintln!(
                            "l2xdp-bench: unknown case {c:?} (known: {})",
                            latency::Case::ALL.map(latency::Case::name).join(", ")
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            let mut parsed_rates = Vec::new();
            for r in rates.split(',').filter(|r| !r.is_empty()) {
                match r.trim().parse::<u64>() {
                    Ok(r) => parsed_rates.push(r),
                    Err(e) => {
                        eprintln!("l2xdp-bench: rate {r:?}: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let opts = latency::Options {
                rates: parsed_rates,
                rounds,
                duration: Duration::from_millis(duration_ms),
                packets,
                sessions,
                gen_cpu,
                worker_cpu: worker_cpu.unwrap_or_else(|| machine::online_cpus() - 1),
                batch,
                worker_batch,
                cases: parsed,
                json: json.clone(),
                svg: Some(svg.clone()),
                command,
            };
            finish(
                "latency",
                latency::run(&opts),
                latency::table,
                vec![
                    format!("JSON: {}", json.display()),
                    format!("SVG: {}", svg.display()),
                ],
            )
        }
        Scenario::Flood {
            rate,
            sources,
            secs,
            junk,
            tunnels,
            settle_secs,
            l2xdpd,
            log,
            json,
            xdp_budget,
        } => {
            let opts = flood::Options {
                rate,
                sources,
                secs,
                junk,
                tunnels,
                settle: Duration::from_secs(settle_secs),
                l2xdpd: l2xdpd.unwrap_or_else(flood::default_l2xdpd),
                log,
                xdp_budget,
            };
            let result = runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(flood::run(&opts)));
            finish_json("flood", result, flood::table, &json)
        }
        Scenario::SetupRate {
            tunnels,
            sessions,
            in_flight,
            l2xdpd,
            limit_secs,
            failover,
            json,
        } => {
            let opts = setup_rate::Options {
                tunnels,
                sessions,
                in_flight,
                failover,
                l2xdpd: l2xdpd.unwrap_or_else(setup_rate::default_l2xdpd),
                limit: Duration::from_secs(limit_secs),
            };
            let result = runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(setup_rate::run(&opts)));
            finish_json("setup-rate", result, setup_rate::table, &json)
        }
        Scenario::Failover {
            fast_path: FastPath::Xdp,
            tunnels,
            sessions,
            in_flight,
            pps,
            seconds,
            l2xdpd,
            limit_secs,
            json,
            ..
        } => {
            let opts = failover_xdp::Options {
                tunnels,
                sessions,
                in_flight: in_flight.unwrap_or(failover_xdp::IN_FLIGHT),
                pps,
                seconds,
                l2xdpd: l2xdpd.unwrap_or_else(setup_rate::default_l2xdpd),
                dataplane: lns::sibling_binary("l2xdp-dataplane"),
                l2xdpctl: lns::sibling_binary("l2xdpctl"),
                limit: Duration::from_secs(limit_secs),
            };
            match failover_xdp::run(&opts) {
                Ok(r) => {
                    println!("\n{}", failover_xdp::table(&r));
                    if let Err(e) = setup_rate::write_json(&json, &r) {
                        eprintln!("l2xdp-bench failover: {e}");
                        return ExitCode::FAILURE;
                    }
                    println!("JSON: {}", json.display());
                    if r.ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(demo::Error::Interrupted) => {
                    eprintln!("\nl2xdp-bench failover: interrupted; everything was removed");
                    ExitCode::from(130)
                }
                Err(e) => {
                    eprintln!("\nl2xdp-bench failover: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Scenario::Failover {
            fast_path: FastPath::Memory,
            tunnels,
            sessions,
            in_flight,
            l2xdpd,
            limit_secs,
            json,
            lac_failover,
            ..
        } => {
            let opts = failover::Options {
                tunnels,
                sessions,
                in_flight: in_flight.unwrap_or(1000),
                l2xdpd: l2xdpd.unwrap_or_else(setup_rate::default_l2xdpd),
                limit: Duration::from_secs(limit_secs),
                lac_failover,
            };
            let result = runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(failover::run(&opts)));
            finish_json("failover", result, failover::table, &json)
        }
        Scenario::Forward {
            rounds,
            duration_ms,
            packets,
            sessions,
            cpu,
            cases,
            json,
        } => {
            let mut parsed = Vec::new();
            for c in cases.split(',').filter(|c| !c.is_empty()) {
                match Case::parse(c) {
                    Some(c) => parsed.push(c),
                    None => {
                        eprintln!(
                            "l2xdp-bench: unknown case {c:?} (known: {})",
                            Case::ALL.map(Case::name).join(", ")
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            let opts = forward::Options {
                rounds,
                duration: Duration::from_millis(duration_ms),
                packets,
                sessions,
                cpu: cpu.unwrap_or_else(|| machine::online_cpus() - 1),
                cases: parsed,
                json: json.clone(),
                command,
                generator: l2xdp_bench::pktgen::Kind::for_this_kernel(),
            };
            finish(
                "forward",
                forward::run(&opts),
                forward::table,
                vec![format!("JSON: {}", json.display())],
            )
        }
    }
}
