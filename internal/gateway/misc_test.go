package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/state"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The upstream sees the credential the gateway injects, never the agent's.
func TestUpstreamCredentialInjection(t *testing.T) {
	var injected atomic.Int32
	e := newEnv(t, func(c *gateway.Config) {
		c.UpstreamTransport = func(spec *gateway.UpstreamSpec, base http.RoundTripper) (http.RoundTripper, error) {
			return rtFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.Header.Set("X-Upstream-Key", "for-"+spec.Name)
				return base.RoundTrip(r)
			}), nil
		}
	})
	inner := e.ups["helpdesk"].ts.Config.Handler
	e.ups["helpdesk"].ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Upstream-Key") == "for-helpdesk" {
			injected.Add(1)
		}
		inner.ServeHTTP(w, r)
	})
	cs := e.connect("support", e.key, "2025-11-25", nil)
	if _, err := call(t, cs, "helpdesk_get_ticket", map[string]any{"id": "T-1"}); err != nil {
		t.Fatal(err)
	}
	if injected.Load() == 0 {
		t.Fatal("the injected credential never reached the upstream")
	}
	if n := e.ups["helpdesk"].sawAuth.Load(); n != 0 {
		t.Fatalf("upstream saw %d requests with an Authorization header", n)
	}
}

// Host validation (DNS rebinding): only configured Host values pass.
func TestAllowedHosts(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.AllowedHosts = []string{"gw.example"} })
	req := func(host string) int {
		r, _ := http.NewRequest("POST", e.endpoint("support"), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		r.Host = host
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("Authorization", "Bearer "+e.key)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := req("attacker.example"); s != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", s)
	}
	if s := req("gw.example:8443"); s != http.StatusOK {
		t.Fatalf("allowed Host: %d", s)
	}
}

// completion/complete follows the prompt grants.
func TestCompletion(t *testing.T) {
	e := newEnv(t, nil)
	cs := e.connect("support", e.key, "2025-11-25", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cs.Complete(ctx, &sdk.CompleteParams{Ref: &sdk.CompleteReference{Type: "ref/prompt", Name: "helpdesk_summarize"}, Argument: sdk.CompleteParamsArgument{Name: "id", Value: "T-"}})
	if err != nil {
		t.Fatalf("complete allowed prompt: %v", err)
	}
	if len(res.Completion.Values) == 0 || res.Completion.Values[0] != "T-100" {
		t.Fatalf("completion %+v", res.Completion)
	}
	if _, err := cs.Complete(ctx, &sdk.CompleteParams{Ref: &sdk.CompleteReference{Type: "ref/prompt", Name: "helpdesk_internal"}, Argument: sdk.CompleteParamsArgument{Name: "id", Value: "T-"}}); err == nil {
		t.Fatal("completion for a prompt outside the role succeeded")
	}
}

// Resource subscriptions are filtered by the resource grants, and updates
// reach the subscribed agent: legacy and 2026-07-28 agents, over a legacy
// upstream (resources/subscribe) and a 2026-07-28 upstream
// (subscriptions/listen).
func TestResourceSubscription(t *testing.T) {
	for _, tc := range []struct{ agent, upstream string }{
		{"2025-11-25", "helpdesk"}, {"2025-11-25", "billing"}, {"2026-07-28", "helpdesk"}, {"2026-07-28", "billing"},
	} {
		t.Run(tc.agent+"-via-"+tc.upstream, func(t *testing.T) {
			e := newEnv(t, nil)
			e.st.set(e.snapshot(func(s *state.Snapshot) {
				s.Skills["tickets"].Resources = []state.ResourceGrant{{URI: "ticket://*", Upstream: tc.upstream}}
			}))
			got := make(chan string, 16)
			cs := e.connect("support", e.key, tc.agent, &sdk.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
				got <- req.Params.URI
			}})
			ctx := context.Background()
			if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: "secret://keys"}); err == nil && tc.agent != "2026-07-28" {
				t.Fatal("subscribed to a resource outside the role")
			}
			if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: "ticket://open"}); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			// The streams open asynchronously: repeat the update until one
			// arrives.
			for i := 0; ; i++ {
				_ = e.ups[tc.upstream].srv.ResourceUpdated(ctx, &sdk.ResourceUpdatedNotificationParams{URI: "secret://keys"})
				if err := e.ups[tc.upstream].srv.ResourceUpdated(ctx, &sdk.ResourceUpdatedNotificationParams{URI: "ticket://open"}); err != nil {
					t.Fatal(err)
				}
				select {
				case uri := <-got:
					if uri != "ticket://open" {
						t.Fatalf("update for %q", uri)
					}
					return
				case <-time.After(500 * time.Millisecond):
				}
				if i == 10 {
					t.Fatal("resource update not delivered")
				}
			}
		})
	}
}
