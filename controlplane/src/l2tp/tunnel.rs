//! One control connection and its sessions.
//!
//! Tunnel states (RFC 2661 §7.2, RFC 3931 §7.3): idle → wait-ctl-reply (initiator, SCCRQ
//! sent) or wait-ctl-conn (responder, SCCRP sent) → established; then closing (StopCCN sent or
//! received: the state is kept for one full retransmission cycle to acknowledge it, RFC 2661
//! §5.7) → finished. Session states (RFC 2661 §7.4, RFC 3931 §7.4): wait-reply (we sent
//! ICRQ/OCRQ), wait-connect (we sent ICRP, or OCRQ's reply arrived), established.

use std::collections::HashMap;
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
    /// Registry bookkeeping: the deadline pushed on its heap.
    pub(crate) scheduled: Option<Instant>,
}

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
        if !was_closing {
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
        if let Some(f) = self.failover_avp() {
            v.push(f);
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
        let announce = self.state != TunnelState::Idle || self.initiator;
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
        let announce = self.state != TunnelState::Idle;
        self.all_sessions_down(ctx);
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
            M::Hello | M::Ack | M::Fsq | M::Fsr | M::Unknown(_) => {}
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
                self.send(ctx, hdr, M::Iccn, a);
                self.sessions.insert(id, s);
                self.session_up(ctx, id);
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
        let version = self.version;
        let (tid, peer, peer_tid) = (self.id, self.peer, self.peer_tunnel_id);
        let seq_required = self.cfg.sequencing_required;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.state = SessionState::Established;
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
        let up = SessionUp {
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
        };
        ctx.counters.sessions_up += 1;
        ctx.events.push(Event::SessionUp(Box::new(up)));
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
