//! Tests of the reference data path (`l2xdp_wire::datapath`).

use core::net::IpAddr;
use std::collections::HashMap;

use l2xdp_wire::datapath::*;
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::checksum;
use l2xdp_wire::net::{MacAddr, VlanTag, Vlans};
use proptest::prelude::*;

const LNS_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const LAC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn v2_session(six: bool) -> Session {
    let (l, p) = if six {
        (ip("2001:db8::1"), ip("2001:db8::2"))
    } else {
        (ip("192.0.2.1"), ip("192.0.2.2"))
    };
    Session {
        transport: Transport::Udp,
        local_addr: l,
        peer_addr: p,
        local_port: 1701,
        peer_port: 1701,
        local_mac: LNS_MAC,
        next_hop_mac: LAC_MAC,
        vlans: Vlans::NONE,
        our_ids: SessionKey::V2 {
            tunnel_id: 0x0101,
            session_id: 0x0202,
        },
        peer_ids: SessionKey::V2 {
            tunnel_id: 0x0011,
            session_id: 0x0022,
        },
        cookie_rx: Cookie::NONE,
        cookie_tx: Cookie::NONE,
        l2ss: false,
        sequencing: false,
        ppp: PppTx::default(),
        ttl: 64,
        dscp: 0,
        udp_checksum_v4: false,
    }
}

fn v3_session(six: bool, transport: Transport, cookie: &[u8], l2ss: bool, seq: bool) -> Session {
    let mut s = v2_session(six);
    s.transport = transport;
    s.our_ids = SessionKey::V3 {
        session_id: 0x0000_1111,
    };
    s.peer_ids = SessionKey::V3 {
        session_id: 0x0000_1234,
    };
    s.cookie_rx = Cookie::new(cookie).expect("0/4/8");
    let tx: Vec<u8> = cookie.iter().map(|b| b ^ 0x5a).collect();
    s.cookie_tx = Cookie::new(&tx).expect("0/4/8");
    s.l2ss = l2ss;
    s.sequencing = seq;
    s
}

/// The same session seen from the peer: addresses, ports, MACs, IDs and cookies swapped.
fn mirror(s: &Session) -> Session {
    Session {
        local_addr: s.peer_addr,
        peer_addr: s.local_addr,
        local_port: s.peer_port,
        peer_port: s.local_port,
        local_mac: s.next_hop_mac,
        next_hop_mac: s.local_mac,
        our_ids: s.peer_ids,
        peer_ids: s.our_ids,
        cookie_rx: s.cookie_tx,
        cookie_tx: s.cookie_rx,
        ..*s
    }
}

fn inner_v4() -> Vec<u8> {
    // 10.0.0.1 → 10.0.0.2, protocol 253, TTL 64, 4 bytes of payload.
    let mut p = vec![
        0x45, 0, 0, 24, 0, 0, 0x40, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 2, 3, 4,
    ];
    let c = checksum::finish(checksum::data(&p[..20]));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn inner_v6() -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 4, 59, 64];
    p.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
    ]);
    p.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
    ]);
    p.extend_from_slice(&[9, 9, 9, 9]);
    p
}

fn inner_eth() -> Vec<u8> {
    let mut f = vec![
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x08, 0x00,
    ];
    f.extend_from_slice(&inner_v4());
    f
}

/// Encapsulates with `tx_side`, returns the frame.
fn enc(tx_side: &Session, tx: &mut TxSeq, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let n = encap(tx_side, tx, inner, 1500, &mut out).expect("encap");
    out.truncate(n);
    out
}

/// The subscriber address bound to the session of [`dec`]: the source of [`inner_v4`].
const SUB4: &str = "10.0.0.1";
/// The subscriber prefix bound to the session of [`dec`]: holds the source of [`inner_v6`].
const SUB6_PREFIX: (&str, u8) = ("2001:db8::", 64);

/// A binding table as the fast path's maps answer it: IPv4 exact, IPv6 longest-prefix match.
fn lookup_bound(
    v4: &[(&str, SessionKey)],
    v6: &[(&str, u8, SessionKey)],
    a: IpAddr,
) -> Option<SessionKey> {
    match a {
        IpAddr::V4(a) => v4
            .iter()
            .find(|(b, _)| ip(b) == IpAddr::V4(a))
            .map(|(_, k)| *k),
        IpAddr::V6(a) => v6
            .iter()
            .filter(|(p, len, _)| {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                let IpAddr::V6(p) = ip(p) else { return false };
                u128::from(a) & mask == u128::from(p) & mask
            })
            .max_by_key(|(_, len, _)| *len)
            .map(|(_, _, k)| *k),
    }
}

/// Decaps a frame with one installed session, [`SUB4`] and [`SUB6_PREFIX`] bound to it.
fn dec(frame: &[u8], cfg: &DecapConfig, rx_side: &Session, rx: &mut RxSeq) -> Verdict {
    let key = rx_side.our_ids;
    decap(
        frame,
        cfg,
        |k| (*k == key).then_some(rx_side),
        |k| (*k == key).then_some(rx),
        |a| lookup_bound(&[(SUB4, key)], &[(SUB6_PREFIX.0, SUB6_PREFIX.1, key)], a),
    )
}

fn round_trip(tx_side: &Session, inner: &[u8], kind: InnerKind) {
    let rx_side = mirror(tx_side);
    let frame = enc(tx_side, &mut TxSeq::default(), inner);
    let v = dec(
        &frame,
        &DecapConfig::default(),
        &rx_side,
        &mut RxSeq::default(),
    );
    match v {
        Verdict::Forward {
            inner: r,
            kind: k,
            key,
        } => {
            assert_eq!(&frame[r], inner);
            assert_eq!(k, kind);
            assert_eq!(key, rx_side.our_ids);
        }
        other => panic!("expected Forward, got {other:?} for {tx_side:?}"),
    }
}

#[test]
fn v2_both_directions_all_families() {
    for outer6 in [false, true] {
        for (inner, kind) in [(inner_v4(), InnerKind::Ipv4), (inner_v6(), InnerKind::Ipv6)] {
            for (acfc, pfc) in [(false, false), (true, false), (false, true), (true, true)] {
                for seq in [false, true] {
                    for ck in [false, true] {
                        let mut s = v2_session(outer6);
                        s.ppp = PppTx { acfc, pfc };
                        s.sequencing = seq;
                        s.udp_checksum_v4 = ck;
                        s.vlans = Vlans::new(&[VlanTag::dot1q(7)]).expect("one tag");
                        // downstream (LNS encap, LAC decap) and upstream (LAC encap, LNS decap)
                        round_trip(&s, &inner, kind);
                        round_trip(&mirror(&s), &inner, kind);
                    }
                }
            }
        }
    }
}

#[test]
fn v3_all_forms() {
    for outer6 in [false, true] {
        for t in [Transport::Udp, Transport::Ip] {
            for cookie in [&[][..], &[1, 2, 3, 4][..], &[1, 2, 3, 4, 5, 6, 7, 8][..]] {
                for (l2ss, seq) in [(false, false), (true, false), (true, true)] {
                    let s = v3_session(outer6, t, cookie, l2ss, seq);
                    round_trip(&s, &inner_eth(), InnerKind::Ethernet);
                    round_trip(&mirror(&s), &inner_eth(), InnerKind::Ethernet);
                }
            }
        }
    }
}

/// Hand-written from RFC 791, RFC 768 and RFC 2661 §3.1: LNS 192.0.2.1 → LAC 192.0.2.2,
/// tunnel 0x0011 session 0x0022, no sequencing, FF 03 00 21, UDP checksum 0.
#[test]
fn golden_v2_ipv4() {
    let inner = [
        0x45, 0x00, 0x00, 0x14, 0x00, 0x00, 0x40, 0x00, 0x40, 0xfd, 0x25, 0xeb, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
    ];
    let golden: Vec<u8> = [
        &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00][..], // Ethernet
        &[
            0x45, 0x00, 0x00, 0x3a, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb6, 0xaf, 0xc0, 0x00,
            0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
        ], // IPv4, total 58, DF, TTL 64, UDP
        &[0x06, 0xa5, 0x06, 0xa5, 0x00, 0x26, 0x00, 0x00], // UDP 1701 → 1701, len 38, no checksum
        &[0x00, 0x02, 0x00, 0x11, 0x00, 0x22],             // L2TPv2 data, T=L=S=O=P=0
        &[0xff, 0x03, 0x00, 0x21],                         // PPP IPv4
        &inner,
    ]
    .concat();
    let s = v2_session(false);
    assert_eq!(enc(&s, &mut TxSeq::default(), &inner), golden);
    let v = dec(
        &golden,
        &DecapConfig::default(),
        &mirror(&s),
        &mut RxSeq::default(),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            inner: 52..72,
            kind: InnerKind::Ipv4,
            key: SessionKey::V2 {
                tunnel_id: 0x0011,
                session_id: 0x0022
            }
        }
    );
}

/// Hand-written from RFC 8200 and RFC 3931 §4.1.1.2, §4.6: one 802.1Q tag (VID 100), IPv6
/// 2001:db8::1 → 2001:db8::2, protocol 115, session 0x1234, cookie de ad be ef, sublayer with
/// S and sequence 0, an 18-byte inner frame.
#[test]
fn golden_v3_ip_ipv6() {
    let inner = [
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x88, 0xb5, 1, 2,
        3, 4,
    ];
    let golden: Vec<u8> = [
        &[
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x64, 0x86, 0xdd,
        ][..],
        &[0x60, 0x00, 0x00, 0x00, 0x00, 0x1e, 0x73, 0x40], // payload 30, next header 115, hop 64
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        &[0x00, 0x00, 0x12, 0x34], // Session ID
        &[0xde, 0xad, 0xbe, 0xef], // cookie
        &[0x40, 0x00, 0x00, 0x00], // default L2SS, S, seq 0
        &inner,
    ]
    .concat();
    let mut s = v3_session(true, Transport::Ip, &[0xde, 0xad, 0xbe, 0xef], true, true);
    s.cookie_tx = Cookie::new(&[0xde, 0xad, 0xbe, 0xef]).expect("4");
    s.vlans = Vlans::new(&[VlanTag::dot1q(100)]).expect("one");
    assert_eq!(enc(&s, &mut TxSeq::default(), &inner), golden);
    let v = dec(
        &golden,
        &DecapConfig::default(),
        &mirror(&s),
        &mut RxSeq::default(),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            inner: 18 + 40 + 12..golden.len(),
            kind: InnerKind::Ethernet,
            key: SessionKey::V3 { session_id: 0x1234 }
        }
    );
}

#[test]
fn v2_sequenced_flags_and_ns() {
    let mut s = v2_session(false);
    s.sequencing = true;
    let mut tx = TxSeq { next_ns: 0xffff };
    let f = enc(&s, &mut tx, &inner_v4());
    // Ethernet 14 + IPv4 20 + UDP 8: flags 0x0802, tunnel, session, Ns 0xffff, Nr 0.
    assert_eq!(
        &f[42..52],
        &[0x08, 0x02, 0, 0x11, 0, 0x22, 0xff, 0xff, 0, 0]
    );
    assert_eq!(tx.next_ns, 0);
}

#[test]
fn unknown_session_spoofing_cookie() {
    let cfg = DecapConfig::default();
    let s = v3_session(false, Transport::Udp, &[1, 2, 3, 4], false, false);
    let rx = mirror(&s);
    let frame = enc(&s, &mut TxSeq::default(), &inner_eth());
    let none = |_: &SessionKey| -> Option<&Session> { None };
    assert_eq!(
        decap(&frame, &cfg, none, |_| None, |_| None),
        Verdict::Drop(DropReason::UnknownSession)
    );
    // Spoofed source address, spoofed source port, wrong destination.
    let mut other = rx;
    other.peer_addr = ip("192.0.2.99");
    assert_eq!(
        dec(&frame, &cfg, &other, &mut RxSeq::default()),
        Verdict::Drop(DropReason::SpoofedSource)
    );
    let mut other = rx;
    other.peer_port = 4000;
    assert_eq!(
        dec(&frame, &cfg, &other, &mut RxSeq::default()),
        Verdict::Drop(DropReason::SpoofedSource)
    );
    let mut other = rx;
    other.local_addr = ip("192.0.2.98");
    assert_eq!(
        dec(&frame, &cfg, &other, &mut RxSeq::default()),
        Verdict::Drop(DropReason::WrongDestination)
    );
    // Wrong cookie.
    let mut other = rx;
    other.cookie_rx = Cookie::new(&[1, 2, 3, 5]).expect("4");
    assert_eq!(
        dec(&frame, &cfg, &other, &mut RxSeq::default()),
        Verdict::Drop(DropReason::WrongCookie)
    );
    // A session of the other transport is not this session.
    let mut other = rx;
    other.transport = Transport::Ip;
    assert_eq!(
        dec(&frame, &cfg, &other, &mut RxSeq::default()),
        Verdict::Drop(DropReason::UnknownSession)
    );
}

#[test]
fn control_messages_go_to_control_plane() {
    let cfg = DecapConfig::default();
    let s = v2_session(false);
    let rx = mirror(&s);
    let mut f = enc(&s, &mut TxSeq::default(), &inner_v4());
    // v2 control: set T, L, S (content irrelevant: the control plane validates).
    f[42] = 0xc8;
    assert_eq!(
        dec(&f, &cfg, &rx, &mut RxSeq::default()),
        Verdict::ToControlPlane(Why::L2tpControl)
    );
    f[43] = 0x03; // v3 control over UDP
    assert_eq!(
        dec(&f, &cfg, &rx, &mut RxSeq::default()),
        Verdict::ToControlPlane(Why::L2tpControl)
    );
    f[43] = 0x01; // L2F
    assert_eq!(
        dec(&f, &cfg, &rx, &mut RxSeq::default()),
        Verdict::Drop(DropReason::UnsupportedVersion)
    );
    // v3 over IP with Session ID 0.
    let s3 = v3_session(false, Transport::Ip, &[], false, false);
    let mut f = enc(&s3, &mut TxSeq::default(), &inner_eth());
    f[34..38].fill(0);
    assert_eq!(
        dec(&f, &cfg, &mirror(&s3), &mut RxSeq::default()),
        Verdict::ToControlPlane(Why::L2tpControl)
    );
}

/// Builds a v2 frame from the peer with a custom PPP payload (UDP checksum 0 over IPv4).
fn v2_with_payload(payload: &[u8]) -> (Vec<u8>, Session) {
    let s = v2_session(false);
    let mut f = enc(&s, &mut TxSeq::default(), &inner_v4());
    f.truncate(48);
    f.extend_from_slice(payload);
    fix_lengths_v4(&mut f);
    (f, mirror(&s))
}

/// Recomputes the IPv4 total length/checksum and UDP length of an untagged frame (UDP checksum 0).
fn fix_lengths_v4(f: &mut [u8]) {
    let ip_len = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[24..26].fill(0);
    let c = checksum::finish(checksum::data(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f[40..42].fill(0);
}

#[test]
fn ppp_classification() {
    let cfg = DecapConfig::default();
    let cases: &[(&[u8], Verdict)] = &[
        (
            &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4],
            Verdict::ToControlPlane(Why::PppControl),
        ), // LCP
        (
            &[0x80, 0x21, 1, 1, 0, 4],
            Verdict::ToControlPlane(Why::PppControl),
        ), // IPCP
        (
            &[0xff, 0x03, 0x00, 0x2b, 0],
            Verdict::ToControlPlane(Why::PppOther),
        ), // IPX
        (&[0x3d, 0], Verdict::ToControlPlane(Why::PppOther)), // MP, PFC
        // 0xFF not followed by 0x03: Address/Control were compressed away and 0xFF is the
        // one-byte protocol 0x00FF (RFC 1661 §6.6), which the control plane Protocol-Rejects.
        (
            &[0xff, 0x04, 0x00, 0x21],
            Verdict::ToControlPlane(Why::PppOther),
        ),
        (&[0x00, 0x20, 0x45], Verdict::Drop(DropReason::MalformedPpp)),
        (&[0xff], Verdict::ToControlPlane(Why::PppOther)),
        (&[0x02, 0x20], Verdict::Drop(DropReason::MalformedPpp)),
        (&[0xff, 0x03, 0x00], Verdict::Drop(DropReason::Truncated)),
        (&[], Verdict::Drop(DropReason::Truncated)),
        (&[0x21, 0x45, 0], Verdict::Drop(DropReason::BadInner)),
        (&[0x00, 0x57, 0x45, 0], Verdict::Drop(DropReason::BadInner)),
    ];
    for (payload, want) in cases {
        let (f, rx) = v2_with_payload(payload);
        assert_eq!(
            &dec(&f, &cfg, &rx, &mut RxSeq::default()),
            want,
            "{payload:x?}"
        );
    }
    // Inner TTL 1 goes to the control plane.
    let mut p = vec![0x21];
    let mut i = inner_v4();
    i[8] = 1;
    p.extend_from_slice(&i);
    let (f, rx) = v2_with_payload(&p);
    assert_eq!(
        dec(&f, &cfg, &rx, &mut RxSeq::default()),
        Verdict::ToControlPlane(Why::InnerTtlExpired)
    );
}

#[test]
fn v2_offset_and_length_handled() {
    let cfg = DecapConfig::default();
    // L, S, O: length, tunnel 0x0011, session 0x0022, Ns 0, Nr 0, offset 3 + pad.
    let inner = inner_v4();
    let len = (14 + 3 + 4 + inner.len()) as u16;
    let mut p = vec![0x4a, 0x02];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0x00, 0x11, 0x00, 0x22, 0, 0, 0, 0, 0, 3, 0xee, 0xee, 0xee]);
    p.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    p.extend_from_slice(&inner);
    p.extend_from_slice(&[0x77; 5]); // beyond Length: ignored
    let s = v2_session(false);
    let mut f = enc(&s, &mut TxSeq::default(), &inner_v4());
    f.truncate(42);
    f.extend_from_slice(&p);
    fix_lengths_v4(&mut f);
    match dec(&f, &cfg, &mirror(&s), &mut RxSeq::default()) {
        Verdict::Forward { inner: r, .. } => assert_eq!(&f[r], &inner[..]),
        v => panic!("{v:?}"),
    }
    // Length shorter than the header.
    f[44..46].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        dec(&f, &cfg, &mirror(&s), &mut RxSeq::default()),
        Verdict::Drop(DropReason::MalformedL2tp)
    );
    // Length longer than the message.
    f[44..46].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(
        dec(&f, &cfg, &mirror(&s), &mut RxSeq::default()),
        Verdict::Drop(DropReason::Truncated)
    );
}

#[test]
fn udp_checksums() {
    let s = v2_session(false);
    let rx = mirror(&s);
    let verify = DecapConfig::default();
    assert!(verify.verify_udp_checksum);
    // Checksum 0 over IPv4 is accepted even when verifying.
    let f = enc(&s, &mut TxSeq::default(), &inner_v4());
    assert_eq!(&f[40..42], &[0, 0]);
    assert!(matches!(
        dec(&f, &verify, &rx, &mut RxSeq::default()),
        Verdict::Forward { .. }
    ));
    // A computed checksum verifies; a corrupted payload does not.
    let mut sc = s;
    sc.udp_checksum_v4 = true;
    let mut f = enc(&sc, &mut TxSeq::default(), &inner_v4());
    assert_ne!(&f[40..42], &[0, 0]);
    assert!(matches!(
        dec(&f, &verify, &rx, &mut RxSeq::default()),
        Verdict::Forward { .. }
    ));
    let last = f.len() - 1;
    f[last] ^= 0xff;
    assert_eq!(
        dec(&f, &verify, &rx, &mut RxSeq::default()),
        Verdict::Drop(DropReason::BadUdpChecksum)
    );
    let lax = DecapConfig {
        verify_udp_checksum: false,
        ..verify
    };
    assert!(matches!(
        dec(&f, &lax, &rx, &mut RxSeq::default()),
        Verdict::Forward { .. }
    ));
    // IPv6: always computed; zero refused unless configured.
    let s6 = v2_session(true);
    let rx6 = mirror(&s6);
    let mut f = enc(&s6, &mut TxSeq::default(), &inner_v4());
    let ck = 14 + 40 + 6;
    assert_ne!(&f[ck..ck + 2], &[0, 0]);
    assert!(matches!(
        dec(&f, &verify, &rx6, &mut RxSeq::default()),
        Verdict::Forward { .. }
    ));
    f[ck..ck + 2].fill(0);
    assert_eq!(
        dec(&f, &verify, &rx6, &mut RxSeq::default()),
        Verdict::Drop(DropReason::ZeroUdp6Checksum)
    );
    let zero_ok = DecapConfig {
        accept_zero_udp6_checksum: true,
        ..verify
    };
    assert!(matches!(
        dec(&f, &zero_ok, &rx6, &mut RxSeq::default()),
        Verdict::Forward { .. }
    ));
}

#[test]
fn pass_cases() {
    let cfg = DecapConfig::default();
    let s = v2_session(false);
    let rx = mirror(&s);
    let f = enc(&s, &mut TxSeq::default(), &inner_v4());
    // IPv4 fragment (MF set, header checksum fixed).
    let mut g = f.clone();
    g[20] |= 0x20;
    fix_ip_checksum(&mut g);
    assert_eq!(dec(&g, &cfg, &rx, &mut RxSeq::default()), Verdict::Pass);
    // Non-first fragment.
    let mut g = f.clone();
    g[20] = 0;
    g[21] = 10;
    fix_ip_checksum(&mut g);
    assert_eq!(dec(&g, &cfg, &rx, &mut RxSeq::default()), Verdict::Pass);
    // Another UDP port.
    let mut g = f.clone();
    g[36..38].copy_from_slice(&53u16.to_be_bytes());
    assert_eq!(dec(&g, &cfg, &rx, &mut RxSeq::default()), Verdict::Pass);
    // ARP, bad IPv4 header checksum, TCP.
    let mut g = f.clone();
    g[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(dec(&g, &cfg, &rx, &mut RxSeq::default()), Verdict::Pass);
    let mut g = f.clone();
    g[24] ^= 1;
    assert_eq!(dec(&g, &cfg, &rx, &mut RxSeq::default()), Verdict::Pass);
    let mut g = f;
    g[23] = 6;
    fix_ip_checksum(&mut g);
    assert_eq!(dec(&g, &cfg, &rx, &mut RxSeq::default()), Verdict::Pass);
}

fn fix_ip_checksum(f: &mut [u8]) {
    f[24..26].fill(0);
    let c = checksum::finish(checksum::data(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// Every prefix of a valid frame, taken as is: never panics, never forwards, only Pass (outer
/// lengths now exceed the buffer) or a truncation drop.
#[test]
fn raw_prefixes() {
    let cfg = DecapConfig::default();
    let sessions = [
        v2_session(false),
        v2_session(true),
        v3_session(false, Transport::Ip, &[1, 2, 3, 4, 5, 6, 7, 8], true, true),
        v3_session(true, Transport::Udp, &[1, 2, 3, 4], true, false),
    ];
    for s in sessions {
        let inner = if matches!(s.our_ids, SessionKey::V2 { .. }) {
            inner_v4()
        } else {
            inner_eth()
        };
        let f = enc(&s, &mut TxSeq::default(), &inner);
        for n in 0..f.len() {
            let v = dec(&f[..n], &cfg, &mirror(&s), &mut RxSeq::default());
            assert!(
                matches!(
                    v,
                    Verdict::Pass | Verdict::Drop(DropReason::Truncated | DropReason::BadInner)
                ),
                "prefix {n}: {v:?}"
            );
        }
    }
}

/// Every prefix of the L2TP message with consistent outer lengths (IPv4, UDP checksum 0 and
/// over IP): a truncation drop until the inner minimum is reached, then Forward.
#[test]
fn consistent_prefixes() {
    let cfg = DecapConfig::default();
    let sessions = [
        (v2_session(false), 42usize, 6 + 4 + 20),
        (
            v3_session(false, Transport::Udp, &[1, 2, 3, 4, 5, 6, 7, 8], true, true),
            42,
            8 + 8 + 4 + 14,
        ),
        (
            v3_session(false, Transport::Ip, &[1, 2, 3, 4], false, false),
            34,
            4 + 4 + 14,
        ),
    ];
    for (s, l2tp_at, min) in sessions {
        let inner = if matches!(s.our_ids, SessionKey::V2 { .. }) {
            inner_v4()
        } else {
            inner_eth()
        };
        let f = enc(&s, &mut TxSeq::default(), &inner);
        for n in l2tp_at..=f.len() {
            let mut g = f[..n].to_vec();
            let ip_len = (n - 14) as u16;
            g[16..18].copy_from_slice(&ip_len.to_be_bytes());
            fix_ip_checksum(&mut g);
            if s.transport == Transport::Udp {
                g[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
                g[40..42].fill(0);
            }
            let v = dec(&g, &cfg, &mirror(&s), &mut RxSeq::default());
            if n - l2tp_at >= min {
                assert!(matches!(v, Verdict::Forward { .. }), "len {n}: {v:?}");
            } else if g.last() == Some(&0xff) && v == Verdict::ToControlPlane(Why::PppOther) {
                // A lone 0xFF is the compressed one-byte protocol 0x00FF (RFC 1661 §6.6).
            } else {
                assert!(
                    matches!(
                        v,
                        Verdict::Drop(DropReason::Truncated | DropReason::BadInner)
                    ),
                    "len {n}: {v:?}"
                );
            }
        }
    }
}

#[test]
fn sequencing_through_decap() {
    let cfg = DecapConfig {
        seq_relearn_after: 3,
        ..DecapConfig::default()
    };
    for s in [
        {
            let mut s = v2_session(false);
            s.sequencing = true;
            s
        },
        v3_session(true, Transport::Ip, &[], true, true),
    ] {
        let rx_side = mirror(&s);
        let mut tx = TxSeq::default();
        let inner = if s.l2ss { inner_eth() } else { inner_v4() };
        let frames: Vec<Vec<u8>> = (0..6).map(|_| enc(&s, &mut tx, &inner)).collect();
        let mut rx = RxSeq::default();
        let fwd = |v: &Verdict| matches!(v, Verdict::Forward { .. });
        assert!(fwd(&dec(&frames[0], &cfg, &rx_side, &mut rx)));
        assert!(fwd(&dec(&frames[2], &cfg, &rx_side, &mut rx))); // a gap is fine
        assert_eq!(
            dec(&frames[1], &cfg, &rx_side, &mut rx),
            Verdict::Drop(DropReason::SequenceOutOfOrder)
        );
        assert_eq!(
            dec(&frames[2], &cfg, &rx_side, &mut rx),
            Verdict::Drop(DropReason::SequenceOutOfOrder)
        );
        assert!(fwd(&dec(&frames[3], &cfg, &rx_side, &mut rx)));
        // Peer reset its Ns to 0 (RFC 4951 §3.2.3): 0, 1 dropped, 2 (third in sequence) re-learnt.
        assert_eq!(
            dec(&frames[0], &cfg, &rx_side, &mut rx),
            Verdict::Drop(DropReason::SequenceOutOfOrder)
        );
        assert_eq!(
            dec(&frames[1], &cfg, &rx_side, &mut rx),
            Verdict::Drop(DropReason::SequenceOutOfOrder)
        );
        assert!(fwd(&dec(&frames[2], &cfg, &rx_side, &mut rx)));
        assert!(fwd(&dec(&frames[3], &cfg, &rx_side, &mut rx)));
        // Our own reset: the next packet is accepted whatever its number.
        rx.reset();
        assert!(fwd(&dec(&frames[1], &cfg, &rx_side, &mut rx)));
        assert_eq!(rx.expected, 2);
    }
}

#[test]
fn rx_seq_rule() {
    for bits in [16, 24] {
        let mask = (1u32 << bits) - 1;
        let half = 1u32 << (bits - 1);
        let mut r = RxSeq {
            expected: mask,
            ..RxSeq::default()
        };
        assert!(r.check(mask, bits, 0)); // wraps
        assert_eq!(r.expected, 0);
        assert!(r.check(half - 1, bits, 0)); // last number in the window
        let e = r.expected;
        assert!(!r.check(e.wrapping_add(half) & mask, bits, 0)); // first outside
        assert!(!r.check(e.wrapping_sub(1) & mask, bits, 0)); // duplicate
                                                              // n = 0: never re-learn.
        for i in 0..100 {
            assert!(!r.check((e + half + i) & mask, bits, 0));
        }
        // Upper bits beyond k are ignored.
        let mut r = RxSeq::default();
        assert!(r.check(0xff00_0000 | 5, bits, 0));
        assert_eq!(r.expected, 6);
    }
    // n = 1: any out-of-window packet re-learns at once.
    let mut r = RxSeq {
        expected: 100,
        ..RxSeq::default()
    };
    assert!(r.check(50, 16, 1));
    assert_eq!(r.expected, 51);
    // A broken run restarts counting.
    let mut r = RxSeq {
        expected: 1000,
        ..RxSeq::default()
    };
    assert!(!r.check(1, 16, 3));
    assert!(!r.check(2, 16, 3));
    assert!(!r.check(7, 16, 3));
    assert!(!r.check(8, 16, 3));
    assert!(r.check(9, 16, 3));
    assert_eq!(r.expected, 10);
}

#[test]
fn encap_errors() {
    let s = v2_session(false);
    let mut tx = TxSeq::default();
    let mut out = [0u8; 2048];
    // MTU: outer IP = 20 + 8 + 6 + 4 + inner.
    let inner = inner_v4();
    let ip_len = 38 + inner.len();
    assert!(encap(&s, &mut tx, &inner, ip_len, &mut out).is_ok());
    assert!(matches!(
        encap(&s, &mut tx, &inner, ip_len - 1, &mut out),
        Err(l2xdp_wire::Error::Malformed {
            why: "exceeds the MTU",
            ..
        })
    ));
    assert!(matches!(
        encap(&s, &mut tx, &inner, 1500, &mut out[..14 + ip_len - 1]),
        Err(l2xdp_wire::Error::BufferTooSmall { .. })
    ));
    assert!(encap(&s, &mut tx, &[0x50; 40], 1500, &mut out).is_err());
    assert!(encap(&s, &mut tx, &[0x45; 19], 1500, &mut out).is_err());
    let mut bad = s;
    bad.peer_addr = ip("2001:db8::2");
    assert!(encap(&bad, &mut tx, &inner, 1500, &mut out).is_err());
    let bad = v3_session(false, Transport::Udp, &[], false, true);
    assert!(encap(&bad, &mut tx, &inner_eth(), 1500, &mut out).is_err());
    assert_eq!(
        tx.next_ns, 0,
        "nothing consumed on error (sequencing off anyway)"
    );
    let mut sq = s;
    sq.sequencing = true;
    assert!(encap(&sq, &mut tx, &inner, 10, &mut out).is_err());
    assert_eq!(tx.next_ns, 0, "no Ns consumed on error");
}

#[test]
fn inner_ethernet_decrements_ttl() {
    let mut out = [0u8; 128];
    let i4 = inner_v4();
    let n = emit_inner_ethernet(&i4, LAC_MAC, LNS_MAC, &mut out).expect("ok");
    assert_eq!(n, 14 + i4.len());
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    assert_eq!(out[14 + 8], 63);
    assert_eq!(checksum::data(&out[14..34]), 0xffff);
    let i6 = inner_v6();
    let n = emit_inner_ethernet(&i6, LAC_MAC, LNS_MAC, &mut out).expect("ok");
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(out[14 + 7], 63);
    assert_eq!(&out[14 + 8..n], &i6[8..]);
    let mut dead = inner_v4();
    dead[8] = 1;
    assert!(emit_inner_ethernet(&dead, LAC_MAC, LNS_MAC, &mut out).is_err());
}

/// The incremental TTL update equals Linux `ip_decrease_ttl()` for every checksum value.
#[test]
fn ttl_update_matches_linux() {
    for hc in 0..=0xffffu32 {
        let mut check = hc + 0x0100;
        check += u32::from(check >= 0xffff);
        let linux = check as u16;
        let ours = checksum::update_word(hc as u16, 0x4011, 0x3f11);
        assert_eq!(ours, linux, "checksum {hc:#06x}");
    }
}

#[test]
fn drop_reason_discriminants_are_stable() {
    let expect = [
        (DropReason::Truncated, 0, "truncated"),
        (DropReason::BadUdpLength, 1, "bad_udp_length"),
        (DropReason::BadUdpChecksum, 2, "bad_udp_checksum"),
        (DropReason::ZeroUdp6Checksum, 3, "zero_udp6_checksum"),
        (DropReason::UnsupportedVersion, 4, "unsupported_version"),
        (DropReason::MalformedL2tp, 5, "malformed_l2tp"),
        (DropReason::UnknownSession, 6, "unknown_session"),
        (DropReason::SpoofedSource, 7, "spoofed_source"),
        (DropReason::WrongDestination, 8, "wrong_destination"),
        (DropReason::WrongCookie, 9, "wrong_cookie"),
        (DropReason::SequenceOutOfOrder, 10, "sequence_out_of_order"),
        (DropReason::MalformedPpp, 11, "malformed_ppp"),
        (DropReason::BadInner, 12, "bad_inner"),
        (DropReason::UnboundSource, 13, "unbound_source"),
    ];
    assert_eq!(expect.len(), DropReason::COUNT);
    for (i, (r, v, name)) in expect.into_iter().enumerate() {
        assert_eq!(r as u32, v);
        assert_eq!(r.name(), name);
        assert_eq!(DropReason::ALL[i], r);
        assert_eq!(DropReason::from_u32(v), Some(r));
    }
    assert_eq!(DropReason::from_u32(14), None);
    assert_eq!(Why::L2tpControl as u32, 0);
    assert_eq!(Why::InnerTtlExpired as u32, 3);
    assert_eq!(Why::Ipv6LinkLocal as u32, 4);
    assert_eq!(Why::Ipv6LinkLocal.name(), "ipv6_link_local");
    assert_eq!(Why::COUNT, 5);
}

/// An inner IPv4/IPv6 packet from `src` with hop limit `ttl`.
fn inner_from(src: &str, ttl: u8) -> Vec<u8> {
    match ip(src) {
        IpAddr::V4(a) => {
            let mut p = inner_v4();
            p[12..16].copy_from_slice(&a.octets());
            p[8] = ttl;
            p[10..12].fill(0);
            let c = checksum::finish(checksum::data(&p[..20]));
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p
        }
        IpAddr::V6(a) => {
            let mut p = inner_v6();
            p[8..24].copy_from_slice(&a.octets());
            p[7] = ttl;
            p
        }
    }
}

/// RFC 1661 §3.2 / BCP 38: a v2 inner packet is forwarded only when its source is bound to the
/// session it arrived on; IPv6 link-local goes to the control plane.
#[test]
fn source_address_validation() {
    let cfg = DecapConfig::default();
    let s = v2_session(false);
    let rx_side = mirror(&s);
    let this = rx_side.our_ids;
    let other = SessionKey::V2 {
        tunnel_id: 0x0101,
        session_id: 0x0303,
    };
    let v4 = [("100.64.0.1", this), ("100.64.0.2", other)];
    let v6 = [
        ("2001:db8:100::", 56, this),
        ("2001:db8:100:ff::", 64, other),
        ("2001:db8:200::", 64, other),
    ];
    let run_frame = |f: &[u8], v4: &[(&str, SessionKey)], v6: &[(&str, u8, SessionKey)]| {
        let calls = std::cell::Cell::new(0);
        let v = decap(
            f,
            &cfg,
            |k| (*k == this).then_some(&rx_side),
            |_| None,
            |a| {
                calls.set(calls.get() + 1);
                lookup_bound(v4, v6, a)
            },
        );
        assert!(calls.get() <= 1, "bound asked once at most");
        (v, calls.get())
    };
    let run = |inner: &[u8], v4: &[(&str, SessionKey)], v6: &[(&str, u8, SessionKey)]| {
        run_frame(&enc(&s, &mut TxSeq::default(), inner), v4, v6)
    };
    let unbound = Verdict::Drop(DropReason::UnboundSource);
    let fwd = |v: &Verdict| matches!(v, Verdict::Forward { key, .. } if *key == this);
    // Bound sources are forwarded: IPv4 exact, IPv6 by prefix.
    assert!(fwd(&run(&inner_from("100.64.0.1", 64), &v4, &v6).0));
    assert!(fwd(&run(&inner_from("2001:db8:100:1::5", 64), &v4, &v6).0));
    // Nothing bound yet (session installed before IPCP/IPv6CP is up).
    for src in ["100.64.0.1", "2001:db8:100::1"] {
        assert_eq!(run(&inner_from(src, 64), &[], &[]).0, unbound, "{src}");
    }
    // Unbound addresses, and addresses bound to another session (spoofing a neighbour).
    for src in [
        "100.64.0.3",
        "100.64.0.2",
        "2001:db8:300::1",
        "2001:db8:200::1",
    ] {
        assert_eq!(run(&inner_from(src, 64), &v4, &v6).0, unbound, "{src}");
    }
    // The longest prefix wins: the /64 inside our /56 belongs to the other session.
    assert_eq!(
        run(&inner_from("2001:db8:100:ff::1", 64), &v4, &v6).0,
        unbound
    );
    // Before the TTL: an unbound packet with TTL 1 is not handed to the control plane.
    assert_eq!(run(&inner_from("100.64.0.9", 1), &v4, &v6).0, unbound);
    assert_eq!(
        run(&inner_from("100.64.0.1", 1), &v4, &v6).0,
        Verdict::ToControlPlane(Why::InnerTtlExpired)
    );
    // IPv6 link-local (fe80::/10, ND and RS have hop limit 255) → control plane, without a
    // lookup, bound or not; fec0:: is outside fe80::/10.
    for src in ["fe80::1", "febf::1"] {
        assert_eq!(
            run(&inner_from(src, 255), &[], &[]),
            (Verdict::ToControlPlane(Why::Ipv6LinkLocal), 0),
            "{src}"
        );
    }
    assert_eq!(run(&inner_from("fec0::1", 255), &[], &[]).0, unbound);
    // Checks before this one win, without a lookup: a short inner header is BadInner, PPP
    // control (IPCP before the address is bound) goes to the control plane.
    let mut short = vec![0x21];
    short.extend_from_slice(&inner_from("100.64.0.1", 64)[..19]);
    let ipcp: &[u8] = &[0x80, 0x21, 1, 1, 0, 4];
    for (payload, want) in [
        (&short[..], Verdict::Drop(DropReason::BadInner)),
        (ipcp, Verdict::ToControlPlane(Why::PppControl)),
    ] {
        let (f, _) = v2_with_payload(payload);
        assert_eq!(run_frame(&f, &[], &[]), (want, 0));
    }
    // v3 has no source check.
    let s3 = v3_session(false, Transport::Ip, &[], false, false);
    let r3 = mirror(&s3);
    let f = enc(&s3, &mut TxSeq::default(), &inner_eth());
    let v = decap(&f, &cfg, |_| Some(&r3), |_| None, |_| None);
    assert!(
        matches!(
            v,
            Verdict::Forward {
                kind: InnerKind::Ethernet,
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn session_serializes() {
    let s = v3_session(false, Transport::Udp, &[1, 2, 3, 4], true, true);
    let j = serde_json::to_string(&s).expect("serializable");
    assert!(j.contains("\"cookie_rx\":\"01020304\""), "{j}");
}

fn arb_session() -> impl Strategy<Value = Session> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..3,
        any::<(bool, bool, bool, bool, bool)>(),
        0usize..3,
        (1u16.., 1u16.., 1u32.., 1u32..),
    )
        .prop_map(
            |(v3, six, over_ip, clen, (l2ss, seq, acfc, pfc, ck), ntags, ids)| {
                let cookie = &[7u8, 6, 5, 4, 3, 2, 1, 0][..[0, 4, 8][clen]];
                let mut s = if v3 {
                    let t = if over_ip {
                        Transport::Ip
                    } else {
                        Transport::Udp
                    };
                    let mut s = v3_session(six, t, cookie, l2ss || seq, seq);
                    s.our_ids = SessionKey::V3 { session_id: ids.2 };
                    s.peer_ids = SessionKey::V3 { session_id: ids.3 };
                    s
                } else {
                    let mut s = v2_session(six);
                    s.sequencing = seq;
                    s.ppp = PppTx { acfc, pfc };
                    s.our_ids = SessionKey::V2 {
                        tunnel_id: ids.0,
                        session_id: ids.1,
                    };
                    s.peer_ids = SessionKey::V2 {
                        tunnel_id: ids.1,
                        session_id: ids.0,
                    };
                    s
                };
                s.udp_checksum_v4 = ck;
                let tags = [VlanTag::dot1ad(10), VlanTag::dot1q(20)];
                s.vlans = Vlans::new(&tags[..ntags]).expect("<= 2");
                s
            },
        )
}

proptest! {
    /// encap then decap gives the inner packet back, with checksums verified.
    #[test]
    fn encap_decap_round_trip(s in arb_session(), body in proptest::collection::vec(any::<u8>(), 0..200),
                              ns in any::<u32>()) {
        let mut inner = match s.our_ids {
            SessionKey::V2 { .. } => if body.first().is_some_and(|b| b & 1 == 1) { inner_v6() } else { inner_v4() },
            SessionKey::V3 { .. } => inner_eth(),
        };
        inner.extend_from_slice(&body);
        let kind = match (s.our_ids, inner[0] >> 4) {
            (SessionKey::V3 { .. }, _) => InnerKind::Ethernet,
            (_, 4) => InnerKind::Ipv4,
            _ => InnerKind::Ipv6,
        };
        let mut tx = TxSeq { next_ns: ns & 0xffff };
        let mut out = vec![0u8; 2048];
        let n = encap(&s, &mut tx, &inner, 1500, &mut out).expect("encap");
        let rx_side = mirror(&s);
        let mut rx = RxSeq::unsynced();
        let v = dec(&out[..n], &DecapConfig::default(), &rx_side, &mut rx);
        match v {
            Verdict::Forward { inner: r, kind: k, key } => {
                prop_assert_eq!(&out[r], &inner[..]);
                prop_assert_eq!(k, kind);
                prop_assert_eq!(key, rx_side.our_ids);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Arbitrary bytes, and arbitrary mutations of valid frames, never panic.
    #[test]
    fn decap_never_panics(s in arb_session(), junk in proptest::collection::vec(any::<u8>(), 0..120),
                          flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6)) {
        let rx_side = mirror(&s);
        let mut rx = RxSeq::default();
        let _ = dec(&junk, &DecapConfig::default(), &rx_side, &mut rx);
        let inner = if matches!(s.our_ids, SessionKey::V2 { .. }) { inner_v4() } else { inner_eth() };
        let mut f = enc(&s, &mut TxSeq::default(), &inner);
        for (at, x) in flips {
            let i = at % f.len();
            f[i] ^= x;
        }
        let cut = junk.len() % (f.len() + 1);
        let _ = dec(&f, &DecapConfig::default(), &rx_side, &mut rx);
        let _ = dec(&f[..cut], &DecapConfig::default(), &rx_side, &mut rx);
        let mut m: HashMap<SessionKey, Session> = HashMap::new();
        m.insert(rx_side.our_ids, rx_side);
        let _ = decap(&f, &DecapConfig::default(), |k| m.get(k), |_| None, |_| Some(rx_side.our_ids));
    }
}
