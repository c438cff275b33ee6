//! End to end on veth: lac — lns — core namespaces, the programs attached (native XDP, pinned
//! under a private directory) on the lns side, a static L2TPv3 pseudowire installed through
//! `XdpDataPlane::open` of the pins, frames sent from lac with a packet socket, counted on the
//! core side and in the per-session counters; and back. Needs root; skips loudly otherwise.

mod common;

use common::topo::{attach_pass, count, packet_socket, send, Topology, Unpin, ETHERTYPE};
use common::*;
use l2xdp_dataplane::{loader, static_pw, DataPlane, FastPathConfig, XdpDataPlane};
use l2xdp_ebpf::prog;

#[test]
fn static_pseudowire_over_three_namespaces() {
    if skip_unless_root("static_pseudowire_over_three_namespaces") {
        return;
    }
    let Topology { lac, lns, core } = Topology::new();
    let unpin = Unpin::new("test");
    let pin_dir = unpin.0.clone();
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
