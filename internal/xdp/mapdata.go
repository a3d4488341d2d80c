package xdp

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

// Kernel map encodings (struct layouts in bpf/xdp.c, little-endian hosts).

type kv struct{ k, v []byte }

func addrKey(prefixlen int, a addr16) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, uint32(prefixlen))
	copy(b[4:], a[:])
	return b
}

func lcidrKey(lid uint32, prefixlen int, a addr16) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b, uint32(32+prefixlen))
	binary.BigEndian.PutUint32(b[4:], lid)
	copy(b[8:], a[:])
	return b
}

func listenerKeyBytes(k listenerKey) []byte {
	b := make([]byte, 20)
	copy(b, k.addr[:])
	binary.LittleEndian.PutUint16(b[16:], k.port)
	return b
}

func pinKey(lid uint32, a addr16) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, lid)
	copy(b[4:], a[:])
	return b
}

func ruleBytes(l *listener) []byte {
	b := make([]byte, 8+4*countryWords)
	binary.LittleEndian.PutUint32(b, l.id)
	binary.LittleEndian.PutUint32(b[4:], l.flags)
	for i, w := range l.countries {
		binary.LittleEndian.PutUint32(b[8+4*i:], w)
	}
	return b
}

func fragBytes(ports []uint16) []byte {
	b := make([]byte, 4+2*MaxListenersPerAddr)
	binary.LittleEndian.PutUint32(b, uint32(len(ports)))
	for i, p := range ports {
		binary.LittleEndian.PutUint16(b[4+2*i:], p)
	}
	return b
}

func u32Bytes(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// mapContents is a compiled policy laid out as kernel map entries.
type mapContents struct {
	global, lcidr, listeners, pins, frags []kv
	settings                              uint32
	cidrs                                 *cidrSet // the global set, split by the loader
}

const sGlobalAllow = 1

func (p *Policy) mapContents() *mapContents {
	mc := &mapContents{}
	mc.cidrs = p.global
	if p.global.hasAllow {
		mc.settings |= sGlobalAllow
	}
	p.global.entries(func(a addr16, bits int, f uint8) bool {
		mc.global = append(mc.global, kv{addrKey(bits, a), []byte{f}})
		return true
	})

	for _, l := range p.ordered {
		mc.listeners = append(mc.listeners, kv{listenerKeyBytes(l.key), ruleBytes(l)})
		l.cidrs.entries(func(a addr16, bits int, f uint8) bool {
			mc.lcidr = append(mc.lcidr, kv{lcidrKey(l.id, bits, a), []byte{f}})
			return true
		})
		for a := range l.pins {
			mc.pins = append(mc.pins, kv{pinKey(l.id, a), []byte{1}})
		}
	}
	addrs := make([]addr16, 0, len(p.frags))
	for a := range p.frags {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(x, y addr16) int { return slices.Compare(x[:], y[:]) })
	for _, a := range addrs {
		mc.frags = append(mc.frags, kv{addrKey(0, a), fragBytes(p.frags[a])})
	}
	return mc
}

// geoEntries lays the IPv6 part of a GeoIP table out as LPM entries (key
// addr_key, value u16). IPv4 goes into the DIR-24-8 table instead.
func geoEntries(t *geoip.Table, yield func(k []byte, cc uint16) bool) {
	for pfx, c := range t.Prefixes() {
		if pfx.Addr().Is4() {
			continue
		}
		a, bits := to128(pfx)
		if !yield(addrKey(bits, a), uint16(c)) {
			return
		}
	}
}

// DIR-24-8 layout of the IPv4 country table (see bpf/xdp.c).
const (
	dirGroup  = 0x80000000
	dirPage24 = 1024
)

type dir248 struct {
	tbl24 []uint32      // len is a multiple of dirPage24; missing pages read as unknown
	tbl8  [][256]uint16 // groups
}

func buildDIR248(t *geoip.Table) *dir248 {
	d := &dir248{}
	for r := range t.IPv4Ranges() {
		from, to := r.From.As4(), r.To.As4()
		d.set(binary.BigEndian.Uint32(from[:]), binary.BigEndian.Uint32(to[:]), uint32(r.Country))
	}
	return d
}

// set paints [from, to] with v, over whatever was there.
func (d *dir248) set(from, to uint32, v uint32) {
	grow := func(blk uint32) {
		if int(blk) >= len(d.tbl24) {
			n := (int(blk)/dirPage24 + 1) * dirPage24
			d.tbl24 = append(d.tbl24, make([]uint32, n-len(d.tbl24))...)
		}
	}
	a, end := uint64(from), uint64(to)
	for a <= end {
		blk := uint32(a >> 8)
		blkStart := uint64(blk) << 8
		if a == blkStart && end >= blkStart+255 {
			n := uint32((end - blkStart + 1) >> 8) // whole /24s
			grow(blk + n - 1)
			for j := range n {
				d.tbl24[blk+j] = v // a group there is abandoned: all 256 are v now
			}
			a = blkStart + uint64(n)<<8
			continue
		}
		grow(blk)
		e := d.tbl24[blk]
		var g uint32
		if e&dirGroup != 0 {
			g = e &^ dirGroup
		} else {
			g = uint32(len(d.tbl8))
			var grp [256]uint16
			for i := range grp {
				grp[i] = uint16(e)
			}
			d.tbl8 = append(d.tbl8, grp)
			d.tbl24[blk] = dirGroup | g
		}
		last := min(end, blkStart+255)
		for x := a; x <= last; x++ {
			d.tbl8[g][x&0xff] = uint16(v)
		}
		a = last + 1
	}
}

// v4Mapped is ::ffff:0:0/96, where IPv4 lives in the 128-bit space.
var v4Mapped = netip.MustParsePrefix("::ffff:0:0/96")

// splitCIDRs splits a CIDR set's kernel entries: IPv4 ones (and IPv6 ones
// that cover all of IPv4, e.g. ::/0) painted into a DIR-24-8 table, the rest
// kept for the IPv6 LPM trie.
func splitCIDRs(s *cidrSet) (lpm6 []kv, dir *dir248) {
	type v4e struct {
		from, to uint32
		bits     int
		f        uint8
	}
	var v4 []v4e
	s.entries(func(a addr16, bits int, f uint8) bool {
		p := netip.PrefixFrom(netip.AddrFrom16(a), bits)
		switch {
		case bits >= 96 && v4Mapped.Contains(p.Addr()):
			from := binary.BigEndian.Uint32(a[12:])
			size := uint64(1) << (128 - bits)
			v4 = append(v4, v4e{from, uint32(uint64(from) + size - 1), bits, f})
		case bits < 96 && p.Contains(v4Mapped.Addr()):
			v4 = append(v4, v4e{0, ^uint32(0), bits, f})
			lpm6 = append(lpm6, kv{addrKey(bits, a), []byte{f}})
		default:
			lpm6 = append(lpm6, kv{addrKey(bits, a), []byte{f}})
		}
		return true
	})
	// Shorter prefixes first: a longer one overwrites them with its flags,
	// which already include those of every prefix covering it.
	slices.SortStableFunc(v4, func(x, y v4e) int { return x.bits - y.bits })
	dir = &dir248{}
	for _, e := range v4 {
		dir.set(e.from, e.to, uint32(e.f))
	}
	return lpm6, dir
}

// lookup is the kernel's IPv4 lookup, for tests.
func (d *dir248) lookup(a [4]byte) uint32 {
	blk := uint32(a[0])<<16 | uint32(a[1])<<8 | uint32(a[2])
	if int(blk) >= len(d.tbl24) {
		return 0
	}
	c := d.tbl24[blk]
	if c&dirGroup != 0 {
		return uint32(d.tbl8[c&^dirGroup][a[3]])
	}
	return c
}
