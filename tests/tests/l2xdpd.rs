//! `l2xdpd` as a process: started from a configuration file, a LAC (this crate's initiator
//! role) brings sessions up against it with PPP, the control socket reports them and clears
//! one, bad requests get error replies, SIGTERM stops it cleanly; `--check` refuses a bad
//! configuration naming the line and field. l2xdpd in the initiator role (`[initiator]`)
//! opens its tunnels and sessions against another l2xdpd, and one more through its control
//! socket.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use l2xdp_controlplane::l2tp::{L2tpConfig, Peer};
use l2xdp_controlplane::node::{Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_lab::cp::bring_up;
use l2xdp_lab::cp::l2xdpd::{self, ask, free_udp_port, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use l2xdp_wire::l2tp::header::Version;
use serde_json::Value;

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);

/// l2xdpd on `127.0.0.1:port`, in-memory fast path, CHAP against 6 users, its files in `dir`.
fn start(dir: &Path, port: u16) -> L2xdpd {
    let base = r#"[l2tp]
host_name = "lns-under-test"

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
dns = ["192.0.2.53"]
"#;
    let files = l2xdpd::write_config(
        dir,
        Path::new("base.toml"),
        base,
        Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
        6,
    )
    .expect("config");
    L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_serves_a_lac_and_the_operator() {
    let dir = Scratch::plain("l2xdpd-test");
    let port = free_udp_port().expect("a free port");
    let mut daemon = start(&dir.dir, port);
    let sock = daemon.socket().to_path_buf();

    // The LAC: 2 tunnels × 3 sessions, PPP with CHAP (users user0..user5).
    let node = Node::new(
        NodeConfig {
            l2tp: L2tpConfig::default(),
            ppp: Arc::new(PppConfig::default()),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: Default::default(),
            random: l2xdp_controlplane::random::Random::from_os().expect("entropy"),
        },
        Box::new(MemoryDataPlane::new()),
    );
    let (lac, mut events, task) = l2xdp_tests::cp::spawn_lac(node);
    let peer = Peer::udp(format!("127.0.0.1:{port}").parse().expect("addr"));
    bring_up(&lac, &mut events, LIMIT, peer, Version::V2, 2, 3).await;

    // The operator's view.
    let s = ask(&sock, r#"{"cmd":"status"}"#);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["data"]["tunnels"], 2, "{s}");
    assert_eq!(s["data"]["sessions"], 6, "{s}");
    assert_eq!(s["data"]["ppp_up"], 6, "{s}");
    assert_eq!(s["data"]["installed"], 6, "{s}");
    let t = ask(&sock, r#"{"cmd":"tunnels"}"#);
    assert_eq!(t["data"].as_array().map(Vec::len), Some(2), "{t}");
    assert_eq!(t["data"][0]["state"], "Established", "{t}");
    let one = ask(&sock, r#"{"cmd":"sessions","user":"user4"}"#);
    let rows = one["data"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 1, "{one}");
    assert_eq!(rows[0]["ppp"], "Network", "{one}");
    assert!(rows[0]["ipv4"]
        .as_str()
        .is_some_and(|a| a.starts_with("100.64.0.")));

    // Clearing a session sends a CDN the LAC sees.
    let (tunnel, session) = (
        rows[0]["tunnel"].as_u64().expect("tunnel"),
        rows[0]["session"].as_u64().expect("session"),
    );
    let c = ask(
        &sock,
        &format!(r#"{{"cmd":"clear_session","tunnel":{tunnel},"session":{session}}}"#),
    );
    assert_eq!(c["ok"], true, "{c}");
    tokio::time::timeout(LIMIT, async {
        loop {
            if let NodeEvent::SessionDown { .. } = events.recv().await.expect("events") {
                break;
            }
        }
    })
    .await
    .expect("the LAC saw the CDN");
    let s = ask(&sock, r#"{"cmd":"status"}"#);
    assert_eq!(s["data"]["sessions"], 5, "{s}");
    assert_eq!(s["data"]["installed"], 5, "{s}");

    // Errors are replies, not dropped connections.
    let bad = ask(&sock, r#"{"cmd":"nonsense"}"#);
    assert_eq!(bad["ok"], false);
    assert!(bad["error"]
        .as_str()
        .is_some_and(|e| e.contains("nonsense")));
    let bad = ask(&sock, "not json");
    assert_eq!(bad["ok"], false);
    let bad = ask(&sock, r#"{"cmd":"clear_tunnel","tunnel":999999}"#);
    assert_eq!(bad["ok"], false, "{bad}");

    // SIGTERM: a clean exit that removes the control socket.
    lac.shutdown().await;
    let _ = task.await;
    let status = daemon.stop();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "control socket removed on exit");
}

#[test]
fn check_refuses_a_bad_config_with_line_and_field() {
    let dir = Scratch::plain("l2xdpd-check");
    let cfg = dir.dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n\n[ppp]\nmru = \"big\"\n",
    )
    .expect("write");
    let out = Command::new(l2xdp_lab::workspace_binary("l2xdpd"))
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.toml:5:"), "{err}");
    assert!(err.contains("ppp.mru"), "{err}");
}

/// Waits (bounded) until `done` holds for the `status` reply's data; returns that data.
fn status_when(sock: &Path, done: impl Fn(&Value) -> bool) -> Value {
    l2xdpd::status_when(sock, LIMIT, Duration::from_millis(20), done)["data"].clone()
}

#[test]
fn daemon_in_the_initiator_role_opens_its_sessions() {
    let scratch = Scratch::plain("l2xdpd-init");
    let port = free_udp_port().expect("a free port");
    let (lns_dir, dir) = (scratch.dir.join("lns"), scratch.dir.join("lac"));
    for d in [&lns_dir, &dir] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let lns_d = start(&lns_dir, port);
    let lns_sock = lns_d.socket().to_path_buf();

    // The LAC: l2xdpd with [initiator], 2 tunnels × 2 PPP sessions as user0..user3, the
    // passwords from its users file (which has user4 too, and no user9).
    let base = format!(
        r#"[l2tp]
host_name = "lac"

[ppp]
auth = ["chap"]

[initiator]
peer = "127.0.0.1:{port}"
version = 2
tunnels = 2
sessions = 2
"#
    );
    let files = l2xdpd::write_config(
        &dir,
        Path::new("lac.toml"),
        &base,
        Placement::memory(SocketAddr::from((
            [127, 0, 0, 1],
            free_udp_port().expect("a free port"),
        ))),
        5,
    )
    .expect("config");
    let lac_d = L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        None,
    );
    let lac_sock = lac_d.socket().to_path_buf();
    let lac = status_when(&lac_sock, |d| d["ppp_up"] == 4);
    assert_eq!(
        (&lac["tunnels"], &lac["sessions"], &lac["ppp_up"]),
        (&2.into(), &4.into(), &4.into()),
        "{lac}"
    );
    let lns = status_when(&lns_sock, |d| d["ppp_up"] == 4);
    assert_eq!(lns["sessions"], 4, "{lns}");
    let users_up: Vec<Value> = ask(&lns_sock, r#"{"cmd":"sessions"}"#)["data"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["user"].clone())
        .collect();
    for i in 0..4 {
        assert!(
            users_up.contains(&format!("user{i}").into()),
            "{users_up:?}"
        );
    }

    // One more through the control socket: session 4 (user4); session 9 has no user.
    let t = ask(&lac_sock, r#"{"cmd":"tunnels"}"#)["data"][0]["tunnel"].clone();
    let r = ask(
        &lac_sock,
        &format!(r#"{{"cmd":"open_session","tunnel":{t},"n":4}}"#),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["data"]["tunnel"], t, "{r}");
    let r = ask(
        &lac_sock,
        &format!(r#"{{"cmd":"open_session","tunnel":{t},"n":9}}"#),
    );
    assert_eq!(r["kind"], "not_found", "no user9: {r}");
    let r = ask(&lac_sock, r#"{"cmd":"open_session","tunnel":1,"n":0}"#);
    assert_eq!(r["kind"], "not_found", "no such tunnel: {r}");
    let lns = status_when(&lns_sock, |d| d["ppp_up"] == 5);
    assert_eq!(lns["ppp_up"], 5, "{lns}");
}
