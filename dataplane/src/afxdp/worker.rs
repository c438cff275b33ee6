//! One worker: a thread pinned to one core, owning one AF_XDP socket per interface (all on the
//! same queue number) and its session replica. The loop: apply a bounded slice of table
//! updates, then for each socket take up to `batch` received frames, process each into a
//! transmit frame of the egress socket's UMEM, give the receive frames back to the fill ring,
//! and kick the transmit rings that ask for it. No allocation, lock or system call per packet;
//! when nothing arrives the worker sleeps in `poll(2)` (1 ms) instead of spinning.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use l2xdp_ebpf::maps::{self, xsk_stat};
use l2xdp_wire::datapath::{
    decap, emit_inner_ethernet, encap, DecapConfig, DropReason, InnerKind, Session, TxSeq, Verdict,
};
use l2xdp_wire::net::ethernet::MacAddr;

use super::fast::{self, Decap};
use super::table::{apply, Entry, Table, Update};
use crate::probe::XskHandoff;
use crate::session_map::session_key;
use crate::xsk::{poll_rx, XskSocket};

/// Table updates a worker applies between two batches.
pub const UPDATES_PER_BATCH: usize = 512;

/// A worker's counters, indexed by [`xsk_stat`] (below [`xsk_stat::DECAP`]: drops per
/// `DropReason`). Written by the worker only (plain stores after each batch), read by anyone.
#[derive(Debug)]
pub struct WorkerStats {
    /// The counters.
    pub counters: [AtomicU64; xsk_stat::COUNT as usize],
    /// Frames received (all sockets).
    pub rx: AtomicU64,
    /// The last [`Update::Mark`] token applied.
    pub mark: AtomicU64,
    /// Sessions in the worker's replica.
    pub sessions: AtomicU64,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            rx: AtomicU64::new(0),
            mark: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
        }
    }
}

/// What a worker does with a frame.
pub enum Work {
    /// The L2TP fast path: frames handed over by the XDP programs with their
    /// [`maps::XskMeta`], decapsulated or encapsulated with `wire::datapath`.
    L2tp {
        /// The decapsulation rules' settings (as in the `l2xdp_config` map).
        cfg: DecapConfig,
        /// The replica.
        table: Table,
        /// Its updates.
        updates: Receiver<Update>,
        /// Where the programs put each frame's metadata (as loaded on this kernel).
        handoff: XskHandoff,
    },
    /// The raw forwarder (the benchmark's baseline): every frame received on socket `i` is
    /// copied to a transmit frame of socket `to[i]`, nothing else.
    Raw {
        /// Egress socket per ingress socket.
        to: Vec<usize>,
    },
}

/// A worker, ready to run.
pub struct Worker {
    /// Its sockets (one per interface).
    pub sockets: Vec<XskSocket>,
    /// Frames taken per socket and pass.
    pub batch: u32,
    /// Its counters.
    pub stats: Arc<WorkerStats>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// What it does.
    pub work: Work,
    /// The core to pin to.
    pub core: Option<usize>,
}

/// Pins the calling thread to `core` (`core_affinity`, which reports only success or not).
pub fn pin_to_core(core: usize) -> std::io::Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("cannot pin to core {core}")))
    }
}

const META_LEN: u32 = std::mem::size_of::<maps::XskMeta>() as u32;

fn read_meta(b: &[u8]) -> Option<maps::XskMeta> {
    if b.len() < META_LEN as usize {
        return None;
    }
    // SAFETY: `b` holds at least size_of::<XskMeta>() bytes and XskMeta is plain data valid
    // for every bit pattern; read_unaligned has no alignment requirement.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<maps::XskMeta>()) })
}

/// A worker loop's state between passes (see [`Worker::pass`]).
pub struct PassState {
    local: [u64; xsk_stat::COUNT as usize],
    rx_total: u64,
    egress: Vec<u32>,
}

impl Worker {
    /// The loop state for [`pass`](Self::pass).
    pub fn pass_state(&self) -> PassState {
        PassState {
            local: [0; xsk_stat::COUNT as usize],
            rx_total: 0,
            egress: self.sockets.iter().map(|s| s.ifindex).collect(),
        }
    }

    /// Runs until `stop` is set.
    pub fn run(mut self) {
        if let Some(c) = self.core {
            if let Err(e) = pin_to_core(c) {
                tracing::warn!(core = c, error = %e, "cannot pin the AF_XDP worker");
            }
        }
        let mut st = self.pass_state();
        let mut pollfds: Vec<libc::pollfd> = self
            .sockets
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut idle = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            if self.pass(&mut st) > 0 {
                idle = 0;
            } else {
                idle += 1;
                if idle > 64 {
                    for s in &self.sockets {
                        if s.rx_needs_wakeup() {
                            s.wake_rx();
                        }
                    }
                    poll_rx(&mut pollfds, 1);
                }
            }
        }
    }

    /// One pass of the loop (everything but the idle sleep): applies a bounded slice of
    /// table updates, processes up to `batch` received frames per socket, gives them back,
    /// publishes the counters, and flushes every transmit ring. The frames received.
    ///
    /// Never inlined: `l2xdp-bench cost` counts its instructions under callgrind
    /// (`--toggle-collect`) on [`XskSocket::in_memory`] sockets.
    #[inline(never)]
    pub fn pass(&mut self, st: &mut PassState) -> u32 {
        let local = &mut st.local;
        if let Work::L2tp { table, updates, .. } = &mut self.work {
            for u in updates.try_iter().take(UPDATES_PER_BATCH) {
                if let Update::Mark(t) = u {
                    self.stats.mark.store(u64::from(t), Ordering::Release);
                }
                apply(table, u);
            }
            self.stats
                .sessions
                .store(table.len() as u64, Ordering::Relaxed);
        }
        // The work and the hand-off are decided once per pass, not per frame.
        let Worker {
            sockets,
            work,
            batch,
            ..
        } = self;
        let mut got = 0u32;
        match work {
            Work::Raw { to } => {
                for i in 0..sockets.len() {
                    let n = sockets[i].rx_ready(*batch);
                    let out = to.get(i).copied().unwrap_or(i);
                    for j in 0..n {
                        let d = sockets[i].rx_desc(j);
                        // SAFETY: used before this batch's rx_release below; the socket
                        // outlives the pass.
                        let frame = unsafe { sockets[i].umem_bytes_detached(d.addr, 0, d.len) };
                        raw(sockets, out, frame, local);
                    }
                    sockets[i].rx_release(n);
                    got += n;
                }
            }
            Work::L2tp {
                cfg,
                table,
                handoff,
                ..
            } => {
                // The metadata is just before the frame (XDP metadata) or its first bytes
                // (in-band): either way the descriptor's bytes from `before` ahead of its
                // address are the metadata, then the frame.
                let before = match handoff {
                    XskHandoff::Meta => META_LEN,
                    XskHandoff::Inline => 0,
                };
                for i in 0..sockets.len() {
                    let n = sockets[i].rx_ready(*batch);
                    for j in 0..n {
                        let d = sockets[i].rx_desc(j);
                        // SAFETY: the slice is used before this batch's rx_release below,
                        // and the sockets outlive the pass.
                        let whole =
                            unsafe { sockets[i].umem_bytes_detached(d.addr, before, d.len) };
                        let split = whole.and_then(|w| {
                            let (meta, frame) = w.split_at_checked(META_LEN as usize)?;
                            Some((read_meta(meta)?, frame))
                        });
                        match split {
                            Some((m, f)) => l2tp(sockets, &st.egress, cfg, table, &m, f, local),
                            None => local[xsk_stat::OTHER as usize] += 1,
                        }
                    }
                    sockets[i].rx_release(n);
                    got += n;
                }
            }
        }
        if got > 0 {
            // Published before the frames leave: whoever sees a frame of this batch
            // arrive sees the batch counted.
            st.rx_total += u64::from(got);
            for (c, v) in self.stats.counters.iter().zip(local.iter()) {
                c.store(*v, Ordering::Release);
            }
            self.stats.rx.store(st.rx_total, Ordering::Release);
        }
        for s in sockets.iter_mut() {
            s.flush();
        }
        got
    }
}

/// The egress socket of `ifindex`.
fn socket_of(egress: &[u32], ifindex: u32) -> Option<usize> {
    egress.iter().position(|i| *i == ifindex)
}

fn raw(
    sockets: &mut [XskSocket],
    out: usize,
    frame: Option<&[u8]>,
    local: &mut [u64; xsk_stat::COUNT as usize],
) {
    let (Some(frame), Some(s)) = (frame, sockets.get_mut(out)) else {
        local[xsk_stat::OTHER as usize] += 1;
        return;
    };
    let Some((addr, buf)) = s.tx_frame() else {
        local[xsk_stat::TX_FULL as usize] += 1;
        return;
    };
    match buf.get_mut(..frame.len()) {
        Some(b) => {
            b.copy_from_slice(frame);
            s.tx_push(addr, frame.len() as u32);
            local[xsk_stat::DECAP as usize] += 1;
        }
        None => {
            s.tx_unused(addr);
            local[xsk_stat::OTHER as usize] += 1;
        }
    }
}

/// One frame of the L2TP fast path (see the module documentation of [`super`]): the
/// replica's one lookup, then [`fast`] for the common case, the reference (`wire::datapath`)
/// for the rest.
#[inline(always)]
fn l2tp(
    sockets: &mut [XskSocket],
    egress: &[u32],
    cfg: &DecapConfig,
    table: &mut Table,
    m: &maps::XskMeta,
    frame: &[u8],
    local: &mut [u64; xsk_stat::COUNT as usize],
) {
    if m.key.version != 2 && m.key.version != 3 {
        local[xsk_stat::OTHER as usize] += 1;
        return;
    }
    // The session changed between the program and here (removed): counted as the program
    // would have.
    let Some(e) = table.get_mut(&fast::key_u64(&m.key)) else {
        local[l2xdp_wire::datapath::DropReason::UnknownSession as usize] += 1;
        return;
    };
    let Some(out) = socket_of(egress, m.egress_ifindex) else {
        local[xsk_stat::NO_EGRESS as usize] += 1;
        return;
    };
    let s = &mut sockets[out];
    let Some((addr, buf)) = s.tx_frame() else {
        local[xsk_stat::TX_FULL as usize] += 1;
        return;
    };
    let written = match m.dir {
        maps::dir::DECAP => {
            let d = match &e.fast {
                Some(p) => fast::decap(frame, p, &m.key, &mut e.rx, cfg.seq_relearn_after),
                None => Decap::Fallback,
            };
            match d {
                Decap::Forward { inner, kind } => frame
                    .get(inner)
                    .and_then(|f| match kind {
                        InnerKind::Ethernet => {
                            let b = buf.get_mut(..f.len())?;
                            b.copy_from_slice(f);
                            Some(f.len())
                        }
                        _ => fast::emit_inner(f, kind, &m.dmac, &m.smac, buf),
                    })
                    .map(|n| (n, xsk_stat::DECAP as usize))
                    .ok_or(xsk_stat::OTHER as usize),
                Decap::OutOfOrder => Err(DropReason::SequenceOutOfOrder as usize),
                Decap::Fallback => decap_reference(frame, cfg, e, &m.key, m, buf),
            }
        }
        maps::dir::ENCAP => {
            let start = usize::from(m.inner_off);
            let inner = frame.get(start..start + usize::from(m.inner_len));
            let ns = if e.session.sequencing {
                e.tx.fetch_add(1, Ordering::Relaxed)
            } else {
                0
            };
            inner
                .and_then(|inner| match &e.fast {
                    Some(p) => fast::encap(p, ns, inner, &m.dmac, &m.smac, buf)
                        .or_else(|| encap_reference(&e.session, ns, inner, m, buf)),
                    None => encap_reference(&e.session, ns, inner, m, buf),
                })
                .map(|n| (n, xsk_stat::ENCAP as usize))
                .ok_or(xsk_stat::OTHER as usize)
        }
        _ => Err(xsk_stat::OTHER as usize),
    };
    match written {
        Ok((n, counter)) => {
            s.tx_push(addr, n as u32);
            local[counter] += 1;
        }
        Err(counter) => {
            s.tx_unused(addr);
            local[counter] += 1;
        }
    }
}

/// The reference decapsulation of a frame outside the common case: the program checked
/// everything but the sequence number against the same maps; the reference runs again here,
/// with this worker's Nr. The source binding was checked by the program (l2xdp_sub4/sub6 →
/// this key).
#[cold]
#[inline(never)]
fn decap_reference(
    frame: &[u8],
    cfg: &DecapConfig,
    e: &mut Entry,
    key: &maps::SessionKey,
    m: &maps::XskMeta,
    buf: &mut [u8],
) -> Result<(usize, usize), usize> {
    let Some(key) = session_key(key) else {
        return Err(xsk_stat::OTHER as usize);
    };
    let session = &e.session;
    let rx = &mut e.rx;
    match decap(
        frame,
        cfg,
        |k| (*k == key).then_some(session),
        |k| (*k == key).then_some(rx),
        |_| Some(key),
    ) {
        Verdict::Forward { inner, kind, .. } => match kind {
            InnerKind::Ethernet => frame.get(inner).and_then(|f| {
                let b = buf.get_mut(..f.len())?;
                b.copy_from_slice(f);
                Some(f.len())
            }),
            InnerKind::Ipv4 | InnerKind::Ipv6 => frame
                .get(inner)
                .and_then(|f| emit_inner_ethernet(f, MacAddr(m.dmac), MacAddr(m.smac), buf).ok()),
        }
        .ok_or(xsk_stat::OTHER as usize)
        .map(|n| (n, xsk_stat::DECAP as usize)),
        Verdict::Drop(r) => Err(r as usize),
        Verdict::ToControlPlane(_) | Verdict::Pass => Err(xsk_stat::OTHER as usize),
    }
}

/// The reference encapsulation (a session or inner packet outside the common case).
#[cold]
#[inline(never)]
fn encap_reference(
    session: &Session,
    ns: u32,
    inner: &[u8],
    m: &maps::XskMeta,
    buf: &mut [u8],
) -> Option<usize> {
    let mut tx = TxSeq { next_ns: ns };
    let n = encap(session, &mut tx, inner, usize::MAX, buf).ok()?;
    // The next hop the program's bpf_fib_lookup found, as the XDP mode writes.
    buf[..6].copy_from_slice(&m.dmac);
    buf[6..12].copy_from_slice(&m.smac);
    Some(n)
}
