//! The sessions of a tunnel (RFC 2661 §7.4, RFC 3931 §7.4): the session table, the session
//! state machine and the messages that drive it.
//!
//! Session states: wait-reply (we sent ICRQ/OCRQ), wait-connect (we sent ICRP, or OCRQ's reply
//! arrived), established. A session is created by [`Tunnel::open_session`] (we send ICRQ or
//! OCRQ) or by the peer's ICRQ/OCRQ (`on_call_request`); ICRP/ICCN, OCRP/OCCN bring it up
//! (`on_session_message`, `session_up`), and CDN takes it down ([`Tunnel::cdn`]). `up_of`
//! builds what the fast path and PPP need ([`SessionUp`]).

use l2xdp_wire::datapath::SessionKey;
use l2xdp_wire::l2tp::avp::{bearer, framing, Avp, AvpRepr};
use l2xdp_wire::l2tp::codes::{CdnResult, ErrorCode};
use l2xdp_wire::l2tp::header::{Cookie, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};

use crate::l2tp::config::Sublayer;
use crate::l2tp::{
    CallKind, CallParams, Event, L2tpError, PppDisconnectCause, ProxyValues, ResultCode,
    SessionDownReason, SessionUp,
};

use super::{bytes_of, result_of, Ctx, Tunnel, TunnelState};

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

#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) id: u32,
    pub(super) peer_id: u32,
    pub(super) state: SessionState,
    pub(super) call: CallKind,
    pub(super) initiator: bool,
    /// What we said opening the call (we sent the ICRQ/OCRQ); `None` when the peer opened
    /// it (its values are the captured ones below): most sessions of an LNS, so not carried.
    pub(super) params: Option<Box<CallParams>>,
    pub(super) cookie_rx: Box<[u8]>,
    pub(super) cookie_tx: Box<[u8]>,
    pub(super) our_l2ss: u16,
    pub(super) peer_l2ss: u16,
    pub(super) our_seq: u16,
    pub(super) peer_seq: u16,
    pub(super) pw_type: Option<u16>,
    // Captured from the peer.
    pub(super) calling_number: Box<[u8]>,
    pub(super) called_number: Box<[u8]>,
    pub(super) sub_address: Box<[u8]>,
    pub(super) remote_end_id: Box<[u8]>,
    pub(super) private_group_id: Box<[u8]>,
    /// Boxed: most LACs send no proxy LCP or authentication, and the registry holds a
    /// million sessions.
    pub(super) proxy: Option<Box<ProxyValues>>,
    pub(super) tx_speed: Option<u64>,
    pub(super) rx_speed: Option<u64>,
    /// RFC 4951 §3.3: confirmed by FSQ/FSR since the last failover (true when none happened).
    pub(super) synced: bool,
    /// RFC 4951 §3.3: paired with another session ID at the peer; to be queried.
    pub(super) stale: bool,
    /// The caller's data, persisted with the session.
    pub(super) app: Box<[u8]>,
}

/// [`Session::params`] of a session the peer opened.
static NO_PARAMS: CallParams = CallParams {
    kind: CallKind::Incoming,
    calling_number: Vec::new(),
    called_number: Vec::new(),
    sub_address: Vec::new(),
    remote_end_id: Vec::new(),
    pw_type: None,
    proxy: ProxyValues {
        initial_received_confreq: None,
        last_sent_confreq: None,
        last_received_confreq: None,
        authen_type: None,
        authen_name: None,
        authen_challenge: None,
        authen_id: None,
        authen_response: None,
    },
    connect_speed: None,
};

impl Session {
    /// What we said opening the call (empty when the peer opened it).
    pub(super) fn params(&self) -> &CallParams {
        self.params.as_deref().unwrap_or(&NO_PARAMS)
    }
    /// The proxy values captured from the peer, created on the first one (RFC 2661 §4.4.5).
    fn proxy_mut(&mut self) -> &mut ProxyValues {
        self.proxy.get_or_insert_with(Box::default)
    }
    /// The proxy values captured from the peer (empty when it sent none).
    pub(super) fn proxy_values(&self) -> ProxyValues {
        self.proxy.as_deref().cloned().unwrap_or_default()
    }
}

fn v3_ids(id: u32) -> SessionKey {
    SessionKey::V3 { session_id: id }
}

impl Tunnel {
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
    // Sessions

    /// A random free session id, preferring those the fast path finds in one lookup.
    fn alloc_session_id(&mut self, ctx: &mut Ctx<'_>) -> Option<u32> {
        let hint = ctx.id_hint;
        let tunnel_id = self.id as u16;
        let preferred = |key: SessionKey| hint.is_none_or(|h| h.preferred(&key));
        match self.version {
            Version::V2 => self.v2_sessions.alloc_preferring(ctx.rng, |id| {
                preferred(SessionKey::V2 {
                    tunnel_id,
                    session_id: id as u16,
                })
            }),
            Version::V3 => ctx
                .v3_sessions
                .alloc_preferring(ctx.rng, |id| preferred(SessionKey::V3 { session_id: id })),
        }
    }

    pub(super) fn free_session_id(&mut self, ctx: &mut Ctx<'_>, id: u32) {
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
            params: None,
            cookie_rx: if self.version == Version::V3 {
                self.random_cookie(ctx).into()
            } else {
                Box::default()
            },
            cookie_tx: Box::default(),
            our_l2ss: pw.sublayer.value(),
            peer_l2ss: 0,
            our_seq: pw.data_sequencing,
            peer_seq: 0,
            pw_type: None,
            calling_number: Box::default(),
            called_number: Box::default(),
            sub_address: Box::default(),
            remote_end_id: Box::default(),
            private_group_id: Box::default(),
            proxy: None,
            tx_speed: None,
            rx_speed: None,
            synced: true,
            stale: false,
            app: Box::default(),
        };
        self.sessions.insert(id, s);
        Some(id)
    }

    /// Opens a session (we send ICRQ or OCRQ). Returns our session ID.
    pub fn open_session(
        &mut self,
        ctx: &mut Ctx<'_>,
        params: CallParams,
    ) -> Result<u32, L2tpError> {
        if self.state != TunnelState::Established {
            return Err(L2tpError::NotEstablished(self.id));
        }
        if self.recovering {
            return Err(L2tpError::Recovering(self.id));
        }
        if self.sessions.len() >= self.cfg.limits.max_sessions_per_tunnel {
            return Err(L2tpError::Limit("sessions per tunnel"));
        }
        let id = self
            .new_session(ctx, params.kind, true)
            .ok_or(L2tpError::Limit("session IDs"))?;
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
                    .ok_or(L2tpError::Limit("session"))?;
                s.pw_type = Some(pw_type);
                let (cookie, l2ss, seq) = (s.cookie_rx.to_vec(), s.our_l2ss, s.our_seq);
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
            s.params = Some(Box::new(params));
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
                Avp::CallingNumber(v) => s.calling_number = v.as_slice().into(),
                Avp::CalledNumber(v) => s.called_number = v.as_slice().into(),
                Avp::SubAddress(v) => s.sub_address = v.as_slice().into(),
                Avp::RemoteEndId(v) => s.remote_end_id = v.as_slice().into(),
                Avp::PrivateGroupId(v) => s.private_group_id = v.as_slice().into(),
                Avp::PseudowireType(t) => s.pw_type = Some(*t),
                Avp::AssignedCookie(c) => s.cookie_tx = c.as_slice().into(),
                Avp::L2SpecificSublayer(t) => s.peer_l2ss = *t,
                Avp::DataSequencing(q) => s.peer_seq = *q,
                Avp::SequencingRequired => s.peer_seq = 2,
                Avp::TxConnectSpeed(x) => s.tx_speed = Some(u64::from(*x)),
                Avp::RxConnectSpeed(x) => s.rx_speed = Some(u64::from(*x)),
                Avp::TxConnectSpeedV3(x) => s.tx_speed = Some(*x),
                Avp::RxConnectSpeedV3(x) => s.rx_speed = Some(*x),
                Avp::InitialReceivedLcpConfreq(v) => {
                    s.proxy_mut().initial_received_confreq = Some(v.clone())
                }
                Avp::LastSentLcpConfreq(v) => s.proxy_mut().last_sent_confreq = Some(v.clone()),
                Avp::LastReceivedLcpConfreq(v) => {
                    s.proxy_mut().last_received_confreq = Some(v.clone())
                }
                Avp::ProxyAuthenType(t) => s.proxy_mut().authen_type = Some(*t),
                Avp::ProxyAuthenName(v) => s.proxy_mut().authen_name = Some(v.clone()),
                Avp::ProxyAuthenChallenge(v) => s.proxy_mut().authen_challenge = Some(v.clone()),
                Avp::ProxyAuthenId(v) => s.proxy_mut().authen_id = Some(*v),
                Avp::ProxyAuthenResponse(v) => s.proxy_mut().authen_response = Some(v.clone()),
                _ => {}
            }
        }
    }

    /// The peer's ICRQ or OCRQ: we answer ICRP, or OCRP + OCCN (we are the LAC placing the
    /// call; sans-IO there is no dialling to wait for).
    pub(super) fn on_call_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &ControlMessage,
        mt: MessageType,
    ) {
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
            v.extend(t.pw_avps(s.cookie_rx.to_vec(), s.our_l2ss, s.our_seq));
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
        let speed = s.params().connect_speed.unwrap_or(100_000_000);
        match self.version {
            Version::V2 => {
                let mut v = vec![
                    self.plain(Avp::TxConnectSpeed(
                        u32::try_from(speed).unwrap_or(u32::MAX),
                    )),
                    self.plain(Avp::FramingType(framing::SYNC)),
                ];
                let p = &s.params().proxy;
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

    pub(super) fn on_session_message(
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
            let result = result_of(msg);
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
            self.session_gone(ctx, id, &s, SessionDownReason::Peer { result, ppp_cause });
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
    pub(super) fn up_of(&self, s: &Session) -> SessionUp {
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
                s.params().calling_number.clone(),
                s.params().called_number.clone(),
                s.params().sub_address.clone(),
            )
        } else {
            (
                s.calling_number.to_vec(),
                s.called_number.to_vec(),
                s.sub_address.to_vec(),
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
                s.params().remote_end_id.clone()
            } else {
                s.remote_end_id.to_vec()
            },
            private_group_id: s.private_group_id.to_vec(),
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

    pub(super) fn cdn_for_invalid(
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
                    let call_request = matches!(
                        m.message_type(),
                        Some(MessageType::Icrq | MessageType::Ocrq)
                    );
                    if peer == 0
                        && call_request
                        && self.version == Version::V2
                        && self.sessions.is_empty()
                    {
                        // RFC 2661 §4.4.3: the Assigned Session ID is non-zero. A peer that
                        // assigned 0 (xl2tpd 1.3.18 now and then: its call IDs are random,
                        // unchecked) cannot match a CDN: its Session ID would be 0, the
                        // tunnel's (§3.1, p. 43), and it hangs with a tunnel and no session.
                        // Alone on its tunnel the call is refused with a StopCCN, which it
                        // does handle: nothing else is lost, and the LAC redials.
                        tracing::info!(
                            tunnel = self.id,
                            "call request with Assigned Session ID 0, alone on its tunnel: StopCCN"
                        );
                        return self.stop(ctx, rc);
                    }
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
        self.session_gone(ctx, id, &s, SessionDownReason::Local(rc));
    }

    /// Session `id` (`s`, out of the table) is gone — CDN sent or received, or cleared
    /// silently (RFC 4951 §3.3): forgotten by the state store and the FSQ round, announced,
    /// its ID freed.
    pub(super) fn session_gone(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: u32,
        s: &Session,
        reason: SessionDownReason,
    ) {
        self.forget_session(ctx, s);
        self.fsq_outstanding.remove(&id);
        ctx.events.push(Event::SessionDown {
            tunnel: self.id,
            session: id,
            peer_session: s.peer_id,
            was_up: s.state == SessionState::Established,
            reason,
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
    ) -> Result<(), L2tpError> {
        let s = self.sessions.get(&id).ok_or(L2tpError::NoSession {
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

    pub(super) fn all_sessions_down(&mut self, ctx: &mut Ctx<'_>) {
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
}

/// Issue 16 item 6: the registry holds a million sessions, inline in its tables; a field added
/// inline shows here (size on a 64-bit target).
#[test]
fn session_stays_small() {
    assert!(
        std::mem::size_of::<Session>() <= 208,
        "{}",
        std::mem::size_of::<Session>()
    );
}
