//! Many control connections: demultiplexing, ID allocation, timers, commands, events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use l2xdp_wire::l2tp::avp::{Avp, AvpType};
use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{split_ip, ControlHeader, IpPayload, Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

use super::admission::{Admission, Class, LogLimiter, RateLimiter};
use super::config::L2tpConfig;
use super::failover::{self, FailoverEvent, RecoveryState, STATE_FORMAT};
use super::ids::IdAllocator;
use super::tunnel::{Ctx, RecoveryAction, Role, Tunnel, TunnelState};
use super::{
    CallParams, Counters, Event, L2tpError, Peer, PppDisconnectCause, ResultCode, TunnelId,
};
use crate::random::Random;

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

    /// How long a half-open tunnel is kept: `half_open_timeout_ms`, and never less than one
    /// retransmission cycle (RFC 2661 §5.8), so that a lossy peer's retransmitted SCCCN still
    /// finds it. Under a flood the table's size, not this, bounds the state.
    fn half_open_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.cfg.limits.half_open_timeout_ms)
            .max(self.cfg.retransmission_cycle())
    }

    /// Updates the admission table's view of tunnel `id`.
    fn track(&mut self, id: TunnelId) {
        let Some(t) = self.tunnels.get(&id) else {
            self.admission.forget(id);
            return;
        };
        let closed = matches!(t.state(), TunnelState::Closing | TunnelState::Finished);
        let half_open =
            !t.is_initiator() && matches!(t.state(), TunnelState::Idle | TunnelState::WaitCtlConn);
        let class = Class {
            open: !closed && !half_open,
            half_open,
            unverified: half_open
                && t.state() == TunnelState::WaitCtlConn
                && !t.channel().is_quiescent(),
            waiting_reply: t.is_initiator() && t.state() == TunnelState::WaitCtlReply,
            peer: t.peer(),
        };
        // Half-open tunnels are admitted apart from `max_tunnels` (a flood of them must not
        // lock real LACs out), so the limit is applied again when one becomes established.
        if class.open
            && self.admission.is_half_open(id)
            && self.admission.open() >= self.cfg.limits.max_tunnels
        {
            self.over_limit.push_back(id);
        }
        let now = self.now.unwrap_or_else(Instant::now);
        self.admission.update(id, class, now);
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

    /// A message to tunnel ID 0: an SCCRQ creates a responder tunnel.
    fn handle_new(&mut self, peer: Peer, version: Version, msg: &[u8], now: Instant) {
        let secret = self.cfg.secret_bytes().map(<[u8]>::to_vec);
        let Ok(parsed) = ControlMessage::parse(
            msg,
            &ParseContext {
                secret: secret.as_deref(),
            },
        ) else {
            self.counters.count_invalid("malformed message to tunnel 0");
            self.log
                .note("malformed control message to tunnel 0", &peer, now);
            return;
        };
        if parsed.message_type() != Some(MessageType::Sccrq) {
            self.counters.count_invalid("non-SCCRQ to tunnel 0");
            return;
        }
        if version == Version::V2 && peer.transport != Transport::Udp {
            self.counters.count_invalid("L2TPv2 over IP");
            return;
        }
        let peer_tid = parsed.assigned_tunnel_id().unwrap_or(0);
        // A retransmitted SCCRQ goes to the tunnel it created.
        if let Some(&id) = self.by_peer.get(&(peer, peer_tid)) {
            if peer_tid != 0 {
                // While the peer has acknowledged nothing our SCCRP is not retransmitted on
                // a timer; its retransmitted SCCRQ gets it again instead, one for one.
                // At most as often as our own retries (RFC 2661 §5.8): one for one, never more
                // datagrams than the peer sent.
                let max = u8::try_from(self.cfg.retransmit.max_retries).unwrap_or(u8::MAX);
                let again = self.admission.may_answer_again(id, max);
                self.with_tunnel(id, now, |t, ctx| {
                    t.handle_datagram(ctx, msg);
                    if again {
                        t.retransmit_now();
                    }
                });
                return;
            }
        }
        // Per-source rate of new tunnels: beyond it the SCCRQ is dropped unanswered, so a
        // flood from one address costs it nothing and us no datagram.
        let l = self.cfg.limits;
        if !self.rate.allow(
            peer.addr.ip(),
            l.sccrq_per_source_per_sec,
            l.sccrq_per_source_burst,
            l.rate_limit_sources,
            now,
        ) {
            self.counters
                .count_admission("SCCRQ dropped (source over its rate)");
            self.log
                .note("SCCRQ dropped: source over its rate", &peer, now);
            return;
        }
        if let Some((theirs_old, ours_old)) = parsed.tunnel_recovery() {
            return self
                .handle_recovery_sccrq(peer, version, msg, &parsed, theirs_old, ours_old, now);
        }
        let mut reject: Option<ResultCode> = None;
        // Tie breaker (RFC 2661 §4.4.3, RFC 3931 §5.4.3): an SCCRQ from a peer we have an
        // outstanding SCCRQ to. RFC 4951 §3.2.1: only among non-recovery tunnels.
        let theirs = match parsed.get(AvpType::TieBreaker) {
            Some(Avp::TieBreaker(v)) => Some(*v),
            _ => None,
        };
        if let Some(theirs) = theirs.filter(|_| self.admission.waiting_reply() > 0) {
            let ours = self
                .tunnels
                .values()
                .filter(|t| {
                    t.is_initiator()
                        && t.role() == Role::Normal
                        && t.state() == TunnelState::WaitCtlReply
                        && t.version() == version
                        && t.peer().addr.ip() == peer.addr.ip()
                        && t.peer().transport == peer.transport
                })
                .map(|t| (t.id(), t.tie_breaker()))
                .next();
            if let Some((our_id, our_tb)) = ours {
                let we_win = match our_tb {
                    None => false,
                    Some(o) => o < theirs,
                };
                let equal = our_tb == Some(theirs);
                if !we_win {
                    tracing::info!(tunnel = our_id, "lost the tie breaker");
                    self.with_tunnel(our_id, now, |t, ctx| t.discard(ctx));
                }
                if we_win || equal {
                    // RFC 3931 §5.4.3: the winner SHOULD reject the losing SCCRQ with a StopCCN.
                    reject = Some(ResultCode::new(
                        StopCcnResult::ALREADY_EXISTS.0,
                        ErrorCode::NO_ERROR.0,
                        "control connection already exists (tie breaker)",
                    ));
                }
            }
        }
        if reject.is_none() {
            reject = self.admit(peer, now);
        }
        let Some(id) = self.new_tunnel(peer, version, false) else {
            self.counters.count_invalid("no tunnel ID free");
            self.log
                .note("SCCRQ dropped: no tunnel ID free", &peer, now);
            return;
        };
        if peer_tid != 0 {
            self.by_peer.insert((peer, peer_tid), id);
        }
        self.with_tunnel(id, now, |t, ctx| {
            if let Some(rc) = reject {
                t.set_reject(rc);
            }
            t.handle_datagram(ctx, msg)
        });
        self.settle_new(id, peer, peer_tid, now);
    }

    /// The limits an SCCRQ from `peer` must pass (counters, no scan): `Some` refuses it with
    /// that result. When the half-open table is full the oldest tunnel whose peer has
    /// acknowledged nothing makes room.
    fn admit(&mut self, peer: Peer, now: Instant) -> Option<ResultCode> {
        let l = self.cfg.limits;
        let refuse = |why: &str| {
            Some(ResultCode::new(
                StopCcnResult::GENERAL_ERROR.0,
                ErrorCode::NO_RESOURCES.0,
                why,
            ))
        };
        if self.admission.open() >= l.max_tunnels {
            self.counters
                .count_admission("SCCRQ refused (tunnel limit)");
            self.log
                .note("SCCRQ refused: tunnel limit reached", &peer, now);
            return refuse("tunnel limit reached");
        }
        if self.admission.half_open_from(peer.addr.ip()) >= l.max_half_open_per_source {
            self.counters
                .count_admission("SCCRQ refused (half-open limit per source)");
            self.log
                .note("SCCRQ refused: half-open limit per source", &peer, now);
            return refuse("too many half-open tunnels from this address");
        }
        while self.admission.half_open() >= l.max_half_open.max(1) {
            let Some(old) = self.admission.oldest_unverified() else {
                self.counters
                    .count_admission("SCCRQ refused (half-open limit)");
                self.log.note("SCCRQ refused: half-open limit", &peer, now);
                return refuse("half-open tunnel limit reached");
            };
            self.counters.count_admission("half-open tunnel evicted");
            self.log
                .note("half-open tunnels evicted (table full)", &peer, now);
            self.remove(old);
        }
        None
    }

    /// After a new responder tunnel handled its SCCRQ: a half-open one is kept; one that
    /// refused it (StopCCN) or ignored it (RFC 3931 §5.4.1: a Message Digest that does not
    /// verify) is dropped at once with at most its one answer sent — a refused SCCRQ keeps
    /// no state and draws no retransmissions (RFC 2661 §5.7 lingering is for peers that
    /// have shown they exist; a retransmitted SCCRQ is refused again, statelessly).
    fn settle_new(&mut self, id: TunnelId, peer: Peer, peer_tid: u32, now: Instant) {
        let Some(t) = self.tunnels.get_mut(&id) else {
            return;
        };
        if t.state() == TunnelState::WaitCtlConn {
            self.counters.count_admission("half-open tunnel opened");
            return;
        }
        if let Some(d) = t.poll_transmit(now, &mut self.counters) {
            self.stateless.push_back((t.peer(), d));
        }
        // Its peer tunnel ID may not have been learnt, so `remove` may not find this entry;
        // a stale one would swallow the SCCRQ's retransmissions.
        if self.by_peer.get(&(peer, peer_tid)) == Some(&id) {
            self.by_peer.remove(&(peer, peer_tid));
        }
        self.remove(id);
    }

    /// Remote endpoint (RFC 4951 §3.2.1): an SCCRQ with a Tunnel Recovery AVP naming our old
    /// tunnel `ours_old` and the peer's `theirs_old`. Accepted (SCCRP with a Suggested Control
    /// Sequence) or refused with a StopCCN.
    #[allow(clippy::too_many_arguments)]
    fn handle_recovery_sccrq(
        &mut self,
        peer: Peer,
        version: Version,
        msg: &[u8],
        parsed: &ControlMessage,
        theirs_old: u32,
        ours_old: u32,
        now: Instant,
    ) {
        self.counters.count_failover("recovery SCCRQ received");
        let peer_tid = parsed.assigned_tunnel_id().unwrap_or(0);
        let refuse = |result: StopCcnResult, error: ErrorCode, why: &str| {
            Some(ResultCode::new(result.0, error.0, why))
        };
        let mut reject: Option<ResultCode> = None;
        // Tie breaker, scoped to recovery tunnels of the same old tunnel (§3.2.1, Appendix B).
        let theirs_tb = match parsed.get(AvpType::TieBreaker) {
            Some(Avp::TieBreaker(v)) => Some(*v),
            _ => None,
        };
        let ours = self
            .tunnels
            .values()
            .filter(|_| self.admission.waiting_reply() > 0)
            .find(|t| {
                t.role() == (Role::Recovery { old: ours_old })
                    && t.is_initiator()
                    && t.state() == TunnelState::WaitCtlReply
            })
            .map(|t| (t.id(), t.tie_breaker()));
        if let Some((our_id, our_tb)) = ours {
            let we_win = match (our_tb, theirs_tb) {
                (Some(o), Some(t)) => o < t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let equal = our_tb.is_some() && our_tb == theirs_tb;
            if !we_win {
                self.counters.count_failover("recovery tie breaker lost");
                self.with_tunnel(our_id, now, |t, ctx| t.discard(ctx));
            }
            if we_win || equal {
                self.counters.count_failover("recovery tie breaker won");
                reject = refuse(
                    StopCcnResult::ALREADY_EXISTS,
                    ErrorCode::NO_ERROR,
                    "recovery tunnel already exists (tie breaker)",
                );
                if equal {
                    // Both lost: nobody recovers this old tunnel.
                    self.with_tunnel(ours_old, now, |t, ctx| {
                        if t.is_recovering() {
                            t.clear_silently(ctx, "equal recovery tie breakers".into());
                        }
                    });
                }
            }
        }
        if reject.is_none() {
            reject = self.check_recovery(peer, version, theirs_old, ours_old);
        }
        if reject.is_none() {
            reject = self.admit(peer, now);
        }
        let scs = self.tunnels.get(&ours_old).map(|t| {
            // §5.3: far from the old sequence numbers in both directions (16384 to 32767
            // ahead, beyond any receive window), so old packets read as duplicates.
            let ch = t.channel();
            let a = 0x4000 + (self.rng.u32() & 0x3fff) as u16;
            let b = 0x4000 + (self.rng.u32() & 0x3fff) as u16;
            (ch.nr().wrapping_add(a), ch.next_ns().wrapping_add(b))
        });
        let Some(id) = self.new_tunnel(peer, version, false) else {
            self.counters.count_invalid("no tunnel ID free");
            return;
        };
        if peer_tid != 0 {
            self.by_peer.insert((peer, peer_tid), id);
        }
        if let Some(rc) = &reject {
            self.counters.count_failover("recovery refused");
            self.failover_events
                .push_back(FailoverEvent::RecoveryRefused {
                    peer,
                    tunnel: ours_old,
                    result: rc.clone(),
                });
        }
        self.with_tunnel(id, now, |t, ctx| {
            t.set_recovery_responder(ours_old, scs.unwrap_or((0, 0)));
            if let Some(rc) = reject {
                t.set_reject(rc);
            }
            t.handle_datagram(ctx, msg)
        });
        self.settle_new(id, peer, peer_tid, now);
    }

    /// RFC 4951 §3.2.1 and §8: whether a recovery of our old tunnel `ours_old` may proceed.
    fn check_recovery(
        &self,
        peer: Peer,
        version: Version,
        theirs_old: u32,
        ours_old: u32,
    ) -> Option<ResultCode> {
        let no = |result: StopCcnResult, error: ErrorCode, why: &str| {
            Some(ResultCode::new(result.0, error.0, why))
        };
        let old = match self.tunnels.get(&ours_old) {
            Some(t)
                if t.state() == TunnelState::Established
                    && t.role() == Role::Normal
                    && t.peer_tunnel_id() == theirs_old =>
            {
                t
            }
            _ => {
                return no(
                    StopCcnResult::GENERAL_ERROR,
                    ErrorCode::NO_CONTROL_CONNECTION,
                    "unknown tunnel to recover",
                )
            }
        };
        let allowed = if self.cfg.recovery_peers.is_empty() {
            old.peer().addr.ip() == peer.addr.ip() && old.peer().transport == peer.transport
        } else {
            self.cfg.recovery_peers.contains(&peer.addr.ip())
        };
        if !allowed {
            return no(
                StopCcnResult::NOT_AUTHORIZED,
                ErrorCode::NO_ERROR,
                "recovery not allowed from this address",
            );
        }
        if old.version() != version {
            return no(
                StopCcnResult::GENERAL_ERROR,
                ErrorCode::OUT_OF_RANGE,
                "recovery tunnel of another L2TP version",
            );
        }
        if !old.peer_failover().is_some_and(|f| f.control) || old.our_failover().is_none() {
            return no(
                StopCcnResult::GENERAL_ERROR,
                ErrorCode::NO_ERROR,
                "failover was not negotiated on the old tunnel",
            );
        }
        None
    }

    /// RFC 4951 §3.2: restores the tunnels and sessions of `state` (persisted before a
    /// restart; no traffic yet) and starts a recovery tunnel for each tunnel whose peer was
    /// control-channel failover capable. The others are cleared silently (events). Call on a
    /// fresh registry; records clashing with live IDs are skipped.
    pub fn recover(
        &mut self,
        mut state: RecoveryState,
        now: Instant,
    ) -> Result<RecoveryReport, L2tpError> {
        if state.format != STATE_FORMAT {
            return Err(L2tpError::BadState(format!(
                "format {}, expected {STATE_FORMAT}",
                state.format
            )));
        }
        self.now = Some(now);
        let mut report = RecoveryReport::default();
        let secret_ref = self.cfg.secret_bytes().map(failover::secret_ref);
        let seqs: HashMap<u32, &failover::SequenceRecord> =
            state.sequences.iter().map(|q| (q.tunnel, q)).collect();
        // Each tunnel's sessions as one run (a store lists them so already): linear, not
        // tunnels × sessions.
        state.sessions.sort_by_key(|s| s.tunnel);
        let mut recover = Vec::new();
        for rec in &state.tunnels {
            let Some(version) = rec.l2tp_version() else {
                self.counters.count_failover("record skipped (bad version)");
                continue;
            };
            if self.tunnels.contains_key(&rec.id) || !self.tunnel_ids.reserve(rec.id) {
                self.counters.count_failover("record skipped (ID in use)");
                continue;
            }
            // Transparent resume when the sequence state is there and consistent
            // (`tunnel/resume.rs`); RFC 4951 recovery or a farewell StopCCN otherwise.
            let resumed = seqs.get(&rec.id).filter(|_| self.cfg.resume).and_then(|q| {
                Tunnel::resume(rec, q, version, self.cfg.clone(), &mut self.rng, now)
                    .map_err(|e| {
                        self.counters.count_failover("sequence record unusable");
                        tracing::warn!(tunnel = rec.id, %e, "cannot resume");
                    })
                    .ok()
            });
            let resuming = resumed.is_some();
            let t = match resumed {
                Some(t) => t,
                None => Tunnel::restore(rec, version, self.cfg.clone(), &mut self.rng),
            };
            self.tunnels.insert(rec.id, t);
            self.track(rec.id);
            self.counters.count_failover("tunnel restored");
            let first = state.sessions.partition_point(|s| s.tunnel < rec.id);
            let end = first + state.sessions[first..].partition_point(|s| s.tunnel == rec.id);
            for s in &mut state.sessions[first..end] {
                if version == Version::V3 && !self.v3_sessions.reserve(s.id) {
                    self.counters.count_failover("record skipped (ID in use)");
                    continue;
                }
                let Some(t) = self.tunnels.get_mut(&rec.id) else {
                    continue;
                };
                let up = t.restore_session(s);
                self.counters.count_failover("session restored");
                report.sessions += 1;
                self.failover_events
                    .push_back(FailoverEvent::SessionRestored {
                        up: Box::new(up),
                        app: std::mem::take(&mut s.app),
                    });
            }
            if resuming {
                self.with_tunnel(rec.id, now, |t, ctx| t.start_resume(ctx));
                report.resuming.push(rec.id);
                continue;
            }
            let capable = rec.peer_failover.is_some_and(|f| f.control) && self.cfg.persists();
            let why = if !capable {
                Some("the peer or we cannot recover the control channel")
            } else if rec.secret_ref != secret_ref {
                // §3.2.1: the recovery tunnel MUST use the old tunnel's secret.
                Some("the configured secret is not the old tunnel's")
            } else {
                None
            };
            if let Some(why) = why {
                // Never leave the peer half-open: a StopCCN (RFC 2661 §5.7) when one can
                // be sent (an L2TPv3 tunnel with a Message Digest cannot be signed without
                // the nonces of its sequence record).
                let farewell = self.tunnels.get(&rec.id).is_some_and(|t| !t.has_digest());
                let (ns, nr) = (rec.ns, rec.nr);
                self.with_tunnel(rec.id, now, |t, ctx| {
                    if farewell {
                        t.start_farewell(ctx, ns, nr);
                    } else {
                        t.clear_silently(ctx, why.into());
                    }
                });
                report.cleared.push(rec.id);
                continue;
            }
            recover.push((rec.id, rec.peer_tunnel_id));
        }
        // Recovery tunnels once every record's ID is taken: a recovery tunnel's random ID
        // must not be one a later record needs (that tunnel was skipped, "ID in use").
        for (old, old_peer) in recover {
            if self.start_recovery_of(old, old_peer, now) {
                report.recovering.push(old);
            } else {
                report.cleared.push(old);
            }
        }
        Ok(report)
    }

    /// Opens the recovery tunnel of the restored tunnel `old` (RFC 4951 §3.2.1); when no
    /// tunnel ID is free `old` is cleared silently. Whether it was opened.
    fn start_recovery_of(&mut self, old: TunnelId, old_peer: u32, now: Instant) -> bool {
        let Some((peer, version)) = self.tunnels.get(&old).map(|t| (t.peer(), t.version())) else {
            return false;
        };
        let Some(rid) = self.new_tunnel(peer, version, true) else {
            self.with_tunnel(old, now, |t, ctx| {
                t.clear_silently(ctx, "no tunnel ID free".into())
            });
            return false;
        };
        self.with_tunnel(rid, now, |t, ctx| t.start_recovery(ctx, old, old_peer));
        self.failover_events
            .push_back(FailoverEvent::RecoveryStarted {
                tunnel: old,
                recovery_tunnel: rid,
            });
        true
    }

    /// Tells the peer of a control connection this node has no state for (its fast-path
    /// entries outlived the failover store) that it is gone: a StopCCN (RFC 2661 §5.7) to
    /// `peer_tunnel` at `peer`, in the peer's sequence, found with the farewell probes
    /// (`tunnel/resume.rs`). `our_id`: the tunnel ID the peer knows us by. Ignored when that
    /// ID is in use here or the version cannot carry it; whether it was started.
    pub fn farewell(
        &mut self,
        peer: Peer,
        version: Version,
        our_id: TunnelId,
        peer_tunnel: u32,
        now: Instant,
    ) -> bool {
        self.now = Some(now);
        if our_id == 0
            || peer_tunnel == 0
            || self.tunnels.contains_key(&our_id)
            || !self.tunnel_ids.reserve(our_id)
            || (version == Version::V2
                && (peer.transport != Transport::Udp || peer_tunnel > u32::from(u16::MAX)))
        {
            return false;
        }
        let mut t = Tunnel::new(
            our_id,
            version,
            peer,
            false,
            self.cfg.clone(),
            &mut self.rng,
        );
        if t.has_digest() {
            // Cannot be signed without the nonces of the lost control connection.
            self.tunnel_ids.free(our_id);
            return false;
        }
        t.adopt(peer_tunnel);
        self.tunnels.insert(our_id, t);
        self.track(our_id);
        let base = self.rng.u32() as u16;
        self.with_tunnel(our_id, now, |t, ctx| t.start_farewell(ctx, base, 0));
        true
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

/// What [`Registry::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Tunnels resumed from their sequence state (transparent resume, `tunnel/resume.rs`),
    /// waiting for the peer's confirmation.
    pub resuming: Vec<TunnelId>,
    /// Old tunnels whose recovery tunnel was started.
    pub recovering: Vec<TunnelId>,
    /// Old tunnels cleared at once (peer not failover capable, secret changed, no ID free):
    /// closed with a StopCCN (farewell) when one can be sent, else silently.
    pub cleared: Vec<TunnelId>,
    /// Sessions restored (including those of cleared tunnels, reported down at once).
    pub sessions: usize,
}
