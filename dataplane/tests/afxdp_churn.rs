//! AF_XDP mode: table updates under traffic. While the workers forward the traffic of
//! `STABLE` sessions both ways (half of them sequenced), another thread installs and removes
//! `CHURN` = 100,000 other sessions through the pinned maps (as a control plane does, with
//! `XdpDataPlane`), in batches: the workers' replicas follow through the change queue. Every
//! packet of the sessions that stay arrives, counted per subscriber at the receivers, and the
//! replicas end with exactly the stable sessions. Then the workers stop (their sockets close,
//! as when the AF_XDP process dies) and the programs forward in XDP mode, nothing lost. Needs
//! root; skips loudly otherwise.
//!
//! Loss: the senders are paced by what the receivers counted (`lab::traffic`), so any
//! shortfall is a real loss and fails the test. Time limits only bound a hung run.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use l2xdp_dataplane::api::{Binding, DataPlane, SessionEntry};
use l2xdp_dataplane::lab::is_root;
use l2xdp_dataplane::lab::topology::{Mode, PeerPort, Pins, Topology, CORE0, LAC0};
use l2xdp_dataplane::lab::traffic::{
    classify_downstream, classify_upstream, ip_socket, Counter, Flows, Paced, Sub,
};
use l2xdp_dataplane::XdpDataPlane;
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
    if !is_root() {
        eprintln!("*** SKIPPED hundred_thousand_installs_and_removals_under_traffic_lose_nothing: needs root ***");
        return;
    }
    let topo = Topology::new("churn");
    let pins = Pins::under_sys_fs_bpf("churn");
    let fp = topo.start_fast_path(pins.path(), Mode::AfXdp);
    let rt = fp.afxdp.as_ref().expect("AF_XDP mode");
    let mut dp = XdpDataPlane::open(pins.path()).expect("pins");

    let subs: BTreeMap<SessionKey, Sub> = (0..STABLE)
        .map(|i| {
            let lac_ids = SessionKey::V2 {
                tunnel_id: 7,
                session_id: 100 + i as u16,
            };
            let lns_ids = SessionKey::V2 {
                tunnel_id: 9,
                session_id: 200 + i as u16,
            };
            let s = Sub::new(
                lac_ids,
                lns_ids,
                i % 2 == 0,
                Ipv4Addr::new(100, 64, 0, 10 + i as u8),
            );
            (lac_ids, s)
        })
        .collect();
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
