package qa

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/qa/internal/harness"
)

// flakyUpstream is a real go-sdk MCP server with one tool, echo, that
// answers HTTP 503 to every request while failing is set.
type flakyUpstream struct {
	url     string
	failing atomic.Bool
	calls   atomic.Int64
}

func startFlaky(t *testing.T) *flakyUpstream {
	t.Helper()
	f := &flakyUpstream{}
	srv := mcp.NewServer(&mcp.Implementation{Name: "flaky", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in harness.EchoIn) (*mcp.CallToolResult, harness.EchoOut, error) {
		f.calls.Add(1)
		return nil, harness.EchoOut{Echo: in.Text}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{JSONResponse: true})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.failing.Load() && r.Method == http.MethodPost {
			http.Error(w, "backend down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL + "/mcp"
	return f
}

const guardYAML = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: echo}
spec: {url: %q, breaker: {failures: 3, cooldown: 1s}}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: echo}
spec:
  description: Echo text
  tools: [{tool: echo/echo}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: chatty}
spec:
  skills: [echo]
  limits: {callsPerMinute: 5}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: toolbound}
spec:
  skills: [echo]
  limits: {tools: {"echo/echo": {callsPerMinute: 3}}}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: chatty-bot}
spec: {persona: chatty}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: tool-bot}
spec: {persona: toolbound}
`

// TestGuardThroughTheBinary: a persona's spec.limits and a per-tool limit
// refuse the calls above them with a JSON-RPC error saying "rate limit"
// and when to retry, to a real go-sdk agent through the real binary; an
// upstream answering 503 opens its circuit breaker (calls refused at once,
// the upstream not called, status says open) and a good trial call closes
// it.
func TestGuardThroughTheBinary(t *testing.T) {
	up := startFlaky(t)
	n := harness.StartNode(t)
	n.Apply(fmt.Sprintf(guardYAML, up.url))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	session := func(persona, agent string) *mcp.ClientSession {
		s, err := connectAgent(ctx, n.GatewayURL()+"/p/"+persona+"/mcp", n.NewKey(agent))
		if err != nil {
			t.Fatalf("connect %s: %v", persona, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	echo := func(s *mcp.ClientSession, text string) error {
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo_echo", Arguments: map[string]any{"text": text}})
		if err == nil && res.IsError {
			b, _ := json.Marshal(res.Content)
			err = fmt.Errorf("tool error %s", b)
		}
		return err
	}

	for _, c := range []struct {
		persona, agent, want string
		limit                int
	}{
		{"chatty", "chatty-bot", "agent chatty-bot of persona chatty may make 5 calls per minute", 5},
		{"toolbound", "tool-bot", "agent tool-bot of persona toolbound on echo/echo may make 3 calls per minute", 3},
	} {
		s := session(c.persona, c.agent)
		ok := 0
		var refused error
		for i := 0; i < c.limit+3; i++ {
			if err := echo(s, fmt.Sprint(i)); err != nil {
				refused = err
				continue
			}
			ok++
		}
		if ok != c.limit || refused == nil || !strings.Contains(refused.Error(), "rate limit") || !strings.Contains(refused.Error(), c.want) {
			t.Errorf("%s: %d of %d calls passed under a limit of %d, last refusal %v; want %d and a refusal naming %q", c.persona, ok, c.limit+3, c.limit, refused, c.limit, c.want)
		}
	}
	// The refusal's data tells a program when to retry.
	raw := harness.NewRawClient(n.GatewayURL()+"/p/chatty/mcp", n.NewKey("chatty-bot"), 1)
	if err := raw.Initialize(); err != nil {
		t.Fatal(err)
	}
	var last *harness.Response
	for i := 0; i < 6; i++ {
		r, err := raw.CallTool("echo_echo", map[string]any{"text": "x"})
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	if last.Error == nil || !strings.Contains(last.Error.Message, "rate limit") || !strings.Contains(string(last.Error.Data), `"retryAfterMs":`) || !strings.Contains(string(last.Error.Data), `"limit":"rate-limit"`) {
		t.Errorf("6th call under 5/min: %+v, want a JSON-RPC error with retryAfterMs", last.Error)
	}

	// Circuit breaker: the upstream fails; after 3 failures in a row calls
	// are refused without reaching it.
	s := session("toolbound", "tool-bot")
	n.Apply(fmt.Sprintf(strings.Replace(guardYAML, `limits: {tools: {"echo/echo": {callsPerMinute: 3}}}`, `limits: {}`, 1), up.url))
	up.failing.Store(true)
	for i := 0; i < 3; i++ {
		if err := echo(s, "down"); err == nil {
			t.Fatalf("call %d to a failing upstream succeeded", i)
		}
	}
	before := up.calls.Load()
	err := echo(s, "open?")
	if err == nil || !strings.Contains(err.Error(), "circuit open: upstream echo failed 3 calls in a row") {
		t.Fatalf("4th call after 3 upstream failures: %v, want circuit open", err)
	}
	code, b, _ := n.AdminDo(http.MethodGet, "/v1/upstreams/echo", "")
	if code != http.StatusOK || !strings.Contains(string(b), `"circuit":"open"`) {
		t.Errorf("GET /v1/upstreams/echo while open: %d %s, want status circuit open", code, b)
	}
	up.failing.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for echo(s, "back") != nil {
		if time.Now().After(deadline) {
			t.Fatal("the circuit did not close after the upstream came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if up.calls.Load() == before {
		t.Error("the trial call did not reach the upstream")
	}
	if code, b, _ := n.AdminDo(http.MethodGet, "/v1/upstreams/echo", ""); !strings.Contains(string(b), `"circuit":"closed"`) {
		t.Errorf("GET /v1/upstreams/echo after recovery: %d %s, want circuit closed", code, b)
	}
}

// TestToolRiskThroughTheBinary: tools get a risk level from their MCP
// definitions; a high-risk tool is not reached by a skill's "*" pattern
// (not listed, not callable) but is by a grant of its exact name, and
// `portcullis get tools -o wide` shows each tool's level and reasons.
func TestToolRiskThroughTheBinary(t *testing.T) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "ops", Version: "1"}, nil)
	yes := true
	type idIn struct {
		ID int `json:"id"`
	}
	ok := func(context.Context, *mcp.CallToolRequest, idIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "get_ticket", Description: "Read one ticket.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, ok)
	mcp.AddTool(srv, &mcp.Tool{Name: "delete_ticket", Description: "Delete a ticket for good.", Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes}}, ok)
	mcp.AddTool(srv, &mcp.Tool{Name: "run_command", Description: "Run a shell command on the host"}, func(context.Context, *mcp.CallToolRequest, struct {
		Cmd string `json:"cmd"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran"}}}, nil, nil
	})
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{JSONResponse: true}))
	t.Cleanup(hs.Close)
	n := harness.StartNode(t)
	n.Apply(fmt.Sprintf(`apiVersion: portcullis/v1
kind: Upstream
metadata: {name: ops}
spec: {url: %q}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: ops-all}
spec: {description: Everything of ops, tools: [{tool: "ops/*"}]}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: ops-delete}
spec: {description: Delete tickets, tools: [{tool: ops/delete_ticket}]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: broad}
spec: {skills: [ops-all]}
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: deleter}
spec: {skills: [ops-all, ops-delete]}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: broad-bot}
spec: {persona: broad}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: deleter-bot}
spec: {persona: deleter}
`, hs.URL+"/mcp"))

	out := n.MustCLI("get", "tools", "-o", "wide")
	for _, want := range []string{"ops/get_ticket", "ops/delete_ticket", "ops/run_command", "destructive (annotations.destructiveHint)", "free-form command argument cmd", "exact only"} {
		if !strings.Contains(out, want) {
			t.Errorf("get tools -o wide lacks %q:\n%s", want, out)
		}
	}
	levels := map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			levels[f[0]] = f[1]
		}
	}
	if levels["ops/get_ticket"] != "low" || levels["ops/delete_ticket"] != "high" || levels["ops/run_command"] != "critical" {
		t.Errorf("risk levels %v, want get_ticket low, delete_ticket high, run_command critical", levels)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names := func(persona, agent string) ([]string, *mcp.ClientSession) {
		s, err := connectAgent(ctx, n.GatewayURL()+"/p/"+persona+"/mcp", n.NewKey(agent))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return toolNames(t, ctx, s), s
	}
	broad, bs := names("broad", "broad-bot")
	if strings.Join(broad, ",") != "ops_get_ticket" {
		t.Errorf("a persona granted ops/* lists %v, want only the low-risk ops_get_ticket", broad)
	}
	if _, err := bs.CallTool(ctx, &mcp.CallToolParams{Name: "ops_run_command", Arguments: map[string]any{"cmd": "id"}}); err == nil {
		t.Error("ops_run_command (critical) was callable through the ops/* pattern")
	}
	deleter, ds := names("deleter", "deleter-bot")
	if strings.Join(deleter, ",") != "ops_delete_ticket,ops_get_ticket" {
		t.Errorf("a persona also granted ops/delete_ticket exactly lists %v", deleter)
	}
	res, err := ds.CallTool(ctx, &mcp.CallToolParams{Name: "ops_delete_ticket", Arguments: map[string]any{"id": 7}})
	if err != nil || res.IsError {
		t.Errorf("delete_ticket with an exact grant: %v %+v", err, res)
	}
}
