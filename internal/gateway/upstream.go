package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/portcullis-gw/portcullis/internal/guard"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// list kinds cached per upstream.
type listKind int

const (
	kindTools listKind = iota
	kindResources
	kindTemplates
	kindPrompts
	numKinds
)

var listMethods = [numKinds]struct{ method, field, key, capability string }{
	kindTools:     {mcp.MethodToolsList, "tools", "name", "tools"},
	kindResources: {mcp.MethodResourcesList, "resources", "uri", "resources"},
	kindTemplates: {mcp.MethodResourceTemplates, "resourceTemplates", "uriTemplate", "resources"},
	kindPrompts:   {mcp.MethodPromptsList, "prompts", "name", "prompts"},
}

// item is one entry of an upstream list: its key (name, uri or uriTemplate)
// and its definition, raw.
type item struct {
	key string
	raw json.RawMessage
}

// listing is an immutable snapshot of one upstream list.
type listing struct {
	items []item
	err   error
	at    time.Time
	// risk scores each tool of a tools list by name (guard.ScoreTool),
	// computed when the list is fetched: a changed tool is scored again.
	risk map[string]guard.Risk
}

// upstream is this node's connection to one upstream and its list caches.
// The connection is shared by every agent session on the node; its
// session is re-created lazily when it breaks.
type upstream struct {
	g    *Gateway
	spec *UpstreamSpec

	dialMu  sync.Mutex
	dialing *dialState // the dial in progress, or the last failed one
	conn    atomic.Pointer[connBox]

	lists   [numKinds]atomic.Pointer[listing]
	listMus [numKinds]sync.Mutex // guard loads
	loads   [numKinds]*loadState

	closed atomic.Bool

	// logLevel is the level the last logging/setLevel through this node
	// asked for (nil: none yet). Legacy upstream sessions are shared, so the
	// most recent level wins there; a 2026-07-28 upstream has no session
	// level and gets it per call of a legacy agent (agentLogLevel).
	logLevel atomic.Pointer[string]
}

// defaultLogLevel is what a legacy agent that never sent logging/setLevel
// gets from a 2026-07-28 upstream, which logs only when asked: legacy
// servers log without being asked (the Go SDK from "info").
const defaultLogLevel = "info"

// agentLogLevel is the level a legacy agent's call asks a 2026-07-28
// upstream for.
func (u *upstream) agentLogLevel() string {
	if l := u.logLevel.Load(); l != nil {
		return *l
	}
	return defaultLogLevel
}

type connBox struct {
	c mcp.Conn
}

func (b *connBox) close() { _ = b.c.Close() }

const (
	maxListPages     = 100
	listErrorTTL     = 2 * time.Second
	listTTL          = 5 * time.Minute
	minListTimeout   = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	dialRetry        = time.Second
	gatewayCaps      = `{"sampling":{},"elicitation":{},"roots":{}}`
	maxListedItem    = 10000
)

func (u *upstream) timeout() time.Duration {
	if u.spec.Timeout > 0 {
		return u.spec.Timeout
	}
	return u.g.cfg.UpstreamTimeout
}

// connect returns a live connection. One dial runs at a time per upstream,
// detached from any request; callers wait for it only as long as their own
// context allows, so a hanging upstream never holds a call past its
// timeout. A failed dial is remembered for dialRetry to spare a dead
// upstream a storm of handshakes.
func (u *upstream) connect(ctx context.Context) (mcp.Conn, error) {
	if b := u.conn.Load(); b != nil && !isDone(b.c) {
		return b.c, nil
	}
	u.dialMu.Lock()
	if b := u.conn.Load(); b != nil {
		if !isDone(b.c) {
			u.dialMu.Unlock()
			return b.c, nil
		}
		b.close()
		u.conn.Store(nil)
	}
	ds := u.dialing
	if ds == nil || (ds.finished() && ds.err != nil && time.Since(ds.at) > dialRetry) {
		ds = &dialState{done: make(chan struct{})}
		u.dialing = ds
		go func() {
			hctx, cancel := context.WithTimeout(u.g.ctx, handshakeTimeout)
			defer cancel()
			c, err := u.dial(hctx)
			u.dialMu.Lock()
			ds.c, ds.err, ds.at = c, err, time.Now()
			if err == nil {
				u.dialing = nil
			}
			u.dialMu.Unlock()
			close(ds.done)
		}()
	}
	u.dialMu.Unlock()
	select {
	case <-ds.done:
		if ds.err != nil {
			return nil, ds.err
		}
		return ds.c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type dialState struct {
	done chan struct{}
	c    mcp.Conn
	err  error
	at   time.Time
}

func (d *dialState) finished() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// dial connects once and publishes the connection.
func (u *upstream) dial(ctx context.Context) (mcp.Conn, error) {
	if u.closed.Load() {
		return nil, errors.New("upstream removed")
	}
	d := u.g.cfg.Dialers[u.spec.Transport]
	if d == nil {
		d = httpDialer{u.g}
	}
	c, err := d.Dial(ctx, u.spec, DialOptions{
		ClientInfo:   mcp.Implementation{Name: u.g.cfg.ServerName, Version: u.g.cfg.ServerVersion},
		Capabilities: json.RawMessage(gatewayCaps),
		OnMessage:    u.onMessage,
		OnSession:    u.onSession,
		Logger:       u.g.log.With("upstream", u.spec.Name),
	})
	if err != nil {
		return nil, err
	}
	b := &connBox{c: c}
	if u.closed.Load() { // removed while dialling
		b.close()
		return nil, errors.New("upstream removed")
	}
	u.conn.Store(b)
	// A new connection may see a different server: refresh every list.
	for k := range u.lists {
		u.lists[k].Store(nil)
	}
	u.g.log.Info("upstream connected", "upstream", u.spec.Name, "revision", c.Server().ProtocolVersion)
	return c, nil
}

func isDone(c mcp.Conn) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// onMessage handles what an upstream sends outside any call.
func (u *upstream) onMessage(m *mcp.Message) {
	switch m.Method {
	case mcp.NotifyToolsChanged:
		u.invalidate(kindTools)
		u.g.upstreamChanged(u, mcp.NotifyToolsChanged)
	case mcp.NotifyPromptsChanged:
		u.invalidate(kindPrompts)
		u.g.upstreamChanged(u, mcp.NotifyPromptsChanged)
	case mcp.NotifyResourcesChanged:
		u.invalidate(kindResources)
		u.invalidate(kindTemplates)
		u.g.upstreamChanged(u, mcp.NotifyResourcesChanged)
	case mcp.NotifyResourceUpdated:
		var p struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.URI != "" {
			u.g.resourceUpdated(u.spec.Name, p.URI)
		}
	default:
		if m.IsRequest() {
			// Not tied to any agent's call: nobody can answer it.
			b := u.conn.Load()
			if b == nil {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = b.c.Respond(ctx, mcp.NewError(m.ID, mcp.Errorf(mcp.CodeMethodNotFound, "portcullis relays %s only within an agent's request", m.Method)))
			}()
			return
		}
		u.g.log.Debug("upstream notification dropped", "upstream", u.spec.Name, "method", m.Method)
	}
}

func (u *upstream) invalidate(k listKind) { u.lists[k].Store(nil) }

// onSession: the client re-created a session the upstream had forgotten
// (it restarted, perhaps with other tools). Every list is fetched again on
// next use, and agents are told their lists may have changed.
func (u *upstream) onSession(s mcp.ServerInfo) {
	u.g.log.Info("upstream session re-created; its lists are fetched again", "upstream", u.spec.Name, "revision", s.ProtocolVersion)
	for k := range u.lists {
		u.invalidate(listKind(k))
	}
	for _, method := range printMethods {
		u.g.upstreamChanged(u, method)
	}
}

// loadState is a list fetch in flight.
type loadState struct {
	done    chan struct{}
	started time.Time
}

// ensure makes sure list k is loaded or loading. It returns the fetch in
// flight when there is no usable list yet (nil otherwise). A list older than
// listTTL stays in use while a background fetch refreshes it (for upstreams
// that never send list_changed). Fetches run detached from any request, so
// an agent that goes away cannot poison the cache.
func (u *upstream) ensure(k listKind) *loadState {
	l := u.lists[k].Load()
	usable := l != nil && (l.err == nil || time.Since(l.at) < listErrorTTL)
	if usable && (l.err != nil || time.Since(l.at) < listTTL) {
		return nil
	}
	u.listMus[k].Lock()
	defer u.listMus[k].Unlock()
	if ls := u.loads[k]; ls != nil {
		if usable {
			return nil
		}
		return ls
	}
	if cur := u.lists[k].Load(); cur != l {
		return nil // refreshed meanwhile
	}
	ls := &loadState{done: make(chan struct{}), started: time.Now()}
	u.loads[k] = ls
	go func() {
		nl := u.fetch(u.g.ctx, k)
		u.listMus[k].Lock()
		u.lists[k].Store(nl)
		u.loads[k] = nil
		u.listMus[k].Unlock()
		close(ls.done)
	}()
	if usable {
		return nil
	}
	return ls
}

func (u *upstream) fetch(ctx context.Context, k listKind) *listing {
	l := u.fetchList(ctx, k)
	if l.err != nil && ctx.Err() == nil {
		u.g.log.Warn("upstream list unavailable", "upstream", u.spec.Name, "method", listMethods[k].method, "err", l.err)
	}
	return l
}

func (u *upstream) fetchList(ctx context.Context, k listKind) *listing {
	// Lists are metadata, not tool work: a short per-call timeout must not
	// hide an upstream whose first connection takes a moment.
	ctx, cancel := context.WithTimeout(ctx, max(u.timeout(), minListTimeout))
	defer cancel()
	c, err := u.connect(ctx)
	if err != nil {
		return &listing{err: fmt.Errorf("connect: %w", err), at: time.Now()}
	}
	lm := listMethods[k]
	if !hasCapability(c.Server().Capabilities, lm.capability) {
		return &listing{at: time.Now()}
	}
	l := &listing{at: time.Now()}
	cursor := ""
	for page := 0; page < maxListPages; page++ {
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		resp, err := c.Call(ctx, lm.method, params, nil)
		if err != nil {
			return &listing{err: err, at: time.Now()}
		}
		if resp.Error != nil {
			return &listing{err: resp.Error, at: time.Now()}
		}
		var res struct {
			NextCursor string `json:"nextCursor"`
		}
		_ = json.Unmarshal(resp.Result, &res)
		var entries []json.RawMessage
		if raw := mcp.GetField(resp.Result, lm.field); raw != nil {
			if err := json.Unmarshal(raw, &entries); err != nil {
				return &listing{err: fmt.Errorf("%s: malformed %s", lm.method, lm.field), at: time.Now()}
			}
		}
		for _, e := range entries {
			var key string
			if err := json.Unmarshal(mcp.GetField(e, lm.key), &key); err != nil || key == "" {
				u.g.log.Warn("upstream list entry without a key skipped", "upstream", u.spec.Name, "method", lm.method)
				continue
			}
			if len(l.items) < maxListedItem {
				l.items = append(l.items, item{key: key, raw: e})
			}
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	if k == kindTools {
		l.risk = make(map[string]guard.Risk, len(l.items))
		for _, it := range l.items {
			l.risk[it.key] = guard.ScoreTool(it.raw, u.spec.Environment, u.spec.Egress)
		}
	}
	return l
}

func hasCapability(caps json.RawMessage, name string) bool {
	if len(caps) == 0 {
		return true // unknown: ask
	}
	v := mcp.GetField(caps, name)
	return v != nil && string(v) != "null"
}

func (u *upstream) close() {
	u.closed.Store(true)
	if b := u.conn.Swap(nil); b != nil {
		b.close()
	}
}
