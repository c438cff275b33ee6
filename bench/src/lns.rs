//! The LNS under test of the control-plane scenarios (`setup-rate`, `failover`): an `l2xdpd`
//! child process on loopback with a generated configuration (CHAP against a users file of
//! `user<i> pw<i>` lines, an IPCP pool, the in-memory fast path), its resident memory, and its
//! control socket.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the generated configuration holds.
#[derive(Debug, Clone)]
pub struct LnsSetup {
    /// Tunnels the LNS must accept (its limits get some headroom).
    pub tunnels: usize,
    /// Sessions per tunnel it must accept.
    pub sessions: usize,
    /// RFC 4951 failover (C = 1, D = 1) with this Recovery Time, the state in
    /// `<dir>/state` (`[daemon] state_dir`); none without.
    pub recovery_time_ms: Option<u32>,
    /// Serve the control socket at `<dir>/ctl.sock`.
    pub control_socket: bool,
}

/// The configuration, users file and state directory of an LNS, in a temporary directory
/// removed when dropped. One per process at a time (the directory is named for the pid).
pub struct LnsFiles {
    /// The temporary directory.
    pub dir: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// The control socket, when configured.
    pub control_socket: Option<PathBuf>,
    /// The failover state directory, when configured.
    pub state_dir: Option<PathBuf>,
    /// Where the LNS listens.
    pub addr: SocketAddr,
}

impl Drop for LnsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl LnsFiles {
    /// Writes the users file (`tunnels × sessions` users) and the configuration for a LNS on
    /// `127.0.0.1:<a free port>`.
    pub fn write(setup: &LnsSetup) -> Result<LnsFiles, String> {
        let port = free_udp_port()?;
        let dir = std::env::temp_dir().join(format!("l2xdp-bench-lns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let files = LnsFiles {
            config: dir.join("l2xdpd.toml"),
            control_socket: setup.control_socket.then(|| dir.join("ctl.sock")),
            state_dir: setup.recovery_time_ms.map(|_| dir.join("state")),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        let n = setup.tunnels * setup.sessions;
        let users = files.dir.join("users");
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(&users).map_err(|e| e.to_string())?);
        for i in 0..n {
            writeln!(f, "user{i} pw{i}").map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())?;
        drop(f);
        let mut daemon = format!("listen = [\"{}\"]\n", files.addr);
        if let Some(s) = &files.control_socket {
            daemon.push_str(&format!("control_socket = \"{}\"\n", s.display()));
        }
        if let Some(s) = &files.state_dir {
            daemon.push_str(&format!("state_dir = \"{}\"\n", s.display()));
        }
        let failover = setup
            .recovery_time_ms
            .map(|ms| {
                format!("\n[l2tp.failover]\ncontrol = true\ndata = true\nrecovery_time_ms = {ms}\n")
            })
            .unwrap_or_default();
        std::fs::write(
            &files.config,
            format!(
                r#"[daemon]
{daemon}
[dataplane]
mode = "memory"

[l2tp]
host_name = "lns-bench"
{failover}
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
                t = setup.tunnels + 16,
                s = setup.sessions + 16,
                users = users.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(files)
    }
}

/// The LNS process; killed (SIGKILL) when dropped.
pub struct Lns {
    child: Child,
    /// When it was spawned.
    pub started: Instant,
}

impl Drop for Lns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lns {
    /// Starts `l2xdpd --config <files.config>` (logging warnings and errors to our stderr).
    pub fn spawn(l2xdpd: &Path, files: &LnsFiles) -> Result<Lns, String> {
        let started = Instant::now();
        let child = Command::new(l2xdpd)
            .arg("--config")
            .arg(&files.config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", l2xdpd.display()))?;
        Ok(Lns { child, started })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its VmRSS (KiB).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// `kill -9`, and reaps it.
    pub fn kill_9(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| format!("kill -9: {e}"))?;
        self.child.wait().map_err(|e| format!("wait: {e}"))?;
        Ok(())
    }

    /// Fails when the process has exited.
    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!("l2xdpd exited: {st}")),
            Err(e) => Err(format!("l2xdpd: {e}")),
        }
    }

    /// Waits (bounded by `limit`) until something listens on the LNS's UDP address.
    pub async fn wait_bound(&mut self, addr: SocketAddr, limit: Duration) -> Result<(), String> {
        let t = Instant::now();
        while std::net::UdpSocket::bind(addr).is_ok() {
            self.alive()?;
            if t.elapsed() > limit {
                return Err("l2xdpd did not bind its address".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits (bounded by `limit`, polling every `every`) until the control socket at `sock`
    /// answers `status` with a reply for which `done` holds, and returns the reply's data.
    pub async fn status_when(
        &mut self,
        sock: &Path,
        limit: Duration,
        every: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let t = Instant::now();
        loop {
            self.alive()?;
            if let Ok(v) = ask(sock, r#"{"cmd":"status"}"#).await {
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
}

/// One request on the control socket (one JSON line), its reply.
pub async fn ask(sock: &Path, req: &str) -> Result<Value, String> {
    let mut s = tokio::net::UnixStream::connect(sock)
        .await
        .map_err(|e| format!("{}: {e}", sock.display()))?;
    s.write_all(format!("{req}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&line).map_err(|e| format!("control socket reply: {e}"))
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

fn free_udp_port() -> Result<u16, String> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// The `l2xdpd` next to this executable (see [`sibling_binary`]).
pub fn default_l2xdpd() -> PathBuf {
    sibling_binary("l2xdpd")
}

/// The workspace binary `name` next to this executable (cargo puts a workspace's binaries side
/// by side; test executables sit one level below, in `deps/`), else `name` (from `PATH`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().ok();
    exe.iter()
        .flat_map(|p| p.ancestors().skip(1).take(2))
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
