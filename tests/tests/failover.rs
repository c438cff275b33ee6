//! RFC 4951 failover end to end over loopback UDP: an LNS is killed (no CDN, no StopCCN) with
//! 10 tunnels × 5 PPP sessions up, and a new LNS process — the same failover state directory,
//! the same fast path (which outlives the control plane, as pinned XDP maps do), the same
//! address and port — recovers them:
//!
//! - every tunnel is recovered (a recovery tunnel, the control channel reset, FSQ/FSR) and the
//!   LAC sees no TunnelDown or SessionDown;
//! - every session keeps its IDs and its fast-path entry with the same subscriber address;
//! - the subscribers' PPP keepalives (LCP Echo-Requests from the LAC) are answered by the
//!   restored links with the saved Magic-Number, so PPP stays up;
//! - a new session comes up afterwards with an address not already in use;
//! - every datagram both sides sent decodes cleanly in tshark.
//!
//! Time limits only bound a hung run.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use l2xdp_controlplane::driver::{Driver, Handle};
use l2xdp_controlplane::l2tp::failover::{RedbStore, StateStore};
use l2xdp_controlplane::l2tp::{CallParams, FailoverConfig, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::node::{AppData, ClientAuth, Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{AuthMethod, Ipv4Pool, Ipv4Range, MemoryCredentials, PppConfig};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::{
    Binding, DataPlane, DataPlaneError, MemoryDataPlane, SessionCounters, SessionEntry,
};
use l2xdp_tests::cp::{bring_up, check_capture, is_down, users, wait_for};
use l2xdp_wire::datapath::SessionKey;
use l2xdp_wire::l2tp::header::Version;
use tokio::sync::mpsc;

const TUNNELS: usize = 10;
const SESSIONS: usize = 5;
/// Bounds a hung run; not a performance expectation.
const LIMIT: Duration = Duration::from_secs(120);
const POOL: &str = "100.64.0.2-100.64.0.254";

/// The fast path shared by the LNS processes of the test: it outlives each of them.
#[derive(Clone, Default)]
struct SharedDataPlane(Arc<Mutex<MemoryDataPlane>>);

impl SharedDataPlane {
    fn entries(&self) -> Vec<SessionEntry> {
        let mut v = self.sessions().expect("sessions");
        v.sort_by_key(|e| format!("{:?}", e.key()));
        v
    }
    fn sequence_resets(&self, key: &SessionKey) -> u64 {
        self.0.lock().expect("fast path").sequence_resets(key)
    }
}

impl DataPlane for SharedDataPlane {
    fn install(&mut self, entry: &SessionEntry) -> Result<(), DataPlaneError> {
        self.0.lock().expect("fast path").install(entry)
    }
    fn remove(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        self.0.lock().expect("fast path").remove(key)
    }
    fn reset_sequence(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        self.0.lock().expect("fast path").reset_sequence(key)
    }
    fn sessions(&self) -> Result<Vec<SessionEntry>, DataPlaneError> {
        self.0.lock().expect("fast path").sessions()
    }
    fn counters(&self, key: &SessionKey) -> Result<SessionCounters, DataPlaneError> {
        self.0.lock().expect("fast path").counters(key)
    }
}

fn l2tp_config(name: &str) -> L2tpConfig {
    let mut c = L2tpConfig {
        host_name: name.into(),
        ..L2tpConfig::default()
    };
    c.failover = Some(FailoverConfig {
        control: true,
        data: true,
        recovery_time_ms: 5000,
    });
    c.hello_interval_secs = 3600;
    // RFC 4951 recovery is what this test is about (tests/resume.rs: transparent resume).
    c.resume = false;
    c.limits.max_sessions_per_tunnel = 100;
    // L2TPv3 pseudowires carry 8-byte cookies (RFC 3931 §4.1).
    c.pseudowire.cookie_len = 8;
    c
}

fn lns_ppp() -> PppConfig {
    let mut p = PppConfig {
        auth: vec![AuthMethod::Chap],
        ..PppConfig::default()
    };
    p.ipcp.local_address = Ipv4Addr::new(100, 64, 0, 1);
    p.ipcp.pool = vec![POOL.parse::<Ipv4Range>().expect("range")];
    p.ipcp.dns = vec![Ipv4Addr::new(192, 0, 2, 53)];
    p
}

/// The subscribers keep PPP alive with Echo-Requests every second; five unanswered ones and
/// their link (and session) would go down.
fn lac_ppp() -> PppConfig {
    PppConfig {
        max_configure: 40,
        echo_interval: Duration::from_secs(1),
        echo_failures: 5,
        ..PppConfig::default()
    }
}

struct Side {
    handle: Handle,
    task: tokio::task::JoinHandle<Node>,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    addr: SocketAddr,
    capture: PathBuf,
}

fn capture_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("l2xdp-fo-{name}-{}.pcap", std::process::id()))
}

fn run(node: Node, socket: L2tpSocket, name: &str) -> Side {
    let capture = capture_path(name);
    let (tx, events) = mpsc::unbounded_channel();
    let driver = Driver::new(node, vec![socket])
        .expect("driver")
        .with_events(tx)
        .with_capture(&capture)
        .expect("capture");
    let addr = driver.local_addrs()[0];
    let (handle, task) = driver.spawn();
    Side {
        handle,
        task,
        events,
        addr,
        capture,
    }
}

/// An LNS process: a fresh node (fresh pool) over `dir`'s state and the shared fast path,
/// recovering what the store holds before it takes any input, as `l2xdpd` does.
async fn start_lns(name: &str, addr: SocketAddr, dir: &Path, fast: &SharedDataPlane) -> Side {
    start_lns_with_circuits(name, addr, dir, fast, HashMap::new()).await
}

/// [`start_lns`] with L2TPv3 attachment circuits.
async fn start_lns_with_circuits(
    name: &str,
    addr: SocketAddr,
    dir: &Path,
    fast: &SharedDataPlane,
    attachment_circuits: HashMap<Vec<u8>, u32>,
) -> Side {
    let pool = Ipv4Pool::new(&[POOL.parse::<Ipv4Range>().expect("range")], &[]).expect("pool");
    let cfg = NodeConfig {
        l2tp: l2tp_config("lns"),
        ppp: Arc::new(lns_ppp()),
        credentials: Arc::new(users(TUNNELS * SESSIONS + 1)),
        pool: Some(Arc::new(Mutex::new(pool))),
        attachment_circuits,
        random: l2xdp_controlplane::random::Random::from_os().expect("entropy"),
    };
    let node = Node::new(cfg, Box::new(fast.clone()));
    start_recovered(node, name, addr, dir).await
}

/// Gives `node` `dir`'s state, recovers what it holds before any input, as `l2xdpd` does, and
/// runs it on `addr` (the same address as the killed process's, once that one is gone).
async fn start_recovered(node: Node, name: &str, addr: SocketAddr, dir: &Path) -> Side {
    let mut node = node.with_store(Box::new(RedbStore::open(dir).expect("state dir")));
    node.recover(Instant::now()).expect("recover");
    // The killed process's socket may take a moment to go.
    let mut tries = 0;
    let socket = loop {
        match L2tpSocket::bind_udp(addr) {
            Ok(s) => break s,
            Err(e) if tries < 100 => {
                tries += 1;
                eprintln!("bind {addr}: {e}, retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    run(node, socket, name)
}

fn lac_node() -> Node {
    let cfg = NodeConfig {
        l2tp: l2tp_config("lac"),
        ppp: Arc::new(lac_ppp()),
        credentials: Arc::new(MemoryCredentials::new()),
        pool: None,
        attachment_circuits: HashMap::new(),
        random: l2xdp_controlplane::random::Random::from_os().expect("entropy"),
    };
    Node::new(cfg, Box::new(MemoryDataPlane::new()))
}

/// A LAC without a failover store (`name` names its capture: one per test).
fn start_lac(name: &str, lo: IpAddr) -> Side {
    run(
        lac_node(),
        L2tpSocket::bind_udp(SocketAddr::new(lo, 0)).expect("bind"),
        name,
    )
}

/// A LAC process with `dir`'s failover state, recovering what it holds.
async fn start_lac_with_store(name: &str, addr: SocketAddr, dir: &Path) -> Side {
    start_recovered(lac_node(), name, addr, dir).await
}

fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("l2xdp-fo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Opens `TUNNELS` tunnels of `SESSIONS` PPP sessions each (users `user0`…) from `lac` to
/// `lns` and waits for PPP up on both sides; the tunnels.
async fn bring_up_all(lac: &mut Side, lns: &mut Side) -> Vec<TunnelId> {
    let peer = Peer::udp(lns.addr);
    let (tunnels, _) = bring_up(
        &lac.handle,
        &mut lac.events,
        LIMIT,
        peer,
        Version::V2,
        TUNNELS,
        SESSIONS,
    )
    .await;
    let total = TUNNELS * SESSIONS;
    wait_for(
        LIMIT,
        &mut lns.events,
        total,
        "PPP up at the LNS",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        is_down,
    )
    .await;
    tunnels
}

/// Opens one more session (user `user{TUNNELS * SESSIONS}`) in `tunnel` and checks it comes up
/// with an address none of `before` has, bound in `fast` next to the `before` entries.
async fn new_session_comes_up(
    lac: &mut Side,
    tunnel: TunnelId,
    before: &[(TunnelId, u32, u32, Option<Ipv4Addr>)],
    fast: &SharedDataPlane,
) {
    let total = TUNNELS * SESSIONS;
    lac.handle
        .open_session(
            tunnel,
            CallParams::default(),
            Some(ClientAuth {
                user: format!("user{total}"),
                password: format!("pw{total}").into_bytes(),
            }),
        )
        .await
        .expect("running")
        .expect("open session");
    let up = wait_for(
        LIMIT,
        &mut lac.events,
        1,
        "the new session's PPP",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        is_down,
    )
    .await;
    let NodeEvent::PppUp {
        local_ipv4: Some(addr),
        ..
    } = up[0]
    else {
        panic!("{up:?}");
    };
    assert!(before.iter().all(|s| s.3 != Some(addr)), "{addr} is taken");
    let entries = fast.entries();
    assert_eq!(entries.len(), total + 1);
    assert!(entries.iter().any(|e| matches!(
        &e.binding,
        Binding::Subscriber { ipv4: Some(a), .. } if *a == addr
    )));
}

/// Nothing went down at `side` and no tunnel came up (a recovery tunnel is not reported up).
fn assert_nothing_went_down(side: &mut Side, who: &str) {
    while let Ok(e) = side.events.try_recv() {
        assert!(!is_down(&e), "{who}: {e:?}");
        assert!(!matches!(e, NodeEvent::TunnelUp { .. }), "{who}: {e:?}");
    }
}

/// (tunnel, session, peer session, subscriber address) of every session of a node.
async fn lns_sessions(h: &Handle) -> Vec<(TunnelId, u32, u32, Option<Ipv4Addr>)> {
    h.inspect(|n| {
        n.session_status()
            .into_iter()
            .map(|s| (s.tunnel, s.session, s.peer_session, s.ipv4))
            .collect()
    })
    .await
    .expect("running")
}

/// (tunnel, state, peer tunnel, sessions) of every tunnel of a node.
async fn lns_tunnels(h: &Handle) -> Vec<(TunnelId, String, u32, usize)> {
    h.inspect(|n| {
        n.tunnel_status()
            .into_iter()
            .map(|t| (t.tunnel, t.state, t.peer_tunnel, t.sessions))
            .collect()
    })
    .await
    .expect("running")
}

/// `after` holds the tunnels of `before` as they were (IDs, state, peer IDs, sessions); any
/// other tunnel (a recovery tunnel, lingering in the StopCCN hold time) is not established.
fn assert_old_tunnels_kept(
    after: &[(TunnelId, String, u32, usize)],
    before: &[(TunnelId, String, u32, usize)],
) {
    let (old, others): (Vec<_>, Vec<_>) = after
        .iter()
        .cloned()
        .partition(|t| before.iter().any(|b| b.0 == t.0));
    assert_eq!(old, before);
    assert!(
        others.iter().all(|t| t.1 != before[0].1),
        "recovery tunnels not left established: {after:?}"
    );
}

/// Echo-Replies each LAC session's PPP link has received.
async fn lac_echo_replies(h: &Handle) -> Vec<((TunnelId, u32), u64)> {
    h.inspect(|n| {
        n.session_refs()
            .into_iter()
            .map(|s| {
                let r = n.link(s).map_or(0, |l| l.counters().echo_replies_received);
                (s, r)
            })
            .collect()
    })
    .await
    .expect("running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lns_restart_recovers_tunnels_sessions_ppp_and_fast_path() {
    let lo: IpAddr = "127.0.0.1".parse().expect("addr");
    let dir = state_dir("state");
    let fast = SharedDataPlane::default();

    // The first LNS process (nothing to recover) and the LAC.
    let mut lns = start_lns("lns1", SocketAddr::new(lo, 0), &dir, &fast).await;
    let lns_addr = lns.addr;
    let mut lac = start_lac("lac", lo);
    let tunnels = bring_up_all(&mut lac, &mut lns).await;
    let total = TUNNELS * SESSIONS;
    let before = lns_sessions(&lns.handle).await;
    let tunnels_before = lns_tunnels(&lns.handle).await;
    assert_eq!(tunnels_before.len(), TUNNELS);
    assert_eq!(before.len(), total);
    assert!(before.iter().all(|s| s.3.is_some()), "{before:?}");
    let fast_before = fast.entries();
    assert_eq!(fast_before.len(), total);

    // Kill the LNS: no CDN, no StopCCN; the fast path and the state directory stay.
    lns.handle.shutdown().await;
    let old = lns.task.await.expect("LNS task");
    drop(old);
    // Everything, PPP included, was committed to the store (what a new process finds).
    let state = RedbStore::open(&dir).expect("dir").load().expect("load");
    assert_eq!(state.tunnels.len(), TUNNELS);
    assert_eq!(state.sessions.len(), total);
    for s in &state.sessions {
        let app = AppData::decode(&s.app).expect("app data");
        let ppp = app.ppp.expect("PPP state persisted");
        assert!(ppp.peer_ipv4.is_some() && ppp.local_magic != 0 && ppp.peer_magic != 0);
    }
    let echoes_before = lac_echo_replies(&lac.handle).await;
    assert_eq!(echoes_before.len(), total);

    // A new LNS process on the same address recovers.
    let mut lns2 = start_lns("lns2", lns_addr, &dir, &fast).await;
    let restored = wait_for(
        LIMIT,
        &mut lns2.events,
        total,
        "sessions restored",
        |e| matches!(e, NodeEvent::SessionRestored { .. }),
        is_down,
    )
    .await;
    assert!(restored
        .iter()
        .all(|e| matches!(e, NodeEvent::SessionRestored { ppp: true, .. })));
    tunnels_recovered(&mut lns2.events, "tunnels recovered").await;
    // The old tunnels with their IDs and state; the recovery tunnels were closed (they
    // linger in the StopCCN hold time).
    assert_old_tunnels_kept(&lns_tunnels(&lns2.handle).await, &tunnels_before);

    // Same sessions, same IDs both sides, same subscriber addresses; the fast path untouched.
    assert_eq!(lns_sessions(&lns2.handle).await, before);
    assert_eq!(fast.entries(), fast_before);
    let c = lns2
        .handle
        .inspect(|n| n.counters())
        .await
        .expect("running");
    assert_eq!(c.restored, total as u64);
    assert_eq!(c.restored_kept, total as u64);
    assert_eq!(c.stale_removed, 0);
    assert_eq!(c.store_errors, 0);
    for e in &fast_before {
        assert_eq!(fast.sequence_resets(&e.key()), 0, "v2 without sequencing");
    }

    // The subscribers' keepalives are answered by the restored links.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let now = lac_echo_replies(&lac.handle).await;
        assert_eq!(now.len(), total, "LAC sessions all still there");
        let all = now
            .iter()
            .zip(&echoes_before)
            .all(|((s, r), (s0, r0))| s == s0 && r > r0);
        if all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "echoes not answered after the restart: {now:?} vs {echoes_before:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new session comes up, with an address nobody has.
    new_session_comes_up(&mut lac, tunnels[0], &before, &fast).await;

    // Nothing went down at the LAC, nothing at the new LNS.
    assert_nothing_went_down(&mut lac, "LAC");
    assert_nothing_went_down(&mut lns2, "LNS");

    lac.handle.shutdown().await;
    lns2.handle.shutdown().await;
    let _ = lac.task.await;
    let _ = lns2.task.await;
    let ports = [lac.addr.port(), lns_addr.port()];
    check_capture(&lns.capture, &[], &ports);
    check_capture(&lns2.capture, &[], &ports);
    check_capture(&lac.capture, &[], &ports);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Roles swapped: the LAC (the initiator, the PPP client) keeps the failover state and is
/// killed (no CDN, no StopCCN); a new LAC process on the same address recovers from it, and the
/// LNS is the RFC 4951 remote endpoint (§3.2.1: it answers the recovery tunnel, then the FSQs).
///
/// - the LNS sees nothing go down: its tunnels and sessions keep their IDs, its fast path is
///   untouched;
/// - every tunnel is recovered at the new LAC and every session restored with the same IDs
///   both sides, its PPP client link rebuilt from the state the LAC persisted (LCP/IPCP
///   results and the user, never the password) with its address;
/// - a new session comes up afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lac_restart_recovers_with_l2xdp_as_remote_endpoint() {
    let lo: IpAddr = "127.0.0.1".parse().expect("addr");
    let lns_dir = state_dir("swap-lns");
    let lac_dir = state_dir("swap-lac");
    let fast = SharedDataPlane::default();

    let mut lns = start_lns("swap-lns", SocketAddr::new(lo, 0), &lns_dir, &fast).await;
    let mut lac = start_lac_with_store("swap-lac1", SocketAddr::new(lo, 0), &lac_dir).await;
    let lac_addr = lac.addr;
    let tunnels = bring_up_all(&mut lac, &mut lns).await;
    let total = TUNNELS * SESSIONS;

    let lns_before = lns_sessions(&lns.handle).await;
    let lns_tunnels_before = lns_tunnels(&lns.handle).await;
    assert_eq!(lns_before.len(), total);
    assert!(lns_before.iter().all(|s| s.3.is_some()), "{lns_before:?}");
    let fast_before = fast.entries();
    assert_eq!(fast_before.len(), total);
    let lac_before = lns_sessions(&lac.handle).await;
    let lac_tunnels_before = lns_tunnels(&lac.handle).await;
    assert_eq!(lac_before.len(), total);
    assert_eq!(lac_tunnels_before.len(), TUNNELS);

    // Kill the LAC; a new LAC process on the same address recovers.
    lac.handle.shutdown().await;
    drop(lac.task.await.expect("LAC task"));
    // The LAC's state was committed: its tunnels (as initiator) and sessions, each with its PPP
    // client's state and user (its password is not stored).
    let state = RedbStore::open(&lac_dir)
        .expect("dir")
        .load()
        .expect("load");
    assert_eq!(state.tunnels.len(), TUNNELS);
    assert!(state.tunnels.iter().all(|t| t.initiator));
    assert_eq!(state.sessions.len(), total);
    for s in &state.sessions {
        let app = AppData::decode(&s.app).expect("app data");
        assert!(app.ppp.is_some(), "{app:?}");
        let user = app.client_user.expect("the client's user");
        // The password is not stored (the users file has it).
        let password = format!("pw{}", &user[4..]);
        assert!(
            !s.app
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{:?}",
            s.app
        );
    }
    let mut lac2 = start_lac_with_store("swap-lac2", lac_addr, &lac_dir).await;
    let restored = wait_for(
        LIMIT,
        &mut lac2.events,
        total,
        "sessions restored at the LAC",
        |e| matches!(e, NodeEvent::SessionRestored { .. }),
        is_down,
    )
    .await;
    // The PPP client state was persisted with the sessions: each comes back with its link
    // up (restored, not renegotiated) and its address.
    assert!(
        restored.iter().all(|e| matches!(
            e,
            NodeEvent::SessionRestored {
                ppp: true,
                ipv4: Some(_),
                ..
            }
        )),
        "{restored:?}"
    );
    let recovered = tunnels_recovered(&mut lac2.events, "tunnels recovered at the LAC").await;
    let mut recovered_ids: Vec<TunnelId> = recovered
        .iter()
        .filter_map(|e| match e {
            NodeEvent::TunnelRecovered { tunnel, .. } => Some(*tunnel),
            _ => None,
        })
        .collect();
    recovered_ids.sort_unstable();
    let mut ids = tunnels.clone();
    ids.sort_unstable();
    assert_eq!(recovered_ids, ids);

    // The LAC: the old tunnels with their IDs, state and peers' IDs; the same sessions with
    // the same IDs both sides and the same addresses, PPP client links up.
    assert_old_tunnels_kept(&lns_tunnels(&lac2.handle).await, &lac_tunnels_before);
    let lac_after = lns_sessions(&lac2.handle).await;
    assert_eq!(lac_after, lac_before);
    let (_, ppp_up) = lac2
        .handle
        .inspect(|n| n.session_counts())
        .await
        .expect("running");
    assert_eq!(ppp_up, total, "PPP client links restored up");
    let c = lac2
        .handle
        .inspect(|n| n.counters())
        .await
        .expect("running");
    assert_eq!(c.restored, total as u64);
    assert_eq!(c.store_errors, 0);

    // The LNS, the remote endpoint: everything as it was, the fast path untouched.
    assert_old_tunnels_kept(&lns_tunnels(&lns.handle).await, &lns_tunnels_before);
    assert_eq!(lns_sessions(&lns.handle).await, lns_before);
    assert_eq!(fast.entries(), fast_before);

    // A new session comes up in a recovered tunnel, with an address nobody has.
    new_session_comes_up(&mut lac2, tunnels[0], &lns_before, &fast).await;

    assert_nothing_went_down(&mut lns, "LNS");
    assert_nothing_went_down(&mut lac2, "LAC");

    lac2.handle.shutdown().await;
    lns.handle.shutdown().await;
    let _ = lac2.task.await;
    let _ = lns.task.await;
    let ports = [lac_addr.port(), lns.addr.port()];
    check_capture(&lac.capture, &[], &ports);
    check_capture(&lac2.capture, &[], &ports);
    check_capture(&lns.capture, &[], &ports);
    let _ = std::fs::remove_dir_all(&lns_dir);
    let _ = std::fs::remove_dir_all(&lac_dir);
}

/// The LNS-restart flow with L2TPv3 Ethernet pseudowires (8-byte cookies) bound to attachment
/// circuits in the shared fast path: every pseudowire is restored with the same IDs, cookies
/// and binding, its fast-path entry kept, and none goes down at the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_lns_restart_recovers_pseudowires() {
    let lo: IpAddr = "127.0.0.1".parse().expect("addr");
    let dir = state_dir("v3");
    let fast = SharedDataPlane::default();
    let total = TUNNELS * SESSIONS;
    let circuits: HashMap<Vec<u8>, u32> = (0..total)
        .map(|i| (format!("pw{i}").into_bytes(), 100 + i as u32))
        .collect();

    let mut lns = start_lns_with_circuits(
        "v3-lns1",
        SocketAddr::new(lo, 0),
        &dir,
        &fast,
        circuits.clone(),
    )
    .await;
    let lns_addr = lns.addr;
    let mut lac = start_lac("v3-lac", lo);
    let mut tunnels = Vec::new();
    for _ in 0..TUNNELS {
        tunnels.push(
            lac.handle
                .open_tunnel(Peer::udp(lns_addr), Version::V3)
                .await
                .expect("running")
                .expect("open tunnel"),
        );
    }
    wait_for(
        LIMIT,
        &mut lac.events,
        TUNNELS,
        "v3 tunnels up",
        |e| matches!(e, NodeEvent::TunnelUp { .. }),
        is_down,
    )
    .await;
    let mut n = 0;
    for &t in &tunnels {
        for _ in 0..SESSIONS {
            let params = CallParams {
                remote_end_id: format!("pw{n}").into_bytes(),
                ..CallParams::default()
            };
            lac.handle
                .open_session(t, params, None)
                .await
                .expect("running")
                .expect("open pseudowire");
            n += 1;
        }
    }
    for side in [&mut lac, &mut lns] {
        wait_for(
            LIMIT,
            &mut side.events,
            total,
            "pseudowires up",
            |e| matches!(e, NodeEvent::SessionUp { .. }),
            is_down,
        )
        .await;
    }

    // (IDs, peer IDs, cookies both ways, Remote End ID) of every pseudowire of the LNS.
    let pseudowires = |h: Handle| async move {
        h.inspect(|n| {
            n.session_refs()
                .into_iter()
                .filter_map(|s| n.session(s))
                .map(|u| {
                    (
                        u.tunnel,
                        u.session,
                        u.peer_session,
                        u.cookie_rx,
                        u.cookie_tx,
                        u.remote_end_id.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("running")
    };
    let before = pseudowires(lns.handle.clone()).await;
    assert_eq!(before.len(), total);
    assert!(
        before
            .iter()
            .all(|p| p.3.as_bytes().len() == 8 && p.4.as_bytes().len() == 8),
        "{before:?}"
    );
    let tunnels_before = lns_tunnels(&lns.handle).await;
    let fast_before = fast.entries();
    assert_eq!(fast_before.len(), total);
    let mut bound: Vec<u32> = fast_before
        .iter()
        .map(|e| match e.binding {
            Binding::AttachmentCircuit { ifindex } => ifindex,
            ref b => panic!("{b:?}"),
        })
        .collect();
    bound.sort_unstable();
    let mut want: Vec<u32> = circuits.values().copied().collect();
    want.sort_unstable();
    assert_eq!(bound, want);

    // Kill the LNS; one pseudowire's fast-path entry is lost with it (the new LNS must
    // install it again, with its outer addresses right); a new LNS on the same address
    // recovers.
    lns.handle.shutdown().await;
    drop(lns.task.await.expect("LNS task"));
    fast.0
        .lock()
        .expect("fast path")
        .remove(&fast_before[0].key())
        .expect("remove one entry");
    let mut lns2 = start_lns_with_circuits("v3-lns2", lns_addr, &dir, &fast, circuits).await;
    let restored = wait_for(
        LIMIT,
        &mut lns2.events,
        total,
        "pseudowires restored",
        |e| matches!(e, NodeEvent::SessionRestored { .. }),
        is_down,
    )
    .await;
    assert!(restored.iter().all(|e| matches!(
        e,
        NodeEvent::SessionRestored {
            ppp: false,
            ipv4: None,
            ..
        }
    )));
    tunnels_recovered(&mut lns2.events, "v3 tunnels recovered").await;
    assert_old_tunnels_kept(&lns_tunnels(&lns2.handle).await, &tunnels_before);
    assert_eq!(pseudowires(lns2.handle.clone()).await, before);
    // The lost entry is back as it was: installed once its tunnel was recovered, with the
    // local address the recovery tunnel's peer talks to (not 0.0.0.0).
    assert_eq!(fast.entries(), fast_before);
    let c = lns2
        .handle
        .inspect(|n| n.counters())
        .await
        .expect("running");
    assert_eq!(c.restored, total as u64);
    assert_eq!(c.restored_kept, total as u64 - 1);
    assert_eq!(c.installs, 1);
    assert_eq!(c.stale_removed, 0);
    assert_eq!(c.store_errors, 0);

    assert_nothing_went_down(&mut lac, "LAC");
    assert_nothing_went_down(&mut lns2, "LNS");
    lac.handle.shutdown().await;
    lns2.handle.shutdown().await;
    let _ = lac.task.await;
    let _ = lns2.task.await;
    let ports = [lac.addr.port(), lns_addr.port()];
    check_capture(&lns.capture, &[], &ports);
    check_capture(&lns2.capture, &[], &ports);
    check_capture(&lac.capture, &[], &ports);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for every tunnel's RFC 4951 recovery (`TUNNELS` TunnelRecovered events, failing on a
/// down event) and checks each kept all `SESSIONS` sessions.
async fn tunnels_recovered(
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
    what: &str,
) -> Vec<NodeEvent> {
    let recovered = wait_for(
        LIMIT,
        events,
        TUNNELS,
        what,
        |e| matches!(e, NodeEvent::TunnelRecovered { .. }),
        is_down,
    )
    .await;
    assert!(recovered.iter().all(
        |e| matches!(e, NodeEvent::TunnelRecovered { sessions, .. } if *sessions == SESSIONS)
    ));
    recovered
}
