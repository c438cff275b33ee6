//! `demo`: what `make run` shows a newcomer — l2xdp working end to end on this machine, in
//! network namespaces, then surviving a `kill -9` of its control plane.
//!
//! ```text
//! lac: LAC emulator ── lac0 ═ la ── lns: XDP fast path + l2xdpd ── lc ═ core0 ── core: a host
//! ```
//!
//! 1. The lab (`l2xdp_lab::topology`): the three namespaces, a scratch directory
//!    with a bpffs of its own, `l2xdp-dataplane attach --access la --core lc` in `lns` (maps
//!    and links pinned there), l2xdpd started in `lns` with the built-in [`DEFAULT_CONFIG`] (or
//!    `--config FILE`; the lab sets the keys of `l2xdp_lab::cp::l2xdpd::LAB_KEYS`).
//! 2. The LAC emulator ([`crate::lac`]) in `lac` brings up `tunnels × sessions` L2TPv2
//!    sessions with PPP (CHAP) through IPCP; l2xdpd installs each in the fast path.
//!    `l2xdpctl show tunnels` shows them as an operator sees them.
//! 3. Traffic both ways (`l2xdp_lab::traffic`: upstream L2TP data frames from the
//!    LAC, downstream IPv4 from the core host, paced by what the receivers counted and capped at
//!    `pps` per direction), counted at both receivers, with a live view once a second
//!    ([`show_stats`]: `l2xdpctl show stats --count 0 --json` and `show tunnels` beside the
//!    receivers' counts), and `l2xdpctl show stats`'s table at the end.
//! 4. The failover drill, traffic still flowing: `kill -9` of l2xdpd, a second with no control
//!    plane, a new l2xdpd with the same configuration recovers every tunnel (RFC 4951),
//!    `l2xdpctl failover status` shows each tunnel's recovery; then every data packet sent
//!    over the whole run must have arrived, every session must be kept, and a new session is
//!    set up through the new l2xdpd and carries traffic.
//! 5. Clean-up (guards, on failure and Ctrl-C too): processes, XDP programs and pins, the
//!    bpffs mount, namespaces; checked afterwards.
//!
//! The lab's fixtures panic with what failed; [`run`] turns that into an error after the
//! guards have cleaned up. Time limits only bound a hung run.
//!
//! The same lab and drill, at 100,000 sessions, is the failover benchmark's XDP mode
//! ([`crate::failover_xdp`]: [`run_with`] with its own configuration and a [`Scale`] of its
//! own — longer limits, the LAC's keepalives every 30 s, no per-tunnel tables).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use l2xdp_controlplane::daemon::DaemonConfig;
use l2xdp_controlplane::l2tp::{FailoverConfig, TunnelId};
use l2xdp_controlplane::node::NodeEvent;
use l2xdp_controlplane::ppp::{AuthMethod, PppConfig};
use l2xdp_dataplane::XdpDataPlane;
use l2xdp_lab::cp::l2xdpd::{self, log_tail, try_ask, Files, L2xdpd, Placement};
use l2xdp_lab::cp::subscriber;
use l2xdp_lab::scratch::Scratch;
use l2xdp_lab::topology::{PeerPort, Topology, CORE0, L2TP_PORT, LA, LAC0, LAC_IP, LC, LNS_IP};
use l2xdp_lab::traffic::{
    bound, classify_downstream, classify_upstream, ip_socket, Counter, Flows, Paced, Sub,
};
use l2xdp_lab::{is_root, Netns};
use l2xdp_wire::datapath::SessionKey;
use serde::Serialize;
use serde_json::Value;

use crate::interrupt;
use crate::lac::Lac;

/// l2xdpd's built-in configuration for the demo (`l2xdp-bench demo --print-config`).
pub const DEFAULT_CONFIG: &str = r#"# l2xdpd configuration of the demo.
# Change it with: l2xdp-bench demo --config FILE (make run RUN_ARGS="--config FILE").
# The lab sets daemon.listen, daemon.control_socket, daemon.state_dir, dataplane.mode,
# dataplane.pin_dir and users.file itself.

[l2tp]
host_name = "lns-demo"

# RFC 4951 failover: l2xdpd keeps its tunnels and sessions in daemon.state_dir, and a
# restarted l2xdpd recovers them with its peers (the drill needs control = true).
[l2tp.failover]
control = true
data = true
recovery_time_ms = 10000

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/16"]
dns = ["192.0.2.53"]
"#;

/// A direction whose window stays full this long has lost frames: the demo fails.
const STALL_LIMIT: Duration = Duration::from_secs(5);
/// How often l2xdpd's `status` is polled while waiting (for the bring-up, the recovery).
pub const STATUS_POLL: Duration = Duration::from_millis(50);
/// How long the receivers get to count the last frames in flight.
const SETTLE: Duration = Duration::from_secs(3);
/// Traffic with no control plane at all, between the kill and the restart (over a second: the
/// live view shows it).
const OUTAGE: Duration = Duration::from_millis(1500);
/// Traffic after the recovery, before the counts are taken.
const AFTER_RECOVERY: Duration = Duration::from_secs(1);
/// Packets each way through the session set up after the drill.
const NEW_SESSION_PACKETS: usize = 10;

/// How big the lab's run is, and what follows from it: the demo's ([`Scale::default`]) or a
/// benchmark's (`l2xdp-bench failover --fast-path xdp`, [`crate::failover_xdp`]).
#[derive(Debug, Clone)]
pub struct Scale {
    /// Each step gives up after this long (a hung run, not a measurement).
    pub step_limit: Duration,
    /// The emulated subscribers' LCP Echo-Request interval.
    pub echo_interval: Duration,
    /// Unanswered Echo-Requests before a subscriber's link goes down: the outage must stay
    /// below `echo_interval × (echo_failures − 1)`.
    pub echo_failures: u32,
    /// The LAC's RFC 4951 Recovery Time (§5.1: how long it waits for the recovery).
    pub recovery_time_ms: u32,
    /// How long a subscriber waits for the LNS's CHAP Challenge (its PPP `auth_timeout`): at
    /// 100,000 sessions with persistence a set-up can queue longer than the default 30 s.
    pub auth_timeout: Duration,
    /// Print the per-tunnel tables (`l2xdpctl show tunnels`, `failover status`): off at a
    /// thousand tunnels.
    pub tables: bool,
}

impl Default for Scale {
    /// The demo's: a few hundred sessions, keepalives every second (the outage must stay below
    /// 9 s), Recovery Time 10 s as in [`DEFAULT_CONFIG`], 30 s per step, tables printed.
    fn default() -> Scale {
        Scale {
            step_limit: Duration::from_secs(30),
            echo_interval: Duration::from_secs(1),
            echo_failures: 10,
            recovery_time_ms: 10_000,
            auth_timeout: PppConfig::default().auth_timeout,
            tables: true,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Control connections from the LAC.
    pub tunnels: usize,
    /// Sessions per tunnel.
    pub sessions: usize,
    /// Seconds of live traffic view before the drill.
    pub seconds: u64,
    /// Packets per second per direction (the cap of the sender).
    pub pps: u64,
    /// Sessions being set up at once.
    pub in_flight: usize,
    /// l2xdpd's configuration instead of [`DEFAULT_CONFIG`].
    pub config: Option<PathBuf>,
    /// The `l2xdpd` binary.
    pub l2xdpd: PathBuf,
    /// The `l2xdp-dataplane` binary.
    pub dataplane: PathBuf,
    /// The `l2xdpctl` binary (the live view, the tables).
    pub l2xdpctl: PathBuf,
    /// Limits, keepalives and output for the run's size.
    pub scale: Scale,
}

/// Why the demo did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Namespaces and XDP need root.
    #[error("needs root (network namespaces, XDP, bpffs): run it as root, e.g. sudo make run")]
    NotRoot,
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// The configuration was refused.
    #[error("configuration: {0}")]
    Config(String),
    /// A step failed.
    #[error("{0}")]
    Failed(String),
}

/// The session set-up, as l2xdpd reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bringup {
    /// Tunnels l2xdpd has.
    pub tunnels: u64,
    /// Sessions with PPP up at l2xdpd.
    pub sessions_up: u64,
    /// Sessions installed in the fast path.
    pub installed: u64,
    /// First ICRQ to the last IPCP up, at the LAC (s).
    pub secs: f64,
}

/// Data packets over the whole run (before, during and after the drill), per direction.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Traffic {
    /// Sent by the LAC (L2TP) towards the core.
    pub up_sent: u64,
    /// Counted at the core host.
    pub up_received: u64,
    /// Sent by the core host towards the subscribers.
    pub down_sent: u64,
    /// Counted at the LAC (decapsulated for the right session).
    pub down_received: u64,
    /// Sent minus received, both directions.
    pub lost: u64,
    /// Seconds from the first frame sent to the last (the offered rate is `up_sent / secs`).
    pub secs: f64,
}

/// The failover drill's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failover {
    /// `l2tp.failover["tunnel recovered"]` of the new l2xdpd.
    pub tunnels_recovered: u64,
    /// Sessions the new l2xdpd reports exactly as the first one did (IDs, user, PPP,
    /// address, installed).
    pub sessions_kept: u64,
    /// Sessions bound in the pinned maps to the same subscriber address as before the kill.
    pub fast_path_kept: u64,
    /// Data packets lost over the whole run (= `traffic.lost`).
    pub data_lost: u64,
    /// Fast-path drops since the bring-up (all reasons).
    pub xdp_drops: u64,
    /// Tunnels or sessions that went down at the LAC, and recoveries it saw fail.
    pub lac_down_events: u64,
    /// New l2xdpd started → every tunnel recovered (ms).
    pub restart_to_recovered_ms: f64,
    /// kill -9 → every tunnel recovered (ms).
    pub kill_to_recovered_ms: f64,
    /// New l2xdpd started → its control socket accepting (it restores its state first; ms).
    pub restart_to_socket_ms: f64,
    /// Sessions l2xdpd listed before the kill.
    pub sessions_before: u64,
    /// Sessions bound in the pinned maps before the kill.
    pub fast_path_before: u64,
    /// l2xdpd's VmRSS before the kill and after the recovery (KiB).
    pub l2xdpd_rss_kib: [u64; 2],
}

/// The session set up after the drill.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewSession {
    /// Its user.
    pub user: String,
    /// The address IPCP gave it.
    pub address: String,
    /// Packets counted at the core from it.
    pub up_received: u64,
    /// Packets counted at the LAC for it.
    pub down_received: u64,
}

/// What `l2xdpctl`, the operator's tool, showed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Operator {
    /// `show tunnels` after the bring-up: tunnels listed.
    pub tunnels: u64,
    /// Their sessions, summed.
    pub tunnel_sessions: u64,
    /// `show stats --count 0 --json` reports the live view read.
    pub stats_reports: u64,
    /// The fast path's packets at the last of them, since it was attached: decapsulated,
    /// encapsulated, dropped.
    pub fast_path_upstream: u64,
    /// See `fast_path_upstream`.
    pub fast_path_downstream: u64,
    /// See `fast_path_upstream`.
    pub fast_path_dropped: u64,
    /// `failover status` after the drill: each tunnel's last recovery.
    pub recoveries: Vec<TunnelRecovery>,
}

/// One tunnel's recovery, as `l2xdpctl failover status --json` reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TunnelRecovery {
    /// Our tunnel ID.
    pub tunnel: u64,
    /// `recovered`, `failed`, `recovering`, or `none`.
    pub outcome: String,
    /// Its sessions that survived.
    pub sessions: u64,
    /// How long it took (ms).
    pub duration_ms: Option<u64>,
}

/// What was created, to check it is gone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabNames {
    /// The namespaces.
    pub namespaces: Vec<String>,
    /// The scratch directory (configuration, state, bpffs).
    pub scratch: String,
    /// Every l2xdpd pid.
    pub l2xdpd_pids: Vec<u32>,
    /// Whether all of it was gone at the end.
    pub cleaned_up: bool,
}

/// What a run saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `demo`.
    pub scenario: &'static str,
    /// Control connections.
    pub tunnels: usize,
    /// Sessions (all tunnels).
    pub sessions: usize,
    /// `built-in` or the configuration file.
    pub config: String,
    /// The set-up.
    pub bringup: Bringup,
    /// Data packets.
    pub traffic: Traffic,
    /// The drill.
    pub failover: Failover,
    /// The session set up afterwards.
    pub new_session: NewSession,
    /// What l2xdpctl showed.
    pub l2xdpctl: Operator,
    /// What was created and removed.
    pub lab: LabNames,
    /// Every check passed.
    pub ok: bool,
    /// The checks that did not.
    pub failures: Vec<String>,
    /// When (UTC).
    pub date: String,
}

/// Runs the demo, printing as it goes; cleans up whatever happens. A report whose `ok` says
/// whether every check passed, or why it could not get that far.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if !is_root() {
        return Err(Error::NotRoot);
    }
    let (base_path, base) = match &opts.config {
        Some(p) => (
            p.clone(),
            std::fs::read_to_string(p)
                .map_err(|e| Error::Config(format!("{}: {e}", p.display())))?,
        ),
        None => (PathBuf::from("built-in"), DEFAULT_CONFIG.to_string()),
    };
    run_with(opts, &base_path, &base)
}

/// [`run`] with l2xdpd's configuration `base` (named `base_path` in messages) instead of
/// `opts.config`: the benchmark's, sized for its sessions.
pub fn run_with(opts: &Options, base_path: &Path, base: &str) -> Result<Report, Error> {
    if !is_root() {
        return Err(Error::NotRoot);
    }
    // The configuration is checked before anything is created.
    let cfg = DaemonConfig::parse(base_path, base).map_err(|e| Error::Config(e.to_string()))?;
    if !cfg.l2tp.persists() {
        return Err(Error::Config(format!(
            "{}: the failover drill needs [l2tp.failover] with control = true",
            base_path.display()
        )));
    }
    let mut names = LabNames::default();
    // Fixtures panic with what failed: say it once, briefly, and let the guards clean up.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let msg = panic_text(info.payload());
        match info.location() {
            Some(l) => eprintln!("demo: {msg} ({}:{})", l.file(), l.line()),
            None => eprintln!("demo: {msg}"),
        }
    }));
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        drive(opts, base_path, base, &mut names)
    }));
    std::panic::set_hook(hook);
    heading(6, "Clean-up");
    names.cleaned_up = check_cleanup(&names);
    let r = match r {
        Ok(r) => r,
        Err(p) => Err(Error::Failed(panic_text(&*p))),
    };
    let mut report = r?;
    report.lab = names;
    if !report.lab.cleaned_up {
        report.failures.push("something was left behind".into());
    }
    report.ok = report.failures.is_empty();
    report.date = crate::machine::utc_now();
    Ok(report)
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a step failed".into())
}

fn heading(n: usize, what: &str) {
    println!("\n[{n}/6] {what}");
}

fn interrupted() -> Result<(), Error> {
    if interrupt::requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Runs `f` on `rt` unless Ctrl-C comes first.
fn block_on<T>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, Error> {
    rt.block_on(async {
        tokio::select! {
            r = f => r.map_err(Error::Failed),
            _ = async {
                while !interrupt::requested() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } => Err(Error::Interrupted),
        }
    })
}

/// Everything the demo set up. Fields drop in declaration order: the LAC and its runtime
/// first, then l2xdpd, the sockets and ports, the fast path, the scratch directory (pins,
/// bpffs), the namespaces last.
struct Lab {
    lac: Option<Lac>,
    rt: tokio::runtime::Runtime,
    ctl: Ctl,
    daemon: L2xdpd,
    files: Files,
    log: PathBuf,
    lac_sock: l2xdp_lab::packet::PacketSocket,
    core_sock: l2xdp_lab::packet::PacketSocket,
    lac_port: PeerPort,
    core_port: PeerPort,
    fast: XdpDataPlane,
    _scratch: Scratch,
    topo: Topology,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The LAC's driver ends with its runtime: no StopCCN, nothing more to l2xdpd.
        drop(self.lac.take());
    }
}

fn drive(
    opts: &Options,
    base_path: &Path,
    base: &str,
    names: &mut LabNames,
) -> Result<Report, Error> {
    let n = opts.tunnels * opts.sessions;
    let mut report = Report {
        scenario: "demo",
        tunnels: opts.tunnels,
        sessions: n,
        config: base_path.display().to_string(),
        ..Report::default()
    };
    println!(
        "l2xdp demo: an L2TP LNS whose data plane is XDP, on this machine, in network \
         namespaces\n\n  lac (LAC emulator, {n} PPP subscribers) ══ lns (XDP fast path + \
         l2xdpd) ══ core (a host)"
    );

    // 1. The lab.
    heading(1, "Lab: namespaces, XDP fast path, control plane");
    let topo = Topology::new("demo");
    names.namespaces = [&topo.lac, &topo.lns, &topo.core]
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let scratch = Scratch::new("demo");
    names.scratch = scratch.dir.display().to_string();
    let files = l2xdpd::write_config(
        &scratch.dir,
        base_path,
        base,
        Placement::lab(&scratch.pins),
        n + 1,
    )
    .map_err(|e| Error::Config(e.to_string()))?;
    println!(
        "  namespaces {}, {}, {}",
        topo.lac.name, topo.lns.name, topo.core.name
    );
    // The maps sized for every session (and the one set up after the drill).
    let max_sessions = l2xdp_dataplane::loader::DEFAULT_MAX_SESSIONS.max(n as u32 + 1);
    attach(&topo.lns, &opts.dataplane, &scratch.pins, max_sessions)?;
    let fast = XdpDataPlane::open(&scratch.pins)
        .map_err(|e| Error::Failed(format!("the pinned maps: {e}")))?;
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_sock, lac_sock) = (ip_socket(&core_port), ip_socket(&lac_port));
    let log = scratch.dir.join("l2xdpd.log");
    let daemon = L2xdpd::start(Some(&topo.lns), &opts.l2xdpd, &files, Some(&log));
    names.l2xdpd_pids.push(daemon.pid());
    println!(
        "  l2xdpd (pid {}) in lns: configuration {}{}, control socket {}",
        daemon.pid(),
        base_path.display(),
        if opts.config.is_none() && base == DEFAULT_CONFIG {
            " (l2xdp-bench demo --print-config)"
        } else {
            ""
        },
        files.control_socket.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("runtime: {e}")))?;
    let lac = {
        let _rt = rt.enter();
        let _ns = topo.lac.enter();
        let ppp = PppConfig {
            auth: vec![AuthMethod::Chap],
            echo_interval: opts.scale.echo_interval,
            echo_failures: opts.scale.echo_failures,
            auth_timeout: opts.scale.auth_timeout,
            ..PppConfig::default()
        };
        let failover = FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: opts.scale.recovery_time_ms,
        };
        Lac::start(
            SocketAddr::new(IpAddr::V4(LAC_IP), L2TP_PORT),
            opts.tunnels,
            opts.sessions,
            Some(failover),
            ppp,
        )
        .map_err(Error::Failed)?
    };
    let ctl = Ctl {
        bin: opts.l2xdpctl.clone(),
        socket: files.control_socket.clone(),
        pins: scratch.pins.clone(),
    };
    println!(
        "  l2xdpctl, the operator's tool, below as `l2xdpctl ...`: l2xdpctl --socket {} --pins \
         {} ...",
        ctl.socket.display(),
        ctl.pins.display()
    );
    let mut lab = Lab {
        lac: Some(lac),
        rt,
        ctl,
        daemon,
        files,
        log,
        lac_sock,
        core_sock,
        lac_port,
        core_port,
        fast,
        _scratch: scratch,
        topo,
    };
    let r = with_lab(opts, &mut lab, &mut report, names);
    if r.is_err() && !matches!(r, Err(Error::Interrupted)) {
        let tail = log_tail(&lab.log);
        if !tail.is_empty() {
            eprintln!("demo: the end of l2xdpd's log:{tail}");
        }
    }
    r.map(|()| report)
}

/// `ip netns exec <lns> l2xdp-dataplane --pin-dir <pins> attach --access la --core lc
/// --max-sessions <max_sessions>`: the fast path as an operator attaches it, its maps and links
/// pinned in the lab's bpffs.
fn attach(lns: &Netns, bin: &Path, pins: &Path, max_sessions: u32) -> Result<(), Error> {
    let out = Command::new("ip")
        .args(["netns", "exec", &lns.name])
        .arg(bin)
        .arg("--pin-dir")
        .arg(pins)
        .args(["attach", "--access", LA, "--core", LC, "--max-sessions"])
        .arg(max_sessions.to_string())
        .output()
        .map_err(|e| Error::Failed(format!("{}: {e}", bin.display())))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "l2xdp-dataplane attach: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    println!(
        "  l2xdp-dataplane attach --access {LA} --core {LC}: xdp_l2tp_access on {LA} (L2TP in: \
         decapsulate), xdp_l2tp_core on {LC} (IP in: encapsulate); maps for {max_sessions} \
         sessions"
    );
    Ok(())
}

/// `l2xdpctl --socket <l2xdpd's> --pins <the fast path's>`, run as an operator runs it (from
/// the host: the control socket and the pins are files, reachable from any namespace).
struct Ctl {
    bin: PathBuf,
    socket: PathBuf,
    pins: PathBuf,
}

impl Ctl {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--socket")
            .arg(&self.socket)
            .arg("--pins")
            .arg(&self.pins)
            .args(args);
        c
    }

    /// Runs `l2xdpctl args`: its exit code and stdout, or why it could not run.
    fn run(&self, args: &[&str]) -> Result<(Option<i32>, String, String), Error> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| Error::Failed(format!("{}: {e}", self.bin.display())))?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    /// `l2xdpctl --json args`, expected to succeed: its document.
    fn json(&self, args: &[&str]) -> Result<Value, Error> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        match self.run(&a)? {
            (Some(0), out, _) => serde_json::from_str(&out)
                .map_err(|e| Error::Failed(format!("l2xdpctl {}: {e}", args.join(" ")))),
            (code, _, err) => Err(Error::Failed(format!(
                "l2xdpctl {} (exit {code:?}): {err}",
                args.join(" ")
            ))),
        }
    }

    /// Prints `$ l2xdpctl args` and what it printed, indented, in one piece (the live view
    /// prints from another thread).
    fn show(&self, args: &[&str]) -> Result<(), Error> {
        let (code, out, err) = self.run(args)?;
        if code != Some(0) {
            return Err(Error::Failed(format!(
                "l2xdpctl {} (exit {code:?}): {err}",
                args.join(" ")
            )));
        }
        let mut text = format!("  $ l2xdpctl {}\n", args.join(" "));
        for l in out.lines() {
            if !l.is_empty() {
                text.push_str("    ");
            }
            text.push_str(l);
            text.push('\n');
        }
        print!("{text}");
        Ok(())
    }

    /// `l2xdpctl --json show stats --count 0`: one report a second on its stdout, until
    /// killed (when the returned guard drops).
    fn live_stats(&self) -> Result<(Live, std::process::ChildStdout), Error> {
        let mut child = self
            .command(&["--json", "show", "stats", "--count", "0", "--interval", "1"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::Failed(format!("{}: {e}", self.bin.display())))?;
        let out = child.stdout.take().expect("stdout was piped");
        Ok((Live(child), out))
    }
}

/// A running `l2xdpctl show stats --count 0`; killed and reaped when dropped.
struct Live(std::process::Child);

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status(sock: &Path) -> Result<Value, Error> {
    let s = try_ask(sock, r#"{"cmd":"status"}"#)
        .map_err(|e| Error::Failed(format!("l2xdpd's control socket: {e}")))?;
    if s["ok"] != true {
        return Err(Error::Failed(format!("l2xdpd's status: {s}")));
    }
    Ok(s["data"].clone())
}

/// Polls l2xdpd's `status` until `done` holds (its data), Ctrl-C or `limit`.
fn status_until(
    sock: &Path,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
    let end = Instant::now() + limit;
    loop {
        interrupted()?;
        let s = status(sock)?;
        if done(&s) || Instant::now() > end {
            return Ok(s);
        }
        std::thread::sleep(STATUS_POLL);
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Sleeps for `d`, or returns early on Ctrl-C.
fn pause(d: Duration) -> Result<(), Error> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        interrupted()?;
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Steps 2 to 5, over the lab of step 1; fills `report`.
fn with_lab(
    opts: &Options,
    lab: &mut Lab,
    report: &mut Report,
    names: &mut LabNames,
) -> Result<(), Error> {
    let (tunnels, subs) = sessions(opts, lab, report)?;
    traffic_and_drill(opts, lab, &subs, report, names)?;
    new_session(opts, lab, tunnels[0], report)?;
    report.failures.extend(failures(opts, report));
    Ok(())
}

/// Step 2: the LAC's tunnels and sessions, PPP through IPCP, waited until l2xdpd reports them all
/// up and installed and the fast path has them bound; the LAC's view of each.
fn sessions(
    opts: &Options,
    lab: &mut Lab,
    report: &mut Report,
) -> Result<(Vec<TunnelId>, BTreeMap<SessionKey, Sub>), Error> {
    let n = opts.tunnels * opts.sessions;
    heading(
        2,
        &format!(
            "Sessions: the LAC opens {} tunnel(s) × {} sessions, PPP (CHAP) through IPCP",
            opts.tunnels, opts.sessions
        ),
    );
    let lac = lab.lac.as_mut().expect("the LAC runs until the end");
    let deadline = tokio::time::Instant::now() + opts.scale.step_limit;
    let lns = SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT);
    let tunnels = block_on(&lab.rt, lac.open_tunnels(lns, opts.tunnels, deadline))?;
    let up = block_on(
        &lab.rt,
        lac.open_sessions(&tunnels, opts.sessions, opts.in_flight, deadline),
    )?;
    let secs = up.ipcp_at.duration_since(up.started).as_secs_f64();
    let st = status_until(&lab.files.control_socket, opts.scale.step_limit, |d| {
        u(&d["installed"]) == n as u64 && u(&d["ppp_up"]) == n as u64
    })?;
    report.bringup = Bringup {
        tunnels: u(&st["tunnels"]),
        sessions_up: u(&st["ppp_up"]),
        installed: u(&st["installed"]),
        secs,
    };
    let mut subs: BTreeMap<SessionKey, Sub> = BTreeMap::new();
    for e in &up.up {
        if let Some(s) = lab.rt.block_on(subscriber(&lac.handle, e)) {
            subs.insert(s.view.our_ids, s);
        }
    }
    let end = Instant::now() + opts.scale.step_limit;
    while bound(&lab.fast).len() < n && Instant::now() < end {
        pause(Duration::from_millis(20))?;
    }
    let b = &report.bringup;
    println!(
        "  {} sessions up in {:.1} s ({:.0}/s); l2xdpd reports {} tunnel(s), {} sessions with \
         PPP up, {} installed in the XDP fast path ({} bound to their subscriber's address)",
        up.up.len(),
        secs,
        up.up.len() as f64 / secs.max(1e-3),
        b.tunnels,
        b.sessions_up,
        b.installed,
        bound(&lab.fast).len()
    );
    if b.sessions_up != n as u64 || b.installed != n as u64 {
        return Err(Error::Failed(format!(
            "only {} of {n} sessions up at l2xdpd, {} installed",
            b.sessions_up, b.installed
        )));
    }
    let t = lab.ctl.json(&["show", "tunnels"])?;
    let rows = t.as_array().map_or(&[][..], Vec::as_slice);
    report.l2xdpctl.tunnels = rows.len() as u64;
    report.l2xdpctl.tunnel_sessions = rows.iter().map(|r| u(&r["sessions"])).sum();
    if opts.scale.tables {
        lab.ctl.show(&["show", "tunnels"])?;
    }
    Ok((tunnels, subs))
}

fn drops(fast: &XdpDataPlane) -> Result<u64, Error> {
    Ok(fast
        .drop_counters()
        .map_err(|e| Error::Failed(format!("fast-path drop counters: {e}")))?
        .iter()
        .sum())
}

/// Steps 3 and 4: traffic both ways for every subscriber of `subs` (a sender thread, paced by the
/// receivers and capped at `opts.pps`), the live view (a watcher thread), and meanwhile on
/// this thread the drill ([`kill_and_recover`]); then the counts, the sessions compared with
/// before the kill, and what the LAC saw.
fn traffic_and_drill(
    opts: &Options,
    lab: &mut Lab,
    subs: &BTreeMap<SessionKey, Sub>,
    report: &mut Report,
    names: &mut LabNames,
) -> Result<(), Error> {
    let n = subs.len();
    let sock = lab.files.control_socket.clone();
    let bringup_drops = drops(&lab.fast)?;
    let core_rx = Counter::start(ip_socket(&lab.core_port), classify_upstream);
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(ip_socket(&lab.lac_port), move |f| {
        classify_downstream(&subs_rx, f)
    });
    let mut flows = Flows::new(subs);
    let pps = opts.pps.max(1);
    heading(
        3,
        &format!(
            "Traffic both ways through XDP, {pps} packets/s each way, counted at both ends \
             (live, once a second: l2xdpctl and the receivers); after {} s the failover drill \
             (lines marked >>)",
            opts.seconds
        ),
    );
    println!(
        "  upstream: the LAC sends L2TP data frames, XDP decapsulates, the core host counts IP \
         packets\n  downstream: the core host sends IP packets, XDP encapsulates, the LAC \
         counts them per session\n{}",
        View::header()
    );
    let stop = AtomicBool::new(false);
    let (live, live_out) = lab.ctl.live_stats()?;
    let Lab {
        lac_sock,
        core_sock,
        daemon,
        topo,
        files,
        log,
        fast,
        ctl,
        ..
    } = lab;
    let ctl: &Ctl = ctl;
    let view = View {
        ctl,
        core_rx: &core_rx,
        lac_rx: &lac_rx,
        t0: Instant::now(),
    };
    let flows = &mut flows;
    let (mut drill, sessions_before, bound_before, up_sent, down_sent, secs, seen) =
        std::thread::scope(|sc| {
            let sender = sc.spawn(|| {
                let mut up = Paced::new(lac_sock, &core_rx).with_limit(STALL_LIMIT);
                let mut down = Paced::new(core_sock, &lac_rx).with_limit(STALL_LIMIT);
                let start = Instant::now();
                // Whole rounds: every session sends as many packets as the others. Paced
                // frame by frame (a round of 100,000 sessions is seconds long).
                while !stop.load(Ordering::Acquire) && !interrupt::requested() {
                    for k in 0..flows.order.len() {
                        flows.send(k, &mut up, &mut down);
                        let due = Duration::from_secs_f64(up.sent as f64 / pps as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                }
                (
                    up.sent as u64,
                    down.sent as u64,
                    start.elapsed().as_secs_f64(),
                )
            });
            // l2xdpctl's reports, one a line, until it is killed.
            let watcher = sc.spawn(|| {
                let mut seen = Seen::default();
                for line in BufReader::new(live_out).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(stats) = serde_json::from_str::<Value>(&line) {
                        show_stats(&view, &stats, &mut seen);
                    }
                }
                seen
            });
            // A failing fixture panics: caught here, or the scope would wait forever for the
            // sender and the watcher, which stop only when told.
            let drill = std::panic::catch_unwind(AssertUnwindSafe(|| {
                pause(Duration::from_secs(opts.seconds)).and_then(|()| {
                    kill_and_recover(opts, daemon, &topo.lns, files, log, fast, view.t0, names)
                })
            }))
            .unwrap_or_else(|p| Err(Error::Failed(panic_text(&*p))));
            drop(live);
            let seen = watcher.join().unwrap_or_default();
            // The operator's table, traffic still flowing.
            let table = match &drill {
                Ok(_) => ctl.show(&["show", "stats"]),
                Err(_) => Ok(()),
            };
            stop.store(true, Ordering::Release);
            let sent = sender.join();
            let (drill, sessions_before, bound_before) = drill?;
            table?;
            let (up, down, secs) =
                sent.map_err(|p| Error::Failed(format!("traffic: {}", panic_text(&*p))))?;
            Ok::<_, Error>((drill, sessions_before, bound_before, up, down, secs, seen))
        })?;
    report.l2xdpctl.stats_reports = seen.reports;
    report.l2xdpctl.fast_path_upstream = seen.up;
    report.l2xdpctl.fast_path_downstream = seen.down;
    report.l2xdpctl.fast_path_dropped = seen.dropped;

    // Every frame sent has had time to arrive.
    let end = Instant::now() + SETTLE;
    while (core_rx.total() < up_sent as usize || lac_rx.total() < down_sent as usize)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (up_received, down_received) = (core_rx.total() as u64, lac_rx.total() as u64);
    report.traffic = Traffic {
        up_sent,
        up_received,
        down_sent,
        down_received,
        lost: up_sent.saturating_sub(up_received) + down_sent.saturating_sub(down_received),
        secs,
    };
    drill.data_lost = report.traffic.lost;
    drill.xdp_drops = drops(&lab.fast)?.saturating_sub(bringup_drops);
    let sessions_after = l2xdpd::ask(&sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    // Compared as text: a set, not a scan per session (100,000 sessions).
    let rows = |v: &Value| -> Vec<String> {
        v.as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(Value::to_string)
            .collect()
    };
    let after: std::collections::HashSet<String> = rows(&sessions_after).into_iter().collect();
    let before = rows(&sessions_before);
    drill.sessions_before = before.len() as u64;
    drill.sessions_kept = before.iter().filter(|s| after.contains(*s)).count() as u64;
    drill.fast_path_before = bound_before.len() as u64;
    let bound_after = bound(&lab.fast);
    drill.fast_path_kept = bound_before
        .iter()
        .filter(|(k, a)| bound_after.get(k) == Some(a))
        .count() as u64;
    let lac = lab.lac.as_mut().expect("the LAC runs until the end");
    while let Ok(e) = lac.events.try_recv() {
        if matches!(
            e,
            NodeEvent::TunnelDown { .. }
                | NodeEvent::SessionDown { .. }
                | NodeEvent::RecoveryFailed { .. }
        ) {
            drill.lac_down_events += 1;
        }
    }
    heading(4, "Failover drill result");
    println!(
        "  tunnels recovered   {} of {}\n  \
         sessions kept       {} of {n} at l2xdpd (same IDs, user, PPP state, address, installed), \
         {} of {n} in the fast path (same address)\n  \
         data packets lost   {} (sent over the whole run: {} upstream, {} downstream; \
         fast-path drops: {})\n  \
         time to recovery    {:.0} ms from the restart, {:.0} ms from the kill (the fast path \
         forwarded throughout)\n  \
         at the LAC          {} tunnels or sessions went down",
        drill.tunnels_recovered,
        opts.tunnels,
        drill.sessions_kept,
        drill.fast_path_kept,
        drill.data_lost,
        thousands(up_sent),
        thousands(down_sent),
        drill.xdp_drops,
        drill.restart_to_recovered_ms,
        drill.kill_to_recovered_ms,
        drill.lac_down_events
    );
    if opts.scale.tables {
        lab.ctl.show(&["failover", "status"])?;
    }
    let f = lab.ctl.json(&["failover", "status"])?;
    report.l2xdpctl.recoveries = f["tunnels"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|t| {
            let r = &t["last_recovery"];
            TunnelRecovery {
                tunnel: u(&t["tunnel"]),
                outcome: r["outcome"].as_str().unwrap_or("none").to_string(),
                sessions: u(&r["sessions"]),
                duration_ms: r["duration_ms"].as_u64(),
            }
        })
        .collect();
    report.failover = drill;
    Ok(())
}

/// Step 4, the drill, while traffic flows: what l2xdpd and the fast path hold, `kill -9`,
/// [`OUTAGE`] with no control plane, a new l2xdpd with the same configuration and state,
/// waited until it has recovered every tunnel (RFC 4951), [`AFTER_RECOVERY`] more traffic.
/// Returns the times and recovered tunnels, l2xdpd's sessions and the fast path's bindings
/// before the kill.
#[allow(clippy::too_many_arguments)]
fn kill_and_recover(
    opts: &Options,
    daemon: &mut L2xdpd,
    lns: &Netns,
    files: &Files,
    log: &Path,
    fast: &XdpDataPlane,
    t0: Instant,
    names: &mut LabNames,
) -> Result<(Failover, Value, BTreeMap<SessionKey, std::net::Ipv4Addr>), Error> {
    let mut drill = Failover::default();
    let sock = &files.control_socket;
    let sessions_before = l2xdpd::ask(sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    let bound_before = bound(fast);
    drill.l2xdpd_rss_kib[0] = crate::lns::rss_kib(daemon.pid());
    event(
        t0,
        "failover drill: kill -9 of l2xdpd, traffic keeps flowing",
    );
    let killed_at = Instant::now();
    let pid = daemon.pid();
    daemon.kill_9();
    event(
        t0,
        &format!("l2xdpd (pid {pid}) killed; no control plane now"),
    );
    pause(OUTAGE)?;
    *daemon = L2xdpd::start(Some(lns), &opts.l2xdpd, files, Some(log));
    drill.restart_to_socket_ms = daemon.started.elapsed().as_secs_f64() * 1e3;
    names.l2xdpd_pids.push(daemon.pid());
    event(
        t0,
        &format!(
            "new l2xdpd (pid {}) started with the same configuration and state: RFC 4951 \
             recovery",
            daemon.pid()
        ),
    );
    // A tunnel survives the restart resumed (the same control connection) or recovered
    // (RFC 4951).
    let survived = |d: &Value| {
        u(&d["l2tp"]["failover"]["tunnel recovered"]) + u(&d["l2tp"]["failover"]["tunnel resumed"])
    };
    let st = status_until(sock, opts.scale.step_limit, |d| {
        survived(d) >= opts.tunnels as u64
    })?;
    drill.tunnels_recovered = survived(&st);
    drill.restart_to_recovered_ms = daemon.started.elapsed().as_secs_f64() * 1e3;
    drill.kill_to_recovered_ms = killed_at.elapsed().as_secs_f64() * 1e3;
    drill.l2xdpd_rss_kib[1] = crate::lns::rss_kib(daemon.pid());
    event(
        t0,
        &format!(
            "{} of {} tunnel(s) recovered, {:.0} ms after the restart",
            drill.tunnels_recovered, opts.tunnels, drill.restart_to_recovered_ms
        ),
    );
    pause(AFTER_RECOVERY)?;
    Ok((drill, sessions_before, bound_before))
}

/// Step 5: one more session through the new l2xdpd (user `tunnels × sessions`, on `tunnel`), and
/// [`NEW_SESSION_PACKETS`] each way through it.
fn new_session(
    opts: &Options,
    lab: &mut Lab,
    tunnel: TunnelId,
    report: &mut Report,
) -> Result<(), Error> {
    let n = opts.tunnels * opts.sessions;
    heading(5, "A new session through the recovered l2xdpd");
    let lac = lab.lac.as_mut().expect("the LAC runs until the end");
    let deadline = tokio::time::Instant::now() + opts.scale.step_limit;
    let e = block_on(&lab.rt, lac.open_session(tunnel, n, deadline))?;
    let new = lab
        .rt
        .block_on(subscriber(&lac.handle, &e))
        .ok_or_else(|| Error::Failed("the new session has no PPP up".into()))?;
    let end = Instant::now() + opts.scale.step_limit;
    while !bound(&lab.fast).contains_key(&new.lns_key) && Instant::now() < end {
        pause(Duration::from_millis(20))?;
    }
    let one = BTreeMap::from([(new.view.our_ids, new.clone())]);
    let core_rx = Counter::start(ip_socket(&lab.core_port), classify_upstream);
    let one_rx = one.clone();
    let lac_rx = Counter::start(ip_socket(&lab.lac_port), move |f| {
        classify_downstream(&one_rx, f)
    });
    let mut flows = Flows::new(&one);
    let sent = std::panic::catch_unwind(AssertUnwindSafe(|| {
        flows.send_rounds(
            NEW_SESSION_PACKETS,
            &mut Paced::new(&lab.lac_sock, &core_rx).with_limit(STALL_LIMIT),
            &mut Paced::new(&lab.core_sock, &lac_rx).with_limit(STALL_LIMIT),
        );
    }));
    let end = Instant::now() + SETTLE;
    while (core_rx.total() < NEW_SESSION_PACKETS || lac_rx.total() < NEW_SESSION_PACKETS)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    report.new_session = NewSession {
        user: format!("user{n}"),
        address: new.addr.to_string(),
        up_received: core_rx.total() as u64,
        down_received: lac_rx.total() as u64,
    };
    if let Err(p) = sent {
        report
            .failures
            .push(format!("the new session's traffic: {}", panic_text(&*p)));
    }
    println!(
        "  user{n} up with {}, installed by the new l2xdpd; {} packets each way sent, {} \
         counted at the core, {} at the LAC",
        new.addr,
        NEW_SESSION_PACKETS,
        report.new_session.up_received,
        report.new_session.down_received
    );
    Ok(())
}

/// What did not work, from the report: no traffic on a side, a tunnel not recovered, a
/// session not kept, a packet lost, anything down at the LAC, a new session without traffic.
fn failures(opts: &Options, r: &Report) -> Vec<String> {
    let n = (opts.tunnels * opts.sessions) as u64;
    let d = &r.failover;
    let mut f = Vec::new();
    if r.traffic.up_received == 0 || r.traffic.down_received == 0 {
        f.push("no traffic counted on one side".into());
    }
    if d.tunnels_recovered < opts.tunnels as u64 {
        f.push(format!(
            "{} of {} tunnels recovered",
            d.tunnels_recovered, opts.tunnels
        ));
    }
    if d.sessions_kept != n || d.fast_path_kept != n {
        f.push(format!(
            "{} of {n} sessions kept by l2xdpd, {} in the fast path",
            d.sessions_kept, d.fast_path_kept
        ));
    }
    if d.data_lost != 0 {
        f.push(format!("{} data packets lost", d.data_lost));
    }
    if d.lac_down_events != 0 {
        f.push(format!(
            "{} tunnels or sessions went down at the LAC",
            d.lac_down_events
        ));
    }
    let o = &r.l2xdpctl;
    if o.tunnels != opts.tunnels as u64 || o.tunnel_sessions != n {
        f.push(format!(
            "l2xdpctl show tunnels listed {} tunnels with {} sessions",
            o.tunnels, o.tunnel_sessions
        ));
    }
    if o.stats_reports == 0 {
        f.push("no l2xdpctl show stats report in the live view".into());
    }
    let recovered = o
        .recoveries
        .iter()
        .filter(|t| t.outcome == "recovered")
        .count();
    if recovered != opts.tunnels || o.recoveries.len() != opts.tunnels {
        f.push(format!(
            "l2xdpctl failover status: {recovered} of {} tunnels recovered",
            o.recoveries.len()
        ));
    }
    let want = NEW_SESSION_PACKETS as u64;
    if r.new_session.up_received != want || r.new_session.down_received != want {
        f.push("the new session did not carry its traffic".into());
    }
    f
}

fn event(t0: Instant, what: &str) {
    println!("  {:>5.1}s  >> {what}", t0.elapsed().as_secs_f64());
}

/// What the live view reads.
struct View<'a> {
    ctl: &'a Ctl,
    core_rx: &'a Counter,
    lac_rx: &'a Counter,
    t0: Instant,
}

impl View<'_> {
    /// The live view's two header lines ([`show_stats`] prints the rows).
    fn header() -> String {
        format!(
            "  {:6}  {:<23}  {:<35}  {}\n  {:>6}  {:<23}  {:>12}  {:>12}  {:>7}  {:>11}  {:>11}",
            "",
            "l2xdpctl show tunnels",
            "l2xdpctl show stats (XDP)",
            "counted at the receivers",
            "time",
            "l2xdpd",
            "upstream",
            "downstream",
            "dropped",
            "core host",
            "the LAC"
        )
    }
}

/// What the live view saw of the fast path: reports, and the packets at the last one.
#[derive(Default)]
struct Seen {
    reports: u64,
    up: u64,
    down: u64,
    dropped: u64,
}

/// The live view: one line for each report of `l2xdpctl show stats --count 0 --json`
/// (`stats`) — l2xdpd's tunnels and sessions (`l2xdpctl show tunnels`; `down` when it cannot
/// be reached), the fast path's packets per second per direction and its drops (the report),
/// and the packets counted at the receivers.
fn show_stats(v: &View, stats: &Value, seen: &mut Seen) {
    let t = v.t0.elapsed().as_secs_f64();
    let l2xdpd = match v.ctl.run(&["--json", "show", "tunnels"]) {
        Ok((Some(0), out, _)) => {
            let t: Value = serde_json::from_str(&out).unwrap_or_default();
            let rows = t.as_array().map_or(&[][..], Vec::as_slice);
            let sessions: u64 = rows.iter().map(|r| u(&r["sessions"])).sum();
            format!("{} tunnels, {sessions} sessions", rows.len())
        }
        _ => "down".into(),
    };
    let snap = &stats["snapshot"]["total"];
    if snap.is_null() {
        println!("  {t:>5.1}s  l2xdpctl show stats: {}", stats["error"]);
        return;
    }
    let rate = &stats["rates"]["total"];
    let pps = |r: &Value| format!("{} pps", thousands(r["pps"].as_f64().unwrap_or(0.0) as u64));
    *seen = Seen {
        reports: seen.reports + 1,
        up: u(&snap["upstream"]["packets"]),
        down: u(&snap["downstream"]["packets"]),
        dropped: u(&snap["dropped"]),
    };
    println!(
        "  {t:>5.1}s  {l2xdpd:<23}  {:>12}  {:>12}  {:>7}  {:>11}  {:>11}",
        pps(&rate["upstream"]),
        pps(&rate["downstream"]),
        thousands(seen.dropped),
        thousands(v.core_rx.total() as u64),
        thousands(v.lac_rx.total() as u64),
    );
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// After the lab is gone: no namespace, l2xdpd process or scratch directory (with its bpffs
/// mount and pins) left. Prints what it checked.
fn check_cleanup(names: &LabNames) -> bool {
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let ns_left: Vec<&String> = names
        .namespaces
        .iter()
        .filter(|n| netns.split_whitespace().any(|w| w == n.as_str()))
        .collect();
    let procs_left: Vec<u32> = names
        .l2xdpd_pids
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "l2xdpd")
        })
        .collect();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let scratch_left = !names.scratch.is_empty()
        && (Path::new(&names.scratch).exists() || mounts.contains(&names.scratch));
    let ok = ns_left.is_empty() && procs_left.is_empty() && !scratch_left;
    if ok {
        println!(
            "  removed: {} namespaces, {} l2xdpd processes, the XDP programs, pins and bpffs \
             mount, {}",
            names.namespaces.len(),
            names.l2xdpd_pids.len(),
            if names.scratch.is_empty() {
                "no scratch directory"
            } else {
                names.scratch.as_str()
            }
        );
    } else {
        println!(
            "  LEFT BEHIND: namespaces {ns_left:?}, l2xdpd pids {procs_left:?}, scratch {}",
            if scratch_left {
                names.scratch.as_str()
            } else {
                "removed"
            }
        );
    }
    ok
}

/// The one-line verdict.
pub fn verdict(r: &Report) -> String {
    if r.ok {
        format!(
            "PASS: {} sessions up, {} packets upstream and {} downstream counted, failover \
             recovered {} tunnels in {:.0} ms with {} sessions kept and 0 packets lost",
            r.bringup.sessions_up,
            thousands(r.traffic.up_received),
            thousands(r.traffic.down_received),
            r.failover.tunnels_recovered,
            r.failover.restart_to_recovered_ms,
            r.failover.sessions_kept
        )
    } else {
        format!("FAIL: {}", r.failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_default_configuration_is_valid_with_the_lab_keys() {
        let dir = std::env::temp_dir().join(format!("l2xdp-demo-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let files = l2xdpd::write_config(
            &dir,
            Path::new("built-in"),
            DEFAULT_CONFIG,
            Placement::lab(Path::new("/sys/fs/bpf/x")),
            3,
        )
        .expect("valid");
        let c = DaemonConfig::load(&files.config).expect("loads");
        assert!(c.l2tp.persists(), "the drill needs failover with control");
        assert_eq!(
            c.daemon.control_socket.as_deref(),
            Some(files.control_socket.as_path())
        );
        assert_eq!(c.dataplane.pin_dir, Path::new("/sys/fs/bpf/x"));
        assert_eq!(c.credentials().expect("users").len(), 3);
        let e = l2xdpd::write_config(
            &dir,
            Path::new("mine.toml"),
            "[ppp]\nauht = 1\n",
            Placement::lab(Path::new("/p")),
            1,
        )
        .expect_err("a misspelt key");
        assert!(e.to_string().starts_with("mine.toml:2:"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
