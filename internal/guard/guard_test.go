package guard

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newGuard(t testing.TB) (*Guard, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	g, err := New(Config{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return g, c
}

func plan(personas map[string]*state.Limits, upstreams map[string]*state.Upstream) *Plan {
	snap := &state.Snapshot{Personas: map[string]*state.Persona{}, Upstreams: upstreams}
	for name, l := range personas {
		snap.Personas[name] = &state.Persona{Limits: l}
	}
	if snap.Upstreams == nil {
		snap.Upstreams = map[string]*state.Upstream{"helpdesk": {}}
	}
	return Compile(snap)
}

var call = Call{Persona: "triage", Agent: "bot", Upstream: "helpdesk", Tool: "search_tickets"}

// admitN admits n calls (each ended at once) and returns how many passed
// and the last refusal.
func admitN(g *Guard, p *Plan, c Call, n int) (int, *Refusal) {
	ok := 0
	var last *Refusal
	for i := 0; i < n; i++ {
		t, r := g.Admit(p, c)
		if r != nil {
			last = r
			continue
		}
		ok++
		t.Done(Succeeded)
	}
	return ok, last
}

func TestRateLimitPerAgentRefusesAboveTheLimitAndRefills(t *testing.T) {
	g, clk := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 3}}, nil)
	ok, ref := admitN(g, p, call, 5)
	if ok != 3 || ref == nil {
		t.Fatalf("5 calls at once under 3 per minute: %d admitted, refusal %v; want 3 and a refusal", ok, ref)
	}
	if !strings.HasPrefix(ref.Reason, "rate limit: agent bot of persona triage may make 3 calls per minute; retry in 20s") {
		t.Errorf("refusal %q", ref.Reason)
	}
	if ref.RetryAfter < 19*time.Second || ref.RetryAfter > 20*time.Second {
		t.Errorf("RetryAfter %v, want ~20s (one token every 20s)", ref.RetryAfter)
	}
	// Another agent of the persona has buckets of its own.
	other := call
	other.Agent = "bot2"
	if ok, _ := admitN(g, p, other, 3); ok != 3 {
		t.Errorf("another agent: %d of 3 admitted", ok)
	}
	clk.add(20 * time.Second)
	if ok, _ := admitN(g, p, call, 2); ok != 1 {
		t.Errorf("20s later: %d admitted, want 1 (one token refilled)", ok)
	}
	clk.add(time.Hour)
	if ok, _ := admitN(g, p, call, 5); ok != 3 {
		t.Errorf("an hour later: %d admitted, want 3 (the bucket holds at most its capacity)", ok)
	}
}

func TestRateLimitPerToolPersonaAndUpstream(t *testing.T) {
	g, _ := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {
		Tools:   map[string]state.Rates{"helpdesk/search_tickets": {CallsPerMinute: 2}},
		Persona: &state.Rates{CallsPerMinute: 5},
	}}, map[string]*state.Upstream{"helpdesk": {Limits: &state.Rates{CallsPerHour: 7}}})
	ok, ref := admitN(g, p, call, 3)
	if ok != 2 || ref == nil || !strings.Contains(ref.Reason, "on helpdesk/search_tickets may make 2 calls per minute") {
		t.Fatalf("tool limit 2/min: %d admitted, refusal %v", ok, ref)
	}
	// Other tools of the same agent are not limited by it, but the persona's
	// 5 per minute counts every call of every agent.
	get := call
	get.Tool = "get_ticket"
	if ok, _ := admitN(g, p, get, 2); ok != 2 {
		t.Fatalf("another tool: %d of 2", ok)
	}
	other := get
	other.Agent = "bot2"
	ok, ref = admitN(g, p, other, 3)
	if ok != 1 || ref == nil || !strings.Contains(ref.Reason, "persona triage (all its agents) may make 5 calls per minute") {
		t.Fatalf("persona limit 5/min after 4 calls: %d admitted, refusal %v", ok, ref)
	}
	// The upstream's own limit covers every persona.
	p2 := plan(map[string]*state.Limits{}, map[string]*state.Upstream{"helpdesk": {Limits: &state.Rates{CallsPerHour: 7}}})
	g2, _ := newGuard(t)
	ok, ref = admitN(g2, p2, Call{Persona: "x", Agent: "a", Upstream: "helpdesk", Tool: "t"}, 10)
	if ok != 7 || ref == nil || !strings.Contains(ref.Reason, "upstream helpdesk (all agents) may make 7 calls per hour") {
		t.Fatalf("upstream 7/h: %d admitted, refusal %v", ok, ref)
	}
}

func TestRefusedCallSpendsNothing(t *testing.T) {
	g, _ := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 10, Tools: map[string]state.Rates{"helpdesk/search_tickets": {CallsPerMinute: 1}}}}, nil)
	if ok, _ := admitN(g, p, call, 5); ok != 1 {
		t.Fatalf("tool limit 1/min: %d admitted", ok)
	}
	// The 4 refused calls did not spend the agent's tokens: 9 remain.
	get := call
	get.Tool = "get_ticket"
	if ok, _ := admitN(g, p, get, 20); ok != 9 {
		t.Errorf("after 1 admitted and 4 refused calls, %d more admitted under 10/min, want 9", ok)
	}
}

func TestBurstSpreadsCalls(t *testing.T) {
	g, clk := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 60, Burst: 2}}, nil)
	if ok, _ := admitN(g, p, call, 5); ok != 2 {
		t.Fatalf("burst 2: %d admitted at once", ok)
	}
	clk.add(time.Second)
	if ok, _ := admitN(g, p, call, 5); ok != 1 {
		t.Fatalf("1s later under 60/min: %d admitted, want 1", ok)
	}
}

func TestConcurrencyCap(t *testing.T) {
	g, _ := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {Concurrency: 2}}, nil)
	t1, r1 := g.Admit(p, call)
	t2, r2 := g.Admit(p, call)
	_, r3 := g.Admit(p, call)
	if r1 != nil || r2 != nil || r3 == nil || !strings.HasPrefix(r3.Reason, "concurrency limit: agent bot of persona triage may have 2 calls in flight") {
		t.Fatalf("third call with 2 in flight: %v %v %v", r1, r2, r3)
	}
	t1.Done(Succeeded)
	t1.Done(Succeeded) // twice is harmless
	t4, r4 := g.Admit(p, call)
	if r4 != nil {
		t.Fatalf("after one ended: %v", r4)
	}
	if _, r := g.Admit(p, call); r == nil {
		t.Fatal("a second Done must not free a second slot")
	}
	t2.Done(FailedCall)
	t4.Done(NotCalled)
}

func TestUpstreamCircuitBreaker(t *testing.T) {
	g, clk := newGuard(t)
	p := plan(nil, map[string]*state.Upstream{"helpdesk": {Breaker: &state.Breaker{Failures: 3, Cooldown: state.Duration(2 * time.Second)}}})
	fail := func() {
		tk, r := g.Admit(p, call)
		if r != nil {
			t.Fatalf("refused while closed: %v", r)
		}
		tk.Done(FailedUpstream)
	}
	fail()
	fail()
	// A success in between resets the count.
	tk, _ := g.Admit(p, call)
	tk.Done(Succeeded)
	fail()
	fail()
	if st := g.Breaker("helpdesk"); st.State != Closed || st.Failures != 2 {
		t.Fatalf("after 2 failures in a row: %+v", st)
	}
	fail()
	_, r := g.Admit(p, call)
	if r == nil || !strings.HasPrefix(r.Reason, "circuit open: upstream helpdesk failed 3 calls in a row; retry in 2s") || r.Kind != "circuit-open" {
		t.Fatalf("after 3 failures: %v", r)
	}
	if st := g.Breaker("helpdesk"); st.State != Open || st.RetryAt.IsZero() {
		t.Fatalf("state %+v", st)
	}
	// Other upstreams are not affected.
	if _, r := g.Admit(p, Call{Persona: "triage", Agent: "bot", Upstream: "wiki", Tool: "x"}); r != nil {
		t.Fatalf("another upstream: %v", r)
	}
	clk.add(2 * time.Second)
	trial, r := g.Admit(p, call)
	if r != nil {
		t.Fatalf("after the cooldown the trial call: %v", r)
	}
	if _, r := g.Admit(p, call); r == nil {
		t.Fatal("a second call during the trial must wait for it")
	}
	trial.Done(FailedUpstream)
	if _, r := g.Admit(p, call); r == nil || !strings.Contains(r.Reason, "retry in 4s") {
		t.Fatalf("after a failed trial the cooldown doubles: %v", r)
	}
	clk.add(4 * time.Second)
	trial, _ = g.Admit(p, call)
	trial.Done(Succeeded)
	if st := g.Breaker("helpdesk"); st.State != Closed {
		t.Fatalf("after a good trial: %+v", st)
	}
	if ok, _ := admitN(g, p, call, 5); ok != 5 {
		t.Fatalf("closed again: %d of 5", ok)
	}
	// A trial call that a later stage refused (never reached the upstream)
	// lets the next one try.
	for range 3 {
		fail()
	}
	clk.add(2 * time.Second)
	trial, _ = g.Admit(p, call)
	trial.Done(NotCalled)
	if _, r := g.Admit(p, call); r != nil {
		t.Fatalf("after a trial that never ran: %v", r)
	}
}

func TestAgentToolBreakerIsolatesOneAgentsErrorStorm(t *testing.T) {
	g, _ := newGuard(t)
	p := plan(nil, nil)
	for i := 0; i < agentToolFailures; i++ {
		tk, r := g.Admit(p, call)
		if r != nil {
			t.Fatalf("call %d: %v", i, r)
		}
		tk.Done(FailedCall)
	}
	if _, r := g.Admit(p, call); r == nil || !strings.HasPrefix(r.Reason, fmt.Sprintf("circuit open: %d calls in a row of agent bot to helpdesk/search_tickets failed", agentToolFailures)) {
		t.Fatalf("after an error storm: %v", r)
	}
	other := call
	other.Agent = "bot2"
	if _, r := g.Admit(p, other); r != nil {
		t.Fatalf("another agent on the same tool: %v", r)
	}
	if st := g.Breaker("helpdesk"); st.State != Closed {
		t.Fatalf("JSON-RPC errors must not open the upstream's breaker: %+v", st)
	}
	if bs := g.Breakers(); len(bs) != 1 || bs[0].Agent != "bot" || bs[0].State != Open {
		t.Fatalf("Breakers() = %+v", bs)
	}
}

func TestClusterNodesShareWhatTheyAdmitted(t *testing.T) {
	a, _ := newGuard(t)
	b, _ := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 10}}, nil)
	if ok, _ := admitN(a, p, call, 6); ok != 6 {
		t.Fatal(ok)
	}
	u := a.Export()
	if len(u) != 1 || u[0].Calls != 6 {
		t.Fatalf("Export = %+v", u)
	}
	if again := a.Export(); len(again) != 0 {
		t.Fatalf("a second Export repeats %+v", again)
	}
	b.Absorb(p, u)
	if ok, _ := admitN(b, p, call, 10); ok != 4 {
		t.Fatalf("node b after node a admitted 6 of 10: %d admitted, want 4", ok)
	}
	// Both bursting at once before hearing of each other: each admits the
	// limit, and each then pays the other's calls back before admitting more.
	c, clk := newGuard(t)
	d, _ := newGuard(t)
	admitN(c, p, call, 10)
	admitN(d, p, call, 10)
	c.Absorb(p, d.Export())
	clk.add(time.Minute)
	if ok, _ := admitN(c, p, call, 20); ok != 0 {
		t.Fatalf("a minute after the cluster admitted 20 of 10: %d admitted, want 0 (it owes 10)", ok)
	}
	// Usage of keys without limits here, or malformed, changes nothing.
	b.Absorb(p, []Usage{{Kind: 99, A: "x", Calls: 5}, {Kind: kindAgent, A: "nobody", B: "x", Calls: -3}})
}

func TestChangedLimitTakesEffect(t *testing.T) {
	g, _ := newGuard(t)
	p1 := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 2}}, nil)
	admitN(g, p1, call, 2)
	p2 := plan(map[string]*state.Limits{"triage": {CallsPerMinute: 100}}, nil)
	if ok, _ := admitN(g, p2, call, 10); ok != 10 {
		t.Fatalf("after raising the limit to 100/min: %d of 10", ok)
	}
	p3 := plan(map[string]*state.Limits{}, nil)
	if ok, _ := admitN(g, p3, call, 500); ok != 500 {
		t.Fatalf("after removing the limit: %d of 500", ok)
	}
}

func TestSweepForgetsOnlyFullIdleEntries(t *testing.T) {
	g, clk := newGuard(t)
	p := plan(map[string]*state.Limits{"triage": {CallsPerDay: 5}}, nil)
	admitN(g, p, call, 5)
	g.Export()
	clk.add(sweepIdle + time.Minute)
	g.sweep(clk.now())
	if g.Entries() != 1 {
		t.Fatal("an entry still owing tokens was forgotten (its agent would get a fresh day)")
	}
	clk.add(24 * time.Hour)
	g.sweep(clk.now())
	if n := g.Entries(); n != 0 {
		t.Fatalf("%d entries left after a full idle day", n)
	}
}
