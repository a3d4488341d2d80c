package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// durableSink is a DurableSink whose WriteDurable waits for release and
// then returns err.
type durableSink struct {
	mu      sync.Mutex
	err     error
	release chan struct{}
	durable []gateway.Decision
	queued  int
}

func (s *durableSink) Write(gateway.Decision) error {
	s.mu.Lock()
	s.queued++
	s.mu.Unlock()
	return nil
}

func (s *durableSink) WriteDurable(ctx context.Context, d gateway.Decision) error {
	s.mu.Lock()
	rel, err := s.release, s.err
	s.mu.Unlock()
	if rel != nil {
		<-rel
	}
	s.mu.Lock()
	s.durable = append(s.durable, d)
	s.mu.Unlock()
	return err
}

// With a DurableSink (strict audit) the answer leaves only once the
// record is durable, and a record that cannot be made durable withholds
// the result: the agent gets an error naming the audit trail instead.
func TestDurableSinkHoldsTheAnswer(t *testing.T) {
	sink := &durableSink{release: make(chan struct{})}
	e := newEnv(t, func(c *gateway.Config) { c.Sink = sink })
	sid := e.initSession(t, "2025-11-25")
	auth := map[string]string{"Authorization": "Bearer " + e.key, mcp.HeaderSessionID: sid}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"helpdesk_get_ticket","arguments":{"id":"T-1"}}}`

	type answer struct {
		status int
		body   string
	}
	got := make(chan answer, 1)
	go func() {
		r := e.do(t, "POST", "support", auth, call)
		got <- answer{r.status, string(r.body)}
	}()
	select {
	case a := <-got:
		t.Fatalf("the answer left before its record was durable: %d %s", a.status, a.body)
	case <-time.After(200 * time.Millisecond):
	}
	close(sink.release)
	a := <-got
	if a.status != 200 || !strings.Contains(a.body, `"result"`) || strings.Contains(a.body, `"error"`) {
		t.Fatalf("answer once durable: %d %s", a.status, a.body)
	}

	sink.mu.Lock()
	sink.release, sink.err = nil, errors.New("no quorum")
	sink.mu.Unlock()
	r := e.do(t, "POST", "support", auth, call)
	body := string(r.body)
	if r.status != 200 || !strings.Contains(body, `"error"`) || strings.Contains(body, `"result"`) || !strings.Contains(body, "audit trail could not make this call's record durable") {
		t.Fatalf("answer when the record is not durable: %d %s", r.status, body)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.durable) != 2 || sink.queued != 0 || sink.durable[1].Tool != "helpdesk_get_ticket" {
		t.Fatalf("the sink got %d durable and %d queued records, want 2 and 0", len(sink.durable), sink.queued)
	}
}
