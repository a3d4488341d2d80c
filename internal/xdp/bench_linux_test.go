//go:build linux

package xdp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

// Benchmarks print kernel-measured figures (BPF_PROG_TEST_RUN durations):
//
//	go test -run '^$' -bench 'Country|Program' -benchtime 20000x ./internal/xdp/
//
// ns/lookup and ns/pkt are the metrics to read; ns/op includes the syscall.

var benchSizes = []int{0, 10_000, 100_000, 1_000_000}

type v4Prefix struct {
	addr uint32
	bits int
	cc   uint16
}

// genV4Prefixes makes n disjoint IPv4 prefixes spread over the address
// space, one in each of n aligned regions, with random countries. About one
// in ten is longer than /24, the rest /12../24 as far as the region allows:
// like GeoIP data, most prefixes are /24 or shorter.
func genV4Prefixes(r *rand.Rand, n int) []v4Prefix {
	if n == 0 {
		return nil
	}
	// n regions of 2^regionShift addresses each, power-of-two aligned.
	regionShift := 32
	for (uint64(1)<<regionShift)*uint64(n) > 1<<32 {
		regionShift--
	}
	out := make([]v4Prefix, 0, n)
	for i := range n {
		base := uint64(i) << regionShift
		var bits int
		if r.IntN(10) == 0 {
			bits = 25 + r.IntN(8)
		} else {
			lo := max(32-regionShift, 12)
			bits = lo + r.IntN(max(24-lo+1, 1))
		}
		bits = max(bits, 32-regionShift)
		size := uint64(1) << (32 - bits)
		start := base + size*uint64(r.Int64N(int64((uint64(1)<<regionShift)/size)))
		out = append(out, v4Prefix{addr: uint32(start), bits: bits, cc: uint16(1 + r.IntN(250))})
	}
	return out
}

func v4Table(ps []v4Prefix) *geoip.Table {
	var gb geoip.Builder
	for _, p := range ps {
		a := netip.AddrFrom4([4]byte{byte(p.addr >> 24), byte(p.addr >> 16), byte(p.addr >> 8), byte(p.addr)})
		if err := gb.AddPrefix(netip.PrefixFrom(a, p.bits), geoip.Country(p.cc)); err != nil {
			panic(err)
		}
	}
	return gb.Table()
}

func u16bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

// fillPages writes a flat table into an array map whose values are pages
// of per entry elements.
func fillPages(m *ebpf.Map, flat []byte, pageBytes int) error {
	for i := 0; i*pageBytes < len(flat); i++ {
		if err := m.Update(uint32(i), flat[i*pageBytes:(i+1)*pageBytes], ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return nil
}

func u32bytes(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

func BenchmarkCountryLookup(b *testing.B) {
	newTestLoader(b) // privilege check
	for _, n := range benchSizes {
		r := rand.New(rand.NewPCG(uint64(n), 42))
		ps := genV4Prefixes(r, n)
		var objs benchObjects
		if err := loadBenchObjects(&objs, nil); err != nil {
			b.Fatal(err)
		}
		keys := make([]uint32, 1<<16)
		for i := range keys {
			keys[i] = r.Uint32()
		}
		idx := make([]uint32, len(keys))
		for i := range idx {
			idx[i] = uint32(i)
		}
		if _, err := objs.BenchKeys.BatchUpdate(idx, keys, nil); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for _, p := range ps {
			a := netip.AddrFrom4([4]byte{byte(p.addr >> 24), byte(p.addr >> 16), byte(p.addr >> 8), byte(p.addr)})
			if err := objs.BenchLpm.Update(addrKey(96+p.bits, a.As16()), p.cc, ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
		}
		lpmLoad := time.Since(start)
		start = time.Now()
		d := buildDIR248(v4Table(ps))
		tbl8 := make([]uint16, 0, 256*len(d.tbl8))
		for _, g := range d.tbl8 {
			tbl8 = append(tbl8, g[:]...)
		}
		if err := fillPages(objs.Tbl24, u32bytes(d.tbl24), 4096); err != nil {
			b.Fatal(err)
		}
		if err := fillPages(objs.Tbl8, u16bytes(tbl8), 512); err != nil {
			b.Fatal(err)
		}
		dirLoad := time.Since(start)
		frame := craft(frameSpec{src: "10.0.0.1", dst: "10.0.0.2", proto: tcp, dport: 1})
		for _, c := range []struct {
			name string
			prog *ebpf.Program
			load time.Duration
		}{{"lpm", objs.BenchLpmLookup, lpmLoad}, {"dir24-8", objs.BenchDir248Lookup, dirLoad}} {
			b.Run(fmt.Sprintf("%s/prefixes=%d", c.name, n), func(b *testing.B) {
				var total time.Duration
				runs := 0
				for b.Loop() {
					_, d, err := c.prog.Benchmark(frame, 100, nil)
					if err != nil {
						b.Fatal(err)
					}
					total += d
					runs++
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(runs)/64, "ns/lookup")
				b.ReportMetric(c.load.Seconds(), "s-load")
				b.ReportMetric(float64(len(d.tbl8)), "tbl8-groups")
			})
		}
		objs.Close()
	}
}

// BenchmarkProgram is the per-packet cost of the whole datapath program with
// n prefixes in the GeoIP table (a listener checking countries) or in the
// global deny list, each packet from a different random source.
func BenchmarkProgram(b *testing.B) {
	l := newTestLoader(b)
	for _, kind := range []string{"geo", "globaldeny"} {
		for _, n := range benchSizes {
			r := rand.New(rand.NewPCG(uint64(n), 7))
			ps := genV4Prefixes(r, n)
			var rules Rules
			var geo *geoip.Table
			listener := ListenerRules{Name: "bench", Listen: netip.MustParseAddrPort("10.0.0.2:443")}
			if kind == "geo" {
				geo = v4Table(ps)
				listener.AllowCountries = []string{"DE", "FR", "US"}
				listener.AllowUnknownCountry = true
			} else {
				for _, p := range ps {
					a := netip.AddrFrom4([4]byte{byte(p.addr >> 24), byte(p.addr >> 16), byte(p.addr >> 8), byte(p.addr)})
					rules.GlobalDeny = append(rules.GlobalDeny, netip.PrefixFrom(a, p.bits))
				}
			}
			rules.Listeners = []ListenerRules{listener}
			p, err := NewPolicy(rules, geo)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := l.Update(p); err != nil {
				b.Fatal(err)
			}
			load := time.Since(start)
			frames := make([][]byte, 1024)
			for i := range frames {
				a := r.Uint32()
				src := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
				frames[i] = craft(frameSpec{src: src.String(), dst: "10.0.0.2", proto: tcp, dport: 443})
			}
			b.Run(fmt.Sprintf("%s/prefixes=%d", kind, n), func(b *testing.B) {
				var total time.Duration
				i := 0
				for b.Loop() {
					_, d, err := l.Program().Benchmark(frames[i%len(frames)], 1, nil)
					if err != nil {
						b.Fatal(err)
					}
					total += d
					i++
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(i), "ns/pkt")
				b.ReportMetric(load.Seconds(), "s-update")
			})
		}
	}
}
