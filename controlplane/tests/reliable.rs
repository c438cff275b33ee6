//! Two reliable channels over a simulated lossy, reordering, duplicating link: every message is
//! delivered exactly once and in order, both ways. Time is synthetic; nothing waits.

use std::time::{Duration, Instant};

use l2xdp_controlplane::reliable::{Channel, Event, ReliableConfig, Stats};
use l2xdp_wire::l2tp::header::{ControlHeader, Version};

/// xorshift64*: a small seeded generator, so each run is the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Link {
    rng: Rng,
    drop_percent: u64,
    /// (arrival, tie-break, destination side, datagram)
    in_transit: Vec<(Instant, u64, usize, Vec<u8>)>,
    counter: u64,
    dropped: u64,
    duplicated: u64,
}

impl Link {
    /// 10 ms plus up to 40 ms of jitter: packets sent close together often swap places.
    fn put(&mut self, now: Instant, to: usize, d: Vec<u8>) {
        if self.rng.chance(self.drop_percent) {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(3) { 2 } else { 1 };
        self.duplicated += copies - 1;
        for _ in 0..copies {
            let delay = Duration::from_millis(10 + self.rng.below(40));
            self.counter += 1;
            self.in_transit
                .push((now + delay, self.counter, to, d.clone()));
        }
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.in_transit.iter().map(|p| p.0).min()
    }

    fn take_due(&mut self, now: Instant) -> Vec<(usize, Vec<u8>)> {
        let mut due: Vec<_> = Vec::new();
        let mut keep = Vec::new();
        for p in self.in_transit.drain(..) {
            if p.0 <= now {
                due.push(p);
            } else {
                keep.push(p);
            }
        }
        self.in_transit = keep;
        due.sort_by_key(|p| (p.0, p.1));
        due.into_iter().map(|p| (p.2, p.3)).collect()
    }
}

struct Outcome {
    delivered: [Vec<Vec<u8>>; 2],
    stats: [Stats; 2],
    elapsed: Duration,
    dropped: u64,
    duplicated: u64,
}

/// Queues `n` messages each way (side 1 also answers every 5th message it gets, so acks ride
/// on traffic both ways) and runs until both channels are quiet.
fn simulate(version: Version, windows: [u16; 2], n: usize, seed: u64) -> Outcome {
    let config = |rws| ReliableConfig {
        receive_window: rws,
        // With 20 % loss each way a round trip fails 36 % of the time; 5 retries would give
        // up on some message in a few hundred. RFC 3931 §4.2 makes the count configurable.
        max_retries: 20,
        ..ReliableConfig::default()
    };
    let mut ch = [
        Channel::new(version, config(windows[0])),
        Channel::new(version, config(windows[1])),
    ];
    for (side, c) in ch.iter_mut().enumerate() {
        c.set_peer_tunnel_id(u32::try_from(2 - side).expect("small"))
            .expect("valid ID");
        c.set_peer_window(windows[1 - side]);
    }
    let mut link = Link {
        rng: Rng(seed),
        drop_percent: 20,
        in_transit: Vec::new(),
        counter: 0,
        dropped: 0,
        duplicated: 0,
    };
    for (side, c) in ch.iter_mut().enumerate() {
        for i in 0..n {
            c.send(0, format!("{side}:{i}").into_bytes())
                .expect("queued");
        }
    }
    let t0 = Instant::now();
    let mut now = t0;
    let mut delivered: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut replies = 0;
    for _ in 0..1_000_000 {
        for (side, c) in ch.iter_mut().enumerate() {
            while let Some(d) = c.poll_transmit(now) {
                link.put(now, 1 - side, d);
            }
        }
        let next = [
            link.next_arrival(),
            ch[0].poll_timeout(),
            ch[1].poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            break;
        };
        assert!(next >= now, "deadlines never go back in time");
        now = next;
        let mut events: Vec<(usize, Event)> = Vec::new();
        for (to, d) in link.take_due(now) {
            let (h, avps) = ControlHeader::parse(&d).expect("valid datagram");
            assert_eq!(h.tunnel_id, u32::try_from(to + 1).expect("small"));
            events.extend(
                ch[to]
                    .handle_incoming(&h, avps, now)
                    .into_iter()
                    .map(|e| (to, e)),
            );
        }
        for (side, c) in ch.iter_mut().enumerate() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                events.extend(c.handle_timeout(now).into_iter().map(|e| (side, e)));
            }
        }
        for (side, e) in events {
            match e {
                Event::Deliver { avps, .. } => {
                    if side == 1 && delivered[1].len().is_multiple_of(5) {
                        replies += 1;
                        ch[1]
                            .send(0, format!("1:reply{replies}").into_bytes())
                            .expect("queued");
                    }
                    delivered[side].push(avps);
                }
                Event::Acked { .. } => {}
                Event::Holding { .. } | Event::Failed => panic!("side {side}: {e:?}"),
            }
        }
    }
    for c in &ch {
        assert!(c.is_quiescent(), "everything acknowledged");
        assert_eq!(c.poll_timeout(), None);
    }
    Outcome {
        delivered,
        stats: [ch[0].stats(), ch[1].stats()],
        elapsed: now - t0,
        dropped: link.dropped,
        duplicated: link.duplicated,
    }
}

fn check(version: Version, windows: [u16; 2], seed: u64) {
    let n = 300;
    let out = simulate(version, windows, n, seed);
    // Side 0 gets side 1's messages with the replies interleaved where side 1 queued them;
    // per origin both streams must be complete and in order.
    let from1: Vec<String> = out.delivered[0]
        .iter()
        .map(|d| String::from_utf8(d.clone()).expect("ASCII"))
        .collect();
    let plain: Vec<&String> = from1.iter().filter(|s| !s.contains("reply")).collect();
    let expect1: Vec<String> = (0..n).map(|i| format!("1:{i}")).collect();
    assert_eq!(plain, expect1.iter().collect::<Vec<_>>());
    let replies: Vec<&String> = from1.iter().filter(|s| s.contains("reply")).collect();
    let expect_replies: Vec<String> = (1..=replies.len()).map(|i| format!("1:reply{i}")).collect();
    assert_eq!(replies, expect_replies.iter().collect::<Vec<_>>());
    assert_eq!(replies.len(), n.div_ceil(5));
    let expect0: Vec<Vec<u8>> = (0..n).map(|i| format!("0:{i}").into_bytes()).collect();
    assert_eq!(
        out.delivered[1], expect0,
        "side 1 got side 0's messages once, in order"
    );
    for (side, s) in out.stats.iter().enumerate() {
        println!(
            "{version:?} windows {windows:?} side {side}: sent {} retransmitted {} received {} \
             delivered {} reordered {} duplicates {} out-of-window {} ZLBs sent {} acks received {} \
             timeouts {}",
            s.sent,
            s.retransmitted,
            s.received,
            s.delivered,
            s.reordered,
            s.duplicates,
            s.out_of_window,
            s.zlbs_sent,
            s.acks_received,
            s.timeouts
        );
        assert!(
            s.retransmitted > 0,
            "a 20 % loss link forces retransmissions"
        );
        assert_eq!(s.invalid_nr, 0);
    }
    println!(
        "{version:?} windows {windows:?}: link dropped {} duplicated {}, simulated {:?}",
        out.dropped, out.duplicated, out.elapsed
    );
    assert!(out.stats[0].duplicates + out.stats[1].duplicates > 0);
    if windows.iter().all(|&w| w > 1) {
        assert!(
            out.stats[0].reordered + out.stats[1].reordered > 0,
            "the link reorders"
        );
    }
}

#[test]
fn lossy_link_v2_window_4() {
    check(Version::V2, [4, 4], 0x1234_5678_9abc_def1);
}

#[test]
fn lossy_link_v3_window_16_and_8() {
    check(Version::V3, [16, 8], 0x0bad_cafe_f00d_0001);
}

#[test]
fn lossy_link_lock_step_window_1() {
    check(Version::V2, [1, 1], 42);
}
