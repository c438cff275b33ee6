//! The control plane's one source of values an attacker must not guess: CHAP Challenges (RFC 1994
//! §2.3: "each challenge value SHOULD be unique and unpredictable"), LCP Magic-Numbers (RFC 1661
//! §6.4), IPv6CP Interface-Identifiers (RFC 5072 §4.1), L2TP Random Vectors (RFC 2661 §4.3), v2
//! tunnel Challenges (RFC 2661 §5.1.1), v3 Control Message Authentication Nonces (RFC 3931 §4.3,
//! §5.4.1), RFC 4951 tie breakers, and tunnel and session IDs (RFC 2661 §4.4.3 and §4.4.4 leave
//! them to us; a guessable one lets a blind attacker inject into a tunnel or session).
//!
//! In production [`Random::from_os`] keys a ChaCha20 generator (the `chacha20` crate, a
//! CSPRNG) with 256 bits from the operating system (`getrandom(2)`). Not getting them is an
//! [`EntropyError`] that stops start-up: there is no predictable fallback. Once keyed, drawing
//! never fails, so no protocol path has an entropy failure to handle. One generator serves a
//! whole node: the registry and every PPP link hold a handle on it ([`Random::fork`]).
//!
//! Tests and simulations get a reproducible SplitMix64 sequence from `Random::seeded`, which
//! exists only under `cfg(test)` or the `sim` feature: production code cannot pick it.

use std::sync::{Arc, Mutex, PoisonError};

use chacha20::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

/// The operating system gave no entropy to key the generator with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no entropy from the operating system to key the random generator: {reason}")]
pub struct EntropyError {
    /// What the entropy source said.
    pub reason: String,
}

/// The operating system's entropy (`getrandom(2)`, or `/dev/urandom` where the call is
/// missing), for [`Random::from_entropy`].
pub fn os_entropy(key: &mut [u8]) -> Result<(), String> {
    getrandom::fill(key).map_err(|e| e.to_string())
}

/// A handle on a random generator (see the module documentation). A clone of a production
/// handle draws from the same generator; a clone of a seeded one repeats its sequence (a trial
/// copy of a state that replaces the original): [`Random::fork`] gives an independent one.
#[derive(Clone)]
pub struct Random(Source);

#[derive(Clone)]
enum Source {
    /// ChaCha20 keyed from the OS, shared by every handle forked from it.
    Csprng(Arc<Mutex<ChaCha20Rng>>),
    /// Reproducible and predictable: tests and simulations only.
    #[cfg(any(test, feature = "sim"))]
    Seeded(SeededRandom),
}

impl std::fmt::Debug for Random {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the state.
        match self.0 {
            Source::Csprng(_) => f.write_str("Random(csprng)"),
            #[cfg(any(test, feature = "sim"))]
            Source::Seeded(_) => f.write_str("Random(seeded)"),
        }
    }
}

impl Random {
    /// The production generator, keyed from `getrandom(2)` ([`os_entropy`]).
    pub fn from_os() -> Result<Random, EntropyError> {
        Self::from_entropy(os_entropy)
    }

    /// A generator keyed from `entropy`, which fills the 32-byte key or says why it cannot
    /// ([`Random::from_os`] passes the OS; tests inject a failing source). A key of all zeros
    /// (a source that "succeeded" without writing) is refused too.
    pub fn from_entropy(
        entropy: impl FnOnce(&mut [u8]) -> Result<(), String>,
    ) -> Result<Random, EntropyError> {
        let mut key = [0u8; 32];
        entropy(&mut key).map_err(|reason| EntropyError { reason })?;
        if key == [0u8; 32] {
            return Err(EntropyError {
                reason: "the entropy source returned 32 zero bytes".into(),
            });
        }
        let rng = ChaCha20Rng::from_seed(key);
        key.fill(0);
        Ok(Random(Source::Csprng(Arc::new(Mutex::new(rng)))))
    }

    /// A reproducible, predictable generator (SplitMix64) for tests and simulations.
    #[cfg(any(test, feature = "sim"))]
    pub fn seeded(seed: u64) -> Random {
        Random(Source::Seeded(SeededRandom(seed)))
    }

    /// A handle for a component (a PPP link, a sub-protocol): the same generator in
    /// production; for a seeded one, an independent generator seeded from this one, so that
    /// each component's sequence is reproducible on its own.
    pub fn fork(&mut self) -> Random {
        match &mut self.0 {
            Source::Csprng(g) => Random(Source::Csprng(g.clone())),
            #[cfg(any(test, feature = "sim"))]
            Source::Seeded(s) => Random(Source::Seeded(SeededRandom(s.next_u64()))),
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        match &mut self.0 {
            Source::Csprng(g) => g
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fill_bytes(buf),
            #[cfg(any(test, feature = "sim"))]
            Source::Seeded(s) => s.fill(buf),
        }
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    /// `N` random bytes.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    /// 32 random bits.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// A random non-zero u32 (a Magic-Number, RFC 1661 §6.4).
    pub fn nonzero_u32(&mut self) -> u32 {
        loop {
            let v = self.u32();
            if v != 0 {
                return v;
            }
        }
    }

    /// A random non-zero u64 (an Interface-Identifier, RFC 5072 §4.1).
    pub fn nonzero_u64(&mut self) -> u64 {
        loop {
            let v = self.next_u64();
            if v != 0 {
                return v;
            }
        }
    }
}

/// SplitMix64. Not cryptographically secure (one output gives away the state): tests and
/// simulations only.
#[cfg(any(test, feature = "sim"))]
#[derive(Debug, Clone)]
struct SeededRandom(u64);

#[cfg(any(test, feature = "sim"))]
impl SeededRandom {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Each 8 bytes are one output, big-endian (a shorter tail takes the first bytes).
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_entropy_source_is_an_error_not_a_fallback() {
        let e = Random::from_entropy(|_| Err("ENOSYS".into())).expect_err("fails");
        assert_eq!(e.reason, "ENOSYS");
        assert!(e.to_string().contains("no entropy"), "{e}");
        // A source that claims success without writing anything.
        let z = Random::from_entropy(|_| Ok(())).expect_err("all zeros refused");
        assert!(z.reason.contains("zero"), "{z}");
    }

    #[test]
    fn the_os_keys_distinct_generators_and_forks_share_one() {
        let mut a = Random::from_os().expect("entropy");
        let mut b = Random::from_os().expect("entropy");
        assert_ne!(a.array::<32>(), b.array::<32>());
        // A fork draws from the same stream: the two never repeat each other's values.
        let mut f = a.fork();
        let x: [u8; 16] = a.array();
        let y: [u8; 16] = f.array();
        assert_ne!(x, y);
        assert_eq!(format!("{a:?}"), "Random(csprng)");
    }

    /// The seeded generator is the SplitMix64 the tests' golden transcripts were made with:
    /// the reference outputs of seed 0.
    #[test]
    fn seeded_is_splitmix64() {
        let mut r = Random::seeded(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut f = Random::seeded(0).fork();
        let mut g = Random::seeded(0xe220_a839_7b1d_cdaf);
        assert_eq!(f.next_u64(), g.next_u64());
    }
}
