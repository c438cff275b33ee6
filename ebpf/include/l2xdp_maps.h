/* SPDX-License-Identifier: Apache-2.0 */
/*
 * l2xdp: every key and value the XDP programs and user space share. The Rust twins are in
 * ebpf/src/maps.rs (#[repr(C)], aya::Pod); a test compares their sizes and field offsets with
 * this object's BTF. Keep the two in step: change a struct here, change it there.
 *
 * Byte order: addresses, cookies and the header template are stored as they appear on the wire;
 * ports, ids and every other number in host order.
 */
#ifndef L2XDP_MAPS_H
#define L2XDP_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>

/* Stable indexes: wire::datapath::DropReason (append only). */
enum l2xdp_drop {
	L2XDP_DROP_TRUNCATED = 0,
	L2XDP_DROP_BAD_UDP_LENGTH = 1,
	L2XDP_DROP_BAD_UDP_CHECKSUM = 2,
	L2XDP_DROP_ZERO_UDP6_CHECKSUM = 3,
	L2XDP_DROP_UNSUPPORTED_VERSION = 4,
	L2XDP_DROP_MALFORMED_L2TP = 5,
	L2XDP_DROP_UNKNOWN_SESSION = 6,
	L2XDP_DROP_SPOOFED_SOURCE = 7,
	L2XDP_DROP_WRONG_DESTINATION = 8,
	L2XDP_DROP_WRONG_COOKIE = 9,
	L2XDP_DROP_SEQUENCE_OUT_OF_ORDER = 10,
	L2XDP_DROP_MALFORMED_PPP = 11,
	L2XDP_DROP_BAD_INNER = 12,
	L2XDP_DROP_UNBOUND_SOURCE = 13,
	L2XDP_DROP_COUNT = 14,
};

/* Stable indexes: wire::datapath::Why. */
enum l2xdp_why {
	L2XDP_WHY_L2TP_CONTROL = 0,
	L2XDP_WHY_PPP_CONTROL = 1,
	L2XDP_WHY_PPP_OTHER = 2,
	L2XDP_WHY_INNER_TTL_EXPIRED = 3,
	L2XDP_WHY_IPV6_LINK_LOCAL = 4,
	L2XDP_WHY_COUNT = 5,
};

/* Per-verdict counters (l2xdp_verdicts, PERCPU_ARRAY of __u64). */
enum l2xdp_verdict {
	L2XDP_V_PASS = 0,           /* not L2TP / not for a session: the kernel's */
	L2XDP_V_TO_CONTROL = 1,     /* XDP_PASS to l2xdpd (see also L2XDP_V_WHY_BASE + why) */
	L2XDP_V_DROP = 2,           /* see l2xdp_drops */
	L2XDP_V_DECAP = 3,          /* decapsulated and redirected to the core / circuit */
	L2XDP_V_ENCAP = 4,          /* encapsulated and redirected to the access side */
	L2XDP_V_CPU_REDIRECT = 5,   /* first pass: handed to another CPU (cpumap) */
	L2XDP_V_FIB_MISS = 6,       /* no route / neighbour: XDP_PASS of the untouched frame */
	L2XDP_V_ENCAP_REFUSED = 7,  /* too big for the MTU or the checksum loop: XDP_PASS */
	L2XDP_V_ERROR = 8,          /* a helper failed (adjust_head...): XDP_ABORTED */
	L2XDP_V_XSK_FALLBACK = 9,   /* AF_XDP hand-off impossible (driver without metadata or
				     * headroom): forwarded in XDP mode instead */
	L2XDP_V_WHY_BASE = 12,      /* 12..16: to-control-plane per l2xdp_why */
	/* Appended: the FIB misses of L2XDP_V_FIB_MISS by direction and enum l2xdp_fib_reason
	 * (decap_to_kernel, encap_fib_miss in l2xdp.bpf.c). */
	L2XDP_V_UP_FIB_BASE = 17,   /* 17..21 decap: the inner packet handed to the kernel stack */
	L2XDP_V_DOWN_FIB_BASE = 22, /* 22..26 encap: no_neigh marked for tc_l2tp_core (or dropped,
				     * L2XDP_V_DOWN_NO_TC), the others XDP_PASS untouched */
	L2XDP_V_NEIGH_REDIRECT = 27, /* tc_l2tp_core: a marked frame to bpf_redirect_neigh */
	L2XDP_V_DOWN_NO_TC = 28,    /* encap no_neigh dropped: no tc_l2tp_core on this interface */
	L2XDP_V_MARK_SPOOFED = 29,  /* dropped: a frame from the wire carrying the kernel mark */
	/* Appended: L2XDP_FIB_FWD_DISABLED by direction (forwarding off on the ingress interface:
	 * net.ipv4.conf.<if>.forwarding / net.ipv6.conf.<if>.forwarding 0). Not in the
	 * ..._FIB_BASE ranges, which are full; fib_verdict() picks the index. */
	L2XDP_V_UP_FWD_DISABLED = 30,
	L2XDP_V_DOWN_FWD_DISABLED = 31,
	L2XDP_V_GATEWAY_ECHO = 32,  /* an ICMP echo request to gateway4 answered (gateway_echo):
				     * also counted as L2XDP_V_ENCAP with the reply's bytes */
	L2XDP_V_SCCRQ_OVER_BUDGET = 33, /* dropped: a control message to tunnel 0 (an SCCRQ)
					 * beyond sccrq_budget in its second (sccrq_budget()) */
	L2XDP_V_COUNT = 34,
};

/* Why bpf_fib_lookup did not give a next hop (BPF_FIB_LKUP_RET_*, grouped). */
enum l2xdp_fib_reason {
	L2XDP_FIB_NO_NEIGH = 0,     /* NO_NEIGH: route found, neighbour not resolved */
	L2XDP_FIB_NOT_FWDED = 1,    /* NOT_FWDED: local destination */
	L2XDP_FIB_UNREACHABLE = 2,  /* BLACKHOLE, UNREACHABLE, PROHIBIT */
	L2XDP_FIB_FRAG_NEEDED = 3,  /* FRAG_NEEDED: larger than the route's MTU */
	L2XDP_FIB_OTHER = 4,        /* UNSUPP_LWT, anything newer */
	L2XDP_FIB_FWD_DISABLED = 5, /* FWD_DISABLED: forwarding off on the ingress interface
				     * (counted at L2XDP_V_{UP,DOWN}_FWD_DISABLED) */
	L2XDP_FIB_COUNT = 6,
};

/* Global settings (l2xdp_config, ARRAY of one). */
struct l2xdp_config {
	__u16 udp_port;               /* L2TP UDP port (1701) */
	__u8 verify_udp_checksum;     /* verify nonzero UDP checksums */
	__u8 accept_zero_udp6_checksum;
	__u32 seq_relearn_after;      /* RFC 4951 §3.2.3 'n' (0: never) */
	__u32 mtu;                    /* largest outer IP packet encap emits */
	__u32 cpumap_enabled;         /* access side: spread sessions over CPUs */
	__u32 cpumap_cpus;            /* entries 0..cpumap_cpus-1 of l2xdp_cpus are set */
	__u32 configured;             /* 0 until user space wrote the config: pass everything */
	__u32 afxdp;                  /* 1: AF_XDP mode, forwarded packets go to l2xdp_xsks */
	__u32 slot_mask;              /* max_entries of l2xdp_sessions - 1 (a power of two) */
	__u32 dst4_mask;              /* max_entries of l2xdp_dst4 - 1 (a power of two) */
	__u64 ac_bloom;               /* bit ifindex & 63 set for each attachment circuit: the
				       * core program looks l2xdp_ac up only where it is set */
	/* Appended. The kernel path's mark (encap_fib_miss, tc_l2tp_core): the destination MAC
	 * of an encapsulated frame XDP passes for tc_l2tp_core to send with bpf_redirect_neigh.
	 * Random per pin directory (getrandom(2), set by the loader; locally administered
	 * unicast: byte 0 has bit 1 set, bit 0 clear); all zero: no kernel path. */
	__u8 kernel_mark[6];
	__u16 pad_mark;
	/* Appended. The LNS's own PPP address (the IPCP local address, wire order; 0: none), set
	 * by l2xdpd at start-up: ICMP echo requests to it arriving in a v2 session are answered
	 * by the access program (gateway_echo in l2xdp.bpf.c). */
	__u32 gateway4;
	/* Appended in the padding (issue 15): control messages to tunnel / control connection 0
	 * (SCCRQs, RFC 2661 §5.1, RFC 3931 §3.3) the programs pass to l2xdpd per second, all
	 * sources together; beyond, dropped (L2XDP_V_SCCRQ_OVER_BUDGET). 0: no budget. */
	__u32 sccrq_budget;
	/* Appended (issue 14, v3 encap): max_entries of l2xdp_circuits - 1 (a power of two). */
	__u32 ac_mask;
	/* Explicit tail padding (the struct is 8-byte aligned for ac_bloom). */
	__u32 pad_tail;
};

/* The SCCRQ budget's current second (l2xdp_sccrq, ARRAY of one, shared by all CPUs). */
struct l2xdp_sccrq_window {
	__u32 second;                 /* bpf_ktime_get_ns() / 1e9, truncated */
	__u32 count;                  /* SCCRQs seen in it, all CPUs */
};

/* Session key: the ids that arrive in packets (ours). v2: id = tunnel << 16 | session. */
struct l2xdp_session_key {
	__u8 version;   /* 2 or 3 */
	__u8 pad[3];
	__u32 id;
};

enum l2xdp_session_flags {
	L2XDP_F_L2SS = 1,        /* v3 default L2-Specific Sublayer */
	L2XDP_F_SEQ = 2,         /* sequencing */
	L2XDP_F_UDP_CSUM4 = 4,   /* compute the UDP checksum over IPv4 */
	L2XDP_F_ACFC = 8,        /* v2 PPP: omit FF 03 */
	L2XDP_F_PFC = 16,        /* v2 PPP: one-byte protocol */
	L2XDP_F_SUB6_MORE = 32,  /* v2: IPv6 prefixes beyond bind8 are in l2xdp_sub6 */
	L2XDP_F_BIND64 = 64,     /* v2: bind8 holds the subscriber's /64 */
};

#define L2XDP_HDR_MAX 128

/*
 * The session table. One packet of a known session costs one lookup of a 64-byte slot (one
 * cache line): the slot holds what decapsulation checks and the session's counters; what is
 * shared by many sessions (the outer addresses and ports, the encap template) is in its
 * profile, of which there are few (one per tunnel and framing variant), so they stay cached.
 *
 * l2xdp_sessions is an ARRAY indexed by slot. A session's home slot is its id & slot_mask:
 * the LNS chooses the ids the peer puts in every data packet (RFC 2661 §3.1 Assigned
 * Session/Tunnel ID, RFC 3931 §5.4.4), and the control plane draws them at random among those
 * whose home slot is free, so the packet's id indexes the array directly. A session whose
 * home slot is taken (an operator-chosen static pseudowire, an id restored from before) lives
 * in another slot, found through l2xdp_slots (HASH, session key -> slot), looked up only when
 * the home slot holds another session.
 *
 * Encapsulation writes what is the session's own from the slot into the profile's template
 * (v2: the peer's session id; v3: the peer's session id and the transmit cookie), so the
 * sessions of a tunnel with the same framing share one profile, v3 as v2, and an encapsulated
 * packet reads one slot (RFC 3931 §4.1.1.1: Session ID and Cookie follow the fixed header).
 */
struct l2xdp_session {
	__u32 id;              /* the key's id; with version, what a packet is checked against */
	__u8 version;          /* 2 or 3; 0: the slot is free */
	__u8 flags;            /* l2xdp_session_flags */
	__u16 profile;         /* index in l2xdp_profiles */
	__u32 peer_id;         /* v2: peer tunnel << 16 | peer session; v3: peer session */
	__u32 bind4;           /* v2: the subscriber's IPv4 address (wire order), 0: none;
				* v3: the attachment circuit's ifindex */
	__u8 bind8[8];         /* v2: the first 64 bits of the subscriber's first IPv6 prefix
				* (with L2XDP_F_BIND64); v3: the receive cookie (the profile's
				* cookie_rx_len bytes) */
	__u8 cookie_tx[8];     /* v3: the transmit cookie (the profile's cookie_tx_len bytes);
				* v2: zero */
	__u64 rx_packets;      /* atomic adds: the packets of one session stay on one CPU per */
	__u64 rx_bytes;        /* direction (RSS on the outer/inner flow), so the line rarely */
	__u64 tx_packets;      /* moves between CPUs */
	__u64 tx_bytes;
};

_Static_assert(sizeof(struct l2xdp_session) == 64, "a session is one cache line");

/* What sessions share (l2xdp_profiles, ARRAY): the outer header and how to fill it. hdr is
 * the encap template built by user space with the reference encap (Ns 0, length fields for
 * an empty payload, the peer session id and v3's transmit cookie zero): the program copies
 * it, then writes the peer session id (v2: 2 bytes at sid_off; v3: 4 bytes at sid_off and
 * the cookie after them, from the slot), lengths, checksums, Ns, the PPP protocol and the
 * MACs from bpf_fib_lookup. Sessions with the same outer addresses and framing (v3: and
 * cookie lengths) share a profile. */
struct l2xdp_profile {
	__u8 version;          /* 2 or 3; 0: unused */
	__u8 transport;        /* 0 UDP, 1 IP (115) */
	__u8 family;           /* 4 or 6 */
	__u8 flags;            /* the session flags the template encodes */
	__u16 local_port;
	__u16 peer_port;
	__u8 local_addr[16];   /* IPv4 in the first 4 bytes, the rest zero */
	__u8 peer_addr[16];
	__u16 hdr_len;         /* template length: Ethernet to the inner packet */
	__u16 l3_off;          /* outer IP header */
	__u16 l4_off;          /* UDP header, or the L2TPv3-over-IP header */
	__u16 seq_off;         /* v2 Ns / v3 sublayer word; 0: none */
	__u16 ppp_off;         /* v2 PPP protocol field */
	__u16 sid_off;         /* peer session id: v2 2 bytes, v3 4 bytes and the transmit
				* cookie after them; 0: none */
	__u8 ttl;              /* kept for the read back (in the template) */
	__u8 dscp;
	__u8 cookie_tx_len;    /* v3: 0, 4, 8 (the cookie is the slot's cookie_tx) */
	__u8 vlan_count;
	__u8 cookie_rx_len;    /* v3: 0, 4, 8 (the cookie is the slot's bind8) */
	__u8 pad;
	__u8 local_mac[6];     /* kept for the read back; forwarding uses bpf_fib_lookup */
	__u8 next_hop_mac[6];
	__u16 vlan_tpid[2];
	__u16 vlan_tci[2];
	__u8 hdr[L2XDP_HDR_MAX];
};

/* Downstream IPv4 (l2xdp_dst4, ARRAY of buckets): destination address -> slot. The bucket is
 * ntohl(address) & dst4_mask (pools are contiguous ranges, so neighbours spread over buckets
 * without collisions); 8 entries of a bucket fill one cache line. A bucket whose entries are
 * all taken sends the lookup on to l2xdp_sub4 (HASH, address -> slot), where the rest are. */
#define L2XDP_DST4_WAYS 8
struct l2xdp_dst4_entry {
	__u32 addr;            /* wire order; 0: free */
	__u32 slot;
};

struct l2xdp_dst4_bucket {
	struct l2xdp_dst4_entry e[L2XDP_DST4_WAYS];
};

/* Attachment circuits (l2xdp_circuits, ARRAY): the ingress ifindex of a frame to encapsulate
 * -> the slot of its L2TPv3 session, at ifindex & ac_mask. A namespace numbers its interfaces
 * in sequence, so circuits spread over the entries without hashing, 8 to a cache line; a
 * circuit whose entry another holds is in l2xdp_ac (HASH, ifindex -> slot), looked up only
 * then. */
struct l2xdp_circuit {
	__u32 ifindex;         /* 0: free */
	__u32 slot;
};

/* Sequence state (l2xdp_seq, HASH by session key, sequenced sessions only): tx Ns and rx
 * RxSeq::check under the lock. */
struct l2xdp_seq {
	struct bpf_spin_lock lock;
	__u32 tx_next;
	__u32 rx_expected;
	__u32 rx_synced;
	__u32 rx_run;
	__u32 rx_run_next;
};

/* IPv6 subscriber prefix (l2xdp_sub6, LPM_TRIE). */
struct l2xdp_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * AF_XDP mode (l2xdp_config.afxdp = 1). The programs classify exactly as in XDP mode; where
 * XDP mode would rewrite and redirect a packet (a Forward verdict with a next hop), they put
 * this metadata with the untouched frame and redirect it into l2xdp_xsks at
 * l2xdp_xsk_base[ingress ifindex] + rx queue. Where the metadata goes is the programs'
 * constant l2xdp_xsk_handoff (.rodata, set by the loader from the kernel's features):
 * L2XDP_HANDOFF_META puts it in the metadata area just before the frame
 * (bpf_xdp_adjust_meta); L2XDP_HANDOFF_INLINE in front of the frame itself
 * (bpf_xdp_adjust_head: any kernel, any driver), so the socket receives meta + frame. The
 * user-space worker does the decapsulation/encapsulation with wire::datapath, the sequence
 * check (skipped here) and Ns.
 */
enum l2xdp_handoff {
	L2XDP_HANDOFF_META = 1,
	L2XDP_HANDOFF_INLINE = 2,
};

struct l2xdp_xsk_meta {
	__u32 egress_ifindex;  /* from bpf_fib_lookup, or the v3 attachment circuit */
	__u8 dmac[6];          /* next hop (bpf_fib_lookup); zero for a v3 attachment circuit */
	__u8 smac[6];
	struct l2xdp_session_key key;
	__u16 inner_off;       /* encap: the payload to encapsulate */
	__u16 inner_len;
	__u32 dir;             /* L2XDP_DIR_DECAP or L2XDP_DIR_ENCAP */
};

/* Twin: ebpf/src/maps.rs XskMeta (const assertions there; BTF does not carry this one). */
_Static_assert(sizeof(struct l2xdp_xsk_meta) == 32, "l2xdp_xsk_meta size");
_Static_assert(__builtin_offsetof(struct l2xdp_xsk_meta, key) == 16, "key");
_Static_assert(__builtin_offsetof(struct l2xdp_xsk_meta, inner_off) == 24, "inner_off");
_Static_assert(__builtin_offsetof(struct l2xdp_xsk_meta, dir) == 28, "dir");

enum l2xdp_dir {
	L2XDP_DIR_DECAP = 1,
	L2XDP_DIR_ENCAP = 2,
};

#define L2XDP_XSK_MAX 2048      /* l2xdp_xsks entries: 64 interfaces (l2xdp_xsk_base) x queues */
#define L2XDP_XSK_QUEUES 32     /* queues per interface in l2xdp_xsks */
#define L2XDP_XSK_DISABLED 0xffffffffu /* l2xdp_xsk_base value: the hand-off failed here (the
					* program set it); XDP mode until re-registered */

/* A session changed (l2xdp_changes, QUEUE, pushed by user space writers of the session maps
 * for AF_XDP workers in another process; on overflow l2xdp_resync[0] is set). */
struct l2xdp_change {
	struct l2xdp_session_key key;
	__u32 op;              /* L2XDP_OP_* */
};

/* l2xdp_xsk_stats (PERCPU_ARRAY of __u64, written by the AF_XDP process): the workers'
 * counters, each worker's at the slot of the core it is pinned to. 0..L2XDP_DROP_COUNT-1: drops per reason (those found by the workers:
 * sequence, a session changed under a packet), then these. */
enum l2xdp_xsk_stat {
	L2XDP_XS_DECAP = 14,      /* decapsulated and sent */
	L2XDP_XS_ENCAP = 15,      /* encapsulated and sent */
	L2XDP_XS_NO_EGRESS = 16,  /* egress interface without a worker socket */
	L2XDP_XS_TX_FULL = 17,    /* no free transmit frame */
	L2XDP_XS_OTHER = 18,      /* not forwarded for another reason (bad metadata...) */
	L2XDP_XS_COUNT = 19,
};

enum l2xdp_op {
	L2XDP_OP_UPSERT = 1,
	L2XDP_OP_REMOVE = 2,
	L2XDP_OP_RESET_SEQ = 3,
	L2XDP_OP_MARK = 4,     /* key.id: a token the workers acknowledge (AfXdp::settle) */
};

#endif
