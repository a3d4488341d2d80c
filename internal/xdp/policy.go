package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

// MaxListenersPerAddr bounds how many listeners one destination address may
// carry (the kernel checks them all for later fragments).
const MaxListenersPerAddr = 16

// Rules is the network policy as configured: plain data that the wiring
// fills from replicated state. NewPolicy validates and compiles it.
type Rules struct {
	// GlobalDeny drops matching sources on every port.
	GlobalDeny []netip.Prefix
	// GlobalAllow, if non-empty, drops every source outside it on every port.
	GlobalAllow []netip.Prefix
	// Listeners are the dedicated Persona endpoints and their rules.
	Listeners []ListenerRules
}

// ListenerRules are the network rules of one dedicated listener.
type ListenerRules struct {
	// Name identifies the listener in errors, e.g. the Persona name.
	Name string
	// Listen is the listener's address; an unspecified address (0.0.0.0 or
	// ::) matches every destination address of that family.
	Listen netip.AddrPort
	// AllowCIDRs, if non-empty, admits only sources inside them.
	AllowCIDRs []netip.Prefix
	// DenyCIDRs drops sources inside them (checked before AllowCIDRs).
	DenyCIDRs []netip.Prefix
	// AllowCountries admits only sources located in these countries;
	// DenyCountries drops sources located in them. At most one of the two.
	AllowCountries []string
	DenyCountries  []string
	// AllowUnknownCountry decides for sources the GeoIP table does not know
	// when a country list is set.
	AllowUnknownCountry bool
	// PinToIP admits only the IPs in Pins: the client IPs of the listener's
	// pinned credentials. Pins past their NotAfter are left out.
	PinToIP bool
	Pins    []Pin
}

// Pin is the client IP a credential is bound to.
type Pin struct {
	IP netip.Addr
	// NotAfter is when the credential expires; zero means never.
	NotAfter time.Time
}

// Errors returned by NewPolicy.
var (
	ErrInvalidRules = errors.New("invalid network rules")
)

type addr16 = [16]byte

type listenerKey struct {
	addr addr16
	port uint16
}

// Listener flags; identical to rule.flags in bpf/xdp.c.
const (
	lAllowCIDR uint32 = 1 << iota
	lAllowCountry
	lDenyCountry
	lUnknownAllow
	lPin
)

const countryWords = 32 // COUNTRY_WORDS in bpf/xdp.c

type listener struct {
	id        uint32
	name      string
	key       listenerKey
	flags     uint32
	countries [countryWords]uint32
	cidrs     *cidrSet
	pins      map[addr16]struct{}
}

// Policy is a compiled, immutable network policy. It is safe for concurrent
// use; Allow and Decide are the userspace twin of the XDP program.
type Policy struct {
	rules     Rules
	geo       *geoip.Table
	global    *cidrSet
	listeners map[listenerKey]*listener
	ordered   []*listener // by id
	frags     map[addr16][]uint16
	// nextExpiry is the earliest NotAfter of a pin still included.
	nextExpiry time.Time
}

// NextExpiry is when the earliest included pin expires (zero: none does).
// The policy must be rebuilt then; Datapath does it by itself.
func (p *Policy) NextExpiry() time.Time { return p.nextExpiry }

// NewPolicy validates and compiles rules as of now. geo may be nil (every
// address is of unknown country).
func NewPolicy(r Rules, geo *geoip.Table) (*Policy, error) {
	return NewPolicyAt(r, geo, time.Now())
}

// NewPolicyAt is NewPolicy with pins judged at the given time.
func NewPolicyAt(r Rules, geo *geoip.Table, now time.Time) (*Policy, error) {
	p := &Policy{
		rules:     r,
		geo:       geo,
		listeners: map[listenerKey]*listener{},
		frags:     map[addr16][]uint16{},
	}
	var err error
	if p.global, err = newCIDRSet(r.GlobalDeny, r.GlobalAllow); err != nil {
		return nil, fmt.Errorf("%w: global: %w", ErrInvalidRules, err)
	}
	for i, lr := range r.Listeners {
		l, err := compileListener(uint32(i+1), lr, now, &p.nextExpiry)
		if err != nil {
			return nil, fmt.Errorf("%w: listener %q: %w", ErrInvalidRules, lr.Name, err)
		}
		if prev, dup := p.listeners[l.key]; dup {
			return nil, fmt.Errorf("%w: listener %q: address %v already used by %q", ErrInvalidRules, lr.Name, lr.Listen, prev.name)
		}
		p.listeners[l.key] = l
		p.ordered = append(p.ordered, l)
	}
	// Later fragments: the ports that serve each address. A listener on an
	// unspecified address serves every address of its family.
	for _, l := range p.ordered {
		p.frags[l.key.addr] = append(p.frags[l.key.addr], l.key.port)
	}
	for _, l := range p.ordered {
		if !isUnspec(l.key.addr) {
			continue
		}
		for a := range p.frags {
			if a != l.key.addr && isV4(a) == isV4(l.key.addr) {
				p.frags[a] = append(p.frags[a], l.key.port)
			}
		}
	}
	for a, ports := range p.frags {
		slices.Sort(ports)
		ports = slices.Compact(ports)
		if len(ports) > MaxListenersPerAddr {
			return nil, fmt.Errorf("%w: address %v serves %d listeners, at most %d", ErrInvalidRules, netip.AddrFrom16(a).Unmap(), len(ports), MaxListenersPerAddr)
		}
		p.frags[a] = ports
	}
	return p, nil
}

func compileListener(id uint32, lr ListenerRules, now time.Time, next *time.Time) (*listener, error) {
	if !lr.Listen.IsValid() || lr.Listen.Port() == 0 {
		return nil, fmt.Errorf("listen address %v: want ADDR:PORT with a non-zero port", lr.Listen)
	}
	l := &listener{
		id:   id,
		name: lr.Name,
		key:  listenerKey{addr: lr.Listen.Addr().WithZone("").As16(), port: lr.Listen.Port()},
		pins: map[addr16]struct{}{},
	}
	var err error
	if l.cidrs, err = newCIDRSet(lr.DenyCIDRs, lr.AllowCIDRs); err != nil {
		return nil, err
	}
	if len(lr.AllowCIDRs) > 0 {
		l.flags |= lAllowCIDR
	}
	if len(lr.AllowCountries) > 0 && len(lr.DenyCountries) > 0 {
		return nil, errors.New("set allowCountries or denyCountries, not both")
	}
	countries := lr.AllowCountries
	if len(countries) > 0 {
		l.flags |= lAllowCountry
	}
	if len(lr.DenyCountries) > 0 {
		countries = lr.DenyCountries
		l.flags |= lDenyCountry
	}
	for _, s := range countries {
		c, err := geoip.ParseCountry(s)
		if err != nil {
			return nil, err
		}
		if c == geoip.Unknown {
			return nil, fmt.Errorf("country code %q: not a country (use AllowUnknownCountry)", s)
		}
		l.countries[c>>5] |= 1 << (c & 31)
	}
	if lr.AllowUnknownCountry {
		l.flags |= lUnknownAllow
	}
	if lr.PinToIP {
		l.flags |= lPin
		for _, pin := range lr.Pins {
			if !pin.IP.IsValid() {
				return nil, errors.New("pinned IP: invalid address")
			}
			if !pin.NotAfter.IsZero() {
				if !pin.NotAfter.After(now) {
					continue
				}
				if next.IsZero() || pin.NotAfter.Before(*next) {
					*next = pin.NotAfter
				}
			}
			l.pins[pin.IP.WithZone("").As16()] = struct{}{}
		}
	} else if len(lr.Pins) > 0 {
		return nil, errors.New("pinned IPs given but PinToIP is off")
	}
	return l, nil
}

// Rules returns the rules the policy was compiled from.
func (p *Policy) Rules() Rules { return p.rules }

// Geo returns the GeoIP table the policy uses (may be nil).
func (p *Policy) Geo() *geoip.Table { return p.geo }

var v4Unspec = netip.IPv4Unspecified().As16()

func isUnspec(a addr16) bool { return a == addr16{} || a == v4Unspec }

func isV4(a addr16) bool { return netip.AddrFrom16(a).Is4In6() }

// Allow is the decision for a connection from src to dst, as the gateway
// sees it: steps 2–5 of the decision order for an unfragmented TCP packet.
// An invalid address is refused as malformed.
func (p *Policy) Allow(src netip.Addr, dst netip.AddrPort) (bool, Reason) {
	if !src.IsValid() || !dst.IsValid() {
		return false, ReasonMalformed
	}
	pkt := Packet{
		Src:     src.WithZone("").As16(),
		Dst:     dst.Addr().WithZone("").As16(),
		V4:      src.Unmap().Is4(),
		HasPort: true,
		DstPort: dst.Port(),
	}
	r := p.decide(&pkt)
	return r == ReasonPass, r
}

// Decide runs the whole decision, parsing included, on an Ethernet frame.
// It must agree with the kernel program on every input.
func (p *Policy) Decide(frame []byte) (Verdict, Reason) {
	pkt, res := ParseFrame(frame)
	switch res {
	case parseOther:
		return Pass, ReasonPass
	case parseMalformed:
		return Drop, ReasonMalformed
	}
	if r := p.decide(&pkt); r != ReasonPass {
		return Drop, r
	}
	return Pass, ReasonPass
}

func (p *Policy) decide(pkt *Packet) Reason {
	gf := p.global.flags(pkt.Src)
	if gf&cidrDeny != 0 {
		return ReasonGlobalDeny
	}
	if p.global.hasAllow && gf&cidrAllow == 0 {
		return ReasonGlobalDeny
	}
	if pkt.HasPort {
		l := p.findListener(pkt, pkt.DstPort)
		if l == nil {
			return ReasonPass
		}
		return p.evalListener(l, pkt.Src)
	}
	if !pkt.LaterFrag {
		return ReasonPass
	}
	ports, ok := p.frags[pkt.Dst]
	if !ok {
		ports, ok = p.frags[unspecOf(pkt.V4)]
	}
	if !ok {
		return ReasonPass
	}
	first := ReasonPass
	for _, port := range ports {
		l := p.findListener(pkt, port)
		if l == nil {
			continue
		}
		r := p.evalListener(l, pkt.Src)
		if r == ReasonPass {
			return ReasonPass
		}
		if first == ReasonPass {
			first = r
		}
	}
	return first
}

func unspecOf(v4 bool) addr16 {
	if v4 {
		return v4Unspec
	}
	return addr16{}
}

func (p *Policy) findListener(pkt *Packet, port uint16) *listener {
	if l, ok := p.listeners[listenerKey{pkt.Dst, port}]; ok {
		return l
	}
	return p.listeners[listenerKey{unspecOf(pkt.V4), port}]
}

func (p *Policy) evalListener(l *listener, src addr16) Reason {
	cf := l.cidrs.flags(src)
	if cf&cidrDeny != 0 {
		return ReasonCIDR
	}
	if l.flags&lAllowCIDR != 0 && cf&cidrAllow == 0 {
		return ReasonCIDR
	}
	if l.flags&(lAllowCountry|lDenyCountry) != 0 {
		c := p.geo.Lookup(netip.AddrFrom16(src))
		if c == geoip.Unknown {
			if l.flags&lUnknownAllow == 0 {
				return ReasonCountry
			}
		} else {
			listed := l.countries[c>>5]&(1<<(c&31)) != 0
			if l.flags&lAllowCountry != 0 && !listed {
				return ReasonCountry
			}
			if l.flags&lDenyCountry != 0 && listed {
				return ReasonCountry
			}
		}
	}
	if l.flags&lPin != 0 {
		if _, ok := l.pins[src]; !ok {
			return ReasonPin
		}
	}
	return ReasonPass
}

// ParsePrefixes parses CIDR strings as stored in replicated state; a bare
// address stands for a single-host prefix. The error names the bad entry.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix or IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
