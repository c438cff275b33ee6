//! `kill -9` of the control-plane process while traffic flows drops no data packet.
//!
//! The topology of `tests/tests/xdp_e2e.rs`: three network namespaces `lac` — `lns` — `core`
//! joined by veth pairs, the XDP programs attached on the lns side (`xdp_l2tp_access` on the
//! access veth `la`, `xdp_l2tp_core` on the core veth `lc`), `xdp_pass` on the peers so that
//! redirected frames are delivered. Needs root; skips loudly otherwise.
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
//! `kill_9_and_restart_recovers_every_session_without_loss` is RFC 4951 failover of the real
//! process: both ends have a Failover Capability (C and D, Recovery Time 10 s), l2xdpd keeps
//! its state in `[daemon] state_dir`, and the subscribers send LCP Echo-Requests every
//! 500 ms. A sender sends whole rounds (one packet per session each way) throughout; l2xdpd is
//! SIGKILLed, traffic goes on with no control plane, a new l2xdpd is started with the same
//! configuration (state, pins, address) and recovers at start-up (a recovery tunnel per
//! tunnel, the control channel reset, FSQ/FSR), traffic goes on after. Asserted: every data
//! packet arrived (receivers and per-session XDP counters), nothing dropped since bring-up;
//! the LAC saw no tunnel or session go down (nor a recovery tunnel come up) and its sessions
//! keep their IDs; every session is still installed, bound to the same address; the new
//! l2xdpd's control socket reports the same tunnels (the recovery tunnels, closing, aside) and
//! the same sessions (user, PPP phase, address, installed) as the first one, with every
//! session restored with its fast-path entry kept; the subscribers' echoes are answered
//! again; and a new session set up afterwards through the new l2xdpd carries traffic. The
//! time from the new l2xdpd's start to all tunnels recovered is printed, not asserted.
//!
//! The topology, packet sockets, paced sending, counting receivers, frame builders and
//! classifiers are the lab's (`l2xdp_dataplane::lab`), shared with `tests/tests/xdp_e2e.rs`.
//!
//! Time limits only bound a hung run; nothing asserts how fast anything went.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::{FailoverConfig, L2tpConfig, Peer, TunnelId};
use l2xdp_controlplane::lab::l2xdpd::{self, ask, Files, L2xdpd, Placement};
use l2xdp_controlplane::lab::{is_down, subscriber, wait_for, NodeThread};
use l2xdp_controlplane::node::{NodeConfig, NodeEvent, SessionRef};
use l2xdp_controlplane::ppp::{AuthMethod, MemoryCredentials, PppConfig};
use l2xdp_dataplane::lab::packet::PacketSocket;
use l2xdp_dataplane::lab::scratch::Scratch;
use l2xdp_dataplane::lab::topology::{
    FastPath, Mode, PeerPort, Topology, CORE0, L2TP_PORT, LAC0, LAC_IP, LNS_IP,
};
use l2xdp_dataplane::lab::traffic::{
    self, assert_bound, bound, classify_downstream, classify_upstream, ip_socket, Counter, Flows,
    Paced, Sub,
};
use l2xdp_dataplane::lab::{is_root, Netns};
use l2xdp_dataplane::{DataPlane, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
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
/// Unanswered Echo-Requests before a subscriber's link goes down (the outage of the restart
/// test must stay shorter than `ECHO_INTERVAL × ECHO_FAILURES`: 5 s).
const ECHO_FAILURES: u32 = 10;

// ---------------------------------------------------------------------------------------------
// l2xdpd.

/// l2xdpd's configuration (and users file) in the scratch directory
/// (`l2xdp_controlplane::lab::l2xdpd::write_config` sets listen address, control socket,
/// state dir, pins and users file). With `failover`, RFC 4951 failover (C and D). One user
/// more than sessions: the restart test opens one afterwards.
fn write_config(s: &Scratch, failover: bool) -> Files {
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
{failover}
[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
"#
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
        Path::new(env!("CARGO_BIN_EXE_l2xdpd")),
        files,
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// The LAC: a node on its own thread, in its namespace, on a current-thread runtime
// (`l2xdp_controlplane::lab::NodeThread`).

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
    NodeConfig {
        l2tp: L2tpConfig {
            host_name: "lac".into(),
            failover: failover.then_some(FailoverConfig {
                control: true,
                data: true,
                recovery_time_ms: RECOVERY_TIME_MS,
            }),
            ..L2tpConfig::default()
        },
        ppp: Arc::new(ppp),
        credentials: Arc::new(MemoryCredentials::new()),
        pool: None,
        attachment_circuits: HashMap::new(),
        seed: 12,
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
    /// The fast path (AF_XDP mode: the workers, in this process).
    fp: FastPath,
    _scratch: Scratch,
    topo: Topology,
}

impl Lab {
    /// Step 1 of both tests: the topology, the fast path pinned in the test's own bpffs,
    /// l2xdpd (with RFC 4951 failover when `failover`) and the LAC; `TUNNELS × SESSIONS`
    /// sessions with PPP through IPCP, reported up and installed by l2xdpd and bound to
    /// their IPCP addresses in the pinned maps.
    fn up(tag: &str, failover: bool, mode: Mode) -> Lab {
        let tag = &format!("{tag}-{mode:?}");
        let topo = Topology::new(tag);
        let scratch = Scratch::new(tag);
        let pins = scratch.pins.clone();
        let fp = topo.start_fast_path(&pins, mode);
        let fast = XdpDataPlane::open(&pins).expect("open pins");
        let core_port = PeerPort::new(&topo.core, CORE0);
        let lac_port = PeerPort::new(&topo.lac, LAC0);
        let (core_sock, lac_sock) = (ip_socket(&core_port), ip_socket(&lac_port));

        // The LNS: the l2xdpd process in `lns`, over the pinned maps.
        let files = write_config(&scratch, failover);
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

        // Tunnels, sessions, PPP through IPCP.
        let peer = Peer::udp(SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT));
        let (tunnels, lac_up) =
            rt.block_on(lac_node.bring_up(peer, Version::V2, TUNNELS, SESSIONS));

        // l2xdpd reports them all up and installed (bounded wait: its PPP may finish a moment
        // after the LAC's).
        let status = status_when(&sock, |d| d["installed"] == N && d["ppp_up"] == N);
        eprintln!("l2xdpd status after bring-up: {status}");
        assert_eq!(status["data"]["tunnels"], TUNNELS, "{status}");
        assert_eq!(status["data"]["sessions"], N, "{status}");
        assert_eq!(status["data"]["ppp_up"], N, "{status}");
        assert_eq!(status["data"]["installed"], N, "{status}");

        // The LAC's view of every session: its IDs (ours and the LNS's) and the subscriber
        // address.
        let mut subs: BTreeMap<SessionKey, Sub> = BTreeMap::new();
        for e in &lac_up {
            let s = lac_sub(&rt, &lac_node, e).expect("a PPP up event");
            subs.insert(s.view.our_ids, s);
        }
        assert_eq!(subs.len(), N, "one LAC session per PPP up");

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
        assert_bound(&fast, &subs);
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
            fp,
            _scratch: scratch,
            topo,
        }
    }

    /// Counting receivers for `subs`' traffic: at the core host (upstream) and at the LAC
    /// (downstream), each on a packet socket of its own.
    fn counters(&self, subs: &BTreeMap<SessionKey, Sub>) -> (Counter, Counter) {
        let core_rx = Counter::start(ip_socket(&self.core_port), classify_upstream);
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

/// The LAC's view of the session of a `PppUp` event (`None` for other events).
fn lac_sub(rt: &tokio::runtime::Runtime, lac: &NodeThread, e: &NodeEvent) -> Option<Sub> {
    rt.block_on(subscriber(&lac.handle, e))
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
    if !is_root() {
        eprintln!(
            "*** SKIPPED kill_9_of_l2xdpd_drops_no_data_packet: needs root (network \
             namespaces, XDP, bpffs, ip netns exec). Run the tests as root. ***"
        );
        return;
    }
    // 1. Tunnels, sessions, PPP through IPCP.
    let mut lab = Lab::up("k9", false, mode);

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
    kill_9_and_restart_recovers_every_session_without_loss_in(Mode::Xdp);
}

#[test]
fn kill_9_and_restart_recovers_every_session_without_loss_afxdp() {
    kill_9_and_restart_recovers_every_session_without_loss_in(Mode::AfXdp);
}

fn kill_9_and_restart_recovers_every_session_without_loss_in(mode: Mode) {
    if !is_root() {
        eprintln!(
            "*** SKIPPED kill_9_and_restart_recovers_every_session_without_loss: needs root \
             (network namespaces, XDP, bpffs, ip netns exec). Run the tests as root. ***"
        );
        return;
    }
    // 1. Both ends with RFC 4951 failover (C and D); l2xdpd keeps its state in the scratch
    // directory. Tunnels, sessions, PPP through IPCP; traffic both ways, l2xdpd alive.
    let mut lab = Lab::up("k9r", true, mode);
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
    assert_eq!(d["ppp_up"], N, "{recovered_status}");
    assert_eq!(d["installed"], N, "{recovered_status}");
    assert_eq!(d["node"]["restored"], N, "{recovered_status}");
    assert_eq!(d["node"]["restored_kept"], N, "{recovered_status}");
    assert_eq!(d["node"]["stale_removed"], 0, "{recovered_status}");
    assert_eq!(d["node"]["store_errors"], 0, "{recovered_status}");
    assert_eq!(d["node"]["dataplane_errors"], 0, "{recovered_status}");
    let tunnels_after = ask(&lab.sock, r#"{"cmd":"tunnels"}"#)["data"].clone();
    let ids_before: Vec<&Value> = tunnels_before
        .as_array()
        .expect("tunnels")
        .iter()
        .map(|t| &t["tunnel"])
        .collect();
    let (old, recovery_tunnels): (Vec<Value>, Vec<Value>) = tunnels_after
        .as_array()
        .expect("tunnels")
        .iter()
        .cloned()
        .partition(|t| ids_before.contains(&&t["tunnel"]));
    assert_eq!(
        Value::Array(old),
        tunnels_before,
        "tunnels after the recovery"
    );
    assert!(
        recovery_tunnels.iter().all(|t| t["state"] != "Established"),
        "recovery tunnels left established: {recovery_tunnels:?}"
    );
    let sessions_after = ask(&lab.sock, r#"{"cmd":"sessions"}"#)["data"].clone();
    assert_eq!(
        sessions_after, sessions_before,
        "sessions after the recovery"
    );

    // The subscribers' keepalives are answered by the new l2xdpd's restored links.
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

    // 4. A new session through the new l2xdpd, with an address nobody has, carries traffic.
    let t = lab.tunnels[0];
    let up = lab.rt.block_on(async {
        lab.lac_node.open_user_session(t, N).await;
        wait_for(
            LIMIT,
            &mut lab.lac_node.events,
            1,
            "the new session's PPP",
            |e| matches!(e, NodeEvent::PppUp { .. }),
            is_down,
        )
        .await
    });
    let new = lac_sub(&lab.rt, &lab.lac_node, &up[0]).expect("a PPP up event");
    assert!(
        lab.subs.values().all(|s| s.addr != new.addr),
        "{} is taken",
        new.addr
    );
    let status = status_when(&lab.sock, |d| {
        d["installed"] == N + 1 && d["ppp_up"] == N + 1
    });
    assert_eq!(status["data"]["sessions"], N + 1, "{status}");
    assert_eq!(status["data"]["ppp_up"], N + 1, "{status}");
    assert_eq!(status["data"]["installed"], N + 1, "{status}");
    let one = BTreeMap::from([(new.view.our_ids, new.clone())]);
    let end = Instant::now() + LIMIT;
    while !bound(&lab.fast).contains_key(&new.lns_key) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_bound(&lab.fast, &one);
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
    drop(core_rx);
    drop(lac_rx);
    drop(lab);
}
