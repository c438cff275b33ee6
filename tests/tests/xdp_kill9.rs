//! `kill -9` of the control-plane process while traffic flows drops no data packet.
//!
//! The topology of `tests/tests/xdp_e2e.rs`: three network namespaces `lac` — `lns` — `core`
//! joined by veth pairs, the XDP programs attached on the lns side (`xdp_l2tp_access` on the
//! access veth `la`, `xdp_l2tp_core` on the core veth `lc`), `xdp_pass` on the peers so that
//! redirected frames are delivered. Needs root (`l2xdp_lab::require_root`).
//!
//! The maps and links are pinned in a per-test bpffs: a `bpf` file system mounted for this
//! test in a temporary directory (not under /sys/fs/bpf: `ip netns exec` mounts a fresh /sys
//! for the command, which hides /sys/fs/bpf; a mount elsewhere is inherited). The LNS is the
//! real `l2xdpd` *process*, started as `ip netns exec <lns> l2xdpd --config <file>` from a
//! generated configuration: `[dataplane] mode = "xdp"` with `pin_dir` = the test's pins,
//! `listen` = the LNS's access address:1701, CHAP users file, IPCP pool, a control socket in
//! the temporary directory. The LAC is an in-process `Node` on a thread inside `lac`.
//!
//! 1. The LAC brings up `TUNNELS × SESSIONS` L2TPv2 sessions with PPP (CHAP) through IPCP;
//!    the test waits until l2xdpd's control socket reports all of them with PPP up and
//!    installed, and the pinned maps hold every session bound to its IPCP address.
//! 2. Traffic both ways through XDP with packet sockets (from `lac`, L2TPv2 data frames built
//!    with `wire::datapath::encap` from the LAC's view of each session; from `core`, IPv4 to
//!    each subscriber address), paced by what the receivers counted so that nothing is lost
//!    to a full veth ring; exact counts per subscriber.
//! 3. While traffic flows, SIGKILL to the l2xdpd process (the `ip netns exec` child, which
//!    exec'd l2xdpd: its /proc comm is checked), and sending goes on for the last third of
//!    the phase with no control plane alive. Every data packet sent before, during and after
//!    the kill arrived — counted at the receivers and by the per-session XDP counters (packets
//!    and bytes) — nothing was dropped since bring-up, and every session is still installed
//!    in the pinned maps.
//!
//! In `kill_9_of_l2xdpd_drops_no_data_packet` nothing recovers after the kill: the LAC's
//! control messages (hellos, acknowledgements) go unanswered, and the LAC would eventually
//! give the tunnels up. The point there is that the fast path, owning the pinned maps, keeps
//! forwarding with no control plane at all.
//!
//! `kill_9_and_restart_recovers_every_session_without_loss` (L2TPv2, PPP sessions) and
//! `kill_9_and_restart_recovers_every_pseudowire_without_loss` (L2TPv3 Ethernet pseudowires
//! over UDP with 8-byte cookies both ways, each bound to an attachment circuit of its own: a
//! veth pair `pw<i>` — `cpw<i>` between `lns` and `core` with `xdp_l2tp_core` on `pw<i>`;
//! upstream frames are Ethernet frames carried whole to the core host, downstream ones are
//! sent on the circuit and encapsulated) run one body, RFC 4951 failover of the real
//! process: both ends have a Failover Capability (C and D, Recovery Time 10 s), l2xdpd keeps
//! its state in `[daemon] state_dir`, and the subscribers send LCP Echo-Requests every
//! 500 ms. A sender sends whole rounds (one packet per session each way) throughout; l2xdpd is
//! SIGKILLed, traffic goes on with no control plane, a new l2xdpd is started with the same
//! configuration (state, pins, address) and recovers at start-up (a recovery tunnel per
//! tunnel, the control channel reset, FSQ/FSR), traffic goes on after. Asserted: every data
//! packet arrived (receivers and per-session XDP counters), nothing dropped since bring-up;
//! the LAC saw no tunnel or session go down (nor a recovery tunnel come up) and its sessions
//! keep their IDs; every session is still installed, bound to the same address; the new
//! l2xdpd's control socket reports exactly the same tunnels (recovery tunnels that are done
//! are not listed) and the same sessions (user, PPP phase, address, installed) as the first
//! one, with every
//! session restored with its fast-path entry kept; the subscribers' echoes are answered
//! again; and a new session set up afterwards through the new l2xdpd carries traffic. The
//! time from the new l2xdpd's start to all tunnels recovered is printed, not asserted. Every
//! control message on the access link from bring-up to the end (captured by `dumpcap` in
//! `lac`), the recovery SCCRQ, FSQ and FSR of every tunnel among them, decodes cleanly in
//! tshark.
//!
//! The `_afxdp` twins (`kill_9_of_l2xdpd_drops_no_data_packet_afxdp`,
//! `kill_9_and_restart_recovers_every_session_without_loss_afxdp`,
//! `kill_9_and_restart_recovers_every_pseudowire_without_loss_afxdp`) run the same bodies with
//! the fast path in AF_XDP mode: a worker on CPU 0 in the test process with sockets on `la`,
//! `lc` and every attachment circuit (made before the workers start), so that the restart
//! test also checks that the workers forwarded every packet and dropped none.
//!
//! `lac_kill_9_and_restart_recovers_sessions_with_l2xdpd_as_remote_endpoint` (v2) and
//! `lac_kill_9_and_restart_recovers_pseudowires_with_l2xdpd_as_remote_endpoint` (v3) swap the
//! roles: the LAC is an `l2xdpd` process too, in the initiator role (`[initiator]` in its
//! configuration), and it is the one SIGKILLed and restarted; it takes its tunnels back as
//! the RFC 4951 recovery endpoint, its PPP client links restored from its state, while the
//! l2xdpd LNS holds them as the remote endpoint and its fast path forwards throughout (see
//! `lac_restart_recovers`).
//!
//! The topology, packet sockets, paced sending, counting receivers, frame builders and
//! classifiers are the lab's (`l2xdp_lab`), shared with `tests/tests/xdp_e2e.rs`.
//!
//! Time limits only bound a hung run; nothing asserts how fast anything went.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::{FailoverConfig, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::node::{NodeConfig, NodeEvent, SessionRef};
use l2xdp_controlplane::ppp::{AuthMethod, MemoryCredentials, PppConfig};
use l2xdp_dataplane::l2xdp_ebpf::maps::{verdict, xsk_stat};
use l2xdp_dataplane::{loader, Binding, DataPlane, XdpDataPlane};
use l2xdp_lab::cp::l2xdpd::{self, ask, Files, L2xdpd, Placement};
use l2xdp_lab::cp::{is_down, subscriber, wait_for, NodeThread};
use l2xdp_lab::packet::PacketSocket;
use l2xdp_lab::scratch::Scratch;
use l2xdp_lab::topology::{
    FastPath, Mode, PeerPort, Topology, CORE0, L2TP_PORT, LAC0, LAC_IP, LNS_IP,
};
use l2xdp_lab::traffic::{
    self, classify_downstream, classify_upstream, classify_upstream_pw, ip_socket, Counter, Flows,
    Paced, Sub, ETH_P_IP, RECV_BUFFER, RECV_TIMEOUT,
};
use l2xdp_lab::tshark;
use l2xdp_lab::{require_root, Netns};
use l2xdp_wire::datapath::{DropReason, SessionKey};
use l2xdp_wire::l2tp::header::Version;
use serde_json::Value;

const TUNNELS: usize = 4;
const SESSIONS: usize = 4;
const N: usize = TUNNELS * SESSIONS;
/// Packets per session and direction while l2xdpd runs.
const PER_SESSION: usize = 25;
/// Packets per session and direction in the kill phase (the last third sent after the kill).
const PER_SESSION_KILL: usize = 300;
/// Bounds a hung run; not a performance expectation.
const LIMIT: Duration = traffic::LIMIT;
/// RFC 4951 Recovery Time of both ends in the restart test.
const RECOVERY_TIME_MS: u32 = 10_000;
/// The subscribers' LCP keepalive interval in the restart test.
const ECHO_INTERVAL: Duration = Duration::from_millis(500);
/// Unanswered Echo-Requests before a subscriber's link goes down: the outage of the restart
/// test must stay shorter than `ECHO_INTERVAL × ECHO_FAILURES` (30 s). A bound for slow
/// machines (a kill -9, restart and RFC 4951 recovery took 8–12 s in qemu/TCG guests, where 5 s
/// took the subscribers down), not a performance expectation: recovery here takes ~1 s.
const ECHO_FAILURES: u32 = 60;
/// L2TPv3 attachment circuits: one per pseudowire, and one for the pseudowire the restart
/// test opens afterwards.
const CIRCUITS: usize = N + 1;

/// The LNS's end of the `i`-th attachment circuit (Remote End ID `pw<i>`).
fn circuit_name(i: usize) -> String {
    format!("pw{i}")
}

/// The core host's end of the `i`-th attachment circuit.
fn circuit_peer_name(i: usize) -> String {
    format!("cpw{i}")
}

/// An L2TPv3 attachment circuit of the lab: its LNS end's index (what l2xdpd binds the
/// pseudowire to) and the core host's end, with `xdp_pass` attached.
struct Circuit {
    lns_ifindex: u32,
    core: PeerPort,
}

/// The fast path in `mode` (AF_XDP: one worker on CPU 0, in this process), pinned in `pins`;
/// for v3 with the [`CIRCUITS`] attachment circuits (`pw<i>` — `cpw<i>`) made first, so that
/// the fast path is attached to their LNS ends and, in AF_XDP mode, the workers have sockets
/// on them; none for v2.
fn start_fast_path(
    topo: &Topology,
    pins: &Path,
    mode: Mode,
    version: Version,
) -> (FastPath, Vec<Circuit>) {
    let names: Vec<(String, String)> = match version {
        Version::V2 => Vec::new(),
        Version::V3 => (0..CIRCUITS)
            .map(|i| (circuit_name(i), circuit_peer_name(i)))
            .collect(),
    };
    for (lns_end, core_end) in &names {
        topo.add_circuit(lns_end, core_end);
    }
    let lns_ends: Vec<String> = names.iter().map(|(l, _)| l.clone()).collect();
    let fp = topo.start_fast_path_with_circuits(pins, mode, &[0], &lns_ends);
    let circuits = names
        .iter()
        .map(|(lns_end, core_end)| Circuit {
            lns_ifindex: {
                let _g = topo.lns.enter();
                loader::ifindex(lns_end).expect("circuit ifindex")
            },
            core: PeerPort::new(&topo.core, core_end),
        })
        .collect();
    (fp, circuits)
}

// ---------------------------------------------------------------------------------------------
// l2xdpd.

/// l2xdpd's configuration (and users file) in the scratch directory
/// (`l2xdp_lab::cp::l2xdpd::write_config` sets listen address, control socket,
/// state dir, pins and users file). With `failover`, RFC 4951 failover (C and D). One user
/// more than sessions: the restart test opens one afterwards; likewise, for v3, one L2TPv3
/// attachment circuit more (`pw<n>`, Remote End ID `pw<n>`), and 8-byte cookies on
/// pseudowires.
fn write_config(s: &Scratch, failover: bool, version: Version) -> Files {
    let failover = if failover {
        format!(
            "\n[l2tp.failover]\ncontrol = true\ndata = true\n\
             recovery_time_ms = {RECOVERY_TIME_MS}\n"
        )
    } else {
        String::new()
    };
    let base = format!(
        r#"[l2tp]
host_name = "lns-kill9"
# This test is about RFC 4951 recovery; tests/resume.rs covers transparent resume.
resume = false
{failover}
[l2tp.pseudowire]
cookie_len = 8

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
{circuits}"#,
        circuits = (0..if version == Version::V3 { CIRCUITS } else { 0 })
            .map(|i| format!(
                "\n[[pseudowire]]\nremote_end_id = \"pw{i}\"\ninterface = \"{}\"\n",
                circuit_name(i)
            ))
            .collect::<String>(),
    );
    l2xdpd::write_config(
        &s.dir,
        Path::new("base.toml"),
        &base,
        Placement::lab(&s.pins),
        N + 1,
    )
    .expect("l2xdpd configuration")
}

/// Starts l2xdpd in `ns` (its log on our stderr).
fn start_daemon(ns: &Netns, files: &Files) -> L2xdpd {
    L2xdpd::start(
        Some(ns),
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        files,
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// The LAC: a node on its own thread, in its namespace, on a current-thread runtime
// (`l2xdp_lab::cp::NodeThread`).

/// The LAC's configuration. Without `failover`, the emulated subscribers send no LCP
/// keepalives (nothing of theirs depends on how long the LNS has been gone). With it, the
/// LAC has the same RFC 4951 Failover Capability as l2xdpd, and the subscribers send an
/// Echo-Request every [`ECHO_INTERVAL`]: [`ECHO_FAILURES`] unanswered and a link goes down.
fn lac_config(failover: bool) -> NodeConfig {
    let ppp = PppConfig {
        auth: vec![AuthMethod::Chap],
        echo_interval: if failover {
            ECHO_INTERVAL
        } else {
            Duration::ZERO
        },
        echo_failures: ECHO_FAILURES,
        ..PppConfig::default()
    };
    let mut l2tp = L2tpConfig {
        host_name: "lac".into(),
        failover: failover.then_some(FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: RECOVERY_TIME_MS,
        }),
        ..L2tpConfig::default()
    };
    // L2TPv3 pseudowires with 8-byte cookies both ways (l2xdpd's configuration has the same).
    l2tp.pseudowire.cookie_len = 8;
    NodeConfig {
        l2tp,
        ppp: Arc::new(ppp),
        credentials: Arc::new(MemoryCredentials::new()),
        pool: None,
        attachment_circuits: HashMap::new(),
        random: l2xdp_controlplane::random::Random::from_os().expect("entropy"),
    }
}

/// Waits (bounded) until `done` holds for the reply to `status`, and returns that reply (or
/// the last one, when time ran out: the caller's assertions say what was missing).
fn status_when(sock: &Path, done: impl Fn(&Value) -> bool) -> Value {
    l2xdpd::status_when(sock, LIMIT, Duration::from_millis(20), done)
}

// ---------------------------------------------------------------------------------------------
// The lab, brought up: namespaces, fast path, l2xdpd, the LAC with every PPP session up.

/// Everything both tests set up. Fields drop in declaration order: the LAC first, then
/// l2xdpd, the sockets and ports, the fast path and its pins, the namespaces last.
struct Lab {
    rt: tokio::runtime::Runtime,
    lac_node: NodeThread,
    daemon: L2xdpd,
    /// l2xdpd's configuration file and control socket.
    files: Files,
    sock: PathBuf,
    /// The LAC's tunnels.
    tunnels: Vec<TunnelId>,
    /// The LAC's view of every session (by the LAC's IDs).
    subs: BTreeMap<SessionKey, Sub>,
    /// XDP drop counters after bring-up.
    bringup_drops: [u64; DropReason::COUNT],
    lac_sock: PacketSocket,
    core_sock: PacketSocket,
    lac_port: PeerPort,
    core_port: PeerPort,
    /// The test's own view of the pinned maps.
    fast: XdpDataPlane,
    pins: PathBuf,
    /// L2TPv2 PPP sessions or L2TPv3 Ethernet pseudowires.
    version: Version,
    /// v3: the attachment circuits (none for v2).
    circuits: Vec<Circuit>,
    /// The fast path (AF_XDP mode: the workers, in this process).
    fp: FastPath,
    _scratch: Scratch,
    topo: Topology,
}

impl Lab {
    /// Step 1 of the tests: the topology, the fast path pinned in the test's own bpffs,
    /// l2xdpd (with RFC 4951 failover when `failover`) and the LAC; `TUNNELS × SESSIONS`
    /// sessions of `version`, reported up and installed by l2xdpd and bound in the pinned
    /// maps: L2TPv2 with PPP through IPCP, bound to their IPCP addresses; or L2TPv3 Ethernet
    /// pseudowires (8-byte cookies), each bound to its attachment circuit (a veth pair
    /// `pw<i>` — `cpw<i>` between `lns` and `core`, the fast path attached on `pw<i>`).
    /// The fast path runs in `mode` (AF_XDP: workers in this process with sockets on `la`,
    /// `lc` and, for v3, the attachment circuits).
    fn up(tag: &str, failover: bool, version: Version, mode: Mode) -> Lab {
        let tag = &format!("{tag}-{mode:?}");
        let topo = Topology::new(tag);
        let scratch = Scratch::new(tag);
        let pins = scratch.pins.clone();
        let (fp, circuits) = start_fast_path(&topo, &pins, mode, version);
        let fast = XdpDataPlane::open(&pins).expect("open pins");
        let core_port = PeerPort::new(&topo.core, CORE0);
        let lac_port = PeerPort::new(&topo.lac, LAC0);
        let core_sock = match version {
            Version::V2 => ip_socket(&core_port),
            Version::V3 => all_ports_socket(&topo.core),
        };
        let lac_sock = ip_socket(&lac_port);

        // The LNS: the l2xdpd process in `lns`, over the pinned maps.
        let files = write_config(&scratch, failover, version);
        let sock = files.control_socket.clone();
        let daemon = start_daemon(&topo.lns, &files);
        let status = ask(&sock, r#"{"cmd":"status"}"#);
        assert_eq!(status["ok"], true, "{status}");
        assert_eq!(status["data"]["installed"], 0, "{status}");

        // The LAC, in process.
        let mut lac_node = NodeThread::start(
            topo.lac.clone(),
            SocketAddr::new(IpAddr::V4(LAC_IP), L2TP_PORT),
            move || {
                (
                    lac_config(failover),
                    Box::new(l2xdp_dataplane::MemoryDataPlane::new()),
                )
            },
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");

        // Tunnels, sessions (PPP through IPCP for v2).
        let peer = Peer::udp(SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT));
        let (tunnels, lac_up) = rt.block_on(lac_node.bring_up(peer, version, TUNNELS, SESSIONS));

        // l2xdpd reports them all up and installed (bounded wait: its PPP may finish a moment
        // after the LAC's).
        let ppp = ppp_sessions(version, N);
        let status = status_when(&sock, |d| d["installed"] == N && d["ppp_up"] == ppp);
        eprintln!("l2xdpd status after bring-up: {status}");
        assert_eq!(status["data"]["tunnels"], TUNNELS, "{status}");
        assert_eq!(status["data"]["sessions"], N, "{status}");
        assert_eq!(status["data"]["ppp_up"], ppp, "{status}");
        assert_eq!(status["data"]["installed"], N, "{status}");

        // The LAC's view of every session: its IDs (ours and the LNS's), cookies, and the
        // subscriber address (for a pseudowire, the address its frames carry).
        let mut subs: BTreeMap<SessionKey, Sub> = BTreeMap::new();
        for e in &lac_up {
            let s = lac_sub(&rt, &lac_node, e, &circuits).expect("a session up event");
            subs.insert(s.view.our_ids, s);
        }
        assert_eq!(subs.len(), N, "one LAC session per up event");
        if version == Version::V3 {
            assert!(
                subs.values().all(|s| s.view.cookie_rx.as_bytes().len() == 8
                    && s.view.cookie_tx.as_bytes().len() == 8),
                "8-byte cookies both ways"
            );
        }

        // Installed by l2xdpd in the pinned maps, bound to the addresses IPCP assigned
        // (bounded wait for the last binding).
        let end = Instant::now() + LIMIT;
        while bound(&fast).len() < N && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let installed = fast.sessions().expect("sessions");
        assert_eq!(installed.len(), N, "every session in the pinned maps");
        for e in &installed {
            assert_eq!(e.session.local_addr, IpAddr::V4(LNS_IP));
            assert_eq!(e.session.peer_addr, IpAddr::V4(LAC_IP));
        }
        assert_bound(&fast, &subs, &circuits);
        // Bring-up may see one unknown_session drop per session at most (the LAC's first LCP
        // Configure-Request can overtake the install that follows its ICCN; see xdp_e2e.rs).
        let bringup_drops = fp.drop_counters();
        let unknown = bringup_drops[DropReason::UnknownSession as usize];
        eprintln!("bring-up: XDP drops {bringup_drops:?}");
        assert!(unknown <= N as u64, "unknown_session drops: {unknown}");
        assert_eq!(
            bringup_drops.iter().sum::<u64>(),
            unknown,
            "no other drop: {bringup_drops:?}"
        );
        Lab {
            rt,
            lac_node,
            daemon,
            files,
            sock,
            tunnels,
            subs,
            bringup_drops,
            lac_sock,
            core_sock,
            lac_port,
            core_port,
            fast,
            pins,
            version,
            circuits,
            fp,
            _scratch: scratch,
            topo,
        }
    }

    /// Counting receivers for `subs`' traffic: at the core host (upstream) and at the LAC
    /// (downstream), each on a packet socket of its own.
    /// For pseudowires the core host counts on all its attachment circuits at once.
    fn counters(&self, subs: &BTreeMap<SessionKey, Sub>) -> (Counter, Counter) {
        let core_rx = match self.version {
            Version::V2 => Counter::start(ip_socket(&self.core_port), classify_upstream),
            Version::V3 => Counter::start(all_ports_socket(&self.topo.core), classify_upstream_pw),
        };
        let subs_rx = subs.clone();
        let lac_rx = Counter::start(ip_socket(&self.lac_port), move |f| {
            classify_downstream(&subs_rx, f)
        });
        (core_rx, lac_rx)
    }

    /// Step 2 of both tests: `PER_SESSION` packets per session both ways through XDP, l2xdpd
    /// alive, all counted.
    fn traffic_alive(&self, flows: &mut Flows, core_rx: &Counter, lac_rx: &Counter) {
        self.fp.settle();
        flows.send_rounds(
            PER_SESSION,
            &mut Paced::new(&self.lac_sock, core_rx),
            &mut Paced::new(&self.core_sock, lac_rx),
        );
        core_rx.wait(N * PER_SESSION, "upstream, l2xdpd alive");
        lac_rx.wait(N * PER_SESSION, "downstream, l2xdpd alive");
        if let Some(a) = &self.fp.afxdp {
            assert!(
                a.received() >= (2 * N * PER_SESSION) as u64,
                "through the workers"
            );
        }
    }

    /// The pinned maps seen afresh: every session of `subs` still installed, nothing else.
    fn assert_still_installed(&self) {
        let reopened = XdpDataPlane::open(&self.pins).expect("reopen pins");
        let still = reopened.sessions().expect("sessions");
        assert_eq!(still.len(), N, "every session still installed");
        let mut still_keys: Vec<SessionKey> = still.iter().map(|e| e.key()).collect();
        still_keys.sort();
        let mut keys: Vec<SessionKey> = self.subs.values().map(|s| s.lns_key).collect();
        keys.sort();
        assert_eq!(still_keys, keys);
    }
}

/// Sessions of `version` among `n` with PPP (all of them for v2, none for v3).
fn ppp_sessions(version: Version, n: usize) -> usize {
    match version {
        Version::V2 => n,
        Version::V3 => 0,
    }
}

/// A packet socket for IPv4 frames on every interface of `ns` (the core host's attachment
/// circuits), as [`ip_socket`] otherwise.
fn all_ports_socket(ns: &Netns) -> PacketSocket {
    let _g = ns.enter();
    PacketSocket::open(0, ETH_P_IP, RECV_TIMEOUT).force_recv_buffer(RECV_BUFFER)
}

/// The LAC's view of the session of a `PppUp` event (v2: the lab's [`subscriber`]), or of a
/// pseudowire's `SessionUp` (v3: its Remote End ID `pw<i>` names its attachment circuit, and
/// its frames carry 100.65.0.<i+1>); `None` for other events.
fn lac_sub(
    rt: &tokio::runtime::Runtime,
    lac: &NodeThread,
    e: &NodeEvent,
    circuits: &[Circuit],
) -> Option<Sub> {
    let &NodeEvent::SessionUp {
        tunnel: t,
        session: s,
    } = e
    else {
        return rt.block_on(subscriber(&lac.handle, e));
    };
    let up = rt
        .block_on(lac.handle.inspect(move |n| n.session((t, s)).cloned()))
        .expect("LAC running")
        .expect("the LAC knows its session");
    if up.version != Version::V3 {
        return None;
    }
    let sequencing = up.sequencing_rx || up.sequencing_tx;
    let name = String::from_utf8_lossy(&up.remote_end_id).into_owned();
    let i: usize = name
        .strip_prefix("pw")
        .and_then(|i| i.parse().ok())
        .expect("Remote End ID pw<i>");
    Some(Sub::pseudowire(
        up.our_ids,
        up.peer_ids,
        up.cookie_rx,
        up.cookie_tx,
        up.sublayer_rx || up.sublayer_tx,
        sequencing,
        Ipv4Addr::new(100, 65, 0, u8::try_from(i + 1).expect("few circuits")),
        circuits[i].core.ifindex,
    ))
}

/// What steers downstream traffic into each session of the pinned maps: its subscriber's
/// IPv4 address (v2), or its attachment circuit's index (v3).
fn bound(fast: &XdpDataPlane) -> BTreeMap<SessionKey, u32> {
    fast.sessions()
        .expect("sessions")
        .iter()
        .filter_map(|e| match e.binding {
            Binding::Subscriber { ipv4: Some(a), .. } => Some((e.key(), u32::from(a))),
            Binding::AttachmentCircuit { ifindex } => Some((e.key(), ifindex)),
            _ => None,
        })
        .collect()
}

/// What [`bound`] must say of `sub`: its address, or its circuit's LNS end.
fn steer(sub: &Sub, circuits: &[Circuit]) -> u32 {
    match sub.circuit {
        None => u32::from(sub.addr),
        Some(core) => {
            circuits
                .iter()
                .find(|c| c.core.ifindex == core)
                .expect("the sub's circuit")
                .lns_ifindex
        }
    }
}

/// Every session of `subs` is bound, in the pinned maps, to its subscriber's address or to
/// its attachment circuit.
fn assert_bound(fast: &XdpDataPlane, subs: &BTreeMap<SessionKey, Sub>, circuits: &[Circuit]) {
    let bound = bound(fast);
    for s in subs.values() {
        assert_eq!(
            bound.get(&s.lns_key),
            Some(&steer(s, circuits)),
            "binding of {:?}",
            s.lns_key
        );
    }
}

#[test]
fn kill_9_of_l2xdpd_drops_no_data_packet() {
    kill_9_of_l2xdpd_drops_no_data_packet_in(Mode::Xdp);
}

#[test]
fn kill_9_of_l2xdpd_drops_no_data_packet_afxdp() {
    kill_9_of_l2xdpd_drops_no_data_packet_in(Mode::AfXdp);
}

fn kill_9_of_l2xdpd_drops_no_data_packet_in(mode: Mode) {
    let test = match mode {
        Mode::Xdp => "kill_9_of_l2xdpd_drops_no_data_packet",
        Mode::AfXdp => "kill_9_of_l2xdpd_drops_no_data_packet_afxdp",
    };
    if !require_root(test) {
        return;
    }
    // 1. Tunnels, sessions, PPP through IPCP.
    let mut lab = Lab::up("k9", false, Version::V2, mode);

    // 2. Traffic both ways through XDP, l2xdpd alive.
    let (core_rx, lac_rx) = lab.counters(&lab.subs);
    let mut flows = Flows::new(&lab.subs);
    lab.traffic_alive(&mut flows, &core_rx, &lac_rx);

    // 3. kill -9 of l2xdpd while traffic flows. A sender thread keeps both directions busy;
    // at two thirds it waits for the kill, so the last third is sent with no control plane.
    let phase = N * PER_SESSION_KILL;
    let before_kill = phase * 2 / 3;
    let killed = AtomicBool::new(false);
    let sent_after_kill = AtomicUsize::new(0);
    let (up_base, down_base) = (core_rx.total(), lac_rx.total());
    let flows = &mut flows;
    // Frames received in this phase (upstream, downstream) when the signal was sent and when
    // l2xdpd had been reaped: reported, not asserted (timing).
    let mut at_signal = (0usize, 0usize);
    let mut at_reap = (0usize, 0usize);
    let (lac_sock, core_sock) = (&lab.lac_sock, &lab.core_sock);
    let daemon = &mut lab.daemon;
    std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            let mut up = Paced::new(lac_sock, &core_rx);
            let mut down = Paced::new(core_sock, &lac_rx);
            flows.send_rounds_through(
                PER_SESSION_KILL,
                &mut up,
                &mut down,
                before_kill,
                &killed,
                &sent_after_kill,
            );
            (up.sent, down.sent)
        });
        // Kill once a third of the phase has arrived: traffic is flowing.
        let end = Instant::now() + LIMIT;
        while core_rx.total() - up_base < phase / 3 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        at_signal = (core_rx.total() - up_base, lac_rx.total() - down_base);
        daemon.kill_9();
        at_reap = (core_rx.total() - up_base, lac_rx.total() - down_base);
        killed.store(true, Ordering::Release);
        let (up, down) = sender.join().expect("sender");
        assert_eq!((up, down), (phase, phase));
    });
    // No control plane: its socket file is left behind, nobody accepts on it.
    assert!(
        UnixStream::connect(&lab.sock).is_err(),
        "the control socket still answers"
    );
    let after = sent_after_kill.load(Ordering::Relaxed);
    assert!(
        after >= phase / 3,
        "{after} packets per direction sent after the kill"
    );
    let per_total = PER_SESSION + PER_SESSION_KILL;
    core_rx.wait(N * per_total, "upstream, overall");
    lac_rx.wait(N * per_total, "downstream, overall");
    eprintln!(
        "kill phase: {phase} packets per direction; arrived (up, down) when SIGKILL was sent \
         {at_signal:?}, when l2xdpd was reaped {at_reap:?}; {after} per direction sent after \
         the reap"
    );

    let up_got = core_rx.counts();
    let down_got = lac_rx.counts();
    flows.assert_delivered(per_total, &up_got, &down_got, &lab.fast);
    assert_eq!(up_got.len(), N, "nothing from any other source at the core");
    // Every session still installed, as l2xdpd left it: a fresh open of the pins sees them.
    lab.assert_still_installed();
    let drops = lab.fp.drop_counters();
    assert_eq!(drops, lab.bringup_drops, "nothing dropped since bring-up");
    let v = lab.fast.verdict_counters().expect("verdicts");
    let total = (N * per_total) as u64;
    assert_eq!(v[verdict::DECAP as usize], total, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], total, "{v:?}");
    eprintln!(
        "after: {} packets per direction in all ({N} sessions × {per_total}), all arrived; \
         XDP verdicts {v:?}",
        N * per_total
    );

    drop(core_rx);
    drop(lac_rx);
    drop(lab);
}

/// Rounds (one packet per session each way) the restart test's sender sends, at least, in
/// each stage: before the kill, between the kill and the restart, after the recovery.
const ROUNDS_STAGE: usize = 40;

/// The LAC's sessions: (its reference, its IDs, the LNS's IDs).
fn lac_sessions(
    rt: &tokio::runtime::Runtime,
    lac: &NodeThread,
) -> Vec<(SessionRef, SessionKey, SessionKey)> {
    rt.block_on(lac.handle.inspect(|n| {
        n.session_refs()
            .into_iter()
            .filter_map(|r| n.session(r).map(|u| (r, u.our_ids, u.peer_ids)))
            .collect()
    }))
    .expect("LAC running")
}

/// Echo-Replies each LAC session's PPP link has received.
fn lac_echo_replies(rt: &tokio::runtime::Runtime, lac: &NodeThread) -> Vec<(SessionRef, u64)> {
    rt.block_on(lac.handle.inspect(|n| {
        n.session_refs()
            .into_iter()
            .map(|s| {
                (
                    s,
                    n.link(s).map_or(0, |l| l.counters().echo_replies_received),
                )
            })
            .collect()
    }))
    .expect("LAC running")
}

#[test]
fn kill_9_and_restart_recovers_every_session_without_loss() {
    restart_recovers(
        "kill_9_and_restart_recovers_every_session_without_loss",
        "k9r",
        Version::V2,
        Mode::Xdp,
    );
}

#[test]
fn kill_9_and_restart_recovers_every_session_without_loss_afxdp() {
    restart_recovers(
        "kill_9_and_restart_recovers_every_session_without_loss_afxdp",
        "k9r",
        Version::V2,
        Mode::AfXdp,
    );
}

#[test]
fn kill_9_and_restart_recovers_every_pseudowire_without_loss() {
    restart_recovers(
        "kill_9_and_restart_recovers_every_pseudowire_without_loss",
        "k9r3",
        Version::V3,
        Mode::Xdp,
    );
}

#[test]
fn kill_9_and_restart_recovers_every_pseudowire_without_loss_afxdp() {
    restart_recovers(
        "kill_9_and_restart_recovers_every_pseudowire_without_loss_afxdp",
        "k9r3",
        Version::V3,
        Mode::AfXdp,
    );
}

/// The restart test, for L2TPv2 PPP sessions or L2TPv3 Ethernet pseudowires (see the module
/// documentation), with the fast path in `mode`.
fn restart_recovers(name: &str, tag: &str, version: Version, mode: Mode) {
    if !require_root(name) {
        return;
    }
    // 1. Both ends with RFC 4951 failover (C and D); l2xdpd keeps its state in the scratch
    // directory. Tunnels, sessions (PPP through IPCP for v2); traffic both ways, l2xdpd
    // alive.
    let mut lab = Lab::up(tag, true, version, mode);
    // Every control message on the access link from here on, both ways (T bit set: not the
    // data), for tshark.
    let capture = tshark::Dumpcap::start(
        &lab.topo.lac.name,
        LAC0,
        &format!("udp port {L2TP_PORT} and udp[8] & 0x80 != 0"),
        &lab._scratch.dir.join("control.pcap"),
    );
    let (core_rx, lac_rx) = lab.counters(&lab.subs);
    let mut flows = Flows::new(&lab.subs);
    lab.traffic_alive(&mut flows, &core_rx, &lac_rx);

    // What the first l2xdpd and the LAC know, to compare with after the restart.
    let tunnels_before = ask(&lab.sock, r#"{"cmd":"tunnels"}"#)["data"].clone();
    let sessions_before = ask(&lab.sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    assert_eq!(tunnels_before.as_array().map(Vec::len), Some(TUNNELS));
    assert_eq!(sessions_before.as_array().map(Vec::len), Some(N));
    let lac_before = lac_sessions(&lab.rt, &lab.lac_node);
    assert_eq!(lac_before.len(), N);
    let bound_before = bound(&lab.fast);
    assert_eq!(bound_before.len(), N);

    // 2. kill -9 of l2xdpd while traffic flows, traffic goes on with no control plane, a new
    // l2xdpd (same configuration, state, pins, address) starts and recovers while traffic
    // still flows, and traffic goes on after. The sender sends whole rounds until told to
    // stop, so that every session sends as many packets as the others.
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let Lab {
        daemon,
        files,
        sock,
        lac_sock,
        core_sock,
        topo,
        ..
    } = &mut lab;
    let flows = &mut flows;
    // Rounds sent when each stage began, and the recovery time: reported, not asserted.
    let mut stages = (0usize, 0usize, 0usize);
    let mut recovery = Duration::ZERO;
    let mut recovered_status = Value::Null;
    let sent = std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            let mut up = Paced::new(lac_sock, &core_rx);
            let mut down = Paced::new(core_sock, &lac_rx);
            while !stop.load(Ordering::Acquire) {
                for k in 0..flows.order.len() {
                    flows.send(k, &mut up, &mut down);
                }
                rounds.fetch_add(1, Ordering::Release);
            }
            assert_eq!(up.sent, down.sent);
            up.sent
        });
        let wait_rounds = |n: usize, what: &str| {
            let end = Instant::now() + LIMIT;
            while rounds.load(Ordering::Acquire) < n {
                assert!(Instant::now() < end, "{what}: the sender is stuck");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_rounds(ROUNDS_STAGE, "before the kill");
        daemon.kill_9();
        stages.0 = rounds.load(Ordering::Acquire);
        // No control plane: its socket file is left behind, nobody accepts on it.
        assert!(
            UnixStream::connect(&*sock).is_err(),
            "the control socket still answers"
        );
        wait_rounds(stages.0 + ROUNDS_STAGE, "with no control plane");

        // The new l2xdpd. Its start-up recovers (RFC 4951): a recovery tunnel per tunnel,
        // the control channel reset, FSQ/FSR.
        let t0 = Instant::now();
        stages.1 = rounds.load(Ordering::Acquire);
        *daemon = start_daemon(&topo.lns, files);
        recovered_status = status_when(sock, |d| {
            d["l2tp"]["failover"]["tunnel recovered"] == TUNNELS
        });
        recovery = t0.elapsed();
        stages.2 = rounds.load(Ordering::Acquire);
        wait_rounds(stages.2 + ROUNDS_STAGE, "after the recovery");

        stop.store(true, Ordering::Release);
        sender.join().expect("sender")
    });
    eprintln!(
        "restart: all {TUNNELS} tunnels recovered {recovery:?} after the new l2xdpd was \
         started; rounds of {N} packets each way sent: {} before the kill, {} with no \
         control plane, {} while the new l2xdpd started and recovered, {} after",
        stages.0,
        stages.1 - stages.0,
        stages.2 - stages.1,
        sent / N - stages.2
    );
    eprintln!("l2xdpd status after the recovery: {recovered_status}");
    assert_eq!(sent % N, 0, "whole rounds");

    // 3. Not one data packet lost, over the whole run: exact counts at the receivers and in
    // the per-session XDP counters, no drop since bring-up.
    let per_total = PER_SESSION + sent / N;
    core_rx.wait(N * per_total, "upstream, overall");
    lac_rx.wait(N * per_total, "downstream, overall");
    let up_got = core_rx.counts();
    let down_got = lac_rx.counts();
    flows.assert_delivered(per_total, &up_got, &down_got, &lab.fast);
    assert_eq!(up_got.len(), N, "nothing from any other source at the core");
    let drops = lab.fp.drop_counters();
    assert_eq!(drops, lab.bringup_drops, "nothing dropped since bring-up");
    let v = lab.fast.verdict_counters().expect("verdicts");
    let total = (N * per_total) as u64;
    assert_eq!(v[verdict::DECAP as usize], total, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], total, "{v:?}");
    if let Some(a) = &lab.fp.afxdp {
        // Every one of them through the workers, none lost between them and the wire.
        let w = a.counters();
        assert_eq!(w[xsk_stat::DECAP as usize], total, "{w:?}");
        assert_eq!(w[xsk_stat::ENCAP as usize], total, "{w:?}");
        assert_eq!(w[xsk_stat::NO_EGRESS as usize], 0, "{w:?}");
        assert_eq!(w[xsk_stat::TX_FULL as usize], 0, "{w:?}");
        assert_eq!(w[xsk_stat::OTHER as usize], 0, "{w:?}");
    }
    drop(core_rx);
    drop(lac_rx);

    // Every session still installed, bound to the same subscriber address.
    lab.assert_still_installed();
    assert_eq!(
        bound(&XdpDataPlane::open(&lab.pins).expect("reopen pins")),
        bound_before
    );
    // The LAC's sessions: the same, with the same IDs both sides.
    assert_eq!(lac_sessions(&lab.rt, &lab.lac_node), lac_before);

    // The new l2xdpd reports every tunnel and session as the first one did: restored with
    // their IDs, PPP up (restored, not renegotiated), installed.
    let d = &recovered_status["data"];
    assert_eq!(d["sessions"], N, "{recovered_status}");
    assert_eq!(d["ppp_up"], ppp_sessions(version, N), "{recovered_status}");
    assert_eq!(d["installed"], N, "{recovered_status}");
    assert_eq!(d["node"]["restored"], N, "{recovered_status}");
    assert_eq!(d["node"]["restored_kept"], N, "{recovered_status}");
    assert_eq!(d["node"]["stale_removed"], 0, "{recovered_status}");
    assert_eq!(d["node"]["store_errors"], 0, "{recovered_status}");
    assert_eq!(d["node"]["dataplane_errors"], 0, "{recovered_status}");
    // Exactly the tunnels of before: the recovery tunnels, done and closing, are not listed.
    let tunnels_after = ask(&lab.sock, r#"{"cmd":"tunnels"}"#)["data"].clone();
    assert_eq!(tunnels_after, tunnels_before, "tunnels after the recovery");
    assert_eq!(d["tunnels"], TUNNELS, "{recovered_status}");
    let sessions_after = ask(&lab.sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    assert_eq!(
        sessions_after, sessions_before,
        "sessions after the recovery"
    );

    // The subscribers' keepalives are answered by the new l2xdpd's restored links.
    if version == Version::V2 {
        assert_echoes_answered(&lab);
    }

    // 4. A new session through the new l2xdpd (with an address nobody has, or on a circuit
    // of its own) carries traffic.
    let t = lab.tunnels[0];
    let up = lab.rt.block_on(async {
        match version {
            Version::V2 => lab.lac_node.open_user_session(t, N).await,
            Version::V3 => lab.lac_node.open_pseudowire(t, N).await,
        }
        wait_for(
            LIMIT,
            &mut lab.lac_node.events,
            1,
            "the new session up",
            |e| match version {
                Version::V2 => matches!(e, NodeEvent::PppUp { .. }),
                Version::V3 => matches!(e, NodeEvent::SessionUp { .. }),
            },
            is_down,
        )
        .await
    });
    let new = lac_sub(&lab.rt, &lab.lac_node, &up[0], &lab.circuits).expect("an up event");
    assert!(
        lab.subs.values().all(|s| s.addr != new.addr),
        "{} is taken",
        new.addr
    );
    let ppp = ppp_sessions(version, N + 1);
    let status = status_when(&lab.sock, |d| d["installed"] == N + 1 && d["ppp_up"] == ppp);
    assert_eq!(status["data"]["sessions"], N + 1, "{status}");
    assert_eq!(status["data"]["ppp_up"], ppp, "{status}");
    assert_eq!(status["data"]["installed"], N + 1, "{status}");
    let one = BTreeMap::from([(new.view.our_ids, new.clone())]);
    let end = Instant::now() + LIMIT;
    while !bound(&lab.fast).contains_key(&new.lns_key) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_bound(&lab.fast, &one, &lab.circuits);
    lab.fp.settle();
    let (core_rx, lac_rx) = lab.counters(&one);
    let mut new_flows = Flows::new(&one);
    new_flows.send_rounds(
        PER_SESSION,
        &mut Paced::new(&lab.lac_sock, &core_rx),
        &mut Paced::new(&lab.core_sock, &lac_rx),
    );
    core_rx.wait(PER_SESSION, "upstream, the new session");
    lac_rx.wait(PER_SESSION, "downstream, the new session");
    new_flows.assert_delivered(PER_SESSION, &core_rx.counts(), &lac_rx.counts(), &lab.fast);
    // Its first LCP Configure-Request may have overtaken its install (see bring-up).
    let drops = lab.fp.drop_counters();
    let unknown = DropReason::UnknownSession as usize;
    assert!(
        drops[unknown] <= lab.bringup_drops[unknown] + 1,
        "{drops:?}"
    );
    let mut others = drops;
    others[unknown] = lab.bringup_drops[unknown];
    assert_eq!(others, lab.bringup_drops, "no other drop: {drops:?}");

    // Nothing went down at the LAC, and it saw no tunnel come up: the recovery tunnels are
    // not tunnels of its own.
    while let Ok(e) = lab.lac_node.events.try_recv() {
        assert!(
            !matches!(
                e,
                NodeEvent::TunnelDown { .. }
                    | NodeEvent::SessionDown { .. }
                    | NodeEvent::AuthFailed { .. }
                    | NodeEvent::RecoveryFailed { .. }
                    | NodeEvent::TunnelUp { .. }
            ),
            "LAC: {e:?}"
        );
    }
    eprintln!(
        "after: {} packets per direction in all ({N} sessions × {per_total}), all arrived; \
         a new session carried {PER_SESSION} each way",
        N * per_total
    );

    // 5. Every control message on the access link since bring-up, the failover ones among
    // them (a recovery SCCRQ with its Tunnel Recovery AVP and an FSQ/FSR per tunnel),
    // decodes cleanly in tshark.
    check_failover_capture(capture);
    drop(core_rx);
    drop(lac_rx);
    drop(lab);
}

/// RFC 4951 §5.2: the Tunnel Recovery AVP.
const AVP_TUNNEL_RECOVERY: u16 = 77;

/// The subscribers' LCP keepalives get answers (waited for, bounded): every LAC session's
/// link counts more Echo-Replies than it had.
fn assert_echoes_answered(lab: &Lab) {
    let echoes = lac_echo_replies(&lab.rt, &lab.lac_node);
    let end = Instant::now() + LIMIT;
    loop {
        let now = lac_echo_replies(&lab.rt, &lab.lac_node);
        assert_eq!(now.len(), N, "LAC sessions all still there");
        if now
            .iter()
            .zip(&echoes)
            .all(|((s, r), (s0, r0))| s == s0 && r > r0)
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "echoes not answered after the restart: {now:?} vs {echoes:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// The roles swapped: the LAC fails, l2xdpd is the RFC 4951 remote endpoint.

/// The LAC process's configuration, in `<scratch>/lac` (`l2xdp_lab::cp::l2xdpd::
/// write_config`: listening on the LAC's address, the in-memory data plane — no fast path of
/// its own —, its own control socket, state directory and users file `user0..user<N>`):
/// l2xdpd in the initiator role (`[initiator]`: `TUNNELS` tunnels of `SESSIONS` sessions of
/// `version` to l2xdpd, PPP as `user<n>`, or pseudowires `pw<n>` with 8-byte cookies), RFC 4951
/// failover (C and D); its PPP clients send an Echo-Request every [`ECHO_INTERVAL`].
fn write_lac_config(s: &Scratch, version: Version) -> Files {
    let dir = s.dir.join("lac");
    std::fs::create_dir_all(&dir).expect("LAC directory");
    let v = match version {
        Version::V2 => 2,
        Version::V3 => 3,
    };
    let base = format!(
        r#"[l2tp]
host_name = "lac"
resume = false

[l2tp.failover]
control = true
data = true
recovery_time_ms = {RECOVERY_TIME_MS}

[l2tp.pseudowire]
cookie_len = 8

[ppp]
auth = ["chap"]
echo_interval = {echo}
echo_failures = {ECHO_FAILURES}

[initiator]
peer = "{LNS_IP}:{L2TP_PORT}"
version = {v}
tunnels = {TUNNELS}
sessions = {SESSIONS}
"#,
        echo = ECHO_INTERVAL.as_secs_f64(),
    );
    l2xdpd::write_config(
        &dir,
        Path::new("lac.toml"),
        &base,
        Placement::memory(SocketAddr::new(IpAddr::V4(LAC_IP), L2TP_PORT)),
        N + 1,
    )
    .expect("LAC configuration")
}

/// The LAC's view of every session in l2xdpd's pinned maps (the mirror of l2xdpd's entry:
/// IDs and cookies swapped), as [`lac_sub`] would give it; the LAC process is not asked.
fn subs_from_fast_path(fast: &XdpDataPlane, circuits: &[Circuit]) -> BTreeMap<SessionKey, Sub> {
    fast.sessions()
        .expect("sessions")
        .into_iter()
        .map(|e| {
            let l = &e.session;
            let sub = match e.binding {
                Binding::Subscriber { ipv4: Some(a), .. } => {
                    Sub::new(l.peer_ids, l.our_ids, l.sequencing, a)
                }
                Binding::AttachmentCircuit { ifindex } => {
                    let i = circuits
                        .iter()
                        .position(|c| c.lns_ifindex == ifindex)
                        .expect("a circuit of the lab");
                    Sub::pseudowire(
                        l.peer_ids,
                        l.our_ids,
                        l.cookie_tx,
                        l.cookie_rx,
                        l.l2ss,
                        l.sequencing,
                        Ipv4Addr::new(100, 65, 0, u8::try_from(i + 1).expect("few circuits")),
                        circuits[i].core.ifindex,
                    )
                }
                ref b => panic!("{:?} not bound yet: {b:?}", e.key()),
            };
            (sub.view.our_ids, sub)
        })
        .collect()
}

#[test]
fn lac_kill_9_and_restart_recovers_sessions_with_l2xdpd_as_remote_endpoint() {
    lac_restart_recovers(
        "lac_kill_9_and_restart_recovers_sessions_with_l2xdpd_as_remote_endpoint",
        "k9l",
        Version::V2,
    );
}

#[test]
fn lac_kill_9_and_restart_recovers_pseudowires_with_l2xdpd_as_remote_endpoint() {
    lac_restart_recovers(
        "lac_kill_9_and_restart_recovers_pseudowires_with_l2xdpd_as_remote_endpoint",
        "k9l3",
        Version::V3,
    );
}

/// The roles swapped. Both ends are `l2xdpd` processes with RFC 4951 failover (C and D): the
/// LNS in `lns` over the pinned fast path as in the other tests, the LAC in `lac` in the
/// initiator role (`[initiator]`, no fast path of its own, its state in its own `state_dir`).
/// With traffic flowing both ways through XDP (the test's packet sockets send and count, with
/// the LAC's view of each session mirrored from l2xdpd's pinned entries), the *LAC* is
/// SIGKILLed, traffic goes on, and a new LAC process with the same configuration takes its
/// tunnels back as the recovery endpoint (a recovery tunnel per tunnel, the control channel
/// reset, FSQ/FSR) — restoring its PPP client links from their saved state, not opening new
/// tunnels — while l2xdpd holds the tunnels for the Recovery Time as the remote endpoint.
/// Asserted: every data packet arrived (receivers and per-session XDP counters), nothing
/// dropped; l2xdpd's tunnels and sessions are exactly what they were (recovery tunnels that
/// are done are not listed), nothing removed from its fast path; the new LAC reports the same sessions (IDs, user, PPP
/// phase, address) restored; a new session opened through the new LAC's control socket comes
/// up and carries traffic; every control message on the access link decodes cleanly in tshark.
fn lac_restart_recovers(name: &str, tag: &str, version: Version) {
    if !require_root(name) {
        return;
    }
    // 1. The lab, l2xdpd (the LNS, remote endpoint) and the LAC process; the LAC opens its
    // tunnels and sessions at start-up.
    let topo = Topology::new(tag);
    let scratch = Scratch::new(tag);
    let pins = scratch.pins.clone();
    let (_fp, circuits) = start_fast_path(&topo, &pins, Mode::Xdp, version);
    let fast = XdpDataPlane::open(&pins).expect("open pins");
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_sock, core_rx_sock) = match version {
        Version::V2 => (ip_socket(&core_port), ip_socket(&core_port)),
        Version::V3 => (all_ports_socket(&topo.core), all_ports_socket(&topo.core)),
    };
    let lac_sock = ip_socket(&lac_port);
    let lns_files = write_config(&scratch, true, version);
    let lns_sock = lns_files.control_socket.clone();
    let _lns = start_daemon(&topo.lns, &lns_files);
    let capture = tshark::Dumpcap::start(
        &topo.lac.name,
        LAC0,
        &format!("udp port {L2TP_PORT} and udp[8] & 0x80 != 0"),
        &scratch.dir.join("control.pcap"),
    );
    let lac_files = write_lac_config(&scratch, version);
    let lac_ctl = lac_files.control_socket.clone();
    let mut lac = start_daemon(&topo.lac, &lac_files);
    let ppp = ppp_sessions(version, N);
    let status = status_when(&lns_sock, |d| {
        d["installed"] == N && d["ppp_up"] == ppp && d["tunnels"] == TUNNELS
    });
    eprintln!("l2xdpd status after bring-up: {status}");
    assert_eq!(status["data"]["sessions"], N, "{status}");
    assert_eq!(status["data"]["installed"], N, "{status}");
    assert_eq!(status["data"]["ppp_up"], ppp, "{status}");
    let lac_status = status_when(&lac_ctl, |d| d["sessions"] == N && d["ppp_up"] == ppp);
    assert_eq!(lac_status["data"]["sessions"], N, "{lac_status}");
    assert_eq!(lac_status["data"]["ppp_up"], ppp, "{lac_status}");
    let end = Instant::now() + LIMIT;
    while bound(&fast).len() < N && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let subs = subs_from_fast_path(&fast, &circuits);
    assert_eq!(subs.len(), N);
    assert_bound(&fast, &subs, &circuits);
    let bringup_drops = fast.drop_counters().expect("drops");
    let unknown = bringup_drops[DropReason::UnknownSession as usize];
    assert!(unknown <= N as u64, "unknown_session drops: {unknown}");
    assert_eq!(
        bringup_drops.iter().sum::<u64>(),
        unknown,
        "{bringup_drops:?}"
    );

    let counters = |subs: &BTreeMap<SessionKey, Sub>, core: PacketSocket| {
        let core_rx = match version {
            Version::V2 => Counter::start(core, classify_upstream),
            Version::V3 => Counter::start(core, classify_upstream_pw),
        };
        let subs_rx = subs.clone();
        let lac_rx = Counter::start(ip_socket(&lac_port), move |f| {
            classify_downstream(&subs_rx, f)
        });
        (core_rx, lac_rx)
    };
    let (core_rx, lac_rx) = counters(&subs, core_rx_sock);
    let mut flows = Flows::new(&subs);
    flows.send_rounds(
        PER_SESSION,
        &mut Paced::new(&lac_sock, &core_rx),
        &mut Paced::new(&core_sock, &lac_rx),
    );
    core_rx.wait(N * PER_SESSION, "upstream, both alive");
    lac_rx.wait(N * PER_SESSION, "downstream, both alive");

    let lns_tunnels_before = ask(&lns_sock, r#"{"cmd":"tunnels"}"#)["data"].clone();
    let lns_sessions_before = ask(&lns_sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    let lac_tunnels_before = ask(&lac_ctl, r#"{"cmd":"tunnels"}"#)["data"].clone();
    let lac_sessions_before = ask(&lac_ctl, r#"{"cmd":"sessions"}"#)["data"].clone();
    assert_eq!(lns_tunnels_before.as_array().map(Vec::len), Some(TUNNELS));
    assert_eq!(lac_sessions_before.as_array().map(Vec::len), Some(N));
    let lns_node_before = status["data"]["node"].clone();

    // 2. kill -9 of the LAC while traffic flows; traffic goes on; a new LAC process (same
    // configuration, state, address) recovers its tunnels; traffic goes on after.
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    let mut recovery = Duration::ZERO;
    let mut lac_recovered = Value::Null;
    let flows_ref = &mut flows;
    let sent = std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            let mut up = Paced::new(&lac_sock, &core_rx);
            let mut down = Paced::new(&core_sock, &lac_rx);
            while !stop.load(Ordering::Acquire) {
                for k in 0..flows_ref.order.len() {
                    flows_ref.send(k, &mut up, &mut down);
                }
                rounds.fetch_add(1, Ordering::Release);
            }
            assert_eq!(up.sent, down.sent);
            up.sent
        });
        let wait_rounds = |n: usize, what: &str| {
            let end = Instant::now() + LIMIT;
            while rounds.load(Ordering::Acquire) < n {
                assert!(Instant::now() < end, "{what}: the sender is stuck");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_rounds(ROUNDS_STAGE, "before the kill");
        lac.kill_9();
        let at_kill = rounds.load(Ordering::Acquire);
        assert!(
            UnixStream::connect(&lac_ctl).is_err(),
            "the LAC's control socket still answers"
        );
        wait_rounds(at_kill + ROUNDS_STAGE, "with no LAC");
        let t0 = Instant::now();
        lac = start_daemon(&topo.lac, &lac_files);
        lac_recovered = status_when(&lac_ctl, |d| {
            d["l2tp"]["failover"]["tunnel recovered"] == TUNNELS
        });
        recovery = t0.elapsed();
        let at_recovered = rounds.load(Ordering::Acquire);
        wait_rounds(at_recovered + ROUNDS_STAGE, "after the recovery");
        stop.store(true, Ordering::Release);
        sender.join().expect("sender")
    });
    eprintln!(
        "LAC restart: all {TUNNELS} tunnels recovered {recovery:?} after the new LAC process \
         was started; {} rounds of {N} packets each way",
        sent / N
    );
    eprintln!("LAC status after the recovery: {lac_recovered}");

    // 3. Not one data packet lost, no drop.
    let per_total = PER_SESSION + sent / N;
    core_rx.wait(N * per_total, "upstream, overall");
    lac_rx.wait(N * per_total, "downstream, overall");
    flows.assert_delivered(per_total, &core_rx.counts(), &lac_rx.counts(), &fast);
    assert_eq!(
        fast.drop_counters().expect("drops"),
        bringup_drops,
        "nothing dropped"
    );
    let v = fast.verdict_counters().expect("verdicts");
    assert_eq!(v[verdict::DECAP as usize], (N * per_total) as u64, "{v:?}");
    assert_eq!(v[verdict::ENCAP as usize], (N * per_total) as u64, "{v:?}");
    drop(core_rx);
    drop(lac_rx);

    // l2xdpd, the remote endpoint: its tunnels and sessions as
    // they were, nothing removed from or added to its fast path.
    // Exactly the tunnels of before (the recovery tunnels, done and closing, not listed).
    let lns_tunnels_after = ask(&lns_sock, r#"{"cmd":"tunnels"}"#)["data"].clone();
    assert_eq!(lns_tunnels_after, lns_tunnels_before, "l2xdpd's tunnels");
    let lns_sessions_after = ask(&lns_sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    assert_eq!(lns_sessions_after, lns_sessions_before, "l2xdpd's sessions");
    let lns_status = ask(&lns_sock, r#"{"cmd":"status"}"#);
    eprintln!("l2xdpd status after the LAC's recovery: {lns_status}");
    let node = &lns_status["data"]["node"];
    for c in ["installs", "removals", "dataplane_errors"] {
        assert_eq!(node[c], lns_node_before[c], "l2xdpd {c}: {lns_status}");
    }
    assert_bound(&fast, &subs, &circuits);

    // The new LAC: its tunnels and sessions restored with their IDs, PPP client links up
    // from their saved state.
    let d = &lac_recovered["data"];
    assert_eq!(d["sessions"], N, "{lac_recovered}");
    assert_eq!(d["ppp_up"], ppp, "{lac_recovered}");
    assert_eq!(d["node"]["restored"], N, "{lac_recovered}");
    assert_eq!(d["node"]["store_errors"], 0, "{lac_recovered}");
    // What reached the LAC's socket besides control: PPP frames (v2) or pseudowire frames
    // (v3, for the fast path it does not have), nothing unreadable.
    assert_eq!(d["node"]["data_malformed"], 0, "{lac_recovered}");
    let lac_tunnels_after = ask(&lac_ctl, r#"{"cmd":"tunnels"}"#)["data"].clone();
    assert_eq!(lac_tunnels_after, lac_tunnels_before, "the LAC's tunnels");
    let lac_sessions_after = ask(&lac_ctl, r#"{"cmd":"sessions"}"#)["data"].clone();
    assert_eq!(
        lac_sessions_after, lac_sessions_before,
        "the LAC's sessions"
    );

    // 4. A new session through the new LAC comes up at both ends and carries traffic.
    let t = &lac_tunnels_before[0]["tunnel"];
    let r = ask(
        &lac_ctl,
        &format!(r#"{{"cmd":"open_session","tunnel":{t},"n":{N}}}"#),
    );
    assert_eq!(r["ok"], true, "{r}");
    let ppp = ppp_sessions(version, N + 1);
    let status = status_when(&lns_sock, |d| d["installed"] == N + 1 && d["ppp_up"] == ppp);
    assert_eq!(status["data"]["installed"], N + 1, "{status}");
    let lac_status = status_when(&lac_ctl, |d| d["sessions"] == N + 1 && d["ppp_up"] == ppp);
    assert_eq!(lac_status["data"]["ppp_up"], ppp, "{lac_status}");
    let end = Instant::now() + LIMIT;
    while bound(&fast).len() < N + 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let one: BTreeMap<SessionKey, Sub> = subs_from_fast_path(&fast, &circuits)
        .into_iter()
        .filter(|(k, _)| !subs.contains_key(k))
        .collect();
    assert_eq!(one.len(), 1, "one new session");
    let core_rx_sock = match version {
        Version::V2 => ip_socket(&core_port),
        Version::V3 => all_ports_socket(&topo.core),
    };
    let (core_rx, lac_rx) = counters(&one, core_rx_sock);
    let mut new_flows = Flows::new(&one);
    new_flows.send_rounds(
        PER_SESSION,
        &mut Paced::new(&lac_sock, &core_rx),
        &mut Paced::new(&core_sock, &lac_rx),
    );
    core_rx.wait(PER_SESSION, "upstream, the new session");
    lac_rx.wait(PER_SESSION, "downstream, the new session");
    new_flows.assert_delivered(PER_SESSION, &core_rx.counts(), &lac_rx.counts(), &fast);
    drop(core_rx);
    drop(lac_rx);

    // The restored PPP client links are alive: with the test's traffic stopped, each sends
    // its LCP Echo-Requests (every ECHO_INTERVAL) and what comes back to the LAC is l2xdpd's
    // Echo-Replies; both ends keep every session up.
    if version == Version::V2 {
        let frames = |d: &Value| {
            (
                d["node"]["ppp_frames_out"].as_u64().unwrap_or(0),
                d["node"]["ppp_frames_in"].as_u64().unwrap_or(0),
            )
        };
        let (out0, in0) = frames(&status_when(&lac_ctl, |_| true)["data"]);
        let n = (N + 1) as u64;
        let lac_status = status_when(&lac_ctl, |d| {
            let (o, i) = frames(d);
            o >= out0 + n && i >= in0 + n
        });
        let (o, i) = frames(&lac_status["data"]);
        assert!(o >= out0 + n && i >= in0 + n, "echoes: {lac_status}");
        assert_eq!(lac_status["data"]["ppp_up"], N + 1, "{lac_status}");
        let status = status_when(&lns_sock, |_| true);
        assert_eq!(status["data"]["ppp_up"], N + 1, "{status}");
    }

    // 5. Every control message on the access link decodes cleanly in tshark, the LAC's
    // recovery SCCRQ, FSQ and l2xdpd's FSR of every tunnel among them.
    check_failover_capture(capture);
    drop(lac);
}

/// Stops the capture of the access link's control messages and checks them in tshark: every
/// one decodes cleanly, and the failover exchange of every tunnel is among them (a recovery
/// SCCRQ with its Tunnel Recovery AVP, an FSQ and an FSR).
fn check_failover_capture(capture: Option<tshark::Dumpcap>) {
    if let Some(capture) = capture {
        let path = capture.stop();
        if let Some(rows) = tshark::assert_clean(&path, &[], &[]) {
            let count = |f: &dyn Fn(&tshark::Row) -> bool| rows.iter().filter(|r| f(r)).count();
            let recovery_sccrq = count(&|r| {
                r.message_type == "1" && r.avp_type_list().contains(&AVP_TUNNEL_RECOVERY)
            });
            let fsq = count(&|r| r.message_type == "21");
            let fsr = count(&|r| r.message_type == "22");
            eprintln!(
                "capture: {} control messages, {recovery_sccrq} recovery SCCRQ, {fsq} FSQ, \
                 {fsr} FSR, all clean in tshark",
                rows.len()
            );
            // At least: a retransmission (a loaded machine) would be captured too.
            assert!(
                recovery_sccrq >= TUNNELS,
                "recovery SCCRQs: {recovery_sccrq}"
            );
            let mut types = BTreeMap::<&str, usize>::new();
            for r in &rows {
                *types.entry(r.message_type.as_str()).or_default() += 1;
            }
            assert!(
                fsq >= TUNNELS && fsr >= TUNNELS,
                "FSQ {fsq}, FSR {fsr}; message types captured: {types:?}"
            );
        }
    }
}
