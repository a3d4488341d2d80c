package qa

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

type ticketIn struct {
	Project string `json:"project" jsonschema:"the project the ticket belongs to"`
	ID      int    `json:"id" jsonschema:"the ticket number"`
}

type ticketOut struct {
	Title string `json:"title"`
}

type searchIn struct {
	Query string `json:"query"`
}

type searchOut struct {
	IDs []int `json:"ids"`
}

// helpdesk is a real go-sdk MCP server with read tools and one dangerous
// tool; it counts the calls that reach it.
type helpdesk struct {
	url    string
	closes atomic.Int64
	gets   atomic.Int64
}

func startHelpdesk(t *testing.T) *helpdesk {
	t.Helper()
	h := &helpdesk{}
	srv := mcp.NewServer(&mcp.Implementation{Name: "helpdesk", Version: "1"}, nil)
	ro := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(srv, &mcp.Tool{Name: "search_tickets", Description: "Search support tickets by text", Annotations: ro},
		func(_ context.Context, _ *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, searchOut, error) {
			return nil, searchOut{IDs: []int{1, 2}}, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "get_ticket", Description: "Read one support ticket", Annotations: ro},
		func(_ context.Context, _ *mcp.CallToolRequest, in ticketIn) (*mcp.CallToolResult, ticketOut, error) {
			h.gets.Add(1)
			return nil, ticketOut{Title: fmt.Sprintf("%s-%d: printer on fire", in.Project, in.ID)}, nil
		})
	destructive := true
	mcp.AddTool(srv, &mcp.Tool{Name: "close_ticket", Description: "Close a support ticket", Annotations: &mcp.ToolAnnotations{DestructiveHint: &destructive}},
		func(_ context.Context, _ *mcp.CallToolRequest, in ticketIn) (*mcp.CallToolResult, ticketOut, error) {
			h.closes.Add(1)
			return nil, ticketOut{Title: "closed"}, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: handler}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	h.url = "http://" + l.Addr().String() + "/mcp"
	return h
}

// bearer adds an agent's API key to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// connectAgent connects a real go-sdk MCP client to a persona endpoint.
func connectAgent(ctx context.Context, endpoint, key string) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "triage-bot", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: bearer{key: key, base: http.DefaultTransport}},
		MaxRetries: -1,
	}
	return client.Connect(ctx, tr, nil)
}

func toolNames(t *testing.T, ctx context.Context, s *mcp.ClientSession) []string {
	t.Helper()
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// TestAgentSeesExactlyItsPersonasTools is the third story: declare
// an upstream and a persona in YAML, create a key, point a real MCP client
// at the persona's endpoint, and see exactly the tools the persona allows.
func TestAgentSeesExactlyItsPersonasTools(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	up := startHelpdesk(t)
	n := harness.StartNode(t)
	n.Apply(strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", up.url) + `---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: close-tickets}
spec:
  tools: [{tool: helpdesk/close_ticket}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support-lead}
spec: {skills: [read-tickets, close-tickets]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: lead-bot}
spec: {persona: support-lead}
`)
	key := n.NewKey("triage-bot")
	endpoint := n.GatewayURL() + "/p/support-triage/mcp"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := connectAgent(ctx, endpoint, key)
	if err != nil {
		t.Fatalf("connect to %s: %v\n%s", endpoint, err, n.Logs())
	}
	defer s.Close()

	// Exactly the persona's tools: close_ticket exists upstream but is not
	// in the persona, so the agent never sees it.
	if got, want := toolNames(t, ctx, s), []string{"helpdesk_get_ticket", "helpdesk_search_tickets"}; !slices.Equal(got, want) {
		t.Fatalf("tools seen by triage-bot = %v, want %v", got, want)
	}

	// An allowed call with allowed arguments reaches the upstream.
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"project": "SUPPORT", "id": 7}})
	if err != nil || res.IsError {
		t.Fatalf("allowed call: %v %+v", err, res)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(text, "SUPPORT-7: printer on fire") {
		t.Fatalf("allowed call answered %q", text)
	}

	// An argument outside the skill's constraint is denied before the upstream.
	gets := up.gets.Load()
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"project": "HR", "id": 7}})
	if err == nil && !res.IsError {
		t.Fatalf("call with project HR was allowed: %+v", res)
	}
	if up.gets.Load() != gets {
		t.Fatal("a denied call reached the upstream")
	}

	// A tool outside the persona cannot be called, even by its name.
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_close_ticket", Arguments: map[string]any{"project": "SUPPORT", "id": 7}})
	if err == nil && !res.IsError {
		t.Fatalf("close_ticket was allowed for triage-bot: %+v", res)
	}
	if up.closes.Load() != 0 {
		t.Fatal("close_ticket reached the upstream")
	}

	// Another persona sees its own, larger set.
	lead, err := connectAgent(ctx, n.GatewayURL()+"/p/support-lead/mcp", n.NewKey("lead-bot"))
	if err != nil {
		t.Fatalf("connect lead-bot: %v", err)
	}
	defer lead.Close()
	if got := toolNames(t, ctx, lead); !slices.Contains(got, "helpdesk_close_ticket") || len(got) != 3 {
		t.Fatalf("tools seen by lead-bot = %v", got)
	}

	// Credentials are checked: no key, a wrong key, and a key used on
	// another persona's endpoint are all refused.
	for name, c := range map[string]struct{ endpoint, key string }{
		"wrong key":       {endpoint, "pck_aaaaaaaaaaaaaaaa_" + strings.Repeat("A", 43)},
		"other persona":   {n.GatewayURL() + "/p/support-lead/mcp", key},
		"unknown persona": {n.GatewayURL() + "/p/nobody/mcp", key},
	} {
		if s, err := connectAgent(ctx, c.endpoint, c.key); err == nil {
			s.Close()
			t.Errorf("%s: connected", name)
		}
	}
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d, want 401 with a challenge", resp.StatusCode)
	}

	// A revoked key stops working at once.
	id := strings.Split(strings.TrimPrefix(key, "pck_"), "_")[0]
	n.MustCLI("agent", "key", "revoke", "triage-bot", id)
	if s, err := connectAgent(ctx, endpoint, key); err == nil {
		s.Close()
		t.Fatal("a revoked key still connects")
	}

	// After a restart the agent (with a new key) sees the same tools.
	n.Stop()
	n.Start()
	s2, err := connectAgent(ctx, endpoint, n.NewKey("triage-bot"))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	defer s2.Close()
	if got := toolNames(t, ctx, s2); len(got) != 2 {
		t.Fatalf("tools after restart = %v", got)
	}
}

// TestPersonaDraft drafts a persona from a job description against the
// node's registry and the upstream's real tool list, then applies it.
func TestPersonaDraft(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	up := startHelpdesk(t)
	n := harness.StartNode(t)
	n.Apply(strings.ReplaceAll(helpdeskYAML, "http://127.0.0.1:9101/mcp", up.url) + `---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: manage-tickets}
spec:
  description: Close and manage support tickets
  tools: [{tool: helpdesk/close_ticket}, {tool: helpdesk/search_tickets}]
`)
	out := n.MustCLI("persona", "draft", "--description", "Reads and searches customer support tickets to triage them. Must never close tickets.")
	// The drafter saw the upstream's real tools: it grants reading and
	// searching, and never the tool that closes tickets.
	if !strings.Contains(out, "kind: Persona") || !strings.Contains(out, "helpdesk/search_tickets") && !strings.Contains(out, "read-tickets") {
		t.Fatalf("draft:\n%s", out)
	}
	if strings.Contains(out, "helpdesk/close_ticket") || strings.Contains(out, "- manage-tickets\n") || strings.Contains(out, "- manage-tickets #") {
		t.Fatalf("the draft grants closing tickets although the description forbids it:\n%s", out)
	}
	// The draft is appliable as it stands.
	res := n.Apply(out)
	if !strings.Contains(res, "created") {
		t.Fatalf("applying the draft printed:\n%s", res)
	}

	// The upstream's tool list was read (no "could not list" warning).
	js := n.MustCLI("persona", "draft", "-o", "json", "--description", "Reads support tickets")
	var ans struct {
		Proposal struct {
			Warnings []string `json:"warnings"`
		} `json:"proposal"`
		YAML string `json:"yaml"`
	}
	if err := json.Unmarshal([]byte(js), &ans); err != nil || ans.YAML == "" {
		t.Fatalf("draft -o json: %v\n%s", err, js)
	}
	for _, w := range ans.Proposal.Warnings {
		if strings.Contains(w, "could not list") {
			t.Fatalf("the drafter did not get the upstream's tools: %s", w)
		}
	}

	_, stderr, err := n.CLI("persona", "draft", "--description", "   ")
	if err == nil || !strings.Contains(stderr, "description") {
		t.Fatalf("empty description: %v %s", err, stderr)
	}
}

// TestUpstreamCredentialIsInjected: the upstream wants its own bearer
// token. The admin stores it as a secret sealed by the node's HSM and names
// it in the upstream; the agent's calls then work, the upstream sees only
// its token, and the agent's key never leaves the gateway.
func TestUpstreamCredentialIsInjected(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	up := startHelpdesk(t)
	upstreamToken := "upstream-" + strings.Repeat("z", 24)
	var seen []string
	var mu sync.Mutex
	guarded := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+upstreamToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		// Forward to the real helpdesk server.
		r2 := r.Clone(r.Context())
		r2.RequestURI, r2.URL.Scheme, r2.URL.Host = "", "http", strings.TrimSuffix(strings.TrimPrefix(up.url, "http://"), "/mcp")
		resp, err := http.DefaultTransport.RoundTrip(r2)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go guarded.Serve(l)
	t.Cleanup(func() { guarded.Close() })

	n := harness.StartNode(t)
	n.MustCLI("secret", "put", "helpdesk-token", "--from-file", writeFile(t, "tok", upstreamToken))
	yaml := strings.Replace(helpdeskYAML, "  url: http://127.0.0.1:9101/mcp\n",
		"  url: http://"+l.Addr().String()+"/mcp\n  credential: {secret: helpdesk-token}\n", 1)
	n.Apply(yaml)
	key := n.NewKey("triage-bot")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := connectAgent(ctx, n.GatewayURL()+"/p/support-triage/mcp", key)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, n.Logs())
	}
	defer s.Close()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"project": "BILLING", "id": 3}})
	if err != nil || res.IsError {
		t.Fatalf("call through a credentialed upstream: %v %+v\n%s", err, res, n.Logs())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the upstream saw no request")
	}
	for _, h := range seen {
		if h != "Bearer "+upstreamToken {
			t.Fatalf("the upstream saw Authorization %q", h)
		}
		if strings.Contains(h, key) {
			t.Fatal("the agent's key reached the upstream")
		}
	}
	if strings.Contains(n.Logs(), upstreamToken) {
		t.Fatal("the node logged the upstream token")
	}
}
