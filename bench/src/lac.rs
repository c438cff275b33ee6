//! The LAC emulator of the control-plane scenarios: this project's control plane in the
//! initiator role with the PPP client (CHAP as `user<i>`/`pw<i>`, the users [`crate::lns`]
//! writes), in the bench process (on loopback, or in the lab's `lac` namespace for `demo`), and
//! the two bring-up phases: tunnels, then sessions through IPCP with a bounded number in
//! flight.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use l2xdp_controlplane::driver::{Driver, Handle};
use l2xdp_controlplane::l2tp::{CallParams, FailoverConfig, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_wire::l2tp::header::Version;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant as Deadline;

/// Where the emulator binds on loopback: `127.0.0.1`, any port.
pub const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The emulator, running on the current tokio runtime.
pub struct Lac {
    /// Its driver.
    pub handle: Handle,
    /// Its events (tunnels and sessions up and down).
    pub events: UnboundedReceiver<NodeEvent>,
    task: tokio::task::JoinHandle<Node>,
}

/// What the session phase measured.
pub struct SessionsUp {
    /// When the first session was opened.
    pub started: Instant,
    /// The last ICCN.
    pub iccn_at: Instant,
    /// The last IPCP up.
    pub ipcp_at: Instant,
    /// Per-session latency, open → IPCP up, microseconds.
    pub latency_us: hdrhistogram::Histogram<u64>,
    /// The `PppUp` events, one per session.
    pub up: Vec<NodeEvent>,
}

impl Lac {
    /// Starts the emulator on `bind` (`127.0.0.1:0` on loopback; the socket belongs to the
    /// calling thread's namespace) with room for `tunnels × sessions`, RFC 4951 failover
    /// capability `failover`, and the subscribers' PPP configuration `ppp`. Needs a tokio
    /// runtime context.
    pub fn start(
        bind: SocketAddr,
        tunnels: usize,
        sessions: usize,
        failover: Option<FailoverConfig>,
        ppp: PppConfig,
    ) -> Result<Lac, String> {
        let l2tp = L2tpConfig {
            host_name: "lac-bench".into(),
            failover,
            ..L2tpConfig::default()
        };
        Lac::start_with(bind, l2tp, tunnels, sessions, ppp)
    }

    /// [`Lac::start`] with the L2TP configuration `l2tp` (its limits raised to room for
    /// `tunnels × sessions`).
    pub fn start_with(
        bind: SocketAddr,
        mut l2tp: L2tpConfig,
        tunnels: usize,
        sessions: usize,
        ppp: PppConfig,
    ) -> Result<Lac, String> {
        l2tp.limits.max_tunnels = tunnels + 16;
        l2tp.limits.max_sessions_per_tunnel = sessions + 16;
        // One emulator stands for every LAC: a restarted LNS's recovery tunnels (RFC 4951
        // §3.2.1) all come from one address at once, which the per-source flood limits would
        // refuse beyond 256.
        l2tp.limits.max_half_open = l2tp.limits.max_half_open.max(tunnels + 16);
        l2tp.limits.max_half_open_per_source = tunnels + 16;
        l2tp.limits.sccrq_per_source_burst = l2tp
            .limits
            .sccrq_per_source_burst
            .max(u32::try_from(tunnels + 16).unwrap_or(u32::MAX));
        let node = Node::new(
            NodeConfig {
                l2tp,
                ppp: Arc::new(ppp),
                credentials: Arc::new(MemoryCredentials::new()),
                pool: None,
                attachment_circuits: HashMap::new(),
                random: l2xdp_controlplane::random::Random::from_os().map_err(|e| e.to_string())?,
            },
            Box::new(MemoryDataPlane::new()),
        );
        let sock = L2tpSocket::bind_udp(bind).map_err(|e| format!("bind {bind}: {e}"))?;
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (handle, task) = Driver::new(node, vec![sock])
            .map_err(|e| e.to_string())?
            .with_events(tx)
            .spawn();
        Ok(Lac {
            handle,
            events,
            task,
        })
    }

    /// Phase 1: `n` L2TPv2 control connections to `lns`, all up (any going down fails).
    pub async fn open_tunnels(
        &mut self,
        lns: SocketAddr,
        n: usize,
        deadline: Deadline,
    ) -> Result<Vec<TunnelId>, String> {
        let peer = Peer::udp(lns);
        let mut tunnels: Vec<TunnelId> = Vec::with_capacity(n);
        for _ in 0..n {
            tunnels.push(
                self.handle
                    .open_tunnel(peer, Version::V2)
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?,
            );
        }
        let mut up = 0;
        while up < n {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(NodeEvent::TunnelUp { .. })) => up += 1,
                Ok(Some(NodeEvent::TunnelDown { reason, .. })) => {
                    return Err(format!("a tunnel went down: {reason}"))
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Err(format!("only {up} tunnels came up")),
            }
        }
        Ok(tunnels)
    }

    /// Phase 2: `per_tunnel` sessions on each of `tunnels` (session `i` on tunnel
    /// `i % tunnels`, as user `i`), PPP through IPCP, at most `in_flight` being set up at a
    /// time (a new one is opened as one reaches IPCP). Any session or tunnel going down fails.
    pub async fn open_sessions(
        &mut self,
        tunnels: &[TunnelId],
        per_tunnel: usize,
        in_flight: usize,
        deadline: Deadline,
    ) -> Result<SessionsUp, String> {
        let n = tunnels.len() * per_tunnel;
        let mut todo = (0..n).map(|i| (tunnels[i % tunnels.len()], i));
        let mut opened: HashMap<(TunnelId, u32), Instant> = HashMap::with_capacity(n);
        let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
            .map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let (mut iccn, mut ipcp) = (0, 0);
        let (mut iccn_at, mut ipcp_at) = (t1, t1);
        let mut up = Vec::with_capacity(n);
        for (t, i) in todo.by_ref().take(in_flight.max(1)) {
            let s = open_one(&self.handle, t, i).await?;
            opened.insert((t, s), Instant::now());
        }
        while ipcp < n {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(NodeEvent::SessionUp { .. })) => {
                    iccn += 1;
                    iccn_at = Instant::now();
                }
                Ok(Some(
                    e @ NodeEvent::PppUp {
                        tunnel, session, ..
                    },
                )) => {
                    up.push(e);
                    ipcp += 1;
                    ipcp_at = Instant::now();
                    if let Some(t) = opened.remove(&(tunnel, session)) {
                        let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    if let Some((t, i)) = todo.next() {
                        let s = open_one(&self.handle, t, i).await?;
                        opened.insert((t, s), Instant::now());
                    }
                }
                Ok(Some(e @ (NodeEvent::SessionDown { .. } | NodeEvent::TunnelDown { .. }))) => {
                    return Err(format!("during set-up: {e:?}"))
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    return Err(format!(
                        "only {iccn} sessions through ICCN, {ipcp} through IPCP"
                    ))
                }
            }
        }
        Ok(SessionsUp {
            started: t1,
            iccn_at,
            ipcp_at,
            latency_us: hist,
            up,
        })
    }

    /// One more session on `tunnel` as user `i`, PPP through IPCP: its `PppUp` event (any
    /// session or tunnel going down fails).
    pub async fn open_session(
        &mut self,
        tunnel: TunnelId,
        i: usize,
        deadline: Deadline,
    ) -> Result<NodeEvent, String> {
        let s = open_one(&self.handle, tunnel, i).await?;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(
                    e @ NodeEvent::PppUp {
                        tunnel: t, session, ..
                    },
                )) if t == tunnel && session == s => return Ok(e),
                Ok(Some(e @ (NodeEvent::SessionDown { .. } | NodeEvent::TunnelDown { .. }))) => {
                    return Err(format!("during set-up: {e:?}"))
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Err(format!("session user{i} did not reach IPCP")),
            }
        }
    }

    /// Control-message retransmissions so far.
    pub async fn retransmissions(&self) -> Result<u64, String> {
        self.handle
            .inspect(|n| n.registry().counters().retransmissions)
            .await
            .map_err(|e| e.to_string())
    }

    /// Stops the driver.
    pub async fn stop(self) {
        self.handle.shutdown().await;
        let _ = self.task.await;
    }
}

async fn open_one(lac: &Handle, tunnel: TunnelId, i: usize) -> Result<u32, String> {
    let auth = ClientAuth {
        user: format!("user{i}"),
        password: format!("pw{i}").into_bytes(),
    };
    lac.open_session(tunnel, CallParams::default(), Some(auth))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
