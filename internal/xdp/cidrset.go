package xdp

import (
	"fmt"
	"net/netip"
	"slices"
)

// CIDR flags; identical to CIDR_DENY / CIDR_ALLOW in bpf/xdp.c.
const (
	cidrDeny  uint8 = 1
	cidrAllow uint8 = 2
)

// cidrSet holds deny and allow prefixes in the 128-bit address space (IPv4
// mapped). flags(a) is the union of the flags of every prefix covering a.
// It is deliberately built differently from the kernel's LPM tries (one
// exact-match table per prefix length) so the differential test checks the
// kernel encoding, not a copy of it.
type cidrSet struct {
	byLen    map[int]map[addr16]uint8
	lens     []int // present lengths, longest first
	hasAllow bool
	n        int
}

func newCIDRSet(deny, allow []netip.Prefix) (*cidrSet, error) {
	s := &cidrSet{byLen: map[int]map[addr16]uint8{}, hasAllow: len(allow) > 0}
	add := func(ps []netip.Prefix, f uint8) error {
		for _, p := range ps {
			if !p.IsValid() {
				return fmt.Errorf("prefix %v: invalid", p)
			}
			a, bits := to128(p)
			m := s.byLen[bits]
			if m == nil {
				m = map[addr16]uint8{}
				s.byLen[bits] = m
				s.lens = append(s.lens, bits)
			}
			if _, seen := m[a]; !seen {
				s.n++
			}
			m[a] |= f
		}
		return nil
	}
	if err := add(deny, cidrDeny); err != nil {
		return nil, err
	}
	if err := add(allow, cidrAllow); err != nil {
		return nil, err
	}
	slices.Sort(s.lens)
	slices.Reverse(s.lens)
	return s, nil
}

// to128 maps a prefix into the 128-bit space: IPv4 a.b.c.d/n becomes
// ::ffff:a.b.c.d/(96+n). The address is masked.
func to128(p netip.Prefix) (addr16, int) {
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4() {
		bits += 96
	}
	return mask(a.As16(), bits), bits
}

func mask(a addr16, bits int) addr16 {
	for i := range a {
		switch {
		case bits >= 8:
			bits -= 8
		case bits <= 0:
			a[i] = 0
		default:
			a[i] &= ^byte(0xff >> bits)
			bits = 0
		}
	}
	return a
}

func (s *cidrSet) flags(a addr16) uint8 {
	var f uint8
	for _, l := range s.lens {
		f |= s.byLen[l][mask(a, l)]
	}
	return f
}

// entries yields every listed prefix with the union of the flags of all
// listed prefixes that cover it — the value the kernel's LPM trie stores so
// that one longest-prefix lookup gives the flags of all covering prefixes.
func (s *cidrSet) entries(yield func(a addr16, bits int, flags uint8) bool) {
	for _, l := range s.lens {
		for a, f := range s.byLen[l] {
			for _, shorter := range s.lens {
				if shorter < l {
					f |= s.byLen[shorter][mask(a, shorter)]
				}
			}
			if !yield(a, l, f) {
				return
			}
		}
	}
}
