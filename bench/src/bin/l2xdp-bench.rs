//! l2xdp-bench: benchmark scenarios, one subcommand each (see bench/README.md).
//!
//! `sudo target/release/l2xdp-bench forward [--rounds 5] [--duration-ms 2000] [--sessions 1000]
//!  [--cpu N] [--cases baseline-up,decap-v2,baseline-down,encap-v2] [--json PATH]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use l2xdp_bench::forward::{self, Case};
use l2xdp_bench::{interrupt, machine};

#[derive(Parser)]
#[command(name = "l2xdp-bench", about = "l2xdp benchmark scenarios (root)")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// 64-byte forwarding through the LNS namespace on one core (XDP, live-frame generator),
    /// decap and encap as ratios to a plain XDP_REDIRECT baseline, cases interleaved.
    Forward {
        /// Interleaved rounds (A B C D A B C D ...).
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
        #[arg(long, default_value = "baseline-up,decap-v2,baseline-down,encap-v2")]
        cases: String,
        /// JSON report path.
        #[arg(long, default_value = "target/bench/forward.json")]
        json: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = interrupt::install() {
        eprintln!("l2xdp-bench: signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    match cli.scenario {
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
