//! `l2xdpctl`: the operator's command line for a running `l2xdpd`. It talks to l2xdpd's
//! control socket (JSON lines, `l2xdp_controlplane::control`) and reads the fast path's
//! counters from the pinned maps (`--pins`, `l2xdp_dataplane::stats`).
//!
//! Human tables by default, `--json` everywhere (one JSON document on stdout; on failure
//! `{"ok":false,"error":...,"exit":N}`). See `l2xdpctl --help` for the exit codes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use l2xdp_controlplane::control::{ErrorKind, PROTOCOL};
use l2xdp_controlplane::daemon::DaemonConfig;
#[cfg(feature = "xdp")]
use l2xdp_dataplane::stats::StatsMaps;
#[cfg(feature = "xdp")]
use l2xdp_dataplane_api::stats::{Rates, Snapshot};
use serde_json::{json, Value};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the request failed or was refused (config reload refused or invalid, failover drill
     refused, incomplete or with a tunnel not recovered, config check of an invalid file)
  2  usage error (unknown command or option)
  3  l2xdpd is not running: its control socket cannot be reached (permission denied: 1)
  4  no such tunnel or session (or a session ID that is ambiguous without its tunnel)
  5  the fast path's pinned maps cannot be read (show stats)";

#[derive(Debug, Parser)]
#[command(
    name = "l2xdpctl",
    version,
    about = "Inspect and operate a running l2xdpd",
    after_help = EXIT_CODES
)]
struct Args {
    /// l2xdpd's control socket (`[daemon] control_socket` in its configuration).
    #[arg(long, global = true, default_value = "/run/l2xdp/l2xdpd.sock")]
    socket: PathBuf,
    /// Where l2xdp-dataplane pinned the fast path's maps (show stats).
    #[arg(long, global = true, default_value = l2xdp_dataplane_api::PIN_DIR)]
    pins: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Tunnels, sessions and fast-path statistics.
    #[command(subcommand)]
    Show(Show),
    /// Close a session (CDN) or a tunnel (StopCCN and its sessions).
    #[command(subcommand)]
    Clear(Clear),
    /// RFC 4951 failover: status and drills.
    #[command(subcommand)]
    Failover(Failover),
    /// Check a configuration file, or reload the running one.
    #[command(subcommand)]
    Config(Config),
    /// Print a shell completion script (e.g. `l2xdpctl completion bash > /etc/bash_completion.d/l2xdpctl`).
    Completion {
        /// The shell.
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
enum Show {
    /// Every tunnel: IDs, peer, version, state, sessions, the peer's failover capability.
    Tunnels,
    /// Sessions: IDs, user, PPP phase, address, installed in the fast path.
    Sessions {
        /// Only the sessions of this tunnel (our tunnel ID).
        #[arg(long)]
        tunnel: Option<u32>,
        /// Only the sessions of this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// One session: state, peer, addresses, PPP state, fast-path counters, failover state.
    Session {
        /// SESSION, or TUNNEL/SESSION when the session ID is not unique (L2TPv2).
        id: String,
    },
    /// Fast-path packets, bytes and rates per direction and per CPU, and drops by reason:
    /// two samples of the pinned maps `--interval` apart.
    Stats {
        /// Seconds between the two samples.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Per-session counters too.
        #[arg(long)]
        sessions: bool,
        /// Reports to print, one per interval (a live view); 0: until interrupted. With
        /// --json and a count other than 1, one JSON document per line.
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
}

#[derive(Debug, Subcommand)]
enum Clear {
    /// Close a session with a CDN (result 3, administrative).
    Session {
        /// SESSION, or TUNNEL/SESSION.
        id: String,
    },
    /// Close a tunnel with a StopCCN, and all its sessions.
    Tunnel {
        /// Our tunnel ID.
        id: u32,
    },
}

#[derive(Debug, Subcommand)]
enum Failover {
    /// Per tunnel: the failover capability negotiated (C: control channel, D: data
    /// channel), recovery state, the last recovery's outcome and duration; RFC 4951 counters.
    Status,
    /// An administrative failover of the running l2xdpd. It drops its in-memory control
    /// state silently, as a crash would — no CDN, no StopCCN, the fast path untouched and
    /// forwarding throughout — and runs the RFC 4951 recovery from its persisted state
    /// exactly as after a restart: a recovery tunnel per tunnel (the control channel reset,
    /// §3.2), sessions confirmed with FSQ/FSR (§3.3), PPP restored without renegotiation.
    /// Reports each tunnel's outcome and duration. Needs [l2tp.failover] control = true;
    /// refused when a tunnel did not negotiate control-channel failover with its peer (it
    /// and its sessions would be cleared, as after a crash) unless --force.
    Drill {
        /// Drill even when some tunnels would be cleared.
        #[arg(long)]
        force: bool,
        /// How long to wait for the recoveries, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

#[derive(Debug, Subcommand)]
enum Config {
    /// Parse and check a configuration file (and its users file): errors name the file,
    /// line and field.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Make l2xdpd re-read its configuration file (as SIGHUP): pools, users, timers, limits
    /// and secrets apply to what is set up from now on, without dropping a session; a change
    /// of a field that cannot change live (listen addresses, mode, state_dir, ...) is refused
    /// whole, naming the field and why.
    Reload,
}

/// A failure: the message and the exit code.
struct Fail {
    code: u8,
    msg: String,
    /// The JSON document was printed already (it tells the failure itself).
    printed: bool,
}

fn fail(code: u8, msg: impl Into<String>) -> Fail {
    Fail {
        code,
        msg: msg.into(),
        printed: false,
    }
}

const FAILED: u8 = 1;
const NOT_RUNNING: u8 = 3;
const NOT_FOUND: u8 = 4;
const NO_FAST_PATH: u8 = 5;

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json;
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json && !f.printed {
                println!("{}", json!({"ok": false, "error": f.msg, "exit": f.code}));
            }
            eprintln!("l2xdpctl: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

/// One request to l2xdpd; its `data` on success.
fn ask(socket: &Path, req: Value, timeout: Duration) -> Result<Value, Fail> {
    let not_running = |e: std::io::Error| {
        fail(
            NOT_RUNNING,
            format!(
                "cannot reach l2xdpd at {}: {e} — l2xdpd is not running, or its control socket \
                 is elsewhere (see [daemon] control_socket; --socket)",
                socket.display()
            ),
        )
    };
    let mut s = UnixStream::connect(socket).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            fail(
                FAILED,
                format!(
                    "permission denied on {}: the control socket is for root and members of \
                     [daemon] control_socket_group",
                    socket.display()
                ),
            )
        } else {
            not_running(e)
        }
    })?;
    let io = |e: std::io::Error| {
        fail(
            FAILED,
            format!("talking to l2xdpd at {}: {e}", socket.display()),
        )
    };
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = req.to_string();
    line.push('\n');
    // l2xdpd may answer before reading (a refusal: too many connections, credentials) and
    // close: the write then fails, and the reply is what says why.
    let written = s.write_all(line.as_bytes());
    let mut reply = String::new();
    let read = BufReader::new(&s).read_line(&mut reply);
    if reply.is_empty() {
        written.map_err(io)?;
        read.map_err(io)?;
        return Err(fail(FAILED, "l2xdpd closed the connection without a reply"));
    }
    let r: l2xdp_controlplane::control::Reply = serde_json::from_str(&reply)
        .map_err(|e| fail(FAILED, format!("unreadable reply from l2xdpd: {e}")))?;
    if r.v != PROTOCOL {
        return Err(fail(
            FAILED,
            format!(
                "l2xdpd speaks control protocol {}, this l2xdpctl {PROTOCOL}",
                r.v
            ),
        ));
    }
    if r.ok {
        return Ok(r.data.unwrap_or(Value::Null));
    }
    let code = match r.kind {
        Some(ErrorKind::NotFound) => NOT_FOUND,
        _ => FAILED,
    };
    Err(fail(code, r.error.unwrap_or_else(|| "failed".into())))
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// `SESSION` or `TUNNEL/SESSION`.
fn session_id(id: &str) -> Result<Value, Fail> {
    let bad = || {
        fail(
            2,
            format!("bad session ID {id:?}: give SESSION or TUNNEL/SESSION (numbers)"),
        )
    };
    match id.split_once('/') {
        Some((t, s)) => Ok(json!({
            "tunnel": t.trim().parse::<u32>().map_err(|_| bad())?,
            "session": s.trim().parse::<u32>().map_err(|_| bad())?,
        })),
        None => Ok(json!({"session": id.trim().parse::<u32>().map_err(|_| bad())?})),
    }
}

fn with_cmd(cmd: &str, mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("cmd".into(), json!(cmd));
    }
    v
}

fn run(a: &Args) -> Result<(), Fail> {
    let out = |v: &Value, human: &dyn Fn(&Value)| {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
            );
        } else {
            human(v);
        }
    };
    match &a.cmd {
        Cmd::Completion { shell } => {
            let mut cmd = Args::command();
            let sh = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(sh, &mut cmd, "l2xdpctl", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Show(Show::Tunnels) => {
            let v = ask(&a.socket, json!({"cmd": "tunnels"}), TIMEOUT)?;
            out(&v, &human_tunnels);
            Ok(())
        }
        Cmd::Show(Show::Sessions { tunnel, user }) => {
            let v = ask(
                &a.socket,
                json!({"cmd": "sessions", "tunnel": tunnel, "user": user}),
                TIMEOUT,
            )?;
            out(&v, &human_sessions);
            Ok(())
        }
        Cmd::Show(Show::Session { id }) => {
            let v = ask(&a.socket, with_cmd("session", session_id(id)?), TIMEOUT)?;
            out(&v, &human_session);
            Ok(())
        }
        Cmd::Show(Show::Stats {
            interval,
            sessions,
            count,
        }) => stats(&a.pins, *interval, *sessions, *count, &|v| {
            if a.json && *count != 1 {
                println!("{v}");
            } else {
                out(v, &human_stats);
            }
            let _ = std::io::stdout().flush();
        }),
        Cmd::Clear(Clear::Session { id }) => {
            let v = ask(
                &a.socket,
                with_cmd("clear_session", session_id(id)?),
                TIMEOUT,
            )?;
            out(&v, &|v| {
                println!(
                    "session {}/{} cleared (CDN sent)",
                    s(&v["tunnel"]),
                    s(&v["session"])
                )
            });
            Ok(())
        }
        Cmd::Clear(Clear::Tunnel { id }) => {
            let v = ask(
                &a.socket,
                json!({"cmd": "clear_tunnel", "tunnel": id}),
                TIMEOUT,
            )?;
            out(&v, &|v| {
                println!("tunnel {} cleared (StopCCN sent)", s(&v["tunnel"]))
            });
            Ok(())
        }
        Cmd::Failover(Failover::Status) => {
            let v = ask(&a.socket, json!({"cmd": "failover"}), TIMEOUT)?;
            out(&v, &human_failover);
            Ok(())
        }
        Cmd::Failover(Failover::Drill { force, timeout }) => {
            let v = ask(
                &a.socket,
                json!({"cmd": "failover_drill", "force": force, "timeout_ms": timeout * 1000}),
                Duration::from_secs(timeout + 30),
            )?;
            let failed = v["tunnels"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["outcome"] != "recovered"));
            let ok = v["complete"] == true && !failed;
            let mut v = v;
            if let Some(o) = v.as_object_mut() {
                o.insert("ok".into(), json!(ok));
            }
            out(&v, &human_drill);
            if !ok {
                return Err(Fail {
                    printed: true,
                    ..fail(FAILED, "failover drill: not every tunnel was recovered")
                });
            }
            Ok(())
        }
        Cmd::Config(Config::Check { file }) => {
            let cfg = DaemonConfig::load(file).map_err(|e| fail(FAILED, e.to_string()))?;
            cfg.credentials().map_err(|e| fail(FAILED, e.to_string()))?;
            let v = json!({"ok": true, "path": file});
            out(&v, &|_| println!("{}: ok", file.display()));
            Ok(())
        }
        Cmd::Config(Config::Reload) => {
            let v = ask(&a.socket, json!({"cmd": "reload"}), TIMEOUT)?;
            out(&v, &|v| {
                let changed: Vec<String> = v["changed"]
                    .as_array()
                    .map(|c| c.iter().map(s).collect())
                    .unwrap_or_default();
                println!("reloaded {}: applied {}", s(&v["path"]), changed.join(", "));
                if let Some(p) = v["pool"].as_array() {
                    println!("pool: {} addresses, {} leased", s(&p[0]), s(&p[1]));
                }
            });
            Ok(())
        }
    }
}

/// Two snapshots `interval` seconds apart, and the rates between them.
fn stats(
    pins: &Path,
    interval: f64,
    per_session: bool,
    count: u64,
    report: &dyn Fn(&Value),
) -> Result<(), Fail> {
    #[cfg(not(feature = "xdp"))]
    {
        let _ = (pins, interval, per_session, count, report);
        Err(fail(
            NO_FAST_PATH,
            "this l2xdpctl was built without the `xdp` feature: it cannot read the fast path's counters",
        ))
    }
    #[cfg(feature = "xdp")]
    stats_xdp(pins, interval, per_session, count, report)
}

#[cfg(feature = "xdp")]
fn stats_xdp(
    pins: &Path,
    interval: f64,
    per_session: bool,
    count: u64,
    report: &dyn Fn(&Value),
) -> Result<(), Fail> {
    let maps = StatsMaps::open(pins).map_err(|e| {
        fail(
            NO_FAST_PATH,
            format!(
                "cannot read the fast path's counters under {}: {e} (is l2xdp-dataplane attached with --pin-dir {}? --pins)",
                pins.display(),
                pins.display()
            ),
        )
    })?;
    let read = |m: &StatsMaps| -> Result<Snapshot, Fail> {
        m.snapshot(per_session).map_err(|e| {
            fail(
                NO_FAST_PATH,
                format!("reading the fast path's counters: {e}"),
            )
        })
    };
    let mut t0 = std::time::Instant::now();
    let mut a = read(&maps)?;
    let mut n = 0;
    while count == 0 || n < count {
        std::thread::sleep(Duration::from_secs_f64(interval.max(0.0)));
        let b = read(&maps)?;
        let t1 = std::time::Instant::now();
        let rates = Rates::between(&a, &b, (t1 - t0).as_secs_f64());
        report(&json!({"pins": pins, "snapshot": b, "rates": rates}));
        (a, t0) = (b, t1);
        n += 1;
    }
    Ok(())
}

/// A value as table text: strings unquoted, null as "-".
fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", l2xdp_dataplane_api::table::render(header, rows));
}

fn rows(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn cap(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    let mut c = String::new();
    if v["control"] == true {
        c.push('C');
    }
    if v["data"] == true {
        c.push('D');
    }
    format!("{c} {}ms", s(&v["recovery_time_ms"]))
}

fn human_tunnels(v: &Value) {
    let r: Vec<Vec<String>> = rows(v)
        .iter()
        .map(|t| {
            vec![
                s(&t["tunnel"]),
                s(&t["peer_tunnel"]),
                s(&t["peer"]["addr"]),
                s(&t["version"]),
                s(&t["state"]),
                s(&t["peer_host_name"]),
                s(&t["sessions"]),
                cap(&t["peer_failover"]),
            ]
        })
        .collect();
    table(
        &[
            "TUNNEL",
            "PEER-TUNNEL",
            "PEER",
            "VERSION",
            "STATE",
            "PEER-HOST",
            "SESSIONS",
            "PEER-FAILOVER",
        ],
        &r,
    );
}

fn human_sessions(v: &Value) {
    let r: Vec<Vec<String>> = rows(v)
        .iter()
        .map(|x| {
            vec![
                s(&x["tunnel"]),
                s(&x["session"]),
                s(&x["peer_session"]),
                s(&x["version"]),
                s(&x["user"]),
                s(&x["ppp"]),
                s(&x["ipv4"]),
                s(&x["installed"]),
            ]
        })
        .collect();
    table(
        &[
            "TUNNEL",
            "SESSION",
            "PEER-SESSION",
            "VERSION",
            "USER",
            "PPP",
            "IPV4",
            "INSTALLED",
        ],
        &r,
    );
    println!("{} sessions", r.len());
}

fn human_session(v: &Value) {
    let c = &v["counters"];
    let kv = [
        (
            "session",
            format!("{}/{}", s(&v["tunnel"]), s(&v["session"])),
        ),
        (
            "peer session",
            format!("{}/{}", s(&v["peer_tunnel"]), s(&v["peer_session"])),
        ),
        ("version", s(&v["version"])),
        ("state", s(&v["state"])),
        ("peer", s(&v["peer"]["addr"])),
        ("local", s(&v["local"])),
        ("user", s(&v["user"])),
        ("ppp phase", s(&v["ppp"])),
        (
            "lcp / ipcp / ipv6cp",
            format!("{} / {} / {}", s(&v["lcp"]), s(&v["ipcp"]), s(&v["ipv6cp"])),
        ),
        ("subscriber ipv4", s(&v["ipv4"])),
        ("local ipv4", s(&v["local_ipv4"])),
        ("installed", s(&v["installed"])),
        (
            "upstream",
            if c.is_null() {
                "-".into()
            } else {
                format!(
                    "{} packets, {} bytes",
                    s(&c["rx_packets"]),
                    s(&c["rx_bytes"])
                )
            },
        ),
        (
            "downstream",
            if c.is_null() {
                "-".into()
            } else {
                format!(
                    "{} packets, {} bytes",
                    s(&c["tx_packets"]),
                    s(&c["tx_bytes"])
                )
            },
        ),
        ("failover persisted", s(&v["persisted"])),
        (
            "failover stale / synced",
            format!("{} / {}", s(&v["stale"]), s(&v["synced"])),
        ),
    ];
    for (k, val) in kv {
        println!("{k:<24} {val}");
    }
}

fn rate(pps: &Value, bps: &Value) -> String {
    let p = pps.as_f64().unwrap_or(0.0);
    let b = bps.as_f64().unwrap_or(0.0);
    format!("{p:.0} pps {:.3} Mbit/s", b / 1e6)
}

fn human_stats(v: &Value) {
    let snap = &v["snapshot"];
    let rates = &v["rates"];
    println!(
        "fast path under {}: {} sessions with counters, {} gateway pings answered, {} SCCRQs dropped over budget, rates over {:.2} s",
        s(&v["pins"]),
        s(&snap["sessions"]),
        s(&snap["gateway_echo"]),
        s(&snap["sccrq_over_budget"]),
        rates["interval_secs"].as_f64().unwrap_or(0.0)
    );
    let row = |name: String, c: &Value, r: &Value| {
        vec![
            name,
            s(&c["upstream"]["packets"]),
            s(&c["upstream"]["bytes"]),
            rate(&r["upstream"]["pps"], &r["upstream"]["bps"]),
            s(&c["downstream"]["packets"]),
            s(&c["downstream"]["bytes"]),
            rate(&r["downstream"]["pps"], &r["downstream"]["bps"]),
            s(&c["to_control"]),
            s(&c["to_kernel"]),
            s(&c["dropped"]),
        ]
    };
    let mut r: Vec<Vec<String>> = rows(&snap["cpus"])
        .iter()
        .enumerate()
        .map(|(i, c)| row(format!("cpu{i}"), c, &rates["cpus"][i]))
        .collect();
    r.push(row("all".into(), &snap["total"], &rates["total"]));
    table(
        &[
            "CPU",
            "UP-PKTS",
            "UP-BYTES",
            "UP-RATE",
            "DOWN-PKTS",
            "DOWN-BYTES",
            "DOWN-RATE",
            "TO-CONTROL",
            "TO-KERNEL",
            "DROPPED",
        ],
        &r,
    );
    println!();
    let d: Vec<Vec<String>> = rows(&snap["drops"])
        .iter()
        .map(|d| vec![s(&d["reason"]), s(&d["packets"])])
        .collect();
    table(&["DROP-REASON", "PACKETS"], &d);
    let k: Vec<Vec<String>> = rows(&snap["kernel_path"])
        .iter()
        .map(|k| vec![s(&k["direction"]), s(&k["reason"]), s(&k["packets"])])
        .collect();
    if !k.is_empty() {
        println!();
        table(&["KERNEL-PATH", "REASON", "PACKETS"], &k);
    }
    let per: Vec<Vec<String>> = rows(&snap["per_session"])
        .iter()
        .map(|x| {
            vec![
                format!(
                    "v{} {}/{}",
                    s(&x["version"]),
                    s(&x["tunnel"]),
                    s(&x["session"])
                ),
                s(&x["upstream"]["packets"]),
                s(&x["upstream"]["bytes"]),
                s(&x["downstream"]["packets"]),
                s(&x["downstream"]["bytes"]),
            ]
        })
        .collect();
    if !per.is_empty() {
        println!();
        table(
            &["SESSION", "UP-PKTS", "UP-BYTES", "DOWN-PKTS", "DOWN-BYTES"],
            &per,
        );
    }
}

fn recovery(r: &Value) -> String {
    if r.is_null() {
        return "-".into();
    }
    match r["duration_ms"].as_u64() {
        Some(ms) => format!("{} in {ms} ms", s(&r["outcome"])),
        None => s(&r["outcome"]),
    }
}

fn human_failover(v: &Value) {
    println!(
        "our capability: {}; persisting: {}",
        cap(&v["ours"]),
        s(&v["persisting"])
    );
    let r: Vec<Vec<String>> = rows(&v["tunnels"])
        .iter()
        .map(|t| {
            vec![
                s(&t["tunnel"]),
                s(&t["peer"]["addr"]),
                s(&t["state"]),
                s(&t["role"]),
                cap(&t["peer_failover"]),
                s(&t["control"]),
                s(&t["data"]),
                s(&t["recovering"]),
                recovery(&t["last_recovery"]),
            ]
        })
        .collect();
    table(
        &[
            "TUNNEL",
            "PEER",
            "STATE",
            "ROLE",
            "PEER-CAP",
            "C",
            "D",
            "RECOVERING",
            "LAST-RECOVERY",
        ],
        &r,
    );
    let t = &v["totals"];
    println!(
        "recoveries: {} recovered, {} failed, {} ms in total",
        s(&t["recovered"]),
        s(&t["failed"]),
        s(&t["duration_ms_sum"])
    );
    if let Some(c) = v["counters"].as_object() {
        for (k, n) in c {
            println!("  {k}: {}", s(n));
        }
    }
}

fn human_drill(v: &Value) {
    let r: Vec<Vec<String>> = rows(&v["tunnels"])
        .iter()
        .map(|t| {
            vec![
                s(&t["tunnel"]),
                s(&t["outcome"]),
                s(&t["sessions"]),
                t["duration_ms"]
                    .as_u64()
                    .map_or("-".into(), |ms| format!("{ms} ms")),
                s(&t["reason"]),
            ]
        })
        .collect();
    table(&["TUNNEL", "OUTCOME", "SESSIONS", "DURATION", "REASON"], &r);
    println!(
        "failover drill: {} sessions restored from the store; {} in {} ms",
        s(&v["sessions_restored"]),
        if v["complete"] == true {
            "every recovery ended"
        } else {
            "NOT every recovery ended"
        },
        s(&v["duration_ms"])
    );
}
