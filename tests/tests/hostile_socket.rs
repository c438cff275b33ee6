//! Hostile use of l2xdpd's control socket and metrics endpoint (issue 15, item 3), against
//! the real `l2xdpd` and `l2xdpctl` processes (memory fast path, loopback, no kernel fast
//! path): a line longer than the limit, more connections than the cap, an idle and a
//! trickling client, a user who is not allowed (a child running as uid 65534), the socket path
//! naming a regular file / a live socket / a stale one, l2xdpd started with umask 000, and fd
//! exhaustion through connections to the metrics port (RLIMIT_NOFILE lowered) after which
//! `l2xdpctl` still works; an unknown `control_socket_group` (`--check` and start-up). Each case
//! asserts the exact answer.
//!
//! Runs as root (uid 65534 is taken with `setuid`; the fd limit with `prlimit`). The idle
//! cases wait for l2xdpd's idle limit (10 s); time limits here only bound a hung run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use l2xdp_lab::cp::l2xdpd::{self, ask, free_udp_port, Files, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use serde_json::{json, Value};

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);
/// `control::Limits::default()`.
const MAX_CONNECTIONS: usize = 32;
const MAX_LINE: usize = 64 * 1024;
const NOBODY: u32 = 65534;

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running l2xdpd (memory mode on a free loopback port), its files and log.
struct Daemon {
    d: L2xdpd,
    files: Files,
    log: PathBuf,
    metrics: u16,
}

/// The configuration: `extra_daemon` lines in `[daemon]`, and `[metrics]` on a free port.
fn config(dir: &Path, extra_daemon: &str) -> (Files, u16) {
    let metrics = free_tcp_port();
    let base = format!(
        r#"[daemon]
{extra_daemon}

[l2tp]
host_name = "lns-hostile-socket"

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]

[metrics]
listen = "127.0.0.1:{metrics}"
"#
    );
    let port = free_udp_port().expect("a free port");
    let files = l2xdpd::write_config(
        dir,
        Path::new("base.toml"),
        &base,
        Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
        2,
    )
    .expect("config");
    (files, metrics)
}

fn start(dir: &Path, extra_daemon: &str) -> Daemon {
    let (files, metrics) = config(dir, extra_daemon);
    let log = dir.join("l2xdpd.log");
    let d = L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        Some(&log),
    );
    Daemon {
        d,
        files,
        log,
        metrics,
    }
}

fn log_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Waits (bounded) until the log holds `needle`.
fn wait_log(p: &Path, needle: &str) {
    let end = Instant::now() + LIMIT;
    while !log_text(p).contains(needle) {
        assert!(
            Instant::now() < end,
            "{} never logged {needle:?}:\n{}",
            p.display(),
            log_text(p)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for l2xdpd to exit; its status code and log.
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

/// Runs l2xdpctl (as `uid` when given); its exit code, stdout and stderr.
fn ctl(sock: &Path, uid: Option<u32>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(l2xdp_lab::workspace_binary("l2xdpctl"));
    c.arg("--socket").arg(sock).args(args);
    if let Some(u) = uid {
        c.uid(u).gid(u);
    }
    let out = c.output().expect("run l2xdpctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s
}

/// One reply line, parsed.
fn reply(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).expect("read");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// The connection is closed by l2xdpd (EOF, or a reset after unread input).
fn assert_closed(r: &mut BufReader<UnixStream>) {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

fn hello(s: &UnixStream) -> Value {
    (&*s).write_all(b"{\"cmd\":\"hello\"}\n").expect("write");
    reply(&mut BufReader::new(s.try_clone().expect("clone")))
}

#[test]
fn a_line_longer_than_the_limit_is_answered_and_the_connection_closed() {
    let dir = Scratch::plain("hostile-sock-line");
    let mut d = start(&dir.dir, "");
    let s = connect(d.files.control_socket.as_path());
    // 1 MiB without a newline: l2xdpd reads 64 KiB + 1, answers and closes. Our writes
    // beyond that may fail (EPIPE): ignored, the reply is what counts.
    let w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let _ = (&w).write_all(&vec![b'x'; 1 << 20]);
    });
    let mut r = BufReader::new(s);
    assert_eq!(
        reply(&mut r),
        json!({"v": 1, "ok": false, "kind": "bad_request",
               "error": format!("bad request: line longer than {MAX_LINE} bytes; closing the connection")})
    );
    assert_closed(&mut r);
    writer.join().expect("writer");
    // A line of exactly the limit is read and answered (`{}` and blanks: no command).
    let s = connect(d.files.control_socket.as_path());
    let mut line = vec![b' '; MAX_LINE - 2];
    line.splice(0..0, *b"{}");
    line.truncate(MAX_LINE);
    line.push(b'\n');
    (&s).write_all(&line).expect("write");
    let v = reply(&mut BufReader::new(s.try_clone().expect("clone")));
    assert_eq!(v["kind"], "bad_request", "{v}");
    assert_eq!(
        v["error"],
        "bad request: missing field `cmd` at line 1 column 2"
    );
    // And the same connection still serves.
    assert_eq!(hello(&s)["data"]["protocol"], 1);
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn connections_beyond_the_cap_are_refused_and_served_again_once_below() {
    let dir = Scratch::plain("hostile-sock-conns");
    let mut d = start(&dir.dir, "");
    let sock = d.files.control_socket.clone();
    let held: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let s = connect(&sock);
            assert_eq!(hello(&s)["ok"], true);
            s
        })
        .collect();
    let extra = connect(&sock);
    let mut r = BufReader::new(extra);
    assert_eq!(
        reply(&mut r),
        json!({"v": 1, "ok": false, "kind": "refused",
               "error": format!("too many control connections ({MAX_CONNECTIONS} at a time); try again")})
    );
    assert_closed(&mut r);
    let (code, _, err) = ctl(&sock, None, &["show", "tunnels"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "l2xdpctl: too many control connections ({MAX_CONNECTIONS} at a time); try again\n"
        )
    );
    drop(held);
    // The slots come back as l2xdpd sees the connections end (bounded wait).
    let end = Instant::now() + LIMIT;
    loop {
        let (code, out, err) = ctl(&sock, None, &["--json", "show", "tunnels"]);
        if code == 0 {
            assert_eq!(out.trim(), "[]");
            break;
        }
        assert!(Instant::now() < end, "never served again: {err}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn an_idle_or_trickling_client_is_cut_off() {
    let dir = Scratch::plain("hostile-sock-idle");
    let mut d = start(&dir.dir, "");
    let sock = d.files.control_socket.clone();
    let idle_reply = json!({"v": 1, "ok": false, "kind": "bad_request",
                            "error": "idle for 10 s: closing the connection"});
    // Silent after a first request.
    let idle = connect(&sock);
    assert_eq!(hello(&idle)["ok"], true);
    // Half a request, never finished.
    let trickle = connect(&sock);
    (&trickle).write_all(b"{\"cmd\":\"hel").expect("write");
    for s in [idle, trickle] {
        let mut r = BufReader::new(s);
        assert_eq!(reply(&mut r), idle_reply);
        assert_closed(&mut r);
    }
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn a_user_outside_the_group_cannot_connect_and_is_refused_by_credentials() {
    let dir = Scratch::plain("hostile-sock-uid");
    let mut d = start(&dir.dir, "");
    let sock = d.files.control_socket.clone();
    let m = std::fs::metadata(&sock).expect("stat");
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o7777, 0o660);
    // uid 65534 cannot open the socket: mode 0660, owned by root.
    let (code, out, err) = ctl(&sock, Some(NOBODY), &["show", "tunnels"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(
        err,
        format!(
            "l2xdpctl: permission denied on {}: the control socket is for root and members of [daemon] control_socket_group\n",
            sock.display()
        )
    );
    // An operator opens the file mode by mistake: the peer credentials still refuse it.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let (code, out, err) = ctl(&sock, Some(NOBODY), &["clear", "tunnel", "1"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(
        err,
        "l2xdpctl: permission denied: uid 65534 is not root or l2xdpd's user (no [daemon] control_socket_group)\n"
    );
    assert!(log_text(&d.log).contains(
        "WARN l2xdp_controlplane::control::listener: control connection refused why=permission denied: uid 65534 is not root or l2xdpd's user (no [daemon] control_socket_group) suppressed=0"
    ), "{}", log_text(&d.log));
    // Root still is served.
    assert_eq!(ask(&sock, r#"{"cmd":"tunnels"}"#)["data"], json!([]));
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn a_member_of_the_control_socket_group_is_served() {
    let dir = Scratch::plain("hostile-sock-group");
    let mut d = start(&dir.dir, "control_socket_group = \"nogroup\"");
    let sock = d.files.control_socket.clone();
    let m = std::fs::metadata(&sock).expect("stat");
    assert_eq!(
        std::os::unix::fs::MetadataExt::gid(&m),
        NOBODY,
        "group nogroup"
    );
    assert_eq!(m.permissions().mode() & 0o7777, 0o660);
    let (code, out, err) = ctl(&sock, Some(NOBODY), &["--json", "show", "tunnels"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn umask_000_still_gives_mode_0660() {
    let dir = Scratch::plain("hostile-sock-umask");
    let (files, _) = config(&dir.dir, "");
    let log = dir.dir.join("l2xdpd.log");
    let mut cmd = Command::new(l2xdp_lab::workspace_binary("l2xdpd"));
    cmd.arg("--config")
        .arg(&files.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    // SAFETY: umask and prctl are async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn l2xdpd");
    let end = Instant::now() + LIMIT;
    while UnixStream::connect(&files.control_socket).is_err() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "{}",
            log_text(&log)
        );
        assert!(Instant::now() < end, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&files.control_socket)
        .expect("stat")
        .permissions()
        .mode();
    let (code, _, err) = ctl(
        &files.control_socket,
        Some(NOBODY),
        &["clear", "tunnel", "1"],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(mode & 0o7777, 0o660);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("l2xdpctl: permission denied on "), "{err}");
}

#[test]
fn a_regular_file_at_the_socket_path_is_refused_and_kept() {
    let dir = Scratch::plain("hostile-sock-file");
    let (files, _) = config(&dir.dir, "");
    std::fs::write(&files.control_socket, "not a socket: keep me\n").expect("write");
    let log = dir.dir.join("l2xdpd.log");
    let mut d = L2xdpd::spawn(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        Some(&log),
    )
    .expect("spawn");
    let (code, text) = exit_of(&mut d, &log);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.ends_with(&format!(
            "l2xdpd: control socket {}: the path exists and is not a socket (a regular file); refusing to replace it — remove it or set another [daemon] control_socket\n",
            files.control_socket.display()
        )),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&files.control_socket).expect("kept"),
        "not a socket: keep me\n"
    );
}

#[test]
fn a_live_socket_is_refused_and_a_stale_one_replaced() {
    let dir = Scratch::plain("hostile-sock-live");
    let (files, _) = config(&dir.dir, "");
    // Stale: bound then closed, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&files.control_socket).expect("stale"));
    let log = dir.dir.join("l2xdpd.log");
    let mut first = L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        Some(&log),
    );
    assert!(log_text(&log).contains("replacing a stale control socket"));
    // A second l2xdpd with the same socket (another UDP port).
    let second_dir = dir.dir.join("second");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let (mut second_files, _) = config(&second_dir, "");
    let text = std::fs::read_to_string(&second_files.config)
        .expect("config")
        .replace(
            &second_files.control_socket.display().to_string(),
            &files.control_socket.display().to_string(),
        );
    std::fs::write(&second_files.config, text).expect("write");
    second_files.control_socket = files.control_socket.clone();
    let log2 = second_dir.join("l2xdpd.log");
    let mut second = L2xdpd::spawn(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &second_files,
        Some(&log2),
    )
    .expect("spawn");
    let (code, text) = exit_of(&mut second, &log2);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.ends_with(&format!(
            "l2xdpd: control socket {}: another process listens on it (is l2xdpd already running?)\n",
            files.control_socket.display()
        )),
        "{text}"
    );
    // The first one still serves.
    assert_eq!(ask(&files.control_socket, r#"{"cmd":"hello"}"#)["ok"], true);
    assert_eq!(first.stop().code(), Some(0));
}

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count()
}

#[test]
fn fd_exhaustion_through_the_metrics_port_does_not_end_the_control_socket() {
    let dir = Scratch::plain("hostile-sock-fds");
    let mut d = start(&dir.dir, "");
    let pid = d.d.pid();
    // Room for 4 more descriptors.
    let limit = (fds(pid) + 4) as u64;
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: sets a limit of our own child.
    let r = unsafe {
        libc::prlimit(
            i32::try_from(pid).expect("pid"),
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
    // 40 metrics clients that send nothing: l2xdpd runs out of descriptors.
    let clients: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", d.metrics)).expect("connect"))
        .collect();
    wait_log(&d.log, "metrics accept failed; retrying");
    // l2xdpctl meanwhile: connected (the backlog), not accepted yet.
    let ctl_child = Command::new(l2xdp_lab::workspace_binary("l2xdpctl"))
        .arg("--socket")
        .arg(&d.files.control_socket)
        .args(["--json", "show", "tunnels"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("l2xdpctl");
    wait_log(&d.log, "control socket accept failed; retrying");
    assert!(log_text(&d.log).contains("Too many open files"));
    // The metrics clients go away; the control socket serves the waiting l2xdpctl.
    drop(clients);
    let out = ctl_child.wait_with_output().expect("l2xdpctl");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // And the metrics endpoint serves again.
    let mut m = TcpStream::connect(("127.0.0.1", d.metrics)).expect("metrics");
    m.set_read_timeout(Some(LIMIT)).expect("timeout");
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut body = String::new();
    m.read_to_string(&mut body).expect("read");
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn metrics_refuses_an_oversized_request_and_caps_connections() {
    let dir = Scratch::plain("hostile-sock-metrics");
    let mut d = start(&dir.dir, "");
    // A head past 8 KiB without its blank line: 400.
    let mut m = TcpStream::connect(("127.0.0.1", d.metrics)).expect("metrics");
    m.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut req = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 9000));
    let _ = m.write_all(&req);
    let mut body = String::new();
    let _ = m.read_to_string(&mut body);
    assert_eq!(
        body,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n"
    );
    // 16 silent clients take every slot: a 17th is not served until one goes.
    let mut held: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", d.metrics)).expect("connect"))
        .collect();
    // Make sure l2xdpd accepted them (each is being read): it has 16 more descriptors.
    let mut waiting = TcpStream::connect(("127.0.0.1", d.metrics)).expect("connect");
    waiting
        .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("write");
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut b = [0u8; 1];
    let early = waiting.read(&mut b);
    assert!(
        early
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the 17th connection was served while 16 were held: {early:?}"
    );
    held.truncate(15);
    waiting.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut body = String::new();
    waiting.read_to_string(&mut body).expect("read");
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.contains("\nl2xdp_state_store_damaged_total{kind=\"corrupt\"} 0\n"));
    drop(held);
    assert_eq!(d.d.stop().code(), Some(0));
}

#[test]
fn an_unknown_control_socket_group_is_refused_by_check_and_at_start() {
    let dir = Scratch::plain("hostile-sock-nogroup");
    let (files, _) = config(&dir.dir, "control_socket_group = \"no-such-group-l2xdp\"");
    let out = Command::new(l2xdp_lab::workspace_binary("l2xdpd"))
        .arg("--check")
        .arg("--config")
        .arg(&files.config)
        .output()
        .expect("l2xdpd --check");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "l2xdpd: {}: daemon.control_socket_group: no group named \"no-such-group-l2xdp\"\n",
            files.config.display()
        )
    );
    let log = dir.dir.join("l2xdpd.log");
    let mut d = L2xdpd::spawn(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        Some(&log),
    )
    .expect("spawn");
    let (code, text) = exit_of(&mut d, &log);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.ends_with(
            "l2xdpd: [daemon] control_socket_group: no group named \"no-such-group-l2xdp\"\n"
        ),
        "{text}"
    );
    assert!(!files.control_socket.exists());
}
