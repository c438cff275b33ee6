//! `l2xdpd` as a process: started from a configuration file, a LAC (this crate's initiator
//! role) brings sessions up against it with PPP, the control socket reports them and clears
//! one, bad requests get error replies, SIGTERM stops it cleanly; `--check` refuses a bad
//! configuration naming the line and field.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use l2xdp_controlplane::driver::Driver;
use l2xdp_controlplane::l2tp::{L2tpConfig, Peer};
use l2xdp_controlplane::lab::bring_up;
use l2xdp_controlplane::lab::l2xdpd::{self, ask, free_udp_port, L2xdpd, Placement};
use l2xdp_controlplane::node::{Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::lab::scratch::Scratch;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_wire::l2tp::header::Version;

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
    L2xdpd::start(None, Path::new(env!("CARGO_BIN_EXE_l2xdpd")), &files, None)
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
            seed: 7,
        },
        Box::new(MemoryDataPlane::new()),
    );
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let driver = Driver::new(
        node,
        vec![L2tpSocket::bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind")],
    )
    .expect("driver")
    .with_events(tx);
    let (lac, task) = driver.spawn();
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
    let out = Command::new(env!("CARGO_BIN_EXE_l2xdpd"))
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.toml:5:"), "{err}");
    assert!(err.contains("ppp.mru"), "{err}");
}
