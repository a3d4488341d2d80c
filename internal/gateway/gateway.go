package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"slices"
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
	told     told

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
	g.told.wake = make(chan struct{}, 1)
	g.upstreams.Store(&upstreamSet{m: map[string]*upstream{}})
	g.sync(cfg.Source.View())
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(upstreamUp{g}); err != nil {
			return nil, fmt.Errorf("gateway: metrics: %w", err)
		}
	}
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
// upstreams, drops removed ones and tells listening agents which of their
// lists changed.
func (g *Gateway) Run(ctx context.Context) error {
	ch, cancel := g.cfg.Source.Subscribe()
	defer cancel()
	shown := g.cfg.Source.View() // the view whose lists were last announced
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.ctx.Done():
			return nil
		case <-g.told.wake:
			g.reseen(shown)
		case _, ok := <-ch:
			if !ok {
				return nil
			}
			v := g.cfg.Source.View()
			g.sync(v)
			g.reseen(shown)
			g.announce(v)
			shown = v
		}
	}
}

// announce tells each open listener which of its persona's lists (tools,
// prompts, resources) a control-state change actually changed: the
// persona's catalog under v is compared with the one the listener last
// could know (taken when it opened, then after each change). A listener
// still opening (nothing seen yet) hears every kind. Runs on Run's
// goroutine; it may wait up to ListWait for an upstream's lists.
func (g *Gateway) announce(v *View) {
	prints := map[string]*catalogPrint{}
	for _, l := range g.hub.listeners() {
		now, ok := prints[l.persona]
		if !ok {
			now = g.printOf(l.persona, v)
			prints[l.persona] = now
		}
		prev := l.seen.Swap(now)
		for k, method := range printMethods {
			if l.want[method] && (prev == nil || prev[k] != now[k]) {
				l.deliver(method, nil)
			}
		}
	}
}

// catalogPrint fingerprints a persona's lists: tools, prompts, resources
// (with templates).
type catalogPrint [3]uint64

var printMethods = [3]string{mcp.NotifyToolsChanged, mcp.NotifyPromptsChanged, mcp.NotifyResourcesChanged}

var printSeed = maphash.MakeSeed()

var allKinds = []listKind{kindTools, kindPrompts, kindResources, kindTemplates}

// printOf fingerprints the persona's catalog under v (an unknown persona
// sees empty lists), waiting for lists to load as a request would.
func (g *Gateway) printOf(persona string, v *View) *catalogPrint {
	var role Role
	if v != nil && v.Role != nil {
		role = v.Role(persona)
	}
	if role == nil {
		return &catalogPrint{}
	}
	return printCatalog(g.catalog(g.ctx, persona, role, v, allKinds...))
}

func printCatalog(cat *catalog) *catalogPrint {
	var h maphash.Hash
	h.SetSeed(printSeed)
	p := &catalogPrint{}
	for k, parts := range [3][]json.RawMessage{{cat.toolsJSON}, {cat.promptsJSON}, {cat.resourcesJSON, cat.templatesJSON}} {
		h.Reset()
		for _, b := range parts {
			_, _ = h.Write(b)
			_ = h.WriteByte(0)
		}
		p[k] = h.Sum64()
	}
	return p
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

// upstreamChanged tells listening agents whose role uses the upstream that
// its list of method's kind changed, and asks Run to record in their
// listeners what they will find when they list again (so that the next
// control-state change does not repeat the hint). Called on the upstream's
// reader goroutine; never blocks.
func (g *Gateway) upstreamChanged(u *upstream, method string) {
	defer g.hub.broadcast(method, func(persona string) bool { return g.uses(persona, u.spec.Name) })
	k := slices.Index(printMethods[:], method)
	if k < 0 {
		return
	}
	// Noted before the agents hear of it: whatever they do next, Run
	// already knows.
	g.told.mu.Lock()
	if g.told.kinds == nil {
		g.told.kinds = map[string]kindSet{}
	}
	ks := g.told.kinds[u.spec.Name]
	ks[k] = true
	g.told.kinds[u.spec.Name] = ks
	g.told.mu.Unlock()
	select {
	case g.told.wake <- struct{}{}:
	default:
	}
}

// uses reports whether the persona's current role uses the upstream.
func (g *Gateway) uses(persona, upstream string) bool {
	v := g.cfg.Source.View()
	if v == nil {
		return false
	}
	role := v.Role(persona)
	return role != nil && slices.Contains(role.Upstreams(), upstream)
}

// told is what upstreams announced since Run last looked: upstream name ->
// the list kinds (printMethods order) the agents were told of.
type told struct {
	mu    sync.Mutex
	kinds map[string]kindSet
	wake  chan struct{} // capacity 1
}

// kindSet is a set of list kinds, in printMethods order.
type kindSet [len(printMethods)]bool

// reseen replaces, in the listeners whose persona uses an upstream that
// announced a change, the prints of the kinds it changed with the
// persona's catalog under shown (the view last announced), now that the
// upstream's lists are new. Runs on Run's goroutine, before any later
// announce, so that a state change after the hint is still compared with
// what the agent knows. It may wait up to ListWait for the lists.
func (g *Gateway) reseen(shown *View) {
	g.told.mu.Lock()
	pending := g.told.kinds
	g.told.kinds = nil
	g.told.mu.Unlock()
	if len(pending) == 0 || shown == nil {
		return
	}
	prints := map[string]*catalogPrint{}
	for _, l := range g.hub.listeners() {
		var kinds kindSet
		role := shown.Role(l.persona)
		if role == nil {
			continue
		}
		for _, up := range role.Upstreams() {
			for k, on := range pending[up] {
				kinds[k] = kinds[k] || on
			}
		}
		if kinds == (kindSet{}) {
			continue
		}
		now, ok := prints[l.persona]
		if !ok {
			now = g.printOf(l.persona, shown)
			prints[l.persona] = now
		}
		for {
			old := l.seen.Load()
			if old == nil {
				break // still opening: it takes its own print
			}
			next := *old
			for k, on := range kinds {
				if on {
					next[k] = now[k]
				}
			}
			if l.seen.CompareAndSwap(old, &next) {
				break
			}
		}
	}
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
