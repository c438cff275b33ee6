//! The fast path end to end with the control plane in front of it: three network namespaces
//! `lac` — `lns` — `core` joined by veth pairs, the XDP programs attached on the lns side
//! (`xdp_l2tp_access` on the access veth `la`, `xdp_l2tp_core` on the core veth `lc`, maps and
//! links pinned under a per-test directory of /sys/fs/bpf), `xdp_pass` on the peers so that
//! redirected frames are delivered. Needs root (`l2xdp_lab::require_root`).
//!
//! The control plane runs in this process: the LNS [`Node`] over an [`XdpDataPlane`] of the
//! pinned maps, its UDP socket bound in `lns`; the LAC `Node` (initiator, PPP client with CHAP)
//! in `lac`. Each runs on a current-thread tokio runtime on a dedicated thread that entered
//! its namespace (sockets belong to the namespace of the thread that creates them): the
//! control plane's lab, `l2xdp_lab::cp::NodeThread`.
//!
//! 1. The LAC brings up `TUNNELS × SESSIONS` L2TPv2 sessions with PPP through IPCP. Every
//!    control message and PPP control frame goes LAC → veth → `xdp_l2tp_access` → XDP_PASS →
//!    kernel → the LNS's socket: the fast path's to-control-plane counter (PPP control) equals
//!    the PPP frames the LNS's links received, nothing was dropped, and every session is
//!    installed bound to the address IPCP assigned.
//!    Then on every session a packet from another subscriber's address and one from an
//!    address nobody has: both dropped as `unbound_source` (RFC 1661 §3.2, BCP 38), none
//!    decapsulated, none at the core.
//! 2. Traffic both ways through XDP, sent with packet sockets: from `lac`, L2TPv2 data frames
//!    (built with `wire::datapath::encap` from the LAC's view of each session) carrying IPv4
//!    from the subscriber's address to a core host, counted per source in `core`; from `core`,
//!    IPv4 to each subscriber address, decapsulated in `lac` with `wire::datapath::decap` and
//!    counted per session. Counts equal what was sent, exactly, and so do the per-session XDP
//!    counters (packets and bytes).
//! 3. The control plane goes away while traffic flows: the LNS's runtime is dropped with its
//!    driver task where it stands (no CDN, no StopCCN, no fast-path removal) — an *in-process*
//!    kill; a later test does `kill -9` of the daemon process. Every packet sent after the
//!    kill, both ways, arrives, and the sessions are still installed.
//!
//! Loss: the senders are paced by what the receivers counted (`l2xdp_lab::traffic`), so any
//! shortfall is a real loss and fails the test. The topology, packet sockets, frame builders
//! and classifiers are the lab's (`l2xdp_lab`), shared with
//! `tests/tests/xdp_kill9.rs`.
//!
//! Time limits only bound a hung run; nothing asserts how fast anything went.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::{L2tpConfig, Peer};
use l2xdp_controlplane::node::{NodeConfig, NodeCounters, NodeEvent};
use l2xdp_controlplane::ppp::{AuthMethod, Ipv4Pool, Ipv4Range, PppConfig};
use l2xdp_dataplane::{DataPlane, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::cp::{is_down, subscriber, wait_for, NodeThread};
use l2xdp_lab::require_root;
use l2xdp_lab::topology::{
    Mode, PeerPort, Pins, Topology, CORE0, CORE_HOST, L2TP_PORT, LAC0, LAC_IP, LNS_IP,
};
use l2xdp_lab::traffic::{
    self, assert_bound, classify_downstream, classify_upstream, inner_ip, ip_socket, Counter,
    Flows, Paced, Sub, CORE_PORT, SUB_PORT,
};
use l2xdp_tests::cp::users;
use l2xdp_wire::datapath::{encap, DropReason, SessionKey, Why};
use l2xdp_wire::l2tp::header::Version;

const TUNNELS: usize = 4;
const SESSIONS: usize = 8;
const N: usize = TUNNELS * SESSIONS;
/// Packets per session and direction while the control plane runs.
const PER_SESSION: usize = 25;
/// Packets per session and direction in the outage phase (the last third after the kill).
const PER_SESSION_OUTAGE: usize = 30;
/// Bounds a hung run; not a performance expectation.
const LIMIT: Duration = traffic::LIMIT;

// ---------------------------------------------------------------------------------------------
// The control plane, one node per namespace.

fn node_config(name: &str, server: bool) -> NodeConfig {
    let range = "100.64.0.2-100.64.0.254"
        .parse::<Ipv4Range>()
        .expect("range");
    let mut ppp = PppConfig::default();
    if server {
        ppp.auth = vec![AuthMethod::Chap];
        ppp.ipcp.local_address = Ipv4Addr::new(100, 64, 0, 1);
        ppp.ipcp.pool = vec![range];
    } else {
        ppp.auth = vec![AuthMethod::Chap];
        // The emulated subscribers send no LCP keepalives: nothing of theirs depends on how
        // long the outage lasts.
        ppp.echo_interval = Duration::ZERO;
    }
    NodeConfig {
        l2tp: L2tpConfig {
            host_name: name.into(),
            ..L2tpConfig::default()
        },
        ppp: Arc::new(ppp),
        credentials: Arc::new(users(N)),
        pool: server.then(|| Arc::new(Mutex::new(Ipv4Pool::new(&[range], &[]).expect("pool")))),
        attachment_circuits: HashMap::new(),
        random: l2xdp_controlplane::random::Random::from_os().expect("entropy"),
    }
}

#[test]
fn ppp_sessions_through_xdp_survive_control_plane_loss() {
    ppp_sessions_survive_control_plane_loss(Mode::Xdp);
}

/// The same in AF_XDP mode: the programs classify, the workers (in this process, not the
/// control plane's) forward; they keep forwarding when the control plane goes.
#[test]
fn ppp_sessions_through_afxdp_survive_control_plane_loss() {
    ppp_sessions_survive_control_plane_loss(Mode::AfXdp);
}

fn ppp_sessions_survive_control_plane_loss(mode: Mode) {
    let test = match mode {
        Mode::Xdp => "ppp_sessions_through_xdp_survive_control_plane_loss",
        Mode::AfXdp => "ppp_sessions_through_afxdp_survive_control_plane_loss",
    };
    if !require_root(test) {
        return;
    }
    // Declared first, dropped last: the namespaces (their veths go with them).
    let topo = Topology::new("xe2e");
    let (lac, lns) = (&topo.lac, &topo.lns);

    // The fast path, pinned (removed at the end whatever happens).
    let pins = Pins::under_sys_fs_bpf(&format!("xdpe2e-{mode:?}"));
    let pin_dir = pins.path().to_path_buf();
    let fp = topo.start_fast_path(&pin_dir, mode);
    // The test's own view of the maps (they are global, not per namespace).
    let fast = XdpDataPlane::open(&pin_dir).expect("open pins");

    let core_port = PeerPort::new(&topo.core, CORE0);
    let (core_sock, core_rx_sock) = (ip_socket(&core_port), ip_socket(&core_port));
    let lac_port = PeerPort::new(lac, LAC0);
    let (lac_sock, lac_rx_sock) = (ip_socket(&lac_port), ip_socket(&lac_port));

    // The control plane: the LNS over the pinned maps, the LAC with an in-memory fast path.
    let pins = pin_dir.clone();
    let mut lns_node = NodeThread::start(
        lns.clone(),
        SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT),
        move || {
            let dp = XdpDataPlane::open(&pins).expect("the LNS opens the pinned maps");
            (node_config("lns", true), Box::new(dp))
        },
    );
    let mut lac_node = NodeThread::start(
        lac.clone(),
        SocketAddr::new(IpAddr::V4(LAC_IP), L2TP_PORT),
        || {
            (
                node_config("lac", false),
                Box::new(l2xdp_dataplane::MemoryDataPlane::new()),
            )
        },
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // 1. Tunnels, sessions, PPP through IPCP — all control traffic through the access program.
    let peer = Peer::udp(SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT));
    let (lac_up, lns_up) = rt.block_on(async {
        let (_, lac_up) = lac_node
            .bring_up(peer, Version::V2, TUNNELS, SESSIONS)
            .await;
        let lns_up = wait_for(
            LIMIT,
            &mut lns_node.events,
            N,
            "PPP up at the LNS",
            |e| matches!(e, NodeEvent::PppUp { .. }),
            is_down,
        )
        .await;
        (lac_up, lns_up)
    });

    // The LAC's view of every session: its IDs (ours and the LNS's) and the subscriber address.
    let mut subs: BTreeMap<SessionKey, Sub> = BTreeMap::new();
    for e in &lac_up {
        let sub = rt
            .block_on(subscriber(&lac_node.handle, e))
            .expect("a PPP up event");
        subs.insert(sub.view.our_ids, sub);
    }
    assert_eq!(subs.len(), N, "one LAC session per PPP up");
    let mut addrs: Vec<Ipv4Addr> = subs.values().map(|s| s.addr).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), N, "every subscriber got its own address");
    let mut lns_addrs: Vec<Ipv4Addr> = lns_up
        .iter()
        .filter_map(|e| match e {
            NodeEvent::PppUp { peer_ipv4, .. } => *peer_ipv4,
            _ => None,
        })
        .collect();
    lns_addrs.sort();
    assert_eq!(lns_addrs, addrs, "both ends agree on the addresses");

    // Installed in the fast path, bound to those addresses, with the LNS's IDs.
    let installed = fast.sessions().expect("sessions");
    assert_eq!(installed.len(), N, "every session in the fast path");
    for e in &installed {
        assert_eq!(e.session.local_addr, IpAddr::V4(LNS_IP));
        assert_eq!(e.session.peer_addr, IpAddr::V4(LAC_IP));
    }
    assert_bound(&fast, &subs);

    // The control traffic went through the access program up to the LNS. PPP control frames
    // counted by XDP equal those the LNS's links got, once both are quiet (bounded wait).
    let lns_counters = |node: &NodeThread| -> NodeCounters {
        rt.block_on(node.handle.inspect(|n| n.counters()))
            .expect("LNS running")
    };
    let why = |w: Why| (verdict::WHY_BASE + w as u32) as usize;
    let end = Instant::now() + LIMIT;
    let (c, v) = loop {
        let c = lns_counters(&lns_node);
        let v = fast.verdict_counters().expect("verdicts");
        if v[why(Why::PppControl)] == c.ppp_frames_in || Instant::now() > end {
            break (c, v);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("bring-up: LNS {c:?}; XDP verdicts {v:?}");
    assert!(c.ppp_frames_in > 0, "PPP control frames reached the LNS");
    assert_eq!(
        v[why(Why::PppControl)],
        c.ppp_frames_in,
        "every PPP control frame the LNS got was passed up by XDP"
    );
    assert!(v[why(Why::L2tpControl)] > 0, "control messages passed up");
    assert_eq!(
        v[verdict::TO_CONTROL as usize],
        (0..Why::COUNT)
            .map(|i| v[verdict::WHY_BASE as usize + i])
            .sum::<u64>()
    );
    assert_eq!(c.data_unknown_session, 0);
    assert_eq!(c.data_malformed, 0);
    assert_eq!(c.dataplane_errors, 0);
    assert_eq!(
        c.installs,
        2 * N as u64,
        "each session installed unbound at ICCN, then bound at IPCP"
    );
    // The one drop bring-up may see, at most once per session: the LAC's first LCP
    // Configure-Request follows its ICCN at once and reaches the access program before the
    // LNS has processed the ICCN and installed the session, so the fast path does not know
    // the session yet (unknown_session). PPP recovers with the Restart timer (RFC 1661 §4.6).
    let bringup_drops = fp.drop_counters();
    let unknown = bringup_drops[DropReason::UnknownSession as usize];
    eprintln!("bring-up: XDP drops {bringup_drops:?}");
    assert!(unknown <= N as u64, "unknown_session drops: {unknown}");
    assert_eq!(
        bringup_drops.iter().sum::<u64>(),
        unknown,
        "no other drop: {bringup_drops:?}"
    );
    assert_eq!(v[verdict::DECAP as usize] + v[verdict::ENCAP as usize], 0);

    let core_rx = Counter::start(core_rx_sock, classify_upstream);
    let mut flows = Flows::new(&subs);

    // 1b. Source address validation (RFC 1661 §3.2, BCP 38): on every session, one packet
    // from the next subscriber's address (bound to another session) and one from an address
    // nobody has. Each is dropped as unbound_source; none is decapsulated or reaches the core
    // (a forwarded one would also break the exact per-source counts below).
    let stranger = Ipv4Addr::new(198, 18, 0, 1);
    for i in 0..N {
        let s = flows.order[i].clone();
        let neighbour = flows.order[(i + 1) % N].addr;
        for src in [neighbour, stranger] {
            let inner = inner_ip(src, CORE_HOST, SUB_PORT, CORE_PORT, u32::MAX);
            let mut out = vec![0u8; 2048];
            let n = encap(&s.view, flows.tx(&s), &inner, 1500, &mut out).expect("LAC encap");
            lac_sock.send(&out[..n]);
        }
    }
    let spoofed = 2 * N as u64;
    let end = Instant::now() + LIMIT;
    let unbound = |d: &[u64]| d[DropReason::UnboundSource as usize];
    while unbound(&fp.drop_counters()) < spoofed && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let bringup_drops = fp.drop_counters();
    assert_eq!(unbound(&bringup_drops), spoofed, "{bringup_drops:?}");
    assert_eq!(
        bringup_drops.iter().sum::<u64>(),
        unknown + spoofed,
        "no other drop: {bringup_drops:?}"
    );
    let v = fast.verdict_counters().expect("verdicts");
    assert_eq!(
        v[verdict::DECAP as usize],
        0,
        "nothing spoofed decapsulated"
    );
    assert_eq!(core_rx.total(), 0, "nothing spoofed reached the core");

    // 2. Traffic both ways through XDP, the control plane alive (AF_XDP mode: once the
    // workers have every session).
    fp.settle();
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(lac_rx_sock, move |f| classify_downstream(&subs_rx, f));
    flows.send_rounds(
        PER_SESSION,
        &mut Paced::new(&lac_sock, &core_rx),
        &mut Paced::new(&core_sock, &lac_rx),
    );
    core_rx.wait(N * PER_SESSION, "upstream, control plane up");
    lac_rx.wait(N * PER_SESSION, "downstream, control plane up");
    for s in &flows.order {
        let k = u32::from(s.addr);
        assert_eq!(
            core_rx.counts()[&k].0,
            PER_SESSION,
            "upstream of {}",
            s.addr
        );
        assert_eq!(
            lac_rx.counts()[&k].0,
            PER_SESSION,
            "downstream of {}",
            s.addr
        );
    }

    // 3. The LNS goes away while traffic flows. A sender thread keeps both directions busy;
    // after two thirds it waits for the kill, so the last third is sent with no control plane.
    let outage = N * PER_SESSION_OUTAGE;
    let before_kill = outage * 2 / 3;
    let killed = AtomicBool::new(false);
    let sent_after_kill = AtomicUsize::new(0);
    let up_base = core_rx.total();
    let flows = &mut flows;
    std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            let mut up = Paced::new(&lac_sock, &core_rx);
            let mut down = Paced::new(&core_sock, &lac_rx);
            flows.send_rounds_through(
                PER_SESSION_OUTAGE,
                &mut up,
                &mut down,
                before_kill,
                &killed,
                &sent_after_kill,
            );
            (up.sent, down.sent)
        });
        // Kill once a third of the outage phase has arrived: traffic is flowing.
        let end = Instant::now() + LIMIT;
        while core_rx.total() - up_base < outage / 3 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        lns_node.kill();
        killed.store(true, Ordering::Release);
        let (up, down) = sender.join().expect("sender");
        assert_eq!((up, down), (outage, outage));
    });
    let after = sent_after_kill.load(Ordering::Relaxed);
    assert!(
        after >= outage / 3,
        "{after} packets per direction sent after the kill"
    );
    // The control plane is gone.
    assert!(rt.block_on(lns_node.handle.inspect(|_| ())).is_err());
    core_rx.wait(N * (PER_SESSION + PER_SESSION_OUTAGE), "upstream, overall");
    lac_rx.wait(
        N * (PER_SESSION + PER_SESSION_OUTAGE),
        "downstream, overall",
    );
    eprintln!(
        "outage: {outage} packets per direction, {after} of them sent after the LNS was killed"
    );
    let up_got = core_rx.counts();
    let down_got = lac_rx.counts();
    let per_total = PER_SESSION + PER_SESSION_OUTAGE;
    flows.assert_delivered(per_total, &up_got, &down_got, &fast);
    assert_eq!(
        up_got.len(),
        N,
        "nothing from any other source reached the core"
    );
    assert_eq!(fast.sessions().expect("sessions").len(), N);
    let drops = fp.drop_counters();
    assert_eq!(drops, bringup_drops, "nothing dropped since bring-up");
    let v = fast.verdict_counters().expect("verdicts");
    let total = (N * per_total) as u64;
    assert_eq!(v[verdict::DECAP as usize], total, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], total, "{v:?}");
    eprintln!("after: XDP verdicts {v:?}");
    if let Some(a) = &fp.afxdp {
        assert_eq!(
            a.received(),
            2 * total,
            "every data packet went through the workers"
        );
    }

    drop(core_rx);
    drop(lac_rx);
    lac_node.kill();
}
