//! A damaged RFC 4951 failover store (`failover.redb`) under the real `l2xdpd` (issue 15,
//! item 4): truncated, bit-flipped, 0-byte, a record that does not decode, and a store l2xdpd
//! cannot write (it runs as uid 65534, the file is root's). Each case: no panic (l2xdpd runs,
//! or exits 1 when told to refuse), the exact log line, the file moved aside byte for byte
//! (never deleted), the metric counted, and service continuing: a LAC (this crate's initiator
//! role) brings a new tunnel and PPP session up.
//!
//! The stores are real: a first l2xdpd persists a LAC's tunnel and sessions and is killed
//! (SIGKILL), then the file is damaged and l2xdpd started again. Runs as root (uid 65534 via
//! `setuid`). Time limits only bound a hung run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::failover::{codec, RedbStore, StateStore};
use l2xdp_controlplane::l2tp::{FailoverCapability, Peer};
use l2xdp_controlplane::node::{Node, NodeEvent};
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_lab::cp::bring_up;
use l2xdp_lab::cp::l2xdpd::{self, ask, free_udp_port, Files, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use l2xdp_wire::l2tp::header::Version;

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);
const NOBODY: u32 = 65534;
const FILE: &str = "failover.redb";
/// The store's sessions table (`l2xdp_controlplane::l2tp::failover`).
const SESSIONS: redb::TableDefinition<(u32, u32), &[u8]> = redb::TableDefinition::new("sessions");

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Setup {
    files: Files,
    port: u16,
    metrics: u16,
    log: PathBuf,
}

impl Setup {
    fn store(&self) -> PathBuf {
        self.files.state_dir.join(FILE)
    }
}

/// l2xdpd's configuration in `dir`: failover C and D, `[metrics]`, `daemon` lines added.
fn configure(dir: &Path, daemon: &str) -> Setup {
    let metrics = free_tcp_port();
    let port = free_udp_port().expect("a free port");
    let base = format!(
        r#"[daemon]
{daemon}

[l2tp]
host_name = "lns-hostile-store"
# The RFC 4951 recovery is what these tests check after a restart (tests/resume.rs: resume).
resume = false

[l2tp.failover]
control = true
data = true
recovery_time_ms = 10000

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]

[metrics]
listen = "127.0.0.1:{metrics}"
"#
    );
    let files = l2xdpd::write_config(
        dir,
        Path::new("base.toml"),
        &base,
        Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
        4,
    )
    .expect("config");
    Setup {
        files,
        port,
        metrics,
        log: dir.join("l2xdpd.log"),
    }
}

fn start(s: &Setup) -> L2xdpd {
    L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &s.files,
        Some(&s.log),
    )
}

fn log_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A LAC with the same Failover Capability brings `tunnels` × 1 PPP sessions up against
/// `port`; its tunnel count as l2xdpd reports it afterwards.
async fn lac_brings_up(port: u16, sock: &Path, tunnels: usize) -> u64 {
    lac_sees(port, sock, tunnels, 0).await.0
}

/// [`lac_brings_up`] (l2xdpd having `before` PPP sessions up already), and the Failover
/// Capability l2xdpd advertised to the LAC (RFC 4951 §5.1: the AVP of its SCCRP, as the LAC
/// decoded it), the same on every tunnel.
async fn lac_sees(
    port: u16,
    sock: &Path,
    tunnels: usize,
    before: u64,
) -> (u64, Option<FailoverCapability>) {
    let node = Node::new(
        l2xdp_tests::cp::lac_config(true),
        Box::new(MemoryDataPlane::new()),
    );
    let (lac, mut events, task) = l2xdp_tests::cp::spawn_lac(node);
    let peer = Peer::udp(format!("127.0.0.1:{port}").parse().expect("addr"));
    bring_up(&lac, &mut events, LIMIT, peer, Version::V2, tunnels, 1).await;
    let s = ask(sock, r#"{"cmd":"status"}"#);
    assert_eq!(s["data"]["ppp_up"], before + tunnels as u64, "{s}");
    let seen: Vec<Option<FailoverCapability>> = lac
        .inspect(|n| n.registry().tunnels().map(|t| t.peer_failover()).collect())
        .await
        .expect("the LAC runs");
    task.abort();
    assert_eq!(seen.len(), tunnels, "{seen:?}");
    assert!(seen.iter().all(|f| *f == seen[0]), "{seen:?}");
    (s["data"]["tunnels"].as_u64().expect("tunnels"), seen[0])
}

/// The Failover Capability of the configuration ([`configure`]), with or without its C bit.
fn ours(control: bool) -> Option<FailoverCapability> {
    Some(FailoverCapability {
        control,
        data: true,
        recovery_time_ms: 10000,
    })
}

/// A store holding one tunnel with one PPP session (l2xdpd killed with it up).
async fn populated(dir: &Path, daemon: &str) -> (Setup, Vec<u8>) {
    let s = configure(dir, daemon);
    let mut d = start(&s);
    assert_eq!(lac_brings_up(s.port, &s.files.control_socket, 1).await, 1);
    d.kill_9();
    let bytes = std::fs::read(s.store()).expect("the store");
    assert!(bytes.len() > 4096, "{}", bytes.len());
    let _ = std::fs::remove_file(&s.log);
    (s, bytes)
}

/// The files moved aside in the state directory.
fn aside(s: &Setup) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(&s.files.state_dir)
        .expect("state dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("failover.redb.damaged-"))
        })
        .collect();
    v.sort();
    v
}

/// The value of the damaged-store counter of `kind` on the metrics endpoint.
fn damaged_metric(port: u16, kind: &str) -> String {
    let mut m = TcpStream::connect(("127.0.0.1", port)).expect("metrics");
    m.set_read_timeout(Some(LIMIT)).expect("timeout");
    m.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("write");
    let mut body = String::new();
    m.read_to_string(&mut body).expect("read");
    let prefix = format!("l2xdp_state_store_damaged_total{{kind=\"{kind}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}in {body}"))
        .to_string()
}

/// The one ERROR line about the store.
fn damage_line(log: &Path) -> String {
    let text = log_text(log);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("failover store ") && l.contains(" is damaged ("))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains(" ERROR "), "{}", lines[0]);
    lines[0].to_string()
}

/// l2xdpd restarted over a damaged store that it moves aside: the log, the file moved
/// aside byte for byte, the metric, and a new tunnel served.
async fn survives(s: &Setup, damaged: &[u8], kind: &str, detail_starts: &str) {
    let mut d = start(s);
    let line = damage_line(&s.log);
    let store = s.store();
    let moved = aside(s);
    assert_eq!(moved.len(), 1, "{moved:?}");
    let head = format!(
        "failover store {} is damaged ({kind}): {detail_starts}",
        store.display()
    );
    assert!(line.contains(&head), "{line}\nexpected {head}");
    let tail = format!(
        "; moved aside to {}; kept 0 tunnels and 0 sessions; serving with a new store",
        moved[0].display()
    );
    assert!(line.contains(&tail), "{line}\nexpected {tail}");
    assert!(
        std::fs::read(&moved[0]).expect("moved") == damaged,
        "moved aside byte for byte"
    );
    assert_eq!(damaged_metric(s.metrics, kind), "1");
    // Nothing was recovered; a LAC's new tunnel is served.
    let f = ask(&s.files.control_socket, r#"{"cmd":"failover"}"#);
    assert_eq!(f["data"]["recoveries"], serde_json::json!([]), "{f}");
    assert_eq!(f["data"]["persisting"], true, "{f}");
    // With its new store it can recover: C is advertised (RFC 4951 §5.1).
    assert_eq!(
        lac_sees(s.port, &s.files.control_socket, 1, 0).await,
        (1, ours(true))
    );
    assert_eq!(d.stop().code(), Some(0));
    // And the new store is sound: the next start finds no damage.
    let _ = std::fs::remove_file(&s.log);
    let mut d = start(s);
    assert!(
        !log_text(&s.log).contains(" is damaged ("),
        "{}",
        log_text(&s.log)
    );
    assert_eq!(aside(s).len(), 1);
    assert_eq!(d.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_store_is_moved_aside_and_service_continues() {
    let dir = Scratch::plain("hostile-store-trunc");
    let (s, bytes) = populated(&dir.dir, "").await;
    let cut = bytes[..bytes.len() / 2].to_vec();
    std::fs::write(s.store(), &cut).expect("truncate");
    survives(&s, &cut, "corrupt", "redb panicked at ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bit_flipped_store_is_moved_aside_and_service_continues() {
    let dir = Scratch::plain("hostile-store-flip");
    let (s, mut bytes) = populated(&dir.dir, "").await;
    for i in (0..bytes.len()).step_by(97) {
        bytes[i] ^= 0x01;
    }
    std::fs::write(s.store(), &bytes).expect("flip");
    survives(&s, &bytes, "corrupt", "open ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_header_is_moved_aside_and_service_continues() {
    let dir = Scratch::plain("hostile-store-header");
    let (s, mut bytes) = populated(&dir.dir, "").await;
    bytes[0] ^= 0x80;
    std::fs::write(s.store(), &bytes).expect("flip");
    survives(&s, &bytes, "corrupt", "open ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_byte_store_is_damaged_not_a_silent_empty_start() {
    let dir = Scratch::plain("hostile-store-zero");
    let (s, _) = populated(&dir.dir, "").await;
    std::fs::write(s.store(), b"").expect("empty");
    survives(
        &s,
        b"",
        "empty",
        "the file is empty (0 bytes): the tunnels and sessions of the previous run are unknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_record_is_caught_by_the_page_checksums() {
    let dir = Scratch::plain("hostile-store-record");
    let (s, mut bytes) = populated(&dir.dir, "").await;
    // One byte of every copy of the session records (redb keeps older page copies too): valid-looking pages whose checksums no longer match. (A record that fails
    // to decode in a page whose checksum holds — kind `records`, its tunnel kept and recovered
    // — is a unit test of the controlplane: only a faulty writer makes one.)
    // The session records (read from a copy: opening a store writes to it).
    let probe = dir.dir.join("probe");
    std::fs::create_dir_all(&probe).expect("probe dir");
    std::fs::copy(s.store(), probe.join(RedbStore::FILE)).expect("copy");
    let needles: Vec<Vec<u8>> = RedbStore::open(&probe)
        .and_then(|st| st.load())
        .expect("the copy")
        .sessions
        .iter()
        // What every version of a session's record starts with (its IDs: the record's first
        // fields), so older copies are hit too.
        .map(|r| codec::encode(&(r.tunnel, r.id, r.peer_id)).expect("encode"))
        .collect();
    assert!(!needles.is_empty());
    let mut hits = 0;
    for needle in &needles {
        for i in 0..bytes.len().saturating_sub(needle.len()) {
            if bytes[i..i + needle.len()] == needle[..] {
                // The first byte after the format byte.
                bytes[i + 1] ^= 0x40;
                hits += 1;
            }
        }
    }
    assert!(hits >= 1, "no session record found");
    std::fs::write(s.store(), &bytes).expect("damage");
    survives(
        &s,
        &bytes,
        "corrupt",
        &format!(
            "open {}: DB corrupted: Failed to repair database. All roots are corrupted",
            s.store().display()
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_leaves_a_truncated_store_alone_and_exits_1() {
    let dir = Scratch::plain("hostile-store-refuse");
    let (s, bytes) = populated(&dir.dir, "on_damaged_store = \"refuse\"").await;
    let cut = bytes[..bytes.len() / 3].to_vec();
    std::fs::write(s.store(), &cut).expect("truncate");
    let mut d = L2xdpd::spawn(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &s.files,
        Some(&s.log),
    )
    .expect("spawn");
    let (code, text) = exit_of(&mut d, &s.log);
    assert_eq!(code, Some(1), "{text}");
    let last = text.lines().last().unwrap_or_default();
    let head = format!(
        "l2xdpd: failover state: {} is damaged (corrupt): redb panicked at ",
        s.store().display()
    );
    assert!(last.starts_with(&head), "{last}");
    assert!(
        last.ends_with("; not starting ([daemon] on_damaged_store = \"refuse\"; \"start-empty\" moves it aside and starts with an empty store)"),
        "{last}"
    );
    // No panic message of Rust's own (`thread 'main' panicked at`): redb's was caught.
    assert!(!text.contains("thread '"), "{text}");
    assert!(
        std::fs::read(s.store()).expect("kept") == cut,
        "left as it was"
    );
    assert!(aside(&s).is_empty());
}

fn exit_of(d: &mut L2xdpd, log: &Path) -> (Option<i32>, String) {
    let end = Instant::now() + LIMIT;
    loop {
        if let Some(st) = d.exited() {
            return (st.code(), log_text(log));
        }
        assert!(Instant::now() < end, "l2xdpd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// l2xdpd as uid 65534 over `s` (whose directory it may write, not its state directory).
fn spawn_as_nobody(s: &Setup) -> Child {
    let dir = s.files.config.parent().expect("dir");
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).expect("chown");
    let mut cmd = Command::new(l2xdp_lab::workspace_binary("l2xdpd"));
    cmd.arg("--config")
        .arg(&s.files.config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&s.log).expect("log"))
        .uid(NOBODY)
        .gid(NOBODY);
    // SAFETY: prctl is async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().expect("spawn l2xdpd")
}

/// A root-owned store l2xdpd (uid 65534) can read but not write.
async fn unwritable(dir: &Path, daemon: &str) -> (Setup, Vec<u8>) {
    let (s, bytes) = populated(dir, daemon).await;
    let _ = std::fs::remove_file(&s.files.control_socket);
    (s, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_serves_without_failover_and_says_so() {
    let dir = Scratch::plain("hostile-store-ro");
    let (s, bytes) = unwritable(&dir.dir, "").await;
    let mut child = spawn_as_nobody(&s);
    let end = Instant::now() + LIMIT;
    while std::os::unix::net::UnixStream::connect(&s.files.control_socket).is_err() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "{}",
            log_text(&s.log)
        );
        assert!(Instant::now() < end, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = damage_line(&s.log);
    let head = format!(
        "failover store {} is damaged (unwritable): open {}: ",
        s.store().display(),
        s.store().display()
    );
    assert!(line.contains(&head), "{line}");
    assert!(
        line.contains("Permission denied (os error 13); left where it is; kept 0 tunnels and 0 sessions; serving WITHOUT a failover store: tunnels set up now are not recovered after a restart"),
        "{line}"
    );
    assert_eq!(damaged_metric(s.metrics, "unwritable"), "1");
    let f = ask(&s.files.control_socket, r#"{"cmd":"failover"}"#);
    assert_eq!(f["data"]["persisting"], false, "{f}");
    // RFC 4951 §5.1: without a store it cannot recover a control channel, so no C bit (D
    // and the Recovery Time as configured), in its SCCRPs and in what it reports.
    assert_eq!(f["data"]["ours"]["control"], false, "{f}");
    assert_eq!(
        lac_sees(s.port, &s.files.control_socket, 1, 0).await,
        (1, ours(false))
    );
    // And after a reload of the same file, still none.
    let r = ask(&s.files.control_socket, r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        lac_sees(s.port, &s.files.control_socket, 1, 1).await,
        (2, ours(false))
    );
    assert!(
        std::fs::read(s.store()).expect("untouched") == bytes,
        "untouched"
    );
    assert!(aside(&s).is_empty());
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_with_refuse_exits_1() {
    let dir = Scratch::plain("hostile-store-ro-refuse");
    let (s, bytes) = unwritable(&dir.dir, "on_damaged_store = \"refuse\"").await;
    let mut child = spawn_as_nobody(&s);
    let end = Instant::now() + LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < end, "l2xdpd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = log_text(&s.log);
    assert_eq!(status.code(), Some(1), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "l2xdpd: failover state: {p} is damaged (unwritable): open {p}: I/O error: Permission denied (os error 13); not starting ([daemon] on_damaged_store = \"refuse\"; \"start-empty\" moves it aside and starts with an empty store)",
            p = s.store().display()
        )
    );
    assert!(
        std::fs::read(s.store()).expect("untouched") == bytes,
        "untouched"
    );
}

/// What a record-damaged store keeps is recovered with the peer (RFC 4951 §3): the tunnel and
/// the session whose record decodes; the record that does not is named in the log (by its
/// key: our tunnel and session IDs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_decode_is_skipped_and_the_rest_recovered() {
    let dir = Scratch::plain("hostile-store-salvage");
    let s = configure(&dir.dir, "");
    let mut d = start(&s);
    let node = Node::new(
        l2xdp_tests::cp::lac_config(true),
        Box::new(MemoryDataPlane::new()),
    );
    let (lac, mut events, task) = l2xdp_tests::cp::spawn_lac(node);
    let peer = Peer::udp(format!("127.0.0.1:{}", s.port).parse().expect("addr"));
    bring_up(&lac, &mut events, LIMIT, peer, Version::V2, 1, 2).await;
    let sessions = ask(&s.files.control_socket, r#"{"cmd":"sessions"}"#);
    let rows = sessions["data"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 2, "{sessions}");
    let lost = (
        u32::try_from(rows[1]["tunnel"].as_u64().expect("tunnel")).expect("u32"),
        u32::try_from(rows[1]["session"].as_u64().expect("session")).expect("u32"),
    );
    d.kill_9();

    // One session record no longer decodes (its page checksums are right: written by redb):
    // the current format's byte, then a record cut short.
    const DAMAGED_RECORD: [u8; 4] = [codec::FORMAT, 0x81, 0x80, 0x80];
    {
        let db = redb::Database::create(s.store()).expect("open the store");
        let txn = db.begin_write().expect("begin");
        txn.open_table(SESSIONS)
            .expect("table")
            .insert(lost, DAMAGED_RECORD.as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    let _ = std::fs::remove_file(&s.log);

    let mut d = start(&s);
    let line = damage_line(&s.log);
    let moved = aside(&s);
    assert_eq!(moved.len(), 1, "{moved:?}");
    // Moved aside as redb left it after opening it (a commit of its own: not byte for byte),
    // the damaged record in it.
    {
        let db = redb::Database::create(&moved[0]).expect("open the moved store");
        let txn = db.begin_read().expect("begin");
        let t = txn.open_table(SESSIONS).expect("table");
        let v = t.get(lost).expect("get").expect("the damaged record");
        assert_eq!(v.value(), DAMAGED_RECORD.as_slice());
    }
    let head = format!(
        "failover store {} is damaged (records): session {}/{}: {}: ",
        s.store().display(),
        lost.0,
        lost.1,
        s.store().display()
    );
    assert!(line.contains(&head), "{line}\nexpected {head}");
    let tail = format!(
        "; moved aside to {}; kept 1 tunnels and 1 sessions; serving with a new store",
        moved[0].display()
    );
    assert!(line.contains(&tail), "{line}\nexpected {tail}");
    assert_eq!(damaged_metric(s.metrics, "records"), "1");

    // l2xdpd recovers the tunnel with the session it kept (RFC 4951 §3: recovery tunnel,
    // control channel reset, FSQ/FSR for the kept session).
    let end = Instant::now() + LIMIT;
    let f = loop {
        let f = ask(&s.files.control_socket, r#"{"cmd":"failover"}"#);
        if f["data"]["recoveries"][0]["outcome"] != "recovering" {
            break f;
        }
        assert!(Instant::now() < end, "recovery did not end: {f}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let r = &f["data"]["recoveries"];
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{f}");
    assert_eq!(r[0]["outcome"], "recovered", "{f}");
    assert_eq!(r[0]["sessions"], 1, "{f}");
    assert_eq!(r[0]["tunnel"], lost.0, "{f}");
    assert_eq!(f["data"]["counters"]["tunnel recovered"], 1, "{f}");
    // The LAC saw nothing go down: its tunnel carries on. (Its session whose record was lost
    // is not cleared: l2xdpd cannot name the LAC's session ID any more, RFC 4951 §3.3 FSQ and
    // a CDN both need it; it ends when the LAC's PPP keepalives go unanswered.)
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(
                e,
                NodeEvent::TunnelDown { .. } | NodeEvent::SessionDown { .. }
            ),
            "{e:?}"
        );
    }
    let st = ask(&s.files.control_socket, r#"{"cmd":"status"}"#);
    assert_eq!(
        (&st["data"]["tunnels"], &st["data"]["sessions"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{st}"
    );
    task.abort();
    assert_eq!(d.stop().code(), Some(0));
}
