package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// responder answers one POSTed request: as application/json when nothing
// but the response is sent, or as an SSE stream as soon as the upstream
// sends anything first (progress, logging, a server-to-client request).
//
// On the legacy revisions a stream is resumable: every event carries an id
// "<stream>.<seq>" and is kept in a replay buffer, the call goes on when the
// agent's connection drops (disconnection is not cancellation there), and
// a GET with Last-Event-ID picks up where the agent left off.
type responder struct {
	w         http.ResponseWriter
	mu        sync.Mutex
	streaming bool
	finished  bool
	broken    bool // the agent's connection failed; only the buffer is written

	g      *Gateway
	sessID string  // session nonce; "" for 2026-07-28 (not resumable)
	replay *replay // set once streaming on a legacy session
}

func newResponder(w http.ResponseWriter, g *Gateway, rc *reqCtx) *responder {
	return &responder{w: w, g: g, sessID: rc.sessionNonce()}
}

func (r *responder) resumable() bool { return r.sessID != "" }

func (r *responder) startStream() {
	h := r.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	r.w.WriteHeader(http.StatusOK)
	r.streaming = true
	if r.resumable() {
		r.replay = r.g.newReplay(r.sessID)
	}
}

func (r *responder) write(m *mcp.Message, final bool) error {
	ev := mcp.Event{Name: "message", Data: m.AppendJSON(nil)}
	if r.replay != nil {
		ev.ID = r.replay.add(ev.Data, final)
	}
	if r.broken {
		return errAgentGone
	}
	if err := mcp.WriteEvent(r.w, ev); err != nil {
		r.broken = true
		return err
	}
	if err := http.NewResponseController(r.w).Flush(); err != nil {
		r.broken = true
		return err
	}
	return nil
}

var errAgentGone = errors.New("the agent's stream is gone")

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
	err := r.write(m, false)
	if err != nil && r.replay != nil {
		return nil // buffered for a resuming GET
	}
	return err
}

// detached reports whether the agent may still collect the rest of the
// stream by resuming it.
func (r *responder) detached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replay != nil
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
		_ = r.write(m, true)
		return
	}
	writeJSON(r.w, status, m.AppendJSON(nil))
}

// replay keeps the events of one resumable response stream.
type replay struct {
	id      string
	session string
	mu      sync.Mutex
	events  [][]byte // events[i] has sequence number base+i
	base    int
	done    bool
	wake    chan struct{} // closed and replaced on every change
}

const (
	maxReplayEvents = 1024
	replayKeep      = 2 * time.Minute
)

func (g *Gateway) newReplay(session string) *replay {
	rp := &replay{id: randomID(9), session: session, wake: make(chan struct{})}
	g.replays.Store(rp.id, rp)
	time.AfterFunc(g.cfg.UpstreamTimeout+replayKeep, func() { g.replays.Delete(rp.id) })
	return rp
}

// add appends an event and returns its id.
func (rp *replay) add(data []byte, final bool) string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.events = append(rp.events, data)
	if len(rp.events) > maxReplayEvents {
		rp.events = rp.events[1:]
		rp.base++
	}
	seq := rp.base + len(rp.events) - 1
	rp.done = rp.done || final
	close(rp.wake)
	rp.wake = make(chan struct{})
	return rp.id + "." + strconv.Itoa(seq)
}

// after returns the events after seq, whether the stream is complete, and
// a channel closed on the next change.
func (rp *replay) after(seq int) (evs [][]byte, first int, done bool, wake <-chan struct{}) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	start := max(seq+1, rp.base)
	if i := start - rp.base; i < len(rp.events) {
		evs = rp.events[i:]
	}
	return evs, start, rp.done, rp.wake
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
	// seen is the persona's catalog as the agent last could know it, per
	// list kind; Gateway.Run compares it after a state change and tells
	// the agent only about the kinds that changed.
	seen atomic.Pointer[catalogPrint]
}

type hub struct {
	mu     sync.RWMutex
	ls     map[*listener]struct{}
	subs   map[string]map[string]bool // session nonce -> subscribed URIs (legacy)
	subsAt map[string]time.Time       // session nonce -> last subscribe
}

// subsKeep bounds how long a session's resource subscriptions are kept
// without a new subscribe (sessions can vanish without DELETE).
const subsKeep = 24 * time.Hour

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
		h.subsAt = map[string]time.Time{}
	}
	now := time.Now()
	for sess, at := range h.subsAt {
		if now.Sub(at) > subsKeep {
			delete(h.subs, sess)
			delete(h.subsAt, sess)
		}
	}
	h.subsAt[session] = now
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
	delete(h.subsAt, session)
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

// listeners returns the open listeners.
func (h *hub) listeners() []*listener {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*listener, 0, len(h.ls))
	for l := range h.ls {
		out = append(out, l)
	}
	return out
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

// resumeStream serves a GET with Last-Event-ID "<stream>.<seq>": the events the
// agent missed, then the rest of the stream live, ending after the final
// response.
func (g *Gateway) resumeStream(w http.ResponseWriter, c *Call, st *session, last string) {
	rc := &c.reqCtx
	sid, seqText, ok := strings.Cut(last, ".")
	seq, err := strconv.Atoi(seqText)
	v, found := g.replays.Load(sid)
	if !ok || err != nil || !found || v.(*replay).session != st.Nonce {
		g.reject(w, c, StageProtocol, http.StatusBadRequest, nil, mcp.Errorf(mcp.CodeInvalidRequest, "cannot resume: unknown or expired stream %s", strconv.Quote(last)))
		return
	}
	rp := v.(*replay)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rcw := http.NewResponseController(w)
	ctx := rc.r.Context()
	for {
		evs, first, done, wake := rp.after(seq)
		for i, data := range evs {
			id := rp.id + "." + strconv.Itoa(first+i)
			if mcp.WriteEvent(w, mcp.Event{ID: id, Name: "message", Data: data}) != nil {
				return
			}
			seq = first + i
		}
		if rcw.Flush() != nil || done {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-g.ctx.Done():
			return
		}
	}
}
