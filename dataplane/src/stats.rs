//! Fast-path counters: one snapshot of the per-CPU counter maps (per-session packets and
//! bytes, per-verdict and per-drop-reason packets), merged over CPUs, and the rates between
//! two snapshots. The one place that reads them: `l2xdpctl show stats` and `l2xdpd`'s
//! Prometheus endpoint both call [`StatsMaps::snapshot`] and [`Rates::between`].
//!
//! Directions: **upstream** is access → core (L2TP decapsulated: the `decap` verdict and the
//! sessions' `rx_*` counters); **downstream** is core → access (encapsulated: `encap`, `tx_*`).
//! Packets and bytes per direction and CPU come from the verdict counters (`l2xdp_verdicts`,
//! `l2xdp_vbytes`: monotonic); per-session counters from the sessions' slots, which go away
//! with their session.
//!
//! Drop reasons are `wire::datapath::DropReason` by its stable index and [`DropReason::name`].
//!
//! AF_XDP mode ([`crate::afxdp`]): the packets and bytes are the programs' (counted before the
//! hand-over to a worker); the drops are the programs' plus the workers' (`l2xdp_xsk_stats`,
//! per CPU: a worker's at its core), by the same reasons, so both modes give the same names.
//! What a worker got but could not send (no egress socket, no transmit frame, bad metadata) is
//! [`CoreCounters::unsent`] (0 in XDP mode).
//!
//! The kernel path (`bpf_fib_lookup` gave no next hop: the packet went to the kernel stack) is
//! [`CoreCounters::to_kernel`] per CPU and [`Snapshot::kernel_path`] by direction and reason.

use std::path::Path;

use aya::maps::{Map, MapData, PerCpuArray, PerCpuValues};
use l2xdp_ebpf::maps::{fib_reason, name, verdict, xsk_stat};
use l2xdp_wire::datapath::DropReason;

use crate::api::DataPlaneError;
use crate::session_map::session_key;
use crate::tables::SessionTables;

/// The snapshot and rate types (plain data, in `l2xdp-dataplane-api` so the control plane
/// renders them without aya).
pub use l2xdp_dataplane_api::stats::*;

/// The counter maps pinned by `l2xdp-dataplane` (read only).
pub struct StatsMaps {
    tables: SessionTables,
    vbytes: PerCpuArray<MapData, u64>,
    drops: PerCpuArray<MapData, u64>,
    verdicts: PerCpuArray<MapData, u64>,
    /// The AF_XDP workers' counters (all 0 in XDP mode).
    xsk: PerCpuArray<MapData, u64>,
}

fn sys(what: &str, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::System(format!("{what}: {e}"))
}

impl StatsMaps {
    /// Opens the counter maps pinned in `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, DataPlaneError> {
        let get = |n: &str| -> Result<Map, DataPlaneError> {
            let path = pin_dir.join(n);
            let data = MapData::from_pin(&path).map_err(|e| sys(&path.display().to_string(), e))?;
            Map::from_map_data(data).map_err(|e| sys(n, e))
        };
        Ok(StatsMaps {
            tables: SessionTables::open(pin_dir)?,
            vbytes: get(name::VBYTES)?
                .try_into()
                .map_err(|e| sys(name::VBYTES, e))?,
            drops: get(name::DROPS)?
                .try_into()
                .map_err(|e| sys(name::DROPS, e))?,
            verdicts: get(name::VERDICTS)?
                .try_into()
                .map_err(|e| sys(name::VERDICTS, e))?,
            xsk: get(name::XSK_STATS)?
                .try_into()
                .map_err(|e| sys(name::XSK_STATS, e))?,
        })
    }

    fn per_cpu(
        map: &PerCpuArray<MapData, u64>,
        what: &str,
        i: u32,
    ) -> Result<Vec<u64>, DataPlaneError> {
        map.get(&i, 0)
            .map(|v: PerCpuValues<u64>| v.iter().copied().collect())
            .map_err(|e| sys(what, e))
    }

    /// Reads every counter once; with `per_session`, keeps each session's counters too.
    pub fn snapshot(&self, per_session: bool) -> Result<Snapshot, DataPlaneError> {
        let decap = Self::per_cpu(&self.verdicts, name::VERDICTS, verdict::DECAP)?;
        let encap = Self::per_cpu(&self.verdicts, name::VERDICTS, verdict::ENCAP)?;
        let to_control = Self::per_cpu(&self.verdicts, name::VERDICTS, verdict::TO_CONTROL)?;
        let to_kernel = Self::per_cpu(&self.verdicts, name::VERDICTS, verdict::FIB_MISS)?;
        let ncpu = decap.len();
        let mut cpus = vec![CoreCounters::default(); ncpu];
        for (i, c) in cpus.iter_mut().enumerate() {
            c.upstream.packets = decap[i];
            c.downstream.packets = encap.get(i).copied().unwrap_or(0);
            c.to_control = to_control.get(i).copied().unwrap_or(0);
            c.to_kernel = to_kernel.get(i).copied().unwrap_or(0);
        }
        let mut kernel_path = Vec::new();
        let rows = [("upstream", true), ("downstream", false)]
            .into_iter()
            .flat_map(|(d, up)| {
                fib_reason::NAMES
                    .iter()
                    .enumerate()
                    .map(move |(r, n)| (d, *n, verdict::fib(up, r as u32)))
            })
            .chain([
                ("downstream", "neigh_redirect", verdict::NEIGH_REDIRECT),
                ("downstream", "dropped_no_tc", verdict::DOWN_NO_TC),
                ("downstream", "mark_spoofed", verdict::MARK_SPOOFED),
            ]);
        for (direction, reason, i) in rows {
            kernel_path.push(KernelPathCount {
                direction: direction.into(),
                reason: reason.into(),
                packets: Self::per_cpu(&self.verdicts, name::VERDICTS, i)?
                    .iter()
                    .sum(),
            });
        }
        let mut drops = Vec::with_capacity(DropReason::COUNT);
        for r in DropReason::ALL {
            let mut v = Self::per_cpu(&self.drops, name::DROPS, r as u32)?;
            let w = Self::per_cpu(&self.xsk, name::XSK_STATS, r as u32)?;
            for (v, w) in v.iter_mut().zip(&w) {
                *v += w;
            }
            for (i, n) in v.iter().enumerate() {
                if let Some(c) = cpus.get_mut(i) {
                    c.dropped += n;
                }
            }
            drops.push(DropCount {
                reason: r.name().to_string(),
                index: r as u8,
                packets: v.iter().sum(),
            });
        }
        for i in [xsk_stat::NO_EGRESS, xsk_stat::TX_FULL, xsk_stat::OTHER] {
            for (c, n) in cpus
                .iter_mut()
                .zip(Self::per_cpu(&self.xsk, name::XSK_STATS, i)?)
            {
                c.unsent += n;
            }
        }
        let up_bytes = Self::per_cpu(&self.vbytes, name::VBYTES, verdict::DECAP)?;
        let down_bytes = Self::per_cpu(&self.vbytes, name::VBYTES, verdict::ENCAP)?;
        for (i, c) in cpus.iter_mut().enumerate() {
            c.upstream.bytes = up_bytes.get(i).copied().unwrap_or(0);
            c.downstream.bytes = down_bytes.get(i).copied().unwrap_or(0);
        }
        let found = self.tables.all()?;
        let sessions = found.len();
        let mut out = Vec::new();
        if per_session {
            for f in &found {
                if let Some(key) = session_key(&f.key()) {
                    out.push(SessionStats::new(key, f.counters()));
                }
            }
        }
        out.sort_by_key(|s| (s.version, s.tunnel, s.session));
        let mut total = CoreCounters::default();
        for c in &cpus {
            total.add(c);
        }
        let gateway_echo = Self::per_cpu(&self.verdicts, name::VERDICTS, verdict::GATEWAY_ECHO)?
            .iter()
            .sum();
        let sccrq_over_budget =
            Self::per_cpu(&self.verdicts, name::VERDICTS, verdict::SCCRQ_OVER_BUDGET)?
                .iter()
                .sum();
        Ok(Snapshot {
            cpus,
            total,
            drops,
            kernel_path,
            gateway_echo,
            sccrq_over_budget,
            sessions,
            per_session: out,
        })
    }
}
