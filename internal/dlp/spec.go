package dlp

import (
	"github.com/portcullis-gw/portcullis/internal/state"
)

// PolicyFromSpec converts the dlp rules of a Persona spec into a validated
// Policy.
func PolicyFromSpec(rules []state.DLPRule) (Policy, error) {
	p := Policy{Rules: make([]Rule, 0, len(rules))}
	for _, r := range rules {
		cats := make([]Category, 0, len(r.Categories))
		for _, c := range r.Categories {
			cats = append(cats, Category(c))
		}
		p.Rules = append(p.Rules, Rule{
			Categories: cats,
			Detectors:  append([]string(nil), r.Detectors...),
			Direction:  r.Direction,
			Action:     Action(r.Action),
			KeepTail:   r.KeepTail,
			Format:     r.Format,
		})
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// UpstreamFromSpec returns the data-flow view (name, environment, egress)
// of an upstream.
func UpstreamFromSpec(u *state.Upstream) Upstream {
	return Upstream{Name: u.Name, Environment: Environment(u.Environment), Egress: Egress(u.Egress)}
}
