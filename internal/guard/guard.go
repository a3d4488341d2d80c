package guard

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Key kinds: what a bucket set is for.
const (
	kindAgent    uint8 = iota + 1 // a: persona, b: agent
	kindTool                      // a: persona, b: agent, c: tool identity
	kindPersona                   // a: persona
	kindUpstream                  // a: upstream
)

type key struct {
	kind    uint8
	a, b, c string
}

// entry is one key's buckets (one per window) and its calls in flight.
type entry struct {
	r        rates
	tokens   [maxWindows]float64
	last     time.Time // when tokens were last refilled
	pending  int       // admitted here since the last Export
	inflight int
	used     time.Time
}

// refill brings tokens up to now under r (a changed r keeps what is left,
// within the new capacity).
func (e *entry) refill(r rates, now time.Time) {
	if e.r != r {
		for i := 0; i < r.n; i++ {
			if i >= e.r.n || e.r.w[i] != r.w[i] {
				e.tokens[i] = r.w[i].capacity
			}
		}
		e.r = r
	}
	dt := now.Sub(e.last).Seconds()
	if dt > 0 {
		for i := 0; i < r.n; i++ {
			e.tokens[i] = math.Min(r.w[i].capacity, e.tokens[i]+dt*r.w[i].rate)
		}
		e.last = now
	}
}

const shards = 64

type shard struct {
	mu sync.Mutex
	m  map[key]*entry
}

// Config configures a Guard.
type Config struct {
	Logger *slog.Logger
	// Metrics registers the guard's collectors (nil: none).
	Metrics prometheus.Registerer
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Guard holds the buckets, caps and breakers of one node. Safe for
// concurrent use; Admit is called on every request's goroutine.
type Guard struct {
	log    *slog.Logger
	now    func() time.Time
	seed   maphash.Seed
	shards [shards]shard

	bmu      sync.Mutex // guards changes of breakers (reads are lock-free)
	breakers sync.Map   // key → *breaker
	seen     sync.Map   // tool identity → *seenData (Saw)

	refused *prometheus.CounterVec
	open    *prometheus.GaugeVec
	shared  *prometheus.CounterVec
}

// New returns an empty Guard.
func New(cfg Config) (*Guard, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{log: cfg.Logger, now: cfg.Now, seed: maphash.MakeSeed(),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_guard_refused_total",
			Help: "Calls the guard stage refused, by persona and why (rate limit, concurrency, circuit open)."}, []string{"persona", "reason"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portcullis_guard_circuit_open",
			Help: "1 while this node's circuit breaker of the upstream is open or half-open."}, []string{"upstream"}),
		shared: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_guard_shared_calls_total",
			Help: "Admitted calls this node reported to (sent) or learnt from (received) the other nodes, for cluster-wide limits."}, []string{"direction"}),
	}
	for i := range g.shards {
		g.shards[i].m = map[key]*entry{}
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{g.refused, g.open, g.shared} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("guard: register metrics: %w", err)
			}
		}
	}
	return g, nil
}

func (g *Guard) shard(k key) *shard {
	var h maphash.Hash
	h.SetSeed(g.seed)
	h.WriteByte(k.kind)
	h.WriteString(k.a)
	h.WriteByte(0)
	h.WriteString(k.b)
	h.WriteByte(0)
	h.WriteString(k.c)
	return &g.shards[h.Sum64()%shards]
}

// Call is what the guard knows of a call: who, through which persona, to
// which upstream and tool (the upstream's own name; "" for methods that
// are not tool calls).
type Call struct {
	Persona, Agent, Upstream, Tool string
}

// Refusal says why a call was refused and when to try again.
type Refusal struct {
	// Reason is for the agent and the audit record; it starts with "rate
	// limit", "concurrency limit" or "circuit open".
	Reason     string
	RetryAfter time.Duration
	// Kind is "rate-limit", "concurrency" or "circuit-open" (metrics).
	Kind string
}

func (r *Refusal) Error() string { return r.Reason }

// Ticket is an admitted call: Done must be called once when it ended.
type Ticket struct {
	g        *Guard
	held     [4]slot // the concurrency slots it holds
	nheld    int
	upstream *breaker
	tool     *breaker
	probe    [2]bool // it is the trial call of upstream / tool breaker
}

// slot is one concurrency slot a Ticket holds: an entry is never forgotten
// while it has calls in flight, so the pointer stays valid.
type slot struct {
	s *shard
	e *entry
}

// Outcome is how an admitted call ended, for the breakers.
type Outcome uint8

const (
	// Succeeded: the upstream answered (a tool error result included).
	Succeeded Outcome = iota
	// FailedCall: the upstream answered with an error (JSON-RPC error).
	FailedCall
	// FailedUpstream: no usable answer (timeout, unreachable, HTTP 5xx).
	FailedUpstream
	// NotCalled: the call ended before the upstream (a later stage refused).
	NotCalled
)

// Admit decides c under plan: a Ticket when admitted (call Done when it
// ends), else the Refusal. It never blocks beyond its mutexes.
func (g *Guard) Admit(plan *Plan, c Call) (*Ticket, *Refusal) {
	now := g.now()
	t := &Ticket{g: g}
	tool := ""
	if c.Tool != "" {
		tool = c.Upstream + "/" + c.Tool
	}
	// Breakers first: an open circuit refuses without spending tokens.
	if c.Upstream != "" {
		up := plan.upstreams[c.Upstream]
		failures, cooldown := DefaultFailures, DefaultCooldown
		if up != nil {
			failures, cooldown = up.failures, up.cooldown
		}
		b := g.breaker(key{kind: kindUpstream, a: c.Upstream}, failures, cooldown)
		probe, wait := b.allow(now)
		if wait > 0 {
			return nil, g.refuse(c.Persona, "circuit-open", wait, "circuit open: upstream %s failed %d calls in a row; retry in %s", c.Upstream, b.threshold, roundUp(wait))
		}
		t.upstream, t.probe[0] = b, probe
		if c.Tool != "" {
			tb := g.breaker(key{kind: kindTool, a: c.Persona, b: c.Agent, c: tool}, agentToolFailures, agentToolCooldown)
			probe, wait := tb.allow(now)
			if wait > 0 {
				t.release(now, NotCalled)
				return nil, g.refuse(c.Persona, "circuit-open", wait, "circuit open: %d calls in a row of agent %s to %s/%s failed; retry in %s", agentToolFailures, c.Agent, c.Upstream, c.Tool, roundUp(wait))
			}
			t.tool, t.probe[1] = tb, probe
		}
	}
	keys := [4]key{{kind: kindAgent, a: c.Persona, b: c.Agent}, {kind: kindPersona, a: c.Persona}}
	nk := 2
	if c.Tool != "" {
		keys[nk] = key{kind: kindTool, a: c.Persona, b: c.Agent, c: tool}
		nk++
	}
	if c.Upstream != "" {
		keys[nk] = key{kind: kindUpstream, a: c.Upstream}
		nk++
	}
	for i := 0; i < nk; i++ {
		k := keys[i]
		r, ok := plan.rates(k)
		if !ok {
			continue
		}
		if ref := g.take(k, r, now, t); ref != nil {
			g.refund(keys[:i], plan, t)
			t.release(now, NotCalled)
			g.refused.WithLabelValues(c.Persona, ref.Kind).Inc()
			ref.Reason = fmt.Sprintf(ref.Reason, describe(k))
			return nil, ref
		}
	}
	return t, nil
}

// take spends one token of every window of k's buckets and one
// concurrency slot, or refuses without spending anything.
func (g *Guard) take(k key, r rates, now time.Time, t *Ticket) *Refusal {
	s := g.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		e = &entry{last: now}
		for i := 0; i < r.n; i++ {
			e.tokens[i] = r.w[i].capacity
		}
		e.r = r
		s.m[k] = e
	}
	e.refill(r, now)
	e.used = now
	if r.concurrency > 0 && e.inflight >= r.concurrency {
		return &Refusal{Kind: "concurrency", RetryAfter: 100 * time.Millisecond,
			Reason: fmt.Sprintf("concurrency limit: %%s may have %d calls in flight; retry when one ends", r.concurrency)}
	}
	for i := 0; i < r.n; i++ {
		if e.tokens[i] < 1 {
			wait := time.Duration((1 - e.tokens[i]) / r.w[i].rate * float64(time.Second))
			return &Refusal{Kind: "rate-limit", RetryAfter: wait,
				Reason: fmt.Sprintf("rate limit: %%s may make %s; retry in %s", r.w[i].text, roundUp(wait))}
		}
	}
	for i := 0; i < r.n; i++ {
		e.tokens[i]--
	}
	if r.n > 0 {
		e.pending++
	}
	if r.concurrency > 0 {
		e.inflight++
		t.held[t.nheld] = slot{s, e}
		t.nheld++
	}
	return nil
}

// refund gives back the tokens a refused call took from keys (those
// before the one that refused it).
func (g *Guard) refund(keys []key, plan *Plan, t *Ticket) {
	for _, k := range keys {
		r, ok := plan.rates(k)
		if !ok || r.n == 0 {
			continue
		}
		s := g.shard(k)
		s.mu.Lock()
		if e := s.m[k]; e != nil {
			for i := 0; i < e.r.n; i++ {
				e.tokens[i] = math.Min(e.r.w[i].capacity, e.tokens[i]+1)
			}
			e.pending--
		}
		s.mu.Unlock()
	}
}

func (g *Guard) refuse(persona, kind string, wait time.Duration, format string, args ...any) *Refusal {
	g.refused.WithLabelValues(persona, kind).Inc()
	return &Refusal{Kind: kind, RetryAfter: wait, Reason: fmt.Sprintf(format, args...)}
}

// describe names what a key limits, for refusals.
func describe(k key) string {
	switch k.kind {
	case kindAgent:
		return fmt.Sprintf("agent %s of persona %s", k.b, k.a)
	case kindTool:
		return fmt.Sprintf("agent %s of persona %s on %s", k.b, k.a, k.c)
	case kindPersona:
		return fmt.Sprintf("persona %s (all its agents)", k.a)
	default:
		return fmt.Sprintf("upstream %s (all agents)", k.a)
	}
}

// roundUp renders a wait for people: tenths of a second, at least 0.1s.
func roundUp(d time.Duration) time.Duration {
	d = (d + 99*time.Millisecond).Truncate(100 * time.Millisecond)
	if d < 100*time.Millisecond {
		return 100 * time.Millisecond
	}
	return d
}

// Done ends an admitted call: its concurrency slots are released and its
// breakers learn the outcome. Calling it more than once does nothing.
func (t *Ticket) Done(o Outcome) {
	if t == nil || t.g == nil {
		return
	}
	t.release(t.g.now(), o)
	t.g = nil
}

func (t *Ticket) release(now time.Time, o Outcome) {
	g := t.g
	for i := 0; i < t.nheld; i++ {
		h := t.held[i]
		h.s.mu.Lock()
		if h.e.inflight > 0 {
			h.e.inflight--
		}
		h.s.mu.Unlock()
	}
	t.nheld = 0
	if t.upstream != nil {
		if t.upstream.done(now, o == FailedUpstream, o == NotCalled, t.probe[0]) {
			g.breakerChanged(t.upstream)
		}
		t.upstream = nil
	}
	if t.tool != nil {
		t.tool.done(now, o == FailedUpstream || o == FailedCall, o == NotCalled, t.probe[1])
		t.tool = nil
	}
}

// Usage is what one node admitted on one key since its last Export.
type Usage struct {
	Kind  uint8  `json:"k"`
	A     string `json:"a"`
	B     string `json:"b,omitempty"`
	C     string `json:"c,omitempty"`
	Calls int    `json:"n"`
}

// Export returns what this node admitted since the last Export, for the
// other nodes' Absorb, and forgets it.
func (g *Guard) Export() []Usage {
	var out []Usage
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.pending > 0 {
				out = append(out, Usage{Kind: k.kind, A: k.a, B: k.b, C: k.c, Calls: e.pending})
				e.pending = 0
			}
		}
		s.mu.Unlock()
	}
	n := 0
	for _, u := range out {
		n += u.Calls
	}
	g.shared.WithLabelValues("sent").Add(float64(n))
	return out
}

// Absorb spends, in this node's buckets, the tokens another node's calls
// took (its Export), under plan. Keys without limits here are ignored; a
// bucket may go below zero (down to minus its capacity), so that calls the
// cluster admitted beyond the limit are paid back before the next one.
func (g *Guard) Absorb(plan *Plan, usage []Usage) {
	now := g.now()
	n := 0
	for _, u := range usage {
		if u.Calls <= 0 {
			continue
		}
		k := key{kind: u.Kind, a: u.A, b: u.B, c: u.C}
		r, ok := plan.rates(k)
		if !ok || r.n == 0 {
			continue
		}
		n += u.Calls
		s := g.shard(k)
		s.mu.Lock()
		e := s.m[k]
		if e == nil {
			e = &entry{last: now, used: now}
			for i := 0; i < r.n; i++ {
				e.tokens[i] = r.w[i].capacity
			}
			e.r = r
			s.m[k] = e
		}
		e.refill(r, now)
		for i := 0; i < r.n; i++ {
			e.tokens[i] = math.Max(-r.w[i].capacity, e.tokens[i]-float64(u.Calls))
		}
		s.mu.Unlock()
	}
	g.shared.WithLabelValues("received").Add(float64(n))
}

// sweepIdle is how long an entry with full buckets and nothing in flight
// is kept after its last use.
const sweepIdle = 10 * time.Minute

// Run forgets idle entries every minute until ctx ends. A forgotten entry
// is recreated full, which is what refilling would have reached: entries
// are forgotten only once their buckets are full again.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			g.sweep(g.now())
		}
	}
}

func (g *Guard) sweep(now time.Time) {
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.inflight > 0 || e.pending > 0 || now.Sub(e.used) < sweepIdle {
				continue
			}
			e.refill(e.r, now)
			full := true
			for j := 0; j < e.r.n; j++ {
				full = full && e.tokens[j] >= e.r.w[j].capacity
			}
			if full {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
	g.bmu.Lock()
	g.breakers.Range(func(k, b any) bool {
		if b.(*breaker).idle(now) {
			g.breakers.Delete(k)
		}
		return true
	})
	g.bmu.Unlock()
}

// Entries is how many bucket sets the guard holds (memory figure).
func (g *Guard) Entries() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
