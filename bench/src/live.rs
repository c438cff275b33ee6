//! Live L2TPv2 sessions for `l2xdp-bench throughput` (`--sessions-from live`): the bench's LAC
//! emulator ([`crate::lac`], in the lab's `lac` namespace) brings up S sessions, PPP (CHAP)
//! through IPCP, against an `l2xdpd` process in the `lns` namespace that installs each into the
//! bench's pinned fast path (XDP mode; the pins in a [`Scratch`] bpffs, which `ip netns exec`
//! does not hide). The generator's frames are then built from the LAC's view of each session
//! (its real tunnel and session IDs, ports, the address IPCP gave the subscriber).
//!
//! L2TPv3 sessions are live too: a second l2xdpd, in the `lac` namespace (port 1702, beside the
//! LAC emulator's 1701) in the initiator role, opens one Ethernet pseudowire per attachment
//! circuit (Remote End ID `pw<k>`, no cookie as the installed ones, over UDP as the initiator
//! opens them) against the LNS l2xdpd, which binds `pw<k>` to `ac<k>` (`[[pseudowire]]`). The
//! generator's v3 frames use the LCCE's view of each: the mirror of the LNS's pinned entry (IDs
//! and cookies swapped), as the initiator's in-memory data plane has no pins to read.
//!
//! While the generator runs, the LAC's veth (`lac0`) carries the sink, which drops everything:
//! neither end may need the other then, so both run with L2TP Hellos (RFC 2661 §6.5) and LCP
//! Echo (RFC 1661 §5.8) off in practice (a day's Hello interval, echo interval 0).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use l2xdp_controlplane::l2tp::L2tpConfig;
use l2xdp_controlplane::ppp::{AuthMethod, PppConfig};
use l2xdp_dataplane::api::{Binding, DataPlane};
use l2xdp_dataplane::XdpDataPlane;
use l2xdp_lab::cp::l2xdpd::{self, log_tail, L2xdpd, Placement};
use l2xdp_lab::cp::subscriber;
use l2xdp_lab::scratch::Scratch;
use l2xdp_lab::topology::{Topology, L2TP_PORT, LAC_IP, LNS_IP};
use l2xdp_lab::traffic::Sub;
use serde::Serialize;

use crate::common::Error;
use crate::interrupt;
use crate::lac::Lac;

/// l2xdpd's configuration for live throughput sessions (the lab sets listen, control socket,
/// state, data plane and users itself). The pool holds 4 M addresses (`scale` up to 100 k).
pub const CONFIG: &str = r#"# l2xdpd configuration of l2xdp-bench throughput --sessions-from live.
[l2tp]
host_name = "lns-bench"
# No Hello while the sink on the LAC's veth drops everything (RFC 2661 §6.5).
hello_interval_secs = 86400

[ppp]
auth = ["chap"]
# No LCP Echo either (RFC 1661 §5.8).
echo_interval = 0

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/10"]
"#;

/// The LCCE l2xdpd's configuration (v3 initiator; the lab sets listen, control socket, state,
/// data plane, users): `{n}` pseudowires on one control connection.
const LCCE_CONFIG: &str = r#"# l2xdpd configuration of l2xdp-bench throughput's v3 LCCE.
[l2tp]
host_name = "lcce-bench"
# No Hello while the sink on the LAC's veth drops everything (RFC 3931 §4.4).
hello_interval_secs = 86400

[l2tp.pseudowire]
# As the installed sessions: no cookie (RFC 3931 §4.1).
cookie_len = 0

[initiator]
peer = "{peer}"
version = 3
tunnels = 1
sessions = {n}
"#;

/// The LCCE l2xdpd's UDP port (the LAC emulator has 1701 in the same namespace).
const LCCE_PORT: u16 = 1702;

/// An attachment circuit of the lab: its name in `lns` (`ac<k>`), its ifindex there, and the
/// ifindex of its peer (`acp<k>`) in `core`.
pub(crate) struct Circuit {
    pub(crate) name: String,
    pub(crate) lns_ifindex: u32,
    pub(crate) core_ifindex: u32,
}

/// Live sessions at most (`scale` installs larger counts).
pub const LIVE_MAX: u32 = 100_000;
/// Sessions per L2TPv2 tunnel at most (16-bit session IDs).
const PER_TUNNEL_MAX: u32 = 60_000;
/// Sessions being set up at once.
const IN_FLIGHT: usize = 256;
/// How often the fast path and l2xdpd are polled while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Where the L2TPv2 sessions of `throughput` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionsFrom {
    /// Brought up by the LAC emulator through l2xdpd, which installs them.
    Live,
    /// Written straight into the maps by the bench (`XdpDataPlane::install`).
    Installed,
}

impl SessionsFrom {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SessionsFrom::Live => "live",
            SessionsFrom::Installed => "installed",
        }
    }

    /// Parses `live` or `installed`.
    pub fn parse(s: &str) -> Option<SessionsFrom> {
        [SessionsFrom::Live, SessionsFrom::Installed]
            .into_iter()
            .find(|x| x.name() == s)
    }
}

/// The tunnels for `n` sessions: the fewest, each under [`PER_TUNNEL_MAX`], sharing them
/// equally (the LAC opens the same number on each).
fn tunnels_for(n: u32) -> u32 {
    (n.div_ceil(PER_TUNNEL_MAX).max(1)..=n.max(1))
        .find(|t| n.is_multiple_of(*t))
        .unwrap_or(1)
}

/// The LAC emulator and l2xdpd of a throughput lab. Dropping it stops both: the LAC first
/// (its driver ends with its runtime), then l2xdpd (SIGTERM, SIGKILL if it lingers).
pub(crate) struct Live {
    lac: Option<Lac>,
    rt: Option<tokio::runtime::Runtime>,
    daemon: L2xdpd,
    /// The v3 LCCE (initiator) l2xdpd, when there are attachment circuits.
    lcce: Option<L2xdpd>,
    log: PathBuf,
}

impl Live {
    /// Starts l2xdpd (`bin`) in `topo.lns` over the fast path pinned in `scratch.pins` and the
    /// LAC in `topo.lac`, brings up `n` sessions through IPCP, and waits until l2xdpd reports
    /// every one up and installed and `dp` has each bound to its subscriber's address. Returns
    /// the LAC's view of each, in the LNS's key order. With `circuits`, also starts the v3 LCCE
    /// l2xdpd in `topo.lac`, which opens one pseudowire per circuit, and waits until each is
    /// bound to its circuit; returns the LCCE's view of each too, in `circuits`' order. The
    /// access program must be on `la`.
    pub(crate) fn bring_up(
        topo: &Topology,
        scratch: &Scratch,
        bin: &Path,
        n: u32,
        circuits: &[Circuit],
        dp: &XdpDataPlane,
    ) -> Result<(Live, Vec<Sub>, Vec<Sub>), Error> {
        let fail = |what: &str, e: &dyn std::fmt::Display| Error::Live(format!("{what}: {e}"));
        // RFC 3931 §4.4 / RFC 4667: the LNS binds Remote End ID pw<k> to ac<k>.
        let config = circuits
            .iter()
            .enumerate()
            .fold(CONFIG.to_string(), |mut c, (k, ac)| {
                c.push_str(&format!(
                    "\n[[pseudowire]]\nremote_end_id = \"pw{k}\"\ninterface = \"{}\"\n",
                    ac.name
                ));
                c
            });
        let files = l2xdpd::write_config(
            &scratch.dir,
            Path::new("(l2xdp-bench throughput's l2xdpd configuration)"),
            &config,
            Placement::lab(&scratch.pins),
            n as usize,
        )
        .map_err(|e| fail("l2xdpd configuration", &e))?;
        let log = scratch.dir.join("l2xdpd.log");
        let mut daemon = L2xdpd::spawn(Some(&topo.lns), bin, &files, Some(&log))
            .map_err(|e| fail("l2xdpd", &e))?;
        daemon.wait_ready().map_err(|e| fail("l2xdpd", &e))?;
        let lcce = if circuits.is_empty() {
            None
        } else {
            let dir = scratch.dir.join("lcce");
            std::fs::create_dir_all(&dir).map_err(|e| fail("the LCCE's directory", &e))?;
            let base = LCCE_CONFIG
                .replace(
                    "{peer}",
                    &SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT).to_string(),
                )
                .replace("{n}", &circuits.len().to_string());
            let f = l2xdpd::write_config(
                &dir,
                Path::new("(l2xdp-bench throughput's LCCE l2xdpd configuration)"),
                &base,
                Placement::memory(SocketAddr::new(IpAddr::V4(LAC_IP), LCCE_PORT)),
                1,
            )
            .map_err(|e| fail("LCCE l2xdpd configuration", &e))?;
            let mut d = L2xdpd::spawn(Some(&topo.lac), bin, &f, Some(&dir.join("l2xdpd.log")))
                .map_err(|e| fail("LCCE l2xdpd", &e))?;
            d.wait_ready().map_err(|e| fail("LCCE l2xdpd", &e))?;
            Some((d, f.control_socket))
        };
        let (lcce, lcce_sock) = match lcce {
            Some((d, s)) => (Some(d), Some(s)),
            None => (None, None),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| fail("tokio runtime", &e))?;
        let t = tunnels_for(n);
        let per_tunnel = n / t;
        let lac = {
            let _rt = rt.enter();
            let _ns = topo.lac.enter();
            let l2tp = L2tpConfig {
                host_name: "lac-bench".into(),
                hello_interval_secs: 86_400,
                ..L2tpConfig::default()
            };
            let ppp = PppConfig {
                auth: vec![AuthMethod::Chap],
                echo_interval: Duration::ZERO,
                ..PppConfig::default()
            };
            Lac::start_with(
                SocketAddr::new(IpAddr::V4(LAC_IP), L2TP_PORT),
                l2tp,
                t as usize,
                per_tunnel as usize,
                ppp,
            )
            .map_err(|e| fail("LAC emulator", &e))?
        };
        let mut live = Live {
            lac: Some(lac),
            rt: Some(rt),
            daemon,
            lcce,
            log,
        };
        let v2 = live.sessions(
            n,
            t,
            per_tunnel,
            circuits.len() as u32,
            dp,
            &files.control_socket,
        );
        let v3 = v2.and_then(|v2| {
            let v3 = match &lcce_sock {
                Some(sock) => pseudowires(circuits, dp, sock)?,
                None => Vec::new(),
            };
            Ok((v2, v3))
        });
        match v3 {
            Ok((v2, v3)) => Ok((live, v2, v3)),
            Err(e) => {
                let mut logs = vec![("l2xdpd", live.log.clone())];
                if lcce_sock.is_some() {
                    logs.push((
                        "the LCCE l2xdpd",
                        scratch.dir.join("lcce").join("l2xdpd.log"),
                    ));
                }
                for (who, log) in logs {
                    let tail = log_tail(&log);
                    if !tail.is_empty() {
                        eprintln!("l2xdp-bench: the end of {who}'s log:{tail}");
                    }
                }
                Err(e)
            }
        }
    }

    fn sessions(
        &mut self,
        n: u32,
        t: u32,
        per_tunnel: u32,
        v3: u32,
        dp: &XdpDataPlane,
        sock: &Path,
    ) -> Result<Vec<Sub>, Error> {
        let (Some(lac), Some(rt)) = (self.lac.as_mut(), self.rt.as_ref()) else {
            return Err(Error::Live("the LAC is stopped".into()));
        };
        let limit = Duration::from_secs(60 + u64::from(n) / 200);
        let deadline = tokio::time::Instant::now() + limit;
        let lns = SocketAddr::new(IpAddr::V4(LNS_IP), L2TP_PORT);
        let tunnels = rt
            .block_on(lac.open_tunnels(lns, t as usize, deadline))
            .map_err(Error::Live)?;
        let up = rt
            .block_on(lac.open_sessions(&tunnels, per_tunnel as usize, IN_FLIGHT, deadline))
            .map_err(Error::Live)?;
        let mut subs = Vec::with_capacity(up.up.len());
        for e in &up.up {
            if let Some(s) = rt.block_on(subscriber(&lac.handle, e)) {
                subs.push(s);
            }
        }
        subs.sort_by_key(|s| s.lns_key);
        if subs.len() != n as usize {
            return Err(Error::Live(format!(
                "{} of {n} sessions up at the LAC",
                subs.len()
            )));
        }
        // Every session up and installed at l2xdpd, and bound in the fast path.
        let end = Instant::now() + limit;
        loop {
            if interrupt::requested() {
                return Err(Error::Interrupted);
            }
            let st = l2xdpd::try_ask(sock, r#"{"cmd":"status"}"#)
                .map_err(|e| Error::Live(format!("l2xdpd's control socket: {e}")))?;
            let count = |k: &str| st["data"][k].as_u64().unwrap_or(0);
            let bound = bound_count(dp, &subs)?;
            // And the control channels quiet: every message of the LAC acknowledged, so that
            // neither end retransmits nor owes a ZLB once the sink drops all it receives.
            let quiet = rt
                .block_on(lac.handle.inspect(|node| {
                    node.registry()
                        .tunnels()
                        .all(|t| t.channel().is_quiescent())
                }))
                .map_err(|e| Error::Live(format!("the LAC: {e}")))?;
            if count("installed") == u64::from(n + v3)
                && count("ppp_up") == u64::from(n)
                && bound == n
                && quiet
            {
                return Ok(subs);
            }
            if Instant::now() > end {
                return Err(Error::Live(format!(
                    "after {limit:?}: l2xdpd reports {} sessions with PPP up, {} installed; {bound} of {n} bound in the fast path; the LAC's control channels quiet: {quiet}",
                    count("ppp_up"),
                    count("installed")
                )));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Waits until the LCCE l2xdpd (control socket `sock`) has every pseudowire of `circuits`
/// established (its in-memory data plane binds none: no `installed` there) and `dp` each
/// bound to its circuit (one each); returns the LCCE's view of each, in `circuits`' order: the mirror of the LNS's entry, its IDs, cookies and ports swapped.
fn pseudowires(circuits: &[Circuit], dp: &XdpDataPlane, sock: &Path) -> Result<Vec<Sub>, Error> {
    let n = circuits.len();
    let limit = Duration::from_secs(60);
    let end = Instant::now() + limit;
    loop {
        if interrupt::requested() {
            return Err(Error::Interrupted);
        }
        let st = l2xdpd::try_ask(sock, r#"{"cmd":"status"}"#)
            .map_err(|e| Error::Live(format!("the LCCE l2xdpd's control socket: {e}")))?;
        let count = |k: &str| st["data"][k].as_u64().unwrap_or(0);
        let mut views: Vec<Option<Sub>> = (0..n).map(|_| None).collect();
        let mut extra = 0;
        for e in dp.sessions()? {
            let Binding::AttachmentCircuit { ifindex } = e.binding else {
                continue;
            };
            let Some(k) = circuits.iter().position(|c| c.lns_ifindex == ifindex) else {
                continue;
            };
            let l = &e.session;
            let mut sub = Sub::pseudowire(
                l.peer_ids,
                l.our_ids,
                l.cookie_tx,
                l.cookie_rx,
                l.l2ss,
                l.sequencing,
                Ipv4Addr::UNSPECIFIED,
                circuits[k].core_ifindex,
            );
            sub.view.transport = l.transport;
            sub.view.local_port = l.peer_port;
            sub.view.peer_port = l.local_port;
            if views[k].replace(sub).is_some() {
                extra += 1;
            }
        }
        let bound = views.iter().filter(|v| v.is_some()).count();
        if count("sessions") == n as u64 && bound == n && extra == 0 {
            // The LCCE's last message (ICCN, RFC 3931 §3.2) acknowledged before the sink may
            // drop what reaches lac0: the LNS acknowledges at once or within its ZLB delay.
            std::thread::sleep(Duration::from_secs(1));
            return Ok(views.into_iter().flatten().collect());
        }
        if Instant::now() > end {
            return Err(Error::Live(format!(
                "after {limit:?}: the LCCE l2xdpd reports {} pseudowires established; {bound} of {n} bound to their circuit in the fast path ({extra} more)",
                count("sessions"),
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The sessions of `subs` that `dp` has bound to their subscriber's address.
fn bound_count(dp: &XdpDataPlane, subs: &[Sub]) -> Result<u32, Error> {
    let entries = dp.sessions()?;
    let want: std::collections::BTreeMap<_, _> = subs.iter().map(|s| (s.lns_key, s.addr)).collect();
    Ok(entries
        .iter()
        .filter(|e| {
            matches!(e.binding, Binding::Subscriber { ipv4: Some(a), .. } if want.get(&e.key()) == Some(&a))
        })
        .count() as u32)
}

impl Drop for Live {
    fn drop(&mut self) {
        drop(self.lac.take());
        drop(self.rt.take());
        let daemons = self
            .lcce
            .iter_mut()
            .chain(std::iter::once(&mut self.daemon));
        for d in daemons {
            if d.exited().is_none() {
                d.signal(libc::SIGTERM);
                let end = Instant::now() + Duration::from_secs(5);
                while d.exited().is_none() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels_share_the_sessions_equally() {
        assert_eq!(tunnels_for(8), 1);
        assert_eq!(tunnels_for(60_000), 1);
        assert_eq!(tunnels_for(100_000), 2);
        assert_eq!(tunnels_for(60_001), 29);
        for n in [1, 8, 1000, 100_000, 60_001] {
            let t = tunnels_for(n);
            assert_eq!(n % t, 0, "{n}");
            assert!(n / t <= PER_TUNNEL_MAX, "{n}");
        }
    }

    #[test]
    fn names_parse() {
        for s in [SessionsFrom::Live, SessionsFrom::Installed] {
            assert_eq!(SessionsFrom::parse(s.name()), Some(s));
        }
        assert_eq!(SessionsFrom::parse("x"), None);
    }
}
