//! The reference data path: L2TP encapsulation and decapsulation, byte for byte the contract of
//! the XDP program (C) and the AF_XDP workers.
//!
//! Everything here is bounded: headers are parsed at fixed or table-driven offsets, at most two
//! VLAN tags, no IPv6 extension-header walk, and the only loop over payload bytes is the UDP
//! checksum. Every rule below is one the fast path must implement identically.
//!
//! # Decapsulation ([`decap`]) — the order of checks is part of the contract
//!
//! 1. **Outer Ethernet**: 0, 1 or 2 VLAN tags (0x8100/0x88a8) are skipped; the VLAN IDs are not
//!    checked. EtherType other than IPv4/IPv6, a truncated header or a third tag → [`Verdict::Pass`].
//! 2. **Outer IP** (anything wrong at this level is the kernel's business → `Pass`):
//!    IPv4: version 4, IHL ≥ 5, Total Length ≥ IHL×4 and ≤ bytes present, header checksum (options
//!    included) valid, not a fragment (MF clear and offset 0; the kernel reassembles). IPv6:
//!    version 6, 40 + Payload Length ≤ bytes present. Bytes after Total Length / Payload Length
//!    (Ethernet padding) are ignored. IPv6 extension headers are not walked: Next Header must be
//!    UDP (17) or L2TP (115) directly, anything else → `Pass`.
//! 3. **Classification**: protocol 115 is L2TPv3 over IP. UDP is L2TP only when the IP payload has
//!    8 bytes and the destination port equals [`DecapConfig::udp_port`]; otherwise `Pass`.
//!    From here on the packet is L2TP and is never passed silently:
//! 4. **UDP**: Length < 8 or > IP payload → `Drop(BadUdpLength)`; the L2TP message is bounded by
//!    the UDP Length. Checksum 0: accepted over IPv4 (RFC 768); over IPv6 →
//!    `Drop(ZeroUdp6Checksum)` unless [`DecapConfig::accept_zero_udp6_checksum`] (RFC 6935/6936).
//!    Nonzero: verified only when [`DecapConfig::verify_udp_checksum`] → `Drop(BadUdpChecksum)`.
//! 5. **L2TP over UDP**: fewer than 2 bytes → `Drop(Truncated)`; version nibble not 2 or 3 →
//!    `Drop(UnsupportedVersion)` (RFC 2661 §3.1: unknown versions are discarded); T bit →
//!    `ToControlPlane(L2tpControl)` (no further check: the control plane validates).
//! 6. **L2TPv2 data** (RFC 2661 §3.1): the header as announced by L, S, O (offset pad skipped, P
//!    ignored) must fit → `Drop(Truncated)`; a Length field shorter than the header →
//!    `Drop(MalformedL2tp)`, longer than the message → `Drop(Truncated)`. The payload ends at Length
//!    when L is set, else at the UDP end. Session lookup with `V2 { tunnel_id, session_id }`; no
//!    session, or a session that is not v2 over UDP → `Drop(UnknownSession)`.
//!    **L2TPv3 over UDP** (RFC 3931 §4.1.2.1): fewer than 8 bytes → `Drop(Truncated)`; Session ID 0
//!    → `Drop(UnknownSession)` without lookup; the reserved bits are ignored.
//!    **L2TPv3 over IP** (RFC 3931 §4.1.1): fewer than 4 bytes → `Drop(Truncated)`; Session ID 0 →
//!    `ToControlPlane(L2tpControl)`. The message ends at the IP payload end.
//!    v3 lookup with `V3 { session_id }`; no session or one of another version/transport →
//!    `Drop(UnknownSession)`.
//! 7. **Spoof check**: outer source address ≠ session peer, or (UDP) source port ≠ peer port →
//!    `Drop(SpoofedSource)`; then destination address ≠ session local, or (UDP) destination port ≠
//!    local port → `Drop(WrongDestination)`.
//! 8. **v3 cookie**: the session's expected cookie length (0/4/8) must fit → `Drop(Truncated)`;
//!    bytes differ → `Drop(WrongCookie)` (whole-cookie compare, no early exit needed).
//!    **v3 sublayer**: when the session uses the default L2-Specific Sublayer (RFC 3931 §4.6), 4
//!    bytes must fit → `Drop(Truncated)`; its S bit (0x40 of the first byte) says whether the
//!    24-bit sequence number is valid; the other bits are ignored.
//! 9. **Sequencing** — only when the session has sequencing on *and* the packet carries a
//!    sequence number (v2: S bit, 16-bit Ns; Nr ignored, RFC 2661 §3.1; v3: sublayer S bit,
//!    24 bits). Packets without one are accepted and leave the state alone (RFC 2661 §5.4 lets the
//!    LNS toggle sequencing at any time; RFC 3931 §4.6 marks it per packet). The rule is
//!    [`RxSeq::check`]; a rejected packet → `Drop(SequenceOutOfOrder)`. The state is updated here,
//!    before the payload is looked at, and never rolled back by a later drop.
//! 10. **v2 PPP** (RFC 1661 §6.5–6.6, RFC 1662 §3.2), parsed by [`crate::ppp::frame::parse`]: the
//!     bytes 0xFF 0x03 are Address/Control, anything else means they were compressed away (so
//!     0xFF followed by another byte is the one-byte protocol 0x00FF); then the Protocol: one byte
//!     when odd (PFC), else two bytes (missing → `Drop(Truncated)`); a number RFC 1661 §2 rules
//!     out (even low byte, odd high byte) → `Drop(MalformedPpp)`. Both compressed and uncompressed forms are
//!     accepted whatever was negotiated. 0x0021 → IPv4, 0x0057 → IPv6; 0x8000..=0xFFFF →
//!     `ToControlPlane(PppControl)`; anything else → `ToControlPlane(PppOther)` (the control plane
//!     sends LCP Protocol-Reject, RFC 1661 §5.7).
//! 11. **Inner**: v2 IPv4 needs ≥ 20 bytes and version 4, IPv6 ≥ 40 bytes and version 6, else
//!     `Drop(BadInner)` (Total Length, header checksum and options are not checked).
//!     v3: the inner Ethernet frame needs ≥ 14 bytes, else `Drop(BadInner)`.
//! 12. **v2 source address validation** (RFC 1661 §3.2: network-layer packets only in the
//!     Network phase, once the NCP is opened; BCP 38 / RFC 2827 ingress filtering): an IPv6
//!     source in fe80::/10 → `ToControlPlane(Ipv6LinkLocal)` (neighbour discovery and router
//!     solicitations on the subscriber link are the control plane's). Otherwise the inner
//!     source must be bound to this session: `bound(source)` — IPv4: the subscriber address
//!     map, exact; IPv6: the longest-prefix match over the subscriber prefixes — must return
//!     this packet's key, else `Drop(UnboundSource)`. A session installed with no address (its
//!     PPP not in the Network phase yet) forwards nothing. Only then TTL/Hop Limit ≤ 1 →
//!     `ToControlPlane(InnerTtlExpired)` (the control plane may send ICMP Time Exceeded, never
//!     to an unbound source). v3 has no such check.
//! 13. `Forward { inner, kind, key }`: `inner` spans from after the PPP header (v2) / the sublayer
//!     or cookie (v3) to the end of the L2TP message.
//!
//! # Encapsulation ([`encap`])
//!
//! Ethernet (dst = next-hop MAC, src = our MAC, the session's VLAN tags, outermost first) + outer
//! IPv4 (IHL 5, DSCP from the session, ECN 0, Identification 0, DF set, TTL from the session,
//! header checksum) or IPv6 (traffic class DSCP<<2, flow label 0, hop limit from the session) +
//! for UDP: ports local→peer, checksum computed over IPv6 always and over IPv4 only when
//! [`Session::udp_checksum_v4`] (else 0; a computed 0 is sent as 0xFFFF) +
//! v2: flags 0x0002 (or 0x0802 with Ns from [`TxSeq`] and Nr 0 when sequencing), peer Tunnel ID,
//! peer Session ID, then PPP: FF 03 unless ACFC, protocol 0x0021/0x0057 in two bytes unless PFC
//! (then one byte), then the inner IP packet (its version nibble selects the protocol);
//! v3: over UDP the word 0x0003_0000, then the peer Session ID, the cookie we send, the default
//! sublayer when enabled (0x40 + 24-bit Ns when sequencing, else 4 zero bytes), then the inner
//! Ethernet frame. The sequence number is consumed only when the frame is written.
//!
//! # After decapsulation, v2 ([`emit_inner_ethernet`])
//!
//! The inner IP packet gets an Ethernet header (ethertype from its version) and its TTL / Hop
//! Limit is decremented like a router (RFC 1812 §5.3.1); the IPv4 checksum is updated
//! incrementally (RFC 1624 eqn. 3, the same result as Linux `ip_decrease_ttl()`:
//! `check += htons(0x0100); check += check >= 0xffff`).

use core::net::IpAddr;
use core::ops::Range;

use crate::error::{check_len, check_room, Error, Result};
use crate::l2tp::header::{
    flags, Cookie, L2ssRepr, Transport, V2Packet, V2Repr, V3DataRepr, Version,
};
use crate::net::ethernet::{self, ethertype, EthernetFrame, EthernetRepr, MacAddr, Vlans};
use crate::net::{
    ip_proto, ipv4, ipv6, udp, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr,
};
use crate::ppp::{self, frame::protocol as ppp_proto};

/// Width of the L2TPv2 data sequence number (RFC 2661 §3.1).
pub const V2_SEQ_BITS: u32 = 16;
/// Width of the default L2-Specific Sublayer sequence number (RFC 3931 §4.6).
pub const V3_SEQ_BITS: u32 = 24;

/// How the fast path finds a session: the IDs that arrive in packets (ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum SessionKey {
    /// L2TPv2: our Tunnel ID and Session ID.
    V2 { tunnel_id: u16, session_id: u16 },
    /// L2TPv3: our Session ID.
    V3 { session_id: u32 },
}

impl SessionKey {
    /// The L2TP version of the key.
    pub const fn version(&self) -> Version {
        match self {
            SessionKey::V2 { .. } => Version::V2,
            SessionKey::V3 { .. } => Version::V3,
        }
    }
}

/// PPP framing we send on an L2TPv2 session (receive accepts both forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct PppTx {
    /// Address-and-Control-Field-Compression (RFC 1661 §6.6): omit FF 03.
    pub acfc: bool,
    /// Protocol-Field-Compression (RFC 1661 §6.5): one-byte protocol.
    pub pfc: bool,
}

/// What the control plane installs for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Session {
    /// UDP, or IP protocol 115 (v3 only).
    pub transport: Transport,
    /// Our outer address (destination of what arrives, source of what we send).
    pub local_addr: IpAddr,
    /// The peer's outer address; same family as `local_addr`.
    pub peer_addr: IpAddr,
    /// Our UDP port (ignored over IP).
    pub local_port: u16,
    /// The peer's UDP port (ignored over IP).
    pub peer_port: u16,
    /// Source MAC of encapsulated frames.
    pub local_mac: MacAddr,
    /// Destination MAC of encapsulated frames (the XDP program uses `bpf_fib_lookup`).
    pub next_hop_mac: MacAddr,
    /// VLAN tags of encapsulated frames, outermost first (not checked on receive).
    pub vlans: Vlans,
    /// Our IDs: what arrives in packets; also the lookup key. Its variant is the version.
    pub our_ids: SessionKey,
    /// The peer's IDs: what we put in packets we send. Same variant as `our_ids`.
    pub peer_ids: SessionKey,
    /// v3: the cookie we expect in received packets.
    pub cookie_rx: Cookie,
    /// v3: the cookie we send.
    pub cookie_tx: Cookie,
    /// v3: use the default L2-Specific Sublayer (RFC 3931 §4.6), both directions.
    pub l2ss: bool,
    /// Data sequencing: send sequence numbers and check received ones. v3 needs `l2ss`.
    pub sequencing: bool,
    /// v2: PPP framing we send.
    pub ppp: PppTx,
    /// Outer IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// Outer DSCP (6 bits; ECN is sent as 0).
    pub dscp: u8,
    /// Compute the UDP checksum over IPv4 (else 0 is sent). Over IPv6 it is always computed.
    pub udp_checksum_v4: bool,
}

impl Session {
    /// The L2TP version (from `our_ids`).
    pub const fn version(&self) -> Version {
        self.our_ids.version()
    }

    /// Checks the session is consistent: both address families equal, both ID variants equal,
    /// v2 only over UDP without cookies or sublayer, v3 sequencing only with the sublayer,
    /// DSCP below 64.
    pub fn validate(&self) -> Result<()> {
        let bad = |why| {
            Err(Error::Malformed {
                what: "session",
                why,
            })
        };
        if self.local_addr.is_ipv4() != self.peer_addr.is_ipv4() {
            return bad("local and peer addresses of different families");
        }
        if self.our_ids.version() != self.peer_ids.version() {
            return bad("our IDs and the peer's IDs of different versions");
        }
        if self.dscp >= 64 {
            return bad("DSCP is 6 bits");
        }
        match self.version() {
            Version::V2 => {
                if self.transport != Transport::Udp {
                    return bad("L2TPv2 runs over UDP only");
                }
                if !self.cookie_rx.is_empty() || !self.cookie_tx.is_empty() || self.l2ss {
                    return bad("L2TPv2 has no cookie or sublayer");
                }
            }
            Version::V3 => {
                if self.sequencing && !self.l2ss {
                    return bad("L2TPv3 sequencing needs the default L2-Specific Sublayer");
                }
            }
        }
        Ok(())
    }

    fn seq_bits(&self) -> u32 {
        match self.version() {
            Version::V2 => V2_SEQ_BITS,
            Version::V3 => V3_SEQ_BITS,
        }
    }
}

/// Transmit sequence state of one session: the next Ns to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct TxSeq {
    /// The next sequence number (kept below 2^bits).
    pub next_ns: u32,
}

impl TxSeq {
    /// Returns the next Ns modulo 2^`bits` and advances.
    pub fn take(&mut self, bits: u32) -> u32 {
        let mask = seq_mask(bits);
        let ns = self.next_ns & mask;
        self.next_ns = ns.wrapping_add(1) & mask;
        ns
    }
    /// RFC 4951 §3.2.3: the recovery endpoint sets Ns to zero.
    pub fn reset(&mut self) {
        self.next_ns = 0;
    }
}

/// Receive sequence state of one session.
///
/// The acceptance rule, for a received sequence number `s` of `k` bits (`k` = 16 for v2, 24 for
/// v3), `mask = 2^k − 1`, `half = 2^(k−1)` and the re-learn parameter `n`
/// ([`DecapConfig::seq_relearn_after`]):
///
/// ```text
/// d = (s - expected) & mask
/// if !synced || d < half:                       // new (RFC 3931 App. C window = half the space)
///     accept; expected = (s + 1) & mask; synced = true; run = 0
/// else:                                         // old or duplicate
///     if run > 0 && s == run_next: run += 1 else: run = 1
///     run_next = (s + 1) & mask
///     if n > 0 && run >= n:                     // RFC 4951 §3.2.3: n in-sequence packets
///         accept; expected = run_next; run = 0
///     else: drop (SequenceOutOfOrder)
/// ```
/// A fresh session starts synced with `expected = 0` (RFC 3931 App. C: sessions start at zero);
/// [`RxSeq::unsynced`] (after a data channel reset, or for a session recovered without its
/// counters) accepts the next packet whatever its number and learns from it. `n = 0` disables
/// re-learning from runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RxSeq {
    /// The next expected sequence number.
    pub expected: u32,
    /// Whether `expected` is meaningful.
    pub synced: bool,
    /// Length of the current run of rejected, consecutive sequence numbers.
    pub run: u32,
    /// The number that continues the run.
    pub run_next: u32,
}

impl Default for RxSeq {
    fn default() -> Self {
        RxSeq {
            expected: 0,
            synced: true,
            run: 0,
            run_next: 0,
        }
    }
}

impl RxSeq {
    /// State that learns from the next packet (RFC 4951 §3.2.3 data channel reset).
    pub const fn unsynced() -> Self {
        RxSeq {
            expected: 0,
            synced: false,
            run: 0,
            run_next: 0,
        }
    }

    /// Forgets the expected number: the next packet is accepted and re-learnt from.
    pub fn reset(&mut self) {
        *self = Self::unsynced();
    }

    /// Applies the acceptance rule (see the type's documentation); true when accepted.
    pub fn check(&mut self, seq: u32, bits: u32, relearn_after: u32) -> bool {
        let mask = seq_mask(bits);
        let half = (mask >> 1).wrapping_add(1);
        let s = seq & mask;
        let d = s.wrapping_sub(self.expected) & mask;
        if !self.synced || d < half {
            self.expected = s.wrapping_add(1) & mask;
            self.synced = true;
            self.run = 0;
            return true;
        }
        if self.run > 0 && s == self.run_next {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 1;
        }
        self.run_next = s.wrapping_add(1) & mask;
        if relearn_after > 0 && self.run >= relearn_after {
            self.expected = self.run_next;
            self.run = 0;
            return true;
        }
        false
    }
}

/// Both directions' sequence state of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct SeqState {
    /// What we send.
    pub tx: TxSeq,
    /// What we receive.
    pub rx: RxSeq,
}

const fn seq_mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// Decapsulation settings, global to the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DecapConfig {
    /// The UDP destination port that marks L2TP (default 1701, RFC 2661 §8.1).
    pub udp_port: u16,
    /// Verify nonzero UDP checksums (default true). A zero checksum over IPv4 is always accepted.
    pub verify_udp_checksum: bool,
    /// Accept a zero UDP checksum over IPv6 (default false; RFC 6935/6936 allow it for tunnels).
    pub accept_zero_udp6_checksum: bool,
    /// RFC 4951 §3.2.3 'n': rejected in-sequence packets after which the receiver re-learns
    /// (default 5; 0 disables).
    pub seq_relearn_after: u32,
}

impl Default for DecapConfig {
    fn default() -> Self {
        DecapConfig {
            udp_port: crate::l2tp::UDP_PORT,
            verify_udp_checksum: true,
            accept_zero_udp6_checksum: false,
            seq_relearn_after: 5,
        }
    }
}

/// What a forwarded inner packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum InnerKind {
    /// v2: an IPv4 packet (PPP protocol 0x0021).
    Ipv4,
    /// v2: an IPv6 packet (PPP protocol 0x0057).
    Ipv6,
    /// v3: an Ethernet frame.
    Ethernet,
}

/// Why a packet goes to the control plane (in XDP: `XDP_PASS` to the kernel socket of l2xdpd).
/// Stable discriminants: the fast path may count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[repr(u32)]
pub enum Why {
    /// An L2TP control message: T bit over UDP, or Session ID 0 over IP.
    L2tpControl = 0,
    /// A PPP control protocol (0x8000..=0xffff: LCP, IPCP, IPv6CP, PAP, CHAP...).
    PppControl = 1,
    /// Any other PPP protocol than IPv4/IPv6 (the control plane sends Protocol-Reject).
    PppOther = 2,
    /// v2 inner TTL / hop limit ≤ 1 (ICMP Time Exceeded is the control plane's).
    InnerTtlExpired = 3,
    /// v2 inner IPv6 from a link-local source (fe80::/10): neighbour discovery, router
    /// solicitation on the subscriber link.
    Ipv6LinkLocal = 4,
}

impl Why {
    /// Number of reasons.
    pub const COUNT: usize = 5;
    /// A short stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Why::L2tpControl => "l2tp_control",
            Why::PppControl => "ppp_control",
            Why::PppOther => "ppp_other",
            Why::InnerTtlExpired => "inner_ttl_expired",
            Why::Ipv6LinkLocal => "ipv6_link_local",
        }
    }
}

/// Why a packet identified as L2TP was dropped. The discriminants are STABLE: they index the
/// fast path's per-reason drop counters. Append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[repr(u32)]
pub enum DropReason {
    /// An L2TP header, v3 cookie or sublayer, or PPP header is cut short (or a v2 Length field
    /// exceeds the message).
    Truncated = 0,
    /// UDP Length below 8 or beyond the IP payload.
    BadUdpLength = 1,
    /// A nonzero UDP checksum that does not verify (only when verification is on).
    BadUdpChecksum = 2,
    /// A zero UDP checksum over IPv6 that the configuration does not accept (RFC 8200 §8.1).
    ZeroUdp6Checksum = 3,
    /// L2TP version nibble other than 2 or 3 (over UDP).
    UnsupportedVersion = 4,
    /// L2TPv2 Length field shorter than the header.
    MalformedL2tp = 5,
    /// No session for the key (or one of another version/transport), or v3-over-UDP Session 0.
    UnknownSession = 6,
    /// Outer source address or UDP source port is not the session's peer.
    SpoofedSource = 7,
    /// Outer destination address or UDP destination port is not the session's local one.
    WrongDestination = 8,
    /// The v3 cookie differs from the one the session expects.
    WrongCookie = 9,
    /// The sequence number is old or a duplicate (see [`RxSeq::check`]).
    SequenceOutOfOrder = 10,
    /// PPP: 0xFF not followed by 0x03, or a two-byte protocol with an even low byte.
    MalformedPpp = 11,
    /// The inner packet is too short or of the wrong IP version for its PPP protocol
    /// (v2: < 20 / < 40 bytes; v3: an Ethernet frame < 14 bytes).
    BadInner = 12,
    /// v2: the inner source address is not bound to the session (no address bound yet, or
    /// bound to another session): RFC 1661 §3.2, BCP 38.
    UnboundSource = 13,
}

impl DropReason {
    /// Number of reasons (the size of the counter array).
    pub const COUNT: usize = 14;
    /// Every reason, in discriminant order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Truncated,
        DropReason::BadUdpLength,
        DropReason::BadUdpChecksum,
        DropReason::ZeroUdp6Checksum,
        DropReason::UnsupportedVersion,
        DropReason::MalformedL2tp,
        DropReason::UnknownSession,
        DropReason::SpoofedSource,
        DropReason::WrongDestination,
        DropReason::WrongCookie,
        DropReason::SequenceOutOfOrder,
        DropReason::MalformedPpp,
        DropReason::BadInner,
        DropReason::UnboundSource,
    ];

    /// A short stable name (counter labels).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadUdpLength => "bad_udp_length",
            DropReason::BadUdpChecksum => "bad_udp_checksum",
            DropReason::ZeroUdp6Checksum => "zero_udp6_checksum",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::MalformedL2tp => "malformed_l2tp",
            DropReason::UnknownSession => "unknown_session",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::WrongDestination => "wrong_destination",
            DropReason::WrongCookie => "wrong_cookie",
            DropReason::SequenceOutOfOrder => "sequence_out_of_order",
            DropReason::MalformedPpp => "malformed_ppp",
            DropReason::BadInner => "bad_inner",
            DropReason::UnboundSource => "unbound_source",
        }
    }

    /// The reason with a discriminant.
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }
}

/// The outcome of [`decap`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Verdict {
    /// Data of a known session: `inner` is the range of the inner IP packet (v2) or inner
    /// Ethernet frame (v3) in the frame.
    Forward {
        inner: Range<usize>,
        kind: InnerKind,
        key: SessionKey,
    },
    /// For the control plane.
    ToControlPlane(Why),
    /// Not L2TP for us, or something the kernel must handle (outer fragments, bad outer IP).
    Pass,
    /// L2TP that is dropped and counted.
    Drop(DropReason),
}

/// The outer facts the session checks need.
struct Outer {
    src: IpAddr,
    dst: IpAddr,
    /// (source, destination) UDP ports, for UDP transport.
    ports: Option<(u16, u16)>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Decapsulates one received frame (starting at the outer Ethernet header). See the module
/// documentation for the exact rules and their order. `lookup` is called at most once, and
/// `rx_seq` at most once, only when the session has sequencing on and the packet carries a
/// sequence number (`None` from it means "no state": the packet is accepted). `bound` answers
/// "which session is this inner source address bound to" (IPv4: exact subscriber address;
/// IPv6: longest-prefix match); it is called at most once, for a v2 inner IPv4/IPv6 packet
/// past step 11 whose source is not IPv6 link-local.
pub fn decap<'s, 'q>(
    frame: &[u8],
    cfg: &DecapConfig,
    lookup: impl FnOnce(&SessionKey) -> Option<&'s Session>,
    rx_seq: impl FnOnce(&SessionKey) -> Option<&'q mut RxSeq>,
    bound: impl FnOnce(IpAddr) -> Option<SessionKey>,
) -> Verdict {
    // 1. Ethernet.
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Verdict::Pass;
    };
    let l3 = eth.header_len();
    let Some(l3buf) = frame.get(l3..) else {
        return Verdict::Pass;
    };
    // 2. Outer IP.
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, Range<usize>) = match eth.ethertype() {
        ethertype::IPV4 => {
            let Ok(ip) = Ipv4Packet::new_checked(l3buf) else {
                return Verdict::Pass;
            };
            if ip.version() != 4 || !ip.verify_checksum() || ip.is_fragment() {
                return Verdict::Pass;
            }
            let s = l3 + ip.header_len();
            let e = l3 + usize::from(ip.total_len());
            (ip.src().into(), ip.dst().into(), ip.protocol(), s..e)
        }
        ethertype::IPV6 => {
            let Ok(ip) = Ipv6Packet::new_checked(l3buf) else {
                return Verdict::Pass;
            };
            if ip.version() != 6 {
                return Verdict::Pass;
            }
            let s = l3 + ipv6::HEADER_LEN;
            let e = s + usize::from(ip.payload_len());
            (ip.src().into(), ip.dst().into(), ip.next_header(), s..e)
        }
        _ => return Verdict::Pass,
    };
    let Some(l4buf) = frame.get(l4.clone()) else {
        return Verdict::Pass;
    };
    // 3. Classification.
    match proto {
        ip_proto::UDP => {
            if l4buf.len() < udp::HEADER_LEN {
                return Verdict::Pass;
            }
            let u = UdpPacket::new_unchecked(l4buf);
            if u.dst_port() != cfg.udp_port {
                return Verdict::Pass;
            }
            // 4. UDP.
            let ulen = usize::from(u.len());
            if ulen < udp::HEADER_LEN || ulen > l4buf.len() {
                return Verdict::Drop(DropReason::BadUdpLength);
            }
            if u.checksum() == 0 {
                if src.is_ipv6() && !cfg.accept_zero_udp6_checksum {
                    return Verdict::Drop(DropReason::ZeroUdp6Checksum);
                }
            } else if cfg.verify_udp_checksum && !u.verify_checksum(src, dst) {
                return Verdict::Drop(DropReason::BadUdpChecksum);
            }
            let outer = Outer {
                src,
                dst,
                ports: Some((u.src_port(), u.dst_port())),
            };
            let start = l4.start + udp::HEADER_LEN;
            decap_udp(
                frame,
                start..l4.start + ulen,
                &outer,
                cfg,
                lookup,
                rx_seq,
                bound,
            )
        }
        ip_proto::L2TP => {
            let outer = Outer {
                src,
                dst,
                ports: None,
            };
            let Some(sid) = be32(l4buf, 0) else {
                return Verdict::Drop(DropReason::Truncated);
            };
            if sid == 0 {
                return Verdict::ToControlPlane(Why::L2tpControl);
            }
            decap_v3(
                frame,
                l4.start + 4..l4.end,
                sid,
                Transport::Ip,
                &outer,
                cfg,
                lookup,
                rx_seq,
            )
        }
        _ => Verdict::Pass,
    }
}

/// 5. L2TP over UDP; `msg` is the UDP payload.
#[allow(clippy::too_many_arguments)]
fn decap_udp<'s, 'q>(
    frame: &[u8],
    msg: Range<usize>,
    outer: &Outer,
    cfg: &DecapConfig,
    lookup: impl FnOnce(&SessionKey) -> Option<&'s Session>,
    rx_seq: impl FnOnce(&SessionKey) -> Option<&'q mut RxSeq>,
    bound: impl FnOnce(IpAddr) -> Option<SessionKey>,
) -> Verdict {
    let Some(buf) = frame.get(msg.clone()) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    let Some(word) = be16(buf, 0) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    let ver = word & flags::VER_MASK;
    if ver != 2 && ver != 3 {
        return Verdict::Drop(DropReason::UnsupportedVersion);
    }
    if word & flags::T != 0 {
        return Verdict::ToControlPlane(Why::L2tpControl);
    }
    if ver == 3 {
        let Some(sid) = be32(buf, 4) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        if sid == 0 {
            return Verdict::Drop(DropReason::UnknownSession);
        }
        return decap_v3(
            frame,
            msg.start + 8..msg.end,
            sid,
            Transport::Udp,
            outer,
            cfg,
            lookup,
            rx_seq,
        );
    }
    // 6. L2TPv2 data.
    let p = match V2Packet::new_checked(buf) {
        Ok(p) => p,
        Err(Error::Malformed { .. }) => return Verdict::Drop(DropReason::MalformedL2tp),
        Err(_) => return Verdict::Drop(DropReason::Truncated),
    };
    let key = SessionKey::V2 {
        tunnel_id: p.tunnel_id(),
        session_id: p.session_id(),
    };
    let Some(session) =
        lookup(&key).filter(|s| s.version() == Version::V2 && s.transport == Transport::Udp)
    else {
        return Verdict::Drop(DropReason::UnknownSession);
    };
    // 7.
    if let Some(r) = spoof_check(session, outer) {
        return Verdict::Drop(r);
    }
    // 9.
    if session.sequencing {
        if let Some(ns) = p.ns() {
            if !seq_ok(rx_seq, &key, u32::from(ns), V2_SEQ_BITS, cfg) {
                return Verdict::Drop(DropReason::SequenceOutOfOrder);
            }
        }
    }
    // 10. PPP.
    let pay_start = msg.start + p.header_len();
    let pay_end = msg.start + p.length().map_or(buf.len(), usize::from);
    let Some(ppp) = frame.get(pay_start..pay_end) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    let (protocol, hlen) = match ppp_header(ppp) {
        Ok(x) => x,
        Err(r) => return Verdict::Drop(r),
    };
    let (kind, min, ttl_at) = match protocol {
        ppp_proto::IPV4 => (InnerKind::Ipv4, ipv4::HEADER_LEN, ipv4::TTL_OFFSET),
        ppp_proto::IPV6 => (InnerKind::Ipv6, ipv6::HEADER_LEN, ipv6::HOP_LIMIT_OFFSET),
        p if ppp::is_control_protocol(p) => return Verdict::ToControlPlane(Why::PppControl),
        _ => return Verdict::ToControlPlane(Why::PppOther),
    };
    // 11. Inner.
    let inner = pay_start + hlen..pay_end;
    let Some(ib) = frame.get(inner.clone()) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    let want_ver = if kind == InnerKind::Ipv4 { 4 } else { 6 };
    if ib.len() < min || ib.first().map(|b| b >> 4) != Some(want_ver) {
        return Verdict::Drop(DropReason::BadInner);
    }
    // 12. Source address validation (RFC 1661 §3.2, BCP 38), then the TTL.
    let src = match kind {
        InnerKind::Ipv4 => Ipv4Packet::new_unchecked(ib).src().into(),
        _ => {
            let s = Ipv6Packet::new_unchecked(ib).src();
            if s.is_unicast_link_local() {
                return Verdict::ToControlPlane(Why::Ipv6LinkLocal);
            }
            s.into()
        }
    };
    if bound(src) != Some(key) {
        return Verdict::Drop(DropReason::UnboundSource);
    }
    if ib.get(ttl_at).is_none_or(|&t| t <= 1) {
        return Verdict::ToControlPlane(Why::InnerTtlExpired);
    }
    Verdict::Forward { inner, kind, key }
}

/// 6–13 for L2TPv3; `rest` starts after the Session ID.
#[allow(clippy::too_many_arguments)]
fn decap_v3<'s, 'q>(
    frame: &[u8],
    rest: Range<usize>,
    session_id: u32,
    transport: Transport,
    outer: &Outer,
    cfg: &DecapConfig,
    lookup: impl FnOnce(&SessionKey) -> Option<&'s Session>,
    rx_seq: impl FnOnce(&SessionKey) -> Option<&'q mut RxSeq>,
) -> Verdict {
    let key = SessionKey::V3 { session_id };
    let Some(session) =
        lookup(&key).filter(|s| s.version() == Version::V3 && s.transport == transport)
    else {
        return Verdict::Drop(DropReason::UnknownSession);
    };
    if let Some(r) = spoof_check(session, outer) {
        return Verdict::Drop(r);
    }
    let Some(buf) = frame.get(rest.clone()) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    // 8. Cookie, sublayer.
    let clen = session.cookie_rx.len();
    let Some(cookie) = buf.get(..clen) else {
        return Verdict::Drop(DropReason::Truncated);
    };
    if cookie != session.cookie_rx.as_bytes() {
        return Verdict::Drop(DropReason::WrongCookie);
    }
    let mut at = clen;
    if session.l2ss {
        let Ok((l2ss, _)) = L2ssRepr::parse(buf.get(at..).unwrap_or(&[])) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        at += L2ssRepr::LEN;
        // 9.
        if session.sequencing {
            if let Some(seq) = l2ss.sequence {
                if !seq_ok(rx_seq, &key, seq, V3_SEQ_BITS, cfg) {
                    return Verdict::Drop(DropReason::SequenceOutOfOrder);
                }
            }
        }
    }
    // 11.
    let inner = rest.start + at..rest.end;
    if inner.len() < ethernet::HEADER_LEN {
        return Verdict::Drop(DropReason::BadInner);
    }
    Verdict::Forward {
        inner,
        kind: InnerKind::Ethernet,
        key,
    }
}

fn spoof_check(session: &Session, outer: &Outer) -> Option<DropReason> {
    let ports = match (session.transport, outer.ports) {
        (Transport::Udp, Some(p)) => Some(p),
        _ => None,
    };
    if outer.src != session.peer_addr || ports.is_some_and(|(s, _)| s != session.peer_port) {
        return Some(DropReason::SpoofedSource);
    }
    if outer.dst != session.local_addr || ports.is_some_and(|(_, d)| d != session.local_port) {
        return Some(DropReason::WrongDestination);
    }
    None
}

fn seq_ok<'q>(
    rx_seq: impl FnOnce(&SessionKey) -> Option<&'q mut RxSeq>,
    key: &SessionKey,
    seq: u32,
    bits: u32,
    cfg: &DecapConfig,
) -> bool {
    rx_seq(key).is_none_or(|st| st.check(seq, bits, cfg.seq_relearn_after))
}

/// The PPP header of the v2 data path (RFC 1661 §2, §6.5–6.6, RFC 1662 §3.2), by the one PPP
/// framing parser: returns (protocol, header length). A protocol number the RFC rules out (even
/// low byte or odd high byte) is malformed.
fn ppp_header(b: &[u8]) -> core::result::Result<(u16, usize), DropReason> {
    match ppp::frame::parse(b) {
        Ok((f, _)) if ppp::is_valid_protocol(f.protocol) => Ok((f.protocol, f.header_len())),
        Ok(_) => Err(DropReason::MalformedPpp),
        Err(Error::Truncated { .. }) => Err(DropReason::Truncated),
        Err(_) => Err(DropReason::MalformedPpp),
    }
}

/// The length of the headers [`encap`] puts before the inner packet (Ethernet with VLANs to the
/// end of the L2TP/PPP header), and of the outer IP packet's headers alone.
pub fn encap_overhead(session: &Session) -> (usize, usize) {
    let eth = ethernet::HEADER_LEN + session.vlans.len() * ethernet::TAG_LEN;
    let ip = if session.local_addr.is_ipv4() {
        ipv4::HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    };
    let udp = match session.transport {
        Transport::Udp => udp::HEADER_LEN,
        Transport::Ip => 0,
    };
    let l2tp = match session.version() {
        Version::V2 => {
            6 + if session.sequencing { 4 } else { 0 }
                + if session.ppp.acfc { 0 } else { 2 }
                + if session.ppp.pfc { 1 } else { 2 }
        }
        Version::V3 => {
            (if session.transport == Transport::Udp {
                8
            } else {
                4
            }) + session.cookie_tx.len()
                + if session.l2ss { L2ssRepr::LEN } else { 0 }
        }
    };
    (eth + ip + udp + l2tp, ip + udp + l2tp)
}

/// Encapsulates `inner` (v2: an IPv4 or IPv6 packet, its version nibble selects the PPP
/// protocol; v3: an Ethernet frame) for `session` into `out` and returns the frame length.
///
/// Errors: an inconsistent session ([`Session::validate`]); an inner packet shorter than a
/// minimal header (20/40/14 bytes, `Truncated`) or of another IP version (`Unsupported`); an
/// outer IP packet longer than `mtu` (`Malformed`, "exceeds the MTU"); `BufferTooSmall`. On
/// error nothing is consumed from `tx`.
pub fn encap(
    session: &Session,
    tx: &mut TxSeq,
    inner: &[u8],
    mtu: usize,
    out: &mut [u8],
) -> Result<usize> {
    session.validate()?;
    let protocol = match session.version() {
        Version::V2 => {
            check_len("inner IP packet", inner, 1)?;
            match inner[0] >> 4 {
                4 => {
                    check_len("inner IPv4 packet", inner, ipv4::HEADER_LEN)?;
                    ppp_proto::IPV4
                }
                6 => {
                    check_len("inner IPv6 packet", inner, ipv6::HEADER_LEN)?;
                    ppp_proto::IPV6
                }
                v => {
                    return Err(Error::Unsupported {
                        what: "inner IP version",
                        value: u32::from(v),
                    })
                }
            }
        }
        Version::V3 => {
            check_len("inner Ethernet frame", inner, ethernet::HEADER_LEN)?;
            0
        }
    };
    let (hdrs, ip_hdrs) = encap_overhead(session);
    let ip_len = ip_hdrs + inner.len();
    if ip_len > mtu {
        return Err(Error::Malformed {
            what: "encapsulated packet",
            why: "exceeds the MTU",
        });
    }
    let total = hdrs + inner.len();
    check_room("encapsulated frame", out, total)?;
    let ip_hlen = if session.local_addr.is_ipv4() {
        ipv4::HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    };
    if ip_len - ip_hlen > 0xffff || (session.local_addr.is_ipv4() && ip_len > 0xffff) {
        return Err(Error::Malformed {
            what: "encapsulated packet",
            why: "longer than 65535 bytes",
        });
    }
    let ns = session.sequencing.then(|| tx.take(session.seq_bits()));
    let out = &mut out[..total];

    // Ethernet.
    let mut at = EthernetRepr {
        dst: session.next_hop_mac,
        src: session.local_mac,
        vlans: session.vlans,
        ethertype: if session.local_addr.is_ipv4() {
            ethertype::IPV4
        } else {
            ethertype::IPV6
        },
    }
    .emit(out)?;
    // Outer IP.
    let proto = match session.transport {
        Transport::Udp => ip_proto::UDP,
        Transport::Ip => ip_proto::L2TP,
    };
    let ip_payload = ip_len - ip_hlen;
    match (session.local_addr, session.peer_addr) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => Ipv4Repr {
            src,
            dst,
            protocol: proto,
            ttl: session.ttl,
            dscp: session.dscp,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            payload_len: ip_payload,
        }
        .emit(&mut out[at..])?,
        (IpAddr::V6(src), IpAddr::V6(dst)) => Ipv6Repr {
            src,
            dst,
            next_header: proto,
            hop_limit: session.ttl,
            traffic_class: session.dscp << 2,
            flow_label: 0,
            payload_len: ip_payload,
        }
        .emit(&mut out[at..])?,
        _ => {
            return Err(Error::Malformed {
                what: "session",
                why: "local and peer addresses of different families",
            })
        }
    };
    at += ip_hlen;
    let udp_at = at;
    if session.transport == Transport::Udp {
        at += udp::HEADER_LEN;
    }
    // L2TP (+ PPP).
    match (session.version(), session.peer_ids) {
        (
            Version::V2,
            SessionKey::V2 {
                tunnel_id,
                session_id,
            },
        ) => {
            at += V2Repr {
                control: false,
                with_length: false,
                tunnel_id,
                session_id,
                sequence: ns.map(|n| (n as u16, 0)),
                offset: None,
                priority: false,
            }
            .emit(&mut out[at..], 0)?;
            at += ppp::FrameRepr::negotiated(protocol, session.ppp.acfc, session.ppp.pfc)
                .emit(&mut out[at..])?;
        }
        (Version::V3, SessionKey::V3 { session_id }) => {
            at += V3DataRepr {
                session_id,
                cookie: session.cookie_tx,
            }
            .emit(&mut out[at..], session.transport)?;
            if session.l2ss {
                at += L2ssRepr { sequence: ns }.emit(&mut out[at..])?;
            }
        }
        _ => {
            return Err(Error::Malformed {
                what: "session",
                why: "our IDs and the peer's IDs of different versions",
            })
        }
    }
    out[at..].copy_from_slice(inner);
    // UDP last: its checksum covers the payload.
    if session.transport == Transport::Udp {
        UdpRepr {
            src_port: session.local_port,
            dst_port: session.peer_port,
            payload_len: total - udp_at - udp::HEADER_LEN,
        }
        .emit(
            &mut out[udp_at..],
            session.local_addr,
            session.peer_addr,
            session.udp_checksum_v4,
        )?;
    }
    Ok(total)
}

/// Builds the frame the fast path sends to the core side after a v2 decap: an untagged Ethernet
/// header (`dst`, `src`, EtherType from the inner IP version) and the inner packet with its TTL /
/// Hop Limit decremented (IPv4 checksum updated per RFC 1624 eqn. 3). Returns the frame length.
///
/// Errors: not IPv4/IPv6 or shorter than its fixed header (`Malformed`/`Truncated`), TTL ≤ 1
/// (`Malformed`; [`decap`] sends those to the control plane), `BufferTooSmall`.
pub fn emit_inner_ethernet(
    inner_ip: &[u8],
    dst: MacAddr,
    src: MacAddr,
    out: &mut [u8],
) -> Result<usize> {
    check_len("inner IP packet", inner_ip, 1)?;
    let (et, min, ttl_at) = match inner_ip[0] >> 4 {
        4 => (ethertype::IPV4, ipv4::HEADER_LEN, ipv4::TTL_OFFSET),
        6 => (ethertype::IPV6, ipv6::HEADER_LEN, ipv6::HOP_LIMIT_OFFSET),
        _ => {
            return Err(Error::Malformed {
                what: "inner IP packet",
                why: "version is neither 4 nor 6",
            })
        }
    };
    check_len("inner IP header", inner_ip, min)?;
    let ttl = inner_ip[ttl_at];
    if ttl <= 1 {
        return Err(Error::Malformed {
            what: "inner IP packet",
            why: "TTL expired",
        });
    }
    let total = ethernet::HEADER_LEN + inner_ip.len();
    check_room("inner Ethernet frame", out, total)?;
    let h = EthernetRepr {
        dst,
        src,
        vlans: Vlans::NONE,
        ethertype: et,
    }
    .emit(out)?;
    let ip = &mut out[h..total];
    ip.copy_from_slice(inner_ip);
    if et == ethertype::IPV4 {
        Ipv4Packet::new_unchecked(&mut ip[..]).set_ttl_incremental(ttl - 1);
    } else {
        Ipv6Packet::new_unchecked(&mut ip[..]).set_hop_limit(ttl - 1);
    }
    Ok(total)
}
