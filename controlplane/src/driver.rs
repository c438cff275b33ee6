//! Runs a [`Node`] over real sockets on tokio: one task reads each socket, one loop owns the
//! node (its state machines are single-threaded and sans-IO), sends what it produces and
//! sleeps until its next deadline — one timer for the whole node, however many tunnels.
//!
//! Tests put a [`LossyShim`] on the send path; a capture of every datagram sent can be written
//! as a pcap (Ethernet/IP/UDP frames built around the L2TP bytes) for tshark and
//! `l2xdp-decode`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::net::ethernet::MacAddr;
use l2xdp_wire::net::frame::{ip_frame, udp_frame, Endpoints};
use l2xdp_wire::pcap;
use tokio::sync::{mpsc, oneshot};

use crate::aaa::{AccessOutcome, AccessRequest, RadiusClient};
use crate::l2tp::{CallParams, L2tpError, Peer, TunnelId};
use crate::node::{ClientAuth, Node, NodeEvent, SessionRef};
use crate::socket::{L2tpSocket, LossyShim, MAX_DATAGRAM};

/// How often the node's tables are checked for room to give back ([`Node::compact`]).
const COMPACT_EVERY: Duration = Duration::from_secs(5);

/// Returns the allocator's free memory to the system (glibc keeps freed memory in its arenas:
/// without this a flood's peak stays resident).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One allocator arena for the whole process (call first thing in `main`). The node is
/// single-threaded; with glibc's default of an arena per thread that allocates, what a flood
/// made the socket readers and the node allocate stays scattered over several arenas and much
/// of it resident after it is freed (measured with `l2xdp-bench flood`: 3.2 MiB resident 45 s
/// after the flood with per-thread arenas, 1.3 MiB with one).
pub fn one_allocator_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The glibc tunable [`without_thread_cache`] sets.
pub const NO_THREAD_CACHE: &str = "glibc.malloc.tcache_count=0";

/// Runs the process again with glibc's per-thread cache of freed chunks (tcache) off, unless
/// `GLIBC_TUNABLES` already says how big it is (the operator's choice is kept): call first
/// thing in `main`, before any thread. Tunables are read when the program starts, so this
/// re-executes the program with the same arguments (same pid); when that fails it goes on
/// with the cache.
///
/// Why: each thread's tcache keeps up to 7 freed chunks of each small size as in use. After a
/// flood (issue 15) those chunks lie scattered over the pages the flood's half-open tunnels
/// used, between the tunnels that stayed, and keep `malloc_trim` from returning those pages.
/// Measured with `l2xdp-bench flood --settle-secs 45` (5,000 SCCRQs/s for 20 s, a LAC's 10
/// tunnels set up during it): the heap keeps about 1.1 MiB more resident 45 s after the flood
/// with the cache (RSS +11.5–12.2 % over the baseline), about 0.75 MiB without
/// (`bench/README.md`, the flood section). The control plane allocates little per packet
/// (the fast path is XDP), so the cache's speed is not missed.
pub fn without_thread_cache() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        let cur = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if cur.contains("glibc.malloc.tcache_count") {
            return;
        }
        let tunables = if cur.is_empty() {
            NO_THREAD_CACHE.to_string()
        } else {
            format!("{cur}:{NO_THREAD_CACHE}")
        };
        // The executable's own path (not /proc/self/exe, whose name "exe" would become the
        // process name that ps, pgrep and systemd show).
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "l2xdpd".into());
        let err = std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .env("GLIBC_TUNABLES", tunables)
            .exec();
        eprintln!("re-executing with GLIBC_TUNABLES={NO_THREAD_CACHE} failed ({err}): glibc's thread cache stays on");
    }
}

/// A change to run on the node, at the given time.
pub type NodeUpdate = Box<dyn FnOnce(&mut Node, Instant) + Send>;

/// What the node's owner can ask of a running driver.
pub enum Command {
    /// Open a control connection.
    OpenTunnel {
        peer: Peer,
        version: Version,
        reply: oneshot::Sender<Result<TunnelId, L2tpError>>,
    },
    /// Open a session in an established tunnel.
    OpenSession {
        tunnel: TunnelId,
        params: Box<CallParams>,
        auth: Option<ClientAuth>,
        reply: oneshot::Sender<Result<u32, L2tpError>>,
    },
    /// Close a session (CDN).
    CloseSession {
        session: SessionRef,
        reply: oneshot::Sender<Result<(), L2tpError>>,
    },
    /// Close a tunnel (StopCCN).
    CloseTunnel {
        tunnel: TunnelId,
        reply: oneshot::Sender<Result<(), L2tpError>>,
    },
    /// Run a function on the node (status queries, tests).
    Inspect(Box<dyn FnOnce(&Node) + Send>),
    /// Run a function that changes the node (`config reload`, a failover drill); what it
    /// produces is sent and its timers are rescheduled afterwards.
    Update(NodeUpdate),
    /// Stop the driver.
    Shutdown,
}

/// A handle to a running driver.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

/// The driver stopped before answering.
#[derive(Debug, thiserror::Error)]
#[error("the control plane is not running")]
pub struct Stopped;

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Opens a control connection.
    pub async fn open_tunnel(
        &self,
        peer: Peer,
        version: Version,
    ) -> Result<Result<TunnelId, L2tpError>, Stopped> {
        self.ask(|reply| Command::OpenTunnel {
            peer,
            version,
            reply,
        })
        .await
    }

    /// Opens a session; with `auth` an L2TPv2 session runs the PPP client.
    pub async fn open_session(
        &self,
        tunnel: TunnelId,
        params: CallParams,
        auth: Option<ClientAuth>,
    ) -> Result<Result<u32, L2tpError>, Stopped> {
        self.ask(|reply| Command::OpenSession {
            tunnel,
            params: Box::new(params),
            auth,
            reply,
        })
        .await
    }

    /// Closes a session.
    pub async fn close_session(
        &self,
        session: SessionRef,
    ) -> Result<Result<(), L2tpError>, Stopped> {
        self.ask(|reply| Command::CloseSession { session, reply })
            .await
    }

    /// Closes a tunnel.
    pub async fn close_tunnel(&self, tunnel: TunnelId) -> Result<Result<(), L2tpError>, Stopped> {
        self.ask(|reply| Command::CloseTunnel { tunnel, reply })
            .await
    }

    /// Runs `f` on the node and returns its result.
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Node) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Inspect(Box::new(move |n| {
                let _ = tx.send(f(n));
            })))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Runs `f` on the node, mutably (see [`Command::Update`]), and returns its result.
    pub async fn update<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node, Instant) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Update(Box::new(move |n, now| {
                let _ = tx.send(f(n, now));
            })))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Stops the driver.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }
}

/// Every datagram the driver sent, as a pcap.
struct Capture {
    writer: pcap::Writer<std::io::BufWriter<std::fs::File>>,
    start: Instant,
}

/// Owns a node and its sockets.
pub struct Driver {
    node: Node,
    sockets: Vec<Arc<L2tpSocket>>,
    locals: Vec<SocketAddr>,
    /// Which socket each peer talked to since the last flush (answers to datagrams that
    /// created nothing, e.g. a refused SCCRQ's StopCCN, leave from the socket they came to);
    /// peers of tunnels are found through [`Node::local_for`]. Cleared at every flush.
    recent: HashMap<Peer, usize>,
    shim: Option<LossyShim>,
    capture: Option<Capture>,
    events: Option<mpsc::UnboundedSender<NodeEvent>>,
    /// Answers [`NodeEvent::AuthRequest`]s (external credentials); without it they fail
    /// closed at once.
    radius: Option<RadiusClient>,
    /// RADIUS answers coming back to the loop: (session, outcome; `None` = no server).
    auth_tx: mpsc::UnboundedSender<AuthAnswer>,
    auth_rx: Option<mpsc::UnboundedReceiver<AuthAnswer>>,
}

/// A RADIUS answer for a session.
type AuthAnswer = (SessionRef, u64, Option<AccessOutcome>);

impl Driver {
    /// A driver for `node` over `sockets` (at least one).
    pub fn new(node: Node, sockets: Vec<L2tpSocket>) -> std::io::Result<Self> {
        let locals = sockets
            .iter()
            .map(L2tpSocket::local_addr)
            .collect::<std::io::Result<Vec<_>>>()?;
        let (auth_tx, auth_rx) = mpsc::unbounded_channel();
        Ok(Driver {
            node,
            sockets: sockets.into_iter().map(Arc::new).collect(),
            locals,
            recent: HashMap::new(),
            shim: None,
            capture: None,
            events: None,
            radius: None,
            auth_tx,
            auth_rx: Some(auth_rx),
        })
    }

    /// Verifies external credentials through `client`: each [`NodeEvent::AuthRequest`] is
    /// sent by a task of its own (the loop never waits for RADIUS) and its answer handed back
    /// to [`Node::auth_answer`]. The client bounds how many are outstanding.
    pub fn with_radius(mut self, client: RadiusClient) -> Self {
        self.radius = Some(client);
        self
    }

    /// Puts a lossy link on the send path (tests).
    pub fn with_shim(mut self, shim: LossyShim) -> Self {
        self.shim = Some(shim);
        self
    }

    /// Writes every datagram sent to a pcap file.
    pub fn with_capture(mut self, path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        self.capture = Some(Capture {
            writer: pcap::Writer::new(file, pcap::linktype::ETHERNET)?,
            start: Instant::now(),
        });
        Ok(self)
    }

    /// Sends the node's events to `tx`.
    pub fn with_events(mut self, tx: mpsc::UnboundedSender<NodeEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// The local addresses of the sockets.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.locals
    }

    /// Starts the driver on the current tokio runtime; returns its handle and the task, which
    /// ends (returning the node, for inspection) after [`Handle::shutdown`].
    pub fn spawn(self) -> (Handle, tokio::task::JoinHandle<Node>) {
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(self.run(rx));
        (Handle { tx }, task)
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<Command>) -> Node {
        let (rx_tx, mut rx) = mpsc::channel::<(usize, Peer, Vec<u8>)>(8192);
        let mut readers = Vec::new();
        for (i, s) in self.sockets.iter().enumerate() {
            let s = s.clone();
            let tx = rx_tx.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                loop {
                    match s.recv(&mut buf).await {
                        Ok((n, from)) => {
                            if tx.send((i, from, buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%e, "receive failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
        }
        drop(rx_tx);
        let Some(mut auth_rx) = self.auth_rx.take() else {
            unreachable!("run is called once, by spawn");
        };
        // After a flood the tables are shrunk back and the allocator's free memory handed
        // back to the system.
        let mut compact = tokio::time::interval(COMPACT_EVERY);
        compact.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.flush().await;
            let deadline = self
                .node
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                cmd = cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.command(c),
                },
                got = rx.recv() => {
                    let Some((i, from, data)) = got else { break };
                    self.receive(i, from, &data);
                    // Take what else is queued before sending: fewer wake-ups under load.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok((i, from, data)) => self.receive(i, from, &data),
                            Err(_) => break,
                        }
                    }
                }
                Some((key, ticket, outcome)) = auth_rx.recv() => {
                    self.node.auth_answer(key, ticket, outcome.as_ref(), Instant::now());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.node.handle_timeout(Instant::now());
                }
                _ = compact.tick() => {
                    if self.node.compact() {
                        release_free_memory();
                    }
                }
            }
        }
        for r in readers {
            r.abort();
        }
        if let Some(shim) = self.shim.as_mut() {
            if let Some((peer, data)) = shim.flush() {
                self.send(peer, &data).await;
            }
        }
        if let Some(c) = self.capture.take() {
            let _ = c.writer.finish();
        }
        self.node
    }

    fn receive(&mut self, i: usize, from: Peer, data: &[u8]) {
        self.recent.insert(from, i);
        self.node
            .handle_datagram(self.locals[i], from, data, Instant::now());
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::OpenTunnel {
                peer,
                version,
                reply,
            } => {
                let _ = reply.send(self.node.open_tunnel(peer, version, now));
            }
            Command::OpenSession {
                tunnel,
                params,
                auth,
                reply,
            } => {
                let _ = reply.send(self.node.open_session(tunnel, *params, auth, now));
            }
            Command::CloseSession { session, reply } => {
                let _ = reply.send(self.node.close_session(session, now));
            }
            Command::CloseTunnel { tunnel, reply } => {
                let _ = reply.send(self.node.close_tunnel(tunnel, now));
            }
            Command::Inspect(f) => f(&self.node),
            Command::Update(f) => f(&mut self.node, now),
            Command::Shutdown => {}
        }
    }

    async fn flush(&mut self) {
        while let Some(ev) = self.node.poll_event() {
            if let NodeEvent::AuthRequest {
                tunnel,
                session,
                ticket,
                request,
            } = &ev
            {
                self.authenticate((*tunnel, *session), *ticket, request.as_ref().clone());
            }
            if let NodeEvent::Accounting {
                tunnel,
                session,
                attributes,
            } = &ev
            {
                self.account((*tunnel, *session), attributes.clone());
            }
            if let Some(tx) = &self.events {
                let _ = tx.send(ev);
            }
        }
        while let Some((peer, data)) = self.node.poll_transmit() {
            let out = match self.shim.as_mut() {
                Some(shim) => shim.pass(peer, data),
                None => vec![(peer, data)],
            };
            for (peer, data) in out {
                self.send(peer, &data).await;
            }
        }
        self.recent.clear();
    }

    /// Asks the RADIUS client on a task of its own; the answer comes back through `auth_tx`.
    fn authenticate(&self, key: SessionRef, ticket: u64, request: AccessRequest) {
        let tx = self.auth_tx.clone();
        let Some(client) = self.radius.clone() else {
            tracing::error!(
                tunnel = key.0,
                session = key.1,
                "external authentication without a RADIUS client: fails closed"
            );
            let _ = tx.send((key, ticket, None));
            return;
        };
        tokio::spawn(async move {
            let outcome = match client.authenticate(&request).await {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::error!(tunnel = key.0, session = key.1, user = %String::from_utf8_lossy(&request.user), error = %e, "RADIUS authentication failed closed");
                    None
                }
            };
            let _ = tx.send((key, ticket, outcome));
        });
    }

    /// Sends an Accounting-Request on a task of its own (RFC 2866). One that no server
    /// acknowledged is logged (not kept for a retry).
    fn account(&self, key: SessionRef, attributes: Vec<l2xdp_wire::radius::Attribute>) {
        let Some(client) = self.radius.clone() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = client.account(&attributes).await {
                tracing::error!(tunnel = key.0, session = key.1, error = %e, "RADIUS accounting record lost");
            }
        });
    }

    fn socket_for(&self, peer: Peer) -> Option<usize> {
        if let Some(local) = self.node.local_for(&peer) {
            if let Some(i) = self
                .sockets
                .iter()
                .zip(&self.locals)
                .position(|(s, l)| *l == local && s.transport() == peer.transport)
            {
                return Some(i);
            }
        }
        if let Some(&i) = self.recent.get(&peer) {
            return Some(i);
        }
        self.sockets.iter().zip(&self.locals).position(|(s, l)| {
            l.is_ipv4() == peer.addr.is_ipv4() && s.transport() == peer.transport
        })
    }

    async fn send(&mut self, peer: Peer, data: &[u8]) {
        let Some(i) = self.socket_for(peer) else {
            tracing::warn!(peer = %peer.addr, "no socket for this peer's transport and family");
            return;
        };
        if let Err(e) = self.sockets[i].send(peer, data).await {
            tracing::warn!(peer = %peer.addr, %e, "send failed");
        }
        if let Some(c) = self.capture.as_mut() {
            let local = self.locals[i];
            let ends = Endpoints {
                src_mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
                dst_mac: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
                src: local.ip(),
                dst: peer.addr.ip(),
            };
            let frame = match peer.transport {
                Transport::Udp => udp_frame(&ends, local.port(), peer.addr.port(), data),
                Transport::Ip => ip_frame(&ends, l2xdp_wire::l2tp::IP_PROTOCOL, data),
            };
            if let Ok(f) = frame {
                let t = c.start.elapsed().as_nanos() as u64;
                let _ = c.writer.write(t, &f);
            }
        }
    }
}
