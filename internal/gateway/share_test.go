package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/dlp"
	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// Two gateways stand for two nodes of a cluster: what one learns about a
// session (the taint of a prod value it returned, the agent ending the
// session) reaches the other through ShareSessions → ImportSessions (in
// the appliance, raft), so the session's next call on the other node is
// judged with it.
func TestSessionEventsReachAnotherNode(t *testing.T) {
	key, _ := dlp.NewHMAC(bytes.Repeat([]byte{9}, 32))
	var mu sync.Mutex
	var other *gateway.Gateway
	var shared []*state.SessionEvents
	e := newDLPEnv(t, func(c *gateway.Config) {
		c.DLPKey = key
		c.ShareSessions = func(ev *state.SessionEvents) {
			mu.Lock()
			defer mu.Unlock()
			shared = append(shared, ev)
			if other != nil {
				other.ImportSessions(ev)
			}
		}
	})
	cfg2 := e.cfg
	cfg2.ShareSessions, cfg2.OnDecision = nil, nil
	gw2, err := gateway.New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = gw2.Run(ctx) }()
	ts2 := httptest.NewServer(gw2.Handler())
	t.Cleanup(func() { ts2.Close(); cancel(); <-done; gw2.Close() })
	mu.Lock()
	other = gw2
	mu.Unlock()

	node1, node2 := e.endpoint("p-none"), ts2.URL+"/p/p-none/mcp"
	agent := e.keys["p-none"]
	post := func(url, sid, body string) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+agent)
		req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
		if sid != "" {
			req.Header.Set(mcp.HeaderSessionID, sid)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	_, _, h := post(node1, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := h.Get(mcp.HeaderSessionID)
	if sid == "" {
		t.Fatal("no session")
	}
	post(node1, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if code, body, _ := post(node1, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"vault_lookup","arguments":{}}}`); code != 200 || !strings.Contains(body, "result") {
		t.Fatalf("lookup on node 1: %d %s", code, body)
	}
	mu.Lock()
	n := len(shared)
	mu.Unlock()
	if n == 0 {
		t.Fatal("the taint of the prod value was not shared")
	}
	args, _ := json.Marshal(map[string]any{"name": "sandbox_store", "arguments": map[string]any{"note": "card " + e.card}})
	before := len(e.rec["sandbox"].received())
	code, body, _ := post(node2, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":`+string(args)+`}`)
	if code != 200 || !strings.Contains(body, "may not flow to dev upstream") {
		t.Fatalf("the prod card sent through node 2 to a dev upstream: %d %s", code, body)
	}
	if len(e.rec["sandbox"].received()) != before {
		t.Fatal("tainted data reached the dev upstream through node 2")
	}

	req, _ := http.NewRequest(http.MethodDelete, node1, nil)
	req.Header.Set("Authorization", "Bearer "+agent)
	req.Header.Set(mcp.HeaderSessionID, sid)
	req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE on node 1: %v %v", err, res)
	}
	res.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body, _ = post(node2, sid, `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)
		if code == http.StatusNotFound && strings.Contains(body, "terminated") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a session ended on node 1 still works on node 2: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
