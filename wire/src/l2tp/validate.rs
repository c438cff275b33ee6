//! Validation of received control messages: what a receiver must check and how it answers.
//!
//! Rules, in the order they are applied:
//! 1. A ZLB (no AVPs) is valid (RFC 2661 §5.8, RFC 3931 §6.15).
//! 2. The first AVP must be an unhidden Message Type AVP (RFC 2661 §4.4.1, RFC 3931 §5.4.1),
//!    else StopCCN (Result Code 2, Error Code 3). A vendor-specific Message Type (Vendor ID != 0,
//!    RFC 3931 §5.4.1) and a type the version does not define are unknown message types: with
//!    M=1 the tunnel is cleared (StopCCN, 2/3), with M=0 the message is ignored.
//! 3. Each further AVP: an unrecognised (unknown or vendor) AVP with M=1 — or a hidden one that
//!    could not be unhidden with M=1 — shuts down the session (CDN) for a session message or the
//!    tunnel (StopCCN) otherwise, with Result Code 2 and Error Code 8 (RFC 2661 §4.2, RFC 3931
//!    §5.2); with M=0 it is ignored. In FSQ and FSR every AVP other than Failover Session State,
//!    Random Vector and Message Digest is ignored (RFC 4951 §4). RFC 4951 AVPs outside the
//!    messages they are defined for (76: SCCRQ/SCCRP, 77: SCCRQ, 78: SCCRP, 79: FSQ/FSR; §5)
//!    are treated like unrecognised AVPs (Error Code 3 when M=1). A Message Digest AVP must be
//!    second, a second one third (RFC 3931 §5.4.1), else the message is dropped. Zero Assigned
//!    Tunnel/Control Connection/Session/Local Session IDs and a zero Receive Window Size are out
//!    of range (Error Code 3). An L2TPv2 Protocol Version other than 1.0 gets StopCCN Result
//!    Code 5 with Error Code 0x0100, the highest version supported (RFC 2661 §4.4.2).
//! 4. Every AVP the message type must carry is present (RFC 2661 §6.1-§6.14, RFC 3931
//!    §6.1-§6.15, RFC 4951 §4.1-§4.2), else CDN/StopCCN with Result Code 2, Error Code 3.
//!
//! [`validate_bytes`] runs the parse too: a malformed header is dropped (RFC 3931 §7.1), broken
//! AVP framing clears the tunnel or session with Error Code 2, and a malformed AVP value is
//! ignored when its M bit is 0 and otherwise answered with Error Code 2 (wrong length) or 3
//! (RFC 3931 §7.1).

use super::avp::{Avp, AvpIter, AvpRepr, AvpType, WRONG_LENGTH};
use super::codes::{ErrorCode, StopCcnResult};
use super::header::{ControlHeader, Version};
use super::message::{ControlMessage, MessageType};
use crate::error::Error;

/// What the receiver of an invalid message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Action {
    /// Tear down the control connection: send a StopCCN with the result and error codes.
    StopCcn,
    /// Tear down the session the message belongs to: send a CDN with the result and error codes.
    Cdn,
    /// Drop the message silently (still acknowledging it at the transport level).
    Ignore,
}

/// Why a message is not acceptable and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Violation {
    /// What to do.
    pub action: Action,
    /// The Result Code to send (StopCCN or CDN values); 0 for [`Action::Ignore`].
    pub result_code: u16,
    /// The Error Code to send; 0 for [`Action::Ignore`].
    pub error_code: u16,
    /// Human-readable text for the Error Message and logs.
    pub message: String,
}

impl Violation {
    fn new(action: Action, result_code: u16, error_code: u16, message: String) -> Self {
        Violation {
            action,
            result_code,
            error_code,
            message,
        }
    }

    fn ignore(message: String) -> Self {
        Self::new(Action::Ignore, 0, 0, message)
    }

    /// The Result Code AVP to send in the StopCCN or CDN (`None` for [`Action::Ignore`]).
    pub fn result_code_avp(&self) -> Option<Avp> {
        (self.action != Action::Ignore).then(|| Avp::ResultCode {
            result: self.result_code,
            error: Some(self.error_code),
            message: self.message.as_bytes().to_vec(),
        })
    }
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:?} (result {}, error {}): {}",
            self.action, self.result_code, self.error_code, self.message
        )
    }
}

impl std::error::Error for Violation {}

/// The AVPs besides the Message Type that a message type must carry in a version
/// (RFC 2661 §6.1-§6.14, RFC 3931 §6.1-§6.15, RFC 4951 §4.1-§4.2). Empty for unknown types.
pub fn mandatory_avps(version: Version, t: MessageType) -> &'static [AvpType] {
    use AvpType as A;
    use MessageType as M;
    match (version, t) {
        (_, M::Fsq | M::Fsr) => &[A::FailoverSessionState],
        (_, M::Scccn | M::Hello | M::Ack | M::Unknown(_)) => &[],
        (Version::V2, M::Sccrq | M::Sccrp) => &[
            A::ProtocolVersion,
            A::HostName,
            A::FramingCapabilities,
            A::AssignedTunnelId,
        ],
        (Version::V2, M::StopCcn) => &[A::AssignedTunnelId, A::ResultCode],
        (Version::V2, M::Icrq) => &[A::AssignedSessionId, A::CallSerialNumber],
        (Version::V2, M::Icrp | M::Ocrp) => &[A::AssignedSessionId],
        (Version::V2, M::Iccn | M::Occn) => &[A::TxConnectSpeed, A::FramingType],
        (Version::V2, M::Ocrq) => &[
            A::AssignedSessionId,
            A::CallSerialNumber,
            A::MinimumBps,
            A::MaximumBps,
            A::BearerType,
            A::FramingType,
            A::CalledNumber,
        ],
        (Version::V2, M::Cdn) => &[A::ResultCode, A::AssignedSessionId],
        (Version::V2, M::Wen) => &[A::CallErrors],
        (Version::V2, M::Sli) => &[A::Accm],
        (Version::V3, M::Sccrq | M::Sccrp) => &[
            A::HostName,
            A::RouterId,
            A::AssignedControlConnectionId,
            A::PseudowireCapabilities,
        ],
        (Version::V3, M::StopCcn) => &[A::ResultCode],
        (Version::V3, M::Icrq | M::Ocrq) => &[
            A::LocalSessionId,
            A::RemoteSessionId,
            A::CallSerialNumber,
            A::PseudowireType,
            A::RemoteEndId,
            A::CircuitStatus,
        ],
        (Version::V3, M::Icrp | M::Ocrp) => {
            &[A::LocalSessionId, A::RemoteSessionId, A::CircuitStatus]
        }
        (Version::V3, M::Iccn | M::Occn | M::Sli) => &[A::LocalSessionId, A::RemoteSessionId],
        (Version::V3, M::Cdn) => &[A::ResultCode, A::LocalSessionId, A::RemoteSessionId],
        (Version::V3, M::Wen) => &[A::LocalSessionId, A::RemoteSessionId, A::CallErrors],
    }
}

/// Whether an attribute may appear in a message type. Only the restrictions of RFC 4951 §5 are
/// enforced (76 only in SCCRQ/SCCRP, 77 only in SCCRQ, 78 only in SCCRP, 79 only in FSQ/FSR);
/// other AVPs are accepted anywhere, as receivers ignore recognised AVPs they have no use for.
pub fn allowed_in(t: AvpType, m: MessageType) -> bool {
    use MessageType as M;
    match t {
        AvpType::FailoverCapability => matches!(m, M::Sccrq | M::Sccrp),
        AvpType::TunnelRecovery => m == M::Sccrq,
        AvpType::SuggestedControlSequence => m == M::Sccrp,
        AvpType::FailoverSessionState => matches!(m, M::Fsq | M::Fsr),
        _ => true,
    }
}

/// The General Error Code for a parse error: 2 ("Length is wrong") for truncation and length
/// problems, 3 ("out of range") otherwise.
pub fn error_code_for(e: &Error) -> u16 {
    match e {
        Error::Truncated { .. } => ErrorCode::BAD_LENGTH.0,
        Error::Malformed { why, .. }
            if *why == WRONG_LENGTH || why.contains("Length") || why.contains("octets") =>
        {
            ErrorCode::BAD_LENGTH.0
        }
        _ => ErrorCode::OUT_OF_RANGE.0,
    }
}

fn scope_action(t: Option<MessageType>) -> Action {
    if t.is_some_and(MessageType::is_session_scoped) {
        Action::Cdn
    } else {
        Action::StopCcn
    }
}

/// The Result Code that means "general error, see Error Code" (2 for both StopCCN and CDN).
const GENERAL_ERROR: u16 = 2;

fn avp_label(a: &AvpRepr, version: Version) -> String {
    a.avp.name(version)
}

/// Checks a parsed message against the rules in the module documentation.
pub fn validate(msg: &ControlMessage) -> Result<(), Violation> {
    let version = msg.version();
    let Some(first) = msg.avps.first() else {
        return Ok(());
    };
    let stop = |error: u16, message: String| {
        Err(Violation::new(
            Action::StopCcn,
            GENERAL_ERROR,
            error,
            message,
        ))
    };
    let mt = match &first.avp {
        Avp::MessageType(t) if !first.hidden => *t,
        Avp::MessageType(_) | Avp::Hidden { attr_type: 0, .. } => {
            return stop(
                ErrorCode::OUT_OF_RANGE.0,
                "the Message Type AVP MUST NOT be hidden".into(),
            )
        }
        Avp::Unknown {
            vendor_id,
            attr_type: 0,
            value,
        } if *vendor_id != 0 => {
            let text = format!("vendor {vendor_id} message type {value:02x?}");
            return if first.mandatory {
                stop(
                    ErrorCode::OUT_OF_RANGE.0,
                    format!("unknown mandatory {text}"),
                )
            } else {
                Err(Violation::ignore(format!("ignored unknown {text}")))
            };
        }
        _ => {
            return stop(
                ErrorCode::OUT_OF_RANGE.0,
                "the first AVP is not the Message Type AVP".into(),
            )
        }
    };
    if !mt.is_known(version) {
        return if first.mandatory {
            stop(
                ErrorCode::OUT_OF_RANGE.0,
                format!("unknown mandatory message type {}", mt.value()),
            )
        } else {
            Err(Violation::ignore(format!(
                "ignored unknown message type {}",
                mt.value()
            )))
        };
    }
    let action = scope_action(Some(mt));
    let fail =
        |error: u16, message: String| Err(Violation::new(action, GENERAL_ERROR, error, message));
    let failover_query = matches!(mt, MessageType::Fsq | MessageType::Fsr);
    for (i, a) in msg.avps.iter().enumerate().skip(1) {
        let t = a.avp.avp_type();
        // RFC 4951 §4: other AVPs in FSQ/FSR SHOULD be ignored on receipt.
        if failover_query
            && !matches!(
                t,
                Some(
                    AvpType::FailoverSessionState | AvpType::RandomVector | AvpType::MessageDigest
                )
            )
        {
            continue;
        }
        let Some(t) = t else {
            // Unknown, vendor or still-hidden AVP.
            if a.mandatory {
                let what = match a.avp {
                    Avp::Hidden { .. } => "hidden AVP that could not be unhidden",
                    _ => "unknown mandatory AVP",
                };
                return fail(
                    ErrorCode::UNKNOWN_MANDATORY_AVP.0,
                    format!("{what}: {}", avp_label(a, version)),
                );
            }
            continue;
        };
        if !allowed_in(t, mt) {
            if a.mandatory {
                return fail(
                    ErrorCode::OUT_OF_RANGE.0,
                    format!("{} AVP is not allowed in {}", t.name(), mt.short_name()),
                );
            }
            continue;
        }
        match &a.avp {
            Avp::MessageDigest { .. } => {
                let second_of_two = i == 2 && matches!(msg.avps[1].avp, Avp::MessageDigest { .. });
                if i != 1 && !second_of_two {
                    return Err(Violation::ignore(
                        "Message Digest AVP not right after the Message Type AVP".into(),
                    ));
                }
            }
            Avp::ProtocolVersion {
                version: ver,
                revision,
            } if version == Version::V2
                && matches!(mt, MessageType::Sccrq | MessageType::Sccrp)
                && (*ver, *revision) != (1, 0) =>
            {
                return Err(Violation::new(
                    Action::StopCcn,
                    StopCcnResult::BAD_PROTOCOL_VERSION.0,
                    0x0100,
                    format!("protocol version {ver}.{revision} is not supported (1.0 is)"),
                ));
            }
            Avp::AssignedTunnelId(0)
            | Avp::AssignedControlConnectionId(0)
            | Avp::AssignedSessionId(0)
            | Avp::LocalSessionId(0)
            | Avp::ReceiveWindowSize(0) => {
                return fail(
                    ErrorCode::OUT_OF_RANGE.0,
                    format!("{} AVP must not be zero", t.name_for(version)),
                );
            }
            _ => {}
        }
    }
    for need in mandatory_avps(version, mt) {
        if !msg.avps.iter().any(|a| a.avp.attr() == (0, need.value())) {
            return fail(
                ErrorCode::OUT_OF_RANGE.0,
                format!(
                    "{} is missing the mandatory {} AVP",
                    mt.short_name(),
                    need.name_for(version)
                ),
            );
        }
    }
    Ok(())
}

/// Parses and validates a received control message (over IP, after the zero Session ID): the
/// one entry point for the control plane. Returns the message (without the malformed M=0 AVPs
/// it ignored) or how to answer it.
pub fn validate_bytes(buf: &[u8], secret: Option<&[u8]>) -> Result<ControlMessage, Violation> {
    let (header, body): (ControlHeader, &[u8]) = ControlHeader::parse(buf)
        .map_err(|e| Violation::ignore(format!("malformed control header: {e}")))?;
    let version = header.version;
    let mut avps = Vec::new();
    let mut rv: Option<Vec<u8>> = None;
    let mut mt: Option<MessageType> = None;
    for (i, p) in AvpIter::new(body).enumerate() {
        let p = p.map_err(|e| {
            Violation::new(
                scope_action(mt),
                GENERAL_ERROR,
                ErrorCode::BAD_LENGTH.0,
                format!("AVP framing: {e}"),
            )
        })?;
        match AvpRepr::parse(&p, version, secret, rv.as_deref()) {
            Ok(r) => {
                if i == 0 {
                    if let Avp::MessageType(t) = r.avp {
                        mt = Some(t);
                    }
                }
                if let Avp::RandomVector(v) = &r.avp {
                    rv = Some(v.clone());
                }
                avps.push(r);
            }
            // RFC 3931 §7.1: a malformed AVP with M=0 is ignored.
            Err(_) if i > 0 && !p.mandatory() => {}
            Err(e) => {
                let action = if i == 0 {
                    Action::StopCcn
                } else {
                    scope_action(mt)
                };
                let name = super::avp::attr_name(p.vendor_id(), p.attr_type(), version)
                    .map_or_else(
                        || format!("vendor {} attribute {}", p.vendor_id(), p.attr_type()),
                        str::to_string,
                    );
                return Err(Violation::new(
                    action,
                    GENERAL_ERROR,
                    error_code_for(&e),
                    format!("malformed {name} AVP: {e}"),
                ));
            }
        }
    }
    let msg = ControlMessage { header, avps };
    validate(&msg)?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2tp::message::examples::{examples, TEST_SECRET};

    #[test]
    fn examples_are_valid() {
        for v in [Version::V2, Version::V3] {
            for m in examples(v) {
                assert_eq!(validate(&m), Ok(()), "{m:?}");
                let b = m.to_bytes(Some(TEST_SECRET)).expect("emits");
                assert_eq!(validate_bytes(&b, Some(TEST_SECRET)), Ok(m.clone()));
                // Without the secret hidden AVPs stay hidden: fatal only when their M bit is 1.
                let r = validate_bytes(&b, None);
                let has_hidden_m = m.avps.iter().any(|a| a.hidden && a.mandatory);
                assert_eq!(r.is_err(), has_hidden_m, "{m:?}");
            }
        }
    }

    #[test]
    fn violation_result_avp() {
        let v = Violation::new(Action::Cdn, 2, 8, "x".into());
        assert_eq!(
            v.result_code_avp(),
            Some(Avp::ResultCode {
                result: 2,
                error: Some(8),
                message: b"x".to_vec()
            })
        );
        assert_eq!(Violation::ignore("y".into()).result_code_avp(), None);
    }

    #[test]
    fn error_codes_for_parse_errors() {
        assert_eq!(
            error_code_for(&Error::Malformed {
                what: "x",
                why: WRONG_LENGTH
            }),
            2
        );
        assert_eq!(
            error_code_for(&Error::Malformed {
                what: "x",
                why: "no Random Vector AVP precedes it"
            }),
            3
        );
    }
}
