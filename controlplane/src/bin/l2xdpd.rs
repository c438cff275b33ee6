//! `l2xdpd`: the l2xdp control plane. Runs in the foreground, logs with `tracing` (text, or
//! JSON with `--log-json`; level from `RUST_LOG`, default info), and serves the operator's
//! control socket when the configuration names one, and the Prometheus endpoint when it has
//! a `[metrics]` section. SIGHUP reloads the configuration (as `l2xdpctl config reload`).
//! SIGTERM hands off to the next l2xdpd (nothing torn down: it resumes every tunnel); SIGINT
//! tears down (a StopCCN to every peer) and exits (`daemon/stop.rs`).
//!
//! `l2xdpd --config /etc/l2xdp/l2xdpd.toml` — `l2xdpd --check --config FILE` only checks the
//! configuration (exit 0 when valid, 1 with the file, line and field otherwise).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;

use l2xdp_controlplane::daemon::{self, DaemonConfig, Running};
use l2xdp_controlplane::driver::Driver;
use l2xdp_controlplane::{control, metrics};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "l2xdpd", version, about = "The l2xdp L2TP control plane")]
struct Args {
    /// The configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn main() -> ExitCode {
    l2xdp_controlplane::driver::without_thread_cache();
    l2xdp_controlplane::driver::one_allocator_arena();
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }

    let cfg = match DaemonConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("l2xdpd: {e}");
            return ExitCode::from(1);
        }
    };
    if args.check {
        if let Err(e) = cfg.credentials() {
            eprintln!("l2xdpd: {e}");
            return ExitCode::from(1);
        }
        if let Some(g) = &cfg.daemon.control_socket_group {
            if control::group_id(g).is_none() {
                eprintln!(
                    "l2xdpd: {}: daemon.control_socket_group: no group named {g:?}",
                    args.config.display()
                );
                return ExitCode::from(1);
            }
        }
        println!("{}: ok", args.config.display());
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("l2xdpd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args.config, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l2xdpd: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(path: PathBuf, cfg: DaemonConfig) -> Result<(), Box<dyn std::error::Error>> {
    let sockets = daemon::sockets(&cfg)?;
    let dataplane = daemon::dataplane(&cfg)?;
    let mut node = daemon::node(&cfg, dataplane)?;
    let mut recovered = false;
    if node.has_store() {
        // RFC 4951: take over the tunnels and sessions of the previous run (the fast path
        // kept forwarding meanwhile).
        let r = node.recover(std::time::Instant::now())?;
        tracing::info!(
            recovering = r.recovering.len(),
            cleared = r.cleared.len(),
            sessions = r.sessions,
            "recovery started"
        );
        recovered = r.sessions > 0 || !r.recovering.is_empty();
        // The loaded state is garbage now: give its memory back to the system (glibc keeps
        // freed heap otherwise; a restart would cost far more memory than a first start).
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: no arguments beyond the padding; only releases free heap memory.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    // Signals are caught before the control socket exists: whoever sees it ready (systemd, a
    // test, an operator) may stop l2xdpd at once, and SIGTERM must then be a clean stop.
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Bound before anything runs: a control socket path that is taken (a file, a running
    // l2xdpd) or a metrics address in use fails the start-up.
    let radius = match &cfg.radius {
        Some(r) => {
            // Request Authenticators from a CSPRNG of their own, keyed from the OS as the
            // node's.
            let random = l2xdp_controlplane::random::Random::from_os()?;
            let client = l2xdp_controlplane::aaa::RadiusClient::new(r.client_config(), random)
                .await
                .map_err(|e| format!("radius: {e}"))?;
            for s in client.servers() {
                tracing::info!(auth = %s.auth, acct = %s.acct, priority = s.priority, "RADIUS server");
            }
            Some(client)
        }
        None => None,
    };
    let metrics = match &cfg.metrics {
        Some(m) => {
            let mc = metrics::MetricsConfig {
                radius: radius.clone(),
                listen: m.listen,
                per_session: m.per_session,
                pin_dir: (cfg.dataplane.mode == daemon::DataplaneMode::Xdp)
                    .then(|| cfg.dataplane.pin_dir.clone()),
            };
            let l = metrics::bind(&mc)
                .await
                .map_err(|e| format!("metrics: cannot listen on {}: {e}", m.listen))?;
            Some((l, mc))
        }
        None => None,
    };
    // The control socket last: once it answers, l2xdpd is ready (the metrics port is bound).
    let control = match &cfg.daemon.control_socket {
        Some(p) => Some(control::bind(
            p,
            cfg.daemon.control_socket_group.as_deref(),
        )?),
        None => None,
    };
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut driver = Driver::new(node, sockets)?.with_events(events_tx);
    if let Some(client) = radius.clone() {
        driver = driver.with_radius(client);
    }
    for a in driver.local_addrs() {
        tracing::info!(%a, "listening");
    }
    let (handle, task) = driver.spawn();
    // The initiator role opens its tunnels and sessions, unless it took them back from its
    // failover state; then the node's events are only logged (by the node itself).
    let init = cfg.initiator.clone().filter(|_| !recovered);
    let h = handle.clone();
    tokio::spawn(async move {
        if let Some(init) = init {
            match daemon::initiate(&h, &mut events, &init).await {
                Ok(t) => tracing::info!(tunnels = t.len(), sessions = init.sessions, "initiated"),
                Err(e) => tracing::error!(%e, "initiator"),
            }
        }
        while events.recv().await.is_some() {}
    });
    let running = Arc::new(Running::new(path, cfg.clone()));
    if let Some(listener) = control {
        let ctx = control::Context {
            handle: handle.clone(),
            running: Some(running.clone()),
        };
        tracing::info!(path = %listener.path().display(), "control socket");
        tokio::spawn(control::serve_listener(
            listener,
            ctx,
            control::Limits::default(),
        ));
    }
    if let Some((listener, mc)) = metrics {
        tracing::info!(addr = %mc.listen, "metrics");
        tokio::spawn(metrics::serve(listener, mc, handle.clone()));
    }
    loop {
        tokio::select! {
            _ = int.recv() => {
                // A clean teardown: every peer gets a StopCCN (daemon/stop.rs).
                tracing::info!("SIGINT: tearing every tunnel down");
                match daemon::teardown(&handle, daemon::TEARDOWN_LIMIT).await {
                    Ok((closed, left)) => tracing::info!(closed, unacknowledged = left, "torn down"),
                    Err(e) => tracing::error!(%e, "teardown"),
                }
                break;
            }
            _ = term.recv() => {
                // A hand-off: nothing torn down, the next l2xdpd resumes every tunnel.
                tracing::info!("SIGTERM: handing off (tunnels and sessions kept for the next l2xdpd)");
                break;
            }
            _ = hup.recv() => match running.reload(&handle).await {
                Ok(r) => tracing::info!(changed = ?r.changed, "SIGHUP: configuration reloaded"),
                Err(e) => tracing::error!(%e, "SIGHUP: configuration not reloaded"),
            },
        }
    }
    // After SIGTERM, sessions stay in the fast path and every record is committed (the store
    // is committed before each datagram leaves): a restarted l2xdpd resumes them.
    handle.shutdown().await;
    let _ = task.await;
    if let Some(p) = &cfg.daemon.control_socket {
        // Ours: bind refused anything but a socket at this path.
        if std::fs::symlink_metadata(p)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}
