//! RFC 4951 failover between two registries: capability exchange, persistence, recovery of a
//! restarted endpoint (both roles, both versions), session synchronisation, refusals.

use std::time::Duration;

use l2xdp_wire::l2tp::avp::{Avp, AvpType};
use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

use super::failover::{FailoverEvent, MemoryStore, ResetRole, StateStore, StoreOp};
use super::*;

const SECRET: &str = "fail0ver";

fn fo_cfg(name: &str, secret: bool, data: bool) -> L2tpConfig {
    let mut c = cfg(name);
    c.failover = Some(FailoverConfig {
        control: true,
        data,
        recovery_time_ms: 20_000,
    });
    if secret {
        c.secret = Some(SECRET.into());
    }
    c.hello_interval_secs = 3600;
    c
}

/// Both registries with their stores and the failover events seen.
struct Fo {
    n: Net,
    ca: L2tpConfig,
    cb: L2tpConfig,
    store_a: MemoryStore,
    store_b: MemoryStore,
    fo_a: Vec<FailoverEvent>,
    fo_b: Vec<FailoverEvent>,
    seed: u64,
}

impl Fo {
    fn new(ca: L2tpConfig, cb: L2tpConfig) -> Self {
        Fo {
            n: Net::new(ca.clone(), cb.clone()),
            ca,
            cb,
            store_a: MemoryStore::new(),
            store_b: MemoryStore::new(),
            fo_a: Vec::new(),
            fo_b: Vec::new(),
            seed: 10,
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.n.a.poll_failover_event() {
            if let FailoverEvent::Store(op) = &e {
                self.store_a.apply(op).expect("store");
            }
            self.fo_a.push(e);
        }
        while let Some(e) = self.n.b.poll_failover_event() {
            if let FailoverEvent::Store(op) = &e {
                self.store_b.apply(op).expect("store");
            }
            self.fo_b.push(e);
        }
    }

    fn run(&mut self, secs: u64) {
        // Step by one second so store operations are applied close to when they happen.
        for _ in 0..secs {
            self.n.run(Duration::from_secs(1));
            self.drain();
        }
    }

    /// `a` opens a tunnel and `sessions` incoming calls.
    fn setup(&mut self, v: Version, sessions: usize) -> TunnelId {
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
        assert_eq!(ups(&self.n.ev_a).len(), sessions);
        assert_eq!(ups(&self.n.ev_b).len(), sessions);
        t
    }

    /// Restarts `a` (or `b`): a new registry built from the persisted state; the old one is
    /// dropped. Datagrams to it meanwhile were lost (the caller drops them with the tamper).
    fn restart(&mut self, restart_a: bool, cfg: Option<L2tpConfig>) -> RecoveryReport {
        self.drain();
        self.seed += 1;
        let (c, store) = if restart_a {
            (cfg.unwrap_or(self.ca.clone()), &self.store_a)
        } else {
            (cfg.unwrap_or(self.cb.clone()), &self.store_b)
        };
        let state = store.load().expect("load");
        let mut r = Registry::with_random(c, crate::random::Random::seeded(self.seed));
        let rep = r.recover(state, self.n.now).expect("recover");
        if restart_a {
            self.n.a = r;
            self.n.ev_a.clear();
        } else {
            self.n.b = r;
            self.n.ev_b.clear();
        }
        self.drain();
        rep
    }

    fn fo(&self, of_a: bool) -> &[FailoverEvent] {
        if of_a {
            &self.fo_a
        } else {
            &self.fo_b
        }
    }
}

fn fo_count(ev: &[FailoverEvent], f: impl Fn(&FailoverEvent) -> bool) -> usize {
    ev.iter().filter(|e| f(e)).count()
}

fn downs(ev: &[Event]) -> Vec<(u32, SessionDownReason)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::SessionDown {
                session, reason, ..
            } => Some((*session, reason.clone())),
            _ => None,
        })
        .collect()
}

fn tunnel_downs(ev: &[Event]) -> usize {
    count(ev, |e| matches!(e, Event::TunnelDown { .. }))
}

fn msgs(n: &Net, mt: MessageType) -> Vec<ControlMessage> {
    n.emitted
        .iter()
        .filter_map(|(t, d)| {
            let d = if *t == Transport::Ip { &d[4..] } else { &d[..] };
            ControlMessage::parse(d, &ParseContext::default()).ok()
        })
        .filter(|m| m.message_type() == Some(mt))
        .collect()
}

fn sessions_of(r: &Registry, t: TunnelId) -> Vec<u32> {
    r.tunnel(t).expect("tunnel").established_sessions()
}

/// Drops every datagram towards the restarted side while it is down.
fn lose_to(n: &mut Net, to_a: bool) {
    n.tamper = Some(Box::new(move |from_a, d| (from_a == to_a).then_some(d)));
}

// -------------------------------------------------------------------------------------------

/// RFC 4951 §3.1, §5.1, §6: each side records the other's C/D bits and Recovery Time; the AVP
/// is in SCCRQ and SCCRP only; C = D = 0 is never sent.
#[test]
fn capability_exchange() {
    for v in [Version::V2, Version::V3] {
        let mut cb = fo_cfg("b", false, false);
        cb.failover = Some(FailoverConfig {
            control: true,
            data: false,
            recovery_time_ms: 1234,
        });
        let mut f = Fo::new(fo_cfg("a", false, true), cb);
        let t = f.setup(v, 1);
        let ta = f.n.a.tunnel(t).expect("t");
        assert_eq!(
            ta.peer_failover(),
            Some(FailoverCapability {
                control: true,
                data: false,
                recovery_time_ms: 1234
            })
        );
        assert_eq!(
            ta.our_failover(),
            Some(FailoverCapability {
                control: true,
                data: true,
                recovery_time_ms: 20_000
            })
        );
        let tb = f.n.b.tunnels().next().expect("t");
        assert_eq!(tb.peer_failover(), ta.our_failover());
        // Remote endpoint hold: the peer's Recovery Time.
        assert_eq!(ta.channel().config().hold, Duration::from_millis(1234));
        assert_eq!(tb.channel().config().hold, Duration::from_millis(20_000));
        for mt in [MessageType::Sccrq, MessageType::Sccrp] {
            assert_eq!(msgs(&f.n, mt).len(), 1);
            assert!(msgs(&f.n, mt)[0].failover_capability().is_some(), "{mt:?}");
        }
        for mt in [MessageType::Scccn, MessageType::Icrq, MessageType::Iccn] {
            assert!(msgs(&f.n, mt)
                .iter()
                .all(|m| m.get(AvpType::FailoverCapability).is_none()));
        }
        // Persisted: the tunnel and its session on both sides.
        let sa = f.store_a.load().expect("load");
        assert_eq!((sa.tunnels.len(), sa.sessions.len()), (1, 1));
        assert_eq!(sa.tunnels[0].peer_failover, ta.peer_failover());
        assert_eq!(f.store_b.load().expect("load").sessions.len(), 1);
        f.n.check_emitted();

        // C = D = 0 sends no AVP; the peer records none and holds nothing.
        let mut c0 = cfg("c");
        c0.failover = Some(FailoverConfig {
            control: false,
            data: false,
            recovery_time_ms: 5,
        });
        let mut f = Fo::new(c0, fo_cfg("b", false, true));
        let t = f.setup(v, 0);
        assert!(msgs(&f.n, MessageType::Sccrq)[0]
            .failover_capability()
            .is_none());
        assert_eq!(f.n.a.tunnel(t).expect("t").our_failover(), None);
        let tb = f.n.b.tunnels().next().expect("t");
        assert_eq!(tb.peer_failover(), None);
        assert_eq!(tb.channel().config().hold, Duration::ZERO);
        assert!(f.store_a.load().expect("load").tunnels.is_empty());
    }
}

/// The full recovery of a restarted endpoint: `restart_a` picks the LAC (tunnel initiator)
/// or the LNS.
fn full_recovery(v: Version, restart_a: bool) {
    let mut f = Fo::new(fo_cfg("lac", true, true), fo_cfg("lns", true, true));
    let t = f.setup(v, 3);
    let tb = f.n.b.tunnels().next().expect("t").id();
    let (old_a, old_b) = (sessions_of(&f.n.a, t), sessions_of(&f.n.b, tb));
    // The restarted side goes down; the survivor's messages to it are lost: a new call the
    // survivor opens stays half set up.
    lose_to(&mut f.n, restart_a);
    let survivor_tunnel = if restart_a { tb } else { t };
    let half = {
        let r = if restart_a { &mut f.n.b } else { &mut f.n.a };
        r.open_session(survivor_tunnel, CallParams::default(), f.n.now)
            .expect("half")
    };
    f.run(3);
    let rep = f.restart(restart_a, None);
    let old = if restart_a { t } else { tb };
    assert_eq!(rep.recovering, vec![old]);
    assert_eq!(rep.sessions, 3);
    assert_eq!(
        fo_count(f.fo(restart_a), |e| matches!(
            e,
            FailoverEvent::SessionRestored { .. }
        )),
        3
    );
    f.n.tamper = None;
    f.run(30);
    // Recovered on both sides; the survivor saw no TunnelDown.
    let (rec, rem) = (f.fo(restart_a), f.fo(!restart_a));
    assert_eq!(
        fo_count(rec, |e| matches!(
            e,
            FailoverEvent::ControlReset {
                role: ResetRole::Recovery,
                ..
            }
        )),
        1
    );
    assert_eq!(
        fo_count(rem, |e| matches!(
            e,
            FailoverEvent::ControlReset {
                role: ResetRole::Remote,
                ..
            }
        )),
        1
    );
    assert_eq!(
        fo_count(rec, |e| matches!(
            e,
            FailoverEvent::Recovered { sessions: 3, .. }
        )),
        1
    );
    let survivor_ev = if restart_a { &f.n.ev_b } else { &f.n.ev_a };
    assert_eq!(tunnel_downs(survivor_ev), 0, "{v:?} restart_a={restart_a}");
    // The half set up call was cleared silently at the survivor (Step I), nothing else.
    assert_eq!(
        downs(survivor_ev),
        vec![(half, SessionDownReason::FailoverCleared)]
    );
    // Sessions keep their IDs and are synchronised.
    assert_eq!(sessions_of(&f.n.a, t), old_a);
    assert_eq!(sessions_of(&f.n.b, tb), old_b);
    for &s in &old_a {
        assert_eq!(f.n.a.tunnel(t).expect("t").session_is_synced(s), Some(true));
    }
    // Besides the old tunnel only the recovery tunnel existed: closed (lingering to
    // acknowledge its StopCCN, RFC 2661 §5.7) and then gone.
    for r in [&f.n.a, &f.n.b] {
        for x in r.tunnels().filter(|x| x.role() != tunnel::Role::Normal) {
            assert_eq!(x.state(), tunnel::TunnelState::Closing);
        }
        assert_eq!(
            r.tunnels()
                .filter(|x| x.role() == tunnel::Role::Normal)
                .count(),
            1
        );
    }
    // No recovery tunnel failover AVP, Tunnel Recovery and SCS present.
    let sccrqs = msgs(&f.n, MessageType::Sccrq);
    let rq = sccrqs
        .iter()
        .find(|m| m.tunnel_recovery().is_some())
        .expect("recovery SCCRQ");
    assert!(rq.failover_capability().is_none());
    assert!(rq.get(AvpType::TieBreaker).is_some());
    let rp = msgs(&f.n, MessageType::Sccrp)
        .into_iter()
        .find(|m| m.suggested_control_sequence().is_some())
        .expect("SCCRP with SCS");
    assert!(rp.failover_capability().is_none());
    assert!(!msgs(&f.n, MessageType::Fsq).is_empty());
    assert!(!msgs(&f.n, MessageType::Fsr).is_empty());
    // A new session can be set up afterwards, from either side.
    f.n.a
        .open_session(t, CallParams::default(), f.n.now)
        .expect("new a");
    f.n.b
        .open_session(tb, CallParams::default(), f.n.now)
        .expect("new b");
    f.run(2);
    assert_eq!(sessions_of(&f.n.a, t).len(), 5);
    assert_eq!(sessions_of(&f.n.b, tb).len(), 5);
    // The control channel keeps working: HELLO after the interval would be acknowledged;
    // no retransmission storm, nothing invalid.
    assert_eq!(f.n.a.counters().invalid, Default::default());
    assert_eq!(f.n.b.counters().invalid, Default::default());
    // The restarted side's store still describes everything.
    let st = if restart_a { &f.store_a } else { &f.store_b };
    assert_eq!(st.load().expect("load").sessions.len(), 5);
    f.run(40);
    assert_eq!((f.n.a.len(), f.n.b.len()), (1, 1), "recovery tunnels gone");
    assert_eq!(tunnel_downs(&f.n.ev_a) + tunnel_downs(&f.n.ev_b), 0);
    f.n.check_emitted();
}

#[test]
fn full_recovery_v2_lns_restarts() {
    full_recovery(Version::V2, false);
}

#[test]
fn full_recovery_v2_lac_restarts() {
    full_recovery(Version::V2, true);
}

#[test]
fn full_recovery_v3_lns_restarts() {
    full_recovery(Version::V3, false);
}

#[test]
fn full_recovery_v3_lac_restarts() {
    full_recovery(Version::V3, true);
}

/// RFC 4951 §3.3: the LAC sends an ICCN and fails; the ICCN never arrives. The LNS clears its
/// half set up session in Step I; the LAC queries it with FSQ, gets Session ID 0 and clears it.
#[test]
fn iccn_lost_at_the_failure_is_found_by_fsq() {
    for v in [Version::V2, Version::V3] {
        let mut f = Fo::new(fo_cfg("lac", false, true), fo_cfg("lns", false, true));
        let t = f.setup(v, 1);
        lose_to(&mut f.n, false);
        let s =
            f.n.a
                .open_session(t, CallParams::default(), f.n.now)
                .expect("s");
        // The ICRQ goes through, the ICCN is lost.
        f.n.tamper = Some(Box::new(|from_a, d| {
            let iccn = ControlMessage::parse(&d, &ParseContext::default())
                .ok()
                .and_then(|m| m.message_type())
                == Some(MessageType::Iccn);
            (!(from_a && iccn)).then_some(d)
        }));
        f.run(1);
        assert_eq!(
            f.n.a.tunnel(t).expect("t").session_state(s),
            Some(tunnel::SessionState::Established)
        );
        f.restart(true, None);
        f.n.tamper = None;
        f.run(20);
        assert!(downs(&f.n.ev_a).contains(&(s, SessionDownReason::FailoverCleared)));
        assert_eq!(sessions_of(&f.n.a, t).len(), 1, "{v:?}");
        let tb =
            f.n.b
                .tunnels()
                .find(|x| x.role() == tunnel::Role::Normal)
                .expect("t")
                .id();
        assert_eq!(sessions_of(&f.n.b, tb).len(), 1);
        assert_eq!(
            count(&f.n.ev_b, |e| matches!(
                e,
                Event::SessionDown {
                    reason: SessionDownReason::FailoverCleared,
                    ..
                }
            )),
            1,
            "the LNS cleared its half set up session silently"
        );
        assert!(msgs(&f.n, MessageType::Cdn).is_empty(), "no CDN at all");
        assert!(fo_count(&f.fo_a, |e| matches!(e, FailoverEvent::Recovered { .. })) == 1);
        f.n.check_emitted();
    }
}

/// RFC 4951 §3.3, Appendix C: a session pair that does not match is marked stale at the remote
/// endpoint (not cleared), queried, and then cleared on both sides.
#[test]
fn mismatched_session_pair_is_marked_stale() {
    for v in [Version::V2, Version::V3] {
        let mut f = Fo::new(fo_cfg("lac", false, true), fo_cfg("lns", false, true));
        let t = f.setup(v, 2);
        let tb = f.n.b.tunnels().next().expect("t").id();
        // The LNS restarts with one session record whose ID drifted.
        f.drain();
        let mut st = f.store_b.load().expect("load");
        let orig = st.sessions[0].id;
        let peer_of_orig = st.sessions[0].peer_id;
        let drifted = if orig > 100 { orig - 1 } else { orig + 1 };
        assert!(st.sessions.iter().all(|s| s.id != drifted));
        st.sessions[0].id = drifted;
        let mut r = Registry::with_random(f.cb.clone(), crate::random::Random::seeded(77));
        r.recover(st, f.n.now).expect("recover");
        f.n.b = r;
        f.n.ev_b.clear();
        f.run(20);
        // At the LAC, its session (peer_of_orig) paired with `orig` was marked stale.
        assert!(
            f.fo_a.iter().any(|e| matches!(
                e,
                FailoverEvent::SessionStale { session, .. } if *session == peer_of_orig
            )),
            "{v:?}"
        );
        // Both ends cleared their half of the broken pair, silently; the other pair survives.
        assert!(downs(&f.n.ev_a).contains(&(peer_of_orig, SessionDownReason::FailoverCleared)));
        assert!(downs(&f.n.ev_b).contains(&(drifted, SessionDownReason::FailoverCleared)));
        assert_eq!(sessions_of(&f.n.a, t).len(), 1);
        assert_eq!(sessions_of(&f.n.b, tb).len(), 1);
        assert!(msgs(&f.n, MessageType::Cdn).is_empty());
        f.n.check_emitted();
    }
}

/// RFC 4951 §3.2.3: sequenced sessions are reset in the fast path when both ends set the D
/// bit, and torn down with a CDN by the recovery endpoint when the peer did not.
#[test]
fn data_channel_reset_and_peer_without_d_bit() {
    for peer_d in [true, false] {
        let mut ca = fo_cfg("lac", false, peer_d);
        ca.pseudowire.data_sequencing = 2;
        let mut cb = fo_cfg("lns", false, true);
        cb.pseudowire.data_sequencing = 2;
        let mut f = Fo::new(ca, cb);
        let t = f.setup(Version::V3, 2);
        lose_to(&mut f.n, false);
        f.run(1);
        f.restart(false, None);
        f.n.tamper = None;
        f.run(20);
        let resets = fo_count(&f.fo_b, |e| {
            matches!(e, FailoverEvent::ResetDataSequence { .. })
        });
        if peer_d {
            assert_eq!(resets, 2);
            assert_eq!(sessions_of(&f.n.a, t).len(), 2);
        } else {
            assert_eq!(resets, 0);
            assert_eq!(msgs(&f.n, MessageType::Cdn).len(), 2);
            assert_eq!(sessions_of(&f.n.a, t).len(), 0);
            assert!(downs(&f.n.ev_a)
                .iter()
                .all(|(_, r)| matches!(r, SessionDownReason::Peer { .. })));
        }
        assert_eq!(tunnel_downs(&f.n.ev_a), 0);
        f.n.check_emitted();
    }
}

/// RFC 4951 §3.2.1, §8: the remote endpoint refuses (here: the address is not allowed to
/// recover) with a StopCCN; the recovery endpoint clears the old tunnel and its sessions
/// silently, with events for the fast path and its store.
#[test]
fn recovery_refused_clears_the_old_tunnel() {
    for v in [Version::V2, Version::V3] {
        let mut ca = fo_cfg("lac", false, true);
        ca.recovery_peers = vec!["198.51.100.7".parse().expect("ip")];
        let mut f = Fo::new(ca, fo_cfg("lns", false, true));
        let t = f.setup(v, 2);
        f.restart(false, None);
        f.run(40);
        assert_eq!(
            fo_count(&f.fo_a, |e| matches!(
                e,
                FailoverEvent::RecoveryRefused { .. }
            )),
            1
        );
        assert_eq!(
            fo_count(&f.fo_b, |e| matches!(
                e,
                FailoverEvent::RecoveryFailed { .. }
            )),
            1
        );
        assert_eq!(
            count(&f.n.ev_b, |e| matches!(
                e,
                Event::TunnelDown {
                    reason: TunnelDownReason::RecoveryFailed(_),
                    ..
                }
            )),
            1
        );
        assert_eq!(
            count(&f.n.ev_b, |e| matches!(
                e,
                Event::SessionDown {
                    reason: SessionDownReason::FailoverCleared,
                    ..
                }
            )),
            2
        );
        let stop = msgs(&f.n, MessageType::StopCcn);
        assert_eq!(stop.len(), 1, "only the refusal");
        assert_eq!(stop[0].result_code().map(|r| r.0), Some(4));
        assert!(f.n.b.is_empty());
        assert!(f.store_b.load().expect("load").tunnels.is_empty());
        // The LAC's old tunnel is untouched by the refusal.
        assert_eq!(sessions_of(&f.n.a, t).len(), 2);
        f.n.check_emitted();
    }
}

/// RFC 4951 §3.2.1, §8: a recovery SCCRQ from someone without the old secret does not reset
/// the old tunnel (v2: the Challenge Response fails; v3: the Message Digest does not verify).
#[test]
fn spoofed_recovery_with_a_wrong_secret_is_rejected() {
    for v in [Version::V2, Version::V3] {
        let mut f = Fo::new(fo_cfg("lac", true, true), fo_cfg("lns", true, true));
        let t = f.setup(v, 2);
        f.drain();
        // The spoofer knows the IDs (and claims the right secret reference) but not the secret.
        let mut st = f.store_b.load().expect("load");
        let mut bad = f.cb.clone();
        bad.secret = Some("guess".into());
        for tr in &mut st.tunnels {
            tr.secret_ref = Some(failover::secret_ref(b"guess"));
        }
        let mut r = Registry::with_random(bad, crate::random::Random::seeded(99));
        let rep = r.recover(st, f.n.now).expect("recover");
        assert_eq!(rep.recovering.len(), 1);
        f.n.b = r;
        f.n.secret = None;
        f.run(60);
        assert_eq!(
            fo_count(&f.fo_a, |e| matches!(e, FailoverEvent::ControlReset { .. })),
            0,
            "{v:?}"
        );
        assert_eq!(tunnel_downs(&f.n.ev_a), 0);
        assert!(downs(&f.n.ev_a).is_empty());
        assert_eq!(sessions_of(&f.n.a, t).len(), 2);
        assert_eq!(
            fo_count(&f.fo_b, |e| matches!(
                e,
                FailoverEvent::RecoveryFailed { .. }
            )),
            1
        );
    }
}

/// RFC 4951 §3.2.1, Appendix B: both ends restart and recover at once; the tie breaker lets
/// one recovery tunnel win, both old tunnels are recovered and keep their sessions.
#[test]
fn simultaneous_failover_one_recovery_tunnel_wins() {
    for v in [Version::V2, Version::V3] {
        let mut f = Fo::new(fo_cfg("lac", true, true), fo_cfg("lns", true, true));
        let t = f.setup(v, 3);
        let tb = f.n.b.tunnels().next().expect("t").id();
        let (sa, sb) = (sessions_of(&f.n.a, t), sessions_of(&f.n.b, tb));
        f.restart(true, None);
        f.restart(false, None);
        f.run(30);
        let lost =
            f.n.a
                .counters()
                .failover
                .get("recovery tie breaker lost")
                .copied()
                .unwrap_or(0)
                + f.n
                    .b
                    .counters()
                    .failover
                    .get("recovery tie breaker lost")
                    .copied()
                    .unwrap_or(0);
        assert_eq!(lost, 1, "{v:?}");
        for ev in [&f.fo_a, &f.fo_b] {
            assert_eq!(
                fo_count(ev, |e| matches!(e, FailoverEvent::ControlReset { .. })),
                1
            );
            assert_eq!(
                fo_count(ev, |e| matches!(e, FailoverEvent::Recovered { .. })),
                1
            );
            assert_eq!(
                fo_count(ev, |e| matches!(e, FailoverEvent::RecoveryFailed { .. })),
                0
            );
        }
        assert_eq!(sessions_of(&f.n.a, t), sa);
        assert_eq!(sessions_of(&f.n.b, tb), sb);
        f.n.a
            .open_session(t, CallParams::default(), f.n.now)
            .expect("new");
        f.run(2);
        assert_eq!(sessions_of(&f.n.b, tb).len(), 4);
        f.n.check_emitted();
    }
}

/// RFC 4951 §3.3: before synchronisation, an ICRQ that reuses the peer ID of an established
/// session gets a CDN with our session ID, and that session is cleared.
#[test]
fn icrq_for_an_unsynchronised_session_gets_a_cdn() {
    let mut f = Fo::new(fo_cfg("lac", false, true), fo_cfg("lns", false, true));
    let t = f.setup(Version::V2, 1);
    let tb = f.n.b.tunnels().next().expect("t").id();
    let lns_s = sessions_of(&f.n.b, tb)[0];
    let lac_s = sessions_of(&f.n.a, t)[0];
    // The LAC restarts and forgets its session; its FSQs are lost, so the LNS never syncs.
    f.drain();
    let mut st = f.store_a.load().expect("load");
    st.sessions.clear();
    let mut r = Registry::with_random(f.ca.clone(), crate::random::Random::seeded(5));
    r.recover(st, f.n.now).expect("recover");
    f.n.a = r;
    f.run(5);
    assert_eq!(
        f.n.b.tunnel(tb).expect("t").session_is_synced(lns_s),
        Some(false)
    );
    // The LAC's new call reuses the old session ID (forced with a tamper on the ICRQ).
    f.n.tamper = Some(Box::new(move |from_a, d| {
        let Ok(mut m) = ControlMessage::parse(&d, &ParseContext::default()) else {
            return Some(d);
        };
        if from_a && m.message_type() == Some(MessageType::Icrq) {
            for a in &mut m.avps {
                if let Avp::AssignedSessionId(x) = &mut a.avp {
                    *x = lac_s as u16;
                }
            }
            return Some(m.to_bytes(None).expect("encodes"));
        }
        Some(d)
    }));
    let _ = f.n.a.open_session(t, CallParams::default(), f.n.now);
    f.run(3);
    let cdns = msgs(&f.n, MessageType::Cdn);
    assert!(cdns.iter().any(|m| m.assigned_session_id() == Some(lns_s)));
    assert!(sessions_of(&f.n.b, tb).is_empty());
    f.n.check_emitted();
}

/// The store sees a session before the ICCN that acknowledges it goes out, and forgets it on
/// CDN (RFC 4951 §3.2 persistence).
#[test]
fn sessions_are_persisted_before_iccn_and_forgotten_on_cdn() {
    let mut f = Fo::new(fo_cfg("lac", false, true), fo_cfg("lns", false, true));
    let t = f.setup(Version::V2, 0);
    let s =
        f.n.a
            .open_session(t, CallParams::default(), f.n.now)
            .expect("s");
    // Deliver the ICRQ and the ICRP only.
    let icrq = f.n.a.poll_transmit().expect("ICRQ");
    f.n.b.handle_datagram(Net::pa(), &icrq.1, f.n.now);
    let icrp = f.n.b.poll_transmit().expect("ICRP");
    f.n.a.handle_datagram(Net::pb(), &icrp.1, f.n.now);
    // The PutSession is queued before the ICCN is polled.
    let put = std::iter::from_fn(|| f.n.a.poll_failover_event())
        .find(|e| matches!(e, FailoverEvent::Store(StoreOp::PutSession(r)) if r.id == s));
    assert!(put.is_some());
    let iccn = f.n.a.poll_transmit().expect("ICCN");
    assert_eq!(
        ControlMessage::parse(&iccn.1, &ParseContext::default())
            .ok()
            .and_then(|m| m.message_type()),
        Some(MessageType::Iccn)
    );
    f.n.b.handle_datagram(Net::pa(), &iccn.1, f.n.now);
    f.run(1);
    f.n.a
        .set_session_app_data(t, s, Box::new(*b"app data"), f.n.now)
        .expect("app");
    f.drain();
    let st = f.store_a.load().expect("load");
    assert_eq!(st.sessions.len(), 1);
    assert_eq!(&*st.sessions[0].app, b"app data");
    f.n.a
        .close_session(t, s, ResultCode::new(3, 0, "bye"), None, f.n.now)
        .expect("cdn");
    f.run(1);
    assert!(f.store_a.load().expect("load").sessions.is_empty());
    assert!(f.store_b.load().expect("load").sessions.is_empty());
    f.n.a
        .close_tunnel(t, ResultCode::new(1, 0, "bye"), f.n.now)
        .expect("stop");
    f.run(1);
    assert!(f.store_a.load().expect("load").tunnels.is_empty());
    assert!(f.store_b.load().expect("load").tunnels.is_empty());
}
