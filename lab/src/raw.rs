//! The raw AF_XDP forwarder: the same [`Worker`] loop and sockets as the fast path, with no
//! L2TP work — every frame received on one interface is copied to a transmit frame of the
//! other and sent. The baseline of `l2xdp-bench afxdp` (and usable by tests): what AF_XDP
//! costs by itself on the same interfaces, in the same run.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use aya::maps::{MapData, XskMap};

use l2xdp_dataplane::afxdp::{AfXdpError, Work, Worker, WorkerStats};
use l2xdp_dataplane::loader;
use l2xdp_dataplane::xsk::{XskConfig, XskSocket};

/// A running raw forwarder (one worker thread, queue 0 of both interfaces).
pub struct RawForwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WorkerStats>,
    /// The XSKMAPs its sockets are in (index 0 of each).
    xsks: Vec<XskMap<MapData>>,
}

impl RawForwarder {
    /// Starts forwarding what arrives on queue 0 of `from` to `to`, on `core`. The socket on
    /// `from` is put at index 0 of `xsks`: the XSKMAP of the program on `from` that redirects
    /// every frame to the socket of its queue. Call it in the interfaces' namespace.
    pub fn start(
        from: &str,
        to: &str,
        xsks: XskMap<MapData>,
        core: Option<usize>,
        batch: u32,
        xsk: &XskConfig,
    ) -> Result<RawForwarder, AfXdpError> {
        Self::start_with(from, to, xsks, None, core, batch, xsk)
    }

    /// As [`start`](Self::start), forwarding both ways: `a` → `b` and `b` → `a` by one worker.
    /// The socket on `a` is put at index 0 of `xsks_a`, the one on `b` at index 0 of `xsks_b`:
    /// the XSKMAPs of the (separately loaded) programs on `a` and on `b`, which key by queue.
    pub fn start_both(
        a: &str,
        b: &str,
        xsks_a: XskMap<MapData>,
        xsks_b: XskMap<MapData>,
        core: Option<usize>,
        batch: u32,
        xsk: &XskConfig,
    ) -> Result<RawForwarder, AfXdpError> {
        Self::start_with(a, b, xsks_a, Some(xsks_b), core, batch, xsk)
    }

    fn start_with(
        from: &str,
        to: &str,
        mut xsks: XskMap<MapData>,
        to_xsks: Option<XskMap<MapData>>,
        core: Option<usize>,
        batch: u32,
        xsk: &XskConfig,
    ) -> Result<RawForwarder, AfXdpError> {
        let mut sockets = vec![];
        for iface in [from, to] {
            let s = XskSocket::open(loader::ifindex(iface)?, 0, xsk).map_err(|why| {
                AfXdpError::Socket {
                    iface: iface.into(),
                    queue: 0,
                    why,
                }
            })?;
            sockets.push(s);
        }
        xsks.set(0, sockets[0].fd(), 0)
            .map_err(|e| AfXdpError::Config(format!("XSKMAP: {e}")))?;
        let mut maps = vec![xsks];
        if let Some(mut m) = to_xsks {
            if let Err(e) = m.set(0, sockets[1].fd(), 0) {
                let _ = maps[0].unset(0);
                return Err(AfXdpError::Config(format!("XSKMAP of {to}: {e}")));
            }
            maps.push(m);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WorkerStats::default());
        let w = Worker {
            sockets,
            batch: batch.max(1),
            stats: stats.clone(),
            stop: stop.clone(),
            work: Work::Raw { to: vec![1, 0] },
            core,
        };
        let thread = std::thread::Builder::new()
            .name("l2xdp-raw-xsk".into())
            .spawn(move || w.run())
            .map_err(|e| AfXdpError::Config(format!("spawn: {e}")))?;
        Ok(RawForwarder {
            stop,
            thread: Some(thread),
            stats,
            xsks: maps,
        })
    }

    /// Its counters (forwarded frames are counted as `xsk_stat::DECAP`).
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Stops it and gives the XSKMAP back (its entry removed).
    pub fn stop(self) -> Option<XskMap<MapData>> {
        self.stop_all().into_iter().next()
    }

    /// Stops it and gives every XSKMAP back (their entries removed), in the order given.
    pub fn stop_all(mut self) -> Vec<XskMap<MapData>> {
        self.halt();
        std::mem::take(&mut self.xsks)
    }

    fn halt(&mut self) {
        for x in &mut self.xsks {
            let _ = x.unset(0);
        }
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RawForwarder {
    fn drop(&mut self) {
        self.halt();
    }
}
