//! `l2xdp-dataplane`: attach the XDP fast path, install static pseudowires, show, detach.
//!
//! ```text
//! l2xdp-dataplane attach --access eth0 --core eth1 [--cpumap] [--udp-port 1701] [--mtu 1500]
//!                        [--mode xdp|afxdp [--cores 0,1] [--batch 64]]
//! l2xdp-dataplane static pseudowires.toml
//! l2xdp-dataplane show
//! l2xdp-dataplane detach
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig};
use l2xdp_dataplane::loader::{self, PIN_DIR};
use l2xdp_dataplane::stats::{SessionStats, StatsMaps};
use l2xdp_dataplane::{static_pw, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::prog;
use l2xdp_wire::datapath::DecapConfig;

#[derive(Parser)]
#[command(about = "l2xdp XDP fast path: attach, static pseudowires, show, detach")]
struct Cli {
    /// bpffs directory of the pinned maps and links.
    #[arg(long, default_value = PIN_DIR)]
    pin_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where forwarded packets are processed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// In the kernel, by the XDP programs.
    Xdp,
    /// By per-core AF_XDP workers in this process (it stays in the foreground until SIGINT or
    /// SIGTERM); the XDP programs classify and hand forwarded packets over.
    Afxdp,
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
        /// Fast path mode.
        #[arg(long, value_enum, default_value = "xdp")]
        mode: Mode,
        /// AF_XDP mode: one worker per core (worker i on queue i of every interface).
        #[arg(long, value_delimiter = ',', default_value = "0")]
        cores: Vec<usize>,
        /// AF_XDP mode: frames taken per socket and pass.
        #[arg(long, default_value_t = 64)]
        batch: u32,
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
            mode,
            cores,
            batch,
        } => {
            if cpumap && mode == Mode::Afxdp {
                return Err("--cpumap is for XDP mode (AF_XDP mode spreads by queue)".into());
            }
            // Signals are taken by sigwait below: blocked before any thread starts.
            let signals = (mode == Mode::Afxdp).then(block_signals);
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
                afxdp: mode == Mode::Afxdp,
            })
            .map_err(|e| e.to_string())?;
            println!(
                "attached: access {access:?}, core {core:?}, pins in {}",
                cli.pin_dir.display()
            );
            if mode == Mode::Afxdp {
                let cfg = AfXdpConfig {
                    interfaces: access.iter().chain(core.iter()).cloned().collect(),
                    cores,
                    batch,
                    ..AfXdpConfig::default()
                };
                let rt = AfXdp::start(&cli.pin_dir, &cfg).map_err(|e| e.to_string())?;
                println!(
                    "AF_XDP workers on cores {:?} (zero-copy: {:?}); SIGINT/SIGTERM stops them",
                    cfg.cores, rt.zero_copy
                );
                if let Some(s) = &signals {
                    wait_for(s);
                }
                drop(rt);
                // Back to XDP mode: the programs forward again in the kernel.
                let mut dp = XdpDataPlane::open(&cli.pin_dir).map_err(|e| e.to_string())?;
                dp.set_config(&FastPathConfig {
                    decap: DecapConfig {
                        udp_port,
                        ..DecapConfig::default()
                    },
                    mtu,
                    cpumap_cpus: cpus,
                    afxdp: false,
                })
                .map_err(|e| e.to_string())?;
                println!("AF_XDP workers stopped; XDP mode");
            }
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
            // The counters through `stats` (as l2xdpctl and the metrics endpoint read them):
            // in AF_XDP mode the workers' drops are in the same reasons and CPUs.
            let snap = StatsMaps::open(&cli.pin_dir)
                .and_then(|m| m.snapshot(true))
                .map_err(|e| e.to_string())?;
            let dp = XdpDataPlane::open(&cli.pin_dir).map_err(|e| e.to_string())?;
            for e in dp.sessions().map_err(|e| e.to_string())? {
                let st = SessionStats::new(e.key(), Default::default());
                let c = snap
                    .per_session
                    .iter()
                    .find(|s| {
                        (s.version, s.tunnel, s.session) == (st.version, st.tunnel, st.session)
                    })
                    .map_or((Default::default(), Default::default()), |s| {
                        (s.upstream, s.downstream)
                    });
                println!(
                    "{:?} {:?} upstream {:?} downstream {:?}",
                    e.key(),
                    e.binding,
                    c.0,
                    c.1
                );
            }
            for (i, c) in snap.cpus.iter().enumerate() {
                println!("cpu {i}: {c:?}");
            }
            println!("total: {:?}", snap.total);
            for d in &snap.drops {
                println!("drop {}: {}", d.reason, d.packets);
            }
        }
        Cmd::Detach => {
            loader::detach(&cli.pin_dir).map_err(|e| e.to_string())?;
            println!("detached, {} removed", cli.pin_dir.display());
        }
    }
    Ok(())
}

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts later).
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset operations on a local set; pthread_sigmask on the calling thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the blocked signals.
fn wait_for(set: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: a valid set and output.
    unsafe { libc::sigwait(set, &mut sig) };
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
