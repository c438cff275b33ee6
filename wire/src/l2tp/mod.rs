//! L2TP: headers of both versions, AVPs, control messages and their validator.
//!
//! - [`header`]: the L2TPv2 header (RFC 2661 §3.1), the L2TPv3 control and data headers over UDP
//!   and over IP protocol 115 (RFC 3931 §3.2.1, §4.1.1, §4.1.2), and the default L2-Specific
//!   Sublayer (RFC 3931 §4.6).
//! - [`avp`]: the AVP framing (RFC 2661 §4.1) and every AVP of RFC 2661 §4.4, RFC 3931 §5.4,
//!   RFC 3145 and RFC 4951 §5 as a typed value.
//! - [`hidden`]: hiding and unhiding AVP values (RFC 2661 §4.3).
//! - [`message`]: message types and whole control messages.
//! - [`validate`]: which AVPs each message must carry, M-bit rules, and the result and error
//!   codes a receiver answers with.
//! - [`codes`]: result and error code values.
//! - [`digest`]: the L2TPv3 Message Digest (RFC 3931 §4.3, §5.4.1).

pub mod avp;
pub mod codes;
pub mod digest;
pub mod header;
pub mod hidden;
pub mod message;
pub mod validate;

pub use header::{ControlHeader, Version};

/// The UDP port IANA assigned to L2TP (RFC 2661 §8.1, RFC 3931 §4.1.2.1).
pub const UDP_PORT: u16 = 1701;
/// The IP protocol number of L2TPv3 over IP (RFC 3931 §4.1.1).
pub const IP_PROTOCOL: u8 = 115;
