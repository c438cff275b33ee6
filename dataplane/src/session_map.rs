//! [`SessionEntry`] ↔ the `l2xdp_sessions` map value ([`maps::Session`]), and the encap
//! template: built with the reference [`encap`] itself (one way to write an L2TP header), for an
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

/// Builds the map value of a session and its binding. Refuses inconsistent entries the way
/// [`crate::MemoryDataPlane`] does, plus a binding that does not fit the version.
pub fn to_map(s: &Session, binding: &Binding) -> Result<maps::Session, DataPlaneError> {
    let key = s.our_ids;
    let invalid = |why: String| DataPlaneError::Invalid { key, why };
    s.validate().map_err(|e| invalid(e.to_string()))?;
    let mut m = maps::Session::zeroed();
    m.version = match s.version() {
        Version::V2 => 2,
        Version::V3 => 3,
    };
    m.binding = match (s.version(), binding) {
        (Version::V2, Binding::Subscriber { .. }) => 0,
        (Version::V3, Binding::AttachmentCircuit { ifindex }) => {
            if *ifindex == 0 {
                return Err(invalid("attachment circuit ifindex 0".into()));
            }
            m.ac_ifindex = *ifindex;
            1
        }
        (Version::V2, _) => return Err(invalid("an L2TPv2 session binds subscribers".into())),
        (Version::V3, _) => {
            return Err(invalid(
                "an L2TPv3 session binds an attachment circuit".into(),
            ))
        }
    };
    m.transport = match s.transport {
        Transport::Udp => 0,
        Transport::Ip => 1,
    };
    m.family = if s.local_addr.is_ipv4() { 4 } else { 6 };
    m.flags = (if s.l2ss { flags::L2SS } else { 0 })
        | (if s.sequencing { flags::SEQ } else { 0 })
        | (if s.udp_checksum_v4 {
            flags::UDP_CSUM4
        } else {
            0
        })
        | (if s.ppp.acfc { flags::ACFC } else { 0 })
        | (if s.ppp.pfc { flags::PFC } else { 0 });
    m.local_port = s.local_port;
    m.peer_port = s.peer_port;
    m.local_addr = addr16(s.local_addr);
    m.peer_addr = addr16(s.peer_addr);
    m.peer_id = map_key(&s.peer_ids).id;
    m.cookie_rx_len = s.cookie_rx.len() as u8;
    m.cookie_tx_len = s.cookie_tx.len() as u8;
    m.cookie_rx = cookie8(&s.cookie_rx);
    m.cookie_tx = cookie8(&s.cookie_tx);
    m.ttl = s.ttl;
    m.dscp = s.dscp;
    m.local_mac = s.local_mac.0;
    m.next_hop_mac = s.next_hop_mac.0;
    for (i, t) in s.vlans.as_slice().iter().enumerate() {
        m.vlan_tpid[i] = t.tpid;
        m.vlan_tci[i] = t.tci;
    }
    m.vlan_count = s.vlans.len() as u8;

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
    m.hdr[..hdr_len].copy_from_slice(&out[..hdr_len]);
    // Fields the program computes per packet start at zero (the checksums cover them).
    if s.local_addr.is_ipv4() {
        m.hdr[l3 + 10..l3 + 12].fill(0);
    }
    if s.transport == Transport::Udp {
        m.hdr[l4 + 6..l4 + 8].fill(0);
    }
    m.hdr_len = hdr_len as u16;
    m.l3_off = l3 as u16;
    m.l4_off = l4 as u16;
    m.seq_off = match (s.version(), s.sequencing) {
        (Version::V2, true) => (l2tp + 6) as u16,
        (Version::V3, true) => {
            (l2tp + if s.transport == Transport::Udp { 8 } else { 4 } + s.cookie_tx.len()) as u16
        }
        _ => 0,
    };
    m.ppp_off = match s.version() {
        Version::V2 => (hdr_len - if s.ppp.pfc { 1 } else { 2 }) as u16,
        Version::V3 => 0,
    };
    Ok(m)
}

/// Reads a session back from its map key and value.
pub fn from_map(k: &maps::SessionKey, m: &maps::Session) -> Option<Session> {
    let our_ids = session_key(k)?;
    let peer_ids = session_key(&maps::SessionKey {
        version: m.version,
        pad: [0; 3],
        id: m.peer_id,
    })?;
    let n = usize::from(m.vlan_count).min(2);
    let tags: Vec<VlanTag> = (0..n)
        .map(|i| VlanTag {
            tpid: m.vlan_tpid[i],
            tci: m.vlan_tci[i],
        })
        .collect();
    Some(Session {
        transport: if m.transport == 0 {
            Transport::Udp
        } else {
            Transport::Ip
        },
        local_addr: addr_from(m.family, m.local_addr),
        peer_addr: addr_from(m.family, m.peer_addr),
        local_port: m.local_port,
        peer_port: m.peer_port,
        local_mac: MacAddr(m.local_mac),
        next_hop_mac: MacAddr(m.next_hop_mac),
        vlans: Vlans::new(&tags).ok()?,
        our_ids,
        peer_ids,
        cookie_rx: Cookie::new(m.cookie_rx.get(..usize::from(m.cookie_rx_len))?).ok()?,
        cookie_tx: Cookie::new(m.cookie_tx.get(..usize::from(m.cookie_tx_len))?).ok()?,
        l2ss: m.flags & flags::L2SS != 0,
        sequencing: m.flags & flags::SEQ != 0,
        ppp: PppTx {
            acfc: m.flags & flags::ACFC != 0,
            pfc: m.flags & flags::PFC != 0,
        },
        ttl: m.ttl,
        dscp: m.dscp,
        udp_checksum_v4: m.flags & flags::UDP_CSUM4 != 0,
    })
}
