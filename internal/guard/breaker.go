package guard

import (
	"sort"
	"sync"
	"time"
)

// Breaker states.
const (
	Closed   = "closed"
	Open     = "open"
	HalfOpen = "half-open"
)

// breaker is one circuit breaker: closed until threshold failures in a
// row, then open for cooldown (doubling while trial calls fail, up to
// maxCooldown), then half-open: one trial call at a time, whose success
// closes it.
type breaker struct {
	k         key
	threshold int
	base      time.Duration

	mu       sync.Mutex
	failures int // in a row
	state    string
	openedAt time.Time
	cooldown time.Duration
	trial    bool // a trial call is in flight
	used     time.Time
}

// breaker returns k's breaker, made on first use, tuned to threshold and
// cooldown (the current plan's).
func (g *Guard) breaker(k key, threshold int, cooldown time.Duration) *breaker {
	v, ok := g.breakers.Load(k)
	if !ok {
		g.bmu.Lock()
		v, _ = g.breakers.LoadOrStore(k, &breaker{k: k, state: Closed, threshold: threshold, base: cooldown})
		g.bmu.Unlock()
	}
	b := v.(*breaker)
	b.mu.Lock()
	b.threshold, b.base = threshold, cooldown
	b.mu.Unlock()
	return b
}

// allow reports whether a call may go through now: probe when it is the
// half-open trial call; otherwise wait > 0 is how long the circuit stays
// open.
func (b *breaker) allow(now time.Time) (probe bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used = now
	switch b.state {
	case Closed:
		return false, 0
	case Open:
		if left := b.openedAt.Add(b.cooldown).Sub(now); left > 0 {
			return false, left
		}
		b.state = HalfOpen
	}
	if b.trial {
		return false, 100 * time.Millisecond // the trial call's answer decides
	}
	b.trial = true
	return true, 0
}

// done records how a call that allow let through ended; it reports
// whether the breaker opened or closed.
func (b *breaker) done(now time.Time, failed, notCalled, probe bool) (changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.trial = false
	}
	if notCalled {
		return false
	}
	if !failed {
		b.failures = 0
		if b.state != Closed {
			b.state, b.cooldown = Closed, 0
			return true
		}
		return false
	}
	b.failures++
	switch {
	case b.state == HalfOpen && probe:
		b.cooldown = min(2*b.cooldown, maxCooldown)
		b.state, b.openedAt = Open, now
		return true
	case b.state == Closed && b.failures >= b.threshold:
		b.state, b.openedAt, b.cooldown = Open, now, b.base
		return true
	}
	return false
}

// idle reports whether the breaker is closed, clean and unused lately.
func (b *breaker) idle(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == Closed && b.failures == 0 && !b.trial && now.Sub(b.used) > sweepIdle
}

// BreakerState is one circuit breaker as status reports it.
type BreakerState struct {
	// Upstream, and for an agent's breaker on one tool, Agent and Tool.
	Upstream string `json:"upstream,omitempty"`
	Persona  string `json:"persona,omitempty"`
	Agent    string `json:"agent,omitempty"`
	Tool     string `json:"tool,omitempty"`
	State    string `json:"state"`
	// Failures in a row so far.
	Failures int `json:"failures"`
	// RetryAt is when an open circuit lets a trial call through.
	RetryAt time.Time `json:"retryAt,omitzero"`
}

// Breakers reports this node's breakers that are not closed and clean,
// upstreams first.
func (g *Guard) Breakers() []BreakerState {
	var bs []*breaker
	g.breakers.Range(func(_, b any) bool {
		bs = append(bs, b.(*breaker))
		return true
	})
	var out []BreakerState
	for _, b := range bs {
		b.mu.Lock()
		if b.state != Closed || b.failures > 0 {
			st := BreakerState{State: b.state, Failures: b.failures}
			if b.state == Open {
				st.RetryAt = b.openedAt.Add(b.cooldown)
			}
			if b.k.kind == kindUpstream {
				st.Upstream = b.k.a
			} else {
				st.Persona, st.Agent, st.Tool = b.k.a, b.k.b, b.k.c
			}
			out = append(out, st)
		}
		b.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Upstream != "") != (out[j].Upstream != "") {
			return out[i].Upstream != ""
		}
		return out[i].Upstream+out[i].Persona+out[i].Agent+out[i].Tool < out[j].Upstream+out[j].Persona+out[j].Agent+out[j].Tool
	})
	return out
}

// Breaker is the state of upstream's breaker on this node.
func (g *Guard) Breaker(upstream string) BreakerState {
	st := BreakerState{Upstream: upstream, State: Closed}
	v, ok := g.breakers.Load(key{kind: kindUpstream, a: upstream})
	if !ok {
		return st
	}
	b := v.(*breaker)
	b.mu.Lock()
	defer b.mu.Unlock()
	st.State, st.Failures = b.state, b.failures
	if b.state == Open {
		st.RetryAt = b.openedAt.Add(b.cooldown)
	}
	return st
}

func (g *Guard) breakerChanged(b *breaker) {
	b.mu.Lock()
	state, failures := b.state, b.failures
	b.mu.Unlock()
	v := 0.0
	if state != Closed {
		v = 1
	}
	g.open.WithLabelValues(b.k.a).Set(v)
	if state == Closed {
		g.log.Info("circuit closed: the upstream answers again", "upstream", b.k.a)
	} else {
		g.log.Warn("circuit open: calls to the upstream are refused until a trial call succeeds", "upstream", b.k.a, "failures", failures)
	}
}
