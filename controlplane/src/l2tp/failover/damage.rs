//! A damaged failover store at start-up ([`RedbStore::open_checked`]): never a panic, never a
//! crash loop, never a silent empty start.
//!
//! What is found in the state directory, and what happens (with
//! `[daemon] on_damaged_store = "start-empty"`, the default):
//!
//! | found                                     | [`DamageKind`] | then                                   |
//! |-------------------------------------------|----------------|----------------------------------------|
//! | no `failover.redb`                        | —              | a new store (a first start)            |
//! | a 0-byte `failover.redb`                  | `empty`        | moved aside, a new store               |
//! | a file redb refuses or panics on (truncated, overwritten, bit flips in its pages) | `corrupt` | moved aside, a new store |
//! | a database some of whose records do not decode, or that redb's integrity check had to repair | `records` | what decodes is kept (into a new store: the tunnels it names are recovered, RFC 4951 §3), the file moved aside |
//! | a file or directory l2xdpd cannot write (permissions, read-only file system) | `unwritable` | **no store**: l2xdpd serves without RFC 4951 failover until restarted with a writable one |
//!
//! "Moved aside" is a rename to `failover.redb.damaged-<unix seconds>` in the same directory:
//! never deleted, kept for inspection. When even that rename fails, l2xdpd also serves without
//! a store. Each case is counted ([`damaged_counts`]: the metric
//! `l2xdp_state_store_damaged_total{kind}`) and logged at ERROR by the caller
//! (`daemon::store`). With `on_damaged_store = "refuse"` each is an error instead
//! ([`StoreError::Damaged`]) and nothing is moved.
//!
//! Telling the peers: the tunnels a damaged store still names (`records`) go through the
//! normal RFC 4951 recovery (§3): the peer keeps the tunnel and the sessions whose records
//! decoded. A session whose record did not decode is named in the log (its key holds our
//! tunnel and session IDs) but not cleared with the peer: an FSQ (§3.3) or a CDN needs the
//! peer's session ID, which was in the lost record; the peer clears it when its keepalives go
//! unanswered. A store that cannot be read at all names no tunnel: its peers learn when their
//! Hellos go unanswered (RFC 2661 §6.5) — a StopCCN needs the tunnel's sequence numbers, which
//! were in the lost file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::redb::{SESSIONS, TUNNELS};
use super::{RecoveryState, RedbStore, StateStore, StoreError, StoreOp};

/// `[daemon] on_damaged_store`: what l2xdpd does with a damaged or unusable failover store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDamagedStore {
    /// Log, count, move the file aside and serve with an empty store (what can be read kept).
    #[default]
    StartEmpty,
    /// Refuse to start.
    Refuse,
}

/// What was wrong with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DamageKind {
    /// A 0-byte file.
    Empty,
    /// redb refused to open it, or panicked.
    Corrupt,
    /// Some records could not be read.
    Records,
    /// It cannot be written.
    Unwritable,
}

impl DamageKind {
    const ALL: [DamageKind; 4] = [
        DamageKind::Empty,
        DamageKind::Corrupt,
        DamageKind::Records,
        DamageKind::Unwritable,
    ];

    /// The metric's label.
    pub fn label(self) -> &'static str {
        match self {
            DamageKind::Empty => "empty",
            DamageKind::Corrupt => "corrupt",
            DamageKind::Records => "records",
            DamageKind::Unwritable => "unwritable",
        }
    }
}

impl std::fmt::Display for DamageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Damaged stores met by this process, by kind (`l2xdp_state_store_damaged_total{kind}`).
pub fn damaged_counts() -> [(&'static str, u64); 4] {
    DamageKind::ALL.map(|k| (k.label(), COUNTS[k as usize].load(Ordering::Relaxed)))
}

/// A damaged store found at start-up and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDamage {
    /// What was wrong.
    pub kind: DamageKind,
    /// The database file.
    pub path: PathBuf,
    /// The details (redb's error, the records that did not decode).
    pub detail: String,
    /// Where the damaged file was moved (`None`: it stays where it was).
    pub moved_to: Option<PathBuf>,
    /// Tunnels and sessions read from it and kept.
    pub kept: (usize, usize),
    /// Whether l2xdpd has a store now (`false`: it serves without failover).
    pub store: bool,
}

impl std::fmt::Display for StoreDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failover store {} is damaged ({}): {}",
            self.path.display(),
            self.kind,
            self.detail
        )?;
        match &self.moved_to {
            Some(p) => write!(f, "; moved aside to {}", p.display())?,
            None => write!(f, "; left where it is")?,
        }
        write!(
            f,
            "; kept {} tunnels and {} sessions",
            self.kept.0, self.kept.1
        )?;
        if self.store {
            write!(f, "; serving with a new store")
        } else {
            write!(
                f,
                "; serving WITHOUT a failover store: tunnels set up now are not recovered after a restart"
            )
        }
    }
}

/// What [`RedbStore::open_checked`] found.
#[derive(Debug)]
pub struct Opened {
    /// The store (`None`: unusable, see `damage`).
    pub store: Option<RedbStore>,
    /// What was wrong, if anything.
    pub damage: Option<StoreDamage>,
}

/// How a store that did not open is treated.
enum Failure {
    /// Damage: handled per [`OnDamagedStore`].
    Damage(DamageKind, String),
    /// Not damage (another process holds it, another format): an error.
    Fatal(StoreError),
}

fn classify(e: StoreError) -> Failure {
    match e {
        StoreError::Db { ref source, .. } => match source.as_ref() {
            redb::Error::DatabaseAlreadyOpen | redb::Error::UpgradeRequired(_) => Failure::Fatal(e),
            redb::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Failure::Damage(DamageKind::Unwritable, e.to_string())
            }
            _ => Failure::Damage(DamageKind::Corrupt, e.to_string()),
        },
        StoreError::Io { ref source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Failure::Damage(DamageKind::Unwritable, e.to_string())
        }
        StoreError::Decode { .. } => Failure::Damage(DamageKind::Records, e.to_string()),
        e => Failure::Fatal(e),
    }
}

/// Runs `f`, turning a panic into its message (printed nowhere: the caller logs it).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let msg = Arc::new(Mutex::new(None::<String>));
    let m = msg.clone();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // One line: "panicked at FILE:LINE:COL: MESSAGE".
        let text = info.to_string().replace('\n', " ");
        *m.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
    }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(prev);
    r.map_err(|_| {
        let m = msg
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match m {
            Some(m) if m.starts_with("panicked at ") => format!("redb {m}"),
            Some(m) => format!("redb panicked: {m}"),
            None => "redb panicked".into(),
        }
    })
}

/// What could be read: the state and what could not.
struct Read {
    store: RedbStore,
    state: RecoveryState,
    problems: Vec<String>,
}

/// Opens the store in `dir` and reads every record it can, under [`guarded`].
fn open_and_read(dir: &Path) -> Result<Read, StoreError> {
    let mut store = RedbStore::open(dir)?;
    let mut problems = Vec::new();
    // Checksums of every page: damage a clean shutdown would otherwise not reveal.
    if !store
        .db
        .check_integrity()
        .map_err(|e| store.err("check integrity", e))?
    {
        problems.push("redb's integrity check found damage and repaired the file".to_string());
    }
    let mut state = RecoveryState::default();
    let mut legacy = 0;
    {
        let txn = store.db.begin_read().map_err(|e| store.err("begin", e))?;
        let tunnels = txn
            .open_table(TUNNELS)
            .map_err(|e| store.err("open table", e))?;
        for row in tunnels.iter().map_err(|e| store.err("read", e))? {
            match row {
                Ok((k, v)) => match store.decode_record(v.value()) {
                    Ok(t) => {
                        legacy += usize::from(t.legacy);
                        state.tunnels.push(t.record);
                    }
                    Err(e @ StoreError::Format { .. }) => return Err(e),
                    Err(e) => problems.push(format!("tunnel {}: {e}", k.value())),
                },
                Err(e) => {
                    problems.push(format!("reading the tunnels: {e}"));
                    break;
                }
            }
        }
        let ids: std::collections::HashSet<u32> = state.tunnels.iter().map(|t| t.id).collect();
        let sessions = txn
            .open_table(SESSIONS)
            .map_err(|e| store.err("open table", e))?;
        for row in sessions.iter().map_err(|e| store.err("read", e))? {
            match row {
                Ok((k, v)) => {
                    let (t, s) = k.value();
                    if !ids.contains(&t) {
                        continue;
                    }
                    match store.decode_record(v.value()) {
                        Ok(r) => {
                            legacy += usize::from(r.legacy);
                            state.sessions.push(r.record);
                        }
                        Err(e @ StoreError::Format { .. }) => return Err(e),
                        Err(e) => problems.push(format!("session {t}/{s}: {e}")),
                    }
                }
                Err(e) => {
                    problems.push(format!("reading the sessions: {e}"));
                    break;
                }
            }
        }
    }
    if legacy > 0 && problems.is_empty() {
        migrate(&mut store, &state)?;
        tracing::info!(
            path = %store.path.display(),
            records = legacy,
            tunnels = state.tunnels.len(),
            sessions = state.sessions.len(),
            "failover store migrated from format 1 (JSON) to format {}",
            super::STATE_FORMAT
        );
    }
    Ok(Read {
        store,
        state,
        problems,
    })
}

/// Rewrites every record of `state` in the current format, in one transaction (format 1
/// records are read, never written: the next restart reads the new format).
fn migrate(store: &mut RedbStore, state: &RecoveryState) -> Result<(), StoreError> {
    for t in &state.tunnels {
        store.put_tunnel(t)?;
    }
    for s in &state.sessions {
        store.put_session(s)?;
    }
    store.commit()
}

/// `path` renamed to `<path>.damaged-<unix seconds>` (`-N` added if taken).
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{}.damaged-{secs}", path.display());
    let mut to = PathBuf::from(&base);
    let mut n = 1;
    while to.exists() {
        to = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &to)?;
    Ok(to)
}

fn summary(problems: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = problems[..problems.len().min(SHOWN)].join("; ");
    if problems.len() > SHOWN {
        s.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    s
}

impl RedbStore {
    /// Opens the store in `dir` as [`RedbStore::open`] does, reads it whole (its first
    /// [`StateStore::load`] returns what was read), and deals with damage as the module
    /// documentation says. `Err` for what is not damage (the file held by another process,
    /// another format) and, with [`OnDamagedStore::Refuse`], for damage
    /// ([`StoreError::Damaged`]).
    pub fn open_checked(
        dir: impl AsRef<Path>,
        policy: OnDamagedStore,
    ) -> Result<Opened, StoreError> {
        let dir = dir.as_ref();
        let path = dir.join(Self::FILE);
        let empty = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0);
        let (kind, detail, salvage) = if empty {
            (
                DamageKind::Empty,
                "the file is empty (0 bytes): the tunnels and sessions of the previous run are unknown".to_string(),
                None,
            )
        } else {
            match guarded(|| open_and_read(dir)) {
                Ok(Ok(r)) if r.problems.is_empty() => {
                    *r.store
                        .preloaded
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r.state);
                    return Ok(Opened {
                        store: Some(r.store),
                        damage: None,
                    });
                }
                Ok(Ok(r)) => {
                    let d = summary(&r.problems);
                    // Closed before it is moved (a damaged file may upset redb's drop too).
                    let state = r.state;
                    let _ = guarded(move || drop(r.store));
                    (DamageKind::Records, d, Some(state))
                }
                Ok(Err(e)) => match classify(e) {
                    Failure::Fatal(e) => return Err(e),
                    Failure::Damage(k, d) => (k, d, None),
                },
                Err(panic) => (DamageKind::Corrupt, panic, None),
            }
        };
        COUNTS[kind as usize].fetch_add(1, Ordering::Relaxed);
        if policy == OnDamagedStore::Refuse {
            return Err(StoreError::Damaged { path, kind, detail });
        }
        let mut damage = StoreDamage {
            kind,
            path: path.clone(),
            detail,
            moved_to: None,
            kept: (0, 0),
            store: false,
        };
        if kind == DamageKind::Unwritable {
            return Ok(Opened {
                store: None,
                damage: Some(damage),
            });
        }
        match move_aside(&path) {
            Ok(to) => damage.moved_to = Some(to),
            Err(e) => {
                damage
                    .detail
                    .push_str(&format!("; cannot move it aside: {e}"));
                return Ok(Opened {
                    store: None,
                    damage: Some(damage),
                });
            }
        }
        let mut store = match guarded(|| RedbStore::open(dir)) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                damage.detail.push_str(&format!("; a new store: {e}"));
                return Ok(Opened {
                    store: None,
                    damage: Some(damage),
                });
            }
            Err(p) => {
                damage.detail.push_str(&format!("; a new store: {p}"));
                return Ok(Opened {
                    store: None,
                    damage: Some(damage),
                });
            }
        };
        if let Some(state) = salvage {
            damage.kept = (state.tunnels.len(), state.sessions.len());
            let ops: Vec<StoreOp> = state
                .tunnels
                .iter()
                .map(|t| StoreOp::PutTunnel(Box::new(t.clone())))
                .chain(
                    state
                        .sessions
                        .iter()
                        .map(|s| StoreOp::PutSession(Box::new(s.clone()))),
                )
                .collect();
            for op in &ops {
                store.apply(op)?;
            }
            store.commit()?;
            *store
                .preloaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state);
        }
        damage.store = true;
        Ok(Opened {
            store: Some(store),
            damage: Some(damage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{session, tunnel};
    use super::*;

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for Scratch {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    fn with_records(name: &str) -> (Scratch, PathBuf) {
        let dir = std::env::temp_dir().join(format!("l2xdp-damage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = RedbStore::open(&dir).expect("open");
        for i in 1..=3 {
            s.put_tunnel(&tunnel(i)).expect("put");
            s.put_session(&session(i, 10)).expect("put");
        }
        s.commit().expect("commit");
        drop(s);
        let p = dir.join(RedbStore::FILE);
        (Scratch(dir), p)
    }

    fn aside(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("failover.redb.damaged-"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_sound_store_is_read_once_at_open() {
        let (dir, _) = with_records("sound");
        let o = RedbStore::open_checked(&dir, OnDamagedStore::StartEmpty).expect("open");
        assert!(o.damage.is_none());
        let s = o.store.expect("store");
        assert_eq!(s.load().expect("load").tunnels.len(), 3);
        // Read from the file the second time: the same.
        assert_eq!(s.load().expect("load").sessions.len(), 3);
    }

    #[test]
    fn truncated_is_corrupt_moved_aside_and_replaced() {
        let (dir, p) = with_records("trunc");
        let len = std::fs::metadata(&p).expect("stat").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(len / 2))
            .expect("truncate");
        let o = RedbStore::open_checked(&dir, OnDamagedStore::StartEmpty).expect("no error");
        let d = o.damage.expect("damage");
        assert_eq!(d.kind, DamageKind::Corrupt);
        assert!(d.detail.starts_with("redb panicked"), "{}", d.detail);
        assert_eq!(aside(&dir).len(), 1);
        let s = o.store.expect("a new store");
        assert!(s.load().expect("load").tunnels.is_empty());
    }

    #[test]
    fn zero_bytes_is_empty_and_refuse_leaves_it() {
        let (dir, p) = with_records("zero");
        std::fs::write(&p, b"").expect("empty");
        let e = RedbStore::open_checked(&dir, OnDamagedStore::Refuse).expect_err("refused");
        assert!(
            matches!(
                e,
                StoreError::Damaged {
                    kind: DamageKind::Empty,
                    ..
                }
            ),
            "{e}"
        );
        assert!(aside(&dir).is_empty());
        assert_eq!(std::fs::metadata(&p).expect("kept").len(), 0);
        let o = RedbStore::open_checked(&dir, OnDamagedStore::StartEmpty).expect("start");
        assert_eq!(o.damage.expect("damage").kind, DamageKind::Empty);
        assert_eq!(aside(&dir).len(), 1);
        assert!(damaged_counts()[0].1 >= 2);
    }

    #[test]
    fn a_file_truncated_under_a_running_store_fails_commits_without_a_panic() {
        let (dir, p) = with_records("live");
        let mut s = RedbStore::open(&dir).expect("open");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(4096))
            .expect("truncate");
        let errors: Vec<String> = (10..20)
            .filter_map(|i| {
                s.put_tunnel(&tunnel(i)).expect("put");
                s.commit().err().map(|e| e.to_string())
            })
            .collect();
        assert_eq!(errors.len(), 10, "{errors:?}");
        assert_eq!(
            errors[0],
            format!(
                "insert {}: I/O error: failed to fill whole buffer",
                p.display()
            )
        );
        assert_eq!(
            errors[9],
            format!(
                "begin {}: Previous I/O error occurred. Please close and re-open the database.",
                p.display()
            )
        );
    }

    #[test]
    fn undecodable_records_are_skipped_and_the_rest_kept() {
        let (dir, _) = with_records("records");
        {
            let s = RedbStore::open(&dir).expect("open");
            let txn = s.db.begin_write().expect("begin");
            txn.open_table(TUNNELS)
                .expect("table")
                .insert(2, b"{\"format\":1,\"rec".as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        let o = RedbStore::open_checked(&dir, OnDamagedStore::StartEmpty).expect("start");
        let d = o.damage.expect("damage");
        assert_eq!(d.kind, DamageKind::Records);
        assert_eq!(d.kept, (2, 2));
        assert!(d.detail.starts_with("tunnel 2: "), "{}", d.detail);
        let s = o.store.expect("store");
        let st = s.load().expect("load");
        assert_eq!(
            st.tunnels.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![1, 3]
        );
        drop(s);
        // What was kept is in the new file.
        let s = RedbStore::open(&dir).expect("reopen");
        assert_eq!(s.load().expect("load").tunnels.len(), 2);
    }
}

/// The checked open loads what the plain open loads; with `N` sessions it also prints what
/// reading the whole store at start-up costs (no assertion on time). The measurement:
/// `N=100000 cargo test -p l2xdp-controlplane --release --lib measure_open_checked --
/// --nocapture` (1,000 sessions by default).
#[cfg(test)]
mod measure {
    use super::super::tests::{session, tunnel};
    use super::*;

    #[test]
    fn measure_open_checked() {
        let n: u32 = std::env::var("N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000);
        let dir = std::env::temp_dir().join(format!("l2xdp-measure-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = RedbStore::open(&dir).expect("open");
        for t in 0..(n / 1000).max(1) {
            s.put_tunnel(&tunnel(t + 1)).expect("put");
            for i in 0..1000 {
                s.put_session(&session(t + 1, i + 1)).expect("put");
            }
            s.commit().expect("commit");
        }
        drop(s);
        let size = std::fs::metadata(dir.join(RedbStore::FILE))
            .expect("stat")
            .len();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let s = RedbStore::open(&dir).expect("open");
            let plain = s.load().expect("load");
            let plain_t = t.elapsed();
            drop(s);
            let t = std::time::Instant::now();
            let o = RedbStore::open_checked(&dir, OnDamagedStore::StartEmpty).expect("open");
            let checked = o.store.expect("store").load().expect("load");
            let checked_t = t.elapsed();
            assert_eq!(plain.sessions.len(), checked.sessions.len());
            eprintln!(
                "{} sessions, {} MiB: open+load {plain_t:?}, open_checked+load {checked_t:?}",
                plain.sessions.len(),
                size >> 20,
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
