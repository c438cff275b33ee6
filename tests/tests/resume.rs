//! Transparent resume end to end (issue 16): the real `l2xdpd` on loopback, in-memory fast
//! path, `[l2tp.failover]` on; a LAC (this crate's, as `l2xdp-bench`'s LAC emulator is) with
//! **no** RFC 4951 Failover Capability, as xl2tpd, 3 tunnels × 4 PPP sessions, LCP echoes
//! every second (five unanswered and a subscriber drops), HELLO every 2 s.
//!
//! - `kill -9` of l2xdpd and a restart 3 s later: every tunnel and session stays up at the
//!   LAC (no TunnelDown, no SessionDown, every HELLO it sent acknowledged), the restored PPP
//!   links answer the LCP echoes, a new call comes up on a resumed tunnel, and `l2xdpctl`'s
//!   view (the control socket) shows them all up and each tunnel resumed;
//! - the same for SIGTERM (a systemd stop/restart): it hands off, it does not tear down;
//! - the sequence state removed from the store (a store that cannot be resumed) and a LAC
//!   without RFC 4951: each of its tunnels gets a StopCCN (RFC 2661 §5.7, result 1), so its
//!   subscribers redial at once instead of waiting for their timers.
//!
//! Time limits only bound a hung run; the time from the restart to the StopCCN is printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::driver::Handle;
use l2xdp_controlplane::l2tp::failover::{RedbStore, StateStore};
use l2xdp_controlplane::l2tp::{Peer, TunnelId};
use l2xdp_controlplane::node::{Node, NodeEvent};
use l2xdp_controlplane::ppp::PppConfig;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_lab::cp::l2xdpd::{self, ask, free_udp_port, Files, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use l2xdp_tests::cp::{bring_up, open_user_session};
use l2xdp_wire::l2tp::header::Version;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(90);
const TUNNELS: usize = 3;
const SESSIONS: usize = 4;
/// How long l2xdpd is down.
const DOWN: Duration = Duration::from_secs(3);
/// How long the LAC is watched after the restart: more than its five LCP echo failures.
const WATCH: Duration = Duration::from_secs(10);

/// One l2xdpd and LAC at a time: on a loaded machine three at once could time a tunnel set-up
/// out before any restart.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Setup {
    files: Files,
    port: u16,
    log: PathBuf,
}

fn configure(dir: &Path) -> Setup {
    let port = free_udp_port().expect("a free port");
    let base = r#"[l2tp]
host_name = "lns-resume"

[l2tp.failover]
control = true
data = true
recovery_time_ms = 10000

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
"#;
    let files = l2xdpd::write_config(
        dir,
        Path::new("base.toml"),
        base,
        Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
        TUNNELS * SESSIONS + 1,
    )
    .expect("config");
    Setup {
        files,
        port,
        log: dir.join("l2xdpd.log"),
    }
}

fn start(s: &Setup) -> L2xdpd {
    L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &s.files,
        Some(&s.log),
    )
}

struct Lac {
    handle: Handle,
    events: UnboundedReceiver<NodeEvent>,
    task: tokio::task::JoinHandle<Node>,
    tunnels: Vec<TunnelId>,
}

/// The LAC without a Failover Capability, its subscribers' LCP echoes every second.
async fn lac_up(port: u16) -> Lac {
    let mut cfg = l2xdp_tests::cp::lac_config(false);
    cfg.l2tp.hello_interval_secs = 2;
    cfg.ppp = Arc::new(PppConfig {
        echo_interval: Duration::from_secs(1),
        echo_failures: 5,
        ..PppConfig::default()
    });
    let node = Node::new(cfg, Box::new(MemoryDataPlane::new()));
    let (handle, mut events, task) = l2xdp_tests::cp::spawn_lac(node);
    let peer = Peer::udp(format!("127.0.0.1:{port}").parse().expect("addr"));
    let (tunnels, _) = bring_up(
        &handle,
        &mut events,
        LIMIT,
        peer,
        Version::V2,
        TUNNELS,
        SESSIONS,
    )
    .await;
    Lac {
        handle,
        events,
        task,
        tunnels,
    }
}

/// What the LAC's node says of its tunnels: (tunnels established, sessions with PPP up,
/// control messages unacknowledged).
async fn lac_view(h: &Handle) -> (usize, usize, usize) {
    h.inspect(|n| {
        let r = n.registry();
        let est = r
            .tunnels()
            .filter(|t| t.state() == l2xdp_controlplane::l2tp::tunnel::TunnelState::Established)
            .count();
        let unacked = r.tunnels().map(|t| t.channel().in_flight()).sum();
        (est, n.session_counts().1, unacked)
    })
    .await
    .expect("LAC running")
}

fn status(sock: &Path) -> Value {
    ask(sock, r#"{"cmd":"status"}"#)["data"].clone()
}

/// Restart (after `stop`) and check that the LAC kept everything.
async fn hands_off(stop: impl FnOnce(&mut L2xdpd)) {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = Scratch::plain("resume-test");
    let s = configure(&dir.dir);
    let mut d = start(&s);
    let sock = s.files.control_socket.clone();
    let mut lac = lac_up(s.port).await;
    let before = status(&sock);
    assert_eq!(before["ppp_up"], (TUNNELS * SESSIONS) as u64, "{before}");

    stop(&mut d);
    tokio::time::sleep(DOWN).await;
    let restarted = Instant::now();
    let d2 = start(&s);
    // Watch the LAC: nothing goes down while its echoes and HELLOs meet the new l2xdpd.
    let mut downs = Vec::new();
    let end = Instant::now() + WATCH;
    while let Ok(Some(ev)) = tokio::time::timeout(
        end.saturating_duration_since(Instant::now()),
        lac.events.recv(),
    )
    .await
    {
        if matches!(
            ev,
            NodeEvent::TunnelDown { .. } | NodeEvent::SessionDown { .. }
        ) {
            downs.push(ev);
        }
    }
    assert!(downs.is_empty(), "the LAC saw: {downs:?}");
    let (est, ppp, _) = lac_view(&lac.handle).await;
    assert_eq!((est, ppp), (TUNNELS, TUNNELS * SESSIONS), "at the LAC");
    // Its HELLOs (every 2 s) are acknowledged: a moment comes when none is outstanding.
    let end = Instant::now() + LIMIT;
    while lac_view(&lac.handle).await.2 != 0 {
        assert!(
            Instant::now() < end,
            "the LAC's messages stay unacknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // l2xdpctl's view: everything up, every tunnel resumed (the same control connection).
    let st = status(&sock);
    assert_eq!(st["tunnels"], TUNNELS as u64, "{st}");
    assert_eq!(st["sessions"], (TUNNELS * SESSIONS) as u64, "{st}");
    assert_eq!(st["ppp_up"], (TUNNELS * SESSIONS) as u64, "{st}");
    let f = ask(&sock, r#"{"cmd":"failover"}"#)["data"].clone();
    assert_eq!(f["counters"]["tunnel resumed"], TUNNELS as u64, "{f}");
    assert!(f["counters"]["recovery SCCRQ sent"].is_null(), "{f}");
    let recs = f["recoveries"].as_array().expect("recoveries");
    assert_eq!(recs.len(), TUNNELS, "{f}");
    assert!(recs.iter().all(|r| r["outcome"] == "recovered"), "{f}");
    let slowest = recs.iter().filter_map(|r| r["duration_ms"].as_u64()).max();
    println!(
        "resumed {TUNNELS} tunnels × {SESSIONS} sessions: the last confirmed {slowest:?} ms after \
         its restore (l2xdpd restarted {:?} ago)",
        restarted.elapsed()
    );

    // A new call on a resumed tunnel: the control connection carries on.
    open_user_session(&lac.handle, lac.tunnels[0], TUNNELS * SESSIONS).await;
    let st = l2xdpd::status_when(&sock, LIMIT, Duration::from_millis(20), |d| {
        d["ppp_up"] == (TUNNELS * SESSIONS + 1) as u64
    })["data"]
        .clone();
    assert_eq!(st["ppp_up"], (TUNNELS * SESSIONS + 1) as u64, "{st}");
    lac.task.abort();
    drop(d2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_every_tunnel_and_session() {
    hands_off(L2xdpd::kill_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_restart_keeps_every_tunnel_and_session() {
    hands_off(|d| {
        let st = d.stop();
        assert!(st.success(), "{st:?}");
    })
    .await;
}

/// The store without its sequence records, as a store written before resume existed: every
/// tunnel and session record kept, nothing to resume from.
fn remove_sequence_state(state_dir: &Path) -> usize {
    let mut store = RedbStore::open(state_dir).expect("store");
    let st = store.load().expect("load");
    assert_eq!(
        st.sequences.len(),
        TUNNELS,
        "the sequence state was persisted"
    );
    for t in &st.tunnels {
        store.remove_tunnel(t.id).expect("remove");
        store.put_tunnel(t).expect("put");
    }
    for s in &st.sessions {
        store.put_session(s).expect("put");
    }
    store.commit().expect("commit");
    let st = store.load().expect("load");
    assert!(st.sequences.is_empty());
    assert_eq!(st.tunnels.len(), TUNNELS);
    st.tunnels.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_removed_the_lac_gets_a_stopccn() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = Scratch::plain("resume-removed");
    let s = configure(&dir.dir);
    let mut d = start(&s);
    let mut lac = lac_up(s.port).await;
    d.kill_9();
    assert_eq!(remove_sequence_state(&s.files.state_dir), TUNNELS);
    let restarted = Instant::now();
    let d2 = start(&s);
    let mut stopped = Vec::new();
    let end = Instant::now() + LIMIT;
    while stopped.len() < TUNNELS {
        let ev = tokio::time::timeout(
            end.saturating_duration_since(Instant::now()),
            lac.events.recv(),
        )
        .await
        .expect("every tunnel got its StopCCN in time")
        .expect("LAC running");
        if let NodeEvent::TunnelDown { tunnel, reason } = ev {
            assert!(
                reason.starts_with("Peer(") && reason.contains("result: 1"),
                "tunnel {tunnel}: {reason}"
            );
            stopped.push(tunnel);
        }
    }
    println!(
        "{TUNNELS} StopCCNs at the LAC {:?} after the restart",
        restarted.elapsed()
    );
    stopped.sort_unstable();
    lac.tunnels.sort_unstable();
    assert_eq!(stopped, lac.tunnels);
    let st = status(&s.files.control_socket);
    assert_eq!(st["sessions"], 0, "{st}");
    let f = ask(&s.files.control_socket, r#"{"cmd":"failover"}"#)["data"].clone();
    assert_eq!(
        f["counters"]["farewell StopCCN sent"], TUNNELS as u64,
        "{f}"
    );
    lac.task.abort();
    drop(d2);
}

/// SIGINT is the clean teardown (`daemon/stop.rs`): every tunnel gets a StopCCN, l2xdpd exits
/// 0, and the next l2xdpd has nothing to resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_tears_every_tunnel_down() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = Scratch::plain("resume-sigint");
    let s = configure(&dir.dir);
    let mut d = start(&s);
    let mut lac = lac_up(s.port).await;
    d.signal(libc::SIGINT);
    let mut stopped = Vec::new();
    let end = Instant::now() + LIMIT;
    while stopped.len() < TUNNELS {
        let ev = tokio::time::timeout(
            end.saturating_duration_since(Instant::now()),
            lac.events.recv(),
        )
        .await
        .expect("every tunnel got its StopCCN in time")
        .expect("LAC running");
        if let NodeEvent::TunnelDown { tunnel, reason } = ev {
            assert!(reason.starts_with("Peer("), "tunnel {tunnel}: {reason}");
            stopped.push(tunnel);
        }
    }
    let end = Instant::now() + LIMIT;
    let st = loop {
        if let Some(st) = d.exited() {
            break st;
        }
        assert!(Instant::now() < end, "l2xdpd did not exit on SIGINT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(st.success(), "{st:?}");
    let store = RedbStore::open(&s.files.state_dir).expect("store");
    let left = store.load().expect("load");
    assert!(
        left.tunnels.is_empty() && left.sessions.is_empty(),
        "torn down, nothing left to resume: {} tunnels",
        left.tunnels.len()
    );
    lac.task.abort();
}
