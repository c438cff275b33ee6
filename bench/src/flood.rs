//! `flood`: an LNS under a flood from spoofed sources, and a real LAC during it.
//!
//! An `l2xdpd` process (the LNS under test, in-memory fast path, its default limits:
//! `max_tunnels` 16,384) on 127.0.0.1, logging at INFO to a file. A sender thread writes UDP
//! datagrams to it through a raw socket (`IPPROTO_RAW`, root) with source addresses it makes
//! up in 127.1.0.0/16 and beyond (loopback accepts all of 127/8; the LNS's answers go to
//! addresses nobody listens on): either SCCRQs (`--rate` per second from `--sources`
//! addresses in turn, for `--secs`), or with `--junk` one-byte datagrams each from a source
//! address and port of its own. During an SCCRQ flood this project's LAC emulator (the
//! control plane's initiator role, PPP client) on 127.0.0.1 opens `--tunnels` control
//! connections and one session with PPP (CHAP, IPCP) in each.
//!
//! Reported: the LAC's tunnels and PPP sessions up, l2xdpd's VmRSS before, at its peak during
//! the flood, at the flood's end and `--settle-secs` after, the lines it logged, and what it
//! counts (its tunnels by state at the end, from the control socket).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::{L2tpConfig, Peer, Registry};
use l2xdp_controlplane::ppp::PppConfig;
use l2xdp_controlplane::random::Random;
use l2xdp_lab::cp::l2xdpd::L2xdpd;
use serde::Serialize;

use crate::common::Header;
use crate::lac::Lac;
use crate::lns::{rss_kib, status_when, LnsFiles, LnsSetup};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Datagrams per second.
    pub rate: u32,
    /// Distinct spoofed source addresses (SCCRQ flood), used in turn.
    pub sources: u32,
    /// How long the flood lasts.
    pub secs: u64,
    /// One-byte datagrams, each from its own source address and port, instead of SCCRQs (no
    /// LAC then).
    pub junk: bool,
    /// Control connections the LAC opens during the flood (one PPP session each).
    pub tunnels: usize,
    /// Waits this long after the flood before the last memory reading.
    pub settle: Duration,
    /// The `l2xdpd` binary.
    pub l2xdpd: PathBuf,
    /// Where l2xdpd's log goes (INFO).
    pub log: PathBuf,
    /// `Some(budget)`: the XDP fast path in a lab of namespaces ([`crate::flood_xdp`]) with
    /// `[l2tp.limits] xdp_sccrq_per_sec = budget` (0: no budget); `None`: in-memory fast
    /// path on loopback.
    pub xdp_budget: Option<u32>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header,
    /// "sccrq" or "junk".
    pub kind: &'static str,
    /// Datagrams sent by the flood.
    pub sent: u64,
    /// Datagrams per second asked for.
    pub rate: u32,
    /// Distinct source addresses.
    pub sources: u64,
    /// Seconds the flood lasted.
    pub secs: f64,
    /// LAC tunnels asked for, up, and PPP sessions up (IPCP) during the flood.
    pub lac: [usize; 3],
    /// l2xdpd's VmRSS (KiB): before, peak during, at the end of the flood, after settling.
    pub rss_kib: [u64; 4],
    /// l2xdpd's VmRSS split (KiB): [RssAnon, RssFile] before the flood and after settling.
    /// Heap and stacks are anonymous; the executable's pages that the flood's code paths
    /// touched (rejection, rate limiting, ...) are file pages and stay resident too.
    pub rss_parts_kib: [[u64; 2]; 2],
    /// Lines l2xdpd logged (INFO and above), in all.
    pub log_lines: usize,
    /// CPU seconds l2xdpd used during the flood (user + system), and that per second of flood.
    pub cpu_secs: [f64; 2],
    /// l2xdpd's tunnels by state after settling (control socket `tunnels`).
    pub tunnels_after: std::collections::BTreeMap<String, u64>,
    /// What went wrong on the LAC's side, if anything.
    pub lac_error: Option<String>,
    /// XDP mode: the budget (SCCRQs per second, 0: none) and the SCCRQs the fast path
    /// dropped over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_budget: Option<[u64; 2]>,
}

/// CPU time `pid` has used, user + system (seconds; 0 when unreadable).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            // utime and stime are fields 14 and 15: 12 and 13 after the state.
            Some((t(11)? + t(12)?) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// `RssAnon` and `RssFile` of `pid` (KiB; 0 when unreadable).
pub(crate) fn rss_parts_kib(pid: u32) -> [u64; 2] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    [field("RssAnon:"), field("RssFile:")]
}

/// The `l2xdpd` next to this executable.
pub use crate::lns::default_l2xdpd;

/// The first spoofed source address on loopback: 127.1.0.0 upwards (never 127.0.0.x).
pub(crate) const LOOPBACK_SOURCES: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 0);

/// The `n`-th spoofed source address from `base` upwards.
fn source(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n))
}

/// A raw IPv4 socket (`IPPROTO_RAW`: we write the IP header).
pub(crate) struct RawSender {
    fd: libc::c_int,
}

impl RawSender {
    pub(crate) fn open() -> Result<RawSender, String> {
        // SAFETY: plain socket(2); the descriptor is owned by the value and closed on drop.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        if fd < 0 {
            return Err(format!(
                "raw socket (needs root): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(RawSender { fd })
    }

    /// One UDP datagram from `src` to `dst` (IP checksum by the kernel, UDP checksum 0).
    fn send(&self, buf: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
            return;
        };
        let total = 28 + payload.len();
        buf.clear();
        buf.extend_from_slice(&[0x45, 0]);
        buf.extend_from_slice(&(total as u16).to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        buf.extend_from_slice(&s.ip().octets());
        buf.extend_from_slice(&d.ip().octets());
        buf.extend_from_slice(&s.port().to_be_bytes());
        buf.extend_from_slice(&d.port().to_be_bytes());
        buf.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(payload);
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(d.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: `buf` and `sa` are valid for the lengths given for the call's duration.
        unsafe {
            libc::sendto(
                self.fd,
                buf.as_ptr().cast(),
                buf.len(),
                0,
                std::ptr::from_ref(&sa).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
        }
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        // SAFETY: our descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// An SCCRQ as this project's initiator writes it (L2TPv2, no secret).
pub(crate) fn sccrq(to: SocketAddr) -> Result<Vec<u8>, String> {
    let random = Random::from_os().map_err(|e| e.to_string())?;
    let mut r = Registry::with_random(
        L2tpConfig {
            host_name: "flood".into(),
            ..L2tpConfig::default()
        },
        random,
    );
    r.open_tunnel(
        Peer::udp(to),
        l2xdp_wire::l2tp::header::Version::V2,
        Instant::now(),
    )
    .map_err(|e| e.to_string())?;
    r.poll_transmit()
        .map(|(_, d)| d)
        .ok_or_else(|| "no SCCRQ".to_string())
}

/// A flood under way against l2xdpd `pid`: its sender thread, and a task sampling the peak
/// RSS every 200 ms (one implementation for both modes of the scenario).
pub(crate) struct Flooding {
    pid: u32,
    t0: Instant,
    cpu0: f64,
    stop: Arc<AtomicBool>,
    /// Datagrams sent so far.
    pub(crate) sent: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    sender: std::thread::JoinHandle<Result<(), String>>,
    sampler: tokio::task::JoinHandle<()>,
}

/// What a finished [`Flooding`] measured (RSS in KiB).
pub(crate) struct Flooded {
    pub(crate) secs: f64,
    pub(crate) cpu: f64,
    pub(crate) rss_end: u64,
    pub(crate) peak: u64,
    pub(crate) rss_after: u64,
    pub(crate) parts_after: [u64; 2],
}

impl Flooding {
    /// Starts `send` (given the stop flag and the sent counter) on its own thread; `rss0`:
    /// l2xdpd's RSS before.
    pub(crate) fn start(
        pid: u32,
        rss0: u64,
        send: impl FnOnce(&AtomicBool, &AtomicU64) -> Result<(), String> + Send + 'static,
    ) -> Flooding {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let cpu0 = cpu_secs(pid);
        let sender = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || send(&stop, &sent))
        };
        let peak = Arc::new(AtomicU64::new(rss0));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        Flooding {
            pid,
            t0,
            cpu0,
            stop,
            sent,
            peak,
            sender,
            sampler,
        }
    }

    /// Waits for the sender to finish, stops the sampler, then waits `settle` and measures
    /// what stayed.
    pub(crate) async fn finish(self, settle: Duration) -> Result<Flooded, String> {
        let Flooding {
            pid,
            t0,
            cpu0,
            stop,
            peak,
            sender,
            sampler,
            ..
        } = self;
        let flooded = tokio::task::spawn_blocking(move || sender.join())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the sender thread panicked".to_string())?;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_secs(pid) - cpu0;
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.await;
        flooded?;
        let rss_end = rss_kib(pid);
        let peak = peak.load(Ordering::Relaxed).max(rss_end);
        tokio::time::sleep(settle).await;
        Ok(Flooded {
            secs,
            cpu,
            rss_end,
            peak,
            rss_after: rss_kib(pid),
            parts_after: rss_parts_kib(pid),
        })
    }
}

/// Sends the flood from this thread: `rate` datagrams per second in 10 ms batches, `rate` ×
/// `secs` in all.
pub(crate) fn flood(
    opts: &Options,
    base: Ipv4Addr,
    to: SocketAddr,
    payload: &[u8],
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Result<(), String> {
    let raw = RawSender::open()?;
    let mut buf = Vec::with_capacity(128);
    let start = Instant::now();
    // Exactly rate × secs datagrams, paced at `rate` (later than `secs` if this machine
    // cannot keep up).
    let total = u64::from(opts.rate) * opts.secs;
    let mut n: u64 = 0;
    while n < total && !stop.load(Ordering::Relaxed) {
        let due = ((start.elapsed().as_secs_f64() * f64::from(opts.rate)) as u64).min(total);
        while n < due {
            let src = if opts.junk {
                // Each its own (address, port): 65,536 addresses × ports from 1024 up.
                let i = n as u32;
                SocketAddr::from((source(base, i & 0xffff), 1024 + (i >> 16) as u16))
            } else {
                SocketAddr::from((
                    source(base, (n % u64::from(opts.sources.max(1))) as u32),
                    1701,
                ))
            };
            raw.send(&mut buf, src, to, payload);
            n += 1;
        }
        sent.store(n, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    }
    sent.store(n, Ordering::Relaxed);
    Ok(())
}

async fn tunnels_by_state(lns: &mut L2xdpd) -> std::collections::BTreeMap<String, u64> {
    let sock = lns.socket().to_path_buf();
    let r = tokio::task::spawn_blocking(move || {
        l2xdp_lab::cp::l2xdpd::try_ask(&sock, r#"{"cmd":"tunnels"}"#)
    })
    .await;
    let mut m = std::collections::BTreeMap::new();
    if let Ok(Ok(v)) = r {
        for t in v["data"].as_array().into_iter().flatten() {
            *m.entry(t["state"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
    }
    m
}

/// The LAC during the flood: `n` tunnels, then one session with PPP in each; (tunnels up,
/// sessions up, the first error).
async fn lac_during(lns: SocketAddr, n: usize) -> (usize, usize, Option<String>) {
    let mut lac = match Lac::start(crate::lac::LOOPBACK, n, 1, None, PppConfig::default()) {
        Ok(l) => l,
        Err(e) => return (0, 0, Some(e)),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    let mut err = None;
    let mut up = Vec::new();
    let peer = Peer::udp(lns);
    let mut opened = 0;
    for _ in 0..n {
        match lac
            .handle
            .open_tunnel(peer, l2xdp_wire::l2tp::header::Version::V2)
            .await
        {
            Ok(Ok(_)) => opened += 1,
            Ok(Err(e)) => err = Some(e.to_string()),
            Err(e) => err = Some(e.to_string()),
        }
    }
    let mut down = 0;
    while up.len() + down < opened {
        use l2xdp_controlplane::node::NodeEvent;
        match tokio::time::timeout_at(deadline, lac.events.recv()).await {
            Ok(Some(NodeEvent::TunnelUp { tunnel, .. })) => up.push(tunnel),
            Ok(Some(NodeEvent::TunnelDown { reason, .. })) => {
                down += 1;
                err.get_or_insert(format!("a tunnel went down: {reason}"));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                err.get_or_insert(format!("{} of {opened} tunnels came up", up.len()));
                break;
            }
        }
    }
    let mut ppp = 0;
    for (i, &t) in up.iter().enumerate() {
        match lac.open_session(t, i, deadline).await {
            Ok(_) => ppp += 1,
            Err(e) => {
                err.get_or_insert(e);
            }
        }
    }
    lac.stop().await;
    (up.len(), ppp, err)
}

/// Runs the scenario.
pub async fn run(opts: &Options) -> Result<Report, String> {
    if let Some(budget) = opts.xdp_budget {
        return crate::flood_xdp::run(opts, budget).await;
    }
    let files = LnsFiles::write(&LnsSetup {
        // The default max_tunnels (16,384): LnsFiles adds 16.
        tunnels: 16_384 - 16,
        sessions: 1,
        recovery_time_ms: None,
        one_lac_at_once: false,
    })?;
    if let Some(d) = opts.log.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    std::fs::write(&opts.log, b"").map_err(|e| format!("{}: {e}", opts.log.display()))?;
    let mut lns = L2xdpd::spawn(None, &opts.l2xdpd, &files.files, Some(&opts.log))
        .map_err(|e| e.to_string())?;
    status_when(
        &mut lns,
        Duration::from_secs(30),
        Duration::from_millis(5),
        |_| true,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = lns.pid();
    let rss0 = rss_kib(pid);
    let parts0 = rss_parts_kib(pid);

    let payload = if opts.junk {
        vec![0u8]
    } else {
        sccrq(files.addr)?
    };
    let to = files.addr;
    let flooding = Flooding::start(pid, rss0, {
        let opts = opts.clone();
        move |stop, sent| flood(&opts, LOOPBACK_SOURCES, to, &payload, stop, sent)
    });
    let (mut tup, mut pup, mut lac_error) = (0, 0, None);
    if !opts.junk && opts.tunnels > 0 {
        // Into the flood first: the LNS's tables are as full as they get.
        tokio::time::sleep(Duration::from_secs(opts.secs.min(4))).await;
        (tup, pup, lac_error) = lac_during(files.addr, opts.tunnels).await;
    }
    let sent = flooding.sent.clone();
    let Flooded {
        secs,
        cpu,
        rss_end,
        peak,
        rss_after,
        parts_after,
    } = flooding.finish(opts.settle).await?;
    let tunnels_after = tunnels_by_state(&mut lns).await;
    if let Some(st) = lns.exited() {
        return Err(format!("l2xdpd exited: {st}"));
    }
    drop(lns);
    let log_lines = std::fs::read_to_string(&opts.log)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    Ok(Report {
        header: Header {
            scenario: "flood",
            mode: "control plane (in-memory fast path), spoofed sources on loopback",
            date: crate::machine::utc_now(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            machine: crate::machine::Machine::probe(),
        },
        kind: if opts.junk { "junk" } else { "sccrq" },
        sent: sent.load(Ordering::Relaxed),
        rate: opts.rate,
        sources: if opts.junk {
            sent.load(Ordering::Relaxed)
        } else {
            u64::from(opts.sources)
        },
        secs,
        lac: [if opts.junk { 0 } else { opts.tunnels }, tup, pup],
        rss_kib: [rss0, peak, rss_end, rss_after],
        rss_parts_kib: [parts0, parts_after],
        log_lines,
        cpu_secs: [cpu, cpu / secs.max(1e-9)],
        tunnels_after,
        lac_error,
        xdp_budget: None,
    })
}

/// A readable table of a report.
pub fn table(r: &Report) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let [r0, peak, end, after] = r.rss_kib;
    format!(
        "flood ({}): {} datagrams in {:.1} s ({} /s asked) from {} spoofed sources to l2xdpd: {}\n\
         | what | value |\n\
         | --- | ---: |\n\
         | LAC tunnels up during the flood | {} of {} |\n\
         | LAC PPP sessions up (IPCP) during the flood | {} of {} |\n\
         | l2xdpd VmRSS before (MiB) | {:.1} |\n\
         | peak during the flood (MiB, growth) | {:.1} (+{:.1}) |\n\
         | at the flood's end (MiB) | {:.1} |\n\
         | after settling (MiB, vs before) | {:.1} ({:+.1} %) |\n\
         | of which heap and stacks (RssAnon, MiB: before → after) | {:.2} → {:.2} |\n\
         | of which the executable and libraries (RssFile, MiB: before → after) | {:.2} → {:.2} |\n\
         | lines l2xdpd logged | {} |\n\
         | l2xdpd CPU during the flood (s, share of one core) | {:.1} ({:.0} %) |\n\
         tunnels after: {:?}{}{}",
        r.kind,
        r.sent,
        r.secs,
        r.rate,
        r.sources,
        r.header.mode,
        r.lac[1],
        r.lac[0],
        r.lac[2],
        r.lac[0],
        mib(r0),
        mib(peak),
        mib(peak.saturating_sub(r0)),
        mib(end),
        mib(after),
        (after as f64 - r0 as f64) * 100.0 / (r0.max(1) as f64),
        mib(r.rss_parts_kib[0][0]),
        mib(r.rss_parts_kib[1][0]),
        mib(r.rss_parts_kib[0][1]),
        mib(r.rss_parts_kib[1][1]),
        r.log_lines,
        r.cpu_secs[0],
        r.cpu_secs[1] * 100.0,
        r.tunnels_after,
        r.lac_error
            .as_ref()
            .map(|e| format!("\nLAC: {e}"))
            .unwrap_or_default(),
        r.xdp_budget
            .map(|[b, d]| format!(
                "\nXDP fast path: SCCRQ budget {b} /s (0: none), {d} SCCRQs dropped over it"
            ))
            .unwrap_or_default(),
    )
}
