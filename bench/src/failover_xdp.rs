//! `failover --fast-path xdp`: the failover scenario with the XDP fast path, so that the data
//! packets lost while l2xdpd is dead are counted.
//!
//! It is the demo's lab and drill ([`crate::demo::run_with`]), one implementation, at the
//! benchmark's size: namespaces lac / lns / core, `l2xdp-dataplane attach --max-sessions N` in
//! lns (maps sized for every session), l2xdpd in lns with RFC 4951 failover (C = 1, D = 1,
//! Recovery Time [`RECOVERY_TIME_MS`] on both ends) and a configuration sized for
//! `tunnels × sessions` ([`config`]), the LAC emulator in lac bringing the sessions up through
//! IPCP (`in_flight` at a time), then traffic both ways at `pps` per direction, round robin over
//! every subscriber, counted in total per direction at the receivers (the core host, the LAC);
//! after `seconds`, `kill -9` of l2xdpd while the traffic flows, a second without control
//! plane, a new l2xdpd with the same configuration and state, waited until
//! `tunnel recovered` = tunnels. Reported: time from the restart and from the kill to all
//! tunnels recovered, sessions kept (l2xdpd's `sessions` list and the pinned maps' bindings
//! before the kill and after the recovery), data packets lost (sent − received per direction,
//! must be 0), the fast path's drops, l2xdpd's VmRSS, what the LAC saw go down, and a new
//! session through the recovered l2xdpd. The subscribers' keepalives are those of the
//! control-plane mode ([`LAC_ECHO_INTERVAL`] × [`LAC_ECHO_FAILURES`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::common::Header;
use crate::demo::{self, Scale};
use crate::failover::{Settings, LAC_ECHO_FAILURES, LAC_ECHO_INTERVAL, RECOVERY_TIME_MS};

/// How long an emulated subscriber waits for the CHAP Challenge: the set-up of 100,000
/// sessions queues at l2xdpd (a first run, with the file-per-record store, failed on the
/// default 30 s).
pub const LAC_AUTH_TIMEOUT: Duration = Duration::from_secs(120);

/// Sessions being set up at once by default: with a thousand at once a subscriber of that
/// first 100,000-session run waited over 30 s for its CHAP Challenge.
pub const IN_FLIGHT: usize = 256;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Control connections.
    pub tunnels: usize,
    /// Sessions per tunnel.
    pub sessions: usize,
    /// Sessions being set up at once during the bring-up.
    pub in_flight: usize,
    /// Data packets per second in each direction (spread round robin over every session).
    pub pps: u64,
    /// Seconds of traffic before the kill.
    pub seconds: u64,
    /// The `l2xdpd` binary.
    pub l2xdpd: PathBuf,
    /// The `l2xdp-dataplane` binary.
    pub dataplane: PathBuf,
    /// The `l2xdpctl` binary.
    pub l2xdpctl: PathBuf,
    /// Gives up on any one step after this long (a hung run, not a measurement).
    pub limit: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario, mode, date, command line, machine.
    #[serde(flatten)]
    pub header: Header,
    /// `xdp`.
    pub fast_path: &'static str,
    /// Control connections.
    pub tunnels: usize,
    /// Sessions (all tunnels).
    pub sessions: usize,
    /// Data packets per second asked for, each direction.
    pub pps: u64,
    /// The settings.
    pub settings: Settings,
    /// Every check passed: every tunnel recovered, every session kept (l2xdpd and the maps),
    /// no data packet lost, nothing down at the LAC, the new session carried traffic, nothing
    /// left behind.
    pub ok: bool,
    /// The checks that did not.
    pub failures: Vec<String>,
    /// The lab's run: bring-up, traffic, the drill, the new session, l2xdpctl's view, clean-up.
    pub run: demo::Report,
}

/// l2xdpd's configuration for `tunnels × sessions_per_tunnel` sessions (limits with headroom,
/// an IPCP pool of 2^18 addresses), RFC 4951 failover C = 1, D = 1 with [`RECOVERY_TIME_MS`].
pub fn config(tunnels: usize, sessions_per_tunnel: usize) -> String {
    format!(
        r#"[l2tp]
host_name = "lns-bench"

[l2tp.failover]
control = true
data = true
recovery_time_ms = {RECOVERY_TIME_MS}

[l2tp.limits]
max_tunnels = {t}
max_sessions_per_tunnel = {s}

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/14"]
dns = ["192.0.2.53"]
"#,
        t = tunnels + 16,
        s = sessions_per_tunnel + 16,
    )
}

/// Runs the scenario (root). The lab is removed whatever happens.
pub fn run(opts: &Options) -> Result<Report, demo::Error> {
    let lab = demo::Options {
        tunnels: opts.tunnels,
        sessions: opts.sessions,
        seconds: opts.seconds,
        pps: opts.pps,
        in_flight: opts.in_flight,
        config: None,
        l2xdpd: opts.l2xdpd.clone(),
        dataplane: opts.dataplane.clone(),
        l2xdpctl: opts.l2xdpctl.clone(),
        scale: Scale {
            step_limit: opts.limit,
            echo_interval: LAC_ECHO_INTERVAL,
            echo_failures: LAC_ECHO_FAILURES,
            recovery_time_ms: RECOVERY_TIME_MS,
            auth_timeout: LAC_AUTH_TIMEOUT,
            tables: opts.tunnels <= 16,
        },
    };
    let base = config(opts.tunnels, opts.sessions);
    let r = demo::run_with(&lab, Path::new("failover-bench"), &base)?;
    Ok(Report {
        header: Header {
            scenario: "failover",
            mode: "xdp fast path in namespaces, kill -9 while traffic flows",
            date: crate::machine::utc_now(),
            command: String::new(),
            machine: crate::machine::Machine::probe(),
        },
        fast_path: "xdp",
        tunnels: opts.tunnels,
        sessions: r.sessions,
        pps: opts.pps,
        settings: Settings {
            recovery_time_ms: RECOVERY_TIME_MS,
            lac_echo_interval_secs: LAC_ECHO_INTERVAL.as_secs(),
            lac_echo_failures: LAC_ECHO_FAILURES,
            status_poll_ms: demo::STATUS_POLL.as_millis() as u64,
            lac_failover: true,
        },
        ok: r.ok,
        failures: r.failures.clone(),
        run: r,
    })
}

/// A readable table of a report.
pub fn table(r: &Report) -> String {
    let x = &r.run;
    let (t, d, b) = (&x.traffic, &x.failover, &x.bringup);
    let m = &r.header.machine;
    format!(
        "failover (xdp): {} tunnels x {} sessions/tunnel = {} sessions; {} pps each way round \
         robin over every session; kill -9 of l2xdpd while traffic flows, restart (RFC 4951 C=1 \
         D=1, recovery time {} ms; LAC echo {} s x {})\n\
         machine: kernel {}, {} ({} cores); load average at the end {}\n\
         | measure | value |\n\
         | --- | ---: |\n\
         | restart -> control socket answers (state restored) | {:.0} ms |\n\
         | restart -> all {} tunnels recovered | {:.0} ms |\n\
         | kill -9 -> all tunnels recovered | {:.0} ms |\n\
         | tunnels recovered | {} of {} |\n\
         | sessions kept at l2xdpd (same IDs, user, PPP, address, installed) | {} of {} |\n\
         | sessions kept in the fast path (same binding in the pinned maps) | {} of {} |\n\
         | data packets sent upstream / downstream (whole run, {:.1} s) | {} / {} |\n\
         | data packets received at the core host / at the LAC | {} / {} |\n\
         | data packets lost (sent - received, both directions) | {} |\n\
         | fast-path drops (all reasons, since the bring-up) | {} |\n\
         | tunnels or sessions down at the LAC | {} |\n\
         | l2xdpd VmRSS before the kill -> after the recovery | {} -> {} KiB |\n\
         bring-up: {} sessions up and installed in {:.1} s; new session after the drill: {} up, \
         {} / {} packets counted; lab cleaned up: {}\n\
         {}",
        r.tunnels,
        r.sessions / r.tunnels.max(1),
        r.sessions,
        r.pps,
        r.settings.recovery_time_ms,
        r.settings.lac_echo_interval_secs,
        r.settings.lac_echo_failures,
        m.kernel,
        m.cpu_model,
        m.cores,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        d.restart_to_socket_ms,
        r.tunnels,
        d.restart_to_recovered_ms,
        d.kill_to_recovered_ms,
        d.tunnels_recovered,
        r.tunnels,
        d.sessions_kept,
        d.sessions_before,
        d.fast_path_kept,
        d.fast_path_before,
        t.secs,
        t.up_sent,
        t.down_sent,
        t.up_received,
        t.down_received,
        d.data_lost,
        d.xdp_drops,
        d.lac_down_events,
        d.l2xdpd_rss_kib[0],
        d.l2xdpd_rss_kib[1],
        b.installed,
        b.secs,
        x.new_session.address,
        x.new_session.up_received,
        x.new_session.down_received,
        x.lab.cleaned_up,
        if r.ok {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", r.failures.join("; "))
        }
    )
}
