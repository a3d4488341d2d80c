package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// --- control state: real snapshots, real policy, real API keys ---

// memState is a state.Store stand-in holding snapshots the test builds.
type memState struct {
	mu   sync.Mutex
	cur  atomic.Pointer[state.Snapshot]
	subs []chan struct{}
}

func (s *memState) Current() *state.Snapshot { return s.cur.Load() }

func (s *memState) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.subs = append(s.subs, ch)
	return ch, func() {}
}

func (s *memState) set(snap *state.Snapshot) {
	if old := s.cur.Load(); old != nil {
		snap.Index = old.Index + 1
	}
	s.cur.Store(snap)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// --- logging into t.Log ---

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	switch t.(type) {
	case *testing.B, *testing.F: // benchmarks measure; fuzz targets must not log via f
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// --- real SDK upstreams ---

type ticketIn struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

type upstreamServer struct {
	srv      *sdk.Server
	ts       *httptest.Server
	sawAuth  atomic.Int32
	requests atomic.Int32
}

func (u *upstreamServer) url() string { return u.ts.URL }

// newHelpdesk is an SDK server with tickets tools, a resource, a template
// and a prompt.
func newHelpdesk(t testing.TB, name string, opts *sdk.ServerOptions) *sdk.Server {
	if opts == nil {
		opts = &sdk.ServerOptions{}
	}
	opts.Logger = testLogger(t)
	opts.CompletionHandler = func(ctx context.Context, req *sdk.CompleteRequest) (*sdk.CompleteResult, error) {
		return &sdk.CompleteResult{Completion: sdk.CompletionResultDetails{Values: []string{req.Params.Argument.Value + "100"}}}, nil
	}
	opts.SubscribeHandler = func(context.Context, *sdk.SubscribeRequest) error { return nil }
	opts.UnsubscribeHandler = func(context.Context, *sdk.UnsubscribeRequest) error { return nil }
	s := sdk.NewServer(&sdk.Implementation{Name: name, Version: "1.0"}, opts)
	sdk.AddTool(s, &sdk.Tool{Name: "get_ticket", Description: "Read a ticket"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name + " ticket " + in.ID}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "close_ticket", Description: "Close a ticket"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "closed " + in.ID}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "delete_ticket", Description: "Delete a ticket"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "DELETED " + in.ID}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "slow", Description: "Sleeps"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "slept"}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "report", Description: "Reports progress, then works a while"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
		}
		_ = req.Session.Log(ctx, &sdk.LoggingMessageParams{Level: "info", Logger: name, Data: "working on " + in.ID})
		time.Sleep(300 * time.Millisecond)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "report " + in.ID + " done"}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "link_ticket", Description: "Links a ticket"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{
			&sdk.TextContent{Text: "see"},
			&sdk.ResourceLink{URI: "ticket://" + in.ID, Name: "ticket " + in.ID, MIMEType: "text/plain"},
		}}, nil, nil
	})
	// region_query mirrors its "region" argument into Mcp-Param-Region
	// (x-mcp-header, 2026-07-28).
	s.AddTool(&sdk.Tool{Name: "region_query", Description: "Query a region", InputSchema: map[string]any{
		"type": "object",
		"properties": map[string]any{
			"region": map[string]any{"type": "string", "x-mcp-header": "Region"},
			"q":      map[string]any{"type": "string"},
		},
	}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in struct{ Region, Q string }
		_ = json.Unmarshal(req.Params.Arguments, &in)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name + " " + in.Region + ": " + in.Q}}}, nil
	})
	// confirm_close asks the user first, written in the MRTR style: on
	// 2026-07-28 the SDK returns input_required; for older clients it sends
	// elicitation/create on the call's stream and retries the handler.
	s.AddTool(&sdk.Tool{Name: "confirm_close", Description: "Asks the user first", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in ticketIn
		_ = json.Unmarshal(req.Params.Arguments, &in)
		if r, ok := req.Params.InputResponses["confirm"].(*sdk.ElicitResult); ok {
			if req.Params.RequestState != "state-"+in.ID {
				return nil, fmt.Errorf("request state %q lost", req.Params.RequestState)
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("user said %s %v", r.Action, r.Content["ok"])}}}, nil
		}
		return &sdk.CallToolResult{
			InputRequests: sdk.InputRequestMap{"confirm": &sdk.ElicitParams{Message: "Close ticket " + in.ID + "?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}}}},
			RequestState:  "state-" + in.ID,
		}, nil
	})
	s.AddResource(&sdk.Resource{URI: "ticket://open", Name: "open-tickets", MIMEType: "text/plain"}, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: name + " open: 1,2"}}}, nil
	})
	s.AddResource(&sdk.Resource{URI: "secret://keys", Name: "keys", MIMEType: "text/plain"}, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "TOP SECRET"}}}, nil
	})
	s.AddResourceTemplate(&sdk.ResourceTemplate{URITemplate: "ticket://{id}", Name: "ticket"}, func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, Text: "ticket body for " + req.Params.URI}}}, nil
	})
	s.AddPrompt(&sdk.Prompt{Name: "summarize", Description: "Summarize a ticket", Arguments: []*sdk.PromptArgument{{Name: "id"}}}, func(ctx context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "Summarize ticket " + req.Params.Arguments["id"]}}}}, nil
	})
	s.AddPrompt(&sdk.Prompt{Name: "internal", Description: "Not for agents"}, func(ctx context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "internal"}}}}, nil
	})
	return s
}

// serveUpstream serves s over Streamable HTTP (stateless: also 2026-07-28),
// or over the deprecated HTTP+SSE transport.
func serveUpstream(t testing.TB, s *sdk.Server, mode string) *upstreamServer {
	var h http.Handler
	switch mode {
	case "sse":
		h = sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil)
	case "json":
		h = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{JSONResponse: true, Logger: testLogger(t)})
	case "stateless":
		h = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Stateless: true, Logger: testLogger(t)})
	default:
		h = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Logger: testLogger(t)})
	}
	u := &upstreamServer{srv: s}
	u.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			u.sawAuth.Add(1)
		}
		u.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.ts.Close)
	return u
}

func newKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// env is a gateway in front of real SDK upstreams.
type env struct {
	t         testing.TB
	st        *memState
	gw        *gateway.Gateway
	ts        *httptest.Server
	key       string // the support agent's key
	otherKey  string // the finance agent's key
	keys      map[string]*state.APIKey
	sessKey   []byte
	decisions chan gateway.Decision
	ups       map[string]*upstreamServer
	cfg       gateway.Config
}

func strptr(s string) *string { return &s }

func newEnv(t testing.TB, mut func(*gateway.Config)) *env {
	e := &env{t: t, st: &memState{}, sessKey: newKey(t), decisions: make(chan gateway.Decision, 1000), ups: map[string]*upstreamServer{}, keys: map[string]*state.APIKey{}}
	helpdeskMode := "stateful"
	if _, ok := t.(*testing.B); ok {
		helpdeskMode = "json" // the benchmark compares JSON round trips
	}
	e.ups["helpdesk"] = serveUpstream(t, newHelpdesk(t, "helpdesk", nil), helpdeskMode)
	e.ups["billing"] = serveUpstream(t, newHelpdesk(t, "billing", nil), "stateless")
	e.ups["legacy"] = serveUpstream(t, newHelpdesk(t, "legacy", nil), "sse")
	e.ups["old"] = serveUpstream(t, newHelpdesk(t, "old", &sdk.ServerOptions{SupportedProtocolVersions: []string{"2025-03-26"}}), "stateful")
	for agent, persona := range map[string]string{"support-bot": "support", "fin-bot": "finance"} {
		tok, k, err := authn.NewAPIKey(agent, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[k.ID] = k
		if persona == "support" {
			e.key = tok
		} else {
			e.otherKey = tok
		}
	}
	e.st.set(e.snapshot(nil))
	e.cfg = gateway.Config{
		Logger:          testLogger(t),
		Source:          gateway.StateSource(e.st),
		Authenticator:   &authn.APIKeys{State: e.st},
		SessionKey:      e.sessKey,
		UpstreamTimeout: 2 * time.Second,
		MaxBodyBytes:    64 << 10,
		KeepAlive:       time.Second,
		OnDecision: func(d gateway.Decision) {
			select {
			case e.decisions <- d:
			default:
			}
		},
	}
	if mut != nil {
		mut(&e.cfg)
	}
	gw, err := gateway.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	e.ts = httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		e.ts.Close()
		cancel()
		<-done
		gw.Close()
	})
	return e
}

// snapshot builds the control state: four upstreams (one per transport and
// revision family), persona "support" with scoped skills and persona
// "finance" with one billing tool. mut may change it.
func (e *env) snapshot(mut func(*state.Snapshot)) *state.Snapshot {
	up := func(name, url, transport string, prefix *string) *state.Upstream {
		return &state.Upstream{Meta: state.Meta{Name: name}, URL: url, Transport: transport, ToolPrefix: prefix}
	}
	skill := func(name string, s state.Skill) *state.Skill {
		s.Meta = state.Meta{Name: name}
		return &s
	}
	snap := &state.Snapshot{
		Index: 1,
		Upstreams: map[string]*state.Upstream{
			"helpdesk": up("helpdesk", e.ups["helpdesk"].url(), "", nil),
			"billing":  up("billing", e.ups["billing"].url(), "", strptr("bill")),
			"legacy":   up("legacy", e.ups["legacy"].url(), "sse", nil),
			"old":      up("old", e.ups["old"].url(), "", strptr("")),
		},
		Skills: map[string]*state.Skill{
			"tickets": skill("tickets", state.Skill{
				Tools: []state.ToolGrant{
					{Tool: "helpdesk/get_ticket"},
					{Tool: "helpdesk/close_ticket", Args: map[string]*state.Constraint{"id": {Prefix: strptr("T-")}}},
					{Tool: "helpdesk/slow"},
					{Tool: "helpdesk/report"},
					{Tool: "helpdesk/link_ticket"},
					{Tool: "helpdesk/confirm_close"},
					{Tool: "legacy/get_ticket"},
					{Tool: "old/get_ticket"},
				},
				Resources: []state.ResourceGrant{{URI: "ticket://*", Upstream: "helpdesk"}},
				Prompts:   []state.PromptGrant{{Prompt: "helpdesk/summarize"}},
			}),
			"billing-all":  skill("billing-all", state.Skill{Tools: []state.ToolGrant{{Tool: "billing/*"}}}),
			"billing-read": skill("billing-read", state.Skill{Tools: []state.ToolGrant{{Tool: "billing/get_ticket"}}}),
		},
		Personas: map[string]*state.Persona{
			"support": {Meta: state.Meta{Name: "support"}, Description: "First-line support: reads and closes helpdesk tickets.", Skills: []string{"tickets", "billing-all"}},
			"finance": {Meta: state.Meta{Name: "finance"}, Skills: []string{"billing-read"}},
		},
		Agents: map[string]*state.Agent{
			"support-bot": {Meta: state.Meta{Name: "support-bot"}, Persona: "support"},
			"fin-bot":     {Meta: state.Meta{Name: "fin-bot"}, Persona: "finance"},
		},
		Keys:    e.keys,
		Secrets: map[string]*state.Secret{},
	}
	if mut != nil {
		mut(snap)
	}
	return snap
}

func (e *env) endpoint(persona string) string { return e.ts.URL + "/p/" + persona + "/mcp" }

// bearer adds an Authorization header to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// connect opens a real SDK client session through the gateway.
func (e *env) connect(persona, key, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	e.t.Helper()
	if opts == nil {
		opts = &sdk.ClientOptions{}
	}
	opts.Logger = testLogger(e.t)
	c := sdk.NewClient(&sdk.Implementation{Name: "agent", Version: "1"}, opts)
	tr := &sdk.StreamableClientTransport{Endpoint: e.endpoint(persona), HTTPClient: &http.Client{Transport: bearer{key, http.DefaultTransport}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		e.t.Fatalf("connect %s via gateway: %v", version, err)
	}
	e.t.Cleanup(func() { cs.Close() })
	return cs
}

func newServer(t testing.TB, h http.Handler) *httptest.Server {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// connectHeader is connect with extra headers on every request.
func (e *env) connectHeader(persona, key, version string, opts *sdk.ClientOptions, hdr http.Header) *sdk.ClientSession {
	e.t.Helper()
	if len(hdr) == 0 {
		return e.connect(persona, key, version, opts)
	}
	opts.Logger = testLogger(e.t)
	c := sdk.NewClient(&sdk.Implementation{Name: "agent", Version: "1"}, opts)
	tr := &sdk.StreamableClientTransport{Endpoint: e.endpoint(persona), HTTPClient: &http.Client{Transport: headers{hdr, bearer{key, http.DefaultTransport}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		e.t.Fatalf("connect %s via gateway: %v", version, err)
	}
	e.t.Cleanup(func() { cs.Close() })
	return cs
}

// headers adds fixed headers to every request.
type headers struct {
	h    http.Header
	base http.RoundTripper
}

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.h {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}
