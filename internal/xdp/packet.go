package xdp

import "net/netip"

// Packet is what the datapath extracts from a frame: addresses in the 128-bit
// space (IPv4 mapped) and the destination port of TCP/UDP.
type Packet struct {
	Src, Dst  [16]byte
	DstPort   uint16
	V4        bool
	HasPort   bool
	LaterFrag bool // a fragment with a non-zero offset
}

type parseResult int

const (
	parseIP parseResult = iota
	parseOther
	parseMalformed
)

const (
	ethIP     = 0x0800
	ethIPv6   = 0x86DD
	eth8021Q  = 0x8100
	eth8021AD = 0x88A8

	protoHopOpts  = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDstOpts  = 60

	maxVLAN = 2
	maxExt  = 8
)

func be16(b []byte) int { return int(b[0])<<8 | int(b[1]) }

// ParseFrame parses an Ethernet frame exactly like the kernel program.
func ParseFrame(b []byte) (Packet, parseResult) {
	var p Packet
	if len(b) < 14 {
		return p, parseOther
	}
	proto := be16(b[12:])
	c := 14
	for range maxVLAN {
		if proto != eth8021Q && proto != eth8021AD {
			break
		}
		if c+4 > len(b) {
			return p, parseMalformed
		}
		proto = be16(b[c+2:])
		c += 4
	}
	if proto == eth8021Q || proto == eth8021AD {
		return p, parseMalformed
	}
	switch proto {
	case ethIP:
		return parse4(b, c)
	case ethIPv6:
		return parse6(b, c)
	}
	return p, parseOther
}

func parse4(b []byte, c int) (Packet, parseResult) {
	var p Packet
	if c+20 > len(b) || b[c]>>4 != 4 {
		return p, parseMalformed
	}
	ihl := int(b[c]&0x0f) * 4
	if ihl < 20 {
		return p, parseMalformed
	}
	tot := be16(b[c+2:])
	if tot < ihl || c+tot > len(b) {
		return p, parseMalformed
	}
	p.V4 = true
	p.Src = map4(b[c+12 : c+16])
	p.Dst = map4(b[c+16 : c+20])
	if be16(b[c+6:])&0x1fff != 0 {
		p.LaterFrag = true
		return p, parseIP
	}
	next := b[c+9]
	if next != protoTCP && next != protoUDP {
		return p, parseIP
	}
	if tot < ihl+4 {
		return p, parseMalformed
	}
	c += ihl
	p.DstPort = uint16(be16(b[c+2:]))
	p.HasPort = true
	return p, parseIP
}

func map4(a []byte) [16]byte {
	var m [16]byte
	m[10], m[11] = 0xff, 0xff
	copy(m[12:], a)
	return m
}

func parse6(b []byte, c int) (Packet, parseResult) {
	var p Packet
	if c+40 > len(b) || b[c]>>4 != 6 {
		return p, parseMalformed
	}
	ipend := c + 40 + be16(b[c+4:])
	if ipend > len(b) {
		return p, parseMalformed
	}
	copy(p.Src[:], b[c+8:c+24])
	copy(p.Dst[:], b[c+24:c+40])
	if netip.AddrFrom16(p.Src).Is4In6() {
		// Never on the wire (RFC 4291 2.5.5.2); it would be judged as the
		// IPv4 address it names.
		return Packet{}, parseMalformed
	}
	next := b[c+6]
	c += 40
	isExt := func(n byte) bool {
		return n == protoHopOpts || n == protoRouting || n == protoDstOpts || n == protoAH || n == protoFragment
	}
	for range maxExt {
		if !isExt(next) {
			break
		}
		var l int
		switch next {
		case protoHopOpts, protoRouting, protoDstOpts:
			if c+2 > ipend {
				return p, parseMalformed
			}
			l = (int(b[c+1]) + 1) * 8
		case protoAH:
			if c+2 > ipend {
				return p, parseMalformed
			}
			l = (int(b[c+1]) + 2) * 4
		case protoFragment:
			if c+8 > ipend {
				return p, parseMalformed
			}
			if be16(b[c+2:])&0xfff8 != 0 {
				p.LaterFrag = true
				return p, parseIP
			}
			l = 8
		}
		next = b[c]
		c += l
		if c > ipend {
			return p, parseMalformed
		}
	}
	if isExt(next) {
		return p, parseMalformed
	}
	if next != protoTCP && next != protoUDP {
		return p, parseIP
	}
	if c+4 > ipend {
		return p, parseMalformed
	}
	p.DstPort = uint16(be16(b[c+2:]))
	p.HasPort = true
	return p, parseIP
}
