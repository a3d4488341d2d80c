package xdp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func testGeo(t testing.TB) *geoip.Table {
	var b geoip.Builder
	add := func(p string, cc string) {
		c, err := geoip.ParseCountry(cc)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.AddPrefix(netip.MustParsePrefix(p), c); err != nil {
			t.Fatal(err)
		}
	}
	add("10.77.0.0/28", "DE")
	add("10.77.0.16/28", "US")
	add("2001:db8:cc::/48", "CN")
	add("2001:db8:de::/48", "DE")
	return b.Table()
}

// testPolicy is the policy of the table tests: the example listener
// and a few others around it.
func testPolicy(t testing.TB) *Policy {
	p, err := NewPolicy(Rules{
		GlobalDeny: pfx("198.51.100.0/24", "2001:db8:dead::/48"),
		Listeners: []ListenerRules{
			{
				Name:           "support",
				Listen:         netip.MustParseAddrPort("10.77.0.1:9001"),
				AllowCIDRs:     pfx("10.77.0.0/25"),
				DenyCIDRs:      pfx("10.77.0.64/26"),
				AllowCountries: []string{"DE", "FR"},
				PinToIP:        true,
				Pins:           []Pin{{IP: mustAddr("10.77.0.10")}, {IP: mustAddr("10.77.0.20"), NotAfter: time.Now().Add(time.Hour)}},
			},
			{
				Name:                "v6",
				Listen:              netip.MustParseAddrPort("[2001:db8:1::1]:443"),
				DenyCountries:       []string{"CN"},
				AllowUnknownCountry: true,
			},
			{
				Name:       "wildcard",
				Listen:     netip.MustParseAddrPort("0.0.0.0:7000"),
				AllowCIDRs: pfx("192.0.2.0/24"),
			},
		},
	}, testGeo(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type frameCase struct {
	name    string
	frame   []byte
	verdict Verdict
	reason  Reason
}

var (
	tcp  = layers.IPProtocolTCP
	udp  = layers.IPProtocolUDP
	icmp = layers.IPProtocolICMPv4
	q    = layers.EthernetTypeDot1Q
	ad   = layers.EthernetTypeQinQ
)

func hop(n int) ext   { return ext{typ: layers.IPProtocolIPv6HopByHop, n: n} }
func dst(n int) ext   { return ext{typ: layers.IPProtocolIPv6Destination, n: n} }
func route(n int) ext { return ext{typ: layers.IPProtocolIPv6Routing, n: n} }
func ah(n int) ext    { return ext{typ: layers.IPProtocolAH, n: n} }
func frag(off uint16, more bool) ext {
	return ext{typ: layers.IPProtocolIPv6Fragment, frag: off, more: more}
}

func mutate(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }

// frameCases covers every header shape the datapath parses, and the
// decision steps for each.
func frameCases() []frameCase {
	pass, drop := Pass, Drop
	to := func(src, dst string, proto layers.IPProtocol, port uint16) frameSpec {
		return frameSpec{src: src, dst: dst, proto: proto, dport: port, payload: 8}
	}
	with := func(s frameSpec, f func(*frameSpec)) []byte { f(&s); return craft(s) }
	pinned := to("10.77.0.10", "10.77.0.1", tcp, 9001)
	outside := to("10.77.1.5", "10.77.0.1", tcp, 9001)
	v6cn := to("2001:db8:cc::5", "2001:db8:1::1", tcp, 443)
	v6ok := to("2001:db8:2::5", "2001:db8:1::1", tcp, 443)
	arp := craft(pinned)
	arp[12], arp[13] = 0x08, 0x06
	return []frameCase{
		// decision steps, plain Ethernet + IPv4/TCP
		{"pinned DE source admitted", craft(pinned), pass, ReasonPass},
		{"global deny on any port", craft(to("198.51.100.7", "10.77.0.1", tcp, 22)), drop, ReasonGlobalDeny},
		{"global deny on ICMP", craft(to("198.51.100.7", "10.77.0.1", icmp, 0)), drop, ReasonGlobalDeny},
		{"listener deny CIDR inside allow", craft(to("10.77.0.70", "10.77.0.1", tcp, 9001)), drop, ReasonCIDR},
		{"outside listener allow CIDR", craft(outside), drop, ReasonCIDR},
		{"country not allowed (US)", craft(to("10.77.0.20", "10.77.0.1", tcp, 9001)), drop, ReasonCountry},
		{"unknown country denied", craft(to("10.77.0.40", "10.77.0.1", tcp, 9001)), drop, ReasonCountry},
		{"DE but not pinned", craft(to("10.77.0.11", "10.77.0.1", tcp, 9001)), drop, ReasonPin},
		{"UDP to the listener port is judged too", craft(to("10.77.1.5", "10.77.0.1", udp, 9001)), drop, ReasonCIDR},
		{"other port of the listener address", craft(to("10.77.1.5", "10.77.0.1", tcp, 22)), pass, ReasonPass},
		{"ICMP to the listener address", craft(to("10.77.1.5", "10.77.0.1", icmp, 0)), pass, ReasonPass},
		{"wildcard listener allows", craft(to("192.0.2.9", "10.9.9.9", tcp, 7000)), pass, ReasonPass},
		{"wildcard listener denies", craft(to("10.77.0.10", "10.9.9.9", tcp, 7000)), drop, ReasonCIDR},
		{"v4 wildcard does not cover IPv6", craft(to("2001:db8:2::5", "2001:db8:9::9", tcp, 7000)), pass, ReasonPass},
		{"non-IP (ARP) passes", arp, pass, ReasonPass},
		// VLAN shapes
		{"802.1Q pinned", with(pinned, func(s *frameSpec) { s.tags = []layers.EthernetType{q} }), pass, ReasonPass},
		{"802.1Q outside", with(outside, func(s *frameSpec) { s.tags = []layers.EthernetType{q} }), drop, ReasonCIDR},
		{"QinQ 802.1ad+802.1Q outside", with(outside, func(s *frameSpec) { s.tags = []layers.EthernetType{ad, q} }), drop, ReasonCIDR},
		{"QinQ pinned", with(pinned, func(s *frameSpec) { s.tags = []layers.EthernetType{ad, q} }), pass, ReasonPass},
		{"three VLAN tags", with(pinned, func(s *frameSpec) { s.tags = []layers.EthernetType{ad, q, q} }), drop, ReasonMalformed},
		{"802.1Q IPv6 country", with(v6cn, func(s *frameSpec) { s.tags = []layers.EthernetType{q} }), drop, ReasonCountry},
		// IPv4 fragments
		{"v4 first fragment judged by ports", with(outside, func(s *frameSpec) { s.v4More = true }), drop, ReasonCIDR},
		{"v4 later fragment from outside", with(outside, func(s *frameSpec) { s.v4Frag = 100 }), drop, ReasonCIDR},
		{"v4 later fragment from pinned", with(pinned, func(s *frameSpec) { s.v4Frag = 100 }), pass, ReasonPass},
		{"v4 later fragment admitted by wildcard listener", with(to("192.0.2.9", "10.77.0.1", tcp, 0), func(s *frameSpec) { s.v4Frag = 3 }), pass, ReasonPass},
		{"v4 later fragment globally denied", with(to("198.51.100.7", "10.8.0.1", udp, 0), func(s *frameSpec) { s.v4Frag = 3 }), drop, ReasonGlobalDeny},
		{"v4 later fragment to an address without listener", with(to("10.77.1.5", "2001:db8:9::9", udp, 0), func(s *frameSpec) { s.src = "2001:db8:2::1"; s.exts = []ext{frag(9, false)} }), pass, ReasonPass},
		// IPv6 and extension headers
		{"v6 denied country", craft(v6cn), drop, ReasonCountry},
		{"v6 unknown country allowed", craft(v6ok), pass, ReasonPass},
		{"v6 global deny", craft(to("2001:db8:dead::1", "2001:db8:1::1", tcp, 443)), drop, ReasonGlobalDeny},
		{"v6 hop-by-hop", with(v6cn, func(s *frameSpec) { s.exts = []ext{hop(0)} }), drop, ReasonCountry},
		{"v6 hop+dst+routing+dst", with(v6cn, func(s *frameSpec) { s.exts = []ext{hop(1), dst(0), route(2), dst(0)} }), drop, ReasonCountry},
		{"v6 AH", with(v6cn, func(s *frameSpec) { s.exts = []ext{ah(1)} }), drop, ReasonCountry},
		{"v6 ext chain passes", with(v6ok, func(s *frameSpec) { s.exts = []ext{hop(0), route(0), ah(0), dst(1)} }), pass, ReasonPass},
		{"v6 first fragment", with(v6cn, func(s *frameSpec) { s.exts = []ext{frag(0, true)} }), drop, ReasonCountry},
		{"v6 later fragment", with(v6cn, func(s *frameSpec) { s.exts = []ext{hop(0), frag(64, true)} }), drop, ReasonCountry},
		{"v6 later fragment allowed", with(v6ok, func(s *frameSpec) { s.exts = []ext{frag(64, false)} }), pass, ReasonPass},
		{"v6 8 extension headers", with(v6cn, func(s *frameSpec) {
			s.exts = []ext{hop(0), dst(0), dst(0), dst(0), dst(0), dst(0), dst(0), dst(0)}
		}), drop, ReasonCountry},
		{"v6 9 extension headers", with(v6ok, func(s *frameSpec) {
			s.exts = []ext{hop(0), dst(0), dst(0), dst(0), dst(0), dst(0), dst(0), dst(0), dst(0)}
		}), drop, ReasonMalformed},
		// truncated and malformed
		{"Ethernet only, IPv4 type", craft(pinned)[:14], drop, ReasonMalformed},
		{"IPv4 header cut", craft(pinned)[:14+19], drop, ReasonMalformed},
		{"TCP ports cut", craft(to("10.77.0.10", "10.77.0.1", tcp, 9001))[:14+20+3], drop, ReasonMalformed},
		{"IPv4 total length past the frame", mutate(craft(pinned), func(b []byte) []byte { b[14+2], b[14+3] = 0x05, 0xdc; return b }), drop, ReasonMalformed},
		{"IPv4 IHL 4", mutate(craft(pinned), func(b []byte) []byte { b[14] = 0x44; return b }), drop, ReasonMalformed},
		{"IPv4 IHL past total length", mutate(craft(pinned), func(b []byte) []byte { b[14] = 0x4f; return b }), drop, ReasonMalformed},
		{"version 6 in an IPv4 ethertype", mutate(craft(pinned), func(b []byte) []byte { b[14] = 0x65; return b }), drop, ReasonMalformed},
		{"v4 first fragment without ports", mutate(with(outside, func(s *frameSpec) { s.v4More = true; s.payload = 0 }), func(b []byte) []byte {
			b[14+2], b[14+3] = 0, 22 // total length: header + 2 bytes
			return b
		}), drop, ReasonMalformed},
		{"VLAN tag cut", with(pinned, func(s *frameSpec) { s.tags = []layers.EthernetType{q} })[:16], drop, ReasonMalformed},
		{"IPv6 header cut", craft(v6ok)[:14+39], drop, ReasonMalformed},
		{"IPv6 payload length past frame", mutate(craft(v6ok), func(b []byte) []byte { b[14+4] = 0x10; return b }), drop, ReasonMalformed},
		{"IPv6 ext header past payload", mutate(with(v6ok, func(s *frameSpec) { s.exts = []ext{hop(0)}; s.payload = 0 }), func(b []byte) []byte {
			b[14+40+1] = 30 // hop-by-hop claims 248 bytes
			return b
		}), drop, ReasonMalformed},
		{"IPv6 TCP ports cut", mutate(craft(v6ok), func(b []byte) []byte { b[14+4], b[14+5] = 0, 2; return b[:14+42] }), drop, ReasonMalformed},
		{"runt frame", []byte{1, 2, 3}, pass, ReasonPass},
		// An IPv6 source that is IPv4-mapped would be judged as the IPv4
		// address it names (here a pinned DE one) while it reaches the IPv6
		// stack: never on the wire, so dropped.
		{"IPv6 with an IPv4-mapped source", craft(to("::ffff:10.77.0.10", "2001:db8:1::1", tcp, 443)), drop, ReasonMalformed},
		{"IPv6 with an IPv4-mapped source, ICMP", craft(to("::ffff:192.0.2.9", "2001:db8:9::9", layers.IPProtocolICMPv6, 0)), drop, ReasonMalformed},
		{"IPv6 with an IPv4-compatible-looking source", craft(to("::10.77.0.10", "2001:db8:1::1", tcp, 443)), pass, ReasonPass},
	}
}

func TestDecideTable(t *testing.T) {
	p := testPolicy(t)
	for _, c := range frameCases() {
		v, r := p.Decide(c.frame)
		if v != c.verdict || r != c.reason {
			t.Errorf("%s: Decide = %v/%v, want %v/%v", c.name, v, r, c.verdict, c.reason)
		}
	}
}

func TestAllow(t *testing.T) {
	p := testPolicy(t)
	cases := []struct {
		src, dst string
		ok       bool
		reason   Reason
	}{
		{"10.77.0.10", "10.77.0.1:9001", true, ReasonPass},
		{"::ffff:10.77.0.10", "[::ffff:10.77.0.1]:9001", true, ReasonPass},
		{"10.77.0.11", "10.77.0.1:9001", false, ReasonPin},
		{"10.77.0.20", "10.77.0.1:9001", false, ReasonCountry},
		{"10.77.1.5", "10.77.0.1:9001", false, ReasonCIDR},
		{"198.51.100.1", "10.77.0.1:443", false, ReasonGlobalDeny},
		{"2001:db8:cc::1", "[2001:db8:1::1]:443", false, ReasonCountry},
		{"2001:db8:de::1", "[2001:db8:1::1]:443", true, ReasonPass},
	}
	if ok, r := p.Allow(netip.Addr{}, netip.MustParseAddrPort("10.77.0.1:9001")); ok || r != ReasonMalformed {
		t.Errorf("Allow(invalid) = %v/%v", ok, r)
	}
	for _, c := range cases {
		ok, r := p.Allow(mustAddr(c.src), netip.MustParseAddrPort(c.dst))
		if ok != c.ok || r != c.reason {
			t.Errorf("Allow(%s → %s) = %v/%v, want %v/%v", c.src, c.dst, ok, r, c.ok, c.reason)
		}
	}
}

func TestNewPolicyRejects(t *testing.T) {
	cases := map[string]Rules{
		"both country lists": {Listeners: []ListenerRules{{Name: "a", Listen: netip.MustParseAddrPort("10.0.0.1:1"), AllowCountries: []string{"DE"}, DenyCountries: []string{"FR"}}}},
		"bad country":        {Listeners: []ListenerRules{{Name: "a", Listen: netip.MustParseAddrPort("10.0.0.1:1"), AllowCountries: []string{"Germany"}}}},
		"zero port":          {Listeners: []ListenerRules{{Name: "a", Listen: netip.MustParseAddrPort("10.0.0.1:0")}}},
		"duplicate listener": {Listeners: []ListenerRules{{Name: "a", Listen: netip.MustParseAddrPort("10.0.0.1:1")}, {Name: "b", Listen: netip.MustParseAddrPort("10.0.0.1:1")}}},
		"pins without pin":   {Listeners: []ListenerRules{{Name: "a", Listen: netip.MustParseAddrPort("10.0.0.1:1"), Pins: []Pin{{IP: mustAddr("10.0.0.2")}}}}},
		"invalid prefix":     {GlobalDeny: []netip.Prefix{{}}},
	}
	for name, r := range cases {
		if _, err := NewPolicy(r, nil); err == nil {
			t.Errorf("%s: NewPolicy accepted it", name)
		}
	}
	var many []ListenerRules
	for i := range MaxListenersPerAddr + 1 {
		many = append(many, ListenerRules{Name: "x", Listen: netip.AddrPortFrom(mustAddr("10.0.0.1"), uint16(1000+i))})
	}
	if _, err := NewPolicy(Rules{Listeners: many}, nil); err == nil {
		t.Errorf("NewPolicy accepted %d listeners on one address", len(many))
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.77.0.5/25", "2001:db8::1", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := pfx("10.77.0.0/25", "2001:db8::1/128", "192.0.2.1/32")
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParsePrefixes[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "10.0.0.0/33") {
		t.Errorf("bad prefix: %v", err)
	}
}
