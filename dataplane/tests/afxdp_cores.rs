//! AF_XDP mode with two workers: veths with two queues each, one worker per core (queue `q`
//! of both interfaces on worker `q`). The senders' flow hash spreads the frames over the
//! queues (downstream: one flow per subscriber; upstream: one tunnel, so one queue), so both
//! workers forward; each has every session in its replica; half of the sessions are sequenced
//! (their Ns is shared by the workers). Every packet arrives, counted per subscriber at the
//! receivers. Needs root (`l2xdp_lab::require_root`) and two CPUs (else a recorded skip).

use l2xdp_dataplane::api::DataPlane;
use l2xdp_dataplane::XdpDataPlane;
use l2xdp_lab::topology::{Mode, PeerPort, Pins, Topology, CORE0, LAC0};
use l2xdp_lab::traffic::{
    classify_downstream, classify_upstream, ip_socket, Counter, Flows, Paced, Sub,
};
use l2xdp_lab::{require_root, skip};

const SESSIONS: usize = 16;
const ROUNDS: usize = 20;

#[test]
fn two_workers_share_the_queues_and_every_session() {
    // SAFETY: sysconf has no side effects.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if !require_root("two_workers_share_the_queues_and_every_session") {
        return;
    }
    if cpus < 2 {
        skip::skip_for_resource("two_workers_share_the_queues_and_every_session", "2 CPUs");
        return;
    }
    let topo = Topology::with_queues("cores", 2);
    let pins = Pins::under_sys_fs_bpf("cores");
    let fp = topo.start_fast_path_on(pins.path(), Mode::AfXdp, &[0, 1]);
    let rt = fp.afxdp.as_ref().expect("AF_XDP mode");
    let mut dp = XdpDataPlane::open(pins.path()).expect("pins");
    let subs = Sub::numbered(SESSIONS);
    for s in subs.values() {
        dp.install(&s.lns_entry()).expect("install");
    }
    fp.settle();
    assert_eq!(
        rt.sessions(),
        vec![SESSIONS as u64; 2],
        "every session in both replicas"
    );

    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (core_sock, lac_sock) = (ip_socket(&core_port), ip_socket(&lac_port));
    let core_rx = Counter::start(ip_socket(&core_port), classify_upstream);
    let subs_rx = subs.clone();
    let lac_rx = Counter::start(ip_socket(&lac_port), move |f| {
        classify_downstream(&subs_rx, f)
    });
    let mut flows = Flows::new(&subs);
    flows.send_rounds(
        ROUNDS,
        &mut Paced::new(&lac_sock, &core_rx),
        &mut Paced::new(&core_sock, &lac_rx),
    );
    core_rx.wait(SESSIONS * ROUNDS, "upstream");
    lac_rx.wait(SESSIONS * ROUNDS, "downstream");
    flows.assert_delivered(ROUNDS, &core_rx.counts(), &lac_rx.counts(), &dp);
    let per = rt.received_per_worker();
    eprintln!("frames per worker: {per:?}");
    assert_eq!(
        per.iter().sum::<u64>(),
        (2 * SESSIONS * ROUNDS) as u64,
        "{per:?}"
    );
    assert!(
        per.iter().all(|n| *n > 0),
        "both workers forwarded: {per:?}"
    );
    let drops = fp.drop_counters();
    assert_eq!(drops.iter().sum::<u64>(), 0, "no drop: {drops:?}");
}
