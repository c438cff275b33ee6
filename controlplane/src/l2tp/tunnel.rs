//! One control connection and its sessions.
//!
//! Tunnel states (RFC 2661 §7.2, RFC 3931 §7.3): idle → wait-ctl-reply (initiator, SCCRQ
//! sent) or wait-ctl-conn (responder, SCCRP sent) → established; then closing (StopCCN sent or
//! received: the state is kept for one full retransmission cycle to acknowledge it, RFC 2661
//! §5.7) → finished. Session states (RFC 2661 §7.4, RFC 3931 §7.4): wait-reply (we sent
//! ICRQ/OCRQ), wait-connect (we sent ICRP, or OCRQ's reply arrived), established.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use l2xdp_wire::datapath::SessionKey;
use l2xdp_wire::l2tp::avp::{self, bearer, framing, Avp, AvpRepr, AvpType};
use l2xdp_wire::l2tp::codes::{CdnResult, ErrorCode, StopCcnResult};
use l2xdp_wire::l2tp::digest::{self, Nonces};
use l2xdp_wire::l2tp::header::{ControlHeader, Cookie, Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};
use l2xdp_wire::l2tp::validate::{self, Action};

use super::auth::{self, CHALLENGE_LEN};
use super::config::{L2tpConfig, Sublayer};
use super::failover::{
    self, FailoverEvent, RecordTransport, ResetRole, SessionRecord, StoreOp, TunnelRecord,
};
use super::ids::{random_array, IdAllocator, RandomSource};
use super::{
    CallKind, CallParams, Counters, Event, FailoverCapability, Peer, PppDisconnectCause,
    ProxyValues, ResultCode, SessionDownReason, SessionUp, TunnelDownReason, TunnelId,
};
use crate::reliable::{self, Channel};

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

/// Session state (RFC 2661 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SessionState {
    /// We sent ICRQ/OCRQ.
    WaitReply,
    /// We sent ICRP / got OCRP.
    WaitConnect,
    /// Up.
    Established,
}

/// What a tunnel method needs from the registry.
pub struct Ctx<'a> {
    /// The current time.
    pub now: Instant,
    /// Randomness.
    pub rng: &'a mut dyn RandomSource,
    /// The L2TPv3 session ID space (session IDs are per node in v3).
    pub v3_sessions: &'a mut IdAllocator,
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

#[derive(Debug, Clone)]
struct Session {
    id: u32,
    peer_id: u32,
    state: SessionState,
    call: CallKind,
    initiator: bool,
    params: CallParams,
    cookie_rx: Vec<u8>,
    cookie_tx: Vec<u8>,
    our_l2ss: u16,
    peer_l2ss: u16,
    our_seq: u16,
    peer_seq: u16,
    pw_type: Option<u16>,
    // Captured from the peer.
    calling_number: Vec<u8>,
    called_number: Vec<u8>,
    sub_address: Vec<u8>,
    remote_end_id: Vec<u8>,
    private_group_id: Vec<u8>,
    proxy: ProxyValues,
    tx_speed: Option<u64>,
    rx_speed: Option<u64>,
    /// RFC 4951 §3.3: confirmed by FSQ/FSR since the last failover (true when none happened).
    synced: bool,
    /// RFC 4951 §3.3: paired with another session ID at the peer; to be queried.
    stale: bool,
    /// The caller's data, persisted with the session.
    app: serde_json::Value,
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
    /// Registry bookkeeping: the deadline pushed on its heap.
    pub(crate) scheduled: Option<Instant>,
}

/// FSS AVPs per FSQ/FSR: 14 octets each, so a message stays under 1 KiB with its header,
/// Message Type and Message Digest (RFC 4951 §3.3 allows several per message).
pub const FSS_PER_MESSAGE: usize = 64;

fn v3_ids(id: u32) -> SessionKey {
    SessionKey::V3 { session_id: id }
}

fn bytes_of(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

impl Tunnel {
    /// A tunnel with our ID `id`. `initiator`: we send the SCCRQ ([`Tunnel::start`]).
    pub fn new(
        id: TunnelId,
        version: Version,
        peer: Peer,
        initiator: bool,
        cfg: Arc<L2tpConfig>,
        rng: &mut dyn RandomSource,
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
            tie_breaker: initiator.then(|| random_array(rng)),
            peer_failover: None,
            challenge: (version == Version::V2 && secret.is_some()).then(|| random_array(rng)),
            digest_key: secret
                .as_deref()
                .filter(|_| v3_auth)
                .map(digest::shared_key),
            local_nonce: if v3_auth {
                random_array::<CHALLENGE_LEN>(rng).to_vec()
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
    /// Sessions (set up or up).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
    /// Our IDs of the established sessions.
    pub fn established_sessions(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .sessions
            .values()
            .filter(|s| s.state == SessionState::Established)
            .map(|s| s.id)
            .collect();
        v.sort_unstable();
        v
    }
    /// The state of a session.
    pub fn session_state(&self, session: u32) -> Option<SessionState> {
        self.sessions.get(&session).map(|s| s.state)
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
    /// Whether a session is marked stale (RFC 4951 §3.3).
    pub fn session_is_stale(&self, session: u32) -> Option<bool> {
        self.sessions.get(&session).map(|s| s.stale)
    }
    /// Whether a session was confirmed by FSQ/FSR since the last failover (RFC 4951 §3.3).
    pub fn session_is_synced(&self, session: u32) -> Option<bool> {
        self.sessions.get(&session).map(|s| s.synced)
    }
    /// The peer's session ID of one of our sessions.
    pub fn peer_session_id(&self, session: u32) -> Option<u32> {
        self.sessions.get(&session).map(|s| s.peer_id)
    }

    // -----------------------------------------------------------------------------------------
    // Sending

    fn secret(&self) -> Option<&[u8]> {
        self.cfg.secret_bytes()
    }

    fn hide(&self, a: Avp, on: bool) -> AvpRepr {
        let r = AvpRepr::new(a, self.version);
        if on && self.cfg.hide_avps && self.secret().is_some() {
            r.hide()
        } else {
            r
        }
    }

    fn plain(&self, a: Avp) -> AvpRepr {
        AvpRepr::new(a, self.version)
    }

    /// Queues a message: Message Type, Message Digest (v3 with a secret), Random Vector (when
    /// something is hidden), then `avps`.
    fn send(&mut self, ctx: &mut Ctx<'_>, session_hdr: u16, mt: MessageType, avps: Vec<AvpRepr>) {
        let v = self.version;
        let header = ControlHeader {
            version: v,
            tunnel_id: 0,
            session_id: 0,
            ns: 0,
            nr: 0,
        };
        let mut all = vec![AvpRepr::new(Avp::MessageType(mt), v)];
        if self.digest_key.is_some() {
            all.push(AvpRepr::new(
                Avp::MessageDigest {
                    digest_type: avp::digest::HMAC_MD5,
                    digest: vec![0; 16],
                },
                v,
            ));
        }
        if avps.iter().any(|a| a.hidden) {
            // RFC 2661 §4.3: an unpredictable Random Vector before the hidden AVPs.
            let rv: [u8; 16] = random_array(ctx.rng);
            all.push(AvpRepr::new(Avp::RandomVector(rv.to_vec()), v));
        }
        all.extend(avps);
        let msg = ControlMessage { header, avps: all };
        match msg.to_bytes(self.secret()) {
            Ok(b) => {
                let body = b.get(ControlHeader::LEN..).unwrap_or_default().to_vec();
                if let Err(e) = self.channel.send(session_hdr, body) {
                    tracing::warn!(tunnel = self.id, "cannot send {}: {e}", mt.short_name());
                    return;
                }
                *ctx.counters
                    .messages_out
                    .entry(mt.short_name())
                    .or_default() += 1;
            }
            Err(e) => tracing::error!(tunnel = self.id, "cannot encode {}: {e}", mt.short_name()),
        }
    }

    /// The next datagram to send (for IP transport, with the zero Session ID in front).
    pub fn poll_transmit(&mut self, now: Instant, counters: &mut Counters) -> Option<Vec<u8>> {
        let mut d = self.channel.poll_transmit(now)?;
        if d.len() == ControlHeader::LEN {
            *counters.messages_out.entry("ZLB").or_default() += 1;
            if let Some(key) = self.digest_key {
                // RFC 3931 §4.3: every message carries a digest, so acknowledge with an
                // explicit ACK (§6.15) instead of a ZLB.
                let (h, _) = ControlHeader::parse(&d).ok()?;
                let ack = ControlMessage::build(
                    h,
                    MessageType::Ack,
                    vec![Avp::MessageDigest {
                        digest_type: avp::digest::HMAC_MD5,
                        digest: vec![0; 16],
                    }],
                );
                d = ack.to_bytes(None).ok()?;
                let _ = key;
            }
        }
        if let Some(key) = self.digest_key {
            let is_sccrq = d.get(ControlHeader::LEN + 6..ControlHeader::LEN + 8) == Some(&[0, 1]);
            let remote = self.remote_nonce.clone().unwrap_or_default();
            let nonces = if is_sccrq {
                Nonces::Sccrq
            } else {
                Nonces::Pair(&self.local_nonce, &remote)
            };
            if let Err(e) = digest::sign(&mut d, &key, nonces) {
                tracing::error!(tunnel = self.id, "cannot sign: {e}");
            }
        }
        if self.peer.transport == Transport::Ip {
            let mut v = vec![0u8; 4];
            v.extend_from_slice(&d);
            d = v;
        }
        Some(d)
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
        if self.state == TunnelState::Established {
            add(self.hello_due());
        }
        t
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
        let now = ctx.now;
        let evs = self.channel.handle_timeout(now);
        if evs.contains(&reliable::Event::Failed) {
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
        let mut avps = self.setup_avps();
        if let Some(tb) = self.tie_breaker {
            avps.push(self.plain(Avp::TieBreaker(tb)));
        }
        if let Some(ch) = self.challenge {
            avps.push(self.plain(Avp::Challenge(ch.to_vec())));
        }
        self.send(ctx, 0, MessageType::Sccrq, avps);
        self.state = TunnelState::WaitCtlReply;
    }

    /// RFC 4951 §5.1: a remote endpoint gives a failover-capable peer (C bit) its Recovery Time,
    /// counted from the start of the control channel timeout, before giving up on it, when we
    /// take part in failover ourselves (we sent the AVP). The channel fails at the later of
    /// "retries exhausted" and "timeout start + Recovery Time" (see `ReliableConfig::hold`).
    fn apply_hold(&mut self) {
        if self.role != Role::Normal || self.our_failover().is_none() {
            return;
        }
        if let Some(f) = self.peer_failover.filter(|f| f.control) {
            self.channel
                .set_hold(std::time::Duration::from_millis(u64::from(
                    f.recovery_time_ms,
                )));
        }
    }

    /// Recovery endpoint: makes this (new, initiator) tunnel the recovery tunnel of the old
    /// tunnel `old`, whose peer ID is `old_peer`, and sends its SCCRQ (RFC 4951 §3.2.1): the
    /// Tunnel Recovery AVP and a Tie Breaker, no Failover Capability AVP.
    pub fn start_recovery(&mut self, ctx: &mut Ctx<'_>, old: TunnelId, old_peer: u32) {
        self.role = Role::Recovery { old };
        if self.tie_breaker.is_none() {
            self.tie_breaker = Some(random_array(ctx.rng));
        }
        let mut avps = self.setup_avps();
        avps.push(self.plain(Avp::TunnelRecovery {
            tunnel_id: old,
            remote_tunnel_id: old_peer,
        }));
        if let Some(tb) = self.tie_breaker {
            avps.push(self.plain(Avp::TieBreaker(tb)));
        }
        if let Some(ch) = self.challenge {
            avps.push(self.plain(Avp::Challenge(ch.to_vec())));
        }
        self.send(ctx, 0, MessageType::Sccrq, avps);
        self.state = TunnelState::WaitCtlReply;
        ctx.counters.count_failover("recovery SCCRQ sent");
    }

    /// Remote endpoint: makes this (new, responder) tunnel the recovery tunnel of our old
    /// tunnel `old`, suggesting `scs` (Ns, Nr of the recovery endpoint) in its SCCRP.
    pub(crate) fn set_recovery_responder(&mut self, old: TunnelId, scs: (u16, u16)) {
        self.role = Role::Recovery { old };
        self.scs = Some(scs);
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
                    if !auth::ct_eq(r, &want) {
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

    /// A recovery tunnel is up (RFC 4951 §3.2.2): the recovery endpoint resets on the SCCRP
    /// (it just sent the SCCCN) and tears the recovery tunnel down; the remote endpoint resets
    /// on the SCCCN (authenticated by now).
    fn recovery_up(&mut self, ctx: &mut Ctx<'_>, old: TunnelId) {
        let (ns, nr) = self.scs.unwrap_or((0, 0));
        let nonces = self.digest_key.map(|_| {
            (
                self.local_nonce.clone(),
                self.remote_nonce.clone().unwrap_or_default(),
            )
        });
        let (ns, nr, role) = if self.initiator {
            (ns, nr, ResetRole::Recovery)
        } else {
            // The suggestion is the recovery endpoint's view; ours is the mirror image.
            (nr, ns, ResetRole::Remote)
        };
        self.recovery_done = true;
        ctx.counters.count_failover(if self.initiator {
            "recovery tunnel up (SCCRP)"
        } else {
            "recovery tunnel up (SCCCN)"
        });
        ctx.actions.push(RecoveryAction::Reset {
            old,
            ns,
            nr,
            role,
            nonces,
            peer: self.peer,
        });
        if self.initiator {
            // Appendix A: the recovery endpoint terminates the recovery tunnel; its StopCCN
            // follows the SCCCN in sequence. Result 1: general request to clear.
            self.stop(
                ctx,
                ResultCode::new(
                    StopCcnResult::GENERAL_REQUEST.0,
                    ErrorCode::NO_ERROR.0,
                    "recovery complete",
                ),
            );
        }
    }

    /// A recovery tunnel that closes before the reset reports the recovery as failed.
    fn recovery_closed(&mut self, ctx: &mut Ctx<'_>, why: String) {
        if let Role::Recovery { old } = self.role {
            if self.initiator && !self.recovery_done {
                self.recovery_done = true;
                ctx.counters.count_failover("recovery failed");
                ctx.actions
                    .push(RecoveryAction::Failed { old, reason: why });
            }
        }
    }

    fn persist_tunnel(&mut self, ctx: &mut Ctx<'_>) {
        if self.role != Role::Normal || !self.cfg.persists() {
            return;
        }
        self.persisted = true;
        ctx.failover
            .push(FailoverEvent::Store(StoreOp::PutTunnel(Box::new(
                self.record(),
            ))));
    }

    fn forget_tunnel(&mut self, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.persisted) {
            ctx.failover
                .push(FailoverEvent::Store(StoreOp::RemoveTunnel(self.id)));
        }
    }

    fn persist_session(&self, ctx: &mut Ctx<'_>, s: &Session) {
        if self.persisted && s.state == SessionState::Established {
            ctx.failover
                .push(FailoverEvent::Store(StoreOp::PutSession(Box::new(
                    self.session_record(s),
                ))));
        }
    }

    fn forget_session(&self, ctx: &mut Ctx<'_>, s: &Session) {
        if self.persisted && s.state == SessionState::Established {
            ctx.failover
                .push(FailoverEvent::Store(StoreOp::RemoveSession {
                    tunnel: self.id,
                    session: s.id,
                }));
        }
    }

    /// The persisted form of this tunnel (RFC 4951 §3.2).
    pub fn record(&self) -> TunnelRecord {
        TunnelRecord {
            id: self.id,
            peer_tunnel_id: self.peer_tunnel_id,
            peer_addr: self.peer.addr,
            transport: match self.peer.transport {
                Transport::Udp => RecordTransport::Udp,
                Transport::Ip => RecordTransport::Ip,
            },
            version: match self.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
            initiator: self.initiator,
            our_failover: self.our_failover(),
            peer_failover: self.peer_failover,
            host_name: self.cfg.host_name.clone(),
            router_id: self.cfg.router_id,
            peer_host_name: self.peer_host_name.clone(),
            peer_router_id: self.peer_router_id,
            secret_ref: self.secret().map(failover::secret_ref),
            peer_window: self.channel.peer_window(),
            ns: self.channel.next_ns(),
            nr: self.channel.nr(),
        }
    }

    fn session_record(&self, s: &Session) -> SessionRecord {
        SessionRecord {
            tunnel: self.id,
            id: s.id,
            peer_id: s.peer_id,
            call: s.call,
            initiator: s.initiator,
            cookie_rx: s.cookie_rx.clone(),
            cookie_tx: s.cookie_tx.clone(),
            our_l2ss: s.our_l2ss,
            peer_l2ss: s.peer_l2ss,
            our_seq: s.our_seq,
            peer_seq: s.peer_seq,
            pw_type: s.pw_type,
            calling_number: if s.initiator {
                s.params.calling_number.clone()
            } else {
                s.calling_number.clone()
            },
            called_number: if s.initiator {
                s.params.called_number.clone()
            } else {
                s.called_number.clone()
            },
            sub_address: if s.initiator {
                s.params.sub_address.clone()
            } else {
                s.sub_address.clone()
            },
            remote_end_id: if s.initiator {
                s.params.remote_end_id.clone()
            } else {
                s.remote_end_id.clone()
            },
            private_group_id: s.private_group_id.clone(),
            proxy: s.proxy.clone(),
            tx_speed: s.tx_speed,
            rx_speed: s.rx_speed,
            app: s.app.clone(),
        }
    }

    /// Attaches the caller's data to an established session and persists it again.
    pub fn set_app_data(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u32,
        app: serde_json::Value,
    ) -> Result<(), super::L2tpError> {
        let Some(s) = self.sessions.get_mut(&id) else {
            return Err(super::L2tpError::NoSession {
                tunnel: self.id,
                session: id,
            });
        };
        s.app = app;
        if let Some(s) = self.sessions.get(&id) {
            self.persist_session(ctx, s);
        }
        Ok(())
    }

    /// Recovery endpoint: an old tunnel rebuilt from its record (RFC 4951 §3.2), established
    /// but discarding every control message until its control channel reset.
    pub fn restore(
        rec: &TunnelRecord,
        version: Version,
        cfg: Arc<L2tpConfig>,
        rng: &mut dyn RandomSource,
    ) -> Self {
        let mut t = Tunnel::new(rec.id, version, rec.peer(), rec.initiator, cfg, rng);
        t.state = TunnelState::Established;
        t.peer_tunnel_id = rec.peer_tunnel_id;
        // A v2 ID above 16 bits was refused when the record was made.
        let _ = t.channel.set_peer_tunnel_id(rec.peer_tunnel_id);
        t.channel.set_peer_window(rec.peer_window);
        t.peer_host_name = rec.peer_host_name.clone();
        t.peer_router_id = rec.peer_router_id;
        t.peer_failover = rec.peer_failover;
        t.recovering = true;
        t.persisted = t.cfg.persists();
        t.apply_hold();
        t
    }

    /// Recovery endpoint: adds a restored session (its ID already reserved by the caller for
    /// v3) and returns what the fast path needs.
    pub fn restore_session(&mut self, r: &SessionRecord) -> SessionUp {
        if self.version == Version::V2 {
            self.v2_sessions.reserve(r.id);
        }
        let s = Session {
            id: r.id,
            peer_id: r.peer_id,
            state: SessionState::Established,
            call: r.call,
            initiator: r.initiator,
            params: CallParams {
                kind: r.call,
                calling_number: r.calling_number.clone(),
                called_number: r.called_number.clone(),
                sub_address: r.sub_address.clone(),
                remote_end_id: r.remote_end_id.clone(),
                pw_type: r.pw_type,
                proxy: r.proxy.clone(),
                connect_speed: r.tx_speed,
            },
            cookie_rx: r.cookie_rx.clone(),
            cookie_tx: r.cookie_tx.clone(),
            our_l2ss: r.our_l2ss,
            peer_l2ss: r.peer_l2ss,
            our_seq: r.our_seq,
            peer_seq: r.peer_seq,
            pw_type: r.pw_type,
            calling_number: r.calling_number.clone(),
            called_number: r.called_number.clone(),
            sub_address: r.sub_address.clone(),
            remote_end_id: r.remote_end_id.clone(),
            private_group_id: r.private_group_id.clone(),
            proxy: r.proxy.clone(),
            tx_speed: r.tx_speed,
            rx_speed: r.rx_speed,
            synced: false,
            stale: false,
            app: r.app.clone(),
        };
        let up = self.up_of(&s);
        self.sessions.insert(r.id, s);
        up
    }

    /// Clears the tunnel and its sessions without a word (RFC 4951 §3.2.1: the recovery
    /// failed): the caller removes them from the fast path on the events.
    pub fn clear_silently(&mut self, ctx: &mut Ctx<'_>, reason: String) {
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.clear_session(ctx, id);
        }
        self.forget_tunnel(ctx);
        ctx.events.push(Event::TunnelDown {
            tunnel: self.id,
            peer: self.peer,
            reason: TunnelDownReason::RecoveryFailed(reason.clone()),
        });
        ctx.failover.push(FailoverEvent::RecoveryFailed {
            tunnel: self.id,
            reason,
        });
        self.recovering = false;
        self.state = TunnelState::Finished;
    }

    /// Clears one session without a CDN (RFC 4951 §3.3).
    fn clear_session(&mut self, ctx: &mut Ctx<'_>, id: u32) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        self.forget_session(ctx, &s);
        self.fsq_outstanding.remove(&id);
        ctx.counters.count_failover("session cleared silently");
        ctx.events.push(Event::SessionDown {
            tunnel: self.id,
            session: id,
            peer_session: s.peer_id,
            was_up: s.state == SessionState::Established,
            reason: SessionDownReason::FailoverCleared,
        });
        self.free_session_id(ctx, id);
    }

    fn is_sequenced(&self, s: &Session) -> bool {
        s.our_seq > 0 || s.peer_seq > 0 || self.cfg.sequencing_required
    }

    /// RFC 4951 §3.2.2 control channel reset of this old tunnel, then §3.3 Step I and, when we
    /// are a recovery endpoint (it was restored), §3.2.3 data channel reset and the FSQ round.
    pub(crate) fn control_reset(
        &mut self,
        ctx: &mut Ctx<'_>,
        ns: u16,
        nr: u16,
        role: ResetRole,
        nonces: Option<(Vec<u8>, Vec<u8>)>,
        peer: Peer,
    ) {
        if self.state != TunnelState::Established {
            return;
        }
        self.channel.reset_sequence(ns, nr);
        if let (Some((local, remote)), Some(_)) = (nonces, self.digest_key) {
            // RFC 4951 §3.2.1: the recovered tunnel uses the recovery tunnel's nonces.
            self.local_nonce = local;
            self.remote_nonce = Some(remote);
        }
        self.peer = peer;
        self.established_at = Some(ctx.now);
        self.last_hello = None;
        let was_recovering = std::mem::take(&mut self.recovering);
        ctx.counters.count_failover(match role {
            ResetRole::Recovery => "control channel reset (recovery endpoint)",
            ResetRole::Remote => "control channel reset (remote endpoint)",
        });
        ctx.failover.push(FailoverEvent::ControlReset {
            tunnel: self.id,
            ns,
            nr,
            role,
        });
        // Step I: sessions not established are cleared silently, by each endpoint.
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for &id in &ids {
            match self.sessions.get_mut(&id) {
                Some(s) if s.state != SessionState::Established => self.clear_session(ctx, id),
                Some(s) => s.synced = false,
                None => {}
            }
        }
        if !was_recovering {
            return;
        }
        // §3.2.3 data channel reset: sequenced sessions are recoverable only when both ends
        // set the D bit; the recovery endpoint tears the others down with a CDN.
        let d_ok = self.our_failover().is_some_and(|f| f.data)
            && self.peer_failover.is_some_and(|f| f.data);
        for &id in &ids {
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            if !self.is_sequenced(s) {
                continue;
            }
            if d_ok {
                let key = self.up_of(s).our_ids;
                ctx.counters.count_failover("data channel reset");
                ctx.failover.push(FailoverEvent::ResetDataSequence {
                    tunnel: self.id,
                    session: id,
                    key,
                });
            } else {
                ctx.counters
                    .count_failover("sequenced session torn down (no D bit)");
                let rc = ResultCode::new(
                    CdnResult::GENERAL_ERROR.0,
                    ErrorCode::NO_ERROR.0,
                    "data channel not recoverable after failover (RFC 4951 §3.2.3)",
                );
                self.cdn(ctx, id, rc, None);
            }
        }
        // Step III: query every session left.
        let mut left: Vec<(u32, u32)> = self.sessions.values().map(|s| (s.id, s.peer_id)).collect();
        left.sort_unstable();
        self.sync_pending = true;
        for (id, peer_id) in left {
            self.query(id, peer_id);
        }
        self.flush_fsq(ctx);
        self.persist_tunnel(ctx);
        self.check_synced(ctx);
    }

    fn query(&mut self, id: u32, peer_id: u32) {
        self.fsq_outstanding.insert(id);
        self.fsq_queue.push((id, peer_id));
    }

    /// Sends the queued FSS pairs in FSQ messages of at most [`FSS_PER_MESSAGE`] (RFC 4951
    /// §3.3: several FSS AVPs per FSQ).
    fn flush_fsq(&mut self, ctx: &mut Ctx<'_>) {
        let q = std::mem::take(&mut self.fsq_queue);
        self.send_fss(ctx, MessageType::Fsq, q);
    }

    fn send_fss(&mut self, ctx: &mut Ctx<'_>, mt: MessageType, pairs: Vec<(u32, u32)>) {
        for chunk in pairs.chunks(FSS_PER_MESSAGE) {
            let avps = chunk
                .iter()
                .map(|&(session_id, remote_session_id)| {
                    self.plain(Avp::FailoverSessionState {
                        session_id,
                        remote_session_id,
                    })
                })
                .collect();
            self.send(ctx, 0, mt, avps);
        }
    }

    fn check_synced(&mut self, ctx: &mut Ctx<'_>) {
        if self.sync_pending && self.fsq_outstanding.is_empty() {
            self.sync_pending = false;
            ctx.counters.count_failover("tunnel recovered");
            ctx.failover.push(FailoverEvent::Recovered {
                tunnel: self.id,
                sessions: self.sessions.len(),
            });
        }
    }

    /// RFC 4951 §3.3: answer each FSS of an FSQ; a pairing mismatch marks our session stale
    /// (and queries it), it is not cleared.
    fn on_fsq(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        let mut answers = Vec::new();
        for (theirs, ours) in msg.failover_session_states() {
            ctx.counters.count_failover("FSS queried by peer");
            let valid = match self.sessions.get_mut(&ours) {
                Some(s) if s.peer_id == theirs && theirs != 0 => {
                    s.synced = true;
                    s.stale = false;
                    true
                }
                Some(s) => {
                    if !s.stale {
                        s.stale = true;
                        let (id, peer_id) = (s.id, s.peer_id);
                        ctx.counters.count_failover("session marked stale");
                        ctx.failover.push(FailoverEvent::SessionStale {
                            tunnel: self.id,
                            session: id,
                        });
                        self.query(id, peer_id);
                    }
                    false
                }
                None => false,
            };
            answers.push((if valid { ours } else { 0 }, theirs));
        }
        self.send_fss(ctx, MessageType::Fsr, answers);
        self.flush_fsq(ctx);
    }

    /// RFC 4951 §3.3: a zero Session ID clears our session silently; otherwise it is recovered.
    fn on_fsr(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage) {
        for (theirs, ours) in msg.failover_session_states() {
            ctx.counters.count_failover("FSS answered by peer");
            self.fsq_outstanding.remove(&ours);
            if theirs == 0 {
                self.clear_session(ctx, ours);
                continue;
            }
            let Some(s) = self.sessions.get_mut(&ours) else {
                continue;
            };
            if s.peer_id == theirs {
                s.synced = true;
                s.stale = false;
            } else if !s.stale {
                s.stale = true;
                ctx.counters.count_failover("session marked stale");
                ctx.failover.push(FailoverEvent::SessionStale {
                    tunnel: self.id,
                    session: ours,
                });
            }
        }
        self.check_synced(ctx);
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
        let rc = msg
            .result_code()
            .map(|(result, error, m)| ResultCode {
                result,
                error,
                message: bytes_of(m),
            })
            .unwrap_or(ResultCode {
                result: 0,
                error: None,
                message: String::new(),
            });
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

    // -----------------------------------------------------------------------------------------
    // Receiving

    /// Handles one control datagram (over IP without the zero Session ID) for this tunnel.
    pub fn handle_datagram(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) {
        if self.recovering {
            // RFC 4951 §3.2.1: silently discarded before the control channel reset.
            ctx.counters
                .count_failover("discarded before control channel reset");
            return;
        }
        let Ok((header, body)) = ControlHeader::parse(bytes) else {
            ctx.counters.count_invalid("malformed header");
            return;
        };
        if let Some(key) = self.digest_key {
            if !self.digest_ok(bytes, body, &key) {
                ctx.counters.count_invalid("bad or missing message digest");
                return;
            }
        }
        let evs = self.channel.handle_incoming(&header, body, ctx.now);
        if body.is_empty() {
            *ctx.counters.messages_in.entry("ZLB").or_default() += 1;
        }
        for e in evs {
            match e {
                reliable::Event::Deliver {
                    ns,
                    session_id,
                    avps,
                } => self.deliver(ctx, ns, session_id, &avps),
                reliable::Event::Failed => {
                    self.channel_failed(ctx);
                    return;
                }
                reliable::Event::Acked { .. } | reliable::Event::Holding { .. } => {}
            }
        }
        self.check_closing(ctx.now);
    }

    fn digest_ok(&mut self, bytes: &[u8], body: &[u8], key: &[u8; 16]) -> bool {
        if body.is_empty() {
            return false;
        }
        let mt = body.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let has_digest = body
            .get(8 + 4..8 + 6)
            .is_some_and(|t| t == AvpType::MessageDigest.value().to_be_bytes());
        let setup = matches!(mt, Some(1 | 2));
        if !has_digest {
            // Setup messages without authentication get a StopCCN (result 4) from the FSM.
            return setup;
        }
        if mt == Some(1) {
            return digest::verify(bytes, key, Nonces::Sccrq);
        }
        let remote = match &self.remote_nonce {
            Some(n) => n.clone(),
            None if mt == Some(2) => ControlMessage::parse(bytes, &Default::default())
                .ok()
                .and_then(|m| match m.get(AvpType::ControlMessageAuthNonce) {
                    Some(Avp::ControlMessageAuthNonce(n)) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
            None => return false,
        };
        digest::verify(bytes, key, Nonces::Pair(&remote, &self.local_nonce))
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_>, ns: u16, session_id: u16, avps: &[u8]) {
        let header = ControlHeader {
            version: self.version,
            tunnel_id: self.id,
            session_id,
            ns,
            nr: 0,
        };
        let mut buf = vec![0u8; ControlHeader::LEN + avps.len()];
        if header.emit(&mut buf, avps.len()).is_err() {
            return;
        }
        buf[ControlHeader::LEN..].copy_from_slice(avps);
        match validate::validate_bytes(&buf, self.secret()) {
            Ok(msg) => {
                let mt = msg.message_type().unwrap_or(MessageType::Unknown(0));
                *ctx.counters.messages_in.entry(mt.short_name()).or_default() += 1;
                self.on_message(ctx, session_id, &msg);
            }
            Err(v) => {
                ctx.counters.count_invalid(format!(
                    "{:?} result {} error {}",
                    v.action, v.result_code, v.error_code
                ));
                tracing::info!(tunnel = self.id, "invalid control message: {v}");
                let rc = ResultCode::new(v.result_code, v.error_code, v.message.clone());
                match v.action {
                    Action::Ignore => {}
                    Action::StopCcn => {
                        if self.peer_tunnel_id == 0 {
                            // Answer to the sender's Assigned Tunnel ID if it can be read.
                            if let Ok(m) = ControlMessage::parse(&buf, &Default::default()) {
                                let id = m.assigned_tunnel_id().unwrap_or(0);
                                let _ = self.channel.set_peer_tunnel_id(id);
                                self.peer_tunnel_id = id;
                            }
                        }
                        self.stop(ctx, rc);
                    }
                    Action::Cdn => {
                        let loose = ControlMessage::parse(&buf, &parse_ctx(self.secret()));
                        self.cdn_for_invalid(ctx, session_id, loose.ok(), rc);
                    }
                }
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, hdr_session: u16, msg: &ControlMessage) {
        let Some(mt) = msg.message_type() else {
            return;
        };
        if self.state == TunnelState::Closing && mt != MessageType::StopCcn {
            return;
        }
        use MessageType as M;
        match mt {
            M::Sccrq => self.on_sccrq(ctx, msg),
            M::Sccrp => self.on_sccrp(ctx, msg),
            M::Scccn => self.on_scccn(ctx, msg),
            M::StopCcn => self.on_stopccn(ctx, msg),
            M::Hello | M::Ack | M::Unknown(_) => {}
            // RFC 4951 §3.2.1: nothing but setup, StopCCN, HELLO and ACK on a recovery tunnel.
            M::Fsq | M::Fsr if self.role != Role::Normal => {
                ctx.counters
                    .count_invalid(format!("{} on a recovery tunnel", mt.short_name()));
            }
            M::Fsq | M::Fsr if self.state != TunnelState::Established => self.fsm_error(ctx, mt),
            M::Fsq => self.on_fsq(ctx, msg),
            M::Fsr => self.on_fsr(ctx, msg),
            M::Icrq | M::Ocrq => {
                if self.state != TunnelState::Established {
                    return self.fsm_error(ctx, mt);
                }
                self.on_call_request(ctx, msg, mt);
            }
            M::Icrp | M::Iccn | M::Ocrp | M::Occn | M::Cdn | M::Wen | M::Sli => {
                if self.state != TunnelState::Established {
                    return self.fsm_error(ctx, mt);
                }
                self.on_session_message(ctx, hdr_session, msg, mt);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sessions

    fn alloc_session_id(&mut self, ctx: &mut Ctx<'_>) -> Option<u32> {
        match self.version {
            Version::V2 => self.v2_sessions.alloc(ctx.rng),
            Version::V3 => ctx.v3_sessions.alloc(ctx.rng),
        }
    }

    fn free_session_id(&mut self, ctx: &mut Ctx<'_>, id: u32) {
        match self.version {
            Version::V2 => self.v2_sessions.free(id),
            Version::V3 => ctx.v3_sessions.free(id),
        }
    }

    fn random_cookie(&self, ctx: &mut Ctx<'_>) -> Vec<u8> {
        let n = match self.cfg.pseudowire.cookie_len {
            0 => 0,
            1..=4 => 4,
            _ => 8,
        };
        let mut c = vec![0u8; n];
        ctx.rng.fill(&mut c);
        c
    }

    fn new_session(&mut self, ctx: &mut Ctx<'_>, call: CallKind, initiator: bool) -> Option<u32> {
        let id = self.alloc_session_id(ctx)?;
        let pw = &self.cfg.pseudowire;
        let s = Session {
            id,
            peer_id: 0,
            state: SessionState::WaitReply,
            call,
            initiator,
            params: CallParams::default(),
            cookie_rx: if self.version == Version::V3 {
                self.random_cookie(ctx)
            } else {
                Vec::new()
            },
            cookie_tx: Vec::new(),
            our_l2ss: pw.sublayer.value(),
            peer_l2ss: 0,
            our_seq: pw.data_sequencing,
            peer_seq: 0,
            pw_type: None,
            calling_number: Vec::new(),
            called_number: Vec::new(),
            sub_address: Vec::new(),
            remote_end_id: Vec::new(),
            private_group_id: Vec::new(),
            proxy: ProxyValues::default(),
            tx_speed: None,
            rx_speed: None,
            synced: true,
            stale: false,
            app: serde_json::Value::Null,
        };
        self.sessions.insert(id, s);
        Some(id)
    }

    /// Opens a session (we send ICRQ or OCRQ). Returns our session ID.
    pub fn open_session(
        &mut self,
        ctx: &mut Ctx<'_>,
        params: CallParams,
    ) -> Result<u32, super::L2tpError> {
        if self.state != TunnelState::Established {
            return Err(super::L2tpError::NotEstablished(self.id));
        }
        if self.recovering {
            return Err(super::L2tpError::Recovering(self.id));
        }
        if self.sessions.len() >= self.cfg.limits.max_sessions_per_tunnel {
            return Err(super::L2tpError::Limit("sessions per tunnel"));
        }
        let id = self
            .new_session(ctx, params.kind, true)
            .ok_or(super::L2tpError::Limit("session IDs"))?;
        self.call_serial = self.call_serial.wrapping_add(1);
        let serial = self.call_serial;
        let mt = match params.kind {
            CallKind::Incoming => MessageType::Icrq,
            CallKind::Outgoing => MessageType::Ocrq,
        };
        let mut avps = Vec::new();
        let hc = self.cfg.hidden.calling_number;
        match self.version {
            Version::V2 => {
                avps.push(self.hide(
                    Avp::AssignedSessionId(id as u16),
                    self.cfg.hidden.session_id,
                ));
                avps.push(self.plain(Avp::CallSerialNumber(serial)));
                if params.kind == CallKind::Outgoing {
                    avps.push(self.plain(Avp::MinimumBps(0)));
                    avps.push(self.plain(Avp::MaximumBps(u32::MAX)));
                    avps.push(self.plain(Avp::FramingType(framing::SYNC)));
                    avps.push(self.hide(Avp::CalledNumber(params.called_number.clone()), hc));
                }
                avps.push(self.plain(Avp::BearerType(bearer::DIGITAL)));
                if params.kind == CallKind::Incoming {
                    if !params.calling_number.is_empty() {
                        avps.push(self.hide(Avp::CallingNumber(params.calling_number.clone()), hc));
                    }
                    if !params.called_number.is_empty() {
                        avps.push(self.hide(Avp::CalledNumber(params.called_number.clone()), hc));
                    }
                }
                if !params.sub_address.is_empty() {
                    avps.push(self.plain(Avp::SubAddress(params.sub_address.clone())));
                }
            }
            Version::V3 => {
                let pw_type = params.pw_type.unwrap_or(self.cfg.pseudowire.pw_type);
                let s = self
                    .sessions
                    .get_mut(&id)
                    .ok_or(super::L2tpError::Limit("session"))?;
                s.pw_type = Some(pw_type);
                let (cookie, l2ss, seq) = (s.cookie_rx.clone(), s.our_l2ss, s.our_seq);
                avps.push(self.plain(Avp::LocalSessionId(id)));
                avps.push(self.plain(Avp::RemoteSessionId(0)));
                avps.push(self.plain(Avp::CallSerialNumber(serial)));
                avps.push(self.plain(Avp::PseudowireType(pw_type)));
                avps.push(self.plain(Avp::RemoteEndId(params.remote_end_id.clone())));
                avps.push(self.plain(Avp::CircuitStatus {
                    active: true,
                    new: true,
                }));
                avps.extend(self.pw_avps(cookie, l2ss, seq));
            }
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            s.params = params;
        }
        self.send(ctx, 0, mt, avps);
        Ok(id)
    }

    fn pw_avps(&self, cookie: Vec<u8>, l2ss: u16, seq: u16) -> Vec<AvpRepr> {
        let mut v = Vec::new();
        if !cookie.is_empty() {
            v.push(self.hide(Avp::AssignedCookie(cookie), self.cfg.hidden.assigned_cookie));
        }
        v.push(self.plain(Avp::L2SpecificSublayer(l2ss)));
        v.push(self.plain(Avp::DataSequencing(seq)));
        v
    }

    fn capture(&self, s: &mut Session, msg: &ControlMessage) {
        for a in msg.avps.iter().map(|a| &a.avp) {
            match a {
                Avp::CallingNumber(v) => s.calling_number = v.clone(),
                Avp::CalledNumber(v) => s.called_number = v.clone(),
                Avp::SubAddress(v) => s.sub_address = v.clone(),
                Avp::RemoteEndId(v) => s.remote_end_id = v.clone(),
                Avp::PrivateGroupId(v) => s.private_group_id = v.clone(),
                Avp::PseudowireType(t) => s.pw_type = Some(*t),
                Avp::AssignedCookie(c) => s.cookie_tx = c.clone(),
                Avp::L2SpecificSublayer(t) => s.peer_l2ss = *t,
                Avp::DataSequencing(q) => s.peer_seq = *q,
                Avp::SequencingRequired => s.peer_seq = 2,
                Avp::TxConnectSpeed(x) => s.tx_speed = Some(u64::from(*x)),
                Avp::RxConnectSpeed(x) => s.rx_speed = Some(u64::from(*x)),
                Avp::TxConnectSpeedV3(x) => s.tx_speed = Some(*x),
                Avp::RxConnectSpeedV3(x) => s.rx_speed = Some(*x),
                Avp::InitialReceivedLcpConfreq(v) => {
                    s.proxy.initial_received_confreq = Some(v.clone())
                }
                Avp::LastSentLcpConfreq(v) => s.proxy.last_sent_confreq = Some(v.clone()),
                Avp::LastReceivedLcpConfreq(v) => s.proxy.last_received_confreq = Some(v.clone()),
                Avp::ProxyAuthenType(t) => s.proxy.authen_type = Some(*t),
                Avp::ProxyAuthenName(v) => s.proxy.authen_name = Some(v.clone()),
                Avp::ProxyAuthenChallenge(v) => s.proxy.authen_challenge = Some(v.clone()),
                Avp::ProxyAuthenId(v) => s.proxy.authen_id = Some(*v),
                Avp::ProxyAuthenResponse(v) => s.proxy.authen_response = Some(v.clone()),
                _ => {}
            }
        }
    }

    /// The peer's ICRQ or OCRQ: we answer ICRP, or OCRP + OCCN (we are the LAC placing the
    /// call; sans-IO there is no dialling to wait for).
    fn on_call_request(&mut self, ctx: &mut Ctx<'_>, msg: &ControlMessage, mt: MessageType) {
        let peer_sid = msg.assigned_session_id().unwrap_or(0);
        let call = if mt == MessageType::Icrq {
            CallKind::Incoming
        } else {
            CallKind::Outgoing
        };
        // RFC 4951 §3.3: an ICRQ reusing the peer ID of an established session that is not
        // yet synchronised after a failover gets a CDN with our session ID, and our session
        // is cleared.
        let clash = self
            .sessions
            .values()
            .find(|s| {
                s.peer_id == peer_sid
                    && peer_sid != 0
                    && s.state == SessionState::Established
                    && !s.synced
            })
            .map(|s| s.id);
        if let Some(old) = clash {
            ctx.counters
                .count_failover("call request for an unsynchronised session");
            let rc = ResultCode::new(
                CdnResult::GENERAL_ERROR.0,
                ErrorCode::INVALID_SESSION_ID.0,
                "session ID in use by an unsynchronised session (RFC 4951 §3.3)",
            );
            return self.cdn(ctx, old, rc, None);
        }
        if self.sessions.len() >= self.cfg.limits.max_sessions_per_tunnel {
            let rc = ResultCode::new(
                CdnResult::NO_FACILITIES_TEMPORARY.0,
                ErrorCode::NO_RESOURCES.0,
                "session limit reached",
            );
            return self.refuse_call(ctx, peer_sid, rc);
        }
        let Some(id) = self.new_session(ctx, call, false) else {
            let rc = ResultCode::new(
                CdnResult::NO_FACILITIES_TEMPORARY.0,
                ErrorCode::NO_RESOURCES.0,
                "no session ID free",
            );
            return self.refuse_call(ctx, peer_sid, rc);
        };
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        s.peer_id = peer_sid;
        self.capture(&mut s, msg);
        if self.version == Version::V3 {
            let pw_ok = s
                .pw_type
                .is_some_and(|t| self.cfg.pseudowire.capabilities.contains(&t));
            let refuse = if !pw_ok {
                Some(ResultCode::new(
                    CdnResult::UNSUPPORTED_PW_TYPE.0,
                    ErrorCode::NO_ERROR.0,
                    "unsupported pseudowire type",
                ))
            } else if s.peer_seq > 0 && s.peer_l2ss == 0 {
                Some(ResultCode::new(
                    CdnResult::SEQUENCING_WITHOUT_L2SS.0,
                    ErrorCode::NO_ERROR.0,
                    "sequencing requires an L2-Specific Sublayer",
                ))
            } else {
                None
            };
            if let Some(rc) = refuse {
                self.sessions.insert(id, s);
                return self.cdn(ctx, id, rc, None);
            }
            // RFC 3931 §5.4.4: the sublayer is per direction; we follow the requester's
            // choice so both directions agree.
            s.our_l2ss = s.peer_l2ss;
        }
        let v3_avps = |t: &Self, s: &Session| {
            let mut v = vec![
                t.plain(Avp::LocalSessionId(s.id)),
                t.plain(Avp::RemoteSessionId(s.peer_id)),
                t.plain(Avp::CircuitStatus {
                    active: true,
                    new: true,
                }),
            ];
            v.extend(t.pw_avps(s.cookie_rx.clone(), s.our_l2ss, s.our_seq));
            v
        };
        let hdr = s.peer_id as u16;
        match (self.version, call) {
            (Version::V2, CallKind::Incoming) => {
                let a = vec![self.hide(
                    Avp::AssignedSessionId(id as u16),
                    self.cfg.hidden.session_id,
                )];
                self.send(ctx, hdr, MessageType::Icrp, a);
                s.state = SessionState::WaitConnect;
            }
            (Version::V3, CallKind::Incoming) => {
                let a = v3_avps(self, &s);
                self.send(ctx, 0, MessageType::Icrp, a);
                s.state = SessionState::WaitConnect;
            }
            (Version::V2, CallKind::Outgoing) => {
                let a = vec![self.hide(
                    Avp::AssignedSessionId(id as u16),
                    self.cfg.hidden.session_id,
                )];
                self.send(ctx, hdr, MessageType::Ocrp, a);
                let a = self.connected_avps(&s);
                self.send(ctx, hdr, MessageType::Occn, a);
                self.sessions.insert(id, s);
                return self.session_up(ctx, id);
            }
            (Version::V3, CallKind::Outgoing) => {
                let a = v3_avps(self, &s);
                self.send(ctx, 0, MessageType::Ocrp, a);
                let a = self.connected_avps(&s);
                self.send(ctx, 0, MessageType::Occn, a);
                self.sessions.insert(id, s);
                return self.session_up(ctx, id);
            }
        }
        self.sessions.insert(id, s);
    }

    /// AVPs of ICCN / OCCN.
    fn connected_avps(&self, s: &Session) -> Vec<AvpRepr> {
        let speed = s.params.connect_speed.unwrap_or(100_000_000);
        match self.version {
            Version::V2 => {
                let mut v = vec![
                    self.plain(Avp::TxConnectSpeed(
                        u32::try_from(speed).unwrap_or(u32::MAX),
                    )),
                    self.plain(Avp::FramingType(framing::SYNC)),
                ];
                let p = &s.params.proxy;
                let hp = self.cfg.hidden.proxy_authen;
                let mut push = |a: Option<Avp>, hide: bool| {
                    if let Some(a) = a {
                        v.push(self.hide(a, hide));
                    }
                };
                push(
                    p.initial_received_confreq
                        .clone()
                        .map(Avp::InitialReceivedLcpConfreq),
                    false,
                );
                push(
                    p.last_sent_confreq.clone().map(Avp::LastSentLcpConfreq),
                    false,
                );
                push(
                    p.last_received_confreq
                        .clone()
                        .map(Avp::LastReceivedLcpConfreq),
                    false,
                );
                push(p.authen_type.map(Avp::ProxyAuthenType), false);
                push(p.authen_name.clone().map(Avp::ProxyAuthenName), hp);
                push(
                    p.authen_challenge.clone().map(Avp::ProxyAuthenChallenge),
                    hp,
                );
                push(p.authen_id.map(Avp::ProxyAuthenId), false);
                push(p.authen_response.clone().map(Avp::ProxyAuthenResponse), hp);
                if self.cfg.sequencing_required {
                    v.push(self.plain(Avp::SequencingRequired));
                }
                v
            }
            Version::V3 => {
                let mut v = vec![
                    self.plain(Avp::LocalSessionId(s.id)),
                    self.plain(Avp::RemoteSessionId(s.peer_id)),
                    self.plain(Avp::TxConnectSpeedV3(speed)),
                    self.plain(Avp::CircuitStatus {
                        active: true,
                        new: false,
                    }),
                ];
                v.push(self.plain(Avp::L2SpecificSublayer(s.our_l2ss)));
                v.push(self.plain(Avp::DataSequencing(s.our_seq)));
                v
            }
        }
    }

    fn find_session(&self, hdr_session: u16, msg: &ControlMessage) -> Option<u32> {
        let ours = match self.version {
            Version::V2 => u32::from(hdr_session),
            Version::V3 => msg.remote_session_id().unwrap_or(0),
        };
        if ours != 0 && self.sessions.contains_key(&ours) {
            return Some(ours);
        }
        // A CDN before the peer learnt our ID: find it by the peer's ID.
        let theirs = msg.assigned_session_id()?;
        self.sessions
            .values()
            .find(|s| s.peer_id == theirs && s.peer_id != 0)
            .map(|s| s.id)
    }

    fn on_session_message(
        &mut self,
        ctx: &mut Ctx<'_>,
        hdr_session: u16,
        msg: &ControlMessage,
        mt: MessageType,
    ) {
        use MessageType as M;
        let Some(id) = self.find_session(hdr_session, msg) else {
            ctx.counters
                .count_invalid(format!("{} for unknown session", mt.short_name()));
            if mt != M::Cdn {
                let peer_sid = msg.assigned_session_id().unwrap_or(0);
                let rc = ResultCode::new(
                    CdnResult::GENERAL_ERROR.0,
                    ErrorCode::INVALID_SESSION_ID.0,
                    "unknown session",
                );
                if peer_sid != 0 {
                    self.refuse_call(ctx, peer_sid, rc);
                }
            }
            return;
        };
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        if mt == M::Cdn {
            let result = msg
                .result_code()
                .map(|(result, error, m)| ResultCode {
                    result,
                    error,
                    message: bytes_of(m),
                })
                .unwrap_or(ResultCode {
                    result: 0,
                    error: None,
                    message: String::new(),
                });
            let ppp_cause = msg.avps.iter().find_map(|a| match &a.avp {
                Avp::PppDisconnectCause {
                    code,
                    protocol,
                    direction,
                    message,
                } => Some(PppDisconnectCause {
                    code: *code,
                    protocol: *protocol,
                    direction: *direction,
                    message: bytes_of(message),
                }),
                _ => None,
            });
            self.forget_session(ctx, &s);
            self.fsq_outstanding.remove(&id);
            ctx.events.push(Event::SessionDown {
                tunnel: self.id,
                session: id,
                peer_session: s.peer_id,
                was_up: s.state == SessionState::Established,
                reason: SessionDownReason::Peer { result, ppp_cause },
            });
            self.free_session_id(ctx, id);
            return;
        }
        if matches!(mt, M::Wen | M::Sli) {
            ctx.events.push(Event::LinkInfo {
                tunnel: self.id,
                session: id,
                message: mt,
                avps: msg.avps.iter().skip(1).map(|a| a.avp.clone()).collect(),
            });
            self.sessions.insert(id, s);
            return;
        }
        let expected = matches!(
            (mt, s.initiator, s.call, s.state),
            (M::Icrp, true, CallKind::Incoming, SessionState::WaitReply)
                | (
                    M::Iccn,
                    false,
                    CallKind::Incoming,
                    SessionState::WaitConnect
                )
                | (M::Ocrp, true, CallKind::Outgoing, SessionState::WaitReply)
                | (M::Occn, true, CallKind::Outgoing, SessionState::WaitConnect)
        );
        if !expected {
            self.sessions.insert(id, s);
            ctx.counters
                .count_invalid(format!("{} out of state", mt.short_name()));
            let rc = match self.version {
                Version::V2 => ResultCode::new(
                    CdnResult::GENERAL_ERROR.0,
                    ErrorCode::NO_ERROR.0,
                    format!("{} unexpected", mt.short_name()),
                ),
                Version::V3 => ResultCode::new(
                    CdnResult::FSM_ERROR.0,
                    ErrorCode::NO_ERROR.0,
                    format!("{} unexpected", mt.short_name()),
                ),
            };
            return self.cdn(ctx, id, rc, None);
        }
        if matches!(mt, M::Icrp | M::Ocrp) {
            s.peer_id = msg.assigned_session_id().unwrap_or(0);
        }
        self.capture(&mut s, msg);
        if self.version == Version::V3 && s.peer_seq > 0 && s.peer_l2ss == 0 {
            self.sessions.insert(id, s);
            let rc = ResultCode::new(
                CdnResult::SEQUENCING_WITHOUT_L2SS.0,
                ErrorCode::NO_ERROR.0,
                "sequencing requires an L2-Specific Sublayer",
            );
            return self.cdn(ctx, id, rc, None);
        }
        match mt {
            M::Icrp => {
                let a = self.connected_avps(&s);
                let hdr = s.peer_id as u16;
                self.sessions.insert(id, s);
                // Persisted before the ICCN goes out (RFC 4951 §3.3).
                self.session_up(ctx, id);
                self.send(ctx, hdr, M::Iccn, a);
            }
            M::Ocrp => {
                s.state = SessionState::WaitConnect;
                self.sessions.insert(id, s);
            }
            _ => {
                self.sessions.insert(id, s);
                self.session_up(ctx, id);
            }
        }
    }

    fn session_up(&mut self, ctx: &mut Ctx<'_>, id: u32) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.state = SessionState::Established;
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        let up = self.up_of(s);
        self.persist_session(ctx, s);
        ctx.counters.sessions_up += 1;
        ctx.events.push(Event::SessionUp(Box::new(up)));
    }

    /// What the fast path and PPP need about a session.
    fn up_of(&self, s: &Session) -> SessionUp {
        let version = self.version;
        let (tid, peer, peer_tid) = (self.id, self.peer, self.peer_tunnel_id);
        let seq_required = self.cfg.sequencing_required;
        let (our_ids, peer_ids) = match version {
            Version::V2 => (
                SessionKey::V2 {
                    tunnel_id: tid as u16,
                    session_id: s.id as u16,
                },
                SessionKey::V2 {
                    tunnel_id: peer_tid as u16,
                    session_id: s.peer_id as u16,
                },
            ),
            Version::V3 => (v3_ids(s.id), v3_ids(s.peer_id)),
        };
        let (seq_rx, seq_tx) = match version {
            // RFC 2661 §4.4.4: the LAC's Sequencing Required asks the LNS to sequence.
            Version::V2 => (
                seq_required || s.peer_seq > 0,
                seq_required || s.peer_seq > 0,
            ),
            Version::V3 => (s.our_seq > 0, s.peer_seq > 0),
        };
        let (calling, called, sub) = if s.initiator {
            (
                s.params.calling_number.clone(),
                s.params.called_number.clone(),
                s.params.sub_address.clone(),
            )
        } else {
            (
                s.calling_number.clone(),
                s.called_number.clone(),
                s.sub_address.clone(),
            )
        };
        SessionUp {
            tunnel: tid,
            session: s.id,
            version,
            peer,
            peer_tunnel: peer_tid,
            peer_session: s.peer_id,
            our_ids,
            peer_ids,
            cookie_rx: Cookie::new(&s.cookie_rx).unwrap_or(Cookie::NONE),
            cookie_tx: Cookie::new(&s.cookie_tx).unwrap_or(Cookie::NONE),
            sublayer_rx: version == Version::V3 && s.our_l2ss == Sublayer::Default.value(),
            sublayer_tx: version == Version::V3 && s.peer_l2ss == Sublayer::Default.value(),
            sequencing_rx: seq_rx,
            sequencing_tx: seq_tx,
            pw_type: s.pw_type,
            call: s.call,
            initiator: s.initiator,
            calling_number: calling,
            called_number: called,
            sub_address: sub,
            remote_end_id: if s.initiator {
                s.params.remote_end_id.clone()
            } else {
                s.remote_end_id.clone()
            },
            private_group_id: s.private_group_id.clone(),
            proxy: s.proxy.clone(),
            tx_connect_speed: s.tx_speed,
            rx_connect_speed: s.rx_speed,
        }
    }

    fn cdn_avps(&self, ours: u32, theirs: u32, rc: &ResultCode) -> Vec<AvpRepr> {
        let mut v = vec![self.plain(rc.avp())];
        match self.version {
            Version::V2 => v.push(self.plain(Avp::AssignedSessionId(ours as u16))),
            Version::V3 => {
                v.push(self.plain(Avp::LocalSessionId(ours)));
                v.push(self.plain(Avp::RemoteSessionId(theirs)));
            }
        }
        v
    }

    /// Sends a CDN for a call we never created (limits, unknown session): with a throw-away
    /// session ID of ours, as the Assigned Session ID must not be 0.
    fn refuse_call(&mut self, ctx: &mut Ctx<'_>, peer_sid: u32, rc: ResultCode) {
        let Some(tmp) = self.alloc_session_id(ctx) else {
            return;
        };
        let avps = self.cdn_avps(tmp, peer_sid, &rc);
        let hdr = if self.version == Version::V2 {
            peer_sid as u16
        } else {
            0
        };
        self.send(ctx, hdr, MessageType::Cdn, avps);
        self.free_session_id(ctx, tmp);
    }

    fn cdn_for_invalid(
        &mut self,
        ctx: &mut Ctx<'_>,
        hdr_session: u16,
        msg: Option<ControlMessage>,
        rc: ResultCode,
    ) {
        let found = msg.as_ref().and_then(|m| self.find_session(hdr_session, m));
        match (found, msg) {
            (Some(id), _) => self.cdn(ctx, id, rc, None),
            (None, Some(m)) => {
                if let Some(peer) = m.assigned_session_id() {
                    self.refuse_call(ctx, peer, rc);
                }
            }
            (None, None) => {}
        }
    }

    /// Sends a CDN for one of our sessions and forgets it.
    pub fn cdn(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u32,
        rc: ResultCode,
        ppp_cause: Option<PppDisconnectCause>,
    ) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        let mut avps = self.cdn_avps(s.id, s.peer_id, &rc);
        if let Some(c) = ppp_cause {
            avps.push(self.plain(Avp::PppDisconnectCause {
                code: c.code,
                protocol: c.protocol,
                direction: c.direction,
                message: c.message.into_bytes(),
            }));
        }
        let hdr = if self.version == Version::V2 {
            s.peer_id as u16
        } else {
            0
        };
        self.send(ctx, hdr, MessageType::Cdn, avps);
        self.forget_session(ctx, &s);
        self.fsq_outstanding.remove(&id);
        ctx.events.push(Event::SessionDown {
            tunnel: self.id,
            session: id,
            peer_session: s.peer_id,
            was_up: s.state == SessionState::Established,
            reason: SessionDownReason::Local(rc),
        });
        self.free_session_id(ctx, id);
    }

    /// Sends an SLI for a session: ACCM (v2) or Circuit Status (v3).
    pub fn send_sli(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u32,
        accm: Option<(u32, u32)>,
        circuit_active: Option<bool>,
    ) -> Result<(), super::L2tpError> {
        let s = self.sessions.get(&id).ok_or(super::L2tpError::NoSession {
            tunnel: self.id,
            session: id,
        })?;
        let (sid, pid) = (s.id, s.peer_id);
        let mut avps = Vec::new();
        match self.version {
            Version::V2 => {
                let (send, receive) = accm.unwrap_or((0, 0xffff_ffff));
                avps.push(self.plain(Avp::Accm { send, receive }));
            }
            Version::V3 => {
                avps.push(self.plain(Avp::LocalSessionId(sid)));
                avps.push(self.plain(Avp::RemoteSessionId(pid)));
                avps.push(self.plain(Avp::CircuitStatus {
                    active: circuit_active.unwrap_or(true),
                    new: false,
                }));
            }
        }
        let hdr = if self.version == Version::V2 {
            pid as u16
        } else {
            0
        };
        self.send(ctx, hdr, MessageType::Sli, avps);
        Ok(())
    }

    fn all_sessions_down(&mut self, ctx: &mut Ctx<'_>) {
        let mut ids: Vec<u32> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(s) = self.sessions.remove(&id) {
                ctx.events.push(Event::SessionDown {
                    tunnel: self.id,
                    session: id,
                    peer_session: s.peer_id,
                    was_up: s.state == SessionState::Established,
                    reason: SessionDownReason::TunnelDown,
                });
                self.free_session_id(ctx, id);
            }
        }
    }

    /// Frees what the tunnel holds in shared allocators (called by the registry on removal).
    pub fn release(&mut self, ctx: &mut Ctx<'_>) {
        self.all_sessions_down(ctx);
    }
}

/// The parse context of a message to this node.
fn parse_ctx(secret: Option<&[u8]>) -> l2xdp_wire::l2tp::message::ParseContext<'_> {
    l2xdp_wire::l2tp::message::ParseContext { secret }
}
