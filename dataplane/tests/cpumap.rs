//! CPU spreading end to end on veth (lac — lns — core): the programs attached as
//! `l2xdp-dataplane attach --cpumap` does (cpumap entries for every online CPU with the second
//! pass `xdp_l2tp_access_cpu` as their program, `cpumap_cpus` in the config), many L2TPv2
//! sessions of one tunnel, data frames from the LAC, the decapsulated packets counted per
//! subscriber in the core namespace (the lab's topology, counter and paced sender). Every frame arrives; each frame is redirected once (first
//! pass) and decapsulated once (second pass); each session runs on one CPU and the sessions
//! use more than one. Needs root (`l2xdp_lab::require_root`) and two online CPUs (else a recorded skip).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use aya::maps::{Map, MapData, PerCpuArray};
use common::*;
use l2xdp_dataplane::api::{Binding, SessionEntry};
use l2xdp_dataplane::{loader, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::maps::{name, verdict};
use l2xdp_lab::packet::ETH_P_LOCAL_EXP;
use l2xdp_lab::topology::{PeerPort, Pins, Topology, CORE0, LAC0};
use l2xdp_lab::traffic::{ip_socket, Counter, Paced, RECV_TIMEOUT};
use l2xdp_wire::datapath::{emit_inner_ethernet, SessionKey};
use l2xdp_wire::l2tp::header::Transport;

/// Sessions of the one tunnel.
const SESSIONS: u16 = 64;
/// Frames per session.
const PER_SESSION: u64 = 40;
/// Frames per session sent alone, to see which CPU decapsulates it.
const PER_PROBE: u64 = 8;
/// The class of a frame at the core that is not one session's expected packet.
const UNEXPECTED: u32 = u32::MAX;

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

/// The core's classifier: a frame equal to a session's expected packet (found by its inner
/// source) is of that session's index; anything else that is UDP 4000 → 5000 is
/// [`UNEXPECTED`]; the rest (not ours) is ignored.
fn classify(want: &HashMap<[u8; 4], (usize, Vec<u8>)>, f: &[u8]) -> Option<u32> {
    // Ethernet + IPv4 (20) + UDP 4000 → 5000.
    if f.len() < 42
        || f[12..14] != [0x08, 0x00]
        || f[23] != 17
        || f[34..38] != [0x0f, 0xa0, 0x13, 0x88]
    {
        return None;
    }
    let src: [u8; 4] = f[26..30].try_into().expect("4 bytes");
    match want.get(&src) {
        Some((i, w)) if w.as_slice() == f => Some(*i as u32),
        _ => Some(UNEXPECTED),
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
        // One online CPU (/sys/devices/system/cpu/online): nothing to spread over.
        l2xdp_lab::skip::skip_for_resource("cpumap_spreads_sessions_of_one_tunnel", "2 CPUs");
        return;
    }
    // The lab's topology; as `l2xdp-dataplane attach --cpumap`: the cpumap filled for the
    // online CPUs from 0, `cpumap_cpus` in the config.
    let topo = Topology::new("cpumap");
    let pins = Pins::under_sys_fs_bpf("cpumap");
    let pin_dir = pins.path().to_path_buf();
    let _lns_obj = topo.attach_fast_path_with(
        &pin_dir,
        &FastPathConfig {
            cpumap_cpus: cpus,
            ..FastPathConfig::default()
        },
    );
    let entries: Vec<SessionEntry> = (1..=SESSIONS).map(entry).collect();
    {
        let _g = topo.lns.enter();
        let mut dp = XdpDataPlane::open(&pin_dir).expect("open pins");
        for e in &entries {
            dp.install(e).expect("install");
        }
    }
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    // The LAC only sends: bound to an EtherType nothing else uses.
    let lac_sock = lac_port.socket(ETH_P_LOCAL_EXP, RECV_TIMEOUT);

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

    // Paced by what the core counted (the lab's window; a stall fails in `send`).
    let rx = Counter::start(ip_socket(&core_port), move |f| classify(&want, f));
    let total = u64::from(SESSIONS) * PER_SESSION;
    let mut up = Paced::new(&lac_sock, &rx);
    for _ in 0..PER_SESSION {
        for f in &frames {
            up.send(f);
        }
    }
    let sent = up.sent;
    let counted = rx.settle(sent);
    let counts = rx.counts();

    // Per session: its frames alone, and the CPU whose second pass decapsulated them (the
    // per-CPU DECAP verdicts; a session's counters are one per session, not per CPU).
    let verdicts_map: PerCpuArray<MapData, u64> =
        Map::from_map_data(MapData::from_pin(pin_dir.join(name::VERDICTS)).expect("verdicts pin"))
            .expect("map")
            .try_into()
            .expect("per-CPU array");
    let decap_per_cpu = || -> Vec<u64> {
        verdicts_map
            .get(&verdict::DECAP, 0)
            .expect("DECAP")
            .iter()
            .copied()
            .collect()
    };
    let mut on_cpu = Vec::new();
    for f in &frames {
        let before = decap_per_cpu();
        for _ in 0..PER_PROBE {
            up.send(f);
        }
        rx.settle(up.sent);
        let after = decap_per_cpu();
        let on: Vec<(usize, u64)> = after
            .iter()
            .zip(&before)
            .enumerate()
            .filter(|(_, (a, b))| a > b)
            .map(|(cpu, (a, b))| (cpu, a - b))
            .collect();
        on_cpu.push(on);
    }
    drop(rx);

    let got: Vec<u64> = (0..u32::from(SESSIONS))
        .map(|i| counts.get(&i).map_or(0, |c| c.0 as u64))
        .collect();
    let _g = topo.lns.enter();
    let dp = XdpDataPlane::open(&pin_dir).expect("open pins");
    let verdicts = dp.verdict_counters().expect("verdicts");
    let drops = dp.drop_counters().expect("drops");
    // Every frame was sent (`Paced::send` fails on a stall).
    assert_eq!(sent as u64, total);
    assert_eq!(
        got,
        vec![PER_SESSION; usize::from(SESSIONS)],
        "frames received per session ({counted} counted; verdicts {verdicts:?}, drops {drops:?})"
    );
    assert_eq!(
        counts.get(&UNEXPECTED).map_or(0, |c| c.0),
        0,
        "unexpected frames at the core"
    );
    // Both phases: the interleaved frames and the per-session probes.
    let frames_sent = total + u64::from(SESSIONS) * PER_PROBE;
    assert_eq!(
        verdicts[verdict::CPU_REDIRECT as usize],
        frames_sent,
        "first pass: every frame to the cpumap ({verdicts:?})"
    );
    assert_eq!(
        verdicts[verdict::DECAP as usize],
        frames_sent,
        "second pass: every frame decapsulated ({verdicts:?})"
    );
    assert_eq!(drops.iter().sum::<u64>(), 0, "drops {drops:?}");

    // Per CPU: each session's frames all on one CPU, the sessions on more than one CPU.
    let mut used = BTreeSet::new();
    for (e, on) in entries.iter().zip(&on_cpu) {
        assert_eq!(on.len(), 1, "{:?}: decapsulated per CPU {on:?}", e.key());
        assert_eq!(on[0].1, PER_PROBE, "{:?}", e.key());
        used.insert(on[0].0);
        assert_eq!(
            dp.counters(&e.key()).expect("counters").rx_packets,
            PER_SESSION + PER_PROBE
        );
    }
    eprintln!("sessions spread over CPUs {used:?}");
    assert!(used.len() > 1, "all {SESSIONS} sessions on CPUs {used:?}");
    if cpus == 2 {
        assert_eq!(used.len(), 2, "both CPUs carry sessions");
    }
}
