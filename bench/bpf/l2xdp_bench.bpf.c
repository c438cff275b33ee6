// SPDX-License-Identifier: Apache-2.0
/* The forwarding benchmark's helpers (bench/, `l2xdp-bench forward`):
 *
 * - xdp_gen: the live-frame generator (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, as
 *   xdp-trafficgen does). The kernel re-initialises a recycled page's pointers, not its bytes,
 *   so the frames the forwarders rewrote come back modified: every run copies the next
 *   prepared frame (round robin over bench_gen_cfg.n templates from .base) over the packet,
 *   then XDP_TX (in live mode: transmitted on the test run's ingress device).
 * - xdp_redirect_plain: the baseline forwarder, the least an XDP forwarder does: look up the
 *   ingress ifindex in bench_fwd, rewrite both MACs, bpf_redirect to the egress ifindex (the
 *   fast path redirects the same way).
 * - xdp_count: the sink on the receiving veth peer: counts packets and bytes per CPU, XDP_DROP.
 * - xdp_to_xsk: the raw AF_XDP forwarder's classifier (`l2xdp-bench afxdp`): every frame to
 *   the AF_XDP socket of its receive queue (bench_xsks), nothing else.
 * - xdp_gen_paced: the paced live-frame generator of `l2xdp-bench throughput`/`scale`: frames
 *   of any length up to BENCH_PFRAME_MAX (bpf_xdp_adjust_tail sets the length; the first
 *   BENCH_FRAME_MAX bytes come from the template, the rest is zeros: the tail grown by
 *   adjust_tail is zeroed by the kernel and no forwarder writes past the first 128 bytes),
 *   each to its own egress (bpf_redirect_map into bench_egress, a DEVMAP whose entries may be
 *   devices of different namespaces: one generator feeds both directions), paced by a token
 *   bucket on bpf_ktime_get_ns: a run before the next frame is due returns XDP_DROP (the
 *   page goes back to the pool, nothing is sent), so the frames leave spaced by interval_ps
 *   with a resolution of one generator run (~100-200 ns); at most burst_ps of credit is kept
 *   (a preempted generator does not catch up with a burst).
 * - xdp_router: the routed baseline (`l2xdp-bench cost`): what the kernel's xdp_fwd sample
 *   (samples/bpf/xdp_fwd_kern.c) does — parse Ethernet and IPv4 or IPv6, bpf_fib_lookup on
 *   the ingress interface, decrement the TTL (IPv4: the checksum updated incrementally, RFC
 *   1624 eqn. 3, as Linux ip_decrease_ttl()) or the hop limit, the MACs from the FIB,
 *   bpf_redirect to the FIB's egress. Not IPv4/IPv6, TTL/hop limit <= 1, or no FIB answer:
 *   XDP_PASS, as xdp_fwd. The fast path's decap does the same steps on the inner packet, so
 *   the difference between the two is what L2TP adds on top of routing.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define BENCH_FRAME_MAX 128

struct bench_template {
	__u32 len;
	__u8 data[BENCH_FRAME_MAX];
};

struct bench_gen_cfg {
	__u32 base; /* first template of the current case */
	__u32 n;    /* number of templates (1..) */
};

struct bench_fwd {
	__u32 ifindex; /* egress */
	__u8 dst[6];
	__u8 src[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct bench_template);
} bench_templates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_gen_cfg);
} bench_gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_gen_cursor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32); /* ingress ifindex */
	__type(value, struct bench_fwd);
} bench_fwd SEC(".maps");

/* 0: packets, 1: bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} bench_rx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} bench_xsks SEC(".maps");

SEC("xdp")
int xdp_to_xsk(struct xdp_md *ctx)
{
	return bpf_redirect_map(&bench_xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
	__u32 zero = 0, idx;
	struct bench_gen_cfg *cfg = bpf_map_lookup_elem(&bench_gen_cfg, &zero);
	__u32 *cur = bpf_map_lookup_elem(&bench_gen_cursor, &zero);
	struct bench_template *t;
	__u32 len;

	if (!cfg || !cur || cfg->n == 0)
		return XDP_ABORTED;
	idx = *cur;
	if (idx >= cfg->n)
		idx = 0;
	*cur = idx + 1;
	idx += cfg->base;
	t = bpf_map_lookup_elem(&bench_templates, &idx);
	if (!t)
		return XDP_ABORTED;
	len = t->len;
	if (len == 0 || len > BENCH_FRAME_MAX)
		return XDP_ABORTED;
	/* Every template of a case has the test run's frame length. */
	if (bpf_xdp_store_bytes(ctx, 0, t->data, len))
		return XDP_ABORTED;
	return XDP_TX;
}

SEC("xdp")
int xdp_redirect_plain(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 in = ctx->ingress_ifindex;
	struct bench_fwd *f;
	__u8 *p = data;

	if ((void *)(p + 14) > end)
		return XDP_DROP;
	f = bpf_map_lookup_elem(&bench_fwd, &in);
	if (!f)
		return XDP_PASS;
	__builtin_memcpy(p, f->dst, 6);
	__builtin_memcpy(p + 6, f->src, 6);
	return bpf_redirect(f->ifindex, 0);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&bench_rx, &k);

	if (v)
		*v += 1;
	k = 1;
	v = bpf_map_lookup_elem(&bench_rx, &k);
	if (v)
		*v += ctx->data_end - ctx->data;
	return XDP_DROP;
}

#define BENCH_PFRAME_MAX 2048

struct bench_ptemplate {
	__u32 len;    /* frame length: data[0..min(len, 128)], then zeros */
	__u32 egress; /* key in bench_egress */
	__u8 data[BENCH_FRAME_MAX];
};

struct bench_pace {
	__u64 interval_ps; /* 0: unpaced, every run sends */
	__u64 burst_ps;    /* credit kept at most */
	__u32 base;        /* first template of the case */
	__u32 n;           /* templates */
};

struct bench_pace_state {
	__u64 next_ps;    /* when the next frame is due */
	__u64 cursor;     /* next template, 0..n */
	__u64 sent;       /* frames handed to bpf_redirect_map */
	__u64 sent_bytes;
	__u64 skipped;    /* runs that were not due (XDP_DROP) */
	__u64 first_ps;   /* first send (0: none yet) */
	__u64 last_ps;    /* last send */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384); /* resized by the loader */
	__type(key, __u32);
	__type(value, struct bench_ptemplate);
} bench_ptemplates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_pace);
} bench_pace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_pace_state);
} bench_pace_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} bench_egress SEC(".maps");

SEC("xdp")
int xdp_gen_paced(struct xdp_md *ctx)
{
	__u32 zero = 0, idx, len, cur, copy;
	struct bench_pace *cfg = bpf_map_lookup_elem(&bench_pace, &zero);
	struct bench_pace_state *st = bpf_map_lookup_elem(&bench_pace_state, &zero);
	struct bench_ptemplate *t;
	__u64 now;

	if (!cfg || !st || cfg->n == 0)
		return XDP_ABORTED;
	now = bpf_ktime_get_ns() * 1000;
	if (cfg->interval_ps) {
		if (st->next_ps > now) {
			st->skipped++;
			return XDP_DROP;
		}
		if (now - st->next_ps > cfg->burst_ps)
			st->next_ps = now - cfg->burst_ps;
		st->next_ps += cfg->interval_ps;
	}
	idx = st->cursor;
	if (idx >= cfg->n)
		idx = 0;
	st->cursor = idx + 1;
	idx += cfg->base;
	t = bpf_map_lookup_elem(&bench_ptemplates, &idx);
	if (!t)
		return XDP_ABORTED;
	len = t->len;
	if (len < 14 || len > BENCH_PFRAME_MAX)
		return XDP_ABORTED;
	cur = (__u32)(ctx->data_end - ctx->data);
	if (cur != len && bpf_xdp_adjust_tail(ctx, (int)len - (int)cur))
		return XDP_ABORTED;
	copy = len;
	if (copy > BENCH_FRAME_MAX)
		copy = BENCH_FRAME_MAX;
	if (bpf_xdp_store_bytes(ctx, 0, t->data, copy))
		return XDP_ABORTED;
	st->sent++;
	st->sent_bytes += len;
	if (!st->first_ps)
		st->first_ps = now;
	st->last_ps = now;
	return bpf_redirect_map(&bench_egress, t->egress, 0);
}

SEC("xdp")
int xdp_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	__u8 *eth = data, *ip;
	__u16 proto;
	int rc;

	if ((void *)(eth + 14) > end)
		return XDP_DROP;
	proto = *(__u16 *)(eth + 12);
	ip = eth + 14;
	if (proto == bpf_htons(0x0800)) {
		if ((void *)(ip + 20) > end)
			return XDP_DROP;
		if (ip[8] <= 1)
			return XDP_PASS;
		fib.family = AF_INET;
		fib.tos = ip[1];
		fib.l4_protocol = ip[9];
		fib.tot_len = bpf_ntohs(*(__u16 *)(ip + 2));
		fib.ipv4_src = *(__u32 *)(ip + 12);
		fib.ipv4_dst = *(__u32 *)(ip + 16);
	} else if (proto == bpf_htons(0x86dd)) {
		if ((void *)(ip + 40) > end)
			return XDP_DROP;
		if (ip[7] <= 1)
			return XDP_PASS;
		fib.family = AF_INET6;
		fib.flowinfo = *(__u32 *)ip & bpf_htonl(0x0fffffff);
		fib.l4_protocol = ip[6];
		fib.tot_len = bpf_ntohs(*(__u16 *)(ip + 4));
		__builtin_memcpy(fib.ipv6_src, ip + 8, 16);
		__builtin_memcpy(fib.ipv6_dst, ip + 24, 16);
	} else {
		return XDP_PASS;
	}
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	if (fib.family == AF_INET) {
		/* RFC 1624 eqn. 3 as Linux ip_decrease_ttl(). */
		__u32 check = *(__u16 *)(ip + 10);

		check += bpf_htons(0x0100);
		*(__u16 *)(ip + 10) = (__u16)(check + (check >= 0xffff));
		ip[8] -= 1;
	} else {
		ip[7] -= 1;
	}
	__builtin_memcpy(eth, fib.dmac, 6);
	__builtin_memcpy(eth + 6, fib.smac, 6);
	return bpf_redirect(fib.ifindex, 0);
}
