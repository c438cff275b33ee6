//! Server and client links connected in memory; deterministic time.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use l2xdp_wire::ppp::{
    chap_md5_response, frame::protocol, CpBody, FrameRepr, LcpOption, LcpPacket, PppBody, PppPacket,
};
use proptest::prelude::*;

use super::*;
use crate::random::Random;

const S_SEED: u64 = 0x5eed_0001;
const C_SEED: u64 = 0x5eed_0002;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn server_config(auth: AuthMethod) -> PppConfig {
    PppConfig {
        auth: vec![auth],
        hostname: "lns".into(),
        echo_interval: Duration::from_secs(10),
        ipcp: IpcpConfig {
            local_address: Ipv4Addr::new(192, 0, 2, 1),
            pool: vec!["10.0.0.0/29".parse().expect("range")],
            dns: vec![Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)],
            ..IpcpConfig::default()
        },
        // Off by default (most PPP peers would Protocol-Reject it): these tests run it.
        ipv6cp: Ipv6cpConfig {
            enabled: true,
            interface_id: None,
        },
        ..PppConfig::default()
    }
}

fn client_config() -> PppConfig {
    let mut c = PppConfig {
        auth: vec![AuthMethod::Pap, AuthMethod::Chap],
        echo_interval: Duration::ZERO,
        ..PppConfig::default()
    };
    // Both off by default; these tests exercise DNS (RFC 1877) and IPv6CP.
    c.ipcp.request_dns = true;
    c.ipv6cp.enabled = true;
    c
}

fn creds() -> Arc<dyn Credentials> {
    let mut c = MemoryCredentials::new();
    c.insert("alice", "s3cret", None);
    c.insert("bob", "hunter2", Some(Ipv4Addr::new(192, 0, 2, 77)));
    Arc::new(c)
}

fn pool_of(ranges: &[&str]) -> Arc<Mutex<Ipv4Pool>> {
    let r: Vec<Ipv4Range> = ranges.iter().map(|s| s.parse().expect("range")).collect();
    Arc::new(Mutex::new(Ipv4Pool::new(&r, &[]).expect("pool")))
}

/// Two links wired back to back.
struct Pair {
    s: Link,
    c: Link,
    now: Instant,
    /// Drop every n-th frame (either direction).
    drop_every: Option<usize>,
    /// Deliver nothing from the client to the server.
    mute_client: bool,
    sent: [usize; 2],
    log: Vec<String>,
    s_events: Vec<Event>,
    c_events: Vec<Event>,
}

impl Pair {
    fn new(scfg: PppConfig, ccfg: PppConfig, user: &str, pw: &str) -> Pair {
        let now = Instant::now();
        let pool = pool_of(&["10.0.0.0/29"]);
        Self::with(scfg, ccfg, user, pw, pool, now)
    }

    fn with(
        scfg: PppConfig,
        ccfg: PppConfig,
        user: &str,
        pw: &str,
        pool: Arc<Mutex<Ipv4Pool>>,
        now: Instant,
    ) -> Pair {
        let s = Link::server(
            Arc::new(scfg),
            creds(),
            Some(pool),
            Random::seeded(S_SEED),
            now,
        );
        let c = Link::client(
            Arc::new(ccfg),
            user,
            pw.as_bytes(),
            Random::seeded(C_SEED),
            now,
        );
        Pair {
            s,
            c,
            now,
            drop_every: None,
            mute_client: false,
            sent: [0; 2],
            log: Vec::new(),
            s_events: Vec::new(),
            c_events: Vec::new(),
        }
    }

    /// Whether the next frame is lost: every n-th frame on the link, counting both
    /// directions (`dir` 0: server to client).
    fn dropped(&mut self, dir: usize) -> bool {
        self.sent[dir] += 1;
        let total = self.sent[0] + self.sent[1];
        self.drop_every.is_some_and(|n| total.is_multiple_of(n))
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(f) = self.s.poll_transmit() {
            moved = true;
            if !self.dropped(0) {
                self.log.push(format!("S>C {}", hex(&f)));
                self.c.handle_frame(&f, self.now);
            }
        }
        while let Some(f) = self.c.poll_transmit() {
            moved = true;
            if !self.dropped(1) && !self.mute_client {
                self.log.push(format!("C>S {}", hex(&f)));
                self.s.handle_frame(&f, self.now);
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.s_events.push(e);
        }
        while let Some(e) = self.c.poll_event() {
            self.c_events.push(e);
        }
        moved
    }

    /// Runs until `stop` holds or nothing is left to do before `limit` from now.
    fn run(&mut self, limit: Duration, stop: impl Fn(&Pair) -> bool) {
        let end = self.now + limit;
        loop {
            while self.step() {}
            if stop(self) {
                return;
            }
            let next = [self.s.poll_timeout(), self.c.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.s.handle_timeout(self.now);
                    self.c.handle_timeout(self.now);
                }
                _ => return,
            }
        }
    }

    fn run_to_up(&mut self) {
        self.run(Duration::from_secs(120), |p| p.s.is_up() && p.c.is_up());
    }
}

fn up_of(events: &[Event]) -> Vec<LinkUp> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Up(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

fn lcp_frame(p: &LcpPacket) -> Vec<u8> {
    let pkt = PppPacket {
        frame: FrameRepr::full(protocol::LCP),
        body: PppBody::Lcp(p.clone()),
    };
    let mut b = vec![0u8; pkt.emit_len()];
    pkt.emit(&mut b).expect("emits");
    b
}

fn check_up(p: &Pair, user: &str) -> (LinkUp, LinkUp) {
    let s = up_of(&p.s_events);
    let c = up_of(&p.c_events);
    assert_eq!(
        (s.len(), c.len()),
        (1, 1),
        "{:?} {:?}",
        p.s_events,
        p.c_events
    );
    check_last_up(p, user)
}

/// Both links are up now; checks the values of the last Up of each.
fn check_last_up(p: &Pair, user: &str) -> (LinkUp, LinkUp) {
    assert!(
        p.s.is_up() && p.c.is_up(),
        "{:?} {:?}",
        p.s_events,
        p.c_events
    );
    let (Some(s), Some(c)) = (up_of(&p.s_events).pop(), up_of(&p.c_events).pop()) else {
        panic!("no Up: {:?} {:?}", p.s_events, p.c_events);
    };
    assert_eq!(s.user.as_deref(), Some(user));
    assert_eq!(c.user.as_deref(), Some(user));
    assert_eq!(s.local_ipv4, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(s.peer_ipv4, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(c.local_ipv4, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(c.peer_ipv4, Some(Ipv4Addr::new(192, 0, 2, 1)));
    let dns = [
        Some(Ipv4Addr::new(192, 0, 2, 53)),
        Some(Ipv4Addr::new(192, 0, 2, 54)),
    ];
    assert_eq!((s.dns, c.dns), (dns, dns));
    let (s6, c6) = (s.ipv6.expect("server IPv6"), c.ipv6.expect("client IPv6"));
    assert_eq!((s6.0, s6.1), (c6.1, c6.0));
    assert_ne!(s6.0, s6.1);
    assert_ne!(s6.0, [0; 8]);
    assert_eq!((s.local_magic, s.peer_magic), (c.peer_magic, c.local_magic));
    assert_ne!(s.local_magic, 0);
    assert_eq!(
        (s.peer_mru, s.local_mru, s.pfc, s.acfc),
        (1500, 1500, false, false)
    );
    (s, c)
}

#[test]
fn pap_reaches_up_with_golden_transcript() {
    let mut p = Pair::new(
        server_config(AuthMethod::Pap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    check_up(&p, "alice");
    assert_eq!(p.s.phase(), Phase::Network);
    let transcript = p.log.join("\n");
    println!("{transcript}");
    assert_eq!(transcript, GOLDEN_PAP.trim());
}

/// The whole exchange with the seeds above. Line by line: the server's LCP Configure-Request
/// (Auth PAP, Magic), the client's (Magic), both Acks; PAP Authenticate-Request and -Ack; the
/// server's IPCP Configure-Request (192.0.2.1) and IPv6CP Configure-Request; the client's IPCP
/// request (0.0.0.0 + DNS 0.0.0.0) Nak'ed with 10.0.0.1 and the DNS servers, and so on.
const GOLDEN_PAP: &str = "
S>C ff03c02101cd000e0304c023050602b56646
C>S ff03c021015c000a0506b23d04b0
C>S ff03c02102cd000e0304c023050602b56646
S>C ff03c021025c000a0506b23d04b0
C>S ff03c0230174001105616c69636506733363726574
S>C ff03c0230274000d084c6f67696e206f6b
S>C ff0380210178000a0306c0000201
S>C ff038057017a000e010a209c6a601b7cdfd9
C>S ff03802101180016030600000000810600000000830600000000
C>S ff038057015a000e010a4bb66249c806dbba
C>S ff0380210278000a0306c0000201
C>S ff038057027a000e010a209c6a601b7cdfd9
S>C ff0380210318001603060a0000018106c00002358306c0000236
S>C ff038057025a000e010a4bb66249c806dbba
C>S ff0380210119001603060a0000018106c00002358306c0000236
S>C ff0380210219001603060a0000018106c00002358306c0000236
";

#[test]
fn server_lcp_configure_request_golden() {
    let now = Instant::now();
    let mut s = Link::server(
        Arc::new(server_config(AuthMethod::Chap)),
        creds(),
        None,
        Random::seeded(S_SEED),
        now,
    );
    let f = s.poll_transmit().expect("a Configure-Request at once");
    // ff03 c021 | Configure-Request, Length 15 | Auth-Protocol CHAP MD5 | Magic-Number.
    let p = PppPacket::parse(&f).expect("parses");
    let PppBody::Lcp(lcp) = p.body else {
        panic!("not LCP")
    };
    let CpBody::ConfigureRequest { options } = &lcp.body else {
        panic!("not a Configure-Request")
    };
    assert!(matches!(
        options[..],
        [
            LcpOption::AuthProtocol(l2xdp_wire::ppp::AuthProtocol::ChapMd5),
            LcpOption::MagicNumber(_)
        ]
    ));
    println!("{}", hex(&f));
    assert_eq!(hex(&f), GOLDEN_LCP_CONFREQ);
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(3)));
}

const GOLDEN_LCP_CONFREQ: &str = "ff03c02101cd000f0305c22305050602b56646";

#[test]
fn chap_reaches_up() {
    let mut p = Pair::new(
        server_config(AuthMethod::Chap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    check_up(&p, "alice");
    // The server's CHAP Challenge went out with its hostname.
    assert!(p.log.iter().any(|l| l.starts_with("S>C ff03c223")));
}

#[test]
fn client_naks_unacceptable_auth_and_server_falls_back() {
    // The server prefers CHAP, the client only does PAP: Nak, then PAP.
    let mut scfg = server_config(AuthMethod::Chap);
    scfg.auth = vec![AuthMethod::Chap, AuthMethod::Pap];
    let mut ccfg = client_config();
    ccfg.auth = vec![AuthMethod::Pap];
    let mut p = Pair::new(scfg, ccfg, "alice", "s3cret");
    p.run_to_up();
    check_up(&p, "alice");
    assert!(
        p.log.iter().any(|l| l.starts_with("C>S ff03c02103")),
        "a Nak"
    );
    assert!(p.log.iter().any(|l| l.starts_with("C>S ff03c02301")), "PAP");
}

#[test]
fn wrong_password_fails_and_terminates() {
    for method in [AuthMethod::Pap, AuthMethod::Chap] {
        let mut p = Pair::new(server_config(method), client_config(), "alice", "wrong");
        p.run(Duration::from_secs(60), |p| p.s.is_dead() && p.c.is_dead());
        assert_eq!(
            p.s_events,
            vec![
                Event::AuthFailed {
                    user: Some("alice".into())
                },
                Event::Down {
                    reason: DownReason::AuthFailed
                }
            ],
            "{method:?}"
        );
        assert!(p.c_events.contains(&Event::AuthFailed {
            user: Some("alice".into())
        }));
        // The server sent an LCP Terminate-Request.
        assert!(p.log.iter().any(|l| l.starts_with("S>C ff03c02105")));
        assert_eq!(p.s.counters().auth_failures, 1);
        assert!(p.c.is_dead());
    }
}

#[test]
fn unknown_user_fails() {
    let mut p = Pair::new(
        server_config(AuthMethod::Chap),
        client_config(),
        "mallory",
        "x",
    );
    p.run(Duration::from_secs(60), |p| p.s.is_dead());
    assert_eq!(
        p.s_events.first(),
        Some(&Event::AuthFailed {
            user: Some("mallory".into())
        })
    );
}

#[test]
fn fixed_address_from_users_file() {
    let mut p = Pair::new(
        server_config(AuthMethod::Pap),
        client_config(),
        "bob",
        "hunter2",
    );
    p.run_to_up();
    let s = up_of(&p.s_events);
    assert_eq!(s[0].peer_ipv4, Some(Ipv4Addr::new(192, 0, 2, 77)));
    assert_eq!(
        up_of(&p.c_events)[0].local_ipv4,
        Some(Ipv4Addr::new(192, 0, 2, 77))
    );
}

#[test]
fn pool_exhaustion_terminates_and_release_frees() {
    let now = Instant::now();
    let pool = pool_of(&["10.0.0.9"]);
    let mut a = Pair::with(
        server_config(AuthMethod::Pap),
        client_config(),
        "alice",
        "s3cret",
        pool.clone(),
        now,
    );
    a.run_to_up();
    assert_eq!(
        up_of(&a.s_events)[0].peer_ipv4,
        Some(Ipv4Addr::new(10, 0, 0, 9))
    );
    assert_eq!(pool.lock().expect("pool").available(), 0);
    let mut b = Pair::with(
        server_config(AuthMethod::Pap),
        client_config(),
        "alice",
        "s3cret",
        pool.clone(),
        now,
    );
    b.run(Duration::from_secs(60), |p| p.s.is_dead());
    assert_eq!(
        b.s_events,
        vec![Event::Down {
            reason: DownReason::PoolExhausted
        }]
    );
    assert!(
        b.log.iter().any(|l| l.starts_with("S>C ff03c02105")),
        "Terminate-Request"
    );
    // Closing the first link returns its address.
    let t = a.now;
    a.s.close(DownReason::Administrative, t);
    a.run(Duration::from_secs(60), |p| p.s.is_dead() && p.c.is_dead());
    assert_eq!(
        a.s_events.last(),
        Some(&Event::Down {
            reason: DownReason::Administrative
        })
    );
    assert_eq!(pool.lock().expect("pool").available(), 1);
    assert!(a.c.is_dead(), "the client saw the Terminate-Request");
}

#[test]
fn lossy_link_converges_via_restart_timers() {
    for n in [3, 4, 5] {
        for method in [AuthMethod::Pap, AuthMethod::Chap] {
            let mut p = Pair::new(server_config(method), client_config(), "alice", "s3cret");
            p.drop_every = Some(n);
            p.run_to_up();
            check_last_up(&p, "alice");
            // Heavy loss may make an Opened side renegotiate (RFC 1661 §4.1), never die.
            assert!(p
                .s_events
                .iter()
                .chain(&p.c_events)
                .all(|e| !matches!(e, Event::Down { .. })));
            assert!(p.s.counters().retransmissions + p.c.counters().retransmissions > 0);
        }
    }
}

#[test]
fn late_lcp_configure_request_renegotiates_with_same_address() {
    let mut p = Pair::new(
        server_config(AuthMethod::Chap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    let (first, _) = check_up(&p, "alice");
    // The client's peer restarts LCP (RFC 1661 §4.3, RCR+ in Opened).
    let req = lcp_frame(&LcpPacket {
        identifier: 200,
        body: CpBody::ConfigureRequest {
            options: vec![LcpOption::MagicNumber(first.peer_magic)],
        },
    });
    let t = p.now;
    p.s.handle_frame(&req, t);
    assert!(!p.s.is_up());
    assert_eq!(p.s.phase(), Phase::Establish);
    p.run(Duration::from_secs(120), |p| {
        up_of(&p.s_events).len() == 2 && p.c.is_up()
    });
    let ups = up_of(&p.s_events);
    assert_eq!(ups.len(), 2, "{:?}", p.s_events);
    assert!(matches!(p.s_events[1], Event::NetworkDown));
    assert_eq!(ups[1].peer_ipv4, first.peer_ipv4);
    assert_eq!(ups[1].user.as_deref(), Some("alice"));
    assert_eq!(p.s.counters().renegotiations, 1);
    assert!(p.s_events.iter().all(|e| !matches!(e, Event::Down { .. })));
}

#[test]
fn echo_keepalive_and_dead_peer() {
    let mut p = Pair::new(
        server_config(AuthMethod::Pap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    // An answering peer keeps the link up.
    let t = p.now + Duration::from_secs(100);
    p.run(Duration::from_secs(100), |p| p.now >= t);
    assert!(p.s.is_up());
    let replies = p.s.counters().echo_replies_received;
    assert!(replies >= 9, "{replies}");
    let sent = p.s.counters().echo_requests_sent;
    // A silent one is dead after echo_failures (3) unanswered requests.
    p.mute_client = true;
    p.run(Duration::from_secs(200), |p| p.s.is_dead());
    assert_eq!(p.s.counters().echo_requests_sent - sent, 3);
    assert_eq!(
        p.s_events.last(),
        Some(&Event::Down {
            reason: DownReason::DeadPeer
        })
    );
    assert_eq!(p.s.poll_timeout(), None);
}

#[test]
fn code_reject_for_unknown_lcp_code() {
    let mut p = Pair::new(
        server_config(AuthMethod::Pap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    let t = p.now;
    p.s.handle_frame(
        &[0xff, 0x03, 0xc0, 0x21, 0x0c, 0x05, 0x00, 0x05, 0xaa, 0xee],
        t,
    );
    let f = p.s.poll_transmit().expect("a Code-Reject");
    assert_eq!(hex(&f[..4]), "ff03c021");
    assert_eq!(f[4], 7, "Code-Reject");
    assert_eq!(
        hex(&f[6..]),
        "00090c050005aa",
        "Length 9, the packet without padding"
    );
    assert_eq!(p.s.counters().code_rejects_sent, 1);
    assert!(p.s.is_up(), "RUC keeps the state");
    // Unknown IPCP codes are Code-Rejected by IPCP.
    p.s.handle_frame(&[0x80, 0x21, 0x09, 0x01, 0x00, 0x04], t);
    let f = p.s.poll_transmit().expect("an IPCP Code-Reject");
    assert_eq!((hex(&f[..4]), f[4]), ("ff038021".to_string(), 7));
}

#[test]
fn protocol_reject_for_ccp() {
    let mut p = Pair::new(
        server_config(AuthMethod::Pap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    let t = p.now;
    p.s.handle_frame(&[0xff, 0x03, 0x80, 0xfd, 0x01, 0x01, 0x00, 0x04], t);
    let f = p.s.poll_transmit().expect("a Protocol-Reject");
    assert_eq!(hex(&f[..5]), "ff03c02108");
    assert_eq!(hex(&f[6..]), "000a80fd01010004");
    assert_eq!(p.s.counters().protocol_rejects_sent, 1);
    assert!(p.s.is_up());
    // Before LCP is open, other protocols are silently discarded (RFC 1661 §3.4).
    let mut s = Link::server(
        Arc::new(server_config(AuthMethod::Pap)),
        creds(),
        None,
        Random::seeded(1),
        t,
    );
    while s.poll_transmit().is_some() {}
    s.handle_frame(&[0xff, 0x03, 0x80, 0xfd, 0x01, 0x01, 0x00, 0x04], t);
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.counters().discarded, 1);
}

#[test]
fn ipv6cp_rejected_by_client_up_with_ipv4_only() {
    let mut ccfg = client_config();
    ccfg.ipv6cp.enabled = false;
    let mut p = Pair::new(server_config(AuthMethod::Chap), ccfg, "alice", "s3cret");
    p.run_to_up();
    let s = up_of(&p.s_events);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].ipv6, None);
    assert_eq!(s[0].peer_ipv4, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(p.c.counters().protocol_rejects_sent, 1);
    assert_eq!(p.s.ipv6cp_state(), Some(State::Starting));
}

#[test]
fn pfc_acfc_negotiated_and_reported() {
    let mut scfg = server_config(AuthMethod::Pap);
    scfg.pfc = true;
    scfg.acfc = true;
    let mut ccfg = client_config();
    ccfg.pfc = true;
    ccfg.acfc = true;
    ccfg.mru = 1400;
    let mut p = Pair::new(scfg, ccfg, "alice", "s3cret");
    p.run_to_up();
    let s = &up_of(&p.s_events)[0];
    assert!(s.pfc && s.acfc);
    assert_eq!(s.peer_mru, 1400);
    assert_eq!(up_of(&p.c_events)[0].local_mru, 1400);
}

fn proxy_chap(response_secret: &[u8]) -> Proxy {
    let challenge = [0x42u8; 16];
    Proxy {
        initial_received_lcp: Some(vec![0x05, 0x06, 0x11, 0x22, 0x33, 0x44]),
        last_sent_lcp: Some(vec![
            0x03, 0x05, 0xc2, 0x23, 0x05, // CHAP MD5
            0x05, 0x06, 0x55, 0x66, 0x77, 0x88, // Magic
        ]),
        last_received_lcp: Some(vec![0x05, 0x06, 0x11, 0x22, 0x33, 0x44]),
        authen_type: Some(2),
        authen_name: Some(b"alice".to_vec()),
        authen_challenge: Some(challenge.to_vec()),
        authen_id: Some(7),
        authen_response: Some(chap_md5_response(7, response_secret, &challenge).to_vec()),
    }
}

#[test]
fn proxy_lcp_and_chap_accepted_without_lcp_negotiation() {
    let now = Instant::now();
    let pool = pool_of(&["10.0.0.0/29"]);
    let mut s = Link::server_with_proxy(
        Arc::new(server_config(AuthMethod::Chap)),
        creds(),
        Some(pool),
        &proxy_chap(b"s3cret"),
        Random::seeded(S_SEED),
        now,
    );
    assert_eq!(s.lcp_state(), State::Opened);
    assert_eq!(s.phase(), Phase::Network);
    assert_eq!(s.user(), Some("alice"));
    let frames: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    // CHAP Success with the proxied ID, then the NCPs; no LCP at all.
    assert_eq!(
        hex(&frames[0]),
        "ff03c22303070000b57656c636f6d65".replace("0000b", "000b")
    );
    assert!(frames.iter().all(|f| !hex(f).starts_with("ff03c021")));
    assert!(hex(&frames[1]).starts_with("ff03802101"));
    assert!(hex(&frames[2]).starts_with("ff03805701"));
    // Echo-Requests carry the proxied magic number.
    let t = now + Duration::from_secs(10);
    s.handle_frame(
        &[
            0xff, 0x03, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 0x11, 0x22, 0x33, 0x44,
        ],
        t,
    );
    let reply = s.poll_transmit().expect("Echo-Reply");
    assert_eq!(hex(&reply), "ff03c0210a01000855667788");
}

#[test]
fn proxy_chap_with_bad_response_fails() {
    let now = Instant::now();
    let mut s = Link::server_with_proxy(
        Arc::new(server_config(AuthMethod::Chap)),
        creds(),
        None,
        &proxy_chap(b"wrong"),
        Random::seeded(S_SEED),
        now,
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::AuthFailed {
            user: Some("alice".into())
        })
    );
    let f = s.poll_transmit().expect("CHAP Failure");
    assert_eq!(hex(&f[..6]), "ff03c2230407");
    assert_eq!(s.phase(), Phase::Terminate);
}

#[test]
fn unfit_proxy_lcp_falls_back_to_negotiation() {
    let now = Instant::now();
    // The peer's proxied request asks the LNS to authenticate itself: not acceptable.
    let mut proxy = proxy_chap(b"s3cret");
    proxy.last_received_lcp = Some(vec![0x03, 0x04, 0xc0, 0x23]);
    let mut s = Link::server_with_proxy(
        Arc::new(server_config(AuthMethod::Chap)),
        creds(),
        None,
        &proxy,
        Random::seeded(S_SEED),
        now,
    );
    assert_eq!(s.lcp_state(), State::ReqSent);
    assert!(hex(&s.poll_transmit().expect("LCP")).starts_with("ff03c02101"));
    // Proxied LCP without proxied authentication: LCP skipped, our own Challenge.
    let mut proxy = proxy_chap(b"s3cret");
    proxy.authen_type = None;
    let mut s = Link::server_with_proxy(
        Arc::new(server_config(AuthMethod::Chap)),
        creds(),
        None,
        &proxy,
        Random::seeded(S_SEED),
        now,
    );
    assert_eq!(s.phase(), Phase::Authenticate);
    assert!(hex(&s.poll_transmit().expect("Challenge")).starts_with("ff03c22301"));
}

#[test]
fn garbage_is_counted_not_fatal() {
    let now = Instant::now();
    let mut s = Link::server(
        Arc::new(server_config(AuthMethod::Pap)),
        creds(),
        None,
        Random::seeded(3),
        now,
    );
    for f in [
        &[][..],
        &[0xff],
        &[0xff, 0x03, 0xc0],
        &[
            0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x07, 0x01, 0x03, 0x05,
        ],
        &[0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x40],
    ] {
        s.handle_frame(f, now);
    }
    assert_eq!(s.counters().malformed, 4);
    assert_eq!(s.counters().discarded, 1, "0xff is a compressed protocol");
    assert_eq!(s.lcp_state(), State::ReqSent);
}

#[test]
fn link_size() {
    let size = std::mem::size_of::<Link>();
    println!("size_of::<Link>() = {size} bytes");
    assert!(size <= 1280, "{size}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_frames_to_an_up_link_never_panic(
        frames in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    vec![0xff, 0x03, 0xc0, 0x21], vec![0xff, 0x03, 0x80, 0x21],
                    vec![0x80, 0x57], vec![0xc0, 0x23], vec![0xc2, 0x23], vec![0x80, 0xfd],
                ]),
                1u8..=14,
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..24),
            ),
            1..12,
        ),
    ) {
        let mut p = Pair::new(server_config(AuthMethod::Chap), client_config(), "alice", "s3cret");
        p.run_to_up();
        prop_assert!(p.s.is_up());
        for (prefix, code, id, data) in frames {
            let mut f = prefix;
            let len = data.len() + 4;
            f.extend_from_slice(&[code, id, (len >> 8) as u8, len as u8]);
            f.extend_from_slice(&data);
            let t = p.now;
            p.s.handle_frame(&f, t);
            p.run(Duration::from_secs(5), |_| false);
            prop_assert!(p.s.poll_timeout().is_none_or(|t| t > p.now));
        }
    }

    #[test]
    fn random_frames_never_panic(
        frames in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    vec![0xff, 0x03, 0xc0, 0x21], vec![0xff, 0x03, 0x80, 0x21],
                    vec![0xff, 0x03, 0x80, 0x57], vec![0xc0, 0x23], vec![0xc2, 0x23],
                    vec![0x80, 0xfd], vec![0x21], vec![],
                ]),
                1u8..=14,
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..40),
                any::<bool>(),
                0u64..5000,
            ),
            1..30,
        ),
    ) {
        let mut now = Instant::now();
        let mut s = Link::server(Arc::new(server_config(AuthMethod::Chap)), creds(), Some(pool_of(&["10.0.0.0/30"])), Random::seeded(9), now);
        for (prefix, code, id, data, good_len, dt) in frames {
            let mut f = prefix;
            let len = if good_len { data.len() + 4 } else { data.len() * 3 % 70 };
            f.extend_from_slice(&[code, id, (len >> 8) as u8, len as u8]);
            f.extend_from_slice(&data);
            s.handle_frame(&f, now);
            now += Duration::from_millis(dt);
            s.handle_timeout(now);
            // One deadline, always in the future: no timer storm.
            prop_assert!(s.poll_timeout().is_none_or(|t| t > now));
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        }
    }
}

/// Both links of an Up pair rebuilt from their saved state, as a restarted LNS (RFC 4951)
/// and, for the test, its subscriber. The restored server uses a fresh pool (a new process).
fn restored_pair(auth: AuthMethod) -> (Pair, LinkState, LinkState, Arc<Mutex<Ipv4Pool>>) {
    let mut p = Pair::new(server_config(auth), client_config(), "alice", "s3cret");
    p.run_to_up();
    let (s_up, c_up) = check_up(&p, "alice");
    let ss = p.s.state().expect("server up");
    let cs = p.c.state().expect("client up");
    assert_eq!(ss.link_up(), s_up);
    assert_eq!(cs.link_up(), c_up);
    assert_eq!(ss.auth, Some(auth));
    // Through JSON, as the node persists it.
    let ss: LinkState =
        serde_json::from_value(serde_json::to_value(&ss).expect("json")).expect("decode");
    let pool = pool_of(&["10.0.0.0/29"]);
    let now = p.now;
    p.s = Link::restore_server(
        Arc::new(server_config(auth)),
        creds(),
        Some(pool.clone()),
        &ss,
        Random::seeded(S_SEED ^ 1),
        now,
    )
    .expect("restored");
    p.c = Link::restore_client(
        Arc::new(client_config()),
        "alice",
        b"s3cret",
        &cs,
        Random::seeded(C_SEED ^ 1),
        now,
    );
    p.s_events.clear();
    p.c_events.clear();
    p.log.clear();
    (p, ss, cs, pool)
}

#[test]
fn restored_link_is_up_silently_and_keeps_its_address() {
    let (mut p, ss, _cs, pool) = restored_pair(AuthMethod::Chap);
    assert!(p.s.is_up() && p.c.is_up());
    assert_eq!(p.s.phase(), Phase::Network);
    assert_eq!(p.s.lcp_state(), State::Opened);
    assert_eq!(p.s.ipcp_state(), Some(State::Opened));
    assert_eq!(p.s.ipv6cp_state(), Some(State::Opened));
    assert_eq!(p.s.user(), Some("alice"));
    assert_eq!(p.s.state().as_ref(), Some(&ss), "the same state again");
    // Nothing is renegotiated: no frame, no event.
    assert_eq!(p.s.poll_transmit(), None);
    assert_eq!(p.s.poll_event(), None);
    // The subscriber's address is reserved again: the pool hands out another one.
    let addr = ss.peer_ipv4.expect("address");
    assert!(pool.lock().expect("pool").is_leased(addr));
    let other = pool.lock().expect("pool").allocate().expect("free");
    assert_ne!(other, addr);
    // A second restore of the same state finds the address taken.
    let again = Link::restore_server(
        Arc::new(server_config(AuthMethod::Chap)),
        creds(),
        Some(pool.clone()),
        &ss,
        Random::seeded(7),
        p.now,
    );
    assert_eq!(again.err(), Some(DownReason::AddressInUse));
    // Dropping the restored link frees it.
    drop(p);
    assert!(!pool.lock().expect("pool").is_leased(addr));
}

#[test]
fn restored_link_answers_echo_with_saved_magic_and_keeps_alive() {
    let (mut p, ss, cs, _pool) = restored_pair(AuthMethod::Pap);
    let req = lcp_frame(&LcpPacket {
        identifier: 42,
        body: CpBody::EchoRequest {
            magic: cs.local_magic,
            data: b"ping".to_vec(),
        },
    });
    let t = p.now;
    p.s.handle_frame(&req, t);
    let reply = p.s.poll_transmit().expect("an Echo-Reply");
    let expected = lcp_frame(&LcpPacket {
        identifier: 42,
        body: CpBody::EchoReply {
            magic: ss.local_magic,
            data: b"ping".to_vec(),
        },
    });
    assert_eq!(hex(&reply), hex(&expected));
    // Its own keepalives are answered by the (restored) client: the link stays up.
    let end = p.now + Duration::from_secs(100);
    p.run(Duration::from_secs(100), |p| p.now >= end);
    assert!(p.s.is_up() && p.c.is_up());
    assert!(p.s.counters().echo_replies_received >= 9);
    assert!(p.s_events.is_empty(), "{:?}", p.s_events);
    // Only echoes went over the link.
    assert!(!p.log.is_empty());
    assert!(
        p.log
            .iter()
            .all(|l| l.contains(" ff03c02109") || l.contains(" ff03c0210a")),
        "{:?}",
        p.log
    );
}

#[test]
fn restored_link_terminates_and_releases_the_address() {
    let (mut p, ss, _cs, pool) = restored_pair(AuthMethod::Chap);
    let t = p.now;
    p.c.close(DownReason::Administrative, t);
    p.run(Duration::from_secs(60), |p| p.s.is_dead() && p.c.is_dead());
    assert!(p.s.is_dead());
    assert_eq!(
        p.s_events.last(),
        Some(&Event::Down {
            reason: DownReason::PeerTerminated
        })
    );
    let addr = ss.peer_ipv4.expect("address");
    assert!(!pool.lock().expect("pool").is_leased(addr));
}

#[test]
fn restored_link_renegotiates_with_same_magic_user_and_address() {
    let (mut p, ss, cs, _pool) = restored_pair(AuthMethod::Chap);
    // The subscriber restarts LCP.
    let req = lcp_frame(&LcpPacket {
        identifier: 200,
        body: CpBody::ConfigureRequest {
            options: vec![LcpOption::MagicNumber(cs.local_magic)],
        },
    });
    let t = p.now;
    p.s.handle_frame(&req, t);
    assert!(!p.s.is_up());
    p.run(Duration::from_secs(120), |p| {
        up_of(&p.s_events).len() == 1 && p.c.is_up()
    });
    assert!(matches!(p.s_events[0], Event::NetworkDown));
    let ups = up_of(&p.s_events);
    assert_eq!(ups.len(), 1, "{:?}", p.s_events);
    // CHAP again with the restored client's secret, the same address, our magic asked for
    // again.
    assert_eq!(ups[0].user.as_deref(), Some("alice"));
    assert_eq!(ups[0].peer_ipv4, ss.peer_ipv4);
    assert_eq!(ups[0].local_magic, ss.local_magic);
    assert_eq!(p.s.counters().renegotiations, 1);
}

/// Issue 16: with the defaults on both sides, neither sends IPV6CP (a pppd peer without
/// `+ipv6` would Protocol-Reject it) and the client asks for no DNS (an LNS with none to give
/// would Configure-Reject the 0.0.0.0 options, RFC 1877).
#[test]
fn defaults_send_no_ipv6cp_and_ask_no_dns() {
    let scfg = PppConfig {
        ipcp: IpcpConfig {
            local_address: Ipv4Addr::new(192, 0, 2, 1),
            ..IpcpConfig::default()
        },
        ..PppConfig::default()
    };
    let mut p = Pair::new(scfg, PppConfig::default(), "alice", "s3cret");
    p.run_to_up();
    assert_eq!(up_of(&p.c_events).len(), 1, "{:#?}", p.log);
    assert!(
        !p.log.iter().any(|l| l[4..].starts_with("ff038057")),
        "IPV6CP sent: {:#?}",
        p.log
    );
    let bytes = |h: &str| -> Vec<u8> {
        (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
            .collect()
    };
    let requests: Vec<Vec<u8>> = p
        .log
        .iter()
        .filter(|l| l.starts_with("C>S ff03802101"))
        .map(|l| bytes(&l[4..]))
        .collect();
    assert!(!requests.is_empty(), "{:#?}", p.log);
    for f in requests {
        // ff 03 80 21 | code id len(2) | options (type, length, value)
        let mut opts = &f[8..];
        while opts.len() >= 2 && opts[1] >= 2 && usize::from(opts[1]) <= opts.len() {
            assert!(
                !matches!(opts[0], 129 | 131),
                "client asked for DNS: {}",
                hex(&f)
            );
            opts = &opts[usize::from(opts[1])..];
        }
    }
}

/// Issue 16 item 4: a subscriber pings the LNS's IPv6 link-local address (fe80:: and the
/// Interface-Identifier IPv6CP gave the LNS, RFC 5072 §5): one ICMPv6 Echo Reply (RFC 4443
/// §4.2) in the link, from that address, with the request's identifier, sequence number and
/// data. A request to another address draws nothing.
#[test]
fn ipv6_gateway_answers_ping_to_its_link_local_address() {
    use l2xdp_wire::net::checksum;
    use std::net::Ipv6Addr;

    let mut p = Pair::new(
        server_config(AuthMethod::Chap),
        client_config(),
        "alice",
        "s3cret",
    );
    p.run_to_up();
    let (s_up, _) = check_up(&p, "alice");
    let (ours, peer) = s_up.ipv6.expect("IPv6CP up");
    let ll = |id: [u8; 8]| {
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&[0xfe, 0x80]);
        a[8..].copy_from_slice(&id);
        Ipv6Addr::from(a)
    };
    let (gw, sub) = (ll(ours), ll(peer));
    let ping = |dst: Ipv6Addr| {
        let mut icmp = vec![128, 0, 0, 0, 0xbe, 0xef, 0, 1];
        icmp.extend_from_slice(b"ping data");
        let c = !checksum::combine(&[
            checksum::pseudo_header_v6(sub, dst, 58, icmp.len() as u32),
            checksum::data(&icmp),
        ]);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![0xff, 0x03, 0x00, 0x57, 0x60, 0, 0, 0];
        f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[58, 64]);
        f.extend_from_slice(&sub.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&icmp);
        f
    };
    while p.s.poll_transmit().is_some() {}
    let before = *p.s.counters();
    p.s.handle_frame(&ping(gw), p.now);
    let reply = p.s.poll_transmit().expect("an echo reply");
    assert!(p.s.poll_transmit().is_none(), "one reply");
    assert_eq!(&reply[..4], &[0xff, 0x03, 0x00, 0x57], "{}", hex(&reply));
    let ip = &reply[4..];
    assert_eq!(&ip[8..24], &gw.octets());
    assert_eq!(&ip[24..40], &sub.octets());
    assert_eq!(ip[40], 129, "Echo Reply");
    assert_eq!(
        &ip[44..],
        &ping(gw)[48..],
        "identifier, sequence number, data"
    );
    let sum = checksum::combine(&[
        checksum::pseudo_header_v6(gw, sub, 58, (ip.len() - 40) as u32),
        checksum::data(&ip[40..]),
    ]);
    assert_eq!(sum, 0xffff, "checksum");
    assert_eq!(p.s.counters().echo6_replies, before.echo6_replies + 1);
    // Not our address: discarded, nothing sent.
    p.s.handle_frame(&ping("fe80::1234".parse().expect("addr")), p.now);
    assert!(p.s.poll_transmit().is_none());
    assert_eq!(p.s.counters().echo6_replies, before.echo6_replies + 1);
    assert_eq!(p.s.counters().discarded, before.discarded + 1);
}

#[path = "tests_external.rs"]
mod external;
