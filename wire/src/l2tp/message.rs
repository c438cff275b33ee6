//! Control messages: message types (RFC 2661 §3.2, RFC 3931 §3.1, RFC 4951 §4) and whole
//! messages, a [`ControlHeader`] followed by AVPs, the Message Type AVP first (RFC 2661 §4.4.1).
//!
//! A message without AVPs is a Zero-Length Body acknowledgement (RFC 2661 §5.8, RFC 3931 §6.15).

use super::avp::{Avp, AvpIter, AvpRepr, AvpType};
use super::header::{ControlHeader, Version};
use crate::error::{check_room, Result};

#[cfg(any(test, feature = "examples"))]
pub use self::examples::examples;

/// A control message type (the value of the Message Type AVP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum MessageType {
    /// 1: Start-Control-Connection-Request.
    Sccrq,
    /// 2: Start-Control-Connection-Reply.
    Sccrp,
    /// 3: Start-Control-Connection-Connected.
    Scccn,
    /// 4: Stop-Control-Connection-Notification.
    StopCcn,
    /// 6: Hello.
    Hello,
    /// 7: Outgoing-Call-Request.
    Ocrq,
    /// 8: Outgoing-Call-Reply.
    Ocrp,
    /// 9: Outgoing-Call-Connected.
    Occn,
    /// 10: Incoming-Call-Request.
    Icrq,
    /// 11: Incoming-Call-Reply.
    Icrp,
    /// 12: Incoming-Call-Connected.
    Iccn,
    /// 14: Call-Disconnect-Notify.
    Cdn,
    /// 15: WAN-Error-Notify.
    Wen,
    /// 16: Set-Link-Info.
    Sli,
    /// 20: Explicit Acknowledgement (RFC 3931 §6.15; L2TPv3 only).
    Ack,
    /// 21: Failover Session Query (RFC 4951 §4.1).
    Fsq,
    /// 22: Failover Session Response (RFC 4951 §4.2).
    Fsr,
    /// Any other value, including the reserved 0, 5 and 13.
    Unknown(u16),
}

impl MessageType {
    /// Every defined message type.
    pub const ALL: [MessageType; 17] = [
        MessageType::Sccrq,
        MessageType::Sccrp,
        MessageType::Scccn,
        MessageType::StopCcn,
        MessageType::Hello,
        MessageType::Ocrq,
        MessageType::Ocrp,
        MessageType::Occn,
        MessageType::Icrq,
        MessageType::Icrp,
        MessageType::Iccn,
        MessageType::Cdn,
        MessageType::Wen,
        MessageType::Sli,
        MessageType::Ack,
        MessageType::Fsq,
        MessageType::Fsr,
    ];

    /// The type a Message Type value names.
    pub const fn from_u16(v: u16) -> Self {
        match v {
            1 => MessageType::Sccrq,
            2 => MessageType::Sccrp,
            3 => MessageType::Scccn,
            4 => MessageType::StopCcn,
            6 => MessageType::Hello,
            7 => MessageType::Ocrq,
            8 => MessageType::Ocrp,
            9 => MessageType::Occn,
            10 => MessageType::Icrq,
            11 => MessageType::Icrp,
            12 => MessageType::Iccn,
            14 => MessageType::Cdn,
            15 => MessageType::Wen,
            16 => MessageType::Sli,
            20 => MessageType::Ack,
            21 => MessageType::Fsq,
            22 => MessageType::Fsr,
            v => MessageType::Unknown(v),
        }
    }

    /// The Message Type value.
    pub const fn value(self) -> u16 {
        match self {
            MessageType::Sccrq => 1,
            MessageType::Sccrp => 2,
            MessageType::Scccn => 3,
            MessageType::StopCcn => 4,
            MessageType::Hello => 6,
            MessageType::Ocrq => 7,
            MessageType::Ocrp => 8,
            MessageType::Occn => 9,
            MessageType::Icrq => 10,
            MessageType::Icrp => 11,
            MessageType::Iccn => 12,
            MessageType::Cdn => 14,
            MessageType::Wen => 15,
            MessageType::Sli => 16,
            MessageType::Ack => 20,
            MessageType::Fsq => 21,
            MessageType::Fsr => 22,
            MessageType::Unknown(v) => v,
        }
    }

    /// The abbreviation the RFCs use ("SCCRQ", "StopCCN", ...), or "unknown".
    pub const fn short_name(self) -> &'static str {
        match self {
            MessageType::Sccrq => "SCCRQ",
            MessageType::Sccrp => "SCCRP",
            MessageType::Scccn => "SCCCN",
            MessageType::StopCcn => "StopCCN",
            MessageType::Hello => "HELLO",
            MessageType::Ocrq => "OCRQ",
            MessageType::Ocrp => "OCRP",
            MessageType::Occn => "OCCN",
            MessageType::Icrq => "ICRQ",
            MessageType::Icrp => "ICRP",
            MessageType::Iccn => "ICCN",
            MessageType::Cdn => "CDN",
            MessageType::Wen => "WEN",
            MessageType::Sli => "SLI",
            MessageType::Ack => "ACK",
            MessageType::Fsq => "FSQ",
            MessageType::Fsr => "FSR",
            MessageType::Unknown(_) => "unknown",
        }
    }

    /// The full name ("Start-Control-Connection-Request", ...), or "unknown".
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Sccrq => "Start-Control-Connection-Request",
            MessageType::Sccrp => "Start-Control-Connection-Reply",
            MessageType::Scccn => "Start-Control-Connection-Connected",
            MessageType::StopCcn => "Stop-Control-Connection-Notification",
            MessageType::Hello => "Hello",
            MessageType::Ocrq => "Outgoing-Call-Request",
            MessageType::Ocrp => "Outgoing-Call-Reply",
            MessageType::Occn => "Outgoing-Call-Connected",
            MessageType::Icrq => "Incoming-Call-Request",
            MessageType::Icrp => "Incoming-Call-Reply",
            MessageType::Iccn => "Incoming-Call-Connected",
            MessageType::Cdn => "Call-Disconnect-Notify",
            MessageType::Wen => "WAN-Error-Notify",
            MessageType::Sli => "Set-Link-Info",
            MessageType::Ack => "Explicit-Acknowledgement",
            MessageType::Fsq => "Failover-Session-Query",
            MessageType::Fsr => "Failover-Session-Response",
            MessageType::Unknown(_) => "unknown",
        }
    }

    /// Whether the message belongs to a session (call management, error reporting, link info:
    /// RFC 2661 §4.2, RFC 3931 §5.2) rather than to the control connection. An unrecognised
    /// mandatory AVP in a session message is answered with a CDN, otherwise with a StopCCN.
    /// FSQ and FSR are carried by the control connection (session ID 0) and count as tunnel
    /// messages.
    pub const fn is_session_scoped(self) -> bool {
        matches!(
            self,
            MessageType::Ocrq
                | MessageType::Ocrp
                | MessageType::Occn
                | MessageType::Icrq
                | MessageType::Icrp
                | MessageType::Iccn
                | MessageType::Cdn
                | MessageType::Wen
                | MessageType::Sli
        )
    }

    /// Whether `version` defines this type: ACK is L2TPv3 only (RFC 3931 §3.1); FSQ and FSR
    /// exist in both (RFC 4951 §4).
    pub const fn is_known(self, version: Version) -> bool {
        match self {
            MessageType::Unknown(_) => false,
            MessageType::Ack => matches!(version, Version::V3),
            _ => true,
        }
    }

    /// The M bit of this type's Message Type AVP: 1 (RFC 2661 §4.4.1), except 0 for FSQ and FSR
    /// (RFC 4951 §4.1, §4.2).
    pub const fn message_type_mandatory(self) -> bool {
        !matches!(self, MessageType::Fsq | MessageType::Fsr)
    }
}

/// What [`ControlMessage::parse`] needs besides the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseContext<'a> {
    /// The tunnel's shared secret, to unhide hidden AVPs (for L2TPv3 the hiding key is derived
    /// from it, RFC 3931 §5.3). Without it hidden AVPs are kept as [`Avp::Hidden`].
    pub secret: Option<&'a [u8]>,
}

/// A control message: header and AVPs in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ControlMessage {
    /// The control header.
    pub header: ControlHeader,
    /// The AVPs, the Message Type first (none for a ZLB).
    pub avps: Vec<AvpRepr>,
}

impl ControlMessage {
    /// A message of type `message_type`: the Message Type AVP first, then `avps`, each with the
    /// M bit [`AvpRepr::new`] chooses, none hidden.
    pub fn build(header: ControlHeader, message_type: MessageType, avps: Vec<Avp>) -> Self {
        let v = header.version;
        let mut all = Vec::with_capacity(avps.len() + 1);
        all.push(AvpRepr::new(Avp::MessageType(message_type), v));
        all.extend(avps.into_iter().map(|a| AvpRepr::new(a, v)));
        ControlMessage { header, avps: all }
    }

    /// A Zero-Length Body acknowledgement.
    pub fn zlb(header: ControlHeader) -> Self {
        ControlMessage {
            header,
            avps: Vec::new(),
        }
    }

    /// Parses a control message (over IP, the caller strips the zero Session ID first, see
    /// [`super::header::split_ip`]). Bytes after the header's Length are ignored. A hidden AVP
    /// is unhidden with the Random Vector AVP most closely preceding it (RFC 2661 §4.3).
    pub fn parse(buf: &[u8], ctx: &ParseContext<'_>) -> Result<Self> {
        let (header, body) = ControlHeader::parse(buf)?;
        let mut avps = Vec::new();
        let mut rv: Option<Vec<u8>> = None;
        for p in AvpIter::new(body) {
            let r = AvpRepr::parse(&p?, header.version, ctx.secret, rv.as_deref())?;
            if let Avp::RandomVector(v) = &r.avp {
                rv = Some(v.clone());
            }
            avps.push(r);
        }
        Ok(ControlMessage { header, avps })
    }

    /// The length [`emit`](Self::emit) will write.
    pub fn emit_len(&self) -> Result<usize> {
        let mut n = ControlHeader::LEN;
        for a in &self.avps {
            n += a.emit_len(self.header.version)?;
        }
        Ok(n)
    }

    /// Emits the message into the front of `buf` and returns its length. AVPs marked hidden are
    /// hidden with `secret` and the Random Vector AVP most closely preceding them; without
    /// either this fails.
    pub fn emit(&self, buf: &mut [u8], secret: Option<&[u8]>) -> Result<usize> {
        let total = self.emit_len()?;
        check_room("L2TP control message", buf, total)?;
        let v = self.header.version;
        let mut at = self.header.emit(buf, total - ControlHeader::LEN)?;
        let mut rv: Option<&[u8]> = None;
        for a in &self.avps {
            at += a.emit(&mut buf[at..total], v, secret, rv)?;
            if let Avp::RandomVector(r) = &a.avp {
                rv = Some(r);
            }
        }
        Ok(at)
    }

    /// Emits the message into a new buffer.
    pub fn to_bytes(&self, secret: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut buf = vec![0; self.emit_len()?];
        let n = self.emit(&mut buf, secret)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The L2TP version.
    pub fn version(&self) -> Version {
        self.header.version
    }

    /// Whether this is a Zero-Length Body acknowledgement.
    pub fn is_zlb(&self) -> bool {
        self.avps.is_empty()
    }

    /// The message type, when the first AVP is an IETF Message Type AVP.
    pub fn message_type(&self) -> Option<MessageType> {
        match self.avps.first().map(|a| &a.avp) {
            Some(Avp::MessageType(t)) => Some(*t),
            _ => None,
        }
    }

    /// The first AVP of an attribute (typed, or [`Avp::Hidden`] when it could not be unhidden).
    pub fn get(&self, t: AvpType) -> Option<&Avp> {
        self.get_all(t).next()
    }

    /// The first AVP of an attribute with its header bits.
    pub fn get_repr(&self, t: AvpType) -> Option<&AvpRepr> {
        self.avps.iter().find(|a| a.avp.attr() == (0, t.value()))
    }

    /// Every AVP of an attribute, in order.
    pub fn get_all(&self, t: AvpType) -> impl Iterator<Item = &Avp> + '_ {
        self.avps
            .iter()
            .filter(move |a| a.avp.attr() == (0, t.value()))
            .map(|a| &a.avp)
    }

    /// The sender's tunnel identifier: Assigned Tunnel ID (v2) or Assigned Control Connection
    /// ID (v3).
    pub fn assigned_tunnel_id(&self) -> Option<u32> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::AssignedTunnelId(id) => Some(u32::from(id)),
            Avp::AssignedControlConnectionId(id) => Some(id),
            _ => None,
        })
    }

    /// The sender's session identifier: Assigned Session ID (v2) or Local Session ID (v3).
    pub fn assigned_session_id(&self) -> Option<u32> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::AssignedSessionId(id) => Some(u32::from(id)),
            Avp::LocalSessionId(id) => Some(id),
            _ => None,
        })
    }

    /// The Remote Session ID (v3).
    pub fn remote_session_id(&self) -> Option<u32> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::RemoteSessionId(id) => Some(id),
            _ => None,
        })
    }

    /// The Result Code AVP: result, error code, error message.
    pub fn result_code(&self) -> Option<(u16, Option<u16>, &[u8])> {
        self.avps.iter().find_map(|a| match &a.avp {
            Avp::ResultCode {
                result,
                error,
                message,
            } => Some((*result, *error, message.as_slice())),
            _ => None,
        })
    }

    /// The Host Name.
    pub fn host_name(&self) -> Option<&[u8]> {
        self.avps.iter().find_map(|a| match &a.avp {
            Avp::HostName(n) => Some(n.as_slice()),
            _ => None,
        })
    }

    /// The Receive Window Size.
    pub fn receive_window_size(&self) -> Option<u16> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::ReceiveWindowSize(w) => Some(w),
            _ => None,
        })
    }

    /// The Failover Capability AVP: (C, D, recovery time in ms) (RFC 4951 §5.1).
    pub fn failover_capability(&self) -> Option<(bool, bool, u32)> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::FailoverCapability {
                control,
                data,
                recovery_time_ms,
            } => Some((control, data, recovery_time_ms)),
            _ => None,
        })
    }

    /// The Tunnel Recovery AVP: (recover tunnel ID, recover remote tunnel ID) (RFC 4951 §5.2).
    pub fn tunnel_recovery(&self) -> Option<(u32, u32)> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::TunnelRecovery {
                tunnel_id,
                remote_tunnel_id,
            } => Some((tunnel_id, remote_tunnel_id)),
            _ => None,
        })
    }

    /// The Suggested Control Sequence AVP: (Ns, Nr) (RFC 4951 §5.3).
    pub fn suggested_control_sequence(&self) -> Option<(u16, u16)> {
        self.avps.iter().find_map(|a| match a.avp {
            Avp::SuggestedControlSequence { ns, nr } => Some((ns, nr)),
            _ => None,
        })
    }

    /// Every Failover Session State AVP: (session ID, remote session ID) (RFC 4951 §5.4).
    pub fn failover_session_states(&self) -> Vec<(u32, u32)> {
        self.avps
            .iter()
            .filter_map(|a| match a.avp {
                Avp::FailoverSessionState {
                    session_id,
                    remote_session_id,
                } => Some((session_id, remote_session_id)),
                _ => None,
            })
            .collect()
    }
}

/// Representative, valid example messages of every type for each version, for tests and the
/// decoder's self-check (feature `examples`: not in the product's build).
#[cfg(any(test, feature = "examples"))]
pub mod examples {
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
        0x5a, 0x17, 0xc3, 0x09, 0x88, 0x4e, 0xd2, 0x61, 0x0b, 0xf4, 0x3c, 0x95, 0x72, 0xae, 0x1d,
        0x66,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_values() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_u16(t.value()), t);
        }
        assert_eq!(MessageType::from_u16(5), MessageType::Unknown(5));
        assert_eq!(MessageType::from_u16(13), MessageType::Unknown(13));
        assert_eq!(MessageType::from_u16(0), MessageType::Unknown(0));
        assert_eq!(MessageType::Fsq.value(), 21);
        assert_eq!(MessageType::Fsr.short_name(), "FSR");
        assert!(MessageType::Cdn.is_session_scoped());
        assert!(!MessageType::StopCcn.is_session_scoped());
        assert!(!MessageType::Ack.is_known(Version::V2));
        assert!(MessageType::Ack.is_known(Version::V3));
    }

    #[test]
    fn examples_round_trip() {
        let ctx = ParseContext {
            secret: Some(examples::TEST_SECRET),
        };
        for v in [Version::V2, Version::V3] {
            let ex = examples(v);
            assert!(ex.iter().any(|m| m.avps.iter().any(|a| a.hidden)));
            for m in ex {
                let b = m.to_bytes(Some(examples::TEST_SECRET)).expect("emits");
                assert_eq!(b.len(), m.emit_len().expect("len"));
                let back = ControlMessage::parse(&b, &ctx).expect("parses");
                assert_eq!(back, m);
                // Without the secret the hidden values stay hidden and still re-emit exactly.
                let opaque = ControlMessage::parse(&b, &ParseContext::default()).expect("parses");
                assert_eq!(opaque.to_bytes(None).expect("emits"), b);
            }
        }
    }

    #[test]
    fn hidden_needs_secret_and_random_vector() {
        let h = ControlHeader {
            version: Version::V2,
            tunnel_id: 1,
            session_id: 0,
            ns: 0,
            nr: 0,
        };
        let mut m = ControlMessage::build(h, MessageType::Sccrq, vec![Avp::AssignedTunnelId(5)]);
        m.avps[1].hidden = true;
        assert!(m.to_bytes(Some(b"s")).is_err());
        m.avps
            .insert(1, AvpRepr::new(Avp::RandomVector(vec![1; 16]), Version::V2));
        assert!(m.to_bytes(None).is_err());
        let b = m.to_bytes(Some(b"s")).expect("emits");
        let back = ControlMessage::parse(&b, &ParseContext { secret: Some(b"s") }).expect("parses");
        assert_eq!(back, m);
        assert_eq!(
            back.get(AvpType::AssignedTunnelId),
            Some(&Avp::AssignedTunnelId(5))
        );
        assert_eq!(back.assigned_tunnel_id(), Some(5));
    }
}
