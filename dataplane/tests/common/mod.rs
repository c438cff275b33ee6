//! The fixture of the XDP program tests: a namespace with two veth pairs (access a0–a1, core
//! c0–c1), addresses, routes and static neighbours whose MACs are the ones the reference is
//! given; the object loaded with private maps; the reference's sessions and sequence state
//! mirrored.
//!
//! With [`Mode::AfXdp`] the fixture is differential: a second instance of the same object,
//! pinned, configured for AF_XDP mode and attached to `a0` (access) and `c0` (core), with the
//! AF_XDP workers (`l2xdp_dataplane::afxdp`) on both; every session change goes to both
//! instances, and every frame a check runs through `BPF_PROG_TEST_RUN` is also sent for real
//! (from `a1` upstream, from `c1` downstream) and what comes out on the other side is compared
//! with the same reference output. Each real exchange ends with a sentinel frame of a session
//! of its own (unique payload): what arrived before it is the frame's output, nothing is
//! waited for by time.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use aya::Ebpf;
use l2xdp_dataplane::afxdp::{AfXdp, AfXdpConfig};
use l2xdp_dataplane::api::{Binding, DataPlane, SessionEntry};
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::{maps, prog};
use l2xdp_lab::packet::PacketSocket;
use l2xdp_lab::test_run::{self, action};
use l2xdp_lab::topology::Pins;
use l2xdp_lab::{require_root, Netns, NetnsGuard};
use l2xdp_wire::datapath::{
    self, decap, emit_inner_ethernet, encap, DecapConfig, PppTx, RxSeq, Session, SessionKey, TxSeq,
    Verdict,
};
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use l2xdp_wire::net::frame::{udp_frame, Endpoints};

pub const A0_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 1]);
pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 2]);
pub const C0_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 1]);
pub const CORE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 2]);
pub const LOCAL4: &str = "192.0.2.1";
pub const PEER4: &str = "192.0.2.2";
pub const LOCAL6: &str = "2001:db8:a::1";
pub const PEER6: &str = "2001:db8:a::2";
pub const CORE4: &str = "198.51.100.2";
pub const CORE6: &str = "2001:db8:c::2";
pub const SUB4: &str = "100.64.0.1";
pub const SUB6: &str = "2001:db8:100::1";

/// `true` when `test` must return: not root, the skip recorded (`l2xdp_lab::require_root`; a failure
/// instead under `L2XDP_REQUIRE_ROOT=1`) under libtest's name of the running test when there
/// is one (`xdp::sequencing_…`, `afxdp::sequencing_…`: both modes share the callers' `test`).
pub fn skip_unless_root(test: &str) -> bool {
    let current = std::thread::current();
    let name = current.name().filter(|n| *n != "main").unwrap_or(test);
    !require_root(name)
}

/// `true` when `test` must return: [`skip_unless_root`], or the kernel cannot test-run an XDP
/// program with an `xdp_md` naming the ingress interface (5.15+; `bpf_fib_lookup` needs it),
/// recorded as a skip for that feature.
pub fn skip_unless_test_run(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    let current = std::thread::current();
    let name = current.name().filter(|n| *n != "main").unwrap_or(test);
    !l2xdp_lab::skip::require_feature(name, l2xdp_dataplane::probe::Feature::TestRunCtx)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// Which fast paths a fixture checks against the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The XDP programs (`BPF_PROG_TEST_RUN`).
    Xdp,
    /// The XDP programs and, on the same frames, AF_XDP mode on veths.
    AfXdp,
}

pub struct Fixture {
    pub dp: XdpDataPlane,
    /// AF_XDP mode, when differential (dropped before the namespace).
    pub afxdp: Option<AfXdpSide>,
    pub ebpf: Ebpf,
    pub access_fd: RawFd,
    pub core_fd: RawFd,
    pub a0: u32,
    pub c0: u32,
    pub cfg: DecapConfig,
    pub sessions: BTreeMap<SessionKey, Session>,
    pub rx: HashMap<SessionKey, RxSeq>,
    pub tx: HashMap<SessionKey, TxSeq>,
    /// The bindings installed, mirrored for the reference's `bound` lookup.
    pub bindings: BTreeMap<SessionKey, Binding>,
    _guard: NetnsGuard,
    pub ns: Netns,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        Self::new_mode(tag, Mode::Xdp)
    }

    pub fn new_mode(tag: &str, mode: Mode) -> Fixture {
        let ns = Netns::new(tag);
        ns.ip(&[
            "link",
            "add",
            "a0",
            "address",
            &A0_MAC.to_string(),
            "type",
            "veth",
            "peer",
            "name",
            "a1",
        ]);
        ns.ip(&[
            "link",
            "add",
            "c0",
            "address",
            &C0_MAC.to_string(),
            "type",
            "veth",
            "peer",
            "name",
            "c1",
        ]);
        for l in ["a0", "a1", "c0", "c1"] {
            ns.ip(&["link", "set", l, "up"]);
        }
        ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "a0"]);
        ns.ip(&["addr", "add", "2001:db8:a::1/64", "dev", "a0", "nodad"]);
        ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "c0"]);
        ns.ip(&["addr", "add", "2001:db8:c::1/64", "dev", "c0", "nodad"]);
        ns.ip(&[
            "neigh",
            "replace",
            PEER4,
            "lladdr",
            &PEER_MAC.to_string(),
            "nud",
            "permanent",
            "dev",
            "a0",
        ]);
        ns.ip(&[
            "neigh",
            "replace",
            PEER6,
            "lladdr",
            &PEER_MAC.to_string(),
            "nud",
            "permanent",
            "dev",
            "a0",
        ]);
        ns.ip(&[
            "neigh",
            "replace",
            CORE4,
            "lladdr",
            &CORE_MAC.to_string(),
            "nud",
            "permanent",
            "dev",
            "c0",
        ]);
        ns.ip(&[
            "neigh",
            "replace",
            CORE6,
            "lladdr",
            &CORE_MAC.to_string(),
            "nud",
            "permanent",
            "dev",
            "c0",
        ]);
        ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        if mode == Mode::AfXdp {
            // The peers' ends send only what a check sends (no IPv6 chatter into c0, which a
            // v3 pseudowire bound to c0 would carry).
            for l in ["a1", "c1"] {
                ns.exec(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{l}.disable_ipv6=1"),
                ]);
            }
        }
        let guard = ns.enter();
        let a0 = loader::ifindex("a0").expect("a0");
        let c0 = loader::ifindex("c0").expect("c0");
        let mut ebpf = loader::load(None).expect("load the XDP object");
        let mut dp = XdpDataPlane::from_ebpf(&mut ebpf).expect("maps");
        let cfg = DecapConfig::default();
        dp.set_config(&FastPathConfig {
            decap: cfg,
            mtu: 1500,
            cpumap_cpus: 0,
            afxdp: false,
        })
        .expect("config");
        let fd = |ebpf: &mut Ebpf, p| {
            loader::program(ebpf, p)
                .expect("program")
                .fd()
                .expect("fd")
                .as_fd()
                .as_raw_fd()
        };
        let access_fd = fd(&mut ebpf, prog::ACCESS);
        let core_fd = fd(&mut ebpf, prog::CORE);
        let afxdp = (mode == Mode::AfXdp).then(|| AfXdpSide::new(tag, cfg));
        Fixture {
            dp,
            afxdp,
            ebpf,
            access_fd,
            core_fd,
            a0,
            c0,
            cfg,
            sessions: BTreeMap::new(),
            rx: HashMap::new(),
            tx: HashMap::new(),
            bindings: BTreeMap::new(),
            _guard: guard,
            ns,
        }
    }

    pub fn install(&mut self, e: &SessionEntry) {
        self.dp.install(e).expect("install");
        if let Some(a) = &mut self.afxdp {
            a.dp.install(e).expect("install (AF_XDP instance)");
            a.settle();
        }
        self.sessions.insert(e.key(), e.session);
        self.bindings.insert(e.key(), e.binding.clone());
        self.rx.entry(e.key()).or_default();
        self.tx.entry(e.key()).or_default();
    }

    pub fn remove(&mut self, key: &SessionKey) {
        self.dp.remove(key).expect("remove");
        if let Some(a) = &mut self.afxdp {
            a.dp.remove(key).expect("remove (AF_XDP instance)");
            a.settle();
        }
        self.sessions.remove(key);
        self.bindings.remove(key);
    }

    pub fn reset_sequence(&mut self, key: &SessionKey) {
        self.dp.reset_sequence(key).expect("reset");
        if let Some(a) = &mut self.afxdp {
            a.dp.reset_sequence(key).expect("reset (AF_XDP instance)");
            a.settle();
        }
        self.rx.insert(*key, RxSeq::unsynced());
        self.tx.insert(*key, TxSeq::default());
    }

    /// Runs the access program and the reference on `frame`; asserts the same verdict, the same
    /// output frame and the drop counter of the reason. Returns the reference verdict.
    pub fn check_decap(&mut self, frame: &[u8]) -> Verdict {
        let drops_before = self.dp.drop_counters().expect("drops");
        let sessions = &self.sessions;
        let bindings = &self.bindings;
        let rx = &mut self.rx;
        let v = decap(
            frame,
            &self.cfg,
            |k| sessions.get(k),
            |k| rx.get_mut(k),
            |a| bound(bindings, a),
        );
        let got = test_run::run(self.access_fd, frame, self.a0, 1).expect("test run");
        let drops = self.dp.drop_counters().expect("drops");
        let mut afxdp_want: Option<Vec<u8>> = None;
        match &v {
            Verdict::Forward { inner, kind, key } => {
                assert_eq!(got.action, action::REDIRECT, "verdict for {v:?}");
                let want = match kind {
                    datapath::InnerKind::Ethernet => frame[inner.clone()].to_vec(),
                    _ => {
                        let mut out = vec![0; 2048];
                        let n =
                            emit_inner_ethernet(&frame[inner.clone()], CORE_MAC, C0_MAC, &mut out)
                                .expect("emit");
                        out.truncate(n);
                        out
                    }
                };
                assert_eq!(got.frame, want, "decapsulated frame for {v:?}");
                // AF_XDP mode sends on the interfaces it has sockets on (a0, c0).
                let egress = match self.bindings.get(key) {
                    Some(Binding::AttachmentCircuit { ifindex }) => *ifindex,
                    _ => self.c0,
                };
                if egress == self.c0 {
                    afxdp_want = Some(want);
                }
            }
            Verdict::ToControlPlane(_) | Verdict::Pass => {
                assert_eq!(got.action, action::PASS, "verdict for {v:?}");
                assert_eq!(got.frame, frame, "passed frames are untouched");
            }
            Verdict::Drop(r) => {
                assert_eq!(got.action, action::DROP, "verdict for {v:?}");
                assert_eq!(
                    drops[*r as usize],
                    drops_before[*r as usize] + 1,
                    "counter of {r:?}"
                );
            }
        }
        if let Some(a) = &mut self.afxdp {
            let before = a.drop_counters();
            let out = a.exchange(frame, Direction::Up);
            let after = a.drop_counters();
            assert_eq!(
                out,
                afxdp_want.into_iter().collect::<Vec<_>>(),
                "AF_XDP output for {v:?}"
            );
            if let Verdict::Drop(r) = &v {
                assert_eq!(
                    after[*r as usize],
                    before[*r as usize] + 1,
                    "AF_XDP mode counter of {r:?}"
                );
            }
        }
        v
    }

    /// Runs the core program on `frame` arriving on `ifindex` and compares with the reference
    /// encap of `inner` for `key`.
    pub fn check_encap(&mut self, key: &SessionKey, frame: &[u8], inner: &[u8], ifindex: u32) {
        let s = self.sessions[key];
        let mut want = vec![0; 4096];
        let tx = self.tx.get_mut(key).expect("tx state");
        let n = encap(&s, tx, inner, 1500, &mut want).expect("reference encap");
        want.truncate(n);
        let got = test_run::run(self.core_fd, frame, ifindex, 1).expect("test run");
        assert_eq!(got.action, action::REDIRECT, "encap verdict");
        assert_eq!(got.frame, want, "encapsulated frame");
        if let Some(a) = &mut self.afxdp {
            assert_eq!(ifindex, self.c0, "AF_XDP mode receives on c0");
            let out = a.exchange(frame, Direction::Down);
            assert_eq!(out, vec![want], "AF_XDP encapsulated frame");
        }
    }
}

/// What the maps answer for an inner source: IPv4 exact (`l2xdp_sub4`), IPv6 the longest
/// prefix (`l2xdp_sub6`), over the installed subscriber bindings.
pub fn bound(bindings: &BTreeMap<SessionKey, Binding>, a: IpAddr) -> Option<SessionKey> {
    let mut best: Option<(u8, SessionKey)> = None;
    for (k, b) in bindings {
        let Binding::Subscriber { ipv4, ipv6 } = b else {
            continue;
        };
        match a {
            IpAddr::V4(a) if *ipv4 == Some(a) => return Some(*k),
            IpAddr::V6(a) => {
                for p in ipv6 {
                    let mask = u128::MAX.checked_shl(128 - u32::from(p.len)).unwrap_or(0);
                    let hit = u128::from(a) & mask == u128::from(p.addr) & mask;
                    if hit && best.is_none_or(|(l, _)| p.len > l) {
                        best = Some((p.len, *k));
                    }
                }
            }
            _ => {}
        }
    }
    best.map(|(_, k)| k)
}

/// A session as we install it, with the MACs the reference is given (those of the static
/// neighbours) so encap compares byte for byte.
pub fn session(our: SessionKey, peer: SessionKey, transport: Transport, v6: bool) -> Session {
    Session {
        transport,
        local_addr: ip(if v6 { LOCAL6 } else { LOCAL4 }),
        peer_addr: ip(if v6 { PEER6 } else { PEER4 }),
        local_port: 1701,
        peer_port: 1701,
        local_mac: A0_MAC,
        next_hop_mac: PEER_MAC,
        vlans: Vlans::NONE,
        our_ids: our,
        peer_ids: peer,
        cookie_rx: Cookie::NONE,
        cookie_tx: Cookie::NONE,
        l2ss: false,
        sequencing: false,
        ppp: PppTx::default(),
        ttl: 64,
        dscp: 0,
        udp_checksum_v4: true,
    }
}

/// The peer's view of a session: what it uses to build the frames we receive.
pub fn mirror(s: &Session) -> Session {
    Session {
        local_addr: s.peer_addr,
        peer_addr: s.local_addr,
        local_port: s.peer_port,
        peer_port: s.local_port,
        local_mac: PEER_MAC,
        next_hop_mac: A0_MAC,
        our_ids: s.peer_ids,
        peer_ids: s.our_ids,
        cookie_rx: s.cookie_tx,
        cookie_tx: s.cookie_rx,
        ..*s
    }
}

/// A frame the peer sends: the reference encap of `inner` with the peer's Ns `ns`.
pub fn from_peer(peer: &Session, inner: &[u8], ns: u32) -> Vec<u8> {
    let mut out = vec![0; 4096];
    let n = encap(peer, &mut TxSeq { next_ns: ns }, inner, 9000, &mut out).expect("peer encap");
    out.truncate(n);
    out
}

/// An inner IP packet (UDP inside) from the subscriber to the core, or back.
pub fn inner_ip(src: &str, dst: &str, payload_len: usize) -> Vec<u8> {
    let e = Endpoints {
        src_mac: CORE_MAC,
        dst_mac: C0_MAC,
        src: ip(src),
        dst: ip(dst),
    };
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    udp_frame(&e, 4000, 5000, &payload).expect("inner")[14..].to_vec()
}

/// The Ethernet frame of an inner IP packet as it arrives on the core side.
pub fn on_core(inner: &[u8]) -> Vec<u8> {
    let mut f = vec![0; 14 + inner.len()];
    f[..6].copy_from_slice(&C0_MAC.0);
    f[6..12].copy_from_slice(&CORE_MAC.0);
    let et: u16 = if inner[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
    f[12..14].copy_from_slice(&et.to_be_bytes());
    f[14..].copy_from_slice(inner);
    f
}

pub fn v2_entry(seq: bool) -> SessionEntry {
    let mut s = session(
        SessionKey::V2 {
            tunnel_id: 1,
            session_id: 2,
        },
        SessionKey::V2 {
            tunnel_id: 10,
            session_id: 20,
        },
        Transport::Udp,
        false,
    );
    s.sequencing = seq;
    SessionEntry {
        session: s,
        binding: Binding::Subscriber {
            ipv4: Some(SUB4.parse().expect("addr")),
            ipv6: vec![l2xdp_dataplane::api::Ipv6Prefix {
                addr: "2001:db8:100::".parse().expect("addr"),
                len: 64,
            }],
        },
    }
}

pub fn v3_entry(
    sid: u32,
    transport: Transport,
    v6: bool,
    cookie: &[u8],
    l2ss: bool,
    seq: bool,
    ac: u32,
) -> SessionEntry {
    let mut s = session(
        SessionKey::V3 { session_id: sid },
        SessionKey::V3 {
            session_id: sid + 1000,
        },
        transport,
        v6,
    );
    s.cookie_rx = Cookie::new(cookie).expect("cookie");
    let tx: Vec<u8> = cookie.iter().map(|b| b ^ 0x5a).collect();
    s.cookie_tx = Cookie::new(&tx).expect("cookie");
    s.l2ss = l2ss;
    s.sequencing = seq;
    SessionEntry {
        session: s,
        binding: Binding::AttachmentCircuit { ifindex: ac },
    }
}

/// Which way a frame goes through the AF_XDP instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent from `a1`, out on `c1`.
    Up,
    /// Sent from `c1`, out on `a1`.
    Down,
}

/// Marks the sentinel frames' payload.
const MAGIC: &[u8; 16] = b"l2xdp-sentinel!!";
/// The sentinel session's subscriber.
const SENTINEL_SUB: &str = "100.64.255.1";
/// Bounds a hung exchange.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The AF_XDP instance of a differential fixture.
pub struct AfXdpSide {
    pub rt: AfXdp,
    pub dp: XdpDataPlane,
    _ebpf: Ebpf,
    pub pins: Pins,
    a1: PacketSocket,
    c1: PacketSocket,
    up_sentinel: Vec<u8>,
    down_sentinel: Vec<u8>,
}

fn magic_ip(src: &str, dst: &str) -> Vec<u8> {
    let e = Endpoints {
        src_mac: CORE_MAC,
        dst_mac: C0_MAC,
        src: ip(src),
        dst: ip(dst),
    };
    udp_frame(&e, 4000, 5000, MAGIC).expect("sentinel")[14..].to_vec()
}

fn has_magic(f: &[u8]) -> bool {
    f.windows(MAGIC.len()).any(|w| w == MAGIC)
}

/// An L2TP frame (UDP or IP protocol 115 inside IPv4/IPv6), as the fast path sends to the peer.
fn is_l2tp(f: &[u8]) -> bool {
    match (f.get(12..14), f.get(23), f.get(20)) {
        (Some([0x08, 0x00]), Some(p), _) => *p == 17 || *p == 115,
        (Some([0x86, 0xdd]), _, Some(p)) => *p == 17 || *p == 115,
        _ => false,
    }
}

impl AfXdpSide {
    /// In the fixture's namespace (the calling thread is in it).
    fn new(tag: &str, cfg: DecapConfig) -> AfXdpSide {
        let pins = Pins::under_sys_fs_bpf(&format!("afx-{tag}"));
        let mut ebpf = loader::load(Some(pins.path())).expect("load the AF_XDP instance");
        loader::attach_pinned(&mut ebpf, prog::ACCESS, "a0", pins.path()).expect("attach a0");
        loader::attach_pinned(&mut ebpf, prog::CORE, "c0", pins.path()).expect("attach c0");
        let mut dp = XdpDataPlane::open(pins.path()).expect("pins");
        dp.set_config(&FastPathConfig {
            decap: cfg,
            mtu: 1500,
            cpumap_cpus: 0,
            afxdp: true,
        })
        .expect("config");
        let rt = AfXdp::start(
            pins.path(),
            &AfXdpConfig {
                interfaces: vec!["a0".into(), "c0".into()],
                cores: vec![0],
                ..AfXdpConfig::default()
            },
        )
        .expect("AF_XDP workers");
        let idx = |n| loader::ifindex(n).expect("ifindex");
        let timeout = std::time::Duration::from_millis(100);
        let a1 = PacketSocket::open(idx("a1"), ETH_P_ALL, timeout);
        let c1 = PacketSocket::open(idx("c1"), ETH_P_ALL, timeout);
        // The sentinel: an L2TPv2 session of its own, both ways.
        let mut e = v2_entry(false);
        e.session.our_ids = SessionKey::V2 {
            tunnel_id: 0xfff0,
            session_id: 1,
        };
        e.session.peer_ids = SessionKey::V2 {
            tunnel_id: 0xfff1,
            session_id: 2,
        };
        e.binding = Binding::Subscriber {
            ipv4: Some(SENTINEL_SUB.parse().expect("addr")),
            ipv6: vec![],
        };
        dp.install(&e).expect("sentinel session");
        let up_sentinel = from_peer(&mirror(&e.session), &magic_ip(SENTINEL_SUB, CORE4), 0);
        let down_sentinel = on_core(&magic_ip(CORE4, SENTINEL_SUB));
        let side = AfXdpSide {
            rt,
            dp,
            _ebpf: ebpf,
            pins,
            a1,
            c1,
            up_sentinel,
            down_sentinel,
        };
        side.settle();
        side
    }

    /// Waits until the workers' tables have every change made so far.
    pub fn settle(&self) {
        self.rt
            .settle(self.pins.path(), LIMIT)
            .expect("AF_XDP settle");
    }

    /// Drops by reason: the programs' plus the workers'.
    pub fn drop_counters(&self) -> [u64; datapath::DropReason::COUNT] {
        let mut d = self.dp.drop_counters().expect("drops");
        let w = self.rt.counters();
        for (d, w) in d.iter_mut().zip(w.iter()) {
            *d += w;
        }
        d
    }

    /// Sends `frame` then the sentinel; returns what came out on the other side before the
    /// sentinel's output (fast-path output only: to the peer's or core host's MAC, and L2TP
    /// towards the peer).
    pub fn exchange(&mut self, frame: &[u8], dir: Direction) -> Vec<Vec<u8>> {
        let (tx, rx, sentinel, want_dst) = match dir {
            Direction::Up => (&self.a1, &self.c1, &self.up_sentinel, CORE_MAC),
            Direction::Down => (&self.c1, &self.a1, &self.down_sentinel, PEER_MAC),
        };
        tx.send(frame);
        tx.send(sentinel);
        let start = std::time::Instant::now();
        let mut out = vec![];
        let mut buf = vec![0u8; 4096];
        loop {
            assert!(start.elapsed() < LIMIT, "the sentinel did not come through");
            let Some((n, kind)) = rx.recv(&mut buf) else {
                continue;
            };
            let f = &buf[..n];
            // Up: to the core host, or a v3 inner frame (addressed to c0 by the peer's host).
            let ours = f.len() >= 14
                && (f[..6] == want_dst.0 || (dir == Direction::Up && f[..6] == C0_MAC.0));
            if kind == libc::PACKET_OUTGOING || !ours {
                continue;
            }
            if dir == Direction::Down && !is_l2tp(f) {
                continue;
            }
            if has_magic(f) {
                // Every forwarded frame went through the workers: the hand-off (metadata
                // area or in-band header, as this kernel allows) never fell back.
                let v = self.dp.verdict_counters().expect("verdicts");
                assert_eq!(
                    v[maps::verdict::XSK_FALLBACK as usize],
                    0,
                    "the AF_XDP hand-off ({:?}) fell back to XDP mode",
                    loader::xsk_handoff()
                );
                return out;
            }
            out.push(f.to_vec());
        }
    }
}

/// `ETH_P_ALL`.
const ETH_P_ALL: u16 = 0x0003;
