package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// ext is one raw IPv6 extension header of a crafted frame.
type ext struct {
	typ  layers.IPProtocol
	frag uint16 // fragment offset in 8-byte units (fragment header only)
	more bool   // M flag (fragment header only)
	n    int    // extra 8-byte units (hop/dst/routing) or 4-byte units (AH)
}

// frameSpec describes a frame to craft with gopacket.
type frameSpec struct {
	tags    []layers.EthernetType // VLAN TPIDs, outermost first
	src     string
	dst     string
	proto   layers.IPProtocol // TCP, UDP, ICMPv4/ICMPv6
	dport   uint16
	v4Frag  uint16 // IPv4 fragment offset in 8-byte units
	v4More  bool
	exts    []ext
	payload int
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// craft builds an Ethernet frame with gopacket. Extension headers that
// gopacket cannot serialize are written as raw bytes between IPv6 and the
// transport header.
func craft(s frameSpec) []byte {
	src, dst := mustAddr(s.src), mustAddr(s.dst)
	eth := &layers.Ethernet{
		SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
	}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	inner := layers.EthernetTypeIPv4
	if src.Is6() {
		inner = layers.EthernetTypeIPv6
	}
	if len(s.tags) == 0 {
		eth.EthernetType = inner
	} else {
		eth.EthernetType = s.tags[0]
		for i := range s.tags {
			next := inner
			if i+1 < len(s.tags) {
				next = s.tags[i+1]
			}
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(100 + i), Type: next})
		}
	}
	var netLayer gopacket.NetworkLayer
	if src.Is4() {
		ip := &layers.IPv4{
			Version: 4, TTL: 64, Protocol: s.proto,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
			FragOffset: s.v4Frag,
		}
		if s.v4More {
			ip.Flags = layers.IPv4MoreFragments
		}
		netLayer = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv6{
			Version: 6, HopLimit: 64, NextHeader: s.proto,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
		}
		netLayer = ip
		ls = append(ls, ip)
		if len(s.exts) > 0 {
			ip.NextHeader = s.exts[0].typ
			var raw []byte
			for i, e := range s.exts {
				next := s.proto
				if i+1 < len(s.exts) {
					next = s.exts[i+1].typ
				}
				raw = append(raw, e.bytes(next)...)
			}
			ls = append(ls, gopacket.Payload(raw))
		}
	}
	later := s.v4Frag != 0
	for _, e := range s.exts {
		if e.typ == layers.IPProtocolIPv6Fragment && e.frag != 0 {
			later = true
		}
	}
	if !later {
		switch s.proto {
		case layers.IPProtocolTCP:
			tcp := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(s.dport), SYN: true, Window: 1024}
			tcp.SetNetworkLayerForChecksum(netLayer)
			ls = append(ls, tcp)
		case layers.IPProtocolUDP:
			udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(s.dport)}
			udp.SetNetworkLayerForChecksum(netLayer)
			ls = append(ls, udp)
		case layers.IPProtocolICMPv4:
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})
		}
	}
	ls = append(ls, gopacket.Payload(make([]byte, s.payload)))
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true}
	if len(s.exts) == 0 {
		opts.ComputeChecksums = true
	}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func (e ext) bytes(next layers.IPProtocol) []byte {
	switch e.typ {
	case layers.IPProtocolIPv6Fragment:
		b := make([]byte, 8)
		b[0] = byte(next)
		v := e.frag << 3
		if e.more {
			v |= 1
		}
		binary.BigEndian.PutUint16(b[2:], v)
		binary.BigEndian.PutUint32(b[4:], 0x1234)
		return b
	case layers.IPProtocolAH:
		b := make([]byte, (e.n+3)*4) // len field = units-2, minimum 3 units
		b[0] = byte(next)
		b[1] = byte(e.n + 1)
		return b
	default: // hop-by-hop, routing, destination options
		b := make([]byte, (e.n+1)*8)
		b[0] = byte(next)
		b[1] = byte(e.n)
		if e.typ != layers.IPProtocolIPv6Routing {
			b[2], b[3] = 1, byte(len(b)-4) // PadN option
		}
		return b
	}
}
