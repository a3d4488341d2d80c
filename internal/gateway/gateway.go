package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// Gateway serves the persona endpoints.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	sealer *sealer

	// upstreams is swapped whole when the view's upstream set changes.
	upstreams atomic.Pointer[upstreamSet]
	upMu      sync.Mutex // serializes swaps only

	dlp      *dlpStage
	stages   []Stage // govern's stage list, in order (stages.go)
	metrics  *Metrics
	audits   *auditQueue // nil without a Sink
	catalogs catalogs
	revoked  revocations
	inflight sync.Map // session nonce + "\x00" + request id -> context.CancelFunc
	relays   sync.Map // gateway request id -> *relay (server-to-client requests)
	parked   sync.Map // MRTR token -> *parkedCall
	replays  sync.Map // stream id -> *replay (resumable response streams)
	hub      hub

	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool
}

type upstreamSet struct {
	view *View
	m    map[string]*upstream
}

// New validates cfg and builds a Gateway. It does not contact upstreams;
// connections are made on first use.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s, err := newSealer(cfg.SessionKey, cfg.PreviousSessionKeys)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	ds, err := newDLPStage(&cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, sealer: s, dlp: ds, metrics: m}
	g.stages = g.stageList()
	if cfg.Sink != nil {
		g.audits = newAuditQueue(cfg.Sink, cfg.AuditQueue, cfg.Logger.With("component", "audit"), m)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.upstreams.Store(&upstreamSet{m: map[string]*upstream{}})
	g.sync(cfg.Source.View())
	return g, nil
}

// Handler returns the HTTP handler serving /p/{persona}/mcp and
// Config.Routes.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/p/{persona}/mcp", g.serve)
	g.mountRoutes(mux)
	return mux
}

func (g *Gateway) mountRoutes(mux *http.ServeMux) {
	for _, r := range g.cfg.Routes {
		mux.Handle(r.Pattern, r.Handler)
	}
}

// challenge is the WWW-Authenticate value of a 401 answer.
func (g *Gateway) challenge(r *http.Request, err error) string {
	if ch, ok := g.cfg.Authenticator.(Challenger); ok {
		return ch.Challenge(r, err)
	}
	return authn.Challenge(err)
}

// Run follows control-state changes until ctx ends: it reconnects changed
// upstreams, drops removed ones and tells listening agents that their lists
// may have changed.
func (g *Gateway) Run(ctx context.Context) error {
	ch, cancel := g.cfg.Source.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.ctx.Done():
			return nil
		case _, ok := <-ch:
			if !ok {
				return nil
			}
			v := g.cfg.Source.View()
			g.sync(v)
			g.hub.broadcastAll(mcp.NotifyToolsChanged, mcp.NotifyPromptsChanged, mcp.NotifyResourcesChanged)
		}
	}
}

// Close ends upstream connections and open agent streams. Safe to call
// more than once and after a partial start.
func (g *Gateway) Close() error {
	if g.closed.Swap(true) {
		return nil
	}
	g.cancel()
	g.upMu.Lock()
	set := g.upstreams.Load()
	g.upMu.Unlock()
	var wg sync.WaitGroup
	for _, u := range set.m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.close()
		}()
	}
	wg.Wait()
	if g.audits != nil {
		g.audits.shutdown(g.cfg.AuditDrain)
	}
	return nil
}

// sync makes the upstream set match v, keeping unchanged upstreams (and
// their warm connections and caches).
func (g *Gateway) sync(v *View) {
	if v == nil {
		return
	}
	g.upMu.Lock()
	defer g.upMu.Unlock()
	old := g.upstreams.Load()
	if old.view == v || (old.view != nil && v.Index < old.view.Index) {
		return // never step back to an older view a slow request still holds
	}
	next := &upstreamSet{view: v, m: make(map[string]*upstream, len(v.Upstreams))}
	var gone []*upstream
	for name, spec := range v.Upstreams {
		if u, ok := old.m[name]; ok && u.spec.same(spec) {
			next.m[name] = u
			continue
		}
		next.m[name] = &upstream{g: g, spec: spec}
	}
	for name, u := range old.m {
		if next.m[name] != u {
			gone = append(gone, u)
		}
	}
	g.upstreams.Store(next)
	for _, u := range gone {
		go u.close()
	}
}

// upstream returns the node's upstream for name under view v (nil when v
// has no such upstream).
func (g *Gateway) upstream(name string, v *View) *upstream {
	set := g.upstreams.Load()
	if set.view != v && (set.view == nil || v.Index >= set.view.Index) {
		g.sync(v)
		set = g.upstreams.Load()
	}
	return set.m[name]
}

// upstreamChanged tells listening agents whose role uses the upstream.
func (g *Gateway) upstreamChanged(upstream, method string) {
	v := g.cfg.Source.View()
	g.hub.broadcast(method, func(persona string) bool {
		if v == nil {
			return false
		}
		role := v.Role(persona)
		if role == nil {
			return false
		}
		for _, u := range role.Upstreams() {
			if u == upstream {
				return true
			}
		}
		return false
	})
}

// resourceUpdated forwards notifications/resources/updated to the agents
// subscribed to uri whose role still allows it.
func (g *Gateway) resourceUpdated(upstream, uri string) {
	v := g.cfg.Source.View()
	g.hub.resourceUpdated(uri, func(persona string) bool {
		if v == nil {
			return false
		}
		role := v.Role(persona)
		return role != nil && role.Resource(upstream, uri)
	})
}

func (g *Gateway) timeoutFor(u *upstream) time.Duration { return u.timeout() }
