//! Tests of `node/recovery.rs`: transparent resume through a node (a restarted LNS node goes
//! on with the LAC's control connection and PPP link), and the node's part of "never leave a
//! peer half-open" (fast-path sessions of a tunnel the node has no state for get their peer a
//! StopCCN).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use l2xdp_dataplane_api::{DataPlane, MemoryDataPlane};
use l2xdp_wire::datapath::{PppTx, Session, SessionKey};
use l2xdp_wire::l2tp::header::{ControlHeader, Cookie, Transport};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};

use super::*;
use crate::l2tp::failover::{MemoryStore, StateStore, StoreError};
use crate::l2tp::{FailoverConfig, L2tpConfig, Peer};
use crate::node::NodeConfig;
use crate::ppp::{MemoryCredentials, PppConfig};
use crate::random::Random;

const PEER: &str = "192.0.2.9:1701";

fn entry(session: u16) -> SessionEntry {
    let peer: SocketAddr = PEER.parse().expect("addr");
    SessionEntry {
        session: Session {
            transport: Transport::Udp,
            local_addr: "192.0.2.1".parse().expect("addr"),
            peer_addr: peer.ip(),
            local_port: 1701,
            peer_port: peer.port(),
            local_mac: MacAddr([0; 6]),
            next_hop_mac: MacAddr([0; 6]),
            vlans: Vlans::NONE,
            our_ids: SessionKey::V2 {
                tunnel_id: 100,
                session_id: session,
            },
            peer_ids: SessionKey::V2 {
                tunnel_id: 7,
                session_id: session + 1000,
            },
            cookie_rx: Cookie::NONE,
            cookie_tx: Cookie::NONE,
            l2ss: false,
            sequencing: false,
            ppp: PppTx::default(),
            ttl: 64,
            dscp: 0,
            udp_checksum_v4: false,
        },
        binding: Binding::Subscriber {
            ipv4: None,
            ipv6: Vec::new(),
        },
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<MemoryDataPlane>>);

impl DataPlane for Shared {
    fn install(&mut self, e: &SessionEntry) -> Result<(), l2xdp_dataplane_api::DataPlaneError> {
        self.0.lock().expect("dp").install(e)
    }
    fn remove(
        &mut self,
        k: &l2xdp_wire::datapath::SessionKey,
    ) -> Result<(), l2xdp_dataplane_api::DataPlaneError> {
        self.0.lock().expect("dp").remove(k)
    }
    fn sessions(&self) -> Result<Vec<SessionEntry>, l2xdp_dataplane_api::DataPlaneError> {
        self.0.lock().expect("dp").sessions()
    }
    fn counters(
        &self,
        k: &l2xdp_wire::datapath::SessionKey,
    ) -> Result<l2xdp_dataplane_api::SessionCounters, l2xdp_dataplane_api::DataPlaneError> {
        self.0.lock().expect("dp").counters(k)
    }
    fn reset_sequence(
        &mut self,
        k: &l2xdp_wire::datapath::SessionKey,
    ) -> Result<(), l2xdp_dataplane_api::DataPlaneError> {
        self.0.lock().expect("dp").reset_sequence(k)
    }
}

/// The store was emptied while the fast path kept two sessions of tunnel 100 (the peer's
/// 7): they are removed, and the peer gets sequence probes, then, once its ZLB names the
/// Ns it expects, a StopCCN with that Ns and Result Code 1 — all before any timer runs.
#[test]
fn emptied_store_the_fast_path_peer_gets_a_stopccn() {
    let dp = Shared::default();
    let mut w = dp.clone();
    w.install(&entry(1)).expect("install");
    w.install(&entry(2)).expect("install");
    let l2tp = L2tpConfig {
        host_name: "lns".into(),
        failover: Some(FailoverConfig {
            control: true,
            data: true,
            recovery_time_ms: 5_000,
        }),
        ..L2tpConfig::default()
    };
    let mut node = Node::new(
        NodeConfig {
            l2tp,
            ppp: Arc::new(PppConfig::default()),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: HashMap::new(),
            random: Random::seeded(3),
        },
        Box::new(dp.clone()),
    )
    .with_store(Box::new(MemoryStore::new()));
    let now = Instant::now();
    node.recover(now).expect("recover");
    assert!(
        dp.sessions().expect("list").is_empty(),
        "stale entries removed"
    );
    let peer = Peer::udp(PEER.parse().expect("addr"));
    let mut probes = Vec::new();
    while let Some((to, d)) = node.poll_transmit() {
        assert_eq!(to, peer);
        let m = ControlMessage::parse(&d, &Default::default()).expect("valid");
        assert_eq!(m.message_type(), Some(MessageType::Hello));
        assert_eq!(m.header.tunnel_id, 7);
        probes.push(m.header.ns);
    }
    assert_eq!(
        probes.len(),
        2,
        "two probes, one per half of the sequence space"
    );
    assert_eq!(probes[1].wrapping_sub(probes[0]), 0x8000);
    // The peer's ZLB: it expects our Ns 42, its own next is 5.
    let zlb = ControlMessage::zlb(ControlHeader {
        version: Version::V2,
        tunnel_id: 100,
        session_id: 0,
        ns: 5,
        nr: 42,
    })
    .to_bytes(None)
    .expect("zlb");
    node.handle_datagram("192.0.2.1:1701".parse().expect("addr"), peer, &zlb, now);
    let (to, d) = node.poll_transmit().expect("StopCCN");
    assert_eq!(to, peer);
    let m = ControlMessage::parse(&d, &Default::default()).expect("valid");
    assert_eq!(m.message_type(), Some(MessageType::StopCcn));
    assert_eq!((m.header.tunnel_id, m.header.ns, m.header.nr), (7, 42, 5));
    assert_eq!(m.result_code().map(|r| r.0), Some(1));
    assert_eq!(
        node.registry()
            .counters()
            .failover
            .get("farewell StopCCN sent"),
        Some(&1)
    );
}

/// A failover store shared by the node and the test (as the state directory outlives the
/// process): what is committed is what a restarted node loads.
#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<MemoryStore>>);

impl StateStore for SharedStore {
    fn put_tunnel(&mut self, t: &crate::l2tp::failover::TunnelRecord) -> Result<(), StoreError> {
        self.0.lock().expect("store").put_tunnel(t)
    }
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
        self.0.lock().expect("store").remove_tunnel(id)
    }
    fn put_sequence(
        &mut self,
        q: &crate::l2tp::failover::SequenceRecord,
    ) -> Result<(), StoreError> {
        self.0.lock().expect("store").put_sequence(q)
    }
    fn put_session(&mut self, s: &crate::l2tp::failover::SessionRecord) -> Result<(), StoreError> {
        self.0.lock().expect("store").put_session(s)
    }
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
        self.0
            .lock()
            .expect("store")
            .remove_session(tunnel, session)
    }
    fn load(&self) -> Result<crate::l2tp::failover::RecoveryState, StoreError> {
        self.0.lock().expect("store").load()
    }
}

const LAC: &str = "192.0.2.1:1701";
const LNS: &str = "192.0.2.2:1701";

fn lns_node(store: &SharedStore) -> Node {
    use crate::ppp::{AuthMethod, Ipv4Pool, Ipv4Range};
    let mut creds = MemoryCredentials::new();
    creds.insert(b"user0".to_vec(), b"pw0".to_vec(), None);
    let mut ppp = PppConfig {
        auth: vec![AuthMethod::Chap],
        ..PppConfig::default()
    };
    ppp.ipcp.local_address = "100.64.0.1".parse().expect("addr");
    let range: Ipv4Range = "100.64.0.2-100.64.0.9".parse().expect("range");
    ppp.ipcp.pool = vec![range];
    let pool = Ipv4Pool::new(&[range], &[]).expect("pool");
    Node::new(
        NodeConfig {
            l2tp: L2tpConfig {
                host_name: "lns".into(),
                failover: Some(FailoverConfig {
                    control: true,
                    data: true,
                    recovery_time_ms: 5_000,
                }),
                ..L2tpConfig::default()
            },
            ppp: Arc::new(ppp),
            credentials: Arc::new(creds),
            pool: Some(Arc::new(Mutex::new(pool))),
            attachment_circuits: HashMap::new(),
            random: Random::seeded(11),
        },
        Box::new(MemoryDataPlane::new()),
    )
    .with_store(Box::new(store.clone()))
}

/// Datagrams both ways and timers, synthetic time, for `secs`; `lns_up`: false drops
/// what the LAC sends (the LNS is down). Returns the LAC's events.
fn shuttle(
    lac: &mut Node,
    lns: &mut Node,
    now: &mut Instant,
    secs: u64,
    lns_up: bool,
) -> Vec<NodeEvent> {
    let (lac_addr, lns_addr): (SocketAddr, SocketAddr) =
        (LAC.parse().expect("addr"), LNS.parse().expect("addr"));
    let end = *now + std::time::Duration::from_secs(secs);
    let mut events = Vec::new();
    loop {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some((_, d)) = lac.poll_transmit() {
                moved = true;
                if lns_up {
                    lns.handle_datagram(lns_addr, Peer::udp(lac_addr), &d, *now);
                }
            }
            while let Some((_, d)) = lns.poll_transmit() {
                moved = true;
                lac.handle_datagram(lac_addr, Peer::udp(lns_addr), &d, *now);
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = lac.poll_event() {
            events.push(e);
        }
        while lns.poll_event().is_some() {}
        let next = [lac.poll_timeout(), lns.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= end => {
                *now = t.max(*now);
                lac.handle_timeout(*now);
                if lns_up {
                    lns.handle_timeout(*now);
                }
            }
            _ => {
                *now = end;
                return events;
            }
        }
    }
}

/// The LNS node is killed with a PPP session up and the LAC's HELLO unanswered, and a new
/// node restarts from the store 3 s later: the LAC's retransmission is accepted and
/// acknowledged, its HELLOs answered, and the restored PPP link answers its LCP echoes
/// (every second, 5 unanswered and it would drop): the LAC sees nothing go down for 30 s.
#[test]
fn restarted_node_resumes_and_answers_lcp_echoes() {
    let store = SharedStore::default();
    let mut lns = lns_node(&store);
    let mut lac_cfg = L2tpConfig {
        host_name: "lac".into(),
        hello_interval_secs: 2,
        ..L2tpConfig::default()
    };
    lac_cfg.pseudowire.cookie_len = 0;
    let mut lac = Node::new(
        NodeConfig {
            l2tp: lac_cfg,
            ppp: Arc::new(PppConfig {
                echo_interval: std::time::Duration::from_secs(1),
                echo_failures: 5,
                ..PppConfig::default()
            }),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: HashMap::new(),
            random: Random::seeded(12),
        },
        Box::new(MemoryDataPlane::new()),
    );
    let mut now = Instant::now();
    let t = lac
        .open_tunnel(Peer::udp(LNS.parse().expect("addr")), Version::V2, now)
        .expect("tunnel");
    shuttle(&mut lac, &mut lns, &mut now, 1, true);
    let auth = crate::node::ClientAuth {
        user: "user0".into(),
        password: b"pw0".to_vec(),
    };
    lac.open_session(t, crate::l2tp::CallParams::default(), Some(auth), now)
        .expect("session");
    shuttle(&mut lac, &mut lns, &mut now, 5, true);
    assert_eq!(lns.session_counts(), (1, 1), "PPP up at the LNS");
    assert_eq!(lac.session_counts(), (1, 1), "PPP up at the LAC");

    // Killed; the LAC's HELLOs and echoes meanwhile are lost.
    drop(lns);
    let down = shuttle(
        &mut lac,
        &mut lns_node(&SharedStore::default()),
        &mut now,
        3,
        false,
    );
    assert!(
        lac.registry()
            .tunnels()
            .any(|x| x.channel().in_flight() > 0),
        "a HELLO waits"
    );
    let mut lns = lns_node(&store);
    let rep = lns.recover(now).expect("recover");
    assert_eq!((rep.resuming.len(), rep.sessions), (1, 1));
    let frames_before = lns.counters.ppp_frames_out;
    let after = shuttle(&mut lac, &mut lns, &mut now, 30, true);
    let lost: Vec<_> = down
        .iter()
        .chain(&after)
        .filter(|e| {
            matches!(
                e,
                NodeEvent::TunnelDown { .. } | NodeEvent::SessionDown { .. }
            )
        })
        .collect();
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(lac.session_counts(), (1, 1), "PPP still up at the LAC");
    assert_eq!(lns.session_counts(), (1, 1), "PPP up at the restarted LNS");
    assert!(
        lns.counters.ppp_frames_out >= frames_before + 20,
        "the restored link answered the LCP echoes: {} frames",
        lns.counters.ppp_frames_out - frames_before
    );
    assert_eq!(
        lns.registry().counters().failover.get("tunnel resumed"),
        Some(&1)
    );
    assert!(lac
        .registry()
        .tunnels()
        .all(|x| x.channel().stats().retransmitted > 0));
}

/// The compact encoding of a session's app data (format 2) and reading format 1.
mod app_data {
    use super::super::AppData;
    use crate::ppp::{AuthMethod, LinkState};

    fn up() -> AppData {
        AppData {
            ppp: Some(LinkState {
                user: Some("subscriber-17@isp.example".into()),
                local_ipv4: Some([100, 64, 0, 1].into()),
                peer_ipv4: Some([100, 64, 3, 17].into()),
                dns: [Some([192, 0, 2, 53].into()), None],
                ipv6: Some(([1; 8], [2; 8])),
                local_magic: 0xdead_beef,
                peer_magic: 0x0102_0304,
                local_mru: 1460,
                peer_mru: 1492,
                pfc: true,
                acfc: false,
                auth: Some(AuthMethod::Chap),
            }),
            client_user: None,
        }
    }

    #[test]
    fn app_data_round_trips_compactly() {
        let a = up();
        let v = a.encode().expect("encode");
        assert!(v.len() < 80, "{} bytes", v.len());
        assert_eq!(AppData::decode(&v).expect("decode"), a);
        let c = AppData {
            client_user: Some("u".into()),
            ..up()
        };
        assert_eq!(AppData::decode(&c.encode().expect("e")).expect("d"), c);
        assert!(AppData::default().encode().expect("e").is_empty());
        assert_eq!(AppData::decode(&[]).expect("d"), AppData::default());
    }

    /// A session persisted by l2xdpd before format 2: its app data is the JSON it wrote.
    #[test]
    fn app_data_of_format_1_is_read() {
        let a = up();
        let json = serde_json::to_vec(&serde_json::to_value(&a).expect("v")).expect("json");
        assert_eq!(AppData::decode(&json).expect("decode"), a);
        let old = br#"{"ppp":null}"#;
        assert_eq!(AppData::decode(old).expect("decode"), AppData::default());
        assert!(AppData::decode(b"{\"ppp\":").is_err());
    }
}
