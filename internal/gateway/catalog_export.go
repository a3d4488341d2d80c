package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/portcullis-gw/portcullis/internal/guard"
	"slices"
	"strings"
)

// UpstreamTool is one tool an upstream lists, as the gateway caches it.
type UpstreamTool struct {
	// Upstream and Name are the tool's stable identity, "<upstream>/<name>"
	// (the name the upstream gives it, not the one agents see).
	Upstream, Name string
	// Definition is the tool as the upstream listed it (name, description,
	// inputSchema, annotations, ...).
	Definition json.RawMessage
	// Risk is its automatic risk score (internal/guard).
	Risk guard.Risk
}

// ID is the tool's stable identity, "<upstream>/<name>", as policy names it.
func (t UpstreamTool) ID() string { return t.Upstream + "/" + t.Name }

// ToolCatalog is every upstream's tool list, whatever any persona may see.
type ToolCatalog struct {
	// Tools are sorted by ID.
	Tools []UpstreamTool
	// Unavailable names the upstreams whose list could not be had, with
	// why (connection refused, an error answer, still loading when ctx
	// ended). Their tools are missing from Tools.
	Unavailable map[string]error
}

// ErrListPending: an upstream's tool list was still loading when the
// caller's context ended.
var ErrListPending = errors.New("tool list still loading")

// UpstreamTools returns the tools of every upstream of the current control
// state from the gateway's cache, the same lists (and the same connections,
// with the same injected credentials) agents' catalogs are built from. Lists
// not cached yet are fetched; the call waits for them as long as ctx allows.
// It never dials an upstream itself, so an admin tool (the persona drafter)
// costs the upstreams no second connection.
//
// Safe for concurrent use, from any goroutine; it blocks at most until ctx
// ends (a fetch that outlives ctx goes on and fills the cache).
func (g *Gateway) UpstreamTools(ctx context.Context) *ToolCatalog {
	out := &ToolCatalog{Unavailable: map[string]error{}}
	v := g.cfg.Source.View()
	if v == nil {
		return out
	}
	names := make([]string, 0, len(v.Upstreams))
	for name := range v.Upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	ups := make([]*upstream, len(names))
	var waits []*loadState
	for i, name := range names {
		if ups[i] = g.upstream(name, v); ups[i] == nil {
			continue
		}
		if ls := ups[i].ensure(kindTools); ls != nil {
			waits = append(waits, ls)
		}
	}
	for _, ls := range waits {
		select {
		case <-ls.done:
		case <-ctx.Done():
		}
	}
	for i, name := range names {
		u := ups[i]
		if u == nil {
			out.Unavailable[name] = errors.New("upstream removed")
			continue
		}
		l := u.lists[kindTools].Load()
		switch {
		case l == nil:
			out.Unavailable[name] = ErrListPending
			continue
		case l.err != nil:
			out.Unavailable[name] = fmt.Errorf("tools/list: %w", l.err)
			continue
		}
		for _, it := range l.items {
			out.Tools = append(out.Tools, UpstreamTool{Upstream: name, Name: it.key, Definition: it.raw, Risk: g.riskOf(l, name, it.key)})
		}
	}
	slices.SortFunc(out.Tools, func(a, b UpstreamTool) int {
		if c := strings.Compare(a.Upstream, b.Upstream); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
