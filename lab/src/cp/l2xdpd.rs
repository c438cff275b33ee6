//! `l2xdpd` as a process, for tests, benches and the demo: its configuration (the lab's keys set
//! over a base the caller chooses: [`write_config`]), the child — in a lab namespace over a
//! fast path pinned in the lab's own bpffs ([`crate::scratch`]), or on this host
//! with the in-memory data plane — `kill -9`, SIGTERM, and its control socket ([`ask`]).
//!
//! Fixtures: a failure panics with what failed, except where an operator's input is involved
//! ([`write_config`] with a configuration file given by hand), l2xdpd may be down
//! ([`try_ask`]), or the caller is a benchmark reporting errors ([`L2xdpd::spawn`]).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use l2xdp_controlplane::config_file::{self, ConfigError};
use l2xdp_controlplane::daemon::DaemonConfig;
use serde_json::Value;

use crate::topology::{L2TP_PORT, LNS_IP};
use crate::traffic::LIMIT;
use crate::Netns;

/// The files of a lab's l2xdpd, all in one directory.
#[derive(Debug, Clone)]
pub struct Files {
    /// The configuration file.
    pub config: PathBuf,
    /// Its control socket.
    pub control_socket: PathBuf,
    /// Its RFC 4951 failover state (`[daemon] state_dir`).
    pub state_dir: PathBuf,
    /// The users file: `user<i> pw<i>` lines.
    pub users: PathBuf,
}

/// Why a lab configuration could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LabConfigError {
    /// The base (or the result) is not an acceptable l2xdpd configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A section of the base is not a table.
    #[error("{path}: [{section}] must be a table")]
    NotATable { path: PathBuf, section: String },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration could not be serialised.
    #[error("cannot write the configuration: {0}")]
    Serialise(#[from] toml::ser::Error),
}

/// The keys [`write_config`] sets, whatever the base says: what ties l2xdpd to the lab.
pub const LAB_KEYS: &[&str] = &[
    "daemon.listen",
    "daemon.control_socket",
    "daemon.state_dir",
    "dataplane.mode",
    "dataplane.pin_dir",
    "users.file",
];

/// Where a lab's l2xdpd listens and which fast path it drives.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// `daemon.listen`.
    pub listen: SocketAddr,
    /// The XDP fast path pinned here (`dataplane.mode = "xdp"`, `pin_dir`); `None`: the
    /// in-memory data plane (`mode = "memory"`, no root needed).
    pub pins: Option<&'a Path>,
}

impl<'a> Placement<'a> {
    /// The LNS of the veth lab ([`crate::topology`]: `192.0.2.1:1701`) over the
    /// fast path pinned in `pins`.
    pub fn lab(pins: &'a Path) -> Placement<'a> {
        Placement {
            listen: SocketAddr::new(std::net::IpAddr::V4(LNS_IP), L2TP_PORT),
            pins: Some(pins),
        }
    }

    /// `listen` (loopback, say) with the in-memory data plane.
    pub fn memory(listen: SocketAddr) -> Placement<'a> {
        Placement { listen, pins: None }
    }
}

/// A UDP port free on 127.0.0.1 now (for [`Placement::memory`]).
pub fn free_udp_port() -> std::io::Result<u16> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
}

/// Writes, in `dir`, a users file of `users` users (`user0 pw0`, `user1 pw1`, ...: the LAC
/// emulators' subscribers) and l2xdpd's configuration: `base` (TOML text from `base_path`,
/// which names it in errors) with the [`LAB_KEYS`] set — listening where `at` says, the
/// control socket `dir/ctl.sock`, the state in `dir/state`, the fast path `at` says, the users
/// file. The result is checked as l2xdpd would. Writing again over the same `dir` rewrites
/// both files (a test changing the configuration for a reload).
pub fn write_config(
    dir: &Path,
    base_path: &Path,
    base: &str,
    at: Placement,
    users: usize,
) -> Result<Files, LabConfigError> {
    let files = Files {
        config: dir.join("l2xdpd.toml"),
        control_socket: dir.join("ctl.sock"),
        state_dir: dir.join("state"),
        users: dir.join("users"),
    };
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|source| LabConfigError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut u = String::from("# user password [address]\n");
    for i in 0..users {
        u.push_str(&format!("user{i} pw{i}\n"));
    }
    write(&files.users, &u)?;

    // Unknown keys and wrong types are reported against the base, with its lines.
    config_file::parse::<DaemonConfig>(base_path, base)?;
    let mut t: toml::Table = config_file::parse(base_path, base)?;
    let path_str = |p: &Path| toml::Value::String(p.display().to_string());
    let daemon = section(&mut t, "daemon", base_path)?;
    daemon.insert(
        "listen".into(),
        toml::Value::Array(vec![toml::Value::String(at.listen.to_string())]),
    );
    daemon.insert("control_socket".into(), path_str(&files.control_socket));
    daemon.insert("state_dir".into(), path_str(&files.state_dir));
    let dataplane = section(&mut t, "dataplane", base_path)?;
    match at.pins {
        Some(pins) => {
            dataplane.insert("mode".into(), toml::Value::String("xdp".into()));
            dataplane.insert("pin_dir".into(), path_str(pins));
        }
        None => {
            dataplane.insert("mode".into(), toml::Value::String("memory".into()));
        }
    }
    section(&mut t, "users", base_path)?.insert("file".into(), path_str(&files.users));
    let text = toml::to_string(&t)?;
    DaemonConfig::parse(&files.config, &text)?;
    write(&files.config, &text)?;
    Ok(files)
}

fn section<'a>(
    t: &'a mut toml::Table,
    name: &str,
    path: &Path,
) -> Result<&'a mut toml::Table, LabConfigError> {
    t.entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| LabConfigError::NotATable {
            path: path.to_path_buf(),
            section: name.into(),
        })
}

/// Why l2xdpd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The process could not be spawned.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("{path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It exited before serving its control socket.
    #[error("l2xdpd exited before opening its control socket ({status}){tail}")]
    Exited { status: ExitStatus, tail: String },
    /// Its control socket did not accept connections in time.
    #[error("l2xdpd did not open its control socket {} within {limit:?}", path.display())]
    Timeout { path: PathBuf, limit: Duration },
    /// The child is not the program expected (`ip netns exec` did not exec it?).
    #[error("the child process is {comm:?}, not {want:?}")]
    NotL2xdpd { comm: String, want: String },
}

/// The l2xdpd child — `ip netns exec <ns> l2xdpd` in a lab namespace (`ip netns exec` execs
/// the command: the child's pid is l2xdpd's) or l2xdpd itself on this host. SIGKILLed and
/// reaped on drop if still running.
#[derive(Debug)]
pub struct L2xdpd {
    child: Child,
    reaped: Option<ExitStatus>,
    /// Its /proc comm: the binary's file name (15 bytes at most).
    name: String,
    socket: PathBuf,
    log: Option<PathBuf>,
    /// When it was spawned.
    pub started: Instant,
}

impl L2xdpd {
    /// [`L2xdpd::spawn`] and [`L2xdpd::wait_ready`]; panics with what failed.
    pub fn start(ns: Option<&Netns>, bin: &Path, files: &Files, log: Option<&Path>) -> L2xdpd {
        let mut d = L2xdpd::spawn(ns, bin, files, log).unwrap_or_else(|e| panic!("{e}"));
        d.wait_ready().unwrap_or_else(|e| panic!("{e}"));
        d
    }

    /// Starts `bin --config <files.config>`, in `ns` when given, and returns at once. Its log
    /// goes to the file `log` (level `info`), else to our stderr (level `warn` unless
    /// `RUST_LOG` says otherwise). It runs in a process group of its own (a Ctrl-C at the
    /// terminal reaches the caller, whose guards stop it) and is SIGKILLed if the thread that
    /// started it dies: start it from a thread that outlives it (PR_SET_PDEATHSIG).
    pub fn spawn(
        ns: Option<&Netns>,
        bin: &Path,
        files: &Files,
        log: Option<&Path>,
    ) -> Result<L2xdpd, StartError> {
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--config")
            .arg(&files.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        match log {
            Some(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| StartError::Log {
                        path: p.to_path_buf(),
                        source,
                    })?;
                cmd.stderr(f).env("RUST_LOG", "info").env("NO_COLOR", "1");
            }
            None => {
                cmd.stderr(Stdio::inherit());
                if std::env::var_os("RUST_LOG").is_none() {
                    cmd.env("RUST_LOG", "warn");
                }
            }
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let child = cmd.spawn().map_err(|source| StartError::Spawn {
            bin: bin.to_path_buf(),
            source,
        })?;
        let name: String = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .take(15)
            .collect();
        Ok(L2xdpd {
            child,
            reaped: None,
            name,
            socket: files.control_socket.clone(),
            log: log.map(Path::to_path_buf),
            started,
        })
    }

    /// Waits (bounded) until its control socket accepts connections (the socket file appears
    /// at bind, a moment before listen; the L2TP sockets are bound before it) and checks that
    /// the child is l2xdpd.
    pub fn wait_ready(&mut self) -> Result<(), StartError> {
        let end = Instant::now() + LIMIT;
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.exited() {
                let tail = self.log.as_deref().map(log_tail).unwrap_or_default();
                return Err(StartError::Exited { status, tail });
            }
            if Instant::now() > end {
                return Err(StartError::Timeout {
                    path: self.socket.clone(),
                    limit: LIMIT,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.is_l2xdpd()
    }

    fn is_l2xdpd(&self) -> Result<(), StartError> {
        let comm = self.comm();
        if comm == self.name {
            Ok(())
        } else {
            Err(StartError::NotL2xdpd {
                comm,
                want: self.name.clone(),
            })
        }
    }

    /// Its control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its pid (l2xdpd's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's name, from /proc (empty once it is gone).
    pub fn comm(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.pid()))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// Sends `sig` to l2xdpd itself (its /proc comm is checked first).
    pub fn signal(&self, sig: i32) {
        assert!(self.reaped.is_none(), "l2xdpd has exited");
        if let Err(e) = self.is_l2xdpd() {
            panic!("signalling l2xdpd itself: {e}");
        }
        let pid = i32::try_from(self.pid()).expect("pid");
        // SAFETY: a signal to our own child, not yet reaped (its pid cannot be reused).
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// SIGKILL to l2xdpd itself and reaps it.
    pub fn kill_9(&mut self) {
        self.signal(libc::SIGKILL);
        let st = self.child.wait().expect("reap l2xdpd");
        self.reaped = Some(st);
        assert_eq!(st.signal(), Some(libc::SIGKILL), "l2xdpd died of SIGKILL");
    }

    /// SIGTERM (a clean stop), and its exit status once it has exited (bounded).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let end = Instant::now() + LIMIT;
        loop {
            if let Some(st) = self.exited() {
                return st;
            }
            assert!(Instant::now() < end, "l2xdpd did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it has exited (and how), reaping it if so.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }
}

impl Drop for L2xdpd {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last ten lines of a log file, each indented by two spaces (empty when there are none).
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..]
        .iter()
        .map(|l| format!("\n  {l}"))
        .collect()
}

/// One request on the control socket at `sock` (a JSON line), its reply; an error when
/// nobody answers (l2xdpd down) or the reply is not JSON.
pub fn try_ask(sock: &Path, req: &str) -> std::io::Result<Value> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(LIMIT))?;
    s.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

/// [`try_ask`], l2xdpd expected to answer.
pub fn ask(sock: &Path, req: &str) -> Value {
    try_ask(sock, req).unwrap_or_else(|e| panic!("control socket {}: {e}", sock.display()))
}

/// Waits (bounded by `limit`, polling every `every`) until `done` holds for the data of
/// l2xdpd's reply to `status`, and returns the whole reply (or the last one, when time ran
/// out: the caller says what was missing).
pub fn status_when(
    sock: &Path,
    limit: Duration,
    every: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + limit;
    loop {
        let s = ask(sock, r#"{"cmd":"status"}"#);
        assert_eq!(s["ok"], true, "{s}");
        if done(&s["data"]) || Instant::now() > end {
            return s;
        }
        std::thread::sleep(every);
    }
}
