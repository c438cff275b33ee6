//! The lab pieces that need the control plane, for tests, benches and demos: a [`Node`] run by
//! a [`Driver`] on its own thread inside a network namespace ([`NodeThread`]), waiting for its
//! [`NodeEvent`]s ([`wait_for`]), and bringing up tunnels and PPP sessions from a LAC
//! ([`NodeThread::bring_up`]), the LAC's view of a session ([`subscriber`]), and `l2xdpd` as
//! a process in the lab's LNS namespace ([`l2xdpd`]). The namespaces, topology and traffic
//! themselves are this crate's ([`crate::topology`], [`crate::traffic`]).
//!
//! Everything here is a fixture: a failure panics with what failed. Time limits only bound a
//! hung run.

pub mod l2xdpd;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use l2xdp_dataplane::DataPlane;
use l2xdp_wire::l2tp::header::Version;
use tokio::sync::{mpsc, oneshot};

use l2xdp_controlplane::driver::{Driver, Handle};
use l2xdp_controlplane::l2tp::{CallParams, Peer, TunnelId};
use l2xdp_controlplane::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::socket::L2tpSocket;

use crate::traffic::{Sub, LIMIT};
use crate::Netns;

/// Waits (at most `limit`, which only bounds a hung run) for `n` events matching `pick`,
/// failing on the first one `fail` flags; returns the matching events.
pub async fn wait_for(
    limit: Duration,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
    n: usize,
    what: &str,
    pick: impl Fn(&NodeEvent) -> bool,
    fail: impl Fn(&NodeEvent) -> bool,
) -> Vec<NodeEvent> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(limit, async {
        while got.len() < n {
            let Some(e) = events.recv().await else {
                panic!("event stream ended while waiting for {what}");
            };
            assert!(!fail(&e), "while waiting for {what}: {e:?}");
            if pick(&e) {
                got.push(e);
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "{what}: only {} of {n} after {limit:?}",
        got.len()
    );
    got
}

/// Something went down or failed: a tunnel or session down, authentication or an RFC 4951
/// recovery failed.
pub fn is_down(e: &NodeEvent) -> bool {
    matches!(
        e,
        NodeEvent::TunnelDown { .. }
            | NodeEvent::SessionDown { .. }
            | NodeEvent::AuthFailed { .. }
            | NodeEvent::RecoveryFailed { .. }
    )
}

/// A node running on its own thread, in a namespace (sockets belong to the namespace of the
/// thread that creates them), on a current-thread runtime. Dropping it (or
/// [`kill`](Self::kill)) drops the runtime: the driver task is dropped where it stands — no
/// CDN, no StopCCN, no fast-path removal.
pub struct NodeThread {
    /// Commands to the node.
    pub handle: Handle,
    /// Everything the node reports.
    pub events: mpsc::UnboundedReceiver<NodeEvent>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeThread {
    /// Starts a thread that enters `ns`, binds an L2TP UDP socket to `bind` there, and runs
    /// the node of `make`'s configuration and fast path (made on that thread) until stopped.
    pub fn start(
        ns: Arc<Netns>,
        bind: SocketAddr,
        make: impl FnOnce() -> (NodeConfig, Box<dyn DataPlane>) + Send + 'static,
    ) -> NodeThread {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _in = ns.enter();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let socket = L2tpSocket::bind_udp(bind).expect("bind the L2TP socket");
                let (cfg, dp) = make();
                let (tx, events) = mpsc::unbounded_channel();
                let driver = Driver::new(Node::new(cfg, dp), vec![socket])
                    .expect("driver")
                    .with_events(tx);
                let (handle, _task) = driver.spawn();
                let _ = ready_tx.send((handle, events));
                // Until told to stop, or until the owner is gone (a failing test).
                let _ = stop_rx.await;
            });
            // No shutdown: dropping the runtime drops the driver task mid-flight.
            drop(rt);
        });
        let (handle, events) = ready_rx
            .recv_timeout(LIMIT)
            .expect("the node thread started its driver");
        NodeThread {
            handle,
            events,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the node abruptly and waits for its thread.
    pub fn kill(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Opens a session for user `user<n>` / `pw<n>` in tunnel `t`.
    pub async fn open_user_session(&self, t: TunnelId, n: usize) {
        open_user_session(&self.handle, t, n).await;
    }

    /// Opens an L2TPv3 pseudowire with Remote End ID `pw<n>` in tunnel `t`.
    pub async fn open_pseudowire(&self, t: TunnelId, n: usize) {
        open_pseudowire(&self.handle, t, n).await;
    }

    /// [`bring_up`] from this LAC.
    pub async fn bring_up(
        &mut self,
        peer: Peer,
        version: Version,
        tunnels: usize,
        sessions: usize,
    ) -> (Vec<TunnelId>, Vec<NodeEvent>) {
        bring_up(
            &self.handle,
            &mut self.events,
            LIMIT,
            peer,
            version,
            tunnels,
            sessions,
        )
        .await
    }
}

/// Opens a session for user `user<n>` / `pw<n>` in tunnel `t` of the LAC behind `handle`.
pub async fn open_user_session(handle: &Handle, t: TunnelId, n: usize) {
    let auth = ClientAuth {
        user: format!("user{n}"),
        password: format!("pw{n}").into_bytes(),
    };
    handle
        .open_session(t, CallParams::default(), Some(auth))
        .await
        .expect("running")
        .expect("open session");
}

/// Opens an L2TPv3 Ethernet pseudowire with Remote End ID `pw<n>` (RFC 3931 §5.4.4) in
/// tunnel `t` of the LCCE behind `handle`.
pub async fn open_pseudowire(handle: &Handle, t: TunnelId, n: usize) {
    let params = CallParams {
        remote_end_id: format!("pw{n}").into_bytes(),
        ..CallParams::default()
    };
    handle
        .open_session(t, params, None)
        .await
        .expect("running")
        .expect("open pseudowire");
}

/// From the LAC behind `handle` (its events in `events`): `tunnels` tunnels of `version` to
/// `peer`, waited up, then `sessions` sessions in each, numbered in order from 0: for L2TPv2
/// PPP sessions of users `user<n>` (`pw<n>`), waited until PPP is up on all of them; for
/// L2TPv3 Ethernet pseudowires with Remote End ID `pw<n>` ([`open_pseudowire`]), waited
/// until every one is up. Fails on anything going down ([`is_down`]); `limit` only bounds a
/// hung run. Returns the tunnels and the `PppUp` (v2) or `SessionUp` (v3) events.
pub async fn bring_up(
    handle: &Handle,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
    limit: Duration,
    peer: Peer,
    version: Version,
    tunnels: usize,
    sessions: usize,
) -> (Vec<TunnelId>, Vec<NodeEvent>) {
    let mut ids: Vec<TunnelId> = Vec::new();
    for _ in 0..tunnels {
        ids.push(
            handle
                .open_tunnel(peer, version)
                .await
                .expect("running")
                .expect("open tunnel"),
        );
    }
    wait_for(
        limit,
        events,
        tunnels,
        "tunnels up",
        |e| matches!(e, NodeEvent::TunnelUp { .. }),
        is_down,
    )
    .await;
    let mut n = 0;
    for &t in &ids {
        for _ in 0..sessions {
            match version {
                Version::V2 => open_user_session(handle, t, n).await,
                Version::V3 => open_pseudowire(handle, t, n).await,
            }
            n += 1;
        }
    }
    let up = wait_for(
        limit,
        events,
        tunnels * sessions,
        "sessions up at the LAC",
        |e| match version {
            Version::V2 => matches!(e, NodeEvent::PppUp { .. }),
            Version::V3 => matches!(e, NodeEvent::SessionUp { .. }),
        },
        is_down,
    )
    .await;
    (ids, up)
}

/// The LAC's view of the session of a `PppUp` event of the LAC behind `handle` (`None` for
/// other events): its IDs and the LNS's, sequencing, and the address IPCP gave the subscriber.
pub async fn subscriber(handle: &Handle, e: &NodeEvent) -> Option<Sub> {
    let NodeEvent::PppUp {
        tunnel,
        session,
        local_ipv4,
        ..
    } = e
    else {
        return None;
    };
    let (t, s) = (*tunnel, *session);
    let up = handle
        .inspect(move |n| n.session((t, s)).cloned())
        .await
        .expect("LAC running")
        .expect("the LAC knows its session");
    let addr = local_ipv4.expect("IPCP gave the subscriber an address");
    let sequencing = up.sequencing_rx || up.sequencing_tx;
    Some(Sub::new(up.our_ids, up.peer_ids, sequencing, addr))
}

impl Drop for NodeThread {
    fn drop(&mut self) {
        self.kill();
    }
}
