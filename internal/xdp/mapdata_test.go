package xdp

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

func TestDIR248MatchesTable(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for range 30 {
		var b geoip.Builder
		for range r.IntN(60) {
			a := netip.AddrFrom4([4]byte{byte(r.IntN(3)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			p, _ := a.Prefix(8 + r.IntN(25))
			b.AddPrefix(p, geoip.Country(1+r.IntN(676)))
		}
		if r.IntN(4) == 0 { // a range crossing from IPv6 into IPv4
			b.AddRange(netip.MustParseAddr("::1"), netip.AddrFrom4([4]byte{0, 0, 1, byte(r.IntN(256))}), 5)
		}
		tbl := b.Table()
		d := buildDIR248(tbl)
		for range 5000 {
			a := [4]byte{byte(r.IntN(3)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
			if got, want := d.lookup(a), uint32(tbl.Lookup(netip.AddrFrom4(a))); got != want {
				t.Fatalf("%v: DIR-24-8 %d, table %d", netip.AddrFrom4(a), got, want)
			}
		}
	}
}

func TestSplitCIDRsMatchesSet(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for range 40 {
		s, err := newCIDRSet(randPrefixes(r, 8), randPrefixes(r, 8))
		if err != nil {
			t.Fatal(err)
		}
		_, d := splitCIDRs(s)
		for range 3000 {
			a := randV4(r).As4()
			if r.IntN(4) == 0 {
				a = [4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
			}
			if got, want := d.lookup(a), uint32(s.flags(netip.AddrFrom4(a).As16())); got != want {
				t.Fatalf("%v: DIR-24-8 flags %d, set %d", netip.AddrFrom4(a), got, want)
			}
		}
	}
}
