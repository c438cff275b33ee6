//! Subscriber traffic through the [`topology`](super::topology): the LAC's view of each
//! session, frames both ways (L2TPv2 data frames built with `wire::datapath::encap` upstream,
//! plain IPv4 from the core host downstream), classifiers that recognise them on arrival,
//! receivers counting per subscriber, and senders paced by what the receivers counted.
//!
//! Why pacing: a veth whose peer runs XDP queues received frames in a 256-entry ring and drops
//! when it is full, and a packet socket's sends are not flow controlled. The senders therefore
//! keep at most [`WINDOW`] frames unreceived per direction (flow control by what the receivers
//! counted, not by time), so any shortfall is a real loss and fails the test.
//!
//! Time limits ([`LIMIT`]) only bound a hung run; nothing asserts how fast anything went.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use l2xdp_wire::datapath::{decap, encap, DecapConfig, PppTx, Session, SessionKey, TxSeq, Verdict};
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use l2xdp_wire::net::frame::{udp_frame, Endpoints};

use crate::packet::PacketSocket;
use crate::topology::{
    PeerPort, CORE_HOST, CORE_MAC, L2TP_PORT, LAC_IP, LAC_MAC, LA_MAC, LC_MAC, LNS_IP,
};
use l2xdp_dataplane::api::{Binding, DataPlane};

/// Frames in flight per direction (see the module documentation).
pub const WINDOW: usize = 64;
/// Bounds a hung run; not a performance expectation.
pub const LIMIT: Duration = Duration::from_secs(60);
/// Inner UDP port on the subscriber side.
pub const SUB_PORT: u16 = 4000;
/// Inner UDP port on the core side.
pub const CORE_PORT: u16 = 5000;
/// EtherType IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Receive timeout of the counting sockets (how often a [`Counter`] looks at its stop flag).
pub const RECV_TIMEOUT: Duration = Duration::from_millis(100);
/// Receive buffer of the counting sockets.
pub const RECV_BUFFER: libc::c_int = 16 << 20;

/// One subscriber as the LAC sees it.
#[derive(Clone, Debug)]
pub struct Sub {
    /// The LAC's view of the session (what it encapsulates with, what it decapsulates by).
    pub view: Session,
    /// The address IPCP gave the subscriber.
    pub addr: Ipv4Addr,
    /// The LNS's key of the session (for its XDP counters).
    pub lns_key: SessionKey,
    /// An L2TPv3 Ethernet pseudowire: the index, in the core namespace, of the core host's
    /// end of the session's attachment circuit (downstream frames are sent there, and
    /// upstream ones arrive there). `None` for an L2TPv2 PPP session, routed through `lc`.
    pub circuit: Option<u32>,
}

impl Sub {
    /// A UDP L2TPv2 session of the LAC (`lac0`, port 1701) to the LNS (`la`, port 1701):
    /// `our_ids` and `peer_ids` as the LAC knows them, sequencing if either direction has it,
    /// no cookies, UDP checksums on; `addr` the subscriber's address.
    pub fn new(our_ids: SessionKey, peer_ids: SessionKey, sequencing: bool, addr: Ipv4Addr) -> Sub {
        let view = Session {
            transport: Transport::Udp,
            local_addr: IpAddr::V4(LAC_IP),
            peer_addr: IpAddr::V4(LNS_IP),
            local_port: L2TP_PORT,
            peer_port: L2TP_PORT,
            local_mac: LAC_MAC,
            next_hop_mac: LA_MAC,
            vlans: Vlans::NONE,
            our_ids,
            peer_ids,
            cookie_rx: Cookie::NONE,
            cookie_tx: Cookie::NONE,
            l2ss: false,
            sequencing,
            ppp: PppTx::default(),
            ttl: 64,
            dscp: 0,
            udp_checksum_v4: true,
        };
        Sub {
            view,
            addr,
            lns_key: peer_ids,
            circuit: None,
        }
    }

    /// A UDP L2TPv3 Ethernet pseudowire of the LAC to the LNS (as [`new`](Self::new), with
    /// the cookies, sublayer and sequencing the session negotiated). `addr` tags the IPv4
    /// packets its Ethernet frames carry (inner source upstream, destination downstream);
    /// `circuit` is the core host's end of its attachment circuit.
    #[allow(clippy::too_many_arguments)]
    pub fn pseudowire(
        our_ids: SessionKey,
        peer_ids: SessionKey,
        cookie_rx: Cookie,
        cookie_tx: Cookie,
        l2ss: bool,
        sequencing: bool,
        addr: Ipv4Addr,
        circuit: u32,
    ) -> Sub {
        let mut s = Sub::new(our_ids, peer_ids, sequencing, addr);
        s.view.cookie_rx = cookie_rx;
        s.view.cookie_tx = cookie_tx;
        s.view.l2ss = l2ss;
        s.circuit = Some(circuit);
        s
    }

    /// Whether this is an L2TPv3 pseudowire (Ethernet frames) rather than a PPP session.
    pub fn is_pseudowire(&self) -> bool {
        self.circuit.is_some()
    }
}

impl Sub {
    /// `n` (at most 245) static subscribers without a control plane: the LAC's tunnel 7,
    /// sessions 100 + i; the LNS's tunnel 9, sessions 200 + i; every other one sequenced;
    /// addresses 100.64.0.(10 + i). Keyed by the LAC's ids.
    pub fn numbered(n: usize) -> BTreeMap<SessionKey, Sub> {
        (0..n.min(245))
            .map(|i| {
                let lac_ids = SessionKey::V2 {
                    tunnel_id: 7,
                    session_id: 100 + i as u16,
                };
                let lns_ids = SessionKey::V2 {
                    tunnel_id: 9,
                    session_id: 200 + i as u16,
                };
                let addr = Ipv4Addr::new(100, 64, 0, 10 + i as u8);
                (lac_ids, Sub::new(lac_ids, lns_ids, i % 2 == 0, addr))
            })
            .collect()
    }

    /// The LNS's side of the session (what its control plane would install): the LAC's view
    /// mirrored, bound to the subscriber's address.
    pub fn lns_entry(&self) -> l2xdp_dataplane::api::SessionEntry {
        let v = &self.view;
        l2xdp_dataplane::api::SessionEntry {
            session: Session {
                local_addr: v.peer_addr,
                peer_addr: v.local_addr,
                local_port: v.peer_port,
                peer_port: v.local_port,
                local_mac: LA_MAC,
                next_hop_mac: LAC_MAC,
                our_ids: v.peer_ids,
                peer_ids: v.our_ids,
                cookie_rx: v.cookie_tx,
                cookie_tx: v.cookie_rx,
                ..*v
            },
            binding: l2xdp_dataplane::api::Binding::Subscriber {
                ipv4: Some(self.addr),
                ipv6: vec![],
            },
        }
    }
}

/// An IPv4/UDP packet (no Ethernet header) whose payload starts with `seq`.
pub fn inner_ip(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let e = Endpoints {
        src_mac: MacAddr([0; 6]),
        dst_mac: MacAddr([0; 6]),
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
    };
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend((0..60u8).collect::<Vec<_>>());
    udp_frame(&e, sport, dport, &payload).expect("inner packet")[14..].to_vec()
}

/// The LAC's L2TP data frame carrying IPv4 from the subscriber to the core host: as a PPP
/// frame (v2), or in an Ethernet frame to the core host's MAC (a v3 pseudowire).
pub fn upstream_frame(sub: &Sub, tx: &mut TxSeq, seq: u32) -> Vec<u8> {
    let mut inner = inner_ip(sub.addr, CORE_HOST, SUB_PORT, CORE_PORT, seq);
    if sub.is_pseudowire() {
        let mut eth = Vec::with_capacity(14 + inner.len());
        eth.extend_from_slice(&CORE_MAC.0);
        eth.extend_from_slice(&LAC_MAC.0);
        eth.extend_from_slice(&ETH_P_IP.to_be_bytes());
        eth.extend_from_slice(&inner);
        inner = eth;
    }
    let mut out = vec![0u8; 2048];
    let n = encap(&sub.view, tx, &inner, 1500, &mut out).expect("LAC encap");
    out.truncate(n);
    out
}

/// The core host's Ethernet frame carrying IPv4 to the subscriber (routed by the LNS for a
/// PPP session; for a pseudowire, sent on its attachment circuit and carried whole).
pub fn downstream_frame(sub: &Sub, seq: u32) -> Vec<u8> {
    let e = Endpoints {
        src_mac: CORE_MAC,
        dst_mac: LC_MAC,
        src: IpAddr::V4(CORE_HOST),
        dst: IpAddr::V4(sub.addr),
    };
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend((0..60u8).collect::<Vec<_>>());
    udp_frame(&e, CORE_PORT, SUB_PORT, &payload).expect("core packet")
}

/// Core side: an IPv4/UDP packet from a subscriber to the core host, routed by the LNS; the
/// class is its source.
pub fn classify_upstream(f: &[u8]) -> Option<u32> {
    // TTL 64 decremented once by the fast path (RFC 1812 §5.3.1).
    classify_core(f, 63)
}

/// Core side: a pseudowire's Ethernet frame carrying IPv4/UDP to the core host, delivered
/// unchanged on the attachment circuit (not routed: TTL as sent); the class is its source.
pub fn classify_upstream_pw(f: &[u8]) -> Option<u32> {
    if f.get(..6) != Some(&CORE_MAC.0[..]) || f.get(6..12) != Some(&LAC_MAC.0[..]) {
        return None;
    }
    classify_core(f, 64)
}

/// An Ethernet frame of IPv4/UDP to the core host's port with TTL `ttl`: its source address.
fn classify_core(f: &[u8], ttl: u8) -> Option<u32> {
    if f.len() < 14 + 28 || f[12..14] != ETH_P_IP.to_be_bytes() {
        return None;
    }
    let ip = &f[14..];
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let dport = u16::from_be_bytes([ip[22], ip[23]]);
    if ip[0] != 0x45 || ip[9] != 17 || dst != CORE_HOST || dport != CORE_PORT || ip[8] != ttl {
        return None;
    }
    Some(u32::from(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])))
}

/// LAC side: an L2TP data frame of one of our sessions carrying IPv4 for its subscriber; the
/// class is the subscriber's address.
pub fn classify_downstream(subs: &BTreeMap<SessionKey, Sub>, f: &[u8]) -> Option<u32> {
    let cfg = DecapConfig::default();
    // The LAC is the client end: any source the LNS sends is bound to the session it came on.
    // One map lookup per frame (the bench counts 100,000 sessions' frames with this).
    let seen = std::cell::Cell::new(None);
    let lookup = |k: &SessionKey| {
        seen.set(Some(*k));
        subs.get(k).map(|s| &s.view)
    };
    match decap(f, &cfg, lookup, |_| None, |_| seen.get()) {
        Verdict::Forward { inner, key, .. } => {
            let sub = subs.get(&key)?;
            // A pseudowire carries the core host's whole Ethernet frame.
            let ip = if sub.is_pseudowire() {
                let eth = &f[inner];
                if eth.len() < 14 + 20 || eth[12..14] != ETH_P_IP.to_be_bytes() {
                    return None;
                }
                &eth[14..]
            } else {
                &f[inner]
            };
            if ip.len() < 20 {
                return None;
            }
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            // Into the right session, unchanged by the LNS (it does not route it itself).
            (dst == sub.addr && src == CORE_HOST && ip[8] == 64).then(|| u32::from(sub.addr))
        }
        _ => None,
    }
}

/// Per class: (frames, bytes).
pub type Counts = HashMap<u32, (usize, u64)>;

/// A thread counting the received frames `classify` recognises, per class (frames the host
/// sent itself are skipped). Stopped and joined on drop.
#[derive(Debug)]
pub struct Counter {
    total: Arc<AtomicUsize>,
    counts: Arc<Mutex<Counts>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    /// Starts counting what `sock` receives.
    pub fn start(
        sock: PacketSocket,
        classify: impl Fn(&[u8]) -> Option<u32> + Send + 'static,
    ) -> Counter {
        let total = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, c, s) = (total.clone(), counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !s.load(Ordering::Acquire) {
                let Some((n, kind)) = sock.recv(&mut buf) else {
                    continue;
                };
                if n == 0 || kind == libc::PACKET_OUTGOING {
                    continue;
                }
                let frame = &buf[..n];
                if let Some(class) = classify(frame) {
                    let mut m = c.lock().expect("counts");
                    let e = m.entry(class).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += frame.len() as u64;
                    t.fetch_add(1, Ordering::Release);
                }
            }
        });
        Counter {
            total,
            counts,
            stop,
            thread: Some(thread),
        }
    }

    /// Frames counted so far, all classes.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Frames and bytes counted so far, per class.
    pub fn counts(&self) -> Counts {
        self.counts.lock().expect("counts").clone()
    }

    /// Waits (bounded by [`LIMIT`]) until `n` frames were counted; asserts exactly `n`.
    pub fn wait(&self, n: usize, what: &str) {
        assert_eq!(self.settle(n), n, "{what}: frames counted");
    }

    /// Waits (bounded by [`LIMIT`]) until `n` frames were counted; returns the count, for a
    /// caller that asserts with more context than [`wait`](Self::wait) has.
    pub fn settle(&self, n: usize) -> usize {
        let end = Instant::now() + LIMIT;
        while self.total() < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.total()
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One direction of paced traffic: a socket sending, the [`Counter`] at the far end, and
/// how many frames were sent since the counter stood at `base`.
#[derive(Debug)]
pub struct Paced<'a> {
    sock: &'a PacketSocket,
    rx: &'a Counter,
    base: usize,
    limit: Duration,
    /// Frames sent in this direction.
    pub sent: usize,
}

impl<'a> Paced<'a> {
    /// Starts a direction: what `rx` has counted so far is not this direction's.
    pub fn new(sock: &'a PacketSocket, rx: &'a Counter) -> Paced<'a> {
        Paced {
            sock,
            rx,
            base: rx.total(),
            sent: 0,
            limit: LIMIT,
        }
    }

    /// Gives up (panics, saying how many frames are missing) when the window stays full for
    /// `limit` instead of [`LIMIT`]: a demo reports lost frames sooner than a test must.
    pub fn with_limit(self, limit: Duration) -> Paced<'a> {
        Paced { limit, ..self }
    }

    /// Frames of this direction received so far.
    pub fn received(&self) -> usize {
        self.rx.total() - self.base
    }

    /// Sends `frame`, first waiting (bounded) until fewer than [`WINDOW`] of the frames sent
    /// in this direction are still unreceived.
    pub fn send(&mut self, frame: &[u8]) {
        self.send_on(None, frame);
    }

    /// As [`send`](Self::send), out of interface `ifindex` when given (a socket bound to all
    /// interfaces of its namespace), else out of the socket's own interface.
    pub fn send_on(&mut self, ifindex: Option<u32>, frame: &[u8]) {
        let end = Instant::now() + self.limit;
        while self.sent >= self.rx.total() - self.base + WINDOW {
            assert!(
                Instant::now() < end,
                "frames lost: {} sent, {} received",
                self.sent,
                self.rx.total() - self.base
            );
            std::thread::yield_now();
        }
        match ifindex {
            Some(i) => self.sock.send_to(i, frame),
            None => self.sock.send(frame),
        }
        self.sent += 1;
    }
}

/// The subscribers' traffic both ways: the LAC's sequence state per session and what was sent
/// upstream per subscriber (frames, bytes), for the final comparison.
#[derive(Debug)]
pub struct Flows {
    /// The subscribers, in sending order.
    pub order: Vec<Sub>,
    tx: HashMap<SessionKey, TxSeq>,
    /// Sent upstream per subscriber address: (frames, bytes).
    pub want_up: Counts,
    /// The next payload sequence number.
    pub seq: u32,
}

impl Flows {
    /// Flows for every subscriber of `subs`, in key order.
    pub fn new(subs: &BTreeMap<SessionKey, Sub>) -> Flows {
        let order: Vec<Sub> = subs.values().cloned().collect();
        let tx = order
            .iter()
            .map(|s| (s.view.our_ids, TxSeq::default()))
            .collect();
        Flows {
            order,
            tx,
            want_up: HashMap::new(),
            seq: 0,
        }
    }

    /// The LAC's sequence state of `sub` (for frames sent outside of [`send`](Self::send)).
    pub fn tx(&mut self, sub: &Sub) -> &mut TxSeq {
        self.tx.get_mut(&sub.view.our_ids).expect("tx")
    }

    /// Sends one frame each way for the `i`-th subscriber: upstream from the LAC, downstream
    /// from the core host, both paced; counts the upstream one in `want_up`.
    pub fn send(&mut self, i: usize, up: &mut Paced, down: &mut Paced) {
        let s = &self.order[i];
        let seq = self.seq;
        let f = upstream_frame(s, self.tx.get_mut(&s.view.our_ids).expect("tx"), seq);
        let e = self.want_up.entry(u32::from(s.addr)).or_insert((0, 0));
        e.0 += 1;
        e.1 += f.len() as u64;
        up.send(&f);
        down.send_on(s.circuit, &downstream_frame(s, seq));
        self.seq += 1;
    }

    /// `rounds` rounds of [`send`](Self::send) over every subscriber.
    pub fn send_rounds(&mut self, rounds: usize, up: &mut Paced, down: &mut Paced) {
        for _ in 0..rounds {
            for i in 0..self.order.len() {
                self.send(i, up, down);
            }
        }
    }

    /// `rounds` rounds like [`send_rounds`](Self::send_rounds), around an event another thread
    /// causes (a control plane killed): before frame number `hold_at` the sender waits (up to
    /// [`LIMIT`]) until `happened` is set, so the frames from there on are sent after the
    /// event; every frame sent while `happened` is set is counted in `sent_after`.
    pub fn send_rounds_through(
        &mut self,
        rounds: usize,
        up: &mut Paced,
        down: &mut Paced,
        hold_at: usize,
        happened: &std::sync::atomic::AtomicBool,
        sent_after: &std::sync::atomic::AtomicUsize,
    ) {
        use std::sync::atomic::Ordering;
        let mut n = 0usize;
        for _ in 0..rounds {
            for i in 0..self.order.len() {
                if n == hold_at {
                    let end = Instant::now() + LIMIT;
                    while !happened.load(Ordering::Acquire) {
                        assert!(Instant::now() < end, "the event never happened");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                if happened.load(Ordering::Acquire) {
                    sent_after.fetch_add(1, Ordering::Relaxed);
                }
                self.send(i, up, down);
                n += 1;
            }
        }
    }

    /// Asserts that every subscriber sent `per_sub` frames upstream, that the core counted
    /// `per_sub` from each (`up_got`) and the LAC `per_sub` for each (`down_got`), and that
    /// the fast path's per-session counters (`fast`, the LNS's) agree, packets and bytes.
    pub fn assert_delivered(
        &self,
        per_sub: usize,
        up_got: &Counts,
        down_got: &Counts,
        fast: &dyn DataPlane,
    ) {
        for s in &self.order {
            let k = u32::from(s.addr);
            let (sent, up_bytes) = self.want_up[&k];
            assert_eq!(sent, per_sub);
            assert_eq!(up_got[&k].0, per_sub, "upstream packets of {}", s.addr);
            assert_eq!(down_got[&k].0, per_sub, "downstream packets of {}", s.addr);
            // The fast path's own per-session counters agree, packets and bytes.
            let c = fast
                .counters(&s.lns_key)
                .expect("the session is still installed");
            assert_eq!(c.rx_packets, per_sub as u64, "XDP rx of {:?}", s.lns_key);
            assert_eq!(c.tx_packets, per_sub as u64, "XDP tx of {:?}", s.lns_key);
            assert_eq!(c.rx_bytes, up_bytes, "XDP rx bytes of {:?}", s.lns_key);
            assert_eq!(
                c.tx_bytes, down_got[&k].1,
                "XDP tx bytes of {:?}",
                s.lns_key
            );
        }
    }
}

/// The sessions of the fast path `fast` bound to a subscriber's IPv4 address.
pub fn bound(fast: &dyn DataPlane) -> BTreeMap<SessionKey, Ipv4Addr> {
    fast.sessions()
        .expect("sessions")
        .iter()
        .filter_map(|e| match e.binding {
            Binding::Subscriber { ipv4: Some(a), .. } => Some((e.key(), a)),
            _ => None,
        })
        .collect()
}

/// Every session of `subs` is bound, in `fast`, to its subscriber's address.
pub fn assert_bound(fast: &dyn DataPlane, subs: &BTreeMap<SessionKey, Sub>) {
    let bound = bound(fast);
    for s in subs.values() {
        assert_eq!(
            bound.get(&s.lns_key),
            Some(&s.addr),
            "binding of {:?}",
            s.lns_key
        );
    }
}

/// A packet socket for IPv4 frames on `port`, as the traffic sends and counts with:
/// [`RECV_TIMEOUT`], [`RECV_BUFFER`].
pub fn ip_socket(port: &PeerPort) -> PacketSocket {
    port.socket(ETH_P_IP, RECV_TIMEOUT)
        .force_recv_buffer(RECV_BUFFER)
}
