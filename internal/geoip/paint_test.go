package geoip

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// paintNaive is the obvious quadratic version of paint: the reference the
// sweep is checked against.
func paintNaive(items []item) []item {
	var segs []item
	for _, it := range items {
		var out []item
		for _, s := range segs {
			if s.to.less(it.from) || it.to.less(s.from) {
				out = append(out, s)
				continue
			}
			if s.from.less(it.from) {
				out = append(out, item{s.from, it.from.dec(), s.cc, 0})
			}
			if it.to.less(s.to) {
				next, _ := it.to.inc()
				out = append(out, item{next, s.to, s.cc, 0})
			}
		}
		out = append(out, it)
		slices.SortFunc(out, func(x, y item) int { return x.from.cmp(y.from) })
		segs = out
	}
	return segs
}

// owners expands segments to "address → country" over a small space.
func owners(segs []item, space uint64) []Country {
	out := make([]Country, space)
	for _, s := range segs {
		for a := s.from.lo; a <= s.to.lo && a < space; a++ {
			out[a] = s.cc
		}
	}
	return out
}

func TestPaintMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const space = 64
	for round := range 3000 {
		var items []item
		for i := range 1 + rng.IntN(12) {
			a, b := rng.Uint64N(space), rng.Uint64N(space)
			if b < a {
				a, b = b, a
			}
			items = append(items, item{u128{0, a}, u128{0, b}, Country(rng.IntN(4)), i})
		}
		got, want := paint(items), paintNaive(items)
		for i := 1; i < len(got); i++ {
			if !got[i-1].to.less(got[i].from) {
				t.Fatalf("round %d: segments %d and %d overlap", round, i-1, i)
			}
		}
		if g, w := owners(got, space), owners(want, space); !slices.Equal(g, w) {
			t.Fatalf("round %d: items %v\npaint  %v\nnaive  %v", round, items, g, w)
		}
	}
	// The whole address space, where the end cannot be incremented.
	all := []item{{u128{}, u128{^uint64(0), ^uint64(0)}, 1, 0}, {u128{0, 5}, u128{^uint64(0), ^uint64(0)}, 2, 1}}
	if got := paint(all); len(got) != 2 || got[1].cc != 2 || got[1].to != (u128{^uint64(0), ^uint64(0)}) {
		t.Fatalf("paint over the whole space = %v", got)
	}
}

// A CSV where every line overlaps the next used to take quadratic time in
// the number of lines (hours for a few hundred thousand, from an upload of a
// few MB); now it is one sweep.
func TestOverlappingCSVIsNotQuadratic(t *testing.T) {
	const n = 300_000
	var sb strings.Builder
	sb.Grow(n * 24)
	for i := range n {
		from := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		to := netip.AddrFrom4([4]byte{10, byte((i + 1) >> 16), byte((i + 1) >> 8), byte(i + 1)})
		fmt.Fprintf(&sb, "%s,%s,%s\n", from, to, []string{"DE", "FR"}[i%2])
	}
	tbl, err := ParseDBIPCSV(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	// Later lines win: each address but the last belongs to the line that
	// starts there.
	for _, tc := range []struct {
		addr string
		want string
	}{{"10.0.0.0", "DE"}, {"10.0.0.1", "FR"}, {"10.0.0.2", "DE"}, {"10.4.147.223", "FR"}} {
		if got := tbl.Lookup(netip.MustParseAddr(tc.addr)).String(); got != tc.want {
			t.Fatalf("%s: %q, want %q", tc.addr, got, tc.want)
		}
	}
	if tbl.Len() != n {
		t.Fatalf("%d ranges, want %d (the last address joins the last line)", tbl.Len(), n)
	}
}
