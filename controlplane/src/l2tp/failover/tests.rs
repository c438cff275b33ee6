//! Tests of the failover records, [`MemoryStore`] and [`RedbStore`].

use std::fs;

use super::redb::{SESSIONS, TUNNELS};
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
    let dir = std::env::temp_dir().join(format!("l2xdp-failover-{name}-{}", std::process::id()));
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
