//! Code values carried in AVPs: Result Codes of StopCCN and CDN, General Error Codes (RFC 2661
//! §4.4.2, RFC 3931 §5.4.2 and §10.3), PPP Disconnect Codes (RFC 3145 §3) and Proxy Authen
//! Types (RFC 2661 §4.4.5).
//!
//! Each kind of code is a newtype over the wire value with named constants and a `name()` for
//! printing; values without a name are still representable.

/// A Result Code of a StopCCN message (RFC 2661 §4.4.2, RFC 3931 §5.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct StopCcnResult(pub u16);

impl StopCcnResult {
    /// 0 - Reserved.
    pub const RESERVED: Self = Self(0);
    /// 1 - General request to clear control connection.
    pub const GENERAL_REQUEST: Self = Self(1);
    /// 2 - General error, Error Code indicates the problem.
    pub const GENERAL_ERROR: Self = Self(2);
    /// 3 - Control channel (connection) already exists.
    pub const ALREADY_EXISTS: Self = Self(3);
    /// 4 - Requester is not authorized to establish a control channel.
    pub const NOT_AUTHORIZED: Self = Self(4);
    /// 5 - The protocol version of the requester is not supported; Error Code indicates the
    /// highest version supported.
    pub const BAD_PROTOCOL_VERSION: Self = Self(5);
    /// 6 - Requester is being shut down.
    pub const SHUTTING_DOWN: Self = Self(6);
    /// 7 - Finite state machine error (or timeout, RFC 3931).
    pub const FSM_ERROR: Self = Self(7);

    /// The RFC's description, when the value is defined.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Reserved",
            1 => "General request to clear control connection",
            2 => "General error, Error Code indicates the problem",
            3 => "Control connection already exists",
            4 => "Requester is not authorized to establish a control connection",
            5 => "Protocol version of the requester is not supported",
            6 => "Requester is being shut down",
            7 => "Finite state machine error or timeout",
            _ => return None,
        })
    }
}

/// A Result Code of a CDN message (RFC 2661 §4.4.2; 13..=16 from RFC 3931 §5.4.2 and §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct CdnResult(pub u16);

impl CdnResult {
    /// 0 - Reserved.
    pub const RESERVED: Self = Self(0);
    /// 1 - Call disconnected due to loss of carrier (or circuit disconnect, RFC 3931).
    pub const LOST_CARRIER: Self = Self(1);
    /// 2 - Call disconnected for the reason indicated in Error Code.
    pub const GENERAL_ERROR: Self = Self(2);
    /// 3 - Call disconnected for administrative reasons.
    pub const ADMINISTRATIVE: Self = Self(3);
    /// 4 - Lack of appropriate facilities (temporary condition).
    pub const NO_FACILITIES_TEMPORARY: Self = Self(4);
    /// 5 - Lack of appropriate facilities (permanent condition).
    pub const NO_FACILITIES_PERMANENT: Self = Self(5);
    /// 6 - Invalid destination.
    pub const INVALID_DESTINATION: Self = Self(6);
    /// 7 - Call failed due to no carrier detected.
    pub const NO_CARRIER: Self = Self(7);
    /// 8 - Call failed due to detection of a busy signal.
    pub const BUSY: Self = Self(8);
    /// 9 - Call failed due to lack of a dial tone.
    pub const NO_DIAL_TONE: Self = Self(9);
    /// 10 - Call was not established within time allotted by LAC.
    pub const TIMEOUT: Self = Self(10);
    /// 11 - Call was connected but no appropriate framing was detected.
    pub const NO_FRAMING: Self = Self(11);
    /// 13 - Session not established due to losing tie breaker (L2TPv3).
    pub const LOST_TIE_BREAKER: Self = Self(13);
    /// 14 - Session not established due to unsupported PW type (L2TPv3).
    pub const UNSUPPORTED_PW_TYPE: Self = Self(14);
    /// 15 - Sequencing required without valid L2-Specific Sublayer (L2TPv3).
    pub const SEQUENCING_WITHOUT_L2SS: Self = Self(15);
    /// 16 - Finite state machine error or timeout.
    pub const FSM_ERROR: Self = Self(16);

    /// The RFC's description, when the value is defined.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Reserved",
            1 => "Call disconnected due to loss of carrier",
            2 => "Call disconnected for the reason indicated in error code",
            3 => "Call disconnected for administrative reasons",
            4 => "Call failed due to lack of appropriate facilities (temporary condition)",
            5 => "Call failed due to lack of appropriate facilities (permanent condition)",
            6 => "Invalid destination",
            7 => "Call failed due to no carrier detected",
            8 => "Call failed due to detection of a busy signal",
            9 => "Call failed due to lack of a dial tone",
            10 => "Call was not established within time allotted by LAC",
            11 => "Call was connected but no appropriate framing was detected",
            13 => "Session not established due to losing tie breaker",
            14 => "Session not established due to unsupported PW type",
            15 => "Session not established, sequencing required without valid L2-Specific Sublayer",
            16 => "Finite state machine error or timeout",
            _ => return None,
        })
    }
}

/// A General Error Code of the Result Code AVP (RFC 2661 §4.4.2; 9 from RFC 3931 §5.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// 0 - No general error.
    pub const NO_ERROR: Self = Self(0);
    /// 1 - No control connection exists yet for this LAC-LNS pair.
    pub const NO_CONTROL_CONNECTION: Self = Self(1);
    /// 2 - Length is wrong.
    pub const BAD_LENGTH: Self = Self(2);
    /// 3 - One of the field values was out of range (or a reserved field was non-zero).
    pub const OUT_OF_RANGE: Self = Self(3);
    /// 4 - Insufficient resources to handle this operation now.
    pub const NO_RESOURCES: Self = Self(4);
    /// 5 - The Session ID is invalid in this context.
    pub const INVALID_SESSION_ID: Self = Self(5);
    /// 6 - A generic vendor-specific error occurred.
    pub const VENDOR_SPECIFIC: Self = Self(6);
    /// 7 - Try another.
    pub const TRY_ANOTHER: Self = Self(7);
    /// 8 - Shut down due to receipt of an unknown AVP with the M bit set (RFC 2661 §4.2).
    pub const UNKNOWN_MANDATORY_AVP: Self = Self(8);
    /// 9 - Try another directed (L2TPv3): the Error Message lists addresses.
    pub const TRY_ANOTHER_DIRECTED: Self = Self(9);

    /// The RFC's description, when the value is defined.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "No general error",
            1 => "No control connection exists yet for this pair of peers",
            2 => "Length is wrong",
            3 => "One of the field values was out of range",
            4 => "Insufficient resources to handle this operation now",
            5 => "Invalid Session ID",
            6 => "A generic vendor-specific error occurred",
            7 => "Try another",
            8 => "Unknown AVP with the M bit set",
            9 => "Try another directed",
            _ => return None,
        })
    }
}

/// A Disconnect Code of the PPP Disconnect Cause Code AVP (RFC 3145 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PppDisconnectCode(pub u16);

impl PppDisconnectCode {
    /// 0 - No information available (global).
    pub const NO_INFORMATION: Self = Self(0);
    /// 1 - Administrative disconnect (global).
    pub const ADMINISTRATIVE: Self = Self(1);
    /// 2 - LCP renegotiation at LNS disabled; LNS expects proxy LCP, LAC did not send it.
    pub const LCP_RENEGOTIATION_DISABLED: Self = Self(2);
    /// 3 - Normal disconnection, LCP Terminate-Request sent.
    pub const NORMAL: Self = Self(3);
    /// 4 - Compulsory encryption refused.
    pub const ENCRYPTION_REFUSED: Self = Self(4);
    /// 5 - LCP FSM timeout error.
    pub const LCP_FSM_TIMEOUT: Self = Self(5);
    /// 6 - No recognizable LCP packets were received.
    pub const LCP_NO_PACKETS: Self = Self(6);
    /// 7 - LCP failure: Magic Number error; link possibly looped back.
    pub const LCP_LOOPED_BACK: Self = Self(7);
    /// 8 - LCP link failure: Echo Request timeout.
    pub const LCP_ECHO_TIMEOUT: Self = Self(8);
    /// 9 - Unexpected Endpoint-Discriminator for an existing MP bundle.
    pub const MP_ENDPOINT_DISCRIMINATOR: Self = Self(9);
    /// 10 - Unexpected MRRU for an existing MP bundle.
    pub const MP_MRRU: Self = Self(10);
    /// 11 - Unexpected Short-Sequence-Number option for an existing MP bundle.
    pub const MP_SHORT_SEQUENCE: Self = Self(11);
    /// 12 - Compulsory call-back refused.
    pub const CALLBACK_REFUSED: Self = Self(12);
    /// 13 - Authentication FSM timeout error.
    pub const AUTH_FSM_TIMEOUT: Self = Self(13);
    /// 14 - Unexpected authenticated name for an existing MP bundle.
    pub const MP_AUTH_NAME: Self = Self(14);
    /// 15 - PPP authentication failure: authentication protocol unacceptable.
    pub const AUTH_PROTOCOL_UNACCEPTABLE: Self = Self(15);
    /// 16 - PPP authentication failure: authentication failed.
    pub const AUTH_FAILED: Self = Self(16);
    /// 17 - NCP FSM timeout error.
    pub const NCP_FSM_TIMEOUT: Self = Self(17);
    /// 18 - No NCPs available.
    pub const NO_NCPS: Self = Self(18);
    /// 19 - NCP failure: failed to converge on acceptable addresses.
    pub const NCP_NO_ADDRESS_CONVERGENCE: Self = Self(19);
    /// 20 - NCP failure: user not permitted to use any addresses.
    pub const NCP_ADDRESS_NOT_PERMITTED: Self = Self(20);

    /// A short description (RFC 3145 §3), when the value is defined.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "No information available",
            1 => "Administrative disconnect",
            2 => "LCP renegotiation at LNS disabled; no proxy LCP information from LAC",
            3 => "Normal disconnection, LCP Terminate-Request sent",
            4 => "Compulsory encryption refused",
            5 => "LCP FSM timeout error",
            6 => "No recognizable LCP packets were received",
            7 => "LCP Magic Number error; link possibly looped back",
            8 => "LCP Echo Request timeout",
            9 => "Unexpected Endpoint-Discriminator for existing MP bundle",
            10 => "Unexpected MRRU for existing MP bundle",
            11 => "Unexpected Short-Sequence-Number option for existing MP bundle",
            12 => "Compulsory call-back refused",
            13 => "Authentication FSM timeout error",
            14 => "Unexpected authenticated name for existing MP bundle",
            15 => "Authentication protocol unacceptable",
            16 => "Authentication failed",
            17 => "NCP FSM timeout error",
            18 => "No NCPs available",
            19 => "NCP failed to converge on acceptable addresses",
            20 => "NCP: user not permitted to use any addresses",
            _ => return None,
        })
    }
}

/// The Direction field of the PPP Disconnect Cause Code AVP (RFC 3145 §2).
pub mod direction {
    /// Global error.
    pub const GLOBAL: u8 = 0;
    /// At peer.
    pub const AT_PEER: u8 = 1;
    /// At local.
    pub const AT_LOCAL: u8 = 2;
}

/// A Proxy Authen Type (RFC 2661 §4.4.5, §10.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ProxyAuthenType(pub u16);

impl ProxyAuthenType {
    /// 1 - Textual username/password exchange.
    pub const TEXTUAL: Self = Self(1);
    /// 2 - PPP CHAP.
    pub const CHAP: Self = Self(2);
    /// 3 - PPP PAP.
    pub const PAP: Self = Self(3);
    /// 4 - No Authentication.
    pub const NONE: Self = Self(4);
    /// 5 - Microsoft CHAP Version 1.
    pub const MSCHAP_V1: Self = Self(5);

    /// The RFC's description, when the value is defined.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Reserved",
            1 => "Textual username/password exchange",
            2 => "PPP CHAP",
            3 => "PPP PAP",
            4 => "No Authentication",
            5 => "Microsoft CHAP Version 1",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ErrorCode::UNKNOWN_MANDATORY_AVP.0, 8);
        assert_eq!(ErrorCode(2).name(), Some("Length is wrong"));
        assert_eq!(ErrorCode(10).name(), None);
        assert_eq!(CdnResult(12).name(), None);
        assert!(CdnResult::LOST_TIE_BREAKER.name().is_some());
        assert_eq!(StopCcnResult(8).name(), None);
        assert_eq!(
            PppDisconnectCode(20),
            PppDisconnectCode::NCP_ADDRESS_NOT_PERMITTED
        );
        assert!(PppDisconnectCode(21).name().is_none());
        assert_eq!(ProxyAuthenType::CHAP.name(), Some("PPP CHAP"));
    }
}
