//go:build ignore

// Lookup-structure benchmark for the country table: the kernel LPM trie
// (as used by xdp.c, 128-bit keys) against a DIR-24-8 flat table for IPv4.
// Each run looks up BATCH different random addresses, so the figures are not
// those of one cached key. Not part of the datapath.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define BATCH 64
#define NKEYS (1 << 16)
#define TBL8_GROUPS 131072

struct addr_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NKEYS);
	__type(key, __u32);
	__type(value, __u32); // IPv4 address, host byte order
} bench_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32); // [0] cursor into bench_keys, [1] checksum of results
} bench_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 << 20);
	__type(key, struct addr_key);
	__type(value, __u16);
} bench_lpm SEC(".maps");

// DIR-24-8, laid out as in xdp.c: tbl24 holds, per /24, the country or
// 0x80000000|group when the /24 contains longer prefixes; the group's 256
// entries hold the country per address. Entries are packed into 4 KiB array
// values (array maps round each value up to 8 bytes).
struct page24 {
	__u32 e[1024];
};

struct group8 {
	__u16 e[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 14);
	__type(key, __u32);
	__type(value, struct page24);
} tbl24 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TBL8_GROUPS);
	__type(key, __u32);
	__type(value, struct group8);
} tbl8 SEC(".maps");

static __always_inline __u32 *state(__u32 i)
{
	return bpf_map_lookup_elem(&bench_state, &i);
}

SEC("xdp")
int bench_lpm_lookup(struct xdp_md *ctx)
{
	__u32 *cur = state(0), *sum = state(1);
	if (!cur || !sum)
		return XDP_ABORTED;
	__u32 base = *cur;
	*cur = base + BATCH;
	for (int i = 0; i < BATCH; i++) {
		__u32 idx = (base + i) & (NKEYS - 1);
		__u32 *a = bpf_map_lookup_elem(&bench_keys, &idx);
		if (!a)
			continue;
		struct addr_key k = {.prefixlen = 128};
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		k.addr[12] = *a >> 24;
		k.addr[13] = *a >> 16;
		k.addr[14] = *a >> 8;
		k.addr[15] = *a;
		__u16 *v = bpf_map_lookup_elem(&bench_lpm, &k);
		if (v)
			*sum += *v;
	}
	return XDP_PASS;
}

SEC("xdp")
int bench_dir248_lookup(struct xdp_md *ctx)
{
	__u32 *cur = state(0), *sum = state(1);
	if (!cur || !sum)
		return XDP_ABORTED;
	__u32 base = *cur;
	*cur = base + BATCH;
	for (int i = 0; i < BATCH; i++) {
		__u32 idx = (base + i) & (NKEYS - 1);
		__u32 *a = bpf_map_lookup_elem(&bench_keys, &idx);
		if (!a)
			continue;
		__u32 a24 = *a >> 8;
		__u32 page = a24 >> 10;
		struct page24 *p = bpf_map_lookup_elem(&tbl24, &page);
		if (!p)
			continue;
		__u32 c = p->e[a24 & 1023];
		if (c & 0x80000000) {
			__u32 g = c & 0x7fffffff;
			struct group8 *grp = bpf_map_lookup_elem(&tbl8, &g);
			c = grp ? grp->e[*a & 0xff] : 0;
		}
		*sum += c;
	}
	return XDP_PASS;
}
