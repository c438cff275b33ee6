//! xdp-cost: the XDP programs' cost per packet, measured with BPF_PROG_TEST_RUN (repeat) in a
//! scratch namespace, cases interleaved round by round:
//!
//! - `decap`: an L2TPv2 data frame whose inner IPv4 packet is 50 bytes (a 64-byte frame once
//!   decapsulated; outer frame 102 bytes), UDP checksum verified, bpf_fib_lookup, redirect;
//! - `encap`: a 64-byte Ethernet frame to a subscriber, encapsulated (UDP checksum computed),
//!   bpf_fib_lookup, redirect;
//! - `swap_mac`: a 64-byte frame, swap MACs, XDP_TX (the floor).
//!
//! Each case is checked once with a plain test run (its verdict), then timed with
//! `BPF_F_TEST_XDP_LIVE_FRAMES` (a fresh frame per repetition; redirects and XDP_TX are carried
//! out into the scratch veths, whose peers drop them). Two measures per case: the kernel's
//! test-run average (`duration`, includes the redirect/TX work and page-pool recycling) and, with
//! `kernel.bpf_stats_enabled=1`, run_time_ns / run_cnt of the program. Needs root.
//!
//! `cargo run -p l2xdp-bench --release --bin xdp-cost -- [rounds] [repeat]`

use std::os::fd::{AsFd, AsRawFd, RawFd};

use aya::programs::Xdp;
use aya::Ebpf;
use l2xdp_dataplane::api::{Binding, DataPlane, SessionEntry};
use l2xdp_dataplane::lab::{is_root, Netns};
use l2xdp_dataplane::test_run::{self, action};
use l2xdp_dataplane::{loader, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::{prog, UTIL_OBJ};
use l2xdp_wire::datapath::{encap, PppTx, Session, SessionKey, TxSeq};
use l2xdp_wire::l2tp::header::{Cookie, Transport};
use l2xdp_wire::net::ethernet::{MacAddr, Vlans};
use l2xdp_wire::net::frame::{udp_frame, Endpoints};

const A0: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 1]);
const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0x0a, 2]);
const C0: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 1]);
const CORE: MacAddr = MacAddr([2, 0, 0, 0, 0x0c, 2]);

fn stats(fd: RawFd) -> (u64, u64) {
    // struct bpf_prog_info: run_time_ns at 192, run_cnt at 200 (uapi linux/bpf.h).
    let mut info = [0u8; 512];
    #[repr(C)]
    struct InfoAttr {
        fd: u32,
        len: u32,
        info: u64,
    }
    let mut a = InfoAttr {
        fd: fd as u32,
        len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: BPF_OBJ_GET_INFO_BY_FD (15) with a live buffer of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            15,
            &mut a as *mut InfoAttr,
            std::mem::size_of::<InfoAttr>(),
        )
    };
    assert!(r >= 0, "BPF_OBJ_GET_INFO_BY_FD failed");
    let rd = |at: usize| u64::from_ne_bytes(info[at..at + 8].try_into().expect("8 bytes"));
    (rd(192), rd(200))
}

fn sysctl(k: &str, v: &str) -> String {
    let path = format!("/proc/sys/{}", k.replace('.', "/"));
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, v).unwrap_or_else(|e| panic!("{path}: {e}"));
    old.trim().to_owned()
}

/// Restores kernel.bpf_stats_enabled on drop (panics included).
struct StatsOn(String);
impl Drop for StatsOn {
    fn drop(&mut self) {
        sysctl("kernel.bpf_stats_enabled", &self.0);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !is_root() {
        eprintln!("xdp-cost: needs root (namespace, BPF, kernel.bpf_stats_enabled)");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    let repeat: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);

    let ns = Netns::new("bench");
    ns.ip(&[
        "link",
        "add",
        "a0",
        "address",
        &A0.to_string(),
        "type",
        "veth",
        "peer",
        "name",
        "a1",
    ]);
    ns.ip(&[
        "link",
        "add",
        "c0",
        "address",
        &C0.to_string(),
        "type",
        "veth",
        "peer",
        "name",
        "c1",
    ]);
    for l in ["a0", "a1", "c0", "c1"] {
        ns.ip(&["link", "set", l, "up"]);
    }
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "a0"]);
    ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "c0"]);
    ns.ip(&[
        "neigh",
        "replace",
        "192.0.2.2",
        "lladdr",
        &PEER.to_string(),
        "nud",
        "permanent",
        "dev",
        "a0",
    ]);
    ns.ip(&[
        "neigh",
        "replace",
        "198.51.100.2",
        "lladdr",
        &CORE.to_string(),
        "nud",
        "permanent",
        "dev",
        "c0",
    ]);
    ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);
    let _g = ns.enter();
    let a0 = loader::ifindex("a0").expect("a0");
    let c0 = loader::ifindex("c0").expect("c0");

    let mut ebpf = loader::load(None).expect("load");
    let mut dp = XdpDataPlane::from_ebpf(&mut ebpf).expect("maps");
    dp.set_config(&FastPathConfig::default()).expect("config");
    let session = Session {
        transport: Transport::Udp,
        local_addr: "192.0.2.1".parse().expect("addr"),
        peer_addr: "192.0.2.2".parse().expect("addr"),
        local_port: 1701,
        peer_port: 1701,
        local_mac: A0,
        next_hop_mac: PEER,
        vlans: Vlans::NONE,
        our_ids: SessionKey::V2 {
            tunnel_id: 1,
            session_id: 2,
        },
        peer_ids: SessionKey::V2 {
            tunnel_id: 10,
            session_id: 20,
        },
        cookie_rx: Cookie::NONE,
        cookie_tx: Cookie::NONE,
        l2ss: false,
        sequencing: false,
        ppp: PppTx::default(),
        ttl: 64,
        dscp: 0,
        udp_checksum_v4: true,
    };
    dp.install(&SessionEntry {
        session,
        binding: Binding::Subscriber {
            ipv4: Some("100.64.0.1".parse().expect("addr")),
            ipv6: vec![],
        },
    })
    .expect("install");
    let ep = |src: &str, dst: &str| Endpoints {
        src_mac: CORE,
        dst_mac: C0,
        src: src.parse().expect("addr"),
        dst: dst.parse().expect("addr"),
    };
    // 64-byte Ethernet frames: 14 + 20 + 8 + 22 payload.
    let up_inner =
        udp_frame(&ep("100.64.0.1", "198.51.100.2"), 4000, 5000, &[7; 22]).expect("inner");
    let down = udp_frame(&ep("198.51.100.2", "100.64.0.1"), 5000, 4000, &[7; 22]).expect("down");
    let peer = Session {
        local_addr: session.peer_addr,
        peer_addr: session.local_addr,
        local_mac: PEER,
        next_hop_mac: A0,
        our_ids: session.peer_ids,
        peer_ids: session.our_ids,
        ..session
    };
    let mut up = vec![0; 256];
    let n = encap(&peer, &mut TxSeq::default(), &up_inner[14..], 1500, &mut up).expect("encap");
    up.truncate(n);

    let fd_of = |e: &mut Ebpf, p| -> RawFd {
        loader::program(e, p)
            .expect("prog")
            .fd()
            .expect("fd")
            .as_fd()
            .as_raw_fd()
    };
    let access = fd_of(&mut ebpf, prog::ACCESS);
    let core = fd_of(&mut ebpf, prog::CORE);
    let mut util = Ebpf::load(UTIL_OBJ).expect("util");
    let swap: &mut Xdp = util
        .program_mut(prog::SWAP_MAC)
        .expect("swap")
        .try_into()
        .expect("xdp");
    swap.load().expect("load swap");
    let swap = swap.fd().expect("fd").as_fd().as_raw_fd();

    let cases: [(&str, RawFd, &[u8], u32, u32); 3] = [
        ("decap", access, &up, a0, action::REDIRECT),
        ("encap", core, &down, c0, action::REDIRECT),
        ("swap_mac", swap, &down, c0, action::TX),
    ];
    let _stats = StatsOn(sysctl("kernel.bpf_stats_enabled", "1"));
    let mut dur: Vec<Vec<f64>> = vec![vec![]; cases.len()];
    let mut st: Vec<Vec<f64>> = vec![vec![]; cases.len()];
    for _ in 0..rounds {
        for (i, (name, fd, frame, ifindex, want)) in cases.iter().enumerate() {
            let r = test_run::run(*fd, frame, *ifindex, 1).expect("test run");
            assert_eq!(r.action, *want, "{name}: unexpected verdict");
            let (t0, c0) = stats(*fd);
            let d = test_run::run_live(*fd, frame, *ifindex, repeat).expect("live test run");
            let (t1, c1) = stats(*fd);
            dur[i].push(f64::from(d));
            if c1 > c0 {
                st[i].push((t1 - t0) as f64 / (c1 - c0) as f64);
            }
        }
    }
    println!("xdp-cost: {rounds} interleaved rounds x {repeat} runs (BPF_PROG_TEST_RUN), medians");
    println!(
        "{:<10} {:>8} {:>22} {:>26}",
        "case", "bytes", "test-run ns/pkt", "bpf_stats run_time/cnt"
    );
    for (i, (name, _, frame, _, _)) in cases.iter().enumerate() {
        let s = if st[i].is_empty() {
            f64::NAN
        } else {
            median(&mut st[i])
        };
        println!(
            "{:<10} {:>8} {:>22.1} {:>26.1}",
            name,
            frame.len(),
            median(&mut dur[i]),
            s
        );
    }
}
