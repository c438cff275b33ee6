//! Hostile and malformed L2TPv2 control messages sent to a real `l2xdpd` on loopback (memory
//! fast path) from a hand-written peer on a UDP socket; each case asserts the exact answer the
//! RFCs call for — the StopCCN or CDN with its Result and Error Codes, the acknowledgement, or a
//! silent drop seen in l2xdpd's `invalid` counters with nothing sent back. The cases
//! `controlplane/src/l2tp/tests_rfc.rs` covers between two registries (unknown vendor AVPs,
//! tunnel authentication with different secrets, a missing Challenge Response, limits, tie
//! breakers) are not repeated.
//!
//! Also here: CHAP Challenges captured from l2xdpd (what a subscriber sees) do not give away the
//! next ones — the SplitMix64 state-recovery attack on the generator l2xdpd used before, and the
//! "seed XOR link number" relation between links, both fail.
//!
//! Silence is shown without timing: after a drop the counter is read, then a valid SCCRQ from
//! the same socket is sent and the first datagram back must be its SCCRP (l2xdpd answers in
//! order, so an answer to the hostile datagram would have come first).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use l2xdp_controlplane::driver::Driver;
use l2xdp_controlplane::l2tp::{L2tpConfig, Peer};
use l2xdp_controlplane::node::{Node, NodeConfig};
use l2xdp_controlplane::ppp::{MemoryCredentials, PppConfig};
use l2xdp_controlplane::random::Random;
use l2xdp_controlplane::socket::L2tpSocket;
use l2xdp_dataplane::MemoryDataPlane;
use l2xdp_lab::cp::bring_up;
use l2xdp_lab::cp::l2xdpd::{self, ask, free_udp_port, status_when, L2xdpd, Placement};
use l2xdp_lab::scratch::Scratch;
use l2xdp_wire::l2tp::avp::Avp;
use l2xdp_wire::l2tp::header::{V2Packet, Version};
use l2xdp_wire::l2tp::message::{ControlMessage, MessageType, ParseContext};
use l2xdp_wire::ppp::{chap_md5_response, ChapBody, ChapPacket};
use serde_json::Value;

/// Bounds a hung run only; no assertion depends on it.
const LIMIT: Duration = Duration::from_secs(20);
const SECRET: &str = "hostile-s3cret";

// ---------------------------------------------------------------------------------------------
// The daemon

struct Lns {
    daemon: L2xdpd,
    addr: SocketAddr,
    sock: PathBuf,
    _dir: Scratch,
}

/// l2xdpd on loopback, CHAP for `user0`..`user5`; `extra` is added to its `[l2tp]` section.
fn lns(tag: &str, extra: &str) -> Lns {
    let dir = Scratch::plain(tag);
    let port = free_udp_port().expect("a free port");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let base = format!(
        "[l2tp]\nhost_name = \"lns-hostile\"\n{extra}\n[ppp]\nauth = [\"chap\"]\n\n\
         [ppp.ipcp]\nlocal_address = \"100.64.0.1\"\npool = [\"100.64.0.0/24\"]\n"
    );
    let files = l2xdpd::write_config(
        &dir.dir,
        Path::new("base.toml"),
        &base,
        Placement::memory(addr),
        6,
    )
    .expect("config");
    let daemon = L2xdpd::start(
        None,
        l2xdp_lab::workspace_binary("l2xdpd").as_path(),
        &files,
        None,
    );
    let sock = daemon.socket().to_path_buf();
    Lns {
        daemon,
        addr,
        sock,
        _dir: dir,
    }
}

impl Lns {
    fn status(&self) -> Value {
        let s = ask(&self.sock, r#"{"cmd":"status"}"#);
        assert_eq!(s["ok"], true, "{s}");
        s["data"].clone()
    }

    fn invalid(&self, key: &str) -> u64 {
        self.status()["l2tp"]["invalid"][key].as_u64().unwrap_or(0)
    }

    /// Waits until the `invalid` counter `key` reached `want`.
    fn wait_invalid(&self, key: &str, want: u64) {
        let s = status_when(&self.sock, LIMIT, Duration::from_millis(20), |d| {
            d["l2tp"]["invalid"][key].as_u64().unwrap_or(0) >= want
        });
        assert_eq!(
            s["data"]["l2tp"]["invalid"][key].as_u64().unwrap_or(0),
            want,
            "invalid[{key:?}]: {}",
            s["data"]["l2tp"]["invalid"]
        );
    }

    fn tunnels(&self) -> Vec<Value> {
        let t = ask(&self.sock, r#"{"cmd":"tunnels"}"#);
        t["data"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Lns {
    fn drop(&mut self) {
        let _ = self.daemon.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Building messages byte by byte

const M: bool = true;

/// An AVP: M bit, optional H bit, IETF attribute `attr`, `value`; the length is right.
fn avp(m: bool, attr: u16, value: &[u8]) -> Vec<u8> {
    avp_raw(m, false, 0, attr, value, None)
}

/// An AVP with every field chosen, its length field `len` (else the right one).
fn avp_raw(m: bool, h: bool, vendor: u16, attr: u16, value: &[u8], len: Option<u16>) -> Vec<u8> {
    let l = len.unwrap_or((6 + value.len()) as u16);
    let mut first = l & 0x03ff;
    if m {
        first |= 0x8000;
    }
    if h {
        first |= 0x4000;
    }
    let mut b = first.to_be_bytes().to_vec();
    b.extend_from_slice(&vendor.to_be_bytes());
    b.extend_from_slice(&attr.to_be_bytes());
    b.extend_from_slice(value);
    b
}

fn mt(t: u16) -> Vec<u8> {
    avp(M, 0, &t.to_be_bytes())
}

/// An L2TPv2 control message: header (T, L, S, version 2) and `avps`.
fn ctl(tid: u16, sid: u16, ns: u16, nr: u16, avps: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = avps.concat();
    let mut b = Vec::with_capacity(12 + body.len());
    b.extend_from_slice(&0xc802u16.to_be_bytes());
    b.extend_from_slice(&((12 + body.len()) as u16).to_be_bytes());
    for v in [tid, sid, ns, nr] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&body);
    b
}

/// The AVPs of a valid SCCRQ from tunnel `tid` (Message Type first).
fn sccrq_avps(tid: u16) -> Vec<Vec<u8>> {
    vec![
        mt(1),
        avp(M, 2, &[1, 0]),                  // Protocol Version 1.0
        avp(M, 7, b"hostile-lac"),           // Host Name
        avp(M, 3, &3u32.to_be_bytes()),      // Framing Capabilities
        avp(M, 9, &tid.to_be_bytes()),       // Assigned Tunnel ID
        avp(false, 10, &8u16.to_be_bytes()), // Receive Window Size
    ]
}

fn sccrq(tid: u16) -> Vec<u8> {
    ctl(0, 0, 0, 0, &sccrq_avps(tid))
}

/// `sccrq_avps(tid)` with the AVP of attribute `attr` removed.
fn sccrq_without(tid: u16, attr: u16) -> Vec<u8> {
    let avps: Vec<Vec<u8>> = sccrq_avps(tid)
        .into_iter()
        .filter(|a| u16::from_be_bytes([a[4], a[5]]) != attr)
        .collect();
    ctl(0, 0, 0, 0, &avps)
}

/// `sccrq_avps(tid)` and `extra` after them.
fn sccrq_with(tid: u16, extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut avps = sccrq_avps(tid);
    avps.extend(extra);
    ctl(0, 0, 0, 0, &avps)
}

fn parse(d: &[u8], secret: Option<&[u8]>) -> Option<ControlMessage> {
    ControlMessage::parse(d, &ParseContext { secret }).ok()
}

fn is_control(d: &[u8]) -> bool {
    d.first().is_some_and(|b| b & 0x80 != 0)
}

fn is_zlb(d: &[u8]) -> bool {
    is_control(d) && d.len() == 12
}

fn header_u16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

// ---------------------------------------------------------------------------------------------
// The peer

/// A hand-written LAC on its own UDP socket (a fresh source port: a fresh peer).
struct Lac {
    sock: UdpSocket,
    lns: SocketAddr,
    /// Our tunnel ID, the LNS's, our next Ns, the next Ns we expect.
    tid: u16,
    peer_tid: u16,
    ns: u16,
    nr: u16,
}

impl Lac {
    fn new(lns: &Lns, tid: u16) -> Lac {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(LIMIT)).expect("timeout");
        Lac {
            sock,
            lns: lns.addr,
            tid,
            peer_tid: 0,
            ns: 0,
            nr: 0,
        }
    }

    fn send(&self, d: &[u8]) {
        self.sock.send_to(d, self.lns).expect("send");
    }

    /// The next datagram (panics when none comes within [`LIMIT`]: a hung run).
    fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let (n, from) = self
            .sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("nothing from l2xdpd: {e}"));
        assert_eq!(from, self.lns);
        buf.truncate(n);
        buf
    }

    /// The next control message that is not a ZLB (data messages skipped).
    fn recv_message(&mut self, secret: Option<&[u8]>) -> ControlMessage {
        loop {
            let d = self.recv();
            if !is_control(d.as_slice()) || is_zlb(&d) {
                continue;
            }
            let m = parse(&d, secret).unwrap_or_else(|| panic!("l2xdpd sent garbage: {d:02x?}"));
            self.nr = m.header.ns.wrapping_add(1);
            return m;
        }
    }

    /// Sends `avps` as our next message in the tunnel.
    fn send_in_tunnel(&mut self, sid: u16, avps: &[Vec<u8>]) {
        let d = ctl(self.peer_tid, sid, self.ns, self.nr, avps);
        self.ns = self.ns.wrapping_add(1);
        self.send(&d);
    }

    /// SCCRQ, SCCRP, SCCCN: an established tunnel.
    fn establish(lns: &Lns, tid: u16) -> Lac {
        Self::establish_with(lns, tid, None)
    }

    /// [`Lac::establish`] with an LNS that has `secret`: its Challenge is answered in the
    /// SCCCN (RFC 2661 §5.1.1; we send none).
    fn establish_with(lns: &Lns, tid: u16, secret: Option<&[u8]>) -> Lac {
        let mut l = Lac::new(lns, tid);
        l.send(&sccrq(tid));
        l.ns = 1;
        let rp = l.recv_message(secret);
        assert_eq!(rp.message_type(), Some(MessageType::Sccrp), "{rp:?}");
        assert_eq!(rp.header.tunnel_id, u32::from(l.tid));
        l.peer_tid = rp.assigned_tunnel_id().expect("Assigned Tunnel ID") as u16;
        let mut scccn = vec![mt(3)];
        if let Some(secret) = secret {
            let ch = rp
                .avps
                .iter()
                .find_map(|a| match &a.avp {
                    Avp::Challenge(c) => Some(c.clone()),
                    _ => None,
                })
                .expect("the LNS challenges us");
            scccn.push(avp(M, 13, &chap_md5_response(3, secret, &ch)));
        }
        l.send_in_tunnel(0, &scccn);
        l
    }

    /// ICRQ, ICRP, ICCN: a session (our ID `sid`); returns the LNS's session ID.
    fn open_session(&mut self, sid: u16) -> u16 {
        self.send_in_tunnel(
            0,
            &[
                mt(10),
                avp(M, 14, &sid.to_be_bytes()),
                avp(M, 15, &u32::from(sid).to_be_bytes()),
            ],
        );
        let rp = self.recv_message(None);
        assert_eq!(rp.message_type(), Some(MessageType::Icrp), "{rp:?}");
        let peer_sid = rp.assigned_session_id().expect("Assigned Session ID") as u16;
        self.send_in_tunnel(
            peer_sid,
            &[
                mt(12),
                avp(M, 24, &10_000_000u32.to_be_bytes()),
                avp(M, 19, &1u32.to_be_bytes()),
            ],
        );
        peer_sid
    }
}

/// A Result Code AVP's (result, error).
type Answer = (u16, Option<u16>);

/// The Result Code of a StopCCN or CDN.
fn result_code(m: &ControlMessage) -> Answer {
    let (r, e, _) = m.result_code().expect("a Result Code AVP");
    (r, e)
}

/// `d` sent to a fresh peer is answered by a StopCCN with `(result, error)`, addressed to the
/// tunnel ID the SCCRQ assigned (`tid`).
fn assert_stopccn(lns: &Lns, case: &str, tid: u16, d: &[u8], want: Answer) {
    eprintln!("case: {case}");
    let mut l = Lac::new(lns, tid);
    l.send(d);
    let m = l.recv_message(None);
    assert_eq!(
        m.message_type(),
        Some(MessageType::StopCcn),
        "{case}: {m:?}"
    );
    assert_eq!(result_code(&m), want, "{case}: {m:?}");
    assert_eq!(m.header.tunnel_id, u32::from(tid), "{case}");
}

/// `d` sent to a fresh peer is dropped: the `invalid` counter `key` counts it, and nothing
/// comes back before the SCCRP to a valid SCCRQ sent after it.
fn assert_dropped(lns: &Lns, case: &str, d: &[u8], key: &str) {
    eprintln!("case: {case}");
    let before = lns.invalid(key);
    let tunnels = lns.tunnels().len();
    let l = Lac::new(lns, 7);
    l.send(d);
    lns.wait_invalid(key, before + 1);
    // No tunnel kept (an earlier probe's closing tunnel may have gone meanwhile).
    assert!(lns.tunnels().len() <= tunnels, "{case}: no tunnel kept");
    l.send(&sccrq(4242));
    let first = l.recv();
    let m = parse(&first, None).unwrap_or_else(|| panic!("{case}: {first:02x?}"));
    assert_eq!(
        (m.message_type(), m.header.tunnel_id),
        (Some(MessageType::Sccrp), 4242),
        "{case}: the first answer is the probe's SCCRP"
    );
    // Close the probe's tunnel: no half-open tunnels pile up from this source.
    let their = m.assigned_tunnel_id().expect("Assigned Tunnel ID") as u16;
    l.send(&ctl(
        their,
        0,
        1,
        m.header.ns.wrapping_add(1),
        &[mt(4), avp(M, 9, &4242u16.to_be_bytes()), avp(M, 1, &[0, 1])],
    ));
}

// ---------------------------------------------------------------------------------------------
// Datagrams to tunnel 0 that are dropped

/// RFC 2661 §3.1: a header that is not an L2TPv2 control header, or lies about its length, is
/// discarded (RFC 3931 §7.1: "A control message with a malformed header MUST be discarded");
/// only an SCCRQ may open a tunnel (§5.1); an SCCRQ whose header carries a Session ID is
/// malformed (§3.1 p. 43: the Session ID MUST be 0 until assigned) and discarded — not
/// answered with an SCCRP as before.
#[test]
fn malformed_headers_and_non_sccrqs_to_tunnel_0_are_dropped() {
    let mut lns = lns("hostile-drop", "");
    let bad_header = "malformed or data header";
    let good = sccrq(7);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("3 bytes", vec![0xc8, 0x02, 0x00], bad_header),
        ("empty datagram", vec![], bad_header),
        (
            "version 1 (L2F)",
            {
                let mut d = good.clone();
                d[1] = 0x01;
                d
            },
            bad_header,
        ),
        (
            "version 4",
            {
                let mut d = good.clone();
                d[1] = 0x04;
                d
            },
            bad_header,
        ),
        (
            "length beyond the datagram",
            {
                let mut d = good.clone();
                let l = (d.len() + 40) as u16;
                d[2..4].copy_from_slice(&l.to_be_bytes());
                d
            },
            bad_header,
        ),
        (
            "length shorter than the header",
            {
                let mut d = good.clone();
                d[2..4].copy_from_slice(&8u16.to_be_bytes());
                d
            },
            bad_header,
        ),
        (
            "control without the L bit",
            {
                let mut d = good.clone();
                d[0] &= !0x40;
                d
            },
            bad_header,
        ),
        (
            "control without the S bit",
            {
                let mut d = good.clone();
                d[0] &= !0x08;
                d
            },
            bad_header,
        ),
        (
            "HELLO to tunnel 0",
            ctl(0, 0, 0, 0, &[mt(6)]),
            "non-SCCRQ to tunnel 0",
        ),
        (
            "ICRQ to tunnel 0",
            ctl(
                0,
                0,
                0,
                0,
                &[mt(10), avp(M, 14, &[0, 1]), avp(M, 15, &[0, 0, 0, 1])],
            ),
            "non-SCCRQ to tunnel 0",
        ),
        (
            "unknown mandatory Message Type to tunnel 0",
            ctl(0, 0, 0, 0, &[mt(99)]),
            "non-SCCRQ to tunnel 0",
        ),
        (
            "a ZLB to tunnel 0",
            ctl(0, 0, 0, 0, &[]),
            "non-SCCRQ to tunnel 0",
        ),
    ];
    cases.push((
        "SCCRQ with a non-zero Session ID",
        ctl(0, 77, 0, 0, &sccrq_avps(7)),
        "non-zero Session ID in a tunnel setup message",
    ));
    for (case, d, key) in &cases {
        assert_dropped(&lns, case, d, key);
    }
    assert!(lns.daemon.exited().is_none());
}

// ---------------------------------------------------------------------------------------------
// SCCRQs answered with a StopCCN

/// RFC 2661 §4.2 and §4.4.1, RFC 3931 §7.1: a malformed SCCRQ clears the control connection it
/// would open, with Result Code 2 (General error) and the Error Code saying why — 2 for a
/// wrong length, 3 for a missing AVP or a value out of range, 8 for an unknown AVP with the M
/// bit; a Protocol Version other than 1.0 gets Result Code 5 with the highest version we speak
/// (§4.4.3: 0x0100). Unknown AVPs without the M bit are ignored (§4.2).
#[test]
fn malformed_sccrqs_get_the_stopccn_the_rfc_names() {
    let lns = lns("hostile-sccrq", "");
    let tid = 31;
    let cases: Vec<(&str, Vec<u8>, Answer)> = vec![
        ("no Host Name", sccrq_without(tid, 7), (2, Some(3))),
        ("no Protocol Version", sccrq_without(tid, 2), (2, Some(3))),
        (
            "no Framing Capabilities",
            sccrq_without(tid, 3),
            (2, Some(3)),
        ),
        (
            "Protocol Version 2.0",
            {
                let mut a = sccrq_avps(tid);
                a[1] = avp(M, 2, &[2, 0]);
                ctl(0, 0, 0, 0, &a)
            },
            (5, Some(0x0100)),
        ),
        (
            "Assigned Tunnel ID 0 (RFC 2661 §4.4.3: non-zero)",
            {
                let mut a = sccrq_avps(tid);
                a[4] = avp(M, 9, &[0, 0]);
                ctl(0, 0, 0, 0, &a)
            },
            (2, Some(3)),
        ),
        (
            "Receive Window Size 0",
            {
                let mut a = sccrq_avps(tid);
                a[5] = avp(false, 10, &[0, 0]);
                ctl(0, 0, 0, 0, &a)
            },
            (2, Some(3)),
        ),
        (
            "unknown IETF attribute 200 with the M bit",
            sccrq_with(tid, vec![avp(M, 200, b"x")]),
            (2, Some(8)),
        ),
        // No secret here: a hidden AVP cannot be unhidden (RFC 2661 §4.3), with M it is
        // treated as unrecognised (§4.2).
        (
            "hidden AVP at an LNS without a secret",
            sccrq_with(
                tid,
                vec![
                    avp(M, 36, &[9; 16]),
                    avp_raw(M, true, 0, 8, &[0x11; 18], None),
                ],
            ),
            (2, Some(8)),
        ),
    ];
    for (case, d, want) in &cases {
        // "Assigned Tunnel ID 0" has no tunnel to answer to: the StopCCN goes to tunnel 0.
        let to = if case.starts_with("Assigned Tunnel ID 0") {
            0
        } else {
            tid
        };
        assert_stopccn(&lns, case, to, d, *want);
    }
    // An unknown AVP without the M bit is ignored: the SCCRQ is answered with an SCCRP.
    let mut l = Lac::new(&lns, 33);
    l.send(&sccrq_with(33, vec![avp(false, 200, b"ignore me")]));
    let m = l.recv_message(None);
    assert_eq!(m.message_type(), Some(MessageType::Sccrp), "{m:?}");
    // An SCCRQ whose AVPs cannot be parsed — broken framing (RFC 2661 §4.1: Length at
    // least 6), a malformed value, a hidden AVP with no Random Vector before it (§4.3), the
    // first AVP not the Message Type (§4.4.1) — opens nothing: there is no control connection
    // to clear yet and its Assigned Tunnel ID cannot be trusted, so it is dropped and counted
    // (answering would reflect traffic to a spoofed source).
    let drops: Vec<(&str, Vec<u8>)> = vec![
        (
            "AVP length 5 (< 6)",
            sccrq_with(tid, vec![avp_raw(M, false, 0, 8, &[0; 4], Some(5))]),
        ),
        (
            "AVP length past the message",
            sccrq_with(tid, vec![avp_raw(M, false, 0, 8, &[0; 4], Some(64))]),
        ),
        (
            "Assigned Tunnel ID of 3 octets",
            sccrq_with(tid, vec![avp(M, 9, &[0, 1, 0])]),
        ),
    ];
    for (case, d) in &drops {
        assert_dropped(&lns, case, d, "malformed message to tunnel 0");
    }
    // Without a Message Type first it is no SCCRQ at all.
    assert_dropped(
        &lns,
        "Host Name before the Message Type",
        &ctl(0, 0, 0, 0, &[avp(M, 7, b"x"), mt(1)]),
        "non-SCCRQ to tunnel 0",
    );
}

// ---------------------------------------------------------------------------------------------
// Established tunnels

/// RFC 2661 §5.7: "The receiver of a StopCCN MUST send a ZLB ACK ... and maintain enough ...
/// state to properly accept StopCCN retransmissions": a StopCCN without its mandatory Result
/// Code (§6.4) still tears the tunnel down — it is acknowledged and never answered with a
/// StopCCN of ours (before: StopCCN 2/3 in answer to the peer's teardown).
#[test]
fn stopccn_without_result_code_is_acknowledged_not_answered() {
    let lns = lns("hostile-stopccn", "");
    let key = "invalid StopCCN (tunnel closed, not answered)";
    let before = lns.invalid(key);
    let mut l = Lac::establish(&lns, 41);
    // Wait for the SCCCN's acknowledgement so that the next datagram answers the StopCCN.
    let ack = l.recv();
    assert!(is_zlb(&ack), "{ack:02x?}");
    l.send_in_tunnel(0, &[mt(4), avp(M, 9, &41u16.to_be_bytes())]);
    let d = l.recv();
    assert!(
        is_zlb(&d),
        "a ZLB, not a StopCCN: {d:02x?} {:?}",
        parse(&d, None)
    );
    assert_eq!(header_u16(&d, 4), 41, "to our tunnel");
    assert_eq!(header_u16(&d, 10), l.ns, "acknowledges the StopCCN (Nr)");
    lns.wait_invalid(key, before + 1);
    let t = lns.tunnels();
    assert!(
        t.iter().all(|t| t["state"] != "Established"),
        "the tunnel is closing: {t:?}"
    );
}

/// RFC 2661 §5.6: a CDN is answered by the ZLB ACK only. One without its mandatory Result
/// Code (§6.12) still clears the session it names — no CDN back for a session the peer has
/// already cleaned up (before: CDN 2/3 in answer).
#[test]
fn cdn_without_result_code_clears_the_session_unanswered() {
    let lns = lns("hostile-cdn", "");
    let key = "invalid CDN (session cleared, not answered)";
    let before = lns.invalid(key);
    let mut l = Lac::establish(&lns, 45);
    let peer_sid = l.open_session(3);
    let s = status_when(&lns.sock, LIMIT, Duration::from_millis(20), |d| {
        d["sessions"] == 1
    });
    assert_eq!(s["data"]["sessions"], 1, "{s}");
    l.send_in_tunnel(peer_sid, &[mt(14), avp(M, 14, &3u16.to_be_bytes())]);
    // Every control datagram up to the one acknowledging the CDN is a ZLB (PPP's data
    // messages skipped).
    loop {
        let d = l.recv();
        if !is_control(&d) {
            continue;
        }
        assert!(is_zlb(&d), "a ZLB, not a CDN: {:?}", parse(&d, None));
        if header_u16(&d, 10) == l.ns {
            break;
        }
    }
    lns.wait_invalid(key, before + 1);
    let s = status_when(&lns.sock, LIMIT, Duration::from_millis(20), |d| {
        d["sessions"] == 0
    });
    assert_eq!(s["data"]["sessions"], 0, "{s}");
    assert_eq!(s["data"]["l2tp"]["messages_out"]["CDN"], Value::Null, "{s}");
    assert_eq!(lns.tunnels().len(), 1, "the tunnel stays");
}

/// Inside an established tunnel: an unknown Message Type with the M bit clears the tunnel
/// (RFC 2661 §4.4.1, StopCCN 2/3); one without it is ignored but acknowledged; a duplicate
/// (an Ns already received) is acknowledged again (§5.8); a message far outside the receive
/// window is dropped without being delivered (§5.8); a flood of ZLBs draws nothing; an ICRQ
/// without its Call Serial Number gets a CDN 2/3 to the Assigned Session ID it names
/// (§4.4.4, §6.6); an ICRQ without an Assigned Session ID cannot be answered and is dropped.
#[test]
fn hostile_messages_inside_an_established_tunnel() {
    let mut lns = lns("hostile-tunnel", "");

    // ICRQ without Call Serial Number: CDN 2/3 to its session.
    let mut l = Lac::establish(&lns, 51);
    l.send_in_tunnel(0, &[mt(10), avp(M, 14, &9u16.to_be_bytes())]);
    let m = l.recv_message(None);
    assert_eq!(m.message_type(), Some(MessageType::Cdn), "{m:?}");
    assert_eq!(m.header.session_id, 9, "{m:?}");
    assert_eq!(result_code(&m), (2, Some(3)), "{m:?}");

    // ICRQ without an Assigned Session ID: nobody to send a CDN to.
    let key = "Cdn result 2 error 3";
    let before = lns.invalid(key);
    l.send_in_tunnel(0, &[mt(10), avp(M, 15, &1u32.to_be_bytes())]);
    lns.wait_invalid(key, before + 1);

    // An unknown Message Type without the M bit: ignored, the tunnel stays.
    l.send_in_tunnel(0, &[avp(false, 0, &99u16.to_be_bytes())]);
    // A duplicate: the ICRQ of Ns 2 again.
    let dup = ctl(
        l.peer_tid,
        0,
        2,
        l.nr,
        &[mt(10), avp(M, 14, &9u16.to_be_bytes())],
    );
    l.send(&dup);
    // Far outside the window: not delivered (an ICRQ that would otherwise be answered).
    let far = ctl(
        l.peer_tid,
        0,
        l.ns.wrapping_add(20_000),
        l.nr,
        &[
            mt(10),
            avp(M, 14, &10u16.to_be_bytes()),
            avp(M, 15, &[0, 0, 0, 2]),
        ],
    );
    l.send(&far);
    // 200 ZLBs acknowledging what we got.
    for _ in 0..200 {
        l.send(&ctl(l.peer_tid, 0, l.ns, l.nr, &[]));
    }
    // A valid ICRQ now: the next message from l2xdpd is its ICRP, nothing came before it
    // but acknowledgements.
    let peer_sid = l.open_session(11);
    assert_ne!(peer_sid, 0);
    let t = lns.tunnels();
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["state"], "Established", "{t:?}");
    let s = lns.status();
    // Delivered: only the valid ICRQ (the invalid ones are counted in `invalid`, the
    // duplicate and the far one never reach the tunnel); one CDN, for the first ICRQ only.
    assert_eq!(s["l2tp"]["messages_in"]["ICRQ"], 1, "{s}");
    assert_eq!(
        s["l2tp"]["invalid"]["Cdn result 2 error 3"],
        before + 1,
        "{s}"
    );
    assert_eq!(s["l2tp"]["messages_out"]["CDN"], 1, "{s}");
    assert_eq!(s["l2tp"]["messages_out"]["ICRP"], 1, "{s}");
    assert_eq!(s["l2tp"]["messages_in"]["ZLB"], 200, "{s}");

    // An unknown Message Type with the M bit: the tunnel is cleared, StopCCN 2/3.
    let mut l2 = Lac::establish(&lns, 52);
    l2.send_in_tunnel(0, &[mt(99)]);
    let m = l2.recv_message(None);
    assert_eq!(m.message_type(), Some(MessageType::StopCcn), "{m:?}");
    assert_eq!(result_code(&m), (2, Some(3)), "{m:?}");
    assert_eq!(m.header.tunnel_id, 52);

    // Broken AVP framing inside a tunnel (Length 5 < 6, RFC 2661 §4.1): StopCCN 2/2.
    let mut l4 = Lac::establish(&lns, 54);
    l4.send_in_tunnel(0, &[mt(6), avp_raw(M, false, 0, 8, &[0; 4], Some(5))]);
    let m = l4.recv_message(None);
    assert_eq!(m.message_type(), Some(MessageType::StopCcn), "{m:?}");
    assert_eq!(result_code(&m), (2, Some(2)), "{m:?}");

    // A message to a tunnel ID nobody has is dropped and counted.
    let key = "unknown tunnel";
    let before = lns.invalid(key);
    let l3 = Lac::new(&lns, 53);
    l3.send(&ctl(0xfffe, 0, 0, 0, &[mt(6)]));
    lns.wait_invalid(key, before + 1);
    assert!(lns.daemon.exited().is_none());
}

/// With a shared secret (RFC 2661 §5.1.1): a Challenge Response of the wrong value in the
/// SCCCN is refused with StopCCN 4 (Not authorized); a hidden AVP whose Random Vector is
/// missing cannot be unhidden: an SCCRQ carrying one is dropped, in a tunnel it clears the
/// tunnel (2/3, §4.3); an SCCCN with a non-zero Session ID is discarded like the SCCRQ (§3.1).
#[test]
fn tunnel_authentication_and_hidden_avps_with_a_secret() {
    let lns = lns("hostile-secret", &format!("secret = \"{SECRET}\"\n"));
    let secret = SECRET.as_bytes();

    // A wrong Challenge Response.
    let mut l = Lac::new(&lns, 61);
    let mut a = sccrq_avps(61);
    a.push(avp(M, 11, &[7; 16])); // Challenge
    l.send(&ctl(0, 0, 0, 0, &a));
    l.ns = 1;
    let rp = l.recv_message(Some(secret));
    assert_eq!(rp.message_type(), Some(MessageType::Sccrp), "{rp:?}");
    l.peer_tid = rp.assigned_tunnel_id().expect("tid") as u16;
    l.send_in_tunnel(0, &[mt(3), avp(M, 13, &[0x42; 16])]);
    let m = l.recv_message(Some(secret));
    assert_eq!(m.message_type(), Some(MessageType::StopCcn), "{m:?}");
    assert_eq!(result_code(&m).0, 4, "{m:?}");

    // An SCCCN with a non-zero Session ID is discarded: the SCCRP is retransmitted, no
    // StopCCN, no ZLB for the SCCCN.
    let key = "non-zero Session ID in a tunnel setup message";
    let before = lns.invalid(key);
    let mut l = Lac::new(&lns, 62);
    l.send(&sccrq(62));
    let rp = l.recv_message(Some(secret));
    l.peer_tid = rp.assigned_tunnel_id().expect("tid") as u16;
    l.ns = 1;
    let d = ctl(l.peer_tid, 5, 1, l.nr, &[mt(3)]);
    l.send(&d);
    lns.wait_invalid(key, before + 1);

    // An SCCRQ with a hidden AVP and no Random Vector before it cannot be parsed: dropped
    // (nothing to clear yet).
    let key = "malformed message to tunnel 0";
    let before = lns.invalid(key);
    let l0 = Lac::new(&lns, 64);
    l0.send(&sccrq_with(
        64,
        vec![avp_raw(M, true, 0, 8, &[0x11; 18], None)],
    ));
    lns.wait_invalid(key, before + 1);

    // In an established tunnel, a hidden AVP with no Random Vector before it (RFC 2661 §4.3:
    // the Random Vector "MUST precede the first AVP with the H bit set") is a malformed AVP;
    // with the M bit that clears the tunnel (RFC 3931 §7.1): StopCCN 2/3 (a value that cannot
    // be read, where 8 is for an AVP not recognised at all).
    let mut l = Lac::establish_with(&lns, 63, Some(secret));
    l.send_in_tunnel(0, &[mt(6), avp_raw(M, true, 0, 22, &[0x5a; 20], None)]);
    let m = l.recv_message(Some(secret));
    assert_eq!(m.message_type(), Some(MessageType::StopCcn), "{m:?}");
    assert_eq!(result_code(&m), (2, Some(3)), "{m:?}");
}

// ---------------------------------------------------------------------------------------------
// Unpredictable CHAP Challenges

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The inverse of an odd number modulo 2^64 (Newton's iteration).
fn inverse_mul(a: u64) -> u64 {
    let mut x = a;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

/// Inverts `y = x ^ (x >> s)`.
fn unxorshift(y: u64, s: u32) -> u64 {
    let mut x = y;
    let mut k = s;
    while k < 64 {
        x ^= y >> k;
        k += s;
    }
    x
}

/// The SplitMix64 state that produced `out`: its output function is a bijection.
fn splitmix_state(out: u64) -> u64 {
    let z = unxorshift(out, 31).wrapping_mul(inverse_mul(0x94d0_49bb_1331_11eb));
    let z = unxorshift(z, 27).wrapping_mul(inverse_mul(0xbf58_476d_1ce4_e5b9));
    unxorshift(z, 30)
}

/// The two 64-bit halves of a 16-octet challenge.
fn halves(c: &[u8]) -> (u64, u64) {
    let a = u64::from_be_bytes(c[..8].try_into().expect("8 octets"));
    let b = u64::from_be_bytes(c[8..16].try_into().expect("8 octets"));
    (a, b)
}

/// Attack 1: the first half of a challenge, read as a SplitMix64 output, gives the state; the
/// second half is the next output. Whether it predicts `c`'s second half.
fn predicts_second_half(c: &[u8]) -> bool {
    let (a, b) = halves(c);
    splitmix_mix(splitmix_state(a).wrapping_add(GAMMA)) == b
}

/// Attack 2: the old node seeded link L with `seed ^ L * GAMMA` and drew the challenge after
/// a fixed number `j` of outputs; from one link's challenge (any j < 64, L ≤ 16) the state of
/// another link's generator at its challenge. Whether `a` predicts `b` that way.
fn predicts_other_link(a: &[u8], b: &[u8]) -> bool {
    let sa = splitmix_state(halves(a).0);
    let sb = splitmix_state(halves(b).0);
    (0..64u64).any(|j| {
        let back = j.wrapping_mul(GAMMA);
        (1..=16u64).any(|la| {
            let seed = sa.wrapping_sub(back) ^ la.wrapping_mul(GAMMA);
            (1..=16u64)
                .any(|lb| la != lb && (seed ^ lb.wrapping_mul(GAMMA)).wrapping_add(back) == sb)
        })
    })
}

/// The old generator, for checking that the attacks above work: link `l` of a node seeded
/// `seed`, its challenge after `j` draws (two outputs, big-endian).
fn old_challenge(seed: u64, l: u64, j: u64) -> Vec<u8> {
    let mut state = seed ^ l.wrapping_mul(GAMMA);
    let mut next = || {
        state = state.wrapping_add(GAMMA);
        splitmix_mix(state)
    };
    for _ in 0..j {
        next();
    }
    let mut c = next().to_be_bytes().to_vec();
    c.extend_from_slice(&next().to_be_bytes());
    c
}

/// The CHAP Challenge Values in the PPP frames of L2TPv2 data messages among `datagrams`.
fn chap_challenges(datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
    datagrams
        .iter()
        .filter(|d| !is_control(d))
        .filter_map(|d| {
            let p = V2Packet::new_checked(&d[..]).ok()?;
            let mut f = p.payload();
            if f.starts_with(&[0xff, 0x03]) {
                f = &f[2..];
            }
            let rest = f.strip_prefix(&[0xc2, 0x23])?;
            match ChapPacket::parse(rest).ok()?.body {
                ChapBody::Challenge { value, .. } => Some(value),
                _ => None,
            }
        })
        .collect()
}

/// RFC 1994 §2.3: each CHAP Challenge "SHOULD be unique and unpredictable". Six subscribers
/// log in through a relay that records what l2xdpd sends them; from their challenges neither
/// attack that broke the old generator (SplitMix64 seeded once per process, link seeds the
/// seed XOR the link number: from two challenges the next 98 and the next session's were
/// predicted) predicts anything. The attacks are checked against the old generator first, so
/// the test cannot pass by attacking wrongly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chap_challenges_are_not_predictable() {
    // The attacks break the old generator.
    let seed = 0x0123_4567_89ab_cdef;
    let old: Vec<Vec<u8>> = (1..=6).map(|l| old_challenge(seed, l, 9)).collect();
    assert!(old.iter().all(|c| predicts_second_half(c)));
    assert!(predicts_other_link(&old[0], &old[1]));
    assert!(predicts_other_link(&old[2], &old[5]));

    let lns = lns("hostile-chap", "");
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let back = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    back.connect(lns.addr).await.expect("connect");
    let front_addr = front.local_addr().expect("addr");
    let captured = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let cap = captured.clone();
    let relay = tokio::spawn(async move {
        let mut lac: Option<SocketAddr> = None;
        let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    lac = Some(from);
                    let _ = back.send(&a[..n]).await;
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    cap.lock().expect("lock").push(b[..n].to_vec());
                    if let Some(to) = lac {
                        let _ = front.send_to(&b[..n], to).await;
                    }
                }
            }
        }
    });

    let node = Node::new(
        NodeConfig {
            l2tp: L2tpConfig::default(),
            ppp: Arc::new(PppConfig::default()),
            credentials: Arc::new(MemoryCredentials::new()),
            pool: None,
            attachment_circuits: HashMap::new(),
            random: Random::from_os().expect("entropy"),
        },
        Box::new(MemoryDataPlane::new()),
    );
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (handle, task) = Driver::new(
        node,
        vec![L2tpSocket::bind_udp("127.0.0.1:0".parse().expect("addr")).expect("bind")],
    )
    .expect("driver")
    .with_events(tx)
    .spawn();
    bring_up(
        &handle,
        &mut events,
        LIMIT,
        Peer::udp(front_addr),
        Version::V2,
        2,
        3,
    )
    .await;
    relay.abort();
    task.abort();

    let challenges = chap_challenges(&captured.lock().expect("lock"));
    let mut distinct = challenges.clone();
    distinct.sort();
    distinct.dedup();
    // Retransmissions repeat a challenge; each of the 6 links has its own.
    assert_eq!(distinct.len(), 6, "{challenges:02x?}");
    assert!(distinct.iter().all(|c| c.len() == 16));
    let within: Vec<_> = distinct
        .iter()
        .filter(|c| predicts_second_half(c))
        .collect();
    assert!(within.is_empty(), "second halves predicted: {within:02x?}");
    for a in &distinct {
        for b in &distinct {
            assert!(
                a == b || !predicts_other_link(a, b),
                "{a:02x?} predicts {b:02x?}"
            );
        }
    }
}
