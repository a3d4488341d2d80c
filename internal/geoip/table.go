package geoip

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"iter"
	"net/netip"
	"slices"
)

// Range is an inclusive address range that maps to one country. Addresses
// in ::ffff:0:0/96 are given in their IPv4 form.
type Range struct {
	From, To netip.Addr
	Country  Country
}

// Table is an immutable, sorted set of non-overlapping ranges with their
// country, built by a Builder or decoded from its serialized form. Lookups are
// a binary search; Prefixes yields the same mapping as CIDR prefixes for
// longest-prefix-match tables such as the XDP datapath's.
type Table struct {
	// ranges in the 128-bit space (IPv4 as ::ffff:a.b.c.d), sorted, disjoint,
	// adjacent ranges of the same country merged, no Unknown ranges.
	starts []u128
	ends   []u128
	cc     []Country
}

type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b).Unmap()
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

func (u u128) cmp(v u128) int {
	if u == v {
		return 0
	}
	if u.less(v) {
		return -1
	}
	return 1
}

func (u u128) inc() (u128, bool) {
	lo := u.lo + 1
	hi := u.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}, hi == 0 && lo == 0
}

func (u u128) dec() u128 {
	lo := u.lo - 1
	hi := u.hi
	if u.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

// Len reports the number of merged ranges.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.starts)
}

// Lookup returns the country of addr, or Unknown. A nil Table knows nothing.
func (t *Table) Lookup(addr netip.Addr) Country {
	if t == nil || !addr.IsValid() {
		return Unknown
	}
	k := toU128(addr.WithZone(""))
	// first range whose start > k, then step back.
	i, _ := slices.BinarySearchFunc(t.starts, k, func(s, k u128) int {
		if k.less(s) {
			return 1
		}
		return -1
	})
	if i == 0 {
		return Unknown
	}
	i--
	if t.ends[i].less(k) {
		return Unknown
	}
	return t.cc[i]
}

// Ranges yields the merged ranges in address order.
func (t *Table) Ranges() iter.Seq[Range] {
	return func(yield func(Range) bool) {
		if t == nil {
			return
		}
		for i := range t.starts {
			if !yield(Range{From: t.starts[i].addr(), To: t.ends[i].addr(), Country: t.cc[i]}) {
				return
			}
		}
	}
}

// Prefixes yields the table as CIDR prefixes (IPv4 ones in IPv4 form), in
// address order. Every address maps to the same country as with Lookup.
func (t *Table) Prefixes() iter.Seq2[netip.Prefix, Country] {
	return func(yield func(netip.Prefix, Country) bool) {
		if t == nil {
			return
		}
		for i := range t.starts {
			for p := range rangePrefixes(t.starts[i], t.ends[i]) {
				if !yield(p, t.cc[i]) {
					return
				}
			}
		}
	}
}

// rangePrefixes splits [from, to] into the minimal list of CIDR prefixes.
func rangePrefixes(from, to u128) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		for !to.less(from) {
			// largest block aligned at from and not past to
			bits := trailingZeros(from)
			for bits > 0 {
				end := orLow(from, bits)
				if !to.less(end) {
					break
				}
				bits--
			}
			a := from.addr()
			plen := 128 - bits
			if a.Is4() {
				plen -= 96
			}
			p := netip.PrefixFrom(a, plen)
			if !yield(p) {
				return
			}
			end := orLow(from, bits)
			next, wrapped := end.inc()
			if wrapped {
				return
			}
			from = next
		}
	}
}

func trailingZeros(u u128) int {
	if u.lo != 0 {
		n := 0
		for v := u.lo; v&1 == 0; v >>= 1 {
			n++
		}
		return n
	}
	if u.hi == 0 {
		return 128
	}
	n := 64
	for v := u.hi; v&1 == 0; v >>= 1 {
		n++
	}
	return n
}

// orLow sets the low bits of u.
func orLow(u u128, bits int) u128 {
	switch {
	case bits >= 128:
		return u128{^uint64(0), ^uint64(0)}
	case bits >= 64:
		return u128{u.hi | (^uint64(0) >> (128 - bits)), ^uint64(0)}
	case bits == 0:
		return u
	default:
		return u128{u.hi, u.lo | (^uint64(0) >> (64 - bits))}
	}
}

// Builder collects ranges and prefixes in any order and builds a Table.
// Where inputs overlap, the later Add wins for the overlapping addresses.
type Builder struct {
	items []item
}

// maxRanges bounds the ranges a Builder takes and the networks an MMDB
// walk visits (MaxEncodedRanges; tests lower it), so a hostile upload
// cannot grow memory or time without limit.
var maxRanges = MaxEncodedRanges

type item struct {
	from, to u128
	cc       Country
	seq      int
}

// AddRange adds an inclusive range, from <= to. IPv4 addresses stand for
// their IPv4-mapped IPv6 form, so one range may cross families.
func (b *Builder) AddRange(from, to netip.Addr, c Country) error {
	if !from.IsValid() || !to.IsValid() {
		return fmt.Errorf("range %v-%v: invalid address", from, to)
	}
	from, to = from.WithZone(""), to.WithZone("")
	f, t := toU128(from), toU128(to)
	if t.less(f) {
		return fmt.Errorf("range %v-%v: start after end", from, to)
	}
	if c > MaxCountry {
		return fmt.Errorf("range %v-%v: invalid country %d", from, to, c)
	}
	if len(b.items) >= maxRanges {
		return fmt.Errorf("more than %d ranges", maxRanges)
	}
	b.items = append(b.items, item{f, t, c, len(b.items)})
	return nil
}

// AddPrefix adds a CIDR prefix.
func (b *Builder) AddPrefix(p netip.Prefix, c Country) error {
	if !p.IsValid() {
		return fmt.Errorf("prefix %v: invalid", p)
	}
	p = p.Masked()
	r := netipRangeEnd(p)
	return b.AddRange(p.Addr(), r, c)
}

func netipRangeEnd(p netip.Prefix) netip.Addr {
	a := p.Addr()
	bits := a.BitLen() - p.Bits()
	u := orLow(toU128(a), bits)
	return u.addr()
}

// Len reports how many ranges were added.
func (b *Builder) Len() int { return len(b.items) }

// Table resolves overlaps (later additions win), drops Unknown space, merges
// adjacent ranges of the same country and returns the immutable Table.
func (b *Builder) Table() *Table {
	// Sweep over boundaries: sort by start; keep a stack-free approach by
	// painting in order of seq on a sorted list of disjoint segments.
	items := slices.Clone(b.items)
	slices.SortStableFunc(items, func(x, y item) int {
		if c := x.from.cmp(y.from); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	// Fast path: no overlaps (the normal case for real databases).
	overlap := false
	for i := 1; i < len(items); i++ {
		if !items[i-1].to.less(items[i].from) {
			overlap = true
			break
		}
	}
	var segs []item
	if !overlap {
		segs = items
	} else {
		segs = paint(b.items)
	}
	t := &Table{}
	for _, s := range segs {
		if s.cc == Unknown {
			continue
		}
		n := len(t.starts)
		if n > 0 && t.cc[n-1] == s.cc {
			if next, wrapped := t.ends[n-1].inc(); !wrapped && next == s.from {
				t.ends[n-1] = s.to
				continue
			}
		}
		t.starts = append(t.starts, s.from)
		t.ends = append(t.ends, s.to)
		t.cc = append(t.cc, s.cc)
	}
	return t
}

// paint applies items in insertion order onto a disjoint segment list:
// where items overlap, the one added last wins. It sweeps the address space
// once with a heap of the items covering the current point (highest seq on
// top), so it costs O(n log n) whatever the overlaps: a hostile upload with
// every line overlapping the next must not pin a CPU for hours.
func paint(items []item) []item {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(x, y item) int { return x.from.cmp(y.from) })
	var (
		segs   []item
		active seqHeap
		next   int // sorted[next] is the first item not yet pushed
	)
	var pos u128
	for next < len(sorted) || len(active) > 0 {
		if len(active) == 0 && pos.less(sorted[next].from) {
			pos = sorted[next].from
		}
		for next < len(sorted) && !pos.less(sorted[next].from) {
			heap.Push(&active, sorted[next])
			next++
		}
		for len(active) > 0 && active[0].to.less(pos) {
			heap.Pop(&active)
		}
		if len(active) == 0 {
			continue
		}
		top := active[0]
		end := top.to
		if next < len(sorted) && !end.less(sorted[next].from) {
			// An item starting at or before end may outrank top there.
			end = sorted[next].from.dec()
		}
		segs = append(segs, item{pos, end, top.cc, 0})
		after, wrapped := end.inc()
		if wrapped {
			break // painted up to the last address
		}
		pos = after
	}
	return segs
}

// seqHeap is a max-heap of items by insertion order.
type seqHeap []item

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq > h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// v4Lo and v4Hi bound the IPv4-mapped block ::ffff:0:0/96.
var (
	v4Lo = u128{0, 0x0000ffff00000000}
	v4Hi = u128{0, 0x0000ffffffffffff}
)

// IPv4Ranges yields the table's ranges clipped to the IPv4 space, in order,
// with From and To in IPv4 form.
func (t *Table) IPv4Ranges() iter.Seq[Range] {
	return func(yield func(Range) bool) {
		if t == nil {
			return
		}
		i, _ := slices.BinarySearchFunc(t.ends, v4Lo, func(e, k u128) int { return e.cmp(k) })
		for ; i < len(t.starts) && !v4Hi.less(t.starts[i]); i++ {
			s, e := t.starts[i], t.ends[i]
			if s.less(v4Lo) {
				s = v4Lo
			}
			if v4Hi.less(e) {
				e = v4Hi
			}
			if !yield(Range{From: s.addr(), To: e.addr(), Country: t.cc[i]}) {
				return
			}
		}
	}
}
