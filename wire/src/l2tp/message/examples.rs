//! Representative, valid example messages of every type for each version, for tests and the
//! decoder's self-check (feature `examples`: not in the product's build).

use super::super::avp::{bearer, framing, Avp};
use super::super::codes::{CdnResult, ErrorCode, PppDisconnectCode, StopCcnResult};
use super::super::header::{ControlHeader, Version};
use super::{ControlMessage, MessageType};

/// The shared secret the examples with hidden AVPs are hidden with. Parse them with
/// `ParseContext { secret: Some(TEST_SECRET) }`; without it their hidden AVPs stay
/// [`Avp::Hidden`].
pub const TEST_SECRET: &[u8] = b"l2xdp-test-secret";

/// The Random Vector of the examples with hidden AVPs.
pub const TEST_RANDOM_VECTOR: [u8; 16] = [
    0x5a, 0x17, 0xc3, 0x09, 0x88, 0x4e, 0xd2, 0x61, 0x0b, 0xf4, 0x3c, 0x95, 0x72, 0xae, 0x1d, 0x66,
];

fn hdr(version: Version, tunnel_id: u32, session_id: u16, ns: u16, nr: u16) -> ControlHeader {
    ControlHeader {
        version,
        tunnel_id,
        session_id,
        ns,
        nr,
    }
}

fn msg(h: ControlHeader, t: MessageType, avps: Vec<Avp>) -> ControlMessage {
    ControlMessage::build(h, t, avps)
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Hides the AVPs at the given positions (after the Message Type, which is index 0).
fn hide_at(mut m: ControlMessage, at: &[usize]) -> ControlMessage {
    for &i in at {
        if let Some(a) = m.avps.get_mut(i) {
            *a = a.clone().hide();
        }
    }
    m
}

/// One example of every message type of `version` (SCCRQ, recovery SCCRQ with Tunnel
/// Recovery, SCCRP with Failover Capability, recovery SCCRP with Suggested Control
/// Sequence, SCCCN, StopCCN, HELLO, OCRQ, OCRP, OCCN, ICRQ, ICRP, ICCN, CDN, WEN, SLI, ACK
/// (L2TPv3 only), FSQ, FSR, and a ZLB). Every mandatory AVP of RFC 2661 §6 / RFC 3931 §6 /
/// RFC 4951 §4 is present. The L2TPv2 ICCN and the L2TPv3 ICRQ carry hidden AVPs (hidden
/// with [`TEST_SECRET`] and [`TEST_RANDOM_VECTOR`]).
pub fn examples(version: Version) -> Vec<ControlMessage> {
    match version {
        Version::V2 => v2(),
        Version::V3 => v3(),
    }
}

fn v2() -> Vec<ControlMessage> {
    use MessageType as M;
    let v = Version::V2;
    let pv = || Avp::ProtocolVersion {
        version: 1,
        revision: 0,
    };
    let fc = || Avp::FramingCapabilities(framing::SYNC | framing::ASYNC);
    vec![
        msg(
            hdr(v, 0, 0, 0, 0),
            M::Sccrq,
            vec![
                pv(),
                Avp::HostName(bytes("lac.example.net")),
                fc(),
                Avp::BearerCapabilities(bearer::DIGITAL | bearer::ANALOG),
                Avp::AssignedTunnelId(0x1234),
                Avp::ReceiveWindowSize(4),
                Avp::TieBreaker([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
                Avp::FirmwareRevision(0x0102),
                Avp::VendorName(bytes("l2xdp")),
                Avp::Challenge(vec![0xc1; 16]),
                Avp::FailoverCapability {
                    control: true,
                    data: true,
                    recovery_time_ms: 5000,
                },
            ],
        ),
        msg(
            hdr(v, 0, 0, 0, 0),
            M::Sccrq,
            vec![
                pv(),
                Avp::HostName(bytes("lac.example.net")),
                fc(),
                Avp::AssignedTunnelId(0x2345),
                Avp::TieBreaker([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]),
                Avp::TunnelRecovery {
                    tunnel_id: 0x1234,
                    remote_tunnel_id: 0x4321,
                },
            ],
        ),
        msg(
            hdr(v, 0x1234, 0, 0, 1),
            M::Sccrp,
            vec![
                pv(),
                fc(),
                Avp::HostName(bytes("lns.example.net")),
                Avp::AssignedTunnelId(0x4321),
                Avp::ReceiveWindowSize(16),
                Avp::VendorName(bytes("l2xdp")),
                Avp::ChallengeResponse([0xa5; 16]),
                Avp::FailoverCapability {
                    control: true,
                    data: false,
                    recovery_time_ms: 3000,
                },
            ],
        ),
        msg(
            hdr(v, 0x2345, 0, 0, 1),
            M::Sccrp,
            vec![
                pv(),
                fc(),
                Avp::HostName(bytes("lns.example.net")),
                Avp::AssignedTunnelId(0x5432),
                Avp::SuggestedControlSequence { ns: 17, nr: 42 },
            ],
        ),
        msg(
            hdr(v, 0x4321, 0, 1, 1),
            M::Scccn,
            vec![Avp::ChallengeResponse([0x5a; 16])],
        ),
        msg(
            hdr(v, 0x4321, 0, 2, 1),
            M::StopCcn,
            vec![
                Avp::AssignedTunnelId(0x1234),
                Avp::ResultCode {
                    result: StopCcnResult::GENERAL_REQUEST.0,
                    error: Some(ErrorCode::NO_ERROR.0),
                    message: bytes("administrative shutdown"),
                },
            ],
        ),
        msg(hdr(v, 0x4321, 0, 3, 2), M::Hello, vec![]),
        msg(
            hdr(v, 0x1234, 0, 4, 3),
            M::Ocrq,
            vec![
                Avp::AssignedSessionId(0x0001),
                Avp::CallSerialNumber(1),
                Avp::MinimumBps(9600),
                Avp::MaximumBps(64000),
                Avp::BearerType(bearer::DIGITAL),
                Avp::FramingType(framing::SYNC),
                Avp::CalledNumber(bytes("5551234")),
                Avp::SubAddress(bytes("12")),
            ],
        ),
        msg(
            hdr(v, 0x4321, 0x0001, 3, 5),
            M::Ocrp,
            vec![Avp::AssignedSessionId(0x0101), Avp::PhysicalChannelId(7)],
        ),
        msg(
            hdr(v, 0x4321, 0x0001, 4, 5),
            M::Occn,
            vec![
                Avp::TxConnectSpeed(64000),
                Avp::FramingType(framing::SYNC),
                Avp::RxConnectSpeed(56000),
                Avp::SequencingRequired,
            ],
        ),
        msg(
            hdr(v, 0x1234, 0, 5, 5),
            M::Icrq,
            vec![
                Avp::AssignedSessionId(0x0002),
                Avp::CallSerialNumber(2),
                Avp::BearerType(bearer::ANALOG),
                Avp::PhysicalChannelId(3),
                Avp::CallingNumber(bytes("5550000")),
                Avp::CalledNumber(bytes("5551111")),
            ],
        ),
        msg(
            hdr(v, 0x4321, 0x0002, 5, 6),
            M::Icrp,
            vec![Avp::AssignedSessionId(0x0202)],
        ),
        // Proxy authentication (RFC 2661 §4.4.5) with the name and response hidden.
        hide_at(
            msg(
                hdr(v, 0x1234, 0x0202, 6, 6),
                M::Iccn,
                vec![
                    Avp::TxConnectSpeed(100_000_000),
                    Avp::FramingType(framing::SYNC),
                    Avp::RandomVector(TEST_RANDOM_VECTOR.to_vec()),
                    Avp::InitialReceivedLcpConfreq(vec![
                        0x01, 0x04, 0x05, 0xd4, 0x05, 0x06, 0x12, 0x34, 0x56, 0x78,
                    ]),
                    Avp::LastSentLcpConfreq(vec![
                        0x01, 0x04, 0x05, 0xd4, 0x03, 0x05, 0xc2, 0x23, 0x05, 0x05, 0x06, 0x9a,
                        0xbc, 0xde, 0xf0,
                    ]),
                    Avp::LastReceivedLcpConfreq(vec![
                        0x01, 0x04, 0x05, 0xd4, 0x05, 0x06, 0x12, 0x34, 0x56, 0x78,
                    ]),
                    Avp::ProxyAuthenType(2),
                    Avp::ProxyAuthenName(bytes("user@example.net")),
                    Avp::ProxyAuthenChallenge(vec![0x3c; 16]),
                    Avp::ProxyAuthenId(7),
                    Avp::ProxyAuthenResponse(vec![0x9e; 16]),
                    Avp::PrivateGroupId(bytes("corp")),
                    Avp::RxConnectSpeed(100_000_000),
                ],
            ),
            &[8, 11],
        ),
        msg(
            hdr(v, 0x4321, 0x0002, 6, 7),
            M::Cdn,
            vec![
                Avp::ResultCode {
                    result: CdnResult::ADMINISTRATIVE.0,
                    error: None,
                    message: Vec::new(),
                },
                Avp::AssignedSessionId(0x0202),
                Avp::Q931CauseCode {
                    cause: 16,
                    msg_code: 0x45,
                    advisory: bytes("normal clearing"),
                },
                Avp::PppDisconnectCause {
                    code: PppDisconnectCode::NORMAL.0,
                    protocol: 0,
                    direction: 1,
                    message: bytes("peer sent Terminate-Request"),
                },
            ],
        ),
        msg(
            hdr(v, 0x4321, 0x0101, 7, 7),
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
        msg(
            hdr(v, 0x1234, 0x0001, 8, 8),
            M::Sli,
            vec![Avp::Accm {
                send: 0x0000_0000,
                receive: 0xffff_ffff,
            }],
        ),
        msg(
            hdr(v, 0x1234, 0, 9, 8),
            M::Fsq,
            vec![
                Avp::FailoverSessionState {
                    session_id: 0x0002,
                    remote_session_id: 0x0202,
                },
                Avp::FailoverSessionState {
                    session_id: 0x0003,
                    remote_session_id: 0x0303,
                },
            ],
        ),
        msg(
            hdr(v, 0x4321, 0, 8, 10),
            M::Fsr,
            vec![
                Avp::FailoverSessionState {
                    session_id: 0x0202,
                    remote_session_id: 0x0002,
                },
                Avp::FailoverSessionState {
                    session_id: 0,
                    remote_session_id: 0x0003,
                },
            ],
        ),
        ControlMessage::zlb(hdr(v, 0x1234, 0, 10, 9)),
    ]
}

fn v3() -> Vec<ControlMessage> {
    use MessageType as M;
    let v = Version::V3;
    let local = 0x0000_1001;
    let remote = 0x0000_2001;
    let pw_caps = || Avp::PseudowireCapabilities(vec![0x0005, 0x0004, 0x0007]);
    vec![
        msg(
            hdr(v, 0, 0, 0, 0),
            M::Sccrq,
            vec![
                Avp::HostName(bytes("lcce-a.example.net")),
                Avp::RouterId(0xc000_0201),
                Avp::AssignedControlConnectionId(0x1234_5678),
                pw_caps(),
                Avp::TieBreaker([0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80]),
                Avp::VendorName(bytes("l2xdp")),
                Avp::ReceiveWindowSize(16),
                Avp::PreferredLanguage(bytes("en")),
                Avp::FailoverCapability {
                    control: true,
                    data: true,
                    recovery_time_ms: 10_000,
                },
            ],
        ),
        msg(
            hdr(v, 0, 0, 0, 0),
            M::Sccrq,
            vec![
                Avp::HostName(bytes("lcce-a.example.net")),
                Avp::RouterId(0xc000_0201),
                Avp::AssignedControlConnectionId(0x2345_6789),
                pw_caps(),
                Avp::TieBreaker([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]),
                Avp::TunnelRecovery {
                    tunnel_id: 0x1234_5678,
                    remote_tunnel_id: 0x8765_4321,
                },
            ],
        ),
        msg(
            hdr(v, 0x1234_5678, 0, 0, 1),
            M::Sccrp,
            vec![
                Avp::HostName(bytes("lcce-b.example.net")),
                Avp::RouterId(0xc000_0202),
                Avp::AssignedControlConnectionId(0x8765_4321),
                Avp::PseudowireCapabilities(vec![0x0005, 0x0007]),
                Avp::ReceiveWindowSize(32),
                Avp::FailoverCapability {
                    control: true,
                    data: true,
                    recovery_time_ms: 2000,
                },
            ],
        ),
        msg(
            hdr(v, 0x2345_6789, 0, 0, 1),
            M::Sccrp,
            vec![
                Avp::HostName(bytes("lcce-b.example.net")),
                Avp::RouterId(0xc000_0202),
                Avp::AssignedControlConnectionId(0x9876_5432),
                Avp::PseudowireCapabilities(vec![0x0005, 0x0007]),
                Avp::SuggestedControlSequence { ns: 100, nr: 200 },
            ],
        ),
        msg(hdr(v, 0x8765_4321, 0, 1, 1), M::Scccn, vec![]),
        msg(
            hdr(v, 0x8765_4321, 0, 2, 1),
            M::StopCcn,
            vec![
                Avp::ResultCode {
                    result: StopCcnResult::GENERAL_ERROR.0,
                    error: Some(ErrorCode::UNKNOWN_MANDATORY_AVP.0),
                    message: bytes("vendor 9 attribute 1"),
                },
                Avp::AssignedControlConnectionId(0x1234_5678),
            ],
        ),
        msg(hdr(v, 0x8765_4321, 0, 3, 2), M::Hello, vec![]),
        // Session setup with the Assigned Cookie hidden.
        hide_at(
            msg(
                hdr(v, 0x8765_4321, 0, 4, 3),
                M::Icrq,
                vec![
                    Avp::LocalSessionId(local),
                    Avp::RemoteSessionId(0),
                    Avp::CallSerialNumber(1),
                    Avp::PseudowireType(0x0005),
                    Avp::RemoteEndId(bytes("ge-0/0/1")),
                    Avp::CircuitStatus {
                        active: true,
                        new: true,
                    },
                    Avp::RandomVector(TEST_RANDOM_VECTOR.to_vec()),
                    Avp::AssignedCookie(vec![0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]),
                    Avp::TieBreaker([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11]),
                    Avp::L2SpecificSublayer(1),
                    Avp::DataSequencing(2),
                    Avp::TxConnectSpeedV3(1_000_000_000),
                    Avp::RxConnectSpeedV3(1_000_000_000),
                    Avp::PhysicalChannelId(9),
                ],
            ),
            &[8],
        ),
        msg(
            hdr(v, 0x1234_5678, 0, 3, 5),
            M::Icrp,
            vec![
                Avp::LocalSessionId(remote),
                Avp::RemoteSessionId(local),
                Avp::CircuitStatus {
                    active: true,
                    new: true,
                },
                Avp::AssignedCookie(vec![0xca, 0xfe, 0xba, 0xbe]),
                Avp::L2SpecificSublayer(1),
                Avp::DataSequencing(0),
            ],
        ),
        msg(
            hdr(v, 0x8765_4321, 0, 5, 4),
            M::Iccn,
            vec![
                Avp::LocalSessionId(local),
                Avp::RemoteSessionId(remote),
                Avp::TxConnectSpeedV3(10_000_000_000),
                Avp::RxConnectSpeedV3(10_000_000_000),
                Avp::CircuitStatus {
                    active: true,
                    new: false,
                },
            ],
        ),
        msg(
            hdr(v, 0x1234_5678, 0, 4, 6),
            M::Ocrq,
            vec![
                Avp::LocalSessionId(0x0000_3001),
                Avp::RemoteSessionId(0),
                Avp::CallSerialNumber(2),
                Avp::PseudowireType(0x0004),
                Avp::RemoteEndId(bytes("vlan-100")),
                Avp::CircuitStatus {
                    active: true,
                    new: true,
                },
                Avp::AssignedCookie(vec![0x01, 0x02, 0x03, 0x04]),
            ],
        ),
        msg(
            hdr(v, 0x8765_4321, 0, 6, 5),
            M::Ocrp,
            vec![
                Avp::LocalSessionId(0x0000_4001),
                Avp::RemoteSessionId(0x0000_3001),
                Avp::CircuitStatus {
                    active: true,
                    new: true,
                },
                Avp::PhysicalChannelId(11),
            ],
        ),
        msg(
            hdr(v, 0x8765_4321, 0, 7, 5),
            M::Occn,
            vec![
                Avp::LocalSessionId(0x0000_4001),
                Avp::RemoteSessionId(0x0000_3001),
                Avp::TxConnectSpeedV3(100_000_000),
            ],
        ),
        msg(
            hdr(v, 0x1234_5678, 0, 5, 8),
            M::Cdn,
            vec![
                Avp::ResultCode {
                    result: CdnResult::UNSUPPORTED_PW_TYPE.0,
                    error: None,
                    message: Vec::new(),
                },
                Avp::LocalSessionId(0x0000_3001),
                Avp::RemoteSessionId(0x0000_4001),
            ],
        ),
        msg(
            hdr(v, 0x8765_4321, 0, 8, 6),
            M::Wen,
            vec![
                Avp::LocalSessionId(local),
                Avp::RemoteSessionId(remote),
                Avp::CircuitErrors {
                    hardware_overruns: 1,
                    buffer_overruns: 2,
                    timeouts: 3,
                    alignment: 4,
                },
            ],
        ),
        msg(
            hdr(v, 0x8765_4321, 0, 9, 6),
            M::Sli,
            vec![
                Avp::LocalSessionId(local),
                Avp::RemoteSessionId(remote),
                Avp::CircuitStatus {
                    active: false,
                    new: false,
                },
            ],
        ),
        msg(hdr(v, 0x1234_5678, 0, 6, 10), M::Ack, vec![]),
        msg(
            hdr(v, 0x8765_4321, 0, 10, 7),
            M::Fsq,
            vec![
                Avp::FailoverSessionState {
                    session_id: local,
                    remote_session_id: remote,
                },
                Avp::FailoverSessionState {
                    session_id: 0x0000_5001,
                    remote_session_id: 0x0000_6001,
                },
            ],
        ),
        msg(
            hdr(v, 0x1234_5678, 0, 7, 11),
            M::Fsr,
            vec![
                Avp::FailoverSessionState {
                    session_id: remote,
                    remote_session_id: local,
                },
                Avp::FailoverSessionState {
                    session_id: 0,
                    remote_session_id: 0x0000_5001,
                },
            ],
        ),
        ControlMessage::zlb(hdr(v, 0x8765_4321, 0, 11, 8)),
    ]
}
