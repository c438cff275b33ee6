//! Proptest strategies for L2TP AVPs, shared by the L2TP integration tests.

use l2xdp_wire::l2tp::avp::{Avp, AvpRepr, AvpType};
use l2xdp_wire::l2tp::message::MessageType;
use l2xdp_wire::l2tp::Version::{self, V2, V3};
use proptest::prelude::*;

pub fn bytes_strategy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// An arbitrary encodable value for `version`.
pub fn avp_strategy(version: Version) -> impl Strategy<Value = Avp> {
    (
        0u8..66,
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        bytes_strategy(40),
        proptest::collection::vec(any::<u16>(), 1..8),
        any::<[u8; 16]>(),
    )
        .prop_map(move |(sel, n, byte, x, y, bytes, list, arr16)| {
            let n32 = n as u32;
            let n16 = n as u16;
            let hi32 = (n >> 32) as u32;
            let nonempty = if bytes.is_empty() {
                vec![byte]
            } else {
                bytes.clone()
            };
            let id = |v: u32| if version == V2 { v & 0xffff } else { v };
            let mut tb = [0u8; 8];
            tb.copy_from_slice(&arr16[..8]);
            match sel {
                0 => Avp::MessageType(MessageType::from_u16(n16)),
                1 => Avp::ResultCode {
                    result: n16,
                    error: x.then_some(hi32 as u16),
                    message: if x { bytes } else { vec![] },
                },
                2 => Avp::ProtocolVersion {
                    version: byte,
                    revision: n as u8,
                },
                3 => Avp::FramingCapabilities(n32),
                4 => Avp::BearerCapabilities(n32),
                5 => Avp::TieBreaker(tb),
                6 => Avp::FirmwareRevision(n16),
                7 => Avp::HostName(nonempty),
                8 => Avp::VendorName(bytes),
                9 => Avp::AssignedTunnelId(n16),
                10 => Avp::ReceiveWindowSize(n16),
                11 => Avp::Challenge(nonempty),
                12 => Avp::Q931CauseCode {
                    cause: n16,
                    msg_code: byte,
                    advisory: bytes,
                },
                13 => Avp::ChallengeResponse(arr16),
                14 => Avp::AssignedSessionId(n16),
                15 => Avp::CallSerialNumber(n32),
                16 => Avp::MinimumBps(n32),
                17 => Avp::MaximumBps(n32),
                18 => Avp::BearerType(n32),
                19 => Avp::FramingType(n32),
                20 => Avp::CalledNumber(bytes),
                21 => Avp::CallingNumber(bytes),
                22 => Avp::SubAddress(bytes),
                23 => Avp::TxConnectSpeed(n32),
                24 => Avp::PhysicalChannelId(n32),
                25 => Avp::InitialReceivedLcpConfreq(bytes),
                26 => Avp::LastSentLcpConfreq(bytes),
                27 => Avp::LastReceivedLcpConfreq(bytes),
                28 => Avp::ProxyAuthenType(n16),
                29 => Avp::ProxyAuthenName(bytes),
                30 => Avp::ProxyAuthenChallenge(nonempty),
                31 => Avp::ProxyAuthenId(byte),
                32 => Avp::ProxyAuthenResponse(bytes),
                33 => Avp::CallErrors {
                    crc: n32,
                    framing: hi32,
                    hardware_overruns: 1,
                    buffer_overruns: 2,
                    timeouts: n32 ^ 7,
                    alignment: hi32 ^ 9,
                },
                34 if version == V3 => Avp::CircuitErrors {
                    hardware_overruns: n32,
                    buffer_overruns: hi32,
                    timeouts: 3,
                    alignment: 4,
                },
                35 => Avp::Accm {
                    send: n32,
                    receive: hi32,
                },
                36 => Avp::RandomVector(bytes),
                37 => Avp::PrivateGroupId(bytes),
                38 => Avp::RxConnectSpeed(n32),
                39 => Avp::SequencingRequired,
                40 => Avp::PppDisconnectCause {
                    code: n16,
                    protocol: hi32 as u16,
                    direction: byte,
                    message: bytes,
                },
                41 => Avp::ExtendedVendorId {
                    vendor_id: n32,
                    attr_type: n16,
                    value: bytes,
                },
                42 => Avp::MessageDigest {
                    digest_type: 0,
                    digest: arr16.to_vec(),
                },
                43 => Avp::MessageDigest {
                    digest_type: 1,
                    digest: [&arr16[..], &[byte; 4][..]].concat(),
                },
                44 => Avp::RouterId(n32),
                45 => Avp::AssignedControlConnectionId(n32),
                46 => Avp::PseudowireCapabilities(list),
                47 => Avp::LocalSessionId(n32),
                48 => Avp::RemoteSessionId(n32),
                49 => Avp::AssignedCookie(arr16[..[0, 4, 8][usize::from(byte % 3)]].to_vec()),
                50 => Avp::RemoteEndId(bytes),
                51 => Avp::PseudowireType(n16),
                52 => Avp::L2SpecificSublayer(n16),
                53 => Avp::DataSequencing(n16),
                54 => Avp::CircuitStatus { active: x, new: y },
                55 => Avp::PreferredLanguage(bytes),
                56 => Avp::ControlMessageAuthNonce(bytes),
                57 => Avp::TxConnectSpeedV3(n),
                58 => Avp::RxConnectSpeedV3(n),
                59 => Avp::FailoverCapability {
                    control: x,
                    data: y,
                    recovery_time_ms: n32,
                },
                60 => Avp::TunnelRecovery {
                    tunnel_id: id(n32),
                    remote_tunnel_id: id(hi32),
                },
                61 => Avp::SuggestedControlSequence {
                    ns: n16,
                    nr: hi32 as u16,
                },
                62 => Avp::FailoverSessionState {
                    session_id: id(n32),
                    remote_session_id: id(hi32),
                },
                63 => Avp::Unknown {
                    vendor_id: n16 | 1,
                    attr_type: hi32 as u16,
                    value: bytes,
                },
                64 => Avp::Unknown {
                    vendor_id: 0,
                    attr_type: 200 + (n16 % 1000),
                    value: bytes,
                },
                _ => Avp::MessageDigest {
                    digest_type: 2 + byte % 250,
                    digest: bytes,
                },
            }
        })
}

pub fn repr_strategy(version: Version) -> impl Strategy<Value = AvpRepr> {
    (avp_strategy(version), any::<bool>(), any::<bool>()).prop_map(move |(avp, m, hide)| {
        let may_hide = avp.avp_type().is_none_or(AvpType::may_be_hidden);
        AvpRepr {
            mandatory: m,
            hidden: hide && may_hide,
            avp,
        }
    })
}
