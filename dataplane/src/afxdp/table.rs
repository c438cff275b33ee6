//! The workers' session tables: one replica per worker, owned by it (plain `HashMap`, no lock,
//! no atomic on lookup), changed only by [`Update`] messages the worker applies between
//! batches, a bounded number at a time — so an insert, a delete or an RFC 4951 restore of many
//! sessions never stalls a worker for longer than one bounded slice of updates.
//!
//! Why replicas and not one shared epoch-managed map: the receive sequence state (Nr, RFC 3931
//! App. C) is mutated per packet; in a worker-owned replica it is a plain field, with a shared
//! map it would need a lock or atomics per packet. A session's upstream packets all arrive on
//! one queue (one outer 5-tuple, one RSS hash), hence on one worker, so a per-worker Nr is the
//! session's Nr. Downstream packets of one session may arrive on any core queue: the transmit
//! Ns is one `AtomicU32` per session shared by the replicas (a fetch-add, not a lock).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use l2xdp_ebpf::maps;
use l2xdp_wire::datapath::{RxSeq, Session};

/// A change for the workers' replicas.
#[derive(Debug, Clone)]
pub enum Update {
    /// Install or replace a session. `rx`: the receive state for a session the replica does
    /// not have yet (an existing one keeps its state: installs are idempotent).
    Upsert {
        key: maps::SessionKey,
        session: Session,
        tx: Arc<AtomicU32>,
        rx: RxSeq,
    },
    /// Remove a session.
    Remove(maps::SessionKey),
    /// RFC 4951 §3.2.3 data channel reset: re-learn the peer's sequence (the shared Ns was
    /// reset by the sender of this message).
    ResetSequence(maps::SessionKey),
    /// Every earlier update is applied: acknowledge the token (see `AfXdp::settle`).
    Mark(u32),
}

/// One session in a replica.
#[derive(Debug)]
pub struct Entry {
    /// The session (template data for encap, checks for decap).
    pub session: Session,
    /// Receive sequence state (this worker's).
    pub rx: RxSeq,
    /// Transmit Ns, shared by every replica.
    pub tx: Arc<AtomicU32>,
}

/// A cheap hasher for the 8-byte session key (the keys are ids, not attacker-chosen strings
/// of arbitrary length; the multiply-xorshift spreads them).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
        h
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.0 = (self.0 << 8) ^ u64::from(v);
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(v);
    }
}

/// A worker's replica.
pub type Table = HashMap<maps::SessionKey, Entry, BuildHasherDefault<KeyHasher>>;

/// An empty replica with room for `n` sessions (no rehash while it grows to `n`).
pub fn table(n: usize) -> Table {
    HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

/// Applies one update.
pub fn apply(t: &mut Table, u: Update) {
    match u {
        Update::Upsert {
            key,
            session,
            tx,
            rx,
        } => match t.get_mut(&key) {
            Some(e) => {
                e.session = session;
                e.tx = tx;
            }
            None => {
                t.insert(key, Entry { session, rx, tx });
            }
        },
        Update::Remove(key) => {
            t.remove(&key);
        }
        Update::ResetSequence(key) => {
            if let Some(e) = t.get_mut(&key) {
                e.rx.reset();
            }
        }
        Update::Mark(_) => {}
    }
}
