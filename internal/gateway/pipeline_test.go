package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// metricValue is the value of the series name{labels} in reg (counter,
// gauge, or a histogram's sample count); -1 when absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// nextRecords drains the records written so far, waiting for at least one.
func (e *env) nextRecords(t *testing.T) []gateway.Decision {
	t.Helper()
	var out []gateway.Decision
	select {
	case d := <-e.decisions:
		out = append(out, d)
	case <-time.After(5 * time.Second):
		t.Fatal("no decision record")
	}
	for {
		select {
		case d := <-e.decisions:
			out = append(out, d)
		default:
			return out
		}
	}
}

// Every refusal, whatever turned the request away, leaves exactly one
// record naming the stage that refused, and the refusals are counted per
// persona, outcome and stage.
func TestEveryRefusalWritesOneRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *gateway.Config) {
		c.AllowedOrigins = []string{"https://console.example"}
		c.Metrics = reg
		c.UpstreamTimeout = 500 * time.Millisecond
	})
	e.st.set(e.snapshot(func(s *state.Snapshot) {
		s.Upstreams["dead"] = &state.Upstream{Meta: state.Meta{Name: "dead"}, URL: "http://127.0.0.1:1/mcp"}
		s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "dead/*"})
	}))
	sid := e.initSession(t, "2025-06-18")
	sid0326 := e.initSession(t, "2025-03-26")
	for len(e.decisions) > 0 {
		<-e.decisions
	}
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	sess := func(kv ...string) map[string]string {
		h := map[string]string{mcp.HeaderSessionID: sid}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	toolCall := func(name, args string) string {
		return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
	}
	tests := []struct {
		name            string
		method, persona string
		hdr             map[string]string
		body            string
		status          int
		stage, decision string
	}{
		{"forbidden origin", "POST", "support", map[string]string{"Origin": "https://evil.example"}, ping, 403, gateway.StageProtocol, gateway.Deny},
		{"PUT", "PUT", "support", nil, ping, 405, gateway.StageProtocol, gateway.Deny},
		{"no key (401)", "POST", "support", map[string]string{"Authorization": ""}, ping, 401, gateway.StageAuthn, gateway.Deny},
		{"unknown persona (404)", "POST", "nobody", nil, ping, 404, gateway.StageAuthn, gateway.Deny},
		{"other persona's key (403)", "POST", "finance", nil, ping, 403, gateway.StageAuthn, gateway.Deny},
		{"wrong content type", "POST", "support", sess("Content-Type", "text/plain"), ping, 415, gateway.StageProtocol, gateway.Deny},
		{"wrong accept", "POST", "support", sess("Accept", "text/html"), ping, 406, gateway.StageProtocol, gateway.Deny},
		{"oversized body", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`, 413, gateway.StageProtocol, gateway.Deny},
		{"malformed json", "POST", "support", sess(), `{"jsonrpc":"2.0",`, 400, gateway.StageProtocol, gateway.Deny},
		{"batch on 2025-06-18", "POST", "support", sess(), `[` + ping + `]`, 400, gateway.StageProtocol, gateway.Deny},
		{"garbage session", "POST", "support", sess(mcp.HeaderSessionID, "not a session"), ping, 404, gateway.StageProtocol, gateway.Deny},
		{"unsupported revision header", "POST", "support", sess(mcp.HeaderProtocolVersion, "2099-01-01"), ping, 400, gateway.StageProtocol, gateway.Deny},
		{"no session", "POST", "support", nil, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 400, gateway.StageProtocol, gateway.Deny},
		{"malformed initialize", "POST", "support", nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"unknown method", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"nope/nope"}`, 200, gateway.StageProtocol, gateway.Deny},
		{"unknown cursor", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}}`, 200, gateway.StageProtocol, gateway.Deny},
		{"initialize again", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`, 200, gateway.StageProtocol, gateway.Deny},
		{"bad params type", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}`, 200, gateway.StageProtocol, gateway.Deny},
		{"missing tool name", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, 200, gateway.StageProtocol, gateway.Deny},
		{"arguments not an object", "POST", "support", sess(), toolCall("helpdesk_get_ticket", `[1]`), 200, gateway.StageProtocol, gateway.Deny},
		{"duplicate argument", "POST", "support", sess(), toolCall("helpdesk_get_ticket", `{"id":"T-1","id":"T-2"}`), 200, gateway.StageProtocol, gateway.Deny},
		{"bad log level", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"loud"}}`, 200, gateway.StageProtocol, gateway.Deny},
		{"unknown completion ref", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/nope"}}}`, 200, gateway.StageProtocol, gateway.Deny},
		{"unknown response id", "POST", "support", sess(), `{"jsonrpc":"2.0","id":"pcr-nope","result":{}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"GET without session", "GET", "support", map[string]string{"Accept": "text/event-stream"}, "", 400, gateway.StageProtocol, gateway.Deny},
		{"GET modern", "GET", "support", map[string]string{mcp.HeaderProtocolVersion: "2026-07-28"}, "", 405, gateway.StageProtocol, gateway.Deny},
		{"resume an unknown stream", "GET", "support", map[string]string{mcp.HeaderSessionID: sid, "Accept": "text/event-stream", mcp.HeaderLastEventID: "nope.3"}, "", 400, gateway.StageProtocol, gateway.Deny},
		{"DELETE bad session", "DELETE", "support", map[string]string{mcp.HeaderSessionID: "zzz"}, "", 404, gateway.StageProtocol, gateway.Deny},
		{"modern header mismatch", "POST", "support", modernHeaders("tools/call", "helpdesk_close_ticket"),
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"helpdesk_get_ticket",` + modernMeta + `}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"modern missing meta", "POST", "support", modernHeaders("tools/list", ""), `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"modern response from a client", "POST", "support", modernHeaders("", ""), `{"jsonrpc":"2.0","id":3,"result":{}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"modern unknown method", "POST", "support", modernHeaders("nope/nope", ""), `{"jsonrpc":"2.0","id":3,"method":"nope/nope","params":{` + modernMeta + `}}`, 404, gateway.StageProtocol, gateway.Deny},
		{"modern Mcp-Param missing", "POST", "support", modernHeaders("tools/call", "bill_region_query"),
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"bill_region_query","arguments":{"region":"eu-west"},` + modernMeta + `}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"modern bad listen filter", "POST", "support", modernHeaders("subscriptions/listen", ""),
			`{"jsonrpc":"2.0","id":3,"method":"subscriptions/listen","params":{"notifications":7,` + modernMeta + `}}`, 400, gateway.StageProtocol, gateway.Deny},
		{"tool outside the role", "POST", "support", sess(), toolCall("helpdesk_delete_ticket", `{"id":"T-1"}`), 200, gateway.StagePolicy, gateway.Deny},
		{"argument outside its constraint", "POST", "support", sess(), toolCall("helpdesk_close_ticket", `{"id":"X-1"}`), 200, gateway.StagePolicy, gateway.Deny},
		{"resource outside the role", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"secret://keys"}}`, 200, gateway.StagePolicy, gateway.Deny},
		{"prompt outside the role", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"helpdesk_internal"}}`, 200, gateway.StagePolicy, gateway.Deny},
		{"subscription outside the role", "POST", "support", sess(), `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"secret://keys"}}`, 200, gateway.StagePolicy, gateway.Deny},
		{"upstream down", "POST", "support", sess(), toolCall("dead_get_ticket", `{}`), 200, gateway.StageUpstream, gateway.Fail},
		{"upstream timeout", "POST", "support", sess(), toolCall("helpdesk_slow", `{"id":"T-1"}`), 200, gateway.StageUpstream, gateway.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.persona, tt.hdr, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			// A marker request after the answer: every record of the
			// refused request precedes the marker's.
			e.do(t, "POST", "support", sess(), toolCall("helpdesk_delete_ticket", `{"id":"marker"}`))
			recs := e.nextRecords(t)
			for len(recs) == 0 || recs[len(recs)-1].Tool != "helpdesk_delete_ticket" {
				recs = append(recs, e.nextRecords(t)...)
			}
			recs = recs[:len(recs)-1]
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1: %+v", len(recs), recs)
			}
			d := recs[0]
			if d.Decision != tt.decision || d.Stage() != tt.stage || d.Reason == "" {
				t.Fatalf("record: decision %q stage %q reason %q (verdicts %+v), want %q at %q", d.Decision, d.Stage(), d.Reason, d.Verdicts, tt.decision, tt.stage)
			}
			if last := d.Verdicts[len(d.Verdicts)-1]; last.Outcome != tt.decision || last.Reason == "" {
				t.Fatalf("last verdict %+v", last)
			}
			if d.Persona != tt.persona || d.Method == "" || d.ClientIP != "127.0.0.1" {
				t.Fatalf("record without who/what: %+v", d)
			}
		})
	}

	// A 2025-03-26 batch: one record per message that needs one.
	for len(e.decisions) > 0 {
		<-e.decisions
	}
	r := e.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid0326},
		`[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"helpdesk_delete_ticket"}},{"jsonrpc":"2.0","id":"c","method":"nope/nope"}]`)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	recs := e.nextRecords(t)
	if len(recs) != 2 || recs[0].Stage() != gateway.StagePolicy || recs[1].Stage() != gateway.StageProtocol {
		t.Fatalf("batch records: %+v", recs)
	}

	// The refusals are counted; a persona that does not exist is not a
	// label (its name came from the agent).
	for _, c := range []struct {
		labels map[string]string
		min    float64
	}{
		{map[string]string{"persona": "support", "outcome": "deny", "stage": "policy"}, 6},
		{map[string]string{"persona": "support", "outcome": "error", "stage": "upstream"}, 2},
		{map[string]string{"persona": "unknown", "outcome": "deny", "stage": "authn"}, 1},
	} {
		if got := metricValue(t, reg, "portcullis_gateway_decisions_total", c.labels); got < c.min {
			t.Errorf("decisions_total%v = %v, want at least %v", c.labels, got, c.min)
		}
	}
	if got := metricValue(t, reg, "portcullis_gateway_decisions_total", map[string]string{"persona": "nobody"}); got != -1 {
		t.Errorf("an agent-chosen persona name became a label")
	}
	if got := metricValue(t, reg, "portcullis_gateway_upstream_errors_total", map[string]string{"upstream": "helpdesk", "status": "timeout"}); got != 1 {
		t.Errorf("upstream_errors_total{helpdesk,timeout} = %v, want 1", got)
	}
	if got := metricValue(t, reg, "portcullis_gateway_requests_total", map[string]string{"method": "other"}); got < 1 {
		t.Errorf("requests_total{other} = %v: unknown methods must share one label", got)
	}
	if got := metricValue(t, reg, "portcullis_gateway_stage_duration_seconds", map[string]string{"stage": "policy"}); got < 1 {
		t.Errorf("stage_duration_seconds{policy} count = %v", got)
	}
}

// An allowed call carries the verdict of every stage it passed, in order,
// and is timed end to end.
func TestAllowedCallVerdicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *gateway.Config) { c.Metrics = reg })
	sid := e.initSession(t, "2025-11-25")
	for len(e.decisions) > 0 {
		<-e.decisions
	}
	r := e.do(t, "POST", "support", map[string]string{mcp.HeaderSessionID: sid}, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-1"}}}`)
	if r.status != 200 || !strings.Contains(string(r.body), "helpdesk ticket T-1") {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	recs := e.nextRecords(t)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	var stages []string
	for _, v := range recs[0].Verdicts {
		if v.Outcome != gateway.Allow {
			t.Fatalf("verdict %+v in an allowed call", v)
		}
		stages = append(stages, v.Stage)
	}
	want := []string{"authn", "protocol", "policy", "dlp-request", "upstream", "dlp-response"}
	if fmt.Sprint(stages) != fmt.Sprint(want) {
		t.Fatalf("verdicts %v, want %v", stages, want)
	}
	if recs[0].Verdicts[2].Reason != "tickets" {
		t.Fatalf("policy verdict should name the granting skill: %+v", recs[0].Verdicts[2])
	}
	if got := metricValue(t, reg, "portcullis_gateway_request_duration_seconds", map[string]string{"method": "tools/call"}); got != 1 {
		t.Fatalf("request_duration_seconds{tools/call} count = %v", got)
	}
	if got := metricValue(t, reg, "portcullis_gateway_decisions_total", map[string]string{"persona": "support", "outcome": "allow", "stage": "dlp-response"}); got != 1 {
		t.Fatalf("decisions_total allow = %v", got)
	}
}

// blockingSink takes the first record, then blocks until released.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	got     []gateway.Decision
}

func (s *blockingSink) Write(d gateway.Decision) error {
	s.mu.Lock()
	s.got = append(s.got, d)
	first := len(s.got) == 1
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return nil
}

// A sink that stops taking records never holds up an agent: records queue,
// then the overflow is dropped and counted.
func TestSlowSinkNeverDelaysRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(c *gateway.Config) {
		c.Metrics = reg
		c.Sink = sink
		c.AuditQueue = 2
	})
	sid := e.initSession(t, "2025-11-25")
	callTool := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", e.endpoint("support"), strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"`+id+`"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+e.key)
		req.Header.Set(mcp.HeaderSessionID, sid)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("call %s while the sink is stuck: %v", id, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("call %s: %d", id, res.StatusCode)
		}
	}
	callTool("T-0")
	<-sink.entered // the sink holds record T-0 and takes no more
	for i := 1; i <= 5; i++ {
		callTool(fmt.Sprintf("T-%d", i))
	}
	if got := metricValue(t, reg, "portcullis_gateway_audit_dropped_total", nil); got != 3 {
		t.Fatalf("audit_dropped_total = %v, want 3 (5 records behind a stuck sink, queue of 2)", got)
	}
	close(sink.release)
	e.gw.Close() // drains the queue
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.got) != 3 || sink.got[1].Tool != "helpdesk_get_ticket" || sink.got[1].Latency <= 0 {
		t.Fatalf("the sink got %d records: %+v", len(sink.got), sink.got)
	}
}

// initAs opens a 2025-11-25 session on persona's endpoint with key.
func (e *env) initAs(t *testing.T, persona, key string) string {
	t.Helper()
	auth := map[string]string{"Authorization": "Bearer " + key}
	r := e.do(t, "POST", persona, auth, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	sid := r.header.Get(mcp.HeaderSessionID)
	if r.status != 200 || sid == "" {
		t.Fatalf("initialize %s: %d %s", persona, r.status, r.body)
	}
	auth[mcp.HeaderSessionID] = sid
	if n := e.do(t, "POST", persona, auth, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); n.status != 202 {
		t.Fatalf("initialized: %d", n.status)
	}
	return sid
}

// openGET opens the session's standalone SSE stream and returns the
// methods of the messages it carries, in order.
func (e *env) openGET(t *testing.T, persona, key, sid string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest("GET", e.endpoint(persona), nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(mcp.HeaderSessionID, sid)
	return openStream(t, req, key)
}

// openListen opens a 2026-07-28 subscriptions/listen stream for the tools
// and prompts lists and returns the methods it carries after the
// acknowledgement.
func (e *env) openListen(t *testing.T, persona, key string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest("POST", e.endpoint(persona), strings.NewReader(`{"jsonrpc":"2.0","id":"L1","method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"promptsListChanged":true},`+modernMeta+`}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range modernHeaders("subscriptions/listen", "") {
		req.Header.Set(k, v)
	}
	ch := openStream(t, req, key)
	if m := nextNotification(t, "listen", ch); m != mcp.NotifyAcknowledged {
		t.Fatalf("listen stream began with %s", m)
	}
	return ch
}

func openStream(t *testing.T, req *http.Request, key string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req = req.WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("%s stream: %d", req.Method, res.StatusCode)
	}
	ch := make(chan string, 64)
	go func() {
		defer res.Body.Close()
		er := mcp.NewEventReader(res.Body, 0)
		for {
			ev, err := er.Next()
			if err != nil {
				return
			}
			m, perr := mcp.Parse(ev.Data)
			if perr != nil {
				continue
			}
			method := m.Method
			// A listen stream's hints name their subscription.
			if sub := mcp.GetField(mcp.GetField(m.Params, "_meta"), mcp.MetaSubscriptionID); sub != nil && string(sub) != `"L1"` {
				method += " for subscription " + string(sub)
			}
			select {
			case ch <- method:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func nextNotification(t *testing.T, who string, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no notification", who)
		return ""
	}
}

// An agent listening on its GET stream hears list_changed for exactly the
// lists of its own persona that a control-state change changed: not for a
// change to another persona, an unused skill or its persona's description,
// and not for its tools when only its prompts changed.
func TestListChangedOnlyOnActualChange(t *testing.T) {
	e := newEnv(t, nil)
	// The streams open right after initialize, before any list was asked
	// for, as SDK clients do.
	support := e.openGET(t, "support", e.key, e.initAs(t, "support", e.key))
	finance := e.openGET(t, "finance", e.otherKey, e.initAs(t, "finance", e.otherKey))
	// support also listens on 2026-07-28, and must hear the same there.
	supportListen := e.openListen(t, "support", e.key)

	var muts []func(*state.Snapshot)
	change := func(m func(*state.Snapshot)) {
		muts = append(muts, m)
		e.st.set(e.snapshot(func(s *state.Snapshot) {
			for _, m := range muts {
				m(s)
			}
		}))
	}
	expect := func(step, who string, ch <-chan string, want string) {
		t.Helper()
		if got := nextNotification(t, who, ch); got != want {
			t.Fatalf("%s: %s heard %s, want %s", step, who, got, want)
		}
		if ch == support {
			if got := nextNotification(t, "support (listen)", supportListen); got != want {
				t.Fatalf("%s: support's listen stream heard %s, want %s", step, got, want)
			}
		}
	}
	dropTool := func(skill, tool string) func(*state.Snapshot) {
		return func(s *state.Snapshot) {
			s.Skills[skill].Tools = slices.DeleteFunc(s.Skills[skill].Tools, func(g state.ToolGrant) bool { return g.Tool == tool })
		}
	}

	// A: finance gains a tool, and a skill nobody uses appears.
	change(func(s *state.Snapshot) {
		s.Skills["billing-read"].Tools = append(s.Skills["billing-read"].Tools, state.ToolGrant{Tool: "billing/close_ticket"})
		s.Skills["unused"] = &state.Skill{Meta: state.Meta{Name: "unused"}, Tools: []state.ToolGrant{{Tool: "helpdesk/*"}}}
	})
	expect("A", "finance", finance, mcp.NotifyToolsChanged)
	// B: support gains a prompt (its tools stay as they are).
	change(func(s *state.Snapshot) {
		s.Skills["tickets"].Prompts = append(s.Skills["tickets"].Prompts, state.PromptGrant{Prompt: "helpdesk/internal"})
	})
	expect("B", "support", support, mcp.NotifyPromptsChanged)
	// C: support gains a tool.
	change(func(s *state.Snapshot) {
		s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "helpdesk/delete_ticket"})
	})
	expect("C", "support", support, mcp.NotifyToolsChanged)
	// D: finance loses the tool; support's description changes, not its lists.
	change(func(s *state.Snapshot) {
		dropTool("billing-read", "billing/close_ticket")(s)
		s.Personas["support"].Description = "Second-line support."
	})
	expect("D", "finance", finance, mcp.NotifyToolsChanged)
	// E: support loses the tool again, and is granted helpdesk/added_*
	// (no such tool yet). Had A or D reached support, their hints would
	// have come before this one.
	change(func(s *state.Snapshot) {
		dropTool("tickets", "helpdesk/delete_ticket")(s)
		s.Skills["tickets"].Tools = append(s.Skills["tickets"].Tools, state.ToolGrant{Tool: "helpdesk/added_*"})
	})
	expect("E", "support", support, mcp.NotifyToolsChanged)
	// F: finance gains the tool again: nothing of B, C or E came before.
	change(func(s *state.Snapshot) {
		s.Skills["billing-read"].Tools = append(s.Skills["billing-read"].Tools, state.ToolGrant{Tool: "billing/close_ticket"})
	})
	expect("F", "finance", finance, mcp.NotifyToolsChanged)

	// G: the helpdesk upstream itself announces a new tool, one support's
	// grant covers: support is told. The gateway's stream to the upstream
	// opens asynchronously, so a change made before it is up may go
	// unheard: change again.
	heard := false
	for i := 0; i < 10 && !heard; i++ {
		sdk.AddTool(e.ups["helpdesk"].srv, &sdk.Tool{Name: fmt.Sprintf("added_%d", i)}, func(context.Context, *sdk.CallToolRequest, ticketIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{}, nil, nil
		})
		select {
		case m := <-support:
			if m != mcp.NotifyToolsChanged {
				t.Fatalf("G: support heard %s", m)
			}
			if l := nextNotification(t, "support (listen)", supportListen); l != m {
				t.Fatalf("G: support's listen stream heard %s", l)
			}
			heard = true
		case <-time.After(2 * time.Second):
		}
	}
	if !heard {
		t.Fatal("G: support not told of the upstream's new tool")
	}
	// H: finance loses the tool; support, told already of the upstream's
	// change, is not told again.
	change(dropTool("billing-read", "billing/close_ticket"))
	expect("H", "finance", finance, mcp.NotifyToolsChanged)
	// I: support loses the prompt: its next hint is about prompts.
	change(func(s *state.Snapshot) {
		s.Skills["tickets"].Prompts = slices.DeleteFunc(s.Skills["tickets"].Prompts, func(g state.PromptGrant) bool { return g.Prompt == "helpdesk/internal" })
	})
	expect("I", "support", support, mcp.NotifyPromptsChanged)
}

// recordsOf sends one request, then a marker call of a tool nobody has
// (in hdr's session), and returns the answer and the records the request left (those written
// before the marker's).
func (e *env) recordsOf(t *testing.T, persona string, hdr map[string]string, body string) (rawResp, []gateway.Decision) {
	t.Helper()
	for len(e.decisions) > 0 {
		<-e.decisions
	}
	r := e.do(t, "POST", persona, hdr, body)
	marker := map[string]string{} // within the session, without 2026-07-28 headers
	for k, v := range hdr {
		if k != mcp.HeaderProtocolVersion && k != mcp.HeaderMethod && k != mcp.HeaderName {
			marker[k] = v
		}
	}
	e.do(t, "POST", persona, marker, `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"zz_marker","arguments":{}}}`)
	recs := e.nextRecords(t)
	for len(recs) == 0 || recs[len(recs)-1].Tool != "zz_marker" {
		recs = append(recs, e.nextRecords(t)...)
	}
	return r, recs[:len(recs)-1]
}

// A call DLP blocks, on the way in or on the way out, leaves exactly one
// record: refused at the DLP stage of its direction, after the stages it
// passed, naming the detector and never the value.
func TestDLPBlockWritesOneRecord(t *testing.T) {
	e := newDLPEnv(t, nil)
	key := e.keys["p-block"]
	sid := e.initAs(t, "p-block", key)
	hdr := map[string]string{"Authorization": "Bearer " + key, mcp.HeaderSessionID: sid}
	for _, tt := range []struct {
		name, args string
		stages     []string
	}{
		{"crm_store", `{"note":"charge ` + e.card + `"}`, []string{"authn", "protocol", "policy", "dlp-request"}},
		{"crm_lookup", `{}`, []string{"authn", "protocol", "policy", "dlp-request", "upstream", "dlp-response"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, recs := e.recordsOf(t, "p-block", hdr, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tt.name+`","arguments":`+tt.args+`}}`)
			if je := r.rpcError(t); je.Code != gateway.DLPBlockedCode {
				t.Fatalf("answer %s, want the DLP refusal", r.body)
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1: %+v", len(recs), recs)
			}
			d := recs[0]
			var stages []string
			for i, v := range d.Verdicts {
				stages = append(stages, v.Stage)
				if want := gateway.Allow; i == len(d.Verdicts)-1 {
					want = gateway.Deny
					if v.Outcome != want || !strings.Contains(v.Reason, "card-") {
						t.Fatalf("deciding verdict %+v", v)
					}
				} else if v.Outcome != want {
					t.Fatalf("verdict %+v before the block", v)
				}
			}
			if fmt.Sprint(stages) != fmt.Sprint(tt.stages) || d.Decision != gateway.Deny || d.Tool != tt.name {
				t.Fatalf("record %+v: stages %v, want %v", d, stages, tt.stages)
			}
			if strings.Contains(fmt.Sprintf("%+v", d), digits(e.card)[:8]) {
				t.Fatalf("the record holds the card: %+v", d)
			}
		})
	}
}
