//! The XDP programs against the reference (`wire::datapath`), with BPF_PROG_TEST_RUN inside a
//! fresh namespace (bpf_fib_lookup resolves through its routes and static neighbours). Needs
//! root (`l2xdp_lab::require_root`).
//!
//! Every case runs twice: `xdp::<case>` checks the programs against the reference;
//! `afxdp::<case>` is the differential test of AF_XDP mode — the same frames also go through
//! the programs in AF_XDP mode and the workers on real veths, and must come out identical (see
//! `common::Fixture` with `Mode::AfXdp`).

mod common;

use common::*;
use l2xdp_dataplane::api::{Binding, DataPlane, Ipv6Prefix, SessionEntry};
use l2xdp_dataplane::FastPathConfig;
use l2xdp_ebpf::maps::verdict;
use l2xdp_wire::datapath::{DropReason, SessionKey, Verdict, Why};
use l2xdp_wire::l2tp::header::Transport;

fn forwarded(v: &Verdict) -> bool {
    matches!(v, Verdict::Forward { .. })
}

fn v2_upstream_and_downstream_ipv4_and_ipv6_inside(mode: Mode) {
    if skip_unless_test_run("v2_upstream_and_downstream") {
        return;
    }
    let mut f = Fixture::new_mode("v2", mode);
    let e = v2_entry(false);
    f.install(&e);
    let key = e.key();
    let peer = mirror(&e.session);
    for inner in [
        inner_ip(SUB4, CORE4, 30),
        inner_ip(SUB6, CORE6, 30),
        inner_ip(SUB4, CORE4, 1),
    ] {
        let v = f.check_decap(&from_peer(&peer, &inner, 0));
        assert!(forwarded(&v), "{v:?}");
    }
    // Downstream: to the subscriber's IPv4 address and into its IPv6 prefix.
    for inner in [
        inner_ip(CORE4, SUB4, 30),
        inner_ip(CORE6, SUB6, 300),
        inner_ip(CORE6, SUB6, 1001),
    ] {
        f.check_encap(&key, &on_core(&inner), &inner, f.c0);
    }
    // PFC/ACFC framing downstream.
    let mut e2 = e.clone();
    e2.session.ppp.acfc = true;
    e2.session.ppp.pfc = true;
    f.install(&e2);
    let inner = inner_ip(CORE4, SUB4, 64);
    f.check_encap(&key, &on_core(&inner), &inner, f.c0);
    let c = f.dp.counters(&key).expect("counters");
    assert_eq!((c.rx_packets, c.tx_packets), (3, 4), "{c:?}");
}

fn v3_over_udp_and_ip_with_cookies(mode: Mode) {
    if skip_unless_test_run("v3_over_udp_and_ip_with_cookies") {
        return;
    }
    let mut f = Fixture::new_mode("v3", mode);
    let ac = f.c0;
    let cookies: [&[u8]; 3] = [&[], &[1, 2, 3, 4], &[1, 2, 3, 4, 5, 6, 7, 8]];
    let mut sid = 100;
    for transport in [Transport::Udp, Transport::Ip] {
        for v6 in [false, true] {
            for cookie in cookies {
                for l2ss in [false, true] {
                    sid += 1;
                    let e = v3_entry(sid, transport, v6, cookie, l2ss, false, ac);
                    f.install(&e);
                    let bloom = f.dp.config().expect("config").ac_bloom;
                    assert_eq!(bloom, 1 << (ac & 63), "the circuit's bit");
                    let peer = mirror(&e.session);
                    let eth = on_core(&inner_ip(CORE4, SUB4, 50));
                    let v = f.check_decap(&from_peer(&peer, &eth, 0));
                    assert!(forwarded(&v), "{v:?}");
                    // Wrong cookie.
                    if !cookie.is_empty() {
                        let mut bad = peer;
                        bad.cookie_tx =
                            l2xdp_wire::l2tp::header::Cookie::new(&vec![9; cookie.len()])
                                .expect("cookie");
                        let v = f.check_decap(&from_peer(&bad, &eth, 0));
                        assert_eq!(v, Verdict::Drop(DropReason::WrongCookie));
                    }
                    // Downstream: the frame on the attachment circuit.
                    f.check_encap(&e.key(), &eth, &eth, ac);
                    f.remove(&e.key());
                    assert_eq!(f.dp.config().expect("config").ac_bloom, 0, "no circuit");
                }
            }
        }
    }
}

fn sequencing_in_order_duplicate_and_relearn_after_reset(mode: Mode) {
    if skip_unless_test_run("sequencing") {
        return;
    }
    let mut f = Fixture::new_mode("seq", mode);
    let e = v2_entry(true);
    f.install(&e);
    let key = e.key();
    let peer = mirror(&e.session);
    let inner = inner_ip(SUB4, CORE4, 20);
    let mut verdicts = vec![];
    for ns in [0, 1, 2, 1, 2, 3] {
        verdicts.push(f.check_decap(&from_peer(&peer, &inner, ns)));
    }
    assert!(verdicts[..3].iter().all(forwarded));
    assert_eq!(verdicts[3], Verdict::Drop(DropReason::SequenceOutOfOrder));
    assert_eq!(verdicts[4], Verdict::Drop(DropReason::SequenceOutOfOrder));
    assert!(forwarded(&verdicts[5]));
    // The peer restarted at 0 without telling us: n = 5 in-sequence packets re-learn.
    let mut v = vec![];
    for ns in 0..6 {
        v.push(f.check_decap(&from_peer(&peer, &inner, ns)));
    }
    assert_eq!(v[3], Verdict::Drop(DropReason::SequenceOutOfOrder));
    assert!(forwarded(&v[4]), "5th in-sequence packet re-learns: {v:?}");
    assert!(forwarded(&v[5]));
    // Data channel reset (RFC 4951 §3.2.3): any number is learnt; our Ns restarts at 0.
    let down = inner_ip(CORE4, SUB4, 20);
    f.check_encap(&key, &on_core(&down), &down, f.c0);
    f.check_encap(&key, &on_core(&down), &down, f.c0);
    f.reset_sequence(&key);
    assert!(forwarded(&f.check_decap(&from_peer(&peer, &inner, 40000))));
    assert_eq!(
        f.check_decap(&from_peer(&peer, &inner, 39999)),
        Verdict::Drop(DropReason::SequenceOutOfOrder)
    );
    f.check_encap(&key, &on_core(&down), &down, f.c0);
    assert_eq!(f.dp.sequence_state(&key).expect("seq").tx_next, 1);
    // v3 sublayer sequencing (24 bits).
    let e3 = v3_entry(77, Transport::Ip, false, &[1, 2, 3, 4], true, true, f.c0);
    f.install(&e3);
    let p3 = mirror(&e3.session);
    let eth = on_core(&inner);
    for (ns, ok) in [
        (0, true),
        (1, true),
        (1, false),
        (0xff_ffff, false),
        (2, true),
    ] {
        let v = f.check_decap(&from_peer(&p3, &eth, ns));
        assert_eq!(forwarded(&v), ok, "ns {ns}: {v:?}");
    }
}

fn unknown_spoofed_control_and_ppp_control(mode: Mode) {
    if skip_unless_test_run("unknown_spoofed_control") {
        return;
    }
    let mut f = Fixture::new_mode("neg", mode);
    let e = v2_entry(false);
    f.install(&e);
    let peer = mirror(&e.session);
    let inner = inner_ip(SUB4, CORE4, 20);
    // Unknown session.
    let mut other = peer;
    other.peer_ids = SessionKey::V2 {
        tunnel_id: 1,
        session_id: 99,
    };
    assert_eq!(
        f.check_decap(&from_peer(&other, &inner, 0)),
        Verdict::Drop(DropReason::UnknownSession)
    );
    // Spoofed source address, then source port.
    let mut spoof = peer;
    spoof.local_addr = ip("192.0.2.3");
    assert_eq!(
        f.check_decap(&from_peer(&spoof, &inner, 0)),
        Verdict::Drop(DropReason::SpoofedSource)
    );
    let mut port = peer;
    port.local_port = 1702;
    assert_eq!(
        f.check_decap(&from_peer(&port, &inner, 0)),
        Verdict::Drop(DropReason::SpoofedSource)
    );
    // Inner TTL 1 → control plane.
    let mut ttl1 = inner.clone();
    ttl1[8] = 1;
    assert_eq!(
        f.check_decap(&from_peer(&peer, &ttl1, 0)),
        Verdict::ToControlPlane(Why::InnerTtlExpired)
    );
    // A PPP LCP packet (protocol 0xc021) in the session → control plane.
    let mut frame = from_peer(&peer, &inner, 0);
    let ppp_at = 14 + 20 + 8 + 6 + 2;
    frame[ppp_at..ppp_at + 2].copy_from_slice(&[0xc0, 0x21]);
    refresh_udp_checksum(&mut frame);
    assert_eq!(
        f.check_decap(&frame),
        Verdict::ToControlPlane(Why::PppControl)
    );
    // An L2TP control message (T bit).
    let mut ctl = from_peer(&peer, &inner, 0);
    ctl[42] = 0xc8;
    ctl[43] = 0x02;
    refresh_udp_checksum(&mut ctl);
    assert_eq!(
        f.check_decap(&ctl),
        Verdict::ToControlPlane(Why::L2tpControl)
    );
    // Bad UDP checksum.
    let mut bad = from_peer(&peer, &inner, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(
        f.check_decap(&bad),
        Verdict::Drop(DropReason::BadUdpChecksum)
    );
    // v3 over IP, session 0: control.
    let e3 = v3_entry(5, Transport::Ip, false, &[], false, false, f.c0);
    f.install(&e3);
    let mut p3 = mirror(&e3.session);
    p3.peer_ids = SessionKey::V3 { session_id: 0 };
    let eth = on_core(&inner);
    let mut out = vec![0; 512];
    // encap refuses nothing here: the reference writes session id 0 as given.
    let n = l2xdp_wire::datapath::encap(&p3, &mut Default::default(), &eth, 9000, &mut out);
    if let Ok(n) = n {
        assert_eq!(
            f.check_decap(&out[..n]),
            Verdict::ToControlPlane(Why::L2tpControl)
        );
    }
}

/// A v2 session (tunnel 1, `session_id`) with the fixture's addresses, bound as given.
fn v2_bound(session_id: u16, ipv4: Option<&str>, ipv6: &[(&str, u8)]) -> SessionEntry {
    let mut e = v2_entry(false);
    e.session.our_ids = SessionKey::V2 {
        tunnel_id: 1,
        session_id,
    };
    e.session.peer_ids = SessionKey::V2 {
        tunnel_id: 10,
        session_id: session_id + 100,
    };
    e.binding = Binding::Subscriber {
        ipv4: ipv4.map(|a| a.parse().expect("addr")),
        ipv6: ipv6
            .iter()
            .map(|(a, len)| Ipv6Prefix {
                addr: a.parse().expect("addr"),
                len: *len,
            })
            .collect(),
    };
    e
}

/// RFC 1661 §3.2 / BCP 38: only sources bound to the session are forwarded (IPv4 exact, IPv6
/// longest prefix); a session installed before its address is bound forwards nothing; IPv6
/// link-local goes to the control plane.
fn source_address_validation(mode: Mode) {
    if skip_unless_test_run("source_address_validation") {
        return;
    }
    let mut f = Fixture::new_mode("sav", mode);
    let ours = v2_entry(false); // SUB4, 2001:db8:100::/64
    let other = v2_bound(3, Some("100.64.0.2"), &[("2001:db8:100:0:ff00::", 72)]);
    let unbound = v2_bound(4, None, &[]);
    for e in [&ours, &other, &unbound] {
        f.install(e);
    }
    let peer = mirror(&ours.session);
    let drop = Verdict::Drop(DropReason::UnboundSource);
    let cases = [
        (SUB4, CORE4, None),
        (SUB6, CORE6, None),
        ("2001:db8:100:0:1::1", CORE6, None),
        ("100.64.0.2", CORE4, Some(drop.clone())), // another session's address
        ("100.64.0.99", CORE4, Some(drop.clone())), // nobody's
        ("2001:db8:100:0:ff00::1", CORE6, Some(drop.clone())), // longer prefix: the other's
        ("2001:db8:200::1", CORE6, Some(drop.clone())),
        (
            "fe80::1",
            CORE6,
            Some(Verdict::ToControlPlane(Why::Ipv6LinkLocal)),
        ),
        (
            "fe80::1",
            "ff02::2",
            Some(Verdict::ToControlPlane(Why::Ipv6LinkLocal)),
        ),
    ];
    for (src, dst, want) in cases {
        let before = f.dp.verdict_counters().expect("verdicts");
        let v = f.check_decap(&from_peer(&peer, &inner_ip(src, dst, 30), 0));
        match want {
            None => assert!(forwarded(&v), "{src}: {v:?}"),
            Some(w) => assert_eq!(v, w, "{src}"),
        }
        let after = f.dp.verdict_counters().expect("verdicts");
        let ll = (verdict::WHY_BASE + Why::Ipv6LinkLocal as u32) as usize;
        let is_ll = v == Verdict::ToControlPlane(Why::Ipv6LinkLocal);
        assert_eq!(after[ll], before[ll] + u64::from(is_ll), "{src}");
    }
    // TTL 1 from an unbound source: dropped, not handed to the control plane.
    let mut ttl1 = inner_ip("100.64.0.99", CORE4, 20);
    ttl1[8] = 1;
    assert_eq!(f.check_decap(&from_peer(&peer, &ttl1, 0)), drop);
    // Before its address is bound: PPP control passes, data does not, whatever the source.
    let upeer = mirror(&unbound.session);
    for src in [SUB4, "100.64.0.3", SUB6] {
        let dst = if src.contains(':') { CORE6 } else { CORE4 };
        let frame = from_peer(&upeer, &inner_ip(src, dst, 30), 0);
        assert_eq!(f.check_decap(&frame), drop, "{src}");
    }
    let mut lcp = from_peer(&upeer, &inner_ip("100.64.0.3", CORE4, 20), 0);
    let ppp_at = 14 + 20 + 8 + 6 + 2;
    lcp[ppp_at..ppp_at + 2].copy_from_slice(&[0xc0, 0x21]);
    refresh_udp_checksum(&mut lcp);
    assert_eq!(
        f.check_decap(&lcp),
        Verdict::ToControlPlane(Why::PppControl)
    );
    // IPCP up: re-installed with its address, it forwards.
    let now_bound = v2_bound(4, Some("100.64.0.3"), &[]);
    f.install(&now_bound);
    let v = f.check_decap(&from_peer(&upeer, &inner_ip("100.64.0.3", CORE4, 30), 0));
    assert!(forwarded(&v), "{v:?}");
    let drops = f.dp.drop_counters().expect("drops");
    assert_eq!(drops[DropReason::UnboundSource as usize], 8);
    let c = f.dp.counters(&unbound.key()).expect("counters");
    assert_eq!(c.rx_packets, 1, "only the bound packet counted as received");
}

/// Recomputes the UDP checksum of an IPv4/UDP frame after an edit.
fn refresh_udp_checksum(frame: &mut [u8]) {
    use l2xdp_wire::net::UdpPacket;
    let src = ip(&format!(
        "{}.{}.{}.{}",
        frame[26], frame[27], frame[28], frame[29]
    ));
    let dst = ip(&format!(
        "{}.{}.{}.{}",
        frame[30], frame[31], frame[32], frame[33]
    ));
    UdpPacket::new_unchecked(&mut frame[34..]).fill_checksum(src, dst);
}

fn every_prefix_of_valid_frames(mode: Mode) {
    if skip_unless_test_run("every_prefix_of_valid_frames") {
        return;
    }
    let mut f = Fixture::new_mode("trunc", mode);
    let e2 = v2_entry(false);
    f.install(&e2);
    let e3 = v3_entry(
        9,
        Transport::Udp,
        true,
        &[1, 2, 3, 4, 5, 6, 7, 8],
        true,
        false,
        f.c0,
    );
    f.install(&e3);
    let c1 = l2xdp_dataplane::loader::ifindex("c1").expect("c1");
    let e4 = v3_entry(10, Transport::Ip, false, &[1, 2, 3, 4], true, false, c1);
    f.install(&e4);
    let inner = inner_ip(SUB4, CORE4, 40);
    let frames = [
        from_peer(&mirror(&e2.session), &inner, 0),
        from_peer(&mirror(&e3.session), &on_core(&inner), 0),
        from_peer(&mirror(&e4.session), &on_core(&inner), 0),
    ];
    for frame in &frames {
        for len in 14..=frame.len() {
            f.check_decap(&frame[..len]);
        }
    }
    // Cut inside the IP packet but with lengths patched to match: the L2TP-level rules.
    for frame in &frames {
        let v4 = frame[12] == 0x08;
        for len in 14 + 40 + 8..frame.len() {
            let mut g = frame[..len].to_vec();
            if v4 {
                let tot = (len - 14) as u16;
                g[16..18].copy_from_slice(&tot.to_be_bytes());
                g[24..26].fill(0);
                let c = !l2xdp_wire::net::checksum::data(&g[14..34]);
                g[24..26].copy_from_slice(&c.to_be_bytes());
                if g[23] == 17 {
                    let ul = (len - 34) as u16;
                    g[38..40].copy_from_slice(&ul.to_be_bytes());
                    refresh_udp_checksum(&mut g);
                }
            } else {
                let pl = (len - 54) as u16;
                g[18..20].copy_from_slice(&pl.to_be_bytes());
                if g[20] == 17 {
                    g[58..60].copy_from_slice(&pl.to_be_bytes());
                    let (s, d) = (
                        std::net::IpAddr::from(<[u8; 16]>::try_from(&g[22..38]).expect("16")),
                        std::net::IpAddr::from(<[u8; 16]>::try_from(&g[38..54]).expect("16")),
                    );
                    l2xdp_wire::net::UdpPacket::new_unchecked(&mut g[54..]).fill_checksum(s, d);
                }
            }
            f.check_decap(&g);
        }
    }
}

fn sessions_read_back(mode: Mode) {
    if skip_unless_root("sessions_read_back") {
        return;
    }
    let mut f = Fixture::new_mode("rb", mode);
    let e2 = v2_entry(true);
    let e3 = v3_entry(
        9,
        Transport::Udp,
        true,
        &[1, 2, 3, 4, 5, 6, 7, 8],
        true,
        true,
        f.c0,
    );
    f.install(&e2);
    f.install(&e3);
    f.install(&e2);
    let mut want = vec![e2.clone(), e3.clone()];
    want.sort_by_key(|e| e.key());
    assert_eq!(f.dp.sessions().expect("sessions"), want);
    let mut clash = v3_entry(11, Transport::Udp, true, &[], false, false, f.c0);
    clash.session.local_port = 1701;
    assert!(matches!(
        f.dp.install(&clash),
        Err(l2xdp_dataplane::DataPlaneError::Conflict { .. })
    ));
    f.remove(&e2.key());
    assert_eq!(f.dp.sessions().expect("sessions"), vec![e3]);
    assert!(matches!(
        f.dp.counters(&e2.key()),
        Err(l2xdp_dataplane::DataPlaneError::NotFound(_))
    ));
}

/// Two sessions whose ids have the same home slot (`id & mask`, the one lookup per packet):
/// the second lives in another slot, found through the overflow index, and both forward both
/// ways; removing the first leaves the second working, and a third id with the freed home
/// slot takes it. The ids a control plane draws (`IdHint`) avoid taken homes.
fn colliding_ids_share_the_table(mode: Mode) {
    if skip_unless_test_run("colliding_ids_share_the_table") {
        return;
    }
    let mut f = Fixture::new_mode("collide", mode);
    let a = v2_bound(5, Some(SUB4), &[]);
    f.install(&a);
    let home = f.dp.slot_of(&a.key()).expect("installed");
    assert!(f.dp.home_is_free(&a.key()), "a session in its home slot");
    assert_eq!(f.dp.placement(), (1, 0));
    let hint = f.dp.id_hint().expect("the XDP fast path hints");
    let mut b = v2_bound(5, Some("100.64.0.2"), &[]);
    let mut colliding = None;
    for t in 2..=u16::MAX {
        let k = SessionKey::V2 {
            tunnel_id: t,
            session_id: 5,
        };
        if !hint.preferred(&k) {
            colliding = Some(k);
            break;
        }
    }
    b.session.our_ids = colliding.expect("a tunnel id whose home slot is taken");
    f.install(&b);
    assert_ne!(f.dp.slot_of(&b.key()), Some(home));
    assert_eq!(f.dp.placement(), (1, 1));
    for (e, src) in [(&a, SUB4), (&b, "100.64.0.2")] {
        let peer = mirror(&e.session);
        let v = f.check_decap(&from_peer(&peer, &inner_ip(src, CORE4, 30), 0));
        assert!(forwarded(&v), "{:?}: {v:?}", e.key());
        let inner = inner_ip(CORE4, src, 30);
        f.check_encap(&e.key(), &on_core(&inner), &inner, f.c0);
    }
    f.remove(&a.key());
    let peer = mirror(&b.session);
    let v = f.check_decap(&from_peer(&peer, &inner_ip("100.64.0.2", CORE4, 30), 0));
    assert!(forwarded(&v), "after the home slot's session went: {v:?}");
    let mut c = v2_bound(6, Some("100.64.0.3"), &[]);
    c.session.our_ids = a.key();
    assert!(
        hint.preferred(&c.key()),
        "the freed home slot is preferred again"
    );
    f.install(&c);
    assert_eq!(f.dp.slot_of(&c.key()), Some(home));
    let peer = mirror(&c.session);
    let v = f.check_decap(&from_peer(&peer, &inner_ip("100.64.0.3", CORE4, 30), 0));
    assert!(forwarded(&v), "{v:?}");
}

/// RFC 1122 §4.1.3.4: a nonzero, wrong UDP checksum is dropped; with verification off (the
/// operator's switch, `l2xdp-dataplane attach --no-udp-checksum-verify`, for access networks
/// that check it elsewhere) the same frame is decapsulated. XDP mode (the AF_XDP workers take
/// the setting at start).
#[test]
fn udp_checksum_verification_can_be_switched_off() {
    if skip_unless_test_run("udp_checksum_verification_can_be_switched_off") {
        return;
    }
    let mut f = Fixture::new("csum");
    let e = v2_entry(false);
    f.install(&e);
    let peer = mirror(&e.session);
    let mut bad = from_peer(&peer, &inner_ip(SUB4, CORE4, 30), 0);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(
        f.check_decap(&bad),
        Verdict::Drop(DropReason::BadUdpChecksum)
    );
    f.cfg.verify_udp_checksum = false;
    f.dp.set_config(&FastPathConfig {
        decap: f.cfg,
        mtu: 1500,
        cpumap_cpus: 0,
        afxdp: false,
    })
    .expect("config");
    let v = f.check_decap(&bad);
    assert!(forwarded(&v), "verification off: {v:?}");
}

/// An outer IPv4 header with options (IHL 6: four NOPs) is checked word by word and
/// decapsulated as the reference does; the common header without options takes the program's
/// shorter path.
fn outer_ipv4_options(mode: Mode) {
    if skip_unless_test_run("outer_ipv4_options") {
        return;
    }
    let mut f = Fixture::new_mode("ipopt", mode);
    let e = v2_entry(false);
    f.install(&e);
    let peer = mirror(&e.session);
    let plain = from_peer(&peer, &inner_ip(SUB4, CORE4, 30), 0);
    let mut opt = plain[..34].to_vec();
    opt.extend_from_slice(&[1, 1, 1, 1]);
    opt.extend_from_slice(&plain[34..]);
    opt[14] = 0x46;
    let tot = u16::from_be_bytes([opt[16], opt[17]]) + 4;
    opt[16..18].copy_from_slice(&tot.to_be_bytes());
    opt[24..26].fill(0);
    let sum: u32 = opt[14..38]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let c = !(((folded & 0xffff) + (folded >> 16)) as u16);
    opt[24..26].copy_from_slice(&c.to_be_bytes());
    for frame in [&plain, &opt] {
        let v = f.check_decap(frame);
        assert!(forwarded(&v), "{v:?}");
    }
    // A wrong header checksum with options: not ours (passed), as the reference says.
    let mut bad = opt.clone();
    bad[24] ^= 0xff;
    let v = f.check_decap(&bad);
    assert!(!forwarded(&v), "{v:?}");
}

/// The profile index of an installed session, read from its slot.
fn profile_of(f: &Fixture, key: &SessionKey) -> u16 {
    f.dp.profile_of(key).expect("read").expect("installed")
}

/// L2TPv3 sessions of one tunnel (the same addresses and framing) share one profile, the
/// encap template: each packet gets its own peer session id and transmit cookie from the
/// session's slot (RFC 3931 §4.1.1.1, §4.1.2.1). Sessions on two circuits with different
/// peer ids and cookies of the same length share; a cookie of another length is another
/// profile. Every frame both ways is the reference's. XDP mode (AF_XDP mode receives on c0
/// only; the worker builds its headers from the same slots, `v3_over_udp_and_ip_with_cookies`).
#[test]
fn v3_sessions_of_a_tunnel_share_a_profile() {
    if skip_unless_test_run("v3_sessions_of_a_tunnel_share_a_profile") {
        return;
    }
    let mut f = Fixture::new("v3share");
    // c1, c0's peer end in the same namespace, is the second circuit.
    let c1 = {
        let _g = f.ns.enter();
        l2xdp_dataplane::loader::ifindex("c1").expect("c1")
    };
    for transport in [Transport::Udp, Transport::Ip] {
        let mut a = v3_entry(
            201,
            transport,
            false,
            &[1, 2, 3, 4, 5, 6, 7, 8],
            true,
            false,
            f.c0,
        );
        let mut b = v3_entry(
            302,
            transport,
            false,
            &[8, 7, 6, 5, 4, 3, 2, 1],
            true,
            false,
            c1,
        );
        // Cookies of the same length but different values, distinct peer ids.
        b.session.cookie_tx = l2xdp_wire::l2tp::header::Cookie::new(&[0xa5; 8]).expect("cookie");
        a.session.peer_ids = SessionKey::V3 { session_id: 7001 };
        b.session.peer_ids = SessionKey::V3 {
            session_id: 0x0102_0304,
        };
        let c = v3_entry(403, transport, false, &[9, 9, 9, 9], true, false, 1_000_000);
        f.install(&a);
        f.install(&b);
        f.install(&c);
        let (pa, pb, pc) = (
            profile_of(&f, &a.key()),
            profile_of(&f, &b.key()),
            profile_of(&f, &c.key()),
        );
        assert_eq!(
            pa, pb,
            "{transport:?}: one tunnel, one framing: one profile"
        );
        assert_ne!(pa, pc, "{transport:?}: a 4-byte cookie is another framing");
        let eth = on_core(&inner_ip(CORE4, SUB4, 50));
        for (e, ac) in [(&a, f.c0), (&b, c1), (&a, f.c0)] {
            f.check_encap(&e.key(), &eth, &eth, ac);
            let v = f.check_decap(&from_peer(&mirror(&e.session), &eth, 0));
            assert!(forwarded(&v), "{v:?}");
        }
        // The sessions read back with their own ids and cookies.
        let back = f.dp.sessions().expect("sessions");
        for e in [&a, &b, &c] {
            let got = back.iter().find(|x| x.key() == e.key()).expect("read back");
            assert_eq!(got.session, e.session, "read back");
        }
        for e in [&a, &b, &c] {
            f.remove(&e.key());
        }
    }
}

/// A circuit finds its session without hashing, at `ifindex & ac_mask` of `l2xdp_circuits`;
/// one whose entry another circuit holds is in `l2xdp_ac`. Both ways forward every frame as
/// the reference does, through a move from one to the other and back, and a circuit whose
/// session went is not encapsulated any more (passed to the kernel).
#[test]
fn v3_circuits_whose_entry_is_taken_are_found_in_the_overflow() {
    if skip_unless_test_run("v3_circuits_whose_entry_is_taken") {
        return;
    }
    let mut f = Fixture::new("v3circ");
    let entries = f.dp.config().expect("config").ac_mask + 1;
    assert!(entries >= 1024 && entries.is_power_of_two(), "{entries}");
    let c0 = f.c0;
    // A circuit (no such interface: never sent on) whose entry is c0's.
    let other = v3_entry(501, Transport::Ip, false, &[], false, false, c0 + entries);
    let mine = v3_entry(502, Transport::Ip, false, &[1, 2, 3, 4], true, false, c0);
    let eth = on_core(&inner_ip(CORE4, SUB4, 40));
    f.install(&other);
    f.install(&mine); // in l2xdp_ac
    f.check_encap(&mine.key(), &eth, &eth, c0);
    f.remove(&other.key()); // the entry is free, c0 still in l2xdp_ac
    f.check_encap(&mine.key(), &eth, &eth, c0);
    f.install(&mine); // moves to its entry
    f.check_encap(&mine.key(), &eth, &eth, c0);
    f.install(&other); // the entry is c0's now: the other circuit goes to l2xdp_ac
    f.check_encap(&mine.key(), &eth, &eth, c0);
    f.remove(&mine.key());
    let got = l2xdp_lab::test_run::run(f.core_fd, &eth, c0, 1).expect("test run");
    assert_eq!(
        got.action,
        l2xdp_lab::test_run::action::PASS,
        "no session on c0 any more"
    );
}

/// Each case in both modes.
macro_rules! cases {
    ($mod:ident, $mode:expr) => {
        mod $mod {
            #[test]
            fn v2_upstream_and_downstream_ipv4_and_ipv6_inside() {
                super::v2_upstream_and_downstream_ipv4_and_ipv6_inside($mode)
            }
            #[test]
            fn v3_over_udp_and_ip_with_cookies() {
                super::v3_over_udp_and_ip_with_cookies($mode)
            }
            #[test]
            fn sequencing_in_order_duplicate_and_relearn_after_reset() {
                super::sequencing_in_order_duplicate_and_relearn_after_reset($mode)
            }
            #[test]
            fn unknown_spoofed_control_and_ppp_control() {
                super::unknown_spoofed_control_and_ppp_control($mode)
            }
            #[test]
            fn source_address_validation() {
                super::source_address_validation($mode)
            }
            #[test]
            fn every_prefix_of_valid_frames() {
                super::every_prefix_of_valid_frames($mode)
            }
            #[test]
            fn sessions_read_back() {
                super::sessions_read_back($mode)
            }
            #[test]
            fn colliding_ids_share_the_table() {
                super::colliding_ids_share_the_table($mode)
            }
            #[test]
            fn outer_ipv4_options() {
                super::outer_ipv4_options($mode)
            }
        }
    };
}

cases!(xdp, super::Mode::Xdp);
cases!(afxdp, super::Mode::AfXdp);
