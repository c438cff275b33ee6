//! The raw AF_XDP forwarder again, on **xsk-rs** (libxdp's `xsk.c` through `libxdp-sys`)
//! instead of the hand-written rings of `l2xdp_dataplane::xsk`: the `raw-xskrs-up` and
//! `raw-xskrs-down` cases of `l2xdp-bench afxdp`, measured in the same run as the hand-written
//! [`RawForwarder`](l2xdp_dataplane::afxdp::RawForwarder) (`raw-up`, `raw-down`) to decide
//! whether the product's sockets should move to xsk-rs (issue 13, item 4; the numbers and the
//! decision are in `bench/README.md`).
//!
//! Same behaviour as the hand-written one ([`Work::Raw`](l2xdp_dataplane::afxdp::Work)): one
//! worker thread on one core, a socket on queue 0 of each interface with its own UMEM
//! ([`FRAMES`] frames of [`FRAME_SIZE`] bytes, half receive — always on loan through the fill
//! ring — half transmit, rings of half that), need_wakeup, zero-copy when the driver allows
//! (veth: copy); every frame received on socket `i` is copied to a transmit frame of the
//! other socket, up to `batch` per socket and pass; receive frames go back to the fill ring at
//! once; transmit is kicked (`sendto`) while the ring asks for it and is not drained, at most
//! 256 times a pass; completed frames are reclaimed every pass; after 64 empty passes the
//! worker sleeps in `poll(2)` (1 ms). Counters as the hand-written worker's
//! ([`WorkerStats`], forwarded frames under `xsk_stat::DECAP`).
//!
//! What differs is only the API's shape: xsk-rs copies each ring entry into a [`FrameDesc`]
//! (receive: `consume` releases the ring entries at once; transmit: `produce` takes a slice),
//! so the transmit descriptors of a pass are gathered per socket and produced once per pass
//! instead of one ring write per frame; the ring accessors are libxdp's C functions.
//!
//! libxdp loads no program: every socket is made with `XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD`,
//! and its fd is put in the XSKMAP of the bench's `xdp_to_xsk` (aya's), exactly as the
//! hand-written forwarder's.

use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aya::maps::{MapData, XskMap};
use l2xdp_dataplane::afxdp::worker::pin_to_core;
use l2xdp_dataplane::afxdp::WorkerStats;
use l2xdp_dataplane::xsk::poll_rx;
use l2xdp_ebpf::maps::xsk_stat;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Frames in a socket's UMEM (as `XskConfig::default()`: half receive, half transmit).
pub const FRAMES: u32 = 2048;
/// Bytes of one UMEM frame (as `l2xdp_dataplane::xsk::FRAME_SIZE`).
pub const FRAME_SIZE: u32 = 2048;
/// How long a busy queue is retried (as `l2xdp_dataplane::xsk::BUSY_RETRY`).
const BUSY_RETRY: Duration = Duration::from_secs(2);
/// Kicks per flush at most (as the hand-written `XskSocket::flush`).
const KICKS: u32 = 256;

/// The function callgrind counts for this forwarder (a pattern on its demangled name).
pub const TOGGLE: &str = "*xskrs::XskrsWorker::pass";

/// One AF_XDP socket on xsk-rs, with its UMEM and four rings.
struct Xsk {
    umem: Umem,
    fill: FillQueue,
    comp: CompQueue,
    rx: RxQueue,
    tx: TxQueue,
    /// Free transmit frames.
    free_tx: Vec<FrameDesc>,
    /// Transmit frames written this pass, produced by [`flush`](Self::flush).
    pending: Vec<FrameDesc>,
    /// Completion scratch.
    done: Vec<FrameDesc>,
    /// Transmit ring entries.
    tx_size: u32,
}

impl Xsk {
    /// A socket on queue 0 of `iface` (in the calling thread's namespace), libxdp's program
    /// load inhibited; `EBUSY` retried for [`BUSY_RETRY`] (a queue whose previous socket just
    /// closed stays busy until the kernel's deferred release ran).
    fn open(iface: &str) -> Result<Xsk, String> {
        let start = Instant::now();
        loop {
            match Self::try_open(iface) {
                Err((_, true)) if start.elapsed() < BUSY_RETRY => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => return r.map_err(|(e, _)| e),
            }
        }
    }

    /// The socket, or the error and whether it was `EBUSY`.
    fn try_open(iface: &str) -> Result<Xsk, (String, bool)> {
        let half = FRAMES / 2;
        let q = QueueSize::new(half).map_err(|e| (format!("queue size: {e}"), false))?;
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE).map_err(|e| (format!("{e}"), false))?)
            .frame_headroom(0)
            .fill_queue_size(q)
            .comp_queue_size(q)
            .build()
            .map_err(|e| (format!("UMEM config: {e}"), false))?;
        let frames = NonZeroU32::new(FRAMES).ok_or(("no frames".to_string(), false))?;
        let (umem, mut descs) =
            Umem::new(umem_cfg, frames, false).map_err(|e| (format!("UMEM: {e:?}"), false))?;
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(q)
            .tx_queue_size(q)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            // No mode flag: zero-copy where the driver allows, copy otherwise.
            .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP)
            .build();
        let name: Interface = iface
            .parse()
            .map_err(|e| (format!("interface name: {e}"), false))?;
        // SAFETY: no other socket of this process is bound to (iface, 0): the bench runs one
        // forwarder at a time and the kernel refuses a second bind (EBUSY) anyway.
        let (tx, rx, fq_cq) = unsafe { Socket::new(sock_cfg, &umem, &name, 0) }.map_err(|e| {
            let busy = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error)
                == Some(libc::EBUSY);
            let why = std::error::Error::source(&e).map_or(String::new(), |s| format!(": {s}"));
            (format!("AF_XDP socket on {iface}: {e}{why}"), busy)
        })?;
        let (mut fill, comp) = fq_cq.ok_or(("no fill/completion ring".to_string(), false))?;
        let free_tx = descs.split_off(half as usize);
        // SAFETY: the receive frames are fresh descriptors of this UMEM, in no ring yet.
        let n = unsafe { fill.produce(&descs) };
        if n != descs.len() {
            return Err((
                format!("fill ring took {n} of {} frames", descs.len()),
                false,
            ));
        }
        Ok(Xsk {
            umem,
            fill,
            comp,
            rx,
            tx,
            pending: Vec::with_capacity(half as usize),
            done: free_tx.clone(),
            free_tx,
            tx_size: half,
        })
    }

    fn fd(&self) -> i32 {
        self.rx.fd().as_raw_fd()
    }

    /// Moves completed transmit frames back to the free list.
    fn reclaim(&mut self) {
        // SAFETY: the completion ring gives back frames of this UMEM that we produced.
        let n = unsafe { self.comp.consume(&mut self.done) };
        self.free_tx.extend_from_slice(&self.done[..n]);
    }

    /// Produces this pass's transmit frames, kicks while the ring asks for it and is not
    /// drained (copy mode sends a bounded batch per kick), and reclaims.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            // SAFETY: frames of this UMEM, written by us and in no ring; the ring has room
            // for every transmit frame.
            let n = unsafe { self.tx.produce(&self.pending) };
            // Cannot fall short (room for every transmit frame); if it did, keep the rest.
            self.pending.drain(..n);
            for _ in 0..KICKS {
                if !self.tx.needs_wakeup() || self.tx.nb_free_exact() >= self.tx_size {
                    break;
                }
                if self.tx.wakeup().is_err() {
                    break;
                }
            }
        }
        self.reclaim();
    }
}

/// The worker: two sockets, frames of socket `i` to socket `1 - i`.
struct XskrsWorker {
    socks: Vec<Xsk>,
    batch: usize,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    core: Option<usize>,
    rx_descs: Vec<FrameDesc>,
    local: [u64; xsk_stat::COUNT as usize],
    rx_total: u64,
}

impl XskrsWorker {
    fn run(mut self) {
        if let Some(c) = self.core {
            if let Err(e) = pin_to_core(c) {
                eprintln!("l2xdp-bench: cannot pin the xsk-rs worker: {e}");
            }
        }
        let mut pollfds: Vec<libc::pollfd> = self
            .socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut idle = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            if self.pass() > 0 {
                idle = 0;
            } else {
                idle += 1;
                if idle > 64 {
                    for s in &self.socks {
                        if s.fill.needs_wakeup() {
                            // The receive wakeup, as the hand-written `wake_rx`.
                            // SAFETY: recvfrom with no buffer on our socket.
                            unsafe {
                                libc::recvfrom(
                                    s.fd(),
                                    std::ptr::null_mut(),
                                    0,
                                    libc::MSG_DONTWAIT,
                                    std::ptr::null_mut(),
                                    std::ptr::null_mut(),
                                )
                            };
                        }
                    }
                    poll_rx(&mut pollfds, 1);
                }
            }
        }
    }

    /// One pass (as the hand-written `Worker::pass` with `Work::Raw`): up to `batch` frames
    /// per socket copied to the other socket, receive frames back to the fill ring, counters
    /// published, every transmit ring flushed. Never inlined: callgrind counts it
    /// ([`TOGGLE`]).
    #[inline(never)]
    fn pass(&mut self) -> u32 {
        let mut got = 0u32;
        for i in 0..self.socks.len() {
            let out = (i + 1) % self.socks.len();
            let (a, b) = self.socks.split_at_mut(i.max(out));
            let (src, dst) = if i < out {
                (&mut a[i], &mut b[0])
            } else {
                (&mut b[0], &mut a[out])
            };
            // SAFETY: `rx_descs` takes descriptors of `src`'s UMEM only.
            let n = unsafe { src.rx.consume(&mut self.rx_descs[..self.batch]) };
            for d in &self.rx_descs[..n] {
                // SAFETY: a received frame of `src`'s UMEM, ours until it goes back to the
                // fill ring below.
                let frame = unsafe { src.umem.data(d) }.contents();
                raw(dst, frame, &mut self.local);
            }
            if n > 0 {
                // SAFETY: the frames just received (copied out above) go back to the kernel.
                let back = unsafe { src.fill.produce(&self.rx_descs[..n]) };
                debug_assert_eq!(back, n, "the fill ring has room for every receive frame");
            }
            got += n as u32;
        }
        if got > 0 {
            self.rx_total += u64::from(got);
            for (c, v) in self.stats.counters.iter().zip(self.local.iter()) {
                c.store(*v, Ordering::Release);
            }
            self.stats.rx.store(self.rx_total, Ordering::Release);
        }
        for s in &mut self.socks {
            s.flush();
        }
        got
    }
}

/// One frame: copied into a free transmit frame of `dst`, queued for this pass's flush.
fn raw(dst: &mut Xsk, frame: &[u8], local: &mut [u64; xsk_stat::COUNT as usize]) {
    let mut t = match dst.free_tx.pop() {
        Some(t) => t,
        None => {
            dst.reclaim();
            match dst.free_tx.pop() {
                Some(t) => t,
                None => {
                    local[xsk_stat::TX_FULL as usize] += 1;
                    return;
                }
            }
        }
    };
    // SAFETY: a transmit frame of `dst`'s UMEM, in no ring now.
    let mut data = unsafe { dst.umem.data_mut(&mut t) };
    // The frame's length through the cursor, then one copy (`io::Write` on the cursor costs
    // ~20 instructions more per frame under callgrind).
    let fits = {
        let mut c = data.cursor();
        let fits = frame.len() <= c.buf_len();
        c.set_pos(if fits { frame.len() } else { 0 });
        fits
    };
    if fits {
        data.contents_mut().copy_from_slice(frame);
        dst.pending.push(t);
        local[xsk_stat::DECAP as usize] += 1;
    } else {
        dst.free_tx.push(t);
        local[xsk_stat::OTHER as usize] += 1;
    }
}

/// A running xsk-rs raw forwarder (one worker thread, queue 0 of both interfaces), the
/// counterpart of [`RawForwarder`](l2xdp_dataplane::afxdp::RawForwarder).
pub struct XskrsForwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WorkerStats>,
    xsks: Option<XskMap<MapData>>,
}

impl XskrsForwarder {
    /// Starts forwarding what arrives on queue 0 of `from` to `to` (and back), on `core`.
    /// The socket on `from` is put at index 0 of `xsks` (the XSKMAP of `xdp_to_xsk` on
    /// `from`). Call it in the interfaces' namespace. On error the map is given back.
    pub fn start(
        from: &str,
        to: &str,
        mut xsks: XskMap<MapData>,
        core: Option<usize>,
        batch: u32,
    ) -> Result<XskrsForwarder, Box<(String, XskMap<MapData>)>> {
        let mut socks = vec![];
        for iface in [from, to] {
            match Xsk::open(iface) {
                Ok(s) => socks.push(s),
                Err(e) => return Err(Box::new((e, xsks))),
            }
        }
        if let Err(e) = xsks.set(0, socks[0].fd(), 0) {
            return Err(Box::new((format!("XSKMAP: {e}"), xsks)));
        }
        let batch = batch.clamp(1, FRAMES / 2) as usize;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WorkerStats::default());
        let w = XskrsWorker {
            socks,
            batch,
            stats: stats.clone(),
            stop: stop.clone(),
            core,
            rx_descs: vec![FrameDesc::default(); batch],
            local: [0; xsk_stat::COUNT as usize],
            rx_total: 0,
        };
        let thread = match std::thread::Builder::new()
            .name("l2xdp-xskrs".into())
            .spawn(move || w.run())
        {
            Ok(t) => t,
            Err(e) => {
                let _ = xsks.unset(0);
                return Err(Box::new((format!("spawn: {e}"), xsks)));
            }
        };
        Ok(XskrsForwarder {
            stop,
            thread: Some(thread),
            stats,
            xsks: Some(xsks),
        })
    }

    /// Its counters (forwarded frames are counted as `xsk_stat::DECAP`).
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Stops it and gives the XSKMAP back (its entry removed).
    pub fn stop(mut self) -> Option<XskMap<MapData>> {
        self.halt();
        self.xsks.take()
    }

    fn halt(&mut self) {
        if let Some(x) = &mut self.xsks {
            let _ = x.unset(0);
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for XskrsForwarder {
    fn drop(&mut self) {
        self.halt();
    }
}
