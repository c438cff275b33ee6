//! Many control connections: demultiplexing, ID allocation, timers, commands, events.
//!
//! Two more `impl Registry` blocks live in child modules: `sccrq.rs` (an SCCRQ to tunnel
//! ID 0, the admission limits, the half-open tracking) and `recovery.rs` (RFC 4951 recovery
//! SCCRQs, restoring a persisted state, resume, farewells).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{split_ip, ControlHeader, IpPayload, Transport, Version};

use super::admission::{Admission, LogLimiter, RateLimiter};
use super::config::L2tpConfig;
use super::failover::{self, FailoverEvent};
use super::ids::IdAllocator;
use super::tunnel::{Ctx, RecoveryAction, Tunnel, TunnelState};
use super::{
    CallParams, Counters, Event, L2tpError, Peer, PppDisconnectCause, ResultCode, TunnelId,
};
use crate::random::Random;

mod recovery;
mod sccrq;

pub use self::recovery::RecoveryReport;

/// All control connections of this node.
pub struct Registry {
    cfg: Arc<L2tpConfig>,
    tunnels: HashMap<TunnelId, Tunnel>,
    /// (peer, peer's tunnel ID) of responder tunnels: a retransmitted SCCRQ finds its tunnel.
    by_peer: HashMap<(Peer, u32), TunnelId>,
    tunnel_ids: IdAllocator,
    v3_sessions: IdAllocator,
    /// The fast path's preference among session ids.
    id_hint: Option<std::sync::Arc<dyn l2xdp_dataplane_api::IdHint>>,
    rng: Random,
    heap: BinaryHeap<Reverse<(Instant, TunnelId)>>,
    dirty: VecDeque<TunnelId>,
    dirty_set: HashSet<TunnelId>,
    events: VecDeque<Event>,
    failover_events: VecDeque<FailoverEvent>,
    actions: VecDeque<RecoveryAction>,
    /// Half-open tunnels whose SCCCN came when `max_tunnels` were already established: refused
    /// (StopCCN 2/4) once the change that promoted them is done.
    over_limit: VecDeque<TunnelId>,
    counters: Counters,
    retired_retransmissions: u64,
    now: Option<Instant>,
    /// Tunnel counts, the half-open table, the peers in use.
    admission: Admission,
    /// New tunnels per source address.
    rate: RateLimiter,
    /// Repeated events a remote sender can cause.
    log: LogLimiter,
    /// Answers of tunnels that were dropped as soon as they answered (refused SCCRQs): no
    /// state is kept for them, nothing is retransmitted.
    stateless: VecDeque<(Peer, Vec<u8>)>,
    /// Tunnels whose sequence state may need persisting ([`Registry::take_sequence_ops`]).
    seq_dirty: HashSet<TunnelId>,
}

impl Registry {
    /// Draws new session ids among those the fast path prefers ([`l2xdp_dataplane_api::IdHint`]).
    pub fn set_id_hint(&mut self, hint: Option<std::sync::Arc<dyn l2xdp_dataplane_api::IdHint>>) {
        self.id_hint = hint;
    }

    /// A registry drawing its IDs, challenges, nonces and Random Vectors from `rng`
    /// ([`Random::from_os`] in production).
    pub fn with_random(cfg: L2tpConfig, rng: Random) -> Self {
        Registry {
            cfg: Arc::new(cfg),
            tunnels: HashMap::new(),
            by_peer: HashMap::new(),
            tunnel_ids: IdAllocator::new(u32::MAX),
            v3_sessions: IdAllocator::new(u32::MAX),
            id_hint: None,
            rng,
            heap: BinaryHeap::new(),
            dirty: VecDeque::new(),
            dirty_set: HashSet::new(),
            events: VecDeque::new(),
            failover_events: VecDeque::new(),
            actions: VecDeque::new(),
            over_limit: VecDeque::new(),
            counters: Counters::default(),
            retired_retransmissions: 0,
            now: None,
            admission: Admission::default(),
            rate: RateLimiter::default(),
            log: LogLimiter::default(),
            stateless: VecDeque::new(),
            seq_dirty: HashSet::new(),
        }
    }

    /// The sequence records (transparent resume, `tunnel/resume.rs`) of the tunnels whose
    /// sequence state moved since they were last taken: one per tunnel, however many
    /// datagrams it handled. **Apply them to the store and commit before sending** what
    /// [`Registry::poll_transmit`] returned ([`crate::node::Node::poll_transmit`] does).
    pub fn take_sequence_ops(&mut self) -> Vec<failover::StoreOp> {
        let mut ops = Vec::new();
        for id in self.seq_dirty.drain() {
            if let Some(t) = self.tunnels.get_mut(&id) {
                if t.sequence_dirty() {
                    ops.push(failover::StoreOp::PutSequence(Box::new(
                        t.sequence_record(),
                    )));
                }
            }
        }
        ops
    }

    /// Whether some tunnel's sequence state may need persisting.
    pub fn has_sequence_changes(&self) -> bool {
        !self.seq_dirty.is_empty()
    }

    /// The configuration.
    pub fn config(&self) -> &L2tpConfig {
        &self.cfg
    }

    /// Replaces the configuration (`config reload`): tunnels opened or accepted from now on
    /// use it — their secret, timers, window, hello interval — and the tunnel limit applies
    /// at once; established tunnels keep the configuration they were set up with.
    pub fn set_config(&mut self, cfg: L2tpConfig) {
        self.cfg = Arc::new(cfg);
    }

    /// A tunnel by our ID.
    pub fn tunnel(&self, id: TunnelId) -> Option<&Tunnel> {
        self.tunnels.get(&id)
    }

    /// All tunnels (any state).
    pub fn tunnels(&self) -> impl Iterator<Item = &Tunnel> + '_ {
        self.tunnels.values()
    }

    /// Number of tunnels (any state, closing ones included).
    pub fn len(&self) -> usize {
        self.tunnels.len()
    }

    /// Half-open tunnels (SCCRQ answered, no SCCCN yet).
    pub fn half_open(&self) -> usize {
        self.admission.half_open()
    }

    /// Whether some tunnel (any state) talks to `peer`: the sender maps keep only these.
    pub fn has_peer(&self, peer: &Peer) -> bool {
        self.admission.has_peer(peer)
    }

    /// Takes the peers whose last tunnel went away since the last call (the sender maps drop
    /// them; a peer may have a new tunnel by now: check [`Registry::has_peer`]).
    pub fn take_gone_peers(&mut self) -> Vec<Peer> {
        self.admission.take_gone()
    }

    /// Distinct peers of all tunnels.
    pub fn peer_count(&self) -> usize {
        self.admission.peers()
    }

    /// Source addresses whose SCCRQ rate is tracked.
    pub fn rate_limited_sources(&self) -> usize {
        self.rate.len()
    }

    /// Gives back the room a flood made the tables grow to once they are mostly empty again
    /// (a map keeps its capacity; the timer heap keeps stale entries until their time).
    /// Cheap when there is nothing to do; true when something was shrunk.
    pub fn compact(&mut self) -> bool {
        let live = self.tunnels.len();
        let oversized = |cap: usize, len: usize| cap > 4 * len + 256;
        let mut shrunk = false;
        if oversized(self.heap.len(), live) {
            let tunnels = &self.tunnels;
            self.heap.retain(|Reverse((d, id))| {
                tunnels.get(id).is_some_and(|t| t.scheduled == Some(*d))
            });
            self.heap.shrink_to_fit();
            shrunk = true;
        }
        if oversized(self.tunnels.capacity(), live) {
            self.tunnels.shrink_to_fit();
            shrunk = true;
        }
        if oversized(self.by_peer.capacity(), self.by_peer.len()) {
            self.by_peer.shrink_to_fit();
            shrunk = true;
        }
        if oversized(self.dirty_set.capacity(), self.dirty_set.len()) {
            self.dirty_set.shrink_to_fit();
            self.dirty.shrink_to_fit();
            shrunk = true;
        }
        if oversized(self.stateless.capacity(), self.stateless.len()) {
            self.stateless.shrink_to_fit();
            shrunk = true;
        }
        let l = self.cfg.limits;
        let now = self.now.unwrap_or_else(Instant::now).max(Instant::now());
        shrunk |= self
            .rate
            .compact(l.sccrq_per_source_per_sec, l.sccrq_per_source_burst, now);
        shrunk | self.admission.compact()
    }

    /// Whether there is no tunnel.
    pub fn is_empty(&self) -> bool {
        self.tunnels.is_empty()
    }

    /// Counters (retransmissions summed over live and closed tunnels).
    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        c.retransmissions = self.retired_retransmissions
            + self
                .tunnels
                .values()
                .map(|t| t.channel().stats().retransmitted)
                .sum::<u64>();
        c
    }

    /// The sizes of the registry's tables (see [`RegistryFootprint`]).
    pub fn footprint(&self) -> RegistryFootprint {
        let mut f = RegistryFootprint {
            tunnels: self.tunnels.len(),
            by_peer: self.by_peer.len(),
            timers: self.heap.len(),
            dirty: self.dirty.len().max(self.dirty_set.len()),
            events: self.events.len() + self.failover_events.len() + self.actions.len(),
            half_open: self.half_open(),
            ..RegistryFootprint::default()
        };
        for t in self.tunnels.values() {
            if !matches!(t.state(), TunnelState::Closing | TunnelState::Finished) {
                match t.role() {
                    super::tunnel::Role::Normal => f.live_tunnels += 1,
                    super::tunnel::Role::Recovery { .. } => f.recovery_tunnels += 1,
                }
            }
            f.sessions += t.session_count();
            f.max_sessions_in_tunnel = f.max_sessions_in_tunnel.max(t.session_count());
            f.in_flight += t.channel().in_flight();
            f.queued += t.channel().queued();
        }
        f
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next RFC 4951 event. Apply [`FailoverEvent::Store`] operations before sending the
    /// datagrams polled after them (see [`super::failover`]).
    pub fn poll_failover_event(&mut self) -> Option<FailoverEvent> {
        self.failover_events.pop_front()
    }

    /// Attaches the caller's data (e.g. PPP results) to an established session; persisted with
    /// it ([`FailoverEvent::Store`]) and handed back by [`Registry::recover`].
    pub fn set_session_app_data(
        &mut self,
        tunnel: TunnelId,
        session: u32,
        app: Box<[u8]>,
        now: Instant,
    ) -> Result<(), L2tpError> {
        self.live(tunnel)?;
        self.with_tunnel(tunnel, now, |t, ctx| t.set_app_data(ctx, session, app))
            .unwrap_or(Err(L2tpError::NoTunnel(tunnel)))
    }

    fn with_tunnel<R>(
        &mut self,
        id: TunnelId,
        now: Instant,
        f: impl FnOnce(&mut Tunnel, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let r = self.with_tunnel_inner(id, now, f);
        // RFC 4951: a recovery tunnel's progress acts on its old tunnel.
        while let Some(a) = self.actions.pop_front() {
            match a {
                RecoveryAction::Reset {
                    old,
                    ns,
                    nr,
                    role,
                    nonces,
                    peer,
                } => {
                    self.with_tunnel_inner(old, now, |t, ctx| {
                        t.control_reset(ctx, ns, nr, role, nonces, peer)
                    });
                }
                RecoveryAction::Failed { old, reason } => {
                    self.with_tunnel_inner(old, now, |t, ctx| {
                        if t.is_recovering() {
                            t.clear_silently(ctx, reason);
                        }
                    });
                }
                RecoveryAction::Recover { old, old_peer } => {
                    self.counters.count_failover("resume fell back to recovery");
                    self.start_recovery_of(old, old_peer, now);
                }
            }
        }
        while let Some(id) = self.over_limit.pop_front() {
            self.counters
                .count_admission("SCCCN refused (tunnel limit)");
            self.with_tunnel_inner(id, now, |t, ctx| {
                t.stop(
                    ctx,
                    ResultCode::new(
                        StopCcnResult::GENERAL_ERROR.0,
                        ErrorCode::NO_RESOURCES.0,
                        "tunnel limit reached",
                    ),
                )
            });
        }
        r
    }

    fn with_tunnel_inner<R>(
        &mut self,
        id: TunnelId,
        now: Instant,
        f: impl FnOnce(&mut Tunnel, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        self.now = Some(now);
        let t = self.tunnels.get_mut(&id)?;
        let mut events = Vec::new();
        let mut fo = Vec::new();
        let mut actions = Vec::new();
        let r = {
            let mut ctx = Ctx {
                now,
                rng: &mut self.rng,
                v3_sessions: &mut self.v3_sessions,
                id_hint: self.id_hint.as_deref(),
                events: &mut events,
                counters: &mut self.counters,
                failover: &mut fo,
                actions: &mut actions,
            };
            f(t, &mut ctx)
        };
        self.events.extend(events);
        self.failover_events.extend(fo);
        self.actions.extend(actions);
        self.touch(id);
        Some(r)
    }

    fn touch(&mut self, id: TunnelId) {
        if self.dirty_set.insert(id) {
            self.dirty.push_back(id);
        }
        self.reschedule(id);
    }

    fn reschedule(&mut self, id: TunnelId) {
        self.track(id);
        let half_open = self
            .admission
            .half_open_deadline(id, self.half_open_timeout());
        let unverified = self.admission.is_unverified(id);
        let finished = match self.tunnels.get_mut(&id) {
            Some(t) if t.is_finished() => true,
            Some(t) => {
                let unverified = unverified && t.channel().stats().retransmitted > 0;
                // A half-open tunnel ends at its deadline; while its peer has acknowledged
                // nothing, our SCCRP is retransmitted once on a timer and then that deadline
                // is its only timer: no retransmission storm toward an unverified source (its
                // retransmitted SCCRQs are answered one for one instead).
                let d = match (t.poll_timeout(), half_open) {
                    (_, Some(h)) if unverified => Some(h),
                    (Some(d), Some(h)) => Some(d.min(h)),
                    (d, h) => d.or(h),
                };
                if let Some(d) = d {
                    if t.scheduled.is_none_or(|s| d < s) {
                        t.scheduled = Some(d);
                        self.heap.push(Reverse((d, id)));
                        self.trim_timers();
                    }
                }
                false
            }
            None => false,
        };
        if finished {
            self.remove(id);
        }
    }

    /// Drops the timer heap's stale entries (a rescheduled or removed tunnel's) once they
    /// outnumber the live ones: the heap stays within 4 entries a tunnel + 256 whatever a
    /// flood of short-lived half-open tunnels does, at an amortized O(1) per push (after a
    /// trim it holds at most one entry a tunnel).
    fn trim_timers(&mut self) {
        if self.heap.len() > 4 * self.tunnels.len() + 256 {
            let tunnels = &self.tunnels;
            self.heap.retain(|Reverse((d, id))| {
                tunnels.get(id).is_some_and(|t| t.scheduled == Some(*d))
            });
        }
    }

    fn remove(&mut self, id: TunnelId) {
        let Some(mut t) = self.tunnels.remove(&id) else {
            return;
        };
        self.trim_timers();
        let mut events = Vec::new();
        let mut fo = Vec::new();
        let mut actions = Vec::new();
        {
            let mut ctx = Ctx {
                now: self.now.unwrap_or_else(Instant::now),
                rng: &mut self.rng,
                v3_sessions: &mut self.v3_sessions,
                id_hint: self.id_hint.as_deref(),
                events: &mut events,
                counters: &mut self.counters,
                failover: &mut fo,
                actions: &mut actions,
            };
            t.release(&mut ctx);
        }
        self.events.extend(events);
        self.failover_events.extend(fo);
        self.actions.extend(actions);
        self.retired_retransmissions += t.channel().stats().retransmitted;
        if self.by_peer.get(&(t.peer(), t.peer_tunnel_id())) == Some(&id) {
            self.by_peer.remove(&(t.peer(), t.peer_tunnel_id()));
        }
        self.tunnel_ids.free(id);
        self.admission.forget(id);
        tracing::debug!(tunnel = id, "tunnel removed");
    }

    fn new_tunnel(&mut self, peer: Peer, version: Version, initiator: bool) -> Option<TunnelId> {
        let limit = match version {
            Version::V2 => u32::from(u16::MAX),
            Version::V3 => u32::MAX,
        };
        let id = self.tunnel_ids.alloc_below(limit, &mut self.rng)?;
        let t = Tunnel::new(
            id,
            version,
            peer,
            initiator,
            self.cfg.clone(),
            &mut self.rng,
        );
        self.tunnels.insert(id, t);
        self.track(id);
        Some(id)
    }

    /// Opens a control connection to `peer` (we send the SCCRQ). [`Event::TunnelUp`] follows.
    pub fn open_tunnel(
        &mut self,
        peer: Peer,
        version: Version,
        now: Instant,
    ) -> Result<TunnelId, L2tpError> {
        if version == Version::V2 && peer.transport != Transport::Udp {
            return Err(L2tpError::BadTransport);
        }
        if self.admission.open() >= self.cfg.limits.max_tunnels {
            return Err(L2tpError::Limit("tunnels"));
        }
        let id = self
            .new_tunnel(peer, version, true)
            .ok_or(L2tpError::Limit("tunnel IDs"))?;
        self.with_tunnel(id, now, |t, ctx| t.start(ctx));
        Ok(id)
    }

    fn live(&self, id: TunnelId) -> Result<&Tunnel, L2tpError> {
        match self.tunnels.get(&id) {
            Some(t) if !matches!(t.state(), TunnelState::Closing | TunnelState::Finished) => Ok(t),
            _ => Err(L2tpError::NoTunnel(id)),
        }
    }

    /// Opens a session in an established tunnel (ICRQ or OCRQ). Returns our session ID;
    /// [`Event::SessionUp`] follows.
    pub fn open_session(
        &mut self,
        tunnel: TunnelId,
        params: CallParams,
        now: Instant,
    ) -> Result<u32, L2tpError> {
        self.live(tunnel)?;
        self.with_tunnel(tunnel, now, |t, ctx| t.open_session(ctx, params))
            .unwrap_or(Err(L2tpError::NoTunnel(tunnel)))
    }

    /// Closes a session with a CDN (RFC 2661 §5.4.2), optionally with an RFC 3145 PPP
    /// Disconnect Cause.
    pub fn close_session(
        &mut self,
        tunnel: TunnelId,
        session: u32,
        result: ResultCode,
        ppp_cause: Option<PppDisconnectCause>,
        now: Instant,
    ) -> Result<(), L2tpError> {
        if self.live(tunnel)?.session_state(session).is_none() {
            return Err(L2tpError::NoSession { tunnel, session });
        }
        self.with_tunnel(tunnel, now, |t, ctx| t.cdn(ctx, session, result, ppp_cause));
        Ok(())
    }

    /// Sends an SLI: ACCM (v2) or Circuit Status (v3).
    pub fn send_sli(
        &mut self,
        tunnel: TunnelId,
        session: u32,
        accm: Option<(u32, u32)>,
        circuit_active: Option<bool>,
        now: Instant,
    ) -> Result<(), L2tpError> {
        self.live(tunnel)?;
        self.with_tunnel(tunnel, now, |t, ctx| {
            t.send_sli(ctx, session, accm, circuit_active)
        })
        .unwrap_or(Err(L2tpError::NoTunnel(tunnel)))
    }

    /// Closes a control connection with a StopCCN (its sessions go down without CDNs).
    pub fn close_tunnel(
        &mut self,
        tunnel: TunnelId,
        result: ResultCode,
        now: Instant,
    ) -> Result<(), L2tpError> {
        self.live(tunnel)?;
        self.with_tunnel(tunnel, now, |t, ctx| t.stop(ctx, result));
        Ok(())
    }

    /// Handles a received control datagram: the UDP payload, or for IP transport the IP payload
    /// (starting with the zero Session ID). Data messages must not be passed here (over UDP
    /// they are dropped and counted; over IP they are recognised by their session ID).
    pub fn handle_datagram(&mut self, peer: Peer, bytes: &[u8], now: Instant) {
        self.now = Some(now);
        let msg = match peer.transport {
            Transport::Udp => bytes,
            Transport::Ip => match split_ip(bytes) {
                Ok(IpPayload::Control(rest)) => rest,
                Ok(IpPayload::Data { .. }) => {
                    self.counters.count_invalid("data message");
                    return;
                }
                Err(_) => {
                    self.counters.count_invalid("malformed header");
                    return;
                }
            },
        };
        let header = match ControlHeader::parse(msg) {
            Ok((h, _)) => h,
            Err(_) => {
                self.counters.count_invalid("malformed or data header");
                self.log.note("malformed control header", &peer, now);
                return;
            }
        };
        if header.tunnel_id != 0 {
            match self.tunnels.get(&header.tunnel_id) {
                Some(t) if t.version() == header.version => {
                    let id = header.tunnel_id;
                    self.with_tunnel(id, now, |t, ctx| t.handle_datagram(ctx, msg));
                }
                _ => {
                    self.counters.count_invalid("unknown tunnel");
                    self.log
                        .note("control message for an unknown tunnel", &peer, now);
                }
            }
            return;
        }
        self.handle_new(peer, header.version, msg, now);
    }

    /// The earliest deadline of all tunnels (call [`Registry::handle_timeout`] then).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((d, id))) = self.heap.peek().copied() {
            match self.tunnels.get(&id) {
                Some(t) if t.scheduled == Some(d) => return Some(d),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        // Collect first: a tunnel whose next deadline is already due (a delayed ZLB waits for
        // poll_transmit) must not be run again in the same call.
        let mut due = Vec::new();
        while let Some(Reverse((d, id))) = self.heap.peek().copied() {
            if d > now {
                break;
            }
            self.heap.pop();
            if let Some(t) = self.tunnels.get_mut(&id) {
                if t.scheduled == Some(d) {
                    t.scheduled = None;
                    due.push(id);
                }
            }
        }
        let timeout = self.half_open_timeout();
        for id in due {
            match self.admission.half_open_deadline(id, timeout) {
                Some(h) if h <= now => {
                    // Silently: an unverified peer gets nothing more from us.
                    self.counters.count_admission("half-open tunnel timed out");
                    self.remove(id);
                    continue;
                }
                Some(_)
                    if self.admission.is_unverified(id)
                        && self
                            .tunnels
                            .get(&id)
                            .is_some_and(|t| t.channel().stats().retransmitted > 0) =>
                {
                    self.reschedule(id);
                    continue;
                }
                _ => {}
            }
            self.with_tunnel(id, now, |t, ctx| t.handle_timeout(ctx));
        }
    }

    /// The next datagram to send and where to. Uses the time of the latest input.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
        if let Some(d) = self.stateless.pop_front() {
            return Some(d);
        }
        let now = self.now?;
        while let Some(&id) = self.dirty.front() {
            let out = match self.tunnels.get_mut(&id) {
                Some(t) => t
                    .poll_transmit(now, &mut self.counters)
                    .map(|d| (t.peer(), d)),
                None => None,
            };
            if out.is_some() {
                return out;
            }
            self.dirty.pop_front();
            self.dirty_set.remove(&id);
            if self.tunnels.get(&id).is_some_and(Tunnel::sequence_dirty) {
                self.seq_dirty.insert(id);
            }
            self.reschedule(id);
        }
        None
    }
}

/// The sizes of a registry's tables: a memory proxy that the state-machine fuzzer
/// (`controlplane/fuzz`) bounds after every step ([`Registry::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryFootprint {
    /// Tunnels in any state, closing ones included.
    pub tunnels: usize,
    /// Tunnels neither closing nor finished, half-open ones included, RFC 4951 recovery
    /// tunnels not included (`max_tunnels` limits those that are not half-open).
    pub live_tunnels: usize,
    /// RFC 4951 recovery tunnels neither closing nor finished (one per restored tunnel).
    pub recovery_tunnels: usize,
    /// Of `live_tunnels`, the half-open ones (SCCRQ answered, no SCCCN yet): limited by
    /// `max_half_open`, apart from the established ones that `max_tunnels` limits.
    pub half_open: usize,
    /// The largest number of sessions in one tunnel.
    pub max_sessions_in_tunnel: usize,
    /// Sessions in all tunnels.
    pub sessions: usize,
    /// Responder tunnels by (peer, peer's tunnel ID).
    pub by_peer: usize,
    /// Timer heap entries (stale ones included until popped).
    pub timers: usize,
    /// Tunnels waiting to transmit.
    pub dirty: usize,
    /// Events and failover events not polled yet.
    pub events: usize,
    /// Control messages sent and not acknowledged, all tunnels.
    pub in_flight: usize,
    /// Control messages waiting for the peer's window, all tunnels.
    pub queued: usize,
}
