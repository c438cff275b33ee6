//! `l2xdpd`'s start-up: from a checked [`DaemonConfig`] to the L2TP sockets, the fast path,
//! the RFC 4951 failover store (§5.1: only with the C bit) and the [`Node`] that glues them;
//! and the initiator role (`[initiator]`), which opens its tunnels and sessions once the
//! driver runs ([`initiate`], [`nth_session`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use l2xdp_dataplane_api::{DataPlane, MemoryDataPlane};
use l2xdp_wire::l2tp::header::Version;

use crate::config_file::ConfigError;
use crate::driver::Handle;
use crate::l2tp::failover::RedbStore;
use crate::l2tp::{CallParams, Peer, TunnelId};
use crate::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use crate::ppp::Credentials;
use crate::random::{self, EntropyError, Random};
use crate::socket::L2tpSocket;

use super::{DaemonConfig, DataplaneMode, InitiatorSection};

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
    /// No entropy to key the random source with (challenges, nonces and IDs would be
    /// predictable).
    #[error(transparent)]
    Entropy(#[from] EntropyError),
    /// The failover state directory could not be opened.
    #[error("failover state: {0}")]
    State(#[from] crate::l2tp::failover::StoreError),
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

/// The subscribers' gateway the fast path answers ping for: our IPCP local address (RFC 1332
/// §3.3), when IPCP is on and it is set. Set at start-up ([`dataplane`]) and again by
/// `config reload` when it changed.
pub(super) fn gateway(ppp: &crate::ppp::PppConfig) -> Option<std::net::Ipv4Addr> {
    let ipcp = &ppp.ipcp;
    (ipcp.enabled && !ipcp.local_address.is_unspecified()).then_some(ipcp.local_address)
}

/// Opens the fast path the configuration names.
pub fn dataplane(cfg: &DaemonConfig) -> Result<Box<dyn DataPlane>, StartError> {
    match cfg.dataplane.mode {
        DataplaneMode::Memory => Ok(Box::new(MemoryDataPlane::new())),
        #[cfg(feature = "xdp")]
        DataplaneMode::Xdp => {
            let mut dp = l2xdp_dataplane::xdp::XdpDataPlane::open(&cfg.dataplane.pin_dir)
                .map_err(|e| {
                    StartError::Dataplane(format!(
                        "{e} (is l2xdp-dataplane attached with --pin-dir {}?)",
                        cfg.dataplane.pin_dir.display()
                    ))
                })?;
            // The fast path answers ping to our own PPP address (issue 16).
            let gateway = gateway(&cfg.ppp);
            dp.set_gateway(gateway).map_err(|e| {
                StartError::Dataplane(format!("setting the gateway address {gateway:?}: {e}"))
            })?;
            // SCCRQs beyond this many per second are dropped in XDP (issue 15).
            let budget = cfg.l2tp.limits.xdp_sccrq_per_sec;
            dp.set_sccrq_budget(budget).map_err(|e| {
                StartError::Dataplane(format!(
                    "setting the SCCRQ budget ([l2tp.limits] xdp_sccrq_per_sec = {budget}): {e}"
                ))
            })?;
            Ok(Box::new(dp) as Box<dyn DataPlane>)
        }
        #[cfg(not(feature = "xdp"))]
        DataplaneMode::Xdp => Err(StartError::Dataplane(
            "this l2xdpd was built without the `xdp` feature: [dataplane] mode = \"xdp\" is unavailable (mode = \"memory\" works)".into(),
        )),
    }
}

/// The attachment circuits of `[[pseudowire]]`: Remote End ID → interface index.
pub(super) fn attachment_circuits(
    cfg: &DaemonConfig,
) -> Result<HashMap<Vec<u8>, u32>, ConfigError> {
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

/// Builds the node: credentials, pool, attachment circuits, fast path, its random source
/// keyed from the operating system.
pub fn node(cfg: &DaemonConfig, dataplane: Box<dyn DataPlane>) -> Result<Node, StartError> {
    node_with_entropy(cfg, dataplane, random::os_entropy)
}

/// [`node`] with its random source keyed from `entropy` (the OS in [`node`]): when it fails,
/// start-up fails with [`StartError::Entropy`]; nothing predictable stands in (tests inject a
/// failing source).
pub fn node_with_entropy(
    cfg: &DaemonConfig,
    dataplane: Box<dyn DataPlane>,
    entropy: impl FnOnce(&mut [u8]) -> Result<(), String>,
) -> Result<Node, StartError> {
    let random = Random::from_entropy(entropy)?;
    let store = store(cfg)?;
    let mut dataplane = dataplane;
    let orphans = match store {
        None => remove_orphans(cfg, dataplane.as_mut())?,
        Some(_) => Vec::new(),
    };
    let mut node = node_without_store(cfg, dataplane, random, store.is_some())?;
    // Their peers are told (a StopCCN each, sent once the driver runs).
    node.farewell_orphans(&orphans, std::time::Instant::now());
    Ok(match store {
        Some(s) => node.with_store(Box::new(s)),
        None => node,
    })
}

/// Start-up without a failover store (`[l2tp.failover]` off, or a store that cannot be
/// written): this l2xdpd owns no session from before, yet a previous one's entries are still in
/// the pinned fast path, forwarding a subscriber's traffic with no accounting and no teardown
/// (issue 16). Removed here: every L2TPv2 session, and every L2TPv3 session on one of this
/// configuration's `[[pseudowire]]` interfaces. L2TPv3 entries on other interfaces are static
/// pseudowires (`l2xdp-dataplane static`) and stay. With a store, `Node::recover` removes what
/// it does not restore. Their peers are told: an L2TPv2 entry names the peer's address and
/// tunnel ID, and the caller sends each such tunnel a StopCCN in the peer's own sequence
/// ([`Node::farewell_orphans`]); an L2TPv3 entry does not name the peer's Control Connection
/// ID, and its peer times the tunnel out. Returns the entries removed (errors are logged,
/// never a reason not to start).
fn remove_orphans(
    cfg: &DaemonConfig,
    dataplane: &mut dyn DataPlane,
) -> Result<Vec<l2xdp_dataplane_api::SessionEntry>, StartError> {
    use l2xdp_dataplane_api::Binding;
    use l2xdp_wire::datapath::SessionKey;

    let ours: std::collections::HashSet<u32> = attachment_circuits(cfg)?.into_values().collect();
    // As recovery does with its stale entries: a fast path that cannot be listed or an entry
    // that cannot be removed is logged, and start-up goes on.
    let entries = match dataplane.sessions() {
        Ok(v) => v,
        Err(err) => {
            tracing::warn!(%err, "listing the fast path failed: a previous l2xdpd's sessions may stay");
            return Ok(Vec::new());
        }
    };
    let mut removed = Vec::new();
    for e in entries {
        let owned = match (&e.session.our_ids, &e.binding) {
            (SessionKey::V2 { .. }, _) => true,
            (SessionKey::V3 { .. }, Binding::AttachmentCircuit { ifindex }) => {
                ours.contains(ifindex)
            }
            (SessionKey::V3 { .. }, Binding::Subscriber { .. }) => false,
        };
        if !owned {
            continue;
        }
        match dataplane.remove(&e.key()) {
            Ok(()) => removed.push(e),
            Err(err) => {
                tracing::warn!(key = ?e.key(), %err, "removing a previous l2xdpd's fast-path entry failed")
            }
        }
    }
    if !removed.is_empty() {
        tracing::warn!(
            removed = removed.len(),
            "no failover state: removed the fast-path sessions of a previous l2xdpd"
        );
    }
    Ok(removed)
}

/// The L2TP configuration a node serves with: `l2tp` as configured, less the Failover
/// Capability's C bit when there is no failover store to recover from (`stored` false: the
/// store could not be opened or written). RFC 4951 §5.1: C says "the endpoint can recover
/// from a control channel failure"; without a store a restart forgets every tunnel, so C
/// would be a promise the peer acts on (it keeps the tunnel for our Recovery Time) and we
/// cannot keep. D stays as configured; with D off too no Failover Capability AVP is sent
/// (§5.1: never C = D = 0).
pub(super) fn advertised(l2tp: &crate::l2tp::L2tpConfig, stored: bool) -> crate::l2tp::L2tpConfig {
    let mut out = l2tp.clone();
    if !stored {
        out.failover = out
            .failover
            .map(|f| crate::l2tp::FailoverConfig {
                control: false,
                ..f
            })
            .filter(|f| f.data);
    }
    out
}

/// [`node`] without its failover store (the drill hands the running node's over: redb locks
/// its file, one handle per process); `stored`: whether it will be given one (else it does
/// not advertise the C bit, [`advertised`]).
pub(super) fn node_without_store(
    cfg: &DaemonConfig,
    dataplane: Box<dyn DataPlane>,
    random: Random,
    stored: bool,
) -> Result<Node, StartError> {
    let credentials: Arc<dyn Credentials> = cfg.auth_credentials()?;
    let pool = cfg
        .pool()
        .map_err(|e| ConfigError::value(Path::new("config"), "ppp.ipcp.pool", e.to_string()))?
        .map(|p| Arc::new(Mutex::new(p)));
    let acs = attachment_circuits(cfg)?;
    let node = Node::new(
        NodeConfig {
            l2tp: advertised(&cfg.l2tp, stored),
            ppp: Arc::new(cfg.ppp.clone()),
            credentials,
            pool,
            attachment_circuits: acs,
            random,
        },
        dataplane,
    );
    Ok(node)
}

/// The failover state store: `daemon.state_dir` when `[l2tp.failover]` has `control = true`
/// (RFC 4951 §5.1: only then is there anything to recover), else none. A damaged or unusable
/// store is dealt with as `[daemon] on_damaged_store` says ([`RedbStore::open_checked`]: with
/// `"start-empty"` it is moved aside and l2xdpd starts with a new store — or with none when
/// the store cannot be written) and logged here at ERROR.
pub fn store(cfg: &DaemonConfig) -> Result<Option<RedbStore>, StartError> {
    if !cfg.l2tp.persists() {
        return Ok(None);
    }
    let opened = RedbStore::open_checked(&cfg.daemon.state_dir, cfg.daemon.on_damaged_store)?;
    if let Some(d) = &opened.damage {
        tracing::error!(
            kind = %d.kind,
            path = %d.path.display(),
            moved_to = %d.moved_to.as_ref().map_or(String::new(), |p| p.display().to_string()),
            kept_tunnels = d.kept.0,
            kept_sessions = d.kept.1,
            failover = d.store,
            "{d}"
        );
    }
    Ok(opened.store)
}

fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
