//! [`XdpDataPlane`]: the [`DataPlane`] over the XDP programs' maps — the pinned ones under
//! `/sys/fs/bpf/l2xdp/` ([`XdpDataPlane::open`], usable from any process, e.g. the control
//! plane) or those of an object just loaded ([`XdpDataPlane::from_ebpf`], tests).

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::Path;

use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
use aya::maps::{
    Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, PerCpuValues, Queue,
};
use aya::util::nr_cpus;
use aya::Ebpf;
use l2xdp_ebpf::maps::{self, name};
use l2xdp_wire::datapath::{DecapConfig, DropReason, SessionKey};

use crate::api::{Binding, DataPlane, DataPlaneError, Ipv6Prefix, SessionCounters, SessionEntry};
use crate::session_map::{from_map, map_key, session_key, to_map};

/// `BPF_NOEXIST`.
const NOEXIST: u64 = 1;
/// `BPF_F_LOCK`: update a value holding a `bpf_spin_lock` under it.
const F_LOCK: u64 = 4;

/// Global fast-path settings (the `l2xdp_config` map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPathConfig {
    /// The decapsulation rules' settings.
    pub decap: DecapConfig,
    /// The largest outer IP packet encapsulation emits (larger: XDP_PASS).
    pub mtu: u32,
    /// Access side: spread sessions over this many CPUs with the cpumap (0: off).
    pub cpumap_cpus: u32,
    /// AF_XDP mode: forwarded packets go to the workers' sockets ([`crate::afxdp`]).
    pub afxdp: bool,
}

impl Default for FastPathConfig {
    fn default() -> Self {
        FastPathConfig {
            decap: DecapConfig::default(),
            mtu: 1500,
            cpumap_cpus: 0,
            afxdp: false,
        }
    }
}

/// The fast path's maps.
pub struct XdpDataPlane {
    config: Array<MapData, maps::Config>,
    sessions: HashMap<MapData, maps::SessionKey, maps::Session>,
    seq: HashMap<MapData, maps::SessionKey, maps::Seq>,
    counters: PerCpuHashMap<MapData, maps::SessionKey, maps::Counters>,
    drops: PerCpuArray<MapData, u64>,
    verdicts: PerCpuArray<MapData, u64>,
    sub4: HashMap<MapData, [u8; 4], maps::SessionKey>,
    sub6: LpmTrie<MapData, [u8; 16], maps::SessionKey>,
    ac: HashMap<MapData, u32, maps::SessionKey>,
    /// Session changes for AF_XDP workers in another process, and the flag set when one did
    /// not fit ([`crate::afxdp`]).
    changes: Queue<MapData, maps::Change>,
    resync: Array<MapData, u32>,
    /// What each session is bound to, and who owns each IPv6 prefix, read from the maps once
    /// when this handle is opened and kept up to date by it: installing or removing a session
    /// then touches only its own entries instead of scanning the binding maps (which made
    /// 100,000 installs quadratic). The control plane is the one writer of subscriber
    /// bindings; a binding another process adds meanwhile is not in this index.
    index: std::collections::HashMap<maps::SessionKey, Binding>,
    prefix_owner: std::collections::HashMap<(u32, [u8; 16]), maps::SessionKey>,
}

fn sys(what: &str, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::System(format!("{what}: {e}"))
}

fn not_found(e: &MapError) -> bool {
    matches!(e, MapError::KeyNotFound)
        || matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::ENOENT))
}

fn full(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::E2BIG))
}

impl XdpDataPlane {
    /// Opens the maps pinned in `pin_dir` (by `l2xdp-dataplane attach`).
    pub fn open(pin_dir: &Path) -> Result<Self, DataPlaneError> {
        Self::build(|n| {
            let path = pin_dir.join(n);
            let data = MapData::from_pin(&path).map_err(|e| sys(&path.display().to_string(), e))?;
            Map::from_map_data(data).map_err(|e| sys(n, e))
        })
    }

    /// Takes the maps of a loaded object (tests, or a process that owns the programs).
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self, DataPlaneError> {
        Self::build(|n| {
            ebpf.take_map(n)
                .ok_or_else(|| sys(n, "map not in the object (or taken already)"))
        })
    }

    fn build(
        mut get: impl FnMut(&str) -> Result<Map, DataPlaneError>,
    ) -> Result<Self, DataPlaneError> {
        macro_rules! typed {
            ($n:expr) => {
                get($n)?.try_into().map_err(|e| sys($n, e))?
            };
        }
        let mut dp = XdpDataPlane {
            config: typed!(name::CONFIG),
            sessions: typed!(name::SESSIONS),
            seq: typed!(name::SEQ),
            counters: typed!(name::COUNTERS),
            drops: typed!(name::DROPS),
            verdicts: typed!(name::VERDICTS),
            sub4: typed!(name::SUB4),
            sub6: typed!(name::SUB6),
            ac: typed!(name::AC),
            changes: typed!(name::CHANGES),
            resync: typed!(name::RESYNC),
            index: std::collections::HashMap::new(),
            prefix_owner: std::collections::HashMap::new(),
        };
        for (k, b) in dp.bindings()? {
            dp.remember(k, &b);
        }
        Ok(dp)
    }

    /// Tells AF_XDP workers (of any process) that a session changed: a change record in the
    /// pinned queue, or, when it is full, the resync flag (the workers rescan the session map).
    fn notify(&mut self, key: maps::SessionKey, op: u32) -> Result<(), DataPlaneError> {
        if self.changes.push(maps::Change { key, op }, 0).is_err() {
            self.resync.set(0, 1, 0).map_err(|e| sys(name::RESYNC, e))?;
        }
        Ok(())
    }

    fn remember(&mut self, k: maps::SessionKey, b: &Binding) {
        if let Binding::Subscriber { ipv6, .. } = b {
            for p in ipv6 {
                self.prefix_owner
                    .insert((u32::from(p.len), p.addr.octets()), k);
            }
        }
        self.index.insert(k, b.clone());
    }

    /// Writes the global settings; until then the programs pass everything.
    /// The kernel path's mark (`kernel_mark`, set by the loader) is kept as it is.
    pub fn set_config(&mut self, c: &FastPathConfig) -> Result<(), DataPlaneError> {
        let kernel_mark = self
            .config
            .get(&0, 0)
            .map_err(|e| sys(name::CONFIG, e))?
            .kernel_mark;
        let v = maps::Config {
            udp_port: c.decap.udp_port,
            verify_udp_checksum: u8::from(c.decap.verify_udp_checksum),
            accept_zero_udp6_checksum: u8::from(c.decap.accept_zero_udp6_checksum),
            seq_relearn_after: c.decap.seq_relearn_after,
            mtu: c.mtu,
            cpumap_enabled: u32::from(c.cpumap_cpus > 0),
            cpumap_cpus: c.cpumap_cpus,
            configured: 1,
            afxdp: u32::from(c.afxdp),
            kernel_mark,
            pad_mark: 0,
        };
        self.config.set(0, v, 0).map_err(|e| sys(name::CONFIG, e))
    }

    /// Drop counters indexed by `DropReason as usize`, summed over CPUs.
    pub fn drop_counters(&self) -> Result<[u64; DropReason::COUNT], DataPlaneError> {
        let mut out = [0; DropReason::COUNT];
        for (i, o) in out.iter_mut().enumerate() {
            let v = self
                .drops
                .get(&(i as u32), 0)
                .map_err(|e| sys(name::DROPS, e))?;
            *o = v.iter().sum();
        }
        Ok(out)
    }

    /// Verdict counters indexed by [`maps::verdict`], summed over CPUs.
    pub fn verdict_counters(&self) -> Result<[u64; maps::verdict::COUNT as usize], DataPlaneError> {
        let mut out = [0; maps::verdict::COUNT as usize];
        for (i, o) in out.iter_mut().enumerate() {
            let v = self
                .verdicts
                .get(&(i as u32), 0)
                .map_err(|e| sys(name::VERDICTS, e))?;
            *o = v.iter().sum();
        }
        Ok(out)
    }

    /// The raw sequence state of a session (tests, diagnostics).
    pub fn sequence_state(&self, key: &SessionKey) -> Result<maps::Seq, DataPlaneError> {
        self.seq.get(&map_key(key), 0).map_err(|e| {
            if not_found(&e) {
                DataPlaneError::NotFound(*key)
            } else {
                sys(name::SEQ, e)
            }
        })
    }

    fn exists(&self, k: &maps::SessionKey) -> Result<bool, DataPlaneError> {
        match self.sessions.get(k, 0) {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(sys(name::SESSIONS, e)),
        }
    }

    /// Every binding map entry, by owner.
    fn bindings(&self) -> Result<BTreeMap<maps::SessionKey, Binding>, DataPlaneError> {
        let mut out: BTreeMap<maps::SessionKey, Binding> = BTreeMap::new();
        for r in self.sub4.iter() {
            let (a, k) = r.map_err(|e| sys(name::SUB4, e))?;
            if let Binding::Subscriber { ipv4, .. } = out.entry(k).or_insert(Binding::Subscriber {
                ipv4: None,
                ipv6: vec![],
            }) {
                *ipv4 = Some(a.into());
            }
        }
        for r in self.sub6.iter() {
            let (p, k) = r.map_err(|e| sys(name::SUB6, e))?;
            if let Binding::Subscriber { ipv6, .. } = out.entry(k).or_insert(Binding::Subscriber {
                ipv4: None,
                ipv6: vec![],
            }) {
                ipv6.push(Ipv6Prefix {
                    addr: Ipv6Addr::from(p.data()),
                    len: p.prefix_len() as u8,
                });
            }
        }
        for r in self.ac.iter() {
            let (ifindex, k) = r.map_err(|e| sys(name::AC, e))?;
            out.insert(k, Binding::AttachmentCircuit { ifindex });
        }
        Ok(out)
    }

    fn conflict(&self, entry: &SessionEntry, mk: &maps::SessionKey) -> Result<(), DataPlaneError> {
        let owner = |k: maps::SessionKey, what: String| match session_key(&k) {
            Some(o) if k != *mk => Err(DataPlaneError::Conflict { what, owner: o }),
            _ => Ok(()),
        };
        match &entry.binding {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    if let Ok(k) = self.sub4.get(&a.octets(), 0) {
                        owner(k, format!("subscriber address {a}"))?;
                    }
                }
                for p in ipv6 {
                    // Exact prefix match only (the trie answers longest-prefix lookups).
                    let k = (u32::from(p.len), p.addr.octets());
                    if let Some(&o) = self.prefix_owner.get(&k) {
                        owner(o, format!("prefix {}/{}", p.addr, p.len))?;
                    }
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                if let Ok(k) = self.ac.get(ifindex, 0) {
                    owner(k, format!("attachment interface {ifindex}"))?;
                }
            }
        }
        Ok(())
    }

    fn unbind(&mut self, mk: &maps::SessionKey) -> Result<(), DataPlaneError> {
        let Some(old) = self.index.remove(mk) else {
            return Ok(());
        };
        // Remove only entries that still point at this session.
        match old {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    if self.sub4.get(&a.octets(), 0).ok().as_ref() == Some(mk) {
                        self.sub4
                            .remove(&a.octets())
                            .map_err(|e| sys(name::SUB4, e))?;
                    }
                }
                for p in ipv6 {
                    let k = (u32::from(p.len), p.addr.octets());
                    if self.prefix_owner.get(&k) == Some(mk) {
                        self.prefix_owner.remove(&k);
                        match self.sub6.remove(&LpmKey::new(k.0, k.1)) {
                            Ok(()) => {}
                            Err(e) if not_found(&e) => {}
                            Err(e) => return Err(sys(name::SUB6, e)),
                        }
                    }
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                if self.ac.get(&ifindex, 0).ok().as_ref() == Some(mk) {
                    self.ac.remove(&ifindex).map_err(|e| sys(name::AC, e))?;
                }
            }
        }
        Ok(())
    }
}

impl DataPlane for XdpDataPlane {
    fn install(&mut self, entry: &SessionEntry) -> Result<(), DataPlaneError> {
        let value = to_map(&entry.session, &entry.binding)?;
        let mk = map_key(&entry.key());
        self.conflict(entry, &mk)?;
        let map_err = |what: &'static str| {
            move |e: MapError| {
                if full(&e) {
                    DataPlaneError::Full(what)
                } else {
                    sys(what, e)
                }
            }
        };
        // Sequence state survives a re-install (idempotent install); a new session starts
        // synced at 0 (RFC 3931 App. C).
        let fresh = maps::Seq {
            rx_synced: 1,
            ..maps::Seq::default()
        };
        match self.seq.insert(mk, fresh, NOEXIST) {
            Ok(()) => {}
            Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(map_err(name::SEQ)(e)),
        }
        self.unbind(&mk)?;
        self.sessions
            .insert(mk, value, 0)
            .map_err(map_err(name::SESSIONS))?;
        match &entry.binding {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    self.sub4
                        .insert(a.octets(), mk, 0)
                        .map_err(map_err(name::SUB4))?;
                }
                for p in ipv6 {
                    let key = LpmKey::new(u32::from(p.len), p.addr.octets());
                    self.sub6.insert(&key, mk, 0).map_err(map_err(name::SUB6))?;
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                self.ac.insert(ifindex, mk, 0).map_err(map_err(name::AC))?;
            }
        }
        self.remember(mk, &entry.binding);
        self.notify(mk, maps::op::UPSERT)
    }

    fn remove(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        let mk = map_key(key);
        if !self.exists(&mk)? {
            return Err(DataPlaneError::NotFound(*key));
        }
        self.unbind(&mk)?;
        self.sessions
            .remove(&mk)
            .map_err(|e| sys(name::SESSIONS, e))?;
        for r in [self.seq.remove(&mk), self.counters.remove(&mk)] {
            match r {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(sys("session state", e)),
            }
        }
        self.notify(mk, maps::op::REMOVE)
    }

    fn reset_sequence(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        let mk = map_key(key);
        if !self.exists(&mk)? {
            return Err(DataPlaneError::NotFound(*key));
        }
        // RFC 4951 §3.2.3: Ns restarts at 0, the receiver re-learns (RxSeq::unsynced).
        self.seq
            .insert(mk, maps::Seq::default(), F_LOCK)
            .map_err(|e| sys(name::SEQ, e))?;
        self.notify(mk, maps::op::RESET_SEQ)
    }

    fn sessions(&self) -> Result<Vec<SessionEntry>, DataPlaneError> {
        let bindings = self.bindings()?;
        let mut out = Vec::new();
        for r in self.sessions.iter() {
            let (k, v) = r.map_err(|e| sys(name::SESSIONS, e))?;
            let Some(session) = from_map(&k, &v) else {
                return Err(sys(name::SESSIONS, format!("unreadable entry {k:?}")));
            };
            let binding = if v.binding == 1 {
                Binding::AttachmentCircuit {
                    ifindex: v.ac_ifindex,
                }
            } else {
                match bindings.get(&k) {
                    Some(b @ Binding::Subscriber { .. }) => b.clone(),
                    _ => Binding::Subscriber {
                        ipv4: None,
                        ipv6: vec![],
                    },
                }
            };
            out.push(SessionEntry { session, binding });
        }
        out.sort_by_key(SessionEntry::key);
        Ok(out)
    }

    fn counters(&self, key: &SessionKey) -> Result<SessionCounters, DataPlaneError> {
        let mk = map_key(key);
        if !self.exists(&mk)? {
            return Err(DataPlaneError::NotFound(*key));
        }
        let per_cpu: PerCpuValues<maps::Counters> = match self.counters.get(&mk, 0) {
            Ok(v) => v,
            Err(e) if not_found(&e) => return Ok(SessionCounters::default()),
            Err(e) => return Err(sys(name::COUNTERS, e)),
        };
        Ok(per_cpu
            .iter()
            .fold(SessionCounters::default(), |a, c| SessionCounters {
                rx_packets: a.rx_packets + c.rx_packets,
                rx_bytes: a.rx_bytes + c.rx_bytes,
                tx_packets: a.tx_packets + c.tx_packets,
                tx_bytes: a.tx_bytes + c.tx_bytes,
            }))
    }
}

/// The number of possible CPUs (the length of per-CPU map values; the cpumap spreads over
/// [`crate::loader::cpumap_cpus`]).
pub fn possible_cpus() -> u32 {
    nr_cpus().map_or(1, |n| n as u32)
}
