//! RADIUS (RFC 2865 authentication, RFC 2866 accounting, RFC 2869 extensions, RFC 5176 dynamic
//! authorization) as the LNS speaks it to its AAA servers.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Authenticator (16 octets)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attributes ...  (Type, Length, Value), RFC 2865 §5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! - [`packet`]: the zero-copy view [`RadiusPacket`] and the owned [`Packet`] with its
//!   [`Attribute`]s (`parse`/`emit`), field offsets named once.
//! - [`auth`]: the authenticators (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3), User-Password
//!   hiding (RFC 2865 §5.2), Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2) and the
//!   CHAP attributes (RFC 2865 §5.3, §5.40).
//!
//! Vendor-Specific attributes (RFC 2865 §5.26) are kept as raw [`Attribute`]s; [`Vsa`] reads
//! and builds the common "one vendor attribute per VSA" layout (RFC 2865 §5.26's suggested
//! format), which the Microsoft attributes (RFC 2548, vendor 311) use.

pub mod auth;
pub mod packet;

pub use packet::{Attribute, Attributes, Packet, RadiusPacket, Vsa, HEADER_LEN, MAX_LEN};

/// Packet Codes (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2).
pub mod code {
    /// Access-Request.
    pub const ACCESS_REQUEST: u8 = 1;
    /// Access-Accept.
    pub const ACCESS_ACCEPT: u8 = 2;
    /// Access-Reject.
    pub const ACCESS_REJECT: u8 = 3;
    /// Accounting-Request (RFC 2866 §3).
    pub const ACCOUNTING_REQUEST: u8 = 4;
    /// Accounting-Response (RFC 2866 §3).
    pub const ACCOUNTING_RESPONSE: u8 = 5;
    /// Access-Challenge.
    pub const ACCESS_CHALLENGE: u8 = 11;
    /// Status-Server (RFC 5997).
    pub const STATUS_SERVER: u8 = 12;
    /// Disconnect-Request (RFC 5176 §2.1).
    pub const DISCONNECT_REQUEST: u8 = 40;
    /// Disconnect-ACK.
    pub const DISCONNECT_ACK: u8 = 41;
    /// Disconnect-NAK.
    pub const DISCONNECT_NAK: u8 = 42;
    /// CoA-Request (RFC 5176 §2.2).
    pub const COA_REQUEST: u8 = 43;
    /// CoA-ACK.
    pub const COA_ACK: u8 = 44;
    /// CoA-NAK.
    pub const COA_NAK: u8 = 45;
}

/// Attribute Types (RFC 2865 §5, RFC 2866 §5, RFC 2867, RFC 2868, RFC 2869 §5, RFC 3162,
/// RFC 4818).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_PROTOCOL: u8 = 7;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const FRAMED_MTU: u8 = 12;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const IDLE_TIMEOUT: u8 = 28;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const PROXY_STATE: u8 = 33;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const CHAP_CHALLENGE: u8 = 60;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const TUNNEL_TYPE: u8 = 64;
    pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
    pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
    pub const TUNNEL_SERVER_ENDPOINT: u8 = 67;
    pub const ACCT_TUNNEL_CONNECTION: u8 = 68;
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    pub const NAS_PORT_ID: u8 = 87;
    pub const FRAMED_POOL: u8 = 88;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
    pub const ERROR_CAUSE: u8 = 101;
    pub const DELEGATED_IPV6_PREFIX: u8 = 123;
}

/// Attribute values the LNS sends.
pub mod value {
    /// Service-Type Framed (RFC 2865 §5.6).
    pub const SERVICE_TYPE_FRAMED: u32 = 2;
    /// Framed-Protocol PPP (RFC 2865 §5.7).
    pub const FRAMED_PROTOCOL_PPP: u32 = 1;
    /// NAS-Port-Type Virtual (RFC 2865 §5.41).
    pub const NAS_PORT_TYPE_VIRTUAL: u32 = 5;
    /// Tunnel-Type L2TP (RFC 2868 §3.1).
    pub const TUNNEL_TYPE_L2TP: u32 = 3;
    /// Tunnel-Medium-Type IPv4 (RFC 2868 §3.2).
    pub const TUNNEL_MEDIUM_IPV4: u32 = 1;
    /// Acct-Status-Type Start, Stop, Interim-Update (RFC 2866 §5.1, RFC 2869 §2.1).
    pub const ACCT_START: u32 = 1;
    pub const ACCT_STOP: u32 = 2;
    pub const ACCT_INTERIM_UPDATE: u32 = 3;
}

/// Vendor 311, Microsoft (RFC 2548): the MS-CHAP attributes.
pub mod microsoft {
    /// The SMI Network Management Private Enterprise Code of Microsoft.
    pub const VENDOR_ID: u32 = 311;
    /// MS-CHAP-Error (RFC 2548 §2.1.5).
    pub const MS_CHAP_ERROR: u8 = 2;
    /// MS-CHAP-Challenge (RFC 2548 §2.3.2).
    pub const MS_CHAP_CHALLENGE: u8 = 11;
    /// MS-CHAP2-Response (RFC 2548 §2.3.2): Ident, Flags, Peer-Challenge(16), Reserved(8),
    /// Response(24).
    pub const MS_CHAP2_RESPONSE: u8 = 25;
    /// MS-CHAP2-Success (RFC 2548 §2.3.3): Ident and "S=" with the authenticator response.
    pub const MS_CHAP2_SUCCESS: u8 = 26;
}
