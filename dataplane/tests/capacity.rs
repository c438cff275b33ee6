//! The maps hold what the operator sized them for: with `load_sized(.., 150_000)` the fast path
//! takes 100,000 v2 sessions, each bound to its own subscriber address, and reads them all
//! back; with the default size it refuses the 65,537th session as full, and says so.

use std::net::Ipv4Addr;

use l2xdp_dataplane::api::{Binding, DataPlane, DataPlaneError, SessionEntry};
use l2xdp_dataplane::loader;
use l2xdp_dataplane::xdp::XdpDataPlane;
use l2xdp_lab::require_root;
use l2xdp_wire::datapath::{PppTx, Session, SessionKey};
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};

fn entry(i: u32) -> SessionEntry {
    let (tunnel_id, session_id) = ((i >> 16) as u16 + 1, (i & 0xffff) as u16);
    SessionEntry {
        session: Session {
            transport: Transport::Udp,
            local_addr: "192.0.2.1".parse().expect("addr"),
            peer_addr: "192.0.2.2".parse().expect("addr"),
            local_port: 1701,
            peer_port: 1701,
            local_mac: MacAddr([0; 6]),
            next_hop_mac: MacAddr([0; 6]),
            vlans: Vlans::NONE,
            our_ids: SessionKey::V2 {
                tunnel_id,
                session_id,
            },
            peer_ids: SessionKey::V2 {
                tunnel_id,
                session_id,
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
            ipv4: Some(Ipv4Addr::from(0x6440_0000 + i)),
            ipv6: vec![],
        },
    }
}

#[test]
fn sized_maps_hold_100k_sessions_and_the_default_refuses_past_64k() {
    if !require_root("sized_maps_hold_100k_sessions_and_the_default_refuses_past_64k") {
        return;
    }
    let mut ebpf = loader::load_sized(None, 150_000).expect("load");
    let mut dp = XdpDataPlane::from_ebpf(&mut ebpf).expect("maps");
    for i in 0..100_000 {
        dp.install(&entry(i)).expect("room for 100,000");
    }
    assert_eq!(dp.sessions().expect("read back").len(), 100_000);

    let mut ebpf = loader::load(None).expect("load");
    let mut dp = XdpDataPlane::from_ebpf(&mut ebpf).expect("maps");
    let n = loader::DEFAULT_MAX_SESSIONS;
    for i in 0..n {
        dp.install(&entry(i)).expect("room for the default");
    }
    match dp.install(&entry(n)) {
        Err(DataPlaneError::Full(_)) => {}
        other => panic!("the 65,537th session: {other:?}"),
    }
}

/// Two processes' handles on the same pinned maps (l2xdpd and `l2xdp-dataplane static`, a
/// bench and a live l2xdpd): each install holds the pin directory's lock and re-reads what the
/// other wrote, so neither takes the other's slot, profile or bucket entry. Here two handles
/// take turns: A installs, B installs sessions whose ids share A's home slots and whose
/// profiles differ, A removes one of its own; both read back every session, unchanged.
#[test]
fn two_writers_share_the_pinned_maps() {
    if !require_root("two_writers_share_the_pinned_maps") {
        return;
    }
    let pins = l2xdp_lab::topology::Pins::under_sys_fs_bpf("writers");
    let _ebpf = loader::load_sized(Some(pins.path()), 1000).expect("load with pins");
    let mut a = XdpDataPlane::open(pins.path()).expect("writer A");
    let mut b = XdpDataPlane::open(pins.path()).expect("writer B");
    let slots = loader::MapSizes::for_sessions(1000).slots;
    let mut want = Vec::new();
    for i in 0..20u32 {
        let ea = entry(i);
        a.install(&ea).expect("A installs");
        // The same home slot (id + slots), another tunnel and so another profile.
        let mut eb = entry(i + 5000);
        let (t, s) = match ea.key() {
            SessionKey::V2 {
                tunnel_id,
                session_id,
            } => (tunnel_id, session_id),
            SessionKey::V3 { .. } => unreachable!("v2 entries"),
        };
        let id = (u32::from(t) << 16 | u32::from(s)) + slots;
        eb.session.our_ids = SessionKey::V2 {
            tunnel_id: (id >> 16) as u16,
            session_id: id as u16,
        };
        eb.session.peer_port = 1702;
        b.install(&eb).expect("B installs");
        want.push(ea);
        want.push(eb);
    }
    a.remove(&want[0].key()).expect("A removes");
    want.remove(0);
    want.sort_by_key(SessionEntry::key);
    for (who, dp) in [("A", &a), ("B", &b)] {
        let got = dp.sessions().expect("read back");
        assert_eq!(got.len(), want.len(), "{who}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.session, w.session, "{who}: {:?}", w.key());
            assert_eq!(g.binding, w.binding, "{who}: {:?}", w.key());
        }
    }
    drop((a, b));
}
