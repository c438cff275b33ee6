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
//! recovery_time_ms = 5000
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
//! `deploy/l2xdp.toml` is a commented production example.

use std::net::{IpAddr, SocketAddr};

use crate::l2tp::failover::OnDamagedStore;
use std::path::{Path, PathBuf};

use l2xdp_wire::l2tp::header::Version;
use serde::Deserialize;

use crate::config_file::{self, ConfigError};
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
        let c: DaemonConfig = config_file::load(path)?;
        c.check(path)?;
        Ok(c)
    }

    /// Parses and checks configuration text (`path` is used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: DaemonConfig = config_file::parse(path, text)?;
        c.check(path)?;
        Ok(c)
    }

    /// The checks a type cannot express.
    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        if self.daemon.listen.is_empty() && self.daemon.listen_ip.is_empty() {
            return Err(ConfigError::value(
                path,
                "daemon.listen",
                "no address to listen on (give daemon.listen or daemon.listen_ip)",
            ));
        }
        if let Some(f) = &self.l2tp.failover {
            if !f.control && !f.data {
                return Err(ConfigError::value(
                    path,
                    "l2tp.failover",
                    "control and data cannot both be false (RFC 4951 §5.1)",
                ));
            }
        }
        if let Some(i) = &self.initiator {
            i.version()
                .map_err(|why| ConfigError::value(path, "initiator.version", why))?;
        }
        if self.l2tp.hide_avps && self.l2tp.secret_bytes().is_none() {
            return Err(ConfigError::value(
                path,
                "l2tp.hide_avps",
                "hiding AVPs needs l2tp.secret (RFC 2661 §4.3)",
            ));
        }
        if self.ppp.ipcp.enabled && self.ppp.ipcp.pool.is_empty() && self.users.file.is_none() {
            return Err(ConfigError::value(
                path,
                "ppp.ipcp.pool",
                "no address pool and no users file with fixed addresses: IPCP cannot assign any",
            ));
        }
        if let Err(e) = self.pool() {
            return Err(ConfigError::value(path, "ppp.ipcp.pool", e.to_string()));
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

    /// Loads the users file.
    pub fn credentials(&self) -> Result<MemoryCredentials, ConfigError> {
        match &self.users.file {
            None => Ok(MemoryCredentials::new()),
            Some(f) => MemoryCredentials::load(f).map_err(|e| match e {
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
