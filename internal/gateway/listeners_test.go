package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestListenersFollowTheState: a persona's dedicated listener opens when
// its endpoint appears, serves the persona's MCP endpoint at /mcp behind
// the guard, moves when the address changes, waits for a busy address, and
// closes when the endpoint goes; a loopback-only node refuses a LAN address.
func TestListenersFollowTheState(t *testing.T) {
	e := newEnv(t, nil)
	var guarded atomic.Int32
	ls, err := gateway.NewListeners(gateway.ListenersConfig{
		Gateway: e.gw, State: e.st, LoopbackOnly: true, Retry: 50 * time.Millisecond, Logger: testLogger(t),
		Guard: func(persona string, h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				guarded.Add(1)
				w.Header().Set("X-Guarded-Persona", persona)
				h.ServeHTTP(w, r)
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ls.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if n := len(ls.Addrs()); n != 0 {
			t.Errorf("%d listeners still open after Run ended", n)
		}
	}()
	endpoints := func(eps map[string]string) {
		e.st.set(e.snapshot(func(s *state.Snapshot) {
			for p, addr := range eps {
				s.Personas[p].Endpoint = &state.Endpoint{Listen: addr}
			}
		}))
	}
	waitAddrs := func(want map[string]string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := ls.Addrs()
			same := len(got) == len(want)
			for p, a := range want {
				same = same && got[p] == a
			}
			if same {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("listeners %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	post := func(addr string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	first := freeAddr(t)
	endpoints(map[string]string{"support": first, "finance": "192.0.2.1:9001"})
	waitAddrs(map[string]string{"support": first})
	code, hdr, body := post(first)
	if hdr.Get("X-Guarded-Persona") != "support" || guarded.Load() == 0 {
		t.Fatalf("the persona listener does not go through the guard: %d %v", code, hdr)
	}
	// The support persona's description becomes the instructions: this is
	// its endpoint, not another persona's.
	if code != http.StatusOK || !strings.Contains(body, "First-line support") {
		t.Fatalf("initialize on the support listener: %d %s", code, body)
	}

	// Moving to a busy address: the old listener closes, the new one opens
	// once the address is free.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	second := busy.Addr().String()
	endpoints(map[string]string{"support": second})
	waitAddrs(map[string]string{})
	if code, _, _ := post(first); code != 0 {
		t.Errorf("old address still answers %d after the endpoint moved", code)
	}
	busy.Close()
	waitAddrs(map[string]string{"support": second})
	if code, _, body := post(second); code != http.StatusOK || !strings.Contains(body, "First-line support") {
		t.Fatalf("moved listener: %d %s", code, body)
	}

	endpoints(nil)
	waitAddrs(map[string]string{})
}

func TestNewListenersNeedsGatewayAndState(t *testing.T) {
	e := newEnv(t, nil)
	for name, cfg := range map[string]gateway.ListenersConfig{
		"no gateway": {State: e.st},
		"no state":   {Gateway: e.gw},
		"negative":   {Gateway: e.gw, State: e.st, Retry: -time.Second},
	} {
		if _, err := gateway.NewListeners(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
