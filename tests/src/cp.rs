//! What the control-plane end-to-end tests share: waiting for node events, a users table,
//! and checking a capture with both decoders.

use std::path::Path;
use std::sync::Arc;

use l2xdp_controlplane::driver::{Driver, Handle};
use l2xdp_controlplane::l2tp::{FailoverConfig, L2tpConfig};
use l2xdp_controlplane::node::{Node, NodeConfig, NodeEvent};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::random::Random;
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_decode::{DecodeOptions, Decoder};
use tokio::sync::mpsc::UnboundedReceiver;

pub use l2xdp_lab::cp::{bring_up, is_down, open_user_session, wait_for};

/// A LAC's node configuration (host name "lac", PPP client defaults, OS randomness), with the
/// RFC 4951 Failover Capability (both bits, 10 s recovery time) or without.
pub fn lac_config(failover: bool) -> NodeConfig {
    NodeConfig {
        l2tp: L2tpConfig {
            host_name: "lac".into(),
            failover: failover.then_some(FailoverConfig {
                control: true,
                data: true,
                recovery_time_ms: 10_000,
            }),
            ..L2tpConfig::default()
        },
        ppp: Arc::new(PppConfig::default()),
        credentials: Arc::new(MemoryCredentials::new()),
        pool: None,
        attachment_circuits: Default::default(),
        random: Random::from_os().expect("entropy"),
    }
}

/// A LAC: `node` driven on a UDP socket bound to an ephemeral loopback port, its events to
/// the receiver. The driver's task ends when it is aborted or the handle dropped.
pub fn spawn_lac(
    node: Node,
) -> (
    Handle,
    UnboundedReceiver<NodeEvent>,
    tokio::task::JoinHandle<Node>,
) {
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let socket = L2tpSocket::bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let (handle, task) = Driver::new(node, vec![socket])
        .expect("driver")
        .with_events(tx)
        .spawn();
    (handle, events, task)
}

/// `user0`/`pw0` … `user{n-1}`/`pw{n-1}`.
pub fn users(n: usize) -> MemoryCredentials {
    let mut c = MemoryCredentials::new();
    for i in 0..n {
        c.insert(
            format!("user{i}").as_bytes(),
            format!("pw{i}").as_bytes(),
            None,
        );
    }
    c
}

/// Every datagram of a capture is L2TP and valid for `l2xdp-decode`'s decoder, and tshark
/// dissects it with no malformed mark or expert error (L2TP decoded on `ports` too). The
/// capture is removed when it passes.
pub fn check_capture(path: &Path, prefs: &[&str], ports: &[u16]) {
    let records =
        l2xdp_wire::pcap::read_all(std::fs::File::open(path).expect("capture")).expect("pcap");
    assert!(!records.is_empty(), "something was captured");
    let mut d = Decoder::new(DecodeOptions {
        udp_ports: ports.to_vec(),
        ..DecodeOptions::default()
    });
    for (i, r) in records.iter().enumerate() {
        let rep = d.decode(i + 1, r).expect("every captured datagram is L2TP");
        assert!(rep.valid, "{}: {:?}", path.display(), rep.reason);
    }
    crate::tshark::assert_clean(path, prefs, ports);
    let _ = std::fs::remove_file(path);
}
