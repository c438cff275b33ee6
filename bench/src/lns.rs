//! The LNS under test of the control-plane scenarios (`setup-rate`, `failover`): an `l2xdpd`
//! child process on loopback with the in-memory fast path (`l2xdp_lab::cp::l2xdpd`:
//! its configuration, process and control socket; CHAP against a users file of `user<i> pw<i>`
//! lines, an IPCP pool), polled from async code, and its resident memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use l2xdp_lab::cp::l2xdpd::{self, free_udp_port, try_ask, Files, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use serde_json::Value;

/// What the generated configuration holds.
#[derive(Debug, Clone)]
pub struct LnsSetup {
    /// Tunnels the LNS must accept (its limits get some headroom).
    pub tunnels: usize,
    /// Sessions per tunnel it must accept.
    pub sessions: usize,
    /// RFC 4951 failover (C = 1, D = 1) with this Recovery Time; none without.
    pub recovery_time_ms: Option<u32>,
    /// One LAC opens all `tunnels` at once from one address: the half-open limits (total and
    /// per source) and the per-source SCCRQ burst are raised to `tunnels` (the defaults would
    /// refuse or delay a burst of thousands of tunnels from one address). Off: the defaults.
    pub one_lac_at_once: bool,
}

/// The configuration, users file, control socket and state directory of an LNS, in a
/// temporary directory removed when dropped (one per process at a time).
pub struct LnsFiles {
    /// The files.
    pub files: Files,
    /// Where the LNS listens.
    pub addr: SocketAddr,
    _dir: Scratch,
}

impl LnsFiles {
    /// Writes the users file (`tunnels × sessions` users) and the configuration for a LNS on
    /// `127.0.0.1:<a free port>`.
    pub fn write(setup: &LnsSetup) -> Result<LnsFiles, String> {
        let port = free_udp_port().map_err(|e| format!("a free UDP port: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = Scratch::plain("bench-lns");
        let failover = setup
            .recovery_time_ms
            .map(|ms| {
                format!("\n[l2tp.failover]\ncontrol = true\ndata = true\nrecovery_time_ms = {ms}\n")
            })
            .unwrap_or_default();
        let at_once = if setup.one_lac_at_once {
            format!(
                "max_half_open = {t}\nmax_half_open_per_source = {t}\nsccrq_per_source_burst = {t}\n",
                t = setup.tunnels + 16
            )
        } else {
            String::new()
        };
        let base = format!(
            r#"[l2tp]
host_name = "lns-bench"
{failover}
[l2tp.limits]
max_tunnels = {t}
max_sessions_per_tunnel = {s}
{at_once}
[ppp]
auth = ["chap"]
echo_interval = {echo}

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["{pool}"]
dns = ["192.0.2.53"]
"#,
            t = setup.tunnels + 16,
            s = setup.sessions + 16,
            echo = crate::failover::echo_interval(setup.tunnels * setup.sessions).as_secs(),
            // 262,142 subscribers fit a /14; beyond, the whole shared address space (RFC 6598).
            pool = if setup.tunnels * setup.sessions < (1 << 18) - 2 {
                "100.64.0.0/14"
            } else {
                "100.64.0.0/10"
            },
        );
        let files = l2xdpd::write_config(
            &dir.dir,
            Path::new("bench"),
            &base,
            Placement::memory(addr),
            setup.tunnels * setup.sessions,
        )
        .map_err(|e| e.to_string())?;
        Ok(LnsFiles {
            files,
            addr,
            _dir: dir,
        })
    }
}

/// Starts `l2xdpd --config <files.config>` (logging warnings and errors to our stderr); it is
/// SIGKILLed when dropped. Call it from the thread that runs the scenario (it outlives the LNS).
pub fn spawn(l2xdpd: &Path, files: &LnsFiles) -> Result<L2xdpd, String> {
    L2xdpd::spawn(None, l2xdpd, &files.files, None).map_err(|e| e.to_string())
}

/// Waits (bounded by `limit`, polling every `every`) until l2xdpd's control socket answers
/// `status` with a reply for which `done` holds, and returns the reply's data. Fails when
/// l2xdpd has exited.
pub async fn status_when(
    lns: &mut L2xdpd,
    limit: Duration,
    every: Duration,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let t = Instant::now();
    let sock = lns.socket().to_path_buf();
    loop {
        if let Some(st) = lns.exited() {
            return Err(format!("l2xdpd exited: {st}"));
        }
        let s = sock.clone();
        let r = tokio::task::spawn_blocking(move || try_ask(&s, r#"{"cmd":"status"}"#)).await;
        if let Ok(Ok(v)) = r {
            if v["ok"] == true && done(&v["data"]) {
                return Ok(v["data"].clone());
            }
        }
        if t.elapsed() > limit {
            return Err(format!("l2xdpd's status not reached after {limit:?}"));
        }
        tokio::time::sleep(every).await;
    }
}

/// VmRSS of `pid` (KiB; 0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
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

/// The `l2xdpd` next to this executable (see [`sibling_binary`]).
pub fn default_l2xdpd() -> PathBuf {
    sibling_binary("l2xdpd")
}

/// The workspace binary `name` next to this executable ([`l2xdp_lab::workspace_binary`]).
pub fn sibling_binary(name: &str) -> PathBuf {
    l2xdp_lab::workspace_binary(name)
}
