package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// A real SDK agent keeps its session when the node serving it dies and a
// load balancer sends it to another node with the same session key.
func TestFailoverKeepsSession(t *testing.T) {
	e := newEnv(t, nil) // node A
	cfg := e.cfg
	cfg.OnDecision = nil
	gwB, err := gateway.New(cfg) // node B: same state, same session key
	if err != nil {
		t.Fatal(err)
	}
	defer gwB.Close()
	nodeB := newServer(t, gwB.Handler())

	var target atomic.Pointer[url.URL]
	a, _ := url.Parse(e.ts.URL)
	target.Store(a)
	lb := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) },
		FlushInterval: -1,
	})
	defer lb.Close()

	for _, version := range []string{"2025-06-18", "2025-11-25"} {
		target.Store(a)
		c := sdk.NewClient(&sdk.Implementation{Name: "agent", Version: "1"}, &sdk.ClientOptions{Logger: testLogger(t)})
		tr := &sdk.StreamableClientTransport{Endpoint: lb.URL + "/p/support/mcp", HTTPClient: &http.Client{Transport: bearer{e.key, http.DefaultTransport}}, DisableStandaloneSSE: true}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"id": "T-1"}})
		if err != nil || text(t, res) != "helpdesk ticket T-1" {
			t.Fatalf("%s on node A: %v", version, err)
		}
		sid := cs.ID()
		b, _ := url.Parse(nodeB.URL)
		target.Store(b) // node A is gone for this agent
		res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "helpdesk_get_ticket", Arguments: map[string]any{"id": "T-2"}})
		if err != nil || text(t, res) != "helpdesk ticket T-2" {
			t.Fatalf("%s on node B after failover: %v", version, err)
		}
		if cs.ID() != sid {
			t.Fatalf("%s: session changed from %q to %q", version, sid, cs.ID())
		}
		cs.Close()
		cancel()
	}
}
