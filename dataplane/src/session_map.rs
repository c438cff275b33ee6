//! [`SessionEntry`] ↔ the `l2xdp_sessions` slot ([`maps::Session`]) and its profile
//! ([`maps::Profile`], the outer header shared by a tunnel's sessions, with the encap
//! template): built with the reference [`encap`] itself (one way to write an L2TP header), for an
//! empty-ish payload, with the fields the XDP program fills per packet (lengths, checksums, Ns,
//! PPP protocol, MACs) recorded by offset.

use std::net::IpAddr;

use l2xdp_ebpf::maps::{self, flags, HDR_MAX};
use l2xdp_wire::datapath::{encap, PppTx, Session, SessionKey, TxSeq};
use l2xdp_wire::l2tp::header::{Cookie, Transport, Version};
use l2xdp_wire::net::ethernet::{MacAddr, VlanTag, Vlans};

use crate::api::{Binding, DataPlaneError};

/// The map key of a session key.
pub fn map_key(key: &SessionKey) -> maps::SessionKey {
    match *key {
        SessionKey::V2 {
            tunnel_id,
            session_id,
        } => maps::SessionKey {
            version: 2,
            pad: [0; 3],
            id: u32::from(tunnel_id) << 16 | u32::from(session_id),
        },
        SessionKey::V3 { session_id } => maps::SessionKey {
            version: 3,
            pad: [0; 3],
            id: session_id,
        },
    }
}

/// The session key of a map key (`None` for a version other than 2 or 3).
pub fn session_key(k: &maps::SessionKey) -> Option<SessionKey> {
    match k.version {
        2 => Some(SessionKey::V2 {
            tunnel_id: (k.id >> 16) as u16,
            session_id: k.id as u16,
        }),
        3 => Some(SessionKey::V3 { session_id: k.id }),
        _ => None,
    }
}

fn addr16(a: IpAddr) -> [u8; 16] {
    let mut b = [0; 16];
    match a {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b = v.octets(),
    }
    b
}

fn addr_from(family: u8, b: [u8; 16]) -> IpAddr {
    if family == 4 {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        IpAddr::from(b)
    }
}

fn cookie8(c: &Cookie) -> [u8; 8] {
    let mut b = [0; 8];
    b[..c.len()].copy_from_slice(c.as_bytes());
    b
}

/// A session as the maps hold it: its slot value (with `profile` to be filled in by the
/// writer, which shares profiles) and its profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSession {
    /// The slot.
    pub slot: maps::Session,
    /// The outer header it shares with the tunnel's other sessions of the same framing.
    pub profile: maps::Profile,
}

/// The IPv6 prefix kept in the slot for the one-lookup source check: the first /64 (what
/// IPv6CP and a Router Advertisement give a subscriber, RFC 5072), if any. Shorter and
/// longer prefixes are checked in `l2xdp_sub6` (longest prefix over every session); the
/// writer also sends a /64 there when another session holds a longer prefix inside it.
pub fn slot_prefix(binding: &Binding) -> Option<[u8; 8]> {
    match binding {
        Binding::Subscriber { ipv6, .. } => ipv6.iter().find(|p| p.len == 64).map(upper64),
        Binding::AttachmentCircuit { .. } => None,
    }
}

/// The upper 64 bits of a prefix (what a slot's `bind8` holds for a /64).
pub(crate) fn upper64(p: &crate::api::Ipv6Prefix) -> [u8; 8] {
    let mut u = [0u8; 8];
    u.copy_from_slice(&p.addr.octets()[..8]);
    u
}

/// Builds the map values of a session and its binding. Refuses inconsistent entries the way
/// [`crate::MemoryDataPlane`] does, plus a binding that does not fit the version.
pub fn to_map(s: &Session, binding: &Binding) -> Result<MapSession, DataPlaneError> {
    let key = s.our_ids;
    let invalid = |why: String| DataPlaneError::Invalid { key, why };
    s.validate().map_err(|e| invalid(e.to_string()))?;
    let mut m = maps::Session::default();
    let mut p = maps::Profile::zeroed();
    let mk = map_key(&key);
    m.id = mk.id;
    m.version = mk.version;
    p.version = mk.version;
    match (s.version(), binding) {
        (Version::V2, Binding::Subscriber { ipv4, ipv6 }) => {
            m.bind4 = ipv4.map_or(0, |a| u32::from_ne_bytes(a.octets()));
            if let Some(b) = slot_prefix(binding) {
                m.bind8 = b;
                m.flags |= flags::BIND64;
            }
            // Every prefix but the one in the slot is checked in l2xdp_sub6.
            if ipv6.len() > usize::from(m.flags & flags::BIND64 != 0) {
                m.flags |= flags::SUB6_MORE;
            }
        }
        (Version::V3, Binding::AttachmentCircuit { ifindex }) => {
            if *ifindex == 0 {
                return Err(invalid("attachment circuit ifindex 0".into()));
            }
            m.bind4 = *ifindex;
        }
        (Version::V2, _) => return Err(invalid("an L2TPv2 session binds subscribers".into())),
        (Version::V3, _) => {
            return Err(invalid(
                "an L2TPv3 session binds an attachment circuit".into(),
            ))
        }
    }
    p.transport = match s.transport {
        Transport::Udp => 0,
        Transport::Ip => 1,
    };
    p.family = if s.local_addr.is_ipv4() { 4 } else { 6 };
    m.flags |= (if s.l2ss { flags::L2SS } else { 0 })
        | (if s.sequencing { flags::SEQ } else { 0 })
        | (if s.ppp.acfc { flags::ACFC } else { 0 })
        | (if s.ppp.pfc { flags::PFC } else { 0 });
    p.flags = (m.flags & (flags::L2SS | flags::SEQ | flags::ACFC | flags::PFC))
        | (if s.udp_checksum_v4 {
            flags::UDP_CSUM4
        } else {
            0
        });
    p.local_port = s.local_port;
    p.peer_port = s.peer_port;
    p.local_addr = addr16(s.local_addr);
    p.peer_addr = addr16(s.peer_addr);
    m.peer_id = map_key(&s.peer_ids).id;
    // The cookies are the session's own (in the slot), their lengths part of the framing (in
    // the profile the tunnel's sessions share).
    p.cookie_rx_len = s.cookie_rx.len() as u8;
    p.cookie_tx_len = s.cookie_tx.len() as u8;
    if s.version() == Version::V3 {
        m.bind8 = cookie8(&s.cookie_rx);
        m.cookie_tx = cookie8(&s.cookie_tx);
    }
    p.ttl = s.ttl;
    p.dscp = s.dscp;
    p.local_mac = s.local_mac.0;
    p.next_hop_mac = s.next_hop_mac.0;
    for (i, t) in s.vlans.as_slice().iter().enumerate() {
        p.vlan_tpid[i] = t.tpid;
        p.vlan_tci[i] = t.tci;
    }
    p.vlan_count = s.vlans.len() as u8;

    // The template: the reference encap of a minimal payload (Ns 0).
    let dummy: &[u8] = match s.version() {
        Version::V2 => &[0x45; 20],
        Version::V3 => &[0; 14],
    };
    let mut out = [0u8; HDR_MAX + 64];
    let total = encap(s, &mut TxSeq::default(), dummy, usize::MAX, &mut out)
        .map_err(|e| invalid(e.to_string()))?;
    let hdr_len = total - dummy.len();
    if hdr_len > HDR_MAX {
        return Err(invalid(format!(
            "headers of {hdr_len} bytes exceed {HDR_MAX}"
        )));
    }
    let l3 = 14 + 4 * s.vlans.len();
    let l4 = l3 + if s.local_addr.is_ipv4() { 20 } else { 40 };
    let l2tp = l4 + if s.transport == Transport::Udp { 8 } else { 0 };
    p.hdr[..hdr_len].copy_from_slice(&out[..hdr_len]);
    // Fields the program computes per packet start at zero (the checksums cover them).
    if s.local_addr.is_ipv4() {
        p.hdr[l3 + 10..l3 + 12].fill(0);
    }
    if s.transport == Transport::Udp {
        p.hdr[l4 + 6..l4 + 8].fill(0);
    }
    p.hdr_len = hdr_len as u16;
    p.l3_off = l3 as u16;
    p.l4_off = l4 as u16;
    p.seq_off = match (s.version(), s.sequencing) {
        (Version::V2, true) => (l2tp + 6) as u16,
        (Version::V3, true) => {
            (l2tp + if s.transport == Transport::Udp { 8 } else { 4 } + s.cookie_tx.len()) as u16
        }
        _ => 0,
    };
    p.ppp_off = match s.version() {
        Version::V2 => (hdr_len - if s.ppp.pfc { 1 } else { 2 }) as u16,
        Version::V3 => 0,
    };
    // The peer's session id (and v3's transmit cookie) are the slot's; the template, shared
    // by the tunnel's sessions, has zero there.
    let (sid, own) = match s.version() {
        // RFC 2661 §3.1: flags word, [Length], Tunnel ID, Session ID.
        Version::V2 => (l2tp + 2 + if out[l2tp] & 0x40 != 0 { 2 } else { 0 } + 2, 2),
        // RFC 3931 §4.1.2.1 (over UDP: flags word, reserved, Session ID) and §4.1.1.1 (over
        // IP: Session ID), then the Cookie.
        Version::V3 => (
            l2tp + if s.transport == Transport::Udp { 4 } else { 0 },
            4 + s.cookie_tx.len(),
        ),
    };
    p.hdr[sid..sid + own].fill(0);
    p.sid_off = sid as u16;
    Ok(MapSession {
        slot: m,
        profile: p,
    })
}

/// Reads a session back from its slot and profile.
pub fn from_map(m: &maps::Session, p: &maps::Profile) -> Option<Session> {
    let our_ids = session_key(&maps::SessionKey {
        version: m.version,
        pad: [0; 3],
        id: m.id,
    })?;
    let peer_ids = session_key(&maps::SessionKey {
        version: m.version,
        pad: [0; 3],
        id: m.peer_id,
    })?;
    let n = usize::from(p.vlan_count).min(2);
    let tags: Vec<VlanTag> = (0..n)
        .map(|i| VlanTag {
            tpid: p.vlan_tpid[i],
            tci: p.vlan_tci[i],
        })
        .collect();
    let (cookie_rx, cookie_tx) = if m.version == 3 {
        (
            Cookie::new(m.bind8.get(..usize::from(p.cookie_rx_len))?).ok()?,
            Cookie::new(m.cookie_tx.get(..usize::from(p.cookie_tx_len))?).ok()?,
        )
    } else {
        (Cookie::new(&[]).ok()?, Cookie::new(&[]).ok()?)
    };
    Some(Session {
        transport: if p.transport == 0 {
            Transport::Udp
        } else {
            Transport::Ip
        },
        local_addr: addr_from(p.family, p.local_addr),
        peer_addr: addr_from(p.family, p.peer_addr),
        local_port: p.local_port,
        peer_port: p.peer_port,
        local_mac: MacAddr(p.local_mac),
        next_hop_mac: MacAddr(p.next_hop_mac),
        vlans: Vlans::new(&tags).ok()?,
        our_ids,
        peer_ids,
        cookie_rx,
        cookie_tx,
        l2ss: m.flags & flags::L2SS != 0,
        sequencing: m.flags & flags::SEQ != 0,
        ppp: PppTx {
            acfc: m.flags & flags::ACFC != 0,
            pfc: m.flags & flags::PFC != 0,
        },
        ttl: p.ttl,
        dscp: p.dscp,
        udp_checksum_v4: p.flags & flags::UDP_CSUM4 != 0,
    })
}
