//! The control plane end to end over real sockets on loopback: this project's initiator (the
//! LAC / initiating LCCE) against its responder (the LNS / responding LCCE).
//!
//! - L2TPv2: 100 tunnels × 10 sessions come up through ICCN and PPP through IPCP (CHAP, an
//!   address from the pool), every session is installed in the (in-memory) fast path with its
//!   subscriber address, then all are torn down cleanly (CDN, StopCCN) and uninstalled.
//! - L2TPv3: Ethernet pseudowires with cookies over UDP, and over IP protocol 115 (root only).
//! - The same v2 run with 20 % of control messages dropped and 10 % reordered on both sides:
//!   every tunnel and session still comes up and stays up; retransmissions are reported. (The
//!   emulated subscribers' PPP keeps asking longer than RFC 1661's default 10 Configure-Requests:
//!   under that loss an ICCN can reach the LNS half a minute after the LAC sent it.)
//! - Every datagram the LNS and the LAC sent is captured and must decode in tshark as L2TP with
//!   no malformed mark, and be valid for `l2xdp-decode`'s decoder.
//!
//! Time limits below only bound a hung run; nothing asserts how fast it went (that is
//! `l2xdp-bench setup-rate`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use l2xdp_controlplane::driver::{Driver, Handle};
use l2xdp_controlplane::l2tp::{CallParams, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::node::{Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{AuthMethod, Ipv4Pool, Ipv4Range, PppConfig};
use l2xdp_controlplane::socket::{L2tpSocket, LossyShim};
use l2xdp_dataplane::{Binding, MemoryDataPlane};
use l2xdp_tests::cp::{bring_up, check_capture, is_down, users, wait_for};
use l2xdp_wire::l2tp::header::Version;
use tokio::sync::mpsc;

const TUNNELS: usize = 100;
const SESSIONS: usize = 10;
/// Bounds a hung run; not a performance expectation.
const LIMIT: Duration = Duration::from_secs(240);

fn ppp_config(server: bool) -> PppConfig {
    let mut p = PppConfig::default();
    if !server {
        p.max_configure = 40;
    }
    if server {
        p.auth = vec![AuthMethod::Chap];
        p.ipcp.local_address = Ipv4Addr::new(100, 64, 0, 1);
        p.ipcp.pool = vec!["100.64.0.2-100.64.255.254"
            .parse::<Ipv4Range>()
            .expect("range")];
        p.ipcp.dns = vec![Ipv4Addr::new(192, 0, 2, 53)];
    }
    p
}

fn l2tp_config(name: &str) -> L2tpConfig {
    let mut c = L2tpConfig {
        host_name: name.into(),
        ..L2tpConfig::default()
    };
    // RFC 3931 §4.2's recommended 10 retransmissions (the default is RFC 2661's 5): with 20 %
    // loss each way a message and its acknowledgement fail together about a third of the time,
    // and 6 failures in a row happen a few times in 3,000 messages.
    c.retransmit.max_retries = 10;
    c.limits.max_sessions_per_tunnel = 1000;
    c.limits.max_tunnels = 10_000;
    c
}

struct Side {
    handle: Handle,
    task: tokio::task::JoinHandle<Node>,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    addr: SocketAddr,
    capture: PathBuf,
}

fn capture_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("l2xdp-cp-{name}-{}.pcap", std::process::id()))
}

fn start(
    name: &str,
    server: bool,
    socket: L2tpSocket,
    shim: Option<LossyShim>,
    attachment_circuits: HashMap<Vec<u8>, u32>,
) -> Side {
    let pool = server.then(|| {
        let r = "100.64.0.2-100.64.255.254"
            .parse::<Ipv4Range>()
            .expect("range");
        Arc::new(Mutex::new(Ipv4Pool::new(&[r], &[]).expect("pool")))
    });
    let cfg = NodeConfig {
        l2tp: l2tp_config(name),
        ppp: Arc::new(ppp_config(server)),
        credentials: Arc::new(users(TUNNELS * SESSIONS)),
        pool,
        attachment_circuits,
        random: l2xdp_controlplane::random::Random::from_os().expect("entropy"),
    };
    let node = Node::new(cfg, Box::new(MemoryDataPlane::new()));
    let capture = capture_path(name);
    let (tx, events) = mpsc::unbounded_channel();
    let mut driver = Driver::new(node, vec![socket])
        .expect("driver")
        .with_events(tx)
        .with_capture(&capture)
        .expect("capture");
    if let Some(s) = shim {
        driver = driver.with_shim(s);
    }
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

/// Waits for `n` events matching `pick`, failing on the first that `fail` flags.
/// Brings up `TUNNELS × SESSIONS` v2 sessions with PPP over IPv4 loopback, checks the fast
/// path, tears down.
async fn v2_run(name: &str, shim_lac: Option<LossyShim>, shim_lns: Option<LossyShim>) {
    let lo: IpAddr = "127.0.0.1".parse().expect("addr");
    v2_run_on(name, lo, TUNNELS, SESSIONS, shim_lac, shim_lns).await;
}

async fn v2_run_on(
    name: &str,
    lo: IpAddr,
    n_tunnels: usize,
    n_sessions: usize,
    shim_lac: Option<LossyShim>,
    shim_lns: Option<LossyShim>,
) {
    let mut lns = start(
        &format!("{name}-lns"),
        true,
        L2tpSocket::bind_udp(SocketAddr::new(lo, 0)).expect("bind"),
        shim_lns,
        HashMap::new(),
    );
    let mut lac = start(
        &format!("{name}-lac"),
        false,
        L2tpSocket::bind_udp(SocketAddr::new(lo, 0)).expect("bind"),
        shim_lac,
        HashMap::new(),
    );
    let peer = Peer::udp(lns.addr);

    let (tunnels, up) = bring_up(
        &lac.handle,
        &mut lac.events,
        LIMIT,
        peer,
        Version::V2,
        n_tunnels,
        n_sessions,
    )
    .await;
    let mut addrs: Vec<Ipv4Addr> = up
        .iter()
        .filter_map(|e| match e {
            NodeEvent::PppUp { local_ipv4, .. } => *local_ipv4,
            _ => None,
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(
        addrs.len(),
        n_tunnels * n_sessions,
        "every subscriber got its own address"
    );
    wait_for(
        LIMIT,
        &mut lns.events,
        n_tunnels * n_sessions,
        "PPP up at the LNS",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        is_down,
    )
    .await;

    // The LNS installed every session in the fast path, bound to the address the LAC got.
    let installed = lns
        .handle
        .inspect(|n| n.dataplane().sessions().expect("sessions"))
        .await
        .expect("running");
    assert_eq!(installed.len(), n_tunnels * n_sessions);
    let mut bound: Vec<Ipv4Addr> = installed
        .iter()
        .filter_map(|e| match &e.binding {
            Binding::Subscriber { ipv4, .. } => *ipv4,
            Binding::AttachmentCircuit { .. } => None,
        })
        .collect();
    bound.sort();
    assert_eq!(
        bound, addrs,
        "fast path bound to the addresses IPCP assigned"
    );

    // Teardown: a CDN for every session, then a StopCCN for every tunnel.
    let sessions: Vec<(TunnelId, u32)> = lac
        .handle
        .inspect(|n| n.session_refs())
        .await
        .expect("running");
    for s in sessions {
        lac.handle
            .close_session(s)
            .await
            .expect("running")
            .expect("close session");
    }
    wait_for(
        LIMIT,
        &mut lns.events,
        n_tunnels * n_sessions,
        "sessions down at the LNS",
        |e| matches!(e, NodeEvent::SessionDown { .. }),
        |e| matches!(e, NodeEvent::TunnelDown { .. }),
    )
    .await;
    for &t in &tunnels {
        lac.handle
            .close_tunnel(t)
            .await
            .expect("running")
            .expect("close tunnel");
    }
    wait_for(
        LIMIT,
        &mut lns.events,
        n_tunnels,
        "tunnels down at the LNS",
        |e| matches!(e, NodeEvent::TunnelDown { .. }),
        |_| false,
    )
    .await;
    let left = lns
        .handle
        .inspect(|n| n.dataplane().sessions().expect("sessions").len())
        .await
        .expect("running");
    assert_eq!(left, 0, "every session removed from the fast path");

    let lac_retx = lac
        .handle
        .inspect(|n| n.registry().counters().retransmissions)
        .await
        .expect("running");
    let lns_retx = lns
        .handle
        .inspect(|n| n.registry().counters().retransmissions)
        .await
        .expect("running");
    eprintln!("{name}: control retransmissions LAC {lac_retx}, LNS {lns_retx}");
    lac.handle.shutdown().await;
    lns.handle.shutdown().await;
    let _ = lac.task.await;
    let _ = lns.task.await;
    let ports = [lac.addr.port(), lns.addr.port()];
    check_capture(&lac.capture, &[], &ports);
    check_capture(&lns.capture, &[], &ports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_tunnels_sessions_and_ppp_over_udp() {
    v2_run("v2", None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_over_ipv6() {
    let lo: IpAddr = "::1".parse().expect("addr");
    v2_run_on("v2-ipv6", lo, 10, 5, None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_survives_20_percent_loss_and_reordering() {
    v2_run(
        "v2-lossy",
        Some(LossyShim::new(20, 10, 0x1a2b).control_only()),
        Some(LossyShim::new(20, 10, 0x3c4d).control_only()),
    )
    .await;
}

async fn v3_run(
    name: &str,
    lns_sock: L2tpSocket,
    lac_sock: L2tpSocket,
    peer: Peer,
    prefs: &[&str],
) {
    // Every pseudowire of the responder is bound to (pretend) attachment interface 7 + index.
    let mut acs = HashMap::new();
    for i in 0..(TUNNELS * 2) {
        acs.insert(format!("pw{i}").into_bytes(), 100 + i as u32);
    }
    let mut lns = start(&format!("{name}-lns"), true, lns_sock, None, acs);
    let mut lac = start(
        &format!("{name}-lac"),
        false,
        lac_sock,
        None,
        HashMap::new(),
    );
    let peer = match peer.transport {
        l2xdp_wire::l2tp::header::Transport::Udp => Peer::udp(lns.addr),
        l2xdp_wire::l2tp::header::Transport::Ip => peer,
    };
    let tunnels = 20;
    let per = 5;
    let mut ids = Vec::new();
    for _ in 0..tunnels {
        ids.push(
            lac.handle
                .open_tunnel(peer, Version::V3)
                .await
                .expect("running")
                .expect("open tunnel"),
        );
    }
    wait_for(
        LIMIT,
        &mut lac.events,
        tunnels,
        "v3 control connections up",
        |e| matches!(e, NodeEvent::TunnelUp { .. }),
        is_down,
    )
    .await;
    let mut n = 0;
    for &t in &ids {
        for _ in 0..per {
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
    wait_for(
        LIMIT,
        &mut lns.events,
        tunnels * per,
        "pseudowires up at the responder",
        |e| matches!(e, NodeEvent::SessionUp { .. }),
        is_down,
    )
    .await;
    let installed = lns
        .handle
        .inspect(|n| n.dataplane().sessions().expect("sessions"))
        .await
        .expect("running");
    assert_eq!(
        installed.len(),
        tunnels * per,
        "every pseudowire in the fast path"
    );
    assert!(installed
        .iter()
        .all(|e| matches!(e.binding, Binding::AttachmentCircuit { .. })));
    for &t in &ids {
        lac.handle
            .close_tunnel(t)
            .await
            .expect("running")
            .expect("close");
    }
    wait_for(
        LIMIT,
        &mut lns.events,
        tunnels,
        "v3 control connections down",
        |e| matches!(e, NodeEvent::TunnelDown { .. }),
        |_| false,
    )
    .await;
    let left = lns
        .handle
        .inspect(|n| n.dataplane().sessions().expect("sessions").len())
        .await
        .expect("running");
    assert_eq!(left, 0);
    lac.handle.shutdown().await;
    lns.handle.shutdown().await;
    let _ = lac.task.await;
    let _ = lns.task.await;
    let ports = [lac.addr.port(), lns.addr.port()];
    check_capture(&lac.capture, prefs, &ports);
    check_capture(&lns.capture, prefs, &ports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_pseudowires_over_udp() {
    let lo: IpAddr = "127.0.0.1".parse().expect("addr");
    v3_run(
        "v3-udp",
        L2tpSocket::bind_udp(SocketAddr::new(lo, 0)).expect("bind"),
        L2tpSocket::bind_udp(SocketAddr::new(lo, 0)).expect("bind"),
        Peer::udp(SocketAddr::new(lo, 0)),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_pseudowires_over_ip_115() {
    if !l2xdp_lab::require_root("v3_pseudowires_over_ip_115") {
        return;
    }
    // Two loopback addresses, so each raw socket sees only its own side's packets.
    let lns_ip: IpAddr = "127.0.0.2".parse().expect("addr");
    let lac_ip: IpAddr = "127.0.0.3".parse().expect("addr");
    v3_run(
        "v3-ip",
        L2tpSocket::bind_ip(lns_ip).expect("raw socket"),
        L2tpSocket::bind_ip(lac_ip).expect("raw socket"),
        Peer::ip(lns_ip),
        &[],
    )
    .await;
}
