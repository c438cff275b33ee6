//! The fast path end to end with the control plane in front of it: three network namespaces
//! `lac` — `lns` — `core` joined by veth pairs, the XDP programs attached on the lns side
//! (`xdp_l2tp_access` on the access veth `la`, `xdp_l2tp_core` on the core veth `lc`, maps and
//! links pinned under a per-test directory of /sys/fs/bpf), `xdp_pass` on the peers so that
//! redirected frames are delivered. Needs root; skips loudly otherwise.
//!
//! The control plane runs in this process: the LNS [`Node`] over an [`XdpDataPlane`] of the
//! pinned maps, its UDP socket bound in `lns`; the LAC `Node` (initiator, PPP client with CHAP)
//! in `lac`. Each runs on a current-thread tokio runtime on a dedicated thread that entered
//! its namespace (sockets belong to the namespace of the thread that creates them).
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
//! Loss: a veth whose peer runs XDP queues received frames in a 256-entry ring and drops when
//! it is full, and a packet socket's sends are not flow controlled. The senders therefore keep
//! at most `WINDOW` frames unreceived per direction (flow control by what the receivers
//! counted, not by time), so any shortfall is a real loss and fails the test.
//!
//! Time limits only bound a hung run; nothing asserts how fast anything went.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use l2xdp_controlplane::driver::{Driver, Handle};
use l2xdp_controlplane::l2tp::{CallParams, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::node::{ClientAuth, Node, NodeConfig, NodeCounters, NodeEvent};
use l2xdp_controlplane::ppp::{AuthMethod, Ipv4Pool, Ipv4Range, MemoryCredentials, PppConfig};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::lab::{is_root, Netns};
use l2xdp_dataplane::{loader, Binding, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_ebpf::{prog, UTIL_OBJ};
use l2xdp_wire::datapath::{
    decap, encap, DecapConfig, DropReason, PppTx, Session, SessionKey, TxSeq, Verdict, Why,
};
use l2xdp_wire::l2tp::header::{Cookie, Transport, Version};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use l2xdp_wire::net::frame::{udp_frame, Endpoints};
use tokio::sync::{mpsc, oneshot};

const TUNNELS: usize = 4;
const SESSIONS: usize = 8;
const N: usize = TUNNELS * SESSIONS;
/// Packets per session and direction while the control plane runs.
const PER_SESSION: usize = 25;
/// Packets per session and direction in the outage phase (the last third after the kill).
const PER_SESSION_OUTAGE: usize = 30;
/// Frames in flight per direction (see the module documentation).
const WINDOW: usize = 64;
/// Bounds a hung run; not a performance expectation.
const LIMIT: Duration = Duration::from_secs(60);

const LA_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 1]);
const LAC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 2]);
const LC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 1]);
const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 2]);
const LNS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LAC_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const CORE_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const L2TP_PORT: u16 = 1701;
/// Inner UDP ports: subscriber side and core side.
const SUB_PORT: u16 = 4000;
const CORE_PORT: u16 = 5000;
const ETH_P_IP: u16 = 0x0800;
/// `SO_RCVBUFFORCE` (asm-generic): a receive buffer above `rmem_max` (root).
const SO_RCVBUFFORCE: libc::c_int = 33;

// ---------------------------------------------------------------------------------------------
// Cleanup guards.

/// Removes the pinned links (detaching the programs) and maps, even on failure.
struct Unpin(PathBuf);
impl Drop for Unpin {
    fn drop(&mut self) {
        if let Err(e) = loader::detach(&self.0) {
            eprintln!("cleanup of {}: {e}", self.0.display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The control plane, one node per namespace.

/// A node running on its own thread, in a namespace, on a current-thread runtime. Dropping it
/// (or [`kill`](Self::kill)) drops the runtime: the driver task is dropped where it stands.
struct NodeThread {
    handle: Handle,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeThread {
    fn start(
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
    fn kill(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NodeThread {
    fn drop(&mut self) {
        self.kill();
    }
}

fn users() -> MemoryCredentials {
    let mut c = MemoryCredentials::new();
    for i in 0..N {
        c.insert(
            format!("user{i}").as_bytes(),
            format!("pw{i}").as_bytes(),
            None,
        );
    }
    c
}

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
        credentials: Arc::new(users()),
        pool: server.then(|| Arc::new(Mutex::new(Ipv4Pool::new(&[range], &[]).expect("pool")))),
        attachment_circuits: HashMap::new(),
        seed: if server { 11 } else { 12 },
    }
}

/// Waits for `n` events matching `pick`, failing on any session or tunnel going down.
async fn wait_for(
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
    n: usize,
    what: &str,
    pick: impl Fn(&NodeEvent) -> bool,
) -> Vec<NodeEvent> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(LIMIT, async {
        while got.len() < n {
            let Some(e) = events.recv().await else {
                panic!("event stream ended while waiting for {what}");
            };
            assert!(
                !matches!(
                    e,
                    NodeEvent::TunnelDown { .. }
                        | NodeEvent::SessionDown { .. }
                        | NodeEvent::AuthFailed { .. }
                ),
                "while waiting for {what}: {e:?}"
            );
            if pick(&e) {
                got.push(e);
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "{what}: only {} of {n} after {LIMIT:?}",
        got.len()
    );
    got
}

// ---------------------------------------------------------------------------------------------
// Packet sockets.

fn packet_socket(ifindex: u32, proto: u16) -> OwnedFd {
    // SAFETY: plain socket calls with valid arguments; the fd is owned right away.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto.to_be()));
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = ifindex as i32;
        let r = libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let size: libc::c_int = 16 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_RCVBUFFORCE,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        fd
    }
}

fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: a valid buffer.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// A thread counting the received frames `classify` recognises, per class (frames the host
/// sent itself are skipped).
struct Counter {
    total: Arc<AtomicUsize>,
    counts: Arc<Mutex<HashMap<u32, (usize, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    fn start(fd: OwnedFd, classify: impl Fn(&[u8]) -> Option<u32> + Send + 'static) -> Counter {
        let total = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, c, s) = (total.clone(), counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !s.load(Ordering::Acquire) {
                // SAFETY: valid buffer and address storage.
                let (r, kind) = unsafe {
                    let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                    let r = libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                        &mut len,
                    );
                    (r, sll.sll_pkttype)
                };
                if r <= 0 || kind == libc::PACKET_OUTGOING {
                    continue;
                }
                let frame = &buf[..r as usize];
                if let Some(class) = classify(frame) {
                    let mut m = c.lock().expect("counts");
                    let e = m.entry(class).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += frame.len() as u64;
                    t.fetch_add(1, Ordering::Release);
                }
            }
        });
        Counter {
            total,
            counts,
            stop,
            thread: Some(thread),
        }
    }

    fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    fn counts(&self) -> HashMap<u32, (usize, u64)> {
        self.counts.lock().expect("counts").clone()
    }

    /// Waits (bounded) until `n` frames were counted.
    fn wait(&self, n: usize, what: &str) {
        let end = Instant::now() + LIMIT;
        while self.total() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.total(), n, "{what}: frames counted");
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `frame`, first waiting (bounded) until fewer than `WINDOW` of the frames sent in this
/// direction are still unreceived. `sent` counts this direction's frames since `base`.
fn send_paced(fd: &OwnedFd, frame: &[u8], rx: &Counter, base: usize, sent: &mut usize) {
    let end = Instant::now() + LIMIT;
    while *sent >= rx.total() - base + WINDOW {
        assert!(
            Instant::now() < end,
            "frames lost: {} sent, {} received",
            sent,
            rx.total() - base
        );
        std::thread::yield_now();
    }
    send(fd, frame);
    *sent += 1;
}

fn attach_pass(iface: &str) -> Ebpf {
    let mut e = Ebpf::load(UTIL_OBJ).expect("util object");
    let p: &mut Xdp = e
        .program_mut(prog::PASS)
        .expect("xdp_pass")
        .try_into()
        .expect("xdp");
    p.load().expect("load");
    p.attach(iface, XdpMode::Driver).expect("attach xdp_pass");
    e
}

// ---------------------------------------------------------------------------------------------
// Traffic.

/// One subscriber as the LAC sees it.
#[derive(Clone)]
struct Sub {
    /// The LAC's view of the session (what it encapsulates with, what it decapsulates by).
    view: Session,
    /// The address IPCP gave the subscriber.
    addr: Ipv4Addr,
    /// The LNS's key of the session (for its XDP counters).
    lns_key: SessionKey,
}

fn inner_ip(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let e = Endpoints {
        src_mac: MacAddr([0; 6]),
        dst_mac: MacAddr([0; 6]),
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
    };
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend((0..60u8).collect::<Vec<_>>());
    udp_frame(&e, sport, dport, &payload).expect("inner packet")[14..].to_vec()
}

fn upstream_frame(sub: &Sub, tx: &mut TxSeq, seq: u32) -> Vec<u8> {
    let inner = inner_ip(sub.addr, CORE_HOST, SUB_PORT, CORE_PORT, seq);
    let mut out = vec![0u8; 2048];
    let n = encap(&sub.view, tx, &inner, 1500, &mut out).expect("LAC encap");
    out.truncate(n);
    out
}

fn downstream_frame(sub: &Sub, seq: u32) -> Vec<u8> {
    let e = Endpoints {
        src_mac: CORE_MAC,
        dst_mac: LC_MAC,
        src: IpAddr::V4(CORE_HOST),
        dst: IpAddr::V4(sub.addr),
    };
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend((0..60u8).collect::<Vec<_>>());
    udp_frame(&e, CORE_PORT, SUB_PORT, &payload).expect("core packet")
}

/// Core side: an IPv4/UDP packet from a subscriber to the core host; the class is its source.
fn classify_upstream(f: &[u8]) -> Option<u32> {
    if f.len() < 14 + 28 || f[12..14] != ETH_P_IP.to_be_bytes() {
        return None;
    }
    let ip = &f[14..];
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let dport = u16::from_be_bytes([ip[22], ip[23]]);
    // TTL 64 decremented once by the fast path (RFC 1812 §5.3.1).
    if ip[0] != 0x45 || ip[9] != 17 || dst != CORE_HOST || dport != CORE_PORT || ip[8] != 63 {
        return None;
    }
    Some(u32::from(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])))
}

/// LAC side: an L2TP data frame of one of our sessions carrying IPv4 for its subscriber; the
/// class is the subscriber's address.
fn classify_downstream(subs: &BTreeMap<SessionKey, Sub>, f: &[u8]) -> Option<u32> {
    let cfg = DecapConfig::default();
    let views: BTreeMap<SessionKey, Session> = subs.iter().map(|(k, s)| (*k, s.view)).collect();
    // The LAC is the client end: any source the LNS sends is bound to the session it came on.
    let seen = std::cell::Cell::new(None);
    let lookup = |k: &SessionKey| {
        seen.set(Some(*k));
        views.get(k)
    };
    match decap(f, &cfg, lookup, |_| None, |_| seen.get()) {
        Verdict::Forward { inner, key, .. } => {
            let ip = &f[inner];
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let sub = subs.get(&key)?;
            // Into the right session, unchanged by the LNS (it does not route it itself).
            (dst == sub.addr && src == CORE_HOST && ip[8] == 64).then(|| u32::from(sub.addr))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------

fn run_ip(ns: &Netns, args: &[&str]) {
    ns.ip(args);
}

#[test]
fn ppp_sessions_through_xdp_survive_control_plane_loss() {
    if !is_root() {
        eprintln!(
            "*** SKIPPED ppp_sessions_through_xdp_survive_control_plane_loss: needs root \
             (network namespaces, XDP, bpffs). Run the tests as root. ***"
        );
        return;
    }
    // Declared first, dropped last: the namespaces (their veths go with them).
    let lac = Arc::new(Netns::new("xe2e-lac"));
    let lns = Arc::new(Netns::new("xe2e-lns"));
    let core = Arc::new(Netns::new("xe2e-core"));
    for ns in [&lac, &lns, &core] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    let veth = |ns: &Netns, name: &str, mac: MacAddr, peer: &str, peer_ns: &Netns| {
        run_ip(
            ns,
            &[
                "link",
                "add",
                name,
                "address",
                &mac.to_string(),
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                &peer_ns.name,
            ],
        );
    };
    veth(&lns, "la", LA_MAC, "lac0", &lac);
    veth(&lns, "lc", LC_MAC, "core0", &core);
    lac.ip(&["link", "set", "lac0", "address", &LAC_MAC.to_string()]);
    core.ip(&["link", "set", "core0", "address", &CORE_MAC.to_string()]);
    for (ns, l) in [(&lns, "la"), (&lns, "lc"), (&lac, "lac0"), (&core, "core0")] {
        ns.ip(&["link", "set", l, "up"]);
    }
    lns.ip(&["addr", "add", "192.0.2.1/24", "dev", "la"]);
    lns.ip(&["addr", "add", "198.51.100.1/24", "dev", "lc"]);
    lac.ip(&["addr", "add", "192.0.2.2/24", "dev", "lac0"]);
    // The core host has no address: what reaches it is only counted, never answered.
    let neigh = |ns: &Netns, addr: &str, mac: MacAddr, dev: &str| {
        ns.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            &mac.to_string(),
            "nud",
            "permanent",
            "dev",
            dev,
        ]);
    };
    // The LAC's kernel sends its UDP (control messages, PPP control frames) with checksum
    // offload: over a veth the frame reaches the access program with the checksum unfinished
    // (CHECKSUM_PARTIAL, only the pseudo-header sum), which the fast path drops as
    // bad_udp_checksum. A real wire carries finished checksums: compute them in software.
    lac.exec(&["ethtool", "-K", "lac0", "tx", "off"]);
    neigh(&lns, "192.0.2.2", LAC_MAC, "la");
    neigh(&lns, "198.51.100.2", CORE_MAC, "lc");
    neigh(&lac, "192.0.2.1", LA_MAC, "lac0");
    // bpf_fib_lookup needs forwarding on the ingress device.
    lns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);

    // The fast path, pinned (removed at the end whatever happens).
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/l2xdp-xdpe2e-{}", std::process::id()));
    let _unpin = Unpin(pin_dir.clone());
    let _lns_obj = {
        let _g = lns.enter();
        let mut ebpf = loader::load(Some(&pin_dir)).expect("load with pins");
        loader::attach_pinned(&mut ebpf, prog::ACCESS, "la", &pin_dir).expect("attach access");
        loader::attach_pinned(&mut ebpf, prog::CORE, "lc", &pin_dir).expect("attach core");
        XdpDataPlane::open(&pin_dir)
            .expect("open pins")
            .set_config(&FastPathConfig::default())
            .expect("config");
        ebpf
    };
    // The test's own view of the maps (they are global, not per namespace).
    let fast = XdpDataPlane::open(&pin_dir).expect("open pins");

    let (core_sock, core_rx_sock, _core_pass) = {
        let _g = core.enter();
        let e = attach_pass("core0");
        let i = loader::ifindex("core0").expect("core0");
        (packet_socket(i, ETH_P_IP), packet_socket(i, ETH_P_IP), e)
    };
    let (lac_sock, lac_rx_sock, _lac_pass) = {
        let _g = lac.enter();
        let e = attach_pass("lac0");
        let i = loader::ifindex("lac0").expect("lac0");
        (packet_socket(i, ETH_P_IP), packet_socket(i, ETH_P_IP), e)
    };

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
        let mut tunnels: Vec<TunnelId> = Vec::new();
        for _ in 0..TUNNELS {
            tunnels.push(
                lac_node
                    .handle
                    .open_tunnel(peer, Version::V2)
                    .await
                    .expect("running")
                    .expect("open tunnel"),
            );
        }
        wait_for(&mut lac_node.events, TUNNELS, "tunnels up", |e| {
            matches!(e, NodeEvent::TunnelUp { .. })
        })
        .await;
        let mut n = 0;
        for &t in &tunnels {
            for _ in 0..SESSIONS {
                let auth = ClientAuth {
                    user: format!("user{n}"),
                    password: format!("pw{n}").into_bytes(),
                };
                lac_node
                    .handle
                    .open_session(t, CallParams::default(), Some(auth))
                    .await
                    .expect("running")
                    .expect("open session");
                n += 1;
            }
        }
        let lac_up = wait_for(&mut lac_node.events, N, "PPP up at the LAC", |e| {
            matches!(e, NodeEvent::PppUp { .. })
        })
        .await;
        let lns_up = wait_for(&mut lns_node.events, N, "PPP up at the LNS", |e| {
            matches!(e, NodeEvent::PppUp { .. })
        })
        .await;
        (lac_up, lns_up)
    });

    // The LAC's view of every session: its IDs (ours and the LNS's) and the subscriber address.
    let mut subs: BTreeMap<SessionKey, Sub> = BTreeMap::new();
    for e in &lac_up {
        let NodeEvent::PppUp {
            tunnel,
            session,
            local_ipv4,
            ..
        } = e
        else {
            continue;
        };
        let (t, s) = (*tunnel, *session);
        let up = rt
            .block_on(lac_node.handle.inspect(move |n| n.session((t, s)).cloned()))
            .expect("LAC running")
            .expect("the LAC knows its session");
        let view = Session {
            transport: Transport::Udp,
            local_addr: IpAddr::V4(LAC_IP),
            peer_addr: IpAddr::V4(LNS_IP),
            local_port: L2TP_PORT,
            peer_port: L2TP_PORT,
            local_mac: LAC_MAC,
            next_hop_mac: LA_MAC,
            vlans: Vlans::NONE,
            our_ids: up.our_ids,
            peer_ids: up.peer_ids,
            cookie_rx: Cookie::NONE,
            cookie_tx: Cookie::NONE,
            l2ss: false,
            sequencing: up.sequencing_rx || up.sequencing_tx,
            ppp: PppTx::default(),
            ttl: 64,
            dscp: 0,
            udp_checksum_v4: true,
        };
        subs.insert(
            up.our_ids,
            Sub {
                view,
                addr: local_ipv4.expect("IPCP gave the subscriber an address"),
                lns_key: up.peer_ids,
            },
        );
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
    let mut bound: BTreeMap<SessionKey, Ipv4Addr> = BTreeMap::new();
    for e in &installed {
        let Binding::Subscriber { ipv4: Some(a), .. } = e.binding else {
            panic!(
                "session {:?} not bound to an address: {:?}",
                e.key(),
                e.binding
            );
        };
        assert_eq!(e.session.local_addr, IpAddr::V4(LNS_IP));
        assert_eq!(e.session.peer_addr, IpAddr::V4(LAC_IP));
        bound.insert(e.key(), a);
    }
    for s in subs.values() {
        assert_eq!(
            bound.get(&s.lns_key),
            Some(&s.addr),
            "binding of {:?}",
            s.lns_key
        );
    }

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
    let bringup_drops = fast.drop_counters().expect("drops");
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
    let order: Vec<Sub> = subs.values().cloned().collect();
    let mut tx: HashMap<SessionKey, TxSeq> = order
        .iter()
        .map(|s| (s.view.our_ids, TxSeq::default()))
        .collect();

    // 1b. Source address validation (RFC 1661 §3.2, BCP 38): on every session, one packet
    // from the next subscriber's address (bound to another session) and one from an address
    // nobody has. Each is dropped as unbound_source; none is decapsulated or reaches the core
    // (a forwarded one would also break the exact per-source counts below).
    let stranger = Ipv4Addr::new(198, 18, 0, 1);
    for (i, s) in order.iter().enumerate() {
        let neighbour = order[(i + 1) % N].addr;
        for src in [neighbour, stranger] {
            let inner = inner_ip(src, CORE_HOST, SUB_PORT, CORE_PORT, u32::MAX);
            let mut out = vec![0u8; 2048];
            let t = tx.get_mut(&s.view.our_ids).expect("tx");
            let n = encap(&s.view, t, &inner, 1500, &mut out).expect("LAC encap");
            send(&lac_sock, &out[..n]);
        }
    }
    let spoofed = 2 * N as u64;
    let end = Instant::now() + LIMIT;
    let unbound = |d: &[u64]| d[DropReason::UnboundSource as usize];
    while unbound(&fast.drop_counters().expect("drops")) < spoofed && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let bringup_drops = fast.drop_counters().expect("drops");
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

    // 2. Traffic both ways through XDP, the control plane alive.
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(lac_rx_sock, move |f| classify_downstream(&subs_rx, f));
    // Expected per subscriber: (packets, bytes) upstream as sent, downstream as received.
    let mut want_up: HashMap<u32, (usize, u64)> = HashMap::new();
    let (mut up_sent, mut down_sent) = (0usize, 0usize);
    let mut seq = 0u32;
    for _ in 0..PER_SESSION {
        for s in &order {
            let f = upstream_frame(s, tx.get_mut(&s.view.our_ids).expect("tx"), seq);
            let e = want_up.entry(u32::from(s.addr)).or_insert((0, 0));
            e.0 += 1;
            e.1 += f.len() as u64;
            send_paced(&lac_sock, &f, &core_rx, 0, &mut up_sent);
            send_paced(
                &core_sock,
                &downstream_frame(s, seq),
                &lac_rx,
                0,
                &mut down_sent,
            );
            seq += 1;
        }
    }
    core_rx.wait(N * PER_SESSION, "upstream, control plane up");
    lac_rx.wait(N * PER_SESSION, "downstream, control plane up");
    for s in &order {
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
    let (up_base, down_base) = (core_rx.total(), lac_rx.total());
    let tx = &mut tx;
    let want_up = &mut want_up;
    std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            let (mut up, mut down) = (0usize, 0usize);
            let mut seq = seq;
            let mut i = 0usize;
            for _ in 0..PER_SESSION_OUTAGE {
                for s in &order {
                    if i == before_kill {
                        let end = Instant::now() + LIMIT;
                        while !killed.load(Ordering::Acquire) {
                            assert!(Instant::now() < end, "the LNS was never killed");
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    if killed.load(Ordering::Acquire) {
                        sent_after_kill.fetch_add(1, Ordering::Relaxed);
                    }
                    let f = upstream_frame(s, tx.get_mut(&s.view.our_ids).expect("tx"), seq);
                    let e = want_up.entry(u32::from(s.addr)).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += f.len() as u64;
                    send_paced(&lac_sock, &f, &core_rx, up_base, &mut up);
                    send_paced(
                        &core_sock,
                        &downstream_frame(s, seq),
                        &lac_rx,
                        down_base,
                        &mut down,
                    );
                    i += 1;
                    seq += 1;
                }
            }
            (up, down)
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
    for s in &order {
        let k = u32::from(s.addr);
        let (sent, up_bytes) = want_up[&k];
        assert_eq!(sent, per_total);
        assert_eq!(up_got[&k].0, per_total, "upstream packets of {}", s.addr);
        assert_eq!(
            down_got[&k].0, per_total,
            "downstream packets of {}",
            s.addr
        );
        // The fast path's own per-session counters agree, packets and bytes.
        let c = fast
            .counters(&s.lns_key)
            .expect("the session is still installed");
        assert_eq!(c.rx_packets, per_total as u64, "XDP rx of {:?}", s.lns_key);
        assert_eq!(c.tx_packets, per_total as u64, "XDP tx of {:?}", s.lns_key);
        assert_eq!(c.rx_bytes, up_bytes, "XDP rx bytes of {:?}", s.lns_key);
        assert_eq!(
            c.tx_bytes, down_got[&k].1,
            "XDP tx bytes of {:?}",
            s.lns_key
        );
    }
    assert_eq!(
        up_got.len(),
        N,
        "nothing from any other source reached the core"
    );
    assert_eq!(fast.sessions().expect("sessions").len(), N);
    let drops = fast.drop_counters().expect("drops");
    assert_eq!(drops, bringup_drops, "nothing dropped since bring-up");
    let v = fast.verdict_counters().expect("verdicts");
    let total = (N * per_total) as u64;
    assert_eq!(v[verdict::DECAP as usize], total, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], total, "{v:?}");
    eprintln!("after: XDP verdicts {v:?}");

    drop(core_rx);
    drop(lac_rx);
    lac_node.kill();
}
