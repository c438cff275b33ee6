//! AVPs: the framing (RFC 2661 §4.1, RFC 3931 §5.1) and every attribute of RFC 2661 §4.4,
//! RFC 3931 §5.4, RFC 3145 §2 and RFC 4951 §5 as a typed value.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Attribute Type        |        Attribute Value...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Reading rules this module follows:
//! - Reserved *fields inside values* (Call Errors, ACCM, Proxy Authen ID, Circuit Status,
//!   RFC 4951 AVPs) are sent as zero and ignored on receipt (RFC 3931 §5.4.5, §6).
//! - Reserved *header bits*: in L2TPv2 an AVP with one set "MUST be treated as an unrecognized
//!   AVP" (RFC 2661 §4.1), so it is kept opaque as [`Avp::Unrecognized`], reserved bits and
//!   all; in L2TPv3 they are "ignored upon receipt" (RFC 3931 §5.1). Emitting clears them,
//!   except when re-emitting an [`Avp::Unrecognized`] as it was received.
//! - A value of the wrong length for its attribute is [`Error::Malformed`] with
//!   `why ==` [`WRONG_LENGTH`] (General Error Code 2 for the validator); other bad values are
//!   `Malformed` with another reason (General Error Code 3).
//! - Vendor AVPs (Vendor ID != 0) and unassigned IETF attributes are kept opaque as
//!   [`Avp::Unknown`].

use super::header::Version;
use super::hidden;
use super::message::MessageType;
use crate::error::{check_len, check_room, Error, Result};

pub use super::hidden::WRONG_LENGTH;

/// Byte ranges of the AVP header, named once.
mod field {
    pub type Field = core::ops::Range<usize>;
    /// M, H, reserved bits and the 10-bit Length.
    pub const FLAGS_LEN: Field = 0..2;
    /// Vendor ID.
    pub const VENDOR_ID: Field = 2..4;
    /// Attribute Type.
    pub const ATTR_TYPE: Field = 4..6;
}

/// Length of the AVP header (RFC 2661 §4.1: "The minimum Length of an AVP is 6").
pub const HEADER_LEN: usize = 6;
/// The largest AVP: the Length field has 10 bits.
pub const MAX_LEN: usize = 1023;

/// Bits of the first 16-bit word of an AVP.
pub mod flags {
    /// Mandatory.
    pub const M: u16 = 0x8000;
    /// Hidden.
    pub const H: u16 = 0x4000;
    /// The four reserved bits.
    pub const RESERVED: u16 = 0x3c00;
    /// The 10-bit Length.
    pub const LEN_MASK: u16 = 0x03ff;
}

/// Bits of the Framing Capabilities and Framing Type AVPs (RFC 2661 §4.4.3, §4.4.4).
pub mod framing {
    /// S: synchronous framing.
    pub const SYNC: u32 = 0x0000_0001;
    /// A: asynchronous framing.
    pub const ASYNC: u32 = 0x0000_0002;
}

/// Bits of the Bearer Capabilities and Bearer Type AVPs (RFC 2661 §4.4.3, §4.4.4).
pub mod bearer {
    /// D: digital access.
    pub const DIGITAL: u32 = 0x0000_0001;
    /// A: analog access.
    pub const ANALOG: u32 = 0x0000_0002;
}

/// Digest Types of the Message Digest AVP (RFC 3931 §5.4.1).
pub mod digest {
    /// HMAC-MD5, 16-octet digest.
    pub const HMAC_MD5: u8 = 0;
    /// HMAC-SHA-1, 20-octet digest.
    pub const HMAC_SHA1: u8 = 1;
}

// ---------------------------------------------------------------------------------------------
// Zero-copy view

/// A zero-copy view of one AVP (RFC 2661 §4.1).
#[derive(Debug, Clone, Copy)]
pub struct AvpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AvpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        AvpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header is there, that Length is at least 6 and that the buffer holds
    /// Length octets.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        check_len("AVP header", buf, HEADER_LEN)?;
        let len = usize::from(self.length());
        if len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "AVP",
                why: "Length is shorter than the AVP header",
            });
        }
        if len > buf.len() {
            return Err(Error::Malformed {
                what: "AVP",
                why: "Length runs past the end of the message",
            });
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// The first word: flags and Length.
    pub fn flags_len(&self) -> u16 {
        self.word(field::FLAGS_LEN.start)
    }
    /// M bit.
    pub fn mandatory(&self) -> bool {
        self.flags_len() & flags::M != 0
    }
    /// H bit.
    pub fn hidden(&self) -> bool {
        self.flags_len() & flags::H != 0
    }
    /// The four reserved bits, right-aligned.
    pub fn reserved(&self) -> u8 {
        ((self.flags_len() & flags::RESERVED) >> 10) as u8
    }
    /// The Length field: header plus value.
    pub fn length(&self) -> u16 {
        self.flags_len() & flags::LEN_MASK
    }
    /// Vendor ID.
    pub fn vendor_id(&self) -> u16 {
        self.word(field::VENDOR_ID.start)
    }
    /// Attribute Type.
    pub fn attr_type(&self) -> u16 {
        self.word(field::ATTR_TYPE.start)
    }
    /// The Attribute Value (as on the wire: still hidden when the H bit is set).
    pub fn value(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AvpPacket<T> {
    /// Sets the M and H bits and the Length (the reserved bits are cleared).
    pub fn set_flags_len(&mut self, mandatory: bool, hidden: bool, length: u16) {
        let mut w = length & flags::LEN_MASK;
        if mandatory {
            w |= flags::M;
        }
        if hidden {
            w |= flags::H;
        }
        self.buffer.as_mut()[field::FLAGS_LEN].copy_from_slice(&w.to_be_bytes());
    }
    /// Sets the four reserved bits (only to re-emit an [`Avp::Unrecognized`] exactly).
    pub fn set_reserved(&mut self, bits: u8) {
        let b = &mut self.buffer.as_mut()[field::FLAGS_LEN.start];
        *b = (*b & 0xc3) | ((bits & 0x0f) << 2);
    }
    /// Sets the Vendor ID.
    pub fn set_vendor_id(&mut self, v: u16) {
        self.buffer.as_mut()[field::VENDOR_ID].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the Attribute Type.
    pub fn set_attr_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::ATTR_TYPE].copy_from_slice(&v.to_be_bytes());
    }
    /// The Attribute Value, mutable (the Length must be set first).
    pub fn value_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Iterates over the AVPs of a message body. An AVP whose Length is below 6 or runs past the
/// end yields [`Error::Malformed`], after which the iterator stops.
#[derive(Debug, Clone)]
pub struct AvpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> AvpIter<'a> {
    /// Iterates over `buf`, the AVPs after a control header.
    pub const fn new(buf: &'a [u8]) -> Self {
        AvpIter {
            rest: buf,
            failed: false,
        }
    }
}

impl<'a> Iterator for AvpIter<'a> {
    type Item = Result<AvpPacket<&'a [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match AvpPacket::new_checked(self.rest) {
            Ok(p) => {
                let len = usize::from(p.length());
                let (this, rest) = self.rest.split_at(len);
                self.rest = rest;
                Some(Ok(AvpPacket::new_unchecked(this)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(match e {
                    Error::Truncated { .. } => Error::Malformed {
                        what: "AVP",
                        why: "fewer than 6 octets left for an AVP header",
                    },
                    e => e,
                }))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute types

macro_rules! avp_types {
    ($( $(#[$doc:meta])* $name:ident = $val:literal, $text:literal; )*) => {
        /// Every IETF attribute (Vendor ID 0) this crate knows: RFC 2661 §4.4 (0..=39 except the
        /// unassigned 20), RFC 3145 (46), RFC 3931 §5.4 / §10.1 (58..=66, 68..=75) and RFC 4951 §5
        /// (76..=79).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[repr(u16)]
        pub enum AvpType {
            $( $(#[$doc])* $name = $val, )*
        }

        impl AvpType {
            /// Every known attribute, by number.
            pub const ALL: &'static [AvpType] = &[ $( AvpType::$name, )* ];

            /// The attribute for an IETF Attribute Type number.
            pub const fn from_u16(v: u16) -> Option<AvpType> {
                match v {
                    $( $val => Some(AvpType::$name), )*
                    _ => None,
                }
            }

            /// The attribute's name as RFC 2661 (or the RFC defining it) spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( AvpType::$name => $text, )*
                }
            }
        }
    };
}

avp_types! {
    /// RFC 2661 §4.4.1.
    MessageType = 0, "Message Type";
    /// RFC 2661 §4.4.2.
    ResultCode = 1, "Result Code";
    /// RFC 2661 §4.4.3.
    ProtocolVersion = 2, "Protocol Version";
    /// RFC 2661 §4.4.3.
    FramingCapabilities = 3, "Framing Capabilities";
    /// RFC 2661 §4.4.3.
    BearerCapabilities = 4, "Bearer Capabilities";
    /// RFC 2661 §4.4.3; RFC 3931 §5.4.3/§5.4.4 (Control Connection / Session Tie Breaker).
    TieBreaker = 5, "Tie Breaker";
    /// RFC 2661 §4.4.3.
    FirmwareRevision = 6, "Firmware Revision";
    /// RFC 2661 §4.4.3, RFC 3931 §5.4.3.
    HostName = 7, "Host Name";
    /// RFC 2661 §4.4.3, RFC 3931 §5.4.3.
    VendorName = 8, "Vendor Name";
    /// RFC 2661 §4.4.3.
    AssignedTunnelId = 9, "Assigned Tunnel ID";
    /// RFC 2661 §4.4.3, RFC 3931 §5.4.3.
    ReceiveWindowSize = 10, "Receive Window Size";
    /// RFC 2661 §4.4.3.
    Challenge = 11, "Challenge";
    /// RFC 2661 §4.4.4.
    Q931CauseCode = 12, "Q.931 Cause Code";
    /// RFC 2661 §4.4.3.
    ChallengeResponse = 13, "Challenge Response";
    /// RFC 2661 §4.4.4.
    AssignedSessionId = 14, "Assigned Session ID";
    /// RFC 2661 §4.4.4; RFC 3931 §5.4.4 ("Serial Number").
    CallSerialNumber = 15, "Call Serial Number";
    /// RFC 2661 §4.4.4.
    MinimumBps = 16, "Minimum BPS";
    /// RFC 2661 §4.4.4.
    MaximumBps = 17, "Maximum BPS";
    /// RFC 2661 §4.4.4.
    BearerType = 18, "Bearer Type";
    /// RFC 2661 §4.4.4.
    FramingType = 19, "Framing Type";
    /// RFC 2661 §4.4.4.
    CalledNumber = 21, "Called Number";
    /// RFC 2661 §4.4.4.
    CallingNumber = 22, "Calling Number";
    /// RFC 2661 §4.4.4.
    SubAddress = 23, "Sub-Address";
    /// RFC 2661 §4.4.4 (32-bit).
    TxConnectSpeed = 24, "(Tx) Connect Speed";
    /// RFC 2661 §4.4.4, RFC 3931 §5.4.4.
    PhysicalChannelId = 25, "Physical Channel ID";
    /// RFC 2661 §4.4.5.
    InitialReceivedLcpConfreq = 26, "Initial Received LCP CONFREQ";
    /// RFC 2661 §4.4.5.
    LastSentLcpConfreq = 27, "Last Sent LCP CONFREQ";
    /// RFC 2661 §4.4.5.
    LastReceivedLcpConfreq = 28, "Last Received LCP CONFREQ";
    /// RFC 2661 §4.4.5.
    ProxyAuthenType = 29, "Proxy Authen Type";
    /// RFC 2661 §4.4.5.
    ProxyAuthenName = 30, "Proxy Authen Name";
    /// RFC 2661 §4.4.5.
    ProxyAuthenChallenge = 31, "Proxy Authen Challenge";
    /// RFC 2661 §4.4.5.
    ProxyAuthenId = 32, "Proxy Authen ID";
    /// RFC 2661 §4.4.5.
    ProxyAuthenResponse = 33, "Proxy Authen Response";
    /// RFC 2661 §4.4.6; RFC 3931 §5.4.5 ("Circuit Errors").
    CallErrors = 34, "Call Errors";
    /// RFC 2661 §4.4.6.
    Accm = 35, "ACCM";
    /// RFC 2661 §4.4.1, RFC 3931 §5.4.1.
    RandomVector = 36, "Random Vector";
    /// RFC 2661 §4.4.4.
    PrivateGroupId = 37, "Private Group ID";
    /// RFC 2661 §4.4.4 (32-bit).
    RxConnectSpeed = 38, "Rx Connect Speed";
    /// RFC 2661 §4.4.4.
    SequencingRequired = 39, "Sequencing Required";
    /// RFC 3145 §2.
    PppDisconnectCause = 46, "PPP Disconnect Cause Code";
    /// RFC 3931 §5.1.
    ExtendedVendorId = 58, "Extended Vendor ID";
    /// RFC 3931 §5.4.1.
    MessageDigest = 59, "Message Digest";
    /// RFC 3931 §5.4.3.
    RouterId = 60, "Router ID";
    /// RFC 3931 §5.4.3.
    AssignedControlConnectionId = 61, "Assigned Control Connection ID";
    /// RFC 3931 §5.4.3.
    PseudowireCapabilities = 62, "Pseudowire Capabilities List";
    /// RFC 3931 §5.4.4.
    LocalSessionId = 63, "Local Session ID";
    /// RFC 3931 §5.4.4.
    RemoteSessionId = 64, "Remote Session ID";
    /// RFC 3931 §5.4.4.
    AssignedCookie = 65, "Assigned Cookie";
    /// RFC 3931 §5.4.4.
    RemoteEndId = 66, "Remote End ID";
    /// RFC 3931 §5.4.4.
    PseudowireType = 68, "Pseudowire Type";
    /// RFC 3931 §5.4.4.
    L2SpecificSublayer = 69, "L2-Specific Sublayer";
    /// RFC 3931 §5.4.4.
    DataSequencing = 70, "Data Sequencing";
    /// RFC 3931 §5.4.5.
    CircuitStatus = 71, "Circuit Status";
    /// RFC 3931 §5.4.3.
    PreferredLanguage = 72, "Preferred Language";
    /// RFC 3931 §5.4.1.
    ControlMessageAuthNonce = 73, "Control Message Authentication Nonce";
    /// RFC 3931 §5.4.4 (64-bit).
    TxConnectSpeedV3 = 74, "Tx Connect Speed";
    /// RFC 3931 §5.4.4 (64-bit).
    RxConnectSpeedV3 = 75, "Rx Connect Speed";
    /// RFC 4951 §5.1.
    FailoverCapability = 76, "Failover Capability";
    /// RFC 4951 §5.2.
    TunnelRecovery = 77, "Tunnel Recovery";
    /// RFC 4951 §5.3.
    SuggestedControlSequence = 78, "Suggested Control Sequence";
    /// RFC 4951 §5.4.
    FailoverSessionState = 79, "Failover Session State";
}

impl AvpType {
    /// The attribute number.
    pub const fn value(self) -> u16 {
        self as u16
    }

    /// The name a version uses: RFC 3931 renames 5, 15 and 34.
    pub const fn name_for(self, version: Version) -> &'static str {
        match (version, self) {
            (Version::V3, AvpType::TieBreaker) => "Tie Breaker",
            (Version::V3, AvpType::CallSerialNumber) => "Serial Number",
            (Version::V3, AvpType::CallErrors) => "Circuit Errors",
            _ => self.name(),
        }
    }

    /// Whether the RFCs allow the H bit on this attribute ("MUST NOT be hidden" otherwise).
    pub const fn may_be_hidden(self) -> bool {
        !matches!(
            self,
            AvpType::MessageType
                | AvpType::ResultCode
                | AvpType::ProtocolVersion
                | AvpType::TieBreaker
                | AvpType::HostName
                | AvpType::ReceiveWindowSize
                | AvpType::Q931CauseCode
                | AvpType::RandomVector
                | AvpType::SequencingRequired
                | AvpType::MessageDigest
                | AvpType::RouterId
                | AvpType::ControlMessageAuthNonce
                | AvpType::TunnelRecovery
        )
    }

    /// The M bit the RFCs prescribe (RFC 2661 "MUST", RFC 3931 "SHOULD", RFC 3145, RFC 4951)
    /// for this attribute in a message of `version`. The Message Type AVP of FSQ and FSR is the
    /// exception (M=0, RFC 4951 §4), handled by [`AvpRepr::new`].
    pub const fn default_mandatory(self, version: Version) -> bool {
        use AvpType::*;
        match self {
            // RFC 3931 §5.4: SHOULD be 1 in v3, MUST be 0 in v2 (RFC 2661 §4.4.3).
            TieBreaker => matches!(version, Version::V3),
            // RFC 3931 §5.4.4/§5.4.5: SHOULD be 0 in v3, MUST be 1 in v2 (RFC 2661 §4.4.4, §4.4.6).
            CallSerialNumber | CallErrors => matches!(version, Version::V2),
            FirmwareRevision
            | VendorName
            | RxConnectSpeed
            | PhysicalChannelId
            | PrivateGroupId
            | InitialReceivedLcpConfreq
            | LastSentLcpConfreq
            | LastReceivedLcpConfreq
            | ProxyAuthenType
            | ProxyAuthenName
            | ProxyAuthenChallenge
            | ProxyAuthenId
            | ProxyAuthenResponse
            | PppDisconnectCause
            | ExtendedVendorId
            | PreferredLanguage
            | TxConnectSpeedV3
            | RxConnectSpeedV3
            | FailoverCapability
            | SuggestedControlSequence => false,
            _ => true,
        }
    }
}

/// The name of an attribute, when it is a known IETF one (Vendor ID 0).
pub fn attr_name(vendor_id: u16, attr_type: u16, version: Version) -> Option<&'static str> {
    if vendor_id != 0 {
        return None;
    }
    AvpType::from_u16(attr_type).map(|t| t.name_for(version))
}

// ---------------------------------------------------------------------------------------------
// Typed values

/// The value of an AVP, typed per attribute (the layouts of RFC 2661 §4.4, RFC 3145 §2,
/// RFC 3931 §5.4 and RFC 4951 §5). Byte strings are kept as bytes (the RFCs ask for UTF-8 or
/// US-ASCII but receivers must not depend on it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Avp {
    /// 0: the message's type (RFC 2661 §4.4.1).
    MessageType(MessageType),
    /// 1: Result Code, optional Error Code, optional Error Message (RFC 2661 §4.4.2). A
    /// message requires an error code.
    ResultCode {
        result: u16,
        error: Option<u16>,
        #[serde(serialize_with = "crate::ser::ser_text")]
        message: Vec<u8>,
    },
    /// 2: Ver and Rev (1 and 0 for RFC 2661).
    ProtocolVersion { version: u8, revision: u8 },
    /// 3: a 32-bit mask, see [`framing`].
    FramingCapabilities(u32),
    /// 4: a 32-bit mask, see [`bearer`].
    BearerCapabilities(u32),
    /// 5: the 8-octet tie breaker value.
    TieBreaker(#[serde(serialize_with = "crate::ser::ser_hex")] [u8; 8]),
    /// 6: Firmware Revision.
    FirmwareRevision(u16),
    /// 7: Host Name (at least 1 octet).
    HostName(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 8: Vendor Name.
    VendorName(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 9: Assigned Tunnel ID.
    AssignedTunnelId(u16),
    /// 10: Receive Window Size.
    ReceiveWindowSize(u16),
    /// 11: Challenge (at least 1 octet).
    Challenge(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 12: Q.931 cause code, message code and advisory text.
    Q931CauseCode {
        cause: u16,
        msg_code: u8,
        #[serde(serialize_with = "crate::ser::ser_text")]
        advisory: Vec<u8>,
    },
    /// 13: 16-octet CHAP-style response.
    ChallengeResponse(#[serde(serialize_with = "crate::ser::ser_hex")] [u8; 16]),
    /// 14: Assigned Session ID.
    AssignedSessionId(u16),
    /// 15: (Call) Serial Number.
    CallSerialNumber(u32),
    /// 16: Minimum BPS.
    MinimumBps(u32),
    /// 17: Maximum BPS.
    MaximumBps(u32),
    /// 18: a 32-bit mask, see [`bearer`].
    BearerType(u32),
    /// 19: a 32-bit mask, see [`framing`].
    FramingType(u32),
    /// 21: Called Number.
    CalledNumber(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 22: Calling Number.
    CallingNumber(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 23: Sub-Address.
    SubAddress(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 24: (Tx) Connect Speed, 32-bit (RFC 2661).
    TxConnectSpeed(u32),
    /// 25: Physical Channel ID.
    PhysicalChannelId(u32),
    /// 26: options of the initial CONFREQ received.
    InitialReceivedLcpConfreq(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 27: options of the last CONFREQ sent.
    LastSentLcpConfreq(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 28: options of the last CONFREQ received.
    LastReceivedLcpConfreq(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 29: Authen Type, see [`super::codes::ProxyAuthenType`].
    ProxyAuthenType(u16),
    /// 30: Authen Name.
    ProxyAuthenName(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 31: Challenge (at least 1 octet).
    ProxyAuthenChallenge(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 32: the ID octet (the reserved octet before it is sent as 0 and ignored).
    ProxyAuthenId(u8),
    /// 33: Response.
    ProxyAuthenResponse(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 34: Call Errors (RFC 2661 §4.4.6): reserved, then six 32-bit counters (Length 32). Also
    /// the L2TPv3 Circuit Errors AVP when it has the Length 32 that RFC 3931 §5.4.5 states.
    CallErrors {
        crc: u32,
        framing: u32,
        hardware_overruns: u32,
        buffer_overruns: u32,
        timeouts: u32,
        alignment: u32,
    },
    /// 34 in L2TPv3 as drawn in RFC 3931 §5.4.5: reserved, then four 32-bit counters
    /// (Length 24; the RFC's text says 32, which is the [`Avp::CallErrors`] layout; both are
    /// accepted in L2TPv3).
    CircuitErrors {
        hardware_overruns: u32,
        buffer_overruns: u32,
        timeouts: u32,
        alignment: u32,
    },
    /// 35: reserved, Send ACCM, Receive ACCM.
    Accm { send: u32, receive: u32 },
    /// 36: Random Vector.
    RandomVector(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 37: Private Group ID.
    PrivateGroupId(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 38: Rx Connect Speed, 32-bit (RFC 2661).
    RxConnectSpeed(u32),
    /// 39: Sequencing Required (no value).
    SequencingRequired,
    /// 46: PPP Disconnect Cause Code (RFC 3145 §2): Disconnect Code, Control Protocol Number,
    /// Direction, optional message.
    PppDisconnectCause {
        code: u16,
        protocol: u16,
        direction: u8,
        #[serde(serialize_with = "crate::ser::ser_text")]
        message: Vec<u8>,
    },
    /// 58: a vendor AVP with a 32-bit Vendor ID (RFC 3931 §5.1), kept opaque.
    ExtendedVendorId {
        vendor_id: u32,
        attr_type: u16,
        #[serde(serialize_with = "crate::ser::ser_hex")]
        value: Vec<u8>,
    },
    /// 59: Digest Type and digest (16 octets for HMAC-MD5, 20 for HMAC-SHA-1).
    MessageDigest {
        digest_type: u8,
        #[serde(serialize_with = "crate::ser::ser_hex")]
        digest: Vec<u8>,
    },
    /// 60: Router ID.
    RouterId(u32),
    /// 61: Assigned Control Connection ID.
    AssignedControlConnectionId(u32),
    /// 62: PW types (at least one).
    PseudowireCapabilities(Vec<u16>),
    /// 63: Local Session ID.
    LocalSessionId(u32),
    /// 64: Remote Session ID.
    RemoteSessionId(u32),
    /// 65: 0, 4 or 8 octets.
    AssignedCookie(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 66: Remote End Identifier.
    RemoteEndId(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 68: PW Type.
    PseudowireType(u16),
    /// 69: L2-Specific Sublayer Type (0 none, 1 default).
    L2SpecificSublayer(u16),
    /// 70: Data Sequencing Level (0, 1, 2).
    DataSequencing(u16),
    /// 71: A (active) and N (new) bits.
    CircuitStatus { active: bool, new: bool },
    /// 72: Preferred Language.
    PreferredLanguage(#[serde(serialize_with = "crate::ser::ser_text")] Vec<u8>),
    /// 73: Control Message Authentication Nonce.
    ControlMessageAuthNonce(#[serde(serialize_with = "crate::ser::ser_hex")] Vec<u8>),
    /// 74: Tx Connect Speed, 64-bit (RFC 3931).
    TxConnectSpeedV3(u64),
    /// 75: Rx Connect Speed, 64-bit (RFC 3931).
    RxConnectSpeedV3(u64),
    /// 76: C and D bits and Recovery Time (RFC 4951 §5.1).
    FailoverCapability {
        control: bool,
        data: bool,
        recovery_time_ms: u32,
    },
    /// 77: the tunnel to recover (RFC 4951 §5.2). 16-bit IDs in L2TPv2.
    TunnelRecovery {
        tunnel_id: u32,
        remote_tunnel_id: u32,
    },
    /// 78: Suggested Ns and Nr (RFC 4951 §5.3).
    SuggestedControlSequence { ns: u16, nr: u16 },
    /// 79: a session to query (RFC 4951 §5.4). 16-bit IDs in L2TPv2.
    FailoverSessionState {
        session_id: u32,
        remote_session_id: u32,
    },
    /// An L2TPv2 AVP with a reserved header bit set, which "MUST be treated as an unrecognized
    /// AVP" (RFC 2661 §4.1): kept opaque with its reserved bits (hidden or not, as the H bit of
    /// its [`AvpRepr`] says), so that what was received can be shown and re-emitted exactly.
    /// Never built by this crate for sending.
    Unrecognized {
        vendor_id: u16,
        attr_type: u16,
        /// The four reserved header bits, right-aligned (never 0).
        reserved: u8,
        #[serde(serialize_with = "crate::ser::ser_hex")]
        value: Vec<u8>,
    },
    /// A vendor AVP or an IETF attribute this crate does not know, kept opaque.
    Unknown {
        vendor_id: u16,
        attr_type: u16,
        #[serde(serialize_with = "crate::ser::ser_hex")]
        value: Vec<u8>,
    },
    /// A hidden AVP that could not be unhidden (no shared secret): its value as on the wire.
    Hidden {
        attr_type: u16,
        vendor_id: u16,
        #[serde(serialize_with = "crate::ser::ser_hex")]
        value: Vec<u8>,
    },
}

fn wrong_len(what: &'static str) -> Error {
    Error::Malformed {
        what,
        why: WRONG_LENGTH,
    }
}

fn arr<const N: usize>(what: &'static str, v: &[u8]) -> Result<[u8; N]> {
    v.try_into().map_err(|_| wrong_len(what))
}

fn u16_at(v: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([v[at], v[at + 1]])
}

fn u32_at(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

fn non_empty(what: &'static str, v: &[u8]) -> Result<Vec<u8>> {
    if v.is_empty() {
        Err(wrong_len(what))
    } else {
        Ok(v.to_vec())
    }
}

/// Circuit Status bits (RFC 3931 §5.4.5).
const CIRCUIT_ACTIVE: u16 = 0x0001;
const CIRCUIT_NEW: u16 = 0x0002;
/// Failover Capability bits (RFC 4951 §5.1).
const FAILOVER_C: u16 = 0x0001;
const FAILOVER_D: u16 = 0x0002;

/// Reads the two IDs of a Tunnel Recovery or Failover Session State AVP (RFC 4951 §5.2, §5.4):
/// 2 reserved octets, then two 32-bit IDs (L2TPv3) or two (16-bit reserved, 16-bit ID) pairs.
fn id_pair(what: &'static str, v: &[u8], version: Version) -> Result<(u32, u32)> {
    let v: [u8; 10] = arr(what, v)?;
    Ok(match version {
        Version::V3 => (u32_at(&v, 2), u32_at(&v, 6)),
        Version::V2 => (u32::from(u16_at(&v, 4)), u32::from(u16_at(&v, 8))),
    })
}

fn put_id_pair(out: &mut Vec<u8>, a: u32, b: u32, version: Version) -> Result<()> {
    out.extend_from_slice(&[0, 0]);
    match version {
        Version::V3 => {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        }
        Version::V2 => {
            for id in [a, b] {
                let id = u16::try_from(id).map_err(|_| Error::Malformed {
                    what: "RFC 4951 AVP",
                    why: "L2TPv2 tunnel and session IDs have 16 bits",
                })?;
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
    Ok(())
}

impl Avp {
    /// The IETF attribute, or `None` for [`Avp::Unknown`] and [`Avp::Hidden`].
    pub fn avp_type(&self) -> Option<AvpType> {
        use AvpType as T;
        Some(match self {
            Avp::MessageType(_) => T::MessageType,
            Avp::ResultCode { .. } => T::ResultCode,
            Avp::ProtocolVersion { .. } => T::ProtocolVersion,
            Avp::FramingCapabilities(_) => T::FramingCapabilities,
            Avp::BearerCapabilities(_) => T::BearerCapabilities,
            Avp::TieBreaker(_) => T::TieBreaker,
            Avp::FirmwareRevision(_) => T::FirmwareRevision,
            Avp::HostName(_) => T::HostName,
            Avp::VendorName(_) => T::VendorName,
            Avp::AssignedTunnelId(_) => T::AssignedTunnelId,
            Avp::ReceiveWindowSize(_) => T::ReceiveWindowSize,
            Avp::Challenge(_) => T::Challenge,
            Avp::Q931CauseCode { .. } => T::Q931CauseCode,
            Avp::ChallengeResponse(_) => T::ChallengeResponse,
            Avp::AssignedSessionId(_) => T::AssignedSessionId,
            Avp::CallSerialNumber(_) => T::CallSerialNumber,
            Avp::MinimumBps(_) => T::MinimumBps,
            Avp::MaximumBps(_) => T::MaximumBps,
            Avp::BearerType(_) => T::BearerType,
            Avp::FramingType(_) => T::FramingType,
            Avp::CalledNumber(_) => T::CalledNumber,
            Avp::CallingNumber(_) => T::CallingNumber,
            Avp::SubAddress(_) => T::SubAddress,
            Avp::TxConnectSpeed(_) => T::TxConnectSpeed,
            Avp::PhysicalChannelId(_) => T::PhysicalChannelId,
            Avp::InitialReceivedLcpConfreq(_) => T::InitialReceivedLcpConfreq,
            Avp::LastSentLcpConfreq(_) => T::LastSentLcpConfreq,
            Avp::LastReceivedLcpConfreq(_) => T::LastReceivedLcpConfreq,
            Avp::ProxyAuthenType(_) => T::ProxyAuthenType,
            Avp::ProxyAuthenName(_) => T::ProxyAuthenName,
            Avp::ProxyAuthenChallenge(_) => T::ProxyAuthenChallenge,
            Avp::ProxyAuthenId(_) => T::ProxyAuthenId,
            Avp::ProxyAuthenResponse(_) => T::ProxyAuthenResponse,
            Avp::CallErrors { .. } | Avp::CircuitErrors { .. } => T::CallErrors,
            Avp::Accm { .. } => T::Accm,
            Avp::RandomVector(_) => T::RandomVector,
            Avp::PrivateGroupId(_) => T::PrivateGroupId,
            Avp::RxConnectSpeed(_) => T::RxConnectSpeed,
            Avp::SequencingRequired => T::SequencingRequired,
            Avp::PppDisconnectCause { .. } => T::PppDisconnectCause,
            Avp::ExtendedVendorId { .. } => T::ExtendedVendorId,
            Avp::MessageDigest { .. } => T::MessageDigest,
            Avp::RouterId(_) => T::RouterId,
            Avp::AssignedControlConnectionId(_) => T::AssignedControlConnectionId,
            Avp::PseudowireCapabilities(_) => T::PseudowireCapabilities,
            Avp::LocalSessionId(_) => T::LocalSessionId,
            Avp::RemoteSessionId(_) => T::RemoteSessionId,
            Avp::AssignedCookie(_) => T::AssignedCookie,
            Avp::RemoteEndId(_) => T::RemoteEndId,
            Avp::PseudowireType(_) => T::PseudowireType,
            Avp::L2SpecificSublayer(_) => T::L2SpecificSublayer,
            Avp::DataSequencing(_) => T::DataSequencing,
            Avp::CircuitStatus { .. } => T::CircuitStatus,
            Avp::PreferredLanguage(_) => T::PreferredLanguage,
            Avp::ControlMessageAuthNonce(_) => T::ControlMessageAuthNonce,
            Avp::TxConnectSpeedV3(_) => T::TxConnectSpeedV3,
            Avp::RxConnectSpeedV3(_) => T::RxConnectSpeedV3,
            Avp::FailoverCapability { .. } => T::FailoverCapability,
            Avp::TunnelRecovery { .. } => T::TunnelRecovery,
            Avp::SuggestedControlSequence { .. } => T::SuggestedControlSequence,
            Avp::FailoverSessionState { .. } => T::FailoverSessionState,
            Avp::Unknown { .. } | Avp::Hidden { .. } | Avp::Unrecognized { .. } => return None,
        })
    }

    /// Whether the value is carried as received, its H bit meaning it is still hidden (or, for
    /// [`Avp::Unrecognized`], that it was): such values are never hidden again on emission.
    pub fn is_opaque_hidden(&self) -> bool {
        matches!(self, Avp::Hidden { .. } | Avp::Unrecognized { .. })
    }

    /// The Vendor ID and Attribute Type this value is carried under.
    pub fn attr(&self) -> (u16, u16) {
        match self {
            Avp::Unknown {
                vendor_id,
                attr_type,
                ..
            }
            | Avp::Hidden {
                vendor_id,
                attr_type,
                ..
            }
            | Avp::Unrecognized {
                vendor_id,
                attr_type,
                ..
            } => (*vendor_id, *attr_type),
            other => (0, other.avp_type().map_or(0, AvpType::value)),
        }
    }

    /// A printable name: the attribute's name, or "vendor V attribute A".
    pub fn name(&self, version: Version) -> String {
        let (vendor, attr) = self.attr();
        match (self, attr_name(vendor, attr, version)) {
            (Avp::Hidden { .. }, Some(n)) => format!("{n} (hidden)"),
            (Avp::Unrecognized { reserved, .. }, _) => {
                format!("vendor {vendor} attribute {attr} (reserved bits {reserved:#x})")
            }
            (Avp::Unknown { .. }, _) | (_, None) => {
                format!("vendor {vendor} attribute {attr}")
            }
            (_, Some(n)) => n.to_string(),
        }
    }

    /// Parses the cleartext value of an attribute (RFC 2661 §4.4, RFC 3145 §2, RFC 3931 §5.4,
    /// RFC 4951 §5). Vendor AVPs and unknown attributes become [`Avp::Unknown`].
    pub fn parse_value(vendor_id: u16, attr_type: u16, v: &[u8], version: Version) -> Result<Avp> {
        use AvpType as T;
        let t = match (vendor_id, AvpType::from_u16(attr_type)) {
            (0, Some(t)) => t,
            _ => {
                return Ok(Avp::Unknown {
                    vendor_id,
                    attr_type,
                    value: v.to_vec(),
                })
            }
        };
        let what = t.name();
        let u16v = || arr::<2>(what, v).map(u16::from_be_bytes);
        let u32v = || arr::<4>(what, v).map(u32::from_be_bytes);
        let u64v = || arr::<8>(what, v).map(u64::from_be_bytes);
        Ok(match t {
            T::MessageType => Avp::MessageType(MessageType::from_u16(u16v()?)),
            T::ResultCode => {
                check_value_len(what, v, 2)?;
                match v.len() {
                    2 => Avp::ResultCode {
                        result: u16_at(v, 0),
                        error: None,
                        message: Vec::new(),
                    },
                    3 => return Err(wrong_len(what)),
                    _ => Avp::ResultCode {
                        result: u16_at(v, 0),
                        error: Some(u16_at(v, 2)),
                        message: v[4..].to_vec(),
                    },
                }
            }
            T::ProtocolVersion => {
                let [version, revision] = arr::<2>(what, v)?;
                Avp::ProtocolVersion { version, revision }
            }
            T::FramingCapabilities => Avp::FramingCapabilities(u32v()?),
            T::BearerCapabilities => Avp::BearerCapabilities(u32v()?),
            T::TieBreaker => Avp::TieBreaker(arr(what, v)?),
            T::FirmwareRevision => Avp::FirmwareRevision(u16v()?),
            T::HostName => Avp::HostName(non_empty(what, v)?),
            T::VendorName => Avp::VendorName(v.to_vec()),
            T::AssignedTunnelId => Avp::AssignedTunnelId(u16v()?),
            T::ReceiveWindowSize => Avp::ReceiveWindowSize(u16v()?),
            T::Challenge => Avp::Challenge(non_empty(what, v)?),
            T::Q931CauseCode => {
                check_value_len(what, v, 3)?;
                Avp::Q931CauseCode {
                    cause: u16_at(v, 0),
                    msg_code: v[2],
                    advisory: v[3..].to_vec(),
                }
            }
            T::ChallengeResponse => Avp::ChallengeResponse(arr(what, v)?),
            T::AssignedSessionId => Avp::AssignedSessionId(u16v()?),
            T::CallSerialNumber => Avp::CallSerialNumber(u32v()?),
            T::MinimumBps => Avp::MinimumBps(u32v()?),
            T::MaximumBps => Avp::MaximumBps(u32v()?),
            T::BearerType => Avp::BearerType(u32v()?),
            T::FramingType => Avp::FramingType(u32v()?),
            T::CalledNumber => Avp::CalledNumber(v.to_vec()),
            T::CallingNumber => Avp::CallingNumber(v.to_vec()),
            T::SubAddress => Avp::SubAddress(v.to_vec()),
            T::TxConnectSpeed => Avp::TxConnectSpeed(u32v()?),
            T::PhysicalChannelId => Avp::PhysicalChannelId(u32v()?),
            T::InitialReceivedLcpConfreq => Avp::InitialReceivedLcpConfreq(v.to_vec()),
            T::LastSentLcpConfreq => Avp::LastSentLcpConfreq(v.to_vec()),
            T::LastReceivedLcpConfreq => Avp::LastReceivedLcpConfreq(v.to_vec()),
            T::ProxyAuthenType => Avp::ProxyAuthenType(u16v()?),
            T::ProxyAuthenName => Avp::ProxyAuthenName(v.to_vec()),
            T::ProxyAuthenChallenge => Avp::ProxyAuthenChallenge(non_empty(what, v)?),
            T::ProxyAuthenId => Avp::ProxyAuthenId(arr::<2>(what, v)?[1]),
            T::ProxyAuthenResponse => Avp::ProxyAuthenResponse(v.to_vec()),
            T::CallErrors => match (v.len(), version) {
                (26, _) => Avp::CallErrors {
                    crc: u32_at(v, 2),
                    framing: u32_at(v, 6),
                    hardware_overruns: u32_at(v, 10),
                    buffer_overruns: u32_at(v, 14),
                    timeouts: u32_at(v, 18),
                    alignment: u32_at(v, 22),
                },
                (18, Version::V3) => Avp::CircuitErrors {
                    hardware_overruns: u32_at(v, 2),
                    buffer_overruns: u32_at(v, 6),
                    timeouts: u32_at(v, 10),
                    alignment: u32_at(v, 14),
                },
                _ => return Err(wrong_len(t.name_for(version))),
            },
            T::Accm => {
                let a: [u8; 10] = arr(what, v)?;
                Avp::Accm {
                    send: u32_at(&a, 2),
                    receive: u32_at(&a, 6),
                }
            }
            T::RandomVector => Avp::RandomVector(v.to_vec()),
            T::PrivateGroupId => Avp::PrivateGroupId(v.to_vec()),
            T::RxConnectSpeed => Avp::RxConnectSpeed(u32v()?),
            T::SequencingRequired => {
                if !v.is_empty() {
                    return Err(wrong_len(what));
                }
                Avp::SequencingRequired
            }
            T::PppDisconnectCause => {
                check_value_len(what, v, 5)?;
                Avp::PppDisconnectCause {
                    code: u16_at(v, 0),
                    protocol: u16_at(v, 2),
                    direction: v[4],
                    message: v[5..].to_vec(),
                }
            }
            T::ExtendedVendorId => {
                check_value_len(what, v, 6)?;
                Avp::ExtendedVendorId {
                    vendor_id: u32_at(v, 0),
                    attr_type: u16_at(v, 4),
                    value: v[6..].to_vec(),
                }
            }
            T::MessageDigest => {
                check_value_len(what, v, 1)?;
                let digest_type = v[0];
                let want = match digest_type {
                    digest::HMAC_MD5 => Some(16),
                    digest::HMAC_SHA1 => Some(20),
                    _ => None,
                };
                if want.is_some_and(|n| n != v.len() - 1) {
                    return Err(wrong_len(what));
                }
                Avp::MessageDigest {
                    digest_type,
                    digest: v[1..].to_vec(),
                }
            }
            T::RouterId => Avp::RouterId(u32v()?),
            T::AssignedControlConnectionId => Avp::AssignedControlConnectionId(u32v()?),
            T::PseudowireCapabilities => {
                if v.is_empty() || !v.len().is_multiple_of(2) {
                    return Err(wrong_len(what));
                }
                Avp::PseudowireCapabilities(
                    v.chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            T::LocalSessionId => Avp::LocalSessionId(u32v()?),
            T::RemoteSessionId => Avp::RemoteSessionId(u32v()?),
            T::AssignedCookie => match v.len() {
                0 | 4 | 8 => Avp::AssignedCookie(v.to_vec()),
                _ => return Err(wrong_len(what)),
            },
            T::RemoteEndId => Avp::RemoteEndId(v.to_vec()),
            T::PseudowireType => Avp::PseudowireType(u16v()?),
            T::L2SpecificSublayer => Avp::L2SpecificSublayer(u16v()?),
            T::DataSequencing => Avp::DataSequencing(u16v()?),
            T::CircuitStatus => {
                let s = u16v()?;
                Avp::CircuitStatus {
                    active: s & CIRCUIT_ACTIVE != 0,
                    new: s & CIRCUIT_NEW != 0,
                }
            }
            T::PreferredLanguage => Avp::PreferredLanguage(v.to_vec()),
            T::ControlMessageAuthNonce => Avp::ControlMessageAuthNonce(v.to_vec()),
            T::TxConnectSpeedV3 => Avp::TxConnectSpeedV3(u64v()?),
            T::RxConnectSpeedV3 => Avp::RxConnectSpeedV3(u64v()?),
            T::FailoverCapability => {
                let a: [u8; 6] = arr(what, v)?;
                let bits = u16_at(&a, 0);
                Avp::FailoverCapability {
                    control: bits & FAILOVER_C != 0,
                    data: bits & FAILOVER_D != 0,
                    recovery_time_ms: u32_at(&a, 2),
                }
            }
            T::TunnelRecovery => {
                let (tunnel_id, remote_tunnel_id) = id_pair(what, v, version)?;
                Avp::TunnelRecovery {
                    tunnel_id,
                    remote_tunnel_id,
                }
            }
            T::SuggestedControlSequence => {
                let a: [u8; 6] = arr(what, v)?;
                Avp::SuggestedControlSequence {
                    ns: u16_at(&a, 2),
                    nr: u16_at(&a, 4),
                }
            }
            T::FailoverSessionState => {
                let (session_id, remote_session_id) = id_pair(what, v, version)?;
                Avp::FailoverSessionState {
                    session_id,
                    remote_session_id,
                }
            }
        })
    }

    /// The cleartext Attribute Value of this AVP for `version`. Fails for values that cannot be
    /// encoded (an Error Message without an Error Code, an empty Host Name, a cookie not of 0, 4
    /// or 8 octets, IDs above 16 bits in an L2TPv2 RFC 4951 AVP, Circuit Errors of the short
    /// L2TPv3 form in L2TPv2, a digest of the wrong length).
    pub fn value_bytes(&self, version: Version) -> Result<Vec<u8>> {
        let mut o = Vec::new();
        let bad = |why: &'static str| Error::Malformed {
            what: "AVP value",
            why,
        };
        match self {
            Avp::MessageType(t) => o.extend_from_slice(&t.value().to_be_bytes()),
            Avp::ResultCode {
                result,
                error,
                message,
            } => {
                o.extend_from_slice(&result.to_be_bytes());
                match error {
                    Some(e) => o.extend_from_slice(&e.to_be_bytes()),
                    None if !message.is_empty() => {
                        return Err(bad("an Error Message needs an Error Code"))
                    }
                    None => {}
                }
                o.extend_from_slice(message);
            }
            Avp::ProtocolVersion { version, revision } => {
                o.extend_from_slice(&[*version, *revision])
            }
            Avp::FramingCapabilities(x)
            | Avp::BearerCapabilities(x)
            | Avp::CallSerialNumber(x)
            | Avp::MinimumBps(x)
            | Avp::MaximumBps(x)
            | Avp::BearerType(x)
            | Avp::FramingType(x)
            | Avp::TxConnectSpeed(x)
            | Avp::PhysicalChannelId(x)
            | Avp::RxConnectSpeed(x)
            | Avp::RouterId(x)
            | Avp::AssignedControlConnectionId(x)
            | Avp::LocalSessionId(x)
            | Avp::RemoteSessionId(x) => o.extend_from_slice(&x.to_be_bytes()),
            Avp::FirmwareRevision(x)
            | Avp::AssignedTunnelId(x)
            | Avp::ReceiveWindowSize(x)
            | Avp::AssignedSessionId(x)
            | Avp::ProxyAuthenType(x)
            | Avp::PseudowireType(x)
            | Avp::L2SpecificSublayer(x)
            | Avp::DataSequencing(x) => o.extend_from_slice(&x.to_be_bytes()),
            Avp::TxConnectSpeedV3(x) | Avp::RxConnectSpeedV3(x) => {
                o.extend_from_slice(&x.to_be_bytes())
            }
            Avp::TieBreaker(b) => o.extend_from_slice(b),
            Avp::ChallengeResponse(b) => o.extend_from_slice(b),
            Avp::HostName(b) | Avp::Challenge(b) | Avp::ProxyAuthenChallenge(b) => {
                if b.is_empty() {
                    return Err(bad("must be at least 1 octet"));
                }
                o.extend_from_slice(b)
            }
            Avp::VendorName(b)
            | Avp::CalledNumber(b)
            | Avp::CallingNumber(b)
            | Avp::SubAddress(b)
            | Avp::InitialReceivedLcpConfreq(b)
            | Avp::LastSentLcpConfreq(b)
            | Avp::LastReceivedLcpConfreq(b)
            | Avp::ProxyAuthenName(b)
            | Avp::ProxyAuthenResponse(b)
            | Avp::RandomVector(b)
            | Avp::PrivateGroupId(b)
            | Avp::RemoteEndId(b)
            | Avp::PreferredLanguage(b)
            | Avp::ControlMessageAuthNonce(b) => o.extend_from_slice(b),
            Avp::Q931CauseCode {
                cause,
                msg_code,
                advisory,
            } => {
                o.extend_from_slice(&cause.to_be_bytes());
                o.push(*msg_code);
                o.extend_from_slice(advisory);
            }
            Avp::ProxyAuthenId(id) => o.extend_from_slice(&[0, *id]),
            Avp::CallErrors {
                crc,
                framing,
                hardware_overruns,
                buffer_overruns,
                timeouts,
                alignment,
            } => {
                o.extend_from_slice(&[0, 0]);
                for x in [
                    crc,
                    framing,
                    hardware_overruns,
                    buffer_overruns,
                    timeouts,
                    alignment,
                ] {
                    o.extend_from_slice(&x.to_be_bytes());
                }
            }
            Avp::CircuitErrors {
                hardware_overruns,
                buffer_overruns,
                timeouts,
                alignment,
            } => {
                if version == Version::V2 {
                    return Err(bad("the short Circuit Errors layout is L2TPv3 only"));
                }
                o.extend_from_slice(&[0, 0]);
                for x in [hardware_overruns, buffer_overruns, timeouts, alignment] {
                    o.extend_from_slice(&x.to_be_bytes());
                }
            }
            Avp::Accm { send, receive } => {
                o.extend_from_slice(&[0, 0]);
                o.extend_from_slice(&send.to_be_bytes());
                o.extend_from_slice(&receive.to_be_bytes());
            }
            Avp::SequencingRequired => {}
            Avp::PppDisconnectCause {
                code,
                protocol,
                direction,
                message,
            } => {
                o.extend_from_slice(&code.to_be_bytes());
                o.extend_from_slice(&protocol.to_be_bytes());
                o.push(*direction);
                o.extend_from_slice(message);
            }
            Avp::ExtendedVendorId {
                vendor_id,
                attr_type,
                value,
            } => {
                o.extend_from_slice(&vendor_id.to_be_bytes());
                o.extend_from_slice(&attr_type.to_be_bytes());
                o.extend_from_slice(value);
            }
            Avp::MessageDigest {
                digest_type,
                digest: d,
            } => {
                let want = match *digest_type {
                    digest::HMAC_MD5 => Some(16),
                    digest::HMAC_SHA1 => Some(20),
                    _ => None,
                };
                if want.is_some_and(|n| n != d.len()) {
                    return Err(bad("digest length does not match the Digest Type"));
                }
                o.push(*digest_type);
                o.extend_from_slice(d);
            }
            Avp::PseudowireCapabilities(list) => {
                if list.is_empty() {
                    return Err(bad("at least one PW type"));
                }
                for t in list {
                    o.extend_from_slice(&t.to_be_bytes());
                }
            }
            Avp::AssignedCookie(c) => {
                if !matches!(c.len(), 0 | 4 | 8) {
                    return Err(bad("a cookie has 0, 4 or 8 octets"));
                }
                o.extend_from_slice(c);
            }
            Avp::CircuitStatus { active, new } => {
                let mut s = 0u16;
                if *active {
                    s |= CIRCUIT_ACTIVE;
                }
                if *new {
                    s |= CIRCUIT_NEW;
                }
                o.extend_from_slice(&s.to_be_bytes());
            }
            Avp::FailoverCapability {
                control,
                data,
                recovery_time_ms,
            } => {
                let mut s = 0u16;
                if *control {
                    s |= FAILOVER_C;
                }
                if *data {
                    s |= FAILOVER_D;
                }
                o.extend_from_slice(&s.to_be_bytes());
                o.extend_from_slice(&recovery_time_ms.to_be_bytes());
            }
            Avp::TunnelRecovery {
                tunnel_id,
                remote_tunnel_id,
            } => put_id_pair(&mut o, *tunnel_id, *remote_tunnel_id, version)?,
            Avp::SuggestedControlSequence { ns, nr } => {
                o.extend_from_slice(&[0, 0]);
                o.extend_from_slice(&ns.to_be_bytes());
                o.extend_from_slice(&nr.to_be_bytes());
            }
            Avp::FailoverSessionState {
                session_id,
                remote_session_id,
            } => put_id_pair(&mut o, *session_id, *remote_session_id, version)?,
            Avp::Unknown { value, .. }
            | Avp::Hidden { value, .. }
            | Avp::Unrecognized { value, .. } => o.extend_from_slice(value),
        }
        Ok(o)
    }
}

fn check_value_len(what: &'static str, v: &[u8], min: usize) -> Result<()> {
    if v.len() < min {
        Err(wrong_len(what))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// AVP with its header bits

/// An AVP: its M and H bits and its typed value.
///
/// When `hidden` is set the value is hidden on emission (RFC 2661 §4.3) with the shared secret
/// and the Random Vector in effect, except for [`Avp::Hidden`], which is emitted as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct AvpRepr {
    /// M bit.
    pub mandatory: bool,
    /// H bit.
    pub hidden: bool,
    /// The value.
    pub avp: Avp,
}

impl AvpRepr {
    /// An AVP with the M bit the RFCs prescribe for its attribute and version
    /// ([`AvpType::default_mandatory`]; the Message Type of FSQ and FSR gets M=0, RFC 4951 §4;
    /// unknown and vendor AVPs get M=0), not hidden.
    pub fn new(avp: Avp, version: Version) -> Self {
        let mandatory = match &avp {
            Avp::MessageType(t) => t.message_type_mandatory(),
            other => other
                .avp_type()
                .is_some_and(|t| t.default_mandatory(version)),
        };
        AvpRepr {
            mandatory,
            hidden: false,
            avp,
        }
    }

    /// The same AVP, to be hidden on emission.
    pub fn hide(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// The same AVP with the M bit set as given.
    pub fn with_mandatory(mut self, mandatory: bool) -> Self {
        self.mandatory = mandatory;
        self
    }

    /// Parses one AVP of a `version` message. A hidden AVP is unhidden with `secret` (the
    /// shared secret; the L2TPv3 key is derived from it) and `random_vector`, the value of the
    /// latest Random Vector AVP before it; without a secret it becomes [`Avp::Hidden`]; with a
    /// secret but no Random Vector it is malformed.
    pub fn parse(
        packet: &AvpPacket<&[u8]>,
        version: Version,
        secret: Option<&[u8]>,
        random_vector: Option<&[u8]>,
    ) -> Result<AvpRepr> {
        packet.check_len()?;
        let mandatory = packet.mandatory();
        let hidden = packet.hidden();
        let (vendor_id, attr_type) = (packet.vendor_id(), packet.attr_type());
        let raw = packet.value();
        // RFC 2661 §4.1: a reserved bit set -> treat as unrecognized.
        let unrecognized = version == Version::V2 && packet.reserved() != 0;
        let avp = if unrecognized {
            Avp::Unrecognized {
                vendor_id,
                attr_type,
                reserved: packet.reserved(),
                value: raw.to_vec(),
            }
        } else if hidden && secret.is_none() {
            Avp::Hidden {
                attr_type,
                vendor_id,
                value: raw.to_vec(),
            }
        } else if hidden {
            let (Some(secret), Some(rv)) = (secret, random_vector) else {
                return Err(Error::Malformed {
                    what: "hidden AVP",
                    why: "no Random Vector AVP precedes it",
                });
            };
            let key = hidden::hiding_key(version, secret);
            let clear = hidden::unhide(attr_type, &key, rv, raw)?;
            Avp::parse_value(vendor_id, attr_type, &clear, version)?
        } else {
            Avp::parse_value(vendor_id, attr_type, raw, version)?
        };
        Ok(AvpRepr {
            mandatory,
            hidden,
            avp,
        })
    }

    fn check_hidable(&self) -> Result<()> {
        if self.hidden && self.avp.avp_type().is_some_and(|t| !t.may_be_hidden()) {
            return Err(Error::Malformed {
                what: "AVP",
                why: "this attribute MUST NOT be hidden",
            });
        }
        if !self.hidden && matches!(self.avp, Avp::Hidden { .. }) {
            return Err(Error::Malformed {
                what: "AVP",
                why: "a still-hidden value needs the H bit",
            });
        }
        Ok(())
    }

    /// Length of the emitted AVP (header included; for a hidden AVP, the subformat without
    /// padding).
    pub fn emit_len(&self, version: Version) -> Result<usize> {
        self.check_hidable()?;
        let v = self.avp.value_bytes(version)?.len();
        let extra = if self.hidden && !self.avp.is_opaque_hidden() {
            hidden::LENGTH_FIELD
        } else {
            0
        };
        let len = HEADER_LEN + v + extra;
        if len > MAX_LEN {
            return Err(Error::Malformed {
                what: "AVP",
                why: "longer than the 10-bit Length field",
            });
        }
        Ok(len)
    }

    /// Emits the AVP into the front of `buf` and returns its length. Hiding needs `secret` and
    /// `random_vector` (the value of the latest Random Vector AVP before this one); the hidden
    /// subformat is emitted without padding.
    pub fn emit(
        &self,
        buf: &mut [u8],
        version: Version,
        secret: Option<&[u8]>,
        random_vector: Option<&[u8]>,
    ) -> Result<usize> {
        self.check_hidable()?;
        let (vendor_id, attr_type) = self.avp.attr();
        let mut value = self.avp.value_bytes(version)?;
        if self.hidden && !self.avp.is_opaque_hidden() {
            let (Some(secret), Some(rv)) = (secret, random_vector) else {
                return Err(Error::Malformed {
                    what: "hidden AVP",
                    why: "hiding needs a shared secret and a preceding Random Vector AVP",
                });
            };
            let key = hidden::hiding_key(version, secret);
            value = hidden::hide(attr_type, &key, rv, &value, &[])?;
        }
        let len = HEADER_LEN + value.len();
        if len > MAX_LEN {
            return Err(Error::Malformed {
                what: "AVP",
                why: "longer than the 10-bit Length field",
            });
        }
        check_room("AVP", buf, len)?;
        let mut p = AvpPacket::new_unchecked(&mut buf[..len]);
        p.set_flags_len(self.mandatory, self.hidden, len as u16);
        if let Avp::Unrecognized { reserved, .. } = self.avp {
            p.set_reserved(reserved);
        }
        p.set_vendor_id(vendor_id);
        p.set_attr_type(attr_type);
        p.value_mut().copy_from_slice(&value);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse1(bytes: &[u8], version: Version) -> Result<AvpRepr> {
        let p = AvpPacket::new_checked(bytes)?;
        AvpRepr::parse(&p, version, None, None)
    }

    #[test]
    fn framing_view() {
        // M=1, H=0, Length 8, vendor 0, attr 0, value 1 (SCCRQ).
        let b = [0x80, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
        let p = AvpPacket::new_checked(&b[..]).expect("valid");
        assert!(p.mandatory() && !p.hidden());
        assert_eq!((p.length(), p.vendor_id(), p.attr_type()), (8, 0, 0));
        assert_eq!(p.value(), &[0, 1]);
    }

    #[test]
    fn iterator_stops_after_error() {
        // One good AVP, then a Length of 5, then garbage.
        let b = [
            0x80, 0x08, 0, 0, 0, 0, 0, 1, 0x00, 0x05, 0, 0, 0, 0, 0x80, 0x08, 0, 0, 0, 0, 0, 1,
        ];
        let items: Vec<_> = AvpIter::new(&b).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(Error::Malformed { .. })));
        // Past the end.
        let b = [0x80, 0x0a, 0, 0, 0, 0, 0, 1];
        let items: Vec<_> = AvpIter::new(&b).collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
        // Fewer than 6 octets left.
        let items: Vec<_> = AvpIter::new(&[0x80, 0x08, 0]).collect();
        assert!(matches!(items[..], [Err(Error::Malformed { .. })]));
    }

    #[test]
    fn wrong_fixed_length_is_malformed() {
        // Assigned Tunnel ID with a 3-octet value.
        let b = [0x80, 0x09, 0, 0, 0, 9, 0, 1, 2];
        assert_eq!(
            parse1(&b, Version::V2),
            Err(Error::Malformed {
                what: "Assigned Tunnel ID",
                why: WRONG_LENGTH
            })
        );
        // Result Code with a 3-octet value.
        let b = [0x80, 0x09, 0, 0, 0, 1, 0, 1, 2];
        assert!(parse1(&b, Version::V2).is_err());
        // Empty Host Name.
        assert!(parse1(&[0x80, 0x06, 0, 0, 0, 7], Version::V2).is_err());
    }

    #[test]
    fn v2_reserved_bits_make_an_unknown_avp() {
        let b = [0x84, 0x08, 0, 0, 0, 9, 0, 1];
        let r = parse1(&b, Version::V2).expect("valid");
        assert_eq!(
            r.avp,
            Avp::Unrecognized {
                vendor_id: 0,
                attr_type: 9,
                reserved: 1,
                value: vec![0, 1]
            }
        );
        // Re-emitted exactly, reserved bit included.
        let mut out = [0u8; 8];
        assert_eq!(r.emit(&mut out, Version::V2, None, None), Ok(8));
        assert_eq!(out, b);
        // L2TPv3 ignores them.
        let r = parse1(&[0x84, 0x0a, 0, 0, 0, 61, 0, 0, 0, 1], Version::V3).expect("valid");
        assert_eq!(r.avp, Avp::AssignedControlConnectionId(1));
    }

    #[test]
    fn default_m_bits() {
        let m = |a: Avp, v| AvpRepr::new(a, v).mandatory;
        assert!(m(Avp::MessageType(MessageType::Sccrq), Version::V2));
        assert!(!m(Avp::MessageType(MessageType::Fsq), Version::V2));
        assert!(!m(Avp::MessageType(MessageType::Fsr), Version::V3));
        assert!(!m(
            Avp::FailoverCapability {
                control: true,
                data: true,
                recovery_time_ms: 0
            },
            Version::V2
        ));
        assert!(m(
            Avp::TunnelRecovery {
                tunnel_id: 1,
                remote_tunnel_id: 2
            },
            Version::V2
        ));
        assert!(!m(
            Avp::SuggestedControlSequence { ns: 1, nr: 2 },
            Version::V3
        ));
        assert!(m(
            Avp::FailoverSessionState {
                session_id: 1,
                remote_session_id: 2
            },
            Version::V3
        ));
        assert!(!m(Avp::TieBreaker([0; 8]), Version::V2));
        assert!(m(Avp::TieBreaker([0; 8]), Version::V3));
        assert!(!m(
            Avp::PppDisconnectCause {
                code: 0,
                protocol: 0,
                direction: 0,
                message: vec![]
            },
            Version::V2
        ));
    }

    #[test]
    fn hidden_without_secret_is_kept() {
        let b = [0xc0, 0x0a, 0, 0, 0, 9, 1, 2, 3, 4];
        let r = parse1(&b, Version::V2).expect("valid");
        assert!(r.hidden);
        assert_eq!(
            r.avp,
            Avp::Hidden {
                attr_type: 9,
                vendor_id: 0,
                value: vec![1, 2, 3, 4]
            }
        );
        let mut out = [0u8; 10];
        assert_eq!(r.emit(&mut out, Version::V2, None, None), Ok(10));
        assert_eq!(out, b);
        // With a secret but no Random Vector it cannot be read.
        let p = AvpPacket::new_checked(&b[..]).expect("valid");
        assert!(AvpRepr::parse(&p, Version::V2, Some(b"s"), None).is_err());
    }

    #[test]
    fn must_not_hide() {
        let r = AvpRepr::new(Avp::MessageType(MessageType::Hello), Version::V2).hide();
        assert!(r
            .emit(&mut [0u8; 32], Version::V2, Some(b"s"), Some(b"rv"))
            .is_err());
    }
}
