//! RFC conformance of the control plane between two registries: tunnel authentication, hidden
//! AVPs, tie breaker, unknown AVPs, limits, HELLO, strict emission, FSQ/FSR.

use std::time::Duration;

use l2xdp_wire::l2tp::avp::{Avp, AvpRepr, AvpType};
use l2xdp_wire::l2tp::header::{ControlHeader, Transport, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

use super::*;

const SECRET: &str = "s3cret";

fn with_secret(name: &str, secret: &str) -> L2tpConfig {
    L2tpConfig {
        secret: Some(secret.into()),
        ..cfg(name)
    }
}

/// Hides everything that can be hidden.
fn hiding(name: &str, secret: &str) -> L2tpConfig {
    let mut c = with_secret(name, secret);
    c.hide_avps = true;
    c.hidden.proxy_authen = true;
    c.hidden.assigned_cookie = true;
    c.hidden.calling_number = true;
    c.hidden.session_id = true;
    c
}

/// The message of a datagram (over IP without the zero Session ID); hidden AVPs stay opaque.
fn parse(d: &[u8]) -> Option<ControlMessage> {
    ControlMessage::parse(d, &ParseContext::default()).ok()
}

fn type_of(d: &[u8]) -> Option<MessageType> {
    parse(d).and_then(|m| m.message_type())
}

/// Parses, edits and re-encodes a datagram (header, Ns and Nr kept). `secret` hides AVPs marked
/// hidden; the datagram must not carry hidden AVPs or a Message Digest already.
fn rewrite(d: &[u8], secret: Option<&[u8]>, f: impl FnOnce(&mut ControlMessage)) -> Vec<u8> {
    let mut m = parse(d).expect("parses");
    f(&mut m);
    m.to_bytes(secret).expect("encodes")
}

fn emitted_of(n: &Net, mt: MessageType) -> Vec<ControlMessage> {
    n.emitted
        .iter()
        .filter_map(|(t, d)| {
            let d = if *t == Transport::Ip { &d[4..] } else { &d[..] };
            parse(d)
        })
        .filter(|m| m.message_type() == Some(mt))
        .collect()
}

fn tunnel_up_count(ev: &[Event]) -> usize {
    count(ev, is_tunnel_up)
}

fn tunnel_downs(ev: &[Event]) -> Vec<TunnelDownReason> {
    ev.iter()
        .filter_map(|e| match e {
            Event::TunnelDown { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn session_downs(ev: &[Event]) -> Vec<SessionDownReason> {
    ev.iter()
        .filter_map(|e| match e {
            Event::SessionDown { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn result_of(r: &TunnelDownReason) -> Option<(u16, Option<u16>)> {
    match r {
        TunnelDownReason::Local(rc) | TunnelDownReason::Peer(rc) => Some((rc.result, rc.error)),
        _ => None,
    }
}

fn established(r: &Registry) -> Vec<TunnelId> {
    let mut v: Vec<TunnelId> = r
        .tunnels()
        .filter(|t| t.state() == tunnel::TunnelState::Established)
        .map(|t| t.id())
        .collect();
    v.sort_unstable();
    v
}

// -------------------------------------------------------------------------------------------
// 1. Tunnel authentication

/// RFC 2661 §4.4.3, §5.1.1: with the same secret both sides challenge, both answer, the
/// tunnel comes up.
#[test]
fn v2_challenge_same_secret_tunnel_comes_up() {
    let mut n = Net::new(with_secret("lac", SECRET), with_secret("lns", SECRET));
    n.a.open_tunnel(Net::pb(), Version::V2, n.now)
        .expect("open");
    n.run(Duration::from_secs(1));
    assert_eq!(tunnel_up_count(&n.ev_a), 1);
    assert_eq!(tunnel_up_count(&n.ev_b), 1);
    let sccrq = emitted_of(&n, MessageType::Sccrq);
    let sccrp = emitted_of(&n, MessageType::Sccrp);
    let scccn = emitted_of(&n, MessageType::Scccn);
    assert!(sccrq[0].get(AvpType::Challenge).is_some());
    assert!(sccrq[0].get(AvpType::ChallengeResponse).is_none());
    assert!(sccrp[0].get(AvpType::Challenge).is_some());
    assert!(sccrp[0].get(AvpType::ChallengeResponse).is_some());
    assert!(scccn[0].get(AvpType::ChallengeResponse).is_some());
    n.check_emitted();
}

/// Different secrets: the initiator finds the SCCRP's Challenge Response wrong and sends a
/// StopCCN with Result Code 4 (RFC 2661 §4.4.2 "Requester is not authorized").
#[test]
fn v2_challenge_different_secrets_not_authorized() {
    let mut n = Net::new(with_secret("lac", "one"), with_secret("lns", "two"));
    n.a.open_tunnel(Net::pb(), Version::V2, n.now)
        .expect("open");
    n.run(Duration::from_secs(60));
    assert_eq!(tunnel_up_count(&n.ev_a), 0);
    assert_eq!(tunnel_up_count(&n.ev_b), 0);
    let (da, db) = (tunnel_downs(&n.ev_a), tunnel_downs(&n.ev_b));
    assert_eq!(da.len(), 1);
    assert_eq!(db.len(), 1);
    assert!(
        matches!(&da[0], TunnelDownReason::Local(rc) if rc.result == 4),
        "{da:?}"
    );
    assert!(
        matches!(&db[0], TunnelDownReason::Peer(rc) if rc.result == 4),
        "{db:?}"
    );
    assert!(n.a.is_empty() && n.b.is_empty());
    assert_eq!(n.a.counters().tunnels_up + n.b.counters().tunnels_up, 0);
}

/// The side that sent a challenge does not accept an SCCRP / SCCCN without the response
/// (RFC 2661 §5.1.1).
#[test]
fn v2_missing_challenge_response_is_refused() {
    for strip_from in [MessageType::Sccrp, MessageType::Scccn] {
        let mut n = Net::new(with_secret("lac", SECRET), with_secret("lns", SECRET));
        n.tamper = Some(Box::new(move |_, d| {
            if type_of(&d) != Some(strip_from) {
                return Some(d);
            }
            Some(rewrite(&d, None, |m| {
                m.avps
                    .retain(|a| a.avp.avp_type() != Some(AvpType::ChallengeResponse))
            }))
        }));
        n.a.open_tunnel(Net::pb(), Version::V2, n.now)
            .expect("open");
        n.run(Duration::from_secs(60));
        // The authenticator: A for the SCCRP, B for the SCCCN.
        let (auth, other) = if strip_from == MessageType::Sccrp {
            (&n.ev_a, &n.ev_b)
        } else {
            (&n.ev_b, &n.ev_a)
        };
        assert_eq!(tunnel_up_count(auth), 0, "{strip_from:?}");
        let d = tunnel_downs(auth);
        assert!(
            matches!(&d[..], [TunnelDownReason::Local(rc)] if rc.result == 4),
            "{strip_from:?}: {d:?}"
        );
        let d = tunnel_downs(other);
        assert!(
            matches!(&d[..], [TunnelDownReason::Peer(rc)] if rc.result == 4),
            "{strip_from:?}: {d:?}"
        );
        assert!(n.a.is_empty() && n.b.is_empty());
    }
}

/// A secret on one side only: the side that cannot answer a challenge refuses with Result
/// Code 4 (RFC 2661 §5.1.1), and nothing comes up.
#[test]
fn v2_secret_on_one_side_only() {
    // The responder challenges in its SCCRP; the initiator has no secret to answer with.
    let mut n = Net::new(cfg("lac"), with_secret("lns", SECRET));
    n.a.open_tunnel(Net::pb(), Version::V2, n.now)
        .expect("open");
    n.run(Duration::from_secs(60));
    assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
    let (da, db) = (tunnel_downs(&n.ev_a), tunnel_downs(&n.ev_b));
    assert!(
        matches!(&da[..], [TunnelDownReason::Local(rc)] if rc.result == 4),
        "{da:?}"
    );
    assert!(
        matches!(&db[..], [TunnelDownReason::Peer(rc)] if rc.result == 4),
        "{db:?}"
    );
    assert!(n.a.is_empty() && n.b.is_empty());

    // The initiator challenges in its SCCRQ; the responder refuses it at once.
    let mut n = Net::new(with_secret("lac", SECRET), cfg("lns"));
    n.a.open_tunnel(Net::pb(), Version::V2, n.now)
        .expect("open");
    n.run(Duration::from_secs(60));
    assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
    let da = tunnel_downs(&n.ev_a);
    assert!(
        matches!(&da[..], [TunnelDownReason::Peer(rc)] if rc.result == 4),
        "{da:?}"
    );
    assert!(
        n.ev_b.is_empty(),
        "the responder never had a tunnel to announce"
    );
    assert!(n.a.is_empty() && n.b.is_empty());
}

/// RFC 3931 §4.3, §5.4.3: the same secret on both sides: nonces exchanged, every message
/// digested (no ZLBs: explicit ACKs), the tunnel and a session come up, over UDP and IP.
#[test]
fn v3_message_digest_same_secret() {
    for ip in [false, true] {
        let mut n = Net::new(with_secret("a", SECRET), with_secret("b", SECRET));
        let peer = if ip {
            Net::pb_over(Transport::Ip)
        } else {
            Net::pb()
        };
        let t = n.a.open_tunnel(peer, Version::V3, n.now).expect("open");
        n.run(Duration::from_secs(1));
        assert_eq!(tunnel_up_count(&n.ev_a), 1, "ip {ip}");
        assert_eq!(tunnel_up_count(&n.ev_b), 1, "ip {ip}");
        n.a.open_session(t, CallParams::default(), n.now)
            .expect("s");
        n.run(Duration::from_secs(1));
        assert_eq!((ups(&n.ev_a).len(), ups(&n.ev_b).len()), (1, 1), "ip {ip}");
        assert!(emitted_of(&n, MessageType::Sccrq)[0]
            .get(AvpType::ControlMessageAuthNonce)
            .is_some());
        assert!(emitted_of(&n, MessageType::Sccrp)[0]
            .get(AvpType::ControlMessageAuthNonce)
            .is_some());
        for (t, d) in &n.emitted {
            let d = if *t == Transport::Ip { &d[4..] } else { &d[..] };
            let m = parse(d).expect("parses");
            assert!(!m.is_zlb(), "no ZLB with message authentication");
            assert!(matches!(m.avps[1].avp, Avp::MessageDigest { .. }), "{m:?}");
        }
        n.check_emitted();
    }
}

/// Different secrets: the digest does not verify, so the message MUST be dropped (RFC 3931
/// §5.4.1 Message Digest): the responder keeps no state and answers nothing, the initiator's
/// channel fails.
#[test]
fn v3_message_digest_different_secrets_dropped() {
    let mut n = Net::new(with_secret("a", "one"), with_secret("b", "two"));
    n.a.open_tunnel(Net::pb(), Version::V3, n.now)
        .expect("open");
    n.run(Duration::from_secs(1));
    assert!(
        n.b.is_empty(),
        "no state for an SCCRQ that failed its digest"
    );
    n.run(Duration::from_secs(60));
    assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
    assert_eq!(tunnel_downs(&n.ev_a), vec![TunnelDownReason::Timeout]);
    assert!(n.ev_b.is_empty());
    assert!(n.b.is_empty() && n.a.is_empty());
    assert!(emitted_of(&n, MessageType::Sccrp).is_empty());
    // Every retransmission of the SCCRQ is checked (and dropped) anew.
    let sent = emitted_of(&n, MessageType::Sccrq).len() as u64;
    assert_eq!(sent, 1 + u64::from(cfg("a").retransmit.max_retries));
    assert_eq!(
        n.b.counters().invalid.get("bad or missing message digest"),
        Some(&sent)
    );
}

/// Authentication on one side only (RFC 3931 §4.3: "either both sides participate in
/// authentication, or neither does"): the node that requires it is refused or refuses with
/// StopCCN Result Code 4.
#[test]
fn v3_authentication_on_one_side_only() {
    // The responder requires authentication, the initiator sends no nonce.
    let mut n = Net::new(cfg("a"), with_secret("b", SECRET));
    n.a.open_tunnel(Net::pb(), Version::V3, n.now)
        .expect("open");
    n.run(Duration::from_secs(60));
    assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
    let d = tunnel_downs(&n.ev_a);
    assert!(
        matches!(&d[..], [TunnelDownReason::Peer(rc)] if rc.result == 4),
        "{d:?}"
    );
    assert!(n.a.is_empty() && n.b.is_empty());

    // The initiator requires it, the responder has no secret: it refuses with a StopCCN the
    // initiator must drop (no digest, RFC 3931 §5.4.1), so the initiator times out.
    let mut n = Net::new(with_secret("a", SECRET), cfg("b"));
    n.a.open_tunnel(Net::pb(), Version::V3, n.now)
        .expect("open");
    n.run(Duration::from_secs(60));
    assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
    let stop = emitted_of(&n, MessageType::StopCcn);
    assert_eq!(stop[0].result_code().map(|r| r.0), Some(4));
    assert_eq!(tunnel_downs(&n.ev_a), vec![TunnelDownReason::Timeout]);
    assert!(n.a.is_empty() && n.b.is_empty());
}

// -------------------------------------------------------------------------------------------
// 2. Hidden AVPs

fn has_hidden(m: &ControlMessage) -> bool {
    m.avps.iter().any(|a| a.hidden)
}

/// RFC 2661 §4.3: hidden proxy authentication values, calling number and session IDs cross a
/// real tunnel intact.
#[test]
fn v2_hidden_avps_round_trip() {
    let mut n = Net::new(hiding("lac", SECRET), hiding("lns", SECRET));
    let t =
        n.a.open_tunnel(Net::pb(), Version::V2, n.now)
            .expect("open");
    n.run(Duration::from_secs(1));
    let proxy = ProxyValues {
        authen_type: Some(2),
        authen_name: Some(b"user@realm".to_vec()),
        authen_challenge: Some((0..16).collect()),
        authen_id: Some(7),
        authen_response: Some(vec![0xaa; 16]),
        ..ProxyValues::default()
    };
    n.a.open_session(
        t,
        CallParams {
            calling_number: b"5551234".to_vec(),
            called_number: b"999".to_vec(),
            proxy: proxy.clone(),
            ..CallParams::default()
        },
        n.now,
    )
    .expect("s");
    n.run(Duration::from_secs(1));
    let (a, b) = (ups(&n.ev_a), ups(&n.ev_b));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(b[0].proxy.as_deref(), Some(&proxy));
    assert_eq!(b[0].calling_number, b"5551234");
    assert_eq!(b[0].called_number, b"999");
    assert_eq!(a[0].our_ids, b[0].peer_ids);
    assert_eq!(a[0].peer_ids, b[0].our_ids);
    // It really was hidden on the wire.
    let iccn = emitted_of(&n, MessageType::Iccn);
    assert!(has_hidden(&iccn[0]));
    assert!(iccn[0]
        .avps
        .iter()
        .any(|a| matches!(a.avp, Avp::Hidden { attr_type: 30, .. })));
    assert!(has_hidden(&emitted_of(&n, MessageType::Icrq)[0]));
    assert!(has_hidden(&emitted_of(&n, MessageType::Icrp)[0]));
    n.check_emitted();
}

/// RFC 3931 §5.3, §5.4.4: a hidden Assigned Cookie gives matching cookies on both sides.
#[test]
fn v3_hidden_cookie_round_trip() {
    let mut ca = hiding("a", SECRET);
    ca.pseudowire.cookie_len = 8;
    let mut cb = hiding("b", SECRET);
    cb.pseudowire.cookie_len = 4;
    let mut n = Net::new(ca, cb);
    let t =
        n.a.open_tunnel(Net::pb(), Version::V3, n.now)
            .expect("open");
    n.run(Duration::from_secs(1));
    n.a.open_session(t, CallParams::default(), n.now)
        .expect("s");
    n.run(Duration::from_secs(1));
    let (a, b) = (ups(&n.ev_a), ups(&n.ev_b));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a[0].cookie_rx.len(), 8);
    assert_eq!(b[0].cookie_rx.len(), 4);
    assert_eq!(a[0].cookie_tx, b[0].cookie_rx);
    assert_eq!(a[0].cookie_rx, b[0].cookie_tx);
    assert!(has_hidden(&emitted_of(&n, MessageType::Icrq)[0]));
    assert!(has_hidden(&emitted_of(&n, MessageType::Icrp)[0]));
    n.check_emitted();
}

/// Adds a Random Vector and a hidden Calling Number (hidden with `secret`) to a message.
fn add_hidden_calling_number(d: &[u8], mandatory: bool) -> Vec<u8> {
    rewrite(d, Some(b"somebody else's"), |m| {
        let v = m.version();
        m.avps
            .push(AvpRepr::new(Avp::RandomVector(vec![0x42; 16]), v));
        m.avps.push(
            AvpRepr::new(Avp::CallingNumber(b"hidden".to_vec()), v)
                .hide()
                .with_mandatory(mandatory),
        );
    })
}

/// A hidden AVP a node cannot unhide (no secret): M=1 clears the session with CDN result 2,
/// error 8 (RFC 2661 §4.2, §4.3; the validator's rule), the tunnel stays; M=0 is ignored.
#[test]
fn hidden_mandatory_avp_without_secret() {
    for v in [Version::V2, Version::V3] {
        for mandatory in [true, false] {
            let mut n = Net::new(cfg("lac"), cfg("lns"));
            n.tamper = Some(Box::new(move |from_a, d| {
                if from_a && type_of(&d) == Some(MessageType::Icrq) {
                    Some(add_hidden_calling_number(&d, mandatory))
                } else {
                    Some(d)
                }
            }));
            let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
            n.run(Duration::from_secs(1));
            let s =
                n.a.open_session(t, CallParams::default(), n.now)
                    .expect("s");
            n.run(Duration::from_secs(1));
            if mandatory {
                assert!(ups(&n.ev_a).is_empty() && ups(&n.ev_b).is_empty(), "{v:?}");
                let d = session_downs(&n.ev_a);
                assert!(
                    matches!(&d[..], [SessionDownReason::Peer { result, .. }]
                        if result.result == 2 && result.error == Some(8)
                            && result.message.contains("could not be unhidden")),
                    "{v:?}: {d:?}"
                );
                assert_eq!(n.a.tunnel(t).expect("t").session_state(s), None);
            } else {
                assert_eq!((ups(&n.ev_a).len(), ups(&n.ev_b).len()), (1, 1), "{v:?}");
            }
            assert!(tunnel_downs(&n.ev_a).is_empty() && tunnel_downs(&n.ev_b).is_empty());
            assert_eq!(established(&n.a).len(), 1);
            assert_eq!(established(&n.b).len(), 1);
        }
    }
}

// -------------------------------------------------------------------------------------------
// 3. Tie breaker

/// Both nodes open a tunnel to each other at once. RFC 2661 §4.4.3 / RFC 3931 §5.4.3: the
/// lower Tie Breaker value wins; the loser discards its connection (TunnelDown
/// LostTieBreaker) and answers the winner's SCCRQ; one connection survives on both sides.
#[test]
fn tie_breaker_lower_value_wins() {
    for v in [Version::V2, Version::V3] {
        for (sa, sb) in [(1, 2), (2, 1), (7, 3)] {
            let mut n = Net::seeded(cfg("a"), cfg("b"), sa, sb);
            let ta = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
            let tb = n.b.open_tunnel(Net::pa(), v, n.now).expect("open");
            let va = n.a.tunnel(ta).and_then(|t| t.tie_breaker()).expect("tb");
            let vb = n.b.tunnel(tb).and_then(|t| t.tie_breaker()).expect("tb");
            assert_ne!(va, vb);
            let a_wins = va < vb;
            n.run(Duration::from_secs(60));
            let (ea, eb) = (established(&n.a), established(&n.b));
            assert_eq!((ea.len(), eb.len()), (1, 1), "{v:?} {sa} {sb}");
            assert_eq!((n.a.len(), n.b.len()), (1, 1), "losers are gone");
            let (winner, loser_events, winner_events) = if a_wins {
                (ea[0], &n.ev_b, &n.ev_a)
            } else {
                (eb[0], &n.ev_a, &n.ev_b)
            };
            assert_eq!(winner, if a_wins { ta } else { tb }, "{v:?} {sa} {sb}");
            assert_eq!(
                n.a.tunnel(ea[0]).expect("t").peer_tunnel_id(),
                eb[0],
                "paired"
            );
            assert_eq!(n.b.tunnel(eb[0]).expect("t").peer_tunnel_id(), ea[0]);
            assert_eq!(
                tunnel_downs(loser_events),
                vec![TunnelDownReason::LostTieBreaker]
            );
            assert!(tunnel_downs(winner_events).is_empty());
            assert_eq!(tunnel_up_count(&n.ev_a), 1);
            assert_eq!(tunnel_up_count(&n.ev_b), 1);
            // RFC 3931 §5.4.3: the winner rejects the losing SCCRQ with a StopCCN.
            let stops = emitted_of(&n, MessageType::StopCcn);
            assert_eq!(stops.len(), 1, "{v:?}");
            assert_eq!(stops[0].result_code().map(|r| r.0), Some(3));
            n.check_emitted();
        }
    }
}

/// Equal Tie Breaker values: both sides discard their connections (RFC 2661 §4.4.3).
#[test]
fn tie_breaker_equal_values_both_discarded() {
    for v in [Version::V2, Version::V3] {
        // The same seed draws the same tie breaker.
        let mut n = Net::seeded(cfg("a"), cfg("b"), 5, 5);
        let ta = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        let tb = n.b.open_tunnel(Net::pa(), v, n.now).expect("open");
        assert_eq!(
            n.a.tunnel(ta).and_then(|t| t.tie_breaker()),
            n.b.tunnel(tb).and_then(|t| t.tie_breaker())
        );
        n.run(Duration::from_secs(120));
        assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
        assert_eq!(
            tunnel_downs(&n.ev_a),
            vec![TunnelDownReason::LostTieBreaker]
        );
        assert_eq!(
            tunnel_downs(&n.ev_b),
            vec![TunnelDownReason::LostTieBreaker]
        );
        assert!(n.a.is_empty() && n.b.is_empty(), "{v:?}");
    }
}

// -------------------------------------------------------------------------------------------
// 4. Unknown AVPs

/// Appends a vendor AVP (vendor 9, attribute 1) with the M bit given.
fn add_vendor_avp(d: &[u8], mandatory: bool) -> Vec<u8> {
    rewrite(d, None, |m| {
        let v = m.version();
        m.avps.push(
            AvpRepr::new(
                Avp::Unknown {
                    vendor_id: 9,
                    attr_type: 1,
                    value: vec![1, 2, 3],
                },
                v,
            )
            .with_mandatory(mandatory),
        );
    })
}

fn tamper_type(n: &mut Net, mt: MessageType, mandatory: bool) {
    n.tamper = Some(Box::new(move |from_a, d| {
        if from_a && type_of(&d) == Some(mt) {
            Some(add_vendor_avp(&d, mandatory))
        } else {
            Some(d)
        }
    }));
}

/// RFC 2661 §4.2, RFC 3931 §5.2: an unknown AVP with M=1 in an ICRQ clears the session (CDN,
/// result 2, error 8); the tunnel stays up and later sessions work. M=0: ignored.
#[test]
fn unknown_mandatory_avp_in_icrq() {
    for v in [Version::V2, Version::V3] {
        for mandatory in [true, false] {
            let mut n = Net::new(cfg("lac"), cfg("lns"));
            tamper_type(&mut n, MessageType::Icrq, mandatory);
            let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
            n.run(Duration::from_secs(1));
            n.a.open_session(t, CallParams::default(), n.now)
                .expect("s");
            n.run(Duration::from_secs(1));
            if mandatory {
                assert!(ups(&n.ev_a).is_empty() && ups(&n.ev_b).is_empty());
                let d = session_downs(&n.ev_a);
                assert!(
                    matches!(&d[..], [SessionDownReason::Peer { result, .. }]
                        if result.result == 2 && result.error == Some(8)),
                    "{v:?}: {d:?}"
                );
                let cdn = emitted_of(&n, MessageType::Cdn);
                assert_eq!(cdn.len(), 1);
                assert!(session_downs(&n.ev_b).is_empty(), "B never had the session");
                // Later sessions come up.
                n.tamper = None;
                n.a.open_session(t, CallParams::default(), n.now)
                    .expect("s");
                n.run(Duration::from_secs(1));
            }
            assert_eq!((ups(&n.ev_a).len(), ups(&n.ev_b).len()), (1, 1), "{v:?}");
            assert!(tunnel_downs(&n.ev_a).is_empty() && tunnel_downs(&n.ev_b).is_empty());
            n.check_emitted();
        }
    }
}

/// An unknown AVP with M=1 in an SCCRQ: StopCCN (result 2, error 8); M=0: ignored.
#[test]
fn unknown_mandatory_avp_in_sccrq() {
    for v in [Version::V2, Version::V3] {
        for mandatory in [true, false] {
            let mut n = Net::new(cfg("lac"), cfg("lns"));
            tamper_type(&mut n, MessageType::Sccrq, mandatory);
            n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
            n.run(Duration::from_secs(60));
            if mandatory {
                assert_eq!(tunnel_up_count(&n.ev_a) + tunnel_up_count(&n.ev_b), 0);
                let d = tunnel_downs(&n.ev_a);
                assert_eq!(d.len(), 1, "{v:?}");
                assert_eq!(result_of(&d[0]), Some((2, Some(8))), "{v:?}");
                assert!(matches!(d[0], TunnelDownReason::Peer(_)));
                assert!(n.a.is_empty() && n.b.is_empty());
            } else {
                assert_eq!((established(&n.a).len(), established(&n.b).len()), (1, 1));
            }
        }
    }
}

/// xl2tpd 1.3.18 picks its call IDs at random with no check for 0 (call.c `new_call`), and now
/// and then sends an ICRQ with Assigned Session ID 0 (RFC 2661 §4.4.3: non-zero). It cannot
/// match any answer for that session: every message to it carries Session ID 0, which is the
/// tunnel's (RFC 2661 §3.1, p. 43), so xl2tpd hands a CDN to the tunnel and finds no call, and
/// hangs with a tunnel and no session. Alone on its tunnel the call is answered with a StopCCN
/// (result 2, error 3): nothing else is lost, and the LAC redials. With other sessions on the
/// tunnel: a CDN, as for any invalid ICRQ, and those sessions stay.
#[test]
fn icrq_with_assigned_session_id_0() {
    let zero = |from_a: bool, d: Vec<u8>| {
        if from_a && type_of(&d) == Some(MessageType::Icrq) {
            Some(rewrite(&d, None, |m| {
                for a in &mut m.avps {
                    if let Avp::AssignedSessionId(id) = &mut a.avp {
                        *id = 0;
                    }
                }
            }))
        } else {
            Some(d)
        }
    };
    for others in [0, 1] {
        let mut n = Net::new(cfg("lac"), cfg("lns"));
        let t =
            n.a.open_tunnel(Net::pb(), Version::V2, n.now)
                .expect("open");
        n.run(Duration::from_secs(1));
        for _ in 0..others {
            n.a.open_session(t, CallParams::default(), n.now)
                .expect("s");
        }
        n.run(Duration::from_secs(1));
        assert_eq!(ups(&n.ev_b).len(), others);
        n.tamper = Some(Box::new(zero));
        n.a.open_session(t, CallParams::default(), n.now)
            .expect("s");
        // Long enough for the StopCCN's sender to forget the tunnel (RFC 2661 §5.7).
        n.run(Duration::from_secs(60));
        let stop = emitted_of(&n, MessageType::StopCcn);
        let cdn = emitted_of(&n, MessageType::Cdn);
        if others == 0 {
            assert_eq!((stop.len(), cdn.len()), (1, 0), "a StopCCN, no CDN");
            let d = tunnel_downs(&n.ev_a);
            assert_eq!(d.len(), 1, "the LAC's tunnel is closed: {d:?}");
            assert_eq!(result_of(&d[0]), Some((2, Some(3))), "{d:?}");
            assert!(n.a.is_empty() && n.b.is_empty());
        } else {
            assert_eq!((stop.len(), cdn.len()), (0, 1), "a CDN, no StopCCN");
            assert!(tunnel_downs(&n.ev_a).is_empty() && tunnel_downs(&n.ev_b).is_empty());
            assert!(session_downs(&n.ev_b).is_empty(), "the other session stays");
            assert_eq!(established(&n.b).len(), 1);
        }
    }
}

// -------------------------------------------------------------------------------------------
// 5. Limits

/// An ICRQ beyond `max_sessions_per_tunnel` gets CDN result 4 (RFC 2661 §4.4.2: "lack of
/// appropriate facilities ... temporary"), the others are unaffected.
#[test]
fn session_limit_refuses_the_extra_icrq() {
    for v in [Version::V2, Version::V3] {
        let mut cb = cfg("lns");
        cb.limits.max_sessions_per_tunnel = 2;
        let mut n = Net::new(cfg("lac"), cb);
        let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(1));
        let ids: Vec<u32> = (0..3)
            .map(|_| {
                n.a.open_session(t, CallParams::default(), n.now)
                    .expect("s")
            })
            .collect();
        n.run(Duration::from_secs(1));
        assert_eq!((ups(&n.ev_a).len(), ups(&n.ev_b).len()), (2, 2), "{v:?}");
        let d = session_downs(&n.ev_a);
        assert!(
            matches!(&d[..], [SessionDownReason::Peer { result, .. }]
                if result.result == 4 && result.error == Some(4)),
            "{v:?}: {d:?}"
        );
        let tun = n.a.tunnel(t).expect("t");
        assert_eq!(tun.established_sessions(), {
            let mut up: Vec<u32> = ids[..2].to_vec();
            up.sort_unstable();
            up
        });
        assert_eq!(tun.session_state(ids[2]), None);
        assert!(tunnel_downs(&n.ev_a).is_empty() && tunnel_downs(&n.ev_b).is_empty());
        n.check_emitted();
    }
}

/// An SCCRQ beyond `max_tunnels` gets a StopCCN (result 2, error 4 "insufficient
/// resources"); the existing tunnel is unaffected.
#[test]
fn tunnel_limit_refuses_the_extra_sccrq() {
    for v in [Version::V2, Version::V3] {
        let mut cb = cfg("lns");
        cb.limits.max_tunnels = 1;
        let mut n = Net::new(cfg("lac"), cb);
        let t1 = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(1));
        let t2 = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(60));
        assert_eq!(established(&n.a), vec![t1], "{v:?}");
        assert_eq!(established(&n.b).len(), 1);
        assert!(n.a.tunnel(t2).is_none());
        let d = tunnel_downs(&n.ev_a);
        assert_eq!(d.len(), 1, "{v:?}");
        assert!(matches!(d[0], TunnelDownReason::Peer(_)));
        assert_eq!(result_of(&d[0]), Some((2, Some(4))));
        assert!(tunnel_downs(&n.ev_b).is_empty());
        assert_eq!(n.b.len(), 1);
    }
}

// -------------------------------------------------------------------------------------------
// 6. HELLO

/// RFC 2661 §6.5 / RFC 3931 §4.4: after `hello_interval` without a message, a HELLO goes
/// out; the peer acknowledges it and nothing goes down.
#[test]
fn hello_after_silence_is_acknowledged() {
    for (v, secret) in [
        (Version::V2, None),
        (Version::V3, None),
        (Version::V3, Some(SECRET)),
    ] {
        let mk = |name: &str| {
            let mut c = cfg(name);
            c.secret = secret.map(str::to_string);
            c.hello_interval_secs = 10;
            c
        };
        let mut n = Net::new(mk("a"), mk("b"));
        let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(1));
        n.a.open_session(t, CallParams::default(), n.now)
            .expect("s");
        n.run(Duration::from_secs(8));
        let hellos = |r: &Registry| r.counters().messages_out.get("HELLO").copied();
        assert_eq!(hellos(&n.a), None, "no HELLO before the interval");
        n.run(Duration::from_secs(100));
        let (ha, hb) = (
            hellos(&n.a).unwrap_or_default(),
            hellos(&n.b).unwrap_or_default(),
        );
        assert!(ha >= 5 && hb >= 5, "{v:?}: {ha} {hb}");
        assert!(ha <= 11 && hb <= 11, "{v:?}: {ha} {hb}");
        assert_eq!(
            n.b.counters().messages_in.get("HELLO").copied(),
            Some(ha),
            "each HELLO arrives"
        );
        assert_eq!(n.a.counters().retransmissions, 0);
        assert!(tunnel_downs(&n.ev_a).is_empty() && tunnel_downs(&n.ev_b).is_empty());
        assert_eq!(ups(&n.ev_a).len(), 1);
        assert_eq!(n.a.tunnel(t).expect("t").established_sessions().len(), 1);
        n.check_emitted();
    }
}

/// The peer vanishes: the HELLO is retransmitted until the channel fails, then TunnelDown
/// (Timeout) and the sessions go down with it.
#[test]
fn hello_to_vanished_peer_times_out() {
    for v in [Version::V2, Version::V3] {
        let mut ca = cfg("a");
        ca.hello_interval_secs = 10;
        let mut n = Net::new(ca.clone(), cfg("b"));
        let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(1));
        n.a.open_session(t, CallParams::default(), n.now)
            .expect("s");
        n.run(Duration::from_secs(1));
        n.tamper = Some(Box::new(|_, _| None));
        let cycle = ca.retransmission_cycle();
        // The last message arrived about 1 s ago: the HELLO goes out about 9 s from now and
        // the channel fails one retransmission cycle later. Nothing goes down before.
        n.run(ca.hello_interval() + cycle - Duration::from_secs(3));
        assert!(tunnel_downs(&n.ev_a).is_empty(), "{v:?}");
        assert!(n.a.counters().messages_out.contains_key("HELLO"), "{v:?}");
        n.run(Duration::from_secs(4));
        assert_eq!(tunnel_downs(&n.ev_a), vec![TunnelDownReason::Timeout]);
        assert_eq!(
            session_downs(&n.ev_a),
            vec![SessionDownReason::TunnelDown],
            "{v:?}"
        );
        assert!(n.a.is_empty());
        assert!(n.a.counters().retransmissions >= u64::from(ca.retransmit.max_retries));
    }
}

// -------------------------------------------------------------------------------------------
// 7. Strict emission with a secret

/// A full run — tunnel, sessions (with proxy values), CDNs, StopCCN — with a secret set: v2
/// with challenges and hidden AVPs, v3 with Message Digest (over UDP and IP) and a hidden
/// cookie. Every datagram emitted passes the validator with the secret.
#[test]
fn everything_emitted_with_a_secret_validates() {
    for (v, transport) in [
        (Version::V2, Transport::Udp),
        (Version::V3, Transport::Udp),
        (Version::V3, Transport::Ip),
    ] {
        let mk = |name: &str| {
            let mut c = hiding(name, SECRET);
            c.pseudowire.cookie_len = 8;
            c.hello_interval_secs = 5;
            c
        };
        let mut n = Net::new(mk("lac"), mk("lns"));
        let t =
            n.a.open_tunnel(Net::pb_over(transport), v, n.now)
                .expect("open");
        n.run(Duration::from_secs(1));
        for kind in [CallKind::Incoming, CallKind::Incoming, CallKind::Outgoing] {
            n.a.open_session(
                t,
                CallParams {
                    kind,
                    calling_number: b"1".to_vec(),
                    called_number: b"2".to_vec(),
                    proxy: ProxyValues {
                        authen_type: Some(2),
                        authen_name: Some(b"u".to_vec()),
                        authen_challenge: Some(vec![3; 16]),
                        authen_id: Some(1),
                        authen_response: Some(vec![4; 16]),
                        ..ProxyValues::default()
                    },
                    ..CallParams::default()
                },
                n.now,
            )
            .expect("s");
        }
        n.run(Duration::from_secs(7));
        assert_eq!((ups(&n.ev_a).len(), ups(&n.ev_b).len()), (3, 3), "{v:?}");
        let s = n.a.tunnel(t).expect("t").established_sessions();
        n.a.close_session(t, s[0], ResultCode::new(3, 0, "admin"), None, n.now)
            .expect("cdn");
        // B closes another session at the same time (not the one A closes: crossing CDNs).
        let other = ups(&n.ev_b)
            .into_iter()
            .find(|u| u.peer_session == s[1])
            .expect("B's side of A's second session");
        n.b.close_session(
            other.tunnel,
            other.session,
            ResultCode::new(3, 0, "admin"),
            None,
            n.now,
        )
        .expect("cdn");
        n.run(Duration::from_secs(1));
        n.a.close_tunnel(t, ResultCode::new(1, 0, "bye"), n.now)
            .expect("stop");
        n.run(Duration::from_secs(60));
        assert!(n.a.is_empty() && n.b.is_empty(), "{v:?}");
        assert_eq!(n.a.counters().invalid, Default::default(), "{v:?}");
        assert_eq!(n.b.counters().invalid, Default::default(), "{v:?}");
        for mt in [
            MessageType::Hello,
            MessageType::Cdn,
            MessageType::StopCcn,
            MessageType::Iccn,
            MessageType::Occn,
        ] {
            assert!(!emitted_of(&n, mt).is_empty(), "{v:?}: {mt:?}");
        }
        n.check_emitted();
    }
}

// -------------------------------------------------------------------------------------------
// 8. FSQ / FSR

/// Replaces a HELLO from `a` with an FSQ and one from `b` with an FSR (RFC 4951 §4), keeping
/// the header (so Ns/Nr stay right).
fn hello_to_failover_query(from_a: bool, d: Vec<u8>) -> Option<Vec<u8>> {
    if type_of(&d) != Some(MessageType::Hello) {
        return Some(d);
    }
    let (h, _) = ControlHeader::parse(&d).expect("header");
    let mt = if from_a {
        MessageType::Fsq
    } else {
        MessageType::Fsr
    };
    let m = ControlMessage::build(
        h,
        mt,
        vec![Avp::FailoverSessionState {
            session_id: 1,
            remote_session_id: 2,
        }],
    );
    Some(m.to_bytes(None).expect("encodes"))
}

/// FSQ and FSR are acknowledged at the transport level; nothing else happens (yet).
#[test]
fn fsq_and_fsr_are_acknowledged_and_ignored() {
    for v in [Version::V2, Version::V3] {
        let mut ca = cfg("a");
        ca.hello_interval_secs = 10;
        let mut n = Net::new(ca.clone(), ca.clone());
        let t = n.a.open_tunnel(Net::pb(), v, n.now).expect("open");
        n.run(Duration::from_secs(1));
        n.a.open_session(t, CallParams::default(), n.now)
            .expect("s");
        n.run(Duration::from_secs(1));
        n.tamper = Some(Box::new(hello_to_failover_query));
        n.run(Duration::from_secs(30));
        let (ca_, cb_) = (n.a.counters(), n.b.counters());
        assert!(
            cb_.messages_in.get("FSQ").copied().unwrap_or(0) >= 1,
            "{v:?}"
        );
        assert!(
            ca_.messages_in.get("FSR").copied().unwrap_or(0) >= 1,
            "{v:?}"
        );
        assert_eq!(ca_.retransmissions + cb_.retransmissions, 0, "acknowledged");
        assert_eq!(ca_.invalid, Default::default());
        assert_eq!(cb_.invalid, Default::default());
        assert!(tunnel_downs(&n.ev_a).is_empty() && tunnel_downs(&n.ev_b).is_empty());
        assert!(session_downs(&n.ev_a).is_empty() && session_downs(&n.ev_b).is_empty());
        assert_eq!(n.a.tunnel(t).expect("t").established_sessions().len(), 1);
        assert_eq!(established(&n.b).len(), 1);
    }
}
