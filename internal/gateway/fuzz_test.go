package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// FuzzPOST throws arbitrary bodies and request-metadata headers at a persona
// endpoint, with and without a session. The gateway must answer every one
// with a well-formed HTTP response, never a panic or a 5xx.
func FuzzPOST(f *testing.F) {
	e := newEnv(f, nil)
	sid := e.initSession(f, "2025-03-26")
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-1"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"helpdesk_close_ticket","arguments":{"id":5}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}]`,
		`{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"ticket://1"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"helpdesk_summarize"},"argument":{"name":"id","value":"T"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"helpdesk_get_ticket",` + modernMeta + `}}`,
		`{"jsonrpc":"2.0","id":"pcr-1","result":{}}`,
		`{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"subscriptions/listen","params":{"notifications":5}}`,
		`[]`, `{}`, `null`, `[1,2]`, `{"jsonrpc":"2.0","id":[],"method":"x"}`,
		// shape limits: deep nesting, numbers beyond float64, a batch over the cap
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}}`,
		strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-1","n":1e999999}}}`,
		`{"jsonrpc":"2.0","id":1e999999,"method":"ping"}`,
		`[` + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"ping"},`, 40) + `{"jsonrpc":"2.0","id":2,"method":"ping"}]`,
	} {
		f.Add(s, "", "tools/call", "helpdesk_get_ticket", true)
		f.Add(s, "2026-07-28", "tools/call", "=?base64?aGVscGRlc2tfZ2V0X3RpY2tldA==?=", false)
	}
	h := e.gw.Handler()
	f.Fuzz(func(t *testing.T, body, version, method, name string, withSession bool) {
		req := httptest.NewRequest("POST", "/p/support/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+e.key)
		for k, v := range map[string]string{mcp.HeaderProtocolVersion: version, mcp.HeaderMethod: method, mcp.HeaderName: name} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				req.Header.Set(k, v)
			}
		}
		if withSession {
			req.Header.Set(mcp.HeaderSessionID, sid)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
	})
}
