//! Transparent resume (`tunnel/resume.rs`) between two registries: the LNS (`b`, failover
//! state kept) restarts from its store while the LAC (`a`) negotiated no RFC 4951 failover;
//! the same control connection goes on. When it cannot, the LAC gets a StopCCN.

use std::time::Duration;

use l2xdp_wire::l2tp::header::Version;
use l2xdp_wire::l2tp::message::MessageType;

use super::failover::{FailoverEvent, MemoryStore, StateStore};
use super::*;

fn lns_cfg() -> L2tpConfig {
    let mut c = cfg("lns");
    c.failover = Some(FailoverConfig {
        control: true,
        data: true,
        recovery_time_ms: 10_000,
    });
    c.hello_interval_secs = 5;
    c
}

/// A LAC without RFC 4951 (as xl2tpd), HELLO every 5 s.
fn lac_cfg() -> L2tpConfig {
    let mut c = cfg("lac");
    c.hello_interval_secs = 5;
    c
}

struct R {
    n: Net,
    store: MemoryStore,
    fo: Vec<FailoverEvent>,
    seed: u64,
}

impl R {
    fn new() -> Self {
        R {
            n: Net::new(lac_cfg(), lns_cfg()),
            store: MemoryStore::new(),
            fo: Vec::new(),
            seed: 20,
        }
    }

    /// What the node does before each send: the registry's store operations, then the
    /// sequence records, into the store.
    fn sync(&mut self) {
        while let Some(e) = self.n.b.poll_failover_event() {
            if let FailoverEvent::Store(op) = &e {
                self.store.apply(op).expect("store");
            }
            self.fo.push(e);
        }
        for op in self.n.b.take_sequence_ops() {
            self.store.apply(&op).expect("store");
        }
    }

    fn run(&mut self, secs: u64) {
        for _ in 0..secs {
            self.n.run(Duration::from_secs(1));
            self.sync();
        }
    }

    fn run_ms(&mut self, ms: u64) {
        self.n.run(Duration::from_millis(ms));
        self.sync();
    }

    fn setup(&mut self, v: Version, sessions: usize) -> (TunnelId, TunnelId) {
        let t = self
            .n
            .a
            .open_tunnel(Net::pb(), v, self.n.now)
            .expect("open");
        self.run(1);
        for _ in 0..sessions {
            self.n
                .a
                .open_session(t, CallParams::default(), self.n.now)
                .expect("session");
        }
        self.run(1);
        assert_eq!(ups(&self.n.ev_b).len(), sessions);
        let tb = self.n.b.tunnels().next().expect("t").id();
        (t, tb)
    }

    /// `b` restarts from `state`.
    fn restart_b(&mut self, state: failover::RecoveryState) -> RecoveryReport {
        self.seed += 1;
        let mut r = Registry::with_random(lns_cfg(), crate::random::Random::seeded(self.seed));
        let rep = r.recover(state, self.n.now).expect("recover");
        self.n.b = r;
        self.n.ev_b.clear();
        self.fo.clear();
        self.sync();
        rep
    }
}

fn failover_count(r: &Registry, what: &str) -> u64 {
    r.counters().failover.get(what).copied().unwrap_or(0)
}

fn peer_stops(ev: &[Event]) -> Vec<ResultCode> {
    ev.iter()
        .filter_map(|e| match e {
            Event::TunnelDown {
                reason: TunnelDownReason::Peer(rc),
                ..
            } => Some(rc.clone()),
            _ => None,
        })
        .collect()
}

/// The LNS is killed while the LAC's ICRQ is unacknowledged, and restarts from its store: the
/// LAC's retransmission is accepted and acknowledged, the new call comes up, HELLO is
/// answered both ways, and the LAC never sees its tunnel or a session go down.
fn resume(v: Version) {
    let mut r = R::new();
    let (t, tb) = r.setup(v, 3);
    assert!(
        !r.store.load().expect("load").sequences.is_empty(),
        "the sequence state is persisted"
    );
    lose_to(&mut r.n, false);
    r.n.a
        .open_session(t, CallParams::default(), r.n.now)
        .expect("call while the LNS is down");
    r.run(3);
    let before = r.n.ev_a.len();
    let rep = r.restart_b(r.store.load().expect("load"));
    assert_eq!(rep.resuming, vec![tb]);
    assert!(rep.recovering.is_empty() && rep.cleared.is_empty());
    assert_eq!(rep.sessions, 3);
    r.n.tamper = None;
    r.run(30);
    let after = &r.n.ev_a[before..];
    assert_eq!(count(after, |e| matches!(e, Event::TunnelDown { .. })), 0);
    assert_eq!(count(after, |e| matches!(e, Event::SessionDown { .. })), 0);
    assert_eq!(
        ups(after).len(),
        1,
        "the call made during the restart came up"
    );
    assert_eq!(ups(&r.n.ev_b).len(), 1);
    assert_eq!(r.n.a.tunnel(t).expect("t").established_sessions().len(), 4);
    assert_eq!(r.n.b.tunnel(tb).expect("t").established_sessions().len(), 4);
    assert_eq!(failover_count(&r.n.b, "tunnel resumed"), 1);
    assert_eq!(
        r.fo.iter()
            .filter(|e| matches!(e, FailoverEvent::Resumed { sessions: 3, .. }))
            .count(),
        1
    );
    // 30 s at a 5 s HELLO interval: both sent HELLOs, every one acknowledged.
    assert!(r.n.a.tunnel(t).expect("t").channel().is_quiescent());
    assert!(r.n.b.tunnel(tb).expect("t").channel().is_quiescent());
    let hellos = msgs_of(&r.n, MessageType::Hello);
    assert!(hellos >= 4, "HELLOs exchanged: {hellos}");
    assert!(!r.n.b.tunnel(tb).expect("t").is_resuming());
    r.n.check_emitted();
}

fn msgs_of(n: &Net, mt: MessageType) -> usize {
    n.emitted
        .iter()
        .filter(|(_, d)| {
            l2xdp_wire::l2tp::message::ControlMessage::parse(d, &Default::default())
                .ok()
                .and_then(|m| m.message_type())
                == Some(mt)
        })
        .count()
}

#[test]
fn resume_v2_peer_without_failover() {
    resume(Version::V2);
}

#[test]
fn resume_v3_peer_without_failover() {
    resume(Version::V3);
}

/// The store is older than what the peer saw (its sequence state lags: restored from a copy
/// taken before six more calls): the peer's first answer contradicts it, and the LAC gets a
/// StopCCN in its own sequence (RFC 2661 §5.7, Result Code 1), which it takes.
#[test]
fn inconsistent_sequence_state_gets_a_stopccn() {
    for v in [Version::V2, Version::V3] {
        let mut r = R::new();
        let (t, tb) = r.setup(v, 1);
        let stale = r.store.load().expect("load");
        for _ in 0..6 {
            r.n.a
                .open_session(t, CallParams::default(), r.n.now)
                .expect("session");
        }
        r.run(2);
        let rep = r.restart_b(stale);
        assert_eq!(rep.resuming, vec![tb]);
        r.run(3);
        assert_eq!(failover_count(&r.n.b, "resume failed"), 1, "{v:?}");
        let stops = peer_stops(&r.n.ev_a);
        assert_eq!(stops.len(), 1, "{v:?}: the LAC took the StopCCN");
        assert_eq!(stops[0].result, 1);
        assert!(r
            .n
            .a
            .tunnel(t)
            .is_none_or(|x| x.state() != tunnel::TunnelState::Established));
    }
}

/// No sequence state (a store written before resume existed, or the records lost) and a
/// peer without RFC 4951: the LAC gets a StopCCN within one second of the restart, found
/// with the farewell probes.
#[test]
fn no_sequence_state_gets_a_stopccn_within_a_second() {
    for v in [Version::V2, Version::V3] {
        let mut r = R::new();
        let (t, tb) = r.setup(v, 2);
        // Some traffic after the tunnel record was written: its Ns is stale.
        r.n.a
            .open_session(t, CallParams::default(), r.n.now)
            .expect("session");
        r.run(6);
        let mut state = r.store.load().expect("load");
        state.sequences.clear();
        let rep = r.restart_b(state);
        assert_eq!(rep.cleared, vec![tb]);
        assert!(rep.resuming.is_empty());
        r.run_ms(1000);
        let stops = peer_stops(&r.n.ev_a);
        assert_eq!(stops.len(), 1, "{v:?}: the LAC took the StopCCN within 1 s");
        assert_eq!(stops[0].result, 1);
        assert_eq!(failover_count(&r.n.b, "farewell StopCCN sent"), 1);
        // The restarted side reported its sessions and tunnel down.
        assert_eq!(
            count(&r.n.ev_b, |e| matches!(e, Event::SessionDown { .. })),
            3
        );
    }
}

/// A registry that knows nothing of a tunnel its fast path still names (the store was
/// emptied) tells the peer: a StopCCN within one second.
#[test]
fn farewell_from_the_fast_path() {
    let mut r = R::new();
    let (t, tb) = r.setup(Version::V2, 1);
    let peer_tid = r.n.b.tunnel(tb).expect("t").peer_tunnel_id();
    assert_eq!(peer_tid, t);
    r.restart_b(failover::RecoveryState::default());
    let now = r.n.now;
    assert!(r.n.b.farewell(Net::pa(), Version::V2, tb, peer_tid, now));
    assert!(
        !r.n.b.farewell(Net::pa(), Version::V2, tb, peer_tid, now),
        "once per tunnel"
    );
    r.run_ms(1000);
    let stops = peer_stops(&r.n.ev_a);
    assert_eq!(stops.len(), 1, "the LAC took the StopCCN");
    assert!(r.n.b.tunnel(tb).is_none_or(|x| !x.is_farewell()));
}

/// A peer that never answers the farewell is given up after its rounds of probes.
#[test]
fn unanswered_farewell_is_given_up() {
    let mut r = R::new();
    let (_, tb) = r.setup(Version::V2, 0);
    r.restart_b(failover::RecoveryState::default());
    lose_to(&mut r.n, true);
    let now = r.n.now;
    assert!(r.n.b.farewell(Net::pa(), Version::V2, tb, 5, now));
    r.run(3);
    assert_eq!(failover_count(&r.n.b, "farewell unanswered"), 1);
    assert_eq!(
        failover_count(&r.n.b, "farewell probe sent"),
        2 * u64::from(tunnel::FAREWELL_PROBES)
    );
    assert!(r.n.b.tunnel(tb).is_none());
}

/// The sequence state is written once per commit however many messages moved it, and not at
/// all while nothing moves.
#[test]
fn one_sequence_record_per_commit() {
    let mut r = R::new();
    let (t, _) = r.setup(Version::V2, 0);
    r.sync();
    for _ in 0..5 {
        r.n.a
            .open_session(t, CallParams::default(), r.n.now)
            .expect("session");
    }
    r.n.run(Duration::from_secs(1));
    while r.n.b.poll_failover_event().is_some() {}
    assert_eq!(r.n.b.take_sequence_ops().len(), 1);
    assert!(r.n.b.take_sequence_ops().is_empty());
    assert!(!r.n.b.has_sequence_changes());
}

fn lose_to(n: &mut Net, to_a: bool) {
    n.tamper = Some(Box::new(move |from_a, d| (from_a == to_a).then_some(d)));
}

/// A LAC that negotiated RFC 4951 too: resume is the fast path when nothing was lost (no
/// recovery tunnel), and RFC 4951 recovery the fall-back when the peer contradicts the stored
/// sequence state — the tunnel and its sessions are then recovered, not torn down.
#[test]
fn capable_peer_resumes_or_falls_back_to_recovery() {
    let capable = || {
        let mut c = lac_cfg();
        c.failover = Some(FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: 10_000,
        });
        c
    };
    // Nothing lost: resumed.
    let mut r = R::new();
    r.n = Net::new(capable(), lns_cfg());
    let (_, tb) = r.setup(Version::V2, 2);
    let rep = r.restart_b(r.store.load().expect("load"));
    assert_eq!(rep.resuming, vec![tb]);
    r.run(10);
    assert_eq!(failover_count(&r.n.b, "tunnel resumed"), 1);
    assert_eq!(failover_count(&r.n.b, "recovery SCCRQ sent"), 0);
    assert_eq!(peer_stops(&r.n.ev_a).len(), 0);

    // The store lags behind what the peer saw: recovered with RFC 4951.
    let mut r = R::new();
    r.n = Net::new(capable(), lns_cfg());
    let (t, tb) = r.setup(Version::V2, 2);
    let stale = r.store.load().expect("load");
    for _ in 0..6 {
        r.n.a
            .open_session(t, CallParams::default(), r.n.now)
            .expect("session");
    }
    r.run(2);
    let rep = r.restart_b(stale);
    assert_eq!(rep.resuming, vec![tb]);
    r.run(30);
    assert_eq!(failover_count(&r.n.b, "resume failed"), 1);
    assert_eq!(failover_count(&r.n.b, "resume fell back to recovery"), 1);
    assert_eq!(failover_count(&r.n.b, "recovery SCCRQ sent"), 1);
    assert!(
        r.fo.iter()
            .any(|e| matches!(e, FailoverEvent::Recovered { tunnel, .. } if *tunnel == tb)),
        "{:?}",
        r.fo
    );
    assert_eq!(peer_stops(&r.n.ev_a).len(), 0, "not torn down");
    assert_eq!(
        r.n.b.tunnel(tb).expect("t").state(),
        tunnel::TunnelState::Established
    );
}
