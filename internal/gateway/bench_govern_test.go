package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// inProcess answers upstream requests in process, without sockets, as a
// minimal stateless Streamable HTTP server with one tool (get_ticket): a
// benchmark then sees the gateway's own cost, not an SDK server's.
type inProcess struct{}

func (inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Method != http.MethodPost {
		rec.WriteHeader(http.StatusMethodNotAllowed) // no standalone stream
		return rec.Result(), nil
	}
	body, _ := io.ReadAll(r.Body)
	m, err := mcp.Parse(body)
	switch {
	case err != nil || m.IsNotification() || m.IsResponse():
		rec.WriteHeader(http.StatusAccepted)
	case m.Method == mcp.MethodInitialize:
		rec.Header().Set("Content-Type", "application/json")
		rec.Write(mcp.NewResult(m.ID, json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"bench","version":"1"}}`)).AppendJSON(nil))
	case m.Method == mcp.MethodToolsList:
		rec.Header().Set("Content-Type", "application/json")
		rec.Write(mcp.NewResult(m.ID, json.RawMessage(`{"tools":[{"name":"get_ticket","inputSchema":{"type":"object"}}]}`)).AppendJSON(nil))
	case m.Method == mcp.MethodToolsCall:
		rec.Header().Set("Content-Type", "application/json")
		rec.Write(mcp.NewResult(m.ID, json.RawMessage(`{"content":[{"type":"text","text":"helpdesk ticket T-1"}]}`)).AppendJSON(nil))
	default:
		rec.Header().Set("Content-Type", "application/json")
		rec.Write(mcp.NewError(m.ID, mcp.Errorf(mcp.CodeMethodNotFound, "no %s", m.Method)).AppendJSON(nil))
	}
	return rec.Result(), nil
}

// BenchmarkGovern measures one governed tools/call through the gateway's
// handler, in process (policy allow, no DLP rules, the upstream's handler
// answered in process): the request pipeline's own cost per call, and
// its allocations.
func BenchmarkGovern(b *testing.B) {
	e := newEnv(b, func(c *gateway.Config) {
		c.HTTPClient = &http.Client{Transport: inProcess{}}
		c.OnDecision = nil
	})
	h := e.gw.Handler()
	post := func(sid, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/p/support/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+e.key)
		req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
		if sid != "" {
			req.Header.Set(mcp.HeaderSessionID, sid)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	init := post("", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	sid := init.Header().Get(mcp.HeaderSessionID)
	if sid == "" {
		b.Fatalf("initialize: %d %s", init.Code, init.Body)
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-1"}}}`
	if rec := post(sid, body); rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte("ticket T-1")) {
		b.Fatalf("warm-up call: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := post(sid, body); rec.Code != 200 {
			b.Fatalf("call: %d %s", rec.Code, rec.Body)
		}
	}
}
