package mcp

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// lifetime ties a client's background work (listeners, answers to pings,
// refusals, cancellation notices) to the client: every such goroutine runs
// on a context that Close cancels, within a timeout where it answers the
// server, and Close waits for all of them. Work started after Close does
// not run.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex // orders go against end
	ended bool
	wg    sync.WaitGroup
}

func newLifetime() *lifetime {
	l := &lifetime{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// run starts f on its own goroutine; f must return once l.ctx ends. It
// reports false (and does nothing) after end.
func (l *lifetime) run(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// spawn runs f on its own goroutine with a context that ends after d or
// when the client closes, whichever comes first.
func (l *lifetime) spawn(d time.Duration, f func(ctx context.Context)) {
	l.run(func() {
		ctx, cancel := context.WithTimeout(l.ctx, d)
		defer cancel()
		f(ctx)
	})
}

// end cancels the background work and waits for it.
func (l *lifetime) end() {
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// respondTimeout bounds one answer the client sends on its own.
const respondTimeout = 5 * time.Second

// call is one Call in flight that takes server-initiated messages (its
// onMsg). Deliveries are serialized, so onMsg is never called from two
// goroutines at once, and none happens after the call ended.
type call struct {
	params  json.RawMessage // the request's params; the token is read from them lazily
	tokOnce sync.Once
	tok     string // the progress token the call carries (compact JSON), "" none

	mu    sync.Mutex
	ended bool
	onMsg func(*Message)
}

// token returns the progress token of the call's request (compact JSON).
func (c *call) token() string {
	c.tokOnce.Do(func() {
		if tok := GetField(GetField(c.params, "_meta"), MetaProgressToken); tok != nil {
			c.tok = string(Compact(tok))
		}
	})
	return c.tok
}

// deliver passes m to the call's onMsg; false when the call already ended.
func (c *call) deliver(m *Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.onMsg(m)
	return true
}

// calls tracks the calls in flight on one connection, so that a server
// message that arrives outside the call's own response stream (on the
// standalone GET stream of Streamable HTTP, or on the one stream of
// HTTP+SSE) reaches the call it belongs to. Upstream sessions are shared
// by every agent of a node, so a request that cannot be attributed with
// certainty is refused, never guessed.
type calls struct {
	mu sync.Mutex
	m  map[*call]struct{}
}

// add registers a call whose request carries params.
func (cs *calls) add(params json.RawMessage, onMsg func(*Message)) *call {
	// The progress token is looked up only when a message arrives outside
	// the call's stream (rare): parsing params on every call would cost
	// the hot path a pass over the arguments.
	c := &call{params: params, onMsg: onMsg}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m == nil {
		cs.m = map[*call]struct{}{}
	}
	cs.m[c] = struct{}{}
	return c
}

// remove ends c: it is no longer attributed anything, and once remove
// returns its onMsg is not called again.
func (cs *calls) remove(c *call) {
	cs.mu.Lock()
	delete(cs.m, c)
	cs.mu.Unlock()
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
}

// owner finds the call m belongs to. A progress notification belongs to
// the call with its progressToken; a server-to-client request to the call
// whose progress token it names in _meta (the association a server can
// give), else to the only call in flight. inFlight is how many calls were
// in flight.
func (cs *calls) owner(m *Message) (c *call, inFlight int) {
	var tok string
	switch {
	case m.Method == NotifyProgress:
		if t := GetField(m.Params, MetaProgressToken); t != nil {
			tok = string(Compact(t))
		}
	case m.IsRequest():
		if t := GetField(GetField(m.Params, "_meta"), MetaProgressToken); t != nil {
			tok = string(Compact(t))
		}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var only *call
	matches := 0
	for cl := range cs.m {
		only = cl
		if tok != "" && cl.token() == tok {
			c = cl
			matches++
		}
	}
	switch {
	case matches == 1:
		return c, len(cs.m)
	case matches > 1:
		return nil, len(cs.m) // two calls chose the same token: ambiguous
	case m.IsRequest() && len(cs.m) == 1:
		return only, 1
	}
	return nil, len(cs.m)
}

// outOfBand handles a message that arrived outside any call's response
// stream: the call it belongs to gets it; a server request nobody can be
// sure of is refused (by respond, with a JSON-RPC error) and logged;
// everything else goes to fallback (ClientConfig.OnMessage).
func (cs *calls) outOfBand(m *Message, log *slog.Logger, url string, respond func(*Message), fallback func(*Message)) {
	if m.IsRequest() || m.Method == NotifyProgress {
		c, n := cs.owner(m)
		if c != nil && c.deliver(m) {
			return
		}
		if m.IsRequest() && n > 0 {
			log.Warn("upstream request refused: it cannot be attributed to one of the requests in flight",
				"url", url, "method", m.Method, "in_flight", n)
			respond(NewError(m.ID, Errorf(CodeInvalidRequest,
				"%s arrived outside any request's response stream while %d requests were in flight on this session, and names none of them (no matching _meta.progressToken): send it on the response stream of the request it serves",
				m.Method, n)))
			return
		}
	}
	if fallback != nil {
		fallback(m)
		return
	}
	if m.IsRequest() {
		respond(NewError(m.ID, Errorf(CodeMethodNotFound, "client does not handle %s outside a request", m.Method)))
	}
}
