//! One PPP link (RFC 1661 §3.2 phases) in either role, combining LCP, authentication and the
//! NCPs.
//!
//! This file holds the [`Link`] itself and its public API: the state, the constructors (a
//! fresh link, one whose LAC proxied LCP and authentication, one restored after a restart,
//! RFC 4951), [`Link::state`], the getters, the `poll_*` methods, [`Link::close`] and
//! [`Link::lower_down`]. The rest of `impl Link` is split by what it does:
//!
//! - `input`: [`Link::handle_frame`], received frames dispatched by protocol, and LCP's codes
//!   beyond negotiation (Echo, Protocol-Reject, Code-Reject: RFC 1661 §5.6–§5.8).
//! - `timers`: [`Link::handle_timeout`], the restart timers (RFC 1661 §4.6) and LCP Echo
//!   keepalives (RFC 1661 §5.8).
//! - `establish`: LCP's This-Layer-Up/Down/Finished (RFC 1661 §4.4): entering and leaving the
//!   Authenticate phase.
//! - `authenticate`: the outcome of the Authenticate phase (RFC 1661 §3.5; PAP, RFC 1334 §2;
//!   CHAP, RFC 1994).
//! - `ncp`: the Network phase: the subscriber's address, IPCP (RFC 1332) and IPv6CP
//!   (RFC 5072), and when the link counts as up.
//! - `proxy`: proxied LCP and authentication from the LAC's ICCN (RFC 2661 §4.4.5).
//! - `echo6`: ICMPv6 Echo Requests to our link-local address answered (RFC 4443 §4).

mod authenticate;
mod echo6;
mod establish;
mod input;
mod ncp;
mod proxy;
mod timers;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::auth::{ClientAuth, ServerAuth};
use super::config::{PppConfig, MAX_DURATION};
use super::fsm::{FsmConfig, FsmEvent, State};
use super::ipcp::IpcpNeg;
use super::ipv6cp::Ipv6cpNeg;
use super::lcp::LcpNeg;
use super::negotiate::{Cp, Io, Negotiator};
use super::pool::Ipv4Pool;
use super::users::Credentials;
use super::{Counters, DownReason, Event, LinkState, Phase, Rng, Role};

pub use proxy::{Proxy, ProxyAuthType};

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
    /// Boxed: most links run without IPv6CP, and a million idle links carry this.
    ipv6cp: Option<Box<Cp<Ipv6cpNeg>>>,
    /// NCPs that finished or were Protocol-Rejected (IPCP_GONE, IPV6CP_GONE).
    ncp_gone: u8,
    server_auth: ServerAuth,
    /// Client role only (created when first used), boxed: a million server links carry this.
    client_auth: Option<Box<ClientAuth>>,
    creds: Option<Arc<dyn Credentials>>,
    secret: Option<Box<ClientSecret>>,
    pool: Option<Arc<Mutex<Ipv4Pool>>>,
    /// The address leased from the pool (released when the link dies).
    lease: Option<Ipv4Addr>,
    user: Option<String>,
    fixed_ipv4: Option<Ipv4Addr>,
    up: bool,
    echo_next: Option<Instant>,
    /// When the Session-Timeout from the authentication server ends the link.
    session_end: Option<Instant>,
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
        mut rng: Rng,
    ) -> Link {
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
            Box::new(Cp::new(
                fc,
                Ipv6cpNeg::new(config.ipv6cp.interface_id, rng.fork()),
                rng.next_u64() as u8,
            ))
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
            client_auth: None,
            creds,
            secret,
            pool,
            lease: None,
            user: None,
            fixed_ipv4: None,
            up: false,
            echo_next: None,
            session_end: None,
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
    /// bring their own or have fixed ones). `rng` is the node's (the OS-keyed CSPRNG).
    pub fn server(
        config: Arc<PppConfig>,
        credentials: Arc<dyn Credentials>,
        pool: Option<Arc<Mutex<Ipv4Pool>>>,
        rng: Rng,
        now: Instant,
    ) -> Link {
        let mut l = Self::build(Role::Server, config, Some(credentials), pool, None, rng);
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
        rng: Rng,
        now: Instant,
    ) -> Link {
        let mut l = Self::build(Role::Server, config, Some(credentials), pool, None, rng);
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
        rng: Rng,
        now: Instant,
    ) -> Link {
        let secret = Box::new(ClientSecret {
            user: user.as_bytes().to_vec(),
            password: password.to_vec(),
        });
        let mut l = Self::build(Role::Client, config, None, None, Some(secret), rng);
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
        rng: Rng,
        now: Instant,
    ) -> Result<Link, DownReason> {
        let mut l = Self::build(Role::Server, config, Some(credentials), pool, None, rng);
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
        rng: Rng,
        now: Instant,
    ) -> Link {
        let secret = Box::new(ClientSecret {
            user: user.as_bytes().to_vec(),
            password: password.to_vec(),
        });
        let mut l = Self::build(Role::Client, config, None, None, Some(secret), rng);
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
        self.ipv6cp.as_deref().map(Cp::state)
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
        let Some(f) = self.io.frames.pop_front() else {
            // Drained: its buffer goes (a link mostly idles, and there are a million of them).
            self.io.frames = VecDeque::new();
            return None;
        };
        self.io.counters.frames_out += 1;
        Some(f)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() {
            // Drained: its buffer goes (see `poll_transmit`).
            self.events = VecDeque::new();
        }
        e
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
            self.client_auth.as_ref().and_then(|a| a.deadline),
            self.echo_next,
            self.session_end,
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

    fn finish(&mut self, reason: DownReason) {
        if self.phase == Phase::Dead {
            return;
        }
        self.phase = Phase::Dead;
        self.up = false;
        self.echo_next = None;
        self.session_end = None;
        self.server_auth.reset();
        if let Some(a) = self.client_auth.as_mut() {
            a.reset();
        }
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
}

impl Drop for Link {
    fn drop(&mut self) {
        self.release();
    }
}
