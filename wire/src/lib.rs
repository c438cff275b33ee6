//! l2xdp-wire: the one place packet layouts live in Rust.
//!
//! Every protocol is a typed zero-copy view over a byte buffer (`Packet<T: AsRef<[u8]>>`) plus,
//! where a protocol has structure worth owning, a `Repr` with `parse` and `emit`. Field offsets
//! are named once, in a `field` module beside each view. Parsing a data packet never allocates;
//! control messages and PPP control packets are parsed into owned representations because the
//! control plane keeps them.
//!
//! - [`l2tp`]: L2TPv2 (RFC 2661) and L2TPv3 (RFC 3931) headers, AVPs (including RFC 3145 and
//!   RFC 4951), hidden AVPs, control messages and their validator.
//! - [`ppp`]: PPP framing in L2TP (RFC 1661/1662), LCP, PAP, CHAP, IPCP, IPv6CP.
//! - [`net`]: Ethernet, IPv4, IPv6, UDP and the Internet checksum.
//! - [`datapath`]: the reference encapsulation and decapsulation the XDP and AF_XDP fast paths
//!   are tested against, byte for byte.
//! - [`crypto`]: HMAC-MD5 and constant-time comparison (from the `hmac` and `subtle` crates).
//! - [`radius`]: RADIUS packets, attributes and their shared-secret cryptography (RFC 2865,
//!   RFC 2866, RFC 2869, RFC 5176).
//! - [`pcap`]: reading and writing captures (`l2xdp-decode`, its own crate, describes them).
//!
//! Not here: I/O, command-line tools (`l2xdp-decode` is its own crate), test fixtures outside
//! the `examples` feature, and anything that allocates on a data packet's path.

pub mod crypto;
pub mod datapath;
pub mod error;
pub mod l2tp;
pub mod net;
pub mod pcap;
pub mod ppp;
pub mod radius;
#[doc(hidden)]
pub mod selfcheck;
mod ser;

pub use error::{Error, Result};
