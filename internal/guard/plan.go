package guard

import (
	"fmt"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// Default circuit breaker tuning (state.Breaker overrides the upstream's).
const (
	DefaultFailures    = 5
	DefaultCooldown    = 5 * time.Second
	maxCooldown        = 2 * time.Minute
	agentToolFailures  = 20
	agentToolCooldown  = 30 * time.Second
	maxWindows         = 3
	perMinute, perHour = time.Minute, time.Hour
	perDay             = 24 * time.Hour
)

// window is one token bucket's shape: capacity tokens, refilled at rate
// per second; text names it for refusals ("10 calls per minute").
type window struct {
	capacity float64
	rate     float64
	text     string
}

// rates are up to three windows (minute, hour, day) and a concurrency cap.
type rates struct {
	w           [maxWindows]window
	n           int
	concurrency int
}

func (r rates) empty() bool { return r.n == 0 && r.concurrency == 0 }

func compileRates(r state.Rates) rates {
	var out rates
	out.concurrency = r.Concurrency
	for _, f := range []struct {
		n    int
		per  time.Duration
		name string
	}{{r.CallsPerMinute, perMinute, "minute"}, {r.CallsPerHour, perHour, "hour"}, {r.CallsPerDay, perDay, "day"}} {
		if f.n <= 0 {
			continue
		}
		out.w[out.n] = window{capacity: float64(f.n), rate: float64(f.n) / f.per.Seconds(), text: fmt.Sprintf("%d calls per %s", f.n, f.name)}
		out.n++
	}
	// The burst caps every window's bucket (a smaller capacity spreads the
	// calls; the refill rate keeps each figure).
	if r.Burst > 0 {
		for i := 0; i < out.n; i++ {
			if b := float64(r.Burst); b < out.w[i].capacity {
				out.w[i].capacity = b
			}
		}
	}
	return out
}

// Plan is the limits of one state snapshot, compiled once (Compile) and
// read by every call judged under it.
type Plan struct {
	personas  map[string]*personaPlan
	upstreams map[string]*upstreamPlan
}

type personaPlan struct {
	agent   rates
	tools   map[string]rates // tool identity upstream/tool → per agent
	persona rates
}

type upstreamPlan struct {
	rates    rates
	failures int
	cooldown time.Duration
}

// Compile builds the Plan of a snapshot. It never fails: the state was
// validated when it was applied.
func Compile(snap *state.Snapshot) *Plan {
	p := &Plan{personas: map[string]*personaPlan{}, upstreams: map[string]*upstreamPlan{}}
	if snap == nil {
		return p
	}
	for name, ps := range snap.Personas {
		l := ps.Limits
		if l == nil {
			continue
		}
		pp := &personaPlan{
			agent: compileRates(state.Rates{CallsPerMinute: l.CallsPerMinute, CallsPerHour: l.CallsPerHour, CallsPerDay: l.CallsPerDay, Burst: l.Burst, Concurrency: l.Concurrency}),
		}
		if l.Persona != nil {
			pp.persona = compileRates(*l.Persona)
		}
		if len(l.Tools) > 0 {
			pp.tools = make(map[string]rates, len(l.Tools))
			for tool, r := range l.Tools {
				pp.tools[tool] = compileRates(r)
			}
		}
		p.personas[name] = pp
	}
	for name, u := range snap.Upstreams {
		up := &upstreamPlan{failures: DefaultFailures, cooldown: DefaultCooldown}
		if u.Limits != nil {
			up.rates = compileRates(*u.Limits)
		}
		if b := u.Breaker; b != nil {
			if b.Failures > 0 {
				up.failures = b.Failures
			}
			if b.Cooldown > 0 {
				up.cooldown = time.Duration(b.Cooldown)
			}
		}
		p.upstreams[name] = up
	}
	return p
}

// rates returns the limits that apply to key under p (false: none).
func (p *Plan) rates(k key) (rates, bool) {
	if p == nil {
		return rates{}, false
	}
	switch k.kind {
	case kindUpstream:
		if u := p.upstreams[k.a]; u != nil && !u.rates.empty() {
			return u.rates, true
		}
	case kindAgent, kindTool, kindPersona:
		pp := p.personas[k.a]
		if pp == nil {
			return rates{}, false
		}
		var r rates
		switch k.kind {
		case kindAgent:
			r = pp.agent
		case kindTool:
			r = pp.tools[k.c]
		case kindPersona:
			r = pp.persona
		}
		return r, !r.empty()
	}
	return rates{}, false
}
