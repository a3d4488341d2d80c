package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// A 2025-11-25 server whose response stream breaks after the first event:
// the client must resume with GET and Last-Event-ID and get the response.
func TestClientResumesBrokenStream(t *testing.T) {
	var resumedFrom atomic.Value
	var callID atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			last := r.Header.Get("Last-Event-Id")
			if last == "" {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			resumedFrom.Store(last)
			w.Header().Set("Content-Type", "text/event-stream")
			resp := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"resumed"}]}}`, callID.Load())
			fmt.Fprintf(w, "id: s1-2\ndata: %s\n\n", resp)
			return
		}
		if r.Method == http.MethodDelete {
			return
		}
		body, _ := io.ReadAll(r.Body)
		m, perr := mcp.Parse(body)
		if perr != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "sess-1")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}}`, m.ID)
		case "notifications/initialized":
			w.WriteHeader(http.StatusAccepted)
		case "tools/call":
			if r.Header.Get("Mcp-Session-Id") != "sess-1" || r.Header.Get("Mcp-Protocol-Version") != "2025-11-25" {
				http.Error(w, "missing session headers", http.StatusBadRequest)
				return
			}
			callID.Store(string(m.ID))
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "retry: 10\nid: s1-1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p\",\"progress\":1}}\n\n")
			w.(http.Flusher).Flush()
			// the stream breaks here, without the response
		}
	}))
	defer ts.Close()
	c, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL, ProtocolVersion: mcp.Rev20251125})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, mcp.MethodToolsCall, json.RawMessage(`{"name":"x"}`), func(m *mcp.Message) { got = append(got, m.Method) })
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if string(resp.Result) != `{"content":[{"type":"text","text":"resumed"}]}` {
		t.Fatalf("result %s", resp.Result)
	}
	if resumedFrom.Load() != "s1-1" {
		t.Fatalf("resumed from %v, want s1-1", resumedFrom.Load())
	}
	if len(got) != 1 || got[0] != mcp.NotifyProgress {
		t.Fatalf("messages before the break: %v", got)
	}
}

// A 2026-07-28 upstream rejecting our headers answers with a JSON-RPC error
// the client returns as the response (not as a transport failure).
func TestClientModernErrorBody(t *testing.T) {
	var sawName atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, _ := mcp.Parse(body)
		w.Header().Set("Content-Type", "application/json")
		switch m.Method {
		case "server/discover":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"ttlMs":0,"cacheScope":"public"}}`, m.ID)
		default:
			sawName.Store(r.Header.Get("Mcp-Name"))
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32020,"message":"Header mismatch"}}`, m.ID)
		}
	}))
	defer ts.Close()
	c, err := mcp.Dial(context.Background(), mcp.ClientConfig{URL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Call(context.Background(), mcp.MethodToolsCall, json.RawMessage(`{"name":"wëird"}`), nil)
	if err != nil || resp.Error == nil || resp.Error.Code != mcp.CodeHeaderMismatch {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	if sawName.Load() != "=?base64?d8OraXJk?=" {
		t.Fatalf("Mcp-Name sent as %v", sawName.Load())
	}
}
