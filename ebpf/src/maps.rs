//! `#[repr(C)]` twins of `include/l2xdp_maps.h` (the test `layouts_match_btf` compares their
//! sizes and field offsets with the compiled object's BTF) and the map names.

/// Map names in the object (also the pin file names under the pin directory).
pub mod name {
    /// [`super::Config`], ARRAY of one.
    pub const CONFIG: &str = "l2xdp_config";
    /// [`super::SccrqWindow`], ARRAY of one: the SCCRQ budget's second, all CPUs.
    pub const SCCRQ: &str = "l2xdp_sccrq";
    /// Slot → [`super::Session`], ARRAY (a power of two; home slot = id & mask).
    pub const SESSIONS: &str = "l2xdp_sessions";
    /// [`super::SessionKey`] → slot (u32) of a session not in its home slot, HASH.
    pub const SLOTS: &str = "l2xdp_slots";
    /// Index → [`super::Profile`], ARRAY: outer headers shared by sessions.
    pub const PROFILES: &str = "l2xdp_profiles";
    /// [`super::SessionKey`] → [`super::Seq`], HASH (value has a `bpf_spin_lock`).
    pub const SEQ: &str = "l2xdp_seq";
    /// Drop reason (`wire::datapath::DropReason` as u32) → u64, PERCPU_ARRAY.
    pub const DROPS: &str = "l2xdp_drops";
    /// [`super::verdict`] index → u64, PERCPU_ARRAY.
    pub const VERDICTS: &str = "l2xdp_verdicts";
    /// [`super::verdict`] index → bytes (DECAP, ENCAP), PERCPU_ARRAY.
    pub const VBYTES: &str = "l2xdp_vbytes";
    /// Bucket → [`super::Dst4Bucket`], ARRAY: downstream IPv4 address → slot.
    pub const DST4: &str = "l2xdp_dst4";
    /// IPv4 address (network order, as `[u8; 4]`) → slot, HASH: those of full buckets.
    pub const SUB4: &str = "l2xdp_sub4";
    /// [`super::Lpm6Key`] → slot, LPM_TRIE.
    pub const SUB6: &str = "l2xdp_sub6";
    /// Attachment circuit ifindex & `ac_mask` → [`super::Circuit`], ARRAY.
    pub const CIRCUITS: &str = "l2xdp_circuits";
    /// Attachment circuit ifindex → slot, HASH: circuits whose [`CIRCUITS`] entry is taken.
    pub const AC: &str = "l2xdp_ac";
    /// CPUMAP for spreading sessions over CPUs.
    pub const CPUS: &str = "l2xdp_cpus";
    /// AF_XDP mode: XSKMAP of the workers' sockets (`XSK_BASE[ifindex] + queue`).
    pub const XSKS: &str = "l2xdp_xsks";
    /// AF_XDP mode: ifindex → first index in [`XSKS`], HASH.
    pub const XSK_BASE: &str = "l2xdp_xsk_base";
    /// [`super::Change`] QUEUE: session changes for AF_XDP workers (written by user space).
    pub const CHANGES: &str = "l2xdp_changes";
    /// ARRAY of one u32: set when a change did not fit [`CHANGES`] (workers rescan).
    pub const RESYNC: &str = "l2xdp_resync";
    /// ARRAY of one u64: the session maps' writers' generation (user space only).
    pub const WRITERS: &str = "l2xdp_writers";
    /// [`super::xsk_stat`] index → u64, ARRAY: the AF_XDP workers' counters, merged.
    pub const XSK_STATS: &str = "l2xdp_xsk_stats";
    /// ifindex → 1, HASH: the interfaces where `tc_l2tp_core` is attached (the kernel path of
    /// encapsulation, see [`super::verdict::DOWN_FIB_BASE`]).
    pub const TC_IFACES: &str = "l2xdp_tc_ifaces";
    /// Every map.
    pub const ALL: [&str; 21] = [
        CONFIG, SESSIONS, SLOTS, PROFILES, SEQ, DROPS, VERDICTS, VBYTES, DST4, SUB4, SUB6,
        CIRCUITS, AC, CPUS, XSKS, XSK_BASE, CHANGES, RESYNC, WRITERS, XSK_STATS, TC_IFACES,
    ];
}

/// Indexes of the per-verdict counters (`enum l2xdp_verdict`).
pub mod verdict {
    /// Not L2TP or not for a session: the kernel's.
    pub const PASS: u32 = 0;
    /// XDP_PASS to the control plane (sum over [`WHY_BASE`]..).
    pub const TO_CONTROL: u32 = 1;
    /// Dropped (see the per-reason counters).
    pub const DROP: u32 = 2;
    /// Decapsulated and redirected.
    pub const DECAP: u32 = 3;
    /// Encapsulated and redirected.
    pub const ENCAP: u32 = 4;
    /// First pass: handed to another CPU.
    pub const CPU_REDIRECT: u32 = 5;
    /// `bpf_fib_lookup` gave no next hop (all reasons, both directions; per reason from
    /// [`UP_FIB_BASE`] and [`DOWN_FIB_BASE`]): the packet went to the kernel stack.
    pub const FIB_MISS: u32 = 6;
    /// Too big to encapsulate (MTU) or to checksum in the bounded loop: passed.
    pub const ENCAP_REFUSED: u32 = 7;
    /// A helper failed: aborted.
    pub const ERROR: u32 = 8;
    /// AF_XDP mode: the hand-off to the worker failed at run time (a driver without XDP
    /// metadata or headroom): forwarded in XDP mode instead.
    pub const XSK_FALLBACK: u32 = 9;
    /// `WHY_BASE + wire::datapath::Why as u32`: to-control-plane per reason.
    pub const WHY_BASE: u32 = 12;
    /// `UP_FIB_BASE + fib_reason::*`: decapsulation's FIB misses; the inner packet was handed
    /// to the kernel stack (which routes it, resolves the neighbour, answers ICMP).
    pub const UP_FIB_BASE: u32 = 17;
    /// `DOWN_FIB_BASE + fib_reason::*`: encapsulation's FIB misses. No neighbour: the frame,
    /// encapsulated and marked, went to `tc_l2tp_core` and `bpf_redirect_neigh` (or was
    /// dropped, [`DOWN_NO_TC`]); other reasons: passed untouched to the kernel stack.
    pub const DOWN_FIB_BASE: u32 = 22;
    /// `tc_l2tp_core` handed a marked frame to `bpf_redirect_neigh`.
    pub const NEIGH_REDIRECT: u32 = 27;
    /// Encapsulation without a neighbour on an interface without `tc_l2tp_core`: dropped.
    pub const DOWN_NO_TC: u32 = 28;
    /// A frame from the wire carrying the kernel-path mark: dropped.
    pub const MARK_SPOOFED: u32 = 29;
    /// Decapsulation's FIB misses for [`super::fib_reason::FWD_DISABLED`] (the inner packet
    /// handed to the kernel stack, which does not forward it either).
    pub const UP_FWD_DISABLED: u32 = 30;
    /// Encapsulation's FIB misses for [`super::fib_reason::FWD_DISABLED`] (passed untouched).
    pub const DOWN_FWD_DISABLED: u32 = 31;
    /// An ICMP echo request to the gateway address answered by the access program (the
    /// reply is also counted as [`ENCAP`]).
    pub const GATEWAY_ECHO: u32 = 32;
    /// A control message to tunnel 0 (an SCCRQ) beyond [`super::Config::sccrq_budget`] in
    /// its second: dropped before user space (issue 15).
    pub const SCCRQ_OVER_BUDGET: u32 = 33;
    /// Size of the array.
    pub const COUNT: u32 = 34;

    /// The counter of a FIB miss for `reason` (`fib_reason::*`) upstream (decapsulation) or
    /// downstream (encapsulation): `fib_verdict` in l2xdp.bpf.c.
    pub const fn fib(up: bool, reason: u32) -> u32 {
        match (reason == super::fib_reason::FWD_DISABLED, up) {
            (true, true) => UP_FWD_DISABLED,
            (true, false) => DOWN_FWD_DISABLED,
            (false, true) => UP_FIB_BASE + reason,
            (false, false) => DOWN_FIB_BASE + reason,
        }
    }
}

/// `enum l2xdp_fib_reason`: why `bpf_fib_lookup` gave no next hop.
pub mod fib_reason {
    /// NO_NEIGH: a route, but no (valid) neighbour entry for its next hop.
    pub const NO_NEIGH: u32 = 0;
    /// NOT_FWDED: a local destination.
    pub const NOT_FWDED: u32 = 1;
    /// BLACKHOLE, UNREACHABLE, PROHIBIT.
    pub const UNREACHABLE: u32 = 2;
    /// FRAG_NEEDED: larger than the route's MTU.
    pub const FRAG_NEEDED: u32 = 3;
    /// UNSUPP_LWT, and anything newer.
    pub const OTHER: u32 = 4;
    /// FWD_DISABLED: forwarding is off on the ingress interface
    /// (`net.ipv4.conf.<if>.forwarding`, `net.ipv6.conf.<if>.forwarding`).
    pub const FWD_DISABLED: u32 = 5;
    /// Number of reasons.
    pub const COUNT: u32 = 6;
    /// Names, by index (operator output, metrics labels).
    pub const NAMES: [&str; 6] = [
        "no_neigh",
        "not_fwded",
        "unreachable",
        "frag_needed",
        "other",
        "fwd_disabled",
    ];
}

/// Session flags (`enum l2xdp_session_flags`).
pub mod flags {
    /// v3 default L2-Specific Sublayer.
    pub const L2SS: u8 = 1;
    /// Sequencing.
    pub const SEQ: u8 = 2;
    /// UDP checksum over IPv4.
    pub const UDP_CSUM4: u8 = 4;
    /// v2 PPP ACFC.
    pub const ACFC: u8 = 8;
    /// v2 PPP PFC.
    pub const PFC: u8 = 16;
    /// v2: IPv6 prefixes beyond the slot's `bind8` are in `l2xdp_sub6`.
    pub const SUB6_MORE: u8 = 32;
    /// v2: the slot's `bind8` holds the subscriber's /64.
    pub const BIND64: u8 = 64;
}

/// Entries per [`Dst4Bucket`].
pub const DST4_WAYS: usize = 8;

/// Size of the encap template.
pub const HDR_MAX: usize = 128;

/// `struct l2xdp_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    pub udp_port: u16,
    pub verify_udp_checksum: u8,
    pub accept_zero_udp6_checksum: u8,
    pub seq_relearn_after: u32,
    pub mtu: u32,
    pub cpumap_enabled: u32,
    pub cpumap_cpus: u32,
    pub configured: u32,
    pub afxdp: u32,
    pub slot_mask: u32,
    pub dst4_mask: u32,
    pub ac_bloom: u64,
    /// The kernel path's mark (random, locally administered unicast; zero: none).
    pub kernel_mark: [u8; 6],
    pub pad_mark: u16,
    /// The LNS's own PPP address (IPCP local address, wire order; 0: none): ICMP echo
    /// requests to it are answered by the access program.
    pub gateway4: u32,
    /// SCCRQs (control messages to tunnel 0) passed to the control plane per second, all
    /// sources together; beyond, dropped ([`verdict::SCCRQ_OVER_BUDGET`]). 0: no budget.
    pub sccrq_budget: u32,
    /// `max_entries` of [`name::CIRCUITS`] - 1.
    pub ac_mask: u32,
    /// Explicit tail padding.
    pub pad_tail: u32,
}

/// `struct l2xdp_sccrq_window`: the SCCRQ budget's current second ([`name::SCCRQ`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SccrqWindow {
    pub second: u32,
    pub count: u32,
}

/// `struct l2xdp_circuit`: an entry of [`name::CIRCUITS`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Circuit {
    /// 0: free.
    pub ifindex: u32,
    pub slot: u32,
}

/// `struct l2xdp_session_key`: v2 `id` = tunnel << 16 | session; v3 `id` = session.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub version: u8,
    pub pad: [u8; 3],
    pub id: u32,
}

/// `struct l2xdp_session`: a slot of [`name::SESSIONS`] (one cache line).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session {
    pub id: u32,
    /// 2 or 3; 0: the slot is free.
    pub version: u8,
    pub flags: u8,
    pub profile: u16,
    pub peer_id: u32,
    /// v2: the subscriber's IPv4 address (wire order); v3: the attachment circuit ifindex.
    pub bind4: u32,
    /// v2: the first 64 bits of the first IPv6 prefix ([`flags::BIND64`]); v3: the receive
    /// cookie (the profile's `cookie_rx_len` bytes).
    pub bind8: [u8; 8],
    /// v3: the transmit cookie (the profile's `cookie_tx_len` bytes), written into every
    /// encapsulated packet after the peer's session id; v2: zero.
    pub cookie_tx: [u8; 8],
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// `struct l2xdp_profile`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    pub version: u8,
    pub transport: u8,
    pub family: u8,
    pub flags: u8,
    pub local_port: u16,
    pub peer_port: u16,
    pub local_addr: [u8; 16],
    pub peer_addr: [u8; 16],
    pub hdr_len: u16,
    pub l3_off: u16,
    pub l4_off: u16,
    pub seq_off: u16,
    pub ppp_off: u16,
    pub sid_off: u16,
    pub ttl: u8,
    pub dscp: u8,
    /// v3: the transmit cookie's length (the cookie is in the slot).
    pub cookie_tx_len: u8,
    pub vlan_count: u8,
    /// v3: the receive cookie's length (the cookie is the slot's `bind8`).
    pub cookie_rx_len: u8,
    pub pad: u8,
    pub local_mac: [u8; 6],
    pub next_hop_mac: [u8; 6],
    pub vlan_tpid: [u16; 2],
    pub vlan_tci: [u16; 2],
    pub hdr: [u8; HDR_MAX],
}

impl Profile {
    /// All zero.
    pub fn zeroed() -> Self {
        Profile {
            version: 0,
            transport: 0,
            family: 0,
            flags: 0,
            local_port: 0,
            peer_port: 0,
            local_addr: [0; 16],
            peer_addr: [0; 16],
            hdr_len: 0,
            l3_off: 0,
            l4_off: 0,
            seq_off: 0,
            ppp_off: 0,
            sid_off: 0,
            ttl: 0,
            dscp: 0,
            cookie_tx_len: 0,
            vlan_count: 0,
            cookie_rx_len: 0,
            pad: 0,
            local_mac: [0; 6],
            next_hop_mac: [0; 6],
            vlan_tpid: [0; 2],
            vlan_tci: [0; 2],
            hdr: [0; HDR_MAX],
        }
    }
}

/// `struct l2xdp_dst4_entry`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dst4Entry {
    /// Wire order; 0: free.
    pub addr: u32,
    pub slot: u32,
}

/// `struct l2xdp_dst4_bucket`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dst4Bucket {
    pub e: [Dst4Entry; DST4_WAYS],
}

/// `struct l2xdp_seq` (`lock` is the `struct bpf_spin_lock`, never touched by user space).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seq {
    pub lock: u32,
    pub tx_next: u32,
    pub rx_expected: u32,
    pub rx_synced: u32,
    pub rx_run: u32,
    pub rx_run_next: u32,
}

/// `max_entries` of [`name::XSKS`]: [`XSK_QUEUES`] for each of the 64 interfaces
/// [`name::XSK_BASE`] holds (access and core sides, attachment circuits).
pub const XSK_MAX: u32 = 2048;
/// Queues per interface in [`name::XSKS`].
pub const XSK_QUEUES: u32 = 32;
/// A [`name::XSK_BASE`] value the programs set when the hand-off failed on that interface (a
/// driver without XDP metadata or headroom): XDP mode there until the runtime registers it
/// again.
pub const XSK_DISABLED: u32 = u32::MAX;

/// `enum l2xdp_dir`.
pub mod dir {
    /// Decapsulate (access side).
    pub const DECAP: u32 = 1;
    /// Encapsulate (core side, attachment circuits).
    pub const ENCAP: u32 = 2;
}

/// Indexes of [`name::XSK_STATS`] (`enum l2xdp_xsk_stat`); below [`xsk_stat::DECAP`]: drops
/// per `wire::datapath::DropReason`.
pub mod xsk_stat {
    /// Decapsulated and sent.
    pub const DECAP: u32 = 14;
    /// Encapsulated and sent.
    pub const ENCAP: u32 = 15;
    /// Egress interface without a worker socket.
    pub const NO_EGRESS: u32 = 16;
    /// No free transmit frame.
    pub const TX_FULL: u32 = 17;
    /// Not forwarded for another reason.
    pub const OTHER: u32 = 18;
    /// Size of the array.
    pub const COUNT: u32 = 19;
}

/// `enum l2xdp_op`.
pub mod op {
    /// The session was installed or replaced.
    pub const UPSERT: u32 = 1;
    /// The session was removed.
    pub const REMOVE: u32 = 2;
    /// RFC 4951 §3.2.3 data channel reset.
    pub const RESET_SEQ: u32 = 3;
    /// `key.id` is a token: the workers acknowledge it once every earlier change is applied.
    pub const MARK: u32 = 4;
}

/// `struct l2xdp_xsk_meta`: what the programs put before a frame they hand to AF_XDP.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskMeta {
    pub egress_ifindex: u32,
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    pub key: SessionKey,
    pub inner_off: u16,
    pub inner_len: u16,
    pub dir: u32,
}

// Not in the object's BTF (only a local of the programs): its C twin has a _Static_assert on
// the same size and offsets.
const _: () = {
    assert!(core::mem::size_of::<XskMeta>() == 32);
    assert!(core::mem::offset_of!(XskMeta, key) == 16);
    assert!(core::mem::offset_of!(XskMeta, inner_off) == 24);
    assert!(core::mem::offset_of!(XskMeta, dir) == 28);
};

/// `struct l2xdp_change`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    pub key: SessionKey,
    pub op: u32,
}

/// A session's counters (read from its [`Session`] slot).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// `struct l2xdp_lpm6_key` (aya's `lpm_trie::Key<[u8; 16]>` has the same layout).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lpm6Key {
    pub prefixlen: u32,
    pub addr: [u8; 16],
}

// SAFETY: plain `#[repr(C)]` integers and byte arrays, no padding the kernel could leak into
// (every gap is an explicit field), valid for every bit pattern.
unsafe impl aya::Pod for Config {}
// SAFETY: as above.
unsafe impl aya::Pod for SessionKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Session {}
// SAFETY: as above.
unsafe impl aya::Pod for Seq {}
// SAFETY: as above.
unsafe impl aya::Pod for Profile {}
// SAFETY: as above.
unsafe impl aya::Pod for Dst4Entry {}
// SAFETY: as above.
unsafe impl aya::Pod for Circuit {}
// SAFETY: as above.
unsafe impl aya::Pod for Dst4Bucket {}
// SAFETY: as above.
unsafe impl aya::Pod for Lpm6Key {}
// SAFETY: as above.
unsafe impl aya::Pod for XskMeta {}
// SAFETY: as above.
unsafe impl aya::Pod for Change {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::Btf;
    use core::mem::{offset_of, size_of};

    /// (C name, Rust size, [(field, Rust offset)]).
    type Layout = (&'static str, usize, Vec<(&'static str, usize)>);

    macro_rules! layout {
        ($c:literal, $t:ty, [$($f:ident),* $(,)?]) => {
            ($c, size_of::<$t>(), vec![$((stringify!($f), offset_of!($t, $f))),*])
        };
    }

    #[test]
    fn layouts_match_btf() {
        let btf = Btf::from_elf(crate::L2XDP_OBJ).expect("the object has BTF");
        let layouts: Vec<Layout> = vec![
            layout!(
                "l2xdp_config",
                Config,
                [
                    udp_port,
                    verify_udp_checksum,
                    accept_zero_udp6_checksum,
                    seq_relearn_after,
                    mtu,
                    cpumap_enabled,
                    cpumap_cpus,
                    configured,
                    afxdp,
                    slot_mask,
                    dst4_mask,
                    ac_bloom,
                    kernel_mark,
                    pad_mark,
                    gateway4,
                    sccrq_budget,
                    ac_mask,
                    pad_tail
                ]
            ),
            layout!("l2xdp_session_key", SessionKey, [version, pad, id]),
            layout!("l2xdp_sccrq_window", SccrqWindow, [second, count]),
            layout!(
                "l2xdp_session",
                Session,
                [
                    id, version, flags, profile, peer_id, bind4, bind8, cookie_tx, rx_packets,
                    rx_bytes, tx_packets, tx_bytes
                ]
            ),
            layout!(
                "l2xdp_profile",
                Profile,
                [
                    version,
                    transport,
                    family,
                    flags,
                    local_port,
                    peer_port,
                    local_addr,
                    peer_addr,
                    hdr_len,
                    l3_off,
                    l4_off,
                    seq_off,
                    ppp_off,
                    sid_off,
                    ttl,
                    dscp,
                    cookie_tx_len,
                    vlan_count,
                    cookie_rx_len,
                    pad,
                    local_mac,
                    next_hop_mac,
                    vlan_tpid,
                    vlan_tci,
                    hdr
                ]
            ),
            layout!("l2xdp_dst4_entry", Dst4Entry, [addr, slot]),
            layout!("l2xdp_circuit", Circuit, [ifindex, slot]),
            layout!("l2xdp_dst4_bucket", Dst4Bucket, [e]),
            layout!(
                "l2xdp_seq",
                Seq,
                [lock, tx_next, rx_expected, rx_synced, rx_run, rx_run_next]
            ),
            layout!("l2xdp_lpm6_key", Lpm6Key, [prefixlen, addr]),
            layout!("l2xdp_change", Change, [key, op]),
        ];
        for (cname, size, fields) in layouts {
            let st = btf
                .struct_by_name(cname)
                .unwrap_or_else(|| panic!("struct {cname} not in the object's BTF"));
            assert_eq!(st.size, size, "size of {cname}");
            let c_fields: Vec<&str> = st.members.iter().map(|m| m.name.as_str()).collect();
            let r_fields: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
            assert_eq!(c_fields, r_fields, "fields of {cname}");
            for (f, off) in fields {
                let m = st.members.iter().find(|m| m.name == f).expect("member");
                assert_eq!(m.bit_offset, off * 8, "offset of {cname}.{f}");
            }
        }
    }
}
