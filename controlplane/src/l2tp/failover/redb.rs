//! The default [`StateStore`]: [`RedbStore`], an embedded [redb] database in one file
//! (`failover.redb` in the state directory) with a table of tunnels, one of sessions and one of
//! sequence records, each record in the [`codec`] encoding. Operations are buffered and
//! written by [`StateStore::commit`] in one durable write transaction (RFC 4951 §3.2: what a
//! restarted control plane recovers from).
//!
//! [redb]: https://docs.rs/redb

use std::fs;
use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;

use super::{
    codec, RecoveryState, SequenceRecord, SessionRecord, StateStore, StoreError, StoreOp,
    TunnelRecord,
};

/// Tunnels: our tunnel ID → a [`codec`] [`TunnelRecord`].
pub(super) const TUNNELS: TableDefinition<u32, &[u8]> = TableDefinition::new("tunnels");
/// Sessions: (our tunnel ID, our session ID) → a [`codec`] [`SessionRecord`].
pub(super) const SESSIONS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("sessions");
/// Sequence state: our tunnel ID → a [`codec`] [`SequenceRecord`].
const SEQUENCES: TableDefinition<u32, &[u8]> = TableDefinition::new("sequences");

/// The default store: an embedded [redb](https://docs.rs/redb) database, [`RedbStore::FILE`]
/// in the state directory. Operations are buffered and written by [`StateStore::commit`] in
/// one write transaction, durable (fsync) when it returns.
pub struct RedbStore {
    pub(super) path: PathBuf,
    pub(super) db: redb::Database,
    pending: Vec<StoreOp>,
    /// What [`RedbStore::open_checked`] read, handed out by the first [`StateStore::load`].
    pub(super) preloaded: std::sync::Mutex<Option<RecoveryState>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl RedbStore {
    /// The database file's name in the state directory.
    pub const FILE: &'static str = "failover.redb";

    /// redb's page cache (its default is 1 GiB): the store is read once, at start-up, and
    /// otherwise only written, so a large cache would only keep the whole state resident.
    pub const CACHE_BYTES: usize = 16 << 20;

    /// Opens (or creates) the store in `dir` (created if missing). A database left by a
    /// crashed process is repaired by redb on open; its last commit is what it holds.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(Self::FILE);
        let db = redb::Builder::new()
            .set_cache_size(Self::CACHE_BYTES)
            .create(&path)
            .map_err(|e| Self::db_err("open", &path, e))?;
        let store = RedbStore {
            path,
            db,
            pending: Vec::new(),
            preloaded: std::sync::Mutex::new(None),
        };
        // Both tables exist from the start: a read never meets a missing table.
        let txn = store.db.begin_write().map_err(|e| store.err("begin", e))?;
        txn.open_table(TUNNELS)
            .map_err(|e| store.err("open table", e))?;
        txn.open_table(SESSIONS)
            .map_err(|e| store.err("open table", e))?;
        txn.open_table(SEQUENCES)
            .map_err(|e| store.err("open table", e))?;
        txn.commit().map_err(|e| store.err("commit", e))?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Operations given and not committed yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn db_err(op: &'static str, path: &Path, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            op,
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        }
    }

    pub(super) fn err(&self, op: &'static str, e: impl Into<redb::Error>) -> StoreError {
        Self::db_err(op, &self.path, e)
    }

    /// A record as a value of the database ([`codec::encode`]).
    fn encode<T: Serialize>(&self, record: &T) -> Result<Vec<u8>, StoreError> {
        codec::encode(record).map_err(|source| StoreError::Decode {
            path: self.path.clone(),
            source,
        })
    }

    /// A value of the database as a record ([`codec::decode`]), and whether it was in the
    /// JSON format 1 (to be migrated).
    pub(super) fn decode_record<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
    ) -> Result<codec::Decoded<T>, StoreError> {
        codec::decode(bytes).map_err(|e| match e {
            codec::CodecError::Format(found) => StoreError::Format {
                path: self.path.clone(),
                found,
            },
            source => StoreError::Decode {
                path: self.path.clone(),
                source,
            },
        })
    }

    /// A value of the database as a record.
    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, StoreError> {
        self.decode_record(bytes).map(|d| d.record)
    }

    /// Writes `ops` in one durable write transaction.
    fn write(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err("begin", e))?;
        {
            let mut tunnels = txn
                .open_table(TUNNELS)
                .map_err(|e| self.err("open table", e))?;
            let mut sessions = txn
                .open_table(SESSIONS)
                .map_err(|e| self.err("open table", e))?;
            let mut sequences = txn
                .open_table(SEQUENCES)
                .map_err(|e| self.err("open table", e))?;
            for op in ops {
                match op {
                    StoreOp::PutTunnel(t) => {
                        let v = self.encode(t)?;
                        tunnels
                            .insert(t.id, v.as_slice())
                            .map_err(|e| self.err("insert", e))?;
                    }
                    StoreOp::RemoveTunnel(id) => {
                        tunnels.remove(*id).map_err(|e| self.err("remove", e))?;
                        sessions
                            .retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)
                            .map_err(|e| self.err("remove", e))?;
                        sequences.remove(*id).map_err(|e| self.err("remove", e))?;
                    }
                    StoreOp::PutSequence(q) => {
                        let v = self.encode(q)?;
                        sequences
                            .insert(q.tunnel, v.as_slice())
                            .map_err(|e| self.err("insert", e))?;
                    }
                    StoreOp::PutSession(r) => {
                        let v = self.encode(r)?;
                        sessions
                            .insert((r.tunnel, r.id), v.as_slice())
                            .map_err(|e| self.err("insert", e))?;
                    }
                    StoreOp::RemoveSession { tunnel, session } => {
                        sessions
                            .remove((*tunnel, *session))
                            .map_err(|e| self.err("remove", e))?;
                    }
                }
            }
        }
        // redb's default durability is immediate: the commit is on disk when this returns.
        txn.commit().map_err(|e| self.err("commit", e))
    }
}

impl StateStore for RedbStore {
    fn put_tunnel(&mut self, t: &TunnelRecord) -> Result<(), StoreError> {
        self.pending.push(StoreOp::PutTunnel(Box::new(t.clone())));
        Ok(())
    }
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
        self.pending.push(StoreOp::RemoveTunnel(id));
        Ok(())
    }
    fn put_sequence(&mut self, s: &SequenceRecord) -> Result<(), StoreError> {
        self.pending.push(StoreOp::PutSequence(Box::new(s.clone())));
        Ok(())
    }
    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        self.pending.push(StoreOp::PutSession(Box::new(s.clone())));
        Ok(())
    }
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
        self.pending
            .push(StoreOp::RemoveSession { tunnel, session });
        Ok(())
    }
    fn apply(&mut self, op: &StoreOp) -> Result<(), StoreError> {
        self.pending.push(op.clone());
        Ok(())
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // What failed to commit is not retried: it is counted by the caller, and the next
        // record of the same tunnel or session replaces it.
        let ops = std::mem::take(&mut self.pending);
        *self
            .preloaded
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        // A file damaged under a running l2xdpd can make redb panic: a failed commit (counted
        // by the caller), not a crash loop. The panic message is printed by the panic hook.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write(&ops))).unwrap_or_else(
            |p| {
                Err(StoreError::Panicked {
                    op: "commit",
                    path: self.path.clone(),
                    message: p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default(),
                })
            },
        )
    }
    fn load(&self) -> Result<RecoveryState, StoreError> {
        let pre = self
            .preloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut st) = pre {
            st.sequences = self.load_sequences(&st)?;
            return Ok(st);
        }
        let txn = self.db.begin_read().map_err(|e| self.err("begin", e))?;
        let tunnels = txn
            .open_table(TUNNELS)
            .map_err(|e| self.err("open table", e))?;
        let sessions = txn
            .open_table(SESSIONS)
            .map_err(|e| self.err("open table", e))?;
        let mut st = RecoveryState::default();
        for row in tunnels.iter().map_err(|e| self.err("read", e))? {
            let (_, v) = row.map_err(|e| self.err("read", e))?;
            st.tunnels.push(self.decode(v.value())?);
        }
        let ids: std::collections::HashSet<u32> = st.tunnels.iter().map(|t| t.id).collect();
        for row in sessions.iter().map_err(|e| self.err("read", e))? {
            let (k, v) = row.map_err(|e| self.err("read", e))?;
            if ids.contains(&k.value().0) {
                st.sessions.push(self.decode(v.value())?);
            }
        }
        drop((tunnels, sessions, txn));
        st.sequences = self.load_sequences(&st)?;
        Ok(st)
    }
}

impl RedbStore {
    /// The sequence records of `st`'s tunnels. One that does not decode is left out (that
    /// tunnel cannot be resumed; it is recovered or torn down instead), never a reason not
    /// to start.
    fn load_sequences(&self, st: &RecoveryState) -> Result<Vec<SequenceRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err("begin", e))?;
        let table = match txn.open_table(SEQUENCES) {
            Ok(t) => t,
            // A store written before resume existed has no such table.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err("open table", e)),
        };
        let ids: std::collections::HashSet<u32> = st.tunnels.iter().map(|t| t.id).collect();
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err("read", e))? {
            let (k, v) = row.map_err(|e| self.err("read", e))?;
            if !ids.contains(&k.value()) {
                continue;
            }
            match self.decode::<SequenceRecord>(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(tunnel = k.value(), %e, "sequence record unreadable: the tunnel cannot be resumed")
                }
            }
        }
        Ok(out)
    }
}
