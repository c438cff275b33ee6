//! CPU spreading end to end on veth (lac — lns — core): the programs attached as
//! `l2xdp-dataplane attach --cpumap` does (cpumap entries for every online CPU with the second
//! pass `xdp_l2tp_access_cpu` as their program, `cpumap_cpus` in the config), many L2TPv2
//! sessions of one tunnel, data frames from the LAC, the decapsulated packets counted per
//! subscriber in the core namespace. Every frame arrives; each frame is redirected once (first
//! pass) and decapsulated once (second pass); each session runs on one CPU and the sessions
//! use more than one. Needs root and two online CPUs; skips loudly otherwise.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData, PerCpuHashMap};
use common::topo::{attach_pass, packet_socket, recv, send, Topology, Unpin, ETHERTYPE};
use common::*;
use l2xdp_dataplane::api::{Binding, SessionEntry};
use l2xdp_dataplane::session_map::map_key;
use l2xdp_dataplane::{loader, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::{self, name, verdict};
use l2xdp_ebpf::prog;
use l2xdp_wire::datapath::{emit_inner_ethernet, DecapConfig, SessionKey};
use l2xdp_wire::l2tp::header::Transport;

/// Sessions of the one tunnel.
const SESSIONS: u16 = 64;
/// Frames per session.
const PER_SESSION: u64 = 40;
/// Frames sent but not yet counted by the receiver, at most: the veth rings hold 256.
const WINDOW: u64 = 32;
/// The longest wait without progress before giving up (a bound, not an assertion).
const STALL: Duration = Duration::from_secs(5);

const TUNNEL: u16 = 1;
const PEER_TUNNEL: u16 = 2;

fn sub(i: u16) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, (i >> 8) as u8, i as u8)
}

fn entry(i: u16) -> SessionEntry {
    let s = session(
        SessionKey::V2 {
            tunnel_id: TUNNEL,
            session_id: i,
        },
        SessionKey::V2 {
            tunnel_id: PEER_TUNNEL,
            session_id: 1000 + i,
        },
        Transport::Udp,
        false,
    );
    SessionEntry {
        session: s,
        binding: Binding::Subscriber {
            ipv4: Some(sub(i)),
            ipv6: vec![],
        },
    }
}

/// Counts, per session index, the frames equal to that session's expected packet (by inner
/// source); anything else matching UDP 4000 → 5000 is counted as unexpected.
struct Receiver {
    per_session: Vec<AtomicU64>,
    total: AtomicU64,
    unexpected: AtomicU64,
    stop: AtomicBool,
}

impl Receiver {
    fn run(&self, fd: &OwnedFd, want: &HashMap<[u8; 4], (usize, Vec<u8>)>) {
        let mut buf = [0u8; 4096];
        while !self.stop.load(Ordering::Acquire) {
            let Some(n) = recv(fd, &mut buf) else {
                continue;
            };
            let f = &buf[..n];
            // Ethernet + IPv4 (20) + UDP 4000 → 5000.
            if f.len() < 42
                || f[12..14] != [0x08, 0x00]
                || f[23] != 17
                || f[34..38] != [0x0f, 0xa0, 0x13, 0x88]
            {
                continue;
            }
            let src: [u8; 4] = f[26..30].try_into().expect("4 bytes");
            match want.get(&src) {
                Some((i, w)) if w.as_slice() == f => {
                    self.per_session[*i].fetch_add(1, Ordering::Relaxed);
                    self.total.fetch_add(1, Ordering::Release);
                }
                _ => {
                    self.unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Waits until `done()`, as long as the receiver keeps counting; false after `STALL` without
/// progress.
fn wait_for(rx: &Receiver, done: impl Fn(u64) -> bool) -> bool {
    let mut last = rx.total.load(Ordering::Acquire);
    let mut since = Instant::now();
    loop {
        let now = rx.total.load(Ordering::Acquire);
        if done(now) {
            return true;
        }
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() > STALL {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn cpumap_spreads_sessions_of_one_tunnel() {
    if skip_unless_root("cpumap_spreads_sessions_of_one_tunnel") {
        return;
    }
    // As `l2xdp-dataplane attach --cpumap`: the online CPUs from 0.
    let cpus = loader::cpumap_cpus().expect("online CPUs");
    if cpus < 2 {
        eprintln!(
            "SKIPPED cpumap_spreads_sessions_of_one_tunnel: {cpus} CPU(s) to spread over \
             (/sys/devices/system/cpu/online), needs 2"
        );
        return;
    }
    let Topology { lac, lns, core } = Topology::new();
    // v2: the inner packets are routed to the core through lc.
    lns.ip(&["addr", "add", "198.51.100.1/24", "dev", "lc"]);
    lns.ip(&[
        "neigh",
        "replace",
        CORE4,
        "lladdr",
        &CORE_MAC.to_string(),
        "nud",
        "permanent",
        "dev",
        "lc",
    ]);
    let unpin = Unpin::new("cpumap");
    let pin_dir = unpin.0.clone();

    let entries: Vec<SessionEntry> = (1..=SESSIONS).map(entry).collect();
    let _lns_obj = {
        let _g = lns.enter();
        // As `l2xdp-dataplane attach --cpumap`.
        let mut ebpf = loader::load(Some(&pin_dir)).expect("load with pins");
        loader::setup_cpumap(&mut ebpf, cpus, 2048).expect("cpumap entries");
        loader::attach_pinned(&mut ebpf, prog::ACCESS, "la", &pin_dir).expect("attach access");
        loader::attach_pinned(&mut ebpf, prog::CORE, "lc", &pin_dir).expect("attach core");
        let mut dp = XdpDataPlane::open(&pin_dir).expect("open pins");
        dp.set_config(&FastPathConfig {
            decap: DecapConfig::default(),
            mtu: 1500,
            cpumap_cpus: cpus,
        })
        .expect("config");
        for e in &entries {
            dp.install(e).expect("install");
        }
        ebpf
    };
    let (core_sock, _core_pass) = {
        let _g = core.enter();
        let e = attach_pass("core0");
        let fd = packet_socket(loader::ifindex("core0").expect("core0"), 0x0800);
        let big: libc::c_int = 8 << 20;
        // SAFETY: a valid fd and option value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&big as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        (fd, e)
    };
    let lac_sock = {
        let _g = lac.enter();
        packet_socket(loader::ifindex("lac0").expect("lac0"), ETHERTYPE)
    };

    // Per session: the frame the LAC sends, and the frame the core must see (the reference's
    // emit_inner_ethernet: lc's MAC to the core's, TTL − 1).
    let mut frames = Vec::new();
    let mut want = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let inner = inner_ip(&sub(i as u16 + 1).to_string(), CORE4, 64);
        frames.push(from_peer(&mirror(&e.session), &inner, 0));
        let mut out = vec![0; 2048];
        let n = emit_inner_ethernet(&inner, CORE_MAC, C0_MAC, &mut out).expect("emit");
        out.truncate(n);
        want.insert(sub(i as u16 + 1).octets(), (i, out));
    }

    let rx = Arc::new(Receiver {
        per_session: (0..SESSIONS).map(|_| AtomicU64::new(0)).collect(),
        total: AtomicU64::new(0),
        unexpected: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let receiver = {
        let rx = Arc::clone(&rx);
        std::thread::spawn(move || rx.run(&core_sock, &want))
    };
    // Stops the receiver on every way out, panics included.
    struct Stop(Arc<Receiver>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop.store(true, Ordering::Release);
        }
    }
    let stop = Stop(Arc::clone(&rx));

    let total = u64::from(SESSIONS) * PER_SESSION;
    let mut sent = 0u64;
    let mut stalled = false;
    'send: for _ in 0..PER_SESSION {
        for f in &frames {
            if !wait_for(&rx, |got| sent.saturating_sub(got) < WINDOW) {
                stalled = true;
                break 'send;
            }
            send(&lac_sock, f);
            sent += 1;
        }
    }
    if !stalled {
        wait_for(&rx, |got| got >= sent);
    }
    drop(stop);
    receiver.join().expect("receiver thread");

    let got: Vec<u64> = rx
        .per_session
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let _g = lns.enter();
    let dp = XdpDataPlane::open(&pin_dir).expect("open pins");
    let verdicts = dp.verdict_counters().expect("verdicts");
    let drops = dp.drop_counters().expect("drops");
    assert_eq!(
        sent, total,
        "sending stalled: received {got:?}, verdicts {verdicts:?}, drops {drops:?}"
    );
    assert_eq!(
        got,
        vec![PER_SESSION; usize::from(SESSIONS)],
        "frames received per session (verdicts {verdicts:?}, drops {drops:?})"
    );
    assert_eq!(
        rx.unexpected.load(Ordering::Relaxed),
        0,
        "unexpected frames at the core"
    );
    assert_eq!(
        verdicts[verdict::CPU_REDIRECT as usize],
        total,
        "first pass: every frame to the cpumap ({verdicts:?})"
    );
    assert_eq!(
        verdicts[verdict::DECAP as usize],
        total,
        "second pass: every frame decapsulated ({verdicts:?})"
    );
    assert_eq!(drops.iter().sum::<u64>(), 0, "drops {drops:?}");

    // Per CPU: each session's frames all on one CPU, the sessions on more than one CPU.
    let map = MapData::from_pin(pin_dir.join(name::COUNTERS)).expect("counters pin");
    let counters: PerCpuHashMap<MapData, maps::SessionKey, maps::Counters> =
        Map::from_map_data(map)
            .expect("map")
            .try_into()
            .expect("per-CPU hash");
    let mut used = BTreeSet::new();
    for e in &entries {
        let per_cpu = counters
            .get(&map_key(&e.key()), 0)
            .expect("session counters");
        let on: Vec<(usize, u64)> = per_cpu
            .iter()
            .enumerate()
            .filter(|(_, c)| c.rx_packets > 0)
            .map(|(cpu, c)| (cpu, c.rx_packets))
            .collect();
        assert_eq!(on.len(), 1, "{:?}: rx packets per CPU {on:?}", e.key());
        assert_eq!(on[0].1, PER_SESSION, "{:?}", e.key());
        used.insert(on[0].0);
        assert_eq!(
            dp.counters(&e.key()).expect("counters").rx_packets,
            PER_SESSION
        );
    }
    eprintln!("sessions spread over CPUs {used:?}");
    assert!(used.len() > 1, "all {SESSIONS} sessions on CPUs {used:?}");
    if cpus == 2 {
        assert_eq!(used.len(), 2, "both CPUs carry sessions");
    }
}
