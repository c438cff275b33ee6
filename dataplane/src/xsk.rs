//! AF_XDP sockets (`Documentation/networking/af_xdp.rst`) on the raw `libc` interface: one
//! UMEM per socket, split in receive frames (always on loan to the kernel through the fill
//! ring) and transmit frames (a free list refilled from the completion ring); the four rings
//! mapped; bound to one queue of one interface in zero-copy mode when the driver allows it,
//! copy mode otherwise (veth), with `XDP_USE_NEED_WAKEUP` so that the only system calls on the
//! hot path are the kicks the rings ask for.
//!
//! The ring protocol: each ring has a producer and a consumer index (free-running u32) in
//! shared memory; the producer writes entries, then publishes its index with release order;
//! the consumer reads the producer index with acquire order, reads entries, then publishes its
//! index.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes of one UMEM frame.
pub const FRAME_SIZE: u32 = 2048;
/// The kernel's headroom before received data in a frame (`XDP_PACKET_HEADROOM`).
pub const RX_HEADROOM: u32 = 256;

/// How long [`XskSocket::open`] retries a busy queue.
pub const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// How to build a socket.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    /// Frames in the UMEM (a power of two; half receive, half transmit).
    pub frames: u32,
    /// Try zero-copy first (falls back to copy mode when the driver refuses).
    pub zero_copy: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames: 2048,
            zero_copy: true,
        }
    }
}

/// One mapped ring.
struct Ring<T> {
    map: *mut libc::c_void,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut T,
    mask: u32,
    /// Our side's index: the producer's for fill/tx, the consumer's for rx/completion.
    local: u32,
}

impl<T: Copy> Ring<T> {
    /// Maps the ring of `size` entries at page offset `pgoff`.
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64) -> io::Result<Self> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: mapping a ring the kernel created for this socket; checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS and lie inside the mapping.
        unsafe {
            Ok(Ring {
                map,
                map_len,
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                flags: base.add(off.flags as usize).cast(),
                desc: base.add(off.desc as usize).cast(),
                mask: size - 1,
                local: 0,
            })
        }
    }

    /// A ring in anonymous memory with the kernel's layout (producer, consumer, flags, then the
    /// entries), for an in-memory socket: flags stay 0 (no wakeup is ever asked for).
    #[cfg(any(test, feature = "test-peer"))]
    fn anon(size: u32) -> io::Result<Self> {
        const DESC: usize = 192;
        let off = libc::xdp_ring_offset {
            producer: 0,
            consumer: 64,
            desc: DESC as u64,
            flags: 128,
        };
        let map_len = DESC + size as usize * std::mem::size_of::<T>();
        // SAFETY: anonymous mapping, checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        // SAFETY: the offsets lie inside the (zeroed) mapping and are aligned for their types.
        unsafe {
            Ok(Ring {
                map,
                map_len,
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                flags: base.add(off.flags as usize).cast(),
                desc: base.add(off.desc as usize).cast(),
                mask: size - 1,
                local: 0,
            })
        }
    }

    /// Entry slot `idx` (free-running index) of the ring (the in-memory peer's access).
    #[cfg(any(test, feature = "test-peer"))]
    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: masked into the ring's `mask + 1` entries.
        unsafe { self.desc.add((idx & self.mask) as usize) }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, aligned by the kernel.
        unsafe { &*self.producer }
    }
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as above.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: writes entry number `local + i` (not yet published).
    fn write(&mut self, i: u32, v: T) {
        let at = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `at` is within the ring's `mask + 1` entries.
        unsafe { self.desc.add(at).write(v) }
    }
    /// Producer side: publishes `n` written entries.
    fn submit(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.producer().store(self.local, Ordering::Release);
    }
    /// Consumer side: entries ready.
    fn ready(&self) -> u32 {
        self.producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.local)
    }
    /// Consumer side: entry number `local + i`.
    fn read(&self, i: u32) -> T {
        let at = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `at` is within the ring.
        unsafe { self.desc.add(at).read() }
    }
    /// Consumer side: gives `n` entries back.
    fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.consumer().store(self.local, Ordering::Release);
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// An AF_XDP socket bound to one queue of one interface, with its own UMEM.
pub struct XskSocket {
    /// None: an in-memory socket (`XskSocket::in_memory`, feature `test-peer`).
    fd: Option<OwnedFd>,
    area: *mut u8,
    area_len: usize,
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    free_tx: Vec<u64>,
    tx_unkicked: bool,
    /// Whether the driver runs it in zero-copy mode.
    pub zero_copy: bool,
    /// The interface.
    pub ifindex: u32,
    /// The queue.
    pub queue: u32,
}

// SAFETY: the raw pointers are into mappings owned by the socket; it is used by one thread at
// a time (moved into its worker).
unsafe impl Send for XskSocket {}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size given.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// One received frame: where it is in the UMEM.
#[derive(Debug, Clone, Copy)]
pub struct RxDesc {
    /// UMEM address of the data.
    pub addr: u64,
    /// Frame length.
    pub len: u32,
}

impl XskSocket {
    /// Creates a socket on `queue` of `ifindex` (in the calling thread's namespace).
    ///
    /// A queue whose previous socket was just closed stays busy until the kernel's deferred
    /// release ran: `EBUSY` is retried for up to [`BUSY_RETRY`].
    pub fn open(ifindex: u32, queue: u32, cfg: &XskConfig) -> io::Result<XskSocket> {
        let start = std::time::Instant::now();
        loop {
            let r = if cfg.zero_copy {
                Self::open_mode(ifindex, queue, cfg.frames, true)
                    .or_else(|_| Self::open_mode(ifindex, queue, cfg.frames, false))
            } else {
                Self::open_mode(ifindex, queue, cfg.frames, false)
            };
            match r {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < BUSY_RETRY => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                r => return r,
            }
        }
    }

    fn open_mode(ifindex: u32, queue: u32, frames: u32, zc: bool) -> io::Result<XskSocket> {
        let frames = frames.max(64).next_power_of_two();
        let half = frames / 2;
        // SAFETY: plain socket(2).
        let raw =
            cvt(unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let area_len = frames as usize * FRAME_SIZE as usize;
        let area = anon_area(area_len)?;
        let unmap = |e: io::Error| {
            // SAFETY: our mapping.
            unsafe { libc::munmap(area.cast(), area_len) };
            e
        };
        let reg = libc::xdp_umem_reg {
            addr: area as u64,
            len: area_len as u64,
            chunk_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        let r = (|| {
            setsockopt(fd.as_raw_fd(), libc::XDP_UMEM_REG, &reg)?;
            setsockopt(fd.as_raw_fd(), libc::XDP_UMEM_FILL_RING, &half)?;
            setsockopt(fd.as_raw_fd(), libc::XDP_UMEM_COMPLETION_RING, &half)?;
            setsockopt(fd.as_raw_fd(), libc::XDP_RX_RING, &half)?;
            setsockopt(fd.as_raw_fd(), libc::XDP_TX_RING, &half)?;
            // SAFETY: zeroed plain-data struct filled by the kernel.
            let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
            // SAFETY: `off` is writable for `len` bytes.
            cvt(unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_XDP,
                    libc::XDP_MMAP_OFFSETS,
                    (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                    &mut len,
                )
            })?;
            let raw = fd.as_raw_fd();
            let rx = Ring::map(raw, &off.rx, half, libc::XDP_PGOFF_RX_RING as u64)?;
            let tx = Ring::map(raw, &off.tx, half, libc::XDP_PGOFF_TX_RING as u64)?;
            let fill = Ring::map(raw, &off.fr, half, libc::XDP_UMEM_PGOFF_FILL_RING)?;
            let comp = Ring::map(raw, &off.cr, half, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
            Ok::<_, io::Error>((rx, tx, fill, comp))
        })();
        let rings = r.map_err(unmap)?;
        let mut sock = Self::assemble(Some(fd), area, area_len, rings, frames, ifindex, queue);
        sock.zero_copy = zc;
        let mode = if zc {
            libc::XDP_ZEROCOPY
        } else {
            libc::XDP_COPY
        };
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: mode | libc::XDP_USE_NEED_WAKEUP,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the size given.
        cvt(unsafe {
            libc::bind(
                sock.fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        })?;
        sock.tx_unkicked = false;
        Ok(sock)
    }

    /// A socket without a kernel (feature `test-peer`, off in the product): the same UMEM,
    /// rings and methods in anonymous memory, for measuring the worker loop with no NIC and no
    /// system call (`l2xdp-bench cost` runs it under callgrind). The kernel's part is played by
    /// [`peer_receive`](Self::peer_receive) and [`peer_transmit`](Self::peer_transmit); its fd
    /// is -1; no ring ever asks for a wakeup, so [`flush`](Self::flush) makes no system call.
    #[cfg(any(test, feature = "test-peer"))]
    pub fn in_memory(ifindex: u32, queue: u32, frames: u32) -> io::Result<XskSocket> {
        let frames = frames.max(64).next_power_of_two();
        let half = frames / 2;
        let area_len = frames as usize * FRAME_SIZE as usize;
        let area = anon_area(area_len)?;
        let rings = (|| {
            Ok::<_, io::Error>((
                Ring::anon(half)?,
                Ring::anon(half)?,
                Ring::anon(half)?,
                Ring::anon(half)?,
            ))
        })()
        .inspect_err(|_| {
            // SAFETY: our mapping.
            unsafe { libc::munmap(area.cast(), area_len) };
        })?;
        Ok(Self::assemble(
            None, area, area_len, rings, frames, ifindex, queue,
        ))
    }

    /// The socket around its UMEM and rings (rx, tx, fill, completion): the receive frames
    /// (the first half) go on the fill ring, the rest on the free transmit list.
    fn assemble(
        fd: Option<OwnedFd>,
        area: *mut u8,
        area_len: usize,
        (rx, tx, mut fill, comp): (
            Ring<libc::xdp_desc>,
            Ring<libc::xdp_desc>,
            Ring<u64>,
            Ring<u64>,
        ),
        frames: u32,
        ifindex: u32,
        queue: u32,
    ) -> XskSocket {
        let half = frames / 2;
        // Receive frames 0..half are on loan to the kernel from the start.
        for i in 0..half {
            fill.write(i, u64::from(i) * u64::from(FRAME_SIZE));
        }
        fill.submit(half);
        let free_tx = (half..frames)
            .map(|i| u64::from(i) * u64::from(FRAME_SIZE))
            .collect();
        XskSocket {
            fd,
            area,
            area_len,
            fill,
            comp,
            rx,
            tx,
            free_tx,
            tx_unkicked: false,
            zero_copy: false,
            ifindex,
            queue,
        }
    }

    /// The kernel's side of an in-memory socket, receiving: takes a frame from the fill ring,
    /// writes `meta` just before [`RX_HEADROOM`] (where `bpf_xdp_adjust_meta` puts it) and
    /// `frame` at it, and posts the frame on the receive ring. False when the fill ring is
    /// empty, the receive ring full, the data too long, or the socket is a real one.
    #[cfg(any(test, feature = "test-peer"))]
    pub fn peer_receive(&mut self, meta: &[u8], frame: &[u8]) -> bool {
        if self.fd.is_some()
            || meta.len() > RX_HEADROOM as usize
            || frame.len() > (FRAME_SIZE - RX_HEADROOM) as usize
        {
            return false;
        }
        let fill_cons = self.fill.consumer().load(Ordering::Relaxed);
        let rx_prod = self.rx.producer().load(Ordering::Relaxed);
        if self.fill.producer().load(Ordering::Acquire) == fill_cons
            || rx_prod.wrapping_sub(self.rx.consumer().load(Ordering::Acquire)) > self.rx.mask
        {
            return false;
        }
        // SAFETY: the slot holds a published fill entry.
        let chunk = unsafe { self.fill.slot(fill_cons).read() };
        self.fill
            .consumer()
            .store(fill_cons.wrapping_add(1), Ordering::Release);
        let addr = chunk + u64::from(RX_HEADROOM);
        let start = addr as usize - meta.len();
        if addr as usize + frame.len() > self.area_len {
            return false;
        }
        // SAFETY: inside the UMEM (checked above); the frame is the kernel's until posted.
        unsafe {
            std::ptr::copy_nonoverlapping(meta.as_ptr(), self.area.add(start), meta.len());
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.area.add(addr as usize),
                frame.len(),
            );
            self.rx.slot(rx_prod).write(libc::xdp_desc {
                addr,
                len: frame.len() as u32,
                options: 0,
            });
        }
        self.rx
            .producer()
            .store(rx_prod.wrapping_add(1), Ordering::Release);
        true
    }

    /// The kernel's side of an in-memory socket, transmitting: takes every queued transmit
    /// descriptor, hands its bytes to `sent`, and completes it. The number of frames (0 for a
    /// real socket).
    #[cfg(any(test, feature = "test-peer"))]
    pub fn peer_transmit(&mut self, mut sent: impl FnMut(&[u8])) -> u32 {
        if self.fd.is_some() {
            return 0;
        }
        let mut cons = self.tx.consumer().load(Ordering::Relaxed);
        let prod = self.tx.producer().load(Ordering::Acquire);
        let mut comp = self.comp.producer().load(Ordering::Relaxed);
        let mut n = 0;
        while cons != prod {
            // SAFETY: a published transmit entry.
            let d = unsafe { self.tx.slot(cons).read() };
            if let Some(b) = self.umem_bytes(d.addr, 0, d.len) {
                sent(b);
            }
            // SAFETY: the completion ring has room for every transmit frame.
            unsafe { self.comp.slot(comp).write(d.addr) };
            comp = comp.wrapping_add(1);
            cons = cons.wrapping_add(1);
            n += 1;
        }
        self.tx.consumer().store(cons, Ordering::Release);
        self.comp.producer().store(comp, Ordering::Release);
        n
    }

    /// The socket's fd (for the XSKMAP); -1 for an in-memory socket.
    pub fn fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Received frames waiting, at most `max`.
    pub fn rx_ready(&self, max: u32) -> u32 {
        self.rx.ready().min(max)
    }

    /// The `i`-th waiting received frame (`i` < [`rx_ready`](Self::rx_ready)).
    pub fn rx_desc(&self, i: u32) -> RxDesc {
        let d = self.rx.read(i);
        RxDesc {
            addr: d.addr,
            len: d.len,
        }
    }

    /// The bytes at `addr - before .. addr + len` of the UMEM, if inside it, borrowed from
    /// the socket.
    pub fn umem_bytes(&self, addr: u64, before: u32, len: u32) -> Option<&[u8]> {
        // SAFETY: the slice borrows `self`, so the mapping outlives it; a frame the kernel
        // may write (fill ring) is not one a caller holds a descriptor of.
        unsafe { self.umem_bytes_detached(addr, before, len) }
    }

    /// [`umem_bytes`](Self::umem_bytes) not tied to a borrow of the socket, so a received
    /// frame can be read while frames of the same or another socket are written (the
    /// workers' loop).
    ///
    /// # Safety
    /// The caller must not use the slice after the frame went back to the kernel
    /// ([`rx_release`](Self::rx_release)) or after the socket was dropped (the mapping goes
    /// with it). Receive and transmit frames never overlap, so writing transmit frames while
    /// holding it is sound.
    pub unsafe fn umem_bytes_detached<'x>(
        &self,
        addr: u64,
        before: u32,
        len: u32,
    ) -> Option<&'x [u8]> {
        let start = addr.checked_sub(u64::from(before))? as usize;
        let end = (addr as usize).checked_add(len as usize)?;
        if end > self.area_len {
            return None;
        }
        // SAFETY: inside the UMEM mapping, which lives as long as the socket; see above for
        // the lifetime contract.
        Some(unsafe { std::slice::from_raw_parts(self.area.add(start), end - start) })
    }

    /// Gives `n` received frames back: they return to the fill ring at once (the data was
    /// consumed or copied out).
    pub fn rx_release(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        // The fill ring has room for every receive frame, so it has room for these.
        for i in 0..n {
            let d = self.rx.read(i);
            self.fill.write(i, d.addr);
        }
        self.rx.release(n);
        self.fill.submit(n);
    }

    /// Takes a free transmit frame: its UMEM address and its bytes.
    pub fn tx_frame(&mut self) -> Option<(u64, &mut [u8])> {
        let addr = match self.free_tx.pop() {
            Some(a) => a,
            None => {
                self.reclaim();
                self.free_tx.pop()?
            }
        };
        // SAFETY: a transmit frame of the UMEM, not in any ring now.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(self.area.add(addr as usize), FRAME_SIZE as usize)
        };
        Some((addr, buf))
    }

    /// Returns a frame taken with [`tx_frame`](Self::tx_frame) unused.
    pub fn tx_unused(&mut self, addr: u64) {
        self.free_tx.push(addr);
    }

    /// Queues `len` bytes of the frame at `addr` for transmission (published by
    /// [`flush`](Self::flush)). The ring has room for every transmit frame.
    pub fn tx_push(&mut self, addr: u64, len: u32) {
        self.tx.write(
            0,
            libc::xdp_desc {
                addr,
                len,
                options: 0,
            },
        );
        self.tx.submit(1);
        self.tx_unkicked = true;
    }

    /// Moves completed transmit frames back to the free list.
    pub fn reclaim(&mut self) {
        let n = self.comp.ready();
        for i in 0..n {
            self.free_tx.push(self.comp.read(i));
        }
        self.comp.release(n);
    }

    /// Kicks the kernel to send what was queued (when the ring asks for it), and reclaims
    /// completed frames. Copy mode sends a bounded batch per kick: kick until the ring is
    /// drained or the kernel is busy.
    pub fn flush(&mut self) {
        if self.tx_unkicked {
            self.tx_unkicked = false;
            for _ in 0..256 {
                if !self.tx.needs_wakeup() {
                    break;
                }
                // SAFETY: sendto with no data on our socket: the AF_XDP transmit kick.
                let r = unsafe {
                    libc::sendto(
                        self.fd(),
                        std::ptr::null(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null(),
                        0,
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error().raw_os_error();
                    if !matches!(e, Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS)) {
                        break;
                    }
                }
                if self.tx.consumer().load(Ordering::Acquire) == self.tx.local {
                    break;
                }
            }
        }
        self.reclaim();
    }

    /// Whether the fill ring asks for a wakeup (zero-copy drivers), to be given with
    /// [`wake_rx`](Self::wake_rx) when nothing arrives.
    pub fn rx_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// The receive wakeup (`recvfrom` with no buffer).
    pub fn wake_rx(&self) {
        // SAFETY: recvfrom with no buffer on our socket: the AF_XDP receive wakeup.
        unsafe {
            libc::recvfrom(
                self.fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Frames transmitted but not completed yet, plus queued ones.
    pub fn tx_in_flight(&self) -> usize {
        (self.tx.mask as usize + 1) - self.free_tx.len()
    }
}

impl Drop for XskSocket {
    fn drop(&mut self) {
        // Rings are unmapped by their own Drop; the fd closes after (field order: fd first
        // would close before unmapping, which the kernel also accepts).
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.area.cast(), self.area_len) };
    }
}

/// A zeroed anonymous mapping of `len` bytes (a UMEM).
fn anon_area(len: usize) -> io::Result<*mut u8> {
    // SAFETY: anonymous mapping, checked below.
    let area = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if area == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(area.cast())
}

/// Waits until one of `fds` has received frames, or `timeout_ms` passed.
pub fn poll_rx(fds: &mut [libc::pollfd], timeout_ms: i32) {
    for p in fds.iter_mut() {
        p.events = libc::POLLIN;
        p.revents = 0;
    }
    // SAFETY: a valid array of pollfd.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_socket_runs_the_ring_protocol_both_ways() {
        let mut s = XskSocket::in_memory(7, 0, 64).expect("in-memory socket");
        assert_eq!(s.fd(), -1);
        let meta = [0xaa; 8];
        let frame: Vec<u8> = (0..60).collect();
        assert!(s.peer_receive(&meta, &frame));
        assert_eq!(s.rx_ready(64), 1);
        let d = s.rx_desc(0);
        assert_eq!(d.len, 60);
        assert_eq!(d.addr % u64::from(FRAME_SIZE), u64::from(RX_HEADROOM));
        let seen = s.umem_bytes(d.addr, 8, d.len).expect("inside the UMEM");
        assert_eq!(&seen[..8], &meta);
        assert_eq!(&seen[8..], &frame[..]);
        s.rx_release(1);
        assert_eq!(s.rx_ready(64), 0);

        let (addr, buf) = s.tx_frame().expect("a free transmit frame");
        buf[..4].copy_from_slice(b"abcd");
        s.tx_push(addr, 4);
        s.flush(); // no kernel: no wakeup asked, no system call
        assert_eq!(s.tx_in_flight(), 1);
        let mut out = vec![];
        assert_eq!(s.peer_transmit(|b| out.push(b.to_vec())), 1);
        assert_eq!(out, vec![b"abcd".to_vec()]);
        s.reclaim();
        assert_eq!(s.tx_in_flight(), 0);
    }

    #[test]
    fn the_peer_stops_when_the_fill_ring_is_empty_and_resumes_after_release() {
        // 64 frames: 32 receive frames on the fill ring.
        let mut s = XskSocket::in_memory(7, 0, 64).expect("in-memory socket");
        for _ in 0..32 {
            assert!(s.peer_receive(&[], &[1; 64]));
        }
        assert!(
            !s.peer_receive(&[], &[1; 64]),
            "every receive frame is taken"
        );
        assert_eq!(s.rx_ready(64), 32);
        s.rx_release(2);
        assert!(s.peer_receive(&[], &[2; 64]));
        assert!(s.peer_receive(&[], &[2; 64]));
        assert!(!s.peer_receive(&[], &[2; 64]));
    }

    #[test]
    fn the_peer_refuses_meta_beyond_the_headroom() {
        let mut s = XskSocket::in_memory(7, 0, 64).expect("in-memory socket");
        assert!(
            !s.peer_receive(&[0; 300], &[2; 64]),
            "meta beyond the headroom"
        );
        assert!(s.peer_receive(&[0; 32], &[2; 64]));
        assert_eq!(s.rx_ready(64), 1);
    }
}
