//! Hostile input, floods at small scale (issue 15, item 2): whatever a remote sender does, the
//! control plane's state stays bounded — tunnels, half-open tunnels, the sender map, the
//! per-source rate table — a refused or unverified SCCRQ draws at most one datagram, and
//! repeated events are logged a bounded number of times. Each case asserts counts, never
//! timing: the node cases run a real [`Node`] (in-memory fast path) on a synthetic clock; the
//! last case runs `l2xdpd` as a process on loopback and reads its metrics and log.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::tunnel::TunnelState;
use l2xdp_controlplane::l2tp::{L2tpConfig, Peer, Registry};
use l2xdp_controlplane::node::{Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::random::Random;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_wire::l2tp::avp::{Avp, AvpType};
use l2xdp_wire::l2tp::header::Version;
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

/// Where the node under test listens.
const LNS: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1701);

fn node(l2tp: L2tpConfig) -> Node {
    Node::new(
        NodeConfig {
            l2tp,
            ppp: Arc::new(PppConfig::default()),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: HashMap::new(),
            random: Random::from_os().expect("entropy"),
        },
        Box::new(MemoryDataPlane::new()),
    )
}

fn lns(f: impl FnOnce(&mut L2tpConfig)) -> Node {
    let mut c = L2tpConfig {
        host_name: "lns".into(),
        ..L2tpConfig::default()
    };
    f(&mut c);
    node(c)
}

/// The `n`-th spoofed source: 198.18.0.0 upwards, port 1701.
fn src(n: u32) -> Peer {
    Peer::udp(SocketAddr::from((
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n),
        1701,
    )))
}

/// An SCCRQ as this project's initiator writes it (a random Assigned Tunnel ID each).
fn sccrq() -> Vec<u8> {
    let mut r = Registry::with_random(L2tpConfig::default(), Random::from_os().expect("entropy"));
    r.open_tunnel(Peer::udp(LNS), Version::V2, Instant::now())
        .expect("open");
    r.poll_transmit().expect("SCCRQ").1
}

/// `n` SCCRQs with distinct Assigned Tunnel IDs (one initiator opening `n` tunnels): a
/// repeated ID from the same source is a retransmission of that SCCRQ, which is answered again
/// (1,000 independent draws repeat one of 10 admitted IDs about once in seven runs).
fn sccrqs(n: usize) -> Vec<Vec<u8>> {
    let mut r = Registry::with_random(L2tpConfig::default(), Random::from_os().expect("entropy"));
    (0..n)
        .map(|_| {
            r.open_tunnel(Peer::udp(LNS), Version::V2, Instant::now())
                .expect("open");
            r.poll_transmit().expect("SCCRQ").1
        })
        .collect()
}

/// Everything the node sends now.
fn drain(n: &mut Node) -> Vec<(Peer, Vec<u8>)> {
    std::iter::from_fn(|| n.poll_transmit()).collect()
}

/// Runs the node's timers from `now` for `d` (every deadline, in order); what it sent.
fn run_timers(n: &mut Node, now: &mut Instant, d: Duration) -> Vec<(Peer, Vec<u8>)> {
    let end = *now + d;
    let mut out = drain(n);
    while let Some(t) = n.poll_timeout().filter(|t| *t <= end) {
        *now = t.max(*now);
        n.handle_timeout(*now);
        out.extend(drain(n));
    }
    *now = end;
    out
}

fn message_type(d: &[u8]) -> Option<MessageType> {
    if d.len() <= 12 {
        return None; // a ZLB
    }
    ControlMessage::parse(d, &ParseContext { secret: None })
        .ok()
        .and_then(|m| m.message_type())
}

fn result_code(d: &[u8]) -> Option<(u16, Option<u16>)> {
    let m = ControlMessage::parse(d, &ParseContext { secret: None }).ok()?;
    match m.get(AvpType::ResultCode) {
        Some(Avp::ResultCode { result, error, .. }) => Some((*result, *error)),
        _ => None,
    }
}

fn admission(n: &Node, what: &str) -> u64 {
    n.registry()
        .counters()
        .admission
        .get(what)
        .copied()
        .unwrap_or(0)
}

/// No per-source rate limit (cases about other limits).
fn no_rate(c: &mut L2tpConfig) {
    c.limits.sccrq_per_source_per_sec = 0;
}

/// A spoofed SCCRQ draws its SCCRP and one retransmission of it, nothing more, from a source
/// that never acknowledges (the reliable channel alone would send six); the half-open tunnel
/// is gone after its timeout and leaves nothing behind (no tunnel, no sender entry).
#[test]
fn spoofed_sccrq_draws_one_sccrp_and_leaves_nothing() {
    let mut n = lns(|_| {});
    let mut now = Instant::now();
    n.handle_datagram(LNS, src(1), &sccrq(), now);
    let first = drain(&mut n);
    assert_eq!(first.len(), 1);
    assert_eq!(message_type(&first[0].1), Some(MessageType::Sccrp));
    assert_eq!((n.registry().len(), n.registry().half_open()), (1, 1));
    let later = run_timers(&mut n, &mut now, Duration::from_secs(120));
    assert_eq!(
        later.len(),
        1,
        "one retransmission toward an unverified source"
    );
    assert_eq!(message_type(&later[0].1), Some(MessageType::Sccrp));
    assert_eq!((n.registry().len(), n.registry().half_open()), (0, 0));
    assert_eq!(n.sender_entries(), 0);
    assert_eq!(admission(&n, "half-open tunnel timed out"), 1);
    assert!(
        n.poll_event().is_none(),
        "no tunnel event for an unverified peer"
    );
}

/// A retransmitted SCCRQ gets the SCCRP again, one for one, at most `max_retries` (5) times.
#[test]
fn retransmitted_sccrq_is_answered_one_for_one_and_capped() {
    let mut n = lns(|_| {});
    let now = Instant::now();
    let m = sccrq();
    let mut answers = Vec::new();
    for _ in 0..10 {
        n.handle_datagram(LNS, src(1), &m, now);
        answers.push(drain(&mut n).len());
    }
    assert_eq!(answers, vec![1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    assert_eq!(n.registry().len(), 1, "one tunnel for one peer's SCCRQ");
}

/// 2,000 spoofed sources against `max_half_open` 100: at most 100 half-open tunnels at any
/// time, the oldest unverified evicted for each new one, each SCCRQ answered once.
#[test]
fn half_open_table_is_bounded_under_a_spoofed_flood() {
    let mut n = lns(|c| {
        no_rate(c);
        c.limits.max_half_open = 100;
    });
    let now = Instant::now();
    let mut sent = 0;
    let mut max = 0;
    for i in 0..2_000 {
        n.handle_datagram(LNS, src(i), &sccrq(), now);
        sent += drain(&mut n).len();
        max = max.max(n.registry().len());
    }
    assert_eq!(max, 100);
    assert_eq!(n.registry().half_open(), 100);
    assert_eq!(sent, 2_000, "one SCCRP per SCCRQ");
    assert_eq!(admission(&n, "half-open tunnel evicted"), 1_900);
    assert!(n.sender_entries() <= 2 * 100 + 64, "{}", n.sender_entries());
}

/// A source over its rate: 1,000 SCCRQs (each a new tunnel) from one address get answers for
/// the bucket's depth only; the rest are dropped unanswered and counted.
#[test]
fn one_source_over_its_rate_is_dropped_unanswered() {
    let mut n = lns(|c| {
        c.limits.sccrq_per_source_per_sec = 5;
        c.limits.sccrq_per_source_burst = 10;
    });
    let now = Instant::now();
    let mut sent = 0;
    for q in sccrqs(1_000) {
        n.handle_datagram(LNS, src(7), &q, now);
        sent += drain(&mut n).len();
    }
    assert_eq!(sent, 10);
    assert_eq!(n.registry().len(), 10);
    assert_eq!(admission(&n, "SCCRQ dropped (source over its rate)"), 990);
}

/// The per-source table of rates stays within its size whatever the number of sources.
#[test]
fn rate_table_is_bounded() {
    let mut n = lns(|c| {
        c.limits.rate_limit_sources = 256;
        c.limits.max_half_open = 16;
    });
    let now = Instant::now();
    for i in 0..5_000 {
        n.handle_datagram(LNS, src(i), &sccrq(), now);
        drain(&mut n);
    }
    assert!(n.registry().rate_limited_sources() <= 256);
    assert_eq!(n.registry().half_open(), 16);
}

/// Beyond `max_half_open_per_source`, each SCCRQ is refused with exactly one StopCCN
/// (RFC 2661 §4.4.2 result 2, error 4: no resources) and keeps no state: no tunnel, nothing
/// retransmitted.
#[test]
fn half_open_limit_per_source_refuses_with_one_stopccn() {
    let mut n = lns(|c| {
        no_rate(c);
        c.limits.max_half_open_per_source = 8;
    });
    let mut now = Instant::now();
    let mut kinds: HashMap<Option<MessageType>, usize> = HashMap::new();
    for q in sccrqs(50) {
        n.handle_datagram(LNS, src(3), &q, now);
        for (_, d) in drain(&mut n) {
            if message_type(&d) == Some(MessageType::StopCcn) {
                assert_eq!(result_code(&d), Some((2, Some(4))));
            }
            *kinds.entry(message_type(&d)).or_default() += 1;
        }
    }
    assert_eq!(kinds.get(&Some(MessageType::Sccrp)), Some(&8));
    assert_eq!(kinds.get(&Some(MessageType::StopCcn)), Some(&42));
    assert_eq!(kinds.len(), 2);
    assert_eq!(n.registry().len(), 8);
    assert_eq!(
        admission(&n, "SCCRQ refused (half-open limit per source)"),
        42
    );
    // The 8 half-open ones retransmit their SCCRP once each; the refused ones send nothing.
    let later = run_timers(&mut n, &mut now, Duration::from_secs(60));
    assert_eq!(later.len(), 8);
    assert_eq!(n.registry().len(), 0);
}

/// 10,000 one-byte datagrams from distinct sources and 5,000 control messages to tunnels that
/// do not exist: nothing answered, no tunnel, no sender entry; every one counted.
#[test]
fn junk_from_distinct_sources_leaves_no_state() {
    let mut n = lns(|_| {});
    let now = Instant::now();
    let mut sent = 0;
    for i in 0..10_000 {
        let p = Peer::udp(SocketAddr::from((
            Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i % 4096)),
            1024 + (i / 4096) as u16,
        )));
        n.handle_datagram(LNS, p, &[0x42], now);
        sent += drain(&mut n).len();
    }
    // A ZLB to tunnel 4660 (T, L, S bits, version 2).
    let zlb = [0xc8, 0x02, 0, 12, 0x12, 0x34, 0, 0, 0, 0, 0, 0];
    for i in 0..5_000 {
        n.handle_datagram(LNS, src(i), &zlb, now);
        sent += drain(&mut n).len();
    }
    assert_eq!(sent, 0);
    assert_eq!(n.registry().len(), 0);
    assert_eq!(n.sender_entries(), 0);
    let c = n.registry().counters();
    let invalid: u64 = c.invalid.values().sum();
    assert_eq!(invalid, 15_000, "{:?}", c.invalid);
    assert_eq!(c.invalid.get("unknown tunnel"), Some(&5_000));
}

/// Shuttles datagrams between two nodes, dropping every fifth (20 % loss), with the LNS also
/// taking `flood` spoofed SCCRQs per round; runs `rounds` rounds of 100 ms.
fn shuttle(lac: &mut Node, lns: &mut Node, now: &mut Instant, rounds: usize, flood: u32) {
    let lac_addr: SocketAddr = "192.0.2.2:1701".parse().expect("addr");
    let mut k = 0u64;
    let mut spoof = 0u32;
    for _ in 0..rounds {
        for _ in 0..flood {
            lns.handle_datagram(LNS, src(10_000 + spoof), &sccrq(), *now);
            spoof += 1;
        }
        for _ in 0..20 {
            let mut moved = false;
            while let Some((to, d)) = lac.poll_transmit() {
                moved = true;
                k += 1;
                if !k.is_multiple_of(5) && to.addr == LNS {
                    lns.handle_datagram(LNS, Peer::udp(lac_addr), &d, *now);
                }
            }
            while let Some((to, d)) = lns.poll_transmit() {
                if to.addr != lac_addr {
                    continue; // toward a spoofed source: lost in the network
                }
                moved = true;
                k += 1;
                if !k.is_multiple_of(5) {
                    lac.handle_datagram(lac_addr, Peer::udp(LNS), &d, *now);
                }
            }
            if !moved {
                break;
            }
        }
        *now += Duration::from_millis(100);
        lac.handle_timeout(*now);
        lns.handle_timeout(*now);
    }
}

/// A real LAC with 20 % loss during a spoofed SCCRQ flood that keeps the half-open table full:
/// 10 of 10 tunnels come up (its retransmitted SCCRQs get the SCCRP again, the oldest
/// unverified half-open tunnels make room).
#[test]
fn real_lac_with_loss_gets_in_during_a_half_open_flood() {
    let mut lac = node(L2tpConfig {
        host_name: "lac".into(),
        ..L2tpConfig::default()
    });
    let mut lns = lns(|c| {
        no_rate(c);
        c.limits.max_half_open = 64;
    });
    let mut now = Instant::now();
    // Fill the table first.
    shuttle(&mut lac, &mut lns, &mut now, 1, 64);
    for _ in 0..10 {
        lac.open_tunnel(Peer::udp(LNS), Version::V2, now)
            .expect("open");
    }
    // 2 spoofed SCCRQs per 100 ms (20/s) for 30 s: the table turns over every 3.2 s, and a
    // LAC whose SCCCN is lost must find its half-open tunnel when it sends it again.
    shuttle(&mut lac, &mut lns, &mut now, 300, 2);
    let ups = std::iter::from_fn(|| lac.poll_event())
        .filter(|e| matches!(e, NodeEvent::TunnelUp { .. }))
        .count();
    assert_eq!(ups, 10);
    let established = lns
        .registry()
        .tunnels()
        .filter(|t| t.state() == TunnelState::Established)
        .count();
    assert_eq!(established, 10);
    assert!(lns.registry().half_open() <= 64);
    assert!(admission(&lns, "half-open tunnel evicted") > 0);
}

/// Refused beyond `max_tunnels`: one StopCCN, no tunnel kept, the established ones untouched.
#[test]
fn tunnel_limit_refusal_allocates_nothing() {
    let mut lac = node(L2tpConfig {
        host_name: "lac".into(),
        ..L2tpConfig::default()
    });
    let mut lns = lns(|c| {
        no_rate(c);
        c.limits.max_tunnels = 2;
    });
    let mut now = Instant::now();
    for _ in 0..2 {
        lac.open_tunnel(Peer::udp(LNS), Version::V2, now)
            .expect("open");
    }
    shuttle(&mut lac, &mut lns, &mut now, 50, 0);
    let established = lns
        .registry()
        .tunnels()
        .filter(|t| t.state() == TunnelState::Established)
        .count();
    assert_eq!((lns.registry().len(), established), (2, 2));
    let mut answers = Vec::new();
    for i in 0..100 {
        lns.handle_datagram(LNS, src(i), &sccrq(), now);
        answers.extend(drain(&mut lns).into_iter().filter(|(to, _)| *to == src(i)));
    }
    assert_eq!(answers.len(), 100);
    assert!(answers
        .iter()
        .all(|(_, d)| message_type(d) == Some(MessageType::StopCcn)
            && result_code(d) == Some((2, Some(4)))));
    assert_eq!(lns.registry().len(), 2);
    assert_eq!(lns.sender_entries(), 1, "the LAC's only");
    // Nothing more toward the refused sources (the LAC's tunnels may send their own).
    let later = run_timers(&mut lns, &mut now, Duration::from_secs(30));
    assert!(later
        .iter()
        .all(|(to, _)| to.addr.port() == 1701
            && to.addr.ip() == std::net::IpAddr::from([192, 0, 2, 2])));
}

// -------------------------------------------------------------------------------------------
// l2xdpd as a process

mod process {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream, UdpSocket};
    use std::path::Path;
    use std::time::Duration;

    use l2xdp_lab::cp::l2xdpd::{self, free_udp_port, L2xdpd, Placement};
    use l2xdp_lab::scratch::Scratch;

    fn metrics(addr: SocketAddr) -> String {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return String::new();
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// `GLIBC_TUNABLES` in the environment process `pid` runs with.
    fn tunables(pid: u32) -> Option<String> {
        let env = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        env.split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(b"GLIBC_TUNABLES="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn sample(text: &str, prefix: &str) -> u64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// l2xdpd on loopback: SCCRQs from 500 sources (real sockets on 127.3.x.y) and 2,000
    /// datagrams to unknown tunnels. Half-open tunnels stay within `max_half_open` (the
    /// oldest evicted for each new one), each datagram is counted in the metrics, and the
    /// repeated events are logged a handful of times, not once each.
    #[test]
    fn l2xdpd_counts_a_flood_and_logs_it_a_bounded_number_of_times() {
        let dir = Scratch::plain("hostile-flood");
        let port = free_udp_port().expect("port");
        let mport = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("tcp port")
            .port();
        let maddr = SocketAddr::from(([127, 0, 0, 1], mport));
        let base = format!(
            r#"[l2tp]
host_name = "lns-flood"

[l2tp.limits]
max_half_open = 50

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]

[metrics]
listen = "{maddr}"
"#
        );
        let files = l2xdpd::write_config(
            &dir.dir,
            Path::new("base.toml"),
            &base,
            Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
            1,
        )
        .expect("config");
        let log = dir.dir.join("l2xdpd.log");
        let d = L2xdpd::start(
            None,
            l2xdp_lab::workspace_binary("l2xdpd").as_path(),
            &files,
            Some(&log),
        );
        // It runs with glibc's thread cache off, so that what the flood frees can be given
        // back to the system (driver::without_thread_cache; the memory figures are the flood
        // bench's).
        assert_eq!(
            tunables(d.pid()),
            Some(l2xdp_controlplane::driver::NO_THREAD_CACHE.to_string())
        );
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        let sccrq = super::sccrq();
        let socks: Vec<UdpSocket> = (0..500u32)
            .map(|i| {
                UdpSocket::bind(SocketAddr::from(([127, 3, (i >> 8) as u8, i as u8], 0)))
                    .expect("bind 127.3/16")
            })
            .collect();
        let zlb = [0xc8, 0x02, 0, 12, 0x12, 0x34, 0, 0, 0, 0, 0, 0];
        let opened_q = "l2xdp_sccrq_admission_total{outcome=\"half-open tunnel opened\"}";
        let unknown_q = "l2xdp_control_invalid_total{reason=\"unknown tunnel\"}";
        // In groups of 100, each waited for (bounded) until l2xdpd has counted it: a loopback
        // socket's buffer holds a few hundred datagrams.
        let mut text = String::new();
        let wait_for = |q: &str, n: u64, text: &mut String| {
            for _ in 0..400 {
                *text = metrics(maddr);
                if sample(text, q) >= n {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            panic!("{q} never reached {n}:\n{text}");
        };
        for (g, chunk) in socks.chunks(100).enumerate() {
            for s in chunk {
                s.send_to(&sccrq, to).expect("send");
            }
            wait_for(opened_q, 100 * (g as u64 + 1), &mut text);
        }
        for round in 0..4u64 {
            for (g, chunk) in socks.chunks(100).enumerate() {
                for s in chunk {
                    s.send_to(&zlb, to).expect("send");
                }
                wait_for(unknown_q, 500 * round + 100 * (g as u64 + 1), &mut text);
            }
        }
        assert_eq!(sample(&text, opened_q), 500, "{text}");
        assert_eq!(sample(&text, unknown_q), 2_000, "{text}");
        assert_eq!(
            sample(
                &text,
                "l2xdp_sccrq_admission_total{outcome=\"half-open tunnel evicted\"}"
            ),
            450,
            "{text}"
        );
        let half_open = sample(&text, "l2xdp_tunnels{state=\"WaitCtlConn\"}");
        assert!(half_open <= 50, "{half_open}");
        assert!(sample(&text, "l2xdp_sender_entries{map=\"peers\"}") <= 2 * 50 + 64);
        let logged = std::fs::read_to_string(&log).expect("log");
        let repeated = logged
            .lines()
            .filter(|l| l.contains("unknown tunnel") || l.contains("half-open"))
            .count();
        assert!((1..=4).contains(&repeated), "{repeated} lines:\n{logged}");
    }
}
