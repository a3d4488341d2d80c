package gateway_test

import (
	"context"
	"crypto/rand"
	"regexp"
	"slices"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// TestExposedNamesIgnoreTheRole checks that an exposed tool name is a
// function of the upstreams' lists alone: the upstream's exact name keeps
// the clean exposed name although a tool whose name needs sanitizing sorts
// first, and a persona granted only that other tool sees it under the same
// hashed name as a persona granted both, never under the clean one.
// Likewise across upstreams, a longer prefix owns its namespace.
func TestExposedNamesIgnoreTheRole(t *testing.T) {
	text := func(s string) func(context.Context, *sdk.CallToolRequest, ticketIn) (*sdk.CallToolResult, any, error) {
		return func(context.Context, *sdk.CallToolRequest, ticketIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}, nil, nil
		}
	}
	odd := sdk.NewServer(&sdk.Implementation{Name: "odd", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(odd, &sdk.Tool{Name: "get ticket"}, text("spaced"))
	sdk.AddTool(odd, &sdk.Tool{Name: "get_ticket"}, text("exact"))
	a := sdk.NewServer(&sdk.Implementation{Name: "a", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(a, &sdk.Tool{Name: "b_c"}, text("a/b_c"))
	ab := sdk.NewServer(&sdk.Implementation{Name: "a_b", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(ab, &sdk.Tool{Name: "c"}, text("a_b/c"))
	// Two upstreams both given the empty prefix, offering the same name.
	p1 := sdk.NewServer(&sdk.Implementation{Name: "p1", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(p1, &sdk.Tool{Name: "lookup"}, text("p1/lookup"))
	p2 := sdk.NewServer(&sdk.Implementation{Name: "p2", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(p2, &sdk.Tool{Name: "lookup"}, text("p2/lookup"))
	urls := map[string]string{"odd": serveUpstream(t, odd, "stateful").url(), "a": serveUpstream(t, a, "stateful").url(), "a_b": serveUpstream(t, ab, "stateful").url(),
		"p1": serveUpstream(t, p1, "stateful").url(), "p2": serveUpstream(t, p2, "stateful").url()}
	empty := ""
	// The gateway comes after the upstreams so that its cleanup, closing
	// its upstream sessions, runs before theirs.
	e := newEnv(t, nil)

	grants := map[string][]string{
		"wide":    {"odd/*", "a/*", "a_b/*"},
		"narrow":  {"odd/get ticket"},
		"only-a":  {"a/b_c"},
		"only-p2": {"p2/*"},
		"both-p":  {"p1/*", "p2/*"},
	}
	tokens := map[string]string{}
	for persona := range grants {
		tok, k, err := authn.NewAPIKey(persona+"-bot", rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[k.ID], tokens[persona] = k, tok
	}
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		for name, url := range urls {
			s.Upstreams[name] = &state.Upstream{Meta: state.Meta{Name: name}, URL: url}
			if name == "p1" || name == "p2" {
				s.Upstreams[name].ToolPrefix = &empty
			}
		}
		for persona, tools := range grants {
			sk := &state.Skill{Meta: state.Meta{Name: persona + "-tools"}}
			for _, tool := range tools {
				sk.Tools = append(sk.Tools, state.ToolGrant{Tool: tool})
			}
			s.Skills[sk.Name] = sk
			s.Personas[persona] = &state.Persona{Meta: state.Meta{Name: persona}, Skills: []string{sk.Name}}
			s.Agents[persona+"-bot"] = &state.Agent{Meta: state.Meta{Name: persona + "-bot"}, Persona: persona}
		}
	}))

	ctx := context.Background()
	names := func(persona string) (*sdk.ClientSession, []string) {
		cs := e.connect(persona, tokens[persona], "2025-11-25", nil)
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("%s: tools/list: %v", persona, err)
		}
		var out []string
		for _, tool := range res.Tools {
			out = append(out, tool.Name)
		}
		return cs, out
	}
	call := func(cs *sdk.ClientSession, name string) string {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: map[string]any{"id": "T-1"}})
		if err != nil {
			return "error: " + err.Error()
		}
		return res.Content[0].(*sdk.TextContent).Text
	}
	hashed := regexp.MustCompile(`^(odd_get_ticket|a_b_c)_[0-9a-f]{8}$`)

	wide, wideNames := names("wide")
	var spaced, aBC string
	for _, n := range wideNames {
		if hashed.MatchString(n) {
			switch n[:3] {
			case "odd":
				spaced = n
			case "a_b":
				aBC = n
			}
		}
	}
	if !slices.Contains(wideNames, "odd_get_ticket") || spaced == "" || !slices.Contains(wideNames, "a_b_c") || aBC == "" {
		t.Fatalf("wide persona sees %v; want odd_get_ticket, a hashed odd_get_ticket_…, a_b_c and a hashed a_b_c_…", wideNames)
	}
	for name, want := range map[string]string{"odd_get_ticket": "exact", spaced: "spaced", "a_b_c": "a_b/c", aBC: "a/b_c"} {
		if got := call(wide, name); got != want {
			t.Errorf("wide: %s answered %q, want %q", name, got, want)
		}
	}

	narrow, narrowNames := names("narrow")
	if !slices.Equal(narrowNames, []string{spaced}) {
		t.Fatalf("narrow persona (granted only odd/get ticket) sees %v, want [%s] as the wide persona does", narrowNames, spaced)
	}
	if got := call(narrow, spaced); got != "spaced" {
		t.Errorf("narrow: %s answered %q", spaced, got)
	}
	onlyA, onlyANames := names("only-a")
	if !slices.Equal(onlyANames, []string{aBC}) {
		t.Fatalf("persona granted only a/b_c sees %v, want [%s]: the name a_b_c belongs to upstream a_b", onlyANames, aBC)
	}
	if got := call(onlyA, aBC); got != "a/b_c" {
		t.Errorf("only-a: %s answered %q", aBC, got)
	}

	// The empty prefix is the admin's choice of plain names: a persona
	// that sees one of the two keeps the plain name; one that sees both
	// gets it for the first upstream (by name) and the hashed form for
	// the other.
	onlyP2, onlyP2Names := names("only-p2")
	if !slices.Equal(onlyP2Names, []string{"lookup"}) || call(onlyP2, "lookup") != "p2/lookup" {
		t.Fatalf("persona granted only p2 sees %v, want [lookup] answered by p2", onlyP2Names)
	}
	bothP, bothPNames := names("both-p")
	if len(bothPNames) != 2 || bothPNames[0] != "lookup" || !regexp.MustCompile(`^lookup_[0-9a-f]{8}$`).MatchString(bothPNames[1]) {
		t.Fatalf("persona granted p1 and p2 sees %v, want lookup and a hashed lookup_…", bothPNames)
	}
	if a, b := call(bothP, "lookup"), call(bothP, bothPNames[1]); a != "p1/lookup" || b != "p2/lookup" {
		t.Fatalf("lookup answered %q and %s %q, want p1's and p2's", a, bothPNames[1], b)
	}
}
