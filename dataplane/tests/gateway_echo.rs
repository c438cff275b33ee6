//! Issue 16: the LNS's own PPP address (the IPCP local address, the subscribers' gateway)
//! answers ping in XDP and AF_XDP mode. On the lab's `lac` — `lns` — `core` veths, with the
//! gateway set as l2xdpd sets it (`DataPlane::set_gateway`), two subscribers (one sequenced)
//! send ICMP echo requests to it through their sessions; each gets its replies back in its
//! own session (decapsulated at the LAC with the reference `wire::datapath::decap`), and each
//! reply is byte for byte what RFC 792 makes of its request — checked against a reply built
//! here from scratch (full checksums), so the program's incremental updates (RFC 1624) are
//! compared with the reference. Nothing reaches the core host. What is not an echo request
//! (UDP to the gateway) and echo requests once the gateway is unset go the ordinary way (the
//! kernel path here: the LNS has no route to the pool), unanswered by the fast path.
//!
//! Needs root (`l2xdp_lab::require_root`).

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::skip_unless_root;
use l2xdp_dataplane::{DataPlane, XdpDataPlane};
use l2xdp_ebpf::maps::verdict;
use l2xdp_lab::topology::{Mode, PeerPort, Pins, Topology, CORE0, LAC0};
use l2xdp_lab::traffic::{inner_ip, ip_socket, Counter, Sub, LIMIT};
use l2xdp_wire::datapath::{decap, encap, DecapConfig, SessionKey, TxSeq, Verdict};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// Echo requests per subscriber.
const K: u16 = 3;

/// RFC 1071 checksum of `b`.
fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 ICMP message (header checksums filled): `kind` 8 request, 0 reply.
fn icmp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, kind: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((0..40u8).map(|i| i.wrapping_mul(7) ^ seq as u8));
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let tot = (20 + m.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, ttl, 1, 0, 0];
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&m);
    ip
}

/// The LAC's L2TP frame carrying `inner` in `sub`'s session.
fn from_lac(sub: &Sub, tx: &mut TxSeq, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let n = encap(&sub.view, tx, inner, 1500, &mut out).expect("LAC encap");
    out.truncate(n);
    out
}

fn verdicts(pins: &Pins) -> Vec<u64> {
    XdpDataPlane::open(pins.path())
        .expect("open pins")
        .verdict_counters()
        .expect("verdicts")
        .to_vec()
}

/// Polls the verdict counters until `done` holds (at most [`LIMIT`]).
fn wait_verdicts(pins: &Pins, what: &str, done: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let end = Instant::now() + LIMIT;
    loop {
        let v = verdicts(pins);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < end, "{what}: {v:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn subscribers_ping_their_gateway() {
    ping_in(Mode::Xdp, "subscribers_ping_their_gateway");
}

#[test]
fn subscribers_ping_their_gateway_afxdp() {
    ping_in(Mode::AfXdp, "subscribers_ping_their_gateway_afxdp");
}

fn ping_in(mode: Mode, test: &str) {
    if skip_unless_root(test) {
        return;
    }
    let tag = format!("i16-dpdefects-ping-{mode:?}");
    let topo = Topology::new(&tag);
    let pins = Pins::under_sys_fs_bpf(&tag);
    let fp = topo.start_fast_path(pins.path(), mode);
    let subs = Sub::numbered(2);
    {
        let _g = topo.lns.enter();
        let mut dp = XdpDataPlane::open(pins.path()).expect("open pins");
        for s in subs.values() {
            dp.install(&s.lns_entry()).expect("install");
        }
        dp.set_gateway(Some(GATEWAY)).expect("gateway");
        assert_eq!(
            dp.config().expect("config").gateway4,
            u32::from_ne_bytes(GATEWAY.octets())
        );
    }
    fp.settle();
    let core_port = PeerPort::new(&topo.core, CORE0);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let lac_tx = ip_socket(&lac_port);
    let core_rx = Counter::start(ip_socket(&core_port), |_| Some(0));
    // The LAC's end: a frame counts when it decapsulates (reference decap) in a session of
    // ours into exactly the reply RFC 792 gives for one of that subscriber's requests.
    let subs_rx: BTreeMap<SessionKey, Sub> = subs.clone();
    let replies = Counter::start(ip_socket(&lac_port), move |f| {
        let seen = std::cell::Cell::new(None);
        let lookup = |k: &SessionKey| {
            seen.set(Some(*k));
            subs_rx.get(k).map(|s| &s.view)
        };
        let Verdict::Forward { inner, key, .. } =
            decap(f, &DecapConfig::default(), lookup, |_| None, |_| seen.get())
        else {
            return None;
        };
        let sub = subs_rx.get(&key)?;
        let got = &f[inner];
        (1..=K)
            .any(|seq| got == icmp(GATEWAY, sub.addr, 64, 0, 0x4242, seq).as_slice())
            .then(|| u32::from(sub.addr))
    });
    let mut txs: BTreeMap<SessionKey, TxSeq> =
        subs.keys().map(|k| (*k, TxSeq::default())).collect();
    for seq in 1..=K {
        for (k, sub) in &subs {
            let req = icmp(sub.addr, GATEWAY, 63, 8, 0x4242, seq);
            lac_tx.send(&from_lac(sub, txs.get_mut(k).expect("tx"), &req));
        }
    }
    replies.wait(2 * K as usize, "the echo replies");
    let counts = replies.counts();
    for sub in subs.values() {
        assert_eq!(
            counts.get(&u32::from(sub.addr)).map(|c| c.0),
            Some(K as usize),
            "replies to {}: {counts:?}",
            sub.addr
        );
    }
    let v = verdicts(&pins);
    eprintln!("after the pings: {v:?}");
    let n = 2 * u64::from(K);
    assert_eq!(v[verdict::GATEWAY_ECHO as usize], n, "{v:?}");
    assert_eq!(
        v[verdict::ENCAP as usize],
        n,
        "the replies are downstream packets: {v:?}"
    );
    assert_eq!(v[verdict::DECAP as usize], 0, "{v:?}");
    assert_eq!(v[verdict::FIB_MISS as usize], 0, "{v:?}");
    for sub in subs.values() {
        let c = XdpDataPlane::open(pins.path())
            .expect("open pins")
            .counters(&sub.lns_key)
            .expect("counters");
        assert_eq!(
            (c.rx_packets, c.tx_packets),
            (u64::from(K), u64::from(K)),
            "{}: {c:?}",
            sub.addr
        );
    }
    assert_eq!(fp.drop_counters().iter().sum::<u64>(), 0, "nothing dropped");
    // What the operator sees.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_l2xdp-dataplane"))
        .arg("--pin-dir")
        .arg(pins.path())
        .args(["show", "--json"])
        .output()
        .expect("show");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show --json");
    assert_eq!(shown["gateway"], GATEWAY.to_string(), "{shown}");
    assert_eq!(shown["snapshot"]["gateway_echo"], n, "{shown}");

    // Not an echo request: forwarded as any packet (to the kernel: no route to the pool).
    let (k0, sub0) = subs.iter().next().expect("a subscriber");
    let udp = inner_ip(sub0.addr, GATEWAY, 4000, 7, 1);
    lac_tx.send(&from_lac(sub0, txs.get_mut(k0).expect("tx"), &udp));
    let v = wait_verdicts(&pins, "the UDP packet to the gateway", |v| {
        v[verdict::FIB_MISS as usize] == 1
    });
    assert_eq!(v[verdict::GATEWAY_ECHO as usize], n, "{v:?}");
    // Gateway unset: an echo request goes the same way.
    {
        let _g = topo.lns.enter();
        XdpDataPlane::open(pins.path())
            .expect("open pins")
            .set_gateway(None)
            .expect("unset");
    }
    let req = icmp(sub0.addr, GATEWAY, 63, 8, 0x4242, 1);
    lac_tx.send(&from_lac(sub0, txs.get_mut(k0).expect("tx"), &req));
    let v = wait_verdicts(&pins, "the echo request without a gateway", |v| {
        v[verdict::FIB_MISS as usize] == 2
    });
    assert_eq!(v[verdict::GATEWAY_ECHO as usize], n, "{v:?}");
    assert_eq!(replies.total(), 2 * K as usize, "no more replies");
    assert_eq!(core_rx.total(), 0, "nothing to the core host");
    drop(fp);
}
