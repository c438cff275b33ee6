//! `setup-rate`: how fast an LNS brings sessions up, and what each costs it in memory.
//!
//! An `l2xdpd` process (the LNS under test: CHAP against a users file, an IPCP pool, the
//! in-memory fast path) on loopback, and this project's LAC emulator (the control plane's
//! initiator role, PPP client) in this process. Phase 1 opens `tunnels` control connections;
//! phase 2 opens `sessions` per tunnel with at most `in_flight` being set up at a time (a new
//! one as one reaches IPCP), each running PPP through IPCP. Reported:
//! sessions per second through ICCN and through IPCP, per-session setup latency percentiles
//! (open → IPCP up, hdrhistogram), and the daemon's resident memory per tunnel and per session
//! (VmRSS deltas read from /proc).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::FailoverConfig;
use l2xdp_controlplane::ppp::PppConfig;
use serde::Serialize;

use crate::common::Header;
use crate::lac::Lac;
use crate::lns::{rss_kib, spawn, status_when, LnsFiles, LnsSetup};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Control connections.
    pub tunnels: usize,
    /// Sessions per tunnel.
    pub sessions: usize,
    /// The `l2xdpd` binary.
    pub l2xdpd: PathBuf,
    /// Sessions being set up at once (a new one is opened as one reaches IPCP), as a
    /// real access network's arrival rate is bounded: opening 100,000 at the same instant only
    /// measures queueing.
    pub in_flight: usize,
    /// Gives up after this long (a hung run, not a measurement).
    pub limit: Duration,
    /// RFC 4951 failover (C = 1, D = 1) on both ends: l2xdpd persists every tunnel and session
    /// in its state store (in the temporary directory) before acknowledging it.
    pub failover: bool,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header,
    /// Control connections.
    pub tunnels: usize,
    /// Sessions (all tunnels).
    pub sessions: usize,
    /// Sessions being set up at once.
    pub in_flight: usize,
    /// RFC 4951 failover on: every tunnel and session persisted.
    pub failover: bool,
    /// Seconds from the first SCCRQ to the last tunnel up.
    pub tunnels_secs: f64,
    /// Tunnels per second.
    pub tunnels_per_sec: f64,
    /// Seconds from the first ICRQ to the last ICCN.
    pub iccn_secs: f64,
    /// Sessions per second through ICCN.
    pub iccn_per_sec: f64,
    /// Seconds from the first ICRQ to the last IPCP up.
    pub ipcp_secs: f64,
    /// Sessions per second through IPCP (PPP up with an address).
    pub ipcp_per_sec: f64,
    /// Per-session setup latency, open → IPCP up, microseconds: p50, p99, p99.9, max.
    pub latency_us: [u64; 4],
    /// The daemon's VmRSS after start, after the tunnels, after the sessions (KiB).
    pub rss_kib: [u64; 3],
    /// Resident bytes per tunnel.
    pub bytes_per_tunnel: f64,
    /// Resident bytes per session (PPP included).
    pub bytes_per_session: f64,
    /// Control-message retransmissions seen by the emulator.
    pub retransmissions: u64,
}

/// The `l2xdpd` next to this executable, else the one on `PATH`.
pub use crate::lns::default_l2xdpd;

/// Runs the scenario.
pub async fn run(opts: &Options) -> Result<Report, String> {
    let files = LnsFiles::write(&LnsSetup {
        tunnels: opts.tunnels,
        sessions: opts.sessions,
        recovery_time_ms: opts.failover.then_some(crate::failover::RECOVERY_TIME_MS),
        one_lac_at_once: true,
    })?;
    let mut lns = spawn(&opts.l2xdpd, &files)?;
    // Wait for the daemon to serve (it binds its L2TP sockets first).
    status_when(&mut lns, opts.limit, Duration::from_millis(5), |_| true).await?;
    let rss0 = rss_kib(lns.pid());

    let failover = opts.failover.then_some(FailoverConfig {
        control: true,
        data: true,
        recovery_time_ms: crate::failover::RECOVERY_TIME_MS,
    });
    let mut lac = Lac::start(
        crate::lac::LOOPBACK,
        opts.tunnels,
        opts.sessions,
        failover,
        PppConfig::default(),
    )?;
    let deadline = tokio::time::Instant::now() + opts.limit;

    // Phase 1: tunnels.
    let t0 = Instant::now();
    let tunnels = lac.open_tunnels(files.addr, opts.tunnels, deadline).await?;
    let tunnels_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss1 = rss_kib(lns.pid());

    // Phase 2: sessions, at most `in_flight` being set up at a time, spread over the tunnels.
    let n = opts.tunnels * opts.sessions;
    let up = lac
        .open_sessions(&tunnels, opts.sessions, opts.in_flight, deadline)
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss2 = rss_kib(lns.pid());
    let retransmissions = lac.retransmissions().await?;
    lac.stop().await;
    drop(lns);
    drop(files);

    let iccn_secs = up.iccn_at.duration_since(up.started).as_secs_f64();
    let ipcp_secs = up.ipcp_at.duration_since(up.started).as_secs_f64();
    let hist = &up.latency_us;
    Ok(Report {
        header: Header {
            scenario: "setup-rate",
            mode: "control plane (in-memory fast path)",
            date: crate::machine::utc_now(),
            command: String::new(),
            machine: crate::machine::Machine::probe(),
        },
        tunnels: opts.tunnels,
        sessions: n,
        in_flight: opts.in_flight,
        failover: opts.failover,
        tunnels_secs,
        tunnels_per_sec: opts.tunnels as f64 / tunnels_secs.max(1e-9),
        iccn_secs,
        iccn_per_sec: n as f64 / iccn_secs.max(1e-9),
        ipcp_secs,
        ipcp_per_sec: n as f64 / ipcp_secs.max(1e-9),
        latency_us: [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max(),
        ],
        rss_kib: [rss0, rss1, rss2],
        bytes_per_tunnel: (rss1.saturating_sub(rss0) * 1024) as f64 / opts.tunnels.max(1) as f64,
        bytes_per_session: (rss2.saturating_sub(rss1) * 1024) as f64 / n.max(1) as f64,
        retransmissions,
    })
}

/// A readable table of a report.
pub fn table(r: &Report) -> String {
    format!(
        "setup-rate: {} tunnels x {} sessions/tunnel = {} sessions, {} in flight{} (LNS: l2xdpd, LAC emulator on loopback)\n\
         | phase | time (s) | rate (/s) |\n\
         | --- | ---: | ---: |\n\
         | tunnels up (SCCRQ..SCCCN) | {:.3} | {:.0} |\n\
         | sessions through ICCN | {:.3} | {:.0} |\n\
         | sessions through IPCP (PPP with CHAP) | {:.3} | {:.0} |\n\
         per-session latency open -> IPCP up: p50 {} us, p99 {} us, p99.9 {} us, max {} us\n\
         l2xdpd memory: {:.0} bytes/tunnel, {:.0} bytes/session (VmRSS {} -> {} -> {} KiB); \
         control retransmissions {}",
        r.tunnels,
        r.sessions / r.tunnels.max(1),
        r.sessions,
        r.in_flight,
        if r.failover { ", RFC 4951 failover on (state persisted)" } else { "" },
        r.tunnels_secs,
        r.tunnels_per_sec,
        r.iccn_secs,
        r.iccn_per_sec,
        r.ipcp_secs,
        r.ipcp_per_sec,
        r.latency_us[0],
        r.latency_us[1],
        r.latency_us[2],
        r.latency_us[3],
        r.bytes_per_tunnel,
        r.bytes_per_session,
        r.rss_kib[0],
        r.rss_kib[1],
        r.rss_kib[2],
        r.retransmissions,
    )
}

/// Writes a report as pretty JSON.
pub fn write_json(path: &Path, r: &impl Serialize) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let s = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
    std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}
