//! `l2xdpd`'s configuration file: [`DaemonConfig`] and its sections, read with errors that
//! name the file, line and field ([`crate::config_file`]), and the checks a type cannot
//! express.
//!
//! ```toml
//! [daemon]
//! listen = ["192.0.2.1:1701"]          # L2TP over UDP (IPv4 and/or IPv6 addresses)
//! listen_ip = ["192.0.2.1"]            # L2TPv3 over IP protocol 115 (needs CAP_NET_RAW)
//! control_socket = "/run/l2xdp/l2xdpd.sock"
//! control_socket_group = "l2xdp"       # may use the socket (mode 0660); absent: root only
//! state_dir = "/var/lib/l2xdp"         # RFC 4951 failover state (with [l2tp.failover] C=1)
//! on_damaged_store = "start-empty"     # or "refuse" (l2xdpd does not start)
//!
//! [dataplane]
//! mode = "xdp"                         # or "memory": no fast path (lab, tests)
//! pin_dir = "/sys/fs/bpf/l2xdp"        # maps pinned by l2xdp-dataplane
//!
//! [l2tp]                               # crate::l2tp::L2tpConfig
//! host_name = "lns1"
//! secret = "..."
//! recovery_peers = []                  # RFC 4951 §8: who may recover a tunnel (empty: its peer)
//! [l2tp.failover]                      # RFC 4951: survive a restart of l2xdpd
//! control = true                       # C: persist tunnels and sessions in daemon.state_dir
//! data = true                          # D: data channel (sequence) reset on recovery
//! recovery_time_ms = 5000              # fields left out: true, true, 10000
//!
//! [ppp]                                # crate::ppp::PppConfig
//! auth = ["chap"]
//! [ppp.ipcp]
//! local_address = "100.64.0.1"
//! pool = ["100.64.0.0/16"]
//! dns = ["192.0.2.53"]
//!
//! [users]
//! file = "/etc/l2xdp/users"            # `username password [ipv4]` lines
//!
//! [[pseudowire]]                       # L2TPv3 attachment circuits
//! remote_end_id = "pw-customer-1"
//! interface = "eth2"
//!
//! [initiator]                          # the initiator role (LAC/LCCE; labs and benches)
//! peer = "192.0.2.1:1701"
//! version = 2                          # 2: PPP sessions, 3: Ethernet pseudowires
//! tunnels = 4
//! sessions = 4                         # per tunnel
//!
//! [radius]                             # crate::aaa::RadiusSection: authenticate subscribers by RADIUS
//! nas_identifier = "lns1"
//! [[radius.server]]
//! address = "192.0.2.10"
//! secret = "..."
//!
//! [metrics]                            # Prometheus text on GET /metrics; off when absent
//! listen = "127.0.0.1:9725"
//! per_session = false                  # per-session series (one per session and direction)
//! ```
//!
//! With `[initiator]` the daemon opens, at start-up, `tunnels` control connections to `peer`
//! and `sessions` sessions in each, numbered `n` = 0, 1, … across the tunnels: L2TPv2
//! sessions whose PPP client authenticates as `user<n>` with that user's password from the
//! users file, or L2TPv3 pseudowires with Remote End ID `pw<n>` (see
//! [`initiate`](super::initiate)) — unless it recovered tunnels from its failover state (RFC
//! 4951: a restarted LAC takes its tunnels back, PPP client links included, rather than opening
//! new ones). The control socket's `open_session` opens one more.
//!
//! `deploy/l2xdp.toml` is a commented production example; its tests hold it to the code: every
//! field is there, and every value it shows (or gives as "(default: ...)") is the `Default`.
//!
//! [`DaemonConfig::check`] refuses, with the file, line and field, what parses but cannot work:
//! ranges (ports, timers, windows, MRUs, cookie lengths), relations between fields (`min_mru`
//! and `mru`, the back-off and its cap, a pool and the LNS's own address), addresses of the
//! wrong kind or family, empty strings and paths that cannot be used.

use std::net::{IpAddr, SocketAddr};

use crate::l2tp::failover::OnDamagedStore;
use std::path::{Path, PathBuf};

use l2xdp_wire::l2tp::header::Version;
use serde::Deserialize;

use crate::config_file::{self, ConfigError, Problem};
use crate::l2tp::L2tpConfig;
use crate::ppp::{Ipv4Pool, MemoryCredentials, PppConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Sockets and the operator interface.
    pub daemon: DaemonSection,
    /// The fast path.
    pub dataplane: DataplaneSection,
    /// Control connections and sessions.
    pub l2tp: L2tpConfig,
    /// PPP termination.
    pub ppp: PppConfig,
    /// Local users.
    pub users: UsersSection,
    /// L2TPv3 attachment circuits.
    pub pseudowire: Vec<PseudowireBinding>,
    /// The initiator role: what to open at start-up.
    pub initiator: Option<InitiatorSection>,
    /// The Prometheus endpoint; none when absent.
    pub metrics: Option<MetricsSection>,
    /// RADIUS authentication; none when absent (the users file then).
    pub radius: Option<crate::aaa::config::RadiusSection>,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Where to serve `GET /metrics` (plain HTTP/1.1).
    pub listen: SocketAddr,
    /// Per-session series (one per session and direction): off by default, to keep the
    /// number of series bounded by the configuration rather than by the subscribers.
    #[serde(default)]
    pub per_session: bool,
}

/// `[initiator]`: tunnels and sessions the daemon opens at start-up (LAC/LCCE role).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitiatorSection {
    /// The LNS/LCCE to connect to.
    pub peer: SocketAddr,
    /// L2TP version: 2 (PPP sessions) or 3 (Ethernet pseudowires).
    pub version: u8,
    /// Control connections to open.
    pub tunnels: usize,
    /// Sessions per control connection.
    pub sessions: usize,
}

impl InitiatorSection {
    /// The L2TP version.
    pub fn version(&self) -> Result<Version, String> {
        match self.version {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            v => Err(format!("initiator.version: {v} is neither 2 nor 3")),
        }
    }
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// The longest interface name plus its NUL (Linux `IFNAMSIZ`).
const IFNAMSIZ: usize = 16;

impl InitiatorSection {
    fn check(&self, limits: &crate::l2tp::config::Limits) -> Result<(), Problem> {
        self.version()
            .map_err(|why| Problem::new("initiator.version", why))?;
        if self.peer.port() == 0 || self.peer.ip().is_unspecified() || self.peer.ip().is_multicast()
        {
            return Err(Problem::new(
                "initiator.peer",
                format!(
                    "{}: give the peer's unicast address and UDP port (1701 is L2TP's)",
                    self.peer
                ),
            ));
        }
        if self.tunnels > limits.max_tunnels {
            return Err(Problem::new(
                "initiator.tunnels",
                format!(
                    "{} is above l2tp.limits.max_tunnels {}",
                    self.tunnels, limits.max_tunnels
                ),
            ));
        }
        if self.sessions > limits.max_sessions_per_tunnel {
            return Err(Problem::new(
                "initiator.sessions",
                format!(
                    "{} is above l2tp.limits.max_sessions_per_tunnel {}",
                    self.sessions, limits.max_sessions_per_tunnel
                ),
            ));
        }
        Ok(())
    }
}

/// `[daemon]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSection {
    /// UDP addresses to listen on (port 1701 unless given).
    pub listen: Vec<SocketAddr>,
    /// Addresses for L2TPv3 over IP protocol 115.
    pub listen_ip: Vec<IpAddr>,
    /// The operator's control socket (`l2xdpctl`); none when absent.
    pub control_socket: Option<PathBuf>,
    /// The control socket's group (a name or number): its members may use the socket (mode
    /// 0660); absent: root and l2xdpd's own user only.
    pub control_socket_group: Option<String>,
    /// Where the RFC 4951 failover state is kept (used when `[l2tp.failover]` has
    /// `control = true`): the embedded database `failover.redb` (`RedbStore`).
    pub state_dir: PathBuf,
    /// A damaged or unusable failover store at start-up: `"start-empty"` (moved aside, logged,
    /// counted; what can be read is kept) or `"refuse"` (l2xdpd does not start).
    pub on_damaged_store: OnDamagedStore,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            listen: vec![SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 1701)],
            listen_ip: Vec::new(),
            control_socket: None,
            control_socket_group: None,
            state_dir: PathBuf::from("/var/lib/l2xdp"),
            on_damaged_store: OnDamagedStore::StartEmpty,
        }
    }
}

impl DaemonSection {
    /// `persists`: the failover state is kept in `state_dir`.
    fn check(&self, persists: bool) -> Result<(), Problem> {
        if self.listen.is_empty() && self.listen_ip.is_empty() {
            return Err(Problem::new(
                "daemon.listen",
                "no address to listen on (give daemon.listen or daemon.listen_ip)",
            ));
        }
        for (i, a) in self.listen.iter().enumerate() {
            let field = format!("daemon.listen[{i}]");
            if a.port() == 0 {
                return Err(Problem::new(
                    field,
                    format!("{a}: port 0 is no port a peer can reach; give one (1701 is L2TP's, RFC 2661 §8.1)"),
                ));
            }
            if a.ip().is_multicast() {
                return Err(Problem::new(field, format!("{a} is a multicast address")));
            }
            if let Some(j) = self.listen[..i].iter().position(|b| b == a) {
                return Err(Problem::new(
                    field,
                    format!("{a} is also daemon.listen[{j}]: give each address once"),
                ));
            }
            if let Some(j) = self.listen[..i].iter().position(|b| {
                b.port() == a.port()
                    && b.is_ipv4() == a.is_ipv4()
                    && (b.ip().is_unspecified() || a.ip().is_unspecified())
            }) {
                return Err(Problem::new(
                    field,
                    format!(
                        "{a} and daemon.listen[{j}] {} overlap (a wildcard address takes the port on every address)",
                        self.listen[j]
                    ),
                ));
            }
        }
        for (i, a) in self.listen_ip.iter().enumerate() {
            let field = format!("daemon.listen_ip[{i}]");
            if a.is_multicast() {
                return Err(Problem::new(field, format!("{a} is a multicast address")));
            }
            if self.listen_ip[..i].contains(a) {
                return Err(Problem::new(field, format!("{a} is listed twice")));
            }
        }
        if let Some(sock) = &self.control_socket {
            if sock.as_os_str().is_empty() || !sock.is_absolute() {
                return Err(Problem::new(
                    "daemon.control_socket",
                    format!(
                        "{:?}: give an absolute path (like /run/l2xdp/l2xdpd.sock), or remove the line for no control socket",
                        sock
                    ),
                ));
            }
            // An existing file that is not a socket is refused, never replaced.
            if let Ok(m) = std::fs::symlink_metadata(sock) {
                use std::os::unix::fs::FileTypeExt;
                if !m.file_type().is_socket() {
                    return Err(Problem::new(
                        "daemon.control_socket",
                        format!(
                            "{} exists and is not a socket: l2xdpd will not replace it; give another path or remove it",
                            sock.display()
                        ),
                    ));
                }
            }
        }
        if self.state_dir.as_os_str().is_empty() || !self.state_dir.is_absolute() {
            return Err(Problem::new(
                "daemon.state_dir",
                format!(
                    "{:?}: give an absolute path (default /var/lib/l2xdp)",
                    self.state_dir
                ),
            ));
        }
        if persists {
            // An existing directory l2xdpd cannot write is the store-damage policy's case (serve
            // without failover, loudly, or refuse to start); one that cannot be made is an error.
            creatable_dir(&self.state_dir).map_err(|why| Problem::new("daemon.state_dir", why))?;
        }
        Ok(())
    }
}

/// Whether `dir` is a directory l2xdpd can write to, or can be created: its nearest existing
/// ancestor must be a directory where one can be made (probed: `--check` leaves nothing).
/// An existing `dir` passes even when it cannot be written (the store-damage policy's case).
fn creatable_dir(dir: &Path) -> Result<(), String> {
    let mut p = dir;
    loop {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                return if p != dir && !writable(p) {
                    Err(format!(
                        "{} cannot be created: {} is not writable (RFC 4951 failover state lives here)",
                        dir.display(),
                        p.display()
                    ))
                } else {
                    Ok(())
                };
            }
            Ok(_) => {
                return Err(format!(
                    "{} cannot be created: {} is not a directory",
                    dir.display(),
                    p.display()
                ))
            }
            // Missing, or below a file (ENOTDIR): look at the parent.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                match p.parent() {
                    Some(parent) => p = parent,
                    None => return Err(format!("{} cannot be created", dir.display())),
                }
            }
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
}

/// Whether a directory can be made in `p`: makes and removes a probe directory (access(2)
/// alone says yes to root in /proc or /sys, where nothing can be created).
fn writable(p: &Path) -> bool {
    let probe = p.join(format!(".l2xdpd-check-{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::AlreadyExists,
    }
}

/// Which fast path the control plane installs sessions into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneMode {
    /// The XDP maps pinned by `l2xdp-dataplane`.
    Xdp,
    /// None: sessions are kept in memory only (labs, tests, a control plane without a kernel).
    #[default]
    Memory,
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataplaneSection {
    /// `xdp` or `memory`.
    pub mode: DataplaneMode,
    /// Where `l2xdp-dataplane` pinned the maps.
    pub pin_dir: PathBuf,
}

impl Default for DataplaneSection {
    fn default() -> Self {
        DataplaneSection {
            mode: DataplaneMode::Memory,
            pin_dir: PathBuf::from("/sys/fs/bpf/l2xdp"),
        }
    }
}

impl DataplaneSection {
    fn check(&self) -> Result<(), Problem> {
        if self.mode == DataplaneMode::Xdp
            && (self.pin_dir.as_os_str().is_empty() || !self.pin_dir.is_absolute())
        {
            return Err(Problem::new(
                "dataplane.pin_dir",
                format!(
                    "{:?}: give the absolute path l2xdp-dataplane pinned its maps under (its --pin-dir, default /sys/fs/bpf/l2xdp)",
                    self.pin_dir
                ),
            ));
        }
        Ok(())
    }
}

/// `[users]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersSection {
    /// The users file; no local users when absent.
    pub file: Option<PathBuf>,
}

/// `[[pseudowire]]`: where an L2TPv3 pseudowire's Ethernet frames go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudowireBinding {
    /// The Remote End ID the peer sends in its ICRQ (RFC 3931 §5.4.4).
    pub remote_end_id: String,
    /// The attachment interface.
    pub interface: String,
}

impl DaemonConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = config_file::read(path)?;
        Self::parse(path, &text)
    }

    /// Parses and checks configuration text (`path` is used in messages): a value that parses
    /// but cannot work is refused with the line and field ([`DaemonConfig::check`]).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: DaemonConfig = config_file::parse(path, text)?;
        c.check().map_err(|p| p.at(path, text))?;
        Ok(c)
    }

    /// The checks a type cannot express: ranges, relations between fields, addresses of the
    /// wrong kind, empty strings, paths. The first problem found is returned.
    pub fn check(&self) -> Result<(), Problem> {
        self.daemon.check(self.l2tp.persists())?;
        self.dataplane.check()?;
        self.l2tp.check("l2tp")?;
        self.ppp.check("ppp")?;
        if self.ppp.ipcp.enabled
            && self.ppp.ipcp.pool.is_empty()
            && self.users.file.is_none()
            && self.radius.is_none()
        {
            return Err(Problem::new(
                "ppp.ipcp.pool",
                "no address pool and no users file with fixed addresses: IPCP cannot assign any",
            ));
        }
        match self.pool() {
            Err(e) => return Err(Problem::new("ppp.ipcp.pool", e.to_string())),
            Ok(Some(p)) if p.capacity() == 0 => {
                return Err(Problem::new(
                    "ppp.ipcp.pool",
                    format!(
                        "no address to lease: the pool holds only ppp.ipcp.local_address {}, the LNS's own address",
                        self.ppp.ipcp.local_address
                    ),
                ))
            }
            Ok(_) => {}
        }
        if let Some(f) = &self.users.file {
            if f.as_os_str().is_empty() {
                return Err(Problem::new(
                    "users.file",
                    "empty path: give the users file, or remove the line for no local users",
                ));
            }
        }
        let mut ids = std::collections::HashMap::new();
        for (i, pw) in self.pseudowire.iter().enumerate() {
            let f = |name: &str| format!("pseudowire[{i}].{name}");
            if pw.remote_end_id.is_empty()
                || pw.remote_end_id.len() > crate::l2tp::config::MAX_AVP_VALUE
            {
                return Err(Problem::new(
                    f("remote_end_id"),
                    format!(
                        "the Remote End ID must be 1 to {} bytes (RFC 3931 §5.4.4)",
                        crate::l2tp::config::MAX_AVP_VALUE
                    ),
                ));
            }
            if let Some(first) = ids.insert(pw.remote_end_id.as_str(), i) {
                return Err(Problem::new(
                    f("remote_end_id"),
                    format!(
                        "{:?} is also pseudowire[{first}]'s: a Remote End ID names one circuit",
                        pw.remote_end_id
                    ),
                ));
            }
            if pw.interface.is_empty()
                || pw.interface.len() > IFNAMSIZ - 1
                || pw.interface.contains(['/', ' ', '\0'])
            {
                return Err(Problem::new(
                    f("interface"),
                    format!(
                        "{:?} is not an interface name (1 to {} bytes, no '/' or space)",
                        pw.interface,
                        IFNAMSIZ - 1
                    ),
                ));
            }
        }
        if let Some(i) = &self.initiator {
            i.check(&self.l2tp.limits)?;
            if !self
                .daemon
                .listen
                .iter()
                .any(|l| l.is_ipv4() == i.peer.is_ipv4())
            {
                return Err(Problem::new(
                    "initiator.peer",
                    format!(
                        "{} is {}, but daemon.listen has no {} address to send from",
                        i.peer,
                        family(i.peer.ip()),
                        family(i.peer.ip())
                    ),
                ));
            }
        }
        for (n, a) in self.l2tp.recovery_peers.iter().enumerate() {
            let reachable = self
                .daemon
                .listen
                .iter()
                .any(|l| l.is_ipv4() == a.is_ipv4())
                || self
                    .daemon
                    .listen_ip
                    .iter()
                    .any(|l| l.is_ipv4() == a.is_ipv4());
            if !reachable {
                return Err(Problem::new(
                    format!("l2tp.recovery_peers[{n}]"),
                    format!(
                        "{a} is {}, but l2xdpd listens on no {} address (daemon.listen, daemon.listen_ip): no recovery could come from it",
                        family(*a),
                        family(*a)
                    ),
                ));
            }
        }
        if let Some(r) = &self.radius {
            r.check("radius")?;
        }
        if let Some(m) = &self.metrics {
            if m.listen.port() == 0 {
                return Err(Problem::new(
                    "metrics.listen",
                    format!(
                        "{}: port 0 is no port to scrape; give one (9725 is usual)",
                        m.listen
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The subscriber address pool (the LNS's own address excluded).
    pub fn pool(&self) -> Result<Option<Ipv4Pool>, crate::ppp::PoolError> {
        if self.ppp.ipcp.pool.is_empty() {
            return Ok(None);
        }
        Ipv4Pool::new(&self.ppp.ipcp.pool, &[self.ppp.ipcp.local_address]).map(Some)
    }

    /// What subscribers are authenticated against: the RADIUS servers with `[radius]`
    /// ([`crate::ppp::ExternalCredentials`]), else the users file.
    pub fn auth_credentials(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::ppp::Credentials>, ConfigError> {
        Ok(match self.radius {
            Some(_) => std::sync::Arc::new(crate::ppp::ExternalCredentials),
            None => std::sync::Arc::new(self.credentials()?),
        })
    }

    /// Loads the users file.
    pub fn credentials(&self) -> Result<MemoryCredentials, ConfigError> {
        match &self.users.file {
            None => Ok(MemoryCredentials::new()),
            Some(f) => MemoryCredentials::load_for(
                f,
                self.ppp.ipcp.enabled.then_some(self.ppp.ipcp.local_address),
            )
            .map_err(|e| match e {
                crate::ppp::UsersFileError::Line { line, field, why } => ConfigError::Invalid {
                    path: f.clone(),
                    line,
                    column: 1,
                    field: format!("{field}: "),
                    message: why.to_string(),
                },
                other => ConfigError::value(f, "users.file", other.to_string()),
            }),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
