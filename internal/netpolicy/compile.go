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
	)
	prefixes := func(what string, ss []string) []netip.Prefix {
		out := make([]netip.Prefix, 0, len(ss))
		for _, c := range ss {
			p, err := state.ParseCIDR(c)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				continue
			}
			out = append(out, p)
		}
		return out
	}

	globalUnknown := ""
	for _, o := range s.List(state.KindNetworkPolicy) {
		np := o.(*state.NetworkPolicy)
		r.GlobalDeny = append(r.GlobalDeny, prefixes("NetworkPolicy "+np.Name+" denyCIDRs", np.DenyCIDRs)...)
		r.GlobalAllow = append(r.GlobalAllow, prefixes("NetworkPolicy "+np.Name+" allowCIDRs", np.AllowCIDRs)...)
		switch {
		case np.UnknownCountry == "deny":
			globalUnknown = "deny"
		case np.UnknownCountry == "allow" && globalUnknown == "":
			globalUnknown = "allow"
		}
	}

	// Pinned IPs per persona, from the keys of its agents.
	pins := map[string][]xdp.Pin{}
	for _, k := range sortedKeys(s) {
		a := s.Agents[k.Agent]
		if a == nil || k.PinIP == "" {
			continue
		}
		ip, err := netip.ParseAddr(k.PinIP)
		if err != nil {
			errs = append(errs, fmt.Errorf("API key %s of agent %s: pinned address %q: %w", k.ID, k.Agent, k.PinIP, err))
			continue
		}
		pins[a.Persona] = append(pins[a.Persona], xdp.Pin{IP: ip.Unmap(), NotAfter: k.Expires})
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
		l := xdp.ListenerRules{Name: p.Name, Listen: netip.AddrPortFrom(listen.Addr().Unmap(), listen.Port())}
		if n := p.Network; n != nil {
			what := "Persona " + p.Name + " network."
			l.AllowCIDRs = prefixes(what+"allowCIDRs", n.AllowCIDRs)
			l.DenyCIDRs = prefixes(what+"denyCIDRs", n.DenyCIDRs)
			l.AllowCountries = slices.Clone(n.AllowCountries)
			l.DenyCountries = slices.Clone(n.DenyCountries)
			l.AllowUnknownCountry = unknownAllowed(n, globalUnknown)
			if n.PinTokensToIP {
				l.PinToIP = true
				l.Pins = pins[p.Name]
			}
		}
		r.Listeners = append(r.Listeners, l)
	}
	return r, errs
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
