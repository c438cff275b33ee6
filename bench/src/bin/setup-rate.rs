//! `setup-rate [--tunnels T] [--sessions S] [--json PATH]`: see `l2xdp_bench::setup_rate`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use l2xdp_bench::setup_rate::{self, Options};

#[derive(Debug, Parser)]
#[command(
    name = "setup-rate",
    about = "Session set-up rate and memory of l2xdpd"
)]
struct Args {
    /// Control connections.
    #[arg(long, default_value_t = 100)]
    tunnels: usize,
    /// Sessions per tunnel.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Sessions being set up at once.
    #[arg(long, default_value_t = 1000)]
    in_flight: usize,
    /// The l2xdpd binary (default: next to this one).
    #[arg(long)]
    l2xdpd: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench/setup-rate.json")]
    json: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    limit_secs: u64,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let opts = Options {
        tunnels: a.tunnels,
        sessions: a.sessions,
        in_flight: a.in_flight,
        l2xdpd: a.l2xdpd.unwrap_or_else(setup_rate::default_l2xdpd),
        limit: Duration::from_secs(a.limit_secs),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("setup-rate: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(setup_rate::run(&opts)) {
        Ok(r) => {
            println!("{}", setup_rate::table(&r));
            if let Err(e) = setup_rate::write_json(&a.json, &r) {
                eprintln!("setup-rate: {e}");
                return ExitCode::from(1);
            }
            println!("JSON: {}", a.json.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("setup-rate: {e}");
            ExitCode::from(1)
        }
    }
}
