// SPDX-License-Identifier: Apache-2.0
/* Helpers without maps: XDP_PASS (so that veth peers deliver redirected frames) and the
 * swap-MAC XDP_TX baseline of the cost measurement. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_swap_mac(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	unsigned char *p = data, t[6];

	if ((void *)(p + 14) > end)
		return XDP_DROP;
	__builtin_memcpy(t, p, 6);
	__builtin_memcpy(p, p + 6, 6);
	__builtin_memcpy(p + 6, t, 6);
	return XDP_TX;
}
