//! Every control message type of RFC 2661 §6, RFC 3931 §6 and RFC 4951 §4 as a golden byte
//! vector written from the RFC layouts (12-octet header with T, L, S set and the version; then the
//! AVPs, Message Type first), the message it parses to, and the emitter reproducing it; then the
//! validator's rules and property tests.

use l2xdp_wire::l2tp::avp::{Avp, AvpRepr, AvpType};
use l2xdp_wire::l2tp::message::{examples, ControlMessage, MessageType as M, ParseContext};
use l2xdp_wire::l2tp::validate::{validate, validate_bytes, Action, Violation};
use l2xdp_wire::l2tp::{
    ControlHeader,
    Version::{self, V2, V3},
};
use proptest::prelude::*;

mod l2tp_common;

fn h(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("ascii"), 16).expect("hex"))
        .collect()
}

fn hdr(version: Version, tunnel_id: u32, session_id: u16, ns: u16, nr: u16) -> ControlHeader {
    ControlHeader {
        version,
        tunnel_id,
        session_id,
        ns,
        nr,
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

const FC_ALL: Avp = Avp::FailoverCapability {
    control: true,
    data: true,
    recovery_time_ms: 1000,
};

/// (name, bytes, expected message).
fn goldens() -> Vec<(&'static str, Vec<u8>, ControlMessage)> {
    let pv = Avp::ProtocolVersion {
        version: 1,
        revision: 0,
    };
    let v3_ids = |l: u32, r: u32| vec![Avp::LocalSessionId(l), Avp::RemoteSessionId(r)];
    let cs = Avp::CircuitStatus {
        active: true,
        new: true,
    };
    vec![
        // ---------------- L2TPv2 (RFC 2661 §6) ----------------
        (
            "v2 SCCRQ",
            h("c802 0037 0000 0000 0000 0000
               8008 0000 0000 0001
               8008 0000 0002 0100
               8009 0000 0007 6c6163
               800a 0000 0003 00000003
               8008 0000 0009 0001"),
            ControlMessage::build(
                hdr(V2, 0, 0, 0, 0),
                M::Sccrq,
                vec![
                    pv.clone(),
                    Avp::HostName(b("lac")),
                    Avp::FramingCapabilities(3),
                    Avp::AssignedTunnelId(1),
                ],
            ),
        ),
        (
            "v2 SCCRQ (recovery, RFC 4951 §3.2.1)",
            h("c802 0055 0000 0000 0000 0000
               8008 0000 0000 0001
               8008 0000 0002 0100
               8009 0000 0007 6c6163
               800a 0000 0003 00000003
               8008 0000 0009 0001
               000e 0000 0005 0102030405060708
               8010 0000 004d 0000 0000 1234 0000 4321"),
            ControlMessage::build(
                hdr(V2, 0, 0, 0, 0),
                M::Sccrq,
                vec![
                    pv.clone(),
                    Avp::HostName(b("lac")),
                    Avp::FramingCapabilities(3),
                    Avp::AssignedTunnelId(1),
                    Avp::TieBreaker([1, 2, 3, 4, 5, 6, 7, 8]),
                    Avp::TunnelRecovery {
                        tunnel_id: 0x1234,
                        remote_tunnel_id: 0x4321,
                    },
                ],
            ),
        ),
        (
            "v2 SCCRP (Failover Capability)",
            h("c802 0043 0001 0000 0000 0001
               8008 0000 0000 0002
               8008 0000 0002 0100
               800a 0000 0003 00000003
               8009 0000 0007 6c6e73
               8008 0000 0009 0002
               000c 0000 004c 0003 000003e8"),
            ControlMessage::build(
                hdr(V2, 1, 0, 0, 1),
                M::Sccrp,
                vec![
                    pv.clone(),
                    Avp::FramingCapabilities(3),
                    Avp::HostName(b("lns")),
                    Avp::AssignedTunnelId(2),
                    FC_ALL,
                ],
            ),
        ),
        (
            "v2 SCCRP (Suggested Control Sequence)",
            h("c802 0043 0001 0000 0000 0001
               8008 0000 0000 0002
               8008 0000 0002 0100
               800a 0000 0003 00000003
               8009 0000 0007 6c6e73
               8008 0000 0009 0002
               000c 0000 004e 0000 0011 002a"),
            ControlMessage::build(
                hdr(V2, 1, 0, 0, 1),
                M::Sccrp,
                vec![
                    pv.clone(),
                    Avp::FramingCapabilities(3),
                    Avp::HostName(b("lns")),
                    Avp::AssignedTunnelId(2),
                    Avp::SuggestedControlSequence { ns: 17, nr: 42 },
                ],
            ),
        ),
        (
            "v2 SCCCN",
            h("c802 0014 0002 0000 0001 0001  8008 0000 0000 0003"),
            ControlMessage::build(hdr(V2, 2, 0, 1, 1), M::Scccn, vec![]),
        ),
        (
            "v2 StopCCN",
            h("c802 0024 0002 0000 0002 0001
               8008 0000 0000 0004
               8008 0000 0009 0001
               8008 0000 0001 0001"),
            ControlMessage::build(
                hdr(V2, 2, 0, 2, 1),
                M::StopCcn,
                vec![
                    Avp::AssignedTunnelId(1),
                    Avp::ResultCode {
                        result: 1,
                        error: None,
                        message: vec![],
                    },
                ],
            ),
        ),
        (
            "v2 HELLO",
            h("c802 0014 0002 0000 0003 0001  8008 0000 0000 0006"),
            ControlMessage::build(hdr(V2, 2, 0, 3, 1), M::Hello, vec![]),
        ),
        (
            "v2 OCRQ",
            h("c802 0057 0001 0000 0001 0004
               8008 0000 0000 0007
               8008 0000 000e 0003
               800a 0000 000f 00000001
               800a 0000 0010 00002580
               800a 0000 0011 0000fa00
               800a 0000 0012 00000001
               800a 0000 0013 00000001
               8009 0000 0015 313233"),
            ControlMessage::build(
                hdr(V2, 1, 0, 1, 4),
                M::Ocrq,
                vec![
                    Avp::AssignedSessionId(3),
                    Avp::CallSerialNumber(1),
                    Avp::MinimumBps(9600),
                    Avp::MaximumBps(64000),
                    Avp::BearerType(1),
                    Avp::FramingType(1),
                    Avp::CalledNumber(b("123")),
                ],
            ),
        ),
        (
            "v2 OCRP",
            h("c802 001c 0002 0003 0004 0002  8008 0000 0000 0008  8008 0000 000e 0004"),
            ControlMessage::build(
                hdr(V2, 2, 3, 4, 2),
                M::Ocrp,
                vec![Avp::AssignedSessionId(4)],
            ),
        ),
        (
            "v2 OCCN",
            h("c802 0028 0002 0003 0005 0002
               8008 0000 0000 0009
               800a 0000 0018 0001c200
               800a 0000 0013 00000001"),
            ControlMessage::build(
                hdr(V2, 2, 3, 5, 2),
                M::Occn,
                vec![Avp::TxConnectSpeed(115_200), Avp::FramingType(1)],
            ),
        ),
        (
            "v2 ICRQ",
            h("c802 0026 0001 0000 0002 0006
               8008 0000 0000 000a
               8008 0000 000e 0005
               800a 0000 000f 00000002"),
            ControlMessage::build(
                hdr(V2, 1, 0, 2, 6),
                M::Icrq,
                vec![Avp::AssignedSessionId(5), Avp::CallSerialNumber(2)],
            ),
        ),
        (
            "v2 ICRP",
            h("c802 001c 0002 0005 0006 0003  8008 0000 0000 000b  8008 0000 000e 0006"),
            ControlMessage::build(
                hdr(V2, 2, 5, 6, 3),
                M::Icrp,
                vec![Avp::AssignedSessionId(6)],
            ),
        ),
        (
            "v2 ICCN",
            h("c802 0028 0001 0006 0003 0007
               8008 0000 0000 000c
               800a 0000 0018 0001c200
               800a 0000 0013 00000001"),
            ControlMessage::build(
                hdr(V2, 1, 6, 3, 7),
                M::Iccn,
                vec![Avp::TxConnectSpeed(115_200), Avp::FramingType(1)],
            ),
        ),
        (
            "v2 CDN (PPP Disconnect Cause, RFC 3145)",
            h("c802 002f 0001 0006 0004 0007
               8008 0000 0000 000e
               8008 0000 0001 0003
               8008 0000 000e 0005
               000b 0000 002e 0003 0000 01"),
            ControlMessage::build(
                hdr(V2, 1, 6, 4, 7),
                M::Cdn,
                vec![
                    Avp::ResultCode {
                        result: 3,
                        error: None,
                        message: vec![],
                    },
                    Avp::AssignedSessionId(5),
                    Avp::PppDisconnectCause {
                        code: 3,
                        protocol: 0,
                        direction: 1,
                        message: vec![],
                    },
                ],
            ),
        ),
        (
            "v2 WEN",
            h("c802 0034 0001 0006 0005 0007
               8008 0000 0000 000f
               8020 0000 0022 0000 00000001 00000002 00000003 00000004 00000005 00000006"),
            ControlMessage::build(
                hdr(V2, 1, 6, 5, 7),
                M::Wen,
                vec![Avp::CallErrors {
                    crc: 1,
                    framing: 2,
                    hardware_overruns: 3,
                    buffer_overruns: 4,
                    timeouts: 5,
                    alignment: 6,
                }],
            ),
        ),
        (
            "v2 SLI",
            h("c802 0024 0002 0005 0007 0006
               8008 0000 0000 0010
               8010 0000 0023 0000 00000000 ffffffff"),
            ControlMessage::build(
                hdr(V2, 2, 5, 7, 6),
                M::Sli,
                vec![Avp::Accm {
                    send: 0,
                    receive: 0xffff_ffff,
                }],
            ),
        ),
        (
            "v2 FSQ (RFC 4951 §4.1, Message Type M=0)",
            h("c802 0024 0002 0000 0008 0006
               0008 0000 0000 0015
               8010 0000 004f 0000 0000 0005 0000 0006"),
            ControlMessage::build(
                hdr(V2, 2, 0, 8, 6),
                M::Fsq,
                vec![Avp::FailoverSessionState {
                    session_id: 5,
                    remote_session_id: 6,
                }],
            ),
        ),
        (
            "v2 FSR (RFC 4951 §4.2, Message Type M=0)",
            h("c802 0024 0001 0000 0006 0009
               0008 0000 0000 0016
               8010 0000 004f 0000 0000 0000 0000 0005"),
            ControlMessage::build(
                hdr(V2, 1, 0, 6, 9),
                M::Fsr,
                vec![Avp::FailoverSessionState {
                    session_id: 0,
                    remote_session_id: 5,
                }],
            ),
        ),
        (
            "v2 ZLB",
            h("c802 000c 0001 0000 0007 0009"),
            ControlMessage::zlb(hdr(V2, 1, 0, 7, 9)),
        ),
        // ---------------- L2TPv3 (RFC 3931 §6) ----------------
        (
            "v3 SCCRQ",
            h("c803 0037 00000000 0000 0000
               8008 0000 0000 0001
               8007 0000 0007 61
               800a 0000 003c c0000201
               800a 0000 003d 00000001
               8008 0000 003e 0005"),
            ControlMessage::build(
                hdr(V3, 0, 0, 0, 0),
                M::Sccrq,
                vec![
                    Avp::HostName(b("a")),
                    Avp::RouterId(0xc000_0201),
                    Avp::AssignedControlConnectionId(1),
                    Avp::PseudowireCapabilities(vec![5]),
                ],
            ),
        ),
        (
            "v3 SCCRQ (recovery, RFC 4951 §3.2.1)",
            h("c803 0055 00000000 0000 0000
               8008 0000 0000 0001
               8007 0000 0007 61
               800a 0000 003c c0000201
               800a 0000 003d 00000001
               8008 0000 003e 0005
               800e 0000 0005 0102030405060708
               8010 0000 004d 0000 12345678 87654321"),
            ControlMessage::build(
                hdr(V3, 0, 0, 0, 0),
                M::Sccrq,
                vec![
                    Avp::HostName(b("a")),
                    Avp::RouterId(0xc000_0201),
                    Avp::AssignedControlConnectionId(1),
                    Avp::PseudowireCapabilities(vec![5]),
                    Avp::TieBreaker([1, 2, 3, 4, 5, 6, 7, 8]),
                    Avp::TunnelRecovery {
                        tunnel_id: 0x1234_5678,
                        remote_tunnel_id: 0x8765_4321,
                    },
                ],
            ),
        ),
        (
            "v3 SCCRP (Failover Capability)",
            h("c803 0045 00000001 0000 0001
               8008 0000 0000 0002
               8007 0000 0007 62
               800a 0000 003c c0000202
               800a 0000 003d 0000abcd
               800a 0000 003e 0005 0007
               000c 0000 004c 0003 000003e8"),
            ControlMessage::build(
                hdr(V3, 1, 0, 0, 1),
                M::Sccrp,
                vec![
                    Avp::HostName(b("b")),
                    Avp::RouterId(0xc000_0202),
                    Avp::AssignedControlConnectionId(0xabcd),
                    Avp::PseudowireCapabilities(vec![5, 7]),
                    FC_ALL,
                ],
            ),
        ),
        (
            "v3 SCCRP (Suggested Control Sequence)",
            h("c803 0043 00000001 0000 0001
               8008 0000 0000 0002
               8007 0000 0007 62
               800a 0000 003c c0000202
               800a 0000 003d 0000abcd
               8008 0000 003e 0005
               000c 0000 004e 0000 0064 00c8"),
            ControlMessage::build(
                hdr(V3, 1, 0, 0, 1),
                M::Sccrp,
                vec![
                    Avp::HostName(b("b")),
                    Avp::RouterId(0xc000_0202),
                    Avp::AssignedControlConnectionId(0xabcd),
                    Avp::PseudowireCapabilities(vec![5]),
                    Avp::SuggestedControlSequence { ns: 100, nr: 200 },
                ],
            ),
        ),
        (
            "v3 SCCCN",
            h("c803 0014 0000abcd 0001 0001  8008 0000 0000 0003"),
            ControlMessage::build(hdr(V3, 0xabcd, 0, 1, 1), M::Scccn, vec![]),
        ),
        (
            "v3 StopCCN",
            h("c803 0029 0000abcd 0002 0001
               8008 0000 0000 0004
               800b 0000 0001 0002 0008 76
               800a 0000 003d 00000001"),
            ControlMessage::build(
                hdr(V3, 0xabcd, 0, 2, 1),
                M::StopCcn,
                vec![
                    Avp::ResultCode {
                        result: 2,
                        error: Some(8),
                        message: b("v"),
                    },
                    Avp::AssignedControlConnectionId(1),
                ],
            ),
        ),
        (
            "v3 HELLO",
            h("c803 0014 0000abcd 0003 0001  8008 0000 0000 0006"),
            ControlMessage::build(hdr(V3, 0xabcd, 0, 3, 1), M::Hello, vec![]),
        ),
        (
            "v3 ICRQ",
            h("c803 0049 00000001 0001 0004
               8008 0000 0000 000a
               800a 0000 003f 00001001
               800a 0000 0040 00000000
               000a 0000 000f 00000001
               8008 0000 0044 0005
               8007 0000 0042 65
               8008 0000 0047 0003"),
            ControlMessage::build(
                hdr(V3, 1, 0, 1, 4),
                M::Icrq,
                [
                    v3_ids(0x1001, 0),
                    vec![
                        Avp::CallSerialNumber(1),
                        Avp::PseudowireType(5),
                        Avp::RemoteEndId(b("e")),
                        cs.clone(),
                    ],
                ]
                .concat(),
            ),
        ),
        (
            "v3 ICRP",
            h("c803 0030 0000abcd 0004 0002
               8008 0000 0000 000b
               800a 0000 003f 00002001
               800a 0000 0040 00001001
               8008 0000 0047 0003"),
            ControlMessage::build(
                hdr(V3, 0xabcd, 0, 4, 2),
                M::Icrp,
                [v3_ids(0x2001, 0x1001), vec![cs.clone()]].concat(),
            ),
        ),
        (
            "v3 ICCN",
            h("c803 0036 00000001 0002 0005
               8008 0000 0000 000c
               800a 0000 003f 00001001
               800a 0000 0040 00002001
               000e 0000 004a 000000003b9aca00"),
            ControlMessage::build(
                hdr(V3, 1, 0, 2, 5),
                M::Iccn,
                [
                    v3_ids(0x1001, 0x2001),
                    vec![Avp::TxConnectSpeedV3(1_000_000_000)],
                ]
                .concat(),
            ),
        ),
        (
            "v3 OCRQ",
            h("c803 0049 00000001 0003 0005
               8008 0000 0000 0007
               800a 0000 003f 00003001
               800a 0000 0040 00000000
               000a 0000 000f 00000002
               8008 0000 0044 0004
               8007 0000 0042 66
               8008 0000 0047 0003"),
            ControlMessage::build(
                hdr(V3, 1, 0, 3, 5),
                M::Ocrq,
                [
                    v3_ids(0x3001, 0),
                    vec![
                        Avp::CallSerialNumber(2),
                        Avp::PseudowireType(4),
                        Avp::RemoteEndId(b("f")),
                        cs.clone(),
                    ],
                ]
                .concat(),
            ),
        ),
        (
            "v3 OCRP",
            h("c803 0030 0000abcd 0005 0004
               8008 0000 0000 0008
               800a 0000 003f 00004001
               800a 0000 0040 00003001
               8008 0000 0047 0003"),
            ControlMessage::build(
                hdr(V3, 0xabcd, 0, 5, 4),
                M::Ocrp,
                [v3_ids(0x4001, 0x3001), vec![cs.clone()]].concat(),
            ),
        ),
        (
            "v3 OCCN",
            h("c803 0028 0000abcd 0006 0004
               8008 0000 0000 0009
               800a 0000 003f 00004001
               800a 0000 0040 00003001"),
            ControlMessage::build(hdr(V3, 0xabcd, 0, 6, 4), M::Occn, v3_ids(0x4001, 0x3001)),
        ),
        (
            "v3 CDN",
            h("c803 0030 00000001 0004 0007
               8008 0000 0000 000e
               8008 0000 0001 000e
               800a 0000 003f 00003001
               800a 0000 0040 00004001"),
            ControlMessage::build(
                hdr(V3, 1, 0, 4, 7),
                M::Cdn,
                [
                    vec![Avp::ResultCode {
                        result: 14,
                        error: None,
                        message: vec![],
                    }],
                    v3_ids(0x3001, 0x4001),
                ]
                .concat(),
            ),
        ),
        (
            "v3 WEN (Circuit Errors as drawn in RFC 3931 §5.4.5)",
            h("c803 0040 00000001 0005 0007
               8008 0000 0000 000f
               800a 0000 003f 00001001
               800a 0000 0040 00002001
               0018 0000 0022 0000 00000001 00000002 00000003 00000004"),
            ControlMessage::build(
                hdr(V3, 1, 0, 5, 7),
                M::Wen,
                [
                    v3_ids(0x1001, 0x2001),
                    vec![Avp::CircuitErrors {
                        hardware_overruns: 1,
                        buffer_overruns: 2,
                        timeouts: 3,
                        alignment: 4,
                    }],
                ]
                .concat(),
            ),
        ),
        (
            "v3 SLI",
            h("c803 0030 00000001 0006 0007
               8008 0000 0000 0010
               800a 0000 003f 00001001
               800a 0000 0040 00002001
               8008 0000 0047 0000"),
            ControlMessage::build(
                hdr(V3, 1, 0, 6, 7),
                M::Sli,
                [
                    v3_ids(0x1001, 0x2001),
                    vec![Avp::CircuitStatus {
                        active: false,
                        new: false,
                    }],
                ]
                .concat(),
            ),
        ),
        (
            "v3 ACK",
            h("c803 0014 0000abcd 0007 0007  8008 0000 0000 0014"),
            ControlMessage::build(hdr(V3, 0xabcd, 0, 7, 7), M::Ack, vec![]),
        ),
        (
            "v3 FSQ",
            h("c803 0024 00000001 0007 0008
               0008 0000 0000 0015
               8010 0000 004f 0000 00001001 00002001"),
            ControlMessage::build(
                hdr(V3, 1, 0, 7, 8),
                M::Fsq,
                vec![Avp::FailoverSessionState {
                    session_id: 0x1001,
                    remote_session_id: 0x2001,
                }],
            ),
        ),
        (
            "v3 FSR",
            h("c803 0024 0000abcd 0008 0008
               0008 0000 0000 0016
               8010 0000 004f 0000 00002001 00001001"),
            ControlMessage::build(
                hdr(V3, 0xabcd, 0, 8, 8),
                M::Fsr,
                vec![Avp::FailoverSessionState {
                    session_id: 0x2001,
                    remote_session_id: 0x1001,
                }],
            ),
        ),
        (
            "v3 ZLB",
            h("c803 000c 0000abcd 0009 0008"),
            ControlMessage::zlb(hdr(V3, 0xabcd, 0, 9, 8)),
        ),
    ]
}

#[test]
fn golden_messages_parse_emit_and_validate() {
    for (name, bytes, want) in goldens() {
        let got = ControlMessage::parse(&bytes, &ParseContext::default()).expect(name);
        assert_eq!(got, want, "{name}");
        assert_eq!(got.emit_len(), Ok(bytes.len()), "{name}");
        assert_eq!(got.to_bytes(None).expect(name), bytes, "{name}");
        assert_eq!(validate(&got), Ok(()), "{name}");
        assert_eq!(validate_bytes(&bytes, None), Ok(want), "{name}");
    }
}

#[test]
fn every_message_type_has_a_golden_vector() {
    let g = goldens();
    for v in [V2, V3] {
        for t in M::ALL {
            if t.is_known(v) {
                assert!(
                    g.iter()
                        .any(|(_, _, m)| m.version() == v && m.message_type() == Some(t)),
                    "{v:?} {t:?}"
                );
            }
        }
        assert!(g.iter().any(|(_, _, m)| m.version() == v && m.is_zlb()));
    }
}

/// A v2 ICCN with a hidden Proxy Authen Name (RFC 2661 §4.3), secret "secret", Random Vector
/// 01..04; the hidden value computed independently with Python's hashlib:
/// MD5(00 1e | "secret" | 01 02 03 04) XOR (00 03 "bob").
#[test]
fn golden_hidden_message() {
    let bytes = h("c802 003d 0001 0006 0003 0007
                   8008 0000 0000 000c
                   800a 0000 0018 0001c200
                   800a 0000 0013 00000001
                   800a 0000 0024 01020304
                   400b 0000 001e 521d347bac");
    let mut want = ControlMessage::build(
        hdr(V2, 1, 6, 3, 7),
        M::Iccn,
        vec![
            Avp::TxConnectSpeed(115_200),
            Avp::FramingType(1),
            Avp::RandomVector(vec![1, 2, 3, 4]),
            Avp::ProxyAuthenName(b("bob")),
        ],
    );
    want.avps[4].hidden = true;
    let ctx = ParseContext {
        secret: Some(b"secret"),
    };
    assert_eq!(ControlMessage::parse(&bytes, &ctx).expect("parses"), want);
    assert_eq!(want.to_bytes(Some(b"secret")).expect("emits"), bytes);
    assert_eq!(validate_bytes(&bytes, Some(b"secret")), Ok(want));
    // Without the secret: kept hidden (M=0, so the message is still acceptable).
    let opaque = validate_bytes(&bytes, None).expect("valid");
    assert_eq!(
        opaque.avps[4].avp,
        Avp::Hidden {
            attr_type: 30,
            vendor_id: 0,
            value: h("521d347bac")
        }
    );
    assert_eq!(opaque.to_bytes(None).expect("emits"), bytes);
}

// ---------------------------------------------------------------------------------------------
// Validator rules

fn v2_icrq() -> ControlMessage {
    ControlMessage::build(
        hdr(V2, 1, 0, 0, 0),
        M::Icrq,
        vec![Avp::AssignedSessionId(5), Avp::CallSerialNumber(2)],
    )
}

fn v2_sccrq() -> ControlMessage {
    ControlMessage::build(
        hdr(V2, 0, 0, 0, 0),
        M::Sccrq,
        vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::HostName(b("lac")),
            Avp::FramingCapabilities(3),
            Avp::AssignedTunnelId(1),
        ],
    )
}

fn expect_violation(m: &ControlMessage, action: Action, result: u16, error: u16) -> Violation {
    let v = validate(m).expect_err("must be rejected");
    assert_eq!(
        (v.action, v.result_code, v.error_code),
        (action, result, error),
        "{v}"
    );
    // The bytes entry point agrees.
    let secret = Some(examples::TEST_SECRET);
    let bytes = m.to_bytes(secret).expect("emits");
    assert_eq!(validate_bytes(&bytes, secret), Err(v.clone()));
    v
}

#[test]
fn missing_mandatory_avp_per_message_type() {
    for v in [V2, V3] {
        for m in examples(v) {
            let Some(t) = m.message_type() else { continue };
            for need in l2xdp_wire::l2tp::validate::mandatory_avps(v, t) {
                let mut broken = m.clone();
                broken.avps.retain(|a| a.avp.attr() != (0, need.value()));
                let action = if t.is_session_scoped() {
                    Action::Cdn
                } else {
                    Action::StopCcn
                };
                let viol = expect_violation(&broken, action, 2, 3);
                assert!(viol.message.contains(need.name_for(v)), "{viol}");
            }
        }
    }
}

#[test]
fn unknown_mandatory_avp_session_vs_tunnel() {
    let unknown = AvpRepr {
        mandatory: true,
        hidden: false,
        avp: Avp::Unknown {
            vendor_id: 9,
            attr_type: 1,
            value: vec![1],
        },
    };
    let mut m = v2_icrq();
    m.avps.push(unknown.clone());
    let v = expect_violation(&m, Action::Cdn, 2, 8);
    assert!(v.message.contains("vendor 9 attribute 1"));
    let mut m = v2_sccrq();
    m.avps.push(unknown.clone());
    expect_violation(&m, Action::StopCcn, 2, 8);
    // IETF attribute this crate does not know, M=1, in a v3 HELLO.
    let mut m = ControlMessage::build(hdr(V3, 1, 0, 0, 0), M::Hello, vec![]);
    m.avps.push(AvpRepr {
        mandatory: true,
        hidden: false,
        avp: Avp::Unknown {
            vendor_id: 0,
            attr_type: 999,
            value: vec![],
        },
    });
    expect_violation(&m, Action::StopCcn, 2, 8);
    // M=0: ignored.
    let mut m = v2_icrq();
    m.avps.push(AvpRepr {
        mandatory: false,
        ..unknown
    });
    assert_eq!(validate(&m), Ok(()));
}

#[test]
fn unknown_message_type() {
    let mut m = ControlMessage::build(hdr(V2, 1, 0, 0, 0), M::Unknown(99), vec![]);
    m.avps[0].mandatory = true;
    expect_violation(&m, Action::StopCcn, 2, 3);
    m.avps[0].mandatory = false;
    expect_violation(&m, Action::Ignore, 0, 0);
    // ACK is not an L2TPv2 message type.
    let m = ControlMessage::build(hdr(V2, 1, 0, 0, 0), M::Ack, vec![]);
    expect_violation(&m, Action::StopCcn, 2, 3);
    // Vendor-specific message type (RFC 3931 §5.4.1).
    let vendor = |mandatory| ControlMessage {
        header: hdr(V3, 1, 0, 0, 0),
        avps: vec![AvpRepr {
            mandatory,
            hidden: false,
            avp: Avp::Unknown {
                vendor_id: 9,
                attr_type: 0,
                value: vec![0, 1],
            },
        }],
    };
    expect_violation(&vendor(true), Action::StopCcn, 2, 3);
    expect_violation(&vendor(false), Action::Ignore, 0, 0);
}

#[test]
fn message_type_must_be_first() {
    let mut m = v2_icrq();
    m.avps.swap(0, 1);
    expect_violation(&m, Action::StopCcn, 2, 3);
}

#[test]
fn misplaced_rfc4951_avps() {
    let fss = Avp::FailoverSessionState {
        session_id: 1,
        remote_session_id: 2,
    };
    let tr = Avp::TunnelRecovery {
        tunnel_id: 1,
        remote_tunnel_id: 2,
    };
    let scs = Avp::SuggestedControlSequence { ns: 1, nr: 2 };
    // 77 (M=1) only in SCCRQ: in an SCCRP it tears the tunnel down.
    let mut m = ControlMessage::build(
        hdr(V2, 1, 0, 0, 1),
        M::Sccrp,
        vec![
            Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            Avp::FramingCapabilities(3),
            Avp::HostName(b("lns")),
            Avp::AssignedTunnelId(2),
        ],
    );
    m.avps.push(AvpRepr::new(tr, V2));
    expect_violation(&m, Action::StopCcn, 2, 3);
    // 79 (M=1) only in FSQ/FSR: in an ICRQ it tears the session down.
    let mut m = v2_icrq();
    m.avps.push(AvpRepr::new(fss, V2));
    expect_violation(&m, Action::Cdn, 2, 3);
    // 76 and 78 (M=0) elsewhere are ignored.
    let mut m = v2_icrq();
    m.avps.push(AvpRepr::new(FC_ALL, V2));
    m.avps.push(AvpRepr::new(scs.clone(), V2));
    assert_eq!(validate(&m), Ok(()));
    // ... unless the sender set their M bit.
    let mut m = v2_sccrq();
    m.avps.push(AvpRepr::new(scs, V2).with_mandatory(true));
    expect_violation(&m, Action::StopCcn, 2, 3);
}

#[test]
fn fsq_without_fss_and_other_avps_in_fsq() {
    let m = ControlMessage::build(hdr(V2, 1, 0, 0, 0), M::Fsq, vec![]);
    expect_violation(&m, Action::StopCcn, 2, 3);
    let m = ControlMessage::build(hdr(V3, 1, 0, 0, 0), M::Fsr, vec![]);
    expect_violation(&m, Action::StopCcn, 2, 3);
    // RFC 4951 §4: other AVPs SHOULD be ignored, even unknown mandatory ones.
    let mut m = ControlMessage::build(
        hdr(V3, 1, 0, 0, 0),
        M::Fsq,
        vec![Avp::FailoverSessionState {
            session_id: 1,
            remote_session_id: 2,
        }],
    );
    m.avps.push(AvpRepr {
        mandatory: true,
        hidden: false,
        avp: Avp::Unknown {
            vendor_id: 9,
            attr_type: 1,
            value: vec![],
        },
    });
    m.avps.push(AvpRepr::new(Avp::HostName(b("x")), V3));
    assert_eq!(validate(&m), Ok(()));
}

#[test]
fn protocol_version_and_zero_ids() {
    let mut m = v2_sccrq();
    m.avps[1].avp = Avp::ProtocolVersion {
        version: 2,
        revision: 0,
    };
    let v = expect_violation(&m, Action::StopCcn, 5, 0x0100);
    assert!(v.result_code_avp().is_some());
    let mut m = v2_sccrq();
    m.avps[4].avp = Avp::AssignedTunnelId(0);
    expect_violation(&m, Action::StopCcn, 2, 3);
    let mut m = v2_icrq();
    m.avps[1].avp = Avp::AssignedSessionId(0);
    expect_violation(&m, Action::Cdn, 2, 3);
}

#[test]
fn hidden_without_secret() {
    // The v3 example ICRQ hides its (M=1) Assigned Cookie.
    let icrq = examples(V3)
        .into_iter()
        .find(|m| m.message_type() == Some(M::Icrq))
        .expect("example");
    let bytes = icrq.to_bytes(Some(examples::TEST_SECRET)).expect("emits");
    let v = validate_bytes(&bytes, None).expect_err("cannot be unhidden");
    assert_eq!((v.action, v.result_code, v.error_code), (Action::Cdn, 2, 8));
    assert_eq!(
        validate_bytes(&bytes, Some(examples::TEST_SECRET)),
        Ok(icrq)
    );
}

#[test]
fn validate_bytes_maps_parse_errors() {
    // Malformed header: dropped.
    assert_eq!(
        validate_bytes(&[0xc8, 0x02, 0x00], None).map_err(|v| v.action),
        Err(Action::Ignore)
    );
    // AVP Length past the end in an ICRQ: CDN, error 2.
    let mut b = v2_icrq().to_bytes(None).expect("emits");
    b[21] = 0x0c; // second AVP (Assigned Session ID) claims 12 octets
    let v = validate_bytes(&b, None).expect_err("framing");
    assert_eq!((v.action, v.error_code), (Action::Cdn, 2));
    // A wrong-length M=1 AVP: error 2; the same with M=0 is ignored (RFC 3931 §7.1).
    let m = ControlMessage::build(hdr(V2, 1, 0, 0, 0), M::Hello, vec![]);
    let mut b = m.to_bytes(None).expect("emits");
    b.extend_from_slice(&h("8009 0000 0009 010203")); // Assigned Tunnel ID of 3 octets, M=1
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    let v = validate_bytes(&b, None).expect_err("wrong length");
    assert_eq!(
        (v.action, v.result_code, v.error_code),
        (Action::StopCcn, 2, 2)
    );
    b[12 + 8] = 0x00; // clear the M bit
    let ok = validate_bytes(&b, None).expect("ignored");
    assert_eq!(ok, m);
}

#[test]
fn typed_getters() {
    let m = &goldens()[1].2;
    assert_eq!(m.tunnel_recovery(), Some((0x1234, 0x4321)));
    assert_eq!(m.assigned_tunnel_id(), Some(1));
    assert_eq!(m.get(AvpType::HostName), Some(&Avp::HostName(b("lac"))));
    assert_eq!(m.host_name(), Some(&b"lac"[..]));
    assert!(m.get(AvpType::Challenge).is_none());
}

// ---------------------------------------------------------------------------------------------
// Properties

fn message_strategy() -> impl Strategy<Value = ControlMessage> {
    (
        prop_oneof![Just(V2), Just(V3)],
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..32),
    )
        .prop_flat_map(|(v, sid, ns, nr, tid, mt, rv)| {
            let tid = if v == V2 { tid & 0xffff } else { tid };
            let sid = if v == V3 { 0 } else { sid };
            proptest::collection::vec(l2tp_common::repr_strategy(v), 0..8).prop_map(
                move |mut avps| {
                    let header = hdr(v, tid, sid, ns, nr);
                    if avps.iter().any(|a| a.hidden) {
                        avps.insert(0, AvpRepr::new(Avp::RandomVector(rv.clone()), v));
                    }
                    avps.insert(0, AvpRepr::new(Avp::MessageType(M::from_u16(mt)), v));
                    ControlMessage { header, avps }
                },
            )
        })
}

proptest! {
    #[test]
    fn control_message_round_trip(m in message_strategy(), secret in proptest::collection::vec(any::<u8>(), 0..16)) {
        let bytes = m.to_bytes(Some(&secret)).expect("emits");
        let back = ControlMessage::parse(&bytes, &ParseContext { secret: Some(&secret) }).expect("parses");
        prop_assert_eq!(back, m);
    }

    #[test]
    fn parse_and_validate_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), secret in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))) {
        let _ = ControlMessage::parse(&bytes, &ParseContext { secret: secret.as_deref() });
        let _ = validate_bytes(&bytes, secret.as_deref());
    }

    #[test]
    fn mutated_examples_never_panic(which in 0usize..40, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let all: Vec<ControlMessage> = [examples(V2), examples(V3)].concat();
        let m = &all[which % all.len()];
        let mut bytes = m.to_bytes(Some(examples::TEST_SECRET)).expect("emits");
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        let _ = ControlMessage::parse(&bytes, &ParseContext { secret: Some(examples::TEST_SECRET) });
        if let Ok(m) = validate_bytes(&bytes, Some(examples::TEST_SECRET)) {
            // Whatever validates re-emits.
            let _ = m.to_bytes(Some(examples::TEST_SECRET));
        }
    }
}
