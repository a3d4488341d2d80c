package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// An upstream timeout gives the agent a clear error and the endpoint keeps
// serving.
func TestUpstreamTimeout(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		cs := e.connect("support", e.key, v, nil)
		start := time.Now()
		_, err := call(t, cs, "helpdesk_slow", map[string]any{"id": "T-1"})
		if err == nil || !strings.Contains(err.Error(), `upstream "helpdesk" did not answer within 300ms`) {
			t.Fatalf("%s: slow call: %v", v, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%s: timeout took %v", v, d)
		}
		res, err := call(t, cs, "helpdesk_get_ticket", map[string]any{"id": "T-1"})
		if err != nil || text(t, res) != "helpdesk ticket T-1" {
			t.Fatalf("%s: endpoint wedged after a timeout: %v", v, err)
		}
	}
}

// A dead upstream fails only its own tools.
func TestUpstreamDown(t *testing.T) {
	e := newEnv(t, nil)
	e.ups["legacy"].ts.Close()
	cs := e.connect("support", e.key, "2025-06-18", nil)
	if _, err := call(t, cs, "legacy_get_ticket", map[string]any{"id": "T-1"}); err == nil || !strings.Contains(err.Error(), `upstream "legacy" cannot be reached`) {
		t.Fatalf("call to a dead upstream: %v", err)
	}
	lt, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range lt.Tools {
		if strings.HasPrefix(tool.Name, "legacy_") {
			t.Fatalf("tools of a dead upstream listed: %s", tool.Name)
		}
	}
	if len(lt.Tools) != len(supportTools)-1 {
		t.Fatalf("listed %d tools, want the %d of the live upstreams", len(lt.Tools), len(supportTools)-1)
	}
	res, err := call(t, cs, "helpdesk_get_ticket", map[string]any{"id": "T-1"})
	if err != nil || res.IsError {
		t.Fatalf("live upstream failed too: %v", err)
	}
}

// list_changed reaches the agents whose persona uses the upstream, and a
// policy change is announced too.
func TestListChanged(t *testing.T) {
	e := newEnv(t, nil)
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(v, func(t *testing.T) {
			var support, finance atomic.Int32
			supportCh := make(chan struct{}, 16)
			cs := e.connect("support", e.key, v, &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
				support.Add(1)
				supportCh <- struct{}{}
			}})
			cf := e.connect("finance", e.otherKey, v, &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { finance.Add(1) }})
			for _, s := range []*sdk.ClientSession{cs, cf} {
				if _, err := s.ListTools(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
			}
			// helpdesk gains a tool: support (uses helpdesk) hears it, finance
			// does not. The standalone streams open asynchronously, so a
			// change made before they are up may go unheard: change again.
			name := ""
			heard := false
			for i := 0; i < 10 && !heard; i++ {
				name = fmt.Sprintf("new_tool_%s_%d", strings.ReplaceAll(v, "-", ""), i)
				sdk.AddTool(e.ups["helpdesk"].srv, &sdk.Tool{Name: name}, func(context.Context, *sdk.CallToolRequest, ticketIn) (*sdk.CallToolResult, any, error) {
					return &sdk.CallToolResult{}, nil, nil
				})
				select {
				case <-supportCh:
					heard = true
				case <-time.After(time.Second):
				}
			}
			if !heard {
				t.Fatal("support agent not told about the changed tool list")
			}
			time.Sleep(200 * time.Millisecond)
			if n := finance.Load(); n != 0 {
				t.Fatalf("finance agent got %d list_changed for an upstream outside its role", n)
			}
			for len(supportCh) > 0 {
				<-supportCh
			}
			// A policy change: support is granted the new tool and sees it
			// (a grant of this subtest's tool: the list changes, so the
			// change is announced).
			e.st.set(e.snapshot(func(s *state.Snapshot) {
				s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "helpdesk/" + name})
			}))
			select {
			case <-supportCh:
			case <-time.After(5 * time.Second):
				t.Fatal("support agent not told about the policy change")
			}
			lt, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, tool := range lt.Tools {
				found = found || tool.Name == "helpdesk_"+name
			}
			if !found {
				t.Fatalf("new tool not listed after the grant: %v", lt.Tools)
			}
		})
	}
}

// Elicitation from an upstream reaches the agent: relayed as a
// server-to-client request on the call's stream for the legacy revisions,
// as an MRTR input_required round trip for 2026-07-28.
func TestElicitationRelay(t *testing.T) {
	e := newEnv(t, nil)
	for _, v := range []string{"2025-06-18", "2025-11-25", "2026-07-28"} {
		t.Run(v, func(t *testing.T) {
			var asked atomic.Int32
			cs := e.connect("support", e.key, v, &sdk.ClientOptions{
				ElicitationHandler: func(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
					asked.Add(1)
					if !strings.Contains(req.Params.Message, "Close ticket T-4?") {
						t.Errorf("elicitation message %q", req.Params.Message)
					}
					return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
				},
			})
			// helpdesk speaks 2025-11-25 (server-to-client request on the call's
			// stream); billing speaks 2026-07-28 (input_required).
			for i, tool := range []string{"helpdesk_confirm_close", "bill_confirm_close"} {
				res, err := call(t, cs, tool, map[string]any{"id": "T-4"})
				if err != nil {
					t.Fatalf("%s: %v", tool, err)
				}
				if got := text(t, res); got != "user said accept true" {
					t.Fatalf("%s: result %q", tool, got)
				}
				if n := asked.Load(); n != int32(i+1) {
					t.Fatalf("%s: agent asked %d times", tool, n)
				}
			}
		})
	}
	// An agent without the capability: the upstream gets a refusal, the agent a clear error.
	cs := e.connect("support", e.key, "2025-11-25", nil)
	res, err := call(t, cs, "helpdesk_confirm_close", map[string]any{"id": "T-4"})
	if err == nil && !res.IsError {
		t.Fatalf("elicitation without capability succeeded: %+v", res)
	}
}

// Progress notifications of a call reach the agent.
func TestProgressRelay(t *testing.T) {
	e := newEnv(t, nil)
	for _, v := range []string{"2025-06-18", "2026-07-28"} {
		got := make(chan float64, 4)
		cs := e.connect("support", e.key, v, &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			got <- req.Params.Progress
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p := &sdk.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"id": "T-1"}}
		p.SetProgressToken("prog-1")
		if _, err := cs.CallTool(ctx, p); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case v := <-got:
			if v != 1 {
				t.Fatalf("progress %v", v)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: no progress notification relayed", v)
		}
	}
}

// Cancelling a call through the agent's SDK stops the upstream call.
func TestCancellation(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.UpstreamTimeout = 10 * time.Second })
	cs := e.connect("support", e.key, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "helpdesk_slow", Arguments: map[string]any{"id": "T-1"}})
	if err == nil {
		t.Fatal("cancelled call succeeded")
	}
	// The gateway must have recorded the cancelled call promptly.
	deadline := time.After(3 * time.Second)
	for {
		select {
		case d := <-e.decisions:
			if d.Tool == "helpdesk_slow" {
				if d.UpstreamStatus != "cancelled" {
					t.Fatalf("decision %+v", d)
				}
				if time.Since(start) > 3*time.Second {
					t.Fatal("cancellation took too long")
				}
				return
			}
		case <-deadline:
			t.Fatal("no decision for the cancelled call")
		}
	}
}

// Log messages an upstream emits during a call reach the calling agent once
// it set a level.
func TestLoggingRelay(t *testing.T) {
	e := newEnv(t, nil)
	got := make(chan string, 8)
	cs := e.connect("support", e.key, "2025-11-25", &sdk.ClientOptions{LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
		got <- fmt.Sprint(req.Params.Data)
	}})
	ctx := context.Background()
	if err := cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatalf("setLevel: %v", err)
	}
	if _, err := call(t, cs, "helpdesk_report", map[string]any{"id": "T-3"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "working on T-3" {
			t.Fatalf("log message %q", m)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no log message relayed")
	}
}

// A legacy agent gets log messages from a 2026-07-28 upstream (which logs
// only when a request names a level) as it would from a legacy one: at
// "info" before any logging/setLevel, then at the level it set. Found by
// the official conformance suite (tools-call-with-logging against a
// stateless upstream).
func TestLoggingRelayFromModernUpstream(t *testing.T) {
	e := newEnv(t, nil)
	got := make(chan string, 8)
	cs := e.connect("support", e.key, "2025-11-25", &sdk.ClientOptions{LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
		got <- fmt.Sprint(req.Params.Data)
	}})
	ctx := context.Background()
	expect := func(id string, want bool) {
		t.Helper()
		if _, err := call(t, cs, "bill_report", map[string]any{"id": id}); err != nil {
			t.Fatal(err)
		}
		wait := 300 * time.Millisecond
		if want {
			wait = 3 * time.Second
		}
		select {
		case m := <-got:
			if !want || m != "working on "+id {
				t.Fatalf("log message %q (want one: %v)", m, want)
			}
		case <-time.After(wait):
			if want {
				t.Fatalf("no log message relayed for %s", id)
			}
		}
	}
	expect("T-1", true) // no setLevel yet: "info"
	if err := cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "error"}); err != nil {
		t.Fatalf("setLevel: %v", err)
	}
	expect("T-2", false)
	if err := cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatalf("setLevel: %v", err)
	}
	expect("T-3", true)
	// A level outside the spec is refused and changes nothing.
	if err := cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "unknown log level") {
		t.Fatalf("setLevel loud: %v", err)
	}
	expect("T-4", true)
}

// An upstream that accepts connections but never answers holds no call past
// its timeout and does not slow the other upstreams.
func TestHangingUpstream(t *testing.T) {
	hang := make(chan struct{})
	stuck := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer close(hang)
	e := newEnv(t, func(c *gateway.Config) {
		c.UpstreamTimeout = 300 * time.Millisecond
		c.ListWait = time.Second
	})
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams["stuck"] = &state.Upstream{Meta: state.Meta{Name: "stuck"}, URL: stuck.URL}
		s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "stuck/*"})
	}))
	cs := e.connect("support", e.key, "2025-11-25", nil)
	start := time.Now()
	res, err := call(t, cs, "helpdesk_get_ticket", map[string]any{"id": "T-1"})
	if err != nil || text(t, res) != "helpdesk ticket T-1" {
		t.Fatalf("call beside a hanging upstream: %v", err)
	}
	if _, err := call(t, cs, "stuck_anything", nil); err == nil {
		t.Fatal("call to a hanging upstream succeeded")
	}
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		if _, err := call(t, cs, "helpdesk_get_ticket", map[string]any{"id": "T-1"}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("call %d took %v beside a hanging upstream", i, d)
		}
	}
	t.Logf("first list with a hanging upstream took %v", time.Since(start))
}

// A 2026-07-28 upstream sees the capabilities of the agent whose call the
// gateway forwards, not the gateway's own: it must not count on sampling or
// elicitation the agent cannot answer. Found by the official conformance
// suite (0.2.0-alpha, server-stateless: sep-2575-server-rejects-undeclared-capability).
func TestUpstreamSeesAgentCapabilities(t *testing.T) {
	srv := sdk.NewServer(&sdk.Implementation{Name: "caps", Version: "1"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(srv, &sdk.Tool{Name: "whoami", Description: "Reports the client capabilities it sees"}, func(ctx context.Context, req *sdk.CallToolRequest, _ any) (*sdk.CallToolResult, any, error) {
		var seen []string
		if c := req.ClientCapabilities(); c != nil {
			if c.Sampling != nil {
				seen = append(seen, "sampling")
			}
			if c.Elicitation != nil {
				seen = append(seen, "elicitation")
			}
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprint(seen)}}}, nil, nil
	})
	sdk.AddTool(srv, &sdk.Tool{Name: "sample", Description: "Needs sampling"}, func(ctx context.Context, req *sdk.CallToolRequest, _ any) (*sdk.CallToolResult, any, error) {
		if c := req.ClientCapabilities(); c == nil || c.Sampling == nil {
			return nil, nil, &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapability, Message: "sampling capability required", Data: json.RawMessage(`{"requiredCapabilities":{"sampling":{}}}`)}
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "sampled"}}}, nil, nil
	})
	up := serveUpstream(t, srv, "stateless")
	e := newEnv(t, nil)
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams["caps"] = &state.Upstream{Meta: state.Meta{Name: "caps"}, URL: up.url()}
		s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "caps/*"})
	}))
	text := func(r rawResp) string {
		t.Helper()
		msgs := r.messages(t)
		var res struct{ Content []struct{ Text string } }
		if len(msgs) == 0 || json.Unmarshal(msgs[len(msgs)-1].Result, &res) != nil || len(res.Content) != 1 {
			t.Fatalf("caps_whoami: %d %s", r.status, r.body)
		}
		return res.Content[0].Text
	}
	for _, tc := range []struct{ caps, want string }{
		{`{}`, "[]"},
		{`{"elicitation":{}}`, "[elicitation]"},
		{`{"sampling":{},"elicitation":{},"experimental":{"x":{}}}`, "[sampling elicitation]"},
	} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"caps_whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":` + tc.caps + `,"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}`
		if got := text(e.do(t, "POST", "support", modernHeaders("tools/call", "caps_whoami"), body)); got != tc.want {
			t.Errorf("2026-07-28 agent declaring %s: upstream saw %s, want %s", tc.caps, got, tc.want)
		}
	}
	// The upstream's MissingRequiredClientCapability reaches a 2026-07-28
	// agent as the spec has it: HTTP 400 with -32021.
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"caps_sample","arguments":{},` + modernMeta + `}}`
	if r := e.do(t, "POST", "support", modernHeaders("tools/call", "caps_sample"), body); r.status != http.StatusBadRequest || r.rpcError(t).Code != mcp.CodeMissingRequiredClientCapability {
		t.Errorf("missing capability: %d %s, want 400 with %d", r.status, r.body, mcp.CodeMissingRequiredClientCapability)
	}
	// A legacy agent's session capabilities travel the same way.
	sid := e.initSession(t, "2025-11-25") // declares elicitation only
	r := e.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid, mcp.HeaderProtocolVersion: "2025-11-25"},
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"caps_whoami","arguments":{}}}`)
	if got := text(r); got != "[elicitation]" {
		t.Errorf("2025-11-25 agent declaring elicitation: upstream saw %s", got)
	}
}

// A 2026-07-28 retry whose requestState the gateway did not seal is
// refused, never resumed or restarted (SEP-2322: the server MUST reject
// state that fails integrity verification); an authentic one resumes.
// Found by the official conformance suite (0.2.0-alpha,
// input-required-result-tampered-state).
func TestTamperedRequestStateRefused(t *testing.T) {
	e := newEnv(t, nil)
	metaElicit := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`
	callBody := func(id int, extra string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"helpdesk_confirm_close","arguments":{"id":"T-9"}%s,%s}}`, id, extra, metaElicit)
	}
	hdr := modernHeaders("tools/call", "helpdesk_confirm_close")
	first := func() (state, key string) {
		t.Helper()
		msgs := e.do(t, "POST", "support", hdr, callBody(1, "")).messages(t)
		var ir struct {
			ResultType    string                     `json:"resultType"`
			RequestState  string                     `json:"requestState"`
			InputRequests map[string]json.RawMessage `json:"inputRequests"`
		}
		if err := json.Unmarshal(msgs[len(msgs)-1].Result, &ir); err != nil || ir.ResultType != "input_required" || len(ir.InputRequests) != 1 {
			t.Fatalf("first round: %s", msgs[len(msgs)-1].Result)
		}
		for k := range ir.InputRequests {
			key = k
		}
		return ir.RequestState, key
	}
	retry := func(id int, state, key string) rawResp {
		answer := fmt.Sprintf(`,"requestState":%q,"inputResponses":{%q:{"action":"accept","content":{"ok":true}}}`, state, key)
		return e.do(t, "POST", "support", hdr, callBody(id, answer))
	}
	state, key := first()
	// Flip one character of the sealed part.
	i := len(state) - 5
	c := byte('A')
	if state[i] == 'A' {
		c = 'B'
	}
	tampered := state[:i] + string(c) + state[i+1:]
	r := retry(2, tampered, key)
	if msgs := r.messages(t); len(msgs) == 0 || msgs[len(msgs)-1].Error == nil || !strings.Contains(msgs[len(msgs)-1].Error.Message, "integrity") {
		t.Fatalf("tampered requestState: %d %s", r.status, r.body)
	}
	// The authentic state still resumes the parked call.
	r = retry(3, state, key)
	var res struct{ Content []struct{ Text string } }
	if msgs := r.messages(t); len(msgs) == 0 || json.Unmarshal(msgs[len(msgs)-1].Result, &res) != nil || len(res.Content) != 1 || res.Content[0].Text != "user said accept true" {
		t.Fatalf("authentic requestState: %d %s", r.status, r.body)
	}
}
