package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

type askIn struct {
	Token string `json:"token,omitempty"` // non-empty: name the call's progress token in the request's _meta
}

// newAskingServer is a Go SDK server whose tool "ask" asks the client for a
// sampling on a context detached from the call, so the SDK sends the
// request on the standalone GET stream (as mark3labs/mcp-go always does),
// and whose tool "hold" tells holding it runs, then stays in flight until
// release is closed.
func newAskingServer(t *testing.T, holding chan<- struct{}, release <-chan struct{}) *sdk.Server {
	t.Helper()
	s := sdk.NewServer(&sdk.Implementation{Name: "asking-upstream", Version: "1.0"}, &sdk.ServerOptions{Logger: testLogger(t)})
	sdk.AddTool(s, &sdk.Tool{Name: "ask"}, func(ctx context.Context, req *sdk.CallToolRequest, in askIn) (*sdk.CallToolResult, any, error) {
		octx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p := &sdk.CreateMessageParams{MaxTokens: 10, Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: "ask"}}}}
		if in.Token != "" {
			// The token the server received: the client may rewrite the
			// agent's (the HTTP+SSE client does, its stream being shared).
			p.Meta = sdk.Meta{"progressToken": req.Params.GetProgressToken()}
		}
		res, err := req.Session.CreateMessage(octx, p)
		if err != nil {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "refused: " + err.Error()}}}, nil, nil
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "sampled: " + res.Content.(*sdk.TextContent).Text}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "hold"}, func(ctx context.Context, req *sdk.CallToolRequest, in askIn) (*sdk.CallToolResult, any, error) {
		holding <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "held"}}}, nil, nil
	})
	return s
}

// dialAsking serves s over Streamable HTTP (or HTTP+SSE) and dials it; it
// returns once the client's standalone stream is open.
func dialAsking(t *testing.T, s *sdk.Server, sse bool, onMessage func(*mcp.Message)) mcp.Conn {
	t.Helper()
	var h http.Handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Logger: testLogger(t)})
	if sse {
		h = sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil)
	}
	gets := make(chan struct{}, 8)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets <- struct{}{}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	cfg := mcp.ClientConfig{URL: ts.URL, ProtocolVersion: mcp.Rev20251125, Logger: testLogger(t), Capabilities: json.RawMessage(`{"sampling":{}}`), OnMessage: onMessage}
	var (
		c   mcp.Conn
		err error
	)
	if sse {
		cfg.ProtocolVersion = mcp.Rev20250326
		c, err = mcp.DialSSE(context.Background(), cfg)
	} else {
		c, err = mcp.Dial(context.Background(), cfg)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case <-gets:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never opened its standalone stream")
	}
	return c
}

// callTool calls name and returns its text; onRequest answers the server
// requests the call is handed.
func callTool(t *testing.T, c mcp.Conn, name string, args map[string]any, meta map[string]any, got *[]string, mu *sync.Mutex, answer string) string {
	t.Helper()
	p := map[string]any{"name": name, "arguments": args}
	if meta != nil {
		p["_meta"] = meta
	}
	params, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, mcp.MethodToolsCall, params, func(m *mcp.Message) {
		if !m.IsRequest() {
			return
		}
		mu.Lock()
		*got = append(*got, name+":"+m.Method)
		mu.Unlock()
		res, _ := json.Marshal(map[string]any{"role": "assistant", "model": "test", "content": map[string]any{"type": "text", "text": answer}})
		if err := c.Respond(ctx, mcp.NewResult(m.ID, res)); err != nil {
			t.Errorf("respond: %v", err)
		}
	})
	if err != nil || resp.Error != nil {
		t.Fatalf("tools/call %s: %v %v", name, err, resp)
	}
	var res struct {
		Content []struct{ Text string } `json:"content"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil || len(res.Content) != 1 {
		t.Fatalf("tools/call %s result %s: %v", name, resp.Result, err)
	}
	return res.Content[0].Text
}

// A server request sent on the standalone stream during a call reaches
// that call (the only one in flight, or the one whose progress token it
// names) and the answer gets back to the server; with two calls in flight
// and no association it is refused, and reaches nobody.
func TestServerRequestOutsideTheCallStream(t *testing.T) {
	for _, transport := range []string{"streamable", "sse"} {
		t.Run(transport, func(t *testing.T) {
			holding, release := make(chan struct{}, 1), make(chan struct{})
			s := newAskingServer(t, holding, release)
			var mu sync.Mutex
			var elsewhere []string
			c := dialAsking(t, s, transport == "sse", func(m *mcp.Message) {
				if m.IsRequest() {
					mu.Lock()
					elsewhere = append(elsewhere, m.Method)
					mu.Unlock()
				}
			})
			// A failing assertion must not leave "hold" holding the
			// server's connection (its Close would wait for it).
			releaseHold := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseHold)
			var got []string

			if txt := callTool(t, c, "ask", nil, nil, &got, &mu, "only"); txt != "sampled: only" {
				t.Fatalf("only call in flight: tool saw %q, want the call's answer", txt)
			}

			// A second call in flight: the request names no call.
			held := make(chan string, 1)
			go func() {
				held <- callTool(t, c, "hold", nil, map[string]any{"progressToken": "hold-tok"}, &got, &mu, "wrong agent")
			}()
			<-holding
			if txt := callTool(t, c, "ask", nil, map[string]any{"progressToken": "ask-tok"}, &got, &mu, "guessed"); !strings.HasPrefix(txt, "refused: ") || !strings.Contains(txt, "in flight") {
				t.Fatalf("ambiguous request: tool saw %q, want a refusal naming the calls in flight", txt)
			}
			// Named by its progress token: it reaches that call only.
			if txt := callTool(t, c, "ask", map[string]any{"token": "ask-tok"}, map[string]any{"progressToken": "ask-tok"}, &got, &mu, "associated"); txt != "sampled: associated" {
				t.Fatalf("request naming its call's progress token: tool saw %q", txt)
			}
			releaseHold()
			if txt := <-held; txt != "held" {
				t.Fatalf("hold = %q", txt)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"ask:sampling/createMessage", "ask:sampling/createMessage"}; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("requests handed to calls: %v, want %v", got, want)
			}
			if len(elsewhere) != 0 {
				t.Fatalf("requests handed to OnMessage during calls: %v", elsewhere)
			}
		})
	}
}

// A server that drops what it sends on the standalone stream while no
// GET stream is open (the TypeScript SDK does) and asks its question the
// moment a call arrives: the client's first call, made right after Dial,
// must still get the question, so Dial returns only once the stream is
// open.
func TestFirstCallDoesNotRaceTheStandaloneStream(t *testing.T) {
	var (
		mu     sync.Mutex
		stream chan []byte // the open GET stream, nil while none
		answer = make(chan json.RawMessage, 1)
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(mcp.HeaderSessionID, "s1")
		if r.Method == http.MethodGet {
			// Like the TypeScript SDK: the stream is registered, then its
			// headers are sent.
			ch := make(chan []byte, 4)
			mu.Lock()
			stream = ch
			mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for {
				select {
				case b := <-ch:
					w.Write([]byte("event: message\ndata: " + string(b) + "\n\n"))
					w.(http.Flusher).Flush()
				case <-r.Context().Done():
					return
				}
			}
		}
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		m, err := mcp.Parse(body.Bytes())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply := func(res string) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(mcp.NewResult(m.ID, json.RawMessage(res)).AppendJSON(nil))
		}
		switch {
		case m.Method == mcp.MethodInitialize:
			reply(`{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"drops","version":"1"}}`)
		case m.Method == mcp.MethodToolsCall:
			mu.Lock()
			ch := stream
			mu.Unlock()
			if ch == nil {
				reply(`{"content":[{"type":"text","text":"question dropped: no stream open"}]}`)
				return
			}
			ch <- []byte(`{"jsonrpc":"2.0","id":"q1","method":"elicitation/create","params":{"message":"name?","requestedSchema":{"type":"object","properties":{}}}}`)
			select {
			case a := <-answer:
				reply(`{"content":[{"type":"text","text":"answered: ` + strings.ReplaceAll(string(a), `"`, `'`) + `"}]}`)
			case <-time.After(10 * time.Second):
				reply(`{"content":[{"type":"text","text":"no answer"}]}`)
			}
		case m.IsResponse():
			answer <- m.Result
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(ts.Close)
	c, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL, ProtocolVersion: mcp.Rev20251125, Logger: testLogger(t),
		Capabilities: json.RawMessage(`{"elicitation":{}}`), OnMessage: func(*mcp.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, mcp.MethodToolsCall, json.RawMessage(`{"name":"ask","arguments":{}}`), func(m *mcp.Message) {
		if m.IsRequest() {
			c.Respond(ctx, mcp.NewResult(m.ID, json.RawMessage(`{"action":"accept","content":{}}`)))
		}
	})
	if err != nil || resp.Error != nil {
		t.Fatalf("tools/call: %v %v", err, resp)
	}
	if !strings.Contains(string(resp.Result), "answered: {'action':'accept'") {
		t.Fatalf("the server's question did not reach the first call: %s", resp.Result)
	}
}
