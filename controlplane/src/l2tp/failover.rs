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
//! are not persisted: RFC 4951 §3.3 Step I clears them after a failover anyway.
//!
//! The file-backed store ([`DirStore`]) keeps one small JSON file per tunnel and per session
//! and replaces a file by writing a temporary file, `fsync`ing it, renaming it over the old one
//! and `fsync`ing the directory: a crash leaves either the old or the new version, never a torn
//! one. Leftover temporary files are ignored and deleted by [`StateStore::load`].

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use l2xdp_wire::datapath::SessionKey;
use l2xdp_wire::l2tp::header::{Transport, Version};

use super::{CallKind, FailoverCapability, Peer, ProxyValues, ResultCode, SessionUp, TunnelId};

/// Version of the persisted format; [`StateStore::load`] refuses other versions.
pub const STATE_FORMAT: u32 = 1;

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
    /// magic numbers, MRU), set with [`super::Registry::set_session_app_data`].
    pub app: serde_json::Value,
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
}

impl Default for RecoveryState {
    fn default() -> Self {
        RecoveryState {
            format: STATE_FORMAT,
            tunnels: Vec::new(),
            sessions: Vec::new(),
        }
    }
}

/// An update of the persisted state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StoreOp {
    /// Write (or replace) a tunnel.
    PutTunnel(Box<TunnelRecord>),
    /// Forget a tunnel and its sessions.
    RemoveTunnel(u32),
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
    /// A record does not decode.
    #[error("{path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// A record of another format version.
    #[error("{path}: format {found}, expected {STATE_FORMAT}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
}

/// Where the failover state is kept.
pub trait StateStore {
    /// Writes or replaces a tunnel record.
    fn put_tunnel(&mut self, t: &TunnelRecord) -> Result<(), StoreError>;
    /// Forgets a tunnel and all its sessions.
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError>;
    /// Writes or replaces a session record.
    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError>;
    /// Forgets a session.
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError>;
    /// Everything stored (sessions of unknown tunnels are left out).
    fn load(&self) -> Result<RecoveryState, StoreError>;

    /// Applies one operation from [`FailoverEvent::Store`].
    fn apply(&mut self, op: &StoreOp) -> Result<(), StoreError> {
        match op {
            StoreOp::PutTunnel(t) => self.put_tunnel(t),
            StoreOp::RemoveTunnel(id) => self.remove_tunnel(*id),
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
        })
    }
}

#[derive(Serialize, Deserialize)]
struct FileRecord<T> {
    format: u32,
    record: T,
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// A store in a directory: `t-<tunnel>.json` and `s-<tunnel>-<session>.json`, each replaced
/// atomically (temporary file, fsync, rename, fsync of the directory).
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

const TMP_PREFIX: &str = ".tmp-";

impl DirStore {
    /// A store in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            op: "create directory",
            path: dir.clone(),
            source,
        })?;
        Ok(DirStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
        move |source| StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        let d = fs::File::open(&self.dir).map_err(Self::io("open directory", &self.dir))?;
        d.sync_all().map_err(Self::io("fsync directory", &self.dir))
    }

    fn write<T: Serialize>(&self, name: &str, record: &T) -> Result<(), StoreError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}"));
        let bytes = serde_json::to_vec(&FileRecord {
            format: STATE_FORMAT,
            record,
        })
        .map_err(|source| StoreError::Decode {
            path: path.clone(),
            source,
        })?;
        {
            let mut f = fs::File::create(&tmp).map_err(Self::io("create", &tmp))?;
            f.write_all(&bytes).map_err(Self::io("write", &tmp))?;
            f.sync_all().map_err(Self::io("fsync", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(Self::io("rename", &path))?;
        self.sync_dir()
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io("remove", &path)(e)),
        }
    }

    fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
        let bytes = fs::read(path).map_err(Self::io("read", path))?;
        let decode = |source| StoreError::Decode {
            path: path.to_path_buf(),
            source,
        };
        let f: FormatOnly = serde_json::from_slice(&bytes).map_err(decode)?;
        if f.format != STATE_FORMAT {
            return Err(StoreError::Format {
                path: path.to_path_buf(),
                found: f.format,
            });
        }
        let r: FileRecord<T> = serde_json::from_slice(&bytes).map_err(decode)?;
        Ok(r.record)
    }

    fn names(&self) -> Result<Vec<String>, StoreError> {
        let rd = fs::read_dir(&self.dir).map_err(Self::io("read directory", &self.dir))?;
        let mut v = Vec::new();
        for e in rd {
            let e = e.map_err(Self::io("read directory", &self.dir))?;
            if let Some(n) = e.file_name().to_str() {
                v.push(n.to_owned());
            }
        }
        v.sort();
        Ok(v)
    }
}

impl StateStore for DirStore {
    fn put_tunnel(&mut self, t: &TunnelRecord) -> Result<(), StoreError> {
        self.write(&format!("t-{}.json", t.id), t)
    }
    fn remove_tunnel(&mut self, id: u32) -> Result<(), StoreError> {
        // The tunnel first: sessions without their tunnel are ignored by `load`.
        self.delete(&format!("t-{id}.json"))?;
        let prefix = format!("s-{id}-");
        for n in self.names()? {
            if n.starts_with(&prefix) {
                self.delete(&n)?;
            }
        }
        Ok(())
    }
    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        self.write(&format!("s-{}-{}.json", s.tunnel, s.id), s)
    }
    fn remove_session(&mut self, tunnel: u32, session: u32) -> Result<(), StoreError> {
        self.delete(&format!("s-{tunnel}-{session}.json"))
    }
    fn load(&self) -> Result<RecoveryState, StoreError> {
        let mut st = RecoveryState::default();
        for n in self.names()? {
            let path = self.dir.join(&n);
            if n.starts_with(TMP_PREFIX) {
                // A write interrupted by a crash: the previous version is still in place.
                let _ = fs::remove_file(&path);
            } else if n.starts_with("t-") && n.ends_with(".json") {
                st.tunnels.push(Self::read(&path)?);
            } else if n.starts_with("s-") && n.ends_with(".json") {
                st.sessions.push(Self::read(&path)?);
            }
        }
        let ids: std::collections::HashSet<u32> = st.tunnels.iter().map(|t| t.id).collect();
        st.sessions.retain(|s| ids.contains(&s.tunnel));
        Ok(st)
    }
}

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
        /// The caller's data.
        app: serde_json::Value,
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

    fn tunnel(id: u32) -> TunnelRecord {
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

    fn session(tunnel: u32, id: u32) -> SessionRecord {
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
            app: serde_json::json!({"ip": "10.0.0.1", "mru": 1492}),
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

    #[test]
    fn dir_store_replaces_atomically_and_ignores_leftovers() {
        let dir = std::env::temp_dir().join(format!("l2xdp-failover-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut s = DirStore::open(&dir).expect("open");
        exercise(&mut s);
        // A crash during a write leaves a temporary file: ignored and removed.
        fs::write(dir.join(".tmp-t-5.json"), b"{\"format\":1,\"rec").expect("write");
        // An orphan session (its tunnel was removed first) is ignored.
        s.put_session(&session(3, 1)).expect("put");
        let st = s.load().expect("load");
        assert_eq!(st.tunnels.len(), 1);
        assert_eq!(st.sessions.len(), 1);
        assert!(!dir.join(".tmp-t-5.json").exists());
        // Another format is refused, not misread.
        fs::write(dir.join("t-9.json"), b"{\"format\":99,\"record\":{}}").expect("write");
        assert!(matches!(
            s.load(),
            Err(StoreError::Format { found: 99, .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
