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
use std::net::SocketAddr;
use std::path::PathBuf;

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
        source: Box<::redb::Error>,
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

pub mod codec;
mod damage;
mod redb;
pub use self::damage::{damaged_counts, DamageKind, OnDamagedStore, Opened, StoreDamage};
pub use self::redb::RedbStore;

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
mod tests;
