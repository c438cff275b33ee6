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

use super::fast::{key_u64, Prepared};

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

/// One session in a replica. The fields a frame reads first.
#[derive(Debug)]
pub struct Entry {
    /// The session prepared for the per-frame path (`None`: one `encap` refuses; every frame
    /// of it goes through the reference).
    pub fast: Option<Prepared>,
    /// Receive sequence state (this worker's).
    pub rx: RxSeq,
    /// Transmit Ns, shared by every replica (read only for sessions with sequencing).
    pub tx: Arc<AtomicU32>,
    /// The session (the reference's input when a frame leaves the common case).
    pub session: Session,
}

/// The hasher of the replica's keys ([`key_u64`]: version and id in one word): one
/// multiply and a shift. The ids are the LNS's own (the control plane draws them), not chosen
/// by the sender of a frame; and a frame reaches a worker only after the program found its
/// session.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A worker's replica, keyed by [`key_u64`].
pub type Table = HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>;

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
        } => match t.get_mut(&key_u64(&key)) {
            Some(e) => {
                e.fast = Prepared::new(&session);
                e.session = session;
                e.tx = tx;
            }
            None => {
                t.insert(
                    key_u64(&key),
                    Entry {
                        fast: Prepared::new(&session),
                        rx,
                        tx,
                        session,
                    },
                );
            }
        },
        Update::Remove(key) => {
            t.remove(&key_u64(&key));
        }
        Update::ResetSequence(key) => {
            if let Some(e) = t.get_mut(&key_u64(&key)) {
                e.rx.reset();
            }
        }
        Update::Mark(_) => {}
    }
}
