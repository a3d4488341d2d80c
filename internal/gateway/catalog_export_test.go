package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// TestUpstreamToolsExportsTheCache checks what the persona drafter relies
// on: every upstream's tools (also those no persona is granted) by their
// stable identity with the upstream's own definition, fetched through the
// gateway's credential hook; a dead upstream is named, not fatal; and a
// second call is served from the cache, not by asking the upstreams again.
func TestUpstreamToolsExportsTheCache(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) {
		c.UpstreamTransport = func(spec *gateway.UpstreamSpec, base http.RoundTripper) (http.RoundTripper, error) {
			return bearer{"upstream-credential-" + spec.Name, base}, nil
		}
	})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams["dead"] = &state.Upstream{Meta: state.Meta{Name: "dead"}, URL: dead.URL + "/mcp"}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cat := e.gw.UpstreamTools(ctx)

	byID := map[string]gateway.UpstreamTool{}
	for _, tl := range cat.Tools {
		byID[tl.ID()] = tl
	}
	// billing has toolPrefix "bill" and old has "": identities keep the
	// upstream's own names. No persona is granted billing/delete_ticket.
	for _, id := range []string{"helpdesk/get_ticket", "billing/get_ticket", "billing/delete_ticket", "legacy/close_ticket", "old/get_ticket"} {
		tl, ok := byID[id]
		if !ok {
			t.Errorf("%s missing from the catalog (%d tools, unavailable %v)", id, len(cat.Tools), cat.Unavailable)
			continue
		}
		var def struct{ Name, Description string }
		if err := json.Unmarshal(tl.Definition, &def); err != nil || def.Name != tl.Name || def.Description == "" {
			t.Errorf("%s: definition %s (%v)", id, tl.Definition, err)
		}
	}
	for i := 1; i < len(cat.Tools); i++ {
		if a, b := cat.Tools[i-1], cat.Tools[i]; a.Upstream > b.Upstream || (a.Upstream == b.Upstream && a.Name >= b.Name) {
			t.Fatalf("tools not sorted by identity: %s before %s", a.ID(), b.ID())
		}
	}
	if err := cat.Unavailable["dead"]; err == nil {
		t.Errorf("the dead upstream is not reported unavailable: %v", cat.Unavailable)
	}
	if len(cat.Unavailable) != 1 {
		t.Errorf("unavailable: %v, want only dead", cat.Unavailable)
	}
	if e.ups["helpdesk"].sawAuth.Load() == 0 {
		t.Error("tools/list went to the upstream without the credential the gateway injects")
	}

	before := e.ups["helpdesk"].requests.Load()
	again := e.gw.UpstreamTools(ctx)
	if len(again.Tools) != len(cat.Tools) {
		t.Errorf("second call: %d tools, first %d", len(again.Tools), len(cat.Tools))
	}
	if n := e.ups["helpdesk"].requests.Load() - before; n != 0 {
		t.Errorf("second call sent %d requests to the upstream; want the cached list", n)
	}
}

// TestUpstreamToolsHonoursContext checks that a caller whose context ends
// gets what is cached, with the upstreams still loading named.
func TestUpstreamToolsHonoursContext(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	e := newEnv(t, nil)
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams = map[string]*state.Upstream{"slow": {Meta: state.Meta{Name: "slow"}, URL: slow.URL + "/mcp"}}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cat := e.gw.UpstreamTools(ctx)
	if len(cat.Tools) != 0 || !errors.Is(cat.Unavailable["slow"], gateway.ErrListPending) {
		t.Fatalf("tools %v, unavailable %v; want slow pending", cat.Tools, cat.Unavailable)
	}
}
