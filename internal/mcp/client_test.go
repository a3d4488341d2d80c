package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

type echoIn struct {
	Text string `json:"text"`
}

func newSDKServer(t *testing.T, versions ...string) *sdk.Server {
	t.Helper()
	s := sdk.NewServer(&sdk.Implementation{Name: "echo-upstream", Version: "1.0"}, &sdk.ServerOptions{
		SupportedProtocolVersions: versions,
		Logger:                    testLogger(t),
	})
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "echoes"}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: "half"})
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo:" + in.Text}}}, nil, nil
	})
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func callEcho(t *testing.T, c mcp.Conn, text string, onMsg func(*mcp.Message)) string {
	t.Helper()
	params, _ := json.Marshal(map[string]any{"name": "echo", "arguments": map[string]any{"text": text}, "_meta": map[string]any{"progressToken": "tok-1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, mcp.MethodToolsCall, params, onMsg)
	if err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("tools/call error: %v", resp.Error)
	}
	var res struct {
		Content []struct{ Text string } `json:"content"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil || len(res.Content) != 1 {
		t.Fatalf("tools/call result %s: %v", resp.Result, err)
	}
	return res.Content[0].Text
}

func TestClientAgainstSDKServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		server    []string // versions the server supports (nil: all)
		pin       string
		want      string
		jsonResp  bool
		wantSessn bool
	}{
		{"negotiate-modern", nil, "", mcp.Rev20260728, false, false},
		{"negotiate-legacy-server", []string{mcp.Rev20250618}, "", mcp.Rev20250618, false, true},
		{"pin-2025-11-25", nil, mcp.Rev20251125, mcp.Rev20251125, false, true},
		{"pin-2025-03-26-json", nil, mcp.Rev20250326, mcp.Rev20250326, true, true},
		{"pin-2026-07-28-json", nil, mcp.Rev20260728, mcp.Rev20260728, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSDKServer(t, tc.server...)
			// The SDK serves 2026-07-28 only from its stateless handler.
			h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{JSONResponse: tc.jsonResp, Stateless: tc.want == mcp.Rev20260728, Logger: testLogger(t)})
			var sawAuth sync.Map
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "" {
					sawAuth.Store(true, true)
				}
				h.ServeHTTP(w, r)
			}))
			defer ts.Close()
			changed := make(chan string, 4)
			c, err := mcp.Dial(context.Background(), mcp.ClientConfig{
				URL: ts.URL, ProtocolVersion: tc.pin, Logger: testLogger(t),
				OnMessage: func(m *mcp.Message) { changed <- m.Method },
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if got := c.Server().ProtocolVersion; got != tc.want {
				t.Fatalf("negotiated %q, want %q", got, tc.want)
			}
			if (c.SessionID() != "") != tc.wantSessn {
				t.Fatalf("session id %q, want session: %v", c.SessionID(), tc.wantSessn)
			}
			var progress []string
			if got := callEcho(t, c, "hi", func(m *mcp.Message) { progress = append(progress, m.Method) }); got != "echo:hi" {
				t.Fatalf("echo = %q", got)
			}
			if !tc.jsonResp && (len(progress) != 1 || progress[0] != mcp.NotifyProgress) {
				t.Fatalf("messages during the call = %v, want one progress notification", progress)
			}
			// A tool added later must be announced on the standalone stream
			// (which opens asynchronously: add tools until one is heard).
			heard := false
			for i := 0; i < 10 && !heard; i++ {
				sdk.AddTool(s, &sdk.Tool{Name: fmt.Sprintf("late%d", i)}, func(context.Context, *sdk.CallToolRequest, echoIn) (*sdk.CallToolResult, any, error) {
					return &sdk.CallToolResult{}, nil, nil
				})
				deadline := time.After(time.Second)
			wait:
				for {
					select {
					case m := <-changed:
						if m == mcp.NotifyToolsChanged {
							heard = true
							break wait
						}
						if m != mcp.NotifyProgress { // a JSON response sends progress on the GET stream
							t.Fatalf("standalone stream delivered %q", m)
						}
					case <-deadline:
						break wait
					}
				}
			}
			if !heard {
				t.Fatal("no tools/list_changed notification on the standalone stream")
			}
			if _, ok := sawAuth.Load(true); ok {
				t.Fatal("client sent an Authorization header it was never given")
			}
		})
	}
}

func TestClientRecreatesExpiredSession(t *testing.T) {
	s := newSDKServer(t)
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
	ts := httptest.NewServer(h)
	defer ts.Close()
	c, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL, ProtocolVersion: mcp.Rev20251125})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	old := c.SessionID()
	// End the session behind the client's back.
	req, _ := http.NewRequest(http.MethodDelete, ts.URL, nil)
	req.Header.Set(mcp.HeaderSessionID, old)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.Rev20251125)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := callEcho(t, c, "again", nil); got != "echo:again" {
		t.Fatalf("echo after expiry = %q", got)
	}
	if c.SessionID() == old || c.SessionID() == "" {
		t.Fatalf("session not re-created: %q", c.SessionID())
	}
}

func TestSSEClientAgainstSDKServer(t *testing.T) {
	s := newSDKServer(t)
	ts := httptest.NewServer(sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil))
	defer ts.Close()
	c, err := mcp.DialSSE(context.Background(), mcp.ClientConfig{URL: ts.URL, ProtocolVersion: mcp.Rev20250326, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("DialSSE: %v", err)
	}
	defer c.Close()
	if v := c.Server().ProtocolVersion; v != mcp.Rev20250326 {
		t.Fatalf("negotiated %q", v)
	}
	var progress []string
	if got := callEcho(t, c, "sse", func(m *mcp.Message) { progress = append(progress, string(mcp.GetField(m.Params, "progressToken"))) }); got != "echo:sse" {
		t.Fatalf("echo = %q", got)
	}
	if len(progress) != 1 || progress[0] != `"tok-1"` {
		t.Fatalf("progress notifications routed to the call: %v, want one with the caller's token", progress)
	}
	ts.CloseClientConnections()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the stream broke")
	}
	if _, err := c.Call(context.Background(), mcp.MethodToolsList, nil, nil); err == nil {
		t.Fatal("call on a broken SSE connection succeeded")
	}
}

func TestDialErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusTeapot)
	}))
	defer ts.Close()
	if _, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL}); err == nil || !strings.Contains(err.Error(), "418") {
		t.Fatalf("Dial to a non-MCP server: %v", err)
	}
	if _, err := mcp.DialSSE(context.Background(), mcp.ClientConfig{URL: ts.URL}); err == nil {
		t.Fatal("DialSSE to a non-MCP server succeeded")
	}
	if _, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL, ProtocolVersion: "1999-01-01"}); err == nil {
		t.Fatal("unknown pinned version accepted")
	}
}

// The client answers the server's keep-alive pings itself, so the server
// keeps the session.
func TestClientAnswersPings(t *testing.T) {
	s := sdk.NewServer(&sdk.Implementation{Name: "pinger", Version: "1"}, &sdk.ServerOptions{KeepAlive: 50 * time.Millisecond, Logger: testLogger(t)})
	sdk.AddTool(s, &sdk.Tool{Name: "echo"}, func(ctx context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo:" + in.Text}}}, nil, nil
	})
	ts := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
	defer ts.Close()
	c, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL, ProtocolVersion: mcp.Rev20251125, OnMessage: func(m *mcp.Message) {
		if m.Method == mcp.MethodPing {
			t.Errorf("ping passed to OnMessage")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sid := c.SessionID()
	time.Sleep(500 * time.Millisecond)
	if got := callEcho(t, c, "still", nil); got != "echo:still" {
		t.Fatalf("echo = %q", got)
	}
	if c.SessionID() != sid {
		t.Fatal("the server dropped the session: pings went unanswered")
	}
}

// On 2026-07-28 a call carries the capabilities and log level its context
// names (a gateway speaking for an agent), else the client's own and none;
// a level the request names itself wins.
func TestClientPerCallMeta(t *testing.T) {
	s := newSDKServer(t)
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Stateless: true, Logger: testLogger(t)})
	metas := make(chan map[string]json.RawMessage, 8)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Method string
			Params struct {
				Meta map[string]json.RawMessage `json:"_meta"`
			}
		}
		if json.Unmarshal(body, &m) == nil && m.Method == mcp.MethodToolsCall {
			metas <- m.Params.Meta
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL, Logger: testLogger(t), Capabilities: json.RawMessage(`{"sampling":{},"elicitation":{}}`)})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if c.Server().ProtocolVersion != mcp.Rev20260728 {
		t.Fatalf("negotiated %s", c.Server().ProtocolVersion)
	}
	for _, tc := range []struct {
		name              string
		ctx               context.Context
		meta              string
		wantCaps, wantLvl string
	}{
		{"own", context.Background(), `{}`, `{"sampling":{},"elicitation":{}}`, ``},
		{"agent's", mcp.WithLogLevel(mcp.WithClientCapabilities(context.Background(), json.RawMessage(`{"roots":{}}`)), "info"), `{}`, `{"roots":{}}`, `"info"`},
		{"request's level wins", mcp.WithLogLevel(context.Background(), "info"), `{"io.modelcontextprotocol/logLevel":"error"}`, `{"sampling":{},"elicitation":{}}`, `"error"`},
	} {
		params := json.RawMessage(`{"name":"echo","arguments":{"text":"x"},"_meta":` + tc.meta + `}`)
		ctx, cancel := context.WithTimeout(tc.ctx, 10*time.Second)
		resp, err := c.Call(ctx, mcp.MethodToolsCall, params, nil)
		cancel()
		if err != nil || resp.Error != nil {
			t.Fatalf("%s: tools/call: %v %v", tc.name, err, resp)
		}
		m := <-metas
		if got := string(m[mcp.MetaClientCapabilities]); got != tc.wantCaps {
			t.Errorf("%s: clientCapabilities %s, want %s", tc.name, got, tc.wantCaps)
		}
		if got := string(m[mcp.MetaLogLevel]); got != tc.wantLvl {
			t.Errorf("%s: logLevel %s, want %s", tc.name, got, tc.wantLvl)
		}
	}
}
