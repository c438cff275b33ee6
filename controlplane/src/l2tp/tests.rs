//! Two registries over an in-memory link, synthetic time.

use std::time::{Duration, Instant};

use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::l2tp::validate::validate_bytes;

use super::config::L2tpConfig;
use super::*;
use crate::random::Random;

const LAC: &str = "192.0.2.1:1701";
const LNS: &str = "192.0.2.2:1701";

/// Rewrites (`Some`) or drops (`None`) a datagram in flight; the flag: it comes from `a`.
type Tamper = Box<dyn FnMut(bool, Vec<u8>) -> Option<Vec<u8>>>;

struct Net {
    tamper: Option<Tamper>,
    a: Registry,
    b: Registry,
    now: Instant,
    loss: Option<Random>,
    /// Every datagram sent, as sent (before tampering).
    emitted: Vec<(Transport, Vec<u8>)>,
    ev_a: Vec<Event>,
    ev_b: Vec<Event>,
    secret: Option<Vec<u8>>,
}

fn cfg(name: &str) -> L2tpConfig {
    L2tpConfig {
        host_name: name.into(),
        ..L2tpConfig::default()
    }
}

impl Net {
    fn new(ca: L2tpConfig, cb: L2tpConfig) -> Self {
        Self::seeded(ca, cb, 1, 2)
    }

    fn seeded(ca: L2tpConfig, cb: L2tpConfig, seed_a: u64, seed_b: u64) -> Self {
        let secret = ca.secret_bytes().map(<[u8]>::to_vec);
        Net {
            tamper: None,
            a: Registry::with_random(ca, Random::seeded(seed_a)),
            b: Registry::with_random(cb, Random::seeded(seed_b)),
            now: Instant::now(),
            loss: None,
            emitted: Vec::new(),
            ev_a: Vec::new(),
            ev_b: Vec::new(),
            secret,
        }
    }

    fn pa() -> Peer {
        Peer::udp(LAC.parse().expect("addr"))
    }
    fn pb() -> Peer {
        Peer::udp(LNS.parse().expect("addr"))
    }
    /// `a` as `b` sees it, over `transport`.
    fn pa_over(transport: Transport) -> Peer {
        match transport {
            Transport::Udp => Self::pa(),
            Transport::Ip => Peer::ip(Self::pa().addr.ip()),
        }
    }
    /// `b` as `a` sees it, over `transport`.
    fn pb_over(transport: Transport) -> Peer {
        match transport {
            Transport::Udp => Self::pb(),
            Transport::Ip => Peer::ip(Self::pb().addr.ip()),
        }
    }

    /// Moves events out of the registries.
    fn drain_events(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.ev_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.ev_b.push(e);
        }
    }

    /// Moves datagrams both ways until nothing is left, then advances to the next timer;
    /// stops after `limit` of synthetic time.
    fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        let mut iterations = 0;
        loop {
            iterations += 1;
            assert!(iterations < 100_000, "the link does not settle");
            let mut moved = true;
            let mut rounds = 0;
            while moved {
                rounds += 1;
                assert!(rounds < 10_000, "datagrams ping-pong forever");
                moved = false;
                let mut held: Vec<(bool, Peer, Vec<u8>)> = Vec::new();
                while let Some((to, d)) = self.a.poll_transmit() {
                    held.push((true, to, d));
                }
                while let Some((to, d)) = self.b.poll_transmit() {
                    held.push((false, to, d));
                }
                if let Some(rng) = &mut self.loss {
                    // 20 % loss, and reverse some pairs (reordering).
                    held.retain(|_| rng.next_u64() % 5 != 0);
                    if held.len() > 1 && rng.next_u64() % 3 == 0 {
                        held.swap(0, 1);
                    }
                }
                for (from_a, to, d) in held {
                    moved = true;
                    self.emitted.push((to.transport, d.clone()));
                    let d = match &mut self.tamper {
                        Some(f) => match f(from_a, d) {
                            Some(d) => d,
                            None => continue,
                        },
                        None => d,
                    };
                    if from_a {
                        self.b
                            .handle_datagram(Self::pa_over(to.transport), &d, self.now);
                    } else {
                        self.a
                            .handle_datagram(Self::pb_over(to.transport), &d, self.now);
                    }
                }
            }
            self.drain_events();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }

    fn check_emitted(&self) {
        assert!(!self.emitted.is_empty());
        for (transport, d) in &self.emitted {
            let d = match transport {
                Transport::Udp => &d[..],
                Transport::Ip => {
                    assert_eq!(d.get(..4), Some(&[0u8; 4][..]), "zero Session ID over IP");
                    &d[4..]
                }
            };
            if let Err(v) = validate_bytes(d, self.secret.as_deref()) {
                panic!("emitted invalid message {d:02x?}: {v}");
            }
        }
    }
}

fn count(ev: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    ev.iter().filter(|e| f(e)).count()
}

fn ups(ev: &[Event]) -> Vec<SessionUp> {
    ev.iter()
        .filter_map(|e| match e {
            Event::SessionUp(u) => Some((**u).clone()),
            _ => None,
        })
        .collect()
}

fn is_tunnel_up(e: &Event) -> bool {
    matches!(e, Event::TunnelUp { .. })
}

#[test]
fn v2_tunnel_and_incoming_calls_with_proxy_values() {
    let mut n = Net::new(cfg("lac"), cfg("lns"));
    let t =
        n.a.open_tunnel(Net::pb(), Version::V2, n.now)
            .expect("open");
    n.run(Duration::from_secs(1));
    assert_eq!(count(&n.ev_a, is_tunnel_up), 1);
    assert_eq!(count(&n.ev_b, is_tunnel_up), 1);
    let proxy = ProxyValues {
        authen_type: Some(2),
        authen_name: Some(b"user".to_vec()),
        authen_challenge: Some(vec![1; 16]),
        authen_id: Some(9),
        authen_response: Some(vec![2; 16]),
        initial_received_confreq: Some(vec![1, 4, 5, 0xd4]),
        ..ProxyValues::default()
    };
    for _ in 0..3 {
        n.a.open_session(
            t,
            CallParams {
                calling_number: b"555".to_vec(),
                proxy: proxy.clone(),
                ..CallParams::default()
            },
            n.now,
        )
        .expect("session");
    }
    n.run(Duration::from_secs(1));
    let lns = ups(&n.ev_b);
    assert_eq!(lns.len(), 3);
    assert_eq!(ups(&n.ev_a).len(), 3);
    assert_eq!(lns[0].proxy.as_deref(), Some(&proxy));
    assert_eq!(lns[0].calling_number, b"555");
    assert_eq!(lns[0].peer, Net::pa());
    assert_eq!(lns[0].version, Version::V2);
    n.check_emitted();
}

fn v3_cfg(name: &str, cookie: u8) -> L2tpConfig {
    let mut c = cfg(name);
    c.pseudowire.cookie_len = cookie;
    c
}

#[test]
fn v3_ethernet_pseudowires_with_cookies() {
    for cookie in [0u8, 4, 8] {
        let mut n = Net::new(v3_cfg("a", cookie), v3_cfg("b", cookie));
        let t =
            n.a.open_tunnel(Net::pb(), Version::V3, n.now)
                .expect("open");
        n.run(Duration::from_secs(1));
        n.a.open_session(t, CallParams::default(), n.now)
            .expect("s");
        n.run(Duration::from_secs(1));
        let (a, b) = (ups(&n.ev_a), ups(&n.ev_b));
        assert_eq!((a.len(), b.len()), (1, 1), "cookie {cookie}");
        assert_eq!(a[0].cookie_tx, b[0].cookie_rx);
        assert_eq!(a[0].cookie_rx, b[0].cookie_tx);
        assert_eq!(a[0].cookie_rx.len(), usize::from(cookie));
        assert_eq!(b[0].pw_type, Some(5));
        assert_eq!(a[0].our_ids, b[0].peer_ids);
        assert!(a[0].sublayer_rx && a[0].sublayer_tx);
        n.check_emitted();
    }
}

#[test]
fn outgoing_calls_both_versions() {
    for v in [Version::V2, Version::V3] {
        let mut n = Net::new(cfg("lns"), cfg("lac"));
        let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(1));
        n.a.open_session(
            t,
            CallParams {
                kind: CallKind::Outgoing,
                called_number: b"123".to_vec(),
                ..CallParams::default()
            },
            n.now,
        )
        .expect("s");
        n.run(Duration::from_secs(1));
        assert_eq!(ups(&n.ev_a).len(), 1, "{v:?}");
        assert_eq!(ups(&n.ev_b).len(), 1, "{v:?}");
        assert_eq!(ups(&n.ev_b)[0].call, CallKind::Outgoing);
        n.check_emitted();
    }
}

fn many(v: Version, lossy: bool) -> Net {
    // With 20 % loss each way an exchange fails about 36 % of the time, so the default five
    // retries lose a channel every few thousand messages: allow ten.
    let lossy_cfg = |name: &str| {
        let mut c = cfg(name);
        if lossy {
            c.retransmit.max_retries = 10;
        }
        c
    };
    let mut n = Net::new(lossy_cfg("a"), lossy_cfg("b"));
    if lossy {
        n.loss = Some(Random::seeded(42));
    }
    let ts: Vec<u32> = (0..100)
        .map(|_| n.a.open_tunnel(Net::pb(), v, n.now).expect("open"))
        .collect();
    n.run(Duration::from_secs(if lossy { 90 } else { 5 }));
    assert_eq!(count(&n.ev_a, is_tunnel_up), 100, "{v:?}");
    for &t in &ts {
        for _ in 0..10 {
            n.a.open_session(t, CallParams::default(), n.now)
                .expect("s");
        }
    }
    n.run(Duration::from_secs(if lossy { 90 } else { 5 }));
    assert_eq!(ups(&n.ev_a).len(), 1000, "{v:?}");
    assert_eq!(ups(&n.ev_b).len(), 1000, "{v:?}");
    n
}

#[test]
fn hundred_tunnels_ten_sessions_torn_down_cleanly() {
    for v in [Version::V2, Version::V3] {
        let mut n = many(v, false);
        let ts: Vec<u32> = n.a.tunnels().map(|t| t.id()).collect();
        for &t in &ts {
            for s in n.a.tunnel(t).expect("t").established_sessions() {
                n.a.close_session(t, s, ResultCode::new(3, 0, "admin"), None, n.now)
                    .expect("cdn");
            }
        }
        n.run(Duration::from_secs(1));
        let downs = count(&n.ev_b, |e| {
            matches!(
                e,
                Event::SessionDown {
                    reason: SessionDownReason::Peer { .. },
                    ..
                }
            )
        });
        assert_eq!(downs, 1000);
        for &t in &ts {
            n.a.close_tunnel(t, ResultCode::new(1, 0, "bye"), n.now)
                .expect("stop");
        }
        n.run(Duration::from_secs(60));
        assert!(n.a.is_empty() && n.b.is_empty(), "{v:?}");
        assert_eq!(
            count(&n.ev_b, |e| matches!(e, Event::TunnelDown { .. })),
            100
        );
        n.check_emitted();
    }
}

#[test]
fn lossy_link_everything_comes_up_and_stays_up() {
    for v in [Version::V2, Version::V3] {
        let mut n = many(v, true);
        n.run(Duration::from_secs(200));
        let c = n.a.counters().retransmissions + n.b.counters().retransmissions;
        println!("{v:?}: retransmissions with 20% loss: {c}");
        assert!(c > 0);
        assert_eq!(count(&n.ev_a, |e| matches!(e, Event::TunnelDown { .. })), 0);
        assert_eq!(n.a.len(), 100);
    }
}

#[path = "tests_rfc.rs"]
mod rfc;

#[path = "tests_failover.rs"]
mod failover_tests;

#[path = "tests_resume.rs"]
mod resume_tests;
