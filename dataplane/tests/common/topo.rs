//! The end-to-end topology on veth: three namespaces lac (lac0) — lns (la, lc) — core (core0),
//! with the MACs of the fixture (la = A0_MAC, lac0 = PEER_MAC, lc = C0_MAC, core0 = CORE_MAC),
//! the outer IPv4 link 192.0.2.0/24 between lac and lns, a static neighbour for the peer, IPv6
//! off (no autoconfiguration chatter) and forwarding on in lns. Packet sockets, an `xdp_pass`
//! attacher (a veth receives XDP-redirected frames only with a program on it) and a guard for a
//! private pin directory.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use l2xdp_dataplane::lab::Netns;
use l2xdp_dataplane::loader;
use l2xdp_ebpf::{prog, UTIL_OBJ};

use super::{A0_MAC, C0_MAC, CORE_MAC, PEER4, PEER_MAC};

/// IEEE local experimental: only our frames match.
pub const ETHERTYPE: u16 = 0x88b5;

/// The three namespaces (deleted on drop, with their veths and the programs on them).
pub struct Topology {
    pub lac: Netns,
    pub lns: Netns,
    pub core: Netns,
}

impl Topology {
    pub fn new() -> Topology {
        let lac = Netns::new("lac");
        let lns = Netns::new("lns");
        let core = Netns::new("core");
        for ns in [&lac, &lns, &core] {
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        for (ours, mac, peer, there) in
            [("la", A0_MAC, "lac0", &lac), ("lc", C0_MAC, "core0", &core)]
        {
            lns.ip(&[
                "link",
                "add",
                ours,
                "address",
                &mac.to_string(),
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                &there.name,
            ]);
        }
        lac.ip(&["link", "set", "lac0", "address", &PEER_MAC.to_string()]);
        core.ip(&["link", "set", "core0", "address", &CORE_MAC.to_string()]);
        for (ns, l) in [(&lns, "la"), (&lns, "lc"), (&lac, "lac0"), (&core, "core0")] {
            ns.ip(&["link", "set", l, "up"]);
        }
        lns.ip(&["addr", "add", "192.0.2.1/24", "dev", "la"]);
        lac.ip(&["addr", "add", "192.0.2.2/24", "dev", "lac0"]);
        lns.ip(&[
            "neigh",
            "replace",
            PEER4,
            "lladdr",
            &PEER_MAC.to_string(),
            "nud",
            "permanent",
            "dev",
            "la",
        ]);
        lns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);
        Topology { lac, lns, core }
    }
}

/// A raw packet socket bound to `ifindex` and `proto` (receive timeout 300 ms).
pub fn packet_socket(ifindex: u32, proto: u16) -> OwnedFd {
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
            tv_sec: 0,
            tv_usec: 300_000,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        fd
    }
}

pub fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: a valid buffer.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// One frame into `buf`, or `None` at the receive timeout.
pub fn recv(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: a valid buffer.
    let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(r).ok()
}

/// Receives until a timeout; counts the frames `pred` accepts.
pub fn count(fd: &OwnedFd, pred: impl Fn(&[u8]) -> bool) -> usize {
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while let Some(r) = recv(fd, &mut buf) {
        if pred(&buf[..r]) {
            n += 1;
        }
    }
    n
}

/// Attaches `xdp_pass` (native) to `iface` of the calling thread's namespace.
pub fn attach_pass(iface: &str) -> Ebpf {
    let mut e = Ebpf::load(UTIL_OBJ).expect("util object");
    let p: &mut Xdp = e
        .program_mut(prog::PASS)
        .expect("xdp_pass")
        .try_into()
        .expect("xdp");
    p.load().expect("load");
    p.attach(iface, XdpMode::Driver).expect("attach xdp_pass");
    e
}

/// A private pin directory, detached (links and pins removed) on drop.
pub struct Unpin(pub PathBuf);

impl Unpin {
    pub fn new(tag: &str) -> Unpin {
        Unpin(PathBuf::from(format!(
            "/sys/fs/bpf/l2xdp-{tag}-{}",
            std::process::id()
        )))
    }
}

impl Drop for Unpin {
    fn drop(&mut self) {
        let _ = loader::detach(&self.0);
    }
}
