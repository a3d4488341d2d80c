// Package xdp enforces Portcullis network rules at the NIC with an XDP
// program, and offers the very same decision in userspace for the gateway
// (defence in depth, and the fallback when XDP cannot be attached).
//
// # Decision order
//
// The kernel program (bpf/xdp.c) and the Go reference model (Policy.Decide,
// Policy.Allow) take the same steps in the same order. IPv4 addresses are
// handled as IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) throughout, so an
// IPv4 prefix also matches the mapped form of its addresses.
//
//  1. Parse. Ethernet, up to two VLAN tags (802.1Q 0x8100 or 802.1ad 0x88A8),
//     then IPv4 or IPv6. IPv6 extension headers (hop-by-hop, routing,
//     destination options, AH, fragment) are followed, at most 8 of them.
//     - A frame too short for Ethernet, or with another ethertype (ARP, LLDP,
//     ...): PASS, counted as "pass".
//     - An IP frame that is truncated or malformed (bad version, IHL < 5,
//     total/payload length past the frame, a third VLAN tag, a longer
//     extension chain, a TCP/UDP first fragment without its ports, an IPv6
//     source that is IPv4-mapped, which would otherwise be judged as the
//     IPv4 address it names): DROP, counted as "malformed".
//  2. Global deny list: the source is inside any global deny prefix: DROP
//     "global_deny". Applies to every IP packet, every fragment, every port.
//  3. Global allow list: if the list is non-empty and the source is inside
//     none of its prefixes: DROP "global_deny".
//  4. Listener: for a TCP or UDP packet (unfragmented or first fragment),
//     look up the listener by (destination address, destination port), then
//     by (unspecified address of the family, port). No listener: PASS.
//     A later fragment (non-zero offset) carries no ports: it is admitted if
//     its source is admitted by at least one listener serving its
//     destination address (or the unspecified address); otherwise it gets
//     the reason of the first such listener in port order. An address with
//     no listeners: PASS. Other protocols (ICMP, ...): PASS.
//  5. Listener rules, in order:
//     a. the source is inside a listener deny prefix: DROP "cidr";
//     b. the listener has allow prefixes and the source is inside none: DROP "cidr";
//     c. the listener has allow (or deny) countries: the source's country,
//     from the imported GeoIP table, must be listed (must not be listed);
//     an address of unknown country is admitted only if the listener's
//     UnknownCountry rule allows it: else DROP "country";
//     d. the listener pins credentials to client IPs: the source must be one
//     of the pinned IPs of currently valid credentials: else DROP "pin";
//     e. PASS.
//
// # Lookup structures
//
// IPv4 sources are looked up in flat DIR-24-8 tables (one array read per
// /24, a second for /24s split into longer prefixes) for the country and for
// the global CIDR lists; IPv6 sources and per-listener CIDRs use LPM tries.
// BenchmarkCountryLookup measured the kernel LPM trie at 280 ns (10k
// prefixes), 750 ns (100k) and 1.5 us (1M) per lookup with random keys,
// against a flat ~50 ns for DIR-24-8; an IPv4 table costs 64 MiB of kernel
// memory when it spans the whole address space (less for sparse ones).
//
// # Atomic policy changes
//
// Every policy map exists twice, in slot 0 and slot 1 of an array-of-maps.
// The live slot is seq&1 in the config map. Update builds fresh inner maps,
// stores them in the idle slot and then bumps seq, so a packet sees either
// the whole old or the whole new policy; the program re-reads seq after
// fetching its maps and retries if it changed. Only inner maps whose content
// changed are replaced, because the kernel waits for an RCU grace period on
// each replacement: a pin added or revoked costs one (~15-20 ms here).
package xdp
