package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

type rawResp struct {
	status int
	header http.Header
	body   []byte
}

func (r rawResp) rpcError(t *testing.T) *mcp.Error {
	t.Helper()
	m, err := mcp.Parse(r.body)
	if err != nil || m.Error == nil {
		t.Fatalf("body is not a JSON-RPC error: %s", r.body)
	}
	return m.Error
}

// messages returns the JSON-RPC messages of a JSON or SSE response.
func (r rawResp) messages(t *testing.T) []*mcp.Message {
	t.Helper()
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		er := mcp.NewEventReader(bytes.NewReader(r.body), 0)
		var out []*mcp.Message
		for {
			ev, err := er.Next()
			if err != nil {
				return out
			}
			m, perr := mcp.Parse(ev.Data)
			if perr != nil {
				t.Fatalf("bad event %q", ev.Data)
			}
			out = append(out, m)
		}
	}
	m, err := mcp.Parse(r.body)
	if err != nil {
		t.Fatalf("bad body %s", r.body)
	}
	return []*mcp.Message{m}
}

func (e *env) do(t testing.TB, method, persona string, hdr map[string]string, body string) rawResp {
	t.Helper()
	req, _ := http.NewRequest(method, e.endpoint(persona), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+e.key)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return rawResp{res.StatusCode, res.Header, b}
}

func (e *env) initSession(t testing.TB, rev string) string {
	t.Helper()
	r := e.do(t, "POST", "support", nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+rev+`","capabilities":{"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}}`)
	if r.status != 200 || r.header.Get(mcp.HeaderSessionID) == "" {
		t.Fatalf("initialize: %d %s", r.status, r.body)
	}
	sid := r.header.Get(mcp.HeaderSessionID)
	if n := e.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid}, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); n.status != 202 {
		t.Fatalf("initialized: %d", n.status)
	}
	return sid
}

func modernHeaders(method, name string) map[string]string {
	h := map[string]string{mcp.HeaderProtocolVersion: "2026-07-28", mcp.HeaderMethod: method}
	if name != "" {
		h[mcp.HeaderName] = mcp.EncodeHeaderValue(name)
	}
	return h
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`

func TestBadInput(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.AllowedOrigins = []string{"https://console.example"} })
	sid := e.initSession(t, "2025-06-18")
	sid0326 := e.initSession(t, "2025-03-26")
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	withSess := func(kv ...string) map[string]string {
		h := map[string]string{mcp.HeaderSessionID: sid}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	tests := []struct {
		name    string
		method  string
		persona string
		hdr     map[string]string
		body    string
		status  int
		code    int // expected JSON-RPC error code, 0: none checked
	}{
		{"no key", "POST", "support", map[string]string{"Authorization": ""}, ping, 401, mcp.CodeInvalidRequest},
		{"wrong key", "POST", "support", map[string]string{"Authorization": "Bearer pc_wrong"}, ping, 401, mcp.CodeInvalidRequest},
		{"unknown persona", "POST", "nobody", nil, ping, 404, mcp.CodeInvalidRequest},
		{"other persona's key", "POST", "finance", nil, ping, 403, 0},
		{"forbidden origin", "POST", "support", map[string]string{"Origin": "https://evil.example"}, ping, 403, 0},
		{"allowed origin", "POST", "support", withSess("Origin", "https://console.example"), ping, 200, 0},
		{"preflight from an allowed origin", "OPTIONS", "support", map[string]string{"Origin": "https://console.example", "Authorization": "", "Access-Control-Request-Headers": "authorization, mcp-param-region"}, "", 204, 0},
		{"preflight from a foreign origin", "OPTIONS", "support", map[string]string{"Origin": "https://evil.example"}, "", 403, 0},
		{"wrong content type", "POST", "support", withSess("Content-Type", "text/plain"), ping, 415, 0},
		{"wrong accept", "POST", "support", withSess("Accept", "text/html"), ping, 406, 0},
		{"accept only json", "POST", "support", withSess("Accept", "application/json"), ping, 406, 0},
		{"oversized body", "POST", "support", withSess(), `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`, 413, 0},
		{"malformed json", "POST", "support", withSess(), `{"jsonrpc":"2.0",`, 400, mcp.CodeParseError},
		{"not json-rpc", "POST", "support", withSess(), `{"hello":"world"}`, 400, mcp.CodeInvalidRequest},
		{"float id", "POST", "support", withSess(), `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, 400, mcp.CodeInvalidRequest},
		{"batch on 2025-06-18", "POST", "support", withSess(), `[` + ping + `]`, 400, mcp.CodeInvalidRequest},
		{"forged session", "POST", "support", withSess(mcp.HeaderSessionID, "AAAA"+sid[4:]), ping, 404, 0},
		{"garbage session", "POST", "support", withSess(mcp.HeaderSessionID, "not a session"), ping, 404, 0},
		// A supported revision other than the session's is served under the
		// session's revision, as the reference SDKs and the official
		// conformance suite (server-sse-multiple-streams) expect; an
		// unsupported one is refused.
		{"session with another supported revision header", "POST", "support", withSess(mcp.HeaderProtocolVersion, "2025-03-26"), ping, 200, 0},
		{"batch on 2025-06-18 under a 2025-03-26 header", "POST", "support", withSess(mcp.HeaderProtocolVersion, "2025-03-26"), `[` + ping + `]`, 400, mcp.CodeInvalidRequest},
		{"session with an unsupported revision header", "POST", "support", withSess(mcp.HeaderProtocolVersion, "2099-01-01"), ping, 400, mcp.CodeUnsupportedProtocolVersion},
		{"no session", "POST", "support", nil, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 400, mcp.CodeInvalidRequest},
		{"unknown method", "POST", "support", withSess(), `{"jsonrpc":"2.0","id":1,"method":"nope/nope"}`, 200, mcp.CodeMethodNotFound},
		{"bad params type", "POST", "support", withSess(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}`, 200, mcp.CodeInvalidParams},
		{"unknown response id", "POST", "support", withSess(), `{"jsonrpc":"2.0","id":"pcr-nope","result":{}}`, 400, 0},
		{"PUT", "PUT", "support", nil, ping, 405, 0},
		{"GET without session", "GET", "support", map[string]string{"Accept": "text/event-stream"}, "", 400, 0},
		{"GET modern", "GET", "support", map[string]string{mcp.HeaderProtocolVersion: "2026-07-28"}, "", 405, 0},
		{"DELETE bad session", "DELETE", "support", map[string]string{mcp.HeaderSessionID: "zzz"}, "", 404, 0},
		// 2026-07-28
		{"modern header mismatch", "POST", "support", modernHeaders("tools/call", "helpdesk_close_ticket"),
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"helpdesk_get_ticket",` + modernMeta + `}}`, 400, mcp.CodeHeaderMismatch},
		{"modern method mismatch", "POST", "support", modernHeaders("tools/list", ""),
			`{"jsonrpc":"2.0","id":3,"method":"prompts/list","params":{` + modernMeta + `}}`, 400, mcp.CodeHeaderMismatch},
		{"modern missing Mcp-Name", "POST", "support", modernHeaders("tools/call", ""),
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"helpdesk_get_ticket",` + modernMeta + `}}`, 400, mcp.CodeHeaderMismatch},
		{"modern unsupported version", "POST", "support", map[string]string{mcp.HeaderProtocolVersion: "2099-01-01", mcp.HeaderMethod: "tools/list"},
			`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}`, 400, mcp.CodeUnsupportedProtocolVersion},
		{"modern missing meta", "POST", "support", modernHeaders("tools/list", ""),
			`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}`, 400, mcp.CodeInvalidParams},
		{"modern missing capabilities", "POST", "support", modernHeaders("tools/list", ""),
			`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, 400, mcp.CodeInvalidParams},
		{"modern unknown method", "POST", "support", modernHeaders("nope/nope", ""),
			`{"jsonrpc":"2.0","id":3,"method":"nope/nope","params":{` + modernMeta + `}}`, 404, mcp.CodeMethodNotFound},
		{"modern Mcp-Param mismatch", "POST", "support", map[string]string{mcp.HeaderProtocolVersion: "2026-07-28", mcp.HeaderMethod: "tools/call", mcp.HeaderName: "bill_region_query", "Mcp-Param-Region": "us-east"},
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"bill_region_query","arguments":{"region":"eu-west"},` + modernMeta + `}}`, 400, mcp.CodeHeaderMismatch},
		{"modern Mcp-Param missing", "POST", "support", modernHeaders("tools/call", "bill_region_query"),
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"bill_region_query","arguments":{"region":"eu-west"},` + modernMeta + `}}`, 400, mcp.CodeHeaderMismatch},
		// Found by the official conformance suite (0.2.0-alpha, server-stateless).
		{"modern initialize removed", "POST", "support", modernHeaders("initialize", ""),
			`{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"raw","version":"1"},` + modernMeta + `}}`, 404, mcp.CodeMethodNotFound},
		{"modern header and _meta versions disagree", "POST", "support", modernHeaders("server/discover", ""),
			`{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"v999.0.0","io.modelcontextprotocol/clientCapabilities":{}}}}`, 400, mcp.CodeHeaderMismatch},
		{"modern ping removed", "POST", "support", modernHeaders("ping", ""),
			`{"jsonrpc":"2.0","id":3,"method":"ping","params":{` + modernMeta + `}}`, 404, mcp.CodeMethodNotFound},
		{"modern batch", "POST", "support", modernHeaders("tools/list", ""), `[{"jsonrpc":"2.0","id":3,"method":"tools/list"}]`, 400, mcp.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.persona, tt.hdr, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("401 without a Bearer challenge: %q", r.header.Get("WWW-Authenticate"))
			}
			if tt.code != 0 {
				if got := r.rpcError(t).Code; got != tt.code {
					t.Fatalf("JSON-RPC code %d, want %d; body %s", got, tt.code, r.body)
				}
			}
		})
	}

	pre := e.do(t, "OPTIONS", "support", map[string]string{"Origin": "https://console.example", "Authorization": "", "Access-Control-Request-Headers": "mcp-param-region"}, "")
	if ah := pre.header.Get("Access-Control-Allow-Headers"); !strings.Contains(ah, "Mcp-Session-Id") || !strings.Contains(ah, "mcp-param-region") || pre.header.Get("Access-Control-Allow-Origin") != "https://console.example" {
		t.Fatalf("preflight headers %v", pre.header)
	}

	// Batches are fine on 2025-03-26, answered in one array.
	r := e.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid0326},
		`[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"helpdesk_delete_ticket"}}]`)
	var arr []json.RawMessage
	if r.status != 200 || json.Unmarshal(r.body, &arr) != nil || len(arr) != 2 {
		t.Fatalf("2025-03-26 batch: %d %s", r.status, r.body)
	}
	if m, _ := mcp.Parse(arr[1]); m == nil || string(m.ID) != `"b"` || m.Error == nil {
		t.Fatalf("batched denied call: %s", arr[1])
	}

	// A terminated session is gone.
	if d := e.do(t, "DELETE", "support", map[string]string{mcp.HeaderSessionID: sid}, ""); d.status != 204 {
		t.Fatalf("DELETE: %d %s", d.status, d.body)
	}
	if r := e.do(t, "POST", "support", withSess(), ping); r.status != 404 {
		t.Fatalf("request on a deleted session: %d", r.status)
	}
}

func TestModernRawCall(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"jsonrpc":"2.0","id":"req-1","method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-7"},` + modernMeta + `}}`
	r := e.do(t, "POST", "support", modernHeaders("tools/call", "helpdesk_get_ticket"), body)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	msgs := r.messages(t)
	final := msgs[len(msgs)-1]
	if string(final.ID) != `"req-1"` || final.Error != nil {
		t.Fatalf("response %+v", final)
	}
	var res struct {
		ResultType string `json:"resultType"`
		Content    []struct{ Text string }
	}
	if err := json.Unmarshal(final.Result, &res); err != nil || res.ResultType != "complete" || res.Content[0].Text != "helpdesk ticket T-7" {
		t.Fatalf("result %s", final.Result)
	}
	// server/discover
	r = e.do(t, "POST", "support", modernHeaders("server/discover", ""), `{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{`+modernMeta+`}}`)
	var disc struct {
		SupportedVersions []string `json:"supportedVersions"`
		ResultType        string   `json:"resultType"`
	}
	if m := r.messages(t)[0]; json.Unmarshal(m.Result, &disc) != nil || disc.ResultType != "complete" || len(disc.SupportedVersions) != 4 {
		t.Fatalf("discover: %s", r.body)
	}
	// A non-ASCII tool name travels in the Base64 sentinel form.
	body = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"tïcket",` + modernMeta + `}}`
	r = e.do(t, "POST", "support", modernHeaders("tools/call", "tïcket"), body)
	if e := r.rpcError(t); r.status != 200 || e.Code != mcp.CodeInvalidParams || !strings.Contains(e.Message, "not available") {
		t.Fatalf("sentinel-encoded unknown tool: %d %s", r.status, r.body)
	}
}

func TestSessionContinuesOnAnotherNode(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initSession(t, "2025-11-25")
	// A second node: same session key, same state, its own upstream connections.
	cfg := e.cfg
	cfg.OnDecision = nil
	gw2, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw2.Close()
	node2 := &env{t: t, key: e.key, ts: newServer(t, gw2.Handler())}
	r := node2.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid, mcp.HeaderProtocolVersion: "2025-11-25"},
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-2"}}}`)
	msgs := r.messages(t)
	if r.status != 200 || msgs[len(msgs)-1].Error != nil || !strings.Contains(string(msgs[len(msgs)-1].Result), "helpdesk ticket T-2") {
		t.Fatalf("call on node 2: %d %s", r.status, r.body)
	}
	// A node with another key cannot.
	cfg.SessionKey = newKey(t)
	gw3, _ := gateway.New(cfg)
	defer gw3.Close()
	node3 := &env{t: t, key: e.key, ts: newServer(t, gw3.Handler())}
	if r := node3.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid}, `{"jsonrpc":"2.0","id":1,"method":"ping"}`); r.status != 404 {
		t.Fatalf("foreign node accepted the session: %d", r.status)
	}
}

// A legacy agent whose response stream drops mid-call resumes it with GET
// and Last-Event-ID and still gets the result; the call was not cancelled.
func TestResumeResponseStream(t *testing.T) {
	e := newEnv(t, nil)
	sid := e.initSession(t, "2025-11-25")
	req, _ := http.NewRequest("POST", e.endpoint("support"), strings.NewReader(
		`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"helpdesk_report","arguments":{"id":"T-8"},"_meta":{"progressToken":"pt"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set(mcp.HeaderSessionID, sid)
	req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	er := mcp.NewEventReader(res.Body, 0)
	ev, err := er.Next()
	if err != nil || !strings.Contains(string(ev.Data), "notifications/progress") || ev.ID == "" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	res.Body.Close() // the connection drops before the result
	r := e.do(t, "GET", "support", map[string]string{mcp.HeaderSessionID: sid, mcp.HeaderProtocolVersion: "2025-11-25", "Accept": "text/event-stream", mcp.HeaderLastEventID: ev.ID}, "")
	if r.status != 200 {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	msgs := r.messages(t)
	if len(msgs) != 1 || string(msgs[0].ID) != `"call-1"` || !strings.Contains(string(msgs[0].Result), "report T-8 done") {
		t.Fatalf("resumed stream: %s", r.body)
	}
	// Unknown stream ids are refused clearly.
	r = e.do(t, "GET", "support", map[string]string{mcp.HeaderSessionID: sid, "Accept": "text/event-stream", mcp.HeaderLastEventID: "nope.3"}, "")
	if r.status != 400 {
		t.Fatalf("resume of an unknown stream: %d", r.status)
	}
}
