//! `l2xdpd` as a process: started from a configuration file, a LAC (this crate's initiator
//! role) brings sessions up against it with PPP, the control socket reports them and clears
//! one, bad requests get error replies, SIGTERM stops it cleanly; `--check` refuses a bad
//! configuration naming the line and field. l2xdpd in the initiator role (`[initiator]`)
//! opens its tunnels and sessions against another l2xdpd, and one more through its control
//! socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::driver::Driver;
use l2xdp_controlplane::l2tp::{CallParams, L2tpConfig, Peer};
use l2xdp_controlplane::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_wire::l2tp::header::Version;
use serde_json::Value;

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn ask(sock: &Path, req: &str) -> Value {
    let mut s = UnixStream::connect(sock).expect("control socket");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s.write_all(format!("{req}\n").as_bytes()).expect("write");
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).expect("reply");
    serde_json::from_str(&line).expect("a JSON reply")
}

fn start(dir: &Path, port: u16) -> Daemon {
    std::fs::create_dir_all(dir).expect("dir");
    let users = dir.join("users");
    let mut u = String::from("# user password [address]\n");
    for i in 0..6 {
        u.push_str(&format!("user{i} pw{i}\n"));
    }
    std::fs::write(&users, u).expect("users");
    let cfg = dir.join("l2xdpd.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
listen = ["127.0.0.1:{port}"]
control_socket = "{sock}"

[dataplane]
mode = "memory"

[l2tp]
host_name = "lns-under-test"

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
dns = ["192.0.2.53"]

[users]
file = "{users}"
"#,
            sock = dir.join("ctl.sock").display(),
            users = users.display()
        ),
    )
    .expect("config");
    spawn(dir, &cfg)
}

/// Starts l2xdpd with the configuration `cfg`, its control socket `<dir>/ctl.sock`, and waits
/// until that answers.
fn spawn(dir: &Path, cfg: &Path) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_l2xdpd"))
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start l2xdpd");
    let d = Daemon {
        child,
        dir: dir.to_path_buf(),
    };
    let t = Instant::now();
    // Ready when the control socket accepts a connection (the file alone is not enough).
    while UnixStream::connect(dir.join("ctl.sock")).is_err() {
        assert!(
            t.elapsed() < LIMIT,
            "l2xdpd did not open its control socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_serves_a_lac_and_the_operator() {
    let dir = std::env::temp_dir().join(format!("l2xdpd-test-{}", std::process::id()));
    let port = free_udp_port();
    let mut daemon = start(&dir, port);
    let sock = dir.join("ctl.sock");

    // The LAC: 2 tunnels × 3 sessions, PPP with CHAP.
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
    let mut tunnels = Vec::new();
    for _ in 0..2 {
        tunnels.push(
            lac.open_tunnel(peer, Version::V2)
                .await
                .expect("running")
                .expect("open"),
        );
    }
    let mut up = 0;
    let mut tunnels_up = 0;
    let mut n = 0;
    tokio::time::timeout(LIMIT, async {
        while up < 6 {
            match events.recv().await.expect("events") {
                NodeEvent::TunnelUp { .. } => {
                    tunnels_up += 1;
                    if tunnels_up == 2 {
                        for &t in &tunnels {
                            for _ in 0..3 {
                                let auth = ClientAuth {
                                    user: format!("user{n}"),
                                    password: format!("pw{n}").into_bytes(),
                                };
                                n += 1;
                                lac.open_session(t, CallParams::default(), Some(auth))
                                    .await
                                    .expect("running")
                                    .expect("open session");
                            }
                        }
                    }
                }
                NodeEvent::PppUp { .. } => up += 1,
                e @ (NodeEvent::SessionDown { .. } | NodeEvent::AuthFailed { .. }) => {
                    panic!("unexpected {e:?}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("6 sessions with PPP up");

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
    // SAFETY: sending a signal to our own child.
    unsafe { libc_kill(daemon.child.id() as i32, 15) };
    let status = daemon.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "control socket removed on exit");
}

#[test]
fn check_refuses_a_bad_config_with_line_and_field() {
    let dir = std::env::temp_dir().join(format!("l2xdpd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("bad.toml");
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
    let _ = std::fs::remove_dir_all(&dir);
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Waits (bounded) until `done` holds for the `status` reply's data; returns it.
fn status_when(sock: &Path, done: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let s = ask(sock, r#"{"cmd":"status"}"#);
        assert_eq!(s["ok"], true, "{s}");
        if done(&s["data"]) || t.elapsed() > LIMIT {
            return s["data"].clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn daemon_in_the_initiator_role_opens_its_sessions() {
    let base = std::env::temp_dir().join(format!("l2xdpd-init-{}", std::process::id()));
    let port = free_udp_port();
    let _lns = start(&base.join("lns"), port);
    let lns_sock = base.join("lns").join("ctl.sock");

    // The LAC: l2xdpd with [initiator], 2 tunnels × 2 PPP sessions as user0..user3, the
    // passwords from its users file (which has user4 too, and no user9).
    let dir = base.join("lac");
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users");
    let u: String = (0..5).map(|i| format!("user{i} pw{i}\n")).collect();
    std::fs::write(&users, u).expect("users");
    let cfg = dir.join("lac.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
listen = ["127.0.0.1:{lac_port}"]
control_socket = "{sock}"

[l2tp]
host_name = "lac"

[ppp]
auth = ["chap"]

[users]
file = "{users}"

[initiator]
peer = "127.0.0.1:{port}"
version = 2
tunnels = 2
sessions = 2
"#,
            lac_port = free_udp_port(),
            sock = dir.join("ctl.sock").display(),
            users = users.display(),
        ),
    )
    .expect("config");
    let _lac = spawn(&dir, &cfg);
    let lac_sock = dir.join("ctl.sock");
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
    let r = ask(
        &lac_sock,
        &format!(r#"{{"cmd":"open_session","tunnel":{t},"n":9}}"#),
    );
    assert_eq!(r["ok"], false, "{r}");
    let r = ask(&lac_sock, r#"{"cmd":"open_session","tunnel":1,"n":0}"#);
    assert_eq!(r["ok"], false, "no such tunnel: {r}");
    let lns = status_when(&lns_sock, |d| d["ppp_up"] == 5);
    assert_eq!(lns["ppp_up"], 5, "{lns}");
    let _ = std::fs::remove_dir_all(&base);
}
