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

#[cfg(any(test, feature = "examples"))]
pub mod examples;

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
