//! End to end on veth: lac — lns — core namespaces, the programs attached (native XDP, pinned
//! under a private directory) on the lns side, a static L2TPv3 pseudowire installed through
//! `XdpDataPlane::open` of the pins, frames sent from lac with a packet socket, counted on the
//! core side and in the per-session counters; and back. Needs root; skips loudly otherwise.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use common::*;
use l2xdp_dataplane::lab::Netns;
use l2xdp_dataplane::{loader, static_pw, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::{prog, UTIL_OBJ};

const ETHERTYPE: u16 = 0x88b5; // IEEE local experimental: only our frames match

fn packet_socket(ifindex: u32, proto: u16) -> OwnedFd {
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

fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: a valid buffer.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// Receives until a timeout; counts the frames `pred` accepts.
fn count(fd: &OwnedFd, pred: impl Fn(&[u8]) -> bool) -> usize {
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        // SAFETY: a valid buffer.
        let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 0 {
            return n;
        }
        if pred(&buf[..r as usize]) {
            n += 1;
        }
    }
}

fn attach_pass(iface: &str) -> Ebpf {
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

struct Unpin(PathBuf);
impl Drop for Unpin {
    fn drop(&mut self) {
        let _ = loader::detach(&self.0);
    }
}

#[test]
fn static_pseudowire_over_three_namespaces() {
    if skip_unless_root("static_pseudowire_over_three_namespaces") {
        return;
    }
    let lac = Netns::new("lac");
    let lns = Netns::new("lns");
    let core = Netns::new("core");
    // No IPv6 autoconfiguration chatter: everything on the circuit is pseudowire payload.
    for ns in [&lac, &lns, &core] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    lns.ip(&[
        "link",
        "add",
        "la",
        "address",
        &A0_MAC.to_string(),
        "type",
        "veth",
        "peer",
        "name",
        "lac0",
        "netns",
        &lac.name,
    ]);
    lns.ip(&[
        "link",
        "add",
        "lc",
        "address",
        &C0_MAC.to_string(),
        "type",
        "veth",
        "peer",
        "name",
        "core0",
        "netns",
        &core.name,
    ]);
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

    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/l2xdp-test-{}", std::process::id()));
    let _unpin = Unpin(pin_dir.clone());
    let config = r#"
[[pseudowire]]
tunnel_id = 1
peer_tunnel_id = 2
session_id = 100
peer_session_id = 200
local = "192.0.2.1"
peer = "192.0.2.2"
encap = "udp"
cookie = "0102030405060708"
peer_cookie = "a1a2a3a4"
l2spec = true
interface = "lc"
"#;
    let pw = static_pw::parse(config, "e2e.toml")
        .expect("config")
        .remove(0);
    let (entry, _lns_obj) = {
        let _g = lns.enter();
        let mut ebpf = loader::load(Some(&pin_dir)).expect("load with pins");
        loader::attach_pinned(&mut ebpf, prog::ACCESS, "la", &pin_dir).expect("attach access");
        loader::attach_pinned(&mut ebpf, prog::CORE, "lc", &pin_dir).expect("attach core");
        // Another handle, as the control plane would open it.
        let mut dp = XdpDataPlane::open(&pin_dir).expect("open pins");
        dp.set_config(&FastPathConfig::default()).expect("config");
        let entry = pw.entry(loader::ifindex("lc").expect("lc"));
        dp.install(&entry).expect("install");
        (entry, ebpf)
    };
    let (core_sock, _core_pass) = {
        let _g = core.enter();
        let e = attach_pass("core0");
        (
            packet_socket(loader::ifindex("core0").expect("core0"), ETHERTYPE),
            e,
        )
    };
    let (lac_sock, lac_ip_sock, _lac_pass) = {
        let _g = lac.enter();
        let e = attach_pass("lac0");
        let i = loader::ifindex("lac0").expect("lac0");
        (packet_socket(i, ETHERTYPE), packet_socket(i, 0x0800), e)
    };

    // Upstream: the LAC sends N L2TPv3 frames; the core sees N inner frames.
    let peer = mirror(&entry.session);
    let mut inner = vec![0u8; 100];
    inner[..6].copy_from_slice(&CORE_MAC.0);
    inner[6..12].copy_from_slice(&PEER_MAC.0);
    inner[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    const N: usize = 50;
    for _ in 0..N {
        send(&lac_sock, &from_peer(&peer, &inner, 0));
    }
    let got = count(&core_sock, |f| f == inner.as_slice());
    assert_eq!(got, N, "inner frames delivered to the core namespace");

    // Downstream: the core sends M frames on the circuit; the LAC sees M L2TP frames.
    const M: usize = 30;
    let mut down = inner.clone();
    down[..6].copy_from_slice(&PEER_MAC.0);
    down[6..12].copy_from_slice(&CORE_MAC.0);
    for _ in 0..M {
        send(&core_sock, &down);
    }
    let l2tp = count(&lac_ip_sock, |f| {
        f.len() > 42 && f[23] == 17 && f[36..38] == [0x06, 0xa5] && f.ends_with(&down)
    });
    assert_eq!(l2tp, M, "encapsulated frames delivered to the LAC");

    let _g = lns.enter();
    let dp = XdpDataPlane::open(&pin_dir).expect("open pins");
    let c = dp.counters(&entry.key()).expect("counters");
    assert_eq!((c.rx_packets, c.tx_packets), (N as u64, M as u64), "{c:?}");
    let frame_len = from_peer(&peer, &inner, 0).len() as u64;
    assert_eq!(c.rx_bytes, N as u64 * frame_len);
}
