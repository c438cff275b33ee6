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
//!
//! The node is one type, [`Node`], whose `impl` is spread over five files:
//! - this file: its configuration and events, the node itself, the commands (open and close
//!   tunnels and sessions), the I/O entry points (datagrams, timers, transmit, events), and the
//!   L2TP events that set up and tear down sessions.
//! - `ppp.rs`: a session's PPP link — PPP frames in and out (L2TPv2 data messages), the
//!   client's start, and what the node does on the link's events (bind, unbind, CDN).
//! - `fastpath.rs`: a session's fast-path entry — built, installed and removed.
//! - `recovery.rs`: RFC 4951 — what is attached to a persisted session ([`AppData`]),
//!   [`Node::recover`], and the registry's failover events (store operations, restored
//!   sessions, recovered and failed tunnels).
//! - `status.rs`: what the operator sees (`l2xdpctl show …`, `failover status`, metrics): the
//!   status types and the queries that build them.
//!
//! [`LinkState`]: crate::ppp::LinkState

mod accounting;
mod fastpath;
mod ppp;
mod recovery;
mod status;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use l2xdp_dataplane_api::{Binding, DataPlane, SessionEntry};
use l2xdp_wire::l2tp::header::{self, IpPayload, Transport, Version};
use serde::Serialize;

use crate::l2tp::{
    CallParams, Event as L2tpEvent, L2tpConfig, L2tpError, Peer, Registry, ResultCode, SessionUp,
    StateStore, TunnelId,
};
use crate::ppp::{Credentials, Ipv4Pool, Link, PppConfig};
use crate::ppp::{DownReason, LinkUp};
use crate::random::Random;

use self::fastpath::unbound;
use self::ppp::proxy_of;
pub use self::recovery::{AppData, RecoverError};
pub use self::status::{
    FailoverStatus, Footprint, NodeCounters, RecoveryOutcome, RecoveryRecord, RecoveryTotals,
    SessionDetail, SessionStatus, TunnelFailover, TunnelStatus,
};

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
    /// The random source of the node's tunnels, sessions and PPP links (IDs, challenges,
    /// nonces, Random Vectors, Magic-Numbers): [`Random::from_os`] in production.
    pub random: Random,
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
    /// External credentials (RADIUS): a subscriber's proof to verify; the answer goes to
    /// [`Node::auth_answer`] (the driver asks the RADIUS client).
    AuthRequest {
        tunnel: TunnelId,
        session: u32,
        /// Hand back with the answer: a session that went and came back with the same IDs
        /// does not take an answer meant for its predecessor.
        ticket: u64,
        request: Box<crate::aaa::AccessRequest>,
    },
    /// RADIUS accounting (RFC 2866): an Accounting-Request's attributes (Start or Stop) for
    /// the driver to send.
    Accounting {
        tunnel: TunnelId,
        session: u32,
        attributes: Vec<l2xdp_wire::radius::Attribute>,
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
    /// Boxed: the map of sessions holds a million of these, and a table keeps room for more
    /// than it holds.
    link: Option<Box<Link>>,
    installed: bool,
    /// The subscriber's address while PPP is up (server role) or ours (client role).
    ipv4: Option<Ipv4Addr>,
    /// Client role: the credentials and random source of a PPP client not started yet (see
    /// [`CLIENT_START`]). Boxed: only a LAC's sessions have one, briefly, and the map holds
    /// a million states.
    pending_client: Option<Box<(ClientAuth, Random)>>,
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
    /// The local address each peer talks to (the template's outer source). Only peers of
    /// some tunnel ([`Registry::has_peer`]) are entered, and entries of peers without one are
    /// pruned once they could be as many as the peers: a datagram that creates nothing leaves
    /// nothing here.
    local_of: HashMap<Peer, SocketAddr>,
    dataplane: Box<dyn DataPlane>,
    /// During [`Node::recover`]: the fast path's entries by key, listed once.
    fast_path_snapshot: Option<HashMap<l2xdp_wire::datapath::SessionKey, SessionEntry>>,
    cfg: NodeConfig,
    outbox: VecDeque<(Peer, Vec<u8>)>,
    events: VecDeque<NodeEvent>,
    counters: NodeCounters,
    store: Option<Box<dyn StateStore + Send>>,
    /// RADIUS accounting of the sessions authenticated by RADIUS (`accounting.rs`).
    acct: HashMap<SessionRef, accounting::AcctState>,
    /// Store operations applied and not committed yet.
    uncommitted: bool,
    /// Restored sessions whose fast-path entry was missing, installed once their tunnel is
    /// recovered (the outer local address is known only then): binding and PPP results.
    /// Ordered, so a tunnel's are one range (not a scan of all per recovered tunnel), and
    /// memory goes as they are installed.
    deferred_installs: std::collections::BTreeMap<SessionRef, (Binding, Option<LinkUp>)>,
    /// The recoveries of the last [`Node::recover`], by old tunnel.
    recoveries: std::collections::BTreeMap<TunnelId, RecoveryRecord>,
    recovery_totals: RecoveryTotals,
}

impl Node {
    /// A node with no tunnels.
    pub fn new(mut cfg: NodeConfig, dataplane: Box<dyn DataPlane>) -> Self {
        let mut registry = Registry::with_random(cfg.l2tp.clone(), cfg.random.fork());
        registry.set_id_hint(dataplane.id_hint());
        Node {
            registry,
            sessions: HashMap::new(),
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::new(),
            dirty: Vec::new(),
            client_auth: HashMap::new(),
            local_of: HashMap::new(),
            dataplane,
            fast_path_snapshot: None,
            cfg,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            counters: NodeCounters::default(),
            store: None,
            acct: HashMap::new(),
            uncommitted: false,
            deferred_installs: std::collections::BTreeMap::new(),
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
        if self.registry.has_sequence_changes() {
            self.persist_sequences();
        }
        if self.uncommitted {
            self.commit_store();
        }
        self.store.take()
    }

    /// Whether the node has a failover store.
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The tunnel registry (read-only: state, counters).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The fast path.
    pub fn dataplane(&self) -> &dyn DataPlane {
        self.dataplane.as_ref()
    }

    /// Puts `dataplane` in place of the node's fast path and returns the old one (a failover
    /// drill hands the fast path, untouched, from the old node to the new one).
    pub fn replace_dataplane(&mut self, dataplane: Box<dyn DataPlane>) -> Box<dyn DataPlane> {
        self.registry.set_id_hint(dataplane.id_hint());
        std::mem::replace(&mut self.dataplane, dataplane)
    }

    /// The subscribers' gateway address the fast path answers ping for
    /// ([`DataPlane::set_gateway`]; `config reload` when `[ppp.ipcp] local_address` changed).
    pub fn set_gateway(
        &mut self,
        ipv4: Option<std::net::Ipv4Addr>,
    ) -> Result<(), l2xdp_dataplane_api::DataPlaneError> {
        self.dataplane.set_gateway(ipv4)
    }

    /// SCCRQs per second the fast path passes on ([`DataPlane::set_sccrq_budget`]; `config
    /// reload` when `[l2tp.limits] xdp_sccrq_per_sec` changed).
    pub fn set_sccrq_budget(
        &mut self,
        per_sec: u32,
    ) -> Result<(), l2xdp_dataplane_api::DataPlaneError> {
        self.dataplane.set_sccrq_budget(per_sec)
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
        self.sessions.get(&s).and_then(|s| s.link.as_deref())
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
        // Before `pump`: a session set up by this datagram is installed with this address.
        if self.registry.has_peer(&peer) {
            self.local_of.insert(peer, local);
        }
        self.pump(now);
        self.prune_local_of();
    }

    /// Drops the sender entries of peers whose last tunnel went away, and (should that list
    /// have been lost) of all peers without a tunnel once there may be as many of them as
    /// peers with one (amortised O(1) per datagram).
    fn prune_local_of(&mut self) {
        for p in self.registry.take_gone_peers() {
            if !self.registry.has_peer(&p) {
                self.local_of.remove(&p);
            }
        }
        if self.local_of.len() > 2 * self.registry.peer_count() + 64 {
            let r = &self.registry;
            self.local_of.retain(|p, _| r.has_peer(p));
        }
    }

    /// Gives back the room a flood made the node's tables grow to, once they are mostly
    /// empty again ([`Registry::compact`], the sender map); true when something was shrunk.
    pub fn compact(&mut self) -> bool {
        let mut shrunk = self.registry.compact();
        if self.local_of.capacity() > 4 * self.local_of.len() + 256 {
            self.local_of.shrink_to_fit();
            shrunk = true;
        }
        if self.outbox.is_empty() && self.outbox.capacity() > 1024 {
            self.outbox.shrink_to_fit();
            shrunk = true;
        }
        shrunk
    }

    /// The local address `peer` talks to, while some tunnel talks to it.
    pub fn local_for(&self, peer: &Peer) -> Option<SocketAddr> {
        self.local_of.get(peer).copied()
    }

    /// Entries of the sender map (peer → local address).
    pub fn sender_entries(&self) -> usize {
        self.local_of.len()
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
            self.acct_timeout(key, now);
            self.dirty.push(key);
        }
        self.pump(now);
        self.prune_local_of();
    }

    /// The next datagram to send. Commits the failover store first when operations are
    /// pending (group commit, RFC 4951 ordering contract: what acknowledges a tunnel or
    /// session leaves only once its record is durable). A driver calls this every turn, so
    /// every turn ends with one commit of everything it produced.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
        if self.registry.has_sequence_changes() {
            self.persist_sequences();
        }
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
                // A restored session that goes down before its tunnel is recovered: its
                // deferred fast-path entry goes with it (found by the state-machine fuzzer).
                self.deferred_installs.remove(&key);
                self.forget_deadline(key);
                if let Some(st) = self.sessions.remove(&key) {
                    // The call went before PPP said so (CDN, tunnel down): accounting stops
                    // here, with the counters of the entry about to go.
                    self.acct_stop(key, &st.up, DownReason::LowerLayerDown, now);
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
        let rng = self.cfg.random.fork();
        let mut installed = false;
        let mut pending_client = None;
        let link = match up.version {
            Version::V2 if up.initiator => {
                pending_client = self.client_auth.remove(&key).map(|a| Box::new((a, rng)));
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
                        rng,
                        now,
                    ),
                    None => Link::server(
                        self.cfg.ppp.clone(),
                        self.cfg.credentials.clone(),
                        self.cfg.pool.clone(),
                        rng,
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
                link: link.map(Box::new),
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
}

#[cfg(test)]
mod tests;
