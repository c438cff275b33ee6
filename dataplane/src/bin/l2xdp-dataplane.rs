//! `l2xdp-dataplane`: attach the XDP fast path, install static pseudowires, show, detach.
//!
//! ```text
//! l2xdp-dataplane attach --access eth0 --core eth1 [--cpumap] [--udp-port 1701] [--mtu 1500]
//!                        [--mode xdp|afxdp [--cores 0,1] [--batch 64]]
//! l2xdp-dataplane static pseudowires.toml
//! l2xdp-dataplane show [--json]
//! l2xdp-dataplane probe [--iface eth0] [--force adjust_meta=off] [--json]
//! l2xdp-dataplane detach
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig};
use l2xdp_dataplane::loader::{self, PIN_DIR};
use l2xdp_dataplane::probe;
use l2xdp_dataplane::stats::{SessionStats, StatsMaps};
use l2xdp_dataplane::{static_pw, sysctl, DataPlane, FastPathConfig, XdpDataPlane};
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
        /// Do not verify nonzero UDP checksums of arriving L2TP (RFC 1122 §4.1.3.4 says to,
        /// and by default the fast path does): for access networks where they are checked
        /// already (the NIC's receive checksum offload, a trusted aggregation network). The
        /// inner packets keep their own checksums end to end. Costs ~10 % of a decapsulation
        /// (`l2xdp-bench cost`).
        #[arg(long)]
        no_udp_checksum_verify: bool,
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
        /// Native XDP only: refuse instead of falling back to generic (SKB) mode on a
        /// driver without native XDP.
        #[arg(long)]
        native_only: bool,
        /// Treat FEATURE as absent (`adjust_meta=off`: the in-band AF_XDP hand-off, for
        /// drivers without XDP metadata); as L2XDP_FORCE_PROBE.
        #[arg(long)]
        force: Option<String>,
    },
    /// Install the static L2TPv3 pseudowires of a TOML file (attaches the encap program to each
    /// attachment interface).
    Static { config: PathBuf },
    /// Print sessions and counters: tables (sessions, CPUs, drop reasons, the kernel path),
    /// or one JSON document with `--json`.
    Show {
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// What the running kernel offers the fast path (read-only: loads tiny probe programs,
    /// attaches nothing): helpers, map types, test runs, and each `--iface`'s XDP support.
    Probe {
        /// Interfaces to report on (native XDP, redirect target, AF_XDP zero-copy).
        #[arg(long)]
        iface: Vec<String>,
        /// Report FEATURE as absent (`adjust_meta=off,live_frames=off`; as L2XDP_FORCE_PROBE).
        #[arg(long)]
        force: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
            no_udp_checksum_verify,
            max_sessions,
            mode,
            cores,
            batch,
            native_only,
            force,
        } => {
            if cpumap && mode == Mode::Afxdp {
                return Err("--cpumap is for XDP mode (AF_XDP mode spreads by queue)".into());
            }
            if let Some(f) = force {
                probe::parse_force(&f)?;
                // Before anything probes: the loader and the AF_XDP workers read it.
                std::env::set_var(probe::FORCE_ENV, f);
            } else if let Ok(f) = std::env::var(probe::FORCE_ENV) {
                probe::parse_force(&f)?;
            }
            let features = probe::features();
            features.check_fast_path()?;
            let absent: Vec<&str> = features
                .status
                .iter()
                .filter(|(_, st)| !st.yes())
                .map(|(f, _)| f.name())
                .collect();
            println!(
                "kernel {}: the fast path loads; AF_XDP hand-off: {}; absent: {} (`l2xdp-dataplane probe` for details)",
                features.kernel,
                features.xsk_handoff().describe(),
                if absent.is_empty() { "nothing".to_string() } else { absent.join(", ") }
            );
            if mode == Mode::Afxdp && !features.has(probe::Feature::Xskmap) {
                return Err(format!(
                    "AF_XDP mode: kernel {} has no XSKMAP ({})",
                    features.kernel,
                    features.status[&probe::Feature::Xskmap].detail()
                ));
            }
            let attach_mode = if native_only {
                loader::AttachMode::Native
            } else {
                loader::AttachMode::NativeOrGeneric
            };
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
            let mut generic = vec![];
            for (p, i) in access
                .iter()
                .map(|i| (prog::ACCESS, i))
                .chain(core.iter().map(|i| (prog::CORE, i)))
            {
                let how = loader::attach_pinned_mode(&mut ebpf, p, i, &cli.pin_dir, attach_mode)
                    .map_err(|e| e.to_string())?;
                if how == loader::Attached::Generic {
                    generic.push(i.clone());
                }
            }
            for w in sysctl::attach_warnings(&access, &core) {
                println!("warning: {w}");
            }
            if !generic.is_empty() {
                println!(
                    "warning: native XDP refused on {generic:?}: attached in generic (SKB) mode \
                     (forwards at the kernel stack's speed; --native-only refuses instead)"
                );
            }
            let mut dp = XdpDataPlane::open(&cli.pin_dir).map_err(|e| e.to_string())?;
            dp.set_config(&FastPathConfig {
                decap: DecapConfig {
                    udp_port,
                    verify_udp_checksum: !no_udp_checksum_verify,
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
                    "AF_XDP workers on cores {:?} (zero-copy: {:?}, hand-off: {}); SIGINT/SIGTERM stops them",
                    cfg.cores,
                    rt.zero_copy,
                    loader::xsk_handoff().describe()
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
                        verify_udp_checksum: !no_udp_checksum_verify,
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
            let mut circuits: Vec<String> = pws.iter().map(|p| p.interface.clone()).collect();
            circuits.sort();
            circuits.dedup();
            for w in sysctl::attach_warnings(&[], &circuits) {
                println!("warning: {w}");
            }
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
        Cmd::Show { json } => {
            let v = show(&cli.pin_dir)?;
            if json {
                println!("{v}");
            } else {
                print_show(&v);
            }
        }
        Cmd::Probe { iface, force, json } => {
            let forced = match force.or_else(|| std::env::var(probe::FORCE_ENV).ok()) {
                Some(s) => probe::parse_force(&s)?,
                None => vec![],
            };
            let f = probe::Features::detect_with(&forced);
            let ifaces = iface
                .iter()
                .map(|i| probe::Interface::probe(i))
                .collect::<Result<Vec<_>, _>>()?;
            if json {
                println!("{}", probe_json(&f, &ifaces));
            } else {
                print_probe(&f, &ifaces);
            }
        }
        Cmd::Detach => {
            loader::detach(&cli.pin_dir).map_err(|e| e.to_string())?;
            println!("detached, {} removed", cli.pin_dir.display());
        }
    }
    Ok(())
}

/// The sessions and counters as one JSON document: `pins`, `sessions` (each with its ids,
/// binding and per-session counters, as the slot holds them) and `snapshot` (the counters
/// through `stats`, as `l2xdpctl show stats` and the metrics endpoint read them: in AF_XDP
/// mode the workers' drops are in the same reasons and CPUs).
fn show(pin_dir: &std::path::Path) -> Result<serde_json::Value, String> {
    let snap = StatsMaps::open(pin_dir)
        .and_then(|m| m.snapshot(true))
        .map_err(|e| e.to_string())?;
    let dp = XdpDataPlane::open(pin_dir).map_err(|e| e.to_string())?;
    let mut sessions = vec![];
    for e in dp.sessions().map_err(|e| e.to_string())? {
        let st = SessionStats::new(e.key(), Default::default());
        // per_session is sorted by these ids (StatsMaps::snapshot).
        let c = snap
            .per_session
            .binary_search_by_key(&(st.version, st.tunnel, st.session), |s| {
                (s.version, s.tunnel, s.session)
            })
            .map_or(st, |i| snap.per_session[i]);
        sessions.push(serde_json::json!({
            "version": c.version,
            "tunnel": c.tunnel,
            "session": c.session,
            "peer": e.session.peer_ids,
            "binding": e.binding,
            "upstream": c.upstream,
            "downstream": c.downstream,
        }));
    }
    let config = dp.config().map_err(|e| e.to_string())?;
    let gateway4 = config.gateway4;
    let gateway = (gateway4 != 0).then(|| std::net::Ipv4Addr::from(gateway4.to_ne_bytes()));
    let budget = (config.sccrq_budget != 0).then_some(config.sccrq_budget);
    Ok(serde_json::json!({
        "pins": pin_dir,
        "gateway": gateway,
        "sccrq_budget": budget,
        "sessions": sessions,
        "snapshot": snap,
    }))
}

/// A JSON value as a table cell: strings unquoted, null as "-".
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn binding_cell(b: &serde_json::Value) -> String {
    if let Some(s) = b.get("Subscriber") {
        let mut parts: Vec<String> = s["ipv4"].as_str().map(String::from).into_iter().collect();
        for p in s["ipv6"].as_array().map_or(&[][..], Vec::as_slice) {
            parts.push(format!("{}/{}", cell(&p["addr"]), cell(&p["len"])));
        }
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(",")
        }
    } else if let Some(c) = b.get("AttachmentCircuit") {
        format!("ifindex {}", cell(&c["ifindex"]))
    } else {
        cell(b)
    }
}

/// `show`'s tables (the layout of `l2xdpctl show stats`, without rates).
fn print_show(v: &serde_json::Value) {
    use l2xdp_dataplane::api::table::render;
    let arr = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
    let snap = &v["snapshot"];
    println!(
        "fast path under {}: {} sessions; gateway {} ({} echo requests answered); SCCRQ budget {} /s ({} dropped over it)",
        cell(&v["pins"]),
        cell(&snap["sessions"]),
        cell(&v["gateway"]),
        cell(&snap["gateway_echo"]),
        cell(&v["sccrq_budget"]),
        cell(&snap["sccrq_over_budget"])
    );
    println!();
    let rows: Vec<Vec<String>> = arr(&v["sessions"])
        .iter()
        .map(|s| {
            vec![
                format!(
                    "v{} {}/{}",
                    cell(&s["version"]),
                    cell(&s["tunnel"]),
                    cell(&s["session"])
                ),
                binding_cell(&s["binding"]),
                cell(&s["upstream"]["packets"]),
                cell(&s["upstream"]["bytes"]),
                cell(&s["downstream"]["packets"]),
                cell(&s["downstream"]["bytes"]),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &[
                "SESSION",
                "BINDING",
                "UP-PKTS",
                "UP-BYTES",
                "DOWN-PKTS",
                "DOWN-BYTES"
            ],
            &rows
        )
    );
    println!();
    let core = |name: String, c: &serde_json::Value| {
        vec![
            name,
            cell(&c["upstream"]["packets"]),
            cell(&c["upstream"]["bytes"]),
            cell(&c["downstream"]["packets"]),
            cell(&c["downstream"]["bytes"]),
            cell(&c["to_control"]),
            cell(&c["to_kernel"]),
            cell(&c["dropped"]),
            cell(&c["unsent"]),
        ]
    };
    let mut rows: Vec<Vec<String>> = arr(&snap["cpus"])
        .iter()
        .enumerate()
        .map(|(i, c)| core(format!("cpu{i}"), c))
        .collect();
    rows.push(core("all".into(), &snap["total"]));
    print!(
        "{}",
        render(
            &[
                "CPU",
                "UP-PKTS",
                "UP-BYTES",
                "DOWN-PKTS",
                "DOWN-BYTES",
                "TO-CONTROL",
                "TO-KERNEL",
                "DROPPED",
                "UNSENT",
            ],
            &rows
        )
    );
    println!();
    let rows: Vec<Vec<String>> = arr(&snap["drops"])
        .iter()
        .map(|d| vec![cell(&d["reason"]), cell(&d["packets"])])
        .collect();
    print!("{}", render(&["DROP-REASON", "PACKETS"], &rows));
    println!();
    let rows: Vec<Vec<String>> = arr(&snap["kernel_path"])
        .iter()
        .map(|k| {
            vec![
                cell(&k["direction"]),
                cell(&k["reason"]),
                cell(&k["packets"]),
            ]
        })
        .collect();
    print!("{}", render(&["KERNEL-PATH", "REASON", "PACKETS"], &rows));
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn print_probe(f: &probe::Features, ifaces: &[probe::Interface]) {
    let verdict = match f.check_fast_path() {
        Ok(()) => "the fast path loads".to_string(),
        Err(e) => format!("the fast path CANNOT load: {e}"),
    };
    println!(
        "kernel {} (minimum {}.{}): {verdict}",
        f.kernel,
        probe::MIN_KERNEL.0,
        probe::MIN_KERNEL.1
    );
    println!();
    println!(
        "{:<15} {:<10} {:<42} {:<52} DETAIL",
        "FEATURE", "STATUS", "WHAT", "USED FOR"
    );
    for (feat, st) in &f.status {
        let mut detail = st.detail().replace('\n', " ");
        if detail.len() > 90 {
            detail.truncate(90);
            detail.push('…');
        }
        println!(
            "{:<15} {:<10} {:<42} {:<52} {detail}",
            feat.name(),
            st.word(),
            feat.what(),
            feat.used_for(),
        );
    }
    println!();
    println!("AF_XDP hand-off:  {}", f.xsk_handoff().describe());
    println!(
        "bench generator:  {}",
        if f.has(probe::Feature::LiveFrames) {
            "live-frame test runs"
        } else {
            "AF_PACKET (live frames unavailable)"
        }
    );
    if !ifaces.is_empty() {
        println!();
        println!(
            "{:<16} {:>7} {:<12} {:<11} {:<16} {:<17}",
            "INTERFACE", "IFINDEX", "DRIVER", "NATIVE XDP", "REDIRECT TARGET", "AF_XDP ZERO-COPY"
        );
        for i in ifaces {
            println!(
                "{:<16} {:>7} {:<12} {:<11} {:<16} {:<17}",
                i.name,
                i.ifindex,
                i.driver.as_deref().unwrap_or("?"),
                yes_no(i.native()),
                yes_no(i.redirect_target()),
                yes_no(i.zero_copy()),
            );
        }
        if ifaces.iter().any(|i| i.xdp.is_none()) {
            println!("(unknown: the kernel has no netdev xdp-features (6.3+); attach tries native XDP and falls back to generic)");
        }
    }
}

fn probe_json(f: &probe::Features, ifaces: &[probe::Interface]) -> serde_json::Value {
    let features: serde_json::Map<String, serde_json::Value> = f
        .status
        .iter()
        .map(|(feat, st)| {
            (
                feat.name().to_string(),
                serde_json::json!({
                    "status": st.word(),
                    "detail": st.detail(),
                    "required": feat.required(),
                    "what": feat.what(),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "kernel": f.kernel,
        "min_kernel": format!("{}.{}", probe::MIN_KERNEL.0, probe::MIN_KERNEL.1),
        "fast_path_loads": f.check_fast_path().is_ok(),
        "fast_path_error": f.check_fast_path().err(),
        "xsk_handoff": match f.xsk_handoff() {
            probe::XskHandoff::Meta => "meta",
            probe::XskHandoff::Inline => "inline",
        },
        "live_frames": f.has(probe::Feature::LiveFrames),
        "features": features,
        "interfaces": ifaces.iter().map(|i| serde_json::json!({
            "name": i.name,
            "ifindex": i.ifindex,
            "driver": i.driver,
            "native_xdp": i.native(),
            "redirect_target": i.redirect_target(),
            "zero_copy": i.zero_copy(),
            "xdp_features": i.xdp.map(|x| x.xdp),
        })).collect::<Vec<_>>(),
    })
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
