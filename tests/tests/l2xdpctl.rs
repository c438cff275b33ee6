//! `l2xdpctl` as a process against a running `l2xdpd` process, every subcommand in both
//! output formats (`--json` parsed with serde_json and checked against what the test set up;
//! the tables checked for the same ids), the error cases with their exit codes, and the
//! Prometheus endpoint scraped and parsed as Prometheus text.
//!
//! `operator_commands_against_a_running_daemon` (no root): l2xdpd in memory mode with RFC 4951
//! failover (C and D, state in a temporary directory) and `[metrics]`; a LAC (this crate's
//! initiator role, with the same Failover Capability) brings up 2 tunnels × 3 PPP sessions
//! with `l2xdp_lab::cp::bring_up`. Then: show tunnels/sessions/session, clear, failover
//! status and drill (every tunnel recovered, the same sessions after it, the LAC saw nothing
//! go down), config check (good, and bad naming line and field), config reload (a pool and a
//! user changed live with the sessions up; a refused field named, the running configuration
//! unchanged), completion scripts, and l2xdpctl against a socket nobody listens on.
//!
//! `show_stats_and_metrics_read_the_pinned_maps` (root): the fast-path object loaded with its
//! maps pinned in a bpffs of the test's own (nothing attached: no packet is involved), known
//! values written into the per-CPU counter maps, then `show stats` and the metrics endpoint of
//! an l2xdpd in XDP mode over those pins report exactly them.
//!
//! Time limits only bound a hung run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

use l2xdp_controlplane::driver::Driver;
use l2xdp_controlplane::l2tp::{CallParams, Peer};
use l2xdp_controlplane::node::{ClientAuth, Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_lab::cp::l2xdpd::{self, ask, free_udp_port, Files, L2xdpd, Placement};
use l2xdp_lab::cp::{bring_up, is_down, wait_for};
use l2xdp_lab::scratch::Scratch;
use l2xdp_wire::l2tp::header::Version;
use serde_json::Value;

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);
const TUNNELS: usize = 2;
const SESSIONS: usize = 3;
const N: usize = TUNNELS * SESSIONS;

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The daemon's configuration.
struct Setup {
    port: u16,
    metrics: u16,
    pool: &'static str,
    /// XDP mode over these pins; memory mode without.
    pins: Option<PathBuf>,
    failover: bool,
    /// `[l2tp] resume` (transparent resume; default on).
    resume: bool,
}

impl Setup {
    /// Memory mode on free loopback ports, a /24 pool (set `pins` for XDP mode).
    fn memory(failover: bool) -> Setup {
        Setup {
            port: free_udp_port().expect("a free port"),
            metrics: free_tcp_port(),
            pool: "100.64.0.0/24",
            pins: None,
            failover,
            resume: true,
        }
    }
}

/// What the test chooses of l2xdpd's configuration (`l2xdpd::write_config` sets the rest).
fn base_text(s: &Setup) -> String {
    format!(
        r#"[l2tp]
host_name = "lns-under-test"
resume = {resume}
{failover}
[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["{pool}"]

[metrics]
listen = "127.0.0.1:{metrics}"
per_session = true
"#,
        metrics = s.metrics,
        pool = s.pool,
        resume = s.resume,
        failover = if s.failover {
            "[l2tp.failover]\ncontrol = true\ndata = true\nrecovery_time_ms = 10000\n"
        } else {
            ""
        },
    )
}

/// A user added by the reload, with characters a Prometheus label value must escape.
const WEIRD_USER: &str = "o\"brien\\ops";
/// The users the reload adds.
const EXTRA: &[(&str, &str)] = &[(WEIRD_USER, "pw-new")];

/// Writes l2xdpd's configuration in `dir` (created if need be) for `s`, and its users file:
/// `user0`..`user<n-1>` and `extra` (user, password).
fn configure(dir: &Path, s: &Setup, n: usize, extra: &[(&str, &str)]) -> Files {
    std::fs::create_dir_all(dir).expect("dir");
    let at = Placement {
        listen: SocketAddr::from(([127, 0, 0, 1], s.port)),
        pins: s.pins.as_deref(),
    };
    let files = l2xdpd::write_config(dir, Path::new("base.toml"), &base_text(s), at, n)
        .expect("configuration");
    if !extra.is_empty() {
        let mut u = std::fs::read_to_string(&files.users).expect("users");
        for (user, pw) in extra {
            u.push_str(&format!("{user} {pw}\n"));
        }
        std::fs::write(&files.users, u).expect("users");
    }
    files
}

/// l2xdpd configured for `setup` with `n` users, its files in `dir`; waited until its
/// control socket and metrics endpoint accept connections.
fn start(dir: &Path, setup: &Setup, n: usize) -> L2xdpd {
    let files = configure(dir, setup, n, &[]);
    let d = L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        None,
    );
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", setup.metrics)).is_err() {
        assert!(
            t.elapsed() < LIMIT,
            "l2xdpd did not open its metrics endpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

/// Runs l2xdpctl; its exit code, stdout and stderr.
fn ctl(sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(l2xdp_lab::workspace_binary("l2xdpctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("run l2xdpctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs l2xdpctl with `--json` expecting exit code `code`; its parsed stdout.
fn ctl_json(sock: &Path, args: &[&str], code: i32) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (c, out, err) = ctl(sock, &a);
    assert_eq!(c, code, "l2xdpctl {args:?}: stdout {out} stderr {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("l2xdpctl {args:?}: {e}: {out}"))
}

/// Runs l2xdpctl (tables) expecting exit code `code`; its stdout (stderr on failure).
fn ctl_text(sock: &Path, args: &[&str], code: i32) -> String {
    let (c, out, err) = ctl(sock, args);
    assert_eq!(c, code, "l2xdpctl {args:?}: stdout {out} stderr {err}");
    if code == 0 {
        out
    } else {
        err
    }
}

/// Waits (bounded) until `done` holds for the data of `status`; that data.
fn status_when(sock: &Path, done: impl Fn(&Value) -> bool) -> Value {
    l2xdpd::status_when(sock, LIMIT, Duration::from_millis(20), done)["data"].clone()
}

// ---------------------------------------------------------------------------------------------
// Prometheus text.

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text exposition format 0.0.4 strictly enough to catch what a
/// scraper refuses: every sample's family has a `# TYPE` (and `# HELP`) line before it, a
/// family's TYPE appears once, names and label names are valid, label values are quoted with
/// `\\`, `\"`, `\n` escapes only, values are numbers.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    fn valid_name(n: &str) -> bool {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect(&at);
            assert!(valid_name(name), "{at}");
            assert!(helps.insert(name.to_string()), "HELP twice: {at}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect(&at);
            assert!(valid_name(name), "{at}");
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&ty),
                "{at}"
            );
            assert!(
                types.insert(name.to_string(), ty.to_string()).is_none(),
                "TYPE twice: {at}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{at}");
        let name_end = line.find(['{', ' ']).expect(&at);
        let name = &line[..name_end];
        assert!(valid_name(name), "{at}");
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end: usize;
            loop {
                // label name
                let start = chars.peek().map(|c| c.0).expect(&at);
                if r[start..].starts_with('}') {
                    end = start + 1;
                    break;
                }
                let eq = r[start..].find('=').expect(&at) + start;
                let lname = &r[start..eq];
                assert!(valid_name(lname), "label name {lname:?}: {at}");
                while chars.peek().is_some_and(|c| c.0 <= eq) {
                    chars.next();
                }
                assert_eq!(chars.next().map(|c| c.1), Some('"'), "{at}");
                let mut val = String::new();
                loop {
                    match chars.next().expect(&at).1 {
                        '\\' => match chars.next().expect(&at).1 {
                            '\\' => val.push('\\'),
                            '"' => val.push('"'),
                            'n' => val.push('\n'),
                            other => panic!("bad escape \\{other}: {at}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline: {at}"),
                        c => val.push(c),
                    }
                }
                assert!(labels.insert(lname.to_string(), val).is_none(), "{at}");
                match chars.next().expect(&at) {
                    (_, ',') => {}
                    (j, '}') => {
                        end = j + 1;
                        break;
                    }
                    other => panic!("unexpected {other:?}: {at}"),
                }
            }
            rest = &r[end..];
        }
        let value = rest.strip_prefix(' ').expect(&at).trim();
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("value {v:?}: {at}")),
        };
        let family = types
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (types[f.as_str()] == "summary"
                        && (name == format!("{f}_sum") || name == format!("{f}_count")))
            })
            .unwrap_or_else(|| panic!("no TYPE before the sample: {at}"));
        assert!(helps.contains(family), "no HELP for {family}: {at}");
        out.push((name.to_string(), labels, v));
    }
    out
}

/// One HTTP exchange with the metrics endpoint: the whole response.
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s.write_all(request.as_bytes()).expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    resp
}

fn scrape(port: u16) -> Vec<Sample> {
    let resp = http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .expect("a length");
    assert_eq!(len, body.len(), "Content-Length");
    parse_prometheus(body)
}

/// The value of the one sample `name` with `labels` (a subset of its labels).
fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
        .collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?}: {hits:?}");
    hits[0]
}

fn count(samples: &[Sample], name: &str) -> usize {
    samples.iter().filter(|s| s.0 == name).count()
}

// ---------------------------------------------------------------------------------------------

fn lac_config() -> NodeConfig {
    l2xdp_tests::cp::lac_config(true)
}

fn ids(v: &Value, field: &str) -> BTreeSet<u64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x[field].as_u64().expect("a number"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_against_a_running_daemon() {
    let scratch = Scratch::plain("l2xdpctl-test");
    let dir = scratch.dir.clone();
    let mut setup = Setup::memory(true);
    let daemon = start(&dir, &setup, N);
    let sock = dir.join("ctl.sock");
    let cfg_path = dir.join("l2xdpd.toml");

    // The LAC: TUNNELS × SESSIONS, PPP with CHAP, RFC 4951 capable.
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let driver = Driver::new(
        Node::new(lac_config(), Box::new(MemoryDataPlane::new())),
        vec![L2tpSocket::bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind")],
    )
    .expect("driver")
    .with_events(tx);
    let (lac, lac_task) = driver.spawn();
    let peer = Peer::udp(format!("127.0.0.1:{}", setup.port).parse().expect("addr"));
    let (lac_tunnels, up) = bring_up(
        &lac,
        &mut events,
        LIMIT,
        peer,
        Version::V2,
        TUNNELS,
        SESSIONS,
    )
    .await;
    assert_eq!(up.len(), N);
    // The LAC's session IDs are the LNS's peer session IDs.
    let lac_sessions: BTreeSet<u64> = up
        .iter()
        .map(|e| match e {
            NodeEvent::PppUp { session, .. } => u64::from(*session),
            _ => unreachable!(),
        })
        .collect();
    let st = status_when(&sock, |s| s["ppp_up"] == N && s["installed"] == N);
    assert_eq!(st["ppp_up"], N, "{st}");

    // show tunnels
    let t = ctl_json(&sock, &["show", "tunnels"], 0);
    assert_eq!(t.as_array().map(Vec::len), Some(TUNNELS), "{t}");
    assert_eq!(
        ids(&t, "peer_tunnel"),
        lac_tunnels.iter().map(|&x| u64::from(x)).collect(),
        "{t}"
    );
    let our_tunnels: Vec<u64> = ids(&t, "tunnel").into_iter().collect();
    for x in t.as_array().expect("tunnels") {
        assert_eq!(x["state"], "Established", "{t}");
        assert_eq!(x["sessions"], SESSIONS, "{t}");
        assert_eq!(x["peer_host_name"], "lac", "{t}");
    }
    let text = ctl_text(&sock, &["show", "tunnels"], 0);
    assert!(text.starts_with("TUNNEL"), "{text}");
    for id in &our_tunnels {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(&id.to_string())),
            "{text}"
        );
    }

    // show sessions (all, one tunnel, one user)
    let s = ctl_json(&sock, &["show", "sessions"], 0);
    let rows = s.as_array().expect("sessions").clone();
    assert_eq!(rows.len(), N, "{s}");
    assert_eq!(ids(&s, "peer_session"), lac_sessions, "{s}");
    let users: BTreeSet<String> = rows
        .iter()
        .map(|r| r["user"].as_str().expect("user").to_string())
        .collect();
    assert_eq!(users, (0..N).map(|i| format!("user{i}")).collect());
    for r in &rows {
        assert_eq!(r["ppp"], "Network", "{r}");
        assert_eq!(r["installed"], true, "{r}");
    }
    let before: BTreeMap<(u64, u64), Value> = rows
        .iter()
        .map(|r| {
            (
                (
                    r["tunnel"].as_u64().expect("t"),
                    r["session"].as_u64().expect("s"),
                ),
                r.clone(),
            )
        })
        .collect();
    let t0 = our_tunnels[0].to_string();
    let one = ctl_json(&sock, &["show", "sessions", "--tunnel", &t0], 0);
    assert_eq!(one.as_array().map(Vec::len), Some(SESSIONS), "{one}");
    assert!(one
        .as_array()
        .expect("rows")
        .iter()
        .all(|r| r["tunnel"].as_u64() == Some(our_tunnels[0])));
    let u4 = ctl_json(&sock, &["show", "sessions", "--user", "user4"], 0);
    assert_eq!(u4.as_array().map(Vec::len), Some(1), "{u4}");
    let text = ctl_text(&sock, &["show", "sessions"], 0);
    for ((tn, sn), r) in &before {
        let want = [tn.to_string(), sn.to_string()];
        assert!(
            text.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() > 4
                    && w[0] == want[0]
                    && w[1] == want[1]
                    && w.contains(&r["user"].as_str().unwrap_or("?"))
            }),
            "{text}"
        );
    }
    assert!(text.contains(&format!("{N} sessions")), "{text}");

    // show session TUNNEL/SESSION
    let (tn, sn) = (
        u4[0]["tunnel"].as_u64().expect("t"),
        u4[0]["session"].as_u64().expect("s"),
    );
    let id = format!("{tn}/{sn}");
    let d = ctl_json(&sock, &["show", "session", &id], 0);
    assert_eq!(d["user"], "user4", "{d}");
    assert_eq!(d["ppp"], "Network", "{d}");
    assert_eq!(d["lcp"], "Opened", "{d}");
    assert_eq!(d["ipv4"], u4[0]["ipv4"], "{d}");
    assert_eq!(d["local_ipv4"], "100.64.0.1", "{d}");
    assert_eq!(d["state"], "Established", "{d}");
    assert!(
        d["peer"]["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{d}"
    );
    assert_eq!(d["persisted"], true, "{d}");
    assert!(d["counters"].is_object(), "{d}");
    let text = ctl_text(&sock, &["show", "session", &id], 0);
    assert!(text.contains("user4") && text.contains(&id), "{text}");

    // Unknown ids: exit 4, both formats.
    let e = ctl_json(&sock, &["show", "session", "60000/60000"], 4);
    assert_eq!(e["ok"], false, "{e}");
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("no session 60000/60000")),
        "{e}"
    );
    let err = ctl_text(&sock, &["show", "session", "60000"], 4);
    assert!(err.contains("no session 60000"), "{err}");
    let e = ctl_json(&sock, &["clear", "tunnel", "999999"], 4);
    assert!(
        e["error"].as_str().is_some_and(|m| m.contains("999999")),
        "{e}"
    );
    let err = ctl_text(&sock, &["clear", "session", "1/60000"], 4);
    assert!(err.contains("no session 1/60000"), "{err}");
    let err = ctl_text(&sock, &["show", "session", "x/y"], 2);
    assert!(err.contains("bad session ID"), "{err}");

    // Metrics before the drill: what was set up.
    let m = scrape(setup.metrics);
    assert_eq!(
        metric(&m, "l2xdp_tunnels", &[("state", "Established")]),
        TUNNELS as f64
    );
    assert_eq!(
        metric(&m, "l2xdp_sessions", &[("ppp", "Network")]),
        N as f64
    );
    assert_eq!(metric(&m, "l2xdp_sessions_installed", &[]), N as f64);
    assert_eq!(metric(&m, "l2xdp_tunnels_setup_total", &[]), TUNNELS as f64);
    assert_eq!(metric(&m, "l2xdp_sessions_setup_total", &[]), N as f64);
    assert_eq!(metric(&m, "l2xdp_sessions_teardown_total", &[]), 0.0);
    assert!(metric(&m, "l2xdp_control_retransmissions_total", &[]) >= 0.0);
    assert_eq!(
        metric(
            &m,
            "l2xdp_control_messages_total",
            &[("direction", "in"), ("type", "SCCRQ")]
        ),
        TUNNELS as f64
    );
    assert_eq!(
        metric(
            &m,
            "l2xdp_control_messages_total",
            &[("direction", "in"), ("type", "ICRQ")]
        ),
        N as f64
    );
    // The LNS's own and N subscribers leased.
    assert_eq!(
        metric(&m, "l2xdp_pool_addresses", &[("state", "leased")]),
        (N + 1) as f64
    );
    // Per-session series (per_session = true): one per session and direction.
    assert_eq!(count(&m, "l2xdp_session_packets"), 2 * N);
    assert_eq!(
        metric(
            &m,
            "l2xdp_session_bytes",
            &[("user", "user4"), ("direction", "upstream")]
        ),
        0.0
    );
    // Memory mode: no fast-path maps, no fast-path series.
    assert_eq!(count(&m, "l2xdp_fastpath_drops_total"), 0);

    // failover status
    let f = ctl_json(&sock, &["failover", "status"], 0);
    assert_eq!(f["persisting"], true, "{f}");
    assert_eq!(f["ours"]["control"], true, "{f}");
    assert_eq!(f["tunnels"].as_array().map(Vec::len), Some(TUNNELS), "{f}");
    for x in f["tunnels"].as_array().expect("tunnels") {
        assert_eq!(x["control"], true, "{f}");
        assert_eq!(x["data"], true, "{f}");
        assert_eq!(x["peer_failover"]["control"], true, "{f}");
        assert_eq!(x["recovering"], false, "{f}");
        assert!(x["last_recovery"].is_null(), "{f}");
    }
    let text = ctl_text(&sock, &["failover", "status"], 0);
    assert!(text.contains("persisting: yes"), "{text}");
    assert!(text.contains("CD 10000ms"), "{text}");

    // failover drill: every tunnel recovered, the same sessions, nothing down at the LAC.
    let dr = ctl_json(&sock, &["failover", "drill", "--timeout", "50"], 0);
    assert_eq!(dr["ok"], true, "{dr}");
    assert_eq!(dr["complete"], true, "{dr}");
    assert_eq!(dr["sessions_restored"], N, "{dr}");
    let recovered: BTreeSet<u64> = ids(&dr["tunnels"], "tunnel");
    assert_eq!(recovered, our_tunnels.iter().copied().collect(), "{dr}");
    for x in dr["tunnels"].as_array().expect("tunnels") {
        assert_eq!(x["outcome"], "recovered", "{dr}");
        assert_eq!(x["sessions"], SESSIONS, "{dr}");
        assert!(x["duration_ms"].is_u64(), "{dr}");
    }
    let after = ctl_json(&sock, &["show", "sessions"], 0);
    let after: BTreeMap<(u64, u64), Value> = after
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                (
                    r["tunnel"].as_u64().expect("t"),
                    r["session"].as_u64().expect("s"),
                ),
                r.clone(),
            )
        })
        .collect();
    assert_eq!(after, before, "the same sessions after the drill");
    while let Ok(e) = events.try_recv() {
        assert!(!is_down(&e), "the LAC saw {e:?}");
        assert!(
            !matches!(e, NodeEvent::TunnelUp { .. }),
            "the LAC saw {e:?}"
        );
    }
    let f = ctl_json(&sock, &["failover", "status"], 0);
    assert_eq!(f["totals"]["recovered"], TUNNELS, "{f}");
    for x in f["tunnels"].as_array().expect("tunnels") {
        if x["role"] == "normal" {
            assert_eq!(x["last_recovery"]["outcome"], "recovered", "{f}");
        }
    }
    let m = scrape(setup.metrics);
    assert_eq!(
        metric(&m, "l2xdp_recoveries_total", &[("outcome", "recovered")]),
        TUNNELS as f64
    );
    assert_eq!(
        metric(&m, "l2xdp_recoveries_total", &[("outcome", "failed")]),
        0.0
    );
    assert_eq!(
        metric(&m, "l2xdp_recovery_duration_seconds_count", &[]),
        TUNNELS as f64
    );
    assert_eq!(metric(&m, "l2xdp_recoveries_in_progress", &[]), 0.0);
    assert_eq!(
        metric(
            &m,
            "l2xdp_failover_events_total",
            &[("step", "session restored")]
        ),
        N as f64
    );
    // The table form of a drill (a second one).
    let text = ctl_text(&sock, &["failover", "drill"], 0);
    assert!(text.contains("every recovery ended"), "{text}");
    for id in &our_tunnels {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{id} ")) && l.contains("recovered")),
            "{text}"
        );
    }
    while let Ok(e) = events.try_recv() {
        assert!(!is_down(&e), "the LAC saw {e:?}");
    }

    // config check
    let ok = ctl_json(
        &sock,
        &["config", "check", cfg_path.to_str().expect("utf-8")],
        0,
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let text = ctl_text(
        &sock,
        &["config", "check", cfg_path.to_str().expect("utf-8")],
        0,
    );
    assert!(text.contains(": ok"), "{text}");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[daemon]\nlisten = [\"127.0.0.1:1701\"]\n\n[ppp]\nmru = \"big\"\n",
    )
    .expect("write");
    let e = ctl_json(&sock, &["config", "check", bad.to_str().expect("utf-8")], 1);
    let msg = e["error"].as_str().expect("error").to_string();
    assert!(
        msg.contains("bad.toml:5:") && msg.contains("ppp.mru"),
        "{msg}"
    );
    let err = ctl_text(&sock, &["config", "check", bad.to_str().expect("utf-8")], 1);
    assert!(
        err.contains("bad.toml:5:") && err.contains("ppp.mru"),
        "{err}"
    );

    // config reload: a larger pool and one user more, live; the sessions stay.
    setup.pool = "100.64.0.0/23";
    configure(&dir, &setup, N, EXTRA);
    let r = ctl_json(&sock, &["config", "reload"], 0);
    assert!(
        r["changed"]
            .as_array()
            .is_some_and(|c| c.contains(&"ppp".into()) && c.contains(&"users".into())),
        "{r}"
    );
    assert_eq!(r["pool"][0], 510, "{r}");
    assert_eq!(r["pool"][1], N + 1, "leases carried over: {r}");
    let st = ask(&sock, r#"{"cmd":"status"}"#);
    assert_eq!(st["data"]["ppp_up"], N, "{st}");
    // The new user logs in (users applied live).
    let t_lac = lac_tunnels[0];
    lac.open_session(
        t_lac,
        CallParams::default(),
        Some(ClientAuth {
            user: WEIRD_USER.into(),
            password: b"pw-new".to_vec(),
        }),
    )
    .await
    .expect("running")
    .expect("open session");
    wait_for(
        LIMIT,
        &mut events,
        1,
        "PPP up for the new user",
        |e| matches!(e, NodeEvent::PppUp { .. }),
        is_down,
    )
    .await;
    let st = status_when(&sock, |s| s["ppp_up"] == N + 1);
    assert_eq!(st["ppp_up"], N + 1, "{st}");
    let w = ctl_json(&sock, &["show", "sessions", "--user", WEIRD_USER], 0);
    assert_eq!(w.as_array().map(Vec::len), Some(1), "{w}");
    // Its per-session series, the label value escaped and read back.
    let m = scrape(setup.metrics);
    assert_eq!(
        metric(
            &m,
            "l2xdp_session_packets",
            &[("user", WEIRD_USER), ("direction", "downstream")]
        ),
        0.0
    );
    assert_eq!(count(&m, "l2xdp_session_packets"), 2 * (N + 1));
    let text = ctl_text(&sock, &["config", "reload"], 0);
    assert!(text.starts_with("reloaded "), "{text}");
    assert!(text.contains("pool: 510 addresses"), "{text}");

    // Refused: the listen address (and a pool change with it: nothing applied).
    let port = setup.port;
    setup.port = free_udp_port().expect("a free port");
    setup.pool = "100.64.0.0/22";
    configure(&dir, &setup, N, EXTRA);
    let e = ctl_json(&sock, &["config", "reload"], 1);
    let msg = e["error"].as_str().expect("error").to_string();
    assert!(msg.contains("daemon.listen cannot change live"), "{msg}");
    assert!(msg.contains("unchanged"), "{msg}");
    let err = ctl_text(&sock, &["config", "reload"], 1);
    assert!(err.contains("daemon.listen"), "{err}");
    let st = ask(&sock, r#"{"cmd":"status"}"#);
    assert_eq!(
        st["data"]["pool"][0], 510,
        "running configuration unchanged: {st}"
    );
    // A file that does not parse: refused naming line and field.
    std::fs::write(
        &cfg_path,
        "[daemon]\nlisten = [\"127.0.0.1:1\"]\n[l2tp]\nhello_interval_secs = \"x\"\n",
    )
    .expect("config");
    let e = ctl_json(&sock, &["config", "reload"], 1);
    let msg = e["error"].as_str().expect("error").to_string();
    assert!(
        msg.contains("l2xdpd.toml:4:") && msg.contains("l2tp.hello_interval_secs"),
        "{msg}"
    );
    let st = ask(&sock, r#"{"cmd":"status"}"#);
    assert_eq!(
        st["data"]["pool"][0], 510,
        "running configuration unchanged: {st}"
    );
    assert_eq!(st["data"]["ppp_up"], N + 1, "{st}");

    // SIGHUP reloads as `config reload` does: a larger pool again, the sessions stay.
    setup.port = port;
    setup.pool = "100.64.0.0/22";
    configure(&dir, &setup, N, EXTRA);
    daemon.signal(libc::SIGHUP);
    let st = status_when(&sock, |s| s["pool"][0] == 1022);
    assert_eq!(st["pool"][0], 1022, "SIGHUP reloaded: {st}");
    assert_eq!(st["ppp_up"], N + 1, "{st}");

    // clear session, clear tunnel.
    let c = ctl_json(&sock, &["clear", "session", &id], 0);
    assert_eq!(
        (c["tunnel"].as_u64(), c["session"].as_u64()),
        (Some(tn), Some(sn)),
        "{c}"
    );
    wait_for(
        LIMIT,
        &mut events,
        1,
        "the CDN at the LAC",
        |e| matches!(e, NodeEvent::SessionDown { .. }),
        |_| false,
    )
    .await;
    let s = ctl_json(&sock, &["show", "sessions", "--user", "user4"], 0);
    assert_eq!(s.as_array().map(Vec::len), Some(0), "{s}");
    let t1 = our_tunnels[1].to_string();
    let text = ctl_text(&sock, &["clear", "tunnel", &t1], 0);
    assert!(text.contains(&format!("tunnel {t1} cleared")), "{text}");
    wait_for(
        LIMIT,
        &mut events,
        1,
        "the StopCCN at the LAC",
        |e| matches!(e, NodeEvent::TunnelDown { .. }),
        |_| false,
    )
    .await;
    let left = ctl_json(&sock, &["show", "sessions", "--tunnel", &t1], 0);
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
    let c = ctl_json(&sock, &["show", "sessions", "--tunnel", &t0], 0);
    let text = ctl_text(
        &sock,
        &[
            "clear",
            "session",
            &format!("{}/{}", c[0]["tunnel"], c[0]["session"]),
        ],
        0,
    );
    assert!(text.contains("cleared"), "{text}");
    let c = ctl_json(&sock, &["clear", "tunnel", &t0], 0);
    assert_eq!(c["tunnel"].as_u64(), Some(our_tunnels[0]), "{c}");
    assert!(c["session"].is_null(), "{c}");
    wait_for(
        LIMIT,
        &mut events,
        1,
        "the second StopCCN at the LAC",
        |e| matches!(e, NodeEvent::TunnelDown { .. }),
        |_| false,
    )
    .await;
    let st = status_when(&sock, |s| s["sessions"] == 0);
    assert_eq!(st["sessions"], 0, "{st}");

    // Metrics: teardowns counted (since the last drill started a new node).
    let m = scrape(setup.metrics);
    assert_eq!(
        metric(&m, "l2xdp_sessions_teardown_total", &[]),
        (N + 1) as f64
    );
    assert_eq!(metric(&m, "l2xdp_tunnels_teardown_total", &[]), 2.0);
    assert_eq!(metric(&m, "l2xdp_sessions_installed", &[]), 0.0);

    // show stats without pinned maps: exit 5, naming the directory.
    let nopins = dir.join("no-pins");
    let e = ctl_json(
        &sock,
        &["show", "stats", "--pins", nopins.to_str().expect("utf-8")],
        5,
    );
    assert!(
        e["error"].as_str().is_some_and(|m| m.contains("no-pins")),
        "{e}"
    );
    let err = ctl_text(
        &sock,
        &["show", "stats", "--pins", nopins.to_str().expect("utf-8")],
        5,
    );
    assert!(err.contains("no-pins"), "{err}");

    // Completion scripts.
    for sh in ["bash", "zsh", "fish"] {
        let text = ctl_text(&sock, &["completion", sh], 0);
        assert!(
            text.contains("l2xdpctl") && text.contains("failover"),
            "{sh}: {text}"
        );
    }

    // l2xdpd not running: exit 3, naming the socket.
    let nobody = dir.join("nobody.sock");
    for args in [
        vec!["show", "tunnels"],
        vec!["show", "sessions"],
        vec!["show", "session", "1"],
        vec!["clear", "session", "1/1"],
        vec!["clear", "tunnel", "1"],
        vec!["failover", "status"],
        vec!["failover", "drill"],
        vec!["config", "reload"],
    ] {
        let e = ctl_json(&nobody, &args, 3);
        let msg = e["error"].as_str().expect("error");
        assert!(
            msg.contains("nobody.sock") && msg.contains("l2xdpd is not running"),
            "{msg}"
        );
        let err = ctl_text(&nobody, &args, 3);
        assert!(
            err.contains("nobody.sock") && err.contains("not running"),
            "{err}"
        );
    }

    lac.shutdown().await;
    let _ = lac_task.await;
    drop(daemon);
}

/// A drill with a tunnel whose peer has no Failover Capability: refused, then forced — the
/// tunnel is cleared (silently, as after a crash) and reported failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_drill_refuses_or_forces_a_tunnel_without_failover() {
    let scratch = Scratch::plain("l2xdpctl-force");
    let dir = scratch.dir.clone();
    // Without transparent resume a tunnel whose peer did not negotiate RFC 4951 would be
    // cleared by the drill (with it, the drill resumes it: nothing to refuse).
    let setup = Setup {
        resume: false,
        ..Setup::memory(true)
    };
    let _daemon = start(&dir, &setup, 1);
    let sock = dir.join("ctl.sock");
    let mut cfg = lac_config();
    cfg.l2tp.failover = None;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let driver = Driver::new(
        Node::new(cfg, Box::new(MemoryDataPlane::new())),
        vec![L2tpSocket::bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind")],
    )
    .expect("driver")
    .with_events(tx);
    let (lac, lac_task) = driver.spawn();
    let peer = Peer::udp(format!("127.0.0.1:{}", setup.port).parse().expect("addr"));
    bring_up(&lac, &mut events, LIMIT, peer, Version::V2, 1, 1).await;
    let st = status_when(&sock, |s| s["ppp_up"] == 1);
    assert_eq!(st["ppp_up"], 1, "{st}");
    let f = ctl_json(&sock, &["failover", "status"], 0);
    assert_eq!(f["tunnels"][0]["control"], false, "{f}");
    assert!(f["tunnels"][0]["peer_failover"].is_null(), "{f}");
    let tunnel = f["tunnels"][0]["tunnel"].as_u64().expect("tunnel");

    let e = ctl_json(&sock, &["failover", "drill"], 1);
    let msg = e["error"].as_str().expect("error");
    assert!(
        msg.contains(&format!("[{tunnel}]")) && msg.contains("did not negotiate"),
        "{msg}"
    );
    let err = ctl_text(&sock, &["failover", "drill"], 1);
    assert!(err.contains("--force") || err.contains("force"), "{err}");
    assert_eq!(
        ctl_json(&sock, &["show", "sessions"], 0)
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Forced: exit 1 (not every tunnel recovered), the tunnel reported failed.
    let d = ctl_json(&sock, &["failover", "drill", "--force"], 1);
    assert_eq!(d["ok"], false, "{d}");
    assert_eq!(d["complete"], true, "{d}");
    assert_eq!(d["sessions_restored"], 1, "{d}");
    assert_eq!(d["tunnels"][0]["tunnel"].as_u64(), Some(tunnel), "{d}");
    assert_eq!(d["tunnels"][0]["outcome"], "failed", "{d}");
    let st = status_when(&sock, |s| s["sessions"] == 0);
    assert_eq!(st["sessions"], 0, "{st}");
    let f = ctl_json(&sock, &["failover", "status"], 0);
    assert_eq!(f["recoveries"][0]["tunnel"].as_u64(), Some(tunnel), "{f}");
    assert_eq!(f["recoveries"][0]["outcome"], "failed", "{f}");
    assert_eq!(f["totals"]["failed"], 1, "{f}");
    let m = scrape(setup.metrics);
    assert_eq!(
        metric(&m, "l2xdp_recoveries_total", &[("outcome", "failed")]),
        1.0
    );
    lac.shutdown().await;
    let _ = lac_task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_drill_is_refused_without_persisted_state() {
    let scratch = Scratch::plain("l2xdpctl-nofo");
    let dir = scratch.dir.clone();
    let setup = Setup::memory(false);
    let _daemon = start(&dir, &setup, 1);
    let sock = dir.join("ctl.sock");
    let e = ctl_json(&sock, &["failover", "drill"], 1);
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("[l2tp.failover] control = true")),
        "{e}"
    );
    let err = ctl_text(&sock, &["failover", "drill"], 1);
    assert!(err.contains("no failover drill"), "{err}");
    let f = ctl_json(&sock, &["failover", "status"], 0);
    assert_eq!(f["persisting"], false, "{f}");
    assert!(f["ours"].is_null(), "{f}");
    // Nothing set up: empty tables, zero series.
    assert_eq!(
        ctl_json(&sock, &["show", "tunnels"], 0)
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let m = scrape(setup.metrics);
    assert_eq!(metric(&m, "l2xdp_sessions_setup_total", &[]), 0.0);
    assert_eq!(count(&m, "l2xdp_session_packets"), 0);
    // Only GET /metrics.
    let r = http(setup.metrics, "GET / HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = http(setup.metrics, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    let r = http(setup.metrics, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
}

// ---------------------------------------------------------------------------------------------
// The fast path's counters (root).

/// A scratch directory with a bpffs of its own (`l2xdp_lab::scratch`) and the
/// fast-path object's maps pinned in it (nothing attached); removed on drop.
struct Pins {
    _ebpf: l2xdp_dataplane::aya::Ebpf,
    scratch: Scratch,
}

impl Pins {
    /// For the test `test`; `None` (the test skipped and recorded, or failed under
    /// `L2XDP_REQUIRE_ROOT=1`: `l2xdp_lab::require_root`) without root.
    fn new(test: &str) -> Option<Pins> {
        if !l2xdp_lab::require_root(test) {
            return None;
        }
        let scratch = Scratch::new(test);
        let ebpf = l2xdp_dataplane::loader::load(Some(&scratch.pins)).expect("load with pins");
        Some(Pins {
            _ebpf: ebpf,
            scratch,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_stats_and_metrics_read_the_pinned_maps() {
    use l2xdp_dataplane::aya::maps::{Array, Map, MapData, PerCpuArray, PerCpuValues};
    use l2xdp_dataplane::l2xdp_ebpf::maps::{self as m, name, verdict};
    use l2xdp_wire::datapath::DropReason;

    let Some(guard) = Pins::new("show_stats_and_metrics_read_the_pinned_maps") else {
        return;
    };
    let (dir, pins) = (guard.scratch.dir.clone(), guard.scratch.pins.clone());
    let open =
        |n: &str| Map::from_map_data(MapData::from_pin(pins.join(n)).expect("pin")).expect("map");
    let ncpu = l2xdp_dataplane::xdp::possible_cpus() as usize;
    let per = |f: &dyn Fn(usize) -> u64| -> PerCpuValues<u64> {
        PerCpuValues::try_from((0..ncpu).map(f).collect::<Vec<_>>()).expect("per-CPU values")
    };
    // Known values: CPU i decapsulated 10(i+1), encapsulated 20(i+1), dropped 3(i+1) packets
    // for an unknown session and 1 with a spoofed source; two sessions with bytes.
    let mut verdicts: PerCpuArray<MapData, u64> =
        open(name::VERDICTS).try_into().expect("verdicts");
    verdicts
        .set(verdict::DECAP, per(&|i| 10 * (i as u64 + 1)), 0)
        .expect("set");
    verdicts
        .set(verdict::ENCAP, per(&|i| 20 * (i as u64 + 1)), 0)
        .expect("set");
    let mut drops: PerCpuArray<MapData, u64> = open(name::DROPS).try_into().expect("drops");
    drops
        .set(
            DropReason::UnknownSession as u32,
            per(&|i| 3 * (i as u64 + 1)),
            0,
        )
        .expect("set");
    drops
        .set(DropReason::SpoofedSource as u32, per(&|_| 1), 0)
        .expect("set");
    // AF_XDP mode's workers (l2xdp_xsk_stats, the worker of core 0): 5 unknown_session (a
    // session removed under a packet), 7 sequence_out_of_order, 2 not sent (no egress socket):
    // the same reasons, added to CPU 0.
    let mut xsk: PerCpuArray<MapData, u64> = open(name::XSK_STATS).try_into().expect("xsk");
    for (i, v) in [
        (DropReason::UnknownSession as u32, 5),
        (DropReason::SequenceOutOfOrder as u32, 7),
        (m::xsk_stat::NO_EGRESS, 2),
    ] {
        xsk.set(i, per(&|c| if c == 0 { v } else { 0 }), 0)
            .expect("set");
    }
    // Bytes per CPU and direction (l2xdp_vbytes): upstream 300 + 2i, downstream 3000.
    let mut vbytes: PerCpuArray<MapData, u64> = open(name::VBYTES).try_into().expect("vbytes");
    vbytes
        .set(verdict::DECAP, per(&|i| 300 + 2 * i as u64), 0)
        .expect("set");
    vbytes.set(verdict::ENCAP, per(&|_| 3000), 0).expect("set");
    // Two sessions in their home slots, with counters.
    let n = ncpu as u64;
    let mut slots: Array<MapData, m::Session> = open(name::SESSIONS).try_into().expect("slots");
    let mask = slots.len() - 1;
    for (id, k) in [(0x0001_0002u32, 1u64), (0x0001_0003, 2)] {
        let v = m::Session {
            id,
            version: 2,
            rx_packets: k * n,
            rx_bytes: 100 * k * n,
            tx_packets: 2 * k * n,
            tx_bytes: 1000 * k * n,
            ..m::Session::default()
        };
        slots.set(id & mask, v, 0).expect("slot");
    }
    let tri = n * (n + 1) / 2; // sum of (i+1)
    let up_bytes: u64 = (0..n).map(|i| 300 + 2 * i).sum();
    let sock = dir.join("nobody.sock");
    let p = pins.to_str().expect("utf-8");
    let v = ctl_json(
        &sock,
        &[
            "show",
            "stats",
            "--pins",
            p,
            "--interval",
            "0.05",
            "--sessions",
        ],
        0,
    );
    let snap = &v["snapshot"];
    assert_eq!(snap["cpus"].as_array().map(Vec::len), Some(ncpu), "{v}");
    assert_eq!(snap["total"]["upstream"]["packets"], 10 * tri, "{v}");
    assert_eq!(snap["total"]["downstream"]["packets"], 20 * tri, "{v}");
    assert_eq!(snap["total"]["upstream"]["bytes"], up_bytes, "{v}");
    assert_eq!(snap["total"]["downstream"]["bytes"], 3000 * n, "{v}");
    assert_eq!(snap["total"]["dropped"], 3 * tri + n + 12, "{v}");
    assert_eq!(snap["total"]["unsent"], 2, "{v}");
    assert_eq!(snap["cpus"][0]["unsent"], 2, "{v}");
    assert_eq!(snap["cpus"][0]["upstream"]["packets"], 10, "{v}");
    assert_eq!(snap["cpus"][0]["dropped"], 4 + 12, "{v}");
    assert_eq!(snap["sessions"], 2, "{v}");
    let drops_by: BTreeMap<String, u64> = snap["drops"]
        .as_array()
        .expect("drops")
        .iter()
        .map(|d| {
            (
                d["reason"].as_str().expect("r").to_string(),
                d["packets"].as_u64().expect("n"),
            )
        })
        .collect();
    assert_eq!(drops_by.len(), DropReason::COUNT);
    assert_eq!(drops_by["unknown_session"], 3 * tri + 5);
    assert_eq!(drops_by["sequence_out_of_order"], 7);
    assert_eq!(drops_by["spoofed_source"], n);
    assert_eq!(drops_by["truncated"], 0);
    let per_session = snap["per_session"].as_array().expect("per session");
    assert_eq!(per_session.len(), 2, "{v}");
    assert_eq!(
        (
            per_session[1]["tunnel"].as_u64(),
            per_session[1]["session"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(per_session[1]["downstream"]["packets"], 4 * n, "{v}");
    // Nothing moved between the samples.
    assert_eq!(v["rates"]["total"]["upstream"]["pps"], 0.0, "{v}");
    assert_eq!(
        v["rates"]["cpus"].as_array().map(Vec::len),
        Some(ncpu),
        "{v}"
    );
    // A live view: three reports, one JSON document per line.
    let (c, out, err) = ctl(
        &sock,
        &[
            "--json",
            "show",
            "stats",
            "--pins",
            p,
            "--interval",
            "0.02",
            "--count",
            "3",
        ],
    );
    assert_eq!(c, 0, "{err}");
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(docs.len(), 3, "{out}");
    assert!(docs
        .iter()
        .all(|d| d["snapshot"]["total"]["upstream"]["packets"] == 10 * tri));
    let text = ctl_text(
        &sock,
        &["show", "stats", "--pins", p, "--interval", "0.05"],
        0,
    );
    let all = text
        .lines()
        .find(|l| l.starts_with("all "))
        .expect("the all row");
    let cols: Vec<&str> = all.split_whitespace().collect();
    assert_eq!(cols[1], (10 * tri).to_string(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["unknown_session", &(3 * tri + 5).to_string()]),
        "{text}"
    );

    // l2xdpd in XDP mode over these pins: the metrics endpoint reports the same counters.
    let ddir = dir.join("daemon");
    let setup = Setup {
        pins: Some(pins.clone()),
        ..Setup::memory(false)
    };
    let daemon = start(&ddir, &setup, 1);
    let mtr = scrape(setup.metrics);
    assert_eq!(
        metric(
            &mtr,
            "l2xdp_fastpath_drops_total",
            &[("reason", "unknown_session")]
        ),
        (3 * tri + 5) as f64
    );
    assert_eq!(
        metric(
            &mtr,
            "l2xdp_fastpath_drops_total",
            &[("reason", "sequence_out_of_order")]
        ),
        7.0
    );
    assert_eq!(
        metric(
            &mtr,
            "l2xdp_fastpath_drops_total",
            &[("reason", "spoofed_source")]
        ),
        n as f64
    );
    assert_eq!(count(&mtr, "l2xdp_fastpath_drops_total"), DropReason::COUNT);
    assert_eq!(
        metric(
            &mtr,
            "l2xdp_fastpath_packets_total",
            &[("direction", "upstream"), ("cpu", "0")]
        ),
        10.0
    );
    assert_eq!(count(&mtr, "l2xdp_fastpath_packets_total"), 2 * ncpu);
    let up: f64 = mtr
        .iter()
        .filter(|s| {
            s.0 == "l2xdp_fastpath_packets_total"
                && s.1.get("direction").map(String::as_str) == Some("downstream")
        })
        .map(|s| s.2)
        .sum();
    assert_eq!(up, (20 * tri) as f64);
    assert_eq!(
        metric(&mtr, "l2xdp_fastpath_bytes", &[("direction", "upstream")]),
        up_bytes as f64
    );
    drop(daemon);
}

/// A failover drill of an l2xdpd in XDP mode leaves the fast path as it was: every session's
/// entry in the pinned maps is kept (not reinstalled), bound to the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_drill_keeps_the_fast_path_entries() {
    use l2xdp_dataplane::{DataPlane, XdpDataPlane};

    let Some(guard) = Pins::new("failover_drill_keeps_the_fast_path_entries") else {
        return;
    };
    let ddir = guard.scratch.dir.join("daemon");
    let setup = Setup {
        pins: Some(guard.scratch.pins.clone()),
        ..Setup::memory(true)
    };
    let daemon = start(&ddir, &setup, N);
    let sock = daemon.socket().to_path_buf();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let driver = Driver::new(
        Node::new(lac_config(), Box::new(MemoryDataPlane::new())),
        vec![L2tpSocket::bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind")],
    )
    .expect("driver")
    .with_events(tx);
    let (lac, lac_task) = driver.spawn();
    let peer = Peer::udp(format!("127.0.0.1:{}", setup.port).parse().expect("addr"));
    bring_up(
        &lac,
        &mut events,
        LIMIT,
        peer,
        Version::V2,
        TUNNELS,
        SESSIONS,
    )
    .await;
    let st = status_when(&sock, |s| s["ppp_up"] == N && s["installed"] == N);
    assert_eq!(st["installed"], N, "{st}");
    let before = XdpDataPlane::open(&guard.scratch.pins)
        .expect("open pins")
        .sessions()
        .expect("sessions");
    assert_eq!(before.len(), N);

    let d = ctl_json(&sock, &["failover", "drill"], 0);
    assert_eq!(d["sessions_restored"], N, "{d}");
    let st = ask(&sock, r#"{"cmd":"status"}"#);
    assert_eq!(st["data"]["node"]["restored_kept"], N, "{st}");
    assert_eq!(st["data"]["node"]["stale_removed"], 0, "{st}");
    assert_eq!(st["data"]["installed"], N, "{st}");
    let after = XdpDataPlane::open(&guard.scratch.pins)
        .expect("open pins")
        .sessions()
        .expect("sessions");
    assert_eq!(after, before, "the fast path as it was");
    while let Ok(e) = events.try_recv() {
        assert!(!is_down(&e), "the LAC saw {e:?}");
    }
    lac.shutdown().await;
    let _ = lac_task.await;
}
