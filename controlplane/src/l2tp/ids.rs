//! Identifier allocation and randomness.
//!
//! Tunnel and session IDs are chosen so that recently freed IDs are not reused soon (a late
//! message for a closed session must not hit its successor): a freed ID waits in a quarantine
//! queue of [`QUARANTINE`] entries before it can be chosen again. 16-bit spaces are walked by a
//! cursor from a random start (least recently used first); 32-bit spaces are drawn at random.

use std::collections::{HashSet, VecDeque};

/// How many freed IDs wait before reuse.
pub const QUARANTINE: usize = 4096;

/// A source of random bytes. The default is the operating system's CSPRNG ([`OsRandom`]);
/// tests inject [`SeededRandom`].
pub trait RandomSource: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // No entropy source at all: nothing sensible to fall back to for secrets, but IDs
            // must still work. Mix the address of the buffer and a counter (not secure).
            tracing::error!("getrandom failed; random values are predictable");
            let mut s = SeededRandom::new(buf.as_ptr() as u64);
            s.fill(buf);
        }
    }
}

/// A deterministic generator (SplitMix64) for tests and simulations. Not cryptographically
/// secure: never use it for a real deployment's challenges, nonces or random vectors.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SeededRandom { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Random bytes of a fixed length.
pub fn random_array<const N: usize>(rng: &mut dyn RandomSource) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill(&mut b);
    b
}

/// A random u32.
pub fn random_u32(rng: &mut dyn RandomSource) -> u32 {
    u32::from_be_bytes(random_array(rng))
}

/// Random draws for an ID the fast path prefers before taking any free one: with the slot
/// table at most half full, 64 misses in a row happen once in 2^64.
pub const PREFERRED_DRAWS: usize = 64;

/// Allocates non-zero IDs up to `max`, avoiding IDs in use and recently freed ones.
#[derive(Debug, Clone)]
pub struct IdAllocator {
    max: u32,
    cursor: Option<u32>,
    in_use: HashSet<u32>,
    quarantine: VecDeque<u32>,
    quarantined: HashSet<u32>,
}

impl IdAllocator {
    /// An allocator of IDs in `1..=max` (`u16::MAX` for L2TPv2, `u32::MAX` for L2TPv3).
    pub fn new(max: u32) -> Self {
        IdAllocator {
            max: max.max(1),
            cursor: None,
            in_use: HashSet::new(),
            quarantine: VecDeque::new(),
            quarantined: HashSet::new(),
        }
    }

    fn free_now(&self, id: u32) -> bool {
        id != 0 && id <= self.max && !self.in_use.contains(&id) && !self.quarantined.contains(&id)
    }

    /// Allocates an ID within `1..=limit` (limit capped at the allocator's max), or `None`
    /// when none is free.
    pub fn alloc_below(&mut self, limit: u32, rng: &mut dyn RandomSource) -> Option<u32> {
        let limit = limit.min(self.max);
        if limit > u32::from(u16::MAX) {
            // Large space: random draws; collisions are rare.
            for _ in 0..64 {
                let id = random_u32(rng) % limit + 1;
                if self.free_now(id) {
                    self.in_use.insert(id);
                    return Some(id);
                }
            }
        }
        // Small space (or unlucky draws): walk from the cursor.
        let start = match self.cursor {
            Some(c) if c <= limit => c,
            _ => random_u32(rng) % limit + 1,
        };
        let mut id = start;
        for pass in 0..2 {
            for _ in 0..limit {
                id = if id >= limit { 1 } else { id + 1 };
                let ok = if pass == 0 {
                    self.free_now(id)
                } else {
                    // Second pass: take a quarantined ID rather than fail.
                    id != 0 && !self.in_use.contains(&id)
                };
                if ok {
                    if pass == 1 && self.quarantined.remove(&id) {
                        self.quarantine.retain(|q| *q != id);
                    }
                    self.in_use.insert(id);
                    self.cursor = Some(id);
                    return Some(id);
                }
            }
        }
        None
    }

    /// Allocates an ID in the full range.
    pub fn alloc(&mut self, rng: &mut dyn RandomSource) -> Option<u32> {
        self.alloc_below(self.max, rng)
    }

    /// Allocates a random free ID for which `preferred` holds (the fast path's
    /// [`l2xdp_dataplane_api::IdHint`]), after [`PREFERRED_DRAWS`] draws any free one
    /// ([`Self::alloc`]).
    pub fn alloc_preferring(
        &mut self,
        rng: &mut dyn RandomSource,
        preferred: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        for _ in 0..PREFERRED_DRAWS {
            let id = random_u32(rng) % self.max + 1;
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
        let mut rng = SeededRandom::new(3);
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
        let mut rng = SeededRandom::new(1);
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
        let mut rng = SeededRandom::new(2);
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
        let mut rng = SeededRandom::new(3);
        let mut a = IdAllocator::new(u32::MAX);
        let ids: Vec<u32> = (0..100).map(|_| a.alloc(&mut rng).expect("id")).collect();
        assert!(ids.iter().any(|&i| i > 1 << 24));
        assert!(ids.iter().all(|&i| i != 0));
    }
}
