//! Hostile input found by the state-machine fuzzer (`controlplane/fuzz`), against `l2xdpd` as
//! a process on loopback (memory fast path): a half-open control connection — the SCCRP
//! acknowledged with a ZLB, the SCCCN never sent — held a tunnel for good (no timer ran in
//! wait-ctl-conn once nothing was in flight), and with the limit reached every LAC was
//! refused from then on (then `max_tunnels`; half-open tunnels now have their own limit,
//! `max_half_open`, and one whose peer acknowledged our SCCRP is never evicted to make room).
//! Each case asserts the exact answer.
//!
//! Cases:
//! 1. the half-open tunnel holds the only half-open slot: a second SCCRQ is answered StopCCN,
//!    Result Code 2 (general error), Error Code 4 (no resources) (RFC 2661 §4.4.2);
//! 2. one retransmission cycle after the ZLB the half-open tunnel is gone: the next SCCRQ is
//!    answered with an SCCRP carrying an Assigned Tunnel ID.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use l2xdp_lab::cp::l2xdpd::{self, free_udp_port, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use l2xdp_wire::l2tp::avp::Avp;
use l2xdp_wire::l2tp::header::{ControlHeader, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};

/// Bounds a hung run only.
const LIMIT: Duration = Duration::from_secs(60);

/// l2xdpd with room for one half-open tunnel and short retransmission timers (a cycle of 200 + 400 +
/// 800 ms: a half-open tunnel is given up well within the test's patience; the cap stays at
/// RFC 2661 §5.8's 8 s minimum, never reached).
fn start(dir: &Path, port: u16) -> L2xdpd {
    let base = r#"[l2tp]
host_name = "lns-under-test"

[l2tp.limits]
max_half_open = 1

[l2tp.retransmit]
initial_timeout_ms = 200
max_timeout_ms = 8000
max_retries = 2

[ppp]
auth = ["chap"]

[ppp.ipcp]
local_address = "100.64.0.1"
pool = ["100.64.0.0/24"]
"#;
    let files = l2xdpd::write_config(
        dir,
        Path::new("base.toml"),
        base,
        Placement::memory(SocketAddr::from(([127, 0, 0, 1], port))),
        1,
    )
    .expect("config");
    L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        None,
    )
}

fn header(tunnel_id: u32, ns: u16, nr: u16) -> ControlHeader {
    ControlHeader {
        version: Version::V2,
        tunnel_id,
        session_id: 0,
        ns,
        nr,
    }
}

fn sccrq(peer_tunnel: u16) -> Vec<u8> {
    ControlMessage::build(
        header(0, 0, 0),
        MessageType::Sccrq,
        vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::HostName(b"hostile".to_vec()),
            Avp::FramingCapabilities(3),
            Avp::AssignedTunnelId(peer_tunnel),
        ],
    )
    .to_bytes(None)
    .expect("SCCRQ")
}

/// The next control message from the daemon (ZLBs skipped).
fn answer(sock: &UdpSocket) -> ControlMessage {
    let mut buf = [0u8; 2048];
    let end = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < end, "no answer from l2xdpd");
        let n = sock.recv(&mut buf).expect("an answer from l2xdpd");
        let m = ControlMessage::parse(&buf[..n], &ParseContext::default())
            .expect("l2xdpd's answer parses");
        if !m.is_zlb() {
            return m;
        }
    }
}

fn lac(daemon: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.connect(daemon).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s
}

#[test]
fn half_open_tunnel_is_given_up_after_a_retransmission_cycle() {
    let dir = Scratch::plain("hostile-fuzz");
    let port = free_udp_port().expect("a free port");
    let _daemon = start(&dir.dir, port);
    let daemon = SocketAddr::from(([127, 0, 0, 1], port));

    // The half-open peer: SCCRQ, the SCCRP acknowledged, then silence.
    let half = lac(daemon);
    half.send(&sccrq(11)).expect("send");
    let sccrp = answer(&half);
    assert_eq!(sccrp.message_type(), Some(MessageType::Sccrp));
    let ours = sccrp.assigned_tunnel_id().expect("Assigned Tunnel ID");
    let zlb = ControlMessage::zlb(header(ours, 1, 1))
        .to_bytes(None)
        .expect("ZLB");
    half.send(&zlb).expect("send");

    // Case 1: the only half-open slot is taken by a peer that acknowledged our SCCRP (so it
    // cannot be evicted to make room): StopCCN 2/4.
    let refused = lac(daemon);
    refused.send(&sccrq(12)).expect("send");
    let stop = answer(&refused);
    assert_eq!(stop.message_type(), Some(MessageType::StopCcn));
    let (result, error, _) = stop.result_code().expect("Result Code");
    assert_eq!((result, error), (2, Some(4)), "general error, no resources");

    // Case 2: once the half-open tunnel is given up (one retransmission cycle, 1.4 s, after
    // the ZLB), a real LAC gets its SCCRP. Before the fix this was StopCCN 2/4 forever.
    let end = Instant::now() + LIMIT;
    let mut tid = 100;
    loop {
        assert!(
            Instant::now() < end,
            "the half-open tunnel was never given up"
        );
        std::thread::sleep(Duration::from_millis(200));
        tid += 1;
        let real = lac(daemon);
        real.send(&sccrq(tid)).expect("send");
        let m = answer(&real);
        match m.message_type() {
            Some(MessageType::Sccrp) => {
                assert!(m.assigned_tunnel_id().is_some_and(|t| t != 0));
                break;
            }
            Some(MessageType::StopCcn) => {
                assert_eq!(m.result_code().map(|(r, e, _)| (r, e)), Some((2, Some(4))));
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
}
