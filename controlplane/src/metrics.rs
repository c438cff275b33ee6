//! `l2xdpd`'s Prometheus endpoint (`[metrics] listen`): `GET /metrics` over plain HTTP/1.1,
//! answered in the Prometheus text exposition format 0.0.4 — every family with its `# HELP`
//! and `# TYPE` lines, label values escaped (`\\`, `\"`, `\n`).
//!
//! Series, all prefixed `l2xdp_`:
//! - control plane: `tunnels{state}`, `sessions{ppp}` (sessions by PPP phase, "none" for
//!   pseudowires), `sessions_installed`, `tunnels_setup_total`, `tunnels_teardown_total`,
//!   `sessions_setup_total`, `sessions_teardown_total`, `control_retransmissions_total`,
//!   `control_messages_total{direction,type}`, `pool_addresses{state}`;
//! - RFC 4951: `failover_events_total{step}` (the L2TP layer's failover steps),
//!   `recoveries_total{outcome}`, `recovery_duration_seconds` (a summary: `_sum`, `_count`
//!   of the recovered tunnels), `recoveries_in_progress`, `state_store_damaged_total{kind}`
//!   (damaged or unusable failover stores met at start-up: `empty`, `corrupt`, `records`,
//!   `unwritable`; see `l2tp/failover/damage.rs`);
//! - fast path (XDP mode, from the pinned maps via [`l2xdp_dataplane::stats`]):
//!   `fastpath_packets_total{direction,cpu}`, `fastpath_bytes{direction}` (a counter: removed
//!   sessions' bytes stay), `fastpath_gateway_echo_total` (pings to the LNS's PPP address
//!   answered), `fastpath_sccrq_over_budget_total` (SCCRQs dropped in XDP beyond
//!   `[l2tp.limits] xdp_sccrq_per_sec`), `fastpath_to_control_total`,
//!   `fastpath_to_kernel_total{direction,reason}`,
//!   `fastpath_drops_total{reason}`;
//! - per session, only with `per_session = true`: `session_packets{tunnel,session,user,direction}`
//!   and `session_bytes{...}` from the fast path's per-session counters.
//!
//! Counters restart from 0 when the control plane restarts or runs a failover drill (a new
//! node); Prometheus handles such resets.
//!
//! At most [`MAX_CONNECTIONS`] connections are served at a time (more wait in the listen
//! backlog), a request head is at most [`MAX_REQUEST`] bytes, reading it and writing the reply
//! are bounded by [`IO_TIMEOUT`], and `accept()` errors are retried after a back-off.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "xdp")]
use l2xdp_dataplane::stats::StatsMaps;
use l2xdp_dataplane_api::stats::{SessionStats, Snapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::driver::Handle;
use crate::node::{Node, RecoveryOutcome};

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic.
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_sum` and `_count`.
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// `\` and newline escaped (HELP text).
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `\`, `"` and newline escaped (label values).
pub fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as the format writes it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    /// Starts a family: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of the family just started (`name` may carry a `_sum`/`_count` suffix).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value(v));
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// What the node contributes, gathered in one visit to the driver.
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    tunnels_by_state: std::collections::BTreeMap<String, u64>,
    sessions_by_ppp: std::collections::BTreeMap<String, u64>,
    installed: u64,
    l2tp: crate::l2tp::Counters,
    node: crate::node::NodeCounters,
    recovered: u64,
    failed: u64,
    recovery_ms_sum: u64,
    in_progress: u64,
    pool: Option<(u64, u64)>,
    /// Entries of the node's sender map and source addresses whose SCCRQ rate is tracked.
    senders: (u64, u64),
    /// Per session: (tunnel, session, user, counters), when asked for.
    sessions: Vec<(u32, u32, String, SessionStats)>,
}

impl NodeMetrics {
    /// Reads the node; with `per_session`, each installed session's fast-path counters.
    pub fn gather(n: &Node, per_session: bool) -> NodeMetrics {
        let mut m = NodeMetrics::default();
        for t in n.tunnel_status() {
            *m.tunnels_by_state.entry(t.state).or_default() += 1;
        }
        let sessions = n.session_status();
        for s in &sessions {
            *m.sessions_by_ppp.entry(s.ppp.clone()).or_default() += 1;
            m.installed += u64::from(s.installed);
        }
        m.l2tp = n.registry().counters();
        m.node = n.counters();
        let t = n.recovery_totals();
        m.recovered = t.recovered;
        m.failed = t.failed;
        m.recovery_ms_sum = t.duration_ms_sum;
        m.in_progress = n
            .recoveries()
            .iter()
            .filter(|r| r.outcome == RecoveryOutcome::Recovering)
            .count() as u64;
        m.pool = n.pool_usage();
        m.senders = (
            n.sender_entries() as u64,
            n.registry().rate_limited_sources() as u64,
        );
        if per_session {
            for s in sessions.iter().filter(|s| s.installed) {
                let Some(key) = n.session_key((s.tunnel, s.session)) else {
                    continue;
                };
                if let Ok(c) = n.dataplane().counters(&key) {
                    m.sessions.push((
                        s.tunnel,
                        s.session,
                        s.user.clone().unwrap_or_default(),
                        SessionStats::new(key, c),
                    ));
                }
            }
        }
        m
    }
}

/// The exposition of `node` and, when there is one, the fast path's `fast` snapshot.
pub fn render(node: &NodeMetrics, fast: Option<&Snapshot>, per_session: bool) -> String {
    let mut e = Exposition::default();
    e.family(
        "l2xdp_tunnels",
        Kind::Gauge,
        "Control connections by state.",
    );
    for (state, n) in &node.tunnels_by_state {
        e.sample("l2xdp_tunnels", &[("state", state)], *n as f64);
    }
    e.family(
        "l2xdp_sessions",
        Kind::Gauge,
        "Established sessions by PPP phase (\"none\": L2TPv3 pseudowires and LAC-side sessions).",
    );
    for (ppp, n) in &node.sessions_by_ppp {
        e.sample("l2xdp_sessions", &[("ppp", ppp)], *n as f64);
    }
    e.single(
        "l2xdp_sessions_installed",
        Kind::Gauge,
        "Sessions installed in the fast path.",
        node.installed as f64,
    );
    e.single(
        "l2xdp_tunnels_setup_total",
        Kind::Counter,
        "Control connections established.",
        node.l2tp.tunnels_up as f64,
    );
    e.single(
        "l2xdp_tunnels_teardown_total",
        Kind::Counter,
        "Control connections that went down.",
        node.node.tunnels_down as f64,
    );
    e.single(
        "l2xdp_sessions_setup_total",
        Kind::Counter,
        "Sessions established.",
        node.l2tp.sessions_up as f64,
    );
    e.single(
        "l2xdp_sessions_teardown_total",
        Kind::Counter,
        "Sessions that went down.",
        node.node.sessions_down as f64,
    );
    e.single(
        "l2xdp_control_retransmissions_total",
        Kind::Counter,
        "Control message retransmissions (RFC 2661 section 5.8).",
        node.l2tp.retransmissions as f64,
    );
    e.family(
        "l2xdp_control_messages_total",
        Kind::Counter,
        "Control messages by direction and type.",
    );
    for (dir, map) in [
        ("in", &node.l2tp.messages_in),
        ("out", &node.l2tp.messages_out),
    ] {
        for (ty, n) in map {
            e.sample(
                "l2xdp_control_messages_total",
                &[("direction", dir), ("type", ty)],
                *n as f64,
            );
        }
    }
    if let Some((cap, leased)) = node.pool {
        e.family(
            "l2xdp_pool_addresses",
            Kind::Gauge,
            "Subscriber address pool: leased (the LNS's own address included) and free.",
        );
        e.sample(
            "l2xdp_pool_addresses",
            &[("state", "leased")],
            leased as f64,
        );
        e.sample(
            "l2xdp_pool_addresses",
            &[("state", "free")],
            cap.saturating_sub(leased) as f64,
        );
    }
    e.family(
        "l2xdp_state_store_damaged_total",
        Kind::Counter,
        "Damaged or unusable RFC 4951 failover stores met at start-up, by kind (empty, corrupt, records, unwritable).",
    );
    for (kind, n) in crate::l2tp::failover::damaged_counts() {
        e.sample(
            "l2xdp_state_store_damaged_total",
            &[("kind", kind)],
            n as f64,
        );
    }
    e.family(
        "l2xdp_sccrq_admission_total",
        Kind::Counter,
        "SCCRQs and half-open tunnels under the admission limits, by outcome (dropped over the per-source rate, refused, half-open opened, evicted, timed out).",
    );
    for (outcome, n) in &node.l2tp.admission {
        e.sample(
            "l2xdp_sccrq_admission_total",
            &[("outcome", outcome)],
            *n as f64,
        );
    }
    e.family(
        "l2xdp_control_invalid_total",
        Kind::Counter,
        "Control datagrams dropped or refused as invalid, by reason (malformed, unknown tunnel, out of state, ...).",
    );
    for (reason, n) in &node.l2tp.invalid {
        e.sample(
            "l2xdp_control_invalid_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    e.family(
        "l2xdp_sender_entries",
        Kind::Gauge,
        "Bounded per-sender tables: peers' local addresses (map=\"peers\"), sources whose SCCRQ rate is tracked (map=\"rate\").",
    );
    e.sample(
        "l2xdp_sender_entries",
        &[("map", "peers")],
        node.senders.0 as f64,
    );
    e.sample(
        "l2xdp_sender_entries",
        &[("map", "rate")],
        node.senders.1 as f64,
    );
    e.family(
        "l2xdp_failover_events_total",
        Kind::Counter,
        "RFC 4951 failover steps of the L2TP layer (tunnels and sessions restored, recovery tunnels, resets, FSQ/FSR, clearances).",
    );
    for (step, n) in &node.l2tp.failover {
        e.sample("l2xdp_failover_events_total", &[("step", step)], *n as f64);
    }
    e.family(
        "l2xdp_recoveries_total",
        Kind::Counter,
        "RFC 4951 tunnel recoveries ended, by outcome.",
    );
    e.sample(
        "l2xdp_recoveries_total",
        &[("outcome", "recovered")],
        node.recovered as f64,
    );
    e.sample(
        "l2xdp_recoveries_total",
        &[("outcome", "failed")],
        node.failed as f64,
    );
    e.single(
        "l2xdp_recoveries_in_progress",
        Kind::Gauge,
        "RFC 4951 tunnel recoveries under way.",
        node.in_progress as f64,
    );
    e.family(
        "l2xdp_recovery_duration_seconds",
        Kind::Summary,
        "Time from the start of a tunnel's RFC 4951 recovery to its end (recovered tunnels).",
    );
    e.sample(
        "l2xdp_recovery_duration_seconds_sum",
        &[],
        node.recovery_ms_sum as f64 / 1000.0,
    );
    e.sample(
        "l2xdp_recovery_duration_seconds_count",
        &[],
        node.recovered as f64,
    );
    if let Some(f) = fast {
        e.family(
            "l2xdp_fastpath_packets_total",
            Kind::Counter,
            "Packets forwarded by the fast path, by direction (upstream: access to core, decapsulated; downstream: core to access, encapsulated) and CPU.",
        );
        for (i, c) in f.cpus.iter().enumerate() {
            let cpu = i.to_string();
            e.sample(
                "l2xdp_fastpath_packets_total",
                &[("direction", "upstream"), ("cpu", &cpu)],
                c.upstream.packets as f64,
            );
            e.sample(
                "l2xdp_fastpath_packets_total",
                &[("direction", "downstream"), ("cpu", &cpu)],
                c.downstream.packets as f64,
            );
        }
        e.family(
            "l2xdp_fastpath_bytes",
            Kind::Counter,
            "Bytes forwarded by the fast path, by direction (monotonic: a removed session's bytes stay counted).",
        );
        e.sample(
            "l2xdp_fastpath_bytes",
            &[("direction", "upstream")],
            f.total.upstream.bytes as f64,
        );
        e.sample(
            "l2xdp_fastpath_bytes",
            &[("direction", "downstream")],
            f.total.downstream.bytes as f64,
        );
        e.single(
            "l2xdp_fastpath_gateway_echo_total",
            Kind::Counter,
            "ICMP echo requests to the LNS's own PPP address answered by the fast path.",
            f.gateway_echo as f64,
        );
        e.single(
            "l2xdp_fastpath_sccrq_over_budget_total",
            Kind::Counter,
            "SCCRQs (control messages to tunnel 0) the fast path dropped beyond [l2tp.limits] xdp_sccrq_per_sec.",
            f.sccrq_over_budget as f64,
        );
        e.single(
            "l2xdp_fastpath_to_control_total",
            Kind::Counter,
            "Packets the fast path handed to the control plane (L2TP and PPP control).",
            f.total.to_control as f64,
        );
        e.family(
            "l2xdp_fastpath_to_kernel_total",
            Kind::Counter,
            "Packets the fast path handed to the kernel stack because bpf_fib_lookup gave no next hop, by direction and reason (no_neigh, not_fwded, unreachable, frag_needed, other, fwd_disabled); downstream also neigh_redirect (sent by tc_l2tp_core with bpf_redirect_neigh), dropped_no_tc and mark_spoofed (dropped).",
        );
        for k in &f.kernel_path {
            e.sample(
                "l2xdp_fastpath_to_kernel_total",
                &[("direction", &k.direction), ("reason", &k.reason)],
                k.packets as f64,
            );
        }
        e.family(
            "l2xdp_fastpath_drops_total",
            Kind::Counter,
            "Packets dropped by the fast path, by reason.",
        );
        for d in &f.drops {
            e.sample(
                "l2xdp_fastpath_drops_total",
                &[("reason", &d.reason)],
                d.packets as f64,
            );
        }
    }
    if per_session {
        for (name, help, bytes) in [
            (
                "l2xdp_session_packets",
                "Packets of one session in the fast path, by direction.",
                false,
            ),
            (
                "l2xdp_session_bytes",
                "Bytes of one session in the fast path, by direction.",
                true,
            ),
        ] {
            e.family(name, Kind::Gauge, help);
            for (t, s, user, st) in &node.sessions {
                let (t, s) = (t.to_string(), s.to_string());
                for (dir, tr) in [("upstream", st.upstream), ("downstream", st.downstream)] {
                    let v = if bytes { tr.bytes } else { tr.packets };
                    e.sample(
                        name,
                        &[
                            ("tunnel", &t),
                            ("session", &s),
                            ("user", user),
                            ("direction", dir),
                        ],
                        v as f64,
                    );
                }
            }
        }
    }
    e.finish()
}

/// The endpoint's settings.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Per-session series.
    pub per_session: bool,
    /// The fast path's pins (XDP mode); `None`: no fast-path series.
    pub pin_dir: Option<PathBuf>,
    /// The RADIUS client (`[radius]`): its series are appended.
    pub radius: Option<crate::aaa::RadiusClient>,
}

/// Binds the endpoint (so that a bad address fails the start-up).
pub async fn bind(cfg: &MetricsConfig) -> std::io::Result<TcpListener> {
    TcpListener::bind(cfg.listen).await
}

/// Connections served at a time; more wait in the listen backlog (they cost no descriptor
/// of ours until accepted).
pub const MAX_CONNECTIONS: usize = 16;
/// The longest request head read (`400 Bad Request` beyond).
pub const MAX_REQUEST: usize = 8192;
/// How long a client may take to send its request head, and to read the reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `GET /metrics` on `listener` until the task is dropped: at most
/// [`MAX_CONNECTIONS`] at a time, requests of at most [`MAX_REQUEST`] bytes, each read and
/// write bounded by [`IO_TIMEOUT`]; `accept()` errors (fd exhaustion) are logged
/// (rate-limited) and retried after a back-off, never the end of the loop.
pub async fn serve(listener: TcpListener, cfg: MetricsConfig, handle: Handle) {
    let maps: Maps = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut errors = crate::control::AcceptErrors::new("metrics");
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(s) => {
                errors.ok();
                s
            }
            Err(e) => {
                drop(permit);
                errors.failed(&e).await;
                continue;
            }
        };
        let (cfg, handle, maps) = (cfg.clone(), handle.clone(), maps.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &cfg, &handle, &maps).await {
                tracing::debug!(%e, "metrics connection ended");
            }
            drop(permit);
        });
    }
}

/// The pinned counter maps, opened on first use.
#[cfg(feature = "xdp")]
type Maps = std::sync::Arc<std::sync::Mutex<Option<StatsMaps>>>;
/// Built without the XDP fast path: nothing to open.
#[cfg(not(feature = "xdp"))]
type Maps = std::sync::Arc<std::sync::Mutex<Option<std::convert::Infallible>>>;

/// The fast path's snapshot, read on a blocking thread (one map lookup per session), opening
/// the pinned maps on first use and again after an error (`l2xdp-dataplane` may have
/// re-attached).
async fn fast_path(cfg: &MetricsConfig, maps: &Maps) -> Option<Snapshot> {
    let dir = cfg.pin_dir.clone()?;
    let maps = maps.clone();
    tokio::task::spawn_blocking(move || read_fast_path(&dir, &maps))
        .await
        .ok()
        .flatten()
}

#[cfg(not(feature = "xdp"))]
fn read_fast_path(_dir: &std::path::Path, _maps: &Maps) -> Option<Snapshot> {
    None
}

#[cfg(feature = "xdp")]
fn read_fast_path(dir: &std::path::Path, maps: &Maps) -> Option<Snapshot> {
    let mut m = maps
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if m.is_none() {
        match StatsMaps::open(dir) {
            Ok(s) => *m = Some(s),
            Err(e) => {
                tracing::warn!(%e, "metrics: fast-path counters unavailable");
                return None;
            }
        }
    }
    match m.as_ref().map(|s| s.snapshot(false)) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::warn!(%e, "metrics: reading the fast-path counters failed");
            *m = None;
            None
        }
        None => None,
    }
}

async fn connection(
    mut stream: TcpStream,
    cfg: &MetricsConfig,
    handle: &Handle,
    maps: &Maps,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(IO_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(false);
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if buf.len() > MAX_REQUEST {
                return Ok(false);
            }
        }
    })
    .await
    .unwrap_or(Ok(false))?;
    let line = String::from_utf8_lossy(&buf);
    let mut words = line.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, ctype, body) = if !head {
        ("400 Bad Request", "text/plain", "bad request\n".to_string())
    } else if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        )
    } else if path != "/metrics" && !path.starts_with("/metrics?") {
        ("404 Not Found", "text/plain", "see /metrics\n".to_string())
    } else {
        let per_session = cfg.per_session;
        match handle
            .inspect(move |n| NodeMetrics::gather(n, per_session))
            .await
        {
            Ok(node) => {
                let fast = fast_path(cfg, maps).await;
                (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    render(&node, fast.as_ref(), per_session)
                        + &cfg
                            .radius
                            .as_ref()
                            .map(crate::aaa::metrics::render)
                            .unwrap_or_default(),
                )
            }
            Err(e) => ("503 Service Unavailable", "text/plain", format!("{e}\n")),
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the client does not read"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_help_are_escaped() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "a \\ b\nc");
        e.sample("x_total", &[("user", "a\"b\\c\nd")], 3.0);
        let t = e.finish();
        assert_eq!(
            t,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{user=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn special_values() {
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(0.5), "0.5");
        assert_eq!(value(12.0), "12");
    }
}
