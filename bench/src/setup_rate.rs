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

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::driver::Driver;
use l2xdp_controlplane::l2tp::{CallParams, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_wire::l2tp::header::Version;
use serde::Serialize;

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
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// Control connections.
    pub tunnels: usize,
    /// Sessions (all tunnels).
    pub sessions: usize,
    /// Sessions being set up at once.
    pub in_flight: usize,
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
    /// The machine.
    pub machine: crate::machine::Machine,
    /// What was measured: the control plane only (in-memory fast path).
    pub mode: &'static str,
    /// When (UTC).
    pub date: String,
}

/// The LNS process; killed when dropped.
struct Lns {
    child: Child,
    dir: PathBuf,
}

impl Drop for Lns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn start_lns(opts: &Options, port: u16) -> Result<Lns, String> {
    let dir = std::env::temp_dir().join(format!("l2xdp-bench-lns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let n = opts.tunnels * opts.sessions;
    let users = dir.join("users");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&users).map_err(|e| e.to_string())?);
    for i in 0..n {
        writeln!(f, "user{i} pw{i}").map_err(|e| e.to_string())?;
    }
    f.flush().map_err(|e| e.to_string())?;
    drop(f);
    let cfg = dir.join("l2xdpd.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
listen = ["127.0.0.1:{port}"]

[dataplane]
mode = "memory"

[l2tp]
host_name = "lns-bench"

[l2tp.limits]
max_tunnels = {t}
max_sessions_per_tunnel = {s}

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/14"]
dns = ["192.0.2.53"]

[users]
file = "{users}"
"#,
            t = opts.tunnels + 16,
            s = opts.sessions + 16,
            users = users.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new(&opts.l2xdpd)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", opts.l2xdpd.display()))?;
    Ok(Lns { child, dir })
}

fn free_udp_port() -> Result<u16, String> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

async fn open_one(
    lac: &l2xdp_controlplane::driver::Handle,
    tunnel: TunnelId,
    i: usize,
) -> Result<u32, String> {
    let auth = ClientAuth {
        user: format!("user{i}"),
        password: format!("pw{i}").into_bytes(),
    };
    lac.open_session(tunnel, CallParams::default(), Some(auth))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The `l2xdpd` next to this executable (cargo puts a workspace's binaries side by side; test
/// executables sit one level below, in `deps/`), else the one on `PATH`.
pub fn default_l2xdpd() -> PathBuf {
    let exe = std::env::current_exe().ok();
    exe.iter()
        .flat_map(|p| p.ancestors().skip(1).take(2))
        .map(|d| d.join("l2xdpd"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("l2xdpd"))
}

/// Runs the scenario.
pub async fn run(opts: &Options) -> Result<Report, String> {
    let port = free_udp_port()?;
    let lns = start_lns(opts, port)?;
    let lns_addr: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    // Wait for the daemon to bind (it reads a users file first).
    let t = Instant::now();
    while std::net::UdpSocket::bind(lns_addr).is_ok() {
        if t.elapsed() > opts.limit {
            return Err("l2xdpd did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = lns.child.id();
    let rss0 = rss_kib(pid);

    let mut l2tp = L2tpConfig {
        host_name: "lac-bench".into(),
        ..L2tpConfig::default()
    };
    l2tp.limits.max_tunnels = opts.tunnels + 16;
    l2tp.limits.max_sessions_per_tunnel = opts.sessions + 16;
    let node = Node::new(
        NodeConfig {
            l2tp,
            ppp: Arc::new(PppConfig::default()),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: HashMap::new(),
            seed: 0x5eed,
        },
        Box::new(MemoryDataPlane::new()),
    );
    let sock = L2tpSocket::bind_udp("127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
        .map_err(|e| e.to_string())?;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (lac, task) = Driver::new(node, vec![sock])
        .map_err(|e| e.to_string())?
        .with_events(tx)
        .spawn();
    let peer = Peer::udp(lns_addr);

    // Phase 1: tunnels.
    let t0 = Instant::now();
    let mut tunnels: Vec<TunnelId> = Vec::with_capacity(opts.tunnels);
    for _ in 0..opts.tunnels {
        tunnels.push(
            lac.open_tunnel(peer, Version::V2)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?,
        );
    }
    let mut up = 0;
    let deadline = tokio::time::Instant::now() + opts.limit;
    while up < opts.tunnels {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(NodeEvent::TunnelUp { .. })) => up += 1,
            Ok(Some(NodeEvent::TunnelDown { reason, .. })) => {
                return Err(format!("a tunnel went down: {reason}"))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(format!("only {up} tunnels came up")),
        }
    }
    let tunnels_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss1 = rss_kib(pid);

    // Phase 2: sessions, at most `in_flight` being set up at a time, spread over the tunnels.
    let n = opts.tunnels * opts.sessions;
    let mut todo = (0..n).map(|i| (tunnels[i % tunnels.len()], i));
    let mut opened: HashMap<(TunnelId, u32), Instant> = HashMap::with_capacity(n);
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let (mut iccn, mut ipcp) = (0, 0);
    let (mut iccn_at, mut ipcp_at) = (t1, t1);
    let mut open_next = |count: usize| {
        let mut v = Vec::new();
        for _ in 0..count {
            if let Some(x) = todo.next() {
                v.push(x);
            }
        }
        v
    };
    for (t, i) in open_next(opts.in_flight.max(1)) {
        let s = open_one(&lac, t, i).await?;
        opened.insert((t, s), Instant::now());
    }
    while ipcp < n {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(NodeEvent::SessionUp { .. })) => {
                iccn += 1;
                iccn_at = Instant::now();
            }
            Ok(Some(NodeEvent::PppUp {
                tunnel, session, ..
            })) => {
                ipcp += 1;
                ipcp_at = Instant::now();
                if let Some(t) = opened.remove(&(tunnel, session)) {
                    let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
                }
                for (t, i) in open_next(1) {
                    let s = open_one(&lac, t, i).await?;
                    opened.insert((t, s), Instant::now());
                }
            }
            Ok(Some(e @ (NodeEvent::SessionDown { .. } | NodeEvent::TunnelDown { .. }))) => {
                return Err(format!("during set-up: {e:?}"))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(format!(
                    "only {iccn} sessions through ICCN, {ipcp} through IPCP"
                ))
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss2 = rss_kib(pid);
    let retransmissions = lac
        .inspect(|n| n.registry().counters().retransmissions)
        .await
        .map_err(|e| e.to_string())?;
    lac.shutdown().await;
    let _ = task.await;
    drop(lns);

    let iccn_secs = iccn_at.duration_since(t1).as_secs_f64();
    let ipcp_secs = ipcp_at.duration_since(t1).as_secs_f64();
    Ok(Report {
        scenario: "setup-rate",
        tunnels: opts.tunnels,
        sessions: n,
        in_flight: opts.in_flight,
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
        machine: crate::machine::Machine::probe(),
        mode: "control plane (in-memory fast path)",
        date: crate::machine::utc_now(),
    })
}

/// A readable table of a report.
pub fn table(r: &Report) -> String {
    format!(
        "setup-rate: {} tunnels x {} sessions/tunnel = {} sessions, {} in flight (LNS: l2xdpd, LAC emulator on loopback)\n\
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
