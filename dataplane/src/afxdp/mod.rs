//! The AF_XDP fast path: per-core user-space workers behind the same XDP programs.
//!
//! In AF_XDP mode (`l2xdp_config.afxdp`, `l2xdp-dataplane attach --mode afxdp`) the programs
//! classify every packet exactly as in XDP mode — control to the kernel, unknown and invalid
//! traffic dropped and counted, the next hop found with `bpf_fib_lookup` — but a packet they
//! would forward is handed, untouched, to the AF_XDP socket of its receive queue (`l2xdp_xsks`)
//! with a [`maps::XskMeta`] in front: session key, direction, egress interface and MACs. The
//! [`worker`]s do the rest, byte for byte as `wire::datapath` (the reference the XDP program is
//! tested against): [`fast`] for the common case — the walk to the inner packet, the receive
//! sequence check (skipped by the program in this mode), `emit_inner_ethernet`'s rewrite, or
//! `encap` from a header prepared per session, with the session's Ns — relying on the checks
//! the program made before the hand-over (listed there); the reference itself for any frame
//! outside that case.
//!
//! Session state: the pinned maps stay the single source of truth (written by the control
//! plane through [`crate::XdpDataPlane`], which survives every process). Each change is also
//! pushed as a [`maps::Change`] into the pinned queue `l2xdp_changes`; the [`AfXdp`] runtime's
//! sync thread pops them, re-reads the session from the pinned map and sends [`Update`]s to
//! every worker's replica ([`table`]). On start it loads the whole map; when a change did not
//! fit the queue the writer sets `l2xdp_resync` and the sync thread rescans. The control plane
//! therefore keeps the same `DataPlane` (`XdpDataPlane`) in both modes, in the same or another
//! process.
//!
//! Counters: the per-session and per-verdict counters are the programs' (same maps, same
//! names, counted before the hand-over); what the workers drop (sequence, a session removed
//! under a packet) they count per core; the sync thread publishes them every 100 ms in the
//! per-CPU `l2xdp_xsk_stats`, each worker's at its core's slot, where [`crate::stats`] (what
//! `l2xdp-dataplane show`, `l2xdpctl show stats` and the metrics endpoint read) adds them to
//! the programs' drops by reason and CPU.
//!
//! Where the modes differ (checked by the differential test, `dataplane/tests/xdp_prog.rs`):
//! - the per-session rx counters count a packet when the program hands it over, so one the
//!   worker then drops as out of sequence is counted as received (XDP mode: dropped first);
//! - a packet whose egress interface has no worker socket (an attachment circuit not given to
//!   the runtime) is dropped and counted (`xsk_stat::NO_EGRESS`);
//! - no worker socket on the receive queue (runtime stopped, AF_XDP process dead: a closed
//!   socket leaves the XSKMAP): the programs forward in XDP mode; the sequence state they use
//!   is the map's, not the workers' (Ns jumps back: the peer re-learns, RFC 4951 §3.2.3);
//! - the cpumap spreading is XDP mode's (AF_XDP mode spreads by queue).

pub mod fast;
pub mod table;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aya::maps::{
    Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuValues, Queue, XskMap,
};
use crossbeam_channel::{unbounded as channel, Sender};
use l2xdp_ebpf::maps::{self, name, op, xsk_stat};
use l2xdp_wire::datapath::{DecapConfig, RxSeq, Session};

pub use table::Update;
pub use worker::{PassState, Work, Worker, WorkerStats};

use crate::loader;
use crate::session_map::from_map;
use crate::tables::SessionTables;
use crate::xsk::{XskConfig, XskSocket};

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// A pinned map is missing or unusable.
    #[error("pinned map {path}: {why}")]
    Map { path: PathBuf, why: String },
    /// An interface is unknown.
    #[error("{0}")]
    Interface(#[from] loader::LoadError),
    /// An AF_XDP socket could not be created or bound.
    #[error("AF_XDP socket on {iface} queue {queue}: {why}")]
    Socket {
        iface: String,
        queue: u32,
        why: std::io::Error,
    },
    /// Bad settings.
    #[error("{0}")]
    Config(String),
    /// The session tables could not be read.
    #[error("session tables: {0}")]
    Tables(crate::api::DataPlaneError),
}

/// The runtime's settings.
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    /// The interfaces the programs run on (access and core sides, attachment circuits): one
    /// socket per worker on each.
    pub interfaces: Vec<String>,
    /// One worker per core, worker `i` on queue `i` of every interface.
    pub cores: Vec<usize>,
    /// Frames taken per socket and pass.
    pub batch: u32,
    /// Socket settings.
    pub xsk: XskConfig,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            interfaces: vec![],
            cores: vec![0],
            batch: 64,
            xsk: XskConfig::default(),
        }
    }
}

/// The running workers and their sync thread. Dropping it stops them and removes the sockets
/// from the XSKMAP (the programs then pass what they would have handed over).
pub struct AfXdp {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Vec<Arc<WorkerStats>>,
    xsks: XskMap<MapData>,
    registered: Vec<u32>,
    /// Whether each socket runs in zero-copy mode.
    pub zero_copy: Vec<bool>,
}

fn map_err(path: &Path, e: impl std::fmt::Display) -> AfXdpError {
    AfXdpError::Map {
        path: path.into(),
        why: e.to_string(),
    }
}

/// Opens a pinned map of `pin_dir` as `T`.
fn pinned<T: TryFrom<Map>>(pin_dir: &Path, n: &str) -> Result<T, AfXdpError>
where
    T::Error: std::fmt::Display,
{
    let path = pin_dir.join(n);
    let data = MapData::from_pin(&path).map_err(|e| map_err(&path, e))?;
    let map = Map::from_map_data(data).map_err(|e| map_err(&path, e))?;
    T::try_from(map).map_err(|e| map_err(&path, e))
}

/// The decapsulation settings the programs use (the `l2xdp_config` map).
pub fn decap_config(pin_dir: &Path) -> Result<DecapConfig, AfXdpError> {
    let config: Array<MapData, maps::Config> = pinned(pin_dir, name::CONFIG)?;
    let c = config
        .get(&0, 0)
        .map_err(|e| map_err(&pin_dir.join(name::CONFIG), e))?;
    Ok(DecapConfig {
        udp_port: c.udp_port,
        verify_udp_checksum: c.verify_udp_checksum != 0,
        accept_zero_udp6_checksum: c.accept_zero_udp6_checksum != 0,
        seq_relearn_after: c.seq_relearn_after,
    })
}

impl AfXdp {
    /// Starts the workers on the fast path pinned in `pin_dir` (attached, configured with
    /// `afxdp: true`). Call it in the interfaces' network namespace: the sockets are created
    /// by the calling thread.
    pub fn start(pin_dir: &Path, cfg: &AfXdpConfig) -> Result<AfXdp, AfXdpError> {
        if cfg.cores.is_empty() || cfg.cores.len() > maps::XSK_QUEUES as usize {
            return Err(AfXdpError::Config(format!(
                "1 to {} cores, not {}",
                maps::XSK_QUEUES,
                cfg.cores.len()
            )));
        }
        if cfg.interfaces.len() * maps::XSK_QUEUES as usize > maps::XSK_MAX as usize {
            return Err(AfXdpError::Config("too many interfaces".into()));
        }
        let decap_cfg = decap_config(pin_dir)?;
        let mut xsks: XskMap<MapData> = pinned(pin_dir, name::XSKS)?;
        let mut base: BpfHashMap<MapData, u32, u32> = pinned(pin_dir, name::XSK_BASE)?;
        let ifindexes: Vec<u32> = cfg
            .interfaces
            .iter()
            .map(|i| loader::ifindex(i))
            .collect::<Result<_, _>>()?;
        let capacity = sessions_capacity(pin_dir);

        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = vec![];
        let mut senders = vec![];
        let mut registered = vec![];
        let mut zero_copy = vec![];
        for (queue, core) in cfg.cores.iter().enumerate() {
            let queue = queue as u32;
            let mut sockets = vec![];
            for (n, (iface, ifindex)) in cfg.interfaces.iter().zip(&ifindexes).enumerate() {
                let s = XskSocket::open(*ifindex, queue, &cfg.xsk).map_err(|why| {
                    AfXdpError::Socket {
                        iface: iface.clone(),
                        queue,
                        why,
                    }
                })?;
                let idx = n as u32 * maps::XSK_QUEUES + queue;
                base.insert(*ifindex, n as u32 * maps::XSK_QUEUES, 0)
                    .map_err(|e| map_err(&pin_dir.join(name::XSK_BASE), e))?;
                xsks.set(idx, s.fd(), 0)
                    .map_err(|e| map_err(&pin_dir.join(name::XSKS), e))?;
                registered.push(idx);
                zero_copy.push(s.zero_copy);
                sockets.push(s);
            }
            let (tx, rx) = channel();
            senders.push(tx);
            workers.push(Worker {
                sockets,
                batch: cfg.batch.max(1),
                stats: Arc::new(WorkerStats::default()),
                stop: stop.clone(),
                work: Work::L2tp {
                    cfg: decap_cfg,
                    table: table::table(capacity),
                    updates: rx,
                    handoff: loader::xsk_handoff(),
                },
                core: Some(*core),
            });
        }
        let stats: Vec<Arc<WorkerStats>> = workers.iter().map(|w| w.stats.clone()).collect();
        let mut sync = Sync::open(pin_dir, senders, stats.clone(), cfg.cores.clone())?;
        sync.full_load(true)?;
        let mut threads = vec![];
        for (i, w) in workers.into_iter().enumerate() {
            threads.push(
                std::thread::Builder::new()
                    .name(format!("l2xdp-afxdp-{i}"))
                    .spawn(move || w.run())
                    .map_err(|e| AfXdpError::Config(format!("spawn: {e}")))?,
            );
        }
        let st = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("l2xdp-afxdp-sync".into())
                .spawn(move || sync.run(&st))
                .map_err(|e| AfXdpError::Config(format!("spawn: {e}")))?,
        );
        tracing::info!(workers = cfg.cores.len(), interfaces = ?cfg.interfaces, "AF_XDP workers started");
        Ok(AfXdp {
            stop,
            threads,
            stats,
            xsks,
            registered,
            zero_copy,
        })
    }

    /// The workers' counters summed over cores (index: [`xsk_stat`]; below
    /// [`xsk_stat::DECAP`]: drops per `DropReason`).
    pub fn counters(&self) -> [u64; xsk_stat::COUNT as usize] {
        merged(&self.stats)
    }

    /// Waits until every session change written to the pinned maps before this call is in
    /// every worker's replica (a [`op::MARK`] through the change queue, acknowledged by each
    /// worker). `limit` bounds a hung runtime.
    pub fn settle(&self, pin_dir: &Path, limit: Duration) -> Result<(), AfXdpError> {
        static TOKEN: AtomicU32 = AtomicU32::new(1);
        let token = TOKEN.fetch_add(1, Ordering::Relaxed);
        let mut q: Queue<MapData, maps::Change> = pinned(pin_dir, name::CHANGES)?;
        let mark = maps::Change {
            key: maps::SessionKey {
                version: 0,
                pad: [0; 3],
                id: token,
            },
            op: op::MARK,
        };
        let start = Instant::now();
        while q.push(mark, 0).is_err() {
            if start.elapsed() > limit {
                return Err(AfXdpError::Config("change queue full".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        while !self
            .stats
            .iter()
            .all(|s| s.mark.load(Ordering::Acquire) == u64::from(token))
        {
            if start.elapsed() > limit {
                return Err(AfXdpError::Config(format!(
                    "workers did not settle within {limit:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Sessions in each worker's replica.
    pub fn sessions(&self) -> Vec<u64> {
        self.stats
            .iter()
            .map(|s| s.sessions.load(Ordering::Relaxed))
            .collect()
    }

    /// Frames each worker received.
    pub fn received_per_worker(&self) -> Vec<u64> {
        self.stats
            .iter()
            .map(|s| s.rx.load(Ordering::Acquire))
            .collect()
    }

    /// Frames the workers received, summed.
    pub fn received(&self) -> u64 {
        self.stats
            .iter()
            .map(|s| s.rx.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for AfXdp {
    fn drop(&mut self) {
        for idx in &self.registered {
            let _ = self.xsks.unset(*idx);
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn merged(stats: &[Arc<WorkerStats>]) -> [u64; xsk_stat::COUNT as usize] {
    let mut out = [0; xsk_stat::COUNT as usize];
    for s in stats {
        for (o, c) in out.iter_mut().zip(s.counters.iter()) {
            *o += c.load(Ordering::Acquire);
        }
    }
    out
}

/// How many sessions the pinned maps hold at most (the replicas are sized for it): the
/// overflow index has one entry per session.
fn sessions_capacity(pin_dir: &Path) -> usize {
    MapData::from_pin(pin_dir.join(name::SLOTS))
        .ok()
        .and_then(|m| m.info().ok().map(|i| i.max_entries() as usize))
        .unwrap_or(loader::DEFAULT_MAX_SESSIONS as usize)
}

/// The sync thread: pinned maps → the workers' replicas.
struct Sync {
    pin_dir: PathBuf,
    tables: SessionTables,
    seq: BpfHashMap<MapData, maps::SessionKey, maps::Seq>,
    changes: Queue<MapData, maps::Change>,
    resync: Array<MapData, u32>,
    xsk_stats: PerCpuArray<MapData, u64>,
    /// What the replicas hold (to send only differences on a rescan) and each session's
    /// shared Ns.
    mirror: HashMap<maps::SessionKey, (Session, Arc<AtomicU32>)>,
    senders: Vec<Sender<Update>>,
    stats: Vec<Arc<WorkerStats>>,
    /// Worker `i`'s core (its slot in `l2xdp_xsk_stats`).
    cores: Vec<usize>,
    /// `l2xdp_xsk_base`: the programs mark an interface [`maps::XSK_DISABLED`] when its
    /// driver cannot carry the hand-off; reported once each.
    xsk_base: BpfHashMap<MapData, u32, u32>,
    disabled: std::collections::HashSet<u32>,
}

impl Sync {
    fn open(
        pin_dir: &Path,
        senders: Vec<Sender<Update>>,
        stats: Vec<Arc<WorkerStats>>,
        cores: Vec<usize>,
    ) -> Result<Sync, AfXdpError> {
        Ok(Sync {
            pin_dir: pin_dir.into(),
            tables: SessionTables::open(pin_dir).map_err(AfXdpError::Tables)?,
            seq: pinned(pin_dir, name::SEQ)?,
            changes: pinned(pin_dir, name::CHANGES)?,
            resync: pinned(pin_dir, name::RESYNC)?,
            xsk_stats: pinned(pin_dir, name::XSK_STATS)?,
            mirror: HashMap::new(),
            senders,
            stats,
            cores,
            xsk_base: pinned(pin_dir, name::XSK_BASE)?,
            disabled: Default::default(),
        })
    }

    /// Reports interfaces whose hand-off failed (see [`maps::XSK_DISABLED`]).
    fn report_disabled(&mut self) {
        for (ifindex, base) in self.xsk_base.iter().flatten() {
            if base == maps::XSK_DISABLED && self.disabled.insert(ifindex) {
                tracing::warn!(
                    ifindex,
                    handoff = ?loader::xsk_handoff(),
                    "AF_XDP hand-off failed on this interface (driver without XDP metadata or \
                     headroom): it forwards in XDP mode; restart with --force adjust_meta=off \
                     for the in-band hand-off"
                );
            }
        }
    }

    fn send(&self, u: Update) {
        for s in &self.senders {
            // A worker that stopped does not need it.
            let _ = s.send(u.clone());
        }
    }

    fn upsert(&mut self, key: maps::SessionKey, session: Session, rx: RxSeq) {
        if let Some((old, _)) = self.mirror.get(&key) {
            if *old == session {
                return;
            }
        }
        let tx = match self.mirror.get(&key) {
            Some((_, tx)) => tx.clone(),
            None => {
                // The Ns the map holds (0 for a new session; what XDP mode reached otherwise).
                let next = self.seq.get(&key, 0).map(|s| s.tx_next).unwrap_or(0);
                Arc::new(AtomicU32::new(next))
            }
        };
        self.mirror.insert(key, (session, tx.clone()));
        self.send(Update::Upsert {
            key,
            session,
            tx,
            rx,
        });
    }

    fn remove(&mut self, key: maps::SessionKey) {
        if self.mirror.remove(&key).is_some() {
            self.send(Update::Remove(key));
        }
    }

    /// Re-reads one session: present → upsert (a new one starts synced at 0, RFC 3931
    /// App. C, as `XdpDataPlane::install` starts it), absent → remove.
    fn refresh(&mut self, key: maps::SessionKey, rx: RxSeq) {
        let read = self.tables.find(&key).ok().flatten().and_then(|f| {
            let p = self.tables.profile(f.session.profile).ok()?;
            from_map(&f.session, &p)
        });
        match read {
            Some(s) => self.upsert(key, s, rx),
            None => self.remove(key),
        }
    }

    /// Loads (or reconciles with) the whole session map. Sessions found this way had a life
    /// before: their peer's sequence is unknown here, so they learn from the next packet
    /// (RFC 4951 §3.2.3 `RxSeq::unsynced`).
    ///
    /// `at_start`: what the queue holds is older than this runtime (the map's sequence state
    /// already reflects it) and is dropped; otherwise (a rescan) installs and removals are
    /// covered by the scan, data channel resets and marks are applied after it.
    fn full_load(&mut self, at_start: bool) -> Result<(), AfXdpError> {
        let mut after = vec![];
        while let Ok(c) = self.changes.pop(0) {
            if !at_start && matches!(c.op, op::RESET_SEQ | op::MARK) {
                after.push(c);
            }
        }
        let _ = self.resync.set(0, 0, 0);
        let mut present = std::collections::HashSet::new();
        let keys: Vec<maps::SessionKey> = self
            .tables
            .all()
            .map_err(AfXdpError::Tables)?
            .iter()
            .map(|f| f.key())
            .collect();
        for k in keys {
            present.insert(k);
            self.refresh(k, RxSeq::unsynced());
        }
        let gone: Vec<maps::SessionKey> = self
            .mirror
            .keys()
            .filter(|k| !present.contains(k))
            .copied()
            .collect();
        for k in gone {
            self.remove(k);
        }
        for c in after {
            match c.op {
                op::MARK => self.send(Update::Mark(c.key.id)),
                _ => self.reset(c.key),
            }
        }
        Ok(())
    }

    /// RFC 4951 §3.2.3: our Ns restarts at 0, the receiver re-learns.
    fn reset(&mut self, key: maps::SessionKey) {
        self.refresh(key, RxSeq::unsynced());
        if let Some((_, tx)) = self.mirror.get(&key) {
            tx.store(0, Ordering::Relaxed);
            self.send(Update::ResetSequence(key));
        }
    }

    fn apply(&mut self, c: maps::Change) {
        match c.op {
            op::REMOVE => self.remove(c.key),
            op::MARK => {
                // Everything written before the mark is in the replicas first, including
                // what a resync flag set before it stands for.
                self.resync_if_flagged();
                self.send(Update::Mark(c.key.id));
            }
            op::RESET_SEQ => self.reset(c.key),
            _ => self.refresh(c.key, RxSeq::default()),
        }
    }

    /// Rescans the session map when a writer flagged a lost change (the queue was full).
    fn resync_if_flagged(&mut self) {
        if self.resync.get(&0, 0).unwrap_or(0) != 0 {
            tracing::info!(pins = %self.pin_dir.display(), "session changes lost: rescanning");
            if let Err(e) = self.full_load(false) {
                tracing::warn!(error = %e, "rescan failed");
            }
        }
    }

    /// Each worker's counters at its core's slot of `l2xdp_xsk_stats` (workers sharing a
    /// core summed).
    fn publish_stats(&mut self) {
        let ncpu = crate::xdp::possible_cpus() as usize;
        let mut per_cpu = vec![[0u64; xsk_stat::COUNT as usize]; ncpu];
        for (s, core) in self.stats.iter().zip(&self.cores) {
            if let Some(slot) = per_cpu.get_mut(*core) {
                for (o, c) in slot.iter_mut().zip(s.counters.iter()) {
                    *o += c.load(Ordering::Acquire);
                }
            }
        }
        for i in 0..xsk_stat::COUNT {
            let v: Vec<u64> = per_cpu.iter().map(|c| c[i as usize]).collect();
            if let Ok(v) = PerCpuValues::try_from(v) {
                let _ = self.xsk_stats.set(i, v, 0);
            }
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut last_stats = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut n = 0;
            while let Ok(c) = self.changes.pop(0) {
                self.apply(c);
                n += 1;
                if n % 4096 == 0 && stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            self.resync_if_flagged();
            if last_stats.elapsed() >= Duration::from_millis(100) {
                self.publish_stats();
                self.report_disabled();
                last_stats = Instant::now();
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.publish_stats();
    }
}
