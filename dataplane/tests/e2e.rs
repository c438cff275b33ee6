//! End to end on veth: lac — lns — core namespaces, the programs attached (native XDP, pinned
//! under a private directory) on the lns side, a static L2TPv3 pseudowire installed through
//! `XdpDataPlane::open` of the pins, frames sent from lac with a packet socket, counted on the
//! core side and in the per-session counters; and back. In XDP mode and, as
//! `static_pseudowire_over_three_namespaces_afxdp`, in AF_XDP mode (a worker on CPU 0 with
//! sockets on `la` and `lc`, which is the pseudowire's attachment circuit here): same packets,
//! same counters, and every one of them through the worker. Needs root (`l2xdp_lab::require_root`).

mod common;

use std::time::Duration;

use common::*;
use l2xdp_dataplane::{loader, static_pw, DataPlane, XdpDataPlane};
use l2xdp_ebpf::maps::xsk_stat;
use l2xdp_lab::packet::ETH_P_LOCAL_EXP;
use l2xdp_lab::topology::{Mode, PeerPort, Pins, Topology, CORE0, LAC0, LC};
use l2xdp_lab::traffic::LIMIT;
use l2xdp_wire::datapath::DropReason;

/// How long a count waits for one more frame.
const QUIET: Duration = Duration::from_millis(300);

#[test]
fn static_pseudowire_over_three_namespaces() {
    static_pseudowire_in(Mode::Xdp, "static_pseudowire_over_three_namespaces");
}

#[test]
fn static_pseudowire_over_three_namespaces_afxdp() {
    static_pseudowire_in(Mode::AfXdp, "static_pseudowire_over_three_namespaces_afxdp");
}

fn static_pseudowire_in(mode: Mode, name: &str) {
    if skip_unless_root(name) {
        return;
    }
    // The lab's topology: no IPv6 autoconfiguration chatter, everything on the circuit is
    // pseudowire payload.
    let tag = format!("e2e-{mode:?}");
    let topo = Topology::new(&tag);
    let pins = Pins::under_sys_fs_bpf(&tag);
    let pin_dir = pins.path().to_path_buf();
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
    let fp = topo.start_fast_path(&pin_dir, mode);
    let entry = {
        let _g = topo.lns.enter();
        // Another handle, as the control plane would open it.
        let mut dp = XdpDataPlane::open(&pin_dir).expect("open pins");
        let entry = pw.entry(loader::ifindex(LC).expect("lc"));
        dp.install(&entry).expect("install");
        entry
    };
    fp.settle();
    let core_port = PeerPort::new(&topo.core, CORE0);
    let core_sock = core_port.socket(ETH_P_LOCAL_EXP, QUIET);
    let lac_port = PeerPort::new(&topo.lac, LAC0);
    let (lac_sock, lac_ip_sock) = (
        lac_port.socket(ETH_P_LOCAL_EXP, QUIET),
        lac_port.socket(0x0800, QUIET),
    );

    // Upstream: the LAC sends N L2TPv3 frames; the core sees N inner frames.
    let peer = mirror(&entry.session);
    let mut inner = vec![0u8; 100];
    inner[..6].copy_from_slice(&CORE_MAC.0);
    inner[6..12].copy_from_slice(&PEER_MAC.0);
    inner[12..14].copy_from_slice(&ETH_P_LOCAL_EXP.to_be_bytes());
    const N: usize = 50;
    // Frame i carries i after its Ethernet header: a loss names the frames lost.
    let numbered = |i: usize| {
        let mut f = inner.clone();
        f[14..16].copy_from_slice(&(i as u16).to_be_bytes());
        f
    };
    for i in 0..N {
        lac_sock.send(&from_peer(&peer, &numbered(i), 0));
    }
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let got = core_sock.count_expecting(
        |f| {
            let i = f.get(14..16).map_or(usize::MAX, |b| {
                usize::from(u16::from_be_bytes([b[0], b[1]]))
            });
            let ok = i < N && f == numbered(i).as_slice();
            if ok {
                seen.borrow_mut().insert(i);
            }
            ok
        },
        N,
        LIMIT,
    );
    let missing: Vec<usize> = (0..N).filter(|i| !seen.borrow().contains(i)).collect();
    // Diagnosis of a loss: do later frames bring the missing ones out (held in a queue until
    // the next packet) or are they gone — and do the later frames themselves arrive?
    let mut after_trailer = String::new();
    if !missing.is_empty() {
        for t in 0..2u16 {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let tag = 0xfff0 + usize::from(t);
            lac_sock.send(&from_peer(&peer, &numbered(tag), 0));
            let arrived = std::cell::RefCell::new(vec![]);
            core_sock.count_expecting(
                |f| {
                    let i = f.get(14..16).map_or(usize::MAX, |b| {
                        usize::from(u16::from_be_bytes([b[0], b[1]]))
                    });
                    let ok = (missing.contains(&i) || i == tag) && f == numbered(i).as_slice();
                    if ok {
                        arrived.borrow_mut().push(i);
                    }
                    ok
                },
                missing.len() + 1,
                LIMIT.min(std::time::Duration::from_secs(5)),
            );
            after_trailer += &format!("; after trailer {tag:#x}: {:x?} arrived", arrived.borrow());
        }
    }
    assert_eq!(
        got,
        N,
        "inner frames delivered to the core namespace (missing {missing:?}{after_trailer}): {}",
        fp.diagnostics()
    );

    // Downstream: the core sends M frames on the circuit; the LAC sees M L2TP frames.
    const M: usize = 30;
    let mut down = inner.clone();
    down[..6].copy_from_slice(&PEER_MAC.0);
    down[6..12].copy_from_slice(&CORE_MAC.0);
    for _ in 0..M {
        core_sock.send(&down);
    }
    let l2tp = lac_ip_sock.count_expecting(
        |f| f.len() > 42 && f[23] == 17 && f[36..38] == [0x06, 0xa5] && f.ends_with(&down),
        M,
        LIMIT,
    );
    assert_eq!(
        l2tp,
        M,
        "encapsulated frames delivered to the LAC: {}",
        fp.diagnostics()
    );

    let _g = topo.lns.enter();
    let dp = XdpDataPlane::open(&pin_dir).expect("open pins");
    let c = dp.counters(&entry.key()).expect("counters");
    assert_eq!((c.rx_packets, c.tx_packets), (N as u64, M as u64), "{c:?}");
    let frame_len = from_peer(&peer, &inner, 0).len() as u64;
    assert_eq!(c.rx_bytes, N as u64 * frame_len);
    assert_eq!(
        fp.drop_counters(),
        [0; DropReason::COUNT],
        "nothing dropped"
    );
    if let Some(a) = &fp.afxdp {
        let w = a.counters();
        assert_eq!(a.received(), (N + M) as u64, "through the worker: {w:?}");
        assert_eq!(
            (w[xsk_stat::DECAP as usize], w[xsk_stat::ENCAP as usize]),
            (N as u64, M as u64),
            "{w:?}"
        );
        assert_eq!(
            w.iter().sum::<u64>(),
            (N + M) as u64,
            "no worker drop: {w:?}"
        );
    }
}
