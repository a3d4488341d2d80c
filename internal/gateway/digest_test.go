package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// nextToolCall waits for the record of the next tools/call.
func nextToolCall(t *testing.T, e *env) gateway.Decision {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case d := <-e.decisions:
			if d.Method == "tools/call" {
				return d
			}
		case <-deadline:
			t.Fatal("no tools/call record")
		}
	}
}

// Equal arguments get equal keyed digests (whatever the key order on the
// wire), different arguments or another key different ones, and the
// record carries a trace id: the agent's traceparent when it sent one.
func TestDecisionDigestsAndTrace(t *testing.T) {
	keyA := []byte("digest-key-A-0123456789abcdef012")
	keyB := []byte("digest-key-B-0123456789abcdef012")
	callOn := func(key []byte, args map[string]any, hdr http.Header) gateway.Decision {
		e := newEnv(t, func(c *gateway.Config) { c.DigestKey = key })
		opts := &mcp.ClientOptions{}
		cs := e.connectHeader("support", e.key, "2025-11-25", opts, hdr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "helpdesk_get_ticket", Arguments: args}); err != nil {
			t.Fatal(err)
		}
		return nextToolCall(t, e)
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	d1 := callOn(keyA, map[string]any{"id": "T-1"}, http.Header{"Traceparent": {tp}})
	d2 := callOn(keyA, map[string]any{"id": "T-1"}, nil)
	d3 := callOn(keyA, map[string]any{"id": "T-2"}, nil)
	d4 := callOn(keyB, map[string]any{"id": "T-1"}, nil)
	d5 := callOn(nil, map[string]any{"id": "T-1"}, nil)
	if len(d1.ArgsDigest) != 64 || len(d1.ResultDigest) != 64 {
		t.Fatalf("digests %q %q: want 64 hex digits each", d1.ArgsDigest, d1.ResultDigest)
	}
	if d1.ArgsDigest != d2.ArgsDigest || d1.ResultDigest != d2.ResultDigest {
		t.Fatalf("equal calls, different digests: %+v vs %+v", d1, d2)
	}
	if d3.ArgsDigest == d1.ArgsDigest || d3.ResultDigest == d1.ResultDigest {
		t.Fatal("different arguments and results gave equal digests")
	}
	if d4.ArgsDigest == d1.ArgsDigest || d4.ResultDigest == d1.ResultDigest {
		t.Fatal("another key gave equal digests")
	}
	if d5.ArgsDigest != "" || d5.ResultDigest != "" {
		t.Fatalf("no key, digests %q %q", d5.ArgsDigest, d5.ResultDigest)
	}
	if d1.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id %q, want the traceparent's", d1.TraceID)
	}
	if len(d2.TraceID) != 32 || d2.TraceID == d3.TraceID || strings.Trim(d2.TraceID, "0") == "" {
		t.Fatalf("generated trace ids %q %q", d2.TraceID, d3.TraceID)
	}
}
