//! [`XdpDataPlane`]: the [`DataPlane`] over the XDP programs' maps — the pinned ones under
//! `/sys/fs/bpf/l2xdp/` ([`XdpDataPlane::open`], usable from any process, e.g. the control
//! plane) or those of an object just loaded ([`XdpDataPlane::from_ebpf`], tests).

use std::collections::HashMap as StdHashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
use aya::maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, Queue};
use aya::util::nr_cpus;
use aya::Ebpf;
use l2xdp_ebpf::maps::{self, name};
use l2xdp_wire::datapath::{DecapConfig, DropReason, SessionKey};

use crate::api::{
    Binding, DataPlane, DataPlaneError, IdHint, Ipv6Prefix, SessionCounters, SessionEntry,
};
use crate::session_map::{from_map, map_key, session_key, to_map, upper64};
use crate::tables::{not_found, sys, SessionTables};

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
    tables: SessionTables,
    seq: HashMap<MapData, maps::SessionKey, maps::Seq>,
    drops: PerCpuArray<MapData, u64>,
    verdicts: PerCpuArray<MapData, u64>,
    dst4: Array<MapData, maps::Dst4Bucket>,
    sub4: HashMap<MapData, [u8; 4], u32>,
    sub6: LpmTrie<MapData, [u8; 16], u32>,
    ac: HashMap<MapData, u32, u32>,
    circuits: Array<MapData, maps::Circuit>,
    /// Session changes for AF_XDP workers in another process, and the flag set when one did
    /// not fit ([`crate::afxdp`]).
    changes: Queue<MapData, maps::Change>,
    resync: Array<MapData, u32>,
    /// What the maps hold, read when this handle is opened and kept up to date by it, so
    /// installing or removing a session touches only its own entries.
    shadow: Shadow,
    /// Several processes may write the pinned maps (l2xdpd, `l2xdp-dataplane static`, a
    /// bench): each write holds the pin directory's flock, and a writer that finds the
    /// generation in `l2xdp_writers` moved since its own last write re-reads the maps first.
    writers: Array<MapData, u64>,
    generation: u64,
    /// The pin directory (`None`: the maps of an object this process loaded, private to it).
    lock_dir: Option<std::fs::File>,
}

/// Holds the pin directory's flock (released on drop).
struct WriteLock<'a>(Option<&'a std::fs::File>);

impl WriteLock<'_> {
    fn take(dir: Option<&std::fs::File>) -> Result<WriteLock<'_>, DataPlaneError> {
        if let Some(d) = dir {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor this handle owns.
            if unsafe { libc::flock(d.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(sys(
                    "flock of the pin directory",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(WriteLock(dir))
    }
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.0 {
            use std::os::fd::AsRawFd;
            // SAFETY: as in `take`.
            unsafe {
                libc::flock(d.as_raw_fd(), libc::LOCK_UN);
            }
        }
    }
}

/// The writer's index of the maps.
#[derive(Default)]
struct Shadow {
    /// Installed sessions: slot and binding.
    by_key: StdHashMap<maps::SessionKey, (u32, Binding)>,
    /// Occupied slots (one bit each), shared with the control plane's id allocation.
    used: Arc<SlotUse>,
    /// Where the search for a free non-home slot resumes.
    cursor: u32,
    /// Profiles in use: value → (index, sessions using it); and free indexes.
    profiles: StdHashMap<maps::Profile, (u16, u32)>,
    profile_at: StdHashMap<u16, maps::Profile>,
    free_profiles: Vec<u16>,
    next_profile: u32,
    profile_cap: u32,
    /// Owners of bound addresses, prefixes and circuits.
    addr4: StdHashMap<[u8; 4], maps::SessionKey>,
    /// IPv4 addresses in l2xdp_sub4 (their bucket was full), by bucket.
    overflow4: StdHashMap<u32, Vec<[u8; 4]>>,
    prefix_owner: StdHashMap<(u32, [u8; 16]), maps::SessionKey>,
    /// Prefixes longer than /64, by the /64 they are in: a /64 with such prefixes inside is
    /// not checked from the slot (the longest prefix may be another session's).
    nested64: StdHashMap<[u8; 8], u32>,
    ac_owner: StdHashMap<u32, maps::SessionKey>,
    dst4_mask: u32,
}

/// Which slots are taken: written by the one writer ([`XdpDataPlane`]), read by the control
/// plane's id allocation ([`IdHint`]) — a new session's id is preferred when its home slot is
/// free.
#[derive(Default)]
pub struct SlotUse {
    words: Vec<AtomicU64>,
    mask: u32,
}

impl SlotUse {
    fn new(slots: u32) -> SlotUse {
        SlotUse {
            words: (0..(slots as usize).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            mask: slots.saturating_sub(1),
        }
    }

    fn clear(&self) {
        for w in &self.words {
            w.store(0, Ordering::Relaxed);
        }
    }

    fn get(&self, slot: u32) -> bool {
        self.words
            .get(slot as usize / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (slot % 64)) != 0)
    }

    fn set(&self, slot: u32, on: bool) {
        if let Some(w) = self.words.get(slot as usize / 64) {
            if on {
                w.fetch_or(1 << (slot % 64), Ordering::Relaxed);
            } else {
                w.fetch_and(!(1 << (slot % 64)), Ordering::Relaxed);
            }
        }
    }
}

impl IdHint for SlotUse {
    fn preferred(&self, key: &SessionKey) -> bool {
        !self.get(map_key(key).id & self.mask)
    }
}

impl Shadow {
    fn is_used(&self, slot: u32) -> bool {
        self.used.get(slot)
    }

    fn set_used(&mut self, slot: u32, on: bool) {
        self.used.set(slot, on);
    }
}

fn full(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::E2BIG))
}

fn map_err(what: &'static str) -> impl Fn(MapError) -> DataPlaneError {
    move |e: MapError| {
        if full(&e) {
            DataPlaneError::Full(what)
        } else {
            sys(what, e)
        }
    }
}

impl XdpDataPlane {
    /// Opens the maps pinned in `pin_dir` (by `l2xdp-dataplane attach`).
    pub fn open(pin_dir: &Path) -> Result<Self, DataPlaneError> {
        let dir =
            std::fs::File::open(pin_dir).map_err(|e| sys(&pin_dir.display().to_string(), e))?;
        Self::build(
            |n| {
                let path = pin_dir.join(n);
                let data =
                    MapData::from_pin(&path).map_err(|e| sys(&path.display().to_string(), e))?;
                Map::from_map_data(data).map_err(|e| sys(n, e))
            },
            Some(dir),
        )
    }

    /// Takes the maps of a loaded object (tests, or a process that owns the programs).
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self, DataPlaneError> {
        Self::build(
            |n| {
                ebpf.take_map(n)
                    .ok_or_else(|| sys(n, "map not in the object (or taken already)"))
            },
            None,
        )
    }

    fn build(
        mut get: impl FnMut(&str) -> Result<Map, DataPlaneError>,
        lock_dir: Option<std::fs::File>,
    ) -> Result<Self, DataPlaneError> {
        macro_rules! typed {
            ($n:expr) => {
                get($n)?.try_into().map_err(|e| sys($n, e))?
            };
        }
        let tables = SessionTables::build(&mut get)?;
        let dst4: Array<MapData, maps::Dst4Bucket> = typed!(name::DST4);
        let n4 = dst4.len();
        if !n4.is_power_of_two() {
            return Err(sys(name::DST4, format!("{n4} buckets: not a power of two")));
        }
        let circuits: Array<MapData, maps::Circuit> = typed!(name::CIRCUITS);
        let nc = circuits.len();
        if !nc.is_power_of_two() {
            return Err(sys(
                name::CIRCUITS,
                format!("{nc} entries: not a power of two"),
            ));
        }
        let mut dp = XdpDataPlane {
            circuits,
            config: typed!(name::CONFIG),
            seq: typed!(name::SEQ),
            drops: typed!(name::DROPS),
            verdicts: typed!(name::VERDICTS),
            sub4: typed!(name::SUB4),
            sub6: typed!(name::SUB6),
            ac: typed!(name::AC),
            changes: typed!(name::CHANGES),
            resync: typed!(name::RESYNC),
            shadow: Shadow {
                used: Arc::new(SlotUse::new(tables.capacity())),
                dst4_mask: n4 - 1,
                ..Shadow::default()
            },
            dst4,
            tables,
            writers: typed!(name::WRITERS),
            generation: 0,
            lock_dir,
        };
        dp.with_lock(|dp| {
            dp.generation = dp.read_generation()?;
            dp.load_shadow()
        })?;
        Ok(dp)
    }

    /// Runs `f` holding the pin directory's flock (no lock for private maps).
    fn with_lock<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, DataPlaneError>,
    ) -> Result<R, DataPlaneError> {
        let dir = self.lock_dir.take();
        let r = WriteLock::take(dir.as_ref()).and_then(|_l| f(self));
        self.lock_dir = dir;
        r
    }

    fn read_generation(&self) -> Result<u64, DataPlaneError> {
        self.writers.get(&0, 0).map_err(|e| sys(name::WRITERS, e))
    }

    /// Runs a change under the writers' lock: the maps re-read first if another writer
    /// changed them since this one's last write, the generation bumped after.
    fn write_locked<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, DataPlaneError>,
    ) -> Result<R, DataPlaneError> {
        self.with_lock(|dp| {
            let g = dp.read_generation()?;
            if g != dp.generation {
                dp.reload_shadow()?;
            }
            let r = f(dp);
            // Bumped whatever `f` did: a failed change may have written part of its entries.
            dp.generation = g.wrapping_add(1);
            dp.writers
                .set(0, dp.generation, 0)
                .map_err(|e| sys(name::WRITERS, e))?;
            r
        })
    }

    /// Forgets the shadow and reads the maps again (another writer changed them).
    fn reload_shadow(&mut self) -> Result<(), DataPlaneError> {
        let used = self.shadow.used.clone();
        used.clear();
        self.shadow = Shadow {
            used,
            dst4_mask: self.shadow.dst4_mask,
            ..Shadow::default()
        };
        self.load_shadow()
    }

    /// Reads what the maps hold into the shadow.
    fn load_shadow(&mut self) -> Result<(), DataPlaneError> {
        let found = self.tables.all()?;
        let profiles = self.tables.profiles_of(&found)?;
        let mut v6: StdHashMap<u32, Vec<Ipv6Prefix>> = StdHashMap::new();
        for r in self.sub6.iter() {
            let (p, slot) = r.map_err(|e| sys(name::SUB6, e))?;
            v6.entry(slot).or_default().push(Ipv6Prefix {
                addr: Ipv6Addr::from(p.data()),
                len: p.prefix_len() as u8,
            });
        }
        for r in self.sub4.keys() {
            let a = r.map_err(|e| sys(name::SUB4, e))?;
            let b = self.bucket_of(a);
            self.shadow.overflow4.entry(b).or_default().push(a);
        }
        let sh = &mut self.shadow;
        sh.profile_cap = self.tables.profiles.len();
        for f in &found {
            let k = f.key();
            let binding = if f.session.version == 3 {
                sh.ac_owner.insert(f.session.bind4, k);
                Binding::AttachmentCircuit {
                    ifindex: f.session.bind4,
                }
            } else {
                let ipv4 =
                    (f.session.bind4 != 0).then(|| Ipv4Addr::from(f.session.bind4.to_ne_bytes()));
                if let Some(a) = ipv4 {
                    sh.addr4.insert(a.octets(), k);
                }
                let mut ipv6 = v6.remove(&f.slot).unwrap_or_default();
                ipv6.sort_by_key(|p| (p.addr, p.len));
                for p in &ipv6 {
                    sh.prefix_owner
                        .insert((u32::from(p.len), p.addr.octets()), k);
                    if p.len > 64 {
                        *sh.nested64.entry(upper64(p)).or_insert(0) += 1;
                    }
                }
                Binding::Subscriber { ipv4, ipv6 }
            };
            sh.by_key.insert(k, (f.slot, binding));
            sh.set_used(f.slot, true);
            if let Some(p) = profiles.get(&f.session.profile) {
                let e = sh.profiles.entry(*p).or_insert((f.session.profile, 0));
                e.1 += 1;
                sh.profile_at.insert(f.session.profile, *p);
            }
        }
        sh.next_profile = sh
            .profile_at
            .keys()
            .map(|i| u32::from(*i) + 1)
            .max()
            .unwrap_or(0);
        sh.free_profiles = (0..sh.next_profile)
            .filter_map(|i| u16::try_from(i).ok())
            .filter(|i| !sh.profile_at.contains_key(i))
            .collect();
        Ok(())
    }

    /// Tells AF_XDP workers (of any process) that a session changed: a change record in the
    /// pinned queue, or, when it is full, the resync flag (the workers rescan the session map).
    fn notify(&mut self, key: maps::SessionKey, op: u32) -> Result<(), DataPlaneError> {
        if self.changes.push(maps::Change { key, op }, 0).is_err() {
            self.resync.set(0, 1, 0).map_err(|e| sys(name::RESYNC, e))?;
        }
        Ok(())
    }

    /// Writes the global settings; until then the programs pass everything.
    /// The kernel path's mark (`kernel_mark`, set by the loader) is kept as it is.
    pub fn set_config(&mut self, c: &FastPathConfig) -> Result<(), DataPlaneError> {
        self.write_locked(|dp| dp.set_config_unlocked(c))
    }

    fn set_config_unlocked(&mut self, c: &FastPathConfig) -> Result<(), DataPlaneError> {
        // Kept as they are: the loader's mark, the control plane's gateway and SCCRQ budget.
        let cur = self.config.get(&0, 0).map_err(|e| sys(name::CONFIG, e))?;
        let kernel_mark = cur.kernel_mark;
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
            slot_mask: self.tables.mask,
            dst4_mask: self.shadow.dst4_mask,
            ac_bloom: self.ac_bloom(),
            kernel_mark,
            pad_mark: 0,
            gateway4: cur.gateway4,
            sccrq_budget: cur.sccrq_budget,
            ac_mask: self.circuits.len() - 1,
            pad_tail: 0,
        };
        self.config.set(0, v, 0).map_err(|e| sys(name::CONFIG, e))
    }

    fn set_gateway_unlocked(&mut self, ipv4: Option<Ipv4Addr>) -> Result<(), DataPlaneError> {
        let mut c = self.config.get(&0, 0).map_err(|e| sys(name::CONFIG, e))?;
        c.gateway4 = ipv4
            .filter(|a| !a.is_unspecified())
            .map_or(0, |a| u32::from_ne_bytes(a.octets()));
        self.config.set(0, c, 0).map_err(|e| sys(name::CONFIG, e))
    }

    fn set_sccrq_budget_unlocked(&mut self, per_sec: u32) -> Result<(), DataPlaneError> {
        let mut c = self.config.get(&0, 0).map_err(|e| sys(name::CONFIG, e))?;
        c.sccrq_budget = per_sec;
        self.config.set(0, c, 0).map_err(|e| sys(name::CONFIG, e))
    }

    /// The global settings as the programs read them (diagnostics, tests).
    pub fn config(&self) -> Result<maps::Config, DataPlaneError> {
        self.config.get(&0, 0).map_err(|e| sys(name::CONFIG, e))
    }

    /// Bit `ifindex & 63` of every attachment circuit: the core program skips the
    /// `l2xdp_ac` lookup on interfaces whose bit is clear (every v2 packet, where no circuit
    /// shares the bit).
    fn ac_bloom(&self) -> u64 {
        self.shadow
            .ac_owner
            .keys()
            .fold(0, |b, i| b | 1u64 << (i & 63))
    }

    /// Rewrites the configuration's `ac_bloom` after attachment circuits changed (the rest as
    /// it is; not yet configured: nothing to do, `set_config` writes it).
    fn refresh_ac_bloom(&mut self) -> Result<(), DataPlaneError> {
        let mut c = self.config.get(&0, 0).map_err(|e| sys(name::CONFIG, e))?;
        let b = self.ac_bloom();
        if c.configured != 0 && c.ac_bloom != b {
            c.ac_bloom = b;
            self.config.set(0, c, 0).map_err(|e| sys(name::CONFIG, e))?;
        }
        Ok(())
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

    /// Whether a session with this key would sit in its home slot — the one lookup per packet.
    /// The control plane draws its ids among those for which this holds; another id works
    /// too, through the overflow index (one hash lookup more per packet).
    pub fn home_is_free(&self, key: &SessionKey) -> bool {
        let mk = map_key(key);
        let home = self.tables.home(&mk);
        match self.shadow.by_key.get(&mk) {
            Some((slot, _)) => *slot == home,
            None => !self.shadow.is_used(home),
        }
    }

    /// The slot of a session, if installed (tests, diagnostics).
    pub fn slot_of(&self, key: &SessionKey) -> Option<u32> {
        self.shadow.by_key.get(&map_key(key)).map(|(s, _)| *s)
    }

    /// The profile (shared outer header) index of a session, if installed (tests,
    /// diagnostics: sessions of a tunnel with the same framing share one).
    pub fn profile_of(&self, key: &SessionKey) -> Result<Option<u16>, DataPlaneError> {
        Ok(self.tables.find_key(key)?.map(|f| f.session.profile))
    }

    /// Sessions in their home slot and in another (the overflow index).
    pub fn placement(&self) -> (usize, usize) {
        let home = self
            .shadow
            .by_key
            .iter()
            .filter(|(k, (slot, _))| self.tables.home(k) == *slot)
            .count();
        (home, self.shadow.by_key.len() - home)
    }

    fn bucket_of(&self, a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a) & self.shadow.dst4_mask
    }

    fn conflict(&self, entry: &SessionEntry, mk: &maps::SessionKey) -> Result<(), DataPlaneError> {
        let owner = |k: Option<&maps::SessionKey>, what: String| match k.and_then(session_key) {
            Some(o) if k != Some(mk) => Err(DataPlaneError::Conflict { what, owner: o }),
            _ => Ok(()),
        };
        match &entry.binding {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    owner(
                        self.shadow.addr4.get(&a.octets()),
                        format!("subscriber address {a}"),
                    )?;
                }
                for p in ipv6 {
                    // Exact prefix match only (the trie answers longest-prefix lookups).
                    let k = (u32::from(p.len), p.addr.octets());
                    owner(
                        self.shadow.prefix_owner.get(&k),
                        format!("prefix {}/{}", p.addr, p.len),
                    )?;
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                owner(
                    self.shadow.ac_owner.get(ifindex),
                    format!("attachment interface {ifindex}"),
                )?;
            }
        }
        Ok(())
    }

    /// A profile index for `p`, shared with the sessions that have the same one.
    fn acquire_profile(&mut self, p: &maps::Profile) -> Result<u16, DataPlaneError> {
        if let Some((i, n)) = self.shadow.profiles.get_mut(p) {
            *n += 1;
            return Ok(*i);
        }
        let i = match self.shadow.free_profiles.pop() {
            Some(i) => i,
            None => {
                let i = self.shadow.next_profile;
                if i >= self.shadow.profile_cap || i > u32::from(u16::MAX) {
                    return Err(DataPlaneError::Full(name::PROFILES));
                }
                self.shadow.next_profile += 1;
                i as u16
            }
        };
        self.tables
            .profiles
            .set(u32::from(i), *p, 0)
            .map_err(map_err(name::PROFILES))?;
        self.shadow.profiles.insert(*p, (i, 1));
        self.shadow.profile_at.insert(i, *p);
        Ok(i)
    }

    fn release_profile(&mut self, i: u16) {
        let Some(p) = self.shadow.profile_at.get(&i).copied() else {
            return;
        };
        if let Some((_, n)) = self.shadow.profiles.get_mut(&p) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.shadow.profiles.remove(&p);
                self.shadow.profile_at.remove(&i);
                // Left as it is in the map: a packet that read the slot before its session
                // went away may still read it; the index is reused by the next new profile.
                self.shadow.free_profiles.push(i);
            }
        }
    }

    /// A slot for a new session: its home slot when free, else the next free one.
    fn allocate_slot(&mut self, mk: &maps::SessionKey) -> Result<u32, DataPlaneError> {
        let home = self.tables.home(mk);
        if !self.shadow.is_used(home) {
            return Ok(home);
        }
        let cap = self.tables.capacity();
        let mut s = self.shadow.cursor;
        for _ in 0..cap {
            s = (s + 1) & self.tables.mask;
            if !self.shadow.is_used(s) {
                self.shadow.cursor = s;
                return Ok(s);
            }
        }
        Err(DataPlaneError::Full(name::SESSIONS))
    }

    /// Writes a slot. A new one in two steps — the value with `version` 0, then with it — so a
    /// packet never sees a half-written session (the array update is a copy, not a swap).
    fn write_slot(&mut self, slot: u32, v: maps::Session, new: bool) -> Result<(), DataPlaneError> {
        if new {
            let hidden = maps::Session { version: 0, ..v };
            self.tables
                .sessions
                .set(slot, hidden, 0)
                .map_err(map_err(name::SESSIONS))?;
        }
        self.tables
            .sessions
            .set(slot, v, 0)
            .map_err(map_err(name::SESSIONS))
    }

    fn bind4(&mut self, a: [u8; 4], slot: u32, mk: maps::SessionKey) -> Result<(), DataPlaneError> {
        let b = self.bucket_of(a);
        let mut bucket = self.dst4.get(&b, 0).map_err(|e| sys(name::DST4, e))?;
        let addr = u32::from_ne_bytes(a);
        if let Some(e) = bucket.e.iter_mut().find(|e| e.addr == addr) {
            e.slot = slot;
            self.dst4.set(b, bucket, 0).map_err(map_err(name::DST4))?;
        } else if let Some(i) = bucket.e.iter().position(|e| e.addr == 0) {
            // The slot first, then the address that makes the entry match.
            bucket.e[i].slot = slot;
            self.dst4.set(b, bucket, 0).map_err(map_err(name::DST4))?;
            bucket.e[i].addr = addr;
            self.dst4.set(b, bucket, 0).map_err(map_err(name::DST4))?;
        } else {
            self.sub4.insert(a, slot, 0).map_err(map_err(name::SUB4))?;
            let o = self.shadow.overflow4.entry(b).or_default();
            if !o.contains(&a) {
                o.push(a);
            }
        }
        self.shadow.addr4.insert(a, mk);
        Ok(())
    }

    fn unbind4(&mut self, a: [u8; 4]) -> Result<(), DataPlaneError> {
        let b = self.bucket_of(a);
        self.shadow.addr4.remove(&a);
        let in_overflow = self
            .shadow
            .overflow4
            .get(&b)
            .is_some_and(|o| o.contains(&a));
        if in_overflow {
            if let Some(o) = self.shadow.overflow4.get_mut(&b) {
                o.retain(|x| *x != a);
            }
            return match self.sub4.remove(&a) {
                Ok(()) => Ok(()),
                Err(e) if not_found(&e) => Ok(()),
                Err(e) => Err(sys(name::SUB4, e)),
            };
        }
        let mut bucket = self.dst4.get(&b, 0).map_err(|e| sys(name::DST4, e))?;
        let addr = u32::from_ne_bytes(a);
        let Some(i) = bucket.e.iter().position(|e| e.addr == addr) else {
            return Ok(());
        };
        // A bucket with addresses in the overflow hash stays full: one of them moves in.
        let moved = self.shadow.overflow4.get_mut(&b).and_then(|o| o.pop());
        match moved {
            Some(m) => {
                let slot = self.sub4.get(&m, 0).map_err(|e| sys(name::SUB4, e))?;
                bucket.e[i] = maps::Dst4Entry {
                    addr: u32::from_ne_bytes(m),
                    slot,
                };
                self.dst4.set(b, bucket, 0).map_err(map_err(name::DST4))?;
                self.sub4.remove(&m).map_err(|e| sys(name::SUB4, e))?;
            }
            None => {
                bucket.e[i].addr = 0;
                self.dst4.set(b, bucket, 0).map_err(map_err(name::DST4))?;
            }
        }
        Ok(())
    }

    /// The session holding the /64 `u` (if any) stops checking IPv6 sources from its slot: a
    /// longer prefix inside it may be another session's (longest prefix wins). It stays so
    /// until it is installed again.
    fn demote64(&mut self, u: [u8; 8]) -> Result<(), DataPlaneError> {
        let mut addr = [0u8; 16];
        addr[..8].copy_from_slice(&u);
        let Some(owner) = self.shadow.prefix_owner.get(&(64, addr)).copied() else {
            return Ok(());
        };
        let Some((slot, _)) = self.shadow.by_key.get(&owner).cloned() else {
            return Ok(());
        };
        let mut v = self.tables.slot(slot)?;
        if v.version == 2 && v.flags & maps::flags::BIND64 != 0 && v.bind8 == u {
            v.flags |= maps::flags::SUB6_MORE;
            v.flags &= !maps::flags::BIND64;
            self.write_slot(slot, v, false)?;
        }
        Ok(())
    }

    fn bind(&mut self, b: &Binding, slot: u32, mk: maps::SessionKey) -> Result<(), DataPlaneError> {
        match b {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    self.bind4(a.octets(), slot, mk)?;
                }
                for p in ipv6 {
                    let key = LpmKey::new(u32::from(p.len), p.addr.octets());
                    self.sub6
                        .insert(&key, slot, 0)
                        .map_err(map_err(name::SUB6))?;
                    let k = (u32::from(p.len), p.addr.octets());
                    if self.shadow.prefix_owner.insert(k, mk) != Some(mk) && p.len > 64 {
                        let u = upper64(p);
                        *self.shadow.nested64.entry(u).or_insert(0) += 1;
                        self.demote64(u)?;
                    }
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                self.bind_circuit(*ifindex, slot)?;
                self.shadow.ac_owner.insert(*ifindex, mk);
                self.refresh_ac_bloom()?;
            }
        }
        Ok(())
    }

    /// Points circuit `ifindex` at `slot`: its `l2xdp_circuits` entry (`ifindex & ac_mask`)
    /// when free or its own, else `l2xdp_ac`. A circuit is in one of the two, never both (a
    /// stale `l2xdp_ac` entry would outlive the array's).
    fn bind_circuit(&mut self, ifindex: u32, slot: u32) -> Result<(), DataPlaneError> {
        let i = ifindex & (self.circuits.len() - 1);
        let e = self
            .circuits
            .get(&i, 0)
            .map_err(|e| sys(name::CIRCUITS, e))?;
        if e.ifindex == 0 || e.ifindex == ifindex {
            self.circuits
                .set(i, maps::Circuit { ifindex, slot }, 0)
                .map_err(map_err(name::CIRCUITS))?;
            return self.remove_overflow_circuit(ifindex);
        }
        self.ac.insert(ifindex, slot, 0).map_err(map_err(name::AC))
    }

    fn unbind_circuit(&mut self, ifindex: u32) -> Result<(), DataPlaneError> {
        let i = ifindex & (self.circuits.len() - 1);
        let e = self
            .circuits
            .get(&i, 0)
            .map_err(|e| sys(name::CIRCUITS, e))?;
        if e.ifindex == ifindex {
            self.circuits
                .set(i, maps::Circuit::default(), 0)
                .map_err(map_err(name::CIRCUITS))?;
        }
        self.remove_overflow_circuit(ifindex)
    }

    fn remove_overflow_circuit(&mut self, ifindex: u32) -> Result<(), DataPlaneError> {
        match self.ac.remove(&ifindex) {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(sys(name::AC, e)),
        }
    }

    /// Removes the entries of `old` that `new` does not have (all of them without `new`).
    fn unbind(
        &mut self,
        mk: &maps::SessionKey,
        old: &Binding,
        new: Option<&Binding>,
    ) -> Result<(), DataPlaneError> {
        let (keep4, keep6, keep_ac) = match new {
            Some(Binding::Subscriber { ipv4, ipv6 }) => (*ipv4, ipv6.clone(), None),
            Some(Binding::AttachmentCircuit { ifindex }) => (None, vec![], Some(*ifindex)),
            None => (None, vec![], None),
        };
        match old {
            Binding::Subscriber { ipv4, ipv6 } => {
                if let Some(a) = ipv4 {
                    if Some(*a) != keep4 && self.shadow.addr4.get(&a.octets()) == Some(mk) {
                        self.unbind4(a.octets())?;
                    }
                }
                for p in ipv6 {
                    if keep6.contains(p) {
                        continue;
                    }
                    let k = (u32::from(p.len), p.addr.octets());
                    if self.shadow.prefix_owner.get(&k) == Some(mk) {
                        self.shadow.prefix_owner.remove(&k);
                        if p.len > 64 {
                            let u = upper64(p);
                            if let Some(n) = self.shadow.nested64.get_mut(&u) {
                                *n = n.saturating_sub(1);
                                if *n == 0 {
                                    self.shadow.nested64.remove(&u);
                                }
                            }
                        }
                        match self.sub6.remove(&LpmKey::new(k.0, k.1)) {
                            Ok(()) => {}
                            Err(e) if not_found(&e) => {}
                            Err(e) => return Err(sys(name::SUB6, e)),
                        }
                    }
                }
            }
            Binding::AttachmentCircuit { ifindex } => {
                if Some(*ifindex) != keep_ac && self.shadow.ac_owner.get(ifindex) == Some(mk) {
                    self.shadow.ac_owner.remove(ifindex);
                    self.unbind_circuit(*ifindex)?;
                    self.refresh_ac_bloom()?;
                }
            }
        }
        Ok(())
    }
}

impl XdpDataPlane {
    fn install_unlocked(&mut self, entry: &SessionEntry) -> Result<(), DataPlaneError> {
        let mut value = to_map(&entry.session, &entry.binding)?;
        let mk = map_key(&entry.key());
        self.conflict(entry, &mk)?;
        // Sequence state (sequenced sessions only) survives a re-install (idempotent
        // install); a new session starts synced at 0 (RFC 3931 App. C).
        if entry.session.sequencing {
            let fresh = maps::Seq {
                rx_synced: 1,
                ..maps::Seq::default()
            };
            match self.seq.insert(mk, fresh, NOEXIST) {
                Ok(()) => {}
                Err(MapError::SyscallError(s))
                    if s.io_error.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(map_err(name::SEQ)(e)),
            }
        }
        if value.slot.version == 2
            && value.slot.flags & maps::flags::BIND64 != 0
            && self.shadow.nested64.contains_key(&value.slot.bind8)
        {
            value.slot.flags &= !maps::flags::BIND64;
            value.slot.flags |= maps::flags::SUB6_MORE;
        }
        let old = self.shadow.by_key.get(&mk).cloned();
        let profile = self.acquire_profile(&value.profile)?;
        value.slot.profile = profile;
        let (slot, new) = match &old {
            Some((slot, _)) => (*slot, false),
            // The maps' size: at least twice as many slots, so new ids find free homes.
            None if self.shadow.by_key.len() as u32 >= self.tables.max_sessions => {
                self.release_profile(profile);
                return Err(DataPlaneError::Full(name::SESSIONS));
            }
            None => match self.allocate_slot(&mk) {
                Ok(s) => (s, true),
                Err(e) => {
                    self.release_profile(profile);
                    return Err(e);
                }
            },
        };
        // A re-install keeps the counters (what the program adds between this read and the
        // write is lost: a re-install is a rare event) and gives up its old profile after.
        let old_profile = if new {
            None
        } else {
            let cur = self.tables.slot(slot)?;
            value.slot.rx_packets = cur.rx_packets;
            value.slot.rx_bytes = cur.rx_bytes;
            value.slot.tx_packets = cur.tx_packets;
            value.slot.tx_bytes = cur.tx_bytes;
            if let Some((_, b)) = &old {
                let b = b.clone();
                self.unbind(&mk, &b, Some(&entry.binding))?;
            }
            Some(cur.profile)
        };
        self.write_slot(slot, value.slot, new)?;
        if new {
            self.shadow.set_used(slot, true);
            if slot != self.tables.home(&mk) {
                if let Err(e) = self.tables.slots.insert(mk, slot, 0) {
                    self.write_slot(slot, maps::Session::default(), false)?;
                    self.shadow.set_used(slot, false);
                    self.release_profile(profile);
                    return Err(map_err(name::SLOTS)(e));
                }
            }
        }
        if let Some(p) = old_profile {
            self.release_profile(p);
        }
        self.shadow.by_key.insert(mk, (slot, entry.binding.clone()));
        self.bind(&entry.binding, slot, mk)?;
        self.notify(mk, maps::op::UPSERT)
    }

    fn remove_unlocked(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        let mk = map_key(key);
        let Some((slot, binding)) = self.shadow.by_key.get(&mk).cloned() else {
            return Err(DataPlaneError::NotFound(*key));
        };
        self.unbind(&mk, &binding, None)?;
        let cur = self.tables.slot(slot)?;
        // Free: version 0 (the id stays, so a packet that read the slot just before sees it
        // as it was).
        self.write_slot(slot, maps::Session { version: 0, ..cur }, false)?;
        self.shadow.set_used(slot, false);
        self.shadow.by_key.remove(&mk);
        self.release_profile(cur.profile);
        for r in [
            if slot != self.tables.home(&mk) {
                self.tables.slots.remove(&mk)
            } else {
                Ok(())
            },
            self.seq.remove(&mk),
        ] {
            match r {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(sys("session state", e)),
            }
        }
        self.notify(mk, maps::op::REMOVE)
    }

    fn reset_sequence_unlocked(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        let mk = map_key(key);
        if !self.shadow.by_key.contains_key(&mk) {
            return Err(DataPlaneError::NotFound(*key));
        }
        // RFC 4951 §3.2.3: Ns restarts at 0, the receiver re-learns (RxSeq::unsynced).
        self.seq
            .insert(mk, maps::Seq::default(), F_LOCK)
            .map_err(|e| sys(name::SEQ, e))?;
        self.notify(mk, maps::op::RESET_SEQ)
    }
}

impl DataPlane for XdpDataPlane {
    fn install(&mut self, entry: &SessionEntry) -> Result<(), DataPlaneError> {
        self.write_locked(|dp| dp.install_unlocked(entry))
    }

    fn remove(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        self.write_locked(|dp| dp.remove_unlocked(key))
    }

    fn reset_sequence(&mut self, key: &SessionKey) -> Result<(), DataPlaneError> {
        self.write_locked(|dp| dp.reset_sequence_unlocked(key))
    }

    fn sessions(&self) -> Result<Vec<SessionEntry>, DataPlaneError> {
        let found = self.tables.all()?;
        let profiles = self.tables.profiles_of(&found)?;
        let mut out = Vec::with_capacity(found.len());
        for f in &found {
            let k = f.key();
            let session = profiles
                .get(&f.session.profile)
                .and_then(|p| from_map(&f.session, p))
                .ok_or_else(|| sys(name::SESSIONS, format!("unreadable slot {}", f.slot)))?;
            let binding = match self.shadow.by_key.get(&k) {
                Some((_, b)) => b.clone(),
                None if f.session.version == 3 => Binding::AttachmentCircuit {
                    ifindex: f.session.bind4,
                },
                None => Binding::Subscriber {
                    ipv4: (f.session.bind4 != 0)
                        .then(|| Ipv4Addr::from(f.session.bind4.to_ne_bytes())),
                    ipv6: vec![],
                },
            };
            out.push(SessionEntry { session, binding });
        }
        out.sort_by_key(SessionEntry::key);
        Ok(out)
    }

    fn id_hint(&self) -> Option<Arc<dyn IdHint>> {
        Some(self.shadow.used.clone())
    }

    fn set_gateway(&mut self, ipv4: Option<Ipv4Addr>) -> Result<(), DataPlaneError> {
        self.write_locked(|dp| dp.set_gateway_unlocked(ipv4))
    }

    fn set_sccrq_budget(&mut self, per_sec: u32) -> Result<(), DataPlaneError> {
        self.write_locked(|dp| dp.set_sccrq_budget_unlocked(per_sec))
    }

    fn counters(&self, key: &SessionKey) -> Result<SessionCounters, DataPlaneError> {
        match self.tables.find_key(key)? {
            Some(f) => Ok(f.counters()),
            None => Err(DataPlaneError::NotFound(*key)),
        }
    }
}

/// The number of possible CPUs (the length of per-CPU map values; the cpumap spreads over
/// [`crate::loader::cpumap_cpus`]).
pub fn possible_cpus() -> u32 {
    nr_cpus().map_or(1, |n| n as u32)
}
