//! Tests of [`Channel`](super::Channel): sequencing, acknowledgement, retransmission, hold,
//! congestion window, sequence reset, refusals.

use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

fn v2() -> Channel {
    let mut ch = Channel::new(Version::V2, ReliableConfig::default());
    ch.set_peer_tunnel_id(7).expect("16-bit tunnel ID");
    ch
}

/// A header from the peer with this Ns and Nr.
fn from_peer(ns: u16, nr: u16) -> ControlHeader {
    ControlHeader {
        version: Version::V2,
        tunnel_id: 1,
        session_id: 0,
        ns,
        nr,
    }
}

fn parse(d: &[u8]) -> (ControlHeader, Vec<u8>) {
    let (h, avps) = ControlHeader::parse(d).expect("the channel emits valid headers");
    (h, avps.to_vec())
}

fn drain(ch: &mut Channel, now: Instant) -> Vec<(ControlHeader, Vec<u8>)> {
    std::iter::from_fn(|| ch.poll_transmit(now))
        .map(|d| parse(&d))
        .collect()
}

fn delivered(events: &[Event]) -> Vec<(u16, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { ns, avps, .. } => Some((*ns, avps.clone())),
            _ => None,
        })
        .collect()
}

fn acked(events: &[Event]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Acked { ns } => Some(*ns),
            _ => None,
        })
        .collect()
}

/// Drives a channel whose peer never answers; returns the transmission times and when (and
/// whether) it failed, in seconds after `t0`, with the events seen.
fn unanswered(ch: &mut Channel, t0: Instant) -> (Vec<Duration>, Vec<(Duration, Event)>) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut now = t0;
    for _ in 0..100 {
        while ch.poll_transmit(now).is_some() {
            sent.push(now - t0);
        }
        let Some(next) = ch.poll_timeout() else {
            break;
        };
        now = next;
        for e in ch.handle_timeout(now) {
            events.push((now - t0, e));
        }
    }
    (sent, events)
}

#[test]
fn seq_before_is_the_rfc_half_space() {
    assert!(seq_before(0, 1));
    assert!(seq_before(65535, 0));
    assert!(!seq_before(5, 5));
    assert!(!seq_before(1, 0));
    assert!(seq_before(0, 32768));
    assert!(!seq_before(0, 32769));
}

#[test]
fn duplicate_classification_follows_rfc_2661_example() {
    // RFC 2661 §5.8: last received 15 → 0..=15 and 32784..=65535 are "less than or equal".
    let t0 = Instant::now();
    let mut ch = v2();
    ch.reset_sequence(0, 16);
    for ns in [0, 15, 32784, 65535] {
        assert!(ch.handle_incoming(&from_peer(ns, 0), b"x", t0).is_empty());
    }
    assert_eq!(ch.stats().duplicates, 4);
    // 32783 is "greater", so beyond the window of 4, not a duplicate.
    assert!(ch
        .handle_incoming(&from_peer(32783, 0), b"x", t0)
        .is_empty());
    assert_eq!(ch.stats().out_of_window, 1);
    assert_eq!(ch.stats().duplicates, 4);
}

#[test]
fn first_message_carries_header_fields() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.send(0x1234, vec![1, 2, 3]).expect("queued");
    let out = drain(&mut ch, t0);
    assert_eq!(out.len(), 1);
    let (h, avps) = &out[0];
    assert_eq!(h.version, Version::V2);
    assert_eq!((h.tunnel_id, h.session_id, h.ns, h.nr), (7, 0x1234, 0, 0));
    assert_eq!(avps, &[1, 2, 3]);
    assert_eq!(ch.poll_timeout(), Some(t0 + SECOND));
    assert_eq!(ch.stats().sent, 1);
}

#[test]
fn backoff_1_2_4_8_8_then_failed() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.send(0, vec![0xaa]).expect("queued");
    let (sent, events) = unanswered(&mut ch, t0);
    let secs: Vec<u64> = sent.iter().map(Duration::as_secs).collect();
    // First transmission, then 5 retransmissions 1, 2, 4, 8, 8 s apart.
    assert_eq!(secs, [0, 1, 3, 7, 15, 23]);
    // The last retransmission gets its full (capped) timeout before the channel fails.
    assert_eq!(events, [(Duration::from_secs(31), Event::Failed)]);
    assert!(ch.is_failed());
    assert_eq!(ch.poll_timeout(), None);
    assert_eq!(ch.send(0, vec![1]), Err(ChannelError::Failed));
    assert!(ch.handle_incoming(&from_peer(0, 1), b"x", t0).is_empty());
    let s = ch.stats();
    assert_eq!((s.sent, s.retransmitted, s.timeouts), (1, 5, 1));
}

#[test]
fn hold_extends_before_failed() {
    let t0 = Instant::now();
    let mut ch = Channel::new(
        Version::V2,
        ReliableConfig {
            hold: Duration::from_secs(40),
            ..ReliableConfig::default()
        },
    );
    ch.send(0, vec![0xaa]).expect("queued");
    let (sent, events) = unanswered(&mut ch, t0);
    assert_eq!(sent.len(), 6, "no retransmission during the hold");
    // RFC 4951 §5.1: the 40 s started with the first timeout (1 s), so 10 s are left when
    // the retries run out at 31 s.
    assert_eq!(
        events,
        [
            (
                Duration::from_secs(31),
                Event::Holding {
                    hold: Duration::from_secs(10)
                }
            ),
            (Duration::from_secs(41), Event::Failed),
        ]
    );
}

#[test]
fn hold_set_later_and_ack_during_hold_revives() {
    let t0 = Instant::now();
    let mut ch = v2();
    // 60 s from the first timeout (1 s): 30 s left when the retries run out at 31 s.
    ch.set_hold(Duration::from_secs(60));
    ch.send(0, vec![0xaa]).expect("queued");
    let mut now = t0;
    let mut events = Vec::new();
    while !ch.is_holding() {
        drain(&mut ch, now);
        now = ch.poll_timeout().expect("retransmission pending");
        events.extend(ch.handle_timeout(now));
    }
    assert_eq!(
        events,
        [Event::Holding {
            hold: Duration::from_secs(30)
        }]
    );
    assert_eq!(ch.poll_timeout(), Some(now + Duration::from_secs(30)));
    assert!(ch.handle_timeout(now + Duration::from_secs(29)).is_empty());
    // The peer comes back: its ZLB acknowledges the message, the hold ends.
    let ev = ch.handle_incoming(&from_peer(0, 1), &[], now + Duration::from_secs(29));
    assert_eq!(ev, [Event::Acked { ns: 0 }]);
    assert!(!ch.is_holding() && !ch.is_failed());
    assert_eq!(ch.poll_timeout(), None);
    ch.send(0, vec![0xbb]).expect("alive");
    assert_eq!(drain(&mut ch, now + Duration::from_secs(29)).len(), 1);
}

#[test]
fn recovery_time_shorter_than_the_retries_adds_no_hold() {
    // RFC 4951 §5.1: the Recovery Time starts with the control channel timeout; 10 s from
    // the first timeout (1 s) have passed when the retries run out at 31 s.
    let t0 = Instant::now();
    let mut ch = Channel::new(
        Version::V2,
        ReliableConfig {
            hold: Duration::from_secs(10),
            ..ReliableConfig::default()
        },
    );
    ch.send(0, vec![0xaa]).expect("queued");
    let (sent, events) = unanswered(&mut ch, t0);
    assert_eq!(sent.len(), 6);
    assert_eq!(events, [(Duration::from_secs(31), Event::Failed)]);
}

#[test]
fn an_acknowledgement_restarts_the_recovery_time() {
    // A first message times out once and is then acknowledged: the timer stops (RFC 4951
    // §5.1). A second message's timeout starts it again, from its own first timeout.
    let t0 = Instant::now();
    let mut ch = Channel::new(
        Version::V2,
        ReliableConfig {
            hold: Duration::from_secs(40),
            ..ReliableConfig::default()
        },
    );
    ch.send(0, vec![0xaa]).expect("queued");
    drain(&mut ch, t0);
    let t1 = ch.poll_timeout().expect("retransmission pending");
    assert!(ch.handle_timeout(t1).is_empty());
    drain(&mut ch, t1);
    let t2 = t1 + Duration::from_millis(500);
    let ev = ch.handle_incoming(&from_peer(0, 1), &[], t2);
    assert_eq!(ev, [Event::Acked { ns: 0 }]);
    let t3 = t2 + Duration::from_secs(100);
    ch.send(0, vec![0xbb]).expect("alive");
    let (_, events) = unanswered(&mut ch, t3);
    // Timeouts of the second message at +1 s, ..., retries exhausted at +31 s; 40 s from
    // +1 s leaves 10 s. Without the restart the 40 s would have run out long before.
    assert_eq!(
        events,
        [
            (
                Duration::from_secs(31),
                Event::Holding {
                    hold: Duration::from_secs(10)
                }
            ),
            (Duration::from_secs(41), Event::Failed),
        ]
    );
}

#[test]
fn retransmission_carries_latest_nr() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.send(0, vec![1]).expect("queued");
    assert_eq!(drain(&mut ch, t0)[0].0.nr, 0);
    // The peer's message arrives without acknowledging ours.
    let ev = ch.handle_incoming(&from_peer(0, 0), &[9], ms(t0, 500));
    assert_eq!(delivered(&ev), [(0, vec![9])]);
    let zlb = drain(&mut ch, ms(t0, 600));
    assert_eq!(zlb.len(), 1);
    assert_eq!((zlb[0].0.ns, zlb[0].0.nr), (1, 1));
    assert!(ch.handle_timeout(t0 + SECOND).is_empty());
    let out = drain(&mut ch, t0 + SECOND);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0.ns, out[0].0.nr), (0, 1));
    assert_eq!(out[0].1, [1]);
    assert_eq!(ch.stats().retransmitted, 1);
    assert_eq!(ch.poll_timeout(), Some(t0 + 3 * SECOND));
}

#[test]
fn zlb_after_ack_delay() {
    let t0 = Instant::now();
    let mut ch = v2();
    let ev = ch.handle_incoming(&from_peer(0, 0), &[5, 5], t0);
    assert_eq!(delivered(&ev), [(0, vec![5, 5])]);
    assert_eq!(ch.idle_since(), Some(t0));
    assert!(ch.poll_transmit(t0).is_none());
    assert_eq!(ch.poll_timeout(), Some(ms(t0, 100)));
    assert!(ch.poll_transmit(ms(t0, 99)).is_none());
    let d = ch.poll_transmit(ms(t0, 100)).expect("ZLB due");
    assert_eq!(d.len(), ControlHeader::LEN);
    let (h, avps) = parse(&d);
    assert!(avps.is_empty());
    assert_eq!((h.tunnel_id, h.session_id, h.ns, h.nr), (7, 0, 0, 1));
    assert!(ch.poll_transmit(ms(t0, 200)).is_none());
    assert_eq!(ch.poll_timeout(), None);
    assert_eq!(ch.stats().zlbs_sent, 1);
    assert_eq!(ch.next_ns(), 0, "a ZLB takes no sequence slot");
}

#[test]
fn piggybacked_ack_suppresses_zlb() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.handle_incoming(&from_peer(0, 0), &[5], t0);
    ch.send(0, vec![6]).expect("queued");
    let out = drain(&mut ch, ms(t0, 50));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0.ns, out[0].0.nr), (0, 1));
    assert!(ch.poll_transmit(ms(t0, 200)).is_none());
    assert_eq!(ch.stats().zlbs_sent, 0);
    assert_eq!(ch.poll_timeout(), Some(ms(t0, 1050)));
}

#[test]
fn duplicates_are_reacked() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.handle_incoming(&from_peer(0, 0), &[1], t0);
    assert_eq!(drain(&mut ch, ms(t0, 100)).len(), 1);
    // Our ZLB was lost; the peer retransmits.
    let ev = ch.handle_incoming(&from_peer(0, 0), &[1], ms(t0, 1000));
    assert!(ev.is_empty(), "not delivered twice");
    assert_eq!(ch.stats().duplicates, 1);
    assert_eq!(ch.poll_timeout(), Some(ms(t0, 1100)));
    let out = drain(&mut ch, ms(t0, 1100));
    assert_eq!(out.len(), 1);
    assert!(out[0].1.is_empty());
    assert_eq!(out[0].0.nr, 1);
    assert_eq!(ch.stats().zlbs_sent, 2);
}

#[test]
fn out_of_order_held_and_out_of_window_discarded() {
    let t0 = Instant::now();
    let mut ch = v2(); // receive window 4: Ns 0..=3 acceptable
    assert!(ch.handle_incoming(&from_peer(4, 0), &[4], t0).is_empty());
    assert_eq!(ch.stats().out_of_window, 1);
    for ns in [3u16, 1, 2] {
        let n = u8::try_from(ns).expect("small");
        assert!(ch.handle_incoming(&from_peer(ns, 0), &[n], t0).is_empty());
    }
    // A duplicate of a held message is dropped too.
    assert!(ch.handle_incoming(&from_peer(2, 0), &[2], t0).is_empty());
    assert_eq!(ch.stats().duplicates, 1);
    let ev = ch.handle_incoming(&from_peer(0, 0), &[0], t0);
    assert_eq!(
        delivered(&ev),
        [(0, vec![0]), (1, vec![1]), (2, vec![2]), (3, vec![3])]
    );
    assert_eq!(ch.nr(), 4);
    // The window moved: 4 is acceptable now.
    let ev = ch.handle_incoming(&from_peer(4, 0), &[4], t0);
    assert_eq!(delivered(&ev), [(4, vec![4])]);
    assert_eq!(ch.stats().delivered, 5);
    let out = drain(&mut ch, ms(t0, 100));
    assert_eq!(out.len(), 1, "one ZLB acknowledges them all");
    assert_eq!(out[0].0.nr, 5);
}

#[test]
fn invalid_nr_is_discarded() {
    let t0 = Instant::now();
    let mut ch = v2();
    // Nothing sent: an Nr of 5 acknowledges messages that never existed.
    assert!(ch.handle_incoming(&from_peer(0, 5), &[1], t0).is_empty());
    assert_eq!(ch.stats().invalid_nr, 1);
    assert_eq!(ch.nr(), 0);
    assert_eq!(ch.idle_since(), None);
}

#[test]
fn slow_start_growth_and_collapse_on_timeout() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.set_peer_window(8);
    assert_eq!((ch.cwnd(), ch.ssthresh()), (1, 8));
    for i in 0..40u8 {
        ch.send(0, vec![i]).expect("queued");
    }
    // Slow start: 1, 2, 4, 8 per round trip, then capped by the peer's window.
    let mut nr = 0u16;
    for (round, expect) in [1usize, 2, 4, 8, 8].into_iter().enumerate() {
        let now = ms(t0, 10 * round as u64);
        let out = drain(&mut ch, now);
        assert_eq!(out.len(), expect, "round {round}");
        assert_eq!(ch.in_flight(), expect);
        nr = nr.wrapping_add(expect as u16);
        let ev = ch.handle_incoming(&from_peer(0, nr), &[], now);
        assert_eq!(acked(&ev).len(), expect);
    }
    assert_eq!(ch.cwnd(), 8);
    // Loss: the next 8 are never acknowledged.
    assert_eq!(drain(&mut ch, ms(t0, 50)).len(), 8);
    let deadline = ch.poll_timeout().expect("in flight");
    assert_eq!(deadline, ms(t0, 1050));
    assert!(ch.handle_timeout(deadline).is_empty());
    assert_eq!((ch.cwnd(), ch.ssthresh()), (1, 4));
    assert_eq!(ch.stats().timeouts, 1, "one collapse per window of losses");
    // All 8 are retransmitted; no new message while 8 are in flight with CWND 1.
    let out = drain(&mut ch, deadline);
    assert_eq!(out.len(), 8);
    assert_eq!(ch.stats().retransmitted, 8);
    assert_eq!(ch.queued(), 40 - 31);
    // They are acknowledged: slow start to SSTHRESH 4, then congestion avoidance.
    nr = nr.wrapping_add(8);
    ch.handle_incoming(&from_peer(0, nr), &[], deadline);
    // 1→2→3→4 (3 acks), then 5 acks at CWND 4: one increment.
    assert_eq!(ch.cwnd(), 5);
    assert_eq!(drain(&mut ch, deadline).len(), 5);
    // Congestion avoidance: CWND (5) acknowledgements to grow by one; one was counted
    // already (the 8th above).
    nr = nr.wrapping_add(3);
    ch.handle_incoming(&from_peer(0, nr), &[], deadline);
    assert_eq!(ch.cwnd(), 5);
    nr = nr.wrapping_add(1);
    ch.handle_incoming(&from_peer(0, nr), &[], deadline);
    assert_eq!(ch.cwnd(), 6);
}

#[test]
fn window_is_bounded_by_peer_rws() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.set_peer_window(2);
    for i in 0..10u8 {
        ch.send(0, vec![i]).expect("queued");
    }
    let mut nr = 0u16;
    for round in 0..6u64 {
        let out = drain(&mut ch, ms(t0, round));
        assert!(out.len() <= 2);
        nr = nr.wrapping_add(out.len() as u16);
        ch.handle_incoming(&from_peer(0, nr), &[], ms(t0, round));
    }
    assert_eq!(ch.cwnd(), 2);
    assert!(ch.is_quiescent());
}

#[test]
fn ns_wraps_across_65535() {
    let t0 = Instant::now();
    let mut a = v2();
    let mut b = v2();
    a.reset_sequence(65534, 0);
    b.reset_sequence(0, 65534);
    for i in 0..6u8 {
        a.send(0, vec![i]).expect("queued");
    }
    let mut ns_seen = Vec::new();
    let mut got = Vec::new();
    for round in 0..10u64 {
        let now = ms(t0, 200 * round);
        for (h, avps) in drain(&mut a, now) {
            ns_seen.push(h.ns);
            got.extend(b.handle_incoming(&h, &avps, now));
        }
        for (h, avps) in drain(&mut b, now) {
            a.handle_incoming(&h, &avps, now);
        }
    }
    assert_eq!(ns_seen, [65534, 65535, 0, 1, 2, 3]);
    let got = delivered(&got);
    let ns: Vec<u16> = got.iter().map(|d| d.0).collect();
    assert_eq!(ns, [65534, 65535, 0, 1, 2, 3]);
    assert!(a.is_quiescent());
    assert_eq!(a.next_ns(), 4);
    assert_eq!(b.nr(), 4);

    // Reordered across the wrap: 0 before 65535.
    let mut c = v2();
    c.reset_sequence(0, 65535);
    assert!(c.handle_incoming(&from_peer(0, 0), &[0], t0).is_empty());
    let ev = c.handle_incoming(&from_peer(65535, 0), &[0xff], t0);
    assert_eq!(delivered(&ev), [(65535, vec![0xff]), (0, vec![0])]);
    assert_eq!(c.nr(), 1);
}

#[test]
fn reset_sequence_flushes_and_renumbers() {
    let t0 = Instant::now();
    let mut ch = v2();
    for i in 0..3u8 {
        ch.send(0, vec![i]).expect("queued");
    }
    assert_eq!(drain(&mut ch, t0).len(), 1); // CWND 1
    ch.handle_incoming(&from_peer(1, 0), &[7], t0); // held out of order
    assert_eq!(ch.reset_sequence(100, 200), 1);
    assert_eq!(
        (ch.next_ns(), ch.nr(), ch.in_flight(), ch.queued()),
        (100, 200, 0, 2)
    );
    assert_eq!(ch.poll_timeout(), None, "no pending ack or retransmission");
    let out = drain(&mut ch, ms(t0, 10));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0.ns, out[0].0.nr), (100, 200));
    assert_eq!(out[0].1, [1], "the first queued message is renumbered");
    let ev = ch.handle_incoming(&from_peer(200, 101), &[8], ms(t0, 20));
    assert_eq!(acked(&ev), [100]);
    assert_eq!(delivered(&ev), [(200, vec![8])]);
}

#[test]
fn reset_sequence_revives_a_failed_channel() {
    let t0 = Instant::now();
    let mut ch = v2();
    ch.send(0, vec![1]).expect("queued");
    let (_, events) = unanswered(&mut ch, t0);
    assert_eq!(events.last().map(|e| &e.1), Some(&Event::Failed));
    ch.reset_sequence(3, 4);
    assert!(!ch.is_failed());
    ch.send(0, vec![2]).expect("alive again");
    let out = drain(&mut ch, t0);
    assert_eq!((out[0].0.ns, out[0].0.nr), (3, 4));
}

#[test]
fn v3_header_and_explicit_ack() {
    let t0 = Instant::now();
    let mut ch = Channel::new(Version::V3, ReliableConfig::default());
    ch.set_peer_tunnel_id(0xdead_beef).expect("32-bit CCID");
    ch.send(0x55, vec![0xab]).expect("queued");
    let out = drain(&mut ch, t0);
    let (h, _) = &out[0];
    assert_eq!(h.version, Version::V3);
    assert_eq!((h.tunnel_id, h.session_id, h.ns), (0xdead_beef, 0, 0));
    // Message Type AVP, M bit, length 8, vendor 0, type 0, value 20 (ACK).
    let ack = [0x80, 0x08, 0, 0, 0, 0, 0, 20];
    let peer = ControlHeader {
        version: Version::V3,
        tunnel_id: 1,
        session_id: 0,
        ns: 0,
        nr: 1,
    };
    let ev = ch.handle_incoming(&peer, &ack, t0);
    assert_eq!(ev, [Event::Acked { ns: 0 }]);
    assert_eq!(ch.nr(), 0, "an ACK takes no sequence slot");
    assert_eq!(ch.stats().acks_received, 1);
    assert_eq!(ch.poll_timeout(), None, "an ACK is not acknowledged");
    // In L2TPv2 type 20 means nothing special: it is a message like any other.
    let mut v2ch = v2();
    let ev = v2ch.handle_incoming(&from_peer(0, 0), &ack, t0);
    assert_eq!(delivered(&ev).len(), 1);
}

#[test]
fn refusals() {
    let mut ch = v2();
    assert_eq!(
        ch.set_peer_tunnel_id(0x1_0000),
        Err(ChannelError::TunnelIdTooLarge(0x1_0000))
    );
    assert_eq!(
        ch.send(0, vec![0; MAX_AVP_LEN + 1]),
        Err(ChannelError::TooLong {
            len: MAX_AVP_LEN + 1
        })
    );
    ch.send(0, vec![0; MAX_AVP_LEN]).expect("largest message");
    let d = ch.poll_transmit(Instant::now()).expect("sent");
    assert_eq!(d.len(), usize::from(u16::MAX));
    ch.set_peer_window(0);
    assert_eq!(ch.peer_window(), 1);
}
