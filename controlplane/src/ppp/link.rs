//! One PPP link (RFC 1661 §3.2 phases) in either role, combining LCP, authentication and the
//! NCPs.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use l2xdp_wire::ppp::cp::parse_options;
use l2xdp_wire::ppp::frame::{self, protocol};
use l2xdp_wire::ppp::{
    chap_md5_verify, ChapBody, ChapPacket, CpBody, IpcpPacket, Ipv6cpPacket, LcpOption, LcpPacket,
    PapBody, PapPacket, PppBody,
};

use super::auth::{ct_eq, AuthResult, ClientAuth, ServerAuth};
use super::config::{AuthMethod, PppConfig, MAX_DURATION};
use super::fsm::{Actions, FsmConfig, FsmEvent, State};
use super::ipcp::IpcpNeg;
use super::ipv6cp::Ipv6cpNeg;
use super::lcp::LcpNeg;
use super::negotiate::{Cp, Io, Negotiator, Outcome, Verdict};
use super::pool::Ipv4Pool;
use super::users::Credentials;
use super::{Counters, DownReason, Event, LinkState, LinkUp, Phase, Rng, Role};

/// Proxy Authen Type values (RFC 2661 §4.4.5, §10.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u16)]
pub enum ProxyAuthType {
    /// 1: textual username/password.
    Text = 1,
    /// 2: PPP CHAP.
    Chap = 2,
    /// 3: PPP PAP.
    Pap = 3,
    /// 4: no authentication.
    None = 4,
    /// 5: MS-CHAPv1.
    MsChapV1 = 5,
}

impl ProxyAuthType {
    /// The type for an AVP value, if defined.
    pub fn from_value(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Text,
            2 => Self::Chap,
            3 => Self::Pap,
            4 => Self::None,
            5 => Self::MsChapV1,
            _ => return None,
        })
    }
}

/// What a LAC proxied in its ICCN (RFC 2661 §4.4.5), as plain values: the AVP values with the
/// AVP headers removed (and unhidden).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    /// Initial Received LCP CONFREQ (type 26): the options of the peer's first request.
    pub initial_received_lcp: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ (type 27): the options the LAC requested (and the peer acked).
    pub last_sent_lcp: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ (type 28): the options of the peer's request the LAC acked.
    pub last_received_lcp: Option<Vec<u8>>,
    /// Proxy Authen Type (type 29), see [`ProxyAuthType`].
    pub authen_type: Option<u16>,
    /// Proxy Authen Name (type 30).
    pub authen_name: Option<Vec<u8>>,
    /// Proxy Authen Challenge (type 31).
    pub authen_challenge: Option<Vec<u8>>,
    /// Proxy Authen ID (type 32).
    pub authen_id: Option<u16>,
    /// Proxy Authen Response (type 33): the CHAP response, or the PAP password.
    pub authen_response: Option<Vec<u8>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("initial_received_lcp", &self.initial_received_lcp)
            .field("last_sent_lcp", &self.last_sent_lcp)
            .field("last_received_lcp", &self.last_received_lcp)
            .field("authen_type", &self.authen_type)
            .field("authen_name", &self.authen_name)
            .field("authen_id", &self.authen_id)
            .field(
                "authen_response",
                &self
                    .authen_response
                    .as_ref()
                    .map(|r| format!("<{} bytes>", r.len())),
            )
            .finish_non_exhaustive()
    }
}

/// The client's own name and password.
struct ClientSecret {
    user: Vec<u8>,
    password: Vec<u8>,
}

const IPCP_GONE: u8 = 1;
const IPV6CP_GONE: u8 = 2;

#[derive(Clone, Copy)]
enum Ncp {
    Ipcp,
    Ipv6cp,
}

/// One PPP link: see the [module documentation](super).
pub struct Link {
    role: Role,
    config: Arc<PppConfig>,
    phase: Phase,
    lcp: Cp<LcpNeg>,
    ipcp: Option<Cp<IpcpNeg>>,
    ipv6cp: Option<Cp<Ipv6cpNeg>>,
    /// NCPs that finished or were Protocol-Rejected (IPCP_GONE, IPV6CP_GONE).
    ncp_gone: u8,
    server_auth: ServerAuth,
    client_auth: ClientAuth,
    creds: Option<Arc<dyn Credentials>>,
    secret: Option<Box<ClientSecret>>,
    pool: Option<Arc<Mutex<Ipv4Pool>>>,
    /// The address leased from the pool (released when the link dies).
    lease: Option<Ipv4Addr>,
    user: Option<String>,
    fixed_ipv4: Option<Ipv4Addr>,
    up: bool,
    echo_next: Option<Instant>,
    echo_outstanding: u32,
    echo_id: u8,
    echo_rejected: bool,
    aux_id: u8,
    io: Io,
    events: VecDeque<Event>,
    rng: Rng,
    reason: Option<DownReason>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("ipcp", &self.ipcp_state())
            .field("ipv6cp", &self.ipv6cp_state())
            .field("user", &self.user)
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

impl Link {
    fn build(
        role: Role,
        config: Arc<PppConfig>,
        creds: Option<Arc<dyn Credentials>>,
        pool: Option<Arc<Mutex<Ipv4Pool>>>,
        secret: Option<Box<ClientSecret>>,
        seed: u64,
    ) -> Link {
        let mut rng = Rng::new(seed);
        let fc = FsmConfig {
            restart: config.restart(),
            max_terminate: config.max_terminate.max(1),
            max_configure: config.max_configure.max(1),
            max_failure: config.max_failure,
        };
        let lcp = Cp::new(
            fc,
            LcpNeg::new(role, &config, rng.fork()),
            rng.next_u64() as u8,
        );
        let ipcp = config.ipcp.enabled.then(|| {
            let c = &config.ipcp;
            Cp::new(
                fc,
                IpcpNeg::new(role, c.local_address, &c.dns, c.request_dns),
                rng.next_u64() as u8,
            )
        });
        let ipv6cp = config.ipv6cp.enabled.then(|| {
            Cp::new(
                fc,
                Ipv6cpNeg::new(config.ipv6cp.interface_id, rng.fork()),
                rng.next_u64() as u8,
            )
        });
        let echo_id = rng.next_u64() as u8;
        let aux_id = rng.next_u64() as u8;
        Link {
            role,
            config,
            phase: Phase::Dead,
            lcp,
            ipcp,
            ipv6cp,
            ncp_gone: 0,
            server_auth: ServerAuth::default(),
            client_auth: ClientAuth::default(),
            creds,
            secret,
            pool,
            lease: None,
            user: None,
            fixed_ipv4: None,
            up: false,
            echo_next: None,
            echo_outstanding: 0,
            echo_id,
            echo_rejected: false,
            aux_id,
            io: Io {
                peer_mru: super::DEFAULT_MRU,
                ..Io::default()
            },
            events: VecDeque::new(),
            rng,
            reason: None,
        }
    }

    /// An LNS-side link for a session that just came up: sends the first LCP
    /// Configure-Request at once. `pool` hands out subscriber addresses (none: subscribers
    /// bring their own or have fixed ones). `seed` must come from the OS random source.
    pub fn server(
        config: Arc<PppConfig>,
        credentials: Arc<dyn Credentials>,
        pool: Option<Arc<Mutex<Ipv4Pool>>>,
        seed: u64,
        now: Instant,
    ) -> Link {
        let mut l = Self::build(Role::Server, config, Some(credentials), pool, None, seed);
        l.start(now);
        l
    }

    /// An LNS-side link for a session whose LAC proxied LCP and/or authentication
    /// (RFC 2661 §4.4.5). When the proxied LCP (Last Sent and Last Received CONFREQ) is
    /// acceptable LCP is taken as Opened without negotiating; then a proxied PAP or CHAP
    /// exchange of the negotiated protocol is verified (and answered with Ack/Success or
    /// Nak/Failure with the proxied ID), or, when absent or of another type, we authenticate
    /// ourselves. When the proxied LCP does not fit, LCP is negotiated afresh (and then
    /// authentication too), as RFC 2661 allows.
    pub fn server_with_proxy(
        config: Arc<PppConfig>,
        credentials: Arc<dyn Credentials>,
        pool: Option<Arc<Mutex<Ipv4Pool>>>,
        proxy: &Proxy,
        seed: u64,
        now: Instant,
    ) -> Link {
        let mut l = Self::build(Role::Server, config, Some(credentials), pool, None, seed);
        if !l.try_proxy(proxy, now) {
            l.start(now);
        }
        l
    }

    /// A client-side link (the subscriber emulator) that authenticates as `user` with
    /// `password` (the PAP password or CHAP secret). Sends its first LCP Configure-Request at
    /// once.
    pub fn client(
        config: Arc<PppConfig>,
        user: &str,
        password: &[u8],
        seed: u64,
        now: Instant,
    ) -> Link {
        let secret = Box::new(ClientSecret {
            user: user.as_bytes().to_vec(),
            password: password.to_vec(),
        });
        let mut l = Self::build(Role::Client, config, None, None, Some(secret), seed);
        l.start(now);
        l
    }

    /// An LNS-side link rebuilt from what a link of a previous control plane agreed
    /// ([`Link::state`]), for a session recovered after a restart (RFC 4951): LCP and the NCPs
    /// that were open are Opened, the phase is Network and nothing is sent. It answers
    /// Echo-Requests with the saved Magic-Number, sends its own, and handles Terminate and a
    /// late renegotiation as any Up link does. The subscriber's address is reserved in `pool`
    /// again (when it is one of the pool's); `Err(AddressInUse)` when it is leased already.
    /// No [`Event::Up`] is queued: the caller restores what depends on it from `saved`.
    pub fn restore_server(
        config: Arc<PppConfig>,
        credentials: Arc<dyn Credentials>,
        pool: Option<Arc<Mutex<Ipv4Pool>>>,
        saved: &LinkState,
        seed: u64,
        now: Instant,
    ) -> Result<Link, DownReason> {
        let mut l = Self::build(Role::Server, config, Some(credentials), pool, None, seed);
        if let (Some(a), Some(pool)) = (saved.peer_ipv4, &l.pool) {
            let mut p = pool.lock().map_err(|_| DownReason::PoolExhausted)?;
            if p.contains(a) {
                if !p.reserve(a) {
                    return Err(DownReason::AddressInUse);
                }
                l.lease = Some(a);
            }
        }
        l.restore(saved, now);
        Ok(l)
    }

    /// A client-side link rebuilt from [`Link::state`] (see [`Link::restore_server`]); it
    /// authenticates as `user` with `password` if LCP is renegotiated later.
    pub fn restore_client(
        config: Arc<PppConfig>,
        user: &str,
        password: &[u8],
        saved: &LinkState,
        seed: u64,
        now: Instant,
    ) -> Link {
        let secret = Box::new(ClientSecret {
            user: user.as_bytes().to_vec(),
            password: password.to_vec(),
        });
        let mut l = Self::build(Role::Client, config, None, None, Some(secret), seed);
        l.restore(saved, now);
        l
    }

    fn restore(&mut self, saved: &LinkState, now: Instant) {
        self.user = saved.user.clone();
        self.lcp.neg.restore(saved);
        let ours = self.lcp.neg.request();
        let _ = self.lcp.event(FsmEvent::Up, now, &mut self.io);
        self.lcp.force_opened(ours);
        self.io.peer_mru = saved.peer_mru;
        self.phase = Phase::Network;
        self.ncp_gone = 0;
        let ipcp_open = saved.local_ipv4.is_some() || saved.peer_ipv4.is_some();
        match self.ipcp.as_mut() {
            Some(cp) if ipcp_open => {
                cp.neg.restore(saved);
                let req = cp.neg.request();
                let _ = cp.event(FsmEvent::Up, now, &mut self.io);
                cp.force_opened(req);
            }
            _ => self.ncp_gone |= IPCP_GONE,
        }
        match (self.ipv6cp.as_mut(), saved.ipv6) {
            (Some(cp), Some((ours, peer))) => {
                cp.neg.ours = ours;
                cp.neg.peer = Some(peer);
                let req = cp.neg.request();
                let _ = cp.event(FsmEvent::Up, now, &mut self.io);
                cp.force_opened(req);
            }
            _ => self.ncp_gone |= IPV6CP_GONE,
        }
        // Nothing of the above may reach the peer: it is Up already.
        self.io.frames.clear();
        self.up = true;
        self.echo_outstanding = 0;
        self.echo_next = (!self.config.echo_interval.is_zero())
            .then(|| now + self.config.echo_interval.min(MAX_DURATION));
    }

    /// What the link agreed, while it is up: persist it to restore the link after a restart
    /// ([`Link::restore_server`]).
    pub fn state(&self) -> Option<LinkState> {
        if !self.up {
            return None;
        }
        let up = self.current_up();
        Some(LinkState {
            user: up.user,
            local_ipv4: up.local_ipv4,
            peer_ipv4: up.peer_ipv4,
            dns: up.dns,
            ipv6: up.ipv6,
            local_magic: up.local_magic,
            peer_magic: up.peer_magic,
            local_mru: up.local_mru,
            peer_mru: up.peer_mru,
            pfc: up.pfc,
            acfc: up.acfc,
            auth: self.lcp.neg.auth,
        })
    }

    fn start(&mut self, now: Instant) {
        self.phase = Phase::Establish;
        let o = self.lcp.event(FsmEvent::Up, now, &mut self.io);
        self.on_lcp(o, now);
        let o = self.lcp.event(FsmEvent::Open, now, &mut self.io);
        self.on_lcp(o, now);
    }

    /// This link's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current phase (RFC 1661 §3.2).
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The LCP automaton's state.
    pub fn lcp_state(&self) -> State {
        self.lcp.state()
    }

    /// The IPCP automaton's state (`None`: IPCP not configured).
    pub fn ipcp_state(&self) -> Option<State> {
        self.ipcp.as_ref().map(Cp::state)
    }

    /// The IPv6CP automaton's state (`None`: IPv6CP not configured).
    pub fn ipv6cp_state(&self) -> Option<State> {
        self.ipv6cp.as_ref().map(Cp::state)
    }

    /// Whether the network layer is up (the last `Up` is current).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether the link is dead (the `Down` event was queued).
    pub fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }

    /// The authenticated user.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.io.counters
    }

    /// The next frame to send: a whole PPP frame (LCP with full framing) for the payload of
    /// an L2TPv2 data message.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let f = self.io.frames.pop_front()?;
        self.io.counters.frames_out += 1;
        Some(f)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Dead {
            return None;
        }
        [
            self.lcp.fsm.deadline(),
            self.ipcp.as_ref().and_then(|c| c.fsm.deadline()),
            self.ipv6cp.as_ref().and_then(|c| c.fsm.deadline()),
            self.server_auth.deadline,
            self.client_auth.deadline,
            self.echo_next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Closes the link: LCP Terminate-Request (Max-Terminate times), then `Down { reason }`.
    pub fn close(&mut self, reason: DownReason, now: Instant) {
        if matches!(self.phase, Phase::Dead) {
            return;
        }
        self.reason.get_or_insert(reason);
        self.lcp.term_data = reason.to_string().into_bytes();
        self.phase = Phase::Terminate;
        let o = self.lcp.event(FsmEvent::Close, now, &mut self.io);
        self.on_lcp(o, now);
        if matches!(
            self.lcp.state(),
            State::Initial | State::Starting | State::Closed | State::Stopped
        ) {
            self.finish(reason);
        }
    }

    /// The L2TP session carrying the link is gone: the link dies at once, nothing is sent.
    pub fn lower_down(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        self.reason.get_or_insert(DownReason::LowerLayerDown);
        let _ = self.lcp.event(FsmEvent::Down, now, &mut self.io);
        self.io.frames.clear();
        self.finish(DownReason::LowerLayerDown);
    }

    /// Handles one received PPP frame: optional `ff 03`, Protocol, Information. Never panics;
    /// malformed frames are counted and dropped.
    pub fn handle_frame(&mut self, buf: &[u8], now: Instant) {
        self.io.counters.frames_in += 1;
        if self.phase == Phase::Dead {
            self.io.counters.discarded += 1;
            return;
        }
        let Ok((framing, info)) = frame::parse(buf) else {
            self.io.counters.malformed += 1;
            return;
        };
        let lcp_open = self.lcp.state() == State::Opened;
        match framing.protocol {
            protocol::LCP => match LcpPacket::parse(info) {
                Ok(p) => self.lcp_input(p, cp_bytes(info), now),
                Err(_) => self.io.counters.malformed += 1,
            },
            protocol::PAP => {
                if !self.auth_open() {
                    self.io.counters.discarded += 1;
                    return;
                }
                match PapPacket::parse(info) {
                    Ok(p) => {
                        let r = match self.role {
                            Role::Server => match self.creds.clone() {
                                Some(c) => self.server_auth.pap(p, c.as_ref(), &mut self.io),
                                None => AuthResult::Pending,
                            },
                            Role::Client => {
                                let user = self
                                    .secret
                                    .as_ref()
                                    .map(|s| s.user.clone())
                                    .unwrap_or_default();
                                self.client_auth.pap(p, &user)
                            }
                        };
                        self.on_auth(r, now);
                    }
                    Err(_) => self.io.counters.malformed += 1,
                }
            }
            protocol::CHAP => {
                if !self.auth_open() {
                    self.io.counters.discarded += 1;
                    return;
                }
                match ChapPacket::parse(info) {
                    Ok(p) => {
                        let r = match self.role {
                            Role::Server => match self.creds.clone() {
                                Some(c) => self.server_auth.chap(p, c.as_ref(), &mut self.io),
                                None => AuthResult::Pending,
                            },
                            Role::Client => match &self.secret {
                                Some(s) => self.client_auth.chap(
                                    p,
                                    now,
                                    &self.config,
                                    &s.user,
                                    &s.password,
                                    &mut self.io,
                                ),
                                None => AuthResult::Pending,
                            },
                        };
                        self.on_auth(r, now);
                    }
                    Err(_) => self.io.counters.malformed += 1,
                }
            }
            protocol::IPCP | protocol::IPV6CP
                if self.role == Role::Client
                    && self.phase == Phase::Authenticate
                    && lcp_open
                    && info.first() == Some(&1) =>
            {
                // An NCP Configure-Request while we wait for PAP Ack / CHAP Success.
                let user = self
                    .secret
                    .as_ref()
                    .map(|s| s.user.clone())
                    .unwrap_or_default();
                let r = self.client_auth.implied_success(&user);
                let implied = matches!(r, AuthResult::Success { .. });
                self.on_auth(r, now);
                if implied && self.phase == Phase::Network {
                    self.handle_ncp(framing.protocol, info, now);
                } else {
                    self.io.counters.discarded += 1;
                }
            }
            protocol::IPCP | protocol::IPV6CP
                if (framing.protocol == protocol::IPCP && self.ipcp.is_some())
                    || (framing.protocol == protocol::IPV6CP && self.ipv6cp.is_some()) =>
            {
                if self.phase != Phase::Network {
                    // RFC 1661 §3.4, §3.5: NCP packets before the Network phase are discarded.
                    self.io.counters.discarded += 1;
                    return;
                }
                self.handle_ncp(framing.protocol, info, now);
            }
            protocol::IPV4 if self.ipcp.is_some() => self.io.counters.discarded += 1,
            protocol::IPV6 if self.ipv6cp.is_some() => self.io.counters.discarded += 1,
            p if lcp_open => self.protocol_reject(p, info),
            // RFC 1661 §3.4: non-LCP packets before LCP is open are discarded.
            _ => self.io.counters.discarded += 1,
        }
    }

    fn handle_ncp(&mut self, proto: u16, info: &[u8], now: Instant) {
        if proto == protocol::IPCP {
            match IpcpPacket::parse(info) {
                Ok(p) => {
                    if let Some(cp) = self.ipcp.as_mut() {
                        let o = cp.input(p, cp_bytes(info), now, &mut self.io);
                        self.on_ncp(Ncp::Ipcp, o, now);
                    }
                }
                Err(_) => self.io.counters.malformed += 1,
            }
        } else {
            match Ipv6cpPacket::parse(info) {
                Ok(p) => {
                    if let Some(cp) = self.ipv6cp.as_mut() {
                        let o = cp.input(p, cp_bytes(info), now, &mut self.io);
                        self.on_ncp(Ncp::Ipv6cp, o, now);
                    }
                }
                Err(_) => self.io.counters.malformed += 1,
            }
        }
    }

    /// Handles every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        let o = self.lcp.timeout(now, &mut self.io);
        self.on_lcp(o, now);
        if let Some(cp) = self.ipcp.as_mut() {
            let o = cp.timeout(now, &mut self.io);
            self.on_ncp(Ncp::Ipcp, o, now);
        }
        if let Some(cp) = self.ipv6cp.as_mut() {
            let o = cp.timeout(now, &mut self.io);
            self.on_ncp(Ncp::Ipv6cp, o, now);
        }
        if self.phase == Phase::Dead {
            return;
        }
        let r = match self.role {
            Role::Server => self.server_auth.timeout(now, &self.config, &mut self.io),
            Role::Client => self.client_auth.timeout(now, &self.config, &mut self.io),
        };
        self.on_auth(r, now);
        if let Some(t) = self.echo_next {
            if t <= now {
                if self.lcp.state() == State::Opened {
                    self.echo(now);
                } else {
                    self.echo_next = None;
                }
            }
        }
    }

    fn auth_open(&self) -> bool {
        self.lcp.state() == State::Opened
            && matches!(self.phase, Phase::Authenticate | Phase::Network)
    }

    fn echo(&mut self, now: Instant) {
        if self.echo_outstanding >= self.config.echo_failures.max(1) {
            self.echo_next = None;
            self.close(DownReason::DeadPeer, now);
            return;
        }
        self.echo_id = self.echo_id.wrapping_add(1);
        self.io.send(&LcpPacket {
            identifier: self.echo_id,
            body: CpBody::EchoRequest {
                magic: self.lcp.neg.our_magic,
                data: Vec::new(),
            },
        });
        self.io.counters.echo_requests_sent += 1;
        self.echo_outstanding += 1;
        self.echo_next = Some(now + self.config.echo_interval.min(MAX_DURATION));
    }

    fn protocol_reject(&mut self, proto: u16, info: &[u8]) {
        // RFC 1661 §5.7: the rejected protocol and as much of the Information as fits the
        // peer's MRU.
        let room = self.io.reject_room(6);
        self.aux_id = self.aux_id.wrapping_add(1);
        self.io.send(&LcpPacket {
            identifier: self.aux_id,
            body: CpBody::ProtocolReject {
                protocol: proto,
                info: info[..info.len().min(room)].to_vec(),
            },
        });
        self.io.counters.protocol_rejects_sent += 1;
    }

    fn lcp_input(&mut self, p: LcpPacket, raw: &[u8], now: Instant) {
        let open = self.lcp.state() == State::Opened;
        match &p.body {
            CpBody::EchoRequest { magic, data } => {
                let ours = self.lcp.neg.our_magic;
                if !open || (ours != 0 && *magic == ours) {
                    // Not open, or our own request looped back (RFC 1661 §5.8).
                    self.io.counters.discarded += 1;
                    return;
                }
                self.io.send(&LcpPacket {
                    identifier: p.identifier,
                    body: CpBody::EchoReply {
                        magic: ours,
                        data: data.clone(),
                    },
                });
            }
            CpBody::EchoReply { magic, .. } => {
                let ours = self.lcp.neg.our_magic;
                if open && !(ours != 0 && *magic == ours) {
                    self.echo_outstanding = 0;
                    self.io.counters.echo_replies_received += 1;
                } else {
                    self.io.counters.discarded += 1;
                }
            }
            CpBody::DiscardRequest { .. } => {}
            CpBody::ProtocolReject {
                protocol: proto, ..
            } => {
                if !open {
                    self.io.counters.discarded += 1;
                    return;
                }
                match *proto {
                    protocol::IPCP => self.ncp_rejected(Ncp::Ipcp, now),
                    protocol::IPV6CP => self.ncp_rejected(Ncp::Ipv6cp, now),
                    protocol::LCP => {
                        let o = self.lcp.event(FsmEvent::RxjMinus, now, &mut self.io);
                        self.reason.get_or_insert(DownReason::LcpFailed);
                        self.on_lcp(o, now);
                    }
                    protocol::PAP | protocol::CHAP if self.phase == Phase::Authenticate => {
                        self.close(DownReason::AuthNotAgreed, now)
                    }
                    _ => {}
                }
            }
            _ => {
                if let CpBody::CodeReject { rejected } = &p.body {
                    if matches!(rejected.first(), Some(9..=11)) {
                        // The peer does not do Echo: no keepalives (RXJ+).
                        self.echo_rejected = true;
                        self.echo_next = None;
                    }
                }
                if matches!(p.body, CpBody::TerminateRequest { .. })
                    && matches!(
                        self.lcp.state(),
                        State::Opened | State::Closing | State::Stopping
                    )
                {
                    self.reason.get_or_insert(DownReason::PeerTerminated);
                }
                if let CpBody::CodeReject { rejected } = &p.body {
                    // RFC 1661 §5.6: rejecting codes 1-7 is catastrophic (RXJ-).
                    if matches!(rejected.first(), Some(1..=7)) {
                        self.reason.get_or_insert(DownReason::LcpFailed);
                    }
                }
                let o = self.lcp.input(p, raw, now, &mut self.io);
                self.on_lcp(o, now);
            }
        }
    }

    fn on_lcp(&mut self, o: Outcome, now: Instant) {
        if let Some(r) = o.fail {
            self.close(r, now);
            return;
        }
        if o.layer.contains(Actions::TLD) {
            self.lcp_down(now);
        }
        if o.layer.contains(Actions::TLU) {
            self.lcp_up(now);
        }
        if o.layer.contains(Actions::TLF) {
            self.finish(self.reason.unwrap_or(DownReason::LcpFailed));
        }
    }

    fn lcp_down(&mut self, now: Instant) {
        self.server_auth.reset();
        self.client_auth.reset();
        self.echo_next = None;
        if let Some(cp) = self.ipcp.as_mut() {
            let _ = cp.event(FsmEvent::Down, now, &mut self.io);
        }
        if let Some(cp) = self.ipv6cp.as_mut() {
            let _ = cp.event(FsmEvent::Down, now, &mut self.io);
        }
        self.network_down();
        if !matches!(self.phase, Phase::Terminate | Phase::Dead) {
            self.phase = Phase::Establish;
        }
    }

    fn network_down(&mut self) {
        if self.up {
            self.up = false;
            if self.phase != Phase::Terminate {
                self.io.counters.renegotiations += 1;
            }
            self.events.push_back(Event::NetworkDown);
        }
    }

    fn lcp_up(&mut self, now: Instant) {
        self.io.peer_mru = self.lcp.neg.peer_mru;
        self.echo_outstanding = 0;
        self.echo_next = (!self.config.echo_interval.is_zero() && !self.echo_rejected)
            .then(|| now + self.config.echo_interval.min(MAX_DURATION));
        let Some(m) = self.lcp.neg.auth else {
            self.network(now);
            return;
        };
        self.phase = Phase::Authenticate;
        match self.role {
            Role::Server => {
                self.server_auth
                    .start(m, now, &self.config, &mut self.rng, &mut self.io)
            }
            Role::Client => {
                if let Some(s) = &self.secret {
                    self.client_auth.start(
                        m,
                        now,
                        &self.config,
                        (&s.user, &s.password),
                        &mut self.rng,
                        &mut self.io,
                    );
                }
            }
        }
    }

    fn on_auth(&mut self, r: AuthResult, now: Instant) {
        match r {
            AuthResult::Pending => {}
            AuthResult::Success { user, ipv4 } => {
                self.user = user;
                if self.role == Role::Server {
                    self.fixed_ipv4 = ipv4;
                }
                if self.phase == Phase::Authenticate {
                    self.network(now);
                }
            }
            AuthResult::Failure { user, reason } => {
                if reason == DownReason::AuthFailed {
                    self.io.counters.auth_failures += 1;
                    self.events.push_back(Event::AuthFailed {
                        user: user.or_else(|| self.user.clone()),
                    });
                }
                self.close(reason, now);
            }
        }
    }

    /// Enters the Network phase: an address for the subscriber, then the NCPs.
    fn network(&mut self, now: Instant) {
        self.phase = Phase::Network;
        self.ncp_gone = 0;
        if self.role == Role::Server {
            if let Some(reason) = self.assign_address() {
                self.close(reason, now);
                return;
            }
        }
        if let Some(cp) = self.ipcp.as_mut() {
            let mut o = cp.event(FsmEvent::Up, now, &mut self.io);
            let o2 = cp.event(FsmEvent::Open, now, &mut self.io);
            o.layer |= o2.layer;
            self.on_ncp(Ncp::Ipcp, o, now);
        }
        if let Some(cp) = self.ipv6cp.as_mut() {
            let mut o = cp.event(FsmEvent::Up, now, &mut self.io);
            let o2 = cp.event(FsmEvent::Open, now, &mut self.io);
            o.layer |= o2.layer;
            self.on_ncp(Ncp::Ipv6cp, o, now);
        }
        if self.ipcp.is_none() && self.ipv6cp.is_none() {
            self.check_up();
        }
    }

    /// Server: the subscriber's IPv4 address (kept across renegotiations).
    fn assign_address(&mut self) -> Option<DownReason> {
        let cp = self.ipcp.as_mut()?;
        if cp.neg.assigned.is_some() {
            return None;
        }
        let addr = match (self.fixed_ipv4, &self.pool) {
            (Some(a), Some(pool)) => {
                let mut p = match pool.lock() {
                    Ok(p) => p,
                    Err(_) => return Some(DownReason::PoolExhausted),
                };
                if !p.reserve(a) {
                    return Some(DownReason::AddressInUse);
                }
                if p.contains(a) {
                    self.lease = Some(a);
                }
                Some(a)
            }
            (Some(a), None) => Some(a),
            (None, Some(pool)) => {
                let a = pool.lock().ok().and_then(|mut p| p.allocate());
                match a {
                    Some(a) => {
                        self.lease = Some(a);
                        Some(a)
                    }
                    None => return Some(DownReason::PoolExhausted),
                }
            }
            (None, None) => None,
        };
        cp.neg.assigned = addr;
        None
    }

    fn ncp_rejected(&mut self, which: Ncp, now: Instant) {
        // RFC 1661 §5.7: stop sending the protocol.
        let o = match which {
            Ncp::Ipcp => self
                .ipcp
                .as_mut()
                .map(|c| c.event(FsmEvent::Down, now, &mut self.io)),
            Ncp::Ipv6cp => self
                .ipv6cp
                .as_mut()
                .map(|c| c.event(FsmEvent::Down, now, &mut self.io)),
        };
        self.ncp_gone |= match which {
            Ncp::Ipcp => IPCP_GONE,
            Ncp::Ipv6cp => IPV6CP_GONE,
        };
        if let Some(mut o) = o {
            o.layer |= Actions::TLF;
            self.on_ncp(which, o, now);
        }
    }

    fn on_ncp(&mut self, which: Ncp, o: Outcome, now: Instant) {
        if let Some(r) = o.fail {
            self.close(r, now);
            return;
        }
        if o.layer.contains(Actions::TLD) {
            self.network_down();
        }
        if o.layer.contains(Actions::TLF) && self.phase == Phase::Network {
            self.ncp_gone |= match which {
                Ncp::Ipcp => IPCP_GONE,
                Ncp::Ipv6cp => IPV6CP_GONE,
            };
            let ipcp_gone = self.ipcp.is_none() || self.ncp_gone & IPCP_GONE != 0;
            let ipv6_gone = self.ipv6cp.is_none() || self.ncp_gone & IPV6CP_GONE != 0;
            if ipcp_gone && ipv6_gone {
                self.close(DownReason::NoNetworkProtocols, now);
                return;
            }
        }
        if o.layer.contains(Actions::TLU) || o.layer.contains(Actions::TLF) {
            self.check_up();
        }
    }

    fn check_up(&mut self) {
        if self.phase != Phase::Network || self.up {
            return;
        }
        let status = |state: Option<State>, gone: bool| match state {
            None => (true, false),
            Some(State::Opened) => (true, true),
            Some(_) => (gone, false),
        };
        let (ip4_settled, ip4_open) = status(self.ipcp_state(), self.ncp_gone & IPCP_GONE != 0);
        let (ip6_settled, ip6_open) = status(self.ipv6cp_state(), self.ncp_gone & IPV6CP_GONE != 0);
        let none_configured = self.ipcp.is_none() && self.ipv6cp.is_none();
        if !(ip4_settled && ip6_settled && (ip4_open || ip6_open || none_configured)) {
            return;
        }
        self.up = true;
        let up = self.current_up();
        self.events.push_back(Event::Up(up));
    }

    /// The values of the open layers (for [`Event::Up`] and [`Link::state`]).
    fn current_up(&self) -> LinkUp {
        let ip4_open = self.ipcp_state() == Some(State::Opened);
        let ip6_open = self.ipv6cp_state() == Some(State::Opened);
        let lcp = &self.lcp.neg;
        let ipcp = self.ipcp.as_ref().filter(|_| ip4_open).map(|c| &c.neg);
        LinkUp {
            user: self.user.clone(),
            local_ipv4: ipcp.and_then(|n| n.local_addr),
            peer_ipv4: ipcp.and_then(|n| n.peer_addr),
            dns: ipcp.map(|n| n.agreed_dns).unwrap_or_default(),
            ipv6: self
                .ipv6cp
                .as_ref()
                .filter(|_| ip6_open)
                .map(|c| (c.neg.ours, c.neg.peer.unwrap_or_default())),
            peer_mru: lcp.peer_mru,
            local_mru: lcp.local_mru,
            local_magic: lcp.our_magic,
            peer_magic: lcp.peer_magic,
            pfc: lcp.tx_pfc,
            acfc: lcp.tx_acfc,
        }
    }

    fn finish(&mut self, reason: DownReason) {
        if self.phase == Phase::Dead {
            return;
        }
        self.phase = Phase::Dead;
        self.up = false;
        self.echo_next = None;
        self.server_auth.reset();
        self.client_auth.reset();
        self.release();
        self.events.push_back(Event::Down {
            reason: self.reason.unwrap_or(reason),
        });
    }

    fn release(&mut self) {
        if let (Some(a), Some(pool)) = (self.lease.take(), &self.pool) {
            if let Ok(mut p) = pool.lock() {
                p.release(a);
            }
        }
    }

    /// Proxy LCP and authentication (RFC 2661 §4.4.5). False: negotiate normally.
    fn try_proxy(&mut self, proxy: &Proxy, now: Instant) -> bool {
        let (Some(sent), Some(recv)) = (&proxy.last_sent_lcp, &proxy.last_received_lcp) else {
            return false;
        };
        let (Ok(ours), Ok(theirs)) = (
            parse_options::<LcpOption>(sent),
            parse_options::<LcpOption>(recv),
        ) else {
            return false;
        };
        if !self.lcp.neg.proxy_ours_fits(&ours) {
            return false;
        }
        let mut neg = self.lcp.neg.clone();
        neg.adopt_ours(&ours);
        if neg.check(&theirs, true) != Ok(Verdict::Ack) {
            return false;
        }
        neg.peer_acked(&theirs);
        self.lcp.neg = neg;
        self.phase = Phase::Establish;
        let _ = self.lcp.event(FsmEvent::Up, now, &mut self.io);
        self.lcp.force_opened(ours);
        self.io.peer_mru = self.lcp.neg.peer_mru;
        self.echo_next = (!self.config.echo_interval.is_zero())
            .then(|| now + self.config.echo_interval.min(MAX_DURATION));
        let Some(m) = self.lcp.neg.auth else {
            self.network(now);
            return true;
        };
        self.phase = Phase::Authenticate;
        match self.proxy_auth(m, proxy) {
            Some(r) => self.on_auth(r, now),
            None => self
                .server_auth
                .start(m, now, &self.config, &mut self.rng, &mut self.io),
        }
        true
    }

    /// Verifies a proxied PAP or CHAP exchange of method `m` and answers the peer; `None`
    /// when there is none to verify.
    fn proxy_auth(&mut self, m: AuthMethod, proxy: &Proxy) -> Option<AuthResult> {
        let creds = self.creds.clone()?;
        let name = proxy.authen_name.as_ref()?;
        let response = proxy.authen_response.as_ref()?;
        let id = u8::try_from(proxy.authen_id?).ok()?;
        let kind = proxy.authen_type.and_then(ProxyAuthType::from_value)?;
        let entry = creds.lookup(name);
        let user = Some(String::from_utf8_lossy(name).into_owned());
        let ok = match (m, kind) {
            (AuthMethod::Chap, ProxyAuthType::Chap) => {
                let challenge = proxy.authen_challenge.as_ref()?;
                let ok = entry
                    .as_ref()
                    .is_some_and(|e| chap_md5_verify(id, &e.secret, challenge, response));
                self.io.send_body(PppBody::Chap(ChapPacket {
                    identifier: id,
                    body: if ok {
                        ChapBody::Success {
                            message: b"Welcome".to_vec(),
                        }
                    } else {
                        ChapBody::Failure {
                            message: b"Authentication failed".to_vec(),
                        }
                    },
                }));
                ok
            }
            (AuthMethod::Pap, ProxyAuthType::Pap) => {
                let ok = entry.as_ref().is_some_and(|e| ct_eq(&e.secret, response));
                self.io.send_body(PppBody::Pap(PapPacket {
                    identifier: id,
                    body: if ok {
                        PapBody::AuthenticateAck {
                            message: b"Login ok".to_vec(),
                        }
                    } else {
                        PapBody::AuthenticateNak {
                            message: b"Authentication failed".to_vec(),
                        }
                    },
                }));
                ok
            }
            _ => return None,
        };
        Some(if ok {
            AuthResult::Success {
                user,
                ipv4: entry.and_then(|e| e.ipv4),
            }
        } else {
            AuthResult::Failure {
                user,
                reason: DownReason::AuthFailed,
            }
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.release();
    }
}

/// The control packet from its Code field, without padding beyond its Length.
fn cp_bytes(info: &[u8]) -> &[u8] {
    match info {
        [_, _, hi, lo, ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            &info[..len.min(info.len())]
        }
        _ => info,
    }
}
