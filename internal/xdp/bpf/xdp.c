//go:build ignore

// Portcullis XDP datapath: drops packets from sources that must not reach
// the appliance before the kernel allocates anything for them.
//
// The decision order is documented in ../doc.go and mirrored, step by step,
// by the Go reference model in ../decide.go. Keep both in lockstep.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_DSTOPTS 60

#define MAX_VLAN 2
#define MAX_EXT 8
#define MAX_FRAG_PORTS 16
#define COUNTRY_WORDS 32 // 676 codes need 22; 32 lets the index be masked

// Reasons; also the index of the per-CPU counters. Keep in sync with reason.go.
enum reason {
	R_PASS = 0,
	R_GLOBAL = 1,
	R_CIDR = 2,
	R_COUNTRY = 3,
	R_PIN = 4,
	R_MALFORMED = 5,
	R_MAX = 6,
};

// Flags stored in CIDR trie values (global and per listener). The value of a
// prefix carries the flags of every listed prefix that covers it, so one
// longest-prefix lookup answers both "is any deny prefix covering the source"
// and "is any allow prefix covering it".
#define CIDR_DENY 1
#define CIDR_ALLOW 2

// settings.flags
#define S_GLOBAL_ALLOW 1

// rule.flags
#define L_ALLOW_CIDR 1
#define L_ALLOW_COUNTRY 2
#define L_DENY_COUNTRY 4
#define L_UNKNOWN_ALLOW 8
#define L_PIN 16

struct addr_key {
	__u32 prefixlen;
	__u8 addr[16]; // IPv4 as ::ffff:a.b.c.d
};

struct lcidr_key {
	__u32 prefixlen; // 32 + prefix length in the 128-bit space
	__u32 lid;       // listener id, network byte order
	__u8 addr[16];
};

struct listener_key {
	__u8 addr[16]; // unspecified (:: or ::ffff:0.0.0.0) = every address of that family
	__u16 port;    // host byte order
	__u16 pad;
};

struct pin_key {
	__u32 lid;
	__u8 addr[16];
};

struct rule {
	__u32 id;
	__u32 flags;
	__u32 countries[COUNTRY_WORDS]; // bit c set: country code c (1..676) listed
};

struct frag_ports {
	__u32 n;
	__u16 ports[MAX_FRAG_PORTS];
};

struct settings {
	__u32 flags;
};

// IPv4 country table, DIR-24-8: geo24 holds, per /24, the country or
// G_GROUP|group when the /24 holds longer prefixes; geo8[group] holds the
// country per last octet. Entries are packed into 4 KiB array values (array
// maps round every value up to 8 bytes). Chosen over the LPM trie by
// BenchmarkCountryLookup: flat ~50 ns vs 280 ns (10k) to 1.5 us (1M).
#define G_GROUP 0x80000000
#define PAGE24 1024

struct page24 {
	__u32 e[PAGE24];
};

struct group8 {
	__u16 e[256];
};

struct config {
	__u32 seq; // active slot = seq & 1
};

// Inner map templates. max_entries of real inner maps is set per policy.
struct global_lpm {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct addr_key));
	__uint(value_size, sizeof(__u8));
};

struct geo24_arr {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP); // size varies with the table
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct page24));
};

struct geo8_arr {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct group8));
};

struct geo_lpm {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct addr_key));
	__uint(value_size, sizeof(__u16));
};

struct lcidr_lpm {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct lcidr_key));
	__uint(value_size, sizeof(__u8));
};

struct listener_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct listener_key));
	__uint(value_size, sizeof(struct rule));
};

struct pin_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct pin_key));
	__uint(value_size, sizeof(__u8));
};

struct frag_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct addr_key));
	__uint(value_size, sizeof(struct frag_ports));
};

// Double-buffered policy: slot seq&1 of every outer map is the live policy.
// Userspace fills fresh inner maps into the other slot, then bumps seq.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct global_lpm);
} global_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct geo_lpm);
} geo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct geo24_arr);
} geo24 SEC(".maps");

// Global CIDR flags for IPv4 sources, DIR-24-8 like geo24/geo8 (the IPv6
// ones are in global_cidrs). Flat cost instead of an LPM walk that grows
// with the list (BenchmarkProgram/globaldeny).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct geo24_arr);
} global24 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct geo8_arr);
} global8 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct geo8_arr);
} geo8 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct lcidr_lpm);
} listener_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct listener_hash);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct pin_hash);
} pins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct frag_hash);
} frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct settings);
} slot_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct pkt {
	__u8 src[16];
	__u8 dst[16];
	__u16 dport;
	__u8 v4;
	__u8 has_port;
	__u8 later_frag; // fragment with a non-zero offset: no transport header
};

struct maps {
	__u32 slot;
	void *global;
	void *geo;
	void *geo24;
	void *geo8;
	void *global24;
	void *global8;
	void *lcidr;
	void *listeners;
	void *pins;
	void *frags;
	__u32 sflags;
};

enum parse_result {
	P_IP = 0,
	P_OTHER = 1,     // not IPv4/IPv6: passed
	P_MALFORMED = 2, // IP ethertype but unparseable or truncated: dropped
};

static __always_inline void map4(__u8 *dst, const __u8 *src)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, src, 4);
}

static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *c = data;

	if ((void *)(c + 14) > end)
		return P_OTHER; // too short for Ethernet: nothing IP to judge
	__u16 proto = ((__u16)c[12] << 8) | c[13];
	c += 14;

#pragma unroll
	for (int i = 0; i < MAX_VLAN; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if ((void *)(c + 4) > end)
			return P_MALFORMED;
		proto = ((__u16)c[2] << 8) | c[3];
		c += 4;
	}
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD)
		return P_MALFORMED; // more tags than we parse

	__u8 nexthdr;
	if (proto == ETH_P_IP) {
		if ((void *)(c + 20) > end)
			return P_MALFORMED;
		if ((c[0] >> 4) != 4)
			return P_MALFORMED;
		__u32 ihl = (c[0] & 0x0f) * 4;
		if (ihl < 20)
			return P_MALFORMED;
		__u32 tot = ((__u32)c[2] << 8) | c[3];
		if (tot < ihl)
			return P_MALFORMED;
		if ((void *)(c + tot) > end || (void *)(c + ihl) > end)
			return P_MALFORMED;
		p->v4 = 1;
		map4(p->src, c + 12);
		map4(p->dst, c + 16);
		__u16 frag = ((__u16)c[6] << 8) | c[7];
		nexthdr = c[9];
		if (frag & 0x1fff) {
			p->later_frag = 1;
			return P_IP;
		}
		if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
			return P_IP;
		if (tot < ihl + 4)
			return P_MALFORMED; // transport ports not in the (first) fragment
		c += ihl;
		if ((void *)(c + 4) > end)
			return P_MALFORMED;
		p->dport = ((__u16)c[2] << 8) | c[3];
		p->has_port = 1;
		return P_IP;
	}
	if (proto != ETH_P_IPV6)
		return P_OTHER;

	if ((void *)(c + 40) > end)
		return P_MALFORMED;
	if ((c[0] >> 4) != 6)
		return P_MALFORMED;
	__u32 plen = ((__u32)c[4] << 8) | c[5];
	if ((void *)(c + 40 + plen) > end)
		return P_MALFORMED;
	void *ipend = c + 40 + plen;
	// An IPv4-mapped source never appears on the wire (RFC 4291 2.5.5.2);
	// judged as the IPv4 address it names, it would pass IPv4 allow lists
	// and pins while reaching the IPv6 stack.
	{
		__u64 hi;
		__u32 mid;
		__builtin_memcpy(&hi, c + 8, 8);
		__builtin_memcpy(&mid, c + 16, 4);
		if (hi == 0 && mid == bpf_htonl(0x0000ffff))
			return P_MALFORMED;
	}
	__builtin_memcpy(p->src, c + 8, 16);
	__builtin_memcpy(p->dst, c + 24, 16);
	nexthdr = c[6];
	c += 40;

	for (int i = 0; i < MAX_EXT; i++) {
		__u32 len;
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(c + 2) > ipend || (void *)(c + 2) > end)
				return P_MALFORMED;
			len = ((__u32)c[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(c + 2) > ipend || (void *)(c + 2) > end)
				return P_MALFORMED;
			len = ((__u32)c[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(c + 8) > ipend || (void *)(c + 8) > end)
				return P_MALFORMED;
			if ((((__u16)c[2] << 8) | c[3]) & 0xfff8) {
				p->later_frag = 1;
				return P_IP;
			}
			len = 8;
			break;
		default:
			goto upper;
		}
		nexthdr = c[0];
		c += len;
		if ((void *)c > ipend)
			return P_MALFORMED;
	}
	if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS ||
	    nexthdr == IPPROTO_AH || nexthdr == IPPROTO_FRAGMENT)
		return P_MALFORMED; // longer extension chain than we parse

upper:
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP)
		return P_IP;
	if ((void *)(c + 4) > ipend || (void *)(c + 4) > end)
		return P_MALFORMED;
	p->dport = ((__u16)c[2] << 8) | c[3];
	p->has_port = 1;
	return P_IP;
}

static __always_inline int load_maps(struct maps *m)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return -1;
	// Seqlock-style read: the slot we read must not have been republished
	// while we fetched its maps. Userspace only writes the inactive slot.
	for (int i = 0; i < 3; i++) {
		__u32 s1 = *(volatile __u32 *)&cfg->seq;
		__u32 slot = s1 & 1;
		m->slot = slot;
		m->global = bpf_map_lookup_elem(&global_cidrs, &slot);
		m->geo = bpf_map_lookup_elem(&geo, &slot);
		m->geo24 = bpf_map_lookup_elem(&geo24, &slot);
		m->geo8 = bpf_map_lookup_elem(&geo8, &slot);
		m->global24 = bpf_map_lookup_elem(&global24, &slot);
		m->global8 = bpf_map_lookup_elem(&global8, &slot);
		m->lcidr = bpf_map_lookup_elem(&listener_cidrs, &slot);
		m->listeners = bpf_map_lookup_elem(&listeners, &slot);
		m->pins = bpf_map_lookup_elem(&pins, &slot);
		m->frags = bpf_map_lookup_elem(&frags, &slot);
		struct settings *s = bpf_map_lookup_elem(&slot_settings, &slot);
		m->sflags = s ? s->flags : 0;
		if (*(volatile __u32 *)&cfg->seq == s1)
			break;
	}
	// Userspace fills every map of a slot before publishing it; a missing
	// one means no policy was published yet.
	if (!m->global || !m->geo || !m->geo24 || !m->geo8 || !m->global24 || !m->global8 || !m->lcidr || !m->listeners || !m->pins || !m->frags)
		return -1;
	return 0;
}

static __always_inline int is_v4mapped(const __u8 *a)
{
	__u64 hi;
	__u32 mid;
	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == bpf_htonl(0x0000ffff);
}

// dir_lookup reads a DIR-24-8 table for the IPv4 address in src[12..15].
static __always_inline __u32 dir_lookup(void *t24, void *t8, const __u8 *src)
{
	__u32 a24 = ((__u32)src[12] << 16) | ((__u32)src[13] << 8) | src[14];
	__u32 page = a24 / PAGE24;
	struct page24 *p = bpf_map_lookup_elem(t24, &page);
	if (!p)
		return 0;
	__u32 c = p->e[a24 & (PAGE24 - 1)];
	if (c & G_GROUP) {
		__u32 g = c & ~G_GROUP;
		struct group8 *grp = bpf_map_lookup_elem(t8, &g);
		c = grp ? grp->e[src[15]] : 0;
	}
	return c;
}

// country_of: IPv4 (mapped) sources use the DIR-24-8 table, IPv6 ones the
// LPM trie. 0 = unknown.
static __always_inline __u32 country_of(struct maps *m, const __u8 *src, int src4)
{
	if (src4)
		return dir_lookup(m->geo24, m->geo8, src);
	struct addr_key k = {.prefixlen = 128};
	__builtin_memcpy(k.addr, src, 16);
	__u16 *cc = bpf_map_lookup_elem(m->geo, &k);
	return cc ? *cc : 0;
}

struct addr16 {
	__u8 a[16];
};

// eval_rule applies a listener's rules (steps 5a-5d); cc is the source's
// country, read only when the listener has a country list. A global
// function: the verifier checks it once, not once per call site and loop
// iteration. It fetches the slot's maps itself (an inner map cannot be an
// argument); the slot cannot be rewritten while a program runs, since every
// inner-map replacement waits for running programs (synchronize_rcu).
__attribute__((noinline)) int eval_rule(__u32 slot, const struct rule *r, const struct addr16 *src, __u32 cc)
{
	if (!r || !src)
		return R_PASS;
	void *lcidr = bpf_map_lookup_elem(&listener_cidrs, &slot);
	void *pinmap = bpf_map_lookup_elem(&pins, &slot);
	if (!lcidr || !pinmap)
		return R_PASS;
	__u32 flags = r->flags;
	__u8 cf = 0;
	struct lcidr_key lk = {.prefixlen = 32 + 128, .lid = bpf_htonl(r->id)};
	__builtin_memcpy(lk.addr, src->a, 16);
	__u8 *v = bpf_map_lookup_elem(lcidr, &lk);
	if (v)
		cf = *v;
	if (cf & CIDR_DENY)
		return R_CIDR;
	if ((flags & L_ALLOW_CIDR) && !(cf & CIDR_ALLOW))
		return R_CIDR;
	if (flags & (L_ALLOW_COUNTRY | L_DENY_COUNTRY)) {
		if (cc == 0 || cc > 676) {
			if (!(flags & L_UNKNOWN_ALLOW))
				return R_COUNTRY;
		} else {
			// The mask is redundant for the compiler (cc <= 676), which
			// drops it, but not for the verifier: force it.
			__u32 w = cc >> 5;
			asm volatile("%0 &= 31" : "+r"(w));
			int listed = (r->countries[w] >> (cc & 31)) & 1;
			if ((flags & L_ALLOW_COUNTRY) && !listed)
				return R_COUNTRY;
			if ((flags & L_DENY_COUNTRY) && listed)
				return R_COUNTRY;
		}
	}
	if (flags & L_PIN) {
		struct pin_key k = {.lid = r->id};
		__builtin_memcpy(k.addr, src->a, 16);
		if (!bpf_map_lookup_elem(pinmap, &k))
			return R_PIN;
	}
	return R_PASS;
}

static __always_inline struct rule *find_listener(struct maps *m, struct pkt *p, __u16 port)
{
	struct listener_key k = {.port = port};
	__builtin_memcpy(k.addr, p->dst, 16);
	struct rule *r = bpf_map_lookup_elem(m->listeners, &k);
	if (r)
		return r;
	__builtin_memset(k.addr, 0, 16);
	if (p->v4) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
	}
	return bpf_map_lookup_elem(m->listeners, &k);
}

static __always_inline int decide(struct pkt *p)
{
	struct maps m = {};
	if (load_maps(&m) < 0)
		return R_PASS;

	int src4 = is_v4mapped(p->src);
	__u32 gf = 0;
	if (src4) {
		gf = dir_lookup(m.global24, m.global8, p->src);
	} else {
		struct addr_key gk = {.prefixlen = 128};
		__builtin_memcpy(gk.addr, p->src, 16);
		__u8 *gv = bpf_map_lookup_elem(m.global, &gk);
		if (gv)
			gf = *gv;
	}
	if (gf & CIDR_DENY)
		return R_GLOBAL;
	if ((m.sflags & S_GLOBAL_ALLOW) && !(gf & CIDR_ALLOW))
		return R_GLOBAL;

	if (p->has_port) {
		struct rule *r = find_listener(&m, p, p->dport);
		if (!r)
			return R_PASS;
		__u32 cc = 0;
		if (r->flags & (L_ALLOW_COUNTRY | L_DENY_COUNTRY))
			cc = country_of(&m, p->src, src4);
		return eval_rule(m.slot, r, (const struct addr16 *)p->src, cc);
	}
	if (!p->later_frag)
		return R_PASS;

	// A later fragment carries no ports: admit it only if the source would be
	// admitted by at least one listener that serves its destination address.
	struct addr_key fk = {};
	__builtin_memcpy(fk.addr, p->dst, 16);
	struct frag_ports *fp = bpf_map_lookup_elem(m.frags, &fk);
	if (!fp) {
		__builtin_memset(fk.addr, 0, 16);
		if (p->v4) {
			fk.addr[10] = 0xff;
			fk.addr[11] = 0xff;
		}
		fp = bpf_map_lookup_elem(m.frags, &fk);
	}
	if (!fp)
		return R_PASS;
	__u32 cc = country_of(&m, p->src, src4);
	int first = R_PASS;
	for (int i = 0; i < MAX_FRAG_PORTS; i++) {
		if (i >= fp->n)
			break;
		struct rule *r = find_listener(&m, p, fp->ports[i]);
		if (!r)
			continue;
		int res = eval_rule(m.slot, r, (const struct addr16 *)p->src, cc);
		if (res == R_PASS)
			return R_PASS;
		if (first == R_PASS)
			first = res;
	}
	return first;
}

static __always_inline void count(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &reason);
	if (n)
		*n += 1;
}

SEC("xdp")
int portcullis_xdp(struct xdp_md *ctx)
{
	struct pkt p = {};
	int pr = parse(ctx, &p);
	if (pr == P_OTHER) {
		count(R_PASS);
		return XDP_PASS;
	}
	if (pr == P_MALFORMED) {
		count(R_MALFORMED);
		return XDP_DROP;
	}
	int reason = decide(&p);
	count(reason);
	return reason == R_PASS ? XDP_PASS : XDP_DROP;
}
