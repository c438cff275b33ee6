//! Outer and inner network headers: Ethernet (with up to two VLAN tags), IPv4, IPv6, UDP and the
//! Internet checksum. Modelled on smoltcp's `wire` module (own code, no dependency).
//!
//! - [`checksum`]: ones-complement sums (RFC 1071), pseudo-headers (RFC 768, RFC 8200 §8.1) and
//!   the incremental update of RFC 1624.
//! - [`ethernet`]: Ethernet II with 0, 1 or 2 VLAN tags (IEEE 802.1Q 0x8100, 802.1ad 0x88a8).
//! - [`ipv4`]: the IPv4 header (RFC 791); options are skipped, fragments detectable.
//! - [`ipv6`]: the IPv6 fixed header (RFC 8200); extension headers are not walked.
//! - [`udp`]: UDP (RFC 768) with the IPv4/IPv6 pseudo-header checksum.
//! - [`frame`]: whole frames around a payload (for tests, captures and emulators).

pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod ipv4;
pub mod ipv6;
pub mod udp;

pub use ethernet::{EthernetFrame, EthernetRepr, MacAddr, VlanTag, Vlans};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use udp::{UdpPacket, UdpRepr};

/// IP protocol numbers used here (IANA "Assigned Internet Protocol Numbers").
pub mod ip_proto {
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// L2TPv3 directly over IP (RFC 3931 §4.1.1).
    pub const L2TP: u8 = 115;
}
