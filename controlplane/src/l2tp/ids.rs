//! Tunnel and session ID allocation.
//!
//! IDs are drawn at random from the node's CSPRNG ([`crate::random`]), in 16-bit (L2TPv2) and
//! 32-bit (L2TPv3) spaces alike: an ID a blind attacker could guess would let it inject into a
//! tunnel or session whose peer address it spoofs (RFC 2661 §4.4.3 and §4.4.4 leave the choice
//! to us). Recently freed IDs are not reused soon (a late message for a closed session must not
//! hit its successor): a freed ID waits in a quarantine queue of [`QUARANTINE`] entries before
//! it can be chosen again.
//!
//! Cost: [`DRAWS`] random draws, O(1) while a fair share of the space is free; when they all
//! miss (the space nearly full), the first free ID after a random point: in the 16-bit range a
//! scan of a bitmap of the IDs taken (1,024 words at most; the 8 KiB bitmap is made the first
//! time it is needed), above it a walk bounded by the number of IDs taken (never by the size of
//! a 32-bit space); then the ID freed longest ago.

use std::collections::{HashSet, VecDeque};

use crate::random::Random;

/// How many freed IDs wait before reuse.
pub const QUARANTINE: usize = 4096;

/// Random draws for an ID the fast path prefers before taking any free one: with the slot
/// table at most half full, 64 misses in a row happen once in 2^64.
pub const PREFERRED_DRAWS: usize = 64;

/// Random draws before the walk: with half the space taken, all miss once in 65,536.
pub const DRAWS: usize = 16;

/// Allocates non-zero IDs up to `max`, avoiding IDs in use and recently freed ones.
#[derive(Debug, Clone)]
pub struct IdAllocator {
    max: u32,
    in_use: HashSet<u32>,
    quarantine: VecDeque<u32>,
    quarantined: HashSet<u32>,
    /// IDs `0..=65535` in use or quarantined, one bit each, once a walk needed it.
    low: Option<Box<[u64; LOW_WORDS]>>,
}

/// Words of the bitmap of the 16-bit range.
const LOW_WORDS: usize = 1 << 10;

/// A uniform draw in `1..=limit` (the modulo bias is at most 1 in 65,536 for a 16-bit space).
fn draw(rng: &mut Random, limit: u32) -> u32 {
    rng.u32() % limit + 1
}

impl IdAllocator {
    /// An allocator of IDs in `1..=max` (`u16::MAX` for L2TPv2, `u32::MAX` for L2TPv3).
    pub fn new(max: u32) -> Self {
        IdAllocator {
            max: max.max(1),
            in_use: HashSet::new(),
            quarantine: VecDeque::new(),
            quarantined: HashSet::new(),
            low: None,
        }
    }

    fn mark(&mut self, id: u32, taken: bool) {
        if let (Some(low), Ok(i)) = (self.low.as_mut(), u16::try_from(id)) {
            let (w, b) = (usize::from(i) / 64, u32::from(i) % 64);
            if taken {
                low[w] |= 1 << b;
            } else {
                low[w] &= !(1 << b);
            }
        }
    }

    /// The first ID in `1..=limit` (`limit` ≤ 65535) neither in use nor quarantined, from
    /// `start` on, wrapping: a word-by-word scan of the bitmap (made now if needed).
    fn scan_low(&mut self, start: u32, limit: u32) -> Option<u32> {
        let low = self.low.get_or_insert_with(|| {
            let mut b = Box::new([0u64; LOW_WORDS]);
            for &id in self.in_use.iter().chain(self.quarantined.iter()) {
                if let Ok(i) = u16::try_from(id) {
                    b[usize::from(i) / 64] |= 1 << (u32::from(i) % 64);
                }
            }
            b[0] |= 1; // ID 0 is never handed out.
            b
        });
        let first_free_from = |from: u32, to: u32| -> Option<u32> {
            // The lowest clear bit in from..=to.
            let mut w = from / 64;
            let mut mask = !0u64 << (from % 64);
            while w <= to / 64 {
                let free = !low[w as usize] & mask;
                if free != 0 {
                    let id = w * 64 + free.trailing_zeros();
                    return (id <= to).then_some(id);
                }
                w += 1;
                mask = !0;
            }
            None
        };
        first_free_from(start, limit).or_else(|| first_free_from(1, start.min(limit)))
    }

    fn take(&mut self, id: u32) -> Option<u32> {
        self.in_use.insert(id);
        self.mark(id, true);
        Some(id)
    }

    fn free_now(&self, id: u32) -> bool {
        id != 0 && id <= self.max && !self.in_use.contains(&id) && !self.quarantined.contains(&id)
    }

    /// Allocates a random ID within `1..=limit` (limit capped at the allocator's max), or
    /// `None` when none is free.
    pub fn alloc_below(&mut self, limit: u32, rng: &mut Random) -> Option<u32> {
        let limit = limit.min(self.max);
        for _ in 0..DRAWS {
            let id = draw(rng, limit);
            if self.free_now(id) {
                return self.take(id);
            }
        }
        // Nearly full: the first free ID after a random point.
        if limit <= u32::from(u16::MAX) {
            let start = draw(rng, limit);
            if let Some(id) = self.scan_low(start, limit) {
                return self.take(id);
            }
            return self.oldest_quarantined(limit);
        }
        // Any `taken + 1` consecutive IDs hold a free one when there is one, so the walk is
        // bounded by the IDs taken.
        let taken = self.in_use.len() + self.quarantined.len();
        let steps = u32::try_from(taken).map_or(limit, |t| t.saturating_add(1).min(limit));
        let mut id = draw(rng, limit);
        for _ in 0..steps {
            if self.free_now(id) {
                return self.take(id);
            }
            id = if id >= limit { 1 } else { id + 1 };
        }
        self.oldest_quarantined(limit)
    }

    /// Every free ID is quarantined: the one freed longest ago rather than none.
    fn oldest_quarantined(&mut self, limit: u32) -> Option<u32> {
        let pos = self.quarantine.iter().position(|&q| q <= limit)?;
        let id = self.quarantine.remove(pos)?;
        self.quarantined.remove(&id);
        self.take(id)
    }

    /// Allocates an ID in the full range.
    pub fn alloc(&mut self, rng: &mut Random) -> Option<u32> {
        self.alloc_below(self.max, rng)
    }

    /// Allocates a random free ID for which `preferred` holds (the fast path's
    /// [`l2xdp_dataplane_api::IdHint`]), after [`PREFERRED_DRAWS`] draws any free one
    /// ([`Self::alloc`]).
    pub fn alloc_preferring(
        &mut self,
        rng: &mut Random,
        preferred: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        for _ in 0..PREFERRED_DRAWS {
            let id = draw(rng, self.max);
            if self.free_now(id) && preferred(id) {
                return self.take(id);
            }
        }
        self.alloc(rng)
    }

    /// Marks an ID as used (when the caller chose it).
    pub fn reserve(&mut self, id: u32) -> bool {
        self.free_now(id) && self.take(id).is_some()
    }

    /// Frees an ID; it is not handed out again before [`QUARANTINE`] other IDs were freed.
    pub fn free(&mut self, id: u32) {
        if self.in_use.remove(&id) {
            self.quarantine.push_back(id);
            self.quarantined.insert(id);
            if self.quarantine.len() > QUARANTINE {
                if let Some(old) = self.quarantine.pop_front() {
                    self.quarantined.remove(&old);
                    self.mark(old, false);
                }
            }
        }
    }

    /// IDs in use.
    pub fn len(&self) -> usize {
        self.in_use.len()
    }

    /// Whether no ID is in use.
    pub fn is_empty(&self) -> bool {
        self.in_use.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferred_ids_are_drawn_when_there_are_some() {
        let mut rng = Random::seeded(3);
        let mut a = IdAllocator::new(u32::from(u16::MAX));
        // Half the ids are preferred (a slot table half full): every draw lands on one.
        let mut got = HashSet::new();
        for _ in 0..500 {
            let id = a.alloc_preferring(&mut rng, |id| id % 2 == 1).expect("id");
            assert_eq!(id % 2, 1, "{id}");
            assert!(got.insert(id));
        }
        // None preferred: any free id still comes.
        let id = a.alloc_preferring(&mut rng, |_| false).expect("id");
        assert!(!got.contains(&id));
    }

    #[test]
    fn freed_ids_are_not_reused_soon() {
        let mut rng = Random::seeded(1);
        let mut a = IdAllocator::new(u32::from(u16::MAX));
        let first = a.alloc(&mut rng).expect("id");
        a.free(first);
        for _ in 0..1000 {
            let id = a.alloc(&mut rng).expect("id");
            assert_ne!(id, first);
            assert_ne!(id, 0);
            a.free(id);
        }
    }

    #[test]
    fn small_space_fills_up_then_fails() {
        let mut rng = Random::seeded(2);
        let mut a = IdAllocator::new(8);
        let mut got: Vec<u32> = (0..8).map(|_| a.alloc(&mut rng).expect("id")).collect();
        got.sort_unstable();
        assert_eq!(got, (1..=8).collect::<Vec<_>>());
        assert_eq!(a.alloc(&mut rng), None);
        a.free(3);
        assert_eq!(a.alloc(&mut rng), Some(3));
    }

    #[test]
    fn v3_ids_are_spread() {
        let mut rng = Random::seeded(3);
        let mut a = IdAllocator::new(u32::MAX);
        let ids: Vec<u32> = (0..100).map(|_| a.alloc(&mut rng).expect("id")).collect();
        assert!(ids.iter().any(|&i| i > 1 << 24));
        assert!(ids.iter().all(|&i| i != 0));
    }

    /// 16-bit IDs (v2 tunnels) are random draws, not a walk from a random start: a run of
    /// IDs says nothing about the next (on main, 99 of 99 successive IDs were +1).
    #[test]
    fn sixteen_bit_ids_are_not_sequential() {
        let mut rng = Random::from_os().expect("entropy");
        let mut a = IdAllocator::new(u32::MAX);
        let ids: Vec<u32> = (0..100)
            .map(|_| a.alloc_below(u32::from(u16::MAX), &mut rng).expect("id"))
            .collect();
        assert!(ids.iter().all(|&i| (1..=65535).contains(&i)));
        let steps = ids.windows(2).filter(|w| w[1] == w[0] + 1).count();
        // Each step is +1 with probability 1/65535.
        assert!(steps < 3, "{steps} sequential steps in {ids:?}");
    }

    /// A nearly full space still gives its last free IDs (the walk from a random point),
    /// then nothing; quarantined IDs come back last, the one freed longest ago first.
    #[test]
    fn nearly_full_space_gives_its_last_ids() {
        let mut rng = Random::seeded(9);
        let mut a = IdAllocator::new(u32::from(u16::MAX));
        for _ in 0..65_533 {
            a.alloc(&mut rng).expect("id");
        }
        let last: HashSet<u32> = (0..2).map(|_| a.alloc(&mut rng).expect("id")).collect();
        assert_eq!(last.len(), 2);
        assert_eq!(a.len(), 65_535);
        assert_eq!(a.alloc(&mut rng), None);
        for id in [10, 20, 30] {
            a.free(id);
        }
        assert_eq!(a.alloc(&mut rng), Some(10));
        assert_eq!(a.alloc(&mut rng), Some(20));
        // A 16-bit limit inside a 32-bit space: the walk is bounded by the IDs taken.
        let mut b = IdAllocator::new(u32::MAX);
        assert!(b.alloc_below(1, &mut rng).is_some());
        assert_eq!(b.alloc_below(1, &mut rng), None);
    }

    /// The bitmap scan agrees with the sets: under churn in a small range (always nearly
    /// full, so most allocations scan), every ID handed out is in range, not in use and not
    /// quarantined while a free one exists.
    #[test]
    fn scans_agree_with_the_sets_under_churn() {
        let mut rng = Random::seeded(11);
        let mut a = IdAllocator::new(u32::MAX);
        let mut held: Vec<u32> = Vec::new();
        for round in 0..20_000u32 {
            if held.len() < 290 || round % 3 == 0 {
                let free_before = (1..=300).filter(|&i| a.free_now(i)).count();
                match a.alloc_below(300, &mut rng) {
                    Some(id) => {
                        assert!((1..=300).contains(&id), "{id}");
                        assert!(!held.contains(&id), "{id} handed out twice");
                        held.push(id);
                    }
                    None => assert_eq!(held.len(), 300, "{free_before} were free"),
                }
            } else {
                let i = (rng.u32() as usize) % held.len();
                a.free(held.swap_remove(i));
            }
        }
        assert!(a.low.is_some(), "the scan ran");
    }
}
