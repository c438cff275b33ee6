//! `failover`: how fast a `kill -9`ed `l2xdpd` comes back with RFC 4951 failover, and that
//! nobody noticed.
//!
//! The LNS and LAC of [`crate::setup_rate`] ([`crate::lns`], [`crate::lac`]): an `l2xdpd`
//! process on loopback with the in-memory fast path — this mode (`--fast-path memory`)
//! measures the control plane; the data packets lost while it is gone are counted by
//! `--fast-path xdp` ([`crate::failover_xdp`]) — with a Failover Capability
//! (C = 1, D = 1, Recovery Time [`RECOVERY_TIME_MS`]) and its state in `[daemon] state_dir`
//! in a temporary directory, and a control socket. The LAC emulator has the same Failover
//! Capability, and its subscribers send LCP Echo-Requests every [`LAC_ECHO_INTERVAL`]
//! ([`LAC_ECHO_FAILURES`] unanswered take a link down), so an outage below
//! `LAC_ECHO_INTERVAL × (LAC_ECHO_FAILURES − 1)` kills no session by keepalive.
//!
//! Steps: start l2xdpd (time to its control socket answering, with an empty state dir); bring
//! up `tunnels × sessions` PPP sessions (as `setup-rate`); wait until l2xdpd reports every
//! session PPP up and installed and its state store is quiet; `kill -9`; start a new l2xdpd
//! with the same configuration (address, state dir). Measured from the new process's start:
//! its control socket answering `status` (it restores the state before it serves anything),
//! and its `l2tp.failover["tunnel recovered"]` counter reaching `tunnels` (polled every
//! [`STATUS_POLL`]). The restore's own time is estimated as the difference between the
//! restart's time to the control socket and the first start's (same binary, configuration
//! and users file; only the state to load differs). From the emulator's view: no tunnel or
//! session went down, no recovery failed, every session is still there with PPP up. Also
//! l2xdpd's VmRSS before the kill and after the recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::failover::{RedbStore, StateStore};
use l2xdp_controlplane::l2tp::FailoverConfig;
use l2xdp_controlplane::node::NodeEvent;
use l2xdp_controlplane::ppp::PppConfig;
use serde::Serialize;
use serde_json::Value;

use crate::common::Header;
use crate::lac::Lac;
use crate::lns::{rss_kib, spawn, status_when, LnsFiles, LnsSetup};

/// RFC 4951 Recovery Time of both ends: comfortably above the outage (kill, restart, restore
/// of 100,000 sessions), so that the LAC waits for the recovery rather than clearing.
pub const RECOVERY_TIME_MS: u32 = 60_000;
/// The emulated subscribers' LCP Echo-Request interval.
pub const LAC_ECHO_INTERVAL: Duration = Duration::from_secs(30);
/// Unanswered Echo-Requests before a subscriber's link goes down: with
/// [`LAC_ECHO_INTERVAL`], an outage shorter than 90 s cannot take a session down.
pub const LAC_ECHO_FAILURES: u32 = 4;
/// The LCP echo interval of both ends for `sessions` sessions: [`LAC_ECHO_INTERVAL`] up to
/// 150,000 sessions, then one echo per 5,000 sessions a second each way (at 1,000,000
/// sessions, 200 s: 30 s would be 33,000 echoes a second each way, more than the two cores
/// of the machine these figures come from answer while setting sessions up).
pub fn echo_interval(sessions: usize) -> Duration {
    LAC_ECHO_INTERVAL.max(Duration::from_secs((sessions / 5_000) as u64))
}

/// How often l2xdpd's control socket is asked for `status` while waiting for the recovery
/// (a `status` walks every session: asking much more often would slow what it measures).
pub const STATUS_POLL: Duration = Duration::from_millis(50);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Control connections.
    pub tunnels: usize,
    /// Sessions per tunnel.
    pub sessions: usize,
    /// Sessions being set up at once during the bring-up.
    pub in_flight: usize,
    /// The `l2xdpd` binary.
    pub l2xdpd: PathBuf,
    /// Gives up on any one step after this long (a hung run, not a measurement).
    pub limit: Duration,
    /// The LAC emulator advertises the RFC 4951 Failover Capability; off: it is a peer
    /// without RFC 4951 (as xl2tpd), and only transparent resume can keep its tunnels.
    pub lac_failover: bool,
}

/// The settings a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// RFC 4951 Recovery Time, both ends (C = 1, D = 1).
    pub recovery_time_ms: u32,
    /// The emulated subscribers' LCP echo interval (s) and failures before a link goes down.
    pub lac_echo_interval_secs: u64,
    /// Unanswered echoes before a subscriber's link goes down.
    pub lac_echo_failures: u32,
    /// How often the control socket was polled while waiting for the recovery (ms).
    pub status_poll_ms: u64,
    /// Whether the LAC emulator advertised the RFC 4951 Failover Capability.
    pub lac_failover: bool,
}

/// l2xdpd's view after the recovery (its control socket's `status`).
#[derive(Debug, Clone, Serialize)]
pub struct LnsAfter {
    /// Tunnels that survived: `l2tp.failover["tunnel recovered"]` (RFC 4951) plus
    /// `["tunnel resumed"]`.
    pub tunnels_recovered: u64,
    /// Of those, `l2tp.failover["tunnel resumed"]`: the same control connection went on.
    pub tunnels_resumed: u64,
    /// Sessions established.
    pub sessions: u64,
    /// Sessions with PPP up.
    pub ppp_up: u64,
    /// Sessions installed in the fast path.
    pub installed: u64,
    /// Sessions restored from the state dir.
    pub restored: u64,
    /// Failover store errors.
    pub store_errors: u64,
    /// Every RFC 4951 failover step counted (`l2tp.failover`).
    pub failover: Value,
}

/// The emulator's view, from the kill to the end of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LacAfter {
    /// Its tunnels of the bring-up still there and established at the end (same IDs).
    pub tunnels: usize,
    /// Other tunnels it has at the end (the recovery tunnels l2xdpd opened, closing).
    pub other_tunnels: usize,
    /// Its sessions established at the end.
    pub sessions: usize,
    /// Of which PPP up.
    pub ppp_up: usize,
    /// TunnelDown events since the kill.
    pub tunnels_down: u64,
    /// SessionDown events since the kill.
    pub sessions_down: u64,
    /// RecoveryFailed events since the kill.
    pub recovery_failed: u64,
    /// TunnelUp events since the kill (a recovery tunnel must not look like a new tunnel).
    pub tunnels_up: u64,
    /// Its RFC 4951 failover steps counted.
    pub failover: BTreeMap<String, u64>,
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
    /// Sessions being set up at once during the bring-up.
    pub in_flight: usize,
    /// The settings.
    pub settings: Settings,
    /// Seconds from the first ICRQ to the last IPCP up (bring-up, before the kill).
    pub bringup_secs: f64,
    /// Files in the state dir at the kill (the store's database: one file).
    pub state_files: u64,
    /// Their bytes.
    pub state_bytes: u64,
    /// Tunnel records in the store at the end of the run (read once l2xdpd has stopped).
    pub state_tunnels: usize,
    /// Session records in the store at the end of the run.
    pub state_sessions: usize,
    /// First start (empty state dir): process start → control socket answering (ms).
    pub first_start_socket_ms: f64,
    /// Restart: new process start → control socket answering (ms).
    pub restart_socket_ms: f64,
    /// Restart: new process start → every tunnel's control channel reset (RFC 4951 §3.2.2:
    /// it carries messages again; `control channel reset (recovery endpoint)` == tunnels) (ms).
    pub restart_reset_ms: f64,
    /// Restart: new process start → `tunnel recovered` == tunnels (ms): every session
    /// confirmed by FSQ/FSR (§3.3) too.
    pub restart_recovered_ms: f64,
    /// Estimated state restore: `restart_socket_ms − first_start_socket_ms`.
    pub restore_ms: f64,
    /// `kill -9` → all tunnels recovered (ms).
    pub outage_ms: f64,
    /// l2xdpd after the recovery.
    pub lns_after: LnsAfter,
    /// The emulator after the recovery.
    pub lac_after: LacAfter,
    /// l2xdpd's VmRSS: after the first start, before the kill, after the recovery (KiB).
    pub rss_kib: [u64; 3],
    /// Per session: the state dir's bytes, and l2xdpd's VmRSS before the kill and after the
    /// recovery less its VmRSS after the first start (bytes).
    pub per_session: PerSession,
}

/// What a session costs (the targets of issue 16: ≤ 500 bytes on disk, ≤ 2 KB of memory).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerSession {
    /// State dir bytes / sessions.
    pub disk_bytes: f64,
    /// (VmRSS before the kill − VmRSS after the first start) / sessions, bytes.
    pub rss_before_kill_bytes: f64,
    /// (VmRSS after the recovery − VmRSS after the first start) / sessions, bytes.
    pub rss_after_recovery_bytes: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Files and bytes under `dir`.
fn du(dir: &Path) -> (u64, u64) {
    let mut out = (0, 0);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => {
                    out.0 += 1;
                    out.1 += m.len();
                }
                Err(_) => {}
            }
        }
    }
    out
}

/// Runs the scenario.
pub async fn run(opts: &Options) -> Result<Report, String> {
    let n = opts.tunnels * opts.sessions;
    let files = LnsFiles::write(&LnsSetup {
        tunnels: opts.tunnels,
        sessions: opts.sessions,
        recovery_time_ms: Some(RECOVERY_TIME_MS),
        one_lac_at_once: true,
    })?;
    let state_dir = files.files.state_dir.clone();
    let quick = Duration::from_millis(5);

    // The first l2xdpd, empty state dir.
    let mut lns = spawn(&opts.l2xdpd, &files)?;
    status_when(&mut lns, opts.limit, quick, |_| true).await?;
    let first_start_socket = lns.started.elapsed();
    let rss0 = rss_kib(lns.pid());

    // The bring-up.
    let failover = FailoverConfig {
        control: true,
        data: true,
        recovery_time_ms: RECOVERY_TIME_MS,
    };
    let ppp = PppConfig {
        echo_interval: echo_interval(n),
        echo_failures: LAC_ECHO_FAILURES,
        ..PppConfig::default()
    };
    let mut lac = Lac::start(
        crate::lac::LOOPBACK,
        opts.tunnels,
        opts.sessions,
        opts.lac_failover.then_some(failover),
        ppp,
    )?;
    let deadline = tokio::time::Instant::now() + opts.limit;
    let tunnels = lac.open_tunnels(files.addr, opts.tunnels, deadline).await?;
    let up = lac
        .open_sessions(&tunnels, opts.sessions, opts.in_flight, deadline)
        .await?;
    let bringup_secs = up.ipcp_at.duration_since(up.started).as_secs_f64();

    // l2xdpd has every session up and installed, and its store is quiet.
    let poll = Duration::from_millis(200);
    let mut d = status_when(&mut lns, opts.limit, poll, |d| {
        u(&d["ppp_up"]) == n as u64 && u(&d["installed"]) == n as u64
    })
    .await?;
    let t = Instant::now();
    loop {
        tokio::time::sleep(poll).await;
        let again = status_when(&mut lns, opts.limit, poll, |_| true).await?;
        if again["node"]["store_ops"] == d["node"]["store_ops"] {
            break;
        }
        if t.elapsed() > opts.limit {
            return Err("l2xdpd's state store does not settle".into());
        }
        d = again;
    }
    let rss1 = rss_kib(lns.pid());
    let (state_files, state_bytes) = du(&state_dir);
    while lac.events.try_recv().is_ok() {}

    // kill -9, and a new l2xdpd with the same configuration.
    let killed = Instant::now();
    lns.kill_9();
    drop(lns);
    let mut lns = spawn(&opts.l2xdpd, &files)?;
    status_when(&mut lns, opts.limit, quick, |_| true).await?;
    let restart_socket = lns.started.elapsed();
    // A tunnel survives the restart resumed (the same control connection, transparent
    // resume) or recovered (RFC 4951).
    let survived = |d: &Value| {
        u(&d["l2tp"]["failover"]["tunnel recovered"]) + u(&d["l2tp"]["failover"]["tunnel resumed"])
    };
    // It answers again once resumed, or once its control channel is reset (RFC 4951
    // §3.2.2; then §3.3's FSQ/FSR confirm its sessions, and it counts as recovered).
    let reset = |d: &Value| {
        u(&d["l2tp"]["failover"]["control channel reset (recovery endpoint)"])
            + u(&d["l2tp"]["failover"]["tunnel resumed"])
            >= opts.tunnels as u64
    };
    status_when(&mut lns, opts.limit, STATUS_POLL, reset).await?;
    let restart_reset = lns.started.elapsed();
    let recovered = |d: &Value| survived(d) >= opts.tunnels as u64;
    let after = status_when(&mut lns, opts.limit, STATUS_POLL, recovered).await?;
    let restart_recovered = lns.started.elapsed();
    let outage = killed.elapsed();

    // Let late news reach the emulator (a session the recovery cleared, a keepalive), then
    // collect its view.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lac_after = LacAfter::default();
    while let Ok(e) = lac.events.try_recv() {
        match e {
            NodeEvent::TunnelDown { .. } => lac_after.tunnels_down += 1,
            NodeEvent::SessionDown { .. } => lac_after.sessions_down += 1,
            NodeEvent::RecoveryFailed { .. } => lac_after.recovery_failed += 1,
            NodeEvent::TunnelUp { .. } => lac_after.tunnels_up += 1,
            _ => {}
        }
    }
    let ours: std::collections::HashSet<_> = tunnels.iter().copied().collect();
    let (lac_tunnels, (lac_sessions, lac_ppp), lac_failover) = lac
        .handle
        .inspect(move |n| {
            let f: BTreeMap<String, u64> = n
                .registry()
                .counters()
                .failover
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            let t = n.tunnel_status();
            let kept = t
                .iter()
                .filter(|t| ours.contains(&t.tunnel) && t.state == "Established")
                .count();
            ((kept, t.len() - kept), n.session_counts(), f)
        })
        .await
        .map_err(|e| e.to_string())?;
    (lac_after.tunnels, lac_after.other_tunnels) = lac_tunnels;
    lac_after.sessions = lac_sessions;
    lac_after.ppp_up = lac_ppp;
    lac_after.failover = lac_failover;
    let rss2 = rss_kib(lns.pid());
    // The LNS's counts now (sessions the recovery cleared would show here).
    let now = status_when(&mut lns, opts.limit, poll, |_| true).await?;
    lac.stop().await;
    drop(lns);
    // What the store holds (l2xdpd has stopped: the database is free to open).
    let stored = RedbStore::open(&state_dir)
        .and_then(|s| s.load())
        .map_err(|e| format!("reading the state store: {e}"))?;
    drop(files);

    Ok(Report {
        header: Header {
            scenario: "failover",
            mode: "control plane (in-memory fast path)",
            date: crate::machine::utc_now(),
            command: String::new(),
            machine: crate::machine::Machine::probe(),
        },
        tunnels: opts.tunnels,
        sessions: n,
        in_flight: opts.in_flight,
        settings: Settings {
            recovery_time_ms: RECOVERY_TIME_MS,
            lac_echo_interval_secs: echo_interval(n).as_secs(),
            lac_echo_failures: LAC_ECHO_FAILURES,
            status_poll_ms: STATUS_POLL.as_millis() as u64,
            lac_failover: opts.lac_failover,
        },
        bringup_secs,
        state_files,
        state_bytes,
        state_tunnels: stored.tunnels.len(),
        state_sessions: stored.sessions.len(),
        first_start_socket_ms: ms(first_start_socket),
        restart_socket_ms: ms(restart_socket),
        restart_reset_ms: ms(restart_reset),
        restart_recovered_ms: ms(restart_recovered),
        restore_ms: ms(restart_socket.saturating_sub(first_start_socket)),
        outage_ms: ms(outage),
        lns_after: LnsAfter {
            tunnels_recovered: survived(&after),
            tunnels_resumed: u(&after["l2tp"]["failover"]["tunnel resumed"]),
            sessions: u(&now["sessions"]),
            ppp_up: u(&now["ppp_up"]),
            installed: u(&now["installed"]),
            restored: u(&now["node"]["restored"]),
            store_errors: u(&now["node"]["store_errors"]),
            failover: now["l2tp"]["failover"].clone(),
        },
        lac_after,
        rss_kib: [rss0, rss1, rss2],
        per_session: {
            let n = n.max(1) as f64;
            let grown = |kib: u64| kib.saturating_sub(rss0) as f64 * 1024.0 / n;
            PerSession {
                disk_bytes: state_bytes as f64 / n,
                rss_before_kill_bytes: grown(rss1),
                rss_after_recovery_bytes: grown(rss2),
            }
        },
    })
}

/// A readable table of a report.
pub fn table(r: &Report) -> String {
    let l = &r.lac_after;
    let s = &r.lns_after;
    format!(
        "failover: {} tunnels x {} sessions/tunnel = {} sessions; kill -9 of l2xdpd and restart \
         (RFC 4951 C=1 D=1, recovery time {} ms; LAC echo {} s x {}; control plane, in-memory fast path)\n\
         | step | time (ms) |\n\
         | --- | ---: |\n\
         | first start (empty state) -> control socket answers | {:.0} |\n\
         | restart -> control socket answers (state restored) | {:.0} |\n\
         | state restore (estimate: difference of the two above) | {:.0} |\n\
         | restart -> all {} control channels answer again (resumed, or reset for recovery) | {:.0} |\n\
         | restart -> all {} tunnels resumed or recovered | {:.0} |\n\
         | kill -9 -> all tunnels resumed or recovered | {:.0} |\n\
         state dir: {} files, {:.1} MB ({:.0} bytes per session); bring-up {:.1} s\n\
         LAC Failover Capability: {}\n\
         l2xdpd after: {} tunnels resumed or recovered ({} resumed), {} sessions ({} PPP up, {} installed, {} restored), \
         {} store errors\n\
         LAC after: {} of its tunnels established ({} recovery tunnels), {} sessions ({} PPP up); since the kill: {} tunnels down, \
         {} sessions down, {} recoveries failed, {} tunnels up\n\
         l2xdpd VmRSS: {} KiB after the first start, {} KiB before the kill, {} KiB after the recovery \
         (per session, above the first start: {:.0} bytes before the kill, {:.0} after the recovery)",
        r.tunnels,
        r.sessions / r.tunnels.max(1),
        r.sessions,
        r.settings.recovery_time_ms,
        r.settings.lac_echo_interval_secs,
        r.settings.lac_echo_failures,
        r.first_start_socket_ms,
        r.restart_socket_ms,
        r.restore_ms,
        r.tunnels,
        r.restart_reset_ms,
        r.tunnels,
        r.restart_recovered_ms,
        r.outage_ms,
        r.state_files,
        r.state_bytes as f64 / 1e6,
        r.per_session.disk_bytes,
        r.bringup_secs,
        if r.settings.lac_failover { "on" } else { "off (no RFC 4951)" },
        s.tunnels_recovered,
        s.tunnels_resumed,
        s.sessions,
        s.ppp_up,
        s.installed,
        s.restored,
        s.store_errors,
        l.tunnels,
        l.other_tunnels,
        l.sessions,
        l.ppp_up,
        l.tunnels_down,
        l.sessions_down,
        l.recovery_failed,
        l.tunnels_up,
        r.rss_kib[0],
        r.rss_kib[1],
        r.rss_kib[2],
        r.per_session.rss_before_kill_bytes,
        r.per_session.rss_after_recovery_bytes,
    )
}
