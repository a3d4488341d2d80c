package netpolicy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/portcullis-gw/portcullis/internal/state"
	"github.com/portcullis-gw/portcullis/internal/xdp"
)

// Compile maps a state snapshot to datapath rules. State validation has
// already checked every field, so problems here are rare (a key pinned to
// an unparsable address from an older release): the offending entry is
// left out and reported, the rest still applies.
func Compile(s *state.Snapshot) (xdp.Rules, []error) {
	var (
		r    xdp.Rules
		errs []error
		c    = newCompiler(s)
	)
	for _, o := range s.List(state.KindNetworkPolicy) {
		np := o.(*state.NetworkPolicy)
		r.GlobalDeny = append(r.GlobalDeny, c.prefixes("NetworkPolicy "+np.Name+" denyCIDRs", np.DenyCIDRs)...)
		r.GlobalAllow = append(r.GlobalAllow, c.prefixes("NetworkPolicy "+np.Name+" allowCIDRs", np.AllowCIDRs)...)
	}
	for _, o := range s.List(state.KindPersona) {
		p := o.(*state.Persona)
		if p.Endpoint == nil {
			continue
		}
		listen, err := netip.ParseAddrPort(p.Endpoint.Listen)
		if err != nil {
			errs = append(errs, fmt.Errorf("Persona %s: endpoint %q: %w", p.Name, p.Endpoint.Listen, err))
			continue
		}
		r.Listeners = append(r.Listeners, c.listener(p, netip.AddrPortFrom(listen.Addr().Unmap(), listen.Port())))
	}
	errs = append(errs, c.errs...)
	return r, errs
}

// sharedBase is where personas without a dedicated listener get a
// synthetic one in the userspace-only policy: the IPv6 discard prefix
// (RFC 6666), which no packet ever comes from or goes to.
var sharedBase = netip.MustParseAddr("100::").As16()

// CompileShared returns the userspace-only rules for personas that have
// network rules but no dedicated listener: the kernel cannot tell their
// traffic apart on the shared gateway port, so only the gateway's check
// (Guard) enforces them. Each such persona gets a synthetic listener
// address, returned by name; the global rules are those of Compile.
func CompileShared(s *state.Snapshot) (xdp.Rules, map[string]netip.AddrPort) {
	r, _ := Compile(s)
	r.Listeners = nil
	c := newCompiler(s)
	byName := map[string]netip.AddrPort{}
	for i, o := range s.List(state.KindPersona) {
		p := o.(*state.Persona)
		if p.Endpoint != nil || p.Network == nil {
			continue
		}
		a := sharedBase
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		listen := netip.AddrPortFrom(netip.AddrFrom16(a), 1)
		r.Listeners = append(r.Listeners, c.listener(p, listen))
		byName[p.Name] = listen
	}
	return r, byName
}

// compiler holds what every persona's listener rules are built from.
type compiler struct {
	globalUnknown string
	pins          map[string][]xdp.Pin
	errs          []error
}

func newCompiler(s *state.Snapshot) *compiler {
	c := &compiler{pins: map[string][]xdp.Pin{}}
	for _, o := range s.List(state.KindNetworkPolicy) {
		switch np := o.(*state.NetworkPolicy); {
		case np.UnknownCountry == "deny":
			c.globalUnknown = "deny"
		case np.UnknownCountry == "allow" && c.globalUnknown == "":
			c.globalUnknown = "allow"
		}
	}
	// Pinned IPs per persona, from the keys of its agents.
	for _, k := range sortedKeys(s) {
		a := s.Agents[k.Agent]
		if a == nil || k.PinIP == "" {
			continue
		}
		ip, err := netip.ParseAddr(k.PinIP)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("API key %s of agent %s: pinned address %q: %w", k.ID, k.Agent, k.PinIP, err))
			continue
		}
		c.pins[a.Persona] = append(c.pins[a.Persona], xdp.Pin{IP: ip.Unmap(), NotAfter: k.Expires})
	}
	return c
}

func (c *compiler) listener(p *state.Persona, listen netip.AddrPort) xdp.ListenerRules {
	l := xdp.ListenerRules{Name: p.Name, Listen: listen}
	n := p.Network
	if n == nil {
		return l
	}
	what := "Persona " + p.Name + " network."
	l.AllowCIDRs = c.prefixes(what+"allowCIDRs", n.AllowCIDRs)
	l.DenyCIDRs = c.prefixes(what+"denyCIDRs", n.DenyCIDRs)
	l.AllowCountries = slices.Clone(n.AllowCountries)
	l.DenyCountries = slices.Clone(n.DenyCountries)
	l.AllowUnknownCountry = unknownAllowed(n, c.globalUnknown)
	if n.PinTokensToIP {
		l.PinToIP = true
		l.Pins = c.pins[p.Name]
	}
	return l
}

func (c *compiler) prefixes(what string, ss []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := state.ParseCIDR(s)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %w", what, err))
			continue
		}
		out = append(out, p)
	}
	return out
}

// unknownAllowed resolves the rule for sources of unknown country.
func unknownAllowed(n *state.Network, global string) bool {
	rule := n.UnknownCountry
	if rule == "" {
		rule = global
	}
	switch rule {
	case "allow":
		return true
	case "deny":
		return false
	}
	return len(n.AllowCountries) == 0
}

func sortedKeys(s *state.Snapshot) []*state.APIKey {
	keys := make([]*state.APIKey, 0, len(s.Keys))
	for _, k := range s.Keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *state.APIKey) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return keys
}
