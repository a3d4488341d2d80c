package gateway

import (
	"github.com/portcullis-gw/portcullis/internal/guard"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/policy"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// StateReader is the part of *state.Store the gateway reads.
type StateReader interface {
	Current() *state.Snapshot
	Subscribe() (<-chan struct{}, func())
}

// StateSource adapts the replicated state to a Source: policy is compiled
// once per snapshot (policy.Compile) and the resulting View cached, so a
// request costs one atomic load and a pointer comparison.
func StateSource(st StateReader) Source { return &stateSource{st: st} }

type stateSource struct {
	st    StateReader
	cache atomic.Pointer[cachedView]
}

type cachedView struct {
	snap *state.Snapshot
	view *View
}

var _ Source = (*stateSource)(nil)

func (s *stateSource) Subscribe() (<-chan struct{}, func()) { return s.st.Subscribe() }

func (s *stateSource) View() *View {
	snap := s.st.Current()
	if snap == nil {
		return nil
	}
	if c := s.cache.Load(); c != nil && c.snap == snap {
		return c.view
	}
	v := viewOf(snap)
	s.cache.Store(&cachedView{snap: snap, view: v})
	return v
}

func viewOf(snap *state.Snapshot) *View {
	set := policy.Compile(snap)
	ups := make(map[string]*UpstreamSpec, len(snap.Upstreams))
	for name, u := range snap.Upstreams {
		ups[name] = &UpstreamSpec{
			Name: name, URL: u.URL, Transport: u.Transport, ToolPrefix: u.ToolPrefix,
			Timeout: time.Duration(u.Timeout), ProtocolVersion: u.ProtocolVersion,
			Credential: u.Credential, Environment: u.Environment, Egress: u.Egress,
		}
	}
	dlpRules := map[string][]state.DLPRule{}
	for name, p := range snap.Personas {
		if len(p.DLP) > 0 {
			dlpRules[name] = p.DLP
		}
	}
	return &View{Index: snap.Index, Upstreams: ups, DLP: dlpRules, Limits: guard.Compile(snap), Role: func(persona string) Role {
		if r := set.Role(persona); r != nil {
			return r
		}
		return nil
	}, Describe: func(persona string) string {
		if p := snap.Personas[persona]; p != nil {
			return p.Description
		}
		return ""
	}}
}
