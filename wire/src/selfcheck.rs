//! Properties every parser of this crate must hold on arbitrary input, as panicking checks: the
//! fuzz targets in `wire/fuzz/` run them under libFuzzer, and `tests/fuzz_regressions.rs` runs
//! them over every input a fuzzer ever found failing. One definition, two drivers.
//!
//! Each function takes raw fuzzer bytes; a leading byte selects options (secret on/off,
//! session shape) so one corpus explores all of them.

use core::net::IpAddr;

use crate::datapath::Verdict;
use crate::datapath::{decap, encap, DecapConfig, PppTx, RxSeq, Session, SessionKey, TxSeq};
use crate::l2tp::header::{
    split_ip, ControlHeader, Cookie, L2ssRepr, Transport, V2Packet, V2Repr, V3DataRepr,
};
use crate::l2tp::message::{ControlMessage, ParseContext};
use crate::l2tp::validate::{validate, validate_bytes};
use crate::net::ethernet::{MacAddr, Vlans};
use crate::ppp::{PppBody, PppPacket};

/// The secret the control-message check uses when its selector asks for one.
pub const SECRET: &[u8] = b"l2xdp-test-secret";

/// Control messages: parse and validate never panic; whatever parses emits and parses back to
/// the same message.
pub fn control_message(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let secret = (sel & 1 != 0).then_some(SECRET);
    let _ = validate_bytes(rest, secret);
    let _ = split_ip(rest);
    if let Ok(msg) = ControlMessage::parse(rest, &ParseContext { secret }) {
        let _ = validate(&msg);
        let _ = msg.message_type();
        let _ = msg.failover_session_states();
        if let Ok(bytes) = msg.to_bytes(secret) {
            let back = ControlMessage::parse(&bytes, &ParseContext { secret });
            assert_eq!(back, Ok(msg), "control message round trip");
        }
    }
}

/// PPP frames: parse never panics; control-protocol packets that parse emit and parse back.
pub fn ppp_frame(data: &[u8]) {
    let _ = crate::ppp::frame::parse(data);
    if let Ok(pkt) = PppPacket::parse(data) {
        let mut buf = vec![0u8; pkt.emit_len()];
        if let Ok(n) = pkt.emit(&mut buf) {
            // Data bodies leave their payload to the caller: only control protocols round-trip.
            if matches!(
                pkt.body,
                PppBody::Lcp(_)
                    | PppBody::Ipcp(_)
                    | PppBody::Ipv6cp(_)
                    | PppBody::Pap(_)
                    | PppBody::Chap(_)
            ) {
                assert_eq!(PppPacket::parse(&buf[..n]), Ok(pkt), "PPP round trip");
            }
        }
    }
}

fn fuzz_session(sel: u8, key: SessionKey) -> Session {
    let six = sel & 1 != 0;
    let (local_addr, peer_addr): (IpAddr, IpAddr) = if six {
        (
            IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        )
    } else {
        (
            IpAddr::V4(core::net::Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(core::net::Ipv4Addr::new(192, 0, 2, 2)),
        )
    };
    let v3 = matches!(key, SessionKey::V3 { .. });
    let cookie = match (sel >> 1) & 3 {
        1 => Cookie::new(&[1, 2, 3, 4]),
        2 => Cookie::new(&[1, 2, 3, 4, 5, 6, 7, 8]),
        _ => Ok(Cookie::NONE),
    }
    .unwrap_or(Cookie::NONE);
    let cookie = if v3 { cookie } else { Cookie::NONE };
    Session {
        transport: if v3 && sel & 8 != 0 {
            Transport::Ip
        } else {
            Transport::Udp
        },
        local_addr,
        peer_addr,
        local_port: 1701,
        peer_port: 1701,
        local_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        next_hop_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        vlans: Vlans::NONE,
        our_ids: key,
        peer_ids: key,
        cookie_rx: cookie,
        cookie_tx: cookie,
        l2ss: v3 && sel & 16 != 0,
        sequencing: sel & 32 != 0 && (!v3 || sel & 16 != 0),
        ppp: PppTx {
            acfc: sel & 64 != 0,
            pfc: sel & 128 != 0,
        },
        ttl: 64,
        dscp: 0,
        udp_checksum_v4: sel & 4 != 0,
    }
}

/// Data packets: the reference decapsulation never panics on arbitrary frames (every lookup
/// finds a session with the key asked for, so the spoof, cookie, sequencing and PPP checks are
/// reached), nor do the header views; and encap→decap of arbitrary inner bytes gives back
/// exactly what was forwarded.
pub fn data_header(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cfg = DecapConfig {
        verify_udp_checksum: sel & 2 != 0,
        ..DecapConfig::default()
    };
    // As received, and with a correct outer IPv4 header checksum so that mutations get past
    // the IP layer into L2TP, PPP and the session checks.
    let mut fixed = rest.to_vec();
    if fixed.get(12..14) == Some(&[0x08, 0x00]) {
        if let Ok(mut ip) = crate::net::Ipv4Packet::new_checked(&mut fixed[14..]) {
            ip.fill_checksum();
        }
    }
    for frame in [rest, &fixed[..]] {
        let mut rx = RxSeq::default();
        let slot = std::cell::OnceCell::new();
        let looked_up = core::cell::Cell::new(None);
        let _ = decap(
            frame,
            &cfg,
            |k| {
                looked_up.set(Some(*k));
                Some(slot.get_or_init(|| fuzz_session(sel, *k)))
            },
            |_| Some(&mut rx),
            // Every inner source is bound to the session looked up: the paths past the source
            // check (TTL, forward) stay reachable.
            |_| looked_up.get(),
        );
    }

    if let Ok(p) = V2Packet::new_checked(rest) {
        let _ = V2Repr::parse(&p);
        let _ = p.payload();
    }
    let _ = ControlHeader::parse(rest);
    for cookie_len in [0, 4, 8] {
        let _ = V3DataRepr::parse(rest, Transport::Udp, cookie_len);
        let _ = V3DataRepr::parse(rest, Transport::Ip, cookie_len);
    }
    let _ = L2ssRepr::parse(rest);

    for key in [
        SessionKey::V2 {
            tunnel_id: 7,
            session_id: 9,
        },
        SessionKey::V3 {
            session_id: 0x0102_0304,
        },
    ] {
        let s = fuzz_session(sel, key);
        let mut out = vec![0u8; rest.len() + 128];
        if let Ok(n) = encap(&s, &mut TxSeq::default(), rest, 9000, &mut out) {
            let rx_side = Session {
                local_addr: s.peer_addr,
                peer_addr: s.local_addr,
                ..s
            };
            let mut rx = RxSeq::default();
            // The inner source (whatever it is) is bound to the session.
            let v = decap(
                &out[..n],
                &cfg,
                |k| (*k == key).then_some(&rx_side),
                |_| Some(&mut rx),
                |_| Some(key),
            );
            if let Verdict::Forward { inner, .. } = v {
                assert_eq!(out.get(inner), Some(rest), "encap→decap round trip");
            }
        }
    }
}

/// RADIUS packets (what a server, or anyone on the path, can send the LNS): parse, the
/// authenticator and Message-Authenticator checks and User-Password recovery never panic;
/// whatever parses emits back to the same bytes (within its Length), and re-signing it makes
/// both checks pass.
pub fn radius_packet(data: &[u8]) {
    use crate::radius::auth::{
        sign_authenticator, sign_message_authenticator, unhide_password,
        verify_message_authenticator, verify_response,
    };
    use crate::radius::{attr, Packet, RadiusPacket};
    let ra = [0x5a; 16];
    let _ = verify_response(data, &ra, SECRET);
    let _ = verify_message_authenticator(data, Some(&ra), SECRET);
    let Ok(view) = RadiusPacket::new_checked(data) else {
        assert!(Packet::parse(data).is_err(), "view and owned parse agree");
        return;
    };
    let Ok(p) = Packet::parse(data) else {
        panic!("a packet the view accepts parses");
    };
    let bytes = p.to_vec().expect("a parsed packet emits");
    assert_eq!(bytes, view.bytes(), "RADIUS round trip");
    if let Some(pw) = p.get(attr::USER_PASSWORD) {
        let _ = unhide_password(pw, SECRET, &ra);
    }
    if p.get(attr::MESSAGE_AUTHENTICATOR).map(<[u8]>::len) == Some(16)
        && p.all(attr::MESSAGE_AUTHENTICATOR).count() == 1
    {
        let mut b = bytes;
        sign_message_authenticator(&mut b, Some(&ra), SECRET).expect("one 16-octet MA");
        sign_authenticator(&mut b, &ra, SECRET);
        assert!(verify_response(&b, &ra, SECRET));
        assert_eq!(verify_message_authenticator(&b, Some(&ra), SECRET), Ok(()));
    }
}
