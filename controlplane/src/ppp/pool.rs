//! IPv4 address pools for IPCP (RFC 1332 §3.3: the LNS tells the subscriber its address with a
//! Configure-Nak).
//!
//! A pool is a list of ranges (`10.0.0.0/24` or `10.0.0.10-10.0.0.99`) and a bitmap of the
//! addresses in use: allocation is next-fit (so that a released address is not handed out again
//! at once), no address is ever leased twice, and exhaustion is reported as `None`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The largest pool: 2^24 addresses (a 2 MiB bitmap).
pub const MAX_POOL_SIZE: u64 = 1 << 24;

/// An inclusive range of IPv4 addresses. Parsed from `a.b.c.d/len` (for prefixes shorter than
/// /31 the network and broadcast addresses are left out), `a.b.c.d-e.f.g.h` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Range {
    /// First address.
    pub first: Ipv4Addr,
    /// Last address (inclusive), never below `first`.
    pub last: Ipv4Addr,
}

/// Why a pool range or a pool could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The text is not `a.b.c.d/len`, `a.b.c.d-e.f.g.h` or an address.
    #[error("bad address range {text:?}: {why}")]
    BadRange { text: String, why: &'static str },
    /// Two ranges share addresses.
    #[error("address ranges {a} and {b} overlap")]
    Overlap { a: Ipv4Range, b: Ipv4Range },
    /// More than [`MAX_POOL_SIZE`] addresses.
    #[error("pool of {size} addresses is larger than {MAX_POOL_SIZE}")]
    TooLarge { size: u64 },
}

impl Ipv4Range {
    /// The number of addresses in the range.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }

    /// Always false: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `a` is in the range.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&a)
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl From<Ipv4Range> for String {
    fn from(r: Ipv4Range) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for Ipv4Range {
    type Error = PoolError;
    fn try_from(s: String) -> Result<Self, PoolError> {
        s.parse()
    }
}

impl FromStr for Ipv4Range {
    type Err = PoolError;
    fn from_str(text: &str) -> Result<Self, PoolError> {
        let bad = |why| PoolError::BadRange {
            text: text.to_string(),
            why,
        };
        let addr = |s: &str| {
            s.trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| bad("bad IPv4 address"))
        };
        if let Some((a, len)) = text.split_once('/') {
            let a = u32::from(addr(a)?);
            let len: u32 = len.trim().parse().map_err(|_| bad("bad prefix length"))?;
            if len > 32 {
                return Err(bad("prefix length above 32"));
            }
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            if a & !mask != 0 {
                return Err(bad("host bits set in prefix"));
            }
            let (mut first, mut last) = (a, a | !mask);
            if len < 31 {
                first += 1;
                last -= 1;
            }
            return Ok(Ipv4Range {
                first: first.into(),
                last: last.into(),
            });
        }
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (addr(a)?, addr(b)?),
            None => (addr(text)?, addr(text)?),
        };
        if last < first {
            return Err(bad("last address below first"));
        }
        Ok(Ipv4Range { first, last })
    }
}

/// An address pool: ranges and which of their addresses are leased.
#[derive(Debug, Clone)]
pub struct Ipv4Pool {
    ranges: Vec<Ipv4Range>,
    /// One bit per address, ranges in order.
    used: Vec<u64>,
    size: u64,
    leased: u64,
    /// Next-fit cursor (an index into the bitmap).
    next: u64,
}

impl Ipv4Pool {
    /// A pool of `ranges`, with the addresses in `exclude` (the LNS's own address, gateways)
    /// marked as used for good.
    pub fn new(ranges: &[Ipv4Range], exclude: &[Ipv4Addr]) -> Result<Self, PoolError> {
        let mut sorted = ranges.to_vec();
        sorted.sort_by_key(|r| r.first);
        for w in sorted.windows(2) {
            if w[1].first <= w[0].last {
                return Err(PoolError::Overlap { a: w[0], b: w[1] });
            }
        }
        let size = sorted.iter().map(Ipv4Range::len).sum::<u64>();
        if size > MAX_POOL_SIZE {
            return Err(PoolError::TooLarge { size });
        }
        let words = usize::try_from(size.div_ceil(64)).map_err(|_| PoolError::TooLarge { size })?;
        let mut pool = Ipv4Pool {
            ranges: sorted,
            used: vec![0; words],
            size,
            leased: 0,
            next: 0,
        };
        for a in exclude {
            pool.reserve(*a);
        }
        Ok(pool)
    }

    fn index(&self, a: Ipv4Addr) -> Option<u64> {
        let mut base = 0;
        for r in &self.ranges {
            if r.contains(a) {
                return Some(base + u64::from(u32::from(a)) - u64::from(u32::from(r.first)));
            }
            base += r.len();
        }
        None
    }

    fn addr(&self, mut i: u64) -> Option<Ipv4Addr> {
        for r in &self.ranges {
            if i < r.len() {
                let a = u64::from(u32::from(r.first)) + i;
                return u32::try_from(a).ok().map(Ipv4Addr::from);
            }
            i -= r.len();
        }
        None
    }

    fn bit(&self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.used.get(w).is_some_and(|w| w & (1 << b) != 0)
    }

    fn set(&mut self, i: u64, v: bool) {
        let (w, b) = ((i / 64) as usize, i % 64);
        if let Some(w) = self.used.get_mut(w) {
            if v {
                *w |= 1 << b;
            } else {
                *w &= !(1 << b);
            }
        }
    }

    /// Leases a free address, or `None` when the pool is exhausted.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        if self.leased >= self.size {
            return None;
        }
        for k in 0..self.size {
            let i = (self.next + k) % self.size;
            if !self.bit(i) {
                self.set(i, true);
                self.leased += 1;
                self.next = (i + 1) % self.size;
                return self.addr(i);
            }
        }
        None
    }

    /// Leases a given address (a subscriber's fixed address). True when it was free or is not
    /// in the pool at all (the pool has nothing to say about it); false when it is leased.
    pub fn reserve(&mut self, a: Ipv4Addr) -> bool {
        match self.index(a) {
            None => true,
            Some(i) if self.bit(i) => false,
            Some(i) => {
                self.set(i, true);
                self.leased += 1;
                true
            }
        }
    }

    /// Returns a leased address to the pool. Addresses outside the pool or not leased are
    /// ignored (returns false).
    pub fn release(&mut self, a: Ipv4Addr) -> bool {
        match self.index(a) {
            Some(i) if self.bit(i) => {
                self.set(i, false);
                self.leased -= 1;
                true
            }
            _ => false,
        }
    }

    /// Whether `a` is in one of the ranges.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.index(a).is_some()
    }

    /// Whether `a` is leased (or excluded).
    pub fn is_leased(&self, a: Ipv4Addr) -> bool {
        self.index(a).is_some_and(|i| self.bit(i))
    }

    /// Every leased (or excluded) address, in pool order.
    pub fn leases(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..self.size)
            .filter(|&i| self.bit(i))
            .filter_map(|i| self.addr(i))
    }

    /// This pool's leases carried over to `new` (`config reload` of the ranges): every
    /// address leased here that `new` contains is leased there too.
    pub fn carry_leases_to(&self, new: &mut Ipv4Pool) {
        for a in self.leases() {
            new.reserve(a);
        }
    }

    /// The number of addresses in the pool.
    pub fn capacity(&self) -> u64 {
        self.size
    }

    /// The number of leased (and excluded) addresses.
    pub fn leased(&self) -> u64 {
        self.leased
    }

    /// The number of free addresses.
    pub fn available(&self) -> u64 {
        self.size - self.leased
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Ipv4Range {
        s.parse().expect("valid range")
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(r("10.0.0.0/30").to_string(), "10.0.0.1-10.0.0.2");
        assert_eq!(r("10.0.0.0/31").len(), 2);
        assert_eq!(r("10.0.0.7/32").len(), 1);
        assert_eq!(r("10.0.0.5 - 10.0.0.9").len(), 5);
        assert_eq!(r("10.0.0.5").len(), 1);
        assert_eq!(r("0.0.0.0/0").len(), (1 << 32) - 2);
        for bad in [
            "10.0.0.1/24",
            "10.0.0.0/33",
            "10.0.0.9-10.0.0.5",
            "x",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Ipv4Range>().is_err(), "{bad}");
        }
    }

    #[test]
    fn allocate_release_exhaust() {
        let mut p =
            Ipv4Pool::new(&[r("10.0.0.0/29")], &[Ipv4Addr::new(10, 0, 0, 1)]).expect("valid pool");
        assert_eq!((p.capacity(), p.available()), (6, 5));
        let mut got = Vec::new();
        while let Some(a) = p.allocate() {
            got.push(a);
        }
        assert_eq!(got.len(), 5);
        assert!(!got.contains(&Ipv4Addr::new(10, 0, 0, 1)));
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 5, "no double allocation");
        assert_eq!(p.allocate(), None);
        assert!(p.release(got[2]));
        assert!(!p.release(got[2]), "double release refused");
        assert_eq!(p.allocate(), Some(got[2]));
        assert!(!p.reserve(got[0]));
        assert!(p.reserve(Ipv4Addr::new(192, 0, 2, 1)), "outside the pool");
    }

    #[test]
    fn multiple_ranges_and_overlap() {
        let mut p = Ipv4Pool::new(&[r("10.0.1.0-10.0.1.1"), r("10.0.0.9")], &[]).expect("valid");
        let all: Vec<_> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(
            all,
            vec![
                Ipv4Addr::new(10, 0, 0, 9),
                Ipv4Addr::new(10, 0, 1, 0),
                Ipv4Addr::new(10, 0, 1, 1)
            ]
        );
        assert!(matches!(
            Ipv4Pool::new(&[r("10.0.0.0/24"), r("10.0.0.5")], &[]),
            Err(PoolError::Overlap { .. })
        ));
        assert!(matches!(
            Ipv4Pool::new(&[r("10.0.0.0/7")], &[]),
            Err(PoolError::TooLarge { .. })
        ));
    }
}
