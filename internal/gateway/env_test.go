package gateway_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// --- test doubles for the control state, policy and authentication ---

// grants is a tiny stand-in for the compiled policy: "<upstream>/<pattern>".
type testRole struct {
	tools     map[string]func(map[string]any) error // pattern -> constraint check
	resources []string                              // "<upstream>/<uri pattern>"
	prompts   []string
}

type ruleFunc func(map[string]any) error

func (f ruleFunc) Check(a map[string]any) error { return f(a) }

func (r *testRole) Upstreams() []string {
	var ups []string
	add := func(p string) {
		up, _, _ := strings.Cut(p, "/")
		if !slices.Contains(ups, up) {
			ups = append(ups, up)
		}
	}
	for p := range r.tools {
		add(p)
	}
	for _, p := range r.resources {
		add(p)
	}
	for _, p := range r.prompts {
		add(p)
	}
	slices.Sort(ups)
	return ups
}

func (r *testRole) Tool(up, tool string) gateway.ToolRule {
	for p, check := range r.tools {
		if ok, _ := path.Match(p, up+"/"+tool); ok && !strings.Contains(tool, "/") {
			if check == nil {
				return ruleFunc(func(map[string]any) error { return nil })
			}
			return ruleFunc(check)
		}
	}
	return nil
}

func globMatch(patterns []string, up, name string) bool {
	for _, p := range patterns {
		pu, pn, _ := strings.Cut(p, "/")
		if pu != up {
			continue
		}
		if pn == "*" || pn == name || (strings.HasSuffix(pn, "*") && strings.HasPrefix(name, strings.TrimSuffix(pn, "*"))) {
			return true
		}
	}
	return false
}

func (r *testRole) Resource(up, uri string) bool { return globMatch(r.resources, up, uri) }
func (r *testRole) Prompt(up, name string) bool  { return globMatch(r.prompts, up, name) }

type testSource struct {
	mu   sync.Mutex
	v    atomic.Pointer[gateway.View]
	subs []chan struct{}
}

func (s *testSource) View() *gateway.View { return s.v.Load() }

func (s *testSource) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.subs = append(s.subs, ch)
	return ch, func() {}
}

func (s *testSource) set(ups map[string]*gateway.UpstreamSpec, roles map[string]*testRole) {
	old := s.v.Load()
	idx := uint64(1)
	if old != nil {
		idx = old.Index + 1
	}
	s.v.Store(&gateway.View{Index: idx, Upstreams: ups, Role: func(p string) gateway.Role {
		if r, ok := roles[p]; ok {
			return r
		}
		return nil
	}})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

type testAuth map[string]gateway.Principal // bearer key -> principal

func (a testAuth) Authenticate(r *http.Request) (gateway.Principal, error) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return gateway.Principal{}, errors.New("no key")
	}
	p, ok := a[key]
	if !ok {
		return gateway.Principal{}, errors.New("bad key")
	}
	return p, nil
}

// --- logging into t.Log ---

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
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
	sdk.AddTool(s, &sdk.Tool{Name: "confirm_close", Description: "Asks the user first"}, func(ctx context.Context, req *sdk.CallToolRequest, in ticketIn) (*sdk.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &sdk.ElicitParams{Message: "Close ticket " + in.ID + "?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}}})
		if err != nil {
			return nil, nil, fmt.Errorf("elicit: %w", err)
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("user said %s %v", res.Action, res.Content["ok"])}}}, nil, nil
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

func apiKey() string { return "pc_" + rand.Text() }

// env is a gateway in front of real SDK upstreams.
type env struct {
	t         testing.TB
	src       *testSource
	gw        *gateway.Gateway
	ts        *httptest.Server
	key       string // the support agent's key
	otherKey  string // an agent of another persona
	sessKey   []byte
	decisions chan gateway.Decision
	ups       map[string]*upstreamServer
	cfg       gateway.Config
}

func strptr(s string) *string { return &s }

func newEnv(t testing.TB, mut func(*gateway.Config)) *env {
	e := &env{t: t, src: &testSource{}, key: apiKey(), otherKey: apiKey(), sessKey: newKey(t), decisions: make(chan gateway.Decision, 1000), ups: map[string]*upstreamServer{}}
	e.ups["helpdesk"] = serveUpstream(t, newHelpdesk(t, "helpdesk", nil), "stateful")
	e.ups["billing"] = serveUpstream(t, newHelpdesk(t, "billing", nil), "stateless")
	e.ups["legacy"] = serveUpstream(t, newHelpdesk(t, "legacy", nil), "sse")
	e.ups["old"] = serveUpstream(t, newHelpdesk(t, "old", &sdk.ServerOptions{SupportedProtocolVersions: []string{"2025-03-26"}}), "stateful")
	e.src.set(e.specs(), e.roles())
	e.cfg = gateway.Config{
		Logger:          testLogger(t),
		Source:          e.src,
		Authenticator:   testAuth{e.key: {Agent: "support-bot", Persona: "support", KeyID: "k1"}, e.otherKey: {Agent: "fin-bot", Persona: "finance", KeyID: "k2"}},
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

func (e *env) specs() map[string]*gateway.UpstreamSpec {
	return map[string]*gateway.UpstreamSpec{
		"helpdesk": {Name: "helpdesk", URL: e.ups["helpdesk"].url()},
		"billing":  {Name: "billing", URL: e.ups["billing"].url(), ToolPrefix: strptr("bill")},
		"legacy":   {Name: "legacy", URL: e.ups["legacy"].url(), Transport: gateway.TransportSSE},
		"old":      {Name: "old", URL: e.ups["old"].url(), ToolPrefix: strptr("")},
	}
}

var errTicketScope = errors.New(`argument "id" must start with "T-"`)

func (e *env) roles() map[string]*testRole {
	ticketScoped := func(a map[string]any) error {
		id, _ := a["id"].(string)
		if !strings.HasPrefix(id, "T-") {
			return errTicketScope
		}
		return nil
	}
	return map[string]*testRole{
		"support": {
			tools: map[string]func(map[string]any) error{
				"helpdesk/get_ticket":    nil,
				"helpdesk/close_ticket":  ticketScoped,
				"helpdesk/slow":          nil,
				"helpdesk/confirm_close": nil,
				"billing/*":              nil,
				"legacy/get_ticket":      nil,
				"old/get_ticket":         nil,
			},
			resources: []string{"helpdesk/ticket://*"},
			prompts:   []string{"helpdesk/summarize"},
		},
		"finance": {tools: map[string]func(map[string]any) error{"billing/get_ticket": nil}},
	}
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
