//! The workers' per-packet path for the frames the XDP programs hand over: the common case of
//! `wire::datapath` without its generic parsing, byte for byte the same output.
//!
//! # Decapsulation: what the programs guarantee, what runs again here
//!
//! A frame arrives with [`maps::XskMeta`] `dir = DECAP` only after the program ran every
//! decapsulation step of `wire::datapath::decap` but the sequence check (9) against the pinned
//! maps — outer Ethernet/IP validity, the IPv4 header checksum, the UDP length and checksum
//! rules, the session lookup (version and transport), the spoofing and destination checks, the
//! v3 cookie, PPP, the inner header, the v2 source binding and the inner TTL — and found it a
//! `Forward`. [`decap`] relies on those and does not run them again (the IPv4 header checksum,
//! the UDP checksum, the address/port comparisons and the source binding are where the
//! reference's instructions went). What it still does, per frame:
//! - walks the headers to the inner packet (the programs do not pass its offset for decap),
//!   with every bound checked against the frame;
//! - the identifiers in the frame must be the metadata's key, and the replica's session of that
//!   key must be of the frame's version and transport;
//! - the things that select the layout: the v3 cookie (compared, it is 4 or 8 bytes), the
//!   sublayer, the PPP protocol (IPv4/IPv6), the inner version nibble, length and TTL > 1;
//! - the sequence check (9), with this worker's receive state: the programs skip it in AF_XDP
//!   mode.
//!
//! Anything else — a frame the walk does not recognise as the common case (a third VLAN tag,
//! an L2TPv2 offset field, a PPP protocol other than IPv4/IPv6, …), or one that disagrees with
//! the replica (a session changed between the program and the worker) — is
//! [`Decap::Fallback`]: the worker runs the reference `decap` on it, so the outcome is the
//! reference's. The fallback is decided before the receive state is touched, so the sequence
//! check runs once per frame either way.
//!
//! # Encapsulation
//!
//! [`Prepared`] holds, per session, the frame `wire::datapath::encap` writes before the inner
//! packet (Ethernet to the end of the L2TP/PPP header), made by `encap` itself when the session
//! is installed, plus the partial checksums of its constant words. Per frame [`encap`] copies
//! it, writes the lengths, the Ns, the IPv4 header checksum (the constant part's sum plus the
//! length), the PPP protocol for an IPv6 inner packet and the UDP checksum (one pass over the
//! datagram, words summed 4 bytes at a time). An inner packet `encap` would refuse goes to the
//! reference ([`None`]).

use core::ops::Range;

use l2xdp_ebpf::maps;
use l2xdp_wire::datapath::{self, InnerKind, RxSeq, Session, SessionKey, TxSeq, V2_SEQ_BITS};
use l2xdp_wire::l2tp::header::{Transport, Version};
use l2xdp_wire::net::checksum;

/// The longest header `encap` writes: Ethernet with two tags (22), IPv6 (40), UDP (8), L2TPv3
/// over UDP (8) with an 8-byte cookie and the sublayer (4).
pub const HDR_MAX: usize = 96;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_L2TP: u8 = 115;

/// Where the Ns goes in an encapsulated frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqAt {
    None,
    /// L2TPv2: 16 bits at this offset.
    V2(u8),
    /// The default sublayer: 24 bits at this offset.
    V3(u8),
}

/// A session prepared for the fast path (built once, when the session is installed).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The header `encap` writes before the inner packet (lengths, checksums and Ns zero).
    hdr: [u8; HDR_MAX],
    hdr_len: u8,
    /// Offset of the outer IP header.
    ip_at: u8,
    /// Offset of the UDP header (UDP transport only).
    udp_at: u8,
    v6: bool,
    udp: bool,
    /// Whether the UDP checksum is computed (always over IPv6).
    udp_csum: bool,
    v2: bool,
    seq_at: SeqAt,
    /// Folded sum of the IPv4 header words but Total Length and the checksum.
    ip4_sum: u16,
    /// Folded sum of the pseudo-header's addresses and protocol (its length added per frame).
    pseudo: u16,
    /// Decapsulation: the session's receive rules.
    transport_ip: bool,
    cookie_rx: [u8; 8],
    cookie_len: u8,
    l2ss: bool,
    sequencing: bool,
}

/// The ones-complement sum of `b` as big-endian 16-bit words (odd last byte padded), folded —
/// `checksum::data`, 4 bytes per step. The sum is byte-order independent (RFC 1071 §2(B)): the
/// words are added in native order and the result swapped back.
pub fn sum(b: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut c = b.chunks_exact(4);
    for w in &mut c {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let r = c.remainder();
    let mut i = 0;
    if r.len() >= 2 {
        acc += u64::from(u16::from_ne_bytes([r[0], r[1]]));
        i = 2;
    }
    if let Some(&last) = r.get(i) {
        acc += u64::from(u16::from_ne_bytes([last, 0]));
    }
    u16::from_be(fold(acc))
}

/// `checksum::fold` without its loop: a 64-bit accumulator folds to 16 bits in four steps
/// (end-around carry; the same value, 0 only for 0).
#[inline(always)]
fn fold(acc: u64) -> u16 {
    let a = (acc & 0xffff_ffff) + (acc >> 32);
    let a = (a & 0xffff) + (a >> 16);
    let a = (a & 0xffff) + (a >> 16);
    ((a & 0xffff) + (a >> 16)) as u16
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Prepared {
    /// Prepares `s` (`None` when `encap` refuses the session: the reference then handles every
    /// frame of it).
    pub fn new(s: &Session) -> Option<Prepared> {
        let v2 = s.version() == Version::V2;
        let v6 = s.local_addr.is_ipv6();
        // A minimal inner packet: v2 IPv4 (the protocol byte is patched for IPv6), v3 Ethernet.
        let inner: &[u8] = if v2 { &[0x45; 20] } else { &[0; 14] };
        let mut out = [0u8; HDR_MAX + 20];
        let n = datapath::encap(s, &mut TxSeq::default(), inner, usize::MAX, &mut out).ok()?;
        let hdr_len = n.checked_sub(inner.len())?;
        let (full, ip_only) = datapath::encap_overhead(s);
        if full != hdr_len || hdr_len > HDR_MAX {
            return None;
        }
        let ip_at = hdr_len - ip_only;
        let iphl = if v6 { 40 } else { 20 };
        let udp = s.transport == Transport::Udp;
        let udp_at = ip_at + iphl;
        let mut hdr = [0u8; HDR_MAX];
        hdr[..hdr_len].copy_from_slice(&out[..hdr_len]);
        // Per-frame fields zeroed: IP length (and IPv4 checksum), UDP length and checksum.
        let ip4_sum = if v6 {
            hdr[ip_at + 4..ip_at + 6].fill(0);
            0
        } else {
            hdr[ip_at + 2..ip_at + 4].fill(0);
            hdr[ip_at + 10..ip_at + 12].fill(0);
            checksum::data(&hdr[ip_at..ip_at + 20])
        };
        if udp {
            hdr[udp_at + 4..udp_at + 8].fill(0);
        }
        let pseudo = if udp {
            let mut a = [0u8; 32];
            let al = match (s.local_addr, s.peer_addr) {
                (core::net::IpAddr::V4(l), core::net::IpAddr::V4(p)) => {
                    a[..4].copy_from_slice(&l.octets());
                    a[4..8].copy_from_slice(&p.octets());
                    8
                }
                (core::net::IpAddr::V6(l), core::net::IpAddr::V6(p)) => {
                    a[..16].copy_from_slice(&l.octets());
                    a[16..].copy_from_slice(&p.octets());
                    32
                }
                _ => return None,
            };
            checksum::combine(&[checksum::data(&a[..al]), u16::from(IPPROTO_UDP)])
        } else {
            0
        };
        let seq_at = if !s.sequencing {
            SeqAt::None
        } else if v2 {
            // Flags, Tunnel ID, Session ID, then Ns (no Length field is sent).
            SeqAt::V2((udp_at + 8 + 6) as u8)
        } else {
            SeqAt::V3((hdr_len - 3) as u8)
        };
        if let SeqAt::V2(at) | SeqAt::V3(at) = seq_at {
            let w = if v2 { 2 } else { 3 };
            hdr[usize::from(at)..usize::from(at) + w].fill(0);
        }
        let mut cookie_rx = [0u8; 8];
        cookie_rx[..s.cookie_rx.len()].copy_from_slice(s.cookie_rx.as_bytes());
        Some(Prepared {
            hdr,
            hdr_len: hdr_len as u8,
            ip_at: ip_at as u8,
            udp_at: udp_at as u8,
            v6,
            udp,
            udp_csum: udp && (v6 || s.udp_checksum_v4),
            v2,
            seq_at,
            ip4_sum,
            pseudo,
            transport_ip: s.transport == Transport::Ip,
            cookie_rx,
            cookie_len: s.cookie_rx.len() as u8,
            l2ss: s.l2ss,
            sequencing: s.sequencing,
        })
    }
}

/// [`encap`]'s answer: the frame length, or `None` (the reference decides).
///
/// Writes what `wire::datapath::encap(session, &mut TxSeq { next_ns: ns }, inner, usize::MAX,
/// out)` writes, with `dmac`/`smac` in place of the Ethernet addresses (as the worker does
/// after `encap`), `ns` masked to the version's width.
#[inline]
pub fn encap(
    p: &Prepared,
    ns: u32,
    inner: &[u8],
    dmac: &[u8; 6],
    smac: &[u8; 6],
    out: &mut [u8],
) -> Option<usize> {
    let hl = usize::from(p.hdr_len);
    let v6_inner = if p.v2 {
        match inner.first()? >> 4 {
            4 if inner.len() >= 20 => false,
            6 if inner.len() >= 40 => true,
            _ => return None,
        }
    } else {
        if inner.len() < ETH_HLEN {
            return None;
        }
        false
    };
    let total = hl + inner.len();
    let ip_at = usize::from(p.ip_at);
    let ip_len = total - ip_at;
    // The reference refuses an IP packet (v4) or payload (v6) beyond 65535 bytes.
    if ip_len > 0xffff + if p.v6 { 40 } else { 0 } {
        return None;
    }
    let out = out.get_mut(..total)?;
    let (h, body) = out.split_at_mut(hl);
    h.copy_from_slice(&p.hdr[..hl]);
    body.copy_from_slice(inner);
    h[..6].copy_from_slice(dmac);
    h[6..12].copy_from_slice(smac);
    if p.v6 {
        h[ip_at + 4..ip_at + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
    } else {
        h[ip_at + 2..ip_at + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        let c = !fold(u64::from(p.ip4_sum) + ip_len as u64);
        h[ip_at + 10..ip_at + 12].copy_from_slice(&c.to_be_bytes());
    }
    if v6_inner {
        // The PPP protocol's last byte (0x0021 → 0x0057, or 0x21 → 0x57 with PFC).
        h[hl - 1] = 0x57;
    }
    match p.seq_at {
        SeqAt::None => {}
        SeqAt::V2(at) => {
            let at = usize::from(at);
            h[at..at + 2].copy_from_slice(&(ns as u16).to_be_bytes());
        }
        SeqAt::V3(at) => {
            let at = usize::from(at);
            h[at..at + 3].copy_from_slice(&ns.to_be_bytes()[1..]);
        }
    }
    if p.udp {
        let udp_at = usize::from(p.udp_at);
        let ulen = (total - udp_at) as u16;
        out[udp_at + 4..udp_at + 6].copy_from_slice(&ulen.to_be_bytes());
        if p.udp_csum {
            let s = sum(&out[udp_at..]);
            let c = match !fold(u64::from(p.pseudo) + u64::from(ulen) + u64::from(s)) {
                0 => 0xffff,
                c => c,
            };
            out[udp_at + 6..udp_at + 8].copy_from_slice(&c.to_be_bytes());
        }
    }
    Some(total)
}

/// [`decap`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decap {
    /// The reference's `Forward { inner, kind, .. }`.
    Forward {
        inner: Range<usize>,
        kind: InnerKind,
    },
    /// The reference's `Drop(SequenceOutOfOrder)` (the receive state was updated as it does).
    OutOfOrder,
    /// Not the common case: run the reference (nothing was changed).
    Fallback,
}

/// The key as the worker's table holds it.
pub const fn key_u64(k: &maps::SessionKey) -> u64 {
    (k.version as u64) << 32 | k.id as u64
}

/// Decapsulates a frame the program handed over for `key` (see the module documentation for
/// what is checked here); `rx` and `relearn_after` as in `wire::datapath::decap`.
#[inline]
pub fn decap(
    frame: &[u8],
    p: &Prepared,
    key: &maps::SessionKey,
    rx: &mut RxSeq,
    relearn_after: u32,
) -> Decap {
    match walk(frame, p, key) {
        Some((inner, kind, seq)) => {
            if let Some((s, bits)) = seq {
                if !rx.check(s, bits, relearn_after) {
                    return Decap::OutOfOrder;
                }
            }
            Decap::Forward { inner, kind }
        }
        None => Decap::Fallback,
    }
}

type Walked = (Range<usize>, InnerKind, Option<(u32, u32)>);

/// The headers to the inner packet; the sequence number to check (when the session has
/// sequencing and the frame carries one) with its width. `None`: fall back.
#[inline(always)]
fn walk(f: &[u8], p: &Prepared, key: &maps::SessionKey) -> Option<Walked> {
    // 1. Ethernet, 0–2 tags.
    let mut l3 = ETH_HLEN;
    let mut et = be16(f, 12)?;
    for _ in 0..2 {
        if et != ETH_P_8021Q && et != ETH_P_8021AD {
            break;
        }
        et = be16(f, l3 + 2)?;
        l3 += 4;
    }
    // 2. Outer IP: the program validated it; only the offsets are taken.
    let (proto, l4, l4_end) = match et {
        ETH_P_IP => {
            let vihl = *f.get(l3)?;
            let ihl = usize::from(vihl & 0xf) * 4;
            let tot = usize::from(be16(f, l3 + 2)?);
            if vihl >> 4 != 4 || ihl < 20 || tot < ihl {
                return None;
            }
            (*f.get(l3 + 9)?, l3 + ihl, l3 + tot)
        }
        ETH_P_IPV6 => {
            let l4 = l3 + 40;
            (*f.get(l3 + 6)?, l4, l4 + usize::from(be16(f, l3 + 4)?))
        }
        _ => return None,
    };
    if l4_end > f.len() {
        return None;
    }
    match proto {
        IPPROTO_UDP if !p.transport_ip => {
            let ulen = usize::from(be16(f, l4 + 4)?);
            if ulen < 8 || l4 + ulen > l4_end {
                return None;
            }
            let msg = l4 + 8;
            let end = l4 + ulen;
            let w = be16(f, msg)?;
            if w & 0x8000 != 0 {
                return None;
            }
            match w & 0xf {
                2 if p.v2 => walk_v2(f, p, key, w, msg, end),
                3 if !p.v2 => {
                    if msg + 8 > end || key.version != 3 || be32(f, msg + 4)? != key.id {
                        return None;
                    }
                    walk_v3(f, p, msg + 8, end)
                }
                _ => None,
            }
        }
        IPPROTO_L2TP if p.transport_ip && !p.v2 => {
            if l4 + 4 > l4_end || key.version != 3 {
                return None;
            }
            let sid = be32(f, l4)?;
            if sid == 0 || sid != key.id {
                return None;
            }
            walk_v3(f, p, l4 + 4, l4_end)
        }
        _ => None,
    }
}

/// L2TPv2 data (RFC 2661 §3.1) from the flags word `w` at `msg`, the message ending at `end`.
#[inline(always)]
fn walk_v2(
    f: &[u8],
    p: &Prepared,
    key: &maps::SessionKey,
    w: u16,
    msg: usize,
    end: usize,
) -> Option<Walked> {
    // An offset field (O bit) is left to the reference.
    if w & 0x0200 != 0 || key.version != 2 {
        return None;
    }
    let has_len = w & 0x4000 != 0;
    let has_seq = w & 0x0800 != 0;
    let ids_at = msg + if has_len { 4 } else { 2 };
    let hlen = ids_at - msg + 4 + if has_seq { 4 } else { 0 };
    if msg + hlen > end {
        return None;
    }
    let pay_end = if has_len {
        let len = usize::from(be16(f, msg + 2)?);
        if len < hlen || msg + len > end {
            return None;
        }
        msg + len
    } else {
        end
    };
    if be32(f, ids_at)? != key.id {
        return None;
    }
    let seq = if p.sequencing && has_seq {
        Some((u32::from(be16(f, ids_at + 4)?), V2_SEQ_BITS))
    } else {
        None
    };
    // 10. PPP: FF 03 or not, then a one- or two-byte protocol; only IPv4 and IPv6 here.
    let mut at = msg + hlen;
    if f.get(at..at + 2)? == [0xff, 0x03] {
        at += 2;
    }
    let b = *f.get(at)?;
    let (kind, ttl_at, min) = if b == 0x21 || (b == 0 && *f.get(at + 1)? == 0x21) {
        (InnerKind::Ipv4, 8, 20)
    } else if b == 0x57 || (b == 0 && *f.get(at + 1)? == 0x57) {
        (InnerKind::Ipv6, 7, 40)
    } else {
        return None;
    };
    at += if b == 0 { 2 } else { 1 };
    // 11. Inner header; the TTL > 1 (12) the program checked is the reference's condition
    // for Forward, so it is part of the common case.
    let inner = f.get(at..pay_end)?;
    let ver = if kind == InnerKind::Ipv4 { 4 } else { 6 };
    if inner.len() < min || inner[0] >> 4 != ver || inner[ttl_at] <= 1 {
        return None;
    }
    Some((at..pay_end, kind, seq))
}

/// L2TPv3 (RFC 3931 §4.1) after the Session ID at `at`, the message ending at `end`: cookie,
/// sublayer, inner Ethernet.
#[inline(always)]
fn walk_v3(f: &[u8], p: &Prepared, mut at: usize, end: usize) -> Option<Walked> {
    let clen = usize::from(p.cookie_len);
    if f.get(at..at + clen)? != &p.cookie_rx[..clen] {
        return None;
    }
    at += clen;
    let mut seq = None;
    if p.l2ss {
        let l = f.get(at..at + 4)?;
        if p.sequencing && l[0] & 0x40 != 0 {
            seq = Some((
                u32::from_be_bytes([0, l[1], l[2], l[3]]),
                datapath::V3_SEQ_BITS,
            ));
        }
        at += 4;
    }
    if end > f.len() || at + ETH_HLEN > end {
        return None;
    }
    Some((at..end, InnerKind::Ethernet, seq))
}

/// `wire::datapath::emit_inner_ethernet` for an inner packet [`decap`] forwarded (IPv4/IPv6,
/// header present): the Ethernet header, the packet, its TTL / Hop Limit decremented (IPv4
/// checksum per RFC 1624 eqn. 3). `None` where the reference fails: TTL ≤ 1, `out` too small.
#[inline]
pub fn emit_inner(
    inner: &[u8],
    kind: InnerKind,
    dmac: &[u8; 6],
    smac: &[u8; 6],
    out: &mut [u8],
) -> Option<usize> {
    let (et, ttl_at) = match kind {
        InnerKind::Ipv4 => (ETH_P_IP, 8),
        InnerKind::Ipv6 => (ETH_P_IPV6, 7),
        InnerKind::Ethernet => return None,
    };
    let ttl = *inner.get(ttl_at)?;
    if ttl <= 1 {
        return None;
    }
    let out = out.get_mut(..ETH_HLEN + inner.len())?;
    let (eth, ip) = out.split_at_mut(ETH_HLEN);
    eth[..6].copy_from_slice(dmac);
    eth[6..12].copy_from_slice(smac);
    eth[12..].copy_from_slice(&et.to_be_bytes());
    ip.copy_from_slice(inner);
    ip[ttl_at] = ttl - 1;
    if kind == InnerKind::Ipv4 {
        let proto = *ip.get(9)?;
        // RFC 1624 eqn. 3, as `checksum::update_word`.
        let old = u16::from_be_bytes([ttl, proto]);
        let new = u16::from_be_bytes([ttl - 1, proto]);
        let c = !fold(u64::from(!be16(ip, 10)?) + u64::from(!old) + u64::from(new));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    Some(ETH_HLEN + inner.len())
}

/// The wire key of a table key (for the reference's calls).
pub fn wire_key(k: &maps::SessionKey) -> Option<SessionKey> {
    crate::session_map::session_key(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_map::map_key;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use l2xdp_wire::datapath::{emit_inner_ethernet, DecapConfig, DropReason, PppTx, Verdict};
    use l2xdp_wire::l2tp::header::Cookie;
    use l2xdp_wire::net::ethernet::{MacAddr, VlanTag, Vlans};

    const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd];
    const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 0x5];

    /// Every shape of session the reference knows: version, transport, family, tags, cookies,
    /// sublayer, sequencing, PPP framing, UDP checksum over IPv4.
    fn sessions() -> Vec<Session> {
        let mut out = vec![];
        let addrs = [
            (
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            ),
            (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0xabcd, 7)),
            ),
        ];
        let vlans = [
            Vlans::NONE,
            Vlans::new(&[VlanTag {
                tpid: 0x8100,
                tci: 100,
            }])
            .expect("vlans"),
            Vlans::new(&[
                VlanTag {
                    tpid: 0x88a8,
                    tci: 7,
                },
                VlanTag {
                    tpid: 0x8100,
                    tci: 4000,
                },
            ])
            .expect("vlans"),
        ];
        for (local, peer) in addrs {
            for v in vlans {
                for seq in [false, true] {
                    for csum in [false, true] {
                        for (acfc, pfc) in
                            [(false, false), (true, false), (false, true), (true, true)]
                        {
                            out.push(Session {
                                transport: Transport::Udp,
                                local_addr: local,
                                peer_addr: peer,
                                local_port: 1701,
                                peer_port: 40000,
                                local_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                                next_hop_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                                vlans: v,
                                our_ids: SessionKey::V2 {
                                    tunnel_id: 0x1234,
                                    session_id: 0x0042,
                                },
                                peer_ids: SessionKey::V2 {
                                    tunnel_id: 7,
                                    session_id: 0xbeef,
                                },
                                cookie_rx: Cookie::NONE,
                                cookie_tx: Cookie::NONE,
                                l2ss: false,
                                sequencing: seq,
                                ppp: PppTx { acfc, pfc },
                                ttl: 63,
                                dscp: 46,
                                udp_checksum_v4: csum,
                            });
                        }
                    }
                    for transport in [Transport::Udp, Transport::Ip] {
                        for (crx, ctx) in [
                            (&[][..], &[][..]),
                            (&[1, 2, 3, 4][..], &[9, 8, 7, 6, 5, 4, 3, 2][..]),
                            (&[1, 2, 3, 4, 5, 6, 7, 8][..], &[0xa, 0xb, 0xc, 0xd][..]),
                        ] {
                            for l2ss in [false, true] {
                                if seq && !l2ss {
                                    continue;
                                }
                                out.push(Session {
                                    transport,
                                    local_addr: local,
                                    peer_addr: peer,
                                    local_port: 1701,
                                    peer_port: 1702,
                                    local_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                                    next_hop_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                                    vlans: v,
                                    our_ids: SessionKey::V3 {
                                        session_id: 0x0102_0304,
                                    },
                                    peer_ids: SessionKey::V3 {
                                        session_id: 0xfedc_ba98,
                                    },
                                    cookie_rx: Cookie::new(crx).expect("cookie"),
                                    cookie_tx: Cookie::new(ctx).expect("cookie"),
                                    l2ss,
                                    sequencing: seq,
                                    ppp: PppTx::default(),
                                    ttl: 255,
                                    dscp: 0,
                                    udp_checksum_v4: seq,
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn mirror(s: &Session) -> Session {
        Session {
            local_addr: s.peer_addr,
            peer_addr: s.local_addr,
            local_port: s.peer_port,
            peer_port: s.local_port,
            our_ids: s.peer_ids,
            peer_ids: s.our_ids,
            cookie_rx: s.cookie_tx,
            cookie_tx: s.cookie_rx,
            ..*s
        }
    }

    fn inner_ip(v6: bool, len: usize, ttl: u8, fill: u8) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(fill) ^ 0x5a)
            .collect();
        if v6 {
            p[0] = 0x60;
            p[7] = ttl;
            p[8] = 0x20; // not link-local
        } else {
            p[0] = 0x45;
            p[8] = ttl;
            p[9] = 17;
            let c = !checksum::data(&{
                let mut h = [0u8; 20];
                h.copy_from_slice(&p[..20]);
                h[10] = 0;
                h[11] = 0;
                h
            });
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    fn inners(s: &Session) -> Vec<Vec<u8>> {
        let mut v = vec![];
        for len in [0usize, 1, 2, 3, 7, 14, 15, 20, 21, 40, 41, 64, 333, 1400] {
            if s.version() == Version::V2 {
                for v6 in [false, true] {
                    let min = if v6 { 40 } else { 20 };
                    for ttl in [1u8, 2, 64, 255] {
                        v.push(inner_ip(v6, len.max(min), ttl, len as u8 | 1));
                    }
                }
                // Outside the common case: too short, another version.
                v.push(vec![0x45; len.min(19)]);
                v.push(vec![0x50; len]);
            } else {
                v.push((0..len).map(|i| i as u8 ^ 0x33).collect());
            }
        }
        v
    }

    #[test]
    fn fold_is_the_reference_fold() {
        for acc in [
            0u64,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX >> 8,
        ]
        .into_iter()
        .chain((0..5000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 24)))
        {
            assert_eq!(fold(acc), checksum::fold(acc), "{acc:#x}");
        }
    }

    #[test]
    fn the_checksum_sum_is_the_reference_sum() {
        let data: Vec<u8> = (0..1500u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for end in start..start + 70 {
                assert_eq!(sum(&data[start..end]), checksum::data(&data[start..end]));
            }
        }
        assert_eq!(sum(&[0xff; 1500]), checksum::data(&[0xff; 1500]));
    }

    #[test]
    fn encap_writes_what_the_reference_writes() {
        let mut n = 0;
        for s in sessions() {
            let p = Prepared::new(&s).expect("prepared");
            for inner in inners(&s) {
                for ns in [
                    0u32,
                    1,
                    0x7fff,
                    0xffff,
                    0x1_0000,
                    0xff_ffff,
                    0x123_4567,
                    u32::MAX,
                ] {
                    let mut want = vec![0u8; 2048];
                    let r = datapath::encap(
                        &s,
                        &mut TxSeq { next_ns: ns },
                        &inner,
                        usize::MAX,
                        &mut want,
                    )
                    .ok();
                    want[..6].copy_from_slice(&DMAC);
                    want[6..12].copy_from_slice(&SMAC);
                    let mut got = vec![0u8; 2048];
                    match encap(&p, ns, &inner, &DMAC, &SMAC, &mut got) {
                        Some(g) => {
                            assert_eq!(Some(g), r, "{s:?} {inner:?}");
                            assert_eq!(got[..g], want[..g], "{s:?} ns {ns} inner {}", inner.len());
                            n += 1;
                        }
                        // Left to the reference: only what it refuses.
                        None => assert_eq!(r, None, "{s:?} {inner:?}"),
                    }
                }
            }
        }
        assert!(n > 10_000, "{n}");
    }

    #[test]
    fn encap_leaves_a_frame_that_does_not_fit_to_the_reference() {
        let s = sessions()[0];
        let p = Prepared::new(&s).expect("prepared");
        let inner = inner_ip(false, 100, 64, 3);
        assert_eq!(encap(&p, 0, &inner, &DMAC, &SMAC, &mut [0u8; 120]), None);
    }

    use l2xdp_wire::datapath::decap as ref_decap;
    fn decap_ref(frame: &[u8], s: &Session, rx: &mut RxSeq, cfg: &DecapConfig) -> Verdict {
        let key = s.our_ids;
        ref_decap(
            frame,
            cfg,
            |k| (*k == key).then_some(s),
            |k| (*k == key).then_some(rx),
            |_| Some(key),
        )
    }

    #[test]
    fn decap_finds_what_the_reference_finds_and_keeps_the_same_sequence_state() {
        let cfg = DecapConfig::default();
        let mut n = 0;
        for s in sessions() {
            let p = Prepared::new(&s).expect("prepared");
            let key = map_key(&s.our_ids);
            let peer = mirror(&s);
            let (mut rx_ref, mut rx_fast) = (RxSeq::default(), RxSeq::default());
            // In order, a jump, old ones, a run (re-learning), back in order.
            let seqs = [
                0u32, 1, 2, 500, 3, 3, 4, 5, 6, 7, 8, 501, 0xffff, 0x1_0000, 9,
            ];
            for (i, inner) in inners(&peer).iter().enumerate() {
                let ns = seqs[i % seqs.len()];
                let mut frame = vec![0u8; 2048];
                let Ok(len) = datapath::encap(
                    &peer,
                    &mut TxSeq { next_ns: ns },
                    inner,
                    usize::MAX,
                    &mut frame,
                ) else {
                    continue;
                };
                frame.truncate(len);
                let want = decap_ref(&frame, &s, &mut rx_ref, &cfg);
                let got = decap(&frame, &p, &key, &mut rx_fast, cfg.seq_relearn_after);
                match (&got, &want) {
                    (
                        Decap::Forward {
                            inner: gi,
                            kind: gk,
                        },
                        Verdict::Forward {
                            inner: wi,
                            kind: wk,
                            ..
                        },
                    ) => {
                        assert_eq!((gi, gk), (wi, wk), "{s:?}");
                        n += 1;
                        if *gk != InnerKind::Ethernet {
                            let (mut a, mut b) = ([0u8; 2048], [0u8; 2048]);
                            let ga = emit_inner(&frame[gi.clone()], *gk, &DMAC, &SMAC, &mut a);
                            let wb = emit_inner_ethernet(
                                &frame[wi.clone()],
                                MacAddr(DMAC),
                                MacAddr(SMAC),
                                &mut b,
                            )
                            .ok();
                            assert_eq!(ga, wb);
                            assert_eq!(a, b);
                        }
                    }
                    (Decap::OutOfOrder, Verdict::Drop(DropReason::SequenceOutOfOrder)) => n += 1,
                    (Decap::Fallback, _) => {
                        // The reference then decides: run it on the fast path's state.
                        let again = decap_ref(&frame, &s, &mut rx_fast, &cfg);
                        assert_eq!(again, want, "{s:?}");
                        assert!(!matches!(want, Verdict::Forward { .. }), "{s:?} {inner:?}");
                    }
                    _ => panic!("{s:?}: fast {got:?}, reference {want:?}"),
                }
                assert_eq!(rx_fast, rx_ref, "{s:?}");
            }
        }
        assert!(n > 2_000, "{n}");
    }

    #[test]
    fn what_is_not_the_common_case_falls_back_before_the_sequence_state_is_touched() {
        let s = sessions()
            .into_iter()
            .find(|s| s.version() == Version::V2 && s.sequencing && s.vlans.is_empty())
            .expect("a v2 session with sequencing");
        let p = Prepared::new(&s).expect("prepared");
        let key = map_key(&s.our_ids);
        let mut frame = vec![0u8; 2048];
        let inner = inner_ip(false, 60, 64, 3);
        let n = datapath::encap(
            &mirror(&s),
            &mut TxSeq { next_ns: 9 },
            &inner,
            usize::MAX,
            &mut frame,
        )
        .expect("encap");
        frame.truncate(n);
        let mut rx = RxSeq::default();
        let fresh = rx;
        // Another key than the frame's.
        let other = maps::SessionKey {
            id: key.id ^ 1,
            ..key
        };
        assert_eq!(decap(&frame, &p, &other, &mut rx, 5), Decap::Fallback);
        let v3 = maps::SessionKey { version: 3, ..key };
        assert_eq!(decap(&frame, &p, &v3, &mut rx, 5), Decap::Fallback);
        // Truncated anywhere.
        for len in 0..n {
            assert_eq!(
                decap(&frame[..len], &p, &key, &mut rx, 5),
                Decap::Fallback,
                "{len}"
            );
        }
        let l2tp = 14 + 20 + 8;
        // An offset field (O bit), a PPP protocol other than IPv4/IPv6 (LCP).
        let mut o = frame.clone();
        o[l2tp] |= 0x02;
        assert_eq!(decap(&o, &p, &key, &mut rx, 5), Decap::Fallback);
        let mut lcp = frame.clone();
        let ppp = l2tp + 10 + if s.ppp.acfc { 0 } else { 2 };
        lcp[ppp..ppp + 2].copy_from_slice(&[0xc0, 0x21]);
        if s.ppp.pfc {
            lcp[ppp] = 0xc1;
        }
        assert_eq!(decap(&lcp, &p, &key, &mut rx, 5), Decap::Fallback);
        assert_eq!(rx, fresh);
        // The frame itself: Ns 9 is ahead of 0, accepted.
        assert!(matches!(
            decap(&frame, &p, &key, &mut rx, 5),
            Decap::Forward { .. }
        ));
        assert_eq!(rx.expected, 10);
        assert_eq!(decap(&frame, &p, &key, &mut rx, 5), Decap::OutOfOrder);
    }
}
