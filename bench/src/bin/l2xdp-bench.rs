//! l2xdp-bench: benchmark scenarios, one subcommand each (see bench/README.md).
//!
//! `sudo target/release/l2xdp-bench forward [--rounds 5] [--duration-ms 2000] [--sessions 1000]
//!  [--cpu N] [--cases swapmac,baseline-up,decap-v2,baseline-down,encap-v2] [--json PATH]`
//! `sudo target/release/l2xdp-bench afxdp [--rounds 5] [--duration-ms 2000] [--sessions 1000]
//!  [--gen-cpu 0] [--worker-cpu 1] [--batch 64] [--cases raw-up,afxdp-decap-v2,raw-down,afxdp-encap-v2]
//!  [--json PATH]`
//! `sudo target/release/l2xdp-bench latency [--rates 10000,100000,500000] [--rounds 3]
//!  [--duration-ms 1000] [--sessions 1000] [--gen-cpu 0] [--worker-cpu 1] [--batch 8]
//!  [--cases xdp-redirect,xdp,raw-afxdp,afxdp] [--json PATH] [--svg PATH]`
//! `target/release/l2xdp-bench setup-rate [--tunnels 100] [--sessions 10] [--in-flight 1000]
//!  [--json PATH]`
//! `target/release/l2xdp-bench failover [--tunnels 1000] [--sessions 100] [--in-flight 1000]
//!  [--json PATH]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use l2xdp_bench::forward::{self, Case};
use l2xdp_bench::{afxdp, failover, latency, setup_rate};
use l2xdp_bench::{interrupt, machine};

#[derive(Parser)]
#[command(name = "l2xdp-bench", about = "l2xdp benchmark scenarios (root)")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
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
        /// Comma-separated cases, in interleaving order.
        #[arg(long, default_value = "raw-up,afxdp-decap-v2,raw-down,afxdp-encap-v2")]
        cases: String,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/afxdp.json")]
        json: PathBuf,
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
        /// JSON report path.
        #[arg(long, default_value = "target/bench/setup-rate.json")]
        json: PathBuf,
    },
    /// kill -9 of an `l2xdpd` process with RFC 4951 failover and its restart, with
    /// `tunnels × sessions` PPP sessions up (LAC emulator on loopback, in-memory fast path):
    /// time to the control socket, to every tunnel recovered, the state restore, VmRSS, and
    /// that the emulator lost no tunnel or session.
    Failover {
        /// Control connections.
        #[arg(long, default_value_t = 1000)]
        tunnels: usize,
        /// Sessions per tunnel.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Sessions being set up at once during the bring-up.
        #[arg(long, default_value_t = 1000)]
        in_flight: usize,
        /// The l2xdpd binary (default: next to this one).
        #[arg(long)]
        l2xdpd: Option<PathBuf>,
        /// Give up on any one step after this many seconds.
        #[arg(long, default_value_t = 600)]
        limit_secs: u64,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/failover.json")]
        json: PathBuf,
    },
}

/// A runtime for the control-plane scenarios: one worker for the LAC emulator's driver.
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
                            afxdp::Case::ALL.map(afxdp::Case::name).join(", ")
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
            match afxdp::run(&opts) {
                Ok(r) => {
                    print!("{}", afxdp::table(&r));
                    println!("JSON: {}", json.display());
                    ExitCode::SUCCESS
                }
                Err(forward::Error::NotRoot) => {
                    eprintln!("l2xdp-bench afxdp: {}", forward::Error::NotRoot);
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("l2xdp-bench afxdp: {e}");
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
            match latency::run(&opts) {
                Ok(r) => {
                    print!("{}", latency::table(&r));
                    println!("JSON: {}", json.display());
                    println!("SVG: {}", svg.display());
                    ExitCode::SUCCESS
                }
                Err(forward::Error::NotRoot) => {
                    eprintln!("l2xdp-bench latency: {}", forward::Error::NotRoot);
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("l2xdp-bench latency: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Scenario::SetupRate {
            tunnels,
            sessions,
            in_flight,
            l2xdpd,
            limit_secs,
            json,
        } => {
            let opts = setup_rate::Options {
                tunnels,
                sessions,
                in_flight,
                l2xdpd: l2xdpd.unwrap_or_else(setup_rate::default_l2xdpd),
                limit: Duration::from_secs(limit_secs),
            };
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("l2xdp-bench setup-rate: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(setup_rate::run(&opts)) {
                Ok(r) => {
                    println!("{}", setup_rate::table(&r));
                    if let Err(e) = setup_rate::write_json(&json, &r) {
                        eprintln!("l2xdp-bench setup-rate: {e}");
                        return ExitCode::FAILURE;
                    }
                    println!("JSON: {}", json.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("l2xdp-bench setup-rate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Scenario::Failover {
            tunnels,
            sessions,
            in_flight,
            l2xdpd,
            limit_secs,
            json,
        } => {
            let opts = failover::Options {
                tunnels,
                sessions,
                in_flight,
                l2xdpd: l2xdpd.unwrap_or_else(setup_rate::default_l2xdpd),
                limit: Duration::from_secs(limit_secs),
            };
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("l2xdp-bench failover: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(failover::run(&opts)) {
                Ok(r) => {
                    println!("{}", failover::table(&r));
                    if let Err(e) = setup_rate::write_json(&json, &r) {
                        eprintln!("l2xdp-bench failover: {e}");
                        return ExitCode::FAILURE;
                    }
                    println!("JSON: {}", json.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("l2xdp-bench failover: {e}");
                    ExitCode::FAILURE
                }
            }
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
            };
            match forward::run(&opts) {
                Ok(r) => {
                    print!("{}", forward::table(&r));
                    println!("JSON: {}", json.display());
                    ExitCode::SUCCESS
                }
                Err(forward::Error::NotRoot) => {
                    eprintln!("l2xdp-bench forward: {}", forward::Error::NotRoot);
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("l2xdp-bench forward: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
