//! The fast path's counters as the operator sees them: one snapshot of the per-CPU counters
//! (per-session packets and bytes, per-verdict and per-drop-reason packets) merged over CPUs,
//! and the rates between two snapshots. Plain data: `l2xdp_dataplane::stats::StatsMaps` reads
//! them from the pinned maps; `l2xdpctl show stats` and `l2xdpd`'s Prometheus endpoint render
//! them.
//!
//! Directions: **upstream** is access → core (L2TP decapsulated: the `decap` verdict and the
//! sessions' `rx_*` counters); **downstream** is core → access (encapsulated: `encap`, `tx_*`).
//! The per-CPU and total packets and bytes come from the per-verdict counters (`l2xdp_vbytes`
//! beside `l2xdp_verdicts`): monotonic, so removing a session takes its row out of
//! [`Snapshot::per_session`] and nothing out of the totals (before, bytes were the sum of the
//! live sessions' counters and dropped at a removal while packets stayed: issue 16).
//! [`Rates::between`] still clamps a difference that goes down (a detach and re-attach) to 0.

use l2xdp_wire::datapath::SessionKey;
use serde::{Deserialize, Serialize};

use crate::SessionCounters;

/// Packets and bytes of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes (per CPU and total: the per-verdict byte counters, monotonic; per session: the
    /// session's slot).
    pub bytes: u64,
}

/// One CPU's (or the sum over CPUs) counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreCounters {
    /// Access → core (decapsulated).
    pub upstream: Traffic,
    /// Core → access (encapsulated).
    pub downstream: Traffic,
    /// Handed to the control plane (XDP_PASS of L2TP control and PPP control frames).
    pub to_control: u64,
    /// Not forwarded by the fast path because `bpf_fib_lookup` gave no next hop (no route,
    /// no neighbour entry, local destination...): handed to the kernel stack (see
    /// [`Snapshot::kernel_path`] for the reasons).
    #[serde(default)]
    pub to_kernel: u64,
    /// Dropped (all reasons).
    pub dropped: u64,
    /// AF_XDP mode: handed to a worker but not sent (no egress socket, no transmit frame,
    /// bad metadata); 0 in XDP mode.
    #[serde(default)]
    pub unsent: u64,
}

impl CoreCounters {
    /// Adds `o` (another CPU's counters) to these.
    pub fn add(&mut self, o: &CoreCounters) {
        self.upstream.packets += o.upstream.packets;
        self.upstream.bytes += o.upstream.bytes;
        self.downstream.packets += o.downstream.packets;
        self.downstream.bytes += o.downstream.bytes;
        self.to_control += o.to_control;
        self.to_kernel += o.to_kernel;
        self.dropped += o.dropped;
        self.unsent += o.unsent;
    }
}

/// Drops of one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCount {
    /// `DropReason::name`.
    pub reason: String,
    /// The stable index (`DropReason as u8`).
    pub index: u8,
    /// Packets, summed over CPUs.
    pub packets: u64,
}

/// Packets of one kind on the kernel path (FIB misses by direction and reason, and what
/// became of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelPathCount {
    /// `upstream` (decapsulated, the inner packet to the kernel stack) or `downstream`.
    pub direction: String,
    /// `no_neigh`, `not_fwded`, `unreachable`, `frag_needed`, `other`, `fwd_disabled`
    /// (forwarding off on the ingress interface) (why `bpf_fib_lookup` gave no next hop); downstream also `neigh_redirect` (sent by
    /// `tc_l2tp_core` with `bpf_redirect_neigh`), `dropped_no_tc` (no neighbour and no tc
    /// program on the interface: dropped) and `mark_spoofed` (a frame from the wire carrying
    /// the kernel mark: dropped).
    pub reason: String,
    /// Packets, summed over CPUs.
    pub packets: u64,
}

/// One session's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// The L2TP version (2 or 3).
    pub version: u8,
    /// v2: our tunnel ID; v3: 0.
    pub tunnel: u32,
    /// Our session ID.
    pub session: u32,
    /// Upstream (decapsulated).
    pub upstream: Traffic,
    /// Downstream (encapsulated).
    pub downstream: Traffic,
}

impl SessionStats {
    /// The stats of `key` with counters `c`.
    pub fn new(key: SessionKey, c: SessionCounters) -> Self {
        let (version, tunnel, session) = match key {
            SessionKey::V2 {
                tunnel_id,
                session_id,
            } => (2, u32::from(tunnel_id), u32::from(session_id)),
            SessionKey::V3 { session_id } => (3, 0, session_id),
        };
        SessionStats {
            version,
            tunnel,
            session,
            upstream: Traffic {
                packets: c.rx_packets,
                bytes: c.rx_bytes,
            },
            downstream: Traffic {
                packets: c.tx_packets,
                bytes: c.tx_bytes,
            },
        }
    }
}

/// The fast path's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Per CPU, indexed by CPU number (possible CPUs).
    pub cpus: Vec<CoreCounters>,
    /// The sum over CPUs.
    pub total: CoreCounters,
    /// Drops by reason (every reason, in index order).
    pub drops: Vec<DropCount>,
    /// The kernel path by direction and reason (every row, also when 0).
    #[serde(default)]
    pub kernel_path: Vec<KernelPathCount>,
    /// ICMP echo requests to the gateway address answered by the fast path (the replies
    /// are in the downstream counters too).
    #[serde(default)]
    pub gateway_echo: u64,
    /// SCCRQs (control messages to tunnel 0) dropped in XDP beyond the SCCRQ budget
    /// (`[l2tp.limits] xdp_sccrq_per_sec`).
    #[serde(default)]
    pub sccrq_over_budget: u64,
    /// Sessions with a counter entry.
    pub sessions: usize,
    /// Per-session counters (only when asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_session: Vec<SessionStats>,
}

/// Packets and bytes per second of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficRate {
    /// Packets per second.
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
}

/// One CPU's (or the total) rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CoreRates {
    /// Access → core.
    pub upstream: TrafficRate,
    /// Core → access.
    pub downstream: TrafficRate,
    /// Drops per second.
    pub dropped_pps: f64,
}

/// Rates between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// The time between the snapshots, in seconds.
    pub interval_secs: f64,
    /// Per CPU.
    pub cpus: Vec<CoreRates>,
    /// Over all CPUs.
    pub total: CoreRates,
}

fn traffic_rate(a: &Traffic, b: &Traffic, secs: f64) -> TrafficRate {
    TrafficRate {
        pps: b.packets.saturating_sub(a.packets) as f64 / secs,
        bps: b.bytes.saturating_sub(a.bytes) as f64 * 8.0 / secs,
    }
}

fn core_rates(a: &CoreCounters, b: &CoreCounters, secs: f64) -> CoreRates {
    CoreRates {
        upstream: traffic_rate(&a.upstream, &b.upstream, secs),
        downstream: traffic_rate(&a.downstream, &b.downstream, secs),
        dropped_pps: b.dropped.saturating_sub(a.dropped) as f64 / secs,
    }
}

impl Rates {
    /// The rates from `a` to `b`, taken `secs` seconds apart (a counter that went down — a
    /// session removed — counts as 0).
    pub fn between(a: &Snapshot, b: &Snapshot, secs: f64) -> Rates {
        let secs = if secs > 0.0 { secs } else { f64::MIN_POSITIVE };
        let zero = CoreCounters::default();
        Rates {
            interval_secs: secs,
            cpus: b
                .cpus
                .iter()
                .enumerate()
                .map(|(i, bc)| core_rates(a.cpus.get(i).unwrap_or(&zero), bc, secs))
                .collect(),
            total: core_rates(&a.total, &b.total, secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(up: u64, bytes: u64) -> Snapshot {
        let c = CoreCounters {
            upstream: Traffic { packets: up, bytes },
            ..CoreCounters::default()
        };
        Snapshot {
            cpus: vec![c, CoreCounters::default()],
            total: c,
            ..Snapshot::default()
        }
    }

    #[test]
    fn rates_are_differences_over_the_interval() {
        let r = Rates::between(&snap(100, 1000), &snap(300, 3000), 2.0);
        assert_eq!(r.total.upstream.pps, 100.0);
        assert_eq!(r.total.upstream.bps, 8000.0);
        assert_eq!(r.cpus.len(), 2);
        assert_eq!(r.cpus[0].upstream.pps, 100.0);
        assert_eq!(r.cpus[1].upstream.pps, 0.0);
    }

    #[test]
    fn a_counter_going_down_is_a_rate_of_zero() {
        let r = Rates::between(&snap(300, 3000), &snap(100, 1000), 1.0);
        assert_eq!(r.total.upstream.pps, 0.0);
        assert_eq!(r.total.upstream.bps, 0.0);
    }

    #[test]
    fn session_stats_name_the_ids() {
        let s = SessionStats::new(
            SessionKey::V2 {
                tunnel_id: 7,
                session_id: 9,
            },
            SessionCounters {
                rx_packets: 1,
                rx_bytes: 2,
                tx_packets: 3,
                tx_bytes: 4,
            },
        );
        assert_eq!((s.version, s.tunnel, s.session), (2, 7, 9));
        assert_eq!(s.downstream.bytes, 4);
    }
}
