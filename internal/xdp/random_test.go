package xdp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

// Random policies and frames over a deliberately small address space, so
// that prefixes, pins and countries actually hit the generated sources.

func randV4(r *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(256))})
}

func randV6(r *rand.Rand) netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[5] = byte(r.IntN(3))
	b[7] = byte(r.IntN(4))
	b[15] = byte(r.IntN(256))
	return netip.AddrFrom16(b)
}

func randAddr(r *rand.Rand, v4 bool) netip.Addr {
	if v4 {
		return randV4(r)
	}
	return randV6(r)
}

func randPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(40) == 0 { // IPv6 prefixes that cover all of IPv4 (::ffff:0:0/96)
		return netip.PrefixFrom(netip.IPv6Unspecified(), []int{0, 8, 64, 80}[r.IntN(4)])
	}
	if r.IntN(2) == 0 {
		p, _ := randV4(r).Prefix(8 + r.IntN(25))
		return p
	}
	p, _ := randV6(r).Prefix(16 + r.IntN(113))
	return p
}

func randPrefixes(r *rand.Rand, max int) []netip.Prefix {
	var out []netip.Prefix
	for range r.IntN(max + 1) {
		out = append(out, randPrefix(r))
	}
	return out
}

var randCountries = []string{"DE", "FR", "US", "CN", "RU"}

func randCountryList(r *rand.Rand) []string {
	var out []string
	for _, c := range randCountries {
		if r.IntN(3) == 0 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = append(out, randCountries[r.IntN(len(randCountries))])
	}
	return out
}

var randDsts = []string{"10.1.0.1", "10.1.0.2", "2001:db8:1:1::1", "2001:db8:1:1::2", "0.0.0.0", "::"}
var randPorts = []uint16{80, 443, 7000, 9001}

func randGeo(r *rand.Rand) *geoip.Table {
	var b geoip.Builder
	for range r.IntN(40) {
		c, _ := geoip.ParseCountry(randCountries[r.IntN(len(randCountries))])
		if r.IntN(8) == 0 {
			c = geoip.Unknown
		}
		if err := b.AddPrefix(randPrefix(r), c); err != nil {
			panic(err)
		}
	}
	return b.Table()
}

func randRules(r *rand.Rand) Rules {
	rules := Rules{GlobalDeny: randPrefixes(r, 3)}
	if r.IntN(3) == 0 {
		rules.GlobalAllow = randPrefixes(r, 4)
	}
	seen := map[netip.AddrPort]bool{}
	for i := range 1 + r.IntN(6) {
		ap := netip.AddrPortFrom(netip.MustParseAddr(randDsts[r.IntN(len(randDsts))]), randPorts[r.IntN(len(randPorts))])
		if seen[ap] {
			continue
		}
		seen[ap] = true
		lr := ListenerRules{Name: fmt.Sprint("l", i), Listen: ap}
		if r.IntN(2) == 0 {
			lr.AllowCIDRs = randPrefixes(r, 3)
		}
		if r.IntN(2) == 0 {
			lr.DenyCIDRs = randPrefixes(r, 3)
		}
		switch r.IntN(3) {
		case 0:
			lr.AllowCountries = randCountryList(r)
		case 1:
			lr.DenyCountries = randCountryList(r)
		}
		lr.AllowUnknownCountry = r.IntN(2) == 0
		if r.IntN(3) == 0 {
			lr.PinToIP = true
			for range r.IntN(8) {
				lr.Pins = append(lr.Pins, Pin{IP: randAddr(r, r.IntN(2) == 0)})
			}
		}
		rules.Listeners = append(rules.Listeners, lr)
	}
	return rules
}

var randExtTypes = []func(*rand.Rand) ext{
	func(r *rand.Rand) ext { return hop(r.IntN(3)) },
	func(r *rand.Rand) ext { return dst(r.IntN(3)) },
	func(r *rand.Rand) ext { return route(r.IntN(3)) },
	func(r *rand.Rand) ext { return ah(r.IntN(3)) },
	func(r *rand.Rand) ext { return frag(uint16(r.IntN(2)*r.IntN(100)), r.IntN(2) == 0) },
}

// randFrame crafts a frame of a random shape, sometimes damaged.
func randFrame(r *rand.Rand) []byte {
	v4 := r.IntN(2) == 0
	s := frameSpec{
		src:     randAddr(r, v4).String(),
		dst:     netip.MustParseAddr(randDsts[r.IntN(4)]).String(),
		dport:   randPorts[r.IntN(len(randPorts))],
		payload: r.IntN(32),
	}
	if !v4 && r.IntN(10) == 0 {
		s.src = netip.AddrFrom16(randV4(r).As16()).String() // ::ffff:10.x in IPv6
	}
	if mustAddr(s.dst).Is4() != v4 {
		if v4 {
			s.dst = randDsts[r.IntN(2)]
		} else {
			s.dst = randDsts[2+r.IntN(2)]
		}
	}
	if r.IntN(5) == 0 {
		s.dport = uint16(r.IntN(65536))
	}
	switch r.IntN(6) {
	case 0:
		s.proto = layers.IPProtocolUDP
	case 1:
		s.proto = layers.IPProtocolICMPv4
		if !v4 {
			s.proto = layers.IPProtocolICMPv6
		}
	default:
		s.proto = layers.IPProtocolTCP
	}
	ntags := r.IntN(3)
	if r.IntN(20) == 0 {
		ntags = 3 // one more than parsed: malformed
	}
	for range ntags {
		if r.IntN(2) == 0 {
			s.tags = append(s.tags, layers.EthernetTypeDot1Q)
		} else {
			s.tags = append(s.tags, layers.EthernetTypeQinQ)
		}
	}
	if v4 {
		switch r.IntN(8) {
		case 0:
			s.v4More = true
		case 1:
			s.v4Frag = uint16(1 + r.IntN(1000))
		}
	} else {
		for range r.IntN(4) * r.IntN(4) {
			s.exts = append(s.exts, randExtTypes[r.IntN(len(randExtTypes))](r))
		}
	}
	b := craft(s)
	switch r.IntN(10) {
	case 0: // truncate anywhere (keep Ethernet: the kernel test run needs it)
		b = b[:14+r.IntN(len(b)-13)]
	case 1: // flip a header byte
		i := 12 + r.IntN(min(len(b)-12, 80))
		b[i] ^= byte(1 + r.IntN(255))
	case 2: // garbage after a valid Ethernet header
		for i := 14; i < len(b); i++ {
			b[i] = byte(r.IntN(256))
		}
	}
	return b
}

// TestRandomFramesNeverPanic runs the reference model on many random frames.
func TestRandomFramesNeverPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[Reason]int{}
	for range 20 {
		p, err := NewPolicy(randRules(r), randGeo(r))
		if err != nil {
			t.Fatal(err)
		}
		for range 500 {
			_, reason := p.Decide(randFrame(r))
			seen[reason]++
		}
	}
	for _, reason := range Reasons() {
		if seen[reason] == 0 {
			t.Errorf("random frames never produced reason %v: generator too narrow (%v)", reason, seen)
		}
	}
}
