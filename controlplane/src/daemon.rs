//! `l2xdpd`'s configuration and start-up: one TOML file (every section optional except what
//! the role needs), turned into a [`Node`] over its sockets and fast path.
//!
//! ```toml
//! [daemon]
//! listen = ["192.0.2.1:1701"]          # L2TP over UDP (IPv4 and/or IPv6 addresses)
//! listen_ip = ["192.0.2.1"]            # L2TPv3 over IP protocol 115 (needs CAP_NET_RAW)
//! control_socket = "/run/l2xdp/l2xdpd.sock"
//! state_dir = "/var/lib/l2xdp"         # RFC 4951 failover state (with [l2tp.failover] C=1)
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
//! ```
//!
//! With `[initiator]` the daemon opens, at start-up, `tunnels` control connections to `peer`
//! and `sessions` sessions in each, numbered `n` = 0, 1, … across the tunnels: L2TPv2
//! sessions whose PPP client authenticates as `user<n>` with that user's password from the
//! users file, or L2TPv3 pseudowires with Remote End ID `pw<n>` (see [`initiate`]) — unless
//! it recovered tunnels from its failover state (RFC 4951: a restarted LAC takes its tunnels
//! back, PPP client links included, rather than opening new ones). The control socket's
//! `open_session` opens one more.
//! Errors name the file, line and field (see [`crate::config_file`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use l2xdp_dataplane::{DataPlane, MemoryDataPlane};
use l2xdp_wire::l2tp::header::Version;
use serde::Deserialize;

use crate::config_file::{self, ConfigError};
use crate::driver::Handle;
use crate::l2tp::failover::RedbStore;
use crate::l2tp::{CallParams, L2tpConfig, Peer, TunnelId};
use crate::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use crate::ppp::{Credentials, Ipv4Pool, MemoryCredentials, PppConfig};
use crate::socket::L2tpSocket;

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
}

/// `[initiator]`: tunnels and sessions the daemon opens at start-up (LAC/LCCE role).
#[derive(Debug, Clone, Deserialize)]
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

/// The session parameters and PPP client credentials of session `n` of an initiator (see the
/// module documentation): `user<n>` with its password from `node`'s credentials (v2), or
/// Remote End ID `pw<n>` (v3).
pub fn nth_session(
    node: &Node,
    version: Version,
    n: usize,
) -> Result<(CallParams, Option<ClientAuth>), String> {
    match version {
        Version::V2 => {
            let user = format!("user{n}");
            let auth = node
                .client_auth(&user)
                .ok_or_else(|| format!("{user} is not in the users file"))?;
            Ok((CallParams::default(), Some(auth)))
        }
        Version::V3 => Ok((
            CallParams {
                remote_end_id: format!("pw{n}").into_bytes(),
                ..CallParams::default()
            },
            None,
        )),
    }
}

/// The initiator role at start-up: opens `init.tunnels` tunnels to `init.peer`, waits for each
/// to come up (`events` are the driver's; a tunnel going down first is an error), then opens
/// `init.sessions` sessions in each ([`nth_session`]). Returns the tunnels.
pub async fn initiate(
    handle: &Handle,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<NodeEvent>,
    init: &InitiatorSection,
) -> Result<Vec<TunnelId>, String> {
    let version = init.version()?;
    let peer = Peer::udp(init.peer);
    let mut tunnels = Vec::new();
    for _ in 0..init.tunnels {
        let t = handle
            .open_tunnel(peer, version)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("opening a tunnel to {}: {e}", init.peer))?;
        tunnels.push(t);
    }
    let mut up = 0;
    while up < tunnels.len() {
        match events.recv().await {
            Some(NodeEvent::TunnelUp { tunnel, .. }) if tunnels.contains(&tunnel) => up += 1,
            Some(NodeEvent::TunnelDown { tunnel, .. }) if tunnels.contains(&tunnel) => {
                return Err(format!("tunnel {tunnel} to {} went down", init.peer));
            }
            Some(_) => {}
            None => return Err("the driver stopped".into()),
        }
    }
    let mut n = 0;
    for &t in &tunnels {
        for _ in 0..init.sessions {
            let (params, auth) = handle
                .inspect(move |node| nth_session(node, version, n))
                .await
                .map_err(|e| e.to_string())??;
            handle
                .open_session(t, params, auth)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("opening session {n} in tunnel {t}: {e}"))?;
            n += 1;
        }
    }
    Ok(tunnels)
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSection {
    /// UDP addresses to listen on (port 1701 unless given).
    pub listen: Vec<SocketAddr>,
    /// Addresses for L2TPv3 over IP protocol 115.
    pub listen_ip: Vec<IpAddr>,
    /// The operator's control socket (`l2xdpctl`); none when absent.
    pub control_socket: Option<PathBuf>,
    /// Where the RFC 4951 failover state is kept (used when `[l2tp.failover]` has
    /// `control = true`): the embedded database `failover.redb` (`RedbStore`).
    pub state_dir: PathBuf,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            listen: vec![SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 1701)],
            listen_ip: Vec::new(),
            control_socket: None,
            state_dir: PathBuf::from("/var/lib/l2xdp"),
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersSection {
    /// The users file; no local users when absent.
    pub file: Option<PathBuf>,
}

/// `[[pseudowire]]`: where an L2TPv3 pseudowire's Ethernet frames go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudowireBinding {
    /// The Remote End ID the peer sends in its ICRQ (RFC 3931 §5.4.4).
    pub remote_end_id: String,
    /// The attachment interface.
    pub interface: String,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The fast path could not be opened.
    #[error("fast path: {0}")]
    Dataplane(String),
    /// The failover state directory could not be opened.
    #[error("failover state: {0}")]
    State(#[from] crate::l2tp::failover::StoreError),
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

/// Opens the sockets the configuration names.
pub fn sockets(cfg: &DaemonConfig) -> Result<Vec<L2tpSocket>, StartError> {
    let mut out = Vec::new();
    for a in &cfg.daemon.listen {
        out.push(
            L2tpSocket::bind_udp(*a).map_err(|source| StartError::Listen {
                addr: format!("udp {a}"),
                source,
            })?,
        );
    }
    for a in &cfg.daemon.listen_ip {
        out.push(
            L2tpSocket::bind_ip(*a).map_err(|source| StartError::Listen {
                addr: format!("ip/115 {a}"),
                source,
            })?,
        );
    }
    Ok(out)
}

/// Opens the fast path the configuration names.
pub fn dataplane(cfg: &DaemonConfig) -> Result<Box<dyn DataPlane>, StartError> {
    match cfg.dataplane.mode {
        DataplaneMode::Memory => Ok(Box::new(MemoryDataPlane::new())),
        DataplaneMode::Xdp => l2xdp_dataplane::xdp::XdpDataPlane::open(&cfg.dataplane.pin_dir)
            .map(|d| Box::new(d) as Box<dyn DataPlane>)
            .map_err(|e| {
                StartError::Dataplane(format!(
                    "{e} (is l2xdp-dataplane attached with --pin-dir {}?)",
                    cfg.dataplane.pin_dir.display()
                ))
            }),
    }
}

/// Builds the node: credentials, pool, attachment circuits, fast path.
pub fn node(cfg: &DaemonConfig, dataplane: Box<dyn DataPlane>) -> Result<Node, StartError> {
    let credentials: Arc<dyn Credentials> = Arc::new(cfg.credentials()?);
    let pool = cfg
        .pool()
        .map_err(|e| ConfigError::value(Path::new("config"), "ppp.ipcp.pool", e.to_string()))?
        .map(|p| Arc::new(Mutex::new(p)));
    let mut acs = HashMap::new();
    for pw in &cfg.pseudowire {
        let ifindex = ifindex(&pw.interface).ok_or_else(|| {
            ConfigError::value(
                Path::new("config"),
                "pseudowire.interface",
                format!("no interface named {:?}", pw.interface),
            )
        })?;
        acs.insert(pw.remote_end_id.clone().into_bytes(), ifindex);
    }
    let mut seed = [0u8; 8];
    // The PPP links' magic numbers and challenges must not be predictable.
    getrandom::fill(&mut seed).map_err(|e| StartError::Dataplane(format!("no randomness: {e}")))?;
    let node = Node::new(
        NodeConfig {
            l2tp: cfg.l2tp.clone(),
            ppp: Arc::new(cfg.ppp.clone()),
            credentials,
            pool,
            attachment_circuits: acs,
            seed: u64::from_le_bytes(seed),
        },
        dataplane,
    );
    Ok(match store(cfg)? {
        Some(s) => node.with_store(Box::new(s)),
        None => node,
    })
}

/// The failover state store: `daemon.state_dir` when `[l2tp.failover]` has `control = true`
/// (RFC 4951 §5.1: only then is there anything to recover), else none.
pub fn store(cfg: &DaemonConfig) -> Result<Option<RedbStore>, StartError> {
    if !cfg.l2tp.persists() {
        return Ok(None);
    }
    Ok(Some(RedbStore::open(&cfg.daemon.state_dir)?))
}

fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::parse(Path::new("l2xdpd.toml"), text)
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse(
            r#"
[daemon]
listen = ["127.0.0.1:1701"]
[dataplane]
mode = "memory"
[l2tp]
host_name = "lns1"
secret = "s3cret"
[ppp]
auth = ["chap"]
[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/16"]
dns = ["192.0.2.53"]
"#,
        )
        .expect("valid");
        assert_eq!(c.l2tp.host_name, "lns1");
        assert_eq!(c.daemon.state_dir, PathBuf::from("/var/lib/l2xdp"));
        assert!(store(&c).expect("no store").is_none());
        let pool = c.pool().expect("pool").expect("some");
        assert!(!pool.contains("100.64.0.1".parse().expect("addr")) || pool.capacity() > 0);
    }

    #[test]
    fn errors_name_line_and_field() {
        let e =
            parse("[daemon]\nlisten = [\"127.0.0.1:1701\"]\n[l2tp]\nhello_interval_secs = \"x\"\n")
                .expect_err("invalid")
                .to_string();
        assert!(e.starts_with("l2xdpd.toml:4:"), "{e}");
        assert!(e.contains("l2tp.hello_interval_secs"), "{e}");
        let e = parse("[daemon]\nlisen = []\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.starts_with("l2xdpd.toml:2:"), "{e}");
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let e = parse("[daemon]\nlisten = []\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("daemon.listen"), "{e}");
        let e = parse("[l2tp]\nhide_avps = true\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("l2tp.hide_avps"), "{e}");
        let e = parse("[l2tp.failover]\ncontrol = false\ndata = false\nrecovery_time_ms = 1\n")
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("RFC 4951"), "{e}");
    }

    #[test]
    fn initiator_section() {
        let c = parse(
            r#"
[initiator]
peer = "192.0.2.1:1701"
version = 3
tunnels = 2
sessions = 5
[ppp.ipcp]
pool = ["100.64.0.0/24"]
"#,
        )
        .expect("valid");
        let i = c.initiator.expect("initiator");
        assert_eq!(i.version(), Ok(Version::V3));
        assert_eq!((i.tunnels, i.sessions), (2, 5));
        let bad = parse(
            r#"
[initiator]
peer = "192.0.2.1:1701"
version = 4
tunnels = 1
sessions = 1
[ppp.ipcp]
pool = ["100.64.0.0/24"]
"#,
        );
        assert!(
            bad.as_ref()
                .is_err_and(|e| e.to_string().contains("initiator.version")),
            "{bad:?}"
        );
    }

    #[test]
    fn failover_opens_the_state_dir() {
        let dir = std::env::temp_dir().join(format!("l2xdpd-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = parse(&format!(
            r#"
[daemon]
listen = ["127.0.0.1:1701"]
state_dir = "{}"
[l2tp]
recovery_peers = ["192.0.2.9"]
[l2tp.failover]
control = true
data = true
recovery_time_ms = 5000
[ppp.ipcp]
pool = ["100.64.0.0/16"]
"#,
            dir.display()
        ))
        .expect("valid");
        assert_eq!(c.l2tp.recovery_peers.len(), 1);
        let s = store(&c).expect("opens").expect("a store");
        assert_eq!(s.path(), dir.join(RedbStore::FILE).as_path());
        assert!(dir.is_dir());
        // One process holds the database at a time.
        drop(s);
        let n = node(&c, Box::new(MemoryDataPlane::new())).expect("node");
        assert!(n.has_store());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
