//! `l2xdp-dataplane`: attach the XDP fast path, install static pseudowires, show, detach.
//!
//! ```text
//! l2xdp-dataplane attach --access eth0 --core eth1 [--cpumap] [--udp-port 1701] [--mtu 1500]
//! l2xdp-dataplane static pseudowires.toml
//! l2xdp-dataplane show
//! l2xdp-dataplane detach
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use l2xdp_dataplane::loader::{self, PIN_DIR};
use l2xdp_dataplane::{static_pw, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::prog;
use l2xdp_wire::datapath::{DecapConfig, DropReason};

#[derive(Parser)]
#[command(about = "l2xdp XDP fast path: attach, static pseudowires, show, detach")]
struct Cli {
    /// bpffs directory of the pinned maps and links.
    #[arg(long, default_value = PIN_DIR)]
    pin_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load (re-using pinned maps) and attach in native XDP mode.
    Attach {
        /// Access-side interfaces (L2TP arrives here): decapsulation.
        #[arg(long, required = true)]
        access: Vec<String>,
        /// Core-side interfaces (subscriber traffic arrives here): encapsulation.
        #[arg(long)]
        core: Vec<String>,
        /// Spread one tunnel's sessions over the online CPUs (cpumap, second pass).
        #[arg(long)]
        cpumap: bool,
        /// L2TP UDP port.
        #[arg(long, default_value_t = 1701)]
        udp_port: u16,
        /// Largest outer IP packet to emit.
        #[arg(long, default_value_t = 1500)]
        mtu: u32,
        /// Sessions the maps have room for (when they are created; pinned maps keep their size).
        #[arg(long, default_value_t = loader::DEFAULT_MAX_SESSIONS)]
        max_sessions: u32,
    },
    /// Install the static L2TPv3 pseudowires of a TOML file (attaches the encap program to each
    /// attachment interface).
    Static { config: PathBuf },
    /// Print sessions and counters.
    Show,
    /// Remove the programs and every pin.
    Detach,
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Attach {
            access,
            core,
            cpumap,
            udp_port,
            mtu,
            max_sessions,
        } => {
            let mut ebpf =
                loader::load_sized(Some(&cli.pin_dir), max_sessions).map_err(|e| e.to_string())?;
            let cpus = if cpumap {
                loader::cpumap_cpus().map_err(|e| e.to_string())?
            } else {
                0
            };
            if cpus > 0 {
                loader::setup_cpumap(&mut ebpf, cpus, 2048).map_err(|e| e.to_string())?;
            }
            for i in &access {
                loader::attach_pinned(&mut ebpf, prog::ACCESS, i, &cli.pin_dir)
                    .map_err(|e| e.to_string())?;
            }
            for i in &core {
                loader::attach_pinned(&mut ebpf, prog::CORE, i, &cli.pin_dir)
                    .map_err(|e| e.to_string())?;
            }
            let mut dp = XdpDataPlane::open(&cli.pin_dir).map_err(|e| e.to_string())?;
            dp.set_config(&FastPathConfig {
                decap: DecapConfig {
                    udp_port,
                    ..DecapConfig::default()
                },
                mtu,
                cpumap_cpus: cpus,
            })
            .map_err(|e| e.to_string())?;
            println!(
                "attached: access {access:?}, core {core:?}, pins in {}",
                cli.pin_dir.display()
            );
        }
        Cmd::Static { config } => {
            let text = std::fs::read_to_string(&config)
                .map_err(|e| format!("{}: {e}", config.display()))?;
            let pws = static_pw::parse(&text, &config.display().to_string())
                .map_err(|e| e.to_string())?;
            let mut ebpf = loader::load(Some(&cli.pin_dir)).map_err(|e| e.to_string())?;
            let mut dp = XdpDataPlane::open(&cli.pin_dir).map_err(|e| e.to_string())?;
            for pw in &pws {
                let ifindex = loader::ifindex(&pw.interface).map_err(|e| e.to_string())?;
                dp.install(&pw.entry(ifindex)).map_err(|e| e.to_string())?;
                loader::attach_pinned(&mut ebpf, prog::CORE, &pw.interface, &cli.pin_dir)
                    .map_err(|e| e.to_string())?;
                println!(
                    "pseudowire session {} on {}",
                    pw.session_id.get_ref(),
                    pw.interface
                );
            }
        }
        Cmd::Show => {
            let dp = XdpDataPlane::open(&cli.pin_dir).map_err(|e| e.to_string())?;
            for e in dp.sessions().map_err(|e| e.to_string())? {
                let c = dp.counters(&e.key()).map_err(|e| e.to_string())?;
                println!("{:?} {:?} {:?}", e.key(), e.binding, c);
            }
            let drops = dp.drop_counters().map_err(|e| e.to_string())?;
            for r in DropReason::ALL {
                println!("drop {}: {}", r.name(), drops[r as usize]);
            }
            println!(
                "verdicts: {:?}",
                dp.verdict_counters().map_err(|e| e.to_string())?
            );
        }
        Cmd::Detach => {
            loader::detach(&cli.pin_dir).map_err(|e| e.to_string())?;
            println!("detached, {} removed", cli.pin_dir.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2xdp-dataplane: {e}");
            ExitCode::FAILURE
        }
    }
}
