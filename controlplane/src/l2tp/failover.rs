//! RFC 4951 failover: the state a restarted control plane needs to recover its tunnels
//! ([`RecoveryState`], §3.2), where it is kept ([`StateStore`]), and what the registry reports
//! about the recovery steps ([`FailoverEvent`]).
//!
//! The registry stays sans-IO: it never writes to a store itself. It emits
//! [`FailoverEvent::Store`] operations ([`StoreOp`]) that the caller applies to its
//! [`StateStore`]. **Ordering contract:** the caller applies every event it pulled from
//! [`super::Registry::poll_failover_event`] before it sends the datagrams it pulls from
//! [`super::Registry::poll_transmit`] afterwards. The registry queues a session's record before
//! the message that acknowledges the session (the ICCN/OCCN we send, or the ZLB/ACK for the
//! ICCN/OCCN we receive), so a session the peer may consider established is on disk first.
//!
//! What is persisted (only when our Failover Capability has the C bit, RFC 4951 §5.1): each
//! established tunnel ([`TunnelRecord`], written when it comes up and after a recovery) and each
//! established session ([`SessionRecord`], written when it comes up and when the caller attaches
//! its application data with [`super::Registry::set_session_app_data`]). Sessions being set up
//! are not persisted: RFC 4951 §3.3 Step I clears them after a failover anyway. And, with
//! `[l2tp] resume` (the default), each established tunnel's sequence state
//! ([`SequenceRecord`]: next Ns, Nr, the unacknowledged messages) for transparent resume
//! (`tunnel/resume.rs`): the registry does not queue these as events; the caller takes them
//! with [`super::Registry::take_sequence_ops`] right before it commits — one per tunnel that
//! moved, however many datagrams it handled — and commits them with the rest before sending.
//!
//! **Group commit:** a store may buffer what it is given and make it durable only on
//! [`StateStore::commit`], as one transaction; the caller commits before it sends any datagram
//! that follows the operations ([`crate::node::Node::poll_transmit`] does, so every driver
//! turn — all the datagrams it handled — costs one durable commit, not one per record).
//!
//! The default store ([`RedbStore`]) is an embedded database, [redb]: one file
//! (`failover.redb` in the state directory), a table of tunnels, one of sessions and one of
//! sequence records, each record a format byte and the record in a compact binary encoding
//! ([`codec`]: about 100 bytes a session; the JSON documents of format 1 are read and
//! migrated). A commit is a redb write transaction committed
//! with immediate durability (fsync before it returns): a crash leaves the state of the last
//! commit, never a torn one.
//!
//! [redb]: https://docs.rs/redb

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition};

use serde::{Deserialize, Serialize};

use l2xdp_wire::datapath::SessionKey;
use l2xdp_wire::l2tp::header::{Transport, Version};

use super::{CallKind, FailoverCapability, Peer, ProxyValues, ResultCode, SessionUp, TunnelId};

/// Version of the persisted format ([`codec::FORMAT`]); [`StateStore::load`] reads it and
/// migrates format 1 (JSON), and refuses other versions.
pub const STATE_FORMAT: u32 = codec::FORMAT as u32;

/// Transport of a persisted tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordTransport {
    /// UDP.
    Udp,
    /// IP protocol 115 (L2TPv3).
    Ip,
}

/// One established control connection as a restarted control plane needs it (RFC 4951 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelRecord {
    /// Our tunnel ID (the Recover Tunnel ID of a recovery).
    pub id: u32,
    /// The peer's tunnel ID (the Recover Remote Tunnel ID).
    pub peer_tunnel_id: u32,
    /// The peer's address (and UDP port).
    pub peer_addr: SocketAddr,
    /// UDP or IP.
    pub transport: RecordTransport,
    /// L2TP version: 2 or 3 (the recovery tunnel MUST use the same, §3.2.1).
    pub version: u8,
    /// We sent the SCCRQ.
    pub initiator: bool,
    /// Our Failover Capability as sent.
    pub our_failover: Option<FailoverCapability>,
    /// The peer's Failover Capability.
    pub peer_failover: Option<FailoverCapability>,
    /// Our Host Name as sent.
    pub host_name: String,
    /// Our Router ID as sent (v3).
    pub router_id: u32,
    /// The peer's Host Name.
    pub peer_host_name: Vec<u8>,
    /// The peer's Router ID (v3).
    pub peer_router_id: Option<u32>,
    /// A fingerprint of the secret that authenticated the tunnel (never the secret): the
    /// recovery tunnel MUST use the same secret (§3.2.1); `None` without authentication.
    pub secret_ref: Option<String>,
    /// The peer's Receive Window Size.
    pub peer_window: u16,
    /// Our next Ns when the record was written (informational: the recovered tunnel uses the
    /// Suggested Control Sequence, or zero, §3.2.2).
    pub ns: u16,
    /// Our Nr when the record was written (informational).
    pub nr: u16,
}

impl TunnelRecord {
    /// The peer as the registry addresses it.
    pub fn peer(&self) -> Peer {
        Peer {
            addr: self.peer_addr,
            transport: match self.transport {
                RecordTransport::Udp => Transport::Udp,
                RecordTransport::Ip => Transport::Ip,
            },
        }
    }

    /// The L2TP version, when valid.
    pub fn l2tp_version(&self) -> Option<Version> {
        match self.version {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

/// One established session (RFC 4951 §3.2) with the caller's opaque data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Our tunnel ID.
    pub tunnel: u32,
    /// Our session ID.
    pub id: u32,
    /// The peer's session ID.
    pub peer_id: u32,
    /// Incoming or outgoing call.
    pub call: CallKind,
    /// We sent the ICRQ/OCRQ.
    pub initiator: bool,
    /// v3: the cookie we assigned.
    pub cookie_rx: Vec<u8>,
    /// v3: the peer's cookie.
    pub cookie_tx: Vec<u8>,
    /// v3: L2-Specific Sublayer we asked for.
    pub our_l2ss: u16,
    /// v3: L2-Specific Sublayer the peer asked for.
    pub peer_l2ss: u16,
    /// Data Sequencing we asked for (v3 level; v2: 0).
    pub our_seq: u16,
    /// Data Sequencing the peer asked for (v3 level; v2: 2 when it sent Sequencing Required).
    pub peer_seq: u16,
    /// v3 PW type.
    pub pw_type: Option<u16>,
    /// Calling Number (v2).
    pub calling_number: Vec<u8>,
    /// Called Number (v2).
    pub called_number: Vec<u8>,
    /// Sub-Address (v2).
    pub sub_address: Vec<u8>,
    /// Remote End ID (v3).
    pub remote_end_id: Vec<u8>,
    /// Private Group ID (v2).
    pub private_group_id: Vec<u8>,
    /// Proxy LCP and authentication values (v2).
    pub proxy: ProxyValues,
    /// Tx connect speed.
    pub tx_speed: Option<u64>,
    /// Rx connect speed.
    pub rx_speed: Option<u64>,
    /// The caller's data (e.g. PPP results the fast path depends on: subscriber address, user,
    /// magic numbers, MRU), set with [`super::Registry::set_session_app_data`]: opaque bytes
    /// in the caller's own encoding (`crate::node` writes its typed `AppData` with
    /// [`codec::to_bytes`]). Empty: none. A format 1 (JSON) record's JSON value is kept as its
    /// JSON text (it starts with `{`).
    #[serde(with = "app_serde")]
    pub app: Box<[u8]>,
}

/// [`SessionRecord::app`]: bytes in the binary format; in a human-readable one (the JSON of
/// format 1, event logs) the JSON value it holds, or `null` when empty.
mod app_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(app: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return app.serialize(s);
        }
        if app.is_empty() {
            return s.serialize_unit();
        }
        match serde_json::from_slice::<serde_json::Value>(app) {
            Ok(v) => v.serialize(s),
            Err(_) => app.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[u8]>, D::Error> {
        if !d.is_human_readable() {
            return Vec::<u8>::deserialize(d).map(Vec::into_boxed_slice);
        }
        let v = serde_json::Value::deserialize(d)?;
        if v.is_null() {
            return Ok(Box::default());
        }
        serde_json::to_vec(&v)
            .map(Vec::into_boxed_slice)
            .map_err(serde::de::Error::custom)
    }
}

/// A control message sent (or queued) and not acknowledged when a [`SequenceRecord`] was
/// written: a resumed control connection sends it again (RFC 2661 §5.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnackedMessage {
    /// Its Ns; `None`: queued and never sent (numbered when it first leaves).
    pub ns: Option<u16>,
    /// The peer's Session ID of its L2TPv2 header (0 for tunnel messages and in L2TPv3).
    pub session_id: u16,
    /// Everything after the 12-byte header (an L2TPv3 Message Digest is recomputed when it
    /// is sent).
    pub avps: Vec<u8>,
}

/// The reliable-delivery state of one established control connection (RFC 2661 §5.8,
/// RFC 3931 §4.2): what a restarted control plane needs to go on with the **same** control
/// connection (transparent resume) instead of recovering it (RFC 4951) or tearing it down.
///
/// Written under the same commit-before-send rule as the other records: a datagram whose
/// header carries a new Ns or Nr leaves only once the record that names them is committed,
/// so the restarted side never numbers a message the peer has already seen, and never asks
/// again for one it has acknowledged. One record per tunnel, replaced at most once per
/// commit (group commit), apart from the tunnel's [`TunnelRecord`] so that a HELLO does not
/// rewrite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceRecord {
    /// Our tunnel ID.
    pub tunnel: u32,
    /// Our next Ns.
    pub ns: u16,
    /// Our Nr: the Ns expected next from the peer.
    pub nr: u16,
    /// What the peer has not acknowledged, in order: the messages in flight (Ns `ns - k` to
    /// `ns - 1`), then those queued.
    pub unacked: Vec<UnackedMessage>,
    /// L2TPv3 with a Message Digest: the nonces (ours, the peer's) the digests are keyed
    /// with (RFC 3931 §4.3; sent in clear in the SCCRQ/SCCRP, not a secret).
    // No `skip_serializing_if`: the store encoding (postcard) is not self-describing.
    pub nonces: Option<(Vec<u8>, Vec<u8>)>,
}

/// Everything persisted: what [`super::Registry::recover`] takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Established tunnels.
    pub tunnels: Vec<TunnelRecord>,
    /// Established sessions (each of a tunnel in `tunnels`).
    pub sessions: Vec<SessionRecord>,
    /// The tunnels' sequence state (transparent resume); a tunnel without one (a store
    /// written before resume existed, or its record lost) cannot be resumed.
    #[serde(default)]
    pub sequences: Vec<SequenceRecord>,
}

impl Default for RecoveryState {
    fn default() -> Self {
        RecoveryState {
            format: STATE_FORMAT,
            tunnels: Vec::new(),
            sessions: Vec::new(),
            sequences: Vec::new(),
        }
    }
}

/// An update of the persisted state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StoreOp {
    /// Write (or replace) a tunnel.
    PutTunnel(Box<TunnelRecord>),
    /// Forget a tunnel, its sessions and its sequence state.
    RemoveTunnel(u32),
    /// Write (or replace) a tunnel's sequence state (transparent resume).
    PutSequence(Box<SequenceRecord>),
    /// Write (or replace) a session.
    PutSession(Box<SessionRecord>),
    /// Forget a session.
    RemoveSession {
        /// Our tunnel ID.
        tunnel: u32,
        /// Our session ID.
        session: u32,
    },
}

/// Errors of a [`StateStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A record does not decode (or encode).
    #[error("{path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The error.
        source: codec::CodecError,
    },
    /// A record of another format version.
    #[error("{path}: a record of format {found}, written by another l2xdpd version (this one reads format {STATE_FORMAT}, and migrates format 1); start the l2xdpd version that wrote it, or move the file aside to start without its tunnels and sessions")]
    Format {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// The store is damaged and `[daemon] on_damaged_store = "refuse"` (see
    /// [`RedbStore::open_checked`]).
    #[error("{path} is damaged ({kind}): {detail}; not starting ([daemon] on_damaged_store = \"refuse\"; \"start-empty\" moves it aside and starts with an empty store)")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        kind: DamageKind,
        /// The details.
        detail: String,
    },
    /// The embedded database panicked (a file damaged while running): caught, the commit
    /// failed.
    #[error("{op} {path}: redb panicked: {message}")]
    Panicked {
        /// What was done.
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// The panic's message.
        message: String,
    },
    /// The embedded database failed.
    #[error("{op} {path}: {source}")]
    Db {
        /// What was done.
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// The error.
        source: Box<redb::Error>,
    },
}

/// Where the failover state is kept.
pub trait StateStore {
    /// Writes or replaces a tunnel record.
    fn put_tunnel(&mut self, t: &TunnelRecord) -> Result<(), StoreError>;
    /// Forgets a tunnel, all its sessions and its sequence state.
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError>;
    /// Writes or replaces a tunnel's sequence state ([`SequenceRecord`]).
    fn put_sequence(&mut self, s: &SequenceRecord) -> Result<(), StoreError>;
    /// Writes or replaces a session record.
    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError>;
    /// Forgets a session.
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError>;
    /// Everything committed (sessions of unknown tunnels are left out).
    fn load(&self) -> Result<RecoveryState, StoreError>;

    /// Makes every operation given since the last commit durable, as one transaction (group
    /// commit). **Call it before sending any datagram that follows those operations** (the
    /// module's ordering contract). Stores that write through do nothing here.
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Applies one operation from [`FailoverEvent::Store`].
    fn apply(&mut self, op: &StoreOp) -> Result<(), StoreError> {
        match op {
            StoreOp::PutTunnel(t) => self.put_tunnel(t),
            StoreOp::RemoveTunnel(id) => self.remove_tunnel(*id),
            StoreOp::PutSequence(s) => self.put_sequence(s),
            StoreOp::PutSession(s) => self.put_session(s),
            StoreOp::RemoveSession { tunnel, session } => self.remove_session(*tunnel, *session),
        }
    }
}

/// An in-memory store (tests; a standby kept in the same process).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tunnels: BTreeMap<u32, TunnelRecord>,
    sessions: BTreeMap<(u32, u32), SessionRecord>,
    sequences: BTreeMap<u32, SequenceRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateStore for MemoryStore {
    fn put_tunnel(&mut self, t: &TunnelRecord) -> Result<(), StoreError> {
        self.tunnels.insert(t.id, t.clone());
        Ok(())
    }
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
        self.tunnels.remove(&id);
        self.sessions.retain(|(t, _), _| *t != id);
        self.sequences.remove(&id);
        Ok(())
    }
    fn put_sequence(&mut self, s: &SequenceRecord) -> Result<(), StoreError> {
        self.sequences.insert(s.tunnel, s.clone());
        Ok(())
    }
    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        self.sessions.insert((s.tunnel, s.id), s.clone());
        Ok(())
    }
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
        self.sessions.remove(&(tunnel, session));
        Ok(())
    }
    fn load(&self) -> Result<RecoveryState, StoreError> {
        Ok(RecoveryState {
            format: STATE_FORMAT,
            tunnels: self.tunnels.values().cloned().collect(),
            sessions: self
                .sessions
                .values()
                .filter(|s| self.tunnels.contains_key(&s.tunnel))
                .cloned()
                .collect(),
            sequences: self
                .sequences
                .values()
                .filter(|s| self.tunnels.contains_key(&s.tunnel))
                .cloned()
                .collect(),
        })
    }
}

/// Tunnels: our tunnel ID → a [`codec`] [`TunnelRecord`].
const TUNNELS: TableDefinition<u32, &[u8]> = TableDefinition::new("tunnels");
/// Sessions: (our tunnel ID, our session ID) → a [`codec`] [`SessionRecord`].
const SESSIONS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("sessions");
/// Sequence state: our tunnel ID → a [`codec`] [`SequenceRecord`].
const SEQUENCES: TableDefinition<u32, &[u8]> = TableDefinition::new("sequences");

/// The default store: an embedded [redb](https://docs.rs/redb) database, [`RedbStore::FILE`]
/// in the state directory. Operations are buffered and written by [`StateStore::commit`] in
/// one write transaction, durable (fsync) when it returns.
pub struct RedbStore {
    path: PathBuf,
    db: redb::Database,
    pending: Vec<StoreOp>,
    /// What [`RedbStore::open_checked`] read, handed out by the first [`StateStore::load`].
    preloaded: std::sync::Mutex<Option<RecoveryState>>,
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

    fn err(&self, op: &'static str, e: impl Into<redb::Error>) -> StoreError {
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
    fn decode_record<T: serde::de::DeserializeOwned>(
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

pub mod codec;
mod damage;
pub use self::damage::{damaged_counts, DamageKind, OnDamagedStore, Opened, StoreDamage};

/// Which side of RFC 4951 a tunnel's control channel reset played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResetRole {
    /// We recovered (reset on the SCCRP of our recovery tunnel, or as the loser of a double
    /// failover's tie, on the winner's SCCCN).
    Recovery,
    /// We are the remote endpoint (reset on the SCCCN of the peer's recovery tunnel).
    Remote,
}

/// What the registry reports about failover (pulled with
/// [`super::Registry::poll_failover_event`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FailoverEvent {
    /// Apply to the [`StateStore`] before sending what is polled next.
    Store(StoreOp),
    /// [`super::Registry::recover`] restored a session (no traffic yet): reinstall it in the
    /// fast path if it is missing and rebuild the application state from `app`.
    SessionRestored {
        /// The session as [`super::Event::SessionUp`] described it.
        up: Box<SessionUp>,
        /// The caller's data ([`SessionRecord::app`]).
        app: Box<[u8]>,
    },
    /// A recovery tunnel was opened for an old tunnel (§3.2.1).
    RecoveryStarted {
        /// The old tunnel.
        tunnel: TunnelId,
        /// The recovery tunnel's ID.
        recovery_tunnel: TunnelId,
    },
    /// An old tunnel's control channel was reset (§3.2.2): it carries messages again.
    ControlReset {
        /// The recovered tunnel.
        tunnel: TunnelId,
        /// Our Ns from now on.
        ns: u16,
        /// Our Nr from now on.
        nr: u16,
        /// Recovery or remote endpoint.
        role: ResetRole,
    },
    /// §3.2.3 data channel reset of a sequenced session: call
    /// `DataPlane::reset_sequence(&key)` (our Ns restarts at zero, Nr is re-learnt).
    ResetDataSequence {
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Our session ID.
        session: u32,
        /// The fast path key (our IDs).
        key: SessionKey,
    },
    /// An FSQ/FSR exchange found a session whose IDs do not pair with the peer's (§3.3): kept,
    /// marked stale and queried.
    SessionStale {
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Our session ID.
        session: u32,
    },
    /// Every session of a recovered tunnel was confirmed or cleared by FSQ/FSR (§3.3).
    Recovered {
        /// The tunnel.
        tunnel: TunnelId,
        /// Sessions that survived.
        sessions: usize,
    },
    /// A tunnel restored from its sequence state was confirmed by its peer: the same control
    /// connection goes on (transparent resume, `tunnel/resume.rs`).
    Resumed {
        /// The tunnel.
        tunnel: TunnelId,
        /// Its sessions.
        sessions: usize,
    },
    /// Recovery of an old tunnel failed: it and its sessions were cleared silently (§3.2.1);
    /// [`super::Event::SessionDown`] / [`super::Event::TunnelDown`] were emitted for them.
    RecoveryFailed {
        /// The old tunnel.
        tunnel: TunnelId,
        /// Why.
        reason: String,
    },
    /// Remote endpoint: we refused a recovery SCCRQ with a StopCCN.
    RecoveryRefused {
        /// Who asked.
        peer: Peer,
        /// The Recover Remote Tunnel ID (ours) it named.
        tunnel: u32,
        /// The StopCCN's result.
        result: ResultCode,
    },
}

/// A fingerprint of a secret for [`TunnelRecord::secret_ref`]: MD5 over a fixed label and the
/// secret, hex. It identifies the secret without revealing it.
pub fn secret_ref(secret: &[u8]) -> String {
    use md5::{Digest, Md5};
    let d: [u8; 16] = Md5::new()
        .chain_update(b"l2xdp RFC 4951 secret reference\0")
        .chain_update(secret)
        .finalize()
        .into();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn tunnel(id: u32) -> TunnelRecord {
        TunnelRecord {
            id,
            peer_tunnel_id: 7,
            peer_addr: "192.0.2.1:1701".parse().expect("addr"),
            transport: RecordTransport::Udp,
            version: 2,
            initiator: true,
            our_failover: None,
            peer_failover: None,
            host_name: "a".into(),
            router_id: 1,
            peer_host_name: b"b".to_vec(),
            peer_router_id: None,
            secret_ref: Some(secret_ref(b"x")),
            peer_window: 4,
            ns: 1,
            nr: 2,
        }
    }

    pub(super) fn session(tunnel: u32, id: u32) -> SessionRecord {
        SessionRecord {
            tunnel,
            id,
            peer_id: 9,
            call: CallKind::Incoming,
            initiator: false,
            cookie_rx: vec![1, 2, 3, 4],
            cookie_tx: Vec::new(),
            our_l2ss: 1,
            peer_l2ss: 1,
            our_seq: 0,
            peer_seq: 0,
            pw_type: Some(5),
            calling_number: Vec::new(),
            called_number: Vec::new(),
            sub_address: Vec::new(),
            remote_end_id: Vec::new(),
            private_group_id: Vec::new(),
            proxy: ProxyValues::default(),
            tx_speed: None,
            rx_speed: Some(1),
            app: br#"{"ip":"10.0.0.1","mru":1492}"#.to_vec().into_boxed_slice(),
        }
    }

    fn exercise(s: &mut dyn StateStore) {
        s.put_tunnel(&tunnel(1)).expect("put");
        s.put_tunnel(&tunnel(2)).expect("put");
        s.put_session(&session(1, 10)).expect("put");
        s.put_session(&session(1, 11)).expect("put");
        s.put_session(&session(2, 12)).expect("put");
        s.remove_session(1, 11).expect("rm");
        s.remove_session(1, 99)
            .expect("rm of a missing session is fine");
        s.remove_tunnel(2).expect("rm");
        let st = s.load().expect("load");
        assert_eq!(st.format, STATE_FORMAT);
        assert_eq!(st.tunnels, vec![tunnel(1)]);
        assert_eq!(st.sessions, vec![session(1, 10)]);
        let mut t = tunnel(1);
        t.ns = 100;
        s.apply(&StoreOp::PutTunnel(Box::new(t.clone())))
            .expect("replace");
        assert_eq!(s.load().expect("load").tunnels, vec![t]);
    }

    #[test]
    fn memory_store() {
        exercise(&mut MemoryStore::new());
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("l2xdp-failover-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// A store that only persists on commit: what `exercise` does, committed after each step.
    struct Committing(RedbStore);

    impl StateStore for Committing {
        fn put_tunnel(&mut self, t: &TunnelRecord) -> Result<(), StoreError> {
            self.0.put_tunnel(t)?;
            self.0.commit()
        }
        fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
            self.0.remove_tunnel(id)?;
            self.0.commit()
        }
        fn put_sequence(&mut self, q: &SequenceRecord) -> Result<(), StoreError> {
            self.0.put_sequence(q)?;
            self.0.commit()
        }
        fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
            self.0.put_session(s)?;
            self.0.commit()
        }
        fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
            self.0.remove_session(tunnel, session)?;
            self.0.commit()
        }
        fn load(&self) -> Result<RecoveryState, StoreError> {
            self.0.load()
        }
    }

    #[test]
    fn redb_store_keeps_what_was_committed() {
        let dir = scratch("redb");
        exercise(&mut Committing(RedbStore::open(&dir).expect("open")));
        // Reopened (a new process): the committed state, nothing else.
        let s = RedbStore::open(&dir).expect("reopen");
        let st = s.load().expect("load");
        assert_eq!(st.tunnels.len(), 1);
        assert_eq!(st.sessions, vec![session(1, 10)]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Group commit: operations are not on disk until the commit, then all of them are, in
    /// one transaction; a process that dies before committing leaves the previous state.
    #[test]
    fn redb_store_group_commit_is_all_or_nothing() {
        let dir = scratch("group");
        let mut s = RedbStore::open(&dir).expect("open");
        s.put_tunnel(&tunnel(1)).expect("put");
        s.put_session(&session(1, 10)).expect("put");
        assert_eq!(s.pending(), 2);
        assert!(
            s.load().expect("load").tunnels.is_empty(),
            "not before the commit"
        );
        s.commit().expect("commit");
        assert_eq!(s.pending(), 0);
        assert_eq!(s.load().expect("load").sessions, vec![session(1, 10)]);
        // More operations, then the process dies without committing.
        s.put_session(&session(1, 11)).expect("put");
        s.remove_tunnel(1).expect("rm");
        drop(s);
        let mut s = RedbStore::open(&dir).expect("reopen");
        let st = s.load().expect("load");
        assert_eq!(st.tunnels, vec![tunnel(1)]);
        assert_eq!(st.sessions, vec![session(1, 10)]);
        // Removing a tunnel removes its sessions, and only its own.
        s.put_tunnel(&tunnel(2)).expect("put");
        s.put_session(&session(2, 10)).expect("put");
        s.remove_tunnel(1).expect("rm");
        s.commit().expect("commit");
        let st = s.load().expect("load");
        assert_eq!(st.tunnels, vec![tunnel(2)]);
        assert_eq!(st.sessions, vec![session(2, 10)]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A store written by l2xdpd before format 2 (JSON documents, the session's `app` a JSON
    /// value) is read whole and migrated: the next open reads format 2 only.
    #[test]
    fn a_json_format_1_store_is_migrated() {
        let dir = scratch("migrate");
        let (t, mut s) = (tunnel(1), session(1, 10));
        {
            let st = RedbStore::open(&dir).expect("open");
            let txn = st.db.begin_write().expect("begin");
            {
                let json = |v: serde_json::Value| serde_json::to_vec(&v).expect("json");
                let mut tunnels = txn.open_table(TUNNELS).expect("table");
                tunnels
                    .insert(
                        1,
                        json(serde_json::json!({"format": 1, "record": t})).as_slice(),
                    )
                    .expect("insert");
                let mut sessions = txn.open_table(SESSIONS).expect("table");
                let mut record = serde_json::to_value(&s).expect("value");
                record["app"] = serde_json::json!({"ppp": null, "client_user": "u"});
                sessions
                    .insert(
                        (1, 10),
                        json(serde_json::json!({"format": 1, "record": record})).as_slice(),
                    )
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let opened = RedbStore::open_checked(&dir, OnDamagedStore::Refuse).expect("migrated");
        assert!(opened.damage.is_none());
        let st = opened.store.expect("store").load().expect("load");
        assert_eq!(st.tunnels, vec![t.clone()]);
        assert_eq!(st.sessions.len(), 1);
        // The app's JSON value kept as its text, for the node to read (`AppData::decode`).
        let app: serde_json::Value = serde_json::from_slice(&st.sessions[0].app).expect("json");
        assert_eq!(app, serde_json::json!({"ppp": null, "client_user": "u"}));
        s.app = st.sessions[0].app.clone();
        assert_eq!(st.sessions, vec![s.clone()]);
        // On disk: format 2 now.
        let st = RedbStore::open(&dir).expect("reopen");
        let txn = st.db.begin_read().expect("begin");
        let v = txn
            .open_table(TUNNELS)
            .expect("t")
            .get(1)
            .expect("get")
            .expect("row");
        assert_eq!(v.value()[0], codec::FORMAT);
        let v = txn
            .open_table(SESSIONS)
            .expect("s")
            .get((1, 10))
            .expect("get")
            .expect("row");
        assert_eq!(v.value()[0], codec::FORMAT);
        drop(txn);
        let loaded = st.load().expect("load");
        assert_eq!(loaded.tunnels, vec![t]);
        assert_eq!(loaded.sessions, vec![s]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A record of a format this l2xdpd does not know (a newer l2xdpd's, say) is refused at
    /// start-up, whatever `on_damaged_store` says, with what to do about it.
    #[test]
    fn another_format_is_refused_with_the_remedy() {
        let dir = scratch("newer");
        {
            let mut st = RedbStore::open(&dir).expect("open");
            st.put_tunnel(&tunnel(1)).expect("put");
            st.commit().expect("commit");
            let mut v = codec::encode(&tunnel(2)).expect("encode");
            v[0] = codec::FORMAT + 1;
            let txn = st.db.begin_write().expect("begin");
            txn.open_table(TUNNELS)
                .expect("table")
                .insert(2, v.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        for policy in [OnDamagedStore::StartEmpty, OnDamagedStore::Refuse] {
            let e = RedbStore::open_checked(&dir, policy).expect_err("refused");
            assert!(matches!(e, StoreError::Format { found: 3, .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("start the l2xdpd version that wrote it"),
                "{msg}"
            );
            assert!(msg.contains("move the file aside"), "{msg}");
        }
        assert!(dir.join(RedbStore::FILE).exists(), "left where it is");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn redb_store_refuses_another_format_and_ignores_orphans() {
        let dir = scratch("format");
        let mut s = RedbStore::open(&dir).expect("open");
        // An orphan session (its tunnel is not stored) is left out.
        s.put_session(&session(3, 1)).expect("put");
        s.commit().expect("commit");
        assert!(s.load().expect("load").sessions.is_empty());
        // Another format is refused, not misread.
        let txn = s.db.begin_write().expect("begin");
        txn.open_table(TUNNELS)
            .expect("table")
            .insert(9, br#"{"format":99,"record":{}}"#.as_slice())
            .expect("insert");
        txn.commit().expect("commit");
        assert!(matches!(
            s.load(),
            Err(StoreError::Format { found: 99, .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
