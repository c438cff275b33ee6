//! Tunnel and session ID allocation.
//!
//! IDs are drawn at random from the node's CSPRNG ([`crate::random`]), in 16-bit (L2TPv2) and
//! 32-bit (L2TPv3) spaces alike: an ID a blind attacker could guess would let it inject into a
//! tunnel or session whose peer address it spoofs (RFC 2661 §5.1.1 and §4.4.6 leave the choice
//! to us). Recently freed IDs are not reused soon (a late message for a closed session must not
//! hit its successor): a freed ID waits in a quarantine queue of [`QUARANTINE`] entries before
//! it can be chosen again.
//!
//! Cost: [`DRAWS`] random draws, O(1) while a fair share of the space is free; when they all
//! miss (the space nearly full), the first free ID after a random point, a walk bounded by the
//! number of IDs taken (never by the size of a 32-bit space); then the ID freed longest ago.

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
}

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
        }
    }

    fn free_now(&self, id: u32) -> bool {
        id != 0 && id <= self.max && !self.in_use.contains(&id) && !self.quarantined.contains(&id)
    }

    fn take(&mut self, id: u32) -> Option<u32> {
        self.in_use.insert(id);
        Some(id)
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
        // Nearly full: the first free ID after a random point. Any `taken + 1` consecutive
        // IDs hold a free one when there is one, so the walk is bounded by the IDs taken.
        let taken = self.in_use.len() + self.quarantined.len();
        let steps = u32::try_from(taken).map_or(limit, |t| t.saturating_add(1).min(limit));
        let mut id = draw(rng, limit);
        for _ in 0..steps {
            if self.free_now(id) {
                return self.take(id);
            }
            id = if id >= limit { 1 } else { id + 1 };
        }
        // Every free ID is quarantined: take the one freed longest ago rather than fail.
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
                self.in_use.insert(id);
                return Some(id);
            }
        }
        self.alloc(rng)
    }

    /// Marks an ID as used (when the caller chose it).
    pub fn reserve(&mut self, id: u32) -> bool {
        self.free_now(id) && self.in_use.insert(id)
    }

    /// Frees an ID; it is not handed out again before [`QUARANTINE`] other IDs were freed.
    pub fn free(&mut self, id: u32) {
        if self.in_use.remove(&id) {
            self.quarantine.push_back(id);
            self.quarantined.insert(id);
            if self.quarantine.len() > QUARANTINE {
                if let Some(old) = self.quarantine.pop_front() {
                    self.quarantined.remove(&old);
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
}
