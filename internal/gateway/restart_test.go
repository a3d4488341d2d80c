package gateway_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// TestUpstreamRestartRefreshesLists: an upstream that restarts with other
// tools (it forgets the gateway's session) is re-initialized on the next
// call, and the agent's tools/list shows the new tools without the
// Upstream being applied again.
func TestUpstreamRestartRefreshesLists(t *testing.T) {
	text := func(s string) func(context.Context, *sdk.CallToolRequest, ticketIn) (*sdk.CallToolResult, any, error) {
		return func(context.Context, *sdk.CallToolRequest, ticketIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}, nil, nil
		}
	}
	serve := func(tools ...string) http.Handler {
		s := sdk.NewServer(&sdk.Implementation{Name: "desk", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
		for _, tool := range tools {
			sdk.AddTool(s, &sdk.Tool{Name: tool}, text(tool))
		}
		return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Logger: testLogger(t)})
	}
	var h atomic.Pointer[http.Handler]
	first := serve("get_ticket")
	h.Store(&first)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	e := newEnv(t, nil)

	tok, k, err := authn.NewAPIKey("desk-bot", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.keys[k.ID] = k
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams["desk"] = &state.Upstream{Meta: state.Meta{Name: "desk"}, URL: ts.URL}
		s.Skills["desk-all"] = &state.Skill{Meta: state.Meta{Name: "desk-all"}, Tools: []state.ToolGrant{{Tool: "desk/*"}}}
		s.Personas["desk"] = &state.Persona{Meta: state.Meta{Name: "desk"}, Skills: []string{"desk-all"}}
		s.Agents["desk-bot"] = &state.Agent{Meta: state.Meta{Name: "desk-bot"}, Persona: "desk"}
	}))
	ctx := context.Background()
	cs := e.connect("desk", tok, "2025-11-25", nil)
	list := func() []string {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		var out []string
		for _, tool := range res.Tools {
			out = append(out, tool.Name)
		}
		return out
	}
	if got := list(); !slices.Equal(got, []string{"desk_get_ticket"}) {
		t.Fatalf("before the restart: %v", got)
	}

	// The upstream restarts with one more tool: a new handler knows no
	// session, so the gateway's next request gets 404 and re-initializes.
	second := serve("get_ticket", "close_ticket")
	h.Store(&second)
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "desk_get_ticket", Arguments: map[string]any{"id": "T-1"}})
	if err != nil || res.IsError {
		t.Fatalf("call after the restart: %v %+v", err, res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := list()
		if slices.Equal(got, []string{"desk_close_ticket", "desk_get_ticket"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the agent still sees %v, want the new close_ticket too", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
