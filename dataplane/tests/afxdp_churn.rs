//! AF_XDP mode: table updates under traffic. While the workers forward the traffic of
//! `STABLE` sessions both ways (half of them sequenced), another thread installs and removes
//! `CHURN` = 100,000 other sessions through the pinned maps (as a control plane does, with
//! `XdpDataPlane`), in batches: the workers' replicas follow through the change queue. Every
//! packet of the sessions that stay arrives, counted per subscriber at the receivers, and the
//! replicas end with exactly the stable sessions. Then the workers stop (their sockets close,
//! as when the AF_XDP process dies) and the programs forward in XDP mode, nothing lost. Needs
//! root (`l2xdp_lab::require_root`).
//!
//! Loss: the senders are paced by what the receivers counted (`l2xdp_lab::traffic`), so any
//! shortfall is a real loss and fails the test. Time limits only bound a hung run.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use l2xdp_dataplane::api::{Binding, DataPlane, SessionEntry};
use l2xdp_dataplane::XdpDataPlane;
use l2xdp_lab::require_root;
use l2xdp_lab::topology::{Mode, PeerPort, Pins, Topology, CORE0, LAC0};
use l2xdp_lab::traffic::{
    classify_downstream, classify_upstream, ip_socket, Counter, Flows, Paced, Sub,
};
use l2xdp_wire::datapath::SessionKey;

const STABLE: usize = 16;
const CHURN: u32 = 100_000;
/// Sessions installed per batch; batch `i` is removed after batch `i + 1` is installed, so at
/// most two batches are present (the maps hold 65,536).
const BATCH: u32 = 10_000;
/// Rounds of traffic at least (more while the churn lasts).
const MIN_ROUNDS: usize = 20;

fn churn_entry(stable: &SessionEntry, i: u32) -> SessionEntry {
    let mut e = stable.clone();
    e.session.our_ids = SessionKey::V2 {
        tunnel_id: 1000 + (i / 50_000) as u16,
        session_id: (i % 50_000) as u16 + 1,
    };
    e.session.peer_ids = SessionKey::V2 {
        tunnel_id: 2000,
        session_id: (i % 60_000) as u16 + 1,
    };
    e.binding = Binding::Subscriber {
        ipv4: Some(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
        ipv6: vec![],
    };
    e
}

#[test]
fn hundred_thousand_installs_and_removals_under_traffic_lose_nothing() {
    if !require_root("hundred_thousand_installs_and_removals_under_traffic_lose_nothing") {
        return;
    }
    let topo = Topology::new("churn");
    let pins = Pins::under_sys_fs_bpf("churn");
    let fp = topo.start_fast_path(pins.path(), Mode::AfXdp);
    let rt = fp.afxdp.as_ref().expect("AF_XDP mode");
    let mut dp = XdpDataPlane::open(pins.path()).expect("pins");

    let subs = Sub::numbered(STABLE);
    for s in subs.values() {
        dp.install(&s.lns_entry()).expect("stable session");
    }
    fp.settle();
    assert_eq!(rt.sessions(), vec![STABLE as u64]);

    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_sock, lac_sock) = (ip_socket(&core_port), ip_socket(&lac_port));
    let core_rx = Counter::start(ip_socket(&core_port), classify_upstream);
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(ip_socket(&lac_port), move |f| {
        classify_downstream(&subs_rx, f)
    });
    let mut flows = Flows::new(&subs);
    let template = subs.values().next().expect("a session").lns_entry();

    let done = AtomicBool::new(false);
    let most = AtomicU64::new(0);
    let rounds = std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut churn = XdpDataPlane::open(pins.path()).expect("pins");
            let mut prev: Option<std::ops::Range<u32>> = None;
            let mut start = 0;
            while start < CHURN {
                let batch = start..(start + BATCH).min(CHURN);
                for i in batch.clone() {
                    churn.install(&churn_entry(&template, i)).expect("install");
                }
                if let Some(p) = prev.take() {
                    for i in p {
                        churn
                            .remove(&churn_entry(&template, i).key())
                            .expect("remove");
                    }
                }
                let n: u64 = rt.sessions().iter().sum();
                most.fetch_max(n, Ordering::Relaxed);
                prev = Some(batch.clone());
                start = batch.end;
            }
            for i in prev.into_iter().flatten() {
                churn
                    .remove(&churn_entry(&template, i).key())
                    .expect("remove");
            }
            done.store(true, Ordering::Release);
        });
        let mut up = Paced::new(&lac_sock, &core_rx);
        let mut down = Paced::new(&core_sock, &lac_rx);
        let mut rounds = 0;
        while rounds < MIN_ROUNDS || !done.load(Ordering::Acquire) {
            flows.send_rounds(1, &mut up, &mut down);
            rounds += 1;
            let n: u64 = rt.sessions().iter().sum();
            most.fetch_max(n, Ordering::Relaxed);
        }
        rounds
    });
    fp.settle();
    let total = STABLE * rounds;
    core_rx.wait(total, "upstream");
    lac_rx.wait(total, "downstream");
    eprintln!(
        "{rounds} rounds of {STABLE} sessions both ways during {CHURN} installs and removals; \
         at most {} sessions in the replicas",
        most.load(Ordering::Relaxed)
    );
    flows.assert_delivered(rounds, &core_rx.counts(), &lac_rx.counts(), &dp);
    assert_eq!(
        rt.sessions(),
        vec![STABLE as u64],
        "only the stable sessions remain"
    );
    assert!(
        most.load(Ordering::Relaxed) > u64::from(BATCH),
        "the replicas saw the churn"
    );
    let drops = fp.drop_counters();
    assert_eq!(drops.iter().sum::<u64>(), 0, "no drop: {drops:?}");

    // The workers go away (their sockets close, as when the AF_XDP process dies): the
    // programs forward in XDP mode, nothing lost.
    let mut fp = fp;
    drop(fp.afxdp.take());
    flows.send_rounds(
        MIN_ROUNDS,
        &mut Paced::new(&lac_sock, &core_rx),
        &mut Paced::new(&core_sock, &lac_rx),
    );
    let total = STABLE * (rounds + MIN_ROUNDS);
    core_rx.wait(total, "upstream, workers gone");
    lac_rx.wait(total, "downstream, workers gone");
    flows.assert_delivered(
        rounds + MIN_ROUNDS,
        &core_rx.counts(),
        &lac_rx.counts(),
        &dp,
    );
}

/// A change that did not fit the queue (the writer set `l2xdp_resync` instead): the workers do
/// not know the session — the program hands its packet over and the worker drops it as
/// unknown — until the sync thread sees the flag and rescans the session map.
#[test]
fn a_change_lost_to_a_full_queue_is_recovered_by_the_rescan() {
    use aya::maps::{Array, Map, MapData};
    use l2xdp_dataplane::session_map::{map_key, to_map};
    use l2xdp_dataplane::stats::StatsMaps;
    use l2xdp_ebpf::maps::{self, name};
    use l2xdp_lab::traffic::upstream_frame;
    use l2xdp_wire::datapath::{DropReason, TxSeq};

    if !require_root("a_change_lost_to_a_full_queue_is_recovered_by_the_rescan") {
        return;
    }
    let topo = Topology::new("resync");
    let pins = Pins::under_sys_fs_bpf("resync");
    let fp = topo.start_fast_path(pins.path(), Mode::AfXdp);
    let open = |n: &str| {
        Map::from_map_data(MapData::from_pin(pins.path().join(n)).expect("pin")).expect("map")
    };
    let lac_ids = SessionKey::V2 {
        tunnel_id: 7,
        session_id: 1,
    };
    let lns_ids = SessionKey::V2 {
        tunnel_id: 9,
        session_id: 2,
    };
    let sub = Sub::new(lac_ids, lns_ids, false, Ipv4Addr::new(100, 64, 0, 7));
    let e = sub.lns_entry();
    // Written to the maps with no change record.
    let mk = map_key(&e.key());
    // As the writer would: a profile (the last index, which no writer reached), the home
    // slot, the IPv4 address in its bucket.
    let mut v = to_map(&e.session, &e.binding).expect("value");
    let mut profiles: Array<MapData, maps::Profile> =
        open(name::PROFILES).try_into().expect("profiles");
    let last = profiles.len() - 1;
    v.slot.profile = last as u16;
    profiles.set(last, v.profile, 0).expect("profile");
    let mut sessions: Array<MapData, maps::Session> =
        open(name::SESSIONS).try_into().expect("sessions");
    let slot = mk.id & (sessions.len() - 1);
    sessions.set(slot, v.slot, 0).expect("session");
    let mut dst4: Array<MapData, maps::Dst4Bucket> = open(name::DST4).try_into().expect("dst4");
    let bucket = u32::from_be_bytes(sub.addr.octets()) & (dst4.len() - 1);
    let mut b = maps::Dst4Bucket::default();
    b.e[0] = maps::Dst4Entry {
        addr: u32::from_ne_bytes(sub.addr.octets()),
        slot,
    };
    dst4.set(bucket, b, 0).expect("binding");
    fp.settle();

    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_sock, lac_sock) = (ip_socket(&core_port), ip_socket(&lac_port));
    let core_rx = Counter::start(ip_socket(&core_port), classify_upstream);
    let subs: BTreeMap<SessionKey, Sub> = [(lac_ids, sub.clone())].into();
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(ip_socket(&lac_port), move |f| {
        classify_downstream(&subs_rx, f)
    });

    lac_sock.send(&upstream_frame(&sub, &mut TxSeq::default(), 0));
    let unknown = |fp: &l2xdp_lab::topology::FastPath| {
        fp.drop_counters()[DropReason::UnknownSession as usize]
    };
    let end = std::time::Instant::now() + l2xdp_lab::traffic::LIMIT;
    while unknown(&fp) < 1 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(unknown(&fp), 1, "the worker did not know the session");
    assert_eq!(core_rx.total(), 0);
    // The worker's drop through `dataplane::stats` (what `l2xdp-dataplane show`, `l2xdpctl
    // show stats` and the metrics read): the same reason, on the worker's core (0), once the
    // runtime has published it (every 100 ms).
    let stats = StatsMaps::open(pins.path()).expect("stats maps");
    let seen = || {
        let s = stats.snapshot(false).expect("snapshot");
        (
            s.drops[DropReason::UnknownSession as usize].packets,
            s.cpus[0].dropped,
            s.total.dropped,
        )
    };
    while seen() != (1, 1, 1) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(seen(), (1, 1, 1), "(unknown_session, CPU 0, all drops)");

    let mut resync: Array<MapData, u32> = open(name::RESYNC).try_into().expect("resync");
    resync.set(0, 1, 0).expect("flag");
    fp.settle();
    let mut flows = Flows::new(&subs);
    flows.send_rounds(
        MIN_ROUNDS,
        &mut Paced::new(&lac_sock, &core_rx),
        &mut Paced::new(&core_sock, &lac_rx),
    );
    core_rx.wait(MIN_ROUNDS, "upstream after the rescan");
    lac_rx.wait(MIN_ROUNDS, "downstream after the rescan");
    let k = u32::from(sub.addr);
    assert_eq!(core_rx.counts()[&k].0, MIN_ROUNDS);
    assert_eq!(lac_rx.counts()[&k].0, MIN_ROUNDS);
    assert_eq!(resync.get(&0, 0).expect("flag"), 0, "the flag is cleared");
    assert_eq!(unknown(&fp), 1, "nothing dropped after the rescan");
}
