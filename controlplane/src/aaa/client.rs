//! The RADIUS client: servers by priority, retransmission, failover, dead-server detection and
//! revival, bounded outstanding requests, and strict matching of responses.
//!
//! A request goes to the first live server in priority order. It is sent, and sent again
//! unchanged (same Identifier and Request Authenticator, RFC 5080 §2.2.1) every `timeout`,
//! `tries` times in all; a server that answers none of them is marked dead for `dead_time`
//! and the request moves on to the next live server with a new Identifier and Authenticator
//! (RFC 2865 §3: a new request to another server). When `dead_time` has passed the server is
//! live again and tried in its place (revival); any valid response also marks it live. With
//! no live server left the request fails at once: an outage fails closed
//! ([`AaaError::NoServer`]), logged and counted.
//!
//! Each server has one UDP socket for authentication and one for accounting, each with its
//! own 256 Identifiers (RFC 2865 §3: the Identifier matches a response to its request per
//! source). A datagram is accepted as the response to a pending request only if it comes from
//! the server's address, parses (RFC 2865 §3: a packet shorter than its Length is silently
//! discarded), carries a pending Identifier, has a code that answers that request, the right
//! Response Authenticator (RFC 2865 §3) and, for Access-Accept/Reject/Challenge, exactly one
//! valid Message-Authenticator (RFC 3579 §3.2; required, CVE-2024-3596). Everything else is
//! dropped and counted in [`DropCounters`]; the request keeps waiting for the real answer.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use l2xdp_wire::radius::auth::{
    sign_authenticator, sign_message_authenticator, verify_message_authenticator, verify_response,
    MessageAuthenticatorError,
};
use l2xdp_wire::radius::{code, Attribute, Packet, RadiusPacket, MAX_LEN};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::config::{RadiusConfig, ServerConfig};
use super::request::{nas_attributes, AccessOutcome, AccessRequest};
use crate::random::Random;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AaaError {
    /// Every server is dead or none answered: the request fails closed.
    #[error("no RADIUS server answered ({tried} tried)")]
    NoServer {
        /// Servers the request was sent to.
        tried: usize,
    },
    /// Too many requests outstanding (`max_outstanding`).
    #[error("too many RADIUS requests outstanding ({0})")]
    Overloaded(usize),
    /// The request could not be encoded (an attribute too long).
    #[error("cannot encode the RADIUS request: {0}")]
    Encode(#[from] l2xdp_wire::Error),
    /// A socket could not be opened or used.
    #[error("RADIUS socket for {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Responses dropped, by reason (none of them is ever acted on).
#[derive(Debug, Default)]
struct Drops {
    wrong_source: AtomicU64,
    malformed: AtomicU64,
    unknown_identifier: AtomicU64,
    unexpected_code: AtomicU64,
    bad_authenticator: AtomicU64,
    missing_message_authenticator: AtomicU64,
    bad_message_authenticator: AtomicU64,
}

/// A snapshot of the dropped responses, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounters {
    /// From an address other than the server's.
    pub wrong_source: u64,
    /// Shorter than its Length, Length out of range, or broken attribute framing.
    pub malformed: u64,
    /// An Identifier with no request waiting (late duplicates, spoofs).
    pub unknown_identifier: u64,
    /// A code that does not answer the request (an Accounting-Response to an
    /// Access-Request, a request code).
    pub unexpected_code: u64,
    /// The Response Authenticator is wrong (wrong secret, or not the server).
    pub bad_authenticator: u64,
    /// An Access-* response without a Message-Authenticator.
    pub missing_message_authenticator: u64,
    /// A Message-Authenticator that is wrong, malformed or repeated.
    pub bad_message_authenticator: u64,
}

impl DropCounters {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.wrong_source
            + self.malformed
            + self.unknown_identifier
            + self.unexpected_code
            + self.bad_authenticator
            + self.missing_message_authenticator
            + self.bad_message_authenticator
    }
}

/// Whether a server is being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// Answering (or not yet tried).
    Live,
    /// Did not answer; left out until its dead time has passed.
    Dead,
}

/// One server as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerStatus {
    /// Authentication address.
    pub auth: SocketAddr,
    /// Accounting address.
    pub acct: SocketAddr,
    /// Priority (lower first).
    pub priority: u32,
    /// State.
    pub state: ServerState,
    /// Requests sent to it (first transmissions).
    pub requests: u64,
    /// Retransmissions.
    pub retransmissions: u64,
    /// Responses accepted from it.
    pub responses: u64,
    /// Requests it did not answer in `tries` transmissions.
    pub timeouts: u64,
    /// Times it was marked dead.
    pub marked_dead: u64,
    /// Mean time from the first transmission to the accepted response, in microseconds.
    pub mean_latency_us: u64,
    /// Responses dropped, by reason.
    pub dropped: DropCounters,
}

/// A request waiting for its response.
struct Pending {
    /// The Request Authenticator it was sent with (responses are signed over it).
    authenticator: [u8; 16],
    /// The request's Code (to check that the response answers it).
    code: u8,
    tx: oneshot::Sender<Packet>,
}

/// One socket to one server port: its pending requests by Identifier.
struct Endpoint {
    addr: SocketAddr,
    secret: Vec<u8>,
    socket: UdpSocket,
    pending: Mutex<Slots>,
    drops: Drops,
}

#[derive(Default)]
struct Slots {
    next: u8,
    map: HashMap<u8, Pending>,
}

#[derive(Default)]
struct ServerCounters {
    requests: AtomicU64,
    retransmissions: AtomicU64,
    responses: AtomicU64,
    timeouts: AtomicU64,
    marked_dead: AtomicU64,
    latency_us_sum: AtomicU64,
}

struct Server {
    cfg: ServerConfig,
    auth: Arc<Endpoint>,
    acct: Arc<Endpoint>,
    /// `Some(until)` while dead.
    dead_until: Mutex<Option<Instant>>,
    counters: ServerCounters,
}

struct Inner {
    cfg: RadiusConfig,
    /// In the order they are tried.
    servers: Vec<Server>,
    nas: Vec<Attribute>,
    rng: Mutex<Random>,
    outstanding: Semaphore,
    outages: AtomicU64,
    overloaded: AtomicU64,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The RADIUS client (cheap to clone: one set of sockets and servers behind it).
#[derive(Clone)]
pub struct RadiusClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RadiusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusClient")
            .field("servers", &self.inner.cfg.servers)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn bind_for(addr: SocketAddr, secret: &[u8]) -> Result<Arc<Endpoint>, AaaError> {
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(ip) if ip.is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|source| AaaError::Io { addr, source })?;
    Ok(Arc::new(Endpoint {
        addr,
        secret: secret.to_vec(),
        socket,
        pending: Mutex::new(Slots::default()),
        drops: Drops::default(),
    }))
}

impl Endpoint {
    /// Receives and matches responses until the client is dropped.
    async fn receive(self: Arc<Self>) {
        let mut buf = vec![0u8; MAX_LEN];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    // ICMP port unreachable shows up here on Linux: the server is down; the
                    // timeouts handle it.
                    tracing::debug!(server = %self.addr, error = %e, "RADIUS receive");
                    continue;
                }
            };
            self.handle(&buf[..n], from);
        }
    }

    fn handle(&self, dgram: &[u8], from: SocketAddr) {
        let d = &self.drops;
        if from != self.addr {
            d.wrong_source.fetch_add(1, Relaxed);
            tracing::debug!(server = %self.addr, %from, "RADIUS response from a wrong source dropped");
            return;
        }
        let Ok(view) = RadiusPacket::new_checked(dgram) else {
            d.malformed.fetch_add(1, Relaxed);
            tracing::debug!(server = %self.addr, "malformed RADIUS response dropped");
            return;
        };
        let bytes = view.bytes();
        let mut slots = lock(&self.pending);
        let Some(p) = slots.map.get(&view.identifier()) else {
            d.unknown_identifier.fetch_add(1, Relaxed);
            tracing::debug!(server = %self.addr, id = view.identifier(), "RADIUS response to no pending request dropped");
            return;
        };
        let answers = match p.code {
            code::ACCESS_REQUEST => matches!(
                view.code(),
                code::ACCESS_ACCEPT | code::ACCESS_REJECT | code::ACCESS_CHALLENGE
            ),
            code::ACCOUNTING_REQUEST => view.code() == code::ACCOUNTING_RESPONSE,
            _ => false,
        };
        if !answers {
            d.unexpected_code.fetch_add(1, Relaxed);
            tracing::debug!(server = %self.addr, code = view.code(), "RADIUS response with an unexpected code dropped");
            return;
        }
        if !verify_response(bytes, &p.authenticator, &self.secret) {
            d.bad_authenticator.fetch_add(1, Relaxed);
            tracing::warn!(server = %self.addr, id = view.identifier(), "RADIUS response with a wrong Response Authenticator dropped (wrong secret or spoofed)");
            return;
        }
        if p.code == code::ACCESS_REQUEST {
            match verify_message_authenticator(bytes, Some(&p.authenticator), &self.secret) {
                Ok(()) => {}
                Err(MessageAuthenticatorError::Missing) => {
                    d.missing_message_authenticator.fetch_add(1, Relaxed);
                    tracing::warn!(server = %self.addr, "RADIUS response without Message-Authenticator dropped (required: CVE-2024-3596); configure the server to send it");
                    return;
                }
                Err(e) => {
                    d.bad_message_authenticator.fetch_add(1, Relaxed);
                    tracing::warn!(server = %self.addr, error = %e, "RADIUS response dropped");
                    return;
                }
            }
        }
        let Ok(packet) = Packet::parse(bytes) else {
            d.malformed.fetch_add(1, Relaxed);
            return;
        };
        if let Some(p) = slots.map.remove(&view.identifier()) {
            // The requester may have given up in between: nothing to do then.
            let _ = p.tx.send(packet);
        }
    }

    /// Takes a free Identifier for a request (`None`: all 256 in use).
    fn register(&self, pending: Pending) -> Option<u8> {
        let mut s = lock(&self.pending);
        for _ in 0..=u8::MAX {
            let id = s.next;
            s.next = s.next.wrapping_add(1);
            if let std::collections::hash_map::Entry::Vacant(e) = s.map.entry(id) {
                e.insert(pending);
                return Some(id);
            }
        }
        None
    }

    fn release(&self, id: u8) {
        lock(&self.pending).map.remove(&id);
    }

    fn drops(&self) -> DropCounters {
        let d = &self.drops;
        DropCounters {
            wrong_source: d.wrong_source.load(Relaxed),
            malformed: d.malformed.load(Relaxed),
            unknown_identifier: d.unknown_identifier.load(Relaxed),
            unexpected_code: d.unexpected_code.load(Relaxed),
            bad_authenticator: d.bad_authenticator.load(Relaxed),
            missing_message_authenticator: d.missing_message_authenticator.load(Relaxed),
            bad_message_authenticator: d.bad_message_authenticator.load(Relaxed),
        }
    }
}

/// Which port of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Auth,
    Acct,
}

fn add(a: DropCounters, b: DropCounters) -> DropCounters {
    DropCounters {
        wrong_source: a.wrong_source + b.wrong_source,
        malformed: a.malformed + b.malformed,
        unknown_identifier: a.unknown_identifier + b.unknown_identifier,
        unexpected_code: a.unexpected_code + b.unexpected_code,
        bad_authenticator: a.bad_authenticator + b.bad_authenticator,
        missing_message_authenticator: a.missing_message_authenticator
            + b.missing_message_authenticator,
        bad_message_authenticator: a.bad_message_authenticator + b.bad_message_authenticator,
    }
}

impl RadiusClient {
    /// Opens the sockets and starts receiving (on the current tokio runtime). `rng` is the
    /// node's CSPRNG (Request Authenticators).
    pub async fn new(cfg: RadiusConfig, rng: Random) -> Result<Self, AaaError> {
        let mut order: Vec<&ServerConfig> = cfg.servers.iter().collect();
        order.sort_by_key(|s| s.priority);
        let mut servers = Vec::with_capacity(order.len());
        let mut tasks = Vec::new();
        for s in order {
            let auth = bind_for(s.auth, &s.secret).await?;
            let acct = bind_for(s.acct, &s.secret).await?;
            tasks.push(tokio::spawn(auth.clone().receive()));
            tasks.push(tokio::spawn(acct.clone().receive()));
            servers.push(Server {
                cfg: s.clone(),
                auth,
                acct,
                dead_until: Mutex::new(None),
                counters: ServerCounters::default(),
            });
        }
        let nas = nas_attributes(cfg.nas_identifier.as_deref(), cfg.nas_ip);
        let outstanding = Semaphore::new(cfg.max_outstanding.max(1));
        Ok(RadiusClient {
            inner: Arc::new(Inner {
                cfg,
                servers,
                nas,
                rng: Mutex::new(rng),
                outstanding,
                outages: AtomicU64::new(0),
                overloaded: AtomicU64::new(0),
                tasks,
            }),
        })
    }

    /// Authenticates a subscriber: the first live server's answer, or an error when none
    /// answered (fail closed).
    pub async fn authenticate(&self, req: &AccessRequest) -> Result<AccessOutcome, AaaError> {
        let nas = &self.inner.nas;
        let resp = self
            .exchange(Service::Auth, code::ACCESS_REQUEST, |id, auth, secret| {
                let p = req.packet(id, auth, secret, nas)?;
                let mut b = p.to_vec()?;
                sign_message_authenticator(&mut b, None, secret)?;
                Ok(b)
            })
            .await?;
        let mut outcome = AccessOutcome::from_packet(&resp);
        if let AccessOutcome::Accept(a) = &mut outcome {
            let floor = u32::try_from(self.inner.cfg.min_interim.as_secs()).unwrap_or(u32::MAX);
            if let Some(i) = a.acct_interim_interval.as_mut() {
                *i = (*i).max(floor);
            }
        }
        Ok(outcome)
    }

    /// Sends an Accounting-Request (RFC 2866) with `attributes` (plus the NAS identity) and
    /// waits for its Accounting-Response.
    pub async fn account(&self, attributes: &[Attribute]) -> Result<(), AaaError> {
        let nas = &self.inner.nas;
        self.exchange(Service::Acct, code::ACCOUNTING_REQUEST, |id, _, secret| {
            let mut attrs = attributes.to_vec();
            attrs.extend_from_slice(nas);
            let p = Packet {
                code: code::ACCOUNTING_REQUEST,
                identifier: id,
                authenticator: [0; 16],
                attributes: attrs,
            };
            let mut b = p.to_vec()?;
            // RFC 2866 §3: MD5 over the packet with a zero Request Authenticator.
            sign_authenticator(&mut b, &[0; 16], secret);
            Ok(b)
        })
        .await
        .map(|_| ())
    }

    /// One request through the servers in order. `build(id, random authenticator, secret)`
    /// gives the datagram; its Authenticator field (random or computed) is what the response
    /// is verified against.
    async fn exchange(
        &self,
        service: Service,
        req_code: u8,
        build: impl Fn(u8, [u8; 16], &[u8]) -> Result<Vec<u8>, l2xdp_wire::Error>,
    ) -> Result<Packet, AaaError> {
        let inner = &*self.inner;
        let Ok(_permit) = inner.outstanding.try_acquire() else {
            inner.overloaded.fetch_add(1, Relaxed);
            tracing::warn!(
                max = inner.cfg.max_outstanding,
                "RADIUS request refused: too many outstanding"
            );
            return Err(AaaError::Overloaded(inner.cfg.max_outstanding));
        };
        let mut tried = 0;
        for server in &inner.servers {
            {
                let mut dead = lock(&server.dead_until);
                match *dead {
                    Some(until) if until > Instant::now() => continue,
                    Some(_) => {
                        *dead = None;
                        tracing::info!(server = %server.cfg.auth, "RADIUS server revived: trying it again");
                    }
                    None => {}
                }
            }
            tried += 1;
            let ep = match service {
                Service::Auth => &server.auth,
                Service::Acct => &server.acct,
            };
            if let Some(resp) = self.try_server(server, ep, req_code, &build).await? {
                return Ok(resp);
            }
            server.counters.timeouts.fetch_add(1, Relaxed);
            server.counters.marked_dead.fetch_add(1, Relaxed);
            *lock(&server.dead_until) = Some(Instant::now() + inner.cfg.dead_time);
            tracing::warn!(server = %ep.addr, tries = inner.cfg.tries, dead_for = ?inner.cfg.dead_time, "RADIUS server not answering: marked dead, failing over");
        }
        inner.outages.fetch_add(1, Relaxed);
        tracing::error!(
            tried,
            servers = inner.servers.len(),
            "no RADIUS server answered: request fails closed"
        );
        Err(AaaError::NoServer { tried })
    }

    /// Sends to one server `tries` times; `None` when it never answered.
    async fn try_server(
        &self,
        server: &Server,
        ep: &Endpoint,
        req_code: u8,
        build: &impl Fn(u8, [u8; 16], &[u8]) -> Result<Vec<u8>, l2xdp_wire::Error>,
    ) -> Result<Option<Packet>, AaaError> {
        let inner = &*self.inner;
        let random: [u8; 16] = lock(&inner.rng).array();
        let (tx, mut rx) = oneshot::channel();
        // Registered with a placeholder authenticator, set once the datagram is built (the
        // Accounting-Request's is computed over the packet with its Identifier).
        let Some(id) = ep.register(Pending {
            authenticator: random,
            code: req_code,
            tx,
        }) else {
            inner.overloaded.fetch_add(1, Relaxed);
            return Err(AaaError::Overloaded(256));
        };
        let dgram = match build(id, random, &ep.secret) {
            Ok(d) => d,
            Err(e) => {
                ep.release(id);
                return Err(e.into());
            }
        };
        if let Some(p) = lock(&ep.pending).map.get_mut(&id) {
            p.authenticator.copy_from_slice(&dgram[4..20]);
        }
        let start = Instant::now();
        server.counters.requests.fetch_add(1, Relaxed);
        for attempt in 0..inner.cfg.tries.max(1) {
            if attempt > 0 {
                server.counters.retransmissions.fetch_add(1, Relaxed);
            }
            if let Err(e) = ep.socket.send_to(&dgram, ep.addr).await {
                tracing::debug!(server = %ep.addr, error = %e, "RADIUS send");
            }
            match tokio::time::timeout(inner.cfg.timeout, &mut rx).await {
                Ok(Ok(resp)) => {
                    server.counters.responses.fetch_add(1, Relaxed);
                    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                    server.counters.latency_us_sum.fetch_add(us, Relaxed);
                    *lock(&server.dead_until) = None;
                    return Ok(Some(resp));
                }
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
        ep.release(id);
        Ok(None)
    }

    /// The servers in the order they are tried, with their state and counters.
    pub fn servers(&self) -> Vec<ServerStatus> {
        let now = Instant::now();
        self.inner
            .servers
            .iter()
            .map(|s| {
                let c = &s.counters;
                let responses = c.responses.load(Relaxed);
                ServerStatus {
                    auth: s.cfg.auth,
                    acct: s.cfg.acct,
                    priority: s.cfg.priority,
                    state: match *lock(&s.dead_until) {
                        Some(until) if until > now => ServerState::Dead,
                        _ => ServerState::Live,
                    },
                    requests: c.requests.load(Relaxed),
                    retransmissions: c.retransmissions.load(Relaxed),
                    responses,
                    timeouts: c.timeouts.load(Relaxed),
                    marked_dead: c.marked_dead.load(Relaxed),
                    mean_latency_us: c.latency_us_sum.load(Relaxed) / responses.max(1),
                    dropped: add(s.auth.drops(), s.acct.drops()),
                }
            })
            .collect()
    }

    /// Dropped responses over all servers.
    pub fn dropped(&self) -> DropCounters {
        self.servers()
            .into_iter()
            .fold(DropCounters::default(), |a, s| add(a, s.dropped))
    }

    /// Requests that failed because no server answered.
    pub fn outages(&self) -> u64 {
        self.inner.outages.load(Relaxed)
    }

    /// Requests refused because too many were outstanding.
    pub fn overloaded(&self) -> u64 {
        self.inner.overloaded.load(Relaxed)
    }

    /// The per-request timeout (for callers sizing their own deadlines).
    pub fn request_deadline(&self) -> Duration {
        let c = &self.inner.cfg;
        c.timeout * c.tries.max(1) * u32::try_from(c.servers.len()).unwrap_or(u32::MAX)
    }
}
