//! The generator of the forwarding scenarios where the kernel refuses live-frame test runs
//! (`BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`: kernels before 5.18, and builds
//! that refuse it as root): AF_PACKET sockets with a `PACKET_TX_RING` (TPACKET_V2) and
//! `PACKET_QDISC_BYPASS`, one per egress interface, the frames written into the ring once and
//! cycled. Which generator runs is the probe's answer ([`live_frames`]:
//! `l2xdp_dataplane::probe`, `L2XDP_FORCE_PROBE=live_frames=off` forces this one on any
//! kernel), never a failed test run.
//!
//! A send is a `send(MSG_DONTWAIT)` that hands every marked slot to the veth's transmit
//! (`dev_direct_xmit`, no qdisc). A veth whose peer's XDP ring is full refuses the frame
//! (`ENOBUFS`); the kernel leaves that slot marked and stops, so the frame is offered again
//! on the next send: a refusal counts as one frame offered and not delivered (what the
//! live-frame generator's redirect into a full ring is), the retry as another offer. Frames
//! handed over are counted when the kernel moves their slot out of `SEND_REQUEST`.
//!
//! Pacing is a token bucket on the monotonic clock, as the live generator's: one interval
//! per frame offered, at most [`BURST`] frames of credit. One sender thread per spare core
//! ([`Generator`]): each has its own sockets and every T-th frame, at rate / T.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2xdp_dataplane::probe::{self, Feature};
use l2xdp_lab::Netns;
use serde::Serialize;

use crate::interrupt;

/// Which generator a scenario runs on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` of the bench object's generator.
    LiveFrames,
    /// AF_PACKET `PACKET_TX_RING` with `PACKET_QDISC_BYPASS` ([`Generator`]).
    AfPacket,
}

impl Kind {
    /// The probe's answer ([`live_frames`]).
    pub fn for_this_kernel() -> Kind {
        if live_frames() {
            Kind::LiveFrames
        } else {
            Kind::AfPacket
        }
    }

    /// For tables and JSON.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::LiveFrames => "live-frame test run (BPF_F_TEST_XDP_LIVE_FRAMES)",
            Kind::AfPacket => "AF_PACKET TX_RING + PACKET_QDISC_BYPASS",
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::LiveFrames => "live_frames",
            Kind::AfPacket => "af_packet",
        }
    }
}

/// Whether the kernel runs live-frame test runs (the probe, `L2XDP_FORCE_PROBE` applied).
pub fn live_frames() -> bool {
    probe::features().has(Feature::LiveFrames)
}

/// Most frames of pacing credit (a preempted sender does not catch up with a burst).
pub const BURST: u64 = 32;
/// Slots per ring.
const SLOTS: u32 = 1024;
/// Bytes per slot (TPACKET_V2 header + frame: frames up to 2,016 bytes).
const SLOT_SIZE: u32 = 2048;
/// Block size (a multiple of the page size and of the slot size).
const BLOCK: u32 = 1 << 16;
/// The frame's offset in its slot: TPACKET_ALIGN(sizeof(tpacket2_hdr)).
const DATA_OFF: usize = 32;
/// The largest frame.
pub const FRAME_MAX: usize = SLOT_SIZE as usize - DATA_OFF;

const SOL_PACKET: libc::c_int = 263;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const TPACKET_V2: libc::c_int = 1;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;

#[repr(C)]
struct TpacketReq {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, v: &T) -> std::io::Result<()> {
    // SAFETY: v points at a live T of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// One AF_PACKET socket with a mapped TX ring, bound to one interface.
pub struct TxRing {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    /// Frames marked for sending (monotonic).
    tail: u64,
    /// Frames the kernel has taken out of `SEND_REQUEST` (monotonic).
    head: u64,
    /// The (set, index) of the frame each slot holds (written once while it stays).
    holds: Vec<u64>,
    /// The interface, for messages.
    pub ifname: String,
}

// SAFETY: the mapping belongs to the socket owned by this value; one thread uses it at a time.
unsafe impl Send for TxRing {}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open(), of that length.
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
    }
}

impl TxRing {
    /// Opens a ring on `ifname` in `ns` (the socket belongs to the namespace it is made in).
    pub fn open(ns: &Netns, ifname: &str) -> std::io::Result<TxRing> {
        let _g = ns.enter();
        let name = std::ffi::CString::new(ifname)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Protocol 0: the socket receives nothing.
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V2)?;
        setsockopt(&fd, SOL_PACKET, PACKET_QDISC_BYPASS, &1 as &libc::c_int)?;
        // Room for every slot's skb in flight (root: beyond wmem_max).
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            &(16 << 20) as &libc::c_int,
        )?;
        let req = TpacketReq {
            block_size: BLOCK,
            block_nr: SLOTS * SLOT_SIZE / BLOCK,
            frame_size: SLOT_SIZE,
            frame_nr: SLOTS,
        };
        setsockopt(&fd, SOL_PACKET, PACKET_TX_RING, &req)?;
        let map_len = (SLOTS * SLOT_SIZE) as usize;
        // SAFETY: maps the ring just configured on our socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ring = TxRing {
            fd,
            map: map as *mut u8,
            map_len,
            tail: 0,
            head: 0,
            holds: vec![u64::MAX; SLOTS as usize],
            ifname: ifname.to_owned(),
        };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: a sockaddr_ll of its size.
        let r = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ring)
    }

    fn slot(&self, n: u64) -> *mut u8 {
        let i = (n % u64::from(SLOTS)) as usize;
        // SAFETY: i < SLOTS: inside the mapping.
        unsafe { self.map.add(i * SLOT_SIZE as usize) }
    }

    fn status(&self, n: u64) -> &AtomicU32 {
        // SAFETY: tp_status is the slot's first, 4-byte-aligned u32; the kernel updates it
        // concurrently, hence atomic access.
        unsafe { &*(self.slot(n) as *const AtomicU32) }
    }

    /// Marked, not yet taken by the kernel.
    fn pending(&self) -> u64 {
        self.tail - self.head
    }

    /// Marks `frame` (known as `key`) in the next slot, if that slot is free.
    fn mark(&mut self, key: u64, frame: &[u8]) -> bool {
        if self.tail - self.head >= u64::from(SLOTS)
            || self.status(self.tail).load(Ordering::Acquire) != TP_STATUS_AVAILABLE
        {
            return false;
        }
        let p = self.slot(self.tail);
        let i = (self.tail % u64::from(SLOTS)) as usize;
        let len = frame.len().min(FRAME_MAX);
        // SAFETY: the slot is ours (AVAILABLE) and SLOT_SIZE long; tp_len is at offset 4.
        unsafe {
            if self.holds[i] != key {
                std::ptr::copy_nonoverlapping(frame.as_ptr(), p.add(DATA_OFF), len);
                self.holds[i] = key;
            }
            (p.add(4) as *mut u32).write_volatile(len as u32);
        }
        self.status(self.tail)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tail += 1;
        true
    }

    /// Hands the marked slots to the kernel. Returns whether a frame was refused (`ENOBUFS`:
    /// the receiving veth's ring is full; the slot stays marked).
    fn kick(&mut self) -> std::io::Result<bool> {
        // SAFETY: send(2) with no buffer: the TX ring's marked slots are the data.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS) => Ok(true),
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
                _ => Err(e),
            };
        }
        Ok(false)
    }

    /// Counts the slots the kernel took; returns how many, and their bytes.
    fn reap(&mut self) -> std::io::Result<(u64, u64)> {
        let (mut n, mut bytes) = (0, 0);
        while self.head < self.tail {
            let s = self.status(self.head).load(Ordering::Acquire);
            if s == TP_STATUS_SEND_REQUEST {
                break;
            }
            if s & TP_STATUS_WRONG_FORMAT != 0 {
                return Err(std::io::Error::other(format!(
                    "{}: the kernel refused a frame's format",
                    self.ifname
                )));
            }
            // SAFETY: tp_len of a slot in the ring.
            bytes +=
                u64::from(unsafe { (self.slot(self.head).add(4) as *const u32).read_volatile() });
            n += 1;
            self.head += 1;
        }
        Ok((n, bytes))
    }

    /// Whether every slot is back to the sender (every skb freed).
    fn idle(&self) -> bool {
        self.head == self.tail
            && (0..u64::from(SLOTS))
                .all(|k| self.status(k).load(Ordering::Acquire) == TP_STATUS_AVAILABLE)
    }
}

/// One frame: the port (index of the ring) it leaves on and its bytes.
pub type Frame = (usize, Vec<u8>);

/// How long a pass runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Exactly this many frames handed over.
    Packets(u64),
    /// Offer frames for this long.
    Time(Duration),
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Pass {
    /// Frames handed to the interfaces.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Offers the receiving veth refused (its ring full), each retried as a new offer.
    pub refused: u64,
    /// First to last send, seconds (several threads: the longest).
    pub seconds: f64,
}

impl Pass {
    /// Frames offered: handed over + refused.
    pub fn offered(&self) -> u64 {
        self.sent + self.refused
    }
}

/// One sender thread: its core, its sockets (one per port) and its share of the frames.
pub struct Worker {
    cpu: usize,
    /// SCHED_FIFO priority set by the thread (0: inherit the spawner's policy).
    rt_prio: i32,
    rings: Vec<TxRing>,
    /// (set id, frames).
    frames: (u32, Vec<Frame>),
}

impl Worker {
    fn run(&mut self, budget: Budget, rate: Option<f64>) -> std::io::Result<Pass> {
        let (set, frames) = (&self.frames.0, &self.frames.1);
        if frames.is_empty() {
            return Ok(Pass::default());
        }
        let interval = rate.map(|r| 1e9 / r.max(1.0));
        let mut pass = Pass::default();
        let mut cursor = 0usize;
        let mut marked = 0u64;
        let start = Instant::now();
        let mut due_ns = 0f64;
        let mut last_kick = start;
        let mut first_kick: Option<Instant> = None;
        let mut spins = 0u32;
        let mut progress = (0u64, Instant::now());
        loop {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                if interrupt::requested() {
                    return Err(std::io::Error::from_raw_os_error(libc::EINTR));
                }
                let done = pass.sent + pass.refused + marked;
                if done != progress.0 {
                    progress = (done, Instant::now());
                } else if progress.1.elapsed() > Duration::from_secs(5) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "AF_PACKET generator: no frame sent or refused for 5 s (slots never freed?)",
                    ));
                }
            }
            let now_ns = start.elapsed().as_nanos() as f64;
            let more = match budget {
                Budget::Packets(p) => marked < p,
                Budget::Time(d) => now_ns < d.as_nanos() as f64,
            };
            let pending: u64 = self.rings.iter().map(TxRing::pending).sum();
            if !more && pending == 0 {
                break;
            }
            // How many offers are due now.
            let allowed = match interval {
                None => 256,
                Some(iv) => {
                    if due_ns < now_ns - iv * BURST as f64 {
                        due_ns = now_ns - iv * BURST as f64;
                    }
                    ((now_ns - due_ns) / iv).max(0.0) as u64
                }
            };
            let mut want = allowed.saturating_sub(pending);
            if let Budget::Packets(p) = budget {
                want = want.min(p - marked);
            }
            if !more {
                want = 0;
            }
            while want > 0 {
                let (port, f) = &frames[cursor];
                let key = (u64::from(*set) << 32) | cursor as u64;
                if !self.rings[*port].mark(key, f) {
                    break;
                }
                cursor = (cursor + 1) % frames.len();
                marked += 1;
                want -= 1;
            }
            let mut offers = 0;
            let mut kicked = false;
            for r in self.rings.iter_mut() {
                if r.pending() == 0 {
                    continue;
                }
                if let Some(iv) = interval {
                    // Paced: only when an offer is due.
                    if now_ns < due_ns + iv {
                        continue;
                    }
                }
                let refused = r.kick()?;
                kicked = true;
                let (n, b) = r.reap()?;
                pass.sent += n;
                pass.sent_bytes += b;
                offers += n;
                if refused {
                    pass.refused += 1;
                    offers += 1;
                }
            }
            if kicked {
                let t = Instant::now();
                first_kick.get_or_insert(t);
                last_kick = t;
            }
            if let Some(iv) = interval {
                due_ns += iv * offers as f64;
            }
            if !kicked {
                std::hint::spin_loop();
            }
        }
        pass.seconds = first_kick.map_or(0.0, |f| (last_kick - f).as_secs_f64());
        // Every skb freed (the frames reached the receiving veth's NAPI), or 1 s.
        let t = Instant::now();
        while !self.rings.iter().all(TxRing::idle) && t.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(pass)
    }
}

/// The AF_PACKET generator: one [`Worker`] per sender core.
pub struct Generator {
    workers: Vec<Worker>,
}

impl Generator {
    /// Sockets on `ports` (namespace, interface) for each of `cpus` (one thread each).
    pub fn new(ports: &[(&Netns, &str)], cpus: &[usize]) -> std::io::Result<Generator> {
        let mut workers = Vec::new();
        for &cpu in cpus {
            let mut rings = Vec::new();
            for (ns, ifname) in ports {
                rings.push(TxRing::open(ns, ifname).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("AF_PACKET TX ring on {ifname}: {e}"))
                })?);
            }
            workers.push(Worker {
                cpu,
                rt_prio: 0,
                rings,
                frames: (u32::MAX, vec![]),
            });
        }
        Ok(Generator { workers })
    }

    /// Makes every sender thread SCHED_FIFO `prio` (its rate is wall time from first to last
    /// send, so it must not wait behind other tasks).
    pub fn set_rt_prio(&mut self, prio: i32) {
        for w in &mut self.workers {
            w.rt_prio = prio;
        }
    }

    /// The sender cores.
    pub fn cpus(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.cpu).collect()
    }

    /// Sets the frames (`id` names the set: a slot keeps a set's frame written once); worker
    /// t of T gets frames t, t + T, …
    pub fn load(&mut self, id: u32, frames: &[Frame]) -> std::io::Result<()> {
        let t = self.workers.len();
        for (k, w) in self.workers.iter_mut().enumerate() {
            let mine: Vec<Frame> = frames.iter().skip(k).step_by(t).cloned().collect();
            if let Some((_, f)) = mine
                .iter()
                .find(|(p, f)| *p >= w.rings.len() || f.len() > FRAME_MAX)
            {
                return Err(std::io::Error::other(format!(
                    "a {}-byte frame for a port that is not there or too long",
                    f.len()
                )));
            }
            w.frames = (id, mine);
        }
        Ok(())
    }

    /// One pass: every worker on its core (`rate` split evenly), until `budget` (Packets: in
    /// total, split evenly).
    pub fn pass(&mut self, budget: Budget, rate: Option<f64>) -> std::io::Result<Pass> {
        let t = self.workers.len().max(1) as u64;
        let results: Vec<std::io::Result<Pass>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .workers
                .iter_mut()
                .enumerate()
                .map(|(k, w)| {
                    let b = match budget {
                        Budget::Packets(p) => {
                            Budget::Packets(p / t + u64::from((k as u64) < p % t))
                        }
                        Budget::Time(d) => Budget::Time(d),
                    };
                    let r = rate.map(|r| r / t as f64);
                    s.spawn(move || {
                        crate::machine::pin_thread(w.cpu)?;
                        if w.rt_prio > 0 {
                            crate::machine::set_fifo(0, w.rt_prio)?;
                        }
                        w.run(b, r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("sender thread panicked")))
                })
                .collect()
        });
        let mut out = Pass::default();
        for r in results {
            let p = r?;
            out.sent += p.sent;
            out.sent_bytes += p.sent_bytes;
            out.refused += p.refused;
            out.seconds = out.seconds.max(p.seconds);
        }
        Ok(out)
    }
}
