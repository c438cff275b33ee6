//! One control connection (RFC 2661 §7.2, RFC 3931 §7.3) and its sessions.
//!
//! Tunnel states: idle → wait-ctl-reply (initiator, SCCRQ sent) or wait-ctl-conn (responder,
//! SCCRP sent) → established; then closing (StopCCN sent or received: the state is kept for one
//! full retransmission cycle to acknowledge it, RFC 2661 §5.7) → finished.
//!
//! [`Tunnel`] is one type whose `impl` is spread over four files:
//! - this file: the struct, its states and the control connection state machine — SCCRQ,
//!   SCCRP, SCCCN and their authentication (RFC 2661 §5.1.1, RFC 3931 §4.3), HELLO and the
//!   other timers (RFC 2661 §6.5), StopCCN (RFC 2661 §5.7).
//! - `dispatch.rs`: control messages in and out — a datagram's header and v3 Message Digest are
//!   checked, the reliable channel orders it, `l2xdp_wire::l2tp::validate` parses and validates
//!   it, and it is dispatched by Message Type; outgoing messages get their Message Type,
//!   Message Digest and Random Vector.
//! - `session.rs`: the sessions (RFC 2661 §7.4, RFC 3931 §7.4) — the session table,
//!   ICRQ/ICRP/ICCN, OCRQ/OCRP/OCCN, CDN, WEN/SLI, and what the fast path and PPP get
//!   ([`SessionUp`](super::SessionUp)).
//! - `recovery.rs`: RFC 4951 failover — persisting tunnels and sessions, restoring them from
//!   the failover state, recovery tunnels, the control channel reset and the FSQ/FSR round.

mod dispatch;
mod recovery;
mod resume;
mod session;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use l2xdp_wire::l2tp::avp::{bearer, framing, Avp, AvpRepr, AvpType};
use l2xdp_wire::l2tp::codes::{ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::digest;
use l2xdp_wire::l2tp::header::Version;
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};

use super::auth::{self, CHALLENGE_LEN};
use super::config::L2tpConfig;
use super::failover::{FailoverEvent, ResetRole};
use super::ids::IdAllocator;
use super::{Counters, Event, FailoverCapability, Peer, ResultCode, TunnelDownReason, TunnelId};
use crate::random::Random;
use crate::reliable::{self, Channel};

pub use self::recovery::FSS_PER_MESSAGE;
pub use self::resume::{FAREWELL_INTERVAL, FAREWELL_PROBES};
use self::session::Session;
pub use self::session::SessionState;

/// Tunnel state (RFC 2661 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TunnelState {
    /// Created, nothing exchanged.
    Idle,
    /// Initiator: SCCRQ sent.
    WaitCtlReply,
    /// Responder: SCCRP sent.
    WaitCtlConn,
    /// Up.
    Established,
    /// StopCCN sent or received; kept to acknowledge retransmissions.
    Closing,
    /// Gone: the registry removes it.
    Finished,
}

/// What a tunnel method needs from the registry.
pub struct Ctx<'a> {
    /// The current time.
    pub now: Instant,
    /// Randomness.
    pub rng: &'a mut Random,
    /// The L2TPv3 session ID space (session IDs are per node in v3).
    pub v3_sessions: &'a mut IdAllocator,
    /// The fast path's preference among session ids (`None`: any).
    pub id_hint: Option<&'a dyn l2xdp_dataplane_api::IdHint>,
    /// Events out.
    pub events: &'a mut Vec<Event>,
    /// Counters.
    pub counters: &'a mut Counters,
    /// RFC 4951 events out.
    pub failover: &'a mut Vec<FailoverEvent>,
    /// Work for the registry on other tunnels (RFC 4951 recovery).
    pub(crate) actions: &'a mut Vec<RecoveryAction>,
}

/// What a recovery tunnel asks the registry to do to its old tunnel.
#[derive(Debug, Clone)]
pub(crate) enum RecoveryAction {
    /// RFC 4951 §3.2.2: reset the old tunnel's control channel.
    Reset {
        old: TunnelId,
        ns: u16,
        nr: u16,
        role: ResetRole,
        /// v3: the nonces exchanged in the recovery tunnel (ours, the peer's), §3.2.1.
        nonces: Option<(Vec<u8>, Vec<u8>)>,
        peer: Peer,
    },
    /// RFC 4951 §3.2.1: the recovery tunnel could not be established.
    Failed { old: TunnelId, reason: String },
    /// A resumed tunnel's peer contradicted the stored sequence state: recover it with a
    /// recovery tunnel (RFC 4951 §3.2.1).
    Recover { old: TunnelId, old_peer: u32 },
}

/// What a control connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// An ordinary control connection.
    Normal,
    /// A recovery tunnel (RFC 4951 §3.2.1) for the old tunnel `old` (our ID).
    Recovery {
        /// The old tunnel.
        old: TunnelId,
    },
}

/// One control connection.
pub struct Tunnel {
    id: TunnelId,
    version: Version,
    peer: Peer,
    initiator: bool,
    state: TunnelState,
    channel: Channel,
    cfg: Arc<L2tpConfig>,
    peer_tunnel_id: u32,
    peer_host_name: Vec<u8>,
    peer_router_id: Option<u32>,
    tie_breaker: Option<[u8; 8]>,
    peer_failover: Option<FailoverCapability>,
    challenge: Option<[u8; CHALLENGE_LEN]>,
    digest_key: Option<[u8; 16]>,
    local_nonce: Vec<u8>,
    remote_nonce: Option<Vec<u8>>,
    sessions: HashMap<u32, Session>,
    v2_sessions: IdAllocator,
    call_serial: u32,
    last_hello: Option<Instant>,
    established_at: Option<Instant>,
    linger_until: Option<Instant>,
    reject: Option<ResultCode>,
    role: Role,
    /// RFC 4951 §3.2.1: restored old tunnel awaiting its control channel reset; every control
    /// message received is discarded.
    recovering: bool,
    /// Written to the state store (must be forgotten when it goes).
    persisted: bool,
    /// Recovery tunnel (responder): the Suggested Control Sequence we sent (Ns, Nr for the
    /// recovery endpoint); (initiator): the one received.
    scs: Option<(u16, u16)>,
    /// Recovery tunnel: the old tunnel was reset (it is no failure when this one closes).
    recovery_done: bool,
    /// FSS pairs (ours, theirs) to query in the next FSQ.
    fsq_queue: Vec<(u32, u32)>,
    /// Sessions queried and not yet answered.
    fsq_outstanding: HashSet<u32>,
    /// A recovery's FSQ round is in progress ([`FailoverEvent::Recovered`] when it ends).
    sync_pending: bool,
    /// The channel generation whose sequence state was last persisted.
    seq_gen: Option<u64>,
    /// Resumed after a restart, not yet confirmed by the peer (`resume.rs`).
    resuming: bool,
    /// Closing with a StopCCN whose sequence numbers are being found (`resume.rs`).
    farewell: Option<resume::Farewell>,
    /// Registry bookkeeping: the deadline pushed on its heap.
    pub(crate) scheduled: Option<Instant>,
}

fn bytes_of(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// The Result Code of a StopCCN or CDN (RFC 2661 §4.4.2); all zero when it has none.
fn result_of(msg: &ControlMessage) -> ResultCode {
    msg.result_code()
        .map(|(result, error, m)| ResultCode {
            result,
            error,
            message: bytes_of(m),
        })
        .unwrap_or(ResultCode {
            result: 0,
            error: None,
            message: String::new(),
        })
}

impl Tunnel {
    /// A tunnel with our ID `id`. `initiator`: we send the SCCRQ ([`Tunnel::start`]).
    pub fn new(
        id: TunnelId,
        version: Version,
        peer: Peer,
        initiator: bool,
        cfg: Arc<L2tpConfig>,
        rng: &mut Random,
    ) -> Self {
        let secret = cfg.secret_bytes().map(<[u8]>::to_vec);
        let v3_auth = version == Version::V3 && secret.is_some();
        Tunnel {
            id,
            version,
            peer,
            initiator,
            state: TunnelState::Idle,
            channel: Channel::new(version, cfg.reliable()),
            peer_tunnel_id: 0,
            peer_host_name: Vec::new(),
            peer_router_id: None,
            tie_breaker: initiator.then(|| rng.array()),
            peer_failover: None,
            challenge: (version == Version::V2 && secret.is_some()).then(|| rng.array()),
            digest_key: secret
                .as_deref()
                .filter(|_| v3_auth)
                .map(digest::shared_key),
            local_nonce: if v3_auth {
                rng.array::<CHALLENGE_LEN>().to_vec()
            } else {
                Vec::new()
            },
            remote_nonce: None,
            sessions: HashMap::new(),
            v2_sessions: IdAllocator::new(u32::from(u16::MAX)),
            call_serial: 0,
            last_hello: None,
            established_at: None,
            linger_until: None,
            reject: None,
            role: Role::Normal,
            recovering: false,
            persisted: false,
            scs: None,
            recovery_done: false,
            fsq_queue: Vec::new(),
            fsq_outstanding: HashSet::new(),
            sync_pending: false,
            seq_gen: None,
            resuming: false,
            farewell: None,
            scheduled: None,
            cfg,
        }
    }

    /// Responder: answer the coming SCCRQ with a StopCCN (tie breaker lost by the peer,
    /// limits).
    pub fn set_reject(&mut self, rc: ResultCode) {
        self.reject = Some(rc);
    }

    /// Our tunnel ID.
    pub fn id(&self) -> TunnelId {
        self.id
    }
    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The peer.
    pub fn peer(&self) -> Peer {
        self.peer
    }
    /// The state.
    pub fn state(&self) -> TunnelState {
        self.state
    }
    /// Whether we sent the SCCRQ.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }
    /// The peer's tunnel ID (0 until known).
    pub fn peer_tunnel_id(&self) -> u32 {
        self.peer_tunnel_id
    }
    /// The peer's Host Name.
    pub fn peer_host_name(&self) -> &[u8] {
        &self.peer_host_name
    }
    /// The peer's Router ID (v3).
    pub fn peer_router_id(&self) -> Option<u32> {
        self.peer_router_id
    }
    /// Our Tie Breaker value, when we initiated.
    pub fn tie_breaker(&self) -> Option<[u8; 8]> {
        self.tie_breaker
    }
    /// The peer's Failover Capability (RFC 4951 §5.1).
    pub fn peer_failover(&self) -> Option<FailoverCapability> {
        self.peer_failover
    }
    /// Our Failover Capability as sent (never C = D = 0).
    pub fn our_failover(&self) -> Option<FailoverCapability> {
        self.cfg
            .failover
            .filter(|f| f.control || f.data)
            .map(|f| FailoverCapability {
                control: f.control,
                data: f.data,
                recovery_time_ms: f.recovery_time_ms,
            })
    }
    /// The reliable channel (statistics, Ns/Nr for failover).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
    /// Sends again what is unacknowledged, at the next poll (see
    /// [`Channel::retransmit_now`]).
    pub(crate) fn retransmit_now(&mut self) -> usize {
        self.channel.retransmit_now()
    }
    /// Whether the registry may drop it.
    pub fn is_finished(&self) -> bool {
        self.state == TunnelState::Finished
    }
    /// Ordinary or recovery tunnel (RFC 4951 §3.2.1).
    pub fn role(&self) -> Role {
        self.role
    }
    /// A restored old tunnel waiting for its control channel reset (RFC 4951 §3.2.2).
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// The earliest time [`Tunnel::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == TunnelState::Finished {
            return None;
        }
        let mut t = self.channel.poll_timeout();
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        add(self.linger_until);
        add(self.farewell_due());
        if self.state == TunnelState::Established && self.farewell.is_none() {
            add(self.hello_due());
        }
        add(self.setup_deadline());
        t
    }

    /// A tunnel in set-up whose messages are all acknowledged while the peer's next one never
    /// comes (no SCCRP after our acknowledged SCCRQ, no SCCCN after our acknowledged SCCRP)
    /// gives up one retransmission cycle (RFC 2661 §5.8) after the peer was last heard from,
    /// as if its channel had failed: nothing else would ever end it (HELLO runs only once it
    /// is established), and it counts against `max_tunnels`. Found by the state-machine
    /// fuzzer (`controlplane/fuzz`).
    fn setup_deadline(&self) -> Option<Instant> {
        if !matches!(
            self.state,
            TunnelState::WaitCtlReply | TunnelState::WaitCtlConn
        ) || !self.channel.is_quiescent()
        {
            return None;
        }
        self.channel
            .idle_since()?
            .checked_add(self.cfg.retransmission_cycle())
    }

    fn hello_due(&self) -> Option<Instant> {
        if !self.channel.is_quiescent() {
            return None;
        }
        let base = [
            self.channel.idle_since(),
            self.last_hello,
            self.established_at,
        ]
        .into_iter()
        .flatten()
        .max()?;
        base.checked_add(self.cfg.hello_interval())
    }

    /// Timers: retransmission, HELLO (RFC 2661 §6.5), the end of the closing linger.
    pub fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if self.farewell.is_some() {
            return self.farewell_timeout(ctx);
        }
        let now = ctx.now;
        let evs = self.channel.handle_timeout(now);
        if evs.contains(&reliable::Event::Failed) || self.setup_deadline().is_some_and(|d| d <= now)
        {
            self.channel_failed(ctx);
            return;
        }
        if self.state == TunnelState::Established && self.hello_due().is_some_and(|d| d <= now) {
            self.last_hello = Some(now);
            self.send(ctx, 0, MessageType::Hello, Vec::new());
        }
        self.check_closing(now);
    }

    fn check_closing(&mut self, now: Instant) {
        if self.state != TunnelState::Closing {
            return;
        }
        let linger_done = self.linger_until.is_none_or(|u| u <= now);
        if linger_done {
            self.linger_until = None;
        }
        if self.channel.is_failed() || (linger_done && self.channel.is_quiescent()) {
            self.state = TunnelState::Finished;
        }
    }

    fn channel_failed(&mut self, ctx: &mut Ctx<'_>) {
        let was_closing = self.state == TunnelState::Closing;
        self.all_sessions_down(ctx);
        self.forget_tunnel(ctx);
        self.recovery_closed(ctx, "recovery tunnel timed out".into());
        if !was_closing && self.role == Role::Normal {
            ctx.events.push(Event::TunnelDown {
                tunnel: self.id,
                peer: self.peer,
                reason: TunnelDownReason::Timeout,
            });
        }
        self.state = TunnelState::Finished;
    }

    // -----------------------------------------------------------------------------------------
    // Tunnel setup

    fn failover_avp(&self) -> Option<AvpRepr> {
        self.our_failover().map(|f| {
            self.plain(Avp::FailoverCapability {
                control: f.control,
                data: f.data,
                recovery_time_ms: f.recovery_time_ms,
            })
        })
    }

    fn setup_avps(&self) -> Vec<AvpRepr> {
        let c = &self.cfg;
        let mut v = Vec::new();
        match self.version {
            Version::V2 => {
                v.push(self.plain(Avp::ProtocolVersion {
                    version: 1,
                    revision: 0,
                }));
                v.push(self.plain(Avp::HostName(c.host_name.as_bytes().to_vec())));
                v.push(self.plain(Avp::FramingCapabilities(framing::SYNC | framing::ASYNC)));
                v.push(self.plain(Avp::BearerCapabilities(bearer::DIGITAL | bearer::ANALOG)));
                v.push(self.plain(Avp::AssignedTunnelId(self.id as u16)));
                v.push(self.plain(Avp::FirmwareRevision(c.firmware_revision)));
            }
            Version::V3 => {
                v.push(self.plain(Avp::HostName(c.host_name.as_bytes().to_vec())));
                v.push(self.plain(Avp::RouterId(c.router_id)));
                v.push(self.plain(Avp::AssignedControlConnectionId(self.id)));
                v.push(self.plain(Avp::PseudowireCapabilities(
                    c.pseudowire.capabilities.clone(),
                )));
                if self.digest_key.is_some() {
                    v.push(self.plain(Avp::ControlMessageAuthNonce(self.local_nonce.clone())));
                }
            }
        }
        if !c.vendor_name.is_empty() {
            v.push(self.plain(Avp::VendorName(c.vendor_name.as_bytes().to_vec())));
        }
        v.push(self.plain(Avp::ReceiveWindowSize(c.receive_window.max(1))));
        // RFC 4951 §3.1: in SCCRQ/SCCRP only; §3.2.1: never in a recovery tunnel.
        if self.role == Role::Normal {
            if let Some(f) = self.failover_avp() {
                v.push(f);
            }
        }
        v
    }

    /// Initiator: sends the SCCRQ.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        let avps = self.setup_avps();
        self.send_sccrq(ctx, avps);
    }

    /// Sends an SCCRQ of `avps`, then our Tie Breaker and Challenge.
    fn send_sccrq(&mut self, ctx: &mut Ctx<'_>, mut avps: Vec<AvpRepr>) {
        if let Some(tb) = self.tie_breaker {
            avps.push(self.plain(Avp::TieBreaker(tb)));
        }
        if let Some(ch) = self.challenge {
            avps.push(self.plain(Avp::Challenge(ch.to_vec())));
        }
        self.send(ctx, 0, MessageType::Sccrq, avps);
        self.state = TunnelState::WaitCtlReply;
    }

    fn learn_peer(&mut self, msg: &ControlMessage) -> Result<(), ResultCode> {
        let id = msg.assigned_tunnel_id().unwrap_or(0);
        self.channel
            .set_peer_tunnel_id(id)
            .map_err(|e| ResultCode::new(2, ErrorCode::OUT_OF_RANGE.0, e.to_string()))?;
        self.peer_tunnel_id = id;
        if let Some(w) = msg.receive_window_size() {
            self.channel.set_peer_window(w);
        }
        self.peer_host_name = msg.host_name().unwrap_or_default().to_vec();
        self.peer_router_id = msg.get(AvpType::RouterId).and_then(|a| match a {
            Avp::RouterId(r) => Some(*r),
            _ => None,
        });
        self.peer_failover = msg
            .failover_capability()
            .map(|(control, data, recovery_time_ms)| FailoverCapability {
                control,
                data,
                recovery_time_ms,
            });
        if self.peer_failover.is_some_and(|f| !f.control && !f.data) {
            // RFC 4951 §5.1: MUST NOT be sent with C and D cleared; take it as no capability.
            self.peer_failover = None;
        }
        self.apply_hold();
        if self.version == Version::V3 {
            let caps = msg.get(AvpType::PseudowireCapabilities);
            let ok = matches!(caps, Some(Avp::PseudowireCapabilities(l))
                if l.iter().any(|t| self.cfg.pseudowire.capabilities.contains(t)));
            if !ok {
                tracing::info!(tunnel = self.id, "no common pseudowire type with the peer");
            }
        }
        Ok(())
    }

    /// v2: checks the peer's Challenge Response to our challenge; v3: the nonce rules.
    /// `mt_of_response`: the Message Type that must carry the response to our challenge (SCCRP
    /// or SCCCN), `None` for the SCCRQ, which cannot answer a challenge not yet sent.
    fn check_auth(
        &self,
        msg: &ControlMessage,
        mt_of_response: Option<u16>,
    ) -> Result<(), ResultCode> {
        let deny = |why: &str| {
            Err(ResultCode::new(
                StopCcnResult::NOT_AUTHORIZED.0,
                ErrorCode::NO_ERROR.0,
                why,
            ))
        };
        match self.version {
            Version::V2 => {
                // RFC 2661 §5.1.1: the response to our challenge comes in the SCCRP (we sent
                // the SCCRQ) or the SCCCN (we sent the SCCRP); an SCCRQ carries none.
                if let (Some(ch), Some(mt_of_response)) = (self.challenge, mt_of_response) {
                    let Some(Avp::ChallengeResponse(r)) = msg.get(AvpType::ChallengeResponse)
                    else {
                        return deny("no Challenge Response");
                    };
                    let secret = self.secret().unwrap_or_default();
                    let want = auth::challenge_response(mt_of_response, secret, &ch);
                    if !l2xdp_wire::crypto::ct_eq(r, &want) {
                        return deny("Challenge Response mismatch");
                    }
                }
                if msg.get(AvpType::Challenge).is_some() && self.secret().is_none() {
                    return deny("challenged but no secret configured");
                }
            }
            Version::V3 => {
                let has_nonce = msg.get(AvpType::ControlMessageAuthNonce).is_some();
                if matches!(
                    msg.message_type(),
                    Some(MessageType::Sccrq | MessageType::Sccrp)
                ) && has_nonce != self.digest_key.is_some()
                {
                    return deny(if has_nonce {
                        "peer requires message authentication, no secret configured"
                    } else {
                        "message authentication required"
                    });
                }
            }
        }
        Ok(())
    }

    fn response_to(&self, msg: &ControlMessage, mt: u16) -> Option<AvpRepr> {
        match (msg.get(AvpType::Challenge), self.secret()) {
            (Some(Avp::Challenge(ch)), Some(s)) => {
                Some(self.plain(Avp::ChallengeResponse(auth::challenge_response(mt, s, ch))))
            }
            _ => None,
        }
    }

    fn take_nonce(&mut self, msg: &ControlMessage) {
        if let Some(Avp::ControlMessageAuthNonce(n)) = msg.get(AvpType::ControlMessageAuthNonce) {
            self.remote_nonce = Some(n.clone());
        }
    }

    /// Responder: handles the SCCRQ that created it. `admit`: `Err` refuses (limits).
    fn on_sccrq(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        if self.initiator || self.state != TunnelState::Idle {
            return self.fsm_error(ctx, MessageType::Sccrq);
        }
        self.take_nonce(msg);
        if let Err(rc) = self.learn_peer(msg) {
            return self.stop(ctx, rc);
        }
        if let Some(rc) = self.reject.take() {
            return self.stop(ctx, rc);
        }
        if let Err(rc) = self.check_auth(msg, None) {
            return self.stop(ctx, rc);
        }
        let mut avps = self.setup_avps();
        if let (Role::Recovery { .. }, Some((ns, nr))) = (self.role, self.scs) {
            // RFC 4951 §3.2.1, §5.3.
            avps.push(self.plain(Avp::SuggestedControlSequence { ns, nr }));
        }
        if let Some(r) = self.response_to(msg, MessageType::Sccrp.value()) {
            avps.push(r);
        }
        if let Some(ch) = self.challenge {
            avps.push(self.plain(Avp::Challenge(ch.to_vec())));
        }
        self.send(ctx, 0, MessageType::Sccrp, avps);
        self.state = TunnelState::WaitCtlConn;
    }

    fn on_sccrp(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        if !self.initiator || self.state != TunnelState::WaitCtlReply {
            return self.fsm_error(ctx, MessageType::Sccrp);
        }
        self.take_nonce(msg);
        if let Err(rc) = self.learn_peer(msg) {
            return self.stop(ctx, rc);
        }
        if let Err(rc) = self.check_auth(msg, Some(MessageType::Sccrp.value())) {
            return self.stop(ctx, rc);
        }
        if let Role::Recovery { .. } = self.role {
            // RFC 4951 §3.2.2: without the AVP, zero.
            self.scs = Some(msg.suggested_control_sequence().unwrap_or((0, 0)));
        }
        let mut avps = Vec::new();
        if let Some(r) = self.response_to(msg, MessageType::Scccn.value()) {
            avps.push(r);
        }
        self.send(ctx, 0, MessageType::Scccn, avps);
        self.up(ctx);
    }

    fn on_scccn(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        if self.initiator || self.state != TunnelState::WaitCtlConn {
            return self.fsm_error(ctx, MessageType::Scccn);
        }
        if let Err(rc) = self.check_auth(msg, Some(MessageType::Scccn.value())) {
            return self.stop(ctx, rc);
        }
        self.up(ctx);
    }

    fn up(&mut self, ctx: &mut Ctx<'_>) {
        self.state = TunnelState::Established;
        self.established_at = Some(ctx.now);
        if let Role::Recovery { old } = self.role {
            return self.recovery_up(ctx, old);
        }
        self.persist_tunnel(ctx);
        ctx.counters.tunnels_up += 1;
        ctx.events.push(Event::TunnelUp {
            tunnel: self.id,
            peer: self.peer,
            version: self.version,
            peer_tunnel: self.peer_tunnel_id,
            peer_host_name: self.peer_host_name.clone(),
            failover: self.peer_failover,
        });
    }

    fn fsm_error(&mut self, ctx: &mut Ctx<'_>, mt: MessageType) {
        ctx.counters
            .count_invalid(format!("{} out of state", mt.short_name()));
        let rc = ResultCode::new(
            StopCcnResult::FSM_ERROR.0,
            ErrorCode::NO_ERROR.0,
            format!("{} in state {:?}", mt.short_name(), self.state),
        );
        self.stop(ctx, rc);
    }

    /// Sends a StopCCN and closes (RFC 2661 §5.7): the sessions go down with it, the state is
    /// kept until the StopCCN is acknowledged (or the channel fails).
    pub fn stop(&mut self, ctx: &mut Ctx<'_>, rc: ResultCode) {
        if matches!(self.state, TunnelState::Closing | TunnelState::Finished) {
            return;
        }
        self.all_sessions_down(ctx);
        let mut avps = Vec::new();
        if self.version == Version::V2 {
            avps.push(self.plain(Avp::AssignedTunnelId(self.id as u16)));
        } else {
            avps.push(self.plain(Avp::AssignedControlConnectionId(self.id)));
        }
        avps.push(self.plain(rc.avp()));
        self.send(ctx, 0, MessageType::StopCcn, avps);
        self.forget_tunnel(ctx);
        self.recovery_closed(ctx, format!("recovery tunnel stopped: {}", rc.message));
        let announce =
            (self.state != TunnelState::Idle || self.initiator) && self.role == Role::Normal;
        self.state = TunnelState::Closing;
        self.linger_until = None;
        if announce {
            ctx.events.push(Event::TunnelDown {
                tunnel: self.id,
                peer: self.peer,
                reason: TunnelDownReason::Local(rc),
            });
        }
    }

    /// Discards the connection without a word (lost tie breaker): lingers to acknowledge.
    pub fn discard(&mut self, ctx: &mut Ctx<'_>) {
        self.all_sessions_down(ctx);
        self.state = TunnelState::Closing;
        self.channel
            .reset_sequence(self.channel.next_ns(), self.channel.nr());
        self.linger_until = ctx.now.checked_add(self.cfg.retransmission_cycle());
        self.forget_tunnel(ctx);
        if self.role != Role::Normal {
            // RFC 4951 Appendix B: the peer's recovery tunnel recovers the old tunnel.
            self.recovery_done = true;
            return;
        }
        ctx.events.push(Event::TunnelDown {
            tunnel: self.id,
            peer: self.peer,
            reason: TunnelDownReason::LostTieBreaker,
        });
    }

    fn on_stopccn(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        // RFC 2661 §6.4, RFC 3931 §6.4: the StopCCN carries the sender's Assigned Tunnel ID /
        // Control Connection ID and is answered only by the transport's acknowledgement. A
        // connection that never learnt the peer's ID (a lost tie breaker, RFC 2661 §4.4.3: the
        // winner's StopCCN rejects our SCCRQ) learns it here, or its ZLB would go to tunnel 0
        // and the StopCCN would be retransmitted until the peer's channel fails.
        if self.peer_tunnel_id == 0 {
            if let Some(id) = msg.assigned_tunnel_id().filter(|&id| id != 0) {
                if self.channel.set_peer_tunnel_id(id).is_ok() {
                    self.peer_tunnel_id = id;
                }
            }
        }
        let rc = result_of(msg);
        if matches!(self.state, TunnelState::Closing | TunnelState::Finished) {
            return;
        }
        let announce = self.state != TunnelState::Idle && self.role == Role::Normal;
        self.all_sessions_down(ctx);
        self.forget_tunnel(ctx);
        self.recovery_closed(
            ctx,
            format!(
                "peer refused the recovery: result {} {}",
                rc.result, rc.message
            ),
        );
        self.state = TunnelState::Closing;
        // RFC 2661 §5.7: keep the state for a full retransmission cycle to ack the StopCCN.
        self.linger_until = ctx.now.checked_add(self.cfg.retransmission_cycle());
        if announce {
            ctx.events.push(Event::TunnelDown {
                tunnel: self.id,
                peer: self.peer,
                reason: TunnelDownReason::Peer(rc),
            });
        }
    }

    /// Frees what the tunnel holds in shared allocators (called by the registry on removal).
    pub fn release(&mut self, ctx: &mut Ctx<'_>) {
        self.all_sessions_down(ctx);
    }
}
