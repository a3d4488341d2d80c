package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// entry is one exposed tool or prompt: the agent's name for it and the
// upstream identity it maps to.
type entry struct {
	exposed  string
	upstream string
	name     string
	raw      json.RawMessage
	params   []mcp.ParamHeader // tools: x-mcp-header annotations
}

// resEntry is one exposed resource or resource template.
type resEntry struct {
	upstream string
	key      string // uri or uriTemplate
	raw      json.RawMessage
}

// catalog is the persona's view of its upstreams for one combination of
// view and upstream lists. It is immutable once built.
type catalog struct {
	view    *View
	sources [numKinds][]*listing // the listings it was built from, per role upstream

	tools       []*entry
	toolsByName map[string]*entry
	toolsJSON   json.RawMessage // the "tools" array, rendered once

	prompts       []*entry
	promptsByName map[string]*entry
	promptsJSON   json.RawMessage

	resources     []resEntry
	resourcesJSON json.RawMessage
	templates     []resEntry
	templatesJSON json.RawMessage

	errors map[string]error // upstream -> why its lists are missing
}

type catalogs struct{ m sync.Map } // persona -> *catalog

// catalog returns the persona's catalog of the given kinds, rebuilding it
// when the view or any upstream list changed since it was built.
func (g *Gateway) catalog(ctx context.Context, persona string, role Role, v *View, kinds ...listKind) *catalog {
	ups := role.Upstreams()
	if c, ok := g.catalogs.m.Load(persona); ok {
		cat := c.(*catalog)
		if cat.view == v && g.fresh(cat, ups, kinds) {
			return cat
		}
	}
	// Start the missing lists, and wait for those still loading, but never
	// longer than ListWait after their fetch began: a hanging upstream
	// delays the first requests a little, never all of them.
	var waits []*loadState
	for _, name := range ups {
		u := g.upstream(name, v)
		if u == nil {
			continue
		}
		for _, k := range kinds {
			if ls := u.ensure(k); ls != nil {
				waits = append(waits, ls)
			}
		}
	}
	for _, ls := range waits {
		t := time.NewTimer(time.Until(ls.started.Add(g.cfg.ListWait)))
		select {
		case <-ls.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	cat := g.build(ctx, role, ups, v, kinds)
	g.catalogs.m.Store(persona, cat)
	return cat
}

// fresh reports whether cat still matches the upstream lists of kinds.
func (g *Gateway) fresh(cat *catalog, ups []string, kinds []listKind) bool {
	for _, k := range kinds {
		src := cat.sources[k]
		if len(src) != len(ups) {
			return false
		}
		for i, name := range ups {
			u := g.upstream(name, cat.view)
			if u == nil {
				if src[i] != nil {
					return false
				}
				continue
			}
			if u.lists[k].Load() != src[i] || src[i] == nil {
				return false
			}
		}
	}
	return true
}

var errListLoading = errors.New("list still loading")

func (g *Gateway) build(ctx context.Context, role Role, ups []string, v *View, kinds []listKind) *catalog {
	cat := &catalog{view: v, toolsByName: map[string]*entry{}, promptsByName: map[string]*entry{}, errors: map[string]error{}}
	order := slices.Clone(ups)
	sort.Strings(order)
	toolNames, promptNames := g.exposedNames(v, kindTools, ups), g.exposedNames(v, kindPrompts, ups)
	type cand struct {
		up   *upstream
		item item
	}
	var tools, prompts []cand
	for i := range cat.sources {
		cat.sources[i] = make([]*listing, len(ups))
	}
	for i, name := range ups {
		u := g.upstream(name, v)
		if u == nil {
			continue
		}
		for k := range numKinds {
			l := u.lists[k].Load()
			cat.sources[k][i] = l
			switch {
			case l == nil && slices.Contains(kinds, k):
				cat.errors[name] = errListLoading
			case l != nil && l.err != nil:
				cat.errors[name] = l.err
			}
		}
	}
	seenURI := map[string]bool{}
	seenTpl := map[string]bool{}
	for _, name := range order {
		u := g.upstream(name, v)
		if u == nil {
			continue
		}
		if l := u.lists[kindTools].Load(); l != nil {
			items := slices.Clone(l.items)
			sort.SliceStable(items, func(a, b int) bool { return items[a].key < items[b].key })
			for _, it := range items {
				// A high-risk tool reached only by a pattern is not
				// callable (the guard stage refuses it), so not listed.
				if role.ToolVisible(name, it.key) && (g.cfg.Guard == nil || !g.riskOf(l, name, it.key).High() || role.ToolExact(name, it.key)) {
					tools = append(tools, cand{u, it})
				}
			}
		}
		if l := u.lists[kindPrompts].Load(); l != nil {
			items := slices.Clone(l.items)
			sort.SliceStable(items, func(a, b int) bool { return items[a].key < items[b].key })
			for _, it := range items {
				if role.Prompt(name, it.key) {
					prompts = append(prompts, cand{u, it})
				}
			}
		}
		if l := u.lists[kindResources].Load(); l != nil {
			for _, it := range l.items {
				if !seenURI[it.key] && role.Resource(name, it.key) {
					seenURI[it.key] = true
					cat.resources = append(cat.resources, resEntry{name, it.key, it.raw})
				}
			}
		}
		if l := u.lists[kindTemplates].Load(); l != nil {
			for _, it := range l.items {
				if !seenTpl[it.key] && role.Resource(name, it.key) {
					seenTpl[it.key] = true
					cat.templates = append(cat.templates, resEntry{name, it.key, it.raw})
				}
			}
		}
	}
	for _, c := range tools {
		params, err := mcp.ParamHeaders(mcp.GetField(c.item.raw, "inputSchema"))
		if err != nil {
			// A tool definition with invalid x-mcp-header annotations must
			// not be offered (2026-07-28, Streamable HTTP).
			g.log.WarnContext(ctx, "upstream tool rejected", "upstream", c.up.spec.Name, "tool", c.item.key, "err", err)
			continue
		}
		exposed := toolNames[c.up][c.item.key]
		if exposed == "" {
			continue // the list changed meanwhile (fresh rebuilds)
		}
		if cat.toolsByName[exposed] != nil {
			// Another upstream with the same prefix offers the name too.
			if exposed = hashedName(exposed, c.up.spec.Name, c.item.key); cat.toolsByName[exposed] != nil {
				continue
			}
		}
		e := &entry{exposed: exposed, upstream: c.up.spec.Name, name: c.item.key, params: params}
		e.raw = renamed(c.item.raw, e.exposed, e.name)
		cat.tools = append(cat.tools, e)
		cat.toolsByName[e.exposed] = e
	}
	for _, c := range prompts {
		exposed := promptNames[c.up][c.item.key]
		if exposed == "" {
			continue
		}
		if cat.promptsByName[exposed] != nil {
			if exposed = hashedName(exposed, c.up.spec.Name, c.item.key); cat.promptsByName[exposed] != nil {
				continue
			}
		}
		e := &entry{exposed: exposed, upstream: c.up.spec.Name, name: c.item.key}
		e.raw = renamed(c.item.raw, e.exposed, e.name)
		cat.prompts = append(cat.prompts, e)
		cat.promptsByName[e.exposed] = e
	}
	byExposed := func(a, b *entry) int { return strings.Compare(a.exposed, b.exposed) }
	slices.SortFunc(cat.tools, byExposed)
	slices.SortFunc(cat.prompts, byExposed)
	cat.toolsJSON = renderEntries(cat.tools)
	cat.promptsJSON = renderEntries(cat.prompts)
	cat.resourcesJSON = renderRes(cat.resources)
	cat.templatesJSON = renderRes(cat.templates)
	return cat
}

// renamed returns def with its name replaced by exposed (when different).
func renamed(def json.RawMessage, exposed, orig string) json.RawMessage {
	if exposed == orig {
		return def
	}
	out, err := mcp.SetField(def, "name", mcp.Quote(exposed))
	if err != nil {
		return def
	}
	return out
}

func renderEntries(es []*entry) json.RawMessage {
	b := []byte{'['}
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.raw...)
	}
	return append(b, ']')
}

func renderRes(es []resEntry) json.RawMessage {
	b := []byte{'['}
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.raw...)
	}
	return append(b, ']')
}

// resourceUpstream finds the upstream serving uri for the persona: an exact
// listed resource first, then a template whose literal prefix matches, in
// upstream name order. It returns "" when none does.
func (cat *catalog) resourceUpstream(uri string) string {
	for _, r := range cat.resources {
		if r.key == uri {
			return r.upstream
		}
	}
	best, bestLen := "", -1
	for _, t := range cat.templates {
		lit := t.key
		if i := strings.IndexByte(lit, '{'); i >= 0 {
			lit = lit[:i]
		}
		if strings.HasPrefix(uri, lit) && len(lit) > bestLen {
			best, bestLen = t.upstream, len(lit)
		}
	}
	return best
}

// failedUpstreamFor names the unreachable upstream whose exposed prefix
// name carries, so that a call to a tool of a down upstream gets "upstream
// unavailable" rather than "unknown tool". "" when there is none.
func (cat *catalog) failedUpstreamFor(name string, v *View) string {
	for up := range cat.errors {
		spec := v.Upstreams[up]
		if spec == nil {
			continue
		}
		if p := spec.prefix(); p != "" && strings.HasPrefix(name, sanitizeName(p)+"_") {
			return up
		}
	}
	return ""
}
