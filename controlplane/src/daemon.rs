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
//!
//! [metrics]                            # Prometheus text on GET /metrics; off when absent
//! listen = "127.0.0.1:9725"
//! per_session = false                  # per-session series (one per session and direction)
//! ```
//!
//! With `[initiator]` the daemon opens, at start-up, `tunnels` control connections to `peer`
//! and `sessions` sessions in each, numbered `n` = 0, 1, … across the tunnels: L2TPv2
//! sessions whose PPP client authenticates as `user<n>` with that user's password from the
//! users file, or L2TPv3 pseudowires with Remote End ID `pw<n>` (see [`initiate`]) — unless
//! it recovered tunnels from its failover state (RFC 4951: a restarted LAC takes its tunnels
//! back, PPP client links included, rather than opening new ones). The control socket's
//! `open_session` opens one more.
//!
//! `deploy/l2xdp.toml` is a commented production example.
//!
//! `config reload` (the control socket, or SIGHUP) re-reads the file and applies what can
//! change live — `[l2tp]` but its failover capability, `[ppp]` (pool included, leases
//! carried over), `[users]` (the initiator's passwords too), `[[pseudowire]]` — to what is
//! set up from then on, and refuses the rest ([`live_refusals`]; `[initiator]` among them: it
//! is acted on at start-up only), leaving the running configuration as it was.
//! Errors name the file, line and field (see [`crate::config_file`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use l2xdp_dataplane::{DataPlane, MemoryDataPlane};
use l2xdp_wire::l2tp::header::Version;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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

/// The attachment circuits of `[[pseudowire]]`: Remote End ID → interface index.
fn attachment_circuits(cfg: &DaemonConfig) -> Result<HashMap<Vec<u8>, u32>, ConfigError> {
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
    Ok(acs)
}

/// Builds the node: credentials, pool, attachment circuits, fast path.
pub fn node(cfg: &DaemonConfig, dataplane: Box<dyn DataPlane>) -> Result<Node, StartError> {
    let node = node_without_store(cfg, dataplane)?;
    Ok(match store(cfg)? {
        Some(s) => node.with_store(Box::new(s)),
        None => node,
    })
}

/// [`node`] without its failover store (the drill hands the running node's over: redb locks
/// its file, one handle per process).
fn node_without_store(
    cfg: &DaemonConfig,
    dataplane: Box<dyn DataPlane>,
) -> Result<Node, StartError> {
    let credentials: Arc<dyn Credentials> = Arc::new(cfg.credentials()?);
    let pool = cfg
        .pool()
        .map_err(|e| ConfigError::value(Path::new("config"), "ppp.ipcp.pool", e.to_string()))?
        .map(|p| Arc::new(Mutex::new(p)));
    let acs = attachment_circuits(cfg)?;
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
    Ok(node)
}

/// The failover state store: `daemon.state_dir` when `[l2tp.failover]` has `control = true`
/// (RFC 4951 §5.1: only then is there anything to recover), else none.
pub fn store(cfg: &DaemonConfig) -> Result<Option<RedbStore>, StartError> {
    if !cfg.l2tp.persists() {
        return Ok(None);
    }
    Ok(Some(RedbStore::open(&cfg.daemon.state_dir)?))
}

/// A field `config reload` cannot change, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The dotted field.
    pub field: &'static str,
    /// Why it cannot change while l2xdpd runs.
    pub why: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} cannot change live: {}", self.field, self.why)
    }
}

/// The fields that differ between the running configuration `old` and `new` but cannot
/// change without a restart of l2xdpd (a restart keeps the sessions: RFC 4951 recovery).
pub fn live_refusals(old: &DaemonConfig, new: &DaemonConfig) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut check = |differs: bool, field: &'static str, why: &'static str| {
        if differs {
            out.push(Refusal { field, why });
        }
    };
    let (o, n) = (&old.daemon, &new.daemon);
    check(
        o.listen != n.listen,
        "daemon.listen",
        "the L2TP sockets are bound at start-up and the tunnels are bound to them",
    );
    check(
        o.listen_ip != n.listen_ip,
        "daemon.listen_ip",
        "the L2TP sockets are bound at start-up and the tunnels are bound to them",
    );
    check(
        o.control_socket != n.control_socket,
        "daemon.control_socket",
        "the control socket is bound at start-up",
    );
    check(
        o.state_dir != n.state_dir,
        "daemon.state_dir",
        "the running tunnels' RFC 4951 state is persisted there",
    );
    check(
        old.dataplane.mode != new.dataplane.mode,
        "dataplane.mode",
        "the fast path is opened at start-up and holds the running sessions",
    );
    check(
        old.dataplane.pin_dir != new.dataplane.pin_dir,
        "dataplane.pin_dir",
        "the fast path is opened at start-up and holds the running sessions",
    );
    check(
        old.metrics != new.metrics,
        "metrics",
        "the metrics listener is bound at start-up",
    );
    check(
        old.initiator != new.initiator,
        "initiator",
        "the initiator's tunnels and sessions are opened at start-up (open_session opens more)",
    );
    check(
        old.l2tp.failover != new.l2tp.failover,
        "l2tp.failover",
        "the Failover Capability was advertised to the peers of the running tunnels and decides what is persisted (RFC 4951 §5.1)",
    );
    out
}

/// What `config reload` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// The file re-read.
    pub path: PathBuf,
    /// The sections that changed (and were applied); `users` is re-read every time.
    pub changed: Vec<&'static str>,
    /// The address pool after the reload: capacity and leased.
    pub pool: Option<(u64, u64)>,
}

/// Why `config reload` changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not parse or check.
    #[error("{0} (the running configuration is unchanged)")]
    Config(#[from] ConfigError),
    /// Fields that cannot change live.
    #[error("refused (the running configuration is unchanged): {}", list(.0))]
    Refused(Vec<Refusal>),
    /// The control plane stopped.
    #[error(transparent)]
    Stopped(#[from] crate::driver::Stopped),
}

fn list(r: &[Refusal]) -> String {
    r.iter()
        .map(Refusal::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a failover drill did not run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Nothing is persisted: every session would be lost.
    #[error("no failover drill without RFC 4951 state: set [l2tp.failover] control = true (and daemon.state_dir); without persisted state a failover loses every session")]
    NoFailover,
    /// Some tunnels would be cleared.
    #[error("tunnels {0:?} did not negotiate control-channel failover with their peer (RFC 4951 §5.1): a failover would clear them and their sessions; force the drill (l2xdpctl failover drill --force) to clear them anyway")]
    NotNegotiated(Vec<crate::l2tp::TunnelId>),
    /// The new node could not be built.
    #[error("building the new control state: {0}")]
    Start(#[from] StartError),
    /// The recovery could not start.
    #[error(transparent)]
    Recover(#[from] crate::node::RecoverError),
    /// The control plane stopped.
    #[error(transparent)]
    Stopped(#[from] crate::driver::Stopped),
}

/// What a failover drill did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    /// Sessions restored from the store.
    pub sessions_restored: usize,
    /// Per old tunnel: outcome and duration.
    pub tunnels: Vec<crate::node::RecoveryRecord>,
    /// Every tunnel's recovery ended (recovered or failed) within the time limit.
    pub complete: bool,
    /// From dropping the control state to the last recovery's end (or the time limit), ms.
    pub duration_ms: u64,
}

/// The running daemon's configuration: the file it came from and what is applied.
pub struct Running {
    path: PathBuf,
    config: tokio::sync::Mutex<DaemonConfig>,
}

impl Running {
    /// `config`, read from `path`, is running.
    pub fn new(path: PathBuf, config: DaemonConfig) -> Self {
        Running {
            path,
            config: tokio::sync::Mutex::new(config),
        }
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of the running configuration.
    pub async fn config(&self) -> DaemonConfig {
        self.config.lock().await.clone()
    }

    /// `config reload`: re-reads the file; refuses it whole when it does not parse or changes
    /// a field [`live_refusals`] names; otherwise applies it to the node
    /// ([`Node::reconfigure`]) without touching a tunnel or session that is up.
    pub async fn reload(
        &self,
        handle: &crate::driver::Handle,
    ) -> Result<ReloadReport, ReloadError> {
        let mut running = self.config.lock().await;
        let new = DaemonConfig::load(&self.path)?;
        let refused = live_refusals(&running, &new);
        if !refused.is_empty() {
            return Err(ReloadError::Refused(refused));
        }
        let credentials: Arc<dyn Credentials> = Arc::new(new.credentials()?);
        let pool = new
            .pool()
            .map_err(|e| ConfigError::value(&self.path, "ppp.ipcp.pool", e.to_string()))?;
        let attachment_circuits = attachment_circuits(&new)?;
        let mut changed = Vec::new();
        if running.l2tp != new.l2tp {
            changed.push("l2tp");
        }
        if running.ppp != new.ppp {
            changed.push("ppp");
        }
        changed.push("users");
        if running.pseudowire != new.pseudowire {
            changed.push("pseudowire");
        }
        let live = crate::node::LiveConfig {
            l2tp: new.l2tp.clone(),
            ppp: Arc::new(new.ppp.clone()),
            credentials,
            pool,
            attachment_circuits,
        };
        let pool = handle
            .update(move |n, _| {
                n.reconfigure(live);
                n.pool_usage()
            })
            .await?;
        *running = new;
        tracing::info!(path = %self.path.display(), ?changed, "configuration reloaded");
        Ok(ReloadReport {
            path: self.path.clone(),
            changed,
            pool,
        })
    }

    /// `failover drill`: the node's control state is dropped silently, as a crash of l2xdpd
    /// would drop it — no CDN, no StopCCN, the fast path untouched and handed over as it is —
    /// and a new node runs the RFC 4951 recovery from the persisted store exactly as a
    /// restarted l2xdpd does ([`Node::recover`]). Waits (at most `limit`) for every tunnel's
    /// recovery to end. Refused without persisted state, and — unless `force` — when a tunnel
    /// did not negotiate control-channel failover (it would be cleared).
    pub async fn drill(
        &self,
        handle: &crate::driver::Handle,
        force: bool,
        limit: std::time::Duration,
    ) -> Result<DrillReport, DrillError> {
        let cfg = self.config.lock().await.clone();
        if !cfg.l2tp.persists() {
            return Err(DrillError::NoFailover);
        }
        if !force {
            let bad: Vec<_> = handle
                .inspect(|n| n.failover_status())
                .await?
                .tunnels
                .into_iter()
                .filter(|t| t.state == "Established" && !t.control)
                .map(|t| t.tunnel)
                .collect();
            if !bad.is_empty() {
                return Err(DrillError::NotNegotiated(bad));
            }
        }
        let fresh = node_without_store(&cfg, Box::new(MemoryDataPlane::new()))?;
        let start = std::time::Instant::now();
        let report = handle
            .update(move |n, now| {
                let mut fresh = fresh;
                fresh.replace_dataplane(n.replace_dataplane(Box::new(MemoryDataPlane::new())));
                // The store's handle is handed over (redb allows one per file and process),
                // holding what the old node committed: what a restarted l2xdpd would open.
                if let Some(store) = n.take_store() {
                    fresh = fresh.with_store(store);
                }
                let old = std::mem::replace(n, fresh);
                // Silently: the old state machines send nothing more.
                drop(old);
                tracing::warn!("failover drill: control state dropped, recovering");
                n.recover(now)
            })
            .await??;
        let (tunnels, complete) = loop {
            let recs = handle.inspect(|n| n.recoveries()).await?;
            let done = recs
                .iter()
                .all(|r| r.outcome != crate::node::RecoveryOutcome::Recovering);
            if done || start.elapsed() >= limit {
                break (recs, done);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        Ok(DrillReport {
            sessions_restored: report.sessions,
            tunnels,
            complete,
            duration_ms: start.elapsed().as_millis() as u64,
        })
    }
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
    fn the_deploy_example_parses() {
        let c = parse(include_str!("../../deploy/l2xdp.toml")).expect("deploy/l2xdp.toml");
        assert_eq!(c.dataplane.mode, DataplaneMode::Xdp);
        assert!(c.l2tp.persists());
        assert_eq!(
            c.metrics.as_ref().map(|m| m.listen.port()),
            Some(9725),
            "{c:?}"
        );
        assert_eq!(c.ppp.mru, 1460);
        assert!(c.pool().expect("pool").is_some());
    }

    #[test]
    fn reload_refuses_what_cannot_change_live() {
        let a = parse(
            "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n[ppp.ipcp]\npool = [\"10.0.0.0/24\"]\n",
        )
        .expect("valid");
        let mut b = a.clone();
        b.ppp.mru = 1400;
        b.l2tp.hello_interval_secs = 5;
        b.l2tp.limits.max_tunnels = 3;
        assert!(live_refusals(&a, &b).is_empty());
        b.daemon.listen = vec!["127.0.0.1:1702".parse().expect("addr")];
        b.dataplane.mode = DataplaneMode::Xdp;
        b.l2tp.failover = Some(crate::l2tp::FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: 1,
        });
        b.initiator = Some(InitiatorSection {
            peer: "127.0.0.1:1701".parse().expect("addr"),
            version: 2,
            tunnels: 1,
            sessions: 1,
        });
        let r: Vec<_> = live_refusals(&a, &b).iter().map(|r| r.field).collect();
        assert_eq!(
            r,
            [
                "daemon.listen",
                "dataplane.mode",
                "initiator",
                "l2tp.failover"
            ]
        );
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
