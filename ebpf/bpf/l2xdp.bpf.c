// SPDX-License-Identifier: Apache-2.0
/*
 * l2xdp fast path: L2TPv2/v3 decapsulation (access side) and encapsulation (core side).
 *
 * The contract is wire/src/datapath.rs (the reference): the same order of checks, the same
 * verdicts, the same drop reasons (indexes of l2xdp_drops = wire::datapath::DropReason), and
 * byte-identical frames (decap + emit_inner_ethernet for v2, the inner Ethernet frame for v3,
 * encap downstream). Step numbers below are the reference's.
 *
 * Verdicts: Forward → XDP_REDIRECT (bpf_redirect to the bpf_fib_lookup egress, or the v3
 * attachment circuit); ToControlPlane and Pass → XDP_PASS (the kernel socket of l2xdpd gets
 * control traffic); Drop → XDP_DROP, counted per reason.
 *
 * CPU spreading (optional, l2xdp_config.cpumap_enabled): the first pass (xdp_l2tp_access, on
 * the NIC's receive CPU) parses until the session key is known, hashes (tunnel, session) and
 * redirects the untouched frame into l2xdp_cpus; the entry's program (xdp_l2tp_access_cpu, the
 * second pass) runs the same code on the chosen CPU from the start with spreading off, so the
 * sequence check of one session always runs on one CPU. Drops before the key is known are
 * counted by the first pass, everything after by the second; each packet is counted once.
 *
 * Per packet of a known session (include/l2xdp_maps.h): decap reads the session's 64-byte slot
 * at id & slot_mask (the ids are ours, drawn so their home slot is free: no hash), which holds
 * what the checks need, the subscriber's bound address and the counters (atomic adds), and the
 * profile it shares with its tunnel (cached); encap over IPv4 reads one bucket of
 * l2xdp_dst4 (8 addresses in a cache line), the slot and the profile's template. No insert,
 * no per-CPU hash, no lookup a packet's version does not need (l2xdp_ac only on interfaces in
 * the config's ac_bloom). A FIB miss goes to the kernel (decap_to_kernel, encap_fib_miss).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "l2xdp_maps.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_L2TP_ 115
/* The largest packet offset (a mask: an XDP frame without fragments fits in a page). */
#define PKT_MAX 0x3fff
#define CSUM_MAX_CHUNKS 128 /* 64-byte chunks: UDP datagrams up to 8 KiB */

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2xdp_config);
} l2xdp_config SEC(".maps");

/* Sizes here are placeholders: the loader sets them from the configured session count
 * (dataplane/src/loader.rs). l2xdp_sessions and l2xdp_dst4 must be powers of two. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_MMAPABLE); /* user space scans it in place */
	__type(key, __u32); /* slot */
	__type(value, struct l2xdp_session);
} l2xdp_sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct l2xdp_session_key);
	__type(value, __u32); /* slot of a session not in its home slot */
} l2xdp_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct l2xdp_profile);
} l2xdp_profiles SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct l2xdp_session_key);
	__type(value, struct l2xdp_seq);
} l2xdp_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2XDP_DROP_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} l2xdp_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2XDP_V_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} l2xdp_verdicts SEC(".maps");

/* Bytes of the packets counted in l2xdp_verdicts, for DECAP and ENCAP (per-CPU totals). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2XDP_V_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} l2xdp_vbytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct l2xdp_dst4_bucket);
} l2xdp_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* IPv4 address, network order: those of full l2xdp_dst4 buckets */
	__type(value, __u32); /* slot */
} l2xdp_sub4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct l2xdp_lpm6_key);
	__type(value, __u32); /* slot */
} l2xdp_sub6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32); /* attachment circuit ifindex & ac_mask */
	__type(value, struct l2xdp_circuit);
} l2xdp_circuits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* attachment circuit ifindex: those whose l2xdp_circuits entry is taken */
	__type(value, __u32); /* slot */
} l2xdp_ac SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} l2xdp_cpus SEC(".maps");

/* AF_XDP mode: the workers' sockets, l2xdp_xsk_base[ifindex] + queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, L2XDP_XSK_MAX);
	__type(key, __u32);
	__type(value, __u32);
} l2xdp_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* first l2xdp_xsks index of its queues */
} l2xdp_xsk_base SEC(".maps");

/* Session changes for AF_XDP workers in another process (written by user space only). */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 65536);
	__type(value, struct l2xdp_change);
} l2xdp_changes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} l2xdp_resync SEC(".maps");

/* The writers' generation (user space only): a writer of the session maps holds the pin
 * directory's flock while it writes and bumps this; one that sees it moved since its own last
 * write re-reads the maps first (dataplane/src/xdp.rs). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} l2xdp_writers SEC(".maps");

/* The AF_XDP workers' counters, per CPU: a worker's at the slot of its core (written by user
 * space only). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L2XDP_XS_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} l2xdp_xsk_stats SEC(".maps");

/* The interfaces where tc_l2tp_core is attached (ifindex → 1, written by the loader): there
 * encap_fib_miss marks a frame whose next hop has no neighbour entry for it; elsewhere it drops
 * it (L2XDP_V_DOWN_NO_TC). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} l2xdp_tc_ifaces SEC(".maps");

/* The SCCRQ budget's window (sccrq_budget() below). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l2xdp_sccrq_window);
} l2xdp_sccrq SEC(".maps");

/* ------------------------------------------------------------------------------------------ */
/* Counting and verdicts. */

static __always_inline void count(void *map, __u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(map, &idx);

	if (c)
		*c += 1;
}

static __always_inline int v_pass(void)
{
	count(&l2xdp_verdicts, L2XDP_V_PASS);
	return XDP_PASS;
}

static __always_inline int v_drop(__u32 reason)
{
	count(&l2xdp_drops, reason);
	count(&l2xdp_verdicts, L2XDP_V_DROP);
	return XDP_DROP;
}

static __always_inline int v_to_cp(__u32 why)
{
	count(&l2xdp_verdicts, L2XDP_V_TO_CONTROL);
	count(&l2xdp_verdicts, L2XDP_V_WHY_BASE + why);
	return XDP_PASS;
}

static __always_inline int v_other(__u32 v, int action)
{
	count(&l2xdp_verdicts, v);
	return action;
}

/* Issue 15: a flood of SCCRQs from spoofed sources is cut here, before user space. A
 * control message to tunnel (control connection) 0 is an SCCRQ (RFC 2661 §5.1, RFC 3931
 * §3.3: the only message sent before the peer named its ID); at most cfg->sccrq_budget of
 * them per second, all CPUs and sources together, go to l2xdpd, which limits per source
 * itself. A fixed one-second window: the first SCCRQ of a new second resets the count (two
 * CPUs that reset together let a few more through, never fewer). Only what 5.10 has:
 * bpf_ktime_get_ns and an atomic add whose result is not used (BPF_XADD; fetching atomics
 * are 5.12). Returns 1 when over budget. */
static __always_inline int sccrq_over_budget(struct l2xdp_config *cfg)
{
	__u32 zero = 0, budget = cfg->sccrq_budget, second;
	struct l2xdp_sccrq_window *w;

	if (!budget)
		return 0;
	w = bpf_map_lookup_elem(&l2xdp_sccrq, &zero);
	if (!w)
		return 0;
	second = (__u32)(bpf_ktime_get_ns() / 1000000000ULL);
	if (w->second != second) {
		w->second = second;
		w->count = 0;
	}
	__sync_fetch_and_add(&w->count, 1);
	return w->count > budget;
}

/* ------------------------------------------------------------------------------------------ */
/* Packet access. Offsets are relative to ctx->data and bounded so the verifier accepts them. */

static __always_inline __u8 *at(struct xdp_md *ctx, __u32 off, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p;

	if (off > PKT_MAX)
		return 0;
	/* The mask bounds the register that is added, whatever clang spilled and reloaded after
	 * the check (5.10–6.1 verifiers do not carry a bound learnt on one register to its
	 * spilled copy). */
	asm volatile("" : "+r"(off));
	off &= PKT_MAX;
	p = data + off;
	/* Opaque to clang: the pointer checked below is the one used (the verifier tracks the
	 * range on that register, not on a recomputed data + off). */
	asm volatile("" : "+r"(p));
	if ((void *)(p + len) > end)
		return 0;
	return p;
}

static __always_inline __u32 pkt_len(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	__u32 len = (__u32)(end - data);

	/* computed here: clang must not keep a packet pointer in a 32-bit spill for later */
	asm volatile("" : "+r"(len));
	return len;
}

static __always_inline __u16 be16(const __u8 *p)
{
	return (__u16)p[0] << 8 | p[1];
}

static __always_inline __u32 be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/*
 * The ones-complement sum of the bytes [off, off+len), in memory order (the sum of
 * little-endian words: folded and complemented it is the checksum field as stored); an odd last
 * byte is padded with zero on the right (RFC 1071 §4.1). Returns the folded 16-bit sum, or -1
 * when the range leaves the packet or exceeds the bounded loop. A global function: the verifier
 * checks it once, not at every call site.
 */
__noinline int l2xdp_csum(struct xdp_md *ctx, __u32 off, __u32 len)
{
	__u64 sum = 0;
	__u8 *p;
	int i;

	if (!ctx)
		return -1;
	for (i = 0; i < CSUM_MAX_CHUNKS; i++) {
		if (len < 64)
			break;
		p = at(ctx, off, 64);
		if (!p)
			return -1;
		sum += (__u32)bpf_csum_diff(0, 0, (void *)p, 64, 0);
		off += 64;
		len -= 64;
	}
	if (len >= 64)
		return -1;
	for (i = 0; i < 16; i++) {
		if (len < 4)
			break;
		p = at(ctx, off, 4);
		if (!p)
			return -1;
		sum += *(__u32 *)p;
		off += 4;
		len -= 4;
	}
	if (len >= 2) {
		p = at(ctx, off, 2);
		if (!p)
			return -1;
		sum += *(__u16 *)p;
		off += 2;
		len -= 2;
	}
	if (len == 1) {
		p = at(ctx, off, 1);
		if (!p)
			return -1;
		sum += *p;
	}
	return fold(sum);
}

static __always_inline int csum_range(struct xdp_md *ctx, __u32 off, __u32 len, __u64 *acc)
{
	int r = l2xdp_csum(ctx, off, len);

	if (r < 0)
		return -1;
	*acc += (__u32)r;
	return 0;
}

/* The UDP pseudo-header (RFC 768; RFC 8200 §8.1) in memory order. */
static __always_inline __u64 pseudo_udp(__u8 family, const __u8 *src, const __u8 *dst, __u32 ulen)
{
	__u64 sum = bpf_htons(IPPROTO_UDP) + bpf_htons((__u16)ulen);
	const __u32 *s = (const __u32 *)src, *d = (const __u32 *)dst;

	sum += (__u64)s[0] + d[0];
	if (family == 6)
		sum += (__u64)s[1] + s[2] + s[3] + d[1] + d[2] + d[3];
	return sum;
}

/* ------------------------------------------------------------------------------------------ */
/* Decapsulation (access side). */

struct outer {
	__u8 src[16];
	__u8 dst[16];
	__u8 family;
	__u8 udp;
	__u16 sport;
	__u16 dport;
	__u8 xsk;  /* AF_XDP mode with a worker socket on this queue: hand over */
};

static __always_inline int addr_eq(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* 7. Spoof check against the session's profile: 0 or a drop reason + 1. */
static __always_inline int spoof_check(const struct l2xdp_profile *p, const struct outer *o)
{
	int ports = p->transport == 0 && o->udp;

	if (p->family != o->family || !addr_eq(p->peer_addr, o->src) ||
	    (ports && o->sport != p->peer_port))
		return L2XDP_DROP_SPOOFED_SOURCE + 1;
	if (!addr_eq(p->local_addr, o->dst) || (ports && o->dport != p->local_port))
		return L2XDP_DROP_WRONG_DESTINATION + 1;
	return 0;
}

/* The slot of a session: its home slot (id & slot_mask, the one lookup a packet of a session
 * costs), or, when that holds another session, the slot l2xdp_slots names. */
static __always_inline struct l2xdp_session *session_at(__u32 slot)
{
	return bpf_map_lookup_elem(&l2xdp_sessions, &slot);
}

static __always_inline struct l2xdp_session *session_of(struct l2xdp_config *cfg, __u8 version,
							__u32 id, __u32 *at_slot)
{
	struct l2xdp_session_key key = { .version = version, .id = id };
	__u32 home = id & cfg->slot_mask;
	struct l2xdp_session *s = session_at(home);
	__u32 *slot;

	*at_slot = home;
	if (s && s->id == id && s->version == version)
		return s;
	slot = bpf_map_lookup_elem(&l2xdp_slots, &key);
	if (!slot)
		return 0;
	*at_slot = *slot;
	s = session_at(*slot);
	if (s && s->id == id && s->version == version)
		return s;
	return 0;
}

static __always_inline struct l2xdp_profile *profile_of(const struct l2xdp_session *s)
{
	__u32 i = s->profile;

	return bpf_map_lookup_elem(&l2xdp_profiles, &i);
}

/* 9. RxSeq::check of the reference, under the session's lock. No state: accepted. */
static __always_inline int seq_check(struct l2xdp_session_key *key, __u32 seq, __u32 mask,
				     __u32 relearn)
{
	struct l2xdp_seq *st = bpf_map_lookup_elem(&l2xdp_seq, key);
	__u32 half = (mask >> 1) + 1, s = seq & mask, d;
	int ok = 0;

	if (!st)
		return 1;
	bpf_spin_lock(&st->lock);
	d = (s - st->rx_expected) & mask;
	if (!st->rx_synced || d < half) {
		st->rx_expected = (s + 1) & mask;
		st->rx_synced = 1;
		st->rx_run = 0;
		ok = 1;
	} else {
		if (st->rx_run > 0 && s == st->rx_run_next) {
			if (st->rx_run != 0xffffffff)
				st->rx_run += 1;
		} else {
			st->rx_run = 1;
		}
		st->rx_run_next = (s + 1) & mask;
		if (relearn > 0 && st->rx_run >= relearn) {
			st->rx_expected = st->rx_run_next;
			st->rx_run = 0;
			ok = 1;
		}
	}
	bpf_spin_unlock(&st->lock);
	return ok;
}

/* The session's counters, in its slot: atomic adds without fetch (BPF_XADD, any kernel). */
static __always_inline void count_rx(struct l2xdp_session *s, __u32 bytes)
{
	__sync_fetch_and_add(&s->rx_packets, 1);
	__sync_fetch_and_add(&s->rx_bytes, bytes);
}

static __always_inline void count_tx(struct l2xdp_session *s, __u32 bytes)
{
	__sync_fetch_and_add(&s->tx_packets, 1);
	__sync_fetch_and_add(&s->tx_bytes, bytes);
}

/* A forwarded packet's verdict and its bytes (per CPU). */
static __always_inline void count_fwd(__u32 verdict, __u32 bytes)
{
	__u64 *b = bpf_map_lookup_elem(&l2xdp_vbytes, &verdict);

	count(&l2xdp_verdicts, verdict);
	if (b)
		*b += bytes;
}

/* AF_XDP mode: whether a worker's socket is registered for this interface and queue. When
 * none is (the AF_XDP process stopped or died: closing a socket removes its entry), the
 * programs forward in XDP mode. */
static __always_inline int xsk_ready(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex, q = ctx->rx_queue_index, k;
	__u32 *base = bpf_map_lookup_elem(&l2xdp_xsk_base, &ifindex);

	if (!base || *base >= L2XDP_XSK_MAX || q >= L2XDP_XSK_QUEUES)
		return 0;
	k = *base + q;
	return bpf_map_lookup_elem(&l2xdp_xsks, &k) != 0;
}

/*
 * How AF_XDP frames carry their metadata (enum l2xdp_handoff), frozen in .rodata by the loader
 * (aya's set_global) before the programs are verified: the verifier knows the value, so on a
 * kernel that refuses bpf_xdp_adjust_meta to XDP programs the loader picks
 * L2XDP_HANDOFF_INLINE and the call is never reached — never verified, and removed as dead
 * code. One program per role serves both kinds of kernel, and XDP mode never depends on it.
 */
const volatile __u32 l2xdp_xsk_handoff = L2XDP_HANDOFF_META;

/* AF_XDP mode: the untouched frame with its metadata to the worker's socket. -1 when the
 * frame cannot be handed over (no socket registered for this interface and queue, or a driver
 * without metadata support or headroom): the caller forwards in XDP mode, counted as
 * L2XDP_V_XSK_FALLBACK — never XDP_ABORTED. */
static __always_inline int to_xsk(struct xdp_md *ctx, struct l2xdp_xsk_meta *m, __u32 verdict,
				  __u32 bytes)
{
	__u32 ifindex = ctx->ingress_ifindex, q = ctx->rx_queue_index;
	__u32 *base = bpf_map_lookup_elem(&l2xdp_xsk_base, &ifindex);
	void *data, *dst;

	if (!base || q >= L2XDP_XSK_QUEUES)
		return -1;
	if (l2xdp_xsk_handoff == L2XDP_HANDOFF_META) {
		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)))
			goto fallback;
		data = (void *)(long)ctx->data;
		dst = (void *)(long)ctx->data_meta;
		if (dst + sizeof(*m) > data)
			goto fallback;
	} else {
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*m)))
			goto fallback;
		dst = at(ctx, 0, sizeof(*m));
		if (!dst) {
			/* Give the headroom back: the frame must be as it was for XDP mode. */
			if (bpf_xdp_adjust_head(ctx, (int)sizeof(*m)))
				return v_other(L2XDP_V_ERROR, XDP_ABORTED);
			goto fallback;
		}
	}
	__builtin_memcpy(dst, m, sizeof(*m));
	count_fwd(verdict, bytes);
	return bpf_redirect_map(&l2xdp_xsks, *base + q, XDP_PASS);
fallback:
	/* The driver cannot carry the hand-off: this interface forwards in XDP mode from now on
	 * (with the sequence check the hand-off skips) until the AF_XDP runtime registers it
	 * again; the runtime reports the disabled interface. */
	*base = L2XDP_XSK_DISABLED;
	count(&l2xdp_verdicts, L2XDP_V_XSK_FALLBACK);
	return -1;
}

/* First pass with spreading on: hand the frame to the session's CPU. XDP_PASS: stay here. */
static __always_inline int spread(struct l2xdp_config *cfg, __u32 id)
{
	__u32 h = id * 0x9e3779b1u;
	__u32 n = cfg->cpumap_cpus;

	if (n == 0 || n > 64)
		return XDP_PASS;
	h ^= h >> 16;
	return bpf_redirect_map(&l2xdp_cpus, h % n, XDP_PASS);
}

/* Drops the bytes after `end` (Ethernet padding, beyond UDP Length / L2TP Length). */
static __always_inline int trim_to(struct xdp_md *ctx, __u32 end)
{
	__u32 len = pkt_len(ctx);

	if (len > end)
		return bpf_xdp_adjust_tail(ctx, -(int)(len - end));
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The kernel path: what bpf_fib_lookup cannot forward goes to the kernel stack, which routes
 * it, resolves the next hop's neighbour (queueing the packet meanwhile: net/core/neighbour.c
 * __neigh_event_send), answers ICMP and delivers locally — as the kernel's XDP forwarding
 * sample does (samples/bpf/xdp_fwd_kern.c: XDP_PASS on anything but SUCCESS). Without it a
 * quiet next hop is never resolved: XDP forwarding does not refresh the kernel's neighbour
 * entries, and bpf_fib_lookup answers NO_NEIGH until the kernel itself sends there. */

static __always_inline __u32 fib_reason(int rc)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return L2XDP_FIB_NO_NEIGH;
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return L2XDP_FIB_NOT_FWDED;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return L2XDP_FIB_UNREACHABLE;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return L2XDP_FIB_FRAG_NEEDED;
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return L2XDP_FIB_FWD_DISABLED;
	default:
		return L2XDP_FIB_OTHER;
	}
}

/* The per-reason verdict counter of a FIB miss, upstream (decap) or downstream (encap). */
static __always_inline __u32 fib_verdict(int up, __u32 reason)
{
	if (reason == L2XDP_FIB_FWD_DISABLED)
		return up ? L2XDP_V_UP_FWD_DISABLED : L2XDP_V_DOWN_FWD_DISABLED;
	return (up ? L2XDP_V_UP_FIB_BASE : L2XDP_V_DOWN_FIB_BASE) + reason;
}

/*
 * v2 decap, bpf_fib_lookup said `rc` (not SUCCESS): the inner packet [inner, inner_end) goes
 * to the kernel stack behind an Ethernet header with the outer frame's MACs (the destination
 * is this interface's, so the kernel takes it as PACKET_HOST: net/ethernet/eth.c
 * eth_type_trans) and the inner EtherType. The TTL is left alone: ip_forward() /
 * ip6_forward() decrement it (RFC 1812 §5.3.1). The packet was accepted from the session
 * (spoof check, sequence, source binding): it counts as the session's received traffic.
 * AF_XDP mode takes the same path (the lookup precedes the hand-off).
 */
static __always_inline int decap_to_kernel(struct xdp_md *ctx, struct l2xdp_session *s,
					   __u32 inner, __u32 inner_end, int v6, __u32 frame_len,
					   int rc)
{
	__u8 macs[12], *eth;

	count(&l2xdp_verdicts, L2XDP_V_FIB_MISS);
	count(&l2xdp_verdicts, fib_verdict(1, fib_reason(rc)));
	eth = at(ctx, 0, 12);
	if (!eth || inner < ETH_HLEN)
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	__builtin_memcpy(macs, eth, 12);
	count_rx(s, frame_len);
	if (trim_to(ctx, inner_end) || bpf_xdp_adjust_head(ctx, (int)inner - ETH_HLEN))
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	eth = at(ctx, 0, ETH_HLEN);
	if (!eth)
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	__builtin_memcpy(eth, macs, 12);
	eth[12] = v6 ? 0x86 : 0x08;
	eth[13] = v6 ? 0xdd : 0x00;
	return XDP_PASS;
}

static __always_inline int mark_set(const struct l2xdp_config *cfg)
{
	return (cfg->kernel_mark[0] & 3) == 2;
}

static __always_inline int is_mark(const struct l2xdp_config *cfg, const __u8 *mac)
{
	return mark_set(cfg) && *(const __u32 *)mac == *(const __u32 *)cfg->kernel_mark &&
	       *(const __u16 *)(mac + 4) == *(const __u16 *)(cfg->kernel_mark + 4);
}

/* xdp_l2tp_core: a frame from the wire must not pass as one of encap_fib_miss's (it would be
 * sent where its source MAC says by tc_l2tp_core, which runs after XDP). */
static __always_inline int kernel_mark_spoofed(struct xdp_md *ctx, const struct l2xdp_config *cfg)
{
	__u8 *eth = at(ctx, 0, 6);

	return eth && is_mark(cfg, eth);
}

/*
 * Encap, bpf_fib_lookup said `rc` (not SUCCESS) for the outer packet. Returns an XDP action,
 * or -1: go on encapsulating; `fib` then carries the kernel mark as destination MAC, the egress
 * ifindex (from the lookup, which fills it on NO_NEIGH since 5.10) in the source MAC's last
 * four bytes, and ifindex 0, which makes encap() XDP_PASS the finished frame instead of
 * redirecting it. tc_l2tp_core, attached to this interface's clsact ingress, recognises the
 * mark and hands the frame to bpf_redirect_neigh(): the kernel routes the outer packet,
 * resolves the neighbour (queueing meanwhile) and transmits (net/core/filter.c
 * __bpf_redirect_neigh). Passing the encapsulated frame to the IP stack instead would not do:
 * its source is a local address, a martian for ip_route_input (fib_validate_source) unless
 * accept_local.
 *
 * No neighbour and no tc_l2tp_core here (clsact or cls_bpf missing, bpf_redirect_neigh
 * absent, attach refused): dropped, L2XDP_V_DOWN_NO_TC. Other reasons: the untouched frame
 * is passed as before (the kernel routes the inner packet by its own table).
 */
static __always_inline int encap_fib_miss(struct xdp_md *ctx, struct l2xdp_config *cfg,
					  struct l2xdp_profile *pr, struct bpf_fib_lookup *fib,
					  int rc, int *xsk)
{
	__u32 reason = fib_reason(rc), ifindex = ctx->ingress_ifindex, egress = fib->ifindex;

	count(&l2xdp_verdicts, L2XDP_V_FIB_MISS);
	count(&l2xdp_verdicts, fib_verdict(0, reason));
	if (reason != L2XDP_FIB_NO_NEIGH)
		return XDP_PASS;
	/* Untagged templates only: tc_l2tp_core hands bpf_redirect_neigh an IP frame. */
	if (!mark_set(cfg) || !bpf_map_lookup_elem(&l2xdp_tc_ifaces, &ifindex) || egress == 0 ||
	    pr->l3_off != ETH_HLEN)
		return v_other(L2XDP_V_DOWN_NO_TC, XDP_DROP);
	__builtin_memcpy(fib->dmac, cfg->kernel_mark, 6);
	fib->smac[0] = 0x02;
	fib->smac[1] = 0;
	fib->smac[2] = egress >> 24;
	fib->smac[3] = egress >> 16;
	fib->smac[4] = egress >> 8;
	fib->smac[5] = egress;
	fib->ifindex = 0;
	*xsk = 0; /* AF_XDP mode too: the kernel sends it, not a worker */
	return -1;
}

/* v2 Forward: bpf_fib_lookup on the inner packet, then emit_inner_ethernet. */
static __always_inline int forward_v2(struct xdp_md *ctx, struct l2xdp_session *s,
				      struct l2xdp_session_key *key, __u32 inner, __u32 inner_end,
				      int v6, __u32 frame_len, int afxdp)
{
	struct bpf_fib_lookup fib = {};
	__u8 *ip;
	int rc;

	if (v6) {
		ip = at(ctx, inner, 40);
		if (!ip)
			return v_other(L2XDP_V_ERROR, XDP_ABORTED);
		fib.family = AF_INET6;
		fib.flowinfo = *(__u32 *)ip & bpf_htonl(0x0fffffff);
		fib.l4_protocol = ip[6];
		__builtin_memcpy(fib.ipv6_src, ip + 8, 16);
		__builtin_memcpy(fib.ipv6_dst, ip + 24, 16);
	} else {
		ip = at(ctx, inner, 20);
		if (!ip)
			return v_other(L2XDP_V_ERROR, XDP_ABORTED);
		fib.family = AF_INET;
		fib.tos = ip[1];
		fib.l4_protocol = ip[9];
		fib.ipv4_src = *(__u32 *)(ip + 12);
		fib.ipv4_dst = *(__u32 *)(ip + 16);
	}
	fib.tot_len = inner_end - inner;
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return decap_to_kernel(ctx, s, inner, inner_end, v6, frame_len, rc);

	count_rx(s, frame_len);
	if (afxdp) {
		struct l2xdp_xsk_meta m = { .egress_ifindex = fib.ifindex, .key = *key,
					    .dir = L2XDP_DIR_DECAP };

		__builtin_memcpy(m.dmac, fib.dmac, 6);
		__builtin_memcpy(m.smac, fib.smac, 6);
		rc = to_xsk(ctx, &m, L2XDP_V_DECAP, frame_len);
		if (rc >= 0)
			return rc;
	}
	if (trim_to(ctx, inner_end) || bpf_xdp_adjust_head(ctx, (int)inner - ETH_HLEN))
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);

	__u8 *eth = at(ctx, 0, ETH_HLEN + 20);
	if (!eth)
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	__builtin_memcpy(eth, fib.dmac, 6);
	__builtin_memcpy(eth + 6, fib.smac, 6);
	ip = eth + ETH_HLEN;
	if (v6) {
		eth = at(ctx, 0, ETH_HLEN + 40);
		if (!eth)
			return v_other(L2XDP_V_ERROR, XDP_ABORTED);
		ip = eth + ETH_HLEN;
		eth[12] = 0x86;
		eth[13] = 0xdd;
		ip[7] -= 1; /* hop limit: > 1 checked before */
	} else {
		/* RFC 1624 eqn. 3 as Linux ip_decrease_ttl(). */
		__u32 check = *(__u16 *)(ip + 10);

		eth[12] = 0x08;
		eth[13] = 0x00;
		check += bpf_htons(0x0100);
		*(__u16 *)(ip + 10) = (__u16)(check + (check >= 0xffff));
		ip[8] -= 1;
	}
	count_fwd(L2XDP_V_DECAP, frame_len);
	return bpf_redirect(fib.ifindex, 0);
}

/* 6–13 for L2TPv3: `off` is after the Session ID, `end` the end of the L2TP message. */
static __always_inline int decap_v3(struct xdp_md *ctx, struct l2xdp_config *cfg,
				    struct outer *o, __u32 off, __u32 end, __u32 sid,
				    __u8 transport, __u32 frame_len)
{
	struct l2xdp_session_key key = { .version = 3, .id = sid };
	__u32 at_slot;
	struct l2xdp_session *s = session_of(cfg, 3, sid, &at_slot);
	struct l2xdp_profile *pr;
	__u32 clen, rest;
	__u8 *p;
	int r;

	if (!s)
		return v_drop(L2XDP_DROP_UNKNOWN_SESSION);
	pr = profile_of(s);
	if (!pr || pr->version != 3 || pr->transport != transport)
		return v_drop(L2XDP_DROP_UNKNOWN_SESSION);
	r = spoof_check(pr, o);
	if (r)
		return v_drop(r - 1);
	rest = end - off;
	/* 8. Cookie (the receive cookie is in bind8, its length in the profile). */
	clen = pr->cookie_rx_len;
	if (rest < clen)
		return v_drop(L2XDP_DROP_TRUNCATED);
	if (clen == 4) {
		p = at(ctx, off, 4);
		if (!p)
			return v_drop(L2XDP_DROP_TRUNCATED);
		if (*(__u32 *)p != *(__u32 *)s->bind8)
			return v_drop(L2XDP_DROP_WRONG_COOKIE);
	} else if (clen == 8) {
		p = at(ctx, off, 8);
		if (!p)
			return v_drop(L2XDP_DROP_TRUNCATED);
		if (*(__u32 *)p != *(__u32 *)s->bind8 ||
		    *(__u32 *)(p + 4) != *(__u32 *)(s->bind8 + 4))
			return v_drop(L2XDP_DROP_WRONG_COOKIE);
	}
	off += clen;
	rest -= clen;
	/* Sublayer and 9. sequencing. */
	if (s->flags & L2XDP_F_L2SS) {
		if (rest < 4)
			return v_drop(L2XDP_DROP_TRUNCATED);
		p = at(ctx, off, 4);
		if (!p)
			return v_drop(L2XDP_DROP_TRUNCATED);
		if ((s->flags & L2XDP_F_SEQ) && (p[0] & 0x40) && !o->xsk) {
			__u32 seq = (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];

			if (!seq_check(&key, seq, 0xffffff, cfg->seq_relearn_after))
				return v_drop(L2XDP_DROP_SEQUENCE_OUT_OF_ORDER);
		}
		off += 4;
		rest -= 4;
	}
	/* 11. */
	if (rest < ETH_HLEN)
		return v_drop(L2XDP_DROP_BAD_INNER);
	/* 13. Forward the inner Ethernet frame to the attachment circuit (its ifindex is in
	 * bind4). */
	count_rx(s, frame_len);
	__u32 ac = s->bind4;
	if (o->xsk) {
		struct l2xdp_xsk_meta m = { .egress_ifindex = ac, .key = key,
					    .dir = L2XDP_DIR_DECAP };
		int rc = to_xsk(ctx, &m, L2XDP_V_DECAP, frame_len);

		if (rc >= 0)
			return rc;
	}
	if (trim_to(ctx, end) || bpf_xdp_adjust_head(ctx, (int)off))
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	count_fwd(L2XDP_V_DECAP, frame_len);
	return bpf_redirect(ac, 0);
}

static __always_inline int encap(struct xdp_md *ctx, struct l2xdp_config *cfg,
				 struct l2xdp_session *s, struct l2xdp_profile *pr,
				 __u32 inner, __u32 inner_len, int v6, int xsk);

/* RFC 1624 eqn. 3: the checksum `hc` after a 16-bit word of the data it covers changed from
 * `m` to `m1`: HC' = ~(~HC + ~m + m'). Words as stored (any byte order, the same for all). */
static __always_inline __u16 csum_update(__u16 hc, __u16 m, __u16 m1)
{
	__u32 sum = (__u16)~hc + (__u16)~m + (__u32)m1;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#define GATEWAY_ECHO_TTL 64

/*
 * ICMP echo to the LNS's own PPP address (cfg->gateway4: the IPCP local address, set by
 * l2xdpd): subscribers and their CPE ping their gateway, and in XDP mode there is no PPP
 * interface the kernel could answer from. The request [inner, inner_end) becomes the reply in
 * place (RFC 792: source and destination swapped, type 0, the identifier, sequence number and
 * data kept; RFC 1122 §3.2.2.6) with TTL 64 (RFC 1700), both checksums updated incrementally
 * (RFC 1624 eqn. 3; swapping the addresses leaves the header sum as it is), and is
 * encapsulated into the same session like any downstream packet (encap: the session's
 * template, its Ns, the peer's next hop from bpf_fib_lookup), sent back out of the access
 * interface. Counted as the session's received packet (count_rx), as L2XDP_V_GATEWAY_ECHO,
 * and by encap as a downstream one. Returns an XDP action, or -1 for anything else (options,
 * fragments, other ICMP, other protocols): forwarded as any packet. The caller reaches this
 * only for IPv4 to gateway4, so an ordinary packet pays one compare.
 */
static __always_inline int gateway_echo(struct xdp_md *ctx, struct l2xdp_config *cfg,
					struct l2xdp_session *s, struct l2xdp_profile *pr,
					__u32 inner, __u32 inner_end, __u32 frame_len)
{
	__u32 ilen = inner_end - inner, tot, a;
	__u16 old;
	__u8 *ip;

	if (!cfg->gateway4 || ilen < 28)
		return -1;
	ip = at(ctx, inner, 28);
	if (!ip || ip[0] != 0x45 || ip[9] != IPPROTO_ICMP)
		return -1;
	/* Not a fragment (MF clear, offset 0): the whole message is here. */
	if (be16(ip + 6) & 0x3fff)
		return -1;
	tot = be16(ip + 2);
	if (tot < 28 || tot > ilen)
		return -1;
	/* Echo request, code 0 (RFC 792). */
	if (ip[20] != 8 || ip[21] != 0)
		return -1;
	old = *(__u16 *)(ip + 20);
	ip[20] = 0;
	*(__u16 *)(ip + 22) = csum_update(*(__u16 *)(ip + 22), old, *(__u16 *)(ip + 20));
	old = *(__u16 *)(ip + 8);
	ip[8] = GATEWAY_ECHO_TTL;
	*(__u16 *)(ip + 10) = csum_update(*(__u16 *)(ip + 10), old, *(__u16 *)(ip + 8));
	a = *(__u32 *)(ip + 12);
	*(__u32 *)(ip + 12) = *(__u32 *)(ip + 16);
	*(__u32 *)(ip + 16) = a;
	count_rx(s, frame_len);
	count(&l2xdp_verdicts, L2XDP_V_GATEWAY_ECHO);
	return encap(ctx, cfg, s, pr, inner, tot, 0, 0);
}

/* A control message (T bit) at msg, version ver, over UDP or (ver 3, after its zero session
 * ID) over IP: to l2xdpd, unless it is to tunnel 0 and over the SCCRQ budget. The tunnel /
 * control connection ID follows the flags word and, in v2, the Length (RFC 2661 §3.1: L is
 * set in control messages; without it the ID is at offset 2); v3 has Length always
 * (RFC 3931 §3.2.1). Too short to hold the ID: to l2xdpd, which answers malformed input. */
static __always_inline int control(struct xdp_md *ctx, struct l2xdp_config *cfg, __u32 msg,
				   __u32 end, __u16 w, __u16 ver)
{
	__u32 off = (ver == 2 && !(w & 0x4000)) ? 2 : 4;
	__u32 len = ver == 2 ? 2 : 4;
	__u8 *p;

	if (!cfg->sccrq_budget || end - msg < off + len)
		return v_to_cp(L2XDP_WHY_L2TP_CONTROL);
	p = at(ctx, msg + off, 4);
	if (!p)
		return v_to_cp(L2XDP_WHY_L2TP_CONTROL);
	if ((ver == 2 ? be16(p) : be32(p)) != 0)
		return v_to_cp(L2XDP_WHY_L2TP_CONTROL);
	if (sccrq_over_budget(cfg))
		return v_other(L2XDP_V_SCCRQ_OVER_BUDGET, XDP_DROP);
	return v_to_cp(L2XDP_WHY_L2TP_CONTROL);
}

/* 5–13 for L2TP over UDP; [msg, end) is the UDP payload. */
static __always_inline int decap_udp(struct xdp_md *ctx, struct l2xdp_config *cfg,
				     struct outer *o, __u32 msg, __u32 end, __u32 frame_len,
				     int first_pass)
{
	__u32 mlen = end - msg;
	__u8 *p;
	__u16 w, ver;

	p = at(ctx, msg, 2);
	if (mlen < 2 || !p)
		return v_drop(L2XDP_DROP_TRUNCATED);
	w = be16(p);
	ver = w & 0xf;
	if (ver != 2 && ver != 3)
		return v_drop(L2XDP_DROP_UNSUPPORTED_VERSION);
	if (w & 0x8000)
		return control(ctx, cfg, msg, end, w, ver);
	if (ver == 3) {
		__u32 sid;

		p = at(ctx, msg, 8);
		if (mlen < 8 || !p)
			return v_drop(L2XDP_DROP_TRUNCATED);
		sid = be32(p + 4);
		if (sid == 0)
			return v_drop(L2XDP_DROP_UNKNOWN_SESSION);
		if (first_pass && cfg->cpumap_enabled) {
			int act = spread(cfg, sid);

			if (act == XDP_REDIRECT)
				return v_other(L2XDP_V_CPU_REDIRECT, act);
		}
		return decap_v3(ctx, cfg, o, msg + 8, end, sid, 0, frame_len);
	}
	/* 6. L2TPv2 data (RFC 2661 §3.1). */
	__u32 ids_at = (w & 0x4000) ? 4 : 2;
	__u32 fixed = ids_at + 4 + ((w & 0x0800) ? 4 : 0) + ((w & 0x0200) ? 2 : 0);
	__u32 hlen = fixed, pay_end = end;

	if (mlen < fixed)
		return v_drop(L2XDP_DROP_TRUNCATED);
	if (w & 0x0200) {
		__u8 *q = at(ctx, msg + fixed - 2, 2);

		if (!q)
			return v_drop(L2XDP_DROP_TRUNCATED);
		hlen += be16(q);
		if (mlen < hlen)
			return v_drop(L2XDP_DROP_TRUNCATED);
	}
	if (w & 0x4000) {
		__u8 *q = at(ctx, msg + 2, 2);
		__u32 len;

		if (!q)
			return v_drop(L2XDP_DROP_TRUNCATED);
		len = be16(q);
		if (len < hlen)
			return v_drop(L2XDP_DROP_MALFORMED_L2TP);
		if (len > mlen)
			return v_drop(L2XDP_DROP_TRUNCATED);
		pay_end = msg + len;
	}
	__u8 *ids = at(ctx, msg + ids_at, 4);
	if (!ids)
		return v_drop(L2XDP_DROP_TRUNCATED);
	__u32 id = (__u32)be16(ids) << 16 | be16(ids + 2);
	if (first_pass && cfg->cpumap_enabled) {
		int act = spread(cfg, id);

		if (act == XDP_REDIRECT)
			return v_other(L2XDP_V_CPU_REDIRECT, act);
	}
	struct l2xdp_session_key key = { .version = 2, .id = id };
	__u32 at_slot;
	struct l2xdp_session *s = session_of(cfg, 2, id, &at_slot);
	struct l2xdp_profile *pr;
	int r;

	if (!s)
		return v_drop(L2XDP_DROP_UNKNOWN_SESSION);
	pr = profile_of(s);
	if (!pr || pr->version != 2 || pr->transport != 0)
		return v_drop(L2XDP_DROP_UNKNOWN_SESSION);
	/* 7. */
	r = spoof_check(pr, o);
	if (r)
		return v_drop(r - 1);
	/* 9. */
	if ((s->flags & L2XDP_F_SEQ) && (w & 0x0800) && !o->xsk) {
		__u8 *q = at(ctx, msg + ids_at + 4, 2);

		if (!q)
			return v_drop(L2XDP_DROP_TRUNCATED);
		if (!seq_check(&key, be16(q), 0xffff, cfg->seq_relearn_after))
			return v_drop(L2XDP_DROP_SEQUENCE_OUT_OF_ORDER);
	}
	/* 10. PPP (RFC 1661 §6.5–6.6, RFC 1662 §3.2). */
	__u32 pay = msg + hlen, plen = pay_end - pay, a = 0, ph;
	__u16 proto;

	p = at(ctx, pay, 2);
	if (plen >= 2 && p && p[0] == 0xff && p[1] == 0x03)
		a = 2;
	if (plen - a < 1)
		return v_drop(L2XDP_DROP_TRUNCATED);
	p = at(ctx, pay + a, 1);
	if (!p)
		return v_drop(L2XDP_DROP_TRUNCATED);
	if (p[0] & 1) {
		proto = p[0];
		ph = a + 1;
	} else {
		if (plen - a < 2)
			return v_drop(L2XDP_DROP_TRUNCATED);
		p = at(ctx, pay + a, 2);
		if (!p)
			return v_drop(L2XDP_DROP_TRUNCATED);
		proto = be16(p);
		ph = a + 2;
	}
	if (!(proto & 1) || (proto & 0x100))
		return v_drop(L2XDP_DROP_MALFORMED_PPP);
	int v6;
	if (proto == 0x0021)
		v6 = 0;
	else if (proto == 0x0057)
		v6 = 1;
	else if (proto >= 0x8000)
		return v_to_cp(L2XDP_WHY_PPP_CONTROL);
	else
		return v_to_cp(L2XDP_WHY_PPP_OTHER);
	/* 11. Inner. 12. Source address validation (RFC 1661 §3.2, BCP 38): the source must be
	 * bound to this session — IPv4 its address (bind4), IPv6 its first prefix (bind8, up to
	 * /64) or, with L2XDP_F_SUB6_MORE, the longest prefix in l2xdp_sub6 naming this slot;
	 * IPv6 link-local (fe80::/10) goes to the control plane. Then the TTL. */
	__u32 inner = pay + ph, ilen = pay_end - inner;
	int bound = 0;
	__u8 ttl;

	if (v6) {
		p = at(ctx, inner, 40);
		if (ilen < 40 || !p || (p[0] >> 4) != 6)
			return v_drop(L2XDP_DROP_BAD_INNER);
		if (p[8] == 0xfe && (p[9] & 0xc0) == 0x80)
			return v_to_cp(L2XDP_WHY_IPV6_LINK_LOCAL);
		ttl = p[7];
		if (s->flags & L2XDP_F_BIND64)
			bound = *(__u64 *)(p + 8) == *(__u64 *)s->bind8;
		if (!bound && (s->flags & L2XDP_F_SUB6_MORE)) {
			struct l2xdp_lpm6_key lk = { .prefixlen = 128 };
			__u32 *slot;

			__builtin_memcpy(lk.addr, p + 8, 16);
			slot = bpf_map_lookup_elem(&l2xdp_sub6, &lk);
			bound = slot && *slot == at_slot;
		}
	} else {
		p = at(ctx, inner, 20);
		if (ilen < 20 || !p || (p[0] >> 4) != 4)
			return v_drop(L2XDP_DROP_BAD_INNER);
		ttl = p[8];
		bound = s->bind4 != 0 && *(__u32 *)(p + 12) == s->bind4;
	}
	if (!bound)
		return v_drop(L2XDP_DROP_UNBOUND_SOURCE);
	if (ttl <= 1)
		return v_to_cp(L2XDP_WHY_INNER_TTL_EXPIRED);
	/* The one compare an ordinary packet pays for gateway_echo (p: the inner header; its
	 * destination and gateway4, in the config's one cache line, are both in cache). */
	if (__builtin_expect(*(__u32 *)(p + 16) == cfg->gateway4, 0) && !v6) {
		r = gateway_echo(ctx, cfg, s, pr, inner, pay_end, frame_len);
		if (r >= 0)
			return r;
	}
	return forward_v2(ctx, s, &key, inner, pay_end, v6, frame_len, o->xsk);
}

static __always_inline int access(struct xdp_md *ctx, int first_pass)
{
	__u32 zero = 0;
	struct l2xdp_config *cfg = bpf_map_lookup_elem(&l2xdp_config, &zero);
	__u32 frame_len = pkt_len(ctx);
	struct outer o = {};
	__u32 l3, l4, l4_end;
	__u16 et;
	__u8 proto, *p;

	if (!cfg || !cfg->configured)
		return v_pass();
	o.xsk = cfg->afxdp && xsk_ready(ctx);
	/* 1. Ethernet, 0–2 VLAN tags. */
	p = at(ctx, 0, ETH_HLEN);
	if (!p)
		return v_pass();
	et = be16(p + 12);
	l3 = ETH_HLEN;
	if (et == ETH_P_8021Q || et == ETH_P_8021AD) {
		p = at(ctx, 16, 2);
		if (!p)
			return v_pass();
		et = be16(p);
		l3 += 4;
		if (et == ETH_P_8021Q || et == ETH_P_8021AD) {
			p = at(ctx, 20, 2);
			if (!p)
				return v_pass();
			et = be16(p);
			l3 += 4;
			if (et == ETH_P_8021Q || et == ETH_P_8021AD)
				return v_pass();
		}
	}
	/* 2. Outer IP. */
	if (et == ETH_P_IP) {
		__u32 ihl, tot, i;
		__u64 sum = 0;

		p = at(ctx, l3, 20);
		if (!p)
			return v_pass();
		ihl = (p[0] & 0xf) * 4;
		tot = be16(p + 2);
		if (ihl < 20 || l3 + ihl > frame_len || tot < ihl || l3 + tot > frame_len ||
		    (p[0] >> 4) != 4)
			return v_pass();
		if (ihl == 20) {
			/* No options (the common case): the five words `p` already covers. */
			const __u32 *w = (const __u32 *)p;

			sum = (__u64)w[0] + w[1] + w[2] + w[3] + w[4];
		} else {
			for (i = 0; i < 15; i++) {
				__u8 *q;

				if (i * 4 >= ihl)
					break;
				q = at(ctx, l3 + i * 4, 4);
				if (!q)
					return v_pass();
				sum += *(__u32 *)q;
			}
		}
		if (fold(sum) != 0xffff || (be16(p + 6) & 0x3fff))
			return v_pass();
		o.family = 4;
		__builtin_memcpy(o.src, p + 12, 4);
		__builtin_memcpy(o.dst, p + 16, 4);
		proto = p[9];
		l4 = l3 + ihl;
		l4_end = l3 + tot;
	} else if (et == ETH_P_IPV6) {
		p = at(ctx, l3, 40);
		if (!p)
			return v_pass();
		l4 = l3 + 40;
		l4_end = l4 + be16(p + 4);
		if (l4_end > frame_len || (p[0] >> 4) != 6)
			return v_pass();
		o.family = 6;
		__builtin_memcpy(o.src, p + 8, 16);
		__builtin_memcpy(o.dst, p + 24, 16);
		proto = p[6];
	} else {
		return v_pass();
	}
	/* 3. Classification. */
	if (proto == IPPROTO_UDP) {
		__u32 ulen;
		__u16 csum;

		if (l4_end - l4 < 8)
			return v_pass();
		p = at(ctx, l4, 8);
		if (!p)
			return v_pass();
		if (be16(p + 2) != cfg->udp_port)
			return v_pass();
		/* 4. UDP. */
		ulen = be16(p + 4);
		if (ulen < 8 || ulen > l4_end - l4)
			return v_drop(L2XDP_DROP_BAD_UDP_LENGTH);
		o.udp = 1;
		o.sport = be16(p);
		o.dport = be16(p + 2);
		csum = *(__u16 *)(p + 6);
		if (csum == 0) {
			if (o.family == 6 && !cfg->accept_zero_udp6_checksum)
				return v_drop(L2XDP_DROP_ZERO_UDP6_CHECKSUM);
		} else if (cfg->verify_udp_checksum) {
			__u64 sum = pseudo_udp(o.family, o.src, o.dst, ulen);

			if (csum_range(ctx, l4, ulen, &sum))
				return v_other(L2XDP_V_ENCAP_REFUSED, XDP_PASS);
			if (fold(sum) != 0xffff)
				return v_drop(L2XDP_DROP_BAD_UDP_CHECKSUM);
		}
		return decap_udp(ctx, cfg, &o, l4 + 8, l4 + ulen, frame_len, first_pass);
	}
	if (proto == IPPROTO_L2TP_) {
		__u32 sid;

		p = at(ctx, l4, 4);
		if (l4_end - l4 < 4 || !p)
			return v_drop(L2XDP_DROP_TRUNCATED);
		sid = be32(p);
		if (sid == 0) {
			/* RFC 3931 §4.1.1.1: a control message follows the zero Session ID. */
			p = at(ctx, l4 + 4, 2);
			if (l4_end - l4 < 6 || !p)
				return v_to_cp(L2XDP_WHY_L2TP_CONTROL);
			return control(ctx, cfg, l4 + 4, l4_end, be16(p), 3);
		}
		if (first_pass && cfg->cpumap_enabled) {
			int act = spread(cfg, sid);

			if (act == XDP_REDIRECT)
				return v_other(L2XDP_V_CPU_REDIRECT, act);
		}
		return decap_v3(ctx, cfg, &o, l4 + 4, l4_end, sid, 1, frame_len);
	}
	return v_pass();
}

SEC("xdp")
int xdp_l2tp_access(struct xdp_md *ctx)
{
	return access(ctx, 1);
}

SEC("xdp/cpumap")
int xdp_l2tp_access_cpu(struct xdp_md *ctx)
{
	return access(ctx, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Encapsulation (core side): wire::datapath::encap with the session's template. */

/* Writes `len` (a constant: 1, 2 or 4) bytes at `off`: direct packet access, not
 * bpf_xdp_store_bytes (5.18+), so the program loads on 5.10. */
static __always_inline int put(struct xdp_md *ctx, __u32 off, void *from, __u32 len)
{
	__u8 *p = at(ctx, off, len);

	if (!p)
		return -1;
	__builtin_memcpy(p, from, len);
	return 0;
}

/* Copies the session's template (hdr_len bytes, ETH_HLEN <= hdr_len <= L2XDP_HDR_MAX) to the
 * front of the packet in 8-byte words; the last word is the template's last 8 bytes
 * (overlapping the previous one) so nothing past hdr_len is written. */
static __always_inline int put_template(struct xdp_md *ctx, const struct l2xdp_profile *s,
					__u32 hdr_len)
{
	__u32 i, last;
	__u8 *p;

	if (hdr_len < 8 || hdr_len > L2XDP_HDR_MAX)
		return -1;
	for (i = 0; i < L2XDP_HDR_MAX / 8; i++) {
		if (i * 8 + 8 > hdr_len)
			break;
		p = at(ctx, i * 8, 8);
		if (!p)
			return -1;
		*(__u64 *)p = *(const __u64 *)(s->hdr + i * 8);
	}
	last = (hdr_len - 8) & (L2XDP_HDR_MAX - 1);
	if (last > L2XDP_HDR_MAX - 8)
		return -1;
	p = at(ctx, last, 8);
	if (!p)
		return -1;
	*(__u64 *)p = *(const __u64 *)(s->hdr + last);
	return 0;
}

static __always_inline int encap(struct xdp_md *ctx, struct l2xdp_config *cfg,
				 struct l2xdp_session *s, struct l2xdp_profile *pr,
				 __u32 inner, __u32 inner_len, int v6, int xsk)
{
	struct l2xdp_session_key key = { .version = s->version, .id = s->id };
	struct bpf_fib_lookup fib = {};
	__u32 hdr_len = pr->hdr_len, l3 = pr->l3_off, l4 = pr->l4_off;
	__u32 ip_hlen = pr->family == 4 ? 20 : 40;
	__u32 ip_len, ns = 0, frame_len = pkt_len(ctx);
	int rc;

	if (hdr_len < ETH_HLEN || hdr_len > L2XDP_HDR_MAX || l3 >= hdr_len || l4 >= hdr_len)
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	ip_len = hdr_len - l3 + inner_len;
	if (ip_len > cfg->mtu || ip_len > 0xffff)
		return v_other(L2XDP_V_ENCAP_REFUSED, XDP_PASS);
	if (pr->family == 4) {
		fib.family = AF_INET;
		fib.ipv4_src = *(__u32 *)pr->local_addr;
		fib.ipv4_dst = *(__u32 *)pr->peer_addr;
		fib.tos = pr->dscp << 2;
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, pr->local_addr, 16);
		__builtin_memcpy(fib.ipv6_dst, pr->peer_addr, 16);
	}
	fib.l4_protocol = pr->transport == 0 ? IPPROTO_UDP : IPPROTO_L2TP_;
	fib.tot_len = ip_len;
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && (rc = encap_fib_miss(ctx, cfg, pr, &fib, rc, &xsk)) >= 0)
		return rc;

	if (xsk) {
		struct l2xdp_xsk_meta m = { .egress_ifindex = fib.ifindex, .key = key,
					    .inner_off = (__u16)inner, .inner_len = (__u16)inner_len,
					    .dir = L2XDP_DIR_ENCAP };

		__builtin_memcpy(m.dmac, fib.dmac, 6);
		__builtin_memcpy(m.smac, fib.smac, 6);
		rc = to_xsk(ctx, &m, L2XDP_V_ENCAP, (hdr_len & 0xff) + inner_len);
		if (rc >= 0) {
			count_tx(s, (hdr_len & 0xff) + inner_len);
			return rc;
		}
	}
	if (inner + inner_len < frame_len &&
	    bpf_xdp_adjust_tail(ctx, -(int)(frame_len - inner - inner_len)))
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	if (bpf_xdp_adjust_head(ctx, (int)inner - (int)hdr_len))
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	hdr_len &= 0xff;
	if (hdr_len < ETH_HLEN || hdr_len > L2XDP_HDR_MAX)
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	if (put_template(ctx, pr, hdr_len))
		return v_other(L2XDP_V_ERROR, XDP_ABORTED);
	{
		__u8 *eth = at(ctx, 0, ETH_HLEN);

		if (!eth)
			return v_other(L2XDP_V_ERROR, XDP_ABORTED);
		__builtin_memcpy(eth, fib.dmac, 6);
		__builtin_memcpy(eth + 6, fib.smac, 6);
	}

	/* Outer IP lengths and the IPv4 header checksum. */
	if (pr->family == 4) {
		__u16 tot = bpf_htons((__u16)ip_len);
		__u8 *ip;
		__u64 sum;

		put(ctx, l3 + 2, &tot, 2);
		ip = at(ctx, l3, 20);
		if (!ip)
			return v_other(L2XDP_V_ERROR, XDP_ABORTED);
		sum = (__u64)((__u32 *)ip)[0] + ((__u32 *)ip)[1] + ((__u32 *)ip)[2] +
		      ((__u32 *)ip)[3] + ((__u32 *)ip)[4];
		*(__u16 *)(ip + 10) = ~fold(sum);
	} else {
		__u16 plen = bpf_htons((__u16)(ip_len - 40));

		put(ctx, l3 + 4, &plen, 2);
	}
	/* The peer's session id, and v3's transmit cookie after it, from the slot (the template
	 * is shared by the tunnel's sessions: RFC 2661 §3.1, RFC 3931 §4.1.1.1 and §4.1.2.1). */
	if (pr->sid_off) {
		if (pr->version == 2) {
			__u16 sid = bpf_htons((__u16)s->peer_id);

			put(ctx, pr->sid_off, &sid, 2);
		} else {
			__u32 sid = bpf_htonl(s->peer_id), off = pr->sid_off;

			put(ctx, off, &sid, 4);
			if (pr->cookie_tx_len == 4) {
				put(ctx, off + 4, s->cookie_tx, 4);
			} else if (pr->cookie_tx_len == 8) {
				put(ctx, off + 4, s->cookie_tx, 4);
				put(ctx, off + 8, s->cookie_tx + 4, 4);
			}
		}
	}
	/* Sequence number: consumed only now that the frame is written. */
	if (s->flags & L2XDP_F_SEQ) {
		struct l2xdp_seq *st = bpf_map_lookup_elem(&l2xdp_seq, &key);

		/* Under the session's lock, not __sync_fetch_and_add: an atomic add that returns
		 * the old value (BPF_ATOMIC | BPF_FETCH) needs 5.12; 5.10 refuses it ("BPF_STX uses
		 * reserved fields"). */
		if (st) {
			bpf_spin_lock(&st->lock);
			ns = st->tx_next;
			st->tx_next = ns + 1;
			bpf_spin_unlock(&st->lock);
		}
		if (pr->seq_off) {
			if (pr->version == 2) {
				__u16 n = bpf_htons((__u16)ns);

				put(ctx, pr->seq_off, &n, 2);
			} else {
				__u32 n = bpf_htonl(0x40000000 | (ns & 0xffffff));

				put(ctx, pr->seq_off, &n, 4);
			}
		}
	}
	/* v2: the PPP protocol of the inner packet. */
	if (pr->version == 2) {
		__u8 ppp[2] = { 0, v6 ? 0x57 : 0x21 };

		if (pr->flags & L2XDP_F_PFC)
			put(ctx, pr->ppp_off, &ppp[1], 1);
		else
			put(ctx, pr->ppp_off, ppp, 2);
	}
	/* UDP Length, then the checksum over everything (RFC 768; RFC 8200 §8.1). */
	if (pr->transport == 0) {
		__u32 ulen = ip_len - ip_hlen;
		__u16 ul = bpf_htons((__u16)ulen);

		put(ctx, l4 + 4, &ul, 2);
		if (pr->family == 6 || (pr->flags & L2XDP_F_UDP_CSUM4)) {
			__u64 sum = pseudo_udp(pr->family, pr->local_addr, pr->peer_addr, ulen);
			__u16 c;

			if (csum_range(ctx, l4, ulen, &sum))
				return v_other(L2XDP_V_ERROR, XDP_ABORTED);
			c = ~fold(sum);
			if (c == 0)
				c = 0xffff;
			put(ctx, l4 + 6, &c, 2);
		}
	}
	frame_len = pkt_len(ctx);
	count_tx(s, frame_len);
	if (!fib.ifindex) /* encap_fib_miss: for tc_l2tp_core */
		return XDP_PASS;
	count_fwd(L2XDP_V_ENCAP, frame_len);
	return bpf_redirect(fib.ifindex, 0);
}

/* Downstream IPv4: the slot of the session the destination is bound to, or -1. One bucket
 * (one cache line) of l2xdp_dst4; l2xdp_sub4 only behind a full bucket. */
static __always_inline long slot_of_dst4(struct l2xdp_config *cfg, __u32 dst)
{
	__u32 b = bpf_ntohl(dst) & cfg->dst4_mask, *slot;
	struct l2xdp_dst4_bucket *bk = bpf_map_lookup_elem(&l2xdp_dst4, &b);
	int i;

	if (!bk)
		return -1;
#pragma unroll
	for (i = 0; i < L2XDP_DST4_WAYS; i++) {
		if (bk->e[i].addr == dst)
			return bk->e[i].slot;
	}
	if (bk->e[L2XDP_DST4_WAYS - 1].addr == 0)
		return -1;
	slot = bpf_map_lookup_elem(&l2xdp_sub4, &dst);
	return slot ? (long)*slot : -1;
}

/* The slot of the L2TPv3 session on attachment circuit `ifindex`, or 0: its entry of
 * l2xdp_circuits (no hash), or l2xdp_ac when the entry holds another circuit. */
static __always_inline __u32 *circuit_slot(struct l2xdp_config *cfg, __u32 ifindex)
{
	__u32 i = ifindex & cfg->ac_mask;
	struct l2xdp_circuit *c = bpf_map_lookup_elem(&l2xdp_circuits, &i);

	if (c && c->ifindex == ifindex)
		return &c->slot;
	return bpf_map_lookup_elem(&l2xdp_ac, &ifindex);
}

SEC("xdp")
int xdp_l2tp_core(struct xdp_md *ctx)
{
	__u32 zero = 0, ifindex = ctx->ingress_ifindex;
	struct l2xdp_config *cfg = bpf_map_lookup_elem(&l2xdp_config, &zero);
	__u32 frame_len = pkt_len(ctx), inner, len, slot, dst4 = 0;
	struct l2xdp_session *s;
	struct l2xdp_profile *pr;
	int v6 = 0;
	__u8 *p;

	if (!cfg || !cfg->configured)
		return v_pass();
	if (kernel_mark_spoofed(ctx, cfg))
		return v_other(L2XDP_V_MARK_SPOOFED, XDP_DROP);
	__u32 *ac = 0;
	if (cfg->ac_bloom & (1ULL << (ifindex & 63)))
		ac = circuit_slot(cfg, ifindex);
	if (ac) {
		/* A frame on a v3 attachment circuit: the whole frame is the payload. */
		if (frame_len < ETH_HLEN)
			return v_pass();
		slot = *ac;
		inner = 0;
		len = frame_len;
	} else {
		/* A packet to a v2 subscriber; Ethernet padding is not payload. */
		long found = -1;

		p = at(ctx, 0, ETH_HLEN);
		if (!p)
			return v_pass();
		inner = ETH_HLEN;
		len = frame_len - ETH_HLEN;
		if (be16(p + 12) == ETH_P_IP) {
			__u32 tot;

			p = at(ctx, ETH_HLEN, 20);
			if (!p || (p[0] >> 4) != 4)
				return v_pass();
			dst4 = *(__u32 *)(p + 16);
			found = slot_of_dst4(cfg, dst4);
			tot = be16(p + 2);
			if (tot >= 20 && tot < len)
				len = tot;
		} else if (be16(p + 12) == ETH_P_IPV6) {
			struct l2xdp_lpm6_key lk = { .prefixlen = 128 };
			__u32 tot, *sl;

			p = at(ctx, ETH_HLEN, 40);
			if (!p || (p[0] >> 4) != 6)
				return v_pass();
			__builtin_memcpy(lk.addr, p + 24, 16);
			sl = bpf_map_lookup_elem(&l2xdp_sub6, &lk);
			if (sl)
				found = *sl;
			tot = 40 + be16(p + 4);
			if (tot < len)
				len = tot;
			v6 = 1;
		}
		if (found < 0)
			return v_pass();
		slot = (__u32)found;
	}
	s = session_at(slot);
	if (!s || s->version != (inner ? 2 : 3))
		return v_pass();
	/* The slot names the address too (same cache line): an entry read while user space
	 * rewrote it never sends a packet into another session. */
	if (dst4 && s->bind4 != dst4)
		return v_pass();
	if (!inner && s->bind4 != ifindex) /* v3: the slot names its circuit */
		return v_pass();
	pr = profile_of(s);
	if (!pr || pr->version != s->version)
		return v_pass();
	return encap(ctx, cfg, s, pr, inner, len, v6, cfg->afxdp && xsk_ready(ctx));
}

/* ------------------------------------------------------------------------------------------ */
/* The kernel path's second half (clsact ingress of every interface xdp_l2tp_core is attached
 * to; attached by the loader where the kernel has bpf_redirect_neigh, 5.10+). A frame carrying
 * the kernel mark was encapsulated by xdp_l2tp_core for a next hop without a neighbour entry
 * (encap_fib_miss; xdp_l2tp_core drops such frames from the wire, and XDP runs before tc):
 * bpf_redirect_neigh() to the egress in its source MAC, with no next hop given, so the kernel
 * looks the route up again and resolves the neighbour (net/core/filter.c
 * bpf_out_neigh_v4/v6). Everything else is the stack's. */

#define TC_ACT_OK_ 0

SEC("classifier")
int tc_l2tp_core(struct __sk_buff *skb)
{
	__u32 zero = 0, ifindex;
	struct l2xdp_config *cfg = bpf_map_lookup_elem(&l2xdp_config, &zero);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *eth = data;

	if (!cfg || !cfg->configured || (void *)(eth + ETH_HLEN) > end || !is_mark(cfg, eth))
		return TC_ACT_OK_;
	ifindex = be32(eth + 8);
	count(&l2xdp_verdicts, L2XDP_V_NEIGH_REDIRECT);
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}
