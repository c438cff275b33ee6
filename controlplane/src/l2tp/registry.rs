//! Many control connections: demultiplexing, ID allocation, timers, commands, events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use l2xdp_wire::l2tp::avp::{Avp, AvpType};
use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::header::{split_ip, ControlHeader, IpPayload, Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

use super::config::L2tpConfig;
use super::ids::{IdAllocator, OsRandom, RandomSource};
use super::tunnel::{Ctx, Tunnel, TunnelState};
use super::{
    CallParams, Counters, Event, L2tpError, Peer, PppDisconnectCause, ResultCode, TunnelId,
};

/// All control connections of this node.
pub struct Registry {
    cfg: Arc<L2tpConfig>,
    tunnels: HashMap<TunnelId, Tunnel>,
    /// (peer, peer's tunnel ID) of responder tunnels: a retransmitted SCCRQ finds its tunnel.
    by_peer: HashMap<(Peer, u32), TunnelId>,
    tunnel_ids: IdAllocator,
    v3_sessions: IdAllocator,
    rng: Box<dyn RandomSource>,
    heap: BinaryHeap<Reverse<(Instant, TunnelId)>>,
    dirty: VecDeque<TunnelId>,
    dirty_set: HashSet<TunnelId>,
    events: VecDeque<Event>,
    counters: Counters,
    retired_retransmissions: u64,
    now: Option<Instant>,
}

impl Registry {
    /// A registry with the operating system's CSPRNG.
    pub fn new(cfg: L2tpConfig) -> Self {
        Self::with_random(cfg, Box::new(OsRandom))
    }

    /// A registry with an injected random source (tests: [`super::ids::SeededRandom`]).
    pub fn with_random(cfg: L2tpConfig, rng: Box<dyn RandomSource>) -> Self {
        Registry {
            cfg: Arc::new(cfg),
            tunnels: HashMap::new(),
            by_peer: HashMap::new(),
            tunnel_ids: IdAllocator::new(u32::MAX),
            v3_sessions: IdAllocator::new(u32::MAX),
            rng,
            heap: BinaryHeap::new(),
            dirty: VecDeque::new(),
            dirty_set: HashSet::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            retired_retransmissions: 0,
            now: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &L2tpConfig {
        &self.cfg
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

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn with_tunnel<R>(
        &mut self,
        id: TunnelId,
        now: Instant,
        f: impl FnOnce(&mut Tunnel, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        self.now = Some(now);
        let t = self.tunnels.get_mut(&id)?;
        let mut events = Vec::new();
        let r = {
            let mut ctx = Ctx {
                now,
                rng: self.rng.as_mut(),
                v3_sessions: &mut self.v3_sessions,
                events: &mut events,
                counters: &mut self.counters,
            };
            f(t, &mut ctx)
        };
        self.events.extend(events);
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
        let finished = match self.tunnels.get_mut(&id) {
            Some(t) if t.is_finished() => true,
            Some(t) => {
                if let Some(d) = t.poll_timeout() {
                    if t.scheduled.is_none_or(|s| d < s) {
                        t.scheduled = Some(d);
                        self.heap.push(Reverse((d, id)));
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

    fn remove(&mut self, id: TunnelId) {
        let Some(mut t) = self.tunnels.remove(&id) else {
            return;
        };
        let mut events = Vec::new();
        {
            let mut ctx = Ctx {
                now: self.now.unwrap_or_else(Instant::now),
                rng: self.rng.as_mut(),
                v3_sessions: &mut self.v3_sessions,
                events: &mut events,
                counters: &mut self.counters,
            };
            t.release(&mut ctx);
        }
        self.events.extend(events);
        self.retired_retransmissions += t.channel().stats().retransmitted;
        self.by_peer.remove(&(t.peer(), t.peer_tunnel_id()));
        self.tunnel_ids.free(id);
        tracing::debug!(tunnel = id, "tunnel removed");
    }

    fn new_tunnel(&mut self, peer: Peer, version: Version, initiator: bool) -> Option<TunnelId> {
        let limit = match version {
            Version::V2 => u32::from(u16::MAX),
            Version::V3 => u32::MAX,
        };
        let id = self.tunnel_ids.alloc_below(limit, self.rng.as_mut())?;
        let t = Tunnel::new(
            id,
            version,
            peer,
            initiator,
            self.cfg.clone(),
            self.rng.as_mut(),
        );
        self.tunnels.insert(id, t);
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
        if self.tunnels.len() >= self.cfg.limits.max_tunnels {
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
                return;
            }
        };
        if header.tunnel_id != 0 {
            match self.tunnels.get(&header.tunnel_id) {
                Some(t) if t.version() == header.version => {
                    let id = header.tunnel_id;
                    self.with_tunnel(id, now, |t, ctx| t.handle_datagram(ctx, msg));
                }
                _ => self.counters.count_invalid("unknown tunnel"),
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
                self.with_tunnel(id, now, |t, ctx| t.handle_datagram(ctx, msg));
                return;
            }
        }
        let mut reject: Option<ResultCode> = None;
        // Tie breaker (RFC 2661 §4.4.3, RFC 3931 §5.4.3): an SCCRQ from a peer we have an
        // outstanding SCCRQ to.
        let theirs = match parsed.get(AvpType::TieBreaker) {
            Some(Avp::TieBreaker(v)) => Some(*v),
            _ => None,
        };
        if let Some(theirs) = theirs {
            let ours = self
                .tunnels
                .values()
                .filter(|t| {
                    t.is_initiator()
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
        let open = self
            .tunnels
            .values()
            .filter(|t| !matches!(t.state(), TunnelState::Closing | TunnelState::Finished))
            .count();
        if reject.is_none() && open >= self.cfg.limits.max_tunnels {
            reject = Some(ResultCode::new(
                StopCcnResult::GENERAL_ERROR.0,
                ErrorCode::NO_RESOURCES.0,
                "tunnel limit reached",
            ));
        }
        let Some(id) = self.new_tunnel(peer, version, false) else {
            self.counters.count_invalid("no tunnel ID free");
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
        // An SCCRQ the new tunnel dropped without a word (RFC 3931 §5.4.1: a Message Digest
        // that does not verify; anything else it ignored) leaves it idle with nothing to send:
        // keep no state for it, or every such datagram would leak a tunnel.
        if self
            .tunnels
            .get(&id)
            .is_some_and(|t| t.state() == TunnelState::Idle && t.channel().is_quiescent())
        {
            // Its peer tunnel ID was never learnt, so `remove` cannot find this entry; a stale
            // one would swallow the SCCRQ's retransmissions.
            if self.by_peer.get(&(peer, peer_tid)) == Some(&id) {
                self.by_peer.remove(&(peer, peer_tid));
            }
            self.remove(id);
        }
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
        for id in due {
            self.with_tunnel(id, now, |t, ctx| t.handle_timeout(ctx));
        }
    }

    /// The next datagram to send and where to. Uses the time of the latest input.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
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
            self.reschedule(id);
        }
        None
    }
}
