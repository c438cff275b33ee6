//! AF_PACKET sockets bound to one interface: raw frames in and out, below the IP stack.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// EtherType 0x88b5, IEEE 802 local experimental: nothing else on the lab's links uses it, so a
/// socket bound to it receives only the frames a test makes of it (and can send anything).
pub const ETH_P_LOCAL_EXP: u16 = 0x88b5;

/// `SO_RCVBUFFORCE` (asm-generic): a receive buffer above `rmem_max` (root).
const SO_RCVBUFFORCE: libc::c_int = 33;

/// A `SOCK_RAW` packet socket bound to one interface and EtherType. Sockets belong to the
/// namespace of the thread that creates them: open it inside the interface's namespace.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a socket bound to `ifindex` receiving EtherType `proto` (what is sent is whatever
    /// the frame says); receives give up after `recv_timeout`.
    pub fn open(ifindex: u32, proto: u16, recv_timeout: Duration) -> PacketSocket {
        // SAFETY: plain socket calls with valid arguments; the fd is owned right away.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto.to_be()));
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto.to_be();
            sll.sll_ifindex = ifindex as i32;
            let r = libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: recv_timeout.as_secs() as libc::time_t,
                tv_usec: recv_timeout.subsec_micros() as libc::suseconds_t,
            };
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
            PacketSocket { fd }
        }
    }

    /// Sets the receive buffer to `bytes`, above `rmem_max` if need be (needs root), so that
    /// a burst is queued rather than dropped. Best effort, as a fixture: the counts tell.
    pub fn force_recv_buffer(self, bytes: libc::c_int) -> PacketSocket {
        // SAFETY: a valid fd and option value.
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_RCVBUFFORCE,
                &bytes as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        self
    }

    /// Sends one whole frame; panics unless all of it went.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: a valid buffer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends one whole frame out of interface `ifindex` (of the socket's namespace; for a
    /// socket bound to all interfaces, index 0); panics unless all of it went.
    pub fn send_to(&self, ifindex: u32, frame: &[u8]) {
        // SAFETY: a valid buffer and address.
        let n = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            n,
            frame.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Receives one frame into `buf`: its length and its packet type (`PACKET_HOST`,
    /// `PACKET_OUTGOING`, ...), or `None` on timeout or error.
    pub fn recv(&self, buf: &mut [u8]) -> Option<(usize, u8)> {
        // SAFETY: valid buffer and address storage.
        let (r, kind) = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let r = libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                &mut len,
            );
            (r, sll.sll_pkttype)
        };
        usize::try_from(r).ok().map(|n| (n, kind))
    }

    /// Counts the frames `pred` accepts until `want` arrived (waiting at most `limit`, which
    /// only bounds a hung run: a slow machine may pause longer than one receive timeout
    /// between frames), then until a receive times out (so extra frames are counted too).
    pub fn count_expecting(
        &self,
        pred: impl Fn(&[u8]) -> bool,
        want: usize,
        limit: std::time::Duration,
    ) -> usize {
        let end = std::time::Instant::now() + limit;
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while n < want && std::time::Instant::now() < end {
            if let Some((len, _)) = self.recv(&mut buf) {
                if pred(&buf[..len]) {
                    n += 1;
                }
            }
        }
        n + self.count(pred)
    }

    /// Receives until a receive times out; counts the frames `pred` accepts (whatever their
    /// packet type).
    pub fn count(&self, pred: impl Fn(&[u8]) -> bool) -> usize {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while let Some((len, _)) = self.recv(&mut buf) {
            if pred(&buf[..len]) {
                n += 1;
            }
        }
        n
    }
}
