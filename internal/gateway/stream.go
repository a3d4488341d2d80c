package gateway

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// responder answers one POSTed request: as application/json when nothing
// but the response is sent, or as an SSE stream as soon as the upstream
// sends anything first (progress, logging, a server-to-client request).
type responder struct {
	w         http.ResponseWriter
	mu        sync.Mutex
	streaming bool
	finished  bool
}

func newResponder(w http.ResponseWriter) *responder { return &responder{w: w} }

func (r *responder) startStream() {
	h := r.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	r.w.WriteHeader(http.StatusOK)
	r.streaming = true
}

// send writes an intermediate message on the response stream.
func (r *responder) send(m *mcp.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return http.ErrHandlerTimeout
	}
	if !r.streaming {
		r.startStream()
	}
	if err := mcp.WriteEvent(r.w, mcp.Event{Name: "message", Data: m.AppendJSON(nil)}); err != nil {
		return err
	}
	return http.NewResponseController(r.w).Flush()
}

// finish writes the final response. status applies only when the response
// has not turned into a stream.
func (r *responder) finish(m *mcp.Message, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.finished = true
	if r.streaming {
		_ = mcp.WriteEvent(r.w, mcp.Event{Name: "message", Data: m.AppendJSON(nil)})
		_ = http.NewResponseController(r.w).Flush()
		return
	}
	writeJSON(r.w, status, m.AppendJSON(nil))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// listener is one open agent stream for server-initiated notifications:
// the GET stream of a legacy session, or a subscriptions/listen stream.
type listener struct {
	persona string
	session string          // session nonce ("" for 2026-07-28)
	subID   json.RawMessage // subscriptions/listen request id, stamped into _meta
	want    map[string]bool // notification methods the agent opted in to
	uris    map[string]bool // resource subscriptions (2026-07-28)
	ch      chan *mcp.Message
}

type hub struct {
	mu   sync.RWMutex
	ls   map[*listener]struct{}
	subs map[string]map[string]bool // session nonce -> subscribed URIs (legacy)
}

func (h *hub) add(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ls == nil {
		h.ls = map[*listener]struct{}{}
	}
	h.ls[l] = struct{}{}
}

func (h *hub) remove(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ls, l)
}

func (h *hub) subscribe(session, uri string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[string]map[string]bool{}
	}
	s := h.subs[session]
	if s == nil {
		s = map[string]bool{}
		h.subs[session] = s
	}
	if on {
		s[uri] = true
	} else {
		delete(s, uri)
	}
}

func (h *hub) dropSession(session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, session)
}

func (l *listener) deliver(method string, params json.RawMessage) {
	if l.subID != nil {
		meta, _ := mcp.SetField(mcp.GetField(params, "_meta"), mcp.MetaSubscriptionID, l.subID)
		params, _ = mcp.SetField(params, "_meta", meta)
	}
	select {
	case l.ch <- mcp.NewNotification(method, params):
	default: // a slow agent loses change hints, never blocks the gateway
	}
}

func (h *hub) broadcast(method string, match func(persona string) bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for l := range h.ls {
		if l.want[method] && match(l.persona) {
			l.deliver(method, nil)
		}
	}
}

func (h *hub) broadcastAll(methods ...string) {
	for _, m := range methods {
		h.broadcast(m, func(string) bool { return true })
	}
}

func (h *hub) resourceUpdated(uri string, allowed func(persona string) bool) {
	params, _ := json.Marshal(map[string]string{"uri": uri})
	h.mu.RLock()
	defer h.mu.RUnlock()
	for l := range h.ls {
		subscribed := l.uris[uri] || (l.session != "" && h.subs[l.session][uri])
		if subscribed && allowed(l.persona) {
			l.deliver(mcp.NotifyResourceUpdated, params)
		}
	}
}
