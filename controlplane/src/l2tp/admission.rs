//! What keeps the control plane bounded under a flood of SCCRQs from anywhere: the tunnel
//! counts kept as counters (no scan per SCCRQ), the half-open control connections (SCCRQ
//! answered, SCCCN not yet; RFC 2661 §7.2 wait-ctl-conn) in their own table with a total and a
//! per-source limit and a deadline, the peers the tunnels talk to (so the sender maps of
//! [`crate::node::Node`] keep only those), a per-source token bucket for new tunnels in a table
//! of bounded size, and rate-limited log lines for events a remote sender can repeat at will.
//!
//! A spoofed SCCRQ costs at most one datagram back (our SCCRP, or a StopCCN when refused): the
//! registry does not retransmit toward a peer that has acknowledged nothing (a retransmitted
//! SCCRQ gets the SCCRP again, one for one), and drops the half-open tunnel silently when its
//! deadline passes or when the table is full and it is the oldest unverified one.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Peer, TunnelId};

/// What the registry tells the admission table about one tunnel after each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    /// Not closing or finished, and not half-open: counts towards `max_tunnels`.
    pub open: bool,
    /// Responder waiting for the SCCCN (idle or wait-ctl-conn).
    pub half_open: bool,
    /// Half-open and our SCCRP not acknowledged: the peer has shown nothing yet.
    pub unverified: bool,
    /// Initiator waiting for the SCCRP (RFC 2661 §4.4.3 tie breaker candidates).
    pub waiting_reply: bool,
    /// Who it talks to.
    pub peer: Peer,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    class: Class,
    /// When it became half-open.
    since: Option<Instant>,
    /// SCCRPs sent again in answer to retransmitted SCCRQs while unverified.
    answers: u8,
}

/// Counters kept per tunnel class, the half-open table and the peers in use.
#[derive(Default)]
pub(crate) struct Admission {
    tracked: HashMap<TunnelId, Tracked>,
    open: usize,
    half_open: usize,
    waiting_reply: usize,
    half_open_by_source: HashMap<IpAddr, usize>,
    /// Half-open tunnels, oldest first.
    half_open_order: BTreeSet<(Instant, TunnelId)>,
    peers: HashMap<Peer, usize>,
    /// Peers whose last tunnel went away since [`Admission::take_gone`] (bounded: dropped
    /// when nobody takes them; the sender maps then prune by themselves).
    gone: Vec<Peer>,
}

/// Peers kept in `gone` at most.
const MAX_GONE: usize = 4096;

fn bump<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: K, up: bool) {
    if up {
        *m.entry(k).or_default() += 1;
    } else if let Some(n) = m.get_mut(&k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(&k);
        }
    }
}

impl Admission {
    /// Records tunnel `id`'s class (after any change to it).
    pub fn update(&mut self, id: TunnelId, class: Class, now: Instant) {
        let old = self.tracked.get(&id).copied();
        if old.map(|o| o.class) == Some(class) {
            return;
        }
        self.account(id, old, false);
        let since = match old.and_then(|o| o.since) {
            Some(s) if class.half_open => Some(s),
            _ if class.half_open => Some(now),
            _ => None,
        };
        let t = Tracked {
            class,
            since,
            answers: old.map_or(0, |o| o.answers),
        };
        self.tracked.insert(id, t);
        self.account(id, Some(t), true);
    }

    /// Tunnel `id` is gone.
    pub fn forget(&mut self, id: TunnelId) {
        let old = self.tracked.remove(&id);
        self.account(id, old, false);
    }

    fn account(&mut self, id: TunnelId, t: Option<Tracked>, up: bool) {
        let Some(t) = t else { return };
        let n = |c: &mut usize, yes: bool| {
            if yes {
                *c = if up { *c + 1 } else { c.saturating_sub(1) };
            }
        };
        n(&mut self.open, t.class.open);
        n(&mut self.half_open, t.class.half_open);
        n(&mut self.waiting_reply, t.class.waiting_reply);
        bump(&mut self.peers, t.class.peer, up);
        if !up && !self.peers.contains_key(&t.class.peer) {
            if self.gone.len() >= MAX_GONE {
                self.gone.clear();
            }
            self.gone.push(t.class.peer);
        }
        if t.class.half_open {
            bump(&mut self.half_open_by_source, t.class.peer.addr.ip(), up);
            if let Some(s) = t.since {
                if up {
                    self.half_open_order.insert((s, id));
                } else {
                    self.half_open_order.remove(&(s, id));
                }
            }
        }
    }

    /// Shrinks the maps once mostly empty; true when something was shrunk.
    pub fn compact(&mut self) -> bool {
        let mut shrunk = false;
        if self.tracked.capacity() > 4 * self.tracked.len() + 256 {
            self.tracked.shrink_to_fit();
            shrunk = true;
        }
        if self.peers.capacity() > 4 * self.peers.len() + 256 {
            self.peers.shrink_to_fit();
            shrunk = true;
        }
        if self.half_open_by_source.capacity() > 4 * self.half_open_by_source.len() + 256 {
            self.half_open_by_source.shrink_to_fit();
            shrunk = true;
        }
        shrunk
    }

    /// Tunnels counted towards `max_tunnels` (neither half-open nor closing).
    pub fn open(&self) -> usize {
        self.open
    }

    /// Half-open tunnels.
    pub fn half_open(&self) -> usize {
        self.half_open
    }

    /// Half-open tunnels from `ip`.
    pub fn half_open_from(&self, ip: IpAddr) -> usize {
        self.half_open_by_source.get(&ip).copied().unwrap_or(0)
    }

    /// Initiator tunnels waiting for an SCCRP.
    pub fn waiting_reply(&self) -> usize {
        self.waiting_reply
    }

    /// Whether some tunnel talks to `peer`.
    pub fn has_peer(&self, peer: &Peer) -> bool {
        self.peers.contains_key(peer)
    }

    /// Takes the peers whose last tunnel went away (some may have a tunnel again: check).
    pub fn take_gone(&mut self) -> Vec<Peer> {
        std::mem::take(&mut self.gone)
    }

    /// Distinct peers of all tunnels.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// When half-open tunnel `id` is dropped; `None` when it is not half-open.
    pub fn half_open_deadline(&self, id: TunnelId, timeout: Duration) -> Option<Instant> {
        let s = self.tracked.get(&id)?.since?;
        Some(s.checked_add(timeout).unwrap_or(s))
    }

    /// Whether tunnel `id` is half-open (a responder waiting for the SCCCN).
    pub fn is_half_open(&self, id: TunnelId) -> bool {
        self.tracked.get(&id).is_some_and(|t| t.class.half_open)
    }

    /// Whether `id` is half-open with a peer that has acknowledged nothing.
    pub fn is_unverified(&self, id: TunnelId) -> bool {
        self.tracked.get(&id).is_some_and(|t| t.class.unverified)
    }

    /// The oldest half-open tunnel whose peer has acknowledged nothing.
    pub fn oldest_unverified(&self) -> Option<TunnelId> {
        self.half_open_order
            .iter()
            .map(|&(_, id)| id)
            .find(|id| self.is_unverified(*id))
    }

    /// Counts one more SCCRP sent again to unverified `id`; false once `max` were.
    pub fn may_answer_again(&mut self, id: TunnelId, max: u8) -> bool {
        match self.tracked.get_mut(&id) {
            Some(t) if t.class.unverified && t.answers < max => {
                t.answers += 1;
                true
            }
            _ => false,
        }
    }
}

/// A token bucket per source address, in a table of bounded size: two generations, the
/// current one and the one before; a source not seen for two generations is forgotten (an
/// approximation of least recently used, O(1) per SCCRQ). A forgotten source starts again
/// with a full bucket, so the table size bounds memory, not the rate from sources beyond it:
/// that is what the half-open limit is for.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    current: HashMap<IpAddr, Bucket>,
    previous: HashMap<IpAddr, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes a token for `ip`: false when its bucket (`per_sec`, depth `burst`) is empty.
    /// `per_sec` 0: always true, nothing kept.
    pub fn allow(
        &mut self,
        ip: IpAddr,
        per_sec: u32,
        burst: u32,
        sources: usize,
        now: Instant,
    ) -> bool {
        if per_sec == 0 {
            return true;
        }
        let burst = f64::from(burst.max(1));
        let mut b = self
            .current
            .remove(&ip)
            .or_else(|| self.previous.remove(&ip))
            .unwrap_or(Bucket {
                tokens: burst,
                at: now,
            });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * f64::from(per_sec)).min(burst);
        b.at = now;
        let ok = b.tokens >= 1.0;
        if ok {
            b.tokens -= 1.0;
        }
        if self.current.len() >= (sources / 2).max(1) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(ip, b);
        ok
    }

    /// Forgets the sources whose bucket is full again (they are as if never seen) and gives
    /// back the room; true when something was shrunk.
    pub fn compact(&mut self, per_sec: u32, burst: u32, now: Instant) -> bool {
        let before = self.len();
        let burst = f64::from(burst.max(1));
        let refilling = |_: &IpAddr, b: &mut Bucket| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * f64::from(per_sec)
                < burst
        };
        self.current.retain(refilling);
        self.previous.retain(refilling);
        let mut shrunk = self.len() < before;
        for m in [&mut self.current, &mut self.previous] {
            if m.capacity() > 4 * m.len() + 64 {
                m.shrink_to_fit();
                shrunk = true;
            }
        }
        shrunk
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// One log line per kind of repeated event and interval: the first at once, then a summary
/// with the count of those not logged. Remote senders can repeat these events at will; each
/// is counted in the registry's counters (metrics) whether it is logged or not.
#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    kinds: HashMap<&'static str, (Option<Instant>, u64)>,
}

/// How often a repeated event is logged at most.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

impl LogLimiter {
    /// Notes one `what` event from `peer`; logs it when the interval allows.
    pub fn note(&mut self, what: &'static str, peer: &Peer, now: Instant) {
        let e = self.kinds.entry(what).or_insert((None, 0));
        e.1 += 1;
        if e.0
            .is_some_and(|t| now.saturating_duration_since(t) < LOG_INTERVAL)
        {
            return;
        }
        let n = std::mem::take(&mut e.1);
        e.0 = Some(now);
        if n <= 1 {
            tracing::info!(peer = %peer.addr, "{what}");
        } else {
            tracing::warn!(
                last_peer = %peer.addr,
                count = n,
                interval_s = LOG_INTERVAL.as_secs(),
                "{what} (repeated; logged at most once per interval)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(a: [u8; 4]) -> Peer {
        Peer::udp(std::net::SocketAddr::from((a, 1701)))
    }

    fn class(p: Peer, half: bool) -> Class {
        Class {
            open: !half,
            half_open: half,
            unverified: half,
            waiting_reply: false,
            peer: p,
        }
    }

    #[test]
    fn counts_follow_updates_and_forget() {
        let mut a = Admission::default();
        let now = Instant::now();
        let p = peer([192, 0, 2, 1]);
        a.update(1, class(p, true), now);
        a.update(2, class(p, true), now + Duration::from_secs(1));
        assert_eq!(
            (a.open(), a.half_open(), a.half_open_from(p.addr.ip())),
            (0, 2, 2)
        );
        assert_eq!(a.oldest_unverified(), Some(1));
        a.update(1, class(p, false), now);
        assert_eq!((a.open(), a.half_open()), (1, 1));
        assert_eq!(a.oldest_unverified(), Some(2));
        a.forget(2);
        a.forget(1);
        assert_eq!((a.open(), a.half_open(), a.peers()), (0, 0, 0));
        assert!(a.half_open_by_source.is_empty() && a.half_open_order.is_empty());
    }

    #[test]
    fn rate_limiter_refuses_beyond_the_burst_and_stays_bounded() {
        let mut r = RateLimiter::default();
        let now = Instant::now();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let allowed = (0..10).filter(|_| r.allow(ip, 1, 3, 16, now)).count();
        assert_eq!(allowed, 3);
        assert!(r.allow(ip, 1, 3, 16, now + Duration::from_secs(1)));
        for i in 0..1000u32 {
            r.allow(IpAddr::from(i.to_be_bytes()), 1, 3, 16, now);
        }
        assert!(r.len() <= 16, "{}", r.len());
    }
}
