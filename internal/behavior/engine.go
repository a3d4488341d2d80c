package behavior

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/internal/gateway"
	"github.com/portcullis-gw/portcullis/internal/mcp"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// State is the replicated control state the engine reads (*state.Store).
type State interface {
	Current() *state.Snapshot
	Subscribe() (<-chan struct{}, func())
}

// Alert is one action the engine took, for the log, webhooks and the
// audit stream.
type Alert struct {
	Time    time.Time
	Action  string // block, hold, stop, quarantine
	Agent   string
	Persona string
	Session string
	Tool    string // "<upstream>/<tool>"
	Rule    string // the SequenceRule, or "default:<signal>"
	Reason  string
}

// Config configures an Engine.
type Config struct {
	Logger *slog.Logger
	State  State
	// Propose writes a command through raft (from any node; the appliance
	// forwards to the leader). It is called off the request path for
	// quarantines, and on it for holds (which wait anyway).
	Propose func(ctx context.Context, cmd *state.Command) error
	// Node names this node in quarantines and approvals.
	Node string
	// HoldTimeout is how long a held call waits for a decision when its
	// rule sets none (default 5m); then it is denied.
	HoldTimeout time.Duration
	// Runaway configures the default protections.
	Runaway RunawayConfig
	// MaxTrackers bounds the agents and sessions tracked (default
	// 200,000); past it the least recently seen half is dropped.
	MaxTrackers int
	// IdleTTL drops a tracker not seen for this long (default: the longest
	// rule window, at least 1h).
	IdleTTL time.Duration
	// Alert, when set, is called for every action taken. It must not block.
	Alert func(Alert)
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Engine is the behaviour stage: it implements gateway.Behaviour.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	epoch time.Time
	comp  atomic.Pointer[compiled]

	shards [shardCount]shard
	seed   maphash.Seed

	// Local actions, effective before (and without) raft: quarantines this
	// node proposed, and sessions it stopped.
	mu        sync.Mutex
	local     map[string]string    // agent → quarantine reason
	committed map[string]bool      // agents whose local quarantine the cluster committed
	stopped   map[string]time.Time // session → until

	props chan *state.Command
	done  chan struct{}
	close sync.Once
}

var _ gateway.Behaviour = (*Engine)(nil)

// compiled is what one snapshot compiles to.
type compiled struct {
	index       uint64
	rules       []*rule
	sessionRule bool // some rule counts per session
	quarantines map[string]*state.Quarantine
	idle        time.Duration
}

const shardCount = 64

type shard struct {
	mu sync.Mutex
	m  map[string]*tracker
}

// tracker is one agent's (or session's) history.
type tracker struct {
	last    int64 // ms since epoch of the last call
	windows []ruleWindow
	run     *runaway // agent trackers only
}

type ruleWindow struct {
	id uint64
	w  window
}

func (t *tracker) window(id uint64) *window {
	for i := range t.windows {
		if t.windows[i].id == id {
			return &t.windows[i].w
		}
	}
	t.windows = append(t.windows, ruleWindow{id: id})
	return &t.windows[len(t.windows)-1].w
}

func (t *tracker) peek(id uint64) *window {
	for i := range t.windows {
		if t.windows[i].id == id {
			return &t.windows[i].w
		}
	}
	return nil
}

// New builds an engine; Run keeps its rules current.
func New(cfg Config) (*Engine, error) {
	if cfg.State == nil {
		return nil, errors.New("behavior: State is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = 5 * time.Minute
	}
	if cfg.MaxTrackers <= 0 {
		cfg.MaxTrackers = 200_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Runaway.setDefaults()
	e := &Engine{cfg: cfg, log: cfg.Logger, epoch: cfg.Now(), seed: maphash.MakeSeed(),
		local: map[string]string{}, committed: map[string]bool{}, stopped: map[string]time.Time{},
		props: make(chan *state.Command, 1024), done: make(chan struct{})}
	for i := range e.shards {
		e.shards[i].m = map[string]*tracker{}
	}
	e.recompile()
	return e, nil
}

// Run recompiles the rules after every state change, proposes the
// quarantines the request path queued, and drops idle trackers, until ctx
// ends. Cancellation is not an error.
func (e *Engine) Run(ctx context.Context) error {
	ch, cancel := e.cfg.State.Subscribe()
	defer cancel()
	e.recompile()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.done:
			return nil
		case <-ch:
			e.recompile()
		case cmd := <-e.props:
			e.proposeRetry(ctx, cmd)
		case <-sweep.C:
			e.sweep()
		}
	}
}

// Close stops Run. Safe to call more than once.
func (e *Engine) Close() error {
	e.close.Do(func() { close(e.done) })
	return nil
}

func (e *Engine) recompile() {
	s := e.cfg.State.Current()
	if old := e.comp.Load(); old != nil && old.index == s.Index && s.Index != 0 {
		return
	}
	c := &compiled{index: s.Index, quarantines: s.Quarantines, idle: time.Hour}
	for _, o := range s.List(state.KindSequenceRule) {
		r, fe := compileRule(o.(*state.SequenceRule))
		if fe != nil {
			// Applied through an API without the CEL check (or by a newer
			// binary): skip the rule, loudly.
			e.log.Error("sequence rule skipped: its condition does not compile here", "rule", o.Metadata().Name, "err", fe.Msg)
			continue
		}
		c.rules = append(c.rules, r)
		c.sessionRule = c.sessionRule || r.session
		c.idle = max(c.idle, r.within)
	}
	if e.cfg.IdleTTL > 0 {
		c.idle = e.cfg.IdleTTL
	}
	e.comp.Store(c)
	var released []string
	e.mu.Lock()
	for agent := range e.local {
		if e.released(agent, s) {
			delete(e.local, agent)
			delete(e.committed, agent)
			released = append(released, agent)
		}
	}
	e.mu.Unlock()
	for _, agent := range released {
		e.forget(agent)
	}
}

// forget resets a released agent's default protections: its history
// starts over.
func (e *Engine) forget(agent string) {
	key := agentKey(agent)
	sh := e.shard(key)
	sh.mu.Lock()
	if t := sh.m[key]; t != nil {
		t.run = nil
	}
	sh.mu.Unlock()
}

// released reports whether the local quarantine of agent is over: the
// cluster committed it once and no longer holds it (an admin released
// it). A local quarantine whose proposal has not committed yet stays.
func (e *Engine) released(agent string, s *state.Snapshot) bool {
	return e.committed[agent] && s.Quarantines[agent] == nil
}

func (e *Engine) ms(t time.Time) int64 { return t.Sub(e.epoch).Milliseconds() }

func (e *Engine) shard(key string) *shard {
	return &e.shards[maphash.String(e.seed, key)%shardCount]
}

// Judge implements gateway.Behaviour: quarantined agents and stopped
// sessions are refused; a tools/call is judged by every rule that watches
// its persona and judges its tool.
func (e *Engine) Judge(ctx context.Context, c *gateway.BehaviourCall) gateway.BehaviourVerdict {
	comp := e.comp.Load()
	if q := comp.quarantines[c.Agent]; q != nil {
		return gateway.BehaviourVerdict{Deny: true, Reason: quarantineText(c.Agent, q.Reason)}
	}
	if v, stop := e.localRefusal(c); stop {
		return v
	}
	if c.Method != mcp.MethodToolsCall || len(comp.rules) == 0 {
		return gateway.BehaviourVerdict{}
	}
	now := e.cfg.Now()
	for _, r := range comp.rules {
		if !r.watches(c.Persona) || !r.judges(c.Upstream, c.Tool, c.Egress) {
			continue
		}
		key := agentKey(c.Agent)
		if r.session {
			key = sessionKey(c.Session)
		}
		n := e.count(key, r, now)
		if n < r.spec.After.Count {
			continue
		}
		if r.cond != nil && !e.condition(r, c, n) {
			continue
		}
		if v, acted := e.act(ctx, r, c, n); acted {
			return v
		}
	}
	return gateway.BehaviourVerdict{}
}

func (e *Engine) localRefusal(c *gateway.BehaviourCall) (gateway.BehaviourVerdict, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.local) == 0 && len(e.stopped) == 0 {
		return gateway.BehaviourVerdict{}, false
	}
	if reason, ok := e.local[c.Agent]; ok {
		return gateway.BehaviourVerdict{Deny: true, Reason: quarantineText(c.Agent, reason)}, true
	}
	if until, ok := e.stopped[c.Session]; ok && c.Session != "" {
		if e.cfg.Now().Before(until) {
			return gateway.BehaviourVerdict{Deny: true, Reason: "the session was stopped by the behaviour stage; start a new session"}, true
		}
		delete(e.stopped, c.Session)
	}
	return gateway.BehaviourVerdict{}, false
}

func quarantineText(agent, reason string) string {
	return fmt.Sprintf("agent %s is quarantined (%s); an admin lifts it with `portcullis agent release %s`", agent, reason, agent)
}

func agentKey(a string) string   { return "a\x00" + a }
func sessionKey(s string) string { return "s\x00" + s }

func (e *Engine) count(key string, r *rule, now time.Time) int {
	sh := e.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.m[key]
	if t == nil {
		return 0
	}
	w := t.peek(r.id)
	if w == nil {
		return 0
	}
	return w.count(now, r.within)
}

func (e *Engine) condition(r *rule, c *gateway.BehaviourCall, n int) bool {
	args := map[string]any{}
	for k, v := range c.Args {
		args[k] = v
	}
	out, _, err := r.cond.Eval(map[string]any{
		"call": map[string]any{"tool": c.Upstream + "/" + c.Tool, "upstream": c.Upstream, "skill": c.Skill,
			"egress": c.Egress, "agent": c.Agent, "persona": c.Persona, "session": c.Session, "args": args},
		"count": int64(n),
	})
	if err != nil {
		e.log.Warn("sequence rule condition failed; the rule does not fire", "rule", r.spec.Name, "err", err)
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// act takes r's action on c; acted is false only when nothing was done
// (never: every action refuses or holds).
func (e *Engine) act(ctx context.Context, r *rule, c *gateway.BehaviourCall, n int) (gateway.BehaviourVerdict, bool) {
	spec := r.spec
	why := fmt.Sprintf("%s, then %s", spec.WindowText(n), spec.ThenText())
	reason := fmt.Sprintf("refused by sequence rule %s: %s", spec.Name, why)
	a := Alert{Time: e.cfg.Now(), Action: spec.Action, Agent: c.Agent, Persona: c.Persona, Session: c.Session,
		Tool: c.Upstream + "/" + c.Tool, Rule: spec.Name, Reason: why}
	switch spec.Action {
	case "block":
		e.alert(a)
		return gateway.BehaviourVerdict{Deny: true, Reason: reason}, true
	case "stop":
		e.alert(a)
		e.mu.Lock()
		if len(e.stopped) < e.cfg.MaxTrackers {
			e.stopped[c.Session] = e.cfg.Now().Add(24 * time.Hour)
		}
		e.mu.Unlock()
		return gateway.BehaviourVerdict{Deny: true, Reason: reason + "; the session is ended", EndSession: true}, true
	case "quarantine":
		e.alert(a)
		e.quarantine(c.Agent, "sequence rule "+spec.Name+": "+why, spec.Name)
		return gateway.BehaviourVerdict{Deny: true, Reason: reason + "; the agent is quarantined until an admin releases it (`portcullis agent release " + c.Agent + "`)"}, true
	case "hold":
		return e.hold(ctx, r, c, why, a), true
	}
	return gateway.BehaviourVerdict{Deny: true, Reason: reason}, true
}

func (e *Engine) alert(a Alert) {
	e.log.Warn("behaviour action", "action", a.Action, "agent", a.Agent, "persona", a.Persona, "session", a.Session, "tool", a.Tool, "rule", a.Rule, "reason", a.Reason)
	if e.cfg.Alert != nil {
		e.cfg.Alert(a)
	}
}

// quarantine refuses agent on this node at once and queues the
// cluster-wide quarantine for Run to propose.
func (e *Engine) quarantine(agent, reason, rule string) {
	e.mu.Lock()
	_, already := e.local[agent]
	e.local[agent] = reason
	e.mu.Unlock()
	if already {
		return
	}
	cmd := &state.Command{Op: state.OpAgentQuarantine, Time: e.cfg.Now().UTC(),
		Quarantine: &state.Quarantine{Agent: agent, Reason: reason, Rule: rule, Node: e.cfg.Node}}
	select {
	case e.props <- cmd:
	default:
		e.log.Error("quarantine not replicated: the proposal queue is full (the agent stays refused on this node)", "agent", agent)
	}
}

// proposeRetry proposes a quarantine until it commits (a leader may be
// missing for a while), giving up after a minute.
func (e *Engine) proposeRetry(ctx context.Context, cmd *state.Command) {
	if e.cfg.Propose == nil {
		return
	}
	agent := cmd.Quarantine.Agent
	for attempt := 0; attempt < 12; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := e.cfg.Propose(pctx, cmd)
		cancel()
		if err == nil || errors.Is(err, state.ErrConflict) {
			e.mu.Lock()
			e.committed[agent] = true
			e.mu.Unlock()
			return
		}
		e.log.Warn("quarantine not replicated yet; retrying", "agent", agent, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// hold parks the call until an admin approves or denies it on any node,
// or its timeout denies it.
func (e *Engine) hold(ctx context.Context, r *rule, c *gateway.BehaviourCall, why string, a Alert) gateway.BehaviourVerdict {
	timeout := e.cfg.HoldTimeout
	if t := time.Duration(r.spec.HoldTimeout); t > 0 {
		timeout = t
	}
	refuse := func(how string) gateway.BehaviourVerdict {
		return gateway.BehaviourVerdict{Deny: true, Reason: fmt.Sprintf("refused by sequence rule %s: %s; held for approval, %s", r.spec.Name, why, how)}
	}
	if e.cfg.Propose == nil {
		return refuse("but approvals are not available on this node")
	}
	id := newID()
	now := e.cfg.Now().UTC()
	ap := &state.Approval{ID: id, Agent: c.Agent, Persona: c.Persona, Session: c.Session, Tool: c.Upstream + "/" + c.Tool,
		Rule: r.spec.Name, Reason: why, Node: e.cfg.Node, Expires: now.Add(timeout), State: state.ApprovalPending}
	ch, cancel := e.cfg.State.Subscribe()
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	err := e.cfg.Propose(pctx, &state.Command{Op: state.OpApprovalPut, Time: now, Approval: ap})
	pcancel()
	if err != nil {
		e.log.Warn("held call denied: its approval could not be recorded", "agent", c.Agent, "rule", r.spec.Name, "err", err)
		return refuse("but the approval could not be recorded (" + err.Error() + ")")
	}
	a.Reason += " (approval " + id + ")"
	e.alert(a)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		switch st := e.cfg.State.Current().Approvals[id]; {
		case st == nil:
		case st.State == state.ApprovalApproved:
			return gateway.BehaviourVerdict{Reason: fmt.Sprintf("held by sequence rule %s (%s), approved (approval %s)", r.spec.Name, why, id)}
		case st.State == state.ApprovalDenied:
			return refuse("denied by an admin (approval " + id + ")")
		case st.State == state.ApprovalExpired:
			return refuse(fmt.Sprintf("not approved within %s (approval %s)", timeout, id))
		}
		select {
		case <-ch:
		case <-timer.C:
			e.expire(id)
			return refuse(fmt.Sprintf("not approved within %s (approval %s)", timeout, id))
		case <-ctx.Done():
			e.expire(id)
			return refuse("and the agent gave up waiting (approval " + id + ")")
		}
	}
}

// expire marks an undecided approval expired (best effort: its Expires
// already makes a late decision fail).
func (e *Engine) expire(id string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.cfg.Propose(ctx, &state.Command{Op: state.OpApprovalDecide, Time: e.cfg.Now().UTC(),
			Approval: &state.Approval{ID: id, State: state.ApprovalExpired, DecidedBy: "timeout"}})
	}()
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Observe implements gateway.Behaviour: a call that passed feeds the
// windows of the rules that count it; every tools/call feeds the agent's
// default protections.
func (e *Engine) Observe(c *gateway.BehaviourCall, d *gateway.Decision, result json.RawMessage, failed bool) {
	if c.Method != mcp.MethodToolsCall || c.Agent == "" {
		return
	}
	stage := d.Stage()
	if d.Decision == gateway.Deny && (stage == gateway.StageBehaviour || stage == gateway.StageGuard) {
		return // refused by us or by a limit: not the agent's doing
	}
	comp := e.comp.Load()
	now := e.cfg.Now()
	passed := d.Decision == gateway.Allow
	if passed {
		e.feed(comp, agentKey(c.Agent), c, now, false)
		if comp.sessionRule && c.Session != "" {
			e.feed(comp, sessionKey(c.Session), c, now, true)
		}
	}
	if e.cfg.Runaway.Disabled {
		return
	}
	fail := failed && d.UpstreamStatus != "timeout" && d.UpstreamStatus != "unavailable"
	if d.Decision == gateway.Deny {
		fail = stage == gateway.StagePolicy || stage == gateway.StageDLPRequest
	}
	sig := e.observeRunaway(c, now, result, fail)
	if sig != nil {
		reason := fmt.Sprintf("runaway: %s: %s", sig.name, sig.text)
		e.alert(Alert{Time: now, Action: "quarantine", Agent: c.Agent, Persona: c.Persona, Session: c.Session,
			Tool: c.Upstream + "/" + c.Tool, Rule: "default:" + sig.name, Reason: reason})
		e.quarantine(c.Agent, reason, "default:"+sig.name)
	}
}

// feed counts a passed call in the windows of the rules that count it.
func (e *Engine) feed(comp *compiled, key string, c *gateway.BehaviourCall, now time.Time, session bool) {
	var sh *shard
	var t *tracker
	for _, r := range comp.rules {
		if r.session != session || !r.watches(c.Persona) || !r.counts(c.Upstream, c.Tool, c.Skill) {
			continue
		}
		if t == nil {
			sh = e.shard(key)
			sh.mu.Lock()
			t = e.trackerLocked(sh, key, now)
		}
		t.window(r.id).add(now, r.within)
	}
	if sh != nil {
		sh.mu.Unlock()
	}
}

func (e *Engine) trackerLocked(sh *shard, key string, now time.Time) *tracker {
	t := sh.m[key]
	if t == nil {
		if len(sh.m) >= e.cfg.MaxTrackers/shardCount {
			evictOldest(sh.m)
		}
		t = &tracker{}
		sh.m[key] = t
	}
	t.last = e.ms(now)
	return t
}

// evictOldest drops the least recently seen half of a full shard.
func evictOldest(m map[string]*tracker) {
	var total int64
	for _, t := range m {
		total += t.last
	}
	avg := total / int64(max(len(m), 1))
	for k, t := range m {
		if t.last <= avg {
			delete(m, k)
		}
	}
}

func (e *Engine) observeRunaway(c *gateway.BehaviourCall, now time.Time, result json.RawMessage, fail bool) *signal {
	key := agentKey(c.Agent)
	sh := e.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := e.trackerLocked(sh, key, now)
	if t.run == nil {
		t.run = &runaway{}
	}
	run := t.run
	novel := false
	if fail && len(c.Args) > 0 {
		argTokens(c.Args, 0, func(h uint64) {
			if !run.seen.has(h) {
				novel = true
			}
		})
	}
	if len(c.Args) > 0 {
		argTokens(c.Args, 0, run.seen.add) // an agent may reuse what it sent
	}
	if len(result) > 0 {
		tokens([]byte(result), run.seen.add)
	}
	return run.add(&e.cfg.Runaway, newEntry(e.ms(now), shapeOf(c.Upstream, c.Tool, c.Args), fail, novel))
}

// sweep drops trackers idle for longer than the longest window.
func (e *Engine) sweep() {
	comp := e.comp.Load()
	cut := e.ms(e.cfg.Now()) - comp.idle.Milliseconds()
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for k, t := range sh.m {
			if t.last < cut {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
	e.mu.Lock()
	now := e.cfg.Now()
	for s, until := range e.stopped {
		if !now.Before(until) {
			delete(e.stopped, s)
		}
	}
	e.mu.Unlock()
}
