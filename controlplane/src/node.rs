//! One L2TP node: the tunnel/session [`Registry`], a PPP [`Link`] per L2TPv2 session, and the
//! fast path ([`DataPlane`]), glued together without I/O. [`crate::driver`] runs a `Node` over
//! real sockets; tests and the benchmark emulator run it the same way.
//!
//! What arrives on an L2TP socket is either a control message (T bit set; RFC 2661 §3.1) for
//! the registry, or an L2TPv2 data message carrying PPP for a session's link — the fast path
//! hands PPP control frames (LCP, PAP, CHAP, IPCP, IPv6CP) up to the control plane and forwards
//! IP itself. Sessions we accept run the PPP server (the LNS); sessions we open run the PPP
//! client with the credentials given to [`Node::open_session`] (the LAC emulator).
//!
//! An L2TPv2 session we accept is installed in the fast path as soon as it is established,
//! bound to no address: the fast path drops data of sessions it does not know, so this is what
//! lets its PPP control frames through to us. When the server link reaches Up, the entry is
//! bound to the subscriber's address; when the network layer goes down (renegotiation) it is
//! unbound again, and when the session goes down it is removed. L2TPv3 Ethernet
//! pseudowires are installed when the session comes up, bound to the attachment circuit
//! configured for them.
//!
//! RFC 4951 failover: with a [`StateStore`] ([`Node::with_store`]) the registry's store
//! operations are applied before any datagram they precede leaves the node, a server link's
//! [`LinkState`] is attached to its session when PPP is up ([`AppData`]), and
//! [`Node::recover`] rebuilds a restarted node from the store: the L2TP sessions with their
//! IDs, their PPP links without renegotiation, their fast-path entries (kept when present,
//! reinstalled when missing, removed when not restored).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use l2xdp_dataplane::{Binding, DataPlane, SessionEntry};
use l2xdp_wire::datapath::{PppTx, Session};
use l2xdp_wire::l2tp::header::{self, IpPayload, Transport, V2Packet, V2Repr, Version};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use l2xdp_wire::ppp::protocol;
use serde::{Deserialize, Serialize};

use crate::l2tp::failover::{StoreError, StoreOp};
use crate::l2tp::{
    CallParams, Event as L2tpEvent, FailoverEvent, L2tpConfig, L2tpError, Peer, PppDisconnectCause,
    RecoveryReport, Registry, ResultCode, SessionUp, StateStore, TunnelId,
};
use crate::ppp::{Credentials, Ipv4Pool, Link, LinkState, PppConfig, Proxy};
use crate::ppp::{DownReason, Event as LinkEvent, LinkUp};

/// A session's identity inside a node: our tunnel ID and our session ID.
pub type SessionRef = (TunnelId, u32);

/// What a node needs besides its sockets.
pub struct NodeConfig {
    /// Control connections and sessions.
    pub l2tp: L2tpConfig,
    /// PPP (both roles).
    pub ppp: Arc<PppConfig>,
    /// Who may log in (the LNS role).
    pub credentials: Arc<dyn Credentials>,
    /// Subscriber addresses (the LNS role).
    pub pool: Option<Arc<Mutex<Ipv4Pool>>>,
    /// L2TPv3 attachment circuits: Remote End ID → interface index. A pseudowire whose Remote
    /// End ID is not here comes up in the control plane only.
    pub attachment_circuits: HashMap<Vec<u8>, u32>,
    /// Seeds the PPP links' magic numbers and challenges; take it from the OS in production.
    pub seed: u64,
}

/// The PPP client's credentials for a session we open.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// User name.
    pub user: String,
    /// Password or CHAP secret.
    pub password: Vec<u8>,
}

/// What a node tells its user (the daemon's log, the emulator, tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum NodeEvent {
    /// A control connection is established.
    TunnelUp { tunnel: TunnelId, peer: Peer },
    /// A control connection went down.
    TunnelDown { tunnel: TunnelId, reason: String },
    /// A session is established at the L2TP level (ICCN/OCCN).
    SessionUp { tunnel: TunnelId, session: u32 },
    /// PPP is up (both roles): the subscriber's address and the user.
    PppUp {
        tunnel: TunnelId,
        session: u32,
        user: Option<String>,
        peer_ipv4: Option<Ipv4Addr>,
        local_ipv4: Option<Ipv4Addr>,
    },
    /// Authentication failed (the LNS role).
    AuthFailed {
        tunnel: TunnelId,
        session: u32,
        user: Option<String>,
    },
    /// A session went down.
    SessionDown {
        tunnel: TunnelId,
        session: u32,
        reason: String,
    },
    /// [`Node::recover`] restored a session (RFC 4951); `ppp` when its PPP link was restored
    /// Up (the subscriber's address is `ipv4`).
    SessionRestored {
        tunnel: TunnelId,
        session: u32,
        ppp: bool,
        ipv4: Option<Ipv4Addr>,
    },
    /// Every session of a recovered tunnel was confirmed or cleared (RFC 4951 §3.3).
    TunnelRecovered { tunnel: TunnelId, sessions: usize },
    /// A restored tunnel could not be recovered: it and its sessions were cleared silently.
    RecoveryFailed { tunnel: TunnelId, reason: String },
}

/// What the node attaches to a persisted session ([`Registry::set_session_app_data`]) and
/// reads back in [`Node::recover`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppData {
    /// The link's state while PPP is up; `None` before, and while it renegotiates.
    pub ppp: Option<LinkState>,
    /// Client role (the LAC): the user the PPP client authenticates as. Its password is not
    /// stored: a restored client takes it from the node's credentials (the users file), and
    /// needs it only if the LNS renegotiates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_user: Option<String>,
}

/// Why [`Node::recover`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The node has no store.
    #[error("no failover state store configured")]
    NoStore,
    /// The store could not be read.
    #[error("loading the failover state: {0}")]
    Store(#[from] StoreError),
    /// The registry refused the state.
    #[error("recovering: {0}")]
    Registry(#[from] L2tpError),
}

/// One tunnel as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelStatus {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// The peer's tunnel ID.
    pub peer_tunnel: u32,
    /// The peer.
    pub peer: Peer,
    /// L2TP version.
    pub version: Version,
    /// Control connection state.
    pub state: String,
    /// The peer's Host Name.
    pub peer_host_name: String,
    /// Sessions in the tunnel.
    pub sessions: usize,
    /// We opened it.
    pub initiator: bool,
    /// The peer's RFC 4951 Failover Capability.
    pub peer_failover: Option<crate::l2tp::FailoverCapability>,
    /// An RFC 4951 recovery tunnel: the old tunnel (our ID) it recovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_of: Option<TunnelId>,
}

/// One session as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionStatus {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// Our session ID.
    pub session: u32,
    /// The peer's session ID.
    pub peer_session: u32,
    /// L2TP version.
    pub version: Version,
    /// The authenticated (or, for the emulator, configured) user.
    pub user: Option<String>,
    /// PPP phase ("Network" when up), or "none" for pseudowires.
    pub ppp: String,
    /// The subscriber's IPv4 address, once PPP is up.
    pub ipv4: Option<Ipv4Addr>,
    /// Installed in the fast path.
    pub installed: bool,
}

/// Counters of the glue (the registry and the links count their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounters {
    /// L2TPv2 data messages handed to a PPP link.
    pub ppp_frames_in: u64,
    /// PPP frames sent in L2TPv2 data messages.
    pub ppp_frames_out: u64,
    /// Data messages for a session without a PPP link (unknown, v3, or not up).
    pub data_unknown_session: u64,
    /// Data messages that did not parse.
    pub data_malformed: u64,
    /// L2TPv3 data messages that reached the control plane (a pseudowire's frames are the
    /// fast path's business: they arrive here only on a node without one), dropped.
    pub data_v3: u64,
    /// Fast-path installs and removals that failed.
    pub dataplane_errors: u64,
    /// Fast-path installs (an L2TPv2 session we accept is installed twice: unbound when it
    /// comes up, bound to the subscriber's addresses when PPP is up).
    pub installs: u64,
    /// Sessions removed from the fast path.
    pub removals: u64,
    /// Failover store operations applied.
    pub store_ops: u64,
    /// Failover store commits (one per driver turn that produced operations).
    pub store_commits: u64,
    /// Failover store operations or commits that failed.
    pub store_errors: u64,
    /// Sessions restored by [`Node::recover`].
    pub restored: u64,
    /// Fast-path entries kept as they were by [`Node::recover`].
    pub restored_kept: u64,
    /// Fast-path entries removed by [`Node::recover`] because no session was restored for them.
    pub stale_removed: u64,
    /// Control connections that went down.
    pub tunnels_down: u64,
    /// Sessions that went down.
    pub sessions_down: u64,
}

/// Where an RFC 4951 recovery of one old tunnel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryOutcome {
    /// The recovery tunnel is being set up, or sessions are being confirmed (§3.2, §3.3).
    Recovering,
    /// The tunnel was recovered (its sessions confirmed or cleared, §3.3).
    Recovered,
    /// It could not be: the tunnel and its sessions were cleared silently.
    Failed,
}

/// The last RFC 4951 recovery of one old tunnel, as [`Node::recover`] started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveryRecord {
    /// The old tunnel (our ID, kept by the recovery).
    pub tunnel: TunnelId,
    /// Where it stands.
    pub outcome: RecoveryOutcome,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sessions restored from the store for it; once recovered, those that survived.
    pub sessions: usize,
    /// From the start of the recovery to its end (`None` while recovering).
    pub duration_ms: Option<u64>,
    /// When the recovery started (seconds since the Unix epoch).
    pub started_unix: u64,
    #[serde(skip)]
    started: Instant,
}

/// Recoveries ended since the node started (restarts and failover drills each start a new node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryTotals {
    /// Tunnels recovered.
    pub recovered: u64,
    /// Tunnels that could not be recovered.
    pub failed: u64,
    /// Sum of the durations of the recovered tunnels' recoveries, ms.
    pub duration_ms_sum: u64,
}

/// RFC 4951 as the operator sees it: per tunnel, what was negotiated and how the last
/// recovery went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverStatus {
    /// Our Failover Capability (`[l2tp.failover]`); `None`: none advertised.
    pub ours: Option<crate::l2tp::FailoverConfig>,
    /// Whether tunnels and sessions are persisted for recovery (C bit and a state store).
    pub persisting: bool,
    /// Every tunnel.
    pub tunnels: Vec<TunnelFailover>,
    /// The recoveries started by the last [`Node::recover`] (restart or drill).
    pub recoveries: Vec<RecoveryRecord>,
    /// Ended recoveries.
    pub totals: RecoveryTotals,
    /// The L2TP layer's RFC 4951 step counters (recovery tunnels, resets, FSQ/FSR, ...).
    pub counters: std::collections::BTreeMap<&'static str, u64>,
}

/// One tunnel's failover state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelFailover {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// The peer.
    pub peer: Peer,
    /// Control connection state.
    pub state: String,
    /// "normal", or "recovery of N" for a recovery tunnel (RFC 4951 §3.2.1).
    pub role: String,
    /// The peer's Failover Capability.
    pub peer_failover: Option<crate::l2tp::FailoverCapability>,
    /// Control-channel failover negotiated (C on both sides, RFC 4951 §5.1).
    pub control: bool,
    /// Data-channel failover negotiated (D on both sides).
    pub data: bool,
    /// A restored old tunnel waiting for its control channel reset (§3.2.2).
    pub recovering: bool,
    /// The last recovery of this tunnel, when there was one.
    pub last_recovery: Option<RecoveryRecord>,
}

/// One session in detail (`show session`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    /// What `sessions` lists.
    #[serde(flatten)]
    pub status: SessionStatus,
    /// L2TP session state.
    pub state: String,
    /// The peer (LAC) address.
    pub peer: Peer,
    /// The local address the peer talks to.
    pub local: Option<SocketAddr>,
    /// The peer's tunnel ID.
    pub peer_tunnel: u32,
    /// PPP: LCP state.
    pub lcp: Option<String>,
    /// PPP: IPCP state.
    pub ipcp: Option<String>,
    /// PPP: IPv6CP state.
    pub ipv6cp: Option<String>,
    /// Our (the LNS's) IPv4 address on the link.
    pub local_ipv4: Option<Ipv4Addr>,
    /// Fast-path counters (`None` when not installed or unreadable).
    pub counters: Option<l2xdp_dataplane::SessionCounters>,
    /// RFC 4951: persisted for recovery.
    pub persisted: bool,
    /// RFC 4951 §3.3: stale after a failover, not confirmed yet.
    pub stale: Option<bool>,
    /// RFC 4951 §3.3: confirmed (FSQ/FSR) since the last failover.
    pub synced: Option<bool>,
}

/// What `config reload` can change in a running node: each applies to what is set up from
/// now on (new tunnels, new PPP links, new authentications, new leases); what is up stays
/// as it is.
pub struct LiveConfig {
    /// Control connections (secret, timers, window, limits, ...).
    pub l2tp: L2tpConfig,
    /// PPP.
    pub ppp: Arc<PppConfig>,
    /// Users.
    pub credentials: Arc<dyn Credentials>,
    /// The new address pool; current leases are carried over.
    pub pool: Option<Ipv4Pool>,
    /// L2TPv3 attachment circuits.
    pub attachment_circuits: HashMap<Vec<u8>, u32>,
}

struct SessionState {
    up: Box<SessionUp>,
    link: Option<Link>,
    installed: bool,
    /// The subscriber's address while PPP is up (server role) or ours (client role).
    ipv4: Option<Ipv4Addr>,
    /// Client role: the credentials and seed of a PPP client not started yet (see
    /// [`CLIENT_START`]).
    pending_client: Option<(ClientAuth, u64)>,
    /// Client role: the user the PPP client authenticates as (persisted with its state).
    client_user: Option<String>,
}

/// A LAC's PPP client starts when the LNS's first PPP frame arrives — the LNS has the ICCN and
/// a link then — or after this long, whichever is first. Starting at once would lose the first
/// Configure-Request whenever it overtakes the ICCN, and cost a 3 s restart timer.
pub const CLIENT_START: std::time::Duration = std::time::Duration::from_secs(1);

/// The sans-IO core of `l2xdpd` and of the emulator.
pub struct Node {
    registry: Registry,
    sessions: HashMap<SessionRef, SessionState>,
    /// Link deadlines, earliest first; `deadline_of` holds each link's current entry.
    deadlines: BTreeSet<(Instant, SessionRef)>,
    deadline_of: HashMap<SessionRef, Instant>,
    dirty: Vec<SessionRef>,
    client_auth: HashMap<SessionRef, ClientAuth>,
    /// The local address each peer talks to (the template's outer source).
    local_of: HashMap<Peer, SocketAddr>,
    dataplane: Box<dyn DataPlane>,
    /// During [`Node::recover`]: the fast path's entries by key, listed once.
    fast_path_snapshot: Option<HashMap<l2xdp_wire::datapath::SessionKey, SessionEntry>>,
    cfg: NodeConfig,
    link_seq: u64,
    outbox: VecDeque<(Peer, Vec<u8>)>,
    events: VecDeque<NodeEvent>,
    counters: NodeCounters,
    store: Option<Box<dyn StateStore + Send>>,
    /// Store operations applied and not committed yet.
    uncommitted: bool,
    /// Restored sessions whose fast-path entry was missing, installed once their tunnel is
    /// recovered (the outer local address is known only then): binding and PPP results.
    deferred_installs: HashMap<SessionRef, (Binding, Option<LinkUp>)>,
    /// The recoveries of the last [`Node::recover`], by old tunnel.
    recoveries: std::collections::BTreeMap<TunnelId, RecoveryRecord>,
    recovery_totals: RecoveryTotals,
}

impl Node {
    /// A node with no tunnels.
    pub fn new(cfg: NodeConfig, dataplane: Box<dyn DataPlane>) -> Self {
        Node {
            registry: Registry::new(cfg.l2tp.clone()),
            sessions: HashMap::new(),
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::new(),
            dirty: Vec::new(),
            client_auth: HashMap::new(),
            local_of: HashMap::new(),
            dataplane,
            fast_path_snapshot: None,
            cfg,
            link_seq: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            counters: NodeCounters::default(),
            store: None,
            uncommitted: false,
            deferred_installs: HashMap::new(),
            recoveries: std::collections::BTreeMap::new(),
            recovery_totals: RecoveryTotals::default(),
        }
    }

    /// Keeps the RFC 4951 failover state in `store` (persisted only when the L2TP
    /// configuration has a Failover Capability with the C bit). Use the same store with
    /// [`Node::recover`] after a restart.
    pub fn with_store(mut self, store: Box<dyn StateStore + Send>) -> Self {
        self.store = Some(store);
        self
    }

    /// Takes the failover store out of the node, its pending operations committed first (a
    /// failover drill hands it to the node that replaces this one: a store such as the
    /// embedded database is opened once per process). The node persists nothing more.
    pub fn take_store(&mut self) -> Option<Box<dyn StateStore + Send>> {
        if self.uncommitted {
            self.commit_store();
        }
        self.store.take()
    }

    /// Whether the node has a failover store.
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// RFC 4951 §3.2: call once at start-up, before any input, on a node with a store. Loads
    /// the persisted tunnels and sessions, restores them in the registry (which opens a
    /// recovery tunnel per tunnel), rebuilds each session's state — a v2 server session's
    /// PPP link from its saved [`LinkState`] without renegotiating — keeps its fast-path
    /// entry (installs it when missing), and removes fast-path entries of sessions that were
    /// not restored.
    pub fn recover(&mut self, now: Instant) -> Result<RecoveryReport, RecoverError> {
        let state = self.store.as_ref().ok_or(RecoverError::NoStore)?.load()?;
        let report = self.registry.recover(state, now)?;
        self.recoveries.clear();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (&t, outcome) in report
            .recovering
            .iter()
            .map(|t| (t, RecoveryOutcome::Recovering))
            .chain(report.cleared.iter().map(|t| (t, RecoveryOutcome::Failed)))
        {
            self.recoveries.insert(
                t,
                RecoveryRecord {
                    tunnel: t,
                    outcome,
                    reason: (outcome == RecoveryOutcome::Failed)
                        .then(|| "cleared at once: the peer or we cannot recover the control channel, the secret changed, or no tunnel ID was free".to_string()),
                    sessions: state_sessions(&self.registry, t),
                    duration_ms: (outcome == RecoveryOutcome::Failed).then_some(0),
                    started_unix: unix,
                    started: now,
                },
            );
            if outcome == RecoveryOutcome::Failed {
                self.recovery_totals.failed += 1;
            }
        }
        // What survived in the fast path, listed once: each restored session looks its entry
        // up here (listing per session made recovery quadratic in the number of sessions).
        self.fast_path_snapshot = match self.dataplane.sessions() {
            Ok(v) => Some(v.into_iter().map(|e| (e.key(), e)).collect()),
            Err(err) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(%err, "listing the fast path failed");
                None
            }
        };
        // Restored sessions first: the registry may already have reported some of them down
        // (tunnels it could not recover), which must find them.
        self.drain_failover(now);
        let snapshot = self.fast_path_snapshot.take();
        let keep: std::collections::HashSet<_> =
            self.sessions.values().map(|s| s.up.our_ids).collect();
        // Entries of sessions that were not restored are stale.
        for key in snapshot.into_iter().flat_map(HashMap::into_keys) {
            if keep.contains(&key) {
                continue;
            }
            match self.dataplane.remove(&key) {
                Ok(()) => self.counters.stale_removed += 1,
                Err(err) => {
                    self.counters.dataplane_errors += 1;
                    tracing::warn!(?key, %err, "removing a stale fast-path entry failed");
                }
            }
        }
        tracing::info!(
            recovering = report.recovering.len(),
            cleared = report.cleared.len(),
            sessions = report.sessions,
            "failover state restored"
        );
        self.pump(now);
        Ok(report)
    }

    /// The tunnel registry (read-only: state, counters).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The fast path.
    pub fn dataplane(&self) -> &dyn DataPlane {
        self.dataplane.as_ref()
    }

    /// The glue's counters.
    pub fn counters(&self) -> NodeCounters {
        self.counters
    }

    /// Sessions known, and how many have PPP up.
    pub fn session_counts(&self) -> (usize, usize) {
        let up = self
            .sessions
            .values()
            .filter(|s| s.link.as_ref().is_some_and(Link::is_up))
            .count();
        (self.sessions.len(), up)
    }

    /// Every tunnel, for the operator. An RFC 4951 recovery tunnel is listed while it
    /// recovers (with the old tunnel it recovers); once it is closing it is not: it has done
    /// its work, and is only held for the StopCCN exchange (RFC 2661 §5.7, RFC 3931 §3.3:
    /// kept a full retransmission cycle to acknowledge a retransmitted StopCCN), which the
    /// registry still does.
    pub fn tunnel_status(&self) -> Vec<TunnelStatus> {
        use crate::l2tp::tunnel::{Role, TunnelState};
        let mut v: Vec<TunnelStatus> = self
            .registry
            .tunnels()
            .filter(|t| {
                !(matches!(t.role(), Role::Recovery { .. })
                    && matches!(t.state(), TunnelState::Closing | TunnelState::Finished))
            })
            .map(|t| TunnelStatus {
                tunnel: t.id(),
                peer_tunnel: t.peer_tunnel_id(),
                peer: t.peer(),
                version: t.version(),
                state: format!("{:?}", t.state()),
                peer_host_name: String::from_utf8_lossy(t.peer_host_name()).into_owned(),
                sessions: t.session_count(),
                initiator: t.is_initiator(),
                peer_failover: t.peer_failover(),
                recovery_of: match t.role() {
                    Role::Recovery { old } => Some(old),
                    Role::Normal => None,
                },
            })
            .collect();
        v.sort_by_key(|t| t.tunnel);
        v
    }

    /// Every established session, for the operator.
    pub fn session_status(&self) -> Vec<SessionStatus> {
        let mut v: Vec<SessionStatus> = self
            .sessions
            .iter()
            .map(|(&key, st)| self.session_status_of(key, st))
            .collect();
        v.sort_by_key(|s| (s.tunnel, s.session));
        v
    }

    /// One session in detail; `None` when there is no such session.
    pub fn session_detail(&self, key: SessionRef) -> Option<SessionDetail> {
        let st = self.sessions.get(&key)?;
        let status = self.session_status_of(key, st);
        let tunnel = self.registry.tunnel(key.0);
        let link = st.link.as_ref();
        let local_ipv4 = link
            .and_then(Link::state)
            .and_then(|s| s.link_up().local_ipv4);
        Some(SessionDetail {
            status,
            state: tunnel
                .and_then(|t| t.session_state(key.1))
                .map_or_else(|| "unknown".into(), |s| format!("{s:?}")),
            peer: st.up.peer,
            local: self.local_of.get(&st.up.peer).copied(),
            peer_tunnel: st.up.peer_tunnel,
            lcp: link.map(|l| format!("{:?}", l.lcp_state())),
            ipcp: link.and_then(Link::ipcp_state).map(|s| format!("{s:?}")),
            ipv6cp: link.and_then(Link::ipv6cp_state).map(|s| format!("{s:?}")),
            local_ipv4,
            counters: if st.installed {
                self.dataplane.counters(&st.up.our_ids).ok()
            } else {
                None
            },
            persisted: self.store.is_some() && self.registry.config().persists(),
            stale: tunnel.and_then(|t| t.session_is_stale(key.1)),
            synced: tunnel.and_then(|t| t.session_is_synced(key.1)),
        })
    }

    /// A session's fast-path key.
    pub fn session_key(&self, key: SessionRef) -> Option<l2xdp_wire::datapath::SessionKey> {
        self.sessions.get(&key).map(|s| s.up.our_ids)
    }

    /// RFC 4951 state for the operator.
    pub fn failover_status(&self) -> FailoverStatus {
        let ours = self.registry.config().failover;
        let mut tunnels: Vec<TunnelFailover> = self
            .registry
            .tunnels()
            .map(|t| {
                let peer = t.peer_failover();
                TunnelFailover {
                    tunnel: t.id(),
                    peer: t.peer(),
                    state: format!("{:?}", t.state()),
                    role: match t.role() {
                        crate::l2tp::tunnel::Role::Normal => "normal".into(),
                        crate::l2tp::tunnel::Role::Recovery { old, .. } => {
                            format!("recovery of {old}")
                        }
                    },
                    peer_failover: peer,
                    control: ours.is_some_and(|o| o.control) && peer.is_some_and(|p| p.control),
                    data: ours.is_some_and(|o| o.data) && peer.is_some_and(|p| p.data),
                    recovering: t.is_recovering(),
                    last_recovery: self.recoveries.get(&t.id()).cloned(),
                }
            })
            .collect();
        tunnels.sort_by_key(|t| t.tunnel);
        FailoverStatus {
            ours,
            persisting: self.store.is_some() && self.registry.config().persists(),
            tunnels,
            recoveries: self.recoveries.values().cloned().collect(),
            totals: self.recovery_totals,
            counters: self.registry.counters().failover,
        }
    }

    /// The recoveries started by the last [`Node::recover`].
    pub fn recoveries(&self) -> Vec<RecoveryRecord> {
        self.recoveries.values().cloned().collect()
    }

    /// Ended recoveries.
    pub fn recovery_totals(&self) -> RecoveryTotals {
        self.recovery_totals
    }

    /// Puts `dataplane` in place of the node's fast path and returns the old one (a failover
    /// drill hands the fast path, untouched, from the old node to the new one).
    pub fn replace_dataplane(&mut self, dataplane: Box<dyn DataPlane>) -> Box<dyn DataPlane> {
        std::mem::replace(&mut self.dataplane, dataplane)
    }

    /// `config reload`: applies what can change live. Tunnels, sessions and PPP links that
    /// are up keep the settings they were set up with; the address pool's leases are carried
    /// over to the new ranges (a lease outside them stays with its session until it ends).
    pub fn reconfigure(&mut self, c: LiveConfig) {
        self.registry.set_config(c.l2tp.clone());
        self.cfg.l2tp = c.l2tp;
        self.cfg.ppp = c.ppp;
        self.cfg.credentials = c.credentials;
        self.cfg.attachment_circuits = c.attachment_circuits;
        match (c.pool, &self.cfg.pool) {
            (Some(mut new), Some(old)) => {
                // The links share this pool: replace its contents so that their releases
                // reach the new one.
                let mut old = old
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                old.carry_leases_to(&mut new);
                *old = new;
            }
            (Some(new), None) => {
                let mut new = new;
                for st in self.sessions.values() {
                    if let (false, Some(a)) = (st.up.initiator, st.ipv4) {
                        new.reserve(a);
                    }
                }
                self.cfg.pool = Some(Arc::new(Mutex::new(new)));
            }
            (None, _) => self.cfg.pool = None,
        }
    }

    /// The address pool: (capacity, leased); `None` without a pool.
    pub fn pool_usage(&self) -> Option<(u64, u64)> {
        self.cfg.pool.as_ref().map(|p| {
            let p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (p.capacity(), p.leased())
        })
    }

    fn session_status_of(&self, (tunnel, session): SessionRef, st: &SessionState) -> SessionStatus {
        SessionStatus {
            tunnel,
            session,
            peer_session: st.up.peer_session,
            version: st.up.version,
            user: st.link.as_ref().and_then(|l| l.user().map(str::to_string)),
            ppp: st
                .link
                .as_ref()
                .map_or_else(|| "none".to_string(), |l| format!("{:?}", l.phase())),
            ipv4: st.ipv4,
            installed: st.installed,
        }
    }

    /// Every session the node knows (established at the L2TP level).
    pub fn session_refs(&self) -> Vec<SessionRef> {
        let mut v: Vec<SessionRef> = self.sessions.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// A session as the L2TP layer brought it up: both sides' IDs, the peer, the options.
    pub fn session(&self, s: SessionRef) -> Option<&SessionUp> {
        self.sessions.get(&s).map(|s| s.up.as_ref())
    }

    /// A session's PPP link.
    pub fn link(&self, s: SessionRef) -> Option<&Link> {
        self.sessions.get(&s).and_then(|s| s.link.as_ref())
    }

    /// Opens a control connection (we send the SCCRQ).
    pub fn open_tunnel(
        &mut self,
        peer: Peer,
        version: Version,
        now: Instant,
    ) -> Result<TunnelId, L2tpError> {
        let t = self.registry.open_tunnel(peer, version, now)?;
        self.pump(now);
        Ok(t)
    }

    /// The PPP client credentials of `user` from the node's credentials (the users file), for
    /// [`open_session`](Self::open_session) in the initiator role.
    pub fn client_auth(&self, user: &str) -> Option<ClientAuth> {
        self.cfg
            .credentials
            .lookup(user.as_bytes())
            .map(|e| ClientAuth {
                user: user.to_string(),
                password: e.secret,
            })
    }

    /// Opens a session in an established tunnel; with `auth`, an L2TPv2 session then runs the
    /// PPP client with these credentials.
    pub fn open_session(
        &mut self,
        tunnel: TunnelId,
        params: CallParams,
        auth: Option<ClientAuth>,
        now: Instant,
    ) -> Result<u32, L2tpError> {
        let s = self.registry.open_session(tunnel, params, now)?;
        if let Some(a) = auth {
            self.client_auth.insert((tunnel, s), a);
        }
        self.pump(now);
        Ok(s)
    }

    /// Closes a session with a CDN (result 3, administrative, RFC 2661 §4.4.2).
    pub fn close_session(&mut self, s: SessionRef, now: Instant) -> Result<(), L2tpError> {
        if let Some(st) = self.sessions.get_mut(&s) {
            if let Some(link) = st.link.as_mut() {
                link.close(DownReason::Administrative, now);
                self.dirty.push(s);
            }
        }
        self.registry.close_session(
            s.0,
            s.1,
            ResultCode::new(3, 0, "administrative"),
            None,
            now,
        )?;
        self.pump(now);
        Ok(())
    }

    /// Closes a control connection with a StopCCN (result 1, general request to clear).
    pub fn close_tunnel(&mut self, tunnel: TunnelId, now: Instant) -> Result<(), L2tpError> {
        self.registry
            .close_tunnel(tunnel, ResultCode::new(1, 0, "administrative"), now)?;
        self.pump(now);
        Ok(())
    }

    /// Handles a datagram received on the socket bound to `local` from `peer`: the UDP payload,
    /// or for IP protocol 115 the IP payload.
    pub fn handle_datagram(&mut self, local: SocketAddr, peer: Peer, bytes: &[u8], now: Instant) {
        self.local_of.insert(peer, local);
        let (control, v3) = match peer.transport {
            Transport::Udp => header::peek(bytes)
                .map(|(c, v)| (c, v == Version::V3))
                .unwrap_or((true, false)),
            Transport::Ip => (
                matches!(header::split_ip(bytes), Ok(IpPayload::Control(_)) | Err(_)),
                true,
            ),
        };
        if control {
            // The registry validates, counts and answers whatever this is.
            self.registry.handle_datagram(peer, bytes, now);
        } else if v3 {
            self.counters.data_v3 += 1;
        } else {
            self.handle_data(bytes, now);
        }
        self.pump(now);
    }

    /// An L2TPv2 data message the fast path passed up: PPP for a session's link.
    fn handle_data(&mut self, bytes: &[u8], now: Instant) {
        let parsed = V2Packet::new_checked(bytes).and_then(|p| {
            let r = V2Repr::parse(&p)?;
            let end = p.length().map_or(bytes.len(), usize::from);
            Ok((r, p.header_len()..end))
        });
        let Ok((hdr, payload)) = parsed else {
            self.counters.data_malformed += 1;
            return;
        };
        let key = (u32::from(hdr.tunnel_id), u32::from(hdr.session_id));
        self.start_client(key, now);
        match self.sessions.get_mut(&key).and_then(|s| s.link.as_mut()) {
            Some(link) => {
                self.counters.ppp_frames_in += 1;
                link.handle_frame(&bytes[payload], now);
                self.dirty.push(key);
            }
            None => self.counters.data_unknown_session += 1,
        }
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let links = self.deadlines.first().map(|(t, _)| *t);
        match (self.registry.poll_timeout(), links) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.registry.poll_timeout().is_some_and(|t| t <= now) {
            self.registry.handle_timeout(now);
        }
        while let Some(&(t, key)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.remove(&(t, key));
            self.deadline_of.remove(&key);
            if self.start_client(key, now) {
                continue;
            }
            if let Some(link) = self.sessions.get_mut(&key).and_then(|s| s.link.as_mut()) {
                link.handle_timeout(now);
            }
            self.dirty.push(key);
        }
        self.pump(now);
    }

    /// The next datagram to send. Commits the failover store first when operations are
    /// pending (group commit, RFC 4951 ordering contract: what acknowledges a tunnel or
    /// session leaves only once its record is durable). A driver calls this every turn, so
    /// every turn ends with one commit of everything it produced.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
        if self.uncommitted {
            self.commit_store();
        }
        self.outbox.pop_front()
    }

    /// Commits the failover store's pending operations (one transaction).
    fn commit_store(&mut self) {
        self.uncommitted = false;
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.commit() {
            Ok(()) => self.counters.store_commits += 1,
            Err(e) => {
                self.counters.store_errors += 1;
                tracing::error!(%e, "committing failover state failed");
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// Moves everything the state machines produced to where it goes, until nothing moves.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = self.drain_failover(now);
            while let Some(ev) = self.registry.poll_event() {
                moved = true;
                self.on_l2tp_event(ev, now);
            }
            // RFC 4951 ordering contract: what the registry asked to persist is persisted
            // before the messages it precedes are sent.
            moved |= self.drain_failover(now);
            while let Some(d) = self.registry.poll_transmit() {
                moved = true;
                self.outbox.push_back(d);
            }
            let dirty = std::mem::take(&mut self.dirty);
            for key in dirty {
                moved = true;
                self.drain_link(key, now);
            }
            if !moved {
                break;
            }
        }
    }

    /// Handles the registry's failover events; whether there were any.
    fn drain_failover(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(ev) = self.registry.poll_failover_event() {
            moved = true;
            self.on_failover_event(ev, now);
        }
        moved
    }

    fn on_failover_event(&mut self, ev: FailoverEvent, now: Instant) {
        match ev {
            FailoverEvent::Store(op) => self.apply_store(&op),
            FailoverEvent::SessionRestored { up, app } => self.on_session_restored(up, app, now),
            FailoverEvent::ResetDataSequence { key, .. } => {
                if let Err(e) = self.dataplane.reset_sequence(&key) {
                    self.counters.dataplane_errors += 1;
                    tracing::warn!(?key, %e, "fast-path sequence reset failed");
                }
            }
            FailoverEvent::Recovered { tunnel, sessions } => {
                tracing::info!(tunnel, sessions, "tunnel recovered");
                self.install_deferred(tunnel);
                if let Some(r) = self.recoveries.get_mut(&tunnel) {
                    if r.outcome == RecoveryOutcome::Recovering {
                        let ms = now.saturating_duration_since(r.started).as_millis() as u64;
                        r.outcome = RecoveryOutcome::Recovered;
                        r.sessions = sessions;
                        r.duration_ms = Some(ms);
                        self.recovery_totals.recovered += 1;
                        self.recovery_totals.duration_ms_sum += ms;
                    }
                }
                self.events
                    .push_back(NodeEvent::TunnelRecovered { tunnel, sessions });
            }
            FailoverEvent::RecoveryFailed { tunnel, reason } => {
                tracing::warn!(tunnel, %reason, "tunnel recovery failed");
                self.deferred_installs.retain(|k, _| k.0 != tunnel);
                if let Some(r) = self.recoveries.get_mut(&tunnel) {
                    if r.outcome == RecoveryOutcome::Recovering {
                        r.outcome = RecoveryOutcome::Failed;
                        r.duration_ms =
                            Some(now.saturating_duration_since(r.started).as_millis() as u64);
                        self.recovery_totals.failed += 1;
                    }
                    r.reason = Some(reason.clone());
                }
                self.events
                    .push_back(NodeEvent::RecoveryFailed { tunnel, reason });
            }
            other => tracing::debug!(?other, "failover"),
        }
    }

    fn apply_store(&mut self, op: &StoreOp) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        self.uncommitted = true;
        match store.apply(op) {
            Ok(()) => self.counters.store_ops += 1,
            Err(e) => {
                self.counters.store_errors += 1;
                tracing::error!(%e, "persisting failover state failed");
            }
        }
    }

    /// Attaches a session's [`AppData`] (persisted when the registry persists).
    fn set_app_data(&mut self, key: SessionRef, data: &AppData, now: Instant) {
        if self.store.is_none() {
            return;
        }
        let v = match serde_json::to_value(data) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%e, "encoding session state failed");
                return;
            }
        };
        if let Err(e) = self.registry.set_session_app_data(key.0, key.1, v, now) {
            tracing::debug!(tunnel = key.0, session = key.1, %e, "session state not attached");
        }
    }

    /// A session [`Node::recover`] restored: its state here, its PPP link, its fast path.
    fn on_session_restored(&mut self, up: Box<SessionUp>, app: serde_json::Value, now: Instant) {
        let key = (up.tunnel, up.session);
        self.counters.restored += 1;
        let app: AppData = if app.is_null() {
            AppData::default()
        } else {
            serde_json::from_value(app).unwrap_or_else(|e| {
                tracing::warn!(tunnel = key.0, session = key.1, %e, "unreadable session state");
                AppData::default()
            })
        };
        self.link_seq += 1;
        let seed = self.cfg.seed ^ self.link_seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut ppp_up = None;
        let mut ipv4 = None;
        let (link, binding) = match up.version {
            // The PPP client (the LAC): rebuilt from its saved state as the user it was,
            // with that user's password from the credentials (none stored). Without a saved
            // state the session stays, its PPP not driven any more.
            Version::V2 if up.initiator => {
                let link = match (&app.ppp, &app.client_user) {
                    (Some(saved), Some(user)) => {
                        let password = self
                            .cfg
                            .credentials
                            .lookup(user.as_bytes())
                            .map(|e| e.secret)
                            .unwrap_or_default();
                        ipv4 = saved.local_ipv4;
                        ppp_up = Some(saved.link_up());
                        Some(Link::restore_client(
                            self.cfg.ppp.clone(),
                            user,
                            &password,
                            saved,
                            seed,
                            now,
                        ))
                    }
                    _ => None,
                };
                (link, None)
            }
            Version::V2 => {
                let restored = app.ppp.as_ref().and_then(|saved| {
                    match Link::restore_server(
                        self.cfg.ppp.clone(),
                        self.cfg.credentials.clone(),
                        self.cfg.pool.clone(),
                        saved,
                        seed,
                        now,
                    ) {
                        Ok(l) => Some((l, saved.link_up())),
                        Err(e) => {
                            tracing::warn!(tunnel = key.0, session = key.1, %e, "PPP not restored, renegotiating");
                            None
                        }
                    }
                });
                match restored {
                    Some((link, u)) => {
                        ipv4 = u.peer_ipv4;
                        let b = Binding::Subscriber {
                            ipv4: u.peer_ipv4,
                            ipv6: Vec::new(),
                        };
                        ppp_up = Some(u);
                        (Some(link), Some(b))
                    }
                    None => {
                        let link = Link::server(
                            self.cfg.ppp.clone(),
                            self.cfg.credentials.clone(),
                            self.cfg.pool.clone(),
                            seed,
                            now,
                        );
                        (Some(link), Some(unbound()))
                    }
                }
            }
            Version::V3 => {
                let b = self
                    .cfg
                    .attachment_circuits
                    .get(&up.remote_end_id)
                    .map(|&ifindex| Binding::AttachmentCircuit { ifindex });
                (None, b)
            }
        };
        let installed = match binding {
            Some(b) => self.restore_entry(&up, ppp_up.as_ref(), b),
            None => false,
        };
        tracing::info!(
            tunnel = key.0,
            session = key.1,
            ppp = ppp_up.is_some(),
            ?ipv4,
            "session restored"
        );
        self.events.push_back(NodeEvent::SessionRestored {
            tunnel: key.0,
            session: key.1,
            ppp: ppp_up.is_some(),
            ipv4,
        });
        let has_link = link.is_some();
        self.sessions.insert(
            key,
            SessionState {
                up,
                link,
                installed,
                ipv4,
                pending_client: None,
                client_user: app.client_user.clone(),
            },
        );
        if has_link {
            self.dirty.push(key);
        }
    }

    /// Keeps a restored session's fast-path entry when it is there with `binding` (the fast
    /// path outlived the control plane); otherwise installs it with `binding`, keeping the
    /// outer addresses of an entry that is there (a restarted node does not know yet which
    /// local address each peer talks to).
    fn restore_entry(&mut self, up: &SessionUp, ppp: Option<&LinkUp>, binding: Binding) -> bool {
        let existing = match &self.fast_path_snapshot {
            Some(snapshot) => snapshot.get(&up.our_ids).cloned(),
            None => match self.dataplane.sessions() {
                Ok(v) => v.into_iter().find(|e| e.key() == up.our_ids),
                Err(e) => {
                    self.counters.dataplane_errors += 1;
                    tracing::warn!(%e, "listing the fast path failed");
                    None
                }
            },
        };
        let entry = match existing {
            Some(e) if e.binding == binding => {
                self.counters.restored_kept += 1;
                return true;
            }
            Some(e) => SessionEntry {
                session: e.session,
                binding,
            },
            // No entry to keep, and a fresh node does not know yet which local address the
            // peer talks to (an entry with 0.0.0.0 as its source would send nothing usable).
            // RFC 4951 §3.2: the recovery tunnel runs between the same endpoints as the old
            // one, so the peer's SCCRP to it tells; the entry is installed when the tunnel is
            // recovered ([`Self::install_deferred`]), or dropped with it if the recovery
            // fails. Until then the session's data is not forwarded (it was not either with
            // its entry gone).
            None if !self.local_of.contains_key(&up.peer) => {
                self.deferred_installs
                    .insert((up.tunnel, up.session), (binding, ppp.cloned()));
                return false;
            }
            None => SessionEntry {
                session: self.template(up, ppp),
                binding,
            },
        };
        match self.dataplane.install(&entry) {
            Ok(()) => {
                self.counters.installs += 1;
                true
            }
            Err(e) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(tunnel = up.tunnel, session = up.session, %e, "fast-path install failed");
                false
            }
        }
    }

    fn drain_link(&mut self, key: SessionRef, now: Instant) {
        let Some(st) = self.sessions.get_mut(&key) else {
            self.forget_deadline(key);
            return;
        };
        let Some(link) = st.link.as_mut() else {
            return;
        };
        let (peer, peer_tunnel, peer_session) = (st.up.peer, st.up.peer_tunnel, st.up.peer_session);
        while let Some(frame) = link.poll_transmit() {
            if let Some(d) = wrap_ppp(peer_tunnel, peer_session, &frame) {
                self.counters.ppp_frames_out += 1;
                self.outbox.push_back((peer, d));
            }
        }
        let mut events = Vec::new();
        while let Some(e) = link.poll_event() {
            events.push(e);
        }
        let deadline = link.poll_timeout();
        self.set_deadline(key, deadline);
        for e in events {
            self.on_link_event(key, e, now);
        }
    }

    /// Starts a session's pending PPP client; whether one was started.
    fn start_client(&mut self, key: SessionRef, now: Instant) -> bool {
        let Some(st) = self.sessions.get_mut(&key) else {
            return false;
        };
        let Some((auth, seed)) = st.pending_client.take() else {
            return false;
        };
        st.link = Some(Link::client(
            self.cfg.ppp.clone(),
            &auth.user,
            &auth.password,
            seed,
            now,
        ));
        st.client_user = Some(auth.user);
        self.dirty.push(key);
        true
    }

    fn set_deadline(&mut self, key: SessionRef, at: Option<Instant>) {
        if self.deadline_of.get(&key).copied() == at {
            return;
        }
        self.forget_deadline(key);
        if let Some(t) = at {
            self.deadlines.insert((t, key));
            self.deadline_of.insert(key, t);
        }
    }

    fn forget_deadline(&mut self, key: SessionRef) {
        if let Some(t) = self.deadline_of.remove(&key) {
            self.deadlines.remove(&(t, key));
        }
    }

    fn on_l2tp_event(&mut self, ev: L2tpEvent, now: Instant) {
        match ev {
            L2tpEvent::TunnelUp { tunnel, peer, .. } => {
                tracing::info!(tunnel, %peer.addr, "tunnel up");
                self.events.push_back(NodeEvent::TunnelUp { tunnel, peer });
            }
            L2tpEvent::TunnelDown { tunnel, reason, .. } => {
                tracing::info!(tunnel, ?reason, "tunnel down");
                self.counters.tunnels_down += 1;
                self.events.push_back(NodeEvent::TunnelDown {
                    tunnel,
                    reason: format!("{reason:?}"),
                });
            }
            L2tpEvent::SessionUp(up) => self.on_session_up(up, now),
            L2tpEvent::SessionDown {
                tunnel,
                session,
                reason,
                ..
            } => {
                let key = (tunnel, session);
                self.client_auth.remove(&key);
                self.forget_deadline(key);
                if let Some(st) = self.sessions.remove(&key) {
                    if st.installed {
                        self.uninstall(&st.up);
                    }
                }
                tracing::info!(tunnel, session, ?reason, "session down");
                self.counters.sessions_down += 1;
                self.events.push_back(NodeEvent::SessionDown {
                    tunnel,
                    session,
                    reason: format!("{reason:?}"),
                });
            }
            L2tpEvent::LinkInfo {
                tunnel,
                session,
                message,
                ..
            } => {
                tracing::debug!(tunnel, session, ?message, "link info");
            }
        }
    }

    fn on_session_up(&mut self, up: Box<SessionUp>, now: Instant) {
        let key = (up.tunnel, up.session);
        tracing::info!(tunnel = up.tunnel, session = up.session, version = ?up.version, "session up");
        self.events.push_back(NodeEvent::SessionUp {
            tunnel: up.tunnel,
            session: up.session,
        });
        self.link_seq += 1;
        let seed = self.cfg.seed ^ self.link_seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut installed = false;
        let mut pending_client = None;
        let link = match up.version {
            Version::V2 if up.initiator => {
                pending_client = self.client_auth.remove(&key).map(|a| (a, seed));
                None
            }
            Version::V2 => {
                // Known to the fast path from now on, bound to nothing: it hands this
                // session's PPP control frames (LCP, authentication, NCPs) up to us. An
                // unknown v2 session's data is dropped there, so PPP could not come up
                // otherwise. The subscriber's addresses are bound when PPP is up.
                installed = self.install(&up, None, unbound());
                let proxy = proxy_of(&up);
                Some(match proxy {
                    Some(p) => Link::server_with_proxy(
                        self.cfg.ppp.clone(),
                        self.cfg.credentials.clone(),
                        self.cfg.pool.clone(),
                        &p,
                        seed,
                        now,
                    ),
                    None => Link::server(
                        self.cfg.ppp.clone(),
                        self.cfg.credentials.clone(),
                        self.cfg.pool.clone(),
                        seed,
                        now,
                    ),
                })
            }
            Version::V3 => {
                if let Some(&ifindex) = self.cfg.attachment_circuits.get(&up.remote_end_id) {
                    installed = self.install(&up, None, Binding::AttachmentCircuit { ifindex });
                }
                None
            }
        };
        let has_link = link.is_some();
        self.sessions.insert(
            key,
            SessionState {
                up,
                link,
                installed,
                ipv4: None,
                pending_client,
                client_user: None,
            },
        );
        if has_link {
            self.dirty.push(key);
        } else if self
            .sessions
            .get(&key)
            .is_some_and(|s| s.pending_client.is_some())
        {
            self.set_deadline(key, Some(now + CLIENT_START));
        }
    }

    fn on_link_event(&mut self, key: SessionRef, e: LinkEvent, now: Instant) {
        let Some(st) = self.sessions.get(&key) else {
            return;
        };
        let server = !st.up.initiator;
        let installed = st.installed;
        let up = st.up.clone();
        match e {
            LinkEvent::Up(u) => {
                let addr = if server { u.peer_ipv4 } else { u.local_ipv4 };
                self.events.push_back(NodeEvent::PppUp {
                    tunnel: key.0,
                    session: key.1,
                    user: u.user.clone(),
                    peer_ipv4: u.peer_ipv4,
                    local_ipv4: u.local_ipv4,
                });
                let ok = server && {
                    let binding = Binding::Subscriber {
                        ipv4: u.peer_ipv4,
                        ipv6: Vec::new(),
                    };
                    self.install(&up, Some(&u), binding)
                };
                // Both roles persist the link (RFC 4951: a restarted LNS or LAC takes its
                // sessions back without renegotiating PPP).
                let saved = self.sessions.get_mut(&key).and_then(|st| {
                    st.ipv4 = addr;
                    st.installed |= ok;
                    st.link
                        .as_ref()
                        .and_then(Link::state)
                        .map(|l| (l, st.client_user.clone()))
                });
                if let Some((ppp, client_user)) = saved {
                    let app = AppData {
                        ppp: Some(ppp),
                        client_user,
                    };
                    self.set_app_data(key, &app, now);
                }
            }
            LinkEvent::NetworkDown => {
                if server && installed {
                    // Unbound, not removed: renegotiation must still reach us.
                    self.install(&up, None, unbound());
                }
                if let Some(st) = self.sessions.get_mut(&key) {
                    st.ipv4 = None;
                }
                // A restart now renegotiates rather than restoring what is going away.
                self.set_app_data(key, &AppData::default(), now);
            }
            LinkEvent::AuthFailed { user } => {
                self.events.push_back(NodeEvent::AuthFailed {
                    tunnel: key.0,
                    session: key.1,
                    user,
                });
            }
            LinkEvent::Down { reason } => {
                if installed {
                    self.uninstall(&up);
                }
                if let Some(st) = self.sessions.get_mut(&key) {
                    st.installed = false;
                    st.ipv4 = None;
                }
                // PPP is gone: the call goes too (RFC 2661 §5.4.2), saying why (RFC 3145).
                let (result, cause) = cdn_for(reason);
                if let Err(e) = self
                    .registry
                    .close_session(key.0, key.1, result, Some(cause), now)
                {
                    tracing::debug!(tunnel = key.0, session = key.1, %e, "CDN after PPP down");
                }
            }
        }
    }

    fn template(&self, up: &SessionUp, ppp: Option<&LinkUp>) -> Session {
        let local = self
            .local_of
            .get(&up.peer)
            .copied()
            .unwrap_or_else(|| SocketAddr::new(unspecified_like(up.peer.addr.ip()), 1701));
        Session {
            transport: up.peer.transport,
            local_addr: local.ip(),
            peer_addr: up.peer.addr.ip(),
            local_port: local.port(),
            peer_port: up.peer.addr.port(),
            local_mac: MacAddr([0; 6]),
            next_hop_mac: MacAddr([0; 6]),
            vlans: Vlans::NONE,
            our_ids: up.our_ids,
            peer_ids: up.peer_ids,
            cookie_rx: up.cookie_rx,
            cookie_tx: up.cookie_tx,
            l2ss: up.sublayer_rx || up.sublayer_tx,
            sequencing: up.sequencing_rx || up.sequencing_tx,
            ppp: PppTx {
                acfc: ppp.is_some_and(|u| u.acfc),
                pfc: ppp.is_some_and(|u| u.pfc),
            },
            ttl: 64,
            dscp: 0,
            udp_checksum_v4: false,
        }
    }

    fn install(&mut self, up: &SessionUp, ppp: Option<&LinkUp>, binding: Binding) -> bool {
        let entry = SessionEntry {
            session: self.template(up, ppp),
            binding,
        };
        match self.dataplane.install(&entry) {
            Ok(()) => {
                self.counters.installs += 1;
                true
            }
            Err(e) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(tunnel = up.tunnel, session = up.session, %e, "fast-path install failed");
                false
            }
        }
    }

    /// Installs the fast-path entries of `tunnel`'s restored sessions that had none (see
    /// [`Self::restore_entry`]), now that its recovery taught us our local address.
    fn install_deferred(&mut self, tunnel: TunnelId) {
        let keys: Vec<SessionRef> = self
            .deferred_installs
            .keys()
            .filter(|k| k.0 == tunnel)
            .copied()
            .collect();
        for key in keys {
            let Some((binding, ppp)) = self.deferred_installs.remove(&key) else {
                continue;
            };
            let Some(up) = self.sessions.get(&key).map(|st| st.up.clone()) else {
                continue; // cleared by the recovery (FSR said it is gone)
            };
            let ok = self.install(&up, ppp.as_ref(), binding);
            if let Some(st) = self.sessions.get_mut(&key) {
                st.installed = ok;
            }
        }
    }

    fn uninstall(&mut self, up: &SessionUp) {
        match self.dataplane.remove(&up.our_ids) {
            Ok(()) => self.counters.removals += 1,
            Err(e) => {
                self.counters.dataplane_errors += 1;
                tracing::warn!(tunnel = up.tunnel, session = up.session, %e, "fast-path removal failed");
            }
        }
    }
}

/// An L2TPv2 data message carrying a PPP frame (RFC 2661 §3.1): with a Length field, and the
/// P bit on LCP so keepalives get preferential treatment as the RFC suggests.
fn wrap_ppp(peer_tunnel: u32, peer_session: u32, frame: &[u8]) -> Option<Vec<u8>> {
    let lcp = l2xdp_wire::ppp::frame::peek_protocol(frame).ok() == Some(protocol::LCP);
    let hdr = V2Repr {
        control: false,
        with_length: true,
        tunnel_id: u16::try_from(peer_tunnel).ok()?,
        session_id: u16::try_from(peer_session).ok()?,
        sequence: None,
        offset: None,
        priority: lcp,
    };
    let mut out = vec![0u8; hdr.header_len() + frame.len()];
    let n = hdr.emit(&mut out, frame.len()).ok()?;
    out[n..].copy_from_slice(frame);
    Some(out)
}

/// The proxy values a LAC sent, in the PPP link's terms; `None` when there are none.
fn proxy_of(up: &SessionUp) -> Option<Proxy> {
    if up.proxy.is_empty() {
        return None;
    }
    let p = &up.proxy;
    Some(Proxy {
        initial_received_lcp: p.initial_received_confreq.clone(),
        last_sent_lcp: p.last_sent_confreq.clone(),
        last_received_lcp: p.last_received_confreq.clone(),
        authen_type: p.authen_type,
        authen_name: p.authen_name.clone(),
        authen_challenge: p.authen_challenge.clone(),
        authen_id: p.authen_id.map(u16::from),
        authen_response: p.authen_response.clone(),
    })
}

/// The CDN for a PPP link that went down: Result Code (RFC 2661 §4.4.2) and the RFC 3145 §2
/// PPP Disconnect Cause (code, the control protocol concerned, direction).
fn cdn_for(reason: DownReason) -> (ResultCode, PppDisconnectCause) {
    use l2xdp_wire::l2tp::codes::{direction as dir, PppDisconnectCode as C};
    let (result, code, proto, direction, text) = match reason {
        DownReason::Administrative => (3, C::ADMINISTRATIVE, 0, dir::AT_LOCAL, "administrative"),
        DownReason::LowerLayerDown => (1, C::NO_INFORMATION, 0, dir::GLOBAL, "lower layer down"),
        DownReason::PeerTerminated => {
            (3, C::NORMAL, protocol::LCP, dir::AT_PEER, "peer terminated")
        }
        DownReason::LcpFailed => (
            2,
            C::LCP_FSM_TIMEOUT,
            protocol::LCP,
            dir::AT_LOCAL,
            "LCP failed",
        ),
        DownReason::AuthNotAgreed => (
            2,
            C::AUTH_PROTOCOL_UNACCEPTABLE,
            protocol::LCP,
            dir::AT_PEER,
            "no authentication protocol agreed",
        ),
        DownReason::AuthFailed => (2, C::AUTH_FAILED, 0, dir::AT_LOCAL, "authentication failed"),
        DownReason::AuthTimeout => (
            2,
            C::AUTH_FSM_TIMEOUT,
            0,
            dir::AT_LOCAL,
            "authentication timeout",
        ),
        DownReason::PoolExhausted => (
            4,
            C::NCP_NO_ADDRESS_CONVERGENCE,
            protocol::IPCP,
            dir::AT_LOCAL,
            "address pool exhausted",
        ),
        DownReason::AddressInUse => (
            2,
            C::NCP_ADDRESS_NOT_PERMITTED,
            protocol::IPCP,
            dir::AT_LOCAL,
            "address in use",
        ),
        DownReason::NoNetworkProtocols => (2, C::NO_NCPS, 0, dir::GLOBAL, "no network protocol"),
        DownReason::DeadPeer => (
            1,
            C::LCP_ECHO_TIMEOUT,
            protocol::LCP,
            dir::AT_PEER,
            "keepalive timeout",
        ),
        DownReason::LoopedBack => (
            2,
            C::LCP_LOOPED_BACK,
            protocol::LCP,
            dir::GLOBAL,
            "looped back",
        ),
    };
    (
        ResultCode::new(result, 0, text),
        PppDisconnectCause {
            code: code.0,
            protocol: proto,
            direction,
            message: text.to_string(),
        },
    )
}

/// A PPP session's binding before (or between) IPCP/IPv6CP: no subscriber address.
fn unbound() -> Binding {
    Binding::Subscriber {
        ipv4: None,
        ipv6: Vec::new(),
    }
}

fn unspecified_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// Sessions a restored tunnel has (for a recovery's record).
fn state_sessions(registry: &Registry, t: TunnelId) -> usize {
    registry.tunnel(t).map_or(0, |t| t.session_count())
}

#[cfg(test)]
mod tests {
    //! The RFC 4951 ordering contract through a node: what the registry persists is committed
    //! before any datagram that follows it leaves (group commit).

    use std::sync::{Arc, Mutex};

    use l2xdp_dataplane::MemoryDataPlane;

    use super::*;
    use crate::l2tp::failover::{MemoryStore, RecoveryState, StoreError};
    use crate::l2tp::{FailoverConfig, L2tpConfig};
    use crate::ppp::MemoryCredentials;

    /// A store that buffers until `commit`, as the embedded-database store does; the test
    /// sees what is pending and what is committed.
    #[derive(Clone, Default)]
    struct Spy(Arc<Mutex<(Vec<StoreOp>, MemoryStore, usize)>>);

    impl Spy {
        fn pending(&self) -> usize {
            self.0.lock().expect("spy").0.len()
        }
        fn committed(&self) -> RecoveryState {
            self.0.lock().expect("spy").1.load().expect("load")
        }
        fn commits(&self) -> usize {
            self.0.lock().expect("spy").2
        }
    }

    impl StateStore for Spy {
        fn put_tunnel(
            &mut self,
            t: &crate::l2tp::failover::TunnelRecord,
        ) -> Result<(), StoreError> {
            self.apply(&StoreOp::PutTunnel(Box::new(t.clone())))
        }
        fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
            self.apply(&StoreOp::RemoveTunnel(id))
        }
        fn put_session(
            &mut self,
            s: &crate::l2tp::failover::SessionRecord,
        ) -> Result<(), StoreError> {
            self.apply(&StoreOp::PutSession(Box::new(s.clone())))
        }
        fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
            self.apply(&StoreOp::RemoveSession { tunnel, session })
        }
        fn apply(&mut self, op: &StoreOp) -> Result<(), StoreError> {
            self.0.lock().expect("spy").0.push(op.clone());
            Ok(())
        }
        fn commit(&mut self) -> Result<(), StoreError> {
            let mut g = self.0.lock().expect("spy");
            let ops = std::mem::take(&mut g.0);
            for op in &ops {
                g.1.apply(op)?;
            }
            g.2 += 1;
            Ok(())
        }
        fn load(&self) -> Result<RecoveryState, StoreError> {
            Ok(self.committed())
        }
    }

    fn node(name: &str, spy: &Spy) -> Node {
        let mut l2tp = L2tpConfig {
            host_name: name.into(),
            failover: Some(FailoverConfig {
                control: true,
                data: true,
                recovery_time_ms: 5_000,
            }),
            ..L2tpConfig::default()
        };
        l2tp.pseudowire.cookie_len = 4;
        Node::new(
            NodeConfig {
                l2tp,
                ppp: Arc::new(PppConfig::default()),
                credentials: Arc::new(MemoryCredentials::new()),
                pool: None,
                attachment_circuits: HashMap::new(),
                seed: 7,
            },
            Box::new(MemoryDataPlane::new()),
        )
        .with_store(Box::new(spy.clone()))
    }

    /// Every datagram a node hands out leaves nothing uncommitted behind it: the tunnel's
    /// record before the SCCCN / the ZLB acknowledging it, each session's record before the
    /// ICCN (LAC) or the ZLB acknowledging the ICCN (LNS). Checked at every datagram of a
    /// whole set-up, both roles, L2TPv3.
    #[test]
    fn store_is_committed_before_any_datagram_leaves() {
        let (lac_spy, lns_spy) = (Spy::default(), Spy::default());
        let mut lac = node("lac", &lac_spy);
        let mut lns = node("lns", &lns_spy);
        let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
            "192.0.2.2:1701".parse().expect("addr"),
            "192.0.2.1:1701".parse().expect("addr"),
        );
        let (a, b) = (Peer::udp(a_addr), Peer::udp(b_addr));
        let now = Instant::now();
        let t = lac.open_tunnel(b, Version::V3, now).expect("tunnel");
        let mut opened = false;
        let mut datagrams = 0;
        for _ in 0..50 {
            let mut moved = false;
            while let Some((to, d)) = lac.poll_transmit() {
                assert_eq!(lac_spy.pending(), 0, "LAC sent with records uncommitted");
                assert_eq!(to, b);
                lns.handle_datagram(b_addr, a, &d, now);
                moved = true;
                datagrams += 1;
            }
            while let Some((to, d)) = lns.poll_transmit() {
                assert_eq!(lns_spy.pending(), 0, "LNS sent with records uncommitted");
                assert_eq!(to, a);
                lac.handle_datagram(a_addr, b, &d, now);
                moved = true;
                datagrams += 1;
            }
            if !opened
                && lac.registry().tunnels().any(|x| {
                    x.id() == t && x.state() == crate::l2tp::tunnel::TunnelState::Established
                })
            {
                for _ in 0..3 {
                    lac.open_session(t, CallParams::default(), None, now)
                        .expect("session");
                }
                opened = true;
                moved = true;
            }
            if !moved {
                break;
            }
        }
        assert!(opened, "the tunnel came up");
        for (side, spy) in [("LAC", &lac_spy), ("LNS", &lns_spy)] {
            let st = spy.committed();
            assert_eq!(st.tunnels.len(), 1, "{side}: the tunnel committed");
            assert_eq!(st.sessions.len(), 3, "{side}: every session committed");
            assert!(spy.commits() >= 2, "{side}: {} commits", spy.commits());
        }
        assert!(datagrams > 8, "{datagrams} datagrams");
    }
}
